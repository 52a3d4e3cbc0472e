//! Writing datasets to Zarr with xarray's conventions (`Dataset::to_zarr`) and dataset-level
//! partitioned writes (`initialize_store`, `write_dataset_partition`).
//!
//! - Round trips write → `open_zarr` for v2 and v3, consolidated and not: index and auxiliary
//!   coordinates, NaN fill values, CF-packed int16, masked integers, times (index and data
//!   variable, with NaT), booleans, a scalar, group attributes; the encoding recorded on open is
//!   kept, so writing an opened store again gives the same metadata documents.
//! - `compute: false` writes metadata only and returns the chunk writes.
//! - Errors: an existing group without overwrite, misaligned and irregular chunks, encoding
//!   overrides for unknown variables, values that do not fit the stored type.
//! - Partitioned writes: 16 ranks as threads into one store give the same files, byte for byte,
//!   as one `to_zarr`; idle ranks; a re-run rank is idempotent; unknown variables, shape and
//!   dimension mismatches and bad ranks are clear errors; `initialize_store` writes only the
//!   index coordinates' chunks.
//! - `xarray_writes` (ignored; run by `scripts/xarray-interop.sh`): writes the stores that
//!   `tests/interop/xarray_fixtures.py check-writes` opens with xarray and compares.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chunkflow::ComputeOptions;
use chunkflow::array::ChunkSpec;
use chunkflow::array::{self, DType};
use chunkflow::collection::Collection;
use chunkflow::dataset::{
    AnyArray, AnyNdArray, Dataset, DatasetError, Encoding, OpenOptions, Variable, WriteMode,
    WriteOptions, open_zarr,
};
use chunkflow::partition::{initialize_store, write_dataset_partition};
use chunkflow::store::{FillValue, Store, ZarrArray, ZarrFormat};
use ndarray::{ArrayD, IxDyn};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// A climate-like dataset built in Rust
// ---------------------------------------------------------------------------------------------

const HOUR: i64 = 3_600_000_000_000;
/// 2001-03-01T00:00:00 in nanoseconds since 1970.
const T0: i64 = 983_404_800_000_000_000;

