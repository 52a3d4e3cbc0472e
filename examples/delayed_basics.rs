//! The Dask tutorial's first example, in Rust: `square(3)` and `square(4)` feed `add`, which
//! feeds `square_root`; each step sleeps to stand for real work. Nothing runs until
//! `compute()`. Sequentially that is 4 steps; in parallel the two squares overlap, so ~3 steps.
//! The graph is written to `target/examples/delayed_basics.svg` (`.dot` without Graphviz).
//!
//! ```text
//! cargo run --release --example delayed_basics [-- --sleep-ms 1000]
//! ```

use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

use chunkflow::graph::dot::graphviz_available;
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

fn main() -> chunkflow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let ms = args
        .iter()
        .position(|a| a == "--sleep-ms")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    STEP.set(Duration::from_millis(ms)).expect("set once");

    // Plain Rust: every call runs as it is made.
    let t = Instant::now();
    let plain = square_root(add(square(3), square(4)));
    println!(
        "plain calls:   {plain} in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // Lazy: building the graph is instant...
    let t = Instant::now();
    let a = delayed!(square(3));
    let b = delayed!(square(4));
    let c = delayed!(add(a, b));
    let result = delayed!(square_root(c));
    println!(
        "graph built in {:.1} µs: {result:?}",
        t.elapsed().as_secs_f64() * 1e6
    );

    // ...and computing it runs the two squares at once.
    let t = Instant::now();
    let sequential = result.compute_with(&ComputeOptions::default().executor(Sequential))?;
    let seq_s = t.elapsed().as_secs_f64();
    println!("sequential:    {sequential} in {seq_s:.2} s");
    let t = Instant::now();
    let parallel = result.compute_with(&ComputeOptions::default().threads(2))?;
    let par_s = t.elapsed().as_secs_f64();
    println!(
        "2 threads:     {parallel} in {par_s:.2} s ({:.2}x faster)",
        seq_s / par_s
    );
    assert_eq!(sequential, 5.0);
    assert_eq!(parallel, 5.0);

    let dir = PathBuf::from("target/examples");
    std::fs::create_dir_all(&dir).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let path = dir.join(if graphviz_available() {
        "delayed_basics.svg"
    } else {
        "delayed_basics.dot"
    });
    result.visualize(&path)?;
    println!("graph written to {}", path.display());
    Ok(())
}
