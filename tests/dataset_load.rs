//! Loading datasets into memory (`load`, `load_with`, `load_async`): the values equal a plain
//! compute, at most `concurrency` reads are in flight (and that many are reached when there is
//! enough work, across variables), `load_async` works from a tokio runtime without blocking
//! it, and loaded objects never read the store again. Every check counts reads through the
//! latency store's `ReadStats`; nothing here asserts on time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chunkflow::Collection;
use chunkflow::array::{self, DType};
use chunkflow::dataset::{
    AnyArray, DEFAULT_LOAD_CONCURRENCY, DataArray, Dataset, LoadOptions, OpenOptions, Variable,
    default_load_concurrency, open_zarr, set_default_load_concurrency,
};
use chunkflow::store::{
    ArraySpec, FillValue, Store, ZarrArray, ZarrFormat, consolidate_metadata, create_group,
};
use ndarray::ArrayD;
use serde_json::json;

fn write<T: chunkflow::array::Element>(store: &Store, path: &str, spec: ArraySpec, data: Vec<T>) {
    let shape: Vec<usize> = spec.shape.iter().map(|&s| s as usize).collect();
    let array = ZarrArray::create(store, path, &spec, false).unwrap();
    let region: Vec<_> = spec.shape.iter().map(|&s| 0..s).collect();
    array
        .write_region(&region, ArrayD::from_shape_vec(shape, data).unwrap().view())
        .unwrap();
}

fn group(store: &Store, format: ZarrFormat) {
    let attrs = json!({"title": "load test"}).as_object().unwrap().clone();
    create_group(store, "", attrs, format).unwrap();
}

/// `vars` float64 variables `v00`, `v01`, ... over `(time, x)` with `chunks` chunks each
/// (one per time step), variable `i` holding `i`, behind a store adding `delay` per read.
/// Metadata is consolidated; the store is wrapped only after it is written.
fn many_variables(vars: usize, chunks: usize, delay: Duration) -> Store {
    let store = Store::memory();
    group(&store, ZarrFormat::V3);
    for v in 0..vars {
        let spec = ArraySpec::new(vec![chunks as u64, 8], vec![1, 8], DType::F64)
            .with_dimension_names(["time", "x"]);
        write(
            &store,
            &format!("v{v:02}"),
            spec,
            vec![v as f64; chunks * 8],
        );
    }
    consolidate_metadata(&store, "").unwrap();
    store.with_latency(delay)
}

fn expected_sum(vars: usize, chunks: usize) -> f64 {
    (0..vars).map(|v| v as f64 * (chunks * 8) as f64).sum()
}

fn sum_all(ds: &Dataset) -> f64 {
    ds.data_vars()
        .map(|(_, v)| v.data().to_f64().sum_all().compute().unwrap())
        .sum()
}

/// A v2 climate-like group with what decoding touches: hourly int64 times (decoded to
/// datetimes), a float index coordinate, NaN-masked float32 and CF-packed int16 (fill -1,
/// scale 0.5, offset 100), and an auxiliary coordinate through `coordinates`.
fn climate(delay: Duration) -> Store {
    let store = Store::memory();
    group(&store, ZarrFormat::V2);
    let spec = |shape: Vec<u64>, chunks: Vec<u64>, dtype: DType, dims: &[&str], fill| {
        ArraySpec::new(shape, chunks, dtype)
            .with_format(ZarrFormat::V2)
            .with_dimension_names(dims.iter().copied())
            .with_fill_value(fill)
    };
    write(
        &store,
        "time",
        spec(vec![6], vec![6], DType::I64, &["time"], FillValue::Null)
            .with_attribute("units", "hours since 2000-01-01 00:00:00")
            .with_attribute("calendar", "proleptic_gregorian"),
        (0..6).map(|i| i * 6).collect::<Vec<i64>>(),
    );
    write(
        &store,
        "lat",
        spec(vec![4], vec![4], DType::F64, &["lat"], FillValue::NaN),
        vec![-67.5, -22.5, 22.5, 67.5],
    );
    write(
        &store,
        "area",
        spec(vec![4], vec![2], DType::F32, &["lat"], FillValue::NaN),
        vec![1.0f32, 2.0, 3.0, 4.0],
    );
    let mut t2m: Vec<f32> = (0..24).map(|i| 270.0 + i as f32 * 0.25).collect();
    t2m[5] = f32::NAN;
    write(
        &store,
        "t2m",
        spec(
            vec![6, 4],
            vec![2, 2],
            DType::F32,
            &["time", "lat"],
            FillValue::NaN,
        )
        .with_attribute("units", "K")
        .with_attribute("coordinates", "area"),
        t2m,
    );
    let mut packed: Vec<i16> = (0..24).collect();
    packed[3] = -1;
    write(
        &store,
        "packed",
        spec(
            vec![6, 4],
            vec![3, 4],
            DType::I16,
            &["time", "lat"],
            FillValue::Int(-1),
        )
        .with_attribute("scale_factor", 0.5)
        .with_attribute("add_offset", 100.0),
        packed,
    );
    consolidate_metadata(&store, "").unwrap();
    store.with_latency(delay)
}

