#!/usr/bin/env python3
"""Cryptographic erasure, erase orders and evidence export, with real
processes (deploy/federation.sh: ee, fi).

1. Sealed at rest: a referral's person name is nowhere in fi's store file
   or its WAL (only in the separate key file's keys' ciphertext); the
   content key sits in fi's key file (kontor.keys).
2. erase.notice: ee names a delivered referral; fi erases it (show says
   erased, the audit log has the erase by node:ee), its key is gone from
   the key file (and its bytes from the file and WAL), a backup of the
   store taken before still holds only sealed bytes; ee's `kontor status`
   shows fi's signed confirmation; ee's own copy is erased too.
3. Withdrawal before the referral: fi is down; ee queues a referral and
   then a flash consent.update (withdrawn) naming it. When fi comes up the
   withdrawal arrives first: fi keeps the order (its signed receipt says
   "kept"), the referral arrives and is erased on arrival (audited).
4. Export: `kontor export ID --out DIR` on ee (sent) and on fi (received);
   the README's commands are run exactly as written with sh inside DIR and
   pass (openssl cms/dgst/verify at the creation time); verify.sh is the
   same commands; a changed byte in message.cms or in the receipt makes
   them fail. After ee's signing certificate is rotated and the old one
   revoked, the old message still verifies (the node archived the old
   certificate and the CRL then in force), and so does a new one.

    KONTORD=... KONTOR=... tests/system/evidence_test.py
"""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

try:  # Debian python3-cryptography (deploy/packages.txt)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # pragma: no cover
    AESGCM = None

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
MAKE_PKI = os.path.join(REPO, "certs-example", "make-pki.sh")
MARKER = "Zorbrandt"


class Fed(harness.Federation):
    def data(self, node, name):
        return os.path.join(self.root, node, "data", name)


write = harness.write_file


def template(fed, kind, *extra):
    return harness.template(fed.kontor, kind, *extra)


def send(fed, tmp, kind, *extra, text=None, priority=None):
    text = text if text is not None else template(fed, kind, *extra)
    path = write(os.path.join(tmp, f"p-{time.monotonic_ns()}.json"), text)
    args = ["send", "--to", "fi", "--payload-json", path]
    if priority:
        args += ["--priority", priority]
    rc, out, err = fed.cli("ee", *args)
    if rc != 0:
        raise RuntimeError(f"send {kind}: {rc} {err}")
    return json.loads(out)["message_id"]


def referral(fed, tmp):
    return send(fed, tmp, "referral",
                text=template(fed, "referral").replace("Tamm", MARKER))


def wait_delivered(fed, mid, deadline=30):
    last = {}

    def done():
        nonlocal last
        rc, out, _ = fed.cli("ee", "status", mid)
        if rc == 0:
            last = json.loads(out)
            return last.get("state") == "delivered"
        return False
    harness.poll(done, deadline, 0.1)
    return last


def raw(*paths):
    out = b""
    for p in paths:
        if os.path.exists(p):
            with open(p, "rb") as f:
                out += f.read()
    return out


def key_of(fed, node, key_id):
    """The content key of inbox row "i:ORIGIN/ID" (its key id is in the
    store), from the node's key file; None if there is none."""
    if key_id.startswith("i:"):
        origin, mid = key_id[2:].split("/", 1)
        db = sqlite3.connect(fed.data(node, "kontor.db"))
        row = db.execute("SELECT key_id FROM inbox WHERE origin = ? AND "
                         "message_id = ?", (origin, mid)).fetchone()
        db.close()
        key_id = row[0] if row and row[0] else key_id
    db = sqlite3.connect(fed.data(node, "kontor.keys"))
    row = db.execute("SELECT key FROM content_keys WHERE id = ?",
                     (key_id,)).fetchone()
    db.close()
    return row[0] if row else None


def audit_tail(fed, node):
    return fed.query(node, "audit", "tail", "--limit", "50").get("records", [])


