//! [`rechunk`]: change an on-disk array's (or a whole group's) chunking under a memory budget,
//! the way Python's rechunker does, on chunkflow's executors.
//!
//! Steps: [`plan_rechunk`] opens the source and computes each array's plan (pure: nothing is
//! written; `--dry-run` stops here); [`RechunkPlan::prepare`] creates the target (unpublished:
//! no metadata yet) and the intermediate arrays, and builds the task graph;
//! [`Rechunked::execute`] runs it under the memory budget and then *publishes* the target
//! (writes its metadata, group attributes and consolidated metadata) and removes the
//! intermediates. So an interrupted rechunk never leaves a target that opens as complete, and
//! `resume` picks it up: a progress file beside the target records the plan, and chunks already
//! written are skipped.
//!
//! The budget: the plan is made for `max_mem / workers` per task (rechunker's `max_mem` is per
//! worker; ours bounds the whole run), and the executor admits copy tasks only while their
//! declared bytes fit in `max_mem`.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::algorithm::{
    Consolidation, Plan, PlanWarning, multistage_rechunking_plan, rechunking_plan,
};
use super::copy::{CopyBudget, copy_tasks};
use super::spec::{ArrayRef, CopySpec, StagedCopySpec};
use crate::array::DType;
use crate::collection::ComputeOptions;
use crate::error::{Error, Result};
use crate::graph::dot::{DotOptions, write_graph};
use crate::graph::{FreezeOptions, Key, Layer, Task, TaskGraph, value};
use crate::scheduler::Threaded;
use crate::store::{
    ArraySpec, Compression, NodeKind, Store, StoreError, ZarrArray, ZarrFormat,
    consolidate_metadata, create_group, group_attributes, list_children, node_kind,
};

/// The chunks to rechunk to: sizes per axis, or sizes per dimension name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetChunks {
    /// One size per axis; `None` keeps the axis whole (`-1` in the string form).
    Sizes(Vec<Option<u64>>),
    /// Sizes by dimension name (`time=4096,lat=32`); other dimensions keep their chunks.
    ByName(Vec<(String, Option<u64>)>),
}

impl std::str::FromStr for TargetChunks {
    type Err = Error;

    /// Parses `"4096,32,32"`, `"-1,32,32"` or `"time=4096,lat=32"`.
    fn from_str(s: &str) -> Result<Self> {
        let size = |v: &str| -> Result<Option<u64>> {
            let v = v.trim();
            if v == "-1" {
                return Ok(None);
            }
            match v.parse::<u64>() {
                Ok(0) | Err(_) => Err(Error::InvalidArgument(format!(
                    "chunk size {v:?} is not a positive whole number (or -1 for a whole axis)"
                ))),
                Ok(n) => Ok(Some(n)),
            }
        };
        let parts: Vec<&str> = s.split(',').filter(|p| !p.trim().is_empty()).collect();
        if parts.is_empty() {
            return Err(Error::InvalidArgument("no target chunks given".into()));
        }
        if parts.iter().all(|p| p.contains('=')) {
            parts
                .iter()
                .map(|p| {
                    let (k, v) = p.split_once('=').expect("checked");
                    Ok((k.trim().to_string(), size(v)?))
                })
                .collect::<Result<_>>()
                .map(TargetChunks::ByName)
        } else if parts.iter().any(|p| p.contains('=')) {
            Err(Error::InvalidArgument(format!(
                "target chunks {s:?} mix names and positions; use either 4096,32,32 or time=4096,lat=32"
            )))
        } else {
            parts
                .iter()
                .map(|p| size(p))
                .collect::<Result<_>>()
                .map(TargetChunks::Sizes)
        }
    }
}

