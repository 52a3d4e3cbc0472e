#!/usr/bin/env bash
# Rechunk benchmark (issue: Zarr and rechunker): chunkflow against zarrs_reencode and
# rechunker + dask on an ERA5-like float32 (T, 256, 256) store chunked (1, 256, 256), rechunked
# to (T, 32, 32); plus I/O baselines (reading and writing the whole array) and a multi-stage
# plan. Prints a markdown table (medians over REPEAT interleaved runs) and keeps every run in
# $OUT/runs.tsv.
#
# About zarrs_reencode (zarrs_tools 0.8.1): without sharding, its `--chunk-shape` is parsed but
# never applied (`get_array_builder_reencode` sets the chunk grid only in its sharding branch),
# so `zarrs_reencode --chunk-shape 4096,32,32 SRC DST` re-encodes the array with its source
# chunks (1,256,256): a same-chunk copy, and the figure the issue quotes. It is the reference
# of the ratio column. Its real rechunk needs `--shard-shape` (one inner chunk per shard, v3),
# and then each output chunk decodes all 4096 source chunks it overlaps (no cache): that row
# (SLOW=1) is measured once per format.
#
# Usage (from anywhere; it works in the repo root):
#   bench/compare/rechunk.sh
# Environment:
#   SHAPE (4096,256,256)  TARGET (4096,32,32)  FORMATS ("v2 v3")  MEMS ("256MB 32MB")
#   REPEAT (5)  OUT (target/bench/rechunk)  PYTHON (python3, for the venvs and the summary)
#   SLOW (1): also run zarrs_reencode's real rechunk (sharded output), once per format; 0 skips
#   PREFAULT_MB (3072): page cache written and freed before each run (see `prefault`); 0 skips
#
# Tools and versions: zarrs_tools 0.8.1 (cargo install into target/tools), rechunker 0.5.4 +
# dask + zarr 2 (rechunker 0.5.4 requires zarr < 3, so it cannot read the v3 source) in
# target/py/rechunker-venv, zarr-python 3 in target/py/zarr-venv (v3 I/O baselines).
#
# Timings: each tool's own timing of the operation (chunkflow: plan + copy + publish;
# zarrs_reencode: its "total"; Python: the call, after imports). Peak RSS: /usr/bin/time, whole
# process. Sources live in page cache (warm), as in the issue's measurements.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$PWD"
SHAPE="${SHAPE:-4096,256,256}"
TARGET="${TARGET:-4096,32,32}"
FORMATS="${FORMATS:-v2 v3}"
MEMS="${MEMS:-256MB 32MB}"
REPEAT="${REPEAT:-5}"
OUT="${OUT:-target/bench/rechunk}"
SLOW="${SLOW:-1}"
PYTHON="${PYTHON:-python3}"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
RUNS="$OUT/runs.tsv"
EXAMPLE="$ROOT/target/release/examples/rechunk_era5_like"
CLI="$ROOT/target/release/chunkflow"
REENCODE="$ROOT/target/tools/bin/zarrs_reencode"
RK_VENV="$ROOT/target/py/rechunker-venv"
Z3_VENV="$ROOT/target/py/zarr-venv"
PYREF="$ROOT/bench/compare/rechunk_rechunker.py"

log() { echo "[rechunk.sh] $*" >&2; }

