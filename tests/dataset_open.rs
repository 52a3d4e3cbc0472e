//! Opening Zarr groups as datasets (`chunkflow::dataset::open_zarr`).
//!
//! - Stores built here, by hand, with xarray's conventions (v2 `_ARRAY_DIMENSIONS` and
//!   `fill_value`, v3 `dimension_names` and the base64 `_FillValue` attribute, CF packing and
//!   times, `coordinates` attributes, consolidated metadata fresh, stale and missing), and the
//!   errors: missing variable, unknown dimension, conflicting lengths, a group without xarray
//!   metadata, an array instead of a group.
//! - `xarray_fixtures` (ignored by default; run by `scripts/xarray-interop.sh`): every store that
//!   `tests/interop/xarray_fixtures.py write` made with real xarray (directory in
//!   `CHUNKFLOW_XARRAY_FIXTURES`), opened here and compared with what xarray read: dimensions,
//!   coordinates, attributes, encodings, chunks and every value. It panics when the variable is
//!   unset, so it cannot pass vacuously.

use std::path::PathBuf;

use chunkflow::array::{DType, Dim};
use chunkflow::dataset::time::{NAT, format_datetime};
use chunkflow::dataset::{
    AnyArray, AnyNdArray, Consolidated, DatasetError, Encoding, OpenOptions, UndecodableTimes,
    VarDType, open_zarr,
};
use chunkflow::prelude::*;
use chunkflow::store::{
    ArraySpec, FillValue, Store, StoreError, ZarrArray, ZarrFormat, consolidate_metadata,
    create_group,
};
use ndarray::ArrayD;
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// Stores written by hand with xarray's conventions
// ---------------------------------------------------------------------------------------------

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().expect("an object").clone()
}

fn write<T: chunkflow::array::Element>(store: &Store, path: &str, spec: ArraySpec, data: Vec<T>) {
    let shape: Vec<usize> = spec.shape.iter().map(|&s| s as usize).collect();
    let array = ZarrArray::create(store, path, &spec, false).unwrap();
    let region: Vec<_> = spec.shape.iter().map(|&s| 0..s).collect();
    array
        .write_region(&region, ArrayD::from_shape_vec(shape, data).unwrap().view())
        .unwrap();
}

/// The sample of the design notes (time=6, lat=4, lon=5, `cell_area(lat, lon)` via
/// `coordinates`, NaN fill values, hourly int64 times) as xarray writes it in `format`.
fn climate_store(format: ZarrFormat, consolidated: bool) -> Store {
    let store = Store::memory();
    create_group(
        &store,
        "",
        obj(json!({"title": "interop sample", "Conventions": "CF-1.8"})),
        format,
    )
    .unwrap();
    let spec = |shape: Vec<u64>, chunks: Vec<u64>, dtype: DType, dims: &[&str]| {
        let s = ArraySpec::new(shape, chunks, dtype)
            .with_format(format)
            .with_dimension_names(dims.iter().copied());
        let fill = if dtype.is_float() {
            FillValue::NaN
        } else if format == ZarrFormat::V2 {
            FillValue::Null
        } else {
            FillValue::Zero
        };
        let s = s.with_fill_value(fill);
        // v3: xarray's mask is the base64 `_FillValue` attribute (NaN here).
        if format == ZarrFormat::V3 && dtype.is_float() {
            s.with_attribute("_FillValue", "AAAAAAAA+H8=")
        } else {
            s
        }
    };
    write(
        &store,
        "time",
        spec(vec![6], vec![6], DType::I64, &["time"])
            .with_attribute("units", "hours since 2000-01-01 00:00:00")
            .with_attribute("calendar", "proleptic_gregorian"),
        (0..6).map(|i| i * 6).collect::<Vec<i64>>(),
    );
    write(
        &store,
        "lat",
        spec(vec![4], vec![4], DType::F64, &["lat"]).with_attribute("units", "degrees_north"),
        vec![-67.5, -22.5, 22.5, 67.5],
    );
    write(
        &store,
        "lon",
        spec(vec![5], vec![5], DType::F64, &["lon"]),
        vec![0.0, 72.0, 144.0, 216.0, 288.0],
    );
    write(
        &store,
        "cell_area",
        spec(vec![4, 5], vec![2, 5], DType::F32, &["lat", "lon"]).with_attribute("units", "m2"),
        (0..20).map(|i| 1.0 + i as f32).collect(),
    );
    let mut t2m: Vec<f32> = (0..120).map(|i| 270.0 + i as f32 * 0.25).collect();
    t2m[0] = f32::NAN;
    write(
        &store,
        "t2m",
        spec(
            vec![6, 4, 5],
            vec![2, 2, 5],
            DType::F32,
            &["time", "lat", "lon"],
        )
        .with_attribute("units", "K")
        .with_attribute("coordinates", "cell_area"),
        t2m,
    );
    if consolidated {
        consolidate_metadata(&store, "").unwrap();
    }
    store
}

