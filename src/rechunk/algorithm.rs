//! The rechunker planning algorithm, as pure functions: given an array's shape, its source and
//! target chunks, the item size and a memory budget, choose the chunks that each copy stage
//! reads, holds in an intermediate array, and writes.
//!
//! This module owns [`consolidate_chunks`], [`calculate_stage_chunks`], the IO-operation count
//! ([`axis_io_ops`], [`io_ops`]), [`rechunking_plan`] and [`multistage_rechunking_plan`], and
//! their outcomes: [`StagePlan`], [`Plan`], [`PlanWarning`] and [`PlanError`]. It does no I/O and
//! builds no task graphs; turning a plan into copy tasks belongs elsewhere in `rechunk`.
//!
//! It is a port of `rechunker/algorithm.py` (rechunker 0.5.4). It returns the same plans, emits
//! the same warning (with the same text) and fails in the same cases; the error messages are
//! our own. `tests/rechunk_parity.rs`, run by `scripts/rechunker-parity.sh`, checks this against
//! rechunker itself over thousands of generated inputs.
//!
//! # Terms
//! Chunk shapes hold one length per axis, in elements; the last chunk along an axis may be
//! partial. A chunk takes `itemsize * product(lengths)` bytes ([`chunk_bytes`]). A stage copies
//! `read_chunks → int_chunks → write_chunks`, and a multi-stage plan chains stages.
//!
//! # Invariants of a returned plan
//! - in every stage, `int_chunks == min(read_chunks, write_chunks)` elementwise;
//! - stage `i`'s `write_chunks` are stage `i + 1`'s `read_chunks`;
//! - the read, intermediate and write chunks of every stage fit in `max_mem`;
//! - the smallest intermediate chunk takes at least `min_mem` bytes, unless the plan carries
//!   [`PlanWarning::ExcessiveIo`];
//! - with write consolidation, each axis of the final write chunks is a multiple of the target
//!   chunk length or the whole axis, so no write splits a target chunk.
//!
//! # Arithmetic, and where it departs from rechunker
//! - Chunk growth divides integers exactly (`max_mem / bytes`, rounded down); rechunker divides
//!   in `f64`. The two agree while `max_mem` stays below 2^52 bytes (4 PiB). Above that,
//!   rechunker can round past `max_mem` (and then trips its own `assert headroom >= 1`); this
//!   port never does.
//! - IO counts are exact: rechunker's `ceil(remainder / chunk)` is in `f64`, which agrees while
//!   the least common multiple of a source and a target chunk length stays below 2^53.
//! - Byte and IO counts are `u128`; byte counts saturate at `u128::MAX`, which every comparison
//!   against a `u64` limit still gets right.
//! - Intermediate stage chunks follow NumPy's `geomspace` recipe step by step in `f64`, with
//!   [`f64::log10`] and [`f64::powf`] (the platform libm: glibc on Linux). This reproduces
//!   float artifacts such as `(64, 1) → (1, 64)` in two stages giving `(7, 7)`. NumPy built for
//!   AVX-512 switches `log10` and `power` to SVML kernels whose last-bit differences move the
//!   floor in about 1% of such calls (and change about 2% of generated multi-stage plans), so
//!   rechunker's own plans differ between machines; parity is defined against NumPy's libm
//!   path.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The search in [`multistage_rechunking_plan`] tries `1..MAX_STAGES` stages (at most 99).
pub const MAX_STAGES: usize = 100;

/// How far consolidation may grow a chunk along one axis (one entry of `chunk_limits` in
/// [`consolidate_chunks`]; `None` there leaves the axis as it is).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChunkLimit {
    /// Grow up to the whole axis, whatever the chunk length (rechunker's `-1`).
    Shape,
    /// Grow up to this many elements. The limit must be at least the chunk length, unless it
    /// exceeds the axis length, which means the whole axis.
    Max(u64),
}

/// Whether [`multistage_rechunking_plan`] may grow the source chunks it reads and the target
/// chunks it writes (by whole multiples, within `max_mem`) to make fewer, larger IO operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Consolidation {
    /// Grow read chunks along the axes where the write chunks are larger.
    pub reads: bool,
    /// Grow write chunks by multiples of the target chunks, up to the whole axis.
    pub writes: bool,
}

impl Consolidation {
    /// Consolidate reads and writes (rechunker's default).
    pub const BOTH: Self = Self {
        reads: true,
        writes: true,
    };
    /// Read source chunks and write target chunks as they are.
    pub const NONE: Self = Self {
        reads: false,
        writes: false,
    };
}

impl Default for Consolidation {
    /// [`Consolidation::BOTH`], as in rechunker.
    fn default() -> Self {
        Self::BOTH
    }
}

/// One stage of a rechunk plan: read `read_chunks`, split them into `int_chunks` (stored in an
/// intermediate array when needed), and write `write_chunks`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StagePlan {
    /// The chunk shape read from this stage's source.
    pub read_chunks: Vec<u64>,
    /// The intermediate chunk shape: `min(read_chunks, write_chunks)` on each axis.
    pub int_chunks: Vec<u64>,
    /// The chunk shape written to this stage's destination.
    pub write_chunks: Vec<u64>,
}

impl StagePlan {
    /// Whether this stage needs an intermediate array. It does not when `read_chunks ==
    /// int_chunks` (no read chunk is longer than a write chunk on any axis): then rechunker's
    /// `api.py` copies straight from source to destination, one task per write chunk.
    pub fn needs_intermediate(&self) -> bool {
        self.read_chunks != self.int_chunks
    }
}

/// A multi-stage rechunk plan: stages to run in order, and what the search warned about.
///
/// Serialised with serde as
/// `{"stages": [{"read_chunks": [..], "int_chunks": [..], "write_chunks": [..]}], "warnings": ["..."]}`,
/// each warning as its message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The stages; stage `i`'s `write_chunks` are stage `i + 1`'s `read_chunks`.
    pub stages: Vec<StagePlan>,
    /// Warnings from the search (empty for a plan that met every requirement).
    pub warnings: Vec<PlanWarning>,
}

/// Something a plan could not achieve, though it is still usable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PlanWarning {
    /// Adding stages stopped reducing IO before the intermediate chunks reached `min_mem`, so
    /// the plan has fewer stages and smaller intermediates than asked for (rechunker's
    /// `ExcessiveIOWarning`). The message is rechunker's, word for word.
    ExcessiveIo {
        /// Bytes in the smallest intermediate chunk of the rejected plan, which had one stage
        /// more than the plan returned (the number rechunker reports).
        smallest_int_bytes: u64,
        /// The requested minimum intermediate chunk size, in bytes.
        min_mem: u64,
        /// The memory limit per chunk, in bytes.
        max_mem: u64,
    },
}

