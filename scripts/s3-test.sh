#!/usr/bin/env bash
# Tests chunkflow's s3:// stores (cargo feature `s3`) against a local moto S3 server.
#
# Makes (or reuses) a venv with a pinned moto[server] under target/py/moto-venv, starts
# moto_server on 127.0.0.1 at a free port (stopped on exit), creates a test bucket through the
# server's S3 API (boto3, installed with moto), exports the AWS_* variables the store reads and
# runs the integration tests in tests/s3_store.rs, which are #[ignore]d unless run this way.
#
# Usage: scripts/s3-test.sh [extra args for the test binary, e.g. a test name filter]
# Environment: PYTHON (default python3), CHUNKFLOW_ROOT (the crate to test; default: the repo
# holding this script), MOTO_PORT (default: a free port).
set -euo pipefail

PYTHON="${PYTHON:-python3}"
MOTO_VERSION="5.2.5"
BUCKET="chunkflow-test"

ROOT="${CHUNKFLOW_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
cd "$ROOT"

VENV="target/py/moto-venv"
mkdir -p target/py

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" - "$MOTO_VERSION" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
import boto3, flask  # noqa: F401  (the [server] extra)
sys.exit(0 if version("moto") == sys.argv[1] else 1)
PY
    echo "installing moto[server]==$MOTO_VERSION into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "moto[server]==$MOTO_VERSION"
fi

PORT="${MOTO_PORT:-$("$VENV/bin/python" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')}"
LOG="target/py/moto-server.log"

"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 &
MOTO_PID=$!
cleanup() {
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
export AWS_ALLOW_HTTP=true
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_REGION AWS_SKIP_SIGNATURE || true

echo "waiting for moto_server on $AWS_ENDPOINT_URL (log: $LOG)" >&2
"$VENV/bin/python" - "$BUCKET" <<'PY'
import os, sys, time
import boto3
from botocore.config import Config

s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                  config=Config(retries={"max_attempts": 1}))
deadline = time.time() + 30
while True:
    try:
        s3.list_buckets()
        break
    except Exception as e:  # noqa: BLE001
        if time.time() > deadline:
            sys.exit(f"moto_server did not come up: {e}")
        time.sleep(0.2)
s3.create_bucket(Bucket=sys.argv[1])
PY

export CHUNKFLOW_S3_TEST_URL="s3://$BUCKET/chunkflow-tests"
echo "running tests/s3_store.rs against $CHUNKFLOW_S3_TEST_URL" >&2
cargo test --features s3 --test s3_store -- --include-ignored "$@"
echo "s3 store tests: OK" >&2
