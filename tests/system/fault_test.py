#!/usr/bin/python3
"""Real-process fault tests for Kontor (DESIGN.md §5, §10).

Runs loopback federations (deploy/federation.sh) of two nodes, ee and fi,
sends messages from ee to fi with the kontor CLI while nodes are SIGKILLed
(at random moments or at the named crash points of
daemon/common/crash_point.h), and checks exactly-once delivery: every id the
CLI got back is in fi's inbox exactly once and `delivered` at ee, and nothing
else arrived.

The binaries come from the environment: KONTORD and KONTOR (absolute paths).

    KONTORD=/path/kontord KONTOR=/path/kontor tests/system/fault_test.py
    ... --only kill_receiver --messages 300

Each scenario prints `PASS name (details)` or `FAIL name: reason`; the last
line is `N passed, M failed`; the exit status is 0 only if nothing failed.
The work directory is removed on success and kept (its path printed) on
failure. Standard library only.
"""

import argparse
import collections
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BACKOFF, EXIT_TRANSIENT, FEDERATION_SH,  # noqa: E402
                     pid_alive)

SENDER, RECEIVER = "ee", "fi"

# Bounds: these only limit how long the test waits for a condition; the test
# never asserts how fast anything happens.
SEND_DEADLINE_S = 180      # one message, all its attempts
CLI_TIMEOUT_S = 170        # one kontor process (it retries 5 times, 30 s each)
DELIVERY_DEADLINE_S = 180  # everything delivered after the sends
NODE_DEADLINE_S = 30       # a node dies after SIGKILL / answers again

CRASH_POINTS = [
    # (crash point, node that dies)
    ("submit.after_commit", SENDER),
    ("receive.after_inbox_commit", RECEIVER),
    ("receive.before_receipt_send", RECEIVER),
    ("deliver.after_send", SENDER),
    ("deliver.before_receipt_commit", SENDER),
    ("deliver.after_receipt_commit", SENDER),
]
CRASH_HIT = 3  # KONTOR_CRASH_AT=NAME:3: die at the third hit, mid-run


class Failure(Exception):
    """A scenario's assertion failed."""


def log(msg):
    print(msg, flush=True)


