//! [`Sequential`]: the reference executor. Runs tasks one at a time on the calling thread in
//! static priority order, releasing each result when its last dependent takes it. It is short
//! on purpose: tests use it as the oracle every other executor must match.

use std::sync::Arc;
use std::time::Instant;

use super::callbacks::notify;
use super::{Callback, Executor, TaskEvent, run_op};
use crate::error::Result;
use crate::graph::{Inputs, TaskGraph, TaskId, Value};

/// Runs a graph on the calling thread, one task at a time, in static order.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sequential;

impl Executor for Sequential {
    fn execute(&self, g: &TaskGraph, callbacks: &[Arc<dyn Callback>]) -> Result<Vec<Value>> {
        let mut results: Vec<Option<Value>> = vec![None; g.len()];
        let mut waiting_data: Vec<u32> = (0..g.len() as TaskId)
            .map(|id| g.dependents(id).len() as u32)
            .collect();
        notify(callbacks, "on_start", |c| c.on_start(g, 1))?;
        for id in g.static_order() {
            let mut inputs = Inputs::with_capacity(g.deps(id).len());
            for &d in g.deps(id) {
                let d = d as usize;
                waiting_data[d] -= 1;
                let v = if waiting_data[d] == 0 && !g.is_output(d as TaskId) {
                    results[d].take()
                } else {
                    results[d].clone()
                };
                inputs.push(v.expect("dependencies run before their dependents"));
            }
            let start = Instant::now();
            let outcome = notify(callbacks, "on_task_start", |c| c.on_task_start(g, id, 0))
                .and_then(|()| run_op(g, id, inputs));
            let event = TaskEvent {
                id,
                worker: 0,
                start,
                end: Instant::now(),
                failed: outcome.is_err(),
            };
            let finished = notify(callbacks, "on_task_finish", |c| c.on_task_finish(g, &event));
            // A task's own error is the one to report; else a callback's.
            let outcome = outcome.and_then(|v| finished.map(|()| v));
            match outcome {
                Ok(v) => results[id as usize] = Some(v),
                Err(e) => {
                    // The run already failed; a panic in on_finish adds nothing to report.
                    let _ = notify(callbacks, "on_finish", |c| c.on_finish(g, true));
                    return Err(e);
                }
            }
        }
        notify(callbacks, "on_finish", |c| c.on_finish(g, false))?;
        Ok(g.outputs()
            .iter()
            .map(|&o| results[o as usize].clone().expect("outputs are kept"))
            .collect())
    }

    fn parallelism(&self) -> usize {
        1
    }
}
