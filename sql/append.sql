-- Appending: seq is gapless per org from 1, prev links the previous hash, ts never goes back,
-- the hash is SHA-256 of receipt_body(), fields are salted digests, values live apart.
CREATE FUNCTION pg_temp.b64url(b bytea) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT rtrim(translate(encode(b, 'base64'), E'+/\n', '-_'), '=') $$;
CREATE FUNCTION pg_temp.unb64url(t text) RETURNS bytea LANGUAGE sql IMMUTABLE
    AS $$ SELECT decode(translate(t, '-_', '+/') || repeat('=', (4 - length(t) % 4) % 4), 'base64') $$;

\set org1 '''11111111-1111-4111-8111-111111111111'''
\set org2 '''22222222-2222-4222-8222-222222222222'''

-- the function returns the stored row
SELECT org_id, seq, kind, length(prev) AS prev_len, prev = '\x'::bytea || decode(repeat('00', 32), 'hex') AS prev_is_zero,
       length(hash) AS hash_len, (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(fields) k) AS field_names
FROM defendable.append_receipt(:org1, 'auth.verify', '{"user": "u_1", "method": "magic_link"}', '{method}');

SELECT (defendable.append_receipt(:org1, 'apikey.create', '{"key_id": "k_1", "api_key": "dfd_x_secret"}', '{key_id, api_key}')).seq;
SELECT (defendable.append_receipt(:org2, 'org.create', '{"name": "Acme"}')).seq AS other_org_starts_at_1;
SELECT (defendable.append_receipt(:org1, 'run.complete', '{}')).seq AS no_fields;
-- many receipts in one transaction: one chain, no gaps
BEGIN;
SELECT count(*) FROM (SELECT defendable.append_receipt(:org1, 'dataset.download', jsonb_build_object('n', i)) FROM generate_series(1, 200) i) s;
COMMIT;

-- gapless seq from 1 and prev = previous hash, for each org
SELECT org_id, count(*) AS receipts, min(seq), max(seq),
       bool_and(seq = rn) AS gapless,
       bool_and(prev = coalesce(prev_hash, decode(repeat('00', 32), 'hex'))) AS linked,
       bool_and(ts >= coalesce(prev_ts, ts)) AS ts_monotonic
FROM (SELECT r.*, row_number() OVER w AS rn, lag(hash) OVER w AS prev_hash, lag(ts) OVER w AS prev_ts
      FROM defendable.receipts r WINDOW w AS (PARTITION BY org_id ORDER BY seq)) s
GROUP BY org_id ORDER BY org_id;

-- the head is written at commit: it equals the last receipt
SELECT h.org_id, h.seq, h.hash = r.hash AS head_is_last
FROM defendable.heads h JOIN defendable.receipts r ON r.org_id = h.org_id AND r.seq = h.seq ORDER BY 1;

-- hash = SHA-256(receipt_body), and the body is canonical JSON of the documented members
SELECT bool_and(hash = sha256(convert_to(defendable.receipt_body(org_id, seq), 'UTF8'))) AS hash_is_sha256_of_body,
       bool_and(defendable.jcs_text(defendable.receipt_body(org_id, seq)) = defendable.receipt_body(org_id, seq)) AS body_is_canonical
FROM defendable.receipts;
SELECT (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(defendable.receipt_body(:org1, 1)::jsonb) k) AS body_members,
       defendable.receipt_body(:org1, 1)::jsonb ->> 'ts' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$' AS ts_format,
       defendable.receipt_body(:org1, 1)::jsonb ->> 'org' = :org1 AS org_text,
       defendable.receipt_body(:org1, 2)::jsonb ->> 'prev' = encode(hash, 'hex') AS prev_hex
FROM defendable.receipts WHERE org_id = :org1 AND seq = 1;

-- each digest is base64url(SHA-256(base64url(JCS([salt, name, value])))) of the kept salt and value
SELECT count(*) AS digests_checked,
       bool_and(r.fields ->> f.name = pg_temp.b64url(sha256(convert_to(
           pg_temp.b64url(convert_to(defendable.jcs(jsonb_build_array(d.salts ->> f.name, f.name, d.field_values -> f.name)), 'UTF8')), 'UTF8')))) AS all_match,
       bool_and(length(d.salts ->> f.name) = 22 AND length(r.fields ->> f.name) = 43) AS lengths
