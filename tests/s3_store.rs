//! `s3://` stores (feature `s3`) against a real S3 API: scripts/s3-test.sh starts a moto server,
//! creates a bucket, exports the AWS_* variables and `CHUNKFLOW_S3_TEST_URL`
//! (`s3://BUCKET/PREFIX`), and runs these with `--include-ignored`. Every test works under its
//! own sub-prefix, so they run in parallel and never see each other's keys.
//!
//! The server tests are `#[ignore]`d; run with `--include-ignored` but without
//! `CHUNKFLOW_S3_TEST_URL` they panic rather than pass vacuously.
#![cfg(feature = "s3")]

use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use chunkflow::array::DType;
use chunkflow::rechunk::{RechunkOptions, rechunk};
use chunkflow::store::{
    ArraySpec, NodeKind, Store, StoreError, ZarrArray, ZarrFormat, consolidate_metadata,
    create_group, group_attributes, list_children, node_kind,
};
use ndarray::{ArrayD, IxDyn};
use serde_json::{Map, json};

/// The test URL; panics when unset so that `--include-ignored` can never pass vacuously.
fn base_url() -> String {
    match std::env::var("CHUNKFLOW_S3_TEST_URL") {
        Ok(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_string(),
        _ => panic!(
            "CHUNKFLOW_S3_TEST_URL is not set: these tests need an S3 server and bucket \
             (s3://BUCKET/PREFIX plus the AWS_* variables); run scripts/s3-test.sh"
        ),
    }
}

/// `s3://BUCKET` of the test URL.
fn bucket_url() -> String {
    let base = base_url();
    let rest = base
        .strip_prefix("s3://")
        .expect("CHUNKFLOW_S3_TEST_URL is an s3:// URL");
    format!("s3://{}", rest.split('/').next().unwrap())
}

/// A fresh prefix under the test URL: its URL, its path inside the bucket, and the open store.
fn fresh(name: &str) -> (String, String, Store) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let url = format!("{}/{name}-{}-{nanos}", base_url(), std::process::id());
    let in_bucket = url
        .strip_prefix(&bucket_url())
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    let store = Store::open(&url).unwrap_or_else(|e| panic!("opening {url}: {e}"));
    (url, in_bucket, store)
}

/// 1, 2, 3, ... in C order.
fn iota(shape: &[u64]) -> ArrayD<f32> {
    let shape: Vec<usize> = shape.iter().map(|&s| s as usize).collect();
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(&shape), (1..=n).map(|v| v as f32).collect()).unwrap()
}

fn write_all(array: &ZarrArray, data: &ArrayD<f32>) {
    let region: Vec<Range<u64>> = array.shape().iter().map(|&s| 0..s).collect();
    array.write_region(&region, data.view()).unwrap();
}

fn slice(data: &ArrayD<f32>, region: &[Range<u64>]) -> ArrayD<f32> {
    let info: Vec<ndarray::SliceInfoElem> = region
        .iter()
        .map(|r| ndarray::SliceInfoElem::from(r.start as usize..r.end as usize))
        .collect();
    data.slice(info.as_slice()).to_owned()
}

