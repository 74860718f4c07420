#!/usr/bin/env python3
"""The summary table and the JSON result of tools/gpu_check.sh, from what its steps left in WORK.

  python3 tools/gpu_check_summary.py WORK RESULT.json [--table]

gpu_check.sh calls it after every section, so a JSON result exists whatever happens next (a hung
step, a killed run); with --table (the last call) it also prints the summary. It reads, all optional:
  WORK/meta.txt         key=value lines: commit, date, gpu, driver, cudnn, host, ... (the header)
  WORK/tests.tsv        binary, phase (gpu|cpu), exit code, seconds, cases skipped for want of a
                        GPU (doctest counts them as passed), doctest's closing line
  WORK/steps/P-B.out    `hotlap bench` output for precision P and backend B (B.rc: its exit code)
  WORK/peer.jsonl       tools/peer_resnet_gpu.py's lines (PyTorch, same step)
  WORK/gpu_bench.json   Google Benchmark's JSON: read defensively, since a benchmark killed at its
                        time limit leaves a file cut off in the middle
Only the standard library: it runs with whatever python3 the GPU machine has.
"""

import json
import math
import os
import sys


def read_meta(work):
    meta = {}
    try:
        for line in open(os.path.join(work, "meta.txt")):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    except OSError:
        pass
    return meta


def read_tests(work):
    rows = []
    try:
        for line in open(os.path.join(work, "tests.tsv")):
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 5:
                binary, phase, code, seconds, skipped = parts[:5]
                rows.append({"binary": binary, "phase": phase, "exit": int(code),
                             "timed_out": int(code) in (124, 137), "seconds": int(seconds),
                             "skipped_no_gpu": int(skipped or 0),
                             "doctest": parts[5] if len(parts) > 5 else ""})
    except (OSError, ValueError):
        pass
    return rows


def last_json_object(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def read_steps(work):
    steps = []
    folder = os.path.join(work, "steps")
    if not os.path.isdir(folder):
        return steps
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".out"):
            continue
        precision, backend = name[:-4].split("-", 1)
        text = open(os.path.join(folder, name), errors="replace").read()
        try:
            code = int(open(os.path.join(folder, name[:-4] + ".rc")).read().strip())
        except (OSError, ValueError):
            code = None
        row = {"precision": precision, "backend": backend, "exit": code}
        result = last_json_object(text)
        if result is not None and code == 0:
            row["result"] = result
        else:
            tail = [l for l in text.splitlines() if l.strip()][-3:]
            row["error"] = ("timed out" if code in (124, 137) else "exit %s" % code) + (
                ": " + " | ".join(tail) if tail else "")
        steps.append(row)
    return steps


def read_jsonl(path):
    rows = []
    try:
        for line in open(path):
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    except OSError:
        pass
    return rows


def read_benchmark_json(path):
    """Google Benchmark's JSON, or as much of it as was written: the context and every benchmark
    object that is complete. Returns (data, complete)."""
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return {}, False
    try:
        return json.loads(text), True
    except ValueError:
        pass
    data = {}
    decoder = json.JSONDecoder()
    i = text.find('"context"')
    if i >= 0:
        j = text.find("{", i)
        try:
            data["context"], _ = decoder.raw_decode(text, j)
        except ValueError:
            pass
    benchmarks = []
    i = text.find('"benchmarks"')
    if i >= 0:
        j = text.find("[", i) + 1
        while j > 0:
            while j < len(text) and text[j] in " \t\r\n,":
                j += 1
            if j >= len(text) or text[j] != "{":
                break
            try:
                obj, j = decoder.raw_decode(text, j)
            except ValueError:
                break
            benchmarks.append(obj)
    data["benchmarks"] = benchmarks
    return data, False


_MICROSECONDS = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}


def real_time_us(b):
    """A benchmark's real time per iteration in microseconds, whatever its time_unit."""
    return b["real_time"] * _MICROSECONDS.get(b.get("time_unit", "ns"), 1e-3)


def geomean_ratio(rows):
    """rows: (native, cudnn, weight); the totals and cuDNN-time-weighted geomean of cudnn/native."""
    tn = sum(n * k for n, _, k in rows)
    tc = sum(c * k for _, c, k in rows)
    lsum = sum(c * k * math.log(c / n) for n, c, k in rows if n > 0 and c > 0)
    return tn, tc, math.exp(lsum / tc) if tc > 0 else float("nan")


