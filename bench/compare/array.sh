#!/usr/bin/env bash
# Chunked arrays: chunkflow (examples/array_bench.rs) beside dask.array (array_dask.py),
# measured in the same session, printed as a markdown table with the speed-up dask/chunkflow.
#
#   bash bench/compare/array.sh [--ooc] [--threads N] [--size N] [--only NAME]... [--repeat N]
#                              [--dask-rng default_rng|legacy] [--materialize]
#
# Creates or reuses a venv at target/py/dask-venv with pinned dask (+ numpy), writes the raw
# JSON lines to target/bench/array-{chunkflow,dask,env}.jsonl and prints the table.
# --ooc adds the 64 GiB out-of-core sum on both sides (here 30-60 s for chunkflow, 15 s for dask);
# --only NAME (repeatable: sum, mean, xxt-mean0, fused5, ooc-sum) runs just those workloads.
# --repeat N (default 3) runs both sides N times, alternating, and the table shows the median
# wall time and peak RSS per workload (the runs' spread is printed below it): on a shared
# machine single runs vary by up to 2x.
# --dask-rng legacy writes dask's side with the legacy RandomState API
# (da.random.RandomState(seed).random_sample, what da.random.random calls) instead of the
# recommended da.random.default_rng(seed).random (PCG64, faster).
# --materialize also runs every chunkflow workload with its random array behind an opaque
# map_blocks (rows `NAME+blocks`): whole blocks are then computed and held, as data read from
# storage would be, instead of being streamed from the generator into the reduction.
# Run from the repository root.
set -euo pipefail

DASK_VERSION=2026.8.0
NUMPY_VERSION=2.4.6
VENV=target/py/dask-venv
OUT=target/bench

threads=$(nproc)
size=20000
cf_args=()
dk_args=()
only=()
repeat=3
variants=("")
while [ $# -gt 0 ]; do
  case "$1" in
    --ooc) cf_args+=(--ooc); dk_args+=(--ooc) ;;
    --threads) threads="$2"; shift ;;
    --size) size="$2"; shift ;;
    --only) only+=("$2"); shift ;;
    --repeat) repeat="$2"; shift ;;
    --dask-rng) dk_args+=(--rng "$2"); shift ;;
    --materialize) variants+=(--materialize) ;;
    *) echo "usage: bash bench/compare/array.sh [--ooc] [--threads N] [--size N] [--only NAME]... [--repeat N] [--dask-rng default_rng|legacy] [--materialize]" >&2; exit 2 ;;
  esac
  shift
done

if [ ! -f Cargo.toml ] || [ ! -f bench/compare/array_dask.py ]; then
  echo "run from the repository root: bash bench/compare/array.sh" >&2
  exit 2
fi
mkdir -p "$OUT" "$(dirname "$VENV")"
load_before=$(cut -d' ' -f1 /proc/loadavg)

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
numpy_version=$("$VENV/bin/python" -c 'import numpy; print(numpy.__version__)')
if [ "$dask_version" != "$DASK_VERSION" ]; then
  echo "WARNING: measuring dask $dask_version, not the pinned $DASK_VERSION" >&2
fi

# --- chunkflow and dask, alternating ----------------------------------------------------------
# Each chunkflow workload runs in its own process (--only NAME) so that its CPU time and page
# faults can be read from getrusage(RUSAGE_CHILDREN) and added to its JSON line (cpu_user_s,
# cpu_sys_s, minflt: whole process, startup included); dask's script reports the same fields
# for its timed region. CPU seconds are less sensitive than wall seconds to other load on a
# shared machine.
echo "== cargo build --release --example array_bench" >&2
cargo build --release --example array_bench >&2
: > "$OUT/array-chunkflow.jsonl"
: > "$OUT/array-dask.jsonl"
if [ ${#only[@]} -eq 0 ]; then
  only=(sum mean xxt-mean0 fused5)
  if [ ${#cf_args[@]} -gt 0 ]; then only+=(ooc-sum); fi
fi
dk_only=()
for name in "${only[@]}"; do dk_only+=(--only "$name"); done
for rep in $(seq 1 "$repeat"); do
  for variant in "${variants[@]}"; do
  echo "== chunkflow (threads=$threads) $variant, run $rep/$repeat" >&2
  python3 - "$threads" "$size" "${only[@]}" -- "${cf_args[@]}" $variant <<'PY' | tee -a "$OUT/array-chunkflow.jsonl" >&2
import json, resource, subprocess, sys
threads, size, *rest = sys.argv[1:]
sep = rest.index("--")
names, extra = rest[:sep], rest[sep + 1:]
for name in names:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["target/release/examples/array_bench", "--threads", threads, "--size", size,
         "--only", name, *extra],
        check=True, stdout=subprocess.PIPE, text=True).stdout
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    for line in out.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            row.update(cpu_user_s=round(r1.ru_utime - r0.ru_utime, 3),
                       cpu_sys_s=round(r1.ru_stime - r0.ru_stime, 3),
                       minflt=r1.ru_minflt - r0.ru_minflt)
            print(json.dumps(row), flush=True)
PY
  done
  echo "== dask $dask_version (threads=$threads), run $rep/$repeat" >&2
  "$VENV/bin/python" bench/compare/array_dask.py --threads "$threads" --size "$size" \
    "${dk_args[@]}" "${dk_only[@]}" | tee -a "$OUT/array-dask.jsonl" >&2
done

# --- environment ----------------------------------------------------------------------------
python3 - "$OUT/array-env.jsonl" "$dask_version" "$numpy_version" \
  "$("$VENV/bin/python" --version 2>&1)" "$(rustc --version)" "$threads" "$repeat" "$load_before" <<'PY'
import json, os, platform, sys, datetime
path, dask_v, numpy_v, py_v, rustc_v, threads, repeat, load_before = sys.argv[1:]
cpu = "unknown"
try:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
except OSError:
    pass
mem_gib = None
try:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / (1 << 20), 1)
except OSError:
    pass
env = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "nproc": os.cpu_count(), "cpu": cpu, "mem_gib": mem_gib, "threads": int(threads),
    "repeat": int(repeat), "loadavg_before": float(load_before), "loadavg_after": os.getloadavg()[0], "rustc": rustc_v, "dask": dask_v, "numpy": numpy_v,
    "python": py_v, "platform": platform.platform(),
}
with open(path, "w") as f:
    f.write(json.dumps(env) + "\n")
PY

# --- the table ------------------------------------------------------------------------------
python3 - "$OUT/array-chunkflow.jsonl" "$OUT/array-dask.jsonl" "$OUT/array-env.jsonl" <<'PY'
import json, statistics, sys

def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]

