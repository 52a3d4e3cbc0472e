#!/usr/bin/env bash
# Scheduler overhead: chunkflow (examples/scheduler_overhead.rs) beside dask (scheduler_dask.py),
# measured in the same session, printed as a markdown table with the ratio dask/chunkflow.
#
#   bash bench/compare/scheduler.sh [--quick] [--threads N]
#
# Creates or reuses a venv at target/py/dask-venv with pinned dask (+ numpy), writes the raw
# JSON lines to target/bench/scheduler-{chunkflow,dask,env}.jsonl and prints the table.
# --quick scales the dask workloads down 10x (the Rust example has no such switch, so quick
# rows show up unpaired). Run from the repository root.
set -euo pipefail

DASK_VERSION=2026.8.0
NUMPY_VERSION=2.4.6
VENV=target/py/dask-venv
OUT=target/bench

quick=()
threads=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=(--quick) ;;
    --threads) threads="$2"; shift ;;
    *) echo "usage: bash bench/compare/scheduler.sh [--quick] [--threads N]" >&2; exit 2 ;;
  esac
  shift
done

if [ ! -f Cargo.toml ] || [ ! -f bench/compare/scheduler_dask.py ]; then
  echo "run from the repository root: bash bench/compare/scheduler.sh" >&2
  exit 2
fi
mkdir -p "$OUT" "$(dirname "$VENV")"

# --- the dask venv (reused when it already has the pinned version) ---------------------------
if ! "$VENV/bin/python" -c "import dask, numpy, sys; sys.exit(dask.__version__ != '$DASK_VERSION')" 2>/dev/null; then
  echo "== setting up $VENV (dask==$DASK_VERSION, numpy==$NUMPY_VERSION)" >&2
  python3 -m venv "$VENV"
  if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      "dask==$DASK_VERSION" "numpy==$NUMPY_VERSION" >&2; then
    echo "WARNING: pip could not install dask==$DASK_VERSION; installing the newest available" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check dask numpy >&2
  fi
fi
dask_version=$("$VENV/bin/python" -c 'import dask; print(dask.__version__)')
if [ "$dask_version" != "$DASK_VERSION" ]; then
  echo "WARNING: measuring dask $dask_version, not the pinned $DASK_VERSION" >&2
fi

# --- chunkflow ------------------------------------------------------------------------------
echo "== cargo build --release --example scheduler_overhead" >&2
cargo build --release --example scheduler_overhead >&2
echo "== chunkflow (threads=$threads)" >&2
cargo run --release --quiet --example scheduler_overhead -- --threads "$threads" \
  | tee "$OUT/scheduler-chunkflow.jsonl" >&2

# --- dask -----------------------------------------------------------------------------------
echo "== dask $dask_version (threads=$threads)" >&2
"$VENV/bin/python" bench/compare/scheduler_dask.py --threads "$threads" "${quick[@]}" \
  | tee "$OUT/scheduler-dask.jsonl" >&2

# --- environment ----------------------------------------------------------------------------
python3 - "$OUT/scheduler-env.jsonl" "$dask_version" "$("$VENV/bin/python" --version 2>&1)" \
  "$(rustc --version)" "$threads" <<'PY'
import json, os, platform, sys, datetime
path, dask_v, py_v, rustc_v, threads = sys.argv[1:]
cpu = "unknown"
try:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
except OSError:
    pass
env = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "nproc": os.cpu_count(), "cpu": cpu, "threads": int(threads),
    "loadavg_after": os.getloadavg()[0], "rustc": rustc_v, "dask": dask_v, "python": py_v,
    "platform": platform.platform(),
}
with open(path, "w") as f:
    f.write(json.dumps(env) + "\n")
PY

# --- the table ------------------------------------------------------------------------------
python3 - "$OUT/scheduler-chunkflow.jsonl" "$OUT/scheduler-dask.jsonl" "$OUT/scheduler-env.jsonl" <<'PY'
import json, sys

def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]

cf, dk, (env,) = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])

def family(graph):
    return graph.split("-")[0]

def us(row):
    return f"{row['us_per_task']:.2f}" if row else "—"

def ratio(d, c):
    return f"{d['us_per_task'] / c['us_per_task']:.0f}×" if d and c else "—"

def secs(row):
    return f"{row['build_s']:.3f} / {row['compute_s']:.3f}" if row else "—"

order = ["tree", "chain", "fan"]
graphs = sorted({r["graph"] for r in cf + dk}, key=lambda g: (order.index(family(g)) if family(g) in order else 9, g))
cf_index = {(r["graph"], r["executor"], r["fuse"]): r for r in cf}
dk_index = {(r["graph"], r["executor"], r["api"]): r for r in dk}

print(f"chunkflow vs dask {env['dask']} ({env['python']}), {env['threads']} threads, "
      f"{env['nproc']} cores ({env['cpu']}), {env['rustc']}, {env['date']}")
print()
print("| graph | chunkflow fuse | dask api | tasks (chunkflow / dask) "
      "| chunkflow threaded µs/task | dask threads µs/task | ratio "
      "| chunkflow sequential µs/task | dask sync µs/task | ratio |")
print("|---|---|---|---|--:|--:|--:|--:|--:|--:|")
breakdown = []
for g in graphs:
    fuses = sorted({r["fuse"] for r in cf if r["graph"] == g}) or [None]
    apis = [a for a in ("delayed", "graph") if any(r["graph"] == g and r["api"] == a for r in dk)] or [None]
    for fuse in fuses:
        for api in apis:
            ct = cf_index.get((g, "threaded", fuse))
            cs = cf_index.get((g, "sequential", fuse))
            dt = dk_index.get((g, "dask-threads", api))
            ds = dk_index.get((g, "dask-sync", api))
            tasks = f"{(ct or cs or {}).get('tasks', '—')} / {(dt or ds or {}).get('tasks', '—')}"
            fuse_s = "—" if fuse is None else ("on" if fuse else "off")
            print(f"| {g} | {fuse_s} | {api or '—'} | {tasks} | {us(ct)} | {us(dt)} | {ratio(dt, ct)} "
                  f"| {us(cs)} | {us(ds)} | {ratio(ds, cs)} |")
            breakdown.append((g, fuse_s, api or "—", ct, dt, cs, ds))
print()
print("Seconds, build / compute:")
print()
print("| graph | chunkflow fuse | dask api | chunkflow threaded | dask threads | chunkflow sequential | dask sync |")
print("|---|---|---|--:|--:|--:|--:|")
for g, fuse_s, api, ct, dt, cs, ds in breakdown:
    print(f"| {g} | {fuse_s} | {api} | {secs(ct)} | {secs(dt)} | {secs(cs)} | {secs(ds)} |")
PY
