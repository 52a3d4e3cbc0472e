//! `chunkflow rechunk SRC DST`: rechunks a Zarr array or group under a memory budget.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chunkflow::array::chunks::parse_bytes;
use chunkflow::prelude::*;
use chunkflow::rechunk::{RechunkOptions, TargetChunks, plan_rechunk};
use chunkflow::scheduler::{ChromeTrace, ProgressBar};
use chunkflow::store::{Store, ZarrFormat};

pub struct RechunkArgs {
    pub source: String,
    pub target: String,
    pub chunks: String,
    pub max_mem: String,
    pub min_mem: Option<String>,
    pub temp: Option<String>,
    pub threads: usize,
    pub sequential: bool,
    pub overwrite: bool,
    pub resume: bool,
    pub dry_run: bool,
    pub json: bool,
    pub graph: Option<PathBuf>,
    pub keep_intermediate: bool,
    pub arrays: Vec<String>,
    pub format: Option<String>,
    pub profile: Option<PathBuf>,
}

pub fn run(args: &RechunkArgs) -> Result<()> {
    let source = Store::open(&args.source)?;
    let target = Store::open(&args.target)?;
    let chunks: TargetChunks = args.chunks.parse()?;
    let max_mem = parse_bytes(&args.max_mem)?;
    let mut options = RechunkOptions::new(max_mem);
    options.min_mem = args.min_mem.as_deref().map(parse_bytes).transpose()?;
    options.temp = args.temp.as_deref().map(Store::open).transpose()?;
    options.overwrite = args.overwrite;
    options.resume = args.resume;
    options.keep_intermediate = args.keep_intermediate;
    options.workers = if args.sequential { 1 } else { args.threads };
    options.arrays = (!args.arrays.is_empty()).then(|| args.arrays.clone());
    options.format = match args.format.as_deref() {
        None => None,
        Some("2" | "v2") => Some(ZarrFormat::V2),
        Some("3" | "v3") => Some(ZarrFormat::V3),
        Some(other) => {
            return Err(Error::InvalidArgument(format!(
                "--format {other:?}: use v2 or v3"
            )));
        }
    };
    let plan = plan_rechunk(&source, "", &chunks, &target, "", &options)?;
    if args.dry_run {
        if args.json {
            println!("{}", plan.to_json());
        } else {
            for a in &plan.arrays {
                let name = if a.name.is_empty() { "(root)" } else { &a.name };
                println!("{name}: {:?} -> {:?}", a.source_chunks, a.target_chunks);
                for (k, s) in a.plan.stages.iter().enumerate() {
                    println!(
                        "  stage {}: read {:?} -> intermediate {:?} -> write {:?}{}",
                        k + 1,
                        s.read_chunks,
                        s.int_chunks,
                        s.write_chunks,
                        if s.intermediate.is_some() {
                            ""
                        } else {
                            " (direct)"
                        }
                    );
                }
                for w in &a.warnings {
                    println!("  warning: {w}");
                }
            }
        }
        return Ok(());
    }
    let rechunked = plan.prepare()?;
    if let Some(path) = &args.graph {
        rechunked.visualize(path)?;
    }
    if !args.json {
        print!("{rechunked}");
    }
    let executor: Arc<dyn Executor> = if args.sequential {
        Arc::new(Sequential)
    } else {
        Arc::new(Threaded::new(args.threads).with_memory_limit(max_mem))
    };
    let trace = Arc::new(ChromeTrace::new());
    let mut compute = ComputeOptions::default()
        .executor_arc(executor)
        .callback(Arc::new(ProgressBar::new()));
    if args.profile.is_some() {
        compute = compute.callback(trace.clone());
    }
    let start = Instant::now();
    rechunked.execute_with(&compute)?;
    let seconds = start.elapsed().as_secs_f64();
    if let Some(path) = &args.profile {
        trace.write(path)?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "seconds": seconds, "plan": rechunked.plan() })
        );
    } else {
        println!("done in {seconds:.2} s");
    }
    Ok(())
}
