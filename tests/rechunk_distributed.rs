//! Distributed rechunks: ranks' shares of each stage are disjoint and cover every chunk once
//! (properties over random geometries); multi-stage plans run rank by rank (ranks as threads,
//! concurrently) give the source's data; stages and finalize refuse to run on incomplete
//! input; re-run ranks resume; SLURM batch scripts are well formed.

use std::collections::BTreeMap;
use std::path::Path;

use chunkflow::array::DType;
use chunkflow::rechunk::distributed::slurm::{
    RankCommand, SlurmOptions, StageJob, driver_script, parse_job_records, stage_script,
    write_scripts,
};
use chunkflow::rechunk::distributed::{
    CopyKind, DistributedError, DistributedRechunk, FinalizeOutcome, RankOptions, RankOutcome,
    StageCopy, distributed_stages,
};
use chunkflow::rechunk::{ArrayRef, RechunkOptions, RechunkPlan, plan_rechunk};
use chunkflow::store::{ArraySpec, Store, ZarrArray, ZarrFormat, create_group};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;

fn copy_of(shape: Vec<u64>, target_chunks: Vec<u64>, grid: Vec<u64>) -> StageCopy {
    let at = |path: &str| ArrayRef {
        store: "/data".into(),
        path: path.into(),
    };
    StageCopy {
        array: String::new(),
        plan_stage: 0,
        kind: CopyKind::Direct,
        source: at("a"),
        target: at("b"),
        shape,
        target_chunks,
        grid,
        from_source: true,
        to_target: true,
    }
}

/// Every target chunk's owner among `ranks`, checking each rank's share is aligned.
fn owners(copy: &StageCopy, ranks: usize) -> Vec<Vec<usize>> {
    let grid: Vec<usize> = copy
        .shape
        .iter()
        .zip(&copy.target_chunks)
        .map(|(&s, &c)| s.div_ceil(c) as usize)
        .collect();
    let total: usize = grid.iter().product();
    let mut owner: Vec<Vec<usize>> = vec![Vec::new(); total];
    for rank in 0..ranks {
        let share = copy.share(ranks, rank).unwrap();
        let region = share.region_u64();
        if share.is_idle() {
            assert!(region.iter().all(|r| r.is_empty()));
            continue;
        }
        let mut lo = Vec::new();
        let mut hi = Vec::new();
        for (axis, r) in region.iter().enumerate() {
            let (c, s) = (copy.target_chunks[axis], copy.shape[axis]);
            assert_eq!(r.start % c, 0, "share {region:?} starts off the chunk grid");
            assert!(
                r.end % c == 0 || r.end == s,
                "share {region:?} ends off the grid"
            );
            lo.push((r.start / c) as usize);
            hi.push(r.end.div_ceil(c) as usize);
        }
        let mut index = lo.clone();
        'outer: loop {
            let flat = index
                .iter()
                .zip(&grid)
                .fold(0usize, |acc, (&i, &n)| acc * n + i);
            owner[flat].push(rank);
            let mut axis = index.len();
            loop {
                if axis == 0 {
                    break 'outer;
                }
                axis -= 1;
                index[axis] += 1;
                if index[axis] < hi[axis] {
                    break;
                }
                index[axis] = lo[axis];
            }
        }
    }
    owner
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the geometry and the number of ranks: every target chunk has exactly one rank,
    /// and as many ranks get work as there are blocks (up to the number of ranks).
    #[test]
    fn shares_are_disjoint_covering_and_aligned(
        dims in prop::collection::vec((1u64..40, 1u64..9, 1u64..20), 1..4),
        ranks in 1usize..24,
    ) {
        let shape: Vec<u64> = dims.iter().map(|d| d.0).collect();
        let chunks: Vec<u64> = dims.iter().map(|d| d.1.min(d.0)).collect();
        let grid: Vec<u64> = dims.iter().map(|d| d.2).collect();
        let copy = copy_of(shape, chunks, grid);
        for (i, o) in owners(&copy, ranks).iter().enumerate() {
            prop_assert_eq!(o.len(), 1, "chunk {} has owners {:?}", i, o);
        }
        let busy = (0..ranks).filter(|&r| !copy.share(ranks, r).unwrap().is_idle()).count();
        prop_assert_eq!(busy, ranks.min(copy.num_blocks()));
    }
}