const EXCESSIVE_IO_HEAD: &str = "Search for multi-stage rechunking plan terminated before \
achieving the minimum memory requirement due to increasing IO requirements. Smallest \
intermediates have size ";
const EXCESSIVE_IO_MIN: &str = ". Consider decreasing min_mem (";
const EXCESSIVE_IO_MAX: &str = ") or increasing max_mem (";
const EXCESSIVE_IO_TAIL: &str = ") to find a more efficient plan.";

impl fmt::Display for PlanWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ExcessiveIo {
                smallest_int_bytes,
                min_mem,
                max_mem,
            } => write!(
                f,
                "{EXCESSIVE_IO_HEAD}{smallest_int_bytes}{EXCESSIVE_IO_MIN}{min_mem}\
                 {EXCESSIVE_IO_MAX}{max_mem}{EXCESSIVE_IO_TAIL}"
            ),
        }
    }
}

impl PlanWarning {
    /// Reads back a warning from its [`Display`](fmt::Display) message.
    fn parse(message: &str) -> Option<Self> {
        let rest = message.strip_prefix(EXCESSIVE_IO_HEAD)?;
        let (smallest, rest) = rest.split_once(EXCESSIVE_IO_MIN)?;
        let (min_mem, rest) = rest.split_once(EXCESSIVE_IO_MAX)?;
        let max_mem = rest.strip_suffix(EXCESSIVE_IO_TAIL)?;
        Some(Self::ExcessiveIo {
            smallest_int_bytes: smallest.parse().ok()?,
            min_mem: min_mem.parse().ok()?,
            max_mem: max_mem.parse().ok()?,
        })
    }
}

impl Serialize for PlanWarning {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PlanWarning {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let message = String::deserialize(deserializer)?;
        Self::parse(&message).ok_or_else(|| {
            serde::de::Error::custom(format!("not a rechunk plan warning: {message:?}"))
        })
    }
}

/// Which chunk-shape argument a [`PlanError::WrongLength`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChunksArg {
    /// `source_chunks` of a plan.
    SourceChunks,
    /// `target_chunks` of a plan.
    TargetChunks,
    /// `chunks` of [`consolidate_chunks`].
    Chunks,
    /// `chunk_limits` of [`consolidate_chunks`].
    ChunkLimits,
    /// `write_chunks` of [`calculate_stage_chunks`] (compared with `read_chunks`).
    WriteChunks,
}

impl fmt::Display for ChunksArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SourceChunks => "source_chunks",
            Self::TargetChunks => "target_chunks",
            Self::Chunks => "chunks",
            Self::ChunkLimits => "chunk_limits",
            Self::WriteChunks => "write_chunks",
        })
    }
}

/// Why no plan (or no consolidated chunk shape) could be made. Each variant is one of
/// rechunker's error cases; the messages say what was wrong and what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A chunk shape does not have one entry per array axis.
    #[error("{argument} has {len} entries but the array has {ndim} axes: give one per axis")]
    WrongLength {
        /// The argument with the wrong length.
        argument: ChunksArg,
        /// Its length.
        len: usize,
        /// The number of axes it should have.
        ndim: usize,
    },
    /// One source chunk does not fit in `max_mem`.
    #[error(
        "a source chunk takes {chunk_bytes} bytes, more than max_mem ({max_mem} bytes): raise \
         max_mem to at least {chunk_bytes}, or rewrite the source with smaller chunks"
    )]
    SourceChunkExceedsMemory {
        /// Bytes in one source chunk.
        chunk_bytes: u128,
        /// The memory limit, in bytes.
        max_mem: u64,
    },
    /// One target chunk does not fit in `max_mem`.
    #[error(
        "a target chunk takes {chunk_bytes} bytes, more than max_mem ({max_mem} bytes): choose \
         smaller target chunks, or raise max_mem to at least {chunk_bytes}"
    )]
    TargetChunkExceedsMemory {
        /// Bytes in one target chunk.
        chunk_bytes: u128,
        /// The memory limit, in bytes.
        max_mem: u64,
    },
    /// The chunks given to [`consolidate_chunks`] do not fit in `max_mem` to begin with.
    #[error(
        "the chunks to consolidate take {chunk_bytes} bytes, more than max_mem ({max_mem} \
         bytes): consolidation only grows chunks, so start from chunks that fit, or raise max_mem"
    )]
    ChunkExceedsMemory {
        /// Bytes in one chunk.
        chunk_bytes: u128,
        /// The memory limit, in bytes.
        max_mem: u64,
    },
    /// `max_mem < min_mem`.
    #[error(
        "max_mem ({max_mem} bytes) is smaller than min_mem ({min_mem} bytes): lower min_mem or \
         raise max_mem (they may be equal)"
    )]
    MaxMemBelowMinMem {
        /// The memory limit, in bytes.
        max_mem: u64,
        /// The requested minimum intermediate chunk size, in bytes.
        min_mem: u64,
    },
    /// A chunk limit is below the chunk length it limits (and not beyond the axis).
    #[error(
        "chunk limit {limit} on axis {axis} is below the chunk length {chunk} (the axis has \
         {shape} elements): a limit must be at least the chunk length; use ChunkLimit::Shape to \
         allow the whole axis, or None to leave the axis alone"
    )]
    InvalidChunkLimits {
        /// The axis.
        axis: usize,
        /// The limit given for it.
        limit: u64,
        /// The chunk length on that axis.
        chunk: u64,
        /// The axis length.
        shape: u64,
    },
    /// A target chunk is longer than its axis, which write consolidation does not accept
    /// (rechunker reports this as invalid chunk limits).
    #[error(
        "target chunk length {chunk} on axis {axis} is longer than the axis ({shape} elements): \
         clip the target chunk to the axis length, or turn write consolidation off"
    )]
    TargetChunkExceedsShape {
        /// The axis.
        axis: usize,
        /// The target chunk length on that axis.
        chunk: u64,
        /// The axis length.
        shape: u64,
    },
    /// A chunk shape has a zero length.
    #[error("chunk shape {chunks:?} has a zero length: every chunk length must be at least 1")]
    ZeroChunk {
        /// The offending chunk shape.
        chunks: Vec<u64>,
    },
    /// The item size is zero, so chunk sizes in bytes are meaningless.
    #[error("itemsize is 0: an array element must take at least one byte")]
    ZeroItemsize,
    /// Consolidation reached an axis of length zero.
    #[error(
        "axis {axis} has length 0, so its chunks cannot be consolidated: skip rechunking empty \
         arrays, or turn consolidation off"
    )]
    EmptyAxis {
        /// The empty axis.
        axis: usize,
    },
    /// The stage search ran out of stages without reaching `min_mem` and without IO growing
    /// (rechunker raises an `AssertionError`; it happens for arrays with an empty axis).
    #[error(
        "no plan with fewer than {max_stages} stages has intermediate chunks of at least \
         min_mem ({min_mem} bytes) within max_mem ({max_mem} bytes): lower min_mem (0 always \
         gives a single-stage plan), and check the array has no empty axis"
    )]
    NoFeasiblePlan {
        /// The requested minimum intermediate chunk size, in bytes.
        min_mem: u64,
        /// The memory limit, in bytes.
        max_mem: u64,
        /// [`MAX_STAGES`].
        max_stages: usize,
    },
}

