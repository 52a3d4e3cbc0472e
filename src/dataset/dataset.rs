//! [`Dataset`] (named variables sharing dimensions, some of them coordinates) and [`Sizes`]
//! (dimension lengths in order): xarray's `Dataset` and `Dataset.sizes`.
//!
//! Invariants, kept by every method that adds a variable:
//! - every variable that uses a dimension gives it the same length;
//! - a variable named like one of its own dimensions is 1-D along it, and is a coordinate
//!   (an *index* coordinate, xarray's `IndexVariable`);
//! - every coordinate name is a variable name; variable order is insertion order (for an
//!   opened store: the group's array order, sorted by name).

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Value};

use super::data_array::DataArray;
use super::error::{DatasetError, DatasetResult};
use super::variable::Variable;

/// Dimension names with their lengths, in order of first appearance (xarray's `sizes`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sizes(Vec<(String, usize)>);

impl Sizes {
    pub(super) fn from_pairs(pairs: Vec<(String, usize)>) -> Sizes {
        Sizes(pairs)
    }

    /// The length of `dim`, if present.
    pub fn get(&self, dim: &str) -> Option<usize> {
        self.0.iter().find(|(d, _)| d == dim).map(|&(_, n)| n)
    }

    /// Whether `dim` is present.
    pub fn contains(&self, dim: &str) -> bool {
        self.get(dim).is_some()
    }

    /// `(name, length)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, usize)> {
        self.0.iter().map(|(d, n)| (d.as_str(), *n))
    }

    /// The names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(d, _)| d.as_str())
    }

    /// The number of dimensions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs, taken out.
    pub fn into_pairs(self) -> Vec<(String, usize)> {
        self.0
    }

    fn add(&mut self, dim: &str, len: usize) {
        if !self.contains(dim) {
            self.0.push((dim.to_string(), len));
        }
    }
}

impl fmt::Display for Sizes {
    /// `(time: 6, lat: 4, lon: 5)`, as xarray prints dimensions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, (d, n)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}: {n}")?;
        }
        f.write_str(")")
    }
}

/// Variables sharing named dimensions, with coordinates and attributes (xarray's `Dataset`).
/// Lazy: every variable is a chunked [`AnyArray`](super::AnyArray).
///
/// ```
/// use chunkflow::array;
/// use chunkflow::dataset::{Dataset, Variable};
///
/// let ds = Dataset::new()
///     .with_variable("x", Variable::new(["x"], array::arange(0.0f64, 3.0, 1.0, 3)?)?)?
///     .with_variable("t", Variable::new(["time", "x"], array::zeros::<f32>(&[2, 3], [1, 3])?)?)?
///     .with_attr("title", "demo");
/// assert_eq!(ds.dims().to_string(), "(x: 3, time: 2)");
/// assert!(ds.is_index("x")); // 1-D and named like its dimension
/// assert_eq!(ds.data_vars().map(|(n, _)| n).collect::<Vec<_>>(), ["t"]);
/// let err = ds.variable("temp").unwrap_err().to_string();
/// assert!(err.contains("\"temp\"") && err.contains("\"x\", \"t\""), "{err}");
/// # Ok::<(), chunkflow::dataset::DatasetError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// Variable names in order.
    pub(super) names: Vec<String>,
    pub(super) variables: HashMap<String, Variable>,
    pub(super) coord_names: HashSet<String>,
    pub(super) attrs: Map<String, Value>,
    /// What opening could not do as asked but worked around (see [`Dataset::warnings`]).
    pub(super) warnings: Vec<String>,
}

impl Dataset {
    /// An empty dataset.
    pub fn new() -> Dataset {
        Dataset::default()
    }

    /// Adds (or replaces) variable `name`; see [`Dataset::insert`].
    pub fn with_variable(mut self, name: impl Into<String>, var: Variable) -> DatasetResult<Self> {
        self.insert(name, var)?;
        Ok(self)
    }

    /// Adds (or replaces) variable `name` and marks it a coordinate.
    pub fn with_coord(mut self, name: impl Into<String>, var: Variable) -> DatasetResult<Self> {
        let name = name.into();
        self.insert(name.clone(), var)?;
        self.coord_names.insert(name);
        Ok(self)
    }

