#!/usr/bin/env python3
"""The tamper suite (issue 9): a malicious superuser against a 10-org ledger.

Builds one ledger (10 organizations x 1,000 receipts by default) in a fresh database, signs two
checkpoints per organization outside the database with gateway/defendable-verify, then makes
hundreds of random single changes, each inside a transaction with the write guards bypassed
(session_replication_role = replica) and rolled back afterwards. For every change the expected
verdict is written down from the change itself (which org, which seq, which reason), then the
detectors run and must agree exactly:

* verify_ledger() for every change to receipts and heads (all orgs: only the tampered one fails);
* verify_checkpoint() against the checkpoints signed before, for a rewrite with recomputed
  hashes and a tail truncated together with its head, which verify_ledger cannot see;
* verify_disclosures() for salts and values;
* inclusion proofs checked against the signed root, for stored Merkle nodes, which only serve
  proofs (a model of RFC 9162 written here says which leaf's proof reads the changed node).

Changes that no verifier can see by design are run too, reported apart and not counted.

Talks to the server through one long-lived psql process (PGHOST, PGPORT, PGUSER from the
environment). Stdlib only. Last line: "tamper: N passed, N failed"; exit 1 on any failure.
"""

import argparse
import base64
import json
import os
import queue
import random
import string
import subprocess
import sys
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(ROOT, "gateway", "defendable-verify")
ORIGIN = "ledger.example.com"
ZERO_HASH = "\\x" + "00" * 32
SEP = "\x1f"
END = "@@tamper-end@@"
STORED_LEVEL = 4  # merkle_nodes keeps perfect subtrees of 16 leaves and more


def sql_text(value):
    """A SQL string literal (standard_conforming_strings is on)."""
    return "'" + str(value).replace("'", "''") + "'"


def dollar(value):
    """A dollar-quoted literal for texts with newlines (signed notes)."""
    tag = "$n$"
    assert tag not in value
    return tag + value + tag


class Psql:
    """One psql session fed statements on stdin; each batch ends with a sentinel on both streams."""

    def __init__(self, dbname):
        self.proc = subprocess.Popen(
            ["psql", "-X", "-q", "-A", "-t", "-F", SEP, "-v", "ON_ERROR_STOP=0",
             "-v", "VERBOSITY=terse", "-d", dbname],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", bufsize=1)
        self.errors = queue.Queue()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.errors.put(line.rstrip("\n"))

    def run(self, sql):
        """Runs a batch; returns (rows split on the separator, error lines)."""
        self.proc.stdin.write(sql + "\n\\echo " + END + "\n\\warn " + END + "\n")
        self.proc.stdin.flush()
        rows = []
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line == END:
                break
            if line:
                rows.append(line.split(SEP))
        else:
            raise RuntimeError("psql ended")
        errors = []
        while True:
            line = self.errors.get(timeout=60)
            if line == END:
                break
            errors.append(line)
        return rows, errors

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def must(session, sql):
    rows, errors = session.run(sql)
    if errors:
        raise RuntimeError("set-up failed: " + " | ".join(errors))
    return rows


# ---------------------------------------------------------------------------------------------
# The ledger
# ---------------------------------------------------------------------------------------------

KINDS = ["auth.verify", "apikey.create", "apikey.revoke", "role.change", "dataset.download",
         "run.complete", "incident.declared", "secret.rotation", "invite.accept", "backup.drill"]


def random_word(rng, n=8):
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(n))


FIELD_MAKERS = {
    "user": lambda r: "u_" + random_word(r, 6),
    "method": lambda r: r.choice(["magic_link", "api_key", "sso"]),
    "amount": lambda r: r.randint(0, 10**6) / 100,
    "count": lambda r: r.randint(-1000, 10**9),
    "ok": lambda r: r.random() < 0.5,
    "note": lambda r: r.choice(["café ☕", "line\nbreak", "quote \" and \\", "plain"]) + random_word(r, 3),
    "scopes": lambda r: r.sample(["read", "write", "admin", "billing"], r.randint(0, 3)),
    "detail": lambda r: {"a": r.randint(0, 9), "b": [None, True, random_word(r, 4)], "é": "x"},
    "region": lambda r: r.choice(["eu-west", "us-east", "ap-south"]),
    "api_key": lambda r: "dfd_" + random_word(r, 20),
    "email": lambda r: random_word(r, 5) + "@example.com",
    "status": lambda r: r.choice(["ok", "failed", "queued"]),
}


def build_ledger(session, rng, orgs, per_org):
    for org in orgs:
        values = []
        for _ in range(per_org):
            names = [] if rng.random() < 0.05 else rng.sample(sorted(FIELD_MAKERS), rng.randint(1, 5))
            fields = {n: FIELD_MAKERS[n](rng) for n in names}
            public = [n for n in names if rng.random() < 0.5]
            values.append("(%s, %s, %s)" % (
                sql_text(rng.choice(KINDS)), sql_text(json.dumps(fields, ensure_ascii=False)),
                sql_text("{" + ",".join(public) + "}")))
        must(session, "SELECT count(defendable.append_receipt(%s, v.k, v.f::jsonb, v.p::text[])) "
             "FROM (VALUES %s) v(k, f, p);" % (sql_text(org), ",\n".join(values)))


