//! `chunkflow rechunk SRC DST`: rechunks a Zarr array or group under a memory budget, in this
//! process or as distributed stages run by independent ranks (SLURM job arrays, MPI):
//!
//! - `--prepare`, once; then `--stage S --ranks N [--rank R]` for every rank of every stage,
//!   stage after stage; then `--finalize`, once;
//! - `--slurm --ranks N` does all of that on a SLURM cluster (one job array per stage, chained
//!   with `--dependency=afterok`), and `--emit-sbatch DIR --ranks N` writes the batch scripts
//!   and a driver script instead of submitting them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chunkflow::array::chunks::parse_bytes;
use chunkflow::partition::detect_rank_from_env;
use chunkflow::prelude::*;
use chunkflow::rechunk::distributed::slurm::{
    RankCommand, SlurmOptions, run_on_slurm, stage_jobs, write_scripts,
};
use chunkflow::rechunk::distributed::{DistributedRechunk, FinalizeOutcome, RankOptions};
use chunkflow::rechunk::{RechunkOptions, RechunkPlan, TargetChunks, plan_rechunk};
use chunkflow::scheduler::{ChromeTrace, ProgressBar};
use chunkflow::store::{Store, ZarrFormat};

type CliResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Arguments of `chunkflow rechunk`.
#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("distributed").multiple(false)
    .args(["stage", "prepare", "finalize", "slurm", "emit_sbatch"]))]
pub struct RechunkArgs {
    /// The source store (a Zarr array or group at its root): a path, file:// or memory:// URL.
    source: String,
    /// The target store.
    target: String,
    /// Target chunks: sizes per axis (4096,32,32; -1 keeps an axis whole) or per dimension
    /// name (time=4096,lat=32).
    #[arg(long)]
    chunks: String,
    /// The memory the whole run may use (each rank's process, when distributed), e.g. 256MB.
    #[arg(long)]
    max_mem: String,
    /// Allows multi-stage plans whose intermediate reads are at least this big.
    #[arg(long)]
    min_mem: Option<String>,
    /// Where intermediate arrays go (default: TARGET.rechunk-tmp).
    #[arg(long)]
    temp: Option<String>,
    /// Worker threads (default: all cores). Distributed runs must give every rank the same
    /// value (the plan depends on it); --slurm and --emit-sbatch pass it on.
    #[arg(long)]
    threads: Option<std::num::NonZeroUsize>,
    /// The executor.
    #[arg(long, value_parser = ["threads", "sequential"], default_value = "threads")]
    executor: String,
    /// Replace an existing target.
    #[arg(long)]
    overwrite: bool,
    /// Continue an interrupted rechunk into TARGET.
    #[arg(long)]
    resume: bool,
    /// Print the plan and stop (nothing is written); with --ranks N, also the distributed
    /// stages and how many ranks each gets.
    #[arg(long, conflicts_with = "distributed")]
    dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Plot the task graph to this file (.dot, or .svg/.png with Graphviz).
    #[arg(long, conflicts_with = "distributed")]
    graph: Option<PathBuf>,
    /// Keep the intermediate arrays.
    #[arg(long)]
    keep_intermediate: bool,
    /// Rechunk only this array of a group (repeatable).
    #[arg(long = "array")]
    arrays: Vec<String>,
    /// The target's Zarr format (default: the source's).
    #[arg(long)]
    format: Option<String>,
    /// Write a task-stream profile (Chrome trace JSON, open in ui.perfetto.dev).
    #[arg(long, conflicts_with = "distributed")]
    profile: Option<PathBuf>,

