//! [`Variable`]: named dimensions over an [`AnyArray`], with attributes and the [`Encoding`]
//! that decoding undid (xarray's `Variable`).
//!
//! Invariants: `dims.len() == data.ndim()` and the names are distinct. Attributes are JSON, as
//! in Zarr; they hold what the user sees (the CF encoding attributes that decoding consumed,
//! `_FillValue`, `scale_factor`, `add_offset`, time `units`/`calendar`, `coordinates`, live in
//! [`Encoding`] instead, as in xarray).

use serde_json::{Map, Value};

use super::any_array::{AnyArray, VarDType};
use super::dataset::Sizes;
use super::error::{DatasetError, DatasetResult};
use crate::array::{Chunks, DType};
use crate::store::{Compression, FillValue, ZarrFormat};

/// How a variable was stored, recorded when it was opened so that a writer can encode it the
/// same way (xarray's `Variable.encoding`). Every field is optional: a variable built in memory
/// has an empty encoding.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Encoding {
    /// The on-disk element type (`int16` for a CF-packed variable decoded to `float64`; the
    /// integer type of encoded times).
    pub dtype: Option<DType>,
    /// The CF `_FillValue` that was masked to NaN (NaT for times), in the on-disk type: for
    /// Zarr v2, the array's `fill_value`; for v3, the `_FillValue` attribute.
    pub fill_value: Option<FillValue>,
    /// The CF `missing_value` that was masked (rare; netCDF heritage).
    pub missing_value: Option<FillValue>,
    /// The Zarr array's own `fill_value` (what never-written chunks read as). For v3 this is
    /// separate from the CF `_FillValue`; for v2 it is the same value.
    pub zarr_fill_value: Option<FillValue>,
    /// The CF `scale_factor` of packed data.
    pub scale_factor: Option<f64>,
    /// The CF `add_offset` of packed data.
    pub add_offset: Option<f64>,
    /// Time units of decoded datetimes (`"hours since 2000-01-01 00:00:00"`).
    pub units: Option<String>,
    /// The calendar of decoded datetimes (`"proleptic_gregorian"`), when the store named one.
    pub calendar: Option<String>,
    /// The CF `coordinates` attribute, which opening turned into coordinates.
    pub coordinates: Option<String>,
    /// The stored chunk shape (the inner chunks of a sharded array).
    pub chunks: Option<Vec<u64>>,
    /// The shard shape of a sharded array.
    pub shards: Option<Vec<u64>>,
    /// The compression, when [`Compression`] describes it.
    pub compression: Option<Compression>,
    /// The Zarr format it was read from.
    pub format: Option<ZarrFormat>,
    /// The array's path in the store.
    pub source: Option<String>,
    /// Why values that look encoded were left as stored (times in a calendar that needs
    /// cftime, a mask on booleans): such a variable keeps its encoding attributes in `attrs`.
    pub not_decoded: Option<String>,
}

impl Encoding {
    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        *self == Encoding::default()
    }
}

/// A named-dimension lazy array with attributes (xarray's `Variable`).
///
/// ```
/// use chunkflow::array;
/// use chunkflow::dataset::Variable;
///
/// let v = Variable::new(["time", "x"], array::zeros::<f32>(&[4, 3], [2, 3])?)?
///     .with_attr("units", "K");
/// assert_eq!(v.dims(), ["time", "x"]);
/// assert_eq!(v.sizes().get("x"), Some(3));
/// assert_eq!(v.axis("x")?, 1);
/// assert!(v.axis("lat").is_err());
/// # Ok::<(), chunkflow::dataset::DatasetError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Variable {
    pub(super) dims: Vec<String>,
    pub(super) data: AnyArray,
    pub(super) attrs: Map<String, Value>,
    pub(super) encoding: Encoding,
}

impl Variable {
    /// A variable over `data` with one dimension name per axis.
    ///
    /// # Errors
    /// [`DatasetError::InvalidDims`] when the number of names differs from the array's
    /// dimensions or a name repeats.
    pub fn new<S: Into<String>>(
        dims: impl IntoIterator<Item = S>,
        data: impl Into<AnyArray>,
    ) -> DatasetResult<Variable> {
        let dims: Vec<String> = dims.into_iter().map(Into::into).collect();
        let data = data.into();
        check_dims(&dims, data.shape(), "(new variable)")?;
        Ok(Variable {
            dims,
            data,
            attrs: Map::new(),
            encoding: Encoding::default(),
        })
    }