/// Values in C order with NaN compared as equal (bit patterns of `f64`, NaN canonical).
fn values(a: &AnyArray) -> Vec<u64> {
    let computed = a.compute().unwrap();
    let numbers = match computed.as_datetime() {
        Some(ns) => ns.iter().map(|&t| t as f64).collect(),
        None => computed.to_f64_vec().unwrap(),
    };
    numbers
        .into_iter()
        .map(|x| {
            if x.is_nan() {
                f64::NAN.to_bits()
            } else {
                x.to_bits()
            }
        })
        .collect()
}

#[test]
fn loaded_values_equal_a_plain_compute() {
    let store = climate(Duration::ZERO);
    let ds = open_zarr(&store, "", &OpenOptions::default()).unwrap();
    let loaded = ds.load().unwrap();
    assert!(loaded.in_memory() && !ds.in_memory());
    assert_eq!(
        loaded.variables().map(|(n, _)| n).collect::<Vec<_>>(),
        ds.variables().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for (name, lazy) in ds.variables() {
        let done = loaded.variable(name).unwrap();
        assert!(done.in_memory(), "{name}");
        assert_eq!(done.dims(), lazy.dims(), "{name}");
        assert_eq!(done.dtype(), lazy.dtype(), "{name}");
        assert_eq!(done.chunks(), lazy.chunks(), "{name}");
        assert_eq!(done.attrs(), lazy.attrs(), "{name}");
        assert_eq!(done.encoding(), lazy.encoding(), "{name}");
        assert_eq!(loaded.is_coord(name), ds.is_coord(name), "{name}");
        assert_eq!(values(done.data()), values(lazy.data()), "{name}");
    }
    // Decoding happened before the values were kept: NaN masks, unpacking, datetimes.
    let packed = loaded.variable("packed").unwrap().data().compute().unwrap();
    let packed = packed.to_f64_vec().unwrap();
    assert_eq!((packed[0], packed[2]), (100.0, 101.0));
    assert!(packed[3].is_nan());
    assert!(loaded.variable("time").unwrap().data().is_datetime());
    assert_eq!(loaded.attrs(), ds.attrs());

    // The async form gives the same.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let loaded_async = rt.block_on(ds.load_async()).unwrap();
    for (name, v) in loaded.variables() {
        let other = loaded_async.variable(name).unwrap();
        assert!(other.in_memory());
        assert_eq!(values(other.data()), values(v.data()), "{name}");
    }
}

#[test]
fn concurrency_limit_is_respected_and_reached() {
    let (vars, chunks) = (50, 4);
    let store = many_variables(vars, chunks, Duration::from_millis(20));
    let stats = store.read_stats().unwrap();
    let ds = open_zarr(&store, "", &OpenOptions::default()).unwrap();
    for concurrency in [1, 8, 32] {
        stats.reset();
        let options = LoadOptions::default()
            .with_concurrency(concurrency)
            .with_threads(2);
        let loaded = ds.load_with(&options).unwrap();
        assert_eq!(
            stats.total_reads(),
            (vars * chunks) as u64,
            "one read per chunk"
        );
        let max = stats.max_in_flight();
        assert!(
            max <= concurrency,
            "concurrency {concurrency}: {max} reads were in flight"
        );
        // 200 reads of 20 ms each are enough work to fill every slot: more than the 2 workers
        // and (for 8 and 32) more than one variable's 4 chunks, so variables overlap.
        assert_eq!(
            max, concurrency,
            "concurrency {concurrency}: only {max} reads were ever in flight"
        );
        assert_eq!(sum_all(&loaded), expected_sum(vars, chunks));
    }
}

#[test]
fn the_default_concurrency_can_be_changed_for_the_process() {
    let store = many_variables(6, 4, Duration::from_millis(10));
    let stats = store.read_stats().unwrap();
    let ds = open_zarr(&store, "", &OpenOptions::default()).unwrap();
    assert_eq!(
        LoadOptions::default().concurrency,
        default_load_concurrency()
    );
    let before = set_default_load_concurrency(3).unwrap();
    assert_eq!(before, DEFAULT_LOAD_CONCURRENCY);
    assert_eq!(LoadOptions::default().concurrency, 3);
    stats.reset();
    // Build the options now: other tests in this binary use explicit options only.
    let loaded = ds.load_with(&LoadOptions::default());
    set_default_load_concurrency(before).unwrap();
    loaded.unwrap();
    assert_eq!(stats.total_reads(), 24);
    assert!(stats.max_in_flight() <= 3, "{}", stats.max_in_flight());
    let err = set_default_load_concurrency(0).unwrap_err().to_string();
    assert!(err.contains("between 1 and 1024"), "{err}");
    let err = ds
        .load_with(&LoadOptions::default().with_concurrency(5000))
        .unwrap_err()
        .to_string();
    assert!(err.contains("got 5000"), "{err}");
}

#[test]
fn loaded_objects_do_not_read_the_store_again() {
    let store = climate(Duration::ZERO);
    let stats = store.read_stats().unwrap();
    // Index coordinates left lazy, so that loading reads them too.
    let lazy = OpenOptions::default().with_default_indexes(false);
    let ds = open_zarr(&store, "", &lazy).unwrap();
    stats.reset();
    let loaded = ds
        .load_with(&LoadOptions::default().with_concurrency(4))
        .unwrap();
    let reads = stats.total_reads();
    // time, lat: 1 chunk each; area: 2; t2m: 3 x 2; packed: 2.
    assert_eq!(reads, 12);
    for (_, v) in loaded.variables() {
        v.data().compute().unwrap();
    }
    let t2m = loaded.data_array("t2m").unwrap();
    t2m.data().to_f64().nanmean_all().compute().unwrap();
    assert_eq!(
        stats.total_reads(),
        reads,
        "computing loaded data read the store"
    );
    // Loading again runs nothing, and keeps the very same in-memory chunks.
    let again = loaded.load().unwrap();
    assert_eq!(stats.total_reads(), reads);
    assert!(Arc::ptr_eq(
        again.variable("t2m").unwrap().data().layer(),
        loaded.variable("t2m").unwrap().data().layer()
    ));

    // Variables already in memory (here the index coordinates) are skipped: only the lazy
    // ones are read.
    let mut mixed = ds.clone();
    for coord in ["time", "lat"] {
        let data = loaded.variable(coord).unwrap().data().clone();
        let var = mixed.variable_mut(coord).unwrap();
        *var = var.with_data(data).unwrap();
    }
    stats.reset();
    mixed
        .load_with(&LoadOptions::default().with_concurrency(4))
        .unwrap();
    assert_eq!(stats.total_reads(), reads - 2);
}

#[test]
fn data_arrays_and_variables_load_with_their_coordinates() {
    let store = climate(Duration::ZERO);
    let stats = store.read_stats().unwrap();
    let lazy = OpenOptions::default().with_default_indexes(false);
    let ds = open_zarr(&store, "", &lazy).unwrap();
    let da: DataArray = ds.data_array("t2m").unwrap();
    assert_eq!(
        da.coords().map(|(n, _)| n).collect::<Vec<_>>(),
        ["area", "lat", "time"]
    );
    stats.reset();
    let loaded = da
        .load_with(&LoadOptions::default().with_concurrency(2))
        .unwrap();
    assert!(loaded.in_memory());
    assert!(loaded.coords().all(|(_, c)| c.in_memory()));
    // t2m 6 chunks + time 1 + lat 1 + area 2, in one graph.
    assert_eq!(stats.total_reads(), 10);
    assert!(stats.max_in_flight() <= 2);
    assert_eq!(loaded.name(), Some("t2m"));
    assert_eq!(values(loaded.data()), values(da.data()));

    let var: Variable = ds.variable("packed").unwrap().clone();
    stats.reset();
    let loaded_var = var.load().unwrap();
    assert_eq!(stats.total_reads(), 2);
    assert!(loaded_var.in_memory() && !var.in_memory());
    assert_eq!(loaded_var.encoding().scale_factor, Some(0.5));
    assert_eq!(values(loaded_var.data()), values(var.data()));
}

#[test]
fn a_failed_read_names_the_array() {
    let store = climate(Duration::ZERO);
    let ds = open_zarr(&store, "", &OpenOptions::default()).unwrap();
    // Corrupt one stored chunk of t2m (blosc-compressed in v2): decoding it fails.
    store.set("t2m/1.0", b"not a blosc frame").unwrap();
    let err = ds
        .load_with(&LoadOptions::default().with_concurrency(4))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("array \"t2m\"") && err.contains("chunk [1, 0]"),
        "{err}"
    );
}

