//! Blocked linear algebra: [`tensordot`], [`Array::dot`] and [`Array::matmul`] (dask.array's
//! `tensordot`/`dot`/`matmul`).
//!
//! All three are one engine, a *blocked contraction* of two operands `a` and `b`. Each axis of
//! an operand is one of: a **contracted** axis (paired with one of the other operand's and
//! summed over), a **free** axis (kept in the output), or, for `matmul` only, a **batch** axis
//! (shared by both operands, numpy-broadcast, kept in the output).
//!
//! # Blocking
//!
//! 1. **Unify.** Every contracted pair of axes, and every batch axis both operands carry, is
//!    rechunked to the common refinement of the two chunkings (in-graph [`Array::rechunk`]), so
//!    block `k` along a contracted axis of `a` covers the same elements as block `k` of `b`.
//!    Free axes keep their chunks.
//! 2. **Partial products.** For every output block, the blocks along the contracted axes are
//!    cut into groups of at most [`SPLIT_EVERY`] (8) consecutive blocks; one task per group
//!    multiplies each matching pair (block `c` of `a` by block `c` of `b`) and accumulates the
//!    products into one output-block buffer. Each pair is permuted and viewed as matrices
//!    `(M, K)` and `(K, N)` (copied only when its strides cannot be viewed that way) and
//!    multiplied with `matrixmultiply` for `f32`/`f64` (ndarray's `general_mat_mul`, `C += A
//!    B`) or a row-`axpy` loop for integers. Accumulating in the task instead of one task per
//!    pair saves a buffer and a pass per pair: the first level of the sum tree is fused into
//!    the products.
//! 3. **Tree sum.** The partial products of one output block are summed in a tree of fan-in
//!    at most `SPLIT_EVERY`, in place into the first partial (dask's `split_every`); the root
//!    is the output block. With at most `SPLIT_EVERY` blocks along the contracted axes the one
//!    partial product is the output block itself and there is no sum.
//!
//! With `n_out` output blocks and `n_k` blocks along the contracted axes (`s` =
//! `SPLIT_EVERY`) that is `n_out` tasks when `n_k <= s`, else `n_out * ceil(n_k / s)` partial
//! product tasks plus about `n_out * ceil(n_k / s) / (s - 1)` sum tasks, on top of the
//! rechunks the unification needs. A product task holds at most `s` blocks of `a`, `s` of `b`
//! (its inputs, shared with other tasks) and one output block; a sum task holds at most `s`
//! output-block-sized partials and allocates nothing. Memory per task is bounded by chunk
//! sizes, never by the array or the contracted length, and the depth-first static order keeps
//! only the pending partials of a few tree levels alive.
//!
//! # Invariants
//!
//! - Output axes: batch axes (matmul), then `a`'s free axes in order, then `b`'s free axes in
//!   order (numpy's `tensordot` order); output chunks are the operands' (unified) chunks on
//!   those axes.
//! - Arguments are checked when the graph is built: bad axes and mismatched lengths are
//!   [`Error::InvalidArgument`] naming the axes and lengths, never panics.
//! - The summation order is fixed by the graph, so every executor gives bit-identical results.
//! - Integer arithmetic is Rust's, as in the element-wise operators: overflow fails the task in
//!   debug builds and wraps in release builds (numpy wraps).
//!
//! # What it must not do
//!
//! It builds tasks over other arrays' blocks only: no reductions, transposes or slicing from
//! the other rooms, and never a whole operand in one task.

use std::sync::Arc;

use ndarray::{Array3, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, Axis, Dimension, IxDyn, Zip};

use super::chunks::{Chunks, common_refinement};
use super::core::{Array, block_ref, dedupe_layers, op_token};
use super::dtype::Number;
use crate::error::{BoxError, Error, Result};
use crate::graph::token::key_name;
use crate::graph::{Inputs, Key, Layer, Task, take_value, value};

/// The fan-in of the trees: the most block products one partial-product task accumulates,
/// and the most partials one sum task adds up.
const SPLIT_EVERY: usize = 8;

