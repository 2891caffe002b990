#!/usr/bin/env python3
"""Expected presigned S3 GET URLs for test_sigv4's own cases, from an independent implementation.

This is a second, separate SigV4 implementation (Python standard library only: hashlib and hmac
for the cryptography, json for the output; no urllib, no AWS SDK) so that the C code is checked
against something that does not share its code. It first reproduces the AWS documentation's
presigned GET example (signature aeeed9bb...), then prints the table as JSON:

    python3 expected_keys.py > expected-keys.json

Each case gives the gw_s3_presign_get arguments and the URL it must return.
"""
import hashlib
import hmac
import json
import sys
import time

UNRESERVED = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def encode(data: bytes, keep_slash: bool) -> str:
    out = []
    for b in data:
        if b in UNRESERVED or (keep_slash and b == 0x2F):
            out.append(chr(b))
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def host_of(endpoint: str):
    """(scheme, host[:port]) with the default port dropped and the host in lower case."""
    scheme, rest = endpoint.split("://", 1)
    scheme = scheme.lower()
    rest = rest.rstrip("/")
    default = {"https": "443", "http": "80"}[scheme]
    if rest.startswith("["):
        host, _, port = rest[1:].partition("]")
        host = "[" + host + "]"
        port = port[1:] if port.startswith(":") else ""
    else:
        host, _, port = rest.partition(":")
    host = host.lower()
    if port and int(port) != int(default):
        return scheme, "%s:%d" % (host, int(port))
    return scheme, host


def presign_get(endpoint, region, bucket, virtual_host, ak, sk, key, expires, now):
    scheme, host = host_of(endpoint)
    if virtual_host:
        host = bucket + "." + host
        path = "/" + encode(key.encode("utf-8"), True)
    else:
        path = "/" + bucket + "/" + encode(key.encode("utf-8"), True)
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    scope = "%s/%s/s3/aws4_request" % (amz_date[:8], region)
    params = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": ak + "/" + scope,
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    }
    pairs = sorted((encode(k.encode(), False), encode(v.encode(), False)) for k, v in params.items())
    query = "&".join(k + "=" + v for k, v in pairs)
    creq = "\n".join(["GET", path, query, "host:" + host, "", "host", "UNSIGNED-PAYLOAD"])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])

    def mac(k, m):
        return hmac.new(k, m.encode(), hashlib.sha256).digest()

    k = mac(("AWS4" + sk).encode(), amz_date[:8])
    k = mac(k, region)
    k = mac(k, "s3")
    k = mac(k, "aws4_request")
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    return "%s://%s%s?%s&X-Amz-Signature=%s" % (scheme, host, path, query, sig)


