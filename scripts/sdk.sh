#!/usr/bin/env bash
# Installs the client libraries that tests/tests/sdk.rs drives (the OpenAI and Anthropic
# Python SDKs, the OpenAI Agents SDK and LangChain; the OpenAI and Anthropic Node SDKs),
# pinned with hashes by tests/sdk/requirements.txt and tests/sdk/package-lock.json.
# They are installed once per machine, under ~/.cache/modelrunner/sdk/ in a directory
# named after the pins and the interpreters' versions, and target/sdk links to it, so
# a clean clone downloads nothing that an earlier one fetched.
set -euo pipefail
cd "$(dirname "$0")/.."
key=$( (cat tests/sdk/requirements.txt tests/sdk/package-lock.json; python3 --version; node --version) | sha256sum | cut -c1-16)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/modelrunner/sdk/$key"
mkdir -p "$cache" target
if ! [ -f "$cache/python.done" ]; then
  echo "sdk: installing the Python clients (tests/sdk/requirements.txt) into $cache"
  rm -rf "$cache/venv"
  python3 -m venv "$cache/venv"
  "$cache/venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r tests/sdk/requirements.txt
  touch "$cache/python.done"
fi
if ! [ -f "$cache/node.done" ]; then
  echo "sdk: installing the OpenAI and Anthropic Node SDKs (tests/sdk/package-lock.json) into $cache"
  rm -rf "$cache/node"
  mkdir -p "$cache/node"
  cp tests/sdk/package.json tests/sdk/package-lock.json "$cache/node/"
  (cd "$cache/node" && npm ci --silent --no-audit --no-fund)
  touch "$cache/node.done"
fi
if [ "$(readlink target/sdk 2>/dev/null)" != "$cache" ]; then
  rm -rf target/sdk
  ln -s "$cache" target/sdk
fi
