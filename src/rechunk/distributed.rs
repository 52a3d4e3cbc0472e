//! Rechunks run by independent ranks, one stage after another: the way a rechunk plan runs on
//! a SLURM cluster (one job array per stage, chained with `--dependency=afterok`) or under MPI
//! launchers, with no rank ever talking to another.
//!
//! A [`RechunkPlan`] becomes [`DistributedStage`]s: one per copy that must finish before the
//! next may start. A plan stage that goes through an intermediate array is two distributed
//! stages (source → intermediate, then intermediate → target); a direct stage is one. For a
//! group, distributed stage `s` holds the `s`-th copy of every array. Stages are numbered from
//! 1.
//!
//! The run, driven by [`DistributedRechunk`]:
//!
//! 1. [`prepare`](DistributedRechunk::prepare), once (the driver): checks the target, saves the
//!    plan in the progress file beside it, and creates the intermediate arrays and the target
//!    *unpublished* (no metadata), exactly as an in-process rechunk does.
//! 2. [`run_rank`](DistributedRechunk::run_rank) for every rank of stage 1, then of stage 2, ...
//!    Each rank copies only its share ([`StageCopy::share`]) and records that it finished.
//! 3. [`finalize`](DistributedRechunk::finalize), once: checks that every rank of every stage
//!    finished, then publishes the target's metadata and removes the intermediates.
//!
//! [`slurm`] writes the batch scripts for this and drives them on a SLURM cluster.
//!
//! ```
//! use chunkflow::array::DType;
//! use chunkflow::rechunk::distributed::{DistributedRechunk, RankOptions};
//! use chunkflow::rechunk::{RechunkOptions, plan_rechunk};
//! use chunkflow::store::{ArraySpec, Store, ZarrArray};
//!
//! let dir = tempfile::tempdir()?;
//! let source = Store::filesystem(dir.path().join("src.zarr"))?;
//! let src = ZarrArray::create(&source, "", &ArraySpec::new(vec![8, 8], vec![1, 8], DType::F32), false)?;
//! src.write_region(&[0..8, 0..8], ndarray::ArrayD::from_elem(vec![8, 8], 1.5f32).view())?;
//! let target = Store::filesystem(dir.path().join("dst.zarr"))?;
//!
//! // Every process builds the same plan from the same options.
//! let plan = plan_rechunk(&source, "", &"8,2".parse()?, &target, "", &RechunkOptions::new(1 << 20))?;
//! let run = DistributedRechunk::new(plan)?;
//! run.prepare()?; // the driver, once
//! for stage in 1..=run.stages().len() {
//!     for rank in 0..3 {
//!         // In real use each rank is its own process (a SLURM array task, an MPI rank).
//!         run.run_rank(stage, 3, rank, &RankOptions::default())?;
//!     }
//! }
//! run.finalize()?; // the driver, once every rank has finished
//! let dst = ZarrArray::open(&target, "")?;
//! assert_eq!(dst.chunk_shape(), &[8, 2]);
//! assert_eq!(dst.read_all::<f32>()?, src.read_all::<f32>()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Invariants
//! - **One writer per chunk.** The ranks' shares are a pure function of the plan and the number
//!   of ranks: the plan's blocks for the copy (its read or write chunks, rounded up to whole
//!   chunks of the array written) are shared among the ranks by the balanced
//!   [`Partitioner`], so each chunk written belongs to exactly one rank whatever each rank's
//!   thread count or memory budget (those only decide how a rank cuts its share into tasks).
//! - **A rank never starts on missing input.** Stage `s` runs only when every rank of stage
//!   `s - 1` has recorded that it finished (a marker under `.chunkflow-ranks/` in the temp
//!   store); otherwise it fails, naming the ranks still missing.
//! - **Nothing half-written looks complete.** The target stays unpublished until
//!   [`finalize`](DistributedRechunk::finalize) has seen every rank of every stage finish.
//! - **Re-running is safe.** A rank that already finished does nothing; a rank re-run after a
//!   failure skips every task whose chunks are all stored (chunks are written atomically), and
//!   its remaining chunks are a pure function of its input, so it writes the same bytes.
//!
//! Unlike an in-process rechunk, intermediates are written durably (with `fsync`: another
//! machine reads them) and are kept until `finalize` (a re-run rank may need to read them
//! again), so a distributed run needs the scratch space of every intermediate at once.
//! `max_mem` bounds each rank's process.
//!
//! Must not: talk between ranks, or publish anything from a rank.

