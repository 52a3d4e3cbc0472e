//! The store room: Zarr I/O through zarrs.
//!
//! This room owns opening stores by URL ([`Store`]), the storage adapters we layer on them
//! ([`LatencyStore`] for tests of high-latency stores, [`AtomicWriteStore`] so filesystem
//! writes are never seen half done), Zarr v2/v3 array and group metadata in the conventions
//! zarr-python and xarray use ([`ArraySpec`], [`ZarrArray`], groups, consolidated metadata), and
//! typed chunk I/O. `from_zarr`/`to_zarr`, the rechunker and datasets are built on it.
//!
//! ```
//! use chunkflow::array::DType;
//! use chunkflow::store::{ArraySpec, Store, ZarrArray};
//! use ndarray::ArrayD;
//!
//! let store = Store::memory();
//! let spec = ArraySpec::new(vec![4, 5], vec![2, 2], DType::F32).with_dimension_names(["y", "x"]);
//! let array = ZarrArray::create(&store, "temperature", &spec, false)?;
//! // Edge chunks are clipped to the array: chunk [1, 2] is 2 x 1.
//! array.write_chunk(&[1, 2], ArrayD::<f32>::from_elem(vec![2, 1], 7.0).view())?;
//! let back = array.read_region::<f32>(&[0..4, 0..5])?;
//! assert_eq!(back[[3, 4]], 7.0);
//! assert_eq!(back[[0, 0]], 0.0); // never written: the fill value
//! # Ok::<(), chunkflow::store::StoreError>(())
//! ```
//!
//! # Invariants
//! - Every call into zarrs' array, group and codec APIs lives in `zarr.rs` (zarrs 0.24
//!   changes that API; one file to port). The storage adapters (`latency.rs`, `atomic.rs`) and
//!   this file use only zarrs' storage traits.
//! - Our scheduler owns parallelism: every zarrs read and write passes explicit `CodecOptions`
//!   with a concurrent target of 1, so zarrs starts no rayon work of its own inside our tasks
//!   (zarrs 0.23's non-`_opt` methods would use all cores). A multi-chunk read or write here is
//!   a sequential loop; run chunks in parallel from the scheduler. The one exception is asked
//!   for explicitly: a rechunk copy task that runs alone may store its chunks on the threads
//!   the executor leaves idle (`ZarrArray::copy_region_to_with`).
//! - Exactly one writer per chunk (per shard, for sharded arrays) is the **caller's** duty: zarrs
//!   has no chunk locks, and two tasks writing one chunk (or a task reading a chunk while another
//!   writes it through a non-atomic store) can lose data. Plan writes so every output chunk has
//!   exactly one writer task; [`ZarrArray::write_region`] refuses regions that are not aligned
//!   to the write grid, so a partial chunk is never read-modified-written.
//! - Filesystem stores opened through [`Store`] write every key atomically (temporary sibling +
//!   rename): a concurrent reader, even in another process, never sees a half-written chunk or
//!   metadata document. Final chunk writes are also durable (`fsync` before the rename);
//!   rechunk copies and `to_zarr` leave that `fsync` to a few process-wide flusher threads
//!   (`flush.rs`) so that workers never wait for the disk.
//!
//! Must not: import the scheduler, graph or array collections (this room sits below them; it
//! uses only `array::{DType, Element, Chunks}`).

mod atomic;
mod error;
mod flush;
mod latency;
mod read_only;
#[cfg(feature = "s3")]
mod s3;
mod spec;
mod zarr;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use zarrs::filesystem::FilesystemStore;
use zarrs::storage::store::MemoryStore;
use zarrs::storage::{Bytes, ReadableWritableListableStorage, StorageError, StoreKey, StorePrefix};

pub use atomic::AtomicWriteStore;
pub use error::{BoxError, StoreError, StoreResult};
pub use latency::{LatencyStore, ReadStats};
pub use read_only::ReadOnlyStore;
pub use spec::{ArraySpec, BloscCompressor, BloscShuffle, Compression, FillValue, ZarrFormat};
pub use zarr::{
    Children, NodeKind, ZarrArray, consolidate_metadata, create_group, group_attributes,
    list_children, node_kind,
};

