//! Partitioned writes of one array: [`initialize_array`] writes an array's metadata once (no
//! chunks), then every rank calls [`write_partition`], which computes and writes only that
//! rank's chunk-aligned region into the existing array.
//!
//! ```
//! use chunkflow::array::{self, ToZarrOptions, from_zarr};
//! use chunkflow::partition::{SplitDim, initialize_array, write_partition};
//! use chunkflow::store::Store;
//! use chunkflow::ComputeOptions;
//!
//! let store = Store::memory();
//! let x = array::arange(0i64, 100, 1, 10)?;
//! let opts = ToZarrOptions::default().with_dimension_names(["time"]);
//! initialize_array(&x, &store, "x", &opts)?; // once, before the ranks start
//! for rank in 0..3 {
//!     // In real use each rank is its own process (a SLURM array task, an MPI rank).
//!     let part = write_partition(&x, &store, "x", &["time".into()], 3, rank,
//!                                &ComputeOptions::default())?;
//!     assert!(!part.is_idle());
//! }
//! assert_eq!(from_zarr::<i64>(&store, "x")?.compute()?, x.compute()?);
//! # Ok::<(), chunkflow::Error>(())
//! ```
//!
//! # Invariants
//! - The partition is a function of the **stored** array's write grid (its chunks, or shards),
//!   its dimension names, the split dims and the ranks: never of the lazy array's chunks. So
//!   regions are aligned to the stored chunks by construction, every stored chunk has exactly
//!   one writer rank, and anything that sees only the store (`chunkflow verify --ranks`) finds
//!   the same owner for each chunk.
//! - A rank writes only whole chunks inside its region, through `to_zarr` with a region: never
//!   metadata, attributes or another rank's chunks. Idle ranks write nothing.
//! - Idempotent: a rank's chunks are a pure function of the array, and an all-fill-value chunk
//!   is erased rather than written (zarr-python's `write_empty_chunks=False`), so running a rank
//!   again leaves the same bytes. A failed rank can simply be re-run.
//!
//! If the lazy array's chunks are coarser than the stored ones, a rank computes whole array
//! chunks of which it writes only part (correct, but the boundary chunks are computed by two
//! ranks); initialize with the array's own chunks (the default) to avoid that. Array chunks that
//! straddle stored chunk boundaries are rechunked, inside the rank's region, to the stored grid.

use ndarray::SliceInfoElem;

use super::plan::{Partition, Partitioner, SplitDim};
use crate::array::{Array, ChunkSpec, Chunks, Element, ToZarrOptions};
use crate::collection::ComputeOptions;
use crate::delayed::Delayed;
use crate::error::{Error, Result};
use crate::store::{Store, StoreError, ZarrArray};

/// Writes the metadata of the array that `array` would be written as (with `options`, as
/// [`Array::to_zarr`] would create it, parent groups included) and no chunk: the
/// `initialize_store` step, run once before the ranks start. Returns the created array.
///
/// # Errors
/// `options.region` set (this creates an array; it does not write into one), and every error of
/// [`Array::to_zarr_delayed`] (an existing node without `overwrite`, an invalid spec).
pub fn initialize_array<T: Element>(
    array: &Array<T>,
    store: &Store,
    path: &str,
    options: &ToZarrOptions,
) -> Result<ZarrArray> {
    if options.region.is_some() {
        return Err(Error::InvalidArgument(format!(
            "initialize_array creates the array at {path:?}; it takes no region (ranks write \
             their regions with write_partition)"
        )));
    }
    // Creating the write plan writes the metadata now; the chunk writes are never run.
    drop(array.to_zarr_delayed(store, path, options)?);
    Ok(ZarrArray::open(store, path)?)
}

/// The partitioner of the stored array `zarr`: its write grid (chunks, or shards) split along
/// `split` (names match its dimension names) among `ranks`.
///
/// # Errors
/// See [`Partitioner::new`].
pub fn store_partitioner(
    zarr: &ZarrArray,
    split: &[SplitDim],
    ranks: usize,
) -> Result<Partitioner> {
    Ok(Partitioner::new(
        &zarr.write_chunks(),
        zarr.dimension_names(),
        split,
        ranks,
    )?)
}

