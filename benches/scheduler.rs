//! Scheduler overhead per task (graph building included), criterion version of
//! `examples/scheduler_overhead.rs`: a tree reduction of independent tasks, a linear chain, and
//! a fan-out/fan-in, under the threaded and sequential executors.
//!
//! `cargo bench --bench scheduler`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use chunkflow::prelude::*;

fn inc(x: i64) -> i64 {
    x + 1
}

fn total(xs: Vec<i64>) -> i64 {
    xs.iter().sum()
}

fn tree(n: usize) -> Delayed<i64> {
    let mut level: Vec<Delayed<i64>> = (0..n as i64).map(|i| delayed!(inc(i))).collect();
    while level.len() > 1 {
        level = level
            .chunks(8)
            .map(|g| delayed!(total(g.to_vec())))
            .collect();
    }
    level.pop().unwrap()
}

fn chain(n: usize) -> Delayed<i64> {
    let mut x = Delayed::value(0i64);
    for _ in 0..n {
        x = delayed!(inc(x));
    }
    x
}

fn fan(width: usize, rounds: usize) -> Delayed<i64> {
    let mut x = Delayed::value(0i64);
    for _ in 0..rounds {
        let parts: Vec<Delayed<i64>> = (0..width as i64)
            .map(|i| delayed!(inc(delayed!(total(vec![x.clone(), Delayed::value(i)])))))
            .collect();
        // Keep values bounded: 100 rounds of sums would overflow i64.
        x = delayed!(total(parts)).map(|t: i64| t % 1_000_003);
    }
    x
}

/// A named graph builder.
type Shape = (&'static str, fn() -> Delayed<i64>);

fn bench(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shapes: [Shape; 3] = [
        ("tree-10000", || tree(10_000)),
        ("chain-10000", || chain(10_000)),
        ("fan-100x100", || fan(100, 100)),
    ];
    let mut group = c.benchmark_group("scheduler");
    group.sample_size(20);
    for (name, build) in shapes {
        let tasks = build().graph().unwrap().len() as u64;
        group.throughput(Throughput::Elements(tasks));
        for (executor, options) in [
            (
                "threaded",
                ComputeOptions::default().threads(threads).fuse(false),
            ),
            (
                "sequential",
                ComputeOptions::default().executor(Sequential).fuse(false),
            ),
        ] {
            group.bench_function(BenchmarkId::new(executor, name), |b| {
                b.iter(|| build().compute_with(&options).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
