#!/usr/bin/env python3
"""Run the reference (llm-blender 0.0.2 on torch), or one of its reduced-precision peers, on a workload
written by `pairrm bench --write-workload`.

    python bench/reference.py --model CKPT_DIR --workload FILE [--threads 2] [--batch-sizes 1,4,8]
                              [--variant f32|bf16|ort-f32|ort-int8] [--onnx-dir DIR] [--json]

For each workload in the file it times the reference at each batch size (after one warm-up call) and
prints forward passes per second. uniform / mixed: `Blender.compare(mode="[A,B]")` (one pass per pair;
its default batch size is 4); rank4: `Blender.rank` (default 8); best16: `Blender.get_best_of_n` with
bubble (default 8). The time is the wall time of that call: tokenization, collation, padding, the
encoder, the marker-row gather and the head (as `pairrm bench` times its own calls). `--variant`
changes only how the ranker computes (bench/peers.py: a bfloat16 cast, or ONNX Runtime f32 / int8 in
place of the encoder; exports are cached under --onnx-dir). The logits of the compare workloads at
batch size 1 go into the JSON report (for the agreement with f32). Run it with the reference venv
(see docs/performance.md, "The peers").
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
    p.add_argument("--variant", default="f32", help="f32 | bf16 | ort-f32 | ort-int8 (see bench/peers.py)")
    p.add_argument("--onnx-dir", type=Path, help="cache of the exported ONNX encoders (ort-* variants)")
    p.add_argument("--json", action="store_true")
    return p.parse_args()


def load(model: Path, threads: int):
    try:
        import torch
        import llm_blender
    except ImportError as e:
        raise SystemExit(f"{e}: run this with the reference venv's python (llm-blender 0.0.2 on torch 2.5.1; "
                         "docs/performance.md says how to make it)")
    if not (model / "config.json").is_file():
        raise SystemExit(f"{model}/config.json not found: --model must be a PairRM checkpoint directory "
                         "(LLM-Blender layout, e.g. made by bench/make_model.py)")
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
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
    """Runs ``items`` at ``batch_size``: (forward passes, logits of a compare workload or None)."""
    if workload in ("uniform", "mixed"):
        logits = blender.compare([i["source"] for i in items], [i["a"] for i in items], [i["b"] for i in items],
                                 batch_size=batch_size, return_logits=True, mode="[A,B]", disable_tqdm=True)
        return len(items), [float(x) for x in logits]
    cands = [i["candidates"] for i in items]
    srcs = [i["source"] for i in items]
    n = len(cands[0])
    if workload == "rank4":
        blender.rank(srcs, cands, batch_size=batch_size, disable_tqdm=True)
        return len(items) * n * (n - 1), None
    blender.get_best_of_n(srcs, cands, pairrm_cmp_type="bubble", batch_size=batch_size)
    return len(items) * 2 * (n - 1), None


def memory():
    """(peak, current) resident set of this process in bytes, from /proc (Linux)."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = int(value.split()[0]) * 1024
    return fields.get("VmHWM"), fields.get("VmRSS")


def main():
    args = parse_args()
    if not args.workload.is_file():
        raise SystemExit(f"{args.workload} not found: write one with `pairrm bench --write-workload FILE`")
    items = defaultdict(list)
    for line in args.workload.read_text().splitlines():
        row = json.loads(line)
        items[row["workload"]].append(row)
    import logging
    logging.disable(logging.WARNING)
    t = time.time()
    blender = load(args.model, args.threads)
    load_seconds = time.time() - t
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import peers

    t = time.time()
    variant = peers.apply(blender, args.variant, args.model.resolve(), args.onnx_dir, args.threads)
    variant["setup_seconds"] = time.time() - t
    report = {"variant": args.variant, "setup": variant, "threads": args.threads, "interop_threads": 1,
              "load_seconds": load_seconds, "workloads": {}}
    name = "reference" if args.variant == "f32" else f"reference {args.variant}"
    for workload, rows in items.items():
        run(blender, workload, rows[:1], 1)  # warm-up
        results = {}
        sizes = sorted({DEFAULT_BATCH[workload] if bs == "default" else int(bs) for bs in args.batch_sizes.split(",")})
        logits = None
        for size in sizes:
            t = time.time()
            passes, out = run(blender, workload, rows, size)
            seconds = time.time() - t
            results[str(size)] = {"passes": passes, "seconds": seconds, "passes_per_second": passes / seconds}
            if size == 1:
                logits = out
            print(f"{name} {workload} batch {size}: {passes / seconds:.3f} passes/s", file=sys.stderr)
        if logits is None and workload in ("uniform", "mixed"):
            logits = run(blender, workload, rows, 1)[1]  # untimed: batch 1 has no padding effects
        report["workloads"][workload] = {"default_batch_size": DEFAULT_BATCH[workload], "batch_sizes": results}
        if logits is not None:
            report["workloads"][workload]["logits_batch_1"] = logits
    report["peak_rss_bytes"], report["rss_bytes"] = memory()
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for w, r in report["workloads"].items():
            for bs, x in r["batch_sizes"].items():
                print(f"{w:<8} batch {bs:>2}: {x['passes_per_second']:.3f} passes/s ({x['passes']} passes, {x['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
