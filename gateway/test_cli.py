#!/usr/bin/env python3
"""Tests of defendable-verify, the offline verifier CLI. Python 3 standard library only.

No database: every bundle and export is built here, in Python, from docs/receipt-format.md and
docs/receipt-bundle.md alone (canonical JSON, disclosures, digests, bodies, hashes, the RFC 9162
Merkle tree and inclusion proofs, checkpoint bodies). Only the Ed25519 signature comes from the
CLI (keygen and sign), and even that is checked here with an Ed25519 verifier written from RFC
8032. So the CLI is cross-checked against an independent implementation, then fed every kind of
damage we can think of.

Usage: test_cli.py            (the binary next to this file; DFD_VERIFY=path to override)
       DFD_VERIFY_WRAPPER="valgrind --error-exitcode=99 ..." test_cli.py   runs every CLI command
                                     under that prefix (split on spaces; scripts/check-memcheck)
       DFD_CLI_BIG=1000000 test_cli.py   also verify an export of that many receipts
Prints "cli: N passed, N failed"; exits 1 if anything failed.
"""
import base64
import copy
import hashlib
import json
import os
import random
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLI = os.environ.get("DFD_VERIFY", os.path.join(HERE, "defendable-verify"))
# a memory checker's exit status for a report (valgrind --error-exitcode=99) is outside 0..3, so
# run() counts it as a crash
WRAPPER = os.environ.get("DFD_VERIFY_WRAPPER", "").split()
# the byte-flip loops run the CLI ~2,300 times; under valgrind (~0.6 s a run) only every Nth flip
FLIP_STRIDE = max(1, int(os.environ.get("DFD_CLI_FLIP_STRIDE", "1")))

PASSED = 0
FAILED = 0


