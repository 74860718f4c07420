"""Runs facenet-pytorch's own MTCNN cascade (detect_face) and writes what it finds, as the reference
hotlap's detector (apps/score/face/face_detect.cpp) is checked against.

    python tools/mtcnn_detect_reference.py --wheel facenet_pytorch-2.6.0-py3-none-any.whl --golden
        writes tests/data/mtcnn_detect_golden.safetensors: a generated test image and the boxes,
        probabilities and landmarks found in it (thresholds in the metadata)
    python tools/mtcnn_detect_reference.py --wheel ... PHOTO.png ...
        prints one JSON line per photo (for checking on photos that cannot be committed)

Needs torch, safetensors and Pillow (tools/requirements-goldens.txt). The wheel is read as a zip;
facenet-pytorch's detect_face imports torchvision only for batched_nms, which is given here in plain
torch (torchvision has no build for every torch): per image, boxes sorted by score, a box dropped when
its IoU with a kept one is > the threshold, IoU with (x2 - x1) * (y2 - y1) areas, as torchvision.ops.nms.
Images are composited onto grey (127.5) where transparent, as hotlap's decoder does (0.5 background).
"""
import argparse
import json
import os
import sys
import types
import zipfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_mtcnn import load_nets  # noqa: E402
from golden_io import write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = "facenet_pytorch"


def nms(boxes, scores, threshold):
    order = torch.argsort(scores, descending=True, stable=True)
    keep = []
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    x1, y1, x2, y2 = boxes.unbind(1)
    area = (x2 - x1) * (y2 - y1)
    for i_pos in range(len(order)):
        i = order[i_pos]
        if suppressed[i]:
            continue
        keep.append(int(i))
        rest = order[i_pos + 1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (area[i] + area[rest] - inter)
        suppressed[rest[iou > threshold]] = True
    return torch.tensor(keep, dtype=torch.int64)


def batched_nms(boxes, scores, idxs, threshold):
    keep = []
    for i in torch.unique(idxs):
        where = torch.nonzero(idxs == i).flatten()
        keep.append(where[nms(boxes[where], scores[where], threshold)])
    if not keep:
        return torch.empty(0, dtype=torch.int64)
    keep = torch.cat(keep)
    return keep[torch.argsort(scores[keep], descending=True, stable=True)]


def load_detect_face(wheel):
    tv = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    boxes_mod = types.ModuleType("torchvision.ops.boxes")
    boxes_mod.batched_nms = batched_nms
    transforms = types.ModuleType("torchvision.transforms")
    transforms.functional = types.ModuleType("torchvision.transforms.functional")  # extract_face only
    sys.modules.update({"torchvision": tv, "torchvision.ops": ops, "torchvision.ops.boxes": boxes_mod,
                        "torchvision.transforms": transforms,
                        "torchvision.transforms.functional": transforms.functional})
    with zipfile.ZipFile(wheel) as z:
        src = z.read(f"{PKG}/models/utils/detect_face.py").decode("utf-8")
    ns = {}
    exec(compile(src, f"{PKG}/models/utils/detect_face.py", "exec"), ns)
    return ns["detect_face"]


def detect(detect_face, nets, image, thresholds, min_face=20, factor=0.709):
    """image: float32 HWC 0-255 RGB. Returns boxes [n,4], probs [n], points [n,5,2], largest first."""
    with torch.no_grad():
        boxes, points = detect_face(torch.from_numpy(image)[None], min_face, nets["pnet"], nets["rnet"],
                                    nets["onet"], thresholds, factor, torch.device("cpu"))
    boxes, points = np.asarray(boxes[0]), np.asarray(points[0])
    if boxes.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.argsort(-area, kind="stable")  # MTCNN(select_largest=True)'s order
    return (boxes[order, :4].astype(np.float32), boxes[order, 4].astype(np.float32),
            points[order].astype(np.float32))


def read_photo(path):
    from PIL import Image
    im = Image.open(path).convert("RGBA")
    a = np.asarray(im, dtype=np.float32) / 255.0
    rgb = a[..., :3] * a[..., 3:] + (1 - a[..., 3:]) * 0.5
    return rgb * 255.0


def golden_image():
    """A 120x200 test picture with two face-like figures (skin-toned ellipses with darker eyes, brows
    and mouth) of different sizes on a textured background, in 8-bit steps (what a PNG holds)."""
    h, w = 120, 200
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(7)
    img = np.empty((h, w, 3), np.float32)
    img[...] = np.array([60, 90, 120], np.float32) + rng.uniform(-25, 25, (h, w, 1))

    def blob(px, py, sx, sy, colour):
        m = np.exp(-(((x - px) / sx) ** 2 + ((y - py) / sy) ** 2))[..., None]
        img[...] = img * (1 - m) + m * np.array(colour, np.float32)

    def face(cx, cy, s):
        inside = ((x - cx) / (30 * s)) ** 2 + ((y - cy) / (40 * s)) ** 2 <= 1
        img[inside] = np.array([215, 170, 140], np.float32)
        for dx in (-12, 12):
            blob(cx + dx * s, cy - 8 * s, 6 * s, 3.5 * s, (40, 30, 30))
            blob(cx + dx * s, cy - 17 * s, 8 * s, 1.8 * s, (90, 60, 40))
        blob(cx, cy + 4 * s, 3 * s, 6 * s, (190, 140, 115))
        blob(cx, cy + 20 * s, 10 * s, 3 * s, (150, 60, 60))

    face(70, 62, 1.0)
    face(160, 50, 0.6)
    return np.clip(np.round(img), 0, 255).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", required=True)
    ap.add_argument("--golden", action="store_true", help="write tests/data/mtcnn_detect_golden.safetensors")
    ap.add_argument("--thresholds", default="0.6,0.7,0.7")
    ap.add_argument("photos", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(1)
    nets, _ = load_nets(args.wheel)
    detect_face = load_detect_face(args.wheel)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    for path in args.photos:
        boxes, probs, points = detect(detect_face, nets, read_photo(path), thresholds)
        print(json.dumps({"photo": os.path.basename(path), "boxes": boxes.round(3).tolist(),
                          "probs": probs.round(5).tolist(), "points": points.round(3).tolist()}))
    if args.golden:
        image = golden_image()
        boxes, probs, points = detect(detect_face, nets, image, thresholds)
        out = os.path.join(ROOT, "tests", "data", "mtcnn_detect_golden.safetensors")
        meta = {"generator": "tools/mtcnn_detect_reference.py", "source": f"{PKG} 2.6.0 detect_face",
                "thresholds": args.thresholds, "min_face": "20", "factor": "0.709",
                "image": "HWC RGB, 0-255 integers stored as float32"}
        size = write_safetensors(out, {"image": torch.from_numpy(image), "boxes": torch.from_numpy(boxes),
                                       "probs": torch.from_numpy(probs), "points": torch.from_numpy(points)},
                                 meta)
        print(f"{out}: {size} bytes, {len(boxes)} faces")


if __name__ == "__main__":
    main()
