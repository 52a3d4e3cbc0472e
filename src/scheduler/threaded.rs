//! [`Threaded`]: the work-stealing executor (the default).
//!
//! ## State (one [`Run`] per `execute` call; dask's `get_async` names)
//! - `waiting[t]`: dependencies of `t` not finished yet; `t` is *ready* when it reaches 0.
//! - `results[t]`: a [`ResultSlot`] holding the finished value of `t` while someone still needs
//!   it, and `waiting_data` (dependents of `t` not started yet). Both live under one lock: a
//!   consumer decrements the count and clones the value in one step, and the last one takes the
//!   value out (unless `t` is an output). Intermediates are thus freed as soon as nothing needs
//!   them, and the last consumer can reuse the value without copying.
//! - per-worker LIFO deques (crossbeam-deque) of ready tasks, the global `injector` of root tasks
//!   in priority order, and `unfinished` (tasks not yet done).
//!
//! ## A task's life
//! waiting → ready (pushed on the finishing worker's deque, or the injector for roots) →
//! running → done (result stored, dependents' `waiting` decremented) → released (taken by its
//! last dependent). A failure (an `Err` or a panic) records the first error and sets `stop`.
//!
//! ## The worker loop
//! [`Run::find_task`]: pop the own deque (newest first: depth-first, finishes what was started),
//! else steal from peers (their oldest), else take the next root from the injector, else park.
//! Preferring peers over new roots keeps memory low: continuations consume data, roots produce
//! it. Newly ready dependents are pushed so the one with the best static priority is popped
//! first. Idle workers park on a condition variable (no spinning); a worker that leaves surplus
//! work wakes one sleeper, and a thief that finds more work behind what it stole wakes the next.
//!
//! ## I/O threads
//! With [`Threaded::with_io_threads`], tasks of kind [`TaskKind::Read`] run on their own pool of
//! I/O threads, fed in priority order from the `io` queue: reads in flight are then bounded by
//! the I/O thread count, not the core count (what high-latency stores need), while computation
//! stays on the workers. Dependents a read makes ready go to the global injector for the workers.
//!
//! ## Memory budget
//! With [`Threaded::with_memory_limit`], a task starts only while the bytes it will hold fit in
//! what the budget has left (see [`super::memory`]); tasks that do not fit wait, in priority
//! order, for memory to come back. Without a limit this costs one branch per task.
//!
//! ## Stopping
//! When `unfinished` reaches 0, or on the first failure, `stop` is set and every sleeper woken.
//! Workers check `stop` before each task, so running tasks finish and no new ones start; the
//! call then returns the outputs, or the recorded error naming the task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering, fence};
use std::time::Instant;

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use parking_lot::{Condvar, Mutex};
use smallvec::SmallVec;

use super::callbacks::notify;
use super::memory::Budget;
use super::{Callback, Executor, TaskEvent, run_op};
use crate::error::{Error, Result};
use crate::graph::{Inputs, TaskGraph, TaskId, TaskKind, Value};

/// Runs a graph on a pool of worker threads with work stealing.
///
/// `Threaded::default()` uses all available cores; [`Threaded::new`] sets the count. The
/// calling thread is one of the workers.
#[derive(Clone, Copy, Debug)]
pub struct Threaded {
    threads: usize,
    io_threads: usize,
    memory_limit: Option<u64>,
}

impl Threaded {
    /// An executor with `threads` workers (at least 1).
    pub fn new(threads: usize) -> Self {
        Threaded {
            threads: threads.max(1),
            io_threads: 0,
            memory_limit: None,
        }
    }

    /// Runs read tasks ([`TaskKind::Read`]) on `n` extra I/O threads, so up to `n` reads are in
    /// flight whatever the core count (0, the default, runs them on the workers).
    ///
    /// ```
    /// use chunkflow::Threaded;
    /// let ex = Threaded::new(2).with_io_threads(32);
    /// assert_eq!(ex.io_threads(), 32);
    /// ```
    pub fn with_io_threads(mut self, n: usize) -> Self {
        self.io_threads = n;
        self
    }

    /// The number of I/O threads.
    pub fn io_threads(&self) -> usize {
        self.io_threads
    }