fn open(store: &Store) -> chunkflow::dataset::Dataset {
    open_zarr(store, "", &OpenOptions::default()).unwrap()
}

fn f64s(data: &AnyArray) -> Vec<f64> {
    data.compute().unwrap().to_f64_vec().unwrap()
}

#[test]
fn opens_the_sample_in_both_formats() {
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        let ds = open(&climate_store(format, true));
        assert!(ds.warnings().is_empty(), "{format}: {:?}", ds.warnings());
        assert_eq!(
            ds.dims().to_string(),
            "(time: 6, lat: 4, lon: 5)",
            "{format}"
        );
        let data_vars: Vec<&str> = ds.data_vars().map(|(n, _)| n).collect();
        assert_eq!(data_vars, ["t2m"]);
        let coords: Vec<&str> = ds.coords().map(|(n, _)| n).collect();
        assert_eq!(coords, ["cell_area", "lat", "lon", "time"]);
        assert!(ds.is_index("time") && !ds.is_index("cell_area"));
        assert_eq!(ds.attrs()["title"], "interop sample");

        let t2m = ds.variable("t2m").unwrap();
        assert_eq!(t2m.dims(), ["time", "lat", "lon"]);
        assert_eq!(t2m.dtype(), VarDType::Plain(DType::F32));
        assert_eq!(t2m.attrs(), &obj(json!({"units": "K"})), "{format}");
        assert_eq!(t2m.chunks().axis(0), &[2, 2, 2]);
        let enc = t2m.encoding();
        assert_eq!(enc.coordinates.as_deref(), Some("cell_area"));
        assert_eq!(enc.fill_value, Some(FillValue::NaN));
        assert_eq!(enc.chunks.as_deref(), Some(&[2u64, 2, 5][..]));
        assert_eq!(enc.format, Some(format));
        let values = f64s(t2m.data());
        assert!(values[0].is_nan() && values[1] == 270.25 && values[119] == 299.75);

        let time = ds.variable("time").unwrap();
        assert_eq!(time.dtype(), VarDType::Datetime);
        assert_eq!(
            time.chunks().num_chunks(),
            1,
            "index coordinates are one chunk"
        );
        assert!(time.attrs().is_empty(), "{:?}", time.attrs());
        assert_eq!(
            time.encoding().units.as_deref(),
            Some("hours since 2000-01-01 00:00:00")
        );
        let AnyNdArray::Datetime(ns) = time.data().compute().unwrap() else {
            panic!("times decode to datetimes")
        };
        let iso: Vec<String> = ns.iter().map(|&t| format_datetime(t)).collect();
        assert_eq!(iso[0], "2000-01-01T00:00:00");
        assert_eq!(iso[5], "2000-01-02T06:00:00");

        let da = ds.data_array("t2m").unwrap();
        let coords: Vec<&str> = da.coords().map(|(n, _)| n).collect();
        assert_eq!(coords, ["cell_area", "lat", "lon", "time"]);
        let text = ds.to_string();
        assert!(
            text.contains("  * time") && text.contains("    cell_area"),
            "{text}"
        );
        assert!(
            text.contains("Dimensions:    (time: 6, lat: 4, lon: 5)"),
            "{text}"
        );
        assert!(
            text.contains("t2m        (time, lat, lon) float32"),
            "{text}"
        );
        assert!(text.contains("datetime64[ns]"), "{text}");
    }
}

#[test]
fn opening_twice_gives_the_same_graph() {
    let store = climate_store(ZarrFormat::V3, true);
    let (a, b) = (open(&store), open(&store));
    for (name, var) in a.variables() {
        assert_eq!(var.data().name(), b.variable(name).unwrap().data().name());
    }
    // Opening reads no chunk: only metadata documents.
    let counted = Store::memory().with_latency(std::time::Duration::ZERO);
    for key in store.list("").unwrap() {
        counted
            .set(&key, &store.get(&key).unwrap().unwrap())
            .unwrap();
    }
    let stats = counted.read_stats().unwrap();
    let before = stats.total_reads();
    open(&counted);
    let metadata_reads = stats.total_reads() - before;
    let chunk_keys = store
        .list("")
        .unwrap()
        .iter()
        .filter(|k| k.contains("/c/"))
        .count();
    assert!(chunk_keys > 0);
    let before = stats.total_reads();
    open(&counted)
        .variable("t2m")
        .unwrap()
        .data()
        .compute()
        .unwrap();
    assert!(stats.total_reads() - before >= metadata_reads + 6);
}

