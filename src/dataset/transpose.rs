//! Reordering dimensions by name: `transpose` and `t` on [`Variable`], [`DataArray`] and
//! [`Dataset`] (xarray's `transpose(*dims)` and `.T`).
//!
//! The order is given by name, with `"..."` standing for every dimension not named, in its
//! current order (xarray's ellipsis). Without `"..."` every dimension must be named. An empty
//! order reverses the dimensions, as xarray's `transpose()` with no arguments. Coordinates with
//! several dimensions are transposed to the same relative order (xarray's
//! `transpose_coords=True`). Blocks are transposed views: nothing is copied or computed.
//!
//! Must not: change data, coordinates' values or attributes.

use super::any_array::map_any;
use super::data_array::DataArray;
use super::dataset::{Dataset, Sizes};
use super::error::{DatasetError, DatasetResult};
use super::variable::Variable;

/// `"..."`: the dimensions not named, in their order.
pub const ELLIPSIS: &str = "...";

/// The full order of `sizes`' dimensions that `order` asks for (checked).
fn full_order(order: &[String], sizes: &Sizes, context: &str) -> DatasetResult<Vec<String>> {
    let all: Vec<String> = sizes.names().map(str::to_string).collect();
    if order.is_empty() {
        return Ok(all.into_iter().rev().collect());
    }
    for (i, d) in order.iter().enumerate() {
        if order[..i].contains(d) {
            return Err(DatasetError::InvalidSelection {
                dim: d.clone(),
                reason: "the dimension is listed twice in the transpose order".into(),
            });
        }
        if d != ELLIPSIS && !sizes.contains(d) {
            return Err(DatasetError::DimNotFound {
                dim: d.clone(),
                context: context.to_string(),
                available: sizes.clone().into_pairs(),
            });
        }
    }
    let rest: Vec<String> = all.iter().filter(|d| !order.contains(d)).cloned().collect();
    if !order.iter().any(|d| d == ELLIPSIS)
        && let Some(missing) = rest.first()
    {
        return Err(DatasetError::InvalidSelection {
            dim: missing.clone(),
            reason: format!(
                "transpose needs every dimension of {context} ({sizes}), or \"...\" for the \
                 ones not named; {rest:?} are missing"
            ),
        });
    }
    let mut out = Vec::with_capacity(all.len());
    for d in order {
        if d == ELLIPSIS {
            out.extend(rest.iter().cloned());
        } else {
            out.push(d.clone());
        }
    }
    Ok(out)
}

/// `var` with its dimensions in the order they have in `order` (which holds them all).
fn transpose_variable(var: &Variable, order: &[String]) -> DatasetResult<Variable> {
    let axes: Vec<usize> = order
        .iter()
        .filter_map(|d| var.dims.iter().position(|x| x == d))
        .collect();
    debug_assert_eq!(axes.len(), var.ndim());
    if axes.iter().enumerate().all(|(i, &a)| i == a) {
        return Ok(var.clone());
    }
    let mut out = var.clone();
    out.data = map_any!(&var.data, a => a.transpose(&axes))?;
    out.dims = axes.iter().map(|&a| var.dims[a].clone()).collect();
    let permute = |v: &Option<Vec<u64>>| {
        v.as_ref()
            .filter(|c| c.len() == axes.len())
            .map(|c| axes.iter().map(|&a| c[a]).collect())
    };
    out.encoding.chunks = permute(&var.encoding.chunks);
    out.encoding.shards = permute(&var.encoding.shards);
    Ok(out)
}

fn names<S: AsRef<str>>(order: impl IntoIterator<Item = S>) -> Vec<String> {
    order.into_iter().map(|d| d.as_ref().to_string()).collect()
}

