#!/usr/bin/env python3
"""The hostile-input matrix (issue 9): table-driven refusals through the real gateway binary.

Python 3 standard library only; reuses gateway/test_e2e.py's HTTP client, JWT maker, problem
checker and database helper. What it does:

  * creates the database dfd_hostile (dropped first) with the extension and the login role
    dfd_hostile_gateway (defendable_gateway only), starts the gateway (DFD_GATEWAY, default
    gateway/defendable-gateway) on a free port, and sets up through HTTP: org A (owner alice,
    member carol), org B (owner bob), API keys (one revoked), receipts, shares, runs, a dataset,
    an applied Stripe event, used and expired magic links and invites, a revoked session;
  * builds the matrix as data: each case is (category, name, method, path, headers, body,
    expected status, expected problem slug, tables it may change). Where it can, the matrix is
    generated from GET /openapi.json, so a new route is covered without editing this file:
    SQL metacharacters in every path, query and body parameter of every route; malformed JSON,
    wrong media types, oversized bodies and a body where none is taken on every route; wrong
    methods on every path; cross-organization ids on every org-scoped route; owner-only routes
    (summary "(owners)") called by a plain member; credentials of the wrong kind on every
    authenticated route. Hand-written rows add forged JWTs, replayed magic links and invites,
    revoked keys, Stripe replays and stale timestamps, path traversal, invalid UTF-8 and
    transport-level abuse (huge headers, smuggling) that libmicrohttpd refuses itself;
  * every case checks: the expected status (never a 5xx), application/problem+json with type,
    title, status and instance (X-Request-Id), the problem type, and a database fingerprint
    (count and content digest of every table of schema defendable, every org's head seq and
    hash) identical before and after. security_events and quota_counters are left out of the
    fingerprint: recording a refusal and counting a rate-limited call are the documented
    effects of a refused request (docs/access-model.md, "Security events"); quota counters are
    cleared before each case so that no case is refused by an earlier one's rate limit;
  * the gateway must be alive after every case, stop with exit 0, and its stderr must hold no
    AddressSanitizer / UndefinedBehaviorSanitizer / LeakSanitizer report.

A case whose documented answer is a success says so (expect "ok"): GET /auth/magic with any
token (the page never looks it up), POST /auth/request for any well-formed address (202, one
token and one outbox message, whatever the address), Stripe redeliveries (200 "duplicate"),
and text parameters where metacharacters are legitimate data (stored verbatim, read back).

Environment: PGHOST, PGPORT, PGUSER (a superuser, trust authentication) of a running cluster
with the extension installed. DFD_GATEWAY selects the binary (defendable-gateway-sanitized for
the sanitizer run). DFD_HOSTILE_LONG=1: every metacharacter string and every malformed body on
every route (the default uses a subset that still reaches every parameter and every route).
DFD_HOSTILE_VERBOSE=1 lists passing cases too.
Usage:  /usr/bin/python3 gateway/test_hostile.py    last line "hostile: N passed, N failed"
"""
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_e2e as e2e  # noqa: E402  (the same HTTP client, JWT maker, problem checks, psql)

DB = "dfd_hostile"
DB_ROLE = "dfd_hostile_gateway"
LONG = bool(os.environ.get("DFD_HOSTILE_LONG"))
e2e.VERBOSE = bool(os.environ.get("DFD_HOSTILE_VERBOSE"))
# rows of these tables are the documented effect of a refusal: the evidence of the refusal
# (security_events) and the rate-limit counters (quota_counters, cleared before each case)
BOOKKEEPING = ("security_events", "quota_counters")
SANITIZER_MARKS = ("AddressSanitizer", "UndefinedBehaviorSanitizer", "LeakSanitizer", "runtime error:")

# SQL metacharacters: quotes, comments, dollar quoting, stacked statements, casts, LIKE wildcards,
# a backslash escape, an encoded quote. None holds "@" (so none is a well-formed email address).
META_ALL = ["'; DROP TABLE defendable.receipts; --", "\" OR \"1\"=\"1", "$$; SELECT pg_sleep(5); $$",
            "x'||(SELECT pg_sleep(5))||'", "\\'; --", "%27%20OR%201=1", "1; DELETE FROM defendable.heads",
            "'::uuid)--", "%_%", "1 OR 1=1"]
META = META_ALL if LONG else META_ALL[:3]

CASES = []       # the matrix: dicts, see case()
COUNTS = {}      # category -> number of cases run
S = {}           # what set-up made: tokens, ids (never printed)


def psql(sql):
    return e2e.psql(sql, db=DB)


def record(cond, what, detail=""):
    return e2e.record(cond, what, detail)


def case(cat, name, method, path, status, slug=None, token=None, body=None, ctype=None, headers=None,
         expect="problem", changes=(), raw=None, source=None, check=None, settle=False):
    """One row of the matrix.
    expect: "problem" (status + problem+json with slug), "ok" (a documented success: status
    only), "raw" (libmicrohttpd answers before the gateway sees the request: 4xx or a closed
    connection, not problem+json). changes: tables the case may change (a documented write).
    check(resp) -> list of errors: what else the answer must show. settle: wait for the mail
    thread and the checkpoint signer to finish what the case legitimately started."""
    CASES.append(dict(cat=cat, name=name, method=method, path=path, status=status, slug=slug, token=token,
                      body=body, ctype=ctype, headers=headers or {}, expect=expect, changes=set(changes),
                      raw=raw, source=source, check=check, settle=settle))


# ---------------------------------------------------------------------------------------------
# The database fingerprint

FP_SQL = None


def build_fingerprint_sql():
    tables = [t for t in psql("SELECT tablename FROM pg_tables WHERE schemaname = 'defendable' ORDER BY 1").split()
              if t not in BOOKKEEPING]
    parts = ["SELECT '%s', count(*)::text, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
             "FROM defendable.%s x" % (t, t) for t in tables]
    parts.append("SELECT 'head ' || org_id, seq::text, encode(hash, 'hex') FROM defendable.heads")
    parts.append("SELECT 'tables', count(*)::text, '' FROM pg_tables WHERE schemaname = 'defendable'")
    return " UNION ALL ".join(parts), tables


def fingerprint(clear_quotas=False):
    out = psql(("DELETE FROM defendable.quota_counters; " if clear_quotas else "") + FP_SQL)
    fp = {}
    for line in out.strip().split("\n"):
        name, count, digest = line.split("|")
        fp[name] = (count, digest)
    return fp


def changed_tables(before, after):
    """Names of the tables that differ ("head <org>" rows count as the table heads)."""
    names = set(before) | set(after)
    return sorted({"heads" if n.startswith("head ") else n for n in names if before.get(n) != after.get(n)})


def settle(seconds=8.0):
    """Waits until the mail thread has sent every message and no organization waits for a
    checkpoint: both are background writes a documented success may start. An organization
    whose ledger moved is checkpointed at once through GET /ledger/checkpoint by one of its
    owners (a session made here), instead of waiting for the signer's next minute."""
    deadline = time.time() + seconds
    for org, owner in (l.split("|") for l in psql(
            "SELECT d.org_id, (SELECT m.user_id FROM defendable.memberships m WHERE m.org_id = d.org_id "
            "AND m.role = 'owner' LIMIT 1) FROM defendable.checkpoints_due() d").split()):
        now = int(time.time())
        jwt = e2e.make_jwt({"sub": owner, "iat": now, "exp": now + 300}, S["jwt_secret"])
        S["gw"].req("GET", "/ledger/checkpoint?org=" + org, token=jwt, keep=False)
    while time.time() < deadline:
        n = psql("SELECT (SELECT count(*) FROM defendable.email_outbox WHERE sent_at IS NULL AND secret IS NOT NULL "
                 "AND expires_at > now()) + (SELECT count(*) FROM defendable.checkpoints_due())").strip()
        if n == "0":
            return True
        time.sleep(0.1)
    return False


