#!/usr/bin/env bash
# cargo deny check advisories bans, offline: the RustSec advisory database is vendored in
# deny/advisory-db (a snapshot; see deny/README.md) and set up as the git repository
# cargo-deny expects under target/advisory-dbs. cargo-deny is installed at a pinned
# version from crates.io when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_DENY_VERSION=0.18.3
if ! cargo deny --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
    cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked
fi
# The directory name cargo-deny derives from the database URL in deny/deny.toml.
db=target/advisory-dbs/advisory-db-3157b0e258782691
rm -rf "$db"
mkdir -p "$db"
cp -r deny/advisory-db/. "$db/"
git -C "$db" init -q
git -C "$db" add -A
git -C "$db" -c user.name=modelrunner -c user.email=audit@localhost commit -qm "vendored snapshot"
cargo deny check --config deny/deny.toml --disable-fetch advisories bans
