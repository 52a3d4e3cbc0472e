//! Reductions agree with numpy's semantics, whatever the chunking, axes, fan-in and executor.
//!
//! Every reduction is checked against the same computation done directly on the whole
//! `ndarray` by the small reference implementations below (written lane by lane from numpy's
//! documented behaviour: NaN propagates through `min`/`max`/`argmin`; the `nan*` variants skip
//! it; `var` divides by `max(n - ddof, 0)`, `nanvar` is NaN where `n - ddof <= 0`; ...).
//!
//! Property tests draw 1–4-d shapes (occasionally with an empty axis), per-axis chunk sizes
//! normalised by `Chunks::normalize` or random irregular partitions, a random subset of axes in
//! random order, `keepdims`, `split_every` in 2..=8, `ddof` in 0..=2, and the sequential or the
//! 2-thread executor, on `f64` data with NaNs, on `i64` and on `f32`.
//!
//! Float tolerance: results may differ from the reference by summation order only, so `f64`
//! values must satisfy `|a - b| <= 1e-9 * (1 + max(|a|, |b|))` and `f32` values
//! `|a - b| <= 1e-4 * (1 + max(|a|, |b|))`; NaN must match NaN and infinities match exactly.
//! Selections (`min`, `max`, arg-reductions) and integer results must match exactly.

use chunkflow::array::{self, Array, ChunkSpec, Chunks, Dim, ReduceOptions};
use chunkflow::graph::{FreezeOptions, TaskGraph};
use chunkflow::prelude::*;
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Reference implementations (lane by lane, on the whole array)
// ---------------------------------------------------------------------------------------------

/// The lanes of `data` over `axes`: for each output element (C order over the kept axes), its
/// elements in C order over the reduced axes. Also returns the output shape.
fn lanes<T: Copy>(data: &ArrayD<T>, axes: &[usize], keepdims: bool) -> (Vec<usize>, Vec<Vec<T>>) {
    let ndim = data.ndim();
    let kept: Vec<usize> = (0..ndim).filter(|a| !axes.contains(a)).collect();
    let kept_shape: Vec<usize> = kept.iter().map(|&a| data.shape()[a]).collect();
    let n_out: usize = kept_shape.iter().product();
    let mut out: Vec<Vec<T>> = vec![Vec::new(); n_out];
    // indexed_iter walks the whole array in C order, so each lane fills in C order too.
    for (idx, &v) in data.indexed_iter() {
        let mut flat = 0;
        for (&a, &len) in kept.iter().zip(&kept_shape) {
            flat = flat * len + idx[a];
        }
        out[flat].push(v);
    }
    let shape = (0..ndim)
        .filter_map(|a| {
            if !axes.contains(&a) {
                Some(data.shape()[a])
            } else if keepdims {
                Some(1)
            } else {
                None
            }
        })
        .collect();
    (shape, out)
}

/// Applies a lane function to every lane.
fn reference<T: Copy, U>(
    data: &ArrayD<T>,
    axes: &[usize],
    keepdims: bool,
    f: impl Fn(&[T]) -> U,
) -> ArrayD<U> {
    let (shape, lanes) = lanes(data, axes, keepdims);
    ArrayD::from_shape_vec(IxDyn(&shape), lanes.iter().map(|l| f(l)).collect()).unwrap()
}

fn not_nan(l: &[f64]) -> Vec<f64> {
    l.iter().copied().filter(|v| !v.is_nan()).collect()
}

fn r_sum(l: &[f64]) -> f64 {
    l.iter().fold(0.0, |a, &b| a + b)
}
fn r_nansum(l: &[f64]) -> f64 {
    r_sum(&not_nan(l))
}
fn r_prod(l: &[f64]) -> f64 {
    l.iter().fold(1.0, |a, &b| a * b)
}
fn r_nanprod(l: &[f64]) -> f64 {
    r_prod(&not_nan(l))
}
fn r_mean(l: &[f64]) -> f64 {
    r_sum(l) / l.len() as f64
}
fn r_nanmean(l: &[f64]) -> f64 {
    r_mean(&not_nan(l))
}
/// numpy's `var`: Σ(x - mean)² / max(n - ddof, 0).
fn r_var(l: &[f64], ddof: usize) -> f64 {
    let m = r_mean(l);
    let m2: f64 = l.iter().fold(0.0, |a, &x| a + (x - m) * (x - m));
    m2 / (l.len() as f64 - ddof as f64).max(0.0)
}
/// numpy's `nanvar`: NaN where n - ddof <= 0.
fn r_nanvar(l: &[f64], ddof: usize) -> f64 {
    let l = not_nan(l);
    if l.len() as f64 - ddof as f64 <= 0.0 {
        f64::NAN
    } else {
        r_var(&l, ddof)
    }
}
fn r_min(l: &[f64]) -> f64 {
    if l.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    l.iter().copied().fold(f64::INFINITY, f64::min)
}
fn r_max(l: &[f64]) -> f64 {
    if l.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    l.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}
fn r_nanmin(l: &[f64]) -> f64 {
    let l = not_nan(l);
    if l.is_empty() { f64::NAN } else { r_min(&l) }
}
fn r_nanmax(l: &[f64]) -> f64 {
    let l = not_nan(l);
    if l.is_empty() { f64::NAN } else { r_max(&l) }
}
/// numpy's `argmin`: the first NaN, else the first minimum.
fn r_argmin(l: &[f64]) -> Option<usize> {
    if let Some(i) = l.iter().position(|v| v.is_nan()) {
        return Some(i);
    }
    let m = r_min(l);
    l.iter().position(|&v| v == m)
}
fn r_argmax(l: &[f64]) -> Option<usize> {
    if let Some(i) = l.iter().position(|v| v.is_nan()) {
        return Some(i);
    }
    let m = r_max(l);
    l.iter().position(|&v| v == m)
}
/// numpy's `nanargmin`: the first minimum of the non-NaN values; none if all are NaN.
fn r_nanargmin(l: &[f64]) -> Option<usize> {
    let m = r_nanmin(l);
    l.iter().position(|&v| v == m)
}
fn r_nanargmax(l: &[f64]) -> Option<usize> {
    let m = r_nanmax(l);
    l.iter().position(|&v| v == m)
}

