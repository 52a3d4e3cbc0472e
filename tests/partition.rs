//! Partitioned writes from independent ranks (the `partition` room).
//!
//! - Properties of partitions over random chunkings, split dims and 1..64 ranks: exact cover,
//!   chunk alignment, every rank used when there are enough blocks, nested balance (global when
//!   the result is a grid), optimality against every exact grid and xpartition's greedy split,
//!   independence of the order the split dims are listed in, `owner` inverting `partition`.
//! - The issue's example (blocks (4, 3) over 6 ranks on [x, y]), idle ranks, errors.
//! - Rank detection: explicit flags, SLURM arrays (MIN offset, sparse ids, out of range), Open
//!   MPI, PMIx, PMI, srun, precedence, the no-rank error.
//! - `write_partition`: 1..8 ranks as threads, and ranks as processes (this test binary
//!   re-run with launcher variables), give the same bytes as one writer; re-running is
//!   idempotent; idle ranks write nothing; shape, dtype and dim errors.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;
use std::process::{Command, Stdio};

use chunkflow::array::{self, Array, Chunks, ToZarrOptions};
use chunkflow::partition::{
    Partition, PartitionError, Partitioner, RankError, RankSource, SplitDim, detect_rank,
    detect_rank_from_env, initialize_array, partition, partitions, write_partition,
};
use chunkflow::store::{Store, ZarrArray};
use chunkflow::{ComputeOptions, Sequential};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Partition properties
// ---------------------------------------------------------------------------------------------

/// Random irregular chunks: 1..=4 axes, 1..=8 blocks each, sizes 1..=4.
fn arb_chunks() -> impl Strategy<Value = Chunks> {
    proptest::collection::vec(proptest::collection::vec(1usize..=4, 1..=8), 1..=4)
        .prop_map(|sizes| Chunks::new(sizes).unwrap())
}

/// Chunks, a subset of its axes in a random order, and a rank count.
fn arb_case() -> impl Strategy<Value = (Chunks, Vec<usize>, usize)> {
    arb_chunks().prop_flat_map(|chunks| {
        let ndim = chunks.ndim();
        (
            Just(chunks),
            proptest::sample::subsequence((0..ndim).collect::<Vec<_>>(), 0..=ndim).prop_shuffle(),
            1usize..=64,
        )
    })
}

fn names(ndim: usize) -> Vec<String> {
    (0..ndim).map(|i| format!("d{i}")).collect()
}

/// Blocks along `axes`.
fn split_blocks(chunks: &Chunks, axes: &[usize]) -> usize {
    axes.iter().map(|&a| chunks.axis(a).len()).product()
}

/// Blocks of the axes not in `axes`.
fn rest_blocks(chunks: &Chunks, axes: &[usize]) -> usize {
    (0..chunks.ndim())
        .filter(|a| !axes.contains(a))
        .map(|a| chunks.axis(a).len())
        .product()
}

/// The largest part of xpartition's greedy split (`_optimal_meta_chunk_sizes`), dims in the
/// order given.
fn xpartition_max_blocks(chunks: &Chunks, dims: &[usize], ranks: usize) -> usize {
    let mut used = 1;
    let mut cost = 1;
    for &d in dims {
        let nb = chunks.axis(d).len();
        let m = nb.div_ceil(ranks / used).min(nb);
        used *= nb.div_ceil(m);
        cost *= m;
    }
    cost * rest_blocks(chunks, dims)
}

/// Every exact grid of `ranks` parts: per split axis a part count `p <= n`, product `ranks`.
/// Returns the smallest largest part (in blocks), if any grid exists.
fn best_exact_grid(counts: &[usize], ranks: usize) -> Option<usize> {
    fn go(counts: &[usize], ranks: usize, cost: usize, best: &mut Option<usize>) {
        match counts.split_first() {
            None => {
                if ranks == 1 {
                    *best = Some(best.map_or(cost, |b| b.min(cost)));
                }
            }
            Some((&n, rest)) => {
                for p in 1..=n.min(ranks) {
                    if ranks.is_multiple_of(p) {
                        go(rest, ranks / p, cost * n.div_ceil(p), best);
                    }
                }
            }
        }
    }
    let mut best = None;
    go(counts, ranks, 1, &mut best);
    best
}

/// Per slab (block ranges on the dims cut before), per sub-slab range: how many ranks.
type Slabs = BTreeMap<Vec<(usize, usize)>, BTreeMap<(usize, usize), usize>>;

