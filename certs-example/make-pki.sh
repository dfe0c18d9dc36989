#!/usr/bin/env bash
# Demo PKI for a Kontor federation, made with the openssl CLI only.
# See certs-example/README.md. Never use these keys for anything real.
set -euo pipefail

prog=make-pki.sh

usage() {
  cat <<'EOF'
Usage: make-pki.sh OUTDIR [NODE...] [--operator USER:ROLE]...

Makes (or completes) a demo PKI for a Kontor federation in OUTDIR:

  OUTDIR/ca/federation-ca.{crt,key}   federation CA (EC P-256, 10 years)
  OUTDIR/ca/federation-ca.crl.pem     its CRL (empty at first, 30 days)
  OUTDIR/ca/operator-ca.{crt,key}     CA for local operator users
  OUTDIR/ca/operator-ca.crl.pem       its CRL
  OUTDIR/ca/*.cnf, *.index.txt, ...   openssl ca databases (for revocation)
  OUTDIR/NODE/{tls,signing,encryption}.{crt,key}
                                      per node: three P-256 keys, each with
                                      its own certificate carrying the URI SAN
                                      urn:kontor:node:NODE (825 days)
  OUTDIR/operators/USER.{crt,key}     per --operator: a client certificate
                                      from the operator CA naming the user
                                      (urn:kontor:user:USER) and its role
                                      (urn:kontor:role:ROLE), 397 days

ROLE is one of coordinator, liaison, system, admin (DESIGN.md §3). USER is
lower-case letters, digits, '.', '-', '_'.

NODE is a node id: a lowercase ISO 3166 country code, optionally followed by
a dot and a unit (ee, fi, ee.border). Russia (ru) is suspended from the CBSS.

Idempotent: existing CAs and node certificates are kept, so nodes can be added
later; a CRL is re-issued when it is missing or expires within 7 days.
Private keys are unencrypted PKCS#8 PEM, mode 0600: never commit them.
EOF
}

die() { echo "$prog: $*" >&2; exit 1; }
usage_error() { echo "$prog: $* (see $prog --help)" >&2; exit 2; }

# Prints nothing; exits 2 with a one-line reason if $1 is not a valid node id.
validate_node_id() {
  local id=$1
  [[ $id =~ ^[a-z]{2}(\.[a-z0-9-]+)?$ ]] ||
    usage_error "invalid node id '$id': expected a lowercase ISO country code, optionally .unit (e.g. ee, ee.border)"
  [[ ${id:0:2} != ru ]] ||
    usage_error "refusing node id '$id': Russia is suspended from the CBSS (since 2022)"
  # OUTDIR/ca/ holds the CAs, so a node cannot be called "ca".
  [[ $id != ca ]] || usage_error "node id 'ca' clashes with the CA directory OUTDIR/ca/"
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") usage_error "missing OUTDIR" ;;
  -*) usage_error "unknown option '$1'" ;;
esac
outdir=$1
shift
nodes=()
operators=()
while (($#)); do
  case $1 in
    --operator)
      [[ $# -ge 2 ]] || usage_error "--operator needs USER:ROLE"
      [[ $2 =~ ^[a-z0-9._-]{1,64}:(coordinator|liaison|system|admin)$ ]] ||
        usage_error "invalid --operator '$2': expected USER:ROLE, ROLE one of coordinator, liaison, system, admin"
      operators+=("$2")
      shift 2
      ;;
    -*) usage_error "unknown option '$1'" ;;
    *)
      validate_node_id "$1"
      nodes+=("$1")
      shift
      ;;
  esac
done
set -- "${nodes[@]+"${nodes[@]}"}"

command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"

mkdir -p "$outdir/ca" || die "cannot create $outdir/ca"
outdir=$(cd "$outdir" && pwd -P)
cadir=$outdir/ca

# Two runs on the same OUTDIR (e.g. two federations starting) must not interleave.
exec 9>"$cadir/.lock"
flock 9 || die "cannot lock $cadir/.lock"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/make-pki.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Runs openssl quietly; on failure shows its output and dies.
ossl() {
  local out
  if ! out=$(openssl "$@" 2>&1); then
    printf '%s\n' "$out" >&2
    die "openssl $1 failed"
  fi
}

# new_key FILE: a fresh P-256 key, PKCS#8 PEM, mode 0600.
new_key() {
  (umask 077 && ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -pkeyopt ec_param_enc:named_curve -out "$1")
  chmod 600 "$1"
}

# Writes the openssl ca config of CA $1 into OUTDIR/ca/$1.cnf. All paths are
# relative to OUTDIR/ca (openssl runs there), so the PKI can be moved.
write_ca_config() {
  local name=$1
  cat >"$tmp/$name.cnf" <<EOF
# openssl ca configuration of the Kontor demo CA "$name" (written by make-pki.sh).
# Use from this directory, e.g. to revoke a certificate and re-issue the CRL:
#   openssl ca -config $name.cnf -revoke ../ee/tls.crt
#   openssl ca -config $name.cnf -gencrl -out $name.crl.pem
[ ca ]
default_ca = kontor_ca

[ kontor_ca ]
dir              = .
certificate      = \$dir/$name.crt
private_key      = \$dir/$name.key
database         = \$dir/$name.index.txt
new_certs_dir    = \$dir/$name.issued
serial           = \$dir/$name.serial
crlnumber        = \$dir/$name.crlnumber
rand_serial      = yes
default_md       = sha256
default_days     = 825
default_crl_days = 30
unique_subject   = no
copy_extensions  = none
email_in_dn      = no
policy           = kontor_policy
crl_extensions   = kontor_crl_ext

[ kontor_policy ]
organizationName = optional
commonName       = supplied

[ kontor_crl_ext ]
authorityKeyIdentifier = keyid:always

[ req ]
distinguished_name = kontor_req_dn
prompt             = no

[ kontor_req_dn ]
CN = unused

[ kontor_ca_ext ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF
  mv -f "$tmp/$name.cnf" "$cadir/$name.cnf"
}

# ensure_ca NAME "COMMON NAME": creates the CA unless it exists; keeps its
# database; (re-)issues its CRL if missing or about to expire.
# Sets ca_state to "new" or "reused".
ensure_ca() {
  local name=$1 cn=$2
  local crt=$cadir/$name.crt key=$cadir/$name.key crl=$cadir/$name.crl.pem
  write_ca_config "$name"
  mkdir -p "$cadir/$name.issued"
  [[ -e $cadir/$name.index.txt ]] || : >"$cadir/$name.index.txt"
  [[ -s $cadir/$name.crlnumber ]] || echo 1000 >"$cadir/$name.crlnumber"
  if [[ -s $crt && -s $key ]]; then
    ca_state=reused
  elif [[ -e $crt || -e $key ]]; then
    die "$crt or $key exists without the other: refusing to overwrite a CA (remove both to start over)"
  else
    new_key "$tmp/$name.key"
    (cd "$cadir" && ossl req -x509 -new -config "$name.cnf" -extensions kontor_ca_ext \
      -key "$tmp/$name.key" -sha256 -days 3650 -subj "/O=Kontor demo/CN=$cn" -out "$tmp/$name.crt")
    chmod 644 "$tmp/$name.crt"
    mv -f "$tmp/$name.key" "$key"
    mv -f "$tmp/$name.crt" "$crt"
    rm -f "$crl"
    ca_state=new
  fi
  local next_update
  if [[ -s $crl ]]; then
    next_update=$(openssl crl -in "$crl" -noout -nextupdate 2>/dev/null | sed 's/^nextUpdate=//') || next_update=
    if [[ -n $next_update ]] &&
      (($(date -d "$next_update" +%s 2>/dev/null || echo 0) > $(date +%s) + 7 * 86400)); then
      return 0
    fi
  fi
  (cd "$cadir" && ossl ca -batch -config "$name.cnf" -gencrl -out "$tmp/$name.crl.pem")
  chmod 644 "$tmp/$name.crl.pem"
  mv -f "$tmp/$name.crl.pem" "$crl"
}

ensure_ca federation-ca "Kontor Demo Federation CA"
fed_state=$ca_state
ensure_ca operator-ca "Kontor Demo Operator CA"
op_state=$ca_state

# Extensions of the three node certificates of node $1, one section each.
write_node_extensions() {
  local node=$1 uri="URI:urn:kontor:node:$1"
  cat >"$tmp/$node.ext" <<EOF
[ tls ]
basicConstraints       = CA:FALSE
keyUsage               = critical, digitalSignature, keyAgreement
extendedKeyUsage       = serverAuth, clientAuth
subjectAltName         = $uri, DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ signing ]
basicConstraints       = CA:FALSE
keyUsage               = critical, digitalSignature, nonRepudiation
subjectAltName         = $uri
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ encryption ]
basicConstraints       = CA:FALSE
keyUsage               = critical, keyAgreement
subjectAltName         = $uri
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF
}

# ensure_pair NODE PURPOSE CN: keeps NODE/PURPOSE.{crt,key} if both exist (and
# the certificate comes from this federation CA), else issues a new pair.
# Returns 0 if a pair was issued, 1 if kept.
ensure_pair() {
  local node=$1 purpose=$2 cn=$3
  local crt=$outdir/$node/$purpose.crt key=$outdir/$node/$purpose.key
  if [[ -s $crt && -s $key ]]; then
    openssl verify -CAfile "$cadir/federation-ca.crt" "$crt" >/dev/null 2>&1 ||
      die "$crt does not verify against $cadir/federation-ca.crt (other CA or expired): remove $outdir/$node to re-issue"
    return 1
  fi
  new_key "$tmp/$purpose.key"
  ossl req -new -config "$cadir/federation-ca.cnf" -key "$tmp/$purpose.key" \
    -subj "/CN=$cn" -out "$tmp/$purpose.csr"
  (cd "$cadir" && ossl ca -batch -notext -config federation-ca.cnf -days 825 \
    -extfile "$tmp/$node.ext" -extensions "$purpose" -subj "/CN=$cn" \
    -in "$tmp/$purpose.csr" -out "$tmp/$purpose.crt")
  chmod 644 "$tmp/$purpose.crt"
  mv -f "$tmp/$purpose.key" "$key"
  mv -f "$tmp/$purpose.crt" "$crt"
  return 0
}

summary=()
declare -A seen=()
for node in "$@"; do
  [[ -z ${seen[$node]:-} ]] || continue
  seen[$node]=1
  mkdir -p "$outdir/$node"
  write_node_extensions "$node"
  issued=0
  ensure_pair "$node" tls "$node" && issued=$((issued + 1))
  ensure_pair "$node" signing "$node signing" && issued=$((issued + 1))
  ensure_pair "$node" encryption "$node encryption" && issued=$((issued + 1))
  case $issued in
    0) summary+=("$node(kept)") ;;
    3) summary+=("$node(new)") ;;
    *) summary+=("$node(completed)") ;;
  esac
done

# Operator certificates: a user and a role, client authentication only.
op_summary=()
for op in "${operators[@]+"${operators[@]}"}"; do
  user=${op%%:*} role=${op#*:}
  crt=$outdir/operators/$user.crt key=$outdir/operators/$user.key
  mkdir -p "$outdir/operators"
  if [[ -s $crt && -s $key ]] &&
    openssl x509 -in "$crt" -noout -ext subjectAltName 2>/dev/null | grep -q "urn:kontor:role:$role\b"; then
    op_summary+=("$user(kept)")
    continue
  fi
  cat >"$tmp/op.ext" <<EOF
[ operator ]
basicConstraints       = CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectAltName         = URI:urn:kontor:user:$user, URI:urn:kontor:role:$role
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF
  new_key "$tmp/op.key"
  ossl req -new -config "$cadir/operator-ca.cnf" -key "$tmp/op.key" \
    -subj "/CN=$user ($role)" -out "$tmp/op.csr"
  (cd "$cadir" && ossl ca -batch -notext -config operator-ca.cnf -days 397 \
    -extfile "$tmp/op.ext" -extensions operator -subj "/CN=$user ($role)" \
    -in "$tmp/op.csr" -out "$tmp/op.crt")
  chmod 644 "$tmp/op.crt"
  mv -f "$tmp/op.key" "$key"
  mv -f "$tmp/op.crt" "$crt"
  op_summary+=("$user:$role(new)")
done

echo "$prog: PKI in $outdir: federation CA $fed_state, operator CA $op_state; nodes: ${summary[*]:-none}${op_summary[*]:+; operators: ${op_summary[*]}}"
