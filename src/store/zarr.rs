//! The zarrs adapter: Zarr v2/v3 arrays and groups, the only file that calls zarrs' array, group
//! and codec APIs.
//!
//! What it owns:
//! - [`ZarrArray::create`], which validates an [`ArraySpec`]'s metadata documents (see
//!   `spec.rs`) with zarrs and writes them: v2 `.zarray` + `.zattrs` with `_ARRAY_DIMENSIONS`,
//!   v3 `zarr.json` with `dimension_names`, as zarr-python 3.1 and xarray do;
//! - [`ZarrArray`]: metadata accessors and typed chunk I/O for any [`Element`];
//! - groups ([`create_group`], [`group_attributes`], [`list_children`], [`node_kind`]) and
//!   consolidated metadata ([`consolidate_metadata`]: v2 `.zmetadata`, v3 inline
//!   `consolidated_metadata`, both as zarr-python writes them).
//!
//! Invariants:
//! - Every zarrs read and write passes `codec_options()` (concurrent target 1): the scheduler
//!   owns parallelism. Multi-chunk reads and writes here are sequential loops over chunks.
//! - Read grid and write grid: for unsharded arrays both are the chunk grid. For sharded arrays
//!   (v3 `sharding_indexed`) the read grid is the inner chunks ([`ZarrArray::chunk_shape`],
//!   [`ZarrArray::read_chunk`]) and the write grid is the shards ([`ZarrArray::write_shape`],
//!   [`ZarrArray::write_chunk`], [`ZarrArray::chunk_exists`], [`ZarrArray::erase_chunk`]): a
//!   shard is one stored object, so it is the unit of writing.
//! - Writes never read: a chunk is written whole (edge chunks are padded with the fill value),
//!   and [`ZarrArray::write_region`] rejects regions not aligned to the write grid. Exactly one
//!   writer per write-grid chunk is the caller's duty.
//! - Metadata documents are written by this file as JSON (not by zarrs, which would add a
//!   `_zarrs` attribute and a v2 `node_type`), after zarrs has validated them.
//! - Chunk data moves once: reads decode each stored object straight into the caller's buffer,
//!   writes encode from the chunk's own buffer. [`ZarrArray::copy_region_to`] (rechunk copy
//!   tasks) assembles destination chunks from source chunks each decoded once per task.
//! - Scratch arrays ([`ZarrArray::into_scratch`], a rechunk's intermediates) on a filesystem
//!   store are written here without `fsync` (still temporary file + rename), and consumed
//!   chunks are released as they are read ([`ZarrArray::erased_after_copy`]). The chunks of
//!   rechunk copies and `to_zarr` writes on a filesystem are written here too, durably, with
//!   their `fsync` and rename left to the flusher threads ([`ZarrArray::with_deferred_sync`]).
//!   Every other write goes through zarrs and the store (atomic and durable).
//! - Copies whose source chunks nest in the destination's (same or coarser chunks, a format or
//!   codec change) go destination chunk by destination chunk with one buffer per thread; other
//!   copies assemble all the destination chunks of their region in one block.

use std::any::Any;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use ndarray::{ArrayD, ArrayViewD, IxDyn, SliceInfoElem};
use serde_json::{Map, Value, json};
use zarrs::array::data_type::{
    BoolDataType, Float32DataType, Float64DataType, Int8DataType, Int16DataType, Int32DataType,
    Int64DataType, UInt8DataType, UInt16DataType, UInt32DataType, UInt64DataType,
};
use zarrs::array::{
    Array, ArrayBytes, ArrayBytesRaw, ArrayCreateError, ArrayError, ArrayMetadata, ArrayMetadataV2,
    ArrayMetadataV3, ArrayToBytesCodecTraits, CodecError, CodecOptions, DataType, ElementOwned,
    IntoArrayBytes,
};
use zarrs::storage::{ReadableWritableListableStorageTraits, StorageError, StorePrefix};

use super::flush::Flusher;
use super::spec::{ArraySpec, Compression, FillValue, ZarrFormat};
use super::{Store, StoreError, StoreResult, error::fmt_region};
use crate::array::{Chunks, DType, Element};

/// The zarrs array type behind a [`ZarrArray`].
type ZArray = Array<dyn ReadableWritableListableStorageTraits>;

/// Codec options for every zarrs call: one thread, the scheduler owns parallelism.
///
/// (`CodecOptions::default()` asks rayon for its thread count, so build it once.)
fn codec_options() -> &'static CodecOptions {
    static OPTIONS: LazyLock<CodecOptions> =
        LazyLock::new(|| CodecOptions::default().with_concurrent_target(1));
    &OPTIONS
}

// ---------------------------------------------------------------------------------------------
// Paths and metadata documents
// ---------------------------------------------------------------------------------------------

/// Normalises a node path: `""`, `"/"` → `""`; `"/a/b/"` → `"a/b"`.
fn node_path(path: &str) -> StoreResult<String> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for part in trimmed.split('/') {
        let reason = if part.is_empty() {
            Some("it has an empty segment (\"//\")")
        } else if part == "." || part == ".." {
            Some("\".\" and \"..\" segments are not allowed")
        } else if part.starts_with("__") {
            Some("names starting with \"__\" are reserved by Zarr")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(StoreError::InvalidPath {
                path: path.into(),
                reason: reason.into(),
            });
        }
    }
    Ok(trimmed.to_string())
}

/// The store key of `name` inside node `path`.
fn key_in(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}/{name}")
    }
}

/// The zarrs node path (`"/"` or `"/a/b"`).
fn zarrs_path(path: &str) -> String {
    format!("/{path}")
}

fn read_json(store: &Store, key: &str) -> StoreResult<Option<Value>> {
    match store.get(key)? {
        None => Ok(None),
        Some(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::InvalidMetadata {
                    store: store.description().into(),
                    key: key.into(),
                    message: e.to_string(),
                })
        }
    }
}

fn write_json(store: &Store, key: &str, value: &Value) -> StoreResult<()> {
    let text = serde_json::to_vec_pretty(value).expect("JSON values serialise");
    store.set(key, &text)
}

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// An array.
    Array,
    /// A group.
    Group,
}

impl NodeKind {
    /// `"array"` or `"group"`.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Array => "array",
            NodeKind::Group => "group",
        }
    }
}

/// What is at `path`: an array or a group, and its format; `None` if no node is there.
pub fn node_kind(store: &Store, path: &str) -> StoreResult<Option<(NodeKind, ZarrFormat)>> {
    let path = node_path(path)?;
    if let Some(doc) = read_json(store, &key_in(&path, "zarr.json"))? {
        let kind = match doc.get("node_type").and_then(Value::as_str) {
            Some("array") => NodeKind::Array,
            Some("group") => NodeKind::Group,
            other => {
                return Err(StoreError::InvalidMetadata {
                    store: store.description().into(),
                    key: key_in(&path, "zarr.json"),
                    message: format!("node_type is {other:?}, expected \"array\" or \"group\""),
                });
            }
        };
        return Ok(Some((kind, ZarrFormat::V3)));
    }
    if store.get(&key_in(&path, ".zarray"))?.is_some() {
        return Ok(Some((NodeKind::Array, ZarrFormat::V2)));
    }
    if store.get(&key_in(&path, ".zgroup"))?.is_some() {
        return Ok(Some((NodeKind::Group, ZarrFormat::V2)));
    }
    Ok(None)
}

fn not_found(store: &Store, path: &str, expected: NodeKind) -> StoreResult<StoreError> {
    let found = match node_kind(store, path)? {
        Some((kind, format)) => format!("a {format} {} is there", kind.name()),
        None => "no zarr.json, .zarray or .zgroup there".to_string(),
    };
    Ok(StoreError::NotFound {
        store: store.description().into(),
        path: path.into(),
        expected: expected.name(),
        found,
    })
}

// ---------------------------------------------------------------------------------------------
// Element-type dispatch (our `Element` → zarrs' element types, without unsafe)
// ---------------------------------------------------------------------------------------------

/// Runs `$body` with `$P` bound to the Rust type of `$dtype`.
macro_rules! with_primitive {
    ($dtype:expr, $P:ident => $body:expr) => {
        match $dtype {
            DType::Bool => {
                type $P = bool;
                $body
            }
            DType::I8 => {
                type $P = i8;
                $body
            }
            DType::I16 => {
                type $P = i16;
                $body
            }
            DType::I32 => {
                type $P = i32;
                $body
            }
            DType::I64 => {
                type $P = i64;
                $body
            }
            DType::U8 => {
                type $P = u8;
                $body
            }
            DType::U16 => {
                type $P = u16;
                $body
            }
            DType::U32 => {
                type $P = u32;
                $body
            }
            DType::U64 => {
                type $P = u64;
                $body
            }
            DType::F32 => {
                type $P = f32;
                $body
            }
            DType::F64 => {
                type $P = f64;
                $body
            }
        }
    };
}

/// `ArrayD<A>` as `ArrayD<B>` when `A` and `B` are the same type (checked at run time).
fn cast_array<A: 'static, B: 'static>(a: ArrayD<A>) -> Option<ArrayD<B>> {
    let boxed: Box<dyn Any> = Box::new(a);
    boxed.downcast::<ArrayD<B>>().ok().map(|b| *b)
}

fn dtype_of(dt: &DataType) -> Option<DType> {
    Some(if dt.is::<BoolDataType>() {
        DType::Bool
    } else if dt.is::<Int8DataType>() {
        DType::I8
    } else if dt.is::<Int16DataType>() {
        DType::I16
    } else if dt.is::<Int32DataType>() {
        DType::I32
    } else if dt.is::<Int64DataType>() {
        DType::I64
    } else if dt.is::<UInt8DataType>() {
        DType::U8
    } else if dt.is::<UInt16DataType>() {
        DType::U16
    } else if dt.is::<UInt32DataType>() {
        DType::U32
    } else if dt.is::<UInt64DataType>() {
        DType::U64
    } else if dt.is::<Float32DataType>() {
        DType::F32
    } else if dt.is::<Float64DataType>() {
        DType::F64
    } else {
        return None;
    })
}

fn to_usize_shape(shape: &[u64]) -> Vec<usize> {
    shape
        .iter()
        .map(|&s| usize::try_from(s).expect("shape fits in memory"))
        .collect()
}

fn slice_info(ranges: &[Range<usize>]) -> Vec<SliceInfoElem> {
    ranges
        .iter()
        .map(|r| SliceInfoElem::Slice {
            start: r.start as isize,
            end: Some(r.end as isize),
            step: 1,
        })
        .collect()
}

/// Every index in the box `lo..hi` (row-major).
fn grid_indices(lo: &[u64], hi: &[u64]) -> Vec<Vec<u64>> {
    let mut out = Vec::new();
    if lo.iter().zip(hi).any(|(l, h)| l >= h) {
        return out;
    }
    let mut idx = lo.to_vec();
    loop {
        out.push(idx.clone());
        let mut axis = idx.len();
        loop {
            if axis == 0 {
                return out;
            }
            axis -= 1;
            idx[axis] += 1;
            if idx[axis] < hi[axis] {
                break;
            }
            idx[axis] = lo[axis];
        }
    }
}

/// The chunk indices (`lo..hi` per axis) of the grid `chunk` that the non-empty `region`
/// touches.
fn grid_span(region: &[Range<u64>], chunk: &[u64]) -> (Vec<u64>, Vec<u64>) {
    let lo = region
        .iter()
        .zip(chunk)
        .map(|(r, &c)| r.start / c)
        .collect();
    let hi = region
        .iter()
        .zip(chunk)
        .map(|(r, &c)| r.end.div_ceil(c))
        .collect();
    (lo, hi)
}

/// The most bytes [`ZarrArray::copy_region_to`] reads at once from a source whose partial
/// reads are cheap (see `cheap_partial_reads`).
const SLAB_BYTES: u64 = 4 << 20;

