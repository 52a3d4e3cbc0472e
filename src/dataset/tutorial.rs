//! Tutorial datasets (xarray's `xarray.tutorial` idea): small, reproducible, lazy datasets that
//! the examples, the CLI's `partition --pipeline` and the tests build the same way.
//!
//! [`climate`] is the climate-like dataset of xpartition's README flow: `tas` and `pr` over
//! `(time, lat, lon)` from seeded random numbers, `cell_area(lat, lon)`, and the index
//! coordinates `time`, `lat` and `lon`. Everything is a pure function of the [`ClimateSpec`], so
//! every rank of a partitioned write builds the same graph, and the values do not depend on the
//! executor, the thread count or the rank.

use super::{Dataset, Variable};
use crate::array::{self, random};
use crate::error::{Error, Result};

/// The size, chunking and seed of the [`climate`] dataset. Every process of one partitioned
/// write must use the same spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClimateSpec {
    /// Time steps (daily, from 2000-01-01).
    pub ntime: usize,
    /// Latitudes (cell centres from pole to pole).
    pub nlat: usize,
    /// Longitudes (from 0°E).
    pub nlon: usize,
    /// Time steps per chunk.
    pub time_chunk: usize,
    /// Latitudes per chunk (`None`: all of them).
    pub lat_chunk: Option<usize>,
    /// The seed of the random fields.
    pub seed: u64,
}

impl Default for ClimateSpec {
    /// 64 days on a 16 × 32 grid, 4 days per chunk, seed 0.
    fn default() -> Self {
        ClimateSpec {
            ntime: 64,
            nlat: 16,
            nlon: 32,
            time_chunk: 4,
            lat_chunk: None,
            seed: 0,
        }
    }
}

/// The lazy climate-like dataset described by `spec`: `tas` (K, 250–310) and `pr`
/// (kg m-2 s-1) over `(time, lat, lon)`, chunked `(time_chunk, lat_chunk, nlon)`;
/// `cell_area(lat, lon)` in m² (a variable without a time dimension); and the index coordinates
/// `time` (days since 2000-01-01, proleptic Gregorian), `lat` and `lon`. Only the small
/// cell-area table is computed here; the fields are task graphs.
///
/// ```
/// use chunkflow::dataset::tutorial::{ClimateSpec, climate};
///
/// let ds = climate(&ClimateSpec { ntime: 8, nlat: 4, nlon: 8, ..ClimateSpec::default() })?;
/// assert_eq!(ds.dim_size("time")?, 8);
/// assert_eq!(ds.variable("tas")?.dims(), ["time", "lat", "lon"]);
/// assert_eq!(ds.variable("tas")?.chunks().num_chunks(), 2); // (4, 4, 8) each
/// # Ok::<(), chunkflow::Error>(())
/// ```
///
/// # Errors
/// A size or chunk of zero ([`Error::InvalidArgument`], naming the field).
pub fn climate(spec: &ClimateSpec) -> Result<Dataset> {
    let ClimateSpec {
        ntime,
        nlat,
        nlon,
        time_chunk,
        lat_chunk,
        seed,
    } = *spec;
    let lat_chunk = lat_chunk.unwrap_or(nlat);
    for (name, value) in [
        ("ntime", ntime),
        ("nlat", nlat),
        ("nlon", nlon),
        ("time_chunk", time_chunk),
        ("lat_chunk", lat_chunk),
    ] {
        if value == 0 {
            return Err(Error::InvalidArgument(format!(
                "the climate dataset's {name} must be at least 1"
            )));
        }
    }
    let shape = [ntime, nlat, nlon];
    let chunks = [time_chunk, lat_chunk, nlon];
    let tas = random::random(&shape, chunks, seed)?
        .map("kelvin", |u: f64| 250.0 + 60.0 * u)
        .astype::<f32>();
    let pr = random::random(&shape, chunks, seed.wrapping_add(1))?
        .map("precip", |u: f64| 1e-4 * u * u)
        .astype::<f32>();
    let dlat = 180.0 / nlat as f64;
    let lat = array::linspace(-90.0 + dlat / 2.0, 90.0 - dlat / 2.0, nlat, nlat)?;
    let lon = array::linspace(0.0, 360.0 - 360.0 / nlon as f64, nlon, nlon)?;
    // Grid-cell area on a sphere of radius 6371 km.
    let band = lat
        .map("cell-area", move |phi: f64| {
            let r = 6.371e6f64;
            r * r * dlat.to_radians() * (360.0 / nlon as f64).to_radians() * phi.to_radians().cos()
        })
        .compute()?;
    let area = ndarray::Array2::from_shape_fn((nlat, nlon), |(i, _)| band[i]).into_dyn();
    let cell_area = array::from_ndarray(area, [lat_chunk, nlon])?;
    let time = array::arange(0i64, ntime as i64, 1, ntime)?;
    Ok(Dataset::new()
        .with_coord(
            "time",
            Variable::new(["time"], time)?
                .with_attr("units", "days since 2000-01-01")
                .with_attr("calendar", "proleptic_gregorian"),
        )?
        .with_coord(
            "lat",
            Variable::new(["lat"], lat)?.with_attr("units", "degrees_north"),
        )?
        .with_coord(
            "lon",
            Variable::new(["lon"], lon)?.with_attr("units", "degrees_east"),
        )?
        .with_variable(
            "tas",
            Variable::new(["time", "lat", "lon"], tas)?
                .with_attr("units", "K")
                .with_attr("long_name", "near-surface air temperature"),
        )?
        .with_variable(
            "pr",
            Variable::new(["time", "lat", "lon"], pr)?
                .with_attr("units", "kg m-2 s-1")
                .with_attr("long_name", "precipitation"),
        )?
        .with_variable(
            "cell_area",
            Variable::new(["lat", "lon"], cell_area)?.with_attr("units", "m2"),
        )?
        .with_attr("title", "chunkflow climate-like example")
        .with_attr("source", "seeded random numbers"))
}