fn check_partitions(chunks: &Chunks, split: &[usize], ranks: usize) {
    let dims = names(chunks.ndim());
    let split_names: Vec<&str> = split.iter().map(|&a| dims[a].as_str()).collect();
    let p = Partitioner::by_name(chunks, &dims, &split_names, ranks).unwrap();
    let parts = p.partitions();
    let blocks = split_blocks(chunks, split);
    let active = ranks.min(blocks);
    assert_eq!(parts.len(), ranks);
    assert_eq!(p.active_ranks(), active);

    // Every rank up to `active` has blocks; the rest are idle with empty regions.
    for (rank, part) in parts.iter().enumerate() {
        assert_eq!(part.rank(), rank);
        assert_eq!(part.ranks(), ranks);
        assert_eq!(part.is_idle(), rank >= active, "{part}");
        if part.is_idle() {
            assert_eq!(part.num_blocks(), 0);
            assert!(part.region().iter().all(|r| r.is_empty()));
            assert!(part.block_indices().is_empty());
        } else {
            assert!(part.num_blocks() >= 1);
        }
    }

    // Exact cover of every block, chunk-aligned regions, full non-split axes, owner().
    let mut seen: HashMap<Vec<usize>, usize> = HashMap::new();
    for part in parts.iter().filter(|q| !q.is_idle()) {
        for (axis, (b, r)) in part.blocks().iter().zip(part.region()).enumerate() {
            assert!(b.start < b.end && b.end <= chunks.axis(axis).len());
            let bounds = chunks.boundaries(axis);
            assert_eq!(*r, bounds[b.start]..bounds[b.end], "region of {part}");
            if !split.contains(&axis) {
                assert_eq!(*b, 0..chunks.axis(axis).len());
            }
        }
        for idx in part.block_indices() {
            assert!(part.contains_block(&idx));
            assert_eq!(p.owner(&idx), Some(part.rank()));
            assert!(
                seen.insert(idx, part.rank()).is_none(),
                "a block in two parts"
            );
        }
    }
    assert_eq!(seen.len(), chunks.num_chunks());

    // The reported largest part.
    let max = parts.iter().map(Partition::num_blocks).max().unwrap();
    assert_eq!(p.max_blocks(), max);

    // Nested balance along the cut order: within each slab of level i, the sub-slabs along the
    // dim cut there have extents differing by <= 1 and rank counts differing by <= 1, the
    // longer ones holding at least as many ranks.
    let order = p.cut_order().to_vec();
    let mut sorted_order = order.clone();
    sorted_order.sort_unstable();
    let mut sorted_split = split.to_vec();
    sorted_split.sort_unstable();
    assert_eq!(sorted_order, sorted_split);
    let active_parts: Vec<&Partition> = parts.iter().filter(|q| !q.is_idle()).collect();
    for (level, &axis) in order.iter().enumerate() {
        let mut slabs = Slabs::new();
        for part in &active_parts {
            let key: Vec<(usize, usize)> = order[..level]
                .iter()
                .map(|&a| (part.blocks()[a].start, part.blocks()[a].end))
                .collect();
            let b = &part.blocks()[axis];
            *slabs
                .entry(key)
                .or_default()
                .entry((b.start, b.end))
                .or_default() += 1;
        }
        for subs in slabs.values() {
            // The sub-slabs tile the axis.
            let mut next = 0;
            for &(s, e) in subs.keys() {
                assert_eq!(s, next);
                next = e;
            }
            assert_eq!(next, chunks.axis(axis).len());
            let lens: Vec<usize> = subs.keys().map(|(s, e)| e - s).collect();
            let counts: Vec<usize> = subs.values().copied().collect();
            let spread = |v: &[usize]| v.iter().max().unwrap() - v.iter().min().unwrap();
            assert!(spread(&lens) <= 1, "extents {lens:?} along axis {axis}");
            assert!(spread(&counts) <= 1, "ranks {counts:?} along axis {axis}");
            for (i, j) in (0..lens.len()).flat_map(|i| (0..lens.len()).map(move |j| (i, j))) {
                if lens[i] > lens[j] {
                    assert!(counts[i] >= counts[j]);
                }
            }
        }
    }

    // A grid is balanced globally along every split dim.
    if p.is_grid() {
        for &axis in split {
            let lens: Vec<usize> = active_parts
                .iter()
                .map(|q| q.blocks()[axis].len())
                .collect();
            assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1);
        }
    }

    // Never worse than any exact grid of `active` parts (and a grid when one ties), nor than
    // xpartition's greedy split in any order of the dims.
    let counts: Vec<usize> = order.iter().map(|&a| chunks.axis(a).len()).collect();
    if let Some(grid) = best_exact_grid(&counts, active) {
        let grid = grid * rest_blocks(chunks, split);
        assert!(max <= grid, "max {max} > best exact grid {grid}");
        if max == grid {
            assert!(p.is_grid(), "an exact grid reaches the optimum {max}");
        }
    }
    assert!(
        max <= xpartition_max_blocks(chunks, split, ranks),
        "max {max} > xpartition's {}",
        xpartition_max_blocks(chunks, split, ranks)
    );

    // Order independence and the one-call forms.
    let mut reversed = split_names.clone();
    reversed.reverse();
    assert_eq!(partitions(chunks, &dims, &reversed, ranks).unwrap(), parts);
    let last = ranks - 1;
    assert_eq!(
        partition(chunks, &dims, &split_names, ranks, last).unwrap(),
        parts[last]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn partitions_cover_balance_and_use_every_rank((chunks, split, ranks) in arb_case()) {
        check_partitions(&chunks, &split, ranks);
    }
}

