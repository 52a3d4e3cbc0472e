//! Shape and selection: slicing, transposes, reshapes, concatenation and stacking.
//!
//! Every operation here is *block-wise*: each output chunk is one task that depends on exactly
//! one input chunk (after an optional in-graph rechunk, for `reshape` and for unifying the chunks
//! of `concatenate`/`stack` inputs). No operation here looks at element values, and none builds a
//! task that gathers several chunks.
//!
//! # Slicing follows numpy, not ndarray
//!
//! [`Array::slice`] takes ndarray's `s![..]` syntax but reads it with **numpy's** meaning, because
//! our users come from numpy and dask:
//!
//! - `s![a..b;k]` with `k < 0` is numpy's `x[a:b:k]`: start *at* `a` and walk *down* to `b`
//!   (exclusive). So `s![5..1;-1]` selects `5, 4, 3, 2`, and `s![1..5;-1]` selects nothing.
//!   (ndarray itself would take the range `1..5` and walk it backwards, `4, 3, 2, 1`.)
//! - ndarray's macro writes `..` and `0..` the same way (start `0`), so with a negative step a
//!   start of `0` is read as numpy's *omitted* start (the last element): `s![..;-1]` reverses the
//!   axis like `x[::-1]`, `s![..2;-1]` is `x[:2:-1]`. To walk backwards from element 0 (numpy's
//!   `x[0::-1]`, a single element) write `s![0..1]` or `s![0]`.
//! - Negative starts and ends count from the end; slice bounds past either end are clipped (as in
//!   numpy); a step of 0 is an error.
//! - An integer index (`s![.., 3]`, `s![-1]`) drops the axis; an index out of range is an error
//!   naming the axis, the index and the axis length.
//! - `NewAxis` inserts an axis of length 1; fewer entries than axes leave the rest whole.
//!
//! The output keeps the input's chunk structure (as dask does): one output chunk per input chunk
//! that holds at least one selected element, in selection order (so reversed for negative
//! steps). An axis with no selected element has length 0 and the single chunk `(0,)`.
//!
//! # Layout of output chunks
//!
//! Chunks are `ndarray::ArrayD<T>` values; this room never promises standard (C) layout:
//!
//! - `transpose`, `t`, `expand_dims`, `squeeze` and `stack` return permuted or re-dimensioned
//!   views of the input chunk's buffer (no copy; moved when the task is the chunk's last
//!   consumer, so a transposed chunk has permuted strides).
//! - `slice` reuses the input buffer when it keeps every element of the chunk (a whole chunk, a
//!   reversed chunk, an index into a length-1 axis, a new axis) and copies otherwise, so a small
//!   selection never pins a large chunk in memory.
//! - `reshape` makes a chunk contiguous only when its layout does not allow the new shape.
//!
//! Code that needs a contiguous slice of a chunk (`as_slice()`) calls `as_standard_layout()`.
//!
//! # What this room must not do
//!
//! No element maths, no I/O, and no chunking rules of its own beyond dask's reshape plan: chunk
//! arithmetic lives in [`super::chunks`], and moving data between chunkings is
//! [`Array::rechunk`]'s job.

use std::sync::Arc;

use ndarray::{ArrayD, Axis, IxDyn, SliceInfoElem};

use super::chunks::Chunks;
use super::core::{Array, block_ref, op_token, take_block};
use super::dtype::Element;
use crate::error::{Error, Result};
use crate::graph::token::key_name;
use crate::graph::{Key, Task, value};

// ---------------------------------------------------------------------------------------------
// Slicing
// ---------------------------------------------------------------------------------------------

/// One entry of a selection, normalised against the array's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sel {
    /// Keeps the axis: the `count` elements `start, start + step, …` (all in range).
    Range {
        start: usize,
        step: isize,
        count: usize,
    },
    /// Drops the axis, keeping element `i`.
    Index(usize),
    /// Inserts an axis of length 1.
    NewAxis,
}

impl Sel {
    /// Whether this keeps an axis of length `len` exactly as it is.
    fn is_full(&self, len: usize) -> bool {
        match *self {
            Sel::Range { start, step, count } => {
                count == len && (len <= 1 || (start == 0 && step == 1))
            }
            _ => false,
        }
    }

    /// The token parameters of this entry.
    fn token(&self) -> (u8, usize, isize, usize) {
        match *self {
            Sel::Range { start, step, count } => (0, start, step, count),
            Sel::Index(i) => (1, i, 0, 0),
            Sel::NewAxis => (2, 0, 0, 0),
        }
    }
}

/// Normalises a user selection against `shape` with numpy's rules (see the module doc).
fn normalize_selection(shape: &[usize], info: &[SliceInfoElem]) -> Result<Vec<Sel>> {
    let indexed = info
        .iter()
        .filter(|e| !matches!(e, SliceInfoElem::NewAxis))
        .count();
    if indexed > shape.len() {
        return Err(Error::InvalidArgument(format!(
            "too many indices for array: array is {}-dimensional, but {indexed} were indexed",
            shape.len()
        )));
    }
    let mut out = Vec::with_capacity(info.len() + shape.len() - indexed);
    let mut axis = 0;
    for elem in info {
        match *elem {
            SliceInfoElem::NewAxis => out.push(Sel::NewAxis),
            SliceInfoElem::Index(i) => {
                out.push(Sel::Index(normalize_index(axis, shape[axis], i)?));
                axis += 1;
            }
            SliceInfoElem::Slice { start, end, step } => {
                out.push(numpy_range(axis, shape[axis], start, end, step)?);
                axis += 1;
            }
        }
    }
    for &len in &shape[axis..] {
        out.push(Sel::Range {
            start: 0,
            step: 1,
            count: len,
        });
    }
    Ok(out)
}

