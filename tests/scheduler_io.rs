//! I/O threads: read tasks run on their own pool, so reads in flight are bounded by the I/O
//! thread count, not the cores; computation stays correct and the limit is respected.

use std::time::Duration;

use chunkflow::array::{DType, from_zarr};
use chunkflow::prelude::*;
use chunkflow::store::{ArraySpec, Store, ZarrArray};
use ndarray::{ArrayD, IxDyn};

/// 50 arrays of 4 chunks each behind a store that adds `delay` to every read.
fn latency_store(delay: Duration) -> Store {
    let store = Store::memory();
    for v in 0..50 {
        let spec = ArraySpec::new(vec![4, 8], vec![1, 8], DType::F64);
        let a = ZarrArray::create(&store, &format!("v{v}"), &spec, false).unwrap();
        let data = ArrayD::from_elem(IxDyn(&[4, 8]), v as f64);
        a.write_region(&[0..4, 0..8], data.view()).unwrap();
    }
    store.with_latency(delay)
}

fn load_all(store: &Store, executor: Threaded) -> f64 {
    let arrays: Vec<_> = (0..50)
        .map(|v| from_zarr::<f64>(store, &format!("v{v}")).unwrap())
        .collect();
    let sums: Vec<Delayed<f64>> = arrays.iter().map(|a| a.sum_all()).collect();
    chunkflow::compute_with(&sums, &ComputeOptions::default().executor(executor))
        .unwrap()
        .iter()
        .sum()
}

#[test]
fn reads_in_flight_exceed_the_cores_but_not_the_limit() {
    let store = latency_store(Duration::from_millis(20));
    let stats = store.read_stats().unwrap();
    let expected: f64 = (0..50).map(|v| v as f64 * 32.0).sum();
    // The metadata reads of from_zarr happen before; count only the chunk reads.
    let arrays_opened = load_all(&store, Threaded::new(2).with_io_threads(32));
    assert_eq!(arrays_opened, expected);
    let max = stats.max_in_flight();
    assert!(max <= 32, "at most 32 reads in flight, saw {max}");
    assert!(
        max > 2,
        "reads in flight are not capped by the 2 workers, saw {max}"
    );

    stats.reset();
    assert_eq!(load_all(&store, Threaded::new(2)), expected);
    assert!(
        stats.max_in_flight() <= 2,
        "without I/O threads, reads run on the workers"
    );
}

#[test]
fn io_threads_work_with_a_memory_budget_and_other_tasks() {
    let store = latency_store(Duration::from_millis(1));
    let ex = Threaded::new(2).with_io_threads(8).with_memory_limit(4096);
    let expected: f64 = (0..50).map(|v| v as f64 * 32.0).sum();
    assert_eq!(load_all(&store, ex), expected);
}

/// Loading from tokio: many reads in flight while the runtime's own thread stays free.
#[tokio::test(flavor = "current_thread")]
async fn compute_async_loads_concurrently_from_tokio() {
    let store = latency_store(Duration::from_millis(20));
    let stats = store.read_stats().unwrap();
    let sums: Vec<Delayed<f64>> = (0..50)
        .map(|v| {
            from_zarr::<f64>(&store, &format!("v{v}"))
                .unwrap()
                .sum_all()
        })
        .collect();
    let options = ComputeOptions::default().executor(Threaded::new(2).with_io_threads(32));
    // The runtime keeps running other work while the load is in flight.
    let ticker = tokio::spawn(async {
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    });
    let values = chunkflow::compute_async(sums, options).await.unwrap();
    assert!(ticker.await.unwrap());
    assert_eq!(
        values.iter().sum::<f64>(),
        (0..50).map(|v| v as f64 * 32.0).sum::<f64>()
    );
    let max = stats.max_in_flight();
    assert!(max > 2 && max <= 32, "{max} reads in flight");
}
