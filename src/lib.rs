//! chunkflow: lazy, parallel, larger-than-memory work on chunked N-dimensional arrays.
//!
//! The crate is layered like a house (see `design.md`): the [`graph`] room owns keys, tasks and
//! the frozen [`graph::TaskGraph`]; the [`scheduler`] room runs graphs ([`Sequential`],
//! [`Threaded`]); [`delayed`] gives typed lazy handles over plain Rust functions; [`array`]
//! builds chunked arrays on top; [`rechunk`] holds the rechunker planning algorithm.
//!
//! ```
//! use chunkflow::prelude::*;
//!
//! fn inc(x: i64) -> i64 { x + 1 }
//! fn add(x: i64, y: i64) -> i64 { x + y }
//!
//! let a = delayed!(inc(1));
//! let b = delayed!(inc(2));
//! let total = delayed!(add(a, b));
//! assert_eq!(total.compute().unwrap(), 5);
//! ```
#![deny(missing_docs)]

pub mod array;
pub mod collection;
pub mod dataset;
pub mod delayed;
pub mod error;
pub mod graph;
pub mod partition;
pub mod rechunk;
pub mod scheduler;
pub mod store;

pub use collection::{Collection, ComputeOptions, compute, compute_async, compute_with};
pub use delayed::{Delayed, delayed, try_delayed};
pub use error::{BoxError, Error, Result};
pub use scheduler::{Executor, Sequential, Threaded};

/// The names most programs need: `use chunkflow::prelude::*;`.
pub mod prelude {
    pub use crate::collection::{Collection, ComputeOptions, compute, compute_async, compute_with};
    pub use crate::delayed;
    pub use crate::delayed::{Delayed, try_delayed};
    pub use crate::error::{Error, Result};
    pub use crate::scheduler::{Executor, Sequential, Threaded};
}
