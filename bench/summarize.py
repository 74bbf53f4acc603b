#!/usr/bin/env python3
"""Prints the Markdown results tables of docs/performance.md and the README from the JSON reports under
bench/results/: `side_by_side_*.json` (written by `bench/side_by_side.py --out`) and `bench_*.json`
(written by `pairrm bench --json`). Every table names the CPU it was measured on. Standard library only.

    python3 bench/summarize.py [RESULTS_DIR]          # every table of docs/performance.md
    python3 bench/summarize.py --readme [REPORT]      # the README's tier table, from one side-by-side
                                                      # report (default: the newest one with peers)
"""
import argparse
import json
import sys
from pathlib import Path

ORDER = {"uniform": 0, "mixed": 1, "rank4": 2, "best16": 3}
TIER_ORDER = ["f32", "bf16", "int8"]
PEER_NAMES = {"reference": "reference f32", "reference-bf16": "reference bf16", "ort-f32": "ORT f32",
              "ort-int8": "ORT int8"}
TARGETS = ["pairrm bf16 / reference bf16", "pairrm int8 / ORT int8", "pairrm f32 / reference bf16",
           "pairrm f32 / reference f32"]


def percent(x, of):
    """``x`` as a percentage of ``of``; a dash when ``of`` was not measured (older reports)."""
    return "–" if of is None else f"{100 * x / of:.0f}%"


def name_of(path):
    return path.stem.removeprefix("side_by_side_").removeprefix("bench_")


def cpu_of(report):
    """The CPU line of a report: lscpu's name and flags (schema 2), else the name pairrm bench recorded."""
    m = report.get("machine")
    if m:
        return m["cpu"]["summary"]
    cpu = report.get("cpu") or report.get("pairrm", {}).get("cpu", "unknown")
    return f"{cpu} (SIMD flags not recorded by this older report)"


def print_cpus(reports):
    """One line under a table naming the CPU of every report in it."""
    by_cpu = {}
    for path, report in reports:
        by_cpu.setdefault(cpu_of(report), []).append(name_of(path))
    for cpu, names in by_cpu.items():
        which = "" if len(by_cpu) == 1 else f" ({', '.join(names)})"
        print(f"\nCPU{which}: {cpu}.")


def load_line(report):
    m = report.get("machine")
    if not m or not m.get("load_before"):
        return "–"
    after = m.get("load_after_timing") or m.get("load_after")
    return f"{m['load_before'][0]:.1f} / {after[0]:.1f}" if after else f"{m['load_before'][0]:.1f}"


