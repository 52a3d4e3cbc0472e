//! [`Array<T>`]: a lazy, chunked N-d array whose every chunk is a task (dask.array's idea).
//!
//! An array is a layer name, a [`Chunks`] (sizes per axis) and the [`Layer`] whose tasks
//! produce its chunks: block `(i, j, …)` is the value of key `(name, i, j, …)`, an
//! `ndarray::ArrayD<T>` of that block's shape. Operations add a layer and return a new array;
//! nothing runs until `compute()`. Layer names are `"<op>-<token>"`, the token hashing the
//! operation, its parameters and its inputs' names, so building the same expression twice gives
//! the same keys (and shared sub-expressions run once).
//!
//! Invariant: every task of an array's layer produces an `ArrayD<T>` whose shape is exactly
//! `chunks.block_shape(index)`.

use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn, SliceInfoElem};

use super::chunks::{ChunkSpec, Chunks};
use super::dtype::{DType, Element, Float, Number};
use super::stream::{self, Streams};
use crate::collection::{Collection, ComputeOptions, VisualizeOptions};
use crate::delayed::Delayed;
use crate::error::{BoxError, Error, Result};
use crate::graph::token::{TokenHasher, Tokenize, key_name, unique_token};
use crate::graph::{FreezeOptions, Inputs, Key, Layer, Task, TaskGraph, TaskKind, Value, value};

/// A lazy, chunked N-dimensional array of `T`.
///
/// ```
/// use chunkflow::array::{self, Array};
/// let x: Array<f64> = array::ones(&[6, 4], [3, 2]).unwrap();
/// assert_eq!(x.shape(), &[6, 4]);
/// assert_eq!(x.num_chunks(), 4);
/// let y = &x + &x;
/// assert_eq!(y.sum_all().compute().unwrap(), 48.0);
/// ```
pub struct Array<T> {
    name: Arc<str>,
    chunks: Arc<Chunks>,
    layer: Arc<Layer>,
    /// Set when this array is a transpose of another (`x.T`): element-wise operations read the
    /// source's blocks through permuted strides instead of running the transpose tasks, which
    /// would copy a block that something else also reads.
    view: Option<Arc<TransposeOf>>,
    /// Streams of this array's blocks (for a transpose: of its source's blocks), when its values
    /// are cheaper to compute again than to keep: reductions then pull blocks through the cache
    /// instead of running this array's tasks (see `stream.rs`).
    streams: Option<Streams<T>>,
    /// Set when this array is `a + b` or `a - b` of floating-point arrays of one shape and
    /// chunking: a sum or mean over it reduces each term in its own memory order and adds the
    /// results, so the element-wise tasks never run (see [`Term`]).
    sum_of: Option<Arc<[Term<T>; 2]>>,
    _type: PhantomData<fn() -> T>,
}

/// One operand of an array that is a sum or difference (see `Array::sum_of`): where its blocks
/// come from and how to read them.
pub(crate) struct Term<T> {
    /// The layer name of the blocks read (for a transpose: its source's).
    pub(crate) name: Arc<str>,
    /// The layer that produces them.
    pub(crate) layer: Arc<Layer>,
    /// For a transpose: axis `k` of the operand is axis `perm[k]` of the blocks read.
    pub(crate) perm: Option<Arc<[usize]>>,
    /// The blocks' streams, if they have them.
    pub(crate) streams: Option<Streams<T>>,
    /// Whether the operand is subtracted.
    pub(crate) negate: bool,
}

impl<T> Clone for Term<T> {
    fn clone(&self) -> Self {
        Term {
            name: self.name.clone(),
            layer: self.layer.clone(),
            perm: self.perm.clone(),
            streams: self.streams.clone(),
            negate: self.negate,
        }
    }
}

/// The array a transpose reads: block `i` of the transpose is block `j` of the source with
/// `j[perm[k]] = i[k]`, its axes permuted by `perm`.
pub(crate) struct TransposeOf {
    /// The source's layer name.
    pub(crate) name: Arc<str>,
    /// The source's layer.
    pub(crate) layer: Arc<Layer>,
    /// Axis `k` of the transpose is axis `perm[k]` of the source.
    pub(crate) perm: Arc<[usize]>,
}

impl<T> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            name: self.name.clone(),
            chunks: self.chunks.clone(),
            layer: self.layer.clone(),
            view: self.view.clone(),
            streams: self.streams.clone(),
            sum_of: self.sum_of.clone(),
            _type: PhantomData,
        }
    }
}