# ------------------------------------------------------------ erasure


def run_erasure(res, fed, tmp):
    r1 = referral(fed, tmp)
    st = wait_delivered(fed, r1)
    res.check("referral delivered to fi", st.get("state") == "delivered",
              json.dumps(st)[:300])
    store = raw(fed.data("fi", "kontor.db"), fed.data("fi", "kontor.db-wal"))
    res.check("fi's store file and WAL hold no plaintext of the referral "
              "(the person's name)", MARKER.encode() not in store and
              len(store) > 0, f"{len(store)} bytes")
    shown = fed.query("fi", "show", r1)
    res.check("fi shows the referral (opened with its content key)",
              MARKER in json.dumps(shown), json.dumps(shown)[:200])
    key_id = f"i:ee/{r1}"
    key = key_of(fed, "fi", key_id)
    res.check("its content key is in fi's key file (kontor.keys)",
              key is not None and len(key) == 32, repr(key))
    backup = os.path.join(tmp, "fi-backup.db")
    src = sqlite3.connect(fed.data("fi", "kontor.db"))
    dst = sqlite3.connect(backup)
    src.backup(dst)
    src.close()
    dst.close()

    # An erase order names messages this node sent, nothing else.
    path = write(os.path.join(tmp, "bad-erase.json"),
                 template(fed, "erase.notice", "--in-reply-to",
                          "0b6a2b56-1d2c-4b0e-9a57-4c1f1f3c1e11"))
    rc, out, err = fed.cli("ee", "send", "--to", "fi", "--payload-json",
                           path)
    res.check("an erase.notice naming a message ee did not send is refused "
              "(exit 2, naming the field)",
              rc == 2 and "erase_notice.refers_to" in err and
              "not a message this node sent" in err, f"rc={rc} {err}")
    notice = send(fed, tmp, "erase.notice", "--in-reply-to", r1)
    st = wait_delivered(fed, notice)
    d = (st.get("deliveries") or [{}])[0]
    res.check("ee: status of the erase.notice shows fi's signed "
              "confirmation (erased)",
              st.get("state") == "delivered" and d.get("erased") == [r1],
              json.dumps(st)[:400])
    rc, out, err = fed.cli("ee", "status", notice, json_out=False)
    res.check("ee: `kontor status` prints the confirmation",
              rc == 0 and "erased (confirmed, signed): " + r1 in out, out)
    rc, out, err = fed.cli("fi", "show", r1, json_out=False)
    res.check("fi: show says the content was erased, metadata stays",
              rc == 0 and "content erased" in out and MARKER not in out and
              "Kind:      referral" in out, out[:500])
    rc, out, err = fed.cli("ee", "show", r1, json_out=False)
    res.check("ee: its own copy is erased too",
              rc == 0 and "content erased" in out and MARKER not in out,
              out[:500])
    recs = [r for r in audit_tail(fed, "fi")
            if r.get("action") == "erase" and r.get("message_id") == r1]
    res.check("fi: the erasure is audited, by node:ee, naming the notice",
              len(recs) == 1 and recs[0].get("actor") == "node:ee" and
              notice in recs[0].get("detail", ""), json.dumps(recs)[:400])
    res.check("fi: the content key is destroyed",
              key_of(fed, "fi", key_id) is None)
    keyfile = raw(fed.data("fi", "kontor.keys"),
                  fed.data("fi", "kontor.keys-wal"))
    res.check("fi: the key's bytes are gone from the key file and its WAL",
              key is not None and key not in keyfile, f"{len(keyfile)} bytes")
    db = sqlite3.connect(backup)
    row = db.execute("SELECT payload, key_id FROM inbox WHERE message_id = ?",
                     (r1,)).fetchone()
    db.close()
    if AESGCM is not None and row is not None and key is not None:
        # Independently (Python's cryptography, not Kontor): the backup's
        # sealed payload opened with the key as it was before the erasure.
        sealed = row[0][4:]
        aad = b"kontor-column-v1\0" + row[1].encode() + b"\0payload"
        try:
            plain = AESGCM(key).decrypt(sealed[:12], sealed[12:], aad)
        except Exception as e:  # noqa: BLE001
            plain = repr(e).encode()
        res.check("independently: the sealed payload is AES-256-GCM under its "
                  "key, bound to key id and column (Python cryptography)",
                  MARKER.encode() in plain, plain[:80])
    res.check("a backup of the store from before holds only sealed bytes, "
              "whose key no longer exists",
              row is not None and row[0][:4] == b"\x01kc1" and
              MARKER.encode() not in raw(backup), repr(row[0][:8] if row
                                                       else None))


