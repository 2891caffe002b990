#!/usr/bin/python3
"""Writes the seed corpora fuzz/corpus/<harness>/ from the repository's own test vectors.

Run from anywhere: /usr/bin/python3 fuzz/make_seeds.py. It rewrites every corpus directory,
so the committed corpora are reproducible; the CLI seeds are signed by the built
gateway/defendable-verify with the harness key (Go's published PeterNeumann test key), and the
CLI receipts, trees and exports come from gateway/test_cli.py's own builders. Stdlib only.
"""
import base64
import glob
import hashlib
import hmac
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VEC = os.path.join(ROOT, "extension", "core", "testdata", "vectors")
GWT = os.path.join(ROOT, "gateway", "testdata")
CORPUS = os.path.join(HERE, "corpus")

HARNESS_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
JWT_KEY = b"fuzz current session secret, 32+ bytes long"
NOW = 1700000000
SUB = "7d1f0c2e-9a4b-4c8d-b1e2-3f4a5b6c7d8e"

corpora = {}


def add(harness, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    corpora.setdefault(harness, []).append(data)


def load(*parts):
    with open(os.path.join(*parts), "rb") as f:
        return f.read()


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


# ---- jcs ------------------------------------------------------------------------------------
def jcs_seeds():
    for path in sorted(glob.glob(os.path.join(VEC, "jcs", "input", "*.json"))):
        add("jcs", load(path))
    ex = json.loads(load(VEC, "jcs", "rfc8785-examples.json"))
    for k in ("main_example", "sorting_example"):
        if isinstance(ex.get(k), dict):
            for v in ex[k].values():
                if isinstance(v, str) and v.lstrip().startswith(("{", "[")):
                    add("jcs", v)
    lines = load(VEC, "jcs", "es6-numbers-first10000.txt").decode().splitlines()
    for line in lines[:10000:250]:
        add("jcs", line.split(",")[1])
    for text in ['{"a":1e400}', '[1E+2,-0,0.000001,1e-7,123456789012345678901]',
                 '"\\ud83d\\ude00\\u0000\\u001f"', '"\\ud800"', '{"b":1,"a":2,"b":3}',
                 "[" * 130 + "]" * 130, '{"\u20ac":1,"\r":2,"\ufb33":3,"1":4}',
                 '  [ true , false , null , "x" ]  ', "0.1", "-1.5e-300", "9007199254740993"]:
        add("jcs", text)


# ---- encode ---------------------------------------------------------------------------------
def encode_seeds():
    h = hashlib.sha256(b"defendable").digest()
    add("encode", b64url(h))
    add("encode", b64url(h[:16]))
    add("encode", base64.b64encode(h).decode())
    add("encode", base64.b64encode(b"\x01" + h).decode())
    add("encode", h.hex())
    add("encode", h.hex().upper())
    add("encode", "caf\u00e9 \u2028 \U0001F600 \ufffd")
    add("encode", b"\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\xe0\x80\x80")
    add("encode", "YQ")
    add("encode", "YR")
    add("encode", "YQ==")


# ---- note -----------------------------------------------------------------------------------
def note_seeds():
    notes = json.loads(load(VEC, "note", "signed-notes.json"))
    for k in notes["keys"]:
        add("note", k["vkey"])
        if k.get("skey"):
            add("note", k["skey"])
    for k in notes["bad_vkeys"]:
        add("note", k if isinstance(k, str) else k.get("vkey", ""))
    for n in notes["notes"]:
        if n.get("note") is not None:
            add("note", n["note"])
        elif n.get("note_hex"):
            add("note", bytes.fromhex(n["note_hex"]))
    cps = json.loads(load(VEC, "note", "checkpoints.json"))
    for c in cps["checkpoint_bodies"]:
        add("note", c["body"])
    for c in cps["signed_examples"]:
        if c.get("note"):
            add("note", c["note"])
    root = base64.b64encode(hashlib.sha256(b"root").digest()).decode()
    add("note", "ledger.test/7d1f0c2e-9a4b-4c8d-b1e2-3f4a5b6c7d8e\n7\n%s\n" % root)
    add("note", "ledger.test/x\n18446744073709551615\n%s\next one\n" % root)


# ---- merkle ---------------------------------------------------------------------------------
def merkle_seeds():
    # the harness's own tree: leaf i = SHA-256(0x00 || SHA-256(be32(i)))
    leaves = [hashlib.sha256(b"\x00" + hashlib.sha256(struct.pack(">I", i)).digest()).digest()
              for i in range(256)]

    def node(a, b):
        return hashlib.sha256(b"\x01" + a + b).digest()

    def mth(ls):
        if len(ls) == 1:
            return ls[0]
        k = 1
        while k * 2 < len(ls):
            k *= 2
        return node(mth(ls[:k]), mth(ls[k:]))

    def path(m, ls):
        if len(ls) <= 1:
            return []
        k = 1
        while k * 2 < len(ls):
            k *= 2
        if m < k:
            return path(m, ls[:k]) + [mth(ls[k:])]
        return path(m - k, ls[k:]) + [mth(ls[:k])]

    for idx, size in [(0, 1), (0, 2), (3, 7), (5, 8), (12, 13), (100, 200), (255, 256)]:
        ls = leaves[:size]
        proof = path(idx, ls)
        add("merkle", struct.pack(">QQ", idx, size) + ls[idx] + mth(ls) + b"".join(proof))
    # a frontier as stored: size 5 = nodes at levels 0 and 2
    add("merkle", struct.pack(">QQ", 0, 5) + leaves[4] + mth(leaves[:4]))
    ref = json.loads(load(VEC, "merkle", "rfc6962-reference-tree.json"))
    for p in ref.get("inclusion_proofs", [])[:6]:
        try:
            hs = b"".join(bytes.fromhex(x) for x in p["proof"])
            add("merkle", struct.pack(">QQ", p["leaf_index"], p["tree_size"]) + b"\0" * 64 + hs)
        except (KeyError, TypeError, ValueError):
            pass


# ---- body -----------------------------------------------------------------------------------
BODIES = [
    (0, {"email": "person@example.com"}), (0, {"email": "no-at-sign"}), (0, {}),
    (1, {"token": "t" * 43}), (1, {"token": ""}),
    (2, {"success_url": "https://app.example/ok", "cancel_url": None}),
    (3, {"slug": "s", "title": "T", "storage_key": "k/v", "size": 1 << 40, "sha256": "a" * 64}),
    (4, {"name": "ci key"}), (5, {"role": "admin"}),
    (6, {"email": "x@y.z", "role": "member", "ttl_hours": 24}), (6, {"email": "x@y.z", "ttl_hours": 721}),
    (7, {"kind": "doc.sign", "fields": {"a": 1, "b": [1, {"c": None}]}, "public_fields": ["a"]}),
    (7, {"kind": "doc.sign", "fields": [], "extra": 1}),
    (8, {"ttl_hours": 8784}), (8, {"ttl_hours": 1.5}),
    (9, {"org": "7D1F0C2E-9a4b-4c8d-b1e2-3f4a5b6c7d8e", "kind": "deploy", "fields": {}}),
    (10, {"runner": "r1", "state": "succeeded", "lease_seconds": 60, "output_digest": "0" * 64,
          "detail": "ok"}),
    (11, {"kind": "restore_drill", "input": {"backup": "2026-11-22"}}),
    (12, {"org": SUB, "kind": "restore_drill", "input": {}}),
    (13, {"runner": "r1", "lease_seconds": 9, "run_id": SUB}),
]


def body_seeds():
    for spec, body in BODIES:
        add("body", bytes([spec]) + json.dumps(body).encode())
    add("body", b"\x00" + b'{"email":"a@b.c","email":"d@e.f"}')
    add("body", b"\x07" + b'{"kind":"k","fields":{"x":"\\u0000"}}')
    add("body", b"\x01" + b'{"token":"a\\u0000b"}')
    add("body", b"\x04" + b"[1,2]")
    add("body", b"\x04")


# ---- jwt and bearer -------------------------------------------------------------------------
def hs256(header, payload, key=JWT_KEY):
    si = b64url(header.encode()) + "." + b64url(payload.encode())
    return si + "." + b64url(hmac.new(key, si.encode(), hashlib.sha256).digest())


GOOD_HEADER = '{"alg":"HS256","typ":"JWT"}'
def jwt_seeds():
    a1 = json.loads(load(GWT, "jwt", "rfc7515-a1-hs256.json"))
    add("jwt", b"\x00" + a1["compact"].encode())
    for n in a1["derived_negative_cases_not_from_rfc"]:
        if isinstance(n, dict) and isinstance(n.get("compact"), str):
            add("jwt", b"\x00" + n["compact"].encode())
    good = hs256(GOOD_HEADER, json.dumps({"sub": SUB, "iat": NOW - 10, "exp": NOW + 3600}))
    add("jwt", b"\x00" + good.encode())
    for hdr, pay in [
        (GOOD_HEADER, {"sub": SUB, "iat": NOW - 10, "exp": NOW + 3600}),
        (GOOD_HEADER, {"sub": SUB, "iat": NOW - 10, "exp": NOW + 3600, "nbf": NOW + 30}),
        (GOOD_HEADER, {"sub": SUB, "iat": NOW - 7200, "exp": NOW - 61}),
        (GOOD_HEADER, {"sub": "x" * 64, "iat": 1, "exp": 2}),
        ('{"alg":"none","typ":"JWT"}', {"sub": SUB, "iat": 1, "exp": 2}),
        ('{"alg":"HS256","typ":"JWT","kid":"1"}', {"sub": SUB, "iat": 1, "exp": 2}),
        ('{"alg":"HS\\u0032\\u0035\\u0036","typ":"JWT"}', {"sub": SUB, "iat": NOW, "exp": NOW + 1}),
    ]:
        text = hdr + "\n" + json.dumps(pay)
        add("jwt", b"\x01" + text.encode())
        add("jwt", b"\x05" + text.encode())
    add("jwt", b"\x01" + GOOD_HEADER.encode() + b'\n{"sub":"s","iat":1e3,"exp":9223372036854775807}')
    add("jwt", b"\x02\x10\x20" + SUB.encode())
    add("jwt", b"\x02\xff\x00caf\xc3\xa9")
    for path in sorted(glob.glob(os.path.join(GWT, "jwt", "rfc7520-cookbook", "*.json"))):
        d = json.loads(load(path))
        out = d.get("output")
        inp = d.get("input")
        if isinstance(out, dict) and isinstance(out.get("compact"), str):
            payload = inp.get("payload", "") if isinstance(inp, dict) else ""
            add("jwt", b"\x03" + out["compact"].encode() + b"\n" + payload.encode())
            add("jwt", b"\x00" + out["compact"].encode())


def bearer_seeds():
    good = hs256(GOOD_HEADER, json.dumps({"sub": SUB, "iat": NOW - 10, "exp": NOW + 3600}))
    for h in ["Bearer " + good, "bearer    " + good, "BEARER " + good + " ", "Bearer dfd_" + "a" * 40,
              "Bearer ", "Bearer", "Basic dXNlcjpwYXNz", "Bearer  dfd_", "Bearer x.y.z"]:
        add("bearer", h)


# ---- route ----------------------------------------------------------------------------------
METHODS = ["GET", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS", "PUT"]


def route_seeds():
    src = load(ROOT, "gateway", "routes.c").decode()
    routes = re.findall(r'\{"(GET|POST|PATCH|DELETE)",\s*"(/[^"]*)"', src)
    examples = {"{org}": SUB, "{user}": SUB.upper(), "{id}": "0123456789ab", "{seq}": "42",
                "{token}": "t" * 43, "{slug}": "weather-2026"}
    for method, pattern in routes:
        path = pattern
        for k, v in examples.items():
            path = path.replace(k, v)
        add("route", bytes([METHODS.index(method)]) + path.encode())
        add("route", bytes([4]) + (path + "?org=" + SUB + "&limit=10").encode())
    add("route", b"\x00/receipts/0?org=not-a-uuid")
    add("route", b"\x00/receipts/1234567890123456")
    add("route", b"\x01/orgs//invites")
    add("route", b"\x00/orgs/" + b"a" * 130)


# ---- stripe ---------------------------------------------------------------------------------
def stripe_seeds():
    vec = json.loads(load(GWT, "stripe", "stripe-webhook-vectors.json"))
    for c in vec["cases"]:
        hdr, payload = c.get("header"), c.get("payload")
        if isinstance(hdr, str) and isinstance(payload, str) and "\n" not in hdr:
            add("stripe_sig", b"\x00" + hdr.encode() + b"\n" + payload.encode())
    add("stripe_sig", b"\x01t=%d,v0=abc\n{}" % NOW)
    add("stripe_sig", b"\x03t=%d,v1=%s,scheme=x\n{\"id\":\"evt_1\"}" % (NOW - 301, b"0" * 64))
    add("stripe_sig", b"\x01t=0123\n{}")
    for path in sorted(glob.glob(os.path.join(GWT, "stripe", "events", "*.json")) +
                       glob.glob(os.path.join(GWT, "stripe", "events", "malformed", "*.json"))):
        if not path.endswith("expected.json"):
            add("stripe_event", load(path))


# ---- CLI ------------------------------------------------------------------------------------
def cli_seeds():
    sys.path.insert(0, os.path.join(ROOT, "gateway"))
    import test_cli as t  # the CLI suite's own receipt, tree and bundle builders

    with tempfile.TemporaryDirectory() as tmp:
        keyfile = os.path.join(tmp, "harness.key")
        with open(keyfile, "w") as f:
            f.write(HARNESS_SKEY + "\n")
        headers, secrets = t.make_receipts(t.ORG, t.values_of, t.N)
        leaves = [t.leaf_hash(h["hash"]) for h in headers]

        def note(size):
            return t.sign(keyfile, t.checkpoint_body(t.ORIGIN, size, t.mth(leaves[:size])))

        n3, n7 = note(3), note(7)
        for idx, size, n, mode in [(0, 3, n3, 0), (2, 7, n7, 2), (6, 7, n7, 1), (1, 3, None, 2)]:
            b = t.make_bundle(headers, secrets, idx, size, n)
            add("cli_bundle", bytes([mode]) + t.dumps(b))
        b = t.make_bundle(headers, secrets, 4, 7, n7, disclose=["user_email", "amount"])
        add("cli_bundle", b"\x03" + t.dumps(b))
        add("cli_bundle", b"\x02{\"v\":1}")
        # three receipts and two checkpoints reach every export path; longer exports only
        # make each execution slower
        n1 = note(1)
        lines = t.export_lines(headers[:3], [n1, n3])
        data = ("\n".join(lines) + "\n").encode() if isinstance(lines, list) else lines
        if isinstance(data, str):
            data = data.encode()
        for mode in range(4):
            add("cli_export", bytes([mode]) + data)
        add("cli_export", b"\x02" + data[: len(data) // 2])


def main():
    jcs_seeds()
    encode_seeds()
    note_seeds()
    merkle_seeds()
    body_seeds()
    jwt_seeds()
    bearer_seeds()
    route_seeds()
    stripe_seeds()
    cli_seeds()
    for harness, items in sorted(corpora.items()):
        d = os.path.join(CORPUS, harness)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for data in items:
            # named by content, as libFuzzer names what it adds
            with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
                f.write(data)
        print("%-13s %3d seeds" % (harness, len(items)))


if __name__ == "__main__":
    main()
