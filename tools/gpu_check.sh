#!/usr/bin/env bash
# The one prepared run on a GPU machine: the GPU tests, the training step beside PyTorch's, the
# kernel benchmarks against cuDNN, and result files to commit under bench/results/.
#
#   tools/gpu_check.sh prepare     on the CPU machine. Builds for sm_90 (in build-gpu/) and packs the
#                                  binaries, the libraries the GPU machine may lack (OpenBLAS,
#                                  libgomp...), the commit and the list of GPU test cases into
#                                  gpu-bundle.tar.gz (~21 MB), so nothing is compiled on GPU time.
#                                  The GPU test cases are the ones that skip here ("CUDA test
#                                  skipped:"): prepare runs each test binary once to find them.
#   tools/gpu_check.sh run [OUT]   on the GPU machine, from the repository root, carrying
#                                  gpu-bundle.tar.gz. Within one deadline (GPU_CHECK_DEADLINE, 420 s):
#     1. finds the CUDA libraries: cuDNN (and cuBLAS, the CUDA runtime) where they are, the system or
#        the NVIDIA wheels in python3's site-packages (nvidia-cudnn-cu13 is a namespace package:
#        found through nvidia.__path__, then by searching site-packages), and stops before running
#        anything if a binary still lacks a library (`ldd`: the list of what is not found);
#     2. runs the GPU test cases of each test binary (CUDA_LAUNCH_BLOCKING=1, so a fault names the
#        kernel that caused it), each binary under what is left of the deadline;
#     3. the ResNet-50 training step at batch 64, 224x224 (`hotlap bench`): fp32, tf32 and bf16, on
#        the hand-written kernels (--conv native --batchnorm native) and on cuDNN (--conv cudnn
#        --batchnorm cudnn), and the same step in PyTorch (tools/peer_resnet_gpu.py);
#     4. the kernel benchmarks: batch norm GB/s and convolution TFLOP/s, hand-written against cuDNN;
#     5. the CPU test cases too, only with GPU_CHECK_CPU_TESTS=1 (CI runs them on every change).
#   It always writes, whatever failed or ran out of time, OUT/gpu_check-<commit>.txt (the log, the
#   summary table last), OUT/gpu_check-<commit>.json (every figure; rewritten after each step) and
#   OUT/gpu_tests-<commit>.log (every test binary's whole output, with each case's duration), three
#   files of the eight a device run brings back; and exits 1 if a test failed or timed out, 2 if a
#   library is missing, 3 if there is no GPU (every GPU case skipped; GPU_CHECK_EXPECT_NO_GPU=1 makes
#   that 0, for the rehearsal). OUT defaults to $OUT or ./out.
#   Options (environment): GPU_CHECK_DEADLINE seconds (420), GPU_BENCH_FILTER (gpu_bn/|gpu_conv/;
#   gpu_ adds the batch-128 and per-variant tables, ~3 minutes more: raise the deadline to match),
#   GPU_CHECK_CPU_TESTS=1, GPU_CHECK_SKIP_PEER=1, GPU_CHECK_TESTS_ONLY=1 (the GPU test cases alone,
#   sections 1-2: ~60 s, for a short run after a change to GPU code).
# tools/gpu_rehearsal.sh runs `run` on the CPU machine as the GPU machine would see it.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gpu}
BUNDLE=${BUNDLE:-gpu-bundle}
mode=${1:-run}

