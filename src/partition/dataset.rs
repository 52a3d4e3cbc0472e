//! Partitioned writes of a whole [`Dataset`], xpartition's `ds.partition.initialize_store` and
//! `ds.partition.write`: [`initialize_store`] runs once and writes the group, every array's
//! metadata (xarray's conventions, consolidated) and the index coordinates; then every rank
//! calls [`write_dataset_partition`] (or [`Dataset::write_partition`]), which computes and
//! writes only its own region of every other variable.
//!
//! ```
//! use chunkflow::array;
//! use chunkflow::dataset::{Dataset, OpenOptions, Variable, WriteOptions, open_zarr};
//! use chunkflow::partition::{initialize_store, write_dataset_partition};
//! use chunkflow::store::Store;
//! use chunkflow::ComputeOptions;
//!
//! let ds = Dataset::new()
//!     .with_variable("time", Variable::new(["time"], array::arange(0i64, 8, 1, 8)?)?)?
//!     .with_variable("t", Variable::new(["time", "x"], array::ones::<f32>(&[8, 3], [2, 3])?)?)?;
//! let store = Store::memory();
//! let init = initialize_store(&ds, &store, "", &WriteOptions::default())?; // once
//! assert_eq!(init.written, ["time"]); // index coordinates: in full, now
//! for rank in 0..3 {
//!     // In real use each rank is its own process (a SLURM array task, an MPI rank).
//!     let part = write_dataset_partition(&ds, &store, "", &["time".into()], 3, rank,
//!                                        &ComputeOptions::default())?;
//!     println!("{part}");
//! }
//! let back = open_zarr(&store, "", &OpenOptions::default())?;
//! assert_eq!(back.variable("t")?.data().to_f64().sum_all().compute()?, 24.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Invariants
//! - The store's layout comes from the same plan as [`Dataset::to_zarr`]'s, so a store filled
//!   by ranks holds the same bytes as one written by a single `to_zarr` (metadata included).
//! - Every variable is partitioned by the same pure function as array writes
//!   ([`plan_partition_write`]): its stored chunk grid split along the split dims it has, among
//!   the ranks. A variable with none of them is written whole by rank 0; index coordinates are
//!   written by [`initialize_store`] only (as xpartition leaves in-memory variables to
//!   `initialize_store`). Every stored chunk has exactly one writer rank.
//! - A rank writes chunks only: never metadata, attributes, consolidated metadata or another
//!   rank's chunks. It encodes values with the **stored** encoding (read from the store), as
//!   xarray's region writes do. Running a rank again writes the same bytes.
//! - All of one rank's variables are computed in one graph (one scheduler run), so shared
//!   inputs are computed once.
//!
//! Must not: create or change metadata from a rank, or talk to other ranks.

use std::fmt;

use super::plan::{Partition, PartitionError, SplitDim};
use super::write::plan_partition_write;
use crate::collection::ComputeOptions;
use crate::dataset::{
    Dataset, DatasetError, DatasetResult, OpenOptions, WriteOptions, child, create_store,
    encode_variable, join_writes, open_zarr, plan_store, with_any,
};
use crate::store::Store;

/// What [`initialize_store`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitializedStore {
    /// Every array created (metadata only, unless also in `written`), in the dataset's order.
    pub arrays: Vec<String>,
    /// The arrays written in full now: the index coordinates.
    pub written: Vec<String>,
}

impl fmt::Display for InitializedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "initialized {} arrays ({}); written in full: {}",
            self.arrays.len(),
            self.arrays.join(", "),
            if self.written.is_empty() {
                "none".to_string()
            } else {
                self.written.join(", ")
            }
        )
    }
}

/// Writes the group of `ds` at `path` in `store` with every variable's metadata (as
/// [`Dataset::to_zarr`] would: xarray's conventions, the encoding, consolidated metadata unless
/// turned off) and the index coordinates in full; no chunk of another variable is written.
/// Run it once, before the ranks.
///
/// `options` are [`Dataset::to_zarr`]'s (format, mode, consolidation, encoding overrides);
/// `compute` is not used: the index coordinates are always written now.
///
/// # Errors
/// As [`Dataset::to_zarr`]: an existing group or array at `path` unless
/// [`WriteMode::Overwrite`](crate::dataset::WriteMode::Overwrite), chunks that do not fit the
/// stored ones, encodings that cannot be written; nothing is written then.
pub fn initialize_store(
    ds: &Dataset,
    store: &Store,
    path: &str,
    options: &WriteOptions,
) -> DatasetResult<InitializedStore> {
    let plan = plan_store(ds, options)?;
    let writes = create_store(&plan, store, path, options)?;
    let mut written = Vec::new();
    let mut eager = Vec::new();
    for (var, (name, write)) in plan.variables.iter().zip(writes) {
        if var.index {
            written.push(name);
            eager.push(write);
        }
    }
    if !eager.is_empty() {
        join_writes(eager).compute()?;
    }
    Ok(InitializedStore {
        arrays: plan.variables.iter().map(|v| v.name.clone()).collect(),
        written,
    })
}

/// One variable's share of a rank's write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariablePartition {
    /// The variable.
    pub name: String,
    /// The split dims it has (empty: rank 0 writes it whole).
    pub split: Vec<String>,
    /// The rank's partition of its stored chunks (idle: nothing to write).
    pub partition: Partition,
}

/// What one rank wrote: [`write_dataset_partition`]'s report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetPartition {
    /// The rank.
    pub rank: usize,
    /// The number of ranks.
    pub ranks: usize,
    /// Every variable written by ranks (index coordinates excluded), in the dataset's order.
    pub variables: Vec<VariablePartition>,
}

impl DatasetPartition {
    /// Whether this rank had nothing to write.
    pub fn is_idle(&self) -> bool {
        self.variables.iter().all(|v| v.partition.is_idle())
    }

