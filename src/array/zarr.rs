//! Arrays over Zarr: [`from_zarr`] reads a stored array lazily, [`Array::to_zarr`] writes one
//! (dask's `da.from_zarr` / `da.to_zarr`). Every store call goes through the store room's
//! [`ZarrArray`]; this file only plans which task reads or writes which region.
//!
//! ```
//! use chunkflow::array::{self, ToZarrOptions, from_zarr};
//! use chunkflow::store::Store;
//!
//! let store = Store::memory();
//! let x = array::arange(0i32, 10, 1, 4)?;
//! x.to_zarr(&store, "x", &ToZarrOptions::default())?; // store chunks (4,)
//! let y = from_zarr::<i32>(&store, "x")?; // lazy: one read task per stored chunk
//! assert_eq!(y.chunks().axis(0), &[4, 4, 2]);
//! assert_eq!(y.compute()?, x.compute()?);
//! # Ok::<(), chunkflow::Error>(())
//! ```
//!
//! # Invariants
//! - Reads: one `TaskKind::Read` task per output chunk, reading exactly its region. Keys are
//!   `"from-zarr-<token>"`, the token hashing the store's description, the path and the
//!   chunks, so reading the same array twice gives the same keys. (Anonymous `memory://`
//!   stores all share one description, so their token also mixes in the store's identity.)
//! - Writes: exactly one `TaskKind::Write` task per stored chunk (per shard, for sharded
//!   arrays). Before any write task is built, the array's chunks are made to cover whole
//!   stored chunks: chunks that already do are written as they are (one task may write several
//!   stored chunks); chunks smaller than the stored ones are merged in-graph
//!   ([`Array::rechunk`]); chunks that straddle a stored chunk boundary are rechunked to the
//!   store's grid when we create the array, and rejected with the chunking to use when writing
//!   into a region of an existing array. Every check runs before anything is written.
//! - `to_zarr_delayed` writes the array's metadata when called (like xarray's
//!   `compute=False`); chunks are written when the returned `Delayed` is computed.
//!
//! Must not: call zarrs directly (the store room's `zarr.rs` owns that), or write a chunk that
//! another task also writes.

use std::ops::Range;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::chunks::{ChunkSpec, Chunks};
use super::core::{Array, block_ref, chunks_token, op_token};
use super::dtype::{DType, Element};
use crate::collection::ComputeOptions;
use crate::delayed::Delayed;
use crate::error::{Error, Result};
use crate::graph::token::key_name;
use crate::graph::{Key, Layer, Task, TaskKind, value};
use crate::store::{
    ArraySpec, Compression, FillValue, NodeKind, Store, StoreError, ZarrArray, ZarrFormat,
    create_group, node_kind,
};

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// A lazy array over the Zarr array at `path` in `store`, chunked like the store (its read
/// grid: the inner chunks of a sharded array). Nothing is read until it is computed; each chunk
/// is one read task.
///
/// # Errors
/// [`StoreError::NotFound`] when no array is there, [`StoreError::DTypeMismatch`] when `T` is
/// not the stored dtype (the message names both), and the store's other open errors.
pub fn from_zarr<T: Element>(store: &Store, path: &str) -> Result<Array<T>> {
    let zarr = open_typed::<T>(store, path)?;
    let chunks = store_chunks(&zarr, zarr.chunk_shape())?;
    Ok(read_array(zarr, chunks))
}

