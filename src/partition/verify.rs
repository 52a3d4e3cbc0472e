//! The completeness check after a partitioned write: which stored chunks of each array are
//! missing (a rank that never ran, or failed), as compact boxes of chunk indices, and, given the
//! partition that wrote them, which ranks to re-run.
//!
//! ```
//! use chunkflow::array::{self, ToZarrOptions};
//! use chunkflow::partition::{VerifyOptions, verify_store};
//! use chunkflow::store::{Store, ZarrArray};
//!
//! let store = Store::memory();
//! array::ones::<f32>(&[4, 6], [2, 3])?
//!     .to_zarr(&store, "a", &ToZarrOptions::default().with_dimension_names(["y", "x"]))?;
//! assert!(verify_store(&store, &VerifyOptions::default())?.is_complete());
//!
//! ZarrArray::open(&store, "a")?.erase_chunk(&[1, 0])?;
//! let options = VerifyOptions { split: vec!["y".into()], ranks: Some(2), ..Default::default() };
//! let report = verify_store(&store, &options)?;
//! let a = &report.arrays[0];
//! assert_eq!(a.missing, 1);
//! assert_eq!(a.missing_boxes, vec![vec![1..2, 0..1]]);
//! assert_eq!(a.ranks_to_rerun, Some(vec![1]));
//! # Ok::<(), chunkflow::Error>(())
//! ```
//!
//! # Caveat: all-fill-value chunks
//! The store layer never stores a chunk whose data is entirely the fill value (zarr-python's
//! `write_empty_chunks=False`): it erases it instead. Such a chunk reads back correctly as the
//! fill value, but this check cannot tell it from a chunk that was never written, so it is
//! reported missing. Re-running the rank that owns it is harmless (writes are idempotent).
//!
//! Arrays are found by listing the store (every `zarr.json`, `.zarray` or `.zgroup`), not from
//! consolidated metadata, which may be stale. Chunk existence is one `size` request per stored
//! chunk (shard, for sharded arrays), spread over a few threads, since the requests are I/O
//! bound on remote stores.
//!
//! Must not: write anything.

use std::collections::{BTreeSet, HashSet};
use std::ops::Range;

use super::plan::{Partitioner, SplitDim};
use crate::error::{Error, Result};
use crate::store::{NodeKind, Store, ZarrArray, node_kind};

/// What [`verify_store`] checks.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// The dims the writers split (names): with `ranks`, the report names the ranks whose
    /// chunks are missing. An array with none of these dims belongs to rank 0 (the rule for
    /// variables of a dataset); an array with some of them is split along those.
    pub split: Vec<SplitDim>,
    /// How many ranks wrote the store (with `split`).
    pub ranks: Option<usize>,
    /// How many existence checks run at once (default 8; at least 1).
    pub concurrency: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            split: Vec::new(),
            ranks: None,
            concurrency: 8,
        }
    }
}

/// The completeness of one stored array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayCompleteness {
    /// The array's path in the store.
    pub path: String,
    /// Its shape.
    pub shape: Vec<u64>,
    /// Stored objects per axis (chunks, or shards).
    pub grid: Vec<u64>,
    /// Whether the stored objects are shards.
    pub sharded: bool,
    /// How many objects the array has.
    pub total: u64,
    /// How many of them are missing.
    pub missing: u64,
    /// The missing objects as boxes of grid indices (per axis a range), in C order of their
    /// first index; together exactly the missing set.
    pub missing_boxes: Vec<Vec<Range<u64>>>,
    /// With [`VerifyOptions::ranks`]: the ranks that own a missing object, ascending.
    pub ranks_to_rerun: Option<Vec<usize>>,
}

impl ArrayCompleteness {
    /// Whether every object is stored.
    pub fn is_complete(&self) -> bool {
        self.missing == 0
    }
}

/// The completeness of every array in a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreCompleteness {
    /// The store's description.
    pub store: String,
    /// Per array (sorted by path).
    pub arrays: Vec<ArrayCompleteness>,
}

impl StoreCompleteness {
    /// Whether every array is complete.
    pub fn is_complete(&self) -> bool {
        self.arrays.iter().all(ArrayCompleteness::is_complete)
    }

