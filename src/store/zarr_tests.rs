//! Unit tests of the zarrs adapter: round trips over every dtype, format and compression, edge
//! chunks, sharding, fill values, metadata conventions, groups, consolidated metadata, errors.

use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};
use serde_json::{Value, json};
use zarrs::storage::store::MemoryStore;
use zarrs::storage::{
    Bytes, ListableStorageTraits, MaybeBytes, MaybeBytesIterator, OffsetBytesIterator,
    ReadableStorageTraits, StorageError, StoreKey, StoreKeys, StoreKeysPrefixes, StorePrefix,
    WritableStorageTraits, byte_range::ByteRangeIterator,
};

use super::*;
use crate::store::{BloscCompressor, BloscShuffle};

const COMPRESSIONS: [Compression; 6] = [
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
    Compression::Zstd { level: 0 },
    Compression::Zstd { level: 5 },
    Compression::Gzip { level: 6 },
];

/// A deterministic test value for element `i`.
trait TestValue: Element {
    fn value(i: usize) -> Self;
}
macro_rules! test_value {
    ($($t:ty),*) => {$(
        impl TestValue for $t {
            fn value(i: usize) -> Self { ((i * 7 + 3) % 100) as $t }
        }
    )*};
}
test_value!(i8, i16, i32, i64, u8, u16, u32, u64);
impl TestValue for f32 {
    fn value(i: usize) -> Self {
        i as f32 * 0.25 - 3.0
    }
}
impl TestValue for f64 {
    fn value(i: usize) -> Self {
        i as f64 * 1e-3 - 7.5
    }
}
impl TestValue for bool {
    fn value(i: usize) -> Self {
        i % 3 == 1
    }
}

fn sample<T: TestValue>(shape: &[usize]) -> ArrayD<T> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(T::value).collect()).unwrap()
}

fn round_trip<T: TestValue>(format: ZarrFormat, compression: Compression) {
    let store = Store::memory();
    let spec = ArraySpec::new(vec![5, 7], vec![2, 3], T::DTYPE)
        .with_format(format)
        .with_compression(compression)
        .with_dimension_names(["y", "x"]);
    let array = ZarrArray::create(&store, "group/data", &spec, false).unwrap();
    let data = sample::<T>(&[5, 7]);
    array.write_region(&[0..5, 0..7], data.view()).unwrap();

    let reopened = ZarrArray::open(&store, "/group/data/").unwrap();
    let what = format!("{} {format} {compression:?}", T::DTYPE);
    assert_eq!(reopened.read_all::<T>().unwrap(), data, "{what}");
    assert_eq!(reopened.dtype(), T::DTYPE, "{what}");
    assert_eq!(reopened.format(), format);
    assert_eq!(
        reopened.compression(),
        Some(compression),
        "{what} {}",
        reopened.metadata
    );
    assert_eq!(
        reopened.spec(),
        spec.clone().with_fill_value(reopened.fill_value())
    );
    // The edge chunk is clipped: rows 4..5, columns 6..7.
    let edge = reopened.read_chunk::<T>(&[2, 2]).unwrap();
    assert_eq!(edge.shape(), [1, 1]);
    assert_eq!(edge[[0, 0]], data[[4, 6]]);
    // A region across chunk boundaries.
    let region = reopened.read_region::<T>(&[1..4, 2..6]).unwrap();
    assert_eq!(region, data.slice(ndarray::s![1..4, 2..6]).into_dyn());
}

#[test]
fn every_dtype_format_and_compression_round_trips() {
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        for compression in COMPRESSIONS {
            round_trip::<bool>(format, compression);
            round_trip::<i8>(format, compression);
            round_trip::<i16>(format, compression);
            round_trip::<i32>(format, compression);
            round_trip::<i64>(format, compression);
            round_trip::<u8>(format, compression);
            round_trip::<u16>(format, compression);
            round_trip::<u32>(format, compression);
            round_trip::<u64>(format, compression);
            round_trip::<f32>(format, compression);
            round_trip::<f64>(format, compression);
        }
    }
}