impl Variable {
    /// The variable with its dimensions in `order` (names, `"..."` for the rest; empty:
    /// reversed).
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::Variable;
    /// let v = Variable::new(["time", "lat", "lon"], array::zeros::<f32>(&[4, 3, 2], [2, 3, 2])?)?;
    /// assert_eq!(v.transpose(["lon", "..."])?.dims(), ["lon", "time", "lat"]);
    /// assert_eq!(v.t().shape(), &[2, 3, 4]);
    /// assert!(v.transpose(["lon", "lat"]).is_err()); // "time" missing, no "..."
    /// # Ok::<(), chunkflow::dataset::DatasetError>(())
    /// ```
    ///
    /// # Errors
    /// [`DatasetError::DimNotFound`] for an unknown name, [`DatasetError::InvalidSelection`]
    /// for a repeated name or a missing dimension without `"..."`.
    pub fn transpose<S: AsRef<str>>(
        &self,
        order: impl IntoIterator<Item = S>,
    ) -> DatasetResult<Variable> {
        let order = full_order(&names(order), &self.sizes(), "this variable")?;
        transpose_variable(self, &order)
    }

    /// The dimensions reversed (xarray's `.T`).
    pub fn t(&self) -> Variable {
        let order: Vec<String> = self.dims.iter().rev().cloned().collect();
        transpose_variable(self, &order).expect("a reversal is a permutation")
    }
}

impl DataArray {
    /// The data array with its dimensions in `order` (names, `"..."` for the rest; empty:
    /// reversed); coordinates follow.
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{DataArray, Variable};
    /// let v = Variable::new(["time", "lat", "lon"], array::zeros::<f32>(&[4, 3, 2], [2, 3, 2])?)?;
    /// let area = Variable::new(["lat", "lon"], array::ones::<f64>(&[3, 2], [3, 2])?)?;
    /// let da = DataArray::new(v).with_coord("area", area)?;
    /// let t = da.transpose(["lon", "lat", "time"])?;
    /// assert_eq!(t.dims(), ["lon", "lat", "time"]);
    /// assert_eq!(t.coord("area")?.dims(), ["lon", "lat"]);
    /// assert_eq!(da.t().dims(), ["lon", "lat", "time"]);
    /// # Ok::<(), chunkflow::dataset::DatasetError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Variable::transpose`].
    pub fn transpose<S: AsRef<str>>(
        &self,
        order: impl IntoIterator<Item = S>,
    ) -> DatasetResult<DataArray> {
        let order = full_order(&names(order), &self.sizes(), &self.context())?;
        let mut out = self.clone();
        out.variable = transpose_variable(&self.variable, &order)?;
        for (_, c) in out.coords.iter_mut() {
            *c = transpose_variable(c, &order)?;
        }
        Ok(out)
    }

    /// The dimensions reversed (xarray's `.T`).
    pub fn t(&self) -> DataArray {
        let order: Vec<String> = self.dims().iter().rev().cloned().collect();
        self.transpose(order).expect("a reversal is a permutation")
    }
}

impl Dataset {
    /// Every variable with its dimensions in the relative order of `order` (names, `"..."`
    /// for the rest; empty: each variable reversed), xarray's `Dataset.transpose`.
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{Dataset, Variable};
    /// let ds = Dataset::new()
    ///     .with_variable("t", Variable::new(["time", "x"], array::zeros::<f32>(&[2, 3], [2, 3])?)?)?
    ///     .with_variable("x", Variable::new(["x"], array::arange(0i32, 3, 1, 3)?)?)?;
    /// let t = ds.transpose(["x", "..."])?;
    /// assert_eq!(t.variable("t")?.dims(), ["x", "time"]);
    /// assert!(ds.transpose(["x", "lat"]).is_err());
    /// # Ok::<(), chunkflow::dataset::DatasetError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Variable::transpose`], naming the dataset's dimensions.
    pub fn transpose<S: AsRef<str>>(
        &self,
        order: impl IntoIterator<Item = S>,
    ) -> DatasetResult<Dataset> {
        let order = names(order);
        let full = if order.is_empty() {
            None
        } else {
            Some(full_order(&order, &self.dims(), "this dataset")?)
        };
        let mut out = self.clone();
        for (_, var) in out.variables.iter_mut() {
            *var = match &full {
                Some(o) => transpose_variable(var, o)?,
                None => var.t(),
            };
        }
        Ok(out)
    }
}
