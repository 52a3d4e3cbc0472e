//! Arrays over Zarr: `from_zarr` / `from_zarr_with` and `Array::to_zarr` / `to_zarr_delayed`,
//! and the `chunkflow info` command.
//!
//! - Round trips Array → to_zarr → from_zarr for every dtype, v2 and v3, every compression,
//!   under both executors; regular, irregular, smaller-than-store and larger-than-store array
//!   chunks; sharded targets. Each write graph has exactly one write task per stored chunk
//!   (shard).
//! - Region writes: aligned ones land, misaligned chunks or regions are rejected with how to
//!   fix them, before anything is written.
//! - Existing targets, `to_zarr_delayed` (lazy, combinable), wrong element types, corrupt
//!   chunks, read-only targets.
//! - `chunkflow info` through the built binary, text and `--json`, and its errors.

use std::collections::BTreeMap;
use std::ops::Range;
use std::process::Command;

use chunkflow::array::{self, ChunkSpec, Element, ToZarrOptions, from_zarr, from_zarr_with};
use chunkflow::graph::{TaskGraph, TaskKind};
use chunkflow::prelude::*;
use chunkflow::store::{
    BloscCompressor, BloscShuffle, Compression, FillValue, NodeKind, Store, StoreError, ZarrArray,
    ZarrFormat, create_group, node_kind,
};
use ndarray::{ArrayD, IxDyn};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Deterministic test values per element type (ranges' edges included).
trait Sample: Element {
    fn sample(i: usize, n: usize) -> Self;
}
macro_rules! sample_int {
    ($($t:ty),*) => {$(
        impl Sample for $t {
            fn sample(i: usize, n: usize) -> Self {
                if n >= 2 && i == 0 { <$t>::MIN } else if n >= 2 && i == n - 1 { <$t>::MAX }
                else { ((i * 7 + 3) % 100) as $t }
            }
        }
    )*};
}
sample_int!(i8, i16, i32, i64, u8, u16, u32, u64);
impl Sample for f32 {
    fn sample(i: usize, _: usize) -> Self {
        i as f32 * 0.125 - 3.0
    }
}
impl Sample for f64 {
    fn sample(i: usize, _: usize) -> Self {
        i as f64 * 0.125 - 3.0
    }
}
impl Sample for bool {
    fn sample(i: usize, _: usize) -> Self {
        i % 3 == 1
    }
}

fn sample<T: Sample>(shape: &[usize]) -> ArrayD<T> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|i| T::sample(i, n)).collect()).unwrap()
}

fn executors() -> [(&'static str, ComputeOptions); 2] {
    [
        ("sequential", ComputeOptions::default().executor(Sequential)),
        ("threaded", ComputeOptions::default().threads(2)),
    ]
}

fn compressions() -> [Compression; 4] {
    [
        Compression::None,
        Compression::Blosc {
            cname: BloscCompressor::Lz4,
            clevel: 5,
            shuffle: BloscShuffle::Byte,
        },
        Compression::Zstd { level: 3 },
        Compression::Gzip { level: 5 },
    ]
}

/// The number of tasks of `kind` in `graph`.
fn count_kind(graph: &TaskGraph, kind: TaskKind) -> usize {
    (0..graph.len() as u32)
        .filter(|&id| graph.meta(id).kind == kind)
        .count()
}

/// Every key and value in a store, to show that nothing changed.
fn snapshot(store: &Store) -> BTreeMap<String, Vec<u8>> {
    store
        .list("")
        .unwrap()
        .into_iter()
        .map(|k| {
            let v = store.get(&k).unwrap().unwrap();
            (k, v)
        })
        .collect()
}

/// The message of an error and all its sources.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(" | ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn u64s(v: &[usize]) -> Vec<u64> {
    v.iter().map(|&x| x as u64).collect()
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

/// Writes `data` chunked as `chunks` with `options`, checks the graph has one write task per
/// stored chunk, reads it back chunked like the store, and compares.
fn round_trip<T: Sample>(
    store: &Store,
    path: &str,
    data: &ArrayD<T>,
    chunks: impl Into<ChunkSpec>,
    options: &ToZarrOptions,
    compute: &ComputeOptions,
) -> ZarrArray {
    let x = array::from_ndarray(data.clone(), chunks).unwrap();
    let write = x.to_zarr_delayed(store, path, options).unwrap();
    let z = ZarrArray::open(store, path).unwrap();
    let graph = write.graph().unwrap();
    let writes = count_kind(&graph, TaskKind::Write);
    let stored: u64 = z.write_grid_shape().iter().product();
    assert_eq!(
        writes as u64, stored,
        "{path}: one write task per stored chunk"
    );
    for id in 0..graph.len() as u32 {
        let meta = graph.meta(id);
        if meta.kind == TaskKind::Write {
            assert!(
                meta.working_bytes > 0,
                "{path}: write task without working_bytes"
            );
        }
    }
    write.compute_with(compute).unwrap();
    let y = from_zarr::<T>(store, path).unwrap();
    assert_eq!(
        y.chunks(),
        &array::Chunks::regular(
            data.shape(),
            &z.chunk_shape()
                .iter()
                .map(|&c| c as usize)
                .collect::<Vec<_>>()
        )
        .unwrap(),
        "{path}: from_zarr is chunked like the store"
    );
    let back = y.compute_with(compute).unwrap();
    assert_eq!(&back, data, "{path}: values");
    z
}

fn every_format_and_compression<T: Sample>(store: &Store) {
    let data = sample::<T>(&[7, 5]);
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        for (ci, compression) in compressions().into_iter().enumerate() {
            for (name, compute) in executors() {
                let path = format!("{}/{format}/c{ci}/{name}", T::DTYPE.name());
                let options = ToZarrOptions::default()
                    .with_format(format)
                    .with_compression(compression);
                let z = round_trip(store, &path, &data, [3, 2], &options, &compute);
                assert_eq!(z.format(), format, "{path}");
                assert_eq!(z.dtype(), T::DTYPE, "{path}");
                assert_eq!(z.compression(), Some(compression), "{path}");
                assert_eq!(z.chunk_shape(), &[3, 2], "{path}");
            }
        }
    }
}

