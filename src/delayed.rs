//! [`Delayed<T>`]: a typed, lazy handle on a value some task will compute (`dask.delayed`).
//!
//! Wrap a plain function with [`delayed`] (or the [`delayed!`](crate::delayed!) macro) and call
//! it on literals or other `Delayed`s: nothing runs, a task is added to a graph. `compute()`
//! runs the graph; `persist()` runs it and returns a `Delayed` backed by the computed value;
//! `visualize()` plots it.
//!
//! ## Keys and purity
//! A call's key is `"<function name>-<token>"`, the token hashing the function's identity and
//! its arguments (literals through [`Tokenize`], `Delayed`s through their keys). Identical pure
//! calls therefore share one task, in one program run and across runs of the same binary.
//! The function's identity is its type: function items and closures that capture nothing are
//! fully identified by it and are pure by default. A closure that captures state cannot be
//! hashed, so its calls get unique keys (impure) unless you say `.pure(true)` and add what it
//! captured with `.token(..)`. `.pure(false)` opts any function out (random numbers, clocks,
//! I/O with side effects). `.name("…")` sets the key prefix, `.key("…")` the whole key.
//!
//! ## Arguments
//! Arguments are taken by value. A task that is the last consumer of an input receives it
//! without a copy; a value shared by several consumers is cloned for each (wrap big shared
//! values in `Arc` to avoid that).

use std::any::type_name;
use std::borrow::Cow;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::collection::{Collection, ComputeOptions, VisualizeOptions};
use crate::error::{BoxError, Error, Result};
use crate::graph::dot::write_graph;
use crate::graph::token::{TokenHasher, Tokenize, key_name, token_of, unique_token};
use crate::graph::{
    FreezeOptions, Inputs, Key, Layer, Task, TaskFn, TaskGraph, Value, take_value, value,
};

/// A lazy value of type `T`: a key plus the graph that computes it.
///
/// ```
/// use chunkflow::prelude::*;
/// fn square(x: i64) -> i64 { x * x }
/// fn add(x: i64, y: i64) -> i64 { x + y }
/// let total = delayed!(add(delayed!(square(3)), delayed!(square(4))));
/// assert_eq!(total.compute().unwrap(), 25);
/// assert!(total.key().name().starts_with("add-"));
/// ```
pub struct Delayed<T> {
    layer: Arc<Layer>,
    key: Key,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Delayed<T> {
    fn clone(&self) -> Self {
        Delayed {
            layer: self.layer.clone(),
            key: self.key.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Delayed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Delayed({})", self.key)
    }
}

impl<T: Send + Sync + 'static> Delayed<T> {
    /// A `Delayed` holding a literal value (dask's `delayed(3)`); its key hashes the value.
    pub fn value(v: T) -> Self
    where
        T: Tokenize,
    {
        let key = Key::new(key_name(&short_type_name::<T>(), token_of(&v)));
        Self::from_task(Task::data(key, v), vec![])
    }

    /// A `Delayed` holding a value under a key you choose (for values that cannot be hashed).
    pub fn value_with_key(key: impl Into<Key>, v: T) -> Self {
        Self::from_task(Task::data(key, v), vec![])
    }

    /// A `Delayed` for a task you built yourself on top of other layers.
    pub fn from_task(task: Task, dependencies: Vec<Arc<Layer>>) -> Self {
        let key = task.key.clone();
        let layer = Arc::new(Layer::new(key.name_arc().clone(), vec![task], dependencies));
        Delayed {
            layer,
            key,
            _type: PhantomData,
        }
    }

    /// A handle on `key` inside an existing layer (no new task). The caller promises the task
    /// produces a `T`; a wrong type is reported as [`Error::TypeMismatch`] when computed.
    pub fn from_layer(layer: Arc<Layer>, key: Key) -> Self {
        Delayed {
            layer,
            key,
            _type: PhantomData,
        }
    }

    /// The key of the value.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The layer holding the task that produces this value.
    pub fn layer(&self) -> &Arc<Layer> {
        &self.layer
    }

    /// Applies `f` lazily: `x.map(f)` is `delayed(f).call((x,))`.
    pub fn map<U, F>(&self, f: F) -> Delayed<U>
    where
        T: Clone,
        U: Send + Sync + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        delayed(f).call((self,))
    }

    /// Computes the value with the default options (all cores).
    pub fn compute(&self) -> Result<T>
    where
        T: Clone,
    {
        Collection::compute(self)
    }