/// Tensor dot product over the given axes (numpy's and dask's `tensordot(a, b, axes=(axes_a,
/// axes_b))`): axis `axes_a[i]` of `a` is contracted with axis `axes_b[i]` of `b`. The output
/// has `a`'s remaining axes followed by `b`'s remaining axes, each keeping its chunks.
///
/// Blocking: contracted axes may be chunked differently in `a` and `b`; both are rechunked to
/// the common refinement of their boundaries first. Then, per output block, each group of at
/// most 8 blocks along the contracted axes is one task that multiplies the matching block
/// pairs (as matrices, with `matrixmultiply` for floats) and accumulates them; these partial
/// products are summed in a tree of fan-in 8. Every task holds a bounded number of chunks,
/// whatever the array sizes; the summation order is fixed, so all executors give identical
/// results.
///
/// ```
/// use chunkflow::array::{self, tensordot};
/// use ndarray::{ArrayD, IxDyn};
///
/// // a: (2, 3, 4), b: (4, 3, 5); contract a's axes (1, 2) with b's (1, 0).
/// let a = ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |i| (i[0] + 2 * i[1] + i[2]) as i64);
/// let b = ArrayD::from_shape_fn(IxDyn(&[4, 3, 5]), |i| (i[0] * i[1]) as i64 - i[2] as i64);
/// let x = array::from_ndarray(a.clone(), [1, 2, 3]).unwrap();
/// let y = array::from_ndarray(b.clone(), [4, 1, 2]).unwrap();
/// let z = tensordot(&x, &y, &[1, 2], &[1, 0]).unwrap();
/// assert_eq!(z.shape(), &[2, 5]);
/// let got = z.compute().unwrap();
/// for i in 0..2 {
///     for l in 0..5 {
///         let mut want = 0;
///         for j in 0..3 {
///             for k in 0..4 {
///                 want += a[[i, j, k]] * b[[k, j, l]];
///             }
///         }
///         assert_eq!(got[[i, l]], want);
///     }
/// }
///
/// // 20 blocks along the contracted axis: 3 partial products (7 + 7 + 6 block pairs) and
/// // one sum, on top of the 20 + 20 input chunks.
/// let u = array::ones::<f64>(&[1, 20], 1).unwrap();
/// let v = array::ones::<f64>(&[20, 1], 1).unwrap();
/// let w = tensordot(&u, &v, &[1], &[0]).unwrap();
/// assert_eq!(w.num_tasks().unwrap(), 20 + 20 + 3 + 1);
/// assert_eq!(w.compute().unwrap()[[0, 0]], 20.0);
///
/// // Lengths must agree: a clear error, not a panic.
/// let err = tensordot(&x, &y, &[1], &[0]).unwrap_err();
/// assert!(err.to_string().contains("length 3"), "{err}");
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] when `axes_a` and `axes_b` differ in length, an axis is out of
/// range or listed twice, or a contracted pair has different lengths.
pub fn tensordot<T: Number>(
    a: &Array<T>,
    b: &Array<T>,
    axes_a: &[usize],
    axes_b: &[usize],
) -> Result<Array<T>> {
    let spec = tensordot_spec("tensordot", a.shape(), b.shape(), axes_a, axes_b)?;
    contract("tensordot", a, b, &spec)
}

