//! Chunk-aligned partitions of an array among independent ranks: a pure function of the chunk
//! grid, the dimensions to split, the number of ranks and the rank.
//!
//! [`Partitioner`] decides once how the blocks (chunks) along the split dimensions are shared
//! among `ranks` ranks; [`Partitioner::partition`] then gives one rank its [`Partition`]: a box
//! of whole blocks (per axis a range of block indices, and the element region they cover).
//! Every rank that builds the same `Partitioner` from the same chunks gets the same answer, so
//! ranks never need to talk to each other. [`partition`] and [`partitions`] are the one-call
//! forms.
//!
//! ```
//! use chunkflow::array::Chunks;
//! use chunkflow::partition::{Partitioner, partitions};
//!
//! // 4 x 3 blocks over 6 ranks, split on both dims: every rank gets a 2 x 1 box.
//! let chunks = Chunks::regular(&[40, 30], &[10, 10])?;
//! let parts = partitions(&chunks, &["x", "y"], &["x", "y"], 6)?;
//! assert_eq!(parts.len(), 6);
//! assert!(parts.iter().all(|p| p.num_blocks() == 2));
//! assert_eq!(parts[0].blocks(), &[0..2, 0..1]);
//! assert_eq!(parts[0].region(), &[0..20, 0..10]);
//!
//! // More ranks than blocks: the extra ranks are idle (an empty region).
//! let p = Partitioner::by_name(&chunks, &["x", "y"], &["x"], 6)?;
//! assert_eq!(p.active_ranks(), 4);
//! assert!(p.partition(5)?.is_idle());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The algorithm
//!
//! Let the split dims have `n_1, ..., n_k` blocks (`B = n_1 ⋯ n_k`); dims that are not split are
//! never cut. `A = min(ranks, B)` ranks are *active*; the others get nothing.
//!
//! A partition is built by **nested balanced slabs**, one split dim after another in a *cut
//! order*: the first dim in the order is cut into `s` contiguous slabs whose extents (in blocks)
//! differ by at most one, and the `A` ranks are dealt to the slabs so that their counts differ
//! by at most one, the larger slabs getting the extra ranks. Each slab is then partitioned the
//! same way along the remaining dims with its own ranks; at the last dim a slab with `r` ranks
//! is cut into `r` balanced pieces, one per rank. A dim already cut is never cut again.
//!
//! The structure depends only on (position in the cut order, ranks), so the best structure is
//! found by dynamic programming over those states: for every cut order (every permutation of
//! the split dims; the array's own order only when more than six dims are split) and every slab
//! count `s` that keeps each slab within its capacity, it minimises, in this order:
//!
//! 1. the largest number of blocks any rank gets (the slowest rank sets the job's run time);
//! 2. irregularity: a *grid* (every slab count divides its ranks, so all slabs look alike) beats
//!    a non-grid of the same cost;
//! 3. ties go to the array's own dim order, then to more slabs along earlier dims (split the
//!    outer dims first, as xpartition does).
//!
//! Rank `i` is the `i`-th piece in depth-first slab order (slab 0's ranks first).
//!
//! # Guarantees (tested as properties in `tests/partition.rs`)
//!
//! - **Exact cover**: the active ranks' boxes are disjoint, unions of whole blocks, and cover
//!   every block exactly once. (Each level tiles its slab, and the tiles nest.)
//! - **Every rank is used when there are enough blocks**: exactly `min(ranks, B)` ranks get a
//!   non-empty box. A structure always exists: at a level with `r` ranks, `n` blocks along the
//!   dim and capacity `M` blocks in the dims after it (`r ≤ n·M`), `s = ⌈r/M⌉ ≤ n` slabs give
//!   each slab at most `⌈r/s⌉ ≤ M` ranks, and by induction each slab can be filled. Ranks
//!   `min(ranks, B)..ranks` are idle and get an empty region.
//! - **Balance**: within every slab, the extents along the dim cut there differ by at most one
//!   block, and so do the rank counts. When the result is a grid ([`Partitioner::is_grid`]),
//!   this holds globally: along every split dim, any two ranks' extents differ by at most one
//!   block. An exact grid cannot always exist (2 x 2 blocks over 3 ranks, or a prime number of
//!   ranks above every dim's block count); then the non-grid rule keeps every rank busy instead
//!   of idling some, as xpartition's greedy split does (blocks (4, 3) over 6 ranks split on
//!   `[x, y]` gives xpartition only 4 parts; here 6 boxes of 2 blocks).
//! - **Optimality within the family**: no nested-slab structure (over any cut order) has a
//!   smaller largest part; in particular no exact grid of `A` parts does, and when an exact grid
//!   reaches the optimum, the result is a grid.
//! - **Order independence**: the result does not depend on the order in which the split dims
//!   are listed (unlike xpartition's).
//!
//! Cost: `O(k! · k · √A · n_max)` steps in the worst case, instant for realistic sizes.
//!
//! # What it must not do
//! No I/O and no graph: this is arithmetic on [`Chunks`]. Writers (`write.rs`) and checkers
//! (`verify.rs`) call it.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::array::Chunks;

