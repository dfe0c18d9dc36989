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
  4. sends a referral (from `kontor template referral`, a fictitious
     person) from ee to fi, waits for fi's signed receipt, shows it in fi's
     inbox, rendered; fi answers with a referral.response; shows the case
     thread on ee, the receipt, and fi's audit log (tail and verify)
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

# wait_delivered NODE ID: polls kontor status until delivered (30 s).
wait_delivered() {
  local n=$1 id=$2 deadline=$((SECONDS + 30)) rc state
  while :; do
    rc=0
    state=$(kontor_on "$n" status "$id" 2>&1) || rc=$?
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
}

case_ref="EE-TRM-DEMO-$(date -u +%Y%m%d%H%M%S)"
referral=$demo_dir/referral.json
step "ee: kontor template referral --case $case_ref > $referral (an annotated example: fictitious person)"
kontor_on ee template referral --case "$case_ref" >"$referral" || die "kontor template failed"
sed -n '1,12p' "$referral"
echo "    ..."

step "ee: kontor send --to fi --payload-json $referral"
id=$(kontor_on ee send --to "fi" --payload-json "$referral") ||
  die "kontor send failed (exit $?)"
id=${id//[[:space:]]/}
[[ -n $id ]] || die "kontor send printed no message id"
echo "    message id: $id"

step "ee: waiting for delivery (kontor status $id, up to 30 s)"
wait_delivered ee "$id"

step "fi: kontor inbox"
kontor_on "fi" inbox || die "kontor inbox on fi failed (exit $?)"

step "fi: kontor show $id (decrypted, signature verified, rendered for its kind)"
kontor_on "fi" show "$id" || die "kontor show on fi failed (exit $?)"

response=$demo_dir/response.json
step "fi: kontor template referral.response --in-reply-to $id > $response; kontor send --to ee --payload-json $response"
kontor_on "fi" template referral.response --in-reply-to "$id" >"$response" ||
  die "kontor template failed"
rid=$(kontor_on "fi" send --to ee --payload-json "$response") ||
  die "kontor send on fi failed (exit $?)"
rid=${rid//[[:space:]]/}
echo "    message id: $rid"
wait_delivered "fi" "$rid"

step "ee: kontor thread $case_ref (the referral and fi's response, in order)"
kontor_on ee thread "$case_ref" || die "kontor thread on ee failed (exit $?)"

step "ee: kontor status $id (with fi's signed receipt)"
kontor_on ee status "$id" || die "kontor status on ee failed (exit $?)"

step "fi: kontor audit tail (who collected, read and disclosed what; no content)"
kontor_on "fi" audit tail --limit 5 || die "kontor audit tail on fi failed (exit $?)"
step "fi: kontor audit verify (the hash chain, against ee's witnessed heads)"
kontor_on "fi" audit verify || die "kontor audit verify on fi failed (exit $?)"

evidence=$demo_dir/evidence-$id
step "ee: kontor export $id --out $evidence (the signed referral, fi's receipt, certificates, CRLs)"
kontor_on ee export "$id" --out "$evidence" || die "kontor export on ee failed (exit $?)"
step "(cd $evidence && sh verify.sh): the evidence checked with openssl alone"
(cd "$evidence" && sh verify.sh 2>&1 | grep -E '^[0-9]+\.|OK|successful|passed') ||
  die "the exported evidence does not verify"

step "Stopping the federation"
running=0
"$federation" stop "$demo_dir" 2>/dev/null
step "Done: the federation directory $demo_dir is kept (logs, data)"