    /// Admits tasks only while the bytes they declare (result plus working memory, see
    /// [`crate::graph::TaskMeta`]) fit in `bytes`, whatever the thread count. A single task
    /// larger than the limit still runs, alone.
    ///
    /// ```
    /// use chunkflow::Threaded;
    /// let ex = Threaded::new(8).with_memory_limit(256 << 20);
    /// assert_eq!(ex.memory_limit(), Some(256 << 20));
    /// ```
    pub fn with_memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// The memory budget, if any.
    pub fn memory_limit(&self) -> Option<u64> {
        self.memory_limit
    }
}

impl Default for Threaded {
    fn default() -> Self {
        Threaded::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl Executor for Threaded {
    fn execute(&self, graph: &TaskGraph, callbacks: &[Arc<dyn Callback>]) -> Result<Vec<Value>> {
        let workers = self.threads.min(graph.len()).max(1);
        let locals: Vec<Worker<TaskId>> = (0..workers).map(|_| Worker::new_lifo()).collect();
        let reads = (0..graph.len() as TaskId)
            .filter(|&id| graph.meta(id).kind == TaskKind::Read)
            .count();
        let io_threads = self.io_threads.min(reads);
        let run = Run::new(
            graph,
            callbacks,
            &locals,
            self.memory_limit.map(Budget::new),
            io_threads > 0,
        );
        notify(callbacks, "on_start", |c| c.on_start(graph, workers))?;
        if graph.is_empty() {
            run.stop.store(true, Ordering::Release);
        }
        std::thread::scope(|scope| {
            let mut locals = locals.into_iter();
            let mine = locals.next().expect("at least one worker");
            for (i, local) in locals.enumerate() {
                let run = &run;
                std::thread::Builder::new()
                    .name(format!("chunkflow-worker-{}", i + 1))
                    .spawn_scoped(scope, move || run.worker_loop(i + 1, &local))
                    .expect("spawning a worker thread");
            }
            for i in 0..io_threads {
                let run = &run;
                std::thread::Builder::new()
                    .name(format!("chunkflow-io-{i}"))
                    .spawn_scoped(scope, move || run.io_loop(workers + i))
                    .expect("spawning an I/O thread");
            }
            run.worker_loop(0, &mine);
        });
        let failure = run.failure.lock().take();
        let finished = notify(callbacks, "on_finish", |c| {
            c.on_finish(graph, failure.is_some())
        });
        if let Some(e) = failure {
            return Err(e);
        }
        finished?;
        Ok(graph
            .outputs()
            .iter()
            .map(|&o| {
                let slot = run.results[o as usize].lock();
                slot.value.clone().expect("outputs are kept")
            })
            .collect())
    }

    fn parallelism(&self) -> usize {
        self.threads
    }
}

/// The shared state of one execution.
struct Run<'g> {
    graph: &'g TaskGraph,
    callbacks: &'g [Arc<dyn Callback>],
    waiting: Vec<AtomicU32>,
    results: Vec<Mutex<ResultSlot>>,
    injector: Injector<TaskId>,
    stealers: Vec<Stealer<TaskId>>,
    unfinished: AtomicUsize,
    stop: AtomicBool,
    failure: Mutex<Option<Error>>,
    sleep: Sleep,
    budget: Option<Budget>,
    /// Read tasks waiting for an I/O thread (when I/O threads are on), and their parking.
    io: Option<(Injector<TaskId>, Sleep)>,
}

impl Sleep {
    fn new() -> Self {
        Sleep {
            lock: Mutex::new(()),
            cv: Condvar::new(),
            sleepers: AtomicUsize::new(0),
        }
    }

    /// Wakes one sleeper, if any (the caller made its work visible, then fenced).
    fn wake_one(&self) {
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock();
            self.cv.notify_one();
        }
    }

    fn wake_all(&self) {
        let _guard = self.lock.lock();
        self.cv.notify_all();
    }

