//! The chunk model of an N-d array and dask-style chunk normalisation.
//!
//! This room owns three things:
//!
//! - [`Chunks`]: how an array of a given shape is cut into blocks, per axis an explicit list of
//!   chunk sizes (dask's tuple-of-tuples `chunks`), with the arithmetic the array code needs
//!   (block shapes and element ranges, offsets, block lookup, C-order block iteration).
//! - [`ChunkSpec`] / [`Dim`]: what a user may write to ask for a chunking (one size for every
//!   axis, one rule per axis, explicit sizes, `-1`/full, `auto`, a byte target such as
//!   `"100MiB"`), and [`Chunks::normalize`], which turns a spec into [`Chunks`] the way dask's
//!   `normalize_chunks` and `auto_chunks` do.
//! - Helpers over two chunkings of the same shape: [`intersections`] (dask's `old_to_new`, the
//!   pieces a rechunk copies) and [`common_refinement`] (the union of both sets of boundaries).
//!
//! # Invariants
//!
//! Every [`Chunks`] value, however it was made (constructor, normalisation, deserialisation):
//!
//! - has at least one chunk per axis, and the sizes along an axis sum to that axis' length;
//! - has no chunk of size 0, except that an axis of length 0 is exactly one chunk of size 0
//!   (dask: shape `(0,)` gives chunks `((0,),)`).
//!
//! So `numblocks()` is at least 1 on every axis and a 0-d array has exactly one (empty-index)
//! block.
//!
//! # Differences from dask
//!
//! - No unknown (NaN) sizes, no dict specs, and no zero-size chunks on non-empty axes.
//! - A per-axis spec must have one entry per axis: dask reads `(4, 5)` on a 1-d array as
//!   explicit sizes, here that is [`ChunkSpec::explicit`].
//! - Auto-chunking counts a non-auto axis by its real largest chunk (dask counts a requested int
//!   even when it is longer than the axis, which makes its auto chunks smaller), treats empty
//!   axes as length 1 (dask divides by zero), and never lets floating point round a chunk past
//!   the byte limit. Otherwise results match dask's `normalize_chunks` exactly, with and
//!   without previous chunks.
//!
//! # What it must not do
//!
//! This is plain data and arithmetic: no graph, no tasks, no I/O, no dtype knowledge beyond an
//! item size in bytes. Higher rooms (array creation, rechunk, store) call into it, never the
//! other way round.
//!
//! ```
//! use chunkflow::array::chunks::{ChunkSpec, Chunks, Dim};
//!
//! // 10 x 7 array of f64, 4 rows per chunk, whole columns.
//! let spec = ChunkSpec::per_axis(vec![Dim::Size(4), Dim::Full]);
//! let chunks = Chunks::normalize(spec, &[10, 7], 8, None)?;
//! assert_eq!(chunks.to_string(), "((4, 4, 2), (7,))");
//! assert_eq!(chunks.numblocks(), vec![3, 1]);
//! assert_eq!(chunks.block_ranges(&[2, 0]), vec![8..10, 0..7]);
//! # Ok::<(), chunkflow::array::chunks::ChunkError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::iter::FusedIterator;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The byte target of a chunk when auto-chunking is given no limit: 128 MiB, dask's default
/// `array.chunk-size`.
pub const DEFAULT_CHUNK_BYTES: u64 = 128 * 1024 * 1024;

/// How far a chunk may grow past its byte target when auto-chunking aligns with previous chunks
/// (dask's `array.chunk-size-tolerance`). Only [`Chunks::normalize_with_previous`] uses it.
pub const CHUNK_SIZE_TOLERANCE: f64 = 1.25;

/// Upper bound on the refinement passes of the previous-chunks auto algorithm (dask loops until
/// nothing changes; this guarantees termination whatever floating point does).
const MAX_AUTO_PASSES: usize = 64;

// ------------------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------------------

/// Why a chunking could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// The explicit sizes along an axis do not add up to its length.
    #[error(
        "chunk sizes along axis {axis} add up to {sum}, but the axis has length {len}; \
         give sizes that sum to {len}, or a single size to cut the axis regularly"
    )]
    SumMismatch {
        /// The axis.
        axis: usize,
        /// What the sizes add up to.
        sum: u128,
        /// The axis length.
        len: usize,
    },
    /// The explicit sizes along an axis add up to more than `usize::MAX`.
    #[error("chunk sizes along axis {axis} add up to {sum}, which does not fit in usize")]
    AxisTooLong {
        /// The axis.
        axis: usize,
        /// What the sizes add up to.
        sum: u128,
    },
    /// A chunk of size 0 on an axis that is not empty (or more than one chunk on an empty axis).
    #[error(
        "axis {axis} (length {len}) has a chunk of size 0; chunks must be at least 1 long, \
         and an empty axis is written as the single chunk (0,)"
    )]
    ZeroChunk {
        /// The axis.
        axis: usize,
        /// The axis length.
        len: usize,
    },
    /// An axis was given an empty list of chunk sizes.
    #[error(
        "axis {axis} has no chunks; list at least one size (an empty axis is the single chunk (0,))"
    )]
    NoChunks {
        /// The axis.
        axis: usize,
    },
    /// The spec (or the other chunking) has a different number of axes than the array.
    #[error(
        "the chunk spec has {got} axes but the array has {expected}; give one entry per axis \
         (for explicit sizes along a single axis use ChunkSpec::explicit(vec![sizes]))"
    )]
    NdimMismatch {
        /// The array's number of axes.
        expected: usize,
        /// The number of axes given.
        got: usize,
    },
    /// A negative chunk size other than `-1`.
    #[error(
        "chunk size {value} is negative; use -1 (Dim::Full) for the whole axis \
         or a size of at least 1"
    )]
    NegativeSize {
        /// The value given.
        value: i64,
    },
    /// A byte string that [`parse_bytes`] cannot read.
    #[error(
        "cannot read {input:?} as a number of bytes: {reason}; write a number with an optional \
         unit, such as \"128MiB\", \"100MB\", \"1GB\" or \"4096\""
    )]
    BadByteString {
        /// The string given.
        input: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A chunk spec string that [`ChunkSpec::from_str`] cannot read.
    #[error(
        "cannot read {input:?} as a chunk spec: {reason}; write one entry for every axis or a \
         comma-separated entry per axis, each a size, -1, auto, a byte target like 100MiB, or \
         explicit sizes like (2,2,1), e.g. \"100,-1,auto\""
    )]
    BadSpec {
        /// The string given.
        input: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Two different byte limits were asked for.
    #[error(
        "conflicting chunk byte targets {first} and {second}; give one byte target \
         (either as the limit or inside the spec)"
    )]
    ConflictingLimits {
        /// The first limit seen.
        first: u64,
        /// The one that disagrees with it.
        second: u64,
    },
    /// Auto-chunking with an item size of 0 bytes.
    #[error(
        "auto-chunking needs the size in bytes of one element, but it was 0; pass the item size \
         or give explicit chunks"
    )]
    ZeroItemSize,
    /// `transpose` was given something that is not a permutation of the axes.
    #[error("{axes:?} is not a permutation of the {ndim} axes 0..{ndim}")]
    BadPermutation {
        /// The axes given.
        axes: Vec<usize>,
        /// The number of axes.
        ndim: usize,
    },
    /// Two chunkings (or a chunking and a shape) that must describe the same shape do not.
    #[error("shapes differ: {left:?} vs {right:?}; both chunkings must describe the same shape")]
    ShapeMismatch {
        /// The first shape.
        left: Vec<usize>,
        /// The second shape.
        right: Vec<usize>,
    },
}

// ------------------------------------------------------------------------------------------------
// Chunks
// ------------------------------------------------------------------------------------------------

/// The chunking of an N-d array: per axis, the sizes of its chunks (dask's `chunks`).
///
/// Always valid (see the module invariants). Serialises as the list of per-axis size lists,
/// `[[2, 2, 1], [3]]`, and deserialisation checks the invariants. Displays like dask:
/// `((2, 2, 1), (3,))`.
///
/// ```
/// use chunkflow::array::chunks::Chunks;
///
/// let c = Chunks::new(vec![vec![2, 2, 1], vec![3]])?;
/// assert_eq!(c.shape(), &[5, 3]);
/// assert_eq!(c.num_chunks(), 3);
/// assert_eq!(c.offsets(0), &[0, 2, 4]);
/// assert_eq!(c.block_shape(&[2, 0]), vec![1, 3]);
/// assert_eq!(c.block_index_of(0, 3), Some(1));
/// assert_eq!(c.blocks().collect::<Vec<_>>(), vec![vec![0, 0], vec![1, 0], vec![2, 0]]);
/// assert_eq!(c.to_string(), "((2, 2, 1), (3,))");
/// # Ok::<(), chunkflow::array::chunks::ChunkError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<Vec<usize>>", into = "Vec<Vec<usize>>")]
pub struct Chunks {
    /// Per axis, the chunk sizes.
    sizes: Vec<Vec<usize>>,
    /// Per axis, `0`, the cumulative sums, and the axis length (`len + 1` entries).
    bounds: Vec<Vec<usize>>,
    /// Per axis, the sum of the sizes.
    shape: Vec<usize>,
}

impl Chunks {
    /// Chunks from explicit per-axis sizes; the shape is what they add up to.
    ///
    /// # Errors
    /// [`ChunkError::NoChunks`] for an axis with no sizes, [`ChunkError::ZeroChunk`] for a zero
    /// size on an axis that is not the single chunk `[0]`, [`ChunkError::AxisTooLong`] if an
    /// axis overflows `usize`.
    pub fn new(sizes: Vec<Vec<usize>>) -> Result<Self, ChunkError> {
        for (axis, axis_sizes) in sizes.iter().enumerate() {
            let len = axis_len(axis, axis_sizes)?;
            check_axis(axis, axis_sizes, len)?;
        }
        Ok(Self::from_valid(sizes))
    }

    /// Chunks from explicit per-axis sizes that must add up to `shape`.
    ///
    /// # Errors
    /// As [`Chunks::new`], plus [`ChunkError::NdimMismatch`] and [`ChunkError::SumMismatch`].
    pub fn with_shape(sizes: Vec<Vec<usize>>, shape: &[usize]) -> Result<Self, ChunkError> {
        if sizes.len() != shape.len() {
            return Err(ChunkError::NdimMismatch {
                expected: shape.len(),
                got: sizes.len(),
            });
        }
        for (axis, (axis_sizes, &len)) in sizes.iter().zip(shape).enumerate() {
            check_axis(axis, axis_sizes, len)?;
        }
        Ok(Self::from_valid(sizes))
    }

