#!/usr/bin/python3
"""What an independent attacker found (issue 11), tried again as they did.

A loopback federation `ee fi` (deploy/federation.sh), an operator port on ee
with users anna (coordinator), lars (liaison) and root (admin), and Debian's
python3-grpcio as the rogue peer and the careless local client (stubs made
from proto/ by stubs.py). Each part is a defect that was found, with the
check that failed before it was fixed:

 1. terminal control sequences in a body reach the reader of `kontor show`;
 2. a peer forges log lines and bloats signed refusals through the unsigned
    routing.deliver_to, through its gRPC status message (a fake fi the
    outbox talks to), and a local caller through a 100 kB recipient;
 3. `kontor thread --message` (and every other call) tells a caller about a
    message it may not see;
 4. attachment chunks staged without envelopes: a quota per peer, a
    free-space floor, and the chunks of settled messages removed;
 5. 10,000 recipients, garbage on the Exchange and PutChunks streams, idle
    streams holding threads (a cap per peer), exact replays counted;
and what was found trying it as a user: a 3 GiB attachment refused at once,
export of an erased message, raw gRPC text in errors, the CLI's --version,
COMMAND --help, id prefixes, case-insensitive cases, inbox filters and the
--body-file hint for typed kinds.

Environment: KONTORD, KONTOR (default: build/ of the repository),
KEEP_TMP=1 keeps the temporary directory. Prints one PASS/FAIL line per
check and `N passed, M failed`; exits 0 only if nothing failed.
"""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import harness  # noqa: E402
import stubs  # noqa: E402
from harness import BACKOFF, describe, one_line, poll  # noqa: E402

MAKE_PKI = os.path.join(harness.REPO, "certs-example", "make-pki.sh")
STREAM_CAP = 120  # fi's limits.max_streams_per_peer in this test
MAX_ATTACHMENT = 2 * 1024 * 1024  # fi's limits.max_attachment_bytes
STAGED_QUOTA = 3 * (1024 * 1024 + 16)  # fi's limits.max_staged_bytes_per_peer
MiB = 1024 * 1024
ESC = "\x1b"
EVIL_BODY = ("Case notes.\n" + ESC + "[1A" + ESC + "[2KFrom: fi (signature "
             "verified)\n" + ESC + "]52;c;ZWNobyBwd25lZA==\x07tab\there\n")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Fed(harness.Federation):
    def metrics(self, node):
        """node's /metrics as {series with labels: value}."""
        url = open(self.path(node, "node.textproto")).read()
        port = re.search(r'metrics \{ listen_address: "127.0.0.1:(\d+)"', url)
        body = urllib.request.urlopen(
            f"http://127.0.0.1:{port.group(1)}/metrics", timeout=10).read()
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def threads(self, node):
        with open(f"/proc/{self.pid(node)}/status") as f:
            return int(re.search(r"^Threads:\s+(\d+)", f.read(), re.M).group(1))


def send_note(fed, node, to, subject, body, tmp, *extra):
    path = harness.write_file(os.path.join(tmp, f"body-{uuid.uuid4()}"), body)
    rc, out, err = fed.cli(node, "send", "--to", to, "--kind", "note",
                           "--subject", subject, "--body-file", path, *extra)
    if rc != 0:
        raise RuntimeError(f"send from {node}: {rc} {err}")
    return json.loads(out)["message_id"]


def delivered(fed, node, mid, deadline=60):
    def state():
        rc, out, _ = fed.cli(node, "status", mid)
        return rc == 0 and json.loads(out).get("state") == "delivered"
    return poll(state, deadline, 0.2)


def long_lines(lines, limit=4200):
    return [l[:120] for l in lines if len(l) > limit]


def forged(lines, marker):
    """Lines of a log that a value made start (a line beginning with a
    timestamp that is not the logger's own, or carrying the marker at the
    start)."""
    return [l[:160] for l in lines if l.startswith(marker) or
            (marker in l and not re.match(r"^\d{4}-\d\d-\d\dT", l))]


