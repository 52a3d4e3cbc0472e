//! The rechunker planning algorithm and rechunk plans.

pub mod algorithm;