    /// The stored chunks (or shards) this rank wrote, over all variables.
    pub fn num_chunks(&self) -> usize {
        self.variables
            .iter()
            .filter(|v| !v.partition.is_idle())
            .map(|v| v.partition.num_blocks())
            .sum()
    }
}

impl fmt::Display for DatasetPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_idle() {
            return write!(
                f,
                "rank {}/{}: idle (no chunk of any variable)",
                self.rank, self.ranks
            );
        }
        write!(
            f,
            "rank {}/{}: {} chunks of {} variables",
            self.rank,
            self.ranks,
            self.num_chunks(),
            self.variables
                .iter()
                .filter(|v| !v.partition.is_idle())
                .count()
        )?;
        for v in &self.variables {
            if v.partition.is_idle() {
                continue;
            }
            let region: Vec<String> = v
                .partition
                .region()
                .iter()
                .map(|r| format!("{}..{}", r.start, r.end))
                .collect();
            write!(f, "\n  {}: [{}]", v.name, region.join(", "))?;
        }
        Ok(())
    }
}

/// Computes rank `rank`'s region (of `ranks`, split along `dims`) of every variable of `ds`
/// except the index coordinates, and writes it into the existing store at `path` (see
/// [`initialize_store`] and the module docs). Idle ranks write nothing.
///
/// # Errors
/// Before anything is written: `ranks == 0`, `rank >= ranks`, a split dim the dataset lacks,
/// a variable the store lacks ([`DatasetError::VariableNotInStore`]), other dimensions, shape
/// or stored type than the stored array ([`DatasetError::StoreMismatch`]). Then the first
/// failing compute or write task.
pub fn write_dataset_partition(
    ds: &Dataset,
    store: &Store,
    path: &str,
    dims: &[String],
    ranks: usize,
    rank: usize,
    compute: &ComputeOptions,
) -> DatasetResult<DatasetPartition> {
    if ranks == 0 {
        return Err(crate::Error::from(PartitionError::NoRanks).into());
    }
    if rank >= ranks {
        return Err(crate::Error::from(PartitionError::RankOutOfRange { rank, ranks }).into());
    }
    let sizes = ds.dims();
    for dim in dims {
        if !sizes.contains(dim) {
            return Err(DatasetError::DimNotFound {
                dim: dim.clone(),
                context: "the dataset (a split dim)".into(),
                available: sizes.into_pairs(),
            });
        }
    }
    let path = path.trim_matches('/');
    let stored = open_zarr(store, path, &OpenOptions::default())?;
    let mut variables = Vec::new();
    let mut writes = Vec::new();
    for (name, var) in ds.variables() {
        if ds.is_index(name) {
            continue;
        }
        let Ok(on_disk) = stored.variable(name) else {
            return Err(DatasetError::VariableNotInStore {
                variable: name.to_string(),
                store: store.description().to_string(),
                path: path.to_string(),
                stored: stored.variables().map(|(n, _)| n.to_string()).collect(),
            });
        };
        if on_disk.dims() != var.dims() || on_disk.shape() != var.shape() {
            return Err(DatasetError::StoreMismatch {
                variable: name.to_string(),
                reason: format!(
                    "it has dimensions {} but the stored array has {}",
                    var.sizes(),
                    on_disk.sizes()
                ),
            });
        }
        // Region writes use the stored encoding, never the variable's attributes (xarray's
        // mode="r+"): the metadata on disk is not changed.
        let mut bare = var.clone();
        bare.attrs_mut().clear();
        let encoding = on_disk.encoding();
        let format = encoding.format.unwrap_or(crate::store::ZarrFormat::V3);
        let encoded = encode_variable(name, &bare, encoding, format, None, false)?;
        let stored_dtype = encoding.dtype.unwrap_or(encoded.data.storage_dtype());
        if encoded.data.storage_dtype() != stored_dtype {
            return Err(DatasetError::StoreMismatch {
                variable: name.to_string(),
                reason: format!(
                    "it holds {} and encodes to {}, but the array is stored as {stored_dtype}",
                    var.dtype(),
                    encoded.data.storage_dtype()
                ),
            });
        }
        let split: Vec<String> = dims
            .iter()
            .filter(|d| var.dims().contains(d))
            .cloned()
            .collect();
        let split_dims: Vec<SplitDim> = split.iter().map(SplitDim::from).collect();
        let array_path = child(path, name);
        let (partition, write) = with_any!(&encoded.data, a => plan_partition_write(
            a, store, &array_path, &split_dims, ranks, rank
        ))?;
        writes.extend(write);
        variables.push(VariablePartition {
            name: name.to_string(),
            split,
            partition,
        });
    }
    if !writes.is_empty() {
        join_writes(writes).compute_with(compute)?;
    }
    Ok(DatasetPartition {
        rank,
        ranks,
        variables,
    })
}

impl Dataset {
    /// [`initialize_store`] for this dataset (xpartition's `ds.partition.initialize_store`).
    ///
    /// # Errors
    /// As [`initialize_store`].
    pub fn initialize_store(
        &self,
        store: &Store,
        path: &str,
        options: &WriteOptions,
    ) -> DatasetResult<InitializedStore> {
        initialize_store(self, store, path, options)
    }

    /// [`write_dataset_partition`] for this dataset (xpartition's `ds.partition.write`).
    ///
    /// # Errors
    /// As [`write_dataset_partition`].
    pub fn write_partition(
        &self,
        store: &Store,
        path: &str,
        dims: &[String],
        ranks: usize,
        rank: usize,
        compute: &ComputeOptions,
    ) -> DatasetResult<DatasetPartition> {
        write_dataset_partition(self, store, path, dims, ranks, rank, compute)
    }
}
