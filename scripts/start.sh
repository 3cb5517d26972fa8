#!/usr/bin/env bash
# Builds everything in release mode and starts modelrunnerd with the embedded defaults
# (store under the user's data directory, http://127.0.0.1:12434). Extra arguments go to
# modelrunnerd, e.g. `scripts/start.sh --listen 127.0.0.1:8080`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked --bins
echo "start: binaries in target/release (modelrunnerd, modelrunner)"
exec target/release/modelrunnerd "$@"
