"""Converts facenet-pytorch's pretrained MTCNN weights (P-Net, R-Net, O-Net) to one safetensors file
in hotlap's layout, and writes the golden outputs the C++ test (tests/apps/test_mtcnn.cpp) checks.

    python tools/convert_mtcnn.py --wheel facenet_pytorch-2.6.0-py3-none-any.whl

Needs torch and safetensors (tools/requirements-goldens.txt). The wheel is only read as a zip: its
facenet_pytorch/data/{pnet,rnet,onet}.pt (PyTorch state_dicts) and the network classes of
facenet_pytorch/models/mtcnn.py (executed without the package's other imports).

Outputs:
  models/mtcnn.safetensors           "pnet.<name>", "rnet.<name>", "onet.<name>", f32, hotlap layout
  tests/data/mtcnn_golden.safetensors fixed random inputs (NHWC) and each net's outputs

Conversions (hotlap activations are NHWC, conv weights OHWI):
  * conv weights [O,I,H,W] -> [O,H,W,I]; PReLU weights [C], linear weights [out,in] and biases as they are.
  * The first dense layer of R-Net (dense4) and O-Net (dense5) reads a flattened conv output.
    facenet-pytorch flattens x.permute(0, 3, 2, 1), i.e. NCHW -> [N,W,H,C]: feature index
    (w*H + h)*C + c. hotlap flattens its NHWC tensor: (h*W + w)*C + c. So the weight's columns are
    permuted: new[:, (h*W + w)*C + c] = old[:, (w*H + h)*C + c]. (The maps are 3x3 in both nets, so this
    swaps h and w.)
Goldens are computed in float64 from the float32 weights and float32 inputs, then stored as float32.
"""
import argparse
import io
import os
import sys
import zipfile

import torch
from torch import nn  # noqa: F401  (used by the executed source)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_io import write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = "facenet_pytorch"
VERSION = "2.6.0"


def load_nets(wheel):
    with zipfile.ZipFile(wheel) as z:
        src = z.read(f"{PKG}/models/mtcnn.py").decode("utf-8")
        states = {n: torch.load(io.BytesIO(z.read(f"{PKG}/data/{n}.pt")), map_location="cpu",
                                weights_only=True) for n in ("pnet", "rnet", "onet")}
    # Keep only the three network classes (the MTCNN class needs the rest of the package).
    src = src.split("class MTCNN(")[0]
    src = src.replace("from .utils.detect_face import detect_face, extract_face", "")
    ns = {}
    exec(compile(src, f"{PKG}/models/mtcnn.py", "exec"), ns)
    nets = {}
    for name, cls in (("pnet", ns["PNet"]), ("rnet", ns["RNet"]), ("onet", ns["ONet"])):
        net = cls(pretrained=False)
        net.load_state_dict(states[name])
        net.eval()
        nets[name] = net
    return nets, states


def flatten_permutation(h, w, c):
    """perm[j_hotlap] = j_torch for the first dense layer (see the module docstring)."""
    perm = []
    for hh in range(h):
        for ww in range(w):
            for cc in range(c):
                perm.append((ww * h + hh) * c + cc)
    return torch.tensor(perm)


def convert(nets, states):
    dense_first = {"rnet": ("dense4.weight", 3, 3, 64), "onet": ("dense5.weight", 3, 3, 128)}
    out = {}
    for net, sd in states.items():
        for name, t in sd.items():
            t = t.detach().to(torch.float32)
            if t.dim() == 4:
                t = t.permute(0, 2, 3, 1)
            if net in dense_first and name == dense_first[net][0]:
                _, h, w, c = dense_first[net]
                assert t.shape[1] == h * w * c, (net, name, t.shape)
                t = t[:, flatten_permutation(h, w, c)]
            out[f"{net}.{name}"] = t.contiguous()
    return out


def goldens(nets):
    g = torch.Generator().manual_seed(20240605)
    shapes = {"pnet": (1, 3, 25, 31), "rnet": (2, 3, 24, 24), "onet": (2, 3, 48, 48)}
    out = {}
    with torch.no_grad():
        for name, shape in shapes.items():
            x = (torch.rand(shape, generator=g) * 2 - 1).to(torch.float32)  # like (pixel-127.5)/128
            net = nets[name].double()
            res = net(x.double())
            out[f"{name}.input"] = x.permute(0, 2, 3, 1).contiguous()
            if name == "pnet":
                box, prob = res
                out["pnet.box"] = box.permute(0, 2, 3, 1).float().contiguous()
                out["pnet.prob"] = prob.permute(0, 2, 3, 1).float().contiguous()
            elif name == "rnet":
                box, prob = res
                out["rnet.box"], out["rnet.prob"] = box.float().contiguous(), prob.float().contiguous()
            else:
                box, landmarks, prob = res
                out["onet.box"], out["onet.prob"] = box.float().contiguous(), prob.float().contiguous()
                out["onet.landmarks"] = landmarks.float().contiguous()
            net.float()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", required=True, help=f"{PKG}-{VERSION}-py3-none-any.whl")
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "mtcnn.safetensors"))
    ap.add_argument("--golden", default=os.path.join(ROOT, "tests", "data", "mtcnn_golden.safetensors"))
    args = ap.parse_args()
    nets, states = load_nets(args.wheel)
    meta = {
        "source": f"{PKG} {VERSION} (https://github.com/timesler/facenet-pytorch), "
                  f"{PKG}/data/pnet.pt, rnet.pt, onet.pt",
        "licence": "MIT (facenet-pytorch, Tim Esler)",
        "version": "1",
        "layout": "hotlap: conv OHWI; rnet.dense4/onet.dense5 columns in NHWC flatten order",
        "generator": "tools/convert_mtcnn.py",
    }
    size = write_safetensors(args.out, convert(nets, states), meta)
    print(f"{args.out}: {size} bytes")
    gmeta = {"generator": "tools/convert_mtcnn.py", "source": f"{PKG} {VERSION}",
             "compute": "float64 from float32 weights and inputs; stored float32; NHWC where spatial"}
    size = write_safetensors(args.golden, goldens(nets), gmeta)
    print(f"{args.golden}: {size} bytes")


if __name__ == "__main__":
    main()