fn normalize_index(axis: usize, len: usize, i: isize) -> Result<usize> {
    let n = len as i128;
    let j = if i < 0 { i as i128 + n } else { i as i128 };
    if (0..n).contains(&j) {
        Ok(j as usize)
    } else {
        Err(Error::InvalidArgument(format!(
            "index {i} is out of bounds for axis {axis} with length {len}"
        )))
    }
}

/// numpy's `slice.indices(len)` plus the element count, with a start of 0 read as "omitted"
/// for negative steps (ndarray's `s!` cannot tell `..` from `0..`).
fn numpy_range(
    axis: usize,
    len: usize,
    start: isize,
    end: Option<isize>,
    step: isize,
) -> Result<Sel> {
    if step == 0 {
        return Err(Error::InvalidArgument(format!(
            "slice step cannot be zero (axis {axis})"
        )));
    }
    let n = len as i128;
    let s = step as i128;
    let (first, count) = if s > 0 {
        let clip = |v: isize| {
            let v = v as i128;
            if v < 0 { (v + n).max(0) } else { v.min(n) }
        };
        let a = clip(start);
        let b = end.map_or(n, clip);
        (a, if b > a { (b - a + s - 1) / s } else { 0 })
    } else {
        let clip = |v: isize| {
            let v = v as i128;
            if v < 0 { (v + n).max(-1) } else { v.min(n - 1) }
        };
        let a = if start == 0 { n - 1 } else { clip(start) };
        let b = end.map_or(-1, clip);
        (a, if a > b { (a - b - s - 1) / -s } else { 0 })
    };
    Ok(Sel::Range {
        start: if count > 0 { first as usize } else { 0 },
        step,
        count: count as usize,
    })
}

/// The part of one output chunk taken from one input chunk, along one axis.
#[derive(Clone, Debug)]
struct Piece {
    /// The input block along the axis.
    block: usize,
    /// What to take from that block (ndarray's semantics, block-local).
    local: SliceInfoElem,
    /// How many elements that is.
    len: usize,
}

/// Cuts a range selection along one axis into per-input-block pieces, in selection order.
/// An empty selection is the single empty piece of block 0.
fn range_pieces(
    chunks: &Chunks,
    axis: usize,
    start: usize,
    step: isize,
    count: usize,
) -> Vec<Piece> {
    let bounds = chunks.boundaries(axis);
    let (p0, s, c) = (start as i128, step as i128, count as i128);
    let mut pieces = Vec::new();
    if count > 0 {
        let nb = bounds.len() - 1;
        let mut visit = |b: usize| {
            let (lo, hi) = (bounds[b] as i128, bounds[b + 1] as i128);
            // k0..k1: the selection steps that land in lo..hi.
            let (k0, k1) = if s > 0 {
                let first_at_or_after = |x: i128| if p0 >= x { 0 } else { (x - p0 + s - 1) / s };
                (first_at_or_after(lo).min(c), first_at_or_after(hi).min(c))
            } else {
                let first_below = |x: i128| if p0 < x { 0 } else { (p0 - x) / -s + 1 };
                (first_below(hi).min(c), first_below(lo).min(c))
            };
            if k1 > k0 {
                let first = p0 + k0 * s - lo;
                let last = p0 + (k1 - 1) * s - lo;
                // ndarray walks a negative step down from `end - 1`.
                let (a, z) = if s > 0 { (first, last) } else { (last, first) };
                pieces.push(Piece {
                    block: b,
                    local: SliceInfoElem::Slice {
                        start: a as isize,
                        end: Some(z as isize + 1),
                        step,
                    },
                    len: (k1 - k0) as usize,
                });
            }
        };
        if s > 0 {
            (0..nb).for_each(&mut visit);
        } else {
            (0..nb).rev().for_each(&mut visit);
        }
    }
    if pieces.is_empty() {
        pieces.push(Piece {
            block: 0,
            local: SliceInfoElem::Slice {
                start: 0,
                end: Some(0),
                step: 1,
            },
            len: 0,
        });
    }
    pieces
}

