#!/usr/bin/env python3
"""Chaos soak with real processes (DESIGN.md §5, §10; issue 11).

A relayed federation, `deploy/federation.sh start DIR ee fi lv --route
ee:lv:fi`: ee-fi and fi-lv are direct links, ee and lv reach each other
only through fi. Messages go in all six directions (ee->fi, fi->ee, fi->lv,
lv->fi, and ee->lv, lv->ee relayed by fi), at every priority (routine,
urgent, flash), mostly notes (`kontor send --kind note`), some of them with
attachments (random files of 100 KB to 2 MB), and some typed kinds
(intel.report, sitrep, incident.report, referral, alert from `kontor
template`). Four sender threads run `kontor send` with one client key per
message; a send that exits 75 (transient: its node is down) or hangs is
retried with the SAME client key, so a retry can never send twice.

While they send, a seeded random chaos plan runs N cycles: each cycle picks
a node (every node is picked once per three cycles, in random order) and
either SIGKILLs it (restarted after a random pause with `federation.sh
restart DIR NODE`) or SIGSTOPs it for a few seconds and SIGCONTs it.

Before the chaos, a targeted check of the retry contract the senders rely
on: a node dies at the crash point submit.after_commit (the message is
durable, the CLI got no id), and `kontor send` again with the same client
key must answer with the original id (duplicate), for a send without and
with an attachment.

After the chaos (no more signals) it waits, bounded and by polling, until
every message is delivered, then checks:
  - every send got its message id (exit 0), no id for two client keys;
  - every message id is exactly once in its recipient's inbox (`kontor
    --json inbox --limit 100000`), from its sender, with its kind and
    priority; no inbox holds an id that was not sent to it;
  - `kontor --json status ID` at the sender: delivered, priority as sent,
    receipt_signer == the recipient, and the receipt body (decoded here,
    protobuf wire format by hand) names the id, the sender, the recipient
    and verdict ACCEPTED;
  - `kontor --json show ID --from SENDER` at the recipient: signed by the
    sender, kind and subject as sent, every attachment's name, size and
    SHA-256 equal to the file sent; the largest relayed attachment is also
    saved with `show --save-attachments` and compared byte for byte;
  - nothing left queued or in flight, nothing rejected, expired or
    suspended, on any node; fi's relay copies all delivered;
  - `kontor audit verify` exits 0 on every node;
  - no log line about a conflicting digest (same id, other content).

The test asserts behaviour, never timings: the chaos and send pacing come
from the plan, the waits are bounded polls. The seed is printed first; on
failure it is printed again with the command to replay it, and the work
directory (with the federation and its logs) is kept and its path printed.

    KONTORD=... KONTOR=... /usr/bin/python3 tests/system/soak_test.py
    ... --seed 1234                    replay a run
    ... --cycles 60 --messages 3000    a long soak (raise --deadline too if
                                       the machine is slow)

Defaults (6 cycles, 150 messages) take about a minute on two
cores. The last line is `N passed, M failed`; the exit code is 0 only if
nothing failed. Standard library only.
"""

import argparse
import base64
import collections
import concurrent.futures
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

NODES = ("ee", "fi", "lv")
DIRECTIONS = [("ee", "fi"), ("fi", "ee"), ("fi", "lv"), ("lv", "fi"),
              ("ee", "lv"), ("lv", "ee")]
RELAYED = {("ee", "lv"), ("lv", "ee")}
PRIORITIES = [("routine", 6), ("urgent", 3), ("flash", 1)]
TYPED_KINDS = ["intel.report", "sitrep", "incident.report", "referral",
               "alert"]
ATTACHMENT_SIZES = [100_000, 250_000, 600_000, 1_000_000, 2_000_000]
ATTACH_ONE = 0.10   # share of notes with one attachment
ATTACH_TWO = 0.03   # ... and with two
TYPED_SHARE = 0.08  # share of messages of a typed kind