#[test]
fn round_trips_every_dtype_format_compression_and_executor() {
    let store = Store::memory();
    every_format_and_compression::<bool>(&store);
    every_format_and_compression::<i8>(&store);
    every_format_and_compression::<i16>(&store);
    every_format_and_compression::<i32>(&store);
    every_format_and_compression::<i64>(&store);
    every_format_and_compression::<u8>(&store);
    every_format_and_compression::<u16>(&store);
    every_format_and_compression::<u32>(&store);
    every_format_and_compression::<u64>(&store);
    every_format_and_compression::<f32>(&store);
    every_format_and_compression::<f64>(&store);
    // Parent groups were created as zarr-python does.
    assert!(matches!(
        node_kind(&store, "float32/v2/c0").unwrap(),
        Some((NodeKind::Group, ZarrFormat::V2))
    ));
    assert!(matches!(
        node_kind(&store, "").unwrap(),
        Some((NodeKind::Group, _))
    ));
}

#[test]
fn round_trips_on_the_filesystem_with_metadata_options() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::filesystem(dir.path()).unwrap();
    let mut attrs = Map::new();
    attrs.insert("units".into(), json!("K"));
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        for (name, compute) in executors() {
            let path = format!("t2m_{format}_{name}");
            let options = ToZarrOptions::default()
                .with_format(format)
                .with_fill_value(FillValue::NaN)
                .with_dimension_names(["time", "lat"])
                .with_attributes(attrs.clone());
            let data = sample::<f32>(&[6, 9]);
            let z = round_trip(&store, &path, &data, [2, 4], &options, &compute);
            assert_eq!(z.fill_value(), FillValue::NaN);
            assert_eq!(z.dimension_names().unwrap(), ["time", "lat"]);
            assert_eq!(z.attributes(), &attrs);
            assert_eq!(z.compression(), Some(Compression::default_for(format)));
        }
    }
    // Written atomically: no temporary files are left behind.
    for entry in walk(dir.path()) {
        assert!(
            !entry.contains("chunkflow-tmp"),
            "leftover temporary file {entry}"
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[test]
fn array_chunks_are_fitted_to_the_store_grid() {
    let store = Store::memory();
    let data = sample::<i32>(&[10, 7]);
    let cases: Vec<(&str, ChunkSpec, ToZarrOptions, Vec<u64>, usize)> = vec![
        // Irregular chunks: the store takes the largest (4, 5); chunks straddling it are
        // rechunked to the store grid: 3 x 2 write tasks.
        (
            "irregular",
            ChunkSpec::explicit(vec![vec![3, 1, 4, 2], vec![2, 5]]),
            ToZarrOptions::default(),
            vec![4, 5],
            6,
        ),
        // Smaller chunks are merged into whole stored chunks: 2 x 1 write tasks.
        (
            "smaller",
            ChunkSpec::from([1, 7]),
            ToZarrOptions::default().with_chunks([5, 7]),
            vec![5, 7],
            2,
        ),
        // Larger aligned chunks: one task writes several stored chunks.
        (
            "larger",
            ChunkSpec::from([10, 7]),
            ToZarrOptions::default().with_chunks([5, 3]),
            vec![5, 3],
            1,
        ),
        // Straddling a chosen store grid: rechunked to it.
        (
            "straddling",
            ChunkSpec::from([2, 7]),
            ToZarrOptions::default().with_chunks([5, 7]),
            vec![5, 7],
            2,
        ),
    ];
    for (name, chunks, options, store_chunks, writes) in cases {
        let x = array::from_ndarray(data.clone(), chunks).unwrap();
        let write = x.to_zarr_delayed(&store, name, &options).unwrap();
        let graph = write.graph().unwrap();
        assert_eq!(count_kind(&graph, TaskKind::Write), writes, "{name}");
        write.compute().unwrap();
        let z = ZarrArray::open(&store, name).unwrap();
        assert_eq!(z.chunk_shape(), store_chunks.as_slice(), "{name}");
        assert_eq!(
            from_zarr::<i32>(&store, name).unwrap().compute().unwrap(),
            data
        );
    }
}

#[test]
fn sharded_targets_get_one_write_task_per_shard() {
    let data = sample::<f32>(&[8, 10]);
    for (name, compute) in executors() {
        let store = Store::memory();
        let sharded = ToZarrOptions::default()
            .with_chunks([2, 5])
            .with_shards([4, 10])
            .with_dimension_names(["y", "x"]);
        for (case, chunks, writes) in [
            ("small", [2, 5], 2), // merged into shards
            ("big", [8, 10], 1),  // one task writes both shards
            ("odd", [3, 10], 2),  // straddles: rechunked to shards
        ] {
            let x = array::from_ndarray(data.clone(), chunks).unwrap();
            let write = x.to_zarr_delayed(&store, case, &sharded).unwrap();
            let graph = write.graph().unwrap();
            assert_eq!(count_kind(&graph, TaskKind::Write), writes, "{name}/{case}");
            write.compute_with(&compute).unwrap();
            let z = ZarrArray::open(&store, case).unwrap();
            assert_eq!(z.shard_shape(), Some(&[4u64, 10][..]));
            assert_eq!(z.chunk_shape(), &[2, 5]);
            let y = from_zarr::<f32>(&store, case).unwrap();
            assert_eq!(y.chunks().chunksize(), vec![2, 5], "reads inner chunks");
            assert_eq!(y.compute_with(&compute).unwrap(), data, "{name}/{case}");
        }
    }
    // Shards need v3; rejected before anything is written.
    let store = Store::memory();
    let x = array::from_ndarray(data, [4, 10]).unwrap();
    let err = x
        .to_zarr(
            &store,
            "v2",
            &ToZarrOptions::default()
                .with_format(ZarrFormat::V2)
                .with_shards([4, 10]),
        )
        .unwrap_err();
    assert!(err.to_string().contains("sharding needs Zarr v3"), "{err}");
    assert!(store.list("").unwrap().is_empty());
}

#[test]
fn from_zarr_tasks_are_reads_with_sizes_and_deterministic_keys() {
    let store = Store::open("memory://array-zarr-keys").unwrap();
    let data = sample::<u16>(&[9, 4]);
    array::from_ndarray(data.clone(), [4, 4])
        .unwrap()
        .to_zarr(&store, "x", &ToZarrOptions::default().with_overwrite(true))
        .unwrap();
    let a = from_zarr::<u16>(&store, "x").unwrap();
    let b = from_zarr::<u16>(&Store::open("memory://array-zarr-keys").unwrap(), "x").unwrap();
    assert!(a.name().starts_with("from-zarr-"), "{}", a.name());
    assert_eq!(a.name(), b.name(), "same store, path and chunks: same keys");
    let c = from_zarr_with::<u16>(&store, "x", [3, 2]).unwrap();
    assert_ne!(a.name(), c.name());
    assert!(c.name().starts_with("from-zarr-"));
    assert_eq!(c.chunks().chunksize(), vec![3, 2]);
    assert_eq!(c.compute().unwrap(), data);
    // Anonymous memory stores all say "memory://": they still get different keys.
    let m1 = Store::memory();
    let m2 = Store::memory();
    for m in [&m1, &m2] {
        array::from_ndarray(data.clone(), [4, 4])
            .unwrap()
            .to_zarr(m, "x", &ToZarrOptions::default())
            .unwrap();
    }
    assert_ne!(
        from_zarr::<u16>(&m1, "x").unwrap().name(),
        from_zarr::<u16>(&m2, "x").unwrap().name()
    );

    let graph = a.graph(Default::default()).unwrap();
    assert_eq!(count_kind(&graph, TaskKind::Read), 3);
    for id in 0..graph.len() as u32 {
        let meta = graph.meta(id);
        assert_eq!(meta.kind, TaskKind::Read);
        assert!(meta.nbytes > 0);
    }
    // `auto` snaps to the stored chunks.
    let auto = from_zarr_with::<u16>(&store, "x", ChunkSpec::auto()).unwrap();
    assert_eq!(auto.chunks().shape(), &[9, 4]);
    assert_eq!(auto.compute().unwrap(), data);
}

#[test]
fn from_zarr_with_the_wrong_type_names_both() {
    let store = Store::memory();
    array::ones::<f32>(&[4], [2])
        .unwrap()
        .to_zarr(&store, "x", &ToZarrOptions::default())
        .unwrap();
    let err = from_zarr::<i32>(&store, "x").unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Store(StoreError::DTypeMismatch { .. })),
        "{err:?}"
    );
    assert!(msg.contains("float32") && msg.contains("int32"), "{msg}");
    assert!(from_zarr_with::<u8>(&store, "x", [4]).is_err());
    let missing = from_zarr::<f32>(&store, "nope").unwrap_err();
    assert!(missing.to_string().contains("no Zarr array"), "{missing}");
}