/// From a single-threaded tokio runtime: the runtime keeps running other tasks while the
/// reads are in flight (a blocked runtime could not tick before the load returned), and many
/// reads overlap although no runtime thread does I/O.
#[tokio::test(flavor = "current_thread")]
async fn load_async_from_tokio_does_not_block_the_runtime() {
    let (vars, chunks) = (20, 4);
    let store = many_variables(vars, chunks, Duration::from_millis(20));
    let stats = store.read_stats().unwrap();
    let ds = open_zarr(&store, "", &OpenOptions::default()).unwrap();
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                ticks.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    stats.reset();
    let options = LoadOptions::default().with_concurrency(16);
    // 'static futures: they can be spawned as well as awaited.
    let da = ds.data_array("v03").unwrap();
    let (loaded, loaded_da) = tokio::join!(
        ds.load_async_with(&options),
        tokio::spawn(da.load_async_with(&options))
    );
    let ticked = ticks.load(Ordering::SeqCst);
    ticker.abort();
    let loaded = loaded.unwrap();
    let loaded_da = loaded_da.unwrap().unwrap();
    assert!(
        ticked > 1,
        "the runtime did not run while loading ({ticked} ticks)"
    );
    assert!(loaded.in_memory() && loaded_da.in_memory());
    assert_eq!(stats.total_reads(), (vars * chunks + chunks) as u64);
    assert!(stats.max_in_flight() <= 32);
    assert!(stats.max_in_flight() > 2, "{}", stats.max_in_flight());
    assert_eq!(sum_all(&loaded), expected_sum(vars, chunks));
}