#[test]
fn exhaustive_small_grids() {
    // Every 1-, 2- and 3-d block grid up to 6 per axis, every split, ranks 1..=40.
    for a in 1..=6 {
        for b in 1..=6 {
            let chunks = Chunks::new(vec![vec![1; a], vec![2; b]]).unwrap();
            for split in [vec![0], vec![1], vec![0, 1], vec![]] {
                for ranks in 1..=40 {
                    check_partitions(&chunks, &split, ranks);
                }
            }
            for c in [1, 3, 5] {
                let chunks = Chunks::new(vec![vec![1; a], vec![1; b], vec![3; c]]).unwrap();
                for ranks in 1..=40 {
                    check_partitions(&chunks, &[0, 1, 2], ranks);
                }
            }
        }
    }
}

#[test]
fn the_issue_example_uses_all_six_ranks() {
    // xpartition's greedy split gives only 4 parts here.
    let chunks = Chunks::regular(&[40, 30], &[10, 10]).unwrap();
    assert_eq!(xpartition_max_blocks(&chunks, &[0, 1], 6), 3);
    let parts = partitions(&chunks, &["x", "y"], &["x", "y"], 6).unwrap();
    assert!(parts.iter().all(|p| !p.is_idle() && p.num_blocks() == 2));
    let regions: Vec<Vec<Range<usize>>> = parts.iter().map(|p| p.region().to_vec()).collect();
    assert_eq!(
        regions,
        vec![
            vec![0..20, 0..10],
            vec![0..20, 10..20],
            vec![0..20, 20..30],
            vec![20..40, 0..10],
            vec![20..40, 10..20],
            vec![20..40, 20..30],
        ]
    );
    let p = Partitioner::by_name(&chunks, &["x", "y"], &["y", "x"], 6).unwrap();
    assert!(p.is_grid());
    assert_eq!(p.partitions(), parts);
}

#[test]
fn uneven_cases_keep_every_rank_busy() {
    // 2 x 2 blocks over 3 ranks: no exact grid, still 3 non-empty parts.
    let chunks = Chunks::regular(&[2, 2], &[1, 1]).unwrap();
    let p = Partitioner::by_axes(&chunks, &[0, 1], 3).unwrap();
    assert!(!p.is_grid());
    assert_eq!(p.active_ranks(), 3);
    assert_eq!(p.max_blocks(), 2);
    // A prime number of ranks above every dim's block count: 5 x 5 over 7 ranks.
    let chunks = Chunks::regular(&[5, 5], &[1, 1]).unwrap();
    let p = Partitioner::by_axes(&chunks, &[0, 1], 7).unwrap();
    assert_eq!(p.active_ranks(), 7);
    assert!(p.partitions().iter().all(|q| !q.is_idle()));
    assert_eq!(p.max_blocks(), 5); // the optimum is ceil(25 / 7) = 4 only with non-boxes
    // One dim: contiguous balanced ranges, like numpy.array_split.
    let chunks = Chunks::regular(&[10], &[1]).unwrap();
    let lens: Vec<usize> = Partitioner::by_axes(&chunks, &[0], 4)
        .unwrap()
        .partitions()
        .iter()
        .map(Partition::num_blocks)
        .collect();
    assert_eq!(lens, [3, 3, 2, 2]);
}

#[test]
fn idle_ranks_get_empty_regions() {
    let chunks = Chunks::regular(&[4, 6], &[2, 3]).unwrap(); // 2 x 2 blocks
    let parts = partitions(&chunks, &["y", "x"], &["y", "x"], 10).unwrap();
    assert_eq!(parts.iter().filter(|p| !p.is_idle()).count(), 4);
    for p in &parts[4..] {
        assert!(p.is_idle());
        assert_eq!(p.region(), &[0..0, 0..0]);
        assert_eq!(p.to_string(), format!("rank {}/10: idle", p.rank()));
    }
    // No split dims: rank 0 writes everything, the others nothing.
    let parts = partitions::<_, &str>(&chunks, &["y", "x"], &[], 3).unwrap();
    assert_eq!(parts[0].region(), &[0..4, 0..6]);
    assert!(parts[1].is_idle() && parts[2].is_idle());
    // A 0-d array: one block, rank 0.
    let scalar = Chunks::new(vec![]).unwrap();
    let p = Partitioner::by_axes(&scalar, &[], 2).unwrap();
    assert_eq!(p.partition(0).unwrap().num_blocks(), 1);
    assert!(p.partition(1).unwrap().is_idle());
}