/// How to rechunk.
#[derive(Clone, Debug)]
pub struct RechunkOptions {
    /// The memory the whole run may use, in bytes.
    pub max_mem: u64,
    /// With a minimum, plans may have several stages so no intermediate read is smaller than
    /// this (rechunker's `min_mem`).
    pub min_mem: Option<u64>,
    /// Where intermediate arrays go (default: `<target>.rechunk-tmp` beside a filesystem
    /// target, memory for a memory target).
    pub temp: Option<Store>,
    /// Replace an existing target.
    pub overwrite: bool,
    /// Continue an interrupted rechunk into the same target.
    pub resume: bool,
    /// Keep the intermediate arrays after success.
    pub keep_intermediate: bool,
    /// The target's Zarr format (default: the source's).
    pub format: Option<ZarrFormat>,
    /// The target's compression (default: the source's).
    pub compression: Option<Compression>,
    /// For a group: rechunk only these arrays (default: all).
    pub arrays: Option<Vec<String>>,
    /// Tasks meant to run at once (the plan gives each `max_mem / workers`); default: cores.
    pub workers: usize,
}

impl RechunkOptions {
    /// Options with a memory budget and defaults for the rest.
    pub fn new(max_mem: u64) -> Self {
        RechunkOptions {
            max_mem,
            min_mem: None,
            temp: None,
            overwrite: false,
            resume: false,
            keep_intermediate: false,
            format: None,
            compression: None,
            arrays: None,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// One array's plan.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArrayPlan {
    /// The array's name in the group (`""` for a lone array).
    pub name: String,
    /// The source's chunks.
    pub source_chunks: Vec<u64>,
    /// The target's chunks.
    pub target_chunks: Vec<u64>,
    /// The stages.
    pub plan: StagedCopySpec,
    /// The planner's warnings (excessive IO).
    pub warnings: Vec<String>,
}

/// What a rechunk will do: every array's plan. Computing it writes nothing.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RechunkPlan {
    /// The source store and path.
    pub source: ArrayRef,
    /// The target store and path.
    pub target: ArrayRef,
    /// Whether the source is a group.
    pub group: bool,
    /// The memory budget.
    pub max_mem: u64,
    /// Per array.
    pub arrays: Vec<ArrayPlan>,
    #[serde(skip)]
    stores: Option<Stores>,
    #[serde(skip)]
    options: Option<OptionsSnapshot>,
}

#[derive(Clone, Debug)]
struct Stores {
    source: Store,
    target: Store,
    temp: Store,
    /// The temp store is our own `<target>.rechunk-tmp` directory (removed after success).
    temp_dir: Option<std::path::PathBuf>,
}

#[derive(Clone, Debug)]
struct OptionsSnapshot {
    /// Tasks meant to run at once (each copy task aims at `max_mem / workers`).
    workers: usize,
    overwrite: bool,
    resume: bool,
    keep_intermediate: bool,
    format: Option<ZarrFormat>,
    compression: Option<Compression>,
}

const PROGRESS_KEY: &str = ".chunkflow-rechunk.json";

/// Plans the rechunk of the array or group at `source_path` into `target_path` (writes
/// nothing).
pub fn plan_rechunk(
    source: &Store,
    source_path: &str,
    chunks: &TargetChunks,
    target: &Store,
    target_path: &str,
    options: &RechunkOptions,
) -> Result<RechunkPlan> {
    let kind = node_kind(source, source_path)?.map(|(k, _)| k);
    let (group, names): (bool, Vec<String>) = match kind {
        Some(NodeKind::Array) => (false, vec![String::new()]),
        Some(NodeKind::Group) => {
            let children = list_children(source, source_path)?;
            let mut names = children.arrays;
            if let Some(wanted) = &options.arrays {
                for w in wanted {
                    if !names.contains(w) {
                        return Err(Error::InvalidArgument(format!(
                            "array {w:?} is not in the group {}; it has {:?}",
                            describe(source, source_path),
                            names
                        )));
                    }
                }
                names.retain(|n| wanted.contains(n));
            }
            (true, names)
        }
        None => {
            return Err(StoreError::NotFound {
                store: source.description().into(),
                path: source_path.into(),
                expected: "array or group",
                found: "nothing there".into(),
            }
            .into());
        }
    };
    let (temp, temp_dir) = match &options.temp {
        Some(t) => (t.clone(), None),
        None => default_temp(target, target_path),
    };
    let mut arrays = Vec::new();
    for name in names {
        let src_path = join(source_path, &name);
        let src = ZarrArray::open(source, &src_path)?;
        let target_chunks = resolve_chunks(&src, chunks, group)?;
        let (plan, warnings) = plan_array(&src, &target_chunks, options)?;
        let src_ref = ArrayRef {
            store: source.description().into(),
            path: src_path.clone(),
        };
        let final_ref = ArrayRef {
            store: target.description().into(),
            path: join(target_path, &name),
        };
        let temp_ref = |what: String| ArrayRef {
            store: temp.description().into(),
            path: join(&join(target_path, &name), &what)
                .trim_start_matches('/')
                .to_string(),
        };
        let n = plan.stages.len();
        let mut stages = Vec::with_capacity(n);
        let mut from = src_ref.clone();
        for (k, s) in plan.stages.iter().enumerate() {
            let last = k + 1 == n;
            let to = if last {
                final_ref.clone()
            } else {
                temp_ref(format!("stage-{k}"))
            };
            let needs_int = s.int_chunks != s.read_chunks;
            stages.push(CopySpec {
                source: from.clone(),
                intermediate: needs_int.then(|| temp_ref(format!("intermediate-{k}"))),
                target: to.clone(),
                shape: src.shape().to_vec(),
                dtype: src.dtype(),
                read_chunks: s.read_chunks.clone(),
                int_chunks: s.int_chunks.clone(),
                write_chunks: s.write_chunks.clone(),
                target_chunks: if last {
                    target_chunks.clone()
                } else {
                    s.write_chunks.clone()
                },
            });
            from = to;
        }
        arrays.push(ArrayPlan {
            name,
            source_chunks: src.chunk_shape().to_vec(),
            target_chunks,
            plan: StagedCopySpec::new(stages)
                .map_err(|e| Error::InvalidArgument(format!("internal plan error: {e}")))?,
            warnings: warnings.iter().map(|w| w.to_string()).collect(),
        });
    }
    Ok(RechunkPlan {
        source: ArrayRef {
            store: source.description().into(),
            path: source_path.into(),
        },
        target: ArrayRef {
            store: target.description().into(),
            path: target_path.into(),
        },
        group,
        max_mem: options.max_mem,
        arrays,
        stores: Some(Stores {
            // Nothing in a rechunk may write to its source.
            source: source.read_only(),
            target: target.clone(),
            temp,
            temp_dir,
        }),
        options: Some(OptionsSnapshot {
            workers: options.workers.max(1),
            overwrite: options.overwrite,
            resume: options.resume,
            keep_intermediate: options.keep_intermediate,
            format: options.format,
            compression: options.compression,
        }),
    })
}

/// Plans and prepares in one call: the usual entry point.
///
/// ```
/// use chunkflow::array::DType;
/// use chunkflow::rechunk::{RechunkOptions, rechunk};
/// use chunkflow::store::{ArraySpec, Store, ZarrArray};
/// let store = Store::memory();
/// let src = ZarrArray::create(&store, "a", &ArraySpec::new(vec![8, 8], vec![1, 8], DType::F32), false).unwrap();
/// for t in 0..8 {
///     let row = ndarray::ArrayD::from_elem(ndarray::IxDyn(&[1, 8]), t as f32);
///     src.write_chunk(&[t, 0], row.view()).unwrap();
/// }
/// let r = rechunk(&store, "a", &"8,2".parse().unwrap(), &store, "b", &RechunkOptions::new(1 << 20)).unwrap();
/// r.execute().unwrap();
/// let b = ZarrArray::open(&store, "b").unwrap();
/// assert_eq!(b.chunk_shape(), &[8, 2]);
/// assert_eq!(b.read_all::<f32>().unwrap(), src.read_all::<f32>().unwrap());
/// ```
pub fn rechunk(
    source: &Store,
    source_path: &str,
    chunks: &TargetChunks,
    target: &Store,
    target_path: &str,
    options: &RechunkOptions,
) -> Result<Rechunked> {
    plan_rechunk(source, source_path, chunks, target, target_path, options)?.prepare()
}

fn plan_array(
    src: &ZarrArray,
    target_chunks: &[u64],
    options: &RechunkOptions,
) -> Result<(Plan, Vec<PlanWarning>)> {
    let shape: Vec<u64> = src.shape().iter().map(|&s| s.max(1)).collect();
    let source_chunks: Vec<u64> = src
        .chunk_shape()
        .iter()
        .zip(&shape)
        .map(|(&c, &s)| c.min(s))
        .collect();
    let itemsize = src.dtype().itemsize() as u64;
    let bytes = |c: &[u64]| c.iter().product::<u64>() * itemsize;
    // Give each of `workers` tasks its share, less what a copy task holds besides its block
    // (a source chunk being decoded, a target chunk being encoded twice over).
    let overhead = bytes(&source_chunks) + 2 * bytes(target_chunks);
    let floor = bytes(&source_chunks).max(bytes(target_chunks));
    let per_task = (options.max_mem / options.workers.max(1) as u64).saturating_sub(overhead);
    // When a share cannot hold a task, tasks run one at a time with the whole budget, less
    // what a copy task holds besides its region (a source chunk decoding: twice its size).
    let alone = options.max_mem.saturating_sub(2 * bytes(&source_chunks));
    let plan_mem = if per_task >= floor {
        per_task
    } else if alone >= floor {
        alone
    } else {
        options.max_mem
    };
    let plan = match options.min_mem {
        Some(min_mem) => multistage_rechunking_plan(
            &shape,
            &source_chunks,
            target_chunks,
            itemsize,
            min_mem.min(plan_mem),
            plan_mem,
            Consolidation::default(),
        )?,
        None => Plan {
            stages: vec![rechunking_plan(
                &shape,
                &source_chunks,
                target_chunks,
                itemsize,
                plan_mem,
                Consolidation::default(),
            )?],
            warnings: vec![],
        },
    };
    let warnings = plan.warnings.clone();
    Ok((plan, warnings))
}

/// The target chunks of one array, from sizes or dimension names, clipped to the shape.
fn resolve_chunks(src: &ZarrArray, chunks: &TargetChunks, group: bool) -> Result<Vec<u64>> {
    let shape = src.shape();
    let sizes: Vec<Option<u64>> = match chunks {
        TargetChunks::Sizes(s) => {
            if s.len() != shape.len() {
                return Err(Error::InvalidArgument(format!(
                    "{} target chunk sizes given for {} {}-d array{}; give one per axis{}",
                    s.len(),
                    src.path(),
                    shape.len(),
                    if group { " in a group" } else { "" },
                    if group {
                        ", or use names (time=4096,lat=32) for a group"
                    } else {
                        ""
                    }
                )));
            }
            s.clone()
        }
        TargetChunks::ByName(named) => {
            let dims = src.dimension_names().ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "array {} has no dimension names, so chunks by name cannot apply; give sizes \
                     per axis",
                    src.path()
                ))
            })?;
            if !group {
                for (name, _) in named {
                    if !dims.contains(name) {
                        return Err(Error::InvalidArgument(format!(
                            "array {} has no dimension {name:?}; its dimensions are {dims:?}",
                            src.path()
                        )));
                    }
                }
            }
            dims.iter()
                .zip(src.chunk_shape())
                .map(|(d, &c)| {
                    named
                        .iter()
                        .find(|(n, _)| n == d)
                        .map_or(Some(c), |(_, size)| *size)
                })
                .collect()
        }
    };
    Ok(sizes
        .iter()
        .zip(shape)
        .map(|(c, &s)| c.unwrap_or(s).min(s).max(1))
        .collect())
}