// ---------------------------------------------------------------------------------------------
// Comparisons
// ---------------------------------------------------------------------------------------------

fn close(a: f64, b: f64, rtol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= rtol * (1.0 + a.abs().max(b.abs()))
}

fn assert_close(what: &str, got: &ArrayD<f64>, want: &ArrayD<f64>, rtol: f64) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        assert!(
            close(*g, *w, rtol),
            "{what}: element {i}: got {g}, want {w}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Test cases
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Case {
    shape: Vec<usize>,
    /// Per axis: a chunk size for `Chunks::normalize`, or explicit irregular sizes.
    chunks: Vec<Result<usize, Vec<usize>>>,
    axes: Vec<usize>,
    arg_axis: usize,
    keepdims: bool,
    split_every: usize,
    ddof: usize,
    threaded: bool,
    floats: Vec<f64>,
    ints: Vec<i64>,
}

impl Case {
    fn chunks(&self) -> Chunks {
        let explicit = self.chunks.iter().any(|c| c.is_err());
        if explicit {
            let sizes = self
                .chunks
                .iter()
                .zip(&self.shape)
                .map(|(c, &len)| match c {
                    Err(sizes) => sizes.clone(),
                    Ok(s) => Chunks::regular(&[len], &[*s]).unwrap().axis(0).to_vec(),
                })
                .collect();
            Chunks::normalize(ChunkSpec::explicit(sizes), &self.shape, 8, None).unwrap()
        } else {
            let dims = self
                .chunks
                .iter()
                .map(|c| Dim::Size(*c.as_ref().unwrap()))
                .collect();
            Chunks::normalize(ChunkSpec::per_axis(dims), &self.shape, 8, None).unwrap()
        }
    }

    fn options(&self) -> ReduceOptions {
        ReduceOptions::new()
            .keepdims(self.keepdims)
            .split_every(self.split_every)
            .ddof(self.ddof)
    }

    fn compute(&self) -> ComputeOptions {
        if self.threaded {
            ComputeOptions::default().threads(2)
        } else {
            ComputeOptions::default().executor(Sequential)
        }
    }

    fn floats(&self) -> ArrayD<f64> {
        ArrayD::from_shape_vec(IxDyn(&self.shape), self.floats.clone()).unwrap()
    }

    fn ints(&self) -> ArrayD<i64> {
        ArrayD::from_shape_vec(IxDyn(&self.shape), self.ints.clone()).unwrap()
    }

    /// Whether some output element reduces no input (identity-less reductions must fail).
    fn empty_lanes(&self, axes: &[usize]) -> bool {
        let lane: usize = axes.iter().map(|&a| self.shape[a]).product();
        let out: usize = (0..self.shape.len())
            .filter(|a| !axes.contains(a))
            .map(|a| self.shape[a])
            .product();
        lane == 0 && out > 0
    }
}

/// A random partition of `len` into chunk sizes (the single chunk `[0]` for an empty axis).
fn partition(len: usize) -> BoxedStrategy<Vec<usize>> {
    if len <= 1 {
        return Just(vec![len]).boxed();
    }
    prop::collection::vec(any::<bool>(), len - 1)
        .prop_map(move |cuts| {
            let mut sizes = vec![];
            let mut run = 1;
            for cut in cuts {
                if cut {
                    sizes.push(run);
                    run = 1;
                } else {
                    run += 1;
                }
            }
            sizes.push(run);
            sizes
        })
        .boxed()
}

fn axis_chunks(len: usize) -> BoxedStrategy<Result<usize, Vec<usize>>> {
    prop_oneof![
        3 => (1..=len.max(1)).prop_map(Ok),
        1 => partition(len).prop_map(Err),
    ]
    .boxed()
}

fn float_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => (-500i32..=500).prop_map(|v| v as f64 / 10.0),
        1 => -50.0..50.0f64,
        1 => Just(f64::NAN),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let len = prop_oneof![12 => 1usize..=5, 1 => Just(0usize)];
    prop::collection::vec(len, 1..=4).prop_flat_map(|shape| {
        let n: usize = shape.iter().product();
        let ndim = shape.len();
        let chunks: Vec<_> = shape.iter().map(|&l| axis_chunks(l)).collect();
        let axes =
            prop::sample::subsequence((0..ndim).collect::<Vec<_>>(), 0..=ndim).prop_shuffle();
        (
            Just(shape),
            chunks,
            axes,
            0..ndim,
            any::<bool>(),
            2usize..=8,
            0usize..=2,
            any::<bool>(),
            prop::collection::vec(float_value(), n),
            prop::collection::vec(-20i64..=20, n),
        )
            .prop_map(
                |(
                    shape,
                    chunks,
                    axes,
                    arg_axis,
                    keepdims,
                    split_every,
                    ddof,
                    threaded,
                    floats,
                    ints,
                )| Case {
                    shape,
                    chunks,
                    axes,
                    arg_axis,
                    keepdims,
                    split_every,
                    ddof,
                    threaded,
                    floats,
                    ints,
                },
            )
    })
}

