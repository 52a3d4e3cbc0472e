//! Every executor gives the same answer on every graph.
//!
//! A suite of graph shapes, built both from raw tasks (`Task`, `TaskGraph`) and with the
//! `Delayed` API: a single task, data only, a linear chain, a wide fan-out, a wide fan-in (list
//! arguments), a diamond, a tree reduction, many outputs at once (tuples and `Vec`s, with
//! intermediates among them), the same key requested twice, the same dependency listed twice,
//! shared sub-graphs (identical pure calls dedupe into one task), and random DAGs (proptest).
//! Each shape must give the expected value, and the same value as [`Sequential`], under
//! `Sequential`, `Threaded::new(1)`, `Threaded::new(2)` and `Threaded::new(8)`, fused and unfused.
//!
//! It ends with a stress test: one value consumed by 1000 tasks and then gathered again, run
//! many times on 8 threads (a consumer must never take a shared value before another has cloned
//! it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use chunkflow::graph::{FreezeOptions, Key, Task, TaskGraph, value};
use chunkflow::prelude::*;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// The executors and options under test
// ---------------------------------------------------------------------------------------------

/// Every executor under test, with its name. `Sequential` comes first: it is the oracle.
fn executors() -> Vec<(&'static str, Box<dyn Executor>)> {
    vec![
        ("sequential", Box::new(Sequential)),
        ("threaded(1)", Box::new(Threaded::new(1))),
        ("threaded(2)", Box::new(Threaded::new(2))),
        ("threaded(8)", Box::new(Threaded::new(8))),
    ]
}

/// Every executor, fused and unfused, as compute options. Sequential unfused comes first.
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

