#!/usr/bin/env python3
"""Independent verifier for defendable receipt public projections (receipt format v1).

Written from docs/receipt-format.md alone (section 5), standard library only.
It implements RFC 8785 (JSON Canonicalization Scheme) itself.

Usage: verify_projection.py [--json] [--no-chain] [FILE ...]   (no FILE or '-' = stdin)
       verify_projection.py --self-test
Each input holds one JSON projection or JSON Lines (one projection per line).
Exit status: 0 all verified, 1 some projection failed, 2 usage or I/O error.
"""
import argparse, base64, collections, datetime, decimal, hashlib, json, math, re, struct, sys

class Refused(ValueError):
    """The input is not what the format allows; the message is the reason shown to the user."""

# A JSON number kept with its source text, so nothing is rounded before we decide.
Num = collections.namedtuple("Num", "text is_int")

def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise Refused("duplicate object member %s" % json.dumps(key))
        obj[key] = value
    return obj

def _no_constant(name):
    raise Refused("%s is not JSON" % name)  # json accepts NaN/Infinity by default; RFC 8259 does not

def parse_json(text):
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant,
                      parse_float=lambda t: Num(t, False), parse_int=lambda t: Num(t, True))

# ---------------------------------------------------------------- RFC 8785 (JCS)

def es_number(x):
    """ECMAScript Number.prototype.toString(x) for a finite double (RFC 8785 section 3.2.2.3)."""
    if math.isnan(x) or math.isinf(x):
        raise Refused("number is not a finite IEEE-754 double")
    if x == 0:
        return "0"  # also for -0: ES prints -0 as "0"
    if x < 0:
        return "-" + es_number(-x)
    # repr() gives the shortest digit string that round-trips, and among those the one closest
    # to x -- exactly the digits s (k of them) that ES asks for. Only the layout differs.
    mantissa, _, exp = repr(x).partition("e")
    int_part, _, frac = mantissa.partition(".")
    digits = int_part + frac
    n = len(int_part) + int(exp or "0")        # x = 0.digits * 10^n
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)           # '0.002' -> digits '2', n = -2
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:                           # integer below 1e21: plain digits, zero-filled
        return digits + "0" * (n - k)
    if 0 < n <= 21:                            # point inside the digits
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:                            # 0.000001 is still plain, 1e-7 is not
        return "0." + "0" * (-n) + digits
    e = n - 1
    return "%s%se%s%d" % (digits[0], "." + digits[1:] if k > 1 else "", "+" if e > 0 else "-", abs(e))

def num_value(text):
    x = float(text)  # correctly rounded; overflow gives inf, which es_number refuses
    if math.isinf(x):
        raise Refused("number %s is outside the double range" % text)
    return x

def survives(text):
    """Section 2: a number is accepted only if its printed shortest form equals it numerically."""
    return decimal.Decimal(es_number(num_value(text))) == decimal.Decimal(text)

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}

def jcs_string(s):
    out = ['"']
    for ch in s:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch < " ":
            out.append("\\u%04x" % ord(ch))    # lower-case hex, as RFC 8785 requires
        elif "\ud800" <= ch <= "\udfff":
            # json.loads joins valid surrogate pairs, so a surrogate left here is a lone one,
            # which has no UTF-8 encoding and hence no canonical form.
            raise Refused("string contains a lone surrogate")
        else:
            out.append(ch)                     # '/', U+007F and non-ASCII stay literal
    out.append('"')
    return "".join(out)

def _utf16_key(name):
    # RFC 8785 sorts member names by UTF-16 code units, not by code points: U+1F600 (surrogates
    # D83D DE00) sorts before U+FB33. Big-endian UTF-16 bytes compare exactly like code units.
    return name.encode("utf-16-be", "surrogatepass")

