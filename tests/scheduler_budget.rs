//! Memory-budget admission in the threaded executor: tasks start only while their declared
//! bytes fit, whatever the thread count; an over-budget task still runs (alone); no hang.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chunkflow::graph::{FreezeOptions, Key, Task, TaskGraph, value};
use chunkflow::{Executor, Threaded};

/// Counts tasks running at once and remembers the most.
#[derive(Default)]
struct Concurrency {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Concurrency {
    fn enter(&self) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

fn watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the run finished within 60 s (no hang)")
}

/// `n` independent copy tasks of `bytes` working memory each, summed by one task.
fn copies(n: usize, bytes: u64, c: &Arc<Concurrency>) -> (Vec<Task>, Key) {
    let mut tasks = Vec::new();
    let mut keys = Vec::new();
    for i in 0..n {
        let c = c.clone();
        let key = Key::chunk("copy", &[i]);
        keys.push(key.clone());
        tasks.push(
            Task::call(key, Vec::<Key>::new(), move |_| {
                c.enter();
                std::thread::sleep(Duration::from_millis(2));
                c.leave();
                Ok(value(1usize))
            })
            .with_working_bytes(bytes),
        );
    }
    tasks.push(Task::call("total", keys, |inputs| {
        Ok(value(
            inputs
                .iter()
                .map(|v| *v.downcast_ref::<usize>().unwrap())
                .sum::<usize>(),
        ))
    }));
    (tasks, Key::new("total"))
}

#[test]
fn budget_bounds_concurrent_working_memory() {
    watchdog(|| {
        let c = Arc::new(Concurrency::default());
        let (tasks, out) = copies(60, 10, &c);
        let g = TaskGraph::from_tasks(tasks, &[out], FreezeOptions::default()).unwrap();
        let ex = Threaded::new(8).with_memory_limit(30);
        let v = ex.execute(&g, &[]).unwrap();
        assert_eq!(*v[0].downcast_ref::<usize>().unwrap(), 60);
        let max = c.max.load(Ordering::SeqCst);
        assert!(
            max <= 3,
            "at most 3 tasks of 10 bytes in a 30-byte budget, saw {max}"
        );
        assert!(max >= 2, "the budget allows parallelism, saw {max}");
    });
}

#[test]
fn a_task_larger_than_the_budget_runs_alone() {
    watchdog(|| {
        let c = Arc::new(Concurrency::default());
        let (tasks, out) = copies(10, 1000, &c);
        let g = TaskGraph::from_tasks(tasks, &[out], FreezeOptions::default()).unwrap();
        let v = Threaded::new(4)
            .with_memory_limit(100)
            .execute(&g, &[])
            .unwrap();
        assert_eq!(*v[0].downcast_ref::<usize>().unwrap(), 10);
        assert_eq!(c.max.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn held_results_count_until_their_consumer_is_done() {
    watchdog(|| {
        // Each "load" produces a 10-byte result consumed by its own "use" task; with a 20-byte
        // budget at most two loaded results (or a load and a use) exist at once.
        let live = Arc::new(Concurrency::default());
        let mut tasks = Vec::new();
        let mut uses = Vec::new();
        for i in 0..40 {
            let l = live.clone();
            tasks.push(
                Task::call(Key::chunk("load", &[i]), Vec::<Key>::new(), move |_| {
                    l.enter();
                    Ok(value(i))
                })
                .with_nbytes(10),
            );
            let l = live.clone();
            tasks.push(Task::call(
                Key::chunk("use", &[i]),
                [Key::chunk("load", &[i])],
                move |_| {
                    std::thread::sleep(Duration::from_millis(1));
                    l.leave();
                    Ok(value(1usize))
                },
            ));
            uses.push(Key::chunk("use", &[i]));
        }
        tasks.push(Task::call("total", uses, |i| Ok(value(i.len()))));
        let g =
            TaskGraph::from_tasks(tasks, &["total".into()], FreezeOptions { fuse: false }).unwrap();
        let v = Threaded::new(8)
            .with_memory_limit(20)
            .execute(&g, &[])
            .unwrap();
        assert_eq!(*v[0].downcast_ref::<usize>().unwrap(), 40);
        let max = live.max.load(Ordering::SeqCst);
        assert!(max <= 2, "at most 2 loaded results alive, saw {max}");
    });
}
