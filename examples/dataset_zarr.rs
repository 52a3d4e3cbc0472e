//! The tutorial notebook's xarray part, in Rust: a climate-like Zarr store (`time, lat, lon`,
//! 6-hourly surface temperature `tas`, written here with xarray's Zarr v2 conventions and
//! consolidated metadata) opened lazily as a dataset; then the global-mean time series
//! `tas.mean(["lat", "lon"])`, the notebook's `ds.tas.mean(['lat','lon']).dot(ds.tas.T)`, a
//! `sel` by time label, a nearest-neighbour `sel` of a point, an `isel`, and an anomaly.
//! Prints results, task counts and timings, and checks the global mean against the values it
//! wrote.
//!
//! ```text
//! cargo run --release --example dataset_zarr [-- --small] [--out DIR]
//! ```
//! `--small` shrinks the store about 20-fold (what the test suite runs); the store goes to
//! `target/examples/climate.zarr` unless `--out` says otherwise.

use std::path::PathBuf;
use std::time::Instant;

use chunkflow::array::DType;
use chunkflow::dataset::{Indexer, OpenOptions, SelOptions, Selector, Slice, open_zarr};
use chunkflow::store::{
    ArraySpec, FillValue, Store, ZarrArray, ZarrFormat, consolidate_metadata, create_group,
};
use ndarray::{Array1, Array3, ArrayD, IxDyn};
use serde_json::json;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Sizes of the generated store.
struct Grid {
    nt: usize,
    ny: usize,
    nx: usize,
    /// Time steps per chunk.
    ct: usize,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let small = args.iter().any(|a| a == "--small");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map_or_else(
            || PathBuf::from("target/examples/climate.zarr"),
            PathBuf::from,
        );
    // 180 days, 6-hourly, on a 2° grid; --small: 30 days on a 10° grid.
    let grid = if small {
        Grid {
            nt: 120,
            ny: 18,
            nx: 36,
            ct: 40,
        }
    } else {
        Grid {
            nt: 720,
            ny: 90,
            nx: 180,
            ct: 120,
        }
    };

    let t = Instant::now();
    let expected_mean = write_store(&out, &grid)?;
    println!(
        "wrote {} ({} x {} x {} float32, {:.3} s)\n",
        out.display(),
        grid.nt,
        grid.ny,
        grid.nx,
        t.elapsed().as_secs_f64()
    );

    // Open lazily: metadata only, every value is read by tasks when computed.
    let store = Store::filesystem(&out)?;
    let ds = open_zarr(&store, "", &OpenOptions::default())?;
    println!("{ds}\n");
    let tas = ds.data_array("tas")?;

    // The global-mean time series: a tree reduction over lat and lon.
    let t = Instant::now();
    let global = tas.mean(["lat", "lon"])?;
    let series = global.data().typed::<f32>().expect("float32").compute()?;
    println!(
        "tas.mean([\"lat\", \"lon\"]): dims {:?}, first {:?} K ({} tasks, {:.3} s)",
        global.dims(),
        &series.as_slice().expect("contiguous")[..4],
        global.data().typed::<f32>().expect("float32").num_tasks()?,
        t.elapsed().as_secs_f64()
    );
    for (i, (&got, &want)) in series.iter().zip(&expected_mean).enumerate() {
        let err = (f64::from(got) - want).abs();
        assert!(err < 1e-3, "global mean at step {i}: {got} vs {want}");
    }

    // The notebook's chained expression: the mean series dotted with tas.T, summing over
    // time (the one shared dimension), so the result is (lon, lat).
    let t = Instant::now();
    let z = tas.mean(["lat", "lon"])?.dot(&tas.t())?;
    let zv = z.data().typed::<f32>().expect("float32").compute()?;
    println!(
        "tas.mean([\"lat\", \"lon\"]).dot(tas.T): dims {:?}, shape {:?}, z[0, 0] = {:.1} ({:.3} s)",
        z.dims(),
        zv.shape(),
        zv[[0, 0]],
        t.elapsed().as_secs_f64()
    );

