//! The Dask tutorial's array section, in Rust: a random `(600, 200, 200)` array in
//! `(300, 100, 200)` chunks and its sum (with the task graph written to a file), `ones((2000,
//! 300))` in `(200, 50)` chunks reduced over axes, `x + x.T`-style arithmetic, and the chained
//! `z = x.mean(axis=1).dot(x.T)`. Prints results, task counts and timings.
//!
//! ```text
//! cargo run --release --example array_basics [-- --small]
//! ```
//! `--small` divides the sizes by 10 (what the test suite runs).

use std::path::PathBuf;
use std::time::Instant;

use chunkflow::array::{self, random};
use chunkflow::graph::dot::graphviz_available;
use chunkflow::prelude::*;

fn main() -> Result<()> {
    let small = std::env::args().any(|a| a == "--small");
    let k = if small { 10 } else { 1 };

    // A 3-d random array: lazy until computed.
    let x = random::random(&[600 / k, 200 / k, 200 / k], [300 / k, 100 / k, 200 / k], 0)?;
    println!("x = {x}");
    let total = x.sum_all();
    let t = Instant::now();
    let s = total.compute()?;
    println!("x.sum() = {s:.3} ({:.3} s)", t.elapsed().as_secs_f64());
    let dir = PathBuf::from("target/examples");
    std::fs::create_dir_all(&dir).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let graph = dir.join(if graphviz_available() {
        "array_sum.svg"
    } else {
        "array_sum.dot"
    });
    x.sum(&[0, 1, 2])?.visualize(&graph)?;
    println!("graph of x.sum() written to {}", graph.display());

    // Ones, and means over axes.
    let y = array::ones::<f64>(&[2000 / k, 300 / k], [200 / k, 50 / k])?;
    println!("y = {y}");
    let t = Instant::now();
    let m0 = y.mean(&[0])?.compute()?;
    let m_all = y.mean_all().compute()?;
    println!(
        "y.mean(axis=0)[:3] = {:?}, y.mean() = {m_all} ({:.3} s)",
        &m0.as_slice().unwrap()[..3],
        t.elapsed().as_secs_f64()
    );
    assert!(m0.iter().all(|&v| v == 1.0) && m_all == 1.0);

    // Arithmetic with transposes: chunks are unified automatically.
    let a = random::random(&[1000 / k, 1000 / k], [250 / k, 250 / k], 1)?;
    let b = (&a + &a.t()).mean(&[0])?;
    let t = Instant::now();
    let bv = b.compute()?;
    println!(
        "(a + a.T).mean(axis=0): {} values, first {:.4} ({} tasks, {:.3} s)",
        bv.len(),
        bv[[0]],
        b.num_tasks()?,
        t.elapsed().as_secs_f64()
    );

    // Chaining: z = y.mean(axis=1).dot(y.T)-style, on random data.
    let r = random::random(&[2000 / k, 300 / k], [200 / k, 50 / k], 2)?;
    let z = r.mean(&[0])?.dot(&r.t())?;
    let t = Instant::now();
    let zv = z.compute()?;
    println!(
        "z = r.mean(axis=0).dot(r.T): shape {:?}, z[:3] = [{:.3}, {:.3}, {:.3}] ({} tasks, {:.3} s)",
        zv.shape(),
        zv[[0]],
        zv[[1]],
        zv[[2]],
        z.num_tasks()?,
        t.elapsed().as_secs_f64()
    );
    // Check against ndarray on the whole array.
    let full = r.compute()?;
    let means = full.mean_axis(ndarray::Axis(0)).unwrap();
    let full2 = full.into_dimensionality::<ndarray::Ix2>().unwrap();
    let means1 = means.into_dimensionality::<ndarray::Ix1>().unwrap();
    let expected = full2.dot(&means1);
    for (got, want) in zv.iter().zip(expected.iter()) {
        assert!((got - want).abs() < 1e-9 * want.abs().max(1.0));
    }
    println!("z matches ndarray on the whole array");
    Ok(())
}