#[test]
fn s3_urls_are_checked_before_any_request() {
    for bad in [
        "s3://",
        "s3:///x.zarr",
        "s3://bucket/x?region=eu",
        "s3://b/../x",
    ] {
        let err = Store::open(bad).unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidPath { .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
#[ignore = "needs an S3 server: run scripts/s3-test.sh"]
fn arrays_round_trip_v2_v3_and_sharded_under_the_prefix() {
    let (url, in_bucket, store) = fresh("round-trip");
    assert_eq!(store.description(), url);
    let shape = [10u64, 7];
    let data = iota(&shape);
    let specs = [
        (
            "v2",
            ArraySpec::new(shape.to_vec(), vec![4, 3], DType::F32).with_format(ZarrFormat::V2),
        ),
        ("v3", ArraySpec::new(shape.to_vec(), vec![4, 3], DType::F32)),
        (
            "sharded",
            ArraySpec::new(shape.to_vec(), vec![2, 3], DType::F32).with_shard(vec![4, 6]),
        ),
    ];
    for (name, spec) in &specs {
        let spec = spec.clone().with_dimension_names(["y", "x"]);
        let array = ZarrArray::create(&store, name, &spec, false).unwrap();
        // Chunk by chunk (write grid), then read back regions that straddle chunks.
        for i in 0..array.write_grid_shape()[0] {
            for j in 0..array.write_grid_shape()[1] {
                let region = array.write_chunk_region(&[i, j]).unwrap();
                array
                    .write_chunk(&[i, j], slice(&data, &region).view())
                    .unwrap();
            }
        }
        for region in [vec![0..10, 0..7], vec![3..9, 2..5], vec![9..10, 6..7]] {
            assert_eq!(
                array.read_region::<f32>(&region).unwrap(),
                slice(&data, &region),
                "{name}"
            );
        }
        // A fresh handle (new store, new runtime) reads the same metadata and data.
        let again = ZarrArray::open(&Store::open(&url).unwrap(), name).unwrap();
        assert_eq!(again.shape(), &shape);
        assert_eq!(again.dimension_names().unwrap(), ["y", "x"], "{name}");
        assert_eq!(again.read_all::<f32>().unwrap(), data, "{name}");
        assert!(again.chunk_exists(&[0, 0]).unwrap());
    }
    // Unwritten chunks read as the fill value; erased chunks too.
    let sparse = ZarrArray::create(
        &store,
        "sparse",
        &ArraySpec::new(vec![4, 4], vec![2, 2], DType::F32),
        false,
    )
    .unwrap();
    sparse
        .write_chunk(&[1, 1], ArrayD::from_elem(IxDyn(&[2, 2]), 5.0f32).view())
        .unwrap();
    assert!(!sparse.chunk_exists(&[0, 0]).unwrap());
    let back = sparse.read_all::<f32>().unwrap();
    assert_eq!((back[[0, 0]], back[[3, 3]]), (0.0, 5.0));
    sparse.erase_chunk(&[1, 1]).unwrap();
    assert_eq!(sparse.read_all::<f32>().unwrap().sum(), 0.0);

    // The prefix is honoured: the store sees relative keys, the bucket sees them under it.
    let keys = store.list("").unwrap();
    for expected in [
        "v2/.zarray",
        "v2/.zattrs",
        "v2/0.0",
        "v3/zarr.json",
        "v3/c/0/0",
        "sharded/c/0/0",
    ] {
        assert!(
            keys.contains(&expected.to_string()),
            "{expected} not in {keys:?}"
        );
    }
    assert!(keys.iter().all(|k| !k.starts_with(&in_bucket)), "{keys:?}");
    let bucket = Store::open(&bucket_url()).unwrap();
    let in_bucket_keys = bucket.list(&in_bucket).unwrap();
    assert_eq!(in_bucket_keys.len(), keys.len());
    assert!(
        in_bucket_keys
            .iter()
            .all(|k| k.starts_with(&format!("{in_bucket}/")))
    );
    assert_eq!(
        bucket.get(&format!("{in_bucket}/v3/zarr.json")).unwrap(),
        store.get("v3/zarr.json").unwrap()
    );
    // Raw key operations.
    store.set("raw/blob", b"hello").unwrap();
    assert_eq!(store.size("raw/blob").unwrap(), Some(5));
    assert_eq!(
        store.get("raw/blob").unwrap().as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(store.get("raw/none").unwrap(), None);
    assert_eq!(store.size("raw/none").unwrap(), None);
    store.erase("raw/blob").unwrap();
    store.erase("raw/blob").unwrap(); // erasing a missing key is no error
    assert_eq!(store.get("raw/blob").unwrap(), None);
    store.erase_prefix("").unwrap();
    assert!(store.list("").unwrap().is_empty());
    assert!(bucket.list(&in_bucket).unwrap().is_empty());
}

#[test]
#[ignore = "needs an S3 server: run scripts/s3-test.sh"]
fn groups_listing_and_consolidated_metadata() {
    let (url, _, store) = fresh("groups");
    for (root, format) in [("g2", ZarrFormat::V2), ("g3", ZarrFormat::V3)] {
        let mut attrs = Map::new();
        attrs.insert("title".into(), json!(format!("group {root}")));
        create_group(&store, root, attrs.clone(), format).unwrap();
        create_group(&store, &format!("{root}/sub"), Map::new(), format).unwrap();
        for name in ["a", "b", "sub/c"] {
            let spec = ArraySpec::new(vec![6], vec![4], DType::F32).with_format(format);
            let a = ZarrArray::create(&store, &format!("{root}/{name}"), &spec, false).unwrap();
            write_all(&a, &iota(&[6]));
        }
        assert_eq!(
            node_kind(&store, root).unwrap().unwrap(),
            (NodeKind::Group, format)
        );
        assert_eq!(group_attributes(&store, root).unwrap(), attrs);
        let listed = list_children(&store, root).unwrap();
        assert_eq!(listed.arrays, ["a", "b"]);
        assert_eq!(listed.groups, ["sub"]);
        assert!(!listed.consolidated);

        consolidate_metadata(&store, root).unwrap();
        let key = match format {
            ZarrFormat::V2 => format!("{root}/.zmetadata"),
            ZarrFormat::V3 => format!("{root}/zarr.json"),
        };
        let doc: serde_json::Value =
            serde_json::from_slice(&store.get(&key).unwrap().unwrap()).unwrap();
        let text = doc.to_string();
        assert!(text.contains("sub/c"), "{key}: {text}");
        let reopened = Store::open(&url).unwrap();
        let consolidated = list_children(&reopened, root).unwrap();
        assert!(consolidated.consolidated);
        assert_eq!(
            (consolidated.arrays, consolidated.groups),
            (listed.arrays, listed.groups)
        );
    }
    assert!(
        store
            .list("g2")
            .unwrap()
            .contains(&"g2/sub/c/.zarray".to_string())
    );
    assert!(
        store
            .list("g3")
            .unwrap()
            .contains(&"g3/sub/c/zarr.json".to_string())
    );
}

#[test]
#[ignore = "needs an S3 server: run scripts/s3-test.sh"]
fn rechunk_from_s3_to_s3_and_to_a_local_directory() {
    let (_, _, source) = fresh("rechunk-src");
    let (target_url, _, target) = fresh("rechunk-dst");
    let shape = [24u64, 16];
    let data = iota(&shape);
    let spec =
        ArraySpec::new(shape.to_vec(), vec![1, 16], DType::F32).with_dimension_names(["t", "x"]);
    create_group(&source, "", Map::new(), ZarrFormat::V3).unwrap();
    write_all(
        &ZarrArray::create(&source, "air", &spec, false).unwrap(),
        &data,
    );
    let spec2 = spec.clone().with_format(ZarrFormat::V2);
    write_all(
        &ZarrArray::create(&source, "v2", &spec2, false).unwrap(),
        &data,
    );

    // S3 -> S3 (another prefix), one array; a small budget forces an intermediate.
    let mut options = RechunkOptions::new(4 << 10);
    options.workers = 4;
    rechunk(
        &source,
        "air",
        &"24,2".parse().unwrap(),
        &target,
        "air",
        &options,
    )
    .unwrap()
    .execute()
    .unwrap();
    let out = ZarrArray::open(&Store::open(&target_url).unwrap(), "air").unwrap();
    assert_eq!(out.chunk_shape(), &[24, 2]);
    assert_eq!(out.dimension_names().unwrap(), ["t", "x"]);
    assert_eq!(out.read_all::<f32>().unwrap(), data);
    // No progress file or intermediates are left behind in the target.
    let left: Vec<String> = target.list("").unwrap();
    assert!(left.iter().all(|k| k.starts_with("air/")), "{left:?}");

    // S3 -> S3 within one store.
    rechunk(
        &source,
        "v2",
        &"8,8".parse().unwrap(),
        &source,
        "v2-8x8",
        &RechunkOptions::new(1 << 20),
    )
    .unwrap()
    .execute()
    .unwrap();
    let out = ZarrArray::open(&source, "v2-8x8").unwrap();
    assert_eq!(
        (out.format(), out.chunk_shape()),
        (ZarrFormat::V2, &[8u64, 8][..])
    );
    assert_eq!(out.read_all::<f32>().unwrap(), data);

    // S3 -> a local directory, the whole group by dimension name.
    let dir = tempfile::tempdir().unwrap();
    let local = Store::filesystem(dir.path().join("out.zarr")).unwrap();
    rechunk(
        &source,
        "",
        &"t=6".parse().unwrap(),
        &local,
        "",
        &RechunkOptions::new(1 << 20),
    )
    .unwrap()
    .execute()
    .unwrap();
    for name in ["air", "v2"] {
        let out = ZarrArray::open(&local, name).unwrap();
        assert_eq!(out.chunk_shape(), &[6, 16], "{name}");
        assert_eq!(out.read_all::<f32>().unwrap(), data, "{name}");
    }
    assert!(dir.path().join("out.zarr/air/zarr.json").is_file());
    assert!(
        list_children(&local, "")
            .unwrap()
            .arrays
            .contains(&"v2-8x8".to_string())
    );
}

#[test]
#[ignore = "needs an S3 server: run scripts/s3-test.sh"]
fn errors_are_clear() {
    let _ = base_url(); // the server's AWS_* environment must be there
    // A bucket that does not exist fails at open, naming the bucket.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let missing = format!("chunkflow-missing-{nanos}");
    let url = format!("s3://{missing}/data.zarr");
    let err = Store::open(&url).unwrap_err();
    let msg = err.to_string();
    eprintln!("missing bucket: {msg}");
    assert!(matches!(err, StoreError::OpenFailed { .. }), "{msg}");
    assert!(
        msg.contains(&missing) && msg.contains("does not exist"),
        "{msg}"
    );

    // No array at a path of an existing store.
    let (_, _, store) = fresh("errors");
    let err = ZarrArray::open(&store, "nope").unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    // An existing array is not silently replaced.
    let spec = ArraySpec::new(vec![4], vec![2], DType::F32);
    ZarrArray::create(&store, "a", &spec, false).unwrap();
    let err = ZarrArray::create(&store, "a", &spec, false).unwrap_err();
    assert!(matches!(err, StoreError::NodeExists { .. }), "{err}");
}

#[test]
#[ignore = "needs an S3 server: run scripts/s3-test.sh"]
fn stores_work_from_threads_and_from_async_code() {
    let (url, _, store) = fresh("async");
    let spec = ArraySpec::new(vec![16, 16], vec![2, 16], DType::F32);
    let array = ZarrArray::create(&store, "a", &spec, false).unwrap();
    let data = iota(&[16, 16]);
    // Eight plain threads writing their own chunks at once share the store's runtime.
    std::thread::scope(|s| {
        for i in 0..8u64 {
            let (array, data) = (&array, &data);
            s.spawn(move || {
                let region = array.write_chunk_region(&[i, 0]).unwrap();
                array
                    .write_chunk(&[i, 0], slice(data, &region).view())
                    .unwrap();
            });
        }
    });
    assert_eq!(array.read_all::<f32>().unwrap(), data);

    // Inside a current-thread runtime (where tokio's block_on would panic): open, read, write
    // and drop the store.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url2 = url.clone();
    let expected = data.clone();
    rt.block_on(async move {
        let store = Store::open(&url2).unwrap();
        let a = ZarrArray::open(&store, "a").unwrap();
        assert_eq!(a.read_all::<f32>().unwrap(), expected);
        store.set("from-async", b"1").unwrap();
        drop(a);
        drop(store); // the last handle: its runtime is shut down without blocking
    });
    assert_eq!(store.get("from-async").unwrap().as_deref(), Some(&b"1"[..]));

    // From tasks on a multi-thread runtime, and from spawn_blocking.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (s1, s2) = (store.clone(), store.clone());
    rt.block_on(async move {
        let t = tokio::spawn(async move { s1.get("from-async").unwrap() });
        let b = tokio::task::spawn_blocking(move || s2.list("").unwrap());
        assert_eq!(t.await.unwrap().as_deref(), Some(&b"1"[..]));
        assert!(b.await.unwrap().contains(&"a/zarr.json".to_string()));
    });
}
