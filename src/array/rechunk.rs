//! In-graph rechunking (dask's `rechunk` via tasks): change an array's chunking inside a
//! computation with *split* and *merge* tasks.
//!
//! For every pair of an old block and a new block that overlap, a split task cuts the overlap
//! out of the old block (skipped when the overlap is the whole old block); one merge task per
//! new block assembles its pieces. A split task holds one old block and one piece, a merge task
//! one new block and its pieces, so memory stays bounded by the chunk sizes, not the array; the
//! old block is released as soon as its last split task has run.

use std::sync::Arc;

use ndarray::{ArrayD, IxDyn, SliceInfoElem};

use super::chunks::{ChunkSpec, Chunks, Intersection, intersections};
use super::core::{Array, block_ref, op_token, take_block};
use super::dtype::Element;
use crate::error::Result;
use crate::graph::token::key_name;
use crate::graph::{Key, Layer, Task, TaskKind, value};

impl<T: Element> Array<T> {
    /// Rechunks to `spec` (any chunk spec: sizes per axis, `-1` for whole axes, `auto`, or
    /// explicit sizes). Returns the array itself when the chunks already match.
    ///
    /// ```
    /// use chunkflow::array;
    /// let x = array::arange(0i32, 10, 1, 3).unwrap();
    /// let y = x.rechunk([5]).unwrap();
    /// assert_eq!(y.chunks().axis(0), &[5, 5]);
    /// assert_eq!(y.compute().unwrap(), x.compute().unwrap());
    /// ```
    pub fn rechunk(&self, spec: impl Into<ChunkSpec>) -> Result<Array<T>> {
        self.rechunk_with_limit(spec, None)
    }

    /// [`Array::rechunk`] where `auto` axes are sized so a block holds at most
    /// `block_size_limit` bytes (dask's `block_size_limit`; default 128 MiB).
    ///
    /// ```
    /// use chunkflow::array::{self, ChunkSpec, Dim};
    /// let x = array::zeros::<f64>(&[1000, 1000], [1, 1000]).unwrap();
    /// let y = x.rechunk_with_limit(ChunkSpec::per_axis(vec![Dim::Auto, Dim::Full]), Some(80_000)).unwrap();
    /// assert_eq!(y.chunks().axis(0)[0], 10); // 10 rows of 1000 float64 = 80 kB
    /// ```
    pub fn rechunk_with_limit(
        &self,
        spec: impl Into<ChunkSpec>,
        block_size_limit: Option<u64>,
    ) -> Result<Array<T>> {
        let new = Chunks::normalize_with_previous(
            spec,
            self.shape(),
            T::DTYPE.itemsize(),
            block_size_limit,
            self.chunks(),
        )?;
        if &new == self.chunks() {
            return Ok(self.clone());
        }
        let cuts = intersections(self.chunks(), &new)?;
        // Per axis, the pieces of each new block.
        let by_new: Vec<Vec<Vec<&Intersection>>> = cuts
            .iter()
            .enumerate()
            .map(|(axis, pieces)| {
                let mut groups = vec![Vec::new(); new.axis(axis).len()];
                for p in pieces {
                    groups[p.new_block].push(p);
                }
                groups
            })
            .collect();
        let token = op_token("rechunk", &[self.name()], &new.axes().to_vec());
        let merge_name = key_name("rechunk-merge", token);
        let split_name: Arc<str> = key_name("rechunk-split", token).into();
        let old = self.chunks().clone();
        let mut split_tasks: Vec<Task> = Vec::new();
        // Plan every new block (C order): its dependencies and where each piece goes.
        let mut plans = Vec::with_capacity(new.num_chunks());
        for idx in new.blocks() {
            let mut deps: Vec<Key> = Vec::new();
            let mut places: Vec<Vec<SliceInfoElem>> = Vec::new();
            for piece in product(&by_new, &idx) {
                let old_idx: Vec<usize> = piece.iter().map(|p| p.old_block).collect();
                let whole = piece
                    .iter()
                    .zip(old.block_shape(&old_idx))
                    .all(|(p, len)| p.old_range.len() == len);
                let dep = if whole {
                    self.block_key(&old_idx)
                } else {
                    let mut split_idx = old_idx.clone();
                    split_idx.extend_from_slice(&idx);
                    let split_key = Key::chunk(split_name.clone(), &split_idx);
                    let cut = slice_info(piece.iter().map(|p| p.old_range.clone()));
                    split_tasks.push(
                        Task::call(
                            split_key.clone(),
                            [self.block_key(&old_idx)],
                            move |inputs| {
                                let block = block_ref::<T>(&inputs, 0)?;
                                Ok(value(block.slice(cut.as_slice()).to_owned()))
                            },
                        )
                        .with_kind(TaskKind::Rechunk),
                    );
                    split_key
                };
                deps.push(dep);
                places.push(slice_info(piece.iter().map(|p| p.new_range.clone())));
            }
            plans.push((deps, places));
        }
        let split_layer = Arc::new(Layer::new(
            split_name,
            split_tasks,
            vec![self.layer().clone()],
        ));
        let mut plans = plans.into_iter();
        Ok(Array::from_block_tasks(
            merge_name,
            new.clone(),
            vec![split_layer, self.layer().clone()],
            |idx, key| {
                let (deps, places) = plans.next().expect("one plan per block, in C order");
                let shape = new.block_shape(idx);
                Task::call(key, deps, move |inputs| {
                    if inputs.len() == 1 {
                        return Ok(value(take_block::<T>(inputs, 0)?));
                    }
                    let mut out = ArrayD::<T>::default(IxDyn(&shape));
                    for (i, place) in places.iter().enumerate() {
                        out.slice_mut(place.as_slice())
                            .assign(block_ref::<T>(&inputs, i)?);
                    }
                    Ok(value(out))
                })
                .with_kind(TaskKind::Rechunk)
            },
        ))
    }
}

/// The cartesian product of each axis's pieces for new block `idx`, in C order.
fn product<'a>(by_new: &[Vec<Vec<&'a Intersection>>], idx: &[usize]) -> Vec<Vec<&'a Intersection>> {
    let mut out: Vec<Vec<&Intersection>> = vec![Vec::new()];
    for (axis, groups) in by_new.iter().enumerate() {
        let pieces = &groups[idx[axis]];
        out = out
            .into_iter()
            .flat_map(|prefix| {
                pieces.iter().map(move |p| {
                    let mut v = prefix.clone();
                    v.push(*p);
                    v
                })
            })
            .collect();
    }
    out
}

fn slice_info(ranges: impl Iterator<Item = std::ops::Range<usize>>) -> Vec<SliceInfoElem> {
    ranges
        .map(|r| SliceInfoElem::Slice {
            start: r.start as isize,
            end: Some(r.end as isize),
            step: 1,
        })
        .collect()
}