SEND_DEADLINE_S = 300  # one message, all its attempts (a bound, not a goal)
CLI_TIMEOUT_S = 150    # one kontor process
WORKERS = 4
RECEIPT_ACCEPTED = 1   # kontor.v1.Verdict.ACCEPTED
ALREADY_USED = re.compile(
    r"already used for different content \(message ([0-9A-Za-z-]+)\)")


def log(msg):
    print(msg, flush=True)


# --------------------------------------------------------------- the plan


class Msg:
    def __init__(self, index, sender, recipient, kind, priority, subject,
                 attachments):
        self.index = index
        self.sender = sender
        self.recipient = recipient
        self.kind = kind
        self.priority = priority
        self.subject = subject
        self.attachments = attachments  # paths
        self.key = f"soak-{index}"
        self.content = None  # --body-file or --payload-json file
        self.id = None
        self.error = None    # a permanent failure of kontor send
        self.anomaly = None  # id recovered from an "already used" refusal
        self.tries = 0
        self.transient = 0
        self.duplicate = False

    def __repr__(self):
        return (f"#{self.index} {self.sender}->{self.recipient} {self.kind} "
                f"{self.priority} key {self.key} id {self.id}")

    def send_args(self):
        args = ["send", "--to", self.recipient, "--priority", self.priority,
                "--client-key", self.key]
        if self.kind == "note":
            args += ["--kind", "note", "--subject", self.subject,
                     "--body-file", self.content]
        else:
            args += ["--payload-json", self.content]
        for a in self.attachments:
            args += ["--attach", a]
        return args


def weighted(rng, pairs):
    total = sum(w for _, w in pairs)
    x = rng.uniform(0, total)
    for v, w in pairs:
        x -= w
        if x <= 0:
            return v
    return pairs[-1][0]


def make_attachments(rng, workdir):
    paths = []
    for i, size in enumerate(ATTACHMENT_SIZES):
        p = os.path.join(workdir, f"att-{i}-{size // 1000}k.bin")
        with open(p, "wb") as f:
            f.write(rng.randbytes(size))
        paths.append(p)
    return paths


def make_templates(kontor, workdir):
    """kind -> template text, from `kontor template KIND`."""
    return {k: harness.template(kontor, k) for k in TYPED_KINDS}


def plan_messages(rng, n, attachments, templates, workdir):
    msgs = []
    order = []
    while len(order) < n:  # every direction equally often, random order
        block = list(DIRECTIONS)
        rng.shuffle(block)
        order += block
    for i in range(n):
        sender, recipient = order[i]
        priority = weighted(rng, PRIORITIES)
        kind = "note"
        if rng.random() < TYPED_SHARE:
            kind = rng.choice(TYPED_KINDS)
            if kind == "alert":
                priority = "flash"  # an alert goes out flash, always
        atts = []
        if kind == "note":
            x = rng.random()
            if x < ATTACH_TWO:
                atts = rng.sample(attachments, 2)
            elif x < ATTACH_TWO + ATTACH_ONE:
                atts = [rng.choice(attachments)]
        subject = f"soak {i} {sender}->{recipient} {priority}"
        m = Msg(i, sender, recipient, kind, priority, subject, atts)
        if kind == "note":
            m.content = harness.write_file(
                os.path.join(workdir, f"body-{i}.txt"),
                f"Soak message {i} from {sender} to {recipient}.\n" +
                rng.choice("abcdefgh") * rng.randint(10, 3000) + "\n")
        else:
            text = templates[kind].replace(f'"subject": "Example {kind}"',
                                           json.dumps("subject") + ": " +
                                           json.dumps(subject), 1)
            m.content = harness.write_file(
                os.path.join(workdir, f"payload-{i}.json"), text)
        msgs.append(m)
    # At least one attachment on a relayed message, for --save-attachments.
    if n >= 6 and not any(m.attachments and
                          (m.sender, m.recipient) in RELAYED for m in msgs):
        for m in msgs:
            if (m.sender, m.recipient) in RELAYED and m.kind == "note":
                m.attachments = [attachments[-1]]
                break
    return msgs


