#!/usr/bin/env bash
# TLS scan with testssl.sh (Debian's package, an outside scanner) against
# kontord's federation port and its operator port (issue 11):
#   - no protocol below TLS 1.2 (SSLv2, SSLv3, TLS 1.0, TLS 1.1 not offered),
#     TLS 1.2 and/or TLS 1.3 offered;
#   - every offered cipher suite is AEAD (AES-GCM or ChaCha20-Poly1305) with
#     forward secrecy (ECDHE/DHE key exchange, or TLS 1.3); testssl's cipher
#     categories NULL, aNULL, EXPORT, LOW, 3DES/IDEA and obsolete CBC are
#     not offered;
#   - the server has a cipher order of its own (server preference).
#
# Starts a loopback federation (deploy/federation.sh start DIR ee fi; KONTORD
# is passed through), gives fi an operator port (operator_api with the demo
# operator CA and its CRL, as in kinds_test.py) and restarts it, then runs
# testssl.sh offline (no DNS, one IP, no HTTP checks: the ports speak gRPC)
# against 127.0.0.1:PORT of both, in parallel, with --jsonfile; the checks
# read the JSON. testssl.sh cannot present a client certificate: it scans
# the handshake up to the point where the server asks for one, which is
# where versions, suites and their order are decided.
#
# Prints testssl's findings, PASS/FAIL per check, then "N passed, M failed";
# exits 0 iff M == 0, 77 (skipped) if testssl.sh is not installed.
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
py=/usr/bin/python3
[[ -x $py ]] || py=$(command -v python3) || { echo "FAIL python3 not found"; echo "0 passed, 1 failed"; exit 1; }
testssl=$(command -v testssl.sh || command -v testssl) ||
  { echo "SKIP testssl.sh not installed (apt-get install testssl.sh)"; exit 77; }

