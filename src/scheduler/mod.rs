//! The scheduler room: the [`Executor`] trait, the [`Sequential`] reference executor, the
//! work-stealing [`Threaded`] executor, and [`Callback`]s (progress bar, task-stream profile).
//!
//! Every executor must give the same answer as [`Sequential`] on every graph, free each
//! intermediate result once its last dependent has started, and turn the first failing or
//! panicking task into an error naming that task. This room knows nothing of arrays or Zarr.

pub mod callbacks;
mod memory;
mod sequential;
mod threaded;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use smallvec::smallvec;

pub use callbacks::{Callback, ChromeTrace, ProgressBar, TaskEvent};
pub use sequential::Sequential;
pub use threaded::Threaded;

use crate::error::{Error, Result};
use crate::graph::{Inputs, Key, TaskFn, TaskGraph, TaskId, TaskOp, Value};

/// Runs frozen task graphs.
///
/// ```
/// use chunkflow::graph::{FreezeOptions, Task, TaskGraph, value};
/// use chunkflow::{Executor, Sequential, Threaded};
/// let g = TaskGraph::from_tasks(
///     [Task::data("x", 2i32), Task::call("y", ["x"], |i| Ok(value(*i[0].downcast_ref::<i32>().unwrap() * 21)))],
///     &["y".into()],
///     FreezeOptions::default(),
/// ).unwrap();
/// for ex in [&Sequential as &dyn Executor, &Threaded::new(2)] {
///     let out = ex.execute(&g, &[]).unwrap();
///     assert_eq!(*out[0].downcast_ref::<i32>().unwrap(), 42);
/// }
/// ```
pub trait Executor: Send + Sync {
    /// Runs `graph` and returns its outputs' values in the order of `graph.outputs()`.
    fn execute(&self, graph: &TaskGraph, callbacks: &[Arc<dyn Callback>]) -> Result<Vec<Value>>;

    /// The number of tasks this executor runs at once.
    fn parallelism(&self) -> usize;
}

/// Runs one task's operation on its inputs, catching panics. Errors name the failing step.
pub(crate) fn run_op(graph: &TaskGraph, id: TaskId, inputs: Inputs) -> Result<Value> {
    match graph.op(id) {
        TaskOp::Data(v) => Ok(v.clone()),
        TaskOp::Call(f) => call(graph.key(id), f, inputs),
        TaskOp::Fused(steps) => {
            let mut inputs = inputs;
            let (last, init) = steps.split_last().expect("a fused task has steps");
            for (key, f) in init {
                inputs = smallvec![call(key, f, inputs)?];
            }
            call(&last.0, &last.1, inputs)
        }
    }
}

fn call(key: &Key, f: &TaskFn, inputs: Inputs) -> Result<Value> {
    match catch_unwind(AssertUnwindSafe(|| f(inputs))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(Error::TaskFailed {
            key: key.clone(),
            source,
        }),
        Err(payload) => Err(Error::TaskPanicked {
            key: key.clone(),
            message: panic_message(payload.as_ref()),
        }),
    }
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
