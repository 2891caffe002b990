/*
 * share.js: shows a shared receipt and verifies it in the reader's own browser, so that the
 * reader does not have to trust the server that sent the page (docs/receipt-bundle.md section 4,
 * the same checks as `defendable-verify bundle`).
 *
 * Steps, in the CLI's order; the first one that fails is named in the status banner:
 *   bundle       the bundle and its projection have exactly the documented shape
 *   disclosures  each disclosure decodes to canonical [salt, name, value] whose digest is in fields
 *   receipt      SHA-256 of the canonical body (RFC 8785) equals the receipt's hash
 *   key          the checkpoint is signed by a key the deployment publishes at /ledger/keys
 *   checkpoint   that Ed25519 signature verifies; the origin names the receipt's org; the size
 *                equals inclusion.tree_size
 *   inclusion    leaf_index is seq - 1 and the RFC 9162 proof leads to the checkpoint's root
 *
 * Plain JavaScript, no framework, no request beyond this origin's /ledger/keys. Every value from
 * the bundle reaches the page through textContent only, never as HTML.
 */
(function () {
    "use strict";

    // ---- bytes and encodings ----------------------------------------------------------------

    var B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    var B64STD = B64 + "+/";
    var B64URL = B64 + "-_";

    function hexToBytes(hex) {
        var out = new Uint8Array(hex.length / 2);
        for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
        return out;
    }

    function bytesToHex(bytes) {
        var s = "";
        for (var i = 0; i < bytes.length; i++) s += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
        return s;
    }

    function concat() {
        var n = 0, i, off = 0;
        for (i = 0; i < arguments.length; i++) n += arguments[i].length;
        var out = new Uint8Array(n);
        for (i = 0; i < arguments.length; i++) {
            out.set(arguments[i], off);
            off += arguments[i].length;
        }
        return out;
    }

    function equalBytes(a, b) {
        if (a.length !== b.length) return false;
        var d = 0;
        for (var i = 0; i < a.length; i++) d |= a[i] ^ b[i];
        return d === 0;
    }

    /* Strict decoder: one text per byte string (receipt-format.md: no padding unless the
     * alphabet is the standard one with padding, no stray characters, unused bits zero).
     * Returns null when the text is not acceptable. */
    function base64Decode(text, alphabet, padded) {
        if (typeof text !== "string") return null;
        var s = text;
        if (padded) {
            if (s.length % 4 !== 0) return null;
            if (s.endsWith("==")) s = s.slice(0, -2);
            else if (s.endsWith("=")) s = s.slice(0, -1);
        }
        if (s.length % 4 === 1) return null;
        var out = new Uint8Array(Math.floor(s.length * 3 / 4));
        var acc = 0, bits = 0, o = 0;
        for (var i = 0; i < s.length; i++) {
            var v = alphabet.indexOf(s[i]);
            if (v < 0) return null;
            acc = (acc << 6) | v;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                out[o++] = (acc >> bits) & 0xff;
            }
            acc &= (1 << bits) - 1;
        }
        if (acc !== 0) return null; // unused trailing bits must be zero
        return out;
    }

    function base64Encode(bytes, alphabet, pad) {
        var s = "", i;
        for (i = 0; i + 2 < bytes.length; i += 3) {
            var n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
            s += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] + alphabet[n & 63];
        }
        if (bytes.length - i === 1) {
            s += alphabet[bytes[i] >> 2] + alphabet[(bytes[i] & 3) << 4] + (pad ? "==" : "");
        } else if (bytes.length - i === 2) {
            var m = (bytes[i] << 8) | bytes[i + 1];
            s += alphabet[m >> 10] + alphabet[(m >> 4) & 63] + alphabet[(m & 15) << 2] + (pad ? "=" : "");
        }
        return s;
    }

    var utf8 = new TextEncoder();

    async function sha256(bytes) {
        return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    }

    // ---- RFC 8785 canonical JSON of a parsed value --------------------------------------------

    /* JSON.stringify writes strings and numbers exactly as RFC 8785 asks (ECMAScript number
     * formatting, the same escapes); only object members need sorting by UTF-16 code units,
     * which is what the default sort compares. */
    function jcs(v) {
        if (v === null || typeof v === "boolean") return String(v);
        if (typeof v === "number") {
            if (!isFinite(v)) throw new Error("a number that JSON cannot hold");
            return JSON.stringify(v);
        }
        if (typeof v === "string") return JSON.stringify(v);
        if (Array.isArray(v)) return "[" + v.map(jcs).join(",") + "]";
        return "{" + Object.keys(v).sort().map(function (k) {
            return JSON.stringify(k) + ":" + jcs(v[k]);
        }).join(",") + "}";
    }

    // ---- shapes (receipt-format.md section 1, receipt-bundle.md section 3) --------------------

    var RE = {
        org: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
        ts: /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.\d{6}Z$/,
        kind: /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/,
        hex64: /^[0-9a-f]{64}$/,
        name: /^[a-z][a-z0-9_]*$/,
        // 43 base64url characters for 32 bytes: the last one carries 2 unused zero bits
        digest: /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/
    };

    function isObject(v) {
        return v !== null && typeof v === "object" && !Array.isArray(v);
    }

    function exactMembers(obj, names, where) {
        if (!isObject(obj)) throw new Error(where + " is not a JSON object");
        var keys = Object.keys(obj);
        names.forEach(function (n) {
            if (!Object.prototype.hasOwnProperty.call(obj, n)) throw new Error(where + ': missing member "' + n + '"');
        });
        keys.forEach(function (k) {
            if (names.indexOf(k) < 0) throw new Error(where + ': unexpected member "' + k + '"');
        });
    }

    function realTime(ts) {
        var m = RE.ts.exec(ts);
        if (!m) return false;
        var d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
        return d.getUTCFullYear() === +m[1] && d.getUTCMonth() === +m[2] - 1 && d.getUTCDate() === +m[3] &&
            d.getUTCHours() === +m[4] && d.getUTCMinutes() === +m[5] && d.getUTCSeconds() === +m[6];
    }

    function checkShape(b) {
        exactMembers(b, ["v", "receipt", "inclusion", "checkpoint"], "bundle");
        if (b.v !== 1) throw new Error("bundle: v is not 1");
        var p = b.receipt;
        exactMembers(p, ["v", "org", "seq", "ts", "kind", "prev", "hash", "fields", "disclosures"], "receipt");
        if (p.v !== 1) throw new Error("receipt: v is not 1");
        if (typeof p.org !== "string" || !RE.org.test(p.org)) throw new Error("receipt: org is not a lower-case UUID");
        if (!Number.isSafeInteger(p.seq) || p.seq < 1) throw new Error("receipt: seq is not a positive integer");
        if (typeof p.ts !== "string" || !realTime(p.ts)) throw new Error("receipt: ts is not YYYY-MM-DDTHH:MM:SS.ffffffZ");
        if (typeof p.kind !== "string" || p.kind.length > 64 || !RE.kind.test(p.kind)) throw new Error("receipt: kind is not a valid kind");
        if (typeof p.prev !== "string" || !RE.hex64.test(p.prev)) throw new Error("receipt: prev is not 64 hex digits");
        if (typeof p.hash !== "string" || !RE.hex64.test(p.hash)) throw new Error("receipt: hash is not 64 hex digits");
        if (!isObject(p.fields)) throw new Error("receipt: fields is not an object");
        var names = Object.keys(p.fields);
        if (names.length > 64) throw new Error("receipt: more than 64 fields");
        names.forEach(function (n) {
            if (n.length > 64 || !RE.name.test(n)) throw new Error('receipt: invalid field name "' + n + '"');
            if (typeof p.fields[n] !== "string" || !RE.digest.test(p.fields[n]))
                throw new Error("receipt: fields." + n + " is not a digest");
        });
        if (!Array.isArray(p.disclosures)) throw new Error("receipt: disclosures is not an array");
        p.disclosures.forEach(function (d, i) {
            if (typeof d !== "string") throw new Error("disclosure " + i + ": not a string");
        });
        var inc = b.inclusion;
        exactMembers(inc, ["leaf_index", "tree_size", "hashes"], "inclusion");
        if (!Number.isSafeInteger(inc.leaf_index)) throw new Error("inclusion: leaf_index is not an integer");
        if (!Number.isSafeInteger(inc.tree_size)) throw new Error("inclusion: tree_size is not an integer");
        if (!Array.isArray(inc.hashes)) throw new Error("inclusion: hashes is not an array");
        if (inc.hashes.length > 64) throw new Error("inclusion: more than 64 hashes");
        inc.hashes.forEach(function (h, i) {
            if (typeof h !== "string" || !RE.hex64.test(h)) throw new Error("inclusion: hashes[" + i + "] is not 64 hex digits");
        });
        if (b.checkpoint !== null && typeof b.checkpoint !== "string")
            throw new Error("checkpoint: neither a string nor null");
    }

    // ---- disclosures and the receipt hash (receipt-format.md sections 2, 3, 5) ----------------

    var utf8Strict = new TextDecoder("utf-8", { fatal: true });

    /* Returns [{name, value, digest, ok, detail}] in bundle order; throws on a malformed one. */
    async function checkDisclosures(p) {
        var out = [], seen = {}, last = "";
        for (var i = 0; i < p.disclosures.length; i++) {
            var d = p.disclosures[i];
            var raw = base64Decode(d, B64URL, false);
            if (raw === null) throw new Error("disclosure " + i + ": not unpadded base64url");
            var text, arr;
            try {
                text = utf8Strict.decode(raw);
                arr = JSON.parse(text);
            } catch (e) {
                throw new Error("disclosure " + i + ": decoded bytes are not acceptable JSON");
            }
            if (!Array.isArray(arr) || arr.length !== 3) throw new Error("disclosure " + i + ": not an array of 3 elements");
            var salt = arr[0], name = arr[1];
            if (typeof salt !== "string" || salt.length !== 22 || base64Decode(salt, B64URL, false) === null)
                throw new Error("disclosure " + i + ": salt is not 22 base64url characters");
            if (typeof name !== "string" || name.length > 64 || !RE.name.test(name))
                throw new Error("disclosure " + i + ": name is not a valid field name");
            // canonical text only: this also refuses duplicate members and inexact numbers,
            // which JSON.parse would otherwise accept silently
            if (jcs(arr) !== text) throw new Error("disclosure " + i + ": not canonical (RFC 8785)");
            var digest = base64Encode(await sha256(utf8.encode(d)), B64URL, false);
            var row = { name: name, value: arr[2], digest: digest, ok: true, detail: "digest matches" };
            if (seen[name]) {
                row.ok = false;
                row.detail = "disclosed twice";
            } else if (name < last) {
                row.ok = false;
                row.detail = "out of name order";
            } else if (!Object.prototype.hasOwnProperty.call(p.fields, name)) {
                row.ok = false;
                row.detail = "digest not in fields";
            } else if (p.fields[name] !== digest) {
                row.ok = false;
                row.detail = "digest " + digest + " is not fields." + name;
            }
            seen[name] = true;
            last = name;
            out.push(row);
        }
        return out;
    }

    function receiptBody(p) {
        return jcs({ v: 1, org: p.org, seq: p.seq, ts: p.ts, kind: p.kind, prev: p.prev, fields: p.fields });
    }

    // ---- checkpoints and verifier keys (receipt-bundle.md section 2) --------------------------

    /* "<name>+<8 hex>+<base64(0x01 || 32-byte key)>", with the key ID checked. */
    async function parseVerifierKey(text) {
        if (typeof text !== "string") return null;
        var a = text.indexOf("+"), b = text.indexOf("+", a + 1);
        if (a <= 0 || b !== a + 9) return null;
        var name = text.slice(0, a), id = text.slice(a + 1, b);
        var blob = base64Decode(text.slice(b + 1), B64STD, true);
        if (!/^[0-9a-f]{8}$/.test(id) || blob === null || blob.length !== 33 || blob[0] !== 1) return null;
        var pub = blob.slice(1);
        var h = await sha256(concat(utf8.encode(name + "\n"), blob));
        if (bytesToHex(h.slice(0, 4)) !== id) return null;
        return { text: text, name: name, id: id, pub: pub };
    }

    /* A signed note: body (ending in "\n"), an empty line, signature lines "— name base64". */
    function parseNote(note) {
        var cut = note.indexOf("\n\n");
        if (cut < 0) throw new Error("not a signed note");
        var body = note.slice(0, cut + 1);
        var sigs = note.slice(cut + 2).split("\n");
        if (sigs.pop() !== "") throw new Error("not a signed note (no final newline)");
        var out = [];
        sigs.forEach(function (line) {
            var m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
            if (!m) throw new Error("not a signed note (signature line)");
            var blob = base64Decode(m[2], B64STD, true);
            if (blob === null || blob.length < 5) throw new Error("not a signed note (signature)");
            out.push({ name: m[1], id: bytesToHex(blob.slice(0, 4)), sig: blob.slice(4) });
        });
        if (!out.length) throw new Error("not a signed note (no signature)");
        var lines = body.split("\n");
        if (lines.length !== 4 || !/^(0|[1-9][0-9]{0,15})$/.test(lines[1]))
            throw new Error("the note's body is not a checkpoint");
        var root = base64Decode(lines[2], B64STD, true);
        if (root === null || root.length !== 32) throw new Error("the checkpoint's root is not 32 bytes");
        return { body: body, origin: lines[0], size: Number(lines[1]), root: root, sigs: out };
    }

    // ---- Ed25519 (RFC 8032 section 5.1.7) ------------------------------------------------------

    /* The browser's own Ed25519 when it has one; otherwise the bundled one below. Only a missing
     * algorithm falls back: a "false" from the browser is the answer. */
    var ed25519Used = null;

    async function ed25519Verify(pub, msg, sig) {
        var key;
        try {
            key = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
        } catch (e) {
            if (e && e.name === "DataError") return false; // not a valid public key
            ed25519Used = "bundled";
            return ed25519VerifyBundled(pub, msg, sig);
        }
        ed25519Used = "browser";
        return crypto.subtle.verify({ name: "Ed25519" }, key, sig, msg);
    }

    /* A compact verifier over BigInt, written from RFC 8032: decode A and R, check S < L, then
     * the cofactorless equation [S]B = R + [k]A compared as encodings (what OpenSSL checks). */
    var P = (1n << 255n) - 19n;
    var L = (1n << 252n) + 27742317777372353535851937790883648493n;

    function mod(a) {
        var r = a % P;
        return r < 0n ? r + P : r;
    }

    function pow(b, e) {
        var r = 1n;
        b = mod(b);
        while (e > 0n) {
            if (e & 1n) r = (r * b) % P;
            b = (b * b) % P;
            e >>= 1n;
        }
        return r;
    }

    function inv(a) {
        return pow(a, P - 2n);
    }

    var D = mod(-121665n * inv(121666n));
    var D2 = mod(2n * D);
    var SQRT_M1 = pow(2n, (P - 1n) / 4n);

    function leToBig(bytes) {
        var n = 0n;
        for (var i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
        return n;
    }

    /* Extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, xy = T/Z. The addition law below is
     * complete for a = -1, so it also doubles. */
    function add(p, q) {
        var a = mod((p[1] - p[0]) * (q[1] - q[0]));
        var b = mod((p[1] + p[0]) * (q[1] + q[0]));
        var c = mod(p[3] * D2 * q[3]);
        var d = mod(p[2] * 2n * q[2]);
        var e = b - a, f = d - c, g = d + c, h = b + a;
        return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
    }

    function mul(s, p) {
        var r = [0n, 1n, 1n, 0n];
        for (; s > 0n; s >>= 1n) {
            if (s & 1n) r = add(r, p);
            p = add(p, p);
        }
        return r;
    }

    function decodePoint(bytes) {
        if (bytes.length !== 32) return null;
        var y = leToBig(bytes) & ((1n << 255n) - 1n);
        var sign = bytes[31] >> 7;
        if (y >= P) return null;
        var u = mod(y * y - 1n), v = mod(D * y * y + 1n);
        var x = mod(u * pow(v, 3n) * pow(u * pow(v, 7n), (P - 5n) / 8n));
        var vx2 = mod(v * x * x);
        if (vx2 === mod(-u)) x = mod(x * SQRT_M1);
        else if (vx2 !== u) return null;
        if (x === 0n && sign === 1) return null;
        if (Number(x & 1n) !== sign) x = P - x;
        return [x, y, 1n, mod(x * y)];
    }

    function encodePoint(p) {
        var zi = inv(p[2]), x = mod(p[0] * zi), y = mod(p[1] * zi);
        var out = new Uint8Array(32);
        for (var i = 0; i < 32; i++) {
            out[i] = Number(y & 0xffn);
            y >>= 8n;
        }
        out[31] |= Number(x & 1n) << 7;
        return out;
    }

    var BASE = decodePoint((function () {
        var y = mod(4n * inv(5n)), b = new Uint8Array(32);
        for (var i = 0; i < 32; i++) {
            b[i] = Number(y & 0xffn);
            y >>= 8n;
        }
        return b;
    })());

    async function ed25519VerifyBundled(pub, msg, sig) {
        if (pub.length !== 32 || sig.length !== 64) return false;
        var A = decodePoint(pub), R = decodePoint(sig.slice(0, 32));
        var S = leToBig(sig.slice(32));
        if (A === null || R === null || S >= L) return false;
        var h = new Uint8Array(await crypto.subtle.digest("SHA-512", concat(sig.slice(0, 32), pub, msg)));
        var k = leToBig(h) % L;
        var negA = [P - A[0], A[1], A[2], P - A[3]];
        return equalBytes(encodePoint(add(mul(S, BASE), mul(k, negA))), sig.slice(0, 32));
    }

    // ---- RFC 9162 section 2.1.3.2 -------------------------------------------------------------

    async function rootFromProof(leafIndex, treeSize, leafHash, hashes) {
        var fn = BigInt(leafIndex), sn = BigInt(treeSize) - 1n, r = leafHash;
        for (var i = 0; i < hashes.length; i++) {
            var p = hexToBytes(hashes[i]);
            if (sn === 0n) return null;
            if ((fn & 1n) === 1n || fn === sn) {
                r = await sha256(concat([1], p, r));
                while ((fn & 1n) === 0n && fn !== 0n) {
                    fn >>= 1n;
                    sn >>= 1n;
                }
            } else {
                r = await sha256(concat([1], r, p));
            }
            fn >>= 1n;
            sn >>= 1n;
        }
        return sn === 0n ? r : null;
    }

    // ---- the whole check ----------------------------------------------------------------------

    var STEPS = ["bundle", "disclosures", "receipt", "key", "checkpoint", "inclusion"];

    /* Runs every step it can; returns {steps: {name: {ok, detail}}, disclosed, failed, key}. */
    async function verifyBundle(b, publishedKeys) {
        var res = { steps: {}, disclosed: [], failed: null, key: null, note: null };
        function set(step, ok, detail) {
            res.steps[step] = { ok: ok, detail: detail };
            if (ok === false && res.failed === null) res.failed = step;
        }
        try {
            checkShape(b);
            set("bundle", true, "the bundle has the documented shape");
        } catch (e) {
            set("bundle", false, e.message);
            return res;
        }
        var p = b.receipt, inc = b.inclusion;
        try {
            res.disclosed = await checkDisclosures(p);
            var bad = res.disclosed.filter(function (d) { return !d.ok; });
            if (bad.length) set("disclosures", false, "disclosure " + bad[0].name + ": " + bad[0].detail);
            else set("disclosures", true, res.disclosed.length + " disclosed, each digest is in the receipt");
        } catch (e) {
            set("disclosures", false, e.message);
        }
        var hash = await sha256(utf8.encode(receiptBody(p)));
        if (bytesToHex(hash) === p.hash) set("receipt", true, "SHA-256 of the canonical body is " + p.hash);
        else set("receipt", false, "hash mismatch: the body hashes to " + bytesToHex(hash) + ", the receipt says " + p.hash);

        var note = null;
        if (b.checkpoint === null) {
            set("key", false, "no signed checkpoint covers this receipt yet");
        } else {
            try {
                note = parseNote(b.checkpoint);
                res.note = note;
            } catch (e) {
                set("key", false, "checkpoint: " + e.message);
            }
        }
        var candidates = [];
        if (note) {
            if (publishedKeys === null) {
                set("key", false, "the published keys (/ledger/keys) could not be read");
            } else {
                note.sigs.forEach(function (s) {
                    publishedKeys.forEach(function (k) {
                        if (k.name === s.name && k.id === s.id) candidates.push({ key: k, sig: s.sig });
                    });
                });
                if (candidates.length) set("key", true, "signed by " + candidates[0].key.name + " (key ID " + candidates[0].key.id + "), published at /ledger/keys");
                else set("key", false, "not signed by any key published at /ledger/keys (signed by " +
                    note.sigs.map(function (s) { return s.name + " " + s.id; }).join(", ") + ")");
            }
        }
        var rootOk = false;
        if (candidates.length) {
            var good = null, msg = utf8.encode(note.body);
            for (var i = 0; i < candidates.length && good === null; i++)
                if (await ed25519Verify(candidates[i].key.pub, msg, candidates[i].sig)) good = candidates[i].key;
            if (good === null) {
                set("checkpoint", false, "signature does not verify with key " + candidates[0].key.text);
            } else if (!note.origin.endsWith("/" + p.org)) {
                set("checkpoint", false, "origin " + note.origin + " does not end in /" + p.org);
            } else if (note.size !== inc.tree_size) {
                set("checkpoint", false, "tree size " + note.size + " but inclusion.tree_size is " + inc.tree_size);
            } else {
                res.key = good;
                rootOk = true;
                set("checkpoint", true, "Ed25519 signature by " + good.name + " verifies (" +
                    (ed25519Used === "browser" ? "browser's WebCrypto" : "bundled implementation") + ")");
            }
        }
        if (inc.leaf_index !== p.seq - 1) {
            set("inclusion", false, "leaf_index " + inc.leaf_index + " is not seq - 1 = " + (p.seq - 1));
        } else if (inc.leaf_index < 0 || inc.leaf_index >= inc.tree_size) {
            set("inclusion", false, "leaf_index " + inc.leaf_index + " is not in a tree of " + inc.tree_size);
        } else if (!rootOk) {
            set("inclusion", null, "skipped: no verified checkpoint root to check against");
        } else {
            var leaf = await sha256(concat([0], hexToBytes(p.hash)));
            var root = await rootFromProof(inc.leaf_index, inc.tree_size, leaf, inc.hashes);
            if (root !== null && equalBytes(root, note.root))
                set("inclusion", true, "leaf " + inc.leaf_index + " is in the signed tree of " + inc.tree_size);
            else set("inclusion", false, "proof does not lead to the checkpoint root");
        }
        return res;
    }

    // ---- the page -----------------------------------------------------------------------------

    var STEP_TITLES = {
        bundle: "Bundle format",
        disclosures: "Disclosed values match their digests",
        receipt: "Receipt hash",
        key: "Checkpoint key is published",
        checkpoint: "Checkpoint signature",
        inclusion: "Receipt is in the signed tree"
    };

    function $(id) {
        return document.getElementById(id);
    }

    function el(tag, text, cls) {
        var e = document.createElement(tag);
        if (text !== undefined && text !== null) e.textContent = text;
        if (cls) e.className = cls;
        return e;
    }

    function showValue(v) {
        return typeof v === "string" ? v : JSON.stringify(v, null, 2);
    }

    function fmtTimes(ts) {
        // Date keeps milliseconds; the UTC line keeps all six digits of the receipt
        var d = new Date(ts.slice(0, 23) + "Z");
        var local = isNaN(d) ? ts : d.toLocaleString(undefined, {
            year: "numeric", month: "long", day: "numeric", hour: "2-digit", minute: "2-digit",
            second: "2-digit", timeZoneName: "short"
        });
        return { utc: ts.replace("T", " ").replace("Z", " UTC"), local: local, iso: ts };
    }

    function renderReceipt(b) {
        var p = b.receipt;
        $("org").textContent = p.org;
        $("kind").textContent = p.kind;
        $("seq").textContent = String(p.seq);
        var t = fmtTimes(p.ts);
        var time = el("time", t.local);
        time.dateTime = t.iso;
        $("time-local").replaceChildren(time);
        $("time-utc").textContent = t.utc;
        $("hash").textContent = p.hash;
        $("prev").textContent = p.prev;
    }

    function renderFields(b, disclosed) {
        var p = b.receipt, shown = {};
        var tbody = $("disclosed-rows");
        tbody.replaceChildren();
        disclosed.forEach(function (d) {
            var tr = el("tr");
            tr.dataset.field = d.name;
            tr.appendChild(el("th", d.name)).scope = "row";
            var td = el("td");
            td.appendChild(el("code", showValue(d.value), "value"));
            if (!d.ok) td.appendChild(el("span", " (" + d.detail + ")", "bad"));
            tr.appendChild(td);
            tbody.appendChild(tr);
            if (d.ok) shown[d.name] = true;
        });
        $("disclosed-empty").hidden = disclosed.length > 0;
        var withheld = $("withheld-rows");
        withheld.replaceChildren();
        var names = Object.keys(p.fields).sort().filter(function (n) { return !shown[n]; });
        names.forEach(function (n) {
            var tr = el("tr");
            tr.dataset.field = n;
            tr.appendChild(el("th", n)).scope = "row";
            var td = el("td");
            td.appendChild(el("code", p.fields[n], "digest"));
            tr.appendChild(td);
            withheld.appendChild(tr);
        });
        $("withheld-empty").hidden = names.length > 0;
    }

    function renderCheckpoint(b, res, keys) {
        var note = res.note;
        $("cp-origin").textContent = note ? note.origin : "—";
        $("cp-size").textContent = note ? String(note.size) : "—";
        $("cp-root").textContent = note ? base64Encode(note.root, B64STD, true) : "—";
        $("cp-key").textContent = note ? note.sigs.map(function (s) { return s.name + " (key ID " + s.id + ")"; }).join(", ") : "—";
        $("cp-published").textContent = res.steps.key && res.steps.key.ok ? "yes, published at /ledger/keys" : "no";
        var list = $("published-keys");
        list.replaceChildren();
        (keys || []).forEach(function (k) {
            list.appendChild(el("li")).appendChild(el("code", k.text));
        });
        var key = res.key || (keys && keys[0]);
        $("offline-command").textContent = "defendable-verify bundle --key '" + (key ? key.text : "<verifier key>") +
            "' receipt-bundle.json";
    }

    function renderSteps(res) {
        var list = $("steps");
        list.replaceChildren();
        STEPS.forEach(function (s) {
            var st = res.steps[s];
            var state = !st ? "skipped" : st.ok === true ? "ok" : st.ok === false ? "failed" : "skipped";
            var li = el("li", null, "step " + state);
            li.dataset.step = s;
            li.dataset.state = state;
            li.appendChild(el("span", state === "ok" ? "✓ passed" : state === "failed" ? "✗ failed" : "– skipped", "mark"));
            li.appendChild(el("strong", " " + STEP_TITLES[s] + ": "));
            li.appendChild(el("span", st ? st.detail : "not reached", "detail"));
            list.appendChild(li);
        });
    }

    function renderStatus(state, step, detail) {
        var box = $("status");
        box.dataset.state = state;
        box.dataset.step = step || "";
        box.className = "status " + state;
        $("status-title").textContent = state === "verified" ? "Verified" : state === "checking" ? "Checking…" : "Not verified";
        $("status-detail").textContent = detail;
    }

    async function fetchKeys() {
        try {
            var r = await fetch("../ledger/keys", {
                headers: { Accept: "application/json" }, credentials: "omit", cache: "no-store"
            });
            if (!r.ok) return null;
            var j = await r.json();
            if (!isObject(j) || !Array.isArray(j.verifier_keys)) return null;
            var out = [];
            for (var i = 0; i < j.verifier_keys.length && i < 16; i++) {
                var k = await parseVerifierKey(j.verifier_keys[i]);
                if (k) out.push(k);
            }
            return out;
        } catch (e) {
            return null;
        }
    }

    /* The served JSON text, exactly: the server escaped <, >, & and U+2028/9 as \u003c ... so that
     * the text cannot end the script element; undo only those (a "\\" pair is kept as it is). */
    function bundleText() {
        return $("bundle").textContent.replace(/\\(\\|u003c|u003e|u0026|u2028|u2029)/g, function (m, e) {
            return e === "\\" ? m : String.fromCharCode(parseInt(e.slice(1), 16));
        });
    }

    async function main() {
        var text = bundleText();
        var download = $("download");
        download.href = URL.createObjectURL(new Blob([text], { type: "application/json" }));
        var b;
        try {
            b = JSON.parse(text);
        } catch (e) {
            renderStatus("failed", "bundle", "The bundle is not JSON.");
            return;
        }
        if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
            renderStatus("failed", "browser", "This browser cannot check the receipt here (it needs HTTPS and WebCrypto). " +
                "Download the bundle and verify it offline.");
            return;
        }
        try {
            var keys = await fetchKeys();
            var res = await verifyBundle(b, keys);
            if (res.steps.bundle.ok) {
                renderReceipt(b);
                renderFields(b, res.disclosed);
            }
            renderCheckpoint(b, res, keys);
            renderSteps(res);
            if (res.failed === null) {
                renderStatus("verified", "", "Every check passed in this browser: the values shown are the ones the organization committed to, and the receipt is in the history signed by " + res.key.name + ".");
            } else {
                renderStatus("failed", res.failed, "Failed at: " + STEP_TITLES[res.failed] + ". " + res.steps[res.failed].detail);
            }
        } catch (e) {
            renderStatus("failed", "bundle", "The check could not run: " + e.message);
        }
    }

    // printing shows the technical details too
    window.addEventListener("beforeprint", function () {
        document.querySelectorAll("details").forEach(function (d) { d.open = true; });
    });

    // exposed for the browser tests (RFC 8032 vectors against the bundled verifier)
    window.dfdShare = Object.freeze({
        ed25519VerifyBundled: async function (pubHex, msgHex, sigHex) {
            return ed25519VerifyBundled(hexToBytes(pubHex), hexToBytes(msgHex), hexToBytes(sigHex));
        },
        ed25519Verify: async function (pubHex, msgHex, sigHex) {
            return ed25519Verify(hexToBytes(pubHex), hexToBytes(msgHex), hexToBytes(sigHex));
        },
        done: main()
    });
})();
