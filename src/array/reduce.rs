//! Reductions: `sum`, `prod`, `mean`, `var`, `std`, `min`, `max`, `argmin`, `argmax` and their
//! NaN-skipping `nan*` variants, over chosen axes or the whole array, as tree reductions
//! (dask's `reduction` / `_tree_reduce`).
//!
//! # How a reduction becomes tasks
//!
//! A reduction is a private [`Reducer`]: a small per-lane *state* (a running total; a count and
//! a sum; Chan's `(n, mean, M2)`; a `(value, flat index)` pair), how to make one from the
//! elements of a block, how to merge two, and how to finish one into the result. A *lane* is
//! the set of elements of one block that reduce into the same output element.
//!
//! 1. **chunk** (`"<op>-chunk"`): one task per input block turns the block into an array of
//!    states, one per lane (shaped like the block with the reduced axes dropped). A lane that
//!    is contiguous is read in place; a C-order block reduced over its leading axes (`axis=0`)
//!    is added row by row when the reducer can (`Reducer::chunk_rows`); otherwise the block is
//!    copied into lane order first.
//!
//!    Two inputs are reduced without running their own tasks (`fused_terms`):
//!    - an input with **block streams** (random and constant arrays, element-wise maps and
//!      same-chunked combinations of them, and transposes of those; see `stream.rs`) is pulled
//!      from its generator in slices of `STREAM_SLICE` elements along the read block's first
//!      axis, each slice reduced while it is still in the CPU's cache (a slice across reduced
//!      elements merges into the lanes' states, a slice across kept elements makes its own
//!      lanes' states). The block is never materialised; the task is named after what it
//!      fused (`"random_sample-sum-chunk"`).
//!    - `a ± b` of floating-point arrays with one chunking under a plain `sum` or `mean` (not
//!      the `nan*` forms: those skip an element of `a + b` when either term is NaN) reduces
//!      `a` and `b` on their own and joins the lanes' states (`Reducer::join`). This is the
//!      same sum of the same terms in another order, and each term is read in its own memory
//!      order: in `(x + x.T).mean(axis=0)` the block of `x.T` is reduced along the rows of
//!      `x`'s block, so nothing is transposed, added or copied. Integer sums are left alone
//!      (numpy wraps `a + b` element by element).
//! 2. **combine** (`"<op>-partial"`, `depth - 1` layers): each task merges a group of at most
//!    `split_every` neighbouring partials per reduced axis, elementwise.
//! 3. **aggregate** (`"<op>-aggregate"`): per output block, merges what is left along the
//!    reduced axes and finishes every state into an element.
//!
//! An integer `split_every` (default [`DEFAULT_SPLIT_EVERY`] = 4, dask's `config.get(
//! "split_every", 4)`) is spread over the `k` reduced axes as `max(⌊split_every^(1/k)⌋, 2)`
//! per axis, and `depth = max(1, max over reduced axes of ⌈log_s(blocks)⌉)`, as in dask (we take
//! the integer root exactly; dask's float power can round a perfect power down). A reduction
//! over 10,000 blocks with `split_every = 4` is therefore 1 chunk layer, 6 combine layers and
//! 1 aggregate layer deep. Kept axes keep the input's chunks; with `keepdims` each reduced axis
//! is one chunk of length 1.
//!
//! # numpy semantics (what each reduction returns)
//!
//! - `sum`/`prod` keep the element type. Integers are accumulated exactly (`i128`) and a result
//!   that does not fit the type is an error naming the task (numpy widens small integers to
//!   `int64` and wraps silently on overflow; we refuse to guess: `astype` first). Floats are
//!   accumulated in `f64` (pairwise within a block), `f32` results rounded back to `f32`.
//! - `mean`/`var`/`std` return [`MeanElement::Mean`]: `f32` for `f32`, `f64` for everything else
//!   (numpy's rule). `var` divides by `max(n - ddof, 0)` (so `n <= ddof` gives `inf`, or NaN
//!   when every deviation is 0); `nanvar` gives NaN when `n - ddof <= 0`. The mean of nothing is
//!   NaN.
//! - NaN propagates through the plain reductions: `min`/`max` of a lane holding a NaN is NaN,
//!   and `argmin`/`argmax` return the index of its *first* NaN. The `nan*` variants skip NaN:
//!   `nansum`/`nanprod` of nothing are 0/1, `nanmean`/`nanvar`/`nanstd`/`nanmin`/`nanmax` of an
//!   all-NaN lane are NaN, and `nanargmin`/`nanargmax` of an all-NaN lane fail ("All-NaN slice
//!   encountered", numpy's `ValueError`) when computed. On integers the `nan*` variants are
//!   the plain ones (numpy's `nanvar` of integers is `var`, `n <= ddof` giving `inf`).
//! - `min`, `max`, `argmin`, `argmax` (and their `nan*` forms) have no identity: reducing a
//!   zero-length axis into a non-empty output is an error when the reduction is built (for the
//!   `*_all` scalars, when it is computed).
//! - Ties in `argmin`/`argmax` go to the first occurrence. An axis argmin returns indices along
//!   that axis; `argmin_all` returns the flat C-order index into the whole array.
//! - `axes = &[]` reduces nothing (numpy's `axis=()`): every element is its own lane.
//!
//! # What it must not do
//!
//! Nothing runs while building: every check here is on shapes and options. Data-dependent
//! failures (overflow, all-NaN arg reductions) are task errors raised when computed.

use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Zip};
use num_traits::NumCast;

use super::chunks::Chunks;
use super::core::{Array, Term, block_ref, dedupe_layers, op_token};
use super::dtype::{Element, Float, Number};
use super::stream::BlockStreams;
use crate::delayed::Delayed;
use crate::error::{BoxError, Error, Result};
use crate::graph::key_split;
use crate::graph::token::{key_name, token_of};
use crate::graph::{Inputs, Key, Layer, Task, take_value, value};

/// dask's default fan-in of a tree reduction (`config.get("split_every", 4)` in
/// `dask/array/_reductions_generic.py`).
pub const DEFAULT_SPLIT_EVERY: usize = 4;

/// Options shared by every reduction (numpy's `keepdims` and `ddof`, dask's `split_every`).
///
/// ```
/// use chunkflow::array::{self, ReduceOptions};
/// let x = array::ones::<f64>(&[4, 6], [2, 3]).unwrap();
/// let opts = ReduceOptions::new().keepdims(true).split_every(2);
/// let s = x.sum_with(&[1], &opts).unwrap();
/// assert_eq!(s.shape(), &[4, 1]);
/// assert_eq!(s.compute().unwrap().iter().sum::<f64>(), 24.0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReduceOptions {
    /// Keep each reduced axis as an axis of length 1 (default: drop it).
    pub keepdims: bool,
    /// The most partials one combine or aggregate task merges (at least 2); `None` means
    /// [`DEFAULT_SPLIT_EVERY`]. Spread over several reduced axes as dask does.
    pub split_every: Option<usize>,
    /// Delta degrees of freedom of `var`/`std` (divide by `n - ddof`); other reductions ignore
    /// it.
    pub ddof: usize,
}

impl ReduceOptions {
    /// The defaults: drop reduced axes, fan-in [`DEFAULT_SPLIT_EVERY`], `ddof = 0`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`ReduceOptions::keepdims`].
    pub fn keepdims(mut self, keepdims: bool) -> Self {
        self.keepdims = keepdims;
        self
    }

    /// Sets [`ReduceOptions::split_every`].
    pub fn split_every(mut self, split_every: usize) -> Self {
        self.split_every = Some(split_every);
        self
    }

    /// Sets [`ReduceOptions::ddof`].
    pub fn ddof(mut self, ddof: usize) -> Self {
        self.ddof = ddof;
        self
    }
}

/// Numeric elements with numpy's result type for `mean`, `var` and `std`: `f32` stays `f32`,
/// integers and `f64` give `f64`.
pub trait MeanElement: Number {
    /// The float type of the mean, variance and standard deviation.
    type Mean: Float;
}

macro_rules! mean_element {
    ($($t:ty => $m:ty),*) => {$(
        impl MeanElement for $t {
            type Mean = $m;
        }
    )*};
}
mean_element!(f32 => f32, f64 => f64, i8 => f64, i16 => f64, i32 => f64, i64 => f64,
              u8 => f64, u16 => f64, u32 => f64, u64 => f64);

// ---------------------------------------------------------------------------------------------
// The reducer protocol

/// One reduction: a per-lane state, made from a block's lane, merged, finished.
///
/// `merge` must be associative and commutative up to float rounding (the tree groups partials
/// in any order); states that depend on position carry the global index themselves.
trait Reducer: Send + Sync + 'static {
    type In: Element;
    type State: Copy + Send + Sync + 'static;
    type Out: Copy + Send + Sync + 'static;

    /// Parameters that change the result besides the op name (hashed into keys).
    fn params(&self) -> u64 {
        0
    }

    /// The error for reducing an empty lane, for reductions without an identity.
    fn empty_error(&self) -> Option<String> {
        None
    }

    /// The state of one lane: the elements (in C order over the block's reduced axes) that
    /// reduce into one output element; `index` maps a lane position to its flat index over the
    /// whole array's reduced axes.
    fn chunk(&self, lane: &[Self::In], index: &LaneIndex<'_>) -> Self::State;

    /// The states of `lanes` lanes at once from a block laid out *across* them: `rows` holds
    /// element 0 of every lane, then element 1 of every lane, and so on (a C-order block reduced
    /// over its leading axes, like `mean(axis=0)` of a matrix). Adding row after row is
    /// cache-friendly and vectorises, where gathering each lane would copy the block. `None`
    /// when the reduction has no such form (the block is then copied into lane order).
    fn chunk_rows(&self, rows: &[Self::In], lanes: usize) -> Option<Vec<Self::State>> {
        let _ = (rows, lanes);
        None
    }

    /// The state of the union of two sets of elements.
    fn merge(&self, a: Self::State, b: Self::State) -> Self::State;

    /// Whether the reduction is a plain sum of the elements (`sum`, `mean`; not the NaN-skipping
    /// forms), so that the states of `a ± b` follow from those of `a` and `b` ([`Reducer::join`]).
    fn is_sum(&self) -> bool {
        false
    }

    /// The state of the lane `a ± b` (element by element; `-` if `negate`) from the states of
    /// the same lane of `a` and of `b`; `None` unless [`Reducer::is_sum`].
    fn join(&self, a: Self::State, b: Self::State, negate: bool) -> Option<Self::State> {
        let _ = (a, b, negate);
        None
    }

    /// The result of one lane (an error fails the aggregate task, naming it).
    fn finish(&self, s: Self::State) -> Result<Self::Out, BoxError>;
}