    // Selection by label: a whole day (text coarser than the 6-hourly index keeps the
    // dimension), its mean map, and the temperature nearest a point.
    let t = Instant::now();
    let day = ds.sel([("time", "2000-01-15")])?;
    let day_mean = day.data_array("tas")?.mean(["time", "lon"])?;
    let zonal = day_mean.data().typed::<f32>().expect("float32").compute()?;
    println!(
        "ds.sel(time=\"2000-01-15\"): {} time steps; its zonal mean runs from {:.1} K (north) \
         to {:.1} K (south) via {:.1} K at the equator ({:.3} s)",
        day.dim_size("time")?,
        zonal[[0]],
        zonal[[grid.ny - 1]],
        zonal[[grid.ny / 2]],
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let point = tas
        .sel_with(
            [
                ("lat", Selector::from(48.85)),
                ("lon", Selector::from(2.35)),
            ],
            &SelOptions::nearest(),
        )?
        .sel([("time", Selector::slice("2000-01-01", "2000-01-01T18"))])?;
    let pv = point.data().typed::<f32>().expect("float32").compute()?;
    let (lat, lon) = (point.coord("lat")?, point.coord("lon")?);
    println!(
        "tas.sel(lat=48.85, lon=2.35, method=\"nearest\") at lat {}, lon {}, first day: {:?} ({:.3} s)",
        lat.data().to_f64().compute()?[[]],
        lon.data().to_f64().compute()?[[]],
        pv.as_slice().expect("contiguous"),
        t.elapsed().as_secs_f64()
    );

    // Selection by position: the last time step, every 10th latitude, two longitudes.
    let t = Instant::now();
    let sub = tas.isel([
        ("time", Indexer::from(-1)),
        ("lat", Indexer::from(Slice::full().step(10))),
        ("lon", Indexer::from([0, grid.nx as i64 / 2])),
    ])?;
    let sv = sub.data().typed::<f32>().expect("float32").compute()?;
    println!(
        "tas.isel(time=-1, lat=slice(None, None, 10), lon=[0, {}]): dims {:?}, shape {:?}, \
         values {:?} ({:.3} s)",
        grid.nx / 2,
        sub.dims(),
        sv.shape(),
        sv.rows()
            .into_iter()
            .map(|r| r.to_vec())
            .collect::<Vec<_>>(),
        t.elapsed().as_secs_f64()
    );

    // Arithmetic by name: anomalies from the time mean (broadcast over time), their spread.
    let t = Instant::now();
    let anomaly = (&tas - &tas.mean(["time"])?)?;
    let spread = anomaly.std(["time", "lat", "lon"])?;
    println!(
        "(tas - tas.mean(\"time\")).std(): {:.3} K ({:.3} s)",
        spread.data().typed::<f32>().expect("float32").compute()?[[]],
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The region covering a whole array of `shape`.
fn whole(shape: &[usize]) -> Vec<std::ops::Range<u64>> {
    shape.iter().map(|&n| 0..n as u64).collect()
}

/// Surface temperature in K at time step `t` (hours `6 t`), latitude `lat`, longitude `lon`:
/// a pole-to-equator gradient, a seasonal and a diurnal cycle, and deterministic noise.
fn temperature(t: usize, lat: f64, lon: f64) -> f32 {
    let hours = 6.0 * t as f64;
    let season = (2.0 * std::f64::consts::PI * hours / (365.25 * 24.0)).cos();
    let local_hour = (hours + lon / 15.0) % 24.0;
    let diurnal = (2.0 * std::f64::consts::PI * (local_hour - 15.0) / 24.0).cos();
    let noise = {
        let mut h = (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (lat.to_bits().rotate_left(17))
            ^ (lon.to_bits().rotate_left(41));
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        (h % 1000) as f64 / 1000.0 - 0.5
    };
    let lat_r = lat.to_radians();
    (250.0 + 50.0 * lat_r.cos() - 15.0 * lat_r.sin() * season + 4.0 * diurnal + noise) as f32
}

/// Writes the store as xarray would (`_ARRAY_DIMENSIONS`, CF time units, NaN fill values for
/// floats, none for integers, consolidated metadata); returns the global mean of each time
/// step, computed while writing.
fn write_store(path: &PathBuf, g: &Grid) -> Result<Vec<f64>> {
    if path.exists() {
        std::fs::remove_dir_all(path)?;
    }
    let store = Store::filesystem(path)?;
    let attrs = |v: serde_json::Value| v.as_object().expect("an object").clone();
    create_group(
        &store,
        "",
        attrs(json!({"title": "chunkflow example: climate-like tas", "Conventions": "CF-1.8"})),
        ZarrFormat::V2,
    )?;
    let spec = |shape: Vec<usize>, chunks: Vec<usize>, dtype: DType, dims: &[&str]| {
        let fill = if dtype.is_float() {
            FillValue::NaN
        } else {
            FillValue::Null
        };
        ArraySpec::new(
            shape.iter().map(|&s| s as u64).collect(),
            chunks.iter().map(|&s| s as u64).collect(),
            dtype,
        )
        .with_format(ZarrFormat::V2)
        .with_fill_value(fill)
        .with_dimension_names(dims.iter().copied())
    };

    let dlat = 180.0 / g.ny as f64;
    let lats: Vec<f64> = (0..g.ny)
        .map(|i| 90.0 - dlat / 2.0 - dlat * i as f64)
        .collect();
    let lons: Vec<f64> = (0..g.nx).map(|i| 360.0 / g.nx as f64 * i as f64).collect();
    let hours: Vec<i64> = (0..g.nt as i64).map(|i| 6 * i).collect();

    let time = ZarrArray::create(
        &store,
        "time",
        &spec(vec![g.nt], vec![g.nt], DType::I64, &["time"])
            .with_attribute("units", "hours since 2000-01-01 00:00:00")
            .with_attribute("calendar", "proleptic_gregorian")
            .with_attribute("standard_name", "time"),
        false,
    )?;
    time.write_region(&whole(&[g.nt]), Array1::from(hours).into_dyn().view())?;
    for (name, values, units) in [
        ("lat", &lats, "degrees_north"),
        ("lon", &lons, "degrees_east"),
    ] {
        let a = ZarrArray::create(
            &store,
            name,
            &spec(vec![values.len()], vec![values.len()], DType::F64, &[name])
                .with_attribute("units", units),
            false,
        )?;
        a.write_region(
            &whole(&[values.len()]),
            Array1::from(values.clone()).into_dyn().view(),
        )?;
    }

    let tas = ZarrArray::create(
        &store,
        "tas",
        &spec(
            vec![g.nt, g.ny, g.nx],
            vec![g.ct, g.ny / 2, g.nx / 2],
            DType::F32,
            &["time", "lat", "lon"],
        )
        .with_attribute("units", "K")
        .with_attribute("long_name", "near-surface air temperature"),
        false,
    )?;
    let mut means = Vec::with_capacity(g.nt);
    for t0 in (0..g.nt).step_by(g.ct) {
        let nt = g.ct.min(g.nt - t0);
        let slab = Array3::from_shape_fn((nt, g.ny, g.nx), |(t, y, x)| {
            temperature(t0 + t, lats[y], lons[x])
        });
        for t in 0..nt {
            let step = slab.index_axis(ndarray::Axis(0), t);
            means.push(step.iter().map(|&v| f64::from(v)).sum::<f64>() / step.len() as f64);
        }
        let slab: ArrayD<f32> = slab.into_dyn();
        debug_assert_eq!(slab.raw_dim(), IxDyn(&[nt, g.ny, g.nx]));
        tas.write_region(
            &[t0 as u64..(t0 + nt) as u64, 0..g.ny as u64, 0..g.nx as u64],
            slab.view(),
        )?;
    }
    consolidate_metadata(&store, "")?;
    Ok(means)
}