    /// Regular chunks: `chunk_shape[i]` elements per chunk along axis `i`, the last chunk
    /// partial (dask's `blockdims_from_blockshape`). A chunk size larger than the axis gives
    /// one chunk; an axis of length 0 gives `(0,)`.
    ///
    /// ```
    /// use chunkflow::array::chunks::Chunks;
    /// let c = Chunks::regular(&[10, 10], &[4, 3])?;
    /// assert_eq!(c.to_string(), "((4, 4, 2), (3, 3, 3, 1))");
    /// # Ok::<(), chunkflow::array::chunks::ChunkError>(())
    /// ```
    ///
    /// # Errors
    /// [`ChunkError::NdimMismatch`], or [`ChunkError::ZeroChunk`] for a chunk size of 0 on a
    /// non-empty axis.
    pub fn regular(shape: &[usize], chunk_shape: &[usize]) -> Result<Self, ChunkError> {
        if chunk_shape.len() != shape.len() {
            return Err(ChunkError::NdimMismatch {
                expected: shape.len(),
                got: chunk_shape.len(),
            });
        }
        let sizes = shape
            .iter()
            .zip(chunk_shape)
            .enumerate()
            .map(|(axis, (&len, &size))| regular_axis(axis, len, size))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_valid(sizes))
    }

    /// One chunk holding the whole array.
    pub fn single(shape: &[usize]) -> Self {
        Self::from_valid(shape.iter().map(|&len| vec![len]).collect())
    }

    /// Normalises a [`ChunkSpec`] against an array's shape the way dask's `normalize_chunks`
    /// does.
    ///
    /// `itemsize` is the size of one element in bytes; it only matters for `auto` axes.
    /// `limit_bytes` is the byte target of one chunk for `auto` axes, [`DEFAULT_CHUNK_BYTES`]
    /// when `None`; a [`Dim::Bytes`] in the spec sets it too (the two must agree).
    ///
    /// Auto axes follow dask's `auto_chunks` without previous chunks: they are sized so that a
    /// chunk holds about `limit_bytes` given the other axes' (largest) chunk sizes, all auto
    /// axes the same length (square-ish); an auto axis shorter than that length takes the whole
    /// axis and the rest are sized again. A chunk then never exceeds the limit unless the
    /// non-auto axes alone already do (then auto axes get chunk size 1).
    ///
    /// ```
    /// use chunkflow::array::chunks::{ChunkSpec, Chunks, Dim};
    ///
    /// let c = Chunks::normalize(ChunkSpec::from(3), &[4, 6], 8, None)?;
    /// assert_eq!(c.to_string(), "((3, 1), (3, 3))");
    ///
    /// let spec = ChunkSpec::per_axis(vec![Dim::Size(3), Dim::Full]);
    /// let c = Chunks::normalize(spec, &[5, 5], 8, None)?;
    /// assert_eq!(c.to_string(), "((3, 2), (5,))");
    ///
    /// // float64, 200 bytes per chunk: 25 elements, square-ish.
    /// let c = Chunks::normalize(ChunkSpec::auto(), &[10, 10], 8, Some(200))?;
    /// assert_eq!(c.to_string(), "((5, 5), (5, 5))");
    ///
    /// // The default limit is 128 MiB: a 20000 x 20000 float64 array gets 4096 x 4096 chunks.
    /// let c = Chunks::normalize(ChunkSpec::auto(), &[20_000, 20_000], 8, None)?;
    /// assert_eq!(c.chunksize(), vec![4096, 4096]);
    ///
    /// // Strings work too: per axis, comma separated.
    /// let c = Chunks::normalize("2,auto".parse::<ChunkSpec>()?, &[4, 100], 1, Some(20))?;
    /// assert_eq!(c.to_string(), "((2, 2), (10, 10, 10, 10, 10, 10, 10, 10, 10, 10))");
    /// # Ok::<(), chunkflow::array::chunks::ChunkError>(())
    /// ```
    ///
    /// # Errors
    /// [`ChunkError::NdimMismatch`] when a per-axis spec has the wrong number of entries,
    /// [`ChunkError::SumMismatch`] / [`ChunkError::ZeroChunk`] / [`ChunkError::NoChunks`] for
    /// bad explicit sizes, [`ChunkError::ZeroChunk`] for `Dim::Size(0)` on a non-empty axis,
    /// [`ChunkError::ConflictingLimits`] for disagreeing byte targets and
    /// [`ChunkError::ZeroItemSize`] when auto axes are asked for with `itemsize == 0`.
    pub fn normalize(
        spec: impl Into<ChunkSpec>,
        shape: &[usize],
        itemsize: usize,
        limit_bytes: Option<u64>,
    ) -> Result<Self, ChunkError> {
        normalize_impl(&spec.into(), shape, itemsize, limit_bytes, None)
    }

    /// Like [`Chunks::normalize`], but `auto` axes take inspiration from `previous` (the
    /// chunks of the array being rechunked, or of the store being read or written), as dask's
    /// `auto_chunks` does with `previous_chunks`: auto axes scale the median previous chunk to
    /// reach the byte target, merge whole previous chunks when growing, and snap to multiples of
    /// the most common previous chunk when shrinking (so reads and writes stay aligned). Chunks
    /// may exceed the target by up to [`CHUNK_SIZE_TOLERANCE`] to stay aligned.
    ///
    /// ```
    /// use chunkflow::array::chunks::{ChunkSpec, Chunks};
    ///
    /// let previous = Chunks::regular(&[2000], &[128])?;
    /// let c =
    ///     Chunks::normalize_with_previous(ChunkSpec::auto(), &[2000], 1, Some(600), &previous)?;
    /// // Whole previous chunks merged up to the 600 byte target.
    /// assert_eq!(c.to_string(), "((512, 512, 512, 464),)");
    /// # Ok::<(), chunkflow::array::chunks::ChunkError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Chunks::normalize`], plus [`ChunkError::ShapeMismatch`] when `previous` does not
    /// have shape `shape`.
    pub fn normalize_with_previous(
        spec: impl Into<ChunkSpec>,
        shape: &[usize],
        itemsize: usize,
        limit_bytes: Option<u64>,
        previous: &Chunks,
    ) -> Result<Self, ChunkError> {
        if previous.shape() != shape {
            return Err(ChunkError::ShapeMismatch {
                left: shape.to_vec(),
                right: previous.shape().to_vec(),
            });
        }
        normalize_impl(&spec.into(), shape, itemsize, limit_bytes, Some(previous))
    }

    /// Builds from sizes already known to satisfy the invariants.
    fn from_valid(sizes: Vec<Vec<usize>>) -> Self {
        let bounds: Vec<Vec<usize>> = sizes
            .iter()
            .map(|axis| {
                let mut b = Vec::with_capacity(axis.len() + 1);
                let mut acc = 0usize;
                b.push(0);
                for &s in axis {
                    acc += s;
                    b.push(acc);
                }
                b
            })
            .collect();
        let shape = bounds
            .iter()
            .map(|b| *b.last().expect("len + 1 >= 1"))
            .collect();
        Self {
            sizes,
            bounds,
            shape,
        }
    }

    /// The array's shape: per axis, the sum of its chunk sizes.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of axes.
    pub fn ndim(&self) -> usize {
        self.sizes.len()
    }

    /// Per axis, the number of chunks (at least 1).
    pub fn numblocks(&self) -> Vec<usize> {
        self.sizes.iter().map(Vec::len).collect()
    }

    /// The total number of chunks: the product of [`numblocks`](Self::numblocks) (1 for a 0-d
    /// array).
    ///
    /// # Panics
    /// If the product overflows `usize`.
    pub fn num_chunks(&self) -> usize {
        checked_product(self.sizes.iter().map(Vec::len)).expect("number of chunks overflows usize")
    }

    /// The chunk sizes along `axis`.
    ///
    /// # Panics
    /// If `axis >= ndim()`.
    pub fn axis(&self, axis: usize) -> &[usize] {
        &self.sizes[axis]
    }

    /// All axes' chunk sizes (dask's tuple of tuples).
    pub fn axes(&self) -> &[Vec<usize>] {
        &self.sizes
    }

    /// Where each chunk along `axis` starts: `[0, c0, c0 + c1, ...]`, one entry per chunk.
    ///
    /// # Panics
    /// If `axis >= ndim()`.
    pub fn offsets(&self, axis: usize) -> &[usize] {
        let b = &self.bounds[axis];
        &b[..b.len() - 1]
    }

    /// The chunk boundaries along `axis`: the offsets followed by the axis length (one more
    /// entry than there are chunks).
    ///
    /// # Panics
    /// If `axis >= ndim()`.
    pub fn boundaries(&self, axis: usize) -> &[usize] {
        &self.bounds[axis]
    }

    /// The shape of the block at `index`.
    ///
    /// # Panics
    /// If `index` has the wrong length or is out of range on some axis.
    pub fn block_shape(&self, index: &[usize]) -> Vec<usize> {
        self.check_index(index);
        index
            .iter()
            .zip(&self.sizes)
            .map(|(&i, sizes)| sizes[i])
            .collect()
    }

    /// The element ranges, per axis, of the block at `index`.
    ///
    /// # Panics
    /// If `index` has the wrong length or is out of range on some axis.
    pub fn block_ranges(&self, index: &[usize]) -> Vec<Range<usize>> {
        self.check_index(index);
        index
            .iter()
            .zip(&self.bounds)
            .map(|(&i, b)| b[i]..b[i + 1])
            .collect()
    }

    /// Whether every axis is regular in dask's sense (`_check_regular_chunks`): all chunks the
    /// same size except the last, which may be smaller. Zarr needs this.
    pub fn is_regular(&self) -> bool {
        self.sizes.iter().all(|axis| match axis.split_last() {
            Some((&last, rest)) if !rest.is_empty() => {
                rest.iter().all(|&s| s == rest[0]) && last <= rest[0]
            }
            _ => true,
        })
    }

    /// The largest chunk size along each axis (dask's `chunksize`; 0 on an empty axis).
    pub fn chunksize(&self) -> Vec<usize> {
        self.sizes
            .iter()
            .map(|axis| axis.iter().copied().max().unwrap_or(0))
            .collect()
    }

    /// The index of the chunk along `axis` that holds element `element`, or `None` when
    /// `element` is past the end of the axis.
    ///
    /// # Panics
    /// If `axis >= ndim()`.
    pub fn block_index_of(&self, axis: usize, element: usize) -> Option<usize> {
        if element >= self.shape[axis] {
            return None;
        }
        // First boundary strictly greater than `element`, minus one.
        Some(self.bounds[axis].partition_point(|&b| b <= element) - 1)
    }

    /// Every block index, in C order (last axis fastest). A 0-d array has one block, `[]`.
    ///
    /// # Panics
    /// If the number of chunks overflows `usize`.
    pub fn blocks(&self) -> Blocks {
        let numblocks = self.numblocks();
        Blocks {
            remaining: self.num_chunks(),
            next: Some(vec![0; numblocks.len()]),
            numblocks,
        }
    }

    /// The chunks of the array with its axes permuted: axis `i` of the result is axis
    /// `axes[i]` of `self` (as `ndarray`'s `permuted_axes` and numpy's `transpose`).
    ///
    /// # Errors
    /// [`ChunkError::BadPermutation`] unless `axes` is a permutation of `0..ndim()`.
    pub fn transpose(&self, axes: &[usize]) -> Result<Chunks, ChunkError> {
        let ndim = self.ndim();
        let mut seen = vec![false; ndim];
        let ok = axes.len() == ndim
            && axes
                .iter()
                .all(|&a| a < ndim && !std::mem::replace(&mut seen[a], true));
        if !ok {
            return Err(ChunkError::BadPermutation {
                axes: axes.to_vec(),
                ndim,
            });
        }
        Ok(Self::from_valid(
            axes.iter().map(|&a| self.sizes[a].clone()).collect(),
        ))
    }

    fn check_index(&self, index: &[usize]) {
        assert_eq!(
            index.len(),
            self.ndim(),
            "block index {index:?} has {} axes but the chunks have {}",
            index.len(),
            self.ndim()
        );
        for (axis, (&i, sizes)) in index.iter().zip(&self.sizes).enumerate() {
            assert!(
                i < sizes.len(),
                "block index {index:?} is out of range on axis {axis}, which has {} chunks",
                sizes.len()
            );
        }
    }
}

impl TryFrom<Vec<Vec<usize>>> for Chunks {
    type Error = ChunkError;

    fn try_from(sizes: Vec<Vec<usize>>) -> Result<Self, ChunkError> {
        Chunks::new(sizes)
    }
}

impl From<Chunks> for Vec<Vec<usize>> {
    fn from(chunks: Chunks) -> Self {
        chunks.sizes
    }
}

/// Writes a Python tuple: `(a, b)`, `(a,)`, `()`.
fn write_tuple<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    items: impl ExactSizeIterator<Item = T>,
) -> fmt::Result {
    let n = items.len();
    f.write_str("(")?;
    for (i, item) in items.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    if n == 1 {
        f.write_str(",")?;
    }
    f.write_str(")")
}

/// Displays one axis' sizes as a Python tuple.
struct AxisDisplay<'a>(&'a [usize]);

impl fmt::Display for AxisDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_tuple(f, self.0.iter())
    }
}

impl fmt::Display for Chunks {
    /// Like dask's `chunks` repr: `((2, 2, 1), (3,))`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_tuple(f, self.sizes.iter().map(|a| AxisDisplay(a)))
    }
}

impl fmt::Debug for Chunks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Chunks{self}")
    }
}

/// Iterator over every block index of a [`Chunks`], in C order; see [`Chunks::blocks`].
#[derive(Clone, Debug)]
pub struct Blocks {
    numblocks: Vec<usize>,
    next: Option<Vec<usize>>,
    remaining: usize,
}

