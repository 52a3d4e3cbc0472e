//! The collection protocol: how lazy things (`Delayed`, arrays) become one graph and run.
//!
//! A [`Collection`] exposes the layers holding its graph, the keys of its output values, and how
//! to assemble its result from those values. [`compute`] freezes several collections into *one*
//! graph, so intermediates they share run once, executes it, and hands each collection its
//! values. [`ComputeOptions`] chooses the executor, callbacks and optimisations.

use std::path::Path;
use std::sync::Arc;

use crate::error::Result;
use crate::graph::dot::{DotOptions, NodeColor, write_graph};
use crate::graph::{FreezeOptions, Key, Layer, TaskGraph, Value};
use crate::scheduler::{Callback, Executor, ProgressBar, Threaded};

/// Something lazy that can be computed.
pub trait Collection {
    /// What computing it returns.
    type Output;

    /// The layers that hold this collection's graph.
    fn layers(&self) -> Vec<Arc<Layer>>;

    /// The keys of the values this collection is made of.
    fn output_keys(&self) -> Vec<Key>;

    /// Builds the result from the values of [`Collection::output_keys`], in that order.
    fn finalize(&self, values: Vec<Value>) -> Result<Self::Output>;

    /// Freezes this collection's graph (culled, checked, optimised as `options` says).
    fn task_graph(&self, options: FreezeOptions) -> Result<TaskGraph> {
        TaskGraph::from_layers(&self.layers(), &self.output_keys(), options)
    }

    /// Computes this collection with the default options (all cores).
    fn compute(&self) -> Result<Self::Output>
    where
        Self: Sized,
    {
        self.compute_with(&ComputeOptions::default())
    }

    /// Computes this collection with the given options.
    fn compute_with(&self, options: &ComputeOptions) -> Result<Self::Output>
    where
        Self: Sized,
    {
        compute_with((self,), options).map(|(out,)| out)
    }

    /// Writes a plot of this collection's graph (see [`VisualizeOptions`]).
    fn visualize(&self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        self.visualize_with(path, VisualizeOptions::default())
    }

    /// Writes a plot of this collection's graph with options.
    fn visualize_with(&self, path: impl AsRef<Path>, options: VisualizeOptions) -> Result<()>
    where
        Self: Sized,
    {
        let graph = self.task_graph(FreezeOptions {
            fuse: options.optimize,
        })?;
        write_graph(&graph, path.as_ref(), options.dot_options())
    }
}

/// How to plot a graph.
#[derive(Clone, Copy, Debug, Default)]
pub struct VisualizeOptions {
    /// Node colouring (none, execution order, task kind).
    pub color: NodeColor,
    /// Plot the optimised (fused) graph instead of the graph as built (default: as built, like
    /// dask's `optimize_graph=False`).
    pub optimize: bool,
}

impl VisualizeOptions {
    pub(crate) fn dot_options(&self) -> DotOptions {
        DotOptions { color: self.color }
    }
}

/// How to run a computation: executor, callbacks, optimisation.
#[derive(Clone)]
pub struct ComputeOptions {
    executor: Arc<dyn Executor>,
    callbacks: Vec<Arc<dyn Callback>>,
    fuse: bool,
}

impl Default for ComputeOptions {
    fn default() -> Self {
        ComputeOptions {
            executor: Arc::new(Threaded::default()),
            callbacks: Vec::new(),
            fuse: true,
        }
    }
}

impl ComputeOptions {
    /// Runs on this executor.
    pub fn executor(mut self, executor: impl Executor + 'static) -> Self {
        self.executor = Arc::new(executor);
        self
    }

    /// Runs on a shared executor.
    pub fn executor_arc(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executor = executor;
        self
    }

    /// Runs on a [`Threaded`] executor with `n` workers.
    pub fn threads(self, n: usize) -> Self {
        self.executor(Threaded::new(n))
    }

    /// Adds a callback.
    pub fn callback(mut self, callback: Arc<dyn Callback>) -> Self {
        self.callbacks.push(callback);
        self
    }

    /// Shows a progress bar on standard error (only when it is a terminal).
    pub fn progress(self) -> Self {
        self.callback(Arc::new(ProgressBar::new()))
    }

    /// Turns linear-chain fusion on or off (default on).
    pub fn fuse(mut self, fuse: bool) -> Self {
        self.fuse = fuse;
        self
    }

    /// The executor in use.
    pub fn get_executor(&self) -> &Arc<dyn Executor> {
        &self.executor
    }

    /// Freezes layers for outputs and runs them: the primitive every `compute` goes through.
    pub fn run(&self, layers: &[Arc<Layer>], outputs: &[Key]) -> Result<Vec<Value>> {
        let graph = TaskGraph::from_layers(layers, outputs, FreezeOptions { fuse: self.fuse })?;
        // One value per requested key, in request order (repeats included).
        self.executor.execute(&graph, &self.callbacks)
    }
}