pub mod slurm;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::api::RechunkPlan;
use super::copy::fit_units;
use super::spec::ArrayRef;
use crate::array::Chunks;
use crate::collection::ComputeOptions;
use crate::error::BoxError;
use crate::graph::{Key, Layer, Task, TaskKind, value};
use crate::partition::{Partition, PartitionError, Partitioner};
use crate::scheduler::Threaded;
use crate::store::{Store, StoreError, ZarrArray, node_kind};

/// Where the ranks' "finished" markers live in the temp store (under the target's path).
const MARKERS: &str = ".chunkflow-ranks";

/// Which copy of a plan stage a [`StageCopy`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CopyKind {
    /// Source straight to target (the stage has no intermediate array).
    Direct,
    /// Source to the stage's intermediate array, in blocks of the read chunks.
    ToIntermediate,
    /// The stage's intermediate array to its target, in blocks of the write chunks.
    FromIntermediate,
}

impl fmt::Display for CopyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CopyKind::Direct => "direct copy",
            CopyKind::ToIntermediate => "to the intermediate",
            CopyKind::FromIntermediate => "from the intermediate",
        })
    }
}

/// One array's copy within a distributed stage: what is read, what is written, and in which
/// blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageCopy {
    /// The array's name in the group (`""` for a lone array).
    pub array: String,
    /// The plan stage (0-based) this copy belongs to.
    pub plan_stage: usize,
    /// Which copy of that plan stage this is.
    pub kind: CopyKind,
    /// The array read.
    pub source: ArrayRef,
    /// The array written.
    pub target: ArrayRef,
    /// The arrays' shape.
    pub shape: Vec<u64>,
    /// The chunks of the array written (its write grid: every write covers whole ones).
    pub target_chunks: Vec<u64>,
    /// The plan's block for this copy: its read chunks (into an intermediate) or write chunks.
    pub grid: Vec<u64>,
    /// Whether `source` is the rechunk's source (else a temporary array).
    pub from_source: bool,
    /// Whether `target` is the rechunk's final target (else a temporary array).
    pub to_target: bool,
}

impl StageCopy {
    /// The blocks shared among ranks: per axis, the plan's block rounded up to whole target
    /// chunks (the last block may be shorter). Each block is a union of whole target chunks.
    ///
    /// ```
    /// use chunkflow::rechunk::ArrayRef;
    /// use chunkflow::rechunk::distributed::{CopyKind, StageCopy};
    /// let at = |path: &str| ArrayRef { store: "/data".into(), path: path.into() };
    /// let copy = StageCopy {
    ///     array: String::new(), plan_stage: 0, kind: CopyKind::Direct,
    ///     source: at("a"), target: at("b"), shape: vec![10, 7],
    ///     target_chunks: vec![3, 2], grid: vec![4, 3], from_source: true, to_target: true,
    /// };
    /// // 4 rounds up to 6 (two chunks of 3), 3 up to 4 (two chunks of 2).
    /// assert_eq!(copy.blocks()?.to_string(), "((6, 4), (4, 3))");
    /// # Ok::<(), chunkflow::array::chunks::ChunkError>(())
    /// ```
    ///
    /// # Errors
    /// A zero chunk size or a wrong number of axes (a corrupt plan).
    pub fn blocks(&self) -> Result<Chunks, crate::array::chunks::ChunkError> {
        let shape: Vec<usize> = self.shape.iter().map(|&s| s as usize).collect();
        let unit: Vec<usize> = self
            .grid
            .iter()
            .zip(&self.target_chunks)
            .zip(&self.shape)
            .map(|((&g, &w), &s)| {
                let w = w.max(1);
                (g.min(s).max(1).div_ceil(w) * w) as usize
            })
            .collect();
        Chunks::regular(&shape, &unit)
    }

    /// How [`blocks`](Self::blocks) are shared among `ranks` (split along every axis).
    ///
    /// # Errors
    /// `ranks == 0`, or a corrupt plan.
    pub fn partitioner(&self, ranks: usize) -> Result<Partitioner, DistributedError> {
        let blocks = self
            .blocks()
            .map_err(|e| DistributedError::from(crate::Error::from(e)))?;
        let axes: Vec<usize> = (0..self.shape.len()).collect();
        Ok(Partitioner::by_axes(&blocks, &axes, ranks)?)
    }

    /// Rank `rank`'s share of this copy among `ranks`: a box of whole blocks (an idle, empty
    /// partition when there are fewer blocks than ranks). The shares of all ranks are disjoint
    /// and cover the array exactly once.
    ///
    /// # Errors
    /// `ranks == 0`, `rank >= ranks`, or a corrupt plan.
    pub fn share(&self, ranks: usize, rank: usize) -> Result<Partition, DistributedError> {
        Ok(self.partitioner(ranks)?.partition(rank)?)
    }

