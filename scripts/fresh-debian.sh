#!/usr/bin/env bash
# Proves the README's two commands on a fresh Debian 12: debootstraps a minimal bookworm
# into DIR (default /var/tmp/modelrunner-fresh-debian: outside the tree, since /dev, /proc
# and /sys are mounted in it while it runs), gives it rustup's toolchain as the only thing
# preinstalled (copied from this machine's ~/.rustup and ~/.cargo/bin, the toolchain that
# rust-toolchain.toml names), clones this repository at HEAD into it with ../shared
# beside it, then runs, as root inside it: scripts/start.sh until the daemon answers on
# 127.0.0.1:12434, then scripts/test.sh. Needs root and debootstrap (apt-get install
# debootstrap). The log is DIR.log; the exit status is scripts/test.sh's.
# FRESH_SKIP_START=1 runs only scripts/test.sh (start.sh's release build is the slow half).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(realpath -m "${1:-/var/tmp/modelrunner-fresh-debian}")
LOG="$ROOT.log"
if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
  rm -rf "$ROOT"
  debootstrap --variant=minbase bookworm "$ROOT" http://deb.debian.org/debian >"$LOG" 2>&1
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The local certificate authorities this machine trusts (a network that re-signs TLS
# has its own, which any machine on it must trust too); ca-certificates takes them in.
mkdir -p "$ROOT/usr/local/share/ca-certificates"
cp -a /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/" 2>/dev/null || true
mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
for m in proc sys dev dev/pts; do
  mkdir -p "$ROOT/$m"
  case $m in
    proc) mount -t proc proc "$ROOT/proc" ;;
    dev/pts) mount -t devpts devpts "$ROOT/dev/pts" ;;
    *) mount --rbind "/$m" "$ROOT/$m" ;;
  esac
  mounted+=("$ROOT/$m")
done
# rustup's toolchain, as `rustup` installs it: ~/.rustup and the proxies in ~/.cargo/bin.
toolchain=$(rustup show active-toolchain | cut -d' ' -f1)
mkdir -p "$ROOT/root/.rustup/toolchains" "$ROOT/root/.cargo/bin"
src=$(realpath "$HOME/.rustup/toolchains/$toolchain")
cp -a "$src" "$ROOT/root/.rustup/toolchains/$toolchain"
cp "$HOME/.rustup/settings.toml" "$ROOT/root/.rustup/"
cp -a "$HOME/.cargo/bin/." "$ROOT/root/.cargo/bin/"
# FRESH_REUSE=1 keeps the clone and its build from an earlier run (fast-forwarded to HEAD).
if [ -n "${FRESH_REUSE:-}" ] && [ -d "$ROOT/work/modelrunner/.git" ]; then
  git -C "$ROOT/work/modelrunner" pull -q --ff-only "$PWD" HEAD
else
  rm -rf "$ROOT/work"
  mkdir -p "$ROOT/work"
  git clone -q "$PWD" "$ROOT/work/modelrunner"
  cp -a ../shared "$ROOT/work/shared"
fi
[ -e "$ROOT/proc/self/exe" ] || { echo "fresh: /proc is not mounted in $ROOT" >&2; exit 1; }
chroot "$ROOT" /usr/bin/env -i HOME=/root TERM=dumb CI="${CI:-}" FRESH_SKIP_START="${FRESH_SKIP_START:-}" \
  PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/bash -c '
    set -euo pipefail
    if command -v update-ca-certificates >/dev/null; then update-ca-certificates >/dev/null; fi
    cd /work/modelrunner
    if [ -n "$FRESH_SKIP_START" ]; then exec scripts/test.sh; fi
    (scripts/start.sh >/work/start.log 2>&1 &)
    for _ in $(seq 1 1800); do
      if curl -fsS http://127.0.0.1:12434/models >/dev/null 2>&1; then break; fi
      if grep -q "^error" /work/start.log 2>/dev/null; then break; fi
      sleep 1
    done
    if ! curl -fsS http://127.0.0.1:12434/models; then
      cat /work/start.log
      echo "fresh: scripts/start.sh did not bring the daemon up" >&2
      exit 1
    fi
    echo "fresh: the daemon answers"
    pkill -x modelrunnerd || true  # by name: -f would match this very script
    scripts/test.sh
  ' 2>&1 | tee -a "$LOG"
