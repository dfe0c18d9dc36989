#!/usr/bin/env python3
"""Revocation of operator certificates on the operator mTLS port, with real
processes (deploy/federation.sh: ee, fi; ee has an operator port with the
operator CA of certs-example/make-pki.sh and its CRL).

1. check-config: without operator_api.crl (and without allow_missing_crl),
   with the federation CA's CRL, and with an out-of-date CRL, `kontord
   --check-config` exits 2 naming operator_api.crl; with the CRL it exits 0.
2. Operators anna (coordinator), lars (liaison) and root (admin) send over
   the operator port. A self-signed certificate naming an admin, and ee's own
   node certificate, are refused with a reason.
3. SIGHUP: the operator CA revokes anna (`openssl ca -revoke`, `-gencrl` over
   the configured CRL, in place); after SIGHUP ee refuses anna's same command
   (exit 1, one line saying revoked; a SECURITY line in ee's log) and lars
   and root still work.
4. Files changed: lars is revoked the same way without a signal; ee reloads
   by itself (reload_check_seconds: 1) and refuses lars; root still works.
5. An out-of-date CRL (nextUpdate passed) in place: ee reloads, still runs,
   and refuses root ("out of date"); a current CRL again: root works.

    KONTORD=... KONTOR=... tests/system/operator_crl_test.py
"""

import os
import re
import signal
import socket
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MAKE_PKI = os.path.join(harness.REPO, "certs-example", "make-pki.sh")
RELOAD_DEADLINE_S = 30


