#!/usr/bin/env python3
"""Build random-weight PairRM checkpoints and record reference goldens for them.

What it makes (under --out, default tests/fixtures/models):
  tiny-backbone/        DeBERTa-v2 config + a tiny SentencePiece model (trained here) + tokenizer_config
  tiny-backbone-lower/  the same tokenizer with do_lower_case and split_by_punct on
  tiny-original/        LLM-Blender layout, model.safetensors, model_name "../tiny-backbone"
  tiny-original-bin/    LLM-Blender layout, pytorch_model.bin, n_tasks 3, model_name "../tiny-backbone-lower"
  tiny-pair-ranker/     llm-blender/pair-ranker's layout: LLM-Blender layout, limits 128/128, pytorch_model.bin
                        holding the `pretrained_model.embeddings.position_ids` buffer older transformers saved
  tiny-hf/              PairRM-hf layout: DeBERTa config with marker ids, model.safetensors, tokenizer.json
  realtok-backbone/     config.json + tokenizer_config.json of a DeBERTa-v3-shaped backbone whose
                        tokenizer is the REAL deberta-v3 spm.model (committed: tests/fixtures/tokenizer/deberta-v3)
  realtok-original/     LLM-Blender layout, model_name "microsoft/deberta-v3-large" resolved through an
                        HF cache (the tests build one from realtok-backbone + the committed spm.model)
Each checkpoint directory gets goldens.json: what the reference (llm-blender 0.0.2 on transformers 4.46.3,
torch 2.5.1) computes for a set of cases, every case scored alone (batch size 1).

The tiny configs have hidden 32, 2 layers, position_buckets 8 (log buckets exercised) and source/candidate
limits 24/16 (truncation exercised). The real-tokenizer one has hidden 8 and PairRM's real limits and
position buckets; its word embeddings are stored as float16 to keep the file small.

Run it with the reference venv (see README, "Regenerating fixtures"):
    /path/to/refvenv/bin/python tools/make_fixtures.py
Other random checkpoints (for fresh goldens): --seed N --out DIR.
"""

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

SPM_SHA256 = "c679fbf93643d19aab7ee10c0b99e460bdbc02fedf34b92b05af343b4af586fd"
REAL_BACKBONE_ID = "microsoft/deberta-v3-large"
MARKERS = ["<|source|>", "<|candidate1|>", "<|candidate2|>", "<|candidate|>"]