/// Computes rank `rank`'s region of `array` (of `ranks` ranks, split along `split`) and writes
/// it into the existing Zarr array at `path`; returns the rank's [`Partition`] (idle ranks
/// write nothing and return an idle partition).
///
/// The array at `path` must exist (see [`initialize_array`]) with the same shape and dtype as
/// `array`. See the module docs for the invariants.
///
/// # Errors
/// Before anything is written: no array at `path`, another dtype or shape, an unknown split dim
/// (or a name when the stored array has no dimension names), `ranks == 0`, `rank >= ranks`.
/// Then the first failing compute or write task.
pub fn write_partition<T: Element>(
    array: &Array<T>,
    store: &Store,
    path: &str,
    split: &[SplitDim],
    ranks: usize,
    rank: usize,
    compute: &ComputeOptions,
) -> Result<Partition> {
    let (part, write) = plan_partition_write(array, store, path, split, ranks, rank)?;
    if let Some(write) = write {
        write.compute_with(compute)?;
    }
    Ok(part)
}

/// [`write_partition`] without running it: checks everything, and returns the rank's
/// [`Partition`] with the write of its region as a [`Delayed`] (`None` for an idle rank), to
/// compute together with other writes in one graph (the dataset-level partitioned write does
/// this for all its variables).
///
/// # Errors
/// As [`write_partition`], before anything is written.
pub fn plan_partition_write<T: Element>(
    array: &Array<T>,
    store: &Store,
    path: &str,
    split: &[SplitDim],
    ranks: usize,
    rank: usize,
) -> Result<(Partition, Option<Delayed<()>>)> {
    let zarr = ZarrArray::open(store, path)?;
    if zarr.dtype() != T::DTYPE {
        return Err(StoreError::DTypeMismatch {
            path: zarr.path().to_string(),
            stored: zarr.dtype(),
            requested: T::DTYPE,
        }
        .into());
    }
    let shape: Vec<u64> = array.shape().iter().map(|&s| s as u64).collect();
    if zarr.shape() != shape.as_slice() {
        return Err(StoreError::ShapeMismatch {
            path: zarr.path().to_string(),
            target: "the whole array (a partitioned write)".into(),
            expected: zarr.shape().to_vec(),
            found: shape,
        }
        .into());
    }
    let part = store_partitioner(&zarr, split, ranks)?.partition(rank)?;
    if part.is_idle() {
        return Ok((part, None));
    }
    let info: Vec<SliceInfoElem> = part
        .region()
        .iter()
        .map(|r| SliceInfoElem::Slice {
            start: r.start as isize,
            end: Some(r.end as isize),
            step: 1,
        })
        .collect();
    let mut piece = array.slice(info)?;
    if let Some(sizes) = straddling_fix(piece.chunks(), &part, &zarr) {
        piece = piece.rechunk(ChunkSpec::explicit(sizes))?;
    }
    let write = piece.to_zarr_delayed(store, path, &ToZarrOptions::region(part.region_u64()))?;
    Ok((part, Some(write)))
}

/// When some chunk of `chunks` (placed at the partition's region) crosses a stored chunk
/// boundary: the stored grid's chunk sizes over the region, to rechunk to. `None` when every
/// chunk lies within one stored chunk or covers whole ones (`to_zarr` handles those).
fn straddling_fix(chunks: &Chunks, part: &Partition, zarr: &ZarrArray) -> Option<Vec<Vec<usize>>> {
    let ws = zarr.write_shape();
    let shape = zarr.shape();
    let mut straddles = false;
    for (axis, region) in part.region().iter().enumerate() {
        let (w, end, off) = (ws[axis] as usize, shape[axis] as usize, region.start);
        let on_grid = |x: usize| x.is_multiple_of(w) || x == end;
        for pair in chunks.boundaries(axis).windows(2) {
            let (a, b) = (off + pair[0], off + pair[1]);
            if b > a && !(on_grid(a) && on_grid(b)) && a / w != (b - 1) / w {
                straddles = true;
            }
        }
    }
    if !straddles {
        return None;
    }
    Some(
        part.region()
            .iter()
            .enumerate()
            .map(|(axis, r)| {
                let w = ws[axis] as usize;
                let len = r.len();
                if len == 0 {
                    vec![0]
                } else {
                    (0..len.div_ceil(w)).map(|i| w.min(len - i * w)).collect()
                }
            })
            .collect(),
    )
}