KIT = r"""
CREATE SCHEMA tamper_kit;
-- The documented body (docs/receipt-format.md section 3) rebuilt in SQL, as an attacker would:
-- the hash of a forged or rewritten receipt, computed without the extension's own code.
CREATE FUNCTION tamper_kit.body_hash(o uuid, s bigint, t timestamptz, k text, p bytea, f jsonb)
RETURNS bytea LANGUAGE sql STABLE AS $$
    SELECT sha256(convert_to(defendable.jcs(jsonb_build_object('v', 1, 'org', o, 'seq', s,
        'ts', to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'kind', k,
        'prev', encode(p, 'hex'), 'fields', f)), 'UTF8'))
$$;
CREATE FUNCTION tamper_kit.prev_of(o uuid, s bigint) RETURNS bytea LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN s = 1 THEN decode(repeat('00', 32), 'hex')
                ELSE (SELECT hash FROM defendable.receipts WHERE org_id = o AND seq = s - 1) END
$$;
-- Recomputes prev and hash of receipts from_seq..upto (all the rest if upto is null), in order.
CREATE FUNCTION tamper_kit.rechain(o uuid, from_seq bigint, upto bigint DEFAULT NULL)
RETURNS bytea LANGUAGE plpgsql AS $$
DECLARE r record; p bytea := tamper_kit.prev_of(o, from_seq); h bytea;
BEGIN
    FOR r IN SELECT * FROM defendable.receipts WHERE org_id = o AND seq >= from_seq
             AND (upto IS NULL OR seq <= upto) ORDER BY seq LOOP
        h := tamper_kit.body_hash(o, r.seq, r.ts, r.kind, p, r.fields);
        UPDATE defendable.receipts SET prev = p, hash = h WHERE org_id = o AND seq = r.seq;
        p := h;
    END LOOP;
    RETURN p;
END $$;
-- Moves the head onto the last receipt, as a careful attacker would (frontier dropped: a stale one
-- is ignored by appends anyway).
CREATE FUNCTION tamper_kit.move_head(o uuid) RETURNS void LANGUAGE sql AS $$
    UPDATE defendable.heads h SET seq = r.seq, hash = r.hash, frontier = NULL
    FROM (SELECT seq, hash FROM defendable.receipts WHERE org_id = o ORDER BY seq DESC LIMIT 1) r
    WHERE h.org_id = o;
$$;
-- Detectors that may raise (an incomplete tree): the error is a detection too, so it is returned.
CREATE FUNCTION tamper_kit.try_checkpoint(note text, vkey text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
    SELECT * INTO r FROM defendable.verify_checkpoint(note, vkey);
    RETURN CASE WHEN r.ok THEN 'ok' ELSE 'fail' END || chr(31) || r.current_size || chr(31) || r.detail;
EXCEPTION WHEN OTHERS THEN
    RETURN 'error' || chr(31) || '' || chr(31) || SQLERRM;
END $$;
CREATE FUNCTION tamper_kit.try_inclusion(o uuid, s bigint, size bigint, root bytea) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    RETURN CASE WHEN defendable.verify_inclusion(
                    (SELECT hash FROM defendable.receipts WHERE org_id = o AND seq = s), s, size,
                    defendable.inclusion_proof(o, s, size), root)
           THEN 'ok' ELSE 'fail' END;
EXCEPTION WHEN OTHERS THEN
    RETURN 'error ' || SQLERRM;
END $$;
"""


def sign(body, keyfile):
    p = subprocess.run([CLI, "sign", "--key", keyfile], input=body.encode(), capture_output=True)
    if p.returncode != 0:
        raise RuntimeError("signing failed: " + p.stderr.decode())
    note = p.stdout.decode()
    return note if note.endswith("\n") else note + "\n"


# ---------------------------------------------------------------------------------------------
# An independent model of the RFC 9162 tree: which stored nodes a root or a proof reads
# ---------------------------------------------------------------------------------------------