class Fed(harness.FedDir):
    cli_timeout = 30

    def __init__(self, root, kontord, kontor, op_port):
        super().__init__(root, kontor)
        self.kontord = kontord
        self.op_port = op_port
        self.pki = os.path.join(root, "pki")
        self.ca_dir = os.path.join(self.pki, "ca")

    def fed(self, *args):
        return harness.federation_sh(self.kontord, *args, stderr_tail=2000)

    def conn(self, cert, key):
        return ["--node", f"127.0.0.1:{self.op_port}", "--cert", cert,
                "--key", key, "--ca",
                os.path.join(self.ca_dir, "federation-ca.crt")]

    def operator(self, user):
        d = os.path.join(self.pki, "operators")
        return self.conn(os.path.join(d, f"{user}.crt"),
                         os.path.join(d, f"{user}.key"))

    def wait_reloaded(self, mark):
        def reloaded():
            return any("reloaded:" in l for l in self.new_lines("ee", mark))
        return harness.poll(reloaded, RELOAD_DEADLINE_S, 0.1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ossl(*args, cwd=None):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def revoke(fed, user):
    """Revokes the operator's certificate with the operator CA and re-issues
    its CRL over the configured file, as OPERATIONS.md says."""
    ossl("ca", "-batch", "-config", "operator-ca.cnf", "-revoke",
         f"../operators/{user}.crt", cwd=fed.ca_dir)
    gencrl(fed)


def gencrl(fed, *extra):
    ossl("ca", "-batch", "-config", "operator-ca.cnf", "-gencrl", *extra,
         "-out", "operator-ca.crl.pem", cwd=fed.ca_dir)


def kontor(fed, conn, *args):
    """kontor with conn, retried while the node is briefly away (a reload
    rebinds the port): (exit code, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if k != "KONTOR_NODE"}

    def once():
        try:
            r = subprocess.run([fed.kontor, *conn, "--json", *args], env=env,
                               stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=30)
        except subprocess.TimeoutExpired:
            return None, "", "no answer"
        return r.returncode, r.stdout, r.stderr
    return harness.retry_transient(once, 20, 0.2)


def send(fed, conn, body):
    return kontor(fed, conn, "send", "--to", "fi", "--kind", "note",
                  "--subject", "operator CRL test", "--body-file", body)


def check_config(fed, text):
    """kontord --check-config on ee's config with `text` as operator_api
    (written beside it, so that relative paths resolve the same)."""
    path = fed.path("ee", "check.textproto")
    base = open(fed.config("ee")).read()
    base = re.sub(r"operator_api \{[^}]*\}\n", "", base)
    with open(path, "w") as f:
        f.write(base + text)
    r = subprocess.run([fed.kontord, "--check-config", "--config", path],
                       capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    os.unlink(path)
    return r.returncode, r.stdout + r.stderr


def refused(rc, err, *words):
    # Exit 2: a refused certificate is the caller's to fix, not an outage
    # (issue 11: the CLI says so and exits 2).
    line = harness.one_line(err) or ""
    return (rc == 2 and line.startswith("kontor: operator certificate "
                                        "refused:")
            and all(w in line for w in words))


def run_check_config(res, fed):
    op = f'operator_api {{ listen_address: "127.0.0.1:{fed.op_port}" ' \
         'ca: "../pki/ca/operator-ca.crt"'
    rc, out = check_config(fed, op + ' crl: "../pki/ca/operator-ca.crl.pem" }\n')
    res.check("check-config: operator_api with its CRL is valid", rc == 0, out)
    rc, out = check_config(fed, op + " }\n")
    res.check("check-config: no operator_api.crl -> exit 2 naming the field",
              rc == 2 and "operator_api.crl: required" in out, f"{rc} {out}")
    rc, out = check_config(fed, op + ' crl: "../pki/ca/federation-ca.crl.pem" '
                           "}\n")
    res.check("check-config: the federation CA's CRL -> exit 2 naming "
              "operator_api.crl", rc == 2 and "operator_api.crl:" in out
              and "not signed by" in out, f"{rc} {out}")
    stale = os.path.join(fed.ca_dir, "stale.crl.pem")
    ossl("ca", "-batch", "-config", "operator-ca.cnf", "-gencrl",
         "-crl_lastupdate", "20200101000000Z", "-crl_nextupdate",
         "20200201000000Z", "-out", stale, cwd=fed.ca_dir)
    rc, out = check_config(fed, op + ' crl: "../pki/ca/stale.crl.pem" }\n')
    res.check("check-config: an out-of-date CRL -> exit 2 naming "
              "operator_api.crl", rc == 2 and "operator_api.crl:" in out
              and "out of date" in out, f"{rc} {out}")
    rc, out = check_config(fed, op + " allow_missing_crl: true }\n")
    res.check("check-config: allow_missing_crl instead of a CRL is valid",
              rc == 0, out)


def run(tmp, res):
    kontord, kontor_bin = harness.binaries()
    root = os.path.join(tmp, "fed")
    fed = Fed(root, kontord, kontor_bin, free_port())
    fed.fed("start", root, "ee", "fi")
    fed.fed("stop", root)
    subprocess.run([MAKE_PKI, fed.pki, "--operator", "anna:coordinator",
                    "--operator", "lars:liaison", "--operator", "root:admin"],
                   check=True, capture_output=True)
    run_check_config(res, fed)
    harness.append_config(
        root, "ee",
        f'operator_api {{ listen_address: "127.0.0.1:{fed.op_port}" '
        'ca: "../pki/ca/operator-ca.crt" '
        'crl: "../pki/ca/operator-ca.crl.pem" }\n'
        "reload_check_seconds: 1\n")
    fed.fed("start", root, "ee", "fi")
    body = os.path.join(tmp, "body.txt")
    with open(body, "w") as f:
        f.write("operator CRL test\n")
    pid0 = fed.pid("ee")

    # 2. Everyone works; what is not an operator of this CA does not.
    for user in ("anna", "lars", "root"):
        rc, out, err = send(fed, fed.operator(user), body)
        res.check(f"{user} sends over the operator port", rc == 0,
                  f"rc={rc} {err}")
    self_key = os.path.join(tmp, "mallory.key")
    self_crt = os.path.join(tmp, "mallory.crt")
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", self_key, "-out",
         self_crt, "-days", "30", "-subj", "/CN=mallory (admin)",
         "-addext", "subjectAltName=URI:urn:kontor:user:mallory,"
         "URI:urn:kontor:role:admin", "-addext", "extendedKeyUsage=clientAuth",
         "-addext", "keyUsage=critical,digitalSignature")
    rc, out, err = send(fed, fed.conn(self_crt, self_key), body)
    res.check("a self-signed certificate naming an admin is refused",
              refused(rc, err, "not issued by a trusted CA"),
              f"rc={rc} {err}")
    rc, out, err = send(fed, fed.conn(fed.path("ee", "tls.crt"),
                                      fed.path("ee", "tls.key")), body)
    res.check("ee's node certificate is refused on the operator port",
              refused(rc, err), f"rc={rc} {err}")

    # 3. anna revoked, SIGHUP.
    mark = fed.mark("ee")
    revoke(fed, "anna")
    os.kill(fed.pid("ee"), signal.SIGHUP)
    res.check("SIGHUP: ee reloads", fed.wait_reloaded(mark),
              "\n".join(fed.new_lines("ee", mark)[-5:]))
    rc, out, err = send(fed, fed.operator("anna"), body)
    res.check("anna's same command is refused: revoked",
              refused(rc, err, "user:anna", "revoked"), f"rc={rc} {err}")
    res.check("ee logs the refusal (SECURITY, anna, revoked)",
              any("SECURITY api: operator call refused" in l and
                  "user:anna" in l and "revoked" in l
                  for l in fed.new_lines("ee", mark)),
              "\n".join(fed.new_lines("ee", mark)[-5:]))
    # A streaming call too (watch would otherwise wait for messages).
    rc, out, err = kontor(fed, fed.operator("anna"), "watch", "--since", "0")
    res.check("anna's streaming call (watch) is refused too: revoked",
              refused(rc, err, "user:anna", "revoked"), f"rc={rc} {err}")
    for user in ("lars", "root"):
        rc, out, err = send(fed, fed.operator(user), body)
        res.check(f"{user} still works after anna's revocation", rc == 0,
                  f"rc={rc} {err}")

    # 4. lars revoked; ee notices the new CRL by itself.
    mark = fed.mark("ee")
    revoke(fed, "lars")
    res.check("changed CRL file: ee reloads by itself",
              fed.wait_reloaded(mark),
              "\n".join(fed.new_lines("ee", mark)[-5:]))
    rc, out, err = kontor(fed, fed.operator("lars"), "outbox")
    res.check("lars is refused: revoked",
              refused(rc, err, "user:lars", "revoked"), f"rc={rc} {err}")
    rc, out, err = send(fed, fed.operator("root"), body)
    res.check("root still works", rc == 0, f"rc={rc} {err}")

    # 5. An out-of-date CRL: refused, the node keeps running; then renewed.
    mark = fed.mark("ee")
    gencrl(fed, "-crl_lastupdate", "20200101000000Z", "-crl_nextupdate",
           "20200201000000Z")
    res.check("out-of-date CRL: ee reloads", fed.wait_reloaded(mark),
              "\n".join(fed.new_lines("ee", mark)[-5:]))
    rc, out, err = send(fed, fed.operator("root"), body)
    res.check("root is refused while the CRL is out of date",
              refused(rc, err, "out of date"), f"rc={rc} {err}")
    res.check("ee warns that the operator CRL is out of date",
              any("operator_api.crl" in l and "out of date" in l
                  for l in fed.new_lines("ee", mark)),
              "\n".join(fed.new_lines("ee", mark)[-5:]))
    mark = fed.mark("ee")
    gencrl(fed)
    fed.wait_reloaded(mark)
    rc, out, err = send(fed, fed.operator("root"), body)
    res.check("a current CRL again: root works", rc == 0, f"rc={rc} {err}")
    rc, out, err = send(fed, fed.operator("anna"), body)
    res.check("anna stays revoked", refused(rc, err, "revoked"),
              f"rc={rc} {err}")
    res.check("ee kept its pid through every reload", fed.pid("ee") == pid0
              and fed.alive("ee"), f"{pid0} -> {fed.pid('ee')}")


if __name__ == "__main__":
    sys.exit(harness.main(run, "kontor-opcrl.",
                          lambda *a: harness.federation_sh(
                              harness.binaries()[0], *a)))