/// Basic and integer selection (see [`Array::slice`] and the module doc).
pub(crate) fn slice<T: Element>(x: &Array<T>, info: &[SliceInfoElem]) -> Result<Array<T>> {
    let sels = normalize_selection(x.shape(), info)?;
    let chunks = x.chunks();
    let identity =
        sels.len() == x.ndim() && sels.iter().zip(x.shape()).all(|(s, &len)| s.is_full(len));
    if identity {
        return Ok(x.clone());
    }
    // Per entry: the pieces along its input axis (or its output axis for NewAxis).
    let mut plans: Vec<Vec<Piece>> = Vec::with_capacity(sels.len());
    let mut out_axes: Vec<Vec<usize>> = Vec::new();
    let mut axis = 0;
    for sel in &sels {
        match *sel {
            Sel::Range { start, step, count } => {
                let pieces = range_pieces(chunks, axis, start, step, count);
                out_axes.push(pieces.iter().map(|p| p.len).collect());
                plans.push(pieces);
                axis += 1;
            }
            Sel::Index(i) => {
                let block = chunks
                    .block_index_of(axis, i)
                    .expect("the index was checked against the axis length");
                let local = (i - chunks.offsets(axis)[block]) as isize;
                plans.push(vec![Piece {
                    block,
                    local: SliceInfoElem::Index(local),
                    len: 1,
                }]);
                axis += 1;
            }
            Sel::NewAxis => {
                out_axes.push(vec![1]);
                plans.push(vec![Piece {
                    block: 0,
                    local: SliceInfoElem::NewAxis,
                    len: 1,
                }]);
            }
        }
    }
    let out_chunks = Chunks::new(out_axes)?;
    let params: Vec<_> = sels.iter().map(Sel::token).collect();
    let name = key_name("getitem", op_token("getitem", &[x.name()], &params));
    Ok(Array::from_block_tasks(
        name,
        out_chunks,
        vec![x.layer().clone()],
        |idx, key| {
            let mut in_idx = Vec::with_capacity(x.ndim());
            let mut local = Vec::with_capacity(sels.len());
            let mut keeps_all = true;
            let mut out_axis = 0;
            for (sel, plan) in sels.iter().zip(&plans) {
                let piece = match sel {
                    Sel::Range { .. } => {
                        out_axis += 1;
                        &plan[idx[out_axis - 1]]
                    }
                    Sel::NewAxis => {
                        out_axis += 1;
                        &plan[0]
                    }
                    Sel::Index(_) => &plan[0],
                };
                if !matches!(sel, Sel::NewAxis) {
                    let in_axis = in_idx.len();
                    in_idx.push(piece.block);
                    keeps_all &= piece.len == chunks.axis(in_axis)[piece.block];
                }
                local.push(piece.local);
            }
            let dep = x.block_key(&in_idx);
            if keeps_all {
                // Every element of the chunk stays: reuse its buffer (a view, moved).
                Task::call(key, [dep], move |inputs| {
                    let block = take_block::<T>(inputs, 0)?;
                    Ok(value(block.slice_move(local.as_slice())))
                })
            } else {
                // Copy the selection out, so the (larger) chunk can be released.
                Task::call(key, [dep], move |inputs| {
                    let block = block_ref::<T>(&inputs, 0)?;
                    Ok(value(block.slice(local.as_slice()).to_owned()))
                })
            }
        },
    ))
}

// ---------------------------------------------------------------------------------------------
// Per-block views: transpose, expand_dims, squeeze, block
// ---------------------------------------------------------------------------------------------

/// An array whose block `idx` is `f` of block `input(idx)` of `x` (one task per output block).
fn map_one_block<T, I, F>(
    x: &Array<T>,
    op: &str,
    params: &dyn super::core::TokenizeDyn,
    chunks: Chunks,
    input: I,
    f: F,
) -> Array<T>
where
    T: Element,
    I: Fn(&[usize]) -> Vec<usize>,
    F: Fn(ArrayD<T>) -> ArrayD<T> + Send + Sync + 'static,
{
    let name = key_name(op, op_token(op, &[x.name()], params));
    let f = Arc::new(f);
    Array::from_block_tasks(name, chunks, vec![x.layer().clone()], |idx, key| {
        let f = f.clone();
        Task::call(key, [x.block_key(&input(idx))], move |inputs| {
            Ok(value(f(take_block::<T>(inputs, 0)?)))
        })
    })
}

/// A task whose value is its one dependency's value (no copy; fusion removes it when the
/// dependency feeds nothing else).
fn identity_task(key: Key, dep: Key) -> Task {
    Task::call(key, [dep], |inputs| {
        Ok(inputs.into_iter().next().expect("one dependency"))
    })
}

impl<T: Element> Array<T> {
    /// Permutes the axes: axis `i` of the result is axis `axes[i]` of `self` (numpy's
    /// `transpose(axes)`). Chunks are permuted with the axes; each block is the input block with
    /// permuted strides (no copy when the transpose is the block's only reader). Element-wise
    /// operations on a transpose skip its tasks and read the input's blocks as permuted views,
    /// so `&x + &x.t()` never copies a block of `x`.
    ///
    /// ```
    /// use chunkflow::array;
    /// let x = array::arange(0i32, 24, 1, 5).unwrap().reshape([2, 3, 4]).unwrap();
    /// let y = x.transpose(&[2, 0, 1]).unwrap();
    /// assert_eq!(y.shape(), &[4, 2, 3]);
    /// let (a, b) = (x.compute().unwrap(), y.compute().unwrap());
    /// assert_eq!(b[[3, 1, 2]], a[[1, 2, 3]]);
    /// assert!(x.transpose(&[0, 0, 1]).is_err());
    /// ```
    ///
    /// # Errors
    /// When `axes` is not a permutation of `0..ndim`.
    pub fn transpose(&self, axes: &[usize]) -> Result<Array<T>> {
        let chunks = self.chunks().transpose(axes)?;
        if axes.iter().enumerate().all(|(i, &a)| i == a) {
            return Ok(self.clone());
        }
        let perm = axes.to_vec();
        let input = |idx: &[usize]| {
            let mut in_idx = vec![0; idx.len()];
            for (i, &a) in axes.iter().enumerate() {
                in_idx[a] = idx[i];
            }
            in_idx
        };
        let view_perm = perm.clone();
        Ok(
            map_one_block(self, "transpose", &perm.clone(), chunks, input, move |b| {
                b.permuted_axes(perm.as_slice())
            })
            .with_transpose_source(self, &view_perm),
        )
    }

    /// Reverses the order of the axes (numpy's `x.T`, ndarray's `t()`); see
    /// [`Array::transpose`].
    ///
    /// ```
    /// use chunkflow::array;
    /// let x = array::arange(0i32, 6, 1, 2).unwrap().reshape([2, 3]).unwrap();
    /// let y = x.t();
    /// assert_eq!(y.shape(), &[3, 2]);
    /// assert_eq!(y.compute().unwrap(), x.compute().unwrap().t());
    /// ```
    pub fn t(&self) -> Array<T> {
        let axes: Vec<usize> = (0..self.ndim()).rev().collect();
        self.transpose(&axes)
            .expect("reversed axes are a permutation")
    }

