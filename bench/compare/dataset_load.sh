#!/usr/bin/env bash
# Dataset loading behind a high-latency store: chunkflow (examples/async_load.rs) beside xarray
# (dataset_load_xarray.py), measured in the same session, printed as a markdown table with
# each time's ratio to the ideal latency-bound time ceil(reads / reads-in-flight) x latency.
#
#   bash bench/compare/dataset_load.sh [--latency-ms 50] [--vars 50] [--chunks 4]
#                                      [--concurrency 32] [--repeat 3]
#
# The scenario (issue 5): a Zarr v3 group of 50 float64 variables x 4 chunks (200 chunk reads)
# behind a store that sleeps 50 ms before every read. chunkflow runs `load` with concurrency 1
# (first repeat only: it takes reads x latency), `load` and `load_async` with --concurrency,
# and both with concurrency = reads (no effective limit, to compare with xarray's unlimited
# load_async). xarray runs `ds.load()` on dask-backed and on lazily indexed variables,
# `await ds.load_async()` with no limit (xarray has none) and with an asyncio.Semaphore of
# --concurrency in the store (how xarray's docs say to limit it). Opening is not timed on either
# side.
#
# Creates or reuses the venv target/py/xarray-venv (the pins of scripts/xarray-interop.sh),
# writes the raw JSON lines to target/bench/dataset-load-{chunkflow,xarray}.jsonl and prints the
# table (medians over --repeat runs). Run from the repository root.
set -euo pipefail

XARRAY_VERSION="2026.9.0"
ZARR_VERSION="3.1.6"
NUMCODECS_VERSION="0.16.6"
NUMPY_VERSION="2.4.6"
PANDAS_VERSION="3.1.1"
DASK_VERSION="2026.8.0"
VENV=target/py/xarray-venv
OUT=target/bench

latency=50
vars=50
chunks=4
concurrency=32
repeat=3
usage="usage: bash bench/compare/dataset_load.sh [--latency-ms N] [--vars N] [--chunks N] [--concurrency N] [--repeat N]"
while [ $# -gt 0 ]; do
  case "$1" in
    --latency-ms) latency="$2"; shift ;;
    --vars) vars="$2"; shift ;;
    --chunks) chunks="$2"; shift ;;
    --concurrency) concurrency="$2"; shift ;;
    --repeat) repeat="$2"; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done

if [ ! -f Cargo.toml ] || [ ! -f bench/compare/dataset_load_xarray.py ]; then
  echo "run from the repository root: bash bench/compare/dataset_load.sh" >&2
  exit 2
fi
mkdir -p "$OUT" "$(dirname "$VENV")"

# --- the xarray venv (shared with scripts/xarray-interop.sh; reused when the pins match) -----
PINS=(
  "xarray==$XARRAY_VERSION" "zarr==$ZARR_VERSION" "numcodecs==$NUMCODECS_VERSION"
  "numpy==$NUMPY_VERSION" "pandas==$PANDAS_VERSION" "dask==$DASK_VERSION"
)
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV" >&2
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" - "${PINS[@]}" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    if version(name) != want:
        sys.exit(1)
PY
  echo "== installing ${PINS[*]} into $VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}" >&2
fi

# --- chunkflow ----------------------------------------------------------------------------------
echo "== building examples/async_load (release)" >&2
cargo build --quiet --release --example async_load
bin=target/release/examples/async_load
reads=$((vars * chunks))
common=(--latency-ms "$latency" --vars "$vars" --chunks "$chunks" --json)
cf="$OUT/dataset-load-chunkflow.jsonl"
xr="$OUT/dataset-load-xarray.jsonl"
: >"$cf"
: >"$xr"
load_before=$(cut -d' ' -f1 /proc/loadavg)
for i in $(seq 1 "$repeat"); do
  echo "== run $i/$repeat: chunkflow" >&2
  sequential=()
  [ "$i" -gt 1 ] && sequential=(--no-sequential)
  "$bin" "${common[@]}" --concurrency "$concurrency" "${sequential[@]}" >>"$cf"
  "$bin" "${common[@]}" --concurrency "$reads" --no-sequential >>"$cf"
  echo "== run $i/$repeat: xarray" >&2
  "$VENV/bin/python" -W ignore bench/compare/dataset_load_xarray.py \
    --latency-ms "$latency" --vars "$vars" --chunks "$chunks" --concurrency "$concurrency" >>"$xr"
done
load_after=$(cut -d' ' -f1 /proc/loadavg)

# --- the table ----------------------------------------------------------------------------------
python3 - "$cf" "$xr" "$concurrency" "$load_before" "$load_after" <<'PY'
import json, statistics, sys
cf, xr, concurrency, load_before, load_after = sys.argv[1:]
concurrency = int(concurrency)
rows = [json.loads(l) for path in (cf, xr) for l in open(path) if l.strip()]
groups = {}
for r in rows:
    groups.setdefault((r["tool"], r["mode"], r["concurrency"]), []).append(r)
first = rows[0]
print(f"{first['vars']} variables x {first['chunks_per_var']} chunks = "
      f"{first['vars'] * first['chunks_per_var']} chunk reads, +{first['latency_ms']:g} ms per read; "
      f"medians of {max(len(g) for g in groups.values())} runs "
      f"(load average {load_before} before, {load_after} after)")
print()
labels = {
    ("chunkflow", "load"): "`ds.load_with(concurrency)`",
    ("chunkflow", "load_async"): "`ds.load_async_with(concurrency).await` (tokio)",
    ("xarray", "load-dask"): "`open_zarr(store).load()` (dask threads)",
    ("xarray", "load"): "`open_zarr(store, chunks=None).load()`",
    ("xarray", "load_async"): "`await ds.load_async()` (no limit)",
    ("xarray", "load_async-limited"): "`await ds.load_async()`, semaphore in the store",
}
reference = groups.get(("chunkflow", "load", concurrency))
ref_s = statistics.median(r["wall_s"] for r in reference) if reference else None
print("| tool | call | reads in flight (limit / seen) | time s | ideal s | ratio to ideal | time ÷ chunkflow load@%d |" % concurrency)
print("|---|---|--:|--:|--:|--:|--:|")
order = {"chunkflow": 0, "xarray": 1}
for (tool, mode, c), g in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1], kv[0][2])):
    wall = statistics.median(r["wall_s"] for r in g)
    ideal = g[0]["ideal_s"]
    seen = max(r["max_in_flight"] for r in g)
    vs = f"{wall / ref_s:.2f}" if ref_s else "—"
    print(f"| {tool} | {labels.get((tool, mode), mode)} | {c} / {seen} | {wall:.3f} | {ideal:.3f} | "
          f"{wall / ideal:.2f} | {vs} |")
spread = [(k, min(r["wall_s"] for r in g), max(r["wall_s"] for r in g)) for k, g in groups.items() if len(g) > 1]
if spread:
    print()
    print("spread (min–max s): " + "; ".join(f"{t} {m}@{c} {lo:.3f}–{hi:.3f}" for (t, m, c), lo, hi in spread))
versions = next((r["versions"] for r in rows if "versions" in r), {})
print()
print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
PY