#[test]
fn metadata_follows_zarr_python_and_xarray_conventions() {
    let store = Store::memory();
    let spec = ArraySpec::new(vec![6, 4], vec![2, 4], DType::F32)
        .with_format(ZarrFormat::V2)
        .with_fill_value(FillValue::NaN)
        .with_dimension_names(["time", "lat"])
        .with_attribute("units", "K");
    let a = ZarrArray::create(&store, "t2m", &spec, false).unwrap();
    let zarray: Value =
        serde_json::from_slice(&store.get("t2m/.zarray").unwrap().unwrap()).unwrap();
    assert_eq!(
        zarray,
        json!({"shape": [6, 4], "chunks": [2, 4], "dtype": "<f4", "fill_value": "NaN",
               "order": "C", "filters": null, "dimension_separator": ".", "zarr_format": 2,
               "compressor": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1,
                              "blocksize": 0}})
    );
    let zattrs: Value =
        serde_json::from_slice(&store.get("t2m/.zattrs").unwrap().unwrap()).unwrap();
    assert_eq!(
        zattrs,
        json!({"units": "K", "_ARRAY_DIMENSIONS": ["time", "lat"]})
    );
    assert_eq!(a.dimension_names().unwrap(), ["time", "lat"]);
    assert_eq!(a.attributes(), json!({"units": "K"}).as_object().unwrap());
    assert_eq!(
        a.codec_description(),
        "blosc(cname=lz4, clevel=5, shuffle=1, blocksize=0)"
    );
    assert_eq!(a.fill_value(), FillValue::NaN);

    let v3 = ArraySpec::new(vec![6, 4], vec![2, 4], DType::I16)
        .with_dimension_names(["time", "lat"])
        .with_attribute("scale_factor", 0.01);
    let b = ZarrArray::create(&store, "packed", &v3, false).unwrap();
    let doc: Value =
        serde_json::from_slice(&store.get("packed/zarr.json").unwrap().unwrap()).unwrap();
    assert_eq!(doc["dimension_names"], json!(["time", "lat"]));
    assert_eq!(doc["attributes"], json!({"scale_factor": 0.01}));
    assert_eq!(doc["fill_value"], json!(0));
    assert_eq!(
        doc["codecs"],
        json!([{"name": "bytes", "configuration": {"endian": "little"}},
               {"name": "zstd", "configuration": {"level": 0, "checksum": false}}])
    );
    assert!(doc.get("_zarrs").is_none() && doc["attributes"].get("_zarrs").is_none());
    assert_eq!(
        b.codec_description(),
        "bytes(endian=little) -> zstd(level=0, checksum=false)"
    );
    assert_eq!(b.fill_value(), FillValue::Int(0));
    assert_eq!(b.nbytes(), 48);
    assert_eq!(b.num_chunks(), 3);
    assert_eq!(b.chunks(), Chunks::regular(&[6, 4], &[2, 4]).unwrap());

    // Attributes can be replaced; names are kept.
    let mut a = a;
    let mut attrs = serde_json::Map::new();
    attrs.insert("long_name".into(), json!("temperature"));
    a.set_attributes(attrs.clone()).unwrap();
    let a = ZarrArray::open(&store, "t2m").unwrap();
    assert_eq!(a.attributes(), &attrs);
    assert_eq!(a.dimension_names().unwrap(), ["time", "lat"]);
}

#[test]
fn never_written_chunks_read_as_the_fill_value() {
    let store = Store::memory();
    let spec = ArraySpec::new(vec![4, 4], vec![2, 2], DType::F64).with_fill_value(FillValue::NaN);
    let a = ZarrArray::create(&store, "x", &spec, false).unwrap();
    a.write_chunk(&[0, 1], ArrayD::from_elem(IxDyn(&[2, 2]), 1.5).view())
        .unwrap();
    let all = a.read_all::<f64>().unwrap();
    assert!(all[[0, 0]].is_nan() && all[[3, 3]].is_nan());
    assert_eq!(all[[1, 3]], 1.5);
    assert!(a.chunk_exists(&[0, 1]).unwrap());
    assert!(!a.chunk_exists(&[1, 1]).unwrap());
    a.erase_chunk(&[0, 1]).unwrap();
    assert!(!a.chunk_exists(&[0, 1]).unwrap());
    assert!(
        a.read_chunk::<f64>(&[0, 1])
            .unwrap()
            .iter()
            .all(|x| x.is_nan())
    );

    // An all-fill chunk is not stored (zarr-python's write_empty_chunks=False).
    a.write_chunk(&[1, 0], ArrayD::from_elem(IxDyn(&[2, 2]), f64::NAN).view())
        .unwrap();
    assert!(!a.chunk_exists(&[1, 0]).unwrap());

    // Integer fill values, and v2's null (xarray's integers: nothing masked, reads as zero).
    for (format, fill, expect) in [
        (ZarrFormat::V3, FillValue::Int(-7), -7i32),
        (ZarrFormat::V2, FillValue::Int(-7), -7),
        (ZarrFormat::V2, FillValue::Null, 0),
        (ZarrFormat::V3, FillValue::Null, 0),
    ] {
        let spec = ArraySpec::new(vec![3], vec![2], DType::I32)
            .with_format(format)
            .with_fill_value(fill);
        let a = ZarrArray::create(&store, "ints", &spec, true).unwrap();
        assert_eq!(
            a.read_all::<i32>().unwrap().as_slice().unwrap(),
            [expect; 3]
        );
        let expected_fill = match (format, fill) {
            (ZarrFormat::V3, FillValue::Null) => FillValue::Int(0),
            _ => fill,
        };
        assert_eq!(a.fill_value(), expected_fill, "{format} {fill:?}");
    }
    let zarray: Value =
        serde_json::from_slice(&store.get("ints/zarr.json").unwrap().unwrap()).unwrap();
    assert_eq!(zarray["fill_value"], json!(0));
}