FROM defendable.receipts r JOIN defendable.disclosures d USING (org_id, seq)
CROSS JOIN LATERAL jsonb_object_keys(r.fields) AS f(name);
-- salts are fresh for every field
SELECT count(*) = count(DISTINCT s) AS salts_unique
FROM defendable.disclosures d, LATERAL jsonb_each_text(d.salts) AS e(k, s);
-- the same fields appended twice commit to different digests
SELECT (SELECT fields FROM defendable.append_receipt(:org2, 'x.y', '{"a": 1}')) <>
       (SELECT fields FROM defendable.append_receipt(:org2, 'x.y', '{"a": 1}')) AS digests_differ;

-- public projection: exact members, whole digest map, disclosures of public fields only
SELECT (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(p) k) AS members,
       p -> 'v' AS v, p ->> 'hash' = (SELECT encode(hash, 'hex') FROM defendable.receipts WHERE org_id = :org1 AND seq = 1) AS hash_ok,
       jsonb_array_length(p -> 'disclosures') AS disclosed,
       convert_from(pg_temp.unb64url(p -> 'disclosures' ->> 0), 'UTF8')::jsonb -> 1 AS disclosed_name,
       convert_from(pg_temp.unb64url(p -> 'disclosures' ->> 0), 'UTF8')::jsonb -> 2 AS disclosed_value
FROM defendable.public_projection(:org1, 1) p;

-- never public, whatever the caller asks: secret-shaped names and email-shaped values
SELECT (defendable.append_receipt(:org1, 'member.invite',
        '{"email": "bob@example.com", "invited_by": "alice", "note": "ask carol@example.org", "role": "member",
          "session_token": "t", "client_ip": "10.0.0.1", "db_password": "p", "object_key": "o", "tags": ["x", {"y": "z@q.io"}]}',
        '{email, invited_by, note, role, session_token, client_ip, db_password, object_key, tags}')).seq AS seq;
SELECT public_fields FROM defendable.disclosures WHERE org_id = :org1 AND seq = 204;
SELECT array_agg(convert_from(pg_temp.unb64url(d), 'UTF8')::jsonb ->> 1 ORDER BY 1) AS disclosed
FROM defendable.public_projection(:org1, 204) p, jsonb_array_elements_text(p -> 'disclosures') d;
SELECT jsonb_object_keys(fields) AS committed FROM defendable.receipts WHERE org_id = :org1 AND seq = 204 ORDER BY 1;
-- api_key was asked for but withheld; key_id disclosed
SELECT convert_from(pg_temp.unb64url(d), 'UTF8')::jsonb ->> 1 AS disclosed
FROM defendable.public_projection(:org1, 2) p, jsonb_array_elements_text(p -> 'disclosures') d;
-- nothing secret appears anywhere in a projection
SELECT bool_and(p::text !~ '(bob|carol)@|dfd_x_secret|10\.0\.0\.1') AS no_secret_in_projections
FROM defendable.receipts r, LATERAL defendable.public_projection(r.org_id, r.seq) p;

-- a receipt that does not exist is an error, not an empty result
SELECT defendable.public_projection(:org1, 9999);
SELECT defendable.receipt_body(:org2, 0);

-- salts are taken from blocks of 32 (append.c): 150 of them, over five blocks, all different,
-- and each still the one its digest was made with
\set org_salts '''5a175a17-0000-4000-8000-000000000001'''
SELECT count(*) AS appended FROM (SELECT defendable.append_receipt(:org_salts, 'salt.block',
    jsonb_build_object('a', i, 'b', i, 'c', i)) FROM generate_series(1, 50) i) s;
SELECT count(*) AS salts, count(DISTINCT s) AS distinct_salts
FROM defendable.disclosures d, LATERAL jsonb_each_text(d.salts) AS e(k, s) WHERE d.org_id = :org_salts;
SELECT bool_and(r.fields ->> f.name = pg_temp.b64url(sha256(convert_to(
           pg_temp.b64url(convert_to(defendable.jcs(jsonb_build_array(d.salts ->> f.name, f.name, d.field_values -> f.name)), 'UTF8')), 'UTF8')))) AS digests_match
FROM defendable.receipts r JOIN defendable.disclosures d USING (org_id, seq)
CROSS JOIN LATERAL jsonb_object_keys(r.fields) AS f(name) WHERE r.org_id = :org_salts;