/// Like [`from_zarr`], chunked as `chunks` says (any [`ChunkSpec`]; `auto` axes snap to the
/// stored chunks). Each output chunk reads its own region, so no in-graph rechunk is needed;
/// chunks that are not aligned to the stored ones read some stored chunks more than once.
///
/// ```
/// use chunkflow::array::{self, ToZarrOptions, from_zarr_with};
/// use chunkflow::store::Store;
///
/// let store = Store::memory();
/// array::arange(0u8, 12, 1, 3)?.to_zarr(&store, "x", &ToZarrOptions::default())?;
/// let y = from_zarr_with::<u8>(&store, "x", [6])?;
/// assert_eq!(y.chunks().axis(0), &[6, 6]);
/// assert_eq!(y.sum_all().compute()?, 66);
/// # Ok::<(), chunkflow::Error>(())
/// ```
pub fn from_zarr_with<T: Element>(
    store: &Store,
    path: &str,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array<T>> {
    let zarr = open_typed::<T>(store, path)?;
    let previous = store_chunks(&zarr, zarr.chunk_shape())?;
    let chunks = Chunks::normalize_with_previous(
        chunks,
        previous.shape(),
        T::DTYPE.itemsize(),
        None,
        &previous,
    )?;
    Ok(read_array(zarr, chunks))
}

fn open_typed<T: Element>(store: &Store, path: &str) -> Result<ZarrArray> {
    let zarr = ZarrArray::open(store, path)?;
    check_dtype::<T>(&zarr)?;
    Ok(zarr)
}

fn check_dtype<T: Element>(zarr: &ZarrArray) -> Result<()> {
    if zarr.dtype() != T::DTYPE {
        return Err(StoreError::DTypeMismatch {
            path: zarr.path().to_string(),
            stored: zarr.dtype(),
            requested: T::DTYPE,
        }
        .into());
    }
    Ok(())
}

/// The regular grid of `chunk` over the array's shape, as [`Chunks`].
fn store_chunks(zarr: &ZarrArray, chunk: &[u64]) -> Result<Chunks> {
    let shape = usizes(zarr.shape())?;
    let chunk = usizes(chunk)?;
    Ok(Chunks::regular(&shape, &chunk)?)
}

fn usizes(v: &[u64]) -> Result<Vec<usize>> {
    v.iter()
        .map(|&x| {
            usize::try_from(x).map_err(|_| {
                Error::InvalidArgument(format!("size {x} does not fit in this machine's usize"))
            })
        })
        .collect()
}

/// What identifies a store in tokens: its description, plus its address for anonymous memory
/// stores (which all describe themselves as `memory://`).
fn store_token(store: &Store) -> String {
    let description = store.description();
    if description == "memory://" {
        format!("memory://@{:p}", Arc::as_ptr(store.storage()))
    } else {
        description.to_string()
    }
}

fn read_array<T: Element>(zarr: ZarrArray, chunks: Chunks) -> Array<T> {
    let token = op_token(
        "from-zarr",
        &[],
        &(
            store_token(zarr.store()),
            zarr.path().to_string(),
            chunks_token(&chunks),
        ),
    );
    Array::from_block_tasks(
        key_name("from-zarr", token),
        chunks.clone(),
        vec![],
        |idx, key| {
            let region: Vec<Range<u64>> = chunks
                .block_ranges(idx)
                .into_iter()
                .map(|r| r.start as u64..r.end as u64)
                .collect();
            let zarr = zarr.clone();
            Task::call(key, Vec::<Key>::new(), move |_| {
                Ok(value(zarr.read_region::<T>(&region)?))
            })
            .with_kind(TaskKind::Read)
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Writing: options
// ---------------------------------------------------------------------------------------------

/// How [`Array::to_zarr`] writes: create a new array (the default), or write into a region of
/// an existing one.
///
/// Defaults are zarr-python's: Zarr v3, its format's default compression (v3 zstd level 0, v2
/// blosc lz4), fill value zero, store chunks equal to the array's (largest) chunks, no shards,
/// no names, no attributes, and an error if something exists at the path.
///
/// ```
/// use chunkflow::array::ToZarrOptions;
/// use chunkflow::store::{Compression, FillValue, ZarrFormat};
///
/// let create = ToZarrOptions::default()
///     .with_format(ZarrFormat::V2)
///     .with_compression(Compression::Zstd { level: 3 })
///     .with_fill_value(FillValue::NaN)
///     .with_dimension_names(["time", "x"])
///     .with_overwrite(true);
/// assert_eq!(create.format, ZarrFormat::V2);
/// let into = ToZarrOptions::region([0..4, 0..10]);
/// assert!(into.region.is_some());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ToZarrOptions {
    /// The format of a new array (default v3).
    pub format: ZarrFormat,
    /// The compression of a new array (`None`: the format's default).
    pub compression: Option<Compression>,
    /// The chunk shape of a new array (the inner chunk shape if sharded). `None`: the array's
    /// largest chunk on each axis (dask's rule; irregular chunks are rechunked to it).
    pub chunks: Option<Vec<u64>>,
    /// The shard shape of a new array (v3 only): each shard, a multiple of the chunk shape, is
    /// one stored object and one write task.
    pub shards: Option<Vec<u64>>,
    /// Axis names of a new array (v3 `dimension_names`, v2 `_ARRAY_DIMENSIONS`).
    pub dimension_names: Option<Vec<String>>,
    /// User attributes of a new array.
    pub attributes: Map<String, Value>,
    /// The fill value of a new array (`None`: zero, zarr-python's default).
    pub fill_value: Option<FillValue>,
    /// Replace whatever exists at the path (deleting its data) instead of failing.
    pub overwrite: bool,
    /// Write into this region of the **existing** array at the path (one range per axis, the
    /// array's shape long, aligned to the stored chunks or shards) instead of creating one.
    /// The creation options above are then ignored.
    pub region: Option<Vec<Range<u64>>>,
}

impl Default for ToZarrOptions {
    fn default() -> Self {
        ToZarrOptions {
            format: ZarrFormat::V3,
            compression: None,
            chunks: None,
            shards: None,
            dimension_names: None,
            attributes: Map::new(),
            fill_value: None,
            overwrite: false,
            region: None,
        }
    }
}

impl ToZarrOptions {
    /// Options that write into `region` of an existing array.
    pub fn region(region: impl IntoIterator<Item = Range<u64>>) -> Self {
        ToZarrOptions {
            region: Some(region.into_iter().collect()),
            ..ToZarrOptions::default()
        }
    }

    /// Sets the format of a new array.
    pub fn with_format(mut self, format: ZarrFormat) -> Self {
        self.format = format;
        self
    }

    /// Sets the compression of a new array.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// Sets the chunk shape of a new array.
    pub fn with_chunks(mut self, chunks: impl Into<Vec<u64>>) -> Self {
        self.chunks = Some(chunks.into());
        self
    }

    /// Shards a new array (v3).
    pub fn with_shards(mut self, shards: impl Into<Vec<u64>>) -> Self {
        self.shards = Some(shards.into());
        self
    }

    /// Names the axes of a new array.
    pub fn with_dimension_names<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Self {
        self.dimension_names = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the attributes of a new array.
    pub fn with_attributes(mut self, attributes: Map<String, Value>) -> Self {
        self.attributes = attributes;
        self
    }

    /// Sets the fill value of a new array.
    pub fn with_fill_value(mut self, fill_value: FillValue) -> Self {
        self.fill_value = Some(fill_value);
        self
    }

    /// Replaces an existing node instead of failing.
    pub fn with_overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Writes into `region` of an existing array instead of creating one.
    pub fn with_region(mut self, region: impl IntoIterator<Item = Range<u64>>) -> Self {
        self.region = Some(region.into_iter().collect());
        self
    }

    /// The spec of the array to create for data of `shape` chunked as `chunks`.
    fn spec(&self, shape: &[usize], chunks: &Chunks, dtype: DType) -> ArraySpec {
        let chunk_shape = self.chunks.clone().unwrap_or_else(|| {
            chunks
                .chunksize()
                .iter()
                .map(|&c| c.max(1) as u64)
                .collect()
        });
        let shape = shape.iter().map(|&s| s as u64).collect();
        let mut spec = ArraySpec::new(shape, chunk_shape, dtype)
            .with_format(self.format)
            .with_attributes(self.attributes.clone());
        if let Some(c) = self.compression {
            spec = spec.with_compression(c);
        }
        if let Some(f) = self.fill_value {
            spec = spec.with_fill_value(f);
        }
        spec.shard = self.shards.clone();
        spec.dimension_names = self.dimension_names.clone();
        spec
    }
}

// ---------------------------------------------------------------------------------------------
// Writing: the array methods
// ---------------------------------------------------------------------------------------------

impl<T: Element> Array<T> {
    /// Computes the array and writes it to the Zarr array at `path` (created, or a region of
    /// an existing one: see [`ToZarrOptions`]), with the default executor.
    ///
    /// ```
    /// use chunkflow::array::{self, ToZarrOptions, from_zarr};
    /// use chunkflow::store::{Store, ZarrArray};
    ///
    /// let store = Store::memory();
    /// let x = array::ones::<f32>(&[4, 6], [2, 3])?;
    /// x.to_zarr(&store, "ones", &ToZarrOptions::default().with_dimension_names(["y", "x"]))?;
    /// let z = ZarrArray::open(&store, "ones")?;
    /// assert_eq!(z.chunk_shape(), &[2, 3]);
    /// // Overwrite the top half through a region write (aligned to the stored chunks).
    /// array::zeros::<f32>(&[2, 6], [2, 6])?
    ///     .to_zarr(&store, "ones", &ToZarrOptions::region([0..2, 0..6]))?;
    /// assert_eq!(from_zarr::<f32>(&store, "ones")?.sum_all().compute()?, 12.0);
    /// # Ok::<(), chunkflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// Everything [`to_zarr_delayed`](Self::to_zarr_delayed) reports, and the first failing
    /// read or write task (its key and cause).
    pub fn to_zarr(&self, store: &Store, path: &str, options: &ToZarrOptions) -> Result<()> {
        self.to_zarr_with(store, path, options, &ComputeOptions::default())
    }

    /// [`Array::to_zarr`] on the executor and callbacks of `compute`.
    pub fn to_zarr_with(
        &self,
        store: &Store,
        path: &str,
        options: &ToZarrOptions,
        compute: &ComputeOptions,
    ) -> Result<()> {
        self.to_zarr_delayed(store, path, options)?
            .compute_with(compute)
    }

    /// Plans the write without running it (dask's `to_zarr(..., compute=False)`): checks
    /// everything, creates the array's metadata now (unless writing into a region), and returns
    /// a `Delayed` that writes the chunks when computed, alone or together with other
    /// collections (`chunkflow::compute((&write, &other))`).
    ///
    /// ```
    /// use chunkflow::array::{self, ToZarrOptions};
    /// use chunkflow::store::{Store, ZarrArray};
    ///
    /// let store = Store::memory();
    /// let x = array::full(&[4], [2], 5i64)?;
    /// let write = x.to_zarr_delayed(&store, "x", &ToZarrOptions::default())?;
    /// let z = ZarrArray::open(&store, "x")?; // the metadata exists already
    /// assert!(!z.chunk_exists(&[0])?); // but no chunk is written yet
    /// let (_, total) = chunkflow::compute((&write, &x.sum_all()))?;
    /// assert!(z.chunk_exists(&[0])?);
    /// assert_eq!(total, 20);
    /// # Ok::<(), chunkflow::Error>(())
    /// ```
    ///
    /// With `overwrite`, the old node is deleted here, before the chunks are computed: do not
    /// overwrite an array this one reads from (write elsewhere, or `persist` first).
    ///
    /// # Errors
    /// Before anything is written: something exists at `path` (without `overwrite`), an invalid
    /// spec, a parent path that is an array; for region writes, no array at `path`, another
    /// dtype, a region out of bounds, of another shape than the array, or not aligned to the
    /// stored chunks (shards), and array chunks that straddle a stored chunk boundary (the
    /// message says which chunking to use).
    pub fn to_zarr_delayed(
        &self,
        store: &Store,
        path: &str,
        options: &ToZarrOptions,
    ) -> Result<Delayed<()>> {
        match &options.region {
            None => self.create_and_plan(store, path, options),
            Some(region) => self.plan_region(store, path, region),
        }
    }

    fn create_and_plan(
        &self,
        store: &Store,
        path: &str,
        options: &ToZarrOptions,
    ) -> Result<Delayed<()>> {
        let spec = options.spec(self.shape(), self.chunks(), T::DTYPE);
        let parents = missing_parents(store, path)?;
        // Validates the spec and checks (or, with overwrite, clears) the path; writes nothing
        // else yet.
        let zarr = ZarrArray::create_unpublished(store, path, &spec, options.overwrite)?;
        let offset = vec![0; self.ndim()];
        let aligned = match fit_chunks(self.chunks(), &zarr, &offset) {
            Fit::Aligned => self.clone(),
            Fit::Rechunk(sizes) => self.rechunk(ChunkSpec::explicit(sizes))?,
            Fit::Straddles { fixed, .. } => self.rechunk(ChunkSpec::explicit(fixed))?,
        };
        for parent in parents {
            create_group(store, &parent, Map::new(), options.format)?;
        }
        zarr.publish()?;
        Ok(write_tasks(&aligned, zarr, offset))
    }

    fn plan_region(&self, store: &Store, path: &str, region: &[Range<u64>]) -> Result<Delayed<()>> {
        let zarr = ZarrArray::open(store, path)?;
        check_dtype::<T>(&zarr)?;
        let shape = zarr.shape();
        if region.len() != shape.len() || region.iter().zip(shape).any(|(r, &s)| r.end > s) {
            return Err(StoreError::RegionOutOfBounds {
                path: zarr.path().to_string(),
                region: region.to_vec(),
                shape: shape.to_vec(),
            }
            .into());
        }
        let lens: Vec<u64> = region
            .iter()
            .map(|r| r.end.saturating_sub(r.start))
            .collect();
        if lens.iter().zip(self.shape()).any(|(&l, &s)| l != s as u64) {
            return Err(StoreError::ShapeMismatch {
                path: zarr.path().to_string(),
                target: format!("region {}", fmt_ranges(region)),
                expected: lens,
                found: self.shape().iter().map(|&s| s as u64).collect(),
            }
            .into());
        }
        check_region_alignment(&zarr, region)?;
        let offset: Vec<u64> = region.iter().map(|r| r.start).collect();
        let aligned = match fit_chunks(self.chunks(), &zarr, &offset) {
            Fit::Aligned => self.clone(),
            Fit::Rechunk(sizes) => self.rechunk(ChunkSpec::explicit(sizes))?,
            Fit::Straddles {
                axis, chunk, span, ..
            } => {
                return Err(misaligned_chunks(
                    &zarr,
                    region,
                    self.chunks(),
                    axis,
                    chunk,
                    span,
                ));
            }
        };
        Ok(write_tasks(&aligned, zarr, offset))
    }
}

/// The parent groups of `path` that do not exist yet (outermost first), as zarr-python makes
/// them when creating an array; an error if one of them is an array.
fn missing_parents(store: &Store, path: &str) -> Result<Vec<String>> {
    let path = path.trim_matches('/');
    if path.is_empty() {
        return Ok(vec![]);
    }
    let parts: Vec<&str> = path.split('/').collect();
    let mut missing = Vec::new();
    for depth in 0..parts.len() {
        let parent = parts[..depth].join("/");
        match node_kind(store, &parent)? {
            None => missing.push(parent),
            Some((NodeKind::Group, _)) => {}
            Some((NodeKind::Array, _)) => {
                return Err(Error::InvalidArgument(format!(
                    "cannot create array {path:?} in store {}: its parent {parent:?} is an \
                     array, not a group",
                    store.description()
                )));
            }
        }
    }
    Ok(missing)
}

// ---------------------------------------------------------------------------------------------
// Writing: fitting the array's chunks to the store's write grid
// ---------------------------------------------------------------------------------------------

/// How the array's chunks fit the store's write grid (chunks, or shards).
#[derive(Debug, PartialEq)]
enum Fit {
    /// Every chunk covers whole stored chunks: write as is.
    Aligned,
    /// Some chunks lie inside one stored chunk, none straddles: merge them into these sizes.
    Rechunk(Vec<Vec<usize>>),
    /// Chunk `chunk` on `axis` (covering `span` of the target) straddles a stored chunk
    /// boundary. `fixed`: chunk sizes that fit (the write grid on straddling axes).
    Straddles {
        axis: usize,
        chunk: usize,
        span: Range<u64>,
        fixed: Vec<Vec<usize>>,
    },
}

/// How one axis's chunks fit.
enum AxisFit {
    Aligned,
    Merge(Vec<usize>),
    Straddles { chunk: usize, span: Range<u64> },
}

/// Fits the chunks `sizes` of one axis, placed at `offset` in a target axis of length `end`
/// with write chunks of `w` (`offset` and `offset + sum(sizes)` are on the grid).
fn fit_axis(sizes: &[usize], offset: u64, w: u64, end: u64) -> AxisFit {
    let on_grid = |x: u64| x.is_multiple_of(w) || x == end;
    let mut merged = Vec::new();
    let mut inside = false;
    let mut start = offset;
    let mut pending = 0usize;
    for (chunk, &size) in sizes.iter().enumerate() {
        let stop = start + size as u64;
        if size > 0 && !(on_grid(start) && on_grid(stop)) {
            if start / w != (stop - 1) / w {
                return AxisFit::Straddles {
                    chunk,
                    span: start..stop,
                };
            }
            inside = true;
        }
        pending += size;
        if on_grid(stop) {
            merged.push(pending);
            pending = 0;
        }
        start = stop;
    }
    if pending > 0 || merged.is_empty() {
        merged.push(pending);
    }
    if inside {
        AxisFit::Merge(merged)
    } else {
        AxisFit::Aligned
    }
}

/// Fits `chunks`, placed at `offset` in `zarr`, to its write grid.
fn fit_chunks(chunks: &Chunks, zarr: &ZarrArray, offset: &[u64]) -> Fit {
    let mut changed = false;
    let mut straddle = None;
    let mut sizes = Vec::with_capacity(chunks.ndim());
    for (axis, ((&w, &end), &off)) in zarr
        .write_shape()
        .iter()
        .zip(zarr.shape())
        .zip(offset)
        .enumerate()
    {
        let axis_sizes = chunks.axis(axis);
        match fit_axis(axis_sizes, off, w, end) {
            AxisFit::Aligned => sizes.push(axis_sizes.to_vec()),
            AxisFit::Merge(merged) => {
                changed = true;
                sizes.push(merged);
            }
            AxisFit::Straddles { chunk, span } => {
                straddle.get_or_insert((axis, chunk, span));
                sizes.push(grid_sizes(chunks.shape()[axis], off, w));
            }
        }
    }
    match straddle {
        Some((axis, chunk, span)) => Fit::Straddles {
            axis,
            chunk,
            span,
            fixed: sizes,
        },
        None if changed => Fit::Rechunk(sizes),
        None => Fit::Aligned,
    }
}

/// The write grid's chunk sizes over `len` elements starting at `offset` (a multiple of `w`).
fn grid_sizes(len: usize, offset: u64, w: u64) -> Vec<usize> {
    debug_assert!(offset.is_multiple_of(w));
    let w = w as usize;
    if len == 0 {
        return vec![0];
    }
    (0..len.div_ceil(w)).map(|i| w.min(len - i * w)).collect()
}

/// Region writes must start on the write grid and end on it or at the array's end.
fn check_region_alignment(zarr: &ZarrArray, region: &[Range<u64>]) -> Result<()> {
    let ws = zarr.write_shape();
    for (axis, ((r, &w), &s)) in region.iter().zip(ws).zip(zarr.shape()).enumerate() {
        let detail = if !r.start.is_multiple_of(w) {
            format!(
                "axis {axis} starts at {}, which is not a multiple of {w}",
                r.start
            )
        } else if !r.end.is_multiple_of(w) && r.end != s {
            format!(
                "axis {axis} ends at {}, which is neither a multiple of {w} nor the array's \
                 end {s}",
                r.end
            )
        } else {
            continue;
        };
        return Err(StoreError::MisalignedWrite {
            path: zarr.path().to_string(),
            region: region.to_vec(),
            write_shape: ws.to_vec(),
            detail,
        }
        .into());
    }
    Ok(())
}

fn misaligned_chunks(
    zarr: &ZarrArray,
    region: &[Range<u64>],
    chunks: &Chunks,
    axis: usize,
    chunk: usize,
    span: Range<u64>,
) -> Error {
    let ws = zarr.write_shape();
    let w = ws[axis];
    let boundary = (span.start / w + 1) * w;
    let unit = if zarr.shard_shape().is_some() {
        "shard"
    } else {
        "chunk"
    };
    let suggestion: Vec<String> = ws
        .iter()
        .zip(chunks.shape())
        .map(|(&w, &len)| (w as usize).min(len.max(1)).to_string())
        .collect();
    Error::InvalidArgument(format!(
        "cannot write array chunks {chunks} into region {} of Zarr array {:?} in store {}: \
         chunk {chunk} on axis {axis} covers {}..{} of the target, across the stored {unit} \
         boundary at {boundary}, so two tasks would write one {unit}. Every chunk boundary must \
         fall on a multiple of the stored {unit} shape ({}) or on the array's end: rechunk to \
         ({}) first, e.g. array.rechunk([{}])",
        fmt_ranges(region),
        zarr.path(),
        zarr.store().description(),
        span.start,
        span.end,
        join(ws),
        suggestion.join(", "),
        suggestion.join(", "),
    ))
}

fn join(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

fn fmt_ranges(region: &[Range<u64>]) -> String {
    let parts: Vec<String> = region
        .iter()
        .map(|r| format!("{}..{}", r.start, r.end))
        .collect();
    format!("[{}]", parts.join(", "))
}

// ---------------------------------------------------------------------------------------------
// Writing: the tasks
// ---------------------------------------------------------------------------------------------

/// One write task per chunk of `array` (whose chunks cover whole stored chunks), placed at
/// `offset` in `zarr`, and a final task that depends on them all. On a filesystem the write
/// tasks leave each chunk's `fsync` and rename to the flusher threads, and the final task
/// completes once every chunk is on disk under its name.
fn write_tasks<T: Element>(array: &Array<T>, zarr: ZarrArray, offset: Vec<u64>) -> Delayed<()> {
    let zarr = zarr.with_deferred_sync();
    let token = op_token(
        "to-zarr",
        &[array.name()],
        &(
            store_token(zarr.store()),
            zarr.path().to_string(),
            offset.clone(),
            zarr.write_shape().to_vec(),
        ),
    );
    let write_name: Arc<str> = key_name("to-zarr-write", token).into();
    // While writing one stored chunk: the padded chunk buffer and its encoded bytes.
    let unit_bytes: u64 = zarr.write_shape().iter().product::<u64>() * T::DTYPE.itemsize() as u64;
    let chunks = array.chunks();
    let mut keys = Vec::with_capacity(chunks.num_chunks());
    let tasks: Vec<Task> = chunks
        .blocks()
        .map(|idx| {
            let region: Vec<Range<u64>> = chunks
                .block_ranges(&idx)
                .into_iter()
                .zip(&offset)
                .map(|(r, &o)| o + r.start as u64..o + r.end as u64)
                .collect();
            let key = Key::chunk(write_name.clone(), &idx);
            keys.push(key.clone());
            let zarr = zarr.clone();
            Task::call(key, [array.block_key(&idx)], move |inputs| {
                let block = block_ref::<T>(&inputs, 0)?;
                zarr.write_region(&region, block.view())?;
                Ok(value(()))
            })
            .with_kind(TaskKind::Write)
            .with_working_bytes(2 * unit_bytes)
        })
        .collect();
    let layer = Arc::new(Layer::new(write_name, tasks, vec![array.layer().clone()]));
    let done = Task::call(Key::new(key_name("to-zarr", token)), keys, move |_| {
        zarr.finish_writes()?;
        Ok(value(()))
    });
    Delayed::from_task(done, vec![layer])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(sizes: &[usize], offset: u64, w: u64, end: u64) -> Result<Option<Vec<usize>>, usize> {
        match fit_axis(sizes, offset, w, end) {
            AxisFit::Aligned => Ok(None),
            AxisFit::Merge(m) => Ok(Some(m)),
            AxisFit::Straddles { chunk, .. } => Err(chunk),
        }
    }

    #[test]
    fn axes_fit_the_write_grid() {
        // Whole stored chunks, several per array chunk, a partial one at the array's end.
        assert_eq!(fit(&[4, 8, 2], 0, 4, 14), Ok(None));
        // Smaller chunks merge into the stored ones; aligned big ones stay.
        assert_eq!(fit(&[2, 2, 8, 1, 1], 0, 4, 14), Ok(Some(vec![4, 8, 2])));
        assert_eq!(fit(&[1, 1, 1], 4, 4, 7), Ok(Some(vec![3])));
        // Straddling a boundary: chunk 1 covers 3..6 across 4.
        assert_eq!(fit(&[3, 3, 3, 1], 0, 4, 10), Err(1));
        // A partial chunk is fine at the target's end.
        assert_eq!(fit(&[4, 2], 0, 4, 6), Ok(None));
        // Zero-length axis.
        assert_eq!(fit(&[0], 0, 4, 0), Ok(None));
        assert_eq!(grid_sizes(10, 4, 4), vec![4, 4, 2]);
        assert_eq!(grid_sizes(0, 0, 4), vec![0]);
    }
}
