//! [`open_zarr`]: a Zarr group written by xarray (v2 or v3) as a lazy [`Dataset`].
//!
//! What it reads, in order (xarray's `open_zarr` with `decode_cf=True`):
//! 1. The group: an array there is [`DatasetError::NotAGroup`]; its attributes become the
//!    dataset's (without `_nc*` ones; a `coordinates` attribute names coordinates).
//! 2. Its arrays (sub-groups are not read): from consolidated metadata when there is some, then
//!    each array's own metadata. An array chunkflow cannot read (strings, complex numbers, an
//!    unknown codec) is skipped, with a line in [`Dataset::warnings`]. Consolidated metadata that lists an array which does not open
//!    is stale: with [`Consolidated::Auto`] the store is listed instead (and the dataset's
//!    warnings say so). Only the *list* of arrays comes from consolidated metadata; each array's
//!    shape, dtype and attributes come from its own metadata document, so metadata changed
//!    since consolidation is read as it is now. Up to 32 arrays are opened at once, so on a
//!    high-latency store opening costs a few round trips, not one per array.
//! 3. Dimension names: v3 `dimension_names`, v2 `_ARRAY_DIMENSIONS` (hidden from attributes).
//!    An array without them is [`DatasetError::NoDimensionNames`]: the group was not written
//!    by xarray, and `from_zarr` reads it as plain arrays (a choice: xarray also refuses such
//!    groups; generating `dim_0` names would silently mis-align arrays of equal lengths).
//!    Every array must agree on each dimension's length.
//! 4. Data: one lazy read per chunk, chunked like the store or per [`OpenOptions::chunks`];
//!    index coordinates (1-D, named like their dimension) are one chunk.
//! 5. The CF `coordinates` attribute of each variable marks coordinates (and moves to the
//!    encoding); then CF decoding (`decode.rs`): fill values, packing, times.
//! 6. The index coordinates' values, into memory, in one graph (xarray reads them at open to
//!    build its pandas indexes, so `sel` reads nothing afterwards), unless
//!    [`OpenOptions::create_default_indexes`] is off.
//!
//! Must not: write to the store, or read chunk data of anything but index coordinates.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::any_array::AnyArray;
use super::dataset::Dataset;
use super::decode::{DecodeOptions, UndecodableTimes, decode_variable};
use super::error::{DatasetError, DatasetResult};
use super::load::LoadOptions;
use super::variable::Variable;
use crate::array::{ChunkSpec, Chunks, DType, Dim, Element, from_zarr, from_zarr_with};
use crate::store::{
    NodeKind, Store, StoreError, ZarrArray, group_attributes, list_children, node_kind,
};

/// Whether to use consolidated metadata to list a group's arrays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Consolidated {
    /// Use it when present and fresh; otherwise list the store (noted in
    /// [`Dataset::warnings`]). xarray's `consolidated=None`.
    #[default]
    Auto,
    /// Require it: missing or stale consolidated metadata is an error. xarray's
    /// `consolidated=True`.
    Required,
    /// Ignore it and list the store. xarray's `consolidated=False`.
    Ignored,
}

/// How [`open_zarr`] reads a group.
///
/// ```
/// use chunkflow::array::Dim;
/// use chunkflow::dataset::{Consolidated, OpenOptions};
/// let options = OpenOptions::default()
///     .with_chunks("time", Dim::Size(24))
///     .with_consolidated(Consolidated::Required);
/// assert!(options.decode);
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// Chunk sizes per dimension name (xarray's `chunks={"time": 24}`; [`Dim::Full`] is
    /// `-1`, [`Dim::Auto`] is `"auto"`, sized from the stored chunks). Dimensions not named
    /// keep the stored chunks. Empty (the default): every array is chunked like the store.
    /// Index coordinates are always one chunk.
    pub chunks: BTreeMap<String, Dim>,
    /// Decode values the way CF says (xarray's `mask_and_scale` and `decode_times`): fill
    /// values to NaN, packed integers to floats, times to datetimes. Default `true`. With
    /// `false` (xarray's `mask_and_scale=False, decode_times=False`) values keep their stored
    /// type and the CF attributes stay attributes, `_FillValue` as a number (base64 decoded;
    /// for v2 taken from the array's `fill_value`). The `coordinates` attribute marks
    /// coordinates either way.
    pub decode: bool,
    /// Whether to use consolidated metadata (default [`Consolidated::Auto`]).
    pub consolidated: Consolidated,
    /// What to do with times that need cftime (default: keep the numbers, with a warning).
    pub undecodable_times: UndecodableTimes,
    /// Read every index coordinate (a 1-D coordinate named after its dimension) into memory
    /// while opening, as xarray does to build its indexes (its `create_default_indexes`,
    /// default `true`): `sel` then reads nothing. All of them are read in one graph, 32 reads
    /// in flight. With `false` they stay lazy and every `sel` reads its index coordinate.
    pub create_default_indexes: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            chunks: BTreeMap::new(),
            decode: true,
            consolidated: Consolidated::Auto,
            undecodable_times: UndecodableTimes::KeepRaw,
            create_default_indexes: true,
        }
    }
}

