//! Copy tasks: how one copy of a rechunk stage (source → intermediate, intermediate → target,
//! or source → target) becomes tasks.
//!
//! The destination is cut into *task regions* of about `grid` elements per axis (the plan's read
//! or write chunks), with every boundary snapped up to the destination's write grid, so each
//! region is a union of whole destination chunks (shards) and exactly one task writes each
//! chunk. A task decodes each source chunk it touches once, straight into one buffer per
//! destination chunk, then encodes each destination chunk from its buffer
//! (`ZarrArray::copy_region_to`): no whole-region staging array, no extra copies. It declares
//! the bytes it holds, so the executor's memory budget bounds the whole run. With `resume`, a
//! task whose destination chunks all exist does nothing: chunks are written atomically, so an
//! existing chunk is a complete one. Final chunks on a filesystem are durable too, but their
//! `fsync` runs on flusher threads (`ZarrArray::with_deferred_sync`) so that no worker waits
//! for the disk; the copy's barrier waits for them.
//!
//! Parallelism belongs to the executor: tasks run side by side as the budget admits them. Only
//! when a copy's tasks are too big for that (fewer of them fit in `max_mem` than there are
//! workers) does each task encode and store its destination chunks on the idle workers' share
//! of threads (`ZarrArray::copy_region_to_with`), and it declares the extra encoded chunks.

use std::ops::Range;

use crate::error::BoxError;
use crate::graph::{Key, Task, TaskKind, value};
use crate::store::ZarrArray;

/// The tasks of one copy plus a barrier task that depends on all of them.
pub(crate) struct CopyTasks {
    pub tasks: Vec<Task>,
    pub barrier: Key,
}

/// The memory a copy's tasks may use.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CopyBudget {
    /// What one task may hold (regions shrink to fit it).
    pub mem_cap: u64,
    /// What the whole run may hold (the executor's limit).
    pub max_mem: u64,
    /// The executor's workers.
    pub workers: usize,
}

/// Builds the tasks copying `src` into `dst` in regions of about `grid`, each starting after
/// `after` (the previous copy's barrier). Regions are made smaller (never below one destination
/// chunk per axis) until a task's working bytes fit `budget.mem_cap`.
pub(crate) fn copy_tasks(
    name: &str,
    src: &ZarrArray,
    dst: &ZarrArray,
    grid: &[u64],
    after: Option<&Key>,
    resume: bool,
    budget: CopyBudget,
) -> CopyTasks {
    // Regions shrink (never below one destination chunk per axis) until a task fits mem_cap.
    let whole: Vec<Range<u64>> = dst.shape().iter().map(|&s| 0..s).collect();
    let grid = fit_units(src, dst, grid, &whole, budget.mem_cap);
    let regions = task_regions(dst.shape(), &grid, dst.write_shape());
    let threads = threads_per_task(src, dst, &regions, budget);
    // Chunk writes leave their `fsync` to flusher threads; the barrier waits for them.
    let dst = &dst.clone().with_deferred_sync();
    let deps: Vec<Key> = after.into_iter().cloned().collect();
    let mut tasks = Vec::with_capacity(regions.len() + 1);
    let mut keys = Vec::with_capacity(regions.len());
    for (i, region) in regions.into_iter().enumerate() {
        let key = Key::chunk(name, &[i]);
        keys.push(key.clone());
        // The destination chunks being assembled, one decoded source chunk (and its decoding
        // scratch), one encoded destination chunk per thread.
        let working = src.copy_working_bytes_with(dst, &region, threads);
        let (src, dst) = (src.clone(), dst.clone());
        let task = Task::call(key, deps.clone(), move |_| {
            copy_region(&src, &dst, &region, resume, threads)?;
            Ok(value(()))
        })
        .with_kind(TaskKind::Write)
        .with_working_bytes(working);
        tasks.push(task);
    }
    let barrier = Key::new(format!("{name}-done"));
    // The tasks hand their chunk buffers on to each other; the barrier frees them, and
    // completes only once every chunk written is on disk under its name.
    let dst = dst.clone();
    tasks.push(Task::call(barrier.clone(), keys, move |_| {
        dst.free_copy_buffers();
        dst.finish_writes()?;
        Ok(value(()))
    }));
    CopyTasks { tasks, barrier }
}

