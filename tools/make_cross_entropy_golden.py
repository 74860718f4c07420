#!/usr/bin/env python3
"""The cross-entropy golden: PyTorch's F.cross_entropy on a few sets of logits and labels.

Dev-only (see tools/README.md for the virtual environment). Writes
tests/data/golden_cross_entropy.safetensors, which tests/nn/test_golden_pytorch.cpp
holds hotlap's ops::cross_entropy to:

  CASE.logits   float32 [rows, classes], the input as hotlap receives it
  CASE.labels   float32 [rows], class indices (hotlap stores labels as floats)
  CASE.loss     float32 [1], F.cross_entropy(logits, labels, label_smoothing=e), mean
  CASE.grad     float32 [rows, classes], d loss / d logits
  CASE.smoothing float32 [1], the label smoothing e

computed in float64 from the float32 logits, so the reference is exact for the stored
inputs.

Deterministic: seeded, one thread, canonical header (golden_io.py).
"""

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_io import write_safetensors  # noqa: E402

# name: (rows, classes, logit scale, label smoothing)
CASES = {
    "small": (4, 10, 3.0, 0.0),
    "smoothed": (6, 5, 3.0, 0.1),
    "far_apart": (3, 4, 200.0, 0.0),  # exp overflows without the max shift
    "imagenet": (8, 1000, 5.0, 0.1),  # the reference recipe's head and smoothing
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--out", default=os.path.join(root, "tests", "data", "golden_cross_entropy.safetensors"))
    args = parser.parse_args()
    torch.manual_seed(2024)
    torch.set_num_threads(1)
    out, metadata = {}, {"generator": "tools/make_cross_entropy_golden.py", "torch_version": torch.__version__}
    for name, (rows, classes, scale, smoothing) in CASES.items():
        logits32 = (torch.rand(rows, classes) * 2 - 1) * scale
        labels = torch.randint(0, classes, (rows,))
        logits = logits32.double().requires_grad_()
        loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        loss.backward()
        out[name + ".logits"] = logits32.contiguous()
        out[name + ".labels"] = labels.float()
        out[name + ".loss"] = loss.detach().float().reshape(1)
        out[name + ".grad"] = logits.grad.float().contiguous()
        out[name + ".smoothing"] = torch.tensor([smoothing], dtype=torch.float32)
        print(f"{name}: [{rows}, {classes}] smoothing {smoothing}: loss {loss.item():.6f}")
    size = write_safetensors(args.out, out, metadata)
    print(f"wrote {args.out}: {len(out)} tensors, {size} bytes")


if __name__ == "__main__":
    main()