impl OpenOptions {
    /// Chunks dimension `dim` as `chunks` says.
    pub fn with_chunks(mut self, dim: impl Into<String>, chunks: impl Into<Dim>) -> Self {
        self.chunks.insert(dim.into(), chunks.into());
        self
    }

    /// Reads the index coordinates at open, or leaves them lazy (see
    /// [`OpenOptions::create_default_indexes`]).
    pub fn with_default_indexes(mut self, create: bool) -> Self {
        self.create_default_indexes = create;
        self
    }

    /// Turns CF decoding on or off.
    pub fn with_decode(mut self, decode: bool) -> Self {
        self.decode = decode;
        self
    }

    /// Sets the use of consolidated metadata.
    pub fn with_consolidated(mut self, consolidated: Consolidated) -> Self {
        self.consolidated = consolidated;
        self
    }

    /// Sets what happens to times that cannot be decoded.
    pub fn with_undecodable_times(mut self, policy: UndecodableTimes) -> Self {
        self.undecodable_times = policy;
        self
    }
}

/// Opens the Zarr group at `path` in `store` as a lazy dataset, following xarray's
/// conventions (see the module docs). Reads metadata only.
///
/// ```
/// use chunkflow::array;
/// use chunkflow::array::DType;
/// use chunkflow::dataset::{OpenOptions, open_zarr};
/// use chunkflow::store::{ArraySpec, Store, ZarrArray, ZarrFormat, create_group};
///
/// let store = Store::memory();
/// create_group(&store, "", Default::default(), ZarrFormat::V3)?;
/// let spec = ArraySpec::new(vec![4, 3], vec![2, 3], DType::F32).with_dimension_names(["time", "x"]);
/// ZarrArray::create(&store, "t", &spec, false)?;
/// let ds = open_zarr(&store, "", &OpenOptions::default())?;
/// assert_eq!(ds.dims().to_string(), "(time: 4, x: 3)");
/// assert_eq!(ds.variable("t")?.chunks().axis(0), &[2, 2]);
/// # Ok::<(), chunkflow::dataset::DatasetError>(())
/// ```
///
/// # Errors
/// [`DatasetError::NotAGroup`], [`DatasetError::NoDimensionNames`],
/// [`DatasetError::DimLengthConflict`], [`DatasetError::DimNotFound`] (a dimension in the
/// chunks option that no array has), [`DatasetError::ConsolidatedMetadataMissing`] /
/// [`DatasetError::StaleConsolidatedMetadata`] under [`Consolidated::Required`],
/// [`DatasetError::InvalidEncoding`] for malformed CF attributes, and store errors
/// ([`StoreError::NotFound`] when nothing is at `path`).
pub fn open_zarr(store: &Store, path: &str, options: &OpenOptions) -> DatasetResult<Dataset> {
    let path = path.trim_matches('/');
    if let Some((NodeKind::Array, _)) = node_kind(store, path)? {
        return Err(DatasetError::NotAGroup {
            store: store.description().to_string(),
            path: path.to_string(),
        });
    }
    let mut group_attrs = visible(group_attributes(store, path)?);
    let mut ds = Dataset::new();
    let arrays = group_arrays(store, path, options.consolidated, &mut ds.warnings)?;

    // Dimension names for every array, before anything else (a group without them is not a
    // dataset at all).
    let mut named = Vec::with_capacity(arrays.len());
    let mut unnamed = Vec::new();
    for (name, zarr) in arrays {
        let dims = match zarr.dimension_names() {
            _ if zarr.ndim() == 0 => Some(Vec::new()),
            Some(d) if d.iter().all(|n| !n.is_empty()) => Some(d.to_vec()),
            _ => None,
        };
        match dims {
            Some(dims) => named.push((name, zarr, dims)),
            None => unnamed.push(name),
        }
    }
    if !unnamed.is_empty() {
        return Err(DatasetError::NoDimensionNames {
            store: store.description().to_string(),
            path: path.to_string(),
            arrays: unnamed,
        });
    }
    let all_dims: BTreeSet<&str> = named
        .iter()
        .flat_map(|(_, _, dims)| dims.iter().map(String::as_str))
        .collect();
    if let Some(dim) = options
        .chunks
        .keys()
        .find(|d| !all_dims.contains(d.as_str()))
    {
        let mut available = Vec::new();
        for (_, zarr, dims) in &named {
            for (d, &n) in dims.iter().zip(zarr.shape()) {
                if !available.iter().any(|(a, _)| a == d) {
                    available.push((d.clone(), n as usize));
                }
            }
        }
        return Err(DatasetError::DimNotFound {
            dim: dim.clone(),
            context: "the chunks option (no array of the group has it)".into(),
            available,
        });
    }

    let decode = DecodeOptions {
        mask_and_scale: options.decode,
        times: options.decode,
        undecodable_times: options.undecodable_times,
    };
    let mut coord_names: Vec<(String, String)> = Vec::new(); // (coordinate, named by)
    for (name, zarr, dims) in named {
        let data = read(&zarr, &name, &dims, &options.chunks)?;
        for warning in split_chunks(&zarr, &dims, data.chunks()) {
            if !ds.warnings.contains(&warning) {
                ds.warnings.push(warning);
            }
        }
        let mut attrs = visible(zarr.attributes().clone());
        let coordinates = match attrs.get("coordinates") {
            Some(Value::String(s)) => {
                let s = s.clone();
                attrs.remove("coordinates");
                coord_names.extend(s.split_whitespace().map(|c| (c.to_string(), name.clone())));
                Some(s)
            }
            _ => None,
        };
        let decoded =
            decode_variable(&name, data, attrs, zarr.format(), zarr.fill_value(), decode)?;
        ds.warnings.extend(decoded.warning);
        let (data, attrs, mut encoding) = (decoded.data, decoded.attrs, decoded.encoding);
        encoding.coordinates = coordinates;
        encoding.chunks = Some(zarr.chunk_shape().to_vec());
        encoding.shards = zarr.shard_shape().map(<[u64]>::to_vec);
        encoding.compression = zarr.compression();
        encoding.format = Some(zarr.format());
        encoding.source = Some(zarr.path().to_string());
        let var = Variable::new(dims, data)
            .map_err(|e| rename_invalid(e, &name))?
            .with_attrs(attrs)
            .with_encoding(encoding);
        ds.insert(name, var)?;
    }

    if let Some(Value::String(global)) = group_attrs.remove("coordinates") {
        coord_names.extend(
            global
                .split_whitespace()
                .map(|c| (c.to_string(), "the group".to_string())),
        );
    }
    for (coord, by) in coord_names {
        if ds.contains(&coord) {
            ds.coord_names.insert(coord);
        } else {
            ds.warnings.push(format!(
                "the coordinates attribute of {by} names {coord:?}, which is not an array of \
                 the group; ignored"
            ));
        }
    }
    // xarray's order: data variables, then coordinates, each in the group's order.
    let (data_vars, coords): (Vec<String>, Vec<String>) = std::mem::take(&mut ds.names)
        .into_iter()
        .partition(|n| !ds.coord_names.contains(n));
    ds.names = data_vars.into_iter().chain(coords).collect();
    ds.attrs = group_attrs;
    if options.create_default_indexes {
        ds = ds.with_indexes_loaded(&LoadOptions::default())?;
    }
    Ok(ds)
}

