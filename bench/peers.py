"""The reduced-precision peers of pairrm: what a user of the reference would try instead.

Used by bench/reference.py (`--variant`); every variant keeps llm_blender's own code path
(tokenization, collation, padding, marker-row gather, head) and changes only how the ranker computes:

- ``f32``: the reference as it loads (llm-blender 0.0.2 on torch, float32).
- ``bf16``: ``ranker.to(torch.bfloat16)``, as a user would cast it. llm_blender's ``compare`` calls
  ``.numpy()`` on the logits, which numpy cannot hold in bfloat16 (TypeError), so one forward hook
  casts the head's output (one number per candidate) back to float32; ``rank`` and
  ``get_best_of_n`` run unchanged.
- ``ort-f32``: the ranker's DeBERTa encoder exported with ``torch.onnx.export`` (dynamic batch and
  sequence axes, the exporter's defaults otherwise: opset 17, constant folding) and run by ONNX
  Runtime (``CPUExecutionProvider``, all graph optimisations, intra-op threads = --threads, inter-op
  threads = 1, sequential execution); it replaces ``ranker.pretrained_model``, so the marker-row
  gather and the head still run in torch float32 (a few rows: negligible).
- ``ort-int8``: that ONNX encoder through ``onnxruntime.quantization.quantize_dynamic`` with its
  defaults (weight_type QInt8, per_channel False, reduce_range False, every supported op type:
  MatMul, and Gather for the embedding table); the same session settings.

Exports are cached under an ONNX directory, keyed by the checkpoint (its config, its weights' size,
mtime and safetensors header) and the torch / transformers / onnxruntime versions, so reruns reuse them.
"""

import gc
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

VARIANTS = ("f32", "bf16", "ort-f32", "ort-int8")
EXPORT_OPSET = 17
# Lengths the exported encoder is checked at (the trace uses another): a frozen shape shows up here.
CHECK_SHAPES = ((1, 300), (2, 97))


def log(msg):
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


def apply(blender, variant, model_dir: Path, onnx_dir, threads: int):
    """Turns the loaded reference ``blender`` into ``variant``; returns a dict describing what was done."""
    if variant == "f32":
        return {"variant": variant}
    if variant == "bf16":
        blender.ranker = blender.ranker.to(torch.bfloat16)
        blender.ranker.head_layer.register_forward_hook(lambda _module, _inputs, output: output.float())
        return {"variant": variant, "cast": "ranker.to(torch.bfloat16); head output cast to float32 for numpy"}
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}: expected one of {', '.join(VARIANTS)}")
    if onnx_dir is None:
        raise SystemExit(f"--variant {variant} needs --onnx-dir (where the exported encoder is cached)")
    paths = export(blender, model_dir, Path(onnx_dir))
    path = paths["f32"] if variant == "ort-f32" else quantize(paths)
    t = time.time()
    encoder = OrtEncoder(path, threads)
    session_seconds = time.time() - t
    # The torch encoder is dropped: from here on only ONNX Runtime holds encoder weights.
    blender.ranker.pretrained_model = encoder
    gc.collect()
    return {"variant": variant, "onnx": str(path), "onnx_bytes": _onnx_bytes(path),
            "session_seconds": session_seconds, "meta": json.loads((path.parent / "meta.json").read_text())}