def plan_chaos(rng, cycles):
    """[{node, action, pause_s, gap_s}]: every node once per three cycles;
    at least one SIGKILL and one SIGSTOP when there are two cycles or
    more."""
    plan = []
    nodes = []
    for c in range(cycles):
        if not nodes:
            nodes = list(NODES)
            rng.shuffle(nodes)
        node = nodes.pop()
        action = "kill" if rng.random() < 0.6 else "stop"
        if cycles >= 2 and c == cycles - 1:
            actions = {p["action"] for p in plan}
            if "kill" not in actions:
                action = "kill"
            elif "stop" not in actions:
                action = "stop"
        pause = rng.uniform(0.3, 2.5) if action == "kill" else \
            rng.uniform(1.0, 4.0)
        plan.append({"node": node, "action": action,
                     "pause_s": round(pause, 2),
                     "gap_s": round(rng.uniform(2.0, 5.0), 2)})
    return plan


# ------------------------------------------------------------- federation


class Fed(harness.FedDir):
    cli_timeout = CLI_TIMEOUT_S

    def __init__(self, root, kontord, kontor):
        super().__init__(root, kontor)
        self.kontord = kontord
        self.lock = threading.Lock()  # one federation.sh at a time
        self.stopped = set()          # SIGSTOPped pids

    def fed(self, *args, crash_at=None):
        env = dict(os.environ, KONTORD=self.kontord)
        env.pop("KONTOR_NODE", None)
        env.pop("KONTOR_CRASH_AT", None)
        if crash_at:
            env["KONTOR_CRASH_AT"] = crash_at
        with self.lock:
            r = subprocess.run([harness.FEDERATION_SH, *args], env=env,
                               capture_output=True, stdin=subprocess.DEVNULL,
                               text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"federation.sh {' '.join(args)} exited "
                               f"{r.returncode}: {r.stderr[-2000:]}")
        return r.stdout

    def query(self, node, *args, deadline_s=30):
        rc, out, err = harness.retry_transient(
            lambda: self.cli(node, *args, timeout=60), deadline_s, 0.2)
        if rc != 0:
            raise RuntimeError(f"kontor {' '.join(args)} on {node}: "
                               f"{rc} {err.strip()}")
        return json.loads(out)

    def kill(self, node):
        pid = self.pid(node)
        if pid is None or not harness.pid_alive(pid):
            raise RuntimeError(f"{node} is not running when it should be "
                               "killed")
        os.kill(pid, signal.SIGKILL)
        if not harness.poll(lambda: not harness.pid_alive(pid), 20, 0.02):
            raise RuntimeError(f"{node} (pid {pid}) still alive after "
                               "SIGKILL")

    def sigstop(self, node):
        pid = self.pid(node)
        if pid is None or not harness.pid_alive(pid):
            raise RuntimeError(f"{node} is not running when it should be "
                               "stopped")
        self.stopped.add(pid)
        os.kill(pid, signal.SIGSTOP)
        return pid

    def sigcont(self, pid):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        self.stopped.discard(pid)

    def continue_all(self):
        for pid in list(self.stopped):
            self.sigcont(pid)


# ---------------------------------------------------------------- senders