    /// How many blocks there are to share (the most ranks that can get work).
    pub fn num_blocks(&self) -> usize {
        self.blocks().map_or(1, |b| b.num_chunks().max(1))
    }
}

/// One distributed stage: copies (one per array) that may all run at once, and must all finish
/// before the next stage starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistributedStage {
    /// The stage's number, from 1.
    pub number: usize,
    /// The copies, one per array that has this many copies.
    pub copies: Vec<StageCopy>,
}

impl DistributedStage {
    /// The ranks worth running for this stage when up to `max_ranks` are available: more than
    /// the largest copy has blocks would only add idle ranks.
    ///
    /// # Panics
    /// Never; `max_ranks == 0` gives 1.
    pub fn ranks_for(&self, max_ranks: usize) -> usize {
        let blocks = self
            .copies
            .iter()
            .map(StageCopy::num_blocks)
            .max()
            .unwrap_or(1);
        max_ranks.min(blocks).max(1)
    }
}

impl fmt::Display for DistributedStage {
    /// `stage N:` and one line per copy (array, plan stage, kind, blocks shared by ranks).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stage {}:", self.number)?;
        for c in &self.copies {
            let n = c.num_blocks();
            write!(
                f,
                "\n    {}: plan stage {}, {}, {n} block{} of {:?}",
                if c.array.is_empty() {
                    "(root)"
                } else {
                    &c.array
                },
                c.plan_stage + 1,
                c.kind,
                if n == 1 { "" } else { "s" },
                c.grid
            )?;
        }
        Ok(())
    }
}

/// The distributed stages of `plan` (pure: a function of the plan alone).
pub fn distributed_stages(plan: &RechunkPlan) -> Vec<DistributedStage> {
    let mut stages: Vec<DistributedStage> = Vec::new();
    for array in &plan.arrays {
        let specs = &array.plan.stages;
        let mut step = 0;
        for (k, s) in specs.iter().enumerate() {
            let last = k + 1 == specs.len();
            let copy =
                |kind, source: &ArrayRef, target: &ArrayRef, chunks: &[u64], grid| StageCopy {
                    array: array.name.clone(),
                    plan_stage: k,
                    kind,
                    source: source.clone(),
                    target: target.clone(),
                    shape: s.shape.clone(),
                    target_chunks: chunks.to_vec(),
                    grid,
                    from_source: k == 0 && kind != CopyKind::FromIntermediate,
                    to_target: last && kind != CopyKind::ToIntermediate,
                };
            let copies = match &s.intermediate {
                Some(int) => vec![
                    copy(
                        CopyKind::ToIntermediate,
                        &s.source,
                        int,
                        &s.int_chunks,
                        s.read_chunks.clone(),
                    ),
                    copy(
                        CopyKind::FromIntermediate,
                        int,
                        &s.target,
                        &s.target_chunks,
                        s.write_chunks.clone(),
                    ),
                ],
                None => vec![copy(
                    CopyKind::Direct,
                    &s.source,
                    &s.target,
                    &s.target_chunks,
                    s.write_chunks.clone(),
                )],
            };
            for c in copies {
                if stages.len() == step {
                    stages.push(DistributedStage {
                        number: step + 1,
                        copies: Vec::new(),
                    });
                }
                stages[step].copies.push(c);
                step += 1;
            }
        }
    }
    stages
}

/// How one rank runs its share.
#[derive(Clone)]
pub struct RankOptions {
    /// Tasks meant to run at once: each task's share of the plan's `max_mem` (default: cores).
    pub workers: usize,
    /// How to run the tasks (default: a [`Threaded`] executor with `workers` threads and the
    /// plan's `max_mem` as its memory limit).
    pub compute: Option<ComputeOptions>,
}

impl Default for RankOptions {
    fn default() -> Self {
        RankOptions {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            compute: None,
        }
    }
}

/// What one rank did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankReport {
    /// The stage, from 1.
    pub stage: usize,
    /// The number of ranks of the stage.
    pub ranks: usize,
    /// This rank.
    pub rank: usize,
    /// What happened.
    pub outcome: RankOutcome,
    /// Chunks in the rank's share (every copy of the stage).
    pub chunks: u64,
    /// Copy tasks run.
    pub tasks: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// How a rank's run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RankOutcome {
    /// The rank copied its share (skipping tasks whose chunks were all stored).
    Written,
    /// The rank has no share (more ranks than blocks).
    Idle,
    /// The rank had already finished this stage; nothing was done.
    AlreadyDone,
}

