"""n_generate / best_of_n_generate: sampling with a duck-typed model (only `.generate` and the
tokenizer are used), then choosing with PairRM."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Dict, List

import numpy as np
import pytest

import pairrm
from conftest import load

WORDS = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]


class ToyTokenizer:
    """Characters as ids (0 = padding, on the left), like a HF tokenizer with numpy tensors."""

    model_max_length = 64

    def __init__(self) -> None:
        self.calls: List[Dict[str, Any]] = []

    def __call__(self, prompts: List[str], **kwargs: Any) -> Dict[str, np.ndarray]:
        self.calls.append(dict(kwargs, prompts=list(prompts)))
        width = max(len(p) for p in prompts)
        ids = np.zeros((len(prompts), width), dtype=np.int64)
        for i, p in enumerate(prompts):
            ids[i, width - len(p) :] = [ord(c) for c in p]
        return {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64)}

    def batch_decode(self, ids: Any, skip_special_tokens: bool) -> List[str]:
        assert skip_special_tokens
        return ["".join(chr(int(x)) for x in row if x > 0) for row in ids]


class ToyModel:
    """Appends a deterministic "sample" per returned sequence; `decoder_only` keeps the prompt
    in the output as causal LMs do."""

    def __init__(self, decoder_only: bool = True) -> None:
        self.decoder_only = decoder_only
        self.calls: List[Dict[str, Any]] = []

    def generate(self, input_ids: np.ndarray, attention_mask: np.ndarray, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        n, steps = kwargs["num_return_sequences"], 7
        rows = []
        for i, prompt in enumerate(input_ids):
            for k in range(n):
                word = WORDS[(i * 3 + k * 5 + len(self.calls)) % len(WORDS)]
                sample = np.array([ord(c) for c in f" {word}{k}".ljust(steps)[:steps]], dtype=np.int64)
                rows.append(np.concatenate([prompt, sample]) if self.decoder_only else sample)
        return SimpleNamespace(sequences=np.stack(rows), scores=tuple(range(steps)))


def test_n_generate_samples_n_per_input(blender: pairrm.Blender) -> None:
    model, tokenizer = ToyModel(), ToyTokenizer()
    out = blender.n_generate(model, tokenizer, ["one", "two", "three"], n=4, batch_size=2, max_new_tokens=7)
    assert len(out) == 3 and all(len(x) == 4 for x in out)
    assert all(s.startswith(" ") and "one" not in s for s in out[0])  # the prompt is removed
    assert [c["prompts"] for c in tokenizer.calls] == [["one", "two"], ["three"]]
    assert tokenizer.calls[0]["return_tensors"] == "pt" and tokenizer.calls[0]["padding"] is True
    kwargs = model.calls[0]
    assert kwargs == {
        "max_new_tokens": 7,
        "do_sample": True,
        "top_p": 1.0,
        "temperature": 0.7,
        "num_return_sequences": 4,
        "output_scores": True,
        "return_dict_in_generate": True,
    }


def test_sampling_modes_and_defaults(blender: pairrm.Blender) -> None:
    model, tokenizer = ToyModel(), ToyTokenizer()
    blender.n_generate(model, tokenizer, ["x"], n=2, sampling_mode="top_k_sampling", temperature=1.3)
    assert model.calls[-1]["top_k"] == 50 and model.calls[-1]["temperature"] == 1.3
    assert model.calls[-1]["max_length"] == ToyTokenizer.model_max_length  # no max_new_tokens given
    blender.n_generate(model, tokenizer, ["x"], n=2, sampling_mode=None, num_beams=2)
    assert "do_sample" not in model.calls[-1] and model.calls[-1]["num_beams"] == 2


def test_instructions_join_with_a_newline_and_encoder_decoder_output(blender: pairrm.Blender) -> None:
    model, tokenizer = ToyModel(decoder_only=False), ToyTokenizer()
    out = blender.n_generate(model, tokenizer, ["in"], instructions=["Do"], n=2)
    assert tokenizer.calls[0]["prompts"] == ["Do\nin"]
    assert all(len(s) == 7 for s in out[0])  # nothing cut: the output holds no prompt


def test_best_of_n_generate_picks_with_pairrm() -> None:
    blender = load(threads=1)
    inputs = ["Tell me a word.", "Another word?"]
    sampled = blender.n_generate(ToyModel(), ToyTokenizer(), inputs, n=5)
    best = blender.best_of_n_generate(ToyModel(), ToyTokenizer(), inputs, n=5)
    assert best == blender.get_best_of_n(inputs, sampled)
    everything = blender.best_of_n_generate(ToyModel(), ToyTokenizer(), inputs, n=5, pairrm_cmp_type="full", return_all=True)
    assert everything == blender.get_best_of_n(inputs, sampled, pairrm_cmp_type="full", return_all=True)


def test_with_a_tiny_random_hugging_face_causal_lm() -> None:
    torch = pytest.importorskip("torch", reason="torch not installed: best_of_n_generate tested with a toy model only")
    transformers = pytest.importorskip("transformers", reason="transformers not installed: toy model only")
    tokenizers = pytest.importorskip("tokenizers", reason="tokenizers not installed: toy model only")
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[EOS]"] + [f"w{i}" for i in range(61)])}
    core = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    core.decoder = tokenizers.decoders.WordPiece()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]", padding_side="left"
    )
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=len(vocab), n_positions=64, n_embd=16, n_layer=1, n_head=2,
        pad_token_id=0, eos_token_id=2, bos_token_id=2,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    blender = load(threads=1)
    inputs = ["w1 w2 w3", "w4 w5"]
    torch.manual_seed(1)
    sampled = blender.n_generate(model, tokenizer, inputs, n=3, max_new_tokens=4)
    assert len(sampled) == 2 and all(len(s) == 3 and all(isinstance(x, str) for x in s) for s in sampled)
    assert all(x.split() and all(w.startswith("w") for w in x.split()) for s in sampled for x in s if x)
    torch.manual_seed(1)
    everything = blender.best_of_n_generate(model, tokenizer, inputs, n=3, max_new_tokens=4, return_all=True)
    assert everything == blender.get_best_of_n(inputs, sampled, return_all=True)
    best = blender.best_of_n_generate(model, tokenizer, inputs, n=3, max_new_tokens=4)
    assert len(best) == 2 and all(isinstance(x, str) for x in best)