def record(cond, what, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
    else:
        FAILED += 1
        print("FAIL %s" % what)
        if detail:
            for line in str(detail).rstrip("\n").split("\n")[:40]:
                print("    " + line)
    return cond


class Result:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def text(self):
        return self.out.decode("utf-8", "replace") + self.err.decode("utf-8", "replace")


def run(args, data=None, timeout=120):
    """Runs the CLI. A signal or an exit status outside 0..3 is a crash and always a failure."""
    p = subprocess.run(WRAPPER + [CLI] + args, input=data, capture_output=True, timeout=timeout)
    r = Result(p.returncode, p.stdout, p.stderr)
    if not (0 <= r.rc <= 3):
        record(False, "crash (exit %d) running %s" % (r.rc, " ".join(args)), r.text())
    return r


# ---------------------------------------------------------------------------------------------
# RFC 8785 canonical JSON for the values used here: strings, integers, booleans, null, arrays
# and objects (members sorted by UTF-16 code units). Floats are deliberately left out.

def jcs_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\t\n\f\r":
            out.append({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}[ch])
        elif o < 0x20:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def jcs(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        assert abs(v) < 2 ** 53
        return str(v)
    if isinstance(v, str):
        return jcs_string(v)
    if isinstance(v, list):
        return "[" + ",".join(jcs(x) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(jcs_string(k) + ":" + jcs(v[k]) for k in keys) + "}"
    raise TypeError(v)


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# ---------------------------------------------------------------------------------------------
# Receipts (receipt-format.md sections 2 and 3)

ZERO = "0" * 64


def disclosure(salt, name, value):
    return b64url(jcs([salt, name, value]).encode("utf-8"))


def digest_of(d):
    return b64url(hashlib.sha256(d.encode("ascii")).digest())


def body_of(h):
    return jcs({"v": 1, "org": h["org"], "seq": h["seq"], "ts": h["ts"], "kind": h["kind"],
                "prev": h["prev"], "fields": h["fields"]}).encode("utf-8")


def make_receipts(org, values_of, n):
    """n receipts; values_of(seq) gives the field values. Returns headers and private parts."""
    headers, secrets, prev = [], [], ZERO
    for seq in range(1, n + 1):
        values = values_of(seq)
        salts = {k: b64url(hashlib.sha256(("salt %d %s" % (seq, k)).encode()).digest()[:16])
                 for k in values}
        discs = {k: disclosure(salts[k], k, v) for k, v in values.items()}
        h = {"org": org, "seq": seq, "ts": "2026-11-22T09:%02d:%02d.%06dZ" % (seq // 60 % 60, seq % 60, seq),
             "kind": ["auth.verify", "doc.sign", "pay.refund_v2"][seq % 3], "prev": prev,
             "fields": {k: digest_of(d) for k, d in discs.items()}}
        h["hash"] = hashlib.sha256(body_of(h)).hexdigest()
        prev = h["hash"]
        headers.append(h)
        secrets.append({"values": values, "salts": salts, "disclosures": discs})
    return headers, secrets


# ---------------------------------------------------------------------------------------------
# RFC 9162 section 2.1 Merkle tree, written from the RFC's recursive definitions

def leaf_hash(receipt_hash_hex):
    return hashlib.sha256(b"\x00" + bytes.fromhex(receipt_hash_hex)).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def inclusion_path(m, leaves):
    if len(leaves) == 1:
        return []
    k = split(len(leaves))
    if m < k:
        return inclusion_path(m, leaves[:k]) + [mth(leaves[k:])]
    return inclusion_path(m - k, leaves[k:]) + [mth(leaves[:k])]


def roots_by_frontier(leaves, sizes):
    """Roots at the given sizes in one pass, with a stack of perfect subtrees (for big trees)."""
    want, roots, stack = set(sizes), {}, []
    if 0 in want:
        roots[0] = hashlib.sha256(b"").digest()
    for i, lf in enumerate(leaves, 1):
        stack.append((1, lf))
        while len(stack) >= 2 and stack[-1][0] == stack[-2][0]:
            (n, r), (_, l) = stack.pop(), stack.pop()
            stack.append((2 * n, node_hash(l, r)))
        if i in want:
            acc = stack[-1][1]
            for _, h in reversed(stack[:-1]):
                acc = node_hash(h, acc)
            roots[i] = acc
    return roots


# ---------------------------------------------------------------------------------------------
# Ed25519 verification (RFC 8032 section 5.1.7), from the curve equations, so that the
# signatures `sign` makes are checked by something that shares no code with OpenSSL.

P = 2 ** 255 - 19
Q = 2 ** 252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def ed_add(a, b):
    # twisted Edwards addition in extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, xy = T/Z
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    pa = (y1 - x1) * (y2 - x2) % P
    pb = (y1 + x1) * (y2 + x2) % P
    pc = 2 * t1 * t2 * D % P
    pd = 2 * z1 * z2 % P
    e, f, g, h = pb - pa, pd - pc, pd + pc, pb + pa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def ed_mul(s, a):
    r = (0, 1, 1, 0)
    while s:
        if s & 1:
            r = ed_add(r, a)
        a = ed_add(a, a)
        s >>= 1
    return r


def ed_decode(b):
    y = int.from_bytes(b, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def ed_encode(a):
    x, y, z, _ = a
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


ED_BASE = ed_decode((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))


def ed25519_verify(pub, msg, sig):
    a, r = ed_decode(pub), ed_decode(sig[:32])
    s = int.from_bytes(sig[32:], "little")
    if a is None or r is None or s >= Q:
        return False
    k = int.from_bytes(hashlib.sha512(sig[:32] + pub + msg).digest(), "little") % Q
    return ed_encode(ed_mul(s, ED_BASE)) == ed_encode(ed_add(r, ed_mul(k, a)))


# ---------------------------------------------------------------------------------------------
# Keys and notes (receipt-bundle.md section 2)

def parse_vkey(text):
    name, key_id, b64 = text.split("+", 2)
    blob = base64.b64decode(b64, validate=True)
    return name, key_id, blob


def key_id_of(name, pub):
    return hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4].hex()


def checkpoint_body(origin, size, root):
    return "%s\n%d\n%s\n" % (origin, size, base64.b64encode(root).decode())


def sign(keyfile, body):
    r = run(["sign", "--key", keyfile], body.encode("utf-8"))
    assert r.rc == 0, r.text()
    return r.out.decode("utf-8")


# ---------------------------------------------------------------------------------------------
# The test data

ORG = "7d1f0c2e-9a4b-4c8d-b1e2-3f4a5b6c7d8e"
OTHER_ORG = "0190a5e2-1c9f-7b3e-8a41-6f2d9c0e7b15"
ORIGIN = "ledger.test/" + ORG
N = 7


def values_of(seq):
    # strings with every kind of escape, non-ASCII, nesting, member order by UTF-16 units
    return {
        "user": "u_%d" % seq,
        "user_email": "person%d@example.com" % seq,
        "method": "magic_link",
        "amount": seq * 250 - 1000,
        "approved": seq % 2 == 0,
        "reviewer": None,
        "tags": ["a", seq, False, None, {"z": 1, "a": "\u00e9"}],
        "note": "caf\u00e9 \"q\" \\ / \n\t\x01\x1f\x7f \u2028 \U0001F600",
        "meta": {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001F600": 5, "\u0080": [], "": {}},
        "big": 2 ** 53 - 1,
    }


WITHHELD = ("user", "user_email")


def make_bundle(headers, secrets, idx, size, note, disclose=None):
    leaves = [leaf_hash(h["hash"]) for h in headers[:size]]
    h, sec = headers[idx], secrets[idx]
    names = sorted(disclose if disclose is not None else
                   [k for k in sec["values"] if k not in WITHHELD])
    projection = dict(h, v=1, disclosures=[sec["disclosures"][k] for k in names])
    return {"v": 1, "receipt": projection,
            "inclusion": {"leaf_index": idx, "tree_size": size,
                          "hashes": [x.hex() for x in inclusion_path(idx, leaves)]},
            "checkpoint": note}


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def bundle_cmd(data, key, extra=()):
    return run(["bundle", "--key", key] + list(extra) + ["-"], data)


def expect(what, r, codes, needles=()):
    """r must exit with one of codes and its output must contain every needle."""
    text = r.text()
    missing = [n for n in needles if n not in text]
    return record(r.rc in codes and not missing, what,
                  "exit %d (want %s), missing %s\n%s" % (r.rc, codes, missing, text))


# ---------------------------------------------------------------------------------------------

def test_meta():
    r = run(["--version"])
    expect("--version", r, (0,), ["0.2.0"])
    r = run(["--help"])
    expect("--help", r, (0,), ["bundle", "export", "keygen", "sign", "Exit status", "0  verified",
                               "1  verification failed", "2  usage error", "3  internal error"])
    expect("no command", run([]), (2,), ["no command"])
    expect("unknown command", run(["frobnicate"]), (2,), ["unknown command"])
    expect("bundle without --key", run(["bundle"], b"{}"), (2,), ["--key"])
    expect("unknown option", run(["bundle", "--key", "x", "--frob"]), (2,), ["unknown option"])
    expect("two files", run(["export", "--key", "x", "a", "b"]), (2,), ["unexpected argument"])


def test_keys(tmp):
    keyfile = os.path.join(tmp, "signer.key")
    r = run(["keygen", "ledger.test", "--out", keyfile])
    record(r.rc == 0, "keygen --out", r.text())
    vkey = r.out.decode().strip()
    record("\n" not in vkey and not vkey.startswith("PRIVATE"), "keygen --out prints only the verifier key", vkey)
    mode = stat.S_IMODE(os.stat(keyfile).st_mode)
    record(mode == 0o600, "key file has mode 0600", oct(mode))
    skey = open(keyfile).read()
    record(skey.startswith("PRIVATE+KEY+ledger.test+") and skey.endswith("\n") and skey.count("\n") == 1,
           "key file holds one PRIVATE+KEY line", skey[:20])
    name, kid, blob = parse_vkey(vkey)
    record(name == "ledger.test" and len(blob) == 33 and blob[0] == 1, "verifier key format", vkey)
    record(kid == key_id_of(name, blob[1:]), "verifier key ID is SHA-256(name \\n 0x01 pub)[:4]", vkey)
    sname, skid, sblob = parse_vkey(skey.strip()[len("PRIVATE+KEY+"):])
    record(sname == name and skid == kid and len(sblob) == 33, "signer key matches verifier key")

    before = open(keyfile).read()
    r = run(["keygen", "ledger.test", "--out", keyfile])
    expect("keygen refuses to overwrite", r, (2,), ["exists"])
    record(open(keyfile).read() == before, "key file unchanged after refused overwrite")
    expect("keygen invalid name", run(["keygen", "has space"]), (2,), ["invalid key name"])
    expect("keygen name with +", run(["keygen", "a+b"]), (2,), ["invalid key name"])
    expect("keygen without name", run(["keygen"]), (2,), ["NAME"])

    r = run(["keygen", "both.test"])
    lines = r.out.decode().splitlines()
    record(r.rc == 0 and len(lines) == 4 and lines[0].startswith("# signer key") and
           lines[1].startswith("PRIVATE+KEY+both.test+") and lines[2].startswith("# verifier key") and
           lines[3].startswith("both.test+"), "keygen to stdout labels both lines", r.text())
    both = os.path.join(tmp, "both.txt")
    with open(both, "w") as f:
        f.write(r.out.decode())
    os.chmod(both, 0o600)
    body = checkpoint_body(ORIGIN, 1, b"\x00" * 32)
    r2 = run(["sign", "--key", both], body.encode())
    record(r2.rc == 0, "sign accepts keygen's full stdout as key file", r2.text())
    expect("verifier --key @file with a signer key is refused",
           run(["bundle", "--key", "@" + both], b"{}"), (2,), ["signer key"])
    expect("verifier --key given a signer key is refused",
           run(["bundle", "--key", lines[1]], b"{}"), (2,), ["signer key"])
    record("AW" not in run(["bundle", "--key", lines[1]], b"{}").text() or lines[1][-44:] not in
           run(["bundle", "--key", lines[1]], b"{}").text(), "refused signer key is not echoed")

    # a second, unrelated key, and one with the same name (a rotated key)
    other = os.path.join(tmp, "other.key")
    ovkey = run(["keygen", "other.test", "--out", other]).out.decode().strip()
    rotated = os.path.join(tmp, "rotated.key")
    rvkey = run(["keygen", "ledger.test", "--out", rotated]).out.decode().strip()
    pubfile = os.path.join(tmp, "ledger.pub")
    with open(pubfile, "w") as f:
        f.write("# the deployment's verifier key\n" + vkey + "\n")
    return keyfile, vkey, other, ovkey, rotated, rvkey, pubfile


def test_sign(keyfile, vkey, tmp):
    name, kid, blob = parse_vkey(vkey)
    body = checkpoint_body(ORIGIN, 5, hashlib.sha256(b"root").digest())
    r = run(["sign", "--key", keyfile], body.encode())
    note = r.out.decode("utf-8")
    record(r.rc == 0 and note.startswith(body + "\n\u2014 ledger.test ") and note.endswith("\n")
           and note.count("\n") == 5, "sign prints body, blank line, one signature line", r.text())
    sig = base64.b64decode(note.split("\n")[4].split(" ")[2], validate=True)
    record(len(sig) == 68 and sig[:4].hex() == kid, "signature line is key ID + 64 bytes", sig.hex())
    record(ed25519_verify(blob[1:], body.encode(), sig[4:]), "signature verifies with Python Ed25519")
    record(not ed25519_verify(blob[1:], body.replace("\n5\n", "\n6\n").encode(), sig[4:]),
           "Python Ed25519 refuses the signature on another body")
    secret = open(keyfile).read().strip()
    record(secret not in r.text() and secret[-44:] not in r.text(), "sign never prints the key")

    expect("sign: not a checkpoint", run(["sign", "--key", keyfile], b"hello\n"), (2,), ["not a checkpoint"])
    expect("sign: empty input", run(["sign", "--key", keyfile], b""), (2,), ["not a checkpoint"])
    expect("sign: trailing blank line", run(["sign", "--key", keyfile], (body + "\n").encode()), (2,),
           ["blank line"])
    expect("sign: no final newline", run(["sign", "--key", keyfile], body[:-1].encode()), (2,),
           ["not a checkpoint"])
    expect("sign: extension line", run(["sign", "--key", keyfile], (body + "ext\n").encode()), (2,),
           ["three lines"])
    expect("sign: origin without org", run(["sign", "--key", keyfile],
                                           checkpoint_body("ledger.test", 1, b"\0" * 32).encode()),
           (2,), ["/<organization uuid>"])
    expect("sign: root not 32 bytes", run(["sign", "--key", keyfile],
                                          checkpoint_body(ORIGIN, 1, b"\0" * 31).encode()),
           (2,), ["not a checkpoint"])
    expect("sign: input over 64 KiB", run(["sign", "--key", keyfile], b"x" * (65 * 1024)), (2,),
           ["larger than"])
    expect("sign: missing key file", run(["sign", "--key", os.path.join(tmp, "nope")], body.encode()),
           (2,), ["cannot open"])
    vfile = os.path.join(tmp, "only.pub")
    with open(vfile, "w") as f:
        f.write(vkey + "\n")
    r = run(["sign", "--key", vfile], body.encode())
    expect("sign: verifier key is not a signer key", r, (2,), ["no signer key"])
    broken = os.path.join(tmp, "broken.key")
    with open(broken, "w") as f:
        f.write(secret[:-3] + "AAA\n")
    os.chmod(broken, 0o600)
    r = run(["sign", "--key", broken], body.encode())
    expect("sign: corrupt signer key", r, (2,), ["not hold a valid signer key"])
    record(secret[:-3] not in r.text(), "sign does not echo a corrupt key")
    expect("sign: key from stdin refused", run(["sign", "--key", "-"], body.encode()), (2,), ["needs a file"])
    loose = os.path.join(tmp, "loose.key")
    with open(loose, "w") as f:
        f.write(secret + "\n")
    os.chmod(loose, 0o644)
    r = run(["sign", "--key", loose], body.encode())
    expect("sign: warns about a readable key file", r, (0,), ["can be read by other users"])


def flip_hex(s, i=-1):
    c = s[i]
    n = "0" if c != "0" else "1"
    return s[:i] + n + s[i + 1:] if i != -1 else s[:-1] + n


def flip_b64(s, i=0):
    c = s[i]
    n = "A" if c != "A" else "B"
    return s[:i] + n + s[i + 1:]


def test_bundles(tmp, keyfile, vkey, other, ovkey, rotated, rvkey, pubfile):
    headers, secrets = make_receipts(ORG, values_of, N)
    leaves = [leaf_hash(h["hash"]) for h in headers]
    root = mth(leaves)
    body = checkpoint_body(ORIGIN, N, root)
    note = sign(keyfile, body)

    # every leaf of the tree verifies, with the Python-made proof and the CLI-signed root
    for idx in range(N):
        b = make_bundle(headers, secrets, idx, N, note)
        r = bundle_cmd(dumps(b), vkey)
        expect("bundle of leaf %d verifies" % idx, r, (0,),
               ["ok   inclusion: leaf %d in the tree of 7" % idx, "ok   checkpoint: signed by ledger.test+",
                "ok   receipt: body hash %s matches" % headers[idx]["hash"], "verified: "])

    idx = 2
    B = make_bundle(headers, secrets, idx, N, note)
    good = dumps(B)
    r = bundle_cmd(good, "@" + pubfile)
    expect("bundle verifies with --key @FILE (comments allowed)", r, (0,), ["verified:"])
    for name in sorted(B["receipt"]["fields"]):
        if name not in WITHHELD:
            expect("bundle reports disclosure %s" % name, r, (0,),
                   ["ok   disclosure %s: digest matches" % name])
    expect("bundle lists withheld fields", r, (0,), ["withheld fields (digest only): user, user_email"])
    expect("bundle shows values, escaped for a terminal", r, (0,),
           ['  method = "magic_link"', '  note = "caf\u00e9 \\"q\\" \\\\ / \\n\\t\\u0001\\u001f\\u007f \\u2028 \U0001F600"'])

    # --json: the disclosed values equal Python's, member for member
    r = bundle_cmd(good, vkey, ["--json"])
    try:
        out = json.loads(r.out)
    except ValueError as e:
        out = {"error": str(e)}
    record(r.rc == 0 and out.get("ok") is True and out.get("result") == "verified" and out.get("exit") == 0,
           "--json ok", r.text())
    want = {k: v for k, v in secrets[idx]["values"].items() if k not in WITHHELD}
    record(out.get("disclosed") is not None and jcs(out.get("disclosed")) == jcs(want),
           "--json disclosed values are the Python values", r.text())
    record(out.get("withheld") == list(WITHHELD) and out.get("receipt", {}).get("hash") == headers[idx]["hash"],
           "--json withheld and receipt", r.text())
    record(all(set(c) == {"step", "ok", "status", "detail"} for c in out.get("checks", [None])),
           "--json checks have step, ok, status, detail", r.text())

    # the worked example of receipt-format.md section 7 in a one-leaf tree
    ex = {"disclosures": ["WyJFQkVTRXhRVkZoY1lHUm9iSEIwZUh3IiwibWV0aG9kIiwibWFnaWNfbGluayJd"],
          "fields": {"method": "RsLY8dajBlTBLX-2AOII8gGC3MzOF_oKzFmaV0nWKsQ",
                     "user": "hZZ_GcqHIZ4nHmNPtwfwV1KvO8zgMDQoXuQtCiPA2g4"},
          "hash": "66bb54057bbc5c8573d25db5d29639464a0d91c8abba4e9cba371a1fe0ec927f",
          "kind": "auth.verify", "org": OTHER_ORG, "prev": ZERO, "seq": 1,
          "ts": "2026-11-22T09:22:44.123456Z", "v": 1}
    record(hashlib.sha256(body_of(ex)).hexdigest() == ex["hash"], "Python rebuilds the section 7 hash")
    exnote = sign(keyfile, checkpoint_body("ledger.test/" + OTHER_ORG, 1, leaf_hash(ex["hash"])))
    exb = {"v": 1, "receipt": ex, "inclusion": {"leaf_index": 0, "tree_size": 1, "hashes": []},
           "checkpoint": exnote}
    expect("section 7 example verifies", bundle_cmd(dumps(exb), vkey), (0,),
           ['method = "magic_link"', "ok   receipt: body hash 66bb54057bbc", "withheld fields (digest only): user"])
    # pretty-printed JSON is fine: the bundle is a JSON document, not a canonical text
    expect("pretty-printed bundle verifies", bundle_cmd(json.dumps(B, indent=2).encode(), vkey), (0,), ["verified:"])
    # withholding a field is what selective disclosure is for: dropping a disclosure still verifies
    b = copy.deepcopy(B)
    del b["receipt"]["disclosures"][0]
    expect("dropping a disclosure (withholding the field) still verifies", bundle_cmd(dumps(b), vkey), (0,), ["verified:"])
    b = copy.deepcopy(B)
    b["receipt"]["disclosures"] = []
    expect("no disclosures at all still verifies", bundle_cmd(dumps(b), vkey), (0,), ["disclosed fields (0 of 10)"])
    # the same bundle against an older checkpoint (size 5) is just as valid
    note5 = sign(keyfile, checkpoint_body(ORIGIN, 5, mth(leaves[:5])))
    expect("bundle against a smaller checkpoint verifies",
           bundle_cmd(dumps(make_bundle(headers, secrets, idx, 5, note5)), vkey), (0,), ["tree of 5"])
    # a note carrying another key's signature too (a witness): ours is found and checked
    both = sign(other, note.split("\n\n")[0] + "\n").split("\n\n")
    cosigned = note + both[1]
    b = copy.deepcopy(B)
    b["checkpoint"] = cosigned
    expect("co-signed checkpoint verifies", bundle_cmd(dumps(b), vkey), (0,), ["verified:"])
    # a disclosure of a never-public field is a warning, not a failure
    h2, s2 = make_receipts(ORG, lambda seq: {"contact": "write to a@b.example"}, 1)
    n2 = sign(keyfile, checkpoint_body(ORIGIN, 1, leaf_hash(h2[0]["hash"])))
    expect("never-public value disclosed: warning only",
           bundle_cmd(dumps(make_bundle(h2, s2, 0, 1, n2, ["contact"])), vkey), (0,),
           ["warn disclosure contact:"])

    # ---- tampering, one thing at a time ----------------------------------------------------
    cases = []

    def case(what, mutate, codes, needles, replaces=False):
        # mutate changes a copy of B in place; with replaces, what it returns is the document
        b = copy.deepcopy(B)
        res = mutate(b)
        cases.append((what, dumps(res if replaces else b), codes, needles))

    def setp(path, value):
        def m(b):
            o = b
            for p in path[:-1]:
                o = o[p]
            o[path[-1]] = value
        return m

    def delp(path):
        def m(b):
            o = b
            for p in path[:-1]:
                o = o[p]
            del o[path[-1]]
        return m

    R = ["receipt"]
    rcp = B["receipt"]
    # bundle members
    case("bundle v 2", setp(["v"], 2), (2,), ["FAIL bundle: v is not"])
    case("bundle v 1.0", setp(["v"], 1.0), (2,), ["FAIL bundle: v is not"])
    for m in ("v", "receipt", "inclusion", "checkpoint"):
        case("bundle without %s" % m, delp([m]), (2,), ['FAIL bundle: missing member "%s"' % m])
    case("bundle with extra member", setp(["extra"], 1), (2,), ['FAIL bundle: unexpected member "extra"'])
    case("bundle is an array", lambda b: [b], (2,), ["FAIL bundle: not a JSON object"], replaces=True)
    # receipt (projection) members
    for m in ("v", "org", "seq", "ts", "kind", "prev", "hash", "fields", "disclosures"):
        case("receipt without %s" % m, delp(R + [m]), (2,), ['FAIL receipt: missing member "%s"' % m])
    case("receipt with extra member", setp(R + ["salt"], "x"), (2,), ['FAIL receipt: unexpected member "salt"'])
    case("receipt v 2", setp(R + ["v"], 2), (2,), ["FAIL receipt: v is not"])
    case("org changed", setp(R + ["org"], flip_hex(rcp["org"])), (1,),
         ["FAIL receipt: hash mismatch", "FAIL checkpoint: origin"])
    case("org upper case", setp(R + ["org"], rcp["org"].upper()), (2,), ["FAIL receipt: org is not"])
    case("seq changed", setp(R + ["seq"], rcp["seq"] + 1), (1,),
         ["FAIL receipt: hash mismatch", "FAIL inclusion: leaf_index 2 is not seq - 1 = 3"])
    case("seq 0", setp(R + ["seq"], 0), (2,), ["FAIL receipt: seq is not"])
    case("seq 2^53", setp(R + ["seq"], 2 ** 53), (2,), ["FAIL receipt: seq is not"])
    case("seq as string", setp(R + ["seq"], "3"), (2,), ["FAIL receipt: seq is not"])
    case("seq as 3.0", setp(R + ["seq"], 3.0), (2,), ["FAIL receipt: seq is not"])
    case("ts changed", setp(R + ["ts"], rcp["ts"].replace(".000003Z", ".000004Z")), (1,), ["FAIL receipt: hash mismatch"])
    case("ts not a date", setp(R + ["ts"], "2026-02-30T00:00:00.000000Z"), (2,), ["FAIL receipt: ts is not"])
    case("ts without micros", setp(R + ["ts"], rcp["ts"][:19] + "Z"), (2,), ["FAIL receipt: ts is not"])
    case("kind changed", setp(R + ["kind"], rcp["kind"] + "x"), (1,), ["FAIL receipt: hash mismatch"])
    case("kind invalid", setp(R + ["kind"], "Auth"), (2,), ["FAIL receipt: kind is not"])
    case("prev changed", setp(R + ["prev"], flip_hex(rcp["prev"])), (1,), ["FAIL receipt: hash mismatch"])
    case("prev upper case", setp(R + ["prev"], rcp["prev"].upper()), (2,), ["FAIL receipt: prev is not"])
    case("hash changed", setp(R + ["hash"], flip_hex(rcp["hash"])), (1,),
         ["FAIL receipt: hash mismatch", "FAIL inclusion: proof does not lead to the checkpoint root"])
    case("hash short", setp(R + ["hash"], rcp["hash"][:-1]), (2,), ["FAIL receipt: hash is not"])
    for name in sorted(rcp["fields"]):
        needles = ["FAIL receipt: hash mismatch"]
        if name not in WITHHELD:
            needles.append("FAIL disclosure %s: digest" % name)
        case("digest of %s changed" % name, setp(R + ["fields", name], flip_b64(rcp["fields"][name])), (1,), needles)
    case("digest not base64url", setp(R + ["fields", "user"], "!" * 43), (2,), ["FAIL receipt: fields.user is not a digest"])
    case("digest with padding", setp(R + ["fields", "user"], rcp["fields"]["user"][:42] + "="), (2,), ["fields.user is not a digest"])
    case("digest non-canonical bits", setp(R + ["fields", "user"], rcp["fields"]["user"][:42] +
                                              chr(ord(rcp["fields"]["user"][42]) ^ 1)), (1, 2), ["FAIL receipt"])
    case("field added", setp(R + ["fields", "zzz"], rcp["fields"]["user"]), (1,), ["FAIL receipt: hash mismatch"])
    case("withheld field removed", delp(R + ["fields", "user"]), (1,), ["FAIL receipt: hash mismatch"])
    case("disclosed field removed", delp(R + ["fields", "method"]), (1,),
         ["FAIL disclosure method: disclosure", "digest not in fields"])
    case("field name invalid", lambda b: b["receipt"]["fields"].update({"Bad": rcp["fields"]["user"]}), (2,),
         ['invalid field name "Bad"'])
    case("fields not an object", setp(R + ["fields"], []), (2,), ["FAIL receipt: fields is not an object"])
    case("65 fields", setp(R + ["fields"], {"f%d" % i: rcp["fields"]["user"] for i in range(65)}), (2,),
         ["more than 64"])
    sec = secrets[idx]
    discs = rcp["disclosures"]
    names = sorted(k for k in sec["values"] if k not in WITHHELD)
    for i, name in enumerate(names):
        salt = sec["salts"][name]
        case("disclosure %s with another value" % name,
             setp(R + ["disclosures", i], disclosure(salt, name, "forged")), (1,),
             ["FAIL disclosure %s: digest" % name])
        other_salt = b64url(hashlib.sha256(b"other").digest()[:16])
        case("disclosure %s with another salt" % name,
             setp(R + ["disclosures", i], disclosure(other_salt, name, sec["values"][name])), (1,),
             ["FAIL disclosure %s: digest" % name])
        case("disclosure %s byte changed" % name, setp(R + ["disclosures", i], flip_b64(discs[i], 5)), (1, 2),
             ["FAIL disclosure"])
    case("disclosure of a withheld name with a forged value",
         lambda b: b["receipt"]["disclosures"].insert(len(names), disclosure(sec["salts"]["user"], "user", "root")),
         (1,), ["FAIL disclosure user: digest"])
    case("disclosure of an unknown field",
         lambda b: b["receipt"]["disclosures"].append(disclosure(sec["salts"]["user"], "zzz", 1)),
         (1,), ["FAIL disclosure zzz: disclosure %d: digest not in fields" % len(names)])
    case("disclosures swapped", lambda b: b["receipt"]["disclosures"].insert(0, b["receipt"]["disclosures"].pop(1)),
         (1,), ["out of name order"])
    case("disclosure duplicated", lambda b: b["receipt"]["disclosures"].insert(0, b["receipt"]["disclosures"][0]),
         (1,), ["disclosed twice"])
    case("disclosure not a string", setp(R + ["disclosures", 0], 5), (2,), ["FAIL disclosure 0: not a string"])
    case("disclosures not an array", setp(R + ["disclosures"], {}), (2,), ["disclosures is not an array"])
    case("disclosure padded", setp(R + ["disclosures", 0], discs[0] + "=" * (-len(discs[0]) % 4 or 4)), (2,),
         ["FAIL disclosure 0: not unpadded base64url"])
    s0 = sec["salts"][names[0]]
    raw_bad = [
        ("not canonical (space)", '["%s", "%s", 1]' % (s0, names[0]), "not canonical"),
        ("not canonical (member order)", '["%s","%s",{"b":1,"a":2}]' % (s0, names[0]), "not canonical"),
        ("not canonical (escape)", '["%s","%s","\\u0041"]' % (s0, names[0]), "not canonical"),
        ("not canonical (number)", '["%s","%s",1.50]' % (s0, names[0]), "not canonical"),
        ("inexact number", '["%s","%s",9007199254740993]' % (s0, names[0]), "not acceptable JSON"),
        ("not JSON", '["%s","%s",' % (s0, names[0]), "not acceptable JSON"),
        ("duplicate member", '["%s","%s",{"a":1,"a":1}]' % (s0, names[0]), "not acceptable JSON"),
        ("4 elements", '["%s","%s",1,2]' % (s0, names[0]), "more than 3 elements"),
        ("2 elements", '["%s","%s"]' % (s0, names[0]), "2 elements"),
        ("1 element", '["%s"]' % s0, "1 element"),
        ("empty array", "[]", "empty array"),
        ("an object", '{"a":1}', "not an array"),
        ("salt too short", '["%s","%s",1]' % (s0[:21], names[0]), "salt is not 22"),
        ("salt not a string", '[1,"%s",1]' % names[0], "salt (element 0) is not a string"),
        ("salt bad bits", '["%s","%s",1]' % (s0[:21] + "B", names[0]), "salt is not"),
        ("name invalid", '["%s","Amount",1]' % s0, 'name "Amount" is not a valid'),
        ("name not a string", '["%s",7,1]' % s0, "name (element 1) is not a string"),
    ]
    for what, raw, needle in raw_bad:
        case("disclosure " + what, setp(R + ["disclosures", 0], b64url(raw.encode())), (2,),
             ["FAIL disclosure 0: ", needle])
    case("disclosure invalid UTF-8", setp(R + ["disclosures", 0], b64url(b'["' + s0.encode() + b'","a","\xff"]')),
         (2,), ["FAIL disclosure 0: decoded bytes are not acceptable JSON"])
    # inclusion
    I = ["inclusion"]
    hashes = B["inclusion"]["hashes"]
    for i in range(len(hashes)):
        case("inclusion hash %d changed" % i, setp(I + ["hashes", i], flip_hex(hashes[i], 7)), (1,),
             ["FAIL inclusion: proof does not lead to the checkpoint root"])
    case("inclusion hash dropped", lambda b: b["inclusion"]["hashes"].pop(), (1,), ["FAIL inclusion: proof does not lead"])
    case("inclusion hash added", lambda b: b["inclusion"]["hashes"].append(hashes[0]), (1,), ["FAIL inclusion: proof does not lead"])
    case("inclusion hashes reversed", lambda b: b["inclusion"]["hashes"].reverse(), (1,), ["FAIL inclusion: proof does not lead"])
    case("inclusion no hashes", setp(I + ["hashes"], []), (1,), ["FAIL inclusion: proof does not lead"])
    case("inclusion hash upper case", setp(I + ["hashes", 0], hashes[0].upper()), (2,), ["FAIL inclusion: hashes[0] is not"])
    case("inclusion 65 hashes", setp(I + ["hashes"], hashes[:1] * 65), (2,), ["more than 64 hashes"])
    case("leaf_index + 1", setp(I + ["leaf_index"], idx + 1), (1,), ["FAIL inclusion: leaf_index 3 is not seq - 1 = 2"])
    case("leaf_index - 1", setp(I + ["leaf_index"], idx - 1), (1,), ["FAIL inclusion: leaf_index 1 is not seq - 1"])
    case("leaf_index negative", setp(I + ["leaf_index"], -1), (1,), ["FAIL inclusion: leaf_index -1"])
    case("leaf_index string", setp(I + ["leaf_index"], "2"), (2,), ["leaf_index is not an integer"])
    case("tree_size - 1", setp(I + ["tree_size"], N - 1), (1,), ["FAIL checkpoint: tree size 7 but inclusion.tree_size is 6"])
    case("tree_size + 1", setp(I + ["tree_size"], N + 1), (1,), ["FAIL checkpoint: tree size 7 but inclusion.tree_size is 8"])
    case("tree_size 0", setp(I + ["tree_size"], 0), (1,), ["FAIL inclusion: leaf_index 2 is not in a tree of 0"])
    case("tree_size huge", setp(I + ["tree_size"], 2 ** 63 - 1), (1,), ["FAIL checkpoint: tree size"])
    case("tree_size 2^64", setp(I + ["tree_size"], 2 ** 64), (2,), ["FAIL input: not a JSON document"])
    for m in ("leaf_index", "tree_size", "hashes"):
        case("inclusion without %s" % m, delp(I + [m]), (2,), ['FAIL inclusion: missing member "%s"' % m])
    case("inclusion extra member", setp(I + ["root"], "x"), (2,), ['FAIL inclusion: unexpected member "root"'])
    # checkpoint text
    lines = note.split("\n")
    case("checkpoint origin line changed", setp(["checkpoint"], note.replace(ORIGIN, "ledger.tesu/" + ORG, 1)), (1,),
         ["FAIL checkpoint: signature does not verify with key ledger.test+"])
    case("checkpoint size line changed", setp(["checkpoint"], note.replace("\n7\n", "\n8\n", 1)), (1,),
         ["FAIL checkpoint: signature does not verify", "FAIL checkpoint: tree size 8"])
    case("checkpoint root line changed", setp(["checkpoint"], "\n".join(lines[:2] + [flip_b64(lines[2], 3)] + lines[3:])),
         (1,), ["FAIL checkpoint: signature does not verify"])
    sigline = lines[4]
    prefix, b64sig = sigline.rsplit(" ", 1)
    case("signature changed", setp(["checkpoint"], note.replace(sigline, prefix + " " + flip_b64(b64sig, 20))), (1,),
         ["FAIL checkpoint: signature does not verify with key ledger.test+"])
    case("signature key ID changed", setp(["checkpoint"], note.replace(sigline, prefix + " " + flip_b64(b64sig, 0))), (1,),
         ["FAIL checkpoint: not signed by key ledger.test+"])
    case("signature name changed", setp(["checkpoint"], note.replace("\u2014 ledger.test ", "\u2014 ledger.tesu ")), (1,),
         ["FAIL checkpoint: not signed by key"])
    case("signature removed", setp(["checkpoint"], note.split("\n\n")[0] + "\n"), (2,), ["FAIL checkpoint: not a signed note"])
    case("checkpoint null", setp(["checkpoint"], None), (1,), ["FAIL checkpoint: null", "skip inclusion"])
    case("checkpoint a number", setp(["checkpoint"], 7), (2,), ["FAIL checkpoint: neither a string"])
    case("checkpoint not a note", setp(["checkpoint"], "hello"), (2,), ["FAIL checkpoint: not a signed note"])
    case("checkpoint extension line", setp(["checkpoint"], note.replace("\n\n", "\next\n\n", 1)), (2,),
         ["lines after the root"])
    case("checkpoint body not a checkpoint", setp(["checkpoint"], "a\nb\n\n" + sigline + "\n"), (2,),
         ["is not a checkpoint"])
    # correctly signed checkpoints that say the wrong thing
    case("signed checkpoint of another org",
         setp(["checkpoint"], sign(keyfile, checkpoint_body("ledger.test/" + OTHER_ORG, N, root))), (1,),
         ["FAIL checkpoint: origin ledger.test/%s does not end in /%s" % (OTHER_ORG, ORG)])
    case("signed checkpoint whose origin is only the org",
         setp(["checkpoint"], sign(keyfile, checkpoint_body("x/" + ORG, N, root)).replace("x/" + ORG, "/" + ORG, 1)),
         (1,), ["FAIL checkpoint: signature does not verify"])
    case("signed checkpoint of another size",
         setp(["checkpoint"], sign(keyfile, checkpoint_body(ORIGIN, N - 1, mth(leaves[:N - 1])))), (1,),
         ["FAIL checkpoint: tree size 6 but inclusion.tree_size is 7", "skip inclusion"])
    case("signed checkpoint with another root",
         setp(["checkpoint"], sign(keyfile, checkpoint_body(ORIGIN, N, mth(leaves[:N - 1])))), (1,),
         ["FAIL inclusion: proof does not lead to the checkpoint root"])
    case("checkpoint signed by another key only", setp(["checkpoint"], sign(other, body)), (1,),
         ["FAIL checkpoint: not signed by key ledger.test+", "signed by other.test+"])
    case("checkpoint signed by a rotated key of the same name", setp(["checkpoint"], sign(rotated, body)), (1,),
         ["FAIL checkpoint: not signed by key ledger.test+"])
    # JSON-level damage
    cases.append(("duplicate member", good[:-1] + b',"v":1}', (2,), ["FAIL input: not a JSON document", "duplicate"]))
    cases.append(("trailing garbage", good + b"x", (2,), ["FAIL input: not a JSON document"]))
    cases.append(("empty input", b"", (2,), ["FAIL input"]))
    cases.append(("not UTF-8", good.replace(b'"kind":"', b'"kind":"\xff'), (2,), ["FAIL input"]))
    cases.append(("NUL in a string", good.replace(b'"v":1', b'"v\\u0000":1', 1), (2,), ["FAIL"]))
    cases.append(("deep nesting", b"[" * 100000 + b"]" * 100000, (2,), ["FAIL input"]))
    cases.append(("over 16 MiB", b" " * (16 * 1024 * 1024 + 10) + good, (2,), ["larger than"]))

    for what, data, codes, needles in cases:
        expect("tampered: " + what, bundle_cmd(data, vkey), codes, needles)

    # --json on failure names the failing step
    r = bundle_cmd(cases[[c[0] for c in cases].index("hash changed")][1], vkey, ["--json"])
    out = json.loads(r.out)
    record(r.rc == 1 and out["ok"] is False and out["result"] == "failed" and "disclosed" not in out and
           any(c["step"] == "receipt" and not c["ok"] and "hash mismatch" in c["detail"] for c in out["checks"]),
           "--json failure names the step", r.text())
    r = bundle_cmd(b"[1,", vkey, ["--json"])
    out = json.loads(r.out)
    record(r.rc == 2 and out["result"] == "malformed", "--json malformed", r.text())

    # keys
    expect("wrong verifier key", bundle_cmd(good, ovkey), (1,), ["FAIL checkpoint: not signed by key other.test+"])
    expect("rotated verifier key", bundle_cmd(good, rvkey), (1,), ["FAIL checkpoint: not signed by key ledger.test+"])
    expect("verifier key with a wrong ID", bundle_cmd(good, vkey.replace("+", "+0", 1)[:len(vkey)]), (2,), ["--key"])
    expect("verifier key garbage", bundle_cmd(good, "nonsense"), (2,), ["--key: not a valid verifier key"])
    expect("verifier key file missing", bundle_cmd(good, "@" + os.path.join(tmp, "nope")), (2,), ["cannot open"])
    expect("bundle file missing", run(["bundle", "--key", vkey, os.path.join(tmp, "nope")]), (2,), ["cannot open"])
    path = os.path.join(tmp, "bundle.json")
    with open(path, "wb") as f:
        f.write(good)
    expect("bundle read from a file", run(["bundle", "--key", vkey, path]), (0,), ["verified:"])

    # every byte flipped, one at a time: never verified, never a crash
    t0 = time.time()
    bad_flips = []
    flips = range(0, len(good), FLIP_STRIDE)
    for pos in flips:
        data = good[:pos] + bytes([good[pos] ^ 0x01]) + good[pos + 1:]
        r = bundle_cmd(data, vkey)
        if r.rc not in (1, 2):
            bad_flips.append((pos, r.rc, r.text()[-300:]))
    record(not bad_flips, "all %d single-bit flips (xor 0x01) fail with exit 1 or 2" % len(flips),
           "\n".join("pos %d exit %d %s" % f for f in bad_flips[:5]))
    # and a deterministic sample of other byte values (never case swaps: \u00E9 == \u00e9)
    rnd = random.Random(20261122)
    bad_flips = []
    n_sampled = max(1, 300 // FLIP_STRIDE)
    for _ in range(n_sampled):
        pos = rnd.randrange(len(good))
        mask = rnd.choice([0x02, 0x04, 0x08, 0x10, 0x40, 0x80, 0xff, 0x03, 0x11])
        data = good[:pos] + bytes([good[pos] ^ mask]) + good[pos + 1:]
        r = bundle_cmd(data, vkey)
        if r.rc not in (1, 2):
            bad_flips.append((pos, mask, r.rc, r.text()[-300:]))
    record(not bad_flips, "%d sampled byte changes fail with exit 1 or 2" % n_sampled,
           "\n".join("pos %d mask %x exit %d %s" % f for f in bad_flips[:5]))
    print("    (byte flips: %.1fs)" % (time.time() - t0))
    return headers, secrets


def export_lines(headers, notes):
    lines = [jcs(dict(h, type="receipt", v=1)) for h in headers]
    lines += [jcs({"note": n, "type": "checkpoint"}) for n in notes]
    return lines


def export_cmd(lines, key, extra=(), final_newline=True):
    data = ("\n".join(lines) + ("\n" if final_newline else "")).encode("utf-8")
    return run(["export", "--key", key] + list(extra) + ["-"], data)


def test_exports(tmp, keyfile, vkey, other, ovkey, rotated, headers):
    leaves = [leaf_hash(h["hash"]) for h in headers]
    n3 = sign(keyfile, checkpoint_body(ORIGIN, 3, mth(leaves[:3])))
    n7 = sign(keyfile, checkpoint_body(ORIGIN, 7, mth(leaves)))
    good = export_lines(headers, [n3, n7])

    r = export_cmd(good, vkey)
    expect("export verifies", r, (0,),
           ["ok   receipts: 7 receipts of org %s, seq 1..7" % ORG,
            "ok   checkpoint 1 (line 8): signed by ledger.test+", "tree size 3 of 7",
            "ok   checkpoint 2 (line 9): signed by ledger.test+", "tree size 7 of 7",
            "ok   checkpoints: every receipt is covered", "verified: export of org %s" % ORG])
    r = export_cmd(good, vkey, ["--json"])
    out = json.loads(r.out)
    record(r.rc == 0 and out["ok"] is True and out["receipts"] == 7 and out["checkpoints"]["verified"] == 2 and
           out["checkpoints"]["covered_size"] == 7 and out["org"] == ORG, "export --json", r.text())
    expect("export without final newline", export_cmd(good, vkey, final_newline=False), (0,), ["verified:"])
    expect("export with CRLF line ends", run(["export", "--key", vkey], ("\r\n".join(good) + "\r\n").encode()),
           (0,), ["verified:"])
    path = os.path.join(tmp, "export.jsonl")
    with open(path, "w") as f:
        f.write("\n".join(good) + "\n")
    expect("export read from a file", run(["export", "--key", vkey, path]), (0,), ["verified:"])
    expect("export with only the size-3 checkpoint warns about coverage",
           export_cmd(export_lines(headers, [n3]), vkey), (0,),
           ["warn checkpoints: receipts 4..7 are not covered"])
    n0 = sign(keyfile, checkpoint_body(ORIGIN, 0, hashlib.sha256(b"").digest()))
    expect("export with a size-0 checkpoint", export_cmd(export_lines(headers, [n0, n3, n7]), vkey), (0,),
           ["tree size 0 of 7"])
    o5 = sign(other, checkpoint_body(ORIGIN, 5, mth(leaves[:5])))
    expect("checkpoint by another key is skipped", export_cmd(export_lines(headers, [n3, o5, n7]), vkey), (0,),
           ["skip checkpoint 2 (line 9): tree size 5 not signed by key ledger.test+", "signed by other.test+",
            "1 by other keys skipped"])
    r5 = sign(rotated, checkpoint_body(ORIGIN, 5, mth(leaves[:5])))
    expect("checkpoint by a rotated key is skipped", export_cmd(export_lines(headers, [n3, r5, n7]), vkey), (0,),
           ["skip checkpoint 2"])

    def fails(what, lines, needles, codes=(1,), key=vkey):
        expect("export: " + what, export_cmd(lines, key), codes, needles)

    fails("wrong key", good, ["skip checkpoint 1", "FAIL checkpoints: no checkpoint signed by key other.test+"],
          key=ovkey)
    fails("missing line", good[:3] + good[4:], ["FAIL line 4 (seq 5): missing seq 4 (found seq 5)",
                                                "FAIL line 4 (seq 5): prev link broken",
                                                "FAIL checkpoint 2 (line 8): tree size 7 but the export has only 6"])
    fails("missing first line", good[1:], ["FAIL line 1 (seq 2): missing seq 1"])
    fails("missing last receipt", good[:6] + good[7:], ["FAIL checkpoint 2 (line 8): tree size 7 but the export has only 6"])
    fails("swapped pair", good[:2] + [good[3], good[2]] + good[4:],
          ["FAIL line 3 (seq 4): missing seq 3", "FAIL line 4 (seq 3): seq out of order",
           "FAIL checkpoint 2 (line 9): root does not match"])
    fails("duplicated line", good[:3] + good[2:], ["FAIL line 4 (seq 3): seq out of order"])
    h = copy.deepcopy(headers)
    h[4]["hash"] = flip_hex(h[4]["hash"])
    fails("changed hash", export_lines(h, [n3, n7]),
          ["FAIL line 5 (seq 5): hash mismatch", "FAIL line 6 (seq 6): prev link broken",
           "FAIL checkpoint 2 (line 9): root does not match"])
    h = copy.deepcopy(headers)
    h[1]["kind"] = "forged.kind"
    fails("changed kind", export_lines(h, [n3, n7]), ["FAIL line 2 (seq 2): hash mismatch"])
    h = copy.deepcopy(headers)
    h[1]["fields"]["user"] = flip_b64(h[1]["fields"]["user"])
    fails("changed digest", export_lines(h, [n3, n7]), ["FAIL line 2 (seq 2): hash mismatch"])
    # a rewritten history: every hash recomputed, so the chain is intact but the roots are not
    rewritten, _ = make_receipts(ORG, lambda seq: dict(values_of(seq), amount=0), N)
    fails("rewritten history with recomputed hashes", export_lines(rewritten, [n3, n7]),
          ["ok   receipts: 7 receipts", "FAIL checkpoint 1 (line 8): root does not match",
           "FAIL checkpoint 2 (line 9): root does not match"])
    bad_root = sign(keyfile, checkpoint_body(ORIGIN, 7, mth(leaves[:6])))
    fails("checkpoint whose root does not match", export_lines(headers, [n3, bad_root]),
          ["FAIL checkpoint 2 (line 9): root does not match: the first 7 receipts have root"])
    fails("checkpoint of another org", export_lines(headers, [sign(keyfile, checkpoint_body("ledger.test/" + OTHER_ORG, 3, mth(leaves[:3])))]),
          ["FAIL checkpoint 1 (line 8): origin ledger.test/%s does not end in /%s" % (OTHER_ORG, ORG)])
    fails("checkpoint beyond the receipts", export_lines(headers, [sign(keyfile, checkpoint_body(ORIGIN, 8, mth(leaves)))]),
          ["tree size 8 but the export has only 7 receipts"])
    fails("checkpoints out of order", export_lines(headers, [n7, n3]), ["FAIL checkpoint 2 (line 9): tree size 3 after 7"])
    fails("receipt after a checkpoint", good[:6] + [good[7], good[6], good[8]],
          ["FAIL line 8 (seq 7): a receipt after the checkpoint lines"])
    sl = n7.split("\n")[4]
    pre, sig = sl.rsplit(" ", 1)
    fails("checkpoint signature changed", export_lines(headers, [n3, n7.replace(sl, pre + " " + flip_b64(sig, 30))]),
          ["FAIL checkpoint 2 (line 9): signature does not verify with key ledger.test+"])
    fails("checkpoint text changed", export_lines(headers, [n3.replace("\n3\n", "\n4\n")]),
          ["FAIL checkpoint 1 (line 8): signature does not verify"])
    fails("no checkpoints", good[:7], ["FAIL checkpoints: no checkpoint signed by key ledger.test+"])
    fails("checkpoints only", good[7:], ["FAIL checkpoint 1 (line 1): no receipt precedes it", "FAIL receipts: none"])
    h = copy.deepcopy(headers)
    h[3]["org"] = OTHER_ORG
    fails("a receipt of another org", export_lines(h, [n3, n7]), ["FAIL line 4 (seq 4): org %s is not" % OTHER_ORG])
    h = copy.deepcopy(headers)
    h[0]["prev"] = flip_hex(h[0]["prev"])
    fails("seq 1 with a non-zero prev", export_lines(h, [n3, n7]), ["FAIL line 1 (seq 1): seq 1 but prev is not 64 zeros"])

    # malformed lines: exit 2, naming the line
    mal = [
        ("empty line", good[:3] + [""] + good[3:], "FAIL line 4: empty line"),
        ("not JSON", good[:3] + ["{"] + good[3:], "FAIL line 4: not a JSON object"),
        ("array line", good[:3] + ["[1]"] + good[3:], 'FAIL line 4: not an object with a string member "type"'),
        ("unknown type", good[:3] + ['{"type":"x"}'] + good[3:], "FAIL line 4: type is neither"),
        ("extra member", good[:3] + [good[3][:-1] + ',"x":1}'] + good[4:], 'FAIL line 4: unexpected member "x"'),
        ("missing member", good[:3] + [good[3].replace('"kind":', '"kinx":')] + good[4:], 'FAIL line 4: missing member "kind"'),
        ("duplicate member", good[:3] + [good[3][:-1] + ',"v":1}'] + good[4:], "duplicate"),
        ("v 2", good[:3] + [good[3].replace('"v":1}', '"v":2}')] + good[4:], "FAIL line 4: v is not"),
        ("bad hash format", good[:3] + [good[3].replace('"hash":"', '"hash":"X')] + good[4:], "FAIL line 4: hash is not"),
        ("checkpoint note not a string", good[:8] + ['{"note":1,"type":"checkpoint"}'], "FAIL line 9: note is not a string"),
        ("checkpoint extra member", good[:8] + [good[8][:-1] + ',"x":1}'], 'FAIL line 9: unexpected member "x"'),
        ("checkpoint not a note", good[:8] + ['{"note":"x","type":"checkpoint"}'], "FAIL line 9: not a signed note"),
    ]
    for what, lines, needle in mal:
        expect("export malformed: " + what, export_cmd(lines, vkey), (2,), [needle])
    expect("export: empty input", run(["export", "--key", vkey], b""), (2,), ["FAIL input: empty"])
    long_line = good[:2] + ['{"type":"receipt","x":"' + "a" * (1 << 20) + '"}'] + good[2:]
    expect("export: line over 1 MiB", export_cmd(long_line, vkey), (2,), ["FAIL line 3: longer than 1048576 bytes"])
    expect("export: binary garbage", run(["export", "--key", vkey], bytes(range(256)) * 10), (2,), ["FAIL line"])
    r = export_cmd(good[:3] + ["{"] + good[3:], vkey, ["--json"])
    out = json.loads(r.out)
    record(r.rc == 2 and out["result"] == "malformed", "export --json malformed", r.text())

    # byte flips in the export: never a crash; exit 0 only where a flip turns our signature line
    # into another key's (name or key ID changed), which the export reports as skipped and which
    # is then genuinely not a checkpoint by our key (documented in docs/cli.md)
    text = ("\n".join(good) + "\n").encode()
    rnd = random.Random(7)
    wrong = []
    positions = sorted(rnd.sample(range(len(text)), 400))
    for pos in positions:
        data = text[:pos] + bytes([text[pos] ^ 0x01]) + text[pos + 1:]
        r = run(["export", "--key", vkey], data)
        if r.rc == 0 and "skip checkpoint" not in r.text():
            wrong.append((pos, r.text()[-300:]))
        elif r.rc not in (0, 1, 2):
            wrong.append((pos, r.text()[-300:]))
    record(not wrong, "400 sampled export byte flips never verify (unless a checkpoint is skipped)",
           "\n".join("pos %d %s" % w for w in wrong[:5]))


def test_big_export(keyfile, vkey, n):
    """An export of n receipts with checkpoints at assorted sizes, roots from a Python frontier."""
    t0 = time.time()
    org = ORG
    lines, leaves, prev = [], [], ZERO
    salt = b64url(b"\x07" * 16)
    for seq in range(1, n + 1):
        d = disclosure(salt, "n", seq)
        h = {"org": org, "seq": seq, "ts": "2026-11-22T09:22:44.%06dZ" % (seq % 1000000),
             "kind": "bulk.test", "prev": prev, "fields": {"n": digest_of(d)}}
        h["hash"] = hashlib.sha256(body_of(h)).hexdigest()
        prev = h["hash"]
        leaves.append(leaf_hash(h["hash"]))
        lines.append(jcs(dict(h, type="receipt", v=1)))
    sizes = sorted({1, 2, 3, 1023, 1024, 1025, n // 2, n - 1, n} & set(range(0, n + 1)))
    roots = roots_by_frontier(leaves, sizes)
    if n <= 5000:
        record(all(roots[s] == mth(leaves[:s]) for s in sizes), "Python frontier roots equal MTH")
    for s in sizes:
        lines.append(jcs({"note": sign(keyfile, checkpoint_body(ORIGIN, s, roots[s])), "type": "checkpoint"}))
    t1 = time.time()
    r = run(["export", "--key", vkey, "-"], ("\n".join(lines) + "\n").encode(), timeout=1200)
    t2 = time.time()
    expect("export of %d receipts with %d checkpoints" % (n, len(sizes)), r, (0,),
           ["ok   receipts: %d receipts" % n, "ok   checkpoints: every receipt is covered"])
    print("    (%d receipts: built in %.1fs, verified in %.1fs)" % (n, t1 - t0, t2 - t1))
    # the same export with one receipt in the middle changed
    mid = n // 2 + 1
    h = json.loads(lines[mid - 1])
    h["ts"] = "2000-01-01T00:00:00.000000Z"
    lines[mid - 1] = jcs(h)
    r = run(["export", "--key", vkey, "-"], ("\n".join(lines) + "\n").encode(), timeout=1200)
    expect("export of %d receipts with one changed" % n, r, (1,),
           ["FAIL line %d (seq %d): hash mismatch" % (mid, mid)])
    # many broken receipts: the first 100 failures are shown, the rest counted
    for i in range(150):
        h = json.loads(lines[i])
        h["kind"] = "forged"
        lines[i] = jcs(h)
    r = run(["export", "--key", vkey, "-"], ("\n".join(lines) + "\n").encode(), timeout=1200)
    shown = r.out.decode().count("hash mismatch")
    expect("export with 151 broken receipts shows 100 and counts the rest", r, (1,),
           ["(51 more failed checks not shown)", "FAIL receipts: 151 failed checks among"])
    record(shown == 100, "exactly 100 receipt failures shown", shown)
    r = run(["export", "--key", vkey, "--json", "-"], ("\n".join(lines) + "\n").encode(), timeout=1200)
    out = json.loads(r.out)
    record(out.get("failures_not_shown") == 51 and len(out["checks"]) < 120, "--json caps failures too",
           {k: v for k, v in out.items() if k != "checks"})


def test_shared_vectors():
    """The bundle files that the share page's browser test checks too (testdata/bundles/README.md):
    the page and the CLI must agree on each one."""
    here = os.path.join(HERE, "testdata", "bundles")
    with open(os.path.join(here, "vectors.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    for case in manifest["cases"]:
        with open(os.path.join(here, case["file"]), "rb") as f:
            data = f.read()
        expect("shared vector %s" % case["file"], bundle_cmd(data, manifest["verifier_key"]),
               (case["cli_exit"],), case["cli"])


def main():
    if not os.access(CLI, os.X_OK):
        print("cli: %s is not built (make -C gateway)" % CLI)
        return 2
    with tempfile.TemporaryDirectory(prefix="dfd-cli-") as tmp:
        test_meta()
        keys = test_keys(tmp)
        keyfile, vkey, other, ovkey, rotated, rvkey, pubfile = keys
        test_sign(keyfile, vkey, tmp)
        headers, _ = test_bundles(tmp, keyfile, vkey, other, ovkey, rotated, rvkey, pubfile)
        test_exports(tmp, keyfile, vkey, other, ovkey, rotated, headers)
        test_shared_vectors()
        test_big_export(keyfile, vkey, int(os.environ.get("DFD_CLI_BIG", "3000")))
    print("cli: %d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
