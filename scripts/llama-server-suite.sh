#!/usr/bin/env bash
# Runs llama.cpp's own server test suite (tools/server/tests/unit, taken from the
# llama-cpp-python sdist on PyPI at a pinned version and hash, never copied into this
# repository) against modelrunnerd, through tests/llama-server-suite/llama-server, which
# plays llama-server. Prints each test's outcome as passed, not applicable (with the
# reason from tests/llama-server-suite/not-applicable.tsv) or failed, and exits 1 when a
# test fails that is not listed as not applicable.
#
#   scripts/llama-server-suite.sh                 # the files in FILES below
#   scripts/llama-server-suite.sh unit/test_rerank.py -k top_n   # any pytest arguments
#   SLOW_TESTS=1 scripts/llama-server-suite.sh    # with the tests marked slow
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
version=0.3.36
sha256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
cache="${XDG_CACHE_HOME:-$HOME/.cache}/modelrunner/llama-server-suite/$version"
tree="$cache/llama.cpp"
suite="$tree/tools/server/tests"

scripts/sdk.sh
python="$root/target/sdk/venv/bin/python"
if ! [ -f "$suite/.done" ]; then
  echo "llama-server-suite: fetching llama-cpp-python $version's sdist for its server tests"
  rm -rf "$cache" && mkdir -p "$cache"
  "$python" - "$version" "$sha256" "$cache/sdist.tar.gz" <<'PY'
import hashlib, json, sys, urllib.parse, urllib.request
version, want, out = sys.argv[1:4]
# The package index's JSON API (PEP 691), as pip reads it.
index = "https://pypi.org/simple/llama-cpp-python/"
req = urllib.request.Request(index, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
with urllib.request.urlopen(req, timeout=60) as r:
    files = json.load(r)["files"]
name = f"llama_cpp_python-{version}.tar.gz"
url = urllib.parse.urljoin(index, next(f["url"] for f in files if f["filename"] == name))
h = hashlib.sha256()
with urllib.request.urlopen(url, timeout=600) as r, open(out, "wb") as f:
    while chunk := r.read(1 << 20):
        h.update(chunk)
        f.write(chunk)
if h.hexdigest() != want:
    sys.exit(f"llama-server-suite: the sdist's sha256 is {h.hexdigest()}, not {want}")
PY
  # The tests, and the chat templates they load by relative path.
  top="llama_cpp_python-$version/vendor/llama.cpp"
  tar -xzf "$cache/sdist.tar.gz" -C "$cache" "$top/tools/server/tests" "$top/models/templates"
  mv "$cache/$top" "$tree"
  rm -rf "$cache/llama_cpp_python-$version" "$cache/sdist.tar.gz"
  touch "$suite/.done"
fi

stories="$root/../shared/models/stories260K.gguf"
if ! [ -f "$stories" ] || [ -n "${MODELRUNNER_TEST_WITHOUT_SHARED:-}" ]; then
  # The suite's expectations are stories260K's; a stand-in would fail them for nothing.
  [ -n "${CI:-}" ] && { echo "llama-server-suite: $stories is missing; CI must provide it" >&2; exit 1; }
  echo "llama-server-suite: ../shared/models/stories260K.gguf is missing; llama.cpp's server suite did not run" \
    | tee -a target/test-notes.txt >&2
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$root/target/llama-server-suite"
mkdir -p "$out"
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
FILES=(unit/test_basic.py unit/test_completion.py unit/test_chat_completion.py
  unit/test_tokenize.py unit/test_embedding.py unit/test_rerank.py unit/test_infill.py
  unit/test_template.py unit/test_stream.py unit/test_security.py unit/test_ctx_shift.py
  unit/test_ignore_eos.py unit/test_tool_call.py unit/test_compat_anthropic.py
  unit/test_compat_oai_responses.py unit/test_metrics.py unit/test_slot_save.py)
[ $# -gt 0 ] && FILES=("$@")
# As the suite's own tests.sh: tests marked slow (large models from Hugging Face) only
# with SLOW_TESTS=1.
marks=(-m "not slow")
[ "${SLOW_TESTS:-0}" = 1 ] && marks=()
set +e
(cd "$suite" && env PORT="$port" \
  LLAMA_SERVER_BIN_PATH="$root/tests/llama-server-suite/llama-server" \
  MODELRUNNER_BIN="$root/target/debug" STORIES="$stories" SUITE_WORK="$work" \
  PYTHONPATH="$root/tests/llama-server-suite/stubs" PYTHONDONTWRITEBYTECODE=1 \
  "$python" -m pytest -p no:cacheprovider -o addopts= -q -rN --tb=line \
  --junitxml="$work/junit.xml" "${marks[@]}" "${FILES[@]}" >"$out/pytest.log" 2>&1)
set -e
echo "llama-server-suite: pytest's log is $out/pytest.log"
"$python" tests/llama-server-suite/report.py "$work/junit.xml" \
  tests/llama-server-suite/not-applicable.tsv "$out/pytest.log" | tee "$out/report.txt"