type FloatReduction = fn(&Array<f64>, &[usize], &ReduceOptions) -> chunkflow::Result<Array<f64>>;
type FloatScalar = fn(&Array<f64>, &ReduceOptions) -> Delayed<f64>;

/// A reference lane function.
type LaneFn = Box<dyn Fn(&[f64]) -> f64>;

/// One float reduction under test: its array and scalar forms and its lane reference.
struct FloatOp {
    name: &'static str,
    array: FloatReduction,
    scalar: FloatScalar,
    lane: LaneFn,
    /// Whether it has an identity (reducing nothing is fine); min/max do not.
    identity: bool,
}

fn op(
    name: &'static str,
    array: FloatReduction,
    scalar: FloatScalar,
    lane: impl Fn(&[f64]) -> f64 + 'static,
    identity: bool,
) -> FloatOp {
    FloatOp {
        name,
        array,
        scalar,
        lane: Box::new(lane),
        identity,
    }
}

/// Every float reduction except the products (see [`check_products`]).
fn float_reductions(ddof: usize) -> Vec<FloatOp> {
    vec![
        op("sum", Array::sum_with, Array::sum_all_with, r_sum, true),
        op(
            "nansum",
            Array::nansum_with,
            Array::nansum_all_with,
            r_nansum,
            true,
        ),
        op("mean", Array::mean_with, Array::mean_all_with, r_mean, true),
        op(
            "nanmean",
            Array::nanmean_with,
            Array::nanmean_all_with,
            r_nanmean,
            true,
        ),
        op(
            "var",
            Array::var_with,
            Array::var_all_with,
            move |l| r_var(l, ddof),
            true,
        ),
        op(
            "nanvar",
            Array::nanvar_with,
            Array::nanvar_all_with,
            move |l| r_nanvar(l, ddof),
            true,
        ),
        op(
            "std",
            Array::std_with,
            Array::std_all_with,
            move |l| r_var(l, ddof).sqrt(),
            true,
        ),
        op(
            "nanstd",
            Array::nanstd_with,
            Array::nanstd_all_with,
            move |l| r_nanvar(l, ddof).sqrt(),
            true,
        ),
        op("min", Array::min_with, Array::min_all_with, r_min, false),
        op("max", Array::max_with, Array::max_all_with, r_max, false),
        op(
            "nanmin",
            Array::nanmin_with,
            Array::nanmin_all_with,
            r_nanmin,
            false,
        ),
        op(
            "nanmax",
            Array::nanmax_with,
            Array::nanmax_all_with,
            r_nanmax,
            false,
        ),
    ]
}

type ArgReduction = fn(&Array<f64>, usize, &ReduceOptions) -> chunkflow::Result<Array<i64>>;
type ArgScalar = fn(&Array<f64>, &ReduceOptions) -> Delayed<usize>;

/// One arg-reduction under test.
struct ArgOp {
    name: &'static str,
    array: ArgReduction,
    scalar: ArgScalar,
    /// The lane's answer; `None` where numpy raises (an all-NaN lane for the nan variants).
    lane: fn(&[f64]) -> Option<usize>,
}

fn arg_reductions() -> Vec<ArgOp> {
    let op = |name, array, scalar, lane| ArgOp {
        name,
        array,
        scalar,
        lane,
    };
    vec![
        op(
            "argmin",
            Array::argmin_with,
            Array::argmin_all_with,
            r_argmin,
        ),
        op(
            "argmax",
            Array::argmax_with,
            Array::argmax_all_with,
            r_argmax,
        ),
        op(
            "nanargmin",
            Array::nanargmin_with,
            Array::nanargmin_all_with,
            r_nanargmin,
        ),
        op(
            "nanargmax",
            Array::nanargmax_with,
            Array::nanargmax_all_with,
            r_nanargmax,
        ),
    ]
}

fn check_floats(c: &Case) {
    let data = c.floats();
    let x = array::from_ndarray(data.clone(), c.chunks()).unwrap();
    let (opts, run) = (c.options(), c.compute());
    let all: Vec<usize> = (0..c.shape.len()).collect();
    for FloatOp {
        name,
        array: reduce,
        scalar,
        lane,
        identity,
    } in float_reductions(c.ddof)
    {
        let what = format!("{name} over {:?} of {:?} ({c:?})", c.axes, x.chunks());
        let built = reduce(&x, &c.axes, &opts);
        if !identity && c.empty_lanes(&c.axes) {
            let err = built.expect_err(&what).to_string();
            assert!(err.contains("zero-size array"), "{what}: {err}");
        } else {
            let got = built.expect(&what).compute_with(&run).expect(&what);
            assert_close(
                &what,
                &got,
                &reference(&data, &c.axes, c.keepdims, &lane),
                1e-9,
            );
        }
        // The scalar form reduces every axis.
        let what = format!("{name}_all of {:?} ({c:?})", x.chunks());
        let got = scalar(&x, &opts).compute_with(&run);
        if !identity && c.empty_lanes(&all) {
            assert!(
                got.unwrap_err().to_string().contains("zero-size array"),
                "{what}"
            );
        } else {
            let want = reference(&data, &all, false, &lane);
            assert!(
                close(got.expect(&what), want[[]], 1e-9),
                "{what}: want {}",
                want[[]]
            );
        }
    }
}

