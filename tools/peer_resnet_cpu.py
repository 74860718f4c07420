#!/usr/bin/env python3
"""ResNet-50 on the CPU: hotlap against PyTorch and ONNX Runtime, on the same machine, in the same run.

For each configuration (inference at batch 1 and 8, a training step at batch 8, 224x224) it runs
`hotlap bench ...` in a subprocess and the same work in PyTorch in a fresh subprocess, so that each
peak RSS (getrusage ru_maxrss, taken in the child) belongs to that configuration alone; inference also
in ONNX Runtime (the same network exported from PyTorch once, run by onnxruntime's CPU provider with
every graph optimisation, which folds batch norm into the convolutions and fuses their ReLUs: what a
user picks for CPU inference). Then it prints a table: config, hotlap ms, PyTorch ms, ratio (hotlap /
PyTorch), ONNX Runtime ms and ratio, and the peak RSS figures.

The same work on both sides:
  infer  eval mode, no autograd (torch.inference_mode; hotlap NoGradGuard), one forward per iteration
  train  zero_grad, forward, MSE loss against random targets [N, 1000], backward,
         SGD(lr=1e-3, momentum=0.9, weight_decay=1e-4) step
  ResNet-50 v1.5 (stride on the 3x3, torchvision's layout), 1000 outputs, random N(0,1) input.
  PyTorch runs channels_last (NHWC, what hotlap uses); with --contiguous it also runs the default
  NCHW format once per configuration, for reference.
  ONNX Runtime: torch.onnx.export (the TorchScript exporter, opset 17, a dynamic batch axis) of the
  eval-mode network into a temporary file, then an InferenceSession with ORT_ENABLE_ALL,
  intra_op_num_threads = the same threads and one inter-op thread, fed an NCHW float32 array (it
  chooses its own internal layout). --no-ort leaves it out.
  Threads: --threads, else OMP_NUM_THREADS, else the number of CPUs; both sides get the same
  (OMP_NUM_THREADS for hotlap and its OpenBLAS, torch.set_num_threads for PyTorch).
  ms = median of the timed iterations of one process; with --repeats R each side runs R processes
  per configuration, alternating, and the best (lowest) median is reported: on a shared machine
  the minimum is the least disturbed figure.

Setup (dev-only; hotlap itself never needs Python):
  python3 -m venv .venv-peer
  .venv-peer/bin/pip install -r tools/requirements-peer.txt     # torch, onnx, onnxruntime
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j
  python3 tools/peer_resnet_cpu.py --hotlap build/hotlap --python .venv-peer/bin/python

torchvision is not needed: the network is defined below, following torchvision.models.resnet50.

Other options: --configs infer:1,infer:8,train:8  --warmup 2 --iters 10  --repeats 3
  --profile (runs hotlap's training configurations once more with HOTLAP_PROFILE=1 and prints the
  profile) --json FILE (every raw result).
  --load N: a busy machine, the same for both sides. N competing CPU-bound processes (`yes` into
  /dev/null, each keeping one core busy at the default priority) run for the whole measurement.
  --hotlap-env VAR=VALUE (repeatable): extra environment for hotlap only, e.g. GOMP_SPINCOUNT=300000
  to measure libgomp's own waiting default instead of hotlap's (threads sleep: apps/common/omp_wait_policy.h).
  --isa avx2: an AVX2 machine on an AVX-512 one, for every side that can be capped: hotlap with
  HOTLAP_CPU_ISA=avx2 and its OpenBLAS with OPENBLAS_CORETYPE=Haswell (OpenBLAS does its own dispatch,
  kernels/cpu_isa.h), PyTorch with ATEN_CPU_CAPABILITY=avx2 and ONEDNN_MAX_CPU_ISA=AVX2. ONNX Runtime
  has no such switch: it keeps the CPU's own level, so its column is then an upper bound.
  --hotlap-threads own: hotlap chooses its thread count as it does by default (fewer while the machine
  is busy, docs/threads.md) instead of being given --threads; PyTorch keeps --threads, its default.
"""

import argparse
import json
import os
import subprocess
import sys
import time