fn join(a: &str, b: &str) -> String {
    match (a.trim_matches('/'), b.trim_matches('/')) {
        ("", b) => b.to_string(),
        (a, "") => a.to_string(),
        (a, b) => format!("{a}/{b}"),
    }
}

fn describe(store: &Store, path: &str) -> String {
    ArrayRef {
        store: store.description().into(),
        path: path.into(),
    }
    .to_string()
}

/// `<target dir>.rechunk-tmp` beside a filesystem target; memory otherwise.
fn default_temp(target: &Store, target_path: &str) -> (Store, Option<std::path::PathBuf>) {
    let desc = target.description();
    let dir = desc.strip_prefix("file://").unwrap_or(desc);
    if !desc.contains("://") || desc.starts_with("file://") {
        let base = std::path::Path::new(dir).join(target_path);
        let tmp = std::path::PathBuf::from(format!(
            "{}.rechunk-tmp",
            base.display().to_string().trim_end_matches('/')
        ));
        if let Ok(store) = Store::filesystem(&tmp) {
            return (store, Some(tmp));
        }
    }
    (Store::memory(), None)
}

impl RechunkPlan {
    /// The plan as pretty JSON (what `--dry-run --json` prints).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plans serialise")
    }

    /// Creates the target (unpublished) and intermediate arrays and builds the task graph.
    pub fn prepare(self) -> Result<Rechunked> {
        let stores = self.stores.clone().ok_or_else(|| {
            Error::InvalidArgument("a plan read back from JSON has no stores attached".into())
        })?;
        let opts = self.options.clone().expect("set with the stores");
        self.check_target(&stores, &opts)?;
        let progress_key = progress_key(&self.target.path);
        if !opts.resume {
            // Temporary files of a run killed before it wrote its progress file (nothing else
            // of it is there to resume).
            stores.target.purge_temporaries(&self.target.path)?;
            stores
                .target
                .set(&progress_key, self.to_json().as_bytes())?;
        }
        // What one copy task may hold (see `copy_tasks`, which shrinks regions to fit). A task
        // holds its destination chunks (whole: a region snapped to the destination's chunks,
        // edge chunks padded, can be well over the plan's read or write chunk), a source piece
        // being decoded and an encoded chunk. When the plan meant tasks to run side by side
        // (its chunk for the copy fits a share of max_mem), or when smaller regions cost no
        // extra decoding (an uncompressed source: the intermediates), regions shrink to each
        // of `workers` tasks' share. Otherwise (a compressed source and a plan sized for tasks
        // running alone) they shrink only to fit max_mem, so that a task running alone (the
        // scheduler's rule for tasks too big for a share) stays within the budget.
        let share = self.max_mem / opts.workers.max(1) as u64;
        let max_mem = self.max_mem;
        let copy_cap = |src: &ZarrArray, dst: &ZarrArray, grid: &[u64]| -> u64 {
            let one_chunk: Vec<std::ops::Range<u64>> = dst
                .write_shape()
                .iter()
                .zip(dst.shape())
                .map(|(&w, &s)| 0..w.min(s))
                .collect();
            let planned: u64 = grid
                .iter()
                .zip(dst.shape())
                .map(|(&g, &s)| g.min(s))
                .product::<u64>()
                * src.dtype().itemsize() as u64;
            let cheap = src.compression() == Some(Compression::None) && src.shard_shape().is_none();
            if src.copy_working_bytes(dst, &one_chunk) <= share && (cheap || planned <= share) {
                share
            } else {
                max_mem
            }
        };
        let workers = opts.workers;
        let budget = |mem_cap: u64| CopyBudget {
            mem_cap,
            max_mem,
            workers,
        };
        let mut tasks: Vec<Task> = Vec::new();
        let mut finals = Vec::new();
        let mut ends = Vec::new();
        for (a, array) in self.arrays.iter().enumerate() {
            let src = ZarrArray::open(&stores.source, &array.plan.stages[0].source.path)?;
            let mut after: Option<Key> = None;
            let mut from = src.clone();
            for (k, stage) in array.plan.stages.iter().enumerate() {
                let last = k + 1 == array.plan.stages.len();
                let target_spec = target_spec(&src, stage, last, &opts);
                let to = if last {
                    ZarrArray::create_unpublished(
                        &stores.target,
                        &stage.target.path,
                        &target_spec,
                        true,
                    )?
                } else {
                    // Intermediates are scratch: written without fsync (see
                    // `ZarrArray::into_scratch`), so a resumed run recomputes them rather than
                    // trusting what a crash may have cut short; only final chunks are skipped.
                    temp_array(&stores.temp, &stage.target.path, &target_spec, opts.resume)?
                        .into_scratch()
                };
                let resume_into_to = last && opts.resume;
                let prefix = format!("rechunk-{a}-{k}");
                if let Some(int_ref) = &stage.intermediate {
                    let int_spec = scratch_spec(
                        ArraySpec::new(stage.shape.clone(), stage.int_chunks.clone(), stage.dtype)
                            .with_fill_value(src.fill_value()),
                    );
                    let int = temp_array(&stores.temp, &int_ref.path, &int_spec, opts.resume)?
                        .into_scratch();
                    let first = copy_tasks(
                        &format!("{prefix}-to-intermediate"),
                        &from,
                        &int,
                        &stage.read_chunks,
                        after.as_ref(),
                        false,
                        budget(copy_cap(&from, &int, &stage.read_chunks)),
                    );
                    tasks.extend(first.tasks);
                    // Read once, by the next copy: freed as it is read unless kept.
                    let int = if opts.keep_intermediate {
                        int
                    } else {
                        int.erased_after_copy()
                    };
                    let second = copy_tasks(
                        &format!("{prefix}-from-intermediate"),
                        &int,
                        &to,
                        &stage.write_chunks,
                        Some(&first.barrier),
                        resume_into_to,
                        budget(copy_cap(&int, &to, &stage.write_chunks)),
                    );
                    tasks.extend(second.tasks);
                    after = Some(second.barrier);
                } else {
                    let copy = copy_tasks(
                        &format!("{prefix}-copy"),
                        &from,
                        &to,
                        &stage.write_chunks,
                        after.as_ref(),
                        resume_into_to,
                        budget(copy_cap(&from, &to, &stage.write_chunks)),
                    );
                    tasks.extend(copy.tasks);
                    after = Some(copy.barrier);
                }
                if last {
                    finals.push(to.clone());
                    from = to;
                } else if opts.keep_intermediate {
                    from = to;
                } else {
                    from = to.erased_after_copy();
                }
            }
            ends.extend(after);
        }
        let done = Key::new("rechunk-done");
        tasks.push(Task::call(done.clone(), ends, |_| Ok(value(()))));
        let layer = Arc::new(Layer::new("rechunk", tasks, vec![]));
        Ok(Rechunked {
            plan: self,
            stores,
            opts,
            finals,
            layer,
            done,
        })
    }

    /// Refuses to clobber: an existing target needs `overwrite`; a leftover interrupted run
    /// needs `resume` (same plan) or `overwrite`.
    fn check_target(&self, stores: &Stores, opts: &OptionsSnapshot) -> Result<()> {
        let progress_key = progress_key(&self.target.path);
        let leftover = stores.target.get(&progress_key)?;
        let existing = node_kind(&stores.target, &self.target.path)?;
        if opts.resume {
            let Some(saved) = leftover else {
                return Err(Error::InvalidArgument(format!(
                    "nothing to resume at {}: no interrupted rechunk was found there",
                    self.target
                )));
            };
            let saved: RechunkPlan = serde_json::from_slice(&saved).map_err(|e| {
                Error::InvalidArgument(format!(
                    "the saved plan at {} is unreadable: {e}",
                    self.target
                ))
            })?;
            if saved.arrays != self.arrays || saved.max_mem != self.max_mem {
                return Err(Error::InvalidArgument(format!(
                    "the interrupted rechunk at {} used another plan (different chunks, \
                     max_mem or thread count); resume with the same options, or start over \
                     with overwrite",
                    self.target
                )));
            }
            // Temporary files of writes the interruption cut short.
            stores.target.purge_temporaries(&self.target.path)?;
            stores.temp.purge_temporaries(&self.target.path)?;
            return Ok(());
        }
        if opts.overwrite {
            if existing.is_some() || leftover.is_some() {
                stores.target.erase_prefix(&self.target.path)?;
            }
            return Ok(());
        }
        if leftover.is_some() {
            return Err(Error::InvalidArgument(format!(
                "an interrupted rechunk is at {}; pass resume to continue it or overwrite to \
                 start over",
                self.target
            )));
        }
        if let Some((kind, _)) = existing {
            return Err(StoreError::NodeExists {
                store: stores.target.description().into(),
                path: self.target.path.clone(),
                existing: kind.name(),
            }
            .into());
        }
        let prefix = self.target.path.trim_matches('/');
        let listing = stores.target.list(prefix)?;
        if !listing.is_empty() && !prefix.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "the target {} is not empty and is not a Zarr node; choose another path",
                self.target
            )));
        }
        Ok(())
    }
}