def parse_args():
    repo = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=repo / "tests" / "fixtures" / "models")
    p.add_argument("--spm", type=Path, default=repo / "tests" / "fixtures" / "tokenizer" / "deberta-v3" / "spm.model",
                   help="the real deberta-v3 spm.model (default: the committed test fixture)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="*", help="build only these fixtures")
    return p.parse_args()


# ----------------------------------------------------------------------------------------------
# Texts
# ----------------------------------------------------------------------------------------------

CORPUS = """The quick brown fox jumps over the lazy dog.
Hello! How are you doing today? I am fine, thank you.
Please write a short poem about the sea and the sky.
The capital of France is Paris; the capital of Japan is Tokyo.
Python is a programming language. Rust is a systems programming language.
def main():\n    print("hello world")\n    return 0
I love you. I hate you. You are my best friend, and I will always help you.
To make tea, boil water, add the leaves, and wait three minutes before you pour.
Numbers like 1, 2, 3, 42, 1000 and 3.14159 appear in text all the time.
Answer the question: what is the largest planet in the solar system? Jupiter.
The model compares two candidate responses and says which one is better.
Instruction: summarize the following article in one sentence.
Once upon a time there was a little girl who lived in a village near the forest.
Machine learning models learn patterns from data and make predictions.
Good morning, good evening, good night; see you tomorrow and have a nice day!
Café, naïve, résumé, über, señor: accented words are common in many languages.
"""


def tiny_cases():
    """Compare cases for the tiny models: short, long (truncated), odd characters, [SEP] in text."""
    long_src = " ".join(["Please explain in detail why the sky is blue and the sea is green."] * 6)
    long_a = "The sky is blue because of Rayleigh scattering. " * 8
    long_b = "Because the ocean reflects it, and the water absorbs red light. " * 7
    cases = [
        ("", "hello!", "hi!", "f**k off!"),
        ("", "I love you!", "I hate you!", "I love you, too!"),
        ("Answer briefly. ", "What is the capital of France?", "Paris.", "The capital of France is Paris, a city on the Seine."),
        ("", "What is 2+2?", "4", "It is 4."),
        ("", "What is 2+2?", "It is 4.", "4"),
        ("", long_src, "Short answer.", long_b),
        ("", "Short question?", long_a, long_b),
        ("Summarize: ", long_src, long_a, "The sky is blue."),
        ("", "Write a poem.", "Roses are red,\nviolets are blue.", "roses are red violets are blue"),
        ("", "a [SEP] b", "x [SEP] y", "[SEP]"),
        ("", "[CLS] literal [MASK] tokens [PAD] and [UNK]", "yes [MASK]", "no"),
        ("", "   leading and trailing spaces   ", "\ttabs\tand\nnewlines\n", "multiple     spaces"),
        ("", "Café naïve résumé", "ÜBER", "über"),
        ("", "日本語のテキスト", "中文", "emoji 🦙 text"),
        ("", "", "", ""),
        ("", "same", "identical answer", "identical answer"),
        ("", "def f(x):\n    return x*2", "It doubles x.", "It returns x times two, i.e. doubles the input value."),
        ("Be kind. ", "Hello", "Good morning, good evening, good night!", "Hi"),
    ]
    return [dict(instruction=i, source=s, a=a, b=b) for i, s, a, b in cases]


def pair_ranker_cases():
    """The tiny cases plus texts past pair-ranker's 128-token limits."""
    very_long_src = " ".join(["Please explain in detail why the sky is blue and the sea is green."] * 20)
    very_long_a = "The sky is blue because of Rayleigh scattering. " * 30
    very_long_b = "Because the ocean reflects it, and the water absorbs red light. " * 25
    extra = [
        dict(instruction="", source=very_long_src, a=very_long_a, b=very_long_b),
        dict(instruction="Summarize: ", source=very_long_src, a="Short.", b=very_long_b),
        dict(instruction="", source="Short question?", a=very_long_a, b="No."),
    ]
    return tiny_cases() + extra


def tiny_rank_cases():
    return [
        dict(instruction="", source="hello!", candidates=["hi!", "f**k off!", "hello there, how can I help?"]),
        dict(instruction="Answer: ", source="What is 2+2?", candidates=["4", "5", "It is 4.", "four", "4"]),
        dict(instruction="", source="Tell me a story.", candidates=["Once upon a time there was a fox.", "No."]),
        dict(instruction="", source="Only one", candidates=["single candidate"]),
        dict(instruction="", source=" ".join(["long source"] * 30),
             candidates=["a " * 40, "b " * 3, "The quick brown fox jumps over the lazy dog. " * 5, "c"]),
        dict(instruction="", source="dup", candidates=["same", "same", "other", "same"]),
        dict(instruction="", source="Eight candidates for the numpy pairwise sum.",
             candidates=[f"candidate number {k} " + "word " * k for k in range(9)]),
    ]


def conversation_cases():
    return [
        ([("USER", "hello"), ("ASSISTANT", "hi!")], [("USER", "hello"), ("ASSISTANT", "go away")]),
        ([("USER", "What is 2+2?"), ("ASSISTANT", "4"), ("USER", "And 3+3?"), ("ASSISTANT", "6")],
         [("USER", "What is 2+2?"), ("ASSISTANT", "5"), ("USER", "And 3+3?"), ("ASSISTANT", "I don't know")]),
        ([("USER", "Tell me a joke."), ("ASSISTANT", "Why did the chicken cross the road? To get to the other side.")],
         [("USER", "Tell me a joke."), ("ASSISTANT", "No.")]),
    ]


def realtok_cases():
    long_src = ("Explain the history of the Roman Empire, its rise, its government, its wars, and its fall, "
                "with dates and names. ") * 120  # > 1224 tokens: truncated
    long_a = "The Roman Empire began in 27 BC when Augustus became emperor. " * 80
    long_b = "Rome was founded in 753 BC according to legend; the republic came later. " * 90
    cases = [
        ("", "hello!", "hi!", "f**k off!"),
        ("", "I love you!", "I hate you!", "I love you, too!"),
        ("Answer briefly. ", "What is the capital of France?", "Paris.", "The capital of France is Paris."),
        ("", long_src, "Short.", long_b),
        ("", "Short question?", long_a, long_b),
        ("", long_src, long_a, long_b),
        ("", "日本語のテキストと中文と한국어", "ＦＵＬＬＷＩＤＴＨ ① ㍻", "emoji 😀 🦙 and café naïve"),
        ("", "a [SEP] b [CLS] c [MASK]", "  multiple   spaces\tand\nnewlines  ", "you…\u00a0\u00a0"),
        ("", "", "", ""),
    ]
    return [dict(instruction=i, source=s, a=a, b=b) for i, s, a, b in cases]


def realtok_rank_cases():
    return [
        dict(instruction="", source="hello!", candidates=["hi!", "f**k off!", "Hello! How can I help you today?"]),
        dict(instruction="", source="What is 2+2?", candidates=["4", "4", "five"]),
    ]


# ----------------------------------------------------------------------------------------------
# Building checkpoints
# ----------------------------------------------------------------------------------------------

def train_tiny_spm(path: Path, lower: bool):
    import sentencepiece as spm
    text = CORPUS * 3
    if lower:
        text = text.lower()
    with tempfile.TemporaryDirectory() as d:
        corpus = Path(d) / "corpus.txt"
        corpus.write_text(text)
        # Same special pieces and ids as deberta-v3's spm.model; identity normalization keeps the file small
        # (the real-tokenizer fixture covers the precompiled nmt_nfkc charsmap).
        with contextlib.redirect_stderr(io.StringIO()):
            spm.SentencePieceTrainer.train(
                input=str(corpus), model_prefix=str(Path(d) / "m"), vocab_size=700, model_type="unigram",
                pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece="[PAD]", bos_piece="[CLS]",
                eos_piece="[SEP]", unk_piece="[UNK]", byte_fallback=True, normalization_rule_name="identity",
                character_coverage=1.0, hard_vocab_limit=False, num_threads=1, minloglevel=2,
            )
        # Drop the temporary paths the trainer records, so that reruns give identical bytes.
        from sentencepiece import sentencepiece_model_pb2 as pb
        proto = pb.ModelProto()
        proto.ParseFromString((Path(d) / "m.model").read_bytes())
        proto.trainer_spec.input[:] = ["corpus.txt"]
        proto.trainer_spec.model_prefix = "tiny"
        path.write_bytes(proto.SerializeToString())


def deberta_config(vocab_size, hidden, layers, heads, intermediate, buckets, max_pos):
    from transformers import DebertaV2Config
    return DebertaV2Config(
        vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=intermediate, hidden_act="gelu", hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1, max_position_embeddings=max_pos, type_vocab_size=0,
        initializer_range=0.02, layer_norm_eps=1e-7, relative_attention=True, max_relative_positions=-1,
        pad_token_id=0, position_biased_input=False, pos_att_type=["p2c", "c2p"], position_buckets=buckets,
        norm_rel_ebd="layer_norm", share_att_key=True,
    )


def write_backbone(dirpath: Path, cfg, lower: bool, spm_source: Path | None):
    dirpath.mkdir(parents=True, exist_ok=True)
    d = cfg.to_diff_dict()
    d.pop("transformers_version", None)
    (dirpath / "config.json").write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")
    tc = {"do_lower_case": lower, "vocab_type": "spm"}
    if lower:
        tc["split_by_punct"] = True
    (dirpath / "tokenizer_config.json").write_text(json.dumps(tc, indent=2) + "\n")
    if spm_source is not None:
        shutil.copy(spm_source, dirpath / "spm.model")


def random_state(cfg, n_rows, n_tasks, seed):
    """A PairRM state dict (keys as in the checkpoints) with weights scaled so that attention is
    peaked and logits are of order 1: the parity tests then see real numerical work."""
    import torch
    from transformers import DebertaV2Model
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DebertaV2Model(cfg)
    model.resize_token_embeddings(n_rows)
    state = {}
    for name, t in model.state_dict().items():
        if name.endswith("position_ids"):
            continue
        if "LayerNorm.weight" in name:
            v = 1.0 + 0.2 * torch.randn(t.shape, generator=g)
        elif name.endswith("bias"):
            v = 0.2 * torch.randn(t.shape, generator=g)
        elif name.endswith("embeddings.weight"):  # word and rel embeddings
            v = torch.randn(t.shape, generator=g)
        else:  # linear weights [out, in]
            v = torch.randn(t.shape, generator=g) * (1.5 / t.shape[1] ** 0.5)
        state["pretrained_model." + name] = v.contiguous()
    h = cfg.hidden_size
    state["head_layer.1.weight"] = torch.randn(h, 2 * h, generator=g) * (2.0 / (2 * h) ** 0.5)
    state["head_layer.1.bias"] = 0.2 * torch.randn(h, generator=g)
    state["head_layer.4.weight"] = torch.randn(n_tasks, h, generator=g) * (2.0 / h ** 0.5)
    state["head_layer.4.bias"] = 0.2 * torch.randn(n_tasks, generator=g)
    return state


def ranker_config(model_name, source_max, cand_max, n_tasks):
    return {
        "ranker_type": "pairranker", "model_type": "deberta", "model_name": model_name, "cache_dir": None,
        "load_checkpoint": None, "source_maxlength": source_max, "candidate_maxlength": cand_max,
        "n_tasks": n_tasks, "num_pos": 5, "num_neg": 5, "sub_sampling_mode": "all_pair",
        "sub_sampling_ratio": 0.4, "loss_type": "instructgpt", "reduce_type": "linear",
        "inference_mode": "bubble", "drop_out": 0.05, "fp16": False, "device": None,
    }


def save_weights(state, path: Path, fp16_embeddings=False):
    import torch
    from safetensors.torch import save_file
    if path.name == "pytorch_model.bin":
        torch.save(state, path)
    else:
        out = {}
        for k, v in state.items():
            if fp16_embeddings and k.endswith("word_embeddings.weight"):
                v = v.half()
            out[k] = v
        save_file(out, str(path), metadata={"format": "pt"})


def backbone_weights_for_reference(dirpath: Path, cfg):
    """AutoModel.from_pretrained(model_name) in the reference needs backbone weights; the PairRM
    checkpoint overrides all of them, so any random ones do (written to temp copies only)."""
    import torch
    from transformers import DebertaV2Model
    torch.manual_seed(1234)
    DebertaV2Model(cfg).save_pretrained(dirpath, safe_serialization=True)


# ----------------------------------------------------------------------------------------------
# Running the reference
# ----------------------------------------------------------------------------------------------

class Reference:
    """llm_blender.Blender on one checkpoint, every call with batch size 1."""

    def __init__(self, ckpt_dir: Path, cwd: Path):
        import llm_blender
        import torch
        torch.set_num_threads(1)
        old = os.getcwd()
        os.chdir(cwd)  # model_name is resolved relative to the working directory by the reference
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.blender = llm_blender.Blender(blender_config=llm_blender.BlenderConfig(device="cpu", use_tqdm=False))
                self.blender.loadranker(str(ckpt_dir), device="cpu")
        finally:
            os.chdir(old)
        self.captured = []
        self.blender.ranker.pretrained_model.register_forward_pre_hook(self._capture, with_kwargs=True)

    def _capture(self, module, args, kwargs):
        self.captured.append(kwargs["input_ids"][0].tolist())

    def input_ids(self, instruction, source, a, b):
        self.captured.clear()
        self.blender.compare([source], [a], [b], instructions=[instruction], batch_size=1, return_logits=True,
                             mode="[A,B]", disable_tqdm=True)
        assert len(self.captured) == 1
        return self.captured[0]

    def compare(self, case):
        out = {}
        for key, mode in [("logit_ab", "[A,B]"), ("logit_ba_reference", "[B,A]"), ("logit_both", "[A,B]+[B,A]")]:
            v = self.blender.compare([case["source"]], [case["a"]], [case["b"]], instructions=[case["instruction"]],
                                     batch_size=1, return_logits=True, mode=mode, disable_tqdm=True)
            out[key] = float(v[0])
        return out

    def rank(self, case):
        scores = self.blender.rank([case["source"]], [case["candidates"]], instructions=[case["instruction"]],
                                   return_scores=True, batch_size=1, disable_tqdm=True)
        ranks = self.blender.rank([case["source"]], [case["candidates"]], instructions=[case["instruction"]],
                                  batch_size=1, disable_tqdm=True)
        out = {"scores": [float(x) for x in scores[0]], "ranks": [int(x) for x in ranks[0]]}
        if len(case["candidates"]) > 1:
            best = self.blender.get_best_of_n([case["source"]], [case["candidates"]], instructions=[case["instruction"]],
                                              pairrm_cmp_type="full", batch_size=1)
            worst = self.blender.get_worst_of_n([case["source"]], [case["candidates"]], instructions=[case["instruction"]],
                                                pairrm_cmp_type="full", batch_size=1)
            out["best_full"] = best[0]
            out["worst_full"] = worst[0]
        return out

    def rank_with_ref(self, case, ref_mode, ref=None):
        kw = dict(ref_candidates=[ref]) if ref is not None else dict(ref_mode=ref_mode)
        scores = self.blender.rank_with_ref([case["source"]], [case["candidates"]], instructions=[case["instruction"]],
                                            return_scores=True, batch_size=1, **kw)
        ranks = self.blender.rank_with_ref([case["source"]], [case["candidates"]], instructions=[case["instruction"]],
                                           batch_size=1, **kw)
        return {"scores": [float(x) for x in scores[0]], "ranks": [int(x) for x in ranks[0]]}

    def conversation(self, conv_a, conv_b):
        mk = lambda c: [{"role": r, "content": t} for r, t in c]
        v = self.blender.compare_conversations([mk(conv_a)], [mk(conv_b)], batch_size=1, return_logits=True)
        return mk(conv_a), mk(conv_b), float(v[0])


def goldens(ref: Reference, compare_cases, rank_cases, with_extras: bool):
    g = {"generator": generator_string(), "cases": [], "rank": [], "rank_with_ref": [], "conversations": []}
    for c in compare_cases:
        row = dict(c)
        row["input_ids"] = ref.input_ids(c["instruction"], c["source"], c["a"], c["b"])
        row.update(ref.compare(c))
        g["cases"].append(row)
    for c in rank_cases:
        row = dict(c)
        row.update(ref.rank(c))
        g["rank"].append(row)
    if with_extras:
        multi = [c for c in rank_cases if len(c["candidates"]) > 2]
        for c in multi[:3]:
            for mode in ["longest", "shortest", "median_length", "first", "last"]:
                row = dict(c, ref_mode=mode)
                row.update(ref.rank_with_ref(c, mode))
                g["rank_with_ref"].append(row)
            row = dict(c, ref_mode="given", reference="A given reference answer.")
            row.update(ref.rank_with_ref(c, None, ref="A given reference answer."))
            g["rank_with_ref"].append(row)
        for a, b in conversation_cases():
            ca, cb, logit = ref.conversation(a, b)
            g["conversations"].append({"conversation_a": ca, "conversation_b": cb, "logit_both": logit})
    return g


def generator_string():
    import torch
    import transformers
    return f"tools/make_fixtures.py: llm-blender 0.0.2, transformers {transformers.__version__}, torch {torch.__version__}, batch size 1"


def write_json(path: Path, obj):
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------------------------
# The fixtures
# ----------------------------------------------------------------------------------------------

def build_tiny(out: Path, seed: int, only):
    from transformers import AutoTokenizer
    tok_len = {}
    for name, lower in [("tiny-backbone", False), ("tiny-backbone-lower", True)]:
        d = out / name
        # With --only, an existing backbone is kept as it is (the checkpoints built on it stay valid).
        if not (only and name not in only and d.exists()):
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True)
            train_tiny_spm(d / "spm.model", lower)
            cfg0 = deberta_config(1024, 32, 2, 4, 64, 8, 64)
            write_backbone(d, cfg0, lower, None)
        tok = AutoTokenizer.from_pretrained(str(d))
        tok_len[name] = len(tok)
    cfg = deberta_config(1024, 32, 2, 4, 64, 8, 64)

    specs = [
        # name, backbone, weights file, n_tasks, seed offset, limits, extra state entries, cases
        ("tiny-original", "tiny-backbone", "model.safetensors", 1, 1, (24, 16), False, tiny_cases()),
        ("tiny-original-bin", "tiny-backbone-lower", "pytorch_model.bin", 3, 2, (24, 16), False, tiny_cases()),
        # llm-blender/pair-ranker's layout: LLM-Blender's ranker config with its 128/128 limits, a
        # pytorch_model.bin saved with the `position_ids` buffer transformers < 4.31 wrote (the
        # reference loads .bin with strict=False and drops it).
        ("tiny-pair-ranker", "tiny-backbone", "pytorch_model.bin", 3, 5, (128, 128), True, pair_ranker_cases()),
    ]
    for name, backbone, wfile, n_tasks, off, (src_max, cand_max), position_ids, cases in specs:
        if only and name not in only:
            continue
        d = out / name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        n_rows = tok_len[backbone] + len(MARKERS)
        state = random_state(cfg, n_rows, n_tasks, seed * 100 + off)
        if position_ids:
            import torch
            state["pretrained_model.embeddings.position_ids"] = torch.arange(cfg.max_position_embeddings).expand((1, -1))
        save_weights(state, d / wfile)
        write_json(d / "config.json", ranker_config(f"../{backbone}", src_max, cand_max, n_tasks))
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            shutil.copytree(out / backbone, tmp / backbone)
            backbone_weights_for_reference(tmp / backbone, cfg)
            shutil.copytree(d, tmp / name)
            ref = Reference(tmp / name, cwd=tmp / name)
            write_json(d / "goldens.json", goldens(ref, cases, tiny_rank_cases(), with_extras=True))
        print(f"built {name}", file=sys.stderr)

    name = "tiny-hf"
    if not only or name in only:
        build_tiny_hf(out, cfg, seed)


