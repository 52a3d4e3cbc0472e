//! [`StoreError`]: everything that can go wrong opening, reading or writing a Zarr store.
//!
//! Each variant names the store and the node (array or group path) involved and, where the user
//! can do something about it, says what. zarrs' own error types never appear in the public API:
//! they are carried as boxed sources, so the next zarrs release cannot break our callers.

use std::fmt;
use std::ops::Range;

/// A boxed error from a lower layer (zarrs, the filesystem).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`StoreError`].
pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// Everything that can go wrong in the store room.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A URL names a scheme this build cannot open.
    #[error(
        "cannot open store {url:?}: unsupported scheme {scheme:?} (supported: {})",
        SUPPORTED_SCHEMES
    )]
    UnsupportedScheme {
        /// The URL as given.
        url: String,
        /// Its scheme (the part before `://`).
        scheme: String,
    },

    /// A URL names a scheme that chunkflow supports behind a cargo feature this build lacks
    /// (`s3://` without the `s3` feature).
    #[error(
        "cannot open store {url:?}: unsupported scheme {scheme:?} in this build: {scheme}:// \
         stores need chunkflow built with the {feature:?} feature (cargo build --features \
         {feature}); this build supports {}",
        SUPPORTED_SCHEMES
    )]
    FeatureRequired {
        /// The URL as given.
        url: String,
        /// Its scheme (the part before `://`).
        scheme: String,
        /// The cargo feature that adds it.
        feature: &'static str,
    },

    /// A store could not be opened (a remote store's configuration is wrong, its bucket does
    /// not exist, or it cannot be reached).
    #[error("cannot open store {url:?}: {reason}")]
    OpenFailed {
        /// The URL as given.
        url: String,
        /// What went wrong and what to do about it.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// A store or node path is malformed.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No Zarr array (or group) at a path.
    #[error(
        "no Zarr {expected} at {path:?} in store {store} ({found}); check the store and the path, \
         or create it first"
    )]
    NotFound {
        /// The store's description.
        store: String,
        /// The node path.
        path: String,
        /// `"array"` or `"group"`: what the caller asked for.
        expected: &'static str,
        /// What is there instead (`"nothing there"`, `"a group is there"`, ...).
        found: String,
    },

    /// A node already exists where one was to be created.
    #[error(
        "a Zarr {existing} already exists at {path:?} in store {store}; pass overwrite = true to \
         replace it (this deletes its data)"
    )]
    NodeExists {
        /// The store's description.
        store: String,
        /// The node path.
        path: String,
        /// `"array"` or `"group"`.
        existing: &'static str,
    },

    /// The array's data type has no [`DType`](crate::array::DType) counterpart.
    #[error(
        "array {path:?} in store {store} has data type {dtype}, which chunkflow does not support \
         (supported: bool, int8-64, uint8-64, float32, float64)"
    )]
    UnsupportedDType {
        /// The store's description.
        store: String,
        /// The array path.
        path: String,
        /// The data type as the metadata names it.
        dtype: String,
    },

    /// The array's metadata uses something zarrs or chunkflow cannot handle (a codec, a chunk
    /// grid, a chunk key encoding, a fill value).
    #[error("array {path:?} in store {store}: {what}")]
    Unsupported {
        /// The store's description.
        store: String,
        /// The array path.
        path: String,
        /// What is unsupported, in words.
        what: String,
    },

    /// An element type other than the array's was asked for.
    #[error(
        "array {path:?} holds {stored} but was accessed as {requested}; read it with the stored \
         type and convert (e.g. Array::astype)"
    )]
    DTypeMismatch {
        /// The array path.
        path: String,
        /// The array's dtype.
        stored: crate::array::DType,
        /// The element type the caller used.
        requested: crate::array::DType,
    },

    /// An [`ArraySpec`](super::ArraySpec) is inconsistent.
    #[error("invalid array spec for {path:?}: {reason}")]
    InvalidSpec {
        /// The array path.
        path: String,
        /// What is wrong.
        reason: String,
    },

    /// A chunk index lies outside the chunk grid, or has the wrong number of dimensions.
    #[error("chunk index {index:?} is outside the chunk grid {grid:?} of array {path:?}")]
    ChunkIndexOutOfBounds {
        /// The array path.
        path: String,
        /// The index asked for.
        index: Vec<u64>,
        /// The number of chunks along each axis.
        grid: Vec<u64>,
    },

    /// A region lies outside the array, or has the wrong number of dimensions.
    #[error("region {} is outside array {path:?} of shape {shape:?}", fmt_region(.region))]
    RegionOutOfBounds {
        /// The array path.
        path: String,
        /// The region asked for.
        region: Vec<Range<u64>>,
        /// The array's shape.
        shape: Vec<u64>,
    },

    /// Data to write has another shape than the chunk or region it is written to.
    #[error(
        "cannot write data of shape {found:?} to {target} of array {path:?}, which has shape \
         {expected:?}"
    )]
    ShapeMismatch {
        /// The array path.
        path: String,
        /// What was written to (`"chunk [1, 0]"`, `"region [0..4, 0..8]"`).
        target: String,
        /// The shape the target has.
        expected: Vec<u64>,
        /// The shape of the data given.
        found: Vec<u64>,
    },

    /// A write region does not cover whole chunks (or shards).
    #[error(
        "region {} of array {path:?} is not aligned to its write grid {write_shape:?}: {detail}; \
         writes must cover whole chunks (shards, for sharded arrays) so that each one has exactly \
         one writer: rechunk the data so every chunk boundary falls on a multiple of \
         {write_shape:?} (or on the array's end), or create the array with chunks that divide the \
         data's chunks",
        fmt_region(.region)
    )]
    MisalignedWrite {
        /// The array path.
        path: String,
        /// The region asked for.
        region: Vec<Range<u64>>,
        /// The array's write shape (chunk or shard shape).
        write_shape: Vec<u64>,
        /// Which axis is misaligned, and how.
        detail: String,
    },

    /// A stored chunk could not be decoded.
    #[error(
        "chunk {chunk:?} (key {key:?}) of array {path:?} in store {store} is corrupt: {source}"
    )]
    CorruptChunk {
        /// The store's description.
        store: String,
        /// The array path.
        path: String,
        /// The chunk index (in the write grid: shards for sharded arrays).
        chunk: Vec<u64>,
        /// The store key of the chunk.
        key: String,
        /// What the decoder said.
        #[source]
        source: BoxError,
    },

    /// Metadata in the store is not valid JSON or not valid Zarr.
    #[error("invalid Zarr metadata at key {key:?} in store {store}: {message}")]
    InvalidMetadata {
        /// The store's description.
        store: String,
        /// The metadata key.
        key: String,
        /// What is wrong.
        message: String,
    },

    /// The store refused a write (read-only filesystem, permission denied).
    #[error(
        "cannot write {key:?} to store {store}: the store is read-only or permission was denied \
         ({source}); write to another location or fix its permissions"
    )]
    ReadOnly {
        /// The store's description.
        store: String,
        /// The key (or node path) being written.
        key: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// Any other failure of the underlying storage.
    #[error("store {store}: {operation} failed: {source}")]
    Storage {
        /// The store's description.
        store: String,
        /// What was being done (`"reading chunk [0, 1] of \"t2m\""`).
        operation: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

/// The store URLs this build opens, for messages.
#[cfg(feature = "s3")]
const SUPPORTED_SCHEMES: &str =
    "a plain path, file://PATH, memory://, memory://NAME or s3://BUCKET/PREFIX";
#[cfg(not(feature = "s3"))]
const SUPPORTED_SCHEMES: &str = "a plain path, file://PATH, memory:// or memory://NAME";

/// Formats a region as `[0..4, 2..8]`.
pub(crate) fn fmt_region(region: &[Range<u64>]) -> String {
    struct R<'a>(&'a [Range<u64>]);
    impl fmt::Display for R<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("[")?;
            for (i, r) in self.0.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{}..{}", r.start, r.end)?;
            }
            f.write_str("]")
        }
    }
    R(region).to_string()
}

/// Whether `err` (or any error in its source chain) is an I/O error meaning "you may not write
/// here".
pub(crate) fn is_permission_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let kind = e
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                e.downcast_ref::<std::sync::Arc<std::io::Error>>()
                    .map(|io| io.kind())
            });
        if matches!(
            kind,
            Some(std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem)
        ) {
            return true;
        }
        cur = e.source();
    }
    false
}