    /// Inserts an axis of length 1 (one chunk) at position `axis` (numpy's `expand_dims`,
    /// ndarray's `insert_axis`); `axis` may be `ndim` to append one.
    ///
    /// ```
    /// use chunkflow::array;
    /// let x = array::ones::<f32>(&[4, 5], [2, 5]).unwrap();
    /// let y = x.expand_dims(1).unwrap();
    /// assert_eq!(y.shape(), &[4, 1, 5]);
    /// assert_eq!(y.chunks().to_string(), "((2, 2), (1,), (5,))");
    /// ```
    ///
    /// # Errors
    /// When `axis > ndim`.
    #[doc(alias = "insert_axis")]
    pub fn expand_dims(&self, axis: usize) -> Result<Array<T>> {
        if axis > self.ndim() {
            return Err(Error::InvalidArgument(format!(
                "axis {axis} is out of bounds for expand_dims on an array of dimension {} \
                 (the new axis may go at 0..={})",
                self.ndim(),
                self.ndim()
            )));
        }
        let mut sizes = self.chunks().axes().to_vec();
        sizes.insert(axis, vec![1]);
        let input = |idx: &[usize]| {
            let mut in_idx = idx.to_vec();
            in_idx.remove(axis);
            in_idx
        };
        Ok(map_one_block(
            self,
            "expand_dims",
            &axis,
            Chunks::new(sizes)?,
            input,
            move |b| b.insert_axis(Axis(axis)),
        ))
    }

    /// Removes every axis of length 1 (numpy's `squeeze()` without `axis`). To drop one
    /// length-1 axis only, index it: `x.slice(s![.., 0])`.
    ///
    /// ```
    /// use chunkflow::array;
    /// let x = array::zeros::<u8>(&[1, 4, 1, 3], [1, 2, 1, 3]).unwrap();
    /// assert_eq!(x.squeeze().shape(), &[4, 3]);
    /// ```
    pub fn squeeze(&self) -> Array<T> {
        let ones: Vec<usize> = (0..self.ndim()).filter(|&a| self.shape()[a] == 1).collect();
        if ones.is_empty() {
            return self.clone();
        }
        let sizes: Vec<Vec<usize>> = (0..self.ndim())
            .filter(|a| !ones.contains(a))
            .map(|a| self.chunks().axis(a).to_vec())
            .collect();
        let chunks = Chunks::new(sizes).expect("a subset of valid axes is valid");
        let ndim = self.ndim();
        let input = |idx: &[usize]| {
            let mut rest = idx.iter();
            (0..ndim)
                .map(|a| {
                    if ones.contains(&a) {
                        0
                    } else {
                        *rest.next().expect("one index per kept axis")
                    }
                })
                .collect()
        };
        let removed = ones.clone();
        map_one_block(self, "squeeze", &ones, chunks, input, move |mut b| {
            for &a in removed.iter().rev() {
                b = b.remove_axis(Axis(a));
            }
            b
        })
    }