# ---------------------------------------------------------------------------------------------
# Running one case

def send(gw, c):
    if c["raw"] is not None:
        st, text = e2e.raw_request(gw, c["raw"])
        gw.responses.pop()  # e2e's raw_request keeps a placeholder for its own header checks
        r = parse_raw(text)
        r.raw_text = text
        return st, text, r
    token = c["token"]
    if callable(token):
        token = token()
    headers = dict(c["headers"])
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    r = gw.req(c["method"], c["path"], c["body"], headers=headers, ctype=c["ctype"], source=c["source"],
               keep=False)
    return r.status, r.text(), r


def run_case(gw, c):
    before = fingerprint(clear_quotas=True)
    status, text, resp = send(gw, c)
    if c["settle"]:
        settle()
    after = fingerprint()
    errors = []
    if status >= 500:
        errors.append("a %d answer (server error)" % status)
    if c["expect"] == "problem":
        errors += e2e.problem_errors(resp, c["status"], c["slug"]) if resp is not None else ["no HTTP answer object"]
    elif c["expect"] == "ok":
        if status != c["status"]:
            errors.append("status %s, want %s" % (status, c["status"]))
    elif c["expect"] == "raw":
        want = c["status"] if isinstance(c["status"], tuple) else (c["status"],)
        if status not in want:
            errors.append("status %s, want one of %s (0: connection closed without an answer)" % (status, want))
    if c["check"] is not None and resp is not None:
        try:
            errors += c["check"](resp)
        except Exception as e:  # a check that cannot even read the answer is a failure
            errors.append("check raised %r" % e)
    moved = [t for t in changed_tables(before, after) if t not in c["changes"]]
    if moved:
        errors.append("the database changed: %s" % ", ".join(moved))
        settle()  # a wrongful write may start mail or signing: let it finish before the next case
    if gw.proc.poll() is not None:
        errors.append("the gateway exited (code %s)" % gw.proc.returncode)
    COUNTS[c["cat"]] = COUNTS.get(c["cat"], 0) + 1
    want = "%s %s" % (c["status"], c["slug"] or "") if c["expect"] == "problem" else "%s (%s)" % (c["status"], c["expect"])
    shown = c["path"] if len(c["path"]) < 120 else c["path"][:110] + "...(%d chars)" % len(c["path"])
    detail = "%s %s -> %s %s" % (c["method"], shown, status, text[:300].replace("\n", " "))
    record(not errors, "[%s] %s -> %s" % (c["cat"], c["name"], want.strip()), detail + "\n" + "\n".join(errors))
    return gw.proc.poll() is None


# ---------------------------------------------------------------------------------------------
# Set-up through the gateway: the world the hostile requests are thrown at

def mail_token(gw, c, email, kind):
    link, token = e2e.wait_mail(gw, c.mail_dir, email, kind, seconds=8)
    if not record(token is not None, "set-up: a %s link for %s is mailed" % (kind, email)):
        raise RuntimeError("no %s mail for %s" % (kind, email))
    return urllib.parse.unquote(token)


def login(gw, c, email):
    """A session for email; returns (session JWT, user id, the magic token now used up)."""
    r = gw.req("POST", "/auth/request", {"email": email})
    if not record(r.status == 202, "set-up: auth/request %s" % email, r.desc()):
        raise RuntimeError("auth/request failed")
    token = mail_token(gw, c, email, "magic")
    r = gw.req("POST", "/auth/verify", {"token": token})
    if not record(r.status == 200, "set-up: auth/verify %s" % email, r.desc()):
        raise RuntimeError("auth/verify failed")
    return r.json["token"], r.json["user_id"], token


def ok(r, status, what):
    if not record(r.status == status, "set-up: %s" % what, r.desc()):
        raise RuntimeError("set-up step failed: %s" % what)
    return r.json