dir=$(mktemp -d /tmp/ktestssl-XXXXXX)
keep=""
cleanup() {
  "$root/deploy/federation.sh" stop "$dir" >/dev/null 2>&1
  if [[ -n $keep || -n ${KEEP_TMP:-} ]]; then
    echo "kept $dir (testssl output: $dir/scan/, logs: $dir/*/kontord.log)"
  else
    rm -rf "$dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "PASS $*"; }
bad() { failed=$((failed + 1)); keep=1; echo "FAIL $*"; }
finish() {
  trap - EXIT
  cleanup
  echo "$passed passed, $failed failed"
  [[ $failed == 0 ]]
  exit
}

start_time=$SECONDS
if ! "$root/deploy/federation.sh" start "$dir" ee "fi" >/dev/null 2>"$dir/start.err"; then
  bad "start federation: $(tail -n 5 "$dir/start.err")"
  finish
fi
fed_port=$(sed -n 's/^[[:space:]]*listen_address:[[:space:]]*"[^"]*:\([0-9][0-9]*\)".*/\1/p' \
  "$dir/fi/node.textproto" | head -n 1)
op_port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "operator_api { listen_address: \"127.0.0.1:$op_port\" ca: \"../pki/ca/operator-ca.crt\" crl: \"../pki/ca/operator-ca.crl.pem\" }" \
  >>"$dir/fi/node.textproto"
if ! "$root/deploy/federation.sh" restart "$dir" "fi" >/dev/null 2>"$dir/restart.err"; then
  bad "restart fi with an operator port: $(tail -n 5 "$dir/restart.err")"
  finish
fi
if grep -q "operator API .* on 127.0.0.1:$op_port" "$dir/fi/kontord.log"; then
  ok "fi serves the federation on 127.0.0.1:$fed_port and the operator API on 127.0.0.1:$op_port"
else
  bad "fi does not log its operator API on 127.0.0.1:$op_port: $(tail -n 3 "$dir/fi/kontord.log")"
  finish
fi
echo "# $("$testssl" --version 2>/dev/null | sed -n 's/^ *testssl *\([^ ]*\).*/testssl.sh \1/p' | head -n 1), $(openssl version)"

# scan NAME PORT: testssl.sh against 127.0.0.1:PORT; JSON in scan/NAME.json,
# its report in scan/NAME.txt, its exit code in scan/NAME.rc.
# -p protocols, -s cipher categories, -f forward secrecy, -P server
# preference, -E every cipher per protocol. Offline: --nodns min, --ip one.
mkdir -p "$dir/scan"
scan() {
  local name=$1 port=$2
  "$testssl" --quiet --color 0 --warnings off --nodns min --ip one \
    --connect-timeout 10 --openssl-timeout 10 \
    -p -s -f -P -E --jsonfile "$dir/scan/$name.json" "127.0.0.1:$port" \
    </dev/null >"$dir/scan/$name.txt" 2>&1
  echo $? >"$dir/scan/$name.rc"
}
scan federation "$fed_port" &
scan operator "$op_port" &
wait

# check NAME: the checks on scan/NAME.json, one PASS/FAIL line each.
check() {
  "$py" - "$1" "$dir/scan/$1.json" <<'EOF'
import json, re, sys

name, path = sys.argv[1], sys.argv[2]
try:
    with open(path) as f:
        findings = json.load(f)
except (OSError, ValueError) as e:
    print(f"FAIL {name}: no testssl JSON ({e})")
    sys.exit()
by_id = {}
for e in findings:
    by_id.setdefault(e["id"], []).append(e)

def finding(i):
    return by_id[i][0]["finding"] if i in by_id else "(not reported)"

def check(ok, what, detail):
    print(f"{'PASS' if ok else 'FAIL'} {name}: {what}" + ("" if ok else f": {detail}"))

# Protocols.
old = {p: finding(p) for p in ("SSLv2", "SSLv3", "TLS1", "TLS1_1")}
new = {p: finding(p) for p in ("TLS1_2", "TLS1_3")}
check(all(v.startswith("not offered") for v in old.values()) and
      any(v.startswith("offered") for v in new.values()),
      "no protocol below TLS 1.2 offered; " +
      ", ".join(f"{p} {v}" for p, v in new.items()),
      "; ".join(f"{p}: {v}" for p, v in {**old, **new}.items()))

# Every offered suite (-E: "cipher-tls1_2_xc02b" ... with the finding
# "TLS 1.2  xc02b  ECDHE-ECDSA-AES128-GCM-SHA256  ECDH 256  AESGCM  128 ...").
suites, bad = [], []
for e in findings:
    if not e["id"].startswith("cipher-"):
        continue
    m = re.match(r"\s*(SSLv[23]|TLS 1(?:\.[0-3])?)\s+x[0-9a-f]+\s+(\S+)\s+(\S+)",
                 e["finding"])
    if not m:
        bad.append(f"unparsed {e['id']}: {e['finding']}")
        continue
    proto, suite, kx = m.groups()
    suites.append(f"{suite} ({proto})")
    aead = re.search(r"GCM|CHACHA20[-_]POLY1305", suite) is not None
    fs = proto == "TLS 1.3" or kx.startswith(("ECDH", "DH"))
    if proto not in ("TLS 1.2", "TLS 1.3") or not aead or not fs:
        bad.append(f"{suite} ({proto}, key exchange {kx}): " +
                   ", ".join(w for w, b in (("below TLS 1.2", proto not in ("TLS 1.2", "TLS 1.3")),
                                            ("not AEAD", not aead),
                                            ("no forward secrecy", not fs)) if b))
check(suites and not bad,
      f"every offered suite is AEAD with forward secrecy: {', '.join(suites)}",
      "; ".join(bad) if bad else "no cipher suites found")

# testssl's own categories and its forward-secrecy list.
cats = {c: finding("cipherlist_" + c) for c in
        ("NULL", "aNULL", "EXPORT", "LOW", "3DES_IDEA", "AVERAGE")}
strong = finding("cipherlist_STRONG")
fs_list = set(finding("PFS_ciphers").split())
no_fs = [s.split()[0] for s in suites if s.split()[0] not in fs_list]
check(all(v.startswith("not offered") for v in cats.values()) and
      strong.startswith("offered") and finding("PFS").startswith("offered")
      and not no_fs,
      "categories NULL, aNULL, EXPORT, LOW, 3DES/IDEA, obsolete CBC not "
      "offered; strong (AEAD) offered; every suite in testssl's forward "
      "secrecy list",
      f"categories {cats}; STRONG {strong}; PFS {finding('PFS')}; "
      f"suites without forward secrecy: {no_fs}")

# Server preference.
order = by_id.get("cipher_order", [{}])[0]
lists = "; ".join(f"{e['id'][len('cipherorder_'):]}: {e['finding']}"
                  for e in findings if e["id"].startswith("cipherorder_"))
check(order.get("finding", "").startswith("server") and
      order.get("severity") == "OK",
      f"the server has a cipher order ({lists})",
      f"cipher_order: {order.get('severity')} {order.get('finding')!r}")
EOF
}

for name in federation operator; do
  port=$fed_port
  [[ $name == operator ]] && port=$op_port
  echo "# testssl.sh on the $name port 127.0.0.1:$port:"
  # Its report, without the blank lines and the start/end banners.
  grep -v -e '^[[:space:]]*$' -e '^ *Start ' -e '^ *Done ' -e '^ *rDNS' -e '^ *A record via' \
    "$dir/scan/$name.txt" | sed 's/^/     | /'
  while IFS= read -r line; do
    case $line in
      PASS\ *) ok "${line#PASS }" ;;
      FAIL\ *) bad "${line#FAIL }" ;;
      *) echo "$line" ;;
    esac
  done < <(check "$name")
done

echo "# $((SECONDS - start_time)) s"
finish