def side_by_side(reports):
    if not any("rows" in r for _, r in reports):
        print("(no side-by-side report with the f32 reference)")
        return
    print("| workload | report | pairrm passes/s | reference, best batch size | × | reference, default batch size | × | pairrm GFLOP/s (nominal) | of GEMM peak | of sustained GEMM |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for path, report in reports:
        if "rows" not in report:
            continue
        runs = report.get("pairrm_runs", [report["pairrm"]])
        peak = sum(run["gemm_peak_gflops"] for run in runs) / len(runs)
        sustained = [run.get("gemm_sustained_gflops") for run in runs]
        sustained = sum(sustained) / len(sustained) if None not in sustained else None
        defaults = {w: v["default_batch_size"] for w, v in report["reference"]["workloads"].items()}
        for row in report["rows"]:
            rows.append((row["workload"], name_of(path), row, defaults[row["workload"]], peak, sustained))
    for workload, name, row, default, peak, sustained in sorted(rows, key=lambda r: (ORDER.get(r[0], 9), r[1])):
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
    print_cpus([(p, r) for p, r in reports if "rows" in r])


def ordered_tiers(reports):
    """The tiers the targets name (a column of "pending" until pairrm has them), then any others run."""
    names = {t for _, r in reports for t in r["tiers"]}
    return TIER_ORDER + sorted(names - set(TIER_ORDER))


def ordered_peers(reports):
    names = {p for _, r in reports for p in r["peers"]}
    return [p for p in PEER_NAMES if p in names] + sorted(names - set(PEER_NAMES))


def best_batch(peer_report, workload):
    sizes = peer_report["workloads"].get(workload, {}).get("batch_sizes")
    if not sizes:
        return None
    bs, r = max(sizes.items(), key=lambda kv: kv[1]["passes_per_second"])
    return int(bs), r["passes_per_second"]


def tier_cell(report, tier, workload):
    t = report["tiers"].get(tier)
    if t is None:
        return "pending"
    w = next((w for w in t["report"]["workloads"] if w["workload"] == workload), None)
    return "–" if w is None else f"{w['passes_per_second']:.3f}"


def peer_cell(report, peer, workload):
    p = report["peers"].get(peer)
    best = best_batch(p, workload) if p else None
    return "–" if best is None else f"{best[1]:.3f} ({best[0]})"


def peers_table(reports):
    """passes/s of every pairrm tier and every peer (at its best batch size), per report and workload."""
    tiers, peers = ordered_tiers(reports), ordered_peers(reports)
    print("| workload | report | " + " | ".join(f"pairrm {t}" for t in tiers) + " | "
          + " | ".join(PEER_NAMES.get(p, p) + " (batch)" for p in peers) + " | load 1-min before / after |")
    print("|---|---|" + "---:|" * (len(tiers) + len(peers)) + "---:|")
    rows = [(w, p, r) for p, r in reports for w in r["workloads"]]
    for w, path, r in sorted(rows, key=lambda x: (ORDER.get(x[0], 9), x[1].stem)):
        print(f"| {w} | {name_of(path)} | " + " | ".join(tier_cell(r, t, w) for t in tiers) + " | "
              + " | ".join(peer_cell(r, p, w) for p in peers) + f" | {load_line(r)} |")
    print_cpus(reports)


def targets_table(reports):
    print("| workload | report | " + " | ".join(TARGETS) + " |")
    print("|---|---|" + "---:|" * len(TARGETS))
    rows = [(w, p, r) for p, r in reports for w in r["workloads"]]
    for w, path, r in sorted(rows, key=lambda x: (ORDER.get(x[0], 9), x[1].stem)):
        cells = []
        for label in TARGETS:
            t = next((t for t in r["targets"] if t["target"] == label and t["workload"] == w), None)
            if t is None or t["ratio"] is None:
                cells.append("pending" if t is None or t["status"].startswith("pending") else "–")
            else:
                cells.append(f"{t['ratio']:.2f}×")
        print(f"| {w} | {name_of(path)} | " + " | ".join(cells) + " |")
    print_cpus(reports)


def memory_table(reports):
    print("| report | pairrm tier or peer | peak RSS / f32 weights | RSS after the runs / f32 weights |")
    print("|---|---|---:|---:|")
    for path, r in reports:
        f32 = r["f32_weight_bytes"]
        for name, t in r["tiers"].items():
            print(f"| {name_of(path)} | pairrm {name} | {t['report']['peak_rss_bytes'] / f32:.2f} | – |")
        for p, rep in r["peers"].items():
            peak, rss = rep.get("peak_rss_bytes"), rep.get("rss_bytes")
            if peak and rss:
                print(f"| {name_of(path)} | {PEER_NAMES.get(p, p)} | {peak / f32:.2f} (loading torch included) "
                      f"| {rss / f32:.2f} |")
    print_cpus(reports)


def agreement_table(reports):
    print("| report | pairrm tier or peer | pairs | max abs error | median | p90 | same sign | reference median abs logit |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for path, r in reports:
        rows = [(f"pairrm {n}", t.get("agreement")) for n, t in r["tiers"].items()]
        rows += [(PEER_NAMES.get(p, p), rep.get("agreement")) for p, rep in r["peers"].items()]
        for label, a in rows:
            if a:
                print(f"| {name_of(path)} | {label} | {a['pairs']} | {a['max_abs_error']:.2e} | "
                      f"{a['median_abs_error']:.2e} | {a['p90_abs_error']:.2e} | {100 * a['same_sign']:.0f}% | "
                      f"{a['reference_median_abs_logit']:.2e} |")
            else:
                print(f"| {name_of(path)} | {label} | – | not measured | | | | |")
    print_cpus(reports)


def bench(reports):
    if not reports:
        print("(no `bench_*.json` reports)")
        return
    print("| report | weights / precision | workload | passes/s | tokens/s | GFLOP/pass (nominal) | GFLOP/s nominal / executed | of GEMM peak (nominal) | of sustained GEMM | GEMM peak / sustained | peak RSS / f32 weights | load s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path, r in reports:
        # Reports before the precision tiers have no `precision`: their weights were f32 or f16.
        precision = r.get("precision", "f32")
        dtype = precision if precision != "f32" else "f16" if r["weight_bytes"] < r["f32_weight_bytes"] else "f32"
        sustained = r.get("gemm_sustained_gflops")
        for w in r["workloads"]:
            print(
                f"| {path.stem} | {dtype} | {w['workload']} | {w['passes_per_second']:.3f} | {w['tokens_per_second']:.0f} "
                f"| {w['nominal_gflop'] / w['passes']:.0f} | {w['nominal_gflops']:.0f} / {w['executed_gflops']:.0f} "
                f"| {100 * w['nominal_gflops'] / r['gemm_peak_gflops']:.0f}% | {percent(w['nominal_gflops'], sustained)} "
                f"| {r['gemm_peak_gflops']:.0f} / {'–' if sustained is None else f'{sustained:.0f}'} "
                f"| {r['peak_rss_bytes'] / r['f32_weight_bytes']:.2f} | {r['load_seconds']:.2f} |"
            )
    print_cpus([(p, {"cpu": r.get("cpu", "unknown")}) for p, r in reports])


def readme_table(path, report):
    """The README's tables: every pairrm tier and peer as a speed relative to pairrm f32 (peers at their
    best batch size), pairrm's memory, then the target ratios."""
    tiers, peers = ordered_tiers([(path, report)]), ordered_peers([(path, report)])
    workloads = sorted(report["workloads"], key=lambda w: ORDER.get(w, 9))
    f32 = report["tiers"].get("f32")
    base = {w["workload"]: w["passes_per_second"] for w in f32["report"]["workloads"]} if f32 else {}
    print("| engine (2 threads) | " + " | ".join(f"{w}: speed vs pairrm f32" for w in workloads)
          + " | peak RSS / f32 weights |")
    print("|---|" + "---:|" * (len(workloads) + 1))

    def speed(ps, w):
        return f"{ps / base[w]:.2f}×" if w in base else f"{ps:.3f} passes/s"

    for t in tiers:
        tier = report["tiers"].get(t)
        if tier is None:
            print(f"| pairrm {t} | " + " | ".join("pending" for _ in workloads) + " | pending |")
            continue
        cells = {w["workload"]: w["passes_per_second"] for w in tier["report"]["workloads"]}
        rss = tier["report"]["peak_rss_bytes"] / report["f32_weight_bytes"]
        print(f"| pairrm {t} | " + " | ".join(speed(cells[w], w) if w in cells else "–" for w in workloads)
              + f" | {rss:.2f} |")
    for p in peers:
        cells = []
        for w in workloads:
            best = best_batch(report["peers"][p], w)
            cells.append("–" if best is None else f"{speed(best[1], w)} (batch {best[0]})")
        print(f"| {PEER_NAMES.get(p, p)} | " + " | ".join(cells) + " | – |")
    rates = "; pairrm f32: " + ", ".join(f"{w} {base[w]:.3f} passes/s" for w in workloads) if base else ""
    print(f"\nCPU: {cpu_of(report)}{rates}.\n")
    print("| target ratio (peer at its best batch size) | " + " | ".join(workloads) + " |")
    print("|---|" + "---:|" * len(workloads))
    for label in TARGETS:
        cells = []
        for w in workloads:
            t = next((t for t in report["targets"] if t["target"] == label and t["workload"] == w), None)
            cells.append("pending" if t is None or t["ratio"] is None else f"{t['ratio']:.2f}×")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"\n`{path.name}`; CPU: {cpu_of(report)}; load average (1 min) {load_line(report)} before / after.")


def read(paths):
    return [(p, json.loads(p.read_text())) for p in paths]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", nargs="?", type=Path, help="results directory (or, with --readme, one report)")
    p.add_argument("--readme", action="store_true", help="print the README's tier table from one report")
    args = p.parse_args()
    default_dir = Path(__file__).parent / "results"
    if args.readme:
        if args.path and args.path.is_file():
            path = args.path
        else:
            candidates = [(q, r) for q, r in read(sorted((args.path or default_dir).glob("side_by_side_*.json")))
                          if r.get("schema", 1) >= 2 and r["peers"]]
            if not candidates:
                sys.exit("no side-by-side report with peers (schema 2): run bench/side_by_side.py --out FILE")
            path = max(candidates, key=lambda c: c[0].stat().st_mtime)[0]
        readme_table(path, json.loads(path.read_text()))
        return
    results = args.path or default_dir
    side = read(sorted(results.glob("side_by_side_*.json")))
    print("Side by side with the f32 reference (`bench/side_by_side.py`):\n")
    side_by_side(side)
    tiered = [(q, r) for q, r in side if r.get("schema", 1) >= 2]
    if tiered:
        print("\npairrm tiers and peers, passes/s (peers at their best batch size, in brackets):\n")
        peers_table(tiered)
        print("\nTarget ratios (pairrm tier / peer at its best batch size; pending: pairrm has no such tier yet):\n")
        targets_table(tiered)
        print("\nMemory:\n")
        memory_table(tiered)
        print("\nLogit error against the f32 reference (compare workloads, batch size 1):\n")
        agreement_table(tiered)
    print("\npairrm alone (`pairrm bench --json`):\n")
    bench(read(sorted(results.glob("bench_*.json"))))


if __name__ == "__main__":
    main()
