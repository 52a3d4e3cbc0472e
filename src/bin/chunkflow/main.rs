//! The `chunkflow` command line: thin; parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
mod info;
mod plan;
mod rechunk;
mod verify;

/// Lazy, parallel, larger-than-memory work on chunked arrays stored in Zarr.
#[derive(Parser)]
#[command(name = "chunkflow", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the demo: a delayed task graph, sequential vs parallel, with its graph plotted.
    Demo {
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<std::num::NonZeroUsize>,
        /// Where to write the demo's files.
        #[arg(long, default_value = "chunkflow-demo")]
        out: PathBuf,
        /// How long each demo task works, in milliseconds.
        #[arg(long, default_value_t = 500)]
        sleep_ms: u64,
    },
    /// Rechunks a Zarr array or group under a memory budget (the rechunker algorithm).
    Rechunk(RechunkCmd),
    /// Prints the tree of groups and arrays in a Zarr store: shapes, chunks, codecs, sizes.
    Info {
        /// The store: a path, file:// or memory:// URL.
        store: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prints the rechunker plan (read, intermediate and write chunks per stage) for changing
    /// an array's chunking under a memory budget.
    Plan {
        /// The array's shape, e.g. 4096,256,256.
        #[arg(long)]
        shape: String,
        /// The source chunks, e.g. 1,256,256.
        #[arg(long)]
        source_chunks: String,
        /// The target chunks, e.g. 4096,32,32.
        #[arg(long)]
        target_chunks: String,
        /// Bytes per element (4 for float32).
        #[arg(long)]
        itemsize: u64,
        /// The memory a stage may use, e.g. 256MB.
        #[arg(long)]
        max_mem: String,
        /// The smallest intermediate chunk worth reading; allows multi-stage plans.
        #[arg(long)]
        min_mem: Option<String>,
        /// Print JSON: {"stages": [...], "warnings": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Checks that every chunk of every array in a Zarr store is stored (e.g. after a
    /// partitioned write); names the missing chunks and, with --ranks/--dims, the ranks to
    /// re-run. Exit status 0: complete, 3: chunks missing, 1: error.
    Verify(verify::VerifyArgs),
}

/// Arguments of `chunkflow rechunk`.
#[derive(clap::Args)]
struct RechunkCmd {
    /// The source store (a Zarr array or group at its root): a path, file:// or memory:// URL.
    source: String,
    /// The target store.
    target: String,
    /// Target chunks: sizes per axis (4096,32,32; -1 keeps an axis whole) or per dimension
    /// name (time=4096,lat=32).
    #[arg(long)]
    chunks: String,
    /// The memory the whole run may use, e.g. 256MB.
    #[arg(long)]
    max_mem: String,
    /// Allows multi-stage plans whose intermediate reads are at least this big.
    #[arg(long)]
    min_mem: Option<String>,
    /// Where intermediate arrays go (default: TARGET.rechunk-tmp).
    #[arg(long)]
    temp: Option<String>,
    /// Worker threads (default: all cores).
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
    /// Print the plan and stop (nothing is written).
    #[arg(long)]
    dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Plot the task graph to this file (.dot, or .svg/.png with Graphviz).
    #[arg(long)]
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
    #[arg(long)]
    profile: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo {
            threads,
            out,
            sleep_ms,
        } => demo::run(&demo::DemoOptions {
            threads: threads.map_or_else(
                || std::thread::available_parallelism().map_or(1, |n| n.get()),
                |n| n.get(),
            ),
            out,
            sleep_ms,
        }),
        Command::Plan {
            shape,
            source_chunks,
            target_chunks,
            itemsize,
            max_mem,
            min_mem,
            json,
        } => plan::run(&plan::PlanArgs {
            shape,
            source_chunks,
            target_chunks,
            itemsize,
            max_mem,
            min_mem,
            json,
        }),
        Command::Info { store, json } => info::run(&info::InfoArgs { store, json }),
        Command::Verify(args) => match verify::run(&args) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::Rechunk(r) => rechunk::run(&rechunk::RechunkArgs {
            source: r.source,
            target: r.target,
            chunks: r.chunks,
            max_mem: r.max_mem,
            min_mem: r.min_mem,
            temp: r.temp,
            threads: r.threads.map_or_else(
                || std::thread::available_parallelism().map_or(1, |n| n.get()),
                |n| n.get(),
            ),
            sequential: r.executor == "sequential",
            overwrite: r.overwrite,
            resume: r.resume,
            dry_run: r.dry_run,
            json: r.json,
            graph: r.graph,
            keep_intermediate: r.keep_intermediate,
            arrays: r.arrays,
            format: r.format,
            profile: r.profile,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}
