//! `chunkflow verify STORE` through the built binary, and the library's `verify_store`.
//!
//! - A complete store (a group with arrays at two depths, v2 and v3) exits 0.
//! - A deleted chunk makes it exit 2, naming the array and the chunk; `--json` lists it.
//! - A rank that never ran: `--ranks/--dims` names it as the rank to re-run.
//! - All-fill-value chunks are reported missing, with the note that says why.
//! - A path that is not a store exits 1 with an error.

use std::path::Path;
use std::process::{Command, Output};

use chunkflow::array::{self, Array, ToZarrOptions};
use chunkflow::partition::{
    SplitDim, VerifyOptions, initialize_array, store_partitioner, verify_store, write_partition,
};
use chunkflow::store::{Store, ZarrArray, ZarrFormat};
use chunkflow::{ComputeOptions, Sequential};
use ndarray::{ArrayD, IxDyn};
use serde_json::Value;

fn verify(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chunkflow"))
        .arg("verify")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ramp(shape: &[usize], chunks: &[usize]) -> Array<f32> {
    let data = ArrayD::from_shape_fn(IxDyn(shape), |ix| {
        1.0 + ndarray::Dimension::slice(&ix)
            .iter()
            .fold(0usize, |a, &i| a * 31 + i) as f32
    });
    array::from_ndarray(data, chunks.to_vec()).unwrap()
}

/// A store with `t2m` (v3, 3-d) at the root and `sub/mask` (v2) in a group.
fn complete_store(dir: &Path) -> Store {
    let store = Store::filesystem(dir).unwrap();
    ramp(&[6, 4, 5], &[2, 2, 5])
        .to_zarr(
            &store,
            "t2m",
            &ToZarrOptions::default().with_dimension_names(["time", "lat", "lon"]),
        )
        .unwrap();
    ramp(&[4, 5], &[2, 3])
        .to_zarr(
            &store,
            "sub/mask",
            &ToZarrOptions::default()
                .with_format(ZarrFormat::V2)
                .with_dimension_names(["lat", "lon"]),
        )
        .unwrap();
    store
}

#[test]
fn a_complete_store_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    complete_store(dir.path());
    let out = verify(&[dir.path().to_str().unwrap()]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(": complete (2 arrays, 0 incomplete, 0 missing)"),
        "{text}"
    );
    assert!(text.contains("t2m: complete (6 chunks)"), "{text}");
    assert!(text.contains("sub/mask: complete (4 chunks)"), "{text}");

    let out = verify(&[dir.path().to_str().unwrap(), "--json"]);
    assert!(out.status.success());
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["complete"], true);
    assert_eq!(doc["missing"], 0);
    assert_eq!(doc["arrays"].as_array().unwrap().len(), 2);
}

