//! Shape and selection on chunked arrays: slicing (numpy semantics, negative steps, indices,
//! new axes), transposes, reshapes (dask's plan), concatenate and stack, squeeze, expand_dims
//! and block getters.
//!
//! Every result is checked against the same operation on a whole `ndarray::ArrayD` (with a small
//! numpy reference for slicing, whose negative steps ndarray reads differently), under the
//! sequential executor and two threads. Property tests draw shapes of 1 to 4 axes (empty axes
//! included), explicit or regular chunkings, and random selections, permutations, reshapes,
//! concatenations and stacks. Invalid arguments must give clear errors, never panics.

use chunkflow::array::{self, Array, ChunkSpec, Chunks, concatenate, stack};
use chunkflow::prelude::*;
use ndarray::{ArrayD, Axis, IxDyn, NewAxis, SliceInfoElem, s};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The executors under test (and one run without fusion, which keeps identity tasks).
fn configs() -> Vec<(&'static str, ComputeOptions)> {
    vec![
        ("sequential", ComputeOptions::default().executor(Sequential)),
        ("threads(2)", ComputeOptions::default().threads(2)),
        (
            "sequential unfused",
            ComputeOptions::default().executor(Sequential).fuse(false),
        ),
    ]
}

/// An array of distinct values (its C-order position), so any misplaced element shows.
fn data(shape: &[usize]) -> ArrayD<i64> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), (0..n as i64).collect()).unwrap()
}

/// `data(shape)` chunked with explicit per-axis sizes.
fn input(shape: &[usize], sizes: Vec<Vec<usize>>) -> (Array<i64>, ArrayD<i64>) {
    let d = data(shape);
    let x = array::from_ndarray(d.clone(), ChunkSpec::explicit(sizes)).unwrap();
    (x, d)
}

/// Computes `y` under every executor and checks it equals `expected`.
fn check(y: &Array<i64>, expected: &ArrayD<i64>) -> Result<(), TestCaseError> {
    prop_assert_eq!(y.shape(), expected.shape());
    for (name, opts) in configs() {
        let got = y
            .compute_with(&opts)
            .map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
        prop_assert_eq!(&got, expected, "executor {}", name);
    }
    Ok(())
}

fn assert_computes(y: &Array<i64>, expected: &ArrayD<i64>) {
    check(y, expected).unwrap();
}

/// Every task of `y`'s own layer reads exactly one chunk.
fn one_input_per_chunk(y: &Array<i64>) -> bool {
    y.layer().tasks().iter().all(|t| t.deps.len() == 1)
}

fn err_text<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.unwrap_err().to_string()
}

/// Random chunk sizes for an axis of length `len`: cut after each element with probability 1/2,
/// or regular chunks of a random size.
fn axis_chunks(len: usize) -> BoxedStrategy<Vec<usize>> {
    if len == 0 {
        return Just(vec![0]).boxed();
    }
    prop_oneof![
        prop::collection::vec(any::<bool>(), len - 1).prop_map(|cuts| {
            let mut sizes = Vec::new();
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
        }),
        (1..=len).prop_map(
            move |c| Chunks::normalize(ChunkSpec::from(c), &[len], 8, None)
                .unwrap()
                .axis(0)
                .to_vec()
        ),
    ]
    .boxed()
}

fn chunks_for(shape: &[usize]) -> Vec<BoxedStrategy<Vec<usize>>> {
    shape.iter().map(|&len| axis_chunks(len)).collect()
}

/// A shape of 1 to 4 axes (lengths 0 to 6) with random chunks.
fn shape_and_chunks() -> impl Strategy<Value = ShapeAndChunks> {
    prop::collection::vec(0usize..7, 1..=4)
        .prop_flat_map(|shape| (Just(shape.clone()), chunks_for(&shape)))
}

/// `cases` random cases (or `PROPTEST_CASES`), with failures reported, not saved to files.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

// ---------------------------------------------------------------------------------------------
// The numpy reference for basic selection
// ---------------------------------------------------------------------------------------------

/// numpy's `range(len)[start:end:step]`, except that a start of 0 with a negative step is the
/// omitted start (ndarray's `s!` writes `..` as start 0), as chunkflow documents.
fn numpy_indices(len: usize, start: isize, end: Option<isize>, step: isize) -> Vec<usize> {
    let n = len as isize;
    let mut out = Vec::new();
    if step > 0 {
        let clip = |v: isize| if v < 0 { (v + n).max(0) } else { v.min(n) };
        let (mut i, stop) = (clip(start), end.map_or(n, clip));
        while i < stop {
            out.push(i as usize);
            i += step;
        }
    } else {
        let clip = |v: isize| if v < 0 { (v + n).max(-1) } else { v.min(n - 1) };
        let mut i = if start == 0 { n - 1 } else { clip(start) };
        let stop = end.map_or(-1, clip);
        while i > stop {
            out.push(i as usize);
            i += step;
        }
    }
    out
}