def run_withdrawal_first(res, fed, tmp):
    fed.fed("stop", fed.root, "fi")
    r2 = referral(fed, tmp)
    withdraw = send(fed, tmp, "consent.update", "--in-reply-to", r2,
                    priority="flash")
    # Notes queued beside them: fi takes them in one batch, so their
    # receipts share one signature (a Merkle path to export).
    fed.batched = [send(fed, tmp, "case.update",
                        text=template(fed, "case.update").replace(
                            "EE-TRM-2026-0042", f"EE-TRM-2026-{900 + i}"))
                   for i in range(7)]
    fed.fed("start", fed.root, "fi")
    st_w = wait_delivered(fed, withdraw)
    st_r = wait_delivered(fed, r2)
    res.check("both delivered once fi is up",
              st_w.get("state") == "delivered" and
              st_r.get("state") == "delivered",
              json.dumps([st_w, st_r])[:400])
    d = (st_w.get("deliveries") or [{}])[0]
    res.check("the withdrawal came first: fi's signed receipt says it keeps "
              "the order for the referral it does not hold yet",
              d.get("erase_kept") == [r2], json.dumps(d)[:300])
    rc, out, err = fed.cli("fi", "show", r2, json_out=False)
    res.check("fi: the referral is erased on arrival",
              rc == 0 and "content erased" in out and MARKER not in out,
              out[:500])
    recs = [r for r in audit_tail(fed, "fi")
            if r.get("action") == "erase" and r.get("message_id") == r2]
    res.check("fi: audited as erased on arrival by the earlier withdrawal",
              len(recs) == 1 and "on arrival" in recs[0].get("detail", "") and
              withdraw in recs[0].get("detail", ""), json.dumps(recs)[:400])
    res.check("fi: no key left for it",
              key_of(fed, "fi", f"i:ee/{r2}") is None)


# ------------------------------------------------------------- export


def readme_commands(d):
    text = open(os.path.join(d, "README.md")).read()
    m = re.search(r"```sh\n(.*?)```", text, re.S)
    return m.group(1) if m else ""


