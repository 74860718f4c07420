#!/usr/bin/env python3
"""Generate PyTorch golden data and torchvision-format checkpoint fixtures for hotlap's ResNets.

Dev-only: the output files are committed, and building or testing hotlap never
needs Python or PyTorch. To regenerate them (from the repository root):

    python3 -m venv .venv-goldens
    .venv-goldens/bin/pip install -r tools/requirements-goldens.txt
    .venv-goldens/bin/python tools/make_resnet_goldens.py

Writes, under tests/data/ (or --out-dir):

  golden_resnet18.safetensors, golden_resnet50.safetensors
      ResNet-18 / ResNet-50 (torchvision topology, num_classes=1 regression
      head) with hash-initialised weights: input, target, eval and train
      outputs, MSE loss, and 32 samples + the L2 norm of every parameter
      gradient (in training and in eval mode), of every BatchNorm buffer
      after one training forward, and of
      every parameter and buffer after 2 SGD-momentum steps; and for each
      training-mode and SGD result, "<key>.fp32_error": how far PyTorch's own
      float32 evaluations (eight layouts and thread counts) land from float64,
      the envelope the C++ test scales its tolerance by.
  tv_resnet18_w8_f32.safetensors, tv_resnet50_w8_f16.safetensors,
  tv_resnet50_w8_bf16.safetensors
      Narrow (stem width 8) checkpoints in exactly the format torchvision/timm
      users have: the PyTorch state_dict (NCHW/OIHW, int64
      num_batches_tracked), saved with safetensors.torch.save_file.

Weights are not seeded from torch's RNG: every value is a hash of the tensor's
name and flat index (see hash_uniform below and tests/hash_init.h), so the C++
tests can rebuild the 25 million ResNet-50 weights themselves and the goldens
need to store only outputs and samples.

The ResNet classes are defined here, following torchvision's
torchvision/models/resnet.py (0.29.2) line for line (no torchvision build
matching torch 2.15 was available). `--check-torchvision` compares them
against an installed torchvision: identical state_dict names and shapes, and
bitwise identical outputs from identical weights.

Precision: the initial values are computed in float64 and rounded to float32
once; all PyTorch computation then runs in float64 from exactly those float32
values, and results are stored rounded to float32.

Deterministic: no RNG is involved, one thread, deterministic algorithms, and
the safetensors header is canonicalised (safetensors writes __metadata__ in
random order), so two runs give byte-identical files.
"""

import argparse
import hashlib
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from golden_io import write_safetensors

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT_DIR = os.path.join(REPO_ROOT, "tests", "data")
GENERATOR = "tools/make_resnet_goldens.py"
TORCHVISION_REF = "torchvision 0.29.2 torchvision/models/resnet.py"

N, C_IN, H, W = 2, 3, 64, 64
N_SAMPLES = 32
SGD_STEPS = 2
# Note: with this lr the regression head overshoots (fc curvature ~ |fc input|^2, about 440 for
# ResNet-18 and 2900 for ResNet-50), so sgd.loss[1] is far above sgd.loss[0]. Still an exact
# reference for the arithmetic; see tools/README.md.
SGD_ARGS = dict(lr=1e-4, momentum=0.9, weight_decay=1e-4)
FIXTURE_WIDTH = 8
FIXTURE_CLASSES = 10
FIXTURE_NUM_BATCHES_TRACKED = 7

# ---------------------------------------------------------------------------------------------
# Hash initialisation: bit-identical to tests/hash_init.h.
# ---------------------------------------------------------------------------------------------

M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for c in s.encode("utf-8"):
        h ^= c
        h = (h * 0x100000001B3) & M64
    return h


def splitmix64(x):
    """Scalar splitmix64 on a Python int (masked to 64 bits)."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def hash_uniform(name, i):
    """Uniform in [-1, 1): top 53 bits of splitmix64(fnv1a64(name) + i), as a double."""
    return float(splitmix64((fnv1a64(name) + i) & M64) >> 11) * 2.0**-52 - 1.0


def sample_index(name, j, n):
    return splitmix64(((fnv1a64(name) ^ 0x5A5A5A5A5A5A5A5A) + j) & M64) % n


def _splitmix64_np(x):
    """Vectorised splitmix64 on a uint64 array (numpy wraps modulo 2^64)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hash_uniform_array(name, n):
    """float64 array [hash_uniform(name, i) for i in range(n)]."""
    x = np.arange(n, dtype=np.uint64) + np.uint64(fnv1a64(name))
    top53 = _splitmix64_np(x) >> np.uint64(11)  # < 2^53: converts to float64 exactly
    return top53.astype(np.float64) * 2.0**-52 - 1.0


