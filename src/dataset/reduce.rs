//! Reductions over named dimensions: `mean(["lat", "lon"])`, `sum`, `prod`, `min`, `max`,
//! `std`, `var` on [`Variable`], [`DataArray`] and [`Dataset`] (xarray's aggregations), built on
//! the array room's tree reductions.
//!
//! # xarray's semantics
//!
//! - **NaN**: floats skip NaN by default (`skipna=True`: `nanmean`, `nansum`, …);
//!   [`ReductionOptions::skipna`] `Some(false)` propagates it. Integers have no NaN. Datetimes
//!   (only `min`/`max`) propagate NaT by default, as numpy does, and skip it with
//!   `skipna: Some(true)`.
//! - **Result types** (numpy's): `sum`/`prod` of integers smaller than 64 bits accumulate in
//!   `int64`/`uint64` (numpy's default accumulator), of booleans in `int64`; `mean`/`std`/`var`
//!   give `float32` for `float32` and `float64` otherwise; `min`/`max` keep the type.
//! - **Dimensions and coordinates**: the reduced dimensions are removed; coordinates that use
//!   any of them are dropped, the others (scalar coordinates included) kept. Attributes are
//!   dropped unless [`ReductionOptions::keep_attrs`].
//! - **Datasets**: each data variable is reduced over the reduced dimensions it has (a
//!   variable without any is reduced over none, which for `std`/`var` gives zeros, as in
//!   xarray); `sum`, `prod`, `mean`, `std`, `var` drop datetime variables that have a reduced
//!   dimension (xarray's `numeric_only`).
//!
//! Must not: compute anything (every reduction is a lazy tree of tasks).

use super::any_array::AnyArray;
use super::data_array::DataArray;
use super::dataset::{Dataset, Sizes};
use super::error::{DatasetError, DatasetResult};
use super::promote::to_typed;
use super::time::NAT;
use super::variable::Variable;
use crate::array::{Array, MeanElement, ReduceOptions};
use crate::graph::token::token_of;

/// An aggregation over dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// The sum.
    Sum,
    /// The product.
    Prod,
    /// The arithmetic mean.
    Mean,
    /// The minimum.
    Min,
    /// The maximum.
    Max,
    /// The standard deviation (`ddof` from the options).
    Std,
    /// The variance (`ddof` from the options).
    Var,
}

impl Reduction {
    /// xarray's name: `"mean"`.
    pub fn name(self) -> &'static str {
        match self {
            Reduction::Sum => "sum",
            Reduction::Prod => "prod",
            Reduction::Mean => "mean",
            Reduction::Min => "min",
            Reduction::Max => "max",
            Reduction::Std => "std",
            Reduction::Var => "var",
        }
    }

    /// Whether xarray's `numeric_only` applies (datetimes are dropped from datasets).
    fn numeric_only(self) -> bool {
        !matches!(self, Reduction::Min | Reduction::Max)
    }
}

/// Options of a reduction (xarray's `skipna`, `ddof`, `keep_attrs`).
///
/// ```
/// use chunkflow::dataset::ReductionOptions;
/// let o = ReductionOptions::default().with_skipna(false).with_ddof(1);
/// assert_eq!((o.skipna, o.ddof, o.keep_attrs), (Some(false), 1, false));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReductionOptions {
    /// Skip NaN (NaT): `None` is xarray's default, skipping for floats only.
    pub skipna: Option<bool>,
    /// Delta degrees of freedom of `std`/`var`: the divisor is `n - ddof`.
    pub ddof: usize,
    /// Keep the attributes of the reduced variables (and dataset).
    pub keep_attrs: bool,
}

impl ReductionOptions {
    /// Sets `skipna`.
    pub fn with_skipna(mut self, skipna: bool) -> Self {
        self.skipna = Some(skipna);
        self
    }

    /// Sets `ddof`.
    pub fn with_ddof(mut self, ddof: usize) -> Self {
        self.ddof = ddof;
        self
    }