# --------------------------------------------------------------------------------------------------
# The PyTorch child: one configuration, one process, one JSON line on stdout.
# --------------------------------------------------------------------------------------------------


def _current_rss_mb():
    try:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)
    except OSError:
        return 0.0


def _build_resnet50(torch, num_outputs):
    nn = torch.nn

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            identity = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            if self.downsample is not None:
                identity = self.downsample(x)
            out += identity
            return self.relu(out)

    class ResNet(nn.Module):
        def __init__(self, layers=(3, 4, 6, 3), num_classes=1000):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            self.layer1 = self._make_layer(64, layers[0])
            self.layer2 = self._make_layer(128, layers[1], stride=2)
            self.layer3 = self._make_layer(256, layers[2], stride=2)
            self.layer4 = self._make_layer(512, layers[3], stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512 * 4, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

        def _make_layer(self, planes, blocks, stride=1):
            downsample = None
            if stride != 1 or self.inplanes != planes * 4:
                downsample = nn.Sequential(
                    nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes * 4),
                )
            layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes * 4
            layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet(num_classes=num_outputs)


def _median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def child_main(a):
    import resource

    rss_start = _current_rss_mb()
    import torch

    torch.set_num_threads(a.threads)
    rss_after_import = _current_rss_mb()
    torch.manual_seed(1)
    fmt = torch.channels_last if a.format == "channels_last" else torch.contiguous_format
    model = _build_resnet50(torch, a.outputs).to(memory_format=fmt)
    x = torch.randn(a.batch, 3, a.size, a.size).contiguous(memory_format=fmt)
    target = torch.randn(a.batch, a.outputs)
    train = a.mode == "train"
    if train:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    else:
        model.eval()
    rss_after_build = _current_rss_mb()

    total, fwd, bwd, step = [], [], [], []
    rss_after_forward = 0.0
    faults_before = 0
    for it in range(a.warmup + a.iters):
        timed = it >= a.warmup
        if it == a.warmup:
            faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        if not train:
            t0 = time.perf_counter()
            with torch.inference_mode():
                model(x)
            if timed:
                total.append((time.perf_counter() - t0) * 1e3)
            continue
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), target)
        t1 = time.perf_counter()
        if timed and it + 1 == a.warmup + a.iters:
            rss_after_forward = _current_rss_mb()
        t1b = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if timed:
            fwd.append((t1 - t0) * 1e3)
            bwd.append((t2 - t1b) * 1e3)
            step.append((t3 - t2) * 1e3)
            total.append(((t1 - t0) + (t3 - t1b)) * 1e3)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    med = _median(total)
    out = {
        "framework": "pytorch",
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "format": a.format,
        "depth": 50,
        "mode": a.mode,
        "batch": a.batch,
        "size": a.size,
        "num_outputs": a.outputs,
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "warmup": a.warmup,
        "iters": a.iters,
        "ms_per_iter": med,
        "ms_mean": sum(total) / len(total),
        "ms_min": min(total),
        "images_per_s": a.batch * 1e3 / med,
        "forward_ms": _median(fwd) if fwd else 0.0,
        "backward_ms": _median(bwd) if bwd else 0.0,
        "optimizer_ms": _median(step) if step else 0.0,
        "rss_start_mb": rss_start,
        "rss_after_import_mb": rss_after_import,
        "rss_after_build_mb": rss_after_build,
        "rss_after_forward_mb": rss_after_forward,
        "peak_rss_mb": ru.ru_maxrss / 1024.0,
        "minor_faults_per_iter": (ru.ru_minflt - faults_before) / a.iters,
    }
    print(json.dumps(out))


def export_main(a):
    """Writes the eval-mode ResNet-50 (seed 1) as ONNX to a.export_onnx, batch axis dynamic."""
    import torch

    torch.manual_seed(1)
    model = _build_resnet50(torch, a.outputs).eval()
    x = torch.randn(1, 3, a.size, a.size)
    torch.onnx.export(model, (x,), a.export_onnx, dynamo=False, opset_version=17, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})