    /// Computes the value with the given options.
    pub fn compute_with(&self, options: &ComputeOptions) -> Result<T>
    where
        T: Clone,
    {
        Collection::compute_with(self, options)
    }

    /// Computes the value and returns a `Delayed` whose graph is just that value, under the
    /// same key: later computations built on it reuse it without running anything again.
    pub fn persist(&self) -> Result<Delayed<T>> {
        self.persist_with(&ComputeOptions::default())
    }

    /// [`Delayed::persist`] with options.
    pub fn persist_with(&self, options: &ComputeOptions) -> Result<Delayed<T>> {
        let v = options
            .run(
                std::slice::from_ref(&self.layer),
                std::slice::from_ref(&self.key),
            )?
            .pop()
            .expect("one output");
        if !v.is::<T>() {
            return Err(self.type_mismatch());
        }
        Ok(Self::from_task(
            Task::data_value(self.key.clone(), v),
            vec![],
        ))
    }

    /// Writes a plot of the graph: `.dot` always, `.svg`/`.png`/`.pdf` with Graphviz installed.
    pub fn visualize(&self, path: impl AsRef<Path>) -> Result<()> {
        self.visualize_with(path, VisualizeOptions::default())
    }

    /// [`Delayed::visualize`] with options (colour by order, plot the optimised graph).
    pub fn visualize_with(&self, path: impl AsRef<Path>, options: VisualizeOptions) -> Result<()> {
        let graph = self.graph_with(FreezeOptions {
            fuse: options.optimize,
        })?;
        write_graph(&graph, path.as_ref(), options.dot_options())
    }

    /// The frozen graph that computes this value, as built (unfused), for inspection.
    pub fn graph(&self) -> Result<TaskGraph> {
        self.graph_with(FreezeOptions { fuse: false })
    }

    fn graph_with(&self, options: FreezeOptions) -> Result<TaskGraph> {
        TaskGraph::from_layers(
            std::slice::from_ref(&self.layer),
            std::slice::from_ref(&self.key),
            options,
        )
    }

    fn type_mismatch(&self) -> Error {
        Error::TypeMismatch {
            key: self.key.clone(),
            expected: type_name::<T>(),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Collection for Delayed<T> {
    type Output = T;

    fn layers(&self) -> Vec<Arc<Layer>> {
        vec![self.layer.clone()]
    }

    fn output_keys(&self) -> Vec<Key> {
        vec![self.key.clone()]
    }

    fn finalize(&self, mut values: Vec<Value>) -> Result<T> {
        let v = values.pop().expect("one value per output key");
        take_value::<T>(v).map_err(|_| self.type_mismatch())
    }
}

/// Wraps a function so calling it builds a task instead of running it.
///
/// ```
/// use chunkflow::delayed;
/// fn add(x: i64, y: i64) -> i64 { x + y }
/// let three = delayed(add).call((1, 2));
/// let five = delayed(add).name("plus").call((three, 2));
/// assert!(five.key().name().starts_with("plus-"));
/// assert_eq!(five.compute().unwrap(), 5);
/// ```
pub fn delayed<F: 'static>(f: F) -> DelayedFn<F, Infallible> {
    DelayedFn::new(f)
}

/// Like [`delayed`] for functions returning `Result<T, E>`: an `Err` fails the task (and the
/// computation), naming its key.
///
/// ```
/// use chunkflow::try_delayed;
/// fn parse(s: String) -> Result<i64, std::num::ParseIntError> { s.parse() }
/// let bad = try_delayed(parse).call(("x1".to_string(),));
/// let err = bad.compute().unwrap_err();
/// assert!(err.to_string().contains("parse-"), "{err}");
/// ```
pub fn try_delayed<F: 'static>(f: F) -> DelayedFn<F, Fallible> {
    DelayedFn::new(f)
}

/// Marker: the function returns its value directly.
#[derive(Debug, Clone, Copy)]
pub struct Infallible;
/// Marker: the function returns `Result<T, E>`.
#[derive(Debug, Clone, Copy)]
pub struct Fallible;

/// A function wrapped by [`delayed`] / [`try_delayed`], with its naming and purity settings.
pub struct DelayedFn<F, M> {
    f: Arc<F>,
    name: Option<Cow<'static, str>>,
    key: parking_lot::Mutex<Option<Key>>,
    pure: Option<bool>,
    extra_token: Option<u64>,
    _mode: PhantomData<M>,
}

impl<F: 'static, M> DelayedFn<F, M> {
    fn new(f: F) -> Self {
        DelayedFn {
            f: Arc::new(f),
            name: None,
            key: parking_lot::Mutex::new(None),
            pure: None,
            extra_token: None,
            _mode: PhantomData,
        }
    }

