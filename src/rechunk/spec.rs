//! Rechunk plans as plain data: [`CopySpec`] (one stage: source → optional intermediate →
//! target, with the read, intermediate and write chunks) and [`StagedCopySpec`] (several stages
//! chained). Both check their invariants at construction and serialise to JSON, so a plan can
//! be printed (`--dry-run --json`), saved for `--resume`, or handed to other processes.
//!
//! Invariants: every chunk list has one entry per axis, each entry in `1..=shape` (0-length axes
//! have chunk 1); a stage's arrays share shape and dtype; each stage's target is the next stage's
//! source.

use serde::{Deserialize, Serialize};

use crate::array::DType;

/// Where an array lives: a store (URL or path, as `Store::open` takes it) and a path in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayRef {
    /// The store's URL or filesystem path.
    pub store: String,
    /// The array's path inside the store (`""` for the root).
    pub path: String,
}

impl std::fmt::Display for ArrayRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.store)
        } else {
            write!(f, "{}/{}", self.store.trim_end_matches('/'), self.path)
        }
    }
}

/// One stage of a rechunk: copy `source` to `target` reading `read_chunks` blocks, through an
/// `intermediate` array chunked `int_chunks` when the read and write blocks do not line up,
/// writing `write_chunks` blocks into a target stored with `target_chunks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopySpec {
    /// The array read.
    pub source: ArrayRef,
    /// The intermediate array, when the stage needs one.
    pub intermediate: Option<ArrayRef>,
    /// The array written.
    pub target: ArrayRef,
    /// The shape of all three.
    pub shape: Vec<u64>,
    /// The element type of all three.
    pub dtype: DType,
    /// The blocks read from the source (one task each).
    pub read_chunks: Vec<u64>,
    /// The intermediate's chunks.
    pub int_chunks: Vec<u64>,
    /// The blocks written to the target (one task each).
    pub write_chunks: Vec<u64>,
    /// The target's stored chunks (`write_chunks` is a multiple of them).
    pub target_chunks: Vec<u64>,
}

/// A plan that breaks an invariant.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// A chunk list has the wrong number of entries.
    #[error("{what} has {got} entries, but the array has {ndim} dimensions")]
    WrongLength {
        /// Which chunk list.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The array's number of dimensions.
        ndim: usize,
    },
    /// A chunk is zero or larger than its axis.
    #[error("{what} {chunks:?} do not fit shape {shape:?}: each chunk must be in 1..=length")]
    ChunkOutOfRange {
        /// Which chunk list.
        what: &'static str,
        /// The chunks.
        chunks: Vec<u64>,
        /// The shape.
        shape: Vec<u64>,
    },
    /// Stages do not chain.
    #[error("stage {stage}'s source {source_ref} is not stage {prev}'s target {target}", prev = .stage - 1)]
    Unchained {
        /// The stage whose source is wrong.
        stage: usize,
        /// Its source.
        source_ref: String,
        /// The previous stage's target.
        target: String,
    },
    /// Stages disagree on shape or dtype.
    #[error("stage {stage} has shape {shape:?} and dtype {dtype}, unlike stage 0")]
    Mismatch {
        /// The stage.
        stage: usize,
        /// Its shape.
        shape: Vec<u64>,
        /// Its dtype.
        dtype: DType,
    },
    /// A plan with no stage.
    #[error("a staged plan needs at least one stage")]
    Empty,
}

impl CopySpec {
    /// Checks the invariants and returns the spec.
    ///
    /// ```
    /// use chunkflow::array::DType;
    /// use chunkflow::rechunk::{ArrayRef, CopySpec};
    /// let at = |p: &str| ArrayRef { store: "data.zarr".into(), path: p.into() };
    /// let spec = CopySpec {
    ///     source: at("a"), intermediate: None, target: at("b"),
    ///     shape: vec![100, 10], dtype: DType::F32,
    ///     read_chunks: vec![100, 1], int_chunks: vec![100, 1], write_chunks: vec![100, 1],
    ///     target_chunks: vec![100, 1],
    /// }.validated().unwrap();
    /// let json = serde_json::to_string(&spec).unwrap();
    /// assert_eq!(serde_json::from_str::<CopySpec>(&json).unwrap(), spec);
    /// ```
    pub fn validated(self) -> Result<Self, SpecError> {
        let ndim = self.shape.len();
        for (what, chunks) in [
            ("read_chunks", &self.read_chunks),
            ("int_chunks", &self.int_chunks),
            ("write_chunks", &self.write_chunks),
            ("target_chunks", &self.target_chunks),
        ] {
            if chunks.len() != ndim {
                return Err(SpecError::WrongLength {
                    what,
                    got: chunks.len(),
                    ndim,
                });
            }
            if chunks
                .iter()
                .zip(&self.shape)
                .any(|(&c, &s)| c == 0 || c > s.max(1))
            {
                return Err(SpecError::ChunkOutOfRange {
                    what,
                    chunks: chunks.clone(),
                    shape: self.shape.clone(),
                });
            }
        }
        Ok(self)
    }

    /// Whether the stage goes through an intermediate array.
    pub fn needs_intermediate(&self) -> bool {
        self.intermediate.is_some()
    }
}

/// Several stages, each reading what the previous one wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedCopySpec {
    /// The stages, in order.
    pub stages: Vec<CopySpec>,
}

impl StagedCopySpec {
    /// Checks that the stages are valid and chain, and returns the plan.
    pub fn new(stages: Vec<CopySpec>) -> Result<Self, SpecError> {
        let stages: Vec<CopySpec> = stages
            .into_iter()
            .map(CopySpec::validated)
            .collect::<Result<_, _>>()?;
        let first = stages.first().ok_or(SpecError::Empty)?;
        for (i, s) in stages.iter().enumerate().skip(1) {
            if s.shape != first.shape || s.dtype != first.dtype {
                return Err(SpecError::Mismatch {
                    stage: i,
                    shape: s.shape.clone(),
                    dtype: s.dtype,
                });
            }
            if s.source != stages[i - 1].target {
                return Err(SpecError::Unchained {
                    stage: i,
                    source_ref: s.source.to_string(),
                    target: stages[i - 1].target.to_string(),
                });
            }
        }
        Ok(StagedCopySpec { stages })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(src: &str, dst: &str) -> CopySpec {
        CopySpec {
            source: ArrayRef {
                store: "s".into(),
                path: src.into(),
            },
            intermediate: None,
            target: ArrayRef {
                store: "s".into(),
                path: dst.into(),
            },
            shape: vec![10, 10],
            dtype: DType::F64,
            read_chunks: vec![10, 1],
            int_chunks: vec![10, 1],
            write_chunks: vec![10, 1],
            target_chunks: vec![5, 1],
        }
    }

    #[test]
    fn invariants_are_checked() {
        assert!(spec("a", "b").validated().is_ok());
        let mut bad = spec("a", "b");
        bad.read_chunks = vec![11, 1];
        assert!(matches!(
            bad.validated(),
            Err(SpecError::ChunkOutOfRange { .. })
        ));
        let mut bad = spec("a", "b");
        bad.write_chunks = vec![1];
        assert!(matches!(
            bad.validated(),
            Err(SpecError::WrongLength { .. })
        ));
        assert!(StagedCopySpec::new(vec![spec("a", "b"), spec("b", "c")]).is_ok());
        assert!(matches!(
            StagedCopySpec::new(vec![spec("a", "b"), spec("x", "c")]),
            Err(SpecError::Unchained { stage: 1, .. })
        ));
        assert_eq!(StagedCopySpec::new(vec![]), Err(SpecError::Empty));
    }
}