/// The group's arrays, opened, sorted by name.
fn group_arrays(
    store: &Store,
    path: &str,
    consolidated: Consolidated,
    warnings: &mut Vec<String>,
) -> DatasetResult<Vec<(String, ZarrArray)>> {
    if consolidated == Consolidated::Ignored {
        return listed_arrays(store, path, warnings);
    }
    let children = list_children(store, path)?;
    if !children.consolidated {
        if consolidated == Consolidated::Required {
            return Err(DatasetError::ConsolidatedMetadataMissing {
                store: store.description().to_string(),
                path: path.to_string(),
            });
        }
        warnings.push(format!(
            "the group {path:?} has no consolidated metadata; listed the store instead (one \
             request per array: consolidate the metadata for faster opens)"
        ));
        return open_all(store, path, children.arrays, warnings);
    }
    let mut arrays = Vec::with_capacity(children.arrays.len());
    for (name, opened) in open_concurrently(store, path, children.arrays) {
        match opened {
            Ok(Opened::Array(zarr)) => arrays.push((name, *zarr)),
            Ok(Opened::Skipped(warning)) => warnings.push(warning),
            Err(e @ StoreError::NotFound { .. }) => {
                if consolidated == Consolidated::Required {
                    return Err(DatasetError::StaleConsolidatedMetadata {
                        store: store.description().to_string(),
                        path: path.to_string(),
                        array: name,
                        reason: e.to_string(),
                    });
                }
                warnings.push(format!(
                    "the consolidated metadata of group {path:?} is stale (it lists {name:?}, \
                     which is not in the store); listed the store instead"
                ));
                warnings.retain(|w| !w.starts_with(SKIPPED));
                return listed_arrays(store, path, warnings);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(arrays)
}

/// The group's arrays found by listing the store's keys (consolidated metadata not used).
fn listed_arrays(
    store: &Store,
    path: &str,
    warnings: &mut Vec<String>,
) -> DatasetResult<Vec<(String, ZarrArray)>> {
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let mut names = BTreeSet::new();
    for key in store.list(path)? {
        let Some(rest) = key.strip_prefix(&prefix) else {
            continue;
        };
        if let Some((name, doc)) = rest.split_once('/')
            && (doc == "zarr.json" || doc == ".zarray")
        {
            names.insert(name.to_string());
        }
    }
    let mut arrays = Vec::new();
    for name in names {
        if let Some((NodeKind::Array, _)) = node_kind(store, &child(path, &name))? {
            arrays.push(name);
        }
    }
    open_all(store, path, arrays, warnings)
}

fn open_all(
    store: &Store,
    path: &str,
    names: Vec<String>,
    warnings: &mut Vec<String>,
) -> DatasetResult<Vec<(String, ZarrArray)>> {
    let mut arrays = Vec::with_capacity(names.len());
    for (name, opened) in open_concurrently(store, path, names) {
        match opened? {
            Opened::Array(zarr) => arrays.push((name, *zarr)),
            Opened::Skipped(warning) => warnings.push(warning),
        }
    }
    Ok(arrays)
}

/// How warnings about skipped arrays start.
const SKIPPED: &str = "skipped array";

/// How many arrays' metadata documents are read at once while opening. Each open is one or two
/// small reads; on an object store every read costs a round trip, so a group of 50 arrays
/// opened one after another would cost 100 round trips in a row.
const OPEN_CONCURRENCY: usize = 32;

/// One array of the group, opened, or why it was skipped.
enum Opened {
    Array(Box<ZarrArray>),
    /// An array chunkflow cannot read (a string or complex data type, an unsupported codec):
    /// skipped with this warning rather than failing the whole dataset, since xarray groups
    /// often hold such variables next to numeric ones.
    Skipped(String),
}

/// Opens the named arrays of the group with up to [`OPEN_CONCURRENCY`] metadata reads in
/// flight, and returns them in the order of `names`.
fn open_concurrently(
    store: &Store,
    path: &str,
    names: Vec<String>,
) -> Vec<(String, Result<Opened, StoreError>)> {
    let open = |name: &str| match ZarrArray::open(store, &child(path, name)) {
        Ok(zarr) => Ok(Opened::Array(Box::new(zarr))),
        Err(e @ (StoreError::UnsupportedDType { .. } | StoreError::Unsupported { .. })) => {
            Ok(Opened::Skipped(format!("{SKIPPED} {name:?}: {e}")))
        }
        Err(e) => Err(e),
    };
    if names.len() <= 1 {
        return names
            .into_iter()
            .map(|name| {
                let opened = open(&name);
                (name, opened)
            })
            .collect();
    }
    let mut results: Vec<Option<Result<Opened, StoreError>>> = Vec::new();
    results.resize_with(names.len(), || None);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots = parking_lot::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..names.len().min(OPEN_CONCURRENCY) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(name) = names.get(i) else { break };
                    let opened = open(name);
                    slots.lock()[i] = Some(opened);
                }
            });
        }
    });
    names
        .into_iter()
        .zip(results)
        .map(|(name, opened)| (name, opened.expect("every name is opened by one thread")))
        .collect()
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}/{name}")
    }
}