    /// Sets the key prefix (default: the function's name, or `lambda` for closures).
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the whole key of the next call only (dask's `dask_key_name`); later calls get
    /// generated keys again, so two calls never share a key by accident.
    pub fn key(self, key: impl Into<Key>) -> Self {
        *self.key.lock() = Some(key.into());
        self
    }

    /// Declares the function pure (same inputs, same output: calls dedupe) or impure (every
    /// call is a new task). The default is pure for functions and non-capturing closures,
    /// impure for closures that capture state.
    pub fn pure(mut self, pure: bool) -> Self {
        self.pure = Some(pure);
        self
    }

    /// Adds captured state to the token of a closure declared `.pure(true)`.
    pub fn token(mut self, state: &impl Tokenize) -> Self {
        self.extra_token = Some(token_of(state));
        self
    }

    fn is_pure(&self) -> bool {
        self.pure.unwrap_or(std::mem::size_of::<F>() == 0)
    }

    fn prefix(&self) -> Cow<'static, str> {
        self.name
            .clone()
            .unwrap_or_else(|| Cow::Owned(function_name::<F>()))
    }

    /// Builds the task for a call with the given argument slots.
    fn build<R: Send + Sync + 'static>(
        &self,
        args: &[ArgInfo],
        deps: SmallVec<[Key; 2]>,
        layers: Vec<Arc<Layer>>,
        func: TaskFn,
    ) -> Delayed<R> {
        let key = self.key.lock().take().unwrap_or_else(|| {
            let token = if self.is_pure() {
                let mut h = TokenHasher::new();
                h.tag(type_name::<F>());
                if function_name::<F>() == "lambda" {
                    // Closures in one function share a type name; their type ids do not.
                    h.write(&token_of(&format!("{:?}", std::any::TypeId::of::<F>())).to_le_bytes());
                }
                if let Some(t) = self.extra_token {
                    h.write(&t.to_le_bytes());
                }
                for a in args {
                    h.write(&a.token.to_le_bytes());
                }
                h.finish()
            } else {
                unique_token()
            };
            Key::new(key_name(&self.prefix(), token))
        });
        let task = Task {
            key,
            deps,
            op: crate::graph::TaskOp::Call(func),
            meta: Default::default(),
        };
        Delayed::from_task(task, dedupe_layers(layers))
    }
}

fn dedupe_layers(mut layers: Vec<Arc<Layer>>) -> Vec<Arc<Layer>> {
    if layers.len() > 1 {
        let mut seen = rustc_hash::FxHashSet::default();
        layers.retain(|l| seen.insert(Arc::as_ptr(l)));
    }
    layers
}

/// One argument of a delayed call: a literal captured in the task, or another task's value.
pub enum Arg<X> {
    /// A literal, with its token.
    Literal(X, u64),
    /// A value computed by another task.
    Delayed(Delayed<X>),
    /// A list of values computed by other tasks, gathered into an `X` (a `Vec`) when the task
    /// runs.
    Many(
        Vec<(Key, Arc<Layer>)>,
        fn(Vec<Value>) -> Result<X, BoxError>,
    ),
}

/// Things that can be passed where a `Delayed` call expects an `X`: an `X` itself (a literal
/// that implements [`Tokenize`]), a `Delayed<X>`, a `&Delayed<X>`, or, where `X` is a
/// `Vec<Y>`, a list of `Delayed<Y>` (gathered when the task runs, like dask's traversal).
///
/// ```
/// use chunkflow::prelude::*;
/// fn inc(x: i64) -> i64 { x + 1 }
/// fn total(xs: Vec<i64>) -> i64 { xs.iter().sum() }
/// let parts: Vec<Delayed<i64>> = (0..10).map(|i| delayed!(inc(i))).collect();
/// assert_eq!(delayed!(total(parts)).compute().unwrap(), 55);
/// ```
pub trait IntoArg<X> {
    /// Converts into an argument slot.
    fn into_arg(self) -> Arg<X>;
}

impl<X: Tokenize + Clone + Send + Sync + 'static> IntoArg<X> for X {
    fn into_arg(self) -> Arg<X> {
        let token = token_of(&self);
        Arg::Literal(self, token)
    }
}

