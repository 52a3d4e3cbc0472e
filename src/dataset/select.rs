//! Selection by position along named dimensions: [`Indexer`] and `isel` on [`Variable`],
//! [`DataArray`] and [`Dataset`] (xarray's `isel`).
//!
//! Per dimension, an indexer is one position (the dimension is dropped), a numpy slice (with
//! step and negative bounds), a list of positions (orthogonal or "outer" indexing: each
//! dimension independently, the dimension kept with the list's length), or a list of
//! positions along a new *points* dimension (xarray's vectorized indexing with
//! `DataArray(..., dims="points")` indexers: every dimension given points under the same name
//! is selected pointwise, and they are replaced by that one dimension).
//!
//! # How a variable is selected
//!
//! 1. Positions and slices, and lists that are a contiguous ascending run, become one basic
//!    selection ([`Array::slice`](crate::array::Array::slice)): block-wise, no gathering.
//! 2. Other lists are [`Array::take`](crate::array::Array::take)n along their axis.
//! 3. Each points dimension is one [`Array::take_points`](crate::array::Array::take_points)
//!    over the axes it covers; the new dimension takes the place of the first of them (the
//!    order xarray gives). A variable with only one of those dimensions gets a `take` and the
//!    dimension renamed.
//!
//! Coordinates are selected with the data they belong to: index coordinates are sliced and
//! taken along, and a coordinate whose dimensions are all dropped stays as a 0-d (scalar)
//! coordinate, as in xarray. Every position is checked against its dimension's length when the
//! selection is built: nothing is computed.
//!
//! Must not: compute anything, or look up labels (that is `sel`, in `labels.rs`).

use std::ops::{Range, RangeFrom, RangeFull, RangeInclusive, RangeTo};

use ndarray::SliceInfoElem;

use super::any_array::{AnyArray, map_any};
use super::data_array::DataArray;
use super::dataset::{Dataset, Sizes};
use super::error::{DatasetError, DatasetResult};
use super::variable::Variable;

/// A numpy slice of positions: `start:stop:step`, each optional (xarray's `slice(...)` in
/// `isel`). Negative bounds count from the end; bounds past either end clip.
///
/// ```
/// use chunkflow::dataset::Slice;
/// let every_other_reversed = Slice::new(None, None, Some(-2));
/// assert_eq!(Slice::from(2..5), Slice::new(Some(2), Some(5), None));
/// # let _ = every_other_reversed;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slice {
    /// The first position (`None`: the start, or the end for a negative step).
    pub start: Option<i64>,
    /// One past the last position, exclusive (`None`: through the end, or the start for a
    /// negative step).
    pub stop: Option<i64>,
    /// The step (`None`: 1); 0 is an error.
    pub step: Option<i64>,
}

impl Slice {
    /// `start:stop:step`.
    pub fn new(start: Option<i64>, stop: Option<i64>, step: Option<i64>) -> Slice {
        Slice { start, stop, step }
    }

    /// Every position (`:`).
    pub fn full() -> Slice {
        Slice::default()
    }

    /// `self` with step `step`.
    pub fn step(mut self, step: i64) -> Slice {
        self.step = Some(step);
        self
    }

    /// The selected positions of an axis of length `len` as `(first, step, count)`, numpy's
    /// `slice.indices(len)` and `len(range(...))`; `None` for a step of 0.
    pub(crate) fn resolve(&self, len: usize) -> Option<(usize, i64, usize)> {
        let step = self.step.unwrap_or(1);
        if step == 0 {
            return None;
        }
        let n = len as i128;
        let s = i128::from(step);
        let (first, count) = if s > 0 {
            let clip = |v: i64| {
                let v = i128::from(v);
                if v < 0 { (v + n).max(0) } else { v.min(n) }
            };
            let a = self.start.map_or(0, clip);
            let b = self.stop.map_or(n, clip);
            (a, if b > a { (b - a + s - 1) / s } else { 0 })
        } else {
            let clip = |v: i64| {
                let v = i128::from(v);
                if v < 0 { (v + n).max(-1) } else { v.min(n - 1) }
            };
            let a = self.start.map_or(n - 1, clip);
            let b = self.stop.map_or(-1, clip);
            (a, if a > b { (a - b - s - 1) / -s } else { 0 })
        };
        Some((
            if count > 0 { first as usize } else { 0 },
            step,
            count as usize,
        ))
    }
}

