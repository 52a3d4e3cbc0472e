//! Loading: [`Dataset::load`], [`DataArray::load`], [`Variable::load`] and their `async`
//! forms read every lazy variable into memory, with at most [`LoadOptions::concurrency`]
//! reads in flight (xarray's `load()` / `load_async()`).
//!
//! # How
//! All variables to load become *one* graph (a private [`Collection`] over their arrays), so the
//! reads of different variables overlap instead of running variable after variable. It runs
//! on a [`Threaded`] executor with `concurrency` I/O threads: every read task
//! ([`TaskKind::Read`](crate::graph::TaskKind)) runs on one of them, so reads in flight are
//! bounded by `concurrency` and **not** by the number of cores, while decoding (masking,
//! unpacking, times) runs on the worker threads (one per core by default). Each read task reads
//! its chunk's stored objects one after the other, so one read task is one request in flight.
//!
//! A loaded variable is [`Array::persist`]'s idea applied to many arrays at once: its array
//! keeps its name and chunks, and its layer becomes one data task per chunk holding the
//! computed block (no dependencies). Later computations on it read nothing from the store;
//! [`AnyArray::in_memory`] tells such arrays apart, and loading skips them (index coordinates
//! loaded once are not read again).
//!
//! How `load_async` works with synchronous stores, and why the default concurrency is 32:
//! see [`LoadOptions`] and [`DEFAULT_LOAD_CONCURRENCY`].
//!
//! Must not: call zarrs, or change a variable's name, dimensions, attributes or encoding (only
//! its data goes from lazy to in memory).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::ArrayD;

use super::any_array::{AnyArray, map_any};
use super::data_array::DataArray;
use super::dataset::Dataset;
use super::error::{DatasetError, DatasetResult};
use super::variable::Variable;
use crate::array::{Array, Element};
use crate::collection::{Collection, ComputeOptions, compute_async};
use crate::graph::{Key, Layer, Task, TaskOp, Value};
use crate::scheduler::Threaded;

/// Reads in flight when nothing else is said: 32.
///
/// xarray itself puts no limit on `load_async` (users are told to limit it themselves);
/// zarr-python bounds the chunk requests of one array operation with
/// `zarr.config["async.concurrency"]` (10). chunkflow's limit is of that order but covers a
/// whole dataset: with object-store latencies of 20–100 ms, 32 requests in flight move
/// 32 × 1 MB / 50 ms ≈ 640 MB/s with MB-sized chunks, while the memory held by in-flight
/// chunks (32 × the chunk size), the number of blocking threads and the request rate (object
/// stores throttle bursts) stay modest. Change it for the process with
/// [`set_default_load_concurrency`] or per call with [`LoadOptions::with_concurrency`]; it is
/// capped at [`MAX_LOAD_CONCURRENCY`] (each read in flight is a thread).
pub const DEFAULT_LOAD_CONCURRENCY: usize = 32;

/// The most reads in flight a load may ask for (each one is a blocking I/O thread).
pub const MAX_LOAD_CONCURRENCY: usize = 1024;

/// The process-wide default; 0 means "not set" ([`DEFAULT_LOAD_CONCURRENCY`]).
static DEFAULT_CONCURRENCY: AtomicUsize = AtomicUsize::new(0);

/// The concurrency [`LoadOptions::default`] uses: what [`set_default_load_concurrency`] last
/// set, else [`DEFAULT_LOAD_CONCURRENCY`].
pub fn default_load_concurrency() -> usize {
    match DEFAULT_CONCURRENCY.load(Ordering::Relaxed) {
        0 => DEFAULT_LOAD_CONCURRENCY,
        n => n,
    }
}

