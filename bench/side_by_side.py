#!/usr/bin/env python3
"""Benchmark pairrm and its peers side by side, in one run, on the same workloads and model.

    python bench/side_by_side.py --model CKPT_DIR [--onnx-dir DIR] [--out FILE]
        [--peers reference,reference-bf16,ort-f32,ort-int8] [--pairrm-tiers auto] [--pairrm-dtype D]
        [--workloads uniform,mixed,rank4,best16] [--passes 12] [--batch-sizes 1,2,4,8,default]
        [--threads 2] [--pairrm target/release/pairrm] [--no-agreement]

Run it with the reference venv's python (the peers import llm_blender, torch and onnxruntime). It writes
the workload with `pairrm bench --write-workload`, runs `pairrm bench --json` at every pairrm tier
before and after the peers (machines drift: each tier's figure is the mean of the two runs), runs each
peer in its own process at each batch size (bench/reference.py --variant), and prints passes/s, the
peers' best batch sizes, the ratios the performance targets use, memory against the f32 weight bytes
and every tier's and peer's logit error against the f32 reference (compare workloads, batch size 1).

Peers (bench/peers.py says exactly what each one runs):
  reference       llm-blender 0.0.2 on torch, float32
  reference-bf16  the same with ranker.to(torch.bfloat16)
  ort-f32         ONNX Runtime, float32, on the reference's encoder exported with torch.onnx.export
  ort-int8        ONNX Runtime on that export after quantize_dynamic (defaults)

pairrm tiers: `auto` runs every value of `pairrm bench --precision` (f32 alone while the CLI has no
such flag). A tier is NAME (run with `--precision NAME`; `f32` needs no flag) or NAME=FLAGS (run with
those flags, e.g. `bf16=--dtype bf16`). --pairrm-dtype adds `--dtype D` to every tier.

Both sides are timed from text to logit: pairrm bench times its compare/rank/best-of-n calls, the
peers the llm_blender call (tokenization, collation, padding, encoder, marker-row gather, head).
"""

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import machine  # noqa: E402

PEERS = {"reference": "f32", "reference-bf16": "bf16", "ort-f32": "ort-f32", "ort-int8": "ort-int8"}
COMPARE_WORKLOADS = ("uniform", "mixed")
# The ratios the performance targets name: (label, pairrm tier, peer).
TARGETS = [
    ("pairrm bf16 / reference bf16", "bf16", "reference-bf16"),
    ("pairrm int8 / ORT int8", "int8", "ort-int8"),
    ("pairrm f32 / reference bf16", "f32", "reference-bf16"),
    ("pairrm f32 / reference f32", "f32", "reference"),
]


def log(msg):
    print(f"[side_by_side] {msg}", file=sys.stderr, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="PairRM checkpoint directory (bench/make_model.py)")
    p.add_argument("--passes", type=int, default=12)
    p.add_argument("--workloads", default="uniform,mixed,rank4,best16")
    p.add_argument("--batch-sizes", default="1,2,4,8,default", help="the peers' batch sizes to sweep")
    p.add_argument("--threads", type=int, default=2, help="threads of every side (ONNX Runtime: intra-op; inter-op 1)")
    p.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, of {', '.join(PEERS)}; '' for none")
    p.add_argument("--pairrm-tiers", default="auto", help="'auto', or comma-separated NAME or NAME=FLAGS")
    p.add_argument("--pairrm-dtype", help="add `--dtype D` to every pairrm tier")
    p.add_argument("--onnx-dir", type=Path, help="cache of the exported ONNX encoders (default: beside --model)")
    p.add_argument("--pairrm", default=str(HERE.parent / "target" / "release" / "pairrm"))
    p.add_argument("--no-agreement", action="store_true", help="skip the logit-error runs of the pairrm tiers")
    p.add_argument("--out", type=Path, help="also write the combined report as JSON here")
    return p.parse_args()


def check_setup(args, peers):
    """Exits with what to do when the binary, the model or the venv is missing."""
    if not Path(args.pairrm).is_file():
        sys.exit(f"{args.pairrm} not found: build it with `cargo build --release -p pairrm-cli` (or pass --pairrm)")
    if not (args.model / "config.json").is_file():
        sys.exit(f"{args.model}/config.json not found: --model must be a PairRM checkpoint directory; "
                 "make a random large one with `python bench/make_model.py DIR` (then --model DIR/pairrm)")
    import importlib.util

    needs = []
    if peers:
        needs += ["torch", "transformers", "llm_blender"]
    if any(p.startswith("ort-") for p in peers):
        needs += ["onnx", "onnxruntime"]
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(f"{sys.executable} lacks {', '.join(missing)}: run this script with the reference venv's python "
                 "(docs/performance.md, 'The peers', says how to make it)")


