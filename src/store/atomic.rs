//! [`AtomicWriteStore`]: whole-value writes through a temporary sibling key and a rename.
//!
//! zarrs' `FilesystemStore::set` opens the destination file with `truncate(true)` and writes
//! into it in place (checked in zarrs_filesystem 0.3.14), so another process reading the chunk
//! meanwhile can see an empty or half-written file. This adapter writes each value to a
//! temporary key beside the destination (`dir/.NAME.chunkflow-tmp-PID-N`, unique per write) and
//! then renames it over the destination with the inner store's atomic rename, so a reader sees
//! the old value or the new one, never a mix.
//!
//! Invariants:
//! - Temporary names are unique per process and write, so a crashed writer's leftover never
//!   blocks a later write (zarrs' own `AtomicWriteStorageAdapter` uses a fixed `KEY.tmp` name and
//!   refuses to write while it exists), and two writers of the same key (which the caller should
//!   avoid anyway) never write into the same temporary file.
//! - Temporary keys are hidden from listings, so they never look like chunks or nodes.
//! - A failed write removes its temporary key (best effort).
//! - Partial writes (`set_partial_many`) are read-modify-write of the whole value, also through a
//!   rename; zarrs only uses them with experimental partial encoding, which we leave off.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::{
    AtomicRenameStorageTraits, Bytes, ListableStorageTraits, MaybeBytes, MaybeBytesIterator,
    OffsetBytesIterator, ReadableStorageTraits, StorageError, StoreKey, StoreKeys,
    StoreKeysPrefixes, StorePrefix, WritableStorageTraits,
};

/// The marker in every temporary key's name.
const TMP_MARKER: &str = ".chunkflow-tmp-";

/// A storage adapter making each whole-value write atomic (write a temporary key, rename).
#[derive(Debug)]
pub struct AtomicWriteStore<S: ?Sized> {
    inner: Arc<S>,
    counter: AtomicU64,
}

impl<S: ?Sized> AtomicWriteStore<S> {
    /// Wraps `inner`, whose `rename` must be atomic (a filesystem store's is).
    pub fn new(inner: Arc<S>) -> Self {
        AtomicWriteStore {
            inner,
            counter: AtomicU64::new(0),
        }
    }

    /// Whether `key` is one of our temporary keys.
    pub fn is_temporary_key(key: &str) -> bool {
        let name = key.rsplit('/').next().unwrap_or(key);
        name.starts_with('.') && name.contains(TMP_MARKER)
    }

    fn temporary_key(&self, key: &StoreKey) -> Result<StoreKey, StorageError> {
        let key = key.as_str();
        let (dir, name) = match key.rfind('/') {
            Some(i) => (&key[..=i], &key[i + 1..]),
            None => ("", key),
        };
        if name.is_empty() {
            return Err(StorageError::Other(format!(
                "cannot write the store key {key:?}: it has no name"
            )));
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        StoreKey::new(format!("{dir}.{name}{TMP_MARKER}{pid}-{n}")).map_err(StorageError::from)
    }
}

impl<S> AtomicWriteStore<S>
where
    S: ?Sized + ReadableStorageTraits + WritableStorageTraits + AtomicRenameStorageTraits,
{
    fn set_atomic(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        let tmp = self.temporary_key(key)?;
        let result = self
            .inner
            .set(&tmp, value)
            .and_then(|()| self.inner.rename(&tmp, key));
        if result.is_err() {
            let _ = self.inner.erase(&tmp);
        }
        result
    }
}

fn visible_keys(keys: StoreKeys) -> StoreKeys {
    keys.into_iter()
        .filter(|k| !AtomicWriteStore::<()>::is_temporary_key(k.as_str()))
        .collect()
}

impl<S: ?Sized + ReadableStorageTraits> ReadableStorageTraits for AtomicWriteStore<S> {
    fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        self.inner.get(key)
    }

    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        self.inner.get_partial_many(key, byte_ranges)
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

impl<S: ?Sized + ListableStorageTraits> ListableStorageTraits for AtomicWriteStore<S> {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.inner.list().map(visible_keys)
    }

    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.inner.list_prefix(prefix).map(visible_keys)
    }

    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        let listing = self.inner.list_dir(prefix)?;
        Ok(StoreKeysPrefixes::new(
            visible_keys(listing.keys().clone()),
            listing.prefixes().clone(),
        ))
    }

    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.inner.size_prefix(prefix)
    }
}

impl<S> WritableStorageTraits for AtomicWriteStore<S>
where
    S: ?Sized + ReadableStorageTraits + WritableStorageTraits + AtomicRenameStorageTraits,
{
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        self.set_atomic(key, value)
    }

    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> Result<(), StorageError> {
        let old = self.inner.get(key)?.unwrap_or_default();
        let mut value = old.to_vec();
        for (offset, bytes) in offset_values {
            let offset = usize::try_from(offset)
                .map_err(|_| StorageError::Other(format!("offset {offset} is too large")))?;
            if value.len() < offset + bytes.len() {
                value.resize(offset + bytes.len(), 0);
            }
            value[offset..offset + bytes.len()].copy_from_slice(&bytes);
        }
        self.set_atomic(key, Bytes::from(value))
    }

    fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.erase(key)
    }

    fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.inner.erase_prefix(prefix)
    }

    fn supports_set_partial(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zarrs::filesystem::FilesystemStore;

    fn key(s: &str) -> StoreKey {
        StoreKey::new(s).unwrap()
    }

    #[test]
    fn writes_through_a_hidden_temporary_and_renames() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let store = AtomicWriteStore::new(Arc::new(FilesystemStore::new(dir).unwrap()));
        store
            .set(&key("a/c/0/1"), Bytes::from_static(b"one"))
            .unwrap();
        store
            .set(&key("a/c/0/1"), Bytes::from_static(b"two"))
            .unwrap();
        store
            .set_partial(&key("a/c/0/1"), 1, Bytes::from_static(b"XYZ"))
            .unwrap();
        assert_eq!(
            store.get(&key("a/c/0/1")).unwrap().unwrap().as_ref(),
            b"tXYZ"
        );
        // No temporary file is left, on disk or in listings.
        let names: Vec<_> = std::fs::read_dir(dir.join("a/c/0"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["1"]);
        // A leftover temporary (a crashed writer's) is hidden and does not block writes.
        std::fs::write(dir.join("a/c/0/.1.chunkflow-tmp-1-0"), b"junk").unwrap();
        store
            .set(&key("a/c/0/1"), Bytes::from_static(b"three"))
            .unwrap();
        assert_eq!(store.list().unwrap(), vec![key("a/c/0/1")]);
        let listing = store
            .list_dir(&StorePrefix::new("a/c/0/").unwrap())
            .unwrap();
        assert_eq!(listing.keys(), &vec![key("a/c/0/1")]);
        assert!(AtomicWriteStore::<()>::is_temporary_key(
            "x/.zarr.json.chunkflow-tmp-3-9"
        ));
        assert!(!AtomicWriteStore::<()>::is_temporary_key("x/zarr.json"));
    }
}
