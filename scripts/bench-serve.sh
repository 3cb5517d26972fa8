#!/usr/bin/env bash
# Benchmark: modelrunnerd end to end (OpenAI API, on-demand runner) against llama.cpp's own
# llama-server on the same model and machine, in the same run, alternating
# (tests/examples/serve_bench.rs). llama-server and llama-bench are built natively by
# scripts/llama-server.sh. LAYOUT=defaults (the default): each server with its own
# defaults, the same thread count given to both; LAYOUT=same: both with 8 slots x 512
# tokens, a KV stream per slot and no flash attention. Both sides' settings and the CPU
# are printed with the figures; docs/performance.md records them.
set -euo pipefail
# Servers started below must not outlive an interrupted run (a stale peer would keep
# its port and answer the next run in place of a fresh one).
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
cd "$(dirname "$0")/.."
DIR=${BENCH_DIR:-$PWD/target/bench}
SLOTS=8; CTX=512; NTG=${NTG:-200}; LAYOUT=${LAYOUT:-defaults}
mkdir -p "$DIR"
scripts/deps.sh
cargo build -q --release --bins
cargo build -q --release -p modelrunner-e2e --example serve_bench
cargo build -q --release -p modelrunner-testkit --example make_gguf
Q8="$DIR/fixture-100m-q8.gguf"
[ -f "$Q8" ] || target/release/examples/make_gguf "$Q8" 100m-q8
LS=$(PROBE_MODEL=$Q8 scripts/llama-server.sh)
THREADS=$(grep -E '^core id' /proc/cpuinfo | sort -u | wc -l); [ "$THREADS" -gt 0 ] || THREADS=$(nproc)
case $LAYOUT in
  same)
    OURS_ARGS=(--parallel $SLOTS); OURS_CTX=$CTX
    PEER_ARGS=(-np $SLOTS -c $((SLOTS * CTX)) -b 512 -ub 512 --no-kv-unified -fa off) ;;
  defaults) OURS_ARGS=(); OURS_CTX=; PEER_ARGS=() ;;
  *) echo "LAYOUT is same or defaults" >&2; exit 2 ;;
esac
echo "CPU: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-), $(nproc) CPUs, flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx|amx)' | tr '\n' ' ')"
echo "modelrunnerd: --threads $THREADS ${OURS_ARGS[*]} ${OURS_CTX:+context-size $OURS_CTX}"
echo "llama-server ($LS): -t $THREADS -tb $THREADS ${PEER_ARGS[*]}"
echo
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
# Proportional set size: shared pages split among the processes that map them. The
# daemon and its runners map the same executable, which RSS counts once per process.
pss() { awk '/^Pss:/ {printf "%.1f", $2/1024}' "/proc/$1/smaps_rollup"; }
kids() { # the daemon's runner processes: kids rss|pss
  local total=0 p
  for p in $(pgrep -f "\"socket\":\"$STORE/run/"); do total=$(awk -v t="$total" -v k="$($1 "$p")" 'BEGIN {print t + k}'); done
  echo "$total"
}

bench() { # name model-file eos vocab
  STORE=$(mktemp -d "$DIR/store.XXXX")
  local port=18766 lport=18767
  target/release/modelrunnerd --store "$STORE" --listen 127.0.0.1:$port "${OURS_ARGS[@]}" \
    --threads "$THREADS" --keep-alive -1 >/dev/null 2>"$DIR/daemon.log" &
  local d=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  local idle; idle=$(rss $d)
  MODEL_RUNNER_HOST=http://127.0.0.1:$port target/release/modelrunner package --gguf "$2" bench >/dev/null
  [ -z "$OURS_CTX" ] || curl -sf "http://127.0.0.1:$port/engines/_configure" -d "{\"model\":\"bench\",\"context-size\":$OURS_CTX}" >/dev/null
  sleep 1
  # Cold start, three times each (median): the daemon unloads and loads on demand; a
  # fresh llama-server process is started each time.
  local co=() cl=() l
  for _ in 1 2 3; do
    co+=("$(target/release/examples/serve_bench cold "http://127.0.0.1:$port" bench)")
    "$LS" -m "$2" --host 127.0.0.1 --port $lport -t "$THREADS" -tb "$THREADS" "${PEER_ARGS[@]}" --no-webui >"$DIR/llama-server.log" 2>&1 &
    l=$!
    cl+=("$(target/release/examples/serve_bench cold "http://127.0.0.1:$lport" bench)")
    [ ${#cl[@]} -eq 3 ] || { kill $l; wait $l 2>/dev/null || true; }
  done
  local cold_ours cold_llama
  cold_ours=$(printf '%s\n' "${co[@]}" | sort -g | sed -n 2p)
  cold_llama=$(printf '%s\n' "${cl[@]}" | sort -g | sed -n 2p)
  echo "## $1 ($(basename "$2"), layout $LAYOUT, $THREADS threads, generate $NTG, ${ROUNDS:-9} rounds)"
  echo
  echo "| figure | modelrunner | llama-server | ratio | ratio, lowest-highest round |"
  echo "|---|---:|---:|---:|---:|"
  target/release/examples/serve_bench hot "http://127.0.0.1:$port" "http://127.0.0.1:$lport" bench "$3" "$4" "$NTG"
  awk -v a="$cold_ours" -v b="$cold_llama" 'BEGIN {printf "| cold first request, to first token (s) | %.3f | %.3f | %.2fx | |\n", a, b, b/a}'
  local m
  for m in rss pss; do
    awk -v a="$($m $d)" -v b="$(kids $m)" -v c="$($m $l)" -v m="$m" 'BEGIN {printf "| memory with the model loaded, idle, %s (MiB) | %.1f | %.1f | %.2fx | |\n", toupper(m), a+b, c, c/(a+b)}'
  done
  echo "| daemon alone, no model loaded (MiB) | $idle | - | - | |"
  echo
  kill $d $l 2>/dev/null || true
  wait $d $l 2>/dev/null || true
  rm -rf "$STORE"
}
if [ -f ../shared/models/stories260K.gguf ]; then
  bench "stories260K" "$(realpath ../shared/models/stories260K.gguf)" 2 512
fi
bench "~100M Q8_0 fixture" "$Q8" 2 32003
