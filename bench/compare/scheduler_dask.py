#!/usr/bin/env python3
"""Dask side of the scheduler-overhead benchmark (see examples/scheduler_overhead.rs).

The same three workloads as the Rust example, written with ``dask.delayed`` as a dask user
would write them (``pure=True`` so keys are deterministic, like chunkflow's):

* ``tree-100000``: 100,000 independent ``inc`` tasks summed by a fan-in-8 tree of ``total``;
* ``chain-10000``: a 10,000-long linear chain of ``inc``;
* ``fan-1000x100``: 100 rounds in which the previous result fans out to 1,000 ``part``
  tasks (``x + i``) that are summed by ``total`` and taken mod 1,000,003.

Timed like the Rust example: ``build_s`` is building the delayed objects, ``compute_s`` is
``dask.compute(x, scheduler=...)``, and ``us_per_task = (build_s + compute_s) / tasks`` with
``tasks`` the number of distinct keys in ``x.__dask_graph__()`` (counted after the timed
region). Prints one JSON line per (graph, executor, api); executors ``dask-threads``
(``scheduler="threads", num_workers=N``) and ``dask-sync`` (``scheduler="sync"``).

The fan cannot be built with ``dask.delayed`` at full size: every delayed call copies the
layer dict of its inputs' HighLevelGraph, and a delayed call that takes a *list* of delayed
values culls the whole upstream graph once per list element, so building round r of the fan
costs O(r * width^2) and the whole fan O(rounds^2 * width^2) (extrapolated: hours). The
``delayed`` api therefore runs the fan with ``--fan-rounds`` rounds (default 4) and reports
it as ``fan-1000x4``. To still compare the full shapes, ``--api graph`` builds the very same
task graphs as plain dask graph dicts (the documented "custom graphs" format,
``{key: (func, *args)}``) and runs them through ``dask.threaded.get`` / ``dask.get``: that
isolates dask's scheduler from ``dask.delayed``'s graph building.

    python bench/compare/scheduler_dask.py [--threads N] [--quick] [--api delayed|graph]...
        [--only tree|chain|fan]... [--executor dask-threads|dask-sync]... [--fan-rounds R]

``--quick`` scales all three workloads down 10x (for CI).
"""

from __future__ import annotations

import argparse
import gc
import json
import operator
import os
import time

import dask
import dask.threaded
from dask import delayed

MOD = 1_000_003


# --- plain functions (used by the graph-dict api) -------------------------------------------


def inc_f(x):
    return x + 1


def total_f(xs):
    return sum(xs)


def part_f(x, i):
    return x + i


# --- dask.delayed, as a user writes it ------------------------------------------------------

inc = delayed(inc_f, pure=True, name="inc")
total = delayed(total_f, pure=True, name="total")
part = delayed(part_f, pure=True, name="part")


def tree(n: int):
    """``n`` independent ``inc`` tasks summed by a tree with fan-in 8."""
    level = [inc(i) for i in range(n)]
    while len(level) > 1:
        level = [total(level[j : j + 8]) for j in range(0, len(level), 8)]
    return level[0]


def chain(n: int):
    """A linear chain of ``n`` ``inc`` calls."""
    x = 0
    for _ in range(n):
        x = inc(x)
    return x


def fan(width: int, rounds: int):
    """``rounds`` rounds of: the previous result fans out to ``width`` tasks, which fan back in."""
    x = 0
    for _ in range(rounds):
        parts = [part(x, i) for i in range(width)]
        x = total(parts) % MOD
    return x


# --- the same graphs as plain dask graph dicts ----------------------------------------------


def tree_graph(n: int):
    dsk = {}
    level = []
    for i in range(n):
        k = f"inc-{i}"
        dsk[k] = (inc_f, i)
        level.append(k)
    depth = 0
    while len(level) > 1:
        depth += 1
        nxt = []
        for j in range(0, len(level), 8):
            k = f"total-{depth}-{j // 8}"
            dsk[k] = (total_f, level[j : j + 8])
            nxt.append(k)
        level = nxt
    return dsk, level[0]


def chain_graph(n: int):
    dsk = {"inc-0": (inc_f, 0)}
    for k in range(1, n):
        dsk[f"inc-{k}"] = (inc_f, f"inc-{k - 1}")
    return dsk, f"inc-{n - 1}"


