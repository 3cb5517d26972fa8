#!/usr/bin/env bash
# The whole test suite: formatting, clippy with warnings as errors, unit, integration and
# end-to-end tests, then llama.cpp's server test suite. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/sdk.sh
if [ ! -f ../shared/models/stories260K.gguf ]; then
  echo "test: ../shared/models/stories260K.gguf is missing; tests that need it check less (and fail under CI=true)" >&2
fi
if [ -n "${CI:-}" ] && [ -n "${MODELRUNNER_TEST_WITHOUT_SHARED:-}" ]; then
  echo "test: MODELRUNNER_TEST_WITHOUT_SHARED cannot be set under CI" >&2
  exit 1
fi
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
# Known advisories and bans, offline against the vendored RustSec database.
scripts/audit.sh
cargo build --locked --workspace --bins
rm -f target/test-notes.txt
cargo test --locked --workspace
# llama.cpp's own server test suite through the adapter (tests/llama-server-suite).
scripts/llama-server-suite.sh
if [ -s target/test-notes.txt ]; then
  echo "test: passed, but these tests checked less than they could (CI refuses that):"
  sed 's/^/  /' target/test-notes.txt
fi
