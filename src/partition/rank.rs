//! Which rank this process is, and how many ranks there are: from explicit values (command-line
//! flags) or from the variables a launcher sets (SLURM job arrays, Open MPI, PMIx, MPICH's PMI,
//! `srun`).
//!
//! The environment is a parameter ([`detect_rank`] takes any `name -> value` lookup, such as a
//! `HashMap`), so detection is tested without touching the process environment;
//! [`detect_rank_from_env`] reads the real one.
//!
//! # Order
//!
//! The first source that is present wins:
//!
//! 1. **Explicit**: `rank` given (as `--rank`), with `ranks` (`--ranks`) or else the count of an
//!    MPI launcher or `srun` (`OMPI_COMM_WORLD_SIZE`, `PMI_SIZE`, `SLURM_NTASKS`; never a job
//!    array's count, which is wrong when re-running some ranks). `ranks` alone does not give a
//!    rank; it overrides the launcher's count.
//! 2. **SLURM job array**: `SLURM_ARRAY_TASK_ID`, with `SLURM_ARRAY_TASK_MIN` (default 0),
//!    `SLURM_ARRAY_TASK_MAX` and `SLURM_ARRAY_TASK_COUNT`. `rank = id - MIN` and
//!    `ranks = COUNT` (or the explicit `ranks`), so `--array=0-15` and `--array=1-16` both give
//!    ranks 0..16. **Sparse arrays** (`--array=1,5,7`, `--array=0-15:4`, where
//!    `COUNT != MAX - MIN + 1`) are refused: offsetting would leave ranks that no task runs,
//!    and a re-run of failed tasks (`--array=3,7` of 16) means `rank = id`, not `id - MIN`. Pass
//!    `--rank $SLURM_ARRAY_TASK_ID --ranks N` for those. An id whose offset rank is not below
//!    the count is an error.
//! 3. **Open MPI**: `OMPI_COMM_WORLD_RANK` / `OMPI_COMM_WORLD_SIZE` (`mpirun`).
//! 4. **PMIx**: `PMIX_RANK`. PMIx exports no job size in the environment (it is a `PMIx_Get`
//!    attribute), so the count comes from the explicit `ranks`, else `SLURM_NTASKS` (`srun
//!    --mpi=pmix`), else it is an error.
//! 5. **PMI** (MPICH/Hydra, Intel MPI): `PMI_RANK` / `PMI_SIZE`. Open MPI does not set these.
//! 6. **`srun` tasks**: `SLURM_PROCID` / `SLURM_NTASKS` (or `SLURM_NPROCS`). Note that a batch
//!    script run without `srun` also sees these (rank 0 of the job's task count).
//!
//! Nothing found and no explicit rank: [`RankError::NotFound`], which lists what was checked.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a rank came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RankSource {
    /// Given explicitly (`--rank`).
    Explicit,
    /// A SLURM job array task.
    SlurmArray {
        /// `SLURM_ARRAY_TASK_ID`.
        task_id: u64,
        /// `SLURM_ARRAY_TASK_MIN` (0 when unset).
        min: u64,
    },
    /// Open MPI (`OMPI_COMM_WORLD_RANK`).
    OpenMpi,
    /// PMIx (`PMIX_RANK`).
    Pmix,
    /// PMI-1/2 (`PMI_RANK`, MPICH and Intel MPI).
    Pmi,
    /// A task of `srun` (`SLURM_PROCID`).
    SlurmTask,
}

impl fmt::Display for RankSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RankSource::Explicit => f.write_str("explicit --rank"),
            RankSource::SlurmArray { task_id, min } => write!(
                f,
                "SLURM job array (SLURM_ARRAY_TASK_ID={task_id}, SLURM_ARRAY_TASK_MIN={min})"
            ),
            RankSource::OpenMpi => f.write_str("Open MPI (OMPI_COMM_WORLD_RANK)"),
            RankSource::Pmix => f.write_str("PMIx (PMIX_RANK)"),
            RankSource::Pmi => f.write_str("PMI (PMI_RANK)"),
            RankSource::SlurmTask => f.write_str("srun task (SLURM_PROCID)"),
        }
    }
}

/// This process's rank among `ranks`, and where that came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RankInfo {
    /// This process's rank, `0..ranks`.
    pub rank: usize,
    /// How many ranks there are.
    pub ranks: usize,
    /// Where the rank came from.
    pub source: RankSource,
}

