-- Receipt format v1: RFC 8785 through defendable.jcs / jcs_text, the published vectors, and the
-- worked example of docs/receipt-format.md rebuilt here from plain SQL primitives.

-- RFC 8785 test vectors (cyberphone testdata): canonical output byte for byte, through jsonb
\set in `cat extension/core/testdata/vectors/jcs/input/arrays.json`
\set out `cat extension/core/testdata/vectors/jcs/output/arrays.json`
SELECT defendable.jcs(:'in'::jsonb) = :'out' AS arrays_jsonb, defendable.jcs_text(:'in') = :'out' AS arrays_text;
\set in `cat extension/core/testdata/vectors/jcs/input/french.json`
\set out `cat extension/core/testdata/vectors/jcs/output/french.json`
SELECT defendable.jcs(:'in'::jsonb) = :'out' AS french_jsonb, defendable.jcs_text(:'in') = :'out' AS french_text;
\set in `cat extension/core/testdata/vectors/jcs/input/structures.json`
\set out `cat extension/core/testdata/vectors/jcs/output/structures.json`
SELECT defendable.jcs(:'in'::jsonb) = :'out' AS structures_jsonb, defendable.jcs_text(:'in') = :'out' AS structures_text;
\set in `cat extension/core/testdata/vectors/jcs/input/unicode.json`
\set out `cat extension/core/testdata/vectors/jcs/output/unicode.json`
SELECT defendable.jcs(:'in'::jsonb) = :'out' AS unicode_jsonb, defendable.jcs_text(:'in') = :'out' AS unicode_text;
\set in `cat extension/core/testdata/vectors/jcs/input/weird.json`
\set out `cat extension/core/testdata/vectors/jcs/output/weird.json`
SELECT defendable.jcs(:'in'::jsonb) = :'out' AS weird_jsonb, defendable.jcs_text(:'in') = :'out' AS weird_text;
\set in `cat extension/core/testdata/vectors/jcs/input/values.json`
\set out `cat extension/core/testdata/vectors/jcs/output/values.json`
-- values.json has 333333333.33333329, which is not a double: RFC 8785 rounds it when reading
-- JSON text (jcs_text), while receipts (jcs over jsonb) refuse to round
SELECT defendable.jcs_text(:'in') = :'out' AS values_text;
SELECT defendable.jcs(:'in'::jsonb);
SELECT defendable.jcs(jsonb_set(:'in'::jsonb, '{numbers,0}', '333333333.3333333')) = :'out' AS values_jsonb_exact;

-- the number rules of DESIGN section 3
SELECT defendable.jcs('1.50') AS "1.50", defendable.jcs('1e21') AS "1e21",
       defendable.jcs('1.7976931348623157e308') AS "max double", defendable.jcs('-0') AS "-0",
       defendable.jcs('0.0000001') AS "1e-7", defendable.jcs('100000000000000000000') AS "1e20",
       defendable.jcs('[1e-6, -12.340, 9007199254740992]') AS more;
SELECT defendable.jcs('0.1000000000000000000000000001');
SELECT defendable.jcs('9007199254740993');
SELECT defendable.jcs('{"deep": [1, {"x": 1e400}]}');
-- member order is UTF-16 code units, not jsonb's (length, bytes) order
SELECT defendable.jcs('{"bb": 1, "a": 2, "\u20ac": 3, "\ud83d\ude00": 4, "\ufb33": 5}');
-- strings: only " \ and control characters are escaped
SELECT defendable.jcs('"\u0001\b\t\n\f\r\u001f \"\\ / \u007f é"');
-- jcs_text refuses what I-JSON refuses
SELECT defendable.jcs_text('{"a": 1, "a": 2}');
SELECT defendable.jcs_text('"\ud800"');
SELECT defendable.jcs_text('[1,]');

-- the worked example of docs/receipt-format.md, computed with SQL's own sha256 and base64:
-- disclosure = base64url(JCS([salt, name, value])), digest = base64url(SHA-256(disclosure))
CREATE FUNCTION pg_temp.b64url(b bytea) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT rtrim(translate(encode(b, 'base64'), E'+/\n', '-_'), '=') $$;
WITH f(salt, name, value) AS (VALUES ('AAECAwQFBgcICQoLDA0ODw', 'user', '"u_7Kq2"'::jsonb),
                                     ('EBESExQVFhcYGRobHB0eHw', 'method', '"magic_link"'::jsonb)),
     d AS (SELECT name, pg_temp.b64url(convert_to(defendable.jcs(jsonb_build_array(salt, name, value)), 'UTF8')) AS disclosure FROM f)
SELECT name, disclosure, pg_temp.b64url(sha256(convert_to(disclosure, 'UTF8'))) AS digest FROM d ORDER BY name;
-- the body is the JCS of the header and digest map; its SHA-256 is the hash in the document
WITH body AS (SELECT defendable.jcs(jsonb_build_object(
        'v', 1, 'org', '0190a5e2-1c9f-7b3e-8a41-6f2d9c0e7b15', 'seq', 1,
        'ts', '2026-11-22T09:22:44.123456Z', 'kind', 'auth.verify', 'prev', repeat('0', 64),
        'fields', jsonb_build_object('user', 'hZZ_GcqHIZ4nHmNPtwfwV1KvO8zgMDQoXuQtCiPA2g4',
                                     'method', 'RsLY8dajBlTBLX-2AOII8gGC3MzOF_oKzFmaV0nWKsQ'))) AS b)
SELECT octet_length(b) AS body_bytes, encode(sha256(convert_to(b, 'UTF8')), 'hex') AS hash FROM body;
-- and the second example of the document
SELECT defendable.jcs(jsonb_build_array('AAAAAAAAAAAAAAAAAAAAAA', 'amount', 1.50));