    /// Distributed: the number of ranks. With --stage: of that stage (default: from the
    /// launcher, e.g. OMPI_COMM_WORLD_SIZE); with --slurm/--emit-sbatch: at most this many
    /// array tasks per stage.
    #[arg(long)]
    ranks: Option<usize>,
    /// Distributed: this process's rank, from 0 (default: from the launcher:
    /// SLURM_ARRAY_TASK_ID, OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK, SLURM_PROCID).
    #[arg(long, requires = "stage")]
    rank: Option<usize>,
    /// Distributed: run this rank's share of stage S (from 1; --dry-run --ranks N lists the
    /// stages). Stage S starts only once every rank of stage S-1 has finished.
    #[arg(long, value_name = "S")]
    stage: Option<usize>,
    /// Distributed: the driver's first step, once before any rank: check the target, save the
    /// plan, create the intermediates and the (unpublished) target.
    #[arg(long)]
    prepare: bool,
    /// Distributed: the driver's last step, once every rank of every stage has finished:
    /// publish the target and remove the intermediates.
    #[arg(long)]
    finalize: bool,
    /// Run the whole rechunk on SLURM: prepare here, submit one job array per stage (chained
    /// with --dependency=afterok), wait, report failed tasks, finalize here. Needs --ranks.
    #[arg(long, requires = "ranks")]
    slurm: bool,
    /// Write the SLURM batch scripts (one per stage) and a driver script (driver.sh) into DIR
    /// instead of submitting them. Needs --ranks.
    #[arg(long, value_name = "DIR", requires = "ranks")]
    emit_sbatch: Option<PathBuf>,
    /// Where --slurm writes its scripts and the tasks' logs (default: TARGET.slurm).
    #[arg(long, value_name = "DIR")]
    slurm_dir: Option<PathBuf>,
    /// An extra option for every stage's sbatch, e.g. --sbatch-arg=--partition=debug
    /// (repeatable).
    #[arg(long = "sbatch-arg", value_name = "OPTION", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// With --slurm: give up after this many seconds, cancelling the jobs.
    #[arg(long, value_name = "SECONDS")]
    slurm_timeout: Option<u64>,
}

impl RechunkArgs {
    fn threads(&self) -> usize {
        if self.executor == "sequential" {
            return 1;
        }
        self.threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            |n| n.get(),
        )
    }

    fn distributed(&self) -> bool {
        self.stage.is_some()
            || self.prepare
            || self.finalize
            || self.slurm
            || self.emit_sbatch.is_some()
    }
}