    /// Block `index` as a one-chunk array (dask's `x.blocks[i, j]`).
    ///
    /// ```
    /// use chunkflow::array;
    /// let x = array::arange(0i64, 10, 1, 4).unwrap();
    /// let b = x.block(&[1]).unwrap();
    /// assert_eq!(b.compute().unwrap().as_slice().unwrap(), &[4, 5, 6, 7]);
    /// assert!(x.block(&[3]).is_err());
    /// ```
    ///
    /// # Errors
    /// When `index` has the wrong number of entries or is past the last block on some axis.
    pub fn block(&self, index: &[usize]) -> Result<Array<T>> {
        let numblocks = self.numblocks();
        if index.len() != numblocks.len() || index.iter().zip(&numblocks).any(|(i, n)| i >= n) {
            return Err(Error::InvalidArgument(format!(
                "block index {index:?} is out of range: the array has {numblocks:?} blocks per axis"
            )));
        }
        let chunks = Chunks::single(&self.chunks().block_shape(index));
        let name = key_name(
            "blocks",
            op_token("blocks", &[self.name()], &index.to_vec()),
        );
        Ok(Array::from_block_tasks(
            name,
            chunks,
            vec![self.layer().clone()],
            |_, key| identity_task(key, self.block_key(index)),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Reshape
// ---------------------------------------------------------------------------------------------

mod sealed {
    pub trait Sealed {}
}

/// One length of a new shape for [`Array::reshape`]: any of `usize`, `isize`, `i32`, `i64`,
/// `u32`, `u64`, so that `x.reshape([4, -1])` and `x.reshape(other.shape())` both work. `-1`
/// (signed types only) asks for the length to be inferred.
pub trait ReshapeDim: Copy + sealed::Sealed {
    #[doc(hidden)]
    fn to_i128(self) -> i128;
}

macro_rules! reshape_dim {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl ReshapeDim for $t {
            fn to_i128(self) -> i128 {
                self as i128
            }
        }
    )*};
}
reshape_dim!(usize, isize, i32, i64, u32, u64);

/// The new shape with its `-1` resolved, checked against the array's size (numpy's rules).
fn resolve_shape(size: usize, dims: &[i128]) -> Result<Vec<usize>> {
    let bad = |why: &str| {
        Error::InvalidArgument(format!(
            "cannot reshape array of size {size} into shape {dims:?}: {why}"
        ))
    };
    if dims.iter().filter(|&&d| d == -1).count() > 1 {
        return Err(bad("only one length may be -1 (inferred)"));
    }
    if let Some(d) = dims.iter().find(|&&d| d < -1) {
        return Err(bad(&format!(
            "length {d} is negative (only -1, to infer a length, is allowed)"
        )));
    }
    let mut known: i128 = 1;
    for &d in dims.iter().filter(|&&d| d >= 0) {
        known = known
            .checked_mul(d)
            .filter(|&k| k <= usize::MAX as i128)
            .ok_or_else(|| bad("the lengths multiply past usize::MAX"))?;
    }
    let size_i = size as i128;
    let inferred = if dims.contains(&-1) {
        if known == 0 {
            return Err(bad(
                "the other lengths multiply to 0, so the -1 length cannot be inferred",
            ));
        }
        if size_i % known != 0 {
            return Err(bad(&format!(
                "the other lengths multiply to {known}, which does not divide {size}"
            )));
        }
        size_i / known
    } else if known != size_i {
        return Err(bad(&format!(
            "the lengths multiply to {known}; the total size must be unchanged"
        )));
    } else {
        0
    };
    Ok(dims
        .iter()
        .map(|&d| {
            if d == -1 {
                inferred as usize
            } else {
                d as usize
            }
        })
        .collect())
}

/// How a reshape runs block by block: rechunk the input to `in_chunks`, then input block `i` (C
/// order) reshapes to output block `i` of `out_chunks`.
struct ReshapePlan {
    in_chunks: Vec<Vec<usize>>,
    out_chunks: Vec<Vec<usize>>,
}

/// dask's `reshape_rechunk`: `None` when the shapes do not only merge or split neighbouring axes.
/// Needs a non-empty array.
///
/// Walking both shapes from the last axis: equal lengths keep their chunks; length-1 axes get
/// `(1,)`; input axes that merge into one output axis must be whole, except the outermost,
/// whose chunks are split finer (dask's `expand_tuple`) so output chunks stay about as large as
/// input chunks; an input axis that splits into several output axes is rechunked to multiples of
/// the inner output axes' size (dask's `contract_tuple`), which are whole. As in dask, merged
/// axes need not be whole when the outer ones are cut into single elements (each block is then a
/// contiguous run already); dask checks that for every outer axis, this only for the merged ones.
fn reshape_plan(
    inshape: &[usize],
    outshape: &[usize],
    inchunks: &[Vec<usize>],
) -> Option<ReshapePlan> {
    let prod = |s: &[usize]| s.iter().product::<usize>();
    let mut res_in = vec![Vec::new(); inshape.len()];
    let mut res_out = vec![Vec::new(); outshape.len()];
    // The number of axes not yet planned on each side.
    let (mut ni, mut no) = (inshape.len(), outshape.len());
    while ni > 0 || no > 0 {
        let din = ni.checked_sub(1).map(|i| inshape[i]);
        let dout = no.checked_sub(1).map(|o| outshape[o]);
        if din.is_some() && din == dout {
            res_in[ni - 1] = inchunks[ni - 1].clone();
            res_out[no - 1] = inchunks[ni - 1].clone();
            ni -= 1;
            no -= 1;
            continue;
        }
        if din == Some(1) {
            res_in[ni - 1] = vec![1];
            ni -= 1;
            continue;
        }
        if dout == Some(1) {
            res_out[no - 1] = vec![1];
            no -= 1;
            continue;
        }
        let (Some(din), Some(dout)) = (din, dout) else {
            return None;
        };
        let (i, o) = (ni - 1, no - 1);
        if din < dout {
            // Merge input axes left..=i into output axis o.
            let mut left = i;
            while left > 0 && prod(&inshape[left..=i]) < dout {
                left -= 1;
            }
            if prod(&inshape[left..=i]) != dout {
                return None;
            }
            if (left..i).all(|a| inchunks[a].len() == inshape[a]) {
                res_in[left..=i].clone_from_slice(&inchunks[left..=i]);
                let reps = (left..i).map(|a| inchunks[a].len()).product();
                res_out[o] = inchunks[i].repeat(reps);
            } else {
                for a in left + 1..=i {
                    res_in[a] = vec![inshape[a]];
                }
                let reduction = (left + 1..=i).map(|a| inchunks[a].len()).product();
                res_in[left] = expand_tuple(&inchunks[left], reduction);
                let inner = prod(&inshape[left + 1..=i]);
                res_out[o] = res_in[left].iter().map(|c| c * inner).collect();
            }
            ni = left;
            no -= 1;
        } else {
            // Split input axis i into output axes left..=o.
            let mut left = o;
            while left > 0 && prod(&outshape[left..=o]) < din {
                left -= 1;
            }
            if prod(&outshape[left..=o]) != din {
                return None;
            }
            let inner = prod(&outshape[left + 1..=o]);
            res_in[i] = contract_tuple(&inchunks[i], inner);
            for a in left + 1..=o {
                res_out[a] = vec![outshape[a]];
            }
            res_out[left] = res_in[i].iter().map(|c| c / inner).collect();
            ni -= 1;
            no = left;
        }
    }
    Some(ReshapePlan {
        in_chunks: res_in,
        out_chunks: res_out,
    })
}

/// dask's `expand_tuple`: splits each chunk into about `factor` parts (at least 1 long).
fn expand_tuple(chunks: &[usize], factor: usize) -> Vec<usize> {
    if factor == 1 {
        return chunks.to_vec();
    }
    let mut out = Vec::new();
    for &c in chunks {
        let mut x = c;
        let part = (c as f64 / factor as f64).max(1.0);
        while x as f64 >= 2.0 * part {
            out.push(part as usize);
            x -= part as usize;
        }
        if x > 0 {
            out.push(x);
        }
    }
    out
}

/// dask's `contract_tuple`: merges neighbouring chunks into multiples of `factor` (which divides
/// their sum).
fn contract_tuple(chunks: &[usize], factor: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut residual = 0;
    for &c in chunks {
        let c = c + residual;
        residual = c % factor;
        if c >= factor {
            out.push(c - residual);
        }
    }
    out
}

/// The shape between `inshape` and `outshape` in which every smallest group of neighbouring
/// axes whose lengths multiply to the same number on both sides is one axis: reshaping to it
/// only merges axes, and reshaping from it only splits them. Needs equal, non-zero sizes.
fn merged_shape(inshape: &[usize], outshape: &[usize]) -> Vec<usize> {
    let mut mid = Vec::new();
    let (mut i, mut o) = (inshape.len(), outshape.len());
    while i > 0 && o > 0 {
        i -= 1;
        o -= 1;
        let (mut pi, mut po) = (inshape[i], outshape[o]);
        while pi != po {
            if pi < po && i > 0 {
                i -= 1;
                pi *= inshape[i];
            } else if po < pi && o > 0 {
                o -= 1;
                po *= outshape[o];
            } else {
                break;
            }
        }
        mid.push(pi);
    }
    mid.reverse();
    mid
}

impl<T: Element> Array<T> {
    /// Gives the array a new shape with the same elements in C (row-major) order (numpy's and
    /// dask's `reshape`); one length may be `-1`, inferred from the others.
    ///
    /// Follows dask's plan (`reshape_rechunk`): a reshape that merges neighbouring axes or
    /// splits one axis into neighbours first rechunks the input (in the graph) so that every
    /// output chunk comes from exactly one input chunk, then reshapes each chunk: merged inner
    /// axes become whole (their outer axis is cut finer to keep chunks about as large), a split
    /// axis is cut at multiples of the inner new axes' size. A reshape that mixes lengths across
    /// axes (`(4, 6)` to `(6, 4)`) goes through the merged shape (`(24,)`) in two such steps,
    /// where dask raises `NotImplementedError`. A one-chunk array reshapes in one task. Unlike
    /// recent dask, output chunks are not re-split to a byte limit.
    ///
    /// ```
    /// use chunkflow::array;
    /// let x = array::arange(0i32, 24, 1, 6).unwrap();
    /// let y = x.reshape([2, -1, 4]).unwrap(); // split (24,) into (2, 3, 4)
    /// assert_eq!(y.shape(), &[2, 3, 4]);
    /// // Input chunks of 6 merge into multiples of 12 (= 3 * 4), one per output chunk.
    /// assert_eq!(y.chunks().to_string(), "((1, 1), (3,), (4,))");
    /// let z = y.reshape([6, 4]).unwrap(); // merge the first two axes
    /// let expected = x.compute().unwrap().into_shape_with_order(vec![6, 4]).unwrap();
    /// assert_eq!(z.compute().unwrap(), expected);
    /// assert!(x.reshape([5, -1]).is_err());
    /// ```
    ///
    /// # Errors
    /// When the new shape has another size than the array, more than one `-1`, or a negative
    /// length other than `-1`.
    pub fn reshape<D: ReshapeDim>(&self, shape: impl AsRef<[D]>) -> Result<Array<T>> {
        let dims: Vec<i128> = shape.as_ref().iter().map(|d| d.to_i128()).collect();
        let shape = resolve_shape(self.len(), &dims)?;
        self.reshape_to(shape, true)
    }

    fn reshape_to(&self, shape: Vec<usize>, two_steps: bool) -> Result<Array<T>> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let name = key_name("reshape", op_token("reshape", &[self.name()], &shape));
        if self.is_empty() {
            let chunks = Chunks::single(&shape);
            return Ok(Array::from_block_tasks(name, chunks, vec![], |_, key| {
                let shape = shape.clone();
                Task::call(key, Vec::<Key>::new(), move |_| {
                    Ok(value(ArrayD::<T>::from_shape_vec(IxDyn(&shape), vec![])?))
                })
            }));
        }
        let plan = if self.num_chunks() == 1 {
            let single = |s: &[usize]| s.iter().map(|&n| vec![n]).collect();
            Some(ReshapePlan {
                in_chunks: single(self.shape()),
                out_chunks: single(&shape),
            })
        } else {
            reshape_plan(self.shape(), &shape, self.chunks().axes())
        };
        let Some(ReshapePlan {
            in_chunks,
            out_chunks,
        }) = plan
        else {
            let mid = merged_shape(self.shape(), &shape);
            if !two_steps || mid == self.shape() || mid == shape {
                return Err(Error::InvalidArgument(format!(
                    "cannot plan the reshape of {:?} into {shape:?} block by block",
                    self.shape()
                )));
            }
            return self.reshape_to(mid, false)?.reshape_to(shape, false);
        };
        let x = self.rechunk(Chunks::with_shape(in_chunks, self.shape())?)?;
        let out_chunks = Chunks::with_shape(out_chunks, &shape)?;
        debug_assert_eq!(x.num_chunks(), out_chunks.num_chunks());
        let mut in_blocks = x.chunks().blocks();
        Ok(Array::from_block_tasks(
            name,
            out_chunks.clone(),
            vec![x.layer().clone()],
            |idx, key| {
                let in_idx = in_blocks.next().expect("as many input as output blocks");
                let block_shape = out_chunks.block_shape(idx);
                Task::call(key, [x.block_key(&in_idx)], move |inputs| {
                    let block = take_block::<T>(inputs, 0)?;
                    Ok(value(block.into_shape_clone(IxDyn(&block_shape))?))
                })
            },
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Concatenate and stack
// ---------------------------------------------------------------------------------------------

/// Rechunks every array so that the axes listed in `unify` have the same chunks in all of them
/// (the common refinement of their boundaries, dask's `unify_chunks`). All arrays must have the
/// same lengths on those axes.
fn unify_axes<T: Element>(arrays: &[&Array<T>], unify: &[usize]) -> Result<Vec<Array<T>>> {
    let mut refined: Vec<Option<Chunks>> = vec![None; arrays[0].ndim()];
    for &axis in unify {
        for a in arrays {
            let c = Chunks::new(vec![a.chunks().axis(axis).to_vec()])?;
            refined[axis] = Some(match refined[axis].take() {
                None => c,
                Some(r) => super::chunks::common_refinement(&r, &c)?,
            });
        }
    }
    arrays
        .iter()
        .map(|a| {
            let want: Vec<Vec<usize>> = (0..a.ndim())
                .map(|axis| match &refined[axis] {
                    Some(r) => r.axis(0).to_vec(),
                    None => a.chunks().axis(axis).to_vec(),
                })
                .collect();
            a.rechunk(Chunks::with_shape(want, a.shape())?)
        })
        .collect()
}

/// The common number of axes of `arrays`, or the error numpy gives.
fn common_ndim<T: Element>(arrays: &[&Array<T>], op: &str) -> Result<usize> {
    let Some(first) = arrays.first() else {
        return Err(Error::InvalidArgument(format!(
            "{op} needs at least one array"
        )));
    };
    for (i, a) in arrays.iter().enumerate() {
        if a.ndim() != first.ndim() {
            return Err(Error::InvalidArgument(format!(
                "{op}: all the input arrays must have the same number of dimensions, but the \
                 array at index 0 has {} dimension(s) and the array at index {i} has {} \
                 dimension(s)",
                first.ndim(),
                a.ndim()
            )));
        }
    }
    Ok(first.ndim())
}

/// Joins arrays along an existing axis (numpy's and dask's `concatenate`).
///
/// Shapes must match except along `axis`. The result's chunks along `axis` are the inputs'
/// chunks one after the other (empty inputs contribute none); on the other axes the inputs are
/// first rechunked to the common refinement of their chunks. Each output chunk is an identity
/// task on one input chunk, which graph fusion removes when nothing else reads that chunk.
///
/// ```
/// use chunkflow::array::{self, concatenate};
/// let a = array::ones::<i32>(&[2, 3], [1, 3]).unwrap();
/// let b = array::zeros::<i32>(&[4, 3], [3, 3]).unwrap();
/// let c = concatenate(&[&a, &b], 0).unwrap();
/// assert_eq!(c.shape(), &[6, 3]);
/// assert_eq!(c.chunks().axis(0), &[1, 1, 3, 1]);
/// assert_eq!(c.compute().unwrap().sum(), 6);
/// assert!(concatenate(&[&a, &b], 1).is_err());
/// ```
///
/// # Errors
/// When `arrays` is empty, the arrays are 0-d or differ in number of axes, `axis` is out of
/// range, or a length other than along `axis` differs.
pub fn concatenate<T: Element>(arrays: &[&Array<T>], axis: usize) -> Result<Array<T>> {
    let ndim = common_ndim(arrays, "concatenate")?;
    if ndim == 0 {
        return Err(Error::InvalidArgument(
            "zero-dimensional arrays cannot be concatenated".into(),
        ));
    }
    if axis >= ndim {
        return Err(Error::InvalidArgument(format!(
            "concatenate: axis {axis} is out of bounds for arrays of dimension {ndim}"
        )));
    }
    let first = arrays[0];
    for (i, a) in arrays.iter().enumerate() {
        for d in (0..ndim).filter(|&d| d != axis) {
            if a.shape()[d] != first.shape()[d] {
                return Err(Error::InvalidArgument(format!(
                    "concatenate: all the input array dimensions except for the concatenation \
                     axis must match exactly, but along dimension {d}, the array at index 0 has \
                     size {} and the array at index {i} has size {}",
                    first.shape()[d],
                    a.shape()[d]
                )));
            }
        }
    }
    if arrays.len() == 1 {
        return Ok(first.clone());
    }
    let others: Vec<usize> = (0..ndim).filter(|&d| d != axis).collect();
    let inputs = unify_axes(arrays, &others)?;
    // Along `axis`: for each output block, the input array and its block.
    let mut sources: Vec<(usize, usize)> = Vec::new();
    let mut sizes: Vec<usize> = Vec::new();
    for (k, a) in inputs.iter().enumerate() {
        if a.shape()[axis] == 0 {
            continue;
        }
        for (j, &c) in a.chunks().axis(axis).iter().enumerate() {
            sources.push((k, j));
            sizes.push(c);
        }
    }
    if sources.is_empty() {
        sources.push((0, 0));
        sizes.push(0);
    }
    let mut axes = inputs[0].chunks().axes().to_vec();
    axes[axis] = sizes;
    let chunks = Chunks::new(axes)?;
    let names: Vec<&str> = inputs.iter().map(|a| a.name()).collect();
    let name = key_name("concatenate", op_token("concatenate", &names, &axis));
    let layers = inputs.iter().map(|a| a.layer().clone()).collect();
    Ok(Array::from_block_tasks(name, chunks, layers, |idx, key| {
        let (k, j) = sources[idx[axis]];
        let mut in_idx = idx.to_vec();
        in_idx[axis] = j;
        identity_task(key, inputs[k].block_key(&in_idx))
    }))
}

/// Joins arrays of one shape along a new axis at position `axis` (numpy's and dask's `stack`).
///
/// The new axis has one chunk of size 1 per input; the inputs are first rechunked to the common
/// refinement of their chunks. Each output chunk is its input chunk with an axis inserted (no
/// copy).
///
/// ```
/// use chunkflow::array::{self, stack};
/// let a = array::ones::<f64>(&[4], [2]).unwrap();
/// let b = array::zeros::<f64>(&[4], [4]).unwrap();
/// let s = stack(&[&a, &b], 1).unwrap();
/// assert_eq!(s.shape(), &[4, 2]);
/// assert_eq!(s.chunks().to_string(), "((2, 2), (1, 1))");
/// assert_eq!(s.compute().unwrap().index_axis(ndarray::Axis(1), 0).sum(), 4.0);
/// ```
///
/// # Errors
/// When `arrays` is empty, the shapes differ, or `axis > ndim`.
pub fn stack<T: Element>(arrays: &[&Array<T>], axis: usize) -> Result<Array<T>> {
    let ndim = common_ndim(arrays, "stack")?;
    if axis > ndim {
        return Err(Error::InvalidArgument(format!(
            "stack: axis {axis} is out of bounds for a result of dimension {}",
            ndim + 1
        )));
    }
    let first = arrays[0];
    for (i, a) in arrays.iter().enumerate() {
        if a.shape() != first.shape() {
            return Err(Error::InvalidArgument(format!(
                "stack: all input arrays must have the same shape, but the array at index 0 has \
                 shape {:?} and the array at index {i} has shape {:?}",
                first.shape(),
                a.shape()
            )));
        }
    }
    let all: Vec<usize> = (0..ndim).collect();
    let inputs = unify_axes(arrays, &all)?;
    let mut axes = inputs[0].chunks().axes().to_vec();
    axes.insert(axis, vec![1; inputs.len()]);
    let chunks = Chunks::new(axes)?;
    let names: Vec<&str> = inputs.iter().map(|a| a.name()).collect();
    let name = key_name("stack", op_token("stack", &names, &axis));
    let layers = inputs.iter().map(|a| a.layer().clone()).collect();
    Ok(Array::from_block_tasks(name, chunks, layers, |idx, key| {
        let mut in_idx = idx.to_vec();
        let k = in_idx.remove(axis);
        Task::call(key, [inputs[k].block_key(&in_idx)], move |inputs| {
            Ok(value(take_block::<T>(inputs, 0)?.insert_axis(Axis(axis))))
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dask's `test_expand_tuple` and `test_contract_tuple`.
    #[test]
    fn expand_and_contract_match_dask() {
        assert_eq!(expand_tuple(&[2, 4], 2), [1, 1, 2, 2]);
        assert_eq!(expand_tuple(&[2, 4], 3), [1, 1, 1, 1, 2]);
        assert_eq!(expand_tuple(&[3, 4], 2), [1, 2, 2, 2]);
        assert_eq!(expand_tuple(&[7, 4], 3), [2, 2, 3, 1, 1, 2]);
        assert_eq!(contract_tuple(&[1, 1, 2, 3, 1], 2), [2, 2, 2, 2]);
        assert_eq!(contract_tuple(&[1, 1, 2, 5, 1], 2), [2, 2, 4, 2]);
        assert_eq!(contract_tuple(&[2, 4], 2), [2, 4]);
        assert_eq!(contract_tuple(&[2, 4], 3), [6]);
    }

    #[test]
    fn merged_shape_groups_axes_with_equal_products() {
        assert_eq!(merged_shape(&[4, 6], &[6, 4]), [24]);
        assert_eq!(merged_shape(&[10, 6, 6], &[6, 10, 6]), [60, 6]);
        assert_eq!(merged_shape(&[2, 1, 3], &[3, 2]), [6]);
        assert_eq!(merged_shape(&[5, 4, 6], &[5, 6, 4]), [5, 24]);
    }

    #[test]
    fn numpy_ranges() {
        let r = |len, start, end, step| numpy_range(0, len, start, end, step).unwrap();
        let range = |start, step, count| Sel::Range { start, step, count };
        assert_eq!(r(7, 0, None, -1), range(6, -1, 7));
        assert_eq!(r(7, 5, Some(1), -1), range(5, -1, 4));
        assert_eq!(r(7, 1, Some(5), -1), range(0, -1, 0));
        assert_eq!(r(7, -100, Some(100), 3), range(0, 3, 3));
        assert_eq!(r(0, 0, None, -1), range(0, -1, 0));
        assert!(numpy_range(2, 7, 0, None, 0).is_err());
    }

    #[test]
    fn pieces_follow_input_blocks() {
        let chunks = Chunks::new(vec![vec![3, 3, 1]]).unwrap();
        // x[6::-2] over blocks (0..3, 3..6, 6..7): 6 | 4 | 2, 0.
        let p = range_pieces(&chunks, 0, 6, -2, 4);
        let blocks: Vec<(usize, usize)> = p.iter().map(|p| (p.block, p.len)).collect();
        assert_eq!(blocks, [(2, 1), (1, 1), (0, 2)]);
        assert_eq!(
            p[2].local,
            SliceInfoElem::Slice {
                start: 0,
                end: Some(3),
                step: -2
            }
        );
    }
}