/// Beyond this many split dims only the array's own order is tried as the cut order.
const MAX_PERMUTED_DIMS: usize = 6;

// ------------------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------------------

/// Why a partition could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionError {
    /// `ranks` was 0.
    #[error("cannot partition among 0 ranks; give at least 1 rank")]
    NoRanks,
    /// `rank >= ranks`.
    #[error(
        "rank {rank} is out of range for {ranks} ranks: ranks are numbered from 0 to {}",
        .ranks.saturating_sub(1)
    )]
    RankOutOfRange {
        /// The rank asked for.
        rank: usize,
        /// The number of ranks.
        ranks: usize,
    },
    /// A dim to split is not one of the array's dims.
    #[error("cannot split on dimension {dim:?}: the array's dimensions are {dims:?}")]
    UnknownDim {
        /// The dim asked for.
        dim: String,
        /// The array's dims.
        dims: Vec<String>,
    },
    /// A split dim was given by name but the array has no dimension names.
    #[error(
        "cannot split on dimension {dim:?}: the array has no dimension names; split by axis \
         index (0 to {}) instead, or name its dimensions",
        .ndim.saturating_sub(1)
    )]
    NoDimensionNames {
        /// The dim asked for.
        dim: String,
        /// The array's number of axes.
        ndim: usize,
    },
    /// A split axis index is out of range.
    #[error("cannot split on axis {axis}: the array has {ndim} axes (0 to {})", .ndim.saturating_sub(1))]
    AxisOutOfRange {
        /// The axis asked for.
        axis: usize,
        /// The array's number of axes.
        ndim: usize,
    },
    /// The same dim was listed twice.
    #[error("dimension {dim} is listed more than once in the dims to split; list each once")]
    DuplicateDim {
        /// The dim (name or axis).
        dim: String,
    },
    /// The number of dimension names differs from the number of axes.
    #[error("{names} dimension names were given for an array with {ndim} axes")]
    NamesMismatch {
        /// How many names were given.
        names: usize,
        /// The array's number of axes.
        ndim: usize,
    },
}

impl From<PartitionError> for crate::Error {
    fn from(e: PartitionError) -> Self {
        crate::Error::InvalidArgument(e.to_string())
    }
}

// ------------------------------------------------------------------------------------------------
// Split dims
// ------------------------------------------------------------------------------------------------

/// A dim to split: by name (needs dimension names) or by axis index.
///
/// ```
/// use chunkflow::partition::SplitDim;
/// assert_eq!(SplitDim::from("time"), SplitDim::Name("time".into()));
/// assert_eq!(SplitDim::from(0), SplitDim::Axis(0));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SplitDim {
    /// A dimension name (`"time"`).
    Name(String),
    /// An axis index.
    Axis(usize),
}

impl From<&str> for SplitDim {
    fn from(name: &str) -> Self {
        SplitDim::Name(name.to_string())
    }
}

impl From<String> for SplitDim {
    fn from(name: String) -> Self {
        SplitDim::Name(name)
    }
}

impl From<&String> for SplitDim {
    fn from(name: &String) -> Self {
        SplitDim::Name(name.clone())
    }
}

impl From<usize> for SplitDim {
    fn from(axis: usize) -> Self {
        SplitDim::Axis(axis)
    }
}

