//! Memory behaviour of the executors: results are dropped as soon as their last dependent has
//! started, and the static order finishes one branch before opening the next, so a map-reduce
//! over many large chunks never holds more than a few of them at once.
//!
//! The workload is the issue's: 2,000 chunk tasks whose results are 4 MB each (a [`Chunk`]
//! holding a 4 MB `Vec<u8>`). Creating or cloning a chunk increments a live counter and records
//! the maximum; dropping one decrements it. Each test has its own counter (tests in this file
//! run in parallel threads), and checks the peak under `Sequential`, `Threaded::new(2)` and
//! `Threaded::new(4)`, fused and unfused:
//!
//! - **(a) map then reduce numbers**: each chunk is consumed by a per-chunk task that returns a
//!   small number, then a tree reduction (fan-in 8) sums the numbers. Bound: at most
//!   `2 × threads + 2` chunks alive at once.
//! - **(b) tree reduction of chunks**: partial sums are themselves 4 MB chunks (an element-wise
//!   add, fan-in 4; depth 6 over 2,000 leaves). Bound, documented: at most
//!   `threads × fan_in × depth` chunks alive (each level can hold up to `fan_in` pending
//!   siblings per worker), far below the 2,000 a breadth-first run would hold.
//!
//! After every run the counter must be back at zero (nothing leaks) and exactly 2,000 chunks
//! must have been made (none copied). Each chunk allocates its 4 MB (as `Vec` capacity) but
//! writes only its first byte, and the "element-wise add" adds only that byte: the live counter,
//! not the process's resident memory, is what is asserted, and this keeps the file well under a
//! second in debug builds (filling 16 GB per test would take minutes). Peaks are printed
//! (`--nocapture`) for comparison.

use std::sync::atomic::{AtomicUsize, Ordering};

use chunkflow::prelude::*;

const CHUNKS: usize = 2_000;
const CHUNK_BYTES: usize = 4 << 20;

/// Live and peak counts of [`Chunk`]s for one test.
struct LiveCounter {
    live: AtomicUsize,
    max: AtomicUsize,
    created: AtomicUsize,
}

impl LiveCounter {
    const fn new() -> Self {
        LiveCounter {
            live: AtomicUsize::new(0),
            max: AtomicUsize::new(0),
            created: AtomicUsize::new(0),
        }
    }

    fn acquire(&self) {
        let now = self.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        self.created.fetch_add(1, Ordering::SeqCst);
    }

    fn release(&self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }

    fn reset(&self) {
        assert_eq!(
            self.live.load(Ordering::SeqCst),
            0,
            "chunks alive between runs"
        );
        self.max.store(0, Ordering::SeqCst);
        self.created.store(0, Ordering::SeqCst);
    }
}

/// One counter per test, indexed by the `counter` argument of the task functions.
static COUNTERS: [LiveCounter; 6] = [const { LiveCounter::new() }; 6];

/// A chunk result holding a 4 MB buffer. Counted while alive.
#[derive(Debug)]
struct Chunk {
    data: Vec<u8>,
    /// The sum of the indices of the leaves this chunk stands for (checks the reduction).
    seed: u64,
    counter: usize,
}

impl Chunk {
    fn new(counter: usize, seed: u64) -> Self {
        COUNTERS[counter].acquire();
        let mut data = Vec::with_capacity(CHUNK_BYTES);
        data.push(1);
        Chunk {
            data,
            seed,
            counter,
        }
    }
}

impl Clone for Chunk {
    fn clone(&self) -> Self {
        COUNTERS[self.counter].acquire();
        Chunk {
            data: self.data.clone(),
            seed: self.seed,
            counter: self.counter,
        }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        COUNTERS[self.counter].release();
    }
}

fn load_chunk(counter: usize, i: u64) -> Chunk {
    Chunk::new(counter, i)
}

/// Per-chunk map: a small number out of a big chunk.
fn chunk_stat(c: Chunk) -> u64 {
    assert!(c.data.capacity() >= CHUNK_BYTES);
    assert_eq!(c.data[0], 1);
    c.seed
}