fn copy_region(
    src: &ZarrArray,
    dst: &ZarrArray,
    region: &[Range<u64>],
    resume: bool,
    threads: usize,
) -> Result<(), BoxError> {
    if resume && all_written(dst, region)? {
        return Ok(());
    }
    src.copy_region_to_with(dst, region, threads)?;
    Ok(())
}

/// The threads each task of a copy encodes and stores with: the workers that the budget leaves
/// idle because fewer of these tasks than workers fit in `max_mem` (`workers / side_by_side`),
/// fewer if the extra encoded chunks would take a task over `mem_cap`.
fn threads_per_task(
    src: &ZarrArray,
    dst: &ZarrArray,
    regions: &[Vec<Range<u64>>],
    budget: CopyBudget,
) -> usize {
    let workers = budget.workers.max(1);
    let biggest = regions
        .iter()
        .map(|r| src.copy_working_bytes(dst, r))
        .max()
        .unwrap_or(0)
        .max(1);
    let side_by_side = (budget.max_mem / biggest).clamp(1, workers as u64) as usize;
    let cap = budget.mem_cap.max(biggest);
    let mut threads = (workers / side_by_side).max(1);
    while threads > 1
        && regions
            .iter()
            .any(|r| src.copy_working_bytes_with(dst, r, threads) > cap)
    {
        threads -= 1;
    }
    threads
}

/// The task box (elements per axis, whole target chunks) for copying `region`: the plan's
/// `grid` rounded up to whole target chunks and clipped to the region, then halved along the
/// axis spanning the most chunks until a task holds at most `cap` bytes or is one chunk.
pub(crate) fn fit_units(
    src: &ZarrArray,
    dst: &ZarrArray,
    grid: &[u64],
    region: &[Range<u64>],
    cap: u64,
) -> Vec<u64> {
    let write = dst.write_shape();
    let mut units: Vec<u64> = grid
        .iter()
        .zip(write)
        .zip(region)
        .map(|((&g, &w), r)| {
            let w = w.max(1);
            g.min(r.end - r.start).max(1).div_ceil(w).max(1)
        })
        .collect();
    loop {
        let task: Vec<Range<u64>> = units
            .iter()
            .zip(write)
            .zip(region)
            .map(|((&u, &w), r)| r.start..(r.start + u * w).min(r.end))
            .collect();
        if src.copy_working_bytes(dst, &task) <= cap {
            break;
        }
        let Some(axis) = (0..units.len())
            .filter(|&a| units[a] > 1)
            .max_by_key(|&a| units[a])
        else {
            break;
        };
        units[axis] = units[axis].div_ceil(2);
    }
    units
        .iter()
        .zip(write)
        .map(|(&u, &w)| u * w.max(1))
        .collect()
}

