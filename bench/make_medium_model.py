#!/usr/bin/env python3
"""Makes a random-weight PairRM checkpoint larger than the tiny test fixture, for the server load
test: DeBERTa-v2 with 4 layers of width 256 (FFN 1024), source and candidate limits of 128 tokens,
the tiny fixture's tokenizer. Written to bench/models/medium (+ medium-backbone); never committed.

    /work/refvenv/bin/python bench/make_medium_model.py      # any Python with torch + transformers
"""
import shutil
import sys
from pathlib import Path

repo = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(repo / "tools"))
from make_fixtures import MARKERS, deberta_config, random_state, ranker_config, save_weights, write_backbone, write_json  # noqa: E402


def main():
    from transformers import AutoTokenizer
    out = repo / "bench" / "models"
    backbone = out / "medium-backbone"
    model = out / "medium"
    for d in (backbone, model):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    cfg = deberta_config(1024, 256, 4, 4, 1024, 256, 512)
    write_backbone(backbone, cfg, False, repo / "tests" / "fixtures" / "models" / "tiny-backbone" / "spm.model")
    n_rows = len(AutoTokenizer.from_pretrained(str(backbone))) + len(MARKERS)
    save_weights(random_state(cfg, n_rows, 1, 4242), model / "model.safetensors")
    write_json(model / "config.json", ranker_config("../medium-backbone", 128, 128, 1))
    print(f"built {model}", file=sys.stderr)


if __name__ == "__main__":
    main()
