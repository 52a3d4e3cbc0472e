//! `s3://BUCKET/PREFIX` stores (cargo feature `s3`): Amazon S3 and S3-compatible object
//! storage (MinIO, Ceph, moto, R2, ...) through `object_store`'s `AmazonS3`.
//!
//! The stack: `AmazonS3` (configured from the environment) → `PrefixStore` (every key lives
//! under `PREFIX/` in the bucket, and nothing outside it is touched or listed) → zarrs'
//! `AsyncObjectStore` → zarrs' `AsyncToSyncStorageAdapter`, whose `block_on` runs each request
//! on a multi-thread tokio runtime that the store owns (2 to 8 worker threads, named
//! `chunkflow-s3`; shared by the store's clones). Our scheduler's worker threads are plain
//! threads, so the normal path is tokio's own `Runtime::block_on`, and each worker has one
//! request in flight at a time: request concurrency is the scheduler's thread count. A whole
//! value (a chunk, a metadata document) is one `GET` (zarrs' adapter alone would send a `HEAD`
//! and a ranged `GET`); sharded reads fetch inner chunks with ranged `GET`s.
//!
//! # Configuration (environment variables, read when the store is opened)
//! - `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`): the endpoint of an S3-compatible server, e.g.
//!   `http://127.0.0.1:9000`; unset means Amazon S3. Requests are path-style
//!   (`ENDPOINT/BUCKET/KEY`) unless `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`.
//! - `AWS_REGION` or `AWS_DEFAULT_REGION` (`AWS_REGION` wins): default `us-east-1`.
//! - `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optionally `AWS_SESSION_TOKEN`: static
//!   credentials. Without them `object_store` tries web identity (`AWS_WEB_IDENTITY_TOKEN_FILE`
//!   and `AWS_ROLE_ARN`), ECS task credentials, then the EC2 instance metadata service; for a
//!   public bucket set `AWS_SKIP_SIGNATURE=true`.
//! - `AWS_ALLOW_HTTP=true`: allow a plain `http://` endpoint (default: HTTPS only).
//! - Any other `AWS_*` key `object_store`'s `AmazonS3ConfigKey` knows (`AWS_S3_EXPRESS`,
//!   `AWS_CONDITIONAL_PUT`, `AWS_REQUEST_PAYER`, SSE settings, ...).
//!
//! `Store::open` makes one request (a delimited listing of the prefix) so that a missing
//! bucket, bad credentials or an unreachable endpoint fail there, with a clear message, rather
//! than as "no array here" later (a read from a missing bucket would look like a missing key).
//!
//! # Atomicity
//! An S3 `PUT` replaces an object atomically: a reader sees the old object or the new one,
//! never a part. So S3 stores need no [`AtomicWriteStore`](super::AtomicWriteStore) (that
//! adapter exists for filesystems, where a write is visible while it happens).
//!
//! # Async callers
//! zarrs' adapter would panic if its `block_on` were tokio's `Runtime::block_on` called inside
//! an async context (a tokio worker thread, or inside another `block_on`). Here, when the
//! calling thread is inside some tokio runtime, the request instead runs on this thread with
//! our runtime *entered* (so it finds its reactor and timers, which our worker threads drive)
//! and the thread parks until it completes. So calls from async code work; they block that
//! thread like any synchronous I/O, so prefer `spawn_blocking` there. Dropping the last handle
//! on a store inside an async context is fine too (the runtime is shut down in the background).

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use object_store::aws::AmazonS3;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ClientConfigKey, ObjectStore, RetryConfig};
use zarrs_object_store::AsyncObjectStore;
use zarrs_storage::byte_range::ByteRangeIterator;
use zarrs_storage::storage_adapter::async_to_sync::{
    AsyncToSyncBlockOn, AsyncToSyncStorageAdapter,
};
use zarrs_storage::{
    AsyncReadableStorageTraits, Bytes, ListableStorageTraits, MaybeBytes, MaybeBytesIterator,
    OffsetBytesIterator, ReadableStorageTraits, StorageError, StoreKey, StoreKeys,
    StoreKeysPrefixes, StorePrefix, WritableStorageTraits,
};

use super::{BoxError, Store, StoreError, StoreResult};