impl<T: Number> Array<T> {
    /// Dot product with numpy's `dot` semantics:
    ///
    /// - 1-D · 1-D: the inner product, a 0-d array;
    /// - 2-D · 2-D: the matrix product;
    /// - 2-D · 1-D and 1-D · 2-D: a matrix-vector product, 1-D;
    /// - N-D · M-D: the sum over `self`'s last axis and `other`'s second-to-last (last when
    ///   1-D), as [`tensordot`];
    /// - a 0-d operand multiplies the other elementwise.
    ///
    /// ```
    /// use chunkflow::array;
    /// use ndarray::{ArrayD, IxDyn};
    ///
    /// let m = ArrayD::from_shape_fn(IxDyn(&[4, 3]), |i| (i[0] * 3 + i[1]) as f64);
    /// let v = ArrayD::from_shape_fn(IxDyn(&[3]), |i| i[0] as f64 + 1.0);
    /// let x = array::from_ndarray(m.clone(), [2, 2]).unwrap();
    /// let y = array::from_ndarray(v.clone(), [3]).unwrap();
    ///
    /// let mv = x.dot(&y).unwrap(); // (4, 3) · (3,) -> (4,)
    /// let want = m.into_dimensionality::<ndarray::Ix2>().unwrap()
    ///     .dot(&v.clone().into_dimensionality::<ndarray::Ix1>().unwrap());
    /// assert_eq!(mv.compute().unwrap().into_dimensionality::<ndarray::Ix1>().unwrap(), want);
    ///
    /// let inner = y.dot(&y).unwrap(); // (3,) · (3,) -> ()
    /// assert_eq!(inner.shape(), &[] as &[usize]);
    /// assert_eq!(inner.compute().unwrap()[[]], 1.0 + 4.0 + 9.0);
    ///
    /// assert!(y.dot(&x).is_err()); // (3,) · (4, 3): 3 != 4
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the summed axes have different lengths.
    pub fn dot(&self, other: &Array<T>) -> Result<Array<T>> {
        let (an, bn) = (self.ndim(), other.ndim());
        let (axes_a, axes_b): (Vec<usize>, Vec<usize>) = if an == 0 || bn == 0 {
            (vec![], vec![])
        } else {
            (vec![an - 1], vec![bn.saturating_sub(2)])
        };
        let spec = tensordot_spec("dot", self.shape(), other.shape(), &axes_a, &axes_b)?;
        contract("dot", self, other, &spec)
    }

    /// Matrix product with numpy's `matmul` (`@`) semantics: for 1-D and 2-D operands the same
    /// as [`Array::dot`]; operands with more than two axes are stacks of matrices in their last
    /// two axes, and the leading (batch) axes broadcast against each other as in numpy. A 1-D
    /// operand is a vector (its axis is summed over and does not appear in the output). 0-d
    /// operands are an error, as in numpy.
    ///
    /// ```
    /// use chunkflow::array;
    /// use ndarray::{ArrayD, IxDyn};
    ///
    /// // A stack of 3 matrices (2 x 4) times one matrix (4 x 5), broadcast over the stack.
    /// let a = ArrayD::from_shape_fn(IxDyn(&[3, 2, 4]), |i| (i[0] + i[1] * i[2]) as i32);
    /// let b = ArrayD::from_shape_fn(IxDyn(&[4, 5]), |i| i[0] as i32 - i[1] as i32);
    /// let x = array::from_ndarray(a.clone(), [2, 1, 3]).unwrap();
    /// let y = array::from_ndarray(b.clone(), [2, 5]).unwrap();
    /// let z = x.matmul(&y).unwrap();
    /// assert_eq!(z.shape(), &[3, 2, 5]);
    /// let got = z.compute().unwrap();
    /// let b2 = b.into_dimensionality::<ndarray::Ix2>().unwrap();
    /// for s in 0..3 {
    ///     let a2 = a.index_axis(ndarray::Axis(0), s).into_dimensionality::<ndarray::Ix2>().unwrap();
    ///     assert_eq!(got.index_axis(ndarray::Axis(0), s), a2.dot(&b2).into_dyn());
    /// }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a 0-d operand, summed axes of different lengths, or batch
    /// axes that do not broadcast.
    pub fn matmul(&self, other: &Array<T>) -> Result<Array<T>> {
        let spec = matmul_spec(self.shape(), other.shape())?;
        contract("matmul", self, other, &spec)
    }
}

// ---------------------------------------------------------------------------------------------
// What a contraction computes

/// How the axes of two operands meet. The output has `batch.len()` batch axes, then
/// `a_free`, then `b_free`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Spec {
    /// Per output batch axis: its length, and the axis of `a` and of `b` on it (`None` where an
    /// operand lacks it and broadcasts).
    batch: Vec<(usize, Option<usize>, Option<usize>)>,
    a_free: Vec<usize>,
    b_free: Vec<usize>,
    /// Contracted pairs: `a_con[i]` with `b_con[i]`.
    a_con: Vec<usize>,
    b_con: Vec<usize>,
}

fn invalid(msg: String) -> Error {
    Error::InvalidArgument(msg)
}

