#!/usr/bin/env bash
# Rehearses `tools/gpu_check.sh run` on a CPU machine as the GPU machine would see it, so that the
# first run there does not fail on something that shows here:
#   - only the repository's files and gpu-bundle.tar.gz travel: the run happens in a copy of the
#     files git tracks (and the untracked ones it does not ignore), without .git;
#   - cuDNN, cuBLAS and the CUDA runtime exist only inside python3's NVIDIA wheels: in a private mount
#     namespace (unshare -m; needs root) every system folder holding libcudnn*, libcublas* or
#     libcudart* is replaced by a view without them, so the loader can find them nowhere else;
#   - python3 is the given virtual environment's (the GPU machine's holds PyTorch and the wheels).
#
#   python3 -m venv /tmp/gpuenv && /tmp/gpuenv/bin/pip install nvidia-cudnn-cu13 nvidia-cublas \
#       nvidia-cuda-runtime            # (+ torch, to rehearse tools/peer_resnet_gpu.py as well)
#   tools/gpu_check.sh prepare
#   tools/gpu_rehearsal.sh /tmp/gpuenv [OUT]
#
# Expected: every library found in the wheels, "no GPU" from hotlap info, every GPU case skipped, the
# training steps and benchmarks failing cleanly for want of a device, both result files written, all
# well inside the deadline.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:?usage: $0 VENV [OUT]}
venv=$(cd "$venv" && pwd)
out=$(mkdir -p "${2:-rehearsal-out}" && cd "${2:-rehearsal-out}" && pwd)
[ -x "$venv/bin/python3" ] || { echo "gpu_rehearsal: $venv/bin/python3 missing" >&2; exit 2; }
[ -f gpu-bundle.tar.gz ] || { echo "gpu_rehearsal: run tools/gpu_check.sh prepare first" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "gpu_rehearsal: needs root (a private mount namespace hides the system libraries)" >&2; exit 2; }

copy=$(mktemp -d /tmp/gpu_rehearsal.XXXXXX)
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -C "$copy" -xf -
cp gpu-bundle.tar.gz "$copy/"
echo "rehearsal copy: $copy ($(du -sh "$copy" | cut -f1), no .git: $([ -e "$copy/.git" ] && echo no || echo yes))"

# The real folders holding the system's CUDA libraries (ldconfig's cache and /usr/local/cuda*).
hide_dirs=$( { ldconfig -p | awk '/libcudnn|libcublas|libcudart/ {print $NF}';
              ls /usr/local/cuda*/lib*/libcudnn* /usr/local/cuda*/lib*/libcublas* /usr/local/cuda*/lib*/libcudart* 2>/dev/null; } |
            xargs -r -n1 readlink -f | xargs -r -n1 dirname | sort -u)
echo "hiding the CUDA libraries of: $(echo $hide_dirs)"

unshare -m --propagation private bash -s "$copy" "$out" "$venv" $hide_dirs <<'INNER'
set -euo pipefail
copy=$1 out=$2 venv=$3
shift 3
for d in "$@"; do
  # The folder's own files stay reachable under a private path; the view links to them, less the
  # CUDA libraries, and is mounted over the folder.
  orig=$(mktemp -d /tmp/gpu_rehearsal_orig.XXXXXX) view=$(mktemp -d /tmp/gpu_rehearsal_view.XXXXXX)
  mount --bind "$d" "$orig"
  for f in "$orig"/* "$orig"/.[!.]*; do
    [ -e "$f" ] || continue
    case "$(basename "$f")" in libcudnn*|libcublas*|libcudart*) continue ;; esac
    ln -s "$f" "$view/$(basename "$f")"
  done
  mount --bind "$view" "$d"
done
export PATH="$venv/bin:$PATH"
cd "$copy"
echo "python3: $(command -v python3)"
echo "system libcudnn still visible: $(ls /usr/local/cuda/lib64/libcudnn* 2>/dev/null | wc -l) files"
started=$SECONDS
set +e
GPU_CHECK_EXPECT_NO_GPU=1 tools/gpu_check.sh run "$out"
code=$?
echo "gpu_check.sh run: exit $code after $((SECONDS - started)) s"
exit $code
INNER
