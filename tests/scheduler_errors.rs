//! How executors fail: the first error or panic stops new work and comes back as an error that
//! names the failing task, with no hang and no lost error.
//!
//! Covers a task returning `Err` (`try_delayed` and raw tasks) → [`Error::TaskFailed`], a
//! panicking task → [`Error::TaskPanicked`], a cycle → [`Error::Cycle`] listing exactly the keys
//! on it, a missing dependency → [`Error::MissingDependency`] naming the task and the key, an
//! unknown output → [`Error::UnknownOutput`], and a wrong output type → [`Error::TypeMismatch`];
//! each under `Sequential` and `Threaded` (1, 2 and 8 threads), fused and unfused, checking the
//! variant and that the message names the key. Also: after the first failure no new task
//! starts, several simultaneous failures still give one error naming one of them, and an error
//! deep inside a fused chain names the step that failed, not the chain's last key.
//!
//! Every test runs its body under a watchdog: a hang fails the test after 30 s instead of
//! blocking the suite.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::Duration;

use chunkflow::graph::{FreezeOptions, Key, Layer, Task, TaskGraph, TaskId, value};
use chunkflow::prelude::*;
use chunkflow::scheduler::{Callback, TaskEvent};

const WATCHDOG: Duration = Duration::from_secs(30);

/// Runs `body` on its own thread and fails the test if it takes longer than [`WATCHDOG`].
/// A panic in `body` is passed on unchanged.
fn watchdog(body: impl FnOnce() + Send + 'static) {
    let (done, finished) = channel();
    let handle = std::thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(WATCHDOG) {
        Ok(()) | Err(RecvTimeoutError::Disconnected) => {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(RecvTimeoutError::Timeout) => {
            panic!("the test body did not finish within {WATCHDOG:?}: a hang")
        }
    }
}

/// Every executor under test, fused and unfused.
fn configs() -> Vec<(String, ComputeOptions)> {
    let mut out = Vec::new();
    for fuse in [false, true] {
        out.push((
            format!("sequential fuse={fuse}"),
            ComputeOptions::default().executor(Sequential).fuse(fuse),
        ));
        for n in [1, 2, 8] {
            out.push((
                format!("threaded({n}) fuse={fuse}"),
                ComputeOptions::default().threads(n).fuse(fuse),
            ));
        }
    }
    out
}

fn executors() -> Vec<(&'static str, Box<dyn Executor>)> {
    vec![
        ("sequential", Box::new(Sequential)),
        ("threaded(1)", Box::new(Threaded::new(1))),
        ("threaded(2)", Box::new(Threaded::new(2))),
        ("threaded(8)", Box::new(Threaded::new(8))),
    ]
}

/// Asserts the error's message names `key`.
fn assert_names(err: &Error, key: &Key, context: &str) {
    let msg = err.to_string();
    assert!(
        msg.contains(&key.to_string()),
        "{context}: message does not name {key}: {msg}"
    );
}

fn inc(x: i64) -> i64 {
    x + 1
}

fn total(xs: Vec<i64>) -> i64 {
    xs.iter().sum()
}

#[derive(Debug)]
struct NotPositive(i64);

impl std::fmt::Display for NotPositive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not positive", self.0)
    }
}

impl std::error::Error for NotPositive {}

fn check_positive(x: i64) -> Result<i64, NotPositive> {
    if x > 0 { Ok(x) } else { Err(NotPositive(x)) }
}

/// Records what executors report to callbacks.
#[derive(Default)]
struct Recorder {
    started: AtomicUsize,
    failed_events: AtomicUsize,
    finishes: AtomicUsize,
    finished_failed: AtomicBool,
}