/// Checks `axes` against an operand of `ndim` dimensions: in range, none repeated.
fn check_axes(op: &str, operand: &str, ndim: usize, axes: &[usize]) -> Result<()> {
    for (i, &axis) in axes.iter().enumerate() {
        if axis >= ndim {
            return Err(invalid(format!(
                "{op}: axis {axis} of {operand} is out of range ({operand} has {ndim} \
                 dimension{})",
                if ndim == 1 { "" } else { "s" }
            )));
        }
        if axes[..i].contains(&axis) {
            return Err(invalid(format!(
                "{op}: axis {axis} of {operand} is listed twice; each axis can be contracted once"
            )));
        }
    }
    Ok(())
}

fn tensordot_spec(
    op: &str,
    a_shape: &[usize],
    b_shape: &[usize],
    axes_a: &[usize],
    axes_b: &[usize],
) -> Result<Spec> {
    if axes_a.len() != axes_b.len() {
        return Err(invalid(format!(
            "{op}: axes_a lists {} axes but axes_b lists {}; they pair up one to one",
            axes_a.len(),
            axes_b.len()
        )));
    }
    check_axes(op, "a", a_shape.len(), axes_a)?;
    check_axes(op, "b", b_shape.len(), axes_b)?;
    for (&i, &j) in axes_a.iter().zip(axes_b) {
        if a_shape[i] != b_shape[j] {
            return Err(invalid(format!(
                "{op}: shapes {a_shape:?} and {b_shape:?} are not aligned: axis {i} of a has \
                 length {} but axis {j} of b has length {}",
                a_shape[i], b_shape[j]
            )));
        }
    }
    let free = |ndim: usize, con: &[usize]| (0..ndim).filter(|x| !con.contains(x)).collect();
    Ok(Spec {
        batch: vec![],
        a_free: free(a_shape.len(), axes_a),
        b_free: free(b_shape.len(), axes_b),
        a_con: axes_a.to_vec(),
        b_con: axes_b.to_vec(),
    })
}

fn matmul_spec(a_shape: &[usize], b_shape: &[usize]) -> Result<Spec> {
    let (an, bn) = (a_shape.len(), b_shape.len());
    for (name, n) in [("a", an), ("b", bn)] {
        if n == 0 {
            return Err(invalid(format!(
                "matmul: operand {name} is 0-d; matmul needs at least one dimension (multiply \
                 by a scalar with `*` or `dot` instead)"
            )));
        }
    }
    // a: (batch..., n?, k); b: (batch..., k, m?).
    let a_con = an - 1;
    let b_con = bn.saturating_sub(2);
    if a_shape[a_con] != b_shape[b_con] {
        return Err(invalid(format!(
            "matmul: shapes {a_shape:?} and {b_shape:?} are not aligned: the last axis of a has \
             length {} but the {} axis of b has length {}",
            a_shape[a_con],
            if bn == 1 { "only" } else { "second-to-last" },
            b_shape[b_con]
        )));
    }
    let (a_nb, b_nb) = (an.saturating_sub(2), bn.saturating_sub(2));
    let nb = a_nb.max(b_nb);
    let mut batch = Vec::with_capacity(nb);
    for k in 0..nb {
        let ax = (k + a_nb).checked_sub(nb);
        let bx = (k + b_nb).checked_sub(nb);
        let la = ax.map_or(1, |x| a_shape[x]);
        let lb = bx.map_or(1, |x| b_shape[x]);
        if la != lb && la != 1 && lb != 1 {
            return Err(invalid(format!(
                "matmul: the batch axes of shapes {a_shape:?} and {b_shape:?} do not broadcast \
                 ({:?} against {:?}: lengths {la} and {lb} on batch axis {k})",
                &a_shape[..a_nb],
                &b_shape[..b_nb]
            )));
        }
        batch.push((if la == 1 { lb } else { la }, ax, bx));
    }
    Ok(Spec {
        batch,
        a_free: if an >= 2 { vec![an - 2] } else { vec![] },
        b_free: if bn >= 2 { vec![bn - 1] } else { vec![] },
        a_con: vec![a_con],
        b_con: vec![b_con],
    })
}