impl fmt::Display for RankReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stage {}, rank {} of {}: ",
            self.stage, self.rank, self.ranks
        )?;
        match self.outcome {
            RankOutcome::Written => write!(
                f,
                "copied {} chunks in {} tasks ({:.2} s)",
                self.chunks, self.tasks, self.seconds
            ),
            RankOutcome::Idle => f.write_str("nothing to do (more ranks than blocks)"),
            RankOutcome::AlreadyDone => f.write_str("already finished; nothing to do"),
        }
    }
}

/// Which ranks have finished one stage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageProgress {
    /// The stage, from 1.
    pub stage: usize,
    /// For each rank count the stage was run with, the ranks that finished.
    pub finished: BTreeMap<usize, BTreeSet<usize>>,
}

impl StageProgress {
    /// Whether every rank of some run of the stage finished.
    pub fn is_complete(&self) -> bool {
        self.finished.iter().any(|(&n, done)| done.len() == n)
    }

    /// What is missing, for messages (`"ranks 3, 7 of 16 have not finished"`).
    pub fn missing(&self) -> String {
        if self.finished.is_empty() {
            return "no rank has finished it".into();
        }
        self.finished
            .iter()
            .map(|(&n, done)| {
                let missing: Vec<String> = (0..n)
                    .filter(|r| !done.contains(r))
                    .map(|r| r.to_string())
                    .collect();
                format!(
                    "rank{} {} of {n} ha{} not finished",
                    if missing.len() == 1 { "" } else { "s" },
                    abbreviate(&missing),
                    if missing.len() == 1 { "s" } else { "ve" }
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// `a, b, c, ... (N in all)` for long lists.
fn abbreviate(items: &[String]) -> String {
    const SHOWN: usize = 20;
    if items.len() <= SHOWN {
        items.join(", ")
    } else {
        format!(
            "{}, ... ({} in all)",
            items[..SHOWN].join(", "),
            items.len()
        )
    }
}

/// How [`finalize`](DistributedRechunk::finalize) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalizeOutcome {
    /// The target was published and the intermediates removed.
    Published,
    /// The target had already been published (by an earlier `finalize`).
    AlreadyPublished,
}

/// What went wrong in a distributed rechunk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DistributedError {
    /// A rank or `finalize` ran before `prepare`.
    #[error(
        "no rechunk is prepared at {target}: run the prepare step once before any rank \
         (`chunkflow rechunk SRC DST ... --prepare`; the --slurm driver does it)"
    )]
    NotPrepared {
        /// The target.
        target: String,
    },
    /// The target was already published: the rechunk is over.
    #[error("the rechunk into {target} is already finalized; there is nothing left to run")]
    AlreadyFinalized {
        /// The target.
        target: String,
    },
    /// The prepared plan differs from this process's.
    #[error(
        "the rechunk prepared at {target} has another plan than this process computed; run \
         every rank and the finalize step with the driver's options (the same --chunks, \
         --max-mem, --min-mem, --threads, --array and paths)"
    )]
    PlanMismatch {
        /// The target.
        target: String,
    },
    /// The plan has no stores (it was read back from JSON).
    #[error("a plan read back from JSON has no stores attached; plan it with plan_rechunk")]
    NoStores,
    /// A stage number out of range.
    #[error(
        "there is no stage {stage}: this rechunk has {stages} distributed stage{} (numbered \
         from 1; a plan stage through an intermediate array counts as two)",
        if *.stages == 1 { "" } else { "s" }
    )]
    NoSuchStage {
        /// The stage asked for.
        stage: usize,
        /// How many there are.
        stages: usize,
    },
    /// A rank of stage `stage` started before stage `stage - 1` was complete.
    #[error(
        "stage {stage} cannot start: stage {previous} is not complete ({missing}); run those \
         ranks first (with --stage {previous})"
    )]
    PreviousStageIncomplete {
        /// The stage asked for.
        stage: usize,
        /// The stage before it.
        previous: usize,
        /// Which ranks are missing.
        missing: String,
    },
    /// `finalize` found stages with ranks that have not finished.
    #[error(
        "cannot finalize {target}: {detail}; nothing was published (re-run the missing ranks, \
         then finalize again)"
    )]
    Incomplete {
        /// The target.
        target: String,
        /// Which stages and ranks are missing.
        detail: String,
    },
    /// A stage's job failed on the cluster (see [`slurm`]).
    #[error("{0}")]
    StageFailed(Box<slurm::StageFailure>),
    /// Waiting for the cluster took longer than allowed.
    #[error(
        "gave up waiting after {seconds} s: stage {stage} (job {job}) had not finished; the \
         remaining jobs were cancelled and nothing was published"
    )]
    Timeout {
        /// The stage being waited for.
        stage: usize,
        /// Its job id.
        job: String,
        /// The limit, in seconds.
        seconds: u64,
    },
    /// A cluster command (`sbatch`, `scontrol`, `scancel`) failed.
    #[error("`{command}` failed: {message}")]
    Command {
        /// The command line.
        command: String,
        /// Its error output, or why it could not start.
        message: String,
    },
    /// Partitioning failed (`ranks == 0`, `rank >= ranks`).
    #[error(transparent)]
    Partition(#[from] PartitionError),
    /// A store operation failed.
    #[error(transparent)]
    Store(Box<StoreError>),
    /// Any other chunkflow error (a failing copy task, a bad plan).
    #[error(transparent)]
    Other(Box<crate::Error>),
}