#[test]
fn partition_errors_are_clear() {
    let chunks = Chunks::regular(&[4, 6], &[2, 3]).unwrap();
    let err = partition(&chunks, &["y", "x"], &["time"], 2, 0).unwrap_err();
    assert!(matches!(err, PartitionError::UnknownDim { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("\"time\"") && msg.contains("[\"y\", \"x\"]"),
        "{msg}"
    );

    let err = partition(&chunks, &["y", "x"], &["y"], 0, 0).unwrap_err();
    assert_eq!(err, PartitionError::NoRanks);
    assert!(err.to_string().contains("0 ranks"));

    let err = partition(&chunks, &["y", "x"], &["y"], 4, 4).unwrap_err();
    assert_eq!(err, PartitionError::RankOutOfRange { rank: 4, ranks: 4 });
    assert!(err.to_string().contains("from 0 to 3"), "{err}");

    let err = partition(&chunks, &["y", "x"], &["y", "y"], 2, 0).unwrap_err();
    assert!(matches!(err, PartitionError::DuplicateDim { .. }), "{err}");
    let err = Partitioner::by_axes(&chunks, &[2], 2).unwrap_err();
    assert!(
        matches!(err, PartitionError::AxisOutOfRange { axis: 2, ndim: 2 }),
        "{err}"
    );
    let err = Partitioner::new(&chunks, None, &[SplitDim::from("y")], 2).unwrap_err();
    assert!(
        matches!(err, PartitionError::NoDimensionNames { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("axis index"));
    let err = partition(&chunks, &["y"], &["y"], 2, 0).unwrap_err();
    assert!(matches!(
        err,
        PartitionError::NamesMismatch { names: 1, ndim: 2 }
    ));
}

#[test]
fn many_ranks_plan_quickly() {
    let chunks = Chunks::regular(&[1000, 720, 1440], &[1, 10, 10]).unwrap();
    let start = std::time::Instant::now();
    let p = Partitioner::by_axes(&chunks, &[0, 1, 2], 4099).unwrap(); // a prime
    assert_eq!(p.active_ranks(), 4099);
    assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
    let per = 1000 * 72 * 144 / 4099; // ~2529
    assert!(p.max_blocks() <= per * 11 / 10, "{}", p.max_blocks());
}

// ---------------------------------------------------------------------------------------------
// Rank detection
// ---------------------------------------------------------------------------------------------

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn slurm_array_ranks_offset_by_min() {
    let base = [
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_MAX", "16"),
        ("SLURM_ARRAY_TASK_COUNT", "16"),
    ];
    for id in 1..=16u64 {
        let id_s = id.to_string();
        let mut pairs = base.to_vec();
        pairs.push(("SLURM_ARRAY_TASK_ID", &id_s));
        let info = detect_rank(None, None, env(&pairs)).unwrap();
        assert_eq!((info.rank, info.ranks), (id as usize - 1, 16));
        assert_eq!(
            info.source,
            RankSource::SlurmArray {
                task_id: id,
                min: 1
            }
        );
    }
    // MIN defaults to 0; no MAX: no sparseness check, but the id must fit the count.
    let info = detect_rank(
        None,
        None,
        env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]),
    )
    .unwrap();
    assert_eq!((info.rank, info.ranks), (3, 4));
    let err = detect_rank(
        None,
        None,
        env(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            RankError::OutOfRange {
                rank: 4,
                ranks: 4,
                ..
            }
        ),
        "{err}"
    );
    // Explicit --ranks overrides the count.
    let info = detect_rank(
        None,
        Some(8),
        env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "6"),
        ]),
    )
    .unwrap();
    assert_eq!((info.rank, info.ranks), (5, 8));
    // No count at all.
    let err = detect_rank(None, None, env(&[("SLURM_ARRAY_TASK_ID", "0")])).unwrap_err();
    assert!(matches!(err, RankError::MissingCount { .. }), "{err}");
    assert!(err.to_string().contains("--ranks"));
}