/// What `map_blocks` and block-wise functions are told about the block they work on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// The block's index in the chunk grid.
    pub index: Vec<usize>,
    /// The block's element ranges in the whole array.
    pub ranges: Vec<std::ops::Range<usize>>,
    /// The whole array's shape.
    pub array_shape: Vec<usize>,
}

impl<T: Element> Array<T> {
    /// Builds an array from a layer name, chunks and a function making the task of each block.
    /// `make(index, key)` must return a task with key `key` producing the block's `ArrayD<T>`.
    pub fn from_block_tasks(
        name: impl Into<Arc<str>>,
        chunks: Chunks,
        dependencies: Vec<Arc<Layer>>,
        mut make: impl FnMut(&[usize], Key) -> Task,
    ) -> Self {
        let name: Arc<str> = name.into();
        let nbytes_per_elem = T::DTYPE.itemsize() as u64;
        let tasks: Vec<Task> = chunks
            .blocks()
            .map(|idx| {
                let key = Key::chunk(name.clone(), &idx);
                let elems: usize = chunks.block_shape(&idx).iter().product();
                make(&idx, key).with_nbytes(elems as u64 * nbytes_per_elem)
            })
            .collect();
        let layer = Arc::new(Layer::new(name.clone(), tasks, dedupe_layers(dependencies)));
        Array {
            name,
            chunks: Arc::new(chunks),
            layer,
            view: None,
            streams: None,
            sum_of: None,
            _type: PhantomData,
        }
    }

    /// Reassembles an array from its parts (the layer must produce `name`'s chunks).
    pub(crate) fn from_parts(name: Arc<str>, chunks: Chunks, layer: Arc<Layer>) -> Self {
        Array {
            name,
            chunks: Arc::new(chunks),
            layer,
            view: None,
            streams: None,
            sum_of: None,
            _type: PhantomData,
        }
    }

    /// Marks this array as the transpose of `source` by `perm` (see [`TransposeOf`]).
    pub(crate) fn with_transpose_source(mut self, source: &Array<T>, perm: &[usize]) -> Self {
        // A transpose of a transpose reads the original source.
        let view = match &source.view {
            Some(inner) => TransposeOf {
                name: inner.name.clone(),
                layer: inner.layer.clone(),
                perm: perm.iter().map(|&p| inner.perm[p]).collect(),
            },
            None => TransposeOf {
                name: source.name.clone(),
                layer: source.layer.clone(),
                perm: perm.into(),
            },
        };
        self.view = Some(Arc::new(view));
        self.streams = source.streams.clone();
        self
    }

    /// Gives the array block streams (see `stream.rs`); its tasks must compute the
    /// same values.
    pub(crate) fn with_streams(mut self, streams: Streams<T>) -> Self {
        self.streams = Some(streams);
        self
    }

    /// The array's block streams, unless it is a transpose (whose streams are its source's).
    pub(crate) fn own_streams(&self) -> Option<&Streams<T>> {
        self.streams.as_ref().filter(|_| self.view.is_none())
    }

    /// Marks this array as `terms[0] ± terms[1]` (see `Array::sum_of`).
    pub(crate) fn with_sum_of(mut self, terms: [Term<T>; 2]) -> Self {
        self.sum_of = Some(Arc::new(terms));
        self
    }

    /// The terms this array is the sum or difference of, if it is one.
    pub(crate) fn sum_of(&self) -> Option<&[Term<T>; 2]> {
        self.sum_of.as_deref()
    }

    /// This array as an operand of a sum: its blocks (a transpose's: its source's, read
    /// through the permutation) and streams.
    pub(crate) fn term(&self, negate: bool) -> Term<T> {
        match &self.view {
            Some(v) => Term {
                name: v.name.clone(),
                layer: v.layer.clone(),
                perm: Some(v.perm.clone()),
                streams: self.streams.clone(),
                negate,
            },
            None => Term {
                name: self.name.clone(),
                layer: self.layer.clone(),
                perm: None,
                streams: self.streams.clone(),
                negate,
            },
        }
    }

    /// What this array is a transpose of, if it is one.
    pub(crate) fn transpose_source(&self) -> Option<&Arc<TransposeOf>> {
        self.view.as_ref()
    }

    /// The array's layer name (the name part of every chunk key).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key of block `index`.
    pub fn block_key(&self, index: &[usize]) -> Key {
        Key::chunk(self.name.clone(), index)
    }