# Outputs of earlier runs are retired, not deleted, until the end: their files are emptied
# (which frees their disk space and page cache) and moved aside, but their inodes stay in use.
# On a journal-less ext4 (as on the benchmark machine) every file created soon after many
# files were deleted in the same block group makes the allocator skip each recently deleted
# inode (`recently_deleted`, for up to 6 minutes), which made one tool's run pay for the
# previous run's deletion: seconds of kernel time for thousands of chunk files in one flat
# v2 directory, nothing for zarrs_reencode's nested v3 layout.
#
# Before each run, PREFAULT_MB of page cache is written and freed again, so that every tool
# starts with the same supply of memory the kernel has touched recently. The benchmark machine
# is a VM whose balloon driver hands free memory back to the host (free page reporting, after
# about 2 s), and touching such memory again costs about 2 s/GB of kernel time: without this
# step a tool's seconds depended mostly on how long ago the previous run freed its memory.
PREFAULT_MB="${PREFAULT_MB:-3072}"
prefault() {
    [[ "$PREFAULT_MB" -gt 0 ]] || return 0
    dd if=/dev/zero of="$OUT/prefault" bs=1M count="$PREFAULT_MB" conv=notrunc status=none
    truncate -s 0 "$OUT/prefault"
}
RETIRED="$OUT/retired"
retire() {
    local store
    for store in "$@"; do
        [[ -e "$store" ]] || continue
        mkdir -p "$RETIRED"
        find "$store" -type f -exec truncate -s 0 {} +
        mv "$store" "$(mktemp -u "$RETIRED/$(basename "$store").XXXXXX")"
    done
}

# --- build and tools --------------------------------------------------------------------------
log "building the example and the CLI (release)"
cargo build --release --quiet --example rechunk_era5_like --bin chunkflow

if [[ ! -x "$REENCODE" ]]; then
    log "installing zarrs_tools 0.8.1 into target/tools (a few minutes)"
    cargo install --quiet zarrs_tools --version 0.8.1 --root "$ROOT/target/tools" --locked
fi

venv() { # venv DIR CHECK_IMPORT PACKAGES...
    local dir="$1" check="$2"
    shift 2
    if ! "$dir/bin/python" -c "$check" 2>/dev/null; then
        log "preparing $dir: $*"
        [[ -x "$dir/bin/python" ]] || "$PYTHON" -m venv "$dir"
        "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
    fi
}
venv "$RK_VENV" "import rechunker, dask, zarr, numcodecs; assert zarr.__version__.startswith('2.')" \
    "rechunker==0.5.4" "dask==2026.8.0" "zarr>=2.18,<3" "numcodecs<0.16" "numpy"
venv "$Z3_VENV" "import zarr; assert zarr.__version__.startswith('3.')" "zarr==3.1.6" "numpy"

versions="$("$RK_VENV/bin/python" -c "import rechunker, dask, zarr; from importlib.metadata import version as v; print(f'rechunker {v(\"rechunker\")}, dask {dask.__version__}, zarr {zarr.__version__}')")"
versions="$versions; zarr-python $("$Z3_VENV/bin/python" -c 'import zarr; print(zarr.__version__)'); $("$REENCODE" --version | head -1)"

# --- sources ----------------------------------------------------------------------------------
shape_of() { # the shape recorded in a store's metadata, or nothing
    "$PYTHON" - "$1" <<'EOF' 2>/dev/null || true
import json, os, sys
d = sys.argv[1]
for name in ("zarr.json", ".zarray"):
    p = os.path.join(d, name)
    if os.path.exists(p):
        print(",".join(map(str, json.load(open(p))["shape"])))
EOF
}
chunks_of() { # the chunk shape recorded in a store's metadata
    "$PYTHON" - "$1" <<'EOF'
import json, os, sys
d = sys.argv[1]
if os.path.exists(os.path.join(d, "zarr.json")):
    m = json.load(open(os.path.join(d, "zarr.json")))
    chunks = m["chunk_grid"]["configuration"]["chunk_shape"]
    shard = next((c for c in m["codecs"] if c["name"] == "sharding_indexed"), None)
    text = ",".join(map(str, chunks))
    if shard:
        text += " (shards; inner " + ",".join(map(str, shard["configuration"]["chunk_shape"])) + ")"
    print(text)
else:
    print(",".join(map(str, json.load(open(os.path.join(d, ".zarray")))["chunks"])))
EOF
}

