#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted input (GGUF headers, OCI manifests, model
# references, chat templates) with cargo-fuzz (libFuzzer), each for a bounded time.
# Not part of scripts/test.sh: run it by hand or in a scheduled job.
#
#   scripts/fuzz.sh            # every target, FUZZ_SECONDS (default 60) each
#   scripts/fuzz.sh gguf_reader
#
# Needs the nightly toolchain (rustup toolchain install nightly) and installs cargo-fuzz
# at a pinned version. The seed corpora live in the repository, fuzz/corpus/<target>;
# what libFuzzer finds goes to fuzz/target/corpus/<target> (kept between runs, not
# committed; copy a find that matters into fuzz/corpus). Crashes land in
# fuzz/artifacts/<target> and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_FUZZ_VERSION=0.13.1
seconds=${FUZZ_SECONDS:-60}
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf_reader manifest_parser reference_parser template_renderer)
for t in "${targets[@]}"; do
    echo "fuzz: $t for ${seconds}s"
    seeds=()
    # Real chat templates seed the template target (read only; never copied in).
    if [ "$t" = template_renderer ] && [ -d ../shared/chat-templates ]; then
        seeds=(../shared/chat-templates)
    fi
    mkdir -p "fuzz/target/corpus/$t"
    cargo +nightly fuzz run --fuzz-dir fuzz "$t" "fuzz/target/corpus/$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536
done
echo "fuzz: no crash in ${#targets[@]} target(s)"