// ---------------------------------------------------------------------------------------------
// Building the graph

/// `a` and `b` rechunked so that contracted pairs and shared batch axes have equal chunks,
/// with the output's chunks and the chunks along the contracted axes.
struct Unified<T> {
    a: Array<T>,
    b: Array<T>,
    out: Chunks,
    contracted: Chunks,
}

fn refine_axis(x: &[usize], y: &[usize]) -> Result<Vec<usize>> {
    let x = Chunks::new(vec![x.to_vec()])?;
    let y = Chunks::new(vec![y.to_vec()])?;
    Ok(common_refinement(&x, &y)?.axis(0).to_vec())
}

fn unify<T: Number>(a: &Array<T>, b: &Array<T>, spec: &Spec) -> Result<Unified<T>> {
    let mut want_a = a.chunks().axes().to_vec();
    let mut want_b = b.chunks().axes().to_vec();
    let mut out_axes: Vec<Vec<usize>> = Vec::new();
    for &(len, ax, bx) in &spec.batch {
        // An operand follows the output on this axis unless it broadcasts (lacks it, or has
        // length 1 against a longer output).
        let ax = ax.filter(|&x| a.shape()[x] == len);
        let bx = bx.filter(|&x| b.shape()[x] == len);
        let axis = match (ax, bx) {
            (Some(x), Some(y)) => {
                let r = refine_axis(&want_a[x], &want_b[y])?;
                want_a[x] = r.clone();
                want_b[y] = r.clone();
                r
            }
            (Some(x), None) => want_a[x].clone(),
            (None, Some(y)) => want_b[y].clone(),
            (None, None) => vec![len],
        };
        out_axes.push(axis);
    }
    let mut con_axes = Vec::with_capacity(spec.a_con.len());
    for (&x, &y) in spec.a_con.iter().zip(&spec.b_con) {
        let r = refine_axis(&want_a[x], &want_b[y])?;
        want_a[x] = r.clone();
        want_b[y] = r.clone();
        con_axes.push(r);
    }
    out_axes.extend(spec.a_free.iter().map(|&x| want_a[x].clone()));
    out_axes.extend(spec.b_free.iter().map(|&y| want_b[y].clone()));
    let a = if want_a.as_slice() == a.chunks().axes() {
        a.clone()
    } else {
        a.rechunk(Chunks::new(want_a)?)?
    };
    let b = if want_b.as_slice() == b.chunks().axes() {
        b.clone()
    } else {
        b.rechunk(Chunks::new(want_b)?)?
    };
    Ok(Unified {
        a,
        b,
        out: Chunks::new(out_axes)?,
        contracted: Chunks::new(con_axes)?,
    })
}

/// What computes one output block: one partial product, or the sum of several.
enum Root {
    Partial(Vec<(Key, Key)>),
    Sum(Vec<Key>),
}

