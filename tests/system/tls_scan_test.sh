#!/usr/bin/env bash
# Independent TLS check of kontord's federation endpoint, with the openssl CLI
# only (OpenSSL 3.0): protocol versions, cipher suites, key-exchange groups and
# client-certificate enforcement, as an outside scanner sees them.
#
# Starts a loopback federation (deploy/federation.sh start DIR ee fi; KONTORD
# is passed through) and probes fi's federation port as ee. A refusal only
# counts when it comes from the server: the client must have put a ClientHello
# of the intended version on the wire (seen with -msg), and "usable" means the
# server answered an HTTP/2 client preface with a SETTINGS frame.
#
# Prints PASS/FAIL per check, then "N passed, M failed"; exits 0 iff M == 0.
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
command -v openssl >/dev/null || { echo "FAIL openssl not found"; echo "0 passed, 1 failed"; exit 1; }

dir=$(mktemp -d /tmp/ktls-XXXXXX)
cleanup() {
  "$root/deploy/federation.sh" stop "$dir" >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "PASS $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
info() { echo "     $*"; }
finish() { echo "$passed passed, $failed failed"; [[ $failed == 0 ]]; exit; }

if ! "$root/deploy/federation.sh" start "$dir" ee fi >/dev/null 2>"$dir/start.err"; then
  bad "start federation: $(tail -n 5 "$dir/start.err")"
  finish
fi
port=$(sed -n 's/^[[:space:]]*listen_address:[[:space:]]*"[^"]*:\([0-9][0-9]*\)".*/\1/p' \
  "$dir/fi/node.textproto" | head -n 1)
[[ -n $port ]] || { bad "no listen_address port in $dir/fi/node.textproto"; finish; }
pki=$dir/pki
log=$dir/fi/kontord.log
tmp=$dir/tmp   # not a node id, so federation.sh ignores it
mkdir -p "$tmp"
ca=(-CAfile "$pki/ca/federation-ca.crt")
mtls=("${ca[@]}" -cert "$pki/ee/tls.crt" -key "$pki/ee/tls.key")
echo "# fi federation port 127.0.0.1:$port; $(openssl version)"

# --- probes ------------------------------------------------------------------

# sc OUT ARGS...: one handshake (stdin /dev/null), full s_client output with
# -msg (the TLS records each side sent) into OUT.
sc() {
  local out=$1
  shift
  timeout 10 openssl s_client -connect "127.0.0.1:$port" -msg "$@" </dev/null >"$out" 2>&1
}
# The cipher suite, or "(NONE)" if no ServerHello. s_client prints it after a
# failed handshake too, so it is no proof of success. (The "New, TLSv1.x" on
# that line is the suite's minimum version, not the protocol.)
cipher_of() { sed -n 's/^New, [^,]*, Cipher is \(.*\)$/\1/p' "$1" | head -n 1; }
# Protocol: from the SSL-Session block, else (TLS 1.3 prints that block only
# once a session ticket arrived) from the record label of the ServerHello.
protocol_of() {
  local p
  p=$(sed -n 's/^ *Protocol *: *//p' "$1" | head -n 1)
  [[ -n $p ]] || p=$(sed -n 's/^<<< TLS \(1\.[0-3]\), Handshake .*ServerHello$/TLSv\1/p' "$1" | tail -n 1)
  echo "$p"
}
# "TLSv1.3 TLS_AES_256_GCM_SHA384" (protocol and suite of the session)
negotiated() { echo "$(protocol_of "$1") $(cipher_of "$1")"; }
# The handshake finished (client side): both sides sent their Finished.
handshake_done() {
  grep -aq '^<<< .*Handshake .*Finished' "$1" && grep -aq '^>>> .*Handshake .*Finished' "$1"
}
verify_code() { sed -n 's/^ *Verify return code: \([0-9]*\).*/\1/p' "$1" | head -n 1; }
temp_key() { sed -n 's/^\(Server\|Peer\) Temp Key: //p' "$1" | head -n 1; }
# hello_sent OUT LABEL: the client sent a ClientHello in a LABEL ("TLS 1.1")
# handshake record, i.e. it did not refuse locally.
hello_sent() { grep -aq "^>>> $2, Handshake .*ClientHello" "$1"; }
# server_refused OUT LABEL: ClientHello LABEL went out, no ServerHello came
# back and no cipher was negotiated: the server said no to the hello.
server_refused() {
  hello_sent "$1" "$2" && ! grep -aq '^<<< .*ServerHello' "$1" &&
    [[ $(cipher_of "$1") == "(NONE)" ]]
}
client_error() { grep -a -m 1 ':error:' "$1" | sed 's/^[^:]*:error:[^:]*:SSL routines:[^:]*://; s/:\.\..*//'; }

# h2 OUT ERR ARGS...: handshake, send the HTTP/2 client preface and an empty
# SETTINGS frame, keep the connection open 0.7 s. OUT gets what the server
# sends (application data only: -quiet).
h2() {
  local out=$1 err=$2
  shift 2
  { printf 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0'; sleep 0.7; } |
    timeout 10 openssl s_client -connect "127.0.0.1:$port" -quiet -no_ign_eof -alpn h2 "$@" \
      >"$out" 2>"$err"
}
# usable OUT: the server answered with an HTTP/2 SETTINGS frame (type 0x04).
usable() { [[ $(od -An -tx1 -N9 "$1" | tr -d ' \n') == ??????04* ]]; }
# closed_by_server ERR: the server ended the connection while we still had it
# open (EOF without close_notify, or a TLS alert from the server).
closed_by_server() { grep -aqE 'unexpected eof while reading|alert|errno=' "$1"; }
rejected() { ! usable "$1" && closed_by_server "$2"; }
how_closed() {
  grep -aoE -m 1 'unexpected eof while reading|[a-z0-9]* alert [a-z ]*' "$1" | head -n 1 | grep . ||
    echo "the server did not close the connection"
}

# Server-side reason from gRPC's log line, for the lines after line $1.
log_lines() { wc -l <"$log"; }
server_reason() {  # FROM [TO]
  sed -n "$(($1 + 1)),${2:-\$}p" "$log" | sed -n 's/.*Handshake failed.*SSL routines::\(.*\)\.$/\1/p' |
    sort -u | paste -sd ';' -
}
say_reason() { local r; r=$(server_reason "$@"); [[ -z $r ]] || info "server log: $r"; }

# --- 1. TLS 1.3 with ee's certificate -----------------------------------------
o=$tmp/1.out
sc "$o" -tls1_3 "${mtls[@]}"
sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' "$o" >"$tmp/fi.pem"
san=$(openssl x509 -in "$tmp/fi.pem" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | sed 's/^ *//')
h2 "$tmp/1.h2" "$tmp/1.h2err" -tls1_3 "${mtls[@]}"
neg=$(negotiated "$o")
if handshake_done "$o" && [[ $neg == "TLSv1.3 "* && $(verify_code "$o") == 0 && ", $san," == *", URI:urn:kontor:node:fi,"* ]] &&
  usable "$tmp/1.h2"; then
  ok "1 TLS 1.3 mutual: $neg, server cert verifies, SAN $san, HTTP/2 SETTINGS received"
else
  bad "1 TLS 1.3 mutual: negotiated '$neg', verify code '$(verify_code "$o")', SAN '$san'," \
    "HTTP/2 answer: $(usable "$tmp/1.h2" && echo yes || echo "no ($(how_closed "$tmp/1.h2err"))")"
fi

# --- 2. TLS 1.2 with ee's certificate: AEAD ------------------------------------
o=$tmp/2.out
sc "$o" -tls1_2 "${mtls[@]}"
h2 "$tmp/2.h2" "$tmp/2.h2err" -tls1_2 "${mtls[@]}"
neg=$(negotiated "$o")
aead='^TLSv1\.2 ECDHE-ECDSA-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$'
if handshake_done "$o" && [[ $neg =~ $aead && $(verify_code "$o") == 0 ]] && usable "$tmp/2.h2"; then
  ok "2 TLS 1.2 mutual: $neg (AEAD), HTTP/2 SETTINGS received"
else
  bad "2 TLS 1.2 mutual: negotiated '$neg' (want ECDHE-ECDSA AEAD), verify code" \
    "'$(verify_code "$o")', HTTP/2 answer: $(usable "$tmp/2.h2" && echo yes || echo no)"
fi

# --- 3. TLS 1.2 non-AEAD (CBC) refused; full TLS 1.2 cipher scan -----------------
o=$tmp/3.out
mark=$(log_lines)
cbc='ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA'
sc "$o" -tls1_2 -cipher "$cbc:@SECLEVEL=0" "${mtls[@]}"
cbc_refused=no
server_refused "$o" "TLS 1.2" && cbc_refused=yes
mark2=$(log_lines)
# Every TLS 1.2 suite this OpenSSL knows, offered alone. PSK and SRP suites
# are only offered by s_client with a PSK / an SRP user (the server has none).
accepted=() weak=() unoffered=() total=0
for c in $(openssl ciphers -tls1_2 'ALL:COMPLEMENTOFALL:@SECLEVEL=0' | tr ':' ' '); do
  [[ $c == TLS_* ]] && continue   # TLS 1.3 suites, not offered with -tls1_2
  total=$((total + 1))
  extra=()
  [[ $c == *PSK* ]] && extra=(-psk 0123456789abcdef)
  [[ $c == SRP* ]] && extra=(-srpuser kontor -srppass pass:kontor)
  sc "$tmp/3.scan" -tls1_2 -cipher "$c:@SECLEVEL=0" "${extra[@]}" "${mtls[@]}"
  hello_sent "$tmp/3.scan" "TLS 1.2" || { unoffered+=("$c"); continue; }
  handshake_done "$tmp/3.scan" || continue
  accepted+=("$c")
  [[ $c =~ GCM|CCM|POLY1305 ]] || weak+=("$c")   # AEAD: GCM, CCM(8), ChaCha20-Poly1305
done
if [[ $cbc_refused == yes && ${#weak[@]} == 0 && ${#accepted[@]} -gt 0 ]]; then
  ok "3 TLS 1.2 CBC-only offer refused by the server (ClientHello sent, no ServerHello);" \
    "scan of $((total - ${#unoffered[@]}))/$total TLS 1.2 suites, one per connection:" \
    "accepted only ${accepted[*]}"
else
  bad "3 TLS 1.2 non-AEAD: CBC-only offer refused=$cbc_refused (negotiated '$(negotiated "$o")');" \
    "accepted suites: ${accepted[*]:-none}; NON-AEAD ACCEPTED: ${weak[*]:-none}"
fi
say_reason "$mark" "$mark2"
((${#unoffered[@]} == 0)) || info "not tested (client would not offer them): ${unoffered[*]}"

# --- 4. TLS 1.1 and TLS 1.0 refused ------------------------------------------------
for v in "4a tls1_1 TLS 1.1" "4b tls1 TLS 1.0"; do
  read -r id opt label <<<"$v"
  o=$tmp/4-$opt.out
  mark=$(log_lines)
  sc "$o" -"$opt" -cipher 'DEFAULT:@SECLEVEL=0' "${mtls[@]}"
  if server_refused "$o" "$label"; then
    ok "$id $label refused by the server ($label ClientHello sent, no ServerHello; client saw: $(client_error "$o"))"
  elif ! hello_sent "$o" "$label"; then
    bad "$id $label: the client refused locally, test method broken: $(client_error "$o")"
  else
    bad "$id $label ACCEPTED by the server: negotiated '$(negotiated "$o")'" \
      "(handshake $(handshake_done "$o" && echo completed || echo 'failed after ServerHello'))"
  fi
  say_reason "$mark"
done

# --- 5. no client certificate ----------------------------------------------------
mark=$(log_lines)
o=$tmp/5-13.out
sc "$o" -tls1_3 "${ca[@]}"
h2 "$tmp/5-13.h2" "$tmp/5-13.h2err" -tls1_3 "${ca[@]}"
r13=no
rejected "$tmp/5-13.h2" "$tmp/5-13.h2err" && r13=yes
o=$tmp/5-12.out
sc "$o" -tls1_2 "${ca[@]}"
h2 "$tmp/5-12.h2" "$tmp/5-12.h2err" -tls1_2 "${ca[@]}"
r12=no
hello_sent "$o" "TLS 1.2" && ! handshake_done "$o" && rejected "$tmp/5-12.h2" "$tmp/5-12.h2err" && r12=yes
if [[ $r13 == yes && $r12 == yes ]]; then
  ok "5 no client cert: TLS 1.3 unusable (client-side handshake $(handshake_done "$tmp/5-13.out" &&
    echo completed || echo failed), then the server closed: $(how_closed "$tmp/5-13.h2err"), no HTTP/2 answer);" \
    "TLS 1.2 handshake failed ($(client_error "$o"))"
else
  bad "5 no client cert: TLS 1.3 rejected=$r13 (HTTP/2 answer: $(usable "$tmp/5-13.h2" && echo YES || echo no));" \
    "TLS 1.2 rejected=$r12 (handshake $(handshake_done "$o" && echo COMPLETED || echo failed), HTTP/2 answer: $(usable "$tmp/5-12.h2" && echo YES || echo no))"
fi
say_reason "$mark"

# --- 6. client certificate from a foreign CA --------------------------------------
want_log() { grep -a 'refused TLS peer' "$log" | grep -ac 'not issued by a trusted CA'; }
if ! "$root/certs-example/make-pki.sh" "$dir/foreign" ee >/dev/null 2>"$tmp/6.err"; then
  bad "6 foreign CA: make-pki.sh failed: $(tail -n 3 "$tmp/6.err")"
else
  foreign=("${ca[@]}" -cert "$dir/foreign/ee/tls.crt" -key "$dir/foreign/ee/tls.key")
  res=() all=yes
  for v in tls1_3 tls1_2; do
    before=$(want_log)
    sc "$tmp/6-$v.out" -"$v" "${foreign[@]}"
    h2 "$tmp/6-$v.h2" "$tmp/6-$v.h2err" -"$v" "${foreign[@]}"
    logged=no
    for _ in $(seq 50); do
      (($(want_log) > before)) && { logged=yes; break; }
      sleep 0.1
    done
    rej=no
    rejected "$tmp/6-$v.h2" "$tmp/6-$v.h2err" && rej=yes
    [[ $rej == yes && $logged == yes ]] || all=no
    res+=("$v: rejected=$rej logged=$logged (TLS handshake $(handshake_done "$tmp/6-$v.out" &&
      echo "completed: $(negotiated "$tmp/6-$v.out")" || echo failed); then: $(how_closed "$tmp/6-$v.h2err"))")
  done
  if [[ $all == yes ]]; then
    ok "6 foreign-CA client cert rejected and logged; ${res[*]}"
    info "fi log: $(grep -a 'refused TLS peer' "$log" | tail -n 1)"
  else
    bad "6 foreign-CA client cert: ${res[*]}"
  fi
fi

# --- 7. key exchange group -------------------------------------------------------
o13=$tmp/7-13.out o12=$tmp/7-12.out
sc "$o13" -tls1_3 "${mtls[@]}"
sc "$o12" -tls1_2 "${mtls[@]}"
k13=$(temp_key "$o13") k12=$(temp_key "$o12")
groups=()
for g in X25519 P-256 P-384 P-521 X448; do
  sc "$tmp/7-g.out" -tls1_3 -groups "$g" "${mtls[@]}"
  handshake_done "$tmp/7-g.out" && groups+=("$g")
done
hrr=""
(($(grep -ac '^>>> .*ClientHello' "$o13") > 1)) &&
  hrr="; default TLS 1.3 offer needed a HelloRetryRequest (client's first key share was not accepted)"
good='^(X25519|ECDH, (prime256v1|P-256))'
if [[ $k13 =~ $good && $k12 =~ $good ]]; then
  ok "7 key exchange: TLS 1.3 '$k13', TLS 1.2 '$k12'; groups accepted alone (TLS 1.3): ${groups[*]:-none}$hrr"
else
  bad "7 key exchange: TLS 1.3 '${k13:-none}', TLS 1.2 '${k12:-none}' (want X25519 or P-256);" \
    "groups accepted alone: ${groups[*]:-none}"
fi

finish
