//! Copy tasks: how one copy of a rechunk stage (source → intermediate, intermediate → target,
//! or source → target) becomes tasks.
//!
//! The destination is cut into *task regions* of about `grid` elements per axis (the plan's read
//! or write chunks), with every boundary snapped up to the destination's write grid, so each
//! region is a union of whole destination chunks (shards) and exactly one task writes each
//! chunk. A task reads its region from the source (decoding only the source chunks it touches)
//! and writes it. It declares the bytes it holds, so the executor's memory budget bounds the
//! whole run. With `resume`, a task whose destination chunks all exist does nothing: chunks are
//! written atomically, so an existing chunk is a complete one.

use std::ops::Range;

use crate::array::DType;
use crate::error::BoxError;
use crate::graph::{Key, Task, TaskKind, value};
use crate::store::ZarrArray;

/// Runs `$body` with `$t` bound to the Rust type of `$dtype`.
macro_rules! with_dtype {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            DType::Bool => {
                type $t = bool;
                $body
            }
            DType::I8 => {
                type $t = i8;
                $body
            }
            DType::I16 => {
                type $t = i16;
                $body
            }
            DType::I32 => {
                type $t = i32;
                $body
            }
            DType::I64 => {
                type $t = i64;
                $body
            }
            DType::U8 => {
                type $t = u8;
                $body
            }
            DType::U16 => {
                type $t = u16;
                $body
            }
            DType::U32 => {
                type $t = u32;
                $body
            }
            DType::U64 => {
                type $t = u64;
                $body
            }
            DType::F32 => {
                type $t = f32;
                $body
            }
            DType::F64 => {
                type $t = f64;
                $body
            }
        }
    };
}

/// The tasks of one copy plus a barrier task that depends on all of them.
pub(crate) struct CopyTasks {
    pub tasks: Vec<Task>,
    pub barrier: Key,
}

/// Builds the tasks copying `src` into `dst` in regions of about `grid`, each starting after
/// `after` (the previous copy's barrier).
pub(crate) fn copy_tasks(
    name: &str,
    src: &ZarrArray,
    dst: &ZarrArray,
    grid: &[u64],
    after: Option<&Key>,
    resume: bool,
) -> CopyTasks {
    let regions = task_regions(dst.shape(), grid, dst.write_shape());
    let itemsize = dst.dtype().itemsize() as u64;
    let src_chunk: u64 = src.chunk_shape().iter().product::<u64>() * itemsize;
    let dst_chunk: u64 = dst.write_shape().iter().product::<u64>() * itemsize;
    let deps: Vec<Key> = after.into_iter().cloned().collect();
    let mut tasks = Vec::with_capacity(regions.len() + 1);
    let mut keys = Vec::with_capacity(regions.len());
    for (i, region) in regions.into_iter().enumerate() {
        let key = Key::chunk(name, &[i]);
        keys.push(key.clone());
        let bytes: u64 = region.iter().map(|r| r.end - r.start).product::<u64>() * itemsize;
        let (src, dst) = (src.clone(), dst.clone());
        let task = Task::call(key, deps.clone(), move |_| {
            copy_region(&src, &dst, &region, resume)?;
            Ok(value(()))
        })
        .with_kind(TaskKind::Write)
        // The decoded region, one source chunk being decoded, and one destination chunk
        // being encoded (its copy and its compressed bytes).
        .with_working_bytes(bytes + src_chunk + 2 * dst_chunk);
        tasks.push(task);
    }
    let barrier = Key::new(format!("{name}-done"));
    tasks.push(Task::call(barrier.clone(), keys, |_| Ok(value(()))));
    CopyTasks { tasks, barrier }
}

fn copy_region(
    src: &ZarrArray,
    dst: &ZarrArray,
    region: &[Range<u64>],
    resume: bool,
) -> Result<(), BoxError> {
    if resume && all_written(dst, region)? {
        return Ok(());
    }
    with_dtype!(dst.dtype(), T => {
        let data = src.read_region::<T>(region)?;
        dst.write_region::<T>(region, data.view())?;
    });
    Ok(())
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
}