    /// Missing objects over all arrays.
    pub fn missing(&self) -> u64 {
        self.arrays.iter().map(|a| a.missing).sum()
    }

    /// With [`VerifyOptions::ranks`]: the ranks to re-run over all arrays, ascending.
    pub fn ranks_to_rerun(&self) -> Option<Vec<usize>> {
        let mut all = BTreeSet::new();
        for a in &self.arrays {
            all.extend(a.ranks_to_rerun.as_ref()?.iter().copied());
        }
        Some(all.into_iter().collect())
    }
}

/// Checks every array in `store` (see the module docs).
///
/// # Errors
/// A store holding no Zarr node, unreadable metadata, a split dim given by axis index (use
/// names: arrays differ), `ranks == Some(0)`, and store errors.
pub fn verify_store(store: &Store, options: &VerifyOptions) -> Result<StoreCompleteness> {
    let paths = find_arrays(store)?;
    let mut arrays = Vec::with_capacity(paths.len());
    for path in paths {
        let zarr = ZarrArray::open(store, &path)?;
        arrays.push(verify_array(&zarr, options)?);
    }
    Ok(StoreCompleteness {
        store: store.description().to_string(),
        arrays,
    })
}

/// Checks one array (see the module docs).
///
/// # Errors
/// As [`verify_store`].
pub fn verify_array(zarr: &ZarrArray, options: &VerifyOptions) -> Result<ArrayCompleteness> {
    let partitioner = match options.ranks {
        None => None,
        Some(ranks) => Some(array_partitioner(zarr, &options.split, ranks)?),
    };
    let grid = zarr.write_grid_shape();
    let total: u64 = grid.iter().product();
    let missing = missing_flat(zarr, &grid, total, options.concurrency.max(1))?;
    let ranks_to_rerun = partitioner.map(|p| {
        let owners: BTreeSet<usize> = missing
            .iter()
            .map(|&f| {
                let idx: Vec<usize> = unravel(f, &grid).iter().map(|&i| i as usize).collect();
                p.owner(&idx).expect("a grid index has an owner")
            })
            .collect();
        owners.into_iter().collect()
    });
    Ok(ArrayCompleteness {
        path: zarr.path().to_string(),
        shape: zarr.shape().to_vec(),
        grid: grid.clone(),
        sharded: zarr.shard_shape().is_some(),
        total,
        missing: missing.len() as u64,
        missing_boxes: boxes(&missing, &grid),
        ranks_to_rerun,
    })
}

/// The partitioner that wrote `zarr`, under the dataset rule: split along the split dims it
/// has, or give everything to rank 0 when it has none.
fn array_partitioner(zarr: &ZarrArray, split: &[SplitDim], ranks: usize) -> Result<Partitioner> {
    let names = zarr.dimension_names().unwrap_or(&[]);
    let mut own = Vec::new();
    for dim in split {
        match dim {
            SplitDim::Name(n) if names.contains(n) => own.push(dim.clone()),
            SplitDim::Name(_) => {}
            SplitDim::Axis(a) => {
                return Err(Error::InvalidArgument(format!(
                    "verify takes split dims by name (arrays in a store differ in their axes), \
                     not axis {a}"
                )));
            }
        }
    }
    let names = zarr.dimension_names().filter(|_| !own.is_empty());
    Ok(Partitioner::new(&zarr.write_chunks(), names, &own, ranks)?)
}

/// The paths of every array in the store, sorted.
pub fn find_arrays(store: &Store) -> Result<Vec<String>> {
    let keys = store.list("")?;
    let mut dirs = BTreeSet::new();
    for key in &keys {
        let (dir, file) = key.rsplit_once('/').unwrap_or(("", key));
        if matches!(file, "zarr.json" | ".zarray" | ".zgroup") {
            dirs.insert(dir.to_string());
        }
    }
    if dirs.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{} is not a Zarr store: it holds no zarr.json, .zarray or .zgroup ({} keys)",
            store.description(),
            keys.len()
        )));
    }
    let mut arrays = Vec::new();
    for dir in dirs {
        if let Some((NodeKind::Array, _)) = node_kind(store, &dir)? {
            arrays.push(dir);
        }
    }
    Ok(arrays)
}