    /// The layer that produces this array's chunks.
    pub fn layer(&self) -> &Arc<Layer> {
        &self.layer
    }

    /// The chunking.
    pub fn chunks(&self) -> &Chunks {
        &self.chunks
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        self.chunks.shape()
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.chunks.ndim()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        T::DTYPE
    }

    /// Blocks per axis.
    pub fn numblocks(&self) -> Vec<usize> {
        self.chunks.numblocks()
    }

    /// The total number of chunks.
    pub fn num_chunks(&self) -> usize {
        self.chunks.num_chunks()
    }

    /// Bytes of the whole array.
    pub fn nbytes(&self) -> u64 {
        self.len() as u64 * T::DTYPE.itemsize() as u64
    }

    /// The number of tasks in the graph that computes this array (culled, unfused).
    pub fn num_tasks(&self) -> Result<usize> {
        Ok(self.graph(FreezeOptions { fuse: false })?.len())
    }

    /// The frozen graph that computes this array.
    pub fn graph(&self, options: FreezeOptions) -> Result<TaskGraph> {
        self.task_graph(options)
    }

    /// Computes the whole array into memory.
    pub fn compute(&self) -> Result<ArrayD<T>> {
        Collection::compute(self)
    }

    /// [`Array::compute`] with options.
    pub fn compute_with(&self, options: &ComputeOptions) -> Result<ArrayD<T>> {
        Collection::compute_with(self, options)
    }

    /// Computes every chunk and returns an array backed by the computed chunks (same keys).
    pub fn persist(&self) -> Result<Array<T>> {
        self.persist_with(&ComputeOptions::default())
    }

    /// [`Array::persist`] with options.
    pub fn persist_with(&self, options: &ComputeOptions) -> Result<Array<T>> {
        let keys = self.output_keys();
        let values = options.run(std::slice::from_ref(&self.layer), &keys)?;
        let tasks: Vec<Task> = keys
            .into_iter()
            .zip(values)
            .map(|(k, v)| Task::data_value(k, v))
            .collect();
        Ok(Array {
            name: self.name.clone(),
            chunks: self.chunks.clone(),
            layer: Arc::new(Layer::new(self.name.clone(), tasks, vec![])),
            view: None,
            streams: None,
            sum_of: None,
            _type: PhantomData,
        })
    }

    /// Plots the graph (one node per chunk task; see [`Delayed::visualize`]).
    pub fn visualize(&self, path: impl AsRef<Path>) -> Result<()> {
        Collection::visualize(self, path)
    }

    /// [`Array::visualize`] with options.
    pub fn visualize_with(&self, path: impl AsRef<Path>, options: VisualizeOptions) -> Result<()> {
        Collection::visualize_with(self, path, options)
    }

    /// Block `index` as a `Delayed` chunk.
    pub fn to_delayed(&self, index: &[usize]) -> Delayed<ArrayD<T>> {
        Delayed::from_layer(self.layer.clone(), self.block_key(index))
    }