    /// Adds (or replaces, keeping its place and coordinate status) variable `name`. A 1-D
    /// variable named like its dimension becomes an index coordinate.
    ///
    /// # Errors
    /// [`DatasetError::DimLengthConflict`] when a dimension's length differs from another
    /// variable's; [`DatasetError::InvalidDims`] when the variable is named like one of its
    /// dimensions but is not 1-D.
    pub fn insert(&mut self, name: impl Into<String>, var: Variable) -> DatasetResult<()> {
        let name = name.into();
        if var.dims.contains(&name) && var.dims.len() != 1 {
            return Err(DatasetError::InvalidDims {
                variable: name,
                reason: format!(
                    "it has the same name as one of its dimensions {:?} but is not 1-D; only \
                     a 1-D variable along its own name can be an index coordinate",
                    var.dims
                ),
            });
        }
        for (dim, &len) in var.dims.iter().zip(var.shape()) {
            let other = self
                .names
                .iter()
                .filter(|n| **n != name)
                .map(|n| (n, &self.variables[n]))
                .find_map(|(n, v)| {
                    let axis = v.dims.iter().position(|d| d == dim)?;
                    let other_len = v.shape()[axis];
                    (other_len != len).then(|| (n.clone(), other_len))
                });
            if let Some((other, other_len)) = other {
                return Err(DatasetError::DimLengthConflict {
                    dim: dim.clone(),
                    variable: name,
                    len,
                    other,
                    other_len,
                });
            }
        }
        if var.dims.len() == 1 && var.dims[0] == name {
            self.coord_names.insert(name.clone());
        }
        if self.variables.insert(name.clone(), var).is_none() {
            self.names.push(name);
        }
        Ok(())
    }

    /// Marks existing variables as coordinates (xarray's `set_coords`).
    ///
    /// # Errors
    /// [`DatasetError::VariableNotFound`] for a name that is not a variable.
    pub fn set_coords<S: AsRef<str>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> DatasetResult<Self> {
        for name in names {
            let name = name.as_ref();
            self.variable(name)?;
            self.coord_names.insert(name.to_string());
        }
        Ok(self)
    }

    /// Removes variables (xarray's `drop_vars`).
    ///
    /// # Errors
    /// [`DatasetError::VariableNotFound`] for a name that is not a variable (nothing is
    /// removed then).
    pub fn drop_vars<S: AsRef<str>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> DatasetResult<Self> {
        let names: Vec<String> = names.into_iter().map(|s| s.as_ref().to_string()).collect();
        for name in &names {
            self.variable(name)?;
        }
        for name in &names {
            self.variables.remove(name);
            self.coord_names.remove(name);
        }
        self.names.retain(|n| self.variables.contains_key(n));
        Ok(self)
    }

    /// Replaces the attributes.
    pub fn with_attrs(mut self, attrs: Map<String, Value>) -> Self {
        self.attrs = attrs;
        self
    }

    /// Sets one attribute.
    pub fn with_attr(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attrs.insert(key.into(), value.into());
        self
    }

    /// The dimensions with their lengths, in order of first appearance over the variables.
    pub fn dims(&self) -> Sizes {
        let mut sizes = Sizes::default();
        for v in self.variables_in_order() {
            for (d, &n) in v.dims.iter().zip(v.shape()) {
                sizes.add(d, n);
            }
        }
        sizes
    }

    /// The length of dimension `dim`.
    ///
    /// # Errors
    /// [`DatasetError::DimNotFound`] listing the dataset's dimensions.
    pub fn dim_size(&self, dim: &str) -> DatasetResult<usize> {
        let sizes = self.dims();
        sizes.get(dim).ok_or_else(|| DatasetError::DimNotFound {
            dim: dim.to_string(),
            context: "this dataset".into(),
            available: sizes.into_pairs(),
        })
    }

    /// The variable called `name` (data variable or coordinate).
    ///
    /// # Errors
    /// [`DatasetError::VariableNotFound`] listing the variables there are.
    pub fn variable(&self, name: &str) -> DatasetResult<&Variable> {
        self.variables
            .get(name)
            .ok_or_else(|| DatasetError::VariableNotFound {
                name: name.to_string(),
                available: self.names.clone(),
            })
    }

    /// The variable called `name`, for changing its attributes or encoding.
    ///
    /// # Errors
    /// As [`Dataset::variable`].
    pub fn variable_mut(&mut self, name: &str) -> DatasetResult<&mut Variable> {
        match self.variables.get_mut(name) {
            Some(v) => Ok(v),
            None => Err(DatasetError::VariableNotFound {
                name: name.to_string(),
                available: self.names.clone(),
            }),
        }
    }