impl From<StoreError> for DistributedError {
    fn from(e: StoreError) -> Self {
        DistributedError::Store(Box::new(e))
    }
}

impl From<crate::Error> for DistributedError {
    fn from(e: crate::Error) -> Self {
        DistributedError::Other(Box::new(e))
    }
}

impl From<DistributedError> for crate::Error {
    fn from(e: DistributedError) -> Self {
        match e {
            DistributedError::Other(e) => *e,
            DistributedError::Store(e) => (*e).into(),
            DistributedError::Partition(e) => e.into(),
            e @ (DistributedError::StageFailed(_) | DistributedError::Timeout { .. }) => {
                crate::Error::TaskFailed {
                    key: Key::new("distributed-rechunk"),
                    source: Box::new(e),
                }
            }
            other => crate::Error::InvalidArgument(other.to_string()),
        }
    }
}

/// A rechunk plan run as distributed stages by independent ranks (see the module docs).
#[derive(Clone, Debug)]
pub struct DistributedRechunk {
    plan: RechunkPlan,
    stages: Vec<DistributedStage>,
}

impl DistributedRechunk {
    /// Wraps a plan from [`plan_rechunk`](super::plan_rechunk) (with its stores attached).
    ///
    /// # Errors
    /// [`DistributedError::NoStores`] for a plan read back from JSON; an in-memory temp store
    /// (the default for a target that is not a local directory) with a target other ranks can
    /// reach.
    pub fn new(plan: RechunkPlan) -> Result<DistributedRechunk, DistributedError> {
        let Some((_, target, temp, _)) = plan.distributed_stores() else {
            return Err(DistributedError::NoStores);
        };
        let private = |s: &Store| s.description().starts_with("memory://");
        if private(temp) && !private(target) {
            // The default temp store of a target that is not a local directory (s3://).
            return Err(crate::Error::InvalidArgument(format!(
                "the intermediates of a distributed rechunk into {} need a store every rank can                  reach; give one with temp (--temp s3://bucket/tmp, or a shared directory)",
                plan.target
            ))
            .into());
        }
        let stages = distributed_stages(&plan);
        Ok(DistributedRechunk { plan, stages })
    }

    /// The plan.
    pub fn plan(&self) -> &RechunkPlan {
        &self.plan
    }

    /// The distributed stages, stage 1 first.
    pub fn stages(&self) -> &[DistributedStage] {
        &self.stages
    }

    /// Stage `number` (from 1).
    ///
    /// # Errors
    /// [`DistributedError::NoSuchStage`].
    pub fn stage(&self, number: usize) -> Result<&DistributedStage, DistributedError> {
        number
            .checked_sub(1)
            .and_then(|i| self.stages.get(i))
            .ok_or(DistributedError::NoSuchStage {
                stage: number,
                stages: self.stages.len(),
            })
    }

    fn stores(&self) -> Result<(&Store, &Store, &Store), DistributedError> {
        self.plan
            .distributed_stores()
            .map(|(s, t, tmp, _)| (s, t, tmp))
            .ok_or(DistributedError::NoStores)
    }

    fn markers_prefix(&self) -> String {
        join(&self.plan.target.path, MARKERS)
    }

    fn marker_key(&self, stage: usize, ranks: usize, rank: usize) -> String {
        format!(
            "{}/stage-{stage}/of-{ranks}/rank-{rank}.json",
            self.markers_prefix()
        )
    }

