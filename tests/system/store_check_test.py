#!/usr/bin/python3
"""A damaged store is never started on, nor silently reset (issue 11).

A loopback federation `ee fi`; ee sends a few messages and is SIGKILLed, so
that its store has a write-ahead log. Then, on copies of ee's data
directory: a page of kontor.db overwritten, the log's header damaged, the
log cut in the middle of a frame, the key file missing. For each: what
`kontord --config` does (refuses with a message naming the file and what to
do, changing nothing; or, for a log that ends in a partial frame, what a
crash during a write leaves, starts with a warning) and what
`kontord --check-store` reports.

Environment: KONTORD, KONTOR (default: build/ of the repository),
KEEP_TMP=1. Prints PASS/FAIL lines and `N passed, M failed`.
"""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import harness  # noqa: E402


def digests(d):
    out = {}
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        # The lock and SQLite's -shm index (derived from the log) aside.
        # (An empty -wal is what SQLite makes on opening; nothing in it.)
        if os.path.isfile(p) and name != "kontord.lock" and \
                not name.endswith("-shm") and os.path.getsize(p) > 0:
            out[name] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def run(tmp, res):
    kontord, kontor = harness.binaries()
    root = os.path.join(tmp, "fed")
    fed = harness.Federation(root, kontord, kontor)
    fed.fed("start", root, "ee", "fi")
    body = harness.write_file(os.path.join(tmp, "b.txt"), "hello\n")
    for i in range(20):
        rc, out, err = fed.cli("ee", "send", "--to", "fi", "--kind", "note",
                               "--subject", f"s{i}", "--body-file", body)
        if rc != 0:
            raise RuntimeError(err)
    os.kill(fed.pid("ee"), signal.SIGKILL)  # no checkpoint: a log is left
    time.sleep(0.5)
    data = fed.path("ee", "data")
    wal = os.path.join(data, "kontor.db-wal")
    res.check("after SIGKILL ee's store has a write-ahead log",
              os.path.exists(wal) and os.path.getsize(wal) > 32)
    good = os.path.join(tmp, "good")
    shutil.copytree(data, good)
    config = fed.config("ee")

    def kontord_run(*args, timeout=15):
        try:
            r = subprocess.run([kontord, *args], capture_output=True,
                               text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
            return r.returncode, r.stdout, r.stderr
        except subprocess.TimeoutExpired as e:
            return None, e.stdout or "", e.stderr or ""

    def scenario(name, damage):
        shutil.rmtree(data)
        shutil.copytree(good, data)
        damage()
        return digests(data)

    def page(path, number, size=4096):
        with open(path, "r+b") as f:
            f.seek(size * (number - 1))
            f.write(os.urandom(size))

    rc, out, err = kontord_run("--check-store", "--config", config)
    res.check("--check-store: a sound store (exit 0)", rc == 0 and
              "sound" in out, f"{rc} {out} {err}")

    def overwrite_checkpointed_page():
        # The log checkpointed first (as a clean stop does), so that the
        # page read is the one damaged on disk.
        import sqlite3
        db = sqlite3.connect(os.path.join(data, "kontor.db"))
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        page(os.path.join(data, "kontor.db"), 4)

    refusals = (
        ("a page of kontor.db overwritten", "kontor.db",
         overwrite_checkpointed_page),
        ("the write-ahead log's header damaged", "kontor.db-wal",
         lambda: page(wal, 1, 32)),
        ("the key file missing", "kontor.keys",
         lambda: [os.unlink(os.path.join(data, f)) for f in os.listdir(data)
                  if f.startswith("kontor.keys")]),
    )
    for what, file, damage in refusals:
        before = scenario(what, damage)
        rc, out, err = kontord_run("--config", config)
        first = ([l for l in err.splitlines() if l.startswith("kontord: ")]
                 or [""])[0]
        res.check(f"{what}: kontord refuses to start (exit 1), naming "
                  f"{file} and what to do",
                  rc == 1 and file in first and
                  ("restore" in first or "backup" in first), f"{rc} {first}")
        after = digests(data)
        res.check(f"{what}: nothing was changed or made anew",
                  after == before, f"{sorted(before)} -> {sorted(after)}")
        rc, out, err = kontord_run("--check-store", "--config", config)
        res.check(f"{what}: --check-store reports it (exit 1)",
                  rc == 1 and "DAMAGED" in out and file in out,
                  f"{rc} {out} {err}")

    # A log that ends in a partial frame: what a crash in a write leaves.
    def cut():
        size = os.path.getsize(wal)
        with open(wal, "r+b") as f:
            f.truncate(size - 100)
    scenario("cut", cut)
    rc, out, err = kontord_run("--check-store", "--config", config)
    res.check("a log cut in a frame: --check-store notes it, store sound",
              rc == 0 and "partial frame" in out, f"{rc} {out} {err}")
    mark = fed.mark("ee")
    fed.fed("start", root, "ee")
    warn = [l for l in fed.new_lines("ee", mark)
            if " WARN " in l and "partial frame" in l]
    res.check("... kontord starts, with a warning naming the log",
              bool(warn) and "kontor.db-wal" in warn[0],
              "\n".join(fed.new_lines("ee", mark)[-5:]))
    rc, out, err = fed.cli("ee", "audit", "verify", "--local")
    res.check("... and its audit chain verifies", rc == 0, err)


if __name__ == "__main__":
    sys.exit(harness.main(run, "kontor-storecheck.",
                          lambda *a: harness.federation_sh(
                              harness.binaries()[0], *a)))
