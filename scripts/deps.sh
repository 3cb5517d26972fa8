#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages modelrunner needs to build and test, idempotently:
# nothing is downloaded when everything is already installed.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config curl ca-certificates
  cmake clang libclang-dev        # llama.cpp (engine) build
  docker-registry skopeo          # registry tests: a real CNCF Distribution registry
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The SDK tests run the official OpenAI SDKs for Python and Node. Commands already on
# the PATH (pyenv, nodesource) are used as they are; Debian's packages otherwise.
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# `python3 -m venv --help` works without the venv module's ensurepip, which Debian and
# Ubuntu ship apart (python3-venv); creating a venv then fails.
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
# The service test checks the unit with systemd-analyze (it needs no running systemd).
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The Kubernetes test renders deploy/kubernetes with `kubectl kustomize` (any kubectl
# already on the PATH, e.g. Google Cloud SDK's, is used as it is).
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
# The chat page's test drives Debian's Chromium (Playwright's own browser downloads are
# not used).
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
# The GPU admission test's stand-in nvidia-smi counts runners with pgrep.
command -v pgrep >/dev/null 2>&1 || missing+=(procps)
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The registry package starts a system service; tests start their own instances.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
    $SUDO systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
fi
# The OpenAI Node SDK calls fetch, global from Node.js 18 on (its README asks for 20;
# Debian 12 ships 18.19; our Node test has run on 20 only, see docs/testing.md).
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  echo "deps: Node.js $(node --version) is too old for the OpenAI Node SDK; install Node.js 18 or later (e.g. from NodeSource)" >&2
  exit 1
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: cargo is missing; install Rust with rustup (see rust-toolchain.toml)" >&2
  exit 1
fi