    /// The driver's first step, run once: checks the target (an existing one needs the plan's
    /// `overwrite`; an interrupted run needs `resume`), saves the plan beside it, and creates
    /// the intermediate arrays and the target, unpublished. With `resume`, what finished ranks
    /// wrote is kept and they are not run again.
    ///
    /// # Errors
    /// As [`RechunkPlan::prepare`].
    pub fn prepare(&self) -> Result<(), DistributedError> {
        let resume = self.plan.is_resume();
        drop(self.plan.clone().prepare()?);
        if !resume {
            // A fresh run: forget the ranks of any earlier run into this target.
            let (_, _, temp) = self.stores()?;
            temp.erase_prefix(&self.markers_prefix())?;
        }
        Ok(())
    }

    /// Checks that this plan was prepared at the target.
    fn check_prepared(&self) -> Result<(), DistributedError> {
        let (_, target, _) = self.stores()?;
        let target_name = self.plan.target.to_string();
        let Some(saved) = target.get(&self.plan.progress_file_key())? else {
            if node_kind(target, &self.plan.target.path)?.is_some() {
                return Err(DistributedError::AlreadyFinalized {
                    target: target_name,
                });
            }
            return Err(DistributedError::NotPrepared {
                target: target_name,
            });
        };
        let saved: RechunkPlan = serde_json::from_slice(&saved).map_err(|e| {
            crate::Error::InvalidArgument(format!(
                "the saved plan at {target_name} is unreadable ({e}); prepare again with overwrite"
            ))
        })?;
        if saved.arrays != self.plan.arrays || saved.max_mem != self.plan.max_mem {
            return Err(DistributedError::PlanMismatch {
                target: target_name,
            });
        }
        Ok(())
    }

    /// Which ranks have finished stage `stage`.
    ///
    /// # Errors
    /// A stage out of range, or the store failing.
    pub fn progress(&self, stage: usize) -> Result<StageProgress, DistributedError> {
        self.stage(stage)?;
        let (_, _, temp) = self.stores()?;
        let prefix = format!("{}/stage-{stage}/", self.markers_prefix());
        let mut finished: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for key in temp.list(&prefix)? {
            let rest = key
                .trim_start_matches('/')
                .strip_prefix(prefix.trim_start_matches('/'))
                .unwrap_or("");
            let parsed = rest.split_once('/').and_then(|(of, rank)| {
                let n = of.strip_prefix("of-")?.parse::<usize>().ok()?;
                let r = rank
                    .strip_prefix("rank-")?
                    .strip_suffix(".json")?
                    .parse::<usize>()
                    .ok()?;
                (r < n).then_some((n, r))
            });
            if let Some((n, r)) = parsed {
                finished.entry(n).or_default().insert(r);
            }
        }
        Ok(StageProgress { stage, finished })
    }

    /// Runs rank `rank`'s share (of `ranks`) of stage `stage` (from 1): every copy of the
    /// stage, restricted to the rank's [`share`](StageCopy::share). Records that the rank
    /// finished, so the next stage and `finalize` can check it.
    ///
    /// # Errors
    /// Before anything is written: the stage or rank out of range, no prepared run at the
    /// target (or one with another plan, or one already finalized), the previous stage not
    /// complete. Then the first failing copy task (re-running the rank resumes).
    pub fn run_rank(
        &self,
        stage: usize,
        ranks: usize,
        rank: usize,
        options: &RankOptions,
    ) -> Result<RankReport, DistributedError> {
        let start = Instant::now();
        let this = self.stage(stage)?;
        if ranks == 0 {
            return Err(PartitionError::NoRanks.into());
        }
        if rank >= ranks {
            return Err(PartitionError::RankOutOfRange { rank, ranks }.into());
        }
        self.check_prepared()?;
        let (_, _, temp) = self.stores()?;
        let marker = self.marker_key(stage, ranks, rank);
        let mut report = RankReport {
            stage,
            ranks,
            rank,
            outcome: RankOutcome::AlreadyDone,
            chunks: 0,
            tasks: 0,
            seconds: 0.0,
        };
        if temp.get(&marker)?.is_some() {
            return Ok(report);
        }
        if stage > 1 {
            let previous = self.progress(stage - 1)?;
            if !previous.is_complete() {
                return Err(DistributedError::PreviousStageIncomplete {
                    stage,
                    previous: stage - 1,
                    missing: previous.missing(),
                });
            }
        }
        let mut tasks = Vec::new();
        let mut barriers = Vec::new();
        let workers = options.workers.max(1);
        for (c, copy) in this.copies.iter().enumerate() {
            let share = copy.share(ranks, rank)?;
            let region = share.region_u64();
            if share.is_idle() || region.iter().any(|r| r.is_empty()) {
                continue;
            }
            let (src, dst) = self.open_copy(copy)?;
            report.chunks += chunks_in(&region, dst.write_shape());
            let cap = task_memory_cap(&src, &dst, self.plan.max_mem, workers);
            let step = fit_units(&src, &dst, &copy.grid, &region, cap);
            let name = format!("rechunk-stage-{stage}-copy-{c}");
            let mut keys = Vec::new();
            for (i, r) in boxes(&region, &step).into_iter().enumerate() {
                let key = Key::chunk(name.as_str(), &[i]);
                keys.push(key.clone());
                let working = src.copy_working_bytes(&dst, &r);
                let (src, dst) = (src.clone(), dst.clone());
                tasks.push(
                    Task::call(key, Vec::<Key>::new(), move |_| {
                        copy_unless_stored(&src, &dst, &r)?;
                        Ok(value(()))
                    })
                    .with_kind(TaskKind::Write)
                    .with_working_bytes(working),
                );
            }
            report.tasks += keys.len();
            let barrier = Key::new(format!("{name}-done"));
            tasks.push(Task::call(barrier.clone(), keys, move |_| {
                dst.free_copy_buffers();
                Ok(value(()))
            }));
            barriers.push(barrier);
        }
        report.outcome = if barriers.is_empty() {
            RankOutcome::Idle
        } else {
            let done = Key::new(format!("rechunk-stage-{stage}-rank-{rank}"));
            tasks.push(Task::call(done.clone(), barriers, |_| Ok(value(()))));
            let layer = Arc::new(Layer::new("rechunk-rank", tasks, vec![]));
            let compute = options.compute.clone().unwrap_or_else(|| {
                ComputeOptions::default()
                    .executor(Threaded::new(workers).with_memory_limit(self.plan.max_mem))
            });
            compute.run(std::slice::from_ref(&layer), std::slice::from_ref(&done))?;
            RankOutcome::Written
        };
        report.seconds = start.elapsed().as_secs_f64();
        let json = serde_json::to_vec(&report).expect("reports serialise");
        temp.set(&marker, &json)?;
        Ok(report)
    }