/// Bytes in one chunk, `itemsize * product(chunks)`, saturating at `u128::MAX`.
///
/// ```
/// use chunkflow::rechunk::algorithm::chunk_bytes;
///
/// assert_eq!(chunk_bytes(&[31, 721, 1440], 4), 128_741_760);
/// ```
pub fn chunk_bytes(chunks: &[u64], itemsize: u64) -> u128 {
    chunks.iter().fold(u128::from(itemsize), |bytes, &len| {
        bytes.saturating_mul(u128::from(len))
    })
}

fn check_len(argument: ChunksArg, len: usize, ndim: usize) -> Result<(), PlanError> {
    if len == ndim {
        Ok(())
    } else {
        Err(PlanError::WrongLength {
            argument,
            len,
            ndim,
        })
    }
}

/// The error for a chunk of zero bytes: a zero item size or a zero chunk length.
fn zero_bytes_error(chunks: &[u64], itemsize: u64) -> PlanError {
    if itemsize == 0 {
        PlanError::ZeroItemsize
    } else {
        PlanError::ZeroChunk {
            chunks: chunks.to_vec(),
        }
    }
}

/// Grows `chunks` by whole multiples until one chunk nearly fills `max_mem` bytes, working from
/// the last axis to axis 0 (rechunker's `consolidate_chunks`).
///
/// `chunk_limits` caps each axis: `None` for the whole list means one limit per axis equal to
/// the axis length; a `None` entry leaves that axis alone; see [`ChunkLimit`] for the rest.
/// On each limited axis, the chunk becomes the limit if the result takes *strictly* less than
/// `max_mem`, else the largest multiple of the original length that fits. So an exact fit is
/// rejected, and a chunk longer than the axis shrinks to the axis. The result always fits in
/// `max_mem`.
///
/// # Errors
/// [`PlanError::WrongLength`], [`PlanError::InvalidChunkLimits`] (with the default limits,
/// this includes a chunk longer than its axis), [`PlanError::ChunkExceedsMemory`], and
/// [`PlanError::ZeroItemsize`], [`PlanError::ZeroChunk`] or [`PlanError::EmptyAxis`] when a
/// chunk would take zero bytes.
///
/// ```
/// use chunkflow::rechunk::algorithm::{ChunkLimit, consolidate_chunks};
///
/// // 1 MB holds the whole 1000 × 100 array of 8-byte items.
/// let grown = consolidate_chunks(&[1000, 100], &[10, 10], 8, 1_000_000, None)?;
/// assert_eq!(grown, vec![1000, 100]);
/// // 100 kB: axis 1 grows to the whole axis, then axis 0 by a multiple of 10 (96 kB).
/// let grown = consolidate_chunks(&[1000, 100], &[10, 10], 8, 100_000, None)?;
/// assert_eq!(grown, vec![120, 100]);
/// // An exact fit is rejected: 10 elements of 4 bytes would fill max_mem = 40 exactly.
/// assert_eq!(consolidate_chunks(&[10], &[3], 4, 40, None)?, vec![9]);
/// // Leave axis 1 alone, let axis 0 grow to the whole axis.
/// let limits = [Some(ChunkLimit::Shape), None];
/// let grown = consolidate_chunks(&[1000, 100], &[10, 10], 8, 100_000, Some(&limits))?;
/// assert_eq!(grown, vec![1000, 10]);
/// # Ok::<(), chunkflow::rechunk::algorithm::PlanError>(())
/// ```
pub fn consolidate_chunks(
    shape: &[u64],
    chunks: &[u64],
    itemsize: u64,
    max_mem: u64,
    chunk_limits: Option<&[Option<ChunkLimit>]>,
) -> Result<Vec<u64>, PlanError> {
    let ndim = shape.len();
    check_len(ChunksArg::Chunks, chunks.len(), ndim)?;
    if let Some(limits) = chunk_limits {
        check_len(ChunksArg::ChunkLimits, limits.len(), ndim)?;
    }
    let limit_on = |axis: usize| match chunk_limits {
        None => Some(ChunkLimit::Max(shape[axis])),
        Some(limits) => limits[axis],
    };
    let mut upper_bounds: Vec<Option<u64>> = Vec::with_capacity(ndim);
    for axis in 0..ndim {
        let (chunk, len) = (chunks[axis], shape[axis]);
        upper_bounds.push(match limit_on(axis) {
            None => None,
            Some(ChunkLimit::Shape) => Some(len),
            Some(ChunkLimit::Max(limit)) if chunk <= limit && limit <= len => Some(limit),
            Some(ChunkLimit::Max(limit)) if limit > len => Some(len),
            Some(ChunkLimit::Max(limit)) => {
                return Err(PlanError::InvalidChunkLimits {
                    axis,
                    limit,
                    chunk,
                    shape: len,
                });
            }
        });
    }

    let max_bytes = u128::from(max_mem);
    let mut bytes = chunk_bytes(chunks, itemsize);
    if bytes > max_bytes {
        return Err(PlanError::ChunkExceedsMemory {
            chunk_bytes: bytes,
            max_mem,
        });
    }
    if bytes == 0 {
        return Err(zero_bytes_error(chunks, itemsize));
    }

    let mut grown = chunks.to_vec();
    for axis in (0..ndim).rev() {
        let Some(upper_bound) = upper_bounds[axis] else {
            continue;
        };
        grown[axis] = upper_bound;
        let bytes_at_bound = chunk_bytes(&grown, itemsize);
        if bytes_at_bound == 0 {
            return Err(PlanError::EmptyAxis { axis });
        }
        if bytes_at_bound < max_bytes {
            bytes = bytes_at_bound;
        } else {
            // `bytes` is the chunk with this axis still at its original length, and it fits.
            let multiple = max_bytes / bytes;
            let larger = u128::from(chunks[axis]).saturating_mul(multiple);
            grown[axis] = larger.min(u128::from(upper_bound)) as u64;
            bytes = chunk_bytes(&grown, itemsize);
        }
        debug_assert!(bytes <= max_bytes, "consolidated chunk exceeds max_mem");
    }
    Ok(grown)
}

