#!/usr/bin/env bash
# Builds Kontor, runs a three-node federation on loopback and sends a message.
set -euo pipefail

prog=demo.sh
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
federation=$root/deploy/federation.sh

usage() {
  cat <<'EOF'
Usage: deploy/demo.sh

On Debian 12 (as root, or with sudo, if packages are missing):
  1. installs the missing Debian packages of deploy/packages.txt
  2. builds Kontor (cmake -G Ninja, Release) into build/
  3. starts a loopback federation of ee, fi and lv (deploy/federation.sh)
  4. sends a note from ee to fi, waits for fi's signed receipt, shows the
     message in fi's inbox and the receipt on ee
  5. stops the federation (also on failure or Ctrl-C)

Environment:
  KONTOR_DEMO_DIR   federation directory (default /tmp/kontor-demo; reused)
  KONTOR_BUILD_DIR  build directory (default build/ in the repository)
EOF
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") ;;
  *) echo "$prog: unexpected argument '$1' (see $prog --help)" >&2; exit 2 ;;
esac

demo_dir=${KONTOR_DEMO_DIR:-/tmp/kontor-demo}
build=${KONTOR_BUILD_DIR:-$root/build}

step() { printf '==> %s\n' "$*"; }
die() { echo "$prog: $*" >&2; exit 1; }

# Prints the first executable among "$@", or fails.
first_executable() {
  local c
  for c in "$@"; do
    if [[ -f $c && -x $c ]]; then echo "$c" && return 0; fi
  done
  return 1
}

cd "$root"

step "Checking Debian packages"
"$root/deploy/install-deps.sh"

step "Configuring the build in $build"
if [[ -f $build/CMakeCache.txt ]]; then
  # Keep the generator the build directory was made with.
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
else
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi

step "Building"
cmake --build "$build" -j2

kontord=$(first_executable "$build/daemon/kontord" "$build/kontord") ||
  kontord=$(command -v kontord) || die "the build made no kontord (looked in $build/daemon, $build)"
kontor=$(first_executable "$build/client/kontor" "$build/kontor") ||
  kontor=$(command -v kontor) || die "the build made no kontor CLI (looked in $build/client, $build)"
export KONTORD=$kontord

running=0
cleanup() {
  local rc=$?
  if ((running)); then
    ((rc == 0)) || echo "$prog: failed; node logs: $demo_dir/*/kontord.log" >&2
    step "Stopping the federation"
    "$federation" stop "$demo_dir" >/dev/null 2>&1 || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Starting a federation of ee, fi and lv in $demo_dir"
running=1
exports=$("$federation" start "$demo_dir" ee "fi" lv) || die "federation.sh start failed"

# KONTOR_NODE of each node, from the lines federation.sh printed.
declare -A node_of=()
while IFS= read -r line; do
  [[ $line == "export KONTOR_NODE="* ]] || continue
  eval "${line%%  # *}"
  node_of[${line##*# }]=$KONTOR_NODE
done <<<"$exports"
unset KONTOR_NODE
for n in ee "fi" lv; do
  [[ -n ${node_of[$n]:-} ]] || die "federation.sh printed no KONTOR_NODE line for $n"
  printf '    %-3s KONTOR_NODE=%s\n' "$n" "${node_of[$n]}"
done

# kontor_on NODE ARGS...: runs the CLI against NODE's local socket.
kontor_on() {
  local n=$1
  shift
  KONTOR_NODE=${node_of[$n]} "$kontor" "$@"
}

body=$demo_dir/demo-body.txt
cat >"$body" <<EOF
Demo referral note from ee to fi, written $(date -u +%Y-%m-%dT%H:%M:%SZ).
This is a demonstration message; it contains no personal data.
EOF

step "ee: kontor send --to fi --kind note --subject \"Demo referral note\" --body-file $body"
id=$(kontor_on ee send --to "fi" --kind note --subject "Demo referral note" --body-file "$body") ||
  die "kontor send failed (exit $?)"
id=${id//[[:space:]]/}
[[ -n $id ]] || die "kontor send printed no message id"
echo "    message id: $id"

step "ee: waiting for delivery (kontor status $id, up to 30 s)"
deadline=$((SECONDS + 30))
while :; do
  rc=0
  state=$(kontor_on ee status "$id" 2>&1) || rc=$?
  if ((rc == 0)) && grep -qiw delivered <<<"$state"; then break; fi
  if ((rc == 0)) && grep -qiwE 'rejected|expired|cancell?ed' <<<"$state"; then
    printf '%s\n' "$state" >&2
    die "message $id was not delivered"
  fi
  if ((SECONDS >= deadline)); then
    printf '%s\n' "$state" >&2
    die "message $id not delivered within 30 s (last kontor status exit code $rc)"
  fi
  sleep 0.5
done
echo "    delivered"

step "fi: kontor inbox"
kontor_on "fi" inbox || die "kontor inbox on fi failed (exit $?)"

step "fi: kontor show $id"
kontor_on "fi" show "$id" || die "kontor show on fi failed (exit $?)"

step "ee: kontor status $id (with fi's signed receipt)"
kontor_on ee status "$id" || die "kontor status on ee failed (exit $?)"

step "Stopping the federation"
running=0
"$federation" stop "$demo_dir" 2>/dev/null
step "Done: the federation directory $demo_dir is kept (logs, data)"
