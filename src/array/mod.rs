//! Chunked N-dimensional arrays on the task graph (the dask.array idea on `ndarray`).
//!
//! [`Array<T>`] is lazy: creation, element-wise maths, reductions, slicing, linear algebra and
//! rechunking add layers of per-chunk tasks to a graph; `compute()` runs them on an executor
//! and assembles an `ndarray::ArrayD<T>`.

pub mod chunks;
mod core;
mod dtype;
mod elementwise;
mod linalg;
mod rechunk;
mod reduce;
mod rng;
mod shape;
mod stream;
mod take;
mod zarr;

pub use self::core::{
    Array, BlockInfo, arange, from_delayed, from_ndarray, full, human_bytes, linspace, ones,
    random, zeros,
};
pub use chunks::{ChunkError, ChunkSpec, Chunks, Dim};
pub use dtype::{DType, Element, Float, Number, is_nan};
pub use elementwise::where_;
pub use linalg::tensordot;
pub use reduce::{DEFAULT_SPLIT_EVERY, MeanElement, ReduceOptions};
pub use shape::{ReshapeDim, concatenate, stack};
pub use zarr::{ToZarrOptions, from_zarr, from_zarr_with};
