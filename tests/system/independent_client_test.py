#!/usr/bin/python3
"""Kontor's local API and CLI, checked with an independent gRPC client.

Starts a loopback federation `ee fi` with deploy/federation.sh and talks to
the nodes' unix sockets with Debian's python3-grpcio and stubs generated from
proto/ (not with the C++ code), then runs the kontor CLI on the same message.

Environment: KONTORD, KONTOR (the binaries; default: build/ of the repository),
KEEP_TMP=1 keeps the temporary directory even on success.
Prints one PASS/FAIL line per check and at the end `N passed, M failed`;
exits 0 only if nothing failed.
"""

import base64
import json
import os
import re
import subprocess
import sys

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import harness  # noqa: E402
import stubs  # noqa: E402
from harness import describe, one_line, poll  # noqa: E402

MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # limits.max_message_bytes of federation.sh
DELIVERY_DEADLINE_S = 60
RPC_TIMEOUT_S = 20


KONTORD, KONTOR = harness.binaries()


def federation(*args, timeout=90):
    return harness.federation_sh(KONTORD, *args, timeout=timeout, unset=())


def sockets_from_exports(out):
    """Parses `export KONTOR_NODE=<path>  # <node>` lines."""
    socks = {}
    for line in out.splitlines():
        if not line.startswith("export KONTOR_NODE="):
            continue
        value, _, node = line[len("export KONTOR_NODE="):].partition("  # ")
        socks[node.strip()] = value.strip()
    return socks


