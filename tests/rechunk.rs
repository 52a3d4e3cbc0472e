//! Rechunking stores: results equal the source for random shapes, chunks, dtypes, formats and
//! budgets under both executors; multi-stage plans; groups by dimension name; every error path
//! leaves the source untouched; the target is published only when complete; and a rechunk killed
//! at any moment and resumed gives the same bytes as an uninterrupted one.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use chunkflow::array::DType;
use chunkflow::prelude::*;
use chunkflow::rechunk::{RechunkOptions, TargetChunks, plan_rechunk, rechunk};
use chunkflow::store::{
    ArraySpec, Store, ZarrArray, ZarrFormat, consolidate_metadata, create_group, group_attributes,
    list_children, node_kind,
};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;

fn fill<T: chunkflow::array::Element + num_traits::NumCast>(shape: &[u64]) -> ArrayD<T> {
    let mut i = 0u64;
    ArrayD::from_shape_fn(
        IxDyn(&shape.iter().map(|&s| s as usize).collect::<Vec<_>>()),
        |_| {
            i += 1;
            T::from(i % 97).unwrap()
        },
    )
}

fn make_source(store: &Store, path: &str, spec: &ArraySpec) -> ZarrArray {
    let a = ZarrArray::create(store, path, spec, false).unwrap();
    let region: Vec<_> = spec.shape.iter().map(|&s| 0..s).collect();
    match spec.dtype {
        DType::F32 => a
            .write_region(&region, fill::<f32>(&spec.shape).view())
            .unwrap(),
        DType::I16 => a
            .write_region(&region, fill::<i16>(&spec.shape).view())
            .unwrap(),
        DType::U8 => a
            .write_region(&region, fill::<u8>(&spec.shape).view())
            .unwrap(),
        _ => a
            .write_region(&region, fill::<f64>(&spec.shape).view())
            .unwrap(),
    }
    a
}

fn same_data(a: &ZarrArray, b: &ZarrArray) -> bool {
    match a.dtype() {
        DType::F32 => a.read_all::<f32>().unwrap() == b.read_all::<f32>().unwrap(),
        DType::I16 => a.read_all::<i16>().unwrap() == b.read_all::<i16>().unwrap(),
        DType::U8 => a.read_all::<u8>().unwrap() == b.read_all::<u8>().unwrap(),
        _ => a.read_all::<f64>().unwrap() == b.read_all::<f64>().unwrap(),
    }
}

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

