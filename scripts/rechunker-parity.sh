#!/usr/bin/env bash
# Checks chunkflow's rechunk planner against Python rechunker, case by case.
#
# Makes (or reuses) a venv with a pinned rechunker and NumPy under target/py/, records what
# rechunker.algorithm does on generated inputs (tests/interop/rechunker_cases.py), then runs the
# ignored integration test tests/rechunk_parity.rs on that file.
#
# Usage: scripts/rechunker-parity.sh [COUNT [SEED]]     (defaults: 20000 cases, seed 0)
# Environment: PYTHON (default python3), CHUNKFLOW_ROOT (the crate to test; default: the repo
# holding this script), CHUNKFLOW_RECHUNKER_MIN_CASES (the fewest cases the test accepts;
# default COUNT, so a truncated file fails).
set -euo pipefail

COUNT="${1:-20000}"
SEED="${2:-0}"
PYTHON="${PYTHON:-python3}"
RECHUNKER_VERSION="0.5.4"
NUMPY_VERSION="2.4.6"  # the NumPy the cases were first checked with; any 1.x/2.x should agree

ROOT="${CHUNKFLOW_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
cd "$ROOT"

PY_DIR="target/py"
VENV="$PY_DIR/rechunker-venv"
CASES="$PY_DIR/rechunker-cases.jsonl"
mkdir -p "$PY_DIR"

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" - "$RECHUNKER_VERSION" "$NUMPY_VERSION" <<'EOF' 2>/dev/null; then
import sys
from importlib.metadata import version
sys.exit(0 if (version("rechunker"), version("numpy")) == tuple(sys.argv[1:3]) else 1)
EOF
    echo "installing rechunker==$RECHUNKER_VERSION numpy==$NUMPY_VERSION into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "rechunker==$RECHUNKER_VERSION" "numpy==$NUMPY_VERSION"
fi

echo "recording $COUNT cases (seed $SEED) into $CASES" >&2
"$VENV/bin/python" tests/interop/rechunker_cases.py --out "$CASES" --count "$COUNT" --seed "$SEED"

CHUNKFLOW_RECHUNKER_CASES="$ROOT/$CASES" \
CHUNKFLOW_RECHUNKER_MIN_CASES="${CHUNKFLOW_RECHUNKER_MIN_CASES:-$COUNT}" \
    cargo test --test rechunk_parity -- --ignored --nocapture