/// Attributes a user sees: without netCDF/NCZarr internals (`_nc*`, any case), as xarray.
fn visible(mut attrs: Map<String, Value>) -> Map<String, Value> {
    attrs.retain(|k, _| !k.to_ascii_lowercase().starts_with("_nc"));
    attrs
}

fn rename_invalid(e: DatasetError, name: &str) -> DatasetError {
    match e {
        DatasetError::InvalidDims { reason, .. } => DatasetError::InvalidDims {
            variable: name.to_string(),
            reason,
        },
        other => other,
    }
}

/// xarray's warning when the chunks asked for split stored chunks (each such read decodes a
/// stored chunk more than once).
fn split_chunks(zarr: &ZarrArray, dims: &[String], chunks: &Chunks) -> Vec<String> {
    let mut out = Vec::new();
    for (axis, (dim, &stored)) in dims.iter().zip(zarr.chunk_shape()).enumerate() {
        let stored = usize::try_from(stored).unwrap_or(usize::MAX);
        let shape = chunks.shape()[axis];
        if let Some(&at) = chunks
            .boundaries(axis)
            .iter()
            .find(|&&b| b % stored != 0 && b != shape)
        {
            out.push(format!(
                "the chunks asked for split the stored chunks along dimension {dim:?} starting \
                 at index {at}, so some stored chunks are read more than once; consider \
                 rechunking after loading"
            ));
        }
    }
    out
}