#[test]
fn decodes_cf_packing_and_fill_values() {
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        let store = Store::memory();
        create_group(&store, "", Map::new(), format).unwrap();
        let dims = ["x"];
        // int16 packed: v2 fill in the array metadata, v3 in the `_FillValue` attribute.
        let mut packed = ArraySpec::new(vec![4], vec![2], DType::I16)
            .with_format(format)
            .with_dimension_names(dims)
            .with_attribute("scale_factor", 0.01)
            .with_attribute("add_offset", 280.0)
            .with_attribute("units", "K");
        packed = match format {
            ZarrFormat::V2 => packed.with_fill_value(FillValue::Int(-32768)),
            ZarrFormat::V3 => packed.with_attribute("_FillValue", -32768),
        };
        write(&store, "t", packed, vec![-32768i16, 0, 150, -150]);
        // float32 with a non-NaN fill value (v3: base64 of -9999.0 as float64).
        let mut sst = ArraySpec::new(vec![4], vec![4], DType::F32)
            .with_format(format)
            .with_dimension_names(dims);
        sst = match format {
            ZarrFormat::V2 => sst.with_fill_value(FillValue::Float(-9999.0)),
            ZarrFormat::V3 => sst
                .with_fill_value(FillValue::NaN)
                .with_attribute("_FillValue", "AAAAAICHw8A="),
        };
        write(&store, "sst", sst, vec![1.5f32, -9999.0, 2.5, 3.5]);
        // int32 with a fill value: masked to float64. int8 without one: kept.
        let mut count = ArraySpec::new(vec![4], vec![4], DType::I32)
            .with_format(format)
            .with_dimension_names(dims);
        count = match format {
            ZarrFormat::V2 => count.with_fill_value(FillValue::Int(-1)),
            ZarrFormat::V3 => count.with_attribute("_FillValue", -1),
        };
        write(&store, "count", count, vec![3i32, -1, 0, 7]);
        let flag = ArraySpec::new(vec![4], vec![4], DType::I8)
            .with_format(format)
            .with_dimension_names(dims)
            .with_fill_value(if format == ZarrFormat::V2 {
                FillValue::Null
            } else {
                FillValue::Zero
            });
        write(&store, "flag", flag, vec![0i8, 1, 0, -1]);

        let ds = open(&store);
        let t = ds.variable("t").unwrap();
        assert_eq!(t.dtype().name(), "float64", "{format}");
        let v = f64s(t.data());
        assert!(v[0].is_nan());
        assert_eq!(
            &v[1..],
            &[280.0, 150.0 * 0.01 + 280.0, -150.0 * 0.01 + 280.0]
        );
        assert_eq!(t.attrs(), &obj(json!({"units": "K"})));
        let enc = t.encoding();
        assert_eq!(
            (enc.dtype, enc.fill_value, enc.scale_factor, enc.add_offset),
            (
                Some(DType::I16),
                Some(FillValue::Int(-32768)),
                Some(0.01),
                Some(280.0)
            ),
            "{format}"
        );

        let sst = ds.variable("sst").unwrap();
        assert_eq!(sst.dtype().name(), "float32");
        let v = f64s(sst.data());
        assert!(
            v[1].is_nan() && v[0] == 1.5 && v[3] == 3.5,
            "{format}: {v:?}"
        );
        assert_eq!(sst.encoding().fill_value, Some(FillValue::Float(-9999.0)));

        let count = ds.variable("count").unwrap();
        assert_eq!(count.dtype().name(), "float64");
        let v = f64s(count.data());
        assert!(v[1].is_nan() && v[3] == 7.0);
        let flag = ds.variable("flag").unwrap();
        assert_eq!(
            flag.dtype().name(),
            "int8",
            "{format}: ints without _FillValue stay"
        );

        // decode off: stored types, CF attributes kept (the fill value as a number).
        let raw = open_zarr(&store, "", &OpenOptions::default().with_decode(false)).unwrap();
        let t = raw.variable("t").unwrap();
        assert_eq!(t.dtype().name(), "int16");
        assert_eq!(
            t.attrs(),
            &obj(
                json!({"units": "K", "scale_factor": 0.01, "add_offset": 280.0, "_FillValue": -32768})
            )
        );
        assert_eq!(
            raw.variable("sst").unwrap().attrs()["_FillValue"],
            json!(-9999.0)
        );
        assert_eq!(t.encoding().scale_factor, None);
    }
}