def fan_graph(width: int, rounds: int):
    dsk = {"x-0": 0}
    x = "x-0"
    for r in range(rounds):
        parts = []
        for i in range(width):
            k = f"part-{r}-{i}"
            dsk[k] = (part_f, x, i)
            parts.append(k)
        dsk[f"total-{r}"] = (total_f, parts)
        x = f"mod-{r}"
        dsk[x] = (operator.mod, f"total-{r}", MOD)
    return dsk, x


# --- timing ---------------------------------------------------------------------------------


def emit(**fields):
    print(json.dumps(fields), flush=True)


def measure_delayed(name, build, scheduler, executor, threads, expect):
    gc.collect()
    t0 = time.perf_counter()
    x = build()
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    kwargs = {"num_workers": threads} if scheduler == "threads" else {}
    (v,) = dask.compute(x, scheduler=scheduler, **kwargs)
    compute_s = time.perf_counter() - t1
    total_s = time.perf_counter() - t0
    # Task count, outside the timed region. (`len(hlg)` sums layer sizes and double-counts
    # keys that several layers carry, which list arguments cause; count distinct keys.)
    tasks = len(x.__dask_graph__().to_dict())
    assert v == expect, (name, v, expect)
    emit(
        graph=name, tasks=tasks, executor=executor, api="delayed", threads=threads,
        fuse=False, build_s=round(build_s, 4), compute_s=round(compute_s, 4),
        us_per_task=round(total_s * 1e6 / tasks, 4), dask=dask.__version__,
    )


def measure_graph(name, build, scheduler, executor, threads, expect):
    gc.collect()
    t0 = time.perf_counter()
    dsk, key = build()
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    if scheduler == "threads":
        v = dask.threaded.get(dsk, key, num_workers=threads)
    else:
        v = dask.get(dsk, key)
    compute_s = time.perf_counter() - t1
    total_s = time.perf_counter() - t0
    tasks = len(dsk)
    assert v == expect, (name, v, expect)
    emit(
        graph=name, tasks=tasks, executor=executor, api="graph", threads=threads,
        fuse=False, build_s=round(build_s, 4), compute_s=round(compute_s, 4),
        us_per_task=round(total_s * 1e6 / tasks, 4), dask=dask.__version__,
    )


def fan_value(width: int, rounds: int) -> int:
    x = 0
    for _ in range(rounds):
        x = sum(x + i for i in range(width)) % MOD
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="scale all workloads down 10x (CI)")
    ap.add_argument("--api", action="append", choices=["delayed", "graph"])
    ap.add_argument("--only", action="append", choices=["tree", "chain", "fan"])
    ap.add_argument("--executor", action="append", choices=["dask-threads", "dask-sync"])
    ap.add_argument(
        "--fan-rounds", type=int, default=4,
        help="rounds of the fan built with dask.delayed (quadratic build; default 4)",
    )
    args = ap.parse_args()

    n_tree, n_chain, width, rounds = 100_000, 10_000, 1_000, 100
    delayed_rounds = args.fan_rounds
    if args.quick:
        n_tree, n_chain, width, rounds = n_tree // 10, n_chain // 10, width // 10, rounds // 10
        delayed_rounds = min(delayed_rounds, rounds)
    tree_sum = n_tree * (n_tree + 1) // 2

    workloads = {
        "delayed": [
            ("tree", f"tree-{n_tree}", lambda: tree(n_tree), tree_sum),
            ("chain", f"chain-{n_chain}", lambda: chain(n_chain), n_chain),
            ("fan", f"fan-{width}x{delayed_rounds}", lambda: fan(width, delayed_rounds),
             fan_value(width, delayed_rounds)),
        ],
        "graph": [
            ("tree", f"tree-{n_tree}", lambda: tree_graph(n_tree), tree_sum),
            ("chain", f"chain-{n_chain}", lambda: chain_graph(n_chain), n_chain),
            ("fan", f"fan-{width}x{rounds}", lambda: fan_graph(width, rounds),
             fan_value(width, rounds)),
        ],
    }
    measure = {"delayed": measure_delayed, "graph": measure_graph}
    runs = [("dask-threads", "threads", args.threads), ("dask-sync", "sync", 1)]
    for api in args.api or ["delayed", "graph"]:
        for executor, scheduler, threads in runs:
            if args.executor and executor not in args.executor:
                continue
            for short, name, build, expect in workloads[api]:
                if args.only and short not in args.only:
                    continue
                measure[api](name, build, scheduler, executor, threads, expect)


if __name__ == "__main__":
    main()