def check_hash_test_vectors():
    """The test vectors from tests/hash_init.h's C++; also scalar == vectorised."""
    assert fnv1a64("conv1.weight") == 7611815837976482388
    assert hash_uniform("conv1.weight", 0) == 0.090149957834289474
    assert hash_uniform("conv1.weight", 1) == -0.8503704580602125
    assert hash_uniform("conv1.weight", 7) == -0.26210639668773128
    assert hash_uniform("fc.bias", 0) == -0.044697386383736326
    assert sample_index("layer1.0.conv1.weight", 3, 4096) == 19
    for name in ("conv1.weight", "fc.bias", "input"):
        v = hash_uniform_array(name, 1000)
        assert all(v[i] == hash_uniform(name, i) for i in range(1000)), name
        assert v.min() >= -1.0 and v.max() < 1.0


def hash_tensor(name, shape, fn):
    """float32 tensor of `shape` (PyTorch layout) with value fn(u_i) at flat index i, where
    u_i = hash_uniform(name, i); fn is evaluated in float64 and rounded to float32 once."""
    n = math.prod(shape)
    u = hash_uniform_array(name, n)
    return torch.from_numpy(fn(u).astype(np.float32)).reshape(shape)


def last_bn_of_block(module_name, bottleneck):
    """bn3 of a Bottleneck or bn2 of a BasicBlock: the batch norm at the end of a residual branch."""
    parts = module_name.split(".")
    return (len(parts) == 3 and parts[0].startswith("layer") and
            parts[2] == ("bn3" if bottleneck else "bn2"))


def hash_init_(model, num_batches_tracked=None):
    """Set every floating state_dict entry of `model` (float32) with the hash formulas:

      Conv2d weight [O,I,kh,kw]: u * sqrt(6 / (I*kh*kw))
      BatchNorm2d:  weight 1 + 0.1*u,  bias 0.1*u,  running_mean 0.1*u,  running_var 0.75 + 0.25*u
                    (the last batch norm of each residual block, bn3 in a Bottleneck and bn2 in a
                    BasicBlock: weight 0.2 * (1 + 0.1*u))
      Linear:       weight and bias  u / sqrt(in_features)

    num_batches_tracked is left alone unless `num_batches_tracked` is given.
    """
    formulas = {}
    bottleneck = any(isinstance(m, Bottleneck) for m in model.modules())
    for mname, m in model.named_modules():
        p = mname + "." if mname else ""
        if isinstance(m, nn.Conv2d):
            assert m.bias is None and m.groups == 1
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            s = math.sqrt(6.0 / fan_in)
            formulas[p + "weight"] = lambda u, s=s: u * s
        elif isinstance(m, nn.BatchNorm2d):
            formulas[p + "weight"] = lambda u: 1.0 + 0.1 * u
            if last_bn_of_block(mname, bottleneck):
                # The last batch norm of each residual block starts small (as torchvision's
                # zero_init_residual does, but not zero): each block then adds a small branch to
                # the residual stream. With gamma ~ 1, a random ResNet-50 at 64x64 with batch 2 is
                # so ill-conditioned that PyTorch's own float32 gradients differ from float64 by up to
                # 300% of a tensor's RMS; with 0.2 the difference is 3e-4, so a 1e-3 tolerance tests
                # hotlap rather than the conditioning of the test.
                formulas[p + "weight"] = lambda u: 0.2 * (1.0 + 0.1 * u)
            formulas[p + "bias"] = lambda u: 0.1 * u
            formulas[p + "running_mean"] = lambda u: 0.1 * u
            formulas[p + "running_var"] = lambda u: 0.75 + 0.25 * u
        elif isinstance(m, nn.Linear):
            s = math.sqrt(m.in_features)
            formulas[p + "weight"] = lambda u, s=s: u / s
            formulas[p + "bias"] = lambda u, s=s: u / s
    sd = model.state_dict()
    with torch.no_grad():
        for name, t in sd.items():
            if name.endswith("num_batches_tracked"):
                if num_batches_tracked is not None:
                    t.fill_(num_batches_tracked)
                continue
            assert t.dtype == torch.float32, name
            t.copy_(hash_tensor(name, tuple(t.shape), formulas.pop(name)))
    assert not formulas, f"formulas for non-state entries: {sorted(formulas)}"