def run_commands(d):
    """The README's commands, exactly, with sh inside the directory."""
    r = subprocess.run(["sh", "-c", readme_commands(d)], cwd=d,
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def export(fed, node, mid, out):
    return fed.cli(node, "export", mid, "--out", out, json_out=False)


def check_export(res, fed, node, mid, out, what):
    rc, o, err = export(fed, node, mid, out)
    res.check(f"{what}: kontor export writes the bundle",
              rc == 0 and os.path.isfile(os.path.join(out, "README.md")),
              f"rc={rc} {o} {err}")
    if rc != 0:
        return False
    cmds = readme_commands(out)
    script = open(os.path.join(out, "verify.sh")).read()
    res.check(f"{what}: verify.sh is the README's commands",
              cmds.strip().splitlines()[1:] ==
              script.strip().splitlines()[3:] and "-attime" in cmds,
              f"{cmds!r} vs {script!r}")
    rc, text = run_commands(out)
    res.check(f"{what}: the README's openssl commands pass",
              rc == 0 and "all checks passed" in text and
              "Verification successful" in text and "Verified OK" in text,
              text[-1500:])
    return rc == 0


def tampered(res, src, tmp, name, mutate, what):
    d = os.path.join(tmp, f"tampered-{time.monotonic_ns()}")
    shutil.copytree(src, d)
    path = os.path.join(d, name)
    data = bytearray(open(path, "rb").read())
    mutate(data)
    open(path, "wb").write(bytes(data))
    rc, text = run_commands(d)
    res.check(f"{what}: the commands fail", rc != 0, text[-600:])


def flip_in_content(data):
    # A byte of the signed content (the message id text), not the DER
    # framing: the signature itself must catch it.
    i = data.find(b"-4")
    i = i if i >= 0 else len(data) // 2
    data[i + 1] ^= 0x01


def run_export(res, fed, tmp):
    mid = referral(fed, tmp)
    wait_delivered(fed, mid)
    sent_dir = os.path.join(tmp, "export-ee")
    if check_export(res, fed, "ee", mid, sent_dir, "sent (ee)"):
        tampered(res, sent_dir, tmp, "message.cms", flip_in_content,
                 "one changed byte in message.cms")
        tampered(res, sent_dir, tmp, "receipt-fi.body",
                 lambda d: d.__setitem__(-3, d[-3] ^ 0x01),
                 "one changed byte in fi's receipt")
        fi_cert = open(os.path.join(sent_dir, "receipt-fi-signer.pem"),
                       "rb").read()
        tampered(res, sent_dir, tmp, "origin-signer.pem",
                 lambda d: d.__setitem__(slice(None), fi_cert),
                 "another node's certificate given as the origin's")
        # A bundle claiming fi signed: fi's certificate put first beside
        # ee's (which really verifies), the commands naming fi. -signer
        # writes the certificate that verified, and that one is ee's.
        d = os.path.join(tmp, "claims-fi")
        shutil.copytree(sent_dir, d)
        ee_cert = open(os.path.join(d, "origin-signer.pem"), "rb").read()
        open(os.path.join(d, "origin-signer.pem"), "wb").write(
            fi_cert + ee_cert)
        readme = open(os.path.join(d, "README.md")).read()
        open(os.path.join(d, "README.md"), "w").write(
            readme.replace("URI:urn:kontor:node:ee", "URI:urn:kontor:node:fi"))
        rc, text = run_commands(d)
        res.check("a bundle claiming another node signed (its certificate "
                  "first, the name changed): the commands fail", rc != 0,
                  text[-600:])
        other = os.path.join(tmp, "export-other")
        if export(fed, "ee", fed.batched[0], other)[0] == 0:
            # A whole, validly signed receipt of fi, for another message.
            d = os.path.join(tmp, "swapped-receipt")
            shutil.copytree(sent_dir, d)
            for f in os.listdir(d):
                if f.startswith("receipt-fi."):
                    os.remove(os.path.join(d, f))
            for f in os.listdir(other):
                if f.startswith("receipt-fi."):
                    shutil.copy(os.path.join(other, f), d)
            rc, text = run_commands(d)
            res.check("fi's valid receipt of another message in its place: "
                      "the commands fail", rc != 0, text[-600:])
        files = os.listdir(sent_dir)
        res.check("the bundle has the CA certificate and CRL in force",
                  "BEGIN X509 CRL" in open(os.path.join(
                      sent_dir, "trust-origin.pem")).read() and
                  "receipt-fi.sig" in files, " ".join(sorted(files)))
    batched = fed.batched[3]
    wait_delivered(fed, batched)
    bdir = os.path.join(tmp, "export-batch")
    if check_export(res, fed, "ee", batched, bdir,
                    "a receipt signed in a batch (ee)"):
        readme = open(os.path.join(bdir, "README.md")).read()
        m = re.search(r"of a batch of (\d+)", readme)
        res.check("its receipt is one leaf of a larger batch, checked along "
                  "its Merkle path with openssl dgst",
                  m and int(m.group(1)) > 1 and os.path.exists(
                      os.path.join(bdir, "receipt-fi.path0")), readme[-900:])
    rc, out, err = export(fed, "ee", mid, sent_dir)
    res.check("export into an existing directory is refused (exit 2)",
              rc == 2 and "exists" in err, f"rc={rc} {err}")
    check_export(res, fed, "fi", mid, os.path.join(tmp, "export-fi"),
                 "received (fi)")

    # Rotation: a new signing key for ee, the old certificate revoked.
    time.sleep(1.2)  # the new CRL must come after the message
    pki = os.path.join(fed.root, "pki")
    for ext in ("crt", "key"):
        os.rename(os.path.join(pki, "ee", f"signing.{ext}"),
                  os.path.join(pki, "ee", f"signing-old.{ext}"))
    subprocess.run([MAKE_PKI, pki, "ee"], check=True, capture_output=True)
    ca = os.path.join(pki, "ca")
    for args in (["-revoke", os.path.join(pki, "ee", "signing-old.crt"),
                  "-crl_reason", "superseded"],
                 ["-gencrl", "-out", "federation-ca.crl.pem"]):
        subprocess.run(["openssl", "ca", "-batch", "-config",
                        "federation-ca.cnf", *args], cwd=ca, check=True,
                       capture_output=True)
    fed.fed("restart", fed.root, "ee")
    fed.fed("restart", fed.root, "fi")
    old = subprocess.run(
        ["openssl", "verify", "-crl_check", "-CAfile",
         os.path.join(ca, "federation-ca.crt"), "-CRLfile",
         os.path.join(ca, "federation-ca.crl.pem"),
         os.path.join(pki, "ee", "signing-old.crt")],
        capture_output=True, text=True)
    res.check("ee's old signing certificate is revoked now",
              old.returncode != 0 and "revoked" in old.stdout + old.stderr,
              old.stdout + old.stderr)
    check_export(res, fed, "ee", mid, os.path.join(tmp, "export-rotated"),
                 "after rotation, the old message (ee)")
    new = referral(fed, tmp)
    st = wait_delivered(fed, new)
    res.check("a message signed with the new key is delivered",
              st.get("state") == "delivered", json.dumps(st)[:300])
    check_export(res, fed, "ee", new, os.path.join(tmp, "export-new"),
                 "after rotation, a new message (ee)")
    # Erased content: what remains is exported (issue 11), and verifies.
    erased = os.path.join(tmp, "export-erased")
    rc, out, err = fed.cli("ee", "export", fed.erased_id, "--out", erased,
                           json_out=False)
    files = os.listdir(erased) if rc == 0 else []
    res.check("an erased message exports what remains: receipts, no "
              "content", rc == 0 and "message.cms" not in files and
              any(f.startswith("receipt-") for f in files),
              f"rc={rc} {err} {files}")
    if rc == 0:
        r = subprocess.run(["sh", "verify.sh"], cwd=erased,
                           capture_output=True, text=True, timeout=120)
        res.check("... and its verify.sh passes", r.returncode == 0,
                  (r.stdout + r.stderr)[-400:])


def run(tmp, res):
    kontord, kontor = harness.binaries()
    root = os.path.join(tmp, "fed")
    fed = Fed(root, kontord, kontor)
    fed.fed("start", root, "ee", "fi")
    t0 = time.monotonic()
    run_erasure(res, fed, tmp)
    fed.erased_id = [r for r in audit_tail(fed, "ee")
                     if r.get("action") == "erase"][0]["message_id"]
    run_withdrawal_first(res, fed, tmp)
    run_export(res, fed, tmp)
    print(f"# {time.monotonic() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(harness.main(run, "kontor-evidence.",
                          lambda *a: harness.federation_sh(
                              harness.binaries()[0], *a)))