class Peer:
    """A rogue peer: raw gRPC calls to a node's federation port with a
    node's TLS identity (it is that node, with valid certificates)."""

    def __init__(self, fed, as_node, to_node):
        pki = os.path.join(fed.root, "pki")
        creds = grpc.ssl_channel_credentials(
            root_certificates=open(os.path.join(pki, "ca",
                                                "federation-ca.crt"),
                                   "rb").read(),
            private_key=open(os.path.join(pki, as_node, "tls.key"),
                             "rb").read(),
            certificate_chain=open(os.path.join(pki, as_node, "tls.crt"),
                                   "rb").read())
        self.channel = grpc.secure_channel(
            f"127.0.0.1:{fed.port(to_node)}", creds,
            options=[("grpc.ssl_target_name_override", "localhost"),
                     ("grpc.max_send_message_length", 64 * MiB),
                     ("grpc.max_receive_message_length", 64 * MiB)])
        raw = dict(request_serializer=lambda b: b,
                   response_deserializer=lambda b: b)
        self.exchange = self.channel.stream_stream(
            "/kontor.v1.Federation/Exchange", **raw)
        self.put_chunks = self.channel.stream_unary(
            "/kontor.v1.Federation/PutChunks", **raw)


def header(pb, recipients, mid=None, origin="ee"):
    now = int(time.time() * 1000)
    return pb.envelope_pb2.Header(
        message_id=mid or str(uuid.uuid4()), origin=origin,
        recipients=recipients, priority=1, created_unix_ms=now,
        expires_unix_ms=now + 3600_000,
        suite_id="kontor-p256-sha256-a256gcm").SerializeToString()


def exchange_one(peer, pb, envelope):
    """One batch of one envelope: (error, [receipt bodies])."""
    batch = pb.federation_pb2.EnvelopeBatch(batch_seq=7)
    batch.envelopes.append(envelope)
    try:
        answers = list(peer.exchange(iter([batch.SerializeToString()]),
                                     timeout=30))
    except grpc.RpcError as e:
        return e, []
    bodies = []
    for a in answers:
        rb = pb.federation_pb2.ReceiptBatch.FromString(a)
        for r in rb.receipts:
            bodies.append(pb.envelope_pb2.ReceiptBody.FromString(r.body))
    return None, bodies


# ---------------------------------------------------------------- 1. terminal

def run_terminal(res, fed, tmp):
    mid = send_note(fed, "ee", "fi", "evil body", EVIL_BODY, tmp)
    res.check("a note with escape sequences is delivered",
              delivered(fed, "ee", mid))
    rc, out, err = fed.cli("fi", "show", mid, json_out=False)
    res.check("show: no control character reaches the terminal",
              rc == 0 and ESC not in out and "\x07" not in out,
              repr(out[-200:]))
    res.check("show: they are shown visibly (\\x1b), newlines and tabs kept",
              "\\x1b[1A" in out and "\\x1b]52;c;" in out and
              "tab\there\n" in out, repr(out[-200:]))
    path = os.path.join(tmp, "body.out")
    with open(path, "w") as f:
        r = subprocess.run([fed.kontor, "--node", fed.socket("fi"), "show",
                            mid], stdout=f, stderr=subprocess.PIPE, text=True)
    raw = open(path, errors="replace").read()
    res.check("show > FILE: the body as sent (it goes to a file)",
              r.returncode == 0 and EVIL_BODY in raw, repr(raw[-200:]))
    rc, out, err = fed.cli("fi", "show", mid)
    res.check("show --json: the exact string",
              rc == 0 and json.loads(out)["payload"]["body"] == EVIL_BODY,
              out[:200])


# ----------------------------------------------------------- 2. log forgery

