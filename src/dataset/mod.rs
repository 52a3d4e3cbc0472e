//! The dataset room: named-dimension [`Dataset`]s, [`DataArray`]s and [`Variable`]s over Zarr
//! groups, following xarray's conventions (xarray's data model in Rust).
//!
//! A [`Variable`] is dimension names over a lazy [`AnyArray`] (an [`Array<T>`](crate::array::Array)
//! whose element type is chosen at run time, or datetimes), with attributes and the
//! [`Encoding`] that decoding undid. A [`Dataset`] is ordered variables sharing dimensions,
//! some of them coordinates, with attributes; a [`DataArray`] is one variable with the
//! coordinates that fit it. [`open_zarr`] reads a group written by xarray (Zarr v2 or v3) as a
//! lazy dataset: dimension names, coordinates, consolidated metadata, and CF decoding of fill
//! values, packed integers and times. `load()`/`load_async()` read every variable's chunks at
//! once with many reads in flight ([`LoadOptions`]).
//! [`Dataset::to_zarr`] writes a dataset back with the same conventions ([`WriteOptions`]), so
//! that xarray opens it identical to the source.
//! Selection and maths go by dimension name, as in xarray: `isel` ([`Indexer`]) and `sel`
//! ([`Selector`], [`SelOptions`]), reductions such as `mean(["lat", "lon"])` ([`Reduction`]),
//! `+ - * /` broadcast by name ([`BinaryOp`]), `transpose` and `dot`.
//!
//! ```
//! use chunkflow::array::{self, DType};
//! use chunkflow::dataset::{OpenOptions, open_zarr};
//! use chunkflow::store::{ArraySpec, FillValue, Store, ZarrArray, ZarrFormat, create_group};
//! use ndarray::ArrayD;
//! use serde_json::json;
//!
//! // A v2 group as xarray writes it: `_ARRAY_DIMENSIONS`, `fill_value` as the CF mask.
//! let store = Store::memory();
//! create_group(&store, "", json!({"title": "demo"}).as_object().unwrap().clone(), ZarrFormat::V2)?;
//! let spec = ArraySpec::new(vec![2, 3], vec![1, 3], DType::I16)
//!     .with_format(ZarrFormat::V2)
//!     .with_fill_value(FillValue::Int(-1))
//!     .with_dimension_names(["time", "x"])
//!     .with_attribute("scale_factor", 0.5)
//!     .with_attribute("units", "K");
//! let t = ZarrArray::create(&store, "t", &spec, false)?;
//! t.write_region(&[0..2, 0..3], ArrayD::from_shape_vec(vec![2, 3], vec![2i16, -1, 4, 6, 8, 10])?.view())?;
//!
//! let ds = open_zarr(&store, "", &OpenOptions::default())?;
//! let t = ds.variable("t")?;
//! assert_eq!(t.dtype().name(), "float64"); // packed int16, decoded
//! assert_eq!(t.attrs()["units"], "K");
//! assert_eq!(t.encoding().scale_factor, Some(0.5));
//! let mean = t.data().to_f64().nanmean_all().compute()?;
//! assert_eq!(mean, 3.0); // (1 + 2 + 3 + 4 + 5) / 5: the -1 is missing
//! assert!(ds.variable("temperature").is_err());
//! println!("{ds}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Invariants
//! - Every variable's dimensions agree in length with every other variable's (checked on
//!   every insertion); a variable named like one of its dimensions is 1-D along it and is an
//!   index coordinate.
//! - Opening reads metadata only; every value is read and decoded by tasks, one per chunk,
//!   when computed. Keys are deterministic: opening the same store twice gives the same graph.
//! - Datetimes are `datetime64[ns]`: `i64` nanoseconds since 1970-01-01 UTC, `i64::MIN` is NaT.
//!
//! Must not: call zarrs (everything goes through the store room's `ZarrArray` and group
//! functions), or import the partition room.

mod any_array;
mod data_array;
#[allow(clippy::module_inception)]
mod dataset;
mod decode;
mod encode;
mod error;
mod label_index;
mod labels;
mod load;
mod open;
mod ops;
mod promote;
mod reduce;
mod repr;
mod select;
pub mod time;
mod transpose;
pub mod tutorial;
mod variable;
mod write;

pub use any_array::{AnyArray, AnyNdArray, VarDType};
#[allow(unused_imports)]
pub(crate) use any_array::{map_any, with_any};
pub use data_array::DataArray;
pub use dataset::{Dataset, Sizes};
pub use decode::UndecodableTimes;
pub(crate) use encode::encode_variable;
pub use error::{DatasetError, DatasetResult};
pub use labels::{Label, Method, SelOptions, Selector};
pub use load::{
    DEFAULT_LOAD_CONCURRENCY, LoadOptions, MAX_LOAD_CONCURRENCY, default_load_concurrency,
    set_default_load_concurrency,
};
pub use open::{Consolidated, OpenOptions, open_zarr};
pub use ops::BinaryOp;
pub use reduce::{Reduction, ReductionOptions};
pub use select::{Indexer, Slice};
pub use transpose::ELLIPSIS;
pub use variable::{Encoding, Variable};
pub use write::{WriteMode, WriteOptions};
pub(crate) use write::{child, create_store, join_writes, plan_store};
