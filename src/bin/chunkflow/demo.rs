//! `chunkflow demo`: the README's main job, in three acts:
//! 1. the Dask tutorial's delayed graph, sequential vs all cores, with its plot and a
//!    task-stream profile;
//! 2. a chunked random array: sum, mean, `(x + x.T).mean(0)`, with task counts and timings;
//! 3. Zarr: a time-chunked climate-like store written to disk, rechunked to space chunks under a
//!    memory budget, and checked against the source.

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

    arrays(options)?;
    zarr(options)
}
/// Act 2: a chunked random array, reduced on all cores.
fn arrays(options: &DemoOptions) -> Result<()> {
    use chunkflow::array::random;
    let compute = ComputeOptions::default()
        .threads(options.threads)
        .progress();
    println!();
    println!("== Arrays: random (4000, 4000) in (1000, 1000) chunks");
    let x = random::random(&[4000, 4000], [1000, 1000], 42)?;
    println!("x = {x}");
    let t = Instant::now();
    let sum = x.sum_all().compute_with(&compute)?;
    println!(
        "x.sum()            = {sum:.3} in {:.3} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mean = x.mean_all().compute_with(&compute)?;
    println!(
        "x.mean()           = {mean:.6} in {:.3} s",
        t.elapsed().as_secs_f64()
    );
    let y = (&x + &x.t()).mean(&[0])?;
    let t = Instant::now();
    let v = y.compute_with(&compute)?;
    println!(
        "(x + x.T).mean(0)  = [{:.4}, {:.4}, ...] ({} values, {} tasks) in {:.3} s",
        v[[0]],
        v[[1]],
        v.len(),
        y.num_tasks()?,
        t.elapsed().as_secs_f64()
    );
    let small = random::random(&[6, 6], [3, 3], 0)?.sum(&[0])?;
    let plot = options.out.join(if graphviz_available() {
        "array-sum.svg"
    } else {
        "array-sum.dot"
    });
    small.visualize(&plot)?;
    println!("graph:       {}", plot.display());
    Ok(())
}

/// Act 3: a time-chunked store rechunked to space chunks under a memory budget.
fn zarr(options: &DemoOptions) -> Result<()> {
    use chunkflow::array::DType;
    use chunkflow::rechunk::{RechunkOptions, rechunk};
    use chunkflow::store::{ArraySpec, Store, ZarrArray, ZarrFormat};
    println!();
    println!("== Zarr: rechunk (365, 180, 360) float32 from (1, 180, 360) to (365, 30, 30)");
    let (nt, ny, nx) = (365u64, 180u64, 360u64);
    let source_dir = options.out.join("tas-time.zarr");
    let source = Store::filesystem(&source_dir)?;
    let spec = ArraySpec::new(vec![nt, ny, nx], vec![1, ny, nx], DType::F32)
        .with_format(ZarrFormat::V2)
        .with_dimension_names(["time", "lat", "lon"])
        .with_attribute("units", "K");
    let tas = ZarrArray::create(&source, "", &spec, true)?;
    let t = Instant::now();
    for day in 0..nt {
        let shape = ndarray::IxDyn(&[1, ny as usize, nx as usize]);
        let field = ndarray::ArrayD::from_shape_fn(shape, |i| {
            let lat = (i[1] as f32 - 90.0).to_radians();
            let season = (day as f32 / 365.0 * std::f32::consts::TAU).sin();
            288.0 - 30.0 * lat.sin().powi(2)
                + 10.0 * season * lat.sin()
                + (i[2] as f32 * 0.05).cos()
        });
        tas.write_chunk(&[day, 0, 0], field.view())?;
    }
    println!(
        "source:      {} ({:.2} s to write)",
        source_dir.display(),
        t.elapsed().as_secs_f64()
    );
    let target_dir = options.out.join("tas-space.zarr");
    let target = Store::filesystem(&target_dir)?;
    let budget = 32 << 20;
    let mut rechunk_options = RechunkOptions::new(budget);
    rechunk_options.overwrite = true;
    rechunk_options.workers = options.threads;
    let chunks = "time=-1,lat=30,lon=30".parse()?;
    let r = rechunk(&source, "", &chunks, &target, "", &rechunk_options)?;
    print!("{r}");
    let t = Instant::now();
    let executor = Threaded::new(options.threads).with_memory_limit(budget);
    r.execute_with(&ComputeOptions::default().executor(executor).progress())?;
    println!(
        "rechunked in {:.2} s under a 32 MiB budget",
        t.elapsed().as_secs_f64()
    );
    let out = ZarrArray::open(&target, "")?;
    let same = out.read_all::<f32>()? == tas.read_all::<f32>()?;
    println!(
        "target:      {} chunks {:?}, equal to the source: {same}",
        target_dir.display(),
        out.chunk_shape()
    );
    if !same {
        return Err(Error::InvalidArgument(
            "the rechunked array differs from its source".into(),
        ));
    }
    Ok(())
}