fn progress_key(target_path: &str) -> String {
    join(target_path, PROGRESS_KEY)
}

fn target_spec(src: &ZarrArray, stage: &CopySpec, last: bool, opts: &OptionsSnapshot) -> ArraySpec {
    let mut spec = src.spec();
    spec.chunks = stage.target_chunks.clone();
    spec.shard = None;
    if last {
        if let Some(f) = opts.format {
            spec = spec.with_format(f);
            spec.compression = Compression::default_for(f);
        }
        if let Some(c) = opts.compression {
            spec.compression = c;
        }
    } else {
        spec = scratch_spec(spec);
    }
    spec
}

/// The spec of a scratch array (an intermediate): uncompressed, so partial reads cost what they
/// read, and Zarr v2, whose chunk keys are flat (`0.1.2`), so no directory is made per row of
/// chunks.
fn scratch_spec(spec: ArraySpec) -> ArraySpec {
    spec.with_format(ZarrFormat::V2)
        .with_compression(Compression::None)
}

/// An intermediate array: reused when resuming and its spec matches, else created afresh.
fn temp_array(store: &Store, path: &str, spec: &ArraySpec, resume: bool) -> Result<ZarrArray> {
    if resume
        && let Ok(existing) = ZarrArray::open(store, path)
        && existing.spec() == *spec
    {
        return Ok(existing);
    }
    Ok(ZarrArray::create(store, path, spec, true)?)
}