def wait_until(cond, deadline_s, what, interval=0.1):
    """Polls cond() until true; raises Failure after deadline_s seconds."""
    end = time.monotonic() + deadline_s
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise Failure(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(interval)


# ----------------------------------------------------------------- federation


class Federation:
    """A loopback federation in its own directory, driven by federation.sh."""

    def __init__(self, root, kontord, kontor, nodes=(SENDER, RECEIVER)):
        self.dir = Path(root)
        self.kontord = kontord
        self.kontor = kontor
        self.nodes = list(nodes)
        self.lock = threading.Lock()  # one federation.sh at a time
        self.started = False

    def _env(self, crash_at=None):
        env = dict(os.environ)
        env["KONTORD"] = self.kontord
        env.pop("KONTOR_CRASH_AT", None)
        env.pop("KONTOR_NODE", None)
        if crash_at:
            env["KONTOR_CRASH_AT"] = crash_at
        return env

    def _fed(self, *args, crash_at=None):
        with self.lock:
            p = subprocess.run(
                [FEDERATION_SH, *args], env=self._env(crash_at),
                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=120)
        if p.returncode != 0:
            raise Failure(f"federation.sh {' '.join(args)} exited "
                          f"{p.returncode}: {p.stderr.strip()[-2000:]}")
        return p.stdout

    def start(self, crash=None):
        """Starts every node with a short backoff; crash=(node, spec) starts
        that node with KONTOR_CRASH_AT=spec."""
        self.started = True
        self._fed("start", str(self.dir), *self.nodes)
        self._fed("stop", str(self.dir))
        for n in self.nodes:
            harness.append_config(self.dir, n, BACKOFF)
        for n in self.nodes:
            spec = crash[1] if crash and crash[0] == n else None
            self._fed("start", str(self.dir), n, crash_at=spec)

    def restart(self, node, crash_at=None):
        self._fed("restart", str(self.dir), node, crash_at=crash_at)

    def stop(self):
        if self.started and self.dir.exists():
            self._fed("stop", str(self.dir))

    def socket(self, node):
        return (self.dir / node / "socket").read_text().strip()

    def pid(self, node):
        try:
            return int((self.dir / node / "kontord.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def alive(self, node):
        pid = self.pid(node)
        return pid is not None and pid_alive(pid)

    def kill(self, node):
        """SIGKILLs node's kontord and waits until it is gone."""
        pid = self.pid(node)
        if pid is None or not pid_alive(pid):
            raise Failure(f"{node} is not running when it should be killed")
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), NODE_DEADLINE_S,
                   f"{node} (pid {pid}) to die after SIGKILL", 0.02)

    def cli(self, node, *args, timeout=CLI_TIMEOUT_S):
        """Runs kontor against node; returns (exit code, stdout, stderr)."""
        return harness.kontor_cli(self.kontor, self.socket(node), *args,
                                  timeout=timeout)

    def query(self, node, *args, deadline_s=60):
        """Runs a read-only kontor command; retries while the node is down."""
        rc, out, err = harness.retry_transient(
            lambda: self.cli(node, *args, timeout=60), deadline_s, 0.2)
        if rc != 0:
            raise Failure(f"kontor {' '.join(args)} on {node} exited {rc}: "
                          f"{err.strip()}")
        try:
            return json.loads(out)
        except ValueError:
            raise Failure(f"kontor {' '.join(args)} on {node}: "
                          f"not JSON: {out[:200]!r}")

    def log_lines(self, node):
        try:
            return (self.dir / node / "kontord.log").read_text(
                errors="replace").splitlines()
        except FileNotFoundError:
            return []


# --------------------------------------------------------------------- sender


class Sender:
    """Sends n messages from ee to fi with `workers` concurrent kontor
    processes. Each message has its own client key; a send that fails with
    75 (transient) is retried with the same key until it succeeds."""

    def __init__(self, fed, name, n, body_file, workers=4):
        self.fed = fed
        self.n = n
        self.body = str(body_file)
        self.workers = workers
        token = secrets.token_hex(4)
        self.keys = [f"ft-{name}-{token}-{i}" for i in range(n)]
        self.subjects = [f"{name} message {i}" for i in range(n)]
        self.results = [None] * n  # {"id", "duplicate", "tries", "transient"}
        self.errors = []           # permanent failures (not 75)
        self.hangs = 0             # kontor processes that did not answer
        self.transient = 0         # sends that exited 75
        self.cond = threading.Condition()
        self.completed = 0
        self.next = 0
        self.up = threading.Event()  # cleared while ee is known to be down
        self.up.set()
        self.stop = threading.Event()
        self.threads = []
        self.started_at = self.finished_at = None

    def send_args(self, i, key=None):
        return ["send", "--to", RECEIVER, "--kind", "note",
                "--subject", self.subjects[i], "--body-file", self.body,
                "--client-key", key or self.keys[i]]

    def _one(self, i):
        end = time.monotonic() + SEND_DEADLINE_S
        tries = transient = 0
        last = ""
        while not self.stop.is_set():
            tries += 1
            rc, out, err = self.fed.cli(SENDER, *self.send_args(i))
            if rc == 0:
                try:
                    r = json.loads(out)
                    return {"id": r["message_id"],
                            "duplicate": bool(r.get("duplicate", False)),
                            "tries": tries, "transient": transient}
                except (ValueError, KeyError):
                    raise Failure(f"send {i}: unexpected output {out!r}")
            if rc is None:
                with self.cond:
                    self.hangs += 1
            elif rc != EXIT_TRANSIENT:
                raise Failure(f"send {i} (key {self.keys[i]}) exited {rc}: "
                              f"{err.strip()}")
            transient += 1
            with self.cond:
                self.transient += 1
                self.cond.notify_all()
            last = err.strip()
            if time.monotonic() > end:
                raise Failure(f"send {i} (key {self.keys[i]}) did not succeed "
                              f"in {SEND_DEADLINE_S} s: {last}")
            # Wait for the node to be back (the chaos thread says so), then
            # retry with the same client key.
            self.up.wait(timeout=5)
            time.sleep(0.1)
        return None

    def _worker(self):
        while not self.stop.is_set():
            with self.cond:
                if self.next >= self.n:
                    return
                i = self.next
                self.next += 1
            try:
                r = self._one(i)
            except Failure as e:
                with self.cond:
                    self.errors.append(str(e))
                    self.completed += 1
                    self.cond.notify_all()
                continue
            with self.cond:
                self.results[i] = r
                self.completed += 1
                self.cond.notify_all()

    def start(self):
        self.started_at = time.monotonic()
        for _ in range(self.workers):
            t = threading.Thread(target=self._worker, daemon=True)
            t.start()
            self.threads.append(t)

    def done(self):
        with self.cond:
            return self.completed >= self.n

    def wait_progress(self, count, deadline_s=SEND_DEADLINE_S * 2):
        """Waits until `count` sends completed (or all did)."""
        end = time.monotonic() + deadline_s
        with self.cond:
            while self.completed < min(count, self.n):
                left = end - time.monotonic()
                if left <= 0:
                    raise Failure(f"sending stalled at {self.completed}/"
                                  f"{self.n} (waited for {count})")
                self.cond.wait(timeout=min(left, 1))
            return self.completed

    def wait_transient(self, count, deadline_s):
        """Waits until `count` sends exited 75 in total, or deadline_s passed
        (a hold, not an assertion). Returns the count reached."""
        end = time.monotonic() + deadline_s
        with self.cond:
            while self.transient < count and self.completed < self.n:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(timeout=min(left, 1))
            return self.transient

    def join(self):
        self.wait_progress(self.n, SEND_DEADLINE_S * (self.n // self.workers + 2))
        for t in self.threads:
            t.join(timeout=SEND_DEADLINE_S)
        self.finished_at = time.monotonic()

    def abort(self):
        self.stop.set()
        self.up.set()

    def ids(self):
        return [r["id"] for r in self.results if r]


# ------------------------------------------------------------------- checking


def delivered_entries(fed):
    """ee's outbox entries `delivered` to fi."""
    out = fed.query(SENDER, "outbox", "--state", "delivered",
                    "--limit", "1000000")
    return [e for e in out.get("entries", [])
            if e.get("recipient") == RECEIVER]


def delivered_ids(fed):
    """Message ids `delivered` to fi according to ee's outbox (a list)."""
    return [e["message_id"] for e in delivered_entries(fed)]


def wait_delivered(fed, ids, deadline_s=DELIVERY_DEADLINE_S):
    want = set(ids)
    end = time.monotonic() + deadline_s
    while True:
        got = set(delivered_ids(fed))
        missing = want - got
        if not missing:
            return
        if time.monotonic() > end:
            pending = fed.query(SENDER, "outbox", "--limit", "20")
            peers = fed.query(SENDER, "peers")
            raise Failure(
                f"{len(missing)} of {len(want)} messages not delivered after "
                f"{deadline_s} s (e.g. {sorted(missing)[:5]}); ee outbox: "
                f"{json.dumps(pending.get('entries', [])[:5])}; ee peers: "
                f"{json.dumps(peers.get('peers', []))}")
        time.sleep(0.5)


def check_exactly_once(fed, sender, extra_notes):
    """The core assertions; raises Failure with every problem found, else
    returns a summary."""
    problems = []
    if sender.errors:
        problems.append(f"{len(sender.errors)} send(s) failed: "
                        + "; ".join(sender.errors[:3]))
    unanswered = [i for i, r in enumerate(sender.results) if r is None]
    if unanswered and not sender.errors:
        problems.append(f"{len(unanswered)} send(s) got no id")
    ids = sender.ids()
    by_id = collections.defaultdict(list)
    for i, r in enumerate(sender.results):
        if r:
            by_id[r["id"]].append(i)
    shared = {m: ks for m, ks in by_id.items() if len(ks) > 1}
    if shared:
        problems.append(f"{len(shared)} id(s) returned for different client "
                        f"keys, e.g. {list(shared.items())[:3]}")
    want = set(ids)

    if want:
        try:
            wait_delivered(fed, want)
        except Failure as e:
            problems.append(str(e))

    inbox = fed.query(RECEIVER, "inbox", "--limit", "1000000")
    entries = inbox.get("entries", [])
    counts = collections.Counter(e["message_id"] for e in entries)
    dups = {m: c for m, c in counts.items() if c > 1}
    missing = want - set(counts)
    extra = set(counts) - want
    wrong_origin = [e["message_id"] for e in entries if e.get("origin") != SENDER]
    if dups:
        problems.append(f"DUPLICATES in fi's inbox: {len(dups)} id(s), e.g. "
                        f"{sorted(dups.items())[:5]}")
    if missing:
        problems.append(f"MISSING from fi's inbox: {len(missing)} id(s), e.g. "
                        f"{sorted(missing)[:5]}")
    if extra:
        problems.append(f"fi's inbox has {len(extra)} id(s) the CLI never "
                        f"got back, e.g. {sorted(extra)[:5]}")
    if wrong_origin:
        problems.append(f"{len(wrong_origin)} inbox entries not from ee")
    if len(entries) != sender.n:
        problems.append(f"fi's inbox has {len(entries)} entries, "
                        f"expected {sender.n}")

    dentries = delivered_entries(fed)
    delivered = [e["message_id"] for e in dentries]
    retried = sum(1 for e in dentries if int(e.get("attempts") or 0) > 1)
    dcounts = collections.Counter(delivered)
    ddups = {m: c for m, c in dcounts.items() if c > 1}
    if ddups:
        problems.append(f"ee's outbox lists {len(ddups)} id(s) as delivered "
                        f"more than once, e.g. {sorted(ddups.items())[:3]}")
    if set(dcounts) != want:
        problems.append(
            f"delivered ids != ids the CLI got back: {len(want - set(dcounts))} "
            f"not delivered, {len(set(dcounts) - want)} unknown delivered")
    for state in ("queued", "rejected", "expired", "cancelled"):
        rows = fed.query(SENDER, "outbox", "--state", state, "--limit", "10")
        if rows.get("entries"):
            problems.append(f"ee's outbox has {state} entries: "
                            f"{json.dumps(rows['entries'][:3])}")
    # A few ids through `kontor status` too.
    sample = sorted(want)[:2] + [m for m in extra_notes.get("status_ids", [])]
    for m in sample:
        st = fed.query(SENDER, "status", m)
        if st.get("state") != "delivered":
            problems.append(f"kontor status {m}: {st.get('state')!r}, "
                            f"expected 'delivered'")
    if problems:
        raise Failure("; ".join(problems))
    return f"{len(entries)} messages exactly once ({retried} with attempts > 1 " \
        f"in ee's outbox)"


LOG_PROBLEM = re.compile(r"conflict|different digest", re.IGNORECASE)
LOG_NOTEWORTHY = re.compile(r" (SECURITY|ERROR) ")


def scan_logs(fed):
    """Prints SECURITY/ERROR log lines; returns lines that fail the test."""
    fatal = []
    for n in fed.nodes:
        shown = 0
        for line in fed.log_lines(n):
            if LOG_PROBLEM.search(line):
                fatal.append(f"{n}: {line}")
            if LOG_NOTEWORTHY.search(line):
                if shown < 20:
                    log(f"  note: {n} log: {line}")
                shown += 1
        if shown > 20:
            log(f"  note: {n} log: ... {shown - 20} more SECURITY/ERROR lines")
    return fatal


def crash_lines(fed, node, point):
    return [l for l in fed.log_lines(node)
            if f"crash point {point} reached" in l]


# ------------------------------------------------------------------ scenarios


class Ctx:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.kontord = os.environ["KONTORD"]
        self.kontor = os.environ["KONTOR"]
        self.fed = None  # the running federation, stopped by the runner

    def new_federation(self, name):
        root = self.workdir / name
        self.fed = Federation(root, self.kontord, self.kontor)
        return self.fed

    def body_file(self, name):
        p = self.workdir / f"{name}.body"
        p.write_text(f"Body of a {name} fault-test message.\n" + "x" * 512 + "\n")
        return p


def run_sender_with_chaos(sender, chaos):
    """Starts the sender, runs chaos(sender) in this thread, joins the sender.
    If chaos fails, stops the sender and re-raises."""
    sender.start()
    try:
        chaos(sender)
        sender.join()
    except BaseException:
        sender.abort()
        raise


def scenario_kill_receiver(ctx):
    n = ctx.args.messages
    fed = ctx.new_federation("kr")
    fed.start()
    sender = Sender(fed, "kill_receiver", n, ctx.body_file("kr"))
    kills = []

    def chaos(s):
        for frac in (0.2, 0.5, 0.8):
            at = s.wait_progress(int(n * frac))
            if s.done():
                break
            fed.kill(RECEIVER)
            kills.append(at)
            # Keep fi down while more messages are submitted, so that ee
            # fails to deliver and backs off.
            s.wait_progress(at + max(1, n // 12))
            fed.restart(RECEIVER)

    run_sender_with_chaos(sender, chaos)
    if len(kills) < 2:
        raise Failure(f"only {len(kills)} kill(s) of fi happened while sending")
    summary = check_exactly_once(fed, sender, {})
    return (f"{summary}; fi SIGKILLed {len(kills)} times "
            f"at {kills} sends; {sender.transient} transient send failures")


def scenario_kill_sender(ctx):
    n = ctx.args.messages
    fed = ctx.new_federation("ks")
    fed.start()
    sender = Sender(fed, "kill_sender", n, ctx.body_file("ks"))
    notes = []

    def kill_ee(s, hold):
        s.up.clear()
        fed.kill(SENDER)
        if hold:
            # Keep ee down until the senders see it (exit 75), bounded.
            before = s.transient
            s.wait_transient(before + s.workers, 20)
        fed.restart(SENDER)
        s.up.set()

    def chaos(s):
        for frac in (0.25, 0.55):
            at = s.wait_progress(int(n * frac))
            if s.done():
                break
            kill_ee(s, hold=True)
            notes.append(f"ee killed at {at} sends")
        # Take fi away for the last sends, so that ee has a backlog.
        s.wait_progress(int(n * 0.7))
        fed.kill(RECEIVER)
        s.wait_progress(n)
        queued = len(fed.query(SENDER, "outbox", "--limit", "1000000")
                     .get("entries", []))
        # ee dies with a backlog for a dead peer, and comes back.
        kill_ee(s, hold=False)
        notes.append(f"ee killed after sending with {queued} queued")
        fed.restart(RECEIVER)
        # Best effort: kill ee again while it delivers the backlog.
        base = len(delivered_ids(fed))
        end = time.monotonic() + 60
        while time.monotonic() < end:
            d = len(delivered_ids(fed))
            if d >= n:
                notes.append("backlog delivered before a mid-delivery kill")
                break
            if d > base:
                kill_ee(s, hold=False)
                notes.append(f"ee killed mid-delivery at {d}/{n} delivered")
                break
            time.sleep(0.02)

    run_sender_with_chaos(sender, chaos)
    kills = sum(1 for x in notes if x.startswith("ee killed"))
    if kills < 3:
        raise Failure(f"only {kills} kills of ee: {notes}")
    retried = sum(1 for r in sender.results if r and r["transient"])
    summary = check_exactly_once(fed, sender, {})
    return (f"{summary}; {'; '.join(notes)}; "
            f"{retried} sends retried after exit 75")


def make_crash_scenario(index, point, node):
    def scenario(ctx):
        n = max(20, ctx.args.messages // 5)
        name = "cp_" + point.replace(".", "_")
        short = f"cp{index}"  # keeps socket paths short
        fed = ctx.new_federation(short)
        spec = f"{point}:{CRASH_HIT}"
        fed.start(crash=(node, spec))
        victim_pid = fed.pid(node)
        sender = Sender(fed, name, n, ctx.body_file(short))
        state = {"died": False, "error": None}
        stop_monitor = threading.Event()

        def monitor():
            # Restarts the node (without the crash point) once it died.
            try:
                while not stop_monitor.is_set():
                    if not pid_alive(victim_pid):
                        if node == SENDER:
                            sender.up.clear()
                        fed.restart(node)
                        state["died"] = True
                        sender.up.set()
                        return
                    time.sleep(0.02)
            except Exception as e:  # reported by the scenario
                state["error"] = f"restart of {node} failed: {e}"
                sender.up.set()

        mon = threading.Thread(target=monitor, daemon=True)
        mon.start()
        try:
            run_sender_with_chaos(sender, lambda s: None)
            # The node must die: delivery or retries keep hitting the point.
            try:
                wait_until(lambda: state["died"] or state["error"], 60,
                           f"{node} to die at crash point {spec}")
            except Failure:
                raise Failure(
                    f"crash point {spec} did not fire: {node} (pid "
                    f"{victim_pid}) still runs after {n} messages were sent")
        finally:
            stop_monitor.set()
            mon.join(timeout=NODE_DEADLINE_S * 3)
        if state["error"]:
            raise Failure(state["error"])
        lines = crash_lines(fed, node, point)
        if not lines:
            raise Failure(f"{node} died but its log has no 'crash point "
                          f"{point} reached' line")
        extra = {}
        details = ""
        if point == "submit.after_commit":
            # The submit(s) running at the crash lost their reply; the CLI's
            # retry with the same client key must have found the stored
            # message (duplicate: true). Check it again explicitly.
            lost = [i for i, r in enumerate(sender.results)
                    if r and r["duplicate"]]
            if not lost:
                raise Failure(
                    "no send was answered 'duplicate' after the crash: the "
                    "message committed before submit.after_commit was not "
                    "found again by its client key (lost reply not stored?)")
            for i in lost:
                rc, out, err = fed.cli(SENDER, *sender.send_args(i))
                if rc != 0:
                    raise Failure(f"resubmit of key {sender.keys[i]} exited "
                                  f"{rc}: {err.strip()}")
                r = json.loads(out)
                if (r.get("message_id") != sender.results[i]["id"]
                        or r.get("duplicate") is not True):
                    raise Failure(
                        f"resubmit of key {sender.keys[i]} answered {r}, "
                        f"expected id {sender.results[i]['id']} duplicate")
            extra["status_ids"] = [sender.results[i]["id"] for i in lost]
            details = (f"; lost reply for {len(lost)} message(s) "
                       f"({', '.join(extra['status_ids'][:3])}) recovered by "
                       f"client key")
        summary = check_exactly_once(fed, sender, extra)
        return (f"{summary}; {node} died at {spec} and "
                f"was restarted; {sender.transient} transient send "
                f"failures{details}")

    return scenario


SCENARIOS = [("kill_receiver", scenario_kill_receiver),
             ("kill_sender", scenario_kill_sender)]
SCENARIOS += [(p, make_crash_scenario(i, p, n))
              for i, (p, n) in enumerate(CRASH_POINTS, 1)]


# --------------------------------------------------------------------- runner


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", metavar="NAME",
                    choices=[n for n, _ in SCENARIOS],
                    help="run one scenario: " + ", ".join(n for n, _ in SCENARIOS))
    ap.add_argument("--messages", type=int, default=1000,
                    help="messages per kill scenario (crash-point scenarios "
                         "send a fifth of it); default 1000")
    ap.add_argument("--workdir", help="where the federations live (default: "
                                      "a new directory under /tmp)")
    args = ap.parse_args()
    if args.messages < 10:
        ap.error("--messages: at least 10")
    for var in ("KONTORD", "KONTOR"):
        v = os.environ.get(var, "")
        if not (v.startswith("/") and os.path.isfile(v) and os.access(v, os.X_OK)):
            ap.error(f"{var} must be the absolute path of an executable "
                     f"(got {v!r})")

    created = args.workdir is None
    if created:
        workdir = Path(tempfile.mkdtemp(prefix="kft", dir="/tmp"))
    else:
        workdir = Path(args.workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)

    harness.interrupt_on_signals()

    ctx = Ctx(args, workdir)
    res = harness.Results()
    interrupted = False
    todo = [(n, f) for n, f in SCENARIOS if not args.only or n == args.only]
    total_start = time.monotonic()
    try:
        for name, fn in todo:
            t0 = time.monotonic()
            ok, text = False, ""
            try:
                text = fn(ctx)
                ok = True
            except Failure as e:
                text = str(e)
            except KeyboardInterrupt:
                raise
            except Exception as e:
                sys.stdout.write(traceback.format_exc())
                text = f"{type(e).__name__}: {e}"
            finally:
                if ctx.fed is not None:
                    try:
                        ctx.fed.stop()
                    except Exception as e:
                        log(f"  note: stopping {ctx.fed.dir}: {e}")
            if ctx.fed is not None:
                fatal = scan_logs(ctx.fed)
                if fatal:
                    why = f"node logs report a conflict: {fatal[:5]}"
                    text = why if ok else f"{text}; {why}"
                    ok = False
            elapsed = time.monotonic() - t0
            if ok:
                res.check(f"{name} ({text}; {elapsed:.1f} s)", True)
                if ctx.fed is not None:
                    shutil.rmtree(ctx.fed.dir, ignore_errors=True)
            else:
                where = f" [logs: {ctx.fed.dir}/*/kontord.log]" if ctx.fed else ""
                res.check(name, False, f"{text} ({elapsed:.1f} s){where}")
            ctx.fed = None
    except KeyboardInterrupt:
        interrupted = True
        res.failed += 1
        log("interrupted")
    finally:
        if ctx.fed is not None:
            try:
                ctx.fed.stop()
            except Exception as e:
                log(f"  note: stopping {ctx.fed.dir}: {e}")
    log(f"total {time.monotonic() - total_start:.1f} s")
    if res.failed == 0 and not interrupted:
        if created:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            for p in workdir.glob("*.body"):
                p.unlink()
    else:
        log(f"work directory kept: {workdir}")
    return res.summary()


if __name__ == "__main__":
    sys.exit(main())
