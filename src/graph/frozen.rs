//! The frozen [`TaskGraph`]: what executors run.
//!
//! Freezing turns the layers a collection holds into flat, interned structure, in passes that
//! are each linear in the number of tasks and independent of the number of layers:
//!
//! 1. **collect**: walk the reachable layers once, indexing every task by key (first one wins,
//!    so identical pure calls built twice become one task);
//! 2. **cull**: a breadth-first walk from the requested outputs, giving each needed task a
//!    `u32` id in discovery order and its dependencies as a flat (CSR) list of ids; a key that
//!    nothing produces is reported with the task that needs it;
//! 3. **check**: Kahn's algorithm counts the tasks that can ever run; if some cannot, the
//!    graph has a cycle, which is found (petgraph's Tarjan SCC) and reported key by key;
//! 4. **fuse** (optional): linear chains (`a → b` where `a` feeds only `b` and `b` needs only
//!    `a`) become one task, see [`super::fuse`];
//! 5. **order**: static priorities, see [`super::order`].
//!
//! Invariants after freezing: ids are `0..len()`; every dependency id is a valid id; the graph
//! is acyclic; every task is needed by some output.

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use super::task::{Layer, Task, TaskMeta, TaskOp};
use super::{Key, fuse, order};
use crate::error::{Error, Result};

/// A task's index in a frozen graph.
pub type TaskId = u32;

/// A frozen, culled, checked task graph with interned ids and flat dependency lists.
pub struct TaskGraph {
    pub(crate) keys: Vec<Key>,
    pub(crate) ops: Vec<TaskOp>,
    pub(crate) meta: Vec<TaskMeta>,
    pub(crate) dep_offsets: Vec<u32>,
    pub(crate) dep_ids: Vec<TaskId>,
    pub(crate) dependent_offsets: Vec<u32>,
    pub(crate) dependent_ids: Vec<TaskId>,
    pub(crate) outputs: Vec<TaskId>,
    pub(crate) is_output: Vec<bool>,
    pub(crate) priority: Vec<u32>,
    /// How many original tasks each task stands for (1 unless fused).
    pub(crate) fused_count: Vec<u32>,
}

/// How to freeze a graph.
#[derive(Clone, Copy, Debug)]
pub struct FreezeOptions {
    /// Fuse linear chains into single tasks (default: true).
    pub fuse: bool,
}

impl Default for FreezeOptions {
    fn default() -> Self {
        FreezeOptions { fuse: true }
    }
}

impl TaskGraph {
    /// Freezes the tasks reachable from `layers` that `outputs` need.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use chunkflow::graph::{FreezeOptions, Layer, Task, TaskGraph, value};
    /// let tasks = vec![
    ///     Task::data("x", 20i32),
    ///     Task::call("y", ["x"], |i| Ok(value(*i[0].downcast_ref::<i32>().unwrap() + 1))),
    ///     Task::call("unused", ["x"], |i| Ok(i[0].clone())),
    /// ];
    /// let layer = Arc::new(Layer::new("raw", tasks, vec![]));
    /// let g = TaskGraph::from_layers(&[layer], &["y".into()], FreezeOptions { fuse: false }).unwrap();
    /// assert_eq!(g.len(), 2); // "unused" was culled
    /// ```
    pub fn from_layers(
        layers: &[Arc<Layer>],
        outputs: &[Key],
        options: FreezeOptions,
    ) -> Result<TaskGraph> {
        let index = collect(layers);
        let graph = cull(&index, outputs)?;
        check_acyclic(&graph)?;
        let mut graph = if options.fuse {
            fuse::fuse_linear(graph)
        } else {
            graph
        };
        graph.priority = order::priorities(&graph);
        Ok(graph)
    }

    /// Freezes a raw list of tasks (a dask-style dict graph) for the given outputs.
    pub fn from_tasks(
        tasks: impl IntoIterator<Item = Task>,
        outputs: &[Key],
        options: FreezeOptions,
    ) -> Result<TaskGraph> {
        let layer = Arc::new(Layer::new("tasks", tasks.into_iter().collect(), vec![]));
        Self::from_layers(&[layer], outputs, options)
    }

    /// The number of tasks.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the graph has no tasks.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// A task's key.
    pub fn key(&self, id: TaskId) -> &Key {
        &self.keys[id as usize]
    }

    /// All keys, indexed by id.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// What a task does.
    pub fn op(&self, id: TaskId) -> &TaskOp {
        &self.ops[id as usize]
    }

    /// A task's kind and size estimate.
    pub fn meta(&self, id: TaskId) -> TaskMeta {
        self.meta[id as usize]
    }

