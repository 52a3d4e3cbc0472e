//! [`LatencyStore`]: a zarrs storage adapter that makes every read slow, and counts reads.
//!
//! It stands in for a high-latency object store (S3 and friends) in tests and benchmarks: every
//! key read (`get`, `get_partial_many`, `size_key`) sleeps for a fixed delay before it is passed
//! to the inner store, and [`ReadStats`] records how many reads ran, how many are in flight now,
//! and the most that were ever in flight at once (for tests of concurrency limits). Listing
//! sleeps too but is not counted; writes pass straight through.
//!
//! It is a plain storage adapter, not a Zarr "storage transformer": nothing about it is recorded
//! in array metadata.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::{
    Bytes, ListableStorageTraits, MaybeBytes, MaybeBytesIterator, OffsetBytesIterator,
    ReadableStorageTraits, ReadableWritableListableStorage, StorageError, StoreKey, StoreKeys,
    StoreKeysPrefixes, StorePrefix, WritableStorageTraits,
};

/// Read counters shared between a [`LatencyStore`] and whoever watches it.
#[derive(Debug, Default)]
pub struct ReadStats {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    total: AtomicU64,
}

impl ReadStats {
    /// Reads that have started so far.
    pub fn total_reads(&self) -> u64 {
        self.total.load(Ordering::SeqCst)
    }

    /// Reads running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The most reads that ran at the same time since creation (or the last [`reset`]).
    ///
    /// [`reset`]: ReadStats::reset
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// Zeroes the total and the maximum (reads in flight stay counted).
    pub fn reset(&self) {
        self.total.store(0, Ordering::SeqCst);
        self.max_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    fn start(&self) -> ReadGuard<'_> {
        self.total.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        ReadGuard(self)
    }
}

/// Counts one read as in flight until dropped.
struct ReadGuard<'a>(&'a ReadStats);

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A storage adapter adding `delay` to every read of the inner store.
///
/// ```
/// use std::time::Duration;
/// use chunkflow::store::Store;
///
/// let store = Store::memory().with_latency(Duration::from_millis(1));
/// let stats = store.read_stats().unwrap();
/// assert_eq!(stats.total_reads(), 0);
/// ```
pub struct LatencyStore {
    inner: ReadableWritableListableStorage,
    delay: Duration,
    stats: Arc<ReadStats>,
}

impl std::fmt::Debug for LatencyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyStore")
            .field("delay", &self.delay)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl LatencyStore {
    /// Wraps `inner`, sleeping `delay` before each read.
    pub fn new(inner: ReadableWritableListableStorage, delay: Duration) -> Self {
        LatencyStore {
            inner,
            delay,
            stats: Arc::default(),
        }
    }

    /// The delay added to each read.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// The read counters (shared: they keep counting after this call).
    pub fn stats(&self) -> Arc<ReadStats> {
        self.stats.clone()
    }

    fn sleep(&self) {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
    }
}

impl ReadableStorageTraits for LatencyStore {
    fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        let _guard = self.stats.start();
        self.sleep();
        self.inner.get(key)
    }

    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        let _guard = self.stats.start();
        self.sleep();
        self.inner.get_partial_many(key, byte_ranges)
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        let _guard = self.stats.start();
        self.sleep();
        self.inner.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

impl ListableStorageTraits for LatencyStore {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.sleep();
        self.inner.list()
    }

    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.sleep();
        self.inner.list_prefix(prefix)
    }

    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.sleep();
        self.inner.list_dir(prefix)
    }

    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.sleep();
        self.inner.size_prefix(prefix)
    }
}

impl WritableStorageTraits for LatencyStore {
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        self.inner.set(key, value)
    }

    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> Result<(), StorageError> {
        self.inner.set_partial_many(key, offset_values)
    }

    fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.erase(key)
    }

    fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.inner.erase_prefix(prefix)
    }

    fn supports_set_partial(&self) -> bool {
        self.inner.supports_set_partial()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use super::*;
    use zarrs::storage::store::MemoryStore;

    #[test]
    fn counts_reads_and_concurrency() {
        let store = Arc::new(LatencyStore::new(
            Arc::new(MemoryStore::new()),
            Duration::from_millis(30),
        ));
        let key = StoreKey::new("a/b").unwrap();
        store.set(&key, Bytes::from_static(b"xyz")).unwrap();
        let stats = store.stats();
        let barrier = Barrier::new(4);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    barrier.wait();
                    assert_eq!(store.get(&key).unwrap().unwrap().as_ref(), b"xyz");
                });
            }
        });
        assert_eq!(stats.total_reads(), 4);
        assert_eq!(stats.in_flight(), 0);
        // The reads overlapped (all four, unless the machine is very loaded).
        assert!(
            (2..=4).contains(&stats.max_in_flight()),
            "{}",
            stats.max_in_flight()
        );
        assert_eq!(store.size_key(&key).unwrap(), Some(3));
        assert_eq!(stats.total_reads(), 5);
        stats.reset();
        assert_eq!((stats.total_reads(), stats.max_in_flight()), (0, 0));
    }
}
