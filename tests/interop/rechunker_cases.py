#!/usr/bin/env python3
"""Record what Python rechunker's planning algorithm does, for tests/rechunk_parity.rs.

Generates random inputs (1-4 dimensions; shapes up to ~1e6 per axis; chunks of 1, equal to the
axis, longer than the axis, divisors, coprime pairs; itemsizes 1/2/4/8; memory limits chosen to
reach every branch: single stage, multistage, the ExcessiveIOWarning and every error) plus
hand-picked edge cases, runs them through ``rechunker.algorithm`` and writes one JSON object
per line:

    {"id": 7, "func": "multistage_rechunking_plan", "tags": ["random"],
     "args": {...}, "outcome": {"ok": ...} | {"error": {"type": ..., "message": ...}},
     "warnings": [{"category": ..., "message": ...}]}

The first line is a header (``"func": "header"``) with the versions used. Counts that can exceed
2^64 (IO operations) are written as decimal strings.

Memory limits stay below 2^50 bytes: above 2^52, rechunker's float division in
consolidate_chunks departs from exact arithmetic (see the Rust module doc).

NumPy's AVX-512 (SVML) log10/power differ from libm in the last bit, which changes the floor()
in calculate_stage_chunks for under 1% of inputs. The Rust port follows the libm path, so this
script disables NumPy's AVX-512 dispatch (NPY_DISABLE_CPU_FEATURES) unless --keep-numpy-simd is
given, and checks that numpy.log10/power then agree with math.log10/pow.

Usage: rechunker_cases.py --out FILE --count N --seed S
"""

import argparse
import json
import math
import os
import random
import re
import sys
import warnings

# Must happen before NumPy is imported. Names NumPy does not know are ignored.
_AVX512_FEATURES = (
    "X86_V4 AVX512_SPR AVX512_ICL AVX512_CNL AVX512_CLX AVX512_SKX AVX512_KNM AVX512_KNL "
    "AVX512F AVX512CD"
)


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON-lines file to write")
    parser.add_argument("--count", type=int, required=True, help="number of random cases")
    parser.add_argument("--seed", type=int, required=True, help="random seed")
    parser.add_argument(
        "--keep-numpy-simd",
        action="store_true",
        help="do not disable NumPy's AVX-512 kernels (results then depend on the machine)",
    )
    return parser.parse_args()


ARGS = _parse_args()
if not ARGS.keep_numpy_simd:
    os.environ["NPY_DISABLE_CPU_FEATURES"] = (
        os.environ.get("NPY_DISABLE_CPU_FEATURES", "") + " " + _AVX512_FEATURES
    ).strip()

import numpy as np  # noqa: E402
import rechunker  # noqa: E402
from rechunker import algorithm  # noqa: E402

MAX_MEM_CAP = 2**50


def check_numpy_uses_libm():
    """Fail loudly if numpy's log10/power differ from libm's (the recipe the Rust port uses)."""
    rng = random.Random(12345)
    xs = [float(rng.randint(1, 10**9)) for _ in range(20000)]
    ys = [rng.uniform(-9.0, 9.0) for _ in range(20000)]
    logs = np.log10(np.array(xs))
    pows = np.power(np.array([[10.0]]), np.array(ys).reshape(-1, 1))[:, 0]
    bad_log = sum(1 for x, v in zip(xs, logs) if math.log10(x) != v)
    bad_pow = sum(1 for y, v in zip(ys, pows) if math.pow(10.0, y) != v)
    if bad_log or bad_pow:
        sys.exit(
            f"numpy.log10 differs from libm on {bad_log} and numpy.power on {bad_pow} of "
            "20000 samples: NumPy is using SIMD kernels the Rust port does not reproduce. "
            f"Set NPY_DISABLE_CPU_FEATURES to the features listed by numpy.show_runtime() "
            "(or pass --keep-numpy-simd to record them anyway)."
        )


# ---- random inputs ---------------------------------------------------------------------------


def log_uniform(rng, lo, hi):
    """An int in [lo, hi], uniform in log space."""
    if hi <= lo:
        return lo
    return max(lo, min(hi, int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))))


def rand_shape(rng, ndim):
    """Axis lengths up to ~1e6, with at most ~1e13 elements in all."""
    budget = 13.0
    shape = []
    for _ in range(ndim):
        top = min(6.0, budget)
        r = rng.random()
        if r < 0.05:
            n = 1
        elif r < 0.30:
            n = rng.randint(1, 40)
        else:
            n = log_uniform(rng, 1, int(10**top))
        shape.append(n)
        budget -= max(0.0, math.log10(n))
    rng.shuffle(shape)
    return shape


