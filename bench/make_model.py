#!/usr/bin/env python3
"""Make a random-weight PairRM checkpoint of the real deberta-v3-large shape, for benchmarks.

    python bench/make_model.py OUT_DIR [--layers 24] [--seed 0]

OUT_DIR/pairrm/    LLM-Blender layout: config.json (model_name "../backbone"), model.safetensors (f32)
OUT_DIR/backbone/  DeBERTa-v3-large config.json, tokenizer_config.json, the real spm.model (the
                   committed test fixture) and random backbone weights: the reference's
                   AutoModel.from_pretrained needs some; the PairRM checkpoint overrides all of them.
Needs torch and transformers (the reference venv). About 3.5 GB on disk at 24 layers.
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import make_fixtures as fx  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--layers", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    spm = REPO / "tests" / "fixtures" / "tokenizer" / "deberta-v3" / "spm.model"
    import torch
    from transformers import DebertaV2Model

    cfg = fx.deberta_config(128100, 1024, args.layers, 16, 4096, 256, 512)
    bb = args.out / "backbone"
    fx.write_backbone(bb, cfg, False, spm)
    torch.manual_seed(args.seed)
    DebertaV2Model(cfg).save_pretrained(bb, safe_serialization=True)
    ck = args.out / "pairrm"
    ck.mkdir(parents=True, exist_ok=True)
    state = fx.random_state(cfg, 128005, 1, args.seed)
    fx.save_weights(state, ck / "model.safetensors")
    fx.write_json(ck / "config.json", fx.ranker_config("../backbone", 1224, 412, 1))
    print(f"wrote {ck} ({sum(v.numel() for v in state.values()) / 1e6:.1f}M parameters)", file=sys.stderr)


if __name__ == "__main__":
    main()