/// Sets the concurrency of every later load that does not set its own (like
/// `zarr.config.set({"async.concurrency": n})`), and returns the previous default.
///
/// ```
/// use chunkflow::dataset::{LoadOptions, default_load_concurrency, set_default_load_concurrency};
/// let before = set_default_load_concurrency(64)?;
/// assert_eq!(LoadOptions::default().concurrency, 64);
/// assert!(set_default_load_concurrency(0).is_err()); // the default is unchanged
/// assert_eq!(default_load_concurrency(), 64);
/// set_default_load_concurrency(before)?;
/// # Ok::<(), chunkflow::dataset::DatasetError>(())
/// ```
///
/// # Errors
/// When `n` is 0 or above [`MAX_LOAD_CONCURRENCY`] (the default is then unchanged).
pub fn set_default_load_concurrency(n: usize) -> DatasetResult<usize> {
    check_concurrency(n)?;
    Ok(match DEFAULT_CONCURRENCY.swap(n, Ordering::Relaxed) {
        0 => DEFAULT_LOAD_CONCURRENCY,
        previous => previous,
    })
}

fn check_concurrency(n: usize) -> DatasetResult<()> {
    if (1..=MAX_LOAD_CONCURRENCY).contains(&n) {
        return Ok(());
    }
    Err(DatasetError::Array(crate::Error::InvalidArgument(format!(
        "load concurrency must be between 1 and {MAX_LOAD_CONCURRENCY} (the most reads in \
         flight, one I/O thread each), got {n}"
    ))))
}

/// How [`Dataset::load_with`] and friends run.
///
/// Every load runs its variables in one graph on a [`Threaded`] executor with `threads`
/// workers (decoding) and `concurrency` I/O threads: each read task runs on an I/O thread, so
/// at most `concurrency` reads are in flight, over all variables, whatever the core count.
///
/// # Async loading and synchronous stores
/// chunkflow's stores are synchronous (zarrs storage; the S3 store blocks on its own runtime).
/// `load_async` therefore runs the same graph on a dedicated thread whose I/O threads are the
/// blocking pool doing the reads, and awaits the result through a channel
/// ([`compute_async`]): the caller's async runtime is never blocked, and any executor
/// (tokio, async-std, `futures::executor`) can await it. This deliberately differs from
/// xarray, whose `load_async` raises `NotImplementedError` for backends without async reads.
/// Dropping the future does not cancel the load: the thread finishes it and the result is
/// discarded.
///
/// ```
/// use chunkflow::dataset::LoadOptions;
/// let options = LoadOptions::default().with_concurrency(8).with_threads(2).with_progress(true);
/// assert_eq!((options.concurrency, options.threads, options.progress), (8, Some(2), true));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// The most reads in flight at once, over all variables (1 reads one chunk at a time).
    /// Default: [`default_load_concurrency`].
    pub concurrency: usize,
    /// Worker threads for decoding (masking, unpacking, times); `None`: one per core.
    pub threads: Option<usize>,
    /// Show a progress bar on standard error (when it is a terminal).
    pub progress: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            concurrency: default_load_concurrency(),
            threads: None,
            progress: false,
        }
    }
}