/// Per entry of a selection (padded to the array's axes): the selected indices of a kept axis,
/// the one index of a dropped axis, or nothing for a new axis. `None` when an index is out of
/// range or there are too many entries.
#[derive(Debug)]
enum RefSel {
    Keep(Vec<usize>),
    Drop(usize),
    New,
}

fn reference_selection(shape: &[usize], info: &[SliceInfoElem]) -> Option<Vec<RefSel>> {
    let mut out = Vec::new();
    let mut axis = 0;
    for e in info {
        match *e {
            SliceInfoElem::NewAxis => out.push(RefSel::New),
            SliceInfoElem::Index(i) => {
                let len = *shape.get(axis)? as isize;
                let j = if i < 0 { i + len } else { i };
                if j < 0 || j >= len {
                    return None;
                }
                out.push(RefSel::Drop(j as usize));
                axis += 1;
            }
            SliceInfoElem::Slice { start, end, step } => {
                let len = *shape.get(axis)?;
                out.push(RefSel::Keep(numpy_indices(len, start, end, step)));
                axis += 1;
            }
        }
    }
    for &len in &shape[axis..] {
        out.push(RefSel::Keep((0..len).collect()));
    }
    Some(out)
}

/// numpy's `x[info]` on a whole array.
fn reference_slice(x: &ArrayD<i64>, sels: &[RefSel]) -> ArrayD<i64> {
    let out_shape: Vec<usize> = sels
        .iter()
        .filter_map(|s| match s {
            RefSel::Keep(v) => Some(v.len()),
            RefSel::New => Some(1),
            RefSel::Drop(_) => None,
        })
        .collect();
    ArrayD::from_shape_fn(IxDyn(&out_shape), |idx| {
        let mut in_idx = Vec::new();
        let mut k = 0;
        for s in sels {
            match s {
                RefSel::Keep(v) => {
                    in_idx.push(v[idx[k]]);
                    k += 1;
                }
                RefSel::New => k += 1,
                RefSel::Drop(i) => in_idx.push(*i),
            }
        }
        x[IxDyn(&in_idx)]
    })
}