impl Callback for Recorder {
    fn on_task_start(&self, _graph: &TaskGraph, _id: TaskId, _worker: usize) {
        self.started.fetch_add(1, Ordering::SeqCst);
    }
    fn on_task_finish(&self, _graph: &TaskGraph, event: &TaskEvent) {
        if event.failed {
            self.failed_events.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn on_finish(&self, _graph: &TaskGraph, failed: bool) {
        self.finishes.fetch_add(1, Ordering::SeqCst);
        self.finished_failed.store(failed, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// Task errors and panics
// ---------------------------------------------------------------------------------------------

#[test]
fn task_returning_err_is_task_failed_naming_the_task() {
    watchdog(|| {
        let a = delayed!(inc(-5));
        let bad = try_delayed(check_positive).call((&a,));
        let after = delayed!(inc(&bad));
        // Healthy siblings alongside.
        let fine: Vec<Delayed<i64>> = (0..50).map(|i| delayed!(inc(i))).collect();
        let mut parts = fine.clone();
        parts.push(after.clone());
        let sum = delayed!(total(parts));
        for (name, options) in configs() {
            let recorder = Arc::new(Recorder::default());
            let options = options.callback(recorder.clone());
            let err = sum.compute_with(&options).unwrap_err();
            match &err {
                Error::TaskFailed { key, source } => {
                    assert_eq!(key, bad.key(), "{name}");
                    assert_eq!(source.to_string(), "-4 is not positive", "{name}");
                }
                other => panic!("{name}: expected TaskFailed, got {other:?}"),
            }
            assert_eq!(err.key(), Some(bad.key()), "{name}");
            assert_names(&err, bad.key(), &name);
            assert!(
                err.to_string().contains("-4 is not positive"),
                "{name}: {err}"
            );
            assert!(std::error::Error::source(&err).is_some(), "{name}");
            assert_eq!(recorder.failed_events.load(Ordering::SeqCst), 1, "{name}");
            assert_eq!(recorder.finishes.load(Ordering::SeqCst), 1, "{name}");
            assert!(recorder.finished_failed.load(Ordering::SeqCst), "{name}");
            // Computing only the healthy part still works.
            let ok = chunkflow::compute_with(&fine, &options).unwrap();
            assert_eq!(ok, (1..=50).collect::<Vec<i64>>(), "{name}");
        }
    });
}

#[test]
fn raw_task_returning_err_is_task_failed() {
    watchdog(|| {
        let tasks = vec![
            Task::data("x", 1i64),
            Task::call("y", ["x"], |_| Err("the disk is on fire".into())),
            Task::call("z", ["y"], |i| Ok(i[0].clone())),
        ];
        for fuse in [false, true] {
            let g = TaskGraph::from_tasks(tasks.clone(), &["z".into()], FreezeOptions { fuse })
                .unwrap();
            for (name, ex) in executors() {
                let err = ex.execute(&g, &[]).unwrap_err();
                assert!(
                    matches!(&err, Error::TaskFailed { key, source }
                        if key.name() == "y" && source.to_string() == "the disk is on fire"),
                    "{name} fuse={fuse}: {err:?}"
                );
                assert_eq!(err.to_string(), "task y failed: the disk is on fire");
            }
        }
    });
}

fn explode_on_3(x: i64) -> i64 {
    if x == 3 {
        panic!("exploded on {x}");
    }
    x
}

fn explode_static(_: i64) -> i64 {
    panic!("static message")
}

fn explode_payload(_: i64) -> i64 {
    std::panic::panic_any(42u32)
}

#[test]
fn panicking_task_is_task_panicked_naming_the_task() {
    watchdog(|| {
        let parts: Vec<Delayed<i64>> = (0..20)
            .map(|i| delayed!(explode_on_3(delayed!(inc(i)))))
            .collect();
        let bad = parts[2].clone();
        let sum = delayed!(total(parts));
        for (name, options) in configs() {
            let err = sum.compute_with(&options).unwrap_err();
            match &err {
                Error::TaskPanicked { key, message } => {
                    assert_eq!(key, bad.key(), "{name}");
                    assert_eq!(message, "exploded on 3", "{name}");
                }
                other => panic!("{name}: expected TaskPanicked, got {other:?}"),
            }
            assert_names(&err, bad.key(), &name);
            assert!(err.to_string().contains("exploded on 3"), "{name}");
        }

        let s = delayed!(explode_static(1));
        let p = delayed!(explode_payload(1));
        for (name, options) in configs() {
            let err = s.compute_with(&options).unwrap_err();
            assert!(
                matches!(&err, Error::TaskPanicked { key, message }
                    if key == s.key() && message == "static message"),
                "{name}: {err:?}"
            );
            let err = p.compute_with(&options).unwrap_err();
            assert!(
                matches!(&err, Error::TaskPanicked { key, .. } if key == p.key()),
                "{name}: {err:?}"
            );
            assert_names(&err, p.key(), &name);
        }
    });
}

#[test]
fn many_simultaneous_failures_give_one_error_naming_one_of_them() {
    watchdog(|| {
        fn fail_sometimes(i: i64) -> Result<i64, NotPositive> {
            std::thread::sleep(Duration::from_micros(100));
            if i % 3 == 0 {
                Err(NotPositive(-i))
            } else {
                Ok(i)
            }
        }
        let parts: Vec<Delayed<i64>> = (0..300)
            .map(|i| try_delayed(fail_sometimes).call((i,)))
            .collect();
        let failing: BTreeSet<Key> = parts.iter().step_by(3).map(|d| d.key().clone()).collect();
        let sum = delayed!(total(parts));
        for (name, options) in configs() {
            for _ in 0..5 {
                let err = sum.compute_with(&options).unwrap_err();
                assert!(matches!(err, Error::TaskFailed { .. }), "{name}: {err:?}");
                let key = err.key().expect("names a task");
                assert!(failing.contains(key), "{name}: {key} did not fail");
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Graph errors: cycles, missing dependencies, unknown outputs, wrong types
// ---------------------------------------------------------------------------------------------

fn pass(key: &str, deps: &[&str]) -> Task {
    let deps: Vec<Key> = deps.iter().map(|&d| Key::new(d)).collect();
    Task::call(key, deps, |i| {
        Ok(i.first().cloned().unwrap_or_else(|| value(0i64)))
    })
}

/// Checks `err` is a cycle over exactly `expected`, listed so that each depends on the next.
fn assert_cycle(err: &Error, expected: &[&str], deps: &HashMap<&str, Vec<&str>>, context: &str) {
    let Error::Cycle { cycle } = err else {
        panic!("{context}: expected Cycle, got {err:?}");
    };
    let names: Vec<&str> = cycle.iter().map(|k| k.name()).collect();
    let got: BTreeSet<&str> = names.iter().copied().collect();
    let want: BTreeSet<&str> = expected.iter().copied().collect();
    assert_eq!(names.len(), expected.len(), "{context}: {names:?}");
    assert_eq!(got, want, "{context}: {names:?}");
    for (i, k) in names.iter().enumerate() {
        let next = names[(i + 1) % names.len()];
        assert!(
            deps[k].contains(&next),
            "{context}: {k} does not depend on {next} in {names:?}"
        );
    }
    let msg = err.to_string();
    for k in expected {
        assert!(msg.contains(k), "{context}: {msg}");
    }
    assert!(err.key().is_none());
}

/// Raw tasks as `(key, dependency keys)`.
type GraphSpec = Vec<(&'static str, Vec<&'static str>)>;

#[test]
fn cycle_lists_exactly_its_keys() {
    watchdog(|| {
        let cases: Vec<(GraphSpec, &str, Vec<&str>)> = vec![
            // a → b → c → a
            (
                vec![("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"])],
                "a",
                vec!["a", "b", "c"],
            ),
            // The same cycle behind a tail, with a healthy branch beside it.
            (
                vec![
                    ("x", vec!["a", "ok"]),
                    ("ok", vec![]),
                    ("a", vec!["b"]),
                    ("b", vec!["c"]),
                    ("c", vec!["a"]),
                ],
                "x",
                vec!["a", "b", "c"],
            ),
            // A task depending on itself.
            (vec![("s", vec!["s"])], "s", vec!["s"]),
        ];
        for (spec, output, cycle) in cases {
            let deps: HashMap<&str, Vec<&str>> = spec.iter().cloned().collect();
            let tasks: Vec<Task> = spec.iter().map(|(k, d)| pass(k, d)).collect();
            for fuse in [false, true] {
                let err =
                    TaskGraph::from_tasks(tasks.clone(), &[output.into()], FreezeOptions { fuse })
                        .err()
                        .expect("a cycle does not freeze");
                assert_cycle(&err, &cycle, &deps, &format!("from_tasks fuse={fuse}"));
            }
            let layer = Arc::new(Layer::new("cyclic", tasks, vec![]));
            let d = Delayed::<i64>::from_layer(layer, output.into());
            for (name, options) in configs() {
                let err = d.compute_with(&options).unwrap_err();
                assert_cycle(&err, &cycle, &deps, &name);
            }
        }
    });
}

#[test]
fn missing_dependency_names_the_task_and_the_key() {
    watchdog(|| {
        let tasks = vec![
            Task::data("x", 1i64),
            pass("y", &["x", "ghost"]),
            pass("z", &["y"]),
        ];
        for fuse in [false, true] {
            let err = TaskGraph::from_tasks(tasks.clone(), &["z".into()], FreezeOptions { fuse })
                .err()
                .expect("a missing dependency does not freeze");
            assert!(
                matches!(&err, Error::MissingDependency { task, missing }
                    if task.name() == "y" && missing.name() == "ghost"),
                "{err:?}"
            );
        }
        let layer = Arc::new(Layer::new("holey", tasks, vec![]));
        let d = Delayed::<i64>::from_layer(layer, "z".into());
        for (name, options) in configs() {
            let err = d.compute_with(&options).unwrap_err();
            match &err {
                Error::MissingDependency { task, missing } => {
                    assert_eq!(task, &Key::new("y"), "{name}");
                    assert_eq!(missing, &Key::new("ghost"), "{name}");
                }
                other => panic!("{name}: expected MissingDependency, got {other:?}"),
            }
            assert_eq!(err.key(), Some(&Key::new("y")), "{name}");
            assert_names(&err, &Key::new("y"), &name);
            assert_names(&err, &Key::new("ghost"), &name);
        }
    });
}

#[test]
fn unknown_output_names_the_key() {
    watchdog(|| {
        let layer = Arc::new(Layer::new("small", vec![Task::data("x", 1i64)], vec![]));
        let nope = Delayed::<i64>::from_layer(layer.clone(), Key::chunk("nope", &[3, 1]));
        let fine = Delayed::<i64>::from_layer(layer, "x".into());
        for (name, options) in configs() {
            let err = nope.compute_with(&options).unwrap_err();
            assert!(
                matches!(&err, Error::UnknownOutput { key } if key == nope.key()),
                "{name}: {err:?}"
            );
            assert_names(&err, nope.key(), &name);
            assert!(err.to_string().contains("('nope', 3, 1)"), "{name}: {err}");
            // Alongside a good output it still fails.
            let err = chunkflow::compute_with((&fine, &nope), &options).unwrap_err();
            assert!(
                matches!(&err, Error::UnknownOutput { .. }),
                "{name}: {err:?}"
            );
            assert_eq!(fine.compute_with(&options).unwrap(), 1, "{name}");
        }
        let err = TaskGraph::from_tasks([Task::data("x", 1i64)], &["y".into()], Default::default())
            .err()
            .unwrap();
        assert!(matches!(&err, Error::UnknownOutput { key } if key.name() == "y"));
    });
}

#[test]
fn wrong_output_type_is_type_mismatch_naming_the_key() {
    watchdog(|| {
        let layer = Arc::new(Layer::new("typed", vec![Task::data("x", 1i64)], vec![]));
        let wrong = Delayed::<String>::from_layer(layer, "x".into());
        for (name, options) in configs() {
            let err = wrong.compute_with(&options).unwrap_err();
            assert!(
                matches!(&err, Error::TypeMismatch { key, .. } if key.name() == "x"),
                "{name}: {err:?}"
            );
            assert_names(&err, &Key::new("x"), &name);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Stopping: nothing new starts after the first failure
// ---------------------------------------------------------------------------------------------

#[test]
fn chain_after_a_failing_root_never_starts() {
    watchdog(|| {
        for (name, options) in configs() {
            let started = Arc::new(AtomicUsize::new(0));
            let s = started.clone();
            let root = try_delayed(move |x: i64| {
                s.fetch_add(1, Ordering::SeqCst);
                check_positive(x)
            })
            .call((0,));
            let mut x = root.clone();
            for _ in 0..1000 {
                let s = started.clone();
                x = delayed(move |v: i64| {
                    s.fetch_add(1, Ordering::SeqCst);
                    v + 1
                })
                .call((x,));
            }
            let err = x.compute_with(&options).unwrap_err();
            assert_eq!(err.key(), Some(root.key()), "{name}: {err}");
            assert_eq!(started.load(Ordering::SeqCst), 1, "{name}");
        }
    });
}

#[test]
fn no_new_tasks_start_after_the_first_failure() {
    watchdog(|| {
        const N: usize = 1000;
        const FAILING: usize = 50;
        for (name, options) in configs() {
            let started = Arc::new(AtomicUsize::new(0));
            let started_after_failure = Arc::new(AtomicUsize::new(0));
            let failed = Arc::new(AtomicBool::new(false));
            let mut tasks: Vec<Task> = (0..N)
                .map(|i| {
                    let (started, after, failed) = (
                        started.clone(),
                        started_after_failure.clone(),
                        failed.clone(),
                    );
                    Task::call(Key::chunk("work", &[i]), Vec::<Key>::new(), move |_| {
                        started.fetch_add(1, Ordering::SeqCst);
                        if failed.load(Ordering::SeqCst) {
                            after.fetch_add(1, Ordering::SeqCst);
                        }
                        std::thread::sleep(Duration::from_millis(1));
                        if i == FAILING {
                            failed.store(true, Ordering::SeqCst);
                            return Err("task 50 fails".into());
                        }
                        Ok(value(i))
                    })
                })
                .collect();
            tasks.push(Task::call(
                "gather",
                (0..N).map(|i| Key::chunk("work", &[i])),
                |_| Ok(value(0usize)),
            ));
            let layer = Arc::new(Layer::new("work", tasks, vec![]));
            let d = Delayed::<usize>::from_layer(layer, "gather".into());
            let workers = options.get_executor().parallelism();
            let err = d.compute_with(&options).unwrap_err();
            assert_eq!(err.key(), Some(&Key::chunk("work", &[FAILING])), "{name}");
            let started = started.load(Ordering::SeqCst);
            let after = started_after_failure.load(Ordering::SeqCst);
            // Tasks start in static order (the list order), so about FAILING + 1 started. After
            // the failing task returns, only tasks racing the stop may start: at most one per
            // other worker, as each task sleeps 1 ms, far longer than that window.
            assert!(
                started <= FAILING + 1 + 2 * workers,
                "{name}: {started} of {N} tasks started"
            );
            assert!(
                after < workers.max(2),
                "{name}: {after} tasks started after the failure"
            );
            if workers == 1 {
                assert_eq!(started, FAILING + 1, "{name}");
                assert_eq!(after, 0, "{name}");
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Errors inside fused chains
// ---------------------------------------------------------------------------------------------

fn fail_at_zero(x: i64) -> Result<i64, NotPositive> {
    if x == 0 { Err(NotPositive(0)) } else { Ok(x) }
}

#[test]
fn error_deep_in_a_fused_chain_names_the_failing_step() {
    watchdog(|| {
        // inc(-25) → inc → ... (24 more) → check (fails on 0) → inc → ... (25 more)
        let mut x = delayed!(inc(-25));
        for _ in 0..24 {
            x = delayed!(inc(x));
        }
        let failing = try_delayed(fail_at_zero).call((x,));
        let mut y = failing.clone();
        for _ in 0..25 {
            y = delayed!(inc(y));
        }
        // The whole chain fuses into one task keyed like its last step.
        let fused = TaskGraph::from_layers(
            std::slice::from_ref(y.layer()),
            std::slice::from_ref(y.key()),
            FreezeOptions { fuse: true },
        )
        .unwrap();
        assert_eq!(fused.len(), 1);
        assert_eq!(fused.key(0), y.key());
        for (name, options) in configs() {
            let err = y.compute_with(&options).unwrap_err();
            assert!(matches!(&err, Error::TaskFailed { .. }), "{name}: {err:?}");
            assert_eq!(err.key(), Some(failing.key()), "{name}: {err}");
            assert_names(&err, failing.key(), &name);
            assert!(!err.to_string().contains(&y.key().to_string()), "{name}");
        }

        // A panic in the middle of a raw chain, and a chain that starts at a data node.
        let mut tasks = vec![Task::data("c-0", 0i64)];
        for i in 1..40 {
            tasks.push(Task::call(
                format!("c-{i}"),
                [format!("c-{}", i - 1)],
                move |v| {
                    if i == 17 {
                        panic!("step {i} broke");
                    }
                    Ok(v[0].clone())
                },
            ));
        }
        let g = TaskGraph::from_tasks(tasks, &["c-39".into()], FreezeOptions::default()).unwrap();
        assert_eq!(g.len(), 1);
        for (name, ex) in executors() {
            let err = ex.execute(&g, &[]).unwrap_err();
            assert!(
                matches!(&err, Error::TaskPanicked { key, message }
                    if key.name() == "c-17" && message == "step 17 broke"),
                "{name}: {err:?}"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Panics outside task functions
// ---------------------------------------------------------------------------------------------

/// A callback that panics when the fourth task starts.
struct PanickingCallback;

impl Callback for PanickingCallback {
    fn on_task_start(&self, _graph: &TaskGraph, id: TaskId, _worker: usize) {
        if id == 3 {
            panic!("callback failed");
        }
    }
}

/// A panic in a callback (outside any task function) must not hang the executor: the run stops
/// and the call returns `Error::CallbackPanicked` naming the hook.
#[test]
fn panicking_callback_does_not_hang() {
    watchdog(|| {
        let parts: Vec<Delayed<i64>> = (0..100).map(|i| delayed!(inc(i))).collect();
        let sum = delayed!(total(parts));
        for (name, options) in configs() {
            let options = options.callback(Arc::new(PanickingCallback));
            let err = sum.compute_with(&options).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::CallbackPanicked {
                        hook: "on_task_start",
                        ..
                    }
                ),
                "{name}: {err}"
            );
        }
    });
}
