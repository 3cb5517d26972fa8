#!/usr/bin/env bash
# Benchmark: the engine alone (crates/engine/examples/engine_bench.rs, one sequence)
# against llama.cpp's own llama-bench tg on the same model, threads and machine, in
# alternating rounds of the same run (ROUNDS, default 7). A third contender,
# scripts/tg-loop.cpp linked against the llama.cpp that cargo built for the engine,
# tells the engine's own loop apart from its llama.cpp build. All are built for this CPU
# (scripts/llama-server.sh builds llama-bench natively). PEER_FA sets llama-bench's
# flash attention (default: its own default, auto); RUNTIME_FLAGS goes to the engine
# (for example `--flash-attn on`). Prints the CPU, both sides' settings, the medians
# and the spread of the per-round ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${BENCH_DIR:-$PWD/target/bench}
ROUNDS=${ROUNDS:-7}; NTG=${NTG:-128}
mkdir -p "$DIR"
scripts/deps.sh
cargo build -q --release -p modelrunner-engine --example engine_bench
cargo build -q --release -p modelrunner-testkit --example make_gguf
Q8="$DIR/fixture-100m-q8.gguf"
[ -f "$Q8" ] || target/release/examples/make_gguf "$Q8" 100m-q8
LB="$(dirname "$(PROBE_MODEL=$Q8 scripts/llama-server.sh)")/llama-bench"
# The libraries of the newest llama-cpp-sys-2 build, and the headers of its sources.
LIBS=$(dirname "$(ls -t target/release/build/llama-cpp-sys-2-*/out/lib/libllama.a | head -1)")
SYS=$(cargo metadata --format-version 1 | python3 -c 'import json, sys, os
print(next(os.path.dirname(p["manifest_path"]) for p in json.load(sys.stdin)["packages"] if p["name"] == "llama-cpp-sys-2"))')
LOOP="$DIR/tg-loop"
g++ -O2 -std=c++17 scripts/tg-loop.cpp -I"$SYS/llama.cpp/include" -I"$SYS/llama.cpp/ggml/include" \
  -L"$LIBS" -lllama -lggml -lggml-cpu -lggml-base -fopenmp -lpthread -ldl -o "$LOOP"
THREADS=$(grep -E '^core id' /proc/cpuinfo | sort -u | wc -l); [ "$THREADS" -gt 0 ] || THREADS=$(nproc)
PEER=(-p 0 -n "$NTG" -r 1 -t "$THREADS" ${PEER_FA:+-fa "$PEER_FA"} -o csv)
echo "CPU: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-), $(nproc) CPUs, flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx|amx)' | tr '\n' ' ')"
echo "engine_bench: prompt 8, generate $NTG, 1 sequence, threads $THREADS ${RUNTIME_FLAGS:-}"
echo "llama-bench ($LB): ${PEER[*]}"
echo

bench() { # name model
  local ours=() peer=() loop=() r o p
  for r in $(seq "$ROUNDS"); do
    loop+=("$("$LOOP" "$2" "$NTG" "$THREADS" "$([[ ${RUNTIME_FLAGS:-} == *"flash-attn on"* ]] && echo 1 || echo 0)")")
    for k in 0 1; do
      if [ $(((r + k) % 2)) -eq 0 ]; then
        o=$(RUNTIME_FLAGS="--threads $THREADS ${RUNTIME_FLAGS:-}" target/release/examples/engine_bench "$2" 8 "$NTG" 1 2>/dev/null |
          awk -F'|' '$4+0 == 1 {gsub(/ /, "", $6); print $6}')
        ours+=("$o")
      else
        p=$("$LB" -m "$2" "${PEER[@]}" 2>/dev/null | awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) if ($i ~ /avg_ts/) c = i} NR == 2 {gsub(/"/, "", $c); print $c}')
        peer+=("$p")
      fi
    done
  done
  echo "## $1 ($(basename "$2")), $ROUNDS rounds"
  echo
  echo "| figure | engine_bench | llama-bench | ratio | ratio, lowest-highest round | C loop on our llama.cpp |"
  echo "|---|---:|---:|---:|---:|---:|"
  paste <(printf '%s\n' "${ours[@]}") <(printf '%s\n' "${peer[@]}") <(printf '%s\n' "${loop[@]}") | awk -v n="$NTG" '
    function med(a, k,   i, j, t) { for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
    { o[NR] = $1; p[NR] = $2; r[NR] = $1 / $2; l[NR] = $3 }
    END { mo = med(o, NR); mp = med(p, NR); mr = med(r, NR); ml = med(l, NR)
      printf "| decode, 1 sequence, tg%d (t/s) | %.1f | %.1f | %.2fx | %.2f-%.2fx | %.1f |\n", n, mo, mp, mr, r[1], r[NR], ml }'
  echo
}
if [ -f ../shared/models/stories260K.gguf ]; then
  bench "stories260K" "$(realpath ../shared/models/stories260K.gguf)"
fi
bench "~100M Q8_0 fixture" "$Q8"