    /// Sets `keep_attrs`.
    pub fn with_keep_attrs(mut self, keep: bool) -> Self {
        self.keep_attrs = keep;
        self
    }
}

/// `op` over `axes` of any numeric array (`skip`: the `nan*` form).
fn reduce_number<T: MeanElement>(
    a: &Array<T>,
    op: Reduction,
    axes: &[usize],
    ro: &ReduceOptions,
    skip: bool,
) -> crate::Result<AnyArray> {
    Ok(match (op, skip) {
        (Reduction::Sum, false) => AnyArray::from_array(a.sum_with(axes, ro)?),
        (Reduction::Sum, true) => AnyArray::from_array(a.nansum_with(axes, ro)?),
        (Reduction::Prod, false) => AnyArray::from_array(a.prod_with(axes, ro)?),
        (Reduction::Prod, true) => AnyArray::from_array(a.nanprod_with(axes, ro)?),
        (Reduction::Min, false) => AnyArray::from_array(a.min_with(axes, ro)?),
        (Reduction::Min, true) => AnyArray::from_array(a.nanmin_with(axes, ro)?),
        (Reduction::Max, false) => AnyArray::from_array(a.max_with(axes, ro)?),
        (Reduction::Max, true) => AnyArray::from_array(a.nanmax_with(axes, ro)?),
        (Reduction::Mean, false) => AnyArray::from_array(a.mean_with(axes, ro)?),
        (Reduction::Mean, true) => AnyArray::from_array(a.nanmean_with(axes, ro)?),
        (Reduction::Std, false) => AnyArray::from_array(a.std_with(axes, ro)?),
        (Reduction::Std, true) => AnyArray::from_array(a.nanstd_with(axes, ro)?),
        (Reduction::Var, false) => AnyArray::from_array(a.var_with(axes, ro)?),
        (Reduction::Var, true) => AnyArray::from_array(a.nanvar_with(axes, ro)?),
    })
}

/// Integers smaller than 64 bits, widened for sums and products (numpy's accumulator).
fn widen<T, U>(a: &Array<T>, op: Reduction) -> Option<Array<U>>
where
    T: crate::array::Element + num_traits::ToPrimitive,
    U: crate::array::Element + num_traits::NumCast,
{
    matches!(op, Reduction::Sum | Reduction::Prod).then(|| a.astype::<U>())
}

/// Reduces `data` over `axes` (`what` names it in errors).
pub(crate) fn reduce_data(
    data: &AnyArray,
    op: Reduction,
    axes: &[usize],
    options: &ReductionOptions,
    what: &str,
) -> DatasetResult<AnyArray> {
    let ro = ReduceOptions::new().ddof(options.ddof);
    let ints = options.skipna.unwrap_or(false);
    let floats = options.skipna.unwrap_or(true);
    macro_rules! small_int {
        ($a:expr, $wide:ty) => {
            match widen::<_, $wide>($a, op) {
                Some(w) => reduce_number(&w, op, axes, &ro, ints)?,
                None => reduce_number($a, op, axes, &ro, ints)?,
            }
        };
    }
    Ok(match data {
        AnyArray::F32(a) => reduce_number(a, op, axes, &ro, floats)?,
        AnyArray::F64(a) => reduce_number(a, op, axes, &ro, floats)?,
        AnyArray::I8(a) => small_int!(a, i64),
        AnyArray::I16(a) => small_int!(a, i64),
        AnyArray::I32(a) => small_int!(a, i64),
        AnyArray::I64(a) => reduce_number(a, op, axes, &ro, ints)?,
        AnyArray::U8(a) => small_int!(a, u64),
        AnyArray::U16(a) => small_int!(a, u64),
        AnyArray::U32(a) => small_int!(a, u64),
        AnyArray::U64(a) => reduce_number(a, op, axes, &ro, ints)?,
        AnyArray::Bool(_) => match op {
            Reduction::Min | Reduction::Max => {
                let bytes = to_typed::<u8>(data)?;
                let r = reduce_number(&bytes, op, axes, &ro, false)?;
                let r = r.typed::<u8>().expect("min/max keep u8").clone();
                AnyArray::Bool(r.map_with_token("to-bool", token_of("u8-to-bool"), |b| b != 0))
            }
            Reduction::Sum | Reduction::Prod => {
                reduce_number(&to_typed::<i64>(data)?, op, axes, &ro, false)?
            }
            _ => reduce_number(&to_typed::<f64>(data)?, op, axes, &ro, false)?,
        },
        AnyArray::Datetime(a) => match op {
            Reduction::Min | Reduction::Max => {
                let skip = options.skipna.unwrap_or(false);
                // NaT is i64::MIN: it wins a min and loses a max. Where it must do the
                // opposite, it stands in as i64::MAX and is turned back afterwards.
                let flip = (op == Reduction::Min) == skip;
                let r = if flip {
                    let moved = a.map_same_with_token("nat-to-max", token_of("nat-to-max"), |v| {
                        if v == NAT { i64::MAX } else { v }
                    });
                    let r = reduce_number(&moved, op, axes, &ro, false)?;
                    let r = r.typed::<i64>().expect("min/max keep i64").clone();
                    r.map_same_with_token("max-to-nat", token_of("max-to-nat"), |v| {
                        if v == i64::MAX { NAT } else { v }
                    })
                } else {
                    let r = reduce_number(a, op, axes, &ro, false)?;
                    r.typed::<i64>().expect("min/max keep i64").clone()
                };
                AnyArray::Datetime(r)
            }
            _ => {
                return Err(DatasetError::UnsupportedDType {
                    op: op.name().into(),
                    what: format!("{what} (datetime64[ns])"),
                    reason: "only min and max apply to datetimes here".into(),
                });
            }
        },
    })
}

