//! Fused reductions give the same results as reducing materialised blocks.
//!
//! Two fusions change how a reduction's first step reads its input (see `src/array/reduce.rs`):
//! - **streams**: random and constant arrays, element-wise maps and same-chunked combinations
//!   of them, and transposes of those, are reduced slice by slice straight from the generator,
//!   without running their block tasks;
//! - **sums term by term**: `sum`/`mean` of `a ± b` (floats, one chunking; `b` possibly a
//!   transpose) reduce `a` and `b` separately and add the lanes' states.
//!
//! Each case is checked against the same reduction of `from_ndarray(x.compute())` with the same
//! chunks (the ordinary path). Float sums may differ by summation order only:
//! `|a - b| <= 1e-9 * (1 + max(|a|, |b|))`; selections (`min`, `max`, arg-reductions) must
//! match exactly, and NaN must match NaN. Property tests draw 1–3-d shapes, irregular chunks
//! (some blocks larger than one stream slice of 16 Ki elements), a random set of axes,
//! `keepdims`, and the sequential or the 2-thread executor.

use chunkflow::array::{self, Array, Chunks, ReduceOptions, random};
use chunkflow::graph::FreezeOptions;
use chunkflow::prelude::*;
use ndarray::ArrayD;
use proptest::prelude::*;

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

/// Equal element by element, NaN equal to NaN.
fn assert_same(got: &ArrayD<f64>, want: &ArrayD<f64>, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
            "{what}: element {i}: got {g}, want {w}"
        );
    }
}

fn assert_close(got: &ArrayD<f64>, want: &ArrayD<f64>, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(close(*g, *w), "{what}: element {i}: got {g}, want {w}");
    }
}

/// The same values as `x`, as an ordinary array with `x`'s chunks (no streams, no terms).
fn materialized(x: &Array<f64>) -> Array<f64> {
    array::from_ndarray(x.compute().unwrap(), x.chunks().clone()).unwrap()
}

fn options(threads: usize) -> ComputeOptions {
    ComputeOptions::default().threads(threads)
}

/// A float reduction over axes with options.
type Reduction = fn(&Array<f64>, &[usize], &ReduceOptions) -> chunkflow::Result<Array<f64>>;

/// Every reduction of `x` over `axes` equals the same reduction of its materialised values.
fn check_reductions(x: &Array<f64>, axes: &[usize], keepdims: bool, threads: usize) {
    let m = materialized(x);
    let o = ReduceOptions::new().keepdims(keepdims);
    let run = options(threads);
    let what = |op: &str| format!("{op} over {axes:?} of {x}");
    // Sums within the tolerance; selections exactly.
    let sums: [(&str, Reduction); 4] = [
        ("sum", |a, ax, o| a.sum_with(ax, o)),
        ("mean", |a, ax, o| a.mean_with(ax, o)),
        ("var", |a, ax, o| a.var_with(ax, o)),
        ("nansum", |a, ax, o| a.nansum_with(ax, o)),
    ];
    let selections: [(&str, Reduction); 2] = [
        ("max", |a, ax, o| a.max_with(ax, o)),
        ("min", |a, ax, o| a.min_with(ax, o)),
    ];
    for (exact, list) in [(false, &sums[..]), (true, &selections[..])] {
        for (name, op) in list {
            let got = op(x, axes, &o).unwrap().compute_with(&run).unwrap();
            let want = op(&m, axes, &o).unwrap().compute().unwrap();
            if exact {
                assert_same(&got, &want, &what(name));
            } else {
                assert_close(&got, &want, &what(name));
            }
        }
    }
    if let [axis] = axes {
        for (name, max) in [("argmax", true), ("argmin", false)] {
            let arg = |a: &Array<f64>| {
                if max {
                    a.argmax(*axis)
                } else {
                    a.argmin(*axis)
                }
            };
            assert_eq!(
                arg(x).unwrap().compute_with(&run).unwrap(),
                arg(&m).unwrap().compute().unwrap(),
                "{}",
                what(name)
            );
        }
    }
}

/// The labels of a graph's tasks (key names without their tokens), unfused.
fn labels(x: &Array<f64>) -> Vec<String> {
    x.graph(FreezeOptions { fuse: false })
        .unwrap()
        .keys()
        .iter()
        .map(|k| k.label().to_string())
        .collect()
}