#[test]
fn shares_follow_the_plan_blocks_not_single_chunks() {
    // Blocks of 8 elements (4 chunks of 2) along a 32-long axis: 4 blocks, so 4 busy ranks of 6.
    let copy = copy_of(vec![32], vec![2], vec![7]);
    assert_eq!(copy.blocks().unwrap().to_string(), "((8, 8, 8, 8),)");
    let shares: Vec<_> = (0..6).map(|r| copy.share(6, r).unwrap()).collect();
    assert_eq!(shares.iter().filter(|s| !s.is_idle()).count(), 4);
    assert_eq!(shares[0].region().to_vec(), vec![0..8usize]);
    assert!(copy.share(6, 6).is_err(), "rank out of range");
    assert!(copy.share(0, 0).is_err(), "no ranks");
}

fn fill(shape: &[u64]) -> ArrayD<f32> {
    let mut i = 0u32;
    ArrayD::from_shape_fn(
        IxDyn(&shape.iter().map(|&s| s as usize).collect::<Vec<_>>()),
        |_| {
            i += 1;
            (i % 1013) as f32 * 0.5
        },
    )
}

fn make_source(store: &Store, path: &str, spec: &ArraySpec) -> ZarrArray {
    let a = ZarrArray::create(store, path, spec, false).unwrap();
    let region: Vec<_> = spec.shape.iter().map(|&s| 0..s).collect();
    a.write_region(&region, fill(&spec.shape).view()).unwrap();
    a
}

/// A source of 256 x 16 x 16 float32 chunked (1, 16, 16) and a plan to (256, 2, 2) that goes
/// through two plan stages, each with an intermediate array.
fn two_stage_plan(dir: &Path, max_mem: u64) -> (ZarrArray, RechunkPlan) {
    let source = Store::filesystem(dir.join("src.zarr")).unwrap();
    let spec = ArraySpec::new(vec![256, 16, 16], vec![1, 16, 16], DType::F32);
    let src = match ZarrArray::open(&source, "") {
        Ok(a) => a,
        Err(_) => make_source(&source, "", &spec),
    };
    let target = Store::filesystem(dir.join("dst.zarr")).unwrap();
    let mut options = RechunkOptions::new(max_mem);
    options.min_mem = Some(8000);
    options.workers = 1;
    let plan = plan_rechunk(
        &source,
        "",
        &"256,2,2".parse().unwrap(),
        &target,
        "",
        &options,
    )
    .unwrap();
    (src, plan)
}

fn rank_options() -> RankOptions {
    RankOptions {
        workers: 2,
        compute: None,
    }
}

/// Runs every rank of `stage` at once, as threads.
fn run_stage(run: &DistributedRechunk, stage: usize, ranks: usize) -> Vec<RankOutcome> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..ranks)
            .map(|rank| s.spawn(move || run.run_rank(stage, ranks, rank, &rank_options())))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap().outcome)
            .collect()
    })
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
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

#[test]
fn a_multistage_plan_run_by_concurrent_ranks_equals_the_source_and_the_in_process_run() {
    let dir = tempfile::tempdir().unwrap();
    let (src, plan) = two_stage_plan(dir.path(), 40_000);
    assert!(plan.arrays[0].plan.stages.len() >= 2, "{}", plan.to_json());
    let run = DistributedRechunk::new(plan).unwrap();
    let stages = run.stages().len();
    assert!(
        stages >= 3,
        "plan stages with intermediates give two stages each"
    );
    run.prepare().unwrap();
    // Nothing is visible at the target before finalize.
    let target = Store::filesystem(dir.path().join("dst.zarr")).unwrap();
    for stage in 1..=stages {
        assert!(ZarrArray::open(&target, "").is_err());
        let outcomes = run_stage(&run, stage, 5);
        assert!(outcomes.contains(&RankOutcome::Written));
    }
    assert_eq!(run.finalize().unwrap(), FinalizeOutcome::Published);
    assert_eq!(run.finalize().unwrap(), FinalizeOutcome::AlreadyPublished);
    let dst = ZarrArray::open(&target, "").unwrap();
    assert_eq!(dst.chunk_shape(), &[256, 2, 2]);
    assert_eq!(
        dst.read_all::<f32>().unwrap(),
        src.read_all::<f32>().unwrap()
    );
    assert!(
        !dir.path().join("dst.zarr.rechunk-tmp").exists(),
        "intermediates and markers are removed"
    );

    // The same rechunk in one process writes the same files, byte for byte.
    let single = Store::filesystem(dir.path().join("single.zarr")).unwrap();
    let source = Store::filesystem(dir.path().join("src.zarr")).unwrap();
    let mut options = RechunkOptions::new(40_000);
    options.min_mem = Some(8000);
    options.workers = 1;
    plan_rechunk(
        &source,
        "",
        &"256,2,2".parse().unwrap(),
        &single,
        "",
        &options,
    )
    .unwrap()
    .prepare()
    .unwrap()
    .execute()
    .unwrap();
    assert_eq!(
        files(&dir.path().join("dst.zarr")),
        files(&dir.path().join("single.zarr"))
    );
}

