//! Blocked linear algebra (`tensordot`, `dot`, `matmul`) checked against the same products on
//! full `ndarray`s, under both executors: fixed cases, property tests over random shapes,
//! chunkings (different on each operand, irregular) and contracted axes, the tutorial pattern,
//! task counts, memory order, and clear errors.
//!
//! Tolerances: integer results are compared exactly. Floating results are compared with the
//! naive reference sum within `4 * K * eps * Σ|a_i * b_i|` per element (K the contracted
//! length, eps the type's machine epsilon), the classic bound for a reordered dot product,
//! plus a tiny absolute slack; the two executors must agree bit for bit.

use chunkflow::array::{self, Array, tensordot};
use chunkflow::graph::FreezeOptions;
use chunkflow::graph::order::max_live_results;
use chunkflow::prelude::*;
use ndarray::{ArrayD, Axis, Dimension, Ix1, Ix2, IxDyn, ShapeBuilder};
use num_traits::{Float, Zero};
use proptest::prelude::*;

/// The fan-in of linalg's trees (private there): block products per partial-product task and
/// partials per sum task.
const SPLIT_EVERY: usize = 8;

fn executors() -> Vec<ComputeOptions> {
    vec![
        ComputeOptions::default().executor(Sequential),
        ComputeOptions::default().threads(2),
    ]
}

// ---------------------------------------------------------------------------------------------
// References on full arrays

/// numpy's `tensordot` by the definition: for every output element, the sum over the
/// contracted multi-index.
fn ref_tensordot<T>(a: &ArrayD<T>, b: &ArrayD<T>, axes_a: &[usize], axes_b: &[usize]) -> ArrayD<T>
where
    T: Copy + Zero + std::ops::Mul<Output = T>,
{
    let a_free: Vec<usize> = (0..a.ndim()).filter(|x| !axes_a.contains(x)).collect();
    let b_free: Vec<usize> = (0..b.ndim()).filter(|x| !axes_b.contains(x)).collect();
    let out_shape: Vec<usize> = a_free
        .iter()
        .map(|&x| a.shape()[x])
        .chain(b_free.iter().map(|&y| b.shape()[y]))
        .collect();
    let con_shape: Vec<usize> = axes_a.iter().map(|&x| a.shape()[x]).collect();
    ArrayD::from_shape_fn(IxDyn(&out_shape), |oi| {
        let mut ai = vec![0; a.ndim()];
        let mut bi = vec![0; b.ndim()];
        for (k, &x) in a_free.iter().enumerate() {
            ai[x] = oi[k];
        }
        for (k, &y) in b_free.iter().enumerate() {
            bi[y] = oi[a_free.len() + k];
        }
        let mut s = T::zero();
        for ci in ndarray::indices(IxDyn(&con_shape)) {
            for (k, (&x, &y)) in axes_a.iter().zip(axes_b).enumerate() {
                ai[x] = ci[k];
                bi[y] = ci[k];
            }
            s = s + a[IxDyn(&ai)] * b[IxDyn(&bi)];
        }
        s
    })
}

/// The per-element error bound of a dot product of length `k`: `4 k eps Σ|a_i b_i|`.
fn bound<T: Float>(a: &ArrayD<T>, b: &ArrayD<T>, axes_a: &[usize], axes_b: &[usize]) -> ArrayD<T> {
    let k: usize = axes_a.iter().map(|&x| a.shape()[x]).product();
    let scale = ref_tensordot(&a.mapv(T::abs), &b.mapv(T::abs), axes_a, axes_b);
    let f = T::from(4 * k.max(1)).unwrap() * T::epsilon();
    scale.mapv(|s| s * f + T::min_positive_value())
}

fn assert_close<T: Float + std::fmt::Debug>(got: &ArrayD<T>, want: &ArrayD<T>, tol: &ArrayD<T>) {
    assert_eq!(got.shape(), want.shape());
    for ((g, w), t) in got.iter().zip(want).zip(tol) {
        assert!(
            (*g - *w).abs() <= *t,
            "got {g:?}, want {w:?} (tolerance {t:?})"
        );
    }
}

/// Deterministic pseudo-random values in `[-1, 1)` for floats.
fn floats(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    })
}

/// Small integers in `-4..=4` (products of sums stay far from overflow).
fn ints(shape: &[usize], seed: u64) -> ArrayD<i64> {
    floats(shape, seed).mapv(|x| (x * 4.5).round() as i64)
}

