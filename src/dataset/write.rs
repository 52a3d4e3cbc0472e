//! Writing a [`Dataset`] (or a [`DataArray`]) to a Zarr group with xarray's conventions, so
//! that `xarray.open_zarr` opens it without warnings and identical to the source: xarray's
//! `Dataset.to_zarr`.
//!
//! What is written (the inverse of [`open_zarr`](super::open_zarr)):
//! - the group, with the dataset's attributes (and a group-level `coordinates` attribute for
//!   coordinates that fit no data variable, as xarray does); missing parent groups are created;
//! - one array per variable, named like it, with its dimension names (v3 `dimension_names`,
//!   v2 `_ARRAY_DIMENSIONS`), its attributes, the CF `coordinates` attribute on data variables
//!   (the auxiliary coordinates whose dimensions they have, sorted, or the one recorded when
//!   the variable was opened), and its values CF-encoded as `encode.rs` describes (fill values,
//!   packing, times);
//! - consolidated metadata (v2 `.zmetadata`, v3 inline `consolidated_metadata`), unless
//!   [`WriteOptions::consolidated`] is off.
//!
//! Encoding: each variable is written with its own [`Encoding`] (what opening recorded, so a
//! store read and written back keeps its dtypes, fill values, packing, time units, chunks and
//! compression, as in xarray), overridden field by field by [`WriteOptions::encoding`].
//!
//! Chunks: the stored chunks are the encoding's `chunks`, else the variable's chunk size, which
//! must then be regular (all equal but a smaller last one), as xarray requires. Every
//! variable chunk must lie inside one stored chunk (or shard) or cover whole ones: one that
//! straddles a stored boundary would need two writers for one chunk and is an error saying
//! how to rechunk ([`DatasetError::ChunksNotAligned`]). Chunks smaller than the stored ones
//! are merged in the graph (xarray rejects those; here one task still writes each stored
//! chunk, so it is safe).
//!
//! Format: [`ZarrFormat::V3`] by default, as xarray 2026.9 with zarr-python 3 writes
//! (`zarr_format=None` follows zarr-python's `default_zarr_format`, 3).
//!
//! Metadata is written when [`Dataset::to_zarr`] is called, before any chunk (like xarray's
//! `compute=False`); with [`WriteOptions::compute`] off the chunk writes come back as one
//! [`Delayed`] to compute later, alone or with other collections.
//!
//! Must not: call zarrs (the store room's `ZarrArray`, `create_group` and
//! `consolidate_metadata` do the I/O), or write a stored chunk from two tasks.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::any_array::{AnyArray, with_any};
use super::data_array::DataArray;
use super::dataset::Dataset;
use super::encode::encode_variable;
use super::error::{DatasetError, DatasetResult};
use super::variable::{Encoding, Variable};
use crate::array::{Chunks, ToZarrOptions};
use crate::collection::ComputeOptions;
use crate::delayed::Delayed;
use crate::graph::token::{TokenHasher, key_name};
use crate::graph::{Key, Task, value};
use crate::store::{NodeKind, Store, ZarrFormat, consolidate_metadata, create_group, node_kind};

/// What to do when something already exists where the dataset goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WriteMode {
    /// Fail if a group or array is there (xarray's `mode="w-"`, its default).
    #[default]
    Create,
    /// Delete whatever is there first, everything under the path included (xarray's
    /// `mode="w"`). Do not overwrite a store the dataset reads from.
    Overwrite,
}

/// How [`Dataset::to_zarr`] writes.
///
/// ```
/// use chunkflow::array::DType;
/// use chunkflow::dataset::{Encoding, WriteMode, WriteOptions};
/// use chunkflow::store::{FillValue, ZarrFormat};
///
/// let options = WriteOptions::default()
///     .with_format(ZarrFormat::V2)
///     .with_mode(WriteMode::Overwrite)
///     .with_encoding("t2m", Encoding {
///         dtype: Some(DType::I16),
///         scale_factor: Some(0.01),
///         add_offset: Some(280.0),
///         fill_value: Some(FillValue::Int(-32768)),
///         ..Encoding::default()
///     });
/// assert!(options.consolidated && options.compute);
/// ```
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// The Zarr format (default v3, as xarray with zarr-python 3).
    pub format: ZarrFormat,
    /// Create (fail if something exists, the default) or overwrite.
    pub mode: WriteMode,
    /// Write consolidated metadata (default `true`, as xarray).
    pub consolidated: bool,
    /// Per-variable encoding overrides (xarray's `encoding={"t2m": {...}}`): each field that is
    /// set replaces the variable's own. Fields used: `dtype`, `fill_value` (the CF
    /// `_FillValue`; [`FillValue::Null`](crate::store::FillValue::Null) for none),
    /// `missing_value`, `zarr_fill_value` (v3 array fill value), `scale_factor`,
    /// `add_offset`, `units`, `calendar`, `coordinates`, `chunks`, `shards`, `compression`.
    pub encoding: BTreeMap<String, Encoding>,
    /// Compute and write the chunks now (default), or return them as a [`Delayed`] (xarray's
    /// `compute=False`; the metadata is written either way).
    pub compute: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            format: ZarrFormat::V3,
            mode: WriteMode::Create,
            consolidated: true,
            encoding: BTreeMap::new(),
            compute: true,
        }
    }
}