#[test]
fn stages_and_finalize_refuse_incomplete_input_and_name_the_missing_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let (_, plan) = two_stage_plan(dir.path(), 40_000);
    let run = DistributedRechunk::new(plan).unwrap();

    let err = run.run_rank(1, 4, 0, &rank_options()).unwrap_err();
    assert!(matches!(err, DistributedError::NotPrepared { .. }), "{err}");
    assert!(err.to_string().contains("--prepare"), "{err}");
    run.prepare().unwrap();

    let err = run.run_rank(0, 4, 0, &rank_options()).unwrap_err();
    assert!(matches!(err, DistributedError::NoSuchStage { .. }), "{err}");
    let err = run.run_rank(99, 4, 0, &rank_options()).unwrap_err();
    assert!(err.to_string().contains("there is no stage 99"), "{err}");
    assert!(
        run.run_rank(1, 4, 4, &rank_options()).is_err(),
        "rank >= ranks"
    );

    for rank in [0, 1, 3] {
        run.run_rank(1, 4, rank, &rank_options()).unwrap();
    }
    let err = run.run_rank(2, 4, 0, &rank_options()).unwrap_err();
    assert!(
        matches!(
            err,
            DistributedError::PreviousStageIncomplete {
                stage: 2,
                previous: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("rank 2 of 4 has not finished"),
        "{err}"
    );

    let err = run.finalize().unwrap_err();
    assert!(matches!(err, DistributedError::Incomplete { .. }), "{err}");
    assert!(err.to_string().contains("stage 1: rank 2 of 4"), "{err}");
    let target = Store::filesystem(dir.path().join("dst.zarr")).unwrap();
    assert!(ZarrArray::open(&target, "").is_err(), "nothing published");

    // A rank of another plan (another budget) is refused.
    let (_, other) = two_stage_plan(dir.path(), 60_000);
    let other = DistributedRechunk::new(other).unwrap();
    let err = other.run_rank(1, 4, 2, &rank_options()).unwrap_err();
    assert!(
        matches!(err, DistributedError::PlanMismatch { .. }),
        "{err}"
    );
}

#[test]
fn rerun_ranks_resume_and_idle_ranks_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let (src, plan) = two_stage_plan(dir.path(), 40_000);
    let run = DistributedRechunk::new(plan).unwrap();
    run.prepare().unwrap();
    let stages = run.stages().len();
    for stage in 1..stages {
        run_stage(&run, stage, 3);
    }
    // The last stage with many more ranks than blocks: the extra ones are idle.
    let last = &run.stages()[stages - 1];
    let ranks = last.copies[0].num_blocks() + 3;
    let outcomes = run_stage(&run, stages, ranks);
    assert_eq!(
        outcomes.iter().filter(|&&o| o == RankOutcome::Idle).count(),
        3
    );
    // A finished rank does nothing when run again.
    let again = run.run_rank(stages, ranks, 0, &rank_options()).unwrap();
    assert_eq!(again.outcome, RankOutcome::AlreadyDone);

    // A rank that died half-way: its marker and one of its chunks are gone. Re-running it
    // rewrites what is missing, and the result is the same bytes.
    let tmp = dir.path().join("dst.zarr.rechunk-tmp");
    let marker = tmp.join(format!(
        ".chunkflow-ranks/stage-{stages}/of-{ranks}/rank-0.json"
    ));
    assert!(marker.exists());
    let before = files(&dir.path().join("dst.zarr"));
    // Rank 0's share starts at the origin, so it owns the first chunk.
    let chunk = ["c/0/0/0", "0.0.0"]
        .into_iter()
        .find(|k| before.contains_key(*k))
        .expect("the first chunk is stored");
    std::fs::remove_file(&marker).unwrap();
    std::fs::remove_file(dir.path().join("dst.zarr").join(chunk)).unwrap();
    let report = run.run_rank(stages, ranks, 0, &rank_options()).unwrap();
    assert_eq!(report.outcome, RankOutcome::Written);
    assert_eq!(files(&dir.path().join("dst.zarr")), before);

    run.finalize().unwrap();
    let dst =
        ZarrArray::open(&Store::filesystem(dir.path().join("dst.zarr")).unwrap(), "").unwrap();
    assert_eq!(
        dst.read_all::<f32>().unwrap(),
        src.read_all::<f32>().unwrap()
    );
}