#[test]
fn decodes_times_or_keeps_them_with_a_warning() {
    let store = Store::memory();
    create_group(&store, "", Map::new(), ZarrFormat::V3).unwrap();
    let time = |units: &str, calendar: &str| {
        ArraySpec::new(vec![3], vec![3], DType::I32)
            .with_dimension_names(["time"])
            .with_attribute("units", units)
            .with_attribute("calendar", calendar)
    };
    write(
        &store,
        "time",
        time("hours since 2000-01-01", "standard").with_attribute("_FillValue", -1),
        vec![0i32, -1, 30],
    );
    write(
        &store,
        "model_time",
        time("days since 2001-01-01", "noleap").with_dimension_names(["model_time"]),
        vec![0i32, 31, 59],
    );
    let ds = open(&store);
    let t = ds.variable("time").unwrap().data().compute().unwrap();
    let ns = t.as_datetime().unwrap();
    assert_eq!(format_datetime(ns[0]), "2000-01-01T00:00:00");
    assert_eq!(ns[1], NAT, "masked times are NaT");
    assert_eq!(format_datetime(ns[2]), "2000-01-02T06:00:00");
    let enc = ds.variable("time").unwrap().encoding();
    assert_eq!(enc.calendar.as_deref(), Some("standard"));
    assert_eq!(enc.dtype, Some(DType::I32));

    let model = ds.variable("model_time").unwrap();
    assert_eq!(model.dtype().name(), "int32");
    assert_eq!(model.attrs()["calendar"], "noleap");
    assert!(
        model
            .encoding()
            .not_decoded
            .as_deref()
            .unwrap()
            .contains("cftime")
    );
    let notes: Vec<&String> = ds
        .warnings()
        .iter()
        .filter(|w| w.contains("\"model_time\""))
        .collect();
    assert_eq!(notes.len(), 1, "{:?}", ds.warnings());

    let strict = OpenOptions::default().with_undecodable_times(UndecodableTimes::Error);
    let err = open_zarr(&store, "", &strict).unwrap_err();
    assert!(
        matches!(&err, DatasetError::UndecodableTimes { variable, .. } if variable == "model_time"),
        "{err}"
    );
}

#[test]
fn chunks_by_dimension_name() {
    let store = climate_store(ZarrFormat::V3, true);
    let options = OpenOptions::default()
        .with_chunks("time", Dim::Size(3))
        .with_chunks("lon", Dim::Full);
    let ds = open_zarr(&store, "", &options).unwrap();
    let t2m = ds.variable("t2m").unwrap();
    assert_eq!(t2m.chunks().axes(), &[vec![3, 3], vec![2, 2], vec![5]]);
    assert_eq!(
        ds.variable("cell_area").unwrap().chunks().axes(),
        &[vec![2, 2], vec![5]]
    );
    assert_eq!(ds.variable("time").unwrap().chunks().axes(), &[vec![6]]);
    // Chunks of 3 split the stored chunks of 2 along time: xarray warns, so do we.
    assert!(
        ds.warnings()
            .iter()
            .any(|w| w.contains("\"time\"") && w.contains("index 3")),
        "{:?}",
        ds.warnings()
    );
    // The values do not depend on the chunking.
    let default = open(&store);
    let a = f64s(t2m.data());
    let b = f64s(default.variable("t2m").unwrap().data());
    assert_eq!(a.len(), b.len());
    assert!(
        a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
    );

    let err = open_zarr(&store, "", &OpenOptions::default().with_chunks("level", 2)).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, DatasetError::DimNotFound { dim, .. } if dim == "level"),
        "{msg}"
    );
    assert!(
        msg.contains("\"time\" (6)") && msg.contains("chunks option"),
        "{msg}"
    );
}