for f in $FORMATS; do
    if [[ "$(shape_of "$OUT/source-$f.zarr")" != "$SHAPE" ]]; then
        log "writing the $f source $SHAPE (the example also rechunks it once; ignored)"
        "$EXAMPLE" --shape "$SHAPE" --target "$TARGET" --max-mem 256MB --format "$f" \
            --out "$OUT" --no-verify > /dev/null
    fi
    log "checking chunkflow's $f output element for element (untimed)"
    "$EXAMPLE" --shape "$SHAPE" --target "$TARGET" --max-mem 256MB --format "$f" --out "$OUT" \
        --skip-write > /dev/null 2>&1 || { log "chunkflow's $f rechunk does not verify"; exit 1; }
done

# --- measuring --------------------------------------------------------------------------------
[[ -f "$RUNS" ]] && mv "$RUNS" "$RUNS.old"
printf 'tool\tformat\tmax_mem\trep\tseconds\twall_s\tuser_s\tsys_s\tpeak_rss_kb\toutput_chunks\n' > "$RUNS"

# measure TOOL FORMAT MAX_MEM REP OUTPUT_STORE SECONDS_FROM -- COMMAND...
# SECONDS_FROM: how to find the tool's own timing in its stdout (json:KEY, reencode, wall).
measure() {
    local tool="$1" format="$2" mem="$3" rep="$4" store="$5" how="$6"
    shift 7
    local stdout="$OUT/last.out" timing="$OUT/last.time"
    [[ "$store" != "-" ]] && retire "$store" "$store.rechunk-tmp"
    prefault
    if ! /usr/bin/time -v -o "$timing" "$@" > "$stdout" 2> "$OUT/last.err"; then
        log "FAILED: $tool $format $mem: $* (see $OUT/last.err)"
        tail -5 "$OUT/last.err" >&2
        return 0
    fi
    local wall user sys rss seconds chunks="-"
    wall="$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$timing")"
    user="$(awk -F': ' '/User time/ {print $2}' "$timing")"
    sys="$(awk -F': ' '/System time/ {print $2}' "$timing")"
    rss="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$timing")"
    case "$how" in
        json:*) seconds="$("$PYTHON" -c "import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])" "$stdout" "${how#json:}")" ;;
        reencode) seconds="$(awk '/total:/ {gsub("ms","",$2); print $2/1000}' "$stdout")" ;;
        *) seconds="$wall" ;;
    esac
    [[ "$store" != "-" && -e "$store" ]] && chunks="$(chunks_of "$store")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$format" "$mem" "$rep" "$seconds" \
        "$wall" "$user" "$sys" "$rss" "$chunks" >> "$RUNS"
    log "$tool $format $mem #$rep: ${seconds} s, peak RSS $((rss / 1024)) MB, chunks $chunks"
}