def _onnx_bytes(path: Path):
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def cache_key(model_dir: Path):
    import onnxruntime
    import transformers

    weights = model_dir / "model.safetensors"
    if not weights.exists():
        raise SystemExit(f"{weights} not found: the ONNX peers need a safetensors PairRM checkpoint")
    h = hashlib.sha256()
    h.update((model_dir / "config.json").read_bytes())
    st = weights.stat()
    h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    with open(weights, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        h.update(f.read(min(n, 1 << 24)))
    h.update(f"torch {torch.__version__} transformers {transformers.__version__} "
             f"onnxruntime {onnxruntime.__version__} opset {EXPORT_OPSET}".encode())
    return h.hexdigest()[:16]


def export(blender, model_dir: Path, onnx_dir: Path):
    """The f32 ONNX encoder of ``blender``'s ranker, exported once per checkpoint and versions."""
    import onnxruntime
    import transformers

    key_dir = onnx_dir / cache_key(model_dir.resolve())
    f32 = key_dir / "encoder-f32.onnx"
    if f32.exists():
        log(f"reusing {f32}")
        return {"dir": key_dir, "f32": f32}
    onnx_dir.mkdir(parents=True, exist_ok=True)
    tmp = key_dir.with_name(key_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    encoder = blender.ranker.pretrained_model.float().eval()
    log(f"exporting the encoder to {f32} (once per checkpoint; a few minutes)")
    t = time.time()
    ids = torch.randint(0, 128000, (1, 64), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        torch.onnx.export(
            encoder, (ids, mask), str(tmp / f32.name),
            input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                          "last_hidden_state": {0: "batch", 1: "sequence"}},
            opset_version=EXPORT_OPSET,
        )
    export_seconds = time.time() - t
    check = check_export(encoder, tmp / f32.name)
    meta = {
        "checkpoint": str(model_dir.resolve()), "torch": torch.__version__, "transformers": transformers.__version__,
        "onnxruntime": onnxruntime.__version__, "opset": EXPORT_OPSET,
        "export": "torch.onnx.export(DebertaV2Model, (input_ids[1,64], attention_mask), dynamic batch/sequence axes)",
        "export_seconds": export_seconds, "f32_check_max_abs_error": check,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    if key_dir.exists():  # another run exported the same model meanwhile
        shutil.rmtree(tmp)
    else:
        tmp.rename(key_dir)
    log(f"exported in {export_seconds:.0f} s; ONNX Runtime f32 vs torch, max |Δhidden| {check}")
    return {"dir": key_dir, "f32": f32}


def check_export(encoder, path: Path):
    """Max |ONNX Runtime − torch| of the last hidden state at shapes other than the traced one;
    exits if they disagree (a shape frozen by the trace)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    errors = {}
    for batch, length in CHECK_SHAPES:
        ids = torch.randint(0, 128000, (batch, length), generator=torch.Generator().manual_seed(length))
        mask = torch.ones_like(ids)
        mask[1:, length // 2:] = 0  # a padded row when batch > 1
        with torch.no_grad():
            want = encoder(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
        got = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
        err = float(np.abs(got - want).max())
        errors[f"{batch}x{length}"] = err
        if not err < 1e-3 * max(1.0, float(np.abs(want).max())):
            raise SystemExit(f"the exported encoder disagrees with torch at batch {batch} × {length} tokens "
                             f"(max |Δ| {err}): the export froze a shape; delete {path.parent} and check the exporter")
    return errors


def quantize(paths):
    """The dynamically quantized (int8) copy of the f32 ONNX encoder, made once."""
    from onnxruntime.quantization import quantize_dynamic

    f32 = paths["f32"]
    int8 = f32.with_name("encoder-int8.onnx")
    if int8.exists():
        log(f"reusing {int8}")
        return int8
    log(f"quantizing to {int8} (quantize_dynamic, default settings)")
    t = time.time()
    tmp = int8.with_name(f"encoder-int8.tmp{os.getpid()}.onnx")
    quantize_dynamic(str(f32), str(tmp))
    tmp.rename(int8)
    meta_path = f32.parent / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["quantize"] = "onnxruntime.quantization.quantize_dynamic(f32, int8) with defaults: weight_type=QInt8, " \
                       "per_channel=False, reduce_range=False, all supported op types"
    meta["quantize_seconds"] = time.time() - t
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    log(f"quantized in {meta['quantize_seconds']:.0f} s")
    return int8


class OrtEncoder(torch.nn.Module):
    """Stands in for the ranker's DeBERTa encoder: ONNX Runtime computes the last hidden state, handed
    back as llm_blender reads it (``outputs.hidden_states[-1]``)."""

    def __init__(self, path: Path, threads: int):
        super().__init__()
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def forward(self, input_ids, attention_mask, output_hidden_states=False, **_):
        out = self.session.run(None, {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()})[0]
        hidden = torch.from_numpy(out)
        return SimpleNamespace(last_hidden_state=hidden, hidden_states=(hidden,))