#[test]
fn corrupt_chunks_are_named() {
    for (format, key) in [(ZarrFormat::V3, "x/c/1/0"), (ZarrFormat::V2, "x/1.0")] {
        let store = Store::memory();
        array::from_ndarray(sample::<f64>(&[4, 3]), [2, 3])
            .unwrap()
            .to_zarr(&store, "x", &ToZarrOptions::default().with_format(format))
            .unwrap();
        assert!(store.get(key).unwrap().is_some(), "{key} exists");
        store.set(key, b"this is not a compressed chunk").unwrap();
        for (name, compute) in executors() {
            let err = from_zarr::<f64>(&store, "x")
                .unwrap()
                .compute_with(&compute)
                .unwrap_err();
            let msg = chain(&err);
            assert!(err.key().is_some(), "{name}: {msg}");
            assert!(
                msg.contains(key) && msg.contains("[1, 0]") && msg.contains("corrupt"),
                "{name}: {msg}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Region writes
// ---------------------------------------------------------------------------------------------

/// A (10, 7) float64 array of zeros with stored chunks (4, 5).
fn zeros_target(store: &Store) {
    array::zeros::<f64>(&[10, 7], [4, 5])
        .unwrap()
        .to_zarr(store, "t", &ToZarrOptions::default())
        .unwrap();
}

fn region(r: &[Range<u64>]) -> ToZarrOptions {
    ToZarrOptions::region(r.iter().cloned())
}

#[test]
fn aligned_region_writes_land() {
    for (name, compute) in executors() {
        let store = Store::memory();
        zeros_target(&store);
        let mut expected = ArrayD::<f64>::zeros(IxDyn(&[10, 7]));
        // Whole stored chunks, the last partial at the array's end.
        let ones = array::ones::<f64>(&[6, 7], [4, 5]).unwrap();
        let write = ones
            .to_zarr_delayed(&store, "t", &region(&[4..10, 0..7]))
            .unwrap();
        assert_eq!(count_kind(&write.graph().unwrap(), TaskKind::Write), 4);
        write.compute_with(&compute).unwrap();
        expected.slice_mut(ndarray::s![4..10, ..]).fill(1.0);
        // Small chunks merged into whole stored chunks: one write task per stored chunk.
        let twos = array::full(&[4, 7], [1, 7], 2.0f64).unwrap();
        let write = twos
            .to_zarr_delayed(&store, "t", &region(&[0..4, 0..7]))
            .unwrap();
        assert_eq!(count_kind(&write.graph().unwrap(), TaskKind::Write), 1);
        write.compute_with(&compute).unwrap();
        expected.slice_mut(ndarray::s![0..4, ..]).fill(2.0);
        // A region inside the array on both axes.
        let threes = array::full(&[4, 5], [2, 5], 3.0f64).unwrap();
        threes
            .to_zarr_with(&store, "t", &region(&[4..8, 0..5]), &compute)
            .unwrap();
        expected.slice_mut(ndarray::s![4..8, 0..5]).fill(3.0);
        assert_eq!(
            from_zarr::<f64>(&store, "t").unwrap().compute().unwrap(),
            expected,
            "{name}"
        );
    }
}

#[test]
fn misaligned_region_writes_are_rejected_before_writing() {
    let store = Store::memory();
    zeros_target(&store);
    array::ones::<f64>(&[10, 7], [4, 5])
        .unwrap()
        .to_zarr(&store, "t", &region(&[0..10, 0..7]))
        .unwrap();
    let before = snapshot(&store);

    // Chunks straddling a stored chunk boundary: the message says what to rechunk to.
    let x = array::full(&[8, 7], [3, 7], 5.0f64).unwrap();
    let err = x.to_zarr(&store, "t", &region(&[0..8, 0..7])).unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.contains("rechunk to (4, 5)"), "{msg}");
    assert!(msg.contains("array.rechunk([4, 5])"), "{msg}");
    assert!(msg.contains("chunk 1 on axis 0 covers 3..6"), "{msg}");
    // Following the advice works.
    let fixed = x.rechunk([4, 5]).unwrap();
    assert!(
        fixed
            .to_zarr_delayed(&store, "t", &region(&[0..8, 0..7]))
            .is_ok()
    );

    // Regions that do not start (end) on the grid (or the array's end).
    let err = array::ones::<f64>(&[4, 7], [4, 7])
        .unwrap()
        .to_zarr(&store, "t", &region(&[2..6, 0..7]))
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::MisalignedWrite { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("axis 0 starts at 2"), "{err}");
    let err = array::ones::<f64>(&[2, 7], [2, 7])
        .unwrap()
        .to_zarr(&store, "t", &region(&[4..6, 0..7]))
        .unwrap_err();
    assert!(err.to_string().contains("axis 0 ends at 6"), "{err}");
    // The wrong shape, out of bounds, the wrong dtype, no array.
    let ones = array::ones::<f64>(&[4, 7], [4, 5]).unwrap();
    let err = ones
        .to_zarr(&store, "t", &region(&[0..8, 0..7]))
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::ShapeMismatch { .. })),
        "{err}"
    );
    let err = ones
        .to_zarr(&store, "t", &region(&[8..12, 0..7]))
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::RegionOutOfBounds { .. })),
        "{err}"
    );
    let err = array::ones::<f32>(&[4, 7], [4, 5])
        .unwrap()
        .to_zarr(&store, "t", &region(&[0..4, 0..7]))
        .unwrap_err();
    assert!(
        err.to_string().contains("float64") && err.to_string().contains("float32"),
        "{err}"
    );
    let err = ones
        .to_zarr(&store, "nope", &region(&[0..4, 0..7]))
        .unwrap_err();
    assert!(err.to_string().contains("no Zarr array"), "{err}");

    assert_eq!(snapshot(&store), before, "nothing was written");
}

