#!/usr/bin/env bash
# Server load test (loopback only, bounded, stops by itself): offline vs 1/4/16 concurrent clients,
# p50/p99 latency, and an overload phase (429s, no accepted request lost). Release build.
#
#   bench/server_load.sh                 # tiny fixture model (10 s phases) + bench/models/medium if built
#   SECONDS_PER_PHASE=5 bench/server_load.sh
#
# The medium random model is made by `python bench/make_medium_model.py` (needs torch + transformers).
# Results go to stdout and bench/results/server-load-<model>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p pairrm-server --example server_load
mkdir -p bench/results
run() {
  local model="$1" seconds="$2" name
  name="$(basename "$model")"
  echo "== $model" >&2
  {
    echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%Y-%m-%d)."
    echo
    target/release/examples/server_load --model "$model" --seconds "$seconds"
  } | tee "bench/results/server-load-$name.md"
}
run tests/fixtures/models/tiny-original "${SECONDS_PER_PHASE:-10}"
if [ -f bench/models/medium/config.json ]; then
  run bench/models/medium "${SECONDS_PER_PHASE:-30}"
else
  echo "bench/models/medium not built (python bench/make_medium_model.py): skipped" >&2
fi
