"""LLM-Blender's documented calls and the surprising ones, written against `import llm_blender` only,
so that they run on both pairrm's compatibility llm_blender (test_compat_reference.py, in-process)
and the original llm_blender 0.0.2 with torch (this file as a script, in that interpreter):

    /path/to/reference/python python/tests/reference_scenarios.py OUT.json

Both read the realtok test checkpoint as `llm-blender/PairRM` from an offline cache laid out as
llm_blender downloads it (`<cache>/llm-blender/PairRM`), with `microsoft/deberta-v3-large` (the real
tokenizer) in the Hugging Face layout of the same cache. As a script, this builds that cache
(adding the random backbone weights the original's AutoModel.from_pretrained needs; the checkpoint
overrides them all), runs the original's default ``Blender()`` on the CPU (its BlenderConfig
defaults to CUDA) and writes the results as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Dict

HERE = Path(__file__).resolve().parent
MODELS = HERE.parents[1] / "tests" / "fixtures" / "models"
SPM_MODEL = HERE.parents[1] / "tests" / "fixtures" / "tokenizer" / "deberta-v3" / "spm.model"
BACKBONE = "models--microsoft--deberta-v3-large"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def build_cache(root: Path) -> Path:
    """The cache described above (without backbone weights), under ``root``; returns its path."""
    cache = root / "hub"
    snapshot = cache / BACKBONE / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (cache / BACKBONE / "refs").mkdir()
    (cache / BACKBONE / "refs" / "main").write_text(COMMIT)
    for name in ("config.json", "tokenizer_config.json"):
        shutil.copy(MODELS / "realtok-backbone" / name, snapshot / name)
    shutil.copy(SPM_MODEL, snapshot / "spm.model")
    folder = cache / "llm-blender" / "PairRM"
    folder.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(MODELS / "realtok-original" / name, folder / name)
    return cache


def floats(values: Any) -> Any:
    return [floats(v) for v in values] if hasattr(values, "__len__") and not isinstance(values, str) else float(values)


def scenarios(cache: str) -> Dict[str, Any]:
    """Runs the calls; every value is a (nested) list of numbers, bools or str."""
    sys.path.insert(0, str(HERE))
    from upstream_docs import MODEL_CARD, README

    import llm_blender

    out: Dict[str, Any] = {}
    ns: Dict[str, Any] = {}
    exec(README["load"], ns)
    exec(README["rank"], ns)
    blender, inputs, cands = ns["blender"], ns["inputs"], ns["candidates_texts"]
    out["readme_rank"] = ns["ranks"].tolist()
    out["rank_scores"] = floats(blender.rank(inputs, cands, return_scores=True, batch_size=1))
    exec(README["compare"], ns)
    out["readme_compare"] = ns["comparison_results"].tolist()
    a, b = ns["candidates_A"], ns["candidates_B"]
    for mode in ("[A,B]", "[B,A]", "[A,B]+[B,A]", "longest"):
        out[f"compare_logits {mode}"] = floats(blender.compare(ns["inputs"], a, b, batch_size=1, return_logits=True, mode=mode))
    exec(README["rank_with_ref"], ns)
    out["readme_rank_with_ref"] = floats(ns["rewards"])
    exec(README["rank_with_ref_candidates"], ns)
    out["readme_rank_with_ref_candidates"] = floats(ns["rewards"])
    for mode in ("[A,B]", "[B,A]"):
        out[f"rank_with_ref {mode}"] = floats(blender.rank_with_ref(inputs, cands, return_scores=True, batch_size=1, mode=mode))
    long_inputs = ["Please answer at length: " * 6 + x for x in inputs]
    long_cands = [[c * 8 for c in row] for row in cands]
    out["rank per-call limits"] = floats(
        blender.rank(long_inputs, long_cands, return_scores=True, batch_size=1, source_max_length=40, candidate_max_length=20)
    )
    out["rank ignored kwargs"] = floats(blender.rank(inputs, cands, return_scores=True, batch_size=1, policy="max_wins"))
    for cmp_type in ("full", "max"):
        out[f"best_of_n {cmp_type}"] = blender.get_best_of_n(inputs, cands, pairrm_cmp_type=cmp_type, batch_size=1)
        out[f"worst_of_n {cmp_type}"] = list(blender.get_worst_of_n(inputs, cands, pairrm_cmp_type=cmp_type, batch_size=1))
    card: Dict[str, Any] = {"blender": blender}
    exec(MODEL_CARD["compare_conversations"].replace("    ...\n", ""), card)
    out["card_conversations"] = card["comparison_results"].tolist()
    out["conversation_logits"] = floats(
        blender.compare_conversations([card["conv1"]], [card["conv2"]], batch_size=1, return_logits=True)
    )
    configured = llm_blender.Blender(
        llm_blender.BlenderConfig(device="cpu", use_tqdm=False),
        llm_blender.RankerConfig(
            ranker_type="pairranker", model_type="deberta", model_name="microsoft/deberta-v3-large", cache_dir=cache,
            load_checkpoint=str(Path(cache) / "llm-blender" / "PairRM"), source_maxlength=40, candidate_maxlength=20,
            device="cpu",
        ),
    )
    out["configured rank"] = floats(configured.rank(long_inputs, long_cands, return_scores=True, batch_size=1))
    return out


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cache = build_cache(Path(tmp))
        # Read at import by huggingface_hub and transformers (TRANSFORMERS_CACHE, llm_blender's
        # default cache_dir): set before importing them.
        os.environ["HF_HUB_CACHE"] = str(cache)
        os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import torch
        from transformers import DebertaV2Config, DebertaV2Model

        snapshot = cache / BACKBONE / "snapshots" / COMMIT
        torch.manual_seed(0)
        DebertaV2Model(DebertaV2Config.from_pretrained(str(snapshot))).save_pretrained(str(snapshot), safe_serialization=True)
        torch.set_num_threads(1)
        # The original's BlenderConfig defaults to device="cuda", so its README fails on a machine
        # without CUDA; run its default Blender() on the CPU here.
        import functools

        import llm_blender.blender.blender as original

        original.BlenderConfig = functools.partial(original.BlenderConfig, device="cpu")
        with contextlib.redirect_stdout(sys.stderr):  # llm_blender prints "Successfully loaded ranker"
            results = scenarios(str(cache))
    Path(sys.argv[1]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
