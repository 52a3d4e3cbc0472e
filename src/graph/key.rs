//! Task keys: the names of tasks and of the values they produce.
//!
//! A [`Key`] is a layer name (`"square-1f3a9c0d2b4e6f70"`) plus an optional chunk index
//! (`("add-9c2e…", [2, 0])`), as in dask. Keys are cheap to clone (one reference count), hash
//! with a hash computed once at construction, and compare by pointer before content. Display
//! follows dask: a plain name, or a tuple `('add-9c2e…', 2, 0)` for chunk keys.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

/// The name of a task (and of the value it produces).
///
/// ```
/// use chunkflow::graph::Key;
/// let k = Key::chunk("add-9c2e4f10aa3b5d71", &[2, 0]);
/// assert_eq!(k.to_string(), "('add-9c2e4f10aa3b5d71', 2, 0)");
/// assert_eq!(k.label(), "add");
/// assert_eq!(Key::new("square-1f3a9c0d2b4e6f70").label(), "square");
/// ```
#[derive(Clone)]
pub struct Key(Arc<KeyInner>);

struct KeyInner {
    name: Arc<str>,
    index: Box<[usize]>,
    hash: u64,
}

impl Key {
    /// A key for a single value (no chunk index).
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self::build(name.into(), Box::new([]))
    }

    /// A key for one chunk of a layer: the layer name plus the chunk's block index.
    pub fn chunk(name: impl Into<Arc<str>>, index: &[usize]) -> Self {
        Self::build(name.into(), index.into())
    }

    fn build(name: Arc<str>, index: Box<[usize]>) -> Self {
        let mut h = Xxh3::new();
        h.update(name.as_bytes());
        for i in index.iter() {
            h.update(&(*i as u64).to_le_bytes());
        }
        h.update(&[index.len() as u8]);
        Key(Arc::new(KeyInner {
            name,
            index,
            hash: h.digest(),
        }))
    }

    /// The layer name, without the chunk index.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The shared layer name (cheap to clone into sibling chunk keys).
    pub fn name_arc(&self) -> &Arc<str> {
        &self.0.name
    }

    /// The chunk index (empty for single-value keys).
    pub fn index(&self) -> &[usize] {
        &self.0.index
    }

    /// A stable 64-bit digest of the key (used for tokens and colours).
    pub fn digest(&self) -> u64 {
        self.0.hash
    }

    /// The human label: the name with hash-like suffixes removed (`"square-1f3a…"` → `"square"`),
    /// as dask's `key_split` does. Used for plots, progress and profiles.
    pub fn label(&self) -> &str {
        key_split(&self.0.name)
    }
}

/// Strips trailing `-<hex token>` words from a key name: `"sum-aggregate-0f3c9e1a77b2c4d5"` →
/// `"sum-aggregate"`.
pub fn key_split(name: &str) -> &str {
    let mut end = name.len();
    while let Some(pos) = name[..end].rfind('-') {
        let word = &name[pos + 1..end];
        if is_token_word(word) {
            end = pos;
        } else {
            break;
        }
    }
    if end == 0 { name } else { &name[..end] }
}

fn is_token_word(word: &str) -> bool {
    word.len() >= 8 && word.bytes().all(|b| b.is_ascii_hexdigit())
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash
                && self.0.name == other.0.name
                && self.0.index == other.0.index)
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&*self.0.name, &*self.0.index).cmp(&(&*other.0.name, &*other.0.index))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.index.is_empty() {
            write!(f, "{}", self.0.name)
        } else {
            write!(f, "('{}'", self.0.name)?;
            for i in self.0.index.iter() {
                write!(f, ", {i}")?;
            }
            write!(f, ")")
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

impl From<&str> for Key {
    fn from(name: &str) -> Self {
        Key::new(name)
    }
}

impl From<String> for Key {
    fn from(name: String) -> Self {
        Key::new(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_strip_tokens_only() {
        assert_eq!(key_split("square-1f3a9c0d2b4e6f70"), "square");
        assert_eq!(key_split("sum-aggregate-1f3a9c0d2b4e6f70"), "sum-aggregate");
        assert_eq!(
            key_split("random_sample-0000aaaa-1f3a9c0d"),
            "random_sample"
        );
        assert_eq!(key_split("my-task"), "my-task");
        assert_eq!(key_split("deadbeef00"), "deadbeef00");
    }

    #[test]
    fn equal_keys_hash_equal() {
        use std::collections::HashSet;
        let a = Key::chunk("x", &[1, 2]);
        let b = Key::chunk(String::from("x"), &[1, 2]);
        assert_eq!(a, b);
        let set: HashSet<Key> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_ne!(Key::chunk("x", &[1]), Key::chunk("x", &[1, 0]));
        assert_ne!(Key::new("x"), Key::chunk("x", &[0]));
    }
}