/// `part` cut along its outermost axes into boxes of at most `max_elements` elements (at least
/// one element each), in C order.
fn slabs(part: &[Range<u64>], max_elements: u64) -> Vec<Vec<Range<u64>>> {
    let max_elements = max_elements.max(1);
    let mut out = vec![part.to_vec()];
    // The first axis (from the outside) whose cutting brings the boxes under the limit.
    for axis in 0..part.len() {
        let inner: u64 = part[axis + 1..].iter().map(|r| r.end - r.start).product();
        let extent = part[axis].end - part[axis].start;
        if extent * inner <= max_elements {
            break;
        }
        let step = (max_elements / inner.max(1)).max(1);
        out = out
            .into_iter()
            .flat_map(|b| {
                let r = b[axis].clone();
                (r.start..r.end).step_by(step as usize).map(move |lo| {
                    let mut c = b.clone();
                    c[axis] = lo..(lo + step).min(r.end);
                    c
                })
            })
            .collect();
        if inner <= max_elements {
            break;
        }
    }
    out
}

/// The part of `region` inside chunk `index` of the grid `chunk`.
fn overlap(region: &[Range<u64>], index: &[u64], chunk: &[u64]) -> Vec<Range<u64>> {
    region
        .iter()
        .zip(index)
        .zip(chunk)
        .map(|((r, &i), &c)| r.start.max(i * c)..r.end.min((i + 1) * c))
        .collect()
}

/// Copies the box `piece` from `src`, the native-endian bytes of the box `src_box` in C order,
/// into `dst`, the C-order buffer of the box of shape `dst_shape` at `dst_start`. Both boxes
/// contain `piece`.
fn copy_box<P: Native>(
    src: &[u8],
    src_box: &[Range<u64>],
    dst: &mut [P],
    dst_start: &[u64],
    dst_shape: &[usize],
    piece: &[Range<u64>],
) {
    let size = std::mem::size_of::<P>();
    let shape: Vec<usize> = piece.iter().map(|r| (r.end - r.start) as usize).collect();
    let src_shape: Vec<usize> = src_box.iter().map(|r| (r.end - r.start) as usize).collect();
    let src_at: Vec<usize> = piece
        .iter()
        .zip(src_box)
        .map(|(p, b)| (p.start - b.start) as usize)
        .collect();
    let dst_at: Vec<usize> = piece
        .iter()
        .zip(dst_start)
        .map(|(p, &d)| (p.start - d) as usize)
        .collect();
    for_each_run(
        &shape,
        &src_shape,
        &src_at,
        dst_shape,
        &dst_at,
        |d, s, n| {
            P::from_ne(&mut dst[d..d + n], &src[s * size..(s + n) * size]);
        },
    );
}

/// Calls `run(dst_offset, src_offset, len)` (in elements) for each contiguous run of a copy of
/// the box `shape` at `src_at` in a C-order buffer of shape `src_shape` to `dst_at` in a C-order
/// buffer of shape `dst_shape`. Trailing axes that both buffers hold whole merge into longer
/// runs.
fn for_each_run(
    shape: &[usize],
    src_shape: &[usize],
    src_at: &[usize],
    dst_shape: &[usize],
    dst_at: &[usize],
    mut run: impl FnMut(usize, usize, usize),
) {
    let n = shape.len();
    if shape.contains(&0) {
        return;
    }
    if n == 0 {
        run(0, 0, 1);
        return;
    }
    let strides = |s: &[usize]| {
        let mut st = vec![1usize; n];
        for i in (0..n - 1).rev() {
            st[i] = st[i + 1] * s[i + 1];
        }
        st
    };
    let (ss, ds) = (strides(src_shape), strides(dst_shape));
    // Axes `inner..n` form one run.
    let mut inner = n - 1;
    let mut len = shape[n - 1];
    while inner > 0 && shape[inner] == src_shape[inner] && shape[inner] == dst_shape[inner] {
        inner -= 1;
        len *= shape[inner];
    }
    let mut s: usize = (0..n).map(|i| src_at[i] * ss[i]).sum();
    let mut d: usize = (0..n).map(|i| dst_at[i] * ds[i]).sum();
    let mut idx = vec![0usize; inner];
    loop {
        run(d, s, len);
        // The next run: the outer axes `0..inner` in C order.
        let mut axis = inner;
        loop {
            if axis == 0 {
                return;
            }
            axis -= 1;
            idx[axis] += 1;
            s += ss[axis];
            d += ds[axis];
            if idx[axis] < shape[axis] {
                break;
            }
            s -= ss[axis] * shape[axis];
            d -= ds[axis] * shape[axis];
            idx[axis] = 0;
        }
    }
}

/// The destination-chunk blocks that the tasks of a copy hand on to each other (see
/// [`ZarrArray::copy_region_to`]): a finished task's block serves the next task instead of going
/// back to the system and being faulted in afresh (fresh pages are what a copy pays most for
/// after the codecs, especially in virtual machines).
///
/// Memory: a task takes a pooled block before allocating one and gives it back when done, so a
/// block is allocated only while every existing block is held by a running task: the blocks
/// alive never outnumber the copy's tasks that ever ran at once, which the executor's budget
/// admitted. What the pool holds idle is what finished tasks held, until the next task of the
/// copy takes it. A pooled block too small for a task is freed before the task allocates.
/// The pool keeps at most [`ChunkBuffers::SLOTS`] blocks; clear it when the copy is done
/// ([`ZarrArray::free_copy_buffers`]).
#[derive(Default)]
pub(crate) struct ChunkBuffers {
    free: parking_lot::Mutex<Vec<Box<dyn Any + Send>>>,
}

impl ChunkBuffers {
    /// The most blocks pooled at once.
    const SLOTS: usize = 8;

    /// A pooled block (stale contents) holding at least `len` elements of `P`, if any; when
    /// none is large enough, frees one so that the caller's allocation does not add to the
    /// blocks alive.
    fn take<P: Native>(&self, len: usize) -> Option<Vec<P>> {
        let mut free = self.free.lock();
        let fits = free.iter().position(|b| {
            b.downcast_ref::<Vec<P>>()
                .is_some_and(|v: &Vec<P>| v.len() >= len)
        });
        match fits {
            Some(i) => free.swap_remove(i).downcast::<Vec<P>>().ok().map(|b| *b),
            None => {
                drop(free.pop());
                None
            }
        }
    }

    /// Pools `block` (freed instead when the pool is full).
    fn give<P: Native>(&self, block: Vec<P>) {
        let mut free = self.free.lock();
        if free.len() < Self::SLOTS {
            free.push(Box::new(block));
        }
    }

    /// Frees the pooled blocks.
    pub(crate) fn clear(&self) {
        self.free.lock().clear();
    }
}

/// Runs `work` on up to `threads` threads (the caller's and scoped helpers) sharing `count`
/// items: `next` hands out item numbers in order, and `None` once all are taken or a call of
/// `work` has failed. The first error is returned; a panic is passed on.
fn on_threads<F>(threads: usize, count: usize, work: F) -> StoreResult<()>
where
    F: Fn(&dyn Fn() -> Option<usize>) -> StoreResult<()> + Sync,
{
    let taken = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let next = || {
        if failed.load(Ordering::Relaxed) {
            return None;
        }
        let i = taken.fetch_add(1, Ordering::Relaxed);
        (i < count).then_some(i)
    };
    let run = || {
        let result = work(&next);
        if result.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        result
    };
    let threads = threads.min(count).max(1);
    if threads == 1 {
        return run();
    }
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(run)).collect();
        let mut result = run();
        for helper in helpers {
            match helper.join() {
                Ok(r) => result = result.and(r),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        result
    })
}

/// Decoded bytes of a fixed-size data type, checked to be `expected` bytes long.
fn fixed_bytes(
    bytes: ArrayBytes<'static>,
    expected: u64,
) -> Result<ArrayBytesRaw<'static>, ArrayError> {
    let bytes = bytes
        .into_fixed()
        .map_err(|e| ArrayError::Other(e.to_string()))?;
    if bytes.len() as u64 == expected {
        Ok(bytes)
    } else {
        Err(ArrayError::Other(format!(
            "decoded {} bytes, expected {expected}",
            bytes.len()
        )))
    }
}

/// The Rust primitives behind the dtypes, as zarrs decodes and encodes them.
trait Native: Copy + Default + Send + Sync + ElementOwned + 'static {
    /// Fills `dst` from `src`, native-endian bytes (`size_of::<Self>()` per element).
    fn from_ne(dst: &mut [Self], src: &[u8]);
}

macro_rules! native {
    ($($t:ty),*) => {$(
        impl Native for $t {
            fn from_ne(dst: &mut [Self], src: &[u8]) {
                let (elements, rest) = src.as_chunks::<{ std::mem::size_of::<$t>() }>();
                debug_assert!(rest.is_empty() && elements.len() == dst.len());
                for (d, e) in dst.iter_mut().zip(elements) {
                    *d = <$t>::from_ne_bytes(*e);
                }
            }
        }
    )*};
}
native!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

impl Native for bool {
    fn from_ne(dst: &mut [Self], src: &[u8]) {
        for (d, &b) in dst.iter_mut().zip(src) {
            *d = b != 0;
        }
    }
}