#[test]
fn sparse_slurm_arrays_need_an_explicit_rank() {
    // --array=1,5,7: count 3, min 1, max 7.
    let sparse = [
        ("SLURM_ARRAY_TASK_ID", "5"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_MAX", "7"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
    ];
    let err = detect_rank(None, None, env(&sparse)).unwrap_err();
    assert_eq!(
        err,
        RankError::SparseArray {
            count: 3,
            min: 1,
            max: 7
        }
    );
    assert!(
        err.to_string().contains("--rank $SLURM_ARRAY_TASK_ID"),
        "{err}"
    );
    let err = detect_rank(None, Some(16), env(&sparse)).unwrap_err();
    assert!(matches!(err, RankError::SparseArray { .. }));
    // Re-running failed ranks 5 of 16: explicit rank and ranks.
    let info = detect_rank(Some(5), Some(16), env(&sparse)).unwrap();
    assert_eq!(
        (info.rank, info.ranks, info.source),
        (5, 16, RankSource::Explicit)
    );
    // An explicit rank never takes the array's count.
    let err = detect_rank(Some(5), None, env(&sparse)).unwrap_err();
    assert!(matches!(err, RankError::MissingCount { .. }), "{err}");
    // A step array --array=0-15:4 is sparse too.
    let step = [
        ("SLURM_ARRAY_TASK_ID", "4"),
        ("SLURM_ARRAY_TASK_MIN", "0"),
        ("SLURM_ARRAY_TASK_MAX", "12"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
    ];
    assert!(matches!(
        detect_rank(None, None, env(&step)),
        Err(RankError::SparseArray { .. })
    ));
    // Below MIN.
    let err = detect_rank(
        None,
        None,
        env(&[
            ("SLURM_ARRAY_TASK_ID", "0"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ]),
    )
    .unwrap_err();
    assert_eq!(err, RankError::BelowMin { id: 0, min: 1 });
}

#[test]
fn each_launcher_family() {
    let info = detect_rank(
        None,
        None,
        env(&[("OMPI_COMM_WORLD_RANK", "2"), ("OMPI_COMM_WORLD_SIZE", "4")]),
    )
    .unwrap();
    assert_eq!(
        (info.rank, info.ranks, info.source),
        (2, 4, RankSource::OpenMpi)
    );

    // PMIx has no size variable: srun --mpi=pmix gives SLURM_NTASKS.
    let info = detect_rank(
        None,
        None,
        env(&[("PMIX_RANK", "1"), ("SLURM_NTASKS", "3")]),
    )
    .unwrap();
    assert_eq!(
        (info.rank, info.ranks, info.source),
        (1, 3, RankSource::Pmix)
    );
    let err = detect_rank(None, None, env(&[("PMIX_RANK", "1")])).unwrap_err();
    assert!(matches!(err, RankError::MissingCount { .. }), "{err}");
    assert!(err.to_string().contains("PMIX_RANK"));
    let info = detect_rank(None, Some(2), env(&[("PMIX_RANK", "1")])).unwrap();
    assert_eq!((info.rank, info.ranks), (1, 2));

    let info = detect_rank(None, None, env(&[("PMI_RANK", "0"), ("PMI_SIZE", "2")])).unwrap();
    assert_eq!(
        (info.rank, info.ranks, info.source),
        (0, 2, RankSource::Pmi)
    );

    let info = detect_rank(
        None,
        None,
        env(&[("SLURM_PROCID", "7"), ("SLURM_NTASKS", "8")]),
    )
    .unwrap();
    assert_eq!(
        (info.rank, info.ranks, info.source),
        (7, 8, RankSource::SlurmTask)
    );
    let info = detect_rank(
        None,
        None,
        env(&[("SLURM_PROCID", "1"), ("SLURM_NPROCS", "2")]),
    )
    .unwrap();
    assert_eq!((info.rank, info.ranks), (1, 2));

    let err = detect_rank(
        None,
        None,
        env(&[("OMPI_COMM_WORLD_RANK", "x"), ("OMPI_COMM_WORLD_SIZE", "4")]),
    )
    .unwrap_err();
    assert!(matches!(err, RankError::Invalid { .. }), "{err}");
    let err = detect_rank(None, None, env(&[("PMI_RANK", "0"), ("PMI_SIZE", "0")])).unwrap_err();
    assert!(matches!(err, RankError::ZeroRanks { .. }), "{err}");
}

#[test]
fn precedence_explicit_then_array_then_mpi_then_srun() {
    let all = [
        ("SLURM_ARRAY_TASK_ID", "3"),
        ("SLURM_ARRAY_TASK_COUNT", "10"),
        ("OMPI_COMM_WORLD_RANK", "1"),
        ("OMPI_COMM_WORLD_SIZE", "2"),
        ("PMIX_RANK", "1"),
        ("PMI_RANK", "4"),
        ("PMI_SIZE", "5"),
        ("SLURM_PROCID", "0"),
        ("SLURM_NTASKS", "1"),
    ];
    let info = detect_rank(Some(6), Some(7), env(&all)).unwrap();
    assert_eq!(
        (info.rank, info.ranks, info.source),
        (6, 7, RankSource::Explicit)
    );
    let info = detect_rank(None, None, env(&all)).unwrap();
    assert_eq!((info.rank, info.ranks), (3, 10));
    let info = detect_rank(None, None, env(&all[2..])).unwrap();
    assert_eq!(info.source, RankSource::OpenMpi);
    // PMIx before PMI before srun.
    let info = detect_rank(
        None,
        None,
        env(&[
            ("PMIX_RANK", "1"),
            ("PMI_RANK", "4"),
            ("PMI_SIZE", "5"),
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "2"),
        ]),
    )
    .unwrap();
    assert_eq!(
        (info.rank, info.ranks, info.source),
        (1, 2, RankSource::Pmix)
    );
    let info = detect_rank(None, None, env(&all[5..])).unwrap();
    assert_eq!(
        (info.rank, info.ranks, info.source),
        (4, 5, RankSource::Pmi)
    );
    let info = detect_rank(None, None, env(&all[7..])).unwrap();
    assert_eq!(info.source, RankSource::SlurmTask);
    // An explicit rank takes an MPI launcher's count.
    let info = detect_rank(Some(1), None, env(&all[2..4])).unwrap();
    assert_eq!(
        (info.rank, info.ranks, info.source),
        (1, 2, RankSource::Explicit)
    );
    // Explicit rank out of range, zero ranks.
    assert!(matches!(
        detect_rank(Some(3), Some(3), env(&[])),
        Err(RankError::OutOfRange { .. })
    ));
    assert!(matches!(
        detect_rank(Some(0), Some(0), env(&[])),
        Err(RankError::ZeroRanks { .. })
    ));
}

#[test]
fn no_rank_anywhere_is_a_clear_error() {
    let err = detect_rank(None, None, env(&[])).unwrap_err();
    assert_eq!(err, RankError::NotFound);
    let msg = err.to_string();
    for needle in [
        "--rank",
        "SLURM_ARRAY_TASK_ID",
        "OMPI_COMM_WORLD_RANK",
        "PMI_RANK",
    ] {
        assert!(msg.contains(needle), "{msg}");
    }
    // --ranks alone gives no rank.
    assert_eq!(
        detect_rank(None, Some(4), env(&[])).unwrap_err(),
        RankError::NotFound
    );
    // The error converts into the crate's error.
    let e: chunkflow::Error = err.into();
    assert!(e.to_string().contains("--rank"));
}

// ---------------------------------------------------------------------------------------------
// write_partition
// ---------------------------------------------------------------------------------------------

const SHAPE: [usize; 2] = [37, 23];
const CHUNKS: [usize; 2] = [5, 4];

/// Deterministic data with some all-zero (fill value) chunks, which are not stored.
fn data() -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&SHAPE), |ix| {
        let (i, j) = (ix[0], ix[1]);
        if (i / 5 + j / 4) % 4 == 0 {
            0.0
        } else {
            (i * 31 + j) as f64 * 0.5 - 7.0
        }
    })
}

