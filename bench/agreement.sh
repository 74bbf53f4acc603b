#!/usr/bin/env bash
# How far the reduced-precision tiers move from exact f32 on a model: `pairrm eval --precision P
# --against f32` for P in bf16 and int8, on the benchmark's own pairs (uniform and mixed lengths,
# PASSES of each), per-layer hidden-state errors on the first 8 pairs.
#
#     bench/agreement.sh MODEL_DIR [PASSES] [OUT_DIR]     # defaults: 16 passes, target/agreement
#
# Writes OUT_DIR/pairs.jsonl (the pairs, with alternating placeholder labels: the decision and
# logit agreement do not read them) and OUT_DIR/agreement_P.json (the full reports), and prints one
# summary line per tier. With a random-weight model (bench/make_model.py) the logits sit near zero,
# so the decision agreement means nothing there; the logit error and the per-layer errors do.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: bench/agreement.sh MODEL_DIR [PASSES] [OUT_DIR]}
passes=${2:-16}
out=${3:-target/agreement}
pairrm=${PAIRRM:-target/release/pairrm}
mkdir -p "$out"
"$pairrm" bench --model "$model" --workload uniform --workload mixed --passes "$passes" \
    --write-workload "$out/workload.jsonl"
python3 - "$out/workload.jsonl" "$out/pairs.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as dst:
    for i, line in enumerate(src):
        item = json.loads(line)
        row = {"id": str(i), "source": item["source"], "a": item["a"], "b": item["b"],
               "label": "ab"[i % 2], "subset": item["workload"]}
        dst.write(json.dumps(row) + "\n")
EOF
echo "$(lscpu | grep -m1 'Model name' | sed 's/  */ /g'); model $model; $(wc -l < "$out/pairs.jsonl") pairs"
for precision in bf16 int8; do
    "$pairrm" eval --model "$model" --data "$out/pairs.jsonl" --format jsonl --precision "$precision" \
        --against f32 --layer-pairs 8 --json --no-progress > "$out/agreement_$precision.json"
    python3 - "$out/agreement_$precision.json" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1]))["agreement"]
e = a["logit_error"]
layers = " ".join(f"{l['relative_error']['max']:.3f}" for l in a["layers"])
print(f"{a['precision']} vs {a['against']}: {a['rows']} pairs, logit error median {e['median']:.2e} "
      f"p90 {e['p90']:.2e} max {e['max']:.2e}; marker-row relative error (max) by layer: {layers}")
EOF
done