/// Writes `bytes` to a new hidden temporary sibling of `key`'s file in the filesystem store at
/// `root` (named as [`super::AtomicWriteStore`] names its temporaries, so `purge_temporaries`
/// finds leftovers), creating its directory. Returns the open file, its path and the path of
/// `key`; the caller renames it (nothing is left behind on error).
fn write_temporary_file(
    root: &Path,
    key: &str,
    bytes: &[u8],
) -> std::io::Result<(std::fs::File, PathBuf, PathBuf)> {
    use std::io::Write;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let path = root.join(key);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(std::io::Error::other(format!(
            "the key {key:?} names no file"
        )));
    };
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}{SCRATCH_TMP_MARKER}{}-s{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        Ok(file)
    });
    match written {
        Ok(file) => Ok((file, tmp, path)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The marker of temporary file names (the one [`super::AtomicWriteStore`] uses).
const SCRATCH_TMP_MARKER: &str = ".chunkflow-tmp-";

// ---------------------------------------------------------------------------------------------
// ZarrArray
// ---------------------------------------------------------------------------------------------

/// An open Zarr array (v2 or v3) with typed chunk I/O. Cheap to clone; shareable across
/// threads.
///
/// Chunk indices of reads are in the **read grid** ([`chunk_shape`](Self::chunk_shape)); chunk
/// indices of writes, [`chunk_exists`](Self::chunk_exists) and
/// [`erase_chunk`](Self::erase_chunk) are in the **write grid**
/// ([`write_shape`](Self::write_shape)). They differ only for sharded arrays, whose write unit
/// is the shard.
#[derive(Clone)]
pub struct ZarrArray {
    array: Arc<ZArray>,
    store: Store,
    path: String,
    dtype: DType,
    format: ZarrFormat,
    chunk_shape: Vec<u64>,
    write_shape: Vec<u64>,
    sharded: bool,
    fill_value: FillValue,
    dimension_names: Option<Vec<String>>,
    attributes: Map<String, Value>,
    /// The metadata document (v2: `.zarray` with attributes folded in), for descriptions.
    metadata: Value,
    /// Scratch data (see [`ZarrArray::into_scratch`]): filesystem writes skip `fsync`.
    scratch: bool,
    /// Copies out of this array erase what they have read (see
    /// [`ZarrArray::erased_after_copy`]).
    consumed_by_copy: bool,
    /// Filesystem chunk writes hand their `fsync` and rename to these threads (see
    /// [`ZarrArray::with_deferred_sync`]).
    flusher: Option<Arc<Flusher>>,
    /// The block of destination chunks that copies into this array reuse (shared by clones).
    copy_buffers: Arc<ChunkBuffers>,
}

impl std::fmt::Debug for ZarrArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrArray")
            .field("store", &self.store.description())
            .field("path", &self.path)
            .field("shape", &self.shape())
            .field("chunks", &self.chunk_shape)
            .field("dtype", &self.dtype)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl ZarrArray {
    /// Creates an array at `path` (its metadata only; no chunk is written).
    ///
    /// If a node exists there: an error ([`StoreError::NodeExists`]) unless `overwrite`, which
    /// deletes that node and everything under it first. Parent groups are not created (see
    /// [`create_group`]).
    pub fn create(
        store: &Store,
        path: &str,
        spec: &ArraySpec,
        overwrite: bool,
    ) -> StoreResult<ZarrArray> {
        let array = Self::create_unpublished(store, path, spec, overwrite)?;
        array.publish()?;
        Ok(array)
    }

    /// Like [`create`](Self::create), but writes no metadata yet: chunks can be written through
    /// the handle, and readers see the array only once [`publish`](Self::publish) writes its
    /// metadata. A long copy that writes its metadata last never leaves an array that opens as
    /// complete while chunks are missing.
    pub fn create_unpublished(
        store: &Store,
        path: &str,
        spec: &ArraySpec,
        overwrite: bool,
    ) -> StoreResult<ZarrArray> {
        let path = node_path(path)?;
        let fill = spec.validate().map_err(|reason| StoreError::InvalidSpec {
            path: path.clone(),
            reason,
        })?;
        let documents = spec.documents(fill);

        // Validate with zarrs before touching the store.
        let metadata = match spec.format {
            ZarrFormat::V2 => {
                let mut v2: ArrayMetadataV2 = serde_json::from_value(documents[1].1.clone())
                    .map_err(|e| invalid_spec(&path, e))?;
                if let Value::Object(attrs) = &documents[0].1 {
                    v2.attributes = attrs.clone();
                }
                ArrayMetadata::V2(v2)
            }
            ZarrFormat::V3 => ArrayMetadata::V3(
                serde_json::from_value::<ArrayMetadataV3>(documents[0].1.clone())
                    .map_err(|e| invalid_spec(&path, e))?,
            ),
        };
        let array = Array::new_with_metadata(store.storage().clone(), &zarrs_path(&path), metadata)
            .map_err(|e| invalid_spec(&path, e))?;

        if let Some((kind, _)) = node_kind(store, &path)? {
            if !overwrite {
                return Err(StoreError::NodeExists {
                    store: store.description().into(),
                    path,
                    existing: kind.name(),
                });
            }
            // The node's own metadata keys are under its prefix too (for the root: everything).
            store.erase_prefix(&path)?;
        }
        ZarrArray::from_zarrs(store, path, array)
    }

    /// Writes the array's metadata, making it visible to readers.
    pub fn publish(&self) -> StoreResult<()> {
        let spec = self.spec();
        let fill = spec.validate().map_err(|reason| StoreError::InvalidSpec {
            path: self.path.clone(),
            reason,
        })?;
        for (name, doc) in &spec.documents(fill) {
            write_json(&self.store, &key_in(&self.path, name), doc)?;
        }
        Ok(())
    }

    /// Opens the array at `path` (Zarr v3 `zarr.json` or v2 `.zarray`).
    pub fn open(store: &Store, path: &str) -> StoreResult<ZarrArray> {
        let path = node_path(path)?;
        match Array::open(store.storage().clone(), &zarrs_path(&path)) {
            Ok(array) => ZarrArray::from_zarrs(store, path, array),
            Err(ArrayCreateError::MissingMetadata) => {
                Err(not_found(store, &path, NodeKind::Array)?)
            }
            Err(ArrayCreateError::StorageError(e)) => {
                // A group's zarr.json is not array metadata.
                if let Some((NodeKind::Group, _)) = node_kind(store, &path)? {
                    return Err(not_found(store, &path, NodeKind::Array)?);
                }
                Err(store.storage_error(format!("opening array {path:?}"), &path, e))
            }
            Err(ArrayCreateError::DataTypeCreateError(e)) => Err(StoreError::UnsupportedDType {
                store: store.description().into(),
                path,
                dtype: e.to_string(),
            }),
            Err(e) => Err(StoreError::Unsupported {
                store: store.description().into(),
                path,
                what: format!("zarrs cannot open it: {e}"),
            }),
        }
    }

    fn from_zarrs(store: &Store, path: String, array: ZArray) -> StoreResult<ZarrArray> {
        let unsupported = |what: String| StoreError::Unsupported {
            store: store.description().into(),
            path: path.clone(),
            what,
        };
        let dtype = dtype_of(array.data_type()).ok_or_else(|| StoreError::UnsupportedDType {
            store: store.description().into(),
            path: path.clone(),
            dtype: array.data_type().to_string(),
        })?;
        let (format, metadata) = match array.metadata() {
            ArrayMetadata::V2(m) => (ZarrFormat::V2, serde_json::to_value(m)),
            ArrayMetadata::V3(m) => (ZarrFormat::V3, serde_json::to_value(m)),
        };
        let mut metadata = metadata.map_err(|e| unsupported(format!("metadata: {e}")))?;
        normalize_codecs(&mut metadata);

        // The write grid: the (regular) chunk grid zarrs stores objects by.
        let write_shape: Vec<u64> = match format {
            ZarrFormat::V2 => json_u64s(&metadata["chunks"]),
            ZarrFormat::V3 => {
                let grid = &metadata["chunk_grid"];
                let name = grid["name"].as_str().unwrap_or("?");
                if name != "regular" {
                    return Err(unsupported(format!(
                        "it uses the {name:?} chunk grid; chunkflow supports only regular chunk \
                         grids (rechunk it to a regular grid with zarrs or zarr-python)"
                    )));
                }
                json_u64s(&grid["configuration"]["chunk_shape"])
            }
        }
        .ok_or_else(|| unsupported("its chunk shape is not a list of integers".into()))?;

        // The read grid: inner chunks when the first codec is sharding.
        let first_codec = &metadata["codecs"][0];
        let (sharded, chunk_shape) = if first_codec["name"] == "sharding_indexed" {
            let inner = json_u64s(&first_codec["configuration"]["chunk_shape"])
                .ok_or_else(|| unsupported("its sharding codec has no inner chunk shape".into()))?;
            (true, inner)
        } else {
            (false, write_shape.clone())
        };

        let fill_value = if format == ZarrFormat::V2 && metadata["fill_value"].is_null() {
            FillValue::Null
        } else {
            FillValue::from_ne_bytes(dtype, array.fill_value().as_ne_bytes())
                .ok_or_else(|| unsupported("its fill value has the wrong size".into()))?
        };

        let mut attributes = array.attributes().clone();
        let v2_names = attributes.remove("_ARRAY_DIMENSIONS");
        let dimension_names = match format {
            ZarrFormat::V3 => array.dimension_names().as_ref().map(|names| {
                names
                    .iter()
                    .map(|n| n.clone().unwrap_or_default())
                    .collect()
            }),
            ZarrFormat::V2 => v2_names.and_then(|v| serde_json::from_value(v).ok()),
        };
        if format == ZarrFormat::V3 && dimension_names.is_none() {
            // Keep a v3 `_ARRAY_DIMENSIONS` attribute (not xarray's convention) visible.
            if let Some(v) = array.attributes().get("_ARRAY_DIMENSIONS") {
                attributes.insert("_ARRAY_DIMENSIONS".into(), v.clone());
            }
        }

        Ok(ZarrArray {
            array: Arc::new(array),
            store: store.clone(),
            path,
            dtype,
            format,
            chunk_shape,
            write_shape,
            sharded,
            fill_value,
            dimension_names,
            attributes,
            metadata,
            scratch: false,
            consumed_by_copy: false,
            flusher: None,
            copy_buffers: Arc::default(),
        })
    }

    /// The store holding this array.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The array's path in the store (`""` for the root, else `"a/b"`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The shape.
    pub fn shape(&self) -> &[u64] {
        self.array.shape()
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.chunk_shape.len()
    }

    /// The chunk shape of the read grid (the inner chunk shape of a sharded array).
    pub fn chunk_shape(&self) -> &[u64] {
        &self.chunk_shape
    }

    /// The shape of the unit of writing: the shard shape of a sharded array, else the chunk
    /// shape. Every write covers whole write units, each written by exactly one writer.
    pub fn write_shape(&self) -> &[u64] {
        &self.write_shape
    }

    /// The shard shape, if the array is sharded.
    pub fn shard_shape(&self) -> Option<&[u64]> {
        self.sharded.then_some(&self.write_shape[..])
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// What never-written parts read as.
    pub fn fill_value(&self) -> FillValue {
        self.fill_value
    }

    /// The axis names: v3 `dimension_names`, else the v2 `_ARRAY_DIMENSIONS` attribute.
    pub fn dimension_names(&self) -> Option<&[String]> {
        self.dimension_names.as_deref()
    }

    /// The user attributes (without v2's `_ARRAY_DIMENSIONS`).
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }

    /// Zarr v2 or v3.
    pub fn format(&self) -> ZarrFormat {
        self.format
    }

    /// The compression, when it is one [`Compression`] describes (else `None`: another codec,
    /// filters, or several compressors).
    pub fn compression(&self) -> Option<Compression> {
        match self.format {
            ZarrFormat::V2 => {
                let filters = &self.metadata["filters"];
                if !(filters.is_null() || filters.as_array().is_some_and(Vec::is_empty)) {
                    return None;
                }
                match &self.metadata["compressor"] {
                    Value::Null => Some(Compression::None),
                    c => Compression::from_json(c),
                }
            }
            ZarrFormat::V3 => {
                let codecs = if self.sharded {
                    &self.metadata["codecs"][0]["configuration"]["codecs"]
                } else {
                    &self.metadata["codecs"]
                };
                match codecs.as_array().map(Vec::as_slice) {
                    Some([bytes]) if bytes["name"] == "bytes" => Some(Compression::None),
                    Some([bytes, c]) if bytes["name"] == "bytes" => Compression::from_json(c),
                    _ => None,
                }
            }
        }
    }

    /// A short description of the codecs: `"blosc(cname=lz4, clevel=5, shuffle=1)"`,
    /// `"bytes(endian=little) -> zstd(level=0, checksum=false)"`.
    pub fn codec_description(&self) -> String {
        fn one(name: &str, conf: Option<&Map<String, Value>>) -> String {
            let args: Vec<String> = conf
                .into_iter()
                .flatten()
                .filter(|(k, _)| *k != "id")
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    Value::Array(_) | Value::Object(_) if k == "codecs" || k == "index_codecs" => {
                        format!("{k}=[{}]", describe_v3(v))
                    }
                    other => format!("{k}={other}"),
                })
                .collect();
            if args.is_empty() {
                name.to_string()
            } else {
                format!("{name}({})", args.join(", "))
            }
        }
        fn describe_v3(codecs: &Value) -> String {
            codecs
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    one(
                        c["name"].as_str().unwrap_or("?"),
                        c["configuration"].as_object(),
                    )
                })
                .collect::<Vec<_>>()
                .join(" -> ")
        }
        match self.format {
            ZarrFormat::V2 => {
                let mut parts: Vec<String> = self.metadata["filters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| one(f["id"].as_str().unwrap_or("?"), f.as_object()))
                    .collect();
                match &self.metadata["compressor"] {
                    Value::Null => parts.push("no compression".into()),
                    c => parts.push(one(c["id"].as_str().unwrap_or("?"), c.as_object())),
                }
                parts.join(" -> ")
            }
            ZarrFormat::V3 => describe_v3(&self.metadata["codecs"]),
        }
    }

    /// A spec that would recreate this array (compression falls back to the format's default
    /// when [`compression`](Self::compression) cannot describe it).
    pub fn spec(&self) -> ArraySpec {
        ArraySpec {
            shape: self.shape().to_vec(),
            chunks: self.chunk_shape.clone(),
            dtype: self.dtype,
            fill_value: self.fill_value,
            format: self.format,
            compression: self
                .compression()
                .unwrap_or(Compression::default_for(self.format)),
            shard: self.shard_shape().map(<[u64]>::to_vec),
            dimension_names: self.dimension_names.clone(),
            attributes: self.attributes.clone(),
        }
    }

    /// The read grid as [`Chunks`] (edge chunks clipped).
    pub fn chunks(&self) -> Chunks {
        regular_chunks(self.shape(), &self.chunk_shape)
    }

    /// The write grid as [`Chunks`] (edge chunks clipped).
    pub fn write_chunks(&self) -> Chunks {
        regular_chunks(self.shape(), &self.write_shape)
    }

    /// The number of chunks along each axis of the read grid.
    pub fn grid_shape(&self) -> Vec<u64> {
        grid_shape(self.shape(), &self.chunk_shape)
    }

    /// The number of chunks along each axis of the write grid.
    pub fn write_grid_shape(&self) -> Vec<u64> {
        grid_shape(self.shape(), &self.write_shape)
    }

    /// The number of chunks in the read grid.
    pub fn num_chunks(&self) -> u64 {
        self.grid_shape().iter().product()
    }

    /// The array's size in bytes, uncompressed.
    pub fn nbytes(&self) -> u64 {
        self.shape().iter().product::<u64>() * self.dtype.itemsize() as u64
    }

    /// The region of read-grid chunk `index`, clipped to the array.
    pub fn chunk_region(&self, index: &[u64]) -> StoreResult<Vec<Range<u64>>> {
        self.grid_region(index, &self.chunk_shape)
    }

    /// The region of write-grid chunk `index`, clipped to the array.
    pub fn write_chunk_region(&self, index: &[u64]) -> StoreResult<Vec<Range<u64>>> {
        self.grid_region(index, &self.write_shape)
    }

    fn grid_region(&self, index: &[u64], chunk: &[u64]) -> StoreResult<Vec<Range<u64>>> {
        let grid = grid_shape(self.shape(), chunk);
        if index.len() != grid.len() || index.iter().zip(&grid).any(|(i, g)| i >= g) {
            return Err(StoreError::ChunkIndexOutOfBounds {
                path: self.path.clone(),
                index: index.to_vec(),
                grid,
            });
        }
        Ok(index
            .iter()
            .zip(chunk)
            .zip(self.shape())
            .map(|((&i, &c), &s)| i * c..((i + 1) * c).min(s))
            .collect())
    }

    fn check_dtype<T: Element>(&self) -> StoreResult<()> {
        if T::DTYPE != self.dtype {
            return Err(StoreError::DTypeMismatch {
                path: self.path.clone(),
                stored: self.dtype,
                requested: T::DTYPE,
            });
        }
        Ok(())
    }

    fn check_region(&self, region: &[Range<u64>]) -> StoreResult<()> {
        if region.len() != self.ndim()
            || region
                .iter()
                .zip(self.shape())
                .any(|(r, &s)| r.start > r.end || r.end > s)
        {
            return Err(StoreError::RegionOutOfBounds {
                path: self.path.clone(),
                region: region.to_vec(),
                shape: self.shape().to_vec(),
            });
        }
        Ok(())
    }

    fn chunk_key(&self, write_index: &[u64]) -> String {
        self.array.chunk_key(write_index).as_str().to_string()
    }

    /// Maps a zarrs error. `chunk` names the write-grid chunk involved (for reads: a decode
    /// failure there is a corrupt chunk).
    fn array_error(&self, operation: String, chunk: Option<&[u64]>, err: ArrayError) -> StoreError {
        let key = chunk.map_or_else(|| self.path.clone(), |c| self.chunk_key(c));
        match err {
            ArrayError::StorageError(e) | ArrayError::CodecError(CodecError::StorageError(e)) => {
                self.store.storage_error(operation, &key, e)
            }
            ArrayError::CodecError(e) if chunk.is_some() => StoreError::CorruptChunk {
                store: self.store.description().into(),
                path: self.path.clone(),
                chunk: chunk.unwrap_or_default().to_vec(),
                key,
                source: Box::new(e),
            },
            other => StoreError::Storage {
                store: self.store.description().into(),
                operation,
                source: Box::new(other),
            },
        }
    }

    // -----------------------------------------------------------------------------------------
    // Chunk I/O. Reads decode each stored object once, straight from zarrs' decoded bytes into
    // the caller's buffer (one copy, fused with the conversion to elements); writes encode from
    // the chunk's own buffer (no staging copy).
    // -----------------------------------------------------------------------------------------

    /// Decodes the box `part`, which lies inside write-grid chunk `write_index`, as
    /// native-endian bytes in C order.
    fn retrieve_raw(
        &self,
        part: &[Range<u64>],
        write_index: &[u64],
    ) -> StoreResult<ArrayBytesRaw<'static>> {
        let subset: Vec<Range<u64>> = part.to_vec();
        let expected =
            part.iter().map(|r| r.end - r.start).product::<u64>() * self.dtype.itemsize() as u64;
        let result = self
            .array
            .retrieve_array_subset_opt::<ArrayBytes<'static>>(&subset, codec_options())
            .and_then(|bytes| fixed_bytes(bytes, expected));
        result.map_err(|e| {
            self.array_error(
                format!("reading {} of array {:?}", fmt_region(part), self.path),
                Some(write_index),
                e,
            )
        })
    }

    /// Decodes the box `part` of unsharded chunk `index`, in array coordinates; unlike
    /// [`retrieve_raw`](Self::retrieve_raw) it may reach into an edge chunk's padding beyond
    /// the array.
    fn retrieve_chunk_raw(
        &self,
        index: &[u64],
        part: &[Range<u64>],
    ) -> StoreResult<ArrayBytesRaw<'static>> {
        let within: Vec<Range<u64>> = part
            .iter()
            .zip(index)
            .zip(&self.chunk_shape)
            .map(|((r, &i), &c)| r.start - i * c..r.end - i * c)
            .collect();
        let expected =
            part.iter().map(|r| r.end - r.start).product::<u64>() * self.dtype.itemsize() as u64;
        self.array
            .retrieve_chunk_subset_opt::<ArrayBytes<'static>>(index, &within, codec_options())
            .and_then(|bytes| fixed_bytes(bytes, expected))
            .map_err(|e| {
                self.array_error(
                    format!("reading {} of array {:?}", fmt_region(part), self.path),
                    Some(index),
                    e,
                )
            })
    }

    fn not_primitive<T: Element>(&self) -> StoreError {
        StoreError::Unsupported {
            store: self.store.description().into(),
            path: self.path.clone(),
            what: format!(
                "element type {} claims dtype {} but is not the Rust primitive {}",
                std::any::type_name::<T>(),
                T::DTYPE,
                T::DTYPE.name()
            ),
        }
    }

    /// Reads read-grid chunk `index`, clipped to the array bounds (edge chunks are smaller).
    /// Never-written chunks read as the fill value.
    pub fn read_chunk<T: Element>(&self, index: &[u64]) -> StoreResult<ArrayD<T>> {
        let region = self.chunk_region(index)?;
        self.read_region(&region)
    }

    /// Reads any region (a range per axis, inside the array). Chunks are read one after the
    /// other; parallelism belongs to the caller.
    pub fn read_region<T: Element>(&self, region: &[Range<u64>]) -> StoreResult<ArrayD<T>> {
        self.check_dtype::<T>()?;
        self.check_region(region)?;
        let out_shape: Vec<usize> =
            to_usize_shape(&region.iter().map(|r| r.end - r.start).collect::<Vec<_>>());
        if out_shape.contains(&0) {
            return Ok(ArrayD::from_elem(IxDyn(&out_shape), T::default()));
        }
        with_primitive!(self.dtype, P => {
            let data = self.read_native::<P>(region)?;
            let array = ArrayD::from_shape_vec(IxDyn(&out_shape), data)
                .expect("one element per index of the region");
            cast_array::<P, T>(array).ok_or_else(|| self.not_primitive::<T>())
        })
    }

    /// `region` (not empty) in C order: each stored object it touches is decoded once, straight
    /// into the output.
    fn read_native<P: Native>(&self, region: &[Range<u64>]) -> StoreResult<Vec<P>> {
        let out_shape: Vec<usize> =
            to_usize_shape(&region.iter().map(|r| r.end - r.start).collect::<Vec<_>>());
        let starts: Vec<u64> = region.iter().map(|r| r.start).collect();
        let mut out = vec![P::default(); out_shape.iter().product()];
        let (lo, hi) = grid_span(region, &self.write_shape);
        for index in grid_indices(&lo, &hi) {
            let part = overlap(region, &index, &self.write_shape);
            let bytes = self.retrieve_raw(&part, &index)?;
            copy_box(&bytes, &part, &mut out, &starts, &out_shape, &part);
        }
        Ok(out)
    }

    /// Reads the whole array.
    pub fn read_all<T: Element>(&self) -> StoreResult<ArrayD<T>> {
        let region: Vec<Range<u64>> = self.shape().iter().map(|&s| 0..s).collect();
        self.read_region(&region)
    }

    /// Writes write-grid chunk `index` (a shard, for sharded arrays). `data` must have the
    /// chunk's shape clipped to the array (edge chunks are smaller); the part of an edge chunk
    /// outside the array is stored as the fill value. A chunk that is all fill value is erased
    /// instead of written (zarr-python's `write_empty_chunks=False`).
    ///
    /// The caller guarantees no other writer touches this chunk at the same time.
    pub fn write_chunk<T: Element>(
        &self,
        index: &[u64],
        data: ArrayViewD<'_, T>,
    ) -> StoreResult<()> {
        self.check_dtype::<T>()?;
        let region = self.write_chunk_region(index)?;
        let clipped: Vec<u64> = region.iter().map(|r| r.end - r.start).collect();
        if data
            .shape()
            .iter()
            .map(|&d| d as u64)
            .ne(clipped.iter().copied())
        {
            return Err(StoreError::ShapeMismatch {
                path: self.path.clone(),
                target: format!("chunk {index:?}"),
                expected: clipped,
                found: data.shape().iter().map(|&d| d as u64).collect(),
            });
        }
        with_primitive!(self.dtype, P => {
            // The one copy: the view into an owned standard-layout chunk (padded with the fill
            // value at the array's edge), encoded in place.
            let full: ArrayD<P> = if clipped == self.write_shape {
                cast_array::<T, P>(data.as_standard_layout().into_owned())
                    .ok_or_else(|| self.not_primitive::<T>())?
            } else {
                let fill = ArrayD::from_elem(
                    IxDyn(&to_usize_shape(&self.write_shape)),
                    self.fill_native::<P>(),
                );
                let mut full =
                    cast_array::<P, T>(fill).ok_or_else(|| self.not_primitive::<T>())?;
                let within: Vec<Range<usize>> = clipped.iter().map(|&c| 0..c as usize).collect();
                full.slice_mut(slice_info(&within).as_slice()).assign(&data);
                cast_array::<T, P>(full).ok_or_else(|| self.not_primitive::<T>())?
            };
            self.store_native(index, full.as_slice().expect("standard layout"))
        })
    }

    /// The fill value as element type `P` (the array's own type).
    fn fill_native<P: Native>(&self) -> P {
        let mut value = [P::default()];
        P::from_ne(&mut value, self.array.fill_value().as_ne_bytes());
        value[0]
    }

    /// Encodes `data`, the whole write-grid chunk `index` in C order (edge chunks padded), and
    /// stores it. Outside scratch mode an all-fill chunk is erased instead (zarrs'
    /// `store_empty_chunks = false`).
    fn store_native<P: Native>(&self, index: &[u64], data: &[P]) -> StoreResult<()> {
        let opts = codec_options();
        let operation = || format!("writing chunk {index:?} of array {:?}", self.path);
        // Our own filesystem writes: scratch chunks (no `fsync`) and deferred-sync ones.
        if let Some(root) = &self.store.root
            && (self.scratch || self.flusher.is_some())
        {
            let bytes = data
                .into_array_bytes(self.array.data_type())
                .map_err(|e| self.array_error(operation(), None, ArrayError::from(e)))?;
            // Scratch keeps every chunk; otherwise as zarrs' `store_chunk_opt` without
            // `store_empty_chunks`.
            if !self.scratch && bytes.is_fill_value(self.array.fill_value()) {
                return self.erase_chunk(index);
            }
            let encoded = self
                .array
                .chunk_shape(index)
                .and_then(|shape| {
                    self.array
                        .codecs()
                        .encode(
                            bytes,
                            &shape,
                            self.array.data_type(),
                            self.array.fill_value(),
                            opts,
                        )
                        .map_err(ArrayError::CodecError)
                })
                .map_err(|e| self.array_error(operation(), None, e))?;
            let key = self.chunk_key(index);
            let io_error = |e: std::io::Error| {
                self.store
                    .storage_error(operation(), &key, StorageError::IOError(Arc::new(e)))
            };
            let (file, tmp, path) = write_temporary_file(root, &key, &encoded).map_err(io_error)?;
            match &self.flusher {
                Some(flusher) => flusher.submit(file, tmp, path, key.clone(), operation()),
                // Scratch: renamed at once, without `fsync`.
                None => {
                    drop(file);
                    std::fs::rename(&tmp, &path)
                        .inspect_err(|_| {
                            let _ = std::fs::remove_file(&tmp);
                        })
                        .map_err(io_error)?;
                }
            }
            return Ok(());
        }
        self.array
            .store_chunk_opt(index, data, opts)
            .map_err(|e| self.array_error(operation(), None, e))
    }

    /// Marks this handle as holding scratch data (a rechunk's intermediate arrays): on a
    /// filesystem store its chunk writes skip `fsync` (still atomic for readers: a hidden
    /// temporary file, then a rename) and store every chunk, even an all-fill one.
    ///
    /// Durability is what is given up: after a crash of the machine (not of the process) a
    /// scratch chunk may be missing or cut short. A short chunk fails to decode (an error, not
    /// wrong data), since scratch arrays are uncompressed. Other stores ignore the mark.
    pub(crate) fn into_scratch(mut self) -> Self {
        self.scratch = true;
        self
    }

    /// A handle whose filesystem chunk writes stay durable and atomic but do not wait for the
    /// disk: the writing thread encodes the chunk and writes a temporary file, and flusher
    /// threads `fsync` it and rename it into place ([`Flusher`]). A chunk still appears only
    /// once it is on disk. Call [`finish_writes`](Self::finish_writes) before relying on the
    /// chunks written through this handle (and its clones). Scratch handles and other stores
    /// are returned unchanged.
    pub(crate) fn with_deferred_sync(mut self) -> Self {
        if self.store.root.is_some() && !self.scratch {
            self.flusher = Some(Arc::new(Flusher::new()));
        }
        self
    }

    /// Waits until every chunk written through this handle (and its clones) is in place (see
    /// [`with_deferred_sync`](Self::with_deferred_sync)); the first failed write if any.
    pub(crate) fn finish_writes(&self) -> StoreResult<()> {
        let Some(flusher) = &self.flusher else {
            return Ok(());
        };
        flusher.wait().map_err(|(operation, key, e)| {
            self.store
                .storage_error(operation, &key, StorageError::IOError(e))
        })
    }

    /// Marks this handle as the source of exactly one copy whose data nothing reads afterwards
    /// (a rechunk's intermediate, not kept): [`copy_region_to`](Self::copy_region_to) then
    /// frees each stored chunk lying wholly inside the copied region once it has decoded it
    /// (see `release_chunk`; such a chunk must not be read again). Copy regions are disjoint,
    /// so that region's task was the chunk's only reader.
    ///
    /// Freeing intermediate data as it is consumed halves the scratch space a rechunk needs,
    /// saves the write-back of data nobody will read, and hands its page-cache memory straight
    /// to the next writes.
    pub(crate) fn erased_after_copy(mut self) -> Self {
        self.consumed_by_copy = true;
        self
    }

    /// Checks that `region` is aligned to the write grid (see
    /// [`write_region`](Self::write_region)).
    fn check_write_aligned(&self, region: &[Range<u64>]) -> StoreResult<()> {
        let ws = &self.write_shape;
        for (axis, ((r, &c), &s)) in region.iter().zip(ws).zip(self.shape()).enumerate() {
            let detail = if r.start % c != 0 {
                Some(format!(
                    "axis {axis} starts at {}, which is not a multiple of {c}",
                    r.start
                ))
            } else if r.end % c != 0 && r.end != s {
                Some(format!(
                    "axis {axis} ends at {}, which is neither a multiple of {c} nor the array's \
                     end {s}",
                    r.end
                ))
            } else {
                None
            };
            if let Some(detail) = detail {
                return Err(StoreError::MisalignedWrite {
                    path: self.path.clone(),
                    region: region.to_vec(),
                    write_shape: ws.clone(),
                    detail,
                });
            }
        }
        Ok(())
    }

    /// Writes `data` to `region`, which must be aligned to the write grid: each axis starts at
    /// a multiple of [`write_shape`](Self::write_shape) and ends at a multiple of it or at the
    /// array's end. Misaligned regions are rejected (a partial chunk would need a
    /// read-modify-write, which races with other writers). Chunks are written one after the
    /// other.
    pub fn write_region<T: Element>(
        &self,
        region: &[Range<u64>],
        data: ArrayViewD<'_, T>,
    ) -> StoreResult<()> {
        self.check_dtype::<T>()?;
        self.check_region(region)?;
        let expected: Vec<u64> = region.iter().map(|r| r.end - r.start).collect();
        if data
            .shape()
            .iter()
            .map(|&d| d as u64)
            .ne(expected.iter().copied())
        {
            return Err(StoreError::ShapeMismatch {
                path: self.path.clone(),
                target: format!("region {}", fmt_region(region)),
                expected,
                found: data.shape().iter().map(|&d| d as u64).collect(),
            });
        }
        self.check_write_aligned(region)?;
        if expected.contains(&0) {
            return Ok(());
        }
        let (lo, hi) = grid_span(region, &self.write_shape);
        for index in grid_indices(&lo, &hi) {
            let chunk = self.write_chunk_region(&index)?;
            let within: Vec<Range<usize>> = chunk
                .iter()
                .zip(region)
                .map(|(c, r)| (c.start - r.start) as usize..(c.end - r.start) as usize)
                .collect();
            self.write_chunk(&index, data.slice(slice_info(&within).as_slice()))?;
        }
        Ok(())
    }

    /// Copies `region` of this array into `dst`, an array of the same shape and element type
    /// (a rechunk's copy task). `region` must be aligned to `dst`'s write grid, as for
    /// [`write_region`](Self::write_region).
    ///
    /// Every stored chunk of this array the region touches (every inner chunk, when sharded) is
    /// decoded once, straight into a block holding the destination chunks one after the other;
    /// each destination chunk is then encoded from its part of the block, which goes back to
    /// `dst`'s pool for the next copy task (see [`free_copy_buffers`](Self::free_copy_buffers)).
    /// The bytes held at most are
    /// [`copy_working_bytes`](Self::copy_working_bytes).
    pub(crate) fn copy_region_to(&self, dst: &ZarrArray, region: &[Range<u64>]) -> StoreResult<()> {
        self.copy_region_to_with(dst, region, 1)
    }

    /// [`copy_region_to`](Self::copy_region_to), encoding and storing the destination chunks
    /// on up to `threads` threads (for a copy task that runs alone, so that the cores the
    /// executor leaves idle encode and write; see
    /// [`copy_working_bytes_with`](Self::copy_working_bytes_with) for what it holds).
    pub(crate) fn copy_region_to_with(
        &self,
        dst: &ZarrArray,
        region: &[Range<u64>],
        threads: usize,
    ) -> StoreResult<()> {
        if self.dtype != dst.dtype {
            return Err(StoreError::DTypeMismatch {
                path: dst.path.clone(),
                stored: dst.dtype,
                requested: self.dtype,
            });
        }
        if self.shape() != dst.shape() {
            return Err(StoreError::ShapeMismatch {
                path: dst.path.clone(),
                target: format!("a copy from {:?}", self.path),
                expected: dst.shape().to_vec(),
                found: self.shape().to_vec(),
            });
        }
        self.check_region(region)?;
        dst.check_write_aligned(region)?;
        if region.iter().any(|r| r.start == r.end) {
            return Ok(());
        }
        with_primitive!(self.dtype, P => self.copy_native::<P>(dst, region, threads.max(1)))
    }

    /// Frees the data of consumed chunk `index` (see [`erased_after_copy`](Self::erased_after_copy)):
    /// a filesystem chunk is truncated to nothing, which hands its page-cache memory back at
    /// once while keeping the file (deleting thousands of files during a run makes ext4 scan
    /// its recently deleted inodes on every file created after); the array's removal deletes
    /// the files later. Other stores erase the chunk.
    fn release_chunk(&self, index: &[u64]) -> StoreResult<()> {
        let Some(root) = &self.store.root else {
            return self.erase_chunk(index);
        };
        let key = self.chunk_key(index);
        let truncated = std::fs::OpenOptions::new()
            .write(true)
            .open(root.join(&key))
            .and_then(|file| file.set_len(0));
        match truncated {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.store.storage_error(
                format!("releasing chunk {index:?} of array {:?}", self.path),
                &key,
                StorageError::IOError(Arc::new(e)),
            )),
        }
    }

    /// Whether reading part of a chunk costs only what is read: unsharded and uncompressed
    /// (the bytes codec alone), as a rechunk's intermediate arrays are.
    fn cheap_partial_reads(&self) -> bool {
        !self.sharded && self.compression() == Some(Compression::None)
    }

    /// Frees the block of chunk buffers that copies into this array keep for reuse (call it
    /// when a copy into it is done; the next copy allocates afresh).
    pub(crate) fn free_copy_buffers(&self) {
        self.copy_buffers.clear();
    }

    /// The most bytes [`copy_region_to`](Self::copy_region_to) holds for `region`: the
    /// destination chunks it covers (whole, edge chunks padded), a decoded source chunk with its
    /// decoding scratch, and one encoded destination chunk. When the source's chunks nest in
    /// the destination's, one destination chunk at a time instead of all of them.
    pub(crate) fn copy_working_bytes(&self, dst: &ZarrArray, region: &[Range<u64>]) -> u64 {
        self.copy_working_bytes_with(dst, region, 1)
    }

    /// The most bytes [`copy_region_to_with`](Self::copy_region_to_with) holds with `threads`
    /// threads: as [`copy_working_bytes`](Self::copy_working_bytes), with one encoded
    /// destination chunk per thread.
    pub(crate) fn copy_working_bytes_with(
        &self,
        dst: &ZarrArray,
        region: &[Range<u64>],
        threads: usize,
    ) -> u64 {
        let itemsize = self.dtype.itemsize() as u64;
        let padded: u64 = region
            .iter()
            .zip(&dst.write_shape)
            .map(|(r, &c)| (r.end - r.start).div_ceil(c) * c)
            .product();
        let mut piece: u64 = region
            .iter()
            .zip(&self.chunk_shape)
            .map(|(r, &c)| (r.end - r.start).min(c))
            .product();
        if self.cheap_partial_reads() {
            // Slabs as wide as a chunk on the inner axes (see `copy_native`).
            let chunk: u64 = self.chunk_shape.iter().product();
            piece = chunk.min(SLAB_BYTES.div_ceil(itemsize).max(1));
        }
        let chunk: u64 = dst.write_shape.iter().product();
        let chunks: u64 = region
            .iter()
            .zip(&dst.write_shape)
            .map(|(r, &c)| (r.end - r.start).div_ceil(c))
            .product();
        let busy = chunks.min(threads.max(1) as u64);
        // Scratch chunks are uncompressed: encoding borrows the chunk's own buffer.
        let encoded = if dst.scratch { 0 } else { chunk };
        if self.nests_in(dst) {
            // Chunk by chunk (`copy_chunkwise`): each busy thread holds one destination chunk,
            // a source piece with its decoding scratch, and the encoded chunk.
            return busy * (chunk + 2 * piece + encoded) * itemsize;
        }
        (padded + 2 * piece + encoded * busy) * itemsize
    }

    fn copy_native<P: Native>(
        &self,
        dst: &ZarrArray,
        region: &[Range<u64>],
        threads: usize,
    ) -> StoreResult<()> {
        if self.nests_in(dst) {
            return self.copy_chunkwise::<P>(dst, region, threads);
        }
        let pool = &dst.copy_buffers;
        let ws = &dst.write_shape;
        let chunk_len: usize = ws.iter().product::<u64>() as usize;
        let (dlo, dhi) = grid_span(region, ws);
        let dst_chunks = grid_indices(&dlo, &dhi);
        // One block holds every destination chunk of the region, chunk after chunk: a single
        // allocation (mmapped when large, so freeing it returns it whole instead of leaving
        // the allocator's arenas fragmented by hundreds of chunk-sized buffers). Only the
        // padding of edge chunks keeps its initial value (the fill value); the copy overwrites
        // everything else, so a reused block needs no clearing.
        let total = chunk_len * dst_chunks.len();
        let mut block: Vec<P> = pool
            .take::<P>(total)
            .unwrap_or_else(|| vec![P::default(); total]);
        let mut buffers: Vec<&mut [P]> = block[..total].chunks_exact_mut(chunk_len).collect();
        self.fill_chunks(dst, region, &dlo, &dhi, &mut buffers)?;
        let buffers: Vec<&[P]> = buffers.into_iter().map(|b| &*b).collect();
        dst.store_all_native(&dst_chunks, &buffers, threads)?;
        pool.give(block);
        Ok(())
    }

    /// Whether every chunk of this array's read grid lies inside one chunk of `dst`'s write
    /// grid (the write chunk is a whole number of read chunks on every axis): a copy that keeps
    /// or coarsens the chunks, or changes only the format or the codecs.
    fn nests_in(&self, dst: &ZarrArray) -> bool {
        self.chunk_shape
            .iter()
            .zip(&dst.write_shape)
            .all(|(&r, &w)| r > 0 && w % r == 0)
    }

    /// [`copy_native`](Self::copy_native) when the source's chunks nest in the destination's
    /// ([`nests_in`](Self::nests_in)): no source chunk feeds two destination chunks, so each
    /// destination chunk is assembled, encoded and stored on its own, with one chunk buffer per
    /// thread, and `threads` threads share the region's chunks (decoding as well as encoding).
    fn copy_chunkwise<P: Native>(
        &self,
        dst: &ZarrArray,
        region: &[Range<u64>],
        threads: usize,
    ) -> StoreResult<()> {
        let ws = &dst.write_shape;
        let chunk_len: usize = ws.iter().product::<u64>() as usize;
        let (dlo, dhi) = grid_span(region, ws);
        let dst_chunks = grid_indices(&dlo, &dhi);
        let pool = &dst.copy_buffers;
        on_threads(threads, dst_chunks.len(), |next| {
            let mut buffer: Vec<P> = pool
                .take::<P>(chunk_len)
                .unwrap_or_else(|| vec![P::default(); chunk_len]);
            let result = (|| {
                while let Some(i) = next() {
                    let index = &dst_chunks[i];
                    let hi: Vec<u64> = index.iter().map(|&c| c + 1).collect();
                    let own = dst.write_chunk_region(index)?;
                    let mut one = [&mut buffer[..chunk_len]];
                    self.fill_chunks(dst, &own, index, &hi, &mut one)?;
                    dst.store_native(index, &buffer[..chunk_len])?;
                }
                Ok(())
            })();
            pool.give(buffer);
            result
        })
    }

    /// Fills `buffers`, the destination chunks `dlo..dhi` of `dst` (C order) covering
    /// `region`, from this array: each source chunk touched is decoded once. Edge chunks'
    /// padding gets the fill value; everything else is overwritten.
    fn fill_chunks<P: Native>(
        &self,
        dst: &ZarrArray,
        region: &[Range<u64>],
        dlo: &[u64],
        dhi: &[u64],
        buffers: &mut [&mut [P]],
    ) -> StoreResult<()> {
        let ws = &dst.write_shape;
        let chunk_shape = to_usize_shape(ws);
        let dims: Vec<u64> = dlo.iter().zip(dhi).map(|(l, h)| h - l).collect();
        let fill = dst.fill_native::<P>();
        for (index, buffer) in grid_indices(dlo, dhi).iter().zip(buffers.iter_mut()) {
            let edge = index
                .iter()
                .zip(ws)
                .zip(dst.shape())
                .any(|((&i, &c), &s)| (i + 1) * c > s);
            if edge {
                buffer.fill(fill);
            }
        }
        // Source pieces, each decoded once: the read grid (inner chunks of a sharded source).
        let (slo, shi) = grid_span(region, &self.chunk_shape);
        for read_index in grid_indices(&slo, &shi) {
            let part = overlap(region, &read_index, &self.chunk_shape);
            let write_index: Vec<u64> = part
                .iter()
                .zip(&self.write_shape)
                .map(|(r, &c)| r.start / c)
                .collect();
            // An uncompressed source is read in slabs (partial reads cost what they read), each
            // spanning the chunk on all but its outer axes so that it is one contiguous byte
            // range (one read, not one per row); a compressed source is read whole (any
            // partial read decodes the whole chunk).
            let cheap = self.cheap_partial_reads() && !part.is_empty();
            let slabs = if cheap {
                // The whole stored chunk (edge chunks: with their padding) on the inner axes.
                let mut wide: Vec<Range<u64>> = read_index
                    .iter()
                    .zip(&self.chunk_shape)
                    .map(|(&i, &c)| i * c..(i + 1) * c)
                    .collect();
                wide[0] = part[0].clone();
                slabs(&wide, SLAB_BYTES / self.dtype.itemsize() as u64)
            } else {
                vec![part.clone()]
            };
            for slab in slabs {
                let bytes = if cheap {
                    self.retrieve_chunk_raw(&read_index, &slab)?
                } else {
                    self.retrieve_raw(&slab, &write_index)?
                };
                let useful: Vec<Range<u64>> = slab
                    .iter()
                    .zip(&part)
                    .map(|(a, b)| a.start.max(b.start)..a.end.min(b.end))
                    .collect();
                if useful.iter().any(|r| r.start >= r.end) {
                    continue;
                }
                let (clo, chi) = grid_span(&useful, ws);
                for chunk in grid_indices(&clo, &chi) {
                    let k = chunk
                        .iter()
                        .zip(dlo)
                        .zip(&dims)
                        .fold(0u64, |k, ((&c, &l), &d)| k * d + (c - l))
                        as usize;
                    let start: Vec<u64> = chunk.iter().zip(ws).map(|(&i, &c)| i * c).collect();
                    let piece = overlap(&useful, &chunk, ws);
                    copy_box(&bytes, &slab, buffers[k], &start, &chunk_shape, &piece);
                }
            }
            if self.consumed_by_copy && !self.sharded && part == self.chunk_region(&read_index)? {
                self.release_chunk(&read_index)?;
            }
        }
        Ok(())
    }

    /// Stores each chunk `indices[i]` from `buffers[i]` ([`store_native`](Self::store_native))
    /// on up to `threads` scoped threads, which take chunks in order. The first error stops
    /// the others from starting new chunks and is returned; a panic is passed on.
    fn store_all_native<P: Native>(
        &self,
        indices: &[Vec<u64>],
        buffers: &[&[P]],
        threads: usize,
    ) -> StoreResult<()> {
        on_threads(threads, indices.len(), |next| {
            while let Some(i) = next() {
                self.store_native(&indices[i], buffers[i])?;
            }
            Ok(())
        })
    }

    /// Whether write-grid chunk `index` is stored (never written or erased chunks are not; they
    /// read as the fill value).
    pub fn chunk_exists(&self, index: &[u64]) -> StoreResult<bool> {
        self.write_chunk_region(index)?;
        let key = self.chunk_key(index);
        Ok(self.store.size(&key)?.is_some())
    }

    /// Deletes write-grid chunk `index` (it then reads as the fill value).
    pub fn erase_chunk(&self, index: &[u64]) -> StoreResult<()> {
        self.write_chunk_region(index)?;
        self.array.erase_chunk(index).map_err(|e| {
            let key = self.chunk_key(index);
            self.store.storage_error(
                format!("erasing chunk {index:?} of {:?}", self.path),
                &key,
                e,
            )
        })
    }

    /// Replaces the user attributes (keeping the dimension names), rewriting the metadata.
    pub fn set_attributes(&mut self, attributes: Map<String, Value>) -> StoreResult<()> {
        match self.format {
            ZarrFormat::V2 => {
                let mut attrs = attributes.clone();
                if let Some(names) = &self.dimension_names {
                    attrs.insert("_ARRAY_DIMENSIONS".into(), json!(names));
                }
                write_json(
                    &self.store,
                    &key_in(&self.path, ".zattrs"),
                    &Value::Object(attrs),
                )?;
            }
            ZarrFormat::V3 => {
                let key = key_in(&self.path, "zarr.json");
                let Some(mut doc) = read_json(&self.store, &key)? else {
                    return Err(not_found(&self.store, &self.path, NodeKind::Array)?);
                };
                doc["attributes"] = Value::Object(attributes.clone());
                write_json(&self.store, &key, &doc)?;
            }
        }
        self.attributes = attributes;
        Ok(())
    }
}

