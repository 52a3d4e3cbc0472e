//! Array creation, element-wise maths (broadcasting, chunk unification), in-graph rechunk,
//! blockwise fusion, persist and display, each checked against the same computation on a full
//! `ndarray` under both executors.

use chunkflow::array::{self, Array, Chunks, random, where_};
use chunkflow::graph::FreezeOptions;
use chunkflow::prelude::*;
use ndarray::{ArrayD, IxDyn, Zip};
use proptest::prelude::*;

fn executors() -> Vec<ComputeOptions> {
    vec![
        ComputeOptions::default().executor(Sequential),
        ComputeOptions::default().threads(2),
        ComputeOptions::default().threads(4).fuse(false),
    ]
}

fn iota(shape: &[usize]) -> ArrayD<f64> {
    let mut i = 0.0;
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        i += 1.0;
        i * 0.5 - 3.0
    })
}

/// Random chunk sizes for an axis of length `len`.
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

fn shape_and_chunks() -> impl Strategy<Value = (Vec<usize>, Vec<Vec<usize>>)> {
    proptest::collection::vec(1usize..7, 1..4).prop_flat_map(|shape| {
        let chunks: Vec<_> = shape.iter().map(|&n| axis_chunks(n)).collect();
        (Just(shape), chunks)
    })
}

#[test]
fn creation_matches_ndarray() {
    for opts in executors() {
        let z = array::zeros::<i32>(&[5, 3], [2, 2]).unwrap();
        assert_eq!(
            z.compute_with(&opts).unwrap(),
            ArrayD::<i32>::zeros(IxDyn(&[5, 3]))
        );
        let o = array::ones::<f32>(&[4], [3]).unwrap();
        assert_eq!(
            o.compute_with(&opts).unwrap(),
            ArrayD::<f32>::ones(IxDyn(&[4]))
        );
        let f = array::full(&[2, 2, 2], [1, 2, 2], 9u16).unwrap();
        assert_eq!(
            f.compute_with(&opts).unwrap(),
            ArrayD::from_elem(IxDyn(&[2, 2, 2]), 9)
        );
        let a = array::arange(3i64, 20, 4, 2).unwrap();
        assert_eq!(
            a.compute_with(&opts).unwrap().as_slice().unwrap(),
            &[3, 7, 11, 15, 19]
        );
        let l = array::linspace(0.0f64, 1.0, 5, 2).unwrap();
        assert_eq!(
            l.compute_with(&opts).unwrap().as_slice().unwrap(),
            &[0.0, 0.25, 0.5, 0.75, 1.0]
        );
        let data = iota(&[7, 5]);
        let x = array::from_ndarray(data.clone(), [3, 2]).unwrap();
        assert_eq!(x.compute_with(&opts).unwrap(), data);
    }
}

#[test]
fn creation_rejects_bad_chunks() {
    let err = array::zeros::<f64>(&[10], Chunks::new(vec![vec![3, 3]]).unwrap()).unwrap_err();
    assert!(
        err.to_string().contains("10") || err.to_string().contains("sum"),
        "{err}"
    );
    assert!(array::arange(0.0, 1.0, 0.0, 2).is_err());
}

#[test]
fn random_is_reproducible_across_executors_and_threads() {
    let reference = random::random(&[40, 30], [7, 11], 7)
        .unwrap()
        .compute()
        .unwrap();
    for opts in executors() {
        let x = random::random(&[40, 30], [7, 11], 7).unwrap();
        assert_eq!(x.compute_with(&opts).unwrap(), reference);
    }
    let other_seed = random::random(&[40, 30], [7, 11], 8)
        .unwrap()
        .compute()
        .unwrap();
    assert_ne!(reference, other_seed);
    assert!(reference.iter().all(|&v| (0.0..1.0).contains(&v)));
    let n = random::normal(&[200, 200], [50, 50], 10.0, 2.0, 1)
        .unwrap()
        .compute()
        .unwrap();
    let mean = n.mean().unwrap();
    let std = n.std(0.0);
    assert!((mean - 10.0).abs() < 0.05, "{mean}");
    assert!((std - 2.0).abs() < 0.05, "{std}");
    let u = random::uniform(&[100], [30], -1.0, 1.0, 3)
        .unwrap()
        .compute()
        .unwrap();
    assert!(u.iter().all(|&v| (-1.0..1.0).contains(&v)));
}