fn chunked<T: chunkflow::array::Element>(data: &ArrayD<T>, chunks: &[Vec<usize>]) -> Array<T> {
    array::from_ndarray(data.clone(), array::ChunkSpec::explicit(chunks.to_vec())).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Fixed cases

#[test]
fn matrix_product_matches_ndarray() {
    let a = floats(&[7, 9], 1);
    let b = floats(&[9, 5], 2);
    let want = a
        .view()
        .into_dimensionality::<Ix2>()
        .unwrap()
        .dot(&b.view().into_dimensionality::<Ix2>().unwrap())
        .into_dyn();
    let tol = bound(&a, &b, &[1], &[0]);
    // Different, irregular chunkings on the contracted axis (9 = 4+5 vs 2+3+4).
    let x = chunked(&a, &[vec![3, 4], vec![4, 5]]);
    let y = chunked(&b, &[vec![2, 3, 4], vec![1, 4]]);
    for opts in executors() {
        let z = x.dot(&y).unwrap();
        assert_eq!(z.shape(), &[7, 5]);
        assert_eq!(z.chunks().axes(), &[vec![3, 4], vec![1, 4]]);
        assert_close(&z.compute_with(&opts).unwrap(), &want, &tol);
        let m = x.matmul(&y).unwrap();
        assert_close(&m.compute_with(&opts).unwrap(), &want, &tol);
        let t = tensordot(&x, &y, &[1], &[0]).unwrap();
        assert_close(&t.compute_with(&opts).unwrap(), &want, &tol);
    }
}

#[test]
fn vector_cases_follow_numpy() {
    let m = ints(&[6, 4], 3);
    let v = ints(&[4], 4);
    let w = ints(&[6], 5);
    let m2 = m.view().into_dimensionality::<Ix2>().unwrap().to_owned();
    let v1 = v.view().into_dimensionality::<Ix1>().unwrap().to_owned();
    let w1 = w.view().into_dimensionality::<Ix1>().unwrap().to_owned();
    let (xm, xv, xw) = (
        chunked(&m, &[vec![2, 2, 2], vec![3, 1]]),
        chunked(&v, &[vec![1, 1, 2]]),
        chunked(&w, &[vec![5, 1]]),
    );
    for opts in executors() {
        // 1-D · 1-D: a 0-d inner product.
        let inner = xv.dot(&xv).unwrap();
        assert_eq!(inner.shape(), &[] as &[usize]);
        assert_eq!(inner.compute_with(&opts).unwrap()[[]], v1.dot(&v1));
        assert_eq!(
            xv.matmul(&xv).unwrap().compute_with(&opts).unwrap()[[]],
            v1.dot(&v1)
        );
        // 2-D · 1-D and 1-D · 2-D: vectors.
        let mv = xm.dot(&xv).unwrap();
        assert_eq!(mv.shape(), &[6]);
        assert_eq!(mv.compute_with(&opts).unwrap(), m2.dot(&v1).into_dyn());
        let vm = xw.dot(&xm).unwrap();
        assert_eq!(vm.shape(), &[4]);
        assert_eq!(vm.compute_with(&opts).unwrap(), w1.dot(&m2).into_dyn());
        assert_eq!(
            xw.matmul(&xm).unwrap().compute_with(&opts).unwrap(),
            w1.dot(&m2).into_dyn()
        );
        assert_eq!(
            xm.matmul(&xv).unwrap().compute_with(&opts).unwrap(),
            m2.dot(&v1).into_dyn()
        );
        // 0-d · N-d: numpy's dot multiplies.
        let s = array::from_ndarray(ArrayD::from_elem(IxDyn(&[]), 3i64), 1).unwrap();
        assert_eq!(s.dot(&xm).unwrap().compute_with(&opts).unwrap(), &m * 3);
        assert_eq!(xm.dot(&s).unwrap().compute_with(&opts).unwrap(), &m * 3);
    }
}

#[test]
fn float32_uses_the_same_path() {
    let a = floats(&[5, 8], 6).mapv(|x| x as f32);
    let b = floats(&[8, 3], 7).mapv(|x| x as f32);
    let x = chunked(&a, &[vec![5], vec![3, 5]]);
    let y = chunked(&b, &[vec![8], vec![2, 1]]);
    let want = ref_tensordot(&a, &b, &[1], &[0]);
    let tol = bound(&a, &b, &[1], &[0]);
    for opts in executors() {
        assert_close(
            &x.dot(&y).unwrap().compute_with(&opts).unwrap(),
            &want,
            &tol,
        );
    }
}

#[test]
fn higher_dimensional_dot_is_tensordot_over_last_and_second_to_last() {
    let a = ints(&[2, 3, 4], 8);
    let b = ints(&[5, 4, 2], 9);
    let x = chunked(&a, &[vec![1, 1], vec![2, 1], vec![3, 1]]);
    let y = chunked(&b, &[vec![5], vec![1, 3], vec![1, 1]]);
    let z = x.dot(&y).unwrap();
    assert_eq!(z.shape(), &[2, 3, 5, 2]);
    for opts in executors() {
        assert_eq!(
            z.compute_with(&opts).unwrap(),
            ref_tensordot(&a, &b, &[2], &[1])
        );
    }
}

#[test]
fn blocks_in_any_memory_layout() {
    // Blocks in Fortran order and transposed views must give the same product.
    let a = floats(&[6, 10], 10);
    let b = floats(&[10, 4], 11);
    let fortran = |x: Array<f64>| {
        x.map_blocks(|blk, _| {
            let mut f = ArrayD::zeros(IxDyn(blk.shape()).f());
            f.assign(&blk);
            f
        })
    };
    let x = fortran(chunked(&a, &[vec![4, 2], vec![3, 7]]));
    let y = fortran(chunked(&b, &[vec![5, 5], vec![4]]));
    // The transpose built from a transposed (Fortran-order) full array.
    let bt = chunked(&b.t().to_owned(), &[vec![2, 2], vec![6, 4]]);
    let want = ref_tensordot(&a, &b, &[1], &[0]);
    let tol = bound(&a, &b, &[1], &[0]);
    for opts in executors() {
        assert_close(
            &x.dot(&y).unwrap().compute_with(&opts).unwrap(),
            &want,
            &tol,
        );
        // a · (bᵀ)ᵀ as a tensordot over bᵀ's axis 1.
        let t = tensordot(&x, &bt, &[1], &[1]).unwrap();
        assert_close(&t.compute_with(&opts).unwrap(), &want, &tol);
    }
}

#[test]
fn empty_contraction_gives_zeros_and_outer_products_work() {
    let a = ints(&[3, 0], 12);
    let b = ints(&[0, 2], 13);
    let z = array::from_ndarray(a, [2, 1])
        .unwrap()
        .dot(&array::from_ndarray(b, [1, 1]).unwrap())
        .unwrap();
    assert_eq!(z.shape(), &[3, 2]);
    for opts in executors() {
        assert_eq!(
            z.compute_with(&opts).unwrap(),
            ArrayD::<i64>::zeros(IxDyn(&[3, 2]))
        );
    }
    // No contracted axes: the outer product.
    let u = ints(&[3], 14);
    let v = ints(&[2, 2], 15);
    let o = tensordot(
        &chunked(&u, &[vec![2, 1]]),
        &chunked(&v, &[vec![1, 1], vec![2]]),
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(o.shape(), &[3, 2, 2]);
    for opts in executors() {
        assert_eq!(
            o.compute_with(&opts).unwrap(),
            ref_tensordot(&u, &v, &[], &[])
        );
    }
}

#[test]
fn a_product_of_an_array_with_itself() {
    let a = ints(&[5, 5], 16);
    let x = chunked(&a, &[vec![2, 3], vec![4, 1]]);
    let want = ref_tensordot(&a, &a, &[1], &[0]);
    for opts in executors() {
        assert_eq!(x.dot(&x).unwrap().compute_with(&opts).unwrap(), want);
    }
    let v = ints(&[7], 17);
    let xv = chunked(&v, &[vec![3, 3, 1]]);
    assert_eq!(
        xv.dot(&xv).unwrap().compute().unwrap()[[]],
        v.iter().map(|x| x * x).sum::<i64>()
    );
}

// ---------------------------------------------------------------------------------------------
// Batched matmul

/// numpy's `matmul` on full arrays, by broadcasting the batch axes by hand.
fn ref_matmul(a: &ArrayD<i64>, b: &ArrayD<i64>) -> ArrayD<i64> {
    let (an, bn) = (a.ndim(), b.ndim());
    let (anb, bnb) = (an.saturating_sub(2), bn.saturating_sub(2));
    let nb = anb.max(bnb);
    let batch: Vec<usize> = (0..nb)
        .map(|k| {
            let la = (k + anb).checked_sub(nb).map_or(1, |x| a.shape()[x]);
            let lb = (k + bnb).checked_sub(nb).map_or(1, |x| b.shape()[x]);
            if la == 1 { lb } else { la }
        })
        .collect();
    let item = |x: &ArrayD<i64>, xnb: usize, bi: &[usize]| {
        let mut v = x.view();
        for (k, &i) in bi[nb - xnb..].iter().enumerate() {
            let _ = k;
            let i = if v.shape()[0] == 1 { 0 } else { i };
            v = v.index_axis_move(Axis(0), i);
        }
        v.to_owned()
    };
    let mut parts = Vec::new();
    let mut core_shape = Vec::new();
    for bi in ndarray::indices(IxDyn(&batch)) {
        let bi = bi.slice().to_vec();
        let (x, y) = (item(a, anb, &bi), item(b, bnb, &bi));
        let p = ref_tensordot(&x, &y, &[x.ndim() - 1], &[y.ndim().saturating_sub(2)]);
        core_shape = p.shape().to_vec();
        parts.extend(p.iter().copied());
    }
    let mut shape = batch.clone();
    if batch.iter().product::<usize>() == 0 {
        // The core shape of an empty batch: rows of a, columns of b.
        core_shape = [
            (an >= 2).then(|| a.shape()[an - 2]),
            (bn >= 2).then(|| b.shape()[bn - 1]),
        ]
        .into_iter()
        .flatten()
        .collect();
    }
    shape.extend(core_shape);
    ArrayD::from_shape_vec(IxDyn(&shape), parts).unwrap()
}

#[test]
fn matmul_broadcasts_batch_axes() {
    let cases: &[(&[usize], &[usize])] = &[
        (&[3, 2, 4], &[4, 5]),
        (&[4], &[3, 4, 2]),
        (&[2, 1, 3, 4], &[5, 4, 2]),
        (&[1, 3, 4], &[2, 1, 4, 2]),
        (&[2, 3, 4], &[4, 2]),
        (&[0, 2, 3], &[3, 2]),
    ];
    for (i, &(sa, sb)) in cases.iter().enumerate() {
        let a = ints(sa, 20 + i as u64);
        let b = ints(sb, 40 + i as u64);
        let x = array::from_ndarray(a.clone(), 2).unwrap();
        let y = array::from_ndarray(b.clone(), 3).unwrap();
        let z = x.matmul(&y).unwrap();
        let want = ref_matmul(&a, &b);
        assert_eq!(z.shape(), want.shape(), "{sa:?} @ {sb:?}");
        for opts in executors() {
            assert_eq!(z.compute_with(&opts).unwrap(), want, "{sa:?} @ {sb:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors: clear messages, never panics

#[test]
fn bad_arguments_are_clear_errors() {
    let x = array::ones::<f64>(&[3, 4], 2).unwrap();
    let y = array::ones::<f64>(&[5, 6], 2).unwrap();
    let v = array::ones::<f64>(&[5], 2).unwrap();
    let s = array::ones::<f64>(&[], 1).unwrap();
    let msg = |r: Result<Array<f64>>| r.unwrap_err().to_string();

    let e = msg(tensordot(&x, &y, &[1], &[0]));
    assert!(
        e.contains("axis 1 of a has length 4") && e.contains("axis 0 of b has length 5"),
        "{e}"
    );
    let e = msg(tensordot(&x, &y, &[0, 1], &[0]));
    assert!(e.contains("axes_a lists 2 axes but axes_b lists 1"), "{e}");
    let e = msg(tensordot(&x, &y, &[2], &[0]));
    assert!(
        e.contains("axis 2 of a is out of range (a has 2 dimensions)"),
        "{e}"
    );
    let e = msg(tensordot(&x, &y, &[0], &[7]));
    assert!(e.contains("axis 7 of b is out of range"), "{e}");
    let e = msg(tensordot(&x, &x, &[0, 0], &[0, 1]));
    assert!(e.contains("axis 0 of a is listed twice"), "{e}");
    let e = msg(x.dot(&y));
    assert!(
        e.starts_with("invalid argument: dot: shapes [3, 4] and [5, 6] are not aligned"),
        "{e}"
    );
    let e = msg(x.dot(&v));
    assert!(
        e.contains("axis 1 of a has length 4 but axis 0 of b has length 5"),
        "{e}"
    );
    let e = msg(x.matmul(&y));
    assert!(
        e.contains("the last axis of a has length 4 but the second-to-last axis of b"),
        "{e}"
    );
    let e = msg(x.matmul(&s));
    assert!(e.contains("matmul: operand b is 0-d"), "{e}");
    let e = msg(s.matmul(&x));
    assert!(e.contains("matmul: operand a is 0-d"), "{e}");
    let p = array::ones::<f64>(&[2, 3, 4], 2).unwrap();
    let q = array::ones::<f64>(&[5, 4, 2], 2).unwrap();
    let e = msg(p.matmul(&q));
    assert!(
        e.contains("do not broadcast") && e.contains("lengths 2 and 5"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Graph shape: task counts, tree depth, memory order, keys

/// Tasks per output block for `n_k` blocks along the contracted axes: the partial products
/// (one per group of at most `SPLIT_EVERY` block pairs) and the sum tree over them, root
/// included.
fn tasks_per_block(n_k: usize) -> usize {
    if n_k <= SPLIT_EVERY {
        return 1;
    }
    let mut n = n_k.div_ceil(SPLIT_EVERY);
    let mut tasks = n;
    while n > SPLIT_EVERY {
        n = n.div_ceil(SPLIT_EVERY);
        tasks += n;
    }
    tasks + 1
}

#[test]
fn task_counts_follow_the_blocking() {
    // (300, 2000) · (2000, 300) in (50, 200) / (200, 50) chunks: 36 output blocks, 10
    // contracted blocks: per output block 2 partial products (5 + 5 block pairs) and their
    // sum, plus 60 + 60 input chunks.
    let xt = array::ones::<f64>(&[300, 2000], [50, 200]).unwrap();
    let x = array::ones::<f64>(&[2000, 300], [200, 50]).unwrap();
    let g = xt.dot(&x).unwrap();
    assert_eq!(g.num_chunks(), 36);
    assert_eq!(tasks_per_block(10), 3);
    assert_eq!(g.num_tasks().unwrap(), 60 + 60 + 36 * 3);
    // One task per output block while the contracted blocks fit one group (here 1).
    let y = array::ones::<f64>(&[20, 7], [5, 7]).unwrap();
    let z = array::ones::<f64>(&[7, 9], [7, 3]).unwrap();
    assert_eq!(y.dot(&z).unwrap().num_tasks().unwrap(), 4 + 3 + 4 * 3);
    let (y, z) = (y.rechunk([5, 1]).unwrap(), z.rechunk([1, 3]).unwrap());
    assert_eq!(tasks_per_block(7), 1);
    let rechunks = y.num_tasks().unwrap() + z.num_tasks().unwrap();
    assert_eq!(y.dot(&z).unwrap().num_tasks().unwrap(), rechunks + 4 * 3);
    // Building the same expression twice gives the same keys.
    assert_eq!(xt.dot(&x).unwrap().name(), g.name());
    assert_ne!(x.dot(&xt).unwrap().name(), g.name());
}

#[test]
fn long_contractions_sum_in_a_tree_with_few_results_alive() {
    // 1 x 1000 times 1000 x 1 in chunks of 1: 1000 block products in 125 partial-product
    // tasks, summed 125 -> 16 -> 2 -> 1.
    let n = 1000;
    let a = ints(&[1, n], 50);
    let b = ints(&[n, 1], 51);
    let x = array::from_ndarray(a.clone(), [1, 1]).unwrap();
    let y = array::from_ndarray(b.clone(), [1, 1]).unwrap();
    let z = x.dot(&y).unwrap();
    let g = z.graph(FreezeOptions { fuse: false }).unwrap();
    assert_eq!(tasks_per_block(n), 125 + 16 + 2 + 1);
    assert_eq!(g.len(), 2 * n + tasks_per_block(n));
    // Depth-first order: the inputs of one partial product plus the pending partials of each
    // tree level (3 sum levels), not all 1000 blocks.
    let peak = max_live_results(&g, &g.static_order());
    assert!(
        peak <= 2 * SPLIT_EVERY + 3 * (SPLIT_EVERY - 1) + 1,
        "peak {peak} results alive"
    );
    eprintln!("peak results alive: {peak} of {}", g.len());
    for opts in executors() {
        assert_eq!(
            z.compute_with(&opts).unwrap(),
            ref_tensordot(&a, &b, &[1], &[0])
        );
    }
}

#[test]
fn executors_agree_bit_for_bit() {
    let a = floats(&[9, 40], 60);
    let b = floats(&[40, 7], 61);
    let x = chunked(
        &a,
        &[vec![4, 5], vec![3; 13].into_iter().chain([1]).collect()],
    );
    let y = chunked(&b, &[vec![5; 8], vec![7]]);
    let z = x.dot(&y).unwrap();
    let results: Vec<ArrayD<f64>> = executors()
        .iter()
        .chain([&ComputeOptions::default().threads(4).fuse(false)])
        .map(|o| z.compute_with(o).unwrap())
        .collect();
    for r in &results[1..] {
        assert_eq!(r, &results[0]);
    }
}

// ---------------------------------------------------------------------------------------------
// The tutorial pattern

#[test]
fn tutorial_mean_and_transpose_products() {
    // x: (2000, 300) in (200, 50) chunks; its column means; xᵀ built from the full transpose.
    let full = floats(&[2000, 300], 70);
    let x = array::from_ndarray(full.clone(), [200, 50]).unwrap();
    let xt = array::from_ndarray(full.t().to_owned(), [50, 200]).unwrap();
    let mean = full.mean_axis(Axis(0)).unwrap();
    let m = array::from_ndarray(mean.clone(), [50]).unwrap();
    let centred = x.try_sub(&m).unwrap();

    let x2 = full.view().into_dimensionality::<Ix2>().unwrap();
    let m1 = mean.view().into_dimensionality::<Ix1>().unwrap();
    let c2 = &x2 - &m1;
    let opts = ComputeOptions::default().threads(2);

    // mean · xᵀ: (300,) · (300, 2000) -> (2000,)
    let mx = m.dot(&xt).unwrap();
    assert_eq!(mx.shape(), &[2000]);
    assert_eq!(mx.chunks().axis(0), &[200; 10]);
    let want = m1.dot(&x2.t()).into_dyn();
    let tol = bound(&mean, &full.t().to_owned(), &[0], &[0]);
    assert_close(&mx.compute_with(&opts).unwrap(), &want, &tol);

    // x · mean: (2000, 300) · (300,) -> (2000,)
    let xm = x.dot(&m).unwrap();
    assert_close(
        &xm.compute_with(&opts).unwrap(),
        &x2.dot(&m1).into_dyn(),
        &tol,
    );

    // The Gram matrix of the centred data: xcᵀ · xc, (300, 300), 10 partials per block.
    let ct = array::from_ndarray(c2.t().to_owned().into_dyn(), [50, 200]).unwrap();
    let gram = ct.dot(&centred).unwrap();
    assert_eq!(gram.shape(), &[300, 300]);
    assert_eq!(gram.chunks().axes(), &[vec![50; 6], vec![50; 6]]);
    let want = c2.t().dot(&c2).into_dyn();
    // The bound of `bound`, with ndarray's product of the absolute values.
    let abs = c2.mapv(f64::abs);
    let tol = abs
        .t()
        .dot(&abs)
        .mapv(|s| s * 4.0 * 2000.0 * f64::EPSILON)
        .into_dyn();
    let start = std::time::Instant::now();
    assert_close(&gram.compute_with(&opts).unwrap(), &want, &tol);
    eprintln!("gram: {:?}", start.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Property tests

/// Random chunk sizes for an axis of length `len` (irregular; `[0]` for an empty axis).
fn axis_chunks(len: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1..=len.max(1), 1..=len.max(1)).prop_map(move |sizes| {
        let mut out = Vec::new();
        let mut left = len;
        for s in sizes {
            if left == 0 {
                break;
            }
            let s = s.min(left);
            out.push(s);
            left -= s;
        }
        if left > 0 {
            out.push(left);
        }
        if out.is_empty() {
            out.push(0);
        }
        out
    })
}

fn chunks_for(shape: &[usize]) -> Vec<BoxedStrategy<Vec<usize>>> {
    shape.iter().map(|&n| axis_chunks(n).boxed()).collect()
}

#[derive(Debug, Clone)]
struct Case {
    shape_a: Vec<usize>,
    shape_b: Vec<usize>,
    axes_a: Vec<usize>,
    axes_b: Vec<usize>,
    chunks_a: Vec<Vec<usize>>,
    chunks_b: Vec<Vec<usize>>,
    seed: u64,
}

/// Random ranks (0 to 3), shapes (lengths 0 to 4), contracted axes in random order, and
/// independent random chunkings of the two operands.
fn tensordot_case() -> impl Strategy<Value = Case> {
    (0usize..=3, 0usize..=3)
        .prop_flat_map(|(na, nb)| {
            (
                0..=na.min(nb),
                Just((0..na).collect::<Vec<_>>()).prop_shuffle(),
                Just((0..nb).collect::<Vec<_>>()).prop_shuffle(),
                proptest::collection::vec(0usize..5, na),
                proptest::collection::vec(0usize..5, nb),
            )
        })
        .prop_flat_map(|(nc, pa, pb, sa, mut sb)| {
            let axes_a = pa[..nc].to_vec();
            let axes_b = pb[..nc].to_vec();
            for (&x, &y) in axes_a.iter().zip(&axes_b) {
                sb[y] = sa[x];
            }
            (
                Just(sa.clone()),
                Just(sb.clone()),
                Just(axes_a),
                Just(axes_b),
                chunks_for(&sa),
                chunks_for(&sb),
                any::<u64>(),
            )
        })
        .prop_map(
            |(shape_a, shape_b, axes_a, axes_b, chunks_a, chunks_b, seed)| Case {
                shape_a,
                shape_b,
                axes_a,
                axes_b,
                chunks_a,
                chunks_b,
                seed,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn tensordot_matches_reference_ints(case in tensordot_case()) {
        let a = ints(&case.shape_a, case.seed);
        let b = ints(&case.shape_b, case.seed ^ 1);
        let x = chunked(&a, &case.chunks_a);
        let y = chunked(&b, &case.chunks_b);
        let z = tensordot(&x, &y, &case.axes_a, &case.axes_b).unwrap();
        let want = ref_tensordot(&a, &b, &case.axes_a, &case.axes_b);
        prop_assert_eq!(z.shape(), want.shape());
        for opts in executors() {
            prop_assert_eq!(&z.compute_with(&opts).unwrap(), &want);
        }
        // i32 takes the same integer path.
        let z32 = tensordot(
            &chunked(&a.mapv(|v| v as i32), &case.chunks_a),
            &chunked(&b.mapv(|v| v as i32), &case.chunks_b),
            &case.axes_a,
            &case.axes_b,
        ).unwrap();
        prop_assert_eq!(z32.compute().unwrap(), want.mapv(|v| v as i32));
    }

    #[test]
    fn tensordot_matches_reference_floats(case in tensordot_case()) {
        let a = floats(&case.shape_a, case.seed);
        let b = floats(&case.shape_b, case.seed ^ 1);
        let x = chunked(&a, &case.chunks_a);
        let y = chunked(&b, &case.chunks_b);
        let z = tensordot(&x, &y, &case.axes_a, &case.axes_b).unwrap();
        let want = ref_tensordot(&a, &b, &case.axes_a, &case.axes_b);
        let tol = bound(&a, &b, &case.axes_a, &case.axes_b);
        let results: Vec<ArrayD<f64>> =
            executors().iter().map(|o| z.compute_with(o).unwrap()).collect();
        assert_close(&results[0], &want, &tol);
        prop_assert_eq!(&results[0], &results[1]);
        // f32 through sgemm.
        let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
        let z32 = tensordot(
            &chunked(&a32, &case.chunks_a),
            &chunked(&b32, &case.chunks_b),
            &case.axes_a,
            &case.axes_b,
        ).unwrap();
        assert_close(
            &z32.compute().unwrap(),
            &ref_tensordot(&a32, &b32, &case.axes_a, &case.axes_b),
            &bound(&a32, &b32, &case.axes_a, &case.axes_b),
        );
    }

    #[test]
    fn dot_and_matmul_match_ndarray_for_vectors_and_matrices(
        (m, k, n) in (0usize..6, 0usize..7, 0usize..6),
        (a_is_vec, b_is_vec) in (any::<bool>(), any::<bool>()),
        seed in any::<u64>(),
        chunk_seed in (1usize..4, 1usize..4, 1usize..4, 1usize..4),
    ) {
        let shape_a: Vec<usize> = if a_is_vec { vec![k] } else { vec![m, k] };
        let shape_b: Vec<usize> = if b_is_vec { vec![k] } else { vec![k, n] };
        let a = ints(&shape_a, seed);
        let b = ints(&shape_b, seed ^ 7);
        let (c0, c1, c2, c3) = chunk_seed;
        let x = array::from_ndarray(a.clone(), if a_is_vec { vec![c1] } else { vec![c0, c1] }).unwrap();
        let y = array::from_ndarray(b.clone(), if b_is_vec { vec![c2] } else { vec![c2, c3] }).unwrap();
        let want = match (a_is_vec, b_is_vec) {
            (true, true) => ndarray::arr0(
                a.view().into_dimensionality::<Ix1>().unwrap()
                    .dot(&b.view().into_dimensionality::<Ix1>().unwrap())).into_dyn(),
            (true, false) => a.view().into_dimensionality::<Ix1>().unwrap()
                .dot(&b.view().into_dimensionality::<Ix2>().unwrap()).into_dyn(),
            (false, true) => a.view().into_dimensionality::<Ix2>().unwrap()
                .dot(&b.view().into_dimensionality::<Ix1>().unwrap()).into_dyn(),
            (false, false) => a.view().into_dimensionality::<Ix2>().unwrap()
                .dot(&b.view().into_dimensionality::<Ix2>().unwrap()).into_dyn(),
        };
        for opts in executors() {
            prop_assert_eq!(&x.dot(&y).unwrap().compute_with(&opts).unwrap(), &want);
            prop_assert_eq!(&x.matmul(&y).unwrap().compute_with(&opts).unwrap(), &want);
        }
    }

    #[test]
    fn matmul_matches_reference_with_batches(
        (a_batch, b_batch) in (
            proptest::collection::vec(prop_oneof![Just(1usize), Just(2), Just(3)], 0..3),
            proptest::collection::vec(prop_oneof![Just(1usize), Just(2), Just(3)], 0..3),
        ),
        (m, k, n) in (1usize..4, 0usize..5, 1usize..4),
        (a_vec, b_vec) in (any::<bool>(), any::<bool>()),
        chunk in 1usize..3,
        seed in any::<u64>(),
    ) {
        // Make the batch axes broadcastable: where both have an axis, equal or one of them 1.
        let mut b_batch = b_batch;
        let off = |x: &Vec<usize>, nb: usize| nb - x.len();
        let nb = a_batch.len().max(b_batch.len());
        for i in 0..nb {
            let ai = i.checked_sub(off(&a_batch, nb));
            let bi = i.checked_sub(off(&b_batch, nb));
            if let (Some(ai), Some(bi)) = (ai, bi)
                && a_batch[ai] != 1
                && b_batch[bi] != 1
            {
                b_batch[bi] = a_batch[ai];
            }
        }
        let shape_a: Vec<usize> = if a_vec { vec![k] } else { a_batch.iter().copied().chain([m, k]).collect() };
        let shape_b: Vec<usize> = if b_vec { vec![k] } else { b_batch.iter().copied().chain([k, n]).collect() };
        let a = ints(&shape_a, seed);
        let b = ints(&shape_b, seed ^ 3);
        let x = array::from_ndarray(a.clone(), chunk).unwrap();
        let y = array::from_ndarray(b.clone(), chunk + 1).unwrap();
        let z = x.matmul(&y).unwrap();
        let want = ref_matmul(&a, &b);
        prop_assert_eq!(z.shape(), want.shape());
        for opts in executors() {
            prop_assert_eq!(&z.compute_with(&opts).unwrap(), &want);
        }
    }

    #[test]
    fn random_bad_axes_are_errors_not_panics(
        na in 0usize..4, nb in 0usize..4,
        axes_a in proptest::collection::vec(0usize..5, 0..4),
        axes_b in proptest::collection::vec(0usize..5, 0..4),
    ) {
        let x = array::ones::<i32>(&vec![2; na], 1).unwrap();
        let y = array::ones::<i32>(&vec![3; nb], 2).unwrap();
        // Contracting a length-2 axis with a length-3 one, or anything malformed: an error.
        match tensordot(&x, &y, &axes_a, &axes_b) {
            Ok(z) => {
                prop_assert!(axes_a.is_empty() && axes_b.is_empty());
                prop_assert_eq!(z.ndim(), na + nb);
            }
            Err(e) => prop_assert!(e.to_string().starts_with("invalid argument: tensordot: ")),
        }
    }
}

type Reference<'a> = dyn Fn() -> ndarray::Array2<f64> + 'a;

/// Timings of the tutorial products against ndarray's in-memory `dot` (one thread). Run with
/// `cargo test --release --test array_linalg -- --ignored --nocapture`.
#[test]
#[ignore = "timing; run in release"]
fn tutorial_timings() {
    let full = floats(&[2000, 300], 80);
    let x2 = full.view().into_dimensionality::<Ix2>().unwrap();
    for (c0, c1) in [(200, 50), (200, 300), (500, 50)] {
        let x = array::from_ndarray(full.clone(), [c0, c1]).unwrap();
        let xt = array::from_ndarray(full.t().to_owned(), [c1, c0]).unwrap();
        for threads in [1, 2] {
            let opts = ComputeOptions::default().threads(threads);
            let cases: [(&str, Array<f64>, &Reference); 2] = [
                ("x.xT", x.dot(&xt).unwrap(), &|| x2.dot(&x2.t())),
                ("xT.x", xt.dot(&x).unwrap(), &|| x2.t().dot(&x2)),
            ];
            for (name, z, reference) in cases {
                // Best of 5: the machine is shared.
                let best = |f: &dyn Fn()| {
                    (0..5)
                        .map(|_| {
                            let start = std::time::Instant::now();
                            f();
                            start.elapsed()
                        })
                        .min()
                        .unwrap()
                };
                let ours = best(&|| drop(z.compute_with(&opts).unwrap()));
                let theirs = best(&|| drop(reference()));
                let got = z.compute_with(&opts).unwrap();
                let want = reference();
                let err = (&got - &want.into_dyn())
                    .mapv(f64::abs)
                    .fold(0.0, |m: f64, &e| m.max(e));
                eprintln!(
                    "{name} chunks=({c0}, {c1}) threads={threads} tasks={}: chunkflow {ours:?}, \
                     ndarray {theirs:?}, max error {err:e}",
                    z.num_tasks().unwrap()
                );
            }
        }
    }
}
