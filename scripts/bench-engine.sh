#!/usr/bin/env bash
# Benchmark: our engine against llama.cpp's own llama-batched-bench, built natively from
# the same llama.cpp source (the copy vendored by llama-cpp-sys-2), on the same model and
# machine in the same run. Prints tokens per second for prompt processing (PP) and
# generation (TG) at 1 and 4 parallel sequences, and our/llama.cpp ratios.
#   scripts/bench-engine.sh [MODEL.gguf]   (default: a generated ~100M-parameter F32 llama)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${BENCH_DIR:-$PWD/target/bench}
mkdir -p "$DIR"
NPP=${NPP:-128}; NTG=${NTG:-64}; NPL=${NPL:-1,4}
cargo build -q --release -p modelrunner-engine --example engine_bench
cargo build -q --release -p modelrunner-testkit --example make_gguf
MODEL=${1:-$DIR/fixture-100m.gguf}
[ -f "$MODEL" ] || target/release/examples/make_gguf "$MODEL" 100m
SRC=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/llama-cpp-sys-2-*/llama.cpp | sort -V | tail -1)
REF="$DIR/llama-ref"
if [ ! -x "$REF/bin/llama-batched-bench" ]; then
  echo "building llama-batched-bench from $SRC (native)"
  cmake -S "$SRC" -B "$REF" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=OFF >/dev/null
  cmake --build "$REF" --target llama-batched-bench -j"$(nproc)" >/dev/null
fi
echo "== llama.cpp llama-batched-bench =="
"$REF/bin/llama-batched-bench" -m "$MODEL" -c 4096 -b 512 -ub 512 -npp "$NPP" -ntg "$NTG" -npl "$NPL" -t "$(nproc)" 2>/dev/null \
  | tee "$DIR/ref.txt" | grep -E '^\|'
echo "== modelrunner engine =="
target/release/examples/engine_bench "$MODEL" "$NPP" "$NTG" "$NPL" 2>/dev/null | tee "$DIR/ours.txt"
echo "== ratio (ours / llama.cpp) =="
python3 - "$DIR/ref.txt" "$DIR/ours.txt" <<'PY'
import sys, re
def rows(path, pp_col, tg_col):
    out = {}
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) > max(pp_col, tg_col) and cells[0].isdigit():
            out[int(cells[2])] = (float(cells[pp_col]), float(cells[tg_col]))
    return out
ref = rows(sys.argv[1], 5, 7)   # PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | ...
ours = rows(sys.argv[2], 3, 4)
for b in sorted(ours):
    if b in ref:
        print(f"B={b}: PP {ours[b][0]:.1f} vs {ref[b][0]:.1f} t/s ({ours[b][0]/ref[b][0]:.2f}x), "
              f"TG {ours[b][1]:.1f} vs {ref[b][1]:.1f} t/s ({ours[b][1]/ref[b][1]:.2f}x)")
PY
