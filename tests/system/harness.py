"""What the Python system tests share: where the repository, federation.sh
and the binaries are, the PASS/FAIL counter with its closing
`N passed, M failed` line, polling, running federation.sh and the kontor CLI,
a federation directory's per-node files (FedDir), and the main() of a test
that runs one federation in a temporary directory. Standard library only.

The scripts import it from their own directory, after setting
sys.dont_write_bytecode (so that importing it leaves no __pycache__ behind):

    sys.dont_write_bytecode = True
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import harness
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
FEDERATION_SH = os.path.join(REPO, "deploy", "federation.sh")

EXIT_TRANSIENT = 75  # kontor: try again later (node down, disk full, ...)
# A short retry backoff for node.textproto, so that tests need not wait long.
BACKOFF = "backoff { initial_ms: 200 max_ms: 2000 }\n"


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


def interrupt_on_signals():
    """Makes SIGTERM and SIGINT raise KeyboardInterrupt (SIGINT also when
    started in the background, where it may be ignored)."""
    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pid_alive(pid):
    """True while any thread of process pid runs. After SIGKILL the thread
    group leader turns zombie first while its other threads still exit
    (slowly under AddressSanitizer), holding the open files (and the data
    directory's lock) until the last one is gone: that still counts as
    alive."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        tasks = [str(pid)]
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
        state = stat[stat.rfind(")") + 2:][:1]
        if state not in ("Z", "X", ""):
            return True
    return False


def one_line(stderr):
    """The only non-blank line of stderr, or None if there are more or none."""
    lines = [l for l in stderr.splitlines() if l.strip()]
    return lines[0] if len(lines) == 1 else None


# ------------------------------------------------------ federation.sh, CLI


def federation_sh(kontord, *args, timeout=120,
                  unset=("KONTOR_CRASH_AT", "KONTOR_NODE"), stderr_tail=None):
    """Runs deploy/federation.sh args with KONTORD=kontord and without the
    environment variables in unset; returns its stdout. Raises RuntimeError
    with its stderr (the last stderr_tail characters, if given) when it
    fails."""
    env = dict(os.environ, KONTORD=kontord)
    for name in unset:
        env.pop(name, None)
    r = subprocess.run([FEDERATION_SH, *args], env=env, capture_output=True,
                       stdin=subprocess.DEVNULL, text=True, timeout=timeout)
    if r.returncode != 0:
        err = r.stderr if stderr_tail is None else r.stderr[-stderr_tail:]
        raise RuntimeError(f"federation.sh {' '.join(args)} exited "
                           f"{r.returncode}:\n{err}")
    return r.stdout


def append_config(root, node, text):
    """Appends text to root/<node>/node.textproto."""
    with open(os.path.join(root, node, "node.textproto"), "a") as f:
        f.write(text)


def create_federation(federation, root, nodes, extra_config):
    """Creates the federation nodes in root with federation("start", ...),
    stops it again and appends extra_config to every node's config, so that
    the next start runs with it."""
    federation("start", root, *nodes)
    federation("stop", root)
    for n in nodes:
        append_config(root, n, extra_config)


def config_port(config_path):
    """The federation port of a node.textproto (its listen_address)."""
    with open(config_path) as f:
        text = f.read()
    m = re.search(r'^\s*listen_address:\s*"[^"]*:(\d+)"', text, re.M)
    return int(m.group(1))


def kontor_cli(kontor, socket, *args, json_out=True, timeout=60):
    """Runs `kontor --node socket [--json] args` (without $KONTOR_NODE):
    (exit code, stdout, stderr); the exit code is None if it did not answer
    within timeout seconds."""
    env = {k: v for k, v in os.environ.items() if k != "KONTOR_NODE"}
    cmd = [kontor, "--node", socket]
    if json_out:
        cmd.append("--json")
    try:
        r = subprocess.run(cmd + list(args), env=env,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", f"kontor {' '.join(args)}: no answer in {timeout} s"
    return r.returncode, r.stdout, r.stderr


def retry_transient(call, deadline_s, interval_s):
    """Calls call() -> (exit code, stdout, stderr) again while it exits 75
    (transient) or not at all (None), until deadline_s passed; returns the
    last result."""
    end = time.monotonic() + deadline_s
    while True:
        rc, out, err = call()
        if rc not in (EXIT_TRANSIENT, None) or time.monotonic() > end:
            return rc, out, err
        time.sleep(interval_s)


class FedDir:
    """A federation directory made by federation.sh: each node's files
    (config, pid, socket, log) and the kontor CLI against a node. Subclasses
    set cli_timeout and define query(node, *args) -> JSON."""

    cli_timeout = 60

    def __init__(self, root, kontor):
        self.root = root
        self.kontor = kontor

    def path(self, node, *rest):
        return os.path.join(self.root, node, *rest)

    def config(self, node):
        return self.path(node, "node.textproto")

    def port(self, node):
        return config_port(self.config(node))

    def pid(self, node):
        """The pid in node's kontord.pid, or None."""
        try:
            with open(self.path(node, "kontord.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def alive(self, node):
        pid = self.pid(node)
        return pid is not None and pid_alive(pid)

    def socket(self, node):
        with open(self.path(node, "socket")) as f:
            return f.read().strip()

    def log_lines(self, node):
        """node's kontord.log as lines ([] if there is none)."""
        try:
            with open(self.path(node, "kontord.log"), errors="replace") as f:
                return f.read().splitlines()
        except OSError:
            return []

    def mark(self, node):
        """A mark for new_lines: how many lines node's log has now."""
        return len(self.log_lines(node))

    def new_lines(self, node, mark):
        return self.log_lines(node)[mark:]

    def cli(self, node, *args, json_out=True, timeout=None):
        """Runs kontor against node: (exit code, stdout, stderr)."""
        return kontor_cli(self.kontor, self.socket(node), *args,
                          json_out=json_out,
                          timeout=self.cli_timeout if timeout is None
                          else timeout)

    def inbox_entries(self, node):
        return self.query(node, "inbox", "--limit", "100000").get(
            "entries", [])

    def peer(self, node, peer_id):
        """node's `kontor peers` entry for peer_id ({} if none)."""
        for p in self.query(node, "peers").get("peers", []):
            if p.get("id") == peer_id:
                return p
        return {}


class Federation(FedDir):
    """A FedDir that starts and stops its nodes with federation.sh (fed())
    and reads JSON answers (query(), retried while a node is briefly
    away)."""

    cli_timeout = 30

    def __init__(self, root, kontord, kontor):
        super().__init__(root, kontor)
        self.kontord = kontord

    def fed(self, *args):
        return federation_sh(self.kontord, *args, stderr_tail=2000)

    def query(self, node, *args):
        import json
        rc, out, err = retry_transient(lambda: self.cli(node, *args), 30, 0.2)
        if rc != 0:
            raise RuntimeError(f"kontor {' '.join(args)} on {node}: {rc} {err}")
        return json.loads(out)


def write_file(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def template(kontor, kind, *extra):
    """`kontor template KIND ...` (needs no node)."""
    rc, out, err = kontor_cli(kontor, "/nonexistent", "template", kind, *extra,
                              json_out=False)
    if rc != 0:
        raise RuntimeError(f"template {kind}: {rc} {err}")
    return out


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