impl<X> IntoArg<X> for Delayed<X> {
    fn into_arg(self) -> Arg<X> {
        Arg::Delayed(self)
    }
}

impl<X> IntoArg<X> for &Delayed<X> {
    fn into_arg(self) -> Arg<X> {
        Arg::Delayed(self.clone())
    }
}

impl<Y: Clone + Send + Sync + 'static> IntoArg<Vec<Y>> for &[Delayed<Y>] {
    fn into_arg(self) -> Arg<Vec<Y>> {
        let parts = self
            .iter()
            .map(|d| (d.key.clone(), d.layer.clone()))
            .collect();
        Arg::Many(parts, gather_values::<Y>)
    }
}

impl<Y: Clone + Send + Sync + 'static> IntoArg<Vec<Y>> for Vec<Delayed<Y>> {
    fn into_arg(self) -> Arg<Vec<Y>> {
        self.as_slice().into_arg()
    }
}

impl<Y: Clone + Send + Sync + 'static> IntoArg<Vec<Y>> for &Vec<Delayed<Y>> {
    fn into_arg(self) -> Arg<Vec<Y>> {
        self.as_slice().into_arg()
    }
}

fn gather_values<Y: Clone + Send + Sync + 'static>(values: Vec<Value>) -> Result<Vec<Y>, BoxError> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            take_value::<Y>(v)
                .map_err(|_| format!("list item {i} is not a {}", type_name::<Y>()).into())
        })
        .collect()
}

/// What the key token needs to know of an argument.
#[doc(hidden)]
pub struct ArgInfo {
    token: u64,
}

/// How a task recovers an argument when it runs: a captured literal or the next input.
enum Slot<X> {
    Literal(X),
    Input,
    Inputs(usize, fn(Vec<Value>) -> Result<X, BoxError>),
}

impl<X: Clone + Send + Sync + 'static> Slot<X> {
    fn get(&self, inputs: &mut smallvec::IntoIter<[Value; 4]>, pos: usize) -> Result<X, BoxError> {
        match self {
            Slot::Literal(x) => Ok(x.clone()),
            Slot::Input => {
                let v = inputs.next().ok_or("missing input")?;
                take_value::<X>(v)
                    .map_err(|_| format!("argument {pos} is not a {}", type_name::<X>()).into())
            }
            Slot::Inputs(n, gather) => gather(inputs.by_ref().take(*n).collect()),
        }
    }
}

fn split_arg<X>(
    arg: Arg<X>,
    infos: &mut Vec<ArgInfo>,
    deps: &mut SmallVec<[Key; 2]>,
    layers: &mut Vec<Arc<Layer>>,
) -> Slot<X> {
    match arg {
        Arg::Literal(x, token) => {
            infos.push(ArgInfo { token });
            Slot::Literal(x)
        }
        Arg::Delayed(d) => {
            infos.push(ArgInfo {
                token: d.key.digest(),
            });
            deps.push(d.key);
            layers.push(d.layer);
            Slot::Input
        }
        Arg::Many(parts, gather) => {
            let mut h = TokenHasher::new();
            h.tag("list");
            let n = parts.len();
            for (key, layer) in parts {
                h.write(&key.digest().to_le_bytes());
                deps.push(key);
                layers.push(layer);
            }
            infos.push(ArgInfo { token: h.finish() });
            Slot::Inputs(n, gather)
        }
    }
}

/// Calling a wrapped function on a tuple of arguments. Implemented for functions of 0 to 8
/// arguments; `M` is inferred from the function's signature.
pub trait DelayedCall<Args, M> {
    /// The type the call produces.
    type Output;
    /// Builds the task for the call.
    fn call(&self, args: Args) -> Delayed<Self::Output>;
}