/// Products, on data mapped into [0.5, 1.5] so no lane under- or overflows in any order.
fn check_products(c: &Case) {
    let data = c.floats().mapv(|v| 1.0 + v / 100.0);
    let x = array::from_ndarray(data.clone(), c.chunks()).unwrap();
    let (opts, run) = (c.options(), c.compute());
    let all: Vec<usize> = (0..c.shape.len()).collect();
    let products = [
        op("prod", Array::prod_with, Array::prod_all_with, r_prod, true),
        op(
            "nanprod",
            Array::nanprod_with,
            Array::nanprod_all_with,
            r_nanprod,
            true,
        ),
    ];
    for FloatOp {
        name,
        array: reduce,
        scalar,
        lane,
        ..
    } in products
    {
        let what = format!("{name} over {:?} of {:?} ({c:?})", c.axes, x.chunks());
        let got = reduce(&x, &c.axes, &opts)
            .unwrap()
            .compute_with(&run)
            .unwrap();
        assert_close(
            &what,
            &got,
            &reference(&data, &c.axes, c.keepdims, &lane),
            1e-9,
        );
        let got = scalar(&x, &opts).compute_with(&run).unwrap();
        let want = reference(&data, &all, false, &lane)[[]];
        assert!(close(got, want, 1e-9), "{what}: got {got}, want {want}");
    }
}

fn check_args(c: &Case) {
    let data = c.floats();
    let x = array::from_ndarray(data.clone(), c.chunks()).unwrap();
    let (opts, run) = (c.options(), c.compute());
    let axis = [c.arg_axis];
    let all: Vec<usize> = (0..c.shape.len()).collect();
    for ArgOp {
        name,
        array: reduce,
        scalar,
        lane,
    } in arg_reductions()
    {
        let what = format!("{name} along {} of {:?} ({c:?})", c.arg_axis, x.chunks());
        let built = reduce(&x, c.arg_axis, &opts);
        if c.empty_lanes(&axis) {
            let err = built.expect_err(&what).to_string();
            assert!(err.contains("empty sequence"), "{what}: {err}");
        } else {
            let want = reference(&data, &axis, c.keepdims, lane);
            let got = built.expect(&what).compute_with(&run);
            if want.iter().any(Option::is_none) {
                let err = got.expect_err(&what).to_string();
                assert!(err.contains("All-NaN slice encountered"), "{what}: {err}");
            } else {
                let want = want.mapv(|i| i.unwrap() as i64);
                assert_eq!(got.expect(&what), want, "{what}");
            }
        }
        let what = format!("{name}_all of {:?} ({c:?})", x.chunks());
        let got = scalar(&x, &opts).compute_with(&run);
        if c.empty_lanes(&all) {
            assert!(
                got.unwrap_err().to_string().contains("empty sequence"),
                "{what}"
            );
        } else {
            match reference(&data, &all, false, lane)[[]] {
                Some(i) => assert_eq!(got.expect(&what), i, "{what}"),
                None => assert!(got.is_err(), "{what}"),
            }
        }
    }
}

fn check_ints(c: &Case) {
    let data = c.ints();
    let x = array::from_ndarray(data.clone(), c.chunks()).unwrap();
    let (opts, run) = (c.options(), c.compute());
    let axes = &c.axes;
    let as_f = |l: &[i64]| l.iter().map(|&v| v as f64).collect::<Vec<_>>();
    let what = format!("ints over {axes:?} of {:?} ({c:?})", x.chunks());

    // Integer sums stay integers and are exact; nansum is sum.
    let want = reference(&data, axes, c.keepdims, |l| l.iter().sum::<i64>());
    assert_eq!(
        x.sum_with(axes, &opts).unwrap().compute_with(&run).unwrap(),
        want,
        "sum {what}"
    );
    assert_eq!(
        x.nansum_with(axes, &opts)
            .unwrap()
            .compute_with(&run)
            .unwrap(),
        want,
        "nansum {what}"
    );

    // Products are exact or fail: the reference multiplies in i128 (a zero anywhere gives 0,
    // whatever overflowed before it).
    let exact = reference(&data, axes, c.keepdims, |l| {
        if l.contains(&0) {
            return Some(0);
        }
        l.iter()
            .try_fold(1i128, |p, &v| p.checked_mul(v as i128))
            .and_then(|p| i64::try_from(p).ok())
    });
    let got = x.prod_with(axes, &opts).unwrap().compute_with(&run);
    if exact.iter().all(Option::is_some) {
        assert_eq!(got.unwrap(), exact.mapv(Option::unwrap), "prod {what}");
    } else {
        assert!(
            got.unwrap_err().to_string().contains("overflows int64"),
            "prod {what}"
        );
    }

    // Mean and variance of integers are f64.
    let mean: ArrayD<f64> = x
        .mean_with(axes, &opts)
        .unwrap()
        .compute_with(&run)
        .unwrap();
    assert_close(
        &what,
        &mean,
        &reference(&data, axes, c.keepdims, |l| r_mean(&as_f(l))),
        1e-9,
    );
    // numpy's nanvar of integers is var (n <= ddof gives inf or NaN, not always NaN).
    let want = reference(&data, axes, c.keepdims, |l| r_var(&as_f(l), c.ddof));
    for reduce in [Array::var_with, Array::nanvar_with] {
        let var: ArrayD<f64> = reduce(&x, axes, &opts).unwrap().compute_with(&run).unwrap();
        assert_close(&what, &var, &want, 1e-9);
    }

    if !c.empty_lanes(axes) {
        let want = reference(&data, axes, c.keepdims, |l| *l.iter().min().unwrap());
        assert_eq!(
            x.min_with(axes, &opts).unwrap().compute_with(&run).unwrap(),
            want,
            "min {what}"
        );
        assert_eq!(
            x.nanmin_with(axes, &opts)
                .unwrap()
                .compute_with(&run)
                .unwrap(),
            want,
            "nanmin {what}"
        );
        let want = reference(&data, axes, c.keepdims, |l| *l.iter().max().unwrap());
        assert_eq!(
            x.max_with(axes, &opts).unwrap().compute_with(&run).unwrap(),
            want,
            "max {what}"
        );
    }
    if !c.empty_lanes(&[c.arg_axis]) {
        let want = reference(&data, &[c.arg_axis], c.keepdims, |l| {
            let m = l.iter().max().unwrap();
            l.iter().position(|v| v == m).unwrap() as i64
        });
        let got = x
            .argmax_with(c.arg_axis, &opts)
            .unwrap()
            .compute_with(&run)
            .unwrap();
        assert_eq!(got, want, "argmax {what}");
    }
}

