//! Integer-array selection: [`Array::take`] (numpy's `take(indices, axis)`: a list of positions
//! along one axis, in any order, with repeats) and [`Array::take_points`] (pointwise selection
//! over several axes at once, dask's `vindex` / numpy's `x[[i0, i1], [j0, j1]]`).
//!
//! # How the work is cut (dask's way)
//!
//! Both are one engine, a *gather*: `P` points, each naming one position on every selected
//! axis, become one new axis of length `P`. The points are cut into groups, one output chunk
//! each along the new axis; the other axes keep the input's chunks. The task of an output
//! block depends on exactly the input blocks that its points fall in (one per distinct block
//! of the selected axes, times the block of the other axes), never on the whole array.
//!
//! - **Sorted take** (one axis, non-decreasing indices, dask's `take_sorted`): a new group
//!   starts wherever the indices cross into the next input chunk, so every output chunk reads
//!   one input chunk and the output keeps the input's chunk structure. A long run of repeats
//!   is cut at the input's largest chunk size along the axis.
//! - **Anything else** (unsorted indices, several axes): groups of consecutive points, each
//!   as many points as the input's largest chunk holds along the selected axes, so output
//!   chunks are about the size of input chunks. A group may read many input chunks when its
//!   points are scattered (at most one per point).
//!
//! # Invariants
//!
//! - Indices are checked when the graph is built: negative indices count from the end, and an
//!   index outside `-len..len` is [`Error::InvalidArgument`] naming the axis, the index and
//!   the axis length (numpy's `IndexError`).
//! - The new axis sits where the first (smallest) selected axis was; the other axes keep
//!   their order (numpy's rule when the selected axes are adjacent; xarray's for vectorized
//!   indexing by a new dimension).
//! - Output chunks are new buffers in standard layout: a selection never pins its input
//!   chunks once computed.
//!
//! Must not: look at element values, or build a task that depends on every chunk of an axis
//! unless the points touch every chunk.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use ndarray::{ArrayD, Axis, IxDyn, Slice, SliceInfoElem};

use super::chunks::Chunks;
use super::core::{Array, block_ref, op_token};
use super::dtype::Element;
use crate::error::{BoxError, Error, Result};
use crate::graph::token::key_name;
use crate::graph::{Key, Task, value};

impl<T: Element> Array<T> {
    /// The elements at `indices` along `axis` (numpy's `take(indices, axis=axis)`, xarray's
    /// `isel(dim=[...])`): the axis keeps its place with length `indices.len()`. Indices may
    /// repeat and come in any order; negative ones count from the end.
    ///
    /// Sorted indices give one output chunk per input chunk they touch, each reading only that
    /// chunk; unsorted ones give chunks about as large as the input's, each reading the chunks
    /// its indices fall in (see the module doc).
    ///
    /// ```
    /// use chunkflow::array;
    /// let x = array::arange(0i64, 10, 1, 4)?; // chunks (4, 4, 2)
    /// let y = x.take(&[9, 0, -1, 4], 0)?;
    /// assert_eq!(y.compute()?.as_slice().unwrap(), &[9, 0, 9, 4]);
    /// let sorted = x.take(&[1, 2, 5, 9], 0)?;
    /// assert_eq!(sorted.chunks().axis(0), &[2, 1, 1]); // one chunk per input chunk touched
    /// assert!(x.take(&[10], 0).is_err()); // out of bounds
    /// # Ok::<(), chunkflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an axis out of range or an index out of bounds.
    pub fn take(&self, indices: &[i64], axis: usize) -> Result<Array<T>> {
        self.gather("take", &[axis], &[indices])
    }

    /// Pointwise selection (dask's `vindex`, xarray's vectorized `isel` with indexers sharing
    /// a new dimension): point `p` is the element at `indices[k][p]` along `axes[k]` for every
    /// `k`. The selected axes are replaced by one axis of length `P` (the number of points),
    /// placed where the smallest of `axes` was; the other axes keep their order and chunks.
    ///
    /// ```
    /// use chunkflow::array;
    /// use ndarray::{ArrayD, IxDyn};
    /// let data = ArrayD::from_shape_fn(IxDyn(&[2, 4, 5]), |i| (i[0] * 100 + i[1] * 10 + i[2]) as i32);
    /// let x = array::from_ndarray(data, [1, 2, 2])?;
    /// // Points (1, 4) and (3, 0) on axes 1 and 2: shape (2, 2), axis 1 is the points.
    /// let y = x.take_points(&[1, 2], &[&[1i64, 3][..], &[4, 0][..]])?;
    /// assert_eq!(y.shape(), &[2, 2]);
    /// assert_eq!(y.compute()?.into_raw_vec_and_offset().0, vec![14, 30, 114, 130]);
    /// # Ok::<(), chunkflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no axes, an axis out of range or repeated, index lists of
    /// different lengths or not one per axis, or an index out of bounds.
    pub fn take_points<I: AsRef<[i64]>>(&self, axes: &[usize], indices: &[I]) -> Result<Array<T>> {
        let lists: Vec<&[i64]> = indices.iter().map(AsRef::as_ref).collect();
        self.gather("vindex", axes, &lists)
    }

