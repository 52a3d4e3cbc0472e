#!/usr/bin/env bash
# Checks chunkflow's dataset room against real xarray (and xpartition), both ways.
#
# Makes (or reuses) a venv with pinned xarray, zarr, numcodecs, NumPy, pandas, dask and
# xpartition under target/py/, then:
# 1. xarray writes fixture stores (tests/interop/xarray_fixtures.py write: index and auxiliary
#    coordinates, NaN fill values, CF-packed int16, masked ints and floats, times in the
#    standard and proleptic_gregorian calendars and in noleap, v2 and v3, consolidated, plain and
#    stale, a nested group, groups without xarray metadata) with a manifest of what xarray reads
#    back;
# 2. xpartition initializes stores from some of them (`xpartition-init`: v2, v3, sharded);
# 3. chunkflow opens every fixture and compares (tests/dataset_open.rs::xarray_fixtures);
# 4. chunkflow writes stores (tests/dataset_write.rs::xarray_writes): the fixtures opened and
#    written back in v2 and v3, consolidated and not, and through initialize_store + ranks; a
#    dataset built in Rust, directly and by ranks; the xpartition stores filled by ranks;
# 5. xarray opens each of those with warnings as errors and requires assert_identical with its
#    own reading of the source (or the Rust dataset's values), the source's encoding, and for
#    same-format round trips the same metadata documents as xarray's own rewrite
#    (`check-writes`).
# Exits non-zero on any mismatch.
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
# xpartition 2025.03.0 (PyPI normalises the version to 2025.3.0) works with xarray 2026.9.
XPARTITION_VERSION="2025.3.0"

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
    "xpartition==$XPARTITION_VERSION"
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

echo "xpartition initializes stores for chunkflow ranks to fill" >&2
"$VENV/bin/python" -W ignore::UserWarning \
    tests/interop/xarray_fixtures.py xpartition-init "$WORK"

echo "chunkflow opens them and compares" >&2
CHUNKFLOW_XARRAY_FIXTURES="$WORK" \
    cargo test --test dataset_open -- --ignored --nocapture xarray_fixtures

echo "chunkflow writes stores (and fills the xpartition ones by ranks)" >&2
CHUNKFLOW_XARRAY_FIXTURES="$WORK" \
    cargo test --test dataset_write -- --ignored --nocapture xarray_writes

echo "xarray opens what chunkflow wrote and compares" >&2
"$VENV/bin/python" tests/interop/xarray_fixtures.py check-writes "$WORK"
echo "xarray interop: OK" >&2