fn nd<T: Clone>(shape: &[usize], v: Vec<T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

/// time=8 (6-hourly), lat=4, lon=5: index coords, an auxiliary coordinate, a float field with
/// NaN, a CF-packed int16 field, a masked int32 count, an int8 without fill value, a boolean,
/// a datetime data variable with NaT, a scalar; chunks (2, 2, 5).
fn rust_dataset() -> Dataset {
    let (nt, ny, nx) = (8usize, 4usize, 5usize);
    let n = nt * ny * nx;
    let shape = [nt, ny, nx];
    let chunks = vec![2usize, 2, 5];
    let time: Vec<i64> = (0..nt as i64).map(|i| T0 + 6 * HOUR * i).collect();
    let mut t2m: Vec<f32> = (0..n).map(|i| 250.0 + (i as f32) * 0.25).collect();
    t2m[0] = f32::NAN;
    t2m[77] = f32::NAN;
    // Packed: values that are exactly code * 0.1 + 100.0 (what decoding gives back).
    let mut tp: Vec<f64> = (0..n)
        .map(|i| ((i as i64 * 37) % 2000 - 1000) as f64 * 0.1 + 100.0)
        .collect();
    tp[5] = f64::NAN;
    let mut count: Vec<f64> = (0..n).map(|i| (i % 50) as f64).collect();
    count[13] = f64::NAN;
    let flag: Vec<i8> = (0..n).map(|i| (i % 11) as i8 - 5).collect();
    let wet: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
    let mut obs: Vec<i64> = (0..nt as i64)
        .map(|i| T0 + 90 * 60_000_000_000 * i)
        .collect();
    obs[3] = i64::MIN;
    let area: Vec<f32> = (0..ny * nx).map(|i| 1.0 + i as f32 / 8.0).collect();

    let var3 = |data: AnyArray| Variable::new(["time", "lat", "lon"], data).unwrap();
    let packed = Encoding {
        dtype: Some(DType::I16),
        scale_factor: Some(0.1),
        add_offset: Some(100.0),
        fill_value: Some(FillValue::Int(-32767)),
        ..Encoding::default()
    };
    let masked = Encoding {
        dtype: Some(DType::I32),
        fill_value: Some(FillValue::Int(-1)),
        ..Encoding::default()
    };
    Dataset::new()
        .with_variable(
            "t2m",
            var3(
                array::from_ndarray(nd(&shape, t2m), chunks.clone())
                    .unwrap()
                    .into(),
            )
            .with_attr("units", "K")
            .with_attr("long_name", "2 metre temperature"),
        )
        .unwrap()
        .with_variable(
            "tp",
            var3(
                array::from_ndarray(nd(&shape, tp), chunks.clone())
                    .unwrap()
                    .into(),
            )
            .with_attr("units", "mm")
            .with_encoding(packed),
        )
        .unwrap()
        .with_variable(
            "count",
            var3(
                array::from_ndarray(nd(&shape, count), chunks.clone())
                    .unwrap()
                    .into(),
            )
            .with_encoding(masked),
        )
        .unwrap()
        .with_variable(
            "flag",
            var3(
                array::from_ndarray(nd(&shape, flag), chunks.clone())
                    .unwrap()
                    .into(),
            ),
        )
        .unwrap()
        .with_variable(
            "wet",
            var3(
                array::from_ndarray(nd(&shape, wet), chunks.clone())
                    .unwrap()
                    .into(),
            ),
        )
        .unwrap()
        .with_variable(
            "obs_time",
            Variable::new(
                ["time"],
                AnyArray::datetime(array::from_ndarray(nd(&[nt], obs), 2).unwrap()),
            )
            .unwrap()
            .with_attr("long_name", "observation time"),
        )
        .unwrap()
        .with_variable(
            "global_mean",
            Variable::new(
                Vec::<String>::new(),
                array::from_ndarray(nd(&[], vec![287.5f64]), Vec::<usize>::new()).unwrap(),
            )
            .unwrap(),
        )
        .unwrap()
        .with_coord(
            "time",
            Variable::new(
                ["time"],
                AnyArray::datetime(array::from_ndarray(nd(&[nt], time), nt).unwrap()),
            )
            .unwrap(),
        )
        .unwrap()
        .with_coord(
            "lat",
            Variable::new(
                ["lat"],
                array::from_ndarray(nd(&[ny], vec![-67.5f64, -22.5, 22.5, 67.5]), ny).unwrap(),
            )
            .unwrap()
            .with_attr("units", "degrees_north"),
        )
        .unwrap()
        .with_coord(
            "lon",
            Variable::new(
                ["lon"],
                array::from_ndarray(nd(&[nx], vec![0.0f64, 72.0, 144.0, 216.0, 288.0]), nx)
                    .unwrap(),
            )
            .unwrap()
            .with_attr("units", "degrees_east"),
        )
        .unwrap()
        .with_coord(
            "cell_area",
            Variable::new(
                ["lat", "lon"],
                array::from_ndarray(nd(&[ny, nx], area), vec![2, 5]).unwrap(),
            )
            .unwrap()
            .with_attr("units", "m2"),
        )
        .unwrap()
        .with_attr("title", "chunkflow-written sample")
        .with_attr("version", 2)
        .with_attr("history", json!(["created", "written"]))
}

/// Every variable's values, as comparable JSON (NaN as null, datetimes as nanoseconds).
fn values(data: &AnyArray) -> Vec<Value> {
    let v = data.compute().unwrap();
    match &v {
        AnyNdArray::Datetime(a) => a.iter().map(|&t| json!(t)).collect(),
        AnyNdArray::Bool(a) => a.iter().map(|&b| json!(b)).collect(),
        other => other
            .to_f64_vec()
            .unwrap()
            .into_iter()
            .map(|x| if x.is_nan() { Value::Null } else { json!(x) })
            .collect(),
    }
}

/// Checks that `back` holds the same variables, values, dims, dtypes, attributes and
/// coordinates as `ds`.
fn assert_same(ds: &Dataset, back: &Dataset) {
    assert_eq!(
        ds.dims().to_string().len(),
        back.dims().to_string().len(),
        "{} vs {}",
        ds.dims(),
        back.dims()
    );
    for (name, var) in ds.variables() {
        let got = back.variable(name).unwrap();
        assert_eq!(got.dims(), var.dims(), "{name}");
        assert_eq!(got.dtype(), var.dtype(), "{name}");
        assert_eq!(got.attrs(), var.attrs(), "{name}");
        assert_eq!(values(got.data()), values(var.data()), "{name}");
        assert_eq!(back.is_coord(name), ds.is_coord(name), "{name}");
    }
    assert_eq!(back.variables().count(), ds.variables().count());
    assert_eq!(back.attrs(), ds.attrs());
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

#[test]
fn round_trips_in_both_formats_consolidated_or_not() {
    let ds = rust_dataset();
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        for consolidated in [true, false] {
            let store = Store::memory();
            let opts = WriteOptions::default()
                .with_format(format)
                .with_consolidated(consolidated);
            assert!(ds.to_zarr(&store, "", &opts).unwrap().is_none());
            let back = open_zarr(&store, "", &OpenOptions::default()).unwrap();
            assert_same(&ds, &back);
            assert_eq!(
                back.warnings().is_empty(),
                consolidated,
                "{:?}",
                back.warnings()
            );

            // What went to disk: the encodings, xarray-style.
            let tp = back.variable("tp").unwrap().encoding();
            assert_eq!(tp.dtype, Some(DType::I16));
            assert_eq!(tp.scale_factor, Some(0.1));
            assert_eq!(tp.fill_value, Some(FillValue::Int(-32767)));
            let t2m = back.variable("t2m").unwrap().encoding();
            assert_eq!(t2m.fill_value, Some(FillValue::NaN));
            assert_eq!(t2m.chunks.as_deref(), Some(&[2u64, 2, 5][..]));
            assert_eq!(t2m.coordinates.as_deref(), Some("cell_area"));
            let time = back.variable("time").unwrap().encoding();
            assert_eq!(
                time.units.as_deref(),
                Some("hours since 2001-03-01 00:00:00")
            );
            assert_eq!(time.calendar.as_deref(), Some("proleptic_gregorian"));
            assert_eq!(time.dtype, Some(DType::I64));
            let obs = back.variable("obs_time").unwrap().encoding();
            assert_eq!(obs.units.as_deref(), Some("nanoseconds since 1970-01-01"));
            assert_eq!(
                back.variable("count").unwrap().encoding().dtype,
                Some(DType::I32)
            );
            assert_eq!(back.variable("flag").unwrap().dtype().name(), "int8");
            assert_eq!(back.variable("flag").unwrap().encoding().fill_value, None);

            let raw = ZarrArray::open(&store, "t2m").unwrap();
            let raw_time = ZarrArray::open(&store, "time").unwrap();
            match format {
                ZarrFormat::V2 => {
                    assert_eq!(raw.fill_value(), FillValue::NaN);
                    assert!(!raw.attributes().contains_key("_FillValue"));
                    assert_eq!(raw_time.fill_value(), FillValue::Null);
                }
                ZarrFormat::V3 => {
                    assert_eq!(raw.attributes()["_FillValue"], "AAAAAAAA+H8=");
                    assert_eq!(raw.fill_value(), FillValue::NaN);
                    assert_eq!(raw_time.fill_value(), FillValue::Int(0));
                }
            }
            assert_eq!(raw.attributes()["coordinates"], "cell_area");
            assert_eq!(raw.dimension_names().unwrap(), ["time", "lat", "lon"]);
        }
    }
}

/// Every metadata document of a store (path → JSON), for comparing layouts.
fn metadata_docs(store: &Store) -> BTreeMap<String, Value> {
    store
        .list("")
        .unwrap()
        .into_iter()
        .filter(|k| {
            let file = k.rsplit('/').next().unwrap();
            matches!(
                file,
                "zarr.json" | ".zarray" | ".zattrs" | ".zgroup" | ".zmetadata"
            )
        })
        .map(|k| {
            let v: Value = serde_json::from_slice(&store.get(&k).unwrap().unwrap()).unwrap();
            (k, v)
        })
        .collect()
}

#[test]
fn opened_stores_write_back_with_their_encoding() {
    let ds = rust_dataset();
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        let first = Store::memory();
        let opts = WriteOptions::default().with_format(format);
        ds.to_zarr(&first, "", &opts).unwrap();
        let opened = open_zarr(&first, "", &OpenOptions::default()).unwrap();
        let second = Store::memory();
        opened.to_zarr(&second, "", &opts).unwrap();
        // The same metadata documents (dtypes, fill values, packing, chunks, compression,
        // attributes, consolidated metadata), except that given time units of an index
        // coordinate are cleaned up as xarray does: "hours since 2001-03-01 00:00:00" (inferred)
        // becomes "hours since 2001-03-01". From then on the layout is a fixed point.
        let (a, b) = (metadata_docs(&first), metadata_docs(&second));
        let cleaned = serde_json::to_string(&a)
            .unwrap()
            .replace("hours since 2001-03-01 00:00:00", "hours since 2001-03-01");
        assert_eq!(serde_json::to_string(&b).unwrap(), cleaned, "{format}");
        assert_ne!(a, b);
        let reopened = open_zarr(&second, "", &OpenOptions::default()).unwrap();
        assert_same(&ds, &reopened);
        let third = Store::memory();
        reopened.to_zarr(&third, "", &opts).unwrap();
        assert_eq!(metadata_docs(&third), b, "{format}");
        // Dropping the encoding gives the defaults: floats, NaN fill values.
        let plain = opened.drop_encoding();
        let fourth = Store::memory();
        plain.to_zarr(&fourth, "", &opts).unwrap();
        let tp = ZarrArray::open(&fourth, "tp").unwrap();
        assert_eq!(tp.dtype(), DType::F64);
    }
}