/// The array's data, lazily, chunked as asked.
fn read(
    zarr: &ZarrArray,
    name: &str,
    dims: &[String],
    chunks: &BTreeMap<String, Dim>,
) -> DatasetResult<AnyArray> {
    let is_index = dims.len() == 1 && dims[0] == name;
    let spec = if is_index {
        Some(ChunkSpec::full())
    } else if dims.iter().any(|d| chunks.contains_key(d)) {
        Some(ChunkSpec::per_axis(
            dims.iter()
                .zip(zarr.chunk_shape())
                .map(|(d, &c)| {
                    chunks
                        .get(d)
                        .cloned()
                        .unwrap_or(Dim::Size(usize::try_from(c).unwrap_or(usize::MAX)))
                })
                .collect(),
        ))
    } else {
        None
    };
    fn typed<T: Element>(zarr: &ZarrArray, spec: Option<ChunkSpec>) -> crate::Result<AnyArray> {
        let array = match spec {
            None => from_zarr::<T>(zarr.store(), zarr.path())?,
            Some(spec) => from_zarr_with::<T>(zarr.store(), zarr.path(), spec)?,
        };
        Ok(AnyArray::from_array(array))
    }
    let data = match zarr.dtype() {
        DType::Bool => typed::<bool>(zarr, spec),
        DType::I8 => typed::<i8>(zarr, spec),
        DType::I16 => typed::<i16>(zarr, spec),
        DType::I32 => typed::<i32>(zarr, spec),
        DType::I64 => typed::<i64>(zarr, spec),
        DType::U8 => typed::<u8>(zarr, spec),
        DType::U16 => typed::<u16>(zarr, spec),
        DType::U32 => typed::<u32>(zarr, spec),
        DType::U64 => typed::<u64>(zarr, spec),
        DType::F32 => typed::<f32>(zarr, spec),
        DType::F64 => typed::<f64>(zarr, spec),
    }?;
    Ok(data)
}
