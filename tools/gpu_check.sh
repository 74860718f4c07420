#!/usr/bin/env bash
# The one prepared run on a GPU machine: every test, the benchmark table, a result file.
#
#   tools/gpu_check.sh prepare        on the CPU machine: build for sm_90 (in build-gpu/) and put the
#                                     binaries and the shared libraries the GPU machine may lack
#                                     (OpenBLAS, libgomp...) into gpu-bundle/ (~60 MB stripped) and
#                                     gpu-bundle.tar.gz (~21 MB), so nothing is compiled on GPU time.
#                                     Test paths are relative to the repository.
#   tools/gpu_check.sh run [OUT]      on the GPU machine (carry gpu-bundle.tar.gz), from the repository root:
#                                     find cuDNN where it is (the
#                                     system, or PyTorch's nvidia-cudnn package), run every test binary
#                                     and the benchmarks (ResNet-50 training steps at batch 64 in fp32
#                                     and tf32 with each conv backend; batch-norm GB/s hand-written vs
#                                     cuDNN; convolution TFLOP/s hand-written vs cuDNN in fp32, tf32
#                                     and bf16), and write
#                                     OUT/gpu_check-<commit>.txt (the log, with a summary table last)
#                                     and OUT/gpu_check-<commit>.json (device, driver, commit, every
#                                     figure). OUT defaults to $OUT or ./out. GPU_BENCH_FILTER=gpu_
#                                     adds the batch-128 and per-variant convolution tables (~3 more
#                                     minutes: raise the benchmark timeout below to match).
# The run must finish well inside 10 minutes; the benchmark filter keeps it short.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gpu}
BUNDLE=${BUNDLE:-gpu-bundle}
mode=${1:-run}

