//! [`Flusher`]: durable chunk writes whose `fsync` runs off the writing task's thread.
//!
//! A durable atomic write on a filesystem is: write a temporary file, `fsync` it, rename it
//! over the destination. The `fsync` mostly waits for the disk, yet it holds the
//! worker that wrote the chunk: with one `fsync` per chunk a copy of thousands of small chunks
//! spends much of its time with its cores idle. A [`Flusher`] takes the last two steps off the
//! writer: the task writes the temporary file and hands it over
//! ([`submit`](Flusher::submit)), the process's few flusher threads `fsync` and rename, and
//! [`wait`](Flusher::wait) (a copy's barrier, `to_zarr`'s final task) returns once every file
//! handed over to that flusher is in place, or the first failure.
//!
//! Invariants:
//! - A destination name appears only after its data is on disk: the rename follows the
//!   `fsync`, as in a write that waits. So "the chunk exists" still means "the chunk is
//!   complete and durable", which is what resuming relies on.
//! - At most [`QUEUE`] files wait: a writer that gets ahead of the disk blocks in `submit`
//!   (bounded open files and dirty data).
//! - A failed `fsync` or rename removes its temporary file and is reported by every later
//!   [`wait`](Flusher::wait); later files are still flushed (each is complete on its own).
//! - The threads are the process's, started on first use and never stopped: a failed or
//!   aborted run's files are still flushed (each is complete on its own), and a process that
//!   exits first leaves at most temporary files (found by `purge_temporaries`).

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use crossbeam_channel::{Sender, bounded};
use parking_lot::{Condvar, Mutex};

/// Flusher threads, shared by the whole process: `fsync`s of one filesystem overlap well.
const THREADS: usize = 4;

/// Files handed over but not yet flushed, at most (all flushers together).
const QUEUE: usize = 64;

/// One file to flush: its open handle, its temporary and final paths, what it is (for
/// errors), and the flusher to report to.
struct Job {
    file: File,
    tmp: PathBuf,
    path: PathBuf,
    key: String,
    operation: String,
    state: Arc<(Mutex<State>, Condvar)>,
}

/// The first failure: the operation, the store key and the I/O error.
pub(crate) type FlushFailure = (String, String, Arc<std::io::Error>);

#[derive(Default)]
struct State {
    pending: usize,
    failure: Option<FlushFailure>,
}

/// The queue of the process's flusher threads, started on first use.
static QUEUE_TX: LazyLock<Sender<Job>> = LazyLock::new(|| {
    let (jobs, queue) = bounded::<Job>(QUEUE);
    for _ in 0..THREADS {
        let queue = queue.clone();
        std::thread::Builder::new()
            .name("chunkflow-flush".into())
            .spawn(move || {
                for job in queue.iter() {
                    flush(job);
                }
            })
            .expect("spawning a flusher thread");
    }
    jobs
});

/// `fsync`s and renames one file and reports to its flusher.
fn flush(job: Job) {
    let result = job
        .file
        .sync_all()
        .and_then(|()| std::fs::rename(&job.tmp, &job.path));
    drop(job.file);
    let (lock, done) = &*job.state;
    let mut state = lock.lock();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&job.tmp);
        state
            .failure
            .get_or_insert((job.operation, job.key, Arc::new(e)));
    }
    state.pending -= 1;
    if state.pending == 0 {
        done.notify_all();
    }
}

/// The files of one writer (a copy's or a `to_zarr`'s destination array), flushed by the
/// process's flusher threads: [`wait`](Self::wait) waits for these files only.
#[derive(Default)]
pub(crate) struct Flusher {
    state: Arc<(Mutex<State>, Condvar)>,
}

impl Flusher {
    /// A flusher with nothing handed over yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Hands over `file`, written at `tmp`, to be flushed and renamed to `path` (store key
    /// `key`, written by `operation`). Blocks while the queue is full.
    pub(crate) fn submit(
        &self,
        file: File,
        tmp: PathBuf,
        path: PathBuf,
        key: String,
        operation: String,
    ) {
        self.state.0.lock().pending += 1;
        let job = Job {
            file,
            tmp,
            path,
            key,
            operation,
            state: Arc::clone(&self.state),
        };
        // The flusher threads never stop, so the send cannot fail.
        QUEUE_TX
            .send(job)
            .expect("the flusher threads outlive their queue");
    }

    /// Waits until every file handed over so far is flushed and in place; the first failure
    /// if any flush failed.
    pub(crate) fn wait(&self) -> Result<(), FlushFailure> {
        let (lock, done) = &*self.state;
        let mut state = lock.lock();
        while state.pending > 0 {
            done.wait(&mut state);
        }
        match &state.failure {
            Some(failure) => Err(failure.clone()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(dir: &std::path::Path, name: &str, bytes: &[u8]) -> (File, PathBuf) {
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut file = File::create(&tmp).unwrap();
        file.write_all(bytes).unwrap();
        (file, tmp)
    }

    #[test]
    fn files_appear_under_their_names_once_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let flusher = Flusher::new();
        for i in 0..200 {
            let name = format!("c{i}");
            let (file, tmp) = temp_file(dir.path(), &name, name.as_bytes());
            let path = dir.path().join(&name);
            flusher.submit(file, tmp, path, name, "test".into());
        }
        flusher.wait().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 200, "no temporary file is left: {names:?}");
        for i in 0..200 {
            let name = format!("c{i}");
            assert_eq!(
                std::fs::read(dir.path().join(&name)).unwrap(),
                name.as_bytes()
            );
        }
    }

    #[test]
    fn a_failed_rename_is_reported_and_its_temporary_removed() {
        let dir = tempfile::tempdir().unwrap();
        let flusher = Flusher::new();
        let (file, tmp) = temp_file(dir.path(), "bad", b"x");
        // The destination's directory does not exist, so the rename fails.
        let path = dir.path().join("missing").join("bad");
        flusher.submit(
            file,
            tmp.clone(),
            path,
            "missing/bad".into(),
            "writing".into(),
        );
        let (good, good_tmp) = temp_file(dir.path(), "good", b"y");
        let good_path = dir.path().join("good");
        flusher.submit(
            good,
            good_tmp,
            good_path.clone(),
            "good".into(),
            "writing".into(),
        );
        let (operation, key, _) = flusher.wait().unwrap_err();
        assert_eq!(
            (operation.as_str(), key.as_str()),
            ("writing", "missing/bad")
        );
        assert!(!tmp.exists());
        assert_eq!(std::fs::read(good_path).unwrap(), b"y");
        // Reported again by later waits.
        assert!(flusher.wait().is_err());
    }
}
