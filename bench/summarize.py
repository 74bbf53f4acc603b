#!/usr/bin/env python3
"""Prints the Markdown results tables of docs/performance.md from the JSON reports under
bench/results/: `side_by_side_*.json` (written by `bench/side_by_side.py --out`) and
`bench_*.json` (written by `pairrm bench --json`). Standard library only.

    python3 bench/summarize.py [bench/results]
"""
import json
import sys
from pathlib import Path


def percent(x, of):
    """``x`` as a percentage of ``of``; a dash when ``of`` was not measured (older reports)."""
    return "–" if of is None else f"{100 * x / of:.0f}%"


def side_by_side(reports):
    print("| workload | report | pairrm passes/s | reference, best batch size | × | reference, default batch size | × | pairrm GFLOP/s (nominal) | of GEMM peak | of sustained GEMM |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for path in reports:
        report = json.loads(path.read_text())
        runs = report.get("pairrm_runs", [report["pairrm"]])
        peak = sum(run["gemm_peak_gflops"] for run in runs) / len(runs)
        sustained = [run.get("gemm_sustained_gflops") for run in runs]
        sustained = sum(sustained) / len(sustained) if None not in sustained else None
        defaults = {w: v["default_batch_size"] for w, v in report["reference"]["workloads"].items()}
        for row in report["rows"]:
            rows.append((row["workload"], path.stem.removeprefix("side_by_side_"), row, defaults[row["workload"]], peak, sustained))
    order = {"uniform": 0, "mixed": 1, "rank4": 2, "best16": 3}
    for workload, name, row, default, peak, sustained in sorted(rows, key=lambda r: (order.get(r[0], 9), r[1])):
        best = f"{row['reference_best_passes_per_second']:.3f} ({row['reference_best_batch_size']})"
        if row["ratio_vs_default"] is None:
            dflt, dratio = f"not run ({default})", "–"
        else:
            dflt, dratio = f"{row['reference_default_passes_per_second']:.3f} ({default})", f"{row['ratio_vs_default']:.2f}"
        print(
            f"| {workload} | {name} | {row['pairrm_passes_per_second']:.3f} | {best} | {row['ratio_vs_best']:.2f} "
            f"| {dflt} | {dratio} | {row['nominal_gflops']:.0f} | {100 * row['nominal_gflops'] / peak:.0f}% "
            f"| {percent(row['nominal_gflops'], sustained)} |"
        )


def bench(reports):
    print("| report | dtype | workload | passes/s | tokens/s | GFLOP/pass (nominal) | GFLOP/s nominal / executed | of GEMM peak (nominal) | of sustained GEMM | GEMM peak / sustained | peak RSS / f32 weights | load s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in reports:
        r = json.loads(path.read_text())
        dtype = "f16" if r["weight_bytes"] < r["f32_weight_bytes"] else "f32"
        sustained = r.get("gemm_sustained_gflops")
        for w in r["workloads"]:
            print(
                f"| {path.stem} | {dtype} | {w['workload']} | {w['passes_per_second']:.3f} | {w['tokens_per_second']:.0f} "
                f"| {w['nominal_gflop'] / w['passes']:.0f} | {w['nominal_gflops']:.0f} / {w['executed_gflops']:.0f} "
                f"| {100 * w['nominal_gflops'] / r['gemm_peak_gflops']:.0f}% | {percent(w['nominal_gflops'], sustained)} "
                f"| {r['gemm_peak_gflops']:.0f} / {'–' if sustained is None else f'{sustained:.0f}'} "
                f"| {r['peak_rss_bytes'] / r['f32_weight_bytes']:.2f} | {r['load_seconds']:.2f} |"
            )


def main():
    results = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results")
    print("Side by side (`bench/side_by_side.py`):\n")
    side_by_side(sorted(results.glob("side_by_side_*.json")))
    print("\npairrm alone (`pairrm bench --json`):\n")
    bench(sorted(results.glob("bench_*.json")))


if __name__ == "__main__":
    main()