/// The axes of `dims` in `var`, or [`DatasetError::DimNotFound`] naming `context`'s sizes.
fn axes_of(
    var: &Variable,
    dims: &[String],
    sizes: &Sizes,
    context: &str,
) -> DatasetResult<Vec<usize>> {
    dims.iter()
        .map(|d| {
            var.dims
                .iter()
                .position(|x| x == d)
                .ok_or_else(|| DatasetError::DimNotFound {
                    dim: d.clone(),
                    context: context.to_string(),
                    available: sizes.clone().into_pairs(),
                })
        })
        .collect()
}

fn collect_dims<S: AsRef<str>>(dims: impl IntoIterator<Item = S>) -> DatasetResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for d in dims {
        let d = d.as_ref().to_string();
        if out.contains(&d) {
            return Err(DatasetError::InvalidSelection {
                dim: d,
                reason: "the dimension is listed twice in the reduction".into(),
            });
        }
        out.push(d);
    }
    Ok(out)
}

/// `var` reduced over the (existing) axes `axes`.
fn reduce_variable_axes(
    var: &Variable,
    op: Reduction,
    axes: &[usize],
    options: &ReductionOptions,
    what: &str,
) -> DatasetResult<Variable> {
    let data = reduce_data(&var.data, op, axes, options, what)?;
    let dims: Vec<String> = var
        .dims
        .iter()
        .enumerate()
        .filter(|(i, _)| !axes.contains(i))
        .map(|(_, d)| d.clone())
        .collect();
    let out = Variable::new(dims, data)?;
    Ok(if options.keep_attrs {
        out.with_attrs(var.attrs.clone())
    } else {
        out
    })
}