    fn gather(&self, op: &str, axes: &[usize], indices: &[&[i64]]) -> Result<Array<T>> {
        let plan = GatherPlan::new(self.chunks(), axes, indices)?;
        let out_chunks = plan.output_chunks(self.chunks())?;
        let params = (plan.axes.clone(), plan.indices.clone(), plan.groups_token());
        let name = key_name(op, op_token(op, &[self.name()], &params));
        let plan = Arc::new(plan);
        let groups: Vec<Arc<Group>> = plan
            .groups
            .iter()
            .map(|r| Arc::new(plan.group(self.chunks(), r.clone())))
            .collect();
        let ndim = self.ndim();
        Ok(Array::from_block_tasks(
            name,
            out_chunks.clone(),
            vec![self.layer().clone()],
            |idx, key| {
                let pos = plan.pos;
                let group = groups[idx[pos]].clone();
                // Output axes other than `pos` are the input's other axes, in order.
                let others: Vec<usize> = idx
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != pos)
                    .map(|(_, &b)| b)
                    .collect();
                let deps: Vec<Key> = group
                    .blocks
                    .iter()
                    .map(|combo| {
                        let mut in_idx = Vec::with_capacity(ndim);
                        let (mut c, mut o) = (combo.iter(), others.iter());
                        for axis in 0..ndim {
                            let b = if plan.axes.contains(&axis) {
                                c.next()
                            } else {
                                o.next()
                            };
                            in_idx.push(*b.expect("one block index per axis"));
                        }
                        self.block_key(&in_idx)
                    })
                    .collect();
                let out_shape = out_chunks.block_shape(idx);
                let plan = plan.clone();
                Task::call(key, deps, move |inputs| {
                    let blocks = (0..inputs.len())
                        .map(|i| block_ref::<T>(&inputs, i))
                        .collect::<Result<Vec<_>, BoxError>>()?;
                    Ok(value(plan.fill(&group, &blocks, &out_shape, ndim)?))
                })
            },
        ))
    }
}

/// What a gather selects: checked, normalised indices and the cut of the points into output
/// chunks.
struct GatherPlan {
    /// The selected input axes, ascending.
    axes: Vec<usize>,
    /// Per selected axis (same order as `axes`): the normalised index of every point.
    indices: Vec<Vec<usize>>,
    /// The output axis of the points: the smallest selected axis.
    pos: usize,
    /// The points of each output chunk along `pos`.
    groups: Vec<Range<usize>>,
}

/// One output chunk's points: the input blocks they fall in and where.
struct Group {
    /// The distinct block indices (along the selected axes) the points fall in, sorted.
    blocks: Vec<Vec<usize>>,
    /// Per point: which of `blocks` it is in.
    dep: Vec<usize>,
    /// Per point, per selected axis: the position inside that block.
    local: Vec<usize>,
}