impl WriteOptions {
    /// Sets the format.
    pub fn with_format(mut self, format: ZarrFormat) -> Self {
        self.format = format;
        self
    }

    /// Sets the mode.
    pub fn with_mode(mut self, mode: WriteMode) -> Self {
        self.mode = mode;
        self
    }

    /// Turns consolidated metadata on or off.
    pub fn with_consolidated(mut self, consolidated: bool) -> Self {
        self.consolidated = consolidated;
        self
    }

    /// Overrides the encoding of variable `name` (the fields set in `encoding`).
    pub fn with_encoding(mut self, name: impl Into<String>, encoding: Encoding) -> Self {
        self.encoding.insert(name.into(), encoding);
        self
    }

    /// Computes now (`true`) or returns the chunk writes as a [`Delayed`] (`false`).
    pub fn with_compute(mut self, compute: bool) -> Self {
        self.compute = compute;
        self
    }
}

impl Dataset {
    /// Writes the dataset to the Zarr group at `path` in `store` with xarray's conventions
    /// (see the module docs), on the default executor. Returns `None` when the chunks were
    /// written, or the [`Delayed`] that writes them when [`WriteOptions::compute`] is off.
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{Dataset, OpenOptions, Variable, WriteOptions, open_zarr};
    /// use chunkflow::store::Store;
    ///
    /// let ds = Dataset::new()
    ///     .with_variable("x", Variable::new(["x"], array::arange(0.0f64, 4.0, 1.0, 4)?)?)?
    ///     .with_variable("t", Variable::new(["time", "x"], array::ones::<f32>(&[6, 4], [2, 4])?)?)?
    ///     .with_attr("title", "demo");
    /// let store = Store::memory();
    /// ds.to_zarr(&store, "", &WriteOptions::default())?;
    /// let back = open_zarr(&store, "", &OpenOptions::default())?;
    /// assert_eq!(back.dims().to_string(), "(time: 6, x: 4)");
    /// assert_eq!(back.variable("t")?.chunks().axis(0), &[2, 2, 2]);
    /// assert_eq!(back.attrs()["title"], "demo");
    /// assert!(back.warnings().is_empty()); // consolidated, nothing to work around
    /// // Create mode refuses to replace it.
    /// assert!(ds.to_zarr(&store, "", &WriteOptions::default()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Before anything is written: [`DatasetError::GroupExists`] (create mode),
    /// [`DatasetError::VariableNotFound`] (an encoding override for a variable the dataset
    /// lacks), [`DatasetError::ChunksNotAligned`], [`DatasetError::Unencodable`] and store
    /// errors. Then the first failing task (a value that does not fit the stored type names
    /// the variable).
    pub fn to_zarr(
        &self,
        store: &Store,
        path: &str,
        options: &WriteOptions,
    ) -> DatasetResult<Option<Delayed<()>>> {
        self.to_zarr_with(store, path, options, &ComputeOptions::default())
    }

    /// [`Dataset::to_zarr`] on the executor and callbacks of `compute`.
    pub fn to_zarr_with(
        &self,
        store: &Store,
        path: &str,
        options: &WriteOptions,
        compute: &ComputeOptions,
    ) -> DatasetResult<Option<Delayed<()>>> {
        let plan = plan_store(self, options)?;
        let writes = create_store(&plan, store, path, options)?;
        let all = join_writes(writes.into_iter().map(|(_, w)| w).collect());
        if options.compute {
            all.compute_with(compute)?;
            Ok(None)
        } else {
            Ok(Some(all))
        }
    }

