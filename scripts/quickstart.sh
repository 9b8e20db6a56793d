#!/usr/bin/env bash
# The main job on the embedded default store, against real input: build `ledger`, create a
# ledger in ./ledger-data (unless one exists), ingest this repository's git history, answer
# "who approved this?" for HEAD, and verify every entry.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p ledger-cli
ledger=./target/release/ledger
export LEDGER_DB="${LEDGER_DB:-ledger-data}"
[ -d "$LEDGER_DB" ] || "$ledger" init
"$ledger" ingest git . --repo "${REPO:-provenance-ledger/ledger}"
"$ledger" why "$(git rev-parse HEAD)"
"$ledger" verify