def build_tiny_hf(out: Path, cfg, seed: int):
    """PairRM-hf layout. Goldens: the same Blender pipeline on an equivalent LLM-Blender-layout copy (same
    weights, backbone tokenizer from spm.model), cross-checked against DebertaV2PairRM on the hf files."""
    import torch
    from transformers import AutoTokenizer
    from llm_blender.pair_ranker.pairrm import DebertaV2PairRM
    name = "tiny-hf"
    d = out / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    tok = AutoTokenizer.from_pretrained(str(out / "tiny-backbone"))
    tok.add_tokens(MARKERS)
    ids = tok.convert_tokens_to_ids(MARKERS)
    n_tasks = 2
    state = random_state(cfg, len(tok), n_tasks, seed * 100 + 3)
    hf_cfg = cfg.to_diff_dict()
    hf_cfg.pop("transformers_version", None)
    hf_cfg.update({
        "model_type": "deberta-v2", "architectures": ["DebertaV2PairRM"], "n_tasks": n_tasks, "drop_out": 0.05,
        "vocab_size": len(tok), "source_prefix_id": ids[0], "cand1_prefix_id": ids[1], "cand2_prefix_id": ids[2],
        "cand_prefix_id": ids[3], "sep_token_id": tok.sep_token_id,
        # PairRM-hf leaves the limits to the caller (its README uses 1224/412); recorded here so the
        # tiny model's small limits apply.
        "source_maxlength": 24, "candidate_maxlength": 16,
    })
    write_json(d / "config.json", hf_cfg)
    save_weights(state, d / "model.safetensors")
    tok.save_pretrained(str(d))
    for extra in ["spm.model", "added_tokens.json"]:
        (d / extra).unlink(missing_ok=True)  # the hf layout is read through tokenizer.json

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shutil.copytree(out / "tiny-backbone", tmp / "tiny-backbone")
        backbone_weights_for_reference(tmp / "tiny-backbone", cfg)
        (tmp / "orig").mkdir()
        save_weights(state, tmp / "orig" / "model.safetensors")
        write_json(tmp / "orig" / "config.json", ranker_config("../tiny-backbone", 24, 16, n_tasks))
        ref = Reference(tmp / "orig", cwd=tmp / "orig")
        g = goldens(ref, tiny_cases(), tiny_rank_cases(), with_extras=False)
        g["generator"] += "; hf layout scored through an equivalent LLM-Blender-layout copy, cross-checked with DebertaV2PairRM"

    # Cross-check with the published PairRM-hf model class on the hf files.
    model = DebertaV2PairRM.from_pretrained(str(d)).eval()
    hf_tok = AutoTokenizer.from_pretrained(str(d))
    worst = 0.0
    for row in g["cases"]:
        assert hf_tok.convert_tokens_to_ids(MARKERS) == ids
        with torch.no_grad():
            logit = model(input_ids=torch.tensor([row["input_ids"]]),
                          attention_mask=torch.ones(1, len(row["input_ids"]), dtype=torch.long)).logits[0].item()
        worst = max(worst, abs(logit - row["logit_ab"]))
    assert worst < 1e-5, f"DebertaV2PairRM disagrees with Blender by {worst}"
    g["hf_crosscheck_max_abs_diff"] = worst
    write_json(d / "goldens.json", g)
    print(f"built {name} (DebertaV2PairRM cross-check max |diff| {worst:.2e})", file=sys.stderr)


