//! Selection by label: [`Label`], [`Selector`], [`SelOptions`] and `sel` on [`DataArray`] and
//! [`Dataset`] (xarray's `sel`, pandas' `Index.get_loc` / `slice_indexer` / `get_indexer`).
//!
//! `sel` looks labels up in the 1-D *index coordinate* of each dimension (the coordinate
//! named like the dimension), turns them into positions, and hands those to `isel`. The index
//! coordinate's values are computed once per call (they are small; a loaded or persisted
//! coordinate costs nothing).
//!
//! # What a label selects (pandas' rules)
//!
//! - **One label**: the positions holding exactly that value. One match drops the dimension
//!   (like `isel` with a position); several matches (a repeated label) keep it. With a
//!   [`Method`], the single nearest / previous (`Pad`) / next (`Backfill`) label, within the
//!   optional tolerance; ties of `Nearest` go to the later position, as in pandas.
//! - **A slice of labels** is inclusive at both ends. On a sorted index (ascending or
//!   descending) the bounds need not be present: the slice holds every label between them in
//!   the index's direction (so a descending `lat` takes `slice(60, 30)`). On an unsorted index
//!   both bounds must be present, once. A step is a step in positions; a negative step walks
//!   back from `start` to `stop`. Methods do not apply to slices (xarray raises too).
//! - **A list of labels** selects each (with the method, if any); the dimension is kept.
//! - **Points** select one label per point along a new dimension (vectorized `sel`).
//!
//! Datetime coordinates take labels as ISO text or as nanoseconds since 1970 ([`Label::Int`]
//! or [`Label::Datetime`]). Text coarser than the index's resolution selects the whole period
//! (pandas' partial string indexing): on 6-hourly times `"2000-01-01"` is the four times of
//! that day and keeps the dimension, while `"2000-01-01T06"` is one time and drops it. In a
//! slice, text bounds cover their whole period (`"2000-01-01"` to `"2000-01-02"` ends at
//! `2000-01-02T23:59:59.999999999`). The index's resolution is pandas': the coarsest of day,
//! hour, minute, second that every value is a whole multiple of (finer than a second counts
//! as exact).
//!
//! The lookups themselves (pandas' `Index` semantics) live in `label_index.rs`.
//!
//! Must not: select data (that is `isel`), or compute anything but index coordinates.

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::data_array::DataArray;
use super::dataset::{Dataset, Sizes};
use super::error::{DatasetError, DatasetResult};
use super::label_index::indexer_for;
use super::select::{Indexers, check_indexers};
use super::time::format_datetime;
use super::variable::Variable;

/// A coordinate label: a number, a datetime, or text (datetimes as ISO 8601 text).
///
/// ```
/// use chunkflow::dataset::Label;
/// assert_eq!(Label::from(3), Label::Int(3));
/// assert_eq!(Label::from(2.5), Label::Float(2.5));
/// assert_eq!(Label::from("2000-01-01T06"), Label::Str("2000-01-01T06".into()));
/// assert_eq!(Label::from(2.5).to_string(), "2.5");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Label {
    /// An integer (on a datetime coordinate: nanoseconds since 1970-01-01).
    Int(i64),
    /// A float.
    Float(f64),
    /// Text: on a datetime coordinate, an ISO 8601 date and time, possibly partial (`"2000"`,
    /// `"2000-01"`, `"2000-01-01T06"`, `"2000-01-01 06:30:00Z"`).
    Str(String),
    /// A datetime: nanoseconds since 1970-01-01 UTC.
    Datetime(i64),
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Int(i) => write!(f, "{i}"),
            Label::Float(x) => write!(f, "{x}"),
            Label::Str(s) => write!(f, "{s:?}"),
            Label::Datetime(ns) => f.write_str(&format_datetime(*ns)),
        }
    }
}

impl From<i64> for Label {
    fn from(i: i64) -> Label {
        Label::Int(i)
    }
}

impl From<f64> for Label {
    fn from(x: f64) -> Label {
        Label::Float(x)
    }
}

impl From<&str> for Label {
    fn from(s: &str) -> Label {
        Label::Str(s.to_string())
    }
}

impl From<String> for Label {
    fn from(s: String) -> Label {
        Label::Str(s)
    }
}

