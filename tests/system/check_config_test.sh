#!/usr/bin/env bash
# kontord as a user meets it: --check-config exit codes and messages that name
# the field, and clear start-up failures. Needs KONTORD (absolute path).
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
: "${KONTORD:?set KONTORD to the kontord binary}"
work=$(mktemp -d /tmp/kcc-XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
check() {  # NAME EXPECTED_RC EXPECTED_TEXT -- COMMAND...
  local name=$1 want_rc=$2 want_text=$3
  shift 4
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [[ $rc == "$want_rc" && $out == *"$want_text"* ]]; then
    passed=$((passed + 1)); echo "PASS $name"
  else
    failed=$((failed + 1)); echo "FAIL $name: rc=$rc (want $want_rc), output: $out"
  fi
}

"$root/certs-example/make-pki.sh" "$work/pki" ee fi >/dev/null 2>&1 || {
  echo "FAIL make-pki"; echo "0 passed, 1 failed"; exit 1; }
cfg=$work/ee.textproto
write_config() {  # extra lines appended
  cat >"$cfg" <<CFG
node_id: "ee"
data_dir: "$work/data"
listen_address: "127.0.0.1:0"
local_socket: "$work/ee.sock"
tls { cert: "pki/ee/tls.crt" key: "pki/ee/tls.key" }
signing { cert: "pki/ee/signing.crt" key: "pki/ee/signing.key" }
encryption { cert: "pki/ee/encryption.crt" key: "pki/ee/encryption.key" }
trusted_cas { cert: "pki/ca/federation-ca.crt" crl: "pki/ca/federation-ca.crl.pem" allowed_node_ids: "ee" allowed_node_ids: "fi" }
peers { id: "fi" address: "127.0.0.1:1" signing_certs: "pki/fi/signing.crt" encryption_cert: "pki/fi/encryption.crt" }
$1
CFG
}

write_config ""
check "valid config" 0 "ok (node ee, 1 peer(s))" -- "$KONTORD" --check-config --config "$cfg"
check "missing config file" 2 "cannot read config" -- "$KONTORD" --check-config --config "$work/nope.textproto"
check "no --config" 2 "--config FILE is required" -- "$KONTORD"
check "unknown flag" 2 "unknown argument" -- "$KONTORD" --frobnicate
check "--help" 0 "usage: kontord" -- "$KONTORD" --help

write_config 'limits { max_message_bytes: 999999999 }'
check "limit out of range names the field" 2 "limits.max_message_bytes" -- "$KONTORD" --check-config --config "$cfg"
write_config 'bogus: 1'
check "unknown field names the line" 2 "line 10" -- "$KONTORD" --check-config --config "$cfg"

write_config ""
sed -i 's|encryption_cert: "pki/fi/encryption.crt"|encryption_cert: "pki/ee/encryption.crt"|' "$cfg"
check "peer cert of another node" 2 "peers[0].encryption_cert" -- "$KONTORD" --check-config --config "$cfg"

write_config ""
sed -i 's|signing { cert: "pki/ee/signing.crt" key: "pki/ee/signing.key" }|signing { cert: "pki/ee/signing.crt" key: "pki/ee/tls.key" }|' "$cfg"
check "key not matching its certificate" 2 "signing.key" -- "$KONTORD" --check-config --config "$cfg"

write_config ""
sed -i 's|allowed_node_ids: "ee" allowed_node_ids: "fi"|allowed_node_ids: "fi"|' "$cfg"
check "CA not allowed to certify this node" 2 "may certify node id 'ee'" -- "$KONTORD" --check-config --config "$cfg"

write_config ""
sed -i 's|tls { cert: "pki/ee/tls.crt"|tls { cert: "pki/ee/missing.crt"|' "$cfg"
check "missing certificate file" 2 "tls.cert" -- "$KONTORD" --check-config --config "$cfg"

write_config ""
chmod 644 "$work/pki/ee/signing.key"
check "private key readable by others is warned about" 0 "signing.key: private key" -- "$KONTORD" --check-config --config "$cfg"
chmod 600 "$work/pki/ee/signing.key"

write_config ""
sed -i 's|crl: "pki/ca/federation-ca.crl.pem" ||' "$cfg"
check "CA without CRL refuses own certificate" 2 "has no CRL" -- "$KONTORD" --check-config --config "$cfg"

# Start-up failures: port in use (exit 1, clear message), second daemon on the
# same data directory (exit 1).
write_config ""
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -i "s|127.0.0.1:0|127.0.0.1:$port|" "$cfg"
/usr/bin/python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',$port)); s.listen(); time.sleep(30)" &
blocker=$!
sleep 0.5
check "port in use" 1 "cannot listen on 127.0.0.1:$port" -- timeout 20 "$KONTORD" --config "$cfg"
kill $blocker 2>/dev/null; wait $blocker 2>/dev/null
"$KONTORD" --config "$cfg" >"$work/first.log" 2>&1 &
first=$!
for _ in $(seq 100); do [[ -S $work/ee.sock ]] && break; sleep 0.1; done
check "second kontord on the same data_dir" 1 "in use by another kontord" -- timeout 20 "$KONTORD" --config "$cfg"
kill -TERM $first; wait $first
check "SIGTERM stops cleanly and removes the socket" 0 "" -- test ! -e "$work/ee.sock"

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
