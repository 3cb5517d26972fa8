#!/usr/bin/env bash
# Installs the client libraries that tests/tests/sdk.rs drives (the OpenAI Python SDK,
# the OpenAI Agents SDK and LangChain; the OpenAI Node SDK), pinned with hashes by
# tests/sdk/requirements.txt and tests/sdk/package-lock.json, into target/sdk.
# Idempotent: nothing is downloaded when the pinned versions are already there.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=target/sdk
mkdir -p "$dest"
if ! [ -x "$dest/venv/bin/python" ] || ! cmp -s tests/sdk/requirements.txt "$dest/requirements.txt"; then
  echo "sdk: installing the Python clients (tests/sdk/requirements.txt)"
  rm -rf "$dest/venv"
  python3 -m venv "$dest/venv"
  "$dest/venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r tests/sdk/requirements.txt
  cp tests/sdk/requirements.txt "$dest/requirements.txt"
fi
if ! [ -d "$dest/node/node_modules/openai" ] || ! cmp -s tests/sdk/package-lock.json "$dest/node/package-lock.json"; then
  echo "sdk: installing the OpenAI Node SDK"
  rm -rf "$dest/node"
  mkdir -p "$dest/node"
  cp tests/sdk/package.json tests/sdk/package-lock.json "$dest/node/"
  (cd "$dest/node" && npm ci --silent --no-audit --no-fund)
fi