def largest_power_below(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def pieces(start, count):
    """The perfect subtrees (level, index) a range [start, start + count) is folded from."""
    out, at = [], start
    for level in range(63, -1, -1):
        if count & (1 << level):
            out.append((level, at >> level))
            at += 1 << level
    return out


def inclusion_ranges(m, lo, hi):
    """RFC 9162 2.1.3.1 PATH(m, D[lo:hi]): the ranges whose roots form the proof of leaf m."""
    if hi - lo <= 1:
        return []
    k = largest_power_below(hi - lo)
    if m < lo + k:
        return inclusion_ranges(m, lo, lo + k) + [(lo + k, hi)]
    return inclusion_ranges(m, lo + k, hi) + [(lo, lo + k)]


def stored_nodes_read(ranges):
    return {p for lo, hi in ranges for p in pieces(lo, hi - lo) if p[0] >= STORED_LEVEL}


# ---------------------------------------------------------------------------------------------
# Tamper generators. Each returns a Case: the SQL of the change, and the expected verdicts,
# computed from the change alone.
# ---------------------------------------------------------------------------------------------

class Case:
    def __init__(self, category, what, sql, ledger=None, extra_orgs=None, checkpoints=None,
                 disclosures=None, inclusion=None, detector="verify_ledger", exact=True):
        self.category = category
        self.what = what
        self.sql = sql
        # verify_ledger(): org -> None (ok) or (first_bad_seq, detail); unnamed orgs must be ok
        self.ledger = ledger or {}
        # orgs that did not exist before (a row moved away): (first_bad_seq, detail)
        self.extra_orgs = extra_orgs or {}
        # label -> (status 'ok'/'fail'/'error', detail substring or None, current_size or None)
        self.checkpoints = checkpoints or {}
        # org -> (first_bad_seq, detail or detail prefix ending in a space)
        self.disclosures = disclosures
        # (org, seq, size, root, expected 'fail'/'error')
        self.inclusion = inclusion
        self.detector = detector
        self.exact = exact  # the first bad seq is defined and checked


class Ledger:
    """What the suite knows of the intact ledger (read once, before any change)."""

    def __init__(self, orgs, n, fields, salts, nodes, cps):
        self.orgs, self.n, self.fields, self.salts, self.nodes, self.cps = orgs, n, fields, salts, nodes, cps


def b64_flip(rng, s):
    alphabet = string.ascii_letters + string.digits + "-_"
    i = rng.randrange(len(s))
    return s[:i] + rng.choice([c for c in alphabet if c != s[i]]) + s[i + 1:], i


def flip_bit_sql(col, rng, nbytes=32):
    byte, bit = rng.randrange(nbytes), rng.randrange(8)
    return "%s = set_byte(%s, %d, get_byte(%s, %d) # %d)" % (col, col, byte, col, byte, 1 << bit), byte, bit


def gen_org_id(rng, L):
    o, n = rng.choice(L.orgs), L.n
    s = rng.randint(1, n)
    new = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    sql = "UPDATE defendable.receipts SET org_id = %s WHERE org_id = %s AND seq = %d;" % (sql_text(new), sql_text(o), s)
    exp = {o: (s, "missing seq %d" % s) if s < n else (n, "head mismatch")}
    # in the org it lands in, the row is seq s with no seq 1 before it, or a seq 1 hashed for another org
    extra = {new: (1, "missing seq 1") if s > 1 else (1, "hash mismatch")}
    return Case("receipt.org_id", "seq %d of %s moved to %s" % (s, o[:8], new[:8]), sql, exp, extra)


def gen_seq(rng, L):
    o, n = rng.choice(L.orgs), L.n
    s = rng.randint(1, n)
    if rng.random() < 0.8:
        v = rng.randint(n + 1, n + 10**6)
        exp = (s, "missing seq %d" % s)  # for s = n too: the chain stops at n - 1, then jumps
    else:
        v = rng.randint(-10**6, 0)
        # the renumbered row now sorts first and is below the next expected seq (1)
        exp = (v, "duplicate seq %d" % v)
    sql = "UPDATE defendable.receipts SET seq = %d WHERE org_id = %s AND seq = %d;" % (v, sql_text(o), s)
    return Case("receipt.seq renumbered", "seq %d -> %d" % (s, v), sql, {o: exp})


def gen_swap(rng, L):
    o, n = rng.choice(L.orgs), L.n
    a, b = sorted(rng.sample(range(1, n + 1), 2))
    sql = ("UPDATE defendable.receipts SET seq = -1 WHERE org_id = {o} AND seq = {a};"
           "UPDATE defendable.receipts SET seq = {a} WHERE org_id = {o} AND seq = {b};"
           "UPDATE defendable.receipts SET seq = {b} WHERE org_id = {o} AND seq = -1;").format(o=sql_text(o), a=a, b=b)
    # at position a sits receipt b, whose prev is the hash of b - 1, not of a - 1
    return Case("receipt.seq swapped", "seqs %d and %d swapped" % (a, b), sql, {o: (a, "prev link broken")})


def gen_ts(rng, L):
    o, n = rng.choice(L.orgs), L.n
    s = rng.randint(1, n)
    r = rng.random()
    if r < 0.7:
        delta = "%d microseconds" % rng.choice([1, -1, rng.randint(2, 10**12), -rng.randint(2, 10**12)])
        expr = "ts + interval '%s'" % delta
    elif r < 0.85:
        expr = "'infinity'"
    else:
        expr = "'10000-01-01 00:00:00+00'"  # beyond the format's four-digit year
    sql = "UPDATE defendable.receipts SET ts = %s WHERE org_id = %s AND seq = %d;" % (expr, sql_text(o), s)
    return Case("receipt.ts", "seq %d ts = %s" % (s, expr), sql, {o: (s, "hash mismatch")})


def gen_kind(rng, L):
    o, n = rng.choice(L.orgs), L.n
    s = rng.randint(1, n)
    new = rng.choice(["run.failed", "auth.verify.x", "AUTH.VERIFY", "", "kind with spaces", random_word(rng, 12)])
    sql = ("UPDATE defendable.receipts SET kind = CASE WHEN kind = {k} THEN kind || 'x' ELSE {k} END "
           "WHERE org_id = {o} AND seq = {s};").format(k=sql_text(new), o=sql_text(o), s=s)
    return Case("receipt.kind", "seq %d kind -> %r" % (s, new), sql, {o: (s, "hash mismatch")})


def gen_prev(rng, L):
    o, n = rng.choice(L.orgs), L.n
    s = rng.randint(1, n)
    r = rng.random()
    if r < 0.8:
        assign, byte, bit = flip_bit_sql("prev", rng)
        what = "seq %d prev byte %d bit %d flipped" % (s, byte, bit)
    elif r < 0.9:
        assign, what = "prev = substring(prev from 1 for 31)", "seq %d prev cut to 31 bytes" % s
    else:
        assign, what = "prev = prev || '\\x00'::bytea", "seq %d prev grown to 33 bytes" % s
    sql = "UPDATE defendable.receipts SET %s WHERE org_id = %s AND seq = %d;" % (assign, sql_text(o), s)
    return Case("receipt.prev", what, sql, {o: (s, "prev link broken")})


def gen_hash(rng, L):
    o, n = rng.choice(L.orgs), L.n
    s = rng.randint(1, n)
    if rng.random() < 0.85:
        assign, byte, bit = flip_bit_sql("hash", rng)
        what = "seq %d hash byte %d bit %d flipped" % (s, byte, bit)
    else:
        assign, what = "hash = substring(hash from 1 for 31)", "seq %d hash cut to 31 bytes" % s
    sql = "UPDATE defendable.receipts SET %s WHERE org_id = %s AND seq = %d;" % (assign, sql_text(o), s)
    return Case("receipt.hash", what, sql, {o: (s, "hash mismatch")})


def with_fields(rng, L, o):
    return rng.choice([s for s in range(1, L.n + 1) if L.fields[o][s]])


def gen_digest(rng, L):
    o = rng.choice(L.orgs)
    s = with_fields(rng, L, o)
    name = rng.choice(sorted(L.fields[o][s]))
    # the new digest is built from the stored one in SQL: one base64url character changed
    pos = rng.randrange(43)
    shift = rng.randint(1, 63)
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    sql = ("UPDATE defendable.receipts SET fields = jsonb_set(fields, ARRAY[{f}], to_jsonb("
           "overlay(fields->>{f} placing substr({a}, (strpos({a}, substr(fields->>{f}, {p}, 1)) - 1 + {k}) % 64 + 1, 1) "
           "from {p} for 1))) WHERE org_id = {o} AND seq = {s};").format(
        f=sql_text(name), a=sql_text(alphabet), p=pos + 1, k=shift, o=sql_text(o), s=s)
    return Case("receipt.fields digest", "seq %d digest of %s, char %d changed" % (s, name, pos), sql,
                {o: (s, "hash mismatch")})


def gen_fields_shape(rng, L):
    o, n = rng.choice(L.orgs), L.n
    choices = ["add", "nonobject", "digest42", "digest44", "digestnum"]
    s = rng.randint(1, n)
    if L.fields[o][s]:
        choices += ["remove", "rename"]
    op = rng.choice(choices)
    name = rng.choice(sorted(L.fields[o][s])) if L.fields[o][s] else None
    digest = "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(43))
    if op == "add":
        expr, exp = "fields || jsonb_build_object('zz_forged', %s)" % sql_text(digest), "hash mismatch"
    elif op == "remove":
        expr, exp = "fields - %s" % sql_text(name), "hash mismatch"
    elif op == "rename":
        expr = "(fields - {f}) || jsonb_build_object({g}, fields->{f})".format(f=sql_text(name), g=sql_text(name + "_x"))
        exp = "hash mismatch"
    elif op == "nonobject":
        expr, exp = rng.choice(["'[]'::jsonb", "'\"x\"'::jsonb", "'42'::jsonb", "'null'::jsonb"]), "malformed fields"
    elif op in ("digest42", "digest44"):
        expr = "jsonb_build_object('f', %s)" % sql_text(digest[:42] if op == "digest42" else digest + "A")
        if name:
            expr = "jsonb_set(fields, ARRAY[%s], to_jsonb(%s::text))" % (sql_text(name), sql_text(digest[:42] if op == "digest42" else digest + "A"))
        exp = "malformed fields"
    else:
        expr = "jsonb_set(fields, ARRAY[%s], '12345')" % sql_text(name) if name else "'{\"f\": 1}'::jsonb"
        exp = "malformed fields"
    sql = "UPDATE defendable.receipts SET fields = %s WHERE org_id = %s AND seq = %d;" % (expr, sql_text(o), s)
    return Case("receipt.fields shape", "seq %d %s%s" % (s, op, " " + name if name else ""), sql, {o: (s, exp)})


def gen_recomputed_one(rng, L):
    o, n = rng.choice(L.orgs), L.n
    s = rng.randint(1, n)
    upto = s if rng.random() < 0.5 else rng.randint(s, n)
    sql = ("UPDATE defendable.receipts SET kind = 'run.forged' WHERE org_id = {o} AND seq = {s};"
           "SELECT 'X', tamper_kit.rechain({o}, {s}, {u}) IS NOT NULL;").format(o=sql_text(o), s=s, u=upto)
    # receipts s..upto are self-consistent; the first one after them still names the old hash,
    # and if the rewrite reaches the end the stored head does
    exp = (upto + 1, "prev link broken") if upto < n else (n, "head mismatch")
    return Case("receipt rewritten, hashes recomputed, head kept", "seq %d changed, rechained to %d" % (s, upto),
                sql, {o: exp})


def gen_delete(rng, L):
    o, n = rng.choice(L.orgs), L.n
    r = rng.random()
    if r < 0.2:
        s, last = n, n
    elif r < 0.6:
        s = last = rng.randint(1, n - 1)
    else:
        s = rng.randint(1, n - 2)
        last = rng.randint(s, n - 1)
    sql = "DELETE FROM defendable.receipts WHERE org_id = %s AND seq BETWEEN %d AND %d;" % (sql_text(o), s, last)
    exp = (s, "missing seq %d" % s) if last < n else (n, "head mismatch")
    return Case("receipt deleted", "seqs %d..%d deleted" % (s, last), sql, {o: exp})


def gen_insert_middle(rng, L):
    o, n = rng.choice(L.orgs), L.n
    s = rng.randint(1, n)
    forged = "tamper_kit.body_hash({o}, {s}, now(), 'run.forged', tamper_kit.prev_of({o}, {s}), '{{}}')".format(o=sql_text(o), s=s)
    if rng.random() < 0.5:
        # the later receipts shifted up by one to make room; the forged one is perfect
        sql = ("UPDATE defendable.receipts SET seq = -seq - 1 WHERE org_id = {o} AND seq >= {s};"
               "UPDATE defendable.receipts SET seq = -seq WHERE org_id = {o} AND seq < 0;"
               "INSERT INTO defendable.receipts VALUES ({o}, {s}, now(), 'run.forged', tamper_kit.prev_of({o}, {s}), '{{}}', {h});"
               ).format(o=sql_text(o), s=s, h=forged)
        return Case("receipt inserted in the middle", "forged seq %d, later ones shifted" % s, sql,
                    {o: (s + 1, "prev link broken")})
    # a second receipt with the same seq: the primary key has to go first
    sql = ("ALTER TABLE defendable.receipts DROP CONSTRAINT receipts_pkey;"
           "CREATE INDEX receipts_pkey ON defendable.receipts (org_id, seq);"
           "INSERT INTO defendable.receipts VALUES ({o}, {s}, now(), 'run.forged', tamper_kit.prev_of({o}, {s}), '{{}}', {h});"
           ).format(o=sql_text(o), s=s, h=forged)
    return Case("receipt inserted in the middle", "forged duplicate of seq %d" % s, sql,
                {o: (s, "duplicate seq %d" % s)})


def gen_insert_end(rng, L):
    o, n = rng.choice(L.orgs), L.n
    r = rng.random()
    hashed = "tamper_kit.body_hash({o}, {s}, now(), 'run.forged', tamper_kit.prev_of({o}, {s}), '{{}}')".format(o=sql_text(o), s=n + 1)
    if r < 0.5:
        h, what, exp = hashed, "forged seq %d with a correct hash, head kept" % (n + 1), (n + 1, "head mismatch")
    elif r < 0.8:
        h = "sha256(%s::bytea)" % sql_text(random_word(rng))
        what, exp = "seq %d with a wrong hash" % (n + 1), (n + 1, "hash mismatch")
    else:
        gap = rng.randint(2, 50)
        h = "tamper_kit.body_hash({o}, {s}, now(), 'run.forged', tamper_kit.prev_of({o}, {p}), '{{}}')".format(o=sql_text(o), s=n + gap, p=n + 1)
        sql = "INSERT INTO defendable.receipts VALUES ({o}, {s}, now(), 'run.forged', tamper_kit.prev_of({o}, {p}), '{{}}', {h});".format(o=sql_text(o), s=n + gap, p=n + 1, h=h)
        return Case("receipt inserted at the end", "forged seq %d after a gap" % (n + gap), sql,
                    {o: (n + 1, "missing seq %d" % (n + 1))})
    sql = "INSERT INTO defendable.receipts VALUES ({o}, {s}, now(), 'run.forged', tamper_kit.prev_of({o}, {s}), '{{}}', {h});".format(o=sql_text(o), s=n + 1, h=h)
    return Case("receipt inserted at the end", what, sql, {o: exp})


def gen_truncate_head_kept(rng, L):
    o, n = rng.choice(L.orgs), L.n
    k = rng.randint(0, n - 1) if rng.random() < 0.9 else 0
    sql = "DELETE FROM defendable.receipts WHERE org_id = %s AND seq > %d;" % (sql_text(o), k)
    return Case("tail truncated, head kept", "kept 1..%d" % k, sql, {o: (k + 1, "head mismatch")})


def checkpoint_expect(L, o, bad_from=None, size_now=None):
    """Verdicts on the org's two checkpoints when the history from seq bad_from on changed, or
    when only size_now receipts are left. A checkpoint of size S sees changes at seq <= S."""
    out = {}
    for label, (size, _note, _root) in L.cps[o].items():
        if size_now is not None:
            out[label] = ("fail", "receipts were removed", size_now) if size_now < size else ("ok", None, size_now)
        else:
            out[label] = ("fail", "history was rewritten", None) if bad_from <= size else ("ok", None, None)
    return out


def gen_truncate_head_moved(rng, L):
    o, n = rng.choice(L.orgs), L.n
    if rng.random() < 0.9:
        k = rng.randint(1, n - 1)
        sql = "DELETE FROM defendable.receipts WHERE org_id = {o} AND seq > {k}; SELECT 'X', tamper_kit.move_head({o}) IS NULL;".format(o=sql_text(o), k=k)
    else:
        k = 0
        sql = "DELETE FROM defendable.receipts WHERE org_id = {o}; DELETE FROM defendable.heads WHERE org_id = {o};".format(o=sql_text(o))
    # verify_ledger sees a consistent, shorter chain: only the signed size tells
    return Case("tail truncated, head moved", "kept 1..%d, head moved" % k, sql, {o: None},
                checkpoints=checkpoint_expect(L, o, size_now=k), detector="verify_checkpoint", exact=False)


def gen_rewrite(rng, L):
    o, n = rng.choice(L.orgs), L.n
    k = 1 if rng.random() < 0.15 else rng.randint(1, n)
    change = rng.choice(["kind = 'run.forged'", "ts = ts - interval '1 second'",
                         "fields = fields || '{\"zz_forged\": \"%s\"}'" % ("A" * 43)])
    sql = ("UPDATE defendable.receipts SET {c} WHERE org_id = {o} AND seq = {k};"
           "SELECT 'X', tamper_kit.rechain({o}, {k}) IS NOT NULL;"
           "SELECT 'X', tamper_kit.move_head({o}) IS NULL;"
           "SELECT 'X', defendable.merkle_rebuild({o}) > 0;").format(c=change, o=sql_text(o), k=k)
    return Case("history rewritten, hashes, nodes, head recomputed", "from seq %d: %s" % (k, change.split(" ")[0]),
                sql, {o: None}, checkpoints=checkpoint_expect(L, o, bad_from=k), detector="verify_checkpoint",
                exact=False)


def gen_head(rng, L):
    o, n = rng.choice(L.orgs), L.n
    op = rng.choice(["hash", "hash", "up", "down", "delete", "short"])
    if op == "hash":
        assign, byte, bit = flip_bit_sql("hash", rng)
        sql, exp = "UPDATE defendable.heads SET %s WHERE org_id = %s;" % (assign, sql_text(o)), (n, "head mismatch")
        what = "head hash byte %d bit %d flipped" % (byte, bit)
    elif op == "up":
        d = rng.randint(1, 1000)
        sql, exp, what = "UPDATE defendable.heads SET seq = seq + %d WHERE org_id = %s;" % (d, sql_text(o)), (n + 1, "head mismatch"), "head seq +%d" % d
    elif op == "down":
        j = rng.randint(0, n - 1)
        sql, exp, what = "UPDATE defendable.heads SET seq = %d WHERE org_id = %s;" % (j, sql_text(o)), (j + 1, "head mismatch"), "head seq -> %d" % j
    elif op == "delete":
        sql, exp, what = "DELETE FROM defendable.heads WHERE org_id = %s;" % sql_text(o), (1, "head mismatch"), "head deleted"
    else:
        sql, exp, what = "UPDATE defendable.heads SET hash = substring(hash from 1 for 31) WHERE org_id = %s;" % sql_text(o), (n, "head mismatch"), "head hash cut"
    return Case("heads", what, sql, {o: exp})


def gen_merkle(rng, L):
    o = rng.choice(L.orgs)
    level, idx = rng.choice(L.nodes[o])
    full_size, _note, root = L.cps[o]["full"]
    # a leaf whose inclusion proof at the signed size reads this node (model above)
    leaves = [m for m in range(full_size) if (level, idx) in stored_nodes_read(inclusion_ranges(m, 0, full_size))]
    leaf = rng.choice(leaves)
    on_root = (level, idx) in pieces(0, full_size)
    op = rng.choice(["flip", "flip", "swap", "delete"])
    key = "org_id = %s AND level = %d AND idx = %d" % (sql_text(o), level, idx)
    if op == "flip":
        assign, byte, bit = flip_bit_sql("hash", rng)
        sql = "UPDATE defendable.merkle_nodes SET %s WHERE %s;" % (assign, key)
    elif op == "swap":
        other = rng.choice([x for x in L.nodes[o] if x != (level, idx)])
        sql = ("UPDATE defendable.merkle_nodes SET hash = (SELECT hash FROM defendable.merkle_nodes "
               "WHERE org_id = %s AND level = %d AND idx = %d) WHERE %s;") % (sql_text(o), other[0], other[1], key)
    else:
        sql = "DELETE FROM defendable.merkle_nodes WHERE %s;" % key
    expect = "error" if op == "delete" else "fail"
    # the root at the signed size reads the node only if it is one of the root's own pieces
    cps = {"full": (expect, None, None) if on_root else ("ok", None, None)}
    return Case("merkle node", "node (%d, %d) %s; proof of seq %d" % (level, idx, op, leaf + 1), sql, {},
                checkpoints=cps, inclusion=(o, leaf + 1, full_size, root, expect),
                detector="inclusion proof vs signed root", exact=False)


def gen_frontier(rng, L):
    o, n = rng.choice(L.orgs), L.n
    # heads.frontier: the last hash, then one node per set bit of n, lowest level first
    levels = [b for b in range(64) if n & (1 << b)]
    piece = rng.randrange(len(levels))
    byte = 32 + 32 * piece + rng.randrange(32)
    bit = rng.randrange(8)
    # honest appends up to the next power of two fold every frontier node into stored nodes
    top = 1
    while top <= n:
        top *= 2
    sql = ("UPDATE defendable.heads SET frontier = set_byte(frontier, {b}, get_byte(frontier, {b}) # {m}) WHERE org_id = {o};"
           "SET LOCAL session_replication_role = origin;"
           "SELECT 'X', count(defendable.append_receipt({o}, 'run.complete', jsonb_build_object('i', i))) "
           "FROM generate_series(1, {k}) i;").format(b=byte, m=1 << bit, o=sql_text(o), k=top - n)
    # the ledger itself is sound (the appends are honest); the nodes they stored were folded from
    # the altered frontier, so the tree no longer extends the signed one
    return Case("heads.frontier altered, then honest appends",
                "level-%d frontier node byte %d bit %d, %d appends" % (levels[piece], byte - 32 * (piece + 1), bit, top - n),
                sql, {o: None}, checkpoints={"full": ("fail", "consistency proof", top)},
                detector="verify_checkpoint", exact=False)


def with_salts(rng, L, o):
    return rng.choice([s for s in range(1, L.n + 1) if L.salts[o][s]])


def gen_salt(rng, L):
    o = rng.choice(L.orgs)
    s = with_salts(rng, L, o)
    name = rng.choice(sorted(L.salts[o][s]))
    salt = base64.urlsafe_b64encode(bytes(rng.getrandbits(8) for _ in range(16))).decode().rstrip("=")
    sql = ("UPDATE defendable.disclosures SET salts = jsonb_set(salts, ARRAY[{f}], to_jsonb({v}::text)) "
           "WHERE org_id = {o} AND seq = {s};").format(f=sql_text(name), v=sql_text(salt), o=sql_text(o), s=s)
    return Case("disclosure.salts", "seq %d salt of %s" % (s, name), sql, {},
                disclosures={o: (s, "digest mismatch for field %s" % name)}, detector="verify_disclosures")


def gen_value(rng, L):
    o = rng.choice(L.orgs)
    s = with_salts(rng, L, o)
    name = rng.choice(sorted(L.salts[o][s]))
    value = rng.choice([json.dumps("tampered " + random_word(rng)), str(rng.randint(10**9 + 1, 10**12)), "null", "[1, 2]"])
    sql = ("UPDATE defendable.disclosures SET field_values = jsonb_set(field_values, ARRAY[{f}], {v}::jsonb) "
           "WHERE org_id = {o} AND seq = {s};").format(f=sql_text(name), v=sql_text(value), o=sql_text(o), s=s)
    return Case("disclosure.field_values", "seq %d value of %s -> %s" % (s, name, value), sql, {},
                disclosures={o: (s, "digest mismatch for field %s" % name)}, detector="verify_disclosures")


def gen_unknown_salt(rng, L):
    o = rng.choice(L.orgs)
    s = with_salts(rng, L, o)
    sql = ("UPDATE defendable.disclosures SET salts = salts || '{\"ghost\": \"AAAAAAAAAAAAAAAAAAAAAA\"}', "
           "field_values = field_values || '{\"ghost\": 1}' WHERE org_id = %s AND seq = %d;") % (sql_text(o), s)
    return Case("disclosure for an unknown field", "seq %d ghost field" % s, sql, {},
                disclosures={o: (s, "disclosure for unknown field ghost")}, detector="verify_disclosures")


def gen_disclosure_swap(rng, L):
    o = rng.choice(L.orgs)
    a = with_salts(rng, L, o)
    b = with_salts(rng, L, o)
    while b == a:
        b = with_salts(rng, L, o)
    a, b = min(a, b), max(a, b)
    sql = ("UPDATE defendable.disclosures SET seq = -1 WHERE org_id = {o} AND seq = {a};"
           "UPDATE defendable.disclosures SET seq = {a} WHERE org_id = {o} AND seq = {b};"
           "UPDATE defendable.disclosures SET seq = {b} WHERE org_id = {o} AND seq = -1;").format(o=sql_text(o), a=a, b=b)
    # receipt a now reads b's salts: a shared name gives a digest mismatch (fresh salts differ),
    # no shared name leaves b's names unknown to receipt a
    shared = L.fields[o][a] & L.salts[o][b]
    detail = "digest mismatch for field " if shared else "disclosure for unknown field "
    return Case("disclosures rows swapped", "seqs %d and %d" % (a, b), sql, {},
                disclosures={o: (a, detail)}, detector="verify_disclosures")


GENERATORS = [gen_org_id, gen_seq, gen_swap, gen_ts, gen_kind, gen_prev, gen_hash, gen_digest,
              gen_fields_shape, gen_recomputed_one, gen_delete, gen_insert_middle, gen_insert_end,
              gen_truncate_head_kept, gen_truncate_head_moved, gen_rewrite, gen_head, gen_frontier, gen_merkle,
              gen_salt, gen_value, gen_unknown_salt, gen_disclosure_swap]


# Changes no verifier can see, by design. Run to show what the verifiers say; never counted.
def undetectable_cases(rng, L):
    o, n = rng.choice(L.orgs), L.n
    s = with_salts(rng, L, o)
    name = rng.choice(sorted(L.salts[o][s]))
    appended = ("INSERT INTO defendable.receipts VALUES ({o}, {s}, now(), 'run.forged', tamper_kit.prev_of({o}, {s}), '{{}}', "
                "tamper_kit.body_hash({o}, {s}, now(), 'run.forged', tamper_kit.prev_of({o}, {s}), '{{}}'));"
                "SELECT 'X', tamper_kit.move_head({o}) IS NULL;").format(o=sql_text(o), s=n + 1)
    return [
        ("forged receipt appended, hash recomputed, head moved",
         "indistinguishable from an append by append_receipt (which a superuser may call): the "
         "signed tree is a prefix of the new one, so every checkpoint stays consistent", appended),
        ("disclosure.public_fields changed",
         "which fields a projection reveals is policy, not committed by any hash (the never-public "
         "rule still applies when projecting)",
         "UPDATE defendable.disclosures SET public_fields = ARRAY[%s] WHERE org_id = %s AND seq = %d;" % (sql_text(name), sql_text(o), s)),
        ("salt and value deleted (silent erasure)",
         "reads exactly like erase_field's erasure; only the missing erasure receipt tells",
         "UPDATE defendable.disclosures SET salts = salts - {f}, field_values = field_values - {f} WHERE org_id = {o} AND seq = {s};".format(f=sql_text(name), o=sql_text(o), s=s)),
        ("only the salt deleted, value kept",
         "verify_disclosures counts a field without both salt and value as erased",
         "UPDATE defendable.disclosures SET salts = salts - {f} WHERE org_id = {o} AND seq = {s};".format(f=sql_text(name), o=sql_text(o), s=s)),
        ("salt replaced by a number",
         "a salt that is not a string is counted as erased, not as malformed",
         "UPDATE defendable.disclosures SET salts = jsonb_set(salts, ARRAY[{f}], '7') WHERE org_id = {o} AND seq = {s};".format(f=sql_text(name), o=sql_text(o), s=s)),
        ("disclosures row deleted",
         "all of the receipt's fields read as erased",
         "DELETE FROM defendable.disclosures WHERE org_id = %s AND seq = %d;" % (sql_text(o), s)),
        ("heads.frontier altered, nothing appended after",
         "a cache that only appends read (when it names the head's last hash); verify_ledger does "
         "not read it. Once appends fold it into stored nodes, verify_checkpoint fails (category "
         "'heads.frontier altered, then honest appends')",
         "UPDATE defendable.heads SET frontier = set_byte(frontier, 40, get_byte(frontier, 40) # 1) WHERE org_id = %s;" % sql_text(o)),
    ]


# ---------------------------------------------------------------------------------------------
# Running one case
# ---------------------------------------------------------------------------------------------

def case_sql(case, L):
    parts = ["BEGIN;", "SET LOCAL session_replication_role = replica;", case.sql,
             "SELECT 'L', org_id, ok, first_bad_seq, detail FROM defendable.verify_ledger();"]
    for label in case.checkpoints:
        size, note, _root = L.cps[case_org(case)][label]
        parts.append("SELECT 'C', %s, tamper_kit.try_checkpoint(%s, %s);" % (sql_text(label), dollar(note), sql_text(L.vkey)))
    if case.disclosures:
        for o in case.disclosures:
            parts.append("SELECT 'D', org_id, ok, first_bad_seq, detail FROM defendable.verify_disclosures(%s);" % sql_text(o))
    if case.inclusion:
        o, seq, size, root, _ = case.inclusion
        parts.append("SELECT 'I', tamper_kit.try_inclusion(%s, %d, %d, '\\x%s');" % (sql_text(o), seq, size, root.hex()))
    parts.append("ROLLBACK;")
    return "\n".join(parts)


def case_org(case):
    if case.inclusion:
        return case.inclusion[0]
    return next(iter(case.ledger))


def judge(case, rows, errors, L):
    """Returns (detected, exact, problems)."""
    problems = list("psql: " + e for e in errors)
    ledger = {r[1]: r for r in rows if r[0] == "L"}
    detected = exact = False
    for o in L.orgs:
        got = ledger.get(o)
        want = case.ledger.get(o)
        if got is None:
            if o in case.ledger and want is None:
                continue  # an org truncated to nothing together with its head has no row at all
            problems.append("verify_ledger: no row for %s" % o)
            continue
        if want is None:
            if got[2] != "t":
                problems.append("verify_ledger: %s should be ok, got %s at %s" % (o[:8], got[4], got[3]))
            continue
        if got[2] == "f":
            detected = True
            if got[3] == str(want[0]) and got[4] == want[1]:
                exact = True
            else:
                problems.append("verify_ledger: %s expected %s at %d, got %s at %s" % (o[:8], want[1], want[0], got[4], got[3]))
        else:
            problems.append("verify_ledger: %s not detected (expected %s at %d)" % (o[:8], want[1], want[0]))
    for o, want in case.extra_orgs.items():
        got = ledger.get(o)
        if got is None or got[2] != "f" or got[3] != str(want[0]) or got[4] != want[1]:
            problems.append("verify_ledger: moved-to org %s expected %s at %d, got %s" % (o[:8], want[1], want[0], got and got[2:]))
    for o in ledger:
        if o not in L.orgs and o not in case.extra_orgs:
            problems.append("verify_ledger: unexpected org %s" % o)
    checkpoint_rows = {r[1]: r[2:] for r in rows if r[0] == "C"}
    cp_detected = False
    for label, (status, detail, size_now) in case.checkpoints.items():
        got = checkpoint_rows.get(label)
        if got is None:
            problems.append("verify_checkpoint %s: no answer" % label)
            continue
        if got[0] != "ok":
            cp_detected = True
        if got[0] != status or (detail and detail not in got[2]) or (size_now is not None and got[1] != str(size_now)):
            problems.append("verify_checkpoint %s: expected %s %s (size %s), got %s" % (label, status, detail or "", size_now, "|".join(got)))
    if case.detector == "verify_checkpoint":
        detected, exact = cp_detected, False
    if case.disclosures:
        drows = {r[1]: r for r in rows if r[0] == "D"}
        for o, (seq, detail) in case.disclosures.items():
            got = drows.get(o)
            if got is None:
                problems.append("verify_disclosures: no row for %s" % o)
                continue
            if got[2] == "f":
                detected = True
                if got[3] == str(seq) and (got[4] == detail or (detail.endswith(" ") and got[4].startswith(detail))):
                    exact = True
                else:
                    problems.append("verify_disclosures: expected %s at %d, got %s at %s" % (detail, seq, got[4], got[3]))
            else:
                problems.append("verify_disclosures: not detected (expected %s at %d)" % (detail, seq))
    if case.inclusion:
        got = [r[1] for r in rows if r[0] == "I"]
        want = case.inclusion[4]
        if got and got[0].split(" ")[0] in ("fail", "error"):
            detected = True
        if not got or got[0].split(" ")[0] != want:
            problems.append("inclusion proof: expected %s, got %s" % (want, got))
    if case.detector in ("verify_checkpoint", "inclusion proof vs signed root"):
        exact = False
    return detected, exact, problems


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, help="reproduce a run (printed at the start of each run)")
    ap.add_argument("--per-category", type=int, default=24, help="random changes per category")
    ap.add_argument("--orgs", type=int, default=10)
    ap.add_argument("--receipts", type=int, default=1000, help="receipts per organization")
    ap.add_argument("--work", required=True, help="directory for the signer key")
    ap.add_argument("--library", help="load the extension's C functions from this .so instead of the "
                    "installed one (mutation checks on a private cluster only)")
    ap.add_argument("--verbose", action="store_true", help="print every change")
    args = ap.parse_args()
    if args.receipts < 64 or args.orgs < 1 or args.per_category < 1:
        ap.error("need at least 64 receipts per org (Merkle nodes), 1 org and 1 change per category")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print("seed: %d (reproduce with --seed %d)" % (seed, seed), flush=True)
    rng = random.Random(seed)
    # notices (never-public fields withheld, a database that did not exist) are not results
    os.environ["PGOPTIONS"] = (os.environ.get("PGOPTIONS", "") + " -c client_min_messages=warning").strip()
    started = time.monotonic()

    db = "dfd_tamper"
    subprocess.run(["psql", "-qX", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", "DROP DATABASE IF EXISTS " + db,
                    "-c", "CREATE DATABASE " + db], check=True)
    setup = ["SET client_min_messages = warning;", "CREATE EXTENSION defendable;"]
    if args.library:
        # every C function of the extension repointed at the library under test; new sessions
        # load it (this one already loaded the installed library while creating the extension)
        setup.append("UPDATE pg_proc SET probin = %s WHERE probin = '$libdir/defendable';" % sql_text(args.library))
    subprocess.run(["psql", "-qX", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", "\n".join(setup)], check=True,
                   stdout=subprocess.DEVNULL)
    # the ledger is appended by a session of its own: a backend keeps the Merkle frontier it
    # committed last, and the tamper session must read the one stored in the head row
    builder = Psql(db)
    orgs = sorted(str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(args.orgs))
    build_ledger(builder, rng, orgs, args.receipts)
    builder.close()
    session = Psql(db)
    if args.library:
        got = must(session, "SELECT 'P', count(*) FROM pg_proc WHERE probin = %s;" % sql_text(args.library))
        print("library under test: %s (%s functions)" % (args.library, got[0][1]))

    must(session, KIT)
    n = args.receipts
    baseline = must(session, "SELECT 'L', org_id, receipts, ok FROM defendable.verify_ledger();")
    if len(baseline) != len(orgs) or any(r[2] != str(n) or r[3] != "t" for r in baseline):
        raise SystemExit("the intact ledger does not verify: %s" % baseline)
    fields = {o: {} for o in orgs}
    salts = {o: {} for o in orgs}
    for r in must(session, "SELECT 'F', r.org_id, r.seq, (SELECT string_agg(k, ',') FROM jsonb_object_keys(r.fields) k), "
                  "(SELECT string_agg(k, ',') FROM jsonb_object_keys(d.salts) k) FROM defendable.receipts r "
                  "LEFT JOIN defendable.disclosures d USING (org_id, seq);"):
        fields[r[1]][int(r[2])] = set(filter(None, r[3].split(",")))
        salts[r[1]][int(r[2])] = set(filter(None, r[4].split(",")))
    nodes = {o: [] for o in orgs}
    for r in must(session, "SELECT 'N', org_id, level, idx FROM defendable.merkle_nodes;"):
        nodes[r[1]].append((int(r[2]), int(r[3])))

    # two checkpoints per org, signed outside the database: at a random earlier size and now
    keyfile = os.path.join(args.work, "tamper-signer.key")
    if os.path.exists(keyfile):
        os.remove(keyfile)
    vkey = subprocess.run([CLI, "keygen", ORIGIN, "--out", keyfile], check=True, capture_output=True, text=True).stdout.strip()
    cps = {}
    for o in orgs:
        cps[o] = {}
        for label, size in (("earlier", rng.randint(1, n - 1)), ("full", n)):
            body = must(session, "SELECT 'B', replace(defendable.checkpoint_body(%s, %s, %d), chr(10), '\\n');" % (sql_text(o), sql_text(ORIGIN), size))[0][1].replace("\\n", "\n")
            note = sign(body, keyfile)
            must(session, "SELECT 'R', tree_size FROM defendable.record_checkpoint(%s, %s);" % (dollar(note), sql_text(vkey)))
            root = base64.b64decode(body.split("\n")[2])
            cps[o][label] = (size, note, root)
    L = Ledger(orgs, n, fields, salts, nodes, cps)
    L.vkey = vkey
    for o in orgs:
        for label in cps[o]:
            got = must(session, "SELECT 'C', tamper_kit.try_checkpoint(%s, %s);" % (dollar(cps[o][label][1]), sql_text(vkey)))
            if not got[0][1].startswith("ok"):
                raise SystemExit("a fresh checkpoint does not verify: %s" % got)
    print("ledger: %d orgs x %d receipts, %d checkpoints signed, built in %.1f s" % (
        len(orgs), n, 2 * len(orgs), time.monotonic() - started), flush=True)

    cases = [g(rng, L) for g in GENERATORS for _ in range(args.per_category)]
    order = list(dict.fromkeys(c.category for c in cases))
    rng.shuffle(cases)
    stats = {}
    passed = failed = 0
    t0 = time.monotonic()
    for case in cases:
        rows, errors = session.run(case_sql(case, L))
        detected, exact, problems = judge(case, rows, errors, L)
        if case.category not in stats:
            stats[case.category] = [0, 0, 0, case.detector, case.exact]
        st = stats[case.category]
        st[0] += 1
        st[1] += detected
        st[2] += exact
        if detected and not problems:
            passed += 1
            if args.verbose:
                print("ok   %s: %s" % (case.category, case.what))
        else:
            failed += 1
            print("FAIL %s: %s" % (case.category, case.what))
            for p in problems[:6]:
                print("     " + p)
    elapsed = time.monotonic() - t0

    print()
    print("%-52s %5s %8s %8s  %s" % ("category", "made", "detected", "at seq", "detector"))
    total = [0, 0, 0]
    for cat in order:
        made, det, ex, detector, has_seq = stats[cat]
        total = [total[0] + made, total[1] + det, total[2] + ex]
        print("%-52s %5d %8d %8s  %s" % (cat, made, det, ex if has_seq else "n/a", detector))
    print("%-52s %5d %8d %8d" % ("total", total[0], total[1], total[2]))
    print("detected/total: %d/%d; %d changes checked in %.1f s" % (total[1], total[0], len(cases), elapsed))

    print()
    print("undetectable by design (run, not counted):")
    for title, why, sql in undetectable_cases(rng, L):
        parts = ["BEGIN;", "SET LOCAL session_replication_role = replica;", sql,
                 "SELECT 'L', count(*) FILTER (WHERE NOT ok) FROM defendable.verify_ledger();",
                 "SELECT 'D', count(*) FILTER (WHERE NOT ok) FROM defendable.verify_disclosures();"]
        for org in orgs:
            parts.append("SELECT 'C', tamper_kit.try_checkpoint(%s, %s);" % (dollar(cps[org]["full"][1]), sql_text(vkey)))
        parts.append("ROLLBACK;")
        rows, errors = session.run("\n".join(parts))
        ledger_bad = next((r[1] for r in rows if r[0] == "L"), "?")
        disc_bad = next((r[1] for r in rows if r[0] == "D"), "?")
        cp_bad = sum(1 for r in rows if r[0] == "C" and r[1] != "ok")
        print("  - %s: verify_ledger failing orgs %s, verify_disclosures %s, checkpoints failing %d%s\n    why: %s" % (
            title, ledger_bad, disc_bad, cp_bad, " (psql: %s)" % errors if errors else "", why))

    after = must(session, "SELECT 'L', count(*) FILTER (WHERE NOT ok) FROM defendable.verify_ledger();")
    if after[0][1] != "0":
        failed += 1
        print("FAIL the ledger does not verify after all the rollbacks")
    session.close()
    subprocess.run(["psql", "-qX", "-d", "postgres", "-c", "DROP DATABASE IF EXISTS " + db], check=False)
    print("tamper: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
