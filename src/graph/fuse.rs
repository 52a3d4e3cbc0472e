//! Linear-chain fusion: `a → b → c`, where each link feeds exactly one task that needs nothing
//! else, becomes one task running `a`, `b`, `c` back to back.
//!
//! Fusion removes per-task scheduling cost and lets each step's input be dropped (or moved into
//! the next step) as soon as that step returns. The fused task keeps the key of the chain's last
//! task, so dependents and outputs are unchanged; each step keeps its own key inside
//! [`TaskOp::Fused`] so a failure names the step that failed. Requested outputs are never fused
//! away, and a read never fuses into a task of another kind, so reads can still run on the
//! executor's I/O threads while computation stays on its workers. The pass is linear in the
//! number of tasks.

use std::sync::Arc;

use super::Key;
use super::frozen::{TaskGraph, TaskId, invert};
use super::task::{TaskFn, TaskKind, TaskOp};

/// Fuses every maximal linear chain of `g` into one task.
pub fn fuse_linear(g: TaskGraph) -> TaskGraph {
    let n = g.len();
    // next[t] = the dependent t fuses into, if t feeds exactly one task that needs only t.
    let next: Vec<Option<TaskId>> = (0..n as TaskId)
        .map(|t| {
            let dependents = g.dependents(t);
            if g.is_output(t) || dependents.len() != 1 {
                return None;
            }
            let d = dependents[0];
            let read_into_other =
                g.meta(t).kind == TaskKind::Read && g.meta(d).kind != TaskKind::Read;
            (g.deps(d).len() == 1 && !read_into_other).then_some(d)
        })
        .collect();
    if next.iter().all(Option::is_none) {
        return g;
    }
    let mut fused_into_by: Vec<bool> = vec![false; n];
    for d in next.iter().flatten() {
        fused_into_by[*d as usize] = true;
    }

    // Each chain is walked from its head (a task nothing fuses into); the new task takes the
    // head's dependencies and the tail's key. new_id maps every tail (and unfused task) to its id.
    let mut new_id: Vec<TaskId> = vec![TaskId::MAX; n];
    let mut chains: Vec<Vec<TaskId>> = Vec::new();
    for head in 0..n as TaskId {
        if fused_into_by[head as usize] {
            continue;
        }
        let mut chain = vec![head];
        let mut t = head;
        while let Some(d) = next[t as usize] {
            chain.push(d);
            t = d;
        }
        new_id[t as usize] = chains.len() as TaskId;
        chains.push(chain);
    }

    let m = chains.len();
    let mut keys = Vec::with_capacity(m);
    let mut ops = Vec::with_capacity(m);
    let mut meta = Vec::with_capacity(m);
    let mut fused_count = Vec::with_capacity(m);
    let mut dep_offsets = Vec::with_capacity(m + 1);
    let mut dep_ids = Vec::new();
    dep_offsets.push(0u32);
    for chain in &chains {
        let head = chain[0];
        let tail = *chain.last().unwrap();
        keys.push(g.key(tail).clone());
        meta.push(g.meta(tail));
        fused_count.push(chain.iter().map(|&t| g.fused_count(t)).sum());
        ops.push(if chain.len() == 1 {
            g.op(tail).clone()
        } else {
            let mut steps: Vec<(Key, TaskFn)> = Vec::new();
            for &t in chain {
                push_steps(&mut steps, g.key(t), g.op(t));
            }
            TaskOp::Fused(steps.into())
        });
        for &d in g.deps(head) {
            dep_ids.push(new_id[d as usize]);
        }
        dep_offsets.push(dep_ids.len() as u32);
    }
    let (dependent_offsets, dependent_ids) = invert(m, &dep_offsets, &dep_ids);
    let outputs: Vec<TaskId> = g.outputs.iter().map(|&o| new_id[o as usize]).collect();
    let mut is_output = vec![false; m];
    for &o in &outputs {
        is_output[o as usize] = true;
    }
    TaskGraph {
        keys,
        ops,
        meta,
        dep_offsets,
        dep_ids,
        dependent_offsets,
        dependent_ids,
        outputs,
        is_output,
        priority: Vec::new(),
        fused_count,
    }
}

fn push_steps(steps: &mut Vec<(Key, TaskFn)>, key: &Key, op: &TaskOp) {
    match op {
        TaskOp::Call(f) => steps.push((key.clone(), f.clone())),
        TaskOp::Fused(inner) => steps.extend(inner.iter().cloned()),
        TaskOp::Data(v) => {
            let v = v.clone();
            let f: TaskFn = Arc::new(move |_| Ok(v.clone()));
            steps.push((key.clone(), f));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{FreezeOptions, Task, value};

    fn inc(key: &str, dep: &str) -> Task {
        Task::call(key, [dep], |i| {
            Ok(value(*i[0].downcast_ref::<i64>().unwrap() + 1))
        })
    }

    #[test]
    fn chain_becomes_one_task_and_branches_stay() {
        // x -> a -> b -> c, and x -> d ; c and d are outputs
        let tasks = vec![
            Task::data("x", 1i64),
            inc("a", "x"),
            inc("b", "a"),
            inc("c", "b"),
            inc("d", "x"),
        ];
        let g = TaskGraph::from_tasks(tasks, &["c".into(), "d".into()], FreezeOptions::default())
            .unwrap();
        // x has two dependents: stays; a->b->c fuse into c; d stays.
        assert_eq!(g.len(), 3);
        let c = g.outputs()[0];
        assert_eq!(g.key(c).name(), "c");
        assert_eq!(g.fused_count(c), 3);
        assert!(matches!(g.op(c), TaskOp::Fused(s) if s.len() == 3));
    }

    #[test]
    fn outputs_are_not_fused_away() {
        let tasks = vec![Task::data("x", 1i64), inc("a", "x"), inc("b", "a")];
        let g = TaskGraph::from_tasks(tasks, &["a".into(), "b".into()], FreezeOptions::default())
            .unwrap();
        // x -> a fuse (x is not an output), a is an output so a -> b does not.
        assert_eq!(g.len(), 2);
        assert_eq!(g.key(g.outputs()[0]).name(), "a");
    }
}
