#!/usr/bin/env bash
# The project's test suite: what the README's test command and CI run.
#
# 1. installs missing system programs (Graphviz) so no test path is skipped;
# 2. `cargo test`: unit, integration and doc tests, and builds every example and bench;
# 3. runs the tutorial example ports and the demo with small sizes;
# 4. the interop suites against the real Python tools (rechunker, zarr-python, xarray) and the S3 store
#    (feature `s3`) against a moto server on loopback, each in its own venv under target/py/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

cargo test --all-targets
cargo test --doc

# The tutorial ports and the README's main job, with small sizes.
for example in delayed_basics many_tasks; do
    cargo run --quiet --example "$example" -- --sleep-ms 5
done
cargo run --quiet --example array_basics -- --small
cargo run --quiet --example rechunk_era5_like -- --out target/examples/era5-ci
cargo run --quiet --example async_load -- --latency-ms 5
cargo run --quiet --example dataset_zarr -- --small --out target/examples/climate-ci.zarr
cargo run --quiet -- demo --sleep-ms 10 --out target/demo-ci

bash scripts/rechunker-parity.sh
bash scripts/zarr-interop.sh
bash scripts/xarray-interop.sh
bash scripts/s3-test.sh