/// Why no rank could be determined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RankError {
    /// No explicit rank and no launcher variable.
    #[error(
        "cannot tell which rank this process is: no --rank was given and none of \
         SLURM_ARRAY_TASK_ID, OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK or SLURM_PROCID is set; \
         pass --rank R --ranks N, or run under a SLURM job array, srun or mpirun"
    )]
    NotFound,
    /// A variable is not a non-negative integer.
    #[error("{name}={value:?} is not a non-negative integer")]
    Invalid {
        /// The variable (or flag).
        name: String,
        /// Its value.
        value: String,
    },
    /// A rank was found but not the number of ranks.
    #[error("found the rank in {rank_var}, but not the number of ranks ({hint}); pass --ranks N")]
    MissingCount {
        /// Where the rank came from.
        rank_var: String,
        /// Which variables were looked at for the count.
        hint: String,
    },
    /// The number of ranks is 0.
    #[error("the number of ranks is 0 (from {source_name}); it must be at least 1")]
    ZeroRanks {
        /// Where the count came from.
        source_name: String,
    },
    /// The rank is not below the number of ranks.
    #[error("rank {rank} (from {source_name}) is out of range for {ranks} ranks (0 to {})", .ranks.saturating_sub(1))]
    OutOfRange {
        /// The rank.
        rank: u64,
        /// The number of ranks.
        ranks: usize,
        /// Where the rank came from.
        source_name: String,
    },
    /// `SLURM_ARRAY_TASK_ID` is below `SLURM_ARRAY_TASK_MIN`.
    #[error("SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={min}")]
    BelowMin {
        /// The task id.
        id: u64,
        /// The array's smallest id.
        min: u64,
    },
    /// A sparse SLURM array without an explicit rank.
    #[error(
        "the SLURM job array is sparse ({count} task ids between {min} and {max}), so its ids \
         cannot be mapped to ranks 0..{count} by offsetting; pass the rank explicitly, e.g. \
         --rank $SLURM_ARRAY_TASK_ID --ranks N (the usual way to re-run some failed ranks)"
    )]
    SparseArray {
        /// `SLURM_ARRAY_TASK_COUNT`.
        count: u64,
        /// `SLURM_ARRAY_TASK_MIN`.
        min: u64,
        /// `SLURM_ARRAY_TASK_MAX`.
        max: u64,
    },
}

impl From<RankError> for crate::Error {
    fn from(e: RankError) -> Self {
        crate::Error::InvalidArgument(e.to_string())
    }
}