    /// The ids a task depends on, in the order its function receives them.
    pub fn deps(&self, id: TaskId) -> &[TaskId] {
        let i = id as usize;
        &self.dep_ids[self.dep_offsets[i] as usize..self.dep_offsets[i + 1] as usize]
    }

    /// The ids that depend on a task.
    pub fn dependents(&self, id: TaskId) -> &[TaskId] {
        let i = id as usize;
        &self.dependent_ids
            [self.dependent_offsets[i] as usize..self.dependent_offsets[i + 1] as usize]
    }

    /// The requested outputs, in request order.
    pub fn outputs(&self) -> &[TaskId] {
        &self.outputs
    }

    /// Whether a task is a requested output (its result is kept until the end).
    pub fn is_output(&self, id: TaskId) -> bool {
        self.is_output[id as usize]
    }

    /// A task's static priority: lower runs earlier when several tasks are ready.
    pub fn priority(&self, id: TaskId) -> u32 {
        self.priority[id as usize]
    }

    /// How many original tasks this task stands for (more than 1 after fusion).
    pub fn fused_count(&self, id: TaskId) -> u32 {
        self.fused_count[id as usize]
    }

    /// All task ids sorted by static priority: the order a sequential executor runs them in.
    pub fn static_order(&self) -> Vec<TaskId> {
        let mut order = vec![0; self.len()];
        for (id, &p) in self.priority.iter().enumerate() {
            order[p as usize] = id as TaskId;
        }
        order
    }

    /// The tasks with no dependencies.
    pub fn roots(&self) -> impl Iterator<Item = TaskId> + '_ {
        (0..self.len() as TaskId).filter(|&id| self.deps(id).is_empty())
    }

    /// The graph's structure as a petgraph graph (node weights are task ids, edges point from a
    /// dependency to its dependent), for users who want petgraph's algorithms.
    pub fn to_petgraph(&self) -> petgraph::graph::DiGraph<TaskId, ()> {
        let mut g = petgraph::graph::DiGraph::with_capacity(self.len(), self.dep_ids.len());
        for id in 0..self.len() as TaskId {
            g.add_node(id);
        }
        for id in 0..self.len() as TaskId {
            for &d in self.deps(id) {
                g.add_edge(
                    petgraph::graph::NodeIndex::new(d as usize),
                    petgraph::graph::NodeIndex::new(id as usize),
                    (),
                );
            }
        }
        g
    }
}

/// Indexes every task reachable from `layers` by key; the first task seen for a key wins.
fn collect(layers: &[Arc<Layer>]) -> FxHashMap<&Key, &Task> {
    let mut seen: FxHashSet<*const Layer> = FxHashSet::default();
    let mut stack: Vec<&Layer> = Vec::new();
    let mut index: FxHashMap<&Key, &Task> = FxHashMap::default();
    for layer in layers {
        if seen.insert(Arc::as_ptr(layer)) {
            stack.push(layer);
        }
    }
    while let Some(layer) = stack.pop() {
        for task in layer.tasks() {
            index.entry(&task.key).or_insert(task);
        }
        for dep in layer.dependencies() {
            if seen.insert(Arc::as_ptr(dep)) {
                stack.push(dep);
            }
        }
    }
    index
}

/// Keeps only what `outputs` need, interning keys to ids in breadth-first discovery order.
fn cull(index: &FxHashMap<&Key, &Task>, outputs: &[Key]) -> Result<TaskGraph> {
    let mut ids: FxHashMap<&Key, TaskId> = FxHashMap::default();
    let mut order: Vec<&Task> = Vec::new();
    let mut output_ids = Vec::with_capacity(outputs.len());
    for key in outputs {
        let task = index
            .get(key)
            .ok_or_else(|| Error::UnknownOutput { key: key.clone() })?;
        let id = *ids.entry(&task.key).or_insert_with(|| {
            order.push(task);
            (order.len() - 1) as TaskId
        });
        output_ids.push(id);
    }

    let mut dep_offsets = vec![0u32];
    let mut dep_ids: Vec<TaskId> = Vec::new();
    let mut next = 0;
    while next < order.len() {
        let task = order[next];
        next += 1;
        for dep in &task.deps {
            let dep_task = index.get(dep).ok_or_else(|| Error::MissingDependency {
                task: task.key.clone(),
                missing: dep.clone(),
            })?;
            let id = *ids.entry(&dep_task.key).or_insert_with(|| {
                order.push(dep_task);
                (order.len() - 1) as TaskId
            });
            dep_ids.push(id);
        }
        dep_offsets.push(dep_ids.len() as u32);
    }

    let n = order.len();
    if n > TaskId::MAX as usize {
        return Err(Error::InvalidArgument(format!(
            "graph has {n} tasks, more than the {} a graph can hold",
            TaskId::MAX
        )));
    }
    let (dependent_offsets, dependent_ids) = invert(n, &dep_offsets, &dep_ids);
    let mut is_output = vec![false; n];
    for &o in &output_ids {
        is_output[o as usize] = true;
    }
    Ok(TaskGraph {
        keys: order.iter().map(|t| t.key.clone()).collect(),
        ops: order.iter().map(|t| t.op.clone()).collect(),
        meta: order.iter().map(|t| t.meta).collect(),
        dep_offsets,
        dep_ids,
        dependent_offsets,
        dependent_ids,
        outputs: output_ids,
        is_output,
        priority: Vec::new(),
        fused_count: vec![1; n],
    })
}

