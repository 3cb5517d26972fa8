#!/usr/bin/env bash
# Builds llama.cpp's own llama-server, the peer the benchmarks compare against, for the
# CPU it runs on (GGML_NATIVE=ON, as llama.cpp builds by default), and prints its path.
# On CPUs with AMX, this ggml's native build dies with SIGILL on Q8_0 models (seen on the
# Xeon development VM), so there it gets the CPU's other ISA extensions named one by one
# and no AMX.
# The sources are those in the llama-cpp-python source distribution on PyPI
# (LLAMA_CPP_PYTHON, default 0.3.36: ggml 0.25, the release closest to the ggml that
# llama-cpp-sys-2 bundles). The build directory is named after the CPU's model and
# flags, so a tree moved to another machine builds its own. Set LLAMA_SERVER to use
# another binary instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${LLAMA_SERVER:-}" ]; then
  echo "$LLAMA_SERVER"
  exit 0
fi
DIR=${BENCH_DIR:-$PWD/target/bench}
VER=${LLAMA_CPP_PYTHON:-0.3.36}
CPU=$( (grep -m1 '^model name' /proc/cpuinfo; grep -m1 '^flags' /proc/cpuinfo) | sha256sum | cut -c1-12)
OUT="$DIR/llama-server-native-$CPU"
LS="$OUT/bin/llama-server"
if [ ! -x "$LS" ]; then
  SRC="$DIR/sdist/llama_cpp_python-$VER/vendor/llama.cpp"
  if [ ! -d "$SRC" ]; then
    mkdir -p "$DIR/sdist"
    pip download -q --no-deps --no-binary :all: "llama-cpp-python==$VER" -d "$DIR/sdist" >&2
    tar xzf "$DIR/sdist/llama_cpp_python-$VER.tar.gz" -C "$DIR/sdist"
  fi
  ISA=(-DGGML_NATIVE=ON)
  if grep -qw amx_tile /proc/cpuinfo; then
    ISA=(-DGGML_NATIVE=OFF)
    for f in avx avx2 fma f16c bmi2 avx512f avx512_vbmi avx512_vnni avx512_bf16 avx_vnni; do
      grep -qw "$f" /proc/cpuinfo || continue
      case $f in
        avx512f) ISA+=(-DGGML_AVX512=ON) ;;
        *) ISA+=("-DGGML_${f^^}=ON") ;;
      esac
    done
  fi
  cmake -S "$SRC" -B "$OUT" -DCMAKE_BUILD_TYPE=Release "${ISA[@]}" \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON >&2
  cmake --build "$OUT" --target llama-server llama-bench -j"$(nproc)" >&2
fi
echo "$LS"
