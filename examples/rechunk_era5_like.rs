//! The Pangeo rechunk job: an ERA5-like float32 `(time, lat, lon)` store chunked one time step
//! per chunk (good for maps) rechunked to long time series per small tile (good for time
//! series), under a memory budget; then verified element for element. Prints one JSON line
//! with the timings and the peak RSS of the rechunk itself.
//!
//! ```text
//! cargo run --release --example rechunk_era5_like -- \
//!     [--shape 4096,256,256] [--target 4096,32,32] [--max-mem 256MB] [--format v2|v3] \
//!     [--threads N] [--out DIR] [--skip-write] [--no-verify]
//! ```
//! The defaults are small (512 × 128 × 128, 32 MiB) so the example runs in seconds.

use std::path::PathBuf;
use std::time::Instant;

use chunkflow::array::DType;
use chunkflow::array::chunks::parse_bytes;
use chunkflow::prelude::*;
use chunkflow::rechunk::{RechunkOptions, rechunk};
use chunkflow::store::{ArraySpec, Store, ZarrArray, ZarrFormat};
use ndarray::{ArrayD, IxDyn};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn list(s: &str) -> Vec<u64> {
    s.split(',')
        .map(|p| p.trim().parse().expect("a number"))
        .collect()
}

fn peak_rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// A smooth field plus a little deterministic noise: compresses like real temperatures.
fn time_step(t: u64, lat: u64, lon: u64) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(&[1, lat as usize, lon as usize]), |i| {
        let (y, x) = (i[1] as f32, i[2] as f32);
        let seasonal = (t as f32 * 0.017).sin() * 10.0;
        let noise = ((t as usize * 31 + i[1] * 17 + i[2] * 7) % 101) as f32 * 0.01;
        273.0 + 20.0 * (y * 0.05).cos() + 5.0 * (x * 0.03).sin() + seasonal + noise
    })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let shape = list(&arg(&args, "--shape").unwrap_or_else(|| "512,128,128".into()));
    let target = arg(&args, "--target").unwrap_or_else(|| format!("{},32,32", shape[0]));
    let max_mem = parse_bytes(&arg(&args, "--max-mem").unwrap_or_else(|| "64MB".into()))?;
    let format = match arg(&args, "--format").as_deref() {
        Some("v3") => ZarrFormat::V3,
        _ => ZarrFormat::V2,
    };
    let threads: usize = arg(&args, "--threads")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let out = PathBuf::from(arg(&args, "--out").unwrap_or_else(|| "target/examples/era5".into()));
    let src_dir = out.join(format!("source-{format:?}.zarr").to_lowercase());
    let dst_dir = out.join(format!("target-{format:?}.zarr").to_lowercase());

    let source = Store::filesystem(&src_dir)?;
    if !args.iter().any(|a| a == "--skip-write") {
        let t = Instant::now();
        let spec = ArraySpec::new(shape.clone(), vec![1, shape[1], shape[2]], DType::F32)
            .with_format(format)
            .with_dimension_names(["time", "lat", "lon"])
            .with_attribute("units", "K");
        let array = ZarrArray::create(&source, "", &spec, true)?;
        // Writing the source is not what we measure; do it on all cores.
        let steps: Vec<Delayed<()>> = (0..shape[0])
            .map(|t| {
                let array = array.clone();
                let (lat, lon) = (shape[1], shape[2]);
                delayed(move |t: u64| {
                    array
                        .write_chunk(&[t, 0, 0], time_step(t, lat, lon).view())
                        .expect("writing the source");
                })
                .pure(true)
                .token(&(lat, lon))
                .name("write-source")
                .call((t,))
            })
            .collect();
        chunkflow::compute(&steps)?;
        eprintln!(
            "source written in {:.2} s: {}",
            t.elapsed().as_secs_f64(),
            src_dir.display()
        );
    }

    let target_store = Store::filesystem(&dst_dir)?;
    let mut options = RechunkOptions::new(max_mem);
    options.overwrite = true;
    options.workers = threads;
    // Measure the rechunk alone: reset the peak resident set size (Linux).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = peak_rss_mb();
    let t = Instant::now();
    let rechunked = rechunk(&source, "", &target.parse()?, &target_store, "", &options)?;
    eprint!("{rechunked}");
    rechunked.execute_with(
        &ComputeOptions::default().executor(Threaded::new(threads).with_memory_limit(max_mem)),
    )?;
    let rechunk_s = t.elapsed().as_secs_f64();
    let peak = peak_rss_mb();

    let verified = if args.iter().any(|a| a == "--no-verify") {
        None
    } else {
        let a = ZarrArray::open(&source, "")?;
        let b = ZarrArray::open(&target_store, "")?;
        assert_eq!(b.chunk_shape(), list(&target).as_slice());
        assert_eq!(
            b.format(),
            a.format(),
            "the target keeps the source's format"
        );
        assert_eq!(b.read_all::<f32>()?, a.read_all::<f32>()?);
        Some(true)
    };
    let stages = rechunked.plan().arrays[0].plan.stages.len();
    println!(
        "{}",
        serde_json::json!({
            "workload": "rechunk", "format": format!("{format:?}").to_lowercase(),
            "shape": shape, "target_chunks": list(&target), "max_mem_mb": max_mem >> 20,
            "threads": threads, "stages": stages, "rechunk_s": (rechunk_s * 1e3).round() / 1e3,
            "peak_rss_mb": peak, "rss_before_mb": rss_before, "verified": verified,
        })
    );
    Ok(())
}
