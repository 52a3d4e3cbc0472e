//! Array workloads (criterion): random generation with sum and mean, `(x + x.T).mean(0)`, a
//! fused chain of element-wise steps, and an in-graph rechunk, on 4000 × 4000 float64 in
//! 500 × 500 chunks (the full-size comparison with dask is `bench/compare/array.sh`).
//!
//! `cargo bench --bench array`

// The allocator of examples/array_bench.rs (glibc's malloc re-faults large chunk buffers).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use chunkflow::array::random;
use chunkflow::prelude::*;

fn bench(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let options = ComputeOptions::default().threads(threads);
    let (n, k) = (4000, 500);
    let mut group = c.benchmark_group("array");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((n * n * 8) as u64));
    group.bench_function("random-sum", |b| {
        b.iter(|| {
            let x = random::random(&[n, n], [k, k], 0).unwrap();
            x.sum_all().compute_with(&options).unwrap()
        })
    });
    group.bench_function("random-mean", |b| {
        b.iter(|| {
            let x = random::random(&[n, n], [k, k], 0).unwrap();
            x.mean_all().compute_with(&options).unwrap()
        })
    });
    group.bench_function("xxt-mean0", |b| {
        b.iter(|| {
            let x = random::random(&[n, n], [k, k], 0).unwrap();
            (&x + &x.t())
                .mean(&[0])
                .unwrap()
                .compute_with(&options)
                .unwrap()
        })
    });
    group.bench_function("fused5-sum", |b| {
        b.iter(|| {
            let x = random::random(&[n, n], [k, k], 0).unwrap();
            let y = (((&x + 1.0) * 2.0).sqrt() - 0.5) / 3.0;
            y.sum_all().compute_with(&options).unwrap()
        })
    });
    group.bench_function("rechunk-rows-to-cols-sum", |b| {
        b.iter(|| {
            let x = random::random(&[n, n], [100, n], 0).unwrap();
            x.rechunk([n, 100])
                .unwrap()
                .sum_all()
                .compute_with(&options)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