/// Maps a position in a lane to the flat C-order index over the whole array's reduced axes.
struct LaneIndex<'a> {
    /// Per reduced axis: the block's extent.
    dims: &'a [usize],
    /// Per reduced axis: the block's first element in the whole array.
    starts: &'a [usize],
    /// Per reduced axis: the C-order stride over the whole array's reduced shape.
    strides: &'a [usize],
}

impl LaneIndex<'_> {
    fn global(&self, mut local: usize) -> usize {
        let mut flat = 0;
        for j in (0..self.dims.len()).rev() {
            let d = self.dims[j];
            flat += (self.starts[j] + local % d) * self.strides[j];
            local /= d;
        }
        flat
    }
}

/// `x != x`: true only for NaN (so always false for integers).
#[allow(clippy::eq_op)]
fn is_nan<T: PartialEq>(x: T) -> bool {
    x != x
}

/// Pairwise sum of a lane in `f64`, NaN counted as 0 if `skip_nan` (numpy's `nansum`): numpy's
/// `pairwise_sum`, blocks of 128 summed with 8 accumulators and halves added recursively, so
/// the rounding error grows like `O(log n)` and the inner loop vectorises.
fn float_sum<T: Number>(lane: &[T], skip_nan: bool) -> f64 {
    if skip_nan {
        pairwise_sum::<T, true>(lane)
    } else {
        pairwise_sum::<T, false>(lane)
    }
}

fn pairwise_sum<T: Number, const SKIP_NAN: bool>(lane: &[T]) -> f64 {
    const BLOCK: usize = 128;
    #[inline(always)]
    fn get<T: Number, const SKIP_NAN: bool>(x: T) -> f64 {
        let v = x.to_f64().unwrap_or(f64::NAN);
        if SKIP_NAN && v.is_nan() { 0.0 } else { v }
    }
    if lane.len() < 8 {
        let mut s = 0.0;
        for &x in lane {
            s += get::<T, SKIP_NAN>(x);
        }
        s
    } else if lane.len() <= BLOCK {
        let mut r = [0.0f64; 8];
        let mut it = lane.chunks_exact(8);
        for c in &mut it {
            for (acc, &x) in r.iter_mut().zip(c) {
                *acc += get::<T, SKIP_NAN>(x);
            }
        }
        let mut s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in it.remainder() {
            s += get::<T, SKIP_NAN>(x);
        }
        s
    } else {
        let mut half = lane.len() / 2;
        half -= half % 8;
        let (a, b) = lane.split_at(half);
        pairwise_sum::<T, SKIP_NAN>(a) + pairwise_sum::<T, SKIP_NAN>(b)
    }
}

/// Per-lane `f64` sums of a block laid out across its lanes (see [`Reducer::chunk_rows`]), NaN
/// counted as 0 if `skip_nan`. Rows are added in groups of 128 into a partial that is then
/// added to the total, so the error grows like numpy's pairwise sum within a group.
fn column_sums<T: Number>(rows: &[T], lanes: usize, skip_nan: bool) -> Vec<f64> {
    if skip_nan {
        column_sums_impl::<T, true>(rows, lanes)
    } else {
        column_sums_impl::<T, false>(rows, lanes)
    }
}

fn column_sums_impl<T: Number, const SKIP_NAN: bool>(rows: &[T], lanes: usize) -> Vec<f64> {
    const GROUP: usize = 128;
    let mut total = vec![0.0f64; lanes];
    if lanes == 0 {
        return total;
    }
    let mut part = vec![0.0f64; lanes];
    for group in rows.chunks(GROUP * lanes) {
        part.fill(0.0);
        for row in group.chunks_exact(lanes) {
            for (p, &x) in part.iter_mut().zip(row) {
                let v = x.to_f64().unwrap_or(f64::NAN);
                *p += if SKIP_NAN && v.is_nan() { 0.0 } else { v };
            }
        }
        for (t, p) in total.iter_mut().zip(&part) {
            *t += p;
        }
    }
    total
}

/// Per-lane counts of a block laid out across its lanes (NaN not counted if `skip_nan`).
fn column_counts<T: Number>(rows: &[T], lanes: usize, skip_nan: bool) -> Vec<u64> {
    let len = rows.len().checked_div(lanes).unwrap_or(0) as u64;
    let mut n = vec![len; lanes];
    if skip_nan && T::DTYPE.is_float() {
        for row in rows.chunks_exact(lanes.max(1)) {
            for (c, &x) in n.iter_mut().zip(row) {
                *c -= is_nan(x) as u64;
            }
        }
    }
    n
}

/// Per-lane sums of squared deviations from `means` of a block laid out across its lanes
/// (NaN skipped if `SKIP_NAN`).
fn column_squared_deviations<T: Number, const SKIP_NAN: bool>(
    rows: &[T],
    means: &[f64],
) -> Vec<f64> {
    let lanes = means.len();
    let mut m2 = vec![0.0f64; lanes];
    if lanes == 0 {
        return m2;
    }
    for row in rows.chunks_exact(lanes) {
        for ((m, &x), &mu) in m2.iter_mut().zip(row).zip(means) {
            let v = x.to_f64().unwrap_or(f64::NAN);
            let d = v - mu;
            *m += if SKIP_NAN && v.is_nan() { 0.0 } else { d * d };
        }
    }
    m2
}

fn count<T: Number>(lane: &[T], skip_nan: bool) -> u64 {
    if skip_nan && T::DTYPE.is_float() {
        lane.iter().filter(|&&x| !is_nan(x)).count() as u64
    } else {
        lane.len() as u64
    }
}

fn overflow(op: &str, dtype: impl std::fmt::Display, exact: impl std::fmt::Display) -> BoxError {
    format!(
        "{op} overflows {dtype}: the exact result {exact} does not fit (convert first, e.g. \
         with astype::<i64>() or astype::<f64>())"
    )
    .into()
}

// ---------------------------------------------------------------------------------------------
// Sum and product

/// `sum` / `nansum`: integers exactly in `i128`, floats in `f64`.
struct Sum<T> {
    skip_nan: bool,
    _t: PhantomData<fn() -> T>,
}

/// A running total: `.0` for integer types, `.1` for float types.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Total(i128, f64);

impl<T: Number> Reducer for Sum<T> {
    type In = T;
    type State = Total;
    type Out = T;

    fn chunk(&self, lane: &[T], _: &LaneIndex<'_>) -> Total {
        if T::DTYPE.is_float() {
            Total(0, float_sum(lane, self.skip_nan))
        } else {
            // Fewer than 2^63 elements of at most 2^64 each: cannot overflow i128.
            Total(lane.iter().map(|x| x.to_i128().unwrap_or(0)).sum(), 0.0)
        }
    }

    fn chunk_rows(&self, rows: &[T], lanes: usize) -> Option<Vec<Total>> {
        if T::DTYPE.is_float() {
            let sums = column_sums(rows, lanes, self.skip_nan);
            Some(sums.into_iter().map(|s| Total(0, s)).collect())
        } else {
            let mut acc = vec![0i128; lanes];
            for row in rows.chunks_exact(lanes.max(1)) {
                for (a, x) in acc.iter_mut().zip(row) {
                    *a += x.to_i128().unwrap_or(0);
                }
            }
            Some(acc.into_iter().map(|s| Total(s, 0.0)).collect())
        }
    }

    fn merge(&self, a: Total, b: Total) -> Total {
        Total(a.0.wrapping_add(b.0), a.1 + b.1)
    }

    fn is_sum(&self) -> bool {
        !self.skip_nan
    }

    fn join(&self, a: Total, b: Total, negate: bool) -> Option<Total> {
        Some(if negate {
            Total(a.0.wrapping_sub(b.0), a.1 - b.1)
        } else {
            self.merge(a, b)
        })
    }

    fn finish(&self, s: Total) -> Result<T, BoxError> {
        if T::DTYPE.is_float() {
            T::from(s.1).ok_or_else(|| overflow("sum", T::DTYPE, s.1))
        } else {
            T::from(s.0).ok_or_else(|| overflow("sum", T::DTYPE, s.0))
        }
    }
}

/// `prod` / `nanprod`: integers exactly (in `i128`, then "too big" unless a zero follows),
/// floats in `f64`.
struct Prod<T> {
    skip_nan: bool,
    _t: PhantomData<fn() -> T>,
}

/// A running product: `int` for integer types (`None`: beyond `i128`, so beyond any element
/// type, and no zero seen yet), `float` for float types.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Product {
    int: Option<i128>,
    float: f64,
}

/// Integer factors have magnitude ≥ 1 unless zero, so a product past `i128` stays past every
/// element type unless a zero turns up.
fn mul_int(a: Option<i128>, b: Option<i128>) -> Option<i128> {
    match (a, b) {
        (Some(x), Some(y)) => x.checked_mul(y),
        (Some(0), None) | (None, Some(0)) => Some(0),
        _ => None,
    }
}