class Senders:
    """WORKERS threads send the planned messages in order, message i not
    before t0 + i * interval (released at once by release_all())."""

    def __init__(self, fed, msgs, interval_s):
        self.fed = fed
        self.msgs = msgs
        self.interval = interval_s
        self.next = 0
        self.done = 0
        self.cond = threading.Condition()
        self.release = threading.Event()
        self.abort = threading.Event()
        self.threads = []
        self.t0 = None

    def _send(self, m):
        end = time.monotonic() + SEND_DEADLINE_S
        while not self.abort.is_set():
            m.tries += 1
            rc, out, err = self.fed.cli(m.sender, *m.send_args())
            if rc == 0:
                try:
                    r = json.loads(out)
                    m.id = r["message_id"]
                    m.duplicate = bool(r.get("duplicate", False))
                except (ValueError, KeyError):
                    m.error = f"unexpected output {out[:200]!r}"
                return
            if rc in (harness.EXIT_TRANSIENT, None):
                m.transient += 1
                if time.monotonic() > end:
                    m.error = (f"no success in {SEND_DEADLINE_S} s; last: "
                               f"{rc} {err.strip()[:300]}")
                    return
                time.sleep(0.2 + 0.3 * (m.transient % 3))
                continue
            found = ALREADY_USED.search(err)
            if found:
                m.id = found.group(1)
                m.anomaly = f"exit {rc}: {err.strip()}"
            else:
                m.error = f"exit {rc}: {err.strip()[:300]}"
            return

    def _worker(self):
        while not self.abort.is_set():
            with self.cond:
                if self.next >= len(self.msgs):
                    return
                m = self.msgs[self.next]
                self.next += 1
            due = self.t0 + m.index * self.interval
            while not self.release.is_set() and time.monotonic() < due:
                self.release.wait(min(0.5, max(0.0, due - time.monotonic())))
            try:
                self._send(m)
            except Exception as e:  # noqa: BLE001 - recorded, not fatal
                m.error = f"{type(e).__name__}: {e}"
            with self.cond:
                self.done += 1
                self.cond.notify_all()

    def start(self):
        self.t0 = time.monotonic()
        for _ in range(WORKERS):
            t = threading.Thread(target=self._worker, daemon=True)
            t.start()
            self.threads.append(t)

    def progress(self):
        with self.cond:
            return self.done

    def join(self, deadline_s):
        self.release.set()
        end = time.monotonic() + deadline_s
        with self.cond:
            while self.done < len(self.msgs):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 1.0))
        for t in self.threads:
            t.join(5)
        return True

    def stop(self):
        self.abort.set()
        self.release.set()


# --------------------------------------------------------------- checking


def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def pb_fields(buf):
    """Protobuf wire format -> {field number: [values]} (one level)."""
    out, i = collections.defaultdict(list), 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(buf, i)
        elif wire == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        elif wire == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        out[num].append(v)
    return out


def receipt_body(b64):
    """kontor.v1.ReceiptBody of a base64 Receipt, as a dict."""
    body = pb_fields(base64.b64decode(b64))[1][0]
    f = pb_fields(body)

    def s(n):
        return f[n][0].decode() if f.get(n) else ""
    return {"version": s(1), "message_id": s(2), "origin": s(3),
            "recipient": s(4), "verdict": f[7][0] if f.get(7) else 0}