    /// Whether a variable is called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.variables.contains_key(name)
    }

    /// Every variable with its name, in order.
    pub fn variables(&self) -> impl Iterator<Item = (&str, &Variable)> {
        self.names.iter().map(|n| (n.as_str(), &self.variables[n]))
    }

    fn variables_in_order(&self) -> impl Iterator<Item = &Variable> {
        self.names.iter().map(|n| &self.variables[n])
    }

    /// The data variables (not coordinates), in order.
    pub fn data_vars(&self) -> impl Iterator<Item = (&str, &Variable)> {
        self.variables()
            .filter(|(n, _)| !self.coord_names.contains(*n))
    }

    /// The coordinates, in order.
    pub fn coords(&self) -> impl Iterator<Item = (&str, &Variable)> {
        self.variables()
            .filter(|(n, _)| self.coord_names.contains(*n))
    }

    /// Whether `name` is a coordinate.
    pub fn is_coord(&self, name: &str) -> bool {
        self.coord_names.contains(name)
    }

    /// Whether `name` is an index coordinate: 1-D and named like its dimension (shown with `*`
    /// in the repr; `sel` looks labels up in these).
    pub fn is_index(&self, name: &str) -> bool {
        self.variables
            .get(name)
            .is_some_and(|v| v.dims.len() == 1 && v.dims[0] == name)
    }

    /// Variable `name` with the coordinates that fit its dimensions (xarray's `ds[name]`).
    ///
    /// # Errors
    /// [`DatasetError::VariableNotFound`] listing the variables there are.
    pub fn data_array(&self, name: &str) -> DatasetResult<DataArray> {
        let variable = self.variable(name)?.clone();
        let coords = self
            .coords()
            .filter(|(_, c)| c.dims.iter().all(|d| variable.dims.contains(d)))
            .map(|(n, c)| (n.to_string(), c.clone()))
            .collect();
        Ok(DataArray::from_parts(
            Some(name.to_string()),
            variable,
            coords,
        ))
    }

    /// The attributes.
    pub fn attrs(&self) -> &Map<String, Value> {
        &self.attrs
    }

    /// The attributes, for changing.
    pub fn attrs_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.attrs
    }

    /// Bytes of all variables.
    pub fn nbytes(&self) -> u64 {
        self.variables_in_order().map(Variable::nbytes).sum()
    }

    /// What [`open_zarr`](super::open_zarr) worked around rather than failing on, one line
    /// each: stale or missing consolidated metadata (the store was listed instead), times left
    /// undecoded. Empty for a clean open (xarray reports these as Python warnings).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array;

    fn var(dims: &[&str], shape: &[usize]) -> Variable {
        Variable::new(dims.iter().copied(), array::zeros::<f64>(shape, 2).unwrap()).unwrap()
    }

    #[test]
    fn insertion_keeps_dims_consistent() {
        let mut ds = Dataset::new();
        ds.insert("a", var(&["time", "x"], &[4, 3])).unwrap();
        ds.insert("x", var(&["x"], &[3])).unwrap();
        assert!(ds.is_coord("x") && ds.is_index("x"));
        let err = ds.insert("b", var(&["x"], &[5])).unwrap_err();
        assert!(matches!(
            &err,
            DatasetError::DimLengthConflict { dim, other, other_len: 3, len: 5, .. }
                if dim == "x" && other == "a"
        ));
        assert!(err.to_string().contains("\"x\""), "{err}");
        // Replacing keeps the place and may change the length when nothing else uses it.
        ds.insert("a", var(&["time", "x"], &[6, 3])).unwrap();
        assert_eq!(ds.dims().to_string(), "(time: 6, x: 3)");
        assert_eq!(
            ds.variables().map(|(n, _)| n).collect::<Vec<_>>(),
            ["a", "x"]
        );

        let err = ds.insert("time", var(&["time", "x"], &[6, 3])).unwrap_err();
        assert!(err.to_string().contains("not 1-D"), "{err}");
        assert!(Variable::new(["x", "x"], array::zeros::<f64>(&[2, 2], 2).unwrap()).is_err());
        assert!(Variable::new(["x"], array::zeros::<f64>(&[2, 2], 2).unwrap()).is_err());
    }

    #[test]
    fn lookups_name_what_exists() {
        let ds = Dataset::new()
            .with_variable("t2m", var(&["time", "lat"], &[2, 3]))
            .unwrap()
            .with_coord("area", var(&["lat"], &[3]))
            .unwrap();
        let msg = ds.variable("t2").unwrap_err().to_string();
        assert!(
            msg.contains("\"t2\"") && msg.contains("\"t2m\", \"area\""),
            "{msg}"
        );
        let msg = ds.dim_size("lon").unwrap_err().to_string();
        assert!(
            msg.contains("\"lon\"") && msg.contains("\"time\" (2), \"lat\" (3)"),
            "{msg}"
        );
        assert_eq!(ds.dim_size("lat").unwrap(), 3);
        let da = ds.data_array("t2m").unwrap();
        assert_eq!(da.coords().map(|(n, _)| n).collect::<Vec<_>>(), ["area"]);
        assert!(ds.clone().set_coords(["nope"]).is_err());
        let dropped = ds.drop_vars(["area"]).unwrap();
        assert_eq!(dropped.coords().count(), 0);
    }
}
