#!/usr/bin/env python3
"""Message kinds, roles, per-peer policy and the audit log, with real
processes (deploy/federation.sh: ee, fi, ua).

1. Kinds: `kontor template K` for every kind is sent as it is (reply kinds
   with --in-reply-to) and shown rendered on the recipient; validation
   errors exit 2 with one line naming the field as in the template;
   legacy source reliability D is stored as X.
2. Threads: a referral ee -> fi and fi's referral.response come out of
   `kontor thread CASE` on both nodes, in order, both directions.
3. Per-peer policy: ee may send ua only referral kinds (refused at submit);
   fi accepts only referral kinds from ua: ua's intel.report is `rejected`
   at ua with fi's signed reason, never retried, audited at fi, not in
   fi's inbox.
4. Roles on ee's operator mTLS port (operator CA only): a coordinator sends
   referrals but not intelligence nor flash, and not the audit log; a
   liaison sends intelligence but cannot read the coordinator's referral;
   idempotency keys are per user; ee's own node certificate is not a user.
5. Retention: fi keeps referrals 30 days; with their receipt time moved
   back 31 days (sqlite, node stopped), `kontor purge --dry-run` lists them
   and changes nothing, `kontor purge` removes their content (show says
   purged; the inner signature and subject are gone from the database),
   keeps metadata and receipts, and audits each erasure.
6. Audit: no content in the log; the chain recomputed here with hashlib
   matches; one edited record, a consistently rewritten chain, and a
   truncated log each make `kontor audit verify` fail (exit 1), naming the
   record, the rewrite (peer witness) or the truncation.

    KONTORD=... KONTOR=... tests/system/kinds_test.py
"""

import hashlib
import json
import os
import re
import socket
import sqlite3
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
MAKE_PKI = os.path.join(REPO, "certs-example", "make-pki.sh")
REFERRAL_KINDS = ["referral.consult", "referral", "referral.response",
                  "case.update", "consent.update", "erase.notice",
                  "restriction.update", "note"]
ALL_KINDS = ["note", "referral.consult", "referral", "referral.response",
             "case.update", "consent.update", "intel.report",
             "intel.request", "intel.response", "incident.report", "sitrep",
             "alert", "restriction.update", "erase.notice"]


class Fed(harness.Federation):
    def db(self, node):
        return os.path.join(self.root, node, "data", "kontor.db")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


write = harness.write_file


def template(fed, kind, *extra):
    return harness.template(fed.kontor, kind, *extra)


def send_json(fed, node, to, text, tmp, *extra, kontor_args=None):
    path = write(os.path.join(tmp, f"payload-{time.monotonic_ns()}.json"),
                 text)
    if kontor_args is None:
        return fed.cli(node, "send", "--to", to, "--payload-json", path,
                       *extra)
    return run_kontor(fed.kontor, kontor_args, "send", "--to", to,
                      "--payload-json", path, *extra)