if [ "$mode" = prepare ]; then
  set -e
  # With OpenBLAS, as a user's build. The binaries and libraries are stripped so that the
  # repository and the bundle fit the 64 MiB a device run carries.
  # Without MPI: the GPU machine has no MPI runtime for the binaries to load (its NCCL comes with
  # the NVIDIA wheels, and the NCCL test runs as one rank).
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DHOTLAP_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DHOTLAP_BLAS=ON -DHOTLAP_MPI=OFF -DHOTLAP_TEST_DATA_DIR=tests/data -DHOTLAP_TEST_BINARY="$BUNDLE/hotlap" > /dev/null
  cmake --build "$BUILD" -j "$(nproc)"
  rm -rf "$BUNDLE" && mkdir -p "$BUNDLE/lib" "$BUNDLE/gpu_cases"
  cp "$BUILD"/hotlap "$BUILD"/tests/hotlap_*_tests "$BUILD"/bench/hotlap_bench "$BUNDLE/"
  # Libraries outside glibc and the CUDA libraries that the binaries load travel with them.
  for bin in "$BUNDLE"/hotlap*; do
    ldd "$bin" | awk '/=> \// {print $3}' | grep -E 'openblas|gomp|gfortran|quadmath|benchmark' || true
  done | sort -u | while read -r lib; do cp -L "$lib" "$BUNDLE/lib/"; done
  # The C++ runtime too, kept apart: used only if the GPU machine's is older than this build needs
  # (ldd then reports a GLIBCXX or CXXABI version not found).
  mkdir -p "$BUNDLE/lib-fallback"
  ldd "$BUNDLE/hotlap" | awk '/libstdc\+\+|libgcc_s/ && $3 ~ /^\// {print $3}' |
    while read -r lib; do cp -L "$lib" "$BUNDLE/lib-fallback/"; done
  strip --strip-unneeded "$BUNDLE"/hotlap* "$BUNDLE"/lib/*.so* "$BUNDLE"/lib-fallback/*.so* 2>/dev/null || true
  # The commit travels in the bundle: the repository's .git may not.
  { git rev-parse --short=12 HEAD 2>/dev/null || echo unknown; } > "$BUNDLE/COMMIT"
  if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    sed -i 's/$/-dirty/' "$BUNDLE/COMMIT"
  fi
  # The GPU test cases: those that report "CUDA test skipped:" on this machine (which must have no
  # GPU). doctest's XML reporter gives each case's messages; one name per line, for `run` to filter.
  for t in "$BUNDLE"/hotlap_*_tests; do
    name=$(basename "$t")
    HOTLAP_SKIP_BROWSER_TESTS=1 "$t" --no-intro --reporters=xml > "$BUILD/$name.cases.xml" 2>/dev/null || true
    python3 - "$BUILD/$name.cases.xml" > "$BUNDLE/gpu_cases/$name.txt" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
for case in root.iter("TestCase"):
    texts = " ".join((t.text or "") for t in case.iter("Text"))
    if "CUDA test skipped:" in texts:
        print(case.get("name"))
PY
    echo "$name: $(wc -l < "$BUNDLE/gpu_cases/$name.txt") GPU test cases"
  done
  [ -s "$BUNDLE/gpu_cases/hotlap_kernel_tests.txt" ] ||
    { echo "gpu_check: no GPU test case skipped here: run prepare on a machine without a GPU" >&2; exit 1; }
  # Packed: ~60 MB of binaries and libraries (OpenBLAS alone is 36 MB) gzip to ~21 MB, which with
  # the repository fits the 64 MiB a device run carries. Carry the .tar.gz; `run` unpacks it.
  tar -C "$BUNDLE" -czf "$BUNDLE.tar.gz.tmp" . && mv "$BUNDLE.tar.gz.tmp" "$BUNDLE.tar.gz"
  du -sh "$BUNDLE" "$BUNDLE.tar.gz" | awk '{print "prepared " $2 ": " $1}'
  echo "commit $(cat "$BUNDLE/COMMIT"); carry $BUNDLE.tar.gz (a device run carries at most 64 MiB, repository included)"
  exit 0
fi

[ "$mode" = run ] || { echo "usage: $0 prepare | run [OUT]" >&2; exit 2; }
deadline=${GPU_CHECK_DEADLINE:-420}
out=${2:-${OUT:-out}}
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
if [ -f "$BUNDLE.tar.gz" ] && { [ ! -x "$BUNDLE/hotlap" ] || [ "$BUNDLE.tar.gz" -nt "$BUNDLE/hotlap" ]; }; then
  rm -rf "$BUNDLE" && mkdir -p "$BUNDLE" && tar -C "$BUNDLE" -xzf "$BUNDLE.tar.gz" ||
    { echo "gpu_check: cannot unpack $BUNDLE.tar.gz" >&2; exit 2; }
fi
[ -x "$BUNDLE/hotlap" ] ||
  { echo "gpu_check: $BUNDLE/hotlap missing: run '$0 prepare' first and carry $BUNDLE.tar.gz" >&2; exit 2; }
commit=$(cat "$BUNDLE/COMMIT" 2>/dev/null || git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
result="$out/gpu_check-$commit.txt"
json="$out/gpu_check-$commit.json"
tests_log="$out/gpu_tests-$commit.log"
: > "$tests_log"

# Seconds left before the deadline, less what the steps after this one are promised.
left() { echo $((deadline - SECONDS - ${1:-0})); }
# step SECONDS_CAP RESERVE command...: runs the command under the smaller of its cap and what is
# left once RESERVE seconds are kept for later steps (timeout -k: a command that ignores TERM is
# killed 5 s later). Returns the command's exit code, 124 when it ran out of time, 125 when there was
# no time left to start it.
step() {
  local cap=$1 reserve=$2 limit
  shift 2
  limit=$(left "$reserve")
  [ "$limit" -gt "$cap" ] && limit=$cap
  if [ "$limit" -lt 5 ]; then
    echo "(skipped: $(left) s left before the deadline)"
    return 125
  fi
  timeout -k 5 "$limit" "$@"
}
summarise() { python3 tools/gpu_check_summary.py "$work" "$json" "$@" 2>&1 || echo "(summary failed)"; }

# The CUDA libraries: the system's (/usr/local/cuda) first, then every lib folder of python3's
# NVIDIA wheels. nvidia-cudnn-cu13 has no __init__.py, so nvidia.cudnn.__file__ is None: the folders
# come from the namespace's __path__; without an importable nvidia package, from a search of
# site-packages for libcudnn.so.9.
find_wheel_libs() {
  python3 - 2>/dev/null <<'PY'
import glob, os, site, sys
dirs = []
try:
    import nvidia
    for root in nvidia.__path__:
        dirs += sorted(glob.glob(os.path.join(root, "*", "lib")))
except ImportError:
    pass
if not any(glob.glob(os.path.join(d, "libcudnn.so*")) for d in dirs):
    roots = list(sys.path)
    try:
        roots += site.getsitepackages() + [site.getusersitepackages()]
    except AttributeError:
        pass
    for r in roots:
        for lib in glob.glob(os.path.join(r, "nvidia", "*", "lib", "libcudnn.so.9")):
            dirs.append(os.path.dirname(lib))
seen = []
for d in dirs:
    if os.path.isdir(d) and d not in seen:
        seen.append(d)
print(":".join(seen))
PY
}
wheel_libs=$(find_wheel_libs)
system_libs=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && system_libs="$system_libs:$d"; done
export LD_LIBRARY_PATH="$PWD/$BUNDLE/lib$system_libs${wheel_libs:+:$wheel_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export HOTLAP_SKIP_BROWSER_TESTS=1  # no Chromium on the GPU machine

{
  echo "commit=$commit"
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host=$(uname -n), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//')"
  echo "gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1 || true)"
  echo "deadline_s=$deadline"
} > "$work/meta.txt"

{
  echo "# hotlap GPU check"
  sed 's/=/: /' "$work/meta.txt"
  echo "library path: $LD_LIBRARY_PATH"
  echo
  echo "## pre-flight: every library each binary loads"
  not_found() { for bin in "$BUNDLE"/hotlap*; do ldd "$bin" 2>&1 | grep 'not found' | sed "s|^|$(basename "$bin"): |"; done | sort -u; }
  missing=$(not_found)
  if echo "$missing" | grep -q -E 'GLIBCXX|CXXABI'; then
    echo "this machine's C++ runtime is older than the build's: using the bundle's ($BUNDLE/lib-fallback)"
    export LD_LIBRARY_PATH="$PWD/$BUNDLE/lib-fallback:$LD_LIBRARY_PATH"
    missing=$(not_found)
  fi
  if [ -n "$missing" ]; then
    # Last resort: the missing libraries anywhere under the usual roots (another Python's wheels, a
    # CUDA installed elsewhere).
    for lib in $(echo "$missing" | awk '{print $2}' | sort -u); do
      found=$(timeout 20 find /opt /usr/local /usr/lib /root /home -name "$lib" \( -type f -o -xtype f \) 2>/dev/null | head -1)
      if [ -n "$found" ]; then
        echo "found $lib by search: $found"
        export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$found")"
      fi
    done
    missing=$(not_found)
  fi
  resolved=$(ldd "$BUNDLE/hotlap" 2>/dev/null | awk '/cudnn|cublas|cudart/ && $3 ~ /^\// {print $1 " => " $3}')
  echo "$resolved"
  echo "cudnn=$(echo "$resolved" | awk '/libcudnn/ {print $3}')" >> "$work/meta.txt"
  if [ -n "$missing" ]; then
    echo "MISSING LIBRARIES (nothing was run):"
    echo "$missing"
    echo "preflight=missing: $(echo "$missing" | awk '{print $2}' | sort -u | tr '\n' ' ')" >> "$work/meta.txt"
    summarise --table
    exit 2
  fi
  echo "preflight=ok" >> "$work/meta.txt"
  echo "all found"
  echo
  echo "## hotlap info"
  step 30 0 "$BUNDLE/hotlap" info | tee "$work/info.txt"
  if grep -q 'devices: *no CUDA device' "$work/info.txt"; then
    echo "gpu_found=no" >> "$work/meta.txt"
    echo "NO GPU FOUND: every GPU test case will skip, and the GPU steps fail for want of a device"
  else
    echo "gpu_found=yes" >> "$work/meta.txt"
  fi
  echo
  summarise

  # A test binary over a list of cases (phase gpu: the GPU cases; cpu: every other case), its whole
  # output appended to the tests log, line-buffered with each case's time, so a crash or a timeout
  # leaves what came before it and which case was running; this log gets doctest's closing line
  # and, when a binary fails, its failure reports.
  linebuf=""
  command -v stdbuf > /dev/null && linebuf="stdbuf -oL -eL"
  run_tests() {
    local t=$1 phase=$2 cap=$3 reserve=$4 name cases filter started code closing part skipped
    name=$(basename "$t")
    cases="$BUNDLE/gpu_cases/$name.txt"
    # doctest filters split on commas and know * and ? as wildcards: a comma becomes ?.
    filter=$(sed 's/,/?/g' "$cases" 2>/dev/null | paste -sd, -)
    if [ -z "$filter" ] && [ "$phase" = gpu ]; then
      echo "$name: no GPU test cases listed"
      return
    fi
    if [ "$phase" = gpu ]; then part="--test-case=$filter"; else part="--test-case-exclude=$filter"; fi
    started=$SECONDS
    echo "===== $name ($phase cases) =====" >> "$tests_log"
    CUDA_LAUNCH_BLOCKING=$([ "$phase" = gpu ] && echo 1 || echo 0) \
      step "$cap" "$reserve" $linebuf "$t" --no-intro --duration=true "$part" >> "$tests_log" 2>&1
    code=$?
    section() { sed -n "/===== $name ($phase cases) =====/,\$p" "$tests_log"; }
    closing=$(section | grep -E '^\[doctest\] test cases' | tail -1)
    # doctest counts a case that skipped for want of a GPU as passed: count those separately.
    skipped=$(section | grep -c 'CUDA test skipped:')
    if [ "$code" -ne 0 ] && [ "$code" -ne 125 ]; then
      section | grep -E -B 3 -A 12 '(ERROR|FATAL ERROR|WARNING): ' | head -300
      echo "... last lines:"
      section | tail -8
    fi
    echo "$name ($phase): exit $code$([ "$code" -eq 124 ] && echo ' (timed out)')$([ "$code" -eq 125 ] && echo ' (not started: no time left)') in $((SECONDS - started)) s  ${closing:-(no closing line)}$([ "$skipped" -gt 0 ] && echo ", $skipped skipped: no GPU")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$phase" "$code" "$((SECONDS - started))" "$skipped" "$closing" >> "$work/tests.tsv"
  }

  echo "## GPU test cases (CUDA_LAUNCH_BLOCKING=1; whole output: $tests_log)"
  # Each binary under its own cap (so that one hung binary leaves time for the others) and what is
  # left once the later sections' minimum is kept (120 s: training steps, peer, kernel benchmarks).
  tests_only=${GPU_CHECK_TESTS_ONLY:-0}
  for entry in kernel:120 nn:60 resnet:90 app:45; do
    run_tests "$BUNDLE/hotlap_${entry%%:*}_tests" gpu "${entry#*:}" "$([ "$tests_only" = 1 ] && echo 0 || echo 120)"
    summarise
  done
  echo "(elapsed: $SECONDS s of $deadline)"
  echo
  if [ "$tests_only" != 1 ]; then

  echo "## ResNet-50 training step on the GPU: batch 64, 224x224"
  mkdir -p "$work/steps"
  for precision in fp32 tf32 bf16; do
    for backend in native cudnn; do
      step 45 75 "$BUNDLE/hotlap" bench --device cuda --mode train --depth 50 --batch 64 --size 224 \
        --warmup 3 --iters 10 --precision "$precision" --conv "$backend" --batchnorm "$backend" \
        > "$work/steps/$precision-$backend.out" 2>&1
      echo $? > "$work/steps/$precision-$backend.rc"
      echo "hotlap $precision $backend: exit $(cat "$work/steps/$precision-$backend.rc"): $(tail -1 "$work/steps/$precision-$backend.out")"
    done
  done
  summarise
  if [ "${GPU_CHECK_SKIP_PEER:-0}" != 1 ]; then
    echo "-- the same step in PyTorch (tools/peer_resnet_gpu.py)"
    PYTHONUNBUFFERED=1 step 90 60 python3 tools/peer_resnet_gpu.py --batch 64 --size 224 --warmup 3 --iters 10 \
      --json "$work/peer.jsonl" > /dev/null
    echo "peer: exit $?"
    summarise
  fi
  echo "(elapsed: $SECONDS s of $deadline)"
  echo

  echo "## hotlap train on the GPU: the demo's job (synthetic data, ResNet-18 width 16), 6 epochs"
  # `make demo`'s data and network, on --device cuda: the whole command (loader, steps, evaluation,
  # checkpoints, report) end to end, its last metrics beside the same run's first.
  step 20 60 "$BUNDLE/hotlap" synth --out "$work/demo-data" --n 1100 --size 96 --overwrite > "$work/demo.out" 2>&1 &&
    step 60 45 "$BUNDLE/hotlap" train --data "$work/demo-data" --out "$work/demo-run" --overwrite --fold 1 \
      --device cuda --depth 18 --width 16 --optimizer adamw --lr 2e-3 --schedule cosine --epochs 6 --batch 32 \
      --resize 72 --size 64 --threads 8 >> "$work/demo.out" 2>&1
  echo "demo train on cuda: exit $?; its last lines:"
  tail -12 "$work/demo.out"
  [ -f "$work/demo-run/metrics.csv" ] && { echo "-- metrics.csv"; cat "$work/demo-run/metrics.csv"; }
  echo "(elapsed: $SECONDS s of $deadline)"
  echo

  echo "## GPU kernels: batch norm GB/s, convolution TFLOP/s (hand-written vs cuDNN)"
  step 150 15 "$BUNDLE/hotlap_bench" --benchmark_filter="${GPU_BENCH_FILTER:-gpu_bn/|gpu_conv/}" \
    --benchmark_out="$work/gpu_bench.json" --benchmark_out_format=json 2>&1 | grep -v WARNING |
    awk '/ERROR OCCURRED/ { if (++errors > 3) next } { print } END { if (errors > 3) print "... and " errors - 3 " more rows with an error" }'
  summarise
  echo

  fi  # tests_only

  if [ "${GPU_CHECK_CPU_TESTS:-0}" = 1 ]; then
    echo "## CPU test cases (what CI runs), with what is left"
    for t in "$BUNDLE"/hotlap_*_tests; do
      run_tests "$t" cpu 180 15
    done
    echo
  fi

  echo "## summary (elapsed $SECONDS s of $deadline)"
  summarise --table
} 2>&1 | tee "$result"
echo "result files: $result $json $tests_log"
python3 -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["tests_passed"] else 1)' "$json" 2>/dev/null
code=$?
grep -q '^preflight=missing' "$work/meta.txt" && code=2
# Without a GPU every GPU case skips and nothing was checked: not a pass on a GPU machine (the
# rehearsal on a CPU machine says it expects that).
grep -q '^gpu_found=no' "$work/meta.txt" && [ "${GPU_CHECK_EXPECT_NO_GPU:-0}" != 1 ] && [ "$code" = 0 ] && code=3
rm -rf "$work"
exit $code