impl LoadOptions {
    /// Sets the most reads in flight.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Sets the number of decoding worker threads.
    pub fn with_threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }

    /// Turns the progress bar on or off.
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// The compute options these load options stand for: a [`Threaded`] executor with
    /// `concurrency` I/O threads.
    ///
    /// # Errors
    /// When `concurrency` is 0 or above [`MAX_LOAD_CONCURRENCY`], or `threads` is 0.
    pub fn compute_options(&self) -> DatasetResult<ComputeOptions> {
        check_concurrency(self.concurrency)?;
        let threads = match self.threads {
            Some(0) => {
                return Err(DatasetError::Array(crate::Error::InvalidArgument(
                    "load threads must be at least 1 (or None for one per core)".into(),
                )));
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let executor = Threaded::new(threads).with_io_threads(self.concurrency);
        let options = ComputeOptions::default().executor(executor);
        Ok(if self.progress {
            options.progress()
        } else {
            options
        })
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory arrays
// ---------------------------------------------------------------------------------------------

impl AnyArray {
    /// Whether every chunk is already computed (a loaded or persisted array): its layer holds
    /// only data tasks and builds on nothing, so computing it reads no store.
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::AnyArray;
    /// let lazy = AnyArray::from(array::arange(0i32, 4, 1, 2)?);
    /// assert!(!lazy.in_memory());
    /// let loaded = AnyArray::from(array::arange(0i32, 4, 1, 2)?.persist()?);
    /// assert!(loaded.in_memory());
    /// # Ok::<(), chunkflow::Error>(())
    /// ```
    pub fn in_memory(&self) -> bool {
        let layer = self.layer();
        layer.dependencies().is_empty()
            && layer
                .tasks()
                .iter()
                .all(|t| matches!(t.op, TaskOp::Data(_)))
    }
}

/// `array` backed by its computed chunks `values` (in `output_keys` order), under the same
/// name and keys.
fn in_memory_array<T: Element>(array: &Array<T>, values: Vec<Value>) -> crate::Result<Array<T>> {
    let itemsize = T::DTYPE.itemsize() as u64;
    let chunks = array.chunks();
    let tasks = chunks
        .blocks()
        .zip(values)
        .map(|(index, v)| {
            let key = array.block_key(&index);
            if !v.is::<ArrayD<T>>() {
                return Err(crate::Error::TypeMismatch {
                    key,
                    expected: std::any::type_name::<ArrayD<T>>(),
                });
            }
            let elems: usize = chunks.block_shape(&index).iter().product();
            Ok(Task::data_value(key, v).with_nbytes(elems as u64 * itemsize))
        })
        .collect::<crate::Result<Vec<Task>>>()?;
    let name: Arc<str> = array.name().into();
    let layer = Arc::new(Layer::new(name.clone(), tasks, vec![]));
    Ok(Array::from_parts(name, chunks.clone(), layer))
}

/// Arrays computed together in one graph, coming back in memory: what every load runs.
struct LoadPlan {
    arrays: Vec<AnyArray>,
}

impl Collection for LoadPlan {
    type Output = Vec<AnyArray>;

    fn layers(&self) -> Vec<Arc<Layer>> {
        self.arrays.iter().map(|a| a.layer().clone()).collect()
    }

    fn output_keys(&self) -> Vec<Key> {
        self.arrays.iter().flat_map(|a| a.output_keys()).collect()
    }

    fn finalize(&self, values: Vec<Value>) -> crate::Result<Vec<AnyArray>> {
        let mut values = values.into_iter();
        self.arrays
            .iter()
            .map(|a| {
                let mine: Vec<Value> = values.by_ref().take(a.num_chunks()).collect();
                map_any!(a, a => in_memory_array(a, mine))
            })
            .collect()
    }
}

impl LoadPlan {
    /// Runs the plan on the calling thread.
    fn run(self, options: &LoadOptions) -> DatasetResult<Vec<AnyArray>> {
        let compute = options.compute_options()?;
        if self.arrays.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.compute_with(&compute)?)
    }

    /// Runs the plan on its own thread and awaits it (see the module docs).
    fn run_async(
        self,
        options: &LoadOptions,
    ) -> impl Future<Output = DatasetResult<Vec<AnyArray>>> + Send + 'static + use<> {
        let compute = options.compute_options();
        async move {
            let compute = compute?;
            if self.arrays.is_empty() {
                return Ok(Vec::new());
            }
            let mut out = compute_async(vec![self], compute).await?;
            Ok(out.pop().expect("one plan, one result"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Variable
// ---------------------------------------------------------------------------------------------

impl Variable {
    /// Whether the data is in memory (loaded): computing it reads no store (xarray's
    /// `Variable._in_memory`).
    pub fn in_memory(&self) -> bool {
        self.data.in_memory()
    }

    /// The variable with its data read into memory, with the default [`LoadOptions`]
    /// (xarray's `Variable.load()`). An in-memory variable comes back as it is.
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::Variable;
    /// let v = Variable::new(["x"], array::arange(0.0f64, 6.0, 1.0, 2)?)?.with_attr("units", "m");
    /// let loaded = v.load()?;
    /// assert!(loaded.in_memory() && !v.in_memory());
    /// assert_eq!(loaded.attrs()["units"], "m");
    /// assert_eq!(loaded.data().to_f64().sum_all().compute()?, 15.0);
    /// # Ok::<(), chunkflow::dataset::DatasetError>(())
    /// ```
    ///
    /// # Errors
    /// A read or decoding failure (naming the task, the array and the store).
    pub fn load(&self) -> DatasetResult<Variable> {
        self.load_with(&LoadOptions::default())
    }

    /// [`Variable::load`] with options.
    ///
    /// # Errors
    /// As [`Variable::load`], and invalid options.
    pub fn load_with(&self, options: &LoadOptions) -> DatasetResult<Variable> {
        let (plan, slots) = plan_for([&self.data]);
        let loaded = plan.run(options)?;
        Ok(self.replaced(&slots, loaded))
    }

    /// [`Variable::load`] from async code: the reads run on a blocking I/O pool of its own,
    /// never on the caller's runtime (see [`LoadOptions`]). The future owns what it
    /// needs (`'static`), so it can be spawned or joined with others.
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::Variable;
    /// let v = Variable::new(["x"], array::arange(0i64, 4, 1, 2)?)?;
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let loaded = rt.block_on(v.load_async())?;
    /// assert!(loaded.in_memory());
    /// # Ok::<(), chunkflow::dataset::DatasetError>(())
    /// ```
    pub fn load_async(
        &self,
    ) -> impl Future<Output = DatasetResult<Variable>> + Send + 'static + use<> {
        self.load_async_with(&LoadOptions::default())
    }

    /// [`Variable::load_async`] with options.
    pub fn load_async_with(
        &self,
        options: &LoadOptions,
    ) -> impl Future<Output = DatasetResult<Variable>> + Send + 'static + use<> {
        let (plan, slots) = plan_for([&self.data]);
        let run = plan.run_async(options);
        let this = self.clone();
        async move {
            let loaded = run.await?;
            Ok(this.replaced(&slots, loaded))
        }
    }

    /// This variable with its data replaced when it was loaded (`slots` is `[0]`, or empty
    /// when it already was in memory).
    fn replaced(&self, slots: &[usize], loaded: Vec<AnyArray>) -> Variable {
        let mut out = self.clone();
        if let (Some(0), Some(data)) = (slots.first(), loaded.into_iter().next()) {
            out.data = data;
        }
        out
    }
}

/// A plan loading the arrays that are not in memory yet, and the positions (in `arrays`) of
/// those it loads, in plan order.
fn plan_for<'a>(arrays: impl IntoIterator<Item = &'a AnyArray>) -> (LoadPlan, Vec<usize>) {
    let mut slots = Vec::new();
    let mut todo = Vec::new();
    for (i, a) in arrays.into_iter().enumerate() {
        if !a.in_memory() {
            slots.push(i);
            todo.push(a.clone());
        }
    }
    (LoadPlan { arrays: todo }, slots)
}

// ---------------------------------------------------------------------------------------------
// Dataset
// ---------------------------------------------------------------------------------------------

impl Dataset {
    /// Whether every variable (coordinates included) is in memory.
    pub fn in_memory(&self) -> bool {
        self.variables().all(|(_, v)| v.in_memory())
    }

    /// The dataset with every variable's data (coordinates included) read into memory, with
    /// the default [`LoadOptions`] (xarray's `Dataset.load()`). All variables are read in one
    /// graph with up to [`LoadOptions::concurrency`] reads in flight, so reads of different
    /// variables overlap; variables already in memory are not read again. Names, dimensions,
    /// attributes and encodings are unchanged.
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{Dataset, LoadOptions, Variable};
    ///
    /// let ds = Dataset::new()
    ///     .with_variable("x", Variable::new(["x"], array::arange(0.0f64, 4.0, 1.0, 4)?)?)?
    ///     .with_variable("t", Variable::new(["time", "x"], array::ones::<f32>(&[6, 4], [2, 4])?)?)?;
    /// let loaded = ds.load_with(&LoadOptions::default().with_concurrency(8))?;
    /// assert!(loaded.in_memory() && !ds.in_memory());
    /// let t = loaded.variable("t")?.data().to_f64().sum_all().compute()?;
    /// assert_eq!(t, 24.0);
    /// # Ok::<(), chunkflow::dataset::DatasetError>(())
    /// ```
    ///
    /// # Errors
    /// A read or decoding failure (naming the task, the array and the store); nothing is
    /// returned half loaded.
    pub fn load(&self) -> DatasetResult<Dataset> {
        self.load_with(&LoadOptions::default())
    }

    /// [`Dataset::load`] with options.
    ///
    /// # Errors
    /// As [`Dataset::load`], and invalid options.
    pub fn load_with(&self, options: &LoadOptions) -> DatasetResult<Dataset> {
        let (plan, slots) = plan_for(self.variables().map(|(_, v)| &v.data));
        let loaded = plan.run(options)?;
        Ok(self.replaced(&slots, loaded))
    }

    /// [`Dataset::load`] from async code (xarray's `await ds.load_async()`, with a limit):
    /// the reads run on a blocking I/O pool of their own, never on the caller's runtime (see
    /// [`LoadOptions`]). The future owns what it needs (`'static`).
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{Dataset, LoadOptions, Variable};
    ///
    /// let ds = Dataset::new()
    ///     .with_variable("a", Variable::new(["x"], array::arange(0i32, 6, 1, 2)?)?)?
    ///     .with_variable("b", Variable::new(["x"], array::ones::<f64>(&[6], [3])?)?)?;
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let loaded = rt.block_on(ds.load_async_with(&LoadOptions::default().with_concurrency(4)))?;
    /// assert!(loaded.in_memory());
    /// # Ok::<(), chunkflow::dataset::DatasetError>(())
    /// ```
    pub fn load_async(
        &self,
    ) -> impl Future<Output = DatasetResult<Dataset>> + Send + 'static + use<> {
        self.load_async_with(&LoadOptions::default())
    }

    /// [`Dataset::load_async`] with options.
    pub fn load_async_with(
        &self,
        options: &LoadOptions,
    ) -> impl Future<Output = DatasetResult<Dataset>> + Send + 'static + use<> {
        let (plan, slots) = plan_for(self.variables().map(|(_, v)| &v.data));
        let run = plan.run_async(options);
        let this = self.clone();
        async move {
            let loaded = run.await?;
            Ok(this.replaced(&slots, loaded))
        }
    }

    /// This dataset with its index coordinates (1-D coordinates named after their dimension)
    /// read into memory, as xarray reads them when it opens a store (to build a pandas index
    /// from each): label selection (`sel`) then reads nothing, however often it is called. One
    /// graph with up to `options.concurrency` reads in flight.
    pub(crate) fn with_indexes_loaded(self, options: &LoadOptions) -> DatasetResult<Dataset> {
        let indexes: Vec<usize> = self
            .variables()
            .enumerate()
            .filter(|(_, (name, v))| self.coord_names.contains(*name) && v.dims() == [*name])
            .map(|(i, _)| i)
            .collect();
        let vars: Vec<&Variable> = self.variables().map(|(_, v)| v).collect();
        let (plan, slots) = plan_for(indexes.iter().map(|&i| &vars[i].data));
        if slots.is_empty() {
            return Ok(self);
        }
        let loaded = plan.run(options)?;
        let slots: Vec<usize> = slots.into_iter().map(|s| indexes[s]).collect();
        Ok(self.replaced(&slots, loaded))
    }

    /// This dataset with the variables at `slots` (positions in variable order) given the
    /// loaded data.
    fn replaced(&self, slots: &[usize], loaded: Vec<AnyArray>) -> Dataset {
        let mut out = self.clone();
        for (&i, data) in slots.iter().zip(loaded) {
            let name = &self.names[i];
            out.variables
                .get_mut(name)
                .expect("every name is a variable")
                .data = data;
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// DataArray
// ---------------------------------------------------------------------------------------------

impl DataArray {
    /// Whether the data and every coordinate are in memory.
    pub fn in_memory(&self) -> bool {
        self.variable.in_memory() && self.coords.iter().all(|(_, c)| c.in_memory())
    }

    /// The data array with its data and its coordinates read into memory, in one graph, with
    /// the default [`LoadOptions`] (xarray's `DataArray.load()`).
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{DataArray, Variable};
    /// let t = Variable::new(["x"], array::ones::<f32>(&[4], [2])?)?;
    /// let x = Variable::new(["x"], array::arange(0.0f64, 4.0, 1.0, 4)?)?;
    /// let da = DataArray::new(t).with_name("t").with_coord("x", x)?;
    /// let loaded = da.load()?;
    /// assert!(loaded.in_memory() && loaded.coord("x")?.in_memory());
    /// # Ok::<(), chunkflow::dataset::DatasetError>(())
    /// ```
    ///
    /// # Errors
    /// A read or decoding failure (naming the task, the array and the store).
    pub fn load(&self) -> DatasetResult<DataArray> {
        self.load_with(&LoadOptions::default())
    }

    /// [`DataArray::load`] with options.
    ///
    /// # Errors
    /// As [`DataArray::load`], and invalid options.
    pub fn load_with(&self, options: &LoadOptions) -> DatasetResult<DataArray> {
        let (plan, slots) = plan_for(self.arrays());
        let loaded = plan.run(options)?;
        Ok(self.replaced(&slots, loaded))
    }

    /// [`DataArray::load`] from async code (xarray's `await da.load_async()`); see
    /// [`Dataset::load_async`].
    pub fn load_async(
        &self,
    ) -> impl Future<Output = DatasetResult<DataArray>> + Send + 'static + use<> {
        self.load_async_with(&LoadOptions::default())
    }

    /// [`DataArray::load_async`] with options.
    pub fn load_async_with(
        &self,
        options: &LoadOptions,
    ) -> impl Future<Output = DatasetResult<DataArray>> + Send + 'static + use<> {
        let (plan, slots) = plan_for(self.arrays());
        let run = plan.run_async(options);
        let this = self.clone();
        async move {
            let loaded = run.await?;
            Ok(this.replaced(&slots, loaded))
        }
    }

    /// The data, then each coordinate's, in order.
    fn arrays(&self) -> impl Iterator<Item = &AnyArray> {
        std::iter::once(&self.variable.data).chain(self.coords.iter().map(|(_, c)| &c.data))
    }

    /// Slot 0 is the data, slot `i + 1` coordinate `i`.
    fn replaced(&self, slots: &[usize], loaded: Vec<AnyArray>) -> DataArray {
        let mut out = self.clone();
        for (&i, data) in slots.iter().zip(loaded) {
            match i {
                0 => out.variable.data = data,
                i => out.coords[i - 1].1.data = data,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array;

    #[test]
    fn options_are_checked() {
        let bad = LoadOptions::default().with_concurrency(0);
        let Err(err) = bad.compute_options() else {
            panic!("concurrency 0 accepted")
        };
        let err = err.to_string();
        assert!(
            err.contains("between 1 and 1024") && err.contains("got 0"),
            "{err}"
        );
        assert!(
            LoadOptions::default()
                .with_concurrency(MAX_LOAD_CONCURRENCY + 1)
                .compute_options()
                .is_err()
        );
        assert!(
            LoadOptions::default()
                .with_threads(0)
                .compute_options()
                .is_err()
        );
        let v = Variable::new(["x"], array::arange(0i32, 4, 1, 2).unwrap()).unwrap();
        assert!(v.load_with(&bad).is_err());
    }

    #[test]
    fn loading_keeps_names_and_chunks() {
        let x = array::arange(0.0f64, 10.0, 1.0, 3)
            .unwrap()
            .map("double", |v| v * 2.0);
        let v = Variable::new(["x"], x.clone()).unwrap();
        let loaded = v.load().unwrap();
        assert!(loaded.in_memory());
        assert_eq!(loaded.data().name(), x.name());
        assert_eq!(loaded.chunks(), x.chunks());
        let tasks = loaded.data().layer().tasks();
        assert_eq!(tasks.len(), 4);
        assert_eq!(tasks[3].meta.nbytes, 8); // the last chunk holds one f64
        assert_eq!(
            loaded.data().typed::<f64>().unwrap().compute().unwrap(),
            x.compute().unwrap()
        );
        // Loading a loaded variable changes nothing and runs nothing.
        let again = loaded.load().unwrap();
        assert!(Arc::ptr_eq(again.data().layer(), loaded.data().layer()));
    }
}
