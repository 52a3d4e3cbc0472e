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

use std::any::Any;
use std::ops::Range;
use std::sync::{Arc, LazyLock};

use ndarray::{ArrayD, ArrayViewD, IxDyn, SliceInfoElem};
use serde_json::{Map, Value, json};
use zarrs::array::data_type::{
    BoolDataType, Float32DataType, Float64DataType, Int8DataType, Int16DataType, Int32DataType,
    Int64DataType, UInt8DataType, UInt16DataType, UInt32DataType, UInt64DataType,
};
use zarrs::array::{
    Array, ArrayBytes, ArrayCreateError, ArrayError, ArrayMetadata, ArrayMetadataV2,
    ArrayMetadataV3, CodecError, CodecOptions, DataType, FromArrayBytes,
};
use zarrs::storage::{ReadableWritableListableStorageTraits, StorePrefix};

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

    /// Reads `region` of write-grid chunk `write_index` (the region lies inside it).
    fn retrieve<T: Element>(
        &self,
        region: &[Range<u64>],
        write_index: &[u64],
    ) -> StoreResult<ArrayD<T>> {
        let subset: Vec<Range<u64>> = region.to_vec();
        let opts = codec_options();
        let result = with_primitive!(self.dtype, P => {
            self.array
                .retrieve_array_subset_opt::<ArrayD<P>>(&subset, opts)
                .map(cast_array::<P, T>)
        });
        match result {
            Ok(Some(a)) => Ok(a),
            Ok(None) => Err(self.not_primitive::<T>()),
            Err(e) => Err(self.array_error(
                format!("reading {} of array {:?}", fmt_region(region), self.path),
                Some(write_index),
                e,
            )),
        }
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
        // The write-grid chunks the region touches (one stored object each).
        let ws = &self.write_shape;
        let lo: Vec<u64> = region.iter().zip(ws).map(|(r, &c)| r.start / c).collect();
        let hi: Vec<u64> = region
            .iter()
            .zip(ws)
            .map(|(r, &c)| (r.end - 1) / c + 1)
            .collect();
        let chunks = grid_indices(&lo, &hi);
        if let [only] = chunks.as_slice() {
            return self.retrieve(region, only);
        }
        let mut out = ArrayD::from_elem(IxDyn(&out_shape), T::default());
        for index in chunks {
            let part: Vec<Range<u64>> = region
                .iter()
                .zip(&index)
                .zip(ws)
                .map(|((r, &i), &c)| r.start.max(i * c)..r.end.min((i + 1) * c))
                .collect();
            let data = self.retrieve::<T>(&part, &index)?;
            let within: Vec<Range<usize>> = part
                .iter()
                .zip(region)
                .map(|(p, r)| (p.start - r.start) as usize..(p.end - r.start) as usize)
                .collect();
            out.slice_mut(slice_info(&within).as_slice()).assign(&data);
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
        let full = if clipped == self.write_shape {
            data.as_standard_layout().into_owned()
        } else {
            let mut full = self.fill_array::<T>(&self.write_shape)?;
            let within: Vec<Range<usize>> = clipped.iter().map(|&c| 0..c as usize).collect();
            full.slice_mut(slice_info(&within).as_slice()).assign(&data);
            full
        };
        let opts = codec_options();
        let result = with_primitive!(self.dtype, P => {
            cast_array::<T, P>(full).map(|full| self.array.store_chunk_opt(index, full, opts))
        });
        match result {
            None => Err(self.not_primitive::<T>()),
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(self.array_error(
                format!("writing chunk {index:?} of array {:?}", self.path),
                None,
                e,
            )),
        }
    }

    /// An array of `shape` holding the fill value.
    fn fill_array<T: Element>(&self, shape: &[u64]) -> StoreResult<ArrayD<T>> {
        let n: u64 = shape.iter().product();
        let err = |e: String| StoreError::Unsupported {
            store: self.store.description().into(),
            path: self.path.clone(),
            what: format!("cannot build its fill value: {e}"),
        };
        let bytes = ArrayBytes::new_fill_value(self.array.data_type(), n, self.array.fill_value())
            .map_err(|e| err(e.to_string()))?;
        let result = with_primitive!(self.dtype, P => {
            <ArrayD<P> as FromArrayBytes>::from_array_bytes(bytes, shape, self.array.data_type())
                .map(cast_array::<P, T>)
        });
        match result {
            Ok(Some(a)) => Ok(a),
            Ok(None) => Err(self.not_primitive::<T>()),
            Err(e) => Err(err(e.to_string())),
        }
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
        if expected.contains(&0) {
            return Ok(());
        }
        let lo: Vec<u64> = region.iter().zip(ws).map(|(r, &c)| r.start / c).collect();
        let hi: Vec<u64> = region
            .iter()
            .zip(ws)
            .map(|(r, &c)| r.end.div_ceil(c))
            .collect();
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