/// Rewrites v3 codec short-hands (`"bytes"`) as objects (`{"name": "bytes"}`), recursively
/// through codec configurations (sharding), so the rest of this file sees one shape.
fn normalize_codecs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if (key == "codecs" || key == "index_codecs")
                    && let Value::Array(codecs) = value
                {
                    for codec in codecs.iter_mut() {
                        if let Value::String(name) = codec {
                            *codec = json!({"name": name.clone()});
                        }
                    }
                }
                normalize_codecs(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_codecs),
        _ => {}
    }
}

fn json_u64s(v: &Value) -> Option<Vec<u64>> {
    v.as_array()?.iter().map(Value::as_u64).collect()
}

fn invalid_spec(path: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::InvalidSpec {
        path: path.into(),
        reason: format!("zarrs rejected the metadata: {e}"),
    }
}

fn grid_shape(shape: &[u64], chunk: &[u64]) -> Vec<u64> {
    shape
        .iter()
        .zip(chunk)
        .map(|(&s, &c)| s.div_ceil(c))
        .collect()
}

fn regular_chunks(shape: &[u64], chunk: &[u64]) -> Chunks {
    let axes = shape
        .iter()
        .zip(chunk)
        .map(|(&s, &c)| {
            let (s, c) = (s as usize, c as usize);
            (0..s.div_ceil(c))
                .map(|i| c.min(s - i * c))
                .collect::<Vec<usize>>()
        })
        .collect();
    Chunks::with_shape(axes, &to_usize_shape(shape)).expect("a regular grid is valid chunking")
}

