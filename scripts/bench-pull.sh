#!/usr/bin/env bash
# Benchmark: pulling a model of four 256 MiB layers from a local docker-registry with
# modelrunnerd, next to `skopeo copy` of the same artifact to an OCI layout, in the same
# run (tests/examples/pull_bench.rs). Results go to stdout; docs/performance.md records them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build -q --release --bins
cargo build -q --release -p modelrunner-e2e --example pull_bench
target/release/examples/pull_bench "$@"