fn sum_numbers(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

/// Element-wise add (of the one written byte), reusing the first chunk's buffer.
fn add_chunks(mut cs: Vec<Chunk>) -> Chunk {
    let mut acc = cs.remove(0);
    for c in cs {
        acc.data[0] = acc.data[0].wrapping_add(c.data[0]);
        acc.seed += c.seed;
    }
    acc
}

fn tree<T: Clone + Send + Sync + 'static>(
    mut level: Vec<Delayed<T>>,
    fan_in: usize,
    combine: fn(&[Delayed<T>]) -> Delayed<T>,
) -> (Delayed<T>, usize) {
    let mut depth = 0;
    while level.len() > 1 {
        depth += 1;
        level = level.chunks(fan_in).map(combine).collect();
    }
    (level.pop().expect("at least one leaf"), depth)
}

/// The executor for a test, and its thread count.
fn executor(threads: usize) -> ComputeOptions {
    if threads == 1 {
        ComputeOptions::default().executor(Sequential)
    } else {
        ComputeOptions::default().threads(threads)
    }
}

const EXPECTED_SEED_SUM: u64 = (CHUNKS as u64 - 1) * CHUNKS as u64 / 2;

/// Shape (a): chunks → per-chunk number → tree of numbers (fan-in 8).
fn map_then_reduce_numbers(counter: usize, threads: usize) {
    let c = &COUNTERS[counter];
    let stats: Vec<Delayed<u64>> = (0..CHUNKS as u64)
        .map(|i| delayed!(chunk_stat(delayed!(load_chunk(counter, i)))))
        .collect();
    let (sum, _) = tree(stats, 8, |g| delayed!(sum_numbers(g.to_vec())));
    for fuse in [false, true] {
        c.reset();
        let options = executor(threads).fuse(fuse);
        assert_eq!(sum.compute_with(&options).unwrap(), EXPECTED_SEED_SUM);
        let peak = c.max.load(Ordering::SeqCst);
        assert_eq!(
            c.created.load(Ordering::SeqCst),
            CHUNKS,
            "no chunk is copied"
        );
        assert_eq!(c.live.load(Ordering::SeqCst), 0, "every chunk was dropped");
        eprintln!("(a) threads={threads} fuse={fuse} peak={peak}");
        let bound = 2 * threads + 2;
        assert!(
            peak <= bound,
            "threads={threads} fuse={fuse}: {peak} chunks of 4 MB alive at once (bound {bound})"
        );
    }
}

/// Shape (b): a tree reduction (fan-in 4) whose partial sums are 4 MB chunks themselves.
fn reduce_chunks(counter: usize, threads: usize) {
    const FAN_IN: usize = 4;
    let c = &COUNTERS[counter];
    let leaves: Vec<Delayed<Chunk>> = (0..CHUNKS as u64)
        .map(|i| delayed!(load_chunk(counter, i)))
        .collect();
    let (sum, depth) = tree(leaves, FAN_IN, |g| delayed!(add_chunks(g.to_vec())));
    assert_eq!(depth, 6);
    for fuse in [false, true] {
        c.reset();
        let options = executor(threads).fuse(fuse);
        let out = sum.compute_with(&options).unwrap();
        assert_eq!(out.seed, EXPECTED_SEED_SUM);
        // Every leaf added one to the written byte (mod 256).
        assert_eq!(out.data[0], (CHUNKS % 256) as u8);
        drop(out);
        let peak = c.max.load(Ordering::SeqCst);
        assert_eq!(
            c.created.load(Ordering::SeqCst),
            CHUNKS,
            "no chunk is copied"
        );
        assert_eq!(c.live.load(Ordering::SeqCst), 0, "every chunk was dropped");
        eprintln!("(b) threads={threads} fuse={fuse} peak={peak}");
        let bound = threads * FAN_IN * depth;
        assert!(
            peak <= bound,
            "threads={threads} fuse={fuse}: {peak} chunks of 4 MB alive at once (bound {bound})"
        );
        assert!(peak * 20 < CHUNKS, "far below holding every chunk: {peak}");
    }
}

#[test]
fn map_reduce_numbers_sequential() {
    map_then_reduce_numbers(0, 1);
}

#[test]
fn map_reduce_numbers_threaded_2() {
    map_then_reduce_numbers(1, 2);
}

#[test]
fn map_reduce_numbers_threaded_4() {
    map_then_reduce_numbers(2, 4);
}

#[test]
fn reduce_chunks_sequential() {
    reduce_chunks(3, 1);
}

#[test]
fn reduce_chunks_threaded_2() {
    reduce_chunks(4, 2);
}

#[test]
fn reduce_chunks_threaded_4() {
    reduce_chunks(5, 4);
}