    /// The arrays a copy reads and writes, opened as `prepare` left them (nothing is written).
    fn open_copy(&self, copy: &StageCopy) -> Result<(ZarrArray, ZarrArray), DistributedError> {
        let (source, target, temp) = self.stores()?;
        let array = self
            .plan
            .arrays
            .iter()
            .find(|a| a.name == copy.array)
            .ok_or_else(|| {
                crate::Error::InvalidArgument(format!(
                    "array {:?} is not in the plan (a corrupt stage)",
                    copy.array
                ))
            })?;
        let original = ZarrArray::open(source, &array.plan.stages[0].source.path)?;
        let src = if copy.from_source {
            original.clone()
        } else {
            ZarrArray::open(temp, &copy.source.path)?
        };
        let dst = if copy.to_target {
            let spec = self
                .plan
                .final_target_spec(&original, &array.plan.stages[copy.plan_stage])
                .ok_or(DistributedError::NoStores)?;
            // Unpublished: no metadata exists, so this writes nothing.
            ZarrArray::create_unpublished(target, &copy.target.path, &spec, false)?
        } else {
            ZarrArray::open(temp, &copy.target.path)?
        };
        Ok((src, dst))
    }

    /// The driver's last step, run once after every stage: checks that every rank of every
    /// stage finished, then publishes the target (metadata, group attributes, consolidated
    /// metadata) and removes the progress file, the rank markers and (unless kept) the
    /// intermediates. Running it again after success does nothing.
    ///
    /// # Errors
    /// [`DistributedError::Incomplete`] (nothing is published), no prepared run, another plan.
    pub fn finalize(&self) -> Result<FinalizeOutcome, DistributedError> {
        match self.check_prepared() {
            Err(DistributedError::AlreadyFinalized { .. }) => {
                return Ok(FinalizeOutcome::AlreadyPublished);
            }
            other => other?,
        }
        let mut missing = Vec::new();
        for stage in 1..=self.stages.len() {
            let progress = self.progress(stage)?;
            if !progress.is_complete() {
                missing.push(format!("stage {stage}: {}", progress.missing()));
            }
        }
        if !missing.is_empty() {
            return Err(DistributedError::Incomplete {
                target: self.plan.target.to_string(),
                detail: missing.join("; "),
            });
        }
        self.plan
            .clone()
            .into_resume()
            .prepare()?
            .publish_written()?;
        let (_, _, temp) = self.stores()?;
        temp.erase_prefix(&self.markers_prefix())?;
        if let Some((_, _, _, Some(dir))) = self.plan.distributed_stores() {
            // Our own `<target>.rechunk-tmp`: remove it once nothing of ours is left in it.
            let _ = remove_empty_dirs(dir);
        }
        Ok(FinalizeOutcome::Published)
    }
}