def sha256_b64(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return base64.b64encode(h.digest()).decode()


def delivered_keys(fed, node):
    out = fed.query(node, "outbox", "--state", "delivered", "--limit",
                    "1000000")
    return collections.Counter((e["message_id"], e.get("recipient"))
                               for e in out.get("entries", []))


def wait_all_delivered(fed, msgs, deadline_s):
    """Polls the senders' outboxes until every message is delivered or the
    deadline passes; returns the messages not delivered."""
    end = time.monotonic() + deadline_s
    while True:
        got = {n: delivered_keys(fed, n) for n in NODES}
        missing = [m for m in msgs if not got[m.sender][(m.id, m.recipient)]]
        if not missing or time.monotonic() > end:
            return missing
        time.sleep(0.5)


def check_message(fed, m, tmp, save):
    """Status at the sender and show at the recipient; returns a list of
    problems (strings)."""
    problems = []
    st = fed.query(m.sender, "status", m.id)
    ds = st.get("deliveries", [])
    d = ds[0] if len(ds) == 1 else {}
    if st.get("state") != "delivered" or d.get("state") != "delivered":
        problems.append(f"{m}: status {st.get('state')!r} "
                        f"{json.dumps(ds)[:300]}")
    if st.get("priority") != m.priority:
        problems.append(f"{m}: status priority {st.get('priority')!r}")
    if d.get("recipient") != m.recipient or \
            d.get("receipt_signer") != m.recipient:
        problems.append(f"{m}: delivery to {d.get('recipient')!r} receipt "
                        f"signed by {d.get('receipt_signer')!r}")
    try:
        rb = receipt_body(d.get("receipt", ""))
        want = {"version": "kontor-rcpt-v1", "message_id": m.id,
                "origin": m.sender, "recipient": m.recipient,
                "verdict": RECEIPT_ACCEPTED}
        if rb != want:
            problems.append(f"{m}: receipt body {rb}, expected {want}")
    except (ValueError, IndexError, KeyError, TypeError) as e:
        problems.append(f"{m}: receipt does not decode: {e}")

    shown = fed.query(m.recipient, "show", m.id, "--from", m.sender)
    p = shown.get("payload", {})
    if shown.get("signer") != m.sender or p.get("kind") != m.kind or \
            p.get("subject") != m.subject:
        problems.append(f"{m}: show on {m.recipient}: signer "
                        f"{shown.get('signer')!r} kind {p.get('kind')!r} "
                        f"subject {p.get('subject')!r}")
    atts = p.get("attachments", [])
    want_atts = [(os.path.basename(a), os.path.getsize(a), sha256_b64(a))
                 for a in m.attachments]
    got_atts = [(a.get("name"), int(a.get("size", 0)), a.get("sha256"))
                for a in atts]
    if got_atts != want_atts:
        problems.append(f"{m}: attachments {got_atts}, sent {want_atts}")
    if save and m.attachments:
        out = os.path.join(tmp, f"saved-{m.index}")
        os.mkdir(out)
        rc, _, err = fed.cli(m.recipient, "show", m.id, "--from", m.sender,
                             "--save-attachments", out, json_out=False)
        for a in m.attachments:
            saved = os.path.join(out, os.path.basename(a))
            if rc != 0 or not os.path.exists(saved) or \
                    sha256_b64(saved) != sha256_b64(a):
                problems.append(f"{m}: show --save-attachments: rc {rc} "
                                f"{err.strip()[:200]}; {saved} differs or "
                                "is missing")
    return problems


CONFLICT = re.compile(r"different digest|conflict", re.IGNORECASE)


# -------------------------------------------------------------------- run


def retry_after_crash(res, fed, tmp, attachment):
    """The contract the senders rely on: lv dies at submit.after_commit (the
    message is durable, the CLI gets no id); the same send with the same
    client key then answers with the original id. Returns the Msg (for
    the later checks) or None."""
    label = "with an attachment" if attachment else "without attachments"
    idx = -1 if attachment else -2
    m = Msg(idx, "lv", "fi", "note", "urgent",
            f"retry after crash {label}", [attachment] if attachment else [])
    m.key = f"soak-crash-retry-{'att' if attachment else 'plain'}"
    m.content = harness.write_file(os.path.join(tmp, f"crash-{-idx}.txt"),
                                   f"retried {label}\n")
    fed.fed("restart", fed.root, "lv", crash_at="submit.after_commit:1")
    rc1, _, err1 = fed.cli("lv", *m.send_args(), timeout=60)
    died = harness.poll(lambda: not fed.alive("lv"), 20, 0.05)
    fed.fed("start", fed.root, "lv")
    if not res.check(f"lv died at submit.after_commit, send {label} exited "
                     "75", died and rc1 == harness.EXIT_TRANSIENT,
                     f"died={bool(died)} rc={rc1} {err1.strip()[:200]}"):
        return None
    rc, out, err = harness.retry_transient(
        lambda: fed.cli("lv", *m.send_args(), timeout=60), 30, 0.2)
    found = ALREADY_USED.search(err)
    ok = False
    if rc == 0:
        r = json.loads(out)
        m.id, m.duplicate = r["message_id"], bool(r.get("duplicate"))
        ok = m.duplicate
    elif found:
        m.id = found.group(1)
    res.check(f"retry {label} with the same client key after the crash "
              "answers with the original id (duplicate)", ok,
              f"exit {rc}: {(err or out).strip()[:300]}")
    return m if m.id else None


def run(args, tmp, res, state):
    kontord, kontor = harness.binaries()
    rng = random.Random(args.seed)
    root = os.path.join(tmp, "fed")
    files = os.path.join(tmp, "files")
    os.mkdir(files)
    fed = Fed(root, kontord, kontor)
    state["fed"] = fed

    fed.fed("start", root, *NODES, "--route", "ee:lv:fi")
    fed.fed("stop", root)
    for n in NODES:
        harness.append_config(root, n, harness.BACKOFF)
    fed.fed("start", root, *NODES)
    ee = fed.peer("ee", "lv")
    lv = fed.peer("lv", "ee")
    res.check("ee and lv reach each other only via fi",
              ee.get("via") == "fi" and not ee.get("address") and
              lv.get("via") == "fi" and not lv.get("address"),
              f"{json.dumps(ee)[:200]} {json.dumps(lv)[:200]}")

    attachments = make_attachments(rng, files)
    templates = make_templates(kontor, files)
    msgs = plan_messages(rng, args.messages, attachments, templates, files)
    chaos = plan_chaos(rng, args.cycles)
    kinds = collections.Counter(m.kind for m in msgs)
    prios = collections.Counter(m.priority for m in msgs)
    log(f"# plan: {len(msgs)} messages ({dict(prios)}; {dict(kinds)}; "
        f"{sum(1 for m in msgs if m.attachments)} with attachments, "
        f"{sum(len(m.attachments) for m in msgs)} files); chaos: " +
        ", ".join(f"{c['action']} {c['node']}" for c in chaos))

    extra = []
    for att in (None, attachments[1]):
        m = retry_after_crash(res, fed, files, att)
        if m:
            extra.append(m)

    # ---- chaos while sending
    planned_s = sum(c["gap_s"] + c["pause_s"] for c in chaos)
    senders = Senders(fed, msgs, planned_s / max(1, len(msgs)))
    state["senders"] = senders
    t0 = time.monotonic()
    senders.start()
    done = {"kill": 0, "stop": 0}
    for k, c in enumerate(chaos, 1):
        time.sleep(c["gap_s"])
        node, sent = c["node"], senders.progress()
        if not fed.alive(node):
            # Nothing here kills it between cycles: it died by itself.
            res.check(f"{node} is running before cycle {k}", False,
                      "it died by itself; its log ends with:\n" +
                      "\n".join(fed.log_lines(node)[-15:]))
            fed.fed("start", root, node)
            continue
        if c["action"] == "kill":
            fed.kill(node)
            time.sleep(c["pause_s"])
            fed.fed("restart", root, node)
            what = f"SIGKILL {node}, restarted after {c['pause_s']} s"
        else:
            pid = fed.sigstop(node)
            try:
                time.sleep(c["pause_s"])
            finally:
                fed.sigcont(pid)
            what = f"SIGSTOP {node} for {c['pause_s']} s, SIGCONT"
        done[c["action"]] += 1
        log(f"# cycle {k}/{len(chaos)} at {time.monotonic() - t0:.1f} s "
            f"({sent} sends done): {what}")
    chaos_s = time.monotonic() - t0
    finished = senders.join(SEND_DEADLINE_S * 2)
    log(f"# chaos over after {chaos_s:.1f} s; sends "
        f"{'finished' if finished else 'DID NOT FINISH'} "
        f"at {time.monotonic() - t0:.1f} s")
    res.check(f"chaos ran: {done['kill']} SIGKILL, {done['stop']} "
              "SIGSTOP, every node running again",
              sum(done.values()) == len(chaos) and
              all(fed.alive(n) for n in NODES),
              f"alive: {[n for n in NODES if fed.alive(n)]}")

    errors = [f"{m}: {m.error}" for m in msgs if m.error or not m.id]
    res.check(f"all {len(msgs)} sends got their id (retried with the same "
              "client key while their node was away)",
              finished and not errors, "; ".join(errors[:5]))
    anomalies = [f"{m}: {m.anomaly}" for m in msgs if m.anomaly]
    res.check("no retry refused as 'client key already used for different "
              "content'", not anomalies, "; ".join(anomalies[:5]))
    retried = [m for m in msgs if m.transient]
    log(f"# {len(retried)} sends retried after exit 75 or no answer "
        f"({sum(m.transient for m in msgs)} retries, "
        f"{sum(1 for m in msgs if m.duplicate)} answered as duplicates)")
    by_id = collections.defaultdict(list)
    for m in msgs + extra:
        if m.id:
            by_id[m.id].append(m.key)
    shared = {i: k for i, k in by_id.items() if len(k) > 1}
    res.check("no message id for two client keys", not shared,
              str(list(shared.items())[:3]))

    # ---- settle
    sent = [m for m in msgs + extra if m.id]
    t1 = time.monotonic()
    missing = wait_all_delivered(fed, sent, args.deadline)
    log(f"# settled {len(sent) - len(missing)}/{len(sent)} in "
        f"{time.monotonic() - t1:.1f} s after the sends")
    detail = ""
    if missing:
        m = missing[0]
        detail = (f"{len(missing)} not delivered, e.g. {missing[:3]}; status "
                  f"{json.dumps(fed.query(m.sender, 'status', m.id))[:400]}; "
                  f"{m.sender} peers "
                  f"{json.dumps(fed.query(m.sender, 'peers'))[:600]}")
    res.check(f"all {len(sent)} messages delivered (bounded wait "
              f"{args.deadline} s)", not missing, detail)

    # ---- exactly once in the right inbox
    for node in NODES:
        entries = fed.inbox_entries(node)
        want = {m.id: m for m in sent if m.recipient == node}
        counts = collections.Counter(e["message_id"] for e in entries)
        dups = {i: c for i, c in counts.items() if c > 1}
        absent = [want[i] for i in want if i not in counts]
        unknown = [e for e in entries if e["message_id"] not in want]
        wrong = [(want[e["message_id"]], e.get("origin"), e.get("kind"),
                  e.get("priority")) for e in entries
                 if e["message_id"] in want and
                 (e.get("origin"), e.get("kind"), e.get("priority")) !=
                 (want[e["message_id"]].sender, want[e["message_id"]].kind,
                  want[e["message_id"]].priority)]
        res.check(f"{node}'s inbox: each of its {len(want)} messages exactly "
                  "once, from its sender, kind and priority as sent; "
                  "nothing else",
                  not dups and not absent and not unknown and not wrong and
                  len(entries) == len(want),
                  f"{len(entries)} entries; DUPLICATES {list(dups.items())[:3]}"
                  f"; MISSING {absent[:3]}; NOT SENT TO IT "
                  f"{[json.dumps(e)[:200] for e in unknown[:3]]}; "
                  f"WRONG {wrong[:3]}")

    # ---- receipts, content, attachments
    saver = max((m for m in sent if m.attachments and
                 (m.sender, m.recipient) in RELAYED),
                key=lambda m: sum(os.path.getsize(a) for a in m.attachments),
                default=None)
    problems = []
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for p in pool.map(lambda m: check_message(fed, m, tmp, m is saver),
                          sent):
            problems += p
    res.check(f"status at the sender: delivered, receipt signed by the "
              f"recipient (ACCEPTED, this id); show at the recipient: "
              f"signed by the sender, {sum(len(m.attachments) for m in sent)} "
              f"attachments' SHA-256 as sent"
              + (f", {saver} saved and equal" if saver else ""),
              not problems, "; ".join(problems[:5]) +
              (f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""))

    # ---- nothing left over
    left = []
    for node in NODES:
        for st in ("", "queued", "in_flight", "rejected", "expired",
                   "suspended", "cancelled"):
            a = ["outbox", "--limit", "100"] + (["--state", st] if st else [])
            for e in fed.query(node, *a).get("entries", []):
                left.append(f"{node} {st or 'pending'}: {json.dumps(e)[:200]}")
    res.check("no outbox entry pending, rejected, expired, suspended or "
              "cancelled on any node", not left, "; ".join(left[:5]))
    relayed = [m for m in sent if (m.sender, m.recipient) in RELAYED]
    fi_done = delivered_keys(fed, "fi")
    res.check(f"fi's {len(relayed)} relay copies (origin/id) all delivered",
              all(fi_done[(f"{m.sender}/{m.id}", m.recipient)] == 1
                  for m in relayed),
              str([m for m in relayed
                   if fi_done[(f"{m.sender}/{m.id}", m.recipient)] != 1][:3]))

    # ---- audit chains
    for node in NODES:
        rc, out, err = fed.cli(node, "audit", "verify", timeout=120)
        try:
            v = json.loads(out) if out.strip() else {}
        except ValueError:
            v = {}
        res.check(f"kontor audit verify on {node}: exit 0 "
                  f"({v.get('records', '?')} records, ok {v.get('ok')})",
                  rc == 0 and v.get("ok") is True,
                  f"exit {rc}: {err.strip()[:300]} {out.strip()[:500]}")

    # ---- logs
    conflicts = [f"{n}: {l}" for n in NODES for l in fed.log_lines(n)
                 if CONFLICT.search(l)]
    res.check("no log line about a conflicting digest for the same id",
              not conflicts, "\n".join(conflicts[:5]))
    for n in NODES:
        lines = [l for l in fed.log_lines(n) if " SECURITY " in l or
                 " ERROR " in l]
        for l in lines[:5]:
            log(f"  note: {n} log: {l}")
        if len(lines) > 5:
            log(f"  note: {n} log: ... {len(lines) - 5} more SECURITY/ERROR "
                "lines")


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Chaos soak: a relayed federation (ee-fi-lv), traffic "
        "of every priority with attachments in all directions, random "
        "SIGKILL/SIGSTOP of any node; then exactly-once, receipts, "
        "attachments and audit chains are checked. Needs KONTORD and KONTOR "
        "(default: build/ in the repository).",
        epilog="Long run: --cycles 60 --messages 3000 (and a larger "
        "--deadline on a slow machine). Replay a run: --seed N with the "
        "same --cycles and --messages.")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the random plan (default: a fresh one, "
                   "printed)")
    p.add_argument("--cycles", type=int, default=6,
                   help="chaos cycles: one SIGKILL or SIGSTOP each "
                   "(default 6)")
    p.add_argument("--messages", type=int, default=150,
                   help="messages to send during the chaos (default 150)")
    p.add_argument("--deadline", type=int, default=120,
                   help="seconds to wait for every message to be delivered "
                   "after the sends (default 120)")
    a = p.parse_args(argv)
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 2**31)
    if a.cycles < 0 or a.messages < 1:
        p.error("--cycles >= 0 and --messages >= 1")
    return a


