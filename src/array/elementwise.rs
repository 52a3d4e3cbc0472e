//! Element-wise operations: numpy broadcasting with chunk unification, arithmetic operators,
//! comparisons, `where`, and unary maths.
//!
//! Operands of different chunkings are first rechunked to the common refinement of their chunk
//! boundaries (dask's `unify_chunks`); an axis of length 1 broadcasts against any length, and
//! missing leading axes broadcast as in numpy. Each output block is one task reading the
//! matching block of every operand. A chain of element-wise steps on one array is a linear
//! chain per chunk, which the graph optimizer fuses into one task per chunk (blockwise fusion);
//! a step that is its input chunk's last consumer works in place. An operand that is a transpose
//! (`x.t()`) is read from its source's blocks through permuted strides, so `&x + &x.t()` runs no
//! transpose task and copies no block; the kernels are generic over the operation, so each one
//! is compiled (and vectorised) for its closure.
//!
//! Two facts about a result are recorded for the reductions (see `reduce.rs`): operands with
//! block streams and one chunking give a result with streams of its own (`f` applied slice by
//! slice), and `a ± b` of floating-point operands with one chunking remembers its two terms, so
//! a sum or mean over it can reduce each term where it lies.
//!
//! Operators (`&a + &b`) panic, like ndarray's, when shapes cannot be broadcast; the `try_*`
//! methods and [`where_`] return that as an error instead.

use std::ops::{Add, Div, Mul, Neg, Rem, Sub};
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn, Zip};

use super::chunks::{Chunks, common_refinement};
use super::core::{Array, TransposeOf, op_token};
use super::dtype::{Element, Float, Number, is_nan};
use super::stream;
use crate::error::{BoxError, Error, Result};
use crate::graph::token::{key_name, token_of};
use crate::graph::{Inputs, Key, Layer, Task, Value, value};

/// An array with its element type erased: what broadcasting and unification work on.
#[derive(Clone)]
pub(crate) struct Operand {
    name: Arc<str>,
    chunks: Chunks,
    layer: Arc<Layer>,
    rechunk: fn(&Operand, &Chunks) -> Result<Operand>,
    /// For a transpose: the source array whose blocks are read as permuted views.
    view: Option<Arc<TransposeOf>>,
}

impl<T: Element> Array<T> {
    pub(crate) fn operand(&self) -> Operand {
        Operand {
            name: self.name().into(),
            chunks: self.chunks().clone(),
            layer: self.layer().clone(),
            rechunk: rechunk_operand::<T>,
            view: self.transpose_source().cloned(),
        }
    }
}

/// Per operand, the axis permutation its blocks are read with (`None`: as they are).
pub(crate) type Perms = [Option<Arc<[usize]>>];

fn rechunk_operand<T: Element>(op: &Operand, chunks: &Chunks) -> Result<Operand> {
    let a: Array<T> = Array::from_parts(op.name.clone(), op.chunks.clone(), op.layer.clone());
    Ok(a.rechunk(chunks.clone())?.operand())
}

/// The broadcast of several operands: output chunks and, per operand, how an output block index
/// maps to one of its block indices.
struct Broadcast {
    chunks: Chunks,
    operands: Vec<Operand>,
    /// For operand j and output axis k: `Some(a)` if operand axis a follows output axis k,
    /// `None` if the operand broadcasts there (block index 0) or lacks the axis.
    axes: Vec<Vec<Option<usize>>>,
}