impl Iterator for Blocks {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        let current = self.next.take()?;
        self.remaining -= 1;
        let mut following = current.clone();
        // Odometer increment, last axis fastest; running off the first axis ends the walk.
        for axis in (0..following.len()).rev() {
            following[axis] += 1;
            if following[axis] < self.numblocks[axis] {
                self.next = Some(following);
                break;
            }
            following[axis] = 0;
        }
        Some(current)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Blocks {}
impl FusedIterator for Blocks {}

// ------------------------------------------------------------------------------------------------
// Specs
// ------------------------------------------------------------------------------------------------

/// How to chunk one axis.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dim {
    /// Regular chunks of this many elements, the last one partial (dask: an int). Larger than
    /// the axis means one chunk.
    Size(usize),
    /// The whole axis in one chunk (dask: `-1` or `None`).
    Full,
    /// Sized automatically to reach the byte target (dask: `"auto"`).
    Auto,
    /// Sized automatically to reach this many bytes per chunk (dask: a byte string such as
    /// `"100MiB"` in place of `"auto"`). Sets the byte target for every auto axis.
    Bytes(u64),
    /// These exact sizes, which must add up to the axis length (dask: a tuple of ints).
    Explicit(Vec<usize>),
}

impl From<usize> for Dim {
    fn from(size: usize) -> Self {
        Dim::Size(size)
    }
}

impl From<Option<usize>> for Dim {
    /// `None` is the whole axis, as in dask.
    fn from(size: Option<usize>) -> Self {
        size.map_or(Dim::Full, Dim::Size)
    }
}

impl From<Vec<usize>> for Dim {
    fn from(sizes: Vec<usize>) -> Self {
        Dim::Explicit(sizes)
    }
}

impl TryFrom<i64> for Dim {
    type Error = ChunkError;

    /// `-1` is the whole axis, other values are sizes; other negative values are an error.
    fn try_from(value: i64) -> Result<Self, ChunkError> {
        match value {
            -1 => Ok(Dim::Full),
            v if v < 0 => Err(ChunkError::NegativeSize { value: v }),
            v => usize::try_from(v)
                .map(Dim::Size)
                .map_err(|_| ChunkError::BadSpec {
                    input: v.to_string(),
                    reason: "the size does not fit in usize".into(),
                }),
        }
    }
}

impl TryFrom<i32> for Dim {
    type Error = ChunkError;

    /// As `TryFrom<i64>`, so that `Dim::try_from(-1)` works with a bare literal.
    fn try_from(value: i32) -> Result<Self, ChunkError> {
        Dim::try_from(i64::from(value))
    }
}

impl FromStr for Dim {
    type Err = ChunkError;

    /// One entry: `100`, `-1`, `none`, `full`, `auto`, a byte target such as `100MiB`, or
    /// explicit sizes `(2, 2, 1)` / `[2, 2, 1]`.
    fn from_str(s: &str) -> Result<Self, ChunkError> {
        parse_dim(s, s)
    }
}

/// What a user asks for: the input of [`Chunks::normalize`], like dask's `chunks=` argument.
///
/// ```
/// use chunkflow::array::chunks::{ChunkSpec, Chunks, Dim};
///
/// let shape = [5, 6];
/// let norm = |spec: ChunkSpec| Chunks::normalize(spec, &shape, 8, None).unwrap().to_string();
/// assert_eq!(norm(ChunkSpec::from(2)), "((2, 2, 1), (2, 2, 2))");
/// assert_eq!(norm(ChunkSpec::from([2, 3])), "((2, 2, 1), (3, 3))");
/// assert_eq!(norm(ChunkSpec::per_axis(vec![Dim::Full, Dim::Size(4)])), "((5,), (4, 2))");
/// assert_eq!(norm(ChunkSpec::explicit(vec![vec![2, 3], vec![6]])), "((2, 3), (6,))");
/// assert_eq!(norm(ChunkSpec::auto()), "((5,), (6,))");
/// assert_eq!(norm("(2, 3), -1".parse().unwrap()), "((2, 3), (6,))");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChunkSpec {
    /// The same rule on every axis (dask: a single int, `-1`, `"auto"` or a byte string).
    All(Dim),
    /// One rule per axis (dask: a tuple with one entry per axis).
    PerAxis(Vec<Dim>),
}

impl ChunkSpec {
    /// Every axis automatic, to the default or given byte target (dask: `"auto"`).
    pub fn auto() -> Self {
        ChunkSpec::All(Dim::Auto)
    }

    /// Every axis automatic, targeting `bytes` bytes per chunk (dask: `"100MiB"`).
    pub fn bytes(bytes: u64) -> Self {
        ChunkSpec::All(Dim::Bytes(bytes))
    }

    /// The whole array in one chunk (dask: `-1`).
    pub fn full() -> Self {
        ChunkSpec::All(Dim::Full)
    }

    /// Regular chunks of `size` elements on every axis (dask: an int).
    pub fn uniform(size: usize) -> Self {
        ChunkSpec::All(Dim::Size(size))
    }

    /// One rule per axis.
    pub fn per_axis(dims: Vec<Dim>) -> Self {
        ChunkSpec::PerAxis(dims)
    }

    /// Explicit sizes for every axis (dask: a tuple of tuples).
    pub fn explicit(sizes: Vec<Vec<usize>>) -> Self {
        ChunkSpec::PerAxis(sizes.into_iter().map(Dim::Explicit).collect())
    }

    /// The per-axis rules for an array with `ndim` axes.
    fn dims(&self, ndim: usize) -> Result<Vec<Dim>, ChunkError> {
        match self {
            ChunkSpec::All(dim) => Ok(vec![dim.clone(); ndim]),
            ChunkSpec::PerAxis(dims) if dims.len() == ndim => Ok(dims.clone()),
            ChunkSpec::PerAxis(dims) => Err(ChunkError::NdimMismatch {
                expected: ndim,
                got: dims.len(),
            }),
        }
    }
}

impl Default for ChunkSpec {
    /// `auto`, dask's default for `from_array`.
    fn default() -> Self {
        ChunkSpec::auto()
    }
}

impl From<Dim> for ChunkSpec {
    fn from(dim: Dim) -> Self {
        ChunkSpec::All(dim)
    }
}

impl From<usize> for ChunkSpec {
    fn from(size: usize) -> Self {
        ChunkSpec::uniform(size)
    }
}

impl<const N: usize> From<[usize; N]> for ChunkSpec {
    fn from(sizes: [usize; N]) -> Self {
        ChunkSpec::PerAxis(sizes.into_iter().map(Dim::Size).collect())
    }
}

impl From<&[usize]> for ChunkSpec {
    fn from(sizes: &[usize]) -> Self {
        ChunkSpec::PerAxis(sizes.iter().copied().map(Dim::Size).collect())
    }
}

impl From<Vec<usize>> for ChunkSpec {
    /// One regular chunk size per axis (dask: a tuple of ints).
    fn from(sizes: Vec<usize>) -> Self {
        ChunkSpec::from(sizes.as_slice())
    }
}

impl<const N: usize> From<[Dim; N]> for ChunkSpec {
    fn from(dims: [Dim; N]) -> Self {
        ChunkSpec::PerAxis(dims.into())
    }
}

impl From<Vec<Dim>> for ChunkSpec {
    fn from(dims: Vec<Dim>) -> Self {
        ChunkSpec::PerAxis(dims)
    }
}

impl From<&Chunks> for ChunkSpec {
    fn from(chunks: &Chunks) -> Self {
        ChunkSpec::explicit(chunks.axes().to_vec())
    }
}

impl From<Chunks> for ChunkSpec {
    fn from(chunks: Chunks) -> Self {
        ChunkSpec::explicit(chunks.sizes)
    }
}

impl From<&ChunkSpec> for ChunkSpec {
    fn from(spec: &ChunkSpec) -> Self {
        spec.clone()
    }
}

impl FromStr for ChunkSpec {
    type Err = ChunkError;

    /// Reads the positional CLI form.
    ///
    /// - One entry is the rule for every axis: `100`, `-1`, `auto`, `128MiB`.
    /// - Comma-separated entries are one rule per axis: `100,-1,auto`.
    /// - An entry may be explicit sizes in parentheses or brackets: `(2,2,1),3`.
    /// - The whole may be wrapped in parentheses or brackets, Python style, so the [`Display`]
    ///   of a [`Chunks`] reads back: `((2, 2, 1), (3,))`.
    ///
    /// Entries are a size (`100`), the whole axis (`-1`, `none`, `full`), `auto`, or a byte
    /// target: any entry ending in a unit letter (`100MiB`, `1GB`, `512kB`, see
    /// [`parse_bytes`]).
    ///
    /// [`Display`]: fmt::Display
    fn from_str(input: &str) -> Result<Self, ChunkError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(bad_spec(input, "it is empty"));
        }
        if let Some(inner) = strip_outer_brackets(s) {
            // A Python-style tuple: always per axis, even with one entry (`(3,)`).
            let items = split_top_level(inner, input)?;
            return items
                .into_iter()
                .map(|item| parse_dim(item, input))
                .collect::<Result<Vec<_>, _>>()
                .map(ChunkSpec::PerAxis);
        }
        let items = split_top_level(s, input)?;
        if items.len() == 1 && !s.contains(',') {
            return parse_dim(items[0], input).map(ChunkSpec::All);
        }
        items
            .into_iter()
            .map(|item| parse_dim(item, input))
            .collect::<Result<Vec<_>, _>>()
            .map(ChunkSpec::PerAxis)
    }
}