/// Builds the blocked contraction `op` of `a` and `b` (see the module documentation).
fn contract<T: Number>(op: &str, a: &Array<T>, b: &Array<T>, spec: &Spec) -> Result<Array<T>> {
    let Unified {
        a,
        b,
        out,
        contracted,
    } = unify(a, b, spec)?;
    let token = op_token(
        op,
        &[a.name(), b.name()],
        &(
            spec.batch.clone(),
            spec.a_free.clone(),
            spec.b_free.clone(),
            spec.a_con.clone(),
            spec.b_con.clone(),
            SPLIT_EVERY,
        ),
    );
    let partial_name: Arc<str> = key_name(&format!("{op}-partial"), token).into();
    let sum_name: Arc<str> = key_name(&format!("{op}-sum"), token).into();
    let kernel = Arc::new(Kernel::new(spec, a.ndim(), b.ndim()));
    let con_blocks: Vec<Vec<usize>> = contracted.blocks().collect();
    let itemsize = T::DTYPE.itemsize() as u64;
    let (nb, na) = (spec.batch.len(), spec.a_free.len());
    // The operands' block keys for output block `idx` and contracted block `c`.
    let operand_keys = |idx: &[usize], c: &[usize]| {
        let mut ai = vec![0; a.ndim()];
        let mut bi = vec![0; b.ndim()];
        for (k, &(len, ax, bx)) in spec.batch.iter().enumerate() {
            // A broadcast operand (length 1 against a longer output) stays on block 0.
            if let Some(x) = ax.filter(|&x| a.shape()[x] == len) {
                ai[x] = idx[k];
            }
            if let Some(y) = bx.filter(|&y| b.shape()[y] == len) {
                bi[y] = idx[k];
            }
        }
        for (k, &x) in spec.a_free.iter().enumerate() {
            ai[x] = idx[nb + k];
        }
        for (k, &y) in spec.b_free.iter().enumerate() {
            bi[y] = idx[nb + na + k];
        }
        for (k, (&x, &y)) in spec.a_con.iter().zip(&spec.b_con).enumerate() {
            ai[x] = c[k];
            bi[y] = c[k];
        }
        (a.block_key(&ai), b.block_key(&bi))
    };

    let mut partials: Vec<Task> = Vec::new();
    let mut sums: Vec<Task> = Vec::new();
    let mut roots: Vec<Root> = Vec::with_capacity(out.num_chunks());
    for idx in out.blocks() {
        let pairs: Vec<(Key, Key)> = con_blocks.iter().map(|c| operand_keys(&idx, c)).collect();
        if pairs.len() <= SPLIT_EVERY {
            roots.push(Root::Partial(pairs));
            continue;
        }
        let shape = out.block_shape(&idx);
        let nbytes = shape.iter().product::<usize>() as u64 * itemsize;
        let sub = |tail: &[usize]| [idx.as_slice(), tail].concat();
        let mut level: Vec<Key> = balanced_groups(pairs, SPLIT_EVERY)
            .into_iter()
            .enumerate()
            .map(|(g, group)| {
                let key = Key::chunk(partial_name.clone(), &sub(&[g]));
                partials.push(
                    partial_task::<T>(key.clone(), group, kernel.clone(), shape.clone())
                        .with_nbytes(nbytes),
                );
                key
            })
            .collect();
        let mut depth = 0;
        while level.len() > SPLIT_EVERY {
            level = balanced_groups(level, SPLIT_EVERY)
                .into_iter()
                .enumerate()
                .map(|(g, group)| {
                    let key = Key::chunk(sum_name.clone(), &sub(&[depth, g]));
                    sums.push(sum_task::<T>(key.clone(), group).with_nbytes(nbytes));
                    key
                })
                .collect();
            depth += 1;
        }
        roots.push(Root::Sum(level));
    }

    let operands = dedupe_layers(vec![a.layer().clone(), b.layer().clone()]);
    let mut deps = Vec::new();
    if !partials.is_empty() {
        let partial_layer = Arc::new(Layer::new(partial_name, partials, operands.clone()));
        if !sums.is_empty() {
            deps.push(Arc::new(Layer::new(
                sum_name,
                sums,
                vec![partial_layer.clone()],
            )));
        }
        deps.push(partial_layer);
    }
    deps.extend(operands);
    let mut roots = roots.into_iter();
    Ok(Array::from_block_tasks(
        key_name(op, token),
        out.clone(),
        deps,
        |idx, key| match roots.next().expect("one root per output block, in C order") {
            Root::Partial(pairs) => {
                partial_task::<T>(key, pairs, kernel.clone(), out.block_shape(idx))
            }
            Root::Sum(parts) => sum_task::<T>(key, parts),
        },
    ))
}

/// Splits `items` into `ceil(len / most)` groups whose sizes differ by at most one.
fn balanced_groups<K>(items: Vec<K>, most: usize) -> Vec<Vec<K>> {
    let n = items.len();
    let groups = n.div_ceil(most);
    let mut out = Vec::with_capacity(groups);
    let mut it = items.into_iter();
    for g in 0..groups {
        let size = n / groups + usize::from(g < n % groups);
        out.push(it.by_ref().take(size).collect());
    }
    out
}

