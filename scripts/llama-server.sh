#!/usr/bin/env bash
# Builds llama.cpp's own llama-server and llama-bench, the peers the benchmarks compare
# against, for the CPU they run on (GGML_NATIVE=ON, as llama.cpp builds by default), and
# prints llama-server's path (llama-bench lies next to it).
# The native build is probed before it is used: with PROBE_MODEL set (a Q8_0 GGUF), it
# runs llama-bench on it once. Where the native build dies with SIGILL (seen on Xeon VMs
# with AMX: this ggml's AMX kernel for Q8_0 faults at its first tile instruction), the
# script says so and builds again, native but without AMX; the choice is printed, never
# assumed from the CPU's flags.
# The sources are those in the llama-cpp-python source distribution on PyPI
# (LLAMA_CPP_PYTHON, default 0.3.36: ggml 0.25, the release closest to the ggml that
# llama-cpp-sys-2 bundles). Build directories are named after the CPU's model and flags,
# so a tree moved to another machine builds its own. Set LLAMA_SERVER to use another
# binary instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${LLAMA_SERVER:-}" ]; then
  echo "$LLAMA_SERVER"
  exit 0
fi
DIR=${BENCH_DIR:-$PWD/target/bench}
VER=${LLAMA_CPP_PYTHON:-0.3.36}
CPU=$( (grep -m1 '^model name' /proc/cpuinfo; grep -m1 '^flags' /proc/cpuinfo) | sha256sum | cut -c1-12)
SRC="$DIR/sdist/llama_cpp_python-$VER/vendor/llama.cpp"

build() { # out-dir cmake-isa-options...
  local out=$1
  shift
  [ -x "$out/bin/llama-server" ] && [ -x "$out/bin/llama-bench" ] && return 0
  if [ ! -d "$SRC" ]; then
    mkdir -p "$DIR/sdist"
    pip download -q --no-deps --no-binary :all: "llama-cpp-python==$VER" -d "$DIR/sdist" >&2
    tar xzf "$DIR/sdist/llama_cpp_python-$VER.tar.gz" -C "$DIR/sdist"
  fi
  cmake -S "$SRC" -B "$out" -DCMAKE_BUILD_TYPE=Release "$@" \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON >&2
  cmake --build "$out" --target llama-server llama-bench -j"$(nproc)" >&2
}

NATIVE="$DIR/llama-server-native-$CPU"
build "$NATIVE" -DGGML_NATIVE=ON
OUT=$NATIVE
if [ -n "${PROBE_MODEL:-}" ]; then
  rc=0
  "$NATIVE/bin/llama-bench" -m "$PROBE_MODEL" -p 8 -n 4 -r 1 -t 1 >/dev/null 2>&1 || rc=$?
  if [ "$rc" -eq 132 ]; then
    # Seen on a Xeon VM: SIGILL at an AMX tile instruction (tilezero, in the Q8_0 AMX
    # kernel). Explicit -mno-* flags win over -march=native's, whatever their order.
    NOAMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    echo "llama-server.sh: the native build dies with SIGILL on this CPU; building it native without AMX ($NOAMX)" >&2
    OUT="$DIR/llama-server-noamx-$CPU"
    build "$OUT" -DGGML_NATIVE=ON "-DCMAKE_C_FLAGS=$NOAMX" "-DCMAKE_CXX_FLAGS=$NOAMX"
    echo "llama-server.sh: peer built with GGML_NATIVE=ON $NOAMX" >&2
  elif [ "$rc" -ne 0 ]; then
    echo "llama-server.sh: the native llama-bench failed (exit $rc) on $PROBE_MODEL" >&2
    exit 1
  else
    echo "llama-server.sh: peer built with GGML_NATIVE=ON (probe passed)" >&2
  fi
fi
echo "$OUT/bin/llama-server"
