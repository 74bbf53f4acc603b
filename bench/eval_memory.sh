#!/usr/bin/env bash
# Peak memory and time of `pairrm eval` and `pairrm winrate` on generated files of 10k and 100k
# rows (about 1 KB of text each) with the tiny test model. The files are streamed, so peak memory
# should grow with the per-row outcomes (tens of bytes a row), not with the rows' text.
#
#   bench/eval_memory.sh            # prints one line per run: command, rows, file size, peak RSS, time
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p pairrm-cli
BIN=target/release/pairrm
MODEL=tests/fixtures/models/tiny-original
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

python3 - "$TMP" <<'PY'
import json, random, sys
out = sys.argv[1]
rng = random.Random(0)
words = "the a model answer question because therefore however summary code write plan good bad".split()
def text(n):
    return " ".join(rng.choice(words) for _ in range(n))
scenarios = ["planning", "chitchat", "code_generation", "post_summarization", "ranking"]
for n in (10_000, 100_000):
    with open(f"{out}/autoj_{n}.jsonl", "w") as f:
        for i in range(n):
            row = {"scenario": scenarios[i % 5], "label": i % 3, "prompt": f"{i} " + text(40),
                   "response 1": text(70), "response 2": text(70)}
            f.write(json.dumps(row) + "\n")
    instructions = [f"instruction {i}: " + text(40) for i in range(n)]
    for name, k in (("model", 1), ("base", 2)):
        with open(f"{out}/{name}_{n}.jsonl", "w") as f:
            for i in range(n):
                row = {"instruction": instructions[i], "output": text(60 * k), "dataset": scenarios[i % 5]}
                f.write(json.dumps(row) + "\n")
PY

measure() { # label rows input-files... -- pairrm arguments...
    local label=$1 rows=$2 size=0
    shift 2
    while [ "$1" != "--" ]; do
        size=$((size + $(du -m "$1" | cut -f1)))
        shift
    done
    shift
    /usr/bin/time -f "%M %e" -o "$TMP/time" "$BIN" "$@" --model "$MODEL" --no-progress --json >/dev/null
    read -r kb secs < <(tail -n 1 "$TMP/time")
    printf '%-8s %7d rows  %4d MB input  peak RSS %6.1f MB  %6.1f s\n' "$label" "$rows" "$size" "$(echo "$kb / 1024" | bc -l)" "$secs"
}

for n in 10000 100000; do
    measure eval "$n" "$TMP/autoj_$n.jsonl" -- eval --format autoj --data "$TMP/autoj_$n.jsonl" --bootstrap 200
    measure winrate "$n" "$TMP/model_$n.jsonl" "$TMP/base_$n.jsonl" -- \
        winrate --outputs "$TMP/model_$n.jsonl" --baseline "$TMP/base_$n.jsonl" --bootstrap 200
done
