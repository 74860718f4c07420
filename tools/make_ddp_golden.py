#!/usr/bin/env python3
"""The data-parallel golden: PyTorch DistributedDataParallel on two CPU processes (gloo).

Dev-only, like tools/make_goldens.py (its network, seed and initial state): the output file is
committed, and building or testing hotlap never needs Python. From the repository root:

    .venv-goldens/bin/python tools/make_ddp_golden.py      # writes tests/data/golden_ddp_small_cnn.safetensors

Two processes hold the small CNN of make_goldens.py in float64 from its float32 initial state,
wrapped in DistributedDataParallel (gloo backend; batch norm with each process's own statistics,
running statistics broadcast from rank 0 before each forward, DDP's defaults), and take three SGD
steps (lr 0.05, momentum 0.9, weight decay 1e-4) on a global batch of 8: rank r the images
[4r, 4r + 4), its loss the mean squared error over its four. Written (hotlap layout, float32):
input [8, 16, 16, 3], target [8, 1], init.<state>, and rank<r>.final.<state> and rank<r>.loss
(the three losses) for each rank. tests/nn/test_collective.cpp runs the same under mpirun -np 2.
"""

import argparse
import os
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_io import write_safetensors  # noqa: E402
from make_goldens import SmallCNN, build_initial_state, stored_state_items, to_hotlap  # noqa: E402

RANKS = 2
PER_RANK = 4
STEPS = 3
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "data", "golden_ddp_small_cnn.safetensors")


def batch():
    """The global batch: make_goldens.py's seed, eight images."""
    torch.manual_seed(4321)
    x = torch.randn(RANKS * PER_RANK, 3, 16, 16)
    target = torch.randn(RANKS * PER_RANK, 1) * 0.5 + 3.0
    return x, target


def rank_main(rank, init_file, out_dir):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank, world_size=RANKS)
    init_state, _, _ = build_initial_state()
    model = SmallCNN().double()
    model.load_state_dict(init_state)
    ddp = DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    x, target = batch()
    mine = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
    xs, ts = x[mine].double(), target[mine].double()
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = nn.MSELoss()(ddp(xs), ts)
        loss.backward()  # DDP averages the gradients over the ranks here
        opt.step()
        losses.append(loss.item())
    out = {f"rank{rank}.final.{name}": to_hotlap(t) for name, t in stored_state_items(model)}
    out[f"rank{rank}.loss"] = torch.tensor(losses, dtype=torch.float32)
    torch.save(out, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output .safetensors path")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(rank_main, args=(os.path.join(tmp, "init"), tmp), nprocs=RANKS, join=True)
        out = {}
        for r in range(RANKS):
            out.update(torch.load(os.path.join(tmp, f"rank{r}.pt")))
    init_state, _, _ = build_initial_state()
    x, target = batch()
    out["input"] = to_hotlap(x)
    out["target"] = to_hotlap(target)
    for name, t in init_state.items():
        if not name.endswith("num_batches_tracked"):
            out["init." + name] = to_hotlap(t)
    size = write_safetensors(args.out, out, {
        "generator": "tools/make_ddp_golden.py",
        "torch": torch.__version__,
        "network": "make_goldens.py's SmallCNN, float64; DDP on 2 gloo processes, 4 images each",
        "optimizer": "SGD lr 0.05 momentum 0.9 weight_decay 1e-4, 3 steps",
    })
    print(f"wrote {args.out} ({size} bytes, {len(out)} tensors)")


if __name__ == "__main__":
    main()