/// Determines this process's rank from `explicit_rank`/`explicit_ranks` (flags) and the
/// environment `env` (a lookup such as `|k| map.get(k).cloned()`), in the order of the module
/// docs.
///
/// ```
/// use std::collections::HashMap;
/// use chunkflow::partition::{RankSource, detect_rank};
///
/// let env: HashMap<&str, &str> = [
///     ("SLURM_ARRAY_TASK_ID", "5"),
///     ("SLURM_ARRAY_TASK_MIN", "1"),
///     ("SLURM_ARRAY_TASK_MAX", "16"),
///     ("SLURM_ARRAY_TASK_COUNT", "16"),
/// ]
/// .into();
/// let info = detect_rank(None, None, |k| env.get(k).map(|v| v.to_string()))?;
/// assert_eq!((info.rank, info.ranks), (4, 16));
/// assert!(matches!(info.source, RankSource::SlurmArray { task_id: 5, min: 1 }));
///
/// // Explicit flags win over the environment.
/// let info = detect_rank(Some(2), Some(3), |k| env.get(k).map(|v| v.to_string()))?;
/// assert_eq!((info.rank, info.ranks), (2, 3));
/// # Ok::<(), chunkflow::partition::RankError>(())
/// ```
///
/// # Errors
/// See [`RankError`].
pub fn detect_rank(
    explicit_rank: Option<usize>,
    explicit_ranks: Option<usize>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<RankInfo, RankError> {
    let get = |name: &str| -> Result<Option<u64>, RankError> {
        match env(name) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| RankError::Invalid {
                    name: name.to_string(),
                    value: v,
                }),
        }
    };
    if explicit_ranks == Some(0) {
        return Err(RankError::ZeroRanks {
            source_name: "--ranks".into(),
        });
    }

    if let Some(rank) = explicit_rank {
        let ranks = match explicit_ranks {
            Some(n) => n,
            None => match launcher_count(&get)? {
                Some((n, name)) => to_count(n, name)?,
                None => {
                    return Err(RankError::MissingCount {
                        rank_var: "--rank".into(),
                        hint: "no launcher count (OMPI_COMM_WORLD_SIZE, PMI_SIZE, SLURM_NTASKS) \
                               is set either"
                            .into(),
                    });
                }
            },
        };
        return finish(rank as u64, ranks, RankSource::Explicit, "--rank");
    }

    // SLURM job array.
    if let Some(id) = get("SLURM_ARRAY_TASK_ID")? {
        let min = get("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let count = get("SLURM_ARRAY_TASK_COUNT")?;
        let max = get("SLURM_ARRAY_TASK_MAX")?;
        if let (Some(count), Some(max)) = (count, max)
            && max.checked_sub(min).and_then(|d| d.checked_add(1)) != Some(count)
        {
            return Err(RankError::SparseArray { count, min, max });
        }
        let rank = id.checked_sub(min).ok_or(RankError::BelowMin { id, min })?;
        let ranks = match (explicit_ranks, count) {
            (Some(n), _) => n,
            (None, Some(c)) => to_count(c, "SLURM_ARRAY_TASK_COUNT")?,
            (None, None) => {
                return Err(RankError::MissingCount {
                    rank_var: "SLURM_ARRAY_TASK_ID".into(),
                    hint: "SLURM_ARRAY_TASK_COUNT is not set".into(),
                });
            }
        };
        return finish(
            rank,
            ranks,
            RankSource::SlurmArray { task_id: id, min },
            "SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN",
        );
    }

    let families: [(&str, &[&str], RankSource); 4] = [
        (
            "OMPI_COMM_WORLD_RANK",
            &["OMPI_COMM_WORLD_SIZE"],
            RankSource::OpenMpi,
        ),
        (
            "PMIX_RANK",
            &["SLURM_NTASKS", "SLURM_NPROCS"],
            RankSource::Pmix,
        ),
        ("PMI_RANK", &["PMI_SIZE"], RankSource::Pmi),
        (
            "SLURM_PROCID",
            &["SLURM_NTASKS", "SLURM_NPROCS"],
            RankSource::SlurmTask,
        ),
    ];
    for (rank_var, size_vars, source) in families {
        let Some(rank) = get(rank_var)? else {
            continue;
        };
        let ranks = match explicit_ranks {
            Some(n) => n,
            None => {
                let mut found = None;
                for &var in size_vars {
                    if let Some(n) = get(var)? {
                        found = Some(to_count(n, var)?);
                        break;
                    }
                }
                found.ok_or_else(|| RankError::MissingCount {
                    rank_var: rank_var.into(),
                    hint: format!("{} not set", size_vars.join(" and ")),
                })?
            }
        };
        return finish(rank, ranks, source, rank_var);
    }
    Err(RankError::NotFound)
}

/// The first launcher count present (for an explicit `--rank` without `--ranks`).
fn launcher_count(
    get: &impl Fn(&str) -> Result<Option<u64>, RankError>,
) -> Result<Option<(u64, &'static str)>, RankError> {
    // Not SLURM_ARRAY_TASK_COUNT: an explicit rank under a job array usually re-runs some
    // failed ranks of a larger job (`--array=3,7`), whose count is not the array's.
    for name in [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "SLURM_NTASKS",
        "SLURM_NPROCS",
    ] {
        if let Some(n) = get(name)? {
            return Ok(Some((n, name)));
        }
    }
    Ok(None)
}

fn to_count(n: u64, name: &str) -> Result<usize, RankError> {
    if n == 0 {
        return Err(RankError::ZeroRanks {
            source_name: name.into(),
        });
    }
    usize::try_from(n).map_err(|_| RankError::Invalid {
        name: name.into(),
        value: n.to_string(),
    })
}

fn finish(
    rank: u64,
    ranks: usize,
    source: RankSource,
    source_name: &str,
) -> Result<RankInfo, RankError> {
    match usize::try_from(rank) {
        Ok(r) if r < ranks => Ok(RankInfo {
            rank: r,
            ranks,
            source,
        }),
        _ => Err(RankError::OutOfRange {
            rank,
            ranks,
            source_name: source_name.into(),
        }),
    }
}

/// [`detect_rank`] over the process environment (`std::env::vars()`).
///
/// # Errors
/// See [`RankError`].
pub fn detect_rank_from_env(
    explicit_rank: Option<usize>,
    explicit_ranks: Option<usize>,
) -> Result<RankInfo, RankError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    detect_rank(explicit_rank, explicit_ranks, |k| env.get(k).cloned())
}
