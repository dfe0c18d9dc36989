#!/usr/bin/env bash
# Kontor under the sanitizers (clang 14), each build in its own directory:
#
#  address  AddressSanitizer + UndefinedBehaviorSanitizer (and LeakSanitizer):
#           the whole suite, system tests included (their kontord and kontor
#           are the sanitized ones). build-asan/
#  thread   ThreadSanitizer over the concurrent parts that do not need gRPC:
#           the thread pool, the store's writer thread and group commit,
#           the outbox's delivery loops, the receiver and the staging area,
#           the metrics listener. Debian's Abseil is not instrumented, so its
#           Mutex would look like no lock at all: this stage builds Abseil
#           from Debian's own source package (apt-get source abseil) with
#           TSan, and Kontor without gRPC against it. build-tsan/
#
#   tests/sanitize.sh [address] [thread]     (default: both)
#
# Installs what is missing through deploy/install-deps.sh (clang and its
# runtimes; dpkg-dev, and a deb-src entry for Debian's archive, for the
# Abseil source). Exit 0 only if every chosen stage passed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
stages=("$@")
((${#stages[@]})) || stages=(address thread)
for s in "${stages[@]}"; do
  case $s in
    address | thread) ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "sanitize.sh: unknown stage '$s' (address, thread)" >&2; exit 2 ;;
  esac
done

"$root/deploy/install-deps.sh" clang libclang-rt-14-dev
clang=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++)
say() { printf '\n--- sanitize.sh: %s\n' "$*"; }

address() {
  local build=$root/build-asan
  say "AddressSanitizer + UndefinedBehaviorSanitizer: the whole suite ($build)"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "${clang[@]}" -DKONTOR_SANITIZE=address,undefined >/dev/null
  cmake --build "$build" -j2
  # Leaks are checked (LSan); what Debian's uninstrumented libraries keep
  # until exit is listed in tests/lsan.supp.
  # Every process writes its report (if any) into $reports: also the
  # kontord processes of the system tests, whose exit codes nobody sees.
  local reports=$build/sanitizer-reports
  rm -rf "$reports"
  mkdir -p "$reports"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0:log_path=$reports/asan
  export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan
  export KONTOR_SANITIZED=1  # tests that measure memory say so and skip that
  local rc=0
  (cd "$build" && ctest --output-on-failure -j2 --timeout 2700) || rc=$?
  if compgen -G "$reports/*" >/dev/null; then
    echo "sanitize.sh: sanitizer reports (from test programs or kontord):" >&2
    for f in "$reports"/*; do
      echo "=== $f" >&2
      head -n 60 "$f" >&2
    done
    rc=1
  fi
  return $rc
}

# Abseil from Debian's source package, built with TSan, installed into
# $1/absl. Cached there: done once per build directory.
tsan_abseil() {
  local dir=$1 src
  [[ -f $dir/absl/lib/cmake/absl/abslConfig.cmake ]] && return 0
  "$root/deploy/install-deps.sh" dpkg-dev
  if ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/ /etc/apt/sources.list 2>/dev/null &&
     ! grep -qs '^deb-src' /etc/apt/sources.list 2>/dev/null; then
    ((EUID == 0)) || { echo "sanitize.sh: need root to add a deb-src entry" >&2; return 1; }
    say "adding deb-src for Debian's archive (/etc/apt/sources.list.d/kontor-deb-src.sources)"
    sed -n 's/^Types: deb$/Types: deb-src/p; /^\(URIs\|Suites\|Components\|Signed-By\):/p; /^$/p' \
      /etc/apt/sources.list.d/debian.sources >/etc/apt/sources.list.d/kontor-deb-src.sources
    apt-get update >/dev/null
  fi
  mkdir -p "$dir/src"
  (cd "$dir/src" && apt-get source --download-only abseil >/dev/null &&
     dpkg-source -x --no-check ./abseil_*.dsc abseil >/dev/null)
  src=$dir/src/abseil
  say "building Debian's Abseil $(cd "$src" && dpkg-parsechangelog -S Version) with TSan"
  cmake -S "$src" -B "$dir/absl-build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "${clang[@]}" -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer" \
    -DCMAKE_C_FLAGS="-fsanitize=thread" -DCMAKE_CXX_STANDARD=17 \
    -DABSL_PROPAGATE_CXX_STD=ON -DBUILD_TESTING=OFF -DABSL_BUILD_TESTING=OFF \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DCMAKE_INSTALL_PREFIX="$dir/absl" >/dev/null
  cmake --build "$dir/absl-build" -j2
  cmake --install "$dir/absl-build" >/dev/null
}

thread() {
  local build=$root/build-tsan
  say "ThreadSanitizer: the concurrent parts ($build)"
  tsan_abseil "$build"
  cmake -S "$root" -B "$build/kontor" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "${clang[@]}" -DKONTOR_SANITIZE=thread -DKONTOR_WITH_GRPC=OFF \
    -Dabsl_DIR="$build/absl/lib/cmake/absl" >/dev/null
  local tests=(common_test store_conformance_test sqlite_store_test outbox_test inbox_test
               app_test
               metrics_test)
  cmake --build "$build/kontor" -j2 --target "${tests[@]}"
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$root/tests/tsan.supp"
  local t failed=()
  for t in "${tests[@]}"; do
    say "$t"
    local bin
    bin=$(find "$build/kontor/tests" -type f -name "$t" -perm -u+x | head -n 1)
    if [[ -z $bin ]]; then
      echo "sanitize.sh: $t was not built" >&2
      failed+=("$t")
      continue
    fi
    "$bin" --gtest_brief=1 || { echo "sanitize.sh: $t exited with $?" >&2; failed+=("$t"); }
  done
  if ((${#failed[@]})); then
    echo "sanitize.sh: ThreadSanitizer: failed: ${failed[*]}" >&2
    return 1
  fi
}

for s in "${stages[@]}"; do "$s"; done
say "passed: ${stages[*]}"
