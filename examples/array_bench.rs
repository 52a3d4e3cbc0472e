//! Array benchmarks (issue: chunked arrays), one JSON line per workload with wall time, peak
//! RSS and task counts:
//! - `sum`, `mean`: `random((20000, 20000), chunks=(2000, 2000))` reduced to a scalar;
//! - `xxt-mean0`: `(x + x.T).mean(axis=0)` on the same array;
//! - `fused5`: a chain of 5 element-wise ops over 400 chunks, with the task count before and
//!   after fusion;
//! - `ooc-sum` (with `--ooc`): the sum of a 64 GiB virtual random array in 64 MiB chunks.
//!
//! Reductions over random arrays pull each block straight from the generator through the
//! cache (block streams, `src/array/stream.rs`), so the blocks are never materialised. With
//! `--materialize` every random array first goes through an opaque `map_blocks` (as data read
//! from storage would), which forces whole blocks in memory; those lines carry the workload
//! name with `+blocks` appended.
//!
//! Peak RSS is reset between workloads (`/proc/self/clear_refs`), so each line is its own peak
//! (but the allocator keeps freed memory mapped for reuse, so run one workload per process,
//! `--only NAME`, as `bench/compare/array.sh` does, for a clean peak). The binary uses mimalloc
//! (see below).
//!
//! ```text
//! cargo run --release --example array_bench [-- --threads N] [--size 20000] [--ooc] [--only NAME]
//!     [--materialize]
//! ```

use std::time::Instant;

// mimalloc, as a program that allocates many large chunk buffers should use. glibc's malloc
// gives freed 30 MiB buffers back to the kernel (per-thread arenas, heap trimming), and every new
// one is faulted in again 4 KiB at a time: with it, `(x + x.T).mean(0)` spends more time in
// page faults than in arithmetic (bench/RESULTS.md, arrays, has both allocators' numbers).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use chunkflow::array::{Array, random};
use chunkflow::graph::FreezeOptions;
use chunkflow::prelude::*;

fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn reset_peak_rss() {
    // "5" resets the peak resident set size (Linux).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
}

/// `x` as it is, or (with `--materialize`) behind an opaque `map_blocks` that forces its blocks
/// to be computed whole.
fn source(x: Array<f64>, materialize: bool) -> Array<f64> {
    if materialize {
        x.map_blocks(|block, _| block)
    } else {
        x
    }
}

fn report(name: &str, threads: usize, start: Instant, extra: serde_json::Value) {
    let suffix = if std::env::args().any(|a| a == "--materialize") {
        "+blocks"
    } else {
        ""
    };
    let mut line = serde_json::json!({
        "workload": format!("{name}{suffix}"),
        "threads": threads,
        "wall_s": (start.elapsed().as_secs_f64() * 1e3).round() / 1e3,
        "peak_rss_mb": peak_rss_bytes() / (1 << 20),
    });
    if let (Some(obj), Some(more)) = (line.as_object_mut(), extra.as_object()) {
        obj.extend(more.clone());
    }
    println!("{line}");
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = arg(&args, "--threads")
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let n: usize = arg(&args, "--size").unwrap_or(20_000);
    let c = n / 10;
    let only: Option<String> = arg(&args, "--only");
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let options = ComputeOptions::default().threads(threads);
    let chunk_mb = (c * c * 8) as f64 / (1 << 20) as f64;
    let blocks = args.iter().any(|a| a == "--materialize");

    if run("sum") {
        reset_peak_rss();
        let t = Instant::now();
        let x = source(random::random(&[n, n], [c, c], 0)?, blocks);
        let s = x.sum_all().compute_with(&options)?;
        report(
            "sum",
            threads,
            t,
            serde_json::json!({"shape": [n, n], "chunk_mb": chunk_mb, "result": s}),
        );
    }
    if run("mean") {
        reset_peak_rss();
        let t = Instant::now();
        let x = source(random::random(&[n, n], [c, c], 0)?, blocks);
        let m = x.mean_all().compute_with(&options)?;
        report(
            "mean",
            threads,
            t,
            serde_json::json!({"shape": [n, n], "chunk_mb": chunk_mb, "result": m}),
        );
    }
    if run("xxt-mean0") {
        reset_peak_rss();
        let t = Instant::now();
        let x = source(random::random(&[n, n], [c, c], 0)?, blocks);
        let y = (&x + &x.t()).mean(&[0])?;
        let v = y.compute_with(&options)?;
        report(
            "xxt-mean0",
            threads,
            t,
            serde_json::json!({"shape": [n, n], "chunk_mb": chunk_mb, "result_len": v.len(), "first": v[[0]]}),
        );
    }
    if run("fused5") {
        reset_peak_rss();
        let t = Instant::now();
        let x = source(random::random(&[4000, 4000], [200, 200], 1)?, blocks);
        let y = (((&x + 1.0) * 2.0).sqrt() - 0.5) / 3.0;
        let built = y.graph(FreezeOptions { fuse: false })?.len();
        let fused = y.graph(FreezeOptions::default())?.len();
        let s = y.sum_all().compute_with(&options)?;
        report(
            "fused5",
            threads,
            t,
            serde_json::json!({"chunks": x.num_chunks(), "tasks_built": built, "tasks_run": fused, "result": s}),
        );
    }
    if args.iter().any(|a| a == "--ooc") && run("ooc-sum") {
        reset_peak_rss();
        let t = Instant::now();
        // 2^16 × 2^17 float64 = 64 GiB; chunks 4096 × 2048 = 64 MiB.
        let x = source(
            random::random(&[1 << 16, 1 << 17], [4096, 2048], 2)?,
            blocks,
        );
        let s = x.sum_all().compute_with(&options)?;
        report(
            "ooc-sum",
            threads,
            t,
            serde_json::json!({"nbytes_gib": x.nbytes() >> 30, "chunk_mb": 64, "chunks": x.num_chunks(), "result": s}),
        );
    }
    Ok(())
}