#[test]
fn edge_chunks_are_clipped_and_shapes_checked() {
    let store = Store::memory();
    let spec =
        ArraySpec::new(vec![5, 3], vec![2, 2], DType::U16).with_fill_value(FillValue::UInt(9));
    let a = ZarrArray::create(&store, "", &spec, false).unwrap();
    assert_eq!(a.chunk_region(&[2, 1]).unwrap(), vec![4..5, 2..3]);
    a.write_chunk(&[2, 1], ArrayD::from_elem(IxDyn(&[1, 1]), 4u16).view())
        .unwrap();
    assert_eq!(a.read_chunk::<u16>(&[2, 1]).unwrap().shape(), [1, 1]);
    assert_eq!(a.read_all::<u16>().unwrap()[[4, 2]], 4);
    assert_eq!(a.read_all::<u16>().unwrap()[[4, 1]], 9);

    let err = a
        .write_chunk(&[2, 1], ArrayD::from_elem(IxDyn(&[2, 2]), 4u16).view())
        .unwrap_err();
    assert!(matches!(err, StoreError::ShapeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("[1, 1]"), "{err}");
    let err = a.read_chunk::<u16>(&[3, 0]).unwrap_err();
    assert!(
        matches!(err, StoreError::ChunkIndexOutOfBounds { .. }),
        "{err}"
    );
    let err = a.read_region::<u16>(&[0..6, 0..1]).unwrap_err();
    assert!(matches!(err, StoreError::RegionOutOfBounds { .. }), "{err}");
    let err = a.read_chunk::<i16>(&[0, 0]).unwrap_err();
    assert!(matches!(err, StoreError::DTypeMismatch { .. }), "{err}");

    // Aligned regions (ending at the array's end) are fine; misaligned ones are refused.
    a.write_region(
        &[2..5, 0..3],
        ArrayD::from_elem(IxDyn(&[3, 3]), 1u16).view(),
    )
    .unwrap();
    let err = a
        .write_region(
            &[1..3, 0..2],
            ArrayD::from_elem(IxDyn(&[2, 2]), 1u16).view(),
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::MisalignedWrite { .. }), "{msg}");
    assert!(
        msg.contains("axis 0 starts at 1") && msg.contains("rechunk"),
        "{msg}"
    );
    let err = a
        .write_region(
            &[0..2, 0..1],
            ArrayD::from_elem(IxDyn(&[2, 1]), 1u16).view(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("axis 1 ends at 1"), "{err}");
}

#[test]
fn sharded_arrays_write_shards_and_read_inner_chunks() {
    let store = Store::memory();
    let spec = ArraySpec::new(vec![10, 10], vec![2, 5], DType::F32)
        .with_shard(vec![4, 10])
        .with_compression(Compression::Gzip { level: 1 });
    let a = ZarrArray::create(&store, "s", &spec, false).unwrap();
    assert_eq!(a.chunk_shape(), [2, 5]);
    assert_eq!(a.write_shape(), [4, 10]);
    assert_eq!(a.shard_shape(), Some(&[4, 10][..]));
    assert_eq!(a.grid_shape(), [5, 2]);
    assert_eq!(a.write_grid_shape(), [3, 1]);
    let data = sample::<f32>(&[10, 10]);
    a.write_region(&[0..10, 0..10], data.view()).unwrap();
    let a = ZarrArray::open(&store, "s").unwrap();
    assert_eq!(a.shard_shape(), Some(&[4, 10][..]));
    assert_eq!(a.compression(), Some(Compression::Gzip { level: 1 }));
    assert_eq!(
        a.read_chunk::<f32>(&[4, 1]).unwrap(),
        data.slice(ndarray::s![8..10, 5..10]).into_dyn()
    );
    assert_eq!(a.read_all::<f32>().unwrap(), data);
    // One object per shard.
    let chunk_keys: Vec<String> = store
        .list("s")
        .unwrap()
        .into_iter()
        .filter(|k| k.contains("/c/"))
        .collect();
    assert_eq!(chunk_keys, ["s/c/0/0", "s/c/1/0", "s/c/2/0"]);
    assert!(a.chunk_exists(&[2, 0]).unwrap());
    // Writing a single inner chunk is misaligned with the write grid.
    let err = a
        .write_region(
            &[0..2, 0..5],
            ArrayD::from_elem(IxDyn(&[2, 5]), 0f32).view(),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::MisalignedWrite { .. }), "{err}");
    assert!(
        a.codec_description().starts_with("sharding_indexed("),
        "{}",
        a.codec_description()
    );

    let err = ZarrArray::create(
        &store,
        "bad",
        &spec
            .clone()
            .with_format(ZarrFormat::V2)
            .with_shard(vec![4, 10]),
        false,
    )
    .unwrap_err();
    assert!(err.to_string().contains("sharding needs Zarr v3"), "{err}");
    let err =
        ZarrArray::create(&store, "bad", &spec.clone().with_shard(vec![3, 10]), false).unwrap_err();
    assert!(matches!(err, StoreError::InvalidSpec { .. }), "{err}");
}