#[test]
fn broadcasting_follows_numpy() {
    let a = iota(&[6, 4]);
    let row = iota(&[4]);
    let col = iota(&[6, 1]);
    let xa = array::from_ndarray(a.clone(), [4, 3]).unwrap();
    let xr = array::from_ndarray(row.clone(), [1]).unwrap();
    let xc = array::from_ndarray(col.clone(), [5, 1]).unwrap();
    for opts in executors() {
        assert_eq!((&xa + &xr).compute_with(&opts).unwrap(), &a + &row);
        assert_eq!((&xa * &xc).compute_with(&opts).unwrap(), &a * &col);
        assert_eq!((&xr - &xc).compute_with(&opts).unwrap(), &row - &col);
    }
    let bad = array::from_ndarray(iota(&[5]), 2).unwrap();
    let err = xa.try_add(&bad).unwrap_err();
    assert!(err.to_string().contains("could not be broadcast"), "{err}");
}

#[test]
fn comparisons_where_and_astype() {
    let data = iota(&[5, 5]);
    let x = array::from_ndarray(data.clone(), [2, 3]).unwrap();
    let mask = x.gt_scalar(0.0);
    let zero = array::zeros::<f64>(&[5, 5], [5, 1]).unwrap();
    let relu = where_(&mask, &x, &zero).unwrap();
    assert_eq!(relu.compute().unwrap(), data.mapv(|v| v.max(0.0)));
    let ints = x.astype::<i64>().compute().unwrap();
    assert_eq!(ints, data.mapv(|v| v as i64));
    let eq = x.eq_elem(&x).unwrap().compute().unwrap();
    assert!(eq.iter().all(|&b| b));
    let bytes = array::full(&[3], 2, 300i64).unwrap().astype::<u8>();
    let err = bytes.compute().unwrap_err();
    assert!(err.to_string().contains("does not fit"), "{err}");
}

#[test]
fn unary_maths_match_ndarray() {
    let data = iota(&[4, 6]).mapv(f64::abs);
    let x = array::from_ndarray(data.clone(), [3, 4]).unwrap();
    let y = ((&x + 1.0).sqrt() * 2.0 - 0.5).exp().log();
    let expect = data.mapv(|v| (((v + 1.0).sqrt() * 2.0 - 0.5).exp()).ln());
    let got = y.compute().unwrap();
    Zip::from(&got)
        .and(&expect)
        .for_each(|a, b| assert!((a - b).abs() < 1e-12));
    let neg = (-&x).compute().unwrap();
    assert_eq!(neg, data.mapv(|v| -v));
    let left = (10.0 - &x).compute().unwrap();
    assert_eq!(left, data.mapv(|v| 10.0 - v));
}

#[test]
fn five_fused_elementwise_steps_run_as_one_task_per_chunk() {
    let x = random::random(&[200, 200], [10, 10], 0).unwrap();
    assert_eq!(x.num_chunks(), 400);
    // Five element-wise steps: add, mul, sqrt, sub, div.
    let y = (((&x + 1.0) * 2.0).sqrt() - 0.5) / 3.0;
    let unfused = y.graph(FreezeOptions { fuse: false }).unwrap();
    let fused = y.graph(FreezeOptions::default()).unwrap();
    assert_eq!(unfused.len(), 400 * 6);
    assert_eq!(fused.len(), 400);
    let expect = x
        .compute()
        .unwrap()
        .mapv(|v| (((v + 1.0) * 2.0).sqrt() - 0.5) / 3.0);
    assert_eq!(y.compute().unwrap(), expect);
}

