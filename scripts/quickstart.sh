#!/usr/bin/env bash
# The main job on the embedded default store: build, create a ledger in ./ledger-data (unless
# one exists), start the `ledgerd` service on it, ingest this repository's git history through
# the service, ask "who approved HEAD?", verify every entry, and keep serving until Ctrl-C.
#   ONCE=1 ./scripts/quickstart.sh     stops the service after the demo instead
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p ledger-cli -p ledger-server
bin=./target/release
export LEDGER_DB="${LEDGER_DB:-ledger-data}"
listen="${LEDGER_LISTEN:-127.0.0.1:7700}"
[ -d "$LEDGER_DB" ] || "$bin/ledger" init

"$bin/ledgerd" --listen "$listen" --log-filter "${LEDGER_LOG:-info}" &
server_pid=$!
trap 'kill -TERM $server_pid 2>/dev/null; wait $server_pid 2>/dev/null' EXIT
export LEDGER_SERVER="http://$listen"
for _ in $(seq 50); do "$bin/ledger" key list >/dev/null 2>&1 && break; sleep 0.2; done

"$bin/ledger" ingest git . --repo "${REPO:-provenance-ledger/ledger}"
"$bin/ledger" why "$(git rev-parse HEAD)"
"$bin/ledger" verify

if [ -z "${ONCE:-}" ]; then
  echo
  echo "ledgerd is serving $LEDGER_DB on $listen. Try, in another shell:"
  echo "  $bin/ledger --server http://$listen log --limit 5"
  echo "Ctrl-C stops it (in-flight appends are flushed first)."
  wait $server_pid
fi