// Axis k of the output is matched against axis k - (ndim - ndim_j) of every operand j, so the
// loop is over output axes by index.
#[allow(clippy::needless_range_loop)]
fn broadcast(operands: &[Operand]) -> Result<Broadcast> {
    let ndim = operands.iter().map(|o| o.chunks.ndim()).max().unwrap_or(0);
    let mut out_axes: Vec<Vec<usize>> = Vec::with_capacity(ndim);
    let mut maps: Vec<Vec<Option<usize>>> = vec![vec![None; ndim]; operands.len()];
    for k in 0..ndim {
        // Output length on axis k: the one length other than 1 (numpy's rule).
        let mut len = 1;
        for o in operands {
            if let Some(a) = (k + o.chunks.ndim()).checked_sub(ndim) {
                let s = o.chunks.shape()[a];
                if s != 1 {
                    if len != 1 && len != s {
                        return Err(shape_error(operands));
                    }
                    len = s;
                }
            }
        }
        let mut refined: Option<Chunks> = None;
        for (j, o) in operands.iter().enumerate() {
            let Some(a) = (k + o.chunks.ndim()).checked_sub(ndim) else {
                continue;
            };
            if o.chunks.shape()[a] == len && !(len == 1 && o.chunks.axis(a) == [1]) {
                maps[j][k] = Some(a);
                let c = Chunks::new(vec![o.chunks.axis(a).to_vec()])?;
                refined = Some(match refined {
                    None => c,
                    Some(r) => common_refinement(&r, &c)?,
                });
            }
        }
        out_axes.push(refined.map_or_else(|| vec![len], |r| r.axis(0).to_vec()));
    }
    let chunks = Chunks::new(out_axes)?;
    // Rechunk operands whose followed axes differ from the output's.
    let mut aligned = Vec::with_capacity(operands.len());
    for (j, o) in operands.iter().enumerate() {
        let mut want: Vec<Vec<usize>> = o.chunks.axes().to_vec();
        for (k, m) in maps[j].iter().enumerate() {
            if let Some(a) = m {
                want[*a] = chunks.axis(k).to_vec();
            }
        }
        if want.as_slice() == o.chunks.axes() {
            aligned.push(o.clone());
        } else {
            aligned.push((o.rechunk)(o, &Chunks::new(want)?)?);
        }
    }
    Ok(Broadcast {
        chunks,
        operands: aligned,
        axes: maps,
    })
}

fn shape_error(operands: &[Operand]) -> Error {
    let shapes: Vec<String> = operands
        .iter()
        .map(|o| format!("{:?}", o.chunks.shape()))
        .collect();
    Error::InvalidArgument(format!(
        "operands could not be broadcast together with shapes {}",
        shapes.join(" ")
    ))
}

/// Builds an element-wise array over broadcast operands; `f` gets the operands' blocks (in
/// operand order), the permutation to read each with, and the output block's shape.
///
/// An operand that is a transpose (`x.t()`) is read from its source's blocks through permuted
/// strides: its transpose tasks never run, so a block of `x` that both `x` and `x.t()` use is
/// not copied.
pub(crate) fn elementwise<U, F>(
    op: &str,
    params: u64,
    operands: &[Operand],
    f: F,
) -> Result<Array<U>>
where
    U: Element,
    F: Fn(Inputs, &Perms, &[usize]) -> Result<ArrayD<U>, BoxError> + Send + Sync + 'static,
{
    let b = broadcast(operands)?;
    let names: Vec<&str> = b.operands.iter().map(|o| &*o.name).collect();
    let name = key_name(op, op_token(op, &names, &params));
    let f = Arc::new(f);
    let layers = b
        .operands
        .iter()
        .map(|o| o.view.as_ref().map_or(&o.layer, |v| &v.layer).clone())
        .collect();
    let perms: Arc<Perms> = b
        .operands
        .iter()
        .map(|o| o.view.as_ref().map(|v| v.perm.clone()))
        .collect();
    let chunks = b.chunks.clone();
    Ok(Array::from_block_tasks(
        name,
        b.chunks.clone(),
        layers,
        |idx, key| {
            let deps: Vec<Key> = b
                .operands
                .iter()
                .zip(&b.axes)
                .map(|(o, map)| {
                    let mut oi = vec![0; o.chunks.ndim()];
                    for (k, m) in map.iter().enumerate() {
                        if let Some(a) = m {
                            oi[*a] = idx[k];
                        }
                    }
                    match &o.view {
                        None => Key::chunk(o.name.clone(), &oi),
                        Some(v) => {
                            let mut si = vec![0; oi.len()];
                            for (k, &p) in v.perm.iter().enumerate() {
                                si[p] = oi[k];
                            }
                            Key::chunk(v.name.clone(), &si)
                        }
                    }
                })
                .collect();
            let shape = chunks.block_shape(idx);
            let (f, perms) = (f.clone(), perms.clone());
            Task::call(key, deps, move |inputs| {
                Ok(value(f(inputs, &perms, &shape)?))
            })
        },
    ))
}