def conv_table(benchmarks):
    """Hand-written convolution against cuDNN over ResNet-50 (batch 64): per pass and precision the
    network's total time (each shape weighted by how often ResNet-50 uses it) and the geometric mean
    of the per-shape ratios weighted by cuDNN's time in the network."""
    convs = {}
    for b in benchmarks:
        parts = b.get("name", "").split("/")
        if len(parts) < 6 or parts[0] != "gpu_conv" or b.get("error_occurred"):
            continue
        key, shape, backend = (parts[1], parts[2]), parts[3] + "/" + parts[4], parts[5]
        convs.setdefault(key, {}).setdefault(shape, {})[backend] = (real_time_us(b), b.get("in_net", 1))
    table = []
    by_math = {}
    for (pass_, math_), shapes in sorted(convs.items()):
        rows = [(r["native"][0], r["cudnn"][0], r["native"][1]) for r in shapes.values()
                if "native" in r and "cudnn" in r]
        if not rows:
            continue
        by_math.setdefault(math_, []).extend(rows)
        tn, tc, g = geomean_ratio(rows)
        faster = sorted(s for s, r in shapes.items() if "native" in r and "cudnn" in r
                        and r["native"][0] < r["cudnn"][0])
        table.append({"pass": pass_, "math": math_, "native_ms": tn / 1e3, "cudnn_ms": tc / 1e3,
                      "cudnn_over_native": tc / tn if tn else None, "weighted_geomean": g,
                      "native_faster_on": faster})
    for math_, rows in sorted(by_math.items()):
        tn, tc, g = geomean_ratio(rows)
        table.append({"pass": "all passes", "math": math_, "native_ms": tn / 1e3, "cudnn_ms": tc / 1e3,
                      "cudnn_over_native": tc / tn if tn else None, "weighted_geomean": g,
                      "native_faster_on": []})
    return table


def bn_table(benchmarks):
    """Batch norm per op and dtype: the hand-written kernels' GB/s against cuDNN's, summed over the
    ResNet-50 shapes benchmarked (total bytes over total time)."""
    sums = {}
    for b in benchmarks:
        parts = b.get("name", "").split("/")
        if len(parts) < 5 or parts[0] != "gpu_bn" or b.get("error_occurred"):
            continue
        op, dtype, backend = parts[1], parts[2], parts[4].split("/")[0]
        nbytes = b.get("bytes")
        if nbytes is None or not b.get("real_time"):
            continue
        s = sums.setdefault((op, dtype), {}).setdefault(backend, [0.0, 0.0])
        s[0] += nbytes
        s[1] += real_time_us(b) * 1e-6
    table = []
    for (op, dtype), r in sorted(sums.items()):
        row = {"op": op, "dtype": dtype}
        for backend, (nbytes, seconds) in r.items():
            row[backend + "_GBps"] = nbytes / seconds / 1e9 if seconds > 0 else None
        table.append(row)
    return table


def step_table(steps, peer):
    """hotlap's training step (hand-written and cuDNN backends) beside PyTorch's, per precision."""
    torch_by_precision = {r["precision"]: r for r in peer if "precision" in r and "images_per_s" in r}
    table = []
    for precision in ("fp32", "tf32", "bf16"):
        row = {"precision": precision}
        t = torch_by_precision.get(precision)
        if t:
            row["pytorch_images_per_s"] = t["images_per_s"]
            row["pytorch_gpu_peak_mb"] = t["gpu_peak_mb"]
        for s in steps:
            if s["precision"] != precision:
                continue
            b = s["backend"]
            if "result" in s:
                row[b + "_images_per_s"] = s["result"].get("images_per_s")
                row[b + "_gpu_peak_mb"] = s["result"].get("gpu_peak_mb")
                if t and t["images_per_s"]:
                    row[b + "_over_pytorch"] = s["result"]["images_per_s"] / t["images_per_s"]
            else:
                row[b + "_error"] = s.get("error")
        if len(row) > 1:
            table.append(row)
    return table


def fmt(v, spec="%.1f"):
    return spec % v if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)) else "-"


