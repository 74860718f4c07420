#!/usr/bin/env python3
"""A classifier on real images that a package ships: hotlap beside PyTorch on scikit-learn's digits.

Dev-only. scikit-learn bundles the UCI handwritten digits (1797 greyscale images of 8x8 pixels, ten
classes). This script writes them out as an image folder in torchvision's ImageFolder layout (each
image enlarged 4x to 32x32 by pixel replication, as RGB PNG; every fifth image of a class in val/),
nothing of it committed, then trains the same network with the same recipe twice:

  hotlap    build/hotlap train --task classify (its own loader, RandomResizedCrop, cross-entropy)
  PyTorch   the same ResNet-18 of stem width 16 (tools/make_resnet_goldens.py's definition, torchvision's
            initialisation), torchvision's RandomResizedCrop + flip, AdamW, the same cosine schedule

and prints the held-out top-1 accuracy of each epoch of both, and the best. The two differ in their
random draws (weights, order, crops), so their curves are two samples of one recipe, not one curve.

  python3 -m venv .venv-goldens && .venv-goldens/bin/pip install -r tools/requirements-goldens.txt
  .venv-goldens/bin/pip install scikit-learn torchvision
  .venv-goldens/bin/python tools/digits_check.py --hotlap build/hotlap
"""

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from sklearn.datasets import load_digits
from torchvision import datasets, transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_resnet_goldens import ARCHS, ResNet  # noqa: E402

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def write_image_folder(root):
    digits = load_digits()
    shutil.rmtree(root, ignore_errors=True)
    counts = {}
    for image, label in zip(digits.images, digits.target):
        k = counts.get(label, 0)
        counts[label] = k + 1
        part = "val" if k % 5 == 4 else "train"
        folder = os.path.join(root, part, str(label))
        os.makedirs(folder, exist_ok=True)
        pixels = np.kron(np.round(image / 16.0 * 255.0), np.ones((4, 4))).astype(np.uint8)
        Image.fromarray(pixels, mode="L").convert("RGB").save(os.path.join(folder, f"{k:04d}.png"))
    train = sum(len(os.listdir(os.path.join(root, "train", c))) for c in os.listdir(os.path.join(root, "train")))
    val = sum(len(os.listdir(os.path.join(root, "val", c))) for c in os.listdir(os.path.join(root, "val")))
    return train, val


def run_hotlap(binary, data, out, a):
    command = [binary, "train", "--task", "classify", "--data", data, "--out", out, "--overwrite",
               "--depth", "18", "--width", str(a.width), "--size", "32", "--resize", "32",
               "--epochs", str(a.epochs), "--batch", str(a.batch), "--optimizer", "adamw", "--lr", str(a.lr),
               "--weight-decay", "0", "--schedule", "cosine", "--min-scale", str(a.min_scale), "--seed", str(a.seed)]
    start = time.time()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    seconds = time.time() - start
    top1 = [float(m) / 100 for m in re.findall(r"val top-1 ([0-9.]+)%", done.stdout)]
    return top1, seconds


def run_pytorch(data, a):
    torch.manual_seed(a.seed)
    train_tf = transforms.Compose([
        transforms.RandomResizedCrop(32, scale=(a.min_scale, 1.0), antialias=True),
        transforms.RandomHorizontalFlip(),  # hotlap's classifier flips too
        transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    val_tf = transforms.Compose([transforms.Resize(32), transforms.CenterCrop(32), transforms.ToTensor(),
                                 transforms.Normalize(MEAN, STD)])
    train = datasets.ImageFolder(os.path.join(data, "train"), train_tf)
    val = datasets.ImageFolder(os.path.join(data, "val"), val_tf)
    loader = torch.utils.data.DataLoader(train, batch_size=a.batch, shuffle=True, drop_last=True, num_workers=0)
    val_loader = torch.utils.data.DataLoader(val, batch_size=256)
    block, layers = ARCHS[18]
    model = ResNet(block, layers, num_classes=len(train.classes), width=a.width)
    for m in model.modules():  # torchvision's initialisation, as hotlap's
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    total = a.epochs * len(loader)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    loss_fn = nn.CrossEntropyLoss()
    top1 = []
    start = time.time()
    for _ in range(a.epochs):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss_fn(model(x.to(memory_format=torch.channels_last)), y).backward()
            optimizer.step()
            schedule.step()
        model.eval()
        right = 0
        with torch.no_grad():
            for x, y in val_loader:
                right += (model(x.to(memory_format=torch.channels_last)).argmax(1) == y).sum().item()
        top1.append(right / len(val))
    return top1, time.time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hotlap", default="build/hotlap")
    parser.add_argument("--work", default="/tmp/hotlap-digits", help="where the image folder and runs go")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--min-scale", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch's intra-op threads")
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    data = os.path.join(a.work, "digits")
    train, val = write_image_folder(data)
    print(f"digits: {train} train, {val} val images of 32x32 in {data}")
    h, h_seconds = run_hotlap(a.hotlap, data, os.path.join(a.work, "hotlap-run"), a)
    p, p_seconds = run_pytorch(data, a)
    print(f"{'epoch':>5}  {'hotlap top-1':>12}  {'PyTorch top-1':>13}")
    for e in range(max(len(h), len(p))):
        hv = f"{100 * h[e]:.1f}%" if e < len(h) else "-"
        pv = f"{100 * p[e]:.1f}%" if e < len(p) else "-"
        print(f"{e + 1:>5}  {hv:>12}  {pv:>13}")
    print(f"best   {100 * max(h):11.1f}%  {100 * max(p):12.1f}%")
    print(f"last   {100 * h[-1]:11.1f}%  {100 * p[-1]:12.1f}%")
    print(f"time   {h_seconds:10.0f} s  {p_seconds:11.0f} s  (hotlap: the whole command; PyTorch: the epochs)")


if __name__ == "__main__":
    main()