/// What `sel` selects along one dimension: a label, an inclusive slice of labels, a list of
/// labels, or labels along a new points dimension.
///
/// ```
/// use chunkflow::dataset::{Label, Selector};
/// assert_eq!(Selector::from(10.0), Selector::Label(Label::Float(10.0)));
/// let s = Selector::from(10.0..=20.0); // inclusive, like slice(10, 20)
/// assert_eq!(s, Selector::slice(10.0, 20.0));
/// let open = Selector::slice_from("2000-01-02"); // slice("2000-01-02", None)
/// assert!(matches!(open, Selector::Slice { stop: None, .. }));
/// assert_eq!(Selector::from(["2000-01-01", "2000-01-03"]),
///            Selector::List(vec![Label::from("2000-01-01"), Label::from("2000-01-03")]));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Selector {
    /// One label (the dimension is dropped when it matches one position).
    Label(Label),
    /// Labels from `start` to `stop`, both included (`None`: from the first / to the last).
    Slice {
        /// The first label (`None`: the start of the index).
        start: Option<Label>,
        /// The last label, included (`None`: the end of the index).
        stop: Option<Label>,
        /// A step in positions (`None`: 1; negative walks back from `start`).
        step: Option<i64>,
    },
    /// Several labels; the dimension is kept.
    List(Vec<Label>),
    /// One label per point along the new dimension `dim` (vectorized `sel`).
    Points {
        /// The new dimension's name.
        dim: String,
        /// One label per point.
        labels: Vec<Label>,
    },
}

impl Selector {
    /// The labels from `start` to `stop`, both included.
    pub fn slice(start: impl Into<Label>, stop: impl Into<Label>) -> Selector {
        Selector::Slice {
            start: Some(start.into()),
            stop: Some(stop.into()),
            step: None,
        }
    }

    /// The labels from `start` to the end.
    pub fn slice_from(start: impl Into<Label>) -> Selector {
        Selector::Slice {
            start: Some(start.into()),
            stop: None,
            step: None,
        }
    }

    /// The labels from the start to `stop`, included.
    pub fn slice_to(stop: impl Into<Label>) -> Selector {
        Selector::Slice {
            start: None,
            stop: Some(stop.into()),
            step: None,
        }
    }

    /// A slice with a step (in positions); other selectors are returned unchanged.
    pub fn with_step(self, step: i64) -> Selector {
        match self {
            Selector::Slice { start, stop, .. } => Selector::Slice {
                start,
                stop,
                step: Some(step),
            },
            other => other,
        }
    }

    /// One label per point along the new dimension `dim`.
    pub fn points<L: Into<Label>>(
        dim: impl Into<String>,
        labels: impl IntoIterator<Item = L>,
    ) -> Selector {
        Selector::Points {
            dim: dim.into(),
            labels: labels.into_iter().map(Into::into).collect(),
        }
    }
}

impl<T: Into<Label>> From<T> for Selector {
    fn from(label: T) -> Selector {
        Selector::Label(label.into())
    }
}

impl<T: Into<Label>> From<RangeInclusive<T>> for Selector {
    fn from(r: RangeInclusive<T>) -> Selector {
        let (a, b) = r.into_inner();
        Selector::slice(a, b)
    }
}

