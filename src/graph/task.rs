//! Tasks, the values they produce, and layers (the tasks one operation added).
//!
//! A [`Task`] names its dependencies by [`Key`]; its function receives their values, in the
//! order of `deps`, as owned [`Value`]s. A value is an `Arc<dyn Any>`: when a task is the last
//! consumer of an input the executor hands over its only reference, so typed code can take the
//! value out without copying ([`take_value`]).
//!
//! A [`Layer`] is what one operation on a collection adds (one task for a `Delayed` call, one per
//! chunk for an array operation) plus `Arc`s to the layers it builds on. Collections hold
//! `Arc<Layer>`s, so building is O(new tasks) and merging collections is a pointer copy. Layer
//! chains can be very deep (a 100,000-step loop), so dropping one is iterative, not recursive.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use smallvec::SmallVec;

use super::Key;
use crate::error::BoxError;

/// A computed value: type-erased and shared.
pub type Value = Arc<dyn Any + Send + Sync>;

/// The input values of one task, in the order of its dependencies.
pub type Inputs = SmallVec<[Value; 4]>;

/// A task's function: inputs in, one value (or an error) out.
pub type TaskFn = Arc<dyn Fn(Inputs) -> Result<Value, BoxError> + Send + Sync>;

/// Wraps a plain value as a [`Value`].
pub fn value<T: Send + Sync + 'static>(v: T) -> Value {
    Arc::new(v)
}

/// Takes a `T` out of a value: moved when this is the only reference, cloned otherwise.
/// Returns the value back if it is not a `T`.
pub fn take_value<T: Clone + Send + Sync + 'static>(v: Value) -> Result<T, Value> {
    match v.downcast::<T>() {
        Ok(arc) => Ok(Arc::try_unwrap(arc).unwrap_or_else(|shared| (*shared).clone())),
        Err(v) => Err(v),
    }
}

/// What a task does when it runs.
#[derive(Clone)]
pub enum TaskOp {
    /// Calls a function on the dependencies' values.
    Call(TaskFn),
    /// A literal value (a data node in dask's terms); has no dependencies.
    Data(Value),
    /// A linear chain of calls fused into one task by the optimizer: the first gets the task's
    /// inputs, each next one the previous result. Each step keeps its original key so errors
    /// name the step that failed.
    Fused(Arc<[(Key, TaskFn)]>),
}

impl fmt::Debug for TaskOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskOp::Call(_) => write!(f, "Call"),
            TaskOp::Data(_) => write!(f, "Data"),
            TaskOp::Fused(steps) => write!(f, "Fused({})", steps.len()),
        }
    }
}

/// The kind of work a task does: for colours in graph plots and categories in profiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TaskKind {
    /// Pure computation (the default).
    #[default]
    Compute,
    /// A literal value.
    Data,
    /// Reads from storage.
    Read,
    /// Writes to storage.
    Write,
    /// Splits or merges chunks.
    Rechunk,
}

impl TaskKind {
    /// A short lowercase name (`"compute"`, `"read"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Compute => "compute",
            TaskKind::Data => "data",
            TaskKind::Read => "read",
            TaskKind::Write => "write",
            TaskKind::Rechunk => "rechunk",
        }
    }
}

/// Facts about a task the scheduler and diagnostics use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskMeta {
    /// What kind of work it is.
    pub kind: TaskKind,
    /// An estimate of the bytes its result holds (0 when unknown).
    pub nbytes: u64,
    /// An estimate of the bytes it holds while running, beyond its inputs and its result (a
    /// copy task's buffer, say). Used with the result size for memory-budget admission.
    pub working_bytes: u64,
}

/// One node of the graph: a key, the keys it needs, and what to do with them.
#[derive(Clone, Debug)]
pub struct Task {
    /// The task's (and its result's) name.
    pub key: Key,
    /// The keys whose values the function receives, in order.
    pub deps: SmallVec<[Key; 2]>,
    /// What the task does.
    pub op: TaskOp,
    /// Kind and size estimate.
    pub meta: TaskMeta,
}

impl Task {
    /// A task that calls `f` with the values of `deps`.
    ///
    /// ```
    /// use chunkflow::graph::{Key, Task, value};
    /// let t = Task::call("double-1", ["x"], |inputs| {
    ///     let x = inputs[0].downcast_ref::<i32>().unwrap();
    ///     Ok(value(x * 2))
    /// });
    /// assert_eq!(t.deps.len(), 1);
    /// ```
    pub fn call<K, I, F>(key: impl Into<Key>, deps: I, f: F) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<Key>,
        F: Fn(Inputs) -> Result<Value, BoxError> + Send + Sync + 'static,
    {
        Task {
            key: key.into(),
            deps: deps.into_iter().map(Into::into).collect(),
            op: TaskOp::Call(Arc::new(f)),
            meta: TaskMeta::default(),
        }
    }

    /// A data node holding `v`.
    pub fn data<T: Send + Sync + 'static>(key: impl Into<Key>, v: T) -> Self {
        Self::data_value(key, value(v))
    }

    /// A data node holding an already type-erased value.
    pub fn data_value(key: impl Into<Key>, v: Value) -> Self {
        Task {
            key: key.into(),
            deps: SmallVec::new(),
            op: TaskOp::Data(v),
            meta: TaskMeta {
                kind: TaskKind::Data,
                ..TaskMeta::default()
            },
        }
    }

    /// Sets the task's kind.
    pub fn with_kind(mut self, kind: TaskKind) -> Self {
        self.meta.kind = kind;
        self
    }

    /// Sets the estimate of the bytes its result holds.
    pub fn with_nbytes(mut self, nbytes: u64) -> Self {
        self.meta.nbytes = nbytes;
        self
    }

    /// Sets the estimate of the bytes it holds while running (beyond inputs and result).
    pub fn with_working_bytes(mut self, bytes: u64) -> Self {
        self.meta.working_bytes = bytes;
        self
    }
}

/// The tasks one operation added, plus the layers they build on.
pub struct Layer {
    name: Arc<str>,
    tasks: Vec<Task>,
    dependencies: Vec<Arc<Layer>>,
}

impl Layer {
    /// A layer named `name` with `tasks`, building on `dependencies`.
    pub fn new(name: impl Into<Arc<str>>, tasks: Vec<Task>, dependencies: Vec<Arc<Layer>>) -> Self {
        Layer {
            name: name.into(),
            tasks,
            dependencies,
        }
    }

    /// The layer's name (usually the key name its tasks share).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tasks this layer added.
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// The layers this one builds on.
    pub fn dependencies(&self) -> &[Arc<Layer>] {
        &self.dependencies
    }
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layer")
            .field("name", &self.name)
            .field("tasks", &self.tasks.len())
            .field("dependencies", &self.dependencies.len())
            .finish()
    }
}

impl Drop for Layer {
    // Iterative, so that dropping a 100,000-deep chain of layers does not overflow the stack.
    fn drop(&mut self) {
        let mut stack = std::mem::take(&mut self.dependencies);
        while let Some(layer) = stack.pop() {
            if let Some(mut owned) = Arc::into_inner(layer) {
                stack.append(&mut owned.dependencies);
            }
        }
    }
}