fn lazy() -> Array<f64> {
    array::from_ndarray(data(), CHUNKS.to_vec()).unwrap()
}

fn options() -> ToZarrOptions {
    ToZarrOptions::default().with_dimension_names(["time", "x"])
}

fn sequential() -> ComputeOptions {
    ComputeOptions::default().executor(Sequential)
}

/// Every file under `dir` (relative path -> bytes).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// The store written by one process in one go.
fn single_writer() -> (tempfile::TempDir, BTreeMap<String, Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::filesystem(dir.path()).unwrap();
    lazy().to_zarr(&store, "x", &options()).unwrap();
    let snap = snapshot(dir.path());
    (dir, snap)
}

#[test]
fn ranks_as_threads_write_the_same_bytes_as_one_writer() {
    let (_reference_dir, reference) = single_writer();
    assert!(reference.len() > 3, "some chunks are stored");
    let x = lazy();
    for split in [vec!["time"], vec!["x"], vec!["time", "x"]] {
        let split: Vec<SplitDim> = split.into_iter().map(SplitDim::from).collect();
        for ranks in 1..=8 {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::filesystem(dir.path()).unwrap();
            initialize_array(&x, &store, "x", &options()).unwrap();
            // Only metadata after initialisation (the root group's and the array's).
            let init = snapshot(dir.path());
            assert!(
                init.keys().all(|k| k.ends_with("zarr.json")),
                "{:?}",
                init.keys()
            );
            let parts: Vec<Partition> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..ranks)
                    .map(|rank| {
                        let (x, store, split) = (&x, &store, &split);
                        s.spawn(move || {
                            write_partition(x, store, "x", split, ranks, rank, &sequential())
                                .unwrap()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(parts.len(), ranks);
            assert_eq!(
                snapshot(dir.path()),
                reference,
                "{ranks} ranks on {split:?}"
            );

            // Re-running every rank (a retry) changes nothing.
            for rank in 0..ranks {
                write_partition(&x, &store, "x", &split, ranks, rank, &sequential()).unwrap();
            }
            assert_eq!(snapshot(dir.path()), reference);
        }
    }
}

#[test]
fn a_missing_rank_leaves_exactly_its_chunks_unwritten() {
    let x = lazy();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::filesystem(dir.path()).unwrap();
    let zarr = initialize_array(&x, &store, "x", &options()).unwrap();
    let split = [SplitDim::from("time")];
    for rank in [0, 1, 3] {
        write_partition(&x, &store, "x", &split, 4, rank, &sequential()).unwrap();
    }
    let missing = Partitioner::new(&zarr.write_chunks(), zarr.dimension_names(), &split, 4)
        .unwrap()
        .partition(2)
        .unwrap();
    for idx in zarr.write_chunks().blocks() {
        let idx64: Vec<u64> = idx.iter().map(|&i| i as u64).collect();
        let region = zarr.write_chunk_region(&idx64).unwrap();
        let block = data()
            .slice_each_axis(|ax| {
                let r = &region[ax.axis.index()];
                ndarray::Slice::from(r.start as usize..r.end as usize)
            })
            .to_owned();
        let all_fill = block.iter().all(|&v| v == 0.0);
        let expect = !missing.contains_block(&idx) && !all_fill;
        assert_eq!(zarr.chunk_exists(&idx64).unwrap(), expect, "chunk {idx:?}");
    }
}

#[test]
fn coarse_and_straddling_array_chunks_still_write_whole_chunks() {
    let (_d, reference) = single_writer();
    let data = data();
    // Array chunks coarser than the stored ones, and chunks that straddle them.
    for chunks in [vec![10, 8], vec![7, 6], vec![3, 23]] {
        let x = array::from_ndarray(data.clone(), chunks.clone()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::filesystem(dir.path()).unwrap();
        // Initialise with the reference's stored chunks.
        initialize_array(&lazy(), &store, "x", &options()).unwrap();
        for rank in 0..5 {
            write_partition(
                &x,
                &store,
                "x",
                &[SplitDim::from("time"), SplitDim::from("x")],
                5,
                rank,
                &sequential(),
            )
            .unwrap();
        }
        assert_eq!(snapshot(dir.path()), reference, "array chunks {chunks:?}");
    }
}

#[test]
fn idle_ranks_write_nothing() {
    let x = array::from_ndarray(ArrayD::from_elem(IxDyn(&[4, 6]), 1i32), vec![2, 3]).unwrap();
    let store = Store::memory();
    initialize_array(
        &x,
        &store,
        "a",
        &ToZarrOptions::default().with_dimension_names(["y", "x"]),
    )
    .unwrap();
    let before = store.list("").unwrap();
    for rank in 2..5 {
        let p = write_partition(&x, &store, "a", &["y".into()], 5, rank, &sequential()).unwrap();
        assert!(p.is_idle());
    }
    assert_eq!(store.list("").unwrap(), before);
    for rank in 0..2 {
        write_partition(&x, &store, "a", &["y".into()], 5, rank, &sequential()).unwrap();
    }
    let zarr = ZarrArray::open(&store, "a").unwrap();
    assert_eq!(zarr.read_all::<i32>().unwrap(), x.compute().unwrap());
}

#[test]
fn write_partition_errors() {
    let x = lazy();
    let store = Store::memory();
    let split = [SplitDim::from("time")];
    // No array yet.
    let err = write_partition(&x, &store, "x", &split, 2, 0, &sequential()).unwrap_err();
    assert!(err.to_string().contains("no Zarr array"), "{err}");
    initialize_array(&x, &store, "x", &options()).unwrap();
    // Unknown dim, bad rank, zero ranks.
    let err = write_partition(&x, &store, "x", &["lat".into()], 2, 0, &sequential()).unwrap_err();
    assert!(err.to_string().contains("\"lat\""), "{err}");
    let err = write_partition(&x, &store, "x", &split, 2, 2, &sequential()).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    let err = write_partition(&x, &store, "x", &split, 0, 0, &sequential()).unwrap_err();
    assert!(err.to_string().contains("0 ranks"), "{err}");
    // Another shape, another dtype.
    let small = array::from_ndarray(ArrayD::<f64>::zeros(IxDyn(&[5, 5])), vec![5, 4]).unwrap();
    let err = write_partition(&small, &store, "x", &split, 2, 0, &sequential()).unwrap_err();
    assert!(err.to_string().contains("[37, 23]"), "{err}");
    let ints = lazy().astype::<i32>();
    let err = write_partition(&ints, &store, "x", &split, 2, 0, &sequential()).unwrap_err();
    assert!(err.to_string().contains("int32"), "{err}");
    // Nothing was written by the failed calls.
    assert_eq!(store.list("x/c").unwrap(), Vec::<String>::new());
    // initialize_array refuses a region and an existing array.
    let err = initialize_array(&x, &store, "y", &ToZarrOptions::region([0..37, 0..23]));
    assert!(err.is_err());
    assert!(initialize_array(&x, &store, "x", &options()).is_err());
}

// ---------------------------------------------------------------------------------------------
// Ranks as processes: this test binary re-run as each rank, the rank from launcher variables.
// ---------------------------------------------------------------------------------------------

const CHILD_STORE: &str = "CHUNKFLOW_TEST_PARTITION_STORE";
const CHILD_SPLIT: &str = "CHUNKFLOW_TEST_PARTITION_SPLIT";

/// Does nothing unless started by `ranks_as_processes_...` with the store in the environment:
/// then it is one rank, which finds its rank from the launcher variables and writes its part.
#[test]
fn partition_child_rank() {
    let Ok(path) = std::env::var(CHILD_STORE) else {
        return;
    };
    let split: Vec<SplitDim> = std::env::var(CHILD_SPLIT)
        .unwrap()
        .split(',')
        .map(SplitDim::from)
        .collect();
    let me = detect_rank_from_env(None, None).unwrap();
    let store = Store::filesystem(&path).unwrap();
    let part = write_partition(
        &lazy(),
        &store,
        "x",
        &split,
        me.ranks,
        me.rank,
        &sequential(),
    )
    .unwrap();
    eprintln!("{part} via {}", me.source);
}

const LAUNCHER_VARS: [&str; 14] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_COUNT",
    "OMPI_COMM_WORLD_RANK",
    "OMPI_COMM_WORLD_SIZE",
    "PMIX_RANK",
    "PMI_RANK",
    "PMI_SIZE",
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "SLURM_NPROCS",
    CHILD_STORE,
    CHILD_SPLIT,
];

fn run_rank_processes(split: &str, envs: Vec<Vec<(String, String)>>) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::filesystem(dir.path()).unwrap();
    initialize_array(&lazy(), &store, "x", &options()).unwrap();
    let exe = std::env::current_exe().unwrap();
    // Spawn every rank first so that they run concurrently, then wait for them all.
    let children: Vec<_> = envs
        .into_iter()
        .map(|vars| {
            let mut cmd = Command::new(&exe);
            cmd.args([
                "--exact",
                "partition_child_rank",
                "--test-threads=1",
                "--nocapture",
            ]);
            for var in LAUNCHER_VARS {
                cmd.env_remove(var);
            }
            cmd.env(CHILD_STORE, dir.path())
                .env(CHILD_SPLIT, split)
                .envs(vars)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let desc = cmd_env_desc(&cmd);
            (cmd.spawn().unwrap(), desc)
        })
        .collect();
    for (child, desc) in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "rank process {desc} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    snapshot(dir.path())
}

fn cmd_env_desc(cmd: &Command) -> String {
    cmd.get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, v?.to_str()?)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn vars(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn ranks_as_processes_write_the_same_bytes_as_one_writer() {
    let (_d, reference) = single_writer();
    // A SLURM array --array=1-4 (rank = id - 1).
    let slurm: Vec<_> = (1..=4)
        .map(|id| {
            vars(&[
                ("SLURM_ARRAY_TASK_ID", id.to_string()),
                ("SLURM_ARRAY_TASK_MIN", "1".into()),
                ("SLURM_ARRAY_TASK_MAX", "4".into()),
                ("SLURM_ARRAY_TASK_COUNT", "4".into()),
            ])
        })
        .collect();
    assert_eq!(run_rank_processes("time,x", slurm), reference);
    // mpirun -n 3 (Open MPI).
    let mpi: Vec<_> = (0..3)
        .map(|r| {
            vars(&[
                ("OMPI_COMM_WORLD_RANK", r.to_string()),
                ("OMPI_COMM_WORLD_SIZE", "3".into()),
                ("PMIX_RANK", r.to_string()),
            ])
        })
        .collect();
    assert_eq!(run_rank_processes("time", mpi), reference);
}
