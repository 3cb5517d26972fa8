#!/usr/bin/env bash
# Builds llama.cpp's own llama-server, the peer the benchmarks compare against, and prints
# its path. The sources are those in the llama-cpp-python source distribution on PyPI
# (LLAMA_CPP_PYTHON, default 0.3.36: ggml 0.25, the release closest to the ggml that
# llama-cpp-sys-2 bundles). It is built with explicit x86-64 ISA flags: with GGML_NATIVE=ON
# it dies with SIGILL on Q8_0 models on the development VM (its AMX path). Set
# LLAMA_SERVER to use another binary instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${LLAMA_SERVER:-}" ]; then
  echo "$LLAMA_SERVER"
  exit 0
fi
DIR=${BENCH_DIR:-$PWD/target/bench}
VER=${LLAMA_CPP_PYTHON:-0.3.36}
LS="$DIR/llama-server-isa/bin/llama-server"
if [ ! -x "$LS" ]; then
  SRC="$DIR/sdist/llama_cpp_python-$VER/vendor/llama.cpp"
  if [ ! -d "$SRC" ]; then
    mkdir -p "$DIR/sdist"
    pip download -q --no-deps --no-binary :all: "llama-cpp-python==$VER" -d "$DIR/sdist" >&2
    tar xzf "$DIR/sdist/llama_cpp_python-$VER.tar.gz" -C "$DIR/sdist"
  fi
  cmake -S "$SRC" -B "$DIR/llama-server-isa" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
    -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=ON \
    -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON >&2
  cmake --build "$DIR/llama-server-isa" --target llama-server -j"$(nproc)" >&2
fi
echo "$LS"