def main(argv):
    args = parse_args(argv)
    replay = (f"{os.path.basename(__file__)} --seed {args.seed} --cycles "
              f"{args.cycles} --messages {args.messages}")
    log(f"# seed {args.seed} (replay: {replay})")
    harness.interrupt_on_signals()
    res = harness.Results()
    tmp = tempfile.mkdtemp(prefix="kontor-soak.", dir="/tmp")
    state = {}
    started = time.monotonic()
    try:
        run(args, tmp, res, state)
    except BaseException as e:  # noqa: BLE001 - a crash is a failed check
        traceback.print_exc()
        res.check("test ran to the end", False, f"{type(e).__name__}: {e}")
    finally:
        if "senders" in state:
            state["senders"].stop()
        fed = state.get("fed")
        if fed is not None:
            fed.continue_all()
            try:
                fed.fed("stop", fed.root)
            except Exception as e:  # noqa: BLE001
                res.check("federation.sh stop", False, str(e))
    if res.failed == 0 and not os.environ.get("KEEP_TMP"):
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"kept {tmp} (federation: {tmp}/fed, logs: "
              f"{tmp}/fed/*/kontord.log)")
    if res.failed:
        print(f"seed {args.seed}: replay with {replay}")
    print(f"# {time.monotonic() - started:.1f} s")
    return res.summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