/// Defines `sum`, `mean`, … on a type with a `reduce(op, dims, options)` method.
macro_rules! shorthands {
    ($ty:ty, $example:literal) => {
        impl $ty {
            #[doc = concat!("The sum over `dims` (NaN skipped for floats); see [`", $example, "`].")]
            pub fn sum<S: AsRef<str>>(&self, dims: impl IntoIterator<Item = S>) -> DatasetResult<Self> {
                self.reduce(Reduction::Sum, dims, &ReductionOptions::default())
            }
            #[doc = concat!("The product over `dims`; see [`", $example, "`].")]
            pub fn prod<S: AsRef<str>>(&self, dims: impl IntoIterator<Item = S>) -> DatasetResult<Self> {
                self.reduce(Reduction::Prod, dims, &ReductionOptions::default())
            }
            #[doc = concat!("The mean over `dims` (NaN skipped for floats); see [`", $example, "`].")]
            pub fn mean<S: AsRef<str>>(&self, dims: impl IntoIterator<Item = S>) -> DatasetResult<Self> {
                self.reduce(Reduction::Mean, dims, &ReductionOptions::default())
            }
            #[doc = concat!("The minimum over `dims`; see [`", $example, "`].")]
            pub fn min<S: AsRef<str>>(&self, dims: impl IntoIterator<Item = S>) -> DatasetResult<Self> {
                self.reduce(Reduction::Min, dims, &ReductionOptions::default())
            }
            #[doc = concat!("The maximum over `dims`; see [`", $example, "`].")]
            pub fn max<S: AsRef<str>>(&self, dims: impl IntoIterator<Item = S>) -> DatasetResult<Self> {
                self.reduce(Reduction::Max, dims, &ReductionOptions::default())
            }
            #[doc = concat!("The standard deviation over `dims` (`ddof = 0`); see [`", $example, "`].")]
            pub fn std<S: AsRef<str>>(&self, dims: impl IntoIterator<Item = S>) -> DatasetResult<Self> {
                self.reduce(Reduction::Std, dims, &ReductionOptions::default())
            }
            #[doc = concat!("The variance over `dims` (`ddof = 0`); see [`", $example, "`].")]
            pub fn var<S: AsRef<str>>(&self, dims: impl IntoIterator<Item = S>) -> DatasetResult<Self> {
                self.reduce(Reduction::Var, dims, &ReductionOptions::default())
            }
        }
    };
}

shorthands!(Variable, "Variable::reduce");
shorthands!(DataArray, "DataArray::reduce");
shorthands!(Dataset, "Dataset::reduce");

impl Variable {
    /// Reduces over the named dimensions, which are removed (xarray's `Variable.reduce`); see
    /// the module doc for NaN handling and result types.
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{Reduction, ReductionOptions, Variable};
    ///
    /// let v = Variable::new(["time", "x"], array::arange(0i16, 6, 1, 4)?.reshape([2, 3])?)?;
    /// let s = v.sum(["time"])?; // int16 sums accumulate in int64, like numpy
    /// assert_eq!(s.dims(), ["x"]);
    /// assert_eq!(s.data().typed::<i64>().unwrap().compute()?.into_raw_vec_and_offset().0, vec![3, 5, 7]);
    /// let sd = v.reduce(Reduction::Std, ["x", "time"], &ReductionOptions::default().with_ddof(1))?;
    /// assert_eq!(sd.dims().len(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`DatasetError::DimNotFound`] for a dimension the variable lacks,
    /// [`DatasetError::UnsupportedDType`] for a reduction of datetimes other than min/max, and
    /// the array room's errors (a min of a zero-length dimension).
    pub fn reduce<S: AsRef<str>>(
        &self,
        op: Reduction,
        dims: impl IntoIterator<Item = S>,
        options: &ReductionOptions,
    ) -> DatasetResult<Variable> {
        let dims = collect_dims(dims)?;
        let axes = axes_of(self, &dims, &self.sizes(), "this variable")?;
        reduce_variable_axes(self, op, &axes, options, "the variable")
    }
}