def build_realtok(out: Path, spm_path: Path, seed: int, cache: Path):
    import hashlib
    if not spm_path.exists():
        sys.exit(f"{spm_path} not found: pass --spm")
    if hashlib.sha256(spm_path.read_bytes()).hexdigest() != SPM_SHA256:
        sys.exit(f"{spm_path} is not the deberta-v3 spm.model (sha256 differs)")
    from transformers import AutoTokenizer
    bb = out / "realtok-backbone"
    if bb.exists():
        shutil.rmtree(bb)
    cfg = deberta_config(128100, 8, 2, 2, 16, 256, 512)
    write_backbone(bb, cfg, False, None)
    name = "realtok-original"
    d = out / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # An HF cache holding the backbone, as `microsoft/deberta-v3-large` would be cached (HF_HUB_CACHE
        # points here: the reference reads it at import).
        snap = cache / "models--microsoft--deberta-v3-large" / "snapshots" / ("0" * 40)
        shutil.copytree(bb, snap)
        shutil.copy(spm_path, snap / "spm.model")
        (cache / "models--microsoft--deberta-v3-large" / "refs").mkdir(exist_ok=True)
        (cache / "models--microsoft--deberta-v3-large" / "refs" / "main").write_text("0" * 40)
        n_rows = len(AutoTokenizer.from_pretrained(str(snap))) + len(MARKERS)
        backbone_weights_for_reference(snap, cfg)
        state = random_state(cfg, n_rows, 1, seed * 100 + 4)
        save_weights(state, d / "model.safetensors", fp16_embeddings=True)
        write_json(d / "config.json", ranker_config(REAL_BACKBONE_ID, 1224, 412, 1))
        ref = Reference(d.resolve(), cwd=tmp)
        g = goldens(ref, realtok_cases(), realtok_rank_cases(), with_extras=False)
        g["note"] = "model_name resolved through an HF cache holding config.json, tokenizer_config.json and the real spm.model"
        write_json(d / "goldens.json", g)
    print(f"built {name}", file=sys.stderr)


