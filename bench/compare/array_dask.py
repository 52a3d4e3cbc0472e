#!/usr/bin/env python3
"""Dask side of the array benchmark (see examples/array_bench.rs).

The same workloads as the Rust example, written with ``dask.array`` the way a dask user writes
them (``rng = da.random.default_rng(seed)``, the Generator API that dask's docs recommend over
the legacy ``da.random.random``; ``--rng legacy`` switches to the latter):

* ``sum``, ``mean``: ``rng.random((20000, 20000), chunks=(2000, 2000))`` then
  ``.sum().compute()`` / ``.mean().compute()``;
* ``xxt-mean0``: ``(x + x.T).mean(axis=0).compute()`` on the same array;
* ``fused5``: ``((((x + 1) * 2) ** 0.5) - 0.5) / 3`` over a 4000 x 4000 array in 200 x 200
  chunks (400 chunks), then ``.sum().compute()``; ``tasks_built`` is
  ``len(y.__dask_graph__())`` and ``tasks_run`` ``len(dask.optimize(y)[0].__dask_graph__())``
  (of the chain ``y``, before the sum, like the Rust example);
* ``ooc-sum`` (with ``--ooc``): the sum of a 64 GiB virtual random array,
  ``(2**16, 2**17)`` float64 in ``(4096, 2048)`` chunks (64 MiB each, 1024 chunks).

Timed like the Rust example: ``wall_s`` runs from creating the random array to having the
result, so the random generation is included. Everything runs on the threaded scheduler
(``scheduler="threads", num_workers=N``).

Peak RSS can't be reset inside a Python process, so every workload runs in a fresh
subprocess of this script (``--child NAME``) and reports ``resource.getrusage(RUSAGE_SELF)
.ru_maxrss`` at its end. That peak includes the interpreter with numpy and dask imported
(``baseline_rss_mb``, measured in the child right before the timed region). ``cpu_user_s``,
``cpu_sys_s`` and ``minflt`` (minor page faults) are the process's ``getrusage`` deltas over
the timed region, all threads together.

    python bench/compare/array_dask.py [--threads N] [--size 20000] [--ooc] [--only NAME]...
        [--rng default_rng|legacy]

Prints one JSON line per workload.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

WORKLOADS = ["sum", "mean", "xxt-mean0", "fused5", "ooc-sum"]


def rss_mb() -> int:
    # Linux: ru_maxrss is in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def child(name: str, threads: int, n: int, rng_api: str) -> dict:
    import dask
    import dask.array as da
    import numpy as np

    def rng_random(seed, shape, chunks):
        if rng_api == "legacy":
            return da.random.RandomState(seed).random_sample(shape, chunks=chunks)
        return da.random.default_rng(seed).random(shape, chunks=chunks)

    # Warm numpy's and dask's lazy imports outside the timed region.
    rng_random(0, (4, 4), (2, 2)).sum().compute(scheduler="sync")
    baseline = rss_mb()
    c = n // 10
    chunk_mb = c * c * 8 / (1 << 20)
    opts = dict(scheduler="threads", num_workers=threads)
    extra: dict = {}

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    if name == "sum":
        x = rng_random(0, (n, n), (c, c))
        r = x.sum().compute(**opts)
        extra = {"shape": [n, n], "chunk_mb": chunk_mb, "result": float(r)}
    elif name == "mean":
        x = rng_random(0, (n, n), (c, c))
        r = x.mean().compute(**opts)
        extra = {"shape": [n, n], "chunk_mb": chunk_mb, "result": float(r)}
    elif name == "xxt-mean0":
        x = rng_random(0, (n, n), (c, c))
        v = (x + x.T).mean(axis=0).compute(**opts)
        extra = {"shape": [n, n], "chunk_mb": chunk_mb, "result_len": len(v), "first": float(v[0])}
    elif name == "fused5":
        x = rng_random(1, (4000, 4000), (200, 200))
        y = ((((x + 1) * 2) ** 0.5) - 0.5) / 3
        built = len(y.__dask_graph__())
        fused = len(dask.optimize(y)[0].__dask_graph__())
        r = y.sum().compute(**opts)
        extra = {"chunks": x.npartitions, "tasks_built": built, "tasks_run": fused, "result": float(r)}
    elif name == "ooc-sum":
        # 2^16 x 2^17 float64 = 64 GiB; chunks 4096 x 2048 = 64 MiB.
        x = rng_random(2, (1 << 16, 1 << 17), (4096, 2048))
        r = x.sum().compute(**opts)
        extra = {"nbytes_gib": x.nbytes >> 30, "chunk_mb": 64, "chunks": x.npartitions, "result": float(r)}
    else:
        raise SystemExit(f"unknown workload {name!r}")
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF)

    line = {
        "workload": name,
        "threads": threads,
        "wall_s": round(wall, 3),
        "peak_rss_mb": rss_mb(),
        "baseline_rss_mb": baseline,
        "cpu_user_s": round(r1.ru_utime - r0.ru_utime, 3),
        "cpu_sys_s": round(r1.ru_stime - r0.ru_stime, 3),
        "minflt": r1.ru_minflt - r0.ru_minflt,
        "rng": rng_api,
        "dask": dask.__version__,
        "numpy": np.__version__,
    }
    line.update(extra)
    return line


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--size", type=int, default=20_000)
    p.add_argument("--ooc", action="store_true", help="also run the 64 GiB out-of-core sum")
    p.add_argument("--only", action="append", choices=WORKLOADS)
    p.add_argument("--rng", choices=["default_rng", "legacy"], default="default_rng")
    p.add_argument("--child", choices=WORKLOADS, help=argparse.SUPPRESS)
    a = p.parse_args()

    if a.child:
        print(json.dumps(child(a.child, a.threads, a.size, a.rng)), flush=True)
        return

    names = a.only or [w for w in WORKLOADS if w != "ooc-sum" or a.ooc]
    for name in names:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", name,
               "--threads", str(a.threads), "--size", str(a.size), "--rng", a.rng]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        for line in out.splitlines():
            if line.startswith("{"):
                print(line, flush=True)


if __name__ == "__main__":
    main()