    /// Applies `f` to every block (dask's `map_blocks`); `f` is told which block it has. The
    /// output has the same chunks, so `f` must return an array of the block's shape.
    ///
    /// ```
    /// use chunkflow::array;
    /// let x = array::zeros::<i64>(&[4], [2]).unwrap();
    /// let ids = x.map_blocks(|mut b, info| { b.fill(info.index[0] as i64); b });
    /// assert_eq!(ids.compute().unwrap().as_slice().unwrap(), &[0, 0, 1, 1]);
    /// ```
    pub fn map_blocks<U, F>(&self, f: F) -> Array<U>
    where
        U: Element,
        F: Fn(ArrayD<T>, &BlockInfo) -> ArrayD<U> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let name = key_name(
            "map_blocks",
            op_token("map_blocks", &[&self.name], &unique_token()),
        );
        let shape = self.shape().to_vec();
        let chunks = (*self.chunks).clone();
        Array::from_block_tasks(
            name,
            chunks.clone(),
            vec![self.layer.clone()],
            |idx, key| {
                let info = BlockInfo {
                    index: idx.to_vec(),
                    ranges: chunks.block_ranges(idx),
                    array_shape: shape.clone(),
                };
                let expected = chunks.block_shape(idx);
                let f = f.clone();
                Task::call(key, [self.block_key(idx)], move |inputs| {
                    let block = take_block::<T>(inputs, 0)?;
                    let out = f(block, &info);
                    if out.shape() != expected.as_slice() {
                        return Err(format!(
                            "map_blocks function returned shape {:?} for block {:?}, expected {:?}",
                            out.shape(),
                            info.index,
                            expected
                        )
                        .into());
                    }
                    Ok(value(out))
                })
            },
        )
    }

    /// Applies `f` to every element (lazily, one task per chunk, fused with neighbours).
    pub fn map<U, F>(&self, name: &str, f: F) -> Array<U>
    where
        U: Element,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        self.map_with_token(name, unique_token(), f)
    }

    /// [`Array::map`] where `token` identifies `f` (same token, same function): keys dedupe.
    pub(crate) fn map_with_token<U, F>(&self, op: &str, token: u64, f: F) -> Array<U>
    where
        U: Element,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let name = key_name(op, op_token(op, &[&self.name], &token));
        Array::from_block_tasks(
            name,
            (*self.chunks).clone(),
            vec![self.layer.clone()],
            |idx, key| {
                let f = f.clone();
                Task::call(key, [self.block_key(idx)], move |inputs| {
                    let block = block_ref::<T>(&inputs, 0)?;
                    Ok(value(block.mapv(&*f)))
                })
            },
        )
    }

    /// Like [`Array::map_with_token`] for `T → T`, reusing the chunk's buffer when this task
    /// is its last consumer.
    pub(crate) fn map_same_with_token<F>(&self, op: &str, token: u64, f: F) -> Array<T>
    where
        F: Fn(T) -> T + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let name = key_name(op, op_token(op, &[&self.name], &token));
        let out = Array::from_block_tasks(
            name,
            (*self.chunks).clone(),
            vec![self.layer.clone()],
            |idx, key| {
                let f = f.clone();
                Task::call(key, [self.block_key(idx)], move |mut inputs| {
                    let v = std::mem::replace(&mut inputs[0], value(()));
                    let shared = match v.downcast::<ArrayD<T>>() {
                        Ok(arc) => match Arc::try_unwrap(arc) {
                            Ok(mut block) => {
                                block.mapv_inplace(&*f);
                                return Ok(value(block));
                            }
                            Err(shared) => shared,
                        },
                        Err(_) => {
                            return Err(format!("input 0 is not an array of {}", T::DTYPE).into());
                        }
                    };
                    // Another task still reads the chunk: one pass into a new buffer.
                    Ok(value(shared.mapv(&*f)))
                })
            },
        );
        match self.own_streams() {
            Some(inner) => out.with_streams(Arc::new(stream::Map {
                inner: inner.clone(),
                f: move |x| f(x),
            })),
            None => out,
        }
    }

    /// Converts every element to `U` (numpy's `astype`; float → int truncates like numpy;
    /// values out of `U`'s range are an error naming the chunk).
    pub fn astype<U: Element + num_traits::NumCast>(&self) -> Array<U>
    where
        T: num_traits::ToPrimitive,
    {
        let name = key_name(
            "astype",
            op_token("astype", &[&self.name], &U::DTYPE.name()),
        );
        Array::from_block_tasks(
            name,
            (*self.chunks).clone(),
            vec![self.layer.clone()],
            |idx, key| {
                Task::call(key, [self.block_key(idx)], move |inputs| {
                    let block = block_ref::<T>(&inputs, 0)?;
                    let mut out = Vec::with_capacity(block.len());
                    for &v in block.iter() {
                        out.push(
                            U::from(v).ok_or_else(|| {
                                format!("value {v:?} does not fit in {}", U::DTYPE)
                            })?,
                        );
                    }
                    Ok(value(ArrayD::from_shape_vec(block.raw_dim(), out)?))
                })
            },
        )
    }

    /// Selects with ndarray's `s![..]` syntax read with **numpy's** meaning: `s![a..b;-k]` is
    /// `x[a:b:-k]` (start at `a`, walk down towards `b`), `s![..;-1]` reverses like `x[::-1]`
    /// (with a negative step, a start of 0 means "omitted"), negative bounds count from the end
    /// and out-of-range slice bounds clip, integer indices drop the axis (an out-of-range index
    /// is an error), and `NewAxis` inserts an axis. Each output chunk reads one input block.
    ///
    /// ```
    /// use chunkflow::array;
    /// use ndarray::s;
    /// let x = array::arange(0i64, 6, 1, 2).unwrap();
    /// let y = x.slice(s![4..1;-1]).unwrap();
    /// assert_eq!(y.compute().unwrap().as_slice().unwrap(), &[4, 3, 2]);
    /// ```
    pub fn slice(&self, info: impl AsRef<[SliceInfoElem]>) -> Result<Array<T>> {
        super::shape::slice(self, info.as_ref())
    }
}