def setup(gw, c):
    S["ja"], S["alice"], S["used_magic"] = login(gw, c, "alice@example.test")
    S["jb"], S["bob"], _ = login(gw, c, "bob@example.test")
    S["A"] = ok(gw.req("POST", "/orgs", {"name": "Org A"}, token=S["ja"]), 201, "alice creates org A")["org_id"]
    S["B"] = ok(gw.req("POST", "/orgs", {"name": "Org B"}, token=S["jb"]), 201, "bob creates org B")["org_id"]
    # carol joins A as a plain member through an invite; the used invite token is kept for a replay
    ok(gw.req("POST", "/orgs/%s/invites" % S["A"], {"email": "carol@example.test", "role": "member"}, token=S["ja"]),
       201, "alice invites carol")
    S["used_invite"] = mail_token(gw, c, "carol@example.test", "invite")
    r = ok(gw.req("POST", "/auth/accept-invite", {"token": S["used_invite"]}), 200, "carol accepts")
    S["jc"], S["carol"] = r["token"], r["user_id"]
    # a pending invite and a magic link, both expired by the superuser (set-up, not the test)
    ok(gw.req("POST", "/orgs/%s/invites" % S["A"], {"email": "erin@example.test"}, token=S["ja"]), 201,
       "alice invites erin")
    S["expired_invite"] = mail_token(gw, c, "erin@example.test", "invite")
    ok(gw.req("POST", "/auth/request", {"email": "frank@example.test"}), 202, "frank asks for a link")
    S["expired_magic"] = mail_token(gw, c, "frank@example.test", "magic")
    psql("UPDATE defendable.invites SET expires_at = now() - interval '1 minute' WHERE email = 'erin@example.test'")
    psql("UPDATE defendable.auth_tokens SET expires_at = now() - interval '1 minute' WHERE email = 'frank@example.test'")
    # dave's session is revoked (logout everywhere) after it was issued
    S["jd"], S["dave"], _ = login(gw, c, "dave@example.test")
    time.sleep(1.1)  # iat has one-second resolution: the revocation must be later than the token
    psql("SELECT defendable.session_revoke_all('%s', now())" % S["dave"])
    # API keys: one per org, and one of A revoked
    k = ok(gw.req("POST", "/orgs/%s/api-keys" % S["A"], {"name": "ka"}, token=S["ja"]), 201, "key of A")
    S["kA"], S["kA_id"] = k["key"], k["key_id"]
    k = ok(gw.req("POST", "/orgs/%s/api-keys" % S["B"], {"name": "kb"}, token=S["jb"]), 201, "key of B")
    S["kB"], S["kB_id"] = k["key"], k["key_id"]
    k = ok(gw.req("POST", "/orgs/%s/api-keys" % S["A"], {"name": "kr"}, token=S["ja"]), 201, "key to revoke")
    S["kR"], S["kR_id"] = k["key"], k["key_id"]
    ok(gw.req("DELETE", "/orgs/%s/api-keys/%s" % (S["A"], S["kR_id"]), token=S["ja"]), 204, "revoke it")
    for key, org in (("kA", "A"), ("kB", "B")):
        for i in range(2):
            ok(gw.req("POST", "/receipts", {"kind": "hostile.setup", "fields": {"n": i, "note": "x"},
                                            "public_fields": ["n"]}, token=S[key]), 201, "a receipt in %s" % org)
    # shares: one live in each org, one revoked
    for org, jwt in (("A", "ja"), ("B", "jb")):
        s = ok(gw.req("POST", "/receipts/1/share?org=" + S[org], {}, token=S[jwt]), 201, "share in %s" % org)
        S["share" + org], S["share%s_token" % org] = s["share_id"], s["token"]
    s = ok(gw.req("POST", "/receipts/2/share?org=" + S["A"], {}, token=S["ja"]), 201, "a share to revoke")
    S["shareR_token"] = s["token"]
    ok(gw.req("DELETE", "/shares/" + s["share_id"], token=S["ja"]), 204, "revoke the share")
    # runs: one queued in each org, and one of A claimed by a runner (for status reports)
    S["runA"] = ok(gw.req("POST", "/runs?org=" + S["A"], {"kind": "report.build"}, token=S["ja"]), 201, "run A")["run_id"]
    S["runB"] = ok(gw.req("POST", "/runs?org=" + S["B"], {"kind": "report.build"}, token=S["jb"]), 201, "run B")["run_id"]
    S["runC"] = ok(gw.req("POST", "/internal/runs", {"org": S["A"], "kind": "restore.drill"}, token=c.internal_key),
                   201, "an operator run")["run_id"]
    ok(gw.req("POST", "/internal/runner/claim", {"runner": "hostile-runner", "run_id": S["runC"], "lease_seconds": 3600},
              token=c.runner_token), 200, "the runner claims it")
    # a dataset, and A's membership made active by a signed Stripe event (kept for the replays)
    ok(gw.req("POST", "/internal/datasets", {"slug": "hostile-set", "title": "Hostile set", "storage_key": "ds/hostile.bin",
                                             "size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()},
              token=c.internal_key), 200, "the stager stages a dataset")
    S["event"] = e2e.stripe_event("evt_hostile1", "checkout.session.completed",
                                  {"id": "cs_test_h1", "object": "checkout.session", "client_reference_id": S["A"],
                                   "customer": "cus_hostile", "subscription": "sub_hostile"})
    S["event_t"] = int(time.time())
    S["event_sig"] = e2e.stripe_header(S["event"], c.stripe_secret, S["event_t"])
    r = ok(gw.req("POST", "/webhooks/stripe", S["event"], headers={"Stripe-Signature": S["event_sig"]}), 200,
           "a signed Stripe event activates A's membership")
    record(r.get("outcome") == "applied", "set-up: the event is applied", r)
    # nothing left for the background threads: every org checkpointed, every message sent
    for org, jwt in (("A", "ja"), ("B", "jb")):
        ok(gw.req("GET", "/ledger/checkpoint?org=" + S[org], token=S[jwt]), 200, "checkpoint of %s" % org)
    if not record(settle(), "set-up: mail sent and every org checkpointed before the matrix"):
        raise RuntimeError("background work did not settle")


# ---------------------------------------------------------------------------------------------
# The route table, read from the running gateway's OpenAPI document

def operations():
    """[(method, pattern, op)] of every documented operation, in document order."""
    return [(m.upper(), p, op) for p, item in e2e.DOC["paths"].items() for m, op in item.items()]


def auth_kind(pattern, op):
    sec = [k for s in (op.get("security") or []) for k in s]
    if "session" in sec:
        return "session"
    if "apiKey" in sec:
        return "apikey"
    if pattern.startswith("/internal/runner"):
        return "runner"
    if pattern.startswith("/internal/"):
        return "internal"
    if pattern.startswith("/webhooks/stripe"):
        return "stripe"
    return "none"


def request_schema(op):
    rb = op.get("requestBody")
    if not rb:
        return None
    schema = rb["content"]["application/json"]["schema"]
    ref = schema.get("$ref", "")
    return e2e.DOC["components"]["schemas"][ref.split("/")[-1]] if ref else schema


def credential(c, kind):
    return {"session": S["ja"], "apikey": S["kA"], "internal": c.internal_key, "runner": c.runner_token,
            "stripe": None, "none": None}[kind]


def baseline(c, method, pattern, op):
    """A well-formed request for the operation (path values, query, body, token), from which each
    case changes one thing. Unknown operations (a route added later) get placeholder values."""
    app = c.base
    params = {"org": S["A"], "user": S["carol"], "seq": "1", "token": S["shareA_token"], "slug": "hostile-set"}
    if pattern.startswith("/orgs/{org}/api-keys/"):
        params["id"] = S["kA_id"]
    elif pattern.startswith("/shares/"):
        params["id"] = S["shareA"]
    elif pattern.startswith("/runs/"):
        params["id"] = S["runA"]
    elif pattern.startswith("/internal/runner/"):
        params["id"] = S["runC"]
    query = {"org": S["A"]}
    if pattern == "/receipts":
        query.update({"after": "1", "limit": "10"})
    if pattern in ("/auth/magic", "/auth/invite"):
        query = {"token": "dfm_" + "a" * 43}
    bodies = {
        ("POST", "/auth/request"): {"email": "nobody@example.test"},
        ("POST", "/auth/verify"): {"token": S["used_magic"]},
        ("POST", "/auth/accept-invite"): {"token": S["used_invite"]},
        ("POST", "/orgs"): {"name": "hostile org"},
        ("PATCH", "/orgs/{org}/members/{user}"): {"role": "member"},
        ("POST", "/orgs/{org}/invites"): {"email": "gina@example.test", "role": "member", "ttl_hours": 24},
        ("POST", "/orgs/{org}/api-keys"): {"name": "hostile key"},
        ("POST", "/receipts"): {"kind": "hostile.case", "fields": {"v": "x"}, "public_fields": ["v"]},
        ("POST", "/receipts/{seq}/share"): {"ttl_hours": 1},
        ("POST", "/internal/receipts"): {"org": S["A"], "kind": "incident.declared", "fields": {"title": "t"},
                                         "public_fields": ["title"]},
        ("POST", "/datasets/catalog/{slug}/download"): {},
        ("POST", "/internal/datasets"): {"slug": "hostile-set", "title": "Hostile set", "storage_key": "ds/hostile.bin",
                                         "size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()},
        ("POST", "/billing/checkout"): {"success_url": app + "/ok", "cancel_url": app + "/cancel"},
        ("POST", "/webhooks/stripe"): json.loads(S["event"]),
        ("POST", "/runs"): {"kind": "report.build", "input": {"a": 1}},
        ("POST", "/internal/runs"): {"org": S["A"], "kind": "restore.drill", "input": {}},
        ("POST", "/internal/runner/claim"): {"runner": "hostile-runner-2", "lease_seconds": 60, "run_id": S["runA"]},
        ("POST", "/internal/runner/{id}/status"): {"runner": "hostile-runner", "state": "running", "detail": "d",
                                                    "lease_seconds": 3600},
    }
    body = bodies.get((method, pattern))
    if body is None and request_schema(op) is not None:
        body = {}
    names = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
    return {"params": {k: v for k, v in params.items() if "{%s}" % k in pattern},
            "query": {k: v for k, v in query.items() if k in names}, "body": body,
            "token": credential(c, auth_kind(pattern, op))}


def build_path(pattern, params, query):
    path = pattern
    for k, v in params.items():
        path = path.replace("{%s}" % k, urllib.parse.quote(v, safe=""))
    if query:
        path += "?" + "&".join("%s=%s" % (k, urllib.parse.quote(v, safe="")) for k, v in query.items())
    return path


# tables a documented success of each operation writes (cases that are accepted as data)
WRITES = {
    ("POST", "/orgs"): {"orgs", "memberships", "receipts", "disclosures", "heads", "merkle_nodes", "checkpoints"},
    ("POST", "/orgs/{org}/api-keys"): {"api_keys", "receipts", "disclosures", "heads", "merkle_nodes", "checkpoints"},
    ("POST", "/internal/datasets"): {"datasets"},
    ("POST", "/internal/runner/{id}/status"): {"runs"},
    ("POST", "/auth/request"): {"auth_tokens", "email_outbox"},
    ("POST", "/webhooks/stripe"): {"stripe_events"},
}


def success_status(op):
    return min(int(s) for s in op["responses"] if s.isdigit())


def signed(c, body_bytes, t=None):
    return {"Stripe-Signature": e2e.stripe_header(body_bytes, c.stripe_secret, t)}


def is_html_page(resp):
    errs = []
    if not (resp.header("Content-Type") or "").startswith("text/html"):
        errs.append("not the HTML page")
    q = urllib.parse.urlparse(resp.path).query
    tok = urllib.parse.parse_qs(q).get("token", [""])[0]
    if tok and tok.encode() in resp.body:
        errs.append("the page reflects its token")
    return errs


def meta_expectation(method, pattern, op, loc, name, prop):
    """(expect, status, slug, changes) for a metacharacter string in one parameter."""
    if loc == "path":
        return "problem", 404, "not-found", ()
    if loc == "query":
        if name == "token" and pattern in ("/auth/magic", "/auth/invite"):
            return "ok", 200, None, ()  # the page never looks its token up
        return "problem", 422, "invalid-request", ()
    if pattern == "/webhooks/stripe":
        return None  # see the webhook rows: a signed body is parsed by its own rules
    t = prop.get("type")
    if t != "string" or "format" in prop or "enum" in prop:
        return "problem", 422, "invalid-request", ()
    if name == "token":
        return "problem", 401, "unauthorized", ()  # an invalid or expired link, like any other
    if pattern == "/internal/runner/{id}/status" and name == "runner":
        return "problem", 409, "conflict", ()  # a name that does not hold the run's lease
    if (method, pattern) in WRITES and name in ("name", "title", "storage_key", "detail"):
        # legitimate text: stored as it is (read back where a route shows it)
        return "ok", success_status(op), None, WRITES[(method, pattern)]
    return "problem", 422, "invalid-request", ()


def readback_org_name(c, value):
    def check(resp):
        if not isinstance(resp.json, dict) or "org_id" not in resp.json:
            return ["no org in the answer"]
        g = c.gw.req("GET", "/orgs/" + resp.json["org_id"], token=S["ja"], keep=False)
        return [] if g.status == 200 and g.json.get("name") == value else ["not read back verbatim: " + g.desc()]
    return check


def gen_metachars(c):
    for method, pattern, op in operations():
        b = baseline(c, method, pattern, op)
        schema = request_schema(op) or {}
        targets = [(p["in"], p["name"], p.get("schema", {})) for p in op.get("parameters", [])]
        targets += [("body", n, prop) for n, prop in schema.get("properties", {}).items()]
        for loc, name, prop in targets:
            exp = meta_expectation(method, pattern, op, loc, name, prop)
            if exp is None:
                continue
            expect, status, slug, changes = exp
            for i, m in enumerate(META):
                params, query = dict(b["params"]), dict(b["query"])
                body = json.loads(json.dumps(b["body"])) if b["body"] is not None else None
                if loc == "path":
                    params[name] = m
                elif loc == "query":
                    query[name] = m
                else:
                    body[name] = m
                check = None
                if expect == "ok" and loc == "query":
                    check = is_html_page
                if (method, pattern) == ("POST", "/orgs") and name == "name":
                    check = readback_org_name(c, m)
                case("metachar", "%s %s %s:%s #%d" % (method, pattern, loc, name, i), method,
                     build_path(pattern, params, query), status, slug, token=b["token"], body=body,
                     expect=expect, changes=changes, settle=bool(changes), check=check)


# malformed request bodies: each must be refused as 400 malformed-json before anything else runs
MALFORMED = [
    ("truncated", b'{"name":'), ("an array", b'["name"]'), ("a string", b'"name"'), ("null", b"null"),
    ("a number", b"42"), ("a duplicate key", b'{"a":"1","a":"2"}'), ("a trailing comma", b'{"a":1,}'),
    ("two values", b'{} {}'), ("invalid UTF-8", b'{"a":"\xff\xfe"}'), ("overlong UTF-8", b'{"a":"\xc0\xaf"}'),
    ("a UTF-8 encoded surrogate", b'{"a":"\xed\xa0\x80"}'), ("a lone surrogate escape", b'{"a":"\\ud800"}'),
    ("a raw NUL", b'{"a":"x\x00y"}'), ("a comment", b'{/* c */"a":1}'), ("single quotes", b"{'a':1}"),
    ("NaN", b'{"a":NaN}'), ("Infinity", b'{"a":-Infinity}'), ("a BOM", b'\xef\xbb\xbf{}'),
    ("nesting 100000 deep", b'{"a":' + b"[" * 100000 + b"]" * 100000 + b"}"),
    ("an unterminated string", b'{"a":"abc'), ("a control character in a string", b'{"a":"x\x01y"}'),
    ("a bad escape", b'{"a":"\\x41"}'), ("a number too large for any integer", b'{"a":1' + b"0" * 400 + b"}"),
    ("only whitespace", b" \r\n\t "),
]
MALFORMED_EVERY_ROUTE = ("truncated", "an array", "a duplicate key", "invalid UTF-8", "nesting 100000 deep")
MEDIA_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml",
               "application/jsonp", "application/json-patch+json", "text/json", "application/jso"]


def gen_bodies(c):
    for method, pattern, op in operations():
        b = baseline(c, method, pattern, op)
        path = build_path(pattern, b["params"], b["query"])
        name = "%s %s" % (method, pattern)
        if request_schema(op) is None:
            # a route that takes no body refuses one instead of ignoring it
            case("no-body route", "%s with a JSON body" % name, method, path, 422, "invalid-request",
                 token=b["token"], body=b'{"a":1}')
            continue
        stripe = pattern == "/webhooks/stripe"
        for what, data in MALFORMED:
            if not LONG and what not in MALFORMED_EVERY_ROUTE and (method, pattern) != ("POST", "/orgs"):
                continue
            # a webhook is authenticated over the raw body first: sign the malformed body
            case("malformed JSON", "%s: %s" % (name, what), method, path, 400, "malformed-json", token=b["token"],
                 body=data, headers=signed(c, data) if stripe else None)
        big = b'{"a":"' + b"x" * (1024 * 1024) + b'"}'
        case("oversized", "%s: a body over 1 MiB" % name, method, path, 413, "payload-too-large", token=b["token"],
             body=big, headers=signed(c, big) if stripe else None)
        if stripe:
            continue  # the signature covers the raw bytes whatever their media type
        for ct in MEDIA_TYPES if LONG else MEDIA_TYPES[:3]:
            case("media type", "%s as %s" % (name, ct), method, path, 415, "unsupported-media-type",
                 token=b["token"], body=json.dumps(b["body"]).encode(), ctype=ct)
        case("media type", "%s without Content-Type" % name, method, path, 415, "unsupported-media-type",
             token=b["token"], body=json.dumps(b["body"]).encode(), ctype="")


def gen_sizes_and_methods(c):
    seen = {}
    for method, pattern, op in operations():
        seen.setdefault(pattern, set()).add(method)
    for pattern, methods in seen.items():
        m0 = sorted(methods)[0]
        op = e2e.DOC["paths"][pattern][m0.lower()]
        b = baseline(c, m0, pattern, op)
        path = build_path(pattern, b["params"], b["query"])
        case("URI too long", "%s with a 2100-byte query" % pattern, m0, path + ("&" if "?" in path else "?") +
             "pad=" + "a" * 2100, 414, "uri-too-long", token=b["token"])
        wrong = [m for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if m not in methods and not (m == "GET" and "HEAD" in methods)]
        for m in wrong if LONG else [x for x in wrong if x == "PUT"]:
            def allow_named(resp, methods=methods):
                allow = resp.header("Allow") or ""
                return [] if all(x in allow for x in methods) else ["Allow %r does not name %s" % (allow, sorted(methods))]
            case("method", "%s %s" % (m, pattern), m, path, 405, "method-not-allowed", token=b["token"], check=allow_named)


def gen_credentials(c):
    """Every authenticated route with credentials of the wrong kind (or none, or revoked)."""
    for method, pattern, op in operations():
        kind = auth_kind(pattern, op)
        b = baseline(c, method, pattern, op)
        path = build_path(pattern, b["params"], b["query"])
        name = "%s %s" % (method, pattern)
        body = b["body"]
        rows = []
        if kind == "session":
            rows = [("no token", None, 401, "unauthorized"), ("an API key as a session", S["kA"], 401, "unauthorized"),
                    ("the internal key as a session", c.internal_key, 401, "unauthorized"),
                    ("a revoked session (session_revoke_all)", S["jd"], 401, "unauthorized")]
        elif kind == "apikey":
            kid = S["kA"].split("_")[1]
            rows = [("no token", None, 401, "unauthorized"), ("a session JWT", S["ja"], 401, "unauthorized"),
                    ("a revoked API key", S["kR"], 401, "unauthorized"),
                    ("a key with another secret", "dfd_%s_%s" % (kid, secrets.token_urlsafe(32)), 401, "unauthorized"),
                    ("an unknown key id", "dfd_%s_%s" % ("0" * 12, secrets.token_urlsafe(32)), 401, "unauthorized"),
                    ("a key cut short", S["kA"][:-5], 401, "unauthorized"), ("the bare prefix", "dfd_", 401, "unauthorized"),
                    ("a 300-byte key", "dfd_" + "a" * 296, 401, "unauthorized"),
                    ("the key with metacharacters", S["kA"] + "'; --", 401, "unauthorized")]
        elif kind in ("internal", "runner"):
            other = c.runner_token if kind == "internal" else c.internal_key
            rows = [("no token", None, 401, "unauthorized"), ("the other internal secret", other, 401, "unauthorized"),
                    ("a session JWT", S["ja"], 401, "unauthorized"), ("an API key", S["kA"], 401, "unauthorized"),
                    ("the right secret plus a byte", credential(c, kind) + "x", 401, "unauthorized")]
            case("credentials", "%s: the right secret from outside INTERNAL_ALLOW_CIDRS" % name, method, path, 403,
                 "forbidden", token=credential(c, kind), body=body, source="127.0.0.2")
        for what, tok, status, slug in rows:
            case("credentials", "%s: %s" % (name, what), method, path, status, slug, token=tok, body=body)


def gen_jwts(c):
    now = int(time.time())
    sec = c.jwt_secret
    sub = S["alice"]

    def jwt(claims=None, header=None, alg="HS256", secret=sec):
        cl = {"sub": sub, "iat": now, "exp": now + 600} if claims is None else claims
        return e2e.make_jwt(cl, secret, alg=alg, header=header)

    def raw_jwt(header_bytes, claims_bytes, secret=sec):
        si = e2e.b64url(header_bytes) + "." + e2e.b64url(claims_bytes)
        return si + "." + e2e.b64url(hmac.new(secret.encode(), si.encode(), hashlib.sha256).digest())

    valid = jwt()
    forged = [
        ("alg none, no signature", jwt(header={"alg": "none", "typ": "JWT"}, alg="none")),
        ("alg None (case)", jwt(header={"alg": "None", "typ": "JWT"}, alg="none")),
        ("alg none with the HS256 signature kept", jwt(header={"alg": "none", "typ": "JWT"}, alg="none")[:-1] + valid.split(".")[2]),
        ("alg HS512", jwt(header={"alg": "HS512", "typ": "JWT"}, alg="HS512")),
        ("alg RS256 MACed with the secret (alg confusion)", raw_jwt(b'{"alg":"RS256","typ":"JWT"}',
                                                                   json.dumps({"sub": sub, "iat": now, "exp": now + 600}).encode())),
        ("alg ES256 MACed with the secret", raw_jwt(b'{"alg":"ES256","typ":"JWT"}',
                                                   json.dumps({"sub": sub, "iat": now, "exp": now + 600}).encode())),
        ("alg hs256 (lower case)", raw_jwt(b'{"alg":"hs256","typ":"JWT"}', json.dumps({"sub": sub, "iat": now, "exp": now + 600}).encode())),
        ("no typ", jwt(header={"alg": "HS256"})),
        ("a kid header", jwt(header={"alg": "HS256", "typ": "JWT", "kid": "../../../dev/null"})),
        ("a jku header", jwt(header={"alg": "HS256", "typ": "JWT", "jku": "https://evil.example/jwks"})),
        ("a crit header", jwt(header={"alg": "HS256", "typ": "JWT", "crit": ["exp"]})),
        ("a header that is not JSON", raw_jwt(b"not json", json.dumps({"sub": sub, "iat": now, "exp": now + 600}).encode())),
        ("claims that are not JSON", raw_jwt(b'{"alg":"HS256","typ":"JWT"}', b"{sub")),
        ("signed with another secret", jwt(secret=secrets.token_urlsafe(48))),
        ("signed with the empty secret", jwt(secret="")),
        ("expired an hour ago", jwt({"sub": sub, "iat": now - 7200, "exp": now - 3600})),
        ("expired 61 s ago (past the leeway)", jwt({"sub": sub, "iat": now - 7200, "exp": now - 61})),
        ("issued an hour in the future", jwt({"sub": sub, "iat": now + 3600, "exp": now + 7200})),
        ("not valid before an hour from now", jwt({"sub": sub, "iat": now, "nbf": now + 3600, "exp": now + 7200})),
        ("no exp", jwt({"sub": sub, "iat": now})),
        ("exp as a string", jwt({"sub": sub, "iat": now, "exp": str(now + 600)})),
        ("exp past 2^63", jwt({"sub": sub, "iat": now, "exp": 2 ** 64})),
        ("no sub", jwt({"iat": now, "exp": now + 600})),
        ("sub not a UUID", jwt({"sub": "alice", "iat": now, "exp": now + 600})),
        ("sub with SQL", jwt({"sub": sub + "' OR '1'='1", "iat": now, "exp": now + 600})),
        ("sub of no user", jwt({"sub": str(uuid.uuid4()), "iat": now, "exp": now + 600})),
        ("the signature cut", valid[:-3]),
        ("the signature emptied", valid.rsplit(".", 1)[0] + "."),
        ("two parts", valid.rsplit(".", 1)[0]),
        ("four parts", valid + ".x"),
        ("base64 padding added", valid + "=="),
        ("characters outside base64url", valid.replace("-", "+").replace("_", "/") + "+/"),
        ("a 5000-byte token", "eyJ" + "a" * 5000 + ".eyJ" + "b" * 100 + ".c"),
        ("garbage", "garbage"),
    ]
    routes = [("GET", "/orgs/%s" % S["A"], None), ("POST", "/orgs", {"name": "forged"}),
              ("PATCH", "/orgs/%s/members/%s" % (S["A"], S["carol"]), {"role": "owner"})]
    for i, (method, path, body) in enumerate(routes):
        for what, tok in forged:
            if i > 0 and not LONG and i % 2 != forged.index((what, tok)) % 2:
                continue  # the default run spreads the forgeries over the write routes
            case("JWT", "%s on %s %s" % (what, method, re.sub(r"/[0-9a-f-]{36}", "/{id}", path)), method, path, 401,
                 "unauthorized", token=tok, body=body)
    for what, h in (("the Basic scheme", "Basic " + base64.b64encode(b"alice:pw").decode()),
                    ("a JWT without a scheme", S["ja"]), ("Bearer without a space", "Bearer" + S["ja"]),
                    ("two Bearer tokens", "Bearer %s Bearer %s" % (S["jb"], S["ja"]))):
        case("JWT", "Authorization: %s" % what, "GET", "/orgs/" + S["A"], 401, "unauthorized", headers={"Authorization": h})


def gen_idor(c):
    """bob (owner of B only) on every org-scoped route with A's ids, and through his own org
    with A's resources: each answers exactly like something that does not exist (404)."""
    for method, pattern, op in operations():
        if auth_kind(pattern, op) != "session":
            continue
        b = baseline(c, method, pattern, op)
        names = set(b["params"]) | set(b["query"])
        if not names & {"org", "user", "id"}:
            continue
        path = build_path(pattern, b["params"], b["query"])
        case("IDOR", "bob: %s %s with org A's ids" % (method, pattern), method, path, 404, "not-found",
             token=S["jb"], body=b["body"])
        if "org" in names and names & {"user", "id"}:
            params, query = dict(b["params"]), dict(b["query"])
            if "org" in params:
                params["org"] = S["B"]
            else:
                query["org"] = S["B"]
            case("IDOR", "bob: %s %s, his own org and A's resource" % (method, pattern), method,
                 build_path(pattern, params, query), 404, "not-found", token=S["jb"], body=b["body"])
        # a nonexistent org id answers the same: nothing tells the two apart
        if "org" in names:
            params, query = dict(b["params"]), dict(b["query"])
            (params if "org" in params else query)["org"] = str(uuid.uuid4())
            case("IDOR", "alice: %s %s with an org that does not exist" % (method, pattern), method,
                 build_path(pattern, params, query), 404, "not-found", token=S["ja"], body=b["body"])


def gen_owner_only(c):
    """carol (a plain member of A) on every route documented as "(owners)": 403."""
    for method, pattern, op in operations():
        if "(owners)" not in op.get("summary", ""):
            continue
        b = baseline(c, method, pattern, op)
        body = b["body"]
        if pattern == "/orgs/{org}/members/{user}":
            body = {"role": "owner"}  # promoting herself
        case("owner-only", "carol (member): %s %s" % (method, pattern), method,
             build_path(pattern, b["params"], b["query"]), 403, "forbidden", token=S["jc"], body=body)
    # the member may still not promote herself through a body with an extra member
    case("owner-only", "carol: PATCH her own role with an extra member", "PATCH",
         "/orgs/%s/members/%s" % (S["A"], S["carol"]), 422, "invalid-request", token=S["jc"],
         body={"role": "owner", "org_id": S["A"]})


def gen_replays(c):
    """Links used twice, expired links, tokens of the wrong kind, revoked keys and shares."""
    used, inv = S["used_magic"], S["used_invite"]
    for what, path, tok in (
            ("a magic link used a second time", "/auth/verify", used),
            ("an invite accepted a second time", "/auth/accept-invite", inv),
            ("an expired magic link", "/auth/verify", S["expired_magic"]),
            ("an expired invite", "/auth/accept-invite", S["expired_invite"]),
            ("a magic-link token at accept-invite", "/auth/accept-invite", S["expired_magic"]),
            ("an invite token at auth/verify", "/auth/verify", inv),
            ("a used magic link in upper case", "/auth/verify", used.upper()),
            ("a used magic link with a trailing space", "/auth/verify", used + " "),
            ("a share token as a magic link", "/auth/verify", S["shareA_token"]),
            ("an API key as a magic link", "/auth/verify", S["kA"])):
        case("replay", what, "POST", path, 401, "unauthorized", body={"token": tok})
    for path in ("/auth/verify", "/auth/accept-invite"):
        case("replay", "%s with an empty token" % path, "POST", path, 422, "invalid-request", body={"token": ""})
        case("replay", "%s with a 201-byte token" % path, "POST", path, 422, "invalid-request", body={"token": "d" * 201})
        case("replay", "%s with a token that is a number" % path, "POST", path, 422, "invalid-request", body={"token": 7})
        case("replay", "%s without a token" % path, "POST", path, 422, "invalid-request", body={})
    # revoked things stay revoked
    case("replay", "a receipt with the revoked key", "POST", "/receipts", 401, "unauthorized", token=S["kR"],
         body={"kind": "hostile.revoked", "fields": {}})
    case("replay", "revoking the revoked key again", "DELETE", "/orgs/%s/api-keys/%s" % (S["A"], S["kR_id"]), 404,
         "not-found", token=S["ja"])
    case("replay", "a revoked share link", "GET", "/share/" + S["shareR_token"], 404, "not-found")
    case("replay", "a share link with a byte changed", "GET", "/share/" + S["shareA_token"][:-1] +
         ("A" if S["shareA_token"][-1] != "A" else "B"), 404, "not-found")
    case("replay", "a share link cut short", "GET", "/share/" + S["shareA_token"][:-1], 404, "not-found")
    case("replay", "the session of a user after session_revoke_all", "GET", "/me", 401, "unauthorized", token=S["jd"])


def gen_webhooks(c):
    ev = S["event"]
    sec = c.stripe_secret
    now = int(time.time())

    def duplicate(resp):
        return [] if (resp.json or {}).get("outcome") == "duplicate" else ["outcome is not duplicate"]

    # redeliveries of an event already applied: acknowledged, nothing changes
    case("webhook", "the captured delivery replayed as it was", "POST", "/webhooks/stripe", 200, body=ev,
         headers={"Stripe-Signature": S["event_sig"]}, expect="ok", check=duplicate)
    case("webhook", "the same event re-signed now (a redelivery)", "POST", "/webhooks/stripe", 200, body=ev,
         headers=signed(c, ev), expect="ok", check=duplicate)
    other = ev.replace(b'"cus_hostile"', b'"cus_evil"')
    case("webhook", "the same event id with another body, validly signed", "POST", "/webhooks/stripe", 200,
         body=other, headers=signed(c, other), expect="ok", check=duplicate)
    rows = [
        ("no Stripe-Signature", None, ev),
        ("a timestamp 301 s old (stale)", e2e.stripe_header(ev, sec, now - 301), ev),
        ("a timestamp a day old", e2e.stripe_header(ev, sec, now - 86400), ev),
        ("a timestamp 600 s in the future", e2e.stripe_header(ev, sec, now + 600), ev),
        ("t=0", e2e.stripe_header(ev, sec, 0), ev),
        ("a timestamp past 2^63", "t=%d,v1=%s" % (2 ** 64, "0" * 64), ev),
        ("a negative timestamp", "t=-1,v1=%s" % ("0" * 64), ev),
        ("a timestamp that is not a number", "t=abc,v1=%s" % e2e.stripe_header(ev, sec, now).split("v1=")[1], ev),
        ("no timestamp", "v1=" + e2e.stripe_header(ev, sec, now).split("v1=")[1], ev),
        ("no v1", "t=%d" % now, ev),
        ("v0 only", "t=%d,v0=%s" % (now, e2e.stripe_header(ev, sec, now).split("v1=")[1]), ev),
        ("the signature in upper case", e2e.stripe_header(ev, sec, now).upper().replace("T=", "t=").replace("V1=", "v1="), ev),
        ("a signature one hex digit short", e2e.stripe_header(ev, sec, now)[:-1], ev),
        ("a signature by another secret", e2e.stripe_header(ev, "whsec_other", now), ev),
        ("a body changed after signing", e2e.stripe_header(ev, sec, now), other),
        ("a 5000-byte header", "t=%d,%s" % (now, ",".join(["v1=" + "0" * 64] * 75)), ev),
        ("metacharacters in the header", "t=%d,v1='; DROP TABLE x; --" % now, ev),
    ]
    for what, header, body in rows:
        case("webhook", what, "POST", "/webhooks/stripe", 400, "bad-signature", body=body,
             headers={"Stripe-Signature": header} if header is not None else {})
    # validly signed bodies that are not events, or events with hostile members
    # an event without data is acknowledged with nothing applied (gateway/test_stripe.c, "absent
    # data or data.object"): Stripe retries anything but a 2xx, and a retry cannot help
    data = json.dumps({"id": "evt_h2", "type": "checkout.session.completed"}).encode()
    case("webhook", "signed: an event without data (acknowledged, nothing applied)", "POST", "/webhooks/stripe", 200,
         body=data, headers=signed(c, data), expect="ok", changes={"stripe_events"},
         check=lambda resp: [] if (resp.json or {}).get("outcome") == "unknown_org" else ["outcome is not unknown_org"])
    for what, doc in (("an event whose id is a number", {"id": 7, "type": "x", "data": {"object": {}}}),
                      ("an event whose data is a string", {"id": "evt_h3", "type": "x", "data": "'; --"}),
                      ("an empty object", {})):
        data = json.dumps(doc).encode()
        case("webhook", "signed: %s" % what, "POST", "/webhooks/stripe", 400, "malformed-json", body=data,
             headers=signed(c, data))
    data = b""
    case("webhook", "signed: an empty body", "POST", "/webhooks/stripe", 400, "malformed-json", body=data,
         headers=signed(c, data), ctype="application/json")


def gen_paths(c):
    """Path traversal, encodings and look-alike paths: 404 problems, never a file or a route."""
    A, tok = S["A"], S["shareA_token"]
    rows = [
        ("dot segments to another route", "/orgs/../healthz"), ("encoded dot segments", "/orgs/%2e%2e/healthz"),
        ("an encoded traversal in a share token", "/share/..%2F..%2F..%2Fetc%2Fpasswd"),
        ("dot-dot as a share token", "/share/%2e%2e"), ("a traversal in a seq", "/receipts/..%2F..%2F1?org=" + A),
        ("a doubled slash", "//healthz"), ("a trailing slash", "/healthz/"), ("upper case", "/HEALTHZ"),
        ("a backslash traversal", "/share/..%5C..%5Cwindows%5Cwin.ini"), ("a file URL", "/file:%2F%2F%2Fetc%2Fpasswd"),
        ("/etc/passwd", "/etc/passwd"), ("an encoded NUL after an org id", "/orgs/%s%%00/members" % A),
        ("an encoded NUL after a share token", "/share/%s%%00x" % tok), ("an encoded NUL alone", "/orgs/%00"),
        ("invalid UTF-8 (percent-encoded)", "/orgs/%ff%fe"), ("an overlong dot", "/orgs/%c0%ae%c0%ae/healthz"),
        ("an emoji", "/orgs/%F0%9F%98%80"), ("a seq of 2^63", "/receipts/9223372036854775808?org=" + A),
        ("a negative seq", "/receipts/-1?org=" + A), ("a seq with a plus", "/receipts/+1?org=" + A),
        ("a seq of zero", "/receipts/0?org=" + A), ("a seq 0x1", "/receipts/0x1?org=" + A),
        ("a seq with leading zeros", "/receipts/01?org=" + A), ("a share token of 127 bytes", "/share/" + "a" * 127),
        ("an org id in upper case braces", "/orgs/%7B" + A.upper() + "%7D"),
        ("a matrix parameter", "/orgs/%s;x=1" % A), ("a fragment-like suffix", "/orgs/%s%%23x" % A),
    ]
    for what, path in rows:
        case("path", what, "GET", path, 404, "not-found", token=S["ja"])
    # query strings: duplicates, encodings, injection into names
    for what, q, status, slug in (
            ("org given twice (A then B) to bob", "org=%s&org=%s" % (A, S["B"]), 404, "not-found"),
            ("an org id with a trailing NUL", "org=%s%%00" % A, 422, "invalid-request"),
            ("an org id with a trailing space", "org=%s%%20" % A, 422, "invalid-request"),
            ("an org id with invalid UTF-8", "org=%ff" + A[1:], 422, "invalid-request"),
            ("limit 0", "org=%s&limit=0" % A, 422, "invalid-request"), ("limit 201", "org=%s&limit=201" % A, 422, "invalid-request"),
            ("limit -1", "org=%s&limit=-1" % A, 422, "invalid-request"), ("limit 1e3", "org=%s&limit=1e3" % A, 422, "invalid-request"),
            ("after 2^63", "org=%s&after=9223372036854775808" % A, 422, "invalid-request"),
            ("after -1", "org=%s&after=-1" % A, 422, "invalid-request"), ("an empty org", "org=", 422, "invalid-request"),
            ("no org", "", 422, "invalid-request")):
        tokn = S["jb"] if "bob" in what else S["ja"]
        case("path", "GET /receipts with %s" % what, "GET", "/receipts?" + q, status, slug, token=tokn)


def parse_raw(text):
    """A raw HTTP answer as an e2e.Resp, so the problem checks apply to it."""
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0] if lines else "")
    headers = [tuple(x.strip() for x in l.split(":", 1)) for l in lines[1:] if ":" in l]
    return e2e.Resp("RAW", "-", int(m.group(1)) if m else 0, headers, body.encode("latin-1"), 0, {})