impl fmt::Display for SplitDim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitDim::Name(n) => write!(f, "{n:?}"),
            SplitDim::Axis(a) => write!(f, "axis {a}"),
        }
    }
}

/// Resolves `split` to sorted, distinct axis indices of an array with `ndim` axes named `names`.
///
/// # Errors
/// Unknown names or axes, names without dimension names, duplicates, or `names` of the wrong
/// length.
pub fn resolve_split(
    ndim: usize,
    names: Option<&[String]>,
    split: &[SplitDim],
) -> Result<Vec<usize>, PartitionError> {
    if let Some(names) = names
        && names.len() != ndim
    {
        return Err(PartitionError::NamesMismatch {
            names: names.len(),
            ndim,
        });
    }
    let mut axes = Vec::with_capacity(split.len());
    for dim in split {
        let axis = match dim {
            SplitDim::Axis(axis) if *axis < ndim => *axis,
            SplitDim::Axis(axis) => {
                return Err(PartitionError::AxisOutOfRange { axis: *axis, ndim });
            }
            SplitDim::Name(name) => {
                let Some(names) = names else {
                    return Err(PartitionError::NoDimensionNames {
                        dim: name.clone(),
                        ndim,
                    });
                };
                names
                    .iter()
                    .position(|n| n == name)
                    .ok_or_else(|| PartitionError::UnknownDim {
                        dim: name.clone(),
                        dims: names.to_vec(),
                    })?
            }
        };
        if axes.contains(&axis) {
            return Err(PartitionError::DuplicateDim {
                dim: dim.to_string(),
            });
        }
        axes.push(axis);
    }
    axes.sort_unstable();
    Ok(axes)
}

// ------------------------------------------------------------------------------------------------
// Partition
// ------------------------------------------------------------------------------------------------

/// One rank's share of an array: a box of whole blocks, or nothing (an idle rank).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Partition {
    rank: usize,
    ranks: usize,
    idle: bool,
    blocks: Vec<Range<usize>>,
    region: Vec<Range<usize>>,
}

impl Partition {
    /// This partition's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks it is one of.
    pub fn ranks(&self) -> usize {
        self.ranks
    }

    /// Whether this rank has nothing to do (its region is empty).
    pub fn is_idle(&self) -> bool {
        self.idle
    }

    /// Per axis, the range of block indices (all blocks on dims that are not split; `0..0` on
    /// every axis for an idle rank).
    pub fn blocks(&self) -> &[Range<usize>] {
        &self.blocks
    }

    /// Per axis, the element range those blocks cover (`0..0` on every axis for an idle rank).
    pub fn region(&self) -> &[Range<usize>] {
        &self.region
    }

    /// The region as `u64` ranges, as the store room takes them.
    pub fn region_u64(&self) -> Vec<Range<u64>> {
        self.region
            .iter()
            .map(|r| r.start as u64..r.end as u64)
            .collect()
    }

    /// The number of blocks (0 for an idle rank).
    pub fn num_blocks(&self) -> usize {
        if self.idle {
            0
        } else {
            self.blocks.iter().map(|r| r.len()).product()
        }
    }

    /// Whether the block at `index` is in this partition.
    pub fn contains_block(&self, index: &[usize]) -> bool {
        !self.idle
            && index.len() == self.blocks.len()
            && index.iter().zip(&self.blocks).all(|(i, r)| r.contains(i))
    }