/// What one copy task may hold: a share of `max_mem` among `workers` tasks, or all of it when
/// even one target chunk does not fit a share (such tasks then run one at a time).
fn task_memory_cap(src: &ZarrArray, dst: &ZarrArray, max_mem: u64, workers: usize) -> u64 {
    let share = max_mem / workers.max(1) as u64;
    let one: Vec<Range<u64>> = dst
        .write_shape()
        .iter()
        .zip(dst.shape())
        .map(|(&w, &s)| 0..w.min(s))
        .collect();
    if src.copy_working_bytes(dst, &one) <= share {
        share
    } else {
        max_mem
    }
}

/// `region` cut into boxes of `step` elements per axis (the last ones shorter), in C order.
/// `region` starts on the step's grid, so every box is aligned like the step.
fn boxes(region: &[Range<u64>], step: &[u64]) -> Vec<Vec<Range<u64>>> {
    let per_axis: Vec<Vec<Range<u64>>> = region
        .iter()
        .zip(step)
        .map(|(r, &s)| {
            let s = s.max(1);
            let mut out = Vec::new();
            let mut a = r.start;
            while a < r.end {
                let b = (a + s).min(r.end);
                out.push(a..b);
                a = b;
            }
            out
        })
        .collect();
    super::copy::cartesian(per_axis)
}

/// The number of `write`-shaped chunks `region` touches.
fn chunks_in(region: &[Range<u64>], write: &[u64]) -> u64 {
    region
        .iter()
        .zip(write)
        .map(|(r, &w)| r.end.div_ceil(w.max(1)) - r.start / w.max(1))
        .product()
}

/// Copies `region` unless every target chunk in it is stored already (a re-run rank).
fn copy_unless_stored(
    src: &ZarrArray,
    dst: &ZarrArray,
    region: &[Range<u64>],
) -> Result<(), BoxError> {
    let write = dst.write_shape();
    let lo: Vec<u64> = region
        .iter()
        .zip(write)
        .map(|(r, &w)| r.start / w)
        .collect();
    let hi: Vec<u64> = region
        .iter()
        .zip(write)
        .map(|(r, &w)| r.end.div_ceil(w))
        .collect();
    let mut all = true;
    for_each_index(&lo, &hi, &mut |index| {
        if all && !dst.chunk_exists(index)? {
            all = false;
        }
        Ok(())
    })?;
    if !all {
        src.copy_region_to(dst, region)?;
    }
    Ok(())
}

/// Calls `f` with every index in the box `lo..hi`, in C order.
fn for_each_index(
    lo: &[u64],
    hi: &[u64],
    f: &mut dyn FnMut(&[u64]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    if lo.iter().zip(hi).any(|(l, h)| l >= h) {
        return Ok(());
    }
    let mut index = lo.to_vec();
    loop {
        f(&index)?;
        let mut axis = index.len();
        loop {
            if axis == 0 {
                return Ok(());
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

fn join(a: &str, b: &str) -> String {
    match (a.trim_matches('/'), b.trim_matches('/')) {
        ("", b) => b.to_string(),
        (a, "") => a.to_string(),
        (a, b) => format!("{a}/{b}"),
    }
}

/// Removes `dir` and the empty directories under it (fails, harmlessly, if anything is left).
fn remove_empty_dirs(dir: &std::path::Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            remove_empty_dirs(&path)?;
        }
    }
    std::fs::remove_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_tile_the_region() {
        let b = boxes(&[4..10, 0..3], &[4, 2]);
        assert_eq!(
            b,
            vec![
                vec![4..8, 0..2],
                vec![4..8, 2..3],
                vec![8..10, 0..2],
                vec![8..10, 2..3]
            ]
        );
    }

    #[test]
    fn chunk_counts() {
        assert_eq!(chunks_in(&[0..10, 3..6], &[3, 3]), 4);
        assert_eq!(chunks_in(&[0..0, 0..6], &[3, 3]), 0);
    }

    #[test]
    fn progress_messages() {
        let mut p = StageProgress {
            stage: 1,
            finished: BTreeMap::new(),
        };
        assert!(!p.is_complete());
        assert_eq!(p.missing(), "no rank has finished it");
        p.finished.insert(4, [0, 1, 3].into());
        assert_eq!(p.missing(), "rank 2 of 4 has not finished");
        p.finished.get_mut(&4).unwrap().insert(2);
        assert!(p.is_complete());
    }
}