fn check_f32(c: &Case) {
    let data = c.floats().mapv(|v| v as f32);
    let x = array::from_ndarray(data.clone(), c.chunks()).unwrap();
    let (opts, run) = (c.options(), c.compute());
    let wide = data.mapv(|v| v as f64);
    let what = format!("f32 over {:?} of {:?} ({c:?})", c.axes, x.chunks());
    let to_f64 = |a: ArrayD<f32>| a.mapv(|v| v as f64);
    // Float32 reductions stay float32 (numpy's rule for sum, mean and var).
    let sum: ArrayD<f32> = x
        .nansum_with(&c.axes, &opts)
        .unwrap()
        .compute_with(&run)
        .unwrap();
    assert_close(
        &what,
        &to_f64(sum),
        &reference(&wide, &c.axes, c.keepdims, r_nansum),
        1e-4,
    );
    let mean: ArrayD<f32> = x
        .mean_with(&c.axes, &opts)
        .unwrap()
        .compute_with(&run)
        .unwrap();
    assert_close(
        &what,
        &to_f64(mean),
        &reference(&wide, &c.axes, c.keepdims, r_mean),
        1e-4,
    );
    let std: ArrayD<f32> = x
        .nanstd_with(&c.axes, &opts)
        .unwrap()
        .compute_with(&run)
        .unwrap();
    let want = reference(&wide, &c.axes, c.keepdims, |l| r_nanvar(l, c.ddof).sqrt());
    assert_close(&what, &to_f64(std), &want, 1e-4);
    if !c.empty_lanes(&c.axes) {
        let max: ArrayD<f32> = x
            .max_with(&c.axes, &opts)
            .unwrap()
            .compute_with(&run)
            .unwrap();
        assert_close(
            &what,
            &to_f64(max),
            &reference(&wide, &c.axes, c.keepdims, r_max),
            0.0,
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn float_reductions_match_the_reference(c in case()) {
        check_floats(&c);
        check_products(&c);
    }

    #[test]
    fn arg_reductions_match_the_reference(c in case()) {
        check_args(&c);
    }

    #[test]
    fn integer_reductions_are_exact(c in case()) {
        check_ints(&c);
    }

    #[test]
    fn float32_reductions_stay_float32(c in case()) {
        check_f32(&c);
    }
}

// ---------------------------------------------------------------------------------------------
// Tree shape
// ---------------------------------------------------------------------------------------------

/// The number of tasks on the longest dependency path of a frozen graph.
fn longest_path(g: &TaskGraph) -> usize {
    let mut depth = vec![0usize; g.len()];
    for id in g.static_order() {
        let d = g
            .deps(id)
            .iter()
            .map(|&p| depth[p as usize])
            .max()
            .unwrap_or(0);
        depth[id as usize] = d + 1;
    }
    depth.into_iter().max().unwrap_or(0)
}

/// The distinct layer labels of a graph's keys (`"sum-partial"`, ...), with their task counts.
fn label_counts(g: &TaskGraph) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for k in g.keys() {
        *out.entry(k.label().to_string()).or_insert(0) += 1;
    }
    out
}

#[test]
fn tree_over_ten_thousand_chunks_is_logarithmic() {
    // Stored values (ones() would be streamed into the chunk step, leaving no input layer).
    let x = array::from_ndarray(ArrayD::from_elem(IxDyn(&[10_000]), 1.0), 1).unwrap();
    assert_eq!(x.num_chunks(), 10_000);
    let opts = ReduceOptions::new().split_every(4);
    let s = x.sum_with(&[0], &opts).unwrap();
    let g = s.graph(FreezeOptions { fuse: false }).unwrap();
    // ceil(log4(10000)) = 7: one chunk layer, 6 combine layers, one aggregate layer (dask's
    // shape), plus the layer that makes the input.
    let bound = (10_000f64.ln() / 4f64.ln()).ceil() as usize + 1;
    assert_eq!(bound, 8);
    let reduction_levels = longest_path(&g) - 1;
    assert!(reduction_levels <= bound, "{reduction_levels} levels");
    assert_eq!(reduction_levels, 8);
    let labels = label_counts(&g);
    assert_eq!(labels["sum-chunk"], 10_000);
    // 10000 → 2500 → 625 → 157 → 40 → 10 → 3 partials, then one aggregate.
    assert_eq!(labels["sum-partial"], 2500 + 625 + 157 + 40 + 10 + 3);
    assert_eq!(labels["sum-aggregate"], 1);
    // No task merges more than split_every partials.
    for id in 0..g.len() as u32 {
        if g.key(id).label() != "sum-chunk" {
            assert!(
                g.deps(id).len() <= 4,
                "{} has {} inputs",
                g.key(id),
                g.deps(id).len()
            );
        }
    }

    // The default fan-in is dask's 4; the scalar form has the same depth.
    let d = x.sum_all();
    assert_eq!(longest_path(&d.graph().unwrap()) - 1, 8);
    let wide = x
        .sum_with(&[0], &ReduceOptions::new().split_every(100))
        .unwrap();
    assert_eq!(
        longest_path(&wide.graph(FreezeOptions { fuse: false }).unwrap()) - 1,
        3
    );
}

#[test]
fn reductions_over_ten_thousand_chunks_compute() {
    let x = array::arange(0i64, 10_000, 1, 1).unwrap();
    let y = x.astype::<f64>();
    for run in [
        ComputeOptions::default().executor(Sequential),
        ComputeOptions::default().threads(2),
    ] {
        assert_eq!(x.sum_all().compute_with(&run).unwrap(), 49_995_000);
        assert_eq!(x.max_all().compute_with(&run).unwrap(), 9_999);
        assert_eq!(x.argmax_all().compute_with(&run).unwrap(), 9_999);
        assert_eq!(y.argmin_all().compute_with(&run).unwrap(), 0);
        assert_eq!(x.mean_all().compute_with(&run).unwrap(), 4_999.5);
        let var = y.var_all().compute_with(&run).unwrap();
        let want = (10_000f64 * 10_000.0 - 1.0) / 12.0;
        assert!((var - want).abs() <= 1e-9 * want, "{var} vs {want}");
        let s = x
            .sum_with(&[0], &ReduceOptions::new().keepdims(true))
            .unwrap();
        assert_eq!(
            s.compute_with(&run).unwrap().into_raw_vec_and_offset().0,
            vec![49_995_000]
        );
    }
}

#[test]
fn multi_axis_fan_in_is_spread_over_axes() {
    // split_every 16 over 2 axes: groups of 4 x 4 partials.
    let x = array::ones::<f64>(&[64, 64], [1, 1]).unwrap();
    let s = x
        .sum_with(&[0, 1], &ReduceOptions::new().split_every(16))
        .unwrap();
    let g = s.graph(FreezeOptions { fuse: false }).unwrap();
    let labels = label_counts(&g);
    assert_eq!(labels["sum-partial"], 16 * 16 + 4 * 4);
    assert_eq!(labels["sum-aggregate"], 1);
    assert_eq!(s.compute().unwrap()[[]], 4096.0);
}

// ---------------------------------------------------------------------------------------------
// Semantics
// ---------------------------------------------------------------------------------------------

fn vector(v: Vec<f64>, chunk: usize) -> Array<f64> {
    let n = v.len();
    array::from_ndarray(ArrayD::from_shape_vec(IxDyn(&[n]), v).unwrap(), chunk).unwrap()
}

#[test]
fn nan_propagates_through_plain_reductions() {
    let nan = f64::NAN;
    let x = vector(vec![3.0, 1.0, nan, 0.5, nan, 7.0], 2);
    assert!(x.sum_all().compute().unwrap().is_nan());
    assert!(x.prod_all().compute().unwrap().is_nan());
    assert!(x.mean_all().compute().unwrap().is_nan());
    assert!(x.var_all().compute().unwrap().is_nan());
    assert!(x.std_all().compute().unwrap().is_nan());
    assert!(x.min_all().compute().unwrap().is_nan());
    assert!(x.max_all().compute().unwrap().is_nan());
    // argmin/argmax: the first NaN.
    assert_eq!(x.argmin_all().compute().unwrap(), 2);
    assert_eq!(x.argmax_all().compute().unwrap(), 2);
    // The nan variants skip it.
    assert_eq!(x.nansum_all().compute().unwrap(), 11.5);
    assert_eq!(x.nanprod_all().compute().unwrap(), 10.5);
    assert_eq!(x.nanmean_all().compute().unwrap(), 11.5 / 4.0);
    assert_eq!(x.nanmin_all().compute().unwrap(), 0.5);
    assert_eq!(x.nanmax_all().compute().unwrap(), 7.0);
    assert_eq!(x.nanargmin_all().compute().unwrap(), 3);
    assert_eq!(x.nanargmax_all().compute().unwrap(), 5);
    let m = 11.5 / 4.0;
    let want = [3.0, 1.0, 0.5, 7.0]
        .iter()
        .map(|v| (v - m) * (v - m))
        .sum::<f64>()
        / 3.0;
    let got = x
        .nanvar_all_with(&ReduceOptions::new().ddof(1))
        .compute()
        .unwrap();
    assert!((got - want).abs() < 1e-12);
}

#[test]
fn all_nan_lanes_follow_numpy() {
    let nan = f64::NAN;
    // Column 0 is all NaN, column 1 is not.
    let data = ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![nan, 1.0, nan, 2.0, nan, nan]).unwrap();
    let x = array::from_ndarray(data, [1, 1]).unwrap();
    let col = |a: Array<f64>| a.compute().unwrap().into_raw_vec_and_offset().0;
    assert_eq!(col(x.nansum(&[0]).unwrap()), vec![0.0, 3.0]);
    assert_eq!(col(x.nanprod(&[0]).unwrap()), vec![1.0, 2.0]);
    let mean = col(x.nanmean(&[0]).unwrap());
    assert!(mean[0].is_nan() && mean[1] == 1.5);
    let min = col(x.nanmin(&[0]).unwrap());
    assert!(min[0].is_nan() && min[1] == 1.0);
    let max = col(x.nanmax(&[0]).unwrap());
    assert!(max[0].is_nan() && max[1] == 2.0);
    let var = col(x.nanvar(&[0]).unwrap());
    assert!(var[0].is_nan() && var[1] == 0.25);
    // nanargmin of an all-NaN slice is numpy's ValueError, raised when computed.
    let err = x.nanargmin(0).unwrap().compute().unwrap_err();
    assert!(
        err.to_string().contains("All-NaN slice encountered"),
        "{err}"
    );
    let all_nan = vector(vec![nan, nan, nan], 2);
    let err = all_nan.nanargmax_all().compute().unwrap_err();
    assert!(
        err.to_string().contains("All-NaN slice encountered"),
        "{err}"
    );
    assert!(all_nan.nanmean_all().compute().unwrap().is_nan());
    assert!(all_nan.nanmin_all().compute().unwrap().is_nan());
    assert_eq!(all_nan.nansum_all().compute().unwrap(), 0.0);
}

