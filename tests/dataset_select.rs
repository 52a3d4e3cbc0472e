//! Selection and maths by dimension name (`chunkflow::dataset`): `isel` (positions, slices,
//! orthogonal lists, pointwise points), `sel` (exact, methods, label slices, lists, datetimes),
//! reductions over named dimensions, arithmetic broadcast by name, `transpose`, `dot`, and
//! `Array::take` / `take_points` underneath.
//!
//! Every computation is checked against the same one done on the full `ndarray` by an
//! independent oracle, over random shapes, chunkings and selections (seeded, so failures
//! reproduce), plus the errors: unknown dimension, label not found, index out of range,
//! missing variable, `sel` without an index coordinate, mismatched lengths and indexes.

use std::collections::HashMap;

use chunkflow::array::{self, Array, ChunkSpec, DType};
use chunkflow::dataset::time::parse_datetime;
use chunkflow::dataset::{
    AnyArray, BinaryOp, DataArray, Dataset, DatasetError, Indexer, Label, OpenOptions, Reduction,
    ReductionOptions, SelOptions, Selector, Slice, Variable, open_zarr,
};
use chunkflow::store::{ArraySpec, FillValue, Store, ZarrArray, ZarrFormat, create_group};
use ndarray::{ArrayD, Axis, IxDyn};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::json;

type Nd = ArrayD<f64>;

fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// A random partition of each axis into chunks.
fn random_chunks(r: &mut Xoshiro256PlusPlus, shape: &[usize]) -> Vec<Vec<usize>> {
    shape
        .iter()
        .map(|&len| {
            if len == 0 {
                return vec![0];
            }
            let mut sizes = Vec::new();
            let mut left = len;
            while left > 0 {
                let s = r.random_range(1..=left.min(4));
                sizes.push(s);
                left -= s;
            }
            sizes
        })
        .collect()
}

fn random_data(r: &mut Xoshiro256PlusPlus, shape: &[usize], nan: f64) -> Nd {
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        if r.random_bool(nan) {
            f64::NAN
        } else {
            (r.random_range(-50..50) as f64) / 4.0
        }
    })
}

fn lazy(data: &Nd, chunks: Vec<Vec<usize>>) -> Array<f64> {
    array::from_ndarray(data.clone(), ChunkSpec::explicit(chunks)).unwrap()
}

fn f64s(data: &AnyArray) -> Nd {
    data.typed::<f64>()
        .expect("float64 data")
        .compute()
        .unwrap()
}

/// Equal shapes and values (NaN equal to NaN; floats to a relative 1e-9).
fn assert_close(got: &Nd, want: &Nd, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes");
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= 1e-9 * w.abs().max(1.0);
        assert!(ok, "{what}: element {i}: got {g}, want {w}");
    }
}

const DIM_NAMES: [&str; 4] = ["time", "lat", "lon", "lev"];

/// A random data array (float64 with NaN) with 1-3 named dimensions and random chunks.
fn random_da(r: &mut Xoshiro256PlusPlus, max_len: usize) -> (DataArray, Nd) {
    let ndim = r.random_range(1..=3);
    let shape: Vec<usize> = (0..ndim).map(|_| r.random_range(1..=max_len)).collect();
    let data = random_data(r, &shape, 0.1);
    let chunks = random_chunks(r, &shape);
    let dims: Vec<&str> = DIM_NAMES[..ndim].to_vec();
    let v = Variable::new(dims, lazy(&data, chunks)).unwrap();
    (DataArray::new(v).with_name("v"), data)
}

// ---------------------------------------------------------------------------------------------
// Array::take and take_points
// ---------------------------------------------------------------------------------------------

#[test]
fn take_matches_ndarray_select() {
    for seed in 0..60 {
        let mut r = rng(seed);
        let ndim = r.random_range(1..=3);
        let shape: Vec<usize> = (0..ndim).map(|_| r.random_range(1..=9)).collect();
        let data = random_data(&mut r, &shape, 0.0);
        let x = lazy(&data, random_chunks(&mut r, &shape));
        let axis = r.random_range(0..ndim);
        let len = shape[axis] as i64;
        let n = r.random_range(0..12);
        let mut idx: Vec<i64> = (0..n).map(|_| r.random_range(-len..len)).collect();
        if r.random_bool(0.5) {
            // Sorted (normalised) indices take the block-aligned path.
            idx = idx
                .iter()
                .map(|&i| if i < 0 { i + len } else { i })
                .collect();
            idx.sort();
        }
        let pos: Vec<usize> = idx
            .iter()
            .map(|&i| (if i < 0 { i + len } else { i }) as usize)
            .collect();
        let got = x.take(&idx, axis).unwrap();
        assert_eq!(got.shape()[axis], n, "seed {seed}");
        let want = data.select(Axis(axis), &pos);
        assert_close(
            &got.compute().unwrap(),
            &want,
            &format!("seed {seed} take {idx:?}"),
        );
        // Every task reads at most one input block per index it takes.
        for t in got.layer().tasks() {
            assert!(t.deps.len() <= n.max(1) * x.num_chunks(), "seed {seed}");
        }
    }
}

#[test]
fn sorted_take_reads_one_chunk_per_output_chunk() {
    let x = array::arange(0.0f64, 100.0, 1.0, 10).unwrap();
    let idx: Vec<i64> = vec![3, 4, 4, 17, 55, 56, 99];
    let y = x.take(&idx, 0).unwrap();
    assert_eq!(y.chunks().axis(0), &[3, 1, 2, 1]);
    assert!(y.layer().tasks().iter().all(|t| t.deps.len() == 1));
    let v = y.compute().unwrap();
    assert_eq!(
        v.as_slice().unwrap(),
        &[3.0, 4.0, 4.0, 17.0, 55.0, 56.0, 99.0]
    );
}