    /// A copy without any variable's encoding (xarray's `drop_encoding`): written afterwards,
    /// every variable gets the defaults (its own chunks and dtype, NaN fill values for floats,
    /// inferred time units).
    pub fn drop_encoding(&self) -> Dataset {
        let mut ds = self.clone();
        for v in ds.variables.values_mut() {
            *v.encoding_mut() = Encoding::default();
        }
        ds
    }
}

impl DataArray {
    /// Writes the data array as a one-variable dataset (with its coordinates); see
    /// [`Dataset::to_zarr`].
    ///
    /// # Errors
    /// As [`Dataset::to_zarr`]; an unnamed array is an error (Zarr reserves xarray's
    /// `__xarray_dataarray_variable__`): name it with [`DataArray::with_name`].
    pub fn to_zarr(
        &self,
        store: &Store,
        path: &str,
        options: &WriteOptions,
    ) -> DatasetResult<Option<Delayed<()>>> {
        self.to_zarr_with(store, path, options, &ComputeOptions::default())
    }

    /// [`DataArray::to_zarr`] on the executor and callbacks of `compute`.
    pub fn to_zarr_with(
        &self,
        store: &Store,
        path: &str,
        options: &WriteOptions,
        compute: &ComputeOptions,
    ) -> DatasetResult<Option<Delayed<()>>> {
        if self.name().is_none() {
            return Err(DatasetError::Unencodable {
                variable: "(unnamed data array)".into(),
                reason: "Zarr reserves names starting with \"__\", so an unnamed data array \
                         cannot be written as xarray's __xarray_dataarray_variable__; name it \
                         with with_name"
                    .into(),
            });
        }
        self.to_dataset()?
            .to_zarr_with(store, path, options, compute)
    }
}

// ---------------------------------------------------------------------------------------------
// The plan: what every array will be (shared with the partitioned writes)
// ---------------------------------------------------------------------------------------------

/// One variable as it will be stored.
#[derive(Clone, Debug)]
pub(crate) struct PlannedVariable {
    /// The variable's (and the array's) name.
    pub name: String,
    /// The encoded values, in the stored element type.
    pub data: AnyArray,
    /// How to create the array (format, chunks, shards, compression, fill value, dimension
    /// names, attributes).
    pub create: ToZarrOptions,
    /// Whether it is an index coordinate (written whole by `initialize_store`).
    pub index: bool,
}

/// A whole dataset as it will be stored.
#[derive(Clone, Debug)]
pub(crate) struct StorePlan {
    /// The group's attributes.
    pub group_attrs: Map<String, Value>,
    /// Every variable, in the dataset's order.
    pub variables: Vec<PlannedVariable>,
    /// The format.
    pub format: ZarrFormat,
}

/// Plans the store for `ds` (no I/O, except computing index times whose units are inferred).
pub(crate) fn plan_store(ds: &Dataset, options: &WriteOptions) -> DatasetResult<StorePlan> {
    for name in options.encoding.keys() {
        ds.variable(name)?;
    }
    let format = options.format;
    let (var_coords, global) = coordinates_attrs(ds)?;
    let mut group_attrs = ds.attrs().clone();
    if let Some(global) = global
        && !group_attrs.contains_key("coordinates")
    {
        group_attrs.insert("coordinates".into(), Value::from(global));
    }
    let mut variables = Vec::new();
    for (name, var) in ds.variables() {
        let encoding = merged_encoding(var.encoding(), options.encoding.get(name));
        let index = ds.is_index(name);
        let encoded = encode_variable(
            name,
            var,
            &encoding,
            format,
            var_coords.get(name).map(String::as_str),
            index,
        )?;
        let (chunks, shards) = stored_chunks(name, var, &encoding, format)?;
        let mut create = ToZarrOptions::default()
            .with_format(format)
            .with_chunks(chunks)
            .with_dimension_names(var.dims().iter().cloned())
            .with_attributes(encoded.attrs)
            .with_fill_value(encoded.fill_value);
        create.shards = shards;
        create.compression = encoding.compression;
        variables.push(PlannedVariable {
            name: name.to_string(),
            data: encoded.data,
            create,
            index,
        });
    }
    Ok(StorePlan {
        group_attrs,
        variables,
        format,
    })
}

