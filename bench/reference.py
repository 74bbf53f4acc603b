#!/usr/bin/env python3
"""Run the reference (llm-blender 0.0.2 on torch) on a workload written by `pairrm bench --write-workload`.

    python bench/reference.py --model CKPT_DIR --workload FILE [--threads 2] [--batch-sizes 1,4,8] [--json]

For each workload in the file it times the reference at each batch size (after one warm-up call) and
prints forward passes per second. uniform / mixed: `Blender.compare(mode="[A,B]")` (one pass per pair;
its default batch size is 4); rank4: `Blender.rank` (default 8); best16: `Blender.get_best_of_n` with
bubble (default 8). Run it with the reference venv (see README, "Regenerating the fixtures").
"""

import argparse
import contextlib
import io
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

DEFAULT_BATCH = {"uniform": 4, "mixed": 4, "rank4": 8, "best16": 8}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="PairRM checkpoint directory (LLM-Blender layout)")
    p.add_argument("--workload", type=Path, required=True)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch-sizes", default="1,default", help="comma-separated; 'default' = the reference's default")
    p.add_argument("--json", action="store_true")
    return p.parse_args()


def load(model: Path, threads: int):
    import torch
    torch.set_num_threads(threads)
    import llm_blender
    model = model.resolve()
    old = os.getcwd()
    os.chdir(model)  # the reference resolves a relative model_name against the working directory
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            blender = llm_blender.Blender(blender_config=llm_blender.BlenderConfig(device="cpu", use_tqdm=False))
            blender.loadranker(str(model), device="cpu")
    finally:
        os.chdir(old)
    return blender


def run(blender, workload, items, batch_size):
    if workload in ("uniform", "mixed"):
        blender.compare([i["source"] for i in items], [i["a"] for i in items], [i["b"] for i in items],
                        batch_size=batch_size, return_logits=True, mode="[A,B]", disable_tqdm=True)
        return len(items)
    cands = [i["candidates"] for i in items]
    srcs = [i["source"] for i in items]
    n = len(cands[0])
    if workload == "rank4":
        blender.rank(srcs, cands, batch_size=batch_size, disable_tqdm=True)
        return len(items) * n * (n - 1)
    blender.get_best_of_n(srcs, cands, pairrm_cmp_type="bubble", batch_size=batch_size)
    return len(items) * 2 * (n - 1)


def main():
    args = parse_args()
    items = defaultdict(list)
    for line in args.workload.read_text().splitlines():
        row = json.loads(line)
        items[row["workload"]].append(row)
    import logging
    logging.disable(logging.WARNING)
    t = time.time()
    blender = load(args.model, args.threads)
    report = {"threads": args.threads, "load_seconds": time.time() - t, "workloads": {}}
    for workload, rows in items.items():
        run(blender, workload, rows[:1], 1)  # warm-up
        results = {}
        sizes = sorted({DEFAULT_BATCH[workload] if bs == "default" else int(bs) for bs in args.batch_sizes.split(",")})
        for size in sizes:
            t = time.time()
            passes = run(blender, workload, rows, size)
            seconds = time.time() - t
            results[str(size)] = {"passes": passes, "seconds": seconds, "passes_per_second": passes / seconds}
            print(f"reference {workload} batch {size}: {passes / seconds:.3f} passes/s", file=sys.stderr)
        report["workloads"][workload] = {"default_batch_size": DEFAULT_BATCH[workload], "batch_sizes": results}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for w, r in report["workloads"].items():
            for bs, x in r["batch_sizes"].items():
                print(f"{w:<8} batch {bs:>2}: {x['passes_per_second']:.3f} passes/s ({x['passes']} passes, {x['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