impl GatherPlan {
    fn new(chunks: &Chunks, axes: &[usize], indices: &[&[i64]]) -> Result<GatherPlan> {
        let ndim = chunks.ndim();
        if axes.is_empty() {
            return Err(Error::InvalidArgument(
                "a pointwise selection needs at least one axis".into(),
            ));
        }
        if axes.len() != indices.len() {
            return Err(Error::InvalidArgument(format!(
                "{} axes but {} index lists: give one list per axis",
                axes.len(),
                indices.len()
            )));
        }
        for (k, &a) in axes.iter().enumerate() {
            if a >= ndim {
                return Err(Error::InvalidArgument(format!(
                    "axis {a} is out of bounds for an array of {ndim} dimensions"
                )));
            }
            if axes[..k].contains(&a) {
                return Err(Error::InvalidArgument(format!(
                    "axis {a} is selected twice in {axes:?}"
                )));
            }
        }
        let n = indices[0].len();
        if let Some(k) = indices.iter().position(|l| l.len() != n) {
            return Err(Error::InvalidArgument(format!(
                "pointwise index lists must have one length: axis {} has {n} indices, axis {} \
                 has {}",
                axes[0],
                axes[k],
                indices[k].len()
            )));
        }
        // Sort the axes, keeping each list with its axis.
        let mut order: Vec<usize> = (0..axes.len()).collect();
        order.sort_by_key(|&k| axes[k]);
        let mut sorted_axes = Vec::with_capacity(axes.len());
        let mut lists = Vec::with_capacity(axes.len());
        for k in order {
            let axis = axes[k];
            let len = chunks.shape()[axis];
            let list = indices[k]
                .iter()
                .map(|&i| normalize(axis, len, i))
                .collect::<Result<Vec<_>>>()?;
            sorted_axes.push(axis);
            lists.push(list);
        }
        let pos = sorted_axes[0];
        let groups = cut(chunks, &sorted_axes, &lists);
        Ok(GatherPlan {
            axes: sorted_axes,
            indices: lists,
            pos,
            groups,
        })
    }

    /// The output chunks: the groups along `pos`, the input's chunks on the other axes.
    fn output_chunks(&self, chunks: &Chunks) -> Result<Chunks> {
        let mut sizes: Vec<Vec<usize>> = Vec::with_capacity(chunks.ndim() + 1 - self.axes.len());
        for axis in 0..chunks.ndim() {
            if axis == self.pos {
                sizes.push(self.groups.iter().map(|r| r.len()).collect());
            } else if !self.axes.contains(&axis) {
                sizes.push(chunks.axis(axis).to_vec());
            }
        }
        Ok(Chunks::new(sizes)?)
    }

    fn groups_token(&self) -> Vec<usize> {
        self.groups.iter().map(|r| r.len()).collect()
    }

    /// Where the points of `range` fall.
    fn group(&self, chunks: &Chunks, range: Range<usize>) -> Group {
        let k = self.axes.len();
        let mut ids: BTreeMap<Vec<usize>, usize> = BTreeMap::new();
        let mut combos = Vec::with_capacity(range.len());
        let mut local = Vec::with_capacity(range.len() * k);
        for p in range {
            let mut combo = Vec::with_capacity(k);
            for (list, &axis) in self.indices.iter().zip(&self.axes) {
                let i = list[p];
                let b = chunks
                    .block_index_of(axis, i)
                    .expect("indices were checked against the axis length");
                combo.push(b);
                local.push(i - chunks.offsets(axis)[b]);
            }
            ids.entry(combo.clone()).or_insert(0);
            combos.push(combo);
        }
        let blocks: Vec<Vec<usize>> = ids.keys().cloned().collect();
        for (n, slot) in ids.values_mut().enumerate() {
            *slot = n;
        }
        let dep = combos.iter().map(|c| ids[c]).collect();
        Group { blocks, dep, local }
    }

    /// Builds one output block from its input blocks (in the order of `group.blocks`).
    fn fill<T: Element>(
        &self,
        group: &Group,
        blocks: &[&ArrayD<T>],
        out_shape: &[usize],
        ndim: usize,
    ) -> Result<ArrayD<T>, BoxError> {
        let mut out = ArrayD::<T>::default(IxDyn(out_shape));
        let n = group.dep.len();
        let k = self.axes.len();
        if k == 1 {
            // Runs of points from one block: one `select` each.
            let axis = Axis(self.axes[0]);
            let mut p = 0;
            while p < n {
                let d = group.dep[p];
                let q = p + group.dep[p..].iter().take_while(|&&e| e == d).count();
                let part = blocks[d].select(axis, &group.local[p..q]);
                out.slice_axis_mut(Axis(self.pos), Slice::from(p..q))
                    .assign(&part);
                p = q;
            }
        } else if k == ndim {
            // Every axis selected: the output is 1-d, one element per point.
            let flat = out
                .as_slice_mut()
                .ok_or("a new output block is in standard layout")?;
            for (p, slot) in flat.iter_mut().enumerate() {
                *slot = blocks[group.dep[p]][IxDyn(&group.local[p * k..(p + 1) * k])];
            }
        } else {
            let mut info = vec![SliceInfoElem::from(..); ndim];
            for p in 0..n {
                for (j, &axis) in self.axes.iter().enumerate() {
                    info[axis] = SliceInfoElem::Index(group.local[p * k + j] as isize);
                }
                let part = blocks[group.dep[p]].slice(info.as_slice());
                out.index_axis_mut(Axis(self.pos), p).assign(&part);
            }
        }
        Ok(out)
    }
}

