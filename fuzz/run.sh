#!/usr/bin/env bash
# Runs the fuzz targets with cargo-fuzz (libFuzzer) on the pinned stable toolchain, without a
# sanitizer (`-s none`: the code under test is safe Rust; what is sought is a panic, an abort,
# a hang or runaway memory). Seeds come from the golden vectors and ../shared/realdata.
#
#   fuzz/run.sh SECONDS [TARGET...]     default: every target, one after the other
#
# Corpora grow in ${LEDGER_FUZZ_WORK:-/tmp/ledger-fuzz}/corpus/TARGET; a crash is written to
# fuzz/artifacts/TARGET/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(record entry note tlog_proof bundle webhook attestation policy)
fi
work="${LEDGER_FUZZ_WORK:-/tmp/ledger-fuzz}"
python3 seeds.py "$work/seeds" "${LEDGER_REALDATA:-../../shared/realdata}"
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t" "$work/seeds/$t"
  echo "fuzz $t: ${secs} s"
  cargo fuzz run --sanitizer none --release "$t" "$work/corpus/$t" "$work/seeds/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 -print_final_stats=1 \
    2> "$work/$t.log" || { tail -n 40 "$work/$t.log"; echo "fuzz $t: FAILED (artifacts in fuzz/artifacts/$t)"; exit 1; }
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$work/$t.log" | tr '\n' ' '
  echo "fuzz $t: 0 crashes"
done