/// A prepared rechunk: the task graph, ready to run.
pub struct Rechunked {
    plan: RechunkPlan,
    stores: Stores,
    opts: OptionsSnapshot,
    finals: Vec<ZarrArray>,
    layer: Arc<Layer>,
    done: Key,
}

impl Rechunked {
    /// The plan.
    pub fn plan(&self) -> &RechunkPlan {
        &self.plan
    }

    /// The frozen task graph.
    pub fn graph(&self) -> Result<TaskGraph> {
        TaskGraph::from_layers(
            std::slice::from_ref(&self.layer),
            std::slice::from_ref(&self.done),
            FreezeOptions { fuse: false },
        )
    }

    /// Runs on all cores under the plan's memory budget, then publishes the target.
    pub fn execute(&self) -> Result<()> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.execute_with(
            &ComputeOptions::default()
                .executor(Threaded::new(threads).with_memory_limit(self.plan.max_mem)),
        )
    }

    /// Runs with the given options (executor, callbacks), then publishes the target. Give a
    /// [`Threaded`] executor a memory limit to keep the budget.
    pub fn execute_with(&self, options: &ComputeOptions) -> Result<()> {
        options.run(
            std::slice::from_ref(&self.layer),
            std::slice::from_ref(&self.done),
        )?;
        self.publish()
    }

    /// Writes the target's metadata (arrays, group attributes, consolidated metadata), then
    /// removes the progress file and, unless kept, the intermediates.
    fn publish(&self) -> Result<()> {
        let source = &self.stores.source;
        let target = &self.stores.target;
        for array in &self.finals {
            array.publish()?;
        }
        if self.plan.group {
            let attrs = group_attributes(source, &self.plan.source.path)?;
            let format = node_kind(source, &self.plan.source.path)?
                .map(|(_, f)| f)
                .unwrap_or(ZarrFormat::V3);
            create_group(
                target,
                &self.plan.target.path,
                attrs,
                self.opts.format.unwrap_or(format),
            )?;
            if list_children(source, &self.plan.source.path)?.consolidated {
                consolidate_metadata(target, &self.plan.target.path)?;
            }
        }
        target.erase(&progress_key(&self.plan.target.path))?;
        if !self.opts.keep_intermediate {
            let temp = &self.stores.temp;
            for array in &self.plan.arrays {
                let stages = &array.plan.stages;
                for (k, stage) in stages.iter().enumerate() {
                    if let Some(int) = &stage.intermediate {
                        temp.erase_prefix(&int.path)?;
                    }
                    if k + 1 < stages.len() {
                        temp.erase_prefix(&stage.target.path)?;
                    }
                }
            }
            if let Some(dir) = &self.stores.temp_dir {
                // Our own directory: remove it once nothing of ours is left in it.
                let _ = remove_empty_dirs(dir);
            }
        }
        Ok(())
    }

    /// Plots the task graph (copy tasks coloured by kind).
    pub fn visualize(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        write_graph(
            &self.graph()?,
            path.as_ref(),
            DotOptions {
                color: crate::graph::dot::NodeColor::Kind,
            },
        )
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

impl fmt::Display for Rechunked {
    /// Like rechunker's repr: source, intermediate and target of every stage.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "<Rechunked>")?;
        for array in &self.plan.arrays {
            if !array.name.is_empty() {
                writeln!(f, "{}:", array.name)?;
            }
            for (k, s) in array.plan.stages.iter().enumerate() {
                let desc = |r: &ArrayRef, chunks: &[u64]| {
                    format!(
                        "<Array {r} {:?} {} chunks={chunks:?}>",
                        s.shape,
                        dtype_name(s.dtype)
                    )
                };
                if array.plan.stages.len() > 1 {
                    writeln!(f, "stage {}:", k + 1)?;
                }
                let src_chunks = if k == 0 {
                    array.source_chunks.clone()
                } else {
                    array.plan.stages[k - 1].target_chunks.clone()
                };
                writeln!(f, "* Source      : {}", desc(&s.source, &src_chunks))?;
                match &s.intermediate {
                    Some(int) => writeln!(f, "* Intermediate: {}", desc(int, &s.int_chunks))?,
                    None => writeln!(f, "* Intermediate: None")?,
                }
                writeln!(f, "* Target      : {}", desc(&s.target, &s.target_chunks))?;
            }
            for w in &array.warnings {
                writeln!(f, "warning: {w}")?;
            }
        }
        Ok(())
    }
}