/// A handle on a key-value store holding Zarr data: cheap to clone, shareable across threads.
///
/// Open one with [`Store::open`] (a path or URL), [`Store::memory`] or [`Store::filesystem`].
#[derive(Clone)]
pub struct Store {
    storage: ReadableWritableListableStorage,
    description: Arc<str>,
    read_stats: Option<Arc<ReadStats>>,
    /// The directory of a filesystem store.
    root: Option<PathBuf>,
}

/// Process-wide named memory stores (`memory://NAME`), like fsspec's memory filesystem.
static NAMED_MEMORY: LazyLock<Mutex<HashMap<String, Store>>> = LazyLock::new(Default::default);

impl Store {
    /// Opens a store by path or URL.
    ///
    /// - a plain path, or `file://PATH`: a directory on the local filesystem (created on first
    ///   write; writes are atomic, see [`AtomicWriteStore`]);
    /// - `memory://`: a new, empty in-memory store;
    /// - `memory://NAME`: the process-wide in-memory store called `NAME` (created on first use,
    ///   then shared by every `open` of the same URL, like fsspec's `memory://`);
    /// - `s3://BUCKET/PREFIX` (cargo feature `s3`): S3 or S3-compatible object storage, every key
    ///   under `PREFIX/` in `BUCKET`; endpoint, region and credentials come from the `AWS_*`
    ///   environment variables (see the `s3` module docs: `AWS_ENDPOINT_URL`, `AWS_REGION`,
    ///   `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`). Opening makes one request,
    ///   so a missing bucket or bad credentials fail here. Without the feature, an error saying to
    ///   build with `--features s3`.
    ///
    /// Other schemes (`gs://`, `http://`, ...) are an error naming the supported ones.
    ///
    /// ```
    /// use chunkflow::store::Store;
    /// let a = Store::open("memory://docs-example")?;
    /// a.set("greeting", b"hello")?;
    /// let b = Store::open("memory://docs-example")?;
    /// assert_eq!(b.get("greeting")?.as_deref(), Some(&b"hello"[..]));
    /// assert!(Store::open("gs://bucket/x.zarr").is_err());
    /// # Ok::<(), chunkflow::store::StoreError>(())
    /// ```
    pub fn open(url: &str) -> StoreResult<Store> {
        match url.split_once("://") {
            None => Store::filesystem(url),
            Some(("file", path)) => Store::filesystem(path),
            Some(("memory", name)) => {
                let name = name.trim_matches('/');
                if name.is_empty() {
                    return Ok(Store::memory());
                }
                let mut named = NAMED_MEMORY.lock().unwrap_or_else(|e| e.into_inner());
                Ok(named
                    .entry(name.to_string())
                    .or_insert_with(|| Store {
                        storage: Arc::new(MemoryStore::new()),
                        description: format!("memory://{name}").into(),
                        read_stats: None,
                        root: None,
                    })
                    .clone())
            }
            #[cfg(feature = "s3")]
            Some(("s3", location)) => s3::open(url, location),
            #[cfg(not(feature = "s3"))]
            Some(("s3", _)) => Err(StoreError::FeatureRequired {
                url: url.to_string(),
                scheme: "s3".into(),
                feature: "s3",
            }),
            Some((scheme, _)) => Err(StoreError::UnsupportedScheme {
                url: url.to_string(),
                scheme: scheme.to_string(),
            }),
        }
    }

    /// A new, empty in-memory store (not shared with any other).
    pub fn memory() -> Store {
        Store {
            storage: Arc::new(MemoryStore::new()),
            description: "memory://".into(),
            read_stats: None,
            root: None,
        }
    }