/// Runs `run` under every config and checks each result equals `expected` (and so each other).
fn agree<T, F>(shape: &str, expected: T, run: F)
where
    T: PartialEq + std::fmt::Debug,
    F: Fn(&ComputeOptions) -> chunkflow::Result<T>,
{
    for (name, options) in configs() {
        let got = run(&options).unwrap_or_else(|e| panic!("{shape} under {name}: {e}"));
        assert_eq!(got, expected, "{shape} under {name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Raw-task graphs: a spec in topological order, turned into tasks and evaluated directly
// ---------------------------------------------------------------------------------------------

/// One node of a raw graph: a data node (literal) or a call on earlier nodes.
#[derive(Clone, Debug)]
enum Node {
    Data(u64),
    Call(Vec<usize>),
}

/// A raw graph in topological order (every dependency is an earlier node) plus its outputs.
#[derive(Clone, Debug)]
struct Spec {
    nodes: Vec<Node>,
    outputs: Vec<usize>,
}

/// What node `i` computes from its inputs: order-sensitive, so swapped inputs are caught.
fn mix(i: usize, inputs: &[u64]) -> u64 {
    inputs.iter().fold(
        (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        |acc, &x| acc.rotate_left(7) ^ x.wrapping_mul(0xbf58_476d_1ce4_e5b9),
    )
}

fn node_key(i: usize) -> Key {
    Key::new(format!("node-{i}"))
}

impl Spec {
    fn tasks(&self) -> Vec<Task> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, node)| match node {
                Node::Data(v) => Task::data(node_key(i), *v),
                Node::Call(deps) => Task::call(node_key(i), deps.iter().map(|&d| node_key(d)), {
                    move |inputs| {
                        let xs: Vec<u64> = inputs
                            .iter()
                            .map(|v| *v.downcast_ref::<u64>().expect("u64 inputs"))
                            .collect();
                        Ok(value(mix(i, &xs)))
                    }
                }),
            })
            .collect()
    }

    fn output_keys(&self) -> Vec<Key> {
        self.outputs.iter().map(|&o| node_key(o)).collect()
    }

    /// The oracle: plain evaluation in node order.
    fn eval(&self) -> Vec<u64> {
        let mut vals: Vec<u64> = Vec::with_capacity(self.nodes.len());
        for (i, node) in self.nodes.iter().enumerate() {
            let v = match node {
                Node::Data(v) => *v,
                Node::Call(deps) => {
                    let xs: Vec<u64> = deps.iter().map(|&d| vals[d]).collect();
                    mix(i, &xs)
                }
            };
            vals.push(v);
        }
        self.outputs.iter().map(|&o| vals[o]).collect()
    }

    /// The same graph through the `Delayed` API: data nodes are `Delayed::value_with_key`,
    /// calls take their dependencies as one list argument.
    fn delayed(&self) -> Vec<Delayed<u64>> {
        fn call_mix(i: usize, xs: Vec<u64>) -> u64 {
            mix(i, &xs)
        }
        let mut built: Vec<Delayed<u64>> = Vec::with_capacity(self.nodes.len());
        for (i, node) in self.nodes.iter().enumerate() {
            let d = match node {
                Node::Data(v) => Delayed::value_with_key(format!("data-{i}"), *v),
                Node::Call(deps) => {
                    let args: Vec<Delayed<u64>> = deps.iter().map(|&d| built[d].clone()).collect();
                    delayed!(call_mix(i, args))
                }
            };
            built.push(d);
        }
        self.outputs.iter().map(|&o| built[o].clone()).collect()
    }
}

/// Runs a raw spec under every executor, fused and unfused, and the same graph through the
/// `Delayed` API under every config; all must equal the direct evaluation.
fn check_spec(shape: &str, spec: &Spec) {
    let expected = spec.eval();
    let tasks = spec.tasks();
    let outputs = spec.output_keys();
    for fuse in [false, true] {
        let graph = TaskGraph::from_tasks(tasks.clone(), &outputs, FreezeOptions { fuse })
            .unwrap_or_else(|e| panic!("{shape}: freezing failed: {e}"));
        assert_eq!(graph.outputs().len(), outputs.len(), "{shape}");
        for (name, executor) in executors() {
            let got: Vec<u64> = executor
                .execute(&graph, &[])
                .unwrap_or_else(|e| panic!("{shape} (raw) under {name} fuse={fuse}: {e}"))
                .iter()
                .map(|v| *v.downcast_ref::<u64>().expect("u64 output"))
                .collect();
            assert_eq!(got, expected, "{shape} (raw) under {name} fuse={fuse}");
        }
    }
    let outs = spec.delayed();
    agree(&format!("{shape} (delayed)"), expected, |o| {
        chunkflow::compute_with(&outs, o)
    });
}

fn chain(len: usize) -> Spec {
    let mut nodes = vec![Node::Data(3)];
    nodes.extend((1..len).map(|i| Node::Call(vec![i - 1])));
    Spec {
        nodes,
        outputs: vec![len - 1],
    }
}

fn tree(leaves: usize, fan_in: usize) -> Spec {
    let mut nodes: Vec<Node> = (0..leaves).map(|i| Node::Data(i as u64 * 31)).collect();
    let mut level: Vec<usize> = (0..leaves).collect();
    while level.len() > 1 {
        level = level
            .chunks(fan_in)
            .map(|group| {
                nodes.push(Node::Call(group.to_vec()));
                nodes.len() - 1
            })
            .collect();
    }
    Spec {
        nodes,
        outputs: level,
    }
}

#[test]
fn raw_single_task() {
    let spec = Spec {
        nodes: vec![Node::Call(vec![])],
        outputs: vec![0],
    };
    check_spec("single task", &spec);
}

#[test]
fn raw_data_only() {
    let spec = Spec {
        nodes: vec![Node::Data(42)],
        outputs: vec![0],
    };
    check_spec("data only", &spec);
    let spec = Spec {
        nodes: vec![Node::Data(1), Node::Data(2), Node::Data(3)],
        outputs: vec![2, 0, 1, 0],
    };
    check_spec("several data nodes", &spec);
}

#[test]
fn raw_linear_chain() {
    check_spec("chain of 2", &chain(2));
    check_spec("chain of 300", &chain(300));
    // A chain whose middle is also an output: fusion must not swallow it.
    let mut spec = chain(50);
    spec.outputs = vec![49, 20, 0];
    check_spec("chain with outputs inside", &spec);
}

#[test]
fn raw_wide_fan_out() {
    let mut nodes = vec![Node::Data(7)];
    nodes.extend((0..500).map(|_| Node::Call(vec![0])));
    let spec = Spec {
        outputs: (1..=500).collect(),
        nodes,
    };
    check_spec("fan-out 500", &spec);
}

#[test]
fn raw_wide_fan_in() {
    let mut nodes: Vec<Node> = (0..500).map(Node::Data).collect();
    nodes.push(Node::Call((0..500).collect()));
    let spec = Spec {
        outputs: vec![500],
        nodes,
    };
    check_spec("fan-in 500", &spec);
}

#[test]
fn raw_diamond() {
    let spec = Spec {
        nodes: vec![
            Node::Data(5),
            Node::Call(vec![0]),
            Node::Call(vec![0]),
            Node::Call(vec![1, 2]),
        ],
        outputs: vec![3],
    };
    check_spec("diamond", &spec);
}

#[test]
fn raw_tree_reduction() {
    check_spec("tree 1000 / 8", &tree(1000, 8));
    check_spec("tree 97 / 2", &tree(97, 2));
}

#[test]
fn raw_same_key_requested_twice_and_duplicate_dependencies() {
    let spec = Spec {
        nodes: vec![
            Node::Data(2),
            Node::Call(vec![0]),
            // The same dependency listed several times, in a meaningful order.
            Node::Call(vec![1, 1, 0, 1]),
            Node::Call(vec![2]),
        ],
        outputs: vec![3, 3, 1, 3],
    };
    check_spec("repeats", &spec);
}

#[test]
fn empty_request_gives_empty_result() {
    let none: Vec<Delayed<i64>> = Vec::new();
    agree("no outputs", Vec::<i64>::new(), |o| {
        chunkflow::compute_with(&none, o)
    });
}

// ---------------------------------------------------------------------------------------------
// Random DAGs
// ---------------------------------------------------------------------------------------------

fn random_spec() -> impl Strategy<Value = Spec> {
    (1usize..40)
        .prop_flat_map(|n| {
            (
                proptest::collection::vec(
                    (
                        any::<bool>(),
                        any::<u64>(),
                        proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
                    ),
                    n,
                ),
                proptest::collection::vec(any::<prop::sample::Index>(), 1..6),
            )
        })
        .prop_map(|(raw, outs)| {
            let nodes: Vec<Node> = raw
                .into_iter()
                .enumerate()
                .map(|(i, (is_data, v, deps))| {
                    if i == 0 || is_data && deps.is_empty() {
                        Node::Data(v)
                    } else {
                        Node::Call(deps.iter().map(|d| d.index(i)).collect())
                    }
                })
                .collect();
            let n = nodes.len();
            Spec {
                outputs: outs.iter().map(|o| o.index(n)).collect(),
                nodes,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_dags_agree(spec in random_spec()) {
        check_spec("random DAG", &spec);
    }
}

/// A larger seeded random DAG (a plain generator, no shrinking), so wider graphs are covered.
#[test]
fn large_seeded_random_dags_agree() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..4 {
        let n = 300 + (next() % 300) as usize;
        let nodes: Vec<Node> = (0..n)
            .map(|i| {
                if i < 10 || next() % 10 == 0 {
                    Node::Data(next())
                } else {
                    // Mostly recent nodes (chains and diamonds), sometimes far back.
                    let k = (next() % 5) as usize;
                    let deps = (0..k)
                        .map(|_| {
                            let back = if next() % 4 == 0 { i } else { i.min(8) };
                            i - 1 - (next() as usize % back)
                        })
                        .collect();
                    Node::Call(deps)
                }
            })
            .collect();
        let outputs = (0..1 + next() % 20)
            .map(|_| (next() as usize) % n)
            .collect();
        check_spec(&format!("seeded DAG {round}"), &Spec { nodes, outputs });
    }
}

// ---------------------------------------------------------------------------------------------
// The Delayed API
// ---------------------------------------------------------------------------------------------

fn inc(x: i64) -> i64 {
    x + 1
}

fn square(x: i64) -> i64 {
    x * x
}

fn add(x: i64, y: i64) -> i64 {
    x + y
}

fn total(xs: Vec<i64>) -> i64 {
    xs.iter().sum()
}

/// Order-sensitive, so a list argument delivered out of order is caught.
fn digits(xs: Vec<i64>) -> i64 {
    xs.iter()
        .fold(0, |acc, x| acc.wrapping_mul(31).wrapping_add(*x))
}

#[test]
fn delayed_single_task_and_data_only() {
    let x = delayed!(square(7));
    agree("single call", 49, |o| x.compute_with(o));
    let v = Delayed::value(12i64);
    agree("data only", 12, |o| v.compute_with(o));
    let w = delayed!(inc(v.clone()));
    agree("call on data", 13, |o| w.compute_with(o));
}

#[test]
fn delayed_linear_chain() {
    let mut x = delayed!(inc(0));
    for _ in 1..500 {
        x = delayed!(inc(x));
    }
    agree("chain of 500", 500, |o| x.compute_with(o));
}

#[test]
fn delayed_wide_fan_out_and_fan_in() {
    let root = delayed!(square(3));
    let parts: Vec<Delayed<i64>> = (0..1000).map(|i| delayed!(add(&root, i))).collect();
    let expected: Vec<i64> = (0..1000).map(|i| 9 + i).collect();
    agree("fan-out, every leaf an output", expected.clone(), |o| {
        chunkflow::compute_with(&parts, o)
    });
    let sum = delayed!(total(parts.clone()));
    agree("fan-out then fan-in", expected.iter().sum::<i64>(), |o| {
        sum.compute_with(o)
    });
    let ordered = delayed!(digits(parts));
    let want = expected
        .iter()
        .fold(0i64, |acc, x| acc.wrapping_mul(31).wrapping_add(*x));
    agree("fan-in keeps list order", want, |o| ordered.compute_with(o));
}

#[test]
fn delayed_diamond() {
    let a = delayed!(inc(1));
    let b = delayed!(square(&a));
    let c = delayed!(inc(&a));
    let d = delayed!(add(b, c));
    agree("diamond", 4 + 3, |o| d.compute_with(o));
}

fn tree_sum(leaves: Vec<Delayed<i64>>, fan_in: usize) -> Delayed<i64> {
    let mut level = leaves;
    while level.len() > 1 {
        level = level
            .chunks(fan_in)
            .map(|group| delayed!(total(group.to_vec())))
            .collect();
    }
    level.pop().expect("at least one leaf")
}

#[test]
fn delayed_tree_reduction() {
    let leaves: Vec<Delayed<i64>> = (0..2000).map(|i| delayed!(inc(i))).collect();
    let sum = tree_sum(leaves, 8);
    agree("tree 2000 / 8", (1..=2000).sum::<i64>(), |o| {
        sum.compute_with(o)
    });
}

#[test]
fn delayed_many_outputs_at_once() {
    let a = delayed!(inc(1));
    let b = delayed!(square(&a));
    let c = delayed!(add(&a, &b));
    // Tuples of collections, intermediates among them.
    agree("tuple (a, b, c)", (2, 4, 6), |o| {
        chunkflow::compute_with((&a, &b, &c), o)
    });
    agree("tuple (c, a)", (6, 2), |o| {
        chunkflow::compute_with((&c, &a), o)
    });
    // A Vec of collections.
    let all = vec![c.clone(), b.clone(), a.clone()];
    agree("vec [c, b, a]", vec![6, 4, 2], |o| {
        chunkflow::compute_with(&all, o)
    });
    // The plain entry points (default executor).
    assert_eq!(chunkflow::compute((&a, &b, &c)).unwrap(), (2, 4, 6));
    assert_eq!(chunkflow::compute(&all).unwrap(), vec![6, 4, 2]);
}

#[test]
fn delayed_same_key_requested_twice() {
    let a = delayed!(square(5));
    let b = delayed!(inc(&a));
    agree("tuple (a, a)", (25, 25), |o| {
        chunkflow::compute_with((&a, &a), o)
    });
    agree("tuple (b, a, b)", (26, 25, 26), |o| {
        chunkflow::compute_with((&b, &a, &b), o)
    });
    let twice = vec![b.clone(), b.clone(), a.clone()];
    agree("vec [b, b, a]", vec![26, 26, 25], |o| {
        chunkflow::compute_with(&twice, o)
    });
    // Built twice, separately: same key, one task.
    let b2 = delayed!(inc(delayed!(square(5))));
    assert_eq!(b.key(), b2.key());
    agree("separately built equal keys", (26, 26), |o| {
        chunkflow::compute_with((&b, &b2), o)
    });
    // The same value twice as arguments.
    let doubled = delayed!(add(&a, &a));
    agree("same dependency twice", 50, |o| doubled.compute_with(o));
    assert_eq!(doubled.graph().unwrap().len(), 2);
}

static SHARED_CALLS: AtomicUsize = AtomicUsize::new(0);

fn counted_square(x: i64) -> i64 {
    SHARED_CALLS.fetch_add(1, Ordering::SeqCst);
    x * x
}

#[test]
fn shared_sub_graphs_dedupe_into_one_task() {
    // Two identical pure calls, built independently, are one task.
    let a = delayed!(counted_square(3));
    let b = delayed!(counted_square(3));
    assert_eq!(a.key(), b.key());
    let c = delayed!(add(a, b));
    assert_eq!(c.graph().unwrap().len(), 2);
    for (name, options) in configs() {
        let before = SHARED_CALLS.load(Ordering::SeqCst);
        assert_eq!(c.compute_with(&options).unwrap(), 18, "{name}");
        assert_eq!(
            SHARED_CALLS.load(Ordering::SeqCst) - before,
            1,
            "{name}: the shared call runs once"
        );
    }

    // Two identical trees built separately share every task.
    let build = || tree_sum((0..64).map(|i| delayed!(inc(i))).collect(), 4);
    let (t1, t2) = (build(), build());
    let one = t1.graph().unwrap().len();
    assert_eq!(one, 64 + 16 + 4 + 1);
    let both = delayed!(add(t1, t2));
    assert_eq!(both.graph().unwrap().len(), one + 1);
    agree("two identical trees", 2 * (1..=64).sum::<i64>(), |o| {
        both.compute_with(o)
    });

    // Different arguments do not dedupe.
    let d = delayed!(add(delayed!(square(3)), delayed!(square(4))));
    assert_eq!(d.graph().unwrap().len(), 3);
    agree("different arguments", 25, |o| d.compute_with(o));

    // compute() over several collections freezes one graph: shared work runs once.
    let shared = delayed!(counted_square(11));
    let x = delayed!(inc(&shared));
    let y = delayed!(add(&shared, 1));
    for (name, options) in configs() {
        let before = SHARED_CALLS.load(Ordering::SeqCst);
        let got = chunkflow::compute_with((&x, &y), &options).unwrap();
        assert_eq!(got, (122, 122), "{name}");
        assert_eq!(SHARED_CALLS.load(Ordering::SeqCst) - before, 1, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Stress: one shared value, 1000 consumers, gathered again; many times on 8 threads
// ---------------------------------------------------------------------------------------------

fn make_shared(n: usize) -> Vec<u64> {
    (0..n as u64).collect()
}

fn consume(shared: Vec<u64>, i: u64) -> u64 {
    shared.iter().sum::<u64>() + i
}

fn gather(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

/// Runs `body` on its own thread and fails if it takes longer than 60 s: a scheduler race can
/// show up as a hang (a worker that dies leaves its task unfinished forever).
fn watchdog(body: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("did not finish within 60 s: a hang"),
    }
}

#[test]
fn stress_shared_value_with_many_consumers_on_8_threads() {
    watchdog(stress_body);
}

fn stress_body() {
    let shared = delayed!(make_shared(64));
    let parts: Vec<Delayed<u64>> = (0..1000u64)
        .map(|i| delayed!(consume(&shared, i)))
        .collect();
    let sum = delayed!(gather(parts));
    let expected = 1000 * (63 * 64 / 2) + (0..1000u64).sum::<u64>();
    let options = ComputeOptions::default().threads(8);
    for round in 0..100 {
        assert_eq!(
            sum.compute_with(&options).unwrap(),
            expected,
            "round {round}"
        );
    }

    // The same shape from raw tasks, reusing one frozen graph.
    let mut tasks = vec![Task::data("shared", make_shared(64))];
    for i in 0..1000u64 {
        tasks.push(Task::call(
            Key::chunk("consume", &[i as usize]),
            ["shared"],
            {
                move |inputs| {
                    let v = inputs[0].downcast_ref::<Vec<u64>>().expect("a Vec<u64>");
                    Ok(value(v.iter().sum::<u64>() + i))
                }
            },
        ));
    }
    tasks.push(Task::call(
        "gather",
        (0..1000).map(|i| Key::chunk("consume", &[i])),
        |inputs| {
            Ok(value(
                inputs
                    .iter()
                    .map(|v| *v.downcast_ref::<u64>().unwrap())
                    .sum::<u64>(),
            ))
        },
    ));
    let graph = TaskGraph::from_tasks(tasks, &["gather".into()], FreezeOptions::default()).unwrap();
    let executor = Threaded::new(8);
    for round in 0..100 {
        let out = executor.execute(&graph, &[]).unwrap();
        assert_eq!(
            *out[0].downcast_ref::<u64>().unwrap(),
            expected,
            "raw round {round}"
        );
    }
}
