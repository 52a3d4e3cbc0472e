//! The crate's one error type, [`Error`], and its [`Result`] alias.
//!
//! Every variant says what went wrong and, where a task is involved, names it by its key, so a
//! user can find the failing piece of a large graph. Errors raised inside user functions are
//! carried as [`BoxError`] and wrapped into [`Error::TaskFailed`] with the task's key.

use std::path::PathBuf;

use crate::graph::Key;

/// A boxed error from user code (a task function that returned `Err`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with chunkflow's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in chunkflow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A task's function returned an error.
    #[error("task {key} failed: {source}")]
    TaskFailed {
        /// The failing task.
        key: Key,
        /// What the task function returned.
        #[source]
        source: BoxError,
    },

    /// A task's function panicked; the panic was caught and the computation stopped.
    #[error("task {key} panicked: {message}")]
    TaskPanicked {
        /// The failing task.
        key: Key,
        /// The panic message.
        message: String,
    },

    /// A callback (progress bar, profiler, ...) panicked; the computation was stopped.
    #[error("the {hook} callback panicked: {message}")]
    CallbackPanicked {
        /// Which hook (`on_task_start`, ...).
        hook: &'static str,
        /// The panic message.
        message: String,
    },

    /// The graph has a cycle, so it can never finish.
    #[error("the task graph has a cycle (each task depends on the next): {}", format_cycle(.cycle))]
    Cycle {
        /// The keys on the cycle: each depends on the next, and the last on the first.
        cycle: Vec<Key>,
    },

    /// A task depends on a key that no task in the graph produces.
    #[error(
        "task {task} depends on {missing}, which is not in the graph (was it built from \
         another graph, or culled away?)"
    )]
    MissingDependency {
        /// The task that needs the missing key.
        task: Key,
        /// The key nothing produces.
        missing: Key,
    },

    /// An output was requested that no task in the graph produces.
    #[error("requested output {key} is not in the graph")]
    UnknownOutput {
        /// The requested key.
        key: Key,
    },

    /// A task produced (or received) a value of another type than the code expected.
    #[error("task {key} produced a value that is not a {expected}")]
    TypeMismatch {
        /// The task whose value had the wrong type.
        key: Key,
        /// The type the caller expected.
        expected: &'static str,
    },

    /// Rendering a graph needs Graphviz's `dot` program, which is not installed.
    #[error(
        "rendering {format} needs Graphviz's `dot` program, which was not found on PATH; \
         install it (Debian/Ubuntu: `apt-get install -y graphviz`) or write a .dot file instead"
    )]
    GraphvizNotInstalled {
        /// The format that was asked for (`svg`, `png`, ...).
        format: String,
    },

    /// Graphviz ran but failed.
    #[error("graphviz failed to render {path}: {message}")]
    Graphviz {
        /// The file that was being written.
        path: PathBuf,
        /// What `dot` reported.
        message: String,
    },

    /// An argument was out of range or inconsistent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A chunk specification was invalid.
    #[error(transparent)]
    Chunks(#[from] crate::array::chunks::ChunkError),

    /// A rechunk plan could not be made.
    #[error(transparent)]
    Plan(#[from] crate::rechunk::algorithm::PlanError),

    /// Opening, reading or writing a Zarr store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The key of the task this error is about, if any.
    pub fn key(&self) -> Option<&Key> {
        match self {
            Error::TaskFailed { key, .. }
            | Error::TaskPanicked { key, .. }
            | Error::TypeMismatch { key, .. }
            | Error::UnknownOutput { key } => Some(key),
            Error::MissingDependency { task, .. } => Some(task),
            _ => None,
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

fn format_cycle(cycle: &[Key]) -> String {
    let mut parts: Vec<String> = cycle.iter().map(|k| k.to_string()).collect();
    if let Some(first) = cycle.first() {
        parts.push(first.to_string());
    }
    parts.join(" -> ")
}