def jcs(value):
    """Canonical JSON text (a str; encode as UTF-8 for the bytes)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Num):
        return es_number(num_value(value.text))
    if isinstance(value, (int, float)):
        return es_number(float(value))
    if isinstance(value, str):
        return jcs_string(value)
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(jcs_string(k) + ":" + jcs(value[k])
                              for k in sorted(value, key=_utf16_key)) + "}"
    raise TypeError("not a JSON value: %r" % (value,))

# ---------------------------------------------------------------- base64url, formats

def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

_B64URL = re.compile(r"[A-Za-z0-9_-]*")

def b64url_decode(s):
    """Strict RFC 4648 section 5 without padding: the only text for these bytes is accepted."""
    if not _B64URL.fullmatch(s):
        raise Refused("not unpadded base64url (padding or character outside the alphabet)")
    if len(s) % 4 == 1:
        raise Refused("not base64url (impossible length)")
    raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    if b64url(raw) != s:  # unused low bits of the last character must be zero
        raise Refused("non-canonical base64url (trailing bits not zero)")
    return raw

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TS_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{6})Z")
KIND_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
NAME_RE = re.compile(r"[a-z][a-z0-9_]*")
HEX64_RE = re.compile(r"[0-9a-f]{64}")      # 'hex' is lower-case by the spec's notation
MEMBERS = ("v", "org", "seq", "ts", "kind", "prev", "hash", "fields", "disclosures")
ZERO_HASH = "0" * 64
MAX_SEQ = 2 ** 53  # see seq_of()

def is_name(x):
    return isinstance(x, str) and len(x) <= 64 and NAME_RE.fullmatch(x) is not None

def seq_of(x):
    # A JSON integer literal, positive. Section 3 defines the body both as JCS(...) and as having
    # seq "as plain decimal integers"; the two agree only while seq is an exact double < 1e21,
    # i.e. up to 2^53, so larger values are refused rather than guessed at.
    if not (isinstance(x, Num) and x.is_int and re.fullmatch(r"[1-9][0-9]{0,15}", x.text)):
        return None
    n = int(x.text)
    return n if n <= MAX_SEQ else None

def check_ts(ts):
    m = isinstance(ts, str) and TS_RE.fullmatch(ts)
    if not m:
        return False
    try:  # also a real calendar time (no month 13, no 24:00, no leap second)
        datetime.datetime(*(int(g) for g in m.groups()))
    except ValueError:
        return False
    return True

# ---------------------------------------------------------------- section 5

def prefixed(prefix, fn, *args):
    """fn(*args), with prefix added to the reason if it refuses."""
    try:
        return fn(*args)
    except Refused as e:
        raise Refused("%s: %s" % (prefix, e))

def verify(p, info):
    """Verify projection p; fills info (org, seq, hash, disclosed) or raises Refused."""
    if not isinstance(p, dict):
        raise Refused("projection is not a JSON object")
    if isinstance(p.get("org"), str) and UUID_RE.fullmatch(p["org"]):
        info["org"] = p["org"]                 # known early so that FAIL lines can name it
    if seq_of(p.get("seq")) is not None:
        info["seq"] = seq_of(p["seq"])
    # Step 1: exact member set and the formats of section 1.
    missing = [m for m in MEMBERS if m not in p]
    extra = sorted(m for m in p if m not in MEMBERS)
    if missing:
        raise Refused("missing member " + ", ".join(missing))
    if extra:
        raise Refused("unexpected member " + ", ".join(json.dumps(m) for m in extra))
    if not (isinstance(p["v"], Num) and p["v"].is_int and p["v"].text == "1"):
        raise Refused("v is not 1")
    if "org" not in info:
        raise Refused("bad org format (not a lower-case canonical UUID)")
    if "seq" not in info:
        raise Refused("bad seq (not a positive integer literal <= 2^53)")
    if not check_ts(p["ts"]):
        raise Refused("bad ts format (not YYYY-MM-DDTHH:MM:SS.ffffffZ)")
    kind = p["kind"]
    if not (isinstance(kind, str) and KIND_RE.fullmatch(kind) and len(kind.encode()) <= 64):
        raise Refused("bad kind format")
    for m in ("prev", "hash"):
        if not (isinstance(p[m], str) and HEX64_RE.fullmatch(p[m])):
            raise Refused("bad %s format (not 64 lower-case hex digits)" % m)
    if info["seq"] == 1 and p["prev"] != ZERO_HASH:
        raise Refused("prev of seq 1 is not 64 zeros")
    fields = p["fields"]
    if not isinstance(fields, dict):
        raise Refused("fields is not an object")
    if len(fields) > 64:
        raise Refused("fields has more than 64 members")
    for name, digest in fields.items():
        if not is_name(name):
            raise Refused("fields has an invalid field name %s" % json.dumps(name))
        if not (isinstance(digest, str) and len(digest) == 43):
            raise Refused("fields.%s is not a 43-character string" % name)
        prefixed("fields." + name, b64url_decode, digest)
    if not isinstance(p["disclosures"], list):
        raise Refused("disclosures is not an array")
    # Step 2: every disclosure.
    disclosed = {}
    for i, d in enumerate(p["disclosures"]):
        where = "disclosure %d" % i
        if not isinstance(d, str):
            raise Refused(where + " is not a string")
        raw = prefixed(where, b64url_decode, d)
        try:
            arr = prefixed(where, parse_json, raw.decode("utf-8"))  # strict UTF-8: no encoded surrogates
        except UnicodeDecodeError:
            raise Refused(where + ": decoded bytes are not UTF-8")
        except Refused:
            raise
        except ValueError as e:
            raise Refused("%s: decoded bytes are not JSON (%s)" % (where, e))
        if not (isinstance(arr, list) and len(arr) == 3):
            raise Refused(where + ": not a JSON array of exactly 3 elements")
        salt, name, value = arr
        if not (isinstance(salt, str) and len(salt) == 22):
            raise Refused(where + ": salt is not a 22-character string")
        prefixed(where + ": salt", b64url_decode, salt)
        if not is_name(name):
            raise Refused(where + ": name is not a valid field name")
        where = "disclosure %d (%s)" % (i, name)
        canon = prefixed(where, jcs, [salt, name, value]).encode("utf-8")
        if canon != raw:
            at = next((j for j, (a, b) in enumerate(zip(canon, raw)) if a != b), min(len(canon), len(raw)))
            raise Refused("%s: not canonical JCS (first difference at byte %d)" % (where, at))
        if name in disclosed:
            raise Refused(where + ": field disclosed twice")
        if name not in fields:
            raise Refused(where + ": field not in fields")
        if b64url(hashlib.sha256(d.encode("ascii")).digest()) != fields[name]:
            raise Refused(where + ": digest does not match fields." + name)
        disclosed[name] = value
    # Section 4 says the disclosures come "in name order"; step 5 does not repeat it, but a
    # projection in another order was not produced as specified, so it is refused too.
    if list(disclosed) != sorted(disclosed):
        raise Refused("disclosures are not in name order")
    # Step 3: the body and the hash.
    if hashlib.sha256(body_bytes(p)).hexdigest() != p["hash"]:
        raise Refused("hash mismatch")
    info.update(hash=p["hash"], prev=p["prev"], disclosed=disclosed)

def body_bytes(p):
    """Section 3: JCS of the body object; seq and v are exact integers, so JCS prints them plainly."""
    body = {"v": 1, "org": p["org"], "seq": seq_of(p["seq"]), "ts": p["ts"], "kind": p["kind"],
            "prev": p["prev"], "fields": p["fields"]}
    return jcs(body).encode("utf-8")

def check_chain(results):
    """Step 4 for the projections we hold: per org, seq continuity and prev links."""
    by_org = {}
    for r in results:
        if r["ok"]:  # a projection that failed proves nothing about its neighbours
            by_org.setdefault(r["org"], {}).setdefault(r["seq"], []).append(r)
    problems = []
    for org, by_seq in by_org.items():
        seqs = sorted(by_seq)
        for a, b in zip(seqs, seqs[1:]):
            if b != a + 1:
                problems.append((org, a + 1, "chain: missing seq %d (have %d and %d)" % (a + 1, a, b)))
        for seq in seqs:
            if len({r["hash"] for r in by_seq[seq]}) > 1:
                problems.append((org, seq, "chain: duplicate seq %d with different hashes" % seq))
            before = {r["hash"] for r in by_seq.get(seq - 1, [])}
            if before and any(r["prev"] not in before for r in by_seq[seq]):
                problems.append((org, seq, "chain: prev link broken (prev is not the hash of seq %d)" % (seq - 1)))
    return sorted(problems)

# ---------------------------------------------------------------- input and output

def split_input(label, data):
    """Yield (source, text) per projection: the whole input if it is one JSON value, else each line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        yield label, None
        return
    try:  # lenient syntax-only probe, to tell one (maybe pretty-printed) document from JSON Lines
        json.loads(text, parse_int=str, parse_float=str, parse_constant=str, object_pairs_hook=list)
        yield label, text
        return
    except ValueError:
        pass
    lines = [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
    if not lines:
        yield label, ""
    for n, line in lines:
        yield "%s line %d" % (label, n), line

def run_one(source, text):
    info = {"ok": False, "source": source}
    try:
        if text is None:
            raise Refused("%s: not UTF-8" % source)
        if not text.strip():
            raise Refused("%s: no projection found" % source)
        try:
            p = prefixed(source, parse_json, text)
        except Refused:
            raise
        except ValueError as e:
            raise Refused("%s: invalid JSON (%s)" % (source, e))
        try:
            verify(p, info)
        except Refused as e:  # name the input line when the projection cannot name itself
            raise Refused(str(e) if "org" in info else "%s: %s" % (source, e))
        info["ok"] = True
    except Refused as e:
        info["error"] = str(e)
    return info

def emit(info, as_json):
    if as_json:
        out = {"ok": info["ok"], "source": info["source"], "org": info.get("org"), "seq": info.get("seq")}
        if info["ok"]:
            out.update(hash=info["hash"], disclosed=info["disclosed"])
        else:
            out["error"] = info["error"]
        print(jcs(out))
    elif info["ok"]:
        names = ",".join(info["disclosed"]) or "-"
        print("ok org=%s seq=%s hash=%s disclosed=%s" % (info["org"], info["seq"], info["hash"], names))
    else:
        print("FAIL org=%s seq=%s : %s" % (info.get("org", "?"), info.get("seq", "?"), info["error"]))

def main(argv=None):
    ap = argparse.ArgumentParser(description="Verify defendable receipt public projections (format v1).")
    ap.add_argument("--json", action="store_true", help="one JSON object per result")
    ap.add_argument("--no-chain", action="store_true", help="skip the prev/seq check between projections")
    ap.add_argument("--self-test", action="store_true", help="check the spec's worked example and JCS")
    ap.add_argument("files", nargs="*", metavar="FILE")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    results, io_error = [], False
    for path in args.files or ["-"]:
        try:
            if path == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(path, "rb") as f:
                    data = f.read()
        except OSError as e:
            print("error: cannot read %s: %s" % (path, e.strerror or e), file=sys.stderr)
            io_error = True
            continue
        for source, text in split_input("stdin" if path == "-" else path, data):
            results.append(run_one(source, text))
            emit(results[-1], args.json)
    failed = any(not r["ok"] for r in results)
    if not args.no_chain:
        for org, seq, reason in check_chain(results):
            emit({"ok": False, "source": "chain", "org": org, "seq": seq, "error": reason}, args.json)
            failed = True
    return 2 if io_error else 1 if failed else 0

# ---------------------------------------------------------------- self-test (section 7 + RFC 8785)

EXAMPLE_PROJECTION = """{"disclosures":["WyJFQkVTRXhRVkZoY1lHUm9iSEIwZUh3IiwibWV0aG9kIiwibWFnaWNfbGluayJd"],
 "fields":{"method":"RsLY8dajBlTBLX-2AOII8gGC3MzOF_oKzFmaV0nWKsQ","user":"hZZ_GcqHIZ4nHmNPtwfwV1KvO8zgMDQoXuQtCiPA2g4"},
 "hash":"66bb54057bbc5c8573d25db5d29639464a0d91c8abba4e9cba371a1fe0ec927f",
 "kind":"auth.verify","org":"0190a5e2-1c9f-7b3e-8a41-6f2d9c0e7b15",
 "prev":"0000000000000000000000000000000000000000000000000000000000000000",
 "seq":1,"ts":"2026-11-22T09:22:44.123456Z","v":1}"""
EXAMPLE_BODY = ('{"fields":{"method":"RsLY8dajBlTBLX-2AOII8gGC3MzOF_oKzFmaV0nWKsQ","user":"hZZ_GcqHIZ4nHmNPtwfwV1KvO8zgMDQoXuQtCiPA2g4"},'
                '"kind":"auth.verify","org":"0190a5e2-1c9f-7b3e-8a41-6f2d9c0e7b15",'
                '"prev":"0000000000000000000000000000000000000000000000000000000000000000",'
                '"seq":1,"ts":"2026-11-22T09:22:44.123456Z","v":1}')
EXAMPLE_HASH = "66bb54057bbc5c8573d25db5d29639464a0d91c8abba4e9cba371a1fe0ec927f"
# RFC 8785 Appendix B style samples: IEEE-754 bits -> ES text.
NUMBER_SAMPLES = [
    ("0000000000000000", "0"), ("8000000000000000", "0"), ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"), ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"), ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"), ("4340000000000001", "9007199254740994"),
    ("4430000000000000", "295147905179352830000"), ("44b52d02c7e14af6", "1e+23"),
    ("444b1ae4d6e2ef50", "1e+21"), ("3eb0c6f7a0b5ed8d", "0.000001"), ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
]

