//! Static ordering: the priority that breaks ties between ready tasks.
//!
//! The goal is dask.order's: *finish one branch before opening the next*, so the results held
//! in memory at any moment stay few. We get it with the order a sequential, depth-first
//! evaluation would take: a post-order walk from each requested output in turn, visiting a
//! task's dependencies in the order it declares them. A reduction over chunks `c0, c1, ...` thus
//! runs `load c0, f c0, load c1, f c1, ...`, and a tree reduction combines each group as soon as
//! it is complete. The walk is iterative (no recursion, so a 100,000-deep chain is fine) and
//! linear in tasks plus edges.
//!
//! [`max_live_results`] simulates a sequential run in a given order and reports how many results
//! are alive at its worst moment: the memory-pressure oracle that tests use (dask's
//! `order.diagnostics`).

use super::frozen::{TaskGraph, TaskId};

/// Priorities (0 = run first) for every task of `g`.
pub fn priorities(g: &TaskGraph) -> Vec<u32> {
    let n = g.len();
    let mut priority = vec![u32::MAX; n];
    let mut next = 0u32;
    let mut stack: Vec<(TaskId, u32)> = Vec::new();
    for &out in g.outputs() {
        if priority[out as usize] != u32::MAX {
            continue;
        }
        stack.push((out, 0));
        // A finished task has a priority; the stack is the current path, and in an acyclic
        // graph no dependency can be on it, so "no priority yet" means "not entered yet".
        while let Some(&mut (id, ref mut pos)) = stack.last_mut() {
            let deps = g.deps(id);
            if let Some(&d) = deps.get(*pos as usize) {
                *pos += 1;
                if priority[d as usize] == u32::MAX {
                    stack.push((d, 0));
                }
            } else {
                priority[id as usize] = next;
                next += 1;
                stack.pop();
            }
        }
    }
    debug_assert_eq!(next as usize, n, "every task is reachable from an output");
    priority
}

/// Simulates running `order` one task at a time, releasing each result once its last dependent
/// has run (outputs are kept), and returns the largest number of results alive at once.
pub fn max_live_results(g: &TaskGraph, order: &[TaskId]) -> usize {
    let mut remaining: Vec<u32> = (0..g.len() as TaskId)
        .map(|id| g.dependents(id).len() as u32)
        .collect();
    let (mut live, mut peak) = (0usize, 0usize);
    for &id in order {
        live += 1;
        peak = peak.max(live);
        for &d in g.deps(id) {
            remaining[d as usize] -= 1;
            if remaining[d as usize] == 0 && !g.is_output(d) {
                live -= 1;
            }
        }
    }
    peak
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{FreezeOptions, Key, Task, value};

    fn tree(leaves: usize, fan_in: usize) -> (Vec<Task>, Key) {
        let mut tasks = Vec::new();
        let mut level: Vec<Key> = (0..leaves)
            .map(|i| {
                let k = Key::chunk("leaf", &[i]);
                tasks.push(Task::data_value(k.clone(), value(i)));
                k
            })
            .collect();
        let mut depth = 0;
        while level.len() > 1 {
            depth += 1;
            level = level
                .chunks(fan_in)
                .enumerate()
                .map(|(j, group)| {
                    let k = Key::chunk(format!("sum{depth}"), &[j]);
                    tasks.push(Task::call(k.clone(), group.to_vec(), |_| Ok(value(0usize))));
                    k
                })
                .collect();
        }
        (tasks, level.pop().unwrap())
    }

    #[test]
    fn tree_reduction_order_keeps_few_results_alive() {
        let (tasks, out) = tree(4096, 8);
        let g = TaskGraph::from_tasks(tasks, &[out], FreezeOptions { fuse: false }).unwrap();
        let peak = max_live_results(&g, &g.static_order());
        // depth 4, fan-in 8: at most (8 - 1) pending siblings per level plus the running one.
        assert!(peak <= 4 * 8, "peak {peak}");
        // Breadth-first (the id order here) would hold every leaf.
        let bfs: Vec<TaskId> = (0..g.len() as TaskId).rev().collect();
        assert!(max_live_results(&g, &bfs) >= 4096);
    }

    #[test]
    fn deep_chain_orders_without_recursion() {
        let mut tasks = vec![Task::data("c-0", 0usize)];
        for i in 1..200_000 {
            tasks.push(Task::call(
                format!("c-{i}"),
                [format!("c-{}", i - 1)],
                |mut v| Ok(v.pop().unwrap()),
            ));
        }
        let g = TaskGraph::from_tasks(tasks, &["c-199999".into()], FreezeOptions { fuse: false })
            .unwrap();
        let order = g.static_order();
        assert_eq!(g.key(order[0]).name(), "c-0");
        assert_eq!(max_live_results(&g, &order), 2);
    }
}
