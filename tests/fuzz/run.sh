#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/*_fuzz.cc) with clang 14, ASan
# and UBSan in a build directory of their own, replays the regression
# inputs (tests/fuzz/regressions/TARGET/), then fuzzes every target for a
# bounded time, each from a scratch copy of its seed corpus
# (tests/fuzz/corpus/TARGET/, never modified). Prints per target the
# executions, exec/s and coverage (cov = edges, ft = features, from
# libFuzzer's final stats). Exits non-zero if a regression input fails or
# a target crashed, leaked, timed out or ran out of memory; the input that
# did it is kept and its path printed.
#
#   tests/fuzz/run.sh [--seconds N] [--jobs J] [TARGET...]
#   tests/fuzz/run.sh --long          1 hour per target
#   tests/fuzz/run.sh --regressions   only replay the regression inputs
#   tests/fuzz/run.sh --regenerate-corpus   rewrite corpus/ and dict/
#
# Options:
#   --seconds N   fuzzing time per target (default 60)
#   --long        3600 seconds per target
#   --jobs J      targets fuzzed at once (default 1; 2 on this 2-core box)
#   --keep        keep the scratch corpora (what the run found) afterwards
#   TARGET...     only these (envelope, routing, ...; default: all)
# Environment: KONTOR_FUZZ_BUILD_DIR (default build-fuzz/ in the
# repository), KONTOR_FUZZ_OUT (default BUILD_DIR/fuzz-out: logs, crash
# inputs, kept corpora), KONTOR_FUZZ_JOBS (build parallelism, default 2).
# Scratch (corpus copies, the targets' stores) goes to /dev/shm when it is
# there, else $TMPDIR, and is removed at the end.
# Installs nothing itself but, when missing, clang libfuzzer-14-dev
# libclang-rt-14-dev through deploy/install-deps.sh.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
here=$root/tests/fuzz
build=${KONTOR_FUZZ_BUILD_DIR:-$root/build-fuzz}
out=${KONTOR_FUZZ_OUT:-$build/fuzz-out}
all_targets=(envelope routing receipt chunk_list chunk_frame federation
             config payload_json payload template export)

seconds=60
jobs=1
keep=0
mode=fuzz
targets=()
while (($#)); do
  case $1 in
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    --seconds) seconds=${2:?--seconds needs a number}; shift ;;
    --seconds=*) seconds=${1#*=} ;;
    --long) seconds=3600 ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift ;;
    --jobs=*) jobs=${1#*=} ;;
    --keep) keep=1 ;;
    --regressions) mode=regressions ;;
    --regenerate-corpus) mode=regenerate ;;
    -*) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[[ $seconds =~ ^[0-9]+$ && $jobs =~ ^[1-9][0-9]*$ ]] ||
  { echo "run.sh: --seconds and --jobs take whole numbers" >&2; exit 2; }