#[test]
fn consolidated_metadata_fresh_stale_and_missing() {
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        // Stale: consolidated, then an array removed.
        let store = climate_store(format, true);
        let prefix = "cell_area";
        store.erase_prefix(prefix).unwrap();
        let ds = open(&store);
        assert!(!ds.contains("cell_area"));
        assert_eq!(ds.variables().count(), 4);
        assert!(
            ds.warnings().iter().any(|w| w.contains("stale")),
            "{format}: {:?}",
            ds.warnings()
        );
        // The coordinates attribute names a missing array: ignored, with a note.
        assert!(ds.warnings().iter().any(|w| w.contains("\"cell_area\"")));
        let err = open_zarr(
            &store,
            "",
            &OpenOptions::default().with_consolidated(Consolidated::Required),
        )
        .unwrap_err();
        assert!(
            matches!(&err, DatasetError::StaleConsolidatedMetadata { array, .. } if array == "cell_area"),
            "{err}"
        );
        let listed = open_zarr(
            &store,
            "",
            &OpenOptions::default().with_consolidated(Consolidated::Ignored),
        )
        .unwrap();
        assert_eq!(listed.variables().count(), 4);
        assert!(!listed.warnings().iter().any(|w| w.contains("stale")));

        // Missing: listed, with a note; Required refuses.
        let plain = climate_store(format, false);
        let ds = open(&plain);
        assert_eq!(ds.variables().count(), 5);
        assert!(
            ds.warnings()
                .iter()
                .any(|w| w.contains("no consolidated metadata"))
        );
        let err = open_zarr(
            &plain,
            "",
            &OpenOptions::default().with_consolidated(Consolidated::Required),
        )
        .unwrap_err();
        assert!(
            matches!(err, DatasetError::ConsolidatedMetadataMissing { .. }),
            "{err}"
        );
    }
}

#[test]
fn arrays_chunkflow_cannot_read_are_skipped_with_a_warning() {
    let store = climate_store(ZarrFormat::V3, false);
    let complex = json!({
        "zarr_format": 3, "node_type": "array", "shape": [4], "data_type": "complex64",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [4]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": [0.0, 0.0], "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "attributes": {}, "dimension_names": ["lat"]
    });
    store
        .set("spectrum/zarr.json", complex.to_string().as_bytes())
        .unwrap();
    let ds = open(&store);
    assert!(!ds.contains("spectrum") && ds.contains("t2m"));
    assert!(
        ds.warnings()
            .iter()
            .any(|w| w.contains("skipped array \"spectrum\"") && w.contains("complex64")),
        "{:?}",
        ds.warnings()
    );
}

#[test]
fn group_level_coordinates_and_nested_groups() {
    let store = Store::memory();
    create_group(&store, "a", Map::new(), ZarrFormat::V3).unwrap();
    create_group(
        &store,
        "a/b",
        obj(json!({"coordinates": "station_name", "source": "test", "_NCProperties": "x"})),
        ZarrFormat::V3,
    )
    .unwrap();
    let spec = |dims: &[&str], shape: Vec<u64>| {
        ArraySpec::new(shape.clone(), shape, DType::F64).with_dimension_names(dims.iter().copied())
    };
    write(
        &store,
        "a/b/station_name",
        spec(&["station"], vec![3]),
        vec![1.0, 2.0, 3.0],
    );
    write(
        &store,
        "a/b/obs",
        spec(&["station"], vec![3]),
        vec![4.0, 5.0, 6.0],
    );
    write(
        &store,
        "a/b/sub/ignored",
        spec(&["z"], vec![2]),
        vec![0.0, 0.0],
    );
    let ds = open_zarr(&store, "/a/b/", &OpenOptions::default()).unwrap();
    assert!(ds.is_coord("station_name") && !ds.is_index("station_name"));
    assert_eq!(
        ds.attrs(),
        &obj(json!({"source": "test"})),
        "coordinates and _nc* hidden"
    );
    assert!(!ds.contains("ignored"), "sub-groups are not read");
    assert_eq!(
        ds.variables().map(|(n, _)| n).collect::<Vec<_>>(),
        ["obs", "station_name"]
    );
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_variable_names_the_available_ones() {
    let ds = open(&climate_store(ZarrFormat::V2, true));
    let err = ds.variable("temperature").unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, DatasetError::VariableNotFound { name, available }
            if name == "temperature" && available.len() == 5),
        "{msg}"
    );
    assert!(msg.contains("\"temperature\"") && msg.contains("\"t2m\"") && msg.contains("\"time\""));
    assert!(ds.data_array("temperature").is_err());
    // It converts into the crate's error for `?` in code returning chunkflow::Result.
    let converted: chunkflow::Error = err.into();
    assert!(converted.to_string().contains("\"temperature\""));
}