#[test]
fn nested_groups_and_data_arrays() {
    let ds = rust_dataset();
    let store = Store::memory();
    ds.to_zarr(&store, "outer/inner", &WriteOptions::default())
        .unwrap();
    let back = open_zarr(&store, "outer/inner", &OpenOptions::default()).unwrap();
    assert_same(&ds, &back);
    assert!(open_zarr(&store, "outer", &OpenOptions::default()).is_ok());

    let da = ds.data_array("t2m").unwrap();
    let store = Store::memory();
    da.to_zarr(&store, "", &WriteOptions::default()).unwrap();
    let back = open_zarr(&store, "", &OpenOptions::default()).unwrap();
    assert_eq!(
        back.data_vars().map(|(n, _)| n).collect::<Vec<_>>(),
        ["t2m"]
    );
    assert!(back.is_coord("cell_area") && back.is_index("time"));
    let unnamed = chunkflow::dataset::DataArray::new(da.variable().clone());
    let err = unnamed
        .to_zarr(&Store::memory(), "", &WriteOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("with_name"), "{err}");
}

#[test]
fn compute_false_writes_metadata_then_chunks_later() {
    let ds = rust_dataset();
    let store = Store::memory();
    let write = ds
        .to_zarr(&store, "", &WriteOptions::default().with_compute(false))
        .unwrap()
        .expect("a delayed write");
    let t2m = ZarrArray::open(&store, "t2m").unwrap();
    assert!(!t2m.chunk_exists(&[0, 0, 0]).unwrap());
    assert!(
        !ZarrArray::open(&store, "time")
            .unwrap()
            .chunk_exists(&[0])
            .unwrap()
    );
    write.compute().unwrap();
    assert!(t2m.chunk_exists(&[0, 0, 0]).unwrap());
    assert_same(
        &ds,
        &open_zarr(&store, "", &OpenOptions::default()).unwrap(),
    );
}