def kontor(*args, timeout=60):
    """Runs the CLI; returns (exit code, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if k != "KONTOR_NODE"}
    r = subprocess.run([KONTOR, *args], env=env, capture_output=True,
                       text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def rpc_error(fn):
    """Runs fn; returns the grpc.RpcError it raised, or None."""
    try:
        fn()
    except grpc.RpcError as e:
        return e
    return None


def run(tmp, res):
    pb = stubs.load(os.path.join(tmp, "stubs"))
    local_grpc = pb.local_pb2_grpc
    fed = os.path.join(tmp, "fed")

    out = federation("start", fed, "ee", "fi")
    socks = sockets_from_exports(out)
    if not res.check("federation.sh start prints one export line per node",
                     set(socks) == {"ee", "fi"}, repr(out)):
        return

    ee_ch = grpc.insecure_channel("unix:" + socks["ee"])
    fi_ch = grpc.insecure_channel("unix:" + socks["fi"])
    try:
        run_reflection(res, ee_ch, fed, tmp)
        run_local_api(res, pb, local_grpc.LocalStub(ee_ch),
                      local_grpc.LocalStub(fi_ch), socks, tmp)
    finally:
        ee_ch.close()
        fi_ch.close()


def federation_address(fed, node):
    with open(os.path.join(fed, node, "node.textproto")) as f:
        m = re.search(r'^listen_address: "([^"]+)"', f.read(), re.M)
    return m.group(1)


def run_reflection(res, local_ch, fed, tmp):
    """Server reflection lists the local API (for grpc_cli-style tools and
    integrators), and describes its methods; the federation port, which
    peers use, does not offer it."""
    rpb, rgrpc = stubs.load_reflection(os.path.join(tmp, "reflection"))

    def ask(channel, **request):
        stub = rgrpc.ServerReflectionStub(channel)
        replies = list(stub.ServerReflectionInfo(
            iter([rpb.ServerReflectionRequest(**request)]),
            timeout=RPC_TIMEOUT_S))
        return replies[0] if replies else None

    try:
        listed = ask(local_ch, list_services="")
    except grpc.RpcError as e:
        res.check("reflection on the local socket lists services", False,
                  describe(e))
        return
    names = sorted(s.name for s in listed.list_services_response.service)
    res.check("reflection on the local socket lists kontor.v1.Local",
              "kontor.v1.Local" in names, repr(names))
    res.check("reflection does not list the federation service there",
              "kontor.v1.Federation" not in names, repr(names))

    described = ask(local_ch, file_containing_symbol="kontor.v1.Local")
    from google.protobuf import descriptor_pb2
    methods = set()
    for raw in described.file_descriptor_response.file_descriptor_proto:
        fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
        for svc in fd.service:
            if fd.package == "kontor.v1" and svc.name == "Local":
                methods.update(m.name for m in svc.method)
    res.check("reflection describes kontor.v1.Local's methods "
              "(Submit, Inbox, Watch, Export ...)",
              {"Submit", "Inbox", "Show", "Watch", "Export"} <= methods,
              repr(sorted(methods)))

    # The federation port, as peer ee would connect to fi.
    pki = os.path.join(fed, "pki")

    def read(*parts):
        with open(os.path.join(pki, *parts), "rb") as f:
            return f.read()

    creds = grpc.ssl_channel_credentials(
        root_certificates=read("ca", "federation-ca.crt"),
        private_key=read("ee", "tls.key"),
        certificate_chain=read("ee", "tls.crt"))
    ch = grpc.secure_channel(
        federation_address(fed, "fi"), creds,
        options=[("grpc.ssl_target_name_override", "localhost")])
    try:
        err = rpc_error(lambda: ask(ch, list_services=""))
    finally:
        ch.close()
    res.check("the federation port does not offer reflection (UNIMPLEMENTED)",
              err is not None and err.code() == grpc.StatusCode.UNIMPLEMENTED,
              describe(err))


def run_local_api(res, pb, ee, fi, socks, tmp):
    env_pb, local_pb = pb.envelope_pb2, pb.local_pb2
    body = b"independent client \x00\xff\xfe " + os.urandom(16)
    client_key = "independent-" + os.urandom(8).hex()
    payload = env_pb.Payload(kind="note", subject="from grpcio",
                             case_ref="CASE-IC-1", body=body,
                             content_type="application/octet-stream")
    submit = local_pb.SubmitRequest(to=["fi"], priority=env_pb.URGENT,
                                    payload=payload, client_key=client_key)

    # Submit, then the idempotency rules.
    first = ee.Submit(submit, timeout=RPC_TIMEOUT_S)
    msg_id = first.message_id
    res.check("Submit returns a message id, not a duplicate",
              len(msg_id) == 36 and not first.duplicate, str(first))
    again = ee.Submit(submit, timeout=RPC_TIMEOUT_S)
    res.check("Submit with the same client key returns the same id, duplicate=True",
              again.message_id == msg_id and again.duplicate, str(again))

    changed = local_pb.SubmitRequest()
    changed.CopyFrom(submit)
    changed.payload.body = body + b" but different"
    err = rpc_error(lambda: ee.Submit(changed, timeout=RPC_TIMEOUT_S))
    res.check("same client key, different body -> ALREADY_EXISTS",
              err is not None and err.code() == grpc.StatusCode.ALREADY_EXISTS,
              describe(err))

    unknown = local_pb.SubmitRequest(
        to=["zz"], payload=env_pb.Payload(kind="note", body=b"to nobody"))
    err = rpc_error(lambda: ee.Submit(unknown, timeout=RPC_TIMEOUT_S))
    res.check("unknown recipient -> INVALID_ARGUMENT",
              err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT,
              describe(err))

    big = local_pb.SubmitRequest(
        to=["fi"], payload=env_pb.Payload(kind="note",
                                          body=b"x" * (MAX_MESSAGE_BYTES + 1)))
    err = rpc_error(lambda: ee.Submit(big, timeout=RPC_TIMEOUT_S))
    res.check("body over the 4 MiB limit -> INVALID_ARGUMENT",
              err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT,
              describe(err))

    # Delivery, with the recipient's receipt.
    status = local_pb.StatusRequest(message_id=msg_id)
    st = poll(lambda: (lambda s: s if s.state == "delivered" else None)(
        ee.Status(status, timeout=RPC_TIMEOUT_S)), DELIVERY_DEADLINE_S)
    if not res.check(f"Status reaches 'delivered' within {DELIVERY_DEADLINE_S} s",
                     st is not None,
                     str(ee.Status(status, timeout=RPC_TIMEOUT_S))):
        return
    d = list(st.deliveries)
    res.check("Status has one delivery, to fi",
              len(d) == 1 and d[0].recipient == "fi", str(st))
    if d:
        receipt, rbody = env_pb.Receipt(), env_pb.ReceiptBody()
        try:
            receipt.ParseFromString(d[0].receipt)
            rbody.ParseFromString(receipt.body)
            parsed = bool(d[0].receipt)
        except Exception:  # noqa: BLE001 - DecodeError
            parsed = False
        res.check("delivery has a receipt signed by fi (receipt_signer == 'fi')",
                  parsed and d[0].receipt_signer == "fi" and
                  rbody.verdict == env_pb.ACCEPTED and rbody.recipient == "fi" and
                  rbody.origin == "ee" and rbody.message_id == msg_id,
                  f"receipt_signer={d[0].receipt_signer!r} body={rbody}")
    res.check("Status priority is URGENT", st.priority == env_pb.URGENT, str(st))

    # The recipient's side.
    inbox = fi.Inbox(local_pb.InboxRequest(), timeout=RPC_TIMEOUT_S)
    entries = [e for e in inbox.entries if e.message_id == msg_id]
    res.check("fi Inbox lists the message, from ee, unacked",
              len(entries) == 1 and entries[0].origin == "ee" and
              entries[0].kind == "note" and entries[0].subject == "from grpcio" and
              not entries[0].acked, str(inbox))
    seq = entries[0].seq if entries else 0

    shown = fi.Show(local_pb.ShowRequest(message_id=msg_id), timeout=RPC_TIMEOUT_S)
    res.check("fi Show returns the exact body bytes",
              shown.payload.body == body,
              f"{len(shown.payload.body)} bytes, want {len(body)}")
    res.check("fi Show returns kind, subject, case_ref, content_type",
              shown.payload.kind == "note" and shown.payload.subject == "from grpcio"
              and shown.payload.case_ref == "CASE-IC-1" and
              shown.payload.content_type == "application/octet-stream",
              str(shown.payload).replace("\n", " ")[:300])
    res.check("fi Show: signer ee, recipients [fi]",
              shown.signer == "ee" and list(shown.recipients) == ["fi"],
              f"signer={shown.signer!r} recipients={list(shown.recipients)}")

    ack = fi.Ack(local_pb.AckRequest(message_id=msg_id), timeout=RPC_TIMEOUT_S)
    res.check("fi Ack (first time: already=False)", not ack.already, str(ack))
    ack2 = fi.Ack(local_pb.AckRequest(message_id=msg_id), timeout=RPC_TIMEOUT_S)
    res.check("fi Ack again: already=True", ack2.already, str(ack2))
    unread = fi.Inbox(local_pb.InboxRequest(unread_only=True), timeout=RPC_TIMEOUT_S)
    res.check("fi Inbox --unread no longer lists it",
              all(e.message_id != msg_id for e in unread.entries), str(unread))

    # Watch from the start: the message comes (acked or not), then cancel.
    call = fi.Watch(local_pb.WatchRequest(since_seq=0), timeout=RPC_TIMEOUT_S)
    got = None
    try:
        for item in call:
            if item.message_id == msg_id:
                got = item
                break
    except grpc.RpcError as e:
        res.check("fi Watch(since_seq=0) streams the message", False, describe(e))
    else:
        res.check("fi Watch(since_seq=0) streams the message",
                  got is not None and got.seq == seq and got.origin == "ee",
                  f"got {got}")
    finally:
        call.cancel()

    run_cli(res, pb, ee, fi, socks, tmp, msg_id, body)


def run_cli(res, pb, ee, fi, socks, tmp, msg_id, body):
    local_pb = pb.local_pb2

    def json_of(name, rc, out, err):
        try:
            doc = json.loads(out)
        except ValueError as e:
            res.check(f"kontor {name} --json prints one JSON document", False,
                      f"rc={rc} {e}: {out[:200]!r} stderr={err!r}")
            return None
        res.check(f"kontor {name} --json: exit 0 and JSON", rc == 0,
                  f"rc={rc} stderr={err!r}")
        return doc

    rc, out, err = kontor("--node", socks["ee"], "--json", "status", msg_id)
    doc = json_of("status", rc, out, err)
    if doc is not None:
        dl = doc.get("deliveries") or [{}]
        res.check("kontor status: delivered, receipt by fi",
                  doc.get("message_id") == msg_id and doc.get("state") == "delivered"
                  and dl[0].get("receipt_signer") == "fi" and
                  bool(dl[0].get("receipt")), out[:300])

    rc, out, err = kontor("--node", socks["fi"], "--json", "show", msg_id)
    doc = json_of("show", rc, out, err)
    if doc is not None:
        p = doc.get("payload", {})
        try:
            cli_body = base64.b64decode(p.get("body_base64", ""), validate=True)
        except ValueError:
            cli_body = None
        res.check("kontor show: same body bytes, kind and subject",
                  cli_body == body and p.get("kind") == "note" and
                  p.get("subject") == "from grpcio", out[:300])

    rc, out, err = kontor("--node", socks["fi"], "--json", "inbox")
    doc = json_of("inbox", rc, out, err)
    if doc is not None:
        res.check("kontor inbox lists it, acked",
                  any(e.get("message_id") == msg_id and e.get("acked") is True
                      for e in doc.get("entries", [])), out[:300])

    # A message sent by the CLI, read back with grpcio on the other node.
    body_file = os.path.join(tmp, "cli-body.bin")
    cli_body = b"sent by the CLI \x00\x01\x02\xff" + os.urandom(8)
    with open(body_file, "wb") as f:
        f.write(cli_body)
    rc, out, err = kontor("--node", socks["ee"], "--json", "send", "--to", "fi",
                          "--kind", "note", "--subject", "cli", "--body-file",
                          body_file)
    doc = json_of("send", rc, out, err)
    cli_id = (doc or {}).get("message_id") if isinstance(doc, dict) else None
    res.check("kontor send --json names the message id",
              isinstance(cli_id, str) and len(cli_id) == 36, out[:200])
    if cli_id:
        def shown():
            try:
                return fi.Show(local_pb.ShowRequest(message_id=cli_id),
                               timeout=RPC_TIMEOUT_S)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.NOT_FOUND:
                    return None
                raise
        s = poll(shown, DELIVERY_DEADLINE_S)
        res.check("message sent by the CLI arrives at fi with the exact bytes",
                  s is not None and s.payload.body == cli_body and
                  s.payload.subject == "cli", str(s)[:300])

    # Exit codes.
    rc, out, err = kontor("--node", socks["fi"], "--json", "show",
                          "6f1c2a4e-9b7d-4c3e-8a21-0d5e6f7a8b9c")
    res.check("kontor show <unknown uuid> -> exit 3, one-line error",
              rc == 3 and one_line(err) is not None, f"rc={rc} stderr={err!r}")
    rc, out, err = kontor("--node", socks["ee"], "--json", "send", "--kind",
                          "note", "--body-file", body_file)
    res.check("kontor send without --to -> exit 2, one-line error",
              rc == 2 and one_line(err) is not None, f"rc={rc} stderr={err!r}")
    rc, out, err = kontor("--node", "/tmp/nonexistent.sock", "--json", "status",
                          msg_id)
    res.check("kontor --node /tmp/nonexistent.sock status -> exit 75, one-line error",
              rc == 75 and one_line(err) is not None, f"rc={rc} stderr={err!r}")


if __name__ == "__main__":
    sys.exit(harness.main(run, "kx-ic.", federation))