    /// Replaces the attributes.
    pub fn with_attrs(mut self, attrs: Map<String, Value>) -> Variable {
        self.attrs = attrs;
        self
    }

    /// Sets one attribute.
    pub fn with_attr(mut self, key: impl Into<String>, value: impl Into<Value>) -> Variable {
        self.attrs.insert(key.into(), value.into());
        self
    }

    /// Replaces the encoding.
    pub fn with_encoding(mut self, encoding: Encoding) -> Variable {
        self.encoding = encoding;
        self
    }

    /// The same variable over other data of the same shape (attributes and encoding kept).
    ///
    /// # Errors
    /// [`DatasetError::InvalidDims`] when the shape differs.
    pub fn with_data(&self, data: impl Into<AnyArray>) -> DatasetResult<Variable> {
        let data = data.into();
        if data.shape() != self.data.shape() {
            return Err(DatasetError::InvalidDims {
                variable: "(new data)".to_string(),
                reason: format!(
                    "new data has shape {:?}, the variable {:?} has {:?}",
                    data.shape(),
                    self.dims,
                    self.data.shape()
                ),
            });
        }
        Ok(Variable {
            dims: self.dims.clone(),
            data,
            attrs: self.attrs.clone(),
            encoding: self.encoding.clone(),
        })
    }

    /// The dimension names, one per axis.
    pub fn dims(&self) -> &[String] {
        &self.dims
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        self.data.shape()
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.dims.len()
    }

    /// Each dimension with its length, in axis order.
    pub fn sizes(&self) -> Sizes {
        Sizes::from_pairs(
            self.dims
                .iter()
                .cloned()
                .zip(self.shape().iter().copied())
                .collect(),
        )
    }

    /// The axis of dimension `dim`.
    ///
    /// # Errors
    /// [`DatasetError::DimNotFound`] naming the variable's dimensions.
    pub fn axis(&self, dim: &str) -> DatasetResult<usize> {
        self.dims
            .iter()
            .position(|d| d == dim)
            .ok_or_else(|| DatasetError::DimNotFound {
                dim: dim.to_string(),
                context: "this variable".into(),
                available: self.sizes().into_pairs(),
            })
    }

    /// The lazy data.
    pub fn data(&self) -> &AnyArray {
        &self.data
    }

    /// The lazy data, taken out.
    pub fn into_data(self) -> AnyArray {
        self.data
    }

    /// The element type.
    pub fn dtype(&self) -> VarDType {
        self.data.dtype()
    }

    /// The chunks of the data.
    pub fn chunks(&self) -> &Chunks {
        self.data.chunks()
    }

    /// Bytes of the whole variable.
    pub fn nbytes(&self) -> u64 {
        self.data.nbytes()
    }

    /// The attributes.
    pub fn attrs(&self) -> &Map<String, Value> {
        &self.attrs
    }

    /// The attributes, for changing.
    pub fn attrs_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.attrs
    }

    /// What decoding undid (empty for variables built in memory).
    pub fn encoding(&self) -> &Encoding {
        &self.encoding
    }

    /// The encoding, for changing (a writer reads it).
    pub fn encoding_mut(&mut self) -> &mut Encoding {
        &mut self.encoding
    }
}

pub(super) fn check_dims(dims: &[String], shape: &[usize], name: &str) -> DatasetResult<()> {
    if dims.len() != shape.len() {
        return Err(DatasetError::InvalidDims {
            variable: name.to_string(),
            reason: format!(
                "{} dimension names {dims:?} for an array of shape {shape:?} ({} dimensions)",
                dims.len(),
                shape.len()
            ),
        });
    }
    for (i, d) in dims.iter().enumerate() {
        if d.is_empty() {
            return Err(DatasetError::InvalidDims {
                variable: name.to_string(),
                reason: format!("dimension {i} has an empty name in {dims:?}"),
            });
        }
        if dims[..i].contains(d) {
            return Err(DatasetError::InvalidDims {
                variable: name.to_string(),
                reason: format!("dimension {d:?} appears twice in {dims:?}"),
            });
        }
    }
    Ok(())
}
