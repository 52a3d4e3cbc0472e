//! The rechunker planning algorithm and rechunk plans.
