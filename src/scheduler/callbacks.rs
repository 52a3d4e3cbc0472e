//! Callbacks: hooks that executors call as a graph runs (dask's `Callback`), and two built-in
//! ones: a terminal [`ProgressBar`] and a [`ChromeTrace`] task-stream profile.
//!
//! Executors call `on_task_start`/`on_task_finish` from worker threads, concurrently, so
//! callbacks must be cheap and thread-safe. With no callbacks registered an executor skips the
//! calls entirely.

use std::io::IsTerminal;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::json;

use crate::error::{Error, Result};
use crate::graph::{TaskGraph, TaskId};

/// One finished task, as reported to [`Callback::on_task_finish`].
#[derive(Clone, Copy, Debug)]
pub struct TaskEvent {
    /// The task.
    pub id: TaskId,
    /// The worker thread that ran it (0-based).
    pub worker: usize,
    /// When it started.
    pub start: Instant,
    /// When it finished.
    pub end: Instant,
    /// Whether it failed (returned an error or panicked).
    pub failed: bool,
}

/// Hooks called while a graph runs. Every method has an empty default.
pub trait Callback: Send + Sync {
    /// The run starts with `workers` worker threads.
    fn on_start(&self, _graph: &TaskGraph, _workers: usize) {}
    /// `worker` starts task `id`.
    fn on_task_start(&self, _graph: &TaskGraph, _id: TaskId, _worker: usize) {}
    /// A task finished.
    fn on_task_finish(&self, _graph: &TaskGraph, _event: &TaskEvent) {}
    /// The run ended, successfully or not.
    fn on_finish(&self, _graph: &TaskGraph, _failed: bool) {}
}

/// Calls `hook` on every callback, turning a panic into [`Error::CallbackPanicked`] so that a
/// faulty callback stops the run with an error instead of killing a worker thread.
pub(crate) fn notify(
    callbacks: &[Arc<dyn Callback>],
    hook: &'static str,
    call: impl Fn(&dyn Callback),
) -> Result<()> {
    for c in callbacks {
        std::panic::catch_unwind(AssertUnwindSafe(|| call(&**c))).map_err(|payload| {
            Error::CallbackPanicked {
                hook,
                message: super::panic_message(payload.as_ref()),
            }
        })?;
    }
    Ok(())
}

/// A progress bar on standard error (indicatif), shown only when standard error is a terminal
/// and the run lasts longer than `minimum` (default 1 s, like dask's `ProgressBar(minimum=1)`).
pub struct ProgressBar {
    bar: Mutex<Option<indicatif::ProgressBar>>,
    started: Mutex<Option<Instant>>,
    minimum: Duration,
    enabled: bool,
}

impl ProgressBar {
    /// A progress bar that shows itself when standard error is a terminal.
    pub fn new() -> Self {
        ProgressBar {
            bar: Mutex::new(None),
            started: Mutex::new(None),
            minimum: Duration::from_secs(1),
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// Waits this long before drawing, so short runs print nothing.
    pub fn with_minimum(mut self, minimum: Duration) -> Self {
        self.minimum = minimum;
        self
    }
}

impl Default for ProgressBar {
    fn default() -> Self {
        Self::new()
    }
}

impl Callback for ProgressBar {
    fn on_start(&self, graph: &TaskGraph, _workers: usize) {
        if !self.enabled {
            return;
        }
        *self.started.lock() = Some(Instant::now());
        let bar = indicatif::ProgressBar::hidden();
        bar.set_length(graph.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "[{bar:40}] {percent:>3}% | {elapsed_precise} | {pos}/{len} tasks",
            )
            .expect("static template is valid")
            .progress_chars("## "),
        );
        *self.bar.lock() = Some(bar);
    }

    fn on_task_finish(&self, _graph: &TaskGraph, _event: &TaskEvent) {
        let guard = self.bar.lock();
        let Some(bar) = guard.as_ref() else { return };
        bar.inc(1);
        if bar.is_hidden()
            && self
                .started
                .lock()
                .is_some_and(|s| s.elapsed() >= self.minimum)
        {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
    }

    fn on_finish(&self, _graph: &TaskGraph, failed: bool) {
        if let Some(bar) = self.bar.lock().take() {
            if failed {
                bar.abandon();
            } else {
                bar.finish();
            }
        }
    }
}

/// Records a task-stream profile: one lane per worker thread, one slice per task, written as
/// Chrome trace JSON (open it in <https://ui.perfetto.dev> or `chrome://tracing`).
///
/// ```
/// use std::sync::Arc;
/// use chunkflow::prelude::*;
/// use chunkflow::scheduler::ChromeTrace;
/// fn inc(x: i64) -> i64 { x + 1 }
/// let trace = Arc::new(ChromeTrace::new());
/// let options = ComputeOptions::default().callback(trace.clone());
/// let x = delayed!(inc(1));
/// assert_eq!(x.compute_with(&options).unwrap(), 2);
/// let json = trace.to_json();
/// assert!(json["traceEvents"].as_array().unwrap().iter().any(|e| e["name"] == "inc"));
/// ```
pub struct ChromeTrace {
    origin: Instant,
    pending: Mutex<Vec<TaskEvent>>,
    events: Mutex<Vec<serde_json::Value>>,
    workers: Mutex<usize>,
}

impl ChromeTrace {
    /// An empty profile; times are measured from now.
    pub fn new() -> Self {
        ChromeTrace {
            origin: Instant::now(),
            pending: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
            workers: Mutex::new(0),
        }
    }

    /// The profile as a Chrome trace JSON document.
    pub fn to_json(&self) -> serde_json::Value {
        let mut events = self.events.lock().clone();
        for w in 0..*self.workers.lock() {
            events.push(json!({
                "name": "thread_name", "ph": "M", "pid": 1, "tid": w,
                "args": { "name": format!("worker {w}") }
            }));
        }
        json!({ "traceEvents": events, "displayTimeUnit": "ms" })
    }

    /// Writes the profile to `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = serde_json::to_string(&self.to_json()).expect("JSON values serialise");
        std::fs::write(path, text).map_err(|e| Error::io(path, e))
    }
}

impl Default for ChromeTrace {
    fn default() -> Self {
        Self::new()
    }
}

impl Callback for ChromeTrace {
    fn on_start(&self, _graph: &TaskGraph, workers: usize) {
        let mut w = self.workers.lock();
        *w = (*w).max(workers);
    }

    fn on_task_finish(&self, _graph: &TaskGraph, event: &TaskEvent) {
        self.pending.lock().push(*event);
    }

    fn on_finish(&self, graph: &TaskGraph, _failed: bool) {
        let pending = std::mem::take(&mut *self.pending.lock());
        let mut events = self.events.lock();
        for e in pending {
            let ts = e.start.duration_since(self.origin).as_secs_f64() * 1e6;
            let dur = e.end.duration_since(e.start).as_secs_f64() * 1e6;
            events.push(json!({
                "name": graph.key(e.id).label(),
                "cat": graph.meta(e.id).kind.as_str(),
                "ph": "X", "pid": 1, "tid": e.worker, "ts": ts, "dur": dur,
                "args": { "key": graph.key(e.id).to_string(), "failed": e.failed }
            }));
        }
    }
}