# ---------------------------------------------------------------------------------------------
# ResNet, following torchvision/models/resnet.py (0.29.2) exactly, with the stem width as a
# parameter (64 = torchvision). Options hotlap does not use (groups, width_per_group, dilation,
# norm_layer, zero_init_residual) are dropped; the module structure, registration order (hence
# state_dict order) and forward are torchvision's.
# ---------------------------------------------------------------------------------------------


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class Bottleneck(nn.Module):
    # ResNet V1.5: the stride is on the 3x3 conv (conv2), as in torchvision.
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        width = planes
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu(out)
        out = self.conv3(out)
        out = self.bn3(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000, width=64):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width * block.expansion, num_classes)
        # torchvision's kaiming/constant init is omitted: hash_init_ overwrites every value.

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.fc(x)
        return x


ARCHS = {
    18: (BasicBlock, [2, 2, 2, 2]),
    50: (Bottleneck, [3, 4, 6, 3]),
}
# Independent check of the definitions without torchvision: torchvision's published parameter
# counts (1000 classes) and state_dict sizes (entries excluding num_batches_tracked).
TV_PARAM_COUNT = {18: 11_689_512, 50: 25_557_032}
TV_STATE_ENTRIES = {18: 102, 50: 267}
# sha256 of the full state_dict listing ("name shape dtype" lines, num_batches_tracked included)
# of torchvision 0.29.2's resnet18() / resnet50(), recorded with --check-torchvision.
TV_STATE_SHA256 = {
    18: "fe61a0e93b500b67f39d8299d1e4438993b843902b588991f8eff3ccc9b5c8c6",
    50: "b14db24e2f589cebc7388b400a9dd45db559f2b3502c8d39b445bf0fc7d8b08c",
}


def resnet(depth, num_classes=1000, width=64):
    block, layers = ARCHS[depth]
    return ResNet(block, layers, num_classes=num_classes, width=width)


def shape_str(shape):
    return ",".join(str(d) for d in shape)


def state_listing(model):
    """[(name, shape)] of the state_dict without num_batches_tracked, in state_dict order."""
    return [
        (k, tuple(v.shape))
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    ]