// ---------------------------------------------------------------------------------------------
// Groups and consolidated metadata
// ---------------------------------------------------------------------------------------------

/// The children of a group, by name (sorted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Children {
    /// Child arrays.
    pub arrays: Vec<String>,
    /// Child groups.
    pub groups: Vec<String>,
    /// Whether the answer came from consolidated metadata (which may be stale) rather than
    /// from listing the store.
    pub consolidated: bool,
}

/// Creates a group at `path` with `attributes`, or replaces the metadata (attributes) of the
/// group already there (its children stay). An array at `path` is an error.
pub fn create_group(
    store: &Store,
    path: &str,
    attributes: Map<String, Value>,
    format: ZarrFormat,
) -> StoreResult<()> {
    let path = node_path(path)?;
    if let Some((NodeKind::Array, _)) = node_kind(store, &path)? {
        return Err(StoreError::NodeExists {
            store: store.description().into(),
            path,
            existing: "array",
        });
    }
    match format {
        ZarrFormat::V2 => {
            write_json(store, &key_in(&path, ".zattrs"), &Value::Object(attributes))?;
            write_json(store, &key_in(&path, ".zgroup"), &json!({"zarr_format": 2}))
        }
        ZarrFormat::V3 => write_json(
            store,
            &key_in(&path, "zarr.json"),
            &json!({"zarr_format": 3, "node_type": "group", "attributes": attributes}),
        ),
    }
}

