#!/usr/bin/env python3
"""Large attachments between real kontord processes (ee -> fi).

1. A 256 MiB attachment (KONTOR_ATTACH_MIB to change) goes ee -> fi while fi
   is SIGKILLed once mid-transfer: the transfer resumes (ee's log says how
   many chunks fi had already), the message is delivered once, and
   `kontor show --save-attachments` writes the exact bytes. Each node's peak
   RSS (VmHWM) stays under 150 MB.
2. A chunk file altered on fi's disk: `show --save-attachments` fails, and
   neither the file nor a .part is left behind.
3. An attachment over ee's limits.max_attachment_bytes is refused at submit
   (exit 2, naming the limit); nothing is queued.

    KONTORD=... KONTOR=... tests/system/attachment_test.py
"""

import glob
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MIB = int(os.environ.get("KONTOR_ATTACH_MIB", "256"))
RSS_LIMIT_KB = 150 * 1024


class Fed(harness.FedDir):
    cli_timeout = 600

    def __init__(self, root, kontord, kontor):
        super().__init__(root, kontor)
        self.kontord = kontord

    def fed(self, *args):
        return harness.federation_sh(self.kontord, *args)

    def query(self, node, *args):
        rc, out, err = harness.retry_transient(
            lambda: self.cli(node, *args, timeout=60), 60, 0.2)
        if rc != 0:
            raise RuntimeError(f"kontor {' '.join(args)} on {node}: {rc} {err}")
        return json.loads(out)

    def vm_hwm_kb(self, node):
        with open(f"/proc/{self.pid(node)}/status") as f:
            m = re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M)
        return int(m.group(1))


def make_file(path, mib):
    """mib MiB of pseudo-random bytes (written 1 MiB at a time); its SHA-256."""
    h = hashlib.sha256()
    seed = os.urandom(32)
    with open(path, "wb") as f:
        for i in range(mib):
            block = hashlib.shake_256(seed + i.to_bytes(4, "big")).digest(1 << 20)
            h.update(block)
            f.write(block)
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def staged_chunks(fed, node):
    # Chunks come into staged/ and move to in/ with their envelope.
    return sum(len(glob.glob(fed.path(node, "data", "attachments", d, "*", "*",
                                      "*", "*.chunk")))
               for d in ("staged", "in"))