#[test]
fn ddof_edges_follow_numpy() {
    let x = vector(vec![1.0, 2.0], 1);
    // var: divide by max(n - ddof, 0): positive / 0 = inf.
    let v = x
        .var_all_with(&ReduceOptions::new().ddof(2))
        .compute()
        .unwrap();
    assert_eq!(v, f64::INFINITY);
    let v = x
        .var_all_with(&ReduceOptions::new().ddof(5))
        .compute()
        .unwrap();
    assert_eq!(v, f64::INFINITY);
    // nanvar: NaN where n - ddof <= 0.
    assert!(
        x.nanvar_all_with(&ReduceOptions::new().ddof(2))
            .compute()
            .unwrap()
            .is_nan()
    );
    // 0 / 0.
    let one = vector(vec![4.0], 1);
    assert!(
        one.var_all_with(&ReduceOptions::new().ddof(1))
            .compute()
            .unwrap()
            .is_nan()
    );
    assert_eq!(one.var_all().compute().unwrap(), 0.0);
    // On integers numpy's nanvar is var.
    let ints = array::arange(1i64, 3, 1, 1).unwrap();
    let v = ints
        .nanvar_all_with(&ReduceOptions::new().ddof(2))
        .compute()
        .unwrap();
    assert_eq!(v, f64::INFINITY);
    assert_eq!(
        x.std_all_with(&ReduceOptions::new().ddof(1))
            .compute()
            .unwrap(),
        0.5f64.sqrt()
    );
}