    /// Parks until woken, unless `ready()` (checked after registering) says there is work.
    fn park(&self, ready: impl Fn() -> bool) {
        let mut guard = self.lock.lock();
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        if !ready() {
            self.cv.wait(&mut guard);
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A task's result and the number of its dependents that have not taken it yet.
struct ResultSlot {
    value: Option<Value>,
    waiting_data: u32,
}

/// Parking for idle workers: a sleeper registers, re-checks for work, then waits; a waker that
/// sees a registered sleeper notifies under the lock, so no wake-up is lost.
struct Sleep {
    lock: Mutex<()>,
    cv: Condvar,
    sleepers: AtomicUsize,
}

impl<'g> Run<'g> {
    fn new(
        graph: &'g TaskGraph,
        callbacks: &'g [Arc<dyn Callback>],
        locals: &[Worker<TaskId>],
        budget: Option<Budget>,
        io: bool,
    ) -> Self {
        let n = graph.len();
        let ids = 0..n as TaskId;
        let run = Run {
            graph,
            callbacks,
            waiting: ids
                .clone()
                .map(|id| AtomicU32::new(graph.deps(id).len() as u32))
                .collect(),
            results: ids
                .map(|id| {
                    Mutex::new(ResultSlot {
                        value: None,
                        waiting_data: graph.dependents(id).len() as u32,
                    })
                })
                .collect(),
            injector: Injector::new(),
            stealers: locals.iter().map(Worker::stealer).collect(),
            unfinished: AtomicUsize::new(n),
            stop: AtomicBool::new(false),
            failure: Mutex::new(None),
            sleep: Sleep::new(),
            budget,
            io: io.then(|| (Injector::new(), Sleep::new())),
        };
        let mut roots: Vec<TaskId> = graph.roots().collect();
        roots.sort_unstable_by_key(|&id| graph.priority(id));
        for id in roots {
            run.schedule(id, None);
        }
        run
    }

    /// Queues a ready task: reads to the I/O queue when I/O threads are on, others to the
    /// caller's deque (a worker) or the injector (an I/O thread, a root, a readmission).
    fn schedule(&self, id: TaskId, local: Option<&Worker<TaskId>>) {
        match (&self.io, local) {
            (Some((queue, sleep)), _) if self.graph.meta(id).kind == TaskKind::Read => {
                queue.push(id);
                fence(Ordering::SeqCst);
                sleep.wake_one();
            }
            (_, Some(local)) => local.push(id),
            (_, None) => {
                self.injector.push(id);
                fence(Ordering::SeqCst);
                self.sleep.wake_one();
            }
        }
    }

    /// The loop of an I/O thread: run reads from the I/O queue, park when there are none.
    fn io_loop(&self, me: usize) {
        let (queue, sleep) = self
            .io
            .as_ref()
            .expect("I/O threads run only with an I/O queue");
        while !self.stop.load(Ordering::Acquire) {
            match queue.steal() {
                Steal::Success(id) => self.admit_and_run(id, me, None),
                Steal::Retry => {}
                Steal::Empty => {
                    sleep.park(|| self.stop.load(Ordering::SeqCst) || !queue.is_empty())
                }
            }
        }
    }

    /// Runs a task once the memory budget (if any) admits it, else defers it.
    fn admit_and_run(&self, id: TaskId, me: usize, local: Option<&Worker<TaskId>>) {
        match &self.budget {
            None => self.run_task(id, me, local),
            Some(b) if b.try_admit(Budget::cost(self.graph, id), !self.has_queued_work()) => {
                self.run_task(id, me, local)
            }
            Some(b) => {
                b.defer(self.graph.priority(id), id);
                self.readmit();
            }
        }
    }

    fn worker_loop(&self, me: usize, local: &Worker<TaskId>) {
        while !self.stop.load(Ordering::Acquire) {
            match self.find_task(me, local) {
                Some(id) => self.admit_and_run(id, me, Some(local)),
                None => self
                    .sleep
                    .park(|| self.stop.load(Ordering::SeqCst) || self.has_visible_work()),
            }
        }
    }

    /// Own deque first, then peers' oldest work, then the next root.
    fn find_task(&self, me: usize, local: &Worker<TaskId>) -> Option<TaskId> {
        if let Some(id) = local.pop() {
            return Some(id);
        }
        loop {
            let n = self.stealers.len();
            let stolen = (1..n)
                .map(|k| self.stealers[(me + k) % n].steal())
                .collect::<Steal<TaskId>>()
                .or_else(|| self.injector.steal());
            match stolen {
                Steal::Success(id) => {
                    if self.has_visible_work() {
                        self.sleep.wake_one();
                    }
                    return Some(id);
                }
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }

    fn run_task(&self, id: TaskId, me: usize, local: Option<&Worker<TaskId>>) {
        let g = self.graph;
        let (inputs, freed) = self.gather_inputs(id);
        let timing = !self.callbacks.is_empty();
        let start = Instant::now();
        if timing
            && let Err(e) = notify(self.callbacks, "on_task_start", |c| {
                c.on_task_start(g, id, me)
            })
        {
            return self.fail(e);
        }
        let outcome = run_op(g, id, inputs);
        if timing {
            let event = TaskEvent {
                id,
                worker: me,
                start,
                end: Instant::now(),
                failed: outcome.is_err(),
            };
            if let Err(e) = notify(self.callbacks, "on_task_finish", |c| {
                c.on_task_finish(g, &event)
            }) {
                return self.fail(e);
            }
        }
        match outcome {
            Ok(v) => self.finish_task(id, v, local, freed),
            Err(e) => self.fail(e),
        }
    }

    /// Collects a task's inputs; the last consumer of a result takes it out of `results`.
    /// Also returns the bytes of the results taken (released once this task is done).
    fn gather_inputs(&self, id: TaskId) -> (Inputs, u64) {
        let g = self.graph;
        let mut inputs = Inputs::with_capacity(g.deps(id).len());
        let mut freed = 0;
        for &d in g.deps(id) {
            let mut slot = self.results[d as usize].lock();
            slot.waiting_data -= 1;
            let v = if slot.waiting_data == 0 && !g.is_output(d) {
                freed += g.meta(d).nbytes;
                slot.value.take()
            } else {
                slot.value.clone()
            };
            inputs.push(v.expect("a ready task's dependencies have finished"));
        }
        (inputs, freed)
    }

    fn finish_task(&self, id: TaskId, value: Value, local: Option<&Worker<TaskId>>, freed: u64) {
        let g = self.graph;
        let dependents = g.dependents(id);
        let kept = !dependents.is_empty() || g.is_output(id);
        if kept {
            self.results[id as usize].lock().value = Some(value);
        } else {
            drop(value);
        }
        let mut ready: SmallVec<[TaskId; 8]> = SmallVec::new();
        for &d in dependents {
            if self.waiting[d as usize].fetch_sub(1, Ordering::AcqRel) == 1 {
                ready.push(d);
            }
        }
        if !ready.is_empty() {
            // Best priority pushed last, so it is popped first.
            ready.sort_unstable_by_key(|&d| std::cmp::Reverse(g.priority(d)));
            for &d in &ready {
                self.schedule(d, local);
            }
            if local.is_some_and(|l| l.len() > 1) {
                fence(Ordering::SeqCst);
                self.sleep.wake_one();
            }
        }
        // The budget learns the task finished only once the dependents it made ready are
        // queued, so a worker never sees "nothing running, nothing queued" in between and
        // admits an over-budget task while those dependents could release memory.
        if let Some(b) = &self.budget {
            let meta = g.meta(id);
            b.finish(freed + meta.working_bytes + if kept { 0 } else { meta.nbytes });
            self.readmit();
        }
        if self.unfinished.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.stop_all();
        }
    }

    /// Moves deferred tasks that fit the budget again back to the injector.
    fn readmit(&self) {
        let Some(b) = &self.budget else { return };
        for id in b.readmissible(self.graph, !self.has_queued_work()) {
            self.schedule(id, None);
        }
    }

    fn fail(&self, error: Error) {
        let mut failure = self.failure.lock();
        if failure.is_none() {
            *failure = Some(error);
        }
        drop(failure);
        self.stop_all();
    }

    fn stop_all(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.sleep.wake_all();
        if let Some((_, sleep)) = &self.io {
            sleep.wake_all();
        }
    }

    fn has_visible_work(&self) -> bool {
        !self.injector.is_empty() || self.stealers.iter().any(|s| !s.is_empty())
    }

    /// Whether any task waits in a queue: the workers' or the I/O threads'.
    fn has_queued_work(&self) -> bool {
        self.has_visible_work() || self.io.as_ref().is_some_and(|(q, _)| !q.is_empty())
    }
}