/// The attributes of the group at `path`.
pub fn group_attributes(store: &Store, path: &str) -> StoreResult<Map<String, Value>> {
    let path = node_path(path)?;
    match node_kind(store, &path)? {
        Some((NodeKind::Group, ZarrFormat::V3)) => {
            let doc = read_json(store, &key_in(&path, "zarr.json"))?.unwrap_or_default();
            Ok(doc["attributes"].as_object().cloned().unwrap_or_default())
        }
        Some((NodeKind::Group, ZarrFormat::V2)) => {
            match read_json(store, &key_in(&path, ".zattrs"))? {
                Some(Value::Object(m)) => Ok(m),
                _ => Ok(Map::new()),
            }
        }
        _ => Err(not_found(store, &path, NodeKind::Group)?),
    }
}

/// The arrays and groups directly inside the group at `path`: from its consolidated metadata
/// when it has some (v3 inline `consolidated_metadata`, v2 `.zmetadata`), else by listing the
/// store.
pub fn list_children(store: &Store, path: &str) -> StoreResult<Children> {
    let path = node_path(path)?;
    let format = match node_kind(store, &path)? {
        Some((NodeKind::Group, format)) => format,
        _ => return Err(not_found(store, &path, NodeKind::Group)?),
    };
    if let Some(children) = consolidated_children(store, &path, format)? {
        return Ok(children);
    }
    let mut children = Children::default();
    for (name, kind, _) in scan_children(store, &path)? {
        match kind {
            NodeKind::Array => children.arrays.push(name),
            NodeKind::Group => children.groups.push(name),
        }
    }
    Ok(children)
}