def pairrm_options(pairrm):
    """The values `pairrm bench -h` offers for --precision and --dtype (None: no such flag)."""
    text = subprocess.run([pairrm, "bench", "-h"], check=True, capture_output=True, text=True).stdout
    found = {}
    for flag in ("precision", "dtype"):
        m = re.search(rf"^\s*--{flag}\b(.*?)(?=^\s*-|\Z)", text, re.S | re.M)
        if not m:
            found[flag] = None
            continue
        block = m.group(1)
        values = re.search(r"\[possible values: ([^\]]*)\]", block)
        if values:  # a clap value enum
            found[flag] = [v.strip() for v in values.group(1).split(",")]
        else:  # a parsed string: the help names the values as `x`
            found[flag] = list(dict.fromkeys(re.findall(r"`([a-z0-9]+)`", block)))
    return found


def tiers(args, options):
    """[(name, extra pairrm flags)] of the pairrm tiers to run."""
    precisions = options["precision"]
    specs = [t.strip() for t in args.pairrm_tiers.split(",") if t.strip()]
    if specs == ["auto"]:
        specs = precisions or ["f32"]
    out = []
    for spec in specs:
        name, eq, flags = spec.partition("=")
        if eq:
            extra = shlex.split(flags)
        elif precisions is not None:
            if name not in precisions:
                sys.exit(f"pairrm bench --precision offers {', '.join(precisions)}, not {name!r}")
            extra = ["--precision", name]
        elif name == "f32":
            extra = []
        else:
            sys.exit(f"this pairrm has no --precision flag, so tier {name!r} needs its flags: {name}=FLAGS "
                     "(e.g. bf16='--dtype bf16')")
        if args.pairrm_dtype:
            if options["dtype"] is not None and options["dtype"] and args.pairrm_dtype not in options["dtype"]:
                sys.exit(f"pairrm bench --dtype offers {', '.join(options['dtype'])}, not {args.pairrm_dtype!r}")
            extra += ["--dtype", args.pairrm_dtype]
        out.append((name, extra))
    return out


def run_pairrm_bench(args, common, extra):
    cmd = [args.pairrm, "bench", *common, *extra, "--json"]
    log(" ".join(cmd))
    return json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout)


def merge_runs(before, after):
    """One tier's report: passes/s and FLOP rates the mean of the runs before and after the peers."""
    merged = json.loads(json.dumps(before))
    for w, w_after in zip(merged["workloads"], after["workloads"]):
        w["runs_passes_per_second"] = [w["passes_per_second"], w_after["passes_per_second"]]
        for key in ["passes_per_second", "nominal_gflops", "executed_gflops"]:
            w[key] = (w[key] + w_after[key]) / 2
    for key in ["gemm_peak_gflops", "gemm_sustained_gflops"]:
        if before.get(key) is not None and after.get(key) is not None:
            merged[key] = (before[key] + after[key]) / 2
    merged["peak_rss_bytes"] = max(before["peak_rss_bytes"] or 0, after["peak_rss_bytes"] or 0) or None
    return merged


def run_peer(args, peer, workload_file):
    cmd = [sys.executable, str(HERE / "reference.py"), "--model", str(args.model), "--workload", str(workload_file),
           "--threads", str(args.threads), "--batch-sizes", args.batch_sizes, "--variant", PEERS[peer], "--json"]
    if peer.startswith("ort-"):
        cmd += ["--onnx-dir", str(args.onnx_dir)]
    log(f"peer {peer}: {' '.join(cmd)}")
    t = time.time()
    report = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout)
    report["wall_seconds"] = time.time() - t
    return report


def pairrm_logits(args, extra, workload_file):
    """pairrm's logits (mode ab) of the compare workloads' pairs, per workload."""
    rows = [json.loads(line) for line in workload_file.read_text().splitlines()]
    rows = [r for r in rows if r["workload"] in COMPARE_WORKLOADS]
    if not rows:
        return {}
    cmd = [args.pairrm, "compare", "--model", str(args.model), "--mode", "ab", "--threads", str(args.threads),
           "--no-progress", *extra]
    log(" ".join(cmd))
    pairs = "".join(json.dumps({"source": r["source"], "a": r["a"], "b": r["b"]}) + "\n" for r in rows)
    out = subprocess.run(cmd, input=pairs, check=True, stdout=subprocess.PIPE, text=True).stdout
    logits = {}
    for r, line in zip(rows, out.splitlines()):
        logits.setdefault(r["workload"], []).append(json.loads(line)["logit"])
    return logits


