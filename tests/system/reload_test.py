#!/usr/bin/python3
"""Real-process tests of kontord's live reload and certificate revocation.

Runs a loopback federation `ee fi lv` (deploy/federation.sh) in a temporary
directory, every node with `backoff { initial_ms: 200 max_ms: 2000 }` and
`reload_check_seconds: 1`, and checks, with the kontor CLI, openssl and the
node logs:

1. reload_bad_config_refused: garbage appended to ee's config, then SIGHUP:
   ee logs "reload refused:" naming the field, keeps its pid and keeps
   delivering; after the file is restored ee works (and reloads). Then a
   SIGHUP with a valid config while a message to fi waits (fi down): ee logs
   "reloaded", same pid, socket and port back, the message is delivered once
   fi is up.
2. reload_new_peer: `federation.sh start DIR ee fi lv se` adds node se and
   rewrites ee's config (ee is not restarted); ee reloads it (periodic check,
   else SIGHUP) and a message ee -> se is accepted and delivered, same pid.
3. revocation: fi is stopped and ee queues a message to it; then
   a. fi's TLS certificate is revoked with `openssl ca` and the CRL
      regenerated in place: ee and lv reload by themselves, and ee refuses a
      TLS client presenting fi's certificate ("refused TLS peer ... revoked");
   b. fi's signing and encryption certificates are revoked too: ee logs a
      WARNING that peer fi is unusable, `kontor peers` shows fi unusable,
      `kontor send --to fi` exits 2 with a one-line reason, the queued
      message stays queued (fi started again meanwhile), ee -> lv delivers.
   (ee knows fi's TLS certificate only from a handshake; its config names
   fi's signing and encryption certificates, hence step b.)
4. tls_rotation: a new TLS certificate and key for lv (same CA, same
   extensions as certs-example/make-pki.sh) are renamed over lv's files
   without signalling lv: lv reloads, presents the new certificate, keeps
   its pid, and ee -> lv messages sent meanwhile are delivered.

Environment: KONTORD, KONTOR (the binaries; default: build/ of the
repository), KEEP_TMP=1 keeps the temporary directory even on success.
Prints one PASS/FAIL line per check (`scenario: what`) and at the end
`N passed, M failed`; exits 0 only if nothing failed. Waits are bounded
polls; nothing asserts how fast anything happens. Standard library only.
"""

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import BACKOFF, one_line, pid_alive  # noqa: E402

NODES = ("ee", "fi", "lv")
NEW_NODE = "se"
EXTRA_CONFIG = BACKOFF + "reload_check_seconds: 1\n"
EXIT_USAGE = 2

# Bounds: they only limit how long a condition is waited for.
RELOAD_DEADLINE_S = 20    # a reload shows in the log
LOG_DEADLINE_S = 20       # any other expected log line
DELIVERY_DEADLINE_S = 30  # one message delivered
SEND_DEADLINE_S = 30      # a send retried while the node restarts in-process
CLI_TIMEOUT_S = 60        # one kontor process
HOLD_S = 5                # how long "stays queued" is watched

TLS_EXTENSIONS = """[ tls ]
basicConstraints       = CA:FALSE
keyUsage               = critical, digitalSignature, keyAgreement
extendedKeyUsage       = serverAuth, clientAuth
subjectAltName         = URI:urn:kontor:node:{node}, DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
"""

KONTORD, KONTOR = harness.binaries()


class Failure(Exception):
    """Ends a scenario early (its checks so far are already counted)."""


def log(msg):
    print(f"  note: {msg}", flush=True)


def federation(*args, timeout=120):
    return harness.federation_sh(KONTORD, *args, timeout=timeout,
                                 stderr_tail=3000)


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def is_reloaded_line(line):
    return ("reloaded" in line and "refused" not in line
            and "not reloaded" not in line)


# ------------------------------------------------------------------ openssl


def ossl(*args, cwd=None, check=True, timeout=30, stdin_text=None):
    """Runs openssl; returns (exit code, stdout + stderr)."""
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True,
                       text=True, timeout=timeout,
                       input=stdin_text if stdin_text is not None else "")
    out = r.stdout + r.stderr
    if check and r.returncode != 0:
        raise Failure(f"openssl {' '.join(args)} exited {r.returncode}: "
                      f"{out.strip()[-1000:]}")
    return r.returncode, out