#[test]
fn encoding_overrides_apply_per_variable() {
    let ds = rust_dataset();
    let store = Store::memory();
    let opts = WriteOptions::default()
        .with_encoding(
            "t2m",
            Encoding {
                chunks: Some(vec![4, 4, 5]),
                fill_value: Some(FillValue::Float(-9999.0)),
                ..Encoding::default()
            },
        )
        .with_encoding(
            "time",
            Encoding {
                units: Some("minutes since 2001-01-01".into()),
                dtype: Some(DType::I32),
                calendar: Some("standard".into()),
                ..Encoding::default()
            },
        );
    ds.to_zarr(&store, "", &opts).unwrap();
    let t2m = ZarrArray::open(&store, "t2m").unwrap();
    assert_eq!(t2m.chunk_shape(), &[4, 4, 5]);
    assert_eq!(t2m.attributes()["_FillValue"], "AAAAAICHw8A="); // -9999.0, base64
    let time = ZarrArray::open(&store, "time").unwrap();
    assert_eq!(time.dtype(), DType::I32);
    assert_eq!(time.attributes()["units"], "minutes since 2001-01-01");
    assert_same(
        &ds,
        &open_zarr(&store, "", &OpenOptions::default()).unwrap(),
    );

    let err = ds
        .to_zarr(
            &Store::memory(),
            "",
            &WriteOptions::default().with_encoding("nope", Encoding::default()),
        )
        .unwrap_err();
    assert!(
        matches!(err, DatasetError::VariableNotFound { .. }),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn existing_group_needs_overwrite() {
    let ds = rust_dataset();
    let store = Store::memory();
    ds.to_zarr(&store, "", &WriteOptions::default()).unwrap();
    let err = ds
        .to_zarr(&store, "", &WriteOptions::default())
        .unwrap_err();
    assert!(matches!(err, DatasetError::GroupExists { .. }), "{err}");
    assert!(err.to_string().contains("Overwrite"), "{err}");
    // Overwrite replaces everything, in the other format too.
    let small = ds.clone().drop_vars(["wet", "flag"]).unwrap();
    let opts = WriteOptions::default()
        .with_mode(WriteMode::Overwrite)
        .with_format(ZarrFormat::V2);
    small.to_zarr(&store, "", &opts).unwrap();
    let back = open_zarr(&store, "", &OpenOptions::default()).unwrap();
    assert!(!back.contains("wet") && back.warnings().is_empty());
    assert!(store.get("zarr.json").unwrap().is_none());
    // Nothing is written on a refused create.
    let other = Store::memory();
    ds.to_zarr(&other, "a", &WriteOptions::default()).unwrap();
    let before = other.list("").unwrap();
    assert!(ds.to_zarr(&other, "a", &WriteOptions::default()).is_err());
    assert_eq!(other.list("").unwrap(), before);
}

#[test]
fn misaligned_and_irregular_chunks_are_errors() {
    let x = Variable::new(
        ["x"],
        array::arange(0.0f64, 12.0, 1.0, vec![3usize]).unwrap(),
    )
    .unwrap();
    let ds = Dataset::new().with_variable("v", x.clone()).unwrap();
    // Stored chunks of 2 under variable chunks of 3: chunk 3..6 crosses the boundary at 4.
    let opts = WriteOptions::default().with_encoding(
        "v",
        Encoding {
            chunks: Some(vec![2]),
            ..Encoding::default()
        },
    );
    let store = Store::memory();
    let err = ds.to_zarr(&store, "", &opts).unwrap_err();
    assert!(
        matches!(err, DatasetError::ChunksNotAligned { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("\"v\"") && msg.contains("0..3") && msg.contains("multiple of 2"),
        "{msg}"
    );
    assert!(store.list("").unwrap().is_empty(), "nothing written");

    // Irregular chunks without an encoding.
    let irregular = Variable::new(
        ["x"],
        array::arange(
            0.0f64,
            12.0,
            1.0,
            ChunkSpec::explicit(vec![vec![2usize, 4, 6]]),
        )
        .unwrap(),
    )
    .unwrap();
    let ds = Dataset::new().with_variable("v", irregular).unwrap();
    let err = ds
        .to_zarr(&Store::memory(), "", &WriteOptions::default())
        .unwrap_err();
    assert!(matches!(err, DatasetError::IrregularChunks { .. }), "{err}");
    // ... but fine with stored chunks they do not straddle (2 divides every boundary).
    let opts = WriteOptions::default().with_encoding(
        "v",
        Encoding {
            chunks: Some(vec![2]),
            ..Encoding::default()
        },
    );
    let store = Store::memory();
    ds.to_zarr(&store, "", &opts).unwrap();
    assert_eq!(ZarrArray::open(&store, "v").unwrap().chunk_shape(), &[2]);

    // Smaller chunks than the stored ones are merged (one writer per stored chunk).
    let ds = Dataset::new().with_variable("v", x).unwrap();
    let opts = WriteOptions::default().with_encoding(
        "v",
        Encoding {
            chunks: Some(vec![6]),
            ..Encoding::default()
        },
    );
    let store = Store::memory();
    ds.to_zarr(&store, "", &opts).unwrap();
    let back = open_zarr(&store, "", &OpenOptions::default()).unwrap();
    assert_eq!(values(back.variable("v").unwrap().data()).len(), 12);
}

#[test]
fn values_that_do_not_fit_fail_naming_the_variable() {
    let v = Variable::new(
        ["x"],
        array::from_ndarray(nd(&[3], vec![1.0f64, 1e6, f64::NAN]), 3).unwrap(),
    )
    .unwrap()
    .with_encoding(Encoding {
        dtype: Some(DType::I16),
        fill_value: Some(FillValue::Int(-1)),
        ..Encoding::default()
    });
    let ds = Dataset::new().with_variable("big", v).unwrap();
    let err = ds
        .to_zarr(&Store::memory(), "", &WriteOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"big\"") && err.contains("does not fit"),
        "{err}"
    );

    // A non-standard calendar for datetimes.
    let mut ds = rust_dataset();
    ds.variable_mut("time").unwrap().encoding_mut().calendar = Some("noleap".into());
    let err = ds
        .to_zarr(&Store::memory(), "", &WriteOptions::default())
        .unwrap_err();
    assert!(matches!(err, DatasetError::Unencodable { .. }), "{err}");
    assert!(err.to_string().contains("noleap"), "{err}");
    // Times that are not whole units.
    let mut ds = rust_dataset();
    ds.variable_mut("obs_time").unwrap().encoding_mut().units =
        Some("hours since 2001-03-01".into());
    let err = ds
        .to_zarr(&Store::memory(), "", &WriteOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("obs_time") && err.contains("whole number"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Partitioned writes
// ---------------------------------------------------------------------------------------------

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn sixteen_ranks_as_threads_write_the_bytes_of_one_writer() {
    let ds = rust_dataset();
    let dir = tempfile::tempdir().unwrap();
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        let single = dir.path().join(format!("single_{format}.zarr"));
        let ranked = dir.path().join(format!("ranked_{format}.zarr"));
        let opts = WriteOptions::default().with_format(format);
        ds.to_zarr(&Store::filesystem(&single).unwrap(), "", &opts)
            .unwrap();

        let store = Store::filesystem(&ranked).unwrap();
        let init = initialize_store(&ds, &store, "", &opts).unwrap();
        assert_eq!(init.written, ["time", "lat", "lon"]);
        // After init: metadata and index coordinates only.
        let t2m = ZarrArray::open(&store, "t2m").unwrap();
        assert!((0..4).all(|i| !t2m.chunk_exists(&[i, 0, 0]).unwrap()));
        assert!(
            !ZarrArray::open(&store, "cell_area")
                .unwrap()
                .chunk_exists(&[0, 0])
                .unwrap()
        );
        assert!(
            ZarrArray::open(&store, "time")
                .unwrap()
                .chunk_exists(&[0])
                .unwrap()
        );

        let dims = vec!["time".to_string(), "lat".to_string()];
        let reports: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|rank| {
                    let (ds, store, dims) = (&ds, store.clone(), &dims);
                    s.spawn(move || {
                        write_dataset_partition(
                            ds,
                            &store,
                            "",
                            dims,
                            16,
                            rank,
                            &ComputeOptions::default().threads(1),
                        )
                        .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // 4 x 2 blocks of the 3-d variables: 8 ranks busy with them, the rest idle for them;
        // rank 0 also writes the scalar.
        assert!(
            reports[0]
                .variables
                .iter()
                .any(|v| v.name == "global_mean" && !v.partition.is_idle())
        );
        assert!(reports[1..].iter().all(|r| {
            r.variables
                .iter()
                .any(|v| v.name == "global_mean" && v.partition.is_idle())
        }));
        let idle = reports.iter().filter(|r| r.is_idle()).count();
        assert_eq!(idle, 8, "{reports:#?}");
        assert!(reports[15].to_string().contains("idle"));
        assert!(reports[0].to_string().contains("t2m"));

        assert_eq!(
            files(&single),
            files(&ranked),
            "{format}: a store written by ranks differs from one written by to_zarr"
        );

        // Re-running a rank leaves the same bytes.
        let before = files(&ranked);
        write_dataset_partition(&ds, &store, "", &dims, 16, 3, &ComputeOptions::default()).unwrap();
        assert_eq!(files(&ranked), before);
    }
}

#[test]
fn idle_ranks_and_variables_without_split_dims() {
    let ds = rust_dataset();
    let store = Store::memory();
    initialize_store(&ds, &store, "", &WriteOptions::default()).unwrap();
    // 4 time blocks over 6 ranks: ranks 4 and 5 have nothing but write successfully.
    let dims = vec!["time".to_string()];
    for rank in 0..6 {
        let part =
            write_dataset_partition(&ds, &store, "", &dims, 6, rank, &ComputeOptions::default())
                .unwrap();
        assert_eq!(part.is_idle(), rank >= 4, "rank {rank}: {part}");
        // cell_area (lat, lon) and the scalar have no time dim: rank 0 writes them.
        let area = part
            .variables
            .iter()
            .find(|v| v.name == "cell_area")
            .unwrap();
        assert!(area.split.is_empty());
        assert_eq!(area.partition.is_idle(), rank != 0);
    }
    assert_same(
        &ds,
        &open_zarr(&store, "", &OpenOptions::default()).unwrap(),
    );
}

#[test]
#[allow(clippy::result_large_err)] // the closure returns DatasetError, as the API does
fn partition_errors_are_clear() {
    let ds = rust_dataset();
    let store = Store::memory();
    initialize_store(&ds, &store, "", &WriteOptions::default()).unwrap();
    // init refuses an existing store.
    let err = initialize_store(&ds, &store, "", &WriteOptions::default()).unwrap_err();
    assert!(matches!(err, DatasetError::GroupExists { .. }), "{err}");
    let dims = vec!["time".to_string()];
    let run = |ds: &Dataset, dims: &[String], ranks, rank| {
        write_dataset_partition(
            ds,
            &store,
            "",
            dims,
            ranks,
            rank,
            &ComputeOptions::default(),
        )
    };

    // A variable the store lacks.
    let extra = ds
        .clone()
        .with_variable(
            "extra",
            Variable::new(["time"], array::zeros::<f32>(&[8], 2).unwrap()).unwrap(),
        )
        .unwrap();
    let err = run(&extra, &dims, 2, 0).unwrap_err();
    assert!(
        matches!(err, DatasetError::VariableNotInStore { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("\"extra\""), "{err}");

    // Another shape (a longer time axis) and other dims.
    let mut longer = Dataset::new();
    longer
        .insert(
            "t2m",
            Variable::new(
                ["time", "lat", "lon"],
                array::zeros::<f32>(&[10, 4, 5], [2, 2, 5]).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
    let err = run(&longer, &dims, 2, 0).unwrap_err();
    assert!(matches!(err, DatasetError::StoreMismatch { .. }), "{err}");
    assert!(err.to_string().contains("time: 10"), "{err}");
    let mut swapped = Dataset::new();
    swapped
        .insert(
            "t2m",
            Variable::new(
                ["time", "lon", "lat"],
                array::zeros::<f32>(&[8, 5, 4], [2, 5, 2]).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
    assert!(matches!(
        run(&swapped, &dims, 2, 0).unwrap_err(),
        DatasetError::StoreMismatch { .. }
    ));
    // Another stored type: booleans into the float array.
    let mut typed = Dataset::new();
    typed
        .insert(
            "t2m",
            Variable::new(
                ["time", "lat", "lon"],
                array::full(&[8, 4, 5], [2, 2, 5], true).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
    let err = run(&typed, &dims, 2, 0).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::StoreMismatch { .. } | DatasetError::Unencodable { .. }
        ),
        "{err}"
    );

    // Unknown split dim, bad ranks.
    let err = run(&ds, &["depth".to_string()], 2, 0).unwrap_err();
    assert!(matches!(err, DatasetError::DimNotFound { .. }), "{err}");
    assert!(
        run(&ds, &dims, 2, 2)
            .unwrap_err()
            .to_string()
            .contains("rank")
    );
    assert!(run(&ds, &dims, 0, 0).is_err());
    // A store that was never initialized.
    let err = write_dataset_partition(
        &ds,
        &Store::memory(),
        "",
        &dims,
        2,
        0,
        &ComputeOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("\"\""), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Interop with xarray (stores checked by Python)
// ---------------------------------------------------------------------------------------------

/// The Rust-built dataset as JSON for Python to rebuild and compare with: per variable its
/// dims, dtype, attributes, whether it is a coordinate, and its values.
fn dataset_json(ds: &Dataset) -> Value {
    let mut vars = serde_json::Map::new();
    for (name, var) in ds.variables() {
        vars.insert(
            name.to_string(),
            json!({
                "dims": var.dims(),
                "dtype": var.dtype().name(),
                "shape": var.shape(),
                "attrs": var.attrs(),
                "coord": ds.is_coord(name),
                "values": values(var.data()),
            }),
        );
    }
    json!({"attrs": ds.attrs(), "variables": vars, "order": ds.variables().map(|(n, _)| n).collect::<Vec<_>>()})
}

fn fmt_name(format: ZarrFormat) -> &'static str {
    match format {
        ZarrFormat::V2 => "v2",
        ZarrFormat::V3 => "v3",
    }
}

/// Initializes `dir/name` from `ds` (unless `init` is false: the store exists) and fills it
/// with `ranks` ranks split along `dims`.
fn write_by_ranks(
    ds: &Dataset,
    store: &Store,
    group: &str,
    opts: Option<&WriteOptions>,
    dims: &[&str],
    ranks: usize,
) {
    if let Some(opts) = opts {
        initialize_store(ds, store, group, opts).unwrap();
    }
    let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    for rank in 0..ranks {
        write_dataset_partition(
            ds,
            store,
            group,
            &dims,
            ranks,
            rank,
            &ComputeOptions::default(),
        )
        .unwrap();
    }
}

#[test]
#[ignore = "needs xarray fixtures: run scripts/xarray-interop.sh"]
fn xarray_writes() {
    let fixtures = PathBuf::from(
        std::env::var("CHUNKFLOW_XARRAY_FIXTURES")
            .expect("CHUNKFLOW_XARRAY_FIXTURES is not set: run scripts/xarray-interop.sh"),
    );
    let out = fixtures.join("written");
    std::fs::create_dir_all(&out).unwrap();
    let mut cases = Vec::new();
    let open_source = |store: &str, group: &str| {
        let s = Store::filesystem(fixtures.join(store)).unwrap();
        open_zarr(&s, group, &OpenOptions::default()).unwrap()
    };

    // 1. Stores xarray wrote, opened here and written back (both formats), compared with
    //    xarray's reading of the source.
    let sources = [
        ("base_v2_consolidated.zarr", ""),
        ("base_v3_consolidated.zarr", ""),
        ("base_v3_plain.zarr", ""),
        ("packed_v2.zarr", ""),
        ("packed_v3.zarr", ""),
        ("nested_v3.zarr", "outer/inner"),
    ];
    for (source, group) in sources {
        let ds = open_source(source, group);
        for format in [ZarrFormat::V2, ZarrFormat::V3] {
            for consolidated in [true, false] {
                let name = format!(
                    "rt_{}_{}_{}.zarr",
                    source.trim_end_matches(".zarr"),
                    fmt_name(format),
                    if consolidated { "c" } else { "p" }
                );
                let store = Store::filesystem(out.join(&name)).unwrap();
                let opts = WriteOptions::default()
                    .with_format(format)
                    .with_consolidated(consolidated);
                ds.to_zarr(&store, group, &opts).unwrap();
                cases.push(json!({
                    "store": format!("written/{name}"), "group": group,
                    "consolidated": consolidated, "format": fmt_name(format),
                    "same_format_as_source": source.contains(fmt_name(format)),
                    "expect": {"source": source, "group": group},
                }));
            }
        }
        // 2. The same through initialize_store + ranks.
        for format in [ZarrFormat::V2, ZarrFormat::V3] {
            let name = format!(
                "ranks_{}_{}.zarr",
                source.trim_end_matches(".zarr"),
                fmt_name(format)
            );
            let store = Store::filesystem(out.join(&name)).unwrap();
            let opts = WriteOptions::default().with_format(format);
            write_by_ranks(&ds, &store, group, Some(&opts), &["time", "lat"], 5);
            cases.push(json!({
                "store": format!("written/{name}"), "group": group, "consolidated": true,
                "format": fmt_name(format), "same_format_as_source": false,
                "expect": {"source": source, "group": group},
            }));
        }
    }

    // 3. The dataset built in Rust: written directly and by ranks.
    let ds = rust_dataset();
    std::fs::write(
        out.join("rust_dataset.json"),
        serde_json::to_vec_pretty(&dataset_json(&ds)).unwrap(),
    )
    .unwrap();
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        for consolidated in [true, false] {
            let name = format!(
                "rust_{}_{}.zarr",
                fmt_name(format),
                if consolidated { "c" } else { "p" }
            );
            let store = Store::filesystem(out.join(&name)).unwrap();
            let opts = WriteOptions::default()
                .with_format(format)
                .with_consolidated(consolidated);
            ds.to_zarr(&store, "", &opts).unwrap();
            cases.push(json!({
                "store": format!("written/{name}"), "group": "", "consolidated": consolidated,
                "format": fmt_name(format), "expect": {"values": "written/rust_dataset.json"},
            }));
        }
        let name = format!("rust_ranks_{}.zarr", fmt_name(format));
        let store = Store::filesystem(out.join(&name)).unwrap();
        let opts = WriteOptions::default().with_format(format);
        write_by_ranks(&ds, &store, "", Some(&opts), &["time", "lat", "lon"], 7);
        cases.push(json!({
            "store": format!("written/{name}"), "group": "", "consolidated": true,
            "format": fmt_name(format), "expect": {"values": "written/rust_dataset.json"},
        }));
    }

    // 4. Stores initialized by xpartition in Python, filled here by ranks.
    let xp = fixtures.join("xpartition.json");
    let xp: Value = serde_json::from_slice(
        &std::fs::read(&xp)
            .expect("xpartition.json is missing: run `xarray_fixtures.py xpartition-init` first"),
    )
    .unwrap();
    for case in xp["cases"].as_array().unwrap() {
        let source = case["source"].as_str().unwrap();
        let ds = open_source(source, "");
        let target = case["store"].as_str().unwrap();
        let store = Store::filesystem(fixtures.join(target)).unwrap();
        let dims: Vec<&str> = case["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        write_by_ranks(
            &ds,
            &store,
            "",
            None,
            &dims,
            case["ranks"].as_u64().unwrap() as usize,
        );
        cases.push(json!({
            "store": target, "group": "", "consolidated": true,
            "format": case["format"], "xpartition": true, "sharded": case["sharded"],
            "expect": {"source": source, "group": ""},
        }));
    }

    std::fs::write(
        out.join("cases.json"),
        serde_json::to_vec_pretty(&json!({ "cases": cases })).unwrap(),
    )
    .unwrap();
    eprintln!("wrote {} stores for xarray to check", cases.len());
}

// ---------------------------------------------------------------------------------------------
// `chunkflow info` shows xarray-convention groups as Datasets
// ---------------------------------------------------------------------------------------------

fn info(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chunkflow"))
        .arg("info")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn info_shows_a_dataset_when_the_group_follows_xarray() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ds.zarr");
    rust_dataset()
        .to_zarr(
            &Store::filesystem(&path).unwrap(),
            "outer/inner",
            &WriteOptions::default(),
        )
        .unwrap();
    // A group of plain arrays beside it: tree only.
    let store = Store::filesystem(&path).unwrap();
    chunkflow::array::ones::<f32>(&[4], 2)
        .unwrap()
        .to_zarr(
            &store,
            "plain/a",
            &chunkflow::array::ToZarrOptions::default(),
        )
        .unwrap();

    let (ok, out, err) = info(&[path.to_str().unwrap()]);
    assert!(ok, "{err}");
    // The tree is still there ...
    assert!(
        out.contains("t2m (array, v3)") && out.contains("a (array, v3)"),
        "{out}"
    );
    // ... followed by the dataset view of the xarray group only.
    assert!(out.contains("outer/inner as an xarray Dataset"), "{out}");
    assert!(
        out.contains("Dimensions:") && out.contains("(time: 8, lat: 4, lon: 5)"),
        "{out}"
    );
    assert!(
        out.contains("  * time") && out.contains("    cell_area"),
        "{out}"
    );
    assert!(
        out.contains("Data variables:") && out.contains("    tp "),
        "{out}"
    );
    assert!(!out.contains("plain as an xarray Dataset"), "{out}");
    assert_eq!(out.matches("as an xarray Dataset").count(), 1, "{out}");

    let (ok, out, err) = info(&["--json", path.to_str().unwrap()]);
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let outer = doc["root"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "outer")
        .unwrap();
    assert!(outer["dataset"].is_null());
    let inner = &outer["children"][0];
    let ds = &inner["dataset"];
    assert_eq!(ds["dims"], json!([["time", 8], ["lat", 4], ["lon", 5]]));
    let vars: Vec<&str> = ds["data_vars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(
        vars.contains(&"t2m") && vars.contains(&"obs_time"),
        "{vars:?}"
    );
    assert!(
        ds["coords"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "time" && c["index"] == true)
    );
}
