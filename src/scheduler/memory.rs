//! Memory-budget admission for the threaded executor: a task may start only while the bytes it
//! will hold (its projected result plus its working memory, from [`TaskMeta`]) fit in what the
//! budget has left.
//!
//! Reserved bytes are given back in two steps: the working memory when the task finishes, the
//! result's bytes when the result is released (its last consumer has finished with it, or at
//! once if nothing needs it). A task that does not fit is *deferred*; deferred tasks are
//! re-admitted in priority order as memory comes back.
//!
//! Progress is guaranteed: when nothing is running and no other task is queued (the caller
//! says so: `stalled`), the best deferred task is admitted even if it does not fit (a single
//! task larger than the budget runs alone rather than never, and held results whose consumers
//! need memory cannot block the run). While other tasks are queued the budget holds: they may
//! be the consumers that release memory. The deferring worker re-checks after deferring, so a
//! release that raced with the deferral cannot strand a task.
//!
//! [`TaskMeta`]: crate::graph::TaskMeta

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::graph::{TaskGraph, TaskId};

/// The budget's state during one run.
pub(crate) struct Budget {
    limit: u64,
    in_use: AtomicU64,
    running: AtomicUsize,
    deferred: Mutex<BinaryHeap<Reverse<(u32, TaskId)>>>,
}

impl Budget {
    pub(crate) fn new(limit: u64) -> Self {
        Budget {
            limit,
            in_use: AtomicU64::new(0),
            running: AtomicUsize::new(0),
            deferred: Mutex::new(BinaryHeap::new()),
        }
    }

    /// Bytes a task reserves when it starts.
    pub(crate) fn cost(g: &TaskGraph, id: TaskId) -> u64 {
        let m = g.meta(id);
        m.nbytes + m.working_bytes
    }

    /// Reserves `cost` bytes if they fit, or if nothing is running and the caller sees no
    /// other queued task (`stalled`).
    pub(crate) fn try_admit(&self, cost: u64, stalled: bool) -> bool {
        let mut current = self.in_use.load(Ordering::SeqCst);
        loop {
            let idle = stalled && self.running.load(Ordering::SeqCst) == 0;
            if current.saturating_add(cost) > self.limit && !idle {
                return false;
            }
            match self.in_use.compare_exchange_weak(
                current,
                current.saturating_add(cost),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    self.running.fetch_add(1, Ordering::SeqCst);
                    return true;
                }
                Err(now) => current = now,
            }
        }
    }

    /// The admitted task finished; `bytes` of its reservation come back now.
    pub(crate) fn finish(&self, bytes: u64) {
        self.release(bytes);
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    /// Gives `bytes` back (a released result).
    pub(crate) fn release(&self, bytes: u64) {
        if bytes > 0 {
            self.in_use.fetch_sub(bytes, Ordering::SeqCst);
        }
    }

    pub(crate) fn defer(&self, priority: u32, id: TaskId) {
        self.deferred.lock().push(Reverse((priority, id)));
    }

    /// Deferred tasks that may fit now, best priority first: as many as fit in what is left,
    /// and at least one when nothing is running and no other task is queued (`stalled`).
    pub(crate) fn readmissible(&self, g: &TaskGraph, stalled: bool) -> Vec<TaskId> {
        let mut deferred = self.deferred.lock();
        let mut out = Vec::new();
        let mut free = self
            .limit
            .saturating_sub(self.in_use.load(Ordering::SeqCst));
        let idle = stalled && self.running.load(Ordering::SeqCst) == 0;
        while let Some(&Reverse((_, id))) = deferred.peek() {
            let cost = Self::cost(g, id);
            if cost <= free || (idle && out.is_empty()) {
                deferred.pop();
                free = free.saturating_sub(cost);
                out.push(id);
            } else {
                break;
            }
        }
        out
    }

    /// Bytes reserved right now (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> u64 {
        self.in_use.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_within_limit_and_always_when_idle() {
        let b = Budget::new(100);
        assert!(b.try_admit(60, true));
        assert!(
            !b.try_admit(60, true),
            "over the limit while another task runs"
        );
        assert!(b.try_admit(40, true));
        b.finish(60);
        b.finish(40);
        assert_eq!(b.in_use(), 0);
        assert!(
            b.try_admit(1000, true),
            "a lone task larger than the budget still runs"
        );
        b.finish(1000);
        assert!(b.try_admit(20, true));
        b.finish(0); // a result of 20 bytes is still held
        assert!(
            !b.try_admit(90, false),
            "over the limit while other tasks are queued (they may release memory)"
        );
        assert!(b.try_admit(90, true), "nothing queued or running: progress");
    }
}