/// Whether every destination chunk of `region` is stored.
fn all_written(dst: &ZarrArray, region: &[Range<u64>]) -> Result<bool, BoxError> {
    let w = dst.write_shape();
    let lo: Vec<u64> = region.iter().zip(w).map(|(r, &c)| r.start / c).collect();
    let hi: Vec<u64> = region
        .iter()
        .zip(w)
        .map(|(r, &c)| r.end.div_ceil(c))
        .collect();
    let mut index = lo.clone();
    if lo.iter().zip(&hi).any(|(l, h)| l >= h) {
        return Ok(true);
    }
    loop {
        if !dst.chunk_exists(&index)? {
            return Ok(false);
        }
        // Next index in C order.
        let mut axis = index.len();
        loop {
            if axis == 0 {
                return Ok(true);
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

/// Cuts `shape` into regions of about `grid` per axis, every boundary snapped up to a multiple
/// of `write` (or the axis end), in C order.
pub(crate) fn task_regions(shape: &[u64], grid: &[u64], write: &[u64]) -> Vec<Vec<Range<u64>>> {
    let per_axis: Vec<Vec<Range<u64>>> = shape
        .iter()
        .zip(grid)
        .zip(write)
        .map(|((&len, &g), &w)| {
            let mut bounds = vec![0u64];
            let mut b = 0u64;
            while b < len {
                b = (b + g.max(1)).min(len);
                let snapped = b.div_ceil(w.max(1)).saturating_mul(w.max(1)).min(len);
                if snapped > *bounds.last().expect("starts with 0") {
                    bounds.push(snapped);
                }
                b = b.max(snapped);
            }
            if len == 0 {
                return std::iter::once(0..0).collect();
            }
            bounds.windows(2).map(|p| p[0]..p[1]).collect()
        })
        .collect();
    cartesian(per_axis)
}

/// Every box made of one range per axis, in C order (the last axis varies fastest).
pub(crate) fn cartesian(per_axis: Vec<Vec<Range<u64>>>) -> Vec<Vec<Range<u64>>> {
    let mut out: Vec<Vec<Range<u64>>> = vec![Vec::new()];
    for ranges in per_axis {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                ranges.iter().map(move |r| {
                    let mut v = prefix.clone();
                    v.push(r.clone());
                    v
                })
            })
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_write_aligned_and_cover_once() {
        let regions = task_regions(&[10, 7], &[4, 3], &[3, 2]);
        // axis 0: 4 snaps up to 6, then 10 (the end); axis 1: 3 snaps up to 4, then 7.
        let mut axis0: Vec<_> = regions.iter().map(|r| r[0].clone()).collect();
        axis0.dedup();
        assert_eq!(axis0, vec![0..6, 6..10]);
        assert_eq!(regions.len(), 4);
        let mut covered = [0u8; 70];
        for r in &regions {
            assert!(r[0].start % 3 == 0 && r[1].start % 2 == 0);
            for i in r[0].clone() {
                for j in r[1].clone() {
                    covered[(i * 7 + j) as usize] += 1;
                }
            }
        }
        assert!(covered.iter().all(|&c| c == 1));
    }

    #[test]
    fn only_tasks_that_run_alone_get_threads() {
        use crate::array::DType;
        use crate::store::{ArraySpec, Store};
        let store = Store::memory();
        // 64 x 64 f32: source chunks are rows, destination chunks 64 x 8 columns (2 kB each).
        let src = ZarrArray::create(
            &store,
            "src",
            &ArraySpec::new(vec![64, 64], vec![1, 64], DType::F32),
            true,
        )
        .unwrap();
        let dst = ZarrArray::create(
            &store,
            "dst",
            &ArraySpec::new(vec![64, 64], vec![64, 8], DType::F32),
            true,
        )
        .unwrap();
        let regions = task_regions(dst.shape(), &[64, 32], dst.write_shape());
        let one = src.copy_working_bytes(&dst, &regions[0]);
        let budget = |max_mem: u64, mem_cap: u64| CopyBudget {
            mem_cap,
            max_mem,
            workers: 4,
        };
        // Four tasks fit side by side: the executor runs them, one thread each.
        assert_eq!(
            threads_per_task(&src, &dst, &regions, budget(4 * one, one)),
            1
        );
        // Two fit: each gets two threads, if its cap holds the second encoded chunk.
        let two = src.copy_working_bytes_with(&dst, &regions[0], 2);
        assert_eq!(
            threads_per_task(&src, &dst, &regions, budget(2 * two, two)),
            2
        );
        assert_eq!(
            threads_per_task(&src, &dst, &regions, budget(2 * two, one)),
            1
        );
        // One fits: four threads (the region has four destination chunks).
        let four = src.copy_working_bytes_with(&dst, &regions[0], 4);
        assert_eq!(threads_per_task(&src, &dst, &regions, budget(one, four)), 4);
        assert_eq!(threads_per_task(&src, &dst, &regions, budget(one, one)), 1);
    }
}