/// Checks index `i` against an axis of length `len` (negative counts from the end).
fn normalize(axis: usize, len: usize, i: i64) -> Result<usize> {
    let n = len as i128;
    let j = if i < 0 {
        i128::from(i) + n
    } else {
        i128::from(i)
    };
    if (0..n).contains(&j) {
        Ok(j as usize)
    } else {
        Err(Error::InvalidArgument(format!(
            "index {i} is out of bounds for axis {axis} with length {len}"
        )))
    }
}

/// Cuts the points into output chunks (see the module doc). No points: one empty chunk.
fn cut(chunks: &Chunks, axes: &[usize], lists: &[Vec<usize>]) -> Vec<Range<usize>> {
    let n = lists[0].len();
    let mut groups = Vec::new();
    if n == 0 {
        groups.push(0..0);
        return groups;
    }
    let largest = |axis: usize| chunks.axis(axis).iter().copied().max().unwrap_or(1).max(1);
    if axes.len() == 1 && lists[0].is_sorted() {
        let (axis, list) = (axes[0], &lists[0]);
        let limit = largest(axis);
        let block = |i: usize| chunks.block_index_of(axis, i);
        let mut start = 0;
        for p in 1..=n {
            if p == n || block(list[p]) != block(list[start]) || p - start == limit {
                groups.push(start..p);
                start = p;
            }
        }
    } else {
        let target = axes
            .iter()
            .map(|&a| largest(a))
            .fold(1usize, |acc, s| acc.saturating_mul(s));
        let mut start = 0;
        while start < n {
            let end = start.saturating_add(target).min(n);
            groups.push(start..end);
            start = end;
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array;

    #[test]
    fn sorted_takes_follow_input_chunks() {
        let c = Chunks::new(vec![vec![4, 4, 2]]).unwrap();
        let lists = vec![vec![0, 1, 1, 5, 6, 9]];
        assert_eq!(cut(&c, &[0], &lists), vec![0..3, 3..5, 5..6]);
        // A run of repeats longer than a chunk is cut at the largest chunk size.
        let lists = vec![vec![3; 9]];
        assert_eq!(cut(&c, &[0], &lists), vec![0..4, 4..8, 8..9]);
        // Unsorted: groups of the largest chunk size.
        let lists = vec![vec![9, 0, 5, 1, 2]];
        assert_eq!(cut(&c, &[0], &lists), vec![0..4, 4..5]);
        assert_eq!(cut(&c, &[0], &[vec![]]), vec![0..0]);
    }

    #[test]
    fn groups_read_only_the_blocks_they_touch() {
        let x = array::arange(0i64, 10, 1, 4).unwrap();
        let plan = GatherPlan::new(x.chunks(), &[0], &[&[9, 0, 8, 1]]).unwrap();
        let g = plan.group(x.chunks(), 0..4);
        assert_eq!(g.blocks, vec![vec![0], vec![2]]);
        assert_eq!(g.dep, vec![1, 0, 1, 0]);
        assert_eq!(g.local, vec![1, 0, 0, 1]);
        // 10 chunks of 1, 3 indices: the task reads 3 chunks, not 10.
        let y = array::arange(0i64, 10, 1, 1)
            .unwrap()
            .take(&[7, 2, 7], 0)
            .unwrap();
        let reads: usize = y.layer().tasks().iter().map(|t| t.deps.len()).sum();
        assert_eq!(reads, 3);
        assert_eq!(y.compute().unwrap().as_slice().unwrap(), &[7, 2, 7]);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let x = array::zeros::<f32>(&[3, 4], [2, 2]).unwrap();
        let msg = x.take(&[3], 0).unwrap_err().to_string();
        assert!(
            msg.contains("index 3 is out of bounds for axis 0 with length 3"),
            "{msg}"
        );
        assert!(x.take(&[-4], 0).is_err());
        assert!(x.take(&[-3], 0).is_ok());
        assert!(x.take(&[0], 2).is_err());
        assert!(x.take_points(&[0, 0], &[&[0i64][..], &[0][..]]).is_err());
        assert!(x.take_points(&[0, 1], &[&[0i64][..], &[0, 1][..]]).is_err());
        assert!(x.take_points(&[0], &[&[0i64][..], &[0][..]]).is_err());
        assert!(x.take_points::<&[i64]>(&[], &[]).is_err());
    }
}