cf, dk, (env,) = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
order = ["sum", "mean", "xxt-mean0", "fused5", "ooc-sum"]

def runs(rows):
    out = {}
    for r in rows:
        out.setdefault(r["workload"], []).append(r)
    return out

cf_runs, dk_runs = runs(cf), runs(dk)
base_of = lambda w: w.split("+")[0]
names = sorted(set(cf_runs) | set(dk_runs), key=lambda w: (order.index(base_of(w)) if base_of(w) in order else 9, w))
threads = env["threads"]

def med(rs, field):
    return statistics.median(r[field] for r in rs) if rs else None

def chunk_mb(rs):
    if not rs:
        return None
    r = rs[0]
    if "chunk_mb" in r:
        return r["chunk_mb"]
    if r["workload"] == "fused5":
        return 200 * 200 * 8 / (1 << 20)  # 4000 x 4000 in 200 x 200 chunks
    return None

rng = sorted({r.get("rng", "?") for r in dk}) or ["—"]
print(f"chunkflow vs dask {env['dask']} (numpy {env['numpy']}, {env['python']}; dask rng {', '.join(rng)}), "
      f"{threads} threads, {env['nproc']} cores ({env['cpu']}), {env['mem_gib']} GiB, "
      f"{env['rustc']}, {env['date']}; median of {env['repeat']} run{'s' if env['repeat'] != 1 else ''}; load average "
      f"{env['loadavg_before']:.1f} before, {env['loadavg_after']:.1f} after")
print()
print("| workload | chunkflow wall s | dask wall s | speed-up (dask/chunkflow) "
      "| chunkflow peak RSS MB | dask peak RSS MB | threads × chunk MB | target "
      "| chunkflow CPU s (user + sys) | dask CPU s (user + sys) | CPU ratio |")
print("|---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|")
for w in names:
    c, d = cf_runs.get(w), dk_runs.get(base_of(w))
    cw, dw = med(c, "wall_s"), med(d, "wall_s")
    cr, dr = med(c, "peak_rss_mb"), med(d, "peak_rss_mb")
    cmb = chunk_mb(c) or chunk_mb(d)
    tc = f"{threads} × {cmb:.1f} = {threads * cmb:.0f}" if cmb else "—"
    checks = []
    if cw and dw:
        checks.append("≥ 5×: " + ("yes" if dw >= 5 * cw else "no"))
    if cr is not None and cmb:
        checks.append(f"RSS {cr / (threads * cmb):.1f} × threads·chunk")
    if base_of(w) == "ooc-sum" and cr is not None:
        checks.append("< 1 GiB: " + ("yes" if cr < 1024 else "no"))
    fmt = lambda v, f: "—" if v is None else format(v, f)
    sp = f"{dw / cw:.1f}×" if cw and dw else "—"
    def cpu(rs):
        if not rs or "cpu_user_s" not in rs[0]:
            return None, "—"
        u, k = med(rs, "cpu_user_s"), med(rs, "cpu_sys_s")
        return u + k, f"{u:.2f} + {k:.2f}"
    (cc, ccs), (dc, dcs) = cpu(c), cpu(d)
    cratio = f"{dc / cc:.1f}×" if cc and dc else "—"
    print(f"| {w} | {fmt(cw, '.3f')} | {fmt(dw, '.3f')} | {sp} | {fmt(cr, '.0f')} | {fmt(dr, '.0f')} "
          f"| {tc} | {'; '.join(checks) or '—'} | {ccs} | {dcs} | {cratio} |")
print()
print("All runs, wall s (chunkflow | dask); minor page faults, median (chunkflow | dask):")
print()
for w in names:
    c = ", ".join(f"{r['wall_s']:.3f}" for r in cf_runs.get(w, [])) or "—"
    d = ", ".join(f"{r['wall_s']:.3f}" for r in dk_runs.get(w, [])) or "—"
    fl = lambda rs: f"{med(rs, 'minflt'):,.0f}" if rs and "minflt" in rs[0] else "—"
    print(f"- {w}: {c} | {d}; faults {fl(cf_runs.get(w))} | {fl(dk_runs.get(w))}")
c, d = cf_runs.get("fused5"), dk_runs.get("fused5")
if c or d:
    tasks = lambda rs: f"{rs[0]['tasks_built']} → {rs[0]['tasks_run']}" if rs else "—"
    print()
    print(f"fused5 tasks built → run: chunkflow {tasks(c)}, dask {tasks(d)} "
          f"(dask: len(y.__dask_graph__()) → len(dask.optimize(y)[0].__dask_graph__())).")
base = sorted({r["baseline_rss_mb"] for r in dk if "baseline_rss_mb" in r})
if base:
    print(f"dask peak RSS includes the interpreter with numpy + dask imported "
          f"({', '.join(map(str, base))} MB before the timed region).")
PY