#[test]
fn empty_arrays_follow_numpy() {
    let x = array::zeros::<f64>(&[0], 1).unwrap();
    assert_eq!(x.sum_all().compute().unwrap(), 0.0);
    assert_eq!(x.prod_all().compute().unwrap(), 1.0);
    assert!(x.mean_all().compute().unwrap().is_nan());
    assert!(x.var_all().compute().unwrap().is_nan());
    // min/max/argmin have no identity: an error when built, or when the scalar is computed.
    let err = x.min(&[0]).unwrap_err().to_string();
    assert!(
        err.contains("zero-size array to reduction operation minimum"),
        "{err}"
    );
    let err = x.max_all().compute().unwrap_err().to_string();
    assert!(
        err.contains("zero-size array to reduction operation maximum"),
        "{err}"
    );
    let err = x.argmin(0).unwrap_err().to_string();
    assert!(
        err.contains("attempt to get argmin of an empty sequence"),
        "{err}"
    );
    let err = x.nanargmax_all().compute().unwrap_err().to_string();
    assert!(err.contains("empty sequence"), "{err}");
    // Reducing a non-empty axis of an empty array gives an empty result, not an error.
    let y = array::zeros::<f64>(&[0, 3], [1, 2]).unwrap();
    let m = y.min(&[1]).unwrap();
    assert_eq!(m.shape(), &[0]);
    assert_eq!(m.compute().unwrap().len(), 0);
    assert!(y.min(&[0]).is_err());
    assert_eq!(
        y.sum(&[0]).unwrap().compute().unwrap().as_slice().unwrap(),
        &[0.0; 3]
    );
}

#[test]
fn result_types_follow_numpy() {
    let i = array::arange(0i32, 10, 1, 3).unwrap();
    let s: Delayed<i32> = i.sum_all();
    assert_eq!(s.compute().unwrap(), 45);
    let m: Delayed<f64> = i.mean_all();
    assert_eq!(m.compute().unwrap(), 4.5);
    let v: Array<f64> = i.var(&[0]).unwrap();
    assert_eq!(v.compute().unwrap()[[]], 8.25);
    let f = array::arange(0.0f32, 10.0, 1.0, 3).unwrap();
    let m: Delayed<f32> = f.mean_all();
    assert_eq!(m.compute().unwrap(), 4.5f32);
    let s: Array<f32> = f.std(&[0]).unwrap();
    assert!((s.compute().unwrap()[[]] - 8.25f32.sqrt()).abs() < 1e-6);
    let a: Array<i64> = f.argmax(0).unwrap();
    assert_eq!(a.compute().unwrap()[[]], 9);
    let u = array::arange(250u8, 255, 1, 2).unwrap();
    assert_eq!(u.min_all().compute().unwrap(), 250u8);
    assert_eq!(u.mean_all().compute().unwrap(), 252.0);
}

#[test]
fn integer_overflow_is_an_error_not_a_wrap() {
    let x = array::full(&[4], 2, 100i8).unwrap();
    let err = x.sum_all().compute().unwrap_err();
    assert!(err.to_string().contains("sum overflows int8"), "{err}");
    assert!(err.key().is_some(), "the error names the task");
    // The exact result decides: partial sums may exceed the type on the way.
    let y = array::from_ndarray(
        ArrayD::from_shape_vec(IxDyn(&[3]), vec![i64::MAX, 1, -1]).unwrap(),
        1,
    )
    .unwrap();
    assert_eq!(y.sum_all().compute().unwrap(), i64::MAX);
    let p = array::full(&[64], 4, 2i64).unwrap();
    let err = p.prod_all().compute().unwrap_err();
    assert!(err.to_string().contains("prod overflows int64"), "{err}");
    // ... unless a zero makes the product exact again.
    let z = array::from_ndarray(
        ArrayD::from_shape_vec(
            IxDyn(&[201]),
            (0..201)
                .map(|i| if i == 200 { 0 } else { 1i64 << 40 })
                .collect(),
        )
        .unwrap(),
        7,
    )
    .unwrap();
    assert_eq!(z.prod_all().compute().unwrap(), 0);
    assert_eq!(
        array::full(&[8], 3, -2i64)
            .unwrap()
            .prod_all()
            .compute()
            .unwrap(),
        256
    );
}