def agreement(logits, reference):
    """Error of ``logits`` against the f32 reference's, over every compare workload both have."""
    got, want = [], []
    for w, ref in reference.items():
        if w in logits and len(logits[w]) == len(ref):
            got += logits[w]
            want += ref
    if not want:
        return None
    err = sorted(abs(a - b) for a, b in zip(got, want))
    return {
        "pairs": len(err), "max_abs_error": err[-1], "median_abs_error": statistics.median(err),
        "p90_abs_error": err[min(len(err) - 1, int(0.9 * len(err)))],
        "max_rel_error": max(abs(a - b) / max(1.0, abs(b)) for a, b in zip(got, want)),
        "same_sign": sum((a > 0) == (b > 0) for a, b in zip(got, want)) / len(err),
        "reference_median_abs_logit": statistics.median(abs(b) for b in want),
    }


def best_batch(peer_report, workload):
    sizes = peer_report["workloads"][workload]["batch_sizes"]
    bs, r = max(sizes.items(), key=lambda kv: kv[1]["passes_per_second"])
    return int(bs), r["passes_per_second"]


def main():
    args = parse_args()
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        sys.exit(f"unknown peer(s) {', '.join(unknown)}: choose from {', '.join(PEERS)}")
    args.model = args.model.resolve()
    if args.onnx_dir is None:
        args.onnx_dir = args.model.parent / "onnx"
    check_setup(args, peers)
    options = pairrm_options(args.pairrm)
    tier_list = tiers(args, options)
    cpu = machine.cpu_info()
    load_before = machine.load()
    log(f"CPU {cpu['summary']}; load {load_before}; tiers {[t for t, _ in tier_list]}; peers {peers}")

    with tempfile.TemporaryDirectory() as tmp:
        workload_file = Path(tmp) / "workload.jsonl"
        common = ["--model", str(args.model), "--workload", args.workloads, "--passes", str(args.passes),
                  "--threads", str(args.threads)]
        subprocess.run([args.pairrm, "bench", *common, "--write-workload", str(workload_file)], check=True)
        before = {name: run_pairrm_bench(args, common, extra) for name, extra in tier_list}
        peer_reports = {p: run_peer(args, p, workload_file) for p in peers}
        after = {name: run_pairrm_bench(args, common, extra) for name, extra in tier_list}
        load_after_timing = machine.load()
        tier_logits = {}
        if not args.no_agreement:
            tier_logits = {name: pairrm_logits(args, extra, workload_file) for name, extra in tier_list}
    load_after = machine.load()

    tier_reports = {}
    for name, extra in tier_list:
        merged = merge_runs(before[name], after[name])
        tier_reports[name] = {"flags": extra, "report": merged, "runs": [before[name], after[name]]}
    ref_logits = {w: r["logits_batch_1"] for w, r in peer_reports.get("reference", {}).get("workloads", {}).items()
                  if "logits_batch_1" in r}
    for name, t in tier_reports.items():
        t["agreement"] = agreement(tier_logits.get(name, {}), ref_logits) if ref_logits else None
    for p, r in peer_reports.items():
        r["agreement"] = agreement({w: x.get("logits_batch_1", []) for w, x in r["workloads"].items()},
                                   ref_logits) if ref_logits else None

    workloads = [w["workload"] for w in next(iter(tier_reports.values()))["report"]["workloads"]]
    f32_weights = next(iter(tier_reports.values()))["report"]["f32_weight_bytes"]
    passes = {name: {w["workload"]: w["passes_per_second"] for w in t["report"]["workloads"]}
              for name, t in tier_reports.items()}
    best = {p: {w: best_batch(r, w) for w in workloads if w in r["workloads"]} for p, r in peer_reports.items()}

    ratios = []
    for name in tier_reports:
        for p in peer_reports:
            for w in workloads:
                if w in best[p]:
                    bs, ps = best[p][w]
                    ratios.append({"pairrm": name, "peer": p, "workload": w, "peer_batch_size": bs,
                                   "pairrm_passes_per_second": passes[name][w], "peer_passes_per_second": ps,
                                   "ratio": passes[name][w] / ps})
    targets = []
    for label, tier, peer in TARGETS:
        for w in workloads:
            hit = next((r for r in ratios if (r["pairrm"], r["peer"], r["workload"]) == (tier, peer, w)), None)
            targets.append({"target": label, "workload": w, "ratio": hit["ratio"] if hit else None,
                            "status": "measured" if hit else
                            ("pending: pairrm has no such tier" if tier not in tier_reports else "peer not run")})

    report = {
        "schema": 2,
        "machine": {"cpu": cpu, "load_before": load_before, "load_after_timing": load_after_timing,
                    "load_after": load_after},
        "model": str(args.model), "threads": args.threads, "passes": args.passes, "workloads": workloads,
        "batch_sizes": args.batch_sizes, "onnx_dir": str(args.onnx_dir), "pairrm_options": options,
        "tiers": tier_reports, "peers": peer_reports, "ratios": ratios, "targets": targets,
        "f32_weight_bytes": f32_weights,
    }
    if "f32" in tier_reports and "reference" in peer_reports:
        # The keys of the schema-1 reports (pairrm f32 against the f32 reference), kept for bench/summarize.py.
        report["pairrm"] = tier_reports["f32"]["report"]
        report["pairrm_runs"] = tier_reports["f32"]["runs"]
        report["reference"] = peer_reports["reference"]
        report["rows"] = legacy_rows(tier_reports["f32"]["report"], peer_reports["reference"])
    print_report(report)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
        log(f"wrote {args.out}")