#[test]
fn open_and_create_errors_say_what_to_do() {
    let store = Store::memory();
    let err = ZarrArray::open(&store, "missing").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::NotFound { .. }), "{msg}");
    assert!(
        msg.contains("\"missing\"") && msg.contains("memory://"),
        "{msg}"
    );

    let spec = ArraySpec::new(vec![4], vec![2], DType::I64);
    ZarrArray::create(&store, "a", &spec, false).unwrap();
    let err = ZarrArray::create(&store, "a", &spec, false).unwrap_err();
    assert!(matches!(err, StoreError::NodeExists { .. }), "{err}");
    assert!(err.to_string().contains("overwrite"), "{err}");
    // overwrite replaces the node and its chunks, also across formats.
    let a = ZarrArray::open(&store, "a").unwrap();
    a.write_chunk(&[0], ArrayD::from_elem(IxDyn(&[2]), 5i64).view())
        .unwrap();
    let v2 = spec.clone().with_format(ZarrFormat::V2);
    let a = ZarrArray::create(&store, "a", &v2, true).unwrap();
    assert_eq!(a.format(), ZarrFormat::V2);
    assert_eq!(store.list("a").unwrap(), ["a/.zarray", "a/.zattrs"]);
    assert_eq!(a.read_all::<i64>().unwrap().sum(), 0);

    // A group is not an array.
    create_group(&store, "g", serde_json::Map::new(), ZarrFormat::V3).unwrap();
    let err = ZarrArray::open(&store, "g").unwrap_err();
    assert!(err.to_string().contains("a v3 group is there"), "{err}");
    let err = create_group(&store, "a", serde_json::Map::new(), ZarrFormat::V3).unwrap_err();
    assert!(matches!(err, StoreError::NodeExists { .. }), "{err}");
    let err = group_attributes(&store, "a").unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");

    // Unsupported dtypes are named.
    store
        .set(
            "half/zarr.json",
            serde_json::to_vec(&json!({"zarr_format": 3, "node_type": "array", "shape": [4],
                "data_type": "float16",
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": 0.0, "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}]
            }))
            .unwrap()
            .as_slice(),
        )
        .unwrap();
    let err = ZarrArray::open(&store, "half").unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedDType { .. }), "{err}");
    assert!(err.to_string().contains("float16"), "{err}");

    // Bad paths and bad specs.
    assert!(matches!(
        ZarrArray::open(&store, "a/../b"),
        Err(StoreError::InvalidPath { .. })
    ));
    let err = ZarrArray::create(
        &store,
        "c",
        &ArraySpec::new(vec![4], vec![2], DType::U8).with_fill_value(FillValue::Int(-1)),
        false,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("does not fit dtype uint8"),
        "{err}"
    );
    let err = ZarrArray::create(
        &store,
        "c",
        &ArraySpec::new(vec![4], vec![2], DType::U8).with_dimension_names(["x", "y"]),
        false,
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::InvalidSpec { .. }), "{err}");
}

