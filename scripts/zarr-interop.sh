#!/usr/bin/env bash
# Checks chunkflow's Zarr I/O against zarr-python, both ways.
#
# Makes (or reuses) a venv with pinned zarr, numcodecs and NumPy under target/py/, has
# zarr-python write fixture stores (tests/interop/zarr_fixtures.py write), runs the ignored
# integration test tests/zarr_interop.rs, which reads them and writes its own stores, then has
# zarr-python read and check those (zarr_fixtures.py verify). Exits non-zero on any mismatch.
#
# Usage: scripts/zarr-interop.sh [WORK_DIR]      (default: target/zarr-interop, recreated)
# Environment: PYTHON (default python3), CHUNKFLOW_ROOT (the crate to test; default: the repo
# holding this script).
set -euo pipefail

PYTHON="${PYTHON:-python3}"
ZARR_VERSION="3.1.6"
NUMCODECS_VERSION="0.16.6"
NUMPY_VERSION="2.4.6"

ROOT="${CHUNKFLOW_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
cd "$ROOT"

VENV="target/py/zarr-venv"
WORK="${1:-target/zarr-interop}"
mkdir -p target/py

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" - "$ZARR_VERSION" "$NUMCODECS_VERSION" "$NUMPY_VERSION" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
want = tuple(sys.argv[1:4])
sys.exit(0 if (version("zarr"), version("numcodecs"), version("numpy")) == want else 1)
PY
    echo "installing zarr==$ZARR_VERSION numcodecs==$NUMCODECS_VERSION numpy==$NUMPY_VERSION into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "zarr==$ZARR_VERSION" "numcodecs==$NUMCODECS_VERSION" "numpy==$NUMPY_VERSION"
fi

rm -rf "$WORK"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"

echo "zarr-python writes fixtures into $WORK/from-python" >&2
# zarr-python warns that v3 consolidated metadata is not in the spec: expected here.
"$VENV/bin/python" -W ignore::UserWarning tests/interop/zarr_fixtures.py write "$WORK/from-python"

echo "chunkflow reads them and writes $WORK/from-rust" >&2
CHUNKFLOW_ZARR_FIXTURES="$WORK/from-python" \
CHUNKFLOW_ZARR_OUTPUT="$WORK/from-rust" \
    cargo test --test zarr_interop -- --ignored --nocapture

echo "zarr-python verifies $WORK/from-rust" >&2
"$VENV/bin/python" -W ignore::UserWarning tests/interop/zarr_fixtures.py verify "$WORK/from-rust"
echo "zarr interop: OK" >&2