#[test]
fn unknown_dimension_names_the_dimensions() {
    let ds = open(&climate_store(ZarrFormat::V3, true));
    let err = ds.dim_size("level").unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, DatasetError::DimNotFound { dim, .. } if dim == "level"),
        "{msg}"
    );
    assert!(
        msg.contains("\"time\" (6), \"lat\" (4), \"lon\" (5)"),
        "{msg}"
    );
    let t2m = ds.variable("t2m").unwrap();
    assert!(
        t2m.axis("level")
            .unwrap_err()
            .to_string()
            .contains("\"lon\" (5)")
    );
    assert_eq!(t2m.axis("lon").unwrap(), 2);
}

#[test]
fn store_without_xarray_metadata_is_a_clear_error() {
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        let store = Store::memory();
        create_group(&store, "", Map::new(), format).unwrap();
        for name in ["a", "b"] {
            let spec = ArraySpec::new(vec![4], vec![2], DType::F32).with_format(format);
            ZarrArray::create(&store, name, &spec, false).unwrap();
        }
        let err = open_zarr(&store, "", &OpenOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(&err, DatasetError::NoDimensionNames { arrays, .. } if arrays == &["a", "b"]),
            "{msg}"
        );
        assert!(
            msg.contains("not an xarray dataset")
                && msg.contains("_ARRAY_DIMENSIONS")
                && msg.contains("dimension_names")
                && msg.contains("from_zarr"),
            "{msg}"
        );
        // The arrays themselves open as plain arrays.
        let a = chunkflow::array::from_zarr::<f32>(&store, "a").unwrap();
        assert_eq!(a.shape(), &[4]);
    }
}

#[test]
fn an_array_or_nothing_is_not_a_dataset() {
    let store = climate_store(ZarrFormat::V3, false);
    let err = open_zarr(&store, "t2m", &OpenOptions::default()).unwrap_err();
    assert!(matches!(err, DatasetError::NotAGroup { .. }), "{err}");
    assert!(err.to_string().contains("from_zarr"));
    let err = open_zarr(&store, "nowhere", &OpenOptions::default()).unwrap_err();
    assert!(
        matches!(err, DatasetError::Store(StoreError::NotFound { .. })),
        "{err}"
    );
}

#[test]
fn conflicting_dimension_lengths_are_an_error() {
    let store = Store::memory();
    create_group(&store, "", Map::new(), ZarrFormat::V3).unwrap();
    for (name, len) in [("a", 4u64), ("b", 5)] {
        let spec = ArraySpec::new(vec![len], vec![len], DType::F64).with_dimension_names(["x"]);
        ZarrArray::create(&store, name, &spec, false).unwrap();
    }
    let err = open_zarr(&store, "", &OpenOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, DatasetError::DimLengthConflict { dim, .. } if dim == "x"),
        "{msg}"
    );
    assert!(
        msg.contains("\"a\"") && msg.contains("\"b\"") && msg.contains('4') && msg.contains('5')
    );
}

// ---------------------------------------------------------------------------------------------
// Interop with xarray
// ---------------------------------------------------------------------------------------------

fn fixtures_dir() -> PathBuf {
    let dir = std::env::var("CHUNKFLOW_XARRAY_FIXTURES").unwrap_or_else(|_| {
        panic!("CHUNKFLOW_XARRAY_FIXTURES is not set: run scripts/xarray-interop.sh, which sets it")
    });
    PathBuf::from(dir)
}