#[test]
fn corrupt_chunks_are_named() {
    let store = Store::memory();
    let spec = ArraySpec::new(vec![4, 4], vec![2, 2], DType::F32);
    let a = ZarrArray::create(&store, "arr", &spec, false).unwrap();
    a.write_region(&[0..4, 0..4], sample::<f32>(&[4, 4]).view())
        .unwrap();
    store.set("arr/c/1/0", b"definitely not zstd").unwrap();
    assert!(a.read_chunk::<f32>(&[0, 0]).is_ok());
    let err = a.read_all::<f32>().unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::CorruptChunk { .. }), "{msg}");
    assert!(msg.contains("[1, 0]") && msg.contains("arr/c/1/0"), "{msg}");
}

/// A store that refuses every write, like a read-only mount.
#[derive(Debug)]
struct ReadOnlyStore(MemoryStore);

impl ReadableStorageTraits for ReadOnlyStore {
    fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        self.0.get(key)
    }
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        self.0.get_partial_many(key, ranges)
    }
    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.0.size_key(key)
    }
    fn supports_get_partial(&self) -> bool {
        true
    }
}
impl ListableStorageTraits for ReadOnlyStore {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.0.list()
    }
    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.0.list_prefix(prefix)
    }
    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.0.list_dir(prefix)
    }
    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.0.size_prefix(prefix)
    }
}
impl WritableStorageTraits for ReadOnlyStore {
    fn set(&self, _: &StoreKey, _: Bytes) -> Result<(), StorageError> {
        Err(StorageError::IOError(Arc::new(std::io::Error::from(
            std::io::ErrorKind::PermissionDenied,
        ))))
    }
    fn set_partial_many(&self, _: &StoreKey, _: OffsetBytesIterator) -> Result<(), StorageError> {
        Err(StorageError::ReadOnly)
    }
    fn erase(&self, _: &StoreKey) -> Result<(), StorageError> {
        Err(StorageError::ReadOnly)
    }
    fn erase_prefix(&self, _: &StorePrefix) -> Result<(), StorageError> {
        Err(StorageError::ReadOnly)
    }
    fn supports_set_partial(&self) -> bool {
        false
    }
}

#[test]
fn writes_to_a_read_only_store_say_so() {
    let store = Store::from_storage(Arc::new(ReadOnlyStore(MemoryStore::new())), "ro://test");
    let spec = ArraySpec::new(vec![4], vec![2], DType::U8);
    let err = ZarrArray::create(&store, "a", &spec, false).unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");
}

#[test]
fn filesystem_arrays_round_trip_without_leftovers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("data.zarr").to_str().unwrap()).unwrap();
    create_group(&store, "", serde_json::Map::new(), ZarrFormat::V2).unwrap();
    let spec = ArraySpec::new(vec![6, 6], vec![4, 4], DType::I32).with_format(ZarrFormat::V2);
    let a = ZarrArray::create(&store, "v", &spec, false).unwrap();
    let data = sample::<i32>(&[6, 6]);
    a.write_region(&[0..6, 0..6], data.view()).unwrap();
    let again = Store::open(&format!(
        "file://{}",
        tmp.path().join("data.zarr").display()
    ))
    .unwrap();
    assert_eq!(
        ZarrArray::open(&again, "v")
            .unwrap()
            .read_all::<i32>()
            .unwrap(),
        data
    );
    let mut files: Vec<String> = walk(&tmp.path().join("data.zarr"));
    files.sort();
    assert_eq!(
        files,
        [
            ".zattrs",
            ".zgroup",
            "v/.zarray",
            "v/.zattrs",
            "v/0.0",
            "v/0.1",
            "v/1.0",
            "v/1.1"
        ]
    );
}

fn walk(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                out.push(rel);
            }
        }
    }
    out
}