impl<T: Into<Label>> From<Vec<T>> for Selector {
    fn from(v: Vec<T>) -> Selector {
        Selector::List(v.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Label>, const N: usize> From<[T; N]> for Selector {
    fn from(v: [T; N]) -> Selector {
        Selector::List(v.into_iter().map(Into::into).collect())
    }
}

/// How a label that is not in the index is matched (pandas' `method`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Method {
    /// Only exact matches (the default).
    #[default]
    Exact,
    /// The nearest label (ties: the later position).
    Nearest,
    /// The previous label: the largest one at or below (`ffill`).
    Pad,
    /// The next label: the smallest one at or above (`bfill`).
    Backfill,
}

/// Options of `sel`: the [`Method`] and its tolerance.
///
/// ```
/// use chunkflow::dataset::{Method, SelOptions};
/// let o = SelOptions::nearest().with_tolerance(0.5);
/// assert_eq!(o.method, Method::Nearest);
/// assert_eq!(o.tolerance, Some(0.5));
/// let t = SelOptions::nearest().with_tolerance_duration(std::time::Duration::from_secs(3600));
/// assert_eq!(t.tolerance, Some(3.6e12)); // nanoseconds, for datetime coordinates
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SelOptions {
    /// How labels not in the index are matched.
    pub method: Method,
    /// The largest distance a [`Method`] may go from the label, in the coordinate's units
    /// (nanoseconds for datetimes); `None`: any.
    pub tolerance: Option<f64>,
}

impl SelOptions {
    /// The nearest label.
    pub fn nearest() -> SelOptions {
        SelOptions {
            method: Method::Nearest,
            tolerance: None,
        }
    }

    /// The previous label.
    pub fn pad() -> SelOptions {
        SelOptions {
            method: Method::Pad,
            tolerance: None,
        }
    }

    /// The next label.
    pub fn backfill() -> SelOptions {
        SelOptions {
            method: Method::Backfill,
            tolerance: None,
        }
    }

    /// Sets the tolerance (coordinate units; nanoseconds for datetimes).
    pub fn with_tolerance(mut self, tolerance: f64) -> SelOptions {
        self.tolerance = Some(tolerance);
        self
    }

    /// Sets the tolerance of a datetime coordinate as a duration.
    pub fn with_tolerance_duration(mut self, tolerance: Duration) -> SelOptions {
        self.tolerance = Some(tolerance.as_nanos() as f64);
        self
    }
}

pub(crate) fn collect_selectors<S: AsRef<str>, L: Into<Selector>>(
    selectors: impl IntoIterator<Item = (S, L)>,
) -> DatasetResult<Vec<(String, Selector)>> {
    let mut out: Vec<(String, Selector)> = Vec::new();
    for (dim, s) in selectors {
        let dim = dim.as_ref().to_string();
        if out.iter().any(|(d, _)| *d == dim) {
            return Err(DatasetError::InvalidSelection {
                dim,
                reason: "the dimension is given more than once".into(),
            });
        }
        out.push((dim, s.into()));
    }
    Ok(out)
}

/// Turns label selectors into checked position indexers, looking each dimension's index
/// coordinate up with `index_of`.
fn to_indexers<'a>(
    selectors: &[(String, Selector)],
    options: &SelOptions,
    sizes: &Sizes,
    context: &str,
    index_of: impl Fn(&str) -> Option<&'a Variable>,
    indexes: impl Fn() -> Vec<String>,
) -> DatasetResult<Indexers> {
    let mut out: Indexers = Vec::with_capacity(selectors.len());
    for (dim, selector) in selectors {
        if !sizes.contains(dim) {
            return Err(DatasetError::DimNotFound {
                dim: dim.clone(),
                context: context.to_string(),
                available: sizes.clone().into_pairs(),
            });
        }
        let coord = index_of(dim).ok_or_else(|| DatasetError::NoIndex {
            dim: dim.clone(),
            indexes: indexes(),
        })?;
        out.push((dim.clone(), indexer_for(dim, coord, selector, options)?));
    }
    check_indexers(&out, sizes, context)?;
    Ok(out)
}

impl DataArray {
    /// Selects by label in the index coordinates (xarray's `DataArray.sel`); see the module
    /// doc of [`Selector`] for the rules, and [`DataArray::sel_with`] for a [`Method`].
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{DataArray, Selector, SelOptions, Variable};
    ///
    /// let lat = Variable::new(["lat"], array::arange(60.0f64, 20.0, -10.0, 4)?)?; // 60 50 40 30
    /// let t = Variable::new(["lat"], array::arange(0i32, 4, 1, 2)?)?;
    /// let da = DataArray::new(t).with_coord("lat", lat)?;
    /// let values = |d: &DataArray| d.data().typed::<i32>().unwrap().compute().unwrap().into_raw_vec_and_offset().0;
    ///
    /// assert_eq!(values(&da.sel([("lat", Selector::from(50.0..=30.0))])?), [1, 2, 3]); // descending
    /// assert_eq!(values(&da.sel([("lat", 40.0)])?), [2]);
    /// assert_eq!(da.sel([("lat", 40.0)])?.dims().len(), 0); // one label drops the dimension
    /// assert_eq!(values(&da.sel_with([("lat", 47.0)], &SelOptions::nearest())?), [1]);
    /// let err = da.sel([("lat", 47.0)]).unwrap_err().to_string();
    /// assert!(err.contains("label 47 not found in index coordinate \"lat\""), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`DatasetError::DimNotFound`] for an unknown dimension, [`DatasetError::NoIndex`] for a
    /// dimension without an index coordinate, [`DatasetError::LabelNotFound`] for a label not
    /// in the index (saying which coordinate and its range), [`DatasetError::InvalidSelection`]
    /// for a label of the wrong type or a method with a slice.
    pub fn sel<S: AsRef<str>, L: Into<Selector>>(
        &self,
        selectors: impl IntoIterator<Item = (S, L)>,
    ) -> DatasetResult<DataArray> {
        self.sel_with(selectors, &SelOptions::default())
    }