def cert_serial(path=None, pem=None):
    if pem is not None:
        _, out = ossl("x509", "-noout", "-serial", stdin_text=pem)
    else:
        _, out = ossl("x509", "-noout", "-serial", "-in", path)
    m = re.search(r"serial=([0-9A-Fa-f]+)", out)
    return m.group(1).upper() if m else None


def tls_probe(port, cert, key, ca):
    """One TLS handshake with openssl s_client presenting cert/key; returns
    its output (the server's certificate is in it)."""
    try:
        r = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
             "-cert", cert, "-key", key, "-CAfile", ca, "-alpn", "h2",
             "-showcerts"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=15)
    except subprocess.TimeoutExpired:
        return ""
    # Bytes: after the handshake the server's HTTP/2 frames land on stdout.
    return (r.stdout + r.stderr).decode("utf-8", errors="replace")


def first_pem(text):
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                  text, re.S)
    return m.group(0) + "\n" if m else None


# --------------------------------------------------------------- federation


class Fed(harness.FedDir):
    cli_timeout = CLI_TIMEOUT_S

    def __init__(self, root, body_file):
        super().__init__(root, KONTOR)
        self.body = body_file
        self.pki = os.path.join(root, "pki")
        self.ca_dir = os.path.join(self.pki, "ca")
        self.ca_cert = os.path.join(self.ca_dir, "federation-ca.crt")
        self.crl = os.path.join(self.ca_dir, "federation-ca.crl.pem")

    def read_config(self, node):
        with open(self.config(node)) as f:
            return f.read()

    def write_config(self, node, text):
        """Replaces node's config atomically (a new inode)."""
        tmp = self.config(node) + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config(node))

    def add_extras(self, node):
        text = self.read_config(node)
        if "reload_check_seconds" not in text:
            self.write_config(node, text + EXTRA_CONFIG)

    # -- logs

    def wait_log(self, node, mark, pred, deadline_s=LOG_DEADLINE_S):
        """The first line after mark for which pred is true, or None."""
        found = harness.poll(
            lambda: [l for l in self.new_lines(node, mark) if pred(l)],
            deadline_s, 0.2)
        return found[0] if found else None

    def wait_reloaded(self, node, mark, deadline_s=RELOAD_DEADLINE_S):
        return self.wait_log(node, mark, is_reloaded_line, deadline_s)

    def wait_reloaded_all(self, marks, deadline_s=RELOAD_DEADLINE_S):
        """Waits (in one bounded poll) until every node in marks logged a
        reload after its mark; returns {node: line or None}."""
        got = {n: None for n in marks}

        def all_done():
            for n, m in marks.items():
                if got[n] is None:
                    got[n] = next((l for l in self.new_lines(n, m)
                                   if is_reloaded_line(l)), None)
            return all(got.values())
        harness.poll(all_done, deadline_s, 0.2)
        return got

    def tail(self, node, mark=None, n=6):
        lines = self.log_lines(node) if mark is None else self.new_lines(
            node, mark)
        return lines[-n:]

    # -- CLI

    def query(self, node, *args):
        """A read-only command (retried while the node restarts in-process);
        its JSON."""
        rc, out, err = harness.retry_transient(
            lambda: self.cli(node, *args), SEND_DEADLINE_S, 0.3)
        if rc != 0:
            raise Failure(f"kontor {' '.join(args)} on {node} exited "
                          f"{rc}: {err.strip()}")
        return json.loads(out)

    def send(self, node, to, subject, retry=True):
        """kontor send; a transient failure (75) is retried with the same
        client key while the node may be restarting. Returns
        (exit code, message id or None, stderr)."""
        key = f"rl-{secrets.token_hex(6)}"

        def send_once():
            return self.cli(node, "send", "--to", to, "--kind", "note",
                            "--subject", subject, "--body-file", self.body,
                            "--client-key", key)
        rc, out, err = (harness.retry_transient(send_once, SEND_DEADLINE_S, 0.3)
                        if retry else send_once())
        if rc == 0:
            try:
                return 0, json.loads(out)["message_id"], err
            except (ValueError, KeyError):
                return 0, None, f"unexpected output {out!r}"
        return rc, None, err

    def state(self, node, msg_id):
        """(overall state, first delivery) of a message at its origin."""
        st = self.query(node, "status", msg_id)
        d = (st.get("deliveries") or [{}])[0]
        return st.get("state", ""), d

    def wait_delivered(self, node, msg_id, deadline_s=DELIVERY_DEADLINE_S):
        """Polls until delivered; returns (delivered?, last state, delivery)."""
        last = {}

        def done():
            last["s"], last["d"] = self.state(node, msg_id)
            return last["s"] == "delivered"
        ok = harness.poll(done, deadline_s, 0.3)
        return bool(ok), last.get("s"), last.get("d")

    def inbox_ids(self, node):
        return {e.get("message_id") for e in self.inbox_entries(node)}

    def peer_block(self, node, peer):
        """The lines of `kontor peers` (text) about peer."""
        rc, out, err = self.cli(node, "peers", json_out=False)
        if rc != 0:
            return [f"(kontor peers exited {rc}: {err.strip()})"]
        block, inside = [], False
        for line in out.splitlines():
            m = re.match(r"^  (\S+)\s", line)
            if m:
                inside = m.group(1) == peer
            elif not line.startswith("   "):
                inside = False
            if inside:
                block.append(line.rstrip())
        return block