impl From<Range<i64>> for Slice {
    fn from(r: Range<i64>) -> Slice {
        Slice::new(Some(r.start), Some(r.end), None)
    }
}

impl From<RangeFrom<i64>> for Slice {
    fn from(r: RangeFrom<i64>) -> Slice {
        Slice::new(Some(r.start), None, None)
    }
}

impl From<RangeTo<i64>> for Slice {
    fn from(r: RangeTo<i64>) -> Slice {
        Slice::new(None, Some(r.end), None)
    }
}

impl From<RangeFull> for Slice {
    fn from(_: RangeFull) -> Slice {
        Slice::full()
    }
}

/// What `isel` selects along one dimension.
///
/// Build one with `From`: an `i64` is a position, a range (`2..5`, `..3`, `1..`, `..`) or a
/// [`Slice`] is a slice, a `Vec<i64>` or `[i64; N]` is a list; [`Indexer::points`] is
/// pointwise.
///
/// ```
/// use chunkflow::dataset::{Indexer, Slice};
/// assert_eq!(Indexer::from(-1), Indexer::Index(-1));
/// assert_eq!(Indexer::from(1..3), Indexer::Slice(Slice::new(Some(1), Some(3), None)));
/// assert_eq!(Indexer::from([0, 2]), Indexer::List(vec![0, 2]));
/// let p = Indexer::points("station", [3, 1]);
/// assert!(matches!(p, Indexer::Points { .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Indexer {
    /// One position (negative counts from the end): the dimension is dropped.
    Index(i64),
    /// A slice of positions: the dimension is kept.
    Slice(Slice),
    /// Positions in any order, with repeats (orthogonal indexing): the dimension is kept with
    /// the list's length.
    List(Vec<i64>),
    /// Positions along a new dimension `dim` (vectorized indexing): every dimension given
    /// points with the same `dim` is selected pointwise and replaced by `dim`.
    Points {
        /// The new dimension's name.
        dim: String,
        /// One position per point.
        indices: Vec<i64>,
    },
}

impl Indexer {
    /// Pointwise positions along the new dimension `dim`.
    pub fn points(dim: impl Into<String>, indices: impl IntoIterator<Item = i64>) -> Indexer {
        Indexer::Points {
            dim: dim.into(),
            indices: indices.into_iter().collect(),
        }
    }
}

impl From<i64> for Indexer {
    fn from(i: i64) -> Indexer {
        Indexer::Index(i)
    }
}

impl From<Slice> for Indexer {
    fn from(s: Slice) -> Indexer {
        Indexer::Slice(s)
    }
}

impl From<Range<i64>> for Indexer {
    fn from(r: Range<i64>) -> Indexer {
        Indexer::Slice(r.into())
    }
}

impl From<RangeInclusive<i64>> for Indexer {
    fn from(r: RangeInclusive<i64>) -> Indexer {
        let (a, b) = r.into_inner();
        Indexer::Slice(Slice::new(Some(a), Some(b + 1), None))
    }
}

impl From<RangeFrom<i64>> for Indexer {
    fn from(r: RangeFrom<i64>) -> Indexer {
        Indexer::Slice(r.into())
    }
}

impl From<RangeTo<i64>> for Indexer {
    fn from(r: RangeTo<i64>) -> Indexer {
        Indexer::Slice(r.into())
    }
}

impl From<RangeFull> for Indexer {
    fn from(r: RangeFull) -> Indexer {
        Indexer::Slice(r.into())
    }
}

impl From<Vec<i64>> for Indexer {
    fn from(v: Vec<i64>) -> Indexer {
        Indexer::List(v)
    }
}

impl From<&[i64]> for Indexer {
    fn from(v: &[i64]) -> Indexer {
        Indexer::List(v.to_vec())
    }
}

impl<const N: usize> From<[i64; N]> for Indexer {
    fn from(v: [i64; N]) -> Indexer {
        Indexer::List(v.to_vec())
    }
}

/// Indexers by dimension name, checked: each dimension at most once, each points dimension's
/// lists of one length and its name not clashing with another dimension.
pub(crate) type Indexers = Vec<(String, Indexer)>;

