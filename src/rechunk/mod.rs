//! The rechunk room: change an on-disk array's chunking under a memory budget (the rechunker
//! library's job), through an intermediate array when the read and write blocks do not line up.
//!
//! - [`algorithm`]: rechunker's planning algorithm as pure functions (parity-tested against it);
//! - [`CopySpec`]/[`StagedCopySpec`]: plans as plain, validated, serialisable data;
//! - `copy`: a copy of a stage as tasks, one writer per destination chunk;
//! - [`rechunk`]/[`plan_rechunk`]/[`Rechunked`]: the user API for arrays and groups;
//! - [`distributed`]: a plan run stage by stage by independent ranks (SLURM job arrays, MPI).

pub mod algorithm;
mod api;
mod copy;
pub mod distributed;
mod spec;

pub use api::{
    ArrayPlan, RechunkOptions, RechunkPlan, Rechunked, TargetChunks, plan_rechunk, rechunk,
};
pub use spec::{ArrayRef, CopySpec, SpecError, StagedCopySpec};