if [ "$mode" = prepare ]; then
  set -e
  # With OpenBLAS, as a user's build: with the hand-written GEMM alone the ResNet-50 training golden
  # misses its 1e-3 tolerance (see bench/NOTES.md). The binaries and libraries are stripped so that the
  # repository and the bundle fit the 64 MiB a device run carries.
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DHOTLAP_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DHOTLAP_BLAS=ON -DHOTLAP_TEST_DATA_DIR=tests/data -DHOTLAP_TEST_BINARY="$BUNDLE/hotlap" > /dev/null
  cmake --build "$BUILD" -j "$(nproc)"
  rm -rf "$BUNDLE" && mkdir -p "$BUNDLE/lib"
  cp "$BUILD"/hotlap "$BUILD"/tests/hotlap_*_tests "$BUILD"/bench/hotlap_bench "$BUNDLE/"
  # Libraries outside glibc and the CUDA runtime that the binaries load travel with them.
  for bin in "$BUNDLE"/hotlap*; do
    ldd "$bin" | awk '/=> \// {print $3}' | grep -E 'openblas|gomp|gfortran|quadmath|benchmark' || true
  done | sort -u | while read -r lib; do cp -L "$lib" "$BUNDLE/lib/"; done
  strip --strip-unneeded "$BUNDLE"/hotlap* "$BUNDLE"/lib/*.so* 2>/dev/null || true
  # Packed: ~60 MB of binaries and libraries (OpenBLAS alone is 36 MB) gzip to ~21 MB, which with
  # the repository fits the 64 MiB a device run carries. Carry the .tar.gz; `run` unpacks it into
  # $BUNDLE/ (under a second) when that is missing.
  tar -C "$BUNDLE" -czf "$BUNDLE.tar.gz.tmp" . && mv "$BUNDLE.tar.gz.tmp" "$BUNDLE.tar.gz"
  du -sh "$BUNDLE" "$BUNDLE.tar.gz" | awk '{print "prepared " $2 ": " $1}'
  echo "carry $BUNDLE.tar.gz (a device run carries at most 64 MiB, repository included)"
  exit 0
fi

[ "$mode" = run ] || { echo "usage: $0 prepare | run [OUT]" >&2; exit 2; }
out=${2:-${OUT:-out}}
mkdir -p "$out"
if [ ! -x "$BUNDLE/hotlap" ] && [ -f "$BUNDLE.tar.gz" ]; then
  mkdir -p "$BUNDLE" && tar -C "$BUNDLE" -xzf "$BUNDLE.tar.gz" ||
    { echo "gpu_check: cannot unpack $BUNDLE.tar.gz" >&2; exit 1; }
fi
[ -x "$BUNDLE/hotlap" ] ||
  { echo "gpu_check: $BUNDLE/hotlap missing: run '$0 prepare' first and carry $BUNDLE.tar.gz" >&2; exit 1; }

# cuDNN may live only inside PyTorch's Python packages on the GPU machine.
cudnn_dir=$(python3 -c 'import os, nvidia.cudnn as m; print(os.path.join(os.path.dirname(m.__file__), "lib"))' 2>/dev/null || true)
export LD_LIBRARY_PATH="$PWD/$BUNDLE/lib${cudnn_dir:+:$cudnn_dir}:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
result="$out/gpu_check-$commit.txt"
{
  echo "# hotlap GPU check"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $commit"
  echo "host: $(uname -n), $(nproc) cores"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /' || echo "gpu: nvidia-smi not found"
  echo "cudnn: ${cudnn_dir:-system} $(ls "${cudnn_dir:-/usr/local/cuda/lib64}" 2>/dev/null | grep -o 'libcudnn\.so\.[0-9.]*' | sort -V | tail -1)"
  echo
  echo "## hotlap info"
  "$BUNDLE/hotlap" info
  echo
  echo "## tests"
  status=0
  # Each binary under a time limit, so that one hung GPU test cannot spend the whole device budget
  # (exit 124 = timed out). The section times show where the run's minutes go. Each binary's whole
  # output goes to OUT/<binary>.log as it runs (line-buffered, with each test case's time, so a
  # crash or a timeout leaves what came before it and which case was running); this log gets the
  # summary and, when a binary fails, its failure reports: doctest prints them before the summary,
  # so the summary lines alone would say that something failed but not what.
  linebuf=""
  command -v stdbuf > /dev/null && linebuf="stdbuf -oL -eL"
  for t in "$BUNDLE"/hotlap_*_tests; do
    started=$SECONDS
    log="$out/$(basename "$t").log"
    timeout 180 $linebuf "$t" --no-intro --duration=true > "$log" 2>&1
    code=$?
    if [ "$code" -ne 0 ]; then
      status=1
      grep -E -B 3 -A 10 '(ERROR|WARNING): ' "$log" | head -400
      echo "... last lines of $log:"
      tail -15 "$log"
    else
      tail -3 "$log"
    fi
    echo "$(basename "$t"): exit $code$([ "$code" -eq 124 ] && echo ' (timed out)') in $((SECONDS - started)) s (whole output: $log)"
  done
  echo
  echo "## ResNet-50 training step on the GPU: batch 64, 224x224 (hotlap bench --device cuda)"
  : > "$out/train_steps.jsonl"
  for precision in fp32 tf32 bf16; do
    for conv in native cudnn; do
      line=$(timeout 90 "$BUNDLE/hotlap" bench --device cuda --mode train --depth 50 --batch 64 --size 224 \
               --warmup 3 --iters 10 --precision "$precision" --conv "$conv" 2>&1 | tail -1)
      echo "$precision conv=$conv: $line"
      case "$line" in "{"*) echo "$line" >> "$out/train_steps.jsonl" ;; esac
    done
  done
  echo
  echo "(elapsed so far: $SECONDS s)"
  echo "## GPU kernels: batch norm GB/s, convolution TFLOP/s (hand-written vs cuDNN)"
  timeout 150 "$BUNDLE/hotlap_bench" --benchmark_filter="${GPU_BENCH_FILTER:-gpu_bn/|gpu_conv/}" \
    --benchmark_out="$out/gpu_bench.json" --benchmark_out_format=json 2>&1 | grep -v WARNING
  echo
  echo "## CPU benchmarks (this machine's CPU)"
  timeout 120 "$BUNDLE/hotlap_bench" --benchmark_filter="${BENCH_FILTER:-gemm/.*/1024}" 2>&1 | grep -v WARNING
  echo
  echo "tests: $([ $status -eq 0 ] && echo passed || echo FAILED); elapsed $SECONDS s"
  echo
  echo "## summary"
  python3 - "$out" "$commit" "$status" <<'PY' || echo "(no python3: summary skipped)"
