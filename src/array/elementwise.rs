//! Element-wise operations: numpy broadcasting with chunk unification, arithmetic operators,
//! comparisons, `where`, and unary maths.
//!
//! Operands of different chunkings are first rechunked to the common refinement of their chunk
//! boundaries (dask's `unify_chunks`); an axis of length 1 broadcasts against any length, and
//! missing leading axes broadcast as in numpy. Each output block is one task reading the
//! matching block of every operand. A chain of element-wise steps on one array is a linear
//! chain per chunk, which the graph optimizer fuses into one task per chunk (blockwise fusion);
//! a step that is its input chunk's last consumer works in place.
//!
//! Operators (`&a + &b`) panic, like ndarray's, when shapes cannot be broadcast; the `try_*`
//! methods and [`where_`] return that as an error instead.

use std::ops::{Add, Div, Mul, Neg, Rem, Sub};
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn, Zip};

use super::chunks::{Chunks, common_refinement};
use super::core::{Array, op_token};
use super::dtype::{Element, Float, Number, is_nan};
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
}

impl<T: Element> Array<T> {
    pub(crate) fn operand(&self) -> Operand {
        Operand {
            name: self.name().into(),
            chunks: self.chunks().clone(),
            layer: self.layer().clone(),
            rechunk: rechunk_operand::<T>,
        }
    }
}

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
/// operand order) and the output block's shape.
pub(crate) fn elementwise<U, F>(
    op: &str,
    params: u64,
    operands: &[Operand],
    f: F,
) -> Result<Array<U>>
where
    U: Element,
    F: Fn(Inputs, &[usize]) -> Result<ArrayD<U>, BoxError> + Send + Sync + 'static,
{
    let b = broadcast(operands)?;
    let names: Vec<&str> = b.operands.iter().map(|o| &*o.name).collect();
    let name = key_name(op, op_token(op, &names, &params));
    let f = Arc::new(f);
    let layers = b.operands.iter().map(|o| o.layer.clone()).collect();
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
                    Key::chunk(o.name.clone(), &oi)
                })
                .collect();
            let shape = chunks.block_shape(idx);
            let f = f.clone();
            Task::call(key, deps, move |inputs| Ok(value(f(inputs, &shape)?)))
        },
    ))
}

/// A block: owned (this task was its last consumer) or shared.
enum Block<T> {
    Owned(ArrayD<T>),
    Shared(Value),
}

impl<T: Element> Block<T> {
    fn take(v: Value) -> Result<Self, BoxError> {
        match v.downcast::<ArrayD<T>>() {
            Ok(arc) => Ok(match Arc::try_unwrap(arc) {
                Ok(owned) => Block::Owned(owned),
                Err(shared) => Block::Shared(shared),
            }),
            Err(_) => Err(format!("input is not an array of {}", T::DTYPE).into()),
        }
    }

    fn view(&self) -> ndarray::ArrayViewD<'_, T> {
        match self {
            Block::Owned(a) => a.view(),
            Block::Shared(v) => v
                .downcast_ref::<ArrayD<T>>()
                .expect("checked in take")
                .view(),
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

/// `f(a, b)` elementwise over two broadcast operands of type `T`, in place in `a` when
/// possible.
fn binary_same<T: Element>(
    inputs: Inputs,
    shape: &[usize],
    f: fn(T, T) -> T,
) -> Result<ArrayD<T>, BoxError> {
    let mut it = inputs.into_iter();
    let a = Block::<T>::take(it.next().ok_or("missing input")?)?;
    let b = Block::<T>::take(it.next().ok_or("missing input")?)?;
    let bv = b.view();
    match a {
        Block::Owned(mut a) if a.shape() == shape => {
            Zip::from(&mut a)
                .and(&broadcast_view(&bv, shape)?)
                .for_each(|x, &y| *x = f(*x, y));
            Ok(a)
        }
        a => {
            let av = a.view();
            Ok(Zip::from(&broadcast_view(&av, shape)?)
                .and(&broadcast_view(&bv, shape)?)
                .map_collect(|&x, &y| f(x, y)))
        }
    }
}

/// `f(a, b)` elementwise into a new array of `U`.
fn binary_map<T: Element, U: Element>(
    inputs: Inputs,
    shape: &[usize],
    f: fn(T, T) -> U,
) -> Result<ArrayD<U>, BoxError> {
    let mut it = inputs.into_iter();
    let a = Block::<T>::take(it.next().ok_or("missing input")?)?;
    let b = Block::<T>::take(it.next().ok_or("missing input")?)?;
    let (av, bv) = (a.view(), b.view());
    Ok(Zip::from(&broadcast_view(&av, shape)?)
        .and(&broadcast_view(&bv, shape)?)
        .map_collect(|&x, &y| f(x, y)))
}

impl<T: Element> Array<T> {
    /// Combines two arrays elementwise with `f` (broadcasting, unifying chunks).
    pub fn zip_with(
        &self,
        other: &Array<T>,
        op: &'static str,
        f: fn(T, T) -> T,
    ) -> Result<Array<T>> {
        elementwise(
            op,
            token_of(op),
            &[self.operand(), other.operand()],
            move |i, s| binary_same(i, s, f),
        )
    }

    /// Compares two arrays elementwise with `f`, giving booleans.
    pub fn compare_with(
        &self,
        other: &Array<T>,
        op: &'static str,
        f: fn(T, T) -> bool,
    ) -> Result<Array<bool>> {
        elementwise(
            op,
            token_of(op),
            &[self.operand(), other.operand()],
            move |i, s| binary_map(i, s, f),
        )
    }

    fn compare_scalar(&self, op: &'static str, rhs: T, f: fn(T, T) -> bool) -> Array<bool> {
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
        self.zip_with(other, "add", |a, b| a + b)
    }
    /// `self - other`, or an error if the shapes do not broadcast.
    pub fn try_sub(&self, other: &Array<T>) -> Result<Array<T>> {
        self.zip_with(other, "sub", |a, b| a - b)
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

    fn scalar_op(&self, op: &'static str, v: T, f: fn(T, T) -> T) -> Array<T> {
        self.map_same_with_token(op, token_of(&(op, v)), move |x| f(x, v))
    }

    fn scalar_op_left(&self, op: &'static str, v: T, f: fn(T, T) -> T) -> Array<T> {
        self.map_same_with_token(op, token_of(&(op, "left", v)), move |x| f(v, x))
    }
}

impl<T: Float> Array<T> {
    fn unary(&self, op: &'static str, f: fn(T) -> T) -> Array<T> {
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
        |inputs, shape| {
            let mut it = inputs.into_iter();
            let c = Block::<bool>::take(it.next().ok_or("missing input")?)?;
            let x = Block::<T>::take(it.next().ok_or("missing input")?)?;
            let y = Block::<T>::take(it.next().ok_or("missing input")?)?;
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