/// Opens `s3://BUCKET/PREFIX`; `location` is the part after `s3://`.
pub(super) fn open(url: &str, location: &str) -> StoreResult<Store> {
    let (bucket, prefix) = parse_location(url, location)?;
    let description = if prefix.is_empty() {
        format!("s3://{bucket}")
    } else {
        format!("s3://{bucket}/{prefix}")
    };
    let open_failed = |reason: String, source: Option<BoxError>| StoreError::OpenFailed {
        url: url.to_string(),
        reason,
        source,
    };

    let builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::Endpoint)
        .unwrap_or_else(|| "Amazon S3 (AWS_ENDPOINT_URL is not set)".into());
    let bad_config = |e: object_store::Error| {
        open_failed(
            format!(
                "invalid S3 configuration ({e}); check the AWS_* environment variables \
                 (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, \
                 AWS_ALLOW_HTTP)"
            ),
            Some(Box::new(e)),
        )
    };
    let allow_http = builder
        .get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if endpoint.starts_with("http://") && !allow_http {
        return Err(open_failed(
            format!(
                "the endpoint {endpoint} is plain http://, which object_store refuses unless \
                 AWS_ALLOW_HTTP=true is set"
            ),
            None,
        ));
    }
    // The probe gives up quickly: a wrong endpoint should not hang `open` for the default
    // three minutes of retries.
    let probe = builder
        .clone()
        .with_retry(RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(15),
            ..RetryConfig::default()
        })
        .build()
        .map_err(bad_config)?;
    let s3 = builder.build().map_err(bad_config)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(2, 8),
        )
        .thread_name("chunkflow-s3")
        .enable_all()
        .build()
        .map_err(|e| {
            open_failed(
                format!("cannot start the tokio runtime for S3 requests: {e}"),
                Some(Box::new(e)),
            )
        })?;
    let block_on = TokioBlockOn(Arc::new(OwnedRuntime(Some(runtime))));

    let prefix_path = (!prefix.is_empty()).then(|| ObjectPath::from(prefix.as_str()));
    if let Err(e) = block_on.block_on(probe.list_with_delimiter(prefix_path.as_ref())) {
        return Err(open_failed(
            probe_failure(bucket, &endpoint, &e),
            Some(Box::new(e)),
        ));
    }

    let storage = Arc::new(AsyncObjectStore::new(PrefixStore::new(s3, prefix.as_str())));
    let s3_storage = S3Storage {
        adapter: AsyncToSyncStorageAdapter::new(storage.clone(), block_on.clone()),
        storage,
        block_on,
    };
    Ok(Store::from_storage(Arc::new(s3_storage), &description))
}

type AsyncS3 = AsyncObjectStore<PrefixStore<AmazonS3>>;

/// zarrs' `AsyncToSyncStorageAdapter`, except that a whole-value `get` is one `GET` request:
/// the adapter's `get` goes through `get_partial_many`, which costs a `HEAD` (for the size)
/// and then a ranged `GET`, twice the latency per chunk read.
struct S3Storage {
    adapter: AsyncToSyncStorageAdapter<AsyncS3, TokioBlockOn>,
    storage: Arc<AsyncS3>,
    block_on: TokioBlockOn,
}

impl ReadableStorageTraits for S3Storage {
    fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        self.block_on.block_on(self.storage.get(key))
    }

    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        self.adapter.get_partial_many(key, byte_ranges)
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.adapter.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        self.adapter.supports_get_partial()
    }
}

impl ListableStorageTraits for S3Storage {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.adapter.list()
    }

    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.adapter.list_prefix(prefix)
    }

    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.adapter.list_dir(prefix)
    }

    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.adapter.size_prefix(prefix)
    }

    fn size(&self) -> Result<u64, StorageError> {
        self.adapter.size()
    }
}

impl WritableStorageTraits for S3Storage {
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        self.adapter.set(key, value)
    }

    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> Result<(), StorageError> {
        self.adapter.set_partial_many(key, offset_values)
    }

    fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.adapter.erase(key)
    }

    fn erase_many(&self, keys: &[StoreKey]) -> Result<(), StorageError> {
        self.adapter.erase_many(keys)
    }

    fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.adapter.erase_prefix(prefix)
    }

    fn supports_set_partial(&self) -> bool {
        self.adapter.supports_set_partial()
    }
}

/// Splits `BUCKET/PREFIX` into the bucket and the prefix (without surrounding slashes).
fn parse_location<'a>(url: &str, location: &'a str) -> StoreResult<(&'a str, String)> {
    let invalid = |reason: &str| StoreError::InvalidPath {
        path: url.to_string(),
        reason: reason.to_string(),
    };
    if location.contains(['?', '#']) {
        return Err(invalid(
            "an s3:// URL takes no query or fragment; configure the store with AWS_* \
             environment variables",
        ));
    }
    let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
    if bucket.is_empty() {
        return Err(invalid("an s3:// URL needs a bucket: s3://BUCKET/PREFIX"));
    }
    let prefix: Vec<&str> = prefix.split('/').filter(|p| !p.is_empty()).collect();
    if prefix.iter().any(|p| *p == "." || *p == "..") {
        return Err(invalid(
            "the prefix may not contain \".\" or \"..\" components",
        ));
    }
    Ok((bucket, prefix.join("/")))
}

