//! The `chunkflow` command line: thin; parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
mod info;
mod partition;
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
    Rechunk(Box<rechunk::RechunkArgs>),
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
    /// Partitioned writes of the examples' pipelines (xpartition's flow): `init` once, then
    /// `write` in every rank (a SLURM array task, an MPI rank), each writing only its own
    /// chunks; `single` writes the whole dataset from one process.
    Partition(partition::PartitionArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<(), Box<dyn std::error::Error>> = match cli.command {
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
        })
        .map_err(Into::into),
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
        })
        .map_err(Into::into),
        Command::Info { store, json } => {
            info::run(&info::InfoArgs { store, json }).map_err(Into::into)
        }
        Command::Verify(args) => match verify::run(&args) {
            Ok(code) => return code,
            Err(e) => Err(e.into()),
        },
        Command::Rechunk(args) => rechunk::run(&args),
        Command::Partition(args) => partition::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}