fn dtype_name(d: DType) -> &'static str {
    d.name()
}

// What `super::distributed` needs of a plan's private parts: it runs a prepared plan's copies
// rank by rank, in other processes, rebuilding the handles `prepare` made without writing.
impl RechunkPlan {
    /// The source (read-only), target and temp stores, and the temp directory when it is our
    /// own `<target>.rechunk-tmp` (`None` for a plan read back from JSON).
    pub(super) fn distributed_stores(
        &self,
    ) -> Option<(&Store, &Store, &Store, Option<&std::path::Path>)> {
        self.stores
            .as_ref()
            .map(|s| (&s.source, &s.target, &s.temp, s.temp_dir.as_deref()))
    }

    /// The spec `prepare` gives the final target array of `stage` (`src`: the source array).
    pub(super) fn final_target_spec(&self, src: &ZarrArray, stage: &CopySpec) -> Option<ArraySpec> {
        self.options
            .as_ref()
            .map(|opts| target_spec(src, stage, true, opts))
    }

    /// The key of the progress file (the saved plan) in the target store.
    pub(super) fn progress_file_key(&self) -> String {
        progress_key(&self.target.path)
    }

    /// Whether the plan resumes an interrupted run.
    pub(super) fn is_resume(&self) -> bool {
        self.options.as_ref().is_some_and(|o| o.resume)
    }

    /// The same plan set to resume the run prepared at its target (and not to overwrite it).
    pub(super) fn into_resume(mut self) -> RechunkPlan {
        if let Some(opts) = &mut self.options {
            opts.resume = true;
            opts.overwrite = false;
        }
        self
    }
}

impl Rechunked {
    /// Publishes the target without running anything (other processes wrote every chunk).
    pub(super) fn publish_written(&self) -> Result<()> {
        self.publish()
    }
}