#[test]
fn a_deleted_chunk_is_named_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = complete_store(dir.path());
    ZarrArray::open(&store, "t2m")
        .unwrap()
        .erase_chunk(&[1, 0, 0])
        .unwrap();
    std::fs::remove_file(dir.path().join("sub/mask/1.1")).unwrap();

    let out = verify(&[dir.path().to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("INCOMPLETE (2 arrays, 2 incomplete, 2 missing)"),
        "{text}"
    );
    assert!(text.contains("t2m: 1 of 6 chunks missing"), "{text}");
    assert!(text.contains("missing [1, 0, 0]"), "{text}");
    assert!(text.contains("sub/mask: 1 of 4 chunks missing"), "{text}");
    assert!(text.contains("missing [1, 1]"), "{text}");
    assert!(
        text.contains("fill value"),
        "the all-fill caveat is shown: {text}"
    );

    let out = verify(&[dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["complete"], false);
    assert_eq!(doc["missing"], 2);
    let t2m = &doc["arrays"].as_array().unwrap()[1];
    assert_eq!(t2m["path"], "t2m");
    assert_eq!(
        t2m["missing_boxes"],
        serde_json::json!([[[1, 2], [0, 1], [0, 1]]])
    );
}

#[test]
fn a_rank_that_never_ran_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::filesystem(dir.path()).unwrap();
    let x = ramp(&[40, 12], &[4, 3]); // 10 x 4 chunks
    initialize_array(
        &x,
        &store,
        "x",
        &ToZarrOptions::default().with_dimension_names(["time", "lon"]),
    )
    .unwrap();
    let split = [SplitDim::from("time"), SplitDim::from("lon")];
    let compute = ComputeOptions::default().executor(Sequential);
    for rank in (0..7).filter(|&r| r != 5) {
        write_partition(&x, &store, "x", &split, 7, rank, &compute).unwrap();
    }
    let zarr = ZarrArray::open(&store, "x").unwrap();
    let rank5 = store_partitioner(&zarr, &split, 7)
        .unwrap()
        .partition(5)
        .unwrap();

    let out = verify(&[
        dir.path().to_str().unwrap(),
        "--ranks",
        "7",
        "--dims",
        "time,lon",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains(&format!("x: {} of 40 chunks missing", rank5.num_blocks())),
        "{text}"
    );
    assert!(
        text.contains("ranks to re-run (of 7, split on time,lon): 5"),
        "{text}"
    );

    // Re-running rank 5 completes the store.
    write_partition(&x, &store, "x", &split, 7, 5, &compute).unwrap();
    let out = verify(&[
        dir.path().to_str().unwrap(),
        "--ranks",
        "7",
        "--dims",
        "time,lon",
    ]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn library_report_maps_missing_chunks_to_ranks() {
    let store = Store::memory();
    let x = ramp(&[8, 6], &[2, 3]); // 4 x 2 chunks
    x.to_zarr(
        &store,
        "a",
        &ToZarrOptions::default().with_dimension_names(["y", "x"]),
    )
    .unwrap();
    // An array without the split dim belongs to rank 0.
    ramp(&[5], &[5])
        .to_zarr(
            &store,
            "b",
            &ToZarrOptions::default().with_dimension_names(["z"]),
        )
        .unwrap();
    let a = ZarrArray::open(&store, "a").unwrap();
    for idx in [[2u64, 0], [2, 1], [3, 1]] {
        a.erase_chunk(&idx).unwrap();
    }
    ZarrArray::open(&store, "b")
        .unwrap()
        .erase_chunk(&[0])
        .unwrap();
    let options = VerifyOptions {
        split: vec!["y".into()],
        ranks: Some(4),
        ..VerifyOptions::default()
    };
    let report = verify_store(&store, &options).unwrap();
    assert!(!report.is_complete());
    assert_eq!(report.missing(), 4);
    let ra = &report.arrays[0];
    assert_eq!(ra.path, "a");
    assert_eq!(ra.missing_boxes, vec![vec![2..3, 0..2], vec![3..4, 1..2]]);
    assert_eq!(ra.ranks_to_rerun, Some(vec![2, 3]));
    assert_eq!(report.arrays[1].ranks_to_rerun, Some(vec![0]));
    assert_eq!(report.ranks_to_rerun(), Some(vec![0, 2, 3]));
    // Split dims by axis index make no sense across arrays.
    let bad = VerifyOptions {
        split: vec![SplitDim::Axis(0)],
        ranks: Some(2),
        ..VerifyOptions::default()
    };
    assert!(verify_store(&store, &bad).is_err());
}

#[test]
fn all_fill_chunks_are_reported_with_the_caveat() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::filesystem(dir.path()).unwrap();
    array::zeros::<f64>(&[4], [2])
        .unwrap()
        .to_zarr(&store, "z", &ToZarrOptions::default())
        .unwrap();
    let out = verify(&[dir.path().to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("z: 2 of 2 chunks missing"), "{text}");
    assert!(text.contains("missing [0..2]"), "{text}");
    assert!(
        text.contains("entirely the fill value are never stored"),
        "{text}"
    );
}

#[test]
fn not_a_store_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = verify(&[dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a Zarr store"));
    let out = verify(&[dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a Zarr store"));
    // --ranks needs --dims.
    let out = verify(&[dir.path().to_str().unwrap(), "--ranks", "3"]);
    assert_eq!(out.status.code(), Some(2)); // clap's usage error
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dims"));
}