def print_tables(result):
    if result.get("gpu_found") == "no":
        print("NO GPU FOUND: the GPU test cases skipped, nothing was checked on a GPU")
    print("tests (GPU cases first; exit 124 = timed out):")
    for t in result["tests"]:
        print("  %-20s %-3s exit %-3d %4d s  %s%s" % (
            t["binary"], t["phase"], t["exit"], t["seconds"], t["doctest"].replace("[doctest] ", ""),
            ", %d skipped: no GPU" % t["skipped_no_gpu"] if t["skipped_no_gpu"] else ""))
    if result["train_step"] or result["pytorch"]:
        print()
        print("ResNet-50 training step, batch %s at 224x224 (images/s; ratio = hotlap / PyTorch):"
              % result.get("batch", "64"))
        print("%-9s %9s %9s %9s %8s %8s %8s %8s %8s" % ("precision", "native", "cudnn", "pytorch",
                                                       "nat/pt", "cud/pt", "natMB", "cudMB", "ptMB"))
        for r in result["train_step"]:
            print("%-9s %9s %9s %9s %8s %8s %8s %8s %8s" % (
                r["precision"], fmt(r.get("native_images_per_s")), fmt(r.get("cudnn_images_per_s")),
                fmt(r.get("pytorch_images_per_s")), fmt(r.get("native_over_pytorch"), "%.2f"),
                fmt(r.get("cudnn_over_pytorch"), "%.2f"), fmt(r.get("native_gpu_peak_mb"), "%.0f"),
                fmt(r.get("cudnn_gpu_peak_mb"), "%.0f"), fmt(r.get("pytorch_gpu_peak_mb"), "%.0f")))
            for b in ("native", "cudnn"):
                if r.get(b + "_error"):
                    print("  %s: %s" % (b, r[b + "_error"][:160]))
        for p in result["pytorch"]:
            if "skipped" in p or "error" in p:
                print("  pytorch%s: %s" % (" " + p.get("precision", ""), p.get("skipped") or p.get("error")))
    if result["conv"]:
        print()
        print("convolution, hand-written against cuDNN, ResNet-50 batch 64 (ms per network pass):")
        print("%-16s %-5s %10s %10s %13s %17s" % ("pass", "math", "native ms", "cudnn ms", "cudnn/native",
                                                  "weighted geomean"))
        for r in result["conv"]:
            print("%-16s %-5s %10.2f %10.2f %13s %17s" % (r["pass"], r["math"], r["native_ms"], r["cudnn_ms"],
                                                          fmt(r["cudnn_over_native"], "%.2f"),
                                                          fmt(r["weighted_geomean"], "%.2f")))
    if result["batchnorm"]:
        print()
        print("batch norm, GB/s over the ResNet-50 shapes (hand-written 'cuda' against cuDNN):")
        for r in result["batchnorm"]:
            print("  %-24s %-5s cuda %8s  cudnn %8s" % (r["op"], r["dtype"], fmt(r.get("cuda_GBps")),
                                                       fmt(r.get("cudnn_GBps"))))
    if not result["gpu_benchmarks_complete"] and result["gpu_benchmarks"]:
        print("  (the kernel benchmarks were cut off: %d complete rows kept)" % len(result["gpu_benchmarks"]))


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    work, out_json = sys.argv[1], sys.argv[2]
    meta = read_meta(work)
    tests = read_tests(work)
    steps = read_steps(work)
    peer = read_jsonl(os.path.join(work, "peer.jsonl"))
    bench, complete = read_benchmark_json(os.path.join(work, "gpu_bench.json"))
    benchmarks = [b for b in bench.get("benchmarks", []) if isinstance(b, dict)]
    failed = [t for t in tests if t["exit"] != 0]
    result = dict(meta)
    result.update({
        "tests": tests,
        "tests_passed": bool(tests) and not failed and meta.get("preflight", "ok") == "ok",
        "tests_ran_on_gpu": meta.get("gpu_found") == "yes" and not any(t["skipped_no_gpu"] for t in tests),
        "train_step": step_table(steps, peer),
        "train_step_runs": steps,
        "pytorch": peer,
        "conv": conv_table(benchmarks),
        "batchnorm": bn_table(benchmarks),
        "gpu_benchmarks": benchmarks,
        "gpu_benchmarks_complete": complete,
        "benchmark_context": bench.get("context", {}),
    })
    tmp = out_json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
    os.replace(tmp, out_json)
    if "--table" in sys.argv[3:]:
        print_tables(result)
        print("json result:", out_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