#[test]
fn groups_run_every_array_in_each_stage_and_keep_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let source = Store::filesystem(dir.path().join("src.zarr")).unwrap();
    let mut attrs = serde_json::Map::new();
    attrs.insert("title".into(), "demo".into());
    create_group(&source, "", attrs, ZarrFormat::V2).unwrap();
    let tas = ArraySpec::new(vec![64, 6, 8], vec![1, 6, 8], DType::F32)
        .with_format(ZarrFormat::V2)
        .with_dimension_names(["time", "lat", "lon"]);
    let small = ArraySpec::new(vec![64, 6], vec![64, 6], DType::F32)
        .with_format(ZarrFormat::V2)
        .with_dimension_names(["time", "lat"]);
    let a = make_source(&source, "tas", &tas);
    let b = make_source(&source, "small", &small);
    let target = Store::filesystem(dir.path().join("dst.zarr")).unwrap();
    let plan = plan_rechunk(
        &source,
        "",
        &"time=64,lat=3,lon=4".parse().unwrap(),
        &target,
        "",
        &RechunkOptions::new(1 << 20),
    )
    .unwrap();
    let stages = distributed_stages(&plan);
    assert!(stages[0].copies.len() == 2, "both arrays in stage 1");
    let run = DistributedRechunk::new(plan).unwrap();
    run.prepare().unwrap();
    for stage in 1..=run.stages().len() {
        run_stage(&run, stage, 4);
    }
    run.finalize().unwrap();
    let ta = ZarrArray::open(&target, "tas").unwrap();
    let tb = ZarrArray::open(&target, "small").unwrap();
    assert_eq!(ta.chunk_shape(), &[64, 3, 4]);
    assert_eq!(ta.read_all::<f32>().unwrap(), a.read_all::<f32>().unwrap());
    assert_eq!(tb.read_all::<f32>().unwrap(), b.read_all::<f32>().unwrap());
    assert_eq!(
        chunkflow::store::group_attributes(&target, "").unwrap()["title"],
        "demo"
    );
}

#[test]
fn stages_chain_each_copy_into_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let (_, plan) = two_stage_plan(dir.path(), 40_000);
    let stages = distributed_stages(&plan);
    for pair in stages.windows(2) {
        assert_eq!(pair[0].copies[0].target, pair[1].copies[0].source);
    }
    assert!(stages[0].copies[0].from_source);
    assert!(stages.last().unwrap().copies[0].to_target);
    assert!(stages.iter().rev().skip(1).all(|s| !s.copies[0].to_target));
    let n: Vec<usize> = stages.iter().map(|s| s.number).collect();
    assert_eq!(n, (1..=stages.len()).collect::<Vec<_>>());
}

fn command() -> RankCommand {
    RankCommand {
        program: "/opt/chunk flow/chunkflow".into(),
        args: vec![
            "rechunk".into(),
            "in put.zarr".into(),
            "it's.zarr".into(),
            "--chunks".into(),
            "time=4096,lat=32".into(),
        ],
        workdir: "/scratch/run".into(),
    }
}