/// Our encoding in the manifest's form (the keys xarray had).
fn encoding_json(e: &Encoding) -> Map<String, Value> {
    let mut m = Map::new();
    let fill = |f: FillValue| match f {
        FillValue::NaN => json!("NaN"),
        FillValue::Int(i) => json!(i),
        FillValue::UInt(u) => json!(u),
        FillValue::Float(x) => json!(x),
        other => json!(format!("{other:?}")),
    };
    if let Some(d) = e.dtype {
        m.insert("dtype".into(), json!(d.name()));
    }
    if let Some(f) = e.fill_value {
        m.insert("_FillValue".into(), fill(f));
    }
    if let Some(f) = e.missing_value {
        m.insert("missing_value".into(), fill(f));
    }
    if let Some(s) = e.scale_factor {
        m.insert("scale_factor".into(), json!(s));
    }
    if let Some(o) = e.add_offset {
        m.insert("add_offset".into(), json!(o));
    }
    if let Some(u) = &e.units {
        m.insert("units".into(), json!(u));
    }
    if let Some(c) = &e.calendar {
        m.insert("calendar".into(), json!(c));
    }
    if let Some(c) = &e.coordinates {
        m.insert("coordinates".into(), json!(c));
    }
    if let Some(c) = &e.chunks {
        m.insert("chunks".into(), json!(c));
    }
    m
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn check_case(dir: &std::path::Path, case: &Value) -> Result<(), String> {
    let name = case["name"].as_str().unwrap();
    let store = Store::filesystem(dir.join(case["store"].as_str().unwrap())).unwrap();
    let group = case["group"].as_str().unwrap();
    let open = &case["open"];
    let mut options = OpenOptions::default().with_decode(open["decode"].as_bool().unwrap());
    options.consolidated = match open["consolidated"] {
        Value::Bool(false) => Consolidated::Ignored,
        Value::Bool(true) => Consolidated::Required,
        _ => Consolidated::Auto,
    };
    for (dim, size) in open["chunks"].as_object().unwrap() {
        let size = size.as_i64().unwrap();
        options = options.with_chunks(dim, Dim::try_from(size).unwrap());
    }
    let expected = &case["expected"];
    let result = open_zarr(&store, group, &options);

    if let Some(kind) = expected.get("error") {
        assert_eq!(kind, "no_dimension_names");
        return match result {
            Err(DatasetError::NoDimensionNames { arrays, .. }) => {
                assert_eq!(json!(arrays), expected["arrays"], "{name}");
                Ok(())
            }
            Err(e) => Err(format!("{name}: expected NoDimensionNames, got {e}")),
            Ok(_) => Err(format!("{name}: opened a group without xarray metadata")),
        };
    }
    let ds = result.map_err(|e| format!("{name}: {e}"))?;
    let ctx = |what: &str| format!("{name}: {what}");
    // Variables chunkflow cannot hold (strings) are skipped, each with a warning.
    let skipped: Vec<String> = expected["variables"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|v| !ds.contains(v))
        .cloned()
        .collect();
    for v in &skipped {
        let dtype = expected["variables"][v]["dtype"].as_str().unwrap();
        assert!(
            dtype.starts_with("<U") || dtype == "object" || dtype.starts_with("StringDType"),
            "{name}: {v} ({dtype}) is missing"
        );
        assert!(
            ds.warnings()
                .iter()
                .any(|w| w.contains("skipped") && w.contains(&format!("{v:?}"))),
            "{name}: no warning for skipped {v}: {:?}",
            ds.warnings()
        );
    }
    let kept = |list: &Value| -> Value {
        json!(
            list.as_array()
                .unwrap()
                .iter()
                .filter(|v| !skipped.iter().any(|s| s == v.as_str().unwrap()))
                .collect::<Vec<_>>()
        )
    };

    let dims: Vec<Value> = ds.dims().iter().map(|(d, n)| json!([d, n])).collect();
    if skipped.is_empty() {
        assert_eq!(json!(dims), expected["dims"], "{}", ctx("dims"));
    } else {
        // The order follows the variables, which lost the skipped ones.
        let mut ours: Vec<String> = dims.iter().map(Value::to_string).collect();
        let mut theirs: Vec<String> = expected["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(Value::to_string)
            .collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "{}", ctx("dims"));
    }
    let mut coords: Vec<String> = ds.coords().map(|(n, _)| n.to_string()).collect();
    coords.sort();
    assert_eq!(
        coords,
        sorted(&kept(&expected["coords"])),
        "{}",
        ctx("coords")
    );
    let mut index: Vec<String> = ds
        .coords()
        .filter(|(n, _)| ds.is_index(n))
        .map(|(n, _)| n.to_string())
        .collect();
    index.sort();
    assert_eq!(
        index,
        sorted(&expected["index_coords"]),
        "{}",
        ctx("index coords")
    );
    let mut data_vars: Vec<String> = ds.data_vars().map(|(n, _)| n.to_string()).collect();
    data_vars.sort();
    assert_eq!(
        data_vars,
        sorted(&kept(&expected["data_vars"])),
        "{}",
        ctx("data vars")
    );
    // Variable order: data variables then coordinates, each in the group's order. xarray's
    // group order is the listing order of the filesystem for unconsolidated stores (arbitrary),
    // sorted for consolidated ones: compare where it is sorted.
    let order: Vec<String> = ds.variables().map(|(n, _)| n.to_string()).collect();
    let xarray_order: Vec<String> = sorted_as_is(&kept(&expected["variable_order"]));
    let mut canonical = data_vars.clone();
    canonical.extend(coords.iter().cloned());
    if xarray_order == canonical {
        assert_eq!(order, xarray_order, "{}", ctx("variable order"));
    }
    assert_eq!(
        Value::Object(ds.attrs().clone()),
        expected["attrs"],
        "{}",
        ctx("attrs")
    );

    for (vname, exp) in expected["variables"].as_object().unwrap() {
        if skipped.contains(vname) {
            continue;
        }
        let var = ds.variable(vname).map_err(|e| format!("{name}: {e}"))?;
        let c = |what: &str| format!("{name}/{vname}: {what}");
        assert_eq!(json!(var.dims()), exp["dims"], "{}", c("dims"));
        assert_eq!(
            var.dtype().name(),
            exp["dtype"].as_str().unwrap(),
            "{}",
            c("dtype")
        );
        assert_eq!(
            Value::Object(var.attrs().clone()),
            exp["attrs"],
            "{}",
            c("attrs")
        );
        assert_eq!(
            Value::Object(encoding_json(var.encoding())),
            exp["encoding"],
            "{}",
            c("encoding")
        );
        let chunks = json!(var.chunks().axes());
        match &exp["chunks"] {
            // xarray keeps index coordinates in memory: one chunk here.
            Value::Null => assert_eq!(var.chunks().num_chunks(), 1, "{}", c("index chunks")),
            other => assert_eq!(&chunks, other, "{}", c("chunks")),
        }
        let values = var
            .data()
            .compute()
            .map_err(|e| format!("{name}/{vname}: {e}"))?;
        if let Some(ns) = exp.get("values_ns") {
            let ours = values.as_datetime().expect("datetimes");
            assert_eq!(
                json!(ours.iter().collect::<Vec<_>>()),
                *ns,
                "{}",
                c("times")
            );
            let iso: Vec<String> = ours.iter().map(|&t| format_datetime(t)).collect();
            assert_eq!(json!(iso), exp["values_iso"], "{}", c("ISO times"));
        } else {
            let ours = values.to_f64_vec().expect("numbers");
            let theirs: Vec<Option<f64>> = exp["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    v.as_f64()
                        .or_else(|| v.as_bool().map(|b| f64::from(u8::from(b))))
                })
                .collect();
            assert_eq!(ours.len(), theirs.len(), "{}", c("length"));
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                match b {
                    None => assert!(
                        a.is_nan(),
                        "{}: element {i} is {a}, xarray NaN",
                        c("values")
                    ),
                    Some(b) => assert!(a == b, "{}: element {i} is {a}, xarray {b}", c("values")),
                }
            }
            if let Some(mean) = exp["mean"].as_f64() {
                let ours = var.data().to_f64().nanmean_all().compute().unwrap();
                assert!(
                    (ours - mean).abs() <= 1e-9 * mean.abs().max(1.0),
                    "{}: mean {ours} vs xarray {mean}",
                    c("mean")
                );
            }
        }
    }

    // What xarray warned about (chunks splitting stored chunks), we note too.
    let xarray_warned_split = expected["xarray_warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("separate the stored chunks"));
    let we_warned_split = ds
        .warnings()
        .iter()
        .any(|w| w.contains("split the stored chunks"));
    assert_eq!(
        we_warned_split,
        xarray_warned_split,
        "{}",
        ctx("split-chunk warning")
    );
    if name.starts_with("noleap") {
        assert!(
            ds.warnings().iter().any(|w| w.contains("noleap")),
            "{:?}",
            ds.warnings()
        );
    }
    eprintln!(
        "{name}: ok ({} variables{})",
        ds.variables().count(),
        if ds.warnings().is_empty() {
            String::new()
        } else {
            format!("; warnings: {}", ds.warnings().join(" | "))
        }
    );
    Ok(())
}

fn sorted_as_is(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
#[ignore = "needs xarray fixtures: run scripts/xarray-interop.sh"]
fn xarray_fixtures() {
    let dir = fixtures_dir();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json")).expect("the fixtures' manifest.json"),
    )
    .unwrap();
    let cases = manifest["cases"].as_array().unwrap();
    assert!(cases.len() >= 10, "too few cases: {}", cases.len());
    eprintln!("xarray fixtures from {}", manifest["versions"]);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| check_case(&dir, case).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{} passed, 0 failed", cases.len());
}