fn scalar_labels(d: &Delayed<f64>) -> Vec<String> {
    d.graph()
        .unwrap()
        .keys()
        .iter()
        .map(|k| k.label().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Fixed cases
// ---------------------------------------------------------------------------------------------

#[test]
fn a_random_sum_streams_its_blocks_without_running_them() {
    let x = random::random(&[600, 500], [300, 250], 3).unwrap();
    let s = x.sum_all();
    let tasks = scalar_labels(&s);
    assert!(
        !tasks.iter().any(|l| l == "random_sample"),
        "the generator's tasks run: {tasks:?}"
    );
    assert_eq!(
        tasks
            .iter()
            .filter(|l| *l == "random_sample-sum-chunk")
            .count(),
        4,
        "{tasks:?}"
    );
    let want: f64 = x.compute().unwrap().sum();
    assert!(close(s.compute().unwrap(), want));
    // Slices cut blocks (75,000 elements each) into several pieces along axis 0.
    check_reductions(&x, &[0], false, 2);
    check_reductions(&x, &[1], true, 1);
    check_reductions(&x, &[0, 1], false, 2);
}

#[test]
fn maps_and_zips_of_random_arrays_stream_too() {
    let x = random::random(&[200, 300], [90, 120], 1).unwrap();
    let y = random::normal(&[200, 300], [90, 120], 2.0, 3.0, 2).unwrap();
    let u = random::uniform(&[200, 300], [90, 120], -1.0, 1.0, 3).unwrap();
    let e = &(&(&x * 2.0) + 1.0).sqrt() * &y;
    let tasks = labels(&e.sum(&[1]).unwrap());
    assert!(
        !tasks.iter().any(|l| l == "random_sample" || l == "normal"),
        "{tasks:?}"
    );
    for z in [&y, &u, &e, &(&u - &e)] {
        check_reductions(z, &[0], false, 2);
        check_reductions(z, &[1], false, 1);
    }
}

#[test]
fn constants_stream_alone_and_combined_with_random_arrays() {
    let ones = array::ones::<f64>(&[300, 70], [200, 30]).unwrap();
    let x = random::random(&[300, 70], [200, 30], 4).unwrap();
    let tasks = labels(&ones.mean(&[0]).unwrap());
    assert!(!tasks.iter().any(|l| l == "full"), "{tasks:?}");
    check_reductions(&ones, &[0], false, 2);
    check_reductions(&(&ones * &x), &[1], false, 2);
    check_reductions(&(&(&ones * 3.0) - &x), &[0, 1], true, 1);
    // Integer constants keep exact integer sums.
    let big = array::full(&[1000, 1000], [300, 300], 1i64 << 40).unwrap();
    assert_eq!(big.sum_all().compute().unwrap(), 1_000_000i64 << 40);
    let col = big.sum(&[0]).unwrap().compute().unwrap();
    assert!(col.iter().all(|&v| v == 1000i64 << 40));
}

#[test]
fn a_transpose_of_a_random_array_streams_through_its_source() {
    let x = random::random(&[40, 700, 30], [17, 400, 30], 9).unwrap();
    let t = x.transpose(&[2, 0, 1]).unwrap();
    let tasks = labels(&t.sum(&[1]).unwrap());
    assert!(
        !tasks
            .iter()
            .any(|l| l == "transpose" || l == "random_sample"),
        "{tasks:?}"
    );
    for axes in [&[0][..], &[1], &[2], &[0, 2], &[1, 2], &[0, 1, 2]] {
        check_reductions(&t, axes, false, 2);
    }
    check_reductions(&x.t(), &[1], true, 2);
}

#[test]
fn x_plus_x_t_mean_reduces_each_term_in_its_own_order() {
    let x = random::random(&[500, 500], [200, 200], 5).unwrap();
    let y = &x + &x.t();
    let m = y.mean(&[0]).unwrap();
    let tasks = labels(&m);
    for gone in ["add", "transpose", "random_sample"] {
        assert!(!tasks.iter().any(|l| l == gone), "{gone} runs: {tasks:?}");
    }
    assert!(
        tasks
            .iter()
            .any(|l| l == "random_sample-random_sample-mean-chunk")
    );
    check_reductions(&y, &[0], false, 2);
    check_reductions(&y, &[1], true, 1);
    check_reductions(&y, &[0, 1], false, 2);
    let d = &x - &x.t();
    check_reductions(&d, &[0], false, 2);
    // x - x.T is antisymmetric: its total is zero up to rounding.
    assert!(d.sum_all().compute().unwrap().abs() < 1e-9);
}

#[test]
fn sums_of_stored_arrays_with_nans_keep_numpys_semantics() {
    // a and b come from memory (no streams): the terms are their blocks, read as they are.
    // Square chunks, so that the transposes keep the chunking and no rechunk comes between.
    let mut a = ArrayD::from_shape_fn(ndarray::IxDyn(&[30, 30]), |i| (i[0] * 30 + i[1]) as f64);
    a[[3, 4]] = f64::NAN;
    let mut b = ArrayD::from_shape_fn(ndarray::IxDyn(&[30, 30]), |i| (i[0] as f64).sin());
    b[[7, 1]] = f64::NAN;
    let (xa, xb) = (
        array::from_ndarray(a.clone(), [12, 12]).unwrap(),
        array::from_ndarray(b.clone(), [12, 12]).unwrap(),
    );
    for (y, want) in [
        (&xa + &xb, &a + &b),
        (&xa - &xb.t(), &a - &b.t()),
        (&xa.t() + &xb, &a.t() + &b),
    ] {
        let tasks = labels(&y.sum(&[0]).unwrap());
        assert!(!tasks.iter().any(|l| l == "add" || l == "sub"), "{tasks:?}");
        for axes in [&[0][..], &[1], &[0, 1]] {
            check_reductions(&y, axes, false, 2);
            let got = y.nanmean(axes).unwrap().compute().unwrap();
            let m = array::from_ndarray(want.clone(), [12, 12]).unwrap();
            assert_close(
                &got,
                &m.nanmean(axes).unwrap().compute().unwrap(),
                "nanmean",
            );
        }
    }
}

#[test]
fn integer_sums_are_not_split_into_terms() {
    // numpy wraps `a + b` element by element for integers; splitting would not.
    let a = array::from_ndarray(ArrayD::from_elem(ndarray::IxDyn(&[4]), i32::MAX), 2).unwrap();
    let y = &a + &a;
    assert!(labels_i32(&y.sum(&[0]).unwrap()).iter().any(|l| l == "add"));
}

fn labels_i32(x: &Array<i32>) -> Vec<String> {
    x.graph(FreezeOptions { fuse: false })
        .unwrap()
        .keys()
        .iter()
        .map(|k| k.label().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// A random partition of `n` into at most 3 positive parts.
fn arb_axis(max: usize) -> impl Strategy<Value = (usize, Vec<usize>)> {
    (1..=max).prop_flat_map(|n| {
        proptest::collection::vec(1..=n, 1..=3).prop_map(move |cuts| {
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c < n).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut parts = Vec::new();
            let mut prev = 0;
            for c in cuts.into_iter().chain([n]) {
                parts.push(c - prev);
                prev = c;
            }
            (n, parts)
        })
    })
}

/// Shape, per-axis chunks, reduced axes, `keepdims`, threads, seed.
type Case = (Vec<usize>, Vec<Vec<usize>>, Vec<usize>, bool, usize, u64);

fn arb_case() -> impl Strategy<Value = Case> {
    proptest::collection::vec(arb_axis(160), 1..=3).prop_flat_map(|axes| {
        let ndim = axes.len();
        let shape: Vec<usize> = axes.iter().map(|(n, _)| *n).collect();
        let chunks: Vec<Vec<usize>> = axes.into_iter().map(|(_, p)| p).collect();
        (
            Just(shape),
            Just(chunks),
            proptest::sample::subsequence((0..ndim).collect::<Vec<_>>(), 1..=ndim),
            any::<bool>(),
            1usize..=2,
            any::<u64>(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn streamed_reductions_match_materialised_ones(
        (shape, chunks, axes, keepdims, threads, seed) in arb_case()
    ) {
        let chunks = Chunks::new(chunks).unwrap();
        let x = random::random(&shape, chunks.clone(), seed).unwrap();
        check_reductions(&x, &axes, keepdims, threads);
        let y = random::normal(&shape, chunks, 1.0, 2.0, seed ^ 1).unwrap();
        check_reductions(&(&(&x * 3.0) - &y), &axes, keepdims, threads);
        // A reversed transpose reads its source's blocks through the permutation.
        let t = x.t();
        let t_axes: Vec<usize> = axes.iter().map(|&a| shape.len() - 1 - a).collect();
        check_reductions(&t, &t_axes, keepdims, threads);
    }

    #[test]
    fn sums_with_a_transpose_match_the_element_wise_result(
        n in 1usize..=150,
        parts in proptest::collection::vec(1usize..=150, 1..=3),
        axis in 0usize..=2,
        negate in any::<bool>(),
        seed in any::<u64>(),
    ) {
        // Square, with the same chunks on both axes, so `x.t()` has `x`'s chunking.
        let mut axis_chunks = Vec::new();
        let mut left = n;
        for p in parts {
            if left == 0 { break; }
            let p = p.min(left);
            axis_chunks.push(p);
            left -= p;
        }
        if left > 0 { axis_chunks.push(left); }
        let chunks = Chunks::new(vec![axis_chunks.clone(), axis_chunks]).unwrap();
        let x = random::random(&[n, n], chunks, seed).unwrap();
        let y = if negate { &x - &x.t() } else { &x + &x.t() };
        let axes: Vec<usize> = match axis { 0 => vec![0], 1 => vec![1], _ => vec![0, 1] };
        check_reductions(&y, &axes, false, 2);
    }
}