/// `Σ a_i · b_i` over pairs of blocks, as one block of the output.
fn partial_task<T: Number>(
    key: Key,
    pairs: Vec<(Key, Key)>,
    kernel: Arc<Kernel>,
    out_shape: Vec<usize>,
) -> Task {
    let deps = pairs.into_iter().flat_map(|(a, b)| [a, b]);
    Task::call(key, deps, move |inputs| {
        Ok(value(kernel.run::<T>(&inputs, &out_shape)?))
    })
}

fn sum_task<T: Number>(key: Key, parts: Vec<Key>) -> Task {
    Task::call(key, parts, |inputs| {
        let not_array =
            || -> BoxError { format!("a partial product is not an array of {}", T::DTYPE).into() };
        let mut it = inputs.into_iter();
        let first = it.next().ok_or("a sum of partial products has no inputs")?;
        // Partials have one consumer, so this moves rather than copies.
        let mut acc = take_value::<ArrayD<T>>(first).map_err(|_| not_array())?;
        for v in it {
            let part = v.downcast_ref::<ArrayD<T>>().ok_or_else(not_array)?;
            if part.shape() != acc.shape() {
                return Err(format!(
                    "partial products have shapes {:?} and {:?}",
                    acc.shape(),
                    part.shape()
                )
                .into());
            }
            Zip::from(&mut acc).and(part).for_each(|s, &p| *s = *s + p);
        }
        Ok(value(acc))
    })
}

// ---------------------------------------------------------------------------------------------
// The block kernel

/// How to lay one operand's block out as `(batch..., rows..., cols...)`.
#[derive(Debug)]
struct Layout {
    /// The block's present axes in the order wanted (batch axes it has, then the rest).
    perm: Vec<usize>,
    /// Output batch positions the operand lacks (a length-1 axis is inserted there).
    missing: Vec<usize>,
    /// How many of the non-batch axes form the matrix rows (the rest are the columns).
    nrows: usize,
}

impl Layout {
    fn arrange<'a, T>(&self, block: ArrayViewD<'a, T>) -> ArrayViewD<'a, T> {
        let mut v = block.permuted_axes(IxDyn(&self.perm));
        for &k in &self.missing {
            v.insert_axis_inplace(Axis(k));
        }
        v
    }
}

/// Multiplies blocks of `a` by blocks of `b` into an output block.
#[derive(Debug)]
struct Kernel {
    nb: usize,
    a: Layout,
    b: Layout,
}

impl Kernel {
    fn new(spec: &Spec, a_ndim: usize, b_ndim: usize) -> Self {
        let layout = |batch: Vec<Option<usize>>, rows: &[usize], cols: &[usize], ndim: usize| {
            let mut perm: Vec<usize> = batch.iter().flatten().copied().collect();
            perm.extend(rows);
            perm.extend(cols);
            debug_assert_eq!(perm.len(), ndim);
            Layout {
                perm,
                missing: (0..batch.len()).filter(|&k| batch[k].is_none()).collect(),
                nrows: rows.len(),
            }
        };
        let a_batch = spec.batch.iter().map(|b| b.1).collect();
        let b_batch = spec.batch.iter().map(|b| b.2).collect();
        Kernel {
            nb: spec.batch.len(),
            // a as (batch, free, contracted), b as (batch, contracted, free).
            a: layout(a_batch, &spec.a_free, &spec.a_con, a_ndim),
            b: layout(b_batch, &spec.b_con, &spec.b_free, b_ndim),
        }
    }

