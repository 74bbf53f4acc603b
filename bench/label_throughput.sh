#!/usr/bin/env bash
# `pairrm label` against `pairrm rank` on the same forward passes, best-worst vs full agreement,
# and peak memory for two dataset sizes. Usage:
#   bench/label_throughput.sh [MODEL] [ROWS] [BIN]
# MODEL defaults to the tiny fixture (use bench/make_medium_model.py's output for realistic
# passes), ROWS to 2000, BIN to target/release/pairrm (else target/debug/pairrm). Prints ratios;
# compare only figures from one run (this VM drifts).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-tests/fixtures/models/tiny-original}
ROWS=${2:-2000}
BIN=${3:-target/release/pairrm}
[ -x "$BIN" ] || BIN=target/debug/pairrm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gen() { # gen N FILE [CANDIDATES]: N rows of 5 (or CANDIDATES) candidates, deterministic
  python3 - "$1" "$2" "${3:-5}" <<'PY'
import json, random, sys
n, path, k = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = random.Random(7)
words = "the a model answer question python code list sort error clear short long because first then".split()
say = lambda k: " ".join(rng.choice(words) for _ in range(k))
with open(path, "w") as f:
    for i in range(n):
        prompt = say(rng.randint(4, 20))  # `rank` reads `source`, `label` reads `prompt`
        f.write(json.dumps({"id": i, "source": prompt, "prompt": prompt,
                            "candidates": [say(rng.randint(3, 40)) for _ in range(k)]}) + "\n")
PY
}

peak() { /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1; }

gen "$ROWS" "$work/rows.jsonl"
echo "CPU: $(lscpu | grep 'Model name' | sed 's/Model name:\s*//')"
echo "model: $MODEL, rows: $ROWS (5 candidates: 20 passes a row with full)"

t0=$(date +%s.%N)
"$BIN" rank -m "$MODEL" --no-progress -i "$work/rows.jsonl" -o "$work/rank.jsonl"
t1=$(date +%s.%N)
"$BIN" label -m "$MODEL" --no-progress -i "$work/rows.jsonl" -o "$work/full.parquet" --strategy full --min-margin -1e30 2>/dev/null
t2=$(date +%s.%N)
python3 -c "r=($t1-$t0); l=($t2-$t1); print(f'rank full: {r:.2f} s, label full: {l:.2f} s, label/rank time ratio: {l/r:.3f}')"

"$BIN" label -m "$MODEL" --no-progress -i "$work/rows.jsonl" -o "$work/full.jsonl" --strategy full --min-margin -1e30 2>/dev/null
"$BIN" label -m "$MODEL" --no-progress -i "$work/rows.jsonl" -o "$work/bw.jsonl" --strategy best-worst --min-margin -1e30 2>"$work/bw.log"
python3 - "$work/full.jsonl" "$work/bw.jsonl" <<'PY'
import json, sys
load = lambda p: {r["row"]: (r["chosen_index"], r["rejected_index"]) for r in map(json.loads, open(p))}
full, bw = load(sys.argv[1]), load(sys.argv[2])
rows = sorted(full)
same = sum(full[r] == bw.get(r) for r in rows)
best = sum(full[r][0] == bw.get(r, (None,))[0] for r in rows)
worst = sum(full[r][1] == bw.get(r, (None, None))[1] for r in rows)
print(f"best-worst vs full over {len(rows)} rows: pair {same/len(rows):.3f}, best {best/len(rows):.3f}, worst {worst/len(rows):.3f}")
PY
tail -1 "$work/bw.log"

# Memory: the same job on MEM_ROWS and 10×MEM_ROWS rows (default 10k and 100k). With model work
# (2 candidates a row: one comparison) and without (1 candidate a row: read, skip, write), which
# shows the streaming alone at sizes the tiny model would take long to score.
MEM_ROWS=${MEM_ROWS:-10000}
for k in 2 1; do
  gen "$MEM_ROWS" "$work/small.jsonl" $k
  gen $((MEM_ROWS * 10)) "$work/large.jsonl" $k
  small=$(peak "$BIN" label -m "$MODEL" --no-progress -i "$work/small.jsonl" -o "$work/s.parquet")
  large=$(peak "$BIN" label -m "$MODEL" --no-progress -i "$work/large.jsonl" -o "$work/l.parquet")
  echo "peak RSS, $k candidate(s) a row: $MEM_ROWS rows ${small} KiB, $((MEM_ROWS * 10)) rows ${large} KiB ($(du -h "$work/large.jsonl" | cut -f1) input)"
done