fn case() -> impl Strategy<Value = (Vec<u64>, Vec<u64>, Vec<u64>, usize, bool, bool)> {
    proptest::collection::vec(1u64..24, 1..4).prop_flat_map(|shape| {
        let n = shape.len();
        let src = shape.iter().map(|&s| 1..=s).collect::<Vec<_>>();
        let dst = shape.iter().map(|&s| 1..=s).collect::<Vec<_>>();
        (
            Just(shape),
            src,
            dst,
            0usize..4,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(move |(shape, s, d, dt, v2, seq)| {
                assert_eq!(s.len(), n);
                (shape, s, d, dt, v2, seq)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn rechunk_equals_source((shape, src_chunks, dst_chunks, dt, v2, seq) in case(), mem_factor in 1u64..8) {
        let dtype = [DType::F32, DType::I16, DType::U8, DType::F64][dt];
        let format = if v2 { ZarrFormat::V2 } else { ZarrFormat::V3 };
        let store = Store::memory();
        let spec = ArraySpec::new(shape.clone(), src_chunks.clone(), dtype).with_format(format);
        let src = make_source(&store, "src", &spec);
        let before = snapshot(&store);
        let item = dtype.itemsize() as u64;
        let biggest = src_chunks.iter().product::<u64>().max(dst_chunks.iter().product::<u64>()) * item;
        let mut options = RechunkOptions::new(biggest * mem_factor + 1);
        options.temp = Some(Store::memory());
        options.workers = if seq { 1 } else { 2 };
        let sizes = TargetChunks::Sizes(dst_chunks.iter().map(|&c| Some(c)).collect());
        let r = rechunk(&store, "src", &sizes, &store, "dst", &options).unwrap();
        let exec = if seq {
            ComputeOptions::default().executor(Sequential)
        } else {
            ComputeOptions::default().executor(Threaded::new(2).with_memory_limit(options.max_mem))
        };
        r.execute_with(&exec).unwrap();
        let dst = ZarrArray::open(&store, "dst").unwrap();
        prop_assert_eq!(dst.chunk_shape(), dst_chunks.as_slice());
        prop_assert_eq!(dst.format(), format);
        prop_assert!(same_data(&src, &dst));
        // The source's keys are untouched; only dst keys were added.
        let after = snapshot(&store);
        for (k, v) in &before {
            prop_assert_eq!(after.get(k), Some(v));
        }
        prop_assert!(after.keys().all(|k| before.contains_key(k) || k.starts_with("dst")));
        prop_assert!(options.temp.as_ref().unwrap().list("").unwrap().is_empty(), "intermediates removed");
    }
}

#[test]
fn multistage_plans_run_and_match() {
    let store = Store::memory();
    // A geometry where rechunker itself picks two stages (1 MB per task, 128 kB minimum).
    let spec = ArraySpec::new(vec![1024, 32, 64], vec![2, 32, 64], DType::F32);
    let src = make_source(&store, "src", &spec);
    // Each task's share is max_mem less a source and two target chunks (16 kB each).
    let mut options = RechunkOptions::new(1_000_000 + 3 * 16384);
    options.min_mem = Some(128_000);
    options.temp = Some(Store::memory());
    options.workers = 1;
    let plan = plan_rechunk(
        &store,
        "src",
        &"1024,2,2".parse().unwrap(),
        &store,
        "dst",
        &options,
    )
    .unwrap();
    let stages = plan.arrays[0].plan.stages.len();
    assert!(stages >= 2, "expected a multi-stage plan, got {stages}");
    plan.prepare().unwrap().execute().unwrap();
    let dst = ZarrArray::open(&store, "dst").unwrap();
    assert!(same_data(&src, &dst));
    assert!(options.temp.unwrap().list("").unwrap().is_empty());
}

#[test]
fn groups_rechunk_by_dimension_name_and_keep_attributes() {
    let store = Store::memory();
    let mut attrs = serde_json::Map::new();
    attrs.insert("title".into(), "era5-like".into());
    create_group(&store, "", attrs, ZarrFormat::V2).unwrap();
    let tas = ArraySpec::new(vec![40, 6, 8], vec![1, 6, 8], DType::F32)
        .with_format(ZarrFormat::V2)
        .with_dimension_names(["time", "lat", "lon"])
        .with_attribute("units", "K");
    let time = ArraySpec::new(vec![40], vec![40], DType::F64)
        .with_format(ZarrFormat::V2)
        .with_dimension_names(["time"]);
    let src_tas = make_source(&store, "tas", &tas);
    let src_time = make_source(&store, "time", &time);
    consolidate_metadata(&store, "").unwrap();

    let target = Store::memory();
    let mut options = RechunkOptions::new(1 << 20);
    options.temp = Some(Store::memory());
    let chunks: TargetChunks = "time=40,lat=3".parse().unwrap();
    rechunk(&store, "", &chunks, &target, "", &options)
        .unwrap()
        .execute()
        .unwrap();

    let tas2 = ZarrArray::open(&target, "tas").unwrap();
    assert_eq!(
        tas2.chunk_shape(),
        &[40, 3, 8],
        "unnamed dims keep their chunks"
    );
    assert_eq!(tas2.dimension_names().unwrap(), ["time", "lat", "lon"]);
    assert_eq!(tas2.attributes()["units"], "K");
    assert_eq!(tas2.format(), ZarrFormat::V2);
    assert!(same_data(&src_tas, &tas2));
    let time2 = ZarrArray::open(&target, "time").unwrap();
    assert_eq!(time2.chunk_shape(), &[40]);
    assert!(same_data(&src_time, &time2));
    assert_eq!(group_attributes(&target, "").unwrap()["title"], "era5-like");
    assert!(list_children(&target, "").unwrap().consolidated);
}

#[test]
fn errors_are_clear_and_leave_the_source_untouched() {
    let store = Store::memory();
    let spec = ArraySpec::new(vec![20, 20], vec![20, 1], DType::F64);
    make_source(&store, "src", &spec);
    let before = snapshot(&store);
    let opts = |mem: u64| {
        let mut o = RechunkOptions::new(mem);
        o.temp = Some(Store::memory());
        o
    };
    let to = |s: &str| -> TargetChunks { s.parse().unwrap() };

    // Missing source.
    let err = plan_rechunk(
        &Store::memory(),
        "nope",
        &to("1,20"),
        &store,
        "dst",
        &opts(1 << 20),
    )
    .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    // Source chunk larger than max_mem.
    let err = plan_rechunk(&store, "src", &to("1,20"), &store, "dst", &opts(100)).unwrap_err();
    assert!(err.to_string().to_lowercase().contains("max_mem"), "{err}");
    // Bad chunk specs.
    assert!("a,b".parse::<TargetChunks>().is_err());
    assert!("0,4".parse::<TargetChunks>().is_err());
    assert!("time=4,20".parse::<TargetChunks>().is_err());
    let err = plan_rechunk(&store, "src", &to("4"), &store, "dst", &opts(1 << 20)).unwrap_err();
    assert!(err.to_string().contains("one per axis"), "{err}");
    let err =
        plan_rechunk(&store, "src", &to("time=4"), &store, "dst", &opts(1 << 20)).unwrap_err();
    assert!(err.to_string().contains("dimension names"), "{err}");

    // Existing target without overwrite.
    ZarrArray::create(&store, "taken", &spec, false).unwrap();
    let err = rechunk(&store, "src", &to("1,20"), &store, "taken", &opts(1 << 20))
        .err()
        .unwrap();
    assert!(err.to_string().contains("overwrite"), "{err}");

    // Corrupt source chunk: the error names it, the target is not published.
    let corrupt = Store::memory();
    let src = make_source(&corrupt, "src", &spec.clone().with_format(ZarrFormat::V3));
    let chunk_key = corrupt
        .list("src")
        .unwrap()
        .into_iter()
        .find(|k| k.contains("/c/"))
        .unwrap();
    corrupt.set(&chunk_key, b"garbage").unwrap();
    let before_corrupt = snapshot(&corrupt);
    let r = rechunk(
        &corrupt,
        "src",
        &to("1,20"),
        &corrupt,
        "dst",
        &opts(1 << 20),
    )
    .unwrap();
    let err = r.execute().unwrap_err();
    let msg = format!("{err} {:?}", std::error::Error::source(&err));
    assert!(msg.contains("chunk") && msg.contains("src"), "{msg}");
    assert!(
        node_kind(&corrupt, "dst").unwrap().is_none(),
        "an incomplete target is not published"
    );
    for (k, v) in &before_corrupt {
        assert_eq!(
            snapshot(&corrupt).get(k),
            Some(v),
            "source key {k} untouched"
        );
    }
    drop(src);

    for (k, v) in &before {
        assert_eq!(snapshot(&store).get(k), Some(v), "source key {k} untouched");
    }
}

#[test]
fn a_read_only_target_is_a_clear_error() {
    let store = Store::memory();
    let spec = ArraySpec::new(vec![10, 10], vec![10, 1], DType::F32);
    make_source(&store, "src", &spec);
    let before = snapshot(&store);
    let mut o = RechunkOptions::new(1 << 20);
    o.temp = Some(Store::memory());
    let target = Store::memory().read_only();
    let err = rechunk(&store, "src", &"1,10".parse().unwrap(), &target, "dst", &o)
        .err()
        .expect("a read-only target is refused");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert_eq!(snapshot(&store), before, "the source is untouched");
}

#[test]
fn the_target_appears_only_when_complete() {
    let store = Store::memory();
    let spec = ArraySpec::new(vec![30, 30], vec![30, 1], DType::F32);
    make_source(&store, "src", &spec);
    let mut o = RechunkOptions::new(1 << 20);
    o.temp = Some(Store::memory());
    let r = rechunk(&store, "src", &"1,30".parse().unwrap(), &store, "dst", &o).unwrap();
    assert!(node_kind(&store, "dst").unwrap().is_none());
    r.execute().unwrap();
    assert!(node_kind(&store, "dst").unwrap().is_some());
    assert!(store.get("dst/.chunkflow-rechunk.json").unwrap().is_none());
}

/// Bytes of every key under `dir`, by relative path.
fn tree(dir: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Compares two trees by key, naming the keys that differ (not dumping the bytes).
fn assert_same_tree(got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>, what: &str) {
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let differ: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        extra.is_empty() && missing.is_empty() && differ.is_empty(),
        "{what}: extra keys {extra:?}, missing keys {missing:?}, different bytes {differ:?}"
    );
}

#[test]
fn killed_and_resumed_equals_uninterrupted() {
    let bin = env!("CARGO_BIN_EXE_chunkflow");
    let dir = tempfile::tempdir().unwrap();
    let src_dir = dir.path().join("src.zarr");
    let source = Store::filesystem(&src_dir).unwrap();
    let spec =
        ArraySpec::new(vec![192, 48, 48], vec![1, 48, 48], DType::F32).with_format(ZarrFormat::V2);
    make_source(&source, "", &spec);
    let run = |dst: &std::path::Path, extra: &[&str]| {
        let mut cmd = Command::new(bin);
        cmd.args(["rechunk", src_dir.to_str().unwrap(), dst.to_str().unwrap()])
            .args(["--chunks", "192,8,8", "--max-mem", "1MB", "--threads", "2"])
            .args(extra);
        cmd
    };

    // The reference: one uninterrupted run.
    let reference_dir = dir.path().join("reference.zarr");
    let t = Instant::now();
    let status = run(&reference_dir, &[]).output().unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let full = t.elapsed();
    let reference = tree(&reference_dir);

    for (i, fraction) in [0.15, 0.4, 0.7].into_iter().enumerate() {
        let dst = dir.path().join(format!("killed-{i}.zarr"));
        let mut child = run(&dst, &[]).spawn().unwrap();
        std::thread::sleep(full.mul_f64(fraction));
        let _ = child.kill();
        child.wait().unwrap();
        let target = Store::filesystem(&dst).unwrap();
        let interrupted = target.get(".chunkflow-rechunk.json").unwrap().is_some();
        if interrupted {
            // Metadata is written after the last chunk, so a killed target opens as an array
            // only if it was killed while publishing, when every chunk is already there.
            if node_kind(&target, "").unwrap().is_some() {
                let mut done = tree(&dst);
                done.retain(|k, _| {
                    k != ".chunkflow-rechunk.json" && !k.contains(".chunkflow-tmp-")
                });
                assert_same_tree(
                    &done,
                    &reference,
                    "published before all chunks were written",
                );
            }
            let out = run(&dst, &["--resume"]).output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else if node_kind(&target, "").unwrap().is_none() {
            // Killed before it wrote anything (a fast run is mostly process start-up): there
            // is nothing to resume, so run it again.
            let out = run(&dst, &[]).output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_same_tree(
            &tree(&dst),
            &reference,
            &format!("kill at {fraction}, then resume"),
        );
    }
    // Resuming with nothing to resume is a clear error.
    let out = run(&reference_dir, &["--resume"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to resume"));
    // So is starting over an interrupted run without --resume or --overwrite.
    let dst = dir.path().join("leftover.zarr");
    let mut child = run(&dst, &[]).spawn().unwrap();
    std::thread::sleep(full.mul_f64(0.3));
    let _ = child.kill();
    child.wait().unwrap();
    if Store::filesystem(&dst)
        .unwrap()
        .get(".chunkflow-rechunk.json")
        .unwrap()
        .is_some()
    {
        let out = run(&dst, &[]).output().unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("resume"));
    }
}
