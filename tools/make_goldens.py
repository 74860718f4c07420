#!/usr/bin/env python3
"""Generate PyTorch golden data for hotlap's C++ tests.

Dev-only: the output file is committed, and building or testing hotlap never
needs Python or PyTorch. To regenerate it (from the repository root):

    python3 -m venv .venv-goldens
    .venv-goldens/bin/pip install -r tools/requirements-goldens.txt
    .venv-goldens/bin/python tools/make_goldens.py

(A CPU-only torch is enough; add
 --extra-index-url https://download.pytorch.org/whl/cpu to the pip line to avoid
 the CUDA wheels.)

It builds a small CNN in PyTorch with seeded weights and writes, to
tests/data/golden_small_cnn.safetensors, everything needed to reproduce its
forward pass (eval and train mode), MSE loss, backward pass (parameter and
input gradients), BatchNorm running-stat updates, and three 3-step optimizer
runs (SGD momentum, SGD Nesterov, AdamW).

Precision: the initial parameters are created in float32 and stored as those
float32 values; all computation then runs in float64 from exactly those values,
so the reference is exact for the stored inputs. Results are stored cast to
float32.

Layout: hotlap is channels-last. Every 4-D tensor is converted at the edge by
to_hotlap(): activations NCHW -> NHWC and conv weights OIHW -> OHWI (both are
permute(0, 2, 3, 1)); everything else is stored unchanged. Gradients get the
same conversion as the tensor they belong to. See tools/README.md for the
naming convention of the stored tensors.

Deterministic: seeded, single-threaded, and the safetensors header is
canonicalised (safetensors writes __metadata__ in random order), so running the
script twice gives byte-identical files.
"""

import argparse
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from golden_io import write_safetensors

SEED = 1234
N, C_IN, H, W = 4, 3, 16, 16
OPT_STEPS = 3

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "data", "golden_small_cnn.safetensors")

NETWORK_DESC = (
    "conv1(3->8,k3,s1,p1,nobias)-bn1-relu-maxpool(k3,s2,p1)-"
    "conv2(8->16,k3,s2,p1)-bn2-relu-globalavgpool-fc(16->1); "
    "input N=4 C=3 H=W=16; MSELoss(mean)"
)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        # No bias: a bias before batch norm has a zero gradient in exact arithmetic, so AdamW would
        # amplify rounding noise into +-lr steps and the comparison would measure noise.
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 1)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.maxpool(x)
        x = F.relu(self.bn2(self.conv2(x)))
        x = x.mean(dim=(2, 3))  # global average pool -> [N, 16]
        return self.fc(x)


def to_hotlap(t):
    """Convert a PyTorch tensor to hotlap layout, float32, contiguous.

    4-D tensors (NCHW activations, OIHW conv weights) -> NHWC / OHWI.
    Everything else (BN vectors, linear [out, in], biases, losses) unchanged.
    """
    t = t.detach()
    if t.dim() == 4:
        t = t.permute(0, 2, 3, 1)
    return t.to(torch.float32).contiguous().clone()


def stored_state_items(model):
    """(name, tensor) for every parameter and buffer except num_batches_tracked."""
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        yield name, t


def build_initial_state():
    """Seeded float32 initial state_dict, plus input and target (float32, NCHW)."""
    torch.manual_seed(SEED)
    model = SmallCNN()  # PyTorch default init, float32
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            c = bn.num_features
            bn.weight.copy_(1.0 + 0.1 * torch.randn(c))
            bn.bias.copy_(0.1 * torch.randn(c))
            bn.running_mean.copy_(0.1 * torch.randn(c))
            bn.running_var.copy_(0.5 + torch.rand(c))
    x = torch.randn(N, C_IN, H, W)
    target = torch.randn(N, 1) * 0.5 + 3.0
    init_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for k, v in init_state.items():
        if v.is_floating_point():
            assert v.dtype == torch.float32, k
    return init_state, x, target


def model_from(init_state):
    """A fresh float64 model holding exactly the stored float32 initial values."""
    model = SmallCNN().double()
    model.load_state_dict(init_state)  # copy_ casts float32 -> float64 exactly
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output .safetensors path")
    args = ap.parse_args()

    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    out = {}

    def put(name, t):
        assert name not in out, f"duplicate tensor {name}"
        out[name] = to_hotlap(t)

    init_state, x32, target32 = build_initial_state()
    put("input", x32)
    put("target", target32)
    for name, t in init_state.items():
        if not name.endswith("num_batches_tracked"):
            put("init." + name, t)

    x64 = x32.double()
    target64 = target32.double()
    loss_fn = nn.MSELoss()

    # Eval-mode forward from the initial state.
    model = model_from(init_state)
    model.eval()
    with torch.no_grad():
        put("eval.output", model(x64))

    # One train-mode forward + backward from the initial state.
    model = model_from(init_state)
    model.train()
    xin = x64.clone().requires_grad_(True)
    y = model(xin)
    loss = loss_fn(y, target64)
    loss.backward()
    put("train.output", y)
    put("train.loss", loss.reshape(1))
    for name, p in model.named_parameters():
        put("train.grad." + name, p.grad)
    put("train.grad.input", xin.grad)
    for name, b in model.named_buffers():
        if not name.endswith("num_batches_tracked"):
            put("train.after." + name, b)
    losses = {"train": [loss.item()]}

    # Optimizer runs, each from the initial state.
    optimizers = {
        "sgd": lambda ps: torch.optim.SGD(
            ps, lr=0.05, momentum=0.9, weight_decay=1e-3, foreach=False
        ),
        "sgd_nesterov": lambda ps: torch.optim.SGD(
            ps, lr=0.05, momentum=0.9, nesterov=True, dampening=0,
            weight_decay=1e-3, foreach=False,
        ),
        "adamw": lambda ps: torch.optim.AdamW(
            ps, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
            foreach=False,
        ),
    }
    for run, make_opt in optimizers.items():
        model = model_from(init_state)
        model.train()
        opt = make_opt(model.parameters())
        step_losses = []
        for _ in range(OPT_STEPS):
            opt.zero_grad()
            loss = loss_fn(model(x64), target64)
            loss.backward()
            step_losses.append(loss.detach().clone())
            opt.step()
        put(run + ".loss", torch.stack(step_losses))
        for name, t in stored_state_items(model):
            put(run + ".final." + name, t)
        losses[run] = [l.item() for l in step_losses]

    metadata = {
        "torch_version": torch.__version__,
        "generator": "tools/make_goldens.py",
        "network": NETWORK_DESC,
        "layout": "NHWC activations, OHWI conv weights",
    }
    size = write_safetensors(args.out, out, metadata)
    print(f"wrote {args.out}")
    print(f"  {len(out)} tensors, {size} bytes, torch {torch.__version__}")
    for run, ls in losses.items():
        print(f"  {run:13s} loss: " + " ".join(f"{v:.9g}" for v in ls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
