#!/usr/bin/python3
"""Real-process disk-full tests for Kontor.

Runs a loopback federation `ee fi` (deploy/federation.sh) with one node's
data directory on a small tmpfs, fills it with messages sent by the kontor
CLI, and checks that kontord survives, says why it cannot store, loses and
duplicates nothing, and recovers once the tmpfs is grown (remounted bigger)
without a restart:

1. sender_full: ee's disk fills while fi is down. The send that does not fit
   exits 75 (transient) with a one-line "disk is full" error, ee keeps running
   and answering, logs an ERROR, and stores nothing of the failed message.
   After growing the tmpfs the same send (same --client-key) is accepted, and
   once fi is up every accepted message is delivered exactly once.
2. receiver_full: fi's disk fills while ee delivers. ee keeps the messages
   queued with last_error "recipient cannot store now: ...", fi logs an ERROR
   and keeps running; after growing fi's tmpfs every message arrives exactly
   once.

Needs root (mount -t tmpfs); otherwise it prints `SKIP disk_full: cannot mount
tmpfs (<reason>)` and exits 77. Every tmpfs is unmounted at the end (nodes
stopped first), also on errors and SIGINT/SIGTERM.

Environment: KONTORD, KONTOR (the binaries; default: build/ of the repository),
KEEP_TMP=1 keeps the temporary directory even on success.
Prints one PASS/FAIL line per check and at the end `N passed, M failed`;
exits 0 only if nothing failed. Standard library only.
"""

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
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import BACKOFF, EXIT_TRANSIENT, one_line  # noqa: E402

SENDER, RECEIVER = "ee", "fi"
EXIT_SKIP = 77

BODY_BYTES = 48 * 1024  # one message body (random bytes)
SMALL_TMPFS = "2m"      # kontord starts in it; a few dozen bodies fill it
BIG_TMPFS = "64m"       # after the remount: room for everything
MAX_SENDS = 200         # sender_full: give up if the disk never fills
RECEIVER_MESSAGES = 60  # receiver_full: about twice what fits at fi
AFTER_GROWTH = 3        # sender_full: new messages after the remount

# Bounds: these only limit how long the test waits for a condition; the test
# never asserts how fast anything happens.
CLI_TIMEOUT_S = 170       # one kontor process (send retries 5 times itself)
DELIVERY_DEADLINE_S = 90  # everything delivered after recovery
STALL_DEADLINE_S = 60     # the receiver's "cannot store" shows at ee

FULL_RE = re.compile(r"database or disk is full|disk is full|disk full|"
                     r"no space", re.IGNORECASE)
CANNOT_STORE_RE = re.compile(r"cannot store", re.IGNORECASE)
LOG_PROBLEM_RE = re.compile(r"conflict|different digest", re.IGNORECASE)

KONTORD, KONTOR = harness.binaries()


class Failure(Exception):
    """A check that stops the scenario (already counted as FAIL)."""


def log(msg):
    print(msg, flush=True)


# ----------------------------------------------------------------- tmpfs


class MountError(Exception):
    pass


def mount_tmpfs(path, size):
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700",
                        "tmpfs", path], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise MountError(r.stderr.strip() or f"mount exited {r.returncode}")