#[test]
fn reads_through_a_latency_store_are_counted() {
    let store = Store::memory().with_latency(std::time::Duration::from_millis(1));
    let spec = ArraySpec::new(vec![4, 4], vec![2, 2], DType::F32);
    let a = ZarrArray::create(&store, "a", &spec, false).unwrap();
    a.write_region(&[0..4, 0..4], sample::<f32>(&[4, 4]).view())
        .unwrap();
    let stats = store.read_stats().unwrap();
    stats.reset();
    a.read_all::<f32>().unwrap();
    assert_eq!(stats.total_reads(), 4, "one read per chunk");
    assert_eq!(
        stats.max_in_flight(),
        1,
        "sequential: our scheduler owns parallelism"
    );
}

fn hierarchy(format: ZarrFormat) -> Store {
    let store = Store::memory();
    let mut attrs = serde_json::Map::new();
    attrs.insert("title".into(), json!("sample"));
    create_group(&store, "", attrs, format).unwrap();
    let spec = ArraySpec::new(vec![3], vec![3], DType::F64).with_format(format);
    ZarrArray::create(
        &store,
        "b",
        &spec.clone().with_dimension_names(["x"]),
        false,
    )
    .unwrap();
    ZarrArray::create(&store, "a", &spec, false).unwrap();
    create_group(&store, "sub", serde_json::Map::new(), format).unwrap();
    ZarrArray::create(&store, "sub/c", &spec, false).unwrap();
    store
}

#[test]
fn groups_list_children_with_and_without_consolidated_metadata() {
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        let store = hierarchy(format);
        assert_eq!(
            node_kind(&store, "").unwrap(),
            Some((NodeKind::Group, format))
        );
        assert_eq!(
            node_kind(&store, "sub/c").unwrap(),
            Some((NodeKind::Array, format))
        );
        assert_eq!(node_kind(&store, "nothing").unwrap(), None);
        assert_eq!(
            group_attributes(&store, "/").unwrap()["title"],
            json!("sample")
        );
        let scanned = list_children(&store, "").unwrap();
        assert_eq!(
            scanned,
            Children {
                arrays: vec!["a".into(), "b".into()],
                groups: vec!["sub".into()],
                consolidated: false
            }
        );
        assert_eq!(list_children(&store, "sub").unwrap().arrays, ["c"]);

        consolidate_metadata(&store, "").unwrap();
        let consolidated = list_children(&store, "").unwrap();
        assert!(consolidated.consolidated);
        assert_eq!(
            (consolidated.arrays, consolidated.groups),
            (scanned.arrays, scanned.groups)
        );
        // Group attributes survive consolidation.
        assert_eq!(
            group_attributes(&store, "").unwrap()["title"],
            json!("sample")
        );
    }
}

#[test]
fn consolidated_metadata_has_zarr_pythons_layout() {
    let store = hierarchy(ZarrFormat::V2);
    consolidate_metadata(&store, "").unwrap();
    let doc: Value = serde_json::from_slice(&store.get(".zmetadata").unwrap().unwrap()).unwrap();
    assert_eq!(doc["zarr_consolidated_format"], json!(1));
    let keys: Vec<&String> = doc["metadata"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            ".zgroup",
            ".zattrs",
            "a/.zarray",
            "a/.zattrs",
            "b/.zarray",
            "b/.zattrs",
            "sub/.zgroup",
            "sub/.zattrs",
            "sub/c/.zarray",
            "sub/c/.zattrs"
        ]
    );
    assert_eq!(
        doc["metadata"]["b/.zattrs"],
        json!({"_ARRAY_DIMENSIONS": ["x"]})
    );
    assert_eq!(doc["metadata"][".zattrs"], json!({"title": "sample"}));

    let store = hierarchy(ZarrFormat::V3);
    consolidate_metadata(&store, "").unwrap();
    let root: Value = serde_json::from_slice(&store.get("zarr.json").unwrap().unwrap()).unwrap();
    let cm = &root["consolidated_metadata"];
    assert_eq!(cm["kind"], json!("inline"));
    assert_eq!(cm["must_understand"], json!(false));
    let keys: Vec<&String> = cm["metadata"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["a", "b", "sub", "sub/c"]);
    assert_eq!(cm["metadata"]["b"]["dimension_names"], json!(["x"]));
    assert_eq!(
        cm["metadata"]["sub"]["consolidated_metadata"]["metadata"],
        json!({})
    );
    assert_eq!(root["attributes"], json!({"title": "sample"}));
}

#[test]
fn handles_are_send_sync_and_cheap_to_share() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Store>();
    assert_send_sync::<ZarrArray>();
    assert_send_sync::<ArraySpec>();
}