def run_large(res, fed, tmp):
    src = os.path.join(tmp, "evidence.bin")
    digest = make_file(src, MIB)
    mark_ee = fed.mark("ee")
    result = {}

    def send():
        t0 = time.monotonic()
        result["send"] = fed.cli("ee", "send", "--to", "fi", "--kind", "note",
                                 "--subject", "large", "--body-file",
                                 os.path.join(tmp, "body.txt"), "--attach",
                                 src, timeout=900)
        result["submit_s"] = time.monotonic() - t0
    with open(os.path.join(tmp, "body.txt"), "w") as f:
        f.write("see the attachment")
    t0 = time.monotonic()
    send()
    rc, out, err = result["send"]
    if not res.check(f"ee accepts a {MIB} MiB attachment", rc == 0, err):
        return
    msg = json.loads(out)["message_id"]
    print(f"# upload + encrypt + submit: {result['submit_s']:.1f} s", flush=True)
    # fi dies once while the chunks come in, and comes back.
    got = harness.poll(lambda: staged_chunks(fed, "fi") >= min(MIB // 4, 40),
                       120, 0.05)
    before = staged_chunks(fed, "fi")
    os.kill(fed.pid("fi"), signal.SIGKILL)
    res.check("fi SIGKILLed mid-transfer (some chunks there, not all)",
              got and before < MIB, f"{before} of {MIB} chunks staged")
    time.sleep(0.5)
    fed.fed("start", fed.root, "fi")
    st = harness.poll(lambda: (lambda s: s if s["state"] == "delivered" else None)(
        fed.query("ee", "status", msg)), 600, 0.5) or fed.query("ee", "status", msg)
    transfer_s = time.monotonic() - t0
    res.check("delivered, with fi's receipt", st["state"] == "delivered" and
              st["deliveries"][0]["receipt_signer"] == "fi", json.dumps(st)[:300])
    print(f"# submit to delivered (one receiver kill): {transfer_s:.1f} s",
          flush=True)
    resumed = [l for l in fed.new_lines("ee", mark_ee)
               if "attachment chunks of " + msg in l and "there already" in l]
    counts = [int(m.group(1)) for l in resumed
              for m in [re.search(r"\((\d+) there already\)", l)] if m]
    res.check("the transfer resumed: a later send found chunks already at fi",
              any(c > 0 for c in counts), "\n".join(resumed[-3:]))
    out_dir = os.path.join(tmp, "saved")
    os.mkdir(out_dir)
    t1 = time.monotonic()
    rc, out, err = fed.cli("fi", "show", msg, "--save-attachments", out_dir,
                           json_out=False, timeout=900)
    print(f"# show --save-attachments: {time.monotonic() - t1:.1f} s", flush=True)
    saved = os.path.join(out_dir, "evidence.bin")
    res.check("show --save-attachments writes the exact bytes",
              rc == 0 and os.path.exists(saved) and sha256_file(saved) == digest,
              err or out[-300:])
    res.check("the saved file is private (0600)",
              os.path.exists(saved) and (os.stat(saved).st_mode & 0o077) == 0,
              oct(os.stat(saved).st_mode) if os.path.exists(saved) else "")
    entries = [e for e in fed.inbox_entries("fi") if e["message_id"] == msg]
    res.check("fi's inbox has it exactly once", len(entries) == 1, str(entries))
    for node in ("ee", "fi"):
        kb = fed.vm_hwm_kb(node)
        print(f"# {node} peak RSS (VmHWM): {kb / 1024:.1f} MiB", flush=True)
        if os.environ.get("KONTOR_SANITIZED"):
            # AddressSanitizer's shadow memory and quarantine are not the
            # node's: the bound is checked in the plain build.
            print(f"# {node}: peak RSS not checked under a sanitizer")
            continue
        res.check(f"{node}'s peak RSS stays under 150 MB", kb < RSS_LIMIT_KB,
                  f"{kb} kB")
    os.unlink(saved)
    os.unlink(src)
    return msg


def run_tampered_chunk(res, fed, tmp, msg):
    chunks = sorted(glob.glob(fed.path("fi", "data", "attachments", "in", "ee",
                                       msg, "0", "*.chunk")))
    if not res.check("fi keeps the chunk files", bool(chunks), ""):
        return
    victim = chunks[len(chunks) // 2]
    with open(victim, "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0x40]))
    out_dir = os.path.join(tmp, "saved-bad")
    os.mkdir(out_dir)
    rc, out, err = fed.cli("fi", "show", msg, "--save-attachments", out_dir,
                           json_out=False, timeout=900)
    res.check("an altered chunk: show --save-attachments fails",
              rc not in (0, None), f"exit {rc}: {err}")
    res.check("...and leaves neither the file nor a .part",
              os.listdir(out_dir) == [], str(os.listdir(out_dir)))


def run_too_large(res, fed, tmp):
    path = fed.config("ee")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(re.sub(r"limits\s*{", "limits { max_attachment_bytes: 1048576",
                       text, count=1))
    fed.fed("restart", fed.root, "ee")
    big = os.path.join(tmp, "two-mib.bin")
    make_file(big, 2)
    before = fed.query("ee", "outbox")
    dirs_before = set(glob.glob(fed.path("ee", "data", "attachments", "out",
                                         "*")))
    rc, out, err = fed.cli("ee", "send", "--to", "fi", "--kind", "note",
                           "--subject", "too big", "--body-file",
                           os.path.join(tmp, "body.txt"), "--attach", big)
    res.check("over limits.max_attachment_bytes: exit 2, naming the limit",
              rc == 2 and "limits.max_attachment_bytes" in err, f"{rc}: {err}")
    res.check("...and nothing is queued", fed.query("ee", "outbox") == before,
              "")
    leftovers = sorted(set(glob.glob(fed.path("ee", "data", "attachments",
                                              "out", "*"))) - dirs_before)
    res.check("...and no chunk files are left behind", not leftovers,
              str(leftovers[:3]))


def run(tmp, res):
    kontord, kontor = harness.binaries()
    root = os.path.join(tmp, "fed")
    fed = Fed(root, kontord, kontor)
    harness.create_federation(fed.fed, root, ["ee", "fi"], harness.BACKOFF)
    fed.fed("start", root, "ee", "fi")
    msg = run_large(res, fed, tmp)
    if msg:
        run_tampered_chunk(res, fed, tmp, msg)
    run_too_large(res, fed, tmp)


if __name__ == "__main__":
    sys.exit(harness.main(run, "kontor-attach.",
                          lambda *a: harness.federation_sh(
                              harness.binaries()[0], *a)))
