#!/usr/bin/python3
"""Real mutual-TLS refusals of kontord, with grpcio as the other side.

Starts a loopback federation `ee fi` with deploy/federation.sh, then, with
Debian's python3-grpcio and stubs generated from proto/ (not the C++ code):

  a. no client certificate                        -> fi refuses
  b. a client certificate from another CA         -> fi refuses, logs why
  c. federation CA, allowed to certify `se`, but `se` is not a peer of fi
                                                   -> fi refuses, logs why
  d. federation CA not allowed to certify `se`     -> fi refuses, logs why
  e. a fake `fi` (grpcio server with the valid certificate of node `lv`):
     ee refuses it before sending anything, the message stays queued, and
     is delivered once ee points at the real fi again
  f. the real ee certificate with a garbage envelope -> a signed REFUSED
     receipt, verified here with fi's signing certificate

Environment: KONTORD, KONTOR (the binaries; default: build/ of the repository),
KEEP_TMP=1 keeps the temporary directory even on success.
Prints one PASS/FAIL line per check and at the end `N passed, M failed`;
exits 0 only if nothing failed.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from concurrent import futures

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import harness  # noqa: E402
import stubs  # noqa: E402
from harness import FEDERATION_SH, REPO, describe, poll  # noqa: E402

MAKE_PKI = os.path.join(REPO, "certs-example", "make-pki.sh")

RPC_TIMEOUT_S = 10
LOG_DEADLINE_S = 10
DELIVERY_DEADLINE_S = 120  # ee's backoff is persisted across the restart
RECEIPT_BATCH_LABEL = b"kontor-rcpt-batch-v1"
GARBAGE_HEADER = b"\xff\xff\xff\xff\x0f not a Header"  # field 0x1fffffff, wire type 7


KONTORD, KONTOR = harness.binaries()


def note(msg):
    print(f"     {msg}", flush=True)


def run_tool(args, timeout=90):
    env = dict(os.environ, KONTORD=KONTORD)
    env.pop("KONTOR_NODE", None)
    r = subprocess.run(args, env=env, capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {r.returncode}:\n{r.stderr}")
    return r.stdout


def federation(*args):
    return run_tool([FEDERATION_SH, *args])


def kontor_json(sock, *args):
    out = run_tool([KONTOR, "--node", sock, "--json", *args], timeout=60)
    return json.loads(out)


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


class Log:
    """A kontord.log, read from a mark on (so that each case sees only the
    lines written since it began)."""

    def __init__(self, path):
        self.path = path
        self.offset = 0

    def mark(self):
        self.offset = os.path.getsize(self.path) if os.path.exists(self.path) else 0

    def lines(self):
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            return f.read().decode("utf-8", "replace").splitlines()

    def wait_for(self, pattern, deadline_s=LOG_DEADLINE_S):
        rx = re.compile(pattern)
        found = poll(lambda: [l for l in self.lines() if rx.search(l)], deadline_s)
        return found[0] if found else None

    def refusals(self):
        return [l for l in self.lines() if "refused TLS peer" in l]


class Node:
    def __init__(self, fed, node):
        self.dir = os.path.join(fed, node)
        self.config = os.path.join(self.dir, "node.textproto")
        self.log = Log(os.path.join(self.dir, "kontord.log"))
        self.socket = read(os.path.join(self.dir, "socket"), "r").strip()

    def port(self):
        return harness.config_port(self.config)


def edit_config(path, fn):
    text = read(path, "r")
    new = fn(text)
    if new == text:
        raise RuntimeError(f"edit of {path} changed nothing")
    with open(path + ".tmp", "w") as f:
        f.write(new)
    os.replace(path + ".tmp", path)


def allow_node_id(text, node_id):
    """Adds node_id to the allowed_node_ids of the (only) trusted CA."""
    return re.sub(r"trusted_cas\s*{", f'trusted_cas {{\n  allowed_node_ids: "{node_id}"',
                  text, count=1)


# --- signatures, checked without kontord ------------------------------------

def spki_der_and_verifier(cert_pem):
    """Returns (SubjectPublicKeyInfo DER, verify(signature, message) -> bool),
    with python3-cryptography if present, else with the openssl CLI."""
    try:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError:
        return spki_der_and_verifier_openssl(cert_pem)
    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    spki = key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)

    def verify(signature, message):
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            return False
        try:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            return True
        except InvalidSignature:
            return False
    note("receipt signature checked with python3-cryptography")
    return spki, verify


def spki_der_and_verifier_openssl(cert_pem):
    work = tempfile.mkdtemp(prefix="kx-sig.")
    cert = os.path.join(work, "cert.pem")
    with open(cert, "wb") as f:
        f.write(cert_pem)
    pub = os.path.join(work, "pub.pem")
    subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey", "-out", pub],
                   check=True, capture_output=True)
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-in", pub, "-outform", "DER"],
                          check=True, capture_output=True).stdout

    def verify(signature, message):
        sig, msg = os.path.join(work, "sig.der"), os.path.join(work, "msg.bin")
        with open(sig, "wb") as f:
            f.write(signature)
        with open(msg, "wb") as f:
            f.write(message)
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub,
                            "-signature", sig, msg], capture_output=True)
        return r.returncode == 0
    note("python3-cryptography missing: receipt signature checked with openssl dgst")
    return spki, verify


# --- gRPC peers --------------------------------------------------------------

def exchange(pb, port, creds, envelopes):
    """One Federation.Exchange call with one batch; returns (ReceiptBatch
    list, None) or (None, grpc.RpcError)."""
    channel = grpc.secure_channel(
        f"127.0.0.1:{port}", creds,
        options=(("grpc.ssl_target_name_override", "localhost"),
                 ("grpc.use_local_subchannel_pool", 1)))
    try:
        stub = pb.federation_pb2_grpc.FederationStub(channel)
        batch = pb.federation_pb2.EnvelopeBatch(batch_seq=4242, envelopes=envelopes)
        return list(stub.Exchange(iter([batch]), timeout=RPC_TIMEOUT_S)), None
    except grpc.RpcError as e:
        return None, e
    finally:
        channel.close()


def garbage_envelope(pb):
    return pb.envelope_pb2.Envelope(header=GARBAGE_HEADER, ciphertext=os.urandom(96))


class FakeFederation:
    """A Federation servicer that records every call and everything sent."""

    def __init__(self, pb):
        self.pb = pb
        self.lock = threading.Lock()
        self.calls = 0
        self.batches = []

    def servicer(self):
        fake = self

        class Servicer(self.pb.federation_pb2_grpc.FederationServicer):
            def Exchange(self, request_iterator, context):
                with fake.lock:
                    fake.calls += 1
                for batch in request_iterator:
                    with fake.lock:
                        fake.batches.append(batch)
                context.abort(grpc.StatusCode.UNAVAILABLE, "fake fi")
        return Servicer()


# --- the cases ---------------------------------------------------------------

def refusal_case(res, pb, name, port, creds, log, pattern, log_required=True):
    log.mark()
    receipts, err = exchange(pb, port, creds, [garbage_envelope(pb)])
    res.check(f"{name}: Exchange fails", err is not None,
              f"call succeeded: {receipts}")
    if err is not None:
        note(f"{name}: {describe(err)}")
    if pattern is not None:
        line = log.wait_for(pattern, LOG_DEADLINE_S if log_required else 2)
        if log_required:
            others = [l for l in log.lines() if "refused" in l or "Handshake failed" in l]
            res.check(f"{name}: fi logs 'refused TLS peer' with the reason",
                      line is not None,
                      f"no line matching /{pattern}/ in {log.path}; lines written: "
                      f"{others[-3:] or 'none'}")
        if line:
            note(f"{name}: log: {line.strip()}")
        elif not log_required:
            others = [l for l in log.lines() if l.strip()]
            note(f"{name}: log: {others[-1].strip() if others else '(nothing)'}")
    # Refused in the handshake: the call never reached the Federation service.
    reached = [l for l in log.lines()
               if re.search(r"refused envelope|is not a peer|call from .* refused", l)]
    res.check(f"{name}: refused before the Federation service saw the call",
              not reached, str(reached[:2]))


def case_f(res, pb, fed, fi, ee_creds):
    fi.log.mark()
    sock = fi.socket
    channel = grpc.insecure_channel("unix:" + sock)
    local = pb.local_pb2_grpc.LocalStub(channel)
    before = len(local.Inbox(pb.local_pb2.InboxRequest(), timeout=RPC_TIMEOUT_S).entries)

    batches, err = exchange(pb, fi.port(), ee_creds, [garbage_envelope(pb)])
    if not res.check("f: the real ee certificate: Exchange succeeds", err is None,
                     describe(err)):
        channel.close()
        return
    ok = (len(batches) == 1 and batches[0].batch_seq == 4242 and
          len(batches[0].receipts) == 1)
    if not res.check("f: one ReceiptBatch (batch_seq echoed) with one receipt",
                     ok, str(batches)):
        channel.close()
        return
    receipt = batches[0].receipts[0]
    body = pb.envelope_pb2.ReceiptBody()
    body.ParseFromString(receipt.body)
    res.check("f: receipt verdict REFUSED (MALFORMED), by fi, with a reason",
              body.verdict == pb.envelope_pb2.REFUSED and
              body.refusal == pb.envelope_pb2.REFUSAL_MALFORMED and
              body.recipient == "fi" and body.version == "kontor-rcpt-v1" and
              bool(body.reason), str(body).replace("\n", " "))
    note(f"f: reason: {body.reason!r}")

    sig = receipt.signature
    spki, verify = spki_der_and_verifier(read(os.path.join(fed, "pki", "fi", "signing.crt")))
    res.check("f: signer_key_id is SHA-256 of fi's signing SubjectPublicKeyInfo",
              sig.signer_key_id == hashlib.sha256(spki).digest(),
              sig.signer_key_id.hex())
    leaf = hashlib.sha256(b"\x00" + hashlib.sha256(receipt.body).digest()).digest()
    res.check("f: batch of one: leaf 0 of 1, no path, root = H(0x00 || H(body))",
              sig.leaf_index == 0 and sig.leaf_count == 1 and len(sig.path) == 0
              and sig.root == leaf,
              f"index={sig.leaf_index} count={sig.leaf_count} "
              f"path={len(sig.path)} root={sig.root.hex()} want {leaf.hex()}")
    res.check("f: ECDSA P-256/SHA-256 signature over label\\0root verifies with "
              "fi's signing.crt",
              verify(sig.signature, RECEIPT_BATCH_LABEL + b"\x00" + leaf))
    res.check("f: a tampered receipt does not verify (the check has teeth)",
              not verify(sig.signature, RECEIPT_BATCH_LABEL + b"\x00" +
                         hashlib.sha256(b"\x00" + hashlib.sha256(
                             receipt.body + b"x").digest()).digest()))
    line = fi.log.wait_for(r"refused envelope .*from peer ee")
    res.check("f: fi logs the refused envelope", line is not None,
              f"no 'refused envelope ... from peer ee' in {fi.log.path}")
    after = len(local.Inbox(pb.local_pb2.InboxRequest(), timeout=RPC_TIMEOUT_S).entries)
    res.check("f: nothing stored in fi's inbox", after == before,
              f"{before} -> {after} entries")
    channel.close()


def case_e(res, pb, fed, ee, fi):
    pki = os.path.join(fed, "pki")
    fake = FakeFederation(pb)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb.federation_pb2_grpc.add_FederationServicer_to_server(fake.servicer(), server)
    creds = grpc.ssl_server_credentials(
        [(read(os.path.join(pki, "lv", "tls.key")), read(os.path.join(pki, "lv", "tls.crt")))],
        root_certificates=read(os.path.join(pki, "ca", "federation-ca.crt")),
        require_client_auth=True)
    fake_port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    original = read(ee.config, "r")
    msg_id = None
    try:
        # ee: fi is at the fake address; the CA may certify lv (so that the
        # refusal is about the node id, not about the CA's allowlist).
        edit_config(ee.config, lambda t: allow_node_id(re.sub(
            r'(peers\s*{\s*id:\s*"fi"\s*address:\s*")[^"]*"',
            rf'\g<1>127.0.0.1:{fake_port}"', t), "lv"))
        federation("restart", fed, "ee")
        ee.log.mark()
        body_file = os.path.join(fed, "e-body.bin")
        body = b"case e: must not reach a fake fi " + os.urandom(8)
        with open(body_file, "wb") as f:
            f.write(body)
        msg_id = kontor_json(ee.socket, "send", "--to", "fi", "--kind", "note",
                             "--subject", "case e", "--body-file", body_file)["message_id"]

        line = ee.log.wait_for(r"refused TLS peer: .*'lv'.*expected 'fi'")
        res.check("e: ee logs 'refused TLS peer' ... expected 'fi' for the lv certificate",
                  line is not None,
                  f"refusals in {ee.log.path}: {ee.log.refusals()[-3:] or 'none'}")
        if line:
            note(f"e: log: {line.strip()}")

        def retried():
            d = kontor_json(ee.socket, "status", msg_id)["deliveries"][0]
            return d if d["last_error"] and d["attempts"] >= 2 else None
        d = poll(retried, 30, 0.2) or kontor_json(ee.socket, "status", msg_id)["deliveries"][0]
        res.check("e: the message stays queued/in_flight, with a last_error, "
                  "after >= 2 attempts",
                  d["state"] in ("queued", "in_flight") and bool(d["last_error"])
                  and d["attempts"] >= 2, json.dumps(d))
        note(f"e: state {d['state']}, attempts {d['attempts']}, "
             f"last_error: {d['last_error']}")
        with fake.lock:
            calls, batches = fake.calls, list(fake.batches)
        res.check("e: the fake fi's Exchange handler was never called (nothing sent)",
                  calls == 0 and not batches,
                  f"{calls} call(s), {len(batches)} batch(es) received")
    finally:
        server.stop(None)
        with open(ee.config + ".tmp", "w") as f:
            f.write(original)
        os.replace(ee.config + ".tmp", ee.config)
        federation("restart", fed, "ee")
    if msg_id is None:
        return

    def delivered():
        s = kontor_json(ee.socket, "status", msg_id)
        return s if s["state"] == "delivered" else None
    s = poll(delivered, DELIVERY_DEADLINE_S, 0.25)
    res.check(f"e: with the real fi back, the message is delivered "
              f"(within {DELIVERY_DEADLINE_S} s)", s is not None,
              json.dumps(kontor_json(ee.socket, "status", msg_id)))
    if s:
        shown = kontor_json(fi.socket, "show", msg_id)
        res.check("e: fi has it, intact, exactly once",
                  shown["payload"]["subject"] == "case e" and
                  sum(e["message_id"] == msg_id
                      for e in kontor_json(fi.socket, "inbox")["entries"]) == 1,
                  json.dumps(shown)[:300])


def run(tmp, res):
    pb = stubs.load(os.path.join(tmp, "stubs"))
    fed = os.path.join(tmp, "fed")
    federation("start", fed, "ee", "fi")
    ee, fi = Node(fed, "ee"), Node(fed, "fi")
    pki, other_pki = os.path.join(fed, "pki"), os.path.join(tmp, "other-pki")
    run_tool([MAKE_PKI, other_pki, "ee"])  # another CA, another "ee"
    run_tool([MAKE_PKI, pki, "se", "lv"])  # federation CA, not in the federation

    ca = read(os.path.join(pki, "ca", "federation-ca.crt"))

    def client_creds(pki_dir, node):
        return grpc.ssl_channel_credentials(
            ca, read(os.path.join(pki_dir, node, "tls.key")),
            read(os.path.join(pki_dir, node, "tls.crt")))

    port = fi.port()
    # a. No client certificate: gRPC refuses before kontord's verifier runs.
    refusal_case(res, pb, "a (no client certificate)", port,
                 grpc.ssl_channel_credentials(ca), fi.log,
                 r"refused TLS peer|did not return a certificate|no certificate",
                 log_required=False)
    # b. A client certificate from another CA.
    refusal_case(res, pb, "b (certificate from another CA)", port,
                 client_creds(other_pki, "ee"), fi.log,
                 r"refused TLS peer: .*(not issued by a trusted CA|"
                 r"unable to get local issuer)")
    # d. The federation CA may not certify se (fi's config lists ee and fi).
    refusal_case(res, pb, "d (CA may not certify se)", port,
                 client_creds(pki, "se"), fi.log,
                 r"refused TLS peer: .*may (not )?certify node id 'se'")
    # f. A correct client with a garbage envelope: a signed refusal.
    case_f(res, pb, fed, fi, client_creds(pki, "ee"))

    # c. The CA may certify se, but se is not a peer of fi.
    original = read(fi.config, "r")
    edit_config(fi.config, lambda t: allow_node_id(t, "se"))
    federation("restart", fed, "fi")
    try:
        refusal_case(res, pb, "c (se: valid certificate, not a peer)", port,
                     client_creds(pki, "se"), fi.log,
                     r"refused TLS peer: .*(node 'se' is not a configured peer|"
                     r"certificate is for node 'se', expected 'ee')")
        res.check("c: the refusal is not the CA allowlist one of (d)",
                  not [l for l in fi.log.refusals() if "may certify" in l],
                  str(fi.log.refusals()[-2:]))
    finally:
        with open(fi.config + ".tmp", "w") as f:
            f.write(original)
        os.replace(fi.config + ".tmp", fi.config)
        federation("restart", fed, "fi")

    # e. A fake fi with a valid certificate for another node.
    case_e(res, pb, fed, ee, fi)

    status = subprocess.run([FEDERATION_SH, "status", fed], capture_output=True,
                            text=True)
    res.check("both nodes still run", status.returncode == 0, status.stdout)


if __name__ == "__main__":
    sys.exit(harness.main(run, "kx-tls.", federation))
