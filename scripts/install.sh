#!/usr/bin/env bash
# Installs modelrunner as a system service (run as root, after a release build, or let it
# build): binaries to $PREFIX/bin, the config to /etc/modelrunner (kept if present), the
# systemd unit to /etc/systemd/system, docs to $PREFIX/share/doc/modelrunner, and a
# `modelrunner` system user and group. Idempotent.
#
#   scripts/install.sh              install (PREFIX=/usr/local)
#   scripts/install.sh --uninstall  remove binaries, unit and docs; keep the store and config
#   scripts/install.sh --uninstall --purge   also remove /var/lib/modelrunner and /etc/modelrunner
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
BINARIES=${BINARIES:-target/release}   # where the built binaries are
DESTDIR=${DESTDIR:-}
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
uninstall=0 purge=0
for a in "$@"; do
  case "$a" in
    --uninstall) uninstall=1 ;;
    --purge) purge=1 ;;
    *) echo "install: unknown argument $a" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" -ne 0 ] && [ -z "$DESTDIR" ]; then
  echo "install: run as root (or set DESTDIR to stage the files)" >&2
  exit 1
fi
has_systemd() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }

if [ $uninstall -eq 1 ]; then
  if has_systemd; then systemctl disable --now modelrunnerd.service 2>/dev/null || true; fi
  rm -f "$DESTDIR$PREFIX/bin/modelrunnerd" "$DESTDIR$PREFIX/bin/modelrunner" \
    "$DESTDIR$UNIT_DIR/modelrunnerd.service"
  rm -rf "$DESTDIR$PREFIX/share/doc/modelrunner"
  if has_systemd; then systemctl daemon-reload; fi
  if [ $purge -eq 1 ]; then
    rm -rf "$DESTDIR/var/lib/modelrunner" "$DESTDIR/etc/modelrunner"
    if [ -z "$DESTDIR" ] && id modelrunner >/dev/null 2>&1; then userdel modelrunner || true; fi
    echo "install: removed modelrunner, its store and its configuration"
  else
    echo "install: removed modelrunner; the store (/var/lib/modelrunner) and /etc/modelrunner are kept (--purge removes them)"
  fi
  exit 0
fi

if [ ! -x "$BINARIES/modelrunnerd" ] || [ ! -x "$BINARIES/modelrunner" ]; then
  scripts/deps.sh
  cargo build --release --locked --bins
  BINARIES=target/release
fi
install -d "$DESTDIR$PREFIX/bin" "$DESTDIR/etc/modelrunner" "$DESTDIR$UNIT_DIR" \
  "$DESTDIR$PREFIX/share/doc/modelrunner"
install -m 0755 "$BINARIES/modelrunnerd" "$BINARIES/modelrunner" "$DESTDIR$PREFIX/bin/"
# The unit names /usr/local/bin; another PREFIX is written into the installed copy.
sed "s|/usr/local/bin/|$PREFIX/bin/|g" config/modelrunnerd.service >"$DESTDIR$UNIT_DIR/modelrunnerd.service"
chmod 0644 "$DESTDIR$UNIT_DIR/modelrunnerd.service"
if [ ! -e "$DESTDIR/etc/modelrunner/modelrunnerd.toml" ]; then
  install -m 0640 config/modelrunnerd.toml "$DESTDIR/etc/modelrunner/modelrunnerd.toml"
fi
install -m 0644 README.md docs/*.md "$DESTDIR$PREFIX/share/doc/modelrunner/"
if [ -z "$DESTDIR" ]; then
  getent group modelrunner >/dev/null || groupadd --system modelrunner
  id modelrunner >/dev/null 2>&1 || useradd --system --gid modelrunner --home-dir /var/lib/modelrunner \
    --no-create-home --shell /usr/sbin/nologin modelrunner
  chgrp modelrunner /etc/modelrunner/modelrunnerd.toml
fi
if has_systemd; then
  systemctl daemon-reload
  echo "install: done; start it with: systemctl enable --now modelrunnerd"
else
  echo "install: done (no systemd running here; the unit is installed for when there is)"
fi
