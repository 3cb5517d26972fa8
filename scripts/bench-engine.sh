#!/usr/bin/env bash
# Benchmark: the modelrunner runner against llama.cpp's own llama-server on the same model,
# machine and settings, in the same run (crates/engine/examples/server_bench.rs). llama-server
# is built by scripts/llama-server.sh.
# Models: stories260K (per-token overhead dominates) and a ~100M-parameter Q8_0 llama made by
# the fixture writer (weights dominate). Results go to stdout; docs/performance.md records them.
set -euo pipefail
# Servers started below must not outlive an interrupted run (a stale peer would keep
# its port and answer the next run in place of a fresh one).
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
cd "$(dirname "$0")/.."
DIR=${BENCH_DIR:-$PWD/target/bench}
SLOTS=8; CTX=512; NPP=${NPP:-256}; NTG=${NTG:-64}
mkdir -p "$DIR"
# The peer runs with the engine's own layout: a KV stream per slot, no flash attention.
PEER_ARGS=${PEER_ARGS:---no-kv-unified -fa off}
scripts/deps.sh
cargo build -q --release --bins
cargo build -q --release -p modelrunner-engine --example server_bench
cargo build -q --release -p modelrunner-testkit --example make_gguf
Q8="$DIR/fixture-100m-q8.gguf"
[ -f "$Q8" ] || target/release/examples/make_gguf "$Q8" 100m-q8
LS=$(PROBE_MODEL=$Q8 scripts/llama-server.sh)
THREADS=$(grep -E '^core id' /proc/cpuinfo | sort -u | wc -l); [ "$THREADS" -gt 0 ] || THREADS=$(nproc)

bench() { # name model eos vocab
  local sock="$DIR/runner.sock" port=18765
  rm -f "$sock"
  local launch
  launch=$(printf '{"model":"%s","socket":"%s","settings":{"parallel":%d,"context-size":%d,"threads":%d}}' \
    "$2" "$sock" $SLOTS $CTX "$THREADS")
  target/release/modelrunnerd runner "$launch" 2>"$DIR/runner.log" &
  local r=$!
  "$LS" -m "$2" --host 127.0.0.1 --port $port -np $SLOTS -c $((SLOTS * CTX)) -b 512 -ub 512 \
    -t "$THREADS" -tb "$THREADS" $PEER_ARGS --no-webui >"$DIR/llama-server.log" 2>&1 &
  local l=$!
  for _ in $(seq 300); do
    [ -S "$sock" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.2
  done
  echo "## $1 ($(basename "$2"), $SLOTS slots x $CTX tokens, $THREADS threads, prompt $NPP, generate $NTG)"
  target/release/examples/server_bench "$sock" "127.0.0.1:$port" "$3" "$4" "$NPP" "$NTG"
  kill $r $l 2>/dev/null || true
  wait $r $l 2>/dev/null || true
}
if [ -f ../shared/models/stories260K.gguf ]; then
  bench "stories260K" "$(realpath ../shared/models/stories260K.gguf)" 2 512
fi
bench "~100M Q8_0 fixture" "$Q8" 2 32003
