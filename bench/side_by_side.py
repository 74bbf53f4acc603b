#!/usr/bin/env python3
"""Benchmark pairrm and the reference side by side, in one run, on the same workloads and model.

    python bench/side_by_side.py --model CKPT_DIR [--passes 12] [--workloads uniform,mixed,rank4,best16]
                                 [--batch-sizes 1,2,4,8,default] [--pairrm target/release/pairrm] [--out FILE]

Run it with the reference venv's python (it imports llm_blender through bench/reference.py). It writes the
workload with `pairrm bench --write-workload`, runs `pairrm bench --json` on it before and after the
reference at each batch size (machines drift: pairrm's figure is the mean of the two runs), and prints
passes/s for both and the ratios: against the reference's best batch size and against its default batch
size. Make a deberta-v3-large-shaped random model with bench/make_model.py.
"""

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--passes", type=int, default=12)
    p.add_argument("--workloads", default="uniform,mixed,rank4,best16")
    p.add_argument("--batch-sizes", default="1,2,4,8,default")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--pairrm", default=str(HERE.parent / "target" / "release" / "pairrm"))
    p.add_argument("--out", type=Path, help="also write the combined report as JSON here")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workload = Path(tmp) / "workload.jsonl"
        common = ["--model", str(args.model), "--workload", args.workloads, "--passes", str(args.passes),
                  "--threads", str(args.threads)]
        subprocess.run([args.pairrm, "bench", *common, "--write-workload", str(workload)], check=True)
        def run_ours():
            return json.loads(subprocess.run([args.pairrm, "bench", *common, "--json"], check=True,
                                             stdout=subprocess.PIPE).stdout)
        before = run_ours()
        ref = json.loads(subprocess.run([sys.executable, str(HERE / "reference.py"), "--model", str(args.model),
                                         "--workload", str(workload), "--threads", str(args.threads),
                                         "--batch-sizes", args.batch_sizes, "--json"],
                                        check=True, stdout=subprocess.PIPE).stdout)
        after = run_ours()
    ours = copy.deepcopy(before)
    for w, w_after in zip(ours["workloads"], after["workloads"]):
        w["runs_passes_per_second"] = [w["passes_per_second"], w_after["passes_per_second"]]
        for key in ["passes_per_second", "nominal_gflops", "executed_gflops"]:
            w[key] = (w[key] + w_after[key]) / 2
    for key in ["gemm_peak_gflops", "gemm_sustained_gflops"]:
        ours[key] = (before[key] + after[key]) / 2
    ours["peak_rss_bytes"] = max(before["peak_rss_bytes"], after["peak_rss_bytes"])

    peak, sustained = ours["gemm_peak_gflops"], ours["gemm_sustained_gflops"]
    print(f"model {args.model} · {ours['threads']} threads · {ours['cpu']}")
    for w in ours["workloads"]:
        runs = ", ".join(f"{x:.3f}" for x in w["runs_passes_per_second"])
        print(f"pairrm {w['workload']}: {runs} passes/s (before and after the reference)")
    print(f"pairrm: load {ours['load_seconds']:.2f} s, peak RSS {ours['peak_rss_bytes'] / 1e9:.2f} GB "
          f"({ours['peak_rss_bytes'] / ours['f32_weight_bytes']:.2f}× f32 weights), "
          f"GEMM peak {peak:.1f} GFLOP/s, sustained {sustained:.1f} GFLOP/s")
    print(f"reference: load {ref['load_seconds']:.2f} s")
    print(f"{'workload':<8} {'pairrm p/s':>11} {'ref best p/s':>13} {'(batch)':>8} {'ref default':>12} "
          f"{'× best':>7} {'× default':>10} {'GFLOP/s':>8} {'of peak':>8} {'of sust.':>9}")
    rows = []
    for w in ours["workloads"]:
        name = w["workload"]
        r = ref["workloads"][name]
        sizes = r["batch_sizes"]
        best_bs, best = max(sizes.items(), key=lambda kv: kv[1]["passes_per_second"])
        default = sizes.get(str(r["default_batch_size"]))
        ours_ps = w["passes_per_second"]
        row = {
            "workload": name, "pairrm_passes_per_second": ours_ps,
            "reference_best_batch_size": int(best_bs), "reference_best_passes_per_second": best["passes_per_second"],
            "reference_default_passes_per_second": default["passes_per_second"] if default else None,
            "ratio_vs_best": ours_ps / best["passes_per_second"],
            "ratio_vs_default": ours_ps / default["passes_per_second"] if default else None,
            "nominal_gflops": w["nominal_gflops"], "executed_gflops": w["executed_gflops"],
        }
        rows.append(row)
        print(f"{name:<8} {ours_ps:>11.3f} {best['passes_per_second']:>13.3f} {best_bs:>8} "
              f"{(default or {}).get('passes_per_second', float('nan')):>12.3f} {row['ratio_vs_best']:>7.2f} "
              f"{(row['ratio_vs_default'] or float('nan')):>10.2f} {w['nominal_gflops']:>8.1f} "
              f"{100 * w['nominal_gflops'] / peak:>7.0f}% {100 * w['nominal_gflops'] / sustained:>8.0f}%")
    if args.out:
        args.out.write_text(json.dumps({"pairrm": ours, "pairrm_runs": [before, after], "reference": ref,
                                        "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