for rep in $(seq "$REPEAT"); do
    for f in $FORMATS; do
        src="$OUT/source-$f.zarr"
        for mem in $MEMS; do
            measure "chunkflow" "$f" "$mem" "$rep" "$OUT/target-$f.zarr" json:rechunk_s -- \
                "$EXAMPLE" --shape "$SHAPE" --target "$TARGET" --max-mem "$mem" --format "$f" \
                --out "$OUT" --skip-write --no-verify
        done
        measure "chunkflow, multi-stage (min_mem 16MB)" "$f" 256MB "$rep" "$OUT/ms-$f.zarr" json:seconds -- \
            "$CLI" rechunk "$src" "$OUT/ms-$f.zarr" --chunks "$TARGET" --max-mem 256MB \
            --min-mem 16MB --overwrite --json
        measure "zarrs_reencode --chunk-shape (ignored: a same-chunk copy, the issue's figure)" "$f" - "$rep" "$OUT/reenc-$f.zarr" reencode -- \
            "$REENCODE" --chunk-shape "$TARGET" "$src" "$OUT/reenc-$f.zarr"
        if [[ "$f" == v2 ]]; then
            for mem in $MEMS; do
                retire "$OUT/rk-$f-tmp.zarr"
                measure "rechunker + dask" "$f" "$mem" "$rep" "$OUT/rk-$f.zarr" json:seconds -- \
                    "$RK_VENV/bin/python" "$PYREF" rechunk "$src" "$OUT/rk-$f.zarr" \
                    --chunks "$TARGET" --max-mem "$mem" --temp "$OUT/rk-$f-tmp.zarr"
            done
            py="$RK_VENV/bin/python"
        else
            py="$Z3_VENV/bin/python"
        fi
        # I/O baselines.
        measure "io: chunkflow copy, chunks unchanged" "$f" 256MB "$rep" "$OUT/copy-$f.zarr" json:seconds -- \
            "$CLI" rechunk "$src" "$OUT/copy-$f.zarr" --chunks "1,${SHAPE#*,}" --max-mem 256MB \
            --overwrite --json
        measure "io: zarr-python read whole array" "$f" - "$rep" - json:seconds -- \
            "$py" "$PYREF" read "$src"
        measure "io: zarr-python write whole array in target chunks" "$f" - "$rep" "$OUT/pyw-$f.zarr" json:seconds -- \
            "$py" "$PYREF" write "$src" "$OUT/pyw-$f.zarr" --chunks "$TARGET"
        if [[ "$SLOW" == 1 && "$rep" == 1 ]]; then
            measure "zarrs_reencode, real rechunk (--shard-shape = --chunk-shape)" "$f" - "$rep" "$OUT/reenc-shard-$f.zarr" reencode -- \
                "$REENCODE" --chunk-shape "$TARGET" --shard-shape "$TARGET" "$src" "$OUT/reenc-shard-$f.zarr"
        fi
    done
done

rm -rf "$RETIRED" "$OUT/prefault"

# --- summary ----------------------------------------------------------------------------------
echo
echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Versions: $(rustc --version); $versions"
echo "Workload: float32 $SHAPE chunks (1,${SHAPE#*,}) -> $TARGET; $REPEAT interleaved runs, medians (min-max)"
echo
"$PYTHON" - "$RUNS" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
groups = {}
for r in rows:
    groups.setdefault((r["tool"], r["format"], r["max_mem"]), []).append(r)
ref = {}
for (tool, fmt, mem), rs in groups.items():
    if tool.startswith("zarrs_reencode --chunk-shape"):
        ref[fmt] = statistics.median(float(r["seconds"]) for r in rs)


def mb(text):
    """'256MB' -> MB (10^6 bytes); '-' -> None."""
    return float(text[:-2]) if text.endswith("MB") else None


print("| tool | format | max_mem | seconds | peak RSS MiB | worst RSS - max_mem, MB | CPU s (user+sys) | output chunks | vs zarrs_reencode copy |")
print("|---|---|---|---|---|---|---|---|---|")
for (tool, fmt, mem), rs in groups.items():
    s = [float(r["seconds"]) for r in rs]
    rss_kb = [int(r["peak_rss_kb"]) for r in rs]
    rss = statistics.median(rss_kb) / 1024
    # Peak RSS in MB (10^6 bytes, as max_mem), the worst run, against the budget.
    over = f"{max(rss_kb) * 1024 / 1e6 - mb(mem):+.0f}" if mb(mem) and tool.startswith("chunkflow") else "-"
    cpu = statistics.median(float(r["user_s"]) + float(r["sys_s"]) for r in rs)
    med = statistics.median(s)
    spread = f" ({min(s):.2f}-{max(s):.2f})" if len(s) > 1 else ""
    ratio = f"{med / ref[fmt]:.2f}x" if fmt in ref else "-"
    print(f"| {tool} | {fmt} | {mem} | {med:.2f}{spread} | {rss:.0f} | {over} | {cpu:.2f} | {rs[0]['output_chunks']} | {ratio} |")
EOF