# The AWS documentation example (S3 API Reference, sigv4-query-string-auth): if this does not
# reproduce, nothing below is worth printing.
DOC_URL = ("https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
           "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
           "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
           "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
got = presign_get("https://s3.amazonaws.com", "us-east-1", "examplebucket", True,
                  "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                  "test.txt", 86400, 1369353600)
if got != DOC_URL:
    sys.exit("the AWS documentation example does not reproduce:\n" + got)

TIGRIS = "https://fly.storage.tigris.dev"
LOCAL = "http://127.0.0.1:4569"
AK = "tid_EXAMPLEaccessKEY1"
SK = "tsec_EXAMPLE/secret+Key=0123456789abcdefABCDEF"
NOW = 1795000000  # 2026-11-18T11:06:40Z

RESERVED = "!*'();:@&=+$,?#[]%"
LONG_KEY = "k/" + "x" * 1022  # exactly 1024 bytes

CASES = [
    # name, endpoint, region, bucket, virtual_host, key, expires, now
    ("plain-virtual-host", TIGRIS, "auto", "receipts", True, "exports/2026/ledger.json", 300, NOW),
    ("plain-path-style", TIGRIS, "auto", "receipts", False, "exports/2026/ledger.json", 300, NOW),
    ("space-virtual-host", TIGRIS, "auto", "receipts", True, "my file name.pdf", 900, NOW),
    ("space-path-style-local-port", LOCAL, "us-east-1", "test-bucket", False,
     "dir with space/a b  c.txt", 900, NOW),
    ("unicode-virtual-host", TIGRIS, "auto", "receipts", True,
     "docs/\u00fcn\u00efc\u00f6d\u00e9/\u0444\u0430\u0439\u043b \u540d\u524d.pdf", 3600, NOW),
    ("unicode-path-style", LOCAL, "us-east-1", "test-bucket", False,
     "\u00e9t\u00e9/\U0001F600 emoji \u2603.txt", 3600, NOW),
    ("reserved-virtual-host", TIGRIS, "auto", "receipts", True, "r/" + RESERVED + "/end", 60, NOW),
    ("reserved-path-style", LOCAL, "us-east-1", "test-bucket", False, "r/" + RESERVED + "/end", 60,
     NOW),
    ("reserved-each-as-name", TIGRIS, "auto", "receipts", False, "a!b*c'd(e)f;g:h@i&j=k+l$m,n?o#p[q]r%s",
     60, NOW),
    ("percent-looking-key", TIGRIS, "auto", "receipts", True, "%2F%20already-encoded%zz", 60, NOW),
    ("unreserved-untouched", TIGRIS, "auto", "receipts", True,
     "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 60, NOW),
    ("slashes-kept-not-collapsed", TIGRIS, "auto", "receipts", False, "/leading//double/trailing/",
     60, NOW),
    ("dots-inside-segments", TIGRIS, "auto", "receipts", True, ".hidden/...three/a..b/.x./end.", 60,
     NOW),
    ("control-bytes", LOCAL, "us-east-1", "test-bucket", False, "tab\there\nnewline\x7f", 60, NOW),
    ("longest-key-1024", TIGRIS, "auto", "receipts", True, LONG_KEY, 60, NOW),
    ("expires-min-1", TIGRIS, "auto", "receipts", True, "a", 1, NOW),
    ("expires-max-604800", TIGRIS, "auto", "receipts", True, "a", 604800, NOW),
    ("epoch-zero", TIGRIS, "auto", "receipts", True, "a", 60, 0),
    ("last-second-of-year-9999", TIGRIS, "auto", "receipts", True, "a", 60, 253402300799),
    ("default-https-port-dropped", "https://fly.storage.tigris.dev:443", "auto", "receipts", True,
     "a b", 60, NOW),
    ("default-http-port-dropped", "http://localhost:80", "us-east-1", "test-bucket", False, "a b",
     60, NOW),
    ("non-default-https-port-kept", "https://s3.example.test:8443", "eu-west-3", "bucket.with.dots",
     False, "k", 60, NOW),
    ("trailing-slash-and-case", "HTTPS://Fly.Storage.Tigris.Dev/", "auto", "receipts", True, "k", 60,
     NOW),
    ("ipv6-path-style", "http://[::1]:9000", "us-east-1", "test-bucket", False, "k e y", 60, NOW),
]

out = {
    "description": "Expected gw_s3_presign_get URLs for test_sigv4's own cases (keys with spaces, "
                   "unicode, reserved characters, in virtual-host and path style), computed by "
                   "testdata/sigv4/expected_keys.py, an implementation independent of sigv4.c "
                   "(Python hashlib/hmac only). It checks itself against the AWS documentation's "
                   "presigned GET example before printing.",
    "access_key_id": AK,
    "secret_access_key": SK,
    "cases": [],
}
for name, endpoint, region, bucket, vh, key, expires, now in CASES:
    out["cases"].append({
        "name": name,
        "endpoint": endpoint,
        "region": region,
        "bucket": bucket,
        "virtual_host": vh,
        "key": key,
        "expires": expires,
        "now": now,
        "url": presign_get(endpoint, region, bucket, vh, AK, SK, key, expires, now),
    })
json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
sys.stdout.write("\n")