def gen_raw(c):
    """Requests http.client will not send: the gateway (or libmicrohttpd before it) refuses them."""
    ja = S["ja"].encode()

    def problem(status, slug):
        return lambda resp: e2e.problem_errors(resp, status, slug)

    rows = [
        # answered by the gateway: problem+json
        ("invalid UTF-8 bytes in the path", b"GET /orgs/\xff\xfe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ja +
         b"\r\nConnection: close\r\n\r\n", "gateway", 404, "not-found"),
        ("a bare NUL byte in the path", b"GET /share/\x00x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "gateway",
         404, "not-found"),
        ("an absolute-form target", b"GET http://evil.example/healthz/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         "mhd-or-gateway", (400, 404), None),
        ("a JSON body with invalid UTF-8 sent chunked", b"POST /orgs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ja +
         b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
         b"6\r\n{\"na\xff\r\n9\r\nme\":\"x\"}\r\n0\r\n\r\n", "gateway", 400, "malformed-json"),
        # refused by libmicrohttpd before the gateway sees the request (docs/gateway.md, Limits)
        ("a 70 KB header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\nConnection: close\r\n\r\n",
         "mhd", (400, 413, 431), None),
        ("3000 headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(3000)) +
         b"Connection: close\r\n\r\n", "mhd", (400, 413, 431), None),
        ("a 70 KB Authorization header", b"GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"a" * 70000 +
         b"\r\nConnection: close\r\n\r\n", "mhd", (400, 413, 431), None),
        ("a 3 KB request target", b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         "gateway", 414, "uri-too-long"),
        ("a garbage request line", b"GARBAGE\r\n\r\n", "mhd", (400, 0), None),
        ("a header line without a colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\nConnection: close\r\n\r\n",
         "mhd", (400, 0), None),
        ("a negative Content-Length", b"POST /orgs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         b"Content-Length: -1\r\nConnection: close\r\n\r\n{}", "mhd", (400, 0), None),
        ("a Content-Length that is not a number", b"POST /orgs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         b"Content-Length: 1x\r\nConnection: close\r\n\r\n{}", "mhd", (400, 0), None),
        ("a Content-Length past 2^64", b"POST /orgs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         b"Content-Length: 99999999999999999999999\r\nConnection: close\r\n\r\n{}", "mhd", (400, 413, 0), None),
        ("a bad chunk size", b"POST /orgs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ja +
         b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
         "mhd", (400, 0), None),
        ("a chunk size past 2^64", b"POST /orgs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ja +
         b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
         b"fffffffffffffffffffff\r\n{}\r\n0\r\n\r\n", "mhd", (400, 413, 0), None),
        ("Content-Length and chunked together, a request smuggled in the body",
         b"POST /auth/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nPOST /orgs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ja +
         b"\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{\"name\":\"smug\"}",
         "smuggle", (400, 422, 0), None),
        ("an obsolete folded header", b"GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\n " + ja +
         b"\r\nConnection: close\r\n\r\n", "mhd-or-gateway", (400, 401), None),
        ("a NUL in a header value", b"GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ja[:20] + b"\x00" + ja[20:] +
         b"\r\nConnection: close\r\n\r\n", "mhd-or-gateway", (400, 401, 0), None),
        ("HTTP/0.9", b"GET /healthz\r\n\r\n", "mhd", (400, 505, 0), None),
    ]
    for what, data, who, status, slug in rows:
        if who == "smuggle":
            # the first request may be answered (read as chunked, RFC 9112 section 6.1), but the
            # connection must close after it: the second request must never run
            case("transport", what, "RAW", "-", status, raw=data, expect="raw",
                 check=lambda resp: [] if resp.raw_text.count("HTTP/1.1 ") <= 1 else ["a second answer: the smuggled request ran"])
        elif who == "gateway":
            case("transport", what, "RAW", "-", status, slug, raw=data, expect="raw", check=problem(status, slug))
        else:
            case("transport", what, "RAW", "-", status, raw=data, expect="raw")


# ---------------------------------------------------------------------------------------------

def main():
    if e2e.missing_cluster("hostile"):
        return 1
    if not os.access(e2e.GATEWAY, os.X_OK):
        print("hostile: %s is missing (make -C gateway)" % e2e.GATEWAY)
        print("hostile: 0 passed, 1 failed")
        return 1
    t0 = time.time()
    c = e2e.Ctx()
    c.tmp = tempfile.mkdtemp(prefix="dfd-hostile-")
    c.mail_dir = os.path.join(c.tmp, "mail")
    c.jwt_secret = S["jwt_secret"] = secrets.token_urlsafe(48)
    c.internal_key, c.runner_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    c.stripe_secret = "whsec_" + secrets.token_hex(16)
    c.stripe = None
    gw = None
    aborted = 0
    try:
        e2e.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB, db="postgres")
        e2e.psql("CREATE DATABASE %s" % DB, db="postgres")
        e2e.psql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN CREATE ROLE %s LOGIN; END IF; END $$"
                 % (DB_ROLE, DB_ROLE), db="postgres")
        e2e.psql("ALTER ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS; GRANT defendable_gateway TO %s"
                 % (DB_ROLE, DB_ROLE), db="postgres")
        psql("CREATE EXTENSION defendable")
        port = e2e.free_port()
        c.base = "http://127.0.0.1:%d" % port
        c.stripe = e2e.stripe_stand_in()  # counts requests: no refused checkout may reach it
        env = e2e.gateway_env(c, port, "host=%s port=%s dbname=%s user=%s" % (
            os.environ["PGHOST"], os.environ["PGPORT"], DB, DB_ROLE), {
            "MAIL_DIR": c.mail_dir, "INTERNAL_API_KEY": c.internal_key, "RUNNER_TOKEN": c.runner_token,
            "INTERNAL_ALLOW_CIDRS": "127.0.0.1/32", "STRIPE_API_KEY": c.stripe.key, "STRIPE_PRICE_ID": "price_hostile",
            "STRIPE_API_BASE": "http://127.0.0.1:%d" % c.stripe.port, "STRIPE_WEBHOOK_SECRET": c.stripe_secret,
            # presigning is local: a key pair lets download grants reach their SQL checks
            "AWS_ACCESS_KEY_ID": "AKIAHOSTILE", "AWS_SECRET_ACCESS_KEY": secrets.token_hex(20),
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9", "AWS_S3_ADDRESSING_STYLE": "path"})
        gw = e2e.Gateway("hostile", env, c.tmp)
        S["gw"] = c.gw = gw
        if not record(gw.wait_healthy(), "the gateway starts", gw.log_text()[-2000:]):
            raise RuntimeError("gateway did not start")
        r = gw.req("GET", "/openapi.json")
        e2e.DOC.update(r.json or {})
        if not record(r.status == 200 and "paths" in e2e.DOC, "the route table is read from /openapi.json", r.desc()):
            raise RuntimeError("no OpenAPI document")
        setup(gw, c)
        global FP_SQL
        FP_SQL, tables = build_fingerprint_sql()
        record(len(tables) >= 15, "the fingerprint covers every table of schema defendable but %s (%d tables)"
               % (", ".join(BOOKKEEPING), len(tables)), tables)
        for gen in (gen_webhooks, gen_replays, gen_credentials, gen_jwts, gen_idor, gen_owner_only, gen_paths,
                    gen_bodies, gen_sizes_and_methods, gen_raw, gen_metachars):
            gen(c)
        record(len(CASES) >= 150, "the matrix has at least 150 cases (%d)" % len(CASES))
        for i, cs in enumerate(CASES):
            if not run_case(gw, cs):
                aborted = len(CASES) - i - 1
                record(False, "the gateway died during [%s] %s; %d cases not run" % (cs["cat"], cs["name"], aborted),
                       gw.log_text()[-3000:])
                break
        if gw.proc.poll() is None:
            for org, jwt in (("A", "ja"), ("B", "jb")):
                r = gw.req("GET", "/ledger/verify?org=" + S[org], token=S[jwt], keep=False)
                record(r.status == 200 and (r.json or {}).get("ok") is True, "org %s's ledger verifies after the matrix" % org,
                       r.desc())
            record(len(c.stripe.requests) == 0, "no refused checkout reached Stripe", len(c.stripe.requests))
            gw.stop()
            record(gw.proc.returncode == 0, "the gateway stops cleanly (exit %s)" % gw.proc.returncode,
                   gw.log_text()[-1500:])
        log = gw.log_text()
        found = [m for m in SANITIZER_MARKS if m in log]
        record(not found, "the gateway's stderr holds no sanitizer report (%s)" % os.path.basename(e2e.GATEWAY),
               "\n".join(l for l in log.split("\n") if any(m in l for m in SANITIZER_MARKS))[:3000] or log[-3000:])
    except Exception:
        record(False, "suite", traceback.format_exc())
    finally:
        if gw is not None:
            try:
                gw.stop()
            except Exception:
                pass
        if c.stripe is not None:
            c.stripe.stop()
        if os.environ.get("DFD_HOSTILE_KEEP"):
            print("hostile: kept database %s and %s" % (DB, c.tmp))
        else:
            e2e.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB, db="postgres", check=False)
            subprocess.run(["rm", "-rf", c.tmp])
    for cat in sorted(COUNTS):
        print("hostile: %4d cases  %s" % (COUNTS[cat], cat))
    print("hostile: %d cases in %.1f s (%s%s)" % (sum(COUNTS.values()), time.time() - t0,
                                                os.path.basename(e2e.GATEWAY), ", long" if LONG else ""))
    print("hostile: %d passed, %d failed" % (e2e.PASSED, e2e.FAILED))
    return 1 if e2e.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
