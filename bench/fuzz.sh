#!/usr/bin/env bash
# The property and fuzz tests at scale (release build): the JSON line parser, the tokenizer
# wrapper and the input builder in the library, and the JSON-lines loop of `pairrm encode`,
# `compare` and `rank` through the real binary. Every case must pass: no panic, the bounded
# tokenization equal to the full one, the input equal to the reference construction, one valid
# JSON line out per line in.
#
#     bench/fuzz.sh [SCALE]      # SCALE multiplies the normal test run's case counts (default 400)
#
# Prints each target's figures (`fuzz: NAME: N cases, T s, ...`) and the total; the log is kept in
# target/fuzz.log. Exit status non-zero if any case failed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PAIRRM_FUZZ_SCALE="${1:-${PAIRRM_FUZZ_SCALE:-400}}"
log=target/fuzz.log
mkdir -p target
: > "$log"
echo "scale $PAIRRM_FUZZ_SCALE; $(lscpu | grep -m1 'Model name' | sed 's/  */ /g'), $(nproc) cores" | tee -a "$log"
start=$(date +%s)
status=0
cargo test --release -q -p pairrm --test properties -- --nocapture --test-threads=1 2>&1 | tee -a "$log" | grep -oE 'fuzz: .*|FAILED.*|panicked.*' || status=1
cargo test --release -q -p pairrm-cli --test fuzz_lines -- --nocapture --test-threads=1 2>&1 | tee -a "$log" | grep -oE 'fuzz: .*|FAILED.*|panicked.*' || status=1
grep -q -E 'FAILED|panicked' "$log" && status=1
total=$(grep -oE 'fuzz: .*: [0-9]+ cases' "$log" | grep -oE '[0-9]+ cases' | awk '{s += $1} END {print s}')
echo "total: $total cases in $(( $(date +%s) - start )) s; $(grep -c '0 failures' "$log") targets without a failure; status $status" | tee -a "$log"
exit "$status"