#[test]
fn datasets_built_in_memory_load_too() {
    let x = array::arange(0.0f64, 12.0, 1.0, 5).unwrap();
    let ds = Dataset::new()
        .with_variable("a", Variable::new(["x"], x.clone()).unwrap())
        .unwrap()
        .with_variable("b", Variable::new(["x"], &x + &x).unwrap())
        .unwrap();
    let loaded = ds
        .load_with(&LoadOptions::default().with_concurrency(1).with_threads(1))
        .unwrap();
    assert!(loaded.in_memory());
    let b = loaded.variable("b").unwrap().data().to_f64().sum_all();
    assert_eq!(b.compute().unwrap(), 132.0);
    // An empty dataset loads to itself.
    assert!(Dataset::new().load().unwrap().in_memory());
}

#[test]
fn index_coordinates_are_read_at_open_and_sel_reads_nothing_more() {
    let store = climate(Duration::from_millis(5));
    let stats = store.read_stats().unwrap();
    stats.reset();
    let ds = open_zarr(&store, "", &OpenOptions::default()).unwrap();
    // time and lat are index coordinates (1-D, named after their dimension); area is not.
    for (name, in_memory) in [
        ("time", true),
        ("lat", true),
        ("area", false),
        ("t2m", false),
    ] {
        assert_eq!(ds.variable(name).unwrap().in_memory(), in_memory, "{name}");
    }
    let at_open = stats.total_reads();
    let t2m = ds.data_array("t2m").unwrap();
    for lat in [-22.5, 22.5, 67.5] {
        let one = t2m.sel([("lat", lat)]).unwrap();
        assert_eq!(one.sizes().get("lat"), None);
    }
    assert_eq!(
        stats.total_reads(),
        at_open,
        "sel read an index coordinate again"
    );
    // Lazy on request: then each sel reads the coordinate.
    let lazy = open_zarr(
        &store,
        "",
        &OpenOptions::default().with_default_indexes(false),
    )
    .unwrap();
    assert!(!lazy.variable("lat").unwrap().in_memory());
    stats.reset();
    lazy.data_array("t2m")
        .unwrap()
        .sel([("lat", 22.5)])
        .unwrap();
    assert_eq!(stats.total_reads(), 1);
}