#[test]
fn region_writes_into_sharded_arrays_cover_whole_shards() {
    let store = Store::memory();
    array::zeros::<i16>(&[8, 10], [2, 5])
        .unwrap()
        .to_zarr(
            &store,
            "s",
            &ToZarrOptions::default()
                .with_chunks([2, 5])
                .with_shards([4, 10]),
        )
        .unwrap();
    let before = snapshot(&store);
    // Inner-chunk-sized array chunks are merged into one shard write.
    let x = array::full(&[4, 10], [2, 5], 7i16).unwrap();
    let err = x.to_zarr(&store, "s", &region(&[0..2, 0..10])).unwrap_err();
    assert!(err.to_string().contains("[4, 10]"), "{err}");
    assert_eq!(snapshot(&store), before);
    let write = x
        .to_zarr_delayed(&store, "s", &region(&[4..8, 0..10]))
        .unwrap();
    assert_eq!(count_kind(&write.graph().unwrap(), TaskKind::Write), 1);
    write.compute().unwrap();
    let back = from_zarr::<i16>(&store, "s").unwrap().compute().unwrap();
    assert_eq!(back.slice(ndarray::s![4.., ..]).sum(), 7 * 40);
    assert_eq!(back.slice(ndarray::s![..4, ..]).sum(), 0);
    // Straddling a shard boundary is rejected with the shard shape to use.
    let y = array::full(&[8, 10], [3, 10], 1i16).unwrap();
    let err = y.to_zarr(&store, "s", &region(&[0..8, 0..10])).unwrap_err();
    assert!(
        err.to_string().contains("shard") && err.to_string().contains("rechunk to (4, 10)"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Creation rules, laziness
// ---------------------------------------------------------------------------------------------

#[test]
fn existing_targets_need_overwrite() {
    let store = Store::memory();
    let x = array::arange(0i64, 10, 1, 5).unwrap();
    x.to_zarr(&store, "x", &ToZarrOptions::default()).unwrap();
    let before = snapshot(&store);
    let err = x
        .to_zarr(&store, "x", &ToZarrOptions::default())
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::NodeExists { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("overwrite"), "{err}");
    assert_eq!(snapshot(&store), before);
    // A group there is refused too; an array below another array is refused.
    create_group(&store, "g", Map::new(), ZarrFormat::V3).unwrap();
    assert!(x.to_zarr(&store, "g", &ToZarrOptions::default()).is_err());
    let err = x
        .to_zarr(&store, "x/inner", &ToZarrOptions::default())
        .unwrap_err();
    assert!(
        err.to_string().contains("is an array, not a group"),
        "{err}"
    );
    // With overwrite the old array (and its chunks) are replaced.
    let y = array::full(&[3], [3], 9i64).unwrap();
    y.to_zarr(
        &store,
        "x",
        &ToZarrOptions::default()
            .with_overwrite(true)
            .with_format(ZarrFormat::V2),
    )
    .unwrap();
    let z = ZarrArray::open(&store, "x").unwrap();
    assert_eq!((z.shape(), z.format()), (&[3u64][..], ZarrFormat::V2));
    assert_eq!(
        from_zarr::<i64>(&store, "x")
            .unwrap()
            .compute()
            .unwrap()
            .sum(),
        27
    );
    assert!(store.list("x").unwrap().iter().all(|k| !k.contains("/c/")));
}

#[test]
fn to_zarr_delayed_writes_only_when_computed_and_joins_other_work() {
    let store = Store::memory();
    let a = array::arange(0i64, 20, 1, 5).unwrap();
    let b = &a * 2;
    let write_a = a
        .to_zarr_delayed(&store, "a", &ToZarrOptions::default())
        .unwrap();
    let write_b = b
        .to_zarr_delayed(
            &store,
            "b",
            &ToZarrOptions::default().with_format(ZarrFormat::V2),
        )
        .unwrap();
    // The metadata exists now; no chunk is written yet.
    for path in ["a", "b"] {
        let z = ZarrArray::open(&store, path).unwrap();
        assert!((0..4).all(|i| !z.chunk_exists(&[i]).unwrap()), "{path}");
    }
    // Dropping a planned write writes nothing.
    let c = array::ones::<u8>(&[4], [2]).unwrap();
    drop(
        c.to_zarr_delayed(&store, "c", &ToZarrOptions::default())
            .unwrap(),
    );
    assert!(
        !ZarrArray::open(&store, "c")
            .unwrap()
            .chunk_exists(&[0])
            .unwrap()
    );

    let total = a.sum_all();
    let ((), (), sum) = chunkflow::compute((&write_a, &write_b, &total)).unwrap();
    assert_eq!(sum, 190);
    assert_eq!(
        from_zarr::<i64>(&store, "a").unwrap().compute().unwrap(),
        a.compute().unwrap()
    );
    assert_eq!(
        from_zarr::<i64>(&store, "b").unwrap().compute().unwrap(),
        b.compute().unwrap()
    );
    // Both writes and the sum ran in one graph, sharing `a`'s chunks.
    let graph = TaskGraph::from_layers(
        &[
            write_a.layer().clone(),
            write_b.layer().clone(),
            total.layer().clone(),
        ],
        &[
            write_a.key().clone(),
            write_b.key().clone(),
            total.key().clone(),
        ],
        Default::default(),
    )
    .unwrap();
    assert_eq!(count_kind(&graph, TaskKind::Write), 8);
    // Same array, store, path and region: same keys.
    let again = a
        .to_zarr_delayed(&store, "a", &ToZarrOptions::region(std::iter::once(0..20)))
        .unwrap();
    let again2 = a
        .to_zarr_delayed(&store, "a", &ToZarrOptions::region(std::iter::once(0..20)))
        .unwrap();
    assert_eq!(again.key(), again2.key());
    assert!(again.key().name().starts_with("to-zarr-"));
}

#[test]
fn empty_arrays_round_trip() {
    let store = Store::memory();
    let x = array::zeros::<f32>(&[0, 3], [2, 3]).unwrap();
    x.to_zarr(&store, "e", &ToZarrOptions::default()).unwrap();
    let y = from_zarr::<f32>(&store, "e").unwrap();
    assert_eq!(y.shape(), &[0, 3]);
    assert_eq!(y.compute().unwrap().shape(), &[0, 3]);
}

// ---------------------------------------------------------------------------------------------
// Read-only targets
// ---------------------------------------------------------------------------------------------

fn dir_snapshot(dir: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    walk(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn read_only_targets_fail_clearly_and_touch_nothing() {
    let src_dir = tempfile::tempdir().unwrap();
    let dst_dir = tempfile::tempdir().unwrap();
    let source = Store::filesystem(src_dir.path()).unwrap();
    let data = sample::<i32>(&[6, 4]);
    array::from_ndarray(data.clone(), [3, 2])
        .unwrap()
        .to_zarr(&source, "x", &ToZarrOptions::default())
        .unwrap();
    // The target already holds an array, written while it was writable.
    array::full(&[6, 4], [3, 2], -1i32)
        .unwrap()
        .to_zarr(
            &Store::filesystem(dst_dir.path()).unwrap(),
            "y",
            &ToZarrOptions::default(),
        )
        .unwrap();
    let src_before = dir_snapshot(src_dir.path());
    let dst_before = dir_snapshot(dst_dir.path());

    let target = Store::filesystem(dst_dir.path()).unwrap().read_only();
    let x = from_zarr::<i32>(&source, "x").unwrap();

    // A new array: refused when its metadata is written.
    let err = x
        .to_zarr(&target, "z", &ToZarrOptions::default())
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::ReadOnly { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("read-only"), "{err}");
    // Overwriting the existing array: refused before its data is deleted.
    let err = x
        .to_zarr(&target, "y", &ToZarrOptions::default().with_overwrite(true))
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    // A region write: the chunk writes fail, naming the task.
    for (name, compute) in executors() {
        let err = x
            .to_zarr_with(&target, "y", &region(&[0..6, 0..4]), &compute)
            .unwrap_err();
        assert!(err.key().is_some(), "{name}: {err}");
        assert!(chain(&err).contains("read-only"), "{name}: {}", chain(&err));
    }
    assert_eq!(dir_snapshot(src_dir.path()), src_before, "source untouched");
    assert_eq!(dir_snapshot(dst_dir.path()), dst_before, "target untouched");
    assert_eq!(
        from_zarr::<i32>(&target, "y")
            .unwrap()
            .compute()
            .unwrap()
            .sum(),
        -24
    );
    assert_eq!(
        from_zarr::<i32>(&source, "x").unwrap().compute().unwrap(),
        data
    );
}

#[cfg(unix)]
#[test]
fn chmod_read_only_directories_fail_clearly_unless_root() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let target_dir = dir.path().join("ro.zarr");
    std::fs::create_dir(&target_dir).unwrap();
    std::fs::set_permissions(&target_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let probe = target_dir.join("probe");
    if std::fs::write(&probe, b"x").is_ok() {
        // Root (as in this project's CI container) ignores directory permissions: the
        // read-only behaviour is tested through `Store::read_only` above instead.
        let _ = std::fs::remove_file(&probe);
        eprintln!("running as root: chmod 0o555 does not stop writes; skipped");
        std::fs::set_permissions(&target_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        return;
    }
    let target = Store::filesystem(&target_dir).unwrap();
    let err = array::ones::<u8>(&[4], [2])
        .unwrap()
        .to_zarr(&target, "x", &ToZarrOptions::default())
        .unwrap_err();
    std::fs::set_permissions(&target_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        matches!(err, Error::Store(StoreError::ReadOnly { .. })),
        "{err:?}"
    );
    assert!(walk(&target_dir).is_empty());
}

// ---------------------------------------------------------------------------------------------
// `chunkflow info`
// ---------------------------------------------------------------------------------------------

fn info(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chunkflow"))
        .arg("info")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A small store: a v3 root group with attributes, a float array with names and a NaN fill, a
/// sharded array, and a v2 subgroup holding an int array.
fn small_store(dir: &std::path::Path) -> Store {
    let store = Store::filesystem(dir).unwrap();
    let mut attrs = Map::new();
    attrs.insert("title".into(), json!("info sample"));
    create_group(&store, "", attrs, ZarrFormat::V3).unwrap();
    array::from_ndarray(sample::<f32>(&[6, 4]), [3, 2])
        .unwrap()
        .to_zarr(
            &store,
            "temperature",
            &ToZarrOptions::default()
                .with_dimension_names(["y", "x"])
                .with_fill_value(FillValue::NaN),
        )
        .unwrap();
    array::from_ndarray(sample::<u8>(&[8, 10]), [4, 10])
        .unwrap()
        .to_zarr(
            &store,
            "sharded",
            &ToZarrOptions::default()
                .with_chunks([2, 5])
                .with_shards([4, 10]),
        )
        .unwrap();
    let mut sub = Map::new();
    sub.insert("level".into(), json!(1));
    create_group(&store, "sub", sub, ZarrFormat::V2).unwrap();
    array::from_ndarray(sample::<i32>(&[5]), [2])
        .unwrap()
        .to_zarr(
            &store,
            "sub/counts",
            &ToZarrOptions::default()
                .with_format(ZarrFormat::V2)
                .with_compression(Compression::Gzip { level: 5 }),
        )
        .unwrap();
    store
}

fn bytes_under(store: &Store, prefix: &str) -> u64 {
    store
        .list(prefix)
        .unwrap()
        .iter()
        .map(|k| store.size(k).unwrap().unwrap())
        .sum()
}

#[test]
fn info_prints_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let (ok, out, err) = info(&[dir.path().to_str().unwrap()]);
    assert!(ok, "{err}");
    eprintln!("{out}");
    let temperature = ZarrArray::open(&store, "temperature").unwrap();
    let counts = ZarrArray::open(&store, "sub/counts").unwrap();
    for want in [
        "/ (group, v3)",
        "\"title\":\"info sample\"",
        "temperature (array, v3)",
        "shape (6, 4)  chunks (3, 2)  dtype float32",
        &format!("codecs {}", temperature.codec_description()),
        "dimensions (y, x)  fill value NaN",
        "sharded (array, v3)",
        "shape (8, 10)  chunks (2, 5)  shards (4, 10)  dtype uint8",
        "(2 of 2 shards stored)",
        "sub/ (group, v2)  {\"level\":1}",
        "counts (array, v2)",
        &format!("codecs {}", counts.codec_description()),
        "(3 of 3 chunks stored)",
        "96 B uncompressed",
        &format!(
            "size {} on disk",
            array::human_bytes(bytes_under(&store, "temperature"))
        ),
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    // The tree: the subgroup's array is drawn under it.
    let sub_line = out.lines().position(|l| l.contains("sub/ (group")).unwrap();
    let counts_line = out
        .lines()
        .position(|l| l.contains("counts (array"))
        .unwrap();
    assert!(counts_line > sub_line);
}

#[test]
fn info_json_is_machine_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let (ok, out, err) = info(&["--json", dir.path().to_str().unwrap()]);
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let root = &doc["root"];
    assert_eq!(root["kind"], "group");
    assert_eq!(root["format"], "v3");
    assert_eq!(root["attributes"]["title"], "info sample");
    let children = root["children"].as_array().unwrap();
    let names: Vec<&str> = children
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sharded", "sub", "temperature"]);
    let t = &children[2];
    assert_eq!(t["kind"], "array");
    assert_eq!(t["shape"], json!([6, 4]));
    assert_eq!(t["chunks"], json!([3, 2]));
    assert_eq!(t["shards"], Value::Null);
    assert_eq!(t["dtype"], "float32");
    assert_eq!(t["dimension_names"], json!(["y", "x"]));
    assert_eq!(t["fill_value"], "NaN");
    assert_eq!(t["bytes_uncompressed"], 96);
    assert_eq!(t["bytes_stored"], bytes_under(&store, "temperature"));
    assert_eq!(t["objects_stored"], 4);
    let s = &children[0];
    assert_eq!(s["shards"], json!([4, 10]));
    assert_eq!(s["objects_total"], 2);
    let sub = &children[1];
    assert_eq!(sub["format"], "v2");
    assert_eq!(sub["attributes"], json!({"level": 1}));
    let counts = &sub["children"][0];
    assert_eq!(counts["path"], "sub/counts");
    assert_eq!(counts["name"], "counts");
    assert_eq!(counts["dtype"], "int32");
    assert_eq!(
        counts["codecs"].as_str().unwrap(),
        ZarrArray::open(&store, "sub/counts")
            .unwrap()
            .codec_description()
    );
    assert_eq!(counts["shape"], json!(u64s(&[5])));
}

#[test]
fn info_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.zarr");
    let (ok, _, err) = info(&[missing.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("does not exist"), "{err}");
    std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    let (ok, _, err) = info(&[dir.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("is not a Zarr store"), "{err}");
    let (ok, _, err) = info(&[dir.path().join("notes.txt").to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("not a directory"), "{err}");
    let (ok, _, err) = info(&["gs://bucket/x.zarr"]);
    assert!(!ok);
    assert!(err.contains("unsupported scheme"), "{err}");
}

#[test]
fn info_shows_a_root_array_and_stores_without_a_root_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::filesystem(dir.path()).unwrap();
    array::ones::<f64>(&[3], [3])
        .unwrap()
        .to_zarr(&store, "", &ToZarrOptions::default())
        .unwrap();
    let (ok, out, err) = info(&[dir.path().to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.starts_with("/ (array, v3)"), "{out}");

    // An array whose parent groups were never written (older writers): shown under the root.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::filesystem(dir.path()).unwrap();
    array::ones::<f64>(&[3], [3])
        .unwrap()
        .to_zarr(&store, "a/b", &ToZarrOptions::default())
        .unwrap();
    store.erase("zarr.json").unwrap();
    store.erase("a/zarr.json").unwrap();
    let (ok, out, err) = info(&["--json", dir.path().to_str().unwrap()]);
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["root"]["implicit"], true);
    assert_eq!(doc["root"]["children"][0]["name"], "a/b");
}