def rand_chunk(rng, n):
    r = rng.random()
    if r < 0.12:
        return 1
    if r < 0.24:
        return n
    if r < 0.30:
        return n + rng.randint(1, max(1, n))  # longer than the axis
    if r < 0.45:
        return max(1, n // rng.randint(1, 20))  # near a divisor
    if r < 0.70:
        return log_uniform(rng, 1, n)
    return rng.randint(1, n)


def coprime_to(rng, c, n):
    """A chunk length coprime to c, near it or random, within ~n."""
    for _ in range(20):
        d = rng.choice([c + 1, max(1, c - 1), rng.randint(1, max(1, n))])
        if math.gcd(d, c) == 1:
            return d
    return 1


def nbytes(chunks, itemsize):
    return itemsize * math.prod(chunks)


def rand_max_mem(rng, base, itemsize):
    """max_mem around `base` bytes: below it (an error), exactly it, just above, or far above."""
    r = rng.random()
    if r < 0.07 and base > 1:
        m = rng.randint(max(1, base // 2), base - 1)
    elif r < 0.14:
        m = base
    elif r < 0.22:
        m = base + rng.randint(1, 4 * itemsize)
    else:
        m = int(base * math.exp(rng.uniform(0.0, math.log(1e5))))
    return max(1, min(m, MAX_MEM_CAP))


def rand_min_mem(rng, max_mem, itemsize, int_hint):
    r = rng.random()
    if r < 0.08:
        return 0
    if r < 0.16:
        return itemsize
    if r < 0.22:
        return max_mem
    if r < 0.27:
        return max_mem + rng.randint(1, 1000)  # error: max_mem < min_mem
    if r < 0.40:
        return max(0, max_mem - rng.randint(0, max(1, max_mem // 10)))  # near max_mem: warnings
    if r < 0.50:
        return min(max_mem, int_hint * rng.randint(1, 50))
    return max_mem // log_uniform(rng, 2, 2000)


def rand_plan_args(rng, with_min_mem):
    ndim = rng.randint(1, 4)
    shape = rand_shape(rng, ndim)
    itemsize = rng.choice([1, 2, 4, 8])
    source = [rand_chunk(rng, n) for n in shape]
    target = [rand_chunk(rng, n) for n in shape]
    tags = ["random"]
    r = rng.random()
    if r < 0.15:
        target = [coprime_to(rng, c, n) for c, n in zip(source, shape)]
        tags.append("coprime")
    elif r < 0.45 and ndim > 1:
        # Orthogonal, as in maps -> time series: each axis is long in one chunking and short in
        # the other, so single-stage intermediates are small and multistage plans are needed.
        source, target = [], []
        for n in shape:
            long, short = log_uniform(rng, max(1, n // 4), n), log_uniform(rng, 1, max(1, n // 50))
            pair = [long, short] if rng.random() < 0.5 else [short, long]
            source.append(pair[0])
            target.append(pair[1])
        tags.append("orthogonal")
    r = rng.random()
    if r < 0.01:
        shape[rng.randrange(ndim)] = 0
        tags.append("empty_axis")
    elif r < 0.02:
        rng.choice([source, target])[rng.randrange(ndim)] = 0
        tags.append("zero_chunk")
    elif r < 0.025:
        itemsize = 0
        tags.append("zero_itemsize")
    elif r < 0.035:
        which = rng.choice([source, target])
        if rng.random() < 0.5 or len(which) == 1:
            which.append(rng.randint(1, 10))
        else:
            which.pop()
        tags.append("wrong_length")
    base = max(nbytes(source, itemsize), nbytes(target, itemsize), 1)
    max_mem = rand_max_mem(rng, base, max(itemsize, 1))
    args = {
        "shape": shape,
        "source_chunks": source,
        "target_chunks": target,
        "itemsize": itemsize,
        "max_mem": max_mem,
        "consolidate_reads": rng.random() < 0.8,
        "consolidate_writes": rng.random() < 0.8,
    }
    if with_min_mem:
        int_hint = nbytes([min(a, b) for a, b in zip(source, target)], itemsize)
        if "orthogonal" in tags and rng.random() < 0.7:
            max_mem = min(MAX_MEM_CAP, base * log_uniform(rng, 1, 1000))
            args["max_mem"] = max_mem
            args["min_mem"] = max_mem // log_uniform(rng, 2, 100)
        else:
            args["min_mem"] = rand_min_mem(rng, max_mem, itemsize, int_hint)
    return args, tags


def rand_consolidate_args(rng):
    ndim = rng.randint(1, 4)
    shape = rand_shape(rng, ndim)
    itemsize = rng.choice([1, 2, 4, 8])
    chunks = [rand_chunk(rng, n) for n in shape]
    tags = ["random"]
    limits = None
    if rng.random() < 0.7:
        limits = []
        for c, n in zip(chunks, shape):
            r = rng.random()
            if r < 0.25:
                limits.append(None)
            elif r < 0.40:
                limits.append(-1)
            elif r < 0.75:
                limits.append(rng.randint(min(c, n), n) if c <= n else n + rng.randint(1, n))
            elif r < 0.88:
                limits.append(n + rng.randint(1, max(1, n)))  # beyond the axis
            elif r < 0.95:
                limits.append(rng.randint(0, max(0, min(c, n + 1) - 1)))  # below the chunk
            else:
                limits.append(0)
        if rng.random() < 0.03:
            limits.append(None)
            tags.append("wrong_length")
    r = rng.random()
    if r < 0.015:
        shape[rng.randrange(ndim)] = 0
        tags.append("empty_axis")
    elif r < 0.03:
        chunks[rng.randrange(ndim)] = 0
        tags.append("zero_chunk")
    elif r < 0.04:
        itemsize = 0
        tags.append("zero_itemsize")
    max_mem = rand_max_mem(rng, max(nbytes(chunks, itemsize), 1), max(itemsize, 1))
    return {
        "shape": shape,
        "chunks": chunks,
        "itemsize": itemsize,
        "max_mem": max_mem,
        "chunk_limits": limits,
    }, tags


def rand_stage_chunk_args(rng):
    ndim = rng.randint(1, 4)
    read = [log_uniform(rng, 1, 10 ** rng.randint(1, 9)) for _ in range(ndim)]
    write = [log_uniform(rng, 1, 10 ** rng.randint(1, 9)) for _ in range(ndim)]
    tags = ["random"]
    if rng.random() < 0.35:
        # read == write on some axis: numpy's zero-step path, where 706 -> 705 happens.
        axis = rng.randrange(ndim)
        write[axis] = read[axis]
        tags.append("equal_axis")
    if rng.random() < 0.02:
        rng.choice([read, write])[rng.randrange(ndim)] = 0
        tags.append("zero_chunk")
    r = rng.random()
    stage_count = rng.randint(0, 1) if r < 0.05 else rng.randint(2, 12) if r < 0.8 else rng.randint(13, 99)
    return {"read_chunks": read, "write_chunks": write, "stage_count": stage_count}, tags


def rand_io_ops_args(rng):
    ndim = rng.randint(1, 4)
    shape = rand_shape(rng, ndim)
    a = [rand_chunk(rng, n) for n in shape]
    if rng.random() < 0.5:
        b = [coprime_to(rng, c, n) for c, n in zip(a, shape)]
        tags = ["random", "coprime"]
    else:
        b = [rand_chunk(rng, n) for n in shape]
        tags = ["random"]
    if rng.random() < 0.05:
        shape[rng.randrange(ndim)] = 0
        tags.append("empty_axis")
    return {"shape": shape, "in_chunks": a, "out_chunks": b}, tags


# ---- hand-picked cases -----------------------------------------------------------------------


def ms(shape, source, target, itemsize, min_mem, max_mem, reads=True, writes=True):
    return {
        "shape": list(shape),
        "source_chunks": list(source),
        "target_chunks": list(target),
        "itemsize": itemsize,
        "min_mem": min_mem,
        "max_mem": max_mem,
        "consolidate_reads": reads,
        "consolidate_writes": writes,
    }


def single(shape, source, target, itemsize, max_mem, reads=True, writes=True):
    args = ms(shape, source, target, itemsize, 0, max_mem, reads, writes)
    del args["min_mem"]
    return args


def cons(shape, chunks, itemsize, max_mem, limits=None):
    return {
        "shape": list(shape),
        "chunks": list(chunks),
        "itemsize": itemsize,
        "max_mem": max_mem,
        "chunk_limits": limits,
    }


def stages(read, write, n):
    return {"read_chunks": list(read), "write_chunks": list(write), "stage_count": n}


ERA5 = ((350640, 721, 1440), (31, 721, 1440), (350640, 10, 10))

HAND_PICKED = [
    # The notes' verified examples.
    ("multistage_rechunking_plan", ms(*ERA5, 4, 25_000_000, 500_000_000), "era5"),
    ("rechunking_plan", single(*ERA5, 4, 500_000_000), "era5"),
    ("calculate_stage_chunks", stages((64, 1), (1, 64), 2), "float_7_7"),
    ("calculate_stage_chunks", stages((706, 1), (706, 1000), 2), "float_706"),
    ("calculate_stage_chunks", stages((1_000_000, 1), (1, 1_000_000), 4), "docstring_stale"),
    ("calculate_stage_chunks", stages((1_000_000, 1), (1, 1_000_000), 3), "docstring"),
    ("calculate_stage_chunks", stages((5,), (7,), 1), "one_stage"),
    ("calculate_stage_chunks", stages((5,), (7,), 0), "zero_stages"),
    ("calculate_stage_chunks", stages((0, 5), (3, 5), 2), "zero_chunk"),
    ("consolidate_chunks", cons((10,), (3,), 4, 40), "exact_fit"),
    ("consolidate_chunks", cons((10,), (3,), 4, 41), "just_over_fit"),
    ("consolidate_chunks", cons((5,), (10,), 1, 100), "chunk_over_shape_default_limits"),
    ("consolidate_chunks", cons((5,), (10,), 1, 100, [7]), "chunk_over_shape_shrinks"),
    ("consolidate_chunks", cons((5,), (10,), 1, 100, [-1]), "chunk_over_shape_minus_one"),
    ("consolidate_chunks", cons((5,), (10,), 1, 100, [5]), "limit_below_chunk"),
    ("consolidate_chunks", cons((100,), (10,), 8, 79), "chunk_exceeds_memory"),
    ("consolidate_chunks", cons((100,), (10,), 8, 80), "chunk_fills_memory"),
    ("consolidate_chunks", cons((100, 10), (10, 1), 1, 100, [None]), "limits_wrong_length"),
    ("consolidate_chunks", cons((100,), (0,), 1, 100, [None]), "zero_chunk"),
    ("consolidate_chunks", cons((100,), (1,), 0, 100), "zero_itemsize"),
    ("consolidate_chunks", cons((0, 5), (3, 5), 1, 100, [-1, None]), "empty_axis"),
    ("consolidate_chunks", cons((1000, 100, 10), (1, 1, 1), 1, 10_000, [None, 50, -1]), "limits"),
    ("consolidate_chunks", cons((), (), 4, 4), "zero_dims"),
    # Plans: every branch.
    ("multistage_rechunking_plan", ms((100, 100), (100, 1), (1, 100), 1, 90, 100), "warning"),
    ("multistage_rechunking_plan", ms((100, 100), (100, 1), (1, 100), 1, 0, 100), "min_mem_zero"),
    ("multistage_rechunking_plan", ms((10, 10), (1,), (1, 1), 1, 1, 10), "wrong_length_source"),
    ("multistage_rechunking_plan", ms((10,), (1,), (1, 1), 1, 1, 10), "wrong_length_target"),
    ("multistage_rechunking_plan", ms((10,), (11,), (1,), 1, 1, 10), "source_over_max_mem"),
    ("multistage_rechunking_plan", ms((10,), (10,), (11,), 1, 1, 10), "target_over_max_mem"),
    ("multistage_rechunking_plan", ms((10,), (10,), (10,), 1, 11, 10), "min_over_max"),
    ("multistage_rechunking_plan", ms((10,), (10,), (10,), 1, 10, 10), "min_equals_max"),
    ("multistage_rechunking_plan", ms((5,), (1,), (6,), 1, 1, 10), "target_over_shape"),
    ("multistage_rechunking_plan", ms((5,), (1,), (6,), 1, 1, 10, True, False), "target_over_shape_no_writes"),
    ("multistage_rechunking_plan", ms((5,), (0,), (1,), 1, 1, 10, False, False), "zero_chunk"),
    ("multistage_rechunking_plan", ms((5,), (0,), (1,), 1, 1, 10), "zero_chunk_consolidated"),
    ("multistage_rechunking_plan", ms((5,), (1,), (1,), 0, 1, 10), "zero_itemsize"),
    ("multistage_rechunking_plan", ms((5,), (1,), (1,), 0, 1, 10, False, False), "zero_itemsize_unconsolidated"),
    ("multistage_rechunking_plan", ms((0,), (1,), (1,), 1, 5, 10, False, False), "no_feasible_plan"),
    ("multistage_rechunking_plan", ms((0,), (1,), (2,), 1, 1, 10, True, False), "empty_axis"),
    ("multistage_rechunking_plan", ms((0,), (1,), (1,), 1, 1, 10), "empty_axis_default_limits"),
    ("multistage_rechunking_plan", ms((), (), (), 4, 4, 4), "zero_dims"),
    ("rechunking_plan", single((100,), (10,), (25,), 4, 1000), "1d"),
    ("rechunking_plan", single((100,), (10,), (25,), 4, 1000, False, False), "1d_unconsolidated"),
    ("rechunking_plan", single((100, 50), (1, 50), (100, 1), 4, 400), "2d"),
    ("rechunking_plan", single((10,), (5,), (5,), 1, 4), "source_over_max_mem"),
    ("rechunking_plan", single((10,), (0,), (5,), 8, 4, False, False), "zero_chunk_max_below_itemsize"),
    ("rechunking_plan", single((), (), (), 8, 8), "zero_dims"),
    ("_count_intermediate_chunks", {"source_chunk": 5, "target_chunk": 7, "size": 20}, "docstring"),
    ("calculate_single_stage_io_ops", {"shape": [100], "in_chunks": [3], "out_chunks": [7]}, "coprime"),
]


# ---- running rechunker -----------------------------------------------------------------------


def call(func, args):
    a = dict(args)
    if func == "consolidate_chunks":
        return algorithm.consolidate_chunks(**a)
    if func == "calculate_stage_chunks":
        return algorithm.calculate_stage_chunks(**a)
    if func == "_count_intermediate_chunks":
        return str(algorithm._count_intermediate_chunks(**a))
    if func == "calculate_single_stage_io_ops":
        return str(algorithm.calculate_single_stage_io_ops(**a))
    if func == "rechunking_plan":
        return algorithm.rechunking_plan(**a)
    if func == "multistage_rechunking_plan":
        return algorithm.multistage_rechunking_plan(**a)
    raise ValueError(func)


def record(case_id, func, args, tags):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            outcome = {"ok": call(func, args)}
        except Exception as e:  # noqa: BLE001 - recording every failure is the point
            outcome = {"error": {"type": type(e).__name__, "message": str(e)}}
    return {
        "id": case_id,
        "func": func,
        "tags": tags,
        "args": args,
        "outcome": outcome,
        "warnings": [
            {"category": w.category.__name__, "message": str(w.message)} for w in caught
        ],
    }


def main():
    if not ARGS.keep_numpy_simd:
        check_numpy_uses_libm()
    rng = random.Random(ARGS.seed)
    stats = {}
    with open(ARGS.out, "w") as out:
        header = {
            "id": -1,
            "func": "header",
            "rechunker": rechunker.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
            "seed": ARGS.seed,
            "count": ARGS.count,
            "hand_picked": len(HAND_PICKED),
            "npy_disable_cpu_features": os.environ.get("NPY_DISABLE_CPU_FEATURES", ""),
        }
        out.write(json.dumps(header) + "\n")
        case_id = 0
        for func, args, tag in HAND_PICKED:
            out.write(json.dumps(record(case_id, func, args, ["hand_picked", tag])) + "\n")
            case_id += 1
        for _ in range(ARGS.count):
            r = rng.random()
            if r < 0.45:
                func = "multistage_rechunking_plan"
                args, tags = rand_plan_args(rng, with_min_mem=True)
            elif r < 0.65:
                func = "rechunking_plan"
                args, tags = rand_plan_args(rng, with_min_mem=False)
            elif r < 0.82:
                func = "consolidate_chunks"
                args, tags = rand_consolidate_args(rng)
            elif r < 0.95:
                func = "calculate_stage_chunks"
                args, tags = rand_stage_chunk_args(rng)
            elif r < 0.975:
                func = "calculate_single_stage_io_ops"
                args, tags = rand_io_ops_args(rng)
            else:
                func = "_count_intermediate_chunks"
                shape_args, tags = rand_io_ops_args(rng)
                args = {
                    "source_chunk": shape_args["in_chunks"][0],
                    "target_chunk": shape_args["out_chunks"][0],
                    "size": shape_args["shape"][0],
                }
            rec = record(case_id, func, args, tags)
            out.write(json.dumps(rec) + "\n")
            case_id += 1
            o = rec["outcome"]
            if "error" in o:
                message = re.sub(r"\(.*|\[.*\]|\d+", "_", o["error"]["message"])
                key = f"{func}: {o['error']['type']}: {message[:45]}"
            elif func == "multistage_rechunking_plan":
                n = len(o["ok"])
                key = f"{func}: {'1 stage' if n == 1 else '2+ stages'}" + (
                    " + warning" if rec["warnings"] else ""
                )
            else:
                key = f"{func}: ok"
            stats[key] = stats.get(key, 0) + 1
    for key in sorted(stats):
        print(f"{stats[key]:7d}  {key}", file=sys.stderr)
    print(f"wrote {case_id} cases to {ARGS.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
