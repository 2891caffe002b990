#!/usr/bin/env python3
"""Writes the shared bundle vectors of this directory (README.md). Python 3 standard library.

The receipts, disclosures, Merkle proofs and checkpoint bodies come from gateway/test_cli.py's
independent implementation of docs/receipt-format.md and docs/receipt-bundle.md; the Ed25519
signatures from `defendable-verify sign` with the test-only keys in keys/ (made once with
`defendable-verify keygen`). Everything is deterministic: running this again rewrites the same
bytes, which `make_vectors.py --check` confirms (exit 1 on a difference).

Usage: make_vectors.py [--check]      (needs gateway/defendable-verify built)
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
import test_cli as t  # noqa: E402

KEYS = os.path.join(HERE, "keys")
MAIN_KEY = os.path.join(KEYS, "ledger.test.key")    # the deployment's key
OTHER_KEY = os.path.join(KEYS, "other.test.key")    # a key the deployment never published


def vkey_of(keyfile):
    # keygen printed the verifier key; it was kept beside the signer key as <name>.vkey
    return open(keyfile[:-len(".key")] + ".vkey").read().strip()


def build():
    headers, secrets = t.make_receipts(t.ORG, t.values_of, t.N)
    leaves = [t.leaf_hash(h["hash"]) for h in headers]
    body = t.checkpoint_body(t.ORIGIN, t.N, t.mth(leaves))
    note = t.sign(MAIN_KEY, body)
    idx = 2
    good = t.make_bundle(headers, secrets, idx, t.N, note)
    names = sorted(k for k in secrets[idx]["values"] if k not in t.WITHHELD)

    def changed(fn):
        b = json.loads(json.dumps(good))
        fn(b)
        return b

    lines = note.split("\n")
    prefix, sig = lines[4].rsplit(" ", 1)
    mi = names.index("method")
    # name -> (bundle, page step that fails first, CLI exit, CLI output needles)
    cases = [
        ("genuine", good, None, 0, ["verified: "]),
        ("tampered-disclosure", changed(lambda b: b["receipt"]["disclosures"].__setitem__(
            mi, t.disclosure(secrets[idx]["salts"]["method"], "method", "password"))),
         "disclosures", 1, ["FAIL disclosure method: digest"]),
        ("tampered-digest-disclosed", changed(lambda b: b["receipt"]["fields"].__setitem__(
            "method", t.flip_b64(good["receipt"]["fields"]["method"]))),
         "disclosures", 1, ["FAIL disclosure method: digest", "FAIL receipt: hash mismatch"]),
        ("tampered-digest-withheld", changed(lambda b: b["receipt"]["fields"].__setitem__(
            "user", t.flip_b64(good["receipt"]["fields"]["user"]))),
         "receipt", 1, ["FAIL receipt: hash mismatch"]),
        ("tampered-header-seq", changed(lambda b: b["receipt"].__setitem__("seq", 4)),
         "receipt", 1, ["FAIL receipt: hash mismatch"]),
        ("tampered-header-kind", changed(lambda b: b["receipt"].__setitem__("kind", "doc.signx")),
         "receipt", 1, ["FAIL receipt: hash mismatch"]),
        ("tampered-header-ts", changed(lambda b: b["receipt"].__setitem__(
            "ts", good["receipt"]["ts"].replace(".000003Z", ".000004Z"))),
         "receipt", 1, ["FAIL receipt: hash mismatch"]),
        ("tampered-header-prev", changed(lambda b: b["receipt"].__setitem__(
            "prev", t.flip_hex(good["receipt"]["prev"]))),
         "receipt", 1, ["FAIL receipt: hash mismatch"]),
        ("tampered-proof", changed(lambda b: b["inclusion"]["hashes"].__setitem__(
            1, t.flip_hex(good["inclusion"]["hashes"][1], 7))),
         "inclusion", 1, ["FAIL inclusion: proof does not lead to the checkpoint root"]),
        ("tampered-tree-size", changed(lambda b: b["inclusion"].__setitem__("tree_size", t.N - 1)),
         "checkpoint", 1, ["FAIL checkpoint: tree size 7 but inclusion.tree_size is 6"]),
        ("tampered-root", changed(lambda b: b.__setitem__("checkpoint", "\n".join(
            lines[:2] + [t.flip_b64(lines[2], 3)] + lines[3:]))),
         "checkpoint", 1, ["FAIL checkpoint: signature does not verify"]),
        ("tampered-signature", changed(lambda b: b.__setitem__("checkpoint", note.replace(
            lines[4], prefix + " " + t.flip_b64(sig, 20)))),
         "checkpoint", 1, ["FAIL checkpoint: signature does not verify"]),
        ("foreign-key", changed(lambda b: b.__setitem__("checkpoint", t.sign(OTHER_KEY, body))),
         "key", 1, ["FAIL checkpoint: not signed by key ledger.test+"]),
    ]
    files = {}
    manifest = {"verifier_key": vkey_of(MAIN_KEY), "other_key": vkey_of(OTHER_KEY),
                "disclosed": {n: secrets[idx]["values"][n] for n in names},
                "withheld": {n: good["receipt"]["fields"][n] for n in t.WITHHELD}, "cases": []}
    for name, b, step, code, needles in cases:
        files[name + ".json"] = json.dumps(b, separators=(",", ":"), ensure_ascii=False) + "\n"
        manifest["cases"].append({"file": name + ".json", "page_step": step, "cli_exit": code, "cli": needles})
    files["vectors.json"] = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    return files


def main():
    for k, name in ((MAIN_KEY, "ledger.test"), (OTHER_KEY, "other.test")):
        if not os.path.exists(k):
            r = t.run(["keygen", name, "--out", k])
            assert r.rc == 0, r.text()
            vkeys = [l for l in r.out.decode().split("\n") if l.startswith(name + "+")]
            with open(k[:-len(".key")] + ".vkey", "w") as f:
                f.write(vkeys[0] + "\n")
    files = build()
    if t.FAILED:
        return 1
    stale = []
    for name, text in sorted(files.items()):
        path = os.path.join(HERE, name)
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if old != text:
            stale.append(name)
            if "--check" not in sys.argv:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
    if "--check" in sys.argv:
        print("bundle vectors: %s" % ("stale: " + ", ".join(stale) if stale else "current"))
        return 1 if stale else 0
    print("bundle vectors: wrote %d files" % len(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