    /// Sums the products of the block pairs `(inputs[0], inputs[1])`, `(inputs[2],
    /// inputs[3])`, ... into one output block of `out_shape`.
    fn run<T: Number>(&self, inputs: &Inputs, out_shape: &[usize]) -> Result<ArrayD<T>, BoxError> {
        let nb = self.nb;
        let batch_shape = &out_shape[..nb];
        let batches: usize = batch_shape.iter().product();
        let m: usize = out_shape[nb..nb + self.a.nrows].iter().product();
        let n: usize = out_shape[nb + self.a.nrows..].iter().product();
        let mut out = Array3::<T>::zeros((batches, m, n));
        for pair in 0..inputs.len() / 2 {
            let a = self.a.arrange(block_ref::<T>(inputs, 2 * pair)?.view());
            let b = self.b.arrange(block_ref::<T>(inputs, 2 * pair + 1)?.view());
            let split = |v: &ArrayViewD<'_, T>, nrows: usize| {
                let s = &v.shape()[nb..];
                let r: usize = s[..nrows].iter().product();
                let c: usize = s[nrows..].iter().product();
                (r, c)
            };
            let (am, k) = split(&a, self.a.nrows);
            let (k2, bn) = split(&b, self.b.nrows);
            let batch_ok = |v: &ArrayViewD<'_, T>| {
                v.shape()[..nb]
                    .iter()
                    .zip(batch_shape)
                    .all(|(&l, &o)| l == 1 || l == o)
            };
            if (am, k, bn) != (m, k2, n) || !batch_ok(&a) || !batch_ok(&b) {
                return Err(format!(
                    "blocks of shapes {:?} and {:?} (arranged) do not multiply into a block of \
                     shape {:?}",
                    a.shape(),
                    b.shape(),
                    out_shape
                )
                .into());
            }
            for (t, bi) in ndarray::indices(IxDyn(batch_shape)).into_iter().enumerate() {
                let (x, y) = (batch_item(&a, &bi), batch_item(&b, &bi));
                let x = x.to_shape((m, k))?;
                let y = y.to_shape((k, n))?;
                mat_mul_acc(&x.view(), &y.view(), &mut out.index_axis_mut(Axis(0), t));
            }
        }
        Ok(out.into_shape_with_order(IxDyn(out_shape))?)
    }
}

/// The matrix of batch element `bi` (leading axes of length 1 broadcast: index 0).
fn batch_item<'a, T>(v: &ArrayViewD<'a, T>, bi: &IxDyn) -> ArrayViewD<'a, T> {
    let mut v = v.clone();
    for &i in bi.slice() {
        let i = if v.shape()[0] == 1 { 0 } else { i };
        v = v.index_axis_move(Axis(0), i);
    }
    v
}

/// `c += a · b`: `matrixmultiply` for floats, a cache-friendly row-axpy loop otherwise.
fn mat_mul_acc<T: Number>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    c: &mut ArrayViewMut2<'_, T>,
) {
    if T::DTYPE.is_float() {
        ndarray::linalg::general_mat_mul(T::one(), a, b, T::one(), c);
    } else {
        for (a_row, mut c_row) in a.rows().into_iter().zip(c.rows_mut()) {
            for (&x, b_row) in a_row.iter().zip(b.rows()) {
                if x != T::zero() {
                    c_row.scaled_add(x, &b_row);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_balanced_and_never_single_when_split() {
        for n in 1..100usize {
            let groups = balanced_groups((0..n).collect::<Vec<_>>(), SPLIT_EVERY);
            assert_eq!(groups.len(), n.div_ceil(SPLIT_EVERY));
            assert_eq!(groups.concat(), (0..n).collect::<Vec<_>>());
            let (lo, hi) = (
                groups.iter().map(Vec::len).min().unwrap(),
                groups.iter().map(Vec::len).max().unwrap(),
            );
            assert!(hi <= SPLIT_EVERY && hi - lo <= 1, "{n}: {lo}..{hi}");
            if n > SPLIT_EVERY {
                assert!(lo >= 2, "{n}: a group of one is a wasted task");
            }
        }
    }

    #[test]
    fn matmul_spec_broadcasts_and_drops_vector_axes() {
        let s = matmul_spec(&[2, 1, 3, 4], &[5, 4, 6]).unwrap();
        assert_eq!(s.batch, vec![(2, Some(0), None), (5, Some(1), Some(0))]);
        assert_eq!((s.a_free, s.b_free), (vec![2], vec![2]));
        assert_eq!((s.a_con, s.b_con), (vec![3], vec![1]));
        let v = matmul_spec(&[4], &[3, 4, 6]).unwrap();
        assert_eq!(v.batch, vec![(3, None, Some(0))]);
        assert!(v.a_free.is_empty());
        let t = tensordot_spec("tensordot", &[2, 3, 4], &[4, 2], &[2, 0], &[0, 1]).unwrap();
        assert_eq!((t.a_free, t.b_free), (vec![1], vec![]));
    }
}
