//! The `Delayed` API: deterministic keys, naming and purity, laziness, `persist`, literal values,
//! `map`, list arguments, and graphs at scale.
//!
//! - Keys are `"<function>-<16 hex digits>"`, the same for the same call (in this process and in
//!   another run of the same binary) and different for different functions, literals or inputs.
//! - `.name("x")` sets the prefix, `.key("k")` the whole key; closures that capture state get a
//!   unique key per call unless declared `.pure(true)` with `.token(&state)`; `.pure(false)`
//!   makes any function impure.
//! - Nothing runs while a graph is built; `compute()` runs it, every time it is called;
//!   `persist()` runs it once and returns a one-task `Delayed` that later graphs reuse.
//! - A 100,000-deep chain builds, runs (both executors, fused and unfused) and drops without
//!   overflowing the stack; a 1,000,000-task graph builds and runs in one process.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chunkflow::graph::Key;
use chunkflow::prelude::*;

fn square(x: i64) -> i64 {
    x * x
}

fn cube(x: i64) -> i64 {
    x * x * x
}

fn inc(x: i64) -> i64 {
    x + 1
}

fn add(x: i64, y: i64) -> i64 {
    x + y
}

fn total(xs: Vec<i64>) -> i64 {
    xs.iter().sum()
}

/// Whether `name` is `"<prefix>-<16 lowercase hex digits>"`.
fn is_prefix_and_token(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|token| {
            token.len() == 16
                && token
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

fn configs() -> Vec<(String, ComputeOptions)> {
    let mut out = Vec::new();
    for fuse in [false, true] {
        out.push((
            format!("sequential fuse={fuse}"),
            ComputeOptions::default().executor(Sequential).fuse(fuse),
        ));
        out.push((
            format!("threaded(2) fuse={fuse}"),
            ComputeOptions::default().threads(2).fuse(fuse),
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

#[test]
fn keys_are_deterministic() {
    let a = delayed!(square(3));
    assert!(is_prefix_and_token(a.key().name(), "square"), "{}", a.key());
    assert!(a.key().index().is_empty());
    assert_eq!(a.key().label(), "square");
    // Same call twice: same key. Through the macro or the function: same key.
    assert_eq!(a.key(), delayed!(square(3)).key());
    assert_eq!(a.key(), delayed(square).call((3,)).key());
    // A different literal, function, or input: a different key.
    assert_ne!(a.key(), delayed!(square(4)).key());
    assert_ne!(a.key(), delayed!(cube(3)).key());
    assert_ne!(
        delayed!(inc(delayed!(square(3)))).key(),
        delayed!(inc(delayed!(square(4)))).key()
    );
    // Argument order matters.
    assert_ne!(delayed!(add(1, 2)).key(), delayed!(add(2, 1)).key());
    // Keys depend on what a call is, not on when it was built.
    let b1 = delayed!(add(delayed!(square(3)), delayed!(cube(2))));
    let b2 = delayed!(add(delayed!(square(3)), delayed!(cube(2))));
    assert_eq!(b1.key(), b2.key());
    assert!(is_prefix_and_token(b1.key().name(), "add"));
}

const CHILD_VAR: &str = "CHUNKFLOW_DELAYED_API_KEY_CHILD";

/// The keys printed by [`keys_are_the_same_in_another_process`]'s child.
fn sample_keys() -> Vec<String> {
    let x = delayed!(square(3));
    let y = delayed!(add(&x, 4));
    let z = delayed!(total(vec![x.clone(), y.clone()]));
    let v = Delayed::value(12i64);
    let named = delayed(cube).name("cubed").call((&v,));
    [x.key(), y.key(), z.key(), v.key(), named.key()]
        .iter()
        .map(|k| k.to_string())
        .collect()
}

#[test]
fn keys_are_the_same_in_another_process() {
    if std::env::var_os(CHILD_VAR).is_some() {
        println!("KEYS={}", sample_keys().join(","));
        return;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args([
            "keys_are_the_same_in_another_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_VAR, "1")
        .output()
        .expect("re-running the test binary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("KEYS=").map(|(_, keys)| keys))
        .unwrap_or_else(|| panic!("no keys printed: {stdout}"));
    assert_eq!(line, sample_keys().join(","));
}

#[test]
fn name_and_key_set_the_key() {
    let x = delayed(square).name("x").call((3,));
    assert!(is_prefix_and_token(x.key().name(), "x"), "{}", x.key());
    assert_eq!(x.key().label(), "x");
    // The name is only a prefix: the token still hashes the call.
    assert_ne!(x.key(), delayed(square).name("x").call((4,)).key());
    assert_ne!(x.key(), delayed(cube).name("x").call((3,)).key());

    let k = delayed(square).key("k").call((3,));
    assert_eq!(k.key(), &Key::new("k"));
    assert_eq!(k.compute().unwrap(), 9);
    let chunk = delayed(square).key(Key::chunk("sq", &[1, 2])).call((5,));
    assert_eq!(chunk.key().to_string(), "('sq', 1, 2)");
    let both = delayed!(add(k, chunk));
    for (name, options) in configs() {
        assert_eq!(both.compute_with(&options).unwrap(), 34, "{name}");
    }
}

#[test]
fn closures_capturing_state_are_impure_unless_tokenized() {
    let offset = 10i64;
    let shift = move |x: i64| x + offset;
    let a = delayed(shift).call((1,));
    let b = delayed(shift).call((1,));
    assert!(is_prefix_and_token(a.key().name(), "lambda"), "{}", a.key());
    assert_ne!(
        a.key(),
        b.key(),
        "a capturing closure gets a unique key per call"
    );
    let sum = delayed!(add(&a, &b));
    assert_eq!(sum.graph().unwrap().len(), 3);
    assert_eq!(sum.compute().unwrap(), 22);

    // Declared pure with its state as token: calls dedupe.
    let p1 = delayed(shift).pure(true).token(&offset).call((1,));
    let p2 = delayed(shift).pure(true).token(&offset).call((1,));
    assert_eq!(p1.key(), p2.key());
    let sum = delayed!(add(&p1, &p2));
    assert_eq!(sum.graph().unwrap().len(), 2);
    assert_eq!(sum.compute().unwrap(), 22);
    // Other state, other key; other argument, other key.
    let other = 11i64;
    let shift_other = move |x: i64| x + other;
    let p3 = delayed(shift_other).pure(true).token(&other).call((1,));
    assert_ne!(p1.key(), p3.key());
    assert_ne!(
        p1.key(),
        delayed(shift).pure(true).token(&offset).call((2,)).key()
    );

    // Closures that capture nothing are pure by default; two different ones differ.
    let double = |x: i64| x * 2;
    let triple = |x: i64| x * 3;
    assert_eq!(
        delayed(double).call((4,)).key(),
        delayed(double).call((4,)).key()
    );
    assert_ne!(
        delayed(double).call((4,)).key(),
        delayed(triple).call((4,)).key()
    );
}

static IMPURE_CALLS: AtomicUsize = AtomicUsize::new(0);

fn roll(seed: i64) -> i64 {
    IMPURE_CALLS.fetch_add(1, Ordering::SeqCst);
    seed * 7
}

#[test]
fn pure_false_makes_a_function_impure() {
    let a = delayed(roll).pure(false).call((1,));
    let b = delayed(roll).pure(false).call((1,));
    assert_ne!(a.key(), b.key());
    assert!(is_prefix_and_token(a.key().name(), "roll"));
    let sum = delayed!(add(&a, &b));
    assert_eq!(sum.graph().unwrap().len(), 3);
    for (name, options) in configs() {
        let before = IMPURE_CALLS.load(Ordering::SeqCst);
        assert_eq!(sum.compute_with(&options).unwrap(), 14, "{name}");
        assert_eq!(IMPURE_CALLS.load(Ordering::SeqCst) - before, 2, "{name}");
    }
    // The same function, pure (the default): one task, one call.
    let c = delayed(roll).call((1,));
    let d = delayed(roll).call((1,));
    assert_eq!(c.key(), d.key());
    let sum = delayed!(add(&c, &d));
    assert_eq!(sum.graph().unwrap().len(), 2);
    let before = IMPURE_CALLS.load(Ordering::SeqCst);
    assert_eq!(sum.compute().unwrap(), 14);
    assert_eq!(IMPURE_CALLS.load(Ordering::SeqCst) - before, 1);
}

// ---------------------------------------------------------------------------------------------
// Laziness and persist
// ---------------------------------------------------------------------------------------------

static LAZY_CALLS: AtomicUsize = AtomicUsize::new(0);

fn counted_inc(x: i64) -> i64 {
    LAZY_CALLS.fetch_add(1, Ordering::SeqCst);
    x + 1
}

#[test]
fn nothing_runs_until_compute() {
    let before = LAZY_CALLS.load(Ordering::SeqCst);
    let mut x = delayed!(counted_inc(0));
    for _ in 0..9 {
        x = delayed!(counted_inc(x));
    }
    let parts: Vec<Delayed<i64>> = (100..105).map(|i| delayed!(counted_inc(i))).collect();
    let sum = delayed!(add(x.clone(), delayed!(total(parts))));
    let _graph = sum.graph().unwrap();
    assert_eq!(
        LAZY_CALLS.load(Ordering::SeqCst),
        before,
        "building runs nothing"
    );
    assert_eq!(sum.compute().unwrap(), 10 + 515);
    assert_eq!(LAZY_CALLS.load(Ordering::SeqCst) - before, 15);
    // compute() runs again each time (no hidden cache).
    assert_eq!(sum.compute().unwrap(), 525);
    assert_eq!(LAZY_CALLS.load(Ordering::SeqCst) - before, 30);
}

static PERSIST_CALLS: AtomicUsize = AtomicUsize::new(0);

fn expensive(x: i64) -> i64 {
    PERSIST_CALLS.fetch_add(1, Ordering::SeqCst);
    x * 100
}

#[test]
fn persist_runs_once_and_later_graphs_reuse_it() {
    for (name, options) in configs() {
        let base = delayed!(expensive(delayed!(inc(2))));
        let before = PERSIST_CALLS.load(Ordering::SeqCst);
        let persisted = base.persist_with(&options).unwrap();
        assert_eq!(PERSIST_CALLS.load(Ordering::SeqCst) - before, 1, "{name}");
        assert_eq!(persisted.key(), base.key(), "{name}");
        assert_eq!(persisted.graph().unwrap().len(), 1, "{name}");
        // Built on the persisted value: the original task does not run again.
        let later = delayed!(add(&persisted, delayed!(inc(&persisted))));
        assert_eq!(later.graph().unwrap().len(), 3, "{name}");
        assert_eq!(later.compute_with(&options).unwrap(), 601, "{name}");
        assert_eq!(persisted.compute_with(&options).unwrap(), 300, "{name}");
        assert_eq!(PERSIST_CALLS.load(Ordering::SeqCst) - before, 1, "{name}");
        // The original still computes from scratch.
        assert_eq!(base.compute_with(&options).unwrap(), 300, "{name}");
        assert_eq!(PERSIST_CALLS.load(Ordering::SeqCst) - before, 2, "{name}");
    }
    let p = delayed!(expensive(1)).persist().unwrap();
    assert_eq!(p.compute().unwrap(), 100);
}

// ---------------------------------------------------------------------------------------------
// Values, map, list arguments
// ---------------------------------------------------------------------------------------------

#[test]
fn delayed_value_holds_a_literal() {
    let v = Delayed::value(12i64);
    assert!(is_prefix_and_token(v.key().name(), "i64"), "{}", v.key());
    assert_eq!(v.key(), Delayed::value(12i64).key());
    assert_ne!(v.key(), Delayed::value(13i64).key());
    assert_ne!(v.key(), Delayed::value(12i32).key());
    let s = Delayed::value(String::from("hello"));
    assert!(is_prefix_and_token(s.key().name(), "string"), "{}", s.key());
    assert_eq!(v.graph().unwrap().len(), 1);
    let x = delayed!(square(&v));
    for (name, options) in configs() {
        assert_eq!(v.compute_with(&options).unwrap(), 12, "{name}");
        assert_eq!(x.compute_with(&options).unwrap(), 144, "{name}");
        assert_eq!(s.compute_with(&options).unwrap(), "hello", "{name}");
    }
    // A value under a chosen key, for types that cannot be hashed.
    let w = Delayed::value_with_key("weights", vec![1.5f64, 2.5]);
    assert_eq!(w.key(), &Key::new("weights"));
    assert_eq!(w.compute().unwrap(), vec![1.5, 2.5]);
}

#[test]
fn map_applies_a_function_lazily() {
    let x = delayed!(square(4));
    let y = x.map(|v| v + 1);
    let z = y.map(|v| format!("<{v}>"));
    assert!(is_prefix_and_token(y.key().name(), "lambda"), "{}", y.key());
    assert_eq!(z.graph().unwrap().len(), 3);
    for (name, options) in configs() {
        assert_eq!(y.compute_with(&options).unwrap(), 17, "{name}");
        assert_eq!(z.compute_with(&options).unwrap(), "<17>", "{name}");
    }
    // A plain function maps too, and keys like a call.
    assert_eq!(x.map(inc).key(), delayed(inc).call((&x,)).key());
}

fn weighted(xs: Vec<i64>, w: i64) -> i64 {
    xs.iter()
        .enumerate()
        .map(|(i, x)| (i as i64 + 1) * x * w)
        .sum()
}

#[test]
fn list_arguments_gather_values_in_order() {
    let parts: Vec<Delayed<i64>> = (0..10).map(|i| delayed!(square(i))).collect();
    let expected: i64 = (0..10).map(|i| i * i).sum();
    let by_value = delayed!(total(parts.clone()));
    let by_ref = delayed!(total(&parts));
    let by_slice = delayed(total).call((&parts[..],));
    assert_eq!(by_value.key(), by_ref.key());
    assert_eq!(by_value.key(), by_slice.key());
    // Order is part of the call: reversed list, different key and (here) different value.
    let mut rev = parts.clone();
    rev.reverse();
    let w = delayed!(weighted(parts.clone(), 2));
    let w_rev = delayed!(weighted(rev, 2));
    assert_ne!(w.key(), w_rev.key());
    // Repeats and empty lists.
    let repeated = delayed!(total(vec![
        parts[3].clone(),
        parts[3].clone(),
        parts[2].clone()
    ]));
    let empty = delayed!(total(Vec::<Delayed<i64>>::new()));
    let want_w: i64 = (0..10).map(|i| (i + 1) * i * i * 2).sum();
    let want_w_rev: i64 = (0..10).map(|i| (10 - i) * i * i * 2).sum();
    for (name, options) in configs() {
        assert_eq!(by_value.compute_with(&options).unwrap(), expected, "{name}");
        assert_eq!(by_slice.compute_with(&options).unwrap(), expected, "{name}");
        assert_eq!(w.compute_with(&options).unwrap(), want_w, "{name}");
        assert_eq!(w_rev.compute_with(&options).unwrap(), want_w_rev, "{name}");
        assert_eq!(repeated.compute_with(&options).unwrap(), 22, "{name}");
        assert_eq!(empty.compute_with(&options).unwrap(), 0, "{name}");
    }
    assert_eq!(repeated.graph().unwrap().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Scale
// ---------------------------------------------------------------------------------------------

#[test]
fn a_100_000_deep_chain_runs_and_drops_without_stack_overflow() {
    const DEPTH: i64 = 100_000;
    let t = Instant::now();
    let mut x = delayed!(inc(0));
    for _ in 1..DEPTH {
        x = delayed!(inc(x));
    }
    eprintln!("built {DEPTH} in {:?}", t.elapsed());
    for (name, options) in configs() {
        let t = Instant::now();
        assert_eq!(x.compute_with(&options).unwrap(), DEPTH, "{name}");
        eprintln!("{name}: {:?}", t.elapsed());
    }
    assert_eq!(x.graph().unwrap().len(), DEPTH as usize);
    // Persisting the end of the chain and dropping the chain.
    let kept = x
        .persist_with(&ComputeOptions::default().threads(2))
        .unwrap();
    let t = Instant::now();
    drop(x);
    eprintln!("dropped in {:?}", t.elapsed());
    assert_eq!(kept.compute().unwrap(), DEPTH);
    // A deep chain of list arguments and maps drops as well.
    let mut y = Delayed::value(0i64);
    for i in 0..DEPTH {
        y = if i % 2 == 0 {
            delayed!(total(vec![y]))
        } else {
            y.map(inc)
        };
    }
    assert_eq!(y.compute_with(&configs()[0].1).unwrap(), DEPTH / 2);
    drop(y);
}

/// 1,000,000 independent `inc` tasks summed by a fan-in-8 tree (1,142,858 tasks in all).
#[test]
fn a_million_task_graph_builds_and_runs() {
    const N: i64 = 1_000_000;
    let t = Instant::now();
    let mut level: Vec<Delayed<i64>> = (0..N).map(|i| delayed!(inc(i))).collect();
    let mut tasks = level.len();
    while level.len() > 1 {
        level = level
            .chunks(8)
            .map(|group| delayed!(total(group.to_vec())))
            .collect();
        tasks += level.len();
    }
    let sum = level.pop().unwrap();
    eprintln!("built {tasks} tasks in {:?}", t.elapsed());
    let t = Instant::now();
    let options = ComputeOptions::default().executor_arc(Arc::new(Threaded::default()));
    assert_eq!(sum.compute_with(&options).unwrap(), N * (N + 1) / 2);
    eprintln!("computed in {:?}", t.elapsed());
    let t = Instant::now();
    drop(sum);
    eprintln!("dropped in {:?}", t.elapsed());
}

/// `.key(..)` names the next call only: two calls of one wrapper never share a key.
#[test]
fn explicit_key_applies_to_the_next_call_only() {
    fn square(x: i64) -> i64 {
        x * x
    }
    fn add(x: i64, y: i64) -> i64 {
        x + y
    }
    let f = delayed(square).key("k");
    let (a, b) = (f.call((2,)), f.call((3,)));
    assert_eq!(a.key().name(), "k");
    assert_ne!(b.key().name(), "k");
    assert_eq!(delayed!(add(a, b)).compute().unwrap(), 13);
}