macro_rules! delayed_call {
    ($($x:ident $a:ident $s:ident $i:tt),*) => {
        impl<F, R, $($x, $a),*> DelayedCall<($($a,)*), ($($x,)*)> for DelayedFn<F, Infallible>
        where
            F: Fn($($x),*) -> R + Send + Sync + 'static,
            R: Send + Sync + 'static,
            $($x: Clone + Send + Sync + 'static, $a: IntoArg<$x>,)*
        {
            type Output = R;
            #[allow(unused_mut, unused_variables, non_snake_case)]
            fn call(&self, args: ($($a,)*)) -> Delayed<R> {
                let mut infos = Vec::new();
                let mut deps = SmallVec::new();
                let mut layers = Vec::new();
                $(let $s = split_arg(args.$i.into_arg(), &mut infos, &mut deps, &mut layers);)*
                let f = self.f.clone();
                let func: TaskFn = Arc::new(move |inputs: Inputs| {
                    let mut inputs = inputs.into_iter();
                    $(let $x = $s.get(&mut inputs, $i)?;)*
                    Ok(value(f($($x),*)))
                });
                self.build(&infos, deps, layers, func)
            }
        }

        impl<F, R, E, $($x, $a),*> DelayedCall<($($a,)*), ($($x,)*)> for DelayedFn<F, Fallible>
        where
            F: Fn($($x),*) -> Result<R, E> + Send + Sync + 'static,
            R: Send + Sync + 'static,
            E: Into<BoxError>,
            $($x: Clone + Send + Sync + 'static, $a: IntoArg<$x>,)*
        {
            type Output = R;
            #[allow(unused_mut, unused_variables, non_snake_case)]
            fn call(&self, args: ($($a,)*)) -> Delayed<R> {
                let mut infos = Vec::new();
                let mut deps = SmallVec::new();
                let mut layers = Vec::new();
                $(let $s = split_arg(args.$i.into_arg(), &mut infos, &mut deps, &mut layers);)*
                let f = self.f.clone();
                let func: TaskFn = Arc::new(move |inputs: Inputs| {
                    let mut inputs = inputs.into_iter();
                    $(let $x = $s.get(&mut inputs, $i)?;)*
                    f($($x),*).map(value).map_err(Into::into)
                });
                self.build(&infos, deps, layers, func)
            }
        }
    };
}
delayed_call!();
delayed_call!(X0 A0 S0 0);
delayed_call!(X0 A0 S0 0, X1 A1 S1 1);
delayed_call!(X0 A0 S0 0, X1 A1 S1 1, X2 A2 S2 2);
delayed_call!(X0 A0 S0 0, X1 A1 S1 1, X2 A2 S2 2, X3 A3 S3 3);
delayed_call!(X0 A0 S0 0, X1 A1 S1 1, X2 A2 S2 2, X3 A3 S3 3, X4 A4 S4 4);
delayed_call!(X0 A0 S0 0, X1 A1 S1 1, X2 A2 S2 2, X3 A3 S3 3, X4 A4 S4 4, X5 A5 S5 5);
delayed_call!(X0 A0 S0 0, X1 A1 S1 1, X2 A2 S2 2, X3 A3 S3 3, X4 A4 S4 4, X5 A5 S5 5, X6 A6 S6 6);
delayed_call!(X0 A0 S0 0, X1 A1 S1 1, X2 A2 S2 2, X3 A3 S3 3, X4 A4 S4 4, X5 A5 S5 5, X6 A6 S6 6, X7 A7 S7 7);

impl<F, M> DelayedFn<F, M> {
    /// Calls the wrapped function lazily on a tuple of arguments (literals or `Delayed`s).
    pub fn call<Args, Sig>(&self, args: Args) -> Delayed<<Self as DelayedCall<Args, Sig>>::Output>
    where
        Self: DelayedCall<Args, Sig>,
    {
        DelayedCall::call(self, args)
    }
}

/// Builds a delayed call with function-call syntax: `delayed!(add(x, 1))` is
/// `delayed(add).name("add").call((x, 1))`. Arguments may be literals or `Delayed`s.
///
/// ```
/// use chunkflow::prelude::*;
/// fn inc(x: i64) -> i64 { x + 1 }
/// let a = delayed!(inc(1));
/// let b = delayed!(inc(a));
/// assert_eq!(b.compute().unwrap(), 3);
/// ```
#[macro_export]
macro_rules! delayed {
    ($f:ident ( $($arg:expr),* $(,)? )) => {
        $crate::delayed::delayed($f).name(stringify!($f)).call(($($arg,)*))
    };
    ($($f:ident)::+ ( $($arg:expr),* $(,)? )) => {
        $crate::delayed::delayed($($f)::+).call(($($arg,)*))
    };
}

/// The last path segment of a function's type name; `lambda` for closures.
fn function_name<F>() -> String {
    let full = type_name::<F>();
    if full.contains("{{closure}}") {
        return "lambda".into();
    }
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_string()
}

/// A short name for a type: `alloc::string::String` → `string`, `i64` → `i64`.
fn short_type_name<T>() -> String {
    let full = type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::")
        .next()
        .unwrap_or(base)
        .to_ascii_lowercase()
}