fn bad_spec(input: &str, reason: impl Into<String>) -> ChunkError {
    ChunkError::BadSpec {
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// `s` without its outer bracket pair, if the bracket opened at the start closes at the end.
fn strip_outer_brackets(s: &str) -> Option<&str> {
    let close = match s.chars().next()? {
        '(' => ')',
        '[' => ']',
        _ => return None,
    };
    if !s.ends_with(close) {
        return None;
    }
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    // The opening bracket closes here: it wraps the whole string only if this is
                    // the last character.
                    return (i == s.len() - 1).then(|| &s[1..i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits on commas outside brackets; trims items; drops one trailing empty item (`3,`).
fn split_top_level<'a>(s: &'a str, input: &str) -> Result<Vec<&'a str>, ChunkError> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| bad_spec(input, "a closing bracket has no opening one"))?;
            }
            ',' if depth == 0 => {
                items.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(bad_spec(input, "a bracket is not closed"));
    }
    // A trailing comma (`3,`) ends the list instead of starting an empty entry.
    let last = s[start..].trim();
    if !last.is_empty() || items.is_empty() {
        items.push(last);
    }
    if items == [""] && !s.contains(',') {
        // `()`: no entries at all (a 0-d array).
        items.clear();
    } else if let Some(pos) = items.iter().position(|item| item.is_empty()) {
        return Err(bad_spec(input, format!("entry {pos} is empty")));
    }
    Ok(items)
}

fn parse_dim(item: &str, input: &str) -> Result<Dim, ChunkError> {
    let item = item.trim();
    if let Some(inner) = strip_outer_brackets(item) {
        let sizes = split_top_level(inner, input)?
            .into_iter()
            .map(|n| {
                n.parse::<usize>().map_err(|_| {
                    bad_spec(
                        input,
                        format!("{n:?} in {item:?} is not a chunk size (a whole number >= 0)"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Dim::Explicit(sizes));
    }
    match item.to_ascii_lowercase().as_str() {
        "auto" => return Ok(Dim::Auto),
        "-1" | "none" | "full" => return Ok(Dim::Full),
        _ => {}
    }
    if let Ok(value) = item.parse::<i64>() {
        return Dim::try_from(value);
    }
    if item.chars().last().is_some_and(char::is_alphabetic) {
        return parse_bytes(item).map(Dim::Bytes);
    }
    Err(bad_spec(
        input,
        format!(
            "{item:?} is not a size, -1, none, full, auto, a byte target such as 100MiB, \
             or explicit sizes such as (2,2,1)"
        ),
    ))
}

// ------------------------------------------------------------------------------------------------
// Byte strings
// ------------------------------------------------------------------------------------------------

/// Parses a byte count the way dask's `parse_bytes` does: a number (decimals and exponents
/// allowed) and an optional case-insensitive unit. Decimal units are powers of 1000 (`kB`, `MB`,
/// `GB`, `TB`, `PB`, or just `k`, `M`, ...), binary units powers of 1024 (`KiB`, `MiB`, `GiB`,
/// `TiB`, `PiB`, or `Ki`, `Mi`, ...); `B` or no unit is bytes. Spaces are ignored; a unit alone
/// means one of it. Fractions of a byte are truncated.
///
/// ```
/// use chunkflow::array::chunks::parse_bytes;
///
/// assert_eq!(parse_bytes("128MiB")?, 128 * 1024 * 1024);
/// assert_eq!(parse_bytes("100MB")?, 100_000_000);
/// assert_eq!(parse_bytes("1GB")?, 1_000_000_000);
/// assert_eq!(parse_bytes("5.4 kB")?, 5400);
/// assert_eq!(parse_bytes("1e6")?, 1_000_000);
/// assert_eq!(parse_bytes("MB")?, 1_000_000);
/// assert!(parse_bytes("5 foos").is_err());
/// # Ok::<(), chunkflow::array::chunks::ChunkError>(())
/// ```
///
/// # Errors
/// [`ChunkError::BadByteString`] for an empty string, an unknown unit, a number that does not
/// parse, or a value that is negative, not finite, or does not fit in `u64`.
pub fn parse_bytes(input: &str) -> Result<u64, ChunkError> {
    let bad = |reason: String| ChunkError::BadByteString {
        input: input.to_string(),
        reason,
    };
    let mut s: String = input.chars().filter(|&c| c != ' ').collect();
    if s.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if !s.chars().any(|c| c.is_ascii_digit()) {
        s.insert(0, '1');
    }
    let split = s
        .char_indices()
        .rev()
        .find(|&(_, c)| !c.is_alphabetic())
        .map_or(0, |(i, c)| i + c.len_utf8());
    let (number, unit) = s.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| bad(format!("{number:?} is not a number")))?;
    let multiplier = byte_unit(unit).ok_or_else(|| {
        bad(format!(
            "{unit:?} is not a byte unit (B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)"
        ))
    })?;
    let bytes = n * multiplier as f64;
    if !bytes.is_finite() {
        return Err(bad("it is not finite".into()));
    }
    if bytes < 0.0 {
        return Err(bad("it is negative".into()));
    }
    if bytes >= u64::MAX as f64 {
        return Err(bad("it does not fit in 64 bits".into()));
    }
    Ok(bytes as u64)
}

/// dask's `byte_sizes` table (its keys are matched lowercased, so units are case-insensitive).
fn byte_unit(unit: &str) -> Option<u64> {
    Some(match unit.to_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1000u64.pow(2),
        "g" | "gb" => 1000u64.pow(3),
        "t" | "tb" => 1000u64.pow(4),
        "p" | "pb" => 1000u64.pow(5),
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        "pi" | "pib" => 1 << 50,
        _ => return None,
    })
}

// ------------------------------------------------------------------------------------------------
// Normalisation
// ------------------------------------------------------------------------------------------------

/// The length an axis' sizes add up to.
fn axis_len(axis: usize, sizes: &[usize]) -> Result<usize, ChunkError> {
    let sum: u128 = sizes.iter().map(|&s| s as u128).sum();
    usize::try_from(sum).map_err(|_| ChunkError::AxisTooLong { axis, sum })
}

/// Checks one axis' explicit sizes against its length.
fn check_axis(axis: usize, sizes: &[usize], len: usize) -> Result<(), ChunkError> {
    if sizes.is_empty() {
        return Err(ChunkError::NoChunks { axis });
    }
    let sum: u128 = sizes.iter().map(|&s| s as u128).sum();
    if sum != len as u128 {
        return Err(ChunkError::SumMismatch { axis, sum, len });
    }
    if sizes.contains(&0) && sizes.len() != 1 {
        return Err(ChunkError::ZeroChunk { axis, len });
    }
    Ok(())
}

/// Regular chunks of `size` along an axis of length `len`, the last one partial.
fn regular_axis(axis: usize, len: usize, size: usize) -> Result<Vec<usize>, ChunkError> {
    if len == 0 {
        return Ok(vec![0]);
    }
    if size == 0 {
        return Err(ChunkError::ZeroChunk { axis, len });
    }
    let mut sizes = vec![size; len / size];
    if !len.is_multiple_of(size) {
        sizes.push(len % size);
    }
    Ok(sizes)
}

fn checked_product(values: impl IntoIterator<Item = usize>) -> Option<usize> {
    values
        .into_iter()
        .try_fold(1usize, |acc, v| acc.checked_mul(v))
}

fn normalize_impl(
    spec: &ChunkSpec,
    shape: &[usize],
    itemsize: usize,
    limit_bytes: Option<u64>,
    previous: Option<&Chunks>,
) -> Result<Chunks, ChunkError> {
    let dims = spec.dims(shape.len())?;

    // One consistent byte target (dask: "Only one consistent value of limit or chunk is
    // allowed").
    let mut limit = limit_bytes;
    for dim in &dims {
        if let Dim::Bytes(bytes) = *dim {
            match limit {
                None => limit = Some(bytes),
                Some(first) if first != bytes => {
                    return Err(ChunkError::ConflictingLimits {
                        first,
                        second: bytes,
                    });
                }
                Some(_) => {}
            }
        }
    }
    let limit = limit.unwrap_or(DEFAULT_CHUNK_BYTES).max(1);

    // Resolve every non-auto axis; `None` marks an auto axis.
    let mut axes: Vec<Option<Vec<usize>>> = Vec::with_capacity(dims.len());
    for (axis, (dim, &len)) in dims.iter().zip(shape).enumerate() {
        axes.push(match dim {
            Dim::Size(size) => Some(regular_axis(axis, len, *size)?),
            Dim::Full => Some(vec![len]),
            Dim::Explicit(sizes) => {
                check_axis(axis, sizes, len)?;
                Some(sizes.clone())
            }
            Dim::Auto | Dim::Bytes(_) => None,
        });
    }

    if axes.iter().any(Option::is_none) {
        if itemsize == 0 {
            return Err(ChunkError::ZeroItemSize);
        }
        match previous {
            None => auto_square(&mut axes, shape, itemsize, limit)?,
            Some(previous) => auto_previous(&mut axes, shape, itemsize, limit, previous)?,
        }
    }
    let sizes = axes
        .into_iter()
        .map(|axis| axis.expect("auto-chunking resolves every auto axis"))
        .collect();
    Ok(Chunks::from_valid(sizes))
}

/// The largest chunk of a resolved axis, at least 1 (an empty axis counts as 1 so it does not
/// zero the block size; dask would divide by zero there).
fn largest_chunk(sizes: &[usize]) -> usize {
    sizes.iter().copied().max().unwrap_or(0).max(1)
}

/// dask's `auto_chunks` without previous chunks.
///
/// `size = (limit / itemsize / largest_block) ** (1 / n_auto)`; auto axes shorter than `size`
/// take the whole axis and the rest are sized again; the others get `max(1, floor(size))`.
/// Deviations from dask, both conservative: a non-auto axis counts with its real largest chunk
/// (dask uses the requested int even when it exceeds the axis), and `floor(size)` is lowered
/// when floating point rounded it past the exact limit.
fn auto_square(
    axes: &mut [Option<Vec<usize>>],
    shape: &[usize],
    itemsize: usize,
    limit: u64,
) -> Result<(), ChunkError> {
    loop {
        let autos: Vec<usize> = (0..axes.len()).filter(|&a| axes[a].is_none()).collect();
        if autos.is_empty() {
            return Ok(());
        }
        let fixed: Vec<usize> = axes.iter().flatten().map(|s| largest_chunk(s)).collect();
        let block = fixed.iter().fold(1.0f64, |acc, &c| acc * c as f64);
        let size = (limit as f64 / itemsize as f64 / block).powf(1.0 / autos.len() as f64);

        let small: Vec<usize> = autos
            .iter()
            .copied()
            .filter(|&a| (shape[a] as f64) < size)
            .collect();
        if !small.is_empty() {
            for a in small {
                axes[a] = Some(vec![shape[a]]);
            }
            continue;
        }

        // Exact check: c^n_auto * prod(fixed) * itemsize <= limit, in u128 (overflow = too big).
        let fits = |c: usize| -> bool {
            let mut bytes = itemsize as u128;
            for &f in &fixed {
                bytes = match bytes.checked_mul(f as u128) {
                    Some(b) => b,
                    None => return false,
                };
            }
            for _ in &autos {
                bytes = match bytes.checked_mul(c as u128) {
                    Some(b) => b,
                    None => return false,
                };
            }
            bytes <= limit as u128
        };
        let mut c = (size.floor() as usize).max(1);
        while c > 1 && !fits(c) {
            c -= 1;
        }
        for a in autos {
            axes[a] = Some(regular_axis(a, shape[a], c)?);
        }
        return Ok(());
    }
}

/// dask's `round_to`: `c` if below `s` (at least 1), else the largest multiple of `s` below `c`.
fn round_to(c: f64, s: usize) -> usize {
    if c <= s as f64 || s == 0 {
        (c as usize).max(1)
    } else {
        ((c / s as f64).floor() * s as f64) as usize
    }
}

fn median(sizes: &[usize]) -> f64 {
    let mut sorted = sizes.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2] as f64
    } else {
        (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0
    }
}

/// The most frequent size and its count; ties go to the size seen first (as dask's
/// `max(frequencies(...).items())`).
fn mode(sizes: &[usize]) -> (usize, usize) {
    let mut counts: HashMap<usize, usize> = HashMap::new();
    let mut order = Vec::new();
    for &s in sizes {
        let count = counts.entry(s).or_insert(0);
        if *count == 0 {
            order.push(s);
        }
        *count += 1;
    }
    let mut best = (0, 0);
    for s in order {
        if counts[&s] > best.1 {
            best = (s, counts[&s]);
        }
    }
    best
}

/// What the previous-chunks algorithm decided for one auto axis.
#[derive(Clone, Debug)]
enum AutoResult {
    /// A regular chunk size.
    Size(usize),
    /// Explicit sizes (whole axis, or merged previous chunks).
    Sizes(Vec<usize>),
}

impl AutoResult {
    /// The value dask's `_compute_multiplier` reads (`max(r)` of a tuple).
    fn scale(&self) -> f64 {
        match self {
            AutoResult::Size(s) => *s as f64,
            AutoResult::Sizes(v) => v.iter().copied().max().unwrap_or(0) as f64,
        }
    }
}

/// dask's `auto_chunks` with `previous_chunks`, ported step by step.
///
/// When the target is smaller than the median previous chunk (`reduce_case`), dask's `result`
/// dict *is* its `median_chunks` dict, so every decision also updates the medians the next pass
/// scales from; `record` reproduces that. The pass count is capped at [`MAX_AUTO_PASSES`].
fn auto_previous(
    axes: &mut [Option<Vec<usize>>],
    shape: &[usize],
    itemsize: usize,
    limit: u64,
    previous: &Chunks,
) -> Result<(), ChunkError> {
    let mut autos: BTreeSet<usize> = (0..axes.len()).filter(|&a| axes[a].is_none()).collect();
    let mut largest_block: f64 = axes
        .iter()
        .flatten()
        .fold(1.0, |acc, s| acc * largest_chunk(s) as f64);
    let mut medians: BTreeMap<usize, f64> = autos
        .iter()
        .map(|&a| (a, median(previous.axis(a))))
        .collect();
    let compute_multiplier = |largest_block: f64, medians: &BTreeMap<usize, f64>| -> f64 {
        let prod: f64 = medians.values().filter(|&&m| m != 0.0).product();
        limit as f64 / itemsize as f64 / largest_block / prod
    };
    let mut multiplier = compute_multiplier(largest_block, &medians);
    let reduce_case = multiplier < 1.0;
    let mut result: BTreeMap<usize, AutoResult> = BTreeMap::new();
    let record = |a: usize,
                  r: AutoResult,
                  result: &mut BTreeMap<usize, AutoResult>,
                  medians: &mut BTreeMap<usize, f64>| {
        if reduce_case {
            medians.insert(a, r.scale());
        }
        result.insert(a, r);
    };

    // Snap target per axis: the mode of the previous chunks when it covers at least half of
    // them, else the whole axis.
    let ideal: Vec<usize> = (0..shape.len())
        .map(|i| {
            let prev = previous.axis(i);
            let (m, count) = mode(prev);
            if m > 1 && 2 * count >= prev.len() {
                m
            } else {
                shape[i]
            }
        })
        .collect();

    let mut remaining = true;
    let mut passes = 0;
    while remaining && passes < MAX_AUTO_PASSES {
        passes += 1;
        let n_last = autos.len() as f64;
        remaining = false;
        for a in autos.clone() {
            let this_multiplier = multiplier.powf(1.0 / n_last);
            let proposed = medians[&a] * this_multiplier;
            let max_chunk_size = proposed * CHUNK_SIZE_TOLERANCE.powf(1.0 / n_last);
            let prev = previous.axis(a);

            if proposed > shape[a] as f64 {
                // Hit the shape boundary: the whole axis.
                autos.remove(&a);
                medians.remove(&a);
                remaining = true;
                largest_block *= shape[a] as f64;
                record(
                    a,
                    AutoResult::Sizes(vec![shape[a]]),
                    &mut result,
                    &mut medians,
                );
            } else if reduce_case || prev.iter().copied().max().unwrap_or(0) as f64 > max_chunk_size
            {
                // Shrink (or split big previous chunks): snap to the common previous chunk.
                record(
                    a,
                    AutoResult::Size(round_to(proposed, ideal[a])),
                    &mut result,
                    &mut medians,
                );
                if proposed < 1.0 {
                    remaining = true;
                    autos.remove(&a);
                }
            } else {
                // Grow: merge whole previous chunks up to the proposal.
                let mut merged = Vec::new();
                let mut current = 0usize;
                for &c in prev {
                    if (c + current) as f64 <= proposed {
                        current += c;
                    } else {
                        if current > 0 {
                            merged.push(current);
                        }
                        current = c;
                    }
                }
                if current > 0 {
                    merged.push(current);
                }
                record(a, AutoResult::Sizes(merged), &mut result, &mut medians);
            }
        }
        if remaining || reduce_case {
            let last = multiplier;
            multiplier = compute_multiplier(largest_block, &medians);
            if multiplier != last {
                remaining = true;
            }
        }
    }

    for (a, r) in result {
        axes[a] = Some(match r {
            AutoResult::Size(size) => regular_axis(a, shape[a], size)?,
            // dask's `v or 0`: an empty merge (zero-length axis) becomes the chunk (0,).
            AutoResult::Sizes(sizes) if sizes.is_empty() => vec![0],
            AutoResult::Sizes(sizes) => sizes,
        });
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Two chunkings of one shape
// ------------------------------------------------------------------------------------------------

/// One piece of an axis cut by both an old and a new chunking: the elements that old block
/// `old_block` and new block `new_block` share, as ranges within each block.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Intersection {
    /// The index of the old block along the axis.
    pub old_block: usize,
    /// The piece's elements, relative to the start of the old block.
    pub old_range: Range<usize>,
    /// The index of the new block along the axis.
    pub new_block: usize,
    /// The piece's elements, relative to the start of the new block.
    pub new_range: Range<usize>,
}

/// Per axis, how the blocks of `new` are cut from the blocks of `old` (dask's `old_to_new` /
/// `_intersect_1d`, which rechunk uses).
///
/// Each axis' pieces are in axis order, so they are sorted by both `old_block` and `new_block`
/// and cover the axis exactly once; the pieces of one new block are a contiguous run
/// (`pieces.chunk_by(|a, b| a.new_block == b.new_block)`). A new block of the N-d array is
/// assembled from the cartesian product of its pieces on every axis. An empty axis has one
/// empty piece `(0, 0..0, 0, 0..0)`.
///
/// ```
/// use chunkflow::array::chunks::{intersections, Chunks, Intersection};
///
/// let old = Chunks::new(vec![vec![10, 10, 10, 10, 10]])?;
/// let new = Chunks::new(vec![vec![25, 5, 20]])?;
/// let pieces = intersections(&old, &new)?;
/// let first_new_block: Vec<_> = pieces[0]
///     .iter()
///     .filter(|p| p.new_block == 0)
///     .map(|p| (p.old_block, p.old_range.clone()))
///     .collect();
/// assert_eq!(first_new_block, vec![(0, 0..10), (1, 0..10), (2, 0..5)]);
/// assert_eq!(
///     pieces[0][3],
///     Intersection { old_block: 2, old_range: 5..10, new_block: 1, new_range: 0..5 }
/// );
/// # Ok::<(), chunkflow::array::chunks::ChunkError>(())
/// ```
///
/// # Errors
/// [`ChunkError::ShapeMismatch`] when the two chunkings describe different shapes.
pub fn intersections(old: &Chunks, new: &Chunks) -> Result<Vec<Vec<Intersection>>, ChunkError> {
    check_same_shape(old, new)?;
    Ok(old
        .axes()
        .iter()
        .zip(new.axes())
        .map(|(o, n)| intersect_axis(o, n))
        .collect())
}

fn check_same_shape(a: &Chunks, b: &Chunks) -> Result<(), ChunkError> {
    if a.shape() == b.shape() {
        Ok(())
    } else {
        Err(ChunkError::ShapeMismatch {
            left: a.shape().to_vec(),
            right: b.shape().to_vec(),
        })
    }
}

/// Two-pointer walk over both axes' boundaries. Both sum to the same length.
fn intersect_axis(old: &[usize], new: &[usize]) -> Vec<Intersection> {
    if old == [0] {
        return vec![Intersection {
            old_block: 0,
            old_range: 0..0,
            new_block: 0,
            new_range: 0..0,
        }];
    }
    let mut pieces = Vec::with_capacity(old.len() + new.len());
    let (mut i, mut j) = (0, 0);
    let (mut old_start, mut new_start, mut pos) = (0, 0, 0);
    while i < old.len() && j < new.len() {
        let old_end = old_start + old[i];
        let new_end = new_start + new[j];
        let end = old_end.min(new_end);
        pieces.push(Intersection {
            old_block: i,
            old_range: pos - old_start..end - old_start,
            new_block: j,
            new_range: pos - new_start..end - new_start,
        });
        pos = end;
        if end == old_end {
            old_start = old_end;
            i += 1;
        }
        if end == new_end {
            new_start = new_end;
            j += 1;
        }
    }
    pieces
}

/// The coarsest chunking finer than both `a` and `b`: per axis, a boundary wherever either has
/// one. Unifying two arrays' chunks for an element-wise operation rechunks both to this.
///
/// ```
/// use chunkflow::array::chunks::{common_refinement, Chunks};
///
/// let a = Chunks::new(vec![vec![4, 4, 2], vec![6]])?;
/// let b = Chunks::new(vec![vec![5, 5], vec![3, 3]])?;
/// assert_eq!(common_refinement(&a, &b)?.to_string(), "((4, 1, 3, 2), (3, 3))");
/// # Ok::<(), chunkflow::array::chunks::ChunkError>(())
/// ```
///
/// # Errors
/// [`ChunkError::ShapeMismatch`] when the two chunkings describe different shapes.
pub fn common_refinement(a: &Chunks, b: &Chunks) -> Result<Chunks, ChunkError> {
    check_same_shape(a, b)?;
    let sizes = (0..a.ndim())
        .map(|axis| {
            if a.shape()[axis] == 0 {
                return vec![0];
            }
            intersect_axis(a.axis(axis), b.axis(axis))
                .into_iter()
                .map(|p| p.old_range.len())
                .collect()
        })
        .collect();
    Ok(Chunks::from_valid(sizes))
}

// ------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn norm(spec: impl Into<ChunkSpec>, shape: &[usize], itemsize: usize, limit: u64) -> String {
        Chunks::normalize(spec, shape, itemsize, Some(limit))
            .unwrap()
            .to_string()
    }

    fn norm_prev(
        spec: impl Into<ChunkSpec>,
        shape: &[usize],
        itemsize: usize,
        limit: u64,
        prev: Vec<Vec<usize>>,
    ) -> Chunks {
        let prev = Chunks::new(prev).unwrap();
        Chunks::normalize_with_previous(spec, shape, itemsize, Some(limit), &prev).unwrap()
    }

    fn c(sizes: Vec<Vec<usize>>) -> Chunks {
        Chunks::new(sizes).unwrap()
    }

    // ---- the model -----------------------------------------------------------------------------

    #[test]
    fn construction_checks_invariants() {
        assert_eq!(c(vec![vec![2, 2, 1], vec![3]]).shape(), &[5, 3]);
        assert_eq!(c(vec![vec![0]]).shape(), &[0]);
        assert_eq!(c(vec![]).shape(), &[] as &[usize]);
        assert_eq!(
            Chunks::new(vec![vec![]]),
            Err(ChunkError::NoChunks { axis: 0 })
        );
        assert_eq!(
            Chunks::new(vec![vec![3], vec![2, 0, 1]]),
            Err(ChunkError::ZeroChunk { axis: 1, len: 3 })
        );
        assert_eq!(
            Chunks::new(vec![vec![0, 0]]),
            Err(ChunkError::ZeroChunk { axis: 0, len: 0 })
        );
        assert_eq!(
            Chunks::with_shape(vec![vec![10]], &[11]),
            Err(ChunkError::SumMismatch {
                axis: 0,
                sum: 10,
                len: 11
            })
        );
        assert_eq!(
            Chunks::with_shape(vec![vec![5], vec![5]], &[5]),
            Err(ChunkError::NdimMismatch {
                expected: 1,
                got: 2
            })
        );
        assert!(matches!(
            Chunks::new(vec![vec![usize::MAX, 1]]),
            Err(ChunkError::AxisTooLong { axis: 0, .. })
        ));
    }

    #[test]
    fn regular_and_single() {
        assert_eq!(
            Chunks::regular(&[10, 10], &[4, 3]).unwrap().to_string(),
            "((4, 4, 2), (3, 3, 3, 1))"
        );
        assert_eq!(
            Chunks::regular(&[10, 0], &[4, 0]).unwrap().to_string(),
            "((4, 4, 2), (0,))"
        );
        assert_eq!(Chunks::regular(&[3], &[10]).unwrap().to_string(), "((3,),)");
        assert_eq!(
            Chunks::regular(&[3], &[0]),
            Err(ChunkError::ZeroChunk { axis: 0, len: 3 })
        );
        assert_eq!(Chunks::single(&[4, 0, 2]).to_string(), "((4,), (0,), (2,))");
        assert_eq!(Chunks::single(&[]).to_string(), "()");
    }

    #[test]
    fn accessors() {
        let ch = c(vec![vec![2, 2, 1], vec![3, 3]]);
        assert_eq!(ch.ndim(), 2);
        assert_eq!(ch.numblocks(), vec![3, 2]);
        assert_eq!(ch.num_chunks(), 6);
        assert_eq!(ch.axis(0), &[2, 2, 1]);
        assert_eq!(ch.offsets(0), &[0, 2, 4]);
        assert_eq!(ch.boundaries(0), &[0, 2, 4, 5]);
        assert_eq!(ch.offsets(1), &[0, 3]);
        assert_eq!(ch.block_shape(&[2, 1]), vec![1, 3]);
        assert_eq!(ch.block_ranges(&[1, 1]), vec![2..4, 3..6]);
        assert_eq!(ch.chunksize(), vec![2, 3]);
        let hits: Vec<_> = (0..6).map(|e| ch.block_index_of(0, e)).collect();
        assert_eq!(
            hits,
            vec![Some(0), Some(0), Some(1), Some(1), Some(2), None]
        );
        assert_eq!(c(vec![vec![0]]).block_index_of(0, 0), None);
        assert_eq!(c(vec![vec![0]]).chunksize(), vec![0]);
    }

    #[test]
    #[should_panic(expected = "out of range on axis 1")]
    fn block_shape_out_of_range_panics() {
        c(vec![vec![2], vec![3]]).block_shape(&[0, 1]);
    }

    #[test]
    #[should_panic(expected = "has 1 axes but the chunks have 2")]
    fn block_ranges_wrong_ndim_panics() {
        c(vec![vec![2], vec![3]]).block_ranges(&[0]);
    }

    #[test]
    fn regularity_like_dask() {
        assert!(c(vec![vec![5, 5]]).is_regular());
        assert!(c(vec![vec![3, 3, 3, 1]]).is_regular());
        assert!(!c(vec![vec![3, 1, 3, 3]]).is_regular());
        assert!(!c(vec![vec![3, 3, 4]]).is_regular());
        assert!(c(vec![vec![7], vec![0]]).is_regular());
        assert!(c(vec![]).is_regular());
    }

    #[test]
    fn blocks_in_c_order() {
        let ch = c(vec![vec![1, 1], vec![1, 1, 1]]);
        let blocks: Vec<_> = ch.blocks().collect();
        assert_eq!(
            blocks,
            vec![
                vec![0, 0],
                vec![0, 1],
                vec![0, 2],
                vec![1, 0],
                vec![1, 1],
                vec![1, 2]
            ]
        );
        assert_eq!(ch.blocks().len(), 6);
        assert_eq!(
            c(vec![]).blocks().collect::<Vec<_>>(),
            vec![Vec::<usize>::new()]
        );
        assert_eq!(c(vec![vec![0], vec![2]]).blocks().count(), 1);
    }

    #[test]
    fn transpose_permutes_axes() {
        let ch = c(vec![vec![2, 2, 1], vec![3], vec![1, 1]]);
        assert_eq!(
            ch.transpose(&[2, 0, 1]).unwrap().to_string(),
            "((1, 1), (2, 2, 1), (3,))"
        );
        assert_eq!(ch.transpose(&[0, 1, 2]).unwrap(), ch);
        for bad in [&[0, 1][..], &[0, 1, 1], &[0, 1, 3], &[0, 1, 2, 3]] {
            assert!(matches!(
                ch.transpose(bad),
                Err(ChunkError::BadPermutation { ndim: 3, .. })
            ));
        }
    }

    #[test]
    fn display_like_python() {
        assert_eq!(
            c(vec![vec![2, 2, 1], vec![3]]).to_string(),
            "((2, 2, 1), (3,))"
        );
        assert_eq!(c(vec![vec![2, 2, 1]]).to_string(), "((2, 2, 1),)");
        assert_eq!(c(vec![]).to_string(), "()");
        assert_eq!(format!("{:?}", c(vec![vec![3]])), "Chunks((3,),)");
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let ch = c(vec![vec![2, 2, 1], vec![3]]);
        let json = serde_json::to_string(&ch).unwrap();
        assert_eq!(json, "[[2,2,1],[3]]");
        assert_eq!(serde_json::from_str::<Chunks>(&json).unwrap(), ch);
        let err = serde_json::from_str::<Chunks>("[[2,0,1]]").unwrap_err();
        assert!(err.to_string().contains("chunk of size 0"), "{err}");
        let spec = ChunkSpec::per_axis(vec![
            Dim::Size(3),
            Dim::Full,
            Dim::Auto,
            Dim::Bytes(10),
            Dim::Explicit(vec![1]),
        ]);
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<ChunkSpec>(&json).unwrap(), spec);
    }

    // ---- normalisation: dask's own test vectors ------------------------------------------------

    #[test]
    fn normalize_like_dask_test_normalize_chunks() {
        assert_eq!(norm(3, &[4, 6], 8, DEFAULT_CHUNK_BYTES), "((3, 1), (3, 3))");
        assert_eq!(
            norm(
                ChunkSpec::explicit(vec![vec![3, 3], vec![8]]),
                &[6, 8],
                8,
                1
            ),
            "((3, 3), (8,))"
        );
        assert_eq!(norm([4, 5], &[9, 9], 8, 1), "((4, 4, 1), (5, 4))");
        assert_eq!(norm(ChunkSpec::full(), &[5, 5], 8, 1), "((5,), (5,))");
        assert_eq!(
            norm([Dim::Size(3), Dim::Full], &[5, 5], 8, 1),
            "((3, 2), (5,))"
        );
        assert_eq!(
            norm([Dim::Size(3), Dim::from(None)], &[5, 5], 8, 1),
            "((3, 2), (5,))"
        );
        assert_eq!(norm(10, &[30, 5], 8, 1), "((10, 10, 10), (5,))");
        assert_eq!(norm(ChunkSpec::full(), &[0, 3], 8, 1), "((0,), (3,))");
        assert_eq!(norm(ChunkSpec::auto(), &[20], 1, 5), "((5, 5, 5, 5),)");
        assert_eq!(
            norm([Dim::Auto, Dim::Full], &[5, 5], 8, DEFAULT_CHUNK_BYTES),
            "((5,), (5,))"
        );
        assert_eq!(
            norm(ChunkSpec::auto(), &[2, 3], 4, DEFAULT_CHUNK_BYTES),
            "((2,), (3,))"
        );
        assert_eq!(
            Chunks::normalize(ChunkSpec::explicit(vec![vec![10]]), &[11], 8, None),
            Err(ChunkError::SumMismatch {
                axis: 0,
                sum: 10,
                len: 11
            })
        );
        assert_eq!(
            Chunks::normalize(ChunkSpec::explicit(vec![vec![5], vec![5]]), &[5], 8, None),
            Err(ChunkError::NdimMismatch {
                expected: 1,
                got: 2
            })
        );
    }

    #[test]
    fn normalize_auto_1d_like_dask() {
        for (shape, limit, expected) in [
            (100, 10, vec![10; 10]),
            (20, 10, vec![10, 10]),
            (20, 5, vec![5; 4]),
            (24, 5, vec![5, 5, 5, 5, 4]),
            (23, 5, vec![5, 5, 5, 5, 3]),
            (1000, 167, vec![167, 167, 167, 167, 167, 165]),
        ] {
            let got = Chunks::normalize(ChunkSpec::auto(), &[shape], 1, Some(limit)).unwrap();
            assert_eq!(
                got.axis(0),
                expected.as_slice(),
                "shape {shape} limit {limit}"
            );
        }
    }

    #[test]
    fn normalize_auto_2d_3d_like_dask() {
        assert_eq!(
            norm([Dim::Auto, Dim::Size(2)], &[20, 20], 1, 20),
            "((10, 10), (2, 2, 2, 2, 2, 2, 2, 2, 2, 2))"
        );
        assert_eq!(
            norm(
                [Dim::Auto, Dim::Explicit(vec![2, 2, 2, 2, 2, 5, 5])],
                &[20, 20],
                1,
                20
            ),
            "((4, 4, 4, 4, 4), (2, 2, 2, 2, 2, 5, 5))"
        );
        assert_eq!(norm(ChunkSpec::auto(), &[1, 20], 1, 10), "((1,), (10, 10))");
        assert_eq!(
            norm([Dim::Auto, Dim::Auto, Dim::Size(2)], &[20, 20, 20], 1, 200),
            "((10, 10), (10, 10), (2, 2, 2, 2, 2, 2, 2, 2, 2, 2))"
        );
        let two = "(2, 2, 2, 2, 2, 2, 2, 2, 2, 2)";
        assert_eq!(
            norm(ChunkSpec::auto(), &[20, 20, 20], 1, 8),
            format!("({two}, {two}, {two})")
        );
        assert_eq!(
            norm([Dim::Explicit(vec![2, 3, 5]), Dim::Auto], &[10, 10], 1, 10),
            "((2, 3, 5), (2, 2, 2, 2, 2))"
        );
        // dask's test_from_array_chunks_dict: {0: 10, 1: -1, 2: "auto"} at 128kiB, float64.
        let got = Chunks::normalize(
            [Dim::Size(10), Dim::Full, Dim::Auto],
            &[100, 100, 100],
            8,
            Some(128 * 1024),
        )
        .unwrap();
        let mut last = vec![16; 6];
        last.push(4);
        assert_eq!(got.axis(2), last.as_slice());
    }

    #[test]
    fn normalize_byte_targets_like_dask_test_nbytes_auto() {
        let bytes = |s: &str| Dim::Bytes(parse_bytes(s).unwrap());
        assert_eq!(
            Chunks::normalize(ChunkSpec::All(bytes("800B")), &[500], 8, None)
                .unwrap()
                .to_string(),
            "((100, 100, 100, 100, 100),)"
        );
        assert_eq!(
            Chunks::normalize("200B".parse::<ChunkSpec>().unwrap(), &[10, 10], 8, None)
                .unwrap()
                .to_string(),
            "((5, 5), (5, 5))"
        );
        assert_eq!(
            Chunks::normalize([Dim::Size(5), bytes("200B")], &[10, 10], 8, None)
                .unwrap()
                .to_string(),
            "((5, 5), (5, 5))"
        );
        assert_eq!(
            Chunks::normalize("33B".parse::<ChunkSpec>().unwrap(), &[10, 10], 8, None)
                .unwrap()
                .to_string(),
            "((2, 2, 2, 2, 2), (2, 2, 2, 2, 2))"
        );
        assert_eq!(
            Chunks::normalize(
                "1800B".parse::<ChunkSpec>().unwrap(),
                &[10, 20, 30],
                8,
                None
            )
            .unwrap()
            .to_string(),
            "((6, 4), (6, 6, 6, 2), (6, 6, 6, 6, 6))"
        );
        // normalize_chunks("1kiB", shape=(2000,), dtype='float32')
        let got =
            Chunks::normalize("1kiB".parse::<ChunkSpec>().unwrap(), &[2000], 4, None).unwrap();
        let mut expected = vec![256; 7];
        expected.push(208);
        assert_eq!(got.axis(0), expected.as_slice());

        assert_eq!(
            Chunks::normalize(ChunkSpec::All(bytes("10B")), &[10], 8, Some(20)),
            Err(ChunkError::ConflictingLimits {
                first: 20,
                second: 10
            })
        );
        assert_eq!(
            Chunks::normalize([bytes("100B"), bytes("10B")], &[10, 10], 8, None),
            Err(ChunkError::ConflictingLimits {
                first: 100,
                second: 10
            })
        );
        // The same target twice, or matching the limit, is fine.
        assert!(Chunks::normalize([bytes("10B"), bytes("10B")], &[10, 10], 8, Some(10)).is_ok());
    }

    #[test]
    fn float_roots_floor_like_dask() {
        // (2^27 / 8 / 8)^(1/3) is 127.99999999999997 in floating point; dask gives 127.
        let ch = Chunks::normalize(
            [Dim::Auto, Dim::Size(8), Dim::Auto, Dim::Auto],
            &[221, 8, 268, 244],
            8,
            None,
        )
        .unwrap();
        assert_eq!(ch.chunksize(), vec![127, 8, 127, 127]);
    }

    #[test]
    fn default_limit_is_128_mib() {
        // float64: 16 Mi elements; square 4096 x 4096; cube 255 (2^24^(1/3) rounds below 256 in
        // floating point, in dask too).
        let ch = Chunks::normalize(ChunkSpec::auto(), &[100_000, 100_000], 8, None).unwrap();
        assert_eq!(ch.chunksize(), vec![4096, 4096]);
        let ch = Chunks::normalize(ChunkSpec::auto(), &[1000, 1000, 1000], 8, None).unwrap();
        assert_eq!(ch.chunksize(), vec![255, 255, 255]);
        // A small array is one chunk.
        let ch = Chunks::normalize(ChunkSpec::default(), &[1000, 1000], 8, None).unwrap();
        assert_eq!(ch.num_chunks(), 1);
    }

    #[test]
    fn auto_cannot_beat_fixed_axes_over_limit() {
        // The fixed axis alone is 100 bytes > 10: auto axes fall to 1.
        assert_eq!(
            norm([Dim::Full, Dim::Auto], &[100, 3], 1, 10),
            "((100,), (1, 1, 1))"
        );
    }

    #[test]
    fn normalize_errors() {
        assert_eq!(
            Chunks::normalize(0, &[5], 8, None),
            Err(ChunkError::ZeroChunk { axis: 0, len: 5 })
        );
        assert_eq!(norm(0, &[0], 8, 1), "((0,),)");
        assert_eq!(norm(7, &[0, 3], 8, 1), "((0,), (3,))");
        assert_eq!(
            Chunks::normalize(ChunkSpec::auto(), &[5], 0, None),
            Err(ChunkError::ZeroItemSize)
        );
        assert_eq!(norm(5, &[5], 0, 1), "((5,),)");
        assert_eq!(
            Chunks::normalize([1, 2, 3], &[5, 5], 8, None),
            Err(ChunkError::NdimMismatch {
                expected: 2,
                got: 3
            })
        );
        assert_eq!(
            Chunks::normalize(ChunkSpec::explicit(vec![vec![]]), &[0], 8, None),
            Err(ChunkError::NoChunks { axis: 0 })
        );
        assert_eq!(
            Dim::try_from(-2),
            Err(ChunkError::NegativeSize { value: -2 })
        );
        assert_eq!(Dim::try_from(-1), Ok(Dim::Full));
        assert_eq!(Dim::try_from(7), Ok(Dim::Size(7)));
    }

    #[test]
    fn auto_with_empty_axes() {
        assert_eq!(norm(ChunkSpec::auto(), &[0, 10], 1, 5), "((0,), (5, 5))");
        assert_eq!(
            norm([Dim::Full, Dim::Auto], &[0, 10], 1, 5),
            "((0,), (5, 5))"
        );
        assert_eq!(norm(ChunkSpec::auto(), &[0], 1, 5), "((0,),)");
        assert_eq!(norm(ChunkSpec::auto(), &[], 1, 5), "()");
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let msg = ChunkError::SumMismatch {
            axis: 1,
            sum: 10,
            len: 11,
        }
        .to_string();
        assert!(
            msg.contains("axis 1") && msg.contains("10") && msg.contains("11"),
            "{msg}"
        );
        let msg = Chunks::normalize([1, 2, 3], &[5, 5], 8, None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("3 axes") && msg.contains("has 2"), "{msg}");
        let msg = parse_bytes("5 foos").unwrap_err().to_string();
        assert!(
            msg.contains("\"foos\" is not a byte unit") && msg.contains("128MiB"),
            "{msg}"
        );
        let msg = "1,-3".parse::<ChunkSpec>().unwrap_err().to_string();
        assert!(msg.contains("-3") && msg.contains("-1"), "{msg}");
    }

    // ---- previous chunks: dask's test vectors ---------------------------------------------------

    #[test]
    fn previous_single_element_tuple() {
        let prev = vec![vec![1; 500], vec![500; 1000]];
        let got = norm_prev(
            [Dim::Size(100), Dim::Auto],
            &[500, 500_000],
            8,
            DEFAULT_CHUNK_BYTES,
            prev,
        );
        assert_eq!(got.axis(0), &[100; 5]);
        assert_eq!(got.axis(1), &[167_500, 167_500, 165_000]);
    }

    #[test]
    fn previous_aligns_like_dask() {
        let regular = |n: usize, c: usize| Chunks::regular(&[n], &[c]).unwrap().axes().to_vec();
        let got = norm_prev(ChunkSpec::auto(), &[2000], 1, 600, regular(2000, 512));
        assert_eq!(got.axis(0), &[512, 512, 512, 464]);
        let got = norm_prev(ChunkSpec::auto(), &[2000], 1, 600, regular(2000, 128));
        assert_eq!(got.axis(0), &[512, 512, 512, 464]);
        let got = norm_prev(ChunkSpec::auto(), &[2000], 1, 1200, regular(2000, 512));
        assert_eq!(got.axis(0), &[1024, 976]);

        let prev = Chunks::regular(&[3, 10211, 10376], &[1, 512, 512]).unwrap();
        let got = norm_prev(
            ChunkSpec::auto(),
            &[3, 10211, 10376],
            4,
            1 << 20,
            prev.axes().to_vec(),
        );
        assert_eq!(got.axis(0), &[1, 1, 1]);
        for axis in [1, 2] {
            let sizes = got.axis(axis);
            assert!(
                sizes[..sizes.len() - 1].iter().all(|c| c % 512 == 0),
                "{got}"
            );
        }

        let got = norm_prev(
            ChunkSpec::auto(),
            &[48, 720, 1440],
            4,
            134_217_728,
            vec![vec![36, 12], vec![720], vec![1440]],
        );
        assert_eq!(got.to_string(), "((36, 12), (720,), (1440,))");
    }

    #[test]
    fn previous_test_auto_chunks() {
        let mut a = vec![1264; 6];
        a.push(1045);
        let prev = vec![a, vec![1264, 491]];
        let got = norm_prev(
            ChunkSpec::auto(),
            &[8629, 1755],
            4,
            DEFAULT_CHUNK_BYTES,
            prev,
        );
        assert_eq!(got.to_string(), "((8629,), (1755,))");
    }

    #[test]
    fn previous_shrinks_to_multiples_of_the_common_chunk() {
        // 1000-element previous chunks of float64, 1 KiB target (128 elements): reduce case.
        let prev = Chunks::regular(&[10_000], &[1000]).unwrap();
        let got =
            Chunks::normalize_with_previous(ChunkSpec::auto(), &[10_000], 8, Some(1024), &prev)
                .unwrap();
        assert!(got.chunksize()[0] * 8 <= 1024, "{got}");
        assert_eq!(got.axis(0).iter().sum::<usize>(), 10_000);
        assert_eq!(
            Chunks::normalize_with_previous(ChunkSpec::auto(), &[9], 8, None, &prev),
            Err(ChunkError::ShapeMismatch {
                left: vec![9],
                right: vec![10_000]
            })
        );
    }

    // ---- byte strings --------------------------------------------------------------------------

    #[test]
    fn parse_bytes_like_dask() {
        for (s, n) in [
            ("100", 100u64),
            ("100 MB", 100_000_000),
            ("100M", 100_000_000),
            ("5kB", 5000),
            ("5.4 kB", 5400),
            ("1kiB", 1024),
            ("1KiB", 1024),
            ("1Ki", 1024),
            ("1e6", 1_000_000),
            ("1e6 kB", 1_000_000_000),
            ("MB", 1_000_000),
            ("128MiB", 128 << 20),
            ("128mib", 128 << 20),
            ("1GB", 1_000_000_000),
            ("1GiB", 1 << 30),
            ("2TB", 2_000_000_000_000),
            ("1PiB", 1 << 50),
            ("10B", 10),
            ("10b", 10),
            ("0.5KiB", 512),
        ] {
            assert_eq!(parse_bytes(s), Ok(n), "{s}");
        }
        for s in [
            "5 foos", "", "  ", "-5MB", "1e400", "1.2.3kB", "kBB", "1kibb", "1EB", "nan", "inf",
        ] {
            assert!(
                matches!(parse_bytes(s), Err(ChunkError::BadByteString { .. })),
                "{s} -> {:?}",
                parse_bytes(s)
            );
        }
    }

    // ---- spec parsing --------------------------------------------------------------------------

    #[test]
    fn parse_specs() {
        let p = |s: &str| s.parse::<ChunkSpec>().unwrap();
        assert_eq!(p("100"), ChunkSpec::from(100));
        assert_eq!(p(" auto "), ChunkSpec::auto());
        assert_eq!(p("AUTO"), ChunkSpec::auto());
        assert_eq!(p("-1"), ChunkSpec::full());
        assert_eq!(p("128MiB"), ChunkSpec::bytes(128 << 20));
        assert_eq!(
            p("100,-1,auto"),
            ChunkSpec::per_axis(vec![Dim::Size(100), Dim::Full, Dim::Auto])
        );
        assert_eq!(
            p("100, none, full, 1GB"),
            ChunkSpec::per_axis(vec![
                Dim::Size(100),
                Dim::Full,
                Dim::Full,
                Dim::Bytes(1_000_000_000)
            ])
        );
        assert_eq!(
            p("(2,2,1),3"),
            ChunkSpec::per_axis(vec![Dim::Explicit(vec![2, 2, 1]), Dim::Size(3)])
        );
        assert_eq!(
            p("((2, 2, 1), (3,))"),
            ChunkSpec::explicit(vec![vec![2, 2, 1], vec![3]])
        );
        assert_eq!(
            p("[[2, 2, 1], [3]]"),
            ChunkSpec::explicit(vec![vec![2, 2, 1], vec![3]])
        );
        assert_eq!(p("((2, 2, 1),)"), ChunkSpec::explicit(vec![vec![2, 2, 1]]));
        assert_eq!(p("(3,)"), ChunkSpec::from([3]));
        assert_eq!(p("3,"), ChunkSpec::from([3]));
        assert_eq!(p("(2, 3)"), ChunkSpec::from([2, 3]));
        assert_eq!(p("()"), ChunkSpec::PerAxis(vec![]));
        assert_eq!("(2,2)".parse::<Dim>().unwrap(), Dim::Explicit(vec![2, 2]));
        for bad in [
            "", ",", "(,)", "1,,2", "(1,2", "1)", "abc1", "1.5", "-3", "(a,b)", "1,foo", "5 foos",
        ] {
            assert!(bad.parse::<ChunkSpec>().is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            "-3".parse::<ChunkSpec>(),
            Err(ChunkError::NegativeSize { value: -3 })
        );
        assert!(matches!(
            "5 foos".parse::<ChunkSpec>(),
            Err(ChunkError::BadByteString { .. })
        ));
    }

    #[test]
    fn spec_constructors() {
        assert_eq!(
            ChunkSpec::from([100, 50]),
            ChunkSpec::PerAxis(vec![Dim::Size(100), Dim::Size(50)])
        );
        assert_eq!(ChunkSpec::from(vec![100, 50]), ChunkSpec::from([100, 50]));
        assert_eq!(ChunkSpec::from(&[100, 50][..]), ChunkSpec::from([100, 50]));
        assert_eq!(
            ChunkSpec::from(vec![Dim::Auto]),
            ChunkSpec::per_axis(vec![Dim::Auto])
        );
        assert_eq!(ChunkSpec::from(Dim::Full), ChunkSpec::full());
        assert_eq!(ChunkSpec::default(), ChunkSpec::auto());
        assert_eq!(Dim::from(Some(3)), Dim::Size(3));
        assert_eq!(Dim::from(vec![1, 2]), Dim::Explicit(vec![1, 2]));
        let ch = c(vec![vec![2, 1], vec![3]]);
        assert_eq!(Chunks::normalize(&ch, &[3, 3], 8, None).unwrap(), ch);
        assert_eq!(Chunks::normalize(ch.clone(), &[3, 3], 8, None).unwrap(), ch);
        let spec = ChunkSpec::from(2);
        assert_eq!(
            Chunks::normalize(&spec, &[3], 8, None).unwrap().to_string(),
            "((2, 1),)"
        );
    }

    // ---- intersections and refinement ----------------------------------------------------------

    #[test]
    fn intersections_like_dask_old_to_new() {
        // dask's _intersect_1d docstring: old ((2, 2, 1), (5,)), new ((2, 3), (2, 2, 1)).
        let old = c(vec![vec![2, 2, 1], vec![5]]);
        let new = c(vec![vec![2, 3], vec![2, 2, 1]]);
        let pieces = intersections(&old, &new).unwrap();
        let simple = |axis: usize| -> Vec<(usize, Range<usize>, usize)> {
            pieces[axis]
                .iter()
                .map(|p| (p.old_block, p.old_range.clone(), p.new_block))
                .collect()
        };
        assert_eq!(simple(0), vec![(0, 0..2, 0), (1, 0..2, 1), (2, 0..1, 1)]);
        assert_eq!(simple(1), vec![(0, 0..2, 0), (0, 2..4, 1), (0, 4..5, 2)]);
        assert_eq!(pieces[0][2].new_range, 2..3);
        assert_eq!(
            intersections(&c(vec![vec![0]]), &c(vec![vec![0]])).unwrap(),
            vec![vec![Intersection {
                old_block: 0,
                old_range: 0..0,
                new_block: 0,
                new_range: 0..0
            }]]
        );
        assert!(matches!(
            intersections(&c(vec![vec![3]]), &c(vec![vec![4]])),
            Err(ChunkError::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn refinement() {
        let a = c(vec![vec![4, 4, 2], vec![6], vec![0]]);
        let b = c(vec![vec![5, 5], vec![3, 3], vec![0]]);
        assert_eq!(
            common_refinement(&a, &b).unwrap().to_string(),
            "((4, 1, 3, 2), (3, 3), (0,))"
        );
        assert_eq!(common_refinement(&a, &a).unwrap(), a);
        assert!(common_refinement(&a, &c(vec![vec![10]])).is_err());
    }

    // ---- properties ----------------------------------------------------------------------------

    fn arb_sizes(len: usize) -> BoxedStrategy<Vec<usize>> {
        if len == 0 {
            return Just(vec![0]).boxed();
        }
        // Cut points in 1..len, deduplicated.
        proptest::collection::btree_set(1..len.max(2), 0..len.min(8))
            .prop_map(move |cuts| {
                let mut sizes = Vec::new();
                let mut prev = 0;
                for cut in cuts.into_iter().filter(|&c| c < len) {
                    sizes.push(cut - prev);
                    prev = cut;
                }
                sizes.push(len - prev);
                sizes
            })
            .boxed()
    }

    fn arb_shape() -> impl Strategy<Value = Vec<usize>> {
        proptest::collection::vec(prop_oneof![1 => Just(0usize), 8 => 1usize..300], 0..5)
    }

    fn arb_chunks() -> impl Strategy<Value = Chunks> {
        arb_shape().prop_flat_map(|shape| {
            shape
                .into_iter()
                .map(arb_sizes)
                .collect::<Vec<_>>()
                .prop_map(|s| Chunks::new(s).unwrap())
        })
    }

    fn arb_dim(len: usize) -> BoxedStrategy<Dim> {
        prop_oneof![
            3 => (1usize..400).prop_map(Dim::Size),
            1 => Just(Dim::Full),
            3 => Just(Dim::Auto),
            2 => arb_sizes(len).prop_map(Dim::Explicit),
        ]
        .boxed()
    }

    /// A shape with a valid per-axis spec.
    fn arb_shape_and_dims() -> impl Strategy<Value = (Vec<usize>, Vec<Dim>)> {
        arb_shape().prop_flat_map(|shape| {
            let dims: Vec<_> = shape.iter().map(|&len| arb_dim(len)).collect();
            (Just(shape), dims)
        })
    }

    fn assert_valid(ch: &Chunks, shape: &[usize]) -> Result<(), TestCaseError> {
        prop_assert_eq!(ch.shape(), shape);
        for (axis, sizes) in ch.axes().iter().enumerate() {
            prop_assert_eq!(sizes.iter().sum::<usize>(), shape[axis]);
            if shape[axis] == 0 {
                prop_assert_eq!(sizes, &vec![0]);
            } else {
                prop_assert!(sizes.iter().all(|&s| s > 0));
            }
        }
        Ok(())
    }

    fn chunk_bytes(ch: &Chunks, itemsize: usize) -> u128 {
        ch.chunksize()
            .iter()
            .fold(itemsize as u128, |acc, &c| acc * c.max(1) as u128)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn normalized_chunks_are_valid_and_auto_respects_the_limit(
            (shape, dims) in arb_shape_and_dims(),
            itemsize in prop_oneof![Just(1usize), Just(4), Just(8), 1usize..33],
            limit in prop_oneof![1u64..100, 100u64..100_000, Just(DEFAULT_CHUNK_BYTES)],
        ) {
            let spec = ChunkSpec::PerAxis(dims.clone());
            let ch = Chunks::normalize(spec, &shape, itemsize, Some(limit)).unwrap();
            assert_valid(&ch, &shape)?;
            // Non-auto axes are exactly what was asked for.
            for (axis, dim) in dims.iter().enumerate() {
                let len = shape[axis];
                match dim {
                    Dim::Size(n) => {
                        let expected = regular_axis(axis, len, *n).unwrap();
                        prop_assert_eq!(ch.axis(axis), expected.as_slice());
                    }
                    Dim::Full => prop_assert_eq!(ch.axis(axis), &[len]),
                    Dim::Explicit(v) => prop_assert_eq!(ch.axis(axis), v.as_slice()),
                    Dim::Auto | Dim::Bytes(_) => {
                        // Auto axes are regular (one size, last partial).
                        let one_axis = Chunks::new(vec![ch.axis(axis).to_vec()]).unwrap();
                        prop_assert!(one_axis.is_regular());
                    }
                }
            }
            // A chunk fits the limit unless the fixed axes alone already exceed it.
            let fixed_bytes = dims.iter().enumerate()
                .filter(|(_, d)| !matches!(d, Dim::Auto | Dim::Bytes(_)))
                .fold(itemsize as u128, |acc, (axis, _)| acc * ch.chunksize()[axis].max(1) as u128);
            prop_assert!(chunk_bytes(&ch, itemsize) <= (limit as u128).max(fixed_bytes),
                "{} bytes > limit {} (fixed {})", chunk_bytes(&ch, itemsize), limit, fixed_bytes);
            // ... and about as large as allowed: the auto axes that are not whole share one size
            // c, and c + 2 on all of them would exceed the limit. (Not c + 1: like dask, c is the
            // floor of a floating-point root, which can land just below an exact integer root,
            // e.g. (2^21)^(1/3) = 127.99999999999997 gives 127 where 128 fits.)
            let sizes = ch.chunksize();
            let autos: Vec<usize> = (0..shape.len()).filter(|&a| dims[a] == Dim::Auto).collect();
            if let Some(&cut) = autos.iter().find(|&&a| sizes[a] < shape[a]) {
                let c = sizes[cut];
                let shared: Vec<usize> = autos.iter().copied().filter(|&a| sizes[a] == c).collect();
                let whole_or_c = |a: usize| sizes[a] == shape[a] || sizes[a] == c;
                prop_assert!(autos.iter().all(|&a| whole_or_c(a)), "{}", ch);
                let rest = (0..shape.len())
                    .filter(|a| !shared.contains(a))
                    .fold(itemsize as u128, |acc, a| acc * sizes[a].max(1) as u128);
                let grown = (c as u128 + 2).pow(shared.len() as u32) * rest;
                prop_assert!(grown > limit as u128, "auto axes could grow to {}: {}", c + 2, ch);
            }
        }

        #[test]
        fn uniform_specs_are_valid(
            shape in arb_shape(),
            size in 0usize..50,
            itemsize in 1usize..16,
            limit in 1u64..10_000,
        ) {
            let specs = [
                ChunkSpec::from(size),
                ChunkSpec::auto(),
                ChunkSpec::full(),
                ChunkSpec::bytes(limit),
            ];
            for spec in specs {
                match Chunks::normalize(spec.clone(), &shape, itemsize, None) {
                    Ok(ch) => assert_valid(&ch, &shape)?,
                    Err(e) => {
                        let zero = size == 0 && matches!(e, ChunkError::ZeroChunk { .. });
                        prop_assert!(zero, "{:?}: {}", spec, e);
                    }
                }
            }
        }

        #[test]
        fn previous_chunks_give_valid_chunks(
            previous in arb_chunks(),
            auto_mask in proptest::collection::vec(any::<bool>(), 5),
            itemsize in 1usize..9,
            limit in prop_oneof![1u64..100, 100u64..1_000_000],
        ) {
            let shape = previous.shape().to_vec();
            let dims: Vec<Dim> = (0..shape.len())
                .map(|a| match auto_mask[a] {
                    true => Dim::Auto,
                    false => Dim::Explicit(previous.axis(a).to_vec()),
                })
                .collect();
            let spec = ChunkSpec::PerAxis(dims);
            let ch = Chunks::normalize_with_previous(spec, &shape, itemsize, Some(limit), &previous)
                .unwrap();
            assert_valid(&ch, &shape)?;
        }

        #[test]
        fn display_parses_back(ch in arb_chunks()) {
            let spec: ChunkSpec = ch.to_string().parse().unwrap();
            prop_assert_eq!(Chunks::normalize(spec, ch.shape(), 8, None).unwrap(), ch.clone());
            let json = serde_json::to_string(&ch).unwrap();
            prop_assert_eq!(serde_json::from_str::<Chunks>(&json).unwrap(), ch);
        }

        #[test]
        fn blocks_tile_the_array(ch in arb_chunks()) {
            let blocks: Vec<_> = ch.blocks().collect();
            prop_assert_eq!(blocks.len(), ch.num_chunks());
            prop_assert!(blocks.windows(2).all(|w| w[0] < w[1]), "not C order");
            let volume = |b: &Vec<usize>| ch.block_shape(b).iter().product::<usize>();
            let total: usize = blocks.iter().map(volume).sum();
            prop_assert_eq!(total, ch.shape().iter().product::<usize>());
            for b in &blocks {
                let ranges = ch.block_ranges(b);
                for (axis, r) in ranges.iter().enumerate() {
                    prop_assert_eq!(r.len(), ch.block_shape(b)[axis]);
                    prop_assert_eq!(r.start, ch.offsets(axis)[b[axis]]);
                }
            }
            for axis in 0..ch.ndim() {
                for e in 0..ch.shape()[axis] {
                    let i = ch.block_index_of(axis, e).unwrap();
                    prop_assert!(ch.boundaries(axis)[i] <= e && e < ch.boundaries(axis)[i + 1]);
                }
                prop_assert_eq!(ch.block_index_of(axis, ch.shape()[axis]), None);
            }
        }

        #[test]
        fn intersections_cover_every_element_once(
            (old, new) in arb_shape().prop_flat_map(|shape| {
                let a: Vec<_> = shape.iter().map(|&l| arb_sizes(l)).collect();
                let b: Vec<_> = shape.iter().map(|&l| arb_sizes(l)).collect();
                (a, b).prop_map(|(a, b)| (Chunks::new(a).unwrap(), Chunks::new(b).unwrap()))
            })
        ) {
            let pieces = intersections(&old, &new).unwrap();
            prop_assert_eq!(pieces.len(), old.ndim());
            for (axis, axis_pieces) in pieces.iter().enumerate() {
                let len = old.shape()[axis];
                // Every element of the axis is covered exactly once, in order, and each piece
                // lands at the same global position in old and new coordinates.
                let mut pos = 0;
                for p in axis_pieces {
                    let old_start = old.offsets(axis)[p.old_block] + p.old_range.start;
                    let new_start = new.offsets(axis)[p.new_block] + p.new_range.start;
                    prop_assert_eq!(old_start, pos);
                    prop_assert_eq!(new_start, pos);
                    prop_assert_eq!(p.old_range.len(), p.new_range.len());
                    prop_assert!(p.old_range.end <= old.axis(axis)[p.old_block]);
                    prop_assert!(p.new_range.end <= new.axis(axis)[p.new_block]);
                    prop_assert!(len == 0 || !p.old_range.is_empty());
                    pos += p.old_range.len();
                }
                prop_assert_eq!(pos, len);
                // Every old and every new block is used, in order.
                let olds: Vec<_> = axis_pieces.iter().map(|p| p.old_block).collect();
                let news: Vec<_> = axis_pieces.iter().map(|p| p.new_block).collect();
                prop_assert!(olds.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1));
                prop_assert!(news.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1));
                prop_assert_eq!(olds.last().copied(), Some(old.numblocks()[axis] - 1));
                prop_assert_eq!(news.last().copied(), Some(new.numblocks()[axis] - 1));
            }

            // The refinement has exactly the union of the boundaries.
            let r = common_refinement(&old, &new).unwrap();
            for axis in 0..old.ndim() {
                let mut union: Vec<usize> =
                    old.boundaries(axis).iter().chain(new.boundaries(axis)).copied().collect();
                union.sort_unstable();
                union.dedup();
                if old.shape()[axis] == 0 {
                    union = vec![0, 0]; // the single empty chunk
                }
                prop_assert_eq!(r.boundaries(axis), union.as_slice());
                prop_assert_eq!(intersections(&r, &old).unwrap()[axis].len(), r.numblocks()[axis]);
            }
        }

        #[test]
        fn transpose_round_trips(ch in arb_chunks(), seed in any::<u64>()) {
            let n = ch.ndim();
            let mut perm: Vec<usize> = (0..n).collect();
            // Deterministic shuffle from the seed.
            let mut s = seed;
            for i in (1..n).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                perm.swap(i, (s >> 33) as usize % (i + 1));
            }
            let t = ch.transpose(&perm).unwrap();
            let mut inverse = vec![0; n];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
                prop_assert_eq!(t.axis(i), ch.axis(p));
            }
            prop_assert_eq!(t.transpose(&inverse).unwrap(), ch);
        }

        #[test]
        fn parse_bytes_never_panics(s in "\\PC{0,12}") {
            let _ = parse_bytes(&s);
            let _ = s.parse::<ChunkSpec>();
        }
    }
}