#[test]
fn take_points_matches_a_gather() {
    for seed in 0..60 {
        let mut r = rng(1000 + seed);
        let ndim = r.random_range(1..=3);
        let shape: Vec<usize> = (0..ndim).map(|_| r.random_range(1..=7)).collect();
        let data = random_data(&mut r, &shape, 0.0);
        let x = lazy(&data, random_chunks(&mut r, &shape));
        let mut axes: Vec<usize> = (0..ndim).filter(|_| r.random_bool(0.6)).collect();
        if axes.is_empty() {
            axes.push(r.random_range(0..ndim));
        }
        if r.random_bool(0.5) {
            axes.reverse(); // order of the axes given does not matter
        }
        let p = r.random_range(0..9);
        let lists: Vec<Vec<i64>> = axes
            .iter()
            .map(|&a| {
                let len = shape[a] as i64;
                (0..p).map(|_| r.random_range(-len..len)).collect()
            })
            .collect();
        let got = x.take_points(&axes, &lists).unwrap().compute().unwrap();
        // Oracle: the points axis where the smallest selected axis was.
        let first = *axes.iter().min().unwrap();
        let others: Vec<usize> = (0..ndim).filter(|a| !axes.contains(a)).collect();
        let mut out_shape: Vec<usize> = others.iter().map(|&a| shape[a]).collect();
        let pos = others.iter().filter(|&&a| a < first).count();
        out_shape.insert(pos, p);
        let want = ArrayD::from_shape_fn(IxDyn(&out_shape), |o| {
            let pt = o[pos];
            let mut rest = (0..out_shape.len()).filter(|&j| j != pos).map(|j| o[j]);
            let mut at = vec![0; ndim];
            for a in 0..ndim {
                at[a] = match axes.iter().position(|&x| x == a) {
                    Some(k) => {
                        let i = lists[k][pt];
                        (if i < 0 { i + shape[a] as i64 } else { i }) as usize
                    }
                    None => rest.next().unwrap(),
                };
            }
            data[IxDyn(&at)]
        });
        assert_close(
            &got,
            &want,
            &format!("seed {seed} axes {axes:?} lists {lists:?}"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// isel
// ---------------------------------------------------------------------------------------------

/// Python's `list(range(len))[start:stop:step]`, written as Python's loop.
fn py_slice(len: usize, start: Option<i64>, stop: Option<i64>, step: i64) -> Vec<usize> {
    let n = len as i64;
    let norm = |v: i64, lo: i64, hi: i64| (if v < 0 { v + n } else { v }).clamp(lo, hi);
    let mut out = Vec::new();
    if step > 0 {
        let mut i = start.map_or(0, |s| norm(s, 0, n));
        let end = stop.map_or(n, |s| norm(s, 0, n));
        while i < end {
            out.push(i as usize);
            i += step;
        }
    } else {
        let mut i = start.map_or(n - 1, |s| norm(s, -1, n - 1));
        let end = stop.map_or(-1, |s| norm(s, -1, n - 1));
        while i > end {
            out.push(i as usize);
            i += step;
        }
    }
    out
}

/// A random indexer for a dimension of length `len`, and (positions, dropped).
fn random_indexer(r: &mut Xoshiro256PlusPlus, len: usize) -> Option<(Indexer, Vec<usize>, bool)> {
    let n = len as i64;
    let norm = |i: i64| (if i < 0 { i + n } else { i }) as usize;
    match r.random_range(0..4) {
        0 => None,
        1 => {
            let i = r.random_range(-n..n);
            Some((Indexer::Index(i), vec![norm(i)], true))
        }
        2 => {
            let bound = |r: &mut Xoshiro256PlusPlus| {
                r.random_bool(0.7).then(|| r.random_range(-n - 2..=n + 2))
            };
            let (a, b) = (bound(r), bound(r));
            let step = [1, 2, 3, -1, -2][r.random_range(0..5)];
            let s = Slice::new(a, b, r.random_bool(0.8).then_some(step));
            let pos = py_slice(len, a, b, s.step.unwrap_or(1));
            Some((Indexer::Slice(s), pos, false))
        }
        _ => {
            let k = r.random_range(0..6);
            let list: Vec<i64> = (0..k).map(|_| r.random_range(-n..n)).collect();
            let pos = list.iter().map(|&i| norm(i)).collect();
            Some((Indexer::List(list), pos, false))
        }
    }
}

#[test]
fn isel_orthogonal_matches_ndarray() {
    for seed in 0..80 {
        let mut r = rng(2000 + seed);
        let (da, data) = random_da(&mut r, 7);
        let mut indexers = Vec::new();
        let mut want = data.clone();
        let mut dropped = Vec::new();
        for (axis, (d, &len)) in da.dims().iter().zip(da.shape()).enumerate() {
            if let Some((ix, pos, drop)) = random_indexer(&mut r, len) {
                indexers.push((d.clone(), ix));
                want = want.select(Axis(axis), &pos);
                if drop {
                    dropped.push(axis);
                }
            }
        }
        for &axis in dropped.iter().rev() {
            want = want.index_axis_move(Axis(axis), 0);
        }
        let got = da.isel(indexers.clone()).unwrap();
        let kept: Vec<&String> = da
            .dims()
            .iter()
            .enumerate()
            .filter(|(a, _)| !dropped.contains(a))
            .map(|(_, d)| d)
            .collect();
        assert_eq!(got.dims().iter().collect::<Vec<_>>(), kept, "seed {seed}");
        assert_close(
            &f64s(got.data()),
            &want,
            &format!("seed {seed}: {indexers:?}"),
        );
    }
}

#[test]
fn isel_vectorized_puts_points_where_xarray_does() {
    let mut r = rng(7);
    let shape = [5, 4, 6];
    let data = random_data(&mut r, &shape, 0.0);
    let chunks = random_chunks(&mut r, &shape);
    let lat = Variable::new(["lat"], array::arange(0.0f64, 4.0, 1.0, 2).unwrap()).unwrap();
    let da = DataArray::new(Variable::new(["time", "lat", "lon"], lazy(&data, chunks)).unwrap())
        .with_name("tas")
        .with_coord("lat", lat)
        .unwrap();
    let (ys, xs) = ([3i64, 0, -1], [5i64, 2, 0]);
    // Adjacent dimensions: the points replace them in place.
    let p = da
        .isel([
            ("lat", Indexer::points("station", ys)),
            ("lon", Indexer::points("station", xs)),
        ])
        .unwrap();
    assert_eq!(p.dims(), ["time", "station"]);
    let want = ArrayD::from_shape_fn(IxDyn(&[5, 3]), |i| {
        data[[i[0], (ys[i[1]] + 4) as usize % 4, xs[i[1]] as usize]]
    });
    assert_close(&f64s(p.data()), &want, "lat/lon points");
    let lat_at = p.coord("lat").unwrap();
    assert_eq!(lat_at.dims(), ["station"]);
    assert_eq!(f64s(lat_at.data()).as_slice().unwrap(), &[3.0, 0.0, 3.0]);

    // Non-adjacent dimensions: the points go where the first one was (xarray's order).
    let (ts, xs) = ([4i64, 1], [0i64, 5]);
    let q = da
        .isel([
            ("lon", Indexer::points("p", xs)),
            ("time", Indexer::points("p", ts)),
        ])
        .unwrap();
    assert_eq!(q.dims(), ["p", "lat"]);
    let want = ArrayD::from_shape_fn(IxDyn(&[2, 4]), |i| {
        data[[ts[i[0]] as usize, i[1], xs[i[0]] as usize]]
    });
    assert_close(&f64s(q.data()), &want, "time/lon points");

    // Two different points dimensions are orthogonal to each other.
    let o = da
        .isel([
            ("time", Indexer::points("a", [0i64, 2])),
            ("lon", Indexer::points("b", [1i64, 1, 3])),
        ])
        .unwrap();
    assert_eq!(o.dims(), ["a", "lat", "b"]);
    assert_eq!(o.shape(), &[2, 4, 3]);

    // Mixed with basic and list indexers.
    let m = da
        .isel([
            ("time", Indexer::from(Slice::new(None, None, Some(-2)))),
            ("lat", Indexer::points("pt", [1i64, 2])),
            ("lon", Indexer::points("pt", [0i64, 3])),
        ])
        .unwrap();
    assert_eq!(m.dims(), ["time", "pt"]);
    let want = ArrayD::from_shape_fn(IxDyn(&[3, 2]), |i| {
        data[[4 - 2 * i[0], [1, 2][i[1]], [0, 3][i[1]]]]
    });
    assert_close(&f64s(m.data()), &want, "slice + points");

    // Errors: different lengths, a points name that is another dimension.
    let err = da
        .isel([
            ("lat", Indexer::points("s", [0i64, 1])),
            ("lon", Indexer::points("s", [0i64])),
        ])
        .unwrap_err();
    assert!(
        matches!(err, DatasetError::InvalidSelection { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("one length"), "{err}");
    let err = da
        .isel([("lat", Indexer::points("time", [0i64, 1]))])
        .unwrap_err();
    assert!(err.to_string().contains("already a dimension"), "{err}");
}

/// The climate-like dataset of these tests: tas(time, lat, lon) float64 with NaN, an
/// ascending datetime `time` (6-hourly from 2000-01-01), a descending `lat`, an ascending
/// `lon`, an auxiliary `area(lat, lon)`, a `station` dimension without a coordinate, and
/// `elev(station)`.
struct Climate {
    ds: Dataset,
    tas: Nd,
    lat: Vec<f64>,
    lon: Vec<f64>,
}

const T0: i64 = 946_684_800_000_000_000; // 2000-01-01T00:00:00 in ns
const H6: i64 = 6 * 3_600_000_000_000;

fn climate() -> Climate {
    let mut r = rng(42);
    let (nt, ny, nx) = (20, 6, 8);
    let tas = random_data(&mut r, &[nt, ny, nx], 0.05);
    let lat: Vec<f64> = (0..ny).map(|i| 75.0 - 30.0 * i as f64).collect(); // 75 .. -75
    let lon: Vec<f64> = (0..nx).map(|i| 45.0 * i as f64).collect(); // 0 .. 315
    let time = AnyArray::datetime(array::arange(T0, T0 + nt as i64 * H6, H6, 7).unwrap());
    let arr = |v: &[f64], c: usize| {
        array::from_ndarray(
            ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap(),
            c,
        )
        .unwrap()
    };
    let area = ArrayD::from_shape_fn(IxDyn(&[ny, nx]), |i| (i[0] * 10 + i[1]) as f64);
    let ds = Dataset::new()
        .with_variable(
            "tas",
            Variable::new(
                ["time", "lat", "lon"],
                lazy(&tas, vec![vec![7, 7, 6], vec![4, 2], vec![3, 3, 2]]),
            )
            .unwrap()
            .with_attr("units", "K"),
        )
        .unwrap()
        .with_variable("time", Variable::new(["time"], time).unwrap())
        .unwrap()
        .with_variable("lat", Variable::new(["lat"], arr(&lat, 4)).unwrap())
        .unwrap()
        .with_variable("lon", Variable::new(["lon"], arr(&lon, 3)).unwrap())
        .unwrap()
        .with_coord(
            "area",
            Variable::new(["lat", "lon"], lazy(&area, vec![vec![6], vec![8]])).unwrap(),
        )
        .unwrap()
        .with_variable(
            "elev",
            Variable::new(["station"], arr(&[1.0, 2.0, 3.0], 3)).unwrap(),
        )
        .unwrap()
        .with_attr("title", "test");
    Climate { ds, tas, lat, lon }
}

#[test]
fn dataset_isel_keeps_scalar_coords_and_coordinate_status() {
    let c = climate();
    let one =
        c.ds.isel([("time", Indexer::from(3)), ("lon", Indexer::from([7, 0]))])
            .unwrap();
    assert_eq!(one.dims().to_string(), "(lat: 6, lon: 2, station: 3)");
    assert!(one.is_coord("time") && !one.is_index("time"));
    let t = one.variable("time").unwrap();
    assert_eq!(t.ndim(), 0);
    let v = t.data().as_datetime().unwrap().compute().unwrap();
    assert_eq!(v[[]], T0 + 3 * H6);
    assert!(one.is_index("lon"));
    assert_eq!(
        f64s(one.variable("lon").unwrap().data())
            .as_slice()
            .unwrap(),
        &[315.0, 0.0]
    );
    assert_eq!(one.variable("area").unwrap().dims(), ["lat", "lon"]);
    assert_eq!(one.variable("elev").unwrap().shape(), &[3]); // untouched
    assert_eq!(one.variable("tas").unwrap().attrs()["units"], "K");
    let want = c.tas.index_axis(Axis(0), 3).select(Axis(1), &[7, 0]);
    assert_close(&f64s(one.variable("tas").unwrap().data()), &want, "tas");
}

// ---------------------------------------------------------------------------------------------
// sel
// ---------------------------------------------------------------------------------------------

fn tas_at(c: &Climate, t: &[usize], y: &[usize], x: &[usize]) -> Nd {
    c.tas
        .select(Axis(0), t)
        .select(Axis(1), y)
        .select(Axis(2), x)
}

#[test]
fn sel_numeric_labels_ascending_and_descending() {
    let c = climate();
    let tas = c.ds.data_array("tas").unwrap();
    let all_t: Vec<usize> = (0..20).collect();
    let all_x: Vec<usize> = (0..8).collect();
    // One label drops the dimension and leaves a scalar coordinate.
    let s = tas.sel([("lat", 15.0)]).unwrap();
    assert_eq!(s.dims(), ["time", "lon"]);
    assert_eq!(f64s(s.coord("lat").unwrap().data())[[]], 15.0);
    let want = tas_at(&c, &all_t, &[2], &all_x).index_axis_move(Axis(1), 0);
    assert_close(&f64s(s.data()), &want, "lat=15");
    // Integer labels on a float index.
    let s = tas.sel([("lon", 90)]).unwrap();
    assert_eq!(s.dims(), ["time", "lat"]);

    // Label slices are inclusive; on the descending lat they run high to low.
    let s = tas.sel([("lat", Selector::from(50.0..=-20.0))]).unwrap();
    assert_eq!(
        f64s(s.coord("lat").unwrap().data()).as_slice().unwrap(),
        &[45.0, 15.0, -15.0]
    );
    let s = tas.sel([("lat", Selector::from(-20.0..=50.0))]).unwrap();
    assert_eq!(s.shape(), &[20, 0, 8]);
    let s = tas.sel([("lon", Selector::slice(90.0, 180.0))]).unwrap();
    assert_eq!(
        f64s(s.coord("lon").unwrap().data()).as_slice().unwrap(),
        &[90.0, 135.0, 180.0]
    );
    let s = tas
        .sel([("lon", Selector::slice_to(100.0).with_step(2))])
        .unwrap();
    assert_eq!(
        f64s(s.coord("lon").unwrap().data()).as_slice().unwrap(),
        &[0.0, 90.0]
    );
    let s = tas
        .sel([("lon", Selector::slice(200.0, 40.0).with_step(-1))])
        .unwrap();
    assert_eq!(
        f64s(s.coord("lon").unwrap().data()).as_slice().unwrap(),
        &[180.0, 135.0, 90.0, 45.0]
    );

    // Lists keep the dimension, in the order given.
    let s = tas
        .sel([("lon", Selector::from(vec![270.0, 0.0, 270.0]))])
        .unwrap();
    let want = tas_at(&c, &all_t, &[0, 1, 2, 3, 4, 5], &[6, 0, 6]);
    assert_close(&f64s(s.data()), &want, "lon list");

    // Methods.
    let near = |v: f64, o: SelOptions| {
        let s = tas.sel_with([("lat", v)], &o).map_err(Box::new)?;
        Ok::<f64, Box<DatasetError>>(f64s(s.coord("lat").unwrap().data())[[]])
    };
    assert_eq!(near(40.0, SelOptions::nearest()).unwrap(), 45.0);
    assert_eq!(near(0.0, SelOptions::nearest()).unwrap(), -15.0); // a tie: the later position
    assert_eq!(near(40.0, SelOptions::pad()).unwrap(), 15.0);
    assert_eq!(near(40.0, SelOptions::backfill()).unwrap(), 45.0);
    assert_eq!(near(99.0, SelOptions::nearest()).unwrap(), 75.0);
    assert!(near(99.0, SelOptions::backfill()).is_err());
    assert_eq!(
        near(44.0, SelOptions::nearest().with_tolerance(1.5)).unwrap(),
        45.0
    );
    let err = near(40.0, SelOptions::nearest().with_tolerance(1.0)).unwrap_err();
    assert!(matches!(*err, DatasetError::LabelNotFound { .. }), "{err}");
    assert!(err.to_string().contains("tolerance"), "{err}");
    let s = tas
        .sel_with(
            [("lon", Selector::from([44.0, 91.0]))],
            &SelOptions::nearest(),
        )
        .unwrap();
    assert_eq!(
        f64s(s.coord("lon").unwrap().data()).as_slice().unwrap(),
        &[45.0, 90.0]
    );

    // Points: one label per station along a new dimension.
    let s = tas
        .sel([
            ("lat", Selector::points("site", [75.0, -75.0])),
            ("lon", Selector::points("site", [315.0, 45.0])),
        ])
        .unwrap();
    assert_eq!(s.dims(), ["time", "site"]);
    let want = ArrayD::from_shape_fn(IxDyn(&[20, 2]), |i| {
        c.tas[[i[0], [0, 5][i[1]], [7, 1][i[1]]]]
    });
    assert_close(&f64s(s.data()), &want, "points");
    assert_eq!(c.lat.len(), 6);
    assert_eq!(c.lon.len(), 8);
}

#[test]
fn sel_datetimes_by_text_and_nanoseconds() {
    let c = climate();
    let ds = &c.ds;
    let times = |d: &Dataset| {
        d.variable("time")
            .unwrap()
            .data()
            .as_datetime()
            .unwrap()
            .compute()
            .unwrap()
            .iter()
            .map(|&t| (t - T0) / H6)
            .collect::<Vec<i64>>()
    };
    // As fine as the index (6-hourly): one time, the dimension dropped.
    let one = ds.sel([("time", "2000-01-02T06")]).unwrap();
    assert_eq!(one.dims().to_string(), "(lat: 6, lon: 8, station: 3)");
    assert_eq!(times(&one), [5]);
    let want = c.tas.index_axis(Axis(0), 5).to_owned();
    assert_close(
        &f64s(one.variable("tas").unwrap().data()),
        &want,
        "one time",
    );
    // Coarser than the index: the whole period, the dimension kept.
    assert_eq!(
        times(&ds.sel([("time", "2000-01-02")]).unwrap()),
        [4, 5, 6, 7]
    );
    assert_eq!(
        times(&ds.sel([("time", "2000-01")]).unwrap()),
        (0..20).collect::<Vec<_>>()
    );
    assert_eq!(times(&ds.sel([("time", "2000")]).unwrap()).len(), 20);
    // Slices: text bounds cover their period.
    let s = ds
        .sel([("time", Selector::slice("2000-01-01T12", "2000-01-02"))])
        .unwrap();
    assert_eq!(times(&s), [2, 3, 4, 5, 6, 7]);
    let s = ds
        .sel([("time", Selector::slice_from("2000-01-05T06"))])
        .unwrap();
    assert_eq!(times(&s), [17, 18, 19]);
    // Nanoseconds, as integers or datetimes; lists; methods.
    assert_eq!(
        times(&ds.sel([("time", Label::Int(T0 + 2 * H6))]).unwrap()),
        [2]
    );
    assert_eq!(
        times(&ds.sel([("time", Label::Datetime(T0))]).unwrap()),
        [0]
    );
    let l = ds
        .sel([("time", Selector::from(["2000-01-03T18", "2000-01-01"]))])
        .unwrap();
    assert_eq!(times(&l), [11, 0]);
    let near = ds
        .sel_with([("time", "2000-01-01T07")], &SelOptions::nearest())
        .unwrap();
    assert_eq!(times(&near), [1]);
    let within =
        SelOptions::nearest().with_tolerance_duration(std::time::Duration::from_secs(1800));
    assert!(ds.sel_with([("time", "2000-01-01T07")], &within).is_err());

    // Errors name the coordinate and show its range.
    let err = ds.sel([("time", "2000-01-01T07")]).unwrap_err();
    assert!(matches!(err, DatasetError::LabelNotFound { .. }), "{err}");
    let msg = err.to_string();
    for part in [
        "\"2000-01-01T07\"",
        "\"time\"",
        "datetime64[ns]",
        "20 values",
        "2000-01-01T00:00:00",
        "2000-01-05T18:00:00",
    ] {
        assert!(msg.contains(part), "{part} missing in: {msg}");
    }
    let msg = ds.sel([("time", "2001-02")]).unwrap_err().to_string();
    assert!(msg.contains("not found"), "{msg}");
    let err = ds.sel([("time", 1.5)]).unwrap_err();
    assert!(
        matches!(err, DatasetError::InvalidSelection { .. }),
        "{err}"
    );
    let err = ds.sel([("lat", "north")]).unwrap_err();
    assert!(err.to_string().contains("float64"), "{err}");
    let err = ds.sel([("time", "yesterday")]).unwrap_err();
    assert!(
        matches!(err, DatasetError::InvalidSelection { .. }),
        "{err}"
    );
    let err = ds
        .sel_with(
            [("time", Selector::slice("2000-01-01", "2000-01-02"))],
            &SelOptions::nearest(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("slice"), "{err}");
    assert_eq!(parse_datetime("2000-01-01").unwrap(), i128::from(T0));
}

#[test]
fn label_not_found_on_numbers_shows_the_range() {
    let c = climate();
    let err = c.ds.sel([("lon", 100.0)]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("label 100 not found in index coordinate \"lon\"")
            && msg.contains("float64, 8 values from 0 to 315, ascending")
            && msg.contains("nearest"),
        "{msg}"
    );
    let msg =
        c.ds.sel([("lat", Selector::from(vec![15.0, 16.0]))])
            .unwrap_err()
            .to_string();
    assert!(
        msg.contains("label 16") && msg.contains("from 75 to -75, descending"),
        "{msg}"
    );
}

#[test]
fn unknown_dims_and_missing_indexes_are_clear_errors() {
    let c = climate();
    let tas = c.ds.data_array("tas").unwrap();
    // Unknown dimension: every entry point lists the dimensions there are.
    let errors = [
        c.ds.isel([("depth", Indexer::from(0))]).unwrap_err(),
        c.ds.sel([("depth", 0.0)]).unwrap_err(),
        tas.isel([("station", Indexer::from(0))]).unwrap_err(),
        tas.sel([("depth", 0.0)]).unwrap_err(),
        tas.mean(["depth"]).unwrap_err(),
        c.ds.mean(["depth"]).unwrap_err(),
        tas.transpose(["lon", "depth", "..."]).unwrap_err(),
        tas.dot_over(&tas, ["depth"]).unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, DatasetError::DimNotFound { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("\"depth\"") || msg.contains("\"station\""),
            "{msg}"
        );
        assert!(
            msg.contains("\"time\" (20), \"lat\" (6), \"lon\" (8)"),
            "{msg}"
        );
    }
    // sel on a dimension without an index coordinate.
    let err = c.ds.sel([("station", 1.0)]).unwrap_err();
    assert!(matches!(err, DatasetError::NoIndex { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("\"station\"") && msg.contains("isel") && msg.contains("\"lat\""),
        "{msg}"
    );
    // Positions out of range.
    let err = c.ds.isel([("lat", Indexer::from(6))]).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::IndexOutOfRange {
                index: 6,
                len: 6,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("\"lat\""), "{err}");
    assert!(tas.isel([("lon", Indexer::from(vec![0, -9]))]).is_err());
    assert!(tas.isel([("lon", Indexer::points("p", [8]))]).is_err());
    assert!(
        tas.isel([("lon", Indexer::from(Slice::new(None, None, Some(0))))])
            .is_err()
    );
    // A dimension given twice.
    let err = tas
        .isel([("lon", Indexer::from(0)), ("lon", Indexer::from(1))])
        .unwrap_err();
    assert!(err.to_string().contains("more than once"), "{err}");
    // A missing variable lists the variables there are.
    let msg = c.ds.data_array("pr").unwrap_err().to_string();
    assert!(
        msg.contains("\"pr\"") && msg.contains("\"tas\", \"time\""),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// Reductions
// ---------------------------------------------------------------------------------------------

/// Reduces `data` over `axes` lane by lane with `f` (the oracle).
fn oracle_reduce(data: &Nd, axes: &[usize], f: impl Fn(&[f64]) -> f64) -> Nd {
    let kept: Vec<usize> = (0..data.ndim()).filter(|a| !axes.contains(a)).collect();
    let out_shape: Vec<usize> = kept.iter().map(|&a| data.shape()[a]).collect();
    let mut lanes: HashMap<Vec<usize>, Vec<f64>> = HashMap::new();
    for (idx, &v) in data.indexed_iter() {
        let key: Vec<usize> = kept.iter().map(|&a| idx[a]).collect();
        lanes.entry(key).or_default().push(v);
    }
    ArrayD::from_shape_fn(IxDyn(&out_shape), |o| {
        let key: Vec<usize> = (0..out_shape.len()).map(|j| o[j]).collect();
        f(lanes.get(&key).map_or(&[][..], Vec::as_slice))
    })
}

fn valid(lane: &[f64]) -> Vec<f64> {
    lane.iter().copied().filter(|v| !v.is_nan()).collect()
}

fn nan_var(lane: &[f64], ddof: usize) -> f64 {
    let v = valid(lane);
    if v.len() <= ddof {
        return f64::NAN;
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - ddof) as f64
}

#[test]
fn reductions_over_named_dims_match_ndarray() {
    for seed in 0..50 {
        let mut r = rng(3000 + seed);
        let (da, data) = random_da(&mut r, 6);
        let axes: Vec<usize> = (0..da.dims().len())
            .filter(|_| r.random_bool(0.5))
            .collect();
        let dims: Vec<String> = axes.iter().map(|&a| da.dims()[a].clone()).collect();
        let what = format!("seed {seed} dims {dims:?} shape {:?}", da.shape());
        let check = |op: Reduction, opts: ReductionOptions, f: &dyn Fn(&[f64]) -> f64| {
            let got = da.reduce(op, &dims, &opts).unwrap();
            let kept: Vec<&String> = da.dims().iter().filter(|d| !dims.contains(d)).collect();
            assert_eq!(got.dims().iter().collect::<Vec<_>>(), kept, "{what}");
            assert_eq!(got.name(), Some("v"));
            assert_close(
                &f64s(got.data()),
                &oracle_reduce(&data, &axes, f),
                &format!("{what} {op:?}"),
            );
        };
        let d = ReductionOptions::default();
        check(Reduction::Sum, d, &|l| valid(l).iter().sum());
        check(Reduction::Mean, d, &|l| {
            let v = valid(l);
            if v.is_empty() {
                f64::NAN
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        });
        check(Reduction::Min, d, &|l| {
            valid(l).into_iter().reduce(f64::min).unwrap_or(f64::NAN)
        });
        check(Reduction::Max, d, &|l| {
            valid(l).into_iter().reduce(f64::max).unwrap_or(f64::NAN)
        });
        check(Reduction::Var, d, &|l| nan_var(l, 0));
        check(Reduction::Std, d.with_ddof(1), &|l| nan_var(l, 1).sqrt());
        // skipna=False propagates NaN.
        check(Reduction::Sum, d.with_skipna(false), &|l| l.iter().sum());
        check(Reduction::Max, d.with_skipna(false), &|l| {
            if l.iter().any(|v| v.is_nan()) {
                f64::NAN
            } else {
                l.iter().copied().fold(f64::MIN, f64::max)
            }
        });
    }
}

#[test]
fn reductions_follow_numpy_types_and_drop_coords() {
    let c = climate();
    let tas = c.ds.data_array("tas").unwrap();
    let m = tas.mean(["lat", "lon"]).unwrap();
    assert_eq!(m.dims(), ["time"]);
    assert_eq!(m.coords().map(|(n, _)| n).collect::<Vec<_>>(), ["time"]);
    assert!(m.attrs().is_empty());
    let kept = tas
        .reduce(
            Reduction::Mean,
            ["time"],
            &ReductionOptions::default().with_keep_attrs(true),
        )
        .unwrap();
    assert_eq!(kept.attrs()["units"], "K");
    assert_eq!(
        kept.coords().map(|(n, _)| n).collect::<Vec<_>>(),
        ["lat", "lon", "area"]
    );

    // Types: int16 sums in int64, means in float64; float32 stays float32; bools count.
    let i16s = Variable::new(["x"], array::arange(30000i16, 30004, 1, 2).unwrap()).unwrap();
    let s = i16s.sum(["x"]).unwrap();
    assert_eq!(s.dtype().name(), "int64");
    assert_eq!(
        s.data().typed::<i64>().unwrap().compute().unwrap()[[]],
        120006
    );
    assert_eq!(i16s.mean(["x"]).unwrap().dtype().name(), "float64");
    assert_eq!(i16s.max(["x"]).unwrap().dtype().name(), "int16");
    let f32s = Variable::new(["x"], array::ones::<f32>(&[3], 2).unwrap()).unwrap();
    assert_eq!(f32s.std(["x"]).unwrap().dtype().name(), "float32");
    let bools = Variable::new(["x"], array::arange(0i32, 5, 1, 2).unwrap().gt_scalar(2)).unwrap();
    assert_eq!(
        bools
            .sum(["x"])
            .unwrap()
            .data()
            .typed::<i64>()
            .unwrap()
            .compute()
            .unwrap()[[]],
        2
    );
    assert!(
        bools
            .max(["x"])
            .unwrap()
            .data()
            .typed::<bool>()
            .unwrap()
            .compute()
            .unwrap()[[]]
    );
    assert!(
        !bools
            .min(["x"])
            .unwrap()
            .data()
            .typed::<bool>()
            .unwrap()
            .compute()
            .unwrap()[[]]
    );

    // Datetimes: min/max (NaT propagates unless skipped); no mean.
    let nat = chunkflow::dataset::time::NAT;
    let t = ArrayD::from_shape_vec(IxDyn(&[4]), vec![T0 + H6, nat, T0, T0 + 2 * H6]).unwrap();
    let times = Variable::new(
        ["t"],
        AnyArray::datetime(array::from_ndarray(t, 2).unwrap()),
    )
    .unwrap();
    let get = |v: Variable| v.data().as_datetime().unwrap().compute().unwrap()[[]];
    assert_eq!(get(times.min(["t"]).unwrap()), nat);
    assert_eq!(get(times.max(["t"]).unwrap()), nat);
    let skip = ReductionOptions::default().with_skipna(true);
    assert_eq!(get(times.reduce(Reduction::Min, ["t"], &skip).unwrap()), T0);
    assert_eq!(
        get(times.reduce(Reduction::Max, ["t"], &skip).unwrap()),
        T0 + 2 * H6
    );
    let err = times.mean(["t"]).unwrap_err();
    assert!(
        matches!(err, DatasetError::UnsupportedDType { .. }),
        "{err}"
    );

    // Datasets: coords with reduced dims dropped, datetimes dropped by numeric reductions,
    // attributes dropped.
    let m = c.ds.mean(["time", "lat"]).unwrap();
    assert_eq!(m.dims().to_string(), "(lon: 8, station: 3)");
    assert!(!m.contains("time") && !m.contains("area") && m.is_index("lon"));
    assert!(m.attrs().is_empty());
    let want = oracle_reduce(&c.tas, &[0, 1], |l| {
        let v = valid(l);
        v.iter().sum::<f64>() / v.len() as f64
    });
    assert_close(
        &f64s(m.variable("tas").unwrap().data()),
        &want,
        "dataset mean",
    );
    let mx = c.ds.max(["lon"]).unwrap();
    assert_eq!(mx.variable("tas").unwrap().dims(), ["time", "lat"]);
}

// ---------------------------------------------------------------------------------------------
// Arithmetic, transpose, dot
// ---------------------------------------------------------------------------------------------

/// The value of a named array at named positions.
fn at(dims: &[String], data: &Nd, pos: &HashMap<String, usize>) -> f64 {
    let idx: Vec<usize> = dims.iter().map(|d| pos[d]).collect();
    data[IxDyn(&idx)]
}

/// A random data array over a random subset and order of `sizes`.
fn random_named(
    r: &mut Xoshiro256PlusPlus,
    sizes: &[(&str, usize)],
) -> (DataArray, Vec<String>, Nd) {
    let mut dims: Vec<(&str, usize)> = sizes
        .iter()
        .copied()
        .filter(|_| r.random_bool(0.7))
        .collect();
    if dims.is_empty() {
        dims.push(sizes[r.random_range(0..sizes.len())]);
    }
    for i in (1..dims.len()).rev() {
        dims.swap(i, r.random_range(0..=i));
    }
    let shape: Vec<usize> = dims.iter().map(|d| d.1).collect();
    let data = random_data(r, &shape, 0.0);
    let names: Vec<String> = dims.iter().map(|d| d.0.to_string()).collect();
    let v = Variable::new(names.clone(), lazy(&data, random_chunks(r, &shape))).unwrap();
    (DataArray::new(v), names, data)
}

#[test]
fn arithmetic_broadcasts_by_name() {
    let sizes = [("time", 4), ("lat", 3), ("lon", 5)];
    for seed in 0..40 {
        let mut r = rng(4000 + seed);
        let (a, ad, av) = random_named(&mut r, &sizes);
        let (b, bd, bv) = random_named(&mut r, &sizes);
        for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div] {
            let got = a.binary(op, &b).unwrap();
            let mut want_dims = ad.clone();
            want_dims.extend(bd.iter().filter(|d| !ad.contains(d)).cloned());
            assert_eq!(got.dims(), want_dims.as_slice(), "seed {seed}");
            let shape: Vec<usize> = want_dims
                .iter()
                .map(|d| sizes.iter().find(|s| s.0 == d).unwrap().1)
                .collect();
            let want = ArrayD::from_shape_fn(IxDyn(&shape), |i| {
                let pos: HashMap<String, usize> = want_dims
                    .iter()
                    .enumerate()
                    .map(|(k, d)| (d.clone(), i[k]))
                    .collect();
                let (x, y) = (at(&ad, &av, &pos), at(&bd, &bv, &pos));
                match op {
                    BinaryOp::Add => x + y,
                    BinaryOp::Sub => x - y,
                    BinaryOp::Mul => x * y,
                    BinaryOp::Div => x / y,
                }
            });
            assert_close(
                &f64s(got.data()),
                &want,
                &format!("seed {seed} {op:?} {ad:?} {bd:?}"),
            );
        }
    }
}

#[test]
fn arithmetic_types_scalars_names_and_errors() {
    let f32s =
        DataArray::new(Variable::new(["x"], array::arange(1.0f32, 4.0, 1.0, 2).unwrap()).unwrap())
            .with_name("a");
    let i16s = DataArray::new(Variable::new(["x"], array::arange(1i16, 4, 1, 2).unwrap()).unwrap())
        .with_name("a");
    let i32s = DataArray::new(Variable::new(["x"], array::arange(1i32, 4, 1, 2).unwrap()).unwrap());
    let u8s = DataArray::new(Variable::new(["x"], array::arange(1u8, 4, 1, 2).unwrap()).unwrap());
    assert_eq!((&f32s + &i16s).unwrap().dtype().name(), "float32");
    assert_eq!((&f32s + &i32s).unwrap().dtype().name(), "float64");
    assert_eq!((&i16s * &i32s).unwrap().dtype().name(), "int32");
    assert_eq!((&i16s + &u8s).unwrap().dtype().name(), "int16");
    let q = (&i32s / &i32s).unwrap();
    assert_eq!(q.dtype().name(), "float64");
    // Scalars take the array's type when they fit (numpy 2).
    assert_eq!((&f32s + 1.5).unwrap().dtype().name(), "float32");
    assert_eq!((&i16s + 1.5).unwrap().dtype().name(), "float64");
    assert_eq!((&i16s + 2).unwrap().dtype().name(), "int16");
    let r = (10 - &i16s).unwrap();
    assert_eq!(
        r.data()
            .typed::<i16>()
            .unwrap()
            .compute()
            .unwrap()
            .as_slice()
            .unwrap(),
        &[9, 8, 7]
    );
    let r = (6.0 / &f32s).unwrap();
    assert_eq!(
        r.data()
            .typed::<f32>()
            .unwrap()
            .compute()
            .unwrap()
            .as_slice()
            .unwrap(),
        &[6.0, 3.0, 2.0]
    );
    let err = (&u8s + 300).unwrap_err();
    assert!(
        matches!(err, DatasetError::UnsupportedDType { .. }),
        "{err}"
    );
    // Names: kept when equal or with a scalar.
    assert_eq!((&f32s + &i16s).unwrap().name(), Some("a"));
    assert_eq!((&f32s + &i32s).unwrap().name(), None);
    assert_eq!((&f32s * 2.0).unwrap().name(), Some("a"));

    // Shared dimensions must agree in length and index.
    let c = climate();
    let tas = c.ds.data_array("tas").unwrap();
    let head = tas.isel([("lat", Indexer::from(0..3))]).unwrap();
    let err = (&tas + &head).unwrap_err();
    assert!(matches!(err, DatasetError::DimSizeMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("\"lat\" has length 6 in the left operand but 3"),
        "{err}"
    );
    let flipped = tas
        .isel([("lat", Indexer::from(Slice::new(None, None, Some(-1))))])
        .unwrap();
    let err = (&tas - &flipped).unwrap_err();
    assert!(matches!(err, DatasetError::IndexMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("\"lat\"") && err.to_string().contains("75 vs -75"),
        "{err}"
    );
    // Equal indexes (even from different arrays) are fine; coordinates carry over.
    let again = climate().ds.data_array("tas").unwrap();
    let anomaly = (&tas - &tas.mean(["time"]).unwrap()).unwrap();
    assert_eq!(anomaly.dims(), ["time", "lat", "lon"]);
    assert_eq!(anomaly.coords().count(), 4);
    assert!((&tas + &again).is_ok());
    let times = c.ds.data_array("time").unwrap();
    assert!(matches!(
        (&tas + &times).unwrap_err(),
        DatasetError::UnsupportedDType { .. }
    ));
}

#[test]
fn transpose_matches_ndarray() {
    let c = climate();
    let tas = c.ds.data_array("tas").unwrap();
    let t = tas.transpose(["lon", "time", "lat"]).unwrap();
    assert_eq!(t.dims(), ["lon", "time", "lat"]);
    assert_close(
        &f64s(t.data()),
        &c.tas.clone().permuted_axes(vec![2, 0, 1]),
        "transpose",
    );
    assert_eq!(t.coord("area").unwrap().dims(), ["lon", "lat"]);
    let tt = tas.t();
    assert_eq!(tt.dims(), ["lon", "lat", "time"]);
    assert_close(&f64s(tt.data()), &c.tas.t().to_owned(), ".T");
    assert_eq!(
        tas.transpose(["...", "time"]).unwrap().dims(),
        ["lat", "lon", "time"]
    );
    let err = tas.transpose(["lon", "lat"]).unwrap_err();
    assert!(err.to_string().contains("\"time\""), "{err}");
    let ds = c.ds.transpose(["lon", "..."]).unwrap();
    assert_eq!(ds.variable("tas").unwrap().dims(), ["lon", "time", "lat"]);
    assert_eq!(ds.variable("area").unwrap().dims(), ["lon", "lat"]);
}

#[test]
fn dot_matches_an_einsum() {
    let sizes = [("time", 5), ("lat", 3), ("lon", 4)];
    for seed in 0..40 {
        let mut r = rng(5000 + seed);
        let (a, ad, av) = random_named(&mut r, &sizes);
        let (b, bd, bv) = random_named(&mut r, &sizes);
        let explicit = r.random_bool(0.4);
        let summed: Vec<String> = if explicit {
            sizes
                .iter()
                .map(|s| s.0.to_string())
                .filter(|d| (ad.contains(d) || bd.contains(d)) && r.random_bool(0.5))
                .collect()
        } else {
            ad.iter().filter(|d| bd.contains(d)).cloned().collect()
        };
        let got = if explicit {
            a.dot_over(&b, &summed)
        } else {
            a.dot(&b)
        }
        .unwrap();
        let mut all = ad.clone();
        all.extend(bd.iter().filter(|d| !ad.contains(d)).cloned());
        let kept: Vec<String> = all
            .iter()
            .filter(|d| !summed.contains(d))
            .cloned()
            .collect();
        assert_eq!(got.dims(), kept.as_slice(), "seed {seed}");
        let len = |d: &str| sizes.iter().find(|s| s.0 == d).unwrap().1;
        let shape: Vec<usize> = kept.iter().map(|d| len(d)).collect();
        let want = ArrayD::from_shape_fn(IxDyn(&shape), |i| {
            let mut total = 0.0;
            let sum_shape: Vec<usize> = summed.iter().map(|d| len(d)).collect();
            for s in ndarray::indices(IxDyn(&sum_shape)) {
                let mut pos: HashMap<String, usize> = kept
                    .iter()
                    .enumerate()
                    .map(|(k, d)| (d.clone(), i[k]))
                    .collect();
                for (k, d) in summed.iter().enumerate() {
                    pos.insert(d.clone(), s[k]);
                }
                total += at(&ad, &av, &pos) * at(&bd, &bv, &pos);
            }
            total
        });
        assert_close(
            &f64s(got.data()),
            &want,
            &format!("seed {seed}: {ad:?}·{bd:?} over {summed:?}"),
        );
    }
}

#[test]
fn the_notebook_dot() {
    let c = climate();
    let tas = fill_nan(&c.ds.data_array("tas").unwrap());
    let z = tas.mean(["lat", "lon"]).unwrap().dot(&tas.t()).unwrap();
    assert_eq!(z.dims(), ["lon", "lat"]);
    let data = c.tas.mapv(|v| if v.is_nan() { 0.0 } else { v });
    let m = oracle_reduce(&data, &[1, 2], |l| l.iter().sum::<f64>() / l.len() as f64);
    let want = ArrayD::from_shape_fn(IxDyn(&[8, 6]), |i| {
        (0..20).map(|t| m[[t]] * data[[t, i[1], i[0]]]).sum()
    });
    assert_close(&f64s(z.data()), &want, "mean.dot(T)");
    // The same with an explicit dimension and as a batch (time kept).
    let per_time = tas.dot_over(&tas, ["lat", "lon"]).unwrap();
    assert_eq!(per_time.dims(), ["time"]);
    let want = oracle_reduce(&data.mapv(|v| v * v), &[1, 2], |l| l.iter().sum());
    assert_close(&f64s(per_time.data()), &want, "batch dot");
}

/// `da` with NaN replaced by 0 (so that the oracle need not skip NaN).
fn fill_nan(da: &DataArray) -> DataArray {
    let a = da.data().typed::<f64>().unwrap();
    let zeros = array::zeros(a.shape(), a.chunks()).unwrap();
    let filled = array::where_(&a.isnan(), &zeros, a).unwrap();
    let mut out = DataArray::new(da.variable().with_data(filled).unwrap());
    for (n, c) in da.coords() {
        out = out.with_coord(n, c.clone()).unwrap();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// From a Zarr store, as xarray writes it
// ---------------------------------------------------------------------------------------------

#[test]
fn sel_and_mean_on_an_opened_store() {
    let store = Store::memory();
    let attrs = |v: serde_json::Value| v.as_object().unwrap().clone();
    create_group(&store, "", attrs(json!({"title": "t"})), ZarrFormat::V2).unwrap();
    let (nt, ny, nx) = (12usize, 3usize, 4usize);
    // As xarray writes them: NaN fill values for floats, none for integers.
    let spec = |shape: Vec<u64>, chunks: Vec<u64>, dtype: DType, dims: &[&str]| {
        let fill = if dtype.is_float() {
            FillValue::NaN
        } else {
            FillValue::Null
        };
        ArraySpec::new(shape, chunks, dtype)
            .with_format(ZarrFormat::V2)
            .with_fill_value(fill)
            .with_dimension_names(dims.iter().copied())
    };
    let time = ZarrArray::create(
        &store,
        "time",
        &spec(vec![nt as u64], vec![nt as u64], DType::I64, &["time"])
            .with_attribute("units", "hours since 2000-01-01")
            .with_attribute("calendar", "proleptic_gregorian"),
        false,
    )
    .unwrap();
    let hours: Vec<i64> = (0..nt as i64).map(|i| 6 * i).collect();
    time.write_region(
        &[nt].map(|n| 0..n as u64),
        ArrayD::from_shape_vec(vec![nt], hours).unwrap().view(),
    )
    .unwrap();
    let lat = ZarrArray::create(
        &store,
        "lat",
        &spec(vec![ny as u64], vec![ny as u64], DType::F64, &["lat"]),
        false,
    )
    .unwrap();
    lat.write_region(
        &[ny].map(|n| 0..n as u64),
        ArrayD::from_shape_vec(vec![ny], vec![-10.0, 0.0, 10.0])
            .unwrap()
            .view(),
    )
    .unwrap();
    let values = ArrayD::from_shape_fn(IxDyn(&[nt, ny, nx]), |i| {
        (i[0] * 100 + i[1] * 10 + i[2]) as f32
    });
    let tas = ZarrArray::create(
        &store,
        "tas",
        &spec(
            vec![nt as u64, ny as u64, nx as u64],
            vec![5, 2, 4],
            DType::F32,
            &["time", "lat", "lon"],
        ),
        false,
    )
    .unwrap();
    tas.write_region(&[0..nt as u64, 0..ny as u64, 0..nx as u64], values.view())
        .unwrap();

    let ds = open_zarr(&store, "", &OpenOptions::default()).unwrap();
    let day2 = ds.sel([("time", "2000-01-02"), ("lat", "0")]);
    assert!(matches!(
        day2.unwrap_err(),
        DatasetError::InvalidSelection { .. }
    )); // text on numbers
    let day2 = ds
        .sel([
            ("time", Selector::from("2000-01-02")),
            ("lat", Selector::from(0.0)),
        ])
        .unwrap();
    assert_eq!(day2.dims().to_string(), "(time: 4, lon: 4)");
    let m = day2.data_array("tas").unwrap().mean(["time"]).unwrap();
    assert_eq!(m.dtype().name(), "float32");
    let got = m.data().typed::<f32>().unwrap().compute().unwrap();
    // Times 4..8 (day 2), lat index 1: mean over t of t*100 + 10 + lon = 550 + 10 + lon.
    assert_eq!(got.as_slice().unwrap(), &[560.0, 561.0, 562.0, 563.0]);
    let lon_err = ds.sel([("lon", 1.0)]).unwrap_err();
    assert!(matches!(lon_err, DatasetError::NoIndex { .. }), "{lon_err}");
}