def state_sha256(model):
    text = "\n".join(
        f"{k} {shape_str(v.shape)} {v.dtype}" for k, v in model.state_dict().items()
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_definitions():
    """Without torchvision: the width-64 models have torchvision's exact state_dict listing."""
    for depth in ARCHS:
        m = resnet(depth)
        assert state_sha256(m) == TV_STATE_SHA256[depth], depth
        assert sum(p.numel() for p in m.parameters()) == TV_PARAM_COUNT[depth], depth
        assert len(state_listing(m)) == TV_STATE_ENTRIES[depth], depth


def check_against_torchvision():
    """Compare with an installed torchvision: names, shapes, and outputs from the same weights."""
    import torchvision

    print(f"checking against torchvision {torchvision.__version__}")
    tv_ctor = {18: torchvision.models.resnet18, 50: torchvision.models.resnet50}
    for depth in ARCHS:
        assert [(k, tuple(v.shape)) for k, v in resnet(depth).state_dict().items()] == [
            (k, tuple(v.shape)) for k, v in tv_ctor[depth]().state_dict().items()
        ], depth
        assert state_sha256(tv_ctor[depth]()) == TV_STATE_SHA256[depth], depth
        x = hash_input().double()
        for num_classes in (1, 1000):
            ours = resnet(depth, num_classes=num_classes)
            hash_init_(ours)
            tv = tv_ctor[depth](num_classes=num_classes)
            tv.load_state_dict(ours.state_dict())
            ours.double()
            tv.double()
            for train in (False, True):
                ours.train(train)
                tv.train(train)
                with torch.no_grad():
                    assert torch.equal(ours(x), tv(x)), (depth, num_classes, train)
        print(f"  resnet{depth}: state_dict and outputs identical")


# ---------------------------------------------------------------------------------------------
# Goldens
# ---------------------------------------------------------------------------------------------


def to_hotlap(t):
    """hotlap layout: 4-D tensors (NCHW activations, OIHW conv weights) -> permute(0,2,3,1)."""
    t = t.detach()
    if t.dim() == 4:
        t = t.permute(0, 2, 3, 1)
    return t.contiguous()


def hash_input():
    """x [N,3,64,64] NCHW float32: x = hash_uniform("input", i) over the NCHW flat index."""
    return hash_tensor("input", (N, C_IN, H, W), lambda u: u)


def hash_target():
    return hash_tensor("target", (N, 1), lambda u: 3.0 + u)


# The float32 configurations whose spread around the float64 reference says what fp32 can achieve
# (the ".fp32_error" entries): PyTorch's CPU convolutions and reductions in NCHW and channels-last
# layouts on 1 to 4 threads, eight correct evaluation orders.
FP32_CONFIGS = [(fmt, threads) for fmt in ("contiguous", "channels_last") for threads in (1, 2, 3, 4)]


def sampled(key, flat):
    """The N_SAMPLES values of hotlap-layout `flat` that the golden stores for `key`: at the flat
    indices sample_index(key, j, numel), as tests/hash_init.h computes them."""
    n = flat.numel()
    return flat[torch.tensor([sample_index(key, j, n) for j in range(N_SAMPLES)], dtype=torch.int64)]


def sampled_error(key, got, want):
    """What the C++ test measures (check_sampled): the largest error at the 32 sampled indices over
    the tensor's RMS, and the error of the L2 norm over the norm, both against the float64 `want`."""
    w = to_hotlap(want.to(torch.float64)).reshape(-1)
    v = to_hotlap(got.to(torch.float64)).reshape(-1)
    norm = torch.linalg.vector_norm(w).item()
    rms = norm / math.sqrt(w.numel())
    sample_err = (sampled(key, v) - sampled(key, w)).abs().max().item() / max(rms, 1e-30)
    norm_err = abs(torch.linalg.vector_norm(v).item() - norm) / max(norm, 1e-30)
    return [sample_err, norm_err]


def max_rel_error(got, want):
    """tests/test_util.h max_rel_error: max |got - want| over max |want|."""
    g, w = got.to(torch.float64).reshape(-1), want.to(torch.float64).reshape(-1)
    return [(g - w).abs().max().item() / max(w.abs().max().item(), 1e-30)]


def training_results(depth, init_state, x, target, dtype, fmt):
    """Training-mode output, loss, gradients and buffers, then the losses and state over SGD_STEPS
    steps, in `dtype` with activations and weights in memory format `fmt`: {key: tensor}."""
    memory_format = torch.channels_last if fmt == "channels_last" else torch.contiguous_format

    def model():
        m = resnet(depth, num_classes=1).to(dtype)
        m.load_state_dict(init_state)
        return m.to(memory_format=memory_format).train()

    x = x.to(dtype).contiguous(memory_format=memory_format)
    target = target.to(dtype)
    loss_fn = nn.MSELoss()
    r = {}
    m = model()
    y = m(x)
    loss = loss_fn(y, target)
    loss.backward()
    r["train.output"], r["train.loss"] = y.detach(), loss.detach().reshape(1)
    for name, p in m.named_parameters():
        r["train.grad." + name] = p.grad.detach()
    for name, b in m.named_buffers():
        if not name.endswith("num_batches_tracked"):
            r["train.after." + name] = b.detach()
    m = model()
    opt = torch.optim.SGD(m.parameters(), foreach=False, **SGD_ARGS)
    losses = []
    for _ in range(SGD_STEPS):
        opt.zero_grad()
        loss = loss_fn(m(x), target)
        loss.backward()
        losses.append(loss.detach().clone())
        opt.step()
    r["sgd.loss"] = torch.stack(losses)
    for name, t in m.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            r["sgd.final." + name] = t.detach()
    return r


def put_fp32_envelope(out, depth, init_state, x32, target32, ref):
    """For every training-mode and SGD result, "<key>.fp32_error": the largest error of PyTorch's own
    float32 evaluations (FP32_CONFIGS) against float64, measured as the C++ test measures hotlap's
    (sampled values and norm, or max relative error for outputs and losses). At 64x64 and batch 2 a
    training-mode ResNet-50 is ill-conditioned: a ReLU input near zero lands on either side under a
    change of rounding, and the batch norms over as few as 8 values a channel amplify that on the
    way back to the stem, so correct fp32 orders differ from float64 by up to several percent of a
    tensor's RMS in the early layers' gradients, and by ~1e-5 in others. The C++ test holds hotlap
    to a small multiple of this envelope per tensor, which is what fp32 can achieve there. `ref`:
    training_results in float64."""
    threads = torch.get_num_threads()
    envelope = {}
    for fmt, n in FP32_CONFIGS:
        torch.set_num_threads(n)
        got = training_results(depth, init_state, x32, target32, torch.float32, fmt)
        for key, want in ref.items():
            err = (max_rel_error(got[key], want) if key in ("train.output", "train.loss", "sgd.loss")
                   else sampled_error(key, got[key], want))
            envelope[key] = [max(a, b) for a, b in zip(envelope.get(key, [0.0] * len(err)), err)]
    torch.set_num_threads(threads)
    for key, err in envelope.items():
        out[key + ".fp32_error"] = torch.tensor(err, dtype=torch.float32)
    worst = sorted(envelope.items(), key=lambda kv: -kv[1][0])[:3]
    print("  fp32 envelope, largest: " + ", ".join(f"{k} {v[0]:.2e}" for k, v in worst))


def make_golden(depth, path):
    init_model = resnet(depth, num_classes=1)
    hash_init_(init_model)
    init_state = {k: v.detach().clone() for k, v in init_model.state_dict().items()}

    def model_from_init():
        m = resnet(depth, num_classes=1).double()
        m.load_state_dict(init_state)  # float32 -> float64 exactly
        return m

    out = {}

    def put(name, t):
        assert name not in out, f"duplicate tensor {name}"
        out[name] = to_hotlap(t).to(torch.float32).contiguous().clone()

    def put_summary(key, t):
        """key.sample [32]: values at hotlap-layout flat indices sample_index(key, j, numel);
        key.norm [1]: float64 L2 norm of the whole tensor."""
        flat = to_hotlap(t.to(torch.float64)).reshape(-1)
        put(key + ".sample", sampled(key, flat))
        put(key + ".norm", torch.linalg.vector_norm(flat).reshape(1))

    x32, target32 = hash_input(), hash_target()
    put("input", x32)
    put("target", target32)
    x64, target64 = x32.double(), target32.double()
    loss_fn = nn.MSELoss()

    model = model_from_init()
    model.eval()
    with torch.no_grad():
        eval_out = model(x64)
    put("eval.output", eval_out)

    # Eval-mode gradients (frozen batch-norm statistics). Unlike the training-mode ones they are
    # well-conditioned: no batch-norm backward over a few values a channel amplifies rounding, so
    # every correct fp32 evaluation order lands within ~1e-5 of them (see the C++ test).
    model = model_from_init()
    model.eval()
    loss_fn(model(x64), target64).backward()
    for name, p in model.named_parameters():
        put_summary("eval.grad." + name, p.grad)

    # Training mode, and SGD_STEPS steps from the same start: one definition of the work for the
    # float64 reference and the float32 envelope (training_results).
    ref = training_results(depth, init_state, x32, target32, torch.float64, "contiguous")
    for key in ("train.output", "train.loss", "sgd.loss"):
        put(key, ref[key])
    for key, t in ref.items():
        if key.startswith(("train.grad.", "train.after.", "sgd.final.")):
            put_summary(key, t)
    y, train_loss, step_losses = ref["train.output"], ref["train.loss"].item(), ref["sgd.loss"]
    assert step_losses[0].item() == train_loss

    put_fp32_envelope(out, depth, init_state, x32, target32, ref)

    tv_state = "\n".join(f"{k} {shape_str(s)}" for k, s in state_listing(resnet(depth)))
    metadata = {
        "torch_version": torch.__version__,
        "torchvision_version": "not used: ResNet defined in the generator, following "
        + TORCHVISION_REF,
        "generator": GENERATOR,
        "network": f"torchvision resnet{depth}, num_classes=1 (fc regression head); "
        f"input N={N} C={C_IN} H=W={H}; MSELoss(mean); hash-initialised weights",
        "layout": "NHWC activations, OHWI conv weights",
        "torchvision_state": tv_state,
    }
    size = write_safetensors(path, out, metadata)
    print(f"wrote {path}: {len(out)} tensors, {size} bytes")
    print(f"  eval.output:  " + " ".join(f"{v:.9g}" for v in eval_out.reshape(-1).tolist()))
    print(f"  train.output: " + " ".join(f"{v:.9g}" for v in y.detach().reshape(-1).tolist()))
    print(f"  train.loss:   {train_loss:.9g}")
    print(f"  sgd.loss:     " + " ".join(f"{l:.9g}" for l in step_losses.tolist()))


# ---------------------------------------------------------------------------------------------
# torchvision-format checkpoint fixtures
# ---------------------------------------------------------------------------------------------


def make_fixture(depth, dtype, path):
    model = resnet(depth, num_classes=FIXTURE_CLASSES, width=FIXTURE_WIDTH)
    hash_init_(model, num_batches_tracked=FIXTURE_NUM_BATCHES_TRACKED)
    sd = {}
    for k, v in model.state_dict().items():
        v = v.detach().clone()
        if v.is_floating_point():
            v = v.to(dtype)  # float32 -> dtype, like model.half() / model.bfloat16()
        else:
            assert v.dtype == torch.int64 and k.endswith("num_batches_tracked"), k
        sd[k] = v.contiguous()
    metadata = {
        "format": "pt",
        "generator": GENERATOR,
        "width": str(FIXTURE_WIDTH),
        "network": f"torchvision resnet{depth} topology with stem width {FIXTURE_WIDTH} "
        f"(planes {FIXTURE_WIDTH},{2 * FIXTURE_WIDTH},{4 * FIXTURE_WIDTH},{8 * FIXTURE_WIDTH}), "
        f"num_classes={FIXTURE_CLASSES}; hash-initialised, num_batches_tracked="
        f"{FIXTURE_NUM_BATCHES_TRACKED}; PyTorch layout (OIHW)",
    }
    size = write_safetensors(path, sd, metadata)
    print(f"wrote {path}: {len(sd)} tensors, {size} bytes")


def check_export(path):
    """Loads a file written by `hotlap convert CHECKPOINT OUT` (PyTorch format) into the PyTorch
    ResNet it describes with load_state_dict(strict=True), and runs it once in eval mode."""
    from safetensors.torch import load_file

    state = load_file(path)
    width = state["conv1.weight"].shape[0]
    num_classes = state["fc.weight"].shape[0]
    blocks3 = len({k.split(".")[1] for k in state if k.startswith("layer3.")})
    bottleneck = "layer1.0.conv3.weight" in state
    depth = {(False, 2): 18, (False, 6): 34, (True, 6): 50, (True, 23): 101}[(bottleneck, blocks3)]
    model = resnet(depth, num_classes=num_classes, width=width)
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 64, 64))
    print(f"{path}: ResNet-{depth}, width {width}, {num_classes} outputs: loads with strict=True; "
          f"eval output on zeros {out.flatten()[:3].tolist()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=DEFAULT_OUT_DIR, help="output directory")
    ap.add_argument("--check-export", metavar="FILE",
                    help="only check that FILE (hotlap convert's PyTorch-format output) loads strictly")
    ap.add_argument(
        "--check-torchvision",
        action="store_true",
        help="also compare the ResNet definitions with an installed torchvision",
    )
    args = ap.parse_args()
    if args.check_export:
        check_export(args.check_export)
        return 0

    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    check_hash_test_vectors()
    check_definitions()
    if args.check_torchvision:
        check_against_torchvision()

    d = args.out_dir
    make_golden(18, os.path.join(d, "golden_resnet18.safetensors"))
    make_golden(50, os.path.join(d, "golden_resnet50.safetensors"))
    make_fixture(18, torch.float32, os.path.join(d, "tv_resnet18_w8_f32.safetensors"))
    make_fixture(50, torch.float16, os.path.join(d, "tv_resnet50_w8_f16.safetensors"))
    make_fixture(50, torch.bfloat16, os.path.join(d, "tv_resnet50_w8_bf16.safetensors"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