def legacy_rows(ours, ref):
    rows = []
    for w in ours["workloads"]:
        name = w["workload"]
        r = ref["workloads"][name]
        bs, best = max(r["batch_sizes"].items(), key=lambda kv: kv[1]["passes_per_second"])
        default = r["batch_sizes"].get(str(r["default_batch_size"]))
        ps = w["passes_per_second"]
        rows.append({
            "workload": name, "pairrm_passes_per_second": ps, "reference_best_batch_size": int(bs),
            "reference_best_passes_per_second": best["passes_per_second"],
            "reference_default_passes_per_second": default["passes_per_second"] if default else None,
            "ratio_vs_best": ps / best["passes_per_second"],
            "ratio_vs_default": ps / default["passes_per_second"] if default else None,
            "nominal_gflops": w["nominal_gflops"], "executed_gflops": w["executed_gflops"],
        })
    return rows


def print_report(r):
    m = r["machine"]
    fmt_load = lambda x: "/".join(f"{v:.1f}" for v in x) if x else "?"  # noqa: E731
    print(f"model {r['model']} · {r['threads']} threads · CPU {m['cpu']['summary']}")
    print(f"load average (1/5/15 min): before {fmt_load(m['load_before'])}, after the timings "
          f"{fmt_load(m['load_after_timing'])}")
    workloads = r["workloads"]
    print(f"\npasses/s (pairrm: mean of the runs before and after the peers; peers: best batch size)")
    print(f"{'':<16}" + "".join(f"{w:>16}" for w in workloads))
    for name, t in r["tiers"].items():
        cells = {w["workload"]: w for w in t["report"]["workloads"]}
        print(f"{'pairrm ' + name:<16}" + "".join(
            f"{cells[w]['passes_per_second']:>8.3f} ({'/'.join(f'{x:.2f}' for x in cells[w]['runs_passes_per_second'])})"
            .rjust(16) for w in workloads))
    for p, rep in r["peers"].items():
        row = ""
        for w in workloads:
            if w in rep["workloads"]:
                bs, ps = best_batch(rep, w)
                row += f"{ps:.3f} (b{bs})".rjust(16)
            else:
                row += "–".rjust(16)
        print(f"{p:<16}{row}")
    print("\nratios (pairrm tier / peer at its best batch size)")
    for t in r["targets"]:
        value = f"{t['ratio']:.2f}×" if t["ratio"] is not None else t["status"]
        print(f"  {t['target']:<30} {t['workload']:<8} {value}")
    print("\nmemory (× the f32 weight bytes, {:.2f} GB)".format(r["f32_weight_bytes"] / 1e9))
    for name, t in r["tiers"].items():
        print(f"  pairrm {name:<12} peak RSS {t['report']['peak_rss_bytes'] / r['f32_weight_bytes']:.2f}")
    for p, rep in r["peers"].items():
        peak, rss = rep.get("peak_rss_bytes"), rep.get("rss_bytes")
        if peak and rss:
            print(f"  {p:<19} peak RSS {peak / r['f32_weight_bytes']:.2f} (loading included), "
                  f"after the runs {rss / r['f32_weight_bytes']:.2f}")
    print("\nlogit error against the f32 reference (compare workloads, batch size 1)")
    rows = [(f"pairrm {n}", t["agreement"]) for n, t in r["tiers"].items()] + \
        [(p, rep["agreement"]) for p, rep in r["peers"].items()]
    for label, a in rows:
        if a:
            print(f"  {label:<19} max {a['max_abs_error']:.2e}  median {a['median_abs_error']:.2e}  "
                  f"same sign {100 * a['same_sign']:.0f}%  ({a['pairs']} pairs; reference median |logit| "
                  f"{a['reference_median_abs_logit']:.2e})")
        else:
            print(f"  {label:<19} not measured")


if __name__ == "__main__":
    main()