/// A block: owned (this task was its last consumer) or shared.
enum Block<T> {
    Owned(ArrayD<T>),
    /// Shared with other readers, with the permutation to read it with.
    Shared(Arc<ArrayD<T>>, Option<Arc<[usize]>>),
}

impl<T: Element> Block<T> {
    /// Input `i` of `inputs` read with permutation `perms[i]`.
    fn take(
        inputs: &mut impl Iterator<Item = Value>,
        perms: &Perms,
        i: usize,
    ) -> Result<Self, BoxError> {
        let v = inputs.next().ok_or("missing input")?;
        let perm = perms.get(i).and_then(|p| p.clone());
        match v.downcast::<ArrayD<T>>() {
            Ok(arc) => Ok(match Arc::try_unwrap(arc) {
                Ok(owned) => Block::Owned(match perm {
                    Some(p) => owned.permuted_axes(&*p),
                    None => owned,
                }),
                Err(shared) => Block::Shared(shared, perm),
            }),
            Err(_) => Err(format!("input {i} is not an array of {}", T::DTYPE).into()),
        }
    }

    fn view(&self) -> ndarray::ArrayViewD<'_, T> {
        match self {
            Block::Owned(a) => a.view(),
            Block::Shared(a, None) => a.view(),
            Block::Shared(a, Some(p)) => a.view().permuted_axes(&**p),
        }
    }
}

fn broadcast_view<'a, T>(
    a: &'a ndarray::ArrayViewD<'a, T>,
    shape: &[usize],
) -> Result<ndarray::ArrayViewD<'a, T>, BoxError> {
    a.broadcast(IxDyn(shape)).ok_or_else(|| {
        format!(
            "block of shape {:?} does not broadcast to {:?}",
            a.shape(),
            shape
        )
        .into()
    })
}

/// `f(a, b)` elementwise over two broadcast operands of type `T`, in place in `a` (or `b`)
/// when this task holds the operand's only reference and it has the output's shape.
///
/// `f` is a generic closure, so the loop is monomorphised per operation and vectorises; `Zip`
/// walks operands of any layout (a transposed block is read through its permuted strides), and
/// two 2-d operands of opposite memory orders are walked in tiles (see [`zip_assign`]).
fn binary_same<T: Element, F: Fn(T, T) -> T>(
    inputs: Inputs,
    perms: &Perms,
    shape: &[usize],
    f: F,
) -> Result<ArrayD<T>, BoxError> {
    let mut it = inputs.into_iter();
    let a = Block::<T>::take(&mut it, perms, 0)?;
    let b = Block::<T>::take(&mut it, perms, 1)?;
    match (a, b) {
        (Block::Owned(mut a), b) if a.shape() == shape => {
            let bv = b.view();
            zip_assign(a.view_mut(), broadcast_view(&bv, shape)?, |x, y| {
                *x = f(*x, y)
            });
            Ok(a)
        }
        (a, Block::Owned(mut b)) if b.shape() == shape => {
            let av = a.view();
            zip_assign(b.view_mut(), broadcast_view(&av, shape)?, |y, x| {
                *y = f(x, *y)
            });
            Ok(b)
        }
        (a, b) => {
            let (av, bv) = (a.view(), b.view());
            let (av, bv) = (broadcast_view(&av, shape)?, broadcast_view(&bv, shape)?);
            if crosses_layout(&av, &bv) {
                // Copy `a` (a streaming pass), then combine tile by tile.
                let mut out = av.to_owned();
                zip_assign(out.view_mut(), bv, |x, y| *x = f(*x, y));
                Ok(out)
            } else {
                Ok(Zip::from(&av).and(&bv).map_collect(|&x, &y| f(x, y)))
            }
        }
    }
}

/// Whether two 2-d views of one shape have opposite memory orders (one walks rows where the
/// other walks columns: `x` and `x.T`), so that a plain walk strides through one of them.
fn crosses_layout<T, U>(a: &ndarray::ArrayViewD<'_, T>, b: &ndarray::ArrayViewD<'_, U>) -> bool {
    let inner = |s: &[isize]| (s[0].unsigned_abs(), s[1].unsigned_abs());
    if a.ndim() != 2 || a.len() < TILE * TILE {
        return false;
    }
    let (a0, a1) = inner(a.strides());
    let (b0, b1) = inner(b.strides());
    (a1 == 1 && b0 == 1 && b1 > 1) || (a0 == 1 && b1 == 1 && b0 > 1)
}