fn consolidated_children(
    store: &Store,
    path: &str,
    format: ZarrFormat,
) -> StoreResult<Option<Children>> {
    let mut children = Children {
        consolidated: true,
        ..Children::default()
    };
    match format {
        ZarrFormat::V3 => {
            let doc = read_json(store, &key_in(path, "zarr.json"))?.unwrap_or_default();
            let Some(meta) = doc["consolidated_metadata"]["metadata"].as_object() else {
                return Ok(None);
            };
            for (name, node) in meta {
                if name.contains('/') {
                    continue;
                }
                match node["node_type"].as_str() {
                    Some("array") => children.arrays.push(name.clone()),
                    Some("group") => children.groups.push(name.clone()),
                    _ => {}
                }
            }
        }
        ZarrFormat::V2 => {
            let Some(doc) = read_json(store, &key_in(path, ".zmetadata"))? else {
                return Ok(None);
            };
            let Some(meta) = doc["metadata"].as_object() else {
                return Ok(None);
            };
            for key in meta.keys() {
                if let Some((name, file)) = key.split_once('/')
                    && !file.contains('/')
                {
                    match file {
                        ".zarray" => children.arrays.push(name.to_string()),
                        ".zgroup" => children.groups.push(name.to_string()),
                        _ => {}
                    }
                }
            }
        }
    }
    children.arrays.sort();
    children.groups.sort();
    Ok(Some(children))
}

