#!/usr/bin/env python3
"""Peak memory (RSS high-water mark) of `pairrm` on very long texts: the CLI on one long JSON line
and on many 1 MB lines, and the server under N concurrent requests of the largest body it accepts.

    python3 bench/memory.py --pairrm target/release/pairrm [--model DIR] [--json out.json]

--model defaults to a local copy of the committed real-tokenizer fixture (the real deberta-v3
spm.model, with its nmt_nfkc normalizer, in front of a tiny random network), so that what is measured
is the text handling and not the weights. Linux only (reads /proc/PID/status). Every server runs on
loopback on a free port and is stopped at the end.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def realtok_model(root: Path) -> Path:
    """The realtok fixture as a local directory: backbone config + the real spm.model."""
    fixtures = REPO / "tests" / "fixtures"
    backbone = root / "backbone"
    backbone.mkdir(parents=True)
    for f in ["config.json", "tokenizer_config.json"]:
        shutil.copy(fixtures / "models" / "realtok-backbone" / f, backbone / f)
    shutil.copy(fixtures / "tokenizer" / "deberta-v3" / "spm.model", backbone / "spm.model")
    model = root / "model"
    model.mkdir()
    config = json.loads((fixtures / "models" / "realtok-original" / "config.json").read_text())
    config["model_name"] = "../backbone"
    (model / "config.json").write_text(json.dumps(config))
    shutil.copy(fixtures / "models" / "realtok-original" / "model.safetensors", model / "model.safetensors")
    return model


def make_text(kind: str, size: int) -> str:
    unit = {
        "english": "The quick brown fox jumps over the lazy dog, and then it runs away. ",
        "cjk-no-spaces": "日本語のテキストと中文と한국어と漢字かな交じり文",
        "one-letter": "a",
    }[kind]
    n = size // len(unit.encode("utf-8")) + 1
    text = unit * n
    # Cut to `size` bytes at a character boundary.
    return text.encode("utf-8")[:size].decode("utf-8", errors="ignore")


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def cli_peak(pairrm: str, model: Path, line: str) -> dict:
    """Peak RSS of `pairrm compare` on `line` (one line or several, joined by newlines). The
    process is kept alive (stdin open) until their answers are out, then its high-water mark is
    read."""
    proc = subprocess.Popen([pairrm, "compare", "--model", str(model), "--no-progress"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    start = time.time()
    # The big line, then enough small lines to make the CLI score the chunk without EOF.
    small = json.dumps({"source": "q", "a": "x", "b": "y"}) + "\n"
    proc.stdin.write(line.encode() + b"\n" + small.encode() * 200)
    proc.stdin.flush()
    answers = [proc.stdout.readline() for _ in line.split("\n")]
    peak = status_kib(proc.pid, "VmHWM")
    elapsed = time.time() - start
    proc.stdin.close()
    proc.stdout.read()
    proc.wait()
    answer = json.loads(answers[0])
    return {"peak_rss_mib": round(peak / 1024, 1), "seconds": round(elapsed, 2), "answer": answer}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: bytes, out: list):
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            out.append((r.status, r.read()))
    except urllib.error.HTTPError as e:
        out.append((e.code, e.read()))


def server_peak(pairrm: str, model: Path, body: bytes, clients: int) -> dict:
    port = free_port()
    proc = subprocess.Popen([pairrm, "serve", "--model", str(model), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except Exception:
                time.sleep(0.1)
        idle = status_kib(proc.pid, "VmRSS")
        results: list = []
        threads = [threading.Thread(target=post, args=(f"http://127.0.0.1:{port}/compare", body, results))
                   for _ in range(clients)]
        start = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.time() - start
        peak = status_kib(proc.pid, "VmHWM")
        statuses = sorted({s for s, _ in results})
        return {"clients": clients, "idle_rss_mib": round(idle / 1024, 1), "peak_rss_mib": round(peak / 1024, 1),
                "seconds": round(elapsed, 2), "statuses": statuses}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairrm", required=True, help="the pairrm binary")
    p.add_argument("--model", type=Path, help="checkpoint directory (default: the real-tokenizer fixture)")
    p.add_argument("--cli-mb", type=float, default=10.0, help="size of the long CLI line, in MB")
    p.add_argument("--many", type=int, default=128, help="lines of 1 MB of English in the many-lines CLI run")
    p.add_argument("--body-bytes", type=int, default=1_990_000, help="size of each server request body")
    p.add_argument("--clients", type=int, nargs="*", default=[1, 8])
    p.add_argument("--kinds", nargs="*", default=["english", "cjk-no-spaces", "one-letter"])
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or realtok_model(Path(tmp))
        results = {"pairrm": args.pairrm, "model": str(args.model or "realtok fixture"), "cli": [], "server": []}
        for kind in args.kinds:
            text = make_text(kind, int(args.cli_mb * 1_000_000))
            line = json.dumps({"source": "Summarize this.", "a": text, "b": "A short answer."}, ensure_ascii=False)
            r = cli_peak(args.pairrm, model, line)
            r.update(kind=kind, line_mb=round(len(line.encode()) / 1e6, 2))
            results["cli"].append(r)
            print(json.dumps(r), file=sys.stderr)
        if args.many:
            line = json.dumps({"source": "Summarize this.", "a": make_text("english", 1_000_000), "b": "Short."})
            r = cli_peak(args.pairrm, model, "\n".join([line] * args.many))
            r.update(kind=f"{args.many} lines of 1 MB of english", line_mb=round(len(line.encode()) / 1e6, 2))
            results["cli"].append(r)
            print(json.dumps(r), file=sys.stderr)
        for kind in args.kinds:
            def body_of(text):
                pair = {"source": "Summarize this.", "a": text, "b": "A short answer."}
                return json.dumps({"pairs": [pair]}, ensure_ascii=False).encode()
            body = body_of(make_text(kind, args.body_bytes - len(body_of("")) - 4))
            for clients in args.clients:
                r = server_peak(args.pairrm, model, body, clients)
                r.update(kind=kind, body_mb=round(len(body) / 1e6, 2))
                results["server"].append(r)
                print(json.dumps(r), file=sys.stderr)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n")
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
