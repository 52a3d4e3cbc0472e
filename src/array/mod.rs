//! Chunked N-dimensional arrays on the task graph.

pub mod chunks;
mod dtype;

pub use chunks::{ChunkError, ChunkSpec, Chunks, Dim};
pub use dtype::{DType, Element, Float, Number};