/// Builds the reverse adjacency (dependents) of a CSR dependency list.
pub(crate) fn invert(n: usize, dep_offsets: &[u32], dep_ids: &[TaskId]) -> (Vec<u32>, Vec<TaskId>) {
    let mut counts = vec![0u32; n + 1];
    for &d in dep_ids {
        counts[d as usize + 1] += 1;
    }
    for i in 0..n {
        counts[i + 1] += counts[i];
    }
    let offsets = counts.clone();
    let mut fill = counts;
    let mut dependents = vec![0; dep_ids.len()];
    for id in 0..n {
        for &d in &dep_ids[dep_offsets[id] as usize..dep_offsets[id + 1] as usize] {
            dependents[fill[d as usize] as usize] = id as TaskId;
            fill[d as usize] += 1;
        }
    }
    (offsets, dependents)
}

/// Fails with [`Error::Cycle`] naming the keys on one cycle if the graph is not a DAG.
fn check_acyclic(g: &TaskGraph) -> Result<()> {
    let n = g.len();
    let mut waiting: Vec<u32> = (0..n as TaskId).map(|id| g.deps(id).len() as u32).collect();
    let mut ready: Vec<TaskId> = (0..n as TaskId)
        .filter(|&id| waiting[id as usize] == 0)
        .collect();
    let mut done = 0;
    while let Some(id) = ready.pop() {
        done += 1;
        for &d in g.dependents(id) {
            waiting[d as usize] -= 1;
            if waiting[d as usize] == 0 {
                ready.push(d);
            }
        }
    }
    if done == n {
        return Ok(());
    }
    Err(Error::Cycle {
        cycle: find_cycle(g, &waiting),
    })
}

/// Finds one cycle among the tasks Kahn's algorithm could not run (`waiting > 0`).
fn find_cycle(g: &TaskGraph, waiting: &[u32]) -> Vec<Key> {
    use petgraph::graph::{DiGraph, NodeIndex};
    let stuck: Vec<TaskId> = (0..g.len() as TaskId)
        .filter(|&id| waiting[id as usize] > 0)
        .collect();
    let mut local: FxHashMap<TaskId, NodeIndex> = FxHashMap::default();
    let mut pg: DiGraph<TaskId, ()> = DiGraph::new();
    for &id in &stuck {
        local.insert(id, pg.add_node(id));
    }
    for &id in &stuck {
        for &d in g.deps(id) {
            if let Some(&dn) = local.get(&d) {
                pg.add_edge(local[&id], dn, ());
            }
        }
    }
    // A strongly connected component with more than one node, or a self-loop, holds a cycle.
    let scc = petgraph::algo::tarjan_scc(&pg)
        .into_iter()
        .find(|c| c.len() > 1 || pg.contains_edge(c[0], c[0]))
        .expect("Kahn's algorithm left tasks, so there is a cycle");
    let members: FxHashSet<NodeIndex> = scc.iter().copied().collect();
    // Walk dependency edges inside the component until a node repeats.
    let mut path = vec![scc[0]];
    let mut pos: FxHashMap<NodeIndex, usize> = FxHashMap::default();
    pos.insert(scc[0], 0);
    loop {
        let here = *path.last().unwrap();
        let next = pg
            .neighbors(here)
            .find(|n| members.contains(n))
            .expect("every node of a cycle component has an edge inside it");
        if let Some(&start) = pos.get(&next) {
            return path[start..]
                .iter()
                .map(|&n| g.key(pg[n]).clone())
                .collect();
        }
        pos.insert(next, path.len());
        path.push(next);
    }
}
