//! xpartition's README flow in Rust: one program, run as N independent ranks, writes one Zarr
//! store. Every rank builds the same lazy climate-like dataset; `init` (once) writes the
//! store's metadata and index coordinates, then `write` (once per rank) computes and writes only
//! that rank's chunks. No rank talks to another.
//!
//! ```text
//! cargo build --release --example partition_write
//! partition_write init STORE                       # once
//! partition_write write STORE --ranks 16 --rank 3  # or let the launcher say which rank:
//! sbatch --array=0-15 --wrap 'partition_write write STORE'   # SLURM_ARRAY_TASK_ID
//! mpirun -n 16 partition_write write STORE                  # OMPI_COMM_WORLD_RANK
//! partition_write single STORE                     # the whole dataset from one process
//! ```
//! `examples/slurm/write_zarr.sh` runs the init, the job array (`write_partition.sh`) and
//! `chunkflow verify` on a SLURM cluster. Size flags (`--ntime --nlat --nlon --time-chunk
//! --lat-chunk --seed`) must be the same for every step. `chunkflow partition init|write
//! --pipeline climate` builds the same dataset.

use std::process::ExitCode;

use chunkflow::ComputeOptions;
use chunkflow::dataset::tutorial::{self, ClimateSpec};
use chunkflow::dataset::{Dataset, WriteMode, WriteOptions};
use chunkflow::partition::{detect_rank_from_env, initialize_store, write_dataset_partition};
use chunkflow::store::{Store, ZarrFormat};
use clap::{Parser, Subcommand};

/// Writes a climate-like dataset into one Zarr store from independent ranks.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    step: Step,
}

#[derive(Subcommand)]
enum Step {
    /// Once, before the ranks: the group, every variable's metadata, the index coordinates.
    Init {
        #[command(flatten)]
        size: Size,
        /// Replace an existing store.
        #[arg(long)]
        overwrite: bool,
        /// Write Zarr v2 (default v3).
        #[arg(long)]
        v2: bool,
    },
    /// Once per rank: this rank's chunks of every variable.
    Write {
        #[command(flatten)]
        size: Size,
        /// The dimensions to split among ranks.
        #[arg(long, value_delimiter = ',', default_value = "time")]
        dims: Vec<String>,
        /// The number of ranks (default: from the launcher).
        #[arg(long)]
        ranks: Option<usize>,
        /// This rank (default: from the launcher: SLURM_ARRAY_TASK_ID, OMPI_COMM_WORLD_RANK, ...).
        #[arg(long)]
        rank: Option<usize>,
        /// Fail, after writing nothing, when this process is rank R (to try failure handling).
        #[arg(long, value_name = "R")]
        fail_rank: Option<usize>,
    },
    /// The whole dataset from this one process, as `Dataset::to_zarr` writes it.
    Single {
        #[command(flatten)]
        size: Size,
        /// Replace an existing store.
        #[arg(long)]
        overwrite: bool,
        /// Write Zarr v2 (default v3).
        #[arg(long)]
        v2: bool,
    },
}

/// The store and the dataset's size (every step must get the same).
#[derive(clap::Args)]
struct Size {
    /// The store (a directory).
    store: String,
    /// Time steps.
    #[arg(long, default_value_t = 64)]
    ntime: usize,
    /// Latitudes.
    #[arg(long, default_value_t = 16)]
    nlat: usize,
    /// Longitudes.
    #[arg(long, default_value_t = 32)]
    nlon: usize,
    /// Time steps per chunk.
    #[arg(long, default_value_t = 4)]
    time_chunk: usize,
    /// Latitudes per chunk (default: all).
    #[arg(long)]
    lat_chunk: Option<usize>,
    /// The random seed of the data.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// The lazy dataset every rank builds: nothing is computed here (except the small cell-area
/// table), only the task graph. `chunkflow partition --pipeline climate` builds the same one.
/// Your own pipeline builds its dataset here the same way: from lazy arrays, with the same
/// graph on every rank.
fn climate(s: &Size) -> Result<Dataset, Box<dyn std::error::Error>> {
    Ok(tutorial::climate(&ClimateSpec {
        ntime: s.ntime,
        nlat: s.nlat,
        nlon: s.nlon,
        time_chunk: s.time_chunk,
        lat_chunk: s.lat_chunk,
        seed: s.seed,
    })?)
}

fn options(overwrite: bool, v2: bool) -> WriteOptions {
    WriteOptions::default()
        .with_format(if v2 { ZarrFormat::V2 } else { ZarrFormat::V3 })
        .with_mode(if overwrite {
            WriteMode::Overwrite
        } else {
            WriteMode::Create
        })
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.step {
        Step::Init {
            size,
            overwrite,
            v2,
        } => {
            let ds = climate(&size)?;
            let store = Store::open(&size.store)?;
            let init = initialize_store(&ds, &store, "", &options(overwrite, v2))?;
            println!("{}: {init}", size.store);
        }
        Step::Write {
            size,
            dims,
            ranks,
            rank,
            fail_rank,
        } => {
            let me = detect_rank_from_env(rank, ranks)?;
            if fail_rank == Some(me.rank) {
                return Err(format!("rank {} fails on purpose (--fail-rank)", me.rank).into());
            }
            let ds = climate(&size)?;
            let store = Store::open(&size.store)?;
            let part = write_dataset_partition(
                &ds,
                &store,
                "",
                &dims,
                me.ranks,
                me.rank,
                &ComputeOptions::default(),
            )?;
            println!("{part}\n  (rank from {})", me.source);
        }
        Step::Single {
            size,
            overwrite,
            v2,
        } => {
            let ds = climate(&size)?;
            let store = Store::open(&size.store)?;
            ds.to_zarr(&store, "", &options(overwrite, v2))?;
            println!("{}: wrote the whole dataset from one process", size.store);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