impl DataArray {
    /// Reduces over the named dimensions (xarray's `DataArray.reduce`): the dimensions and the
    /// coordinates that use them are removed; the name is kept, the attributes dropped unless
    /// asked for. See the module doc for NaN handling and result types.
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{DataArray, Variable};
    /// use ndarray::{ArrayD, IxDyn};
    ///
    /// let data = ArrayD::from_shape_vec(IxDyn(&[2, 2, 2]), vec![1.0, 2.0, f64::NAN, 4.0, 5.0, 6.0, 7.0, 8.0])?;
    /// let tas = Variable::new(["time", "lat", "lon"], array::from_ndarray(data, [1, 2, 2])?)?;
    /// let lat = Variable::new(["lat"], array::arange(10.0f64, 30.0, 10.0, 2)?)?;
    /// let da = DataArray::new(tas).with_name("tas").with_coord("lat", lat)?;
    /// let m = da.mean(["lat", "lon"])?; // NaN skipped, like xarray
    /// assert_eq!(m.dims(), ["time"]);
    /// assert!(m.coord("lat").is_err()); // dropped with its dimension
    /// assert_eq!(m.data().typed::<f64>().unwrap().compute()?.into_raw_vec_and_offset().0, vec![7.0 / 3.0, 6.5]);
    /// assert!(da.mean(["depth"]).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Variable::reduce`], naming the data array's dimensions.
    pub fn reduce<S: AsRef<str>>(
        &self,
        op: Reduction,
        dims: impl IntoIterator<Item = S>,
        options: &ReductionOptions,
    ) -> DatasetResult<DataArray> {
        let dims = collect_dims(dims)?;
        let axes = axes_of(&self.variable, &dims, &self.sizes(), &self.context())?;
        let mut out = self.clone();
        out.variable = reduce_variable_axes(&self.variable, op, &axes, options, &self.context())?;
        out.coords
            .retain(|(_, c)| !c.dims.iter().any(|d| dims.contains(d)));
        Ok(out)
    }
}

impl Dataset {
    /// Reduces every data variable over the named dimensions it has (xarray's
    /// `Dataset.reduce`); coordinates using them are dropped. See the module doc.
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{Dataset, Variable};
    ///
    /// let ds = Dataset::new()
    ///     .with_variable("t", Variable::new(["time", "x"], array::ones::<f32>(&[4, 3], [2, 3])?)?)?
    ///     .with_variable("x", Variable::new(["x"], array::arange(0.0f64, 3.0, 1.0, 3)?)?)?
    ///     .with_variable("n", Variable::new(["x"], array::arange(0i32, 3, 1, 3)?)?)?;
    /// let m = ds.mean(["time"])?;
    /// assert_eq!(m.dims().to_string(), "(x: 3)");
    /// assert_eq!(m.variable("t")?.dtype().name(), "float32");
    /// assert_eq!(m.variable("n")?.dtype().name(), "float64"); // reduced over nothing, as xarray
    /// assert!(m.is_index("x"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`DatasetError::DimNotFound`] for a dimension the dataset lacks, and as
    /// [`Variable::reduce`].
    pub fn reduce<S: AsRef<str>>(
        &self,
        op: Reduction,
        dims: impl IntoIterator<Item = S>,
        options: &ReductionOptions,
    ) -> DatasetResult<Dataset> {
        let dims = collect_dims(dims)?;
        let sizes = self.dims();
        if let Some(d) = dims.iter().find(|d| !sizes.contains(d)) {
            return Err(DatasetError::DimNotFound {
                dim: d.clone(),
                context: "this dataset".into(),
                available: sizes.into_pairs(),
            });
        }
        let mut out = self.clone();
        let mut dropped = Vec::new();
        for name in &self.names {
            let var = &self.variables[name];
            let mine: Vec<String> = var
                .dims
                .iter()
                .filter(|d| dims.contains(d))
                .cloned()
                .collect();
            if self.is_coord(name) {
                if !mine.is_empty() {
                    dropped.push(name.clone());
                }
                continue;
            }
            if op.numeric_only() && var.data.is_datetime() {
                if !mine.is_empty() {
                    dropped.push(name.clone());
                }
                continue;
            }
            let axes = axes_of(var, &mine, &sizes, "this dataset")?;
            let what = format!("variable {name:?}");
            let reduced = reduce_variable_axes(var, op, &axes, options, &what)?;
            out.variables.insert(name.clone(), reduced);
        }
        let mut out = out.drop_vars(dropped)?;
        if !options.keep_attrs {
            out.attrs_mut().clear();
        }
        Ok(out)
    }
}