    /// A store in the directory `path` (created on first write). Writes go through
    /// [`AtomicWriteStore`], so readers never see half-written keys.
    pub fn filesystem(path: impl AsRef<Path>) -> StoreResult<Store> {
        let path = path.as_ref();
        if path.as_os_str().is_empty() {
            return Err(StoreError::InvalidPath {
                path: String::new(),
                reason: "a filesystem store needs a directory path".into(),
            });
        }
        let fs = FilesystemStore::new(path).map_err(|e| StoreError::InvalidPath {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let absolute: PathBuf = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(Store {
            storage: Arc::new(AtomicWriteStore::new(Arc::new(fs))),
            description: absolute.display().to_string().into(),
            read_stats: None,
            root: Some(absolute),
        })
    }

    /// Deletes temporary files that killed writers left under `prefix` (a filesystem store's
    /// atomic writes go through hidden temporary siblings, see [`AtomicWriteStore`]); returns how
    /// many. Other stores have none. Call it only when no writer is running there.
    pub fn purge_temporaries(&self, prefix: &str) -> StoreResult<usize> {
        let Some(root) = &self.root else {
            return Ok(0);
        };
        let start = root.join(prefix.trim_matches('/'));
        let mut removed = 0;
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if AtomicWriteStore::<()>::is_temporary_key(
                    &entry.file_name().to_string_lossy(),
                ) {
                    std::fs::remove_file(&path).map_err(|e| StoreError::Storage {
                        store: self.description.to_string(),
                        operation: format!("removing the leftover {}", path.display()),
                        source: Box::new(e),
                    })?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Wraps any zarrs storage (an object store adapter, a test double) as a `Store`.
    pub fn from_storage(storage: ReadableWritableListableStorage, description: &str) -> Store {
        Store {
            storage,
            description: description.into(),
            read_stats: None,
            root: None,
        }
    }

    /// This store with `delay` added to every read (see [`LatencyStore`]); the read counters are
    /// at [`Store::read_stats`].
    pub fn with_latency(self, delay: Duration) -> Store {
        let latency = LatencyStore::new(self.storage, delay);
        let stats = latency.stats();
        Store {
            storage: Arc::new(latency),
            description: format!("{} (+{delay:?} per read)", self.description).into(),
            read_stats: Some(stats),
            root: self.root,
        }
    }

    /// A view of this store that refuses every write (see [`ReadOnlyStore`]).
    ///
    /// ```
    /// use chunkflow::store::Store;
    /// let store = Store::memory();
    /// store.set("a", b"1")?;
    /// let view = store.read_only();
    /// assert_eq!(view.get("a")?.as_deref(), Some(&b"1"[..]));
    /// assert!(view.set("a", b"2").is_err());
    /// # Ok::<(), chunkflow::store::StoreError>(())
    /// ```
    pub fn read_only(&self) -> Store {
        Store {
            storage: Arc::new(ReadOnlyStore::new(self.storage.clone())),
            description: self.description.clone(),
            read_stats: self.read_stats.clone(),
            root: None,
        }
    }

    /// The read counters of the outermost [`Store::with_latency`] layer, if any.
    pub fn read_stats(&self) -> Option<Arc<ReadStats>> {
        self.read_stats.clone()
    }

    /// What this store is, for messages: a path, `memory://NAME`, ...
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The zarrs storage behind this handle (for the adapter module).
    pub(crate) fn storage(&self) -> &ReadableWritableListableStorage {
        &self.storage
    }

    /// The raw value at `key` (`"t2m/.zarray"`, `"a/c/0/0"`), if present.
    pub fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let k = self.key(key)?;
        self.storage
            .get(&k)
            .map(|v| v.map(|b| b.to_vec()))
            .map_err(|e| self.storage_error(format!("reading key {key:?}"), key, e))
    }

    /// The size in bytes of the value at `key`, if present (one cheap request; no data read).
    pub fn size(&self, key: &str) -> StoreResult<Option<u64>> {
        let k = self.key(key)?;
        self.storage
            .size_key(&k)
            .map_err(|e| self.storage_error(format!("reading the size of key {key:?}"), key, e))
    }

    /// Stores `value` at `key`, replacing any value there.
    pub fn set(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        let k = self.key(key)?;
        self.storage
            .set(&k, Bytes::copy_from_slice(value))
            .map_err(|e| self.storage_error(format!("writing key {key:?}"), key, e))
    }

    /// The keys under `prefix` (`""` for all, else a path such as `"t2m"`), sorted.
    pub fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let p = self.prefix(prefix)?;
        let mut keys: Vec<String> = self
            .storage
            .list_prefix(&p)
            .map_err(|e| self.storage_error(format!("listing {prefix:?}"), prefix, e))?
            .into_iter()
            .map(|k| k.as_str().to_string())
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Deletes one key (nothing happens if it does not exist).
    pub fn erase(&self, key: &str) -> StoreResult<()> {
        let k = self.key(key)?;
        self.storage
            .erase(&k)
            .map_err(|e| self.storage_error(format!("erasing {key:?}"), key, e))
    }

    /// Deletes every key under `prefix` (`""` for the whole store).
    pub fn erase_prefix(&self, prefix: &str) -> StoreResult<()> {
        let p = self.prefix(prefix)?;
        self.storage
            .erase_prefix(&p)
            .map_err(|e| self.storage_error(format!("erasing {prefix:?}"), prefix, e))
    }

    fn key(&self, key: &str) -> StoreResult<StoreKey> {
        StoreKey::new(key.trim_start_matches('/')).map_err(|e| StoreError::InvalidPath {
            path: key.to_string(),
            reason: e.to_string(),
        })
    }

    fn prefix(&self, prefix: &str) -> StoreResult<StorePrefix> {
        let p = prefix.trim_matches('/');
        let p = if p.is_empty() {
            String::new()
        } else {
            format!("{p}/")
        };
        StorePrefix::new(p).map_err(|e| StoreError::InvalidPath {
            path: prefix.to_string(),
            reason: e.to_string(),
        })
    }

    /// Classifies a zarrs storage error: permission problems become [`StoreError::ReadOnly`].
    pub(crate) fn storage_error(
        &self,
        operation: String,
        key: &str,
        err: StorageError,
    ) -> StoreError {
        if storage_error_is_read_only(&err) {
            StoreError::ReadOnly {
                store: self.description.to_string(),
                key: key.to_string(),
                source: Box::new(err),
            }
        } else {
            StoreError::Storage {
                store: self.description.to_string(),
                operation,
                source: Box::new(err),
            }
        }
    }
}

/// Whether a zarrs storage error means "this store may not be written".
pub(crate) fn storage_error_is_read_only(err: &StorageError) -> bool {
    match err {
        StorageError::ReadOnly => true,
        StorageError::IOError(io) => matches!(
            io.kind(),
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
        ),
        other => error::is_permission_error(other),
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_dispatches_on_scheme() {
        let tmp = tempfile::tempdir().unwrap();
        let plain = Store::open(tmp.path().to_str().unwrap()).unwrap();
        plain.set("a/b", b"1").unwrap();
        assert!(tmp.path().join("a/b").is_file());
        let url = format!("file://{}", tmp.path().display());
        let file = Store::open(&url).unwrap();
        assert_eq!(file.get("a/b").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(file.list("").unwrap(), ["a/b"]);
        assert_eq!(file.list("a").unwrap(), ["a/b"]);
        file.erase_prefix("a").unwrap();
        assert_eq!(file.get("a/b").unwrap(), None);

        let m1 = Store::open("memory://").unwrap();
        m1.set("k", b"v").unwrap();
        assert_eq!(Store::open("memory://").unwrap().get("k").unwrap(), None);
        let n1 = Store::open("memory://store-tests-shared").unwrap();
        n1.set("k", b"v").unwrap();
        let n2 = Store::open("memory://store-tests-shared/").unwrap();
        assert_eq!(n2.get("k").unwrap().as_deref(), Some(&b"v"[..]));

        #[cfg(not(feature = "s3"))]
        {
            let msg = Store::open("s3://bucket/data.zarr")
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains("\"s3\"") && msg.contains("--features s3"),
                "{msg}"
            );
        }
        let msg = Store::open("gs://bucket/data.zarr")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("\"gs\"") && msg.contains("memory://"), "{msg}");
        assert!(matches!(
            Store::open(""),
            Err(StoreError::InvalidPath { .. })
        ));
    }

    #[test]
    fn latency_wraps_and_counts() {
        let store = Store::memory().with_latency(Duration::from_millis(1));
        store.set("x", b"1").unwrap();
        assert_eq!(store.get("x").unwrap().as_deref(), Some(&b"1"[..]));
        let stats = store.read_stats().unwrap();
        assert_eq!(stats.total_reads(), 1);
        assert!(store.description().contains("per read"));
    }
}