def run_log_forgery(res, fed, tmp, pb):
    peer = Peer(fed, "ee", "fi")
    mark = fed.mark("fi")
    fake = "\n2026-12-02T00:00:00.000Z SECURITY inbox: FORGED-LINE by ee"
    env = pb.envelope_pb2.Envelope(header=header(pb, ["fi", "lv"]))
    env.routing.deliver_to = "lv" + fake + "A" * MiB
    err, bodies = exchange_one(peer, pb, env)
    res.check("a deliver_to with a newline and 1 MiB: answered with one "
              "signed refusal", err is None and len(bodies) == 1 and
              bodies[0].verdict == pb.envelope_pb2.REFUSED, describe(err))
    reason = bodies[0].reason if bodies else ""
    res.check("... whose signed reason is short and one line",
              len(reason) < 400 and "\n" not in reason and
              "FORGED" not in reason, repr(reason[:200]))
    time.sleep(0.5)
    lines = fed.new_lines("fi", mark)
    res.check("... and no forged or huge line in fi's log",
              not forged(lines, "FORGED") and not long_lines(lines),
              f"{forged(lines, 'FORGED')} {long_lines(lines)}")

    # A local caller: a 100 kB recipient, and one with a newline.
    local = pb.local_pb2_grpc.LocalStub(
        grpc.insecure_channel("unix:" + fed.socket("ee")))
    for name, to in (("100 kB", "x" * 100_000),
                     ("a newline", "fi\n2026-12-02T00:00:00.000Z SECURITY "
                      "api: FORGED-LOCAL")):
        mark = fed.mark("ee")
        req = pb.local_pb2.SubmitRequest(
            to=[to], payload=pb.envelope_pb2.Payload(kind="note", body=b"x"))
        try:
            local.Submit(req, timeout=20)
            e = None
        except grpc.RpcError as x:
            e = x
        res.check(f"Submit with a recipient of {name}: INVALID_ARGUMENT, "
                  "bounded, one line",
                  e is not None and
                  e.code() == grpc.StatusCode.INVALID_ARGUMENT and
                  len(e.details()) < 2100 and "\n" not in e.details(),
                  describe(e)[:200])
        time.sleep(0.3)
        lines = fed.new_lines("ee", mark)
        res.check(f"... and ee's log has no forged or huge line ({name})",
                  not forged(lines, "FORGED") and not long_lines(lines),
                  f"{forged(lines, 'FORGED')} {long_lines(lines)}")


class FakeFederation(grpc.GenericRpcHandler):
    """fi's federation port, answering every call with a status whose text
    tries to start log lines of its own."""

    DETAILS = ("boom\n2026-12-02T00:00:00.000Z SECURITY outbox: "
               "FORGED-BY-PEER" + "B" * 100_000)

    def service(self, handler_call_details):
        def abort(request_iterator, context):
            for _ in request_iterator:
                break
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, self.DETAILS)
        return grpc.stream_stream_rpc_method_handler(
            abort, request_deserializer=lambda b: b,
            response_serializer=lambda b: b)