#[test]
fn keepdims_keeps_chunks_of_kept_axes() {
    let x = array::ones::<f64>(&[6, 5, 4], [4, 2, 3]).unwrap();
    let s = x
        .sum_with(&[1], &ReduceOptions::new().keepdims(true))
        .unwrap();
    assert_eq!(s.shape(), &[6, 1, 4]);
    assert_eq!(s.chunks().axes(), &[vec![4, 2], vec![1], vec![3, 1]]);
    let s = x.sum(&[1]).unwrap();
    assert_eq!(s.shape(), &[6, 4]);
    assert_eq!(s.chunks().axes(), &[vec![4, 2], vec![3, 1]]);
    let all = x
        .mean_with(&[0, 1, 2], &ReduceOptions::new().keepdims(true))
        .unwrap();
    assert_eq!(all.shape(), &[1, 1, 1]);
    assert_eq!(all.compute().unwrap()[[0, 0, 0]], 1.0);
    let scalar = x.mean(&[2, 0, 1]).unwrap();
    assert_eq!(scalar.shape(), &[] as &[usize]);
    // Reducing no axes is numpy's axis=(): every element alone.
    let none = x.var(&[]).unwrap();
    assert_eq!(none.chunks(), x.chunks());
    assert!(none.compute().unwrap().iter().all(|&v| v == 0.0));
}

#[test]
fn keys_are_deterministic_and_shared() {
    let x = array::from_ndarray(ArrayD::from_elem(IxDyn(&[8, 8]), 1.0), [2, 2]).unwrap();
    assert_eq!(x.sum(&[0]).unwrap().name(), x.sum(&[0]).unwrap().name());
    assert_ne!(x.sum(&[0]).unwrap().name(), x.sum(&[1]).unwrap().name());
    assert_ne!(x.sum(&[0]).unwrap().name(), x.nansum(&[0]).unwrap().name());
    let v1 = x.var_with(&[0], &ReduceOptions::new().ddof(1)).unwrap();
    assert_ne!(v1.name(), x.var(&[0]).unwrap().name());
    assert!(x.sum(&[0]).unwrap().name().starts_with("sum-aggregate-"));
    // Axis order does not matter.
    assert_eq!(
        x.sum(&[1, 0]).unwrap().name(),
        x.sum(&[0, 1]).unwrap().name()
    );
    // A sum and its scalar form share every partial: one graph holds the chunk tasks once.
    let (scalar, full) = (x.sum_all(), x.sum(&[0, 1]).unwrap());
    let g = TaskGraph::from_layers(
        &[scalar.layer().clone(), full.layer().clone()],
        &[scalar.key().clone(), full.block_key(&[])],
        FreezeOptions { fuse: false },
    )
    .unwrap();
    assert_eq!(label_counts(&g)["sum-chunk"], x.num_chunks());
    assert_eq!(label_counts(&g)["sum-aggregate"], 2);
    let (a, b) = chunkflow::compute((&x.sum_all(), &x.sum(&[0, 1]).unwrap())).unwrap();
    assert_eq!(a, 64.0);
    assert_eq!(b[[]], 64.0);
}

#[test]
fn bad_arguments_are_named() {
    let x = array::ones::<f64>(&[3, 4], 2).unwrap();
    let err = x.sum(&[2]).unwrap_err().to_string();
    assert!(
        err.contains("axis 2 is out of bounds for array of dimension 2"),
        "{err}"
    );
    let err = x.mean(&[1, 1]).unwrap_err().to_string();
    assert!(err.contains("duplicate") && err.contains("axis 1"), "{err}");
    let err = x.argmin(5).unwrap_err().to_string();
    assert!(err.contains("axis 5 is out of bounds"), "{err}");
    let err = x
        .sum_with(&[0], &ReduceOptions::new().split_every(1))
        .unwrap_err()
        .to_string();
    assert!(err.contains("split_every must be at least 2"), "{err}");
    let err = x
        .sum_all_with(&ReduceOptions::new().split_every(0))
        .compute()
        .unwrap_err();
    assert!(
        err.to_string().contains("split_every must be at least 2"),
        "{err}"
    );
}

#[test]
fn flat_argmin_is_c_order_over_the_whole_array() {
    let mut data = ArrayD::from_elem(IxDyn(&[3, 4, 5]), 1.0f64);
    data[[2, 1, 3]] = -4.0;
    data[[1, 3, 0]] = 9.0;
    data[[2, 2, 2]] = -4.0; // a later tie
    let x = array::from_ndarray(data, [2, 3, 2]).unwrap();
    assert_eq!(x.argmin_all().compute().unwrap(), 2 * 20 + 5 + 3);
    assert_eq!(x.argmax_all().compute().unwrap(), 20 + 3 * 5);
    let along = x.argmin(2).unwrap().compute().unwrap();
    assert_eq!(along[[2, 1]], 3);
    assert_eq!(along[[2, 2]], 2);
    assert_eq!(along[[0, 0]], 0);
}