((${#targets[@]})) || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] ||
    { echo "run.sh: no target '$t' (one of: ${all_targets[*]})" >&2; exit 2; }
done

"$root/deploy/install-deps.sh" clang libfuzzer-14-dev libclang-rt-14-dev

if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DKONTOR_FUZZ=ON -DKONTOR_BUILD_TESTS=OFF \
    -DKONTOR_SANITIZE=fuzzer-no-link,address,undefined
fi
cmake --build "$build" -j"${KONTOR_FUZZ_JOBS:-2}" --target fuzz_all
bin=$build/tests/fuzz

mkdir -p "$out"
# Scratch (corpus copies, the targets' stores and chunk files) on tmpfs when
# there is one: the targets fsync a lot.
scratch_root=/dev/shm
[[ -d $scratch_root && -w $scratch_root ]] || scratch_root=${TMPDIR:-/tmp}
tmp=$(mktemp -d "$scratch_root/kontor-fuzz-run.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
export KONTOR_FUZZ_TMP=$tmp
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:handle_abort=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [[ $mode == regenerate ]]; then
  rm -rf "$tmp/seeds"
  "$bin/fuzz_seed_gen" "$tmp/seeds"
  rm -rf "$here/corpus" "$here/dict"
  cp -r "$tmp/seeds/corpus" "$tmp/seeds/dict" "$here/"
  echo "run.sh: wrote $here/corpus and $here/dict"
  exit 0
fi

# Flags every libFuzzer run gets: structured inputs can be larger than the
# default 4 KiB; a 25 s input is a hang.
flags=(-timeout=25 -rss_limit_mb=2560 -max_len=32768)

status=0
# Regression inputs: each must run clean (they are the crashes found so far).
replayed=0
for t in "${targets[@]}"; do
  dir=$here/regressions/$t
  [[ -d $dir ]] || continue
  mapfile -t inputs < <(find "$dir" -type f ! -name '*.md' | sort)
  ((${#inputs[@]})) || continue
  if "$bin/${t}_fuzz" "${flags[@]}" -runs=1 "${inputs[@]}" \
      >"$tmp/$t.regressions.log" 2>&1; then
    replayed=$((replayed + ${#inputs[@]}))
  else
    echo "FAIL regression input of $t:" >&2
    grep -E 'Running:|ERROR|invariant|SUMMARY' "$tmp/$t.regressions.log" >&2 || true
    cp "$tmp/$t.regressions.log" "$out/$t.regressions.log"
    echo "  log: $out/$t.regressions.log" >&2
    status=1
  fi
done
echo "regressions: $replayed input(s) replayed$( ((status)) && echo ', FAILED' || echo ', all clean')"
[[ $mode == regressions ]] && exit "$status"

fuzz_one() {
  local t=$1 corpus=$tmp/corpus/$t log=$out/$t.log dict=()
  mkdir -p "$corpus" "$out/$t"
  cp "$here/corpus/$t"/* "$corpus/" 2>/dev/null || true
  [[ -f $here/dict/$t.dict ]] && dict=(-dict="$here/dict/$t.dict")
  local extra=()
  case $t in
    routing | federation)
      # The store's writer thread frees its batch after answering, racing
      # libFuzzer's per-input leak check (a leak report that no replay
      # reproduces); LeakSanitizer still checks the whole run at exit.
      extra=(-detect_leaks=0) ;;
  esac
  mkdir -p "$tmp/scratch-$t"
  KONTOR_FUZZ_TMP=$tmp/scratch-$t "$bin/${t}_fuzz" "${flags[@]}" "${dict[@]}" \
    "${extra[@]}" \
    -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$out/$t/" "$corpus" >"$log" 2>&1
}

report() {
  local t=$1 rc=$2 log=$out/$t.log
  local execs rate cov ft corp artifact
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2 || true)
  ft=$(grep -Eo 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2 || true)
  corp=$(grep -Eo 'corp: [0-9]+' "$log" | tail -1 | cut -d' ' -f2 || true)
  printf '%-13s %-6s %10s %8s %7s %7s %6s\n' "$t" "$( ((rc)) && echo FAIL || echo ok)" \
    "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
  if ((rc)); then
    { grep -E 'ERROR: |invariant violated|SUMMARY: |ParseDictionaryFile' "$log" || true; } |
      head -5 | sed 's/^/    /'
    artifact=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1 || true)
    echo "    input: ${artifact:-(none written)}"
    echo "    log:   $log"
    echo "    replay: $bin/${t}_fuzz $artifact  (KONTOR_FUZZ_PRINT=1 to see it)"
  fi
}

echo "fuzzing ${#targets[@]} target(s), ${seconds} s each, $jobs at a time"
printf '%-13s %-6s %10s %8s %7s %7s %6s\n' target result execs exec/s cov ft corpus
declare -A pid_of=()
running=0
results=$tmp/results
: >"$results"
start_one() {
  local t=$1
  ( set +e; fuzz_one "$t"; echo "$t $?" >>"$results" ) &
  pid_of[$t]=$!
}
for t in "${targets[@]}"; do
  while ((running >= jobs)); do wait -n || true; running=$((running - 1)); done
  start_one "$t"
  running=$((running + 1))
done
wait || true
for t in "${targets[@]}"; do
  rc=$(awk -v t="$t" '$1 == t {print $2}' "$results")
  report "$t" "${rc:-1}"
  ((${rc:-1} == 0)) || status=1
done
if ((keep)); then
  mkdir -p "$out/corpus"
  cp -r "$tmp/corpus/." "$out/corpus/"
  echo "scratch corpora kept in $out/corpus"
fi
echo "logs: $out/TARGET.log$( ((status)) && echo '; FAILED' || echo '; all targets clean')"
exit "$status"