import json, os, subprocess, sys
out, commit, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
steps = [json.loads(l) for l in open(os.path.join(out, "train_steps.jsonl")) if l.strip()]
print("%-10s %-8s %12s %10s %12s" % ("precision", "conv", "images/s", "ms/step", "GPU peak MB"))
for r in steps:
    conv = "cudnn" if "conv cudnn" in r.get("compute", "") else "native"
    print("%-10s %-8s %12.1f %10.1f %12.0f" % (r["precision"], conv, r["images_per_s"], r["ms_per_iter"], r["gpu_peak_mb"]))
bench = {}
path = os.path.join(out, "gpu_bench.json")
if os.path.exists(path):
    bench = json.load(open(path))
# Hand-written convolution against cuDNN over ResNet-50 (batch 64): per pass and precision (fp32,
# tf32, bf16), the network's total time (each shape weighted by how often ResNet-50 uses it) and the
# geometric mean of the per-shape speed ratios weighted by cuDNN's time in the network; then per
# precision over the three passes.
import math
convs = {}
for b in bench.get("benchmarks", []):
    parts = b.get("name", "").split("/")
    if len(parts) < 6 or parts[0] != "gpu_conv" or b.get("error_occurred"):
        continue
    pass_, mode, shape, backend = parts[1], parts[2], parts[3] + "/" + parts[4], parts[5]
    convs.setdefault((pass_, mode), {}).setdefault(shape, {})[backend] = (b["real_time"], b.get("in_net", 1))
if convs:
    print()
    print("%-16s %-5s %12s %12s %14s %18s" % ("conv pass", "math", "native ms", "cudnn ms", "cudnn/native",
                                              "weighted geomean"))
def ratios(rows):
    # rows: (pass, shape, native us, cudnn us, count); the totals and the cuDNN-time-weighted geomean
    tn = sum(n * k for _, _, n, _, k in rows)
    tc = sum(c * k for _, _, _, c, k in rows)
    wsum = sum(c * k for _, _, _, c, k in rows)
    lsum = sum(c * k * math.log(c / n) for _, _, n, c, k in rows)
    return tn, tc, math.exp(lsum / wsum) if wsum else float("nan")
by_mode = {}
for (pass_, mode), shapes in sorted(convs.items()):
    rows = [(pass_, shape, r["native"][0], r["cudnn"][0], r["native"][1])
            for shape, r in shapes.items() if "native" in r and "cudnn" in r]
    if not rows:
        continue
    by_mode.setdefault(mode, []).extend(rows)
    tn, tc, geomean = ratios(rows)
    print("%-16s %-5s %12.2f %12.2f %14.2f %18.2f" % (pass_, mode, tn / 1e3, tc / 1e3, tc / tn, geomean))
    faster = sorted(shape for _, shape, n, c, _ in rows if n < c)
    if faster:
        print("  native faster on: " + ", ".join(faster))
for mode, rows in sorted(by_mode.items()):
    tn, tc, geomean = ratios(rows)
    print("%-16s %-5s %12.2f %12.2f %14.2f %18.2f" % ("all passes", mode, tn / 1e3, tc / 1e3, tc / tn, geomean))
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip()
except OSError:
    gpu = "unknown"
result = {"commit": commit, "gpu": gpu, "tests_passed": status == 0, "train_steps": steps,
          "gpu_benchmarks": bench.get("benchmarks", []), "context": bench.get("context", {})}
name = os.path.join(out, "gpu_check-%s.json" % commit)
json.dump(result, open(name, "w"), indent=1)
print("json result:", name)
PY
} 2>&1 | tee "$result"
echo "result file: $result"