#[test]
fn stage_scripts_are_job_arrays_of_quoted_rank_commands() {
    let mut opts = SlurmOptions::new("/scratch/run/jobs");
    opts.sbatch_args = vec!["--partition=debug".into(), "--time=00:10:00".into()];
    let s = stage_script(&command(), StageJob { stage: 3, ranks: 7 }, 4, &opts);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines[0], "#!/bin/bash");
    for expected in [
        "#SBATCH --job-name=chunkflow-rechunk-s3",
        "#SBATCH --array=0-6",
        "#SBATCH --output=/scratch/run/jobs/logs/stage-3-%A_%a.log",
        "#SBATCH --chdir=/scratch/run",
        "#SBATCH --partition=debug",
        "#SBATCH --time=00:10:00",
        "set -euo pipefail",
        r#"exec '/opt/chunk flow/chunkflow' rechunk 'in put.zarr' 'it'\''s.zarr' --chunks time=4096,lat=32 --stage 3 --ranks 7 --rank "$SLURM_ARRAY_TASK_ID""#,
    ] {
        assert!(lines.contains(&expected), "missing {expected:?} in\n{s}");
    }
    // Every #SBATCH line comes before the first command (sbatch stops reading at it).
    let first_cmd = lines.iter().position(|l| !l.starts_with('#')).unwrap();
    assert!(lines[first_cmd..].iter().all(|l| !l.starts_with("#SBATCH")));
}

