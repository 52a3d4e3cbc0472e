//! The issue's async-loading scenario: a Zarr group of 50 variables with 4 chunks each behind a
//! store that adds 50 ms to every read, loaded with one read at a time and then with 32 in
//! flight (blocking `load_with` and `load_async_with` from tokio), against the ideal
//! latency-bound time `ceil(reads / concurrency) × latency`.
//!
//! ```text
//! cargo run --release --example async_load [-- --latency-ms 50] [--vars 50] [--chunks 4]
//!     [--concurrency 32] [--no-sequential] [--json]
//! ```
//! `--json` prints one JSON line per measurement (for `bench/compare/dataset_load.sh`) instead
//! of the table. Opening the dataset reads metadata through the same slow store and is timed
//! separately: only `load` is compared with the ideal.

use std::time::{Duration, Instant};

use chunkflow::array::DType;
use chunkflow::dataset::{Dataset, LoadOptions, OpenOptions, open_zarr};
use chunkflow::store::{
    ArraySpec, Store, ZarrArray, ZarrFormat, consolidate_metadata, create_group,
};
use ndarray::{ArrayD, IxDyn};
use serde_json::{Map, json};

type BoxError = Box<dyn std::error::Error>;

struct Args {
    latency_ms: u64,
    vars: usize,
    chunks: usize,
    concurrency: usize,
    sequential: bool,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        latency_ms: 50,
        vars: 50,
        chunks: 4,
        concurrency: 32,
        sequential: true,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match flag.as_str() {
            "--latency-ms" => args.latency_ms = number("--latency-ms")?,
            "--vars" => args.vars = number("--vars")? as usize,
            "--chunks" => args.chunks = number("--chunks")? as usize,
            "--concurrency" => args.concurrency = number("--concurrency")? as usize,
            "--no-sequential" => args.sequential = false,
            "--json" => args.json = true,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: async_load [--latency-ms N] [--vars N] \
                     [--chunks N] [--concurrency N] [--no-sequential] [--json]"
                ));
            }
        }
    }
    if args.vars == 0 || args.chunks == 0 {
        return Err("--vars and --chunks must be at least 1".into());
    }
    Ok(args)
}

/// Columns per chunk row: 1,000 float64 values, 8 kB per chunk.
const WIDTH: usize = 1000;

/// A group as xarray writes it (consolidated, v3 `dimension_names`): variables `v00`, `v01`,
/// ... over `(time, x)`, one chunk per time step, variable `i` holding the value `i`.
fn build_store(vars: usize, chunks: usize) -> Result<Store, Box<dyn std::error::Error>> {
    let store = Store::memory();
    let attrs: Map<String, serde_json::Value> = json!({"title": "async load scenario"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    create_group(&store, "", attrs, ZarrFormat::V3)?;
    for v in 0..vars {
        let spec = ArraySpec::new(
            vec![chunks as u64, WIDTH as u64],
            vec![1, WIDTH as u64],
            DType::F64,
        )
        .with_dimension_names(["time", "x"]);
        let array = ZarrArray::create(&store, &var_name(v), &spec, false)?;
        let data = ArrayD::from_elem(IxDyn(&[chunks, WIDTH]), v as f64);
        array.write_region(&[0..chunks as u64, 0..WIDTH as u64], data.view())?;
    }
    consolidate_metadata(&store, "")?;
    Ok(store)
}

fn var_name(v: usize) -> String {
    format!("v{v:02}")
}

/// The sum over every loaded variable (checks that every load read the same values).
fn checksum(ds: &Dataset) -> Result<f64, Box<dyn std::error::Error>> {
    let mut total = 0.0;
    for (_, v) in ds.data_vars() {
        total += v.data().to_f64().sum_all().compute()?;
    }
    Ok(total)
}

struct Measurement {
    mode: &'static str,
    concurrency: usize,
    seconds: f64,
    reads: u64,
    max_in_flight: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let latency = Duration::from_millis(args.latency_ms);
    let store = build_store(args.vars, args.chunks)?.with_latency(latency);
    let stats = store.read_stats().expect("a latency store counts reads");

    let start = Instant::now();
    let ds = open_zarr(&store, "", &OpenOptions::default())?;
    let open_s = start.elapsed().as_secs_f64();
    let open_reads = stats.total_reads();
    let reads = (args.vars * args.chunks) as u64;
    let expected: f64 = (0..args.vars)
        .map(|v| v as f64 * (args.chunks * WIDTH) as f64)
        .sum();

    let measure = |mode: &'static str,
                   concurrency: usize,
                   load: &dyn Fn(&LoadOptions) -> Result<Dataset, BoxError>|
     -> Result<Measurement, BoxError> {
        stats.reset();
        let options = LoadOptions::default().with_concurrency(concurrency);
        let start = Instant::now();
        let loaded = load(&options)?;
        let seconds = start.elapsed().as_secs_f64();
        let m = Measurement {
            mode,
            concurrency,
            seconds,
            reads: stats.total_reads(),
            max_in_flight: stats.max_in_flight(),
        };
        // The loaded dataset is in memory: summing it reads nothing more.
        let sum = checksum(&loaded)?;
        if sum != expected || stats.total_reads() != m.reads || !loaded.in_memory() {
            return Err(format!(
                "{mode} load is wrong: checksum {sum} (expected {expected}), reads {} then {}",
                m.reads,
                stats.total_reads()
            )
            .into());
        }
        Ok(m)
    };

    let mut results = Vec::new();
    if args.sequential {
        results.push(measure("load", 1, &|o| Ok(ds.load_with(o)?))?);
    }
    results.push(measure(
        "load",
        args.concurrency,
        &|o| Ok(ds.load_with(o)?),
    )?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()?;
    results.push(measure("load_async", args.concurrency, &|o| {
        Ok(runtime.block_on(ds.load_async_with(o))?)
    })?);

    let ideal = |c: usize| reads.div_ceil(c as u64) as f64 * latency.as_secs_f64();
    if args.json {
        for m in &results {
            println!(
                "{}",
                json!({
                    "tool": "chunkflow",
                    "mode": m.mode,
                    "vars": args.vars,
                    "chunks_per_var": args.chunks,
                    "latency_ms": args.latency_ms,
                    "concurrency": m.concurrency,
                    "wall_s": m.seconds,
                    "ideal_s": ideal(m.concurrency),
                    "reads": m.reads,
                    "max_in_flight": m.max_in_flight,
                    "open_s": open_s,
                })
            );
        }
        return Ok(());
    }
    println!(
        "{} variables x {} chunks = {reads} chunk reads, +{} ms per read; open_zarr took {open_s:.3} s ({open_reads} metadata reads)",
        args.vars, args.chunks, args.latency_ms
    );
    println!(
        "{:<11} {:>11} {:>9} {:>9} {:>7} {:>6} {:>14}",
        "mode", "concurrency", "time s", "ideal s", "ratio", "reads", "max in flight"
    );
    for m in &results {
        println!(
            "{:<11} {:>11} {:>9.3} {:>9.3} {:>7.2} {:>6} {:>14}",
            m.mode,
            m.concurrency,
            m.seconds,
            ideal(m.concurrency),
            m.seconds / ideal(m.concurrency),
            m.reads,
            m.max_in_flight
        );
    }
    Ok(())
}
