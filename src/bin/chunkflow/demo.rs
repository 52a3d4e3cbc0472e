//! `chunkflow demo`: the README's main job. Builds the Dask tutorial's delayed graph, runs it
//! sequentially and on all cores, writes its plot and a task-stream profile.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chunkflow::graph::dot::graphviz_available;
use chunkflow::prelude::*;
use chunkflow::scheduler::ChromeTrace;

pub struct DemoOptions {
    pub threads: usize,
    pub out: PathBuf,
    pub sleep_ms: u64,
}

pub fn run(options: &DemoOptions) -> Result<()> {
    std::fs::create_dir_all(&options.out)
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", options.out.display())))?;
    println!(
        "== Delayed: square(3), square(4) -> add -> square_root, each step {} ms",
        options.sleep_ms
    );
    let step = Duration::from_millis(options.sleep_ms);
    let square = move |x: i64| {
        std::thread::sleep(step);
        x * x
    };
    let add = move |x: i64, y: i64| {
        std::thread::sleep(step);
        x + y
    };
    let square_root = move |x: i64| {
        std::thread::sleep(step);
        (x as f64).sqrt()
    };
    let a = delayed(square).name("square").pure(true).call((3,));
    let b = delayed(square).name("square").pure(true).call((4,));
    let c = delayed(add).name("add").pure(true).call((a, b));
    let result = delayed(square_root)
        .name("square_root")
        .pure(true)
        .call((c,));

    let t = Instant::now();
    let v = result.compute_with(&ComputeOptions::default().executor(Sequential))?;
    println!("sequential:  {v} in {:.2} s", t.elapsed().as_secs_f64());

    let trace = Arc::new(ChromeTrace::new());
    let parallel = ComputeOptions::default()
        .threads(options.threads)
        .callback(trace.clone())
        .progress();
    let t = Instant::now();
    let v = result.compute_with(&parallel)?;
    println!(
        "{} threads:  {v} in {:.2} s",
        options.threads,
        t.elapsed().as_secs_f64()
    );

    let graph = options.out.join(if graphviz_available() {
        "delayed.svg"
    } else {
        "delayed.dot"
    });
    result.visualize(&graph)?;
    let profile = options.out.join("delayed-profile.json");
    trace.write(&profile)?;
    println!("graph:       {}", graph.display());
    println!(
        "profile:     {} (open in https://ui.perfetto.dev)",
        profile.display()
    );
    Ok(())
}