#[test]
fn same_expression_twice_gives_same_keys() {
    let x = random::random(&[20, 20], [5, 5], 3).unwrap();
    let a = (&x + 1.0).sqrt();
    let b = (&x + 1.0).sqrt();
    assert_eq!(a.name(), b.name());
    let c = &a + &b;
    // Shared sub-expression: the graph holds each chunk of `a` once.
    assert_eq!(c.num_tasks().unwrap(), 16 * 4);
}

#[test]
fn persist_keeps_keys_and_values() {
    let x = random::random(&[30, 30], [10, 10], 5).unwrap();
    let y = (&x * 2.0).persist().unwrap();
    assert_eq!(y.num_tasks().unwrap(), 9);
    assert_eq!(y.compute().unwrap(), x.compute().unwrap().mapv(|v| v * 2.0));
}

#[test]
fn display_reads_like_dask() {
    let x = random::random(&[600, 200, 200], [300, 100, 200], 0).unwrap();
    let s = x.to_string();
    assert!(s.contains("shape=(600, 200, 200)"), "{s}");
    assert!(s.contains("chunksize=(300, 100, 200)"), "{s}");
    assert!(s.contains("dtype=float64"), "{s}");
    assert!(s.contains("chunks=4"), "{s}");
    assert!(s.contains("183.11 MiB"), "{s}");
}

#[test]
fn map_blocks_knows_its_block_and_checks_shapes() {
    let x = array::zeros::<i32>(&[5, 4], [2, 3]).unwrap();
    let y = x.map_blocks(|mut b, info| {
        b.fill((info.index[0] * 10 + info.index[1]) as i32);
        b
    });
    let got = y.compute().unwrap();
    assert_eq!(got[[4, 3]], 21);
    let bad: Array<i32> = x.map_blocks(|_, _| ArrayD::zeros(IxDyn(&[1])));
    let err = bad.compute().unwrap_err();
    assert!(err.to_string().contains("map_blocks"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn rechunk_preserves_values((shape, chunks) in shape_and_chunks(), seed in 0u64..1000) {
        let data = iota(&shape);
        let x = array::from_ndarray(data.clone(), Chunks::new(chunks).unwrap()).unwrap();
        let target: Vec<usize> = shape.iter().map(|&n| 1 + (seed as usize % n.max(1))).collect();
        let y = x.rechunk(target.as_slice()).unwrap();
        for (axis, &c) in target.iter().enumerate() {
            prop_assert!(y.chunks().axis(axis).iter().all(|&s| s <= c));
        }
        let opts = if seed % 2 == 0 { ComputeOptions::default().threads(2) } else { ComputeOptions::default().executor(Sequential) };
        prop_assert_eq!(y.compute_with(&opts).unwrap(), data);
    }

    #[test]
    fn binary_ops_unify_chunks((shape, chunks_a) in shape_and_chunks(), seed in 0u64..1000) {
        let a = iota(&shape);
        let b = a.mapv(|v| v * 0.25 + 1.0);
        let chunks_b: Vec<usize> = shape.iter().map(|&n| 1 + (seed as usize % n)).collect();
        let xa = array::from_ndarray(a.clone(), Chunks::new(chunks_a).unwrap()).unwrap();
        let xb = array::from_ndarray(b.clone(), chunks_b.as_slice()).unwrap();
        let opts = if seed % 2 == 0 { ComputeOptions::default().threads(2) } else { ComputeOptions::default().executor(Sequential) };
        prop_assert_eq!((&xa + &xb).compute_with(&opts).unwrap(), &a + &b);
        prop_assert_eq!((&xa / &xb).compute_with(&opts).unwrap(), &a / &b);
        prop_assert_eq!(xa.maximum(&xb).unwrap().compute_with(&opts).unwrap(), Zip::from(&a).and(&b).map_collect(|&x, &y| x.max(y)));
    }
}