/// C-order flat index -> grid index.
fn unravel(mut flat: u64, grid: &[u64]) -> Vec<u64> {
    let mut idx = vec![0; grid.len()];
    for axis in (0..grid.len()).rev() {
        idx[axis] = flat % grid[axis];
        flat /= grid[axis];
    }
    idx
}

fn ravel(idx: &[u64], grid: &[u64]) -> u64 {
    idx.iter().zip(grid).fold(0, |acc, (&i, &g)| acc * g + i)
}

/// The flat indices of the missing objects, ascending, checked by `threads` threads.
fn missing_flat(zarr: &ZarrArray, grid: &[u64], total: u64, threads: usize) -> Result<Vec<u64>> {
    let threads = (threads as u64).min(total.max(1));
    let per = total.div_ceil(threads.max(1));
    let results: Vec<Result<Vec<u64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * per).min(total)..((t + 1) * per).min(total);
                scope.spawn(move || -> Result<Vec<u64>> {
                    let mut missing = Vec::new();
                    for flat in range {
                        if !zarr.chunk_exists(&unravel(flat, grid))? {
                            missing.push(flat);
                        }
                    }
                    Ok(missing)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an existence check panicked"))
            .collect()
    });
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}

/// Covers the set `flat` (ascending flat indices in `grid`) exactly by boxes, greedily: from
/// the smallest unclaimed index, grow the box along the last axis, then the ones before it,
/// while every cell it would add is in the set and unclaimed.
fn boxes(flat: &[u64], grid: &[u64]) -> Vec<Vec<Range<u64>>> {
    let mut unclaimed: HashSet<u64> = flat.iter().copied().collect();
    let mut out = Vec::new();
    for &start in flat {
        if !unclaimed.contains(&start) {
            continue;
        }
        let lo = unravel(start, grid);
        let mut hi: Vec<u64> = lo.iter().map(|&i| i + 1).collect();
        for axis in (0..grid.len()).rev() {
            while hi[axis] < grid[axis] {
                // The slab the box would gain along `axis`.
                let mut slab_lo = lo.clone();
                let mut slab_hi = hi.clone();
                slab_lo[axis] = hi[axis];
                slab_hi[axis] = hi[axis] + 1;
                if cells(&slab_lo, &slab_hi, grid).all(|c| unclaimed.contains(&c)) {
                    hi[axis] += 1;
                } else {
                    break;
                }
            }
        }
        for c in cells(&lo, &hi, grid) {
            unclaimed.remove(&c);
        }
        out.push(lo.iter().zip(&hi).map(|(&l, &h)| l..h).collect());
    }
    out
}

/// The flat indices of the box `lo..hi`.
fn cells<'a>(lo: &'a [u64], hi: &'a [u64], grid: &'a [u64]) -> impl Iterator<Item = u64> + 'a {
    let n: u64 = lo.iter().zip(hi).map(|(l, h)| h - l).product();
    let mut idx = lo.to_vec();
    (0..n).map(move |k| {
        if k > 0 {
            let mut axis = idx.len();
            while axis > 0 {
                axis -= 1;
                idx[axis] += 1;
                if idx[axis] < hi[axis] {
                    break;
                }
                idx[axis] = lo[axis];
            }
        }
        ravel(&idx, grid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_cover_exactly() {
        let grid = [3, 4];
        // Missing: row 1 entirely, and [2, 0], [2, 1].
        let flat: Vec<u64> = vec![4, 5, 6, 7, 8, 9];
        assert_eq!(
            boxes(&flat, &grid),
            vec![vec![1..2, 0..4], vec![2..3, 0..2]]
        );
        let flat: Vec<u64> = vec![1, 2, 5, 6];
        assert_eq!(boxes(&flat, &grid), vec![vec![0..2, 1..3]]);
        assert!(boxes(&[], &grid).is_empty());
        // 0-d: one object.
        assert_eq!(boxes(&[0], &[]), vec![Vec::<Range<u64>>::new()]);
    }

    #[test]
    fn ravel_unravel() {
        let grid = [2, 3, 4];
        for f in 0..24 {
            assert_eq!(ravel(&unravel(f, &grid), &grid), f);
        }
    }
}
