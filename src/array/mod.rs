//! Chunked N-dimensional arrays on the task graph.
pub mod chunks;
