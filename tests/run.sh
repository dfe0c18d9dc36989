#!/usr/bin/env bash
# Installs what is missing (Debian 12), builds Kontor and runs every test:
# unit tests per module, in-process multi-node tests over real mTLS, and
# real-process system tests (SIGKILL, crash points, an independent Python
# grpcio client, TLS refusals). Exit 0 only if all pass.
#
#   tests/run.sh            everything
#   tests/run.sh -R REGEX   only tests whose name matches (ctest -R)
#
# Environment: KONTOR_BUILD_DIR (default build/ in the repository).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
build=${KONTOR_BUILD_DIR:-$root/build}

case "${1:-}" in
  -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

"$root/deploy/install-deps.sh"

if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$build" -j2

cd "$build"
# Unit and in-process tests run two at a time; the system tests (real
# federations on loopback) are marked RUN_SERIAL.
ctest --output-on-failure -j2 --timeout 1800 "$@"