def remount_tmpfs(path, size):
    r = subprocess.run(["mount", "-o", f"remount,size={size}", path],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        raise MountError(f"remount of {path} to {size}: "
                         f"{r.stderr.strip() or r.returncode}")


def umount(path, lazy=False):
    r = subprocess.run(["umount", *(["-l"] if lazy else []), path],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        raise MountError(f"umount {path}: {r.stderr.strip() or r.returncode}")


def mounts_under(root):
    """Mount points at or below root, from /proc/mounts."""
    root = os.path.realpath(root)
    found = []
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 2:
                continue
            point = re.sub(r"\\([0-7]{3})",
                           lambda m: chr(int(m.group(1), 8)), fields[1])
            if point == root or point.startswith(root + "/"):
                found.append(point)
    return found


def probe_mount():
    """None if a tmpfs can be mounted here, else the reason."""
    if not shutil.which("mount") or not shutil.which("umount"):
        return "no mount/umount command"
    d = tempfile.mkdtemp(prefix="kx-df-probe.", dir="/tmp")
    try:
        try:
            mount_tmpfs(d, "64k")
        except (MountError, OSError, subprocess.SubprocessError) as e:
            return " ".join(str(e).split("\n")[0].split()) or type(e).__name__
        try:
            umount(d)
        except MountError:
            umount(d, lazy=True)
        return None
    finally:
        try:
            os.rmdir(d)
        except OSError:
            pass


class Mounts:
    """The tmpfs this test mounted; release() unmounts them all."""

    def __init__(self):
        self.points = []

    def mount(self, path, size):
        mount_tmpfs(path, size)
        self.points.append(path)

    def unmount(self, path):
        umount(path)
        self.points.remove(path)

    def release(self):
        """Unmounts everything; returns the problems (a list of strings)."""
        problems = []
        for p in reversed(list(self.points)):
            err = None
            for _ in range(20):  # bounded: a just-stopped process may linger
                try:
                    umount(p)
                    err = None
                    break
                except MountError as e:
                    err = e
                    time.sleep(0.25)
            if err is not None:
                problems.append(str(err))
                try:
                    umount(p, lazy=True)
                except MountError as e:
                    problems.append(f"lazy {e}")
            self.points.remove(p)
        return problems


# ------------------------------------------------------------- federation


def federation(*args, timeout=120):
    return harness.federation_sh(KONTORD, *args, timeout=timeout,
                                 unset=("KONTOR_CRASH_AT",))


class Fed(harness.FedDir):
    cli_timeout = CLI_TIMEOUT_S

    def __init__(self, root):
        super().__init__(root, KONTOR)

    def query(self, node, *args):
        """A read-only kontor command that must succeed; its JSON."""
        rc, out, err = self.cli(node, *args, timeout=60)
        if rc != 0:
            raise RuntimeError(f"kontor {' '.join(args)} on {node} exited "
                               f"{rc}: {err.strip()}")
        return json.loads(out)

    def outbox(self, state=None):
        args = ["outbox", "--limit", "100000"]
        if state:
            args[1:1] = ["--state", state]
        return self.query(SENDER, *args).get("entries", [])

    def delivered(self):
        return [e["message_id"] for e in self.outbox("delivered")
                if e.get("recipient") == RECEIVER]

    def inbox(self):
        return self.inbox_entries(RECEIVER)


def send_args(key, subject, body_file):
    return ["send", "--to", RECEIVER, "--kind", "note", "--subject", subject,
            "--body-file", body_file, "--client-key", key]


def wait_delivered(fed, want, deadline_s=DELIVERY_DEADLINE_S):
    """Polls ee's outbox until every id in want is delivered (bounded);
    returns the ids still missing."""
    missing = set(want)

    def done():
        nonlocal missing
        missing = set(want) - set(fed.delivered())
        return not missing
    harness.poll(done, deadline_s, 0.3)
    return missing


def check_exactly_once(res, name, fed, ids):
    """Every id delivered at ee, exactly once in fi's inbox, nothing else."""
    want = set(ids)
    missing = wait_delivered(fed, want)
    peer = fed.peer(SENDER, RECEIVER)
    res.check(f"{name}: every accepted message is delivered at ee "
              f"({len(want)})", not missing,
              f"{len(missing)} not delivered after {DELIVERY_DEADLINE_S} s, "
              f"e.g. {sorted(missing)[:3]}; ee peer fi: {json.dumps(peer)}")
    delivered = collections.Counter(fed.delivered())
    twice = {m: c for m, c in delivered.items() if c > 1}
    unknown = set(delivered) - want
    res.check(f"{name}: ee's outbox lists exactly those ids as delivered, "
              f"once each", not twice and not unknown,
              f"delivered more than once: {sorted(twice.items())[:3]}; "
              f"unknown delivered: {sorted(unknown)[:3]}")
    entries = fed.inbox()
    counts = collections.Counter(e.get("message_id") for e in entries)
    dups = {m: c for m, c in counts.items() if c > 1}
    absent = want - set(counts)
    extra = set(counts) - want
    wrong_origin = [e for e in entries if e.get("origin") != SENDER]
    res.check(f"{name}: fi's inbox has every id exactly once and nothing else "
              f"({len(entries)} entries)",
              not dups and not absent and not extra and not wrong_origin
              and len(entries) == len(want),
              f"{len(entries)} entries for {len(want)} ids; DUPLICATES "
              f"{sorted(dups.items())[:3]}; MISSING {sorted(absent)[:3]}; "
              f"EXTRA {sorted(extra)[:3]}; not from ee: {len(wrong_origin)}")
    left = [e for e in fed.outbox() if e.get("recipient") == RECEIVER]
    res.check(f"{name}: nothing left queued at ee", not left,
              json.dumps(left[:3]))


# -------------------------------------------------------------- scenarios


def scenario_sender_full(res, fed, mounts, body_file):
    name = "sender_full"
    federation("stop", fed.root)
    data = fed.path(SENDER, "data")
    shutil.rmtree(data)
    os.mkdir(data, 0o700)
    mounts.mount(data, SMALL_TMPFS)
    federation("start", fed.root, SENDER)  # fi stays down: ee keeps the queue
    res.check(f"{name}: ee starts with its data on a {SMALL_TMPFS} tmpfs",
              fed.alive(SENDER))
    log_start = fed.mark(SENDER)

    token = secrets.token_hex(4)
    accepted = {}  # client key -> id
    failed = None
    for i in range(MAX_SENDS):
        key = f"df1-{token}-{i}"
        rc, out, err = fed.cli(SENDER, *send_args(key, f"sender full {i}",
                                                  body_file))
        if rc == 0:
            r = json.loads(out)
            if r.get("duplicate"):
                res.check(f"{name}: a new client key is not a duplicate", False,
                          f"send {i} ({key}): {out.strip()}")
                raise Failure()
            accepted[key] = r["message_id"]
            continue
        failed = (i, key, rc, out, err)
        break
    if not res.check(f"{name}: a send fails once ee's disk is full "
                     f"({len(accepted)} accepted before)",
                     failed is not None and len(accepted) >= 3,
                     f"{len(accepted)} sends accepted, failure: {failed}"):
        raise Failure()
    i, key, rc, out, err = failed
    line = one_line(err)
    log(f"  note: failing send (key {key}) exit {rc}, stderr: {err.rstrip()!r}")
    res.check(f"{name}: the failing send exits 75 (transient)",
              rc == EXIT_TRANSIENT, f"exit {rc}, stderr {err!r}")
    res.check(f"{name}: its stderr is one line saying the disk is full",
              line is not None and bool(FULL_RE.search(line)), repr(err))

    res.check(f"{name}: ee's kontord still runs", fed.alive(SENDER),
              f"pid {fed.pid(SENDER)}; log tail: "
              f"{fed.log_lines(SENDER)[-5:]}")
    rc, out, err = fed.cli(SENDER, "peers", timeout=60)
    res.check(f"{name}: ee answers `kontor peers` while full", rc == 0,
              f"exit {rc}: {err.strip()}")

    errors = [l for l in fed.new_lines(SENDER, log_start)
              if " ERROR " in l and FULL_RE.search(l)]
    for l in errors[:3]:
        log(f"  note: ee log: {l}")
    res.check(f"{name}: ee's log has an ERROR line about the full disk",
              bool(errors),
              f"ERROR lines: {[l for l in fed.log_lines(SENDER)[log_start:] if ' ERROR ' in l][:5]}")

    # Nothing half-written: ee's outbox has exactly the accepted messages.
    queued = collections.Counter(e.get("message_id") for e in fed.outbox()
                                 if e.get("recipient") == RECEIVER)
    want = set(accepted.values())
    res.check(f"{name}: while full, ee's outbox holds exactly the "
              f"{len(want)} accepted messages, once each",
              set(queued) == want and all(c == 1 for c in queued.values()),
              f"{len(queued)} queued; not queued: "
              f"{sorted(want - set(queued))[:3]}; unknown: "
              f"{sorted(set(queued) - want)[:3]}")

    # Grow the disk; the failed send, retried with its key, goes through.
    remount_tmpfs(data, BIG_TMPFS)
    rc, out, err = fed.cli(SENDER, *send_args(key, f"sender full {i}",
                                              body_file))
    retried = None
    if rc == 0:
        r = json.loads(out)
        retried = r.get("message_id")
        res.check(f"{name}: after growing the tmpfs the same send (same "
                  f"client key) is accepted as a new message",
                  bool(retried) and not r.get("duplicate")
                  and retried not in want, out.strip())
        if retried:
            accepted[key] = retried
    else:
        res.check(f"{name}: after growing the tmpfs the same send (same "
                  f"client key) is accepted", False, f"exit {rc}: {err.strip()}")
    more_ok = True
    for j in range(AFTER_GROWTH):
        k = f"df1-{token}-after-{j}"
        rc, out, err = fed.cli(SENDER, *send_args(k, f"after growth {j}",
                                                  body_file))
        if rc != 0:
            more_ok = False
            res.check(f"{name}: new sends are accepted after the growth", False,
                      f"send {j}: exit {rc}: {err.strip()}")
            break
        accepted[k] = json.loads(out)["message_id"]
    if more_ok:
        res.check(f"{name}: new sends are accepted after the growth "
                  f"({AFTER_GROWTH})", True)

    federation("start", fed.root, RECEIVER)
    check_exactly_once(res, name, fed, accepted.values())
    if retried:
        st = fed.query(SENDER, "status", retried)
        res.check(f"{name}: kontor status of the retried message: delivered",
                  st.get("state") == "delivered", json.dumps(st)[:300])
    res.check(f"{name}: ee and fi still run", fed.alive(SENDER)
              and fed.alive(RECEIVER),
              f"ee {fed.alive(SENDER)}, fi {fed.alive(RECEIVER)}")


def scenario_receiver_full(res, fed, mounts, body_file):
    name = "receiver_full"
    federation("stop", fed.root)
    ee_data, fi_data = fed.path(SENDER, "data"), fed.path(RECEIVER, "data")
    if ee_data in mounts.points:
        mounts.unmount(ee_data)
    for d in (ee_data, fi_data):
        shutil.rmtree(d)
        os.mkdir(d, 0o700)
    mounts.mount(fi_data, SMALL_TMPFS)
    federation("start", fed.root)
    res.check(f"{name}: fi starts with its data on a {SMALL_TMPFS} tmpfs "
              f"(fresh databases on both nodes)",
              fed.alive(SENDER) and fed.alive(RECEIVER))
    log_start = fed.mark(RECEIVER)

    token = secrets.token_hex(4)
    ids = []
    for i in range(RECEIVER_MESSAGES):
        rc, out, err = fed.cli(SENDER, *send_args(
            f"df2-{token}-{i}", f"receiver full {i}", body_file))
        if rc != 0:
            res.check(f"{name}: ee accepts all {RECEIVER_MESSAGES} sends", False,
                      f"send {i}: exit {rc}: {err.strip()}")
            raise Failure()
        ids.append(json.loads(out)["message_id"])
    res.check(f"{name}: ee accepts all {RECEIVER_MESSAGES} sends", True)

    # Deliveries stop: ee's last_error says fi cannot store, and the
    # delivered count stays the same over two more failed attempts.
    state = {"seen": None, "peer": {}, "delivered": 0, "errors": set()}

    def stalled():
        p = fed.peer(SENDER, RECEIVER)
        d = len(fed.delivered())
        state["peer"], state["delivered"] = p, d
        le = p.get("last_error", "")
        for e in fed.outbox():
            if e.get("last_error"):
                state["errors"].add(e["last_error"])
        if d >= len(ids):
            return "all"
        if not CANNOT_STORE_RE.search(le):
            state["seen"] = None
            return None
        cf = int(p.get("consecutive_failures") or 0)
        seen = state["seen"]
        if seen is None or seen[0] != d:
            state["seen"] = (d, cf)
            return None
        return cf >= seen[1] + 2
    outcome = harness.poll(stalled, STALL_DEADLINE_S, 0.2)
    p = state["peer"]
    log(f"  note: ee peer fi while fi is full: last_error "
        f"{p.get('last_error', '')!r}, consecutive_failures "
        f"{p.get('consecutive_failures')}, queue_depth {p.get('queue_depth')}, "
        f"delivered {state['delivered']}/{len(ids)}")
    for e in sorted(state["errors"])[:3]:
        log(f"  note: ee outbox last_error: {e!r}")
    res.check(f"{name}: deliveries stop with ee's last_error 'recipient cannot "
              f"store' ({state['delivered']}/{len(ids)} delivered)",
              outcome is True and state["delivered"] < len(ids),
              "everything was delivered: fi's tmpfs did not fill"
              if outcome == "all" else
              f"not within {STALL_DEADLINE_S} s: peer {json.dumps(p)}")
    errors = [l for l in fed.new_lines(RECEIVER, log_start)
              if " ERROR " in l and CANNOT_STORE_RE.search(l)]
    for l in errors[:3]:
        log(f"  note: fi log: {l}")
    res.check(f"{name}: fi's log has an ERROR 'cannot store' line",
              bool(errors), f"fi log tail: {fed.log_lines(RECEIVER)[-5:]}")
    res.check(f"{name}: fi's kontord still runs", fed.alive(RECEIVER),
              f"pid {fed.pid(RECEIVER)}; log tail: "
              f"{fed.log_lines(RECEIVER)[-5:]}")
    inbox = collections.Counter(e.get("message_id") for e in fed.inbox())
    delivered = set(fed.delivered())
    res.check(f"{name}: while full, fi's inbox ({sum(inbox.values())}) has "
              f"every message ee counts as delivered ({len(delivered)}), "
              f"once each, nothing unknown",
              delivered <= set(inbox) and set(inbox) <= set(ids)
              and all(c == 1 for c in inbox.values()),
              f"delivered but not in inbox: {sorted(delivered - set(inbox))[:3]}"
              f"; unknown: {sorted(set(inbox) - set(ids))[:3]}; dups: "
              f"{[m for m, c in inbox.items() if c > 1][:3]}")

    remount_tmpfs(fi_data, BIG_TMPFS)
    check_exactly_once(res, name, fed, ids)
    res.check(f"{name}: ee and fi still run", fed.alive(SENDER)
              and fed.alive(RECEIVER),
              f"ee {fed.alive(SENDER)}, fi {fed.alive(RECEIVER)}")


# ------------------------------------------------------------------- run


WORKDIR = []  # the temporary directory of this run, for an interrupt


def run(tmp, res):
    WORKDIR.append(tmp)
    fed = Fed(os.path.join(tmp, "fed"))
    mounts = Mounts()
    body_file = os.path.join(tmp, "body.bin")
    with open(body_file, "wb") as f:
        f.write(os.urandom(BODY_BYTES))
    try:
        harness.create_federation(federation, fed.root, (SENDER, RECEIVER),
                                  BACKOFF)
        for scenario in (scenario_sender_full, scenario_receiver_full):
            try:
                scenario(res, fed, mounts, body_file)
            except Failure:
                pass
            # kontord must never report a conflicting duplicate.
            bad = [f"{n}: {l}" for n in (SENDER, RECEIVER)
                   for l in fed.log_lines(n) if LOG_PROBLEM_RE.search(l)]
            res.check(f"{scenario.__name__[9:]}: no conflict in the logs",
                      not bad, "; ".join(bad[:3]))
    finally:
        # No second interrupt while the nodes stop and the tmpfs go away.
        old = {s: signal.signal(s, signal.SIG_IGN)
               for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            if os.path.isdir(fed.root):
                try:
                    federation("stop", fed.root)
                except Exception as e:  # noqa: BLE001
                    res.check("federation.sh stop", False, str(e))
            problems = mounts.release()
            left = mounts_under(tmp)
            res.check("every tmpfs is unmounted at the end",
                      not problems and not left,
                      f"{problems}; still mounted: {left}")
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def main():
    reason = probe_mount()
    if reason is not None:
        print(f"SKIP disk_full: cannot mount tmpfs ({reason})", flush=True)
        return EXIT_SKIP

    harness.interrupt_on_signals()
    try:
        return harness.main(run, "kx-df.", federation)
    except KeyboardInterrupt:
        log("interrupted" + (f"; kept {WORKDIR[0]}" if WORKDIR else ""))
        return 130


if __name__ == "__main__":
    sys.exit(main())