def ort_child_main(a):
    """One inference configuration in ONNX Runtime; the same JSON fields as the PyTorch child."""
    import resource

    rss_start = _current_rss_mb()
    import numpy as np
    import onnxruntime as ort

    rss_after_import = _current_rss_mb()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    session = ort.InferenceSession(a.onnx, so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((a.batch, 3, a.size, a.size), dtype=np.float32)
    rss_after_build = _current_rss_mb()
    total = []
    faults_before = 0
    for it in range(a.warmup + a.iters):
        if it == a.warmup:
            faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        session.run(None, {"x": x})
        if it >= a.warmup:
            total.append((time.perf_counter() - t0) * 1e3)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    med = _median(total)
    print(json.dumps({
        "framework": "onnxruntime", "onnxruntime": ort.__version__, "depth": 50, "mode": "infer",
        "batch": a.batch, "size": a.size, "threads": a.threads, "warmup": a.warmup, "iters": a.iters,
        "ms_per_iter": med, "ms_mean": sum(total) / len(total), "ms_min": min(total),
        "images_per_s": a.batch * 1e3 / med, "rss_start_mb": rss_start,
        "rss_after_import_mb": rss_after_import, "rss_after_build_mb": rss_after_build,
        "peak_rss_mb": ru.ru_maxrss / 1024.0,
        "minor_faults_per_iter": (ru.ru_minflt - faults_before) / a.iters,
    }))


# --------------------------------------------------------------------------------------------------
# The parent: runs the sides per configuration and prints the table.
# --------------------------------------------------------------------------------------------------


def _last_json_line(text, who):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{who}: no JSON line in its output:\n{text}")


# What --isa avx2 sets for each side (see the top of the file).
ISA_ENV = {
    "native": {"hotlap": {}, "pytorch": {}},
    "avx2": {"hotlap": {"HOTLAP_CPU_ISA": "avx2", "OPENBLAS_CORETYPE": "Haswell"},
             "pytorch": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}},
}


def run_hotlap(a, mode, batch, profile=False):
    cmd = [a.hotlap, "bench", "--depth", "50", "--mode", mode, "--batch", str(batch), "--size",
           str(a.size), "--warmup", str(a.warmup), "--iters", str(a.iters)]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), **ISA_ENV[a.isa]["hotlap"])
    if a.hotlap_threads == "own":  # hotlap's own policy: as many as are free (docs/threads.md)
        env.pop("OMP_NUM_THREADS")
    for item in a.hotlap_env:
        key, _, value = item.partition("=")
        env[key] = value
    if profile:
        env["HOTLAP_PROFILE"] = "1"
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    result = _last_json_line(p.stdout, "hotlap")
    if profile:
        result["profile"] = p.stderr
    return result


def run_torch(a, mode, batch, fmt):
    cmd = [a.python, os.path.abspath(__file__), "--child", "--mode", mode, "--batch", str(batch),
           "--size", str(a.size), "--warmup", str(a.warmup), "--iters", str(a.iters), "--threads",
           str(a.threads), "--format", fmt]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), **ISA_ENV[a.isa]["pytorch"])
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    return _last_json_line(p.stdout, "pytorch")