impl<T: Number> Reducer for Prod<T> {
    type In = T;
    type State = Product;
    type Out = T;

    fn chunk(&self, lane: &[T], _: &LaneIndex<'_>) -> Product {
        if T::DTYPE.is_float() {
            let mut p = 1.0;
            for &x in lane {
                let v = x.to_f64().unwrap_or(f64::NAN);
                if !(self.skip_nan && v.is_nan()) {
                    p *= v;
                }
            }
            Product {
                int: Some(1),
                float: p,
            }
        } else {
            // Not a try_fold: a product past i128 must keep looking for a zero.
            let mut int = Some(1);
            for x in lane {
                int = mul_int(int, x.to_i128());
            }
            Product { int, float: 1.0 }
        }
    }

    fn merge(&self, a: Product, b: Product) -> Product {
        Product {
            int: mul_int(a.int, b.int),
            float: a.float * b.float,
        }
    }

    fn finish(&self, s: Product) -> Result<T, BoxError> {
        if T::DTYPE.is_float() {
            return T::from(s.float).ok_or_else(|| overflow("prod", T::DTYPE, s.float));
        }
        match s.int {
            Some(v) => T::from(v).ok_or_else(|| overflow("prod", T::DTYPE, v)),
            None => Err(overflow("prod", T::DTYPE, "(beyond i128)")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Mean and variance

/// `mean` / `nanmean`: a count and an `f64` sum.
struct Mean<T> {
    skip_nan: bool,
    _t: PhantomData<fn() -> T>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct CountSum {
    n: u64,
    sum: f64,
}

impl<T: MeanElement> Reducer for Mean<T> {
    type In = T;
    type State = CountSum;
    type Out = T::Mean;

    fn chunk(&self, lane: &[T], _: &LaneIndex<'_>) -> CountSum {
        CountSum {
            n: count(lane, self.skip_nan),
            sum: float_sum(lane, self.skip_nan),
        }
    }

    fn chunk_rows(&self, rows: &[T], lanes: usize) -> Option<Vec<CountSum>> {
        let sums = column_sums(rows, lanes, self.skip_nan);
        let counts = column_counts(rows, lanes, self.skip_nan);
        Some(
            counts
                .into_iter()
                .zip(sums)
                .map(|(n, sum)| CountSum { n, sum })
                .collect(),
        )
    }

    fn merge(&self, a: CountSum, b: CountSum) -> CountSum {
        CountSum {
            n: a.n + b.n,
            sum: a.sum + b.sum,
        }
    }

    fn is_sum(&self) -> bool {
        !self.skip_nan
    }

    fn join(&self, a: CountSum, b: CountSum, negate: bool) -> Option<CountSum> {
        // One lane of `a ± b` has as many elements as the same lane of `a`.
        let sum = if negate { a.sum - b.sum } else { a.sum + b.sum };
        Some(CountSum { n: a.n, sum })
    }

    fn finish(&self, s: CountSum) -> Result<T::Mean, BoxError> {
        Ok(to_mean::<T>(s.sum / s.n as f64))
    }
}

fn to_mean<T: MeanElement>(v: f64) -> T::Mean {
    <T::Mean as NumCast>::from(v).unwrap_or_else(<T::Mean as num_traits::Float>::nan)
}

/// `var`, `std` and their `nan*` forms: Chan et al.'s parallel `(n, mean, M2)`.
struct Var<T> {
    skip_nan: bool,
    ddof: usize,
    sqrt: bool,
    _t: PhantomData<fn() -> T>,
}

/// Count, mean and sum of squared deviations from the mean of the elements seen.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Moments {
    const EMPTY: Moments = Moments {
        n: 0,
        mean: 0.0,
        m2: 0.0,
    };

    /// Chan, Golub & LeVeque's pairwise update.
    fn merge(a: Moments, b: Moments) -> Moments {
        if a.n == 0 {
            return b;
        }
        if b.n == 0 {
            return a;
        }
        let n = a.n + b.n;
        let (na, nb, nf) = (a.n as f64, b.n as f64, n as f64);
        let delta = b.mean - a.mean;
        Moments {
            n,
            mean: a.mean + delta * (nb / nf),
            m2: a.m2 + b.m2 + delta * delta * (na * nb / nf),
        }
    }
}

impl<T: MeanElement> Reducer for Var<T> {
    type In = T;
    type State = Moments;
    type Out = T::Mean;

    fn params(&self) -> u64 {
        token_of(&self.ddof)
    }

    fn chunk(&self, lane: &[T], _: &LaneIndex<'_>) -> Moments {
        let n = count(lane, self.skip_nan);
        if n == 0 {
            return Moments::EMPTY;
        }
        // Two passes over the lane: the mean, then the squared deviations from it.
        let mean = float_sum(lane, self.skip_nan) / n as f64;
        let mut m2 = 0.0;
        for &x in lane {
            let v = x.to_f64().unwrap_or(f64::NAN);
            if !(self.skip_nan && v.is_nan()) {
                m2 += (v - mean) * (v - mean);
            }
        }
        Moments { n, mean, m2 }
    }

    fn chunk_rows(&self, rows: &[T], lanes: usize) -> Option<Vec<Moments>> {
        // The same two passes as `chunk`, each row after row across the lanes.
        let counts = column_counts(rows, lanes, self.skip_nan);
        let sums = column_sums(rows, lanes, self.skip_nan);
        let means: Vec<f64> = sums
            .iter()
            .zip(&counts)
            .map(|(&s, &n)| if n == 0 { 0.0 } else { s / n as f64 })
            .collect();
        let m2 = if self.skip_nan && T::DTYPE.is_float() {
            column_squared_deviations::<T, true>(rows, &means)
        } else {
            column_squared_deviations::<T, false>(rows, &means)
        };
        Some(
            counts
                .into_iter()
                .zip(means)
                .zip(m2)
                .map(|((n, mean), m2)| {
                    if n == 0 {
                        Moments::EMPTY
                    } else {
                        Moments { n, mean, m2 }
                    }
                })
                .collect(),
        )
    }

    fn merge(&self, a: Moments, b: Moments) -> Moments {
        Moments::merge(a, b)
    }

    fn finish(&self, s: Moments) -> Result<T::Mean, BoxError> {
        let dof = s.n as f64 - self.ddof as f64;
        let var = if self.skip_nan && T::DTYPE.is_float() {
            // numpy's nanvar: NaN wherever the degrees of freedom are not positive (on integers
            // numpy's nanvar is var).
            if dof <= 0.0 { f64::NAN } else { s.m2 / dof }
        } else {
            // numpy's var: divide by max(n - ddof, 0), giving inf or NaN.
            s.m2 / dof.max(0.0)
        };
        Ok(to_mean::<T>(if self.sqrt { var.sqrt() } else { var }))
    }
}

// ---------------------------------------------------------------------------------------------
// Extremes and their positions

/// `min`, `max`, `nanmin`, `nanmax`: `None` until an element (not NaN, if skipping) is seen.
struct Extreme<T> {
    max: bool,
    skip_nan: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T: Number> Extreme<T> {
    fn beats(&self, x: T, y: T) -> bool {
        if self.max { x > y } else { x < y }
    }
}

impl<T: Number> Reducer for Extreme<T> {
    type In = T;
    type State = Option<T>;
    type Out = T;

    fn empty_error(&self) -> Option<String> {
        let name = if self.max { "maximum" } else { "minimum" };
        Some(format!(
            "zero-size array to reduction operation {name} which has no identity"
        ))
    }

    fn chunk(&self, lane: &[T], _: &LaneIndex<'_>) -> Option<T> {
        let mut best: Option<T> = None;
        for &x in lane {
            if is_nan(x) {
                if self.skip_nan {
                    continue;
                }
                return Some(x);
            }
            best = Some(match best {
                Some(b) if !self.beats(x, b) => b,
                _ => x,
            });
        }
        best
    }

    fn chunk_rows(&self, rows: &[T], lanes: usize) -> Option<Vec<Option<T>>> {
        // `chunk`'s walk, row after row: each lane sees its elements in the same order.
        let mut best: Vec<Option<T>> = vec![None; lanes];
        if lanes == 0 {
            return Some(best);
        }
        for row in rows.chunks_exact(lanes) {
            for (b, &x) in best.iter_mut().zip(row) {
                match *b {
                    // A NaN (kept only when not skipping) wins for good.
                    Some(v) if is_nan(v) => {}
                    _ if is_nan(x) => {
                        if !self.skip_nan {
                            *b = Some(x);
                        }
                    }
                    Some(v) if !self.beats(x, v) => {}
                    _ => *b = Some(x),
                }
            }
        }
        Some(best)
    }

    fn merge(&self, a: Option<T>, b: Option<T>) -> Option<T> {
        match (a, b) {
            (None, s) | (s, None) => s,
            (Some(x), Some(y)) => {
                if is_nan(x) || (!is_nan(y) && !self.beats(y, x)) {
                    Some(x)
                } else {
                    Some(y)
                }
            }
        }
    }

    fn finish(&self, s: Option<T>) -> Result<T, BoxError> {
        match s {
            Some(v) => Ok(v),
            // An all-NaN lane: numpy's nanmin gives NaN (with a warning).
            None if self.skip_nan && T::DTYPE.is_float() => {
                Ok(T::from(f64::NAN).expect("a float type holds NaN"))
            }
            None => Err(self.empty_error().unwrap_or_default().into()),
        }
    }
}

/// `argmin`, `argmax`, `nanargmin`, `nanargmax`: the best `(value, global flat index)`, ties to
/// the smaller index; without skipping, the first NaN wins (numpy).
struct ArgExtreme<T, O> {
    max: bool,
    skip_nan: bool,
    out: fn(usize) -> O,
    _t: PhantomData<fn() -> T>,
}

impl<T: Number, O> ArgExtreme<T, O> {
    fn name(&self) -> String {
        let nan = if self.skip_nan { "nan" } else { "" };
        let arg = if self.max { "argmax" } else { "argmin" };
        format!("{nan}{arg}")
    }

    /// Whether `a` is preferred over `b`.
    fn prefers(&self, a: (T, usize), b: (T, usize)) -> bool {
        let (a_nan, b_nan) = (is_nan(a.0), is_nan(b.0));
        if a_nan || b_nan {
            return if a_nan && b_nan { a.1 < b.1 } else { a_nan };
        }
        if a.0 == b.0 {
            return a.1 < b.1;
        }
        if self.max { a.0 > b.0 } else { a.0 < b.0 }
    }
}

impl<T: Number, O: Copy + Send + Sync + 'static> Reducer for ArgExtreme<T, O> {
    type In = T;
    type State = Option<(T, usize)>;
    type Out = O;

    fn empty_error(&self) -> Option<String> {
        Some(format!(
            "attempt to get {} of an empty sequence",
            self.name()
        ))
    }

    fn chunk(&self, lane: &[T], index: &LaneIndex<'_>) -> Option<(T, usize)> {
        // Local C order agrees with global C order within a block, so the first local winner
        // is the first global one; only the winner's index is translated.
        let mut best: Option<(T, usize)> = None;
        for (i, &x) in lane.iter().enumerate() {
            if is_nan(x) {
                if self.skip_nan {
                    continue;
                }
                best = Some((x, i));
                break;
            }
            let better = match best {
                None => true,
                Some((b, _)) => {
                    if self.max {
                        x > b
                    } else {
                        x < b
                    }
                }
            };
            if better {
                best = Some((x, i));
            }
        }
        best.map(|(v, i)| (v, index.global(i)))
    }

    fn merge(&self, a: Self::State, b: Self::State) -> Self::State {
        match (a, b) {
            (None, s) | (s, None) => s,
            (Some(x), Some(y)) => Some(if self.prefers(x, y) { x } else { y }),
        }
    }

    fn finish(&self, s: Self::State) -> Result<O, BoxError> {
        match s {
            Some((_, i)) => Ok((self.out)(i)),
            None if self.skip_nan => Err("All-NaN slice encountered".into()),
            None => Err(self.empty_error().unwrap_or_default().into()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The tree

/// The shape of one reduction's tree: which axes, how many partials per group, how deep.
struct Plan {
    /// The op's name (`"nansum"`): key prefixes and error messages.
    op: &'static str,
    /// Hashes the op, its parameters, the input and the axes (not `keepdims`, so the partial
    /// layers of a reduction with and without it are shared).
    token: u64,
    /// Per input axis: whether it is reduced.
    reduced: Vec<bool>,
    /// Per input axis: the most partials merged per group (1 on kept axes).
    split: Vec<usize>,
    /// Merge levels including the aggregate (at least 1).
    depth: usize,
    /// The reduced axes' C-order strides over the whole array's reduced shape.
    strides: Vec<usize>,
}

/// Checks `axes` against `ndim` (each in range, none twice); returns the per-axis mask.
fn reduced_mask(axes: &[usize], ndim: usize) -> Result<Vec<bool>> {
    let mut mask = vec![false; ndim];
    for &a in axes {
        if a >= ndim {
            return Err(Error::InvalidArgument(format!(
                "axis {a} is out of bounds for array of dimension {ndim}"
            )));
        }
        if mask[a] {
            return Err(Error::InvalidArgument(format!(
                "duplicate value in axes {axes:?}: axis {a} is listed twice"
            )));
        }
        mask[a] = true;
    }
    Ok(mask)
}

/// The largest `r` with `r^k <= n` (`k >= 1`).
fn int_root(n: usize, k: u32) -> usize {
    let fits = |r: usize| r.checked_pow(k).is_some_and(|p| p <= n);
    let mut r = (n as f64).powf(1.0 / k as f64).round() as usize;
    while r > 0 && !fits(r) {
        r -= 1;
    }
    while r.checked_add(1).is_some_and(fits) {
        r += 1;
    }
    r
}

/// The number of `split`-way merges that bring `blocks` down to one: `⌈log_split(blocks)⌉`.
fn levels(blocks: usize, split: usize) -> usize {
    let (mut d, mut reach) = (0, 1usize);
    while reach < blocks {
        reach = reach.saturating_mul(split);
        d += 1;
    }
    d
}

impl Plan {
    fn new<R: Reducer>(
        x: &Array<R::In>,
        op: &'static str,
        reducer: &R,
        axes: &[usize],
        options: &ReduceOptions,
    ) -> Result<Plan> {
        let reduced = reduced_mask(axes, x.ndim())?;
        let split_every = options.split_every.unwrap_or(DEFAULT_SPLIT_EVERY);
        if split_every < 2 {
            return Err(Error::InvalidArgument(format!(
                "split_every must be at least 2, got {split_every}"
            )));
        }
        let k = reduced.iter().filter(|&&r| r).count();
        // dask: max(int(split_every ** (1 / len(axis))), 2) on every reduced axis.
        let per_axis = if k == 0 {
            split_every
        } else {
            int_root(split_every, k as u32).max(2)
        };
        let numblocks = x.numblocks();
        let split: Vec<usize> = reduced
            .iter()
            .map(|&r| if r { per_axis } else { 1 })
            .collect();
        let depth = (0..x.ndim())
            .filter(|&a| reduced[a])
            .map(|a| levels(numblocks[a], per_axis))
            .max()
            .unwrap_or(0)
            .max(1);
        // Identity-less reductions of nothing into something are an error (numpy's ValueError).
        let lane_len: usize = (0..x.ndim())
            .filter(|&a| reduced[a])
            .map(|a| x.shape()[a])
            .product();
        let out_len: usize = (0..x.ndim())
            .filter(|&a| !reduced[a])
            .map(|a| x.shape()[a])
            .product();
        if lane_len == 0
            && out_len > 0
            && let Some(message) = reducer.empty_error()
        {
            return Err(Error::InvalidArgument(format!(
                "{op} of an array of shape {:?} over axes {axes:?}: {message}",
                x.shape()
            )));
        }
        let mut strides = Vec::with_capacity(k);
        let mut stride = 1;
        for a in (0..x.ndim()).rev().filter(|&a| reduced[a]) {
            strides.push(stride);
            stride *= x.shape()[a];
        }
        strides.reverse();
        let mut sorted: Vec<usize> = axes.to_vec();
        sorted.sort_unstable();
        let token = op_token(op, &[x.name()], &(sorted, split.clone(), reducer.params()));
        Ok(Plan {
            op,
            token,
            reduced,
            split,
            depth,
            strides,
        })
    }

    fn name(&self, stage: &str, level: usize) -> Arc<str> {
        key_name(
            &format!("{}-{stage}", self.op),
            token_of(&(self.token, stage, level)),
        )
        .into()
    }
}

/// The C-order product of index ranges.
fn grid_product(ranges: &[Range<usize>]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = vec![Vec::with_capacity(ranges.len())];
    for r in ranges {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                r.clone().map(move |i| {
                    let mut v = prefix.clone();
                    v.push(i);
                    v
                })
            })
            .collect();
    }
    out
}

/// The states of every lane of one block, shaped like the block without its reduced axes.
struct ChunkGeometry {
    /// Kept axes, then reduced axes: the view that makes each lane contiguous.
    perm: Vec<usize>,
    kept_shape: Vec<usize>,
    dims: Vec<usize>,
    starts: Vec<usize>,
    block_shape: Vec<usize>,
}

impl ChunkGeometry {
    /// The geometry of the block covering `ranges` of the whole array.
    fn new(ranges: &[Range<usize>], reduced: &[bool]) -> ChunkGeometry {
        let ndim = ranges.len();
        let kept: Vec<usize> = (0..ndim).filter(|&a| !reduced[a]).collect();
        let red: Vec<usize> = (0..ndim).filter(|&a| reduced[a]).collect();
        ChunkGeometry {
            perm: kept.iter().chain(&red).copied().collect(),
            kept_shape: kept.iter().map(|&a| ranges[a].len()).collect(),
            dims: red.iter().map(|&a| ranges[a].len()).collect(),
            starts: red.iter().map(|&a| ranges[a].start).collect(),
            block_shape: ranges.iter().map(|r| r.len()).collect(),
        }
    }

    /// The number of lanes (output elements) of the block.
    fn lanes(&self) -> usize {
        self.kept_shape.iter().product()
    }
}

// ---------------------------------------------------------------------------------------------
// Fused chunk steps: reading operands' blocks, or their streams, instead of the input's blocks

/// Elements per slice when a block is pulled from its stream: 128 KiB of `f64`, so the slice
/// (and a second operand's) stays in the CPU's L2 cache between being made and being reduced.
const STREAM_SLICE: usize = 16 * 1024;

/// What the chunk step reduces instead of `x`'s blocks, if anything:
/// - `x = a ± b` (floating point, one chunking) under a plain sum or mean: each term on its own,
///   read in its own memory order (a transpose's block is reduced along its source's layout),
///   and the lanes' states joined; the element-wise tasks never run;
/// - `x` (or the source of a transpose `x`) has block streams: the blocks are pulled through
///   the cache a slice at a time instead of being materialised.
fn fused_terms<R: Reducer>(x: &Array<R::In>, r: &R) -> Option<Vec<Term<R::In>>> {
    if r.is_sum()
        && let Some(terms) = x.sum_of()
    {
        return Some(terms.to_vec());
    }
    let term = x.term(false);
    term.streams.is_some().then(|| vec![term])
}

/// The chunk layer that reduces `terms` block by block (see [`fused_terms`]).
fn chunk_layer_from_terms<R: Reducer>(
    x: &Array<R::In>,
    plan: &Plan,
    reducer: &Arc<R>,
    strides: &Arc<[usize]>,
    terms: Vec<Term<R::In>>,
) -> (Arc<str>, Layer) {
    // Fused tasks say what they fused, as dask's fused keys do (`random_sample-sum-chunk`).
    let labels: Vec<&str> = terms.iter().map(|t| key_split(&t.name)).collect();
    let label = format!("{}-{}-chunk", labels.join("-"), plan.op);
    let name: Arc<str> = key_name(&label, token_of(&(plan.token, label.as_str()))).into();
    let terms: Arc<[Term<R::In>]> = terms.into();
    let state_size = std::mem::size_of::<R::State>() as u64;
    let chunks = x.chunks();
    let tasks: Vec<Task> = chunks
        .blocks()
        .map(|idx| {
            let ranges = chunks.block_ranges(&idx);
            let g = ChunkGeometry::new(&ranges, &plan.reduced);
            let lanes = g.lanes() as u64;
            let deps: Vec<Key> = terms
                .iter()
                .filter(|t| t.streams.is_none())
                .map(|t| Key::chunk(t.name.clone(), &source_index(&idx, t.perm.as_deref())))
                .collect();
            let (r, strides, terms) = (reducer.clone(), strides.clone(), terms.clone());
            let reduced = plan.reduced.clone();
            Task::call(Key::chunk(name.clone(), &idx), deps, move |inputs| {
                let mut inputs = inputs.iter();
                let mut acc: Option<ArrayD<R::State>> = None;
                for t in terms.iter() {
                    let states = match &t.streams {
                        Some(streams) => {
                            stream_states(&*r, &**streams, t, &idx, &ranges, &reduced, &strides)?
                        }
                        None => {
                            let v = inputs.next().ok_or("missing input")?;
                            let block = v.downcast_ref::<ArrayD<R::In>>().ok_or_else(|| {
                                format!("input {} is not an array of {}", t.name, R::In::DTYPE)
                            })?;
                            let view = match &t.perm {
                                Some(p) => block.view().permuted_axes(&**p),
                                None => block.view(),
                            };
                            chunk_states(&*r, view, &g, &strides)?
                        }
                    };
                    acc = Some(match acc {
                        None => states,
                        Some(mut a) => {
                            let mut failed = false;
                            Zip::from(&mut a).and(&states).for_each(|a, &b| {
                                match r.join(*a, b, t.negate) {
                                    Some(j) => *a = j,
                                    None => failed = true,
                                }
                            });
                            if failed {
                                return Err(format!(
                                    "{} cannot reduce a sum term by term",
                                    std::any::type_name::<R>()
                                )
                                .into());
                            }
                            a
                        }
                    });
                }
                Ok(value(
                    acc.ok_or("a fused chunk step has at least one term")?,
                ))
            })
            .with_nbytes(lanes * state_size)
        })
        .collect();
    let layers = terms
        .iter()
        .filter(|t| t.streams.is_none())
        .map(|t| t.layer.clone())
        .collect();
    (name.clone(), Layer::new(name, tasks, dedupe_layers(layers)))
}

/// The index of the block read for block `idx` of an operand read through `perm`.
fn source_index(idx: &[usize], perm: Option<&[usize]>) -> Vec<usize> {
    match perm {
        None => idx.to_vec(),
        Some(p) => {
            let mut si = vec![0; idx.len()];
            for (k, &a) in p.iter().enumerate() {
                si[a] = idx[k];
            }
            si
        }
    }
}

/// The states of block `idx` (covering `ranges` of the array) of the operand `t`, pulled from
/// its streams in slices along the read block's first axis, each slice reduced on its own: a
/// slice across reduced elements merges into the lanes' states, a slice across kept elements
/// gives the states of its own lanes.
fn stream_states<R: Reducer>(
    r: &R,
    streams: &dyn BlockStreams<R::In>,
    t: &Term<R::In>,
    idx: &[usize],
    ranges: &[Range<usize>],
    reduced: &[bool],
    strides: &[usize],
) -> Result<ArrayD<R::State>, BoxError> {
    let perm = t.perm.as_deref();
    let shape: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
    // The read block's shape, and the operand's axis that is its first axis.
    let src_shape = source_index(&shape, perm);
    let axis = perm.map_or(0, |p| p.iter().position(|&a| a == 0).unwrap_or(0));
    let extent = src_shape.first().copied().unwrap_or(1);
    let unit: usize = src_shape.iter().skip(1).product();
    if src_shape.is_empty() || extent == 0 || unit == 0 {
        let empty = ArrayD::<R::In>::from_shape_vec(IxDyn(&shape), vec![])?;
        return chunk_states(
            r,
            empty.view(),
            &ChunkGeometry::new(ranges, reduced),
            strides,
        );
    }
    let rows = (STREAM_SLICE / unit).clamp(1, extent);
    let mut stream = streams.open(&source_index(idx, perm), &src_shape);
    let mut buf = vec![R::In::default(); rows * unit];
    let mut acc: Option<ArrayD<R::State>> = None;
    let mut kept_parts: Vec<ArrayD<R::State>> = Vec::new();
    let mut start = 0;
    while start < extent {
        let len = rows.min(extent - start);
        let slice = &mut buf[..len * unit];
        stream.fill(slice);
        let mut slice_shape = src_shape.clone();
        slice_shape[0] = len;
        let src_view = ArrayViewD::from_shape(IxDyn(&slice_shape), &*slice)?;
        let view = match perm {
            Some(p) => src_view.permuted_axes(p),
            None => src_view,
        };
        let mut slice_ranges = ranges.to_vec();
        let first = ranges[axis].start + start;
        slice_ranges[axis] = first..first + len;
        let states = chunk_states(
            r,
            view,
            &ChunkGeometry::new(&slice_ranges, reduced),
            strides,
        )?;
        if reduced[axis] {
            acc = Some(match acc {
                None => states,
                Some(mut a) => {
                    Zip::from(&mut a)
                        .and(&states)
                        .for_each(|a, &b| *a = r.merge(*a, b));
                    a
                }
            });
        } else {
            kept_parts.push(states);
        }
        start += len;
    }
    if reduced[axis] {
        return acc.ok_or_else(|| "an empty block has no slices".into());
    }
    // The slices' lanes lie along the kept axis `axis`, which is this position of the states.
    let at = (0..axis).filter(|&a| !reduced[a]).count();
    let views: Vec<_> = kept_parts.iter().map(|p| p.view()).collect();
    Ok(ndarray::concatenate(Axis(at), &views)?)
}

fn chunk_states<R: Reducer>(
    r: &R,
    block: ArrayViewD<'_, R::In>,
    g: &ChunkGeometry,
    strides: &[usize],
) -> Result<ArrayD<R::State>, BoxError> {
    if block.shape() != g.block_shape.as_slice() {
        return Err(format!(
            "block has shape {:?}, expected {:?}",
            block.shape(),
            g.block_shape
        )
        .into());
    }
    let index = LaneIndex {
        dims: &g.dims,
        starts: &g.starts,
        strides,
    };
    let lane_len: usize = g.dims.iter().product();
    let lanes: usize = g.kept_shape.iter().product();
    let states: Vec<R::State> = if lane_len == 0 {
        (0..lanes).map(|_| r.chunk(&[], &index)).collect()
    } else {
        let view = block.permuted_axes(g.perm.clone());
        if !view.is_standard_layout() {
            // Reduced axes first, kept axes last: if that order is contiguous (a C-order block
            // reduced over its leading axes), reduce row by row without copying.
            let k = g.kept_shape.len();
            let across: Vec<usize> = (k..g.perm.len()).chain(0..k).collect();
            let rows = view.view().permuted_axes(across);
            if let Some(slice) = rows.as_slice()
                && let Some(states) = r.chunk_rows(slice, lanes)
            {
                return Ok(ArrayD::from_shape_vec(IxDyn(&g.kept_shape), states)?);
            }
        }
        let data = view.as_standard_layout();
        let slice = data
            .as_slice()
            .ok_or("a standard-layout block is contiguous")?;
        slice
            .chunks(lane_len)
            .map(|lane| r.chunk(lane, &index))
            .collect()
    };
    Ok(ArrayD::from_shape_vec(IxDyn(&g.kept_shape), states)?)
}

/// Merges the partials of one group elementwise (all of one shape) into the first.
fn merge_partials<R: Reducer>(r: &R, inputs: Inputs) -> Result<ArrayD<R::State>, BoxError> {
    let mut it = inputs.into_iter();
    let first = it.next().ok_or("a merge task has at least one input")?;
    let mut acc =
        take_value::<ArrayD<R::State>>(first).map_err(|_| "input 0 is not a partial reduction")?;
    for (i, v) in it.enumerate() {
        let p = v
            .downcast_ref::<ArrayD<R::State>>()
            .ok_or_else(|| format!("input {} is not a partial reduction", i + 1))?;
        if p.shape() != acc.shape() {
            return Err(format!(
                "partials of shapes {:?} and {:?} cannot be merged",
                acc.shape(),
                p.shape()
            )
            .into());
        }
        Zip::from(&mut acc)
            .and(p)
            .for_each(|a, &b| *a = r.merge(*a, b));
    }
    Ok(acc)
}

/// The partial layers of a reduction: chunk, then `depth - 1` combine levels.
struct Tree<R: Reducer> {
    reducer: Arc<R>,
    plan: Plan,
    /// The input's chunks (kept axes keep them).
    chunks: Chunks,
    /// The last partial level: its name, layer and block grid.
    name: Arc<str>,
    layer: Arc<Layer>,
    grid: Vec<usize>,
}

impl<R: Reducer> Tree<R> {
    fn build(
        x: &Array<R::In>,
        op: &'static str,
        reducer: R,
        axes: &[usize],
        options: &ReduceOptions,
    ) -> Result<Tree<R>> {
        let plan = Plan::new(x, op, &reducer, axes, options)?;
        let reducer = Arc::new(reducer);
        let chunks = x.chunks().clone();
        let state_size = std::mem::size_of::<R::State>() as u64;
        let strides: Arc<[usize]> = plan.strides.clone().into();

        // 1. chunk: one task per input block.
        let (name, layer) = match fused_terms(x, &*reducer) {
            Some(terms) => chunk_layer_from_terms(x, &plan, &reducer, &strides, terms),
            None => {
                let name = plan.name("chunk", 0);
                let tasks: Vec<Task> = chunks
                    .blocks()
                    .map(|idx| {
                        let g = ChunkGeometry::new(&chunks.block_ranges(&idx), &plan.reduced);
                        let lanes = g.lanes() as u64;
                        let (r, strides) = (reducer.clone(), strides.clone());
                        Task::call(
                            Key::chunk(name.clone(), &idx),
                            [x.block_key(&idx)],
                            move |inputs| {
                                let block = block_ref::<R::In>(&inputs, 0)?;
                                Ok(value(chunk_states(&*r, block.view(), &g, &strides)?))
                            },
                        )
                        .with_nbytes(lanes * state_size)
                    })
                    .collect();
                let layer = Layer::new(name.clone(), tasks, vec![x.layer().clone()]);
                (name, layer)
            }
        };
        let mut layer = Arc::new(layer);
        let mut name = name;
        let mut grid = chunks.numblocks();

        // 2. combine: groups of `split` partials per reduced axis, `depth - 1` times.
        for level in 1..plan.depth {
            let new_grid: Vec<usize> = grid
                .iter()
                .zip(&plan.split)
                .map(|(&g, &s)| g.div_ceil(s))
                .collect();
            let new_name = plan.name("partial", level);
            let lane_counts = partial_lanes(&chunks, &plan.reduced);
            let tasks: Vec<Task> =
                grid_product(&new_grid.iter().map(|&n| 0..n).collect::<Vec<_>>())
                    .into_iter()
                    .map(|idx| {
                        let ranges: Vec<Range<usize>> = idx
                            .iter()
                            .zip(&plan.split)
                            .zip(&grid)
                            .map(|((&i, &s), &g)| i * s..((i + 1) * s).min(g))
                            .collect();
                        let deps = grid_product(&ranges)
                            .into_iter()
                            .map(|d| Key::chunk(name.clone(), &d));
                        let r = reducer.clone();
                        let nbytes = lane_counts(&idx) * state_size;
                        Task::call(Key::chunk(new_name.clone(), &idx), deps, move |inputs| {
                            Ok(value(merge_partials(&*r, inputs)?))
                        })
                        .with_nbytes(nbytes)
                    })
                    .collect();
            layer = Arc::new(Layer::new(new_name.clone(), tasks, vec![layer]));
            name = new_name;
            grid = new_grid;
        }
        Ok(Tree {
            reducer,
            plan,
            chunks,
            name,
            layer,
            grid,
        })
    }

    /// The keys of the last level's partials that one output block (kept-axes block index
    /// `kept`, one entry per input axis, ignored on reduced axes) merges.
    fn group(&self, kept: &[usize]) -> Vec<Key> {
        let ranges: Vec<Range<usize>> = (0..self.grid.len())
            .map(|a| {
                if self.plan.reduced[a] {
                    0..self.grid[a]
                } else {
                    kept[a]..kept[a] + 1
                }
            })
            .collect();
        grid_product(&ranges)
            .into_iter()
            .map(|d| Key::chunk(self.name.clone(), &d))
            .collect()
    }

    /// 3. aggregate into an array: kept axes keep their chunks, reduced axes are dropped (or
    ///    one chunk of length 1 with `keepdims`).
    fn into_array(self, keepdims: bool) -> Result<Array<R::Out>>
    where
        R::Out: Element,
    {
        let ndim = self.grid.len();
        let out_axes: Vec<Vec<usize>> = (0..ndim)
            .filter(|&a| keepdims || !self.plan.reduced[a])
            .map(|a| {
                if self.plan.reduced[a] {
                    vec![1]
                } else {
                    self.chunks.axis(a).to_vec()
                }
            })
            .collect();
        let out_chunks = Chunks::new(out_axes)?;
        let name = key_name(
            &format!("{}-aggregate", self.plan.op),
            token_of(&(self.plan.token, "aggregate", keepdims)),
        );
        Ok(Array::from_block_tasks(
            name,
            out_chunks.clone(),
            vec![self.layer.clone()],
            |oidx, key| {
                // The output block's index on every input axis (reduced axes: unused).
                let mut kept = vec![0; ndim];
                let mut o = oidx.iter();
                for (a, k) in kept.iter_mut().enumerate() {
                    if keepdims || !self.plan.reduced[a] {
                        *k = *o.next().expect("one output index per output axis");
                    }
                }
                let deps = self.group(&kept);
                let shape = out_chunks.block_shape(oidx);
                let r = self.reducer.clone();
                Task::call(key, deps, move |inputs| {
                    let states = merge_partials(&*r, inputs)?;
                    let out: Vec<R::Out> = states
                        .iter()
                        .map(|&s| r.finish(s))
                        .collect::<Result<_, _>>()?;
                    Ok(value(ArrayD::from_shape_vec(IxDyn(&shape), out)?))
                })
            },
        ))
    }

    /// 3. aggregate into one scalar (every axis reduced).
    fn into_scalar(self) -> Delayed<R::Out> {
        let key = Key::new(key_name(
            &format!("{}-aggregate", self.plan.op),
            token_of(&(self.plan.token, "scalar")),
        ));
        let deps = self.group(&vec![0; self.grid.len()]);
        let r = self.reducer.clone();
        let task = Task::call(key, deps, move |inputs| {
            let states = merge_partials(&*r, inputs)?;
            let s = *states
                .iter()
                .next()
                .ok_or("a full reduction has one lane")?;
            Ok(value(r.finish(s)?))
        });
        Delayed::from_task(task, vec![self.layer])
    }
}

/// How many lanes (output elements) a partial block at grid index `idx` holds.
fn partial_lanes<'a>(chunks: &'a Chunks, reduced: &'a [bool]) -> impl Fn(&[usize]) -> u64 + 'a {
    move |idx| {
        (0..reduced.len())
            .filter(|&a| !reduced[a])
            .map(|a| chunks.axis(a)[idx[a]] as u64)
            .product()
    }
}

/// Builds an array reduction.
fn reduce_array<R: Reducer>(
    x: &Array<R::In>,
    op: &'static str,
    axes: &[usize],
    options: &ReduceOptions,
    reducer: R,
) -> Result<Array<R::Out>>
where
    R::Out: Element,
{
    Tree::build(x, op, reducer, axes, options)?.into_array(options.keepdims)
}

/// Builds a reduction over every axis into one lazy scalar; an error building it (bad options,
/// an empty array for an identity-less reduction) is raised when it is computed.
fn reduce_scalar<R: Reducer>(
    x: &Array<R::In>,
    op: &'static str,
    options: &ReduceOptions,
    reducer: R,
) -> Delayed<R::Out> {
    let axes: Vec<usize> = (0..x.ndim()).collect();
    match Tree::build(x, op, reducer, &axes, options) {
        Ok(tree) => tree.into_scalar(),
        Err(e) => {
            let message = e.to_string();
            let key = Key::new(key_name(
                &format!("{op}-aggregate"),
                token_of(&(x.name(), op, message.as_str())),
            ));
            Delayed::from_task(
                Task::call(key, Vec::<Key>::new(), move |_| Err(message.clone().into())),
                vec![],
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The public methods

/// The four forms of one reduction: over `axes`, with options, over everything as a scalar,
/// and that with options. `$make(options)` builds the reducer.
macro_rules! reduction {
    (
        $(#[$doc:meta])*
        $name:ident, $with:ident, $all:ident, $all_with:ident -> $out:ty,
        |$opts:ident| $make:expr
    ) => {
        $(#[$doc])*
        pub fn $name(&self, axes: &[usize]) -> Result<Array<$out>> {
            self.$with(axes, &ReduceOptions::default())
        }

        #[doc = concat!("[`Array::", stringify!($name), "`] with [`ReduceOptions`] \
            (`keepdims`, `split_every`, `ddof`).")]
        pub fn $with(&self, axes: &[usize], options: &ReduceOptions) -> Result<Array<$out>> {
            let $opts = options;
            reduce_array(self, stringify!($name), axes, options, $make)
        }

        #[doc = concat!("[`Array::", stringify!($name), "`] over every axis, as a lazy \
            scalar. Errors (such as an empty array where the reduction has no identity) are \
            raised by `compute()`.")]
        pub fn $all(&self) -> Delayed<$out> {
            self.$all_with(&ReduceOptions::default())
        }

        #[doc = concat!("[`Array::", stringify!($all), "`] with [`ReduceOptions`] \
            (`split_every`, `ddof`; `keepdims` does not apply to a scalar).")]
        pub fn $all_with(&self, options: &ReduceOptions) -> Delayed<$out> {
            let $opts = options;
            reduce_scalar(self, stringify!($name), options, $make)
        }
    };
}

fn sum<T>(skip_nan: bool) -> Sum<T> {
    Sum {
        skip_nan,
        _t: PhantomData,
    }
}

fn prod<T>(skip_nan: bool) -> Prod<T> {
    Prod {
        skip_nan,
        _t: PhantomData,
    }
}

fn extreme<T>(max: bool, skip_nan: bool) -> Extreme<T> {
    Extreme {
        max,
        skip_nan,
        _t: PhantomData,
    }
}

fn arg<T, O>(max: bool, skip_nan: bool, out: fn(usize) -> O) -> ArgExtreme<T, O> {
    ArgExtreme {
        max,
        skip_nan,
        out,
        _t: PhantomData,
    }
}

fn mean<T>(skip_nan: bool) -> Mean<T> {
    Mean {
        skip_nan,
        _t: PhantomData,
    }
}

fn var<T>(skip_nan: bool, sqrt: bool, options: &ReduceOptions) -> Var<T> {
    Var {
        skip_nan,
        ddof: options.ddof,
        sqrt,
        _t: PhantomData,
    }
}

/// Sums, products and extremes: the result has the element type.
impl<T: Number> Array<T> {
    reduction! {
        /// The sum over `axes` (numpy's `sum(axis=axes)`); `&[]` reduces nothing. Integers
        /// are summed exactly and a result that does not fit `T` fails the task; floats
        /// accumulate in `f64`. NaN propagates.
        ///
        /// ```
        /// use chunkflow::array;
        /// use ndarray::{ArrayD, IxDyn};
        /// let data = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1i64, 2, 3, 4, 5, 6]).unwrap();
        /// let x = array::from_ndarray(data, [1, 2]).unwrap();
        /// let cols = x.sum(&[0]).unwrap();
        /// assert_eq!(cols.compute().unwrap().as_slice().unwrap(), &[5, 7, 9]);
        /// assert_eq!(x.sum_all().compute().unwrap(), 21);
        /// ```
        ///
        /// # Errors
        /// [`Error::InvalidArgument`] for an axis out of range, an axis listed twice, or
        /// `split_every < 2`.
        sum, sum_with, sum_all, sum_all_with -> T, |_o| sum::<T>(false)
    }

    reduction! {
        /// [`Array::sum`] treating NaN as zero (numpy's `nansum`; the sum of nothing is 0).
        ///
        /// ```
        /// use chunkflow::array;
        /// use ndarray::{ArrayD, IxDyn};
        /// let x = array::from_ndarray(ArrayD::from_shape_vec(IxDyn(&[3]), vec![1.0, f64::NAN, 2.0]).unwrap(), 2).unwrap();
        /// assert!(x.sum_all().compute().unwrap().is_nan());
        /// assert_eq!(x.nansum_all().compute().unwrap(), 3.0);
        /// ```
        nansum, nansum_with, nansum_all, nansum_all_with -> T, |_o| sum::<T>(true)
    }

    reduction! {
        /// The product over `axes` (numpy's `prod`); integers exactly, as for [`Array::sum`].
        /// The product of nothing is 1.
        ///
        /// ```
        /// use chunkflow::array;
        /// let x = array::arange(1i64, 6, 1, 2).unwrap();
        /// assert_eq!(x.prod_all().compute().unwrap(), 120);
        /// ```
        prod, prod_with, prod_all, prod_all_with -> T, |_o| prod::<T>(false)
    }

    reduction! {
        /// [`Array::prod`] treating NaN as one (numpy's `nanprod`).
        nanprod, nanprod_with, nanprod_all, nanprod_all_with -> T, |_o| prod::<T>(true)
    }

    reduction! {
        /// The minimum over `axes` (numpy's `min`/`amin`): NaN if the lane holds a NaN.
        ///
        /// ```
        /// use chunkflow::array;
        /// let x = array::arange(5i32, 15, 1, 3).unwrap();
        /// assert_eq!(x.min_all().compute().unwrap(), 5);
        /// assert_eq!(x.max_all().compute().unwrap(), 14);
        /// let empty = array::zeros::<f64>(&[0], 1).unwrap();
        /// assert!(empty.min(&[0]).is_err()); // no identity, like numpy's ValueError
        /// ```
        ///
        /// # Errors
        /// As [`Array::sum`], plus [`Error::InvalidArgument`] when a zero-length axis is
        /// reduced into a non-empty result.
        min, min_with, min_all, min_all_with -> T, |_o| extreme::<T>(false, false)
    }

    reduction! {
        /// The maximum over `axes` (numpy's `max`/`amax`): NaN if the lane holds a NaN.
        /// Errors as [`Array::min`].
        max, max_with, max_all, max_all_with -> T, |_o| extreme::<T>(true, false)
    }

    reduction! {
        /// The minimum ignoring NaN (numpy's `nanmin`): NaN for an all-NaN lane. Errors as
        /// [`Array::min`].
        nanmin, nanmin_with, nanmin_all, nanmin_all_with -> T, |_o| extreme::<T>(false, true)
    }

    reduction! {
        /// The maximum ignoring NaN (numpy's `nanmax`): NaN for an all-NaN lane. Errors as
        /// [`Array::min`].
        nanmax, nanmax_with, nanmax_all, nanmax_all_with -> T, |_o| extreme::<T>(true, true)
    }
}

/// The four forms of one arg-reduction (one axis, or the flat index over everything).
macro_rules! arg_reduction {
    (
        $(#[$doc:meta])*
        $name:ident, $with:ident, $all:ident, $all_with:ident, max: $max:expr, skip_nan: $skip:expr
    ) => {
        $(#[$doc])*
        pub fn $name(&self, axis: usize) -> Result<Array<i64>> {
            self.$with(axis, &ReduceOptions::default())
        }

        #[doc = concat!("[`Array::", stringify!($name), "`] with [`ReduceOptions`] \
            (`keepdims`, `split_every`).")]
        pub fn $with(&self, axis: usize, options: &ReduceOptions) -> Result<Array<i64>> {
            reduce_array(self, stringify!($name), &[axis], options,
                arg::<T, i64>($max, $skip, |i| i as i64))
        }

        #[doc = concat!("[`Array::", stringify!($name), "`] over the flattened array: the \
            C-order flat index, as a lazy scalar. Errors are raised by `compute()`.")]
        pub fn $all(&self) -> Delayed<usize> {
            self.$all_with(&ReduceOptions::default())
        }

        #[doc = concat!("[`Array::", stringify!($all), "`] with [`ReduceOptions`] \
            (`split_every`).")]
        pub fn $all_with(&self, options: &ReduceOptions) -> Delayed<usize> {
            reduce_scalar(self, stringify!($name), options, arg::<T, usize>($max, $skip, |i| i))
        }
    };
}

/// Positions of extremes: indices along one axis (`i64`, numpy's `intp`) or flat indices.
impl<T: Number> Array<T> {
    arg_reduction! {
        /// The index of the minimum along `axis` (numpy's `argmin(axis=axis)`): the first
        /// occurrence, or the first NaN if the lane holds one.
        ///
        /// ```
        /// use chunkflow::array;
        /// use ndarray::{ArrayD, IxDyn};
        /// let data = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![3, 1, 4, 1, 5, 0]).unwrap();
        /// let x = array::from_ndarray(data, [1, 2]).unwrap();
        /// assert_eq!(x.argmin(1).unwrap().compute().unwrap().as_slice().unwrap(), &[1, 2]);
        /// assert_eq!(x.argmin_all().compute().unwrap(), 5);
        /// assert_eq!(x.argmax_all().compute().unwrap(), 4);
        /// ```
        ///
        /// # Errors
        /// [`Error::InvalidArgument`] for an axis out of range, `split_every < 2`, or an axis
        /// of length 0 with a non-empty result (numpy: "attempt to get argmin of an empty
        /// sequence").
        argmin, argmin_with, argmin_all, argmin_all_with, max: false, skip_nan: false
    }

    arg_reduction! {
        /// The index of the maximum along `axis` (numpy's `argmax`). As [`Array::argmin`].
        argmax, argmax_with, argmax_all, argmax_all_with, max: true, skip_nan: false
    }

    arg_reduction! {
        /// The index of the minimum along `axis` ignoring NaN (numpy's `nanargmin`). An
        /// all-NaN lane fails the computation with "All-NaN slice encountered". Otherwise as
        /// [`Array::argmin`].
        ///
        /// ```
        /// use chunkflow::array;
        /// use ndarray::{ArrayD, IxDyn};
        /// let x = array::from_ndarray(ArrayD::from_shape_vec(IxDyn(&[3]), vec![f64::NAN, 2.0, 1.0]).unwrap(), 1).unwrap();
        /// assert_eq!(x.argmin_all().compute().unwrap(), 0); // NaN wins
        /// assert_eq!(x.nanargmin_all().compute().unwrap(), 2);
        /// ```
        nanargmin, nanargmin_with, nanargmin_all, nanargmin_all_with, max: false, skip_nan: true
    }

    arg_reduction! {
        /// The index of the maximum along `axis` ignoring NaN (numpy's `nanargmax`). As
        /// [`Array::nanargmin`].
        nanargmax, nanargmax_with, nanargmax_all, nanargmax_all_with, max: true, skip_nan: true
    }
}

/// Statistics: results in [`MeanElement::Mean`] (`f32` for `f32`, `f64` otherwise).
impl<T: MeanElement> Array<T> {
    reduction! {
        /// The arithmetic mean over `axes` (numpy's `mean`): NaN for no elements; NaN
        /// propagates.
        ///
        /// ```
        /// use chunkflow::array;
        /// let x = array::arange(0i32, 10, 1, 3).unwrap();
        /// let m: f64 = x.mean_all().compute().unwrap(); // integers give f64
        /// assert_eq!(m, 4.5);
        /// ```
        mean, mean_with, mean_all, mean_all_with -> T::Mean, |_o| mean::<T>(false)
    }

    reduction! {
        /// The mean ignoring NaN (numpy's `nanmean`): NaN for an all-NaN lane.
        nanmean, nanmean_with, nanmean_all, nanmean_all_with -> T::Mean, |_o| mean::<T>(true)
    }

    reduction! {
        /// The variance over `axes` (numpy's `var`): `Σ(x - mean)² / max(n - ddof, 0)` with
        /// `ddof` from [`ReduceOptions`] (default 0), merged across blocks with Chan's parallel
        /// formula. NaN propagates.
        ///
        /// ```
        /// use chunkflow::array::{self, ReduceOptions};
        /// let x = array::arange(1.0f64, 5.0, 1.0, 2).unwrap(); // 1 2 3 4
        /// assert_eq!(x.var_all().compute().unwrap(), 1.25);
        /// let sample = x.var_all_with(&ReduceOptions::new().ddof(1)).compute().unwrap();
        /// assert!((sample - 5.0 / 3.0).abs() < 1e-12);
        /// assert_eq!(x.std_all().compute().unwrap(), 1.25f64.sqrt());
        /// ```
        var, var_with, var_all, var_all_with -> T::Mean, |o| var::<T>(false, false, o)
    }

    reduction! {
        /// The standard deviation: the square root of [`Array::var`].
        std, std_with, std_all, std_all_with -> T::Mean, |o| var::<T>(false, true, o)
    }

    reduction! {
        /// The variance ignoring NaN (numpy's `nanvar`): NaN where `n - ddof <= 0`.
        nanvar, nanvar_with, nanvar_all, nanvar_all_with -> T::Mean, |o| var::<T>(true, false, o)
    }

    reduction! {
        /// The standard deviation ignoring NaN: the square root of [`Array::nanvar`].
        nanstd, nanstd_with, nanstd_all, nanstd_all_with -> T::Mean, |o| var::<T>(true, true, o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_roots_are_exact() {
        assert_eq!(int_root(4, 1), 4);
        assert_eq!(int_root(4, 2), 2);
        assert_eq!(int_root(16, 2), 4);
        assert_eq!(int_root(15, 2), 3);
        assert_eq!(int_root(8, 3), 2);
        assert_eq!(int_root(64, 3), 4); // dask's 64 ** (1/3) rounds down to 3
        assert_eq!(int_root(2, 3), 1);
        assert_eq!(int_root(usize::MAX, 1), usize::MAX);
    }

    #[test]
    fn pairwise_sum_is_numpys_and_skips_nan_on_request() {
        let v: Vec<f64> = (0..1000).map(|i| (i as f64).sin()).collect();
        let exact: f64 = v.iter().sum(); // 1000 terms of size ≤ 1: error far below 1e-12
        assert!((float_sum(&v, false) - exact).abs() < 1e-12);
        assert_eq!(float_sum(&[1.0, 2.0, 3.0], false), 6.0);
        assert_eq!(float_sum::<f64>(&[], false), 0.0);
        let mut w = v.clone();
        w[17] = f64::NAN;
        assert!(float_sum(&w, false).is_nan());
        assert!((float_sum(&w, true) - (exact - v[17])).abs() < 1e-12);
        assert_eq!(float_sum(&[1i32, 2, 3], false), 6.0);
    }

    #[test]
    fn row_wise_reduction_matches_lane_wise() {
        // A C-order (300, 7, 5) block reduced over axis 0 (rows path) and over (0, 1).
        let data: Vec<f64> = (0..300 * 7 * 5)
            .map(|i| {
                if i % 97 == 3 {
                    f64::NAN
                } else {
                    (i as f64 * 0.37).cos()
                }
            })
            .collect();
        let a = ArrayD::from_shape_vec(IxDyn(&[300, 7, 5]), data).unwrap();
        for skip_nan in [false, true] {
            for axes in [vec![0usize], vec![0, 1]] {
                let lanes: usize = (0..3)
                    .filter(|x| !axes.contains(x))
                    .map(|x| a.shape()[x])
                    .product();
                let rows = a.as_slice().unwrap();
                let sums = column_sums(rows, lanes, skip_nan);
                let counts = column_counts(rows, lanes, skip_nan);
                // Reference: gather each lane and sum it.
                let flat = a
                    .view()
                    .into_shape_with_order((rows.len() / lanes, lanes))
                    .unwrap();
                for l in 0..lanes {
                    let lane: Vec<f64> = flat.column(l).to_vec();
                    let want = float_sum(&lane, skip_nan);
                    let n = count(&lane, skip_nan);
                    assert_eq!(counts[l], n);
                    if want.is_nan() {
                        assert!(sums[l].is_nan());
                    } else {
                        assert!((sums[l] - want).abs() < 1e-9, "{} vs {want}", sums[l]);
                    }
                }
            }
        }
        // Variance and extremes: the rows path gives each lane's own result.
        let flat = a.view().into_shape_with_order((300, 35)).unwrap();
        let index = LaneIndex {
            dims: &[300],
            starts: &[0],
            strides: &[1],
        };
        for skip_nan in [false, true] {
            let var = Var::<f64> {
                skip_nan,
                ddof: 1,
                sqrt: false,
                _t: PhantomData,
            };
            let rows = var.chunk_rows(a.as_slice().unwrap(), 35).unwrap();
            for max in [false, true] {
                let ext = Extreme::<f64> {
                    max,
                    skip_nan,
                    _t: PhantomData,
                };
                let got = ext.chunk_rows(a.as_slice().unwrap(), 35).unwrap();
                for (l, g) in got.iter().enumerate() {
                    let want = ext.chunk(&flat.column(l).to_vec(), &index);
                    assert_eq!(g.map(f64::to_bits), want.map(f64::to_bits), "lane {l}");
                }
            }
            for (l, g) in rows.iter().enumerate() {
                let want = var.chunk(&flat.column(l).to_vec(), &index);
                assert_eq!(g.n, want.n, "lane {l}");
                for (x, y) in [(g.mean, want.mean), (g.m2, want.m2)] {
                    assert!(
                        (x.is_nan() && y.is_nan()) || (x - y).abs() < 1e-9,
                        "lane {l}: {x} vs {y}"
                    );
                }
            }
        }
        let ints: Vec<i64> = (0..12).collect();
        let sum = Sum::<i64> {
            skip_nan: false,
            _t: PhantomData,
        };
        let totals = sum.chunk_rows(&ints, 4).unwrap();
        assert_eq!(
            totals.iter().map(|t| t.0).collect::<Vec<_>>(),
            vec![12, 15, 18, 21]
        );
    }

    #[test]
    fn levels_are_ceil_log() {
        assert_eq!(levels(1, 4), 0);
        assert_eq!(levels(4, 4), 1);
        assert_eq!(levels(5, 4), 2);
        assert_eq!(levels(16, 4), 2);
        assert_eq!(levels(10_000, 4), 7);
        assert_eq!(levels(usize::MAX, 2), 64);
    }

    #[test]
    fn lane_index_is_global_c_order() {
        // Reduced shape (4, 5): block covering rows 2..4, columns 1..4.
        let idx = LaneIndex {
            dims: &[2, 3],
            starts: &[2, 1],
            strides: &[5, 1],
        };
        assert_eq!(idx.global(0), 2 * 5 + 1);
        assert_eq!(idx.global(2), 2 * 5 + 3);
        assert_eq!(idx.global(3), 3 * 5 + 1);
        assert_eq!(idx.global(5), 3 * 5 + 3);
    }

    #[test]
    fn chan_merge_matches_direct_moments() {
        let xs = [1.5, -2.0, 3.25, 8.0, 0.0, 4.5, -7.0];
        let r = var::<f64>(false, false, &ReduceOptions::new());
        let no_index = LaneIndex {
            dims: &[],
            starts: &[],
            strides: &[],
        };
        let whole = r.chunk(&xs, &no_index);
        for cut in 0..=xs.len() {
            let (a, b) = xs.split_at(cut);
            let merged = r.merge(r.chunk(a, &no_index), r.chunk(b, &no_index));
            assert_eq!(merged.n, whole.n);
            assert!((merged.mean - whole.mean).abs() < 1e-12);
            assert!((merged.m2 - whole.m2).abs() < 1e-9);
        }
    }

    #[test]
    fn arg_preference_is_nan_then_value_then_index() {
        let r = arg::<f64, usize>(false, false, |i| i);
        assert!(r.prefers((f64::NAN, 9), (-1.0, 0)));
        assert!(r.prefers((f64::NAN, 1), (f64::NAN, 2)));
        assert!(!r.prefers((f64::NAN, 3), (f64::NAN, 2)));
        assert!(r.prefers((1.0, 5), (2.0, 0)));
        assert!(r.prefers((1.0, 4), (1.0, 5)));
        assert!(!r.prefers((1.0, 6), (1.0, 5)));
        let r = arg::<i32, usize>(true, false, |i| i);
        assert!(r.prefers((7, 8), (3, 1)));
    }

    #[test]
    fn integer_products_are_exact_or_overflow() {
        assert_eq!(mul_int(Some(6), Some(7)), Some(42));
        assert_eq!(mul_int(Some(i128::MAX), Some(2)), None);
        assert_eq!(mul_int(None, Some(3)), None);
        assert_eq!(mul_int(None, Some(0)), Some(0));
        assert_eq!(mul_int(Some(0), None), Some(0));
        let r = prod::<i8>(false);
        assert!(
            r.finish(Product {
                int: Some(128),
                float: 1.0
            })
            .is_err()
        );
        assert_eq!(
            r.finish(Product {
                int: Some(-128),
                float: 1.0
            })
            .unwrap(),
            -128
        );
    }

    #[test]
    fn plan_spreads_split_every_over_axes() {
        let x = crate::array::ones::<f64>(&[64, 64], [1, 1]).unwrap();
        let opts = ReduceOptions::new().split_every(16);
        let plan = Plan::new(&x, "sum", &sum::<f64>(false), &[0, 1], &opts).unwrap();
        assert_eq!(plan.split, vec![4, 4]);
        assert_eq!(plan.depth, 3);
        let plan = Plan::new(&x, "sum", &sum::<f64>(false), &[1], &opts).unwrap();
        assert_eq!(plan.split, vec![1, 16]);
        assert_eq!(plan.depth, 2);
        assert_eq!(plan.strides, vec![1]);
        let bad = Plan::new(
            &x,
            "sum",
            &sum::<f64>(false),
            &[0],
            &ReduceOptions::new().split_every(1),
        );
        assert!(bad.is_err());
    }
}
