#!/usr/bin/env bash
# Checks chunkflow's dataset room against real xarray.
#
# Makes (or reuses) a venv with pinned xarray, zarr, numcodecs, NumPy, pandas and dask under
# target/py/, has xarray write fixture stores (tests/interop/xarray_fixtures.py write: index and
# auxiliary coordinates, NaN fill values, CF-packed int16, masked ints and floats, times in the
# standard and proleptic_gregorian calendars and in noleap, v2 and v3, consolidated, plain and
# stale, a nested group, groups without xarray metadata) with a manifest of what xarray reads
# back, then runs the ignored integration test tests/dataset_open.rs::xarray_fixtures, which
# opens every case with chunkflow and compares. Exits non-zero on any mismatch.
#
# Usage: scripts/xarray-interop.sh [WORK_DIR]      (default: target/xarray-interop, recreated)
# Environment: PYTHON (default python3), CHUNKFLOW_ROOT (the crate to test; default: the repo
# holding this script).
set -euo pipefail

PYTHON="${PYTHON:-python3}"
XARRAY_VERSION="2026.9.0"
ZARR_VERSION="3.1.6"
NUMCODECS_VERSION="0.16.6"
NUMPY_VERSION="2.4.6"
PANDAS_VERSION="3.1.1"
DASK_VERSION="2026.8.0"

ROOT="${CHUNKFLOW_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
cd "$ROOT"

VENV="target/py/xarray-venv"
WORK="${1:-target/xarray-interop}"
mkdir -p target/py

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
PINS=(
    "xarray==$XARRAY_VERSION" "zarr==$ZARR_VERSION" "numcodecs==$NUMCODECS_VERSION"
    "numpy==$NUMPY_VERSION" "pandas==$PANDAS_VERSION" "dask==$DASK_VERSION"
)
if ! "$VENV/bin/python" - "${PINS[@]}" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    if version(name) != want:
        sys.exit(1)
PY
    echo "installing ${PINS[*]} into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
fi

rm -rf "$WORK"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"

echo "xarray writes fixtures into $WORK" >&2
# zarr-python warns that v3 consolidated metadata is not in the spec, and xarray that an
# unconsolidated group is slow to open: both expected here.
"$VENV/bin/python" -W ignore::UserWarning -W ignore::RuntimeWarning \
    tests/interop/xarray_fixtures.py write "$WORK"

echo "chunkflow opens them and compares" >&2
CHUNKFLOW_XARRAY_FIXTURES="$WORK" \
    cargo test --test dataset_open -- --ignored --nocapture xarray_fixtures
echo "xarray interop: OK" >&2
