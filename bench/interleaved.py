#!/usr/bin/env python3
"""Alternate one pairrm tier and one peer on the same workload, round after round, and report the
ratio of each round and their spread: for a target ratio whose peer swings from run to run (torch's
bf16 cast on short, mixed-length pairs measured 0.37–0.57 passes/s on one machine in one afternoon),
one side-by-side run is one sample; this gives several, each taken with both sides on the same
machine minutes apart.

    python bench/interleaved.py --model CKPT_DIR [--rounds 5] [--workload mixed] [--passes 8]
        [--precision f32] [--peer bf16] [--batch-size 1] [--threads 2] [--onnx-dir DIR]
        [--pairrm target/release/pairrm] [--out FILE]

Run it with the reference venv's python (the peer imports llm_blender and torch). Each round runs
`pairrm bench --json --no-peak` and `bench/reference.py --variant PEER --json` in their own
processes, in alternating order (pairrm first in odd rounds), on the workload written once by
`pairrm bench --write-workload`.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import machine  # noqa: E402  (bench/machine.py: lscpu's name and flags, the load average)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--workload", default="mixed")
    p.add_argument("--passes", type=int, default=8)
    p.add_argument("--precision", default="f32")
    p.add_argument("--peer", default="bf16", help="a bench/reference.py --variant (f32, bf16, ort-f32, ort-int8)")
    p.add_argument("--batch-size", type=int, default=1, help="the peer's batch size")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--onnx-dir", type=Path)
    p.add_argument("--pairrm", default=str(HERE.parent / "target" / "release" / "pairrm"))
    p.add_argument("--out", type=Path)
    return p.parse_args()


def log(msg):
    print(f"[interleaved] {msg}", file=sys.stderr, flush=True)


def pairrm_run(args):
    cmd = [args.pairrm, "bench", "--model", str(args.model), "--workload", args.workload, "--passes",
           str(args.passes), "--threads", str(args.threads), "--precision", args.precision, "--no-peak", "--json"]
    report = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout)
    return report["workloads"][0]["passes_per_second"]


def peer_run(args, workload_file):
    cmd = [sys.executable, str(HERE / "reference.py"), "--model", str(args.model), "--workload", str(workload_file),
           "--threads", str(args.threads), "--batch-sizes", str(args.batch_size), "--variant", args.peer, "--json"]
    if args.onnx_dir:
        cmd += ["--onnx-dir", str(args.onnx_dir)]
    report = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout)
    return report["workloads"][args.workload]["batch_sizes"][str(args.batch_size)]["passes_per_second"]


def main():
    args = parse_args()
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        workload_file = Path(tmp) / "workload.jsonl"
        subprocess.run([args.pairrm, "bench", "--model", str(args.model), "--workload", args.workload, "--passes",
                        str(args.passes), "--write-workload", str(workload_file)], check=True)
        rounds = []
        for i in range(args.rounds):
            order = ["pairrm", "peer"] if i % 2 == 0 else ["peer", "pairrm"]
            got = {}
            for side in order:
                got[side] = pairrm_run(args) if side == "pairrm" else peer_run(args, workload_file)
            ratio = got["pairrm"] / got["peer"]
            log(f"round {i + 1}: pairrm {args.precision} {got['pairrm']:.3f}, peer {args.peer} "
                f"{got['peer']:.3f} passes/s: {ratio:.2f}×")
            rounds.append({"order": order, "pairrm_passes_per_second": got["pairrm"],
                           "peer_passes_per_second": got["peer"], "ratio": ratio, "finished": time.time()})
    ratios = [r["ratio"] for r in rounds]
    report = {
        "machine": {"cpu": machine.cpu_info(), "load_after": machine.load()},
        "model": str(args.model),
        "workload": args.workload,
        "passes": args.passes,
        "threads": args.threads,
        "pairrm_precision": args.precision,
        "peer": args.peer,
        "peer_batch_size": args.batch_size,
        "rounds": rounds,
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "pairrm_median": statistics.median(r["pairrm_passes_per_second"] for r in rounds),
        "peer_median": statistics.median(r["peer_passes_per_second"] for r in rounds),
    }
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    log(f"{args.rounds} rounds on {report['machine']['cpu']['summary']}: ratio median {report['ratio_median']:.2f}× "
        f"(min {report['ratio_min']:.2f}×, max {report['ratio_max']:.2f}×)")


if __name__ == "__main__":
    main()