/// The variable's encoding with the fields of `over` that are set.
fn merged_encoding(own: &Encoding, over: Option<&Encoding>) -> Encoding {
    let Some(o) = over else {
        return own.clone();
    };
    Encoding {
        dtype: o.dtype.or(own.dtype),
        fill_value: o.fill_value.or(own.fill_value),
        missing_value: o.missing_value.or(own.missing_value),
        zarr_fill_value: o.zarr_fill_value.or(own.zarr_fill_value),
        scale_factor: o.scale_factor.or(own.scale_factor),
        add_offset: o.add_offset.or(own.add_offset),
        units: o.units.clone().or_else(|| own.units.clone()),
        calendar: o.calendar.clone().or_else(|| own.calendar.clone()),
        coordinates: o.coordinates.clone().or_else(|| own.coordinates.clone()),
        chunks: o.chunks.clone().or_else(|| own.chunks.clone()),
        shards: o.shards.clone().or_else(|| own.shards.clone()),
        compression: o.compression.or(own.compression),
        // An override of any zarr_fill_value applies to the target format as given.
        format: if o.zarr_fill_value.is_some() {
            Some(ZarrFormat::V3)
        } else {
            own.format
        },
        source: own.source.clone(),
        not_decoded: own.not_decoded.clone(),
    }
}

/// xarray's `_encode_coordinates`: the `coordinates` attribute of each data variable (the
/// auxiliary coordinates whose dimensions are among its own, sorted; or the one in its encoding
/// or attributes), and the group-level one for the auxiliary coordinates no variable names.
fn coordinates_attrs(ds: &Dataset) -> DatasetResult<(BTreeMap<String, String>, Option<String>)> {
    let aux: Vec<(&str, &Variable)> = ds.coords().filter(|(n, _)| !ds.is_index(n)).collect();
    let mut per_var = BTreeMap::new();
    let mut written = BTreeSet::new();
    for (name, var) in ds.variables() {
        if ds.is_coord(name) {
            continue;
        }
        let in_attrs = var.attrs().get("coordinates");
        if in_attrs.is_some() && var.encoding().coordinates.is_some() {
            return Err(DatasetError::Unencodable {
                variable: name.to_string(),
                reason: "\"coordinates\" is both an attribute and in the encoding; keep one".into(),
            });
        }
        let text = match (in_attrs, &var.encoding().coordinates) {
            (Some(Value::String(s)), _) => {
                written.extend(s.split_whitespace().map(str::to_string));
                continue;
            }
            (Some(_), _) => continue,
            (None, Some(s)) => s.clone(),
            (None, None) => {
                let mut fit: Vec<&str> = aux
                    .iter()
                    .filter(|(c, v)| {
                        !c.contains(' ') && v.dims().iter().all(|d| var.dims().contains(d))
                    })
                    .map(|(c, _)| *c)
                    .collect();
                fit.sort_unstable();
                fit.join(" ")
            }
        };
        if !text.is_empty() {
            written.extend(text.split_whitespace().map(str::to_string));
            per_var.insert(name.to_string(), text);
        }
    }
    let mut global: Vec<&str> = aux
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !c.contains(' ') && !written.contains(*c))
        .collect();
    global.sort_unstable();
    Ok((per_var, (!global.is_empty()).then(|| global.join(" "))))
}

/// The stored chunk shape (and shard shape) of variable `name`, after checking that its chunks
/// fit them.
fn stored_chunks(
    name: &str,
    var: &Variable,
    encoding: &Encoding,
    format: ZarrFormat,
) -> DatasetResult<(Vec<u64>, Option<Vec<u64>>)> {
    let chunks = var.chunks();
    let ndim = var.ndim();
    let bad_len = |what: &str, v: &[u64]| DatasetError::Unencodable {
        variable: name.to_string(),
        reason: format!(
            "its encoding's {what} {v:?} have {} sizes for {ndim} dimensions {:?}; fix or \
             clear them (encoding_mut().{what} = None)",
            v.len(),
            var.dims()
        ),
    };
    let stored = match &encoding.chunks {
        Some(c) if c.len() != ndim => return Err(bad_len("chunks", c)),
        Some(c) if c.contains(&0) => return Err(bad_len("chunks", c)),
        Some(c) => c.clone(),
        None => regular_chunks(name, var)?,
    };
    let shards = match &encoding.shards {
        None => None,
        // Recorded from a v3 store: a v2 copy is not sharded.
        Some(_) if format == ZarrFormat::V2 => None,
        Some(s) if s.len() != ndim => return Err(bad_len("shards", s)),
        Some(s) => Some(s.clone()),
    };
    let unit = shards.as_ref().unwrap_or(&stored);
    for (axis, &w) in unit.iter().enumerate() {
        let len = chunks.shape()[axis] as u64;
        let on_grid = |x: u64| x.is_multiple_of(w) || x == len;
        for pair in chunks.boundaries(axis).windows(2) {
            let (a, b) = (pair[0] as u64, pair[1] as u64);
            if b > a && !(on_grid(a) && on_grid(b)) && a / w != (b - 1) / w {
                return Err(DatasetError::ChunksNotAligned {
                    variable: name.to_string(),
                    dim: var.dims()[axis].clone(),
                    chunks: chunks.axis(axis).to_vec(),
                    stored: w,
                    span: (a, b),
                });
            }
        }
    }
    Ok((stored, shards))
}

