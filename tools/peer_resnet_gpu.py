#!/usr/bin/env python3
"""ResNet-50 training step on the GPU in PyTorch: the peer `tools/gpu_check.sh` prints beside hotlap.

The same work as `hotlap bench --device cuda --mode train` (apps/cli/bench.cpp), in eager PyTorch:
  zero_grad, forward, MSE loss against random targets [N, 1000], backward,
  SGD(lr=1e-3, momentum=0.9, weight_decay=1e-4) step;
  ResNet-50 v1.5 (the network of tools/peer_resnet_cpu.py, torchvision's layout), 1000 outputs,
  random N(0,1) input, channels_last (NHWC: hotlap's layout), batch 64 at 224x224 by default.
Precisions, as hotlap's --precision:
  fp32  every product in fp32: torch.backends.cudnn.allow_tf32 = False (PyTorch's default is True
        for convolutions) and matmul precision "highest"
  tf32  cuDNN and cuBLAS on the tensor cores with tf32 operands (allow_tf32 = True for both)
  bf16  torch.autocast(dtype=torch.bfloat16) around the forward pass, fp32 weights and optimizer
        state (the loss is taken on the fp32-cast output), as hotlap's bf16 keeps its head in fp32
ms = median over the timed steps of one step's wall time, the GPU synchronised at the end of each
step (hotlap synchronises after forward, backward and the update; the extra waits cost it a few tens
of microseconds a step). Peak memory is torch.cuda.max_memory_allocated over the timed steps, the
figure comparable with hotlap's caching-allocator peak (`gpu_peak_mb`). cuDNN's autotuner stays off
(PyTorch's default), as hotlap picks algorithms by cuDNN's heuristics.

One process runs every precision in turn (the peak is reset between them), so the run pays for
`import torch` and the CUDA context once. Output: one JSON line per precision on stdout (--json FILE
appends them to FILE as they finish, so a run cut short keeps what it measured), then a table on
stderr. Without a CUDA device (or without torch) it prints one JSON line {"skipped": reason} and exits
0: the GPU check runs on machines where that is an answer, not an error.

  python3 tools/peer_resnet_gpu.py --batch 64 --precisions fp32,tf32,bf16 --json peer.jsonl
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_resnet_cpu import _build_resnet50, _median  # noqa: E402  (one definition of the network)


def emit(record, json_path):
    line = json.dumps(record, sort_keys=True)
    print(line, flush=True)
    if json_path:
        with open(json_path, "a") as f:
            f.write(line + "\n")


def set_precision(torch, precision):
    tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")


def measure(torch, a, precision):
    set_precision(torch, precision)
    torch.manual_seed(1)
    device = torch.device("cuda")
    model = _build_resnet50(torch, a.outputs).to(device=device, memory_format=torch.channels_last)
    model.train()
    x = torch.randn(a.batch, 3, a.size, a.size, device=device).contiguous(memory_format=torch.channels_last)
    target = torch.randn(a.batch, a.outputs, device=device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    mse = torch.nn.functional.mse_loss
    autocast = precision == "bf16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            out = model(x)
        loss = mse(out.float(), target)
        loss.backward()
        opt.step()
        return loss

    times = []
    loss = None
    for it in range(a.warmup + a.iters):
        if it == a.warmup:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        loss = step()
        torch.cuda.synchronize()
        if it >= a.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    med = _median(times)
    record = {
        "framework": "pytorch",
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version(),
        "gpu": torch.cuda.get_device_name(0),
        "precision": precision,
        "format": "channels_last",
        "depth": 50,
        "mode": "train",
        "batch": a.batch,
        "size": a.size,
        "num_outputs": a.outputs,
        "warmup": a.warmup,
        "iters": a.iters,
        "ms_per_iter": med,
        "ms_min": min(times),
        "images_per_s": a.batch * 1e3 / med,
        "gpu_peak_mb": torch.cuda.max_memory_allocated() / (1024.0 * 1024.0),
        "final_loss": float(loss.item()),
    }
    del model, opt, x, target, loss
    torch.cuda.empty_cache()
    return record


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--outputs", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--precisions", default="fp32,tf32,bf16")
    ap.add_argument("--json", help="append each result as a JSON line to this file")
    a = ap.parse_args()
    precisions = [p for p in a.precisions.split(",") if p]
    for p in precisions:
        if p not in ("fp32", "tf32", "bf16"):
            ap.error("unknown precision %r (fp32, tf32, bf16)" % p)
    try:
        import torch
    except ImportError as e:
        emit({"framework": "pytorch", "skipped": "cannot import torch: %s" % e}, a.json)
        return 0
    if not torch.cuda.is_available():
        emit({"framework": "pytorch", "torch": torch.__version__,
              "skipped": "no CUDA device (torch.cuda.is_available() is False)"}, a.json)
        return 0
    torch.backends.cudnn.benchmark = False
    rows = []
    for p in precisions:
        try:
            r = measure(torch, a, p)
        except Exception as e:  # one precision failing (out of memory, say) leaves the others
            r = {"framework": "pytorch", "precision": p, "error": "%s: %s" % (type(e).__name__, e)}
            torch.cuda.empty_cache()
        emit(r, a.json)
        rows.append(r)
    print("%-9s %10s %10s %12s" % ("precision", "images/s", "ms/step", "GPU peak MB"), file=sys.stderr)
    for r in rows:
        if "error" in r:
            print("%-9s %s" % (r["precision"], r["error"]), file=sys.stderr)
        else:
            print("%-9s %10.1f %10.1f %12.0f" % (r["precision"], r["images_per_s"], r["ms_per_iter"],
                                                 r["gpu_peak_mb"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
