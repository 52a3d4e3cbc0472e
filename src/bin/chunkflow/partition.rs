//! `chunkflow partition init|write STORE --pipeline NAME`: partitioned writes (xpartition's
//! flow) of the pipelines the examples define, for running under SLURM job arrays or MPI
//! launchers without writing a program:
//!
//! - `init`, once: the group, every variable's metadata and the index coordinates;
//! - `write --dims time --ranks N [--rank R]`, once per rank: that rank's chunks only. The rank
//!   comes from `--rank`, else from the launcher (SLURM_ARRAY_TASK_ID, OMPI_COMM_WORLD_RANK,
//!   PMIX_RANK, PMI_RANK, SLURM_PROCID);
//! - `single`: the whole dataset from one process (`Dataset::to_zarr`), the reference a
//!   partitioned write must equal byte for byte.
//!
//! A pipeline is named by `--pipeline` and sized by its flags; every rank must be given the
//! same ones (they define the lazy dataset each rank builds).

use std::sync::Arc;

use chunkflow::dataset::tutorial::{self, ClimateSpec};
use chunkflow::dataset::{Dataset, WriteMode, WriteOptions};
use chunkflow::partition::{detect_rank_from_env, initialize_store, write_dataset_partition};
use chunkflow::prelude::*;
use chunkflow::scheduler::ProgressBar;
use chunkflow::store::{Store, ZarrFormat};

type CliResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Arguments of `chunkflow partition`.
#[derive(clap::Args)]
pub struct PartitionArgs {
    #[command(subcommand)]
    step: Step,
}

#[derive(clap::Subcommand)]
enum Step {
    /// Creates the store, once before the ranks: the group, every variable's metadata
    /// (consolidated) and the index coordinates; no chunk of the other variables.
    Init {
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// The Zarr format.
        #[arg(long, value_parser = ["v2", "v3"], default_value = "v3")]
        format: String,
        /// Replace an existing store.
        #[arg(long)]
        overwrite: bool,
    },
    /// Computes and writes one rank's chunks of every variable into the initialized store.
    Write {
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[command(flatten)]
        rank: RankArgs,
        /// Worker threads of this rank (default: all cores).
        #[arg(long)]
        threads: Option<std::num::NonZeroUsize>,
    },
    /// Writes the whole dataset from this one process (the reference for partitioned writes).
    Single {
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// The Zarr format.
        #[arg(long, value_parser = ["v2", "v3"], default_value = "v3")]
        format: String,
        /// Replace an existing store.
        #[arg(long)]
        overwrite: bool,
    },
}

/// Which pipeline, its size, and the store.
#[derive(clap::Args, Clone, Debug)]
struct PipelineArgs {
    /// The store: a path (or an s3:// URL with the s3 feature).
    store: String,
    /// The pipeline (the dataset the examples build): `climate` is
    /// examples/partition_write.rs's tas/pr(time, lat, lon) and cell_area(lat, lon).
    #[arg(long, value_parser = ["climate"], default_value = "climate")]
    pipeline: String,
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

/// This process's rank and the split.
#[derive(clap::Args, Clone, Debug)]
struct RankArgs {
    /// The dimensions to split among ranks, comma-separated (e.g. time or time,lat).
    #[arg(long, value_delimiter = ',', required = true)]
    dims: Vec<String>,
    /// The number of ranks (default: from the launcher, e.g. SLURM_ARRAY_TASK_COUNT or
    /// OMPI_COMM_WORLD_SIZE).
    #[arg(long)]
    ranks: Option<usize>,
    /// This process's rank, from 0 (default: from the launcher).
    #[arg(long)]
    rank: Option<usize>,
}

pub fn run(args: &PartitionArgs) -> CliResult<()> {
    match &args.step {
        Step::Init {
            pipeline,
            format,
            overwrite,
        } => {
            let ds = build(pipeline)?;
            let store = Store::open(&pipeline.store)?;
            let init = initialize_store(&ds, &store, "", &write_options(format, *overwrite))?;
            println!("{}: {init}", pipeline.store);
        }
        Step::Write {
            pipeline,
            rank,
            threads,
        } => {
            let me = detect_rank_from_env(rank.rank, rank.ranks)?;
            let ds = build(pipeline)?;
            let store = Store::open(&pipeline.store)?;
            let threads = threads.map_or_else(
                || std::thread::available_parallelism().map_or(1, |n| n.get()),
                |n| n.get(),
            );
            let compute = ComputeOptions::default()
                .threads(threads)
                .callback(Arc::new(ProgressBar::new()));
            let part =
                write_dataset_partition(&ds, &store, "", &rank.dims, me.ranks, me.rank, &compute)?;
            println!("{part}\n  (rank from {})", me.source);
        }
        Step::Single {
            pipeline,
            format,
            overwrite,
        } => {
            let ds = build(pipeline)?;
            let store = Store::open(&pipeline.store)?;
            ds.to_zarr(&store, "", &write_options(format, *overwrite))?;
            println!("{}: wrote the whole dataset", pipeline.store);
        }
    }
    Ok(())
}

fn write_options(format: &str, overwrite: bool) -> WriteOptions {
    let format = if format == "v2" {
        ZarrFormat::V2
    } else {
        ZarrFormat::V3
    };
    let mode = if overwrite {
        WriteMode::Overwrite
    } else {
        WriteMode::Create
    };
    WriteOptions::default().with_format(format).with_mode(mode)
}

fn build(p: &PipelineArgs) -> CliResult<Dataset> {
    match p.pipeline.as_str() {
        "climate" => Ok(tutorial::climate(&ClimateSpec {
            ntime: p.ntime,
            nlat: p.nlat,
            nlon: p.nlon,
            time_chunk: p.time_chunk,
            lat_chunk: p.lat_chunk,
            seed: p.seed,
        })?),
        other => Err(Error::InvalidArgument(format!("unknown pipeline {other:?}")).into()),
    }
}