/// The child nodes of `path` found by listing the store: `(name, kind, format)`, sorted.
fn scan_children(store: &Store, path: &str) -> StoreResult<Vec<(String, NodeKind, ZarrFormat)>> {
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let prefix = StorePrefix::new(prefix.clone()).map_err(|e| StoreError::InvalidPath {
        path: prefix,
        reason: e.to_string(),
    })?;
    let listing = store
        .storage()
        .list_dir(&prefix)
        .map_err(|e| store.storage_error(format!("listing {path:?}"), path, e))?;
    let mut out = Vec::new();
    for child in listing.prefixes() {
        let child = child.as_str().trim_end_matches('/');
        let name = child.rsplit('/').next().unwrap_or(child).to_string();
        if let Some((kind, format)) = node_kind(store, child)? {
            out.push((name, kind, format));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Writes consolidated metadata for the hierarchy under the group at `path`, the way
/// zarr-python does: v2 `.zmetadata` (`zarr_consolidated_format: 1`, every `.zgroup`,
/// `.zarray` and `.zattrs` of the hierarchy), v3 an inline `consolidated_metadata` field in the
/// group's `zarr.json` (every descendant's document, keyed by relative path).
///
/// Run it after the last metadata change: consolidated metadata is not updated by later
/// writes.
pub fn consolidate_metadata(store: &Store, path: &str) -> StoreResult<()> {
    let path = node_path(path)?;
    let format = match node_kind(store, &path)? {
        Some((NodeKind::Group, format)) => format,
        _ => return Err(not_found(store, &path, NodeKind::Group)?),
    };
    let mut nodes = Vec::new();
    collect_nodes(store, &path, "", &mut nodes)?;
    match format {
        ZarrFormat::V2 => {
            let mut meta = Map::new();
            meta.insert(".zgroup".into(), json!({"zarr_format": 2}));
            let root_attrs = read_json(store, &key_in(&path, ".zattrs"))?.unwrap_or(json!({}));
            meta.insert(".zattrs".into(), root_attrs);
            for (rel, kind, node_format) in &nodes {
                if *node_format != ZarrFormat::V2 {
                    continue;
                }
                let full = key_in(&path, rel);
                let file = match kind {
                    NodeKind::Array => ".zarray",
                    NodeKind::Group => ".zgroup",
                };
                if let Some(doc) = read_json(store, &key_in(&full, file))? {
                    meta.insert(format!("{rel}/{file}"), doc);
                }
                let attrs = read_json(store, &key_in(&full, ".zattrs"))?.unwrap_or(json!({}));
                meta.insert(format!("{rel}/.zattrs"), attrs);
            }
            write_json(
                store,
                &key_in(&path, ".zmetadata"),
                &json!({"metadata": meta, "zarr_consolidated_format": 1}),
            )
        }
        ZarrFormat::V3 => {
            let mut meta = Map::new();
            for (rel, kind, node_format) in &nodes {
                if *node_format != ZarrFormat::V3 {
                    continue;
                }
                let full = key_in(&path, rel);
                let Some(mut doc) = read_json(store, &key_in(&full, "zarr.json"))? else {
                    continue;
                };
                if *kind == NodeKind::Group {
                    doc["consolidated_metadata"] = empty_consolidated();
                }
                meta.insert(rel.clone(), doc);
            }
            let key = key_in(&path, "zarr.json");
            let mut root = read_json(store, &key)?.unwrap_or_default();
            root["consolidated_metadata"] =
                json!({"kind": "inline", "must_understand": false, "metadata": meta});
            write_json(store, &key, &root)
        }
    }
}

fn empty_consolidated() -> Value {
    json!({"kind": "inline", "must_understand": false, "metadata": {}})
}

/// Every node under `path` (depth first), as `(path relative to the consolidation root, kind,
/// format)`.
fn collect_nodes(
    store: &Store,
    path: &str,
    rel: &str,
    out: &mut Vec<(String, NodeKind, ZarrFormat)>,
) -> StoreResult<()> {
    for (name, kind, format) in scan_children(store, path)? {
        let child_rel = key_in(rel, &name);
        out.push((child_rel.clone(), kind, format));
        if kind == NodeKind::Group {
            collect_nodes(store, &key_in(path, &name), &child_rel, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "zarr_tests.rs"]
mod tests;

#[cfg(test)]
mod copy_tests {
    //! The copy path of rechunk tasks: run-by-run box copies, slabs, `copy_region_to` across
    //! layouts, fill values and sharding, scratch writes and consumed sources.

    use ndarray::{ArrayD, IxDyn};

    use super::*;

    fn sample(shape: &[usize]) -> ArrayD<f32> {
        let n: usize = shape.iter().product();
        ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|i| i as f32 * 0.5 - 7.0).collect())
            .unwrap()
    }

    fn c_index(shape: &[usize], idx: &[usize]) -> usize {
        idx.iter().zip(shape).fold(0, |k, (&i, &s)| k * s + i)
    }

    /// A box copy: (box shape, source shape, source offset, destination shape, destination
    /// offset).
    type BoxCase<'a> = (
        &'a [usize],
        &'a [usize],
        &'a [usize],
        &'a [usize],
        &'a [usize],
    );

    #[test]
    fn runs_copy_exactly_the_box() {
        let cases: &[BoxCase] = &[
            (&[2, 3], &[4, 5], &[1, 2], &[3, 3], &[0, 0]),
            (&[4, 5], &[4, 5], &[0, 0], &[6, 5], &[2, 0]), // merges into one run
            (&[1, 2, 3], &[2, 3, 3], &[1, 1, 0], &[1, 2, 3], &[0, 0, 0]),
            (&[3, 1, 4], &[5, 2, 4], &[2, 1, 0], &[3, 3, 4], &[0, 2, 0]),
            (
                &[2, 2, 2, 2],
                &[3, 3, 3, 3],
                &[1, 0, 1, 0],
                &[2, 2, 2, 2],
                &[0, 0, 0, 0],
            ),
            (&[], &[], &[], &[], &[]),
            (&[0, 3], &[2, 3], &[0, 0], &[2, 3], &[0, 0]),
        ];
        for &(shape, ss, so, ds, d0) in cases {
            let src: Vec<f32> = (0..ss.iter().product::<usize>())
                .map(|i| i as f32)
                .collect();
            let mut got = vec![-1.0f32; ds.iter().product()];
            for_each_run(shape, ss, so, ds, d0, |d, s, n| {
                got[d..d + n].copy_from_slice(&src[s..s + n]);
            });
            let mut want = vec![-1.0f32; ds.iter().product()];
            let total: usize = shape.iter().product();
            for flat in 0..total {
                let mut idx = vec![0usize; shape.len()];
                let mut rest = flat;
                for a in (0..shape.len()).rev() {
                    idx[a] = rest % shape[a];
                    rest /= shape[a];
                }
                let si: Vec<usize> = idx.iter().zip(so).map(|(i, o)| i + o).collect();
                let di: Vec<usize> = idx.iter().zip(d0).map(|(i, o)| i + o).collect();
                want[c_index(ds, &di)] = src[c_index(ss, &si)];
            }
            assert_eq!(
                got, want,
                "box {shape:?} from {ss:?}@{so:?} to {ds:?}@{d0:?}"
            );
        }
    }

    #[test]
    fn slabs_tile_the_box_within_the_limit() {
        for (part, limit) in [
            (vec![3..20, 0..4, 2..7], 40u64),
            (vec![0..5, 0..100], 30),
            (vec![0..8, 0..8], 1000),
            (vec![0..4, 0..3, 0..5], 1),
        ] {
            let pieces = slabs(&part, limit);
            let mut seen = std::collections::HashSet::new();
            for p in &pieces {
                let n: u64 = p.iter().map(|r| r.end - r.start).product();
                assert!(n <= limit.max(1), "{p:?} has {n} elements, over {limit}");
                let mut idx: Vec<u64> = p.iter().map(|r| r.start).collect();
                'all: loop {
                    assert!(seen.insert(idx.clone()), "{idx:?} twice");
                    for a in (0..idx.len()).rev() {
                        idx[a] += 1;
                        if idx[a] < p[a].end {
                            continue 'all;
                        }
                        idx[a] = p[a].start;
                    }
                    break;
                }
            }
            let total: u64 = part.iter().map(|r| r.end - r.start).product();
            assert_eq!(seen.len() as u64, total, "{part:?} covered once");
        }
    }

    /// Copies `src` into a new array made from `dst_spec`, task region by task region, and
    /// checks the result element for element.
    fn copy_and_check(src: &ZarrArray, store: &Store, dst_spec: &ArraySpec, grid: &[u64]) {
        let dst = ZarrArray::create(store, "dst", dst_spec, true).unwrap();
        let shape = src.shape().to_vec();
        // Regions of `grid` snapped to dst's write grid.
        let ws = dst.write_shape().to_vec();
        let axes: Vec<Vec<Range<u64>>> = shape
            .iter()
            .zip(grid)
            .zip(&ws)
            .map(|((&s, &g), &w)| {
                let step = g.div_ceil(w) * w;
                (0..s)
                    .step_by(step as usize)
                    .map(|a| a..(a + step).min(s))
                    .collect()
            })
            .collect();
        let mut regions: Vec<Vec<Range<u64>>> = vec![vec![]];
        for ranges in axes {
            regions = regions
                .into_iter()
                .flat_map(|p| {
                    ranges.iter().map(move |r| {
                        let mut v = p.clone();
                        v.push(r.clone());
                        v
                    })
                })
                .collect();
        }
        // One, two or three threads storing, in turn; the pool hands blocks between regions
        // of different sizes.
        for (i, region) in regions.iter().enumerate() {
            let threads = 1 + i % 3;
            let budget = src.copy_working_bytes(&dst, region);
            assert!(budget > 0);
            assert!(src.copy_working_bytes_with(&dst, region, threads) >= budget);
            src.copy_region_to_with(&dst, region, threads).unwrap();
        }
        dst.free_copy_buffers();
        let want = src.read_all::<f32>().unwrap();
        let got = ZarrArray::open(store, "dst")
            .unwrap()
            .read_all::<f32>()
            .unwrap();
        assert_eq!(got, want, "{dst_spec:?} via grid {grid:?}");
    }

    #[test]
    fn copies_match_across_layouts_fill_values_and_sharding() {
        let store = Store::memory();
        let data = sample(&[9, 10, 7]);
        for (src_spec, dst_spec, grid) in [
            (
                ArraySpec::new(vec![9, 10, 7], vec![1, 10, 7], DType::F32),
                ArraySpec::new(vec![9, 10, 7], vec![9, 3, 2], DType::F32)
                    .with_fill_value(FillValue::NaN),
                vec![9, 6, 4],
            ),
            (
                ArraySpec::new(vec![9, 10, 7], vec![2, 4, 7], DType::F32)
                    .with_format(ZarrFormat::V3)
                    .with_shard(vec![4, 8, 7]),
                ArraySpec::new(vec![9, 10, 7], vec![5, 5, 3], DType::F32)
                    .with_compression(Compression::None),
                vec![5, 10, 3],
            ),
            (
                ArraySpec::new(vec![9, 10, 7], vec![4, 3, 5], DType::F32)
                    .with_compression(Compression::None),
                ArraySpec::new(vec![9, 10, 7], vec![2, 2, 2], DType::F32)
                    .with_format(ZarrFormat::V3)
                    .with_shard(vec![4, 4, 4])
                    .with_fill_value(FillValue::NaN),
                vec![8, 8, 8],
            ),
        ] {
            let src = ZarrArray::create(&store, "src", &src_spec, true).unwrap();
            src.write_region(&[0..9, 0..10, 0..7], data.view()).unwrap();
            copy_and_check(&src, &store, &dst_spec, &grid);
        }
    }

    #[test]
    fn nested_copies_go_chunk_by_chunk_and_match() {
        let store = Store::memory();
        let data = sample(&[9, 10, 7]);
        for (src_spec, dst_spec, grid) in [
            // Coarsening along time, edge chunks on two axes, v2 to v3, another fill value.
            (
                ArraySpec::new(vec![9, 10, 7], vec![1, 5, 7], DType::F32),
                ArraySpec::new(vec![9, 10, 7], vec![4, 10, 7], DType::F32)
                    .with_format(ZarrFormat::V3)
                    .with_fill_value(FillValue::NaN),
                vec![8, 10, 7],
            ),
            // The same chunks, other codecs; edge chunks on the middle axis.
            (
                ArraySpec::new(vec![9, 10, 7], vec![3, 4, 7], DType::F32),
                ArraySpec::new(vec![9, 10, 7], vec![3, 4, 7], DType::F32)
                    .with_compression(Compression::None),
                vec![9, 8, 7],
            ),
            // Sharded source (its inner chunks nest) into shards of inner chunks.
            (
                ArraySpec::new(vec![9, 10, 7], vec![2, 5, 7], DType::F32)
                    .with_format(ZarrFormat::V3)
                    .with_shard(vec![4, 10, 7]),
                ArraySpec::new(vec![9, 10, 7], vec![2, 5, 7], DType::F32)
                    .with_format(ZarrFormat::V3)
                    .with_shard(vec![4, 10, 7]),
                vec![4, 10, 7],
            ),
        ] {
            let src = ZarrArray::create(&store, "src", &src_spec, true).unwrap();
            src.write_region(&[0..9, 0..10, 0..7], data.view()).unwrap();
            let dst = ZarrArray::create(&store, "dst", &dst_spec, true).unwrap();
            assert!(src.nests_in(&dst), "{src_spec:?} in {dst_spec:?}");
            // One destination chunk per thread, however large the region.
            let whole = [0..9, 0..10, 0..7];
            let first = dst.write_chunk_region(&[0, 0, 0]).unwrap();
            assert_eq!(
                src.copy_working_bytes(&dst, &whole),
                src.copy_working_bytes(&dst, &first)
            );
            assert_eq!(
                src.copy_working_bytes_with(&dst, &whole, 2),
                2 * src.copy_working_bytes(&dst, &whole)
            );
            copy_and_check(&src, &store, &dst_spec, &grid);
        }
        // Finer destination chunks do not nest.
        let src = ZarrArray::open(&store, "src").unwrap();
        let finer = ArraySpec::new(vec![9, 10, 7], vec![1, 5, 7], DType::F32);
        let dst = ZarrArray::create(&store, "finer", &finer, true).unwrap();
        assert!(!src.nests_in(&dst));
    }

    #[test]
    fn deferred_sync_writes_appear_by_finish_and_leave_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::filesystem(dir.path()).unwrap();
        let data = sample(&[12, 8]);
        let src_spec = ArraySpec::new(vec![12, 8], vec![1, 8], DType::F32);
        let src = ZarrArray::create(&store, "src", &src_spec, true).unwrap();
        src.write_region(&[0..12, 0..8], data.view()).unwrap();
        for dst_chunks in [vec![3, 8], vec![5, 3]] {
            let dst_spec = ArraySpec::new(vec![12, 8], dst_chunks.clone(), DType::F32)
                .with_fill_value(FillValue::NaN);
            let dst = ZarrArray::create(&store, "dst", &dst_spec, true)
                .unwrap()
                .with_deferred_sync();
            for threads in [1, 2] {
                src.copy_region_to_with(&dst, &[0..12, 0..8], threads)
                    .unwrap();
                dst.finish_writes().unwrap();
                let back = ZarrArray::open(&store, "dst")
                    .unwrap()
                    .read_all::<f32>()
                    .unwrap();
                assert_eq!(back, data, "chunks {dst_chunks:?}, {threads} threads");
            }
            let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("dst"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|name| name.contains(SCRATCH_TMP_MARKER))
                .collect();
            assert!(leftovers.is_empty(), "{leftovers:?}");
        }
    }

    #[test]
    fn threaded_stores_return_the_first_error() {
        let store = Store::memory();
        let spec = ArraySpec::new(vec![8, 8], vec![8, 1], DType::F32);
        let src = ZarrArray::create(&store, "src", &spec, true).unwrap();
        src.write_region(&[0..8, 0..8], sample(&[8, 8]).view())
            .unwrap();
        let dst_spec = ArraySpec::new(vec![8, 8], vec![1, 8], DType::F32);
        ZarrArray::create(&store, "dst", &dst_spec, true).unwrap();
        let read_only = ZarrArray::open(&store.read_only(), "dst").unwrap();
        for threads in [1, 3] {
            let err = src
                .copy_region_to_with(&read_only, &[0..8, 0..8], threads)
                .unwrap_err();
            assert!(err.to_string().contains("read-only"), "{err}");
        }
        // Nested copies stop at the first error too.
        let coarse = ArraySpec::new(vec![8, 8], vec![2, 8], DType::F32);
        ZarrArray::create(&store, "coarse", &coarse, true).unwrap();
        let read_only_coarse = ZarrArray::open(&store.read_only(), "coarse").unwrap();
        let rows = ZarrArray::create(&store, "rows", &dst_spec, true).unwrap();
        rows.write_region(&[0..8, 0..8], sample(&[8, 8]).view())
            .unwrap();
        assert!(rows.nests_in(&read_only_coarse));
        for threads in [1, 3] {
            let err = rows
                .copy_region_to_with(&read_only_coarse, &[0..8, 0..8], threads)
                .unwrap_err();
            assert!(err.to_string().contains("read-only"), "{err}");
        }
        // Encoded chunks are counted once per thread, up to the region's chunk count.
        let dst = ZarrArray::open(&store, "dst").unwrap();
        let one = src.copy_working_bytes_with(&dst, &[0..8, 0..8], 1);
        let chunk = 8 * 4;
        assert_eq!(
            src.copy_working_bytes_with(&dst, &[0..8, 0..8], 3),
            one + 2 * chunk
        );
        assert_eq!(
            src.copy_working_bytes_with(&dst, &[0..1, 0..8], 3),
            src.copy_working_bytes_with(&dst, &[0..1, 0..8], 1)
        );
    }

    #[test]
    fn scratch_copies_write_without_leftovers_and_consume_their_source() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::filesystem(dir.path()).unwrap();
        let data = sample(&[6, 8]);
        let int_spec =
            ArraySpec::new(vec![6, 8], vec![2, 8], DType::F32).with_compression(Compression::None);
        let int = ZarrArray::create(&store, "int", &int_spec, true)
            .unwrap()
            .into_scratch();
        int.write_region(&[0..6, 0..8], data.view()).unwrap();
        assert_eq!(int.read_all::<f32>().unwrap(), data);
        let int = int.erased_after_copy();
        let dst_spec = ArraySpec::new(vec![6, 8], vec![6, 4], DType::F32);
        let a = ZarrArray::create(&store, "a", &dst_spec, true).unwrap();
        // Each int chunk (2 x 8) straddles both regions: no task is its only reader, so none
        // is erased.
        src_copy(&int, &a, &[0..6, 0..4]);
        src_copy(&int, &a, &[0..6, 4..8]);
        assert_eq!(a.read_all::<f32>().unwrap(), data);
        assert_eq!(int_chunks(dir.path()), 3);
        // A region holding whole int chunks erases each once it has read it.
        let b = ZarrArray::create(&store, "b", &dst_spec, true).unwrap();
        src_copy(&int, &b, &[0..6, 0..8]);
        assert_eq!(b.read_all::<f32>().unwrap(), data);
        assert_eq!(int_chunks(dir.path()), 0);
        // No temporary file is left anywhere.
        assert_eq!(store.purge_temporaries("").unwrap(), 0);
        // Temporary names follow the atomic store's convention.
        assert!(super::super::AtomicWriteStore::<()>::is_temporary_key(
            &format!("a/.0.0{SCRATCH_TMP_MARKER}1-s2")
        ));
    }

    fn src_copy(src: &ZarrArray, dst: &ZarrArray, region: &[Range<u64>]) {
        src.copy_region_to(dst, region).unwrap();
    }

    /// Chunk files of the array `int` holding data (metadata, temporaries and released chunks
    /// aside).
    fn int_chunks(root: &std::path::Path) -> usize {
        let mut n = 0;
        let mut stack = vec![root.join("int")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().to_string();
                if e.path().is_dir() {
                    stack.push(e.path());
                } else if !name.starts_with('.')
                    && name != "zarr.json"
                    && e.metadata().unwrap().len() > 0
                {
                    n += 1;
                }
            }
        }
        n
    }
}