pub(crate) fn collect_indexers<S: AsRef<str>, I: Into<Indexer>>(
    indexers: impl IntoIterator<Item = (S, I)>,
) -> DatasetResult<Indexers> {
    let mut out: Indexers = Vec::new();
    for (dim, ix) in indexers {
        let dim = dim.as_ref().to_string();
        if out.iter().any(|(d, _)| *d == dim) {
            return Err(DatasetError::InvalidSelection {
                dim,
                reason: "the dimension is given more than once".into(),
            });
        }
        out.push((dim, ix.into()));
    }
    Ok(out)
}

/// Checks `indexers` against the dimensions `sizes` of the object selected (`context` names
/// it in errors): dimensions exist, positions are in range, steps are not 0, points lists of
/// one new dimension have one length and the new name is not another dimension's.
pub(crate) fn check_indexers(
    indexers: &Indexers,
    sizes: &Sizes,
    context: &str,
) -> DatasetResult<()> {
    for (dim, ix) in indexers {
        let len = sizes.get(dim).ok_or_else(|| DatasetError::DimNotFound {
            dim: dim.clone(),
            context: context.to_string(),
            available: sizes.clone().into_pairs(),
        })?;
        match ix {
            Indexer::Index(i) => {
                normalize(dim, len, *i)?;
            }
            Indexer::Slice(s) => {
                if s.resolve(len).is_none() {
                    return Err(DatasetError::InvalidSelection {
                        dim: dim.clone(),
                        reason: "slice step cannot be zero".into(),
                    });
                }
            }
            Indexer::List(list) => {
                for &i in list {
                    normalize(dim, len, i)?;
                }
            }
            Indexer::Points { dim: new, indices } => {
                for &i in indices {
                    normalize(dim, len, i)?;
                }
                let group: Vec<&str> = points_group(indexers, new).map(|(d, _)| d).collect();
                if sizes.contains(new) && !group.contains(&new.as_str()) {
                    return Err(DatasetError::InvalidSelection {
                        dim: new.clone(),
                        reason: format!(
                            "the points dimension {new:?} is already a dimension ({sizes}); \
                             name the points something else"
                        ),
                    });
                }
                if let Some((other, list)) =
                    points_group(indexers, new).find(|(_, l)| l.len() != indices.len())
                {
                    return Err(DatasetError::InvalidSelection {
                        dim: new.clone(),
                        reason: format!(
                            "pointwise indexers along {new:?} must have one length: {dim:?} \
                             has {} positions, {other:?} has {}",
                            indices.len(),
                            list.len()
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The indexers giving points along `new`: `(dimension, positions)`.
fn points_group<'a>(
    indexers: &'a Indexers,
    new: &'a str,
) -> impl Iterator<Item = (&'a str, &'a [i64])> + 'a {
    indexers.iter().filter_map(move |(d, ix)| match ix {
        Indexer::Points { dim, indices } if dim == new => Some((d.as_str(), indices.as_slice())),
        _ => None,
    })
}

fn normalize(dim: &str, len: usize, i: i64) -> DatasetResult<usize> {
    let n = len as i128;
    let j = if i < 0 {
        i128::from(i) + n
    } else {
        i128::from(i)
    };
    if (0..n).contains(&j) {
        Ok(j as usize)
    } else {
        Err(DatasetError::IndexOutOfRange {
            dim: dim.to_string(),
            index: i,
            len,
        })
    }
}

/// The basic-selection entry of a slice (numpy's meaning, written so that `Array::slice`'s
/// reading of a start of 0 with a negative step cannot misfire).
fn slice_elem(len: usize, s: &Slice) -> SliceInfoElem {
    let (first, step, count) = s.resolve(len).expect("steps were checked");
    let range = |start: usize, end: Option<isize>, step: isize| SliceInfoElem::Slice {
        start: start as isize,
        end,
        step,
    };
    if count == 0 {
        return range(0, Some(0), 1);
    }
    if step > 0 {
        let last = first + (count - 1) * step as usize;
        return range(first, Some(last as isize + 1), step as isize);
    }
    let last = first - (count - 1) * step.unsigned_abs() as usize;
    if count == 1 {
        return range(first, Some(first as isize + 1), 1);
    }
    // Walking down to `last`: numpy's exclusive end is `last - 1`, "none" when that is -1.
    let end = (last > 0).then(|| last as isize - 1);
    range(first, end, step as isize)
}

/// Applies the (checked) indexers that concern `var`'s dimensions.
pub(crate) fn isel_variable(var: &Variable, indexers: &Indexers) -> DatasetResult<Variable> {
    let mine: Vec<(usize, &Indexer)> = var
        .dims
        .iter()
        .enumerate()
        .filter_map(|(axis, d)| {
            indexers
                .iter()
                .find(|(n, _)| n == d)
                .map(|(_, ix)| (axis, ix))
        })
        .collect();
    if mine.is_empty() {
        return Ok(var.clone());
    }
    let shape = var.shape().to_vec();
    let mut dims: Vec<String> = Vec::with_capacity(var.ndim());
    let mut info: Vec<SliceInfoElem> = Vec::with_capacity(var.ndim());
    // After the basic step: (axis name, positions) of lists still to take, points to gather.
    let mut lists: Vec<(String, Vec<i64>)> = Vec::new();
    let mut points: Vec<(String, String, Vec<i64>)> = Vec::new();
    for (axis, name) in var.dims.iter().enumerate() {
        let len = shape[axis];
        match mine.iter().find(|(a, _)| *a == axis).map(|(_, ix)| *ix) {
            None => {
                info.push(SliceInfoElem::from(..));
                dims.push(name.clone());
            }
            Some(Indexer::Index(i)) => {
                info.push(SliceInfoElem::Index(normalize(name, len, *i)? as isize));
            }
            Some(Indexer::Slice(s)) => {
                info.push(slice_elem(len, s));
                dims.push(name.clone());
            }
            Some(Indexer::List(list)) => {
                let pos = list
                    .iter()
                    .map(|&i| normalize(name, len, i))
                    .collect::<DatasetResult<Vec<usize>>>()?;
                match contiguous(&pos) {
                    Some(r) => info.push(SliceInfoElem::Slice {
                        start: r.start as isize,
                        end: Some(r.end as isize),
                        step: 1,
                    }),
                    None => {
                        info.push(SliceInfoElem::from(..));
                        lists.push((name.clone(), pos.iter().map(|&p| p as i64).collect()));
                    }
                }
                dims.push(name.clone());
            }
            Some(Indexer::Points { dim, indices }) => {
                info.push(SliceInfoElem::from(..));
                points.push((name.clone(), dim.clone(), indices.clone()));
                dims.push(name.clone());
            }
        }
    }
    let mut data: AnyArray = map_any!(&var.data, a => a.slice(info.as_slice()))?;
    for (name, pos) in &lists {
        let axis = dims
            .iter()
            .position(|d| d == name)
            .expect("a kept dimension");
        data = map_any!(&data, a => a.take(pos, axis))?;
    }
    // Points: one gather per new dimension, in the order of their first dimension.
    let mut done: Vec<&str> = Vec::new();
    for (_, new, _) in &points {
        if done.contains(&new.as_str()) {
            continue;
        }
        done.push(new);
        let group: Vec<&(String, String, Vec<i64>)> =
            points.iter().filter(|(_, n, _)| n == new).collect();
        let axes: Vec<usize> = group
            .iter()
            .map(|(d, _, _)| dims.iter().position(|x| x == d).expect("a kept dimension"))
            .collect();
        let lists: Vec<&[i64]> = group.iter().map(|(_, _, l)| l.as_slice()).collect();
        data = map_any!(&data, a => a.take_points(&axes, &lists))?;
        let first = *axes.iter().min().expect("a group has a dimension");
        let mut next: Vec<String> = Vec::with_capacity(dims.len());
        for (axis, d) in dims.iter().enumerate() {
            if axis == first {
                next.push(new.clone());
            } else if !axes.contains(&axis) {
                next.push(d.clone());
            }
        }
        dims = next;
    }
    let mut out = var.clone();
    if dims.len() != var.ndim() {
        // The stored chunking no longer fits the dimensions.
        out.encoding.chunks = None;
        out.encoding.shards = None;
    }
    out.dims = dims;
    out.data = data;
    Ok(out)
}

/// The range `a..b` when `pos` is `a, a + 1, …, b - 1` (non-empty).
fn contiguous(pos: &[usize]) -> Option<Range<usize>> {
    let first = *pos.first()?;
    pos.iter()
        .enumerate()
        .all(|(k, &p)| p == first + k)
        .then(|| first..first + pos.len())
}

impl Variable {
    /// Selects by position along named dimensions (xarray's `Variable.isel`); see
    /// [`Indexer`] for what each dimension can take. Attributes are kept.
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{Indexer, Variable};
    ///
    /// let v = Variable::new(["time", "x"], array::arange(0i32, 12, 1, 5)?.reshape([3, 4])?)?;
    /// let w = v.isel([("time", Indexer::from(-1)), ("x", Indexer::from([3, 0]))])?;
    /// assert_eq!(w.dims(), ["x"]);
    /// assert_eq!(w.data().typed::<i32>().unwrap().compute()?.into_raw_vec_and_offset().0, vec![11, 8]);
    /// assert!(v.isel([("lat", Indexer::from(0))]).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`DatasetError::DimNotFound`] for a dimension the variable lacks,
    /// [`DatasetError::IndexOutOfRange`] for a position outside its dimension,
    /// [`DatasetError::InvalidSelection`] for a zero step, a dimension given twice, or
    /// pointwise lists of different lengths.
    pub fn isel<S: AsRef<str>, I: Into<Indexer>>(
        &self,
        indexers: impl IntoIterator<Item = (S, I)>,
    ) -> DatasetResult<Variable> {
        let indexers = collect_indexers(indexers)?;
        check_indexers(&indexers, &self.sizes(), "this variable")?;
        isel_variable(self, &indexers)
    }
}

impl DataArray {
    /// Selects by position along named dimensions (xarray's `DataArray.isel`); see [`Indexer`].
    /// Coordinates are selected along with the data; a coordinate left without dimensions is
    /// kept as a scalar coordinate.
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{DataArray, Indexer, Variable};
    ///
    /// let t = Variable::new(["y", "x"], array::arange(0.0f64, 20.0, 1.0, 8)?.reshape([4, 5])?)?;
    /// let x = Variable::new(["x"], array::arange(10.0f64, 15.0, 1.0, 5)?)?;
    /// let da = DataArray::new(t).with_name("t").with_coord("x", x)?;
    ///
    /// // Pointwise: (y, x) = (0, 4) and (3, 1), along a new dimension "points".
    /// let p = da.isel([("y", Indexer::points("points", [0, 3])), ("x", Indexer::points("points", [4, 1]))])?;
    /// assert_eq!(p.dims(), ["points"]);
    /// assert_eq!(p.data().typed::<f64>().unwrap().compute()?.into_raw_vec_and_offset().0, vec![4.0, 16.0]);
    /// assert_eq!(p.coord("x")?.dims(), ["points"]);
    ///
    /// let one = da.isel([("x", Indexer::from(2))])?;
    /// assert_eq!(one.dims(), ["y"]);
    /// assert_eq!(one.coord("x")?.ndim(), 0); // a scalar coordinate
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Variable::isel`], naming the data array's dimensions; a points dimension may not
    /// be named like a dimension it does not replace.
    pub fn isel<S: AsRef<str>, I: Into<Indexer>>(
        &self,
        indexers: impl IntoIterator<Item = (S, I)>,
    ) -> DatasetResult<DataArray> {
        let indexers = collect_indexers(indexers)?;
        check_indexers(&indexers, &self.sizes(), &self.context())?;
        self.isel_checked(&indexers)
    }

    pub(crate) fn isel_checked(&self, indexers: &Indexers) -> DatasetResult<DataArray> {
        let mut out = self.clone();
        out.variable = isel_variable(&self.variable, indexers)?;
        for (_, c) in out.coords.iter_mut() {
            *c = isel_variable(c, indexers)?;
        }
        Ok(out)
    }

    /// `data array "t2m"` (or `the data array` when unnamed), for error messages.
    pub(crate) fn context(&self) -> String {
        match &self.name {
            Some(n) => format!("data array {n:?}"),
            None => "the data array".into(),
        }
    }
}

impl Dataset {
    /// Selects by position along named dimensions in every variable that has them (xarray's
    /// `Dataset.isel`); see [`Indexer`]. Variables without those dimensions are kept as they
    /// are; coordinates stay coordinates (a scalar one when all its dimensions are dropped).
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{Dataset, Indexer, Slice, Variable};
    ///
    /// let ds = Dataset::new()
    ///     .with_variable("t", Variable::new(["time", "x"], array::zeros::<f32>(&[6, 4], [2, 2])?)?)?
    ///     .with_variable("time", Variable::new(["time"], array::arange(0i64, 6, 1, 3)?)?)?
    ///     .with_variable("area", Variable::new(["x"], array::ones::<f64>(&[4], 4)?)?)?;
    /// let sub = ds.isel([("time", Indexer::from(Slice::new(None, None, Some(-2))))])?;
    /// assert_eq!(sub.dims().to_string(), "(time: 3, x: 4)");
    /// let t = sub.variable("time")?.data().typed::<i64>().unwrap().compute()?;
    /// assert_eq!(t.into_raw_vec_and_offset().0, vec![5, 3, 1]);
    /// let err = ds.isel([("lat", Indexer::from(0))]).unwrap_err().to_string();
    /// assert!(err.contains("\"lat\"") && err.contains("\"time\" (6), \"x\" (4)"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`DataArray::isel`], naming the dataset's dimensions.
    pub fn isel<S: AsRef<str>, I: Into<Indexer>>(
        &self,
        indexers: impl IntoIterator<Item = (S, I)>,
    ) -> DatasetResult<Dataset> {
        let indexers = collect_indexers(indexers)?;
        check_indexers(&indexers, &self.dims(), "this dataset")?;
        self.isel_checked(&indexers)
    }

    pub(crate) fn isel_checked(&self, indexers: &Indexers) -> DatasetResult<Dataset> {
        let mut out = self.clone();
        for (_, var) in out.variables.iter_mut() {
            *var = isel_variable(var, indexers)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(len: usize, s: Slice) -> Vec<usize> {
        let (first, step, count) = s.resolve(len).unwrap();
        (0..count)
            .map(|k| (first as i64 + k as i64 * step) as usize)
            .collect()
    }

    #[test]
    fn slices_resolve_like_python() {
        // Python: list(range(7))[a:b:c]
        assert_eq!(
            positions(7, Slice::new(Some(1), Some(5), None)),
            [1, 2, 3, 4]
        );
        assert_eq!(
            positions(7, Slice::new(None, None, Some(-1))),
            [6, 5, 4, 3, 2, 1, 0]
        );
        assert_eq!(positions(7, Slice::new(Some(0), None, Some(-1))), [0]);
        assert_eq!(positions(7, Slice::new(Some(-2), None, None)), [5, 6]);
        assert_eq!(positions(7, Slice::new(Some(5), Some(1), Some(-2))), [5, 3]);
        assert_eq!(
            positions(7, Slice::new(Some(-10), Some(100), Some(3))),
            [0, 3, 6]
        );
        assert_eq!(
            positions(7, Slice::new(Some(4), Some(2), None)),
            Vec::<usize>::new()
        );
        assert_eq!(
            positions(0, Slice::new(None, None, Some(-1))),
            Vec::<usize>::new()
        );
        assert!(Slice::new(None, None, Some(0)).resolve(3).is_none());
    }

    #[test]
    fn slice_entries_select_what_numpy_does() {
        let x = crate::array::arange(0i64, 7, 1, 3).unwrap();
        for (a, b, c) in [
            (None, None, Some(-1)),
            (Some(0), None, Some(-1)),
            (Some(3), None, Some(-3)),
            (Some(6), Some(0), Some(-2)),
            (Some(1), None, Some(2)),
            (Some(2), Some(2), None),
            (Some(5), Some(-1), Some(-1)),
        ] {
            let s = Slice::new(a, b, c);
            let got = x.slice([slice_elem(7, &s)]).unwrap().compute().unwrap();
            let want: Vec<i64> = positions(7, s).iter().map(|&p| p as i64).collect();
            assert_eq!(got.into_raw_vec_and_offset().0, want, "{s:?}");
        }
    }

    #[test]
    fn contiguous_lists_are_ranges() {
        assert_eq!(contiguous(&[3, 4, 5]), Some(3..6));
        assert_eq!(contiguous(&[3]), Some(3..4));
        assert_eq!(contiguous(&[3, 5]), None);
        assert_eq!(contiguous(&[4, 3]), None);
        assert_eq!(contiguous(&[]), None);
    }
}