/// Several collections computed together, sharing one graph.
pub trait ComputeMany {
    /// The tuple of results.
    type Output;
    /// Runs them.
    fn compute_many(self, options: &ComputeOptions) -> Result<Self::Output>;
}

/// Computes several collections in one graph, so shared intermediates run once.
///
/// ```
/// use chunkflow::prelude::*;
/// fn inc(x: i64) -> i64 { x + 1 }
/// fn double(x: i64) -> i64 { x * 2 }
/// let shared = delayed!(inc(1));
/// let a = delayed!(double(shared.clone()));
/// let b = delayed!(inc(shared));
/// let (a, b) = chunkflow::compute((&a, &b)).unwrap();
/// assert_eq!((a, b), (4, 3));
/// ```
pub fn compute<C: ComputeMany>(collections: C) -> Result<C::Output> {
    collections.compute_many(&ComputeOptions::default())
}

/// [`compute`] with options.
pub fn compute_with<C: ComputeMany>(collections: C, options: &ComputeOptions) -> Result<C::Output> {
    collections.compute_many(options)
}

macro_rules! compute_tuple {
    ($($name:ident $idx:tt),+) => {
        impl<$($name: Collection),+> ComputeMany for ($(&$name,)+) {
            type Output = ($($name::Output,)+);
            fn compute_many(self, options: &ComputeOptions) -> Result<Self::Output> {
                let mut layers = Vec::new();
                let mut keys = Vec::new();
                let mut counts = Vec::new();
                $(
                    layers.extend(self.$idx.layers());
                    let k = self.$idx.output_keys();
                    counts.push(k.len());
                    keys.extend(k);
                )+
                let mut values = options.run(&layers, &keys)?.into_iter();
                let mut counts = counts.into_iter();
                Ok(($(
                    self.$idx.finalize(values.by_ref().take(counts.next().unwrap()).collect())?,
                )+))
            }
        }
    };
}
compute_tuple!(A 0);
compute_tuple!(A 0, B 1);
compute_tuple!(A 0, B 1, C 2);
compute_tuple!(A 0, B 1, C 2, D 3);
compute_tuple!(A 0, B 1, C 2, D 3, E 4);
compute_tuple!(A 0, B 1, C 2, D 3, E 4, F 5);

/// Computes collections from async code (`.await` it from tokio or any executor): the graph
/// runs on its own thread with the given options, so no async runtime thread is blocked while
/// it runs. Use [`Threaded::with_io_threads`](crate::Threaded::with_io_threads) in the options
/// for many reads in flight.
///
/// ```
/// use chunkflow::prelude::*;
/// fn inc(x: i64) -> i64 { x + 1 }
/// let parts: Vec<Delayed<i64>> = (0..4).map(|i| delayed!(inc(i))).collect();
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let values = rt.block_on(chunkflow::compute_async(parts, ComputeOptions::default())).unwrap();
/// assert_eq!(values, vec![1, 2, 3, 4]);
/// ```
pub async fn compute_async<C>(
    collections: Vec<C>,
    options: ComputeOptions,
) -> Result<Vec<C::Output>>
where
    C: Collection + Send + 'static,
    C::Output: Send + 'static,
{
    let (tx, rx) = futures_channel::oneshot::channel();
    std::thread::Builder::new()
        .name("chunkflow-compute".into())
        .spawn(move || {
            let _ = tx.send(collections.as_slice().compute_many(&options));
        })
        .map_err(|e| crate::error::Error::InvalidArgument(format!("cannot start a thread: {e}")))?;
    rx.await.unwrap_or_else(|_| {
        Err(crate::error::Error::InvalidArgument(
            "the computation's thread ended without a result (it panicked)".into(),
        ))
    })
}

impl<C: Collection> ComputeMany for &[C] {
    type Output = Vec<C::Output>;
    fn compute_many(self, options: &ComputeOptions) -> Result<Self::Output> {
        let mut layers = Vec::new();
        let mut keys = Vec::new();
        let mut counts = Vec::with_capacity(self.len());
        for c in self {
            layers.extend(c.layers());
            let k = c.output_keys();
            counts.push(k.len());
            keys.extend(k);
        }
        let mut values = options.run(&layers, &keys)?.into_iter();
        self.iter()
            .zip(counts)
            .map(|(c, n)| c.finalize(values.by_ref().take(n).collect()))
            .collect()
    }
}

impl<C: Collection> ComputeMany for &Vec<C> {
    type Output = Vec<C::Output>;
    fn compute_many(self, options: &ComputeOptions) -> Result<Self::Output> {
        self.as_slice().compute_many(options)
    }
}