    /// The block indices of this partition, in C order (none for an idle rank).
    pub fn block_indices(&self) -> Vec<Vec<usize>> {
        let mut out = Vec::with_capacity(self.num_blocks());
        if self.idle {
            return out;
        }
        let mut idx: Vec<usize> = self.blocks.iter().map(|r| r.start).collect();
        loop {
            out.push(idx.clone());
            let mut axis = idx.len();
            loop {
                if axis == 0 {
                    return out;
                }
                axis -= 1;
                idx[axis] += 1;
                if idx[axis] < self.blocks[axis].end {
                    break;
                }
                idx[axis] = self.blocks[axis].start;
            }
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.idle {
            return write!(f, "rank {}/{}: idle", self.rank, self.ranks);
        }
        let ranges = |v: &[Range<usize>]| {
            v.iter()
                .map(|r| format!("{}..{}", r.start, r.end))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "rank {}/{}: blocks [{}], region [{}] ({} blocks)",
            self.rank,
            self.ranks,
            ranges(&self.blocks),
            ranges(&self.region),
            self.num_blocks()
        )
    }
}

// ------------------------------------------------------------------------------------------------
// Partitioner
// ------------------------------------------------------------------------------------------------

/// The best choice at one DP state.
#[derive(Clone, Copy, Debug)]
struct Best {
    /// The largest number of blocks (over the remaining dims) any rank gets.
    cost: usize,
    /// Whether the structure below is a grid.
    grid: bool,
    /// The number of slabs at this level.
    slabs: usize,
}

/// The slab arithmetic of one level: `n` blocks cut into `s` slabs, `r` ranks dealt to them.
#[derive(Clone, Copy, Debug)]
struct Level {
    n: usize,
    s: usize,
    r: usize,
}

impl Level {
    /// Slab `j`'s first block and extent (the first `n % s` slabs are one longer).
    fn slab_blocks(self, j: usize) -> Range<usize> {
        let (q, rem) = (self.n / self.s, self.n % self.s);
        let start = j * q + j.min(rem);
        start..start + q + usize::from(j < rem)
    }

    /// Slab `j`'s first rank and rank count (the first `r % s` slabs get one more).
    fn slab_ranks(self, j: usize) -> Range<usize> {
        let (t, rem) = (self.r / self.s, self.r % self.s);
        let start = j * t + j.min(rem);
        start..start + t + usize::from(j < rem)
    }

    /// The slab holding block `b`.
    fn slab_of_block(self, b: usize) -> usize {
        let (q, rem) = (self.n / self.s, self.n % self.s);
        let big = rem * (q + 1);
        if b < big {
            b / (q + 1)
        } else {
            rem + (b - big) / q
        }
    }

    /// The slab holding rank offset `o`.
    fn slab_of_rank(self, o: usize) -> usize {
        let (t, rem) = (self.r / self.s, self.r % self.s);
        let big = rem * (t + 1);
        if o < big {
            o / (t + 1)
        } else {
            rem + (o - big) / t
        }
    }
}

/// How an array's blocks are shared among ranks: built once, then asked for any rank's
/// [`Partition`] (see the module docs for the algorithm and its guarantees).
#[derive(Clone, Debug)]
pub struct Partitioner {
    chunks: Chunks,
    ranks: usize,
    /// The split axes, ascending.
    split: Vec<usize>,
    /// The split axes in cut order.
    order: Vec<usize>,
    /// Blocks along each axis of `order`.
    counts: Vec<usize>,
    active: usize,
    /// (level, ranks) -> slabs, for the chosen cut order.
    choices: HashMap<(usize, usize), usize>,
    cost: usize,
    grid: bool,
}

impl Partitioner {
    /// Plans `ranks` partitions of an array chunked as `chunks`, splitting along `split` (names
    /// or axis indices; names need `dim_names`). No split dims: rank 0 gets everything.
    ///
    /// # Errors
    /// [`PartitionError::NoRanks`], and the errors of [`resolve_split`].
    pub fn new(
        chunks: &Chunks,
        dim_names: Option<&[String]>,
        split: &[SplitDim],
        ranks: usize,
    ) -> Result<Partitioner, PartitionError> {
        let axes = resolve_split(chunks.ndim(), dim_names, split)?;
        Self::with_axes(chunks, axes, ranks)
    }

    /// [`Partitioner::new`] with dims and split dims given by name.
    ///
    /// # Errors
    /// As [`Partitioner::new`].
    pub fn by_name<S: AsRef<str>, D: AsRef<str>>(
        chunks: &Chunks,
        dim_names: &[S],
        split: &[D],
        ranks: usize,
    ) -> Result<Partitioner, PartitionError> {
        let names: Vec<String> = dim_names.iter().map(|s| s.as_ref().to_string()).collect();
        let split: Vec<SplitDim> = split.iter().map(|s| SplitDim::from(s.as_ref())).collect();
        Self::new(chunks, Some(&names), &split, ranks)
    }