    /// [`DataArray::sel`] with a [`Method`] and tolerance.
    pub fn sel_with<S: AsRef<str>, L: Into<Selector>>(
        &self,
        selectors: impl IntoIterator<Item = (S, L)>,
        options: &SelOptions,
    ) -> DatasetResult<DataArray> {
        let selectors = collect_selectors(selectors)?;
        let indexers = to_indexers(
            &selectors,
            options,
            &self.sizes(),
            &self.context(),
            |dim| {
                self.coords
                    .iter()
                    .find(|(n, c)| n == dim && c.dims.len() == 1 && c.dims[0] == dim)
                    .map(|(_, c)| c)
            },
            || {
                self.coords
                    .iter()
                    .filter(|(n, _)| self.is_index(n))
                    .map(|(n, _)| n.clone())
                    .collect()
            },
        )?;
        self.isel_checked(&indexers)
    }
}

impl Dataset {
    /// Selects by label in the index coordinates of every variable (xarray's `Dataset.sel`);
    /// see [`Selector`] and the rules in [`DataArray::sel`].
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{AnyArray, Dataset, Selector, Variable};
    ///
    /// // 6-hourly times over two days.
    /// let six_hours = 6 * 3_600_000_000_000i64;
    /// let t0 = 946_684_800_000_000_000i64; // 2000-01-01
    /// let time = AnyArray::datetime(array::arange(t0, t0 + 8 * six_hours, six_hours, 4)?);
    /// let ds = Dataset::new()
    ///     .with_variable("time", Variable::new(["time"], time)?)?
    ///     .with_variable("tas", Variable::new(["time"], array::arange(0.0f64, 8.0, 1.0, 4)?)?)?;
    ///
    /// let day = ds.sel([("time", "2000-01-02")])?; // a whole day: the dimension stays
    /// assert_eq!(day.dims().to_string(), "(time: 4)");
    /// let one = ds.sel([("time", "2000-01-01T06")])?; // one time: the dimension goes
    /// assert_eq!(one.dims().to_string(), "()");
    /// let span = ds.sel([("time", Selector::slice("2000-01-01T12", "2000-01-02"))])?;
    /// assert_eq!(span.dims().to_string(), "(time: 6)");
    /// assert!(ds.sel([("time", "2001-01-01")]).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`DataArray::sel`].
    pub fn sel<S: AsRef<str>, L: Into<Selector>>(
        &self,
        selectors: impl IntoIterator<Item = (S, L)>,
    ) -> DatasetResult<Dataset> {
        self.sel_with(selectors, &SelOptions::default())
    }

    /// [`Dataset::sel`] with a [`Method`] and tolerance.
    pub fn sel_with<S: AsRef<str>, L: Into<Selector>>(
        &self,
        selectors: impl IntoIterator<Item = (S, L)>,
        options: &SelOptions,
    ) -> DatasetResult<Dataset> {
        let selectors = collect_selectors(selectors)?;
        let indexers = to_indexers(
            &selectors,
            options,
            &self.dims(),
            "this dataset",
            |dim| {
                if self.is_index(dim) {
                    self.variables.get(dim)
                } else {
                    None
                }
            },
            || {
                self.names
                    .iter()
                    .filter(|n| self.is_index(n))
                    .cloned()
                    .collect()
            },
        )?;
        self.isel_checked(&indexers)
    }
}
