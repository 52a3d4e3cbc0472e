//! Beyond one machine: the same program runs as N independent ranks (a SLURM job array, MPI
//! ranks), each writing only its own chunk-aligned part of one shared Zarr store. No rank talks
//! to another, and no two ranks write the same stored chunk. The model is xpartition's.
//!
//! - [`plan`]: partitions as a pure function of (chunks, dims to split, ranks,
//!   rank): [`Partitioner`], [`Partition`], [`partition`], [`partitions`]. Every rank is used
//!   when there are at least as many blocks as ranks; the algorithm and its guarantees are in
//!   that module's docs.
//! - [`rank`]: which rank this process is ([`detect_rank`]): explicit flags, then
//!   the SLURM array, Open MPI, PMIx, PMI and `srun` variables.
//! - [`write`](mod@write): [`initialize_array`] (metadata only, once) and
//!   [`write_partition`] (one rank's region of an existing array; idempotent).
//! - [`verify`]: [`verify_store`], which stored chunks are missing and which
//!   ranks to re-run (`chunkflow verify STORE`).
//!
//! A typical rank binary:
//!
//! ```no_run
//! use chunkflow::array;
//! use chunkflow::partition::{detect_rank_from_env, write_partition};
//! use chunkflow::store::Store;
//! use chunkflow::ComputeOptions;
//!
//! let me = detect_rank_from_env(None, None)?; // e.g. SLURM_ARRAY_TASK_ID
//! let store = Store::open("out.zarr")?;
//! let x = array::ones::<f64>(&[1000, 1000], [100, 100])?; // the same lazy graph on every rank
//! let part = write_partition(&x, &store, "x", &["time".into()], me.ranks, me.rank,
//!                            &ComputeOptions::default())?;
//! eprintln!("{part}");
//! # Ok::<(), chunkflow::Error>(())
//! ```
//!
//! - [`dataset`](mod@dataset): the same for a whole [`Dataset`](crate::dataset::Dataset) (xpartition's
//!   `ds.partition`): [`initialize_store`] (the group, every array's metadata with xarray's
//!   conventions, consolidated, and the index coordinates in full, once) and
//!   [`write_dataset_partition`] / `Dataset::write_partition` (one rank's region of every other
//!   variable, all in one graph; idempotent).
//!
//! Must not: talk between ranks, or write metadata from a rank.

pub mod dataset;
pub mod plan;
pub mod rank;
pub mod verify;
pub mod write;

pub use dataset::{
    DatasetPartition, InitializedStore, VariablePartition, initialize_store,
    write_dataset_partition,
};
pub use plan::{Partition, PartitionError, Partitioner, SplitDim, partition, partitions};
pub use rank::{RankError, RankInfo, RankSource, detect_rank, detect_rank_from_env};
pub use verify::{ArrayCompleteness, StoreCompleteness, VerifyOptions, verify_store};
pub use write::{initialize_array, plan_partition_write, store_partitioner, write_partition};