def run_kontor(kontor, conn, *args):
    env = {k: v for k, v in os.environ.items() if k != "KONTOR_NODE"}
    r = subprocess.run([kontor, *conn, "--json", *args], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def wait_state(fed, node, mid, states, deadline=30):
    last = {}

    def done():
        nonlocal last
        rc, out, _ = fed.cli(node, "status", mid)
        if rc == 0:
            last = json.loads(out)
            return last.get("state") in states
        return False
    harness.poll(done, deadline, 0.1)
    return last


# ------------------------------------------------------------------ kinds


def run_kinds(res, fed, tmp):
    # Every kind's template, as it is, ee -> fi.
    ids = {}
    for kind in ALL_KINDS:
        extra = []
        if kind == "referral.response":
            extra = ["--in-reply-to", ids["referral"]]
        if kind == "consent.update":
            # The template withdraws consent, which erases the referral it
            # names everywhere: a referral of its own.
            rc, out, err = send_json(fed, "ee", "fi", template(fed, "referral"),
                                     tmp)
            ids["withdrawn"] = json.loads(out)["message_id"] if rc == 0 else ""
            extra = ["--in-reply-to", ids["withdrawn"]]
        if kind == "intel.response":
            extra = ["--in-reply-to", ids["intel.request"]]
        if kind == "erase.notice":
            # An erase order names a message this node sent: the note.
            extra = ["--in-reply-to", ids["note"]]
        text = template(fed, kind, *extra)
        if kind == "note":
            rc, out, err = fed.cli("ee", "send", "--to", "fi", "--kind", "note",
                                   "--subject", "n", "--body-file",
                                   write(os.path.join(tmp, "b"), "hi\n"))
        else:
            rc, out, err = send_json(fed, "ee", "fi", text, tmp)
        res.check(f"template {kind} is sent as it is (exit 0)", rc == 0,
                  f"rc={rc} {err.strip()[:300]}")
        if rc == 0:
            ids[kind] = json.loads(out)["message_id"]
    for kind in ("referral", "intel.report", "alert"):
        if kind not in ids:
            continue
        st = wait_state(fed, "ee", ids[kind], {"delivered"})
        res.check(f"{kind} delivered to fi", st.get("state") == "delivered",
                  json.dumps(st)[:300])
    if "alert" in ids:
        st = fed.query("ee", "status", ids["alert"])
        res.check("an alert goes out flash by default",
                  st.get("priority") == "flash", json.dumps(st)[:200])
    if "referral" in ids:
        rc, out, err = fed.cli("fi", "show", ids["referral"], json_out=False)
        res.check("fi: show renders the referral for people",
                  rc == 0 and "Exploitation type: labour" in out and
                  "Consent:" in out and "Handling: H2" in out, out[:800])
        shown = fed.query("fi", "show", ids["referral"])
        res.check("fi: show --json has the typed referral",
                  shown.get("payload", {}).get("referral", {}).get(
                      "person", {}).get("category") == "victim",
                  json.dumps(shown)[:400])

    if "consent.update" in ids:
        wait_state(fed, "ee", ids["consent.update"], {"delivered"})
        rc, out, err = fed.cli("fi", "show", ids["withdrawn"], json_out=False)
        res.check("consent withdrawn: fi erased the referral it names",
                  rc == 0 and "content erased" in out and "Tamm" not in out,
                  out[:600])

    # Validation errors: exit 2, one line, the template's field name.
    ref = template(fed, "referral")
    no_consent = re.sub(r'"consent": \{[^}]*\},?', "", ref, flags=re.S)
    cases = [
        ("identified referral without consent", "referral", no_consent,
         "referral.consent"),
        ("H3 without its text", "referral",
         ref.replace('"handling": "H2"', '"handling": "H3"'),
         "markings.handling_text"),
        ("intel.request without due_by", "intel.request",
         re.sub(r'"due_by": "[^"]*",?', "", template(fed, "intel.request")),
         "intel_request.due_by"),
        ("referral.response to an unknown referral", "referral.response",
         template(fed, "referral.response", "--in-reply-to",
                  "0b6a2b56-1d2c-4b0e-9a57-4c1f1f3c1e11"), "in_reply_to"),
        ("unknown field", "referral", ref.replace('"exploitation_type"',
                                                  '"exploitaton_type"'),
         "exploitaton_type"),
        ("tlp not a TLP 2.0 label", "referral",
         ref.replace('"tlp": "AMBER"', '"tlp": "ORANGE"'), "markings.tlp"),
    ]
    for name, kind, text, field in cases:
        rc, out, err = send_json(fed, "ee", "fi", text, tmp)
        line = harness.one_line(err) or ""
        res.check(f"invalid: {name} -> exit 2 naming {field}",
                  rc == 2 and field in line and "kontor.v1" not in line and
                  "proto" not in line.lower(), f"rc={rc} err={err!r}")
    # A consultation carries no identifiers, so no files either.
    consult = template(fed, "referral.consult")
    rc, out, err = send_json(fed, "ee", "fi", consult, tmp, "--attach",
                             write(os.path.join(tmp, "scan.txt"), "x"))
    res.check("invalid: referral.consult with an attachment -> exit 2",
              rc == 2 and "attachments" in err, f"rc={rc} err={err!r}")
    # Legacy D is stored as X.
    intel = template(fed, "intel.report")
    intel = re.sub(r'"source_reliability": "[A-Z]"',
                   '"source_reliability": "D"', intel)
    rc, out, err = send_json(fed, "ee", "fi", intel, tmp)
    if rc == 0:
        mid = json.loads(out)["message_id"]
        wait_state(fed, "ee", mid, {"delivered"})
        shown = fed.query("fi", "show", mid)
        res.check("source reliability D is stored as X",
                  shown["payload"]["markings"]["source_reliability"] == "X",
                  json.dumps(shown["payload"].get("markings")))
    else:
        res.check("intel.report with legacy D accepted", False, err)
    return ids


def run_thread(res, fed, tmp):
    case = "EE-TRM-2026-0777"
    rc, out, err = send_json(fed, "ee", "fi",
                             template(fed, "referral", "--case", case), tmp)
    res.check("referral ee -> fi (case " + case + ")", rc == 0, err)
    ref_id = json.loads(out)["message_id"]
    wait_state(fed, "ee", ref_id, {"delivered"})
    # fi answers; the response takes the case from the referral.
    resp = template(fed, "referral.response", "--in-reply-to", ref_id)
    resp = re.sub(r'"case_ref": "[^"]*",?', "", resp)
    rc, out, err = send_json(fed, "fi", "ee", resp, tmp)
    res.check("referral.response fi -> ee", rc == 0, err)
    resp_id = json.loads(out)["message_id"]
    wait_state(fed, "fi", resp_id, {"delivered"})
    for node, first, second in (("ee", True, False), ("fi", False, True)):
        t = fed.query(node, "thread", case)
        msgs = t.get("messages", [])
        res.check(f"{node}: thread {case} = referral then response, both "
                  "directions",
                  [m["message_id"] for m in msgs] == [ref_id, resp_id] and
                  [bool(m.get("sent")) for m in msgs] == [first, second] and
                  msgs[1].get("in_reply_to") == ref_id,
                  json.dumps(t)[:600])
    rc, out, _ = fed.cli("fi", "thread", case, json_out=False)
    res.check("fi: thread prints both lines", rc == 0 and
              "referral.response" in out and "from ee" in out, out)


# ----------------------------------------------------------------- policy


def run_policy(res, fed, tmp):
    rc, out, err = send_json(fed, "ee", "ua", template(fed, "intel.report"),
                             tmp)
    res.check("ee -> ua intel.report refused at submit (policy), exit 2",
              rc == 2 and "policy" in err and "ua" in err, f"rc={rc} {err}")
    rc, out, err = send_json(fed, "ee", "ua", template(fed, "referral"), tmp)
    res.check("ee -> ua referral accepted", rc == 0, err)
    # ua's intel.report to fi: fi takes only referral kinds from ua.
    mark = fed.mark("fi")
    rc, out, err = send_json(fed, "ua", "fi", template(fed, "intel.report"),
                             tmp)
    res.check("ua submits an intel.report to fi", rc == 0, err)
    if rc != 0:
        return
    mid = json.loads(out)["message_id"]
    st = wait_state(fed, "ua", mid, {"rejected", "delivered"})
    d = (st.get("deliveries") or [{}])[0]
    res.check("ua: rejected with fi's signed reason, once (no retry loop)",
              st.get("state") == "rejected" and "policy" in d.get("reason", "")
              and d.get("receipt_signer") == "fi" and d.get("attempts") == 1,
              json.dumps(st)[:500])
    inbox = [e["message_id"] for e in fed.inbox_entries("fi")]
    res.check("fi: the refused message is not in the inbox",
              mid not in inbox, "")
    tail = fed.query("fi", "audit", "tail", "--limit", "50")
    refused = [r for r in tail.get("records", [])
               if r.get("message_id") == mid]
    res.check("fi: the refusal is in the audit log (refuse, ua, policy)",
              any(r["action"] == "refuse" and r.get("origin") == "ua" and
                  "policy" in r.get("detail", "") for r in refused),
              json.dumps(refused)[:400])
    res.check("fi: the refusal is logged", any(
        mid in l and "policy" in l for l in fed.new_lines("fi", mark)), "")


# ------------------------------------------------------------------ roles


def run_roles(res, fed, tmp, op_port):
    pki = os.path.join(fed.root, "pki")
    ca = os.path.join(pki, "ca", "federation-ca.crt")

    def conn(user):
        return ["--node", f"127.0.0.1:{op_port}", "--cert",
                os.path.join(pki, "operators", f"{user}.crt"), "--key",
                os.path.join(pki, "operators", f"{user}.key"), "--ca", ca]

    rc, out, err = send_json(fed, None, "fi", template(fed, "referral"), tmp,
                             "--client-key", "same-key",
                             kontor_args=conn("anna"))
    res.check("coordinator anna sends a referral over mTLS", rc == 0, err)
    anna_id = json.loads(out)["message_id"] if rc == 0 else ""
    rc, out, err = send_json(fed, None, "fi", template(fed, "intel.report"),
                             tmp, kontor_args=conn("anna"))
    res.check("coordinator may not send intel.report",
              rc == 1 and "coordinator may not send intel.report" in err,
              f"rc={rc} {err}")
    rc, out, err = send_json(fed, None, "fi", template(fed, "referral"), tmp,
                             "--priority", "flash", kontor_args=conn("anna"))
    res.check("coordinator may not send flash", rc == 1 and "flash" in err,
              f"rc={rc} {err}")
    rc, out, err = run_kontor(fed.kontor, conn("anna"), "audit", "tail")
    res.check("coordinator may not read the audit log",
              rc == 1 and "admin" in err, f"rc={rc} {err}")
    rc, out, err = send_json(fed, None, "fi", template(fed, "intel.report"),
                             tmp, "--client-key", "same-key",
                             kontor_args=conn("lars"))
    res.check("liaison lars sends intel.report with the same client key: "
              "a new message (keys are per user)",
              rc == 0 and json.loads(out)["message_id"] != anna_id, err)
    lars_id = json.loads(out)["message_id"] if rc == 0 else ""
    rc, out, err = run_kontor(fed.kontor, conn("lars"), "status", anna_id)
    res.check("liaison cannot see the coordinator's message", rc == 3,
              f"rc={rc} {err}")
    rc, out, err = run_kontor(fed.kontor, conn("anna"), "outbox", "--state",
                              "delivered")
    ids = {e["message_id"] for e in json.loads(out).get("entries", [])} \
        if rc == 0 else set()
    res.check("coordinator's outbox has only her messages",
              rc == 0 and lars_id not in ids, f"rc={rc} {err} {ids}")
    rc, out, err = run_kontor(fed.kontor, conn("root"), "audit", "tail",
                              "--limit", "200")
    recs = json.loads(out).get("records", []) if rc == 0 else []
    res.check("admin reads the audit log; disclosures name the users",
              any(r.get("actor") == "user:anna" and
                  r.get("message_id") == anna_id for r in recs) and
              any(r.get("actor") == "user:lars" for r in recs),
              f"rc={rc} {err}")
    # Validation tells a user nothing of messages outside their view: anna
    # naming lars's intel.report reads as an unknown id, not its kind.
    rc, out, err = send_json(
        fed, None, "fi", template(fed, "consent.update", "--in-reply-to",
                                  lars_id), tmp, kontor_args=conn("anna"))
    res.check("a message outside the user's view is unknown to validation "
              "(its kind is not told)",
              rc == 2 and "no message with this id" in err and
              "intel" not in err, f"rc={rc} {err}")
    # An erase order names only the sender's own messages: lars may not
    # have anna's referral erased at fi.
    rc, out, err = send_json(
        fed, None, "fi", template(fed, "erase.notice", "--in-reply-to",
                                  anna_id), tmp, kontor_args=conn("lars"))
    # ... and is not told that the message exists (issue 11: a caller
    # learns nothing of a message it may not see, from any error).
    res.check("liaison may not order the erasure of the coordinator's "
              "referral (refused at submit, as an unknown id)",
              rc == 2 and "not a message this node sent" in err and
              "another user" not in err, f"rc={rc} {err}")
    rc, out, err = run_kontor(fed.kontor, conn("root"), "show", anna_id)
    res.check("... and it is intact", rc == 0 and "purged" not in out and
              "referral" in out, f"rc={rc} {err} {out[:200]}")
    # A node certificate (federation CA) is never a local user.
    node_conn = ["--node", f"127.0.0.1:{op_port}", "--cert",
                 os.path.join(fed.root, "ee", "tls.crt"), "--key",
                 os.path.join(fed.root, "ee", "tls.key"), "--ca", ca]
    rc, out, err = run_kontor(fed.kontor, node_conn, "outbox")
    res.check("ee's node certificate is refused on the operator port",
              rc != 0, f"rc={rc} {err}")


# -------------------------------------------------------------- retention


def run_retention(res, fed, tmp):
    fed.fed("stop", fed.root, "fi")
    db = sqlite3.connect(fed.db("fi"))
    month = 31 * 24 * 3600 * 1000
    ids = [r[0] for r in db.execute(
        "SELECT message_id FROM inbox WHERE kind = 'referral' AND "
        "accepted = 1 AND purged_ms = 0").fetchall()]
    erased_before = db.execute(
        "SELECT COUNT(*) FROM audit WHERE action = 'erase'").fetchone()[0]
    db.execute("UPDATE inbox SET received_ms = received_ms - ? WHERE "
               "kind = 'referral'", (month,))
    db.commit()
    db.close()
    fed.fed("start", fed.root, "fi")
    dry = fed.query("fi", "purge", "--dry-run")
    listed = {m["message_id"] for m in dry.get("messages", [])}
    res.check(f"purge --dry-run lists the {len(ids)} old referrals, only them",
              len(ids) > 0 and listed == set(ids), f"{listed} vs {ids}")
    shown = fed.query("fi", "show", ids[0])
    res.check("dry run changed nothing", "referral" in shown.get("payload", {}),
              json.dumps(shown)[:200])
    done = fed.query("fi", "purge")
    res.check("purge removes them", {m["message_id"] for m in
                                     done.get("messages", [])} == set(ids),
              json.dumps(done)[:300])
    rc, out, err = fed.cli("fi", "show", ids[0], json_out=False)
    res.check("show says the content was purged, metadata stays",
              rc == 0 and "content erased" in out and "Kind:      referral" in
              out and "Tamm" not in out, out[:600])
    db = sqlite3.connect(fed.db("fi"))
    left = db.execute(
        "SELECT COUNT(*) FROM inbox WHERE kind = 'referral' AND (payload IS "
        "NOT NULL OR inner_signed IS NOT NULL OR subject != '')").fetchone()[0]
    kept = db.execute(
        "SELECT COUNT(*) FROM inbox WHERE kind = 'referral' AND outer_digest "
        "IS NOT NULL AND receipt IS NOT NULL").fetchone()[0]
    erased = db.execute("SELECT COUNT(*) FROM audit WHERE action = 'erase'")\
        .fetchone()[0]
    db.close()
    res.check("no referral content left in fi's database; digests and "
              "receipts kept; one erase record each",
              left == 0 and kept >= len(ids) and
              erased - erased_before == len(ids),
              f"left={left} kept={kept} erased={erased}")
    again = fed.query("fi", "purge", "--dry-run")
    res.check("nothing more to purge", not again.get("messages"),
              json.dumps(again)[:200])


# ------------------------------------------------------------------ audit


def chain_hash(row, prev):
    seq, time_ms, action, actor, mid, origin, peer, kind, purpose, detail = row
    b = b"kontor-audit-v1" + struct.pack(">QQ", seq, time_ms & (2**64 - 1))
    for f in (action, actor, mid, origin, peer, kind, purpose, detail):
        e = f.encode()
        b += struct.pack(">I", len(e)) + e
    return hashlib.sha256(b + prev).digest()


COLS = ("seq, time_ms, action, actor, message_id, origin, peer, kind, "
        "purpose, detail")


def recompute(db_path):
    """Recomputes the chain independently; returns (rows, first bad seq)."""
    db = sqlite3.connect(db_path)
    rows = db.execute(f"SELECT {COLS}, prev, hash FROM audit ORDER BY seq")\
        .fetchall()
    db.close()
    prev = bytes(32)
    for r in rows:
        if r[10] != prev or chain_hash(r[:10], prev) != r[11]:
            return rows, r[0]
        prev = r[11]
    return rows, 0


def verify(fed, node, *extra):
    rc, out, err = fed.cli(node, "audit", "verify", *extra)
    try:
        return rc, json.loads(out), err
    except ValueError:
        return rc, {}, err


def run_audit(res, fed, tmp):
    # Traffic both ways, so that ee holds heads of fi's chain in receipts.
    for i in range(6):
        rc, out, err = fed.cli("ee", "send", "--to", "fi", "--kind", "note",
                               "--subject", f"a{i}", "--body-file",
                               write(os.path.join(tmp, "b"), "x\n"))
        if rc == 0:
            wait_state(fed, "ee", json.loads(out)["message_id"],
                       {"delivered"})
        fed.cli("fi", "show", json.loads(out)["message_id"])  # a consultation
    rc, v, err = verify(fed, "fi")
    res.check("fi: audit verify ok, witnessed by ee",
              rc == 0 and v.get("ok") and any(
                  w.get("peer") == "ee" and w.get("heads", 0) > 0
                  for w in v.get("witnesses", [])), json.dumps(v)[:600])
    rows, bad = recompute(fed.db("fi"))
    res.check(f"fi: {len(rows)} audit records recomputed with hashlib match",
              len(rows) > 10 and bad == 0, f"first bad {bad}")
    text = " ".join(str(c) for r in rows for c in r[:10])
    res.check("no content in the audit log (names, subjects, bodies)",
              "Tamm" not in text and "Mari" not in text and
              "Example referral" not in text and "a3" not in text.split(),
              "")
    actions = {r[2] for r in rows}
    res.check("fi logged collect, consult, disclose, refuse",
              {"collect", "consult", "disclose", "refuse"} <= actions,
              str(actions))

    fed.fed("stop", fed.root, "fi")
    db_path = fed.db("fi")
    db = sqlite3.connect(db_path)
    original = db.execute(f"SELECT {COLS}, prev, hash FROM audit ORDER BY seq")\
        .fetchall()
    heads = db.execute("SELECT * FROM audit_heads").fetchall()
    # 1. One record edited.
    k = original[len(original) // 2][0]
    db.execute("UPDATE audit SET actor = 'someone-else' WHERE seq = ?", (k,))
    db.commit()
    db.close()
    fed.fed("start", fed.root, "fi")
    rc, v, err = verify(fed, "fi", "--local")
    res.check(f"edited record {k}: verify fails (exit 1) naming it",
              rc == 1 and v.get("first_bad_seq") == k and
              f"record {k}" in err, f"rc={rc} {json.dumps(v)[:400]} {err}")

    # 2. The whole chain rewritten consistently from record k on (what an
    # insider with database access does): only the witnesses catch it.
    fed.fed("stop", fed.root, "fi")
    db = sqlite3.connect(db_path)
    prev = original[k - 2][11] if k > 1 else bytes(32)
    for r in original[k - 1:]:
        row = list(r[:10])
        if row[0] == k:
            row[3] = "someone-else"
        h = chain_hash(tuple(row), prev)
        db.execute("UPDATE audit SET actor = ?, prev = ?, hash = ? "
                   "WHERE seq = ?", (row[3], prev, h, row[0]))
        prev = h
    db.execute("DELETE FROM audit_heads")  # and re-sign nothing
    db.commit()
    db.close()
    fed.fed("start", fed.root, "fi")
    rc, v, err = verify(fed, "fi")
    problems = " | ".join(v.get("problems", []))
    res.check("rewritten chain: hashes fit, but ee's witnessed head does "
              "not, and the chain's records of signing name heads no longer "
              "kept: verify fails (rewritten; signed heads deleted)",
              rc == 1 and v.get("first_bad_seq", 0) == 0 and
              "rewritten" in problems and
              "signed heads were deleted" in problems,
              f"rc={rc} {json.dumps(v)[:600]} {err}")

    # 3. Truncated: the original chain back, without its newest records.
    fed.fed("stop", fed.root, "fi")
    db = sqlite3.connect(db_path)
    db.execute("DELETE FROM audit")
    db.execute("DELETE FROM audit_heads")
    for r in original:
        db.execute(f"INSERT INTO audit({COLS}, prev, hash) VALUES"
                   "(?,?,?,?,?,?,?,?,?,?,?,?)", r)
    for h in heads:
        db.execute("INSERT INTO audit_heads VALUES(?,?,?,?)", h)
    db.commit()
    db.close()
    fed.fed("start", fed.root, "fi")
    rc, v, err = verify(fed, "fi")
    res.check("restored chain verifies again", rc == 0 and v.get("ok"),
              f"rc={rc} {json.dumps(v)[:400]} {err}")
    fed.fed("stop", fed.root, "fi")  # signs the head at shutdown
    db = sqlite3.connect(db_path)
    cut = original[len(original) // 3][0]
    db.execute("DELETE FROM audit WHERE seq >= ?", (cut,))
    db.commit()
    db.close()
    fed.fed("start", fed.root, "fi")
    rc, v, err = verify(fed, "fi", "--local")
    res.check(f"truncated at {cut}: the signed head catches it",
              rc == 1 and "truncated" in err, f"rc={rc} {err}")
    fed.fed("stop", fed.root, "fi")
    db = sqlite3.connect(db_path)
    db.execute("DELETE FROM audit_heads")
    db.commit()
    db.close()
    fed.fed("start", fed.root, "fi")
    rc, v, err = verify(fed, "fi")
    res.check("truncated, signed heads removed too: ee's witness catches it",
              rc == 1 and "truncated" in err and "peer ee" in err,
              f"rc={rc} {json.dumps(v)[:500]} {err}")


def run(tmp, res):
    kontord, kontor = harness.binaries()
    root = os.path.join(tmp, "fed")
    fed = Fed(root, kontord, kontor)
    fed.fed("start", root, "ee", "fi", "ua")
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
        'crl: "../pki/ca/operator-ca.crl.pem" }\n')
    kinds = " ".join(f'accept_kinds: "{k}"' for k in REFERRAL_KINDS)
    send = " ".join(f'send_kinds: "{k}"' for k in REFERRAL_KINDS)
    for node, peer, rule in (("fi", "ua", kinds), ("ee", "ua", send)):
        path = fed.config(node)
        text = open(path).read()
        text, n = re.subn(r'(peers \{ id: "%s"[^\n]*)\}' % peer,
                          lambda m: m.group(1) + rule + " }", text)
        assert n == 1, text
        write(path, text)
    harness.append_config(
        root, "fi", 'retention { days_by_kind { key: "referral" value: 30 } }\n')
    fed.fed("start", root, "ee", "fi", "ua")
    t0 = time.monotonic()
    run_kinds(res, fed, tmp)
    run_thread(res, fed, tmp)
    run_policy(res, fed, tmp)
    run_roles(res, fed, tmp, op_port)
    run_retention(res, fed, tmp)
    run_audit(res, fed, tmp)
    print(f"# {time.monotonic() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(harness.main(run, "kontor-kinds.",
                          lambda *a: harness.federation_sh(
                              harness.binaries()[0], *a)))
