#!/usr/bin/env bash
# Installs what is missing (Debian 12), builds Kontor and runs every test:
#
#  1. the suite: unit tests per module, in-process multi-node tests over real
#     mTLS, and real-process system tests (SIGKILL and crash points, chaos
#     soak, an independent Python grpcio client, testssl.sh, the attacks of
#     issue 11), in a Release build (build/);
#  2. the same suite under AddressSanitizer and UndefinedBehaviorSanitizer
#     (clang, build-asan/), and the concurrent parts (outbox loops, receiver,
#     group commit, thread pool, staging) under ThreadSanitizer
#     (build-tsan/; see tests/sanitize.sh);
#  3. every libFuzzer target for a bounded time (tests/fuzz/run.sh).
#
#   tests/run.sh             everything (what CI runs; about 45 min on 2 cores)
#   tests/run.sh --quick     stage 1 only (about 8 min)
#   tests/run.sh -R REGEX    stage 1, only tests whose name matches (ctest -R)
#   tests/run.sh --sanitize  stage 2 only
#   tests/run.sh --fuzz      stage 3 only
#
# Environment: KONTOR_BUILD_DIR (default build/ in the repository);
# KONTOR_FUZZ_SECONDS (default 60 per target); the sanitizer and fuzz build
# directories are build-asan/, build-tsan/ and build-fuzz/.
# Exit 0 only if every stage run passed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
build=${KONTOR_BUILD_DIR:-$root/build}

suite=1 sanitize=1 fuzz=1
ctest_args=()
case "${1:-}" in
  -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --quick) sanitize=0 fuzz=0; shift ;;
  --sanitize) suite=0 fuzz=0; shift ;;
  --fuzz) suite=0 sanitize=0; shift ;;
  -R) sanitize=0 fuzz=0; ctest_args=("$@"); shift $# ;;
  "") ;;
  *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
esac
(($# == 0)) || { echo "run.sh: unexpected '$*' (see --help)" >&2; exit 2; }

"$root/deploy/install-deps.sh"

stage() { printf '\n=== %s: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

if ((suite)); then
  stage "suite (Release build in $build)"
  if [[ ! -f $build/CMakeCache.txt ]]; then
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
  fi
  cmake --build "$build" -j2
  # Unit and in-process tests run two at a time; the system tests (real
  # federations on loopback) are marked RUN_SERIAL.
  (cd "$build" && ctest --output-on-failure -j2 --timeout 1800 "${ctest_args[@]}")
fi
if ((sanitize)); then
  stage "sanitizers (tests/sanitize.sh)"
  "$root/tests/sanitize.sh"
fi
if ((fuzz)); then
  stage "fuzzing (tests/fuzz/run.sh)"
  "$root/tests/fuzz/run.sh" --seconds "${KONTOR_FUZZ_SECONDS:-60}" --jobs 2
fi
stage "all stages passed"