    /// [`Partitioner::new`] with split dims given by axis index.
    ///
    /// # Errors
    /// As [`Partitioner::new`].
    pub fn by_axes(
        chunks: &Chunks,
        split: &[usize],
        ranks: usize,
    ) -> Result<Partitioner, PartitionError> {
        let split: Vec<SplitDim> = split.iter().map(|&a| SplitDim::Axis(a)).collect();
        Self::new(chunks, None, &split, ranks)
    }

    fn with_axes(
        chunks: &Chunks,
        split: Vec<usize>,
        ranks: usize,
    ) -> Result<Partitioner, PartitionError> {
        if ranks == 0 {
            return Err(PartitionError::NoRanks);
        }
        let numblocks = chunks.numblocks();
        let total = split
            .iter()
            .fold(1usize, |acc, &a| acc.saturating_mul(numblocks[a]));
        let active = ranks.min(total);
        let orders: Vec<Vec<usize>> = if split.len() <= MAX_PERMUTED_DIMS {
            permutations(&split)
        } else {
            vec![split.clone()]
        };
        // The best structure so far: its top choice, cut order and solved states.
        let mut best: Option<(Best, Vec<usize>, Memo)> = None;
        for order in orders {
            let counts: Vec<usize> = order.iter().map(|&a| numblocks[a]).collect();
            let mut solver = Solver::new(counts);
            let Some(b) = solver.solve(0, active) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((cur, _, _)) => (b.cost, !b.grid) < (cur.cost, !cur.grid),
            };
            if better {
                best = Some((b, order, solver.memo));
            }
        }
        let (top, order, memo) = best.expect("a nested-slab partition always exists");
        let choices = memo
            .into_iter()
            .filter_map(|(k, v)| v.map(|b| (k, b.slabs)))
            .collect();
        Ok(Partitioner {
            counts: order.iter().map(|&a| numblocks[a]).collect(),
            chunks: chunks.clone(),
            ranks,
            split,
            order,
            active,
            choices,
            cost: top.cost,
            grid: top.grid,
        })
    }

    /// The chunks partitioned.
    pub fn chunks(&self) -> &Chunks {
        &self.chunks
    }

    /// The number of ranks.
    pub fn ranks(&self) -> usize {
        self.ranks
    }

    /// The split axes, ascending.
    pub fn split_axes(&self) -> &[usize] {
        &self.split
    }

    /// The split axes in the order they are cut (outermost slabs first).
    pub fn cut_order(&self) -> &[usize] {
        &self.order
    }

    /// How many ranks get blocks: `min(ranks, blocks along the split dims)`. Ranks from here on
    /// are idle.
    pub fn active_ranks(&self) -> usize {
        self.active
    }

    /// The most blocks any rank gets (counting blocks of the dims that are not split too).
    pub fn max_blocks(&self) -> usize {
        let rest = (0..self.chunks.ndim())
            .filter(|a| !self.split.contains(a))
            .fold(1usize, |acc, a| {
                acc.saturating_mul(self.chunks.axis(a).len())
            });
        self.cost.saturating_mul(rest)
    }

    /// Whether the active ranks form a grid: along every split dim, all ranks' extents differ
    /// by at most one block.
    pub fn is_grid(&self) -> bool {
        self.grid
    }

    fn level(&self, i: usize, r: usize) -> Level {
        let s = if i + 1 == self.order.len() {
            r
        } else {
            self.choices[&(i, r)]
        };
        Level {
            n: self.counts[i],
            s,
            r,
        }
    }

    /// Rank `rank`'s partition.
    ///
    /// # Errors
    /// [`PartitionError::RankOutOfRange`] when `rank >= ranks`.
    pub fn partition(&self, rank: usize) -> Result<Partition, PartitionError> {
        if rank >= self.ranks {
            return Err(PartitionError::RankOutOfRange {
                rank,
                ranks: self.ranks,
            });
        }
        let ndim = self.chunks.ndim();
        if rank >= self.active {
            return Ok(Partition {
                rank,
                ranks: self.ranks,
                idle: true,
                blocks: vec![0..0; ndim],
                region: vec![0..0; ndim],
            });
        }
        let mut blocks: Vec<Range<usize>> =
            self.chunks.numblocks().into_iter().map(|n| 0..n).collect();
        let (mut offset, mut r) = (rank, self.active);
        for (i, &axis) in self.order.iter().enumerate() {
            let level = self.level(i, r);
            let j = level.slab_of_rank(offset);
            let ranks = level.slab_ranks(j);
            offset -= ranks.start;
            r = ranks.len();
            blocks[axis] = level.slab_blocks(j);
        }
        let region = blocks
            .iter()
            .enumerate()
            .map(|(axis, b)| {
                let bounds = self.chunks.boundaries(axis);
                bounds[b.start]..bounds[b.end]
            })
            .collect();
        Ok(Partition {
            rank,
            ranks: self.ranks,
            idle: false,
            blocks,
            region,
        })
    }

