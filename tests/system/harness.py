"""What the Python system tests share: where the repository, federation.sh
and the binaries are, the PASS/FAIL counter with its closing
`N passed, M failed` line, polling, and the main() of a test that runs one
federation in a temporary directory. Standard library only.

The scripts import it from their own directory, after setting
sys.dont_write_bytecode (so that importing it leaves no __pycache__ behind):

    sys.dont_write_bytecode = True
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import harness
"""

import os
import shutil
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
FEDERATION_SH = os.path.join(REPO, "deploy", "federation.sh")


def binary(env_name, *candidates):
    """The executable named by $env_name, else the first candidate (relative
    to the repository) that exists; exits with a message otherwise."""
    path = os.environ.get(env_name)
    if path:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            sys.exit(f"{env_name}={path} is not an executable file")
        return os.path.abspath(path)
    for c in candidates:
        c = os.path.join(REPO, c)
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    sys.exit(f"set {env_name} (no {' or '.join(candidates)} in {REPO})")


def binaries():
    """(kontord, kontor): $KONTORD and $KONTOR, by default from build/."""
    kontord = binary("KONTORD", "build/daemon/kontord", "build/kontord")
    kontor = binary("KONTOR", "build/client/kontor", "build/kontor")
    return kontord, kontor


class Results:
    """Counts checks, printing one `PASS name` or `FAIL name: detail` line
    each; summary() prints `N passed, M failed` and returns the exit code."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    def summary(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 0 if self.failed == 0 else 1


def poll(fn, deadline_s, interval_s=0.1):
    """Calls fn until it returns something truthy or the deadline passes;
    returns the last value."""
    end = time.monotonic() + deadline_s
    while True:
        value = fn()
        if value or time.monotonic() >= end:
            return value
        time.sleep(interval_s)


def describe(err):
    """A grpc.RpcError (or None) in one line."""
    return "no error" if err is None else f"{err.code()}: {err.details()}"


def main(run, prefix, federation):
    """Runs run(tmp, results) in a new directory /tmp/<prefix>XXXX, in which
    run starts its federation as tmp/fed; a crash is a failed check. Then
    stops that federation with federation("stop", dir), removes the directory
    if nothing failed (unless $KEEP_TMP is set), prints the time taken and
    the summary, and returns the exit code."""
    res = Results()
    tmp = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    fed = os.path.join(tmp, "fed")
    started = time.monotonic()
    try:
        run(tmp, res)
    except Exception as e:  # noqa: BLE001 - any crash is a failed check
        traceback.print_exc()
        res.check("test ran to the end", False, f"{type(e).__name__}: {e}")
    finally:
        if os.path.isdir(fed):
            try:
                federation("stop", fed)
            except Exception as e:  # noqa: BLE001
                res.check("federation.sh stop", False, str(e))
    if res.failed == 0 and not os.environ.get("KEEP_TMP"):
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"kept {tmp} (logs: {fed}/*/kontord.log)")
    print(f"# {time.monotonic() - started:.1f} s")
    return res.summary()
