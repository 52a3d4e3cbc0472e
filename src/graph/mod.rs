//! The graph room: keys, tasks, values, layers, the frozen [`TaskGraph`], and the passes over
//! it (cull, fuse, order) plus DOT export.
//!
//! Collections build [`Layer`]s lazily (no work, no I/O); executors run a [`TaskGraph`], frozen
//! from those layers for a set of requested outputs. This room knows nothing of arrays, Zarr or
//! executors.

pub mod dot;
mod frozen;
pub mod fuse;
mod key;
pub mod order;
mod task;
pub mod token;

pub use frozen::{FreezeOptions, TaskGraph, TaskId};
pub use key::{Key, key_split};
pub use task::{Inputs, Layer, Task, TaskFn, TaskKind, TaskMeta, TaskOp, Value, take_value, value};