    /// Every rank's partition, rank 0 first (idle ranks included).
    pub fn partitions(&self) -> Vec<Partition> {
        (0..self.ranks)
            .map(|rank| self.partition(rank).expect("rank < ranks"))
            .collect()
    }

    /// The rank whose partition holds the block at `index`, or `None` when `index` is not a
    /// block of the array.
    pub fn owner(&self, index: &[usize]) -> Option<usize> {
        let numblocks = self.chunks.numblocks();
        if index.len() != numblocks.len() || index.iter().zip(&numblocks).any(|(i, n)| i >= n) {
            return None;
        }
        let (mut base, mut r) = (0, self.active);
        for (i, &axis) in self.order.iter().enumerate() {
            let level = self.level(i, r);
            let ranks = level.slab_ranks(level.slab_of_block(index[axis]));
            base += ranks.start;
            r = ranks.len();
        }
        Some(base)
    }
}

/// Solved DP states: (level, ranks) -> the best choice there (`None`: infeasible).
type Memo = HashMap<(usize, usize), Option<Best>>;

/// The dynamic program over (level, ranks) for one cut order.
struct Solver {
    counts: Vec<usize>,
    /// `capacity[i]`: blocks in levels `i..` (saturating).
    capacity: Vec<usize>,
    memo: Memo,
}

impl Solver {
    fn new(counts: Vec<usize>) -> Solver {
        let mut capacity = vec![1usize; counts.len() + 1];
        for i in (0..counts.len()).rev() {
            capacity[i] = capacity[i + 1].saturating_mul(counts[i]);
        }
        Solver {
            counts,
            capacity,
            memo: HashMap::new(),
        }
    }

    /// The best structure for `r` ranks over levels `i..`, or `None` if `r` does not fit.
    fn solve(&mut self, i: usize, r: usize) -> Option<Best> {
        if r == 0 || r > self.capacity[i] {
            return None;
        }
        if i == self.counts.len() {
            // No split dims (left): one rank takes the single remaining block.
            return Some(Best {
                cost: 1,
                grid: true,
                slabs: 1,
            });
        }
        let n = self.counts[i];
        if i + 1 == self.counts.len() {
            return Some(Best {
                cost: n.div_ceil(r),
                grid: true,
                slabs: r,
            });
        }
        if let Some(b) = self.memo.get(&(i, r)) {
            return *b;
        }
        let lo = r.div_ceil(self.capacity[i + 1]).max(1);
        let hi = n.min(r);
        let mut best: Option<Best> = None;
        // Descending, so that ties go to more slabs along the earlier dim.
        for s in (lo..=hi).rev() {
            let level = Level { n, s, r };
            // Slabs fall into at most three kinds: (long, more ranks), then the mixed kind,
            // then (short, fewer ranks); probe one of each.
            let (er, rr) = (n % s, r % s);
            let mut probes = vec![0, s - 1];
            probes.push(er.min(rr));
            let mut cost = 0usize;
            let mut grid = rr == 0;
            let mut feasible = true;
            for j in probes {
                if j >= s {
                    continue;
                }
                let ext = level.slab_blocks(j).len();
                let sub_r = level.slab_ranks(j).len();
                match self.solve(i + 1, sub_r) {
                    Some(sub) => {
                        cost = cost.max(ext.saturating_mul(sub.cost));
                        grid &= sub.grid;
                    }
                    None => {
                        feasible = false;
                        break;
                    }
                }
            }
            if !feasible {
                continue;
            }
            let candidate = Best {
                cost,
                grid,
                slabs: s,
            };
            if best.is_none_or(|b| (cost, !grid) < (b.cost, !b.grid)) {
                best = Some(candidate);
            }
        }
        self.memo.insert((i, r), best);
        best
    }
}

