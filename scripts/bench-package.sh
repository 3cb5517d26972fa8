#!/usr/bin/env bash
# Benchmark: `modelrunner package` of a 1 GiB GGUF (hash, stream to the daemon, verify,
# fsync, publish) against `sha256sum` plus `cp` of the same file, measured in the same
# run, warm page cache, median of RUNS. Prints the figures and the ratio (goal: <= 1.3).
#   scripts/bench-package.sh [SIZE_MIB]   (default 1024; RUNS=3; BENCH_DIR=target/bench)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
RUNS=${RUNS:-3}
DIR=${BENCH_DIR:-$PWD/target/bench}
mkdir -p "$DIR"
cargo build -q --release --bins
cargo build -q --release -p modelrunner-testkit --example make_gguf
GGUF="$DIR/bench-${SIZE_MIB}m.gguf"
[ -f "$GGUF" ] || target/release/examples/make_gguf "$GGUF" "$SIZE_MIB"
STORE="$DIR/store"
rm -rf "$STORE" "$DIR/copy"
target/release/modelrunnerd --listen 127.0.0.1:0 --store "$STORE" >"$DIR/daemon.out" 2>"$DIR/daemon.err" &
DAEMON=$!
trap 'kill $DAEMON 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening "$DIR/daemon.out" 2>/dev/null && break; sleep 0.1; done
export MODEL_RUNNER_HOST=$(sed -n 's/^listening on //p' "$DIR/daemon.out")
cat "$GGUF" >/dev/null   # warm the page cache for every contender alike

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
peer=(); ours=(); peer_sync=(); peer_ossl=()
for i in $(seq "$RUNS"); do
  rm -f "$DIR/copy"; t0=$(now)
  sha256sum "$GGUF" >/dev/null && cp "$GGUF" "$DIR/copy"
  t1=$(now); peer+=("$(echo "$t1 - $t0" | bc -l)")
  rm -f "$DIR/copy"; t0=$(now)
  sha256sum "$GGUF" >/dev/null && cp "$GGUF" "$DIR/copy" && sync "$DIR/copy"
  t1=$(now); peer_sync+=("$(echo "$t1 - $t0" | bc -l)")
  rm -f "$DIR/copy"; t0=$(now)
  openssl dgst -sha256 "$GGUF" >/dev/null && cp "$GGUF" "$DIR/copy"
  t1=$(now); peer_ossl+=("$(echo "$t1 - $t0" | bc -l)")
  rm -f "$DIR/copy"
  target/release/modelrunner purge --force >/dev/null
  t0=$(now)
  target/release/modelrunner package --gguf "$GGUF" "bench:run$i" >/dev/null
  t1=$(now); ours+=("$(echo "$t1 - $t0" | bc -l)")
done
P=$(printf '%s\n' "${peer[@]}" | median)
PS=$(printf '%s\n' "${peer_sync[@]}" | median)
PO=$(printf '%s\n' "${peer_ossl[@]}" | median)
O=$(printf '%s\n' "${ours[@]}" | median)
printf 'package benchmark: %s MiB GGUF, median of %s runs\n' "$SIZE_MIB" "$RUNS"
printf '  sha256sum + cp          %8.3f s\n' "$P"
printf '  sha256sum + cp + sync   %8.3f s\n' "$PS"
printf '  openssl sha256 + cp      %8.3f s  (SHA-NI hashing, the stronger peer)\n' "$PO"
printf '  modelrunner package     %8.3f s  (%.0f MiB/s)\n' "$O" "$(echo "$SIZE_MIB / $O" | bc -l)"
printf '  ratio vs sha256sum+cp        %.2fx (goal <= 1.30x)\n' "$(echo "$O / $P" | bc -l)"
printf '  ratio vs sha256sum+cp+sync   %.2fx\n' "$(echo "$O / $PS" | bc -l)"
printf '  ratio vs openssl+cp          %.2fx\n' "$(echo "$O / $PO" | bc -l)"
