#!/usr/bin/env python3
"""Writes tests/data/safetensors_reference.safetensors with the Python safetensors library.

tests/nn/test_safetensors.cpp reads it and checks that hotlap decodes every value exactly, and that
hotlap's writer, given the same records in the same order, produces the same bytes. The values are
simple formulas (repeated in the C++ test) plus a few special values, so nothing here is random.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch safetensors
    /tmp/venv/bin/python tools/make_safetensors_fixture.py

Made with safetensors 0.8.0 and torch 2.15. Keep one metadata entry: the Rust library stores
metadata in a hash map, so the order of several entries is not reproducible.
"""
import os
import sys

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data", "safetensors_reference.safetensors")


def main() -> None:
    tensors = {
        # F32: i * 0.25 - 1 for i in 0..5, shape [2, 3].
        "f32": (torch.arange(6, dtype=torch.float32) * 0.25 - 1.0).reshape(2, 3),
        # F16: largest normal, smallest subnormal (2^-24), -0.5, 1/3 rounded to half, 0, -2.
        "f16": torch.tensor([65504.0, 2.0 ** -24, -0.5, 1.0 / 3.0, 0.0, -2.0], dtype=torch.float16),
        # BF16: i * 1.5 - 4 for i in 0..7 (exact in bf16), shape [2, 2, 2].
        "bf16": (torch.arange(8, dtype=torch.float32) * 1.5 - 4.0).to(torch.bfloat16).reshape(2, 2, 2),
        # I64: values that need all 64 bits.
        "i64": torch.tensor([0, -1, 2**40 + 7, -(2**62)], dtype=torch.int64),
        # A scalar (shape []) and an empty tensor (shape [0, 3]).
        "scalar": torch.tensor(3.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }
    save_file(tensors, OUT, metadata={"format": "pt"})
    with open(OUT, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    print(f"wrote {os.path.normpath(OUT)}: {len(data)} bytes, header {n} bytes:", file=sys.stderr)
    print(data[8 : 8 + n].decode(), file=sys.stderr)


if __name__ == "__main__":
    main()