/// Tile edge for walking operands of opposite memory orders: a 64 × 64 tile of f64 is 32 KiB,
/// so both operands' tiles stay in the L1/L2 cache while one is read across its rows.
const TILE: usize = 64;

/// `f(out element, other element)` over two views of one shape; 2-d views of opposite memory
/// orders are walked tile by tile, so neither is read with a cache miss per element.
fn zip_assign<T: Copy, F: Fn(&mut T, T)>(
    out: ndarray::ArrayViewMutD<'_, T>,
    other: ndarray::ArrayViewD<'_, T>,
    f: F,
) {
    let mut out = out;
    if !crosses_layout(&out.view(), &other) {
        Zip::from(&mut out).and(&other).for_each(|x, &y| f(x, y));
        return;
    }
    let (Ok(mut out), Ok(mut other)) = (
        out.into_dimensionality::<ndarray::Ix2>(),
        other.into_dimensionality::<ndarray::Ix2>(),
    ) else {
        unreachable!("crosses_layout checked both are 2-d")
    };
    // Make `out` walk rows (its last axis contiguous); `other` then walks columns.
    if out.strides()[1].unsigned_abs() != 1 {
        out = out.reversed_axes();
        other = other.reversed_axes();
    }
    let (rows, cols) = out.dim();
    let other_t = other.reversed_axes();
    match (out.as_slice_mut(), other_t.as_slice()) {
        (Some(dst), Some(src)) => {
            // dst[r, c] = f(dst[r, c], src[c, r]), both row-major, tile by tile.
            for r0 in (0..rows).step_by(TILE) {
                let r1 = (r0 + TILE).min(rows);
                for c0 in (0..cols).step_by(TILE) {
                    let c1 = (c0 + TILE).min(cols);
                    for r in r0..r1 {
                        let row = &mut dst[r * cols + c0..r * cols + c1];
                        for (x, c) in row.iter_mut().zip(c0..c1) {
                            f(x, src[c * rows + r]);
                        }
                    }
                }
            }
        }
        _ => {
            let other = other_t.reversed_axes();
            Zip::from(&mut out).and(&other).for_each(|x, &y| f(x, y));
        }
    }
}

/// `f(a, b)` elementwise into a new array of `U`.
fn binary_map<T: Element, U: Element, F: Fn(T, T) -> U>(
    inputs: Inputs,
    perms: &Perms,
    shape: &[usize],
    f: F,
) -> Result<ArrayD<U>, BoxError> {
    let mut it = inputs.into_iter();
    let a = Block::<T>::take(&mut it, perms, 0)?;
    let b = Block::<T>::take(&mut it, perms, 1)?;
    let (av, bv) = (a.view(), b.view());
    Ok(Zip::from(&broadcast_view(&av, shape)?)
        .and(&broadcast_view(&bv, shape)?)
        .map_collect(|&x, &y| f(x, y)))
}