/// The variable's chunk size when its chunks are regular (all equal but a smaller last one).
fn regular_chunks(name: &str, var: &Variable) -> DatasetResult<Vec<u64>> {
    let chunks: &Chunks = var.chunks();
    let mut out = Vec::with_capacity(var.ndim());
    for axis in 0..var.ndim() {
        let sizes = chunks.axis(axis);
        let first = sizes.first().copied().unwrap_or(0);
        let irregular = sizes.len() > 1
            && (sizes[..sizes.len() - 1].iter().any(|&s| s != first)
                || sizes[sizes.len() - 1] > first);
        if irregular {
            return Err(DatasetError::IrregularChunks {
                variable: name.to_string(),
                dim: var.dims()[axis].clone(),
                chunks: sizes.to_vec(),
            });
        }
        out.push(first.max(1) as u64);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Creating the store
// ---------------------------------------------------------------------------------------------

/// Creates the group and every array of `plan` at `path` (metadata only), consolidates the
/// metadata if asked, and returns each variable's chunk writes, not run yet.
pub(crate) fn create_store(
    plan: &StorePlan,
    store: &Store,
    path: &str,
    options: &WriteOptions,
) -> DatasetResult<Vec<(String, Delayed<()>)>> {
    let path = path.trim_matches('/');
    if let Some((kind, _)) = node_kind(store, path)? {
        match options.mode {
            WriteMode::Create => {
                return Err(DatasetError::GroupExists {
                    store: store.description().to_string(),
                    path: path.to_string(),
                    existing: kind.name().to_string(),
                });
            }
            WriteMode::Overwrite => store.erase_prefix(path)?,
        }
    }
    // Parent groups first (zarr-python creates them), then the dataset's group.
    let parts: Vec<&str> = if path.is_empty() {
        vec![]
    } else {
        path.split('/').collect()
    };
    for depth in 0..parts.len() {
        let parent = parts[..depth].join("/");
        match node_kind(store, &parent)? {
            None => create_group(store, &parent, Map::new(), plan.format)?,
            Some((NodeKind::Group, _)) => {}
            Some((NodeKind::Array, _)) => {
                return Err(DatasetError::GroupExists {
                    store: store.description().to_string(),
                    path: parent,
                    existing: "array (a parent of the dataset's group)".into(),
                });
            }
        }
    }
    create_group(store, path, plan.group_attrs.clone(), plan.format)?;
    let mut writes = Vec::with_capacity(plan.variables.len());
    for var in &plan.variables {
        let array_path = child(path, &var.name);
        let write = with_any!(&var.data, a => a.to_zarr_delayed(store, &array_path, &var.create))?;
        writes.push((var.name.clone(), write));
    }
    if options.consolidated {
        consolidate_metadata(store, path)?;
        if !path.is_empty() {
            // xarray (zarr-python) consolidates at the store's root and reads a nested group
            // through it; the group's own consolidated metadata serves direct opens.
            consolidate_metadata(store, "")?;
        }
    }
    Ok(writes)
}

/// One [`Delayed`] that runs all of `writes` (in one graph).
pub(crate) fn join_writes(writes: Vec<Delayed<()>>) -> Delayed<()> {
    let mut h = TokenHasher::new();
    h.tag("dataset-to-zarr");
    for w in &writes {
        h.write(w.key().to_string().as_bytes());
    }
    let keys: Vec<Key> = writes.iter().map(|w| w.key().clone()).collect();
    let layers = writes.iter().map(|w| w.layer().clone()).collect();
    let task = Task::call(
        Key::new(key_name("dataset-to-zarr", h.finish())),
        keys,
        |_| Ok(value(())),
    );
    Delayed::from_task(task, layers)
}

pub(crate) fn child(path: &str, name: &str) -> String {
    let path = path.trim_matches('/');
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}/{name}")
    }
}