def send_and_deliver(res, fed, name, what, node, to, subject):
    """Sends one message and checks it is delivered; returns the id."""
    rc, mid, err = fed.send(node, to, subject)
    if rc != 0 or not mid:
        res.check(f"{name}: {what}", False,
                  f"kontor send --to {to} on {node} exited {rc}: {err.strip()}")
        return None
    ok, st, d = fed.wait_delivered(node, mid)
    res.check(f"{name}: {what}", ok,
              f"message {mid} is {st!r} after {DELIVERY_DEADLINE_S} s "
              f"(last_error {d.get('last_error', '')!r}); {node} log tail: "
              f"{fed.tail(node)}")
    return mid if ok else None


def check_pid(res, fed, name, node, pid0, what="keeps its pid"):
    pid = fed.pid(node)
    return res.check(f"{name}: {node} {what} ({pid0}) and runs",
                     pid == pid0 and pid_alive(pid0),
                     f"pid file says {pid}, pid {pid0} "
                     f"{'alive' if pid_alive(pid0) else 'dead'}; log tail: "
                     f"{fed.tail(node)}")


# ------------------------------------------------------------------ set-up


def setup(res, fed):
    harness.create_federation(federation, fed.root, NODES, EXTRA_CONFIG)
    r = subprocess.run([KONTORD, "--check-config", "--config", fed.config("ee")],
                       capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    ok = res.check("setup: kontord --check-config accepts reload_check_seconds "
                   "and backoff", r.returncode == 0,
                   f"exit {r.returncode}: {(r.stdout + r.stderr).strip()}")
    if not ok:
        # An older kontord: run without the new field, so that what already
        # works is still checked (everything about reloading will fail).
        log("starting the federation without reload_check_seconds")
        for n in NODES:
            fed.write_config(n, fed.read_config(n).replace(
                "reload_check_seconds: 1\n", ""))
    federation("start", fed.root)
    res.check(f"setup: federation {' '.join(NODES)} runs",
              all(fed.alive(n) for n in NODES),
              f"pids {[fed.pid(n) for n in NODES]}")


# --------------------------------------------------------------- scenarios


def scenario_reload_bad_config_refused(res, fed):
    name = "reload_bad_config_refused"
    pid0 = fed.pid("ee")
    original = fed.read_config("ee")
    mark = fed.mark("ee")
    with open(fed.config("ee"), "a") as f:
        f.write("bogus_field: 1\n")
    os.kill(pid0, signal.SIGHUP)
    line = fed.wait_log("ee", mark, lambda l: "reload refused:" in l)
    res.check(f"{name}: ee logs 'reload refused:' after SIGHUP with garbage "
              f"in its config", line is not None,
              f"no such line in {LOG_DEADLINE_S} s; new log lines: "
              f"{fed.tail('ee', mark)}")
    if line:
        log(f"ee log: {line}")
        res.check(f"{name}: the refusal names the bad field (bogus_field)",
                  "bogus_field" in line, line)
    check_pid(res, fed, name, "ee", pid0)
    send_and_deliver(res, fed, name, "with the bad config on disk, ee -> fi "
                     "is accepted and delivered", "ee", "fi", "bad config")

    refusals = len([l for l in fed.new_lines("ee", mark)
                    if "reload refused:" in l])
    restore_mark = fed.mark("ee")
    fed.write_config("ee", original)
    reloaded = fed.wait_reloaded("ee", restore_mark)
    log(f"{refusals} 'reload refused' line(s) while the bad config was on "
        f"disk; after restoring it: "
        f"{'reloaded: ' + reloaded if reloaded else 'no reload logged'}")
    later = len([l for l in fed.new_lines("ee", restore_mark)
                 if "reload refused:" in l])
    res.check(f"{name}: no more refusals once the config is restored",
              later == 0, f"{later} 'reload refused' line(s) after restoring: "
              f"{[l for l in fed.new_lines('ee', restore_mark) if 'refused' in l][:3]}")
    check_pid(res, fed, name, "ee", pid0, "after restoring the config keeps "
              "its pid")
    send_and_deliver(res, fed, name, "after restoring the config ee -> fi is "
                     "delivered" + (" (ee reloaded)" if reloaded else
                                    " (no reload logged)"),
                     "ee", "fi", "restored config")

    # A SIGHUP with a valid config: in-process restart, the queue continues.
    federation("stop", fed.root, "fi")
    rc, mid, err = fed.send("ee", "fi", "queued across a reload")
    if not res.check(f"{name}: ee accepts a message to fi while fi is down",
                     rc == 0 and mid, f"exit {rc}: {err.strip()}"):
        federation("start", fed.root, "fi")
        return
    mark = fed.mark("ee")
    os.kill(pid0, signal.SIGHUP)
    reloaded = fed.wait_reloaded("ee", mark)
    res.check(f"{name}: SIGHUP with a valid config: ee logs 'reloaded'",
              reloaded is not None,
              f"no 'reloaded' in {RELOAD_DEADLINE_S} s; new log lines: "
              f"{fed.tail('ee', mark)}")
    check_pid(res, fed, name, "ee", pid0, "after the SIGHUP reload keeps its pid")
    back = harness.poll(lambda: os.path.exists(fed.socket("ee"))
                        and fed.cli("ee", "peers", timeout=20)[0] == 0
                        and port_accepts(fed.port("ee")), 30, 0.3)
    res.check(f"{name}: after the reload ee's unix socket answers and its "
              f"federation port accepts connections", bool(back),
              f"socket {fed.socket('ee')} exists: "
              f"{os.path.exists(fed.socket('ee'))}; port {fed.port('ee')} "
              f"accepts: {port_accepts(fed.port('ee'))}")
    federation("start", fed.root, "fi")
    ok, st, d = fed.wait_delivered("ee", mid)
    res.check(f"{name}: the message queued before the reload is delivered "
              f"once fi is up", ok,
              f"{mid} is {st!r} (last_error {d.get('last_error', '')!r})")


def scenario_reload_new_peer(res, fed):
    name = "reload_new_peer"
    pid0 = fed.pid("ee")
    mark = fed.mark("ee")
    before = fed.read_config("ee")
    out = federation("start", fed.root, *NODES, NEW_NODE)
    after = fed.read_config("ee")
    if not res.check(f"{name}: federation.sh adds {NEW_NODE}: it runs and "
                     f"ee's config now names it as a peer",
                     fed.alive(NEW_NODE) and f'id: "{NEW_NODE}"' in after
                     and f'id: "{NEW_NODE}"' not in before,
                     f"{NEW_NODE} alive: {fed.alive(NEW_NODE)}; output {out!r}"):
        raise Failure("no new peer")
    reloaded = fed.wait_reloaded("ee", mark)
    how = "periodic check"
    if reloaded is None:
        log(f"ee did not reload by itself in {RELOAD_DEADLINE_S} s: SIGHUP")
        how = "SIGHUP (the periodic check did not)"
        mark2 = fed.mark("ee")
        if fed.alive("ee"):
            os.kill(fed.pid("ee"), signal.SIGHUP)
        reloaded = fed.wait_reloaded("ee", mark2)
    res.check(f"{name}: ee reloads the rewritten config by itself (periodic "
              f"check)", how == "periodic check" and reloaded is not None,
              f"reloaded via {how}: {reloaded}; new log lines: "
              f"{fed.tail('ee', mark)}")
    res.check(f"{name}: ee reloads the rewritten config ({how})",
              reloaded is not None, f"new log lines: {fed.tail('ee', mark)}")
    check_pid(res, fed, name, "ee", pid0)
    mid = send_and_deliver(res, fed, name, f"ee -> {NEW_NODE} is accepted and "
                           f"delivered", "ee", NEW_NODE, "to the new peer")
    if mid:
        res.check(f"{name}: {NEW_NODE}'s inbox has the message",
                  mid in fed.inbox_ids(NEW_NODE), mid)
    check_pid(res, fed, name, "ee", pid0, "after sending keeps its pid")

    # federation.sh wrote the configs without our additions: put them back
    # and restart everything for the next scenarios.
    for n in (*NODES, NEW_NODE):
        fed.add_extras(n)
    federation("restart", fed.root, *NODES, NEW_NODE)


def revoke(fed, *certs):
    """Revokes certificates (paths relative to the CA directory) in the
    federation CA and regenerates its CRL over the configured file, in
    place."""
    for c in certs:
        ossl("ca", "-batch", "-config", "federation-ca.cnf", "-revoke", c,
             cwd=fed.ca_dir)
    ossl("ca", "-batch", "-config", "federation-ca.cnf", "-gencrl", "-out",
         "federation-ca.crl.pem", cwd=fed.ca_dir)


def crl_revokes(fed, cert):
    rc, out = ossl("verify", "-crl_check", "-CAfile", fed.ca_cert, "-CRLfile",
                   fed.crl, cert, check=False)
    return rc != 0 and "revoked" in out, out.strip()


def scenario_revocation(res, fed):
    name = "revocation"
    fi_pki = os.path.join(fed.pki, "fi")
    federation("stop", fed.root, "fi")
    rc, queued_id, err = fed.send("ee", "fi", "queued before the revocation")
    if not res.check(f"{name}: ee accepts a message to fi while fi is down",
                     rc == 0 and queued_id, f"exit {rc}: {err.strip()}"):
        raise Failure("no queued message")
    pids = {n: fed.pid(n) for n in ("ee", "lv")}
    marks = {n: fed.mark(n) for n in ("ee", "lv")}
    first_mark = marks["ee"]

    # a. fi's TLS certificate.
    inode = os.stat(fed.crl).st_ino
    revoke(fed, "../fi/tls.crt")
    revoked, out = crl_revokes(fed, os.path.join(fi_pki, "tls.crt"))
    res.check(f"{name}: openssl revokes fi's TLS certificate; the CRL is "
              f"rewritten in place (same inode) and lists it",
              revoked and os.stat(fed.crl).st_ino == inode,
              f"openssl verify -crl_check: {out}; inode {inode} -> "
              f"{os.stat(fed.crl).st_ino}")
    got = fed.wait_reloaded_all(marks)
    res.check(f"{name}: ee and lv reload after the CRL changed (periodic "
              f"check)", all(got.values()),
              "; ".join(f"{n}: {got[n] or 'no reload, new lines ' + str(fed.tail(n, marks[n]))}"
                        for n in got))
    for n in ("ee", "lv"):
        check_pid(res, fed, name, n, pids[n])

    probe_mark = fed.mark("ee")

    def refused():
        tls_probe(fed.port("ee"), os.path.join(fi_pki, "tls.crt"),
                  os.path.join(fi_pki, "tls.key"), fed.ca_cert)
        return [l for l in fed.new_lines("ee", probe_mark)
                if "refused TLS peer" in l and "revoked" in l]
    lines = harness.poll(refused, LOG_DEADLINE_S, 0.5)
    res.check(f"{name}: ee refuses a TLS client presenting fi's revoked "
              f"certificate ('refused TLS peer ... revoked')", bool(lines),
              f"lines logged by ee meanwhile: "
              f"{[l for l in fed.new_lines('ee', probe_mark) if 'TLS' in l][-3:] or fed.tail('ee', probe_mark, 3)}")
    if lines:
        log(f"ee log: {lines[0]}")
    log(f"ee's `kontor peers` on fi after its TLS certificate alone is "
        f"revoked: {fed.peer_block('ee', 'fi')}")

    # b. fi's signing and encryption certificates (named in ee's config).
    marks = {n: fed.mark(n) for n in ("ee", "lv")}
    revoke(fed, "../fi/signing.crt", "../fi/encryption.crt")
    both = [crl_revokes(fed, os.path.join(fi_pki, f"{p}.crt"))[0]
            for p in ("signing", "encryption")]
    res.check(f"{name}: openssl revokes fi's signing and encryption "
              f"certificates too (CRL rewritten in place)",
              all(both) and os.stat(fed.crl).st_ino == inode,
              f"revoked: {both}")
    got = fed.wait_reloaded_all(marks)
    res.check(f"{name}: ee and lv reload after the second CRL change",
              all(got.values()),
              "; ".join(f"{n}: {got[n] or 'no reload, new lines ' + str(fed.tail(n, marks[n]))}"
                        for n in got))
    warn = fed.wait_log("ee", marks["ee"], lambda l: re.search(r"\bWARN", l)
                        and re.search(r"\bfi\b", l) and "revoked" in l)
    res.check(f"{name}: ee logs a WARNING naming peer fi and 'revoked'",
              warn is not None, f"new log lines: {fed.tail('ee', marks['ee'])}")
    if warn:
        log(f"ee log: {warn}")
    any_revoked = [l for l in fed.new_lines("ee", first_mark)
                   if "revoked" in l and re.search(r"\bfi\b", l)]
    res.check(f"{name}: ee's log says fi is revoked (warning or refused TLS "
              f"peer)", bool(any_revoked), f"log tail: {fed.tail('ee')}")
    check_pid(res, fed, name, "ee", pids["ee"])

    # fi comes back (it may refuse to run with its own revoked certificates).
    try:
        federation("start", fed.root, "fi")
        log(f"fi started again (pid {fed.pid('fi')})")
    except RuntimeError as e:
        log(f"fi does not start with its revoked certificates: "
            f"{str(e).splitlines()[-3:]}")

    block = []

    def unusable():
        block[:] = fed.peer_block("ee", "fi")
        return any("unusable" in l.lower() for l in block)
    ok = harness.poll(unusable, LOG_DEADLINE_S, 0.5)
    res.check(f"{name}: `kontor peers` on ee shows fi unusable", bool(ok),
              f"fi's lines: {block}; JSON: {fed.peer('ee', 'fi')}")
    if ok:
        log(f"ee peers: {' | '.join(l.strip() for l in block)}")
        res.check(f"{name}: the unusable reason says revoked",
                  any("revok" in l for l in block), f"{block}")

    rc, mid, err = fed.send("ee", "fi", "after the revocation", retry=False)
    line = one_line(err)
    res.check(f"{name}: `kontor send --to fi` on ee exits 2 with a one-line "
              f"reason naming the revocation",
              rc == EXIT_USAGE and line is not None
              and re.search(r"revok|unusable", line, re.I) is not None,
              f"exit {rc}, id {mid}, stderr {err!r}")

    # The message queued before the revocation: kept, never delivered.
    seen = {}

    def delivered_or_gone():
        s, d = fed.state("ee", queued_id)
        seen["s"], seen["d"] = s, d
        return s in ("delivered", "rejected", "expired", "cancelled")
    bad = harness.poll(delivered_or_gone, HOLD_S, 0.5)
    in_fi = fed.alive("fi") and queued_id in fed.inbox_ids("fi")
    res.check(f"{name}: the message queued to fi before the revocation stays "
              f"queued (not delivered, not lost)",
              not bad and not in_fi and seen.get("s") in ("queued", "suspended"),
              f"{queued_id} is {seen.get('s')!r} at ee "
              f"(last_error {seen.get('d', {}).get('last_error', '')!r}); in "
              f"fi's inbox: {in_fi}")
    log(f"{queued_id} at ee: {seen.get('s')!r}, last_error "
        f"{seen.get('d', {}).get('last_error', '')!r}")
    send_and_deliver(res, fed, name, "ee -> lv is still delivered", "ee", "lv",
                     "after the revocation")
    check_pid(res, fed, name, "ee", pids["ee"], "keeps its pid to the end")


def issue_tls(fed, node, workdir):
    """A new TLS key and certificate for node from the federation CA, with
    make-pki.sh's extensions; returns (cert path, key path) in workdir."""
    key = os.path.join(workdir, "tls.key.new")
    csr = os.path.join(workdir, "tls.csr")
    crt = os.path.join(workdir, "tls.crt.new")
    ext = os.path.join(workdir, "tls.ext")
    old_umask = os.umask(0o077)
    try:
        ossl("genpkey", "-algorithm", "EC", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-pkeyopt",
             "ec_param_enc:named_curve", "-out", key)
    finally:
        os.umask(old_umask)
    os.chmod(key, 0o600)
    with open(ext, "w") as f:
        f.write(TLS_EXTENSIONS.format(node=node))
    ossl("req", "-new", "-config", os.path.join(fed.ca_dir, "federation-ca.cnf"),
         "-key", key, "-subj", f"/CN={node}", "-out", csr)
    ossl("ca", "-batch", "-notext", "-config", "federation-ca.cnf", "-days",
         "825", "-extfile", ext, "-extensions", "tls", "-subj", f"/CN={node}",
         "-in", csr, "-out", crt, cwd=fed.ca_dir)
    os.chmod(crt, 0o644)
    return crt, key


def scenario_tls_rotation(res, fed):
    name = "tls_rotation"
    node = "lv"
    pid0 = fed.pid(node)
    crt_link, key_link = fed.path(node, "tls.crt"), fed.path(node, "tls.key")
    crt_path, key_path = os.path.realpath(crt_link), os.path.realpath(key_link)
    old_serial = cert_serial(crt_path)
    workdir = os.path.join(fed.root, "rotation")
    os.makedirs(workdir, exist_ok=True)
    new_crt, new_key = issue_tls(fed, node, workdir)
    new_serial = cert_serial(new_crt)
    rc, out = ossl("verify", "-crl_check", "-CAfile", fed.ca_cert, "-CRLfile",
                   fed.crl, new_crt, check=False)
    _, text = ossl("x509", "-noout", "-ext", "subjectAltName,keyUsage,"
                   "extendedKeyUsage", "-in", new_crt, check=False)
    res.check(f"{name}: a new TLS certificate for lv from the federation CA "
              f"(new serial, verifies with the CRL, URI SAN, key usages)",
              rc == 0 and new_serial and new_serial != old_serial
              and "URI:urn:kontor:node:lv" in text and "TLS Web Server" in text
              and "TLS Web Client" in text and "Key Agreement" in text,
              f"verify: {out.strip()}; serial {old_serial} -> {new_serial}; "
              f"{text!r}")

    # Into place by rename (same directory as the link targets: atomic).
    mark = fed.mark(node)
    tmp_key, tmp_crt = key_path + ".rot", crt_path + ".rot"
    with open(new_key, "rb") as src, open(tmp_key, "wb") as dst:
        dst.write(src.read())
    os.chmod(tmp_key, 0o600)
    with open(new_crt, "rb") as src, open(tmp_crt, "wb") as dst:
        dst.write(src.read())
    os.chmod(tmp_crt, 0o644)
    os.replace(tmp_key, key_path)
    os.replace(tmp_crt, crt_path)
    log(f"lv's TLS certificate {old_serial} replaced by {new_serial} "
        f"({crt_path})")

    # Messages ee -> lv during and after the change, over a few seconds.
    ids, problems = [], []
    for i in range(5):
        rc, mid, err = fed.send("ee", node, f"rotation {i}")
        if rc == 0 and mid:
            ids.append(mid)
        else:
            problems.append(f"send {i}: exit {rc}: {err.strip()}")
        time.sleep(1)
    not_delivered = []
    for mid in ids:
        ok, st, d = fed.wait_delivered("ee", mid)
        if not ok:
            not_delivered.append(f"{mid}: {st} ({d.get('last_error', '')})")
    res.check(f"{name}: ee -> lv messages sent across the rotation are all "
              f"accepted and delivered ({len(ids)})",
              not problems and not not_delivered and len(ids) == 5,
              f"{problems}; not delivered: {not_delivered}")
    reloaded = fed.wait_reloaded(node, mark)
    res.check(f"{name}: lv reloads by itself after its certificate changed",
              reloaded is not None, f"new log lines: {fed.tail(node, mark)}")
    check_pid(res, fed, name, node, pid0)

    ee_pki = os.path.join(fed.pki, "ee")
    seen = {}

    def presents_new():
        pem = first_pem(tls_probe(fed.port(node),
                                  os.path.join(ee_pki, "tls.crt"),
                                  os.path.join(ee_pki, "tls.key"),
                                  fed.ca_cert))
        seen["serial"] = cert_serial(pem=pem) if pem else None
        return seen["serial"] == new_serial
    ok = harness.poll(presents_new, LOG_DEADLINE_S, 0.5)
    res.check(f"{name}: lv's federation port presents the new certificate",
              bool(ok), f"server certificate serial {seen.get('serial')}, "
              f"new {new_serial}, old {old_serial}")
    send_and_deliver(res, fed, name, "ee -> lv is delivered after the "
                     "rotation", "ee", node, "after rotation")
    check_pid(res, fed, name, node, pid0, "keeps its pid to the end")


def scenario_watch_resumes(res, fed):
    """`kontor watch` on lv stays open across a reload of lv and prints
    every message exactly once."""
    name = "watch_resumes"
    env = {k: v for k, v in os.environ.items() if k != "KONTOR_NODE"}
    err_path = os.path.join(fed.root, "watch_resumes.stderr")
    err_file = open(err_path, "w")
    watch = subprocess.Popen(
        [KONTOR, "--node", fed.socket("lv"), "--json", "watch", "--since",
         str(max([0] + [e.get("seq", 0) for e in fed.inbox_entries("lv")]))],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=err_file)
    try:
        sent = []
        for subject in ("before reload", "after reload"):
            rc, msg_id, err = fed.send("ee", "lv", subject)
            if rc != 0 or not msg_id:
                raise Failure(f"send {subject!r}: exit {rc}: {err.strip()}")
            sent.append(msg_id)
            ok, state, _ = fed.wait_delivered("ee", msg_id)
            if not ok:
                raise Failure(f"{subject!r} not delivered ({state})")
            if subject == "before reload":
                mark = fed.mark("lv")
                os.kill(fed.pid("lv"), signal.SIGHUP)
                fed.wait_reloaded("lv", mark)
        deadline = time.monotonic() + 20
        seen = []
        os.set_blocking(watch.stdout.fileno(), False)
        buf = ""
        while time.monotonic() < deadline and len(seen) < len(sent):
            chunk = watch.stdout.read() or b""
            buf += chunk.decode()
            while "\n" in buf:
                line, buf = buf.split("\n", 1)
                if line.strip():
                    seen.append(json.loads(line).get("message_id"))
            time.sleep(0.2)
        res.check(f"{name}: watch on lv printed both messages, once each, "
                  f"across lv's reload", seen == sent,
                  f"sent {sent}, watch printed {seen}; still running: "
                  f"{watch.poll() is None}")
        with open(err_path) as f:
            err = f.read().strip()
        res.check(f"{name}: watch is still running after the reload",
                  watch.poll() is None, f"exit {watch.poll()}: {err[-400:]}")
    finally:
        watch.kill()
        watch.wait()
        err_file.close()


SCENARIOS = [
    ("watch_resumes", scenario_watch_resumes),
    ("reload_bad_config_refused", scenario_reload_bad_config_refused),
    ("reload_new_peer", scenario_reload_new_peer),
    ("revocation", scenario_revocation),
    ("tls_rotation", scenario_tls_rotation),
]


def run(tmp, res):
    body = os.path.join(tmp, "body.txt")
    with open(body, "w") as f:
        f.write("A reload-test message.\n")
    fed = Fed(os.path.join(tmp, "fed"), body)
    setup(res, fed)
    for name, fn in SCENARIOS:
        started = time.monotonic()
        print(f"# {name}", flush=True)
        try:
            fn(res, fed)
        except Failure as e:
            res.check(f"{name}: ran to the end", False, str(e))
        except Exception as e:  # noqa: BLE001 - reported, next scenario runs
            traceback.print_exc()
            res.check(f"{name}: ran to the end", False,
                      f"{type(e).__name__}: {e}")
        print(f"# {name}: {time.monotonic() - started:.1f} s", flush=True)
        if name == SCENARIOS[-1][0]:
            break
        # Whatever happened, the next scenario needs its nodes up (after the
        # revocation fi may refuse to run with its revoked certificates).
        try:
            federation("start", fed.root)
        except RuntimeError as e:
            log(f"not every node starts after {name}: "
                f"{str(e).splitlines()[-1:]}")


def main():
    harness.interrupt_on_signals()
    return harness.main(run, "kx-rl.", federation)


if __name__ == "__main__":
    sys.exit(main())
