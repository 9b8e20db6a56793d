#!/usr/bin/env bash
# The side-by-side benchmark of issue 16 (docs/BENCHMARKS.md), in one run: `ledgerd` on the
# PostgreSQL store, `ledgerd` on fjall, and a plain PostgreSQL audit table with a hash-chain
# trigger (`ledger bench audit-table`), each fed the same signed 1 KiB records by 1, 8 and 32
# clients for DURATION seconds (STREAM=1: the ledger's clients use `AppendStream`, eight
# records in flight each; the audit table has no such path: one row per transaction).
#   LEDGER_BENCH_PG=postgresql://USER@HOST/postgres ./scripts/bench-postgres.sh
# LEDGER_BENCH_PG names a database from which the user can CREATE DATABASE; without it, a
# private cluster is started (.ci/postgres.sh). Prints a table: store, clients, appends/s,
# p50 and p99 latency.
set -euo pipefail
cd "$(dirname "$0")/.."
# BIN=DIR runs prebuilt `ledger` and `ledgerd` from DIR (say, an older build, for a before/after).
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked -p ledger-cli -p ledger-server >&2
fi
bin="${BIN:-$PWD/target/release}"
duration="${DURATION:-10}"
clients="${CLIENTS:-1 8 32}"
if [ -z "${LEDGER_BENCH_PG:-}" ]; then
  source .ci/postgres.sh >&2
  LEDGER_BENCH_PG="$LEDGER_TEST_PG"
fi
work="$(mktemp -d /tmp/ledger-bench.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
  if declare -f stop_private_postgres >/dev/null; then stop_private_postgres; fi
}
trap cleanup EXIT

# The URL of database $1 on the same server.
database() {
  local base="${LEDGER_BENCH_PG%%\?*}" query=""
  [[ "$LEDGER_BENCH_PG" == *\?* ]] && query="?${LEDGER_BENCH_PG#*\?}"
  echo "${base%/*}/$1$query"
}
psql_admin() { psql -qtA "$LEDGER_BENCH_PG" -c "$1" >/dev/null; }

serve() { # name port [--store URL]
  local name=$1 port=$2
  shift 2
  "$bin/ledger" --db "$work/$name" "$@" init --json >/dev/null
  "$bin/ledgerd" --db "$work/$name" "$@" --listen "127.0.0.1:$port" --log-filter warn >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do "$bin/ledger" --db "$work/$name" --server "http://127.0.0.1:$port" key list >/dev/null 2>&1 && return; sleep 0.1; done
  echo "ledgerd ($name) did not start: $(cat "$work/$name.log")" >&2
  exit 2
}

row() { # store clients json
  python3 - "$@" <<'PY'
import json, sys
store, clients, r = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
print(f"{store:<12} {clients:>3} clients {r['appends_per_sec']:>9.0f}/s  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}")
PY
}

stamp="$(date +%s)"
psql_admin "CREATE DATABASE ledger_bench_$stamp"
psql_admin "CREATE DATABASE audit_bench_$stamp"
serve fjall 7711
serve postgres 7712 --store "$(database "ledger_bench_$stamp")"
for n in $clients; do
  for store in fjall postgres; do
    port=7711
    [ "$store" = postgres ] && port=7712
    row "$store" "$n" "$("$bin/ledger" --db "$work/$store" --server "http://127.0.0.1:$port" bench append ${STREAM:+--stream} --clients "$n" --duration "$duration" --json)"
  done
  row audit-table "$n" "$("$bin/ledger" --db "$work/fjall" bench audit-table --database "$(database "audit_bench_$stamp")" --clients "$n" --duration "$duration" --json)"
done