def run_ort(a, batch):
    cmd = [a.python, os.path.abspath(__file__), "--child-ort", "--onnx", a.onnx, "--batch", str(batch),
           "--size", str(a.size), "--warmup", str(a.warmup), "--iters", str(a.iters), "--threads",
           str(a.threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    return _last_json_line(p.stdout, "onnxruntime")


def best(results):
    return min(results, key=lambda r: r["ms_per_iter"])


def parent_main(a):
    configs = []
    for item in a.configs.split(","):
        mode, batch = item.split(":")
        assert mode in ("infer", "train"), item
        configs.append((mode, int(batch)))
    print(f"ResNet-50, {a.size}x{a.size}, {a.threads} threads, warm-up {a.warmup}, {a.iters} timed "
          f"iterations (median), best of {a.repeats} processes per side", file=sys.stderr)
    a.onnx = None
    if not a.no_ort and any(mode == "infer" for mode, _ in configs):
        import tempfile

        a.onnx = os.path.join(tempfile.mkdtemp(prefix="hotlap-peer-"), "resnet50.onnx")
        p = subprocess.run([a.python, os.path.abspath(__file__), "--export-onnx", a.onnx, "--size",
                            str(a.size)], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"exporting ResNet-50 to ONNX failed ({p.returncode}):\n{p.stderr}")
    competitors = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(a.load)]
    try:
        _measure(a, configs)
    finally:
        if a.onnx:
            os.remove(a.onnx)
            os.rmdir(os.path.dirname(a.onnx))
        for p in competitors:
            p.kill()
            p.wait()


def _measure(a, configs):
    rows, raw = [], []
    for mode, batch in configs:
        h_runs, t_runs, o_runs = [], [], []
        use_ort = a.onnx is not None and mode == "infer"
        for rep in range(a.repeats):  # alternate the sides, so a disturbance hits them alike
            h_runs.append(run_hotlap(a, mode, batch))
            t_runs.append(run_torch(a, mode, batch, "channels_last"))
            if use_ort:
                o_runs.append(run_ort(a, batch))
            ort_text = f", onnxruntime {o_runs[-1]['ms_per_iter']:.1f} ms" if use_ort else ""
            print(f"  {mode} batch {batch} run {rep + 1}: hotlap {h_runs[-1]['ms_per_iter']:.1f} ms, "
                  f"pytorch {t_runs[-1]['ms_per_iter']:.1f} ms{ort_text}", file=sys.stderr)
        h, t = best(h_runs), best(t_runs)
        o = best(o_runs) if o_runs else None
        c = run_torch(a, mode, batch, "contiguous") if a.contiguous else None
        rows.append((mode, batch, h, t, c, o))
        raw.append({"mode": mode, "batch": batch, "hotlap": h_runs, "pytorch": t_runs, "onnxruntime": o_runs,
                    "pytorch_contiguous": c})

    torch_version = rows[0][3].get("torch", "?") if rows else "?"
    ort_version = next((r[5]["onnxruntime"] for r in rows if r[5]), None)
    load = f"; under load: {a.load} x `yes`" if a.load else "; idle"
    henv = f"; hotlap env {' '.join(a.hotlap_env)}" if a.hotlap_env else ""
    if a.hotlap_threads == "own":
        henv += "; hotlap threads: its own policy"
    ort_text = f", ONNX Runtime {ort_version} (CPU provider, all optimisations)" if ort_version else ""
    isa = f"; HOTLAP_CPU_ISA={os.environ['HOTLAP_CPU_ISA']}" if os.environ.get("HOTLAP_CPU_ISA") else ""
    if a.isa != "native":
        capability = rows[0][3].get("cpu_capability", "?") if rows else "?"
        isa += (f"; --isa {a.isa}: hotlap {' '.join(f'{k}={v}' for k, v in ISA_ENV[a.isa]['hotlap'].items())}, "
                f"PyTorch at {capability}, ORT at the CPU's own level")
    print(f"\nResNet-50 {a.size}x{a.size} on the CPU, {a.threads} threads; PyTorch {torch_version} "
          f"channels_last{ort_text}; ms = best of {a.repeats} process medians{load}{henv}{isa}")
    hdr = (f"| {'config':<16} | {'hotlap ms':>9} | {'PyTorch ms':>10} | {'ratio':>5} | {'ORT ms':>7} | "
           f"{'vs ORT':>6} | {'hotlap peak MB':>14} | {'PyTorch peak MB':>15} | {'ORT peak MB':>11} |")
    print(hdr)
    print("|" + "|".join("-" * (len(c)) for c in hdr.split("|")[1:-1]) + "|")
    for mode, batch, h, t, c, o in rows:
        name = f"{mode} batch {batch}"
        ort_ms = f"{o['ms_per_iter']:7.1f}" if o else f"{'-':>7}"
        ort_ratio = f"{h['ms_per_iter'] / o['ms_per_iter']:6.2f}" if o else f"{'-':>6}"
        ort_peak = f"{o['peak_rss_mb']:11.0f}" if o else f"{'-':>11}"
        print(f"| {name:<16} | {h['ms_per_iter']:9.1f} | {t['ms_per_iter']:10.1f} | "
              f"{h['ms_per_iter'] / t['ms_per_iter']:5.2f} | {ort_ms} | {ort_ratio} | "
              f"{h['peak_rss_mb']:14.0f} | {t['peak_rss_mb']:15.0f} | {ort_peak} |")

    print("\nDetail (the best run of each side):")
    for mode, batch, h, t, c, o in rows:
        print(f"  {mode} batch {batch}:")
        for who, r in (("hotlap", h), ("pytorch", t), ("ort", o)):
            if r is None:
                continue
            extra = (f" import {r['rss_after_import_mb']:.0f} MB," if "rss_after_import_mb" in r else "")
            split = (f" fwd {r['forward_ms']:.1f} / bwd {r['backward_ms']:.1f} / opt "
                     f"{r['optimizer_ms']:.1f} ms," if mode == "train" else "")
            fwd_rss = (f" after forward {r['rss_after_forward_mb']:.0f} MB," if mode == "train" and
                       "rss_after_forward_mb" in r else "")
            threads = (f" threads {r['threads_fewest']}-{r['threads']};" if "threads_fewest" in r
                       else f" threads {r['threads']};")
            print(f"    {who:<8} median {r['ms_per_iter']:.1f} (min {r['ms_min']:.1f}) ms,{threads}{split} "
                  f"RSS:{extra} after build {r['rss_after_build_mb']:.0f} MB,{fwd_rss} peak "
                  f"{r['peak_rss_mb']:.0f} MB; {r['minor_faults_per_iter']:.0f} page faults/iter")
        if c is not None:
            print(f"    pytorch NCHW (contiguous, one run): {c['ms_per_iter']:.1f} ms, peak "
                  f"{c['peak_rss_mb']:.0f} MB")

    if a.profile:
        for mode, batch in configs:
            if mode != "train":
                continue
            r = run_hotlap(a, mode, batch, profile=True)
            print(f"\nhotlap profile, {mode} batch {batch} ({r['ms_per_iter']:.1f} ms/iter in this run):")
            print(r["profile"])
            raw.append({"mode": mode, "batch": batch, "hotlap_profiled": r})
    if a.json:
        with open(a.json, "w") as f:
            json.dump(raw, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hotlap", default="build/hotlap", help="the hotlap binary (default build/hotlap)")
    default_python = ".venv-peer/bin/python" if os.path.exists(".venv-peer/bin/python") else sys.executable
    ap.add_argument("--python", default=default_python, help="a python with torch (default: %(default)s)")
    ap.add_argument("--configs", default="infer:1,infer:8,train:8")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=1)
    default_threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    ap.add_argument("--threads", type=int, default=default_threads)
    ap.add_argument("--contiguous", action="store_true", help="also run PyTorch in NCHW once")
    ap.add_argument("--no-ort", action="store_true", help="leave ONNX Runtime out")
    ap.add_argument("--profile", action="store_true", help="print hotlap's profile of each train config")
    ap.add_argument("--json", help="write every raw result here")
    ap.add_argument("--load", type=int, default=0, help="competing CPU-bound processes during the run")
    ap.add_argument("--hotlap-env", action="append", default=[], metavar="VAR=VALUE",
                    help="extra environment for hotlap (repeatable)")
    ap.add_argument("--isa", choices=sorted(ISA_ENV), default="native",
                    help="avx2: cap hotlap, its OpenBLAS and PyTorch at AVX2 (ONNX Runtime cannot be capped)")
    ap.add_argument("--hotlap-threads", choices=["same", "own"], default="same",
                    help="same: hotlap gets --threads like PyTorch; own: hotlap's own policy (its default: "
                         "as many threads as the machine has free)"),
    # the child's own arguments
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-ort", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--onnx", help=argparse.SUPPRESS)
    ap.add_argument("--export-onnx", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="train", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=8, help=argparse.SUPPRESS)
    ap.add_argument("--outputs", type=int, default=1000, help=argparse.SUPPRESS)
    ap.add_argument("--format", default="channels_last", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child_main(a)
    elif a.child_ort:
        ort_child_main(a)
    elif a.export_onnx:
        export_main(a)
    else:
        parent_main(a)


if __name__ == "__main__":
    main()
