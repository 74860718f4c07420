#!/usr/bin/env bash
# Installs the Debian packages hotlap builds against. Idempotent: installs only what is missing.
# As root it runs apt-get itself; otherwise it prints the exact command to run and exits non-zero.
#
#   scripts/install-deps.sh          what the build needs (make demo)
#   scripts/install-deps.sh --test   that, plus what only the tests need (make test, make fuzz)
set -euo pipefail

with_test_packages=0
for arg in "$@"; do
  case "$arg" in
    --test) with_test_packages=1 ;;
    *) echo "install-deps: unknown option '$arg' (the only option is --test)" >&2; exit 2 ;;
  esac
done

packages=(
  cmake g++ make pkg-config
  libstb-dev          # stb_image: JPEG/PNG/BMP decoding
  doctest-dev         # unit tests
  libbenchmark-dev    # Google Benchmark
  libopenblas-openmp-dev  # the yardstick CPU GEMM; the OpenMP build, so its threads and ours cooperate
  nlohmann-json3-dev  # safetensors headers, reports
  libcli11-dev        # command-line parsing
  libopenmpi-dev openmpi-bin  # data-parallel training across processes and hosts (mpirun)
)

# Test-only: not needed to build or run hotlap.
test_packages=(
  chromium            # headless browser that renders the HTML reports in tests/apps
  clang               # the fuzz targets (fuzz/, make fuzz and the end of make test): libFuzzer is Clang's
  libclang-rt-dev     # Clang's runtimes: libFuzzer, ASan, UBSan (libclang-rt-14-dev on Debian 12)
  libomp-dev          # LLVM's OpenMP, which clang -fopenmp links (GCC's libgomp is g++'s)
)
if [ "$with_test_packages" -eq 1 ]; then
  packages+=("${test_packages[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  if [ "$with_test_packages" -eq 1 ]; then
    echo "install-deps: all build and test dependencies present"
  else
    echo "install-deps: all build dependencies present"
  fi
  exit 0
fi

echo "install-deps: missing: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: not root; run:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