/// Chunk input helpers shared by array operations.
pub(crate) fn block_ref<T: Element>(inputs: &Inputs, i: usize) -> Result<&ArrayD<T>, BoxError> {
    inputs[i]
        .downcast_ref::<ArrayD<T>>()
        .ok_or_else(|| format!("input {i} is not an array of {}", T::DTYPE).into())
}

/// Takes input `i` as an owned block: moved when this task holds the only reference.
pub(crate) fn take_block<T: Element>(mut inputs: Inputs, i: usize) -> Result<ArrayD<T>, BoxError> {
    let v = std::mem::replace(&mut inputs[i], value(()));
    crate::graph::take_value::<ArrayD<T>>(v)
        .map_err(|_| format!("input {i} is not an array of {}", T::DTYPE).into())
}

/// A token for an operation on named inputs with parameters.
pub(crate) fn op_token(op: &str, inputs: &[&str], params: &dyn TokenizeDyn) -> u64 {
    let mut h = TokenHasher::new();
    h.tag(op);
    for i in inputs {
        i.tokenize(&mut h);
    }
    params.tokenize_dyn(&mut h);
    h.finish()
}

/// Object-safe [`Tokenize`].
pub(crate) trait TokenizeDyn {
    fn tokenize_dyn(&self, h: &mut TokenHasher);
}

impl<T: Tokenize + ?Sized> TokenizeDyn for T {
    fn tokenize_dyn(&self, h: &mut TokenHasher) {
        self.tokenize(h)
    }
}

pub(crate) fn dedupe_layers(mut layers: Vec<Arc<Layer>>) -> Vec<Arc<Layer>> {
    let mut seen = rustc_hash::FxHashSet::default();
    layers.retain(|l| seen.insert(Arc::as_ptr(l)));
    layers
}

impl<T: Element> Collection for Array<T> {
    type Output = ArrayD<T>;

    fn layers(&self) -> Vec<Arc<Layer>> {
        vec![self.layer.clone()]
    }

    fn output_keys(&self) -> Vec<Key> {
        self.chunks
            .blocks()
            .map(|idx| self.block_key(&idx))
            .collect()
    }

    fn finalize(&self, values: Vec<Value>) -> Result<ArrayD<T>> {
        let mut out = ArrayD::<T>::default(IxDyn(self.shape()));
        for (idx, v) in self.chunks.blocks().zip(values) {
            let key = self.block_key(&idx);
            let block = v
                .downcast_ref::<ArrayD<T>>()
                .ok_or_else(|| Error::TypeMismatch {
                    key: key.clone(),
                    expected: std::any::type_name::<ArrayD<T>>(),
                })?;
            let ranges = self.chunks.block_ranges(&idx);
            if block.shape() != self.chunks.block_shape(&idx).as_slice() {
                return Err(Error::InvalidArgument(format!(
                    "chunk {key} has shape {:?}, expected {:?}",
                    block.shape(),
                    self.chunks.block_shape(&idx)
                )));
            }
            let info: Vec<SliceInfoElem> = ranges
                .iter()
                .map(|r| SliceInfoElem::Slice {
                    start: r.start as isize,
                    end: Some(r.end as isize),
                    step: 1,
                })
                .collect();
            out.slice_mut(info.as_slice()).assign(block);
        }
        Ok(out)
    }
}

impl<T: Element> fmt::Display for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chunk_elems: usize = self.chunks.chunksize().iter().product();
        let chunk_bytes = chunk_elems as u64 * T::DTYPE.itemsize() as u64;
        let tasks = self.num_tasks().map_or("?".to_string(), |n| n.to_string());
        write!(
            f,
            "chunkflow.Array<shape={}, dtype={}, chunksize={}, chunks={}, tasks={}, \
             nbytes={} (chunk {})>",
            tuple(self.shape()),
            T::DTYPE,
            tuple(&self.chunks.chunksize()),
            self.num_chunks(),
            tasks,
            human_bytes(self.nbytes()),
            human_bytes(chunk_bytes),
        )
    }
}

