//! Zarr interop with zarr-python, both ways (run by `scripts/zarr-interop.sh`).
//!
//! - Reads every store that `tests/interop/zarr_fixtures.py write` made (directory in
//!   `CHUNKFLOW_ZARR_FIXTURES`, with its `manifest.json`) and checks metadata and values.
//! - Writes arrays of every format, codec and several dtypes, plus consolidated groups, into
//!   `CHUNKFLOW_ZARR_OUTPUT` with a manifest in the same schema, for
//!   `zarr_fixtures.py verify` to check with zarr-python.
//!
//! - The same both ways at the array level: every fixture is read lazily with `from_zarr` /
//!   `from_zarr_with` on both executors, and `Array::to_zarr` writes arrays (irregular chunks,
//!   every dtype, sharded, a region write, nested paths with implicitly created parent groups)
//!   for zarr-python to verify.
//!
//! Ignored by default (it needs the fixtures); it panics when the variables are unset so it can
//! never pass vacuously.

use std::path::{Path, PathBuf};

use chunkflow::array::{self, ChunkSpec, DType, Element, ToZarrOptions, from_zarr, from_zarr_with};
use chunkflow::prelude::*;
use chunkflow::store::{
    ArraySpec, BloscCompressor, BloscShuffle, Compression, FillValue, Store, ZarrArray, ZarrFormat,
    consolidate_metadata, create_group, group_attributes, list_children,
};
use ndarray::{ArrayD, IxDyn};
use serde_json::{Map, Value, json};

fn env_dir(var: &str) -> PathBuf {
    let dir = std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run scripts/zarr-interop.sh, which sets it"));
    PathBuf::from(dir)
}

/// Runs `$body` with `$T` bound to the Rust type of a dtype.
macro_rules! with_type {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            DType::Bool => {
                type $T = bool;
                $body
            }
            DType::I8 => {
                type $T = i8;
                $body
            }
            DType::I16 => {
                type $T = i16;
                $body
            }
            DType::I32 => {
                type $T = i32;
                $body
            }
            DType::I64 => {
                type $T = i64;
                $body
            }
            DType::U8 => {
                type $T = u8;
                $body
            }
            DType::U16 => {
                type $T = u16;
                $body
            }
            DType::U32 => {
                type $T = u32;
                $body
            }
            DType::U64 => {
                type $T = u64;
                $body
            }
            DType::F32 => {
                type $T = f32;
                $body
            }
            DType::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}

