//! [`DataArray`]: one [`Variable`] with a name and the coordinates that fit its dimensions
//! (xarray's `DataArray`, what `ds["t2m"]` gives).
//!
//! Invariant: every coordinate's dimensions are among the variable's, with the same lengths.

use serde_json::{Map, Value};

use super::any_array::{AnyArray, VarDType};
use super::dataset::{Dataset, Sizes};
use super::error::{DatasetError, DatasetResult};
use super::variable::{Encoding, Variable};
use crate::array::Chunks;

/// A named variable with its coordinates.
///
/// ```
/// use chunkflow::array;
/// use chunkflow::dataset::{DataArray, Variable};
///
/// let t = Variable::new(["time", "x"], array::zeros::<f32>(&[4, 3], [2, 3])?)?;
/// let x = Variable::new(["x"], array::arange(0.0f64, 3.0, 1.0, 3)?)?;
/// let da = DataArray::new(t).with_name("t").with_coord("x", x)?;
/// assert_eq!(da.name(), Some("t"));
/// assert!(da.is_index("x"));
/// assert!(da.coord("time").is_err()); // a dimension without a coordinate
/// # Ok::<(), chunkflow::dataset::DatasetError>(())
/// ```
#[derive(Clone, Debug)]
pub struct DataArray {
    pub(super) name: Option<String>,
    pub(super) variable: Variable,
    pub(super) coords: Vec<(String, Variable)>,
}

impl DataArray {
    /// An unnamed data array without coordinates.
    pub fn new(variable: Variable) -> DataArray {
        DataArray {
            name: None,
            variable,
            coords: Vec::new(),
        }
    }

    pub(super) fn from_parts(
        name: Option<String>,
        variable: Variable,
        coords: Vec<(String, Variable)>,
    ) -> DataArray {
        DataArray {
            name,
            variable,
            coords,
        }
    }

    /// Names it.
    pub fn with_name(mut self, name: impl Into<String>) -> DataArray {
        self.name = Some(name.into());
        self
    }

    /// Adds (or replaces) coordinate `name`.
    ///
    /// # Errors
    /// [`DatasetError::DimNotFound`] when the coordinate has a dimension the variable lacks,
    /// [`DatasetError::DimLengthConflict`] when a length differs.
    pub fn with_coord(mut self, name: impl Into<String>, coord: Variable) -> DatasetResult<Self> {
        let name = name.into();
        for (dim, &len) in coord.dims.iter().zip(coord.shape()) {
            let axis = self
                .variable
                .axis(dim)
                .map_err(|_| DatasetError::DimNotFound {
                    dim: dim.clone(),
                    context: format!("the data array the coordinate {name:?} is added to"),
                    available: self.variable.sizes().into_pairs(),
                })?;
            let own = self.variable.shape()[axis];
            if own != len {
                return Err(DatasetError::DimLengthConflict {
                    dim: dim.clone(),
                    variable: name,
                    len,
                    other: self.name.clone().unwrap_or_else(|| "(unnamed)".into()),
                    other_len: own,
                });
            }
        }
        match self.coords.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = coord,
            None => self.coords.push((name, coord)),
        }
        Ok(self)
    }

    /// The name, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The variable (dimensions, data, attributes, encoding).
    pub fn variable(&self) -> &Variable {
        &self.variable
    }

    /// The variable, taken out.
    pub fn into_variable(self) -> Variable {
        self.variable
    }

    /// The lazy data.
    pub fn data(&self) -> &AnyArray {
        &self.variable.data
    }

    /// The dimension names.
    pub fn dims(&self) -> &[String] {
        &self.variable.dims
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        self.variable.shape()
    }

    /// Each dimension with its length.
    pub fn sizes(&self) -> Sizes {
        self.variable.sizes()
    }

    /// The element type.
    pub fn dtype(&self) -> VarDType {
        self.variable.dtype()
    }

    /// The chunks.
    pub fn chunks(&self) -> &Chunks {
        self.variable.chunks()
    }

    /// The attributes.
    pub fn attrs(&self) -> &Map<String, Value> {
        &self.variable.attrs
    }

    /// The encoding.
    pub fn encoding(&self) -> &Encoding {
        &self.variable.encoding
    }

    /// The coordinates, in order.
    pub fn coords(&self) -> impl Iterator<Item = (&str, &Variable)> {
        self.coords.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Coordinate `name`.
    ///
    /// # Errors
    /// [`DatasetError::VariableNotFound`] listing the coordinates there are.
    pub fn coord(&self, name: &str) -> DatasetResult<&Variable> {
        self.coords
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| DatasetError::VariableNotFound {
                name: name.to_string(),
                available: self.coords.iter().map(|(n, _)| n.clone()).collect(),
            })
    }

    /// Whether coordinate `name` is an index coordinate (1-D, named like its dimension).
    pub fn is_index(&self, name: &str) -> bool {
        self.coords
            .iter()
            .any(|(n, v)| n == name && v.dims.len() == 1 && v.dims[0] == *n)
    }

    /// A dataset holding this array (under its name, or xarray's
    /// `"__xarray_dataarray_variable__"` when unnamed) and its coordinates.
    ///
    /// # Errors
    /// [`DatasetError::InvalidDims`] when the name is also a coordinate's.
    pub fn to_dataset(&self) -> DatasetResult<Dataset> {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| "__xarray_dataarray_variable__".into());
        let mut ds = Dataset::new();
        for (n, c) in &self.coords {
            if *n == name && !self.is_index(n) {
                return Err(DatasetError::InvalidDims {
                    variable: name,
                    reason: "the data array's name is also one of its coordinates'".into(),
                });
            }
            ds.insert(n.clone(), c.clone())?;
            ds.coord_names.insert(n.clone());
        }
        if !ds.contains(&name) {
            ds.insert(name, self.variable.clone())?;
        }
        Ok(ds)
    }
}
