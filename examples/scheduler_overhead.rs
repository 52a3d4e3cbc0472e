//! Scheduler overhead per task, graph building included, on the issue's three shapes:
//! 100,000 independent trivial tasks reduced by a tree, a 10,000-long linear chain, and a
//! 1,000 × 100 fan-out/fan-in. Prints one JSON line per (graph, executor).
//!
//! ```text
//! cargo run --release --example scheduler_overhead [-- --threads N] [--large]
//! ```
//! `--large` adds a 1,000,000-task graph and a 100,000-deep chain (unfused).

use std::time::Instant;

use chunkflow::prelude::*;

fn inc(x: i64) -> i64 {
    x + 1
}

fn total(xs: Vec<i64>) -> i64 {
    xs.iter().sum()
}

/// `n` independent `inc` tasks summed by a tree with fan-in 8.
fn tree(n: usize) -> Delayed<i64> {
    let mut level: Vec<Delayed<i64>> = (0..n as i64).map(|i| delayed!(inc(i))).collect();
    while level.len() > 1 {
        level = level
            .chunks(8)
            .map(|group| delayed!(total(group.to_vec())))
            .collect();
    }
    level.pop().unwrap()
}

/// A linear chain of `n` `inc` calls.
fn chain(n: usize) -> Delayed<i64> {
    let mut x = Delayed::value(0i64);
    for _ in 0..n {
        x = delayed!(inc(x));
    }
    x
}

/// `rounds` rounds of: the previous result fans out to `width` tasks, which fan back in.
fn fan(width: usize, rounds: usize) -> Delayed<i64> {
    let mut x = Delayed::value(0i64);
    for r in 0..rounds {
        let parts: Vec<Delayed<i64>> = (0..width)
            .map(|i| {
                delayed(move |x: i64, i: i64| x + i)
                    .name(format!("part{r}"))
                    .pure(true)
                    .token(&r)
                    .call((&x, i as i64))
            })
            .collect();
        x = delayed!(total(parts)).map(|t: i64| t % 1_000_003);
    }
    x
}

fn measure(
    name: &str,
    build: impl Fn() -> Delayed<i64>,
    options: &ComputeOptions,
    executor: &str,
    threads: usize,
    fuse: bool,
) -> i64 {
    // Task count (as built, before fusion), measured outside the timed region.
    let tasks = build().graph().expect("graph freezes").len();
    let t0 = Instant::now();
    let d = build();
    let build_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let v = d
        .compute_with(&options.clone().fuse(fuse))
        .expect("computes");
    let compute_s = t1.elapsed().as_secs_f64();
    drop(d);
    let total_s = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "graph": name, "tasks": tasks, "executor": executor, "threads": threads, "fuse": fuse,
            "build_s": round(build_s), "compute_s": round(compute_s),
            "us_per_task": round(total_s * 1e6 / tasks as f64),
        })
    );
    v
}

fn round(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let large = args.iter().any(|a| a == "--large");
    let runs: [(&str, ComputeOptions, usize); 2] = [
        (
            "threaded",
            ComputeOptions::default().threads(threads),
            threads,
        ),
        (
            "sequential",
            ComputeOptions::default().executor(Sequential),
            1,
        ),
    ];
    for (executor, options, t) in &runs {
        let expect_tree: i64 = (1..=100_000).sum();
        assert_eq!(
            measure("tree-100000", || tree(100_000), options, executor, *t, true),
            expect_tree
        );
        assert_eq!(
            measure(
                "chain-10000",
                || chain(10_000),
                options,
                executor,
                *t,
                false
            ),
            10_000
        );
        assert_eq!(
            measure("chain-10000", || chain(10_000), options, executor, *t, true),
            10_000
        );
        measure(
            "fan-1000x100",
            || fan(1000, 100),
            options,
            executor,
            *t,
            true,
        );
        if large {
            measure(
                "tree-1000000",
                || tree(1_000_000),
                options,
                executor,
                *t,
                true,
            );
            measure(
                "chain-100000",
                || chain(100_000),
                options,
                executor,
                *t,
                false,
            );
        }
    }
}