def self_test():
    passed, failed = 0, 0

    def check(what, got, want):
        nonlocal passed, failed
        if got == want:
            passed += 1
        else:
            failed += 1
            print("FAIL %s\n  got:  %r\n  want: %r" % (what, got, want))

    examples = [("user", bytes(range(16)), "u_7Kq2", "AAECAwQFBgcICQoLDA0ODw",
                 '["AAECAwQFBgcICQoLDA0ODw","user","u_7Kq2"]',
                 "WyJBQUVDQXdRRkJnY0lDUW9MREEwT0R3IiwidXNlciIsInVfN0txMiJd", "hZZ_GcqHIZ4nHmNPtwfwV1KvO8zgMDQoXuQtCiPA2g4"),
                ("method", bytes(range(16, 32)), "magic_link", "EBESExQVFhcYGRobHB0eHw",
                 '["EBESExQVFhcYGRobHB0eHw","method","magic_link"]',
                 "WyJFQkVTRXhRVkZoY1lHUm9iSEIwZUh3IiwibWV0aG9kIiwibWFnaWNfbGluayJd", "RsLY8dajBlTBLX-2AOII8gGC3MzOF_oKzFmaV0nWKsQ")]
    fields = {}
    for name, salt_bytes, value, salt, canon, disclosure, digest in examples:
        check("section 7 salt of " + name, b64url(salt_bytes), salt)
        check("section 7 JCS of " + name, jcs([salt, name, value]), canon)
        check("section 7 disclosure of " + name, b64url(canon.encode()), disclosure)
        check("section 7 digest of " + name, b64url(hashlib.sha256(disclosure.encode()).digest()), digest)
        fields[name] = digest
    p = {"v": 1, "org": "0190a5e2-1c9f-7b3e-8a41-6f2d9c0e7b15", "seq": Num("1", True),
         "ts": "2026-11-22T09:22:44.123456Z", "kind": "auth.verify", "prev": ZERO_HASH, "fields": fields}
    body = body_bytes(p)
    check("section 7 body bytes", body.decode(), EXAMPLE_BODY)
    check("section 7 body length", len(body), 309)
    check("section 7 hash", hashlib.sha256(body).hexdigest(), EXAMPLE_HASH)
    r = run_one("self-test", EXAMPLE_PROJECTION)
    check("section 7 projection verifies", r.get("error", "ok"), "ok")
    check("section 7 projection discloses method only", jcs(r.get("disclosed")), '{"method":"magic_link"}')
    check("section 7 amount 1.50", jcs(["AAAAAAAAAAAAAAAAAAAAAA", "amount", parse_json("1.50")]),
          '["AAAAAAAAAAAAAAAAAAAAAA","amount",1.5]')
    # Section 2 number sentences.
    check("1e21 -> 1e+21", jcs(parse_json("1e21")), "1e+21")
    check("1.50 survives", survives("1.50"), True)
    check("2^53+1 refused", survives("9007199254740993"), False)
    check("0.1000000000000000000000000001 refused", survives("0.1000000000000000000000000001"), False)
    # RFC 8785 section 3.2.3 numbers, strings, literals; then sorting by UTF-16 code units.
    check("RFC 8785 numbers", jcs(parse_json("[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]")),
          "[333333333.3333333,1e+30,4.5,0.002,1e-27]")
    check("RFC 8785 string", jcs(parse_json('"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/"')),
          '"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"')
    check("RFC 8785 literals", jcs(parse_json("[null, true, false]")), "[null,true,false]")
    check("control, DEL, slash", jcs("\x00\x08\x1f\x7f/\u00e9"), '"\\u0000\\b\\u001f\x7f/\u00e9"')
    sort_in = r'{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5,"\u0080":6,"\u00f6":7}'
    check("RFC 8785 UTF-16 sort", jcs(parse_json(sort_in)),
          '{"\\r":2,"1":4,"\u0080":6,"\u00f6":7,"\u20ac":1,"\U0001F600":5,"\ufb33":3}')
    for bits, want in NUMBER_SAMPLES:
        check("number %s" % bits, es_number(struct.unpack(">d", bytes.fromhex(bits))[0]), want)
    for x, want in [(1e20, "100000000000000000000"), (1e-7, "1e-7"), (123e-20, "1.23e-18"), (0.5, "0.5"),
                    (-0.0, "0"), (1.5e300, "1.5e+300"), (12.34, "12.34")]:
        check("number %r" % x, es_number(x), want)
    # A few refusals, so the checks above cannot pass by accepting everything.
    bad = [("hash mismatch", EXAMPLE_PROJECTION.replace('"kind":"auth.verify"', '"kind":"auth.verifx"')),
           ("disclosure 0: not unpadded base64url", EXAMPLE_PROJECTION.replace('ayJd"]', 'ayJd="]')),
           ("duplicate object member", EXAMPLE_PROJECTION.replace('"v":1}', '"v":1,"v":1}')),
           ("bad ts format", EXAMPLE_PROJECTION.replace("09:22:44.123456Z", "09:22:44.123Z")),
           ("not canonical JCS", EXAMPLE_PROJECTION.replace(examples[1][5], b64url(b'["EBESExQVFhcYGRobHB0eHw", "method","magic_link"]'))),
           ("digest does not match", EXAMPLE_PROJECTION.replace('"method":"RsLY', '"method":"AsLY'))]
    for want, text in bad:
        got = run_one("self-test", text).get("error", "ok")
        check("refuses: " + want, want if want in got else got, want)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
