#!/usr/bin/env python3
"""xarray side of the dataset-loading comparison (see examples/async_load.rs).

The same scenario as the Rust example: a Zarr v3 group (consolidated, written by xarray) of
``--vars`` float64 variables over ``(time, x)`` with ``--chunks`` chunks each (one per time
step, 1,000 values = 8 kB per chunk), in a zarr ``MemoryStore`` behind a latency wrapper that
sleeps ``--latency-ms`` (``asyncio.sleep``) before every ``get`` and counts the gets in
flight. The wrapper is zarr-python's ``zarr.testing.store.LatencyStore`` (which needs pytest
to import) plus counting and an optional ``asyncio.Semaphore``, the way xarray's docs tell
users to limit ``load_async`` ("users are expected to limit concurrency themselves").

Each mode opens the group afresh with the latency off (metadata reads are not timed, as in the
Rust example), turns it on, and times only the load:

* ``load-dask``: ``xr.open_zarr(store)`` (dask-backed, chunked like the store), ``ds.load()``:
  one dask task per chunk on dask's threaded scheduler (one thread per core);
* ``load``: ``xr.open_zarr(store, chunks=None)`` (lazily indexed, no dask), ``ds.load()``:
  variables one after the other, each variable's chunks fetched concurrently by zarr (up to
  ``zarr.config["async.concurrency"]``);
* ``load_async``: the same open, ``await ds.load_async()``: every variable at once, no limit;
* ``load_async-limited``: the same with a semaphore of ``--concurrency`` in the store.

    python bench/compare/dataset_load_xarray.py [--latency-ms 50] [--vars 50] [--chunks 4]
        [--concurrency 32] [--repeat 1]

Prints one JSON line per mode and run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
import warnings

import numpy as np
import xarray as xr
import zarr
from zarr.storage import MemoryStore, WrapperStore

WIDTH = 1000


class Counters:
    """What a :class:`CountingLatencyStore` and its copies share: the latency, the limit and
    the counts (zarr copies stores, e.g. ``with_read_only``, so they cannot live on one)."""

    def __init__(self, latency: float, limit: int | None) -> None:
        self.latency = latency
        self.limit = limit
        self.semaphores: dict[int, asyncio.Semaphore] = {}
        self.reset()

    def reset(self) -> None:
        self.in_flight = 0
        self.max_in_flight = 0
        self.total = 0

    def semaphore(self) -> asyncio.Semaphore | None:
        if self.limit is None:
            return None
        # One semaphore per event loop (zarr's sync API runs on its own loop).
        loop = id(asyncio.get_running_loop())
        if loop not in self.semaphores:
            self.semaphores[loop] = asyncio.Semaphore(self.limit)
        return self.semaphores[loop]


class CountingLatencyStore(WrapperStore):
    """``zarr.testing.store.LatencyStore`` (sleep before ``get``), counting gets in flight.

    ``counters.limit`` (an int) bounds the gets in flight with an ``asyncio.Semaphore``; the
    sleep and the read both happen inside it.
    """

    def __init__(self, store, counters: Counters) -> None:
        super().__init__(store)
        self.counters = counters

    def _with_store(self, store):
        return type(self)(store, self.counters)

    async def _timed(self, call):
        c = self.counters
        c.total += 1
        c.in_flight += 1
        c.max_in_flight = max(c.max_in_flight, c.in_flight)
        try:
            if c.latency:
                await asyncio.sleep(c.latency)
            return await call()
        finally:
            c.in_flight -= 1

    async def get(self, key, prototype, byte_range=None):
        async def call():
            return await self._store.get(key, prototype=prototype, byte_range=byte_range)

        semaphore = self.counters.semaphore()
        if semaphore is None:
            return await self._timed(call)
        async with semaphore:
            return await self._timed(call)


def build(vars_: int, chunks: int) -> MemoryStore:
    store = MemoryStore()
    ds = xr.Dataset(
        {
            f"v{v:02}": (("time", "x"), np.full((chunks, WIDTH), float(v)))
            for v in range(vars_)
        },
        attrs={"title": "async load scenario"},
    )
    encoding = {name: {"chunks": (1, WIDTH)} for name in ds.data_vars}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # v3 consolidated metadata is not in the spec
        ds.to_zarr(store, zarr_format=3, consolidated=True, encoding=encoding)
    return store


def checksum(ds: xr.Dataset) -> float:
    return float(sum(float(ds[name].values.sum()) for name in ds.data_vars))


def open_ds(inner: MemoryStore, latency: float, limit: int | None, chunks):
    counters = Counters(0.0, limit)
    store = CountingLatencyStore(inner, counters)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # v3 consolidated metadata is not in the spec
        ds = xr.open_zarr(store, consolidated=True, chunks=chunks)
    counters.latency = latency
    counters.reset()
    return ds, counters


def run_mode(mode: str, inner: MemoryStore, args) -> dict:
    latency = args.latency_ms / 1000
    limit = args.concurrency if mode == "load_async-limited" else None
    chunks = {} if mode == "load-dask" else None
    ds, store = open_ds(inner, latency, limit, chunks)
    if mode.startswith("load_async"):

        async def main() -> float:
            start = time.perf_counter()
            await ds.load_async()
            return time.perf_counter() - start

        wall = asyncio.run(main())
    else:
        start = time.perf_counter()
        ds.load()
        wall = time.perf_counter() - start
    reads, max_in_flight = store.total, store.max_in_flight
    store.latency = 0.0
    expected = sum(v * args.chunks * WIDTH for v in range(args.vars))
    got = checksum(ds)
    if got != expected or store.total != reads:
        raise SystemExit(f"{mode}: wrong load (checksum {got} != {expected}, or reads after load)")
    # What bounds the reads in flight in this mode: ideal = ceil(reads / bound) x latency.
    bound = {
        "load-dask": args.dask_threads,
        "load": min(args.chunks, zarr.config.get("async.concurrency")),
        "load_async": reads,
        "load_async-limited": args.concurrency,
    }[mode]
    ideal = math.ceil(reads / bound) * latency
    return {
        "tool": "xarray",
        "mode": mode,
        "vars": args.vars,
        "chunks_per_var": args.chunks,
        "latency_ms": args.latency_ms,
        "concurrency": bound,
        "wall_s": wall,
        "ideal_s": ideal,
        "reads": reads,
        "max_in_flight": max_in_flight,
        "versions": {
            "xarray": xr.__version__,
            "zarr": zarr.__version__,
            "numpy": np.__version__,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--vars", type=int, default=50)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--modes",
        default="load-dask,load,load_async,load_async-limited",
        help="comma-separated modes to run",
    )
    args = parser.parse_args()
    import dask
    import multiprocessing

    args.dask_threads = dask.config.get("num_workers", None) or multiprocessing.cpu_count()
    inner = build(args.vars, args.chunks)
    for _ in range(args.repeat):
        for mode in args.modes.split(","):
            print(json.dumps(run_mode(mode, inner, args)), flush=True)


if __name__ == "__main__":
    main()
