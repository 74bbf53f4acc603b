#!/usr/bin/env python3
"""Checks that pairrm and Python's huggingface_hub share one Hugging Face cache, both ways.

Starts the fake hub (crate `fake-hub`) on 127.0.0.1 serving the committed tiny checkpoints, then:
1. pairrm downloads `test/pairrm` (+ its backbone) and `test/pairrm-hf`; huggingface_hub reads
   every file back with `local_files_only=True`, sees the recorded missing files, and
   `scan_cache_dir` finds no corruption;
2. huggingface_hub downloads the same files into a fresh cache; pairrm runs `compare` on it with
   HF_HUB_OFFLINE=1 and gets the same output as on the local checkpoint; `pairrm models` lists it;
3. huggingface_hub downloads part of a model, pairrm completes it (only the missing files are
   fetched), and huggingface_hub reads the whole snapshot offline;
4. while Python holds the lock huggingface_hub takes to download a blob, pairrm waits for it.

Usage (after `cargo build -p pairrm-cli -p fake-hub`), with a Python that has huggingface_hub:
    python tools/check_hf_interop.py [--target-dir target/debug]
Exits non-zero on the first mismatch.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "models"
PAIR = '{"source": "Say hi.", "a": "Hi there!", "b": "No."}\n'
RANKER_FILES = ["config.json", "model.safetensors"]
BACKBONE_FILES = ["config.json", "spm.model", "tokenizer_config.json"]
HF_FILES = ["config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]


def make_repos(tmp: Path) -> dict:
    """Copies the fixtures into repo folders for the fake hub."""
    ranker, backbone, hf = tmp / "ranker", tmp / "backbone", tmp / "hf"
    for d in (ranker, backbone, hf):
        d.mkdir()
    config = json.loads((FIXTURES / "tiny-original" / "config.json").read_text())
    config["model_name"] = "test/backbone"
    (ranker / "config.json").write_text(json.dumps(config, indent=1))
    (ranker / "model.safetensors").write_bytes((FIXTURES / "tiny-original" / "model.safetensors").read_bytes())
    (ranker / "README.md").write_text("# tiny\n")
    for f in BACKBONE_FILES:
        (backbone / f).write_bytes((FIXTURES / "tiny-backbone" / f).read_bytes())
    (backbone / "pytorch_model.bin").write_bytes(b"\0" * 30000)  # never to be downloaded
    for f in HF_FILES:
        (hf / f).write_bytes((FIXTURES / "tiny-hf" / f).read_bytes())
    return {"test/pairrm": ranker, "test/backbone": backbone, "test/pairrm-hf": hf}


def env_for(cache: Path, endpoint: str, offline: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING")) and "proxy" not in k.lower()}
    env.update({"HF_ENDPOINT": endpoint, "HF_HUB_CACHE": str(cache), "HF_HOME": str(cache.parent / "hf-home")})
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def run(cmd: list, env: dict, stdin: str = "") -> str:
    p = subprocess.run(cmd, input=stdin, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"hf-interop: {len(PASSED)} passed, 1 failed")
        sys.exit(f"FAILED: {' '.join(cmd)}\n{p.stderr}")
    return p.stdout


def python_download(cache: Path, endpoint: str, files: dict, offline: bool) -> dict:
    """Runs huggingface_hub in a child process (it reads its settings at import)."""
    code = (
        "import json, sys\n"
        "from huggingface_hub import hf_hub_download, try_to_load_from_cache, scan_cache_dir\n"
        "from huggingface_hub.file_download import _CACHED_NO_EXIST\n"
        "req = json.loads(sys.argv[1]); offline = sys.argv[2] == '1'; out = {'files': {}}\n"
        "for repo, names in req.items():\n"
        "    for name in names:\n"
        "        p = hf_hub_download(repo, name, local_files_only=offline)\n"
        "        out['files'][repo + '/' + name] = open(p, 'rb').read().hex()\n"
        "out['no_exist'] = try_to_load_from_cache('test/backbone', 'tokenizer.json') is _CACHED_NO_EXIST\n"
        "info = scan_cache_dir()\n"
        "out['warnings'] = [str(w) for w in info.warnings]\n"
        "out['repos'] = sorted(r.repo_id for r in info.repos)\n"
        "print(json.dumps(out))\n"
    )
    env = env_for(cache, endpoint, offline)
    return json.loads(run([sys.executable, "-c", code, json.dumps(files), "1" if offline else "0"], env))


PASSED = []


def expect(cond: bool, what: str) -> None:
    if not cond:
        print(f"hf-interop: {len(PASSED)} passed, 1 failed")
        sys.exit(f"FAILED: {what}")
    PASSED.append(what)
    print(f"ok: {what}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target-dir", default=str(ROOT / "target" / "debug"))
    args = ap.parse_args()
    pairrm = str(Path(args.target_dir) / "pairrm")
    fake_hub = str(Path(args.target_dir) / "fake-hub")

    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        repos = make_repos(tmp)
        cmd = [fake_hub] + [a for repo, d in repos.items() for a in ("--repo", f"{repo}={d}")]
        server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        try:
            endpoint = server.stdout.readline().strip()
            expect(endpoint.startswith("http://127.0.0.1:"), f"fake hub at {endpoint}")
            wanted = {"test/pairrm": RANKER_FILES, "test/backbone": BACKBONE_FILES, "test/pairrm-hf": HF_FILES}
            originals = {f"{r}/{f}": (repos[r] / f).read_bytes().hex() for r, fs in wanted.items() for f in fs}
            local = run([pairrm, "compare", "-m", str(FIXTURES / "tiny-original")], env_for(tmp / "x", endpoint), PAIR)

            # 1. pairrm writes, huggingface_hub reads.
            cache1 = tmp / "cache1"
            for model in ("test/pairrm", "test/pairrm-hf"):
                run([pairrm, "download", model], env_for(cache1, endpoint))
            got = python_download(cache1, endpoint, wanted, offline=True)
            expect(got["files"] == originals, "huggingface_hub reads every file pairrm downloaded, offline")
            expect(got["no_exist"], "huggingface_hub sees the missing files pairrm recorded under .no_exist")
            expect(got["warnings"] == [], f"scan_cache_dir finds no problem ({got['warnings']})")
            expect(got["repos"] == sorted(wanted), "scan_cache_dir lists the three repos")

            # 2. huggingface_hub writes, pairrm reads offline.
            cache2 = tmp / "cache2"
            got = python_download(cache2, endpoint, wanted, offline=False)
            expect(got["files"] == originals, "huggingface_hub downloads from the fake hub")
            out = run([pairrm, "compare", "-m", "test/pairrm"], env_for(cache2, endpoint, offline=True), PAIR)
            expect(out == local, "pairrm scores the model huggingface_hub downloaded, offline, as the local one")
            run([pairrm, "compare", "-m", "test/pairrm-hf"], env_for(cache2, endpoint, offline=True), PAIR)
            expect(True, "pairrm opens the PairRM-hf model huggingface_hub downloaded, offline")
            models = run([pairrm, "models", "--json"], env_for(cache2, endpoint))
            listed = sorted(json.loads(line)["repo"] for line in models.splitlines())
            expect(listed == sorted(wanted), "pairrm models lists what huggingface_hub downloaded")

            # 3. A cache filled by both.
            cache3 = tmp / "cache3"
            python_download(cache3, endpoint, {"test/pairrm": ["config.json"]}, offline=False)
            lines = run([pairrm, "download", "test/pairrm"], env_for(cache3, endpoint))
            expect(json.loads(lines.splitlines()[0])["files"] == RANKER_FILES, "pairrm completes the snapshot")
            got = python_download(cache3, endpoint, {k: wanted[k] for k in ("test/pairrm", "test/backbone")}, True)
            expect(len(got["files"]) == 5 and got["warnings"] == [], "huggingface_hub reads the mixed cache offline")

            # 4. One lock for both.
            cache4 = tmp / "cache4"
            sha = hashlib.sha256((repos["test/pairrm"] / "model.safetensors").read_bytes()).hexdigest()
            lock_path = cache4 / ".locks" / "models--test--pairrm" / f"{sha}.lock"
            lock_path.parent.mkdir(parents=True)
            holder_code = (
                "import sys\nfrom filelock import FileLock\n"
                "with FileLock(sys.argv[1]):\n    print('locked', flush=True)\n    sys.stdin.readline()\n"
            )
            holder = subprocess.Popen(
                [sys.executable, "-c", holder_code, str(lock_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            expect(holder.stdout.readline().strip() == "locked", "Python holds the blob's lock (filelock)")
            dl = subprocess.Popen(
                [pairrm, "download", "test/pairrm"], env=env_for(cache4, endpoint),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            waited = any("waiting for another process" in line for line in iter(dl.stderr.readline, ""))
            holder.stdin.write("\n")
            holder.stdin.close()
            holder.wait()
            rest = dl.communicate()
            expect(waited and dl.returncode == 0, f"pairrm waited for Python's lock, then downloaded ({rest[1]})")
        finally:
            server.terminate()
            server.wait()
    print(f"hf-interop: {len(PASSED)} passed, 0 failed")


if __name__ == "__main__":
    main()