/// All permutations of `items`, in lexicographic order of positions (the identity first).
fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut current = Vec::with_capacity(items.len());
    let mut used = vec![false; items.len()];
    fn go(items: &[usize], used: &mut [bool], current: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if current.len() == items.len() {
            out.push(current.clone());
            return;
        }
        for i in 0..items.len() {
            if !used[i] {
                used[i] = true;
                current.push(items[i]);
                go(items, used, current, out);
                current.pop();
                used[i] = false;
            }
        }
    }
    go(items, &mut used, &mut current, &mut out);
    out
}

/// Rank `rank`'s partition of an array chunked as `chunks` with dims `dim_names`, split along
/// `split` among `ranks` ranks (see [`Partitioner`]).
///
/// # Errors
/// As [`Partitioner::by_name`] and [`Partitioner::partition`].
pub fn partition<S: AsRef<str>, D: AsRef<str>>(
    chunks: &Chunks,
    dim_names: &[S],
    split: &[D],
    ranks: usize,
    rank: usize,
) -> Result<Partition, PartitionError> {
    Partitioner::by_name(chunks, dim_names, split, ranks)?.partition(rank)
}

/// Every rank's partition (idle ranks included), rank 0 first.
///
/// # Errors
/// As [`Partitioner::by_name`].
pub fn partitions<S: AsRef<str>, D: AsRef<str>>(
    chunks: &Chunks,
    dim_names: &[S],
    split: &[D],
    ranks: usize,
) -> Result<Vec<Partition>, PartitionError> {
    Ok(Partitioner::by_name(chunks, dim_names, split, ranks)?.partitions())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(blocks: &[usize]) -> Chunks {
        Chunks::new(blocks.iter().map(|&n| vec![1; n]).collect()).unwrap()
    }

    #[test]
    fn the_issue_example_uses_all_six_ranks() {
        let p = Partitioner::by_axes(&grid(&[4, 3]), &[0, 1], 6).unwrap();
        assert_eq!(p.active_ranks(), 6);
        assert!(p.is_grid());
        assert_eq!(p.max_blocks(), 2);
        let parts = p.partitions();
        assert!(parts.iter().all(|q| q.num_blocks() == 2));
    }

    #[test]
    fn no_exact_grid_still_uses_every_rank() {
        // 2 x 2 over 3: one rank gets 2 blocks, two get 1.
        let p = Partitioner::by_axes(&grid(&[2, 2]), &[0, 1], 3).unwrap();
        assert!(!p.is_grid());
        let mut sizes: Vec<usize> = p.partitions().iter().map(Partition::num_blocks).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [1, 1, 2]);
        // 3 x 4 over 5: cutting the 4-block dim first reaches the optimum 3.
        let p = Partitioner::by_axes(&grid(&[3, 4]), &[0, 1], 5).unwrap();
        assert_eq!(p.max_blocks(), 3);
        assert_eq!(p.cut_order(), &[1, 0]);
    }

    #[test]
    fn owner_inverts_partition() {
        let p = Partitioner::by_axes(&grid(&[5, 3, 2]), &[0, 2], 7).unwrap();
        for part in p.partitions() {
            for idx in part.block_indices() {
                assert_eq!(p.owner(&idx), Some(part.rank()));
            }
        }
        assert_eq!(p.owner(&[5, 0, 0]), None);
    }

    #[test]
    fn level_arithmetic() {
        let l = Level { n: 7, s: 3, r: 5 };
        assert_eq!(l.slab_blocks(0), 0..3);
        assert_eq!(l.slab_blocks(1), 3..5);
        assert_eq!(l.slab_blocks(2), 5..7);
        assert_eq!(l.slab_ranks(0), 0..2);
        assert_eq!(l.slab_ranks(1), 2..4);
        assert_eq!(l.slab_ranks(2), 4..5);
        assert_eq!(
            (0..7).map(|b| l.slab_of_block(b)).collect::<Vec<_>>(),
            [0, 0, 0, 1, 1, 2, 2]
        );
        assert_eq!(
            (0..5).map(|o| l.slab_of_rank(o)).collect::<Vec<_>>(),
            [0, 0, 1, 1, 2]
        );
    }
}