/// Says in words why the probe listing failed.
fn probe_failure(bucket: &str, endpoint: &str, err: &object_store::Error) -> String {
    let full = err.to_string();
    let has = |s: &str| full.contains(s);
    // The first line: object_store appends the server's XML error body.
    let text = full
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches(':');
    if has("NoSuchBucket") || matches!(err, object_store::Error::NotFound { .. }) {
        format!(
            "the bucket {bucket:?} does not exist at {endpoint}; create it first, or check the \
             bucket name and AWS_ENDPOINT_URL"
        )
    } else if has("169.254.169.254") || has("169.254.170.2") {
        format!(
            "no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set and the \
             instance/container credentials service failed; set them (or AWS_SKIP_SIGNATURE=true \
             for a public bucket) ({text})"
        )
    } else if has("InvalidAccessKeyId")
        || has("SignatureDoesNotMatch")
        || has("AccessDenied")
        || matches!(
            err,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        )
    {
        format!(
            "access to the bucket {bucket:?} at {endpoint} was denied; check AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) ({text})"
        )
    } else {
        format!(
            "listing the bucket {bucket:?} at {endpoint} failed; check AWS_ENDPOINT_URL, \
             AWS_REGION and AWS_ALLOW_HTTP (an http:// endpoint needs AWS_ALLOW_HTTP=true), and \
             that the server is reachable ({text})"
        )
    }
}

/// Runs the adapter's futures on the store's own tokio runtime (shared by the store's clones).
#[derive(Clone)]
struct TokioBlockOn(Arc<OwnedRuntime>);

/// A runtime that is shut down in the background when dropped.
struct OwnedRuntime(
    /// Always `Some` until dropped.
    Option<tokio::runtime::Runtime>,
);

impl AsyncToSyncBlockOn for TokioBlockOn {
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        let runtime = self.0.0.as_ref().expect("the runtime lives until drop");
        if tokio::runtime::Handle::try_current().is_err() {
            // A plain thread (our scheduler's workers): tokio's own block_on.
            runtime.block_on(future)
        } else {
            // Inside some tokio runtime, where `Runtime::block_on` panics. Enter ours so the
            // future finds its reactor and timers (driven by our worker threads) and park this
            // thread until it completes. `unconstrained`: the caller's task budget must not
            // throttle our future, or it would spin once the budget is spent.
            let _entered = runtime.enter();
            park_until_done(tokio::task::unconstrained(future))
        }
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks (and panics inside an async context); nothing is in flight
        // once the last handle goes, so shut it down without waiting.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Polls `future` on this thread, parking between polls until its waker fires.
fn park_until_done<F: Future>(future: F) -> F::Output {
    struct Unparker(std::thread::Thread);
    impl Wake for Unparker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unparker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        // A wake before this park leaves a token, so no wake-up is lost; a spurious return
        // just polls again.
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_split_into_bucket_and_prefix() {
        let p = |l: &str| parse_location("s3://x", l).map(|(b, p)| (b.to_string(), p));
        assert_eq!(p("b").unwrap(), ("b".into(), String::new()));
        assert_eq!(p("b/").unwrap(), ("b".into(), String::new()));
        assert_eq!(p("b/x.zarr").unwrap(), ("b".into(), "x.zarr".into()));
        assert_eq!(p("b//a/b.zarr/").unwrap(), ("b".into(), "a/b.zarr".into()));
        for bad in ["", "/x", "b/../x", "b/x?region=eu", "b/x#y"] {
            let err = p(bad).unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidPath { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn parked_block_on_runs_futures_inside_another_runtime() {
        let block_on = TokioBlockOn(Arc::new(OwnedRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
        ))));
        // Off any runtime: tokio's block_on, with timers.
        let v = block_on.block_on(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            1
        });
        assert_eq!(v, 1);
        // Inside a current-thread runtime, where Runtime::block_on would panic.
        let outer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let v = outer.block_on(async {
            block_on.block_on(async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                tokio::spawn(async { 2 }).await.unwrap()
            })
        });
        assert_eq!(v, 2);
        // Dropped inside an async context: no panic.
        outer.block_on(async move { drop(block_on) });
    }
}