impl<T: Element> Array<T> {
    /// Combines two arrays elementwise with `f` (broadcasting, unifying chunks). `op` names the
    /// operation in keys: the same `op` on the same inputs must mean the same `f`.
    pub fn zip_with<F>(&self, other: &Array<T>, op: &'static str, f: F) -> Result<Array<T>>
    where
        F: Fn(T, T) -> T + Send + Sync + Copy + 'static,
    {
        let out = elementwise(
            op,
            token_of(op),
            &[self.operand(), other.operand()],
            move |i, p, s| binary_same(i, p, s, f),
        )?;
        // Operands with block streams and one chunking give the result streams of its own.
        Ok(
            match (
                self.own_streams(),
                other.own_streams(),
                self.same_blocks(other),
            ) {
                (Some(a), Some(b), true) => out.with_streams(Arc::new(stream::Zip {
                    a: a.clone(),
                    b: b.clone(),
                    f,
                })),
                _ => out,
            },
        )
    }

    /// Whether block `i` of `self` and of `other` cover the same elements (same shape and
    /// chunks: no broadcasting, no rechunking).
    fn same_blocks(&self, other: &Array<T>) -> bool {
        self.shape() == other.shape() && self.chunks() == other.chunks()
    }

    /// `self ± other`, recording the terms when a sum or mean over it can reduce them one by
    /// one: floating-point operands of one chunking (integer sums wrap element by element in
    /// numpy, so integers keep the element-wise result).
    fn sum_or_difference(&self, other: &Array<T>, negate: bool) -> Result<Array<T>>
    where
        T: Number,
    {
        let out = if negate {
            self.zip_with(other, "sub", |a, b| a - b)?
        } else {
            self.zip_with(other, "add", |a, b| a + b)?
        };
        Ok(if T::DTYPE.is_float() && self.same_blocks(other) {
            out.with_sum_of([self.term(false), other.term(negate)])
        } else {
            out
        })
    }

    /// Compares two arrays elementwise with `f`, giving booleans (`op` names it in keys).
    pub fn compare_with<F>(&self, other: &Array<T>, op: &'static str, f: F) -> Result<Array<bool>>
    where
        F: Fn(T, T) -> bool + Send + Sync + Copy + 'static,
    {
        elementwise(
            op,
            token_of(op),
            &[self.operand(), other.operand()],
            move |i, p, s| binary_map(i, p, s, f),
        )
    }

    fn compare_scalar<F>(&self, op: &'static str, rhs: T, f: F) -> Array<bool>
    where
        F: Fn(T, T) -> bool + Send + Sync + 'static,
    {
        self.map_with_token(op, token_of(&(op, rhs)), move |x| f(x, rhs))
    }

    /// `self > other` elementwise.
    pub fn gt(&self, other: &Array<T>) -> Result<Array<bool>> {
        self.compare_with(other, "gt", |a, b| a > b)
    }
    /// `self >= other` elementwise.
    pub fn ge(&self, other: &Array<T>) -> Result<Array<bool>> {
        self.compare_with(other, "ge", |a, b| a >= b)
    }
    /// `self < other` elementwise.
    pub fn lt(&self, other: &Array<T>) -> Result<Array<bool>> {
        self.compare_with(other, "lt", |a, b| a < b)
    }
    /// `self <= other` elementwise.
    pub fn le(&self, other: &Array<T>) -> Result<Array<bool>> {
        self.compare_with(other, "le", |a, b| a <= b)
    }
    /// `self == other` elementwise.
    pub fn eq_elem(&self, other: &Array<T>) -> Result<Array<bool>> {
        self.compare_with(other, "eq", |a, b| a == b)
    }
    /// `self != other` elementwise.
    pub fn ne_elem(&self, other: &Array<T>) -> Result<Array<bool>> {
        self.compare_with(other, "ne", |a, b| a != b)
    }
    /// `self > v` elementwise.
    pub fn gt_scalar(&self, v: T) -> Array<bool> {
        self.compare_scalar("gt", v, |a, b| a > b)
    }
    /// `self >= v` elementwise.
    pub fn ge_scalar(&self, v: T) -> Array<bool> {
        self.compare_scalar("ge", v, |a, b| a >= b)
    }
    /// `self < v` elementwise.
    pub fn lt_scalar(&self, v: T) -> Array<bool> {
        self.compare_scalar("lt", v, |a, b| a < b)
    }
    /// `self <= v` elementwise.
    pub fn le_scalar(&self, v: T) -> Array<bool> {
        self.compare_scalar("le", v, |a, b| a <= b)
    }
    /// `self == v` elementwise.
    pub fn eq_scalar(&self, v: T) -> Array<bool> {
        self.compare_scalar("eq", v, |a, b| a == b)
    }
    /// `self != v` elementwise.
    pub fn ne_scalar(&self, v: T) -> Array<bool> {
        self.compare_scalar("ne", v, |a, b| a != b)
    }
    /// Elementwise maximum (NaN propagates, like numpy's `maximum`).
    pub fn maximum(&self, other: &Array<T>) -> Result<Array<T>> {
        self.zip_with(
            other,
            "maximum",
            |a, b| if is_nan(&a) || a > b { a } else { b },
        )
    }
    /// Elementwise minimum (NaN propagates, like numpy's `minimum`).
    pub fn minimum(&self, other: &Array<T>) -> Result<Array<T>> {
        self.zip_with(
            other,
            "minimum",
            |a, b| if is_nan(&a) || a < b { a } else { b },
        )
    }
}

impl<T: Number> Array<T> {
    /// `self + other`, or an error if the shapes do not broadcast.
    pub fn try_add(&self, other: &Array<T>) -> Result<Array<T>> {
        self.sum_or_difference(other, false)
    }
    /// `self - other`, or an error if the shapes do not broadcast.
    pub fn try_sub(&self, other: &Array<T>) -> Result<Array<T>> {
        self.sum_or_difference(other, true)
    }
    /// `self * other`, or an error if the shapes do not broadcast.
    pub fn try_mul(&self, other: &Array<T>) -> Result<Array<T>> {
        self.zip_with(other, "mul", |a, b| a * b)
    }
    /// `self / other`, or an error if the shapes do not broadcast. Integer division by zero
    /// fails the task (numpy gives 0 with a warning; we refuse to guess).
    pub fn try_div(&self, other: &Array<T>) -> Result<Array<T>> {
        self.zip_with(other, "div", |a, b| a / b)
    }
    /// `self % other`, or an error if the shapes do not broadcast.
    pub fn try_rem(&self, other: &Array<T>) -> Result<Array<T>> {
        self.zip_with(other, "rem", |a, b| a % b)
    }

    fn scalar_op<F>(&self, op: &'static str, v: T, f: F) -> Array<T>
    where
        F: Fn(T, T) -> T + Send + Sync + 'static,
    {
        self.map_same_with_token(op, token_of(&(op, v)), move |x| f(x, v))
    }

    fn scalar_op_left<F>(&self, op: &'static str, v: T, f: F) -> Array<T>
    where
        F: Fn(T, T) -> T + Send + Sync + 'static,
    {
        self.map_same_with_token(op, token_of(&(op, "left", v)), move |x| f(v, x))
    }
}

impl<T: Float> Array<T> {
    fn unary<F>(&self, op: &'static str, f: F) -> Array<T>
    where
        F: Fn(T) -> T + Send + Sync + 'static,
    {
        self.map_same_with_token(op, token_of(op), f)
    }
    /// Square root.
    pub fn sqrt(&self) -> Array<T> {
        self.unary("sqrt", T::sqrt)
    }
    /// `e^x`.
    pub fn exp(&self) -> Array<T> {
        self.unary("exp", T::exp)
    }
    /// Natural logarithm (numpy's `log`).
    pub fn log(&self) -> Array<T> {
        self.unary("log", T::ln)
    }
    /// Base-10 logarithm.
    pub fn log10(&self) -> Array<T> {
        self.unary("log10", T::log10)
    }
    /// Absolute value.
    pub fn abs(&self) -> Array<T> {
        self.unary("abs", T::abs)
    }
    /// Sine.
    pub fn sin(&self) -> Array<T> {
        self.unary("sin", T::sin)
    }
    /// Cosine.
    pub fn cos(&self) -> Array<T> {
        self.unary("cos", T::cos)
    }
    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Array<T> {
        self.unary("tanh", T::tanh)
    }
    /// Rounds down.
    pub fn floor(&self) -> Array<T> {
        self.unary("floor", T::floor)
    }
    /// Rounds up.
    pub fn ceil(&self) -> Array<T> {
        self.unary("ceil", T::ceil)
    }
    /// Rounds half away from zero.
    pub fn round(&self) -> Array<T> {
        self.unary("round", T::round)
    }
    /// `x^p` for a scalar power.
    pub fn powf(&self, p: T) -> Array<T> {
        self.map_same_with_token("pow", token_of(&p), move |x| x.powf(p))
    }
    /// `x^p` elementwise over two arrays.
    pub fn pow(&self, p: &Array<T>) -> Result<Array<T>> {
        self.zip_with(p, "pow", T::powf)
    }
    /// Whether each element is NaN.
    pub fn isnan(&self) -> Array<bool> {
        self.map_with_token("isnan", token_of("isnan"), |x: T| x.is_nan())
    }
    /// Whether each element is finite.
    pub fn isfinite(&self) -> Array<bool> {
        self.map_with_token("isfinite", token_of("isfinite"), |x: T| x.is_finite())
    }
}

impl Array<bool> {
    /// Elementwise logical and.
    pub fn and(&self, other: &Array<bool>) -> Result<Array<bool>> {
        self.zip_with(other, "and", |a, b| a & b)
    }
    /// Elementwise logical or.
    pub fn or(&self, other: &Array<bool>) -> Result<Array<bool>> {
        self.zip_with(other, "or", |a, b| a | b)
    }
    /// Elementwise logical not.
    pub fn not(&self) -> Array<bool> {
        self.map_same_with_token("not", token_of("not"), |a| !a)
    }
}

/// `cond ? a : b` elementwise, broadcasting all three (numpy's `where`).
///
/// ```
/// use chunkflow::array::{self, where_};
/// let x = array::arange(0i64, 6, 1, 4).unwrap();
/// let big = x.gt_scalar(2);
/// let y = where_(&big, &x, &array::zeros(&[6], 3).unwrap()).unwrap();
/// assert_eq!(y.compute().unwrap().as_slice().unwrap(), &[0, 0, 0, 3, 4, 5]);
/// ```
pub fn where_<T: Element>(cond: &Array<bool>, a: &Array<T>, b: &Array<T>) -> Result<Array<T>> {
    elementwise(
        "where",
        token_of("where"),
        &[cond.operand(), a.operand(), b.operand()],
        |inputs, perms, shape| {
            let mut it = inputs.into_iter();
            let c = Block::<bool>::take(&mut it, perms, 0)?;
            let x = Block::<T>::take(&mut it, perms, 1)?;
            let y = Block::<T>::take(&mut it, perms, 2)?;
            let (cv, xv, yv) = (c.view(), x.view(), y.view());
            Ok(Zip::from(&broadcast_view(&cv, shape)?)
                .and(&broadcast_view(&xv, shape)?)
                .and(&broadcast_view(&yv, shape)?)
                .map_collect(|&c, &x, &y| if c { x } else { y }))
        },
    )
}

macro_rules! binary_operator {
    ($trait:ident, $method:ident, $try:ident, $op:tt) => {
        impl<T: Number> $trait<&Array<T>> for &Array<T> {
            type Output = Array<T>;
            /// # Panics
            /// If the shapes cannot be broadcast together (use the `try_*` method for an error).
            fn $method(self, rhs: &Array<T>) -> Array<T> {
                self.$try(rhs).unwrap_or_else(|e| panic!("{e}"))
            }
        }
        impl<T: Number> $trait<Array<T>> for Array<T> {
            type Output = Array<T>;
            fn $method(self, rhs: Array<T>) -> Array<T> {
                &self $op &rhs
            }
        }
        impl<T: Number> $trait<&Array<T>> for Array<T> {
            type Output = Array<T>;
            fn $method(self, rhs: &Array<T>) -> Array<T> {
                &self $op rhs
            }
        }
        impl<T: Number> $trait<Array<T>> for &Array<T> {
            type Output = Array<T>;
            fn $method(self, rhs: Array<T>) -> Array<T> {
                self $op &rhs
            }
        }
        impl<T: Number> $trait<T> for &Array<T> {
            type Output = Array<T>;
            fn $method(self, rhs: T) -> Array<T> {
                self.scalar_op(stringify!($method), rhs, |a, b| a $op b)
            }
        }
        impl<T: Number> $trait<T> for Array<T> {
            type Output = Array<T>;
            fn $method(self, rhs: T) -> Array<T> {
                &self $op rhs
            }
        }
    };
}
binary_operator!(Add, add, try_add, +);
binary_operator!(Sub, sub, try_sub, -);
binary_operator!(Mul, mul, try_mul, *);
binary_operator!(Div, div, try_div, /);
binary_operator!(Rem, rem, try_rem, %);

macro_rules! scalar_left {
    ($($t:ty),*) => {$(
        impl Add<&Array<$t>> for $t {
            type Output = Array<$t>;
            fn add(self, rhs: &Array<$t>) -> Array<$t> { rhs.scalar_op_left("add", self, |a, b| a + b) }
        }
        impl Sub<&Array<$t>> for $t {
            type Output = Array<$t>;
            fn sub(self, rhs: &Array<$t>) -> Array<$t> { rhs.scalar_op_left("sub", self, |a, b| a - b) }
        }
        impl Mul<&Array<$t>> for $t {
            type Output = Array<$t>;
            fn mul(self, rhs: &Array<$t>) -> Array<$t> { rhs.scalar_op_left("mul", self, |a, b| a * b) }
        }
        impl Div<&Array<$t>> for $t {
            type Output = Array<$t>;
            fn div(self, rhs: &Array<$t>) -> Array<$t> { rhs.scalar_op_left("div", self, |a, b| a / b) }
        }
    )*};
}
scalar_left!(f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);

impl<T: Number + Neg<Output = T>> Neg for &Array<T> {
    type Output = Array<T>;
    fn neg(self) -> Array<T> {
        self.map_same_with_token("neg", token_of("neg"), |x| -x)
    }
}

impl<T: Number + Neg<Output = T>> Neg for Array<T> {
    type Output = Array<T>;
    fn neg(self) -> Array<T> {
        -&self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::{from_ndarray, random};
    use crate::collection::ComputeOptions;
    use crate::scheduler::Sequential;

    fn executors() -> Vec<ComputeOptions> {
        vec![
            ComputeOptions::default().executor(Sequential),
            ComputeOptions::default().threads(2),
            ComputeOptions::default().threads(3).fuse(false),
        ]
    }

    fn data(shape: &[usize]) -> ArrayD<f64> {
        let mut i = 0.0;
        ArrayD::from_shape_fn(IxDyn(shape), |_| {
            i += 1.0;
            (i * 0.37f64).sin()
        })
    }

    #[test]
    fn a_transpose_operand_reads_its_source_blocks_as_views() {
        // 200 × 200 in 100 × 100 blocks: big enough for the tiled walk.
        let a = data(&[200, 200]);
        let x = from_ndarray(a.clone(), [100, 100]).unwrap();
        let y = &x.t() - &x;
        // 4 source blocks + 4 subtractions: the transpose tasks are not in the graph.
        assert_eq!(y.num_tasks().unwrap(), 8);
        let z = &x - &x.t();
        let w = (&x.t() * 2.0) + &x;
        for opts in executors() {
            assert_eq!(y.compute_with(&opts).unwrap(), &a.t() - &a);
            assert_eq!(z.compute_with(&opts).unwrap(), &a - &a.t());
            assert_eq!(w.compute_with(&opts).unwrap(), a.t().mapv(|v| v * 2.0) + &a);
        }
    }

    #[test]
    fn transposes_compose_and_rechunk_when_chunks_differ() {
        let a = data(&[30, 30]);
        // Irregular chunks: x.T's chunks differ from x's, so both are rechunked.
        let x = from_ndarray(a.clone(), [7, 11]).unwrap();
        let y = &x.t() - &x;
        let tt = &x.t().t() - &x;
        let b = data(&[4, 5, 6]);
        let v = from_ndarray(b.clone(), [2, 3, 4]).unwrap();
        let p = v
            .transpose(&[2, 0, 1])
            .unwrap()
            .transpose(&[1, 0, 2])
            .unwrap();
        let q = p.try_sub(&(&p * 3.0)).unwrap();
        let bp = b
            .view()
            .permuted_axes(vec![2, 0, 1])
            .permuted_axes(vec![1, 0, 2]);
        for opts in executors() {
            assert_eq!(y.compute_with(&opts).unwrap(), &a.t() - &a);
            assert!(tt.compute_with(&opts).unwrap().iter().all(|&v| v == 0.0));
            assert_eq!(q.compute_with(&opts).unwrap(), &bp - &bp.mapv(|v| v * 3.0));
        }
    }

    #[test]
    fn x_plus_x_t_mean_axis_0_matches_ndarray() {
        let x = random::random(&[300, 300], [100, 100], 4).unwrap();
        let a = x.compute().unwrap();
        let want = (&a + &a.t()).mean_axis(ndarray::Axis(0)).unwrap();
        for opts in executors() {
            let got = (&x + &x.t())
                .mean(&[0])
                .unwrap()
                .compute_with(&opts)
                .unwrap();
            Zip::from(&got)
                .and(&want)
                .for_each(|g, w| assert!((g - w).abs() < 1e-12, "{g} vs {w}"));
        }
    }
}
