#!/usr/bin/env bash
# The scale benchmark (docs/BENCHMARKS.md): a `bench history` ledger of CHANGES changes (about
# 7.2 entries each; 1,385,000 ≈ 10M entries), then, on it:
#   bytes on disk per entry; open time (`ledger key list`, three runs); full `ledger verify`
#   (wall time, peak RSS); `why` and inclusion-proof latency through `ledgerd` (`ledger bench
#   query`, one request at a time) and `ledgerd`'s resident memory while serving; a signed
#   checkpoint, NEW_CHANGES more changes, and `ledger verify --from-checkpoint` over them.
#   DIR=/tmp/scale10m CHANGES=1385000 ./scripts/bench-scale.sh
# REUSE=1 keeps a ledger an earlier run built in DIR (its history and the appended changes).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p ledger-cli -p ledger-server >&2
bin=$PWD/target/release
dir="${DIR:-/tmp/ledger-scale}"
changes="${CHANGES:-1385000}"
new_changes="${NEW_CHANGES:-10000}"
requests="${REQUESTS:-2000}"
port="${PORT:-7730}"
timed() { /usr/bin/time -f '%e s, peak RSS %M KB' "$@"; }
entries() { "$bin/ledger" --db "$dir" checkpoint --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tree_size"])'; }

if [ -z "${REUSE:-}" ]; then
  rm -rf "$dir"
  "$bin/ledger" --db "$dir" init --json >/dev/null
  echo "== building: bench history --changes $changes" >&2
  timed "$bin/ledger" --db "$dir" bench history --changes "$changes" --json
fi
size=$(entries)
bytes=$(du -sb "$dir" | cut -f1)
echo "== $size entries, $bytes bytes on disk: $((bytes / size)) bytes per entry"

echo "== open (ledger key list), three runs"
for _ in 1 2 3; do timed "$bin/ledger" --db "$dir" key list >/dev/null; done

echo "== full verify"
timed "$bin/ledger" --db "$dir" verify --json

echo "== through ledgerd: why and inclusion proofs, $requests each"
"$bin/ledgerd" --db "$dir" --listen "127.0.0.1:$port" --log-filter warn >"$dir.ledgerd.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
started=$(date +%s.%N)
until "$bin/ledger" --db "$dir" --server "http://127.0.0.1:$port" key list >/dev/null 2>&1; do
  kill -0 $pid 2>/dev/null || { cat "$dir.ledgerd.log" >&2; exit 2; }
  sleep 0.05
done
echo "ledgerd answering after $(python3 -c "print(round($(date +%s.%N) - $started, 2))") s"
"$bin/ledger" --db "$dir" --server "http://127.0.0.1:$port" bench query --changes "$changes" --requests "$requests" --json
grep -E 'VmRSS|VmHWM' "/proc/$pid/status"
kill -TERM $pid
wait $pid || true
trap - EXIT

echo "== incremental: checkpoint, $new_changes more changes, verify --from-checkpoint"
"$bin/ledger" --db "$dir" checkpoint >"$dir.checkpoint"
# Numbered after every change already written (this run's own), so a re-run appends new ones.
"$bin/ledger" --db "$dir" bench history --first "$((changes + size))" --changes "$new_changes" --until 2026-12-01 --days 30 --json
timed "$bin/ledger" --db "$dir" verify --from-checkpoint "$dir.checkpoint" --json