#[test]
fn driver_scripts_chain_stages_with_afterok_and_parse_as_bash() {
    let jobs = [
        StageJob {
            stage: 1,
            ranks: 16,
        },
        StageJob { stage: 2, ranks: 4 },
        StageJob {
            stage: 3,
            ranks: 16,
        },
    ];
    let opts = SlurmOptions::new("/scratch/run/jobs");
    let s = driver_script(&command(), &jobs, &opts);
    assert!(s.contains("job1=$(sbatch --parsable /scratch/run/jobs/stage-1.sbatch)"));
    assert!(s.contains(
        "job2=$(sbatch --parsable --dependency=afterok:$job1 /scratch/run/jobs/stage-2.sbatch)"
    ));
    assert!(s.contains("--dependency=afterok:$job2"));
    assert!(s.contains("wait_stage 2 \"$job2\" 4"));
    let prepare = s.find("--prepare \"$@\"").unwrap();
    let submit = s.find("sbatch --parsable").unwrap();
    let finalize = s.find("--finalize").unwrap();
    assert!(prepare < submit && submit < finalize);

    // The written scripts are valid bash.
    let dir = tempfile::tempdir().unwrap();
    let opts = SlurmOptions::new(dir.path().join("jobs"));
    let scripts = write_scripts(&command(), &jobs, &opts).unwrap();
    assert_eq!(scripts.stages.len(), 3);
    assert!(scripts.logs.is_dir());
    for path in scripts.stages.iter().chain([&scripts.driver]) {
        let out = std::process::Command::new("bash")
            .arg("-n")
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn scontrol_records_are_parsed_per_task() {
    let text = "\
JobId=12 ArrayJobId=10 ArrayTaskId=2 JobName=chunkflow-rechunk-s1 JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=1:0
JobId=11 ArrayJobId=10 ArrayTaskId=1 JobName=chunkflow-rechunk-s1 JobState=COMPLETED Reason=None ExitCode=0:0
JobId=10 ArrayJobId=10 ArrayTaskId=3-7,9%2 JobName=chunkflow-rechunk-s1 JobState=PENDING Reason=None ExitCode=0:0
";
    let r = parse_job_records(text);
    assert_eq!(r.len(), 3);
    assert!(r[0].has_failed() && !r[0].has_completed());
    assert_eq!(
        (r[0].array_task.as_str(), r[0].exit_code.as_str()),
        ("2", "1:0")
    );
    assert_eq!(r[0].reason, "NonZeroExitCode");
    assert!(r[1].has_completed());
    assert_eq!(
        r[2].task_ids().into_iter().collect::<Vec<_>>(),
        vec![3, 4, 5, 6, 7, 9]
    );
    assert!(!r[2].has_failed() && !r[2].has_completed());
}

/// The `chunkflow` binary with no launcher variables in its environment.
fn chunkflow(args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_chunkflow"));
    for var in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_MAX",
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_SIZE",
        "PMIX_RANK",
        "PMI_RANK",
        "PMI_SIZE",
        "SLURM_PROCID",
        "SLURM_NTASKS",
        "SLURM_NPROCS",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(args).output().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_cli_runs_prepare_stages_and_finalize_and_explains_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = two_stage_plan(dir.path(), 40_000);
    let s = dir.path().join("src.zarr").display().to_string();
    let d = dir.path().join("dst.zarr").display().to_string();
    let base = [
        "rechunk",
        s.as_str(),
        d.as_str(),
        "--chunks",
        "256,2,2",
        "--max-mem",
        "40000",
        "--min-mem",
        "8000",
        "--threads",
        "1",
    ];
    let with = |extra: &[&str]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        chunkflow(&v)
    };

    // No rank anywhere: a clear error, not a guess.
    let out = with(&["--stage", "1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot tell which rank"),
        "{}",
        stderr(&out)
    );
    // A rank before prepare.
    let out = with(&["--stage", "1", "--ranks", "2", "--rank", "0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no rechunk is prepared"),
        "{}",
        stderr(&out)
    );
    // Steps are exclusive; --slurm needs --ranks.
    assert!(!with(&["--prepare", "--finalize"]).status.success());
    assert!(!with(&["--slurm"]).status.success());

    let out = with(&["--dry-run", "--ranks", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let stages = text.matches("    -> ").count();
    assert!(stages >= 3, "{text}");

    assert!(with(&["--prepare"]).status.success());
    for stage in 1..=stages {
        for rank in 0..3 {
            let (st, r) = (stage.to_string(), rank.to_string());
            let out = with(&["--stage", &st, "--ranks", "3", "--rank", &r]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
    }
    let out = with(&["--finalize"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dst =
        ZarrArray::open(&Store::filesystem(dir.path().join("dst.zarr")).unwrap(), "").unwrap();
    assert_eq!(
        dst.read_all::<f32>().unwrap(),
        src.read_all::<f32>().unwrap()
    );

    // Scripts instead of submission.
    let jobs = dir.path().join("jobs");
    let j = jobs.display().to_string();
    let out = with(&["--ranks", "4", "--emit-sbatch", &j]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(jobs.join("driver.sh").is_file());
    assert!(jobs.join(format!("stage-{stages}.sbatch")).is_file());

    // Stores other processes cannot see are refused.
    let out = chunkflow(&[
        "rechunk",
        "memory://a",
        "memory://b",
        "--chunks",
        "2",
        "--max-mem",
        "1MB",
        "--prepare",
    ]);
    assert!(
        stderr(&out).contains("memory:// store lives in one process"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_partition_cli_needs_a_rank_and_writes_what_one_process_writes() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let size = [
        "--ntime",
        "12",
        "--time-chunk",
        "2",
        "--nlat",
        "4",
        "--nlon",
        "6",
    ];
    let run = |args: &[&str]| {
        let mut v = vec!["partition"];
        v.extend_from_slice(args);
        v.extend_from_slice(&size);
        chunkflow(&v)
    };
    let (one, many) = (p("one.zarr"), p("many.zarr"));
    assert!(run(&["single", &one]).status.success());
    let out = run(&["write", &many, "--dims", "time"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot tell which rank"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "write", &many, "--dims", "time", "--ranks", "2", "--rank", "0",
    ]);
    assert!(!out.status.success(), "writing before init fails");
    assert!(run(&["init", &many]).status.success());
    assert!(
        !run(&["init", &many]).status.success(),
        "init refuses an existing store"
    );
    let out = run(&["write", &many, "--dims", "time", "--rank", "1"]);
    assert!(stderr(&out).contains("--ranks"), "{}", stderr(&out));
    for rank in ["0", "1", "2", "3", "4", "5", "6"] {
        // 6 time blocks among 7 ranks: rank 6 is idle and succeeds.
        let out = run(&[
            "write", &many, "--dims", "time", "--ranks", "7", "--rank", rank,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(files(Path::new(&one)), files(Path::new(&many)));
}
