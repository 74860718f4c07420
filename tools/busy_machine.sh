#!/usr/bin/env bash
# How hotlap's own jobs hold up on a busy machine: one epoch of the demo's training and `hotlap score`
# on a folder of photos, idle and with LOAD competing CPU-bound processes (`yes` into /dev/null, each
# keeping a core busy at the default priority), with hotlap's thread policy (docs/threads.md: as many
# compute threads as the machine has free; waiting threads sleep) and with the fixed count and GCC
# OpenMP's spin-then-sleep waiting that hotlap had before it (OMP_NUM_THREADS=<CPUs>,
# GOMP_SPINCOUNT=300000; run once per measurement, as it is slow under load). Prints one line per run
# and a table of the medians, with each loaded time as a share of the idle throughput.
#
#   tools/busy_machine.sh [HOTLAP] [PHOTOS] [LOAD] [REPEATS]
#     HOTLAP   the binary (default build/hotlap)
#     PHOTOS   a folder of photos to score (default: 20 copies of a generated picture)
#     LOAD     competing processes (default 2)
#     REPEATS  runs of each measurement, median reported (default 3)
#
# The same ResNet-18 as `make demo` (width 16, 64 px input, batch 32) on 1100 generated images.
set -euo pipefail
HOTLAP=${1:-build/hotlap}
PHOTOS=${2:-}
LOAD=${3:-2}
REPEATS=${4:-3}
WORK=$(mktemp -d /tmp/hotlap-busy.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

"$HOTLAP" synth --out "$WORK/data" --n 1100 --size 96 > /dev/null
if [[ -z "$PHOTOS" ]]; then  # the demo data's first 20 images stand in for photos
  mkdir -p "$WORK/photos"
  images=("$WORK"/data/Images/*.jpg)
  cp "${images[@]:0:20}" "$WORK/photos/"
  PHOTOS="$WORK/photos"
fi

now() { date +%s.%N; }

# seconds for one epoch of the demo's training (the epoch line's own wall time is not printed, so
# the whole command is timed; data set-up is the same in every run)
train_once() {
  local t0; t0=$(now)
  env "${ENVS[@]}" "$HOTLAP" train --data "$WORK/data" --out "$WORK/run-$RANDOM" --fold 1 --depth 18 --width 16 \
    --optimizer adamw --lr 2e-3 --schedule cosine --epochs 1 --batch 32 --resize 72 --size 64 > /dev/null
  awk -v a="$(now)" -v b="$t0" 'BEGIN {print a - b}'
}

score_once() {
  local model=$1 t0; t0=$(now)
  env "${ENVS[@]}" "$HOTLAP" score --quiet --model "$model" "$PHOTOS" > /dev/null
  awk -v a="$(now)" -v b="$t0" 'BEGIN {print a - b}'
}

median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

"$HOTLAP" train --data "$WORK/data" --out "$WORK/model" --fold 1 --depth 18 --width 16 --optimizer adamw \
  --lr 2e-3 --epochs 1 --batch 32 --resize 72 --size 64 > /dev/null
MODEL="$WORK/model/fold1/best.safetensors"
rm -rf "$WORK"/run-*

declare -A RESULT
for load in 0 "$LOAD"; do
  pids=()
  for ((i = 0; i < load; i++)); do yes > /dev/null & pids+=($!); done
  for policy in hotlap before; do
    ENVS=(HOTLAP_BUSY_MACHINE=1)  # a harmless variable, so the array is never empty
    runs=$REPEATS
    if [[ $policy == before ]]; then ENVS+=(OMP_NUM_THREADS="$(nproc)" GOMP_SPINCOUNT=300000); runs=1; fi
    for job in train score; do
      times=()
      for ((r = 0; r < runs; r++)); do
        if [[ $job == train ]]; then t=$(train_once); else t=$(score_once "$MODEL"); fi
        times+=("$t")
        printf 'load %d  %-7s  %-5s  run %d: %.2f s\n' "$load" "$policy" "$job" "$((r + 1))" "$t"
      done
      RESULT[$load,$policy,$job]=$(printf '%s\n' "${times[@]}" | median)
    done
  done
  for p in "${pids[@]}"; do kill "$p"; done
  wait "${pids[@]}" 2>/dev/null || true
done

echo
echo "$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load = $LOAD x yes"
echo "| job | threads, waiting | idle s | loaded s | loaded throughput / idle |"
echo "|---|---|---|---|---|"
for job in train score; do
  for policy in hotlap before; do
    idle=${RESULT[0,$policy,$job]}; busy=${RESULT[$LOAD,$policy,$job]}
    name=$([[ $job == train ]] && echo "demo training, 1 epoch" || echo "score $(ls "$PHOTOS" | wc -l) photos")
    wait_text=$([[ $policy == hotlap ]] && echo "adaptive, sleep (hotlap)" || echo "$(nproc) fixed, spin (before)")
    printf '| %s | %s | %.2f | %.2f | %.0f%% |\n' "$name" "$wait_text" "$idle" "$busy" "$(awk -v i="$idle" -v b="$busy" 'BEGIN {print 100 * i / b}')"
  done
done