def write_bucket_goldens(path: Path):
    """transformers' make_log_bucket_position for r in 0..8192 (it is odd), stored as the breakpoints
    where the bucket changes, for several (bucket_size, max_position)."""
    import torch
    from transformers.models.deberta_v2.modeling_deberta_v2 import make_log_bucket_position
    out = {}
    for bucket, max_pos in [(256, 512), (8, 64), (32, 128), (64, 512), (2, 16), (4, 16), (256, 1024)]:
        r = torch.arange(0, 8193)
        b = make_log_bucket_position(r, bucket, max_pos).to(torch.long).tolist()
        out[f"{bucket}/{max_pos}"] = [[i, v] for i, v in enumerate(b) if i == 0 or v != b[i - 1]]
    write_json(path, {"generator": generator_string(), "range": [0, 8192], "breakpoints": out})


def main():
    args = parse_args()
    random.seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    # The reference must never reach the network; the real-tokenizer fixture reads an HF cache made here.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    tmp_cache = tempfile.mkdtemp()
    # TRANSFORMERS_CACHE is read at import: point it at the cache build_realtok fills.
    os.environ["HF_HUB_CACHE"] = str(Path(tmp_cache) / "hub")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import logging
    logging.disable(logging.WARNING)
    if not args.only:
        write_bucket_goldens(args.out.parent / "log_buckets.json")
    if not args.only or set(args.only) - {"realtok-original"}:
        build_tiny(args.out, args.seed, args.only)
    if not args.only or "realtok-original" in args.only:
        build_realtok(args.out, args.spm, args.seed, Path(tmp_cache) / "hub")
    shutil.rmtree(tmp_cache, ignore_errors=True)


if __name__ == "__main__":
    main()
