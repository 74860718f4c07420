#!/usr/bin/env bash
# Runs the fuzz targets built in BUILD_DIR (default build-fuzz) one after the other and says, for each,
# how many inputs it ran and whether it found anything. Exits 1 when one did. Used by `make fuzz` and
# by the short run at the end of `make test` (docs/fuzzing.md).
#
#   fuzz/run.sh [--seconds N | --runs N] [--keep-going] [--smoke] [--build-dir DIR] [TARGET...]
#
#   --seconds N   run each target for N seconds (default 600)
#   --runs N      or for N inputs each
#   --keep-going  with --seconds: do not stop at the first finding, run for the whole time and save every
#                 finding (libFuzzer's fork mode, one worker), so that a bug found in the first minute
#                 does not cost the other nine; the summary then counts the findings by their first line
#   --smoke       the short check of `make test`: each target starts from the committed seeds alone
#                 (an emptied scratch corpus), with a fixed random seed, so that the same tree gives the
#                 same run, and for the number of inputs in smoke_runs below unless --runs says otherwise
#   TARGET        fuzz_safetensors, fuzz_checkpoint, ... (default: every fuzz/fuzz_*.cpp)
#
# Inputs are run under ASan and UBSan; an input that takes more than FUZZ_TIMEOUT seconds (default 10)
# or makes the process hold more than FUZZ_RSS_MB megabytes (default 2048) counts as a finding too.
# Without --smoke the corpus grows in BUILD_DIR/corpus/TARGET (the seeds in fuzz/corpus/ are read, never
# written), so a later run goes on from where this one stopped. A finding is saved in
# BUILD_DIR/findings/TARGET/ (BUILD_DIR/smoke-findings/TARGET/ with --smoke; an earlier run's are moved
# into earlier-DATE-TIME/ there when the next starts), the full output in
# BUILD_DIR/logs/TARGET.log. Rerun a finding with:  BUILD_DIR/fuzz/TARGET FILE
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build-fuzz"
seconds=600
runs=""
keep_going=0
smoke=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --keep-going) keep_going=1; shift ;;
    --smoke) smoke=1; shift ;;
    --build-dir) build="$(cd "$2" && pwd)"; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) echo "fuzz/run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$root"/fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

# Inputs per target in the smoke run: 10-20 s each on two cores (CI), from the targets' speed there.
smoke_runs() {
  case "$1" in
    fuzz_safetensors) echo 50000 ;;
    fuzz_checkpoint) echo 3000 ;;  # each input may build two networks (a regressor or a classifier, then resume's)
    fuzz_image) echo 5000 ;;
    *) echo 10000 ;;
  esac
}

# The targets that take paths write each input into a scratch folder (fuzz_util.h's ScratchDir): on a
# RAM disk that runs twice as many inputs a second as on /tmp on a disk.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi

timeout_s="${FUZZ_TIMEOUT:-10}"
rss_mb="${FUZZ_RSS_MB:-2048}"
# UBSan stops at its first report (-fno-sanitize-recover); with a stack trace, the report says where.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

mkdir -p "$build/logs"
found_any=0
for target in "${targets[@]}"; do
  binary="$build/fuzz/$target"
  name="${target#fuzz_}"
  if [ ! -x "$binary" ]; then
    echo "fuzz/run.sh: $binary is not built (make fuzz builds it)" >&2
    exit 2
  fi
  if [ "$smoke" -eq 1 ]; then
    corpus="$build/smoke/$name"
    findings="$build/smoke-findings/$target"
    rm -rf "$corpus" "$findings"
    limit=(-runs="${runs:-$(smoke_runs "$target")}" -seed=1 -max_total_time=120)
  else
    corpus="$build/corpus/$name"
    findings="$build/findings/$target"
    if [ -n "$runs" ]; then limit=(-runs="$runs"); else limit=(-max_total_time="$seconds"); fi
  fi
  mode=()
  # Fork mode counts time, not inputs: with --runs, a run stops at its first finding.
  fork=0
  [ "$keep_going" -eq 1 ] && [ "$smoke" -eq 0 ] && [ -z "$runs" ] && fork=1
  [ "$fork" -eq 1 ] && mode=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
  mkdir -p "$corpus" "$findings"
  # What earlier runs found is moved aside, so that this run's summary counts only its own findings.
  if [ -n "$(find "$findings" -maxdepth 1 -type f)" ]; then
    earlier="$findings/earlier-$(date +%Y%m%d-%H%M%S)"
    mkdir -p "$earlier"
    find "$findings" -maxdepth 1 -type f -exec mv {} "$earlier/" \;
  fi
  dict=()
  [ -f "$root/fuzz/dict/$name.dict" ] && dict=(-dict="$root/fuzz/dict/$name.dict")
  log="$build/logs/$target.log"
  start=$(date +%s)
  # The first corpus folder receives the new inputs; the committed seeds are only read.
  "$binary" "${limit[@]}" "${mode[@]}" "${dict[@]}" -timeout="$timeout_s" -rss_limit_mb="$rss_mb" \
    -print_final_stats=1 -artifact_prefix="$findings/" "$corpus" "$root/fuzz/corpus/$name" > "$log" 2>&1
  status=$?
  elapsed=$(( $(date +%s) - start ))
  if [ "$fork" -eq 1 ]; then  # fork mode prints "#N: cov: ..." lines and no final statistics
    executions=$(grep -o '#[0-9]*: cov:' "$log" | tail -1 | tr -dc '0-9')
    rate=$(( ${executions:-0} / (elapsed > 0 ? elapsed : 1) ))
  else
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  fi
  artifacts=$(find "$findings" -maxdepth 1 -type f | sort)
  if [ -z "$artifacts" ] && grep -q "libFuzzer: run interrupted" "$log"; then  # Ctrl-C or a kill: no finding
    echo "$target: ${executions:-?} inputs in ${elapsed} s (${rate:-?}/s): interrupted, no findings"
    continue
  fi
  if [ "$status" -ne 0 ] || [ -n "$artifacts" ]; then
    found_any=1
    kinds=$(for a in $artifacts; do basename "$a" | sed 's/-[0-9a-f]*$//'; done | sort | uniq -c |
            awk '{printf "%s%d %s", (NR > 1 ? ", " : ""), $1, $2}')
    echo "$target: ${executions:-?} inputs in ${elapsed} s (${rate:-?}/s): FOUND ${kinds:-?}" \
         "(exit status $status)"
    # What went wrong, one line per kind (process ids and sizes left out so that repeats count as one).
    report='==hotlap fuzz== FINDING|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:'
    grep -E "$report" "$log" | sed -E 's/^==[0-9]+== ?//; s/[0-9]{6,}/N/g; s/0x[0-9a-f]+/0x.../g' |
      sort | uniq -c | sort -rn | head -10 | sed 's/^/  /'
    for a in $(echo "$artifacts" | head -5); do echo "  input: $a"; done
    [ "$(echo "$artifacts" | grep -c .)" -gt 5 ] && echo "  ... and more in $findings"
    echo "  rerun one: $binary INPUT    full output: $log"
  else
    echo "$target: ${executions:-?} inputs in ${elapsed} s (${rate:-?}/s): no findings"
  fi
done
exit "$found_any"
