#!/usr/bin/env bash
# deploy/systemd/kontord.service: valid for systemd (systemd-analyze verify)
# and hardened (offline exposure score at most 2.0 of 10). Exits 77 (skipped)
# where systemd-analyze is not installed. Needs KONTORD (absolute path).
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
: "${KONTORD:?set KONTORD to the kontord binary}"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "SKIP systemd_unit: systemd-analyze is not installed"
  exit 77
fi
work=$(mktemp -d /tmp/ksd-XXXXXX)
trap 'rm -rf "$work"' EXIT
# The unit names /usr/local/bin/kontord; check it against the built binary.
sed "s|/usr/local/bin/kontord|$KONTORD|g" "$root/deploy/systemd/kontord.service" \
  >"$work/kontord.service"
passed=0 failed=0
out=$(systemd-analyze verify --man=no "$work/kontord.service" 2>&1)
if [[ $? == 0 && -z $out ]]; then
  passed=$((passed + 1)); echo "PASS systemd-analyze verify: no complaints"
else
  failed=$((failed + 1)); echo "FAIL systemd-analyze verify: $out"
fi
score=$(systemd-analyze security --offline=true --threshold=20 \
  "$work/kontord.service" 2>&1)
if [[ $? == 0 ]]; then
  passed=$((passed + 1)); echo "PASS hardening: $(grep -o 'exposure level.*' <<<"$score")"
else
  failed=$((failed + 1)); echo "FAIL hardening above 2.0: $(tail -1 <<<"$score")"
fi
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