/// The chunks dask gives a selection: per kept axis, one chunk per input block that holds
/// selected elements (runs of the block id in selection order), `(0,)` when nothing is selected.
fn reference_chunks(input: &Chunks, sels: &[RefSel]) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut axis = 0;
    for s in sels {
        match s {
            RefSel::Keep(v) => {
                let mut sizes: Vec<usize> = Vec::new();
                let mut last = None;
                for &i in v {
                    let b = input.block_index_of(axis, i);
                    if b == last {
                        *sizes.last_mut().unwrap() += 1;
                    } else {
                        sizes.push(1);
                        last = b;
                    }
                }
                if sizes.is_empty() {
                    sizes.push(0);
                }
                out.push(sizes);
                axis += 1;
            }
            RefSel::New => out.push(vec![1]),
            RefSel::Drop(_) => axis += 1,
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Slicing
// ---------------------------------------------------------------------------------------------

/// `(len, start, end, step, selected indices)`.
type SliceCase = (usize, isize, Option<isize>, isize, Vec<usize>);

/// Python's `list(range(n))[start:stop:step]`, generated with CPython (whose `slice.indices` is
/// numpy's rule for one axis); an omitted start is written 0.
#[test]
fn slice_matches_python_on_one_axis() {
    #[rustfmt::skip]
    let cases: Vec<SliceCase> = vec![
        (7, 0, None, -1, vec![6, 5, 4, 3, 2, 1, 0]),
        (7, 0, None, -2, vec![6, 4, 2, 0]),
        (7, 5, Some(1), -1, vec![5, 4, 3, 2]),
        (7, 1, Some(5), -1, vec![]),
        (7, -2, Some(-8), -3, vec![5, 2]),
        (7, 0, Some(2), -1, vec![6, 5, 4, 3]),
        (7, -1, None, -1, vec![6, 5, 4, 3, 2, 1, 0]),
        (7, 10, None, -3, vec![6, 3, 0]),
        (7, 3, None, -1, vec![3, 2, 1, 0]),
        (7, -100, Some(100), 2, vec![0, 2, 4, 6]),
        (7, 100, Some(-100), -2, vec![6, 4, 2, 0]),
        (7, 2, Some(2), 1, vec![]),
        (7, -3, None, 1, vec![4, 5, 6]),
        (7, 0, Some(-3), 1, vec![0, 1, 2, 3]),
        (7, 6, Some(-8), -4, vec![6, 2]),
        (0, 0, None, -1, vec![]),
        (0, 3, None, 1, vec![]),
        (1, 0, None, -5, vec![0]),
        (10, 8, None, -3, vec![8, 5, 2]),
        (10, 0, None, 3, vec![0, 3, 6, 9]),
        (10, 1, Some(9), 4, vec![1, 5]),
        (10, -1, Some(-10), -1, vec![9, 8, 7, 6, 5, 4, 3, 2, 1]),
        (10, 9, Some(0), -2, vec![9, 7, 5, 3, 1]),
    ];
    for (n, start, end, step, expected) in cases {
        assert_eq!(numpy_indices(n, start, end, step), expected, "reference");
        let x = array::arange(0i64, n as i64, 1, 3).unwrap();
        let y = x
            .slice([SliceInfoElem::Slice { start, end, step }])
            .unwrap();
        let expected = ArrayD::from_shape_vec(
            IxDyn(&[expected.len()]),
            expected.iter().map(|&i| i as i64).collect(),
        )
        .unwrap();
        assert_computes(&y, &expected);
    }
}

#[test]
#[allow(clippy::reversed_empty_ranges)] // `4..1;-1` is numpy's `4:1:-1`, the point of the test
fn slice_syntax_reads_like_numpy() {
    let (x, d) = input(&[6, 5], vec![vec![2, 2, 2], vec![3, 2]]);
    // x[::-1] reverses (block order too): chunks (2, 2, 2) reversed.
    let y = x.slice(s![..;-1, ..]).unwrap();
    assert_eq!(y.chunks().axis(0), &[2, 2, 2]);
    assert_computes(&y, &d.slice(s![..;-1, ..]).to_owned().into_dyn());
    // x[4:1:-1, -1]: numpy's start-at-4 walking down (ndarray would give rows 3, 2, 1 of 1..4).
    let y = x.slice(s![4..1;-1, -1]).unwrap();
    let expected = ArrayD::from_shape_vec(IxDyn(&[3]), vec![24, 19, 14]).unwrap();
    assert_computes(&y, &expected);
    // x[1:4:-1] is empty in numpy: a 0-length axis with the single chunk (0,).
    let y = x.slice(s![1..4;-1, ..]).unwrap();
    assert_eq!(y.shape(), &[0, 5]);
    assert_eq!(y.chunks().to_string(), "((0,), (3, 2))");
    assert_computes(&y, &ArrayD::zeros(IxDyn(&[0, 5])));
    // x[:2:-1]: from the end down to (not including) 2.
    let y = x.slice(s![..2;-1, 0]).unwrap();
    let expected = ArrayD::from_shape_vec(IxDyn(&[3]), vec![25, 20, 15]).unwrap();
    assert_computes(&y, &expected);
    // Out-of-range slice bounds clip like numpy.
    let y = x.slice(s![-100..100, 3..100]).unwrap();
    assert_computes(&y, &d.slice(s![.., 3..]).to_owned().into_dyn());
    // NewAxis and a dropped axis; fewer entries than axes leave the rest whole.
    let y = x.slice(s![NewAxis, 2]).unwrap();
    assert_eq!(y.shape(), &[1, 5]);
    assert_computes(&y, &d.slice(s![NewAxis, 2, ..]).to_owned().into_dyn());
    // Each output chunk reads exactly one input chunk.
    let y = x.slice(s![1..5;3, ..;-2]).unwrap();
    assert!(one_input_per_chunk(&y));
    assert_eq!(y.num_chunks(), 4);
}

#[test]
fn slice_of_everything_is_the_array_itself() {
    let (x, _) = input(&[4, 3], vec![vec![2, 2], vec![3]]);
    let y = x.slice(s![.., ..]).unwrap();
    assert_eq!(y.name(), x.name());
    let y = x.slice(s![-100..100]).unwrap();
    assert_eq!(y.name(), x.name());
    // Building the same selection twice gives the same keys.
    assert_eq!(
        x.slice(s![1.., ..;-1]).unwrap().name(),
        x.slice(s![1.., ..;-1]).unwrap().name()
    );
}

#[test]
fn slice_errors_are_clear() {
    let (x, _) = input(&[4, 3], vec![vec![2, 2], vec![3]]);
    let e = err_text(x.slice(s![.., 5]));
    assert!(
        e.contains("index 5") && e.contains("axis 1") && e.contains("length 3"),
        "{e}"
    );
    let e = err_text(x.slice(s![-5, ..]));
    assert!(
        e.contains("index -5") && e.contains("axis 0") && e.contains("length 4"),
        "{e}"
    );
    let e = err_text(x.slice([SliceInfoElem::Slice {
        start: 0,
        end: None,
        step: 0,
    }]));
    assert!(e.contains("step cannot be zero"), "{e}");
    let e = err_text(x.slice(s![0, 0, 0]));
    assert!(e.contains("too many indices"), "{e}");
    // An empty axis has no element to index.
    let (z, _) = input(&[0, 3], vec![vec![0], vec![3]]);
    assert!(z.slice(s![0]).is_err());
}

/// One random entry of a selection for an axis of length `len`.
fn slice_entry() -> impl Strategy<Value = SliceInfoElem> {
    prop_oneof![
        3 => (-8isize..8, prop::option::of(-8isize..8), prop_oneof![1isize..4, -4isize..0])
            .prop_map(|(start, end, step)| SliceInfoElem::Slice { start, end, step }),
        1 => (-8isize..8).prop_map(SliceInfoElem::Index),
    ]
}

fn selection(ndim: usize) -> impl Strategy<Value = Vec<SliceInfoElem>> {
    (
        prop::collection::vec(slice_entry(), 0..=ndim),
        prop::collection::vec(0usize..=4, 0..=2),
    )
        .prop_map(|(mut entries, new_axes)| {
            for at in new_axes {
                let at = at.min(entries.len());
                entries.insert(at, SliceInfoElem::NewAxis);
            }
            entries
        })
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn slice_matches_numpy(
        (shape, sizes, info) in shape_and_chunks()
            .prop_flat_map(|(shape, sizes)| {
                let n = shape.len();
                (Just(shape), Just(sizes), selection(n))
            })
    ) {
        let (x, d) = input(&shape, sizes);
        let result = x.slice(&info);
        match reference_selection(&shape, &info) {
            None => prop_assert!(result.is_err(), "{:?} on {:?} should fail", info, shape),
            Some(sels) => {
                let y = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
                let expected_chunks = reference_chunks(x.chunks(), &sels);
                prop_assert_eq!(y.chunks().axes(), expected_chunks.as_slice());
                if y.name() != x.name() {
                    prop_assert!(one_input_per_chunk(&y));
                }
                check(&y, &reference_slice(&d, &sels))?;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Transpose, squeeze, expand_dims, block
// ---------------------------------------------------------------------------------------------

#[test]
fn transpose_and_t() {
    let (x, d) = input(&[2, 3, 4], vec![vec![1, 1], vec![2, 1], vec![4]]);
    let y = x.transpose(&[1, 2, 0]).unwrap();
    assert_eq!(y.chunks().to_string(), "((2, 1), (4,), (1, 1))");
    assert_computes(&y, &d.clone().permuted_axes(vec![1, 2, 0]));
    assert!(one_input_per_chunk(&y));
    assert_computes(&x.t(), &d.t().to_owned());
    assert_eq!(x.transpose(&[0, 1, 2]).unwrap().name(), x.name());
    for bad in [&[0, 1][..], &[0, 1, 1], &[0, 1, 3], &[0, 1, 2, 3]] {
        let e = err_text(x.transpose(bad));
        assert!(e.contains("not a permutation"), "{e}");
    }
    // Transposed chunks are strided views; a reshape after it still sees C order.
    let flat = x.t().reshape([-1]).unwrap();
    let expected = d.t().iter().copied().collect::<Vec<_>>();
    assert_computes(
        &flat,
        &ArrayD::from_shape_vec(IxDyn(&[24]), expected).unwrap(),
    );
}

#[test]
fn squeeze_expand_dims_and_block() {
    let (x, d) = input(
        &[1, 4, 1, 3],
        vec![vec![1], vec![3, 1], vec![1], vec![2, 1]],
    );
    let y = x.squeeze();
    assert_eq!(y.chunks().to_string(), "((3, 1), (2, 1))");
    assert_computes(&y, &d.clone().into_shape_with_order(vec![4, 3]).unwrap());
    let z = y.expand_dims(2).unwrap();
    assert_eq!(z.chunks().to_string(), "((3, 1), (2, 1), (1,))");
    assert_computes(&z, &d.clone().into_shape_with_order(vec![4, 3, 1]).unwrap());
    assert!(y.expand_dims(3).is_err());
    let b = x.block(&[0, 1, 0, 0]).unwrap();
    assert_eq!(b.shape(), &[1, 1, 1, 2]);
    assert_computes(&b, &d.slice(s![.., 3..4, .., 0..2]).to_owned().into_dyn());
    assert!(x.block(&[0, 2, 0, 0]).is_err());
    assert!(x.block(&[0, 0]).is_err());
    // Everything squeezed: a 0-d array, and back.
    let (one, d1) = input(&[1, 1], vec![vec![1], vec![1]]);
    let scalar = one.squeeze();
    assert_eq!(scalar.ndim(), 0);
    assert_computes(&scalar, &reshaped(&d1, &[]));
    assert_computes(&scalar.expand_dims(0).unwrap(), &reshaped(&d1, &[1]));
    assert_computes(&scalar.slice(s![NewAxis]).unwrap(), &reshaped(&d1, &[1]));
    assert_eq!(scalar.t().name(), scalar.name());
    assert!(scalar.slice(s![0]).is_err());
    // Nothing to squeeze: the array itself.
    let (w, _) = input(&[2, 2], vec![vec![2], vec![2]]);
    assert_eq!(w.squeeze().name(), w.name());
}

proptest! {
    #![proptest_config(config(100))]

    #[test]
    fn transpose_matches_ndarray(
        (shape, sizes, perm) in shape_and_chunks().prop_flat_map(|(shape, sizes)| {
            let axes: Vec<usize> = (0..shape.len()).collect();
            (Just(shape), Just(sizes), Just(axes).prop_shuffle())
        })
    ) {
        let (x, d) = input(&shape, sizes);
        let y = x.transpose(&perm).unwrap();
        check(&y, &d.clone().permuted_axes(perm.clone()))?;
        // Transposing back gives the original.
        let mut inverse = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        check(&y.transpose(&inverse).unwrap(), &d)?;
    }

    #[test]
    fn bad_permutations_are_errors(
        (shape, sizes) in shape_and_chunks(),
        perm in prop::collection::vec(0usize..5, 0..6),
    ) {
        let (x, d) = input(&shape, sizes);
        let mut sorted = perm.clone();
        sorted.sort();
        let valid = sorted == (0..shape.len()).collect::<Vec<_>>();
        match x.transpose(&perm) {
            Ok(y) => {
                prop_assert!(valid);
                check(&y, &d.permuted_axes(perm))?;
            }
            Err(e) => prop_assert!(!valid, "{}", e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reshape
// ---------------------------------------------------------------------------------------------

fn reshaped(d: &ArrayD<i64>, shape: &[usize]) -> ArrayD<i64> {
    d.as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(shape))
        .unwrap()
}

/// `(input shape, output shape, input chunks, dask's output chunks)`.
type ReshapeCase = (Vec<usize>, Vec<usize>, Vec<Vec<usize>>, Vec<Vec<usize>>);

/// dask's `test_reshape_rechunk`, `test_reshape_all_chunked_no_merge` and
/// `test_reshape_all_not_chunked_merge` cases (dask/array/tests/test_reshape.py): the output
/// chunks match dask's, and the values match ndarray.
#[test]
fn reshape_chunks_match_dask() {
    #[rustfmt::skip]
    let cases: Vec<ReshapeCase> = vec![
        (vec![4], vec![2, 2], vec![vec![2, 2]], vec![vec![1, 1], vec![2]]),
        (vec![4], vec![4, 1], vec![vec![2, 2]], vec![vec![2, 2], vec![1]]),
        (vec![4], vec![1, 4], vec![vec![2, 2]], vec![vec![1], vec![2, 2]]),
        (vec![1, 4], vec![4], vec![vec![1], vec![2, 2]], vec![vec![2, 2]]),
        (vec![4, 1], vec![4], vec![vec![2, 2], vec![1]], vec![vec![2, 2]]),
        (vec![4, 1, 4], vec![4, 4], vec![vec![2, 2], vec![1], vec![2, 2]],
            vec![vec![2, 2], vec![2, 2]]),
        (vec![4, 4], vec![4, 1, 4], vec![vec![2, 2], vec![2, 2]],
            vec![vec![2, 2], vec![1], vec![2, 2]]),
        (vec![2, 2], vec![4], vec![vec![2], vec![2]], vec![vec![4]]),
        (vec![2, 2], vec![4], vec![vec![1, 1], vec![2]], vec![vec![2, 2]]),
        (vec![2, 2], vec![4], vec![vec![2], vec![1, 1]], vec![vec![2, 2]]),
        (vec![64], vec![4, 4, 4], vec![vec![8; 8]], vec![vec![1; 4], vec![4], vec![4]]),
        (vec![64], vec![4, 4, 4], vec![vec![32, 32]], vec![vec![2, 2], vec![4], vec![4]]),
        (vec![64], vec![4, 4, 4], vec![vec![16, 48]], vec![vec![1, 3], vec![4], vec![4]]),
        (vec![64], vec![4, 4, 4], vec![vec![20, 44]], vec![vec![1, 3], vec![4], vec![4]]),
        (vec![64, 4], vec![8, 8, 4], vec![vec![16; 4], vec![2, 2]],
            vec![vec![2; 4], vec![8], vec![2, 2]]),
        (vec![2, 3, 4], vec![6, 4], vec![vec![1, 1], vec![1, 2], vec![2, 2]],
            vec![vec![1, 2, 1, 2], vec![2, 2]]),
        (vec![1, 2, 3, 4], vec![6, 4], vec![vec![1], vec![1, 1], vec![1, 2], vec![2, 2]],
            vec![vec![1, 2, 1, 2], vec![2, 2]]),
        (vec![2, 2, 3, 4], vec![12, 4], vec![vec![1, 1], vec![1, 1], vec![1, 2], vec![2, 2]],
            vec![vec![1, 2, 1, 2, 1, 2, 1, 2], vec![2, 2]]),
        (vec![2, 2, 3, 4], vec![4, 3, 4], vec![vec![1, 1], vec![1, 1], vec![1, 2], vec![2, 2]],
            vec![vec![1, 1, 1, 1], vec![1, 2], vec![2, 2]]),
        (vec![2, 2, 3, 4], vec![4, 3, 4], vec![vec![1, 1], vec![2], vec![1, 2], vec![4]],
            vec![vec![2, 2], vec![1, 2], vec![4]]),
        (vec![2, 3, 4], vec![24], vec![vec![1, 1], vec![1, 1, 1], vec![2, 2]],
            vec![vec![2; 12]]),
        (vec![2, 3, 4], vec![2, 12], vec![vec![1, 1], vec![1, 1, 1], vec![4]],
            vec![vec![1, 1], vec![4, 4, 4]]),
        (vec![2, 3, 4], vec![24], vec![vec![1, 1], vec![1, 2], vec![2, 2]], vec![vec![12, 12]]),
    ];
    for (inshape, outshape, inchunks, outchunks) in cases {
        let (x, d) = input(&inshape, inchunks.clone());
        let y = x.reshape(&outshape).unwrap();
        assert_eq!(
            y.chunks().axes(),
            outchunks.as_slice(),
            "{inshape:?} {inchunks:?} -> {outshape:?}"
        );
        assert!(one_input_per_chunk(&y));
        assert_computes(&y, &reshaped(&d, &outshape));
    }
}

#[test]
fn reshape_moves_blocks_without_rechunking_when_outer_axes_are_single_elements() {
    // dask's `test_reshape_all_chunked_no_merge`: the reshape reads the input chunks directly.
    let (x, d) = input(&[2, 3, 4], vec![vec![1, 1], vec![1, 1, 1], vec![2, 2]]);
    let y = x.reshape([24]).unwrap();
    assert_eq!(y.layer().dependencies().len(), 1);
    assert_eq!(y.layer().dependencies()[0].name(), x.name());
    assert_computes(&y, &reshaped(&d, &[24]));
}

#[test]
fn reshape_infers_and_handles_edge_cases() {
    let (x, d) = input(&[10, 6, 6], vec![vec![5, 5], vec![2, 2, 2], vec![3, 3]]);
    // dask's test_reshape_unknown_sizes.
    let y = x.reshape([60, -1]).unwrap();
    assert_eq!(y.shape(), &[60, 6]);
    assert_computes(&y, &reshaped(&d, &[60, 6]));
    // Any integer type, and another array's shape.
    assert_eq!(x.reshape(&[360usize][..]).unwrap().shape(), &[360]);
    assert_eq!(x.reshape(y.shape()).unwrap().name(), y.name());
    assert_eq!(x.reshape(vec![6i64, 10, 6]).unwrap().shape(), &[6, 10, 6]);
    // Same shape: the array itself.
    assert_eq!(x.reshape([10, 6, 6]).unwrap().name(), x.name());
    assert_eq!(x.reshape([-1, 6, 6]).unwrap().name(), x.name());
    // Size-1 axes in and out.
    let z = x.reshape([1, 10, 1, 36, 1]).unwrap();
    assert_computes(&z, &reshaped(&d, &[1, 10, 1, 36, 1]));
    assert_computes(&z.reshape([10, 6, 6]).unwrap(), &d);
    // Mixing lengths across axes goes through the merged shape.
    let w = x.reshape([6, 10, 6]).unwrap();
    assert_computes(&w, &reshaped(&d, &[6, 10, 6]));
    assert!(one_input_per_chunk(&w));
    // A one-chunk array reshapes in one task.
    let (one, d1) = input(&[4, 6], vec![vec![4], vec![6]]);
    let r = one.reshape([6, 4]).unwrap();
    assert_eq!(r.num_chunks(), 1);
    assert_computes(&r, &reshaped(&d1, &[6, 4]));
    // Empty arrays.
    let (e, _) = input(&[0, 4], vec![vec![0], vec![2, 2]]);
    let r = e.reshape([2, -1, 2]).unwrap();
    assert_eq!(r.shape(), &[2, 0, 2]);
    assert_eq!(r.chunks().to_string(), "((2,), (0,), (2,))");
    assert_computes(&r, &ArrayD::zeros(IxDyn(&[2, 0, 2])));
    // numpy cannot infer a -1 next to a 0 length either.
    let err = err_text(e.reshape([2, 0, -1]));
    assert!(err.contains("cannot be inferred"), "{err}");
    assert_computes(&e.reshape([0]).unwrap(), &ArrayD::zeros(IxDyn(&[0])));
    // 0-d arrays and back.
    let (s, ds) = input(&[1, 1], vec![vec![1], vec![1]]);
    let r = s.reshape::<usize>([]).unwrap();
    assert_eq!(r.shape(), &[] as &[usize]);
    assert_computes(&r, &reshaped(&ds, &[]));
    assert_computes(&r.reshape([1, 1, 1]).unwrap(), &reshaped(&ds, &[1, 1, 1]));
}

#[test]
fn reshape_errors_are_clear() {
    let (x, _) = input(&[4, 6], vec![vec![2, 2], vec![3, 3]]);
    let e = err_text(x.reshape([5, 5]));
    assert!(e.contains("size 24") && e.contains("[5, 5]"), "{e}");
    let e = err_text(x.reshape([5, -1]));
    assert!(e.contains("does not divide 24"), "{e}");
    let e = err_text(x.reshape([-1, -1]));
    assert!(e.contains("only one length may be -1"), "{e}");
    let e = err_text(x.reshape([-2, -12]));
    assert!(e.contains("negative"), "{e}");
    assert!(x.reshape([usize::MAX, 2]).is_err());
}

/// A random factorisation of `total`: `ndim` lengths (drawn from `choices`), with some
/// length-1 axes, and possibly one length replaced by -1.
fn factorise(total: usize, choices: &[usize], infer: Option<usize>) -> Vec<i64> {
    let mut rem = total;
    let mut out: Vec<i64> = Vec::new();
    for (k, &c) in choices.iter().enumerate() {
        if k + 1 == choices.len() {
            break;
        }
        let divisors: Vec<usize> = (1..=rem).filter(|&d| rem.is_multiple_of(d)).collect();
        let d = divisors[c % divisors.len()];
        out.push(d as i64);
        rem /= d;
    }
    out.push(rem as i64);
    if let Some(i) = infer {
        let i = i % out.len();
        out[i] = -1;
    }
    out
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn reshape_matches_ndarray(
        (shape, sizes) in prop::collection::vec(1usize..6, 1..=4)
            .prop_flat_map(|shape| (Just(shape.clone()), chunks_for(&shape))),
        choices in prop::collection::vec(0usize..100, 1..=5),
        infer in prop::option::of(0usize..5),
    ) {
        let (x, d) = input(&shape, sizes);
        let new = factorise(d.len(), &choices, infer);
        let y = x.reshape(&new).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let out: Vec<usize> = y.shape().to_vec();
        prop_assert_eq!(out.iter().product::<usize>(), d.len());
        check(&y, &reshaped(&d, &out))?;
        if y.name() != x.name() {
            prop_assert!(one_input_per_chunk(&y));
        }
        // And back again.
        let back = y.reshape(&shape).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check(&back, &d)?;
    }

    /// Chained: a negative-step selection and a transpose (strided chunks), then a reshape.
    #[test]
    fn reshape_after_strided_views(
        (shape, sizes) in prop::collection::vec(1usize..5, 2..=3)
            .prop_flat_map(|shape| (Just(shape.clone()), chunks_for(&shape))),
    ) {
        let (x, d) = input(&shape, sizes);
        let y = x.slice(s![..;-1]).unwrap().t().reshape([-1]).unwrap();
        let mut r = d.clone();
        r.invert_axis(Axis(0));
        let r: Vec<i64> = r.t().iter().copied().collect();
        check(&y, &ArrayD::from_shape_vec(IxDyn(&[r.len()]), r).unwrap())?;
    }
}

// ---------------------------------------------------------------------------------------------
// Concatenate and stack
// ---------------------------------------------------------------------------------------------

#[test]
fn concatenate_reuses_chunks_and_unifies_the_others() {
    let (a, da) = input(&[2, 4], vec![vec![2], vec![1, 3]]);
    let (b, db) = input(&[3, 4], vec![vec![1, 2], vec![2, 2]]);
    let c = concatenate(&[&a, &b], 0).unwrap();
    assert_eq!(c.chunks().to_string(), "((2, 1, 2), (1, 1, 2))");
    assert!(one_input_per_chunk(&c));
    assert_computes(
        &c,
        &ndarray::concatenate(Axis(0), &[da.view(), db.view()]).unwrap(),
    );
    // Same chunks elsewhere: the output chunks read the inputs' own keys.
    let (e, de) = input(&[2, 4], vec![vec![1, 1], vec![1, 3]]);
    let c = concatenate(&[&a, &e, &a], 0).unwrap();
    let deps: Vec<String> = c
        .layer()
        .tasks()
        .iter()
        .map(|t| t.deps[0].name().to_string())
        .collect();
    assert!(
        deps.iter().all(|n| n == a.name() || n == e.name()),
        "{deps:?}"
    );
    assert_computes(
        &c,
        &ndarray::concatenate(Axis(0), &[da.view(), de.view(), da.view()]).unwrap(),
    );
    // Empty inputs contribute no chunks.
    let (z, dz) = input(&[0, 4], vec![vec![0], vec![4]]);
    let c = concatenate(&[&z, &a, &z], 0).unwrap();
    assert_eq!(c.chunks().axis(0), &[2]);
    assert_computes(
        &c,
        &ndarray::concatenate(Axis(0), &[dz.view(), da.view(), dz.view()]).unwrap(),
    );
    let c = concatenate(&[&z, &z], 0).unwrap();
    assert_eq!(c.chunks().to_string(), "((0,), (4,))");
    assert_computes(&c, &ArrayD::zeros(IxDyn(&[0, 4])));
    // One array: itself.
    assert_eq!(concatenate(&[&a], 1).unwrap().name(), a.name());
}

#[test]
fn concatenate_and_stack_errors_are_clear() {
    let (a, _) = input(&[2, 4], vec![vec![2], vec![4]]);
    let (b, _) = input(&[3, 4], vec![vec![3], vec![4]]);
    let (v, _) = input(&[4], vec![vec![4]]);
    let e = err_text(concatenate(&[&a, &b], 1));
    assert!(
        e.contains("along dimension 0") && e.contains("size 2") && e.contains("size 3"),
        "{e}"
    );
    let e = err_text(concatenate(&[&a, &v], 0));
    assert!(e.contains("same number of dimensions"), "{e}");
    let e = err_text(concatenate(&[&a, &b], 2));
    assert!(e.contains("axis 2 is out of bounds"), "{e}");
    let e = err_text(concatenate::<i64>(&[], 0));
    assert!(e.contains("at least one array"), "{e}");
    let (s, _) = input(&[], vec![]);
    assert!(concatenate(&[&s, &s], 0).is_err());
    let e = err_text(stack(&[&a, &b], 0));
    assert!(e.contains("same shape"), "{e}");
    let e = err_text(stack(&[&a, &a], 3));
    assert!(e.contains("axis 3 is out of bounds"), "{e}");
    assert!(stack::<i64>(&[], 0).is_err());
}

#[test]
fn stack_inserts_an_axis_of_unit_chunks() {
    let (a, da) = input(&[3, 2], vec![vec![2, 1], vec![2]]);
    let (b, db) = input(&[3, 2], vec![vec![1, 2], vec![1, 1]]);
    for axis in 0..=2 {
        let y = stack(&[&a, &b, &a], axis).unwrap();
        assert_eq!(y.chunks().axis(axis), &[1, 1, 1]);
        assert!(one_input_per_chunk(&y));
        assert_computes(
            &y,
            &ndarray::stack(Axis(axis), &[da.view(), db.view(), da.view()]).unwrap(),
        );
    }
    // 0-d arrays stack into a vector.
    let (s, ds) = input(&[], vec![]);
    let y = stack(&[&s, &s], 0).unwrap();
    assert_computes(
        &y,
        &ndarray::stack(Axis(0), &[ds.view(), ds.view()]).unwrap(),
    );
}

/// A shape and its per-axis chunk sizes.
type ShapeAndChunks = (Vec<usize>, Vec<Vec<usize>>);

/// Arrays sharing `shape` except along `axis` (whose lengths are `lens`), each with its own
/// random chunks.
fn joinable() -> impl Strategy<Value = (usize, Vec<ShapeAndChunks>)> {
    (
        prop::collection::vec(0usize..5, 1..=3),
        0usize..3,
        prop::collection::vec(0usize..5, 1..=3),
    )
        .prop_flat_map(|(shape, axis, lens)| {
            let axis = axis % shape.len();
            let members: Vec<_> = lens
                .into_iter()
                .map(|len| {
                    let mut s = shape.clone();
                    s[axis] = len;
                    (Just(s.clone()), chunks_for(&s))
                })
                .collect();
            (Just(axis), members)
        })
}

proptest! {
    #![proptest_config(config(100))]

    #[test]
    fn concatenate_matches_ndarray((axis, members) in joinable()) {
        let inputs: Vec<(Array<i64>, ArrayD<i64>)> = members
            .iter()
            .enumerate()
            .map(|(k, (shape, sizes))| {
                let (x, d) = input(shape, sizes.clone());
                // Distinct values per input.
                (x.map("offset", move |v| v + 1000 * k as i64), d + 1000 * k as i64)
            })
            .collect();
        let arrays: Vec<&Array<i64>> = inputs.iter().map(|(x, _)| x).collect();
        let views: Vec<_> = inputs.iter().map(|(_, d)| d.view()).collect();
        let y = concatenate(&arrays, axis).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check(&y, &ndarray::concatenate(Axis(axis), &views).unwrap())?;
    }

    #[test]
    fn stack_matches_ndarray(
        (shape, all_sizes, axis) in prop::collection::vec(0usize..5, 0..=3)
            .prop_flat_map(|shape| {
                let n = shape.len();
                (
                    Just(shape.clone()),
                    prop::collection::vec(chunks_for(&shape), 1..=3),
                    0..=n,
                )
            })
    ) {
        let inputs: Vec<(Array<i64>, ArrayD<i64>)> = all_sizes
            .into_iter()
            .enumerate()
            .map(|(k, sizes)| {
                let (x, d) = input(&shape, sizes);
                (x.map("offset", move |v| v + 1000 * k as i64), d + 1000 * k as i64)
            })
            .collect();
        let arrays: Vec<&Array<i64>> = inputs.iter().map(|(x, _)| x).collect();
        let views: Vec<_> = inputs.iter().map(|(_, d)| d.view()).collect();
        let y = stack(&arrays, axis).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(one_input_per_chunk(&y));
        check(&y, &ndarray::stack(Axis(axis), &views).unwrap())?;
    }
}