pub fn run(args: &RechunkArgs) -> CliResult<()> {
    if args.distributed() {
        for url in [Some(&args.source), Some(&args.target), args.temp.as_ref()]
            .into_iter()
            .flatten()
        {
            if url.starts_with("memory://") {
                return Err(Error::InvalidArgument(format!(
                    "{url}: distributed runs need stores every process can reach (a shared \
                     filesystem path, or s3://); a memory:// store lives in one process"
                ))
                .into());
            }
        }
    }
    let plan = make_plan(args)?;
    if args.dry_run {
        return print_plan(args, &plan);
    }
    if args.distributed() {
        return run_distributed(args, plan);
    }
    let max_mem = plan.max_mem;
    let rechunked = plan.prepare()?;
    if let Some(path) = &args.graph {
        rechunked.visualize(path)?;
    }
    if !args.json {
        print!("{rechunked}");
    }
    let threads = args.threads();
    let executor: Arc<dyn Executor> = if args.executor == "sequential" {
        Arc::new(Sequential)
    } else {
        Arc::new(Threaded::new(threads).with_memory_limit(max_mem))
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

fn make_plan(args: &RechunkArgs) -> Result<RechunkPlan> {
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
    options.workers = args.threads();
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
    plan_rechunk(&source, "", &chunks, &target, "", &options)
}

fn print_plan(args: &RechunkArgs, plan: &RechunkPlan) -> CliResult<()> {
    let distributed = match args.ranks {
        Some(_) => Some(DistributedRechunk::new(plan.clone())?),
        None => None,
    };
    if args.json {
        let mut doc = serde_json::to_value(plan)?;
        if let (Some(d), Some(ranks)) = (&distributed, args.ranks) {
            doc["distributed_stages"] = serde_json::to_value(
                d.stages()
                    .iter()
                    .map(|s| serde_json::json!({ "stage": s, "ranks": s.ranks_for(ranks) }))
                    .collect::<Vec<_>>(),
            )?;
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
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
    if let (Some(d), Some(ranks)) = (&distributed, args.ranks) {
        println!("distributed stages (each one job array; up to {ranks} ranks):");
        for s in d.stages() {
            println!("  {s}\n    -> {} ranks", s.ranks_for(ranks));
        }
    }
    Ok(())
}

fn run_distributed(args: &RechunkArgs, plan: RechunkPlan) -> CliResult<()> {
    if (args.emit_sbatch.is_some() || args.stage.is_some() || args.finalize)
        && (args.overwrite || args.resume)
    {
        return Err(Error::InvalidArgument(
            "--overwrite and --resume belong to the prepare step (--prepare, --slurm, or the \
             arguments of the emitted driver.sh)"
                .into(),
        )
        .into());
    }
    let run = DistributedRechunk::new(plan)?;
    if args.prepare {
        run.prepare()?;
        let stages = run.stages().len();
        println!(
            "prepared {}: {stages} distributed stage{} (run --stage 1 to {stages} in order, then \
             --finalize)",
            run.plan().target,
            if stages == 1 { "" } else { "s" }
        );
        return Ok(());
    }
    if args.finalize {
        match run.finalize()? {
            FinalizeOutcome::Published => println!("published {}", run.plan().target),
            FinalizeOutcome::AlreadyPublished => {
                println!("{} was already published", run.plan().target)
            }
        }
        return Ok(());
    }
    if let Some(stage) = args.stage {
        let me = detect_rank_from_env(args.rank, args.ranks)?;
        let threads = args.threads();
        let executor: Arc<dyn Executor> = if args.executor == "sequential" {
            Arc::new(Sequential)
        } else {
            Arc::new(Threaded::new(threads).with_memory_limit(run.plan().max_mem))
        };
        let options = RankOptions {
            workers: threads,
            compute: Some(
                ComputeOptions::default()
                    .executor_arc(executor)
                    .callback(Arc::new(ProgressBar::new())),
            ),
        };
        let report = run.run_rank(stage, me.ranks, me.rank, &options)?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!("{report} [rank from {}]", me.source);
        }
        return Ok(());
    }
    let max_ranks = args.ranks.expect("clap requires --ranks");
    if max_ranks == 0 {
        return Err(Error::InvalidArgument("--ranks must be at least 1".into()).into());
    }
    let cmd = rank_command(args)?;
    if let Some(dir) = &args.emit_sbatch {
        let jobs = stage_jobs(&run, max_ranks);
        let mut opts = SlurmOptions::new(dir);
        opts.sbatch_args = args.sbatch_args.clone();
        let scripts = write_scripts(&cmd, &jobs, &opts)?;
        for (job, path) in jobs.iter().zip(&scripts.stages) {
            println!(
                "stage {}: {} ({} array tasks)",
                job.stage,
                path.display(),
                job.ranks
            );
        }
        println!(
            "driver: {} (run it on the cluster: bash {} [--overwrite|--resume])",
            scripts.driver.display(),
            scripts.driver.display()
        );
        return Ok(());
    }
    let dir = match &args.slurm_dir {
        Some(d) => d.clone(),
        None if !args.target.contains("://") || args.target.starts_with("file://") => {
            let t = args
                .target
                .trim_start_matches("file://")
                .trim_end_matches('/');
            PathBuf::from(format!("{t}.slurm"))
        }
        None => {
            return Err(Error::InvalidArgument(format!(
                "the target {} is not a local path: give --slurm-dir DIR for the scripts and \
                 logs (on a filesystem every node sees)",
                args.target
            ))
            .into());
        }
    };
    let mut opts = SlurmOptions::new(dir);
    opts.sbatch_args = args.sbatch_args.clone();
    opts.timeout = args.slurm_timeout.map(Duration::from_secs);
    let start = Instant::now();
    let (stages, _) = run_on_slurm(&run, &cmd, max_ranks, &opts, &mut |line| {
        eprintln!("[slurm] {line}")
    })?;
    let seconds = start.elapsed().as_secs_f64();
    if args.json {
        let stages: Vec<_> = stages
            .iter()
            .map(|s| serde_json::json!({"stage": s.stage, "job": s.job, "ranks": s.ranks}))
            .collect();
        println!(
            "{}",
            serde_json::json!({ "seconds": seconds, "stages": stages })
        );
    } else {
        println!(
            "published {} after {} stage(s) on SLURM in {seconds:.1} s",
            run.plan().target,
            stages.len()
        );
    }
    Ok(())
}

/// The command line every job runs (this program, the same plan options), before the step's
/// flags.
fn rank_command(args: &RechunkArgs) -> CliResult<RankCommand> {
    let program = std::env::current_exe()?;
    let mut a: Vec<String> = vec![
        "rechunk".into(),
        args.source.clone(),
        args.target.clone(),
        "--chunks".into(),
        args.chunks.clone(),
        "--max-mem".into(),
        args.max_mem.clone(),
        "--threads".into(),
        args.threads().to_string(),
        "--executor".into(),
        args.executor.clone(),
    ];
    if let Some(m) = &args.min_mem {
        a.extend(["--min-mem".into(), m.clone()]);
    }
    if let Some(t) = &args.temp {
        a.extend(["--temp".into(), t.clone()]);
    }
    if let Some(f) = &args.format {
        a.extend(["--format".into(), f.clone()]);
    }
    for name in &args.arrays {
        a.extend(["--array".into(), name.clone()]);
    }
    if args.keep_intermediate {
        a.push("--keep-intermediate".into());
    }
    Ok(RankCommand {
        program,
        args: a,
        workdir: std::env::current_dir()?,
    })
}
