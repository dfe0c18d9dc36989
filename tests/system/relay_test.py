#!/usr/bin/env python3
"""Relaying through an intermediate node, with real processes.

ee reaches lv only through fi (`federation.sh start ... --route ee:lv:fi`:
ee's config has no address for lv, a route via fi; fi relays ee<->lv).

1. 300 messages ee -> lv while the relay fi is SIGKILLed twice at random
   moments and once at each relay crash point (after it stored custody;
   after ee settled a returned receipt, ee dies instead). Every id ends up in
   lv's inbox exactly once, `delivered` at ee with a receipt signed by lv
   (recipient lv, verdict ACCEPTED: parsed here with the Python protobuf
   runtime), and fi's relay copies are settled with nothing left to return.
2. A tampering relay: a grpcio server holding fi's real TLS certificate
   takes fi's place for ee, flips one ciphertext byte of every envelope and
   passes it on to lv as fi. lv refuses it (bad signature, logged), ee marks
   the message `rejected` with lv's signed refusal ("altered on the way"),
   and lv's inbox never has it.
3. lv's reply goes back the same way (lv -> fi -> ee).

    KONTORD=... KONTOR=... tests/system/relay_test.py
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import stubs  # noqa: E402

import grpc  # noqa: E402

N = 300
DEADLINE_S = 120


class Fed(harness.FedDir):
    cli_timeout = 30

    def __init__(self, root, kontord, kontor):
        super().__init__(root, kontor)
        self.kontord = kontord

    def fed(self, *args, crash_at=None):
        env = dict(os.environ, KONTORD=self.kontord)
        env.pop("KONTOR_NODE", None)
        env.pop("KONTOR_CRASH_AT", None)
        if crash_at:
            env["KONTOR_CRASH_AT"] = crash_at
        r = subprocess.run([harness.FEDERATION_SH, *args], env=env,
                           capture_output=True, stdin=subprocess.DEVNULL,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"federation.sh {' '.join(args)}: {r.stderr[-2000:]}")
        return r.stdout

    def query(self, node, *args):
        rc, out, err = harness.retry_transient(
            lambda: self.cli(node, *args), 30, 0.2)
        if rc != 0:
            raise RuntimeError(f"kontor {' '.join(args)} on {node}: {rc} {err}")
        return json.loads(out)

    def kill(self, node):
        pid = self.pid(node)
        if pid and harness.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            harness.poll(lambda: not harness.pid_alive(pid), 20, 0.02)


def send_many(fed, n, body_file, tag):
    """Sends n messages ee -> lv with 4 CLI workers; returns their ids."""
    ids = [None] * n
    errors = []
    lock = threading.Lock()
    counter = iter(range(n))

    def worker():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            rc, out, err = harness.retry_transient(
                lambda: fed.cli("ee", "send", "--to", "lv", "--kind", "note",
                                "--subject", f"{tag} {i}", "--body-file",
                                body_file, "--client-key", f"{tag}-{i}"),
                60, 0.2)
            if rc == 0:
                ids[i] = json.loads(out)["message_id"]
            else:
                with lock:
                    errors.append(f"send {i}: {rc} {err.strip()}")
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    return threads, ids, errors


def delivered_at_ee(fed):
    rows = fed.query("ee", "outbox", "--state", "delivered", "--limit", "100000")
    return {r["message_id"]: r for r in rows.get("entries", [])}


def run_relay_under_kills(res, fed, pb, tmp):
    body = os.path.join(tmp, "body.txt")
    with open(body, "w") as f:
        f.write("relayed " + "x" * 900)
    # ee dies right after settling the 5th batch of returned receipts
    # (before answering fi): fi returns them again, and ee must take the
    # duplicates in its stride. A watcher starts it again.
    fed.fed("restart", fed.root, "ee", crash_at="return.after_settle:5")
    ee_died = threading.Event()
    stop_watch = threading.Event()

    def watch_ee():
        while not stop_watch.is_set():
            if not fed.alive("ee"):
                ee_died.set()
                fed.fed("start", fed.root, "ee")
                return
            time.sleep(0.05)
    watcher = threading.Thread(target=watch_ee)
    watcher.start()
    threads, ids, errors = send_many(fed, N, body, "rl")
    # Chaos on the relay while the senders run.
    time.sleep(1.0)
    fed.kill("fi")
    time.sleep(0.5)
    fed.fed("start", fed.root, "fi", crash_at="relay.after_custody_commit:20")
    harness.poll(lambda: not fed.alive("fi"), 30, 0.05)
    res.check("fi died at its crash point relay.after_custody_commit",
              not fed.alive("fi"), "still alive")
    fed.fed("start", fed.root, "fi")
    time.sleep(1.0)
    fed.kill("fi")
    fed.fed("start", fed.root, "fi")
    for t in threads:
        t.join()
    res.check("all sends accepted by ee", not errors and all(ids),
              "; ".join(errors[:3]))
    ids = [i for i in ids if i]

    got = harness.poll(lambda: (lambda d: d if all(i in d for i in ids) else None)(
        delivered_at_ee(fed)), DEADLINE_S, 0.5) or delivered_at_ee(fed)
    stop_watch.set()
    watcher.join()
    res.check("ee died once at return.after_settle (and came back)",
              ee_died.is_set() and fed.alive("ee"), "it did not die")
    missing = [i for i in ids if i not in got]
    res.check(f"all {len(ids)} delivered at ee (within {DEADLINE_S} s)",
              not missing, f"{len(missing)} missing, e.g. {missing[:3]}: "
              f"{fed.query('ee', 'status', missing[0]) if missing else ''}")
    inbox = fed.inbox_entries("lv")
    counts = {}
    for e in inbox:
        counts[e["message_id"]] = counts.get(e["message_id"], 0) + 1
    res.check("every id is in lv's inbox exactly once, from ee",
              all(counts.get(i) == 1 for i in ids) and
              all(e["origin"] == "ee" for e in inbox) and len(inbox) == len(ids),
              f"{len(inbox)} entries for {len(ids)} ids; "
              f"dups {[i for i, c in counts.items() if c > 1][:3]}")
    # The receipts: signed by lv (the final recipient), not by the relay.
    bad = []
    for i in ids[:: max(1, len(ids) // 30)]:
        st = fed.query("ee", "status", i)
        d = st["deliveries"][0]
        r, b = pb.envelope_pb2.Receipt(), pb.envelope_pb2.ReceiptBody()
        import base64
        r.ParseFromString(base64.b64decode(d["receipt"]))
        b.ParseFromString(r.body)
        if not (d["receipt_signer"] == "lv" and b.recipient == "lv" and
                b.origin == "ee" and b.message_id == i and
                b.verdict == pb.envelope_pb2.ACCEPTED):
            bad.append((i, d.get("receipt_signer"), str(b)[:200]))
    res.check("ee's receipts are lv's (recipient lv, ACCEPTED, this id)",
              not bad, str(bad[:2]))
    # The relay's copies are settled and nothing waits to go back.
    relayed = fed.query("fi", "outbox", "--state", "delivered", "--limit", "100000")
    keys = {r["message_id"] for r in relayed.get("entries", [])}
    res.check("fi holds every relayed copy as ee/<id>, delivered",
              all(f"ee/{i}" in keys for i in ids),
              f"{sum(f'ee/{i}' in keys for i in ids)} of {len(ids)}")
    queued = fed.query("fi", "outbox", "--limit", "100000").get("entries", [])
    res.check("fi's outbox is empty", not queued, str(queued[:2]))
    lines = [l for n in ("ee", "fi", "lv") for l in fed.log_lines(n)
             if " SECURITY " in l]
    res.check("no SECURITY lines in any log", not lines, "\n".join(lines[:5]))
    return ids


class TamperingRelay:
    """Plays fi for ee: flips a ciphertext byte and passes it on to lv."""

    def __init__(self, pb, pki, lv_port):
        self.pb = pb
        self.forwarded = 0
        ca = open(os.path.join(pki, "ca", "federation-ca.crt"), "rb").read()
        key = open(os.path.join(pki, "fi", "tls.key"), "rb").read()
        crt = open(os.path.join(pki, "fi", "tls.crt"), "rb").read()
        self.server_creds = grpc.ssl_server_credentials(
            [(key, crt)], root_certificates=ca, require_client_auth=True)
        self.channel = grpc.secure_channel(
            f"127.0.0.1:{lv_port}", grpc.ssl_channel_credentials(ca, key, crt),
            options=(("grpc.ssl_target_name_override", "localhost"),))
        self.lv = pb.federation_pb2_grpc.FederationStub(self.channel)

    def start(self):
        relay = self

        class Servicer(self.pb.federation_pb2_grpc.FederationServicer):
            def Exchange(self, request_iterator, context):
                for batch in request_iterator:
                    onward = relay.pb.federation_pb2.EnvelopeBatch(
                        batch_seq=batch.batch_seq)
                    for env in batch.envelopes:
                        e = onward.envelopes.add()
                        e.CopyFrom(env)
                        ct = bytearray(e.ciphertext)
                        ct[len(ct) // 2] ^= 0x01
                        e.ciphertext = bytes(ct)
                        e.routing.trace.append("ee")
                        e.routing.hop_count = 1
                    answers = list(relay.lv.Exchange(iter([onward]), timeout=20))
                    relay.forwarded += len(batch.envelopes)
                    for a in answers:
                        yield a

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.pb.federation_pb2_grpc.add_FederationServicer_to_server(
            Servicer(), self.server)
        self.port = self.server.add_secure_port("127.0.0.1:0", self.server_creds)
        self.server.start()
        return self.port

    def stop(self):
        self.server.stop(None)
        self.channel.close()


def set_fi_address(fed, node, port):
    path = fed.config(node)
    text = open(path).read()
    text = re.sub(r'(peers\s*{\s*id:\s*"fi"\s*address:\s*")[^"]*"',
                  rf'\g<1>127.0.0.1:{port}"', text)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def run_tampering_relay(res, fed, pb, tmp):
    relay = TamperingRelay(pb, os.path.join(fed.root, "pki"), fed.port("lv"))
    port = relay.start()
    original = open(fed.config("ee")).read()
    mark = fed.mark("lv")
    try:
        set_fi_address(fed, "ee", port)
        fed.fed("restart", fed.root, "ee")
        body = os.path.join(tmp, "tamper.txt")
        with open(body, "w") as f:
            f.write("through a bad relay")
        rc, out, err = fed.cli("ee", "send", "--to", "lv", "--kind", "note",
                               "--subject", "tampered", "--body-file", body)
        msg = json.loads(out)["message_id"] if rc == 0 else None
        res.check("ee accepts the message for lv", msg is not None, err)
        st = harness.poll(lambda: (lambda s: s if s["state"] == "rejected" else None)(
            fed.query("ee", "status", msg)), 60, 0.25) or fed.query("ee", "status", msg)
        d = st["deliveries"][0]
        res.check("ee: rejected by lv's signed refusal, 'altered on the way'",
                  st["state"] == "rejected" and d["receipt_signer"] == "lv" and
                  "altered on the way" in d["reason"] and
                  "BAD_SIGNATURE" in d["reason"], json.dumps(d)[:400])
        res.check("the tampering relay passed it on (lv saw it)",
                  relay.forwarded >= 1, f"{relay.forwarded}")
        lines = [l for l in fed.new_lines("lv", mark)
                 if " SECURITY " in l and msg in l]
        res.check("lv logs the refusal as SECURITY", bool(lines),
                  "\n".join(fed.new_lines("lv", mark)[-5:]))
        res.check("lv's inbox does not have it",
                  all(e["message_id"] != msg for e in fed.inbox_entries("lv")),
                  "it does")
    finally:
        relay.stop()
        with open(fed.config("ee") + ".tmp", "w") as f:
            f.write(original)
        os.replace(fed.config("ee") + ".tmp", fed.config("ee"))
        fed.fed("restart", fed.root, "ee")


def run_reply(res, fed, tmp):
    body = os.path.join(tmp, "reply.txt")
    with open(body, "w") as f:
        f.write("reply from lv")
    rc, out, err = fed.cli("lv", "send", "--to", "ee", "--kind", "note",
                           "--subject", "reply", "--body-file", body)
    res.check("lv sends to ee (routed via fi)", rc == 0, err)
    if rc != 0:
        return
    msg = json.loads(out)["message_id"]
    st = harness.poll(lambda: (lambda s: s if s["state"] == "delivered" else None)(
        fed.query("lv", "status", msg)), 60, 0.25) or fed.query("lv", "status", msg)
    res.check("lv -> fi -> ee delivered, receipt signed by ee",
              st["state"] == "delivered" and
              st["deliveries"][0]["receipt_signer"] == "ee", json.dumps(st)[:300])
    shown = fed.query("ee", "show", msg)
    res.check("ee shows it, signed by lv",
              shown.get("signer") == "lv" and
              shown["payload"]["subject"] == "reply", json.dumps(shown)[:300])


def run_watch_sent(res, fed, tmp):
    """The sender sees an expiry in `kontor watch --sent` (and status)."""
    env = {k: v for k, v in os.environ.items() if k != "KONTOR_NODE"}
    watcher = subprocess.Popen(
        [fed.kontor, "--node", fed.socket("ee"), "--json", "watch", "--sent",
         "--since", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(
        target=lambda: [lines.append(l) for l in watcher.stdout])
    reader.start()
    try:
        fed.fed("stop", fed.root, "fi")
        body = os.path.join(tmp, "short.txt")
        with open(body, "w") as f:
            f.write("short-lived")
        rc, out, err = fed.cli("ee", "send", "--to", "fi", "--kind", "note",
                               "--subject", "short", "--body-file", body,
                               "--expires-in", "2")
        msg = json.loads(out)["message_id"] if rc == 0 else None

        def expired_event():
            for l in list(lines):
                try:
                    e = json.loads(l)
                except ValueError:
                    continue
                if e.get("message_id") == msg and e.get("state") == "expired":
                    return e
            return None
        e = harness.poll(expired_event, 60, 0.2)
        res.check("kontor watch --sent shows the message expire (peer down)",
                  e is not None and e.get("recipient") == "fi",
                  f"lines: {lines[-3:]}")
        st = fed.query("ee", "status", msg)
        res.check("kontor status says expired", st["state"] == "expired",
                  json.dumps(st)[:300])
        res.check("watch --sent also showed the earlier deliveries settle",
                  any('"state":"delivered"' in l for l in lines) or
                  any(json.loads(l).get("state") == "delivered"
                      for l in lines if l.strip().startswith("{")), "")
    finally:
        watcher.terminate()
        watcher.wait(10)
        reader.join(10)
        fed.fed("start", fed.root, "fi")


def run(tmp, res):
    kontord, kontor = harness.binaries()
    pb = stubs.load(os.path.join(tmp, "stubs"))
    root = os.path.join(tmp, "fed")
    fed = Fed(root, kontord, kontor)
    fed.fed("start", root, "ee", "fi", "lv", "--route", "ee:lv:fi")
    fed.fed("stop", root)
    for n in ("ee", "fi", "lv"):
        harness.append_config(root, n, harness.BACKOFF)
    fed.fed("start", root, "ee", "fi", "lv")
    ee_cfg = open(fed.config("ee")).read()
    res.check("ee's config: lv has no address, a route via fi",
              re.search(r'peers { id: "lv" signing_certs', ee_cfg) is not None and
              'routes { destination: "lv" via: "fi" }' in ee_cfg, ee_cfg[-600:])
    lv = fed.peer("ee", "lv")
    res.check("kontor peers on ee: lv via fi", lv.get("via") == "fi" and
              not lv.get("address"), json.dumps(lv)[:300])
    t0 = time.monotonic()
    run_relay_under_kills(res, fed, pb, tmp)
    print(f"# relay phase: {time.monotonic() - t0:.1f} s for {N} messages "
          "with 3 relay kills and 1 sender kill", flush=True)
    run_reply(res, fed, tmp)
    run_tampering_relay(res, fed, pb, tmp)
    run_watch_sent(res, fed, tmp)


if __name__ == "__main__":
    sys.exit(harness.main(run, "kontor-relay.",
                          lambda *a: harness.federation_sh(
                              harness.binaries()[0], *a)))