/// The chunk shapes between the stages of a `stage_count`-stage plan: `stage_count - 1` shapes
/// spaced geometrically from `read_chunks` to `write_chunks`, each length rounded down
/// (rechunker's `calculate_stage_chunks`, i.e. `floor(numpy.geomspace(read, write,
/// stage_count + 1)[1:-1])`).
///
/// The arithmetic is NumPy's, step by step in `f64`, so float artifacts come out as in
/// rechunker: an axis whose read and write lengths are both 706 comes out as 705. A
/// `stage_count` of 0 or 1 gives no shapes.
///
/// # Errors
/// [`PlanError::WrongLength`] if the shapes differ in length, [`PlanError::ZeroChunk`] if
/// either has a zero length.
///
/// ```
/// use chunkflow::rechunk::algorithm::calculate_stage_chunks;
///
/// let mids = calculate_stage_chunks(&[1_000_000, 1], &[1, 1_000_000], 3)?;
/// assert_eq!(mids, vec![vec![10_000, 100], vec![100, 10_000]]);
/// // Rounding down after log10/pow: not (8, 8).
/// assert_eq!(calculate_stage_chunks(&[64, 1], &[1, 64], 2)?, vec![vec![7, 7]]);
/// # Ok::<(), chunkflow::rechunk::algorithm::PlanError>(())
/// ```
pub fn calculate_stage_chunks(
    read_chunks: &[u64],
    write_chunks: &[u64],
    stage_count: usize,
) -> Result<Vec<Vec<u64>>, PlanError> {
    check_len(
        ChunksArg::WriteChunks,
        write_chunks.len(),
        read_chunks.len(),
    )?;
    for chunks in [read_chunks, write_chunks] {
        if chunks.contains(&0) {
            return Err(PlanError::ZeroChunk {
                chunks: chunks.to_vec(),
            });
        }
    }
    if stage_count < 2 {
        return Ok(Vec::new());
    }
    // numpy.geomspace → logspace → linspace, with `div = num - 1 = stage_count`.
    let div = stage_count as f64;
    let log_start: Vec<f64> = read_chunks.iter().map(|&c| (c as f64).log10()).collect();
    let delta: Vec<f64> = write_chunks
        .iter()
        .zip(&log_start)
        .map(|(&c, &start)| (c as f64).log10() - start)
        .collect();
    let step: Vec<f64> = delta.iter().map(|&d| d / div).collect();
    // linspace's special case for a zero step (any axis) changes the rounding on all axes.
    let any_step_zero = step.contains(&0.0); // -0.0 == 0.0, as in NumPy
    let stages = (1..stage_count)
        .map(|k| {
            let k = k as f64;
            log_start
                .iter()
                .zip(&delta)
                .zip(&step)
                .map(|((&start, &d), &s)| {
                    let offset = if any_step_zero { (k / div) * d } else { k * s };
                    10f64.powf(offset + start).floor() as u64
                })
                .collect()
        })
        .collect();
    Ok(stages)
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The number of pieces an axis of `size` elements splits into when chunked by both
/// `source_chunk` and `target_chunk`: each piece is one read/write operation of a single-stage
/// copy along that axis (rechunker's `_count_intermediate_chunks`).
///
/// Returns `None` if a chunk length is zero.
///
/// ```
/// use chunkflow::rechunk::algorithm::axis_io_ops;
///
/// // 0 1 2 3 4|5 6|7 8 9|10 11 12 13|14|15 16 17 18 19: chunks of 5 and of 7 over 20 elements.
/// assert_eq!(axis_io_ops(5, 7, 20), Some(6));
/// ```
pub fn axis_io_ops(source_chunk: u64, target_chunk: u64, size: u64) -> Option<u128> {
    if source_chunk == 0 || target_chunk == 0 {
        return None;
    }
    let (source, target, size) = (
        u128::from(source_chunk),
        u128::from(target_chunk),
        u128::from(size),
    );
    let lcm = source / gcd(source, target) * target;
    let pieces_per_lcm = lcm / source + lcm / target - 1;
    let (whole, remainder) = (size / lcm, size % lcm);
    let pieces_in_remainder = if remainder == 0 {
        0
    } else {
        remainder.div_ceil(source) + remainder.div_ceil(target) - 1
    };
    // Fits: whole * pieces_per_lcm <= size * 2.
    Some(whole * pieces_per_lcm + pieces_in_remainder)
}

/// The number of read/write operations of a single-stage copy of an array of `shape` from
/// `source_chunks` to `target_chunks`: the product of [`axis_io_ops`] over the axes
/// (rechunker's `calculate_single_stage_io_ops`). The multi-stage search stops when the sum of
/// this over the stages grows.
///
/// Returns `None` if the lengths differ, a chunk length is zero, or the count overflows `u128`
/// (only possible for arrays of more than about 10^38 elements).
///
/// ```
/// use chunkflow::rechunk::algorithm::io_ops;
///
/// assert_eq!(io_ops(&[20, 10], &[5, 10], &[7, 10]), Some(6));
/// // Every element is its own piece when a column chunking meets a row chunking.
/// assert_eq!(io_ops(&[100, 100], &[100, 1], &[1, 100]), Some(10_000));
/// ```
pub fn io_ops(shape: &[u64], source_chunks: &[u64], target_chunks: &[u64]) -> Option<u128> {
    if source_chunks.len() != shape.len() || target_chunks.len() != shape.len() {
        return None;
    }
    shape
        .iter()
        .zip(source_chunks)
        .zip(target_chunks)
        .try_fold(1u128, |total, ((&size, &source), &target)| {
            total.checked_mul(axis_io_ops(source, target, size)?)
        })
}

/// Plans a single-stage rechunk: the classic "push/pull consolidated" plan that rechunker's
/// `rechunk()` runs (rechunker's `rechunking_plan`). It is
/// [`multistage_rechunking_plan`] with `min_mem = itemsize`, which always succeeds with one
/// stage and no warning.
///
/// # Errors
/// As [`multistage_rechunking_plan`] (except [`PlanError::NoFeasiblePlan`], which cannot
/// happen here).
///
/// ```
/// use chunkflow::rechunk::algorithm::{Consolidation, rechunking_plan};
///
/// // Map chunks to time series: read 120 maps at a time, write 10 × 1000 columns.
/// let stage = rechunking_plan(
///     &[10_000, 1000, 1000],
///     &[10, 1000, 1000],
///     &[10_000, 10, 10],
///     4,
///     500_000_000,
///     Consolidation::BOTH,
/// )?;
/// assert_eq!(stage.read_chunks, vec![120, 1000, 1000]);
/// assert_eq!(stage.int_chunks, vec![120, 10, 1000]);
/// assert_eq!(stage.write_chunks, vec![10_000, 10, 1000]);
/// assert!(stage.needs_intermediate());
/// # Ok::<(), chunkflow::rechunk::algorithm::PlanError>(())
/// ```
pub fn rechunking_plan(
    shape: &[u64],
    source_chunks: &[u64],
    target_chunks: &[u64],
    itemsize: u64,
    max_mem: u64,
    consolidation: Consolidation,
) -> Result<StagePlan, PlanError> {
    let mut plan = multistage_rechunking_plan(
        shape,
        source_chunks,
        target_chunks,
        itemsize,
        itemsize,
        max_mem,
        consolidation,
    )?;
    debug_assert!(plan.stages.len() == 1 && plan.warnings.is_empty());
    Ok(plan.stages.swap_remove(0))
}

/// Plans a rechunk that may go through several intermediate chunk shapes, so that no
/// intermediate chunk is smaller than `min_mem` bytes and no chunk larger than `max_mem` bytes
/// (rechunker's `multistage_rechunking_plan`).
///
/// 1. Checks the arguments: one chunk length per axis, source and target chunks within
///    `max_mem`, `min_mem <= max_mem`.
/// 2. Write chunks: the target chunks, grown by [`consolidate_chunks`] if
///    `consolidation.writes`.
/// 3. Read chunks: the source chunks, grown (if `consolidation.reads`) along the axes where the
///    write chunks are larger, up to the write chunk length.
/// 4. For `n` in `1..MAX_STAGES`, spaces `n - 1` shapes geometrically between them
///    ([`calculate_stage_chunks`]); stage `k` reads `pre_k`, writes `post_k`, and holds
///    `min(pre_k, post_k)`. Returns the first plan whose smallest intermediate reaches
///    `min_mem`. If the total [`io_ops`] grows from one `n` to the next, returns the previous
///    plan with [`PlanWarning::ExcessiveIo`].
///
/// For good plans, `max_mem` should be well above `min_mem` (say 10×).
///
/// # Errors
/// In the order checked: [`PlanError::WrongLength`],
/// [`PlanError::SourceChunkExceedsMemory`], [`PlanError::TargetChunkExceedsMemory`],
/// [`PlanError::MaxMemBelowMinMem`]; then [`PlanError::TargetChunkExceedsShape`],
/// [`PlanError::ZeroChunk`], [`PlanError::ZeroItemsize`] or [`PlanError::EmptyAxis`] from
/// consolidation and stage spacing; and [`PlanError::NoFeasiblePlan`] if the search runs out of
/// stages.
///
/// ```
/// use chunkflow::rechunk::algorithm::{Consolidation, StagePlan, multistage_rechunking_plan};
///
/// // ERA5: hourly global maps (31 hours per chunk) to 10 × 10 point time series, f4.
/// let plan = multistage_rechunking_plan(
///     &[350_640, 721, 1440],
///     &[31, 721, 1440],
///     &[350_640, 10, 10],
///     4,
///     25_000_000,
///     500_000_000,
///     Consolidation::BOTH,
/// )?;
/// let stage = |r: [u64; 3], i: [u64; 3], w: [u64; 3]| StagePlan {
///     read_chunks: r.to_vec(),
///     int_chunks: i.to_vec(),
///     write_chunks: w.to_vec(),
/// };
/// assert_eq!(plan.stages, vec![
///     stage([93, 721, 1440], [93, 173, 396], [1447, 173, 396]),
///     stage([1447, 173, 396], [1447, 41, 109], [22528, 41, 109]),
///     stage([22528, 41, 109], [22528, 10, 30], [350_640, 10, 30]),
/// ]);
/// assert!(plan.warnings.is_empty());
/// # Ok::<(), chunkflow::rechunk::algorithm::PlanError>(())
/// ```
pub fn multistage_rechunking_plan(
    shape: &[u64],
    source_chunks: &[u64],
    target_chunks: &[u64],
    itemsize: u64,
    min_mem: u64,
    max_mem: u64,
    consolidation: Consolidation,
) -> Result<Plan, PlanError> {
    let ndim = shape.len();
    check_len(ChunksArg::SourceChunks, source_chunks.len(), ndim)?;
    check_len(ChunksArg::TargetChunks, target_chunks.len(), ndim)?;
    let max_bytes = u128::from(max_mem);
    let source_bytes = chunk_bytes(source_chunks, itemsize);
    if source_bytes > max_bytes {
        return Err(PlanError::SourceChunkExceedsMemory {
            chunk_bytes: source_bytes,
            max_mem,
        });
    }
    let target_bytes = chunk_bytes(target_chunks, itemsize);
    if target_bytes > max_bytes {
        return Err(PlanError::TargetChunkExceedsMemory {
            chunk_bytes: target_bytes,
            max_mem,
        });
    }
    if max_mem < min_mem {
        return Err(PlanError::MaxMemBelowMinMem { max_mem, min_mem });
    }

    let write_chunks = if consolidation.writes {
        consolidate_chunks(shape, target_chunks, itemsize, max_mem, None).map_err(
            |err| match err {
                PlanError::InvalidChunkLimits {
                    axis, chunk, shape, ..
                } => PlanError::TargetChunkExceedsShape { axis, chunk, shape },
                other => other,
            },
        )?
    } else {
        target_chunks.to_vec()
    };
    let read_chunks = if consolidation.reads {
        let limits: Vec<Option<ChunkLimit>> = source_chunks
            .iter()
            .zip(&write_chunks)
            .map(|(&source, &write)| (write > source).then_some(ChunkLimit::Max(write)))
            .collect();
        consolidate_chunks(shape, source_chunks, itemsize, max_mem, Some(&limits))?
    } else {
        source_chunks.to_vec()
    };

    let mut previous: Option<(u128, Vec<StagePlan>)> = None;
    for stage_count in 1..MAX_STAGES {
        let stages = stages_between(&read_chunks, &write_chunks, stage_count)?;
        let smallest_int_bytes = stages
            .iter()
            .map(|stage| chunk_bytes(&stage.int_chunks, itemsize))
            .min()
            .expect("a plan has at least one stage");
        if smallest_int_bytes >= u128::from(min_mem) {
            return Ok(Plan {
                stages,
                warnings: Vec::new(),
            });
        }
        let ops = total_io_ops(shape, &stages);
        match previous {
            Some((previous_ops, previous_stages)) if ops > previous_ops => {
                let warning = PlanWarning::ExcessiveIo {
                    // Below min_mem, so it fits in a u64.
                    smallest_int_bytes: smallest_int_bytes as u64,
                    min_mem,
                    max_mem,
                };
                return Ok(Plan {
                    stages: previous_stages,
                    warnings: vec![warning],
                });
            }
            _ => previous = Some((ops, stages)),
        }
    }
    Err(PlanError::NoFeasiblePlan {
        min_mem,
        max_mem,
        max_stages: MAX_STAGES,
    })
}

/// The stages of a `stage_count`-stage plan from `read_chunks` to `write_chunks`.
fn stages_between(
    read_chunks: &[u64],
    write_chunks: &[u64],
    stage_count: usize,
) -> Result<Vec<StagePlan>, PlanError> {
    let mids = calculate_stage_chunks(read_chunks, write_chunks, stage_count)?;
    let mut boundaries = Vec::with_capacity(stage_count + 1);
    boundaries.push(read_chunks.to_vec());
    boundaries.extend(mids);
    boundaries.push(write_chunks.to_vec());
    Ok(boundaries
        .windows(2)
        .map(|pair| StagePlan {
            int_chunks: pair[0]
                .iter()
                .zip(&pair[1])
                .map(|(&pre, &post)| pre.min(post))
                .collect(),
            read_chunks: pair[0].clone(),
            write_chunks: pair[1].clone(),
        })
        .collect())
}

/// The IO operations of all stages, saturating at `u128::MAX`.
fn total_io_ops(shape: &[u64], stages: &[StagePlan]) -> u128 {
    stages.iter().fold(0u128, |total, stage| {
        let ops = io_ops(shape, &stage.read_chunks, &stage.write_chunks).unwrap_or(u128::MAX);
        total.saturating_add(ops)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stage(read: &[u64], int: &[u64], write: &[u64]) -> StagePlan {
        StagePlan {
            read_chunks: read.to_vec(),
            int_chunks: int.to_vec(),
            write_chunks: write.to_vec(),
        }
    }

    // ---- consolidate_chunks -------------------------------------------------------------

    #[test]
    fn consolidation_grows_from_the_last_axis() {
        // Values from rechunker 0.5.4.
        let shape = [1000, 100, 10];
        let cases: [(u64, [u64; 3]); 4] = [
            (16, [1, 1, 10]),
            (80, [1, 8, 10]),
            (800, [1, 80, 10]),
            (8000, [8, 100, 10]),
        ];
        for (max_mem, expected) in cases {
            let got = consolidate_chunks(&shape, &[1, 1, 8], 1, max_mem, None).unwrap();
            assert_eq!(got, expected, "max_mem {max_mem}");
        }
    }

    #[test]
    fn consolidation_rejects_an_exact_fit() {
        assert_eq!(consolidate_chunks(&[10], &[3], 4, 40, None), Ok(vec![9]));
        assert_eq!(consolidate_chunks(&[10], &[3], 4, 41, None), Ok(vec![10]));
    }

    #[test]
    fn consolidation_respects_limits() {
        let limits = [None, Some(ChunkLimit::Max(50)), Some(ChunkLimit::Shape)];
        let got = consolidate_chunks(&[1000, 100, 10], &[1, 1, 1], 1, 10_000, Some(&limits));
        assert_eq!(got, Ok(vec![1, 50, 10]));
    }

    #[test]
    fn consolidation_shrinks_a_chunk_longer_than_the_axis_only_with_a_limit_beyond_it() {
        let beyond = [Some(ChunkLimit::Max(7))];
        assert_eq!(
            consolidate_chunks(&[5], &[10], 1, 100, Some(&beyond)),
            Ok(vec![5])
        );
        assert_eq!(
            consolidate_chunks(&[5], &[10], 1, 100, Some(&[Some(ChunkLimit::Shape)])),
            Ok(vec![5])
        );
        // The default limit is the axis length, which is below the chunk: invalid.
        assert_eq!(
            consolidate_chunks(&[5], &[10], 1, 100, None),
            Err(PlanError::InvalidChunkLimits {
                axis: 0,
                limit: 5,
                chunk: 10,
                shape: 5
            })
        );
    }

    #[test]
    fn consolidation_errors() {
        assert_eq!(
            consolidate_chunks(&[100], &[10], 8, 79, None),
            Err(PlanError::ChunkExceedsMemory {
                chunk_bytes: 80,
                max_mem: 79
            })
        );
        assert!(matches!(
            consolidate_chunks(&[100], &[10], 1, 100, Some(&[Some(ChunkLimit::Max(9))])),
            Err(PlanError::InvalidChunkLimits { limit: 9, .. })
        ));
        assert_eq!(
            consolidate_chunks(&[100], &[10], 1, 100, Some(&[])),
            Err(PlanError::WrongLength {
                argument: ChunksArg::ChunkLimits,
                len: 0,
                ndim: 1
            })
        );
        assert_eq!(
            consolidate_chunks(&[100], &[0], 1, 100, Some(&[None])),
            Err(PlanError::ZeroChunk { chunks: vec![0] })
        );
        assert_eq!(
            consolidate_chunks(&[100], &[1], 0, 100, None),
            Err(PlanError::ZeroItemsize)
        );
        assert_eq!(
            consolidate_chunks(
                &[0, 5],
                &[3, 5],
                1,
                100,
                Some(&[Some(ChunkLimit::Shape), None])
            ),
            Err(PlanError::EmptyAxis { axis: 0 })
        );
    }

    #[test]
    fn consolidation_uses_exact_integers_above_two_to_the_53() {
        // rechunker divides in f64 here and returns 2^53 (float(2^53 + 1) == 2^53); with
        // max_mem = 2^53 + 3 it even fails its own `assert headroom >= 1`.
        let two53 = 1u64 << 53;
        assert_eq!(
            consolidate_chunks(&[1 << 60], &[1], 1, two53 + 1, None),
            Ok(vec![two53 + 1])
        );
        assert_eq!(
            consolidate_chunks(&[1 << 60], &[1], 1, two53 + 3, None),
            Ok(vec![two53 + 3])
        );
    }

    // ---- calculate_stage_chunks ----------------------------------------------------------

    #[test]
    fn stage_chunks_reproduce_numpy_float_artifacts() {
        let mids = |r: &[u64], w: &[u64], n| calculate_stage_chunks(r, w, n).unwrap();
        assert_eq!(mids(&[64, 1], &[1, 64], 2), vec![vec![7, 7]]);
        // An axis with read == write == 706 comes out as 705 (the zero-step path).
        assert_eq!(mids(&[706, 1], &[706, 1000], 2), vec![vec![705, 31]]);
        // rechunker's docstring says (31623, 32); the code returns (31622, 31).
        assert_eq!(
            mids(&[1_000_000, 1], &[1, 1_000_000], 4),
            vec![vec![31622, 31], vec![1000, 1000], vec![31, 31622]]
        );
        assert_eq!(
            mids(&[1_000_000, 1], &[1, 1_000_000], 2),
            vec![vec![1000, 1000]]
        );
        assert!(mids(&[5], &[7], 1).is_empty());
        assert!(mids(&[5], &[7], 0).is_empty());
    }

    #[test]
    fn stage_chunks_errors() {
        assert_eq!(
            calculate_stage_chunks(&[1, 0], &[1, 1], 2),
            Err(PlanError::ZeroChunk { chunks: vec![1, 0] })
        );
        assert_eq!(
            calculate_stage_chunks(&[1], &[0], 1),
            Err(PlanError::ZeroChunk { chunks: vec![0] })
        );
        assert!(matches!(
            calculate_stage_chunks(&[1, 2], &[1], 2),
            Err(PlanError::WrongLength { .. })
        ));
    }

    // ---- io ops ----------------------------------------------------------------------------

    #[test]
    fn io_ops_table() {
        // Values from rechunker 0.5.4.
        assert_eq!(io_ops(&[100], &[1], &[1]), Some(100));
        assert_eq!(io_ops(&[100], &[1], &[10]), Some(100));
        assert_eq!(io_ops(&[100], &[10], &[1]), Some(100));
        assert_eq!(io_ops(&[100], &[10], &[10]), Some(10));
        assert_eq!(io_ops(&[100], &[3], &[7]), Some(44));
        assert_eq!(io_ops(&[100, 100], &[1, 100], &[100, 1]), Some(100 * 100));
        assert_eq!(io_ops(&[10], &[0], &[1]), None);
        assert_eq!(io_ops(&[10], &[1, 1], &[1]), None);
        assert_eq!(io_ops(&[], &[], &[]), Some(1));
        let big = u64::MAX;
        assert_eq!(io_ops(&[big; 3], &[1; 3], &[1; 3]), None);
        // Coprime chunks near 2^64: the lcm needs 128 bits.
        assert_eq!(axis_io_ops(big, big - 1, big), Some(2));
    }

    /// The pieces of `0..size` cut at multiples of `a` and of `b`.
    fn brute_force_pieces(a: u64, b: u64, size: u64) -> u128 {
        (1..size).filter(|i| i % a == 0 || i % b == 0).count() as u128 + u128::from(size > 0)
    }

    // ---- plans ----------------------------------------------------------------------------

    #[test]
    fn era5_multistage_plan() {
        let plan = multistage_rechunking_plan(
            &[350_640, 721, 1440],
            &[31, 721, 1440],
            &[350_640, 10, 10],
            4,
            25_000_000,
            500_000_000,
            Consolidation::BOTH,
        )
        .unwrap();
        assert_eq!(
            plan.stages,
            vec![
                stage(&[93, 721, 1440], &[93, 173, 396], &[1447, 173, 396]),
                stage(&[1447, 173, 396], &[1447, 41, 109], &[22528, 41, 109]),
                stage(&[22528, 41, 109], &[22528, 10, 30], &[350_640, 10, 30]),
            ]
        );
        assert!(plan.warnings.is_empty());
    }

    #[test]
    fn single_stage_plans() {
        // Values from rechunker 0.5.4.
        let plan = |shape: &[u64], s: &[u64], t: &[u64], max_mem, c| {
            rechunking_plan(shape, s, t, 4, max_mem, c).unwrap()
        };
        assert_eq!(
            plan(&[100], &[10], &[25], 1000, Consolidation::BOTH),
            stage(&[100], &[100], &[100])
        );
        assert_eq!(
            plan(&[100], &[10], &[25], 1000, Consolidation::NONE),
            stage(&[10], &[10], &[25])
        );
        assert_eq!(
            plan(&[100, 50], &[1, 50], &[100, 1], 400, Consolidation::BOTH),
            stage(&[2, 50], &[2, 1], &[100, 1])
        );
    }

    #[test]
    fn excessive_io_returns_the_previous_plan_with_a_warning() {
        let plan = multistage_rechunking_plan(
            &[100, 100],
            &[100, 1],
            &[1, 100],
            1,
            90,
            100,
            Consolidation::BOTH,
        )
        .unwrap();
        // Three stages reach 4 * 4 = 16 bytes at best; four would need more IO.
        assert_eq!(
            plan.stages,
            vec![
                stage(&[100, 1], &[21, 1], &[21, 4]),
                stage(&[21, 4], &[4, 4], &[4, 21]),
                stage(&[4, 21], &[1, 21], &[1, 100]),
            ]
        );
        assert_eq!(
            plan.warnings,
            vec![PlanWarning::ExcessiveIo {
                smallest_int_bytes: 30,
                min_mem: 90,
                max_mem: 100
            }]
        );
    }

    #[test]
    fn plan_errors_in_order() {
        let ms = |shape: &[u64], s: &[u64], t: &[u64], min, max, c| {
            multistage_rechunking_plan(shape, s, t, 1, min, max, c)
        };
        let both = Consolidation::BOTH;
        assert!(matches!(
            ms(&[10, 10], &[1], &[1, 1], 1, 10, both),
            Err(PlanError::WrongLength {
                argument: ChunksArg::SourceChunks,
                len: 1,
                ndim: 2
            })
        ));
        assert!(matches!(
            ms(&[10], &[1], &[1, 1], 1, 10, both),
            Err(PlanError::WrongLength {
                argument: ChunksArg::TargetChunks,
                ..
            })
        ));
        assert_eq!(
            ms(&[10], &[11], &[1], 1, 10, both),
            Err(PlanError::SourceChunkExceedsMemory {
                chunk_bytes: 11,
                max_mem: 10
            })
        );
        assert_eq!(
            ms(&[10], &[10], &[11], 1, 10, both),
            Err(PlanError::TargetChunkExceedsMemory {
                chunk_bytes: 11,
                max_mem: 10
            })
        );
        assert_eq!(
            ms(&[10], &[10], &[10], 11, 10, both),
            Err(PlanError::MaxMemBelowMinMem {
                max_mem: 10,
                min_mem: 11
            })
        );
        assert!(ms(&[10], &[10], &[10], 10, 10, both).is_ok());
        assert_eq!(
            ms(&[5], &[1], &[6], 1, 10, both),
            Err(PlanError::TargetChunkExceedsShape {
                axis: 0,
                chunk: 6,
                shape: 5
            })
        );
        assert_eq!(
            ms(&[5], &[0], &[1], 1, 10, Consolidation::NONE),
            Err(PlanError::ZeroChunk { chunks: vec![0] })
        );
        assert_eq!(
            ms(&[0], &[1], &[1], 5, 10, Consolidation::NONE),
            Err(PlanError::NoFeasiblePlan {
                min_mem: 5,
                max_mem: 10,
                max_stages: MAX_STAGES
            })
        );
    }

    #[test]
    fn plan_json_shape_and_round_trip() {
        let plan = multistage_rechunking_plan(
            &[100, 100],
            &[100, 1],
            &[1, 100],
            1,
            90,
            100,
            Consolidation::BOTH,
        )
        .unwrap();
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "stages": [
                    {"read_chunks": [100, 1], "int_chunks": [21, 1], "write_chunks": [21, 4]},
                    {"read_chunks": [21, 4], "int_chunks": [4, 4], "write_chunks": [4, 21]},
                    {"read_chunks": [4, 21], "int_chunks": [1, 21], "write_chunks": [1, 100]},
                ],
                "warnings": [plan.warnings[0].to_string()],
            })
        );
        let back: Plan = serde_json::from_value(json).unwrap();
        assert_eq!(back, plan);
        assert!(serde_json::from_str::<PlanWarning>("\"something else\"").is_err());
    }

    #[test]
    fn intermediate_needed_only_when_a_read_chunk_spans_write_chunks() {
        assert!(!stage(&[10, 5], &[10, 5], &[20, 5]).needs_intermediate());
        assert!(stage(&[10, 5], &[5, 5], &[5, 10]).needs_intermediate());
    }

    // ---- properties ------------------------------------------------------------------------

    /// Shape, source chunks, target chunks (target within the shape, so writes consolidate).
    fn arrays() -> impl Strategy<Value = (Vec<u64>, Vec<u64>, Vec<u64>)> {
        prop::collection::vec(1u64..=3000, 1..=4).prop_flat_map(|shape| {
            let source = shape.iter().map(|&n| 1..=n + n / 4).collect::<Vec<_>>();
            let target = shape.iter().map(|&n| 1..=n).collect::<Vec<_>>();
            (Just(shape), source, target)
        })
    }

    fn plan_inputs()
    -> impl Strategy<Value = (Vec<u64>, Vec<u64>, Vec<u64>, u64, u64, u64, Consolidation)> {
        (
            arrays(),
            prop::sample::select(vec![1u64, 2, 4, 8]),
            1u64..=1000,
            1u64..=200,
            any::<[bool; 2]>(),
        )
            .prop_map(
                |((shape, source, target), itemsize, grow, shrink, [reads, writes])| {
                    let biggest =
                        chunk_bytes(&source, itemsize).max(chunk_bytes(&target, itemsize));
                    let max_mem = (biggest as u64).saturating_mul(grow);
                    let min_mem = max_mem / shrink;
                    (
                        shape,
                        source,
                        target,
                        itemsize,
                        min_mem,
                        max_mem,
                        Consolidation { reads, writes },
                    )
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn plans_keep_their_invariants(
            (shape, source, target, itemsize, min_mem, max_mem, consolidation) in plan_inputs()
        ) {
            let plan = multistage_rechunking_plan(
                &shape, &source, &target, itemsize, min_mem, max_mem, consolidation,
            ).unwrap();
            let max_bytes = u128::from(max_mem);
            for stage in &plan.stages {
                for chunks in [&stage.read_chunks, &stage.int_chunks, &stage.write_chunks] {
                    prop_assert!(chunk_bytes(chunks, itemsize) <= max_bytes, "{stage:?}");
                }
                let min: Vec<u64> = stage.read_chunks.iter().zip(&stage.write_chunks)
                    .map(|(&r, &w)| r.min(w)).collect();
                prop_assert_eq!(&stage.int_chunks, &min);
            }
            for pair in plan.stages.windows(2) {
                prop_assert_eq!(&pair[0].write_chunks, &pair[1].read_chunks);
            }
            let smallest = plan.stages.iter()
                .map(|s| chunk_bytes(&s.int_chunks, itemsize)).min().unwrap();
            if plan.warnings.is_empty() {
                prop_assert!(smallest >= u128::from(min_mem));
            }
            let first = &plan.stages[0].read_chunks;
            let last = &plan.stages[plan.stages.len() - 1].write_chunks;
            for axis in 0..shape.len() {
                prop_assert!(first[axis] >= source[axis]);
                prop_assert!(last[axis] >= target[axis]);
                if consolidation.writes {
                    prop_assert!(last[axis] == shape[axis] || last[axis].is_multiple_of(target[axis]));
                }
            }
        }

        #[test]
        fn single_stage_plans_never_warn(
            (shape, source, target, itemsize, _min, max_mem, consolidation) in plan_inputs()
        ) {
            let stage = rechunking_plan(&shape, &source, &target, itemsize, max_mem, consolidation)
                .unwrap();
            let plan = multistage_rechunking_plan(
                &shape, &source, &target, itemsize, itemsize, max_mem, consolidation,
            ).unwrap();
            prop_assert_eq!(plan.stages, vec![stage]);
            prop_assert!(plan.warnings.is_empty());
        }

        #[test]
        fn consolidated_chunks_fit_and_are_multiples(
            (shape, chunks, _) in arrays(),
            itemsize in prop::sample::select(vec![1u64, 2, 4, 8]),
            grow in 1u64..=10_000,
        ) {
            let chunks: Vec<u64> = chunks.iter().zip(&shape).map(|(&c, &n)| c.min(n)).collect();
            let max_mem = (chunk_bytes(&chunks, itemsize) as u64) * grow;
            let grown = consolidate_chunks(&shape, &chunks, itemsize, max_mem, None).unwrap();
            prop_assert!(chunk_bytes(&grown, itemsize) <= u128::from(max_mem));
            for axis in 0..shape.len() {
                prop_assert!(grown[axis] >= chunks[axis]);
                prop_assert!(grown[axis] == shape[axis] || grown[axis].is_multiple_of(chunks[axis]));
            }
        }

        #[test]
        fn axis_io_ops_counts_pieces(a in 1u64..=60, b in 1u64..=60, size in 0u64..=500) {
            prop_assert_eq!(axis_io_ops(a, b, size), Some(brute_force_pieces(a, b, size)));
        }

        #[test]
        fn stage_chunks_lie_between_read_and_write(
            pairs in prop::collection::vec((1u64..=10_000_000, 1u64..=10_000_000), 1..=4),
            stage_count in 0usize..=30,
        ) {
            let (read, write): (Vec<u64>, Vec<u64>) = pairs.into_iter().unzip();
            let mids = calculate_stage_chunks(&read, &write, stage_count).unwrap();
            prop_assert_eq!(mids.len(), stage_count.saturating_sub(1));
            for mid in &mids {
                for axis in 0..read.len() {
                    let (lo, hi) = (read[axis].min(write[axis]), read[axis].max(write[axis]));
                    // floor() may land one below the smaller end, as for 706 → 705.
                    prop_assert!(mid[axis] + 1 >= lo && mid[axis] <= hi, "{mid:?}");
                }
            }
        }
    }
}
