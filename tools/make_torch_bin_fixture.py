#!/usr/bin/env python3
"""Make the tiny `pytorch_model.bin`-style fixtures for the checkpoint reader's tests.

Run with the reference environment (torch 2.x):

    /work/refvenv/bin/python tools/make_torch_bin_fixture.py [OUT_DIR]

OUT_DIR defaults to `tests/fixtures/torch-bin` next to this script's parent. The output is
deterministic (fixed values, no randomness): with torch 2.5.1 a rerun reproduces the files byte
for byte.

Files written:
- `tiny.bin`: torch.save of a state dict (an OrderedDict with `_metadata`, as `module.state_dict()`
  gives) in torch's zip format with the default pickle protocol (2). It holds F32, F16 and BF16
  tensors, a view with a storage offset sharing its storage with another entry, a 0-dim tensor, an
  empty tensor, a size-1 dimension with an unusual stride (still contiguous), an `nn.Parameter`
  (`torch._utils._rebuild_parameter`), a transposed (non-contiguous) tensor and an int64 tensor.
- `tiny-proto4.bin`: the same dict saved with `pickle_protocol=4` (FRAME, SHORT_BINUNICODE,
  MEMOIZE, STACK_GLOBAL opcodes).
- `legacy.bin`: the same dict in torch's legacy (pre-1.6, non-zip) format, which the reader rejects.
- `expected.json`: for every entry of the dict: dtype, shape, whether the reader must accept it, and
  the expected values as f32 (row-major, after converting F16/BF16 to f32).
"""

import collections
import json
import os
import sys

import torch


def state_dict():
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.5, -1.25, 2.0], [3.5, -0.125, 1e-3]]))
        lin.bias.copy_(torch.tensor([0.25, -4.0]))
    sd = collections.OrderedDict()
    for k, v in lin.state_dict().items():
        sd["head_layer.1." + k] = v
    sd._metadata = lin.state_dict()._metadata
    base = torch.arange(10, dtype=torch.float32) * 0.5 - 1.0
    sd["view"] = base[2:8].view(2, 3)  # storage offset 2, shares its storage with "base"
    sd["base"] = base
    sd["half"] = torch.tensor([[1.0, -2.5], [65504.0, 6.1035e-05]], dtype=torch.float16)
    sd["bf16"] = torch.tensor([1.0, -3.140625, 1e30, -1e-30], dtype=torch.bfloat16)
    sd["scalar"] = torch.tensor(7.25)
    sd["empty"] = torch.zeros(0, 4)
    sd["column"] = torch.arange(3, dtype=torch.float32)[:, None]  # shape [3, 1], stride (1, 1)
    sd["param"] = torch.nn.Parameter(torch.tensor([[1.5, 2.5]]), requires_grad=False)
    sd["transposed"] = torch.arange(6, dtype=torch.float32).reshape(2, 3).t()  # stride (1, 3)
    sd["position_ids"] = torch.arange(4, dtype=torch.int64)[None, :]
    return sd


REJECTED = {"transposed": "not contiguous", "position_ids": "dtype"}


def expected(sd):
    out = {}
    for k, v in sd.items():
        entry = {
            "dtype": str(v.dtype).replace("torch.", ""),
            "shape": list(v.shape),
            "ok": k not in REJECTED,
        }
        if k in REJECTED:
            entry["error_contains"] = REJECTED[k]
        else:
            entry["values"] = [float(x) for x in v.detach().to(torch.float32).reshape(-1).tolist()]
        out[k] = entry
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "fixtures", "torch-bin")
    os.makedirs(out_dir, exist_ok=True)
    sd = state_dict()
    torch.save(sd, os.path.join(out_dir, "tiny.bin"))
    torch.save(sd, os.path.join(out_dir, "tiny-proto4.bin"), pickle_protocol=4)
    torch.save(sd, os.path.join(out_dir, "legacy.bin"), _use_new_zipfile_serialization=False)
    # Check that torch reads back what the expectations say.
    back = torch.load(os.path.join(out_dir, "tiny.bin"), map_location="cpu", weights_only=True)
    assert list(back.keys()) == list(sd.keys())
    assert not back["transposed"].is_contiguous() and back["view"].storage_offset() == 2
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump({"torch_version": torch.__version__, "tensors": expected(sd)}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
