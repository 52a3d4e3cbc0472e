//! The Dask tutorial's loop: 30 iterations of `square(i)`, `square(i + 1)`, `add`,
//! `square_root`, then one `total` over the 30 results. The calls are pure, so `square(i + 1)`
//! of one iteration and `square(i)` of the next are one task: 92 tasks, not 121, which a thread
//! pool runs in parallel. Each task sleeps a little to stand for work.
//!
//! ```text
//! cargo run --release --example many_tasks [-- --sleep-ms 20]
//! ```

use std::thread::sleep;
use std::time::{Duration, Instant};

use chunkflow::prelude::*;

static STEP: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

fn work() {
    sleep(*STEP.get().expect("step duration is set in main"));
}

fn square(x: i64) -> i64 {
    work();
    x * x
}

fn add(x: i64, y: i64) -> i64 {
    work();
    x + y
}

fn square_root(x: i64) -> f64 {
    work();
    (x as f64).sqrt()
}

fn total(xs: Vec<f64>) -> f64 {
    xs.iter().sum()
}

fn main() -> chunkflow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let ms = args
        .iter()
        .position(|a| a == "--sleep-ms")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    STEP.set(Duration::from_millis(ms)).expect("set once");

    let results: Vec<Delayed<f64>> = (0..30)
        .map(|i| {
            let a = delayed!(square(i));
            let b = delayed!(square(i + 1));
            let c = delayed!(add(a, b));
            delayed!(square_root(c))
        })
        .collect();
    let sum = delayed!(total(results));
    println!("{} tasks", sum.graph()?.len());

    let expected: f64 = (0..30i64)
        .map(|i| ((i * i + (i + 1) * (i + 1)) as f64).sqrt())
        .sum();
    for (name, options) in [
        ("sequential", ComputeOptions::default().executor(Sequential)),
        ("2 threads", ComputeOptions::default().threads(2)),
        ("8 threads", ComputeOptions::default().threads(8)),
    ] {
        let t = Instant::now();
        let v = sum.compute_with(&options.progress())?;
        println!("{name:<11} {v:.4} in {:.2} s", t.elapsed().as_secs_f64());
        assert!((v - expected).abs() < 1e-9);
    }
    Ok(())
}