impl<T: Element> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn tuple(v: &[usize]) -> String {
    match v {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Formats bytes like dask: `45.78 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

// ---------------------------------------------------------------------------------------------
// Creation

fn normalize(spec: impl Into<ChunkSpec>, shape: &[usize], itemsize: usize) -> Result<Chunks> {
    Ok(Chunks::normalize(spec, shape, itemsize, None)?)
}

/// An array of `value` everywhere (lazy: each chunk is made by its own task).
///
/// ```
/// use chunkflow::array;
/// let x = array::full(&[5], [2], 7u8).unwrap();
/// assert_eq!(x.chunks().axis(0), &[2, 2, 1]);
/// assert_eq!(x.compute().unwrap().sum(), 35);
/// ```
pub fn full<T: Element>(shape: &[usize], chunks: impl Into<ChunkSpec>, v: T) -> Result<Array<T>> {
    let chunks = normalize(chunks, shape, T::DTYPE.itemsize())?;
    let name = key_name(
        "full",
        op_token("full", &[], &(shape.to_vec(), chunks_token(&chunks), v)),
    );
    let array = Array::from_block_tasks(name, chunks.clone(), vec![], |idx, key| {
        let shape = chunks.block_shape(idx);
        Task::call(key, Vec::<Key>::new(), move |_| {
            Ok(value(ArrayD::from_elem(IxDyn(&shape), v)))
        })
    });
    Ok(array.with_streams(Arc::new(stream::Constant(v))))
}

/// An array of zeros.
pub fn zeros<T: Number>(shape: &[usize], chunks: impl Into<ChunkSpec>) -> Result<Array<T>> {
    full(shape, chunks, T::zero())
}

/// An array of ones.
pub fn ones<T: Number>(shape: &[usize], chunks: impl Into<ChunkSpec>) -> Result<Array<T>> {
    full(shape, chunks, T::one())
}

/// `start, start + step, …` below `stop` (numpy's `arange`), as a 1-d array.
///
/// ```
/// use chunkflow::array;
/// let x = array::arange(0.0, 1.0, 0.25, 2).unwrap();
/// assert_eq!(x.compute().unwrap().as_slice().unwrap(), &[0.0, 0.25, 0.5, 0.75]);
/// ```
pub fn arange<T: Number>(
    start: T,
    stop: T,
    step: T,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array<T>> {
    let (a, b, s) = (
        start.to_f64().unwrap_or(0.0),
        stop.to_f64().unwrap_or(0.0),
        step.to_f64().unwrap_or(0.0),
    );
    if s == 0.0 || !s.is_finite() {
        return Err(Error::InvalidArgument(format!(
            "arange step must be non-zero and finite, got {s}"
        )));
    }
    let n = ((b - a) / s).ceil().max(0.0) as usize;
    let chunks = normalize(chunks, &[n], T::DTYPE.itemsize())?;
    let name = key_name(
        "arange",
        op_token("arange", &[], &(start, stop, step, chunks_token(&chunks))),
    );
    Ok(Array::from_block_tasks(
        name,
        chunks.clone(),
        vec![],
        |idx, key| {
            let range = chunks.block_ranges(idx)[0].clone();
            Task::call(key, Vec::<Key>::new(), move |_| {
                let v: Vec<T> = range
                    .clone()
                    .map(|i| T::from(a + s * i as f64).ok_or("arange value out of range"))
                    .collect::<Result<_, _>>()?;
                Ok(value(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v)?))
            })
        },
    ))
}

/// `num` evenly spaced values from `start` to `stop` inclusive (numpy's `linspace`).
pub fn linspace<T: Float>(
    start: T,
    stop: T,
    num: usize,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array<T>> {
    let chunks = normalize(chunks, &[num], T::DTYPE.itemsize())?;
    let name = key_name(
        "linspace",
        op_token("linspace", &[], &(start, stop, num, chunks_token(&chunks))),
    );
    let (a, b) = (start.to_f64().unwrap_or(0.0), stop.to_f64().unwrap_or(0.0));
    let div = if num > 1 { (num - 1) as f64 } else { 1.0 };
    let step = (b - a) / div;
    Ok(Array::from_block_tasks(
        name,
        chunks.clone(),
        vec![],
        |idx, key| {
            let range = chunks.block_ranges(idx)[0].clone();
            Task::call(key, Vec::<Key>::new(), move |_| {
                let v: Vec<T> = range
                    .clone()
                    .map(|i| {
                        // numpy: the last sample is exactly `stop`.
                        let x = if num > 1 && i == num - 1 {
                            b
                        } else {
                            a + step * i as f64
                        };
                        T::from(x).expect("a float converts to a float")
                    })
                    .collect();
                Ok(value(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v)?))
            })
        },
    ))
}

/// A chunked array over an in-memory `ndarray` (each chunk task copies its block out).
pub fn from_ndarray<T: Element>(data: ArrayD<T>, chunks: impl Into<ChunkSpec>) -> Result<Array<T>> {
    let chunks = normalize(chunks, data.shape(), T::DTYPE.itemsize())?;
    let mut h = TokenHasher::new();
    data.tokenize(&mut h);
    let name = key_name(
        "array",
        op_token("array", &[], &(h.finish(), chunks_token(&chunks))),
    );
    let data = Arc::new(data);
    Ok(Array::from_block_tasks(
        name,
        chunks.clone(),
        vec![],
        |idx, key| {
            let data = data.clone();
            let info: Vec<SliceInfoElem> = chunks
                .block_ranges(idx)
                .into_iter()
                .map(|r| SliceInfoElem::Slice {
                    start: r.start as isize,
                    end: Some(r.end as isize),
                    step: 1,
                })
                .collect();
            Task::call(key, Vec::<Key>::new(), move |_| {
                Ok(value(data.slice(info.as_slice()).to_owned()))
            })
            .with_kind(TaskKind::Read)
        },
    ))
}

/// A one-chunk array from a `Delayed` that computes an `ArrayD<T>` of `shape` (the shape is
/// checked when the chunk is computed).
pub fn from_delayed<T: Element>(d: &Delayed<ArrayD<T>>, shape: &[usize]) -> Array<T> {
    let chunks = Chunks::single(shape);
    let name = key_name(
        "from-delayed",
        op_token("from-delayed", &[], &d.key().clone()),
    );
    let expected = shape.to_vec();
    let dep = d.key().clone();
    Array::from_block_tasks(name, chunks, vec![d.layer().clone()], |_, key| {
        let expected = expected.clone();
        Task::call(key, [dep.clone()], move |inputs| {
            let block = take_block::<T>(inputs, 0)?;
            if block.shape() != expected.as_slice() {
                return Err(format!(
                    "the delayed value has shape {:?}, but from_delayed was told {:?}",
                    block.shape(),
                    expected
                )
                .into());
            }
            Ok(value(block))
        })
    })
}

pub(crate) fn chunks_token(chunks: &Chunks) -> Vec<Vec<usize>> {
    chunks.axes().to_vec()
}

/// The seed of one block: the user's seed mixed with the block index, so every block has its
/// own stream and the result does not depend on which worker runs which block.
fn block_seed(seed: u64, index: &[usize]) -> u64 {
    let mut h = TokenHasher::new();
    h.tag("block-seed");
    seed.tokenize(&mut h);
    index.tokenize(&mut h);
    h.finish()
}

/// Random arrays (dask's `da.random`): reproducible for a seed whatever the executor.
///
/// Each chunk has its own generator, seeded from the user's seed and the chunk's index, so a
/// chunk's values depend on neither the executor nor the thread count nor the other chunks.
/// The generator is xoshiro256++ in 16 interleaved streams (lane 0 is
/// `rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(chunk seed)`, lane `l` that stream jumped
/// `l` × 2^128 steps ahead), which fills a chunk with SIMD code; uniform doubles carry 53 random
/// bits like numpy's (`(x >> 11) · 2^-53`), normal samples come from `rand_distr`'s ziggurat.
/// The streams differ from numpy's PCG64, so the same seed gives other numbers than dask.
///
/// A random array also has block streams (see `stream.rs`): a reduction over it, or over
/// element-wise maths on it, draws each block's numbers slice by slice and reduces them while
/// they are in the CPU's cache, without ever holding the block; the values are the same as
/// those its block tasks compute.
pub mod random {
    use super::*;
    use crate::array::rng::ChunkRng;
    use crate::array::stream::{BlockStream, BlockStreams};
    use rand_distr::{Distribution, StandardNormal};
    use std::mem::MaybeUninit;

    /// Uniform samples in `[0, 1)`.
    ///
    /// ```
    /// use chunkflow::array::random;
    /// let x = random::random(&[100, 100], [50, 50], 42).unwrap();
    /// let m = x.mean_all().compute().unwrap();
    /// assert!((m - 0.5).abs() < 0.05);
    /// ```
    pub fn random(shape: &[usize], chunks: impl Into<ChunkSpec>, seed: u64) -> Result<Array<f64>> {
        generate(shape, chunks, seed, "random_sample", |rng, out| {
            rng.fill_uniform(out)
        })
    }

    /// Uniform samples in `[low, high)`.
    ///
    /// ```
    /// use chunkflow::array::random;
    /// let x = random::uniform(&[1000], [300], -2.0, 2.0, 1).unwrap().compute().unwrap();
    /// assert!(x.iter().all(|v| (-2.0..2.0).contains(v)));
    /// ```
    pub fn uniform(
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
        low: f64,
        high: f64,
        seed: u64,
    ) -> Result<Array<f64>> {
        let x = random(shape, chunks, seed)?;
        Ok(x.map_same_with_token(
            "uniform",
            crate::graph::token::token_of(&(low, high)),
            move |u| low + (high - low) * u,
        ))
    }

    /// Normal samples with mean `loc` and standard deviation `scale`.
    ///
    /// ```
    /// use chunkflow::array::random;
    /// let x = random::normal(&[100_000], [25_000], 3.0, 0.5, 1).unwrap();
    /// let m = x.mean_all().compute().unwrap();
    /// assert!((m - 3.0).abs() < 0.01);
    /// ```
    pub fn normal(
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
        loc: f64,
        scale: f64,
        seed: u64,
    ) -> Result<Array<f64>> {
        generate(
            shape,
            chunks,
            crate::graph::token::token_of(&(seed, loc, scale)),
            "normal",
            move |rng, out| {
                for x in out {
                    let z: f64 = StandardNormal.sample(rng);
                    x.write(loc + scale * z);
                }
            },
        )
    }

    /// An array whose block `index` is `draw(generator of the block, buffer)` (which writes
    /// every element of the buffer) called on
    /// consecutive slices of the block in C order (the generator carries on from slice to
    /// slice, so the slicing does not change the values). Its block tasks and its
    /// streams (`stream.rs`) run the same code.
    fn generate<F>(
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
        seed: u64,
        op: &str,
        draw: F,
    ) -> Result<Array<f64>>
    where
        F: Fn(&mut ChunkRng, &mut [MaybeUninit<f64>]) + Send + Sync + 'static,
    {
        let chunks = normalize(chunks, shape, 8)?;
        let name = key_name(
            op,
            op_token(op, &[], &(seed, shape.to_vec(), chunks_token(&chunks))),
        );
        let streams: Streams<f64> = Arc::new(Draws { seed, draw });
        let array = Array::from_block_tasks(name, chunks.clone(), vec![], |idx, key| {
            let shape = chunks.block_shape(idx);
            let (streams, idx) = (streams.clone(), idx.to_vec());
            Task::call(key, Vec::<Key>::new(), move |_| {
                Ok(value(stream::materialize(&*streams, &idx, &shape)))
            })
        });
        Ok(array.with_streams(streams))
    }

    /// The streams of a random array: block `index` draws from its own generator, seeded with
    /// [`block_seed`].
    struct Draws<F> {
        seed: u64,
        draw: F,
    }

    impl<F: Fn(&mut ChunkRng, &mut [MaybeUninit<f64>]) + Send + Sync> BlockStreams<f64> for Draws<F> {
        fn open(&self, index: &[usize], _: &[usize]) -> Box<dyn BlockStream<f64> + '_> {
            Box::new(DrawStream {
                rng: ChunkRng::new(block_seed(self.seed, index)),
                draw: &self.draw,
            })
        }
    }

    struct DrawStream<'a, F> {
        rng: ChunkRng,
        draw: &'a F,
    }

    impl<F: Fn(&mut ChunkRng, &mut [MaybeUninit<f64>])> BlockStream<f64> for DrawStream<'_, F> {
        fn fill(&mut self, out: &mut [f64]) {
            // SAFETY: `MaybeUninit<f64>` has `f64`'s layout, and `draw` only writes initialised
            // values, so `out` stays initialised.
            let out = unsafe { &mut *(out as *mut [f64] as *mut [MaybeUninit<f64>]) };
            (self.draw)(&mut self.rng, out)
        }

        fn fill_uninit(&mut self, out: &mut [MaybeUninit<f64>]) {
            (self.draw)(&mut self.rng, out)
        }
    }
}