/// Elements as the manifest writes them (NaN as null).
trait Json: Element {
    fn to_json(self) -> Value;
    /// The test value for flat index `i` (the same rule as the Python side's `values`).
    fn value(i: usize, n: usize) -> Self;
}
macro_rules! json_int {
    ($($t:ty),*) => {$(
        impl Json for $t {
            fn to_json(self) -> Value { json!(self) }
            fn value(i: usize, n: usize) -> Self {
                if n >= 2 && i == 0 { <$t>::MIN } else if n >= 2 && i == n - 1 { <$t>::MAX }
                else { ((i * 7 + 3) % 100) as $t }
            }
        }
    )*};
}
json_int!(i8, i16, i32, i64, u8, u16, u32, u64);
impl Json for f32 {
    fn to_json(self) -> Value {
        if self.is_nan() {
            Value::Null
        } else {
            json!(f64::from(self))
        }
    }
    fn value(i: usize, _: usize) -> Self {
        i as f32 * 0.125 - 3.0
    }
}
impl Json for f64 {
    fn to_json(self) -> Value {
        if self.is_nan() {
            Value::Null
        } else {
            json!(self)
        }
    }
    fn value(i: usize, _: usize) -> Self {
        i as f64 * 0.125 - 3.0
    }
}
impl Json for bool {
    fn to_json(self) -> Value {
        json!(self)
    }
    fn value(i: usize, _: usize) -> Self {
        i % 3 == 1
    }
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn fill_from_json(v: &Value) -> Option<FillValue> {
    match v {
        Value::Null => None,
        Value::String(s) if s == "NaN" => Some(FillValue::NaN),
        Value::Bool(b) => Some(FillValue::Bool(*b)),
        Value::Number(n) if n.is_u64() => Some(FillValue::UInt(n.as_u64().unwrap())),
        Value::Number(n) if n.is_i64() => Some(FillValue::Int(n.as_i64().unwrap())),
        Value::Number(n) => Some(FillValue::Float(n.as_f64().unwrap())),
        other => panic!("unexpected fill value {other}"),
    }
}

fn fill_to_json(f: FillValue) -> Value {
    match f {
        FillValue::Null => Value::Null,
        FillValue::NaN => json!("NaN"),
        FillValue::Zero => json!(0),
        FillValue::Bool(b) => json!(b),
        FillValue::Int(i) => json!(i),
        FillValue::UInt(u) => json!(u),
        FillValue::Float(x) => json!(x),
    }
}

fn compression_from_json(v: &Value) -> Option<Compression> {
    let int = |k: &str| v[k].as_i64().unwrap();
    Some(match v["id"].as_str()? {
        "none" => Compression::None,
        "zstd" => Compression::Zstd {
            level: int("level") as i32,
        },
        "gzip" => Compression::Gzip {
            level: int("level") as u32,
        },
        "blosc" => Compression::Blosc {
            cname: match v["cname"].as_str().unwrap() {
                "lz4" => BloscCompressor::Lz4,
                "lz4hc" => BloscCompressor::Lz4hc,
                "zstd" => BloscCompressor::Zstd,
                "zlib" => BloscCompressor::Zlib,
                "blosclz" => BloscCompressor::BloscLz,
                "snappy" => BloscCompressor::Snappy,
                other => panic!("cname {other}"),
            },
            clevel: int("clevel") as u8,
            shuffle: match int("shuffle") {
                0 => BloscShuffle::NoShuffle,
                1 => BloscShuffle::Byte,
                _ => BloscShuffle::Bit,
            },
        },
        other => panic!("compression {other}"),
    })
}

fn compression_to_json(c: Compression) -> Value {
    match c {
        Compression::None => json!({"id": "none"}),
        Compression::Zstd { level } => json!({"id": "zstd", "level": level}),
        Compression::Gzip { level } => json!({"id": "gzip", "level": level}),
        Compression::Blosc {
            cname,
            clevel,
            shuffle,
        } => json!({
            "id": "blosc", "cname": cname.name(), "clevel": clevel,
            "shuffle": match shuffle { BloscShuffle::NoShuffle => 0, BloscShuffle::Byte => 1,
                                       BloscShuffle::Bit => 2 }}),
    }
}

// ---------------------------------------------------------------------------------------------
// zarr-python → chunkflow
// ---------------------------------------------------------------------------------------------

fn check_values<T: Json>(array: &ZarrArray, expected: &[Value], what: &str) {
    let all = array
        .read_all::<T>()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let got: Vec<Value> = all.iter().map(|&x| x.to_json()).collect();
    assert_eq!(got, expected, "{what}: values");
    // Chunk by chunk too (edge chunks clipped), against the whole.
    let grid = array.grid_shape();
    let total: u64 = grid.iter().product();
    for flat in 0..total {
        let mut index = vec![0u64; grid.len()];
        let mut rest = flat;
        for axis in (0..grid.len()).rev() {
            index[axis] = rest % grid[axis];
            rest /= grid[axis];
        }
        let chunk = array.read_chunk::<T>(&index).unwrap();
        let region = array.chunk_region(&index).unwrap();
        let info: Vec<ndarray::SliceInfoElem> = region
            .iter()
            .map(|r| ndarray::SliceInfoElem::from(r.start as usize..r.end as usize))
            .collect();
        let want = all.slice(info.as_slice());
        let same = chunk
            .iter()
            .zip(want.iter())
            .all(|(a, b)| a.to_json() == b.to_json());
        assert!(
            same && chunk.shape() == want.shape(),
            "{what}: chunk {index:?}"
        );
    }
}

/// Reads the array lazily, chunked like the store (sequential) and as one chunk (threaded).
fn check_lazy<T: Json>(store: &Store, path: &str, expected: &[Value], what: &str) {
    let native = from_zarr::<T>(store, path).unwrap_or_else(|e| panic!("{what}: {e}"));
    let got = native
        .compute_with(&ComputeOptions::default().executor(Sequential))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let got: Vec<Value> = got.iter().map(|&x| x.to_json()).collect();
    assert_eq!(got, expected, "{what}: from_zarr values");
    let whole = from_zarr_with::<T>(store, path, ChunkSpec::full()).unwrap();
    assert_eq!(whole.num_chunks(), 1);
    let got = whole
        .compute_with(&ComputeOptions::default().threads(2))
        .unwrap();
    let got: Vec<Value> = got.iter().map(|&x| x.to_json()).collect();
    assert_eq!(got, expected, "{what}: from_zarr_with values");
}

fn read_fixture_array(root: &Path, entry: &Value) {
    let what = format!(
        "{}/{}",
        entry["store"].as_str().unwrap(),
        entry["path"].as_str().unwrap()
    );
    let store = Store::open(
        root.join(entry["store"].as_str().unwrap())
            .to_str()
            .unwrap(),
    )
    .unwrap();
    let array = ZarrArray::open(&store, entry["path"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let format = if entry["format"] == 2 {
        ZarrFormat::V2
    } else {
        ZarrFormat::V3
    };
    assert_eq!(array.format(), format, "{what}");
    assert_eq!(array.shape(), u64s(&entry["shape"]), "{what}");
    assert_eq!(array.chunk_shape(), u64s(&entry["chunks"]), "{what}");
    let shards = (!entry["shards"].is_null()).then(|| u64s(&entry["shards"]));
    assert_eq!(array.shard_shape().map(<[u64]>::to_vec), shards, "{what}");
    let dtype = DType::from_name(entry["dtype"].as_str().unwrap()).unwrap();
    assert_eq!(array.dtype(), dtype, "{what}");
    match fill_from_json(&entry["fill_value"]) {
        None => assert_eq!(array.fill_value(), FillValue::Null, "{what}"),
        Some(f) => assert_eq!(array.fill_value(), f.resolve(dtype).unwrap(), "{what}"),
    }
    let names: Option<Vec<String>> =
        serde_json::from_value(entry["dimension_names"].clone()).unwrap();
    assert_eq!(
        array.dimension_names().map(<[String]>::to_vec),
        names,
        "{what}"
    );
    assert_eq!(
        &Value::Object(array.attributes().clone()),
        &entry["attributes"],
        "{what}"
    );
    if let Some(c) = compression_from_json(&entry["compression"]) {
        assert_eq!(
            array.compression(),
            Some(c),
            "{what}: {}",
            array.codec_description()
        );
    }
    let expected = entry["values"].as_array().unwrap();
    with_type!(dtype, T => check_values::<T>(&array, expected, &what));
    with_type!(dtype, T => check_lazy::<T>(&store, entry["path"].as_str().unwrap(), expected, &what));
    eprintln!("read {what}: {} ({})", array.codec_description(), dtype);
}

fn read_fixture_group(root: &Path, entry: &Value) {
    let what = format!(
        "{}/{}",
        entry["store"].as_str().unwrap(),
        entry["path"].as_str().unwrap()
    );
    let store = Store::open(
        root.join(entry["store"].as_str().unwrap())
            .to_str()
            .unwrap(),
    )
    .unwrap();
    let path = entry["path"].as_str().unwrap();
    assert_eq!(
        Value::Object(group_attributes(&store, path).unwrap()),
        entry["attributes"],
        "{what}"
    );
    let children = list_children(&store, path).unwrap();
    assert_eq!(json!(children.arrays), entry["arrays"], "{what}");
    assert_eq!(json!(children.groups), entry["groups"], "{what}");
    assert_eq!(
        json!(children.consolidated),
        entry["consolidated"],
        "{what}"
    );
}

// ---------------------------------------------------------------------------------------------
// chunkflow → zarr-python
// ---------------------------------------------------------------------------------------------

fn sample<T: Json>(shape: &[u64]) -> ArrayD<T> {
    let shape: Vec<usize> = shape.iter().map(|&s| s as usize).collect();
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(&shape), (0..n).map(|i| T::value(i, n)).collect()).unwrap()
}

/// Writes `spec` at `path` (all chunks, or all but write-grid chunk `skip`) and returns its
/// manifest entry.
fn write_array<T: Json>(
    store: &Store,
    store_name: &str,
    path: &str,
    spec: &ArraySpec,
    skip: Option<&[u64]>,
) -> Value {
    let array = ZarrArray::create(store, path, spec, false).unwrap();
    let data = sample::<T>(&spec.shape);
    let mut expected = data.clone();
    let fill: T = array
        .read_chunk::<T>(&vec![0; spec.shape.len()])
        .unwrap()
        .iter()
        .next()
        .copied()
        .unwrap_or_default();
    let grid = array.write_grid_shape();
    let total: u64 = grid.iter().product();
    for flat in 0..total {
        let mut index = vec![0u64; grid.len()];
        let mut rest = flat;
        for axis in (0..grid.len()).rev() {
            index[axis] = rest % grid[axis];
            rest /= grid[axis];
        }
        let region = array.write_chunk_region(&index).unwrap();
        let info: Vec<ndarray::SliceInfoElem> = region
            .iter()
            .map(|r| ndarray::SliceInfoElem::from(r.start as usize..r.end as usize))
            .collect();
        if skip == Some(&index[..]) {
            expected.slice_mut(info.as_slice()).fill(fill);
            continue;
        }
        array
            .write_chunk(&index, data.slice(info.as_slice()))
            .unwrap();
    }
    json!({
        "store": store_name, "path": path,
        "format": if spec.format == ZarrFormat::V2 { 2 } else { 3 },
        "dtype": spec.dtype.name(), "shape": spec.shape, "chunks": spec.chunks,
        "shards": spec.shard, "fill_value": fill_to_json(array.fill_value()),
        "dimension_names": spec.dimension_names, "attributes": spec.attributes,
        "compression": compression_to_json(spec.compression),
        "values": expected.iter().map(|&x| x.to_json()).collect::<Vec<_>>(),
    })
}

fn write_outputs(out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    let mut arrays = Vec::new();
    let mut groups = Vec::new();
    let compressions = [
        Compression::None,
        Compression::Blosc {
            cname: BloscCompressor::Lz4,
            clevel: 5,
            shuffle: BloscShuffle::Byte,
        },
        Compression::Blosc {
            cname: BloscCompressor::Zstd,
            clevel: 3,
            shuffle: BloscShuffle::Bit,
        },
        Compression::Blosc {
            cname: BloscCompressor::Zlib,
            clevel: 1,
            shuffle: BloscShuffle::NoShuffle,
        },
        Compression::Zstd { level: 0 },
        Compression::Zstd { level: 7 },
        Compression::Gzip { level: 6 },
    ];
    let dtypes = [
        DType::F32,
        DType::F64,
        DType::I16,
        DType::U8,
        DType::I64,
        DType::U64,
        DType::Bool,
    ];
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        let store_name = format!("rust_{format}.zarr");
        let _ = std::fs::remove_dir_all(out.join(&store_name));
        let store = Store::open(out.join(&store_name).to_str().unwrap()).unwrap();
        let mut root_attrs = Map::new();
        root_attrs.insert("title".into(), json!("written by chunkflow"));
        create_group(&store, "", root_attrs.clone(), format).unwrap();
        let mut names = Vec::new();
        for (ci, &compression) in compressions.iter().enumerate() {
            for (di, &dtype) in dtypes.iter().enumerate() {
                let name = format!("c{ci}_{}", dtype.name());
                let fill = if dtype.is_float() {
                    FillValue::NaN
                } else {
                    FillValue::Zero
                };
                let spec = ArraySpec::new(vec![7, 5], vec![3, 2], dtype)
                    .with_format(format)
                    .with_compression(compression)
                    .with_fill_value(fill)
                    .with_dimension_names(["y", "x"])
                    .with_attribute("index", (ci * 100 + di) as u64);
                // Leave one chunk unwritten in some arrays: it reads as the fill value.
                let skip: Option<&[u64]> = (di % 2 == 0).then_some(&[1, 1][..]);
                arrays.push(with_type!(dtype, T => write_array::<T>(&store, &store_name, &name, &spec, skip)));
                names.push(name);
            }
        }
        // Fill values: v2 null (xarray's ints), a negative int, a float, infinity.
        let extra = [
            ("fill_null", DType::I32, FillValue::Null),
            ("fill_neg", DType::I16, FillValue::Int(-5)),
            ("fill_float", DType::F64, FillValue::Float(2.5)),
        ];
        for (name, dtype, fill) in extra {
            let spec = ArraySpec::new(vec![5], vec![2], dtype)
                .with_format(format)
                .with_fill_value(fill);
            arrays.push(with_type!(dtype, T => write_array::<T>(&store, &store_name, name, &spec, Some(&[1]))));
            names.push(name.to_string());
        }
        if format == ZarrFormat::V3 {
            for (si, compression) in [
                Compression::Zstd { level: 0 },
                Compression::Gzip { level: 2 },
                Compression::None,
            ]
            .into_iter()
            .enumerate()
            {
                let name = format!("sharded{si}");
                let spec = ArraySpec::new(vec![9, 10], vec![2, 5], DType::F32)
                    .with_shard(vec![4, 10])
                    .with_compression(compression)
                    .with_fill_value(FillValue::NaN)
                    .with_dimension_names(["y", "x"]);
                arrays.push(write_array::<f32>(
                    &store,
                    &store_name,
                    &name,
                    &spec,
                    Some(&[1, 0]),
                ));
                names.push(name);
            }
        }
        let mut sub_attrs = Map::new();
        sub_attrs.insert("level".into(), json!(1));
        create_group(&store, "sub", sub_attrs.clone(), format).unwrap();
        let spec = ArraySpec::new(vec![4], vec![3], DType::U16).with_format(format);
        arrays.push(write_array::<u16>(
            &store,
            &store_name,
            "sub/x",
            &spec,
            None,
        ));
        consolidate_metadata(&store, "").unwrap();
        names.sort();
        groups.push(json!({"store": store_name, "path": "", "format": if format == ZarrFormat::V2 { 2 } else { 3 },
            "attributes": root_attrs, "arrays": names, "groups": ["sub"], "consolidated": true}));
        groups.push(json!({"store": store_name, "path": "sub", "format": if format == ZarrFormat::V2 { 2 } else { 3 },
            "attributes": sub_attrs, "arrays": ["x"], "groups": [], "consolidated": false}));
        // chunkflow reads its own consolidated metadata.
        let children = list_children(&store, "").unwrap();
        assert!(children.consolidated);
        assert_eq!(children.groups, ["sub"]);
    }
    let (to_zarr_arrays, to_zarr_groups) = write_to_zarr_outputs(out);
    arrays.extend(to_zarr_arrays);
    groups.extend(to_zarr_groups);
    let manifest = json!({"writer": "chunkflow", "arrays": arrays, "groups": groups});
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    eprintln!(
        "wrote {} arrays into {}",
        manifest["arrays"].as_array().unwrap().len(),
        out.display()
    );
}

/// Writes `data` chunked as `chunks` with `Array::to_zarr`, checks it reads back with
/// `from_zarr`, and returns its manifest entry (the values expected are `expected`, or `data`).
fn to_zarr_entry<T: Json>(
    store: &Store,
    store_name: &str,
    path: &str,
    data: &ArrayD<T>,
    chunks: ChunkSpec,
    options: &ToZarrOptions,
    expected: Option<&ArrayD<T>>,
) -> Value {
    let x = array::from_ndarray(data.clone(), chunks).unwrap();
    x.to_zarr(store, path, options)
        .unwrap_or_else(|e| panic!("{store_name}/{path}: {e}"));
    let z = ZarrArray::open(store, path).unwrap();
    let expected = expected.unwrap_or(data);
    let back = from_zarr::<T>(store, path).unwrap().compute().unwrap();
    assert!(
        back.iter()
            .zip(expected.iter())
            .all(|(a, b)| a.to_json() == b.to_json()),
        "{store_name}/{path}: read back"
    );
    json!({
        "store": store_name, "path": path,
        "format": if z.format() == ZarrFormat::V2 { 2 } else { 3 },
        "dtype": z.dtype().name(), "shape": z.shape(), "chunks": z.chunk_shape(),
        "shards": z.shard_shape(), "fill_value": fill_to_json(z.fill_value()),
        "dimension_names": z.dimension_names(), "attributes": z.attributes(),
        "compression": z.compression().map(compression_to_json),
        "values": expected.iter().map(|&x| x.to_json()).collect::<Vec<_>>(),
    })
}

/// Array-level writes (`Array::to_zarr`) for zarr-python to verify: per format, irregular array
/// chunks, several dtypes and codecs, a region write, a sharded array (v3), and a nested path
/// whose parent groups `to_zarr` creates.
fn write_to_zarr_outputs(out: &Path) -> (Vec<Value>, Vec<Value>) {
    let mut arrays = Vec::new();
    let mut groups = Vec::new();
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        let store_name = format!("rust_to_zarr_{format}.zarr");
        let _ = std::fs::remove_dir_all(out.join(&store_name));
        let store = Store::open(out.join(&store_name).to_str().unwrap()).unwrap();
        let base = ToZarrOptions::default().with_format(format);
        let mut names = Vec::new();

        // Irregular chunks, rechunked to the store's (3, 3); names, attributes, NaN fill.
        let mut attrs = Map::new();
        attrs.insert("source".into(), json!("to_zarr"));
        arrays.push(to_zarr_entry::<f32>(
            &store,
            &store_name,
            "irregular",
            &sample::<f32>(&[7, 5]),
            ChunkSpec::explicit(vec![vec![3, 1, 3], vec![2, 3]]),
            &base
                .clone()
                .with_fill_value(FillValue::NaN)
                .with_dimension_names(["y", "x"])
                .with_attributes(attrs),
            None,
        ));
        names.push("irregular".to_string());

        let codecs = [
            Compression::Zstd { level: 2 },
            Compression::Gzip { level: 4 },
            Compression::Blosc {
                cname: BloscCompressor::Lz4,
                clevel: 5,
                shuffle: BloscShuffle::Byte,
            },
            Compression::None,
        ];
        let dtypes = [
            DType::I8,
            DType::I32,
            DType::U16,
            DType::U32,
            DType::F64,
            DType::Bool,
        ];
        for (i, &dtype) in dtypes.iter().enumerate() {
            let name = format!("dtype_{}", dtype.name());
            let options = base.clone().with_compression(codecs[i % codecs.len()]);
            arrays.push(with_type!(dtype, T => to_zarr_entry::<T>(
                &store, &store_name, &name, &sample::<T>(&[7, 5]), ChunkSpec::from([3, 2]),
                &options, None)));
            names.push(name);
        }

        // A region write (small chunks merged into stored ones) into an array of zeros.
        let zeros = ArrayD::<i32>::zeros(IxDyn(&[8, 6]));
        let part = sample::<i32>(&[4, 6]);
        let mut expected = zeros.clone();
        expected.slice_mut(ndarray::s![4..8, ..]).assign(&part);
        to_zarr_entry::<i32>(
            &store,
            &store_name,
            "region",
            &zeros,
            ChunkSpec::from([4, 3]),
            &base,
            Some(&zeros),
        );
        array::from_ndarray(part, [2, 3])
            .unwrap()
            .to_zarr(&store, "region", &ToZarrOptions::region([4..8, 0..6]))
            .unwrap();
        let z = ZarrArray::open(&store, "region").unwrap();
        arrays.push(json!({
            "store": store_name, "path": "region",
            "format": if format == ZarrFormat::V2 { 2 } else { 3 },
            "dtype": "int32", "shape": [8, 6], "chunks": [4, 3], "shards": null,
            "fill_value": fill_to_json(z.fill_value()), "dimension_names": null,
            "attributes": {}, "compression": z.compression().map(compression_to_json),
            "values": expected.iter().map(|&x| x.to_json()).collect::<Vec<_>>(),
        }));
        names.push("region".to_string());

        if format == ZarrFormat::V3 {
            // Array chunks straddling the shards: rechunked to them.
            arrays.push(to_zarr_entry::<f32>(
                &store,
                &store_name,
                "sharded",
                &sample::<f32>(&[9, 10]),
                ChunkSpec::from([3, 5]),
                &base
                    .clone()
                    .with_chunks([2, 5])
                    .with_shards([4, 10])
                    .with_dimension_names(["y", "x"]),
                None,
            ));
            names.push("sharded".to_string());
        }

        // A nested path: to_zarr creates the parent groups.
        arrays.push(to_zarr_entry::<u16>(
            &store,
            &store_name,
            "grp/sub/x",
            &sample::<u16>(&[5]),
            ChunkSpec::from([2]),
            &base,
            None,
        ));
        names.sort();
        let fmt = if format == ZarrFormat::V2 { 2 } else { 3 };
        groups.push(
            json!({"store": store_name, "path": "", "format": fmt, "attributes": {},
            "arrays": names, "groups": ["grp"], "consolidated": false}),
        );
        groups.push(
            json!({"store": store_name, "path": "grp", "format": fmt, "attributes": {},
            "arrays": [], "groups": ["sub"], "consolidated": false}),
        );
        groups.push(
            json!({"store": store_name, "path": "grp/sub", "format": fmt,
            "attributes": {}, "arrays": ["x"], "groups": [], "consolidated": false}),
        );
    }
    (arrays, groups)
}

#[test]
#[ignore = "needs zarr-python fixtures: run scripts/zarr-interop.sh"]
fn zarr_python_interop() {
    let fixtures = env_dir("CHUNKFLOW_ZARR_FIXTURES");
    let output = env_dir("CHUNKFLOW_ZARR_OUTPUT");
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(fixtures.join("manifest.json")).expect("fixtures/manifest.json"),
    )
    .unwrap();
    let arrays = manifest["arrays"].as_array().unwrap();
    let groups = manifest["groups"].as_array().unwrap();
    assert!(
        arrays.len() >= 13,
        "too few fixture arrays: {}",
        arrays.len()
    );
    assert!(
        groups.len() >= 2,
        "too few fixture groups: {}",
        groups.len()
    );
    for entry in arrays {
        read_fixture_array(&fixtures, entry);
    }
    for entry in groups {
        read_fixture_group(&fixtures, entry);
    }
    eprintln!(
        "read {} arrays and {} groups written by {}",
        arrays.len(),
        groups.len(),
        manifest["writer"]
    );
    write_outputs(&output);
}