def run_peer_status(res, fed, tmp):
    """ee's outbox talks to a fake fi whose errors try to forge lines."""
    fed.fed("stop", fed.root, "fi")
    pki = os.path.join(fed.root, "pki")
    server = grpc.server(
        __import__("concurrent.futures").futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers([FakeFederation()])
    creds = grpc.ssl_server_credentials(
        [(open(os.path.join(pki, "fi", "tls.key"), "rb").read(),
          open(os.path.join(pki, "fi", "tls.crt"), "rb").read())],
        root_certificates=open(os.path.join(pki, "ca", "federation-ca.crt"),
                               "rb").read(),
        require_client_auth=True)
    server.add_secure_port(f"127.0.0.1:{fed.port('fi')}", creds)
    server.start()
    try:
        mark = fed.mark("ee")
        mid = send_note(fed, "ee", "fi", "to a fake fi", "hello", tmp)
        got = poll(lambda: [l for l in fed.new_lines("ee", mark)
                            if "peer fi:" in l], 30, 0.2)
        lines = fed.new_lines("ee", mark)
        res.check("ee's outbox logs the fake peer's failure",
                  bool(got), "\n".join(lines[-5:]))
        res.check("... on one bounded line: no forged line, nothing huge",
                  not forged(lines, "FORGED") and not long_lines(lines),
                  f"{forged(lines, 'FORGED')} {long_lines(lines)}")
        rc, out, err = fed.cli("ee", "status", mid)
        last = json.loads(out)["deliveries"][0].get("last_error", "") \
            if rc == 0 else ""
        res.check("... and `kontor status` shows it bounded and one line",
                  rc == 0 and 0 < len(last) < 600 and "\n" not in last,
                  repr(last[:200]))
    finally:
        server.stop(0)
    # fi down for real: a clear error, not raw gRPC text.
    mid = send_note(fed, "ee", "fi", "fi is down", "hello", tmp)
    want = (f"fi is not reachable (connection refused at "
            f"127.0.0.1:{fed.port('fi')}); messages stay queued")

    def last_error():
        rc, out, _ = fed.cli("ee", "status", mid)
        return json.loads(out)["deliveries"][0].get("last_error", "") \
            if rc == 0 else ""
    err = poll(lambda: want in last_error() and last_error(), 30, 0.2)
    res.check("a peer that is down: 'fi is not reachable (connection "
              "refused at ...); messages stay queued'",
              bool(err) and "failed to connect to all addresses" not in err,
              repr(last_error()))
    fed.fed("start", fed.root, "fi")
    res.check("... delivered once fi is back", delivered(fed, "ee", mid, 90))


# -------------------------------------------------------------- 3. leaks

def run_visibility(res, fed, tmp, op_port):
    ca = os.path.join(fed.root, "pki", "ca", "federation-ca.crt")

    def as_user(user, *args):
        ops = os.path.join(fed.root, "pki", "operators")
        cmd = [fed.kontor, "--node", f"127.0.0.1:{op_port}", "--cert",
               os.path.join(ops, f"{user}.crt"), "--key",
               os.path.join(ops, f"{user}.key"), "--ca", ca, *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout, r.stderr

    text = harness.template(fed.kontor, "intel.report", "--case",
                            "SECRET-CASE-7731")
    path = harness.write_file(os.path.join(tmp, "intel.json"), text)
    rc, out, err = as_user("lars", "--json", "send", "--to", "fi",
                           "--payload-json", path)
    if not res.check("lars (liaison) sends an intel.report in case "
                     "SECRET-CASE-7731", rc == 0, err):
        return
    lars_id = json.loads(out)["message_id"]
    unknown = str(uuid.uuid4())
    for args in (("thread", "--message", "{}"), ("show", "{}"),
                 ("status", "{}"), ("ack", "{}"), ("cancel", "{}"),
                 ("retry", "{}"), ("export", "{}", "--out",
                                   os.path.join(tmp, "x-{}"))):
        got = as_user("anna", *[a.format(lars_id) for a in args])
        ref = as_user("anna", *[a.format(unknown) for a in args])
        same = (got[0] == ref[0] and
                got[2].replace(lars_id, "ID") == ref[2].replace(unknown, "ID"))
        res.check(f"coordinator anna: `{args[0]}` of lars's message reads "
                  "exactly as an unknown id", same and "SECRET" not in got[2],
                  f"{got[0]} {got[2].strip()} | {ref[0]} {ref[2].strip()}")
    got = as_user("anna", "show", lars_id[:8])
    res.check("... and as an id prefix (not found, not ambiguous)",
              got[0] == 3 and "SECRET" not in got[2], got[2])
    got = as_user("root", "thread", "--message", lars_id[:10])
    res.check("an admin sees the thread, by id prefix",
              got[0] == 0 and "SECRET-CASE-7731" in got[1], got[2])


# --------------------------------------------------- 4. chunks, 5. streams

def run_peer_limits(res, fed, tmp, pb):
    peer = Peer(fed, "ee", "fi")
    # 10,000 recipients.
    many = ["fi"] + [f"ee.u{i}" for i in range(9999)]
    env = pb.envelope_pb2.Envelope(header=header(pb, many))
    err, bodies = exchange_one(peer, pb, env)
    res.check("an envelope naming 10,000 recipients is refused (malformed, "
              "signed)", err is None and len(bodies) == 1 and
              bodies[0].verdict == pb.envelope_pb2.REFUSED and
              bodies[0].refusal == pb.envelope_pb2.REFUSAL_MALFORMED and
              "recipients" in bodies[0].reason,
              f"{describe(err)} {bodies[0] if bodies else ''}")

    # Garbage on the streams.
    for name, call in (("Exchange", lambda: list(peer.exchange(
            iter([b"\xff\xff\xff\x0fgarbage"]), timeout=20))),
                       ("PutChunks", lambda: peer.put_chunks(
            iter([b"\xff\xff\xff\x0fgarbage"]), timeout=20))):
        try:
            call()
            e = None
        except grpc.RpcError as x:
            e = x
        res.check(f"garbage on {name} ends the call with INVALID_ARGUMENT",
                  e is not None and
                  e.code() == grpc.StatusCode.INVALID_ARGUMENT, describe(e))

    # Idle streams: capped per peer, and they hold no thread each.
    before = fed.threads("fi")
    stop = threading.Event()

    def idle():
        while not stop.is_set():
            time.sleep(0.1)
        return
        yield  # noqa: unreachable - makes this a generator

    calls = [peer.exchange(idle(), timeout=120) for _ in range(STREAM_CAP)]
    ok = poll(lambda: fed.metrics("fi").get(
        'kontor_federation_calls_open{peer="ee"}', 0) >= STREAM_CAP, 30, 0.2)
    res.check(f"{STREAM_CAP} idle Exchange streams of ee are open at fi",
              bool(ok), str(fed.metrics("fi").get(
                  'kontor_federation_calls_open{peer="ee"}')))
    grown = fed.threads("fi") - before
    res.check(f"... and fi holds no thread per idle stream ({grown} more "
              f"threads for {STREAM_CAP} streams)", grown < 30, str(grown))
    try:
        list(peer.exchange(iter([]), timeout=20))
        e = None
    except grpc.RpcError as x:
        e = x
    res.check("one more stream is refused: RESOURCE_EXHAUSTED",
              e is not None and
              e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, describe(e))
    stop.set()
    for c in calls:
        try:
            list(c)
        except grpc.RpcError:
            pass
    ok = poll(lambda: fed.metrics("fi").get(
        'kontor_federation_calls_open{peer="ee"}', 0) == 0, 30, 0.2)
    res.check("... and once they are closed, the count is back to 0",
              bool(ok))

    # Chunks sent ahead of envelopes that never come: a quota per peer.
    def put(n, mid):
        chunk = pb.federation_pb2.ChunkData(origin="ee", message_id=mid,
                                          attachment=0, index=n,
                                          data=os.urandom(MiB))
        try:
            peer.put_chunks(iter([chunk.SerializeToString()]), timeout=30)
            return None
        except grpc.RpcError as x:
            return x
    errors = [put(0, str(uuid.uuid4())) for _ in range(3)]
    res.check("3 MiB of chunks for ids ee never sends: stored (the quota)",
              errors == [None] * 3, str([describe(e) for e in errors]))
    e = put(0, str(uuid.uuid4()))
    res.check("the next chunk passes fi's quota for ee: RESOURCE_EXHAUSTED "
              "naming the limit",
              e is not None and
              e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and
              "max_staged_bytes_per_peer" in e.details(), describe(e))
    # Gauges read from the node are refreshed at most every 5 s.
    staged = poll(lambda: fed.metrics("fi").get(
        'kontor_staged_chunk_bytes{peer="ee"}', 0), 15, 0.5) or 0
    res.check("fi's metrics show what ee has staged",
              STAGED_QUOTA - 64 * 1024 <= staged <= STAGED_QUOTA, str(staged))

    # An exact replay of a delivered envelope: answered, and counted.
    mid = send_note(fed, "ee", "fi", "replayed", "hello again", tmp)
    delivered(fed, "ee", mid)
    import sqlite3
    db = sqlite3.connect(f"file:{fed.path('ee', 'data', 'kontor.db')}"
                         "?mode=ro", uri=True)
    stored = db.execute("SELECT envelope FROM messages WHERE id = ?",
                        (mid,)).fetchone()[0]
    db.close()
    before = fed.metrics("fi").get('kontor_federation_replays_total{peer="ee"}',
                                   0)
    err, bodies = exchange_one(peer, pb,
                               pb.envelope_pb2.Envelope.FromString(stored))
    res.check("an exact replay is answered with the stored acceptance",
              err is None and len(bodies) == 1 and
              bodies[0].verdict == pb.envelope_pb2.ACCEPTED and
              bodies[0].message_id == mid, describe(err))
    after = fed.metrics("fi").get('kontor_federation_replays_total{peer="ee"}',
                                  0)
    res.check("... and counted: kontor_federation_replays_total{peer=\"ee\"}",
              after == before + 1, f"{before} -> {after}")


def run_disk_floor(res, fed, tmp, pb):
    """fi keeps (pretends to keep) more free space than it has."""
    fed.fed("stop", fed.root, "fi")
    cfg = fed.config("fi")
    text = open(cfg).read()
    harness.write_file(cfg, text.replace(
        "limits {", "limits { min_free_bytes: 1000000000000000 ", 1))
    fed.fed("start", fed.root, "fi")
    peer = Peer(fed, "ee", "fi")
    chunk = pb.federation_pb2.ChunkData(origin="ee", message_id=str(uuid.uuid4()),
                                      attachment=0, index=0, data=b"x" * 64)
    try:
        peer.put_chunks(iter([chunk.SerializeToString()]), timeout=30)
        e = None
    except grpc.RpcError as x:
        e = x
    res.check("below the free-space floor a chunk is refused: "
              "RESOURCE_EXHAUSTED, disk is full",
              e is not None and
              e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and
              "is full" in e.details(), describe(e))
    path = harness.write_file(os.path.join(tmp, "floor.txt"), "x\n")
    rc, out, err = fed.cli("fi", "send", "--to", "ee", "--kind", "note",
                           "--subject", "s", "--body-file", path,
                           json_out=False, timeout=120)
    res.check("... and a submission: exit 75 with one line saying the disk "
              "is full and nothing was sent",
              rc == 75 and one_line(err) is not None and "is full" in err and
              "nothing was sent" in err, f"{rc} {err}")
    mid = send_note(fed, "ee", "fi", "still received", "below the floor", tmp)
    res.check("... while messages from peers are still received",
              delivered(fed, "ee", mid))
    fed.fed("stop", fed.root, "fi")
    harness.write_file(cfg, text)
    fed.fed("start", fed.root, "fi")


def run_chunk_cleanup(res, fed, tmp):
    att = os.path.join(tmp, "scan.pdf")
    with open(att, "wb") as f:
        f.write(os.urandom(MiB + MiB // 2))
    mid = send_note(fed, "ee", "fi", "with attachment", "see scan", tmp,
                    "--attach", att)
    res.check("a note with a 1.5 MiB attachment is delivered",
              delivered(fed, "ee", mid))
    out_dir = fed.path("ee", "data", "attachments", "out")
    before = os.listdir(out_dir) if os.path.isdir(out_dir) else []
    # Housekeeping runs right after start, on its own thread (off the
    # start's path): wait for it rather than race it.
    fed.fed("restart", fed.root, "ee")

    def left():
        return os.listdir(out_dir) if os.path.isdir(out_dir) else []
    harness.poll(lambda: not left(), 60)
    after = left()
    res.check("ee removes the sent chunks once every delivery settled",
              before and not after, f"{before} -> {after}")
    save = os.path.join(tmp, "saved")
    os.makedirs(save)
    rc, out, err = fed.cli("fi", "show", mid, "--save-attachments", save)
    res.check("... and fi still has the attachment, verified",
              rc == 0 and open(os.path.join(save, "scan.pdf"), "rb").read()
              == open(att, "rb").read(), err)
    staged = fed.path("fi", "data", "attachments", "staged", "ee")
    res.check("nothing of the accepted message stays staged at fi",
              mid not in (os.listdir(staged) if os.path.isdir(staged) else []))

    big = os.path.join(tmp, "huge.iso")
    with open(big, "wb") as f:
        f.truncate(3 * 1024 * MiB)  # sparse
    rc, out, err = fed.cli("ee", "send", "--to", "fi", "--kind", "note",
                           "--subject", "huge", "--body-file", att,
                           "--attach", big, json_out=False, timeout=120)
    res.check("a 3 GiB attachment is refused at once: exit 2, its declared "
              "size and the limit named",
              rc == 2 and "3221225472 bytes" in err and "limit" in err,
              f"{rc} {err}")


# -------------------------------------------------------- user-found items

def run_user_items(res, fed, tmp):
    k = fed.kontor
    r = subprocess.run([k, "--version"], capture_output=True, text=True)
    res.check("kontor --version", r.returncode == 0 and
              r.stdout.startswith("kontor "), r.stdout + r.stderr)
    commands = ("send status inbox show template thread ack watch peers "
                "outbox cancel retry audit purge export").split()
    bad = []
    for c in commands:
        r = subprocess.run([k, c, "--help"], capture_output=True, text=True)
        if r.returncode != 0 or not r.stdout.startswith(f"usage: kontor") \
                or c not in r.stdout.splitlines()[0]:
            bad.append(c)
    res.check("kontor COMMAND --help for every command", not bad, str(bad))

    path = harness.write_file(os.path.join(tmp, "b.txt"), "x\n")
    rc, out, err = fed.cli("ee", "send", "--to", "fi", "--kind", "referral",
                           "--body-file", path, json_out=False)
    res.check("--body-file with a typed kind points to --payload-json and "
              "kontor template", rc == 2 and "--payload-json" in err and
              "kontor template referral" in err, err)

    ref = harness.template(k, "referral", "--case", "EE-TRM-2026-0042")
    rp = harness.write_file(os.path.join(tmp, "ref.json"), ref)
    rc, out, err = fed.cli("ee", "send", "--to", "fi", "--payload-json", rp)
    if not res.check("ee sends a referral in case EE-TRM-2026-0042", rc == 0,
                     err):
        return
    ref_id = json.loads(out)["message_id"]
    delivered(fed, "ee", ref_id)
    rc, out, err = fed.cli("fi", "thread", "ee-trm-2026-0042")
    res.check("thread: the case reference ignores upper/lower case",
              rc == 0 and any(m["message_id"] == ref_id
                              for m in json.loads(out)["messages"]), err)
    rc, out, err = fed.cli("fi", "show", ref_id[:8].upper())
    res.check("show takes a unique id prefix (8 characters, any case)",
              rc == 0 and json.loads(out)["entry"]["message_id"] == ref_id,
              err)
    rc, out, err = fed.cli("fi", "show", ref_id[:4])
    res.check("... but not fewer than 8 characters (exit 2)", rc == 2, err)

    note = send_note(fed, "ee", "fi", "filters", "x", tmp)
    delivered(fed, "ee", note)
    rc, out, err = fed.cli("fi", "inbox", "--kind", "referral", "--from",
                           "ee", "--case", "EE-trm-2026-0042")
    ids = [e["message_id"] for e in json.loads(out).get("entries", [])] \
        if rc == 0 else []
    res.check("inbox --kind --from --case filters", ids == [ref_id],
              f"{rc} {ids} {err}")
    rc, out, err = fed.cli("fi", "inbox")
    seqs = [e["seq"] for e in json.loads(out).get("entries", [])]
    res.check("inbox: newest first", rc == 0 and len(seqs) > 2 and
              seqs == sorted(seqs, reverse=True), str(seqs[:5]))
    fed.cli("fi", "ack", note)
    rc, out, err = fed.cli("fi", "inbox", "--unread", "--kind", "note")
    ids = [e["message_id"] for e in json.loads(out).get("entries", [])]
    res.check("inbox --unread leaves out what was acknowledged",
              rc == 0 and note not in ids, str(ids[:3]))

    # Erasure, then export of what remains.
    er = harness.template(k, "erase.notice", "--in-reply-to", ref_id)
    ep = harness.write_file(os.path.join(tmp, "erase.json"), er)
    rc, out, err = fed.cli("ee", "send", "--to", "fi", "--payload-json", ep)
    order = json.loads(out)["message_id"] if rc == 0 else ""
    res.check("ee orders the erasure of the referral", rc == 0 and
              delivered(fed, "ee", order), err)
    rc, out, err = fed.cli("ee", "thread", "EE-TRM-2026-0042")
    msgs = {m["message_id"]: m for m in json.loads(out)["messages"]} \
        if rc == 0 else {}
    res.check("thread marks the erased message as erased",
              msgs.get(ref_id, {}).get("erased"), out[:300])
    rc, out, err = fed.cli("ee", "thread", "EE-TRM-2026-0042",
                           json_out=False)
    res.check("... also in the text listing", "(erased " in out, out)
    bundle = os.path.join(tmp, "evidence-erased")
    rc, out, err = fed.cli("ee", "export", ref_id, "--out", bundle)
    res.check("export of the erased referral still works", rc == 0, err)
    if rc == 0:
        files = os.listdir(bundle)
        res.check("... with fi's receipt and fi's signed erasure "
                  "confirmation, and no content",
                  any(f.startswith("receipt-fi") for f in files) and
                  any(f.startswith("erasure-fi") for f in files) and
                  "message.cms" not in files, str(sorted(files)))
        r = subprocess.run(["sh", "verify.sh"], cwd=bundle,
                           capture_output=True, text=True, timeout=120)
        res.check("... and its verify.sh passes with openssl alone",
                  r.returncode == 0 and "all checks passed" in r.stdout,
                  (r.stdout + r.stderr)[-600:])
        body = [f for f in files if f.startswith("erasure-fi") and
                f.endswith(".body")]
        if body:
            p = os.path.join(bundle, body[0])
            data = bytearray(open(p, "rb").read())
            i = data.find(ref_id.encode())
            data[i] ^= 1
            open(p, "wb").write(bytes(data))
            r = subprocess.run(["sh", "verify.sh"], cwd=bundle,
                               capture_output=True, text=True, timeout=120)
            res.check("... and fails once the erased id in fi's confirmation "
                      "is altered", r.returncode != 0, r.stdout[-300:])


def run(tmp, res):
    kontord, kontor = harness.binaries()
    root = os.path.join(tmp, "fed")
    fed = Fed(root, kontord, kontor)
    pb = stubs.load(os.path.join(tmp, "stubs"))
    fed.fed("start", root, "ee", "fi")
    fed.fed("stop", root)
    subprocess.run([MAKE_PKI, os.path.join(root, "pki"), "--operator",
                    "anna:coordinator", "--operator", "lars:liaison",
                    "--operator", "root:admin"], check=True,
                   capture_output=True)
    op_port = free_port()
    harness.append_config(
        root, "ee",
        f'operator_api {{ listen_address: "127.0.0.1:{op_port}" '
        'ca: "../pki/ca/operator-ca.crt" '
        'crl: "../pki/ca/operator-ca.crl.pem" }\n' + BACKOFF)
    text = open(fed.config("fi")).read().replace(
        "limits {", f"limits {{ max_streams_per_peer: {STREAM_CAP} "
        f"max_staged_bytes_per_peer: {STAGED_QUOTA} "
        f"max_attachment_bytes: {MAX_ATTACHMENT} ", 1)
    harness.write_file(fed.config("fi"), text + BACKOFF)
    fed.fed("start", root, "ee", "fi")
    t0 = time.monotonic()
    run_terminal(res, fed, tmp)
    run_log_forgery(res, fed, tmp, pb)
    run_visibility(res, fed, tmp, op_port)
    run_chunk_cleanup(res, fed, tmp)
    run_peer_limits(res, fed, tmp, pb)
    run_user_items(res, fed, tmp)
    run_peer_status(res, fed, tmp)
    run_disk_floor(res, fed, tmp, pb)
    print(f"# {time.monotonic() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(harness.main(run, "kontor-attack.",
                          lambda *a: harness.federation_sh(
                              harness.binaries()[0], *a)))
