-- Erasure and disclosure policies: erasing a value keeps the digest, the chain still verifies,
-- verify_disclosures counts it as erased, and an erasure receipt records what and why.
\set orge '''aaaaaaaa-3333-4333-8333-000000000001'''

-- a policy makes fields public by default; the never-public rule still wins
INSERT INTO defendable.disclosure_policy VALUES ('member.invite', '{role, invited_by, email, note}');
SELECT (defendable.append_receipt(:orge, 'member.invite', '{"role": "member", "invited_by": "u_1", "email": "bob@example.com", "note": "welcome"}')).seq;
SELECT public_fields FROM defendable.disclosures WHERE org_id = :orge AND seq = 1;
-- an explicit list overrides the policy
SELECT (defendable.append_receipt(:orge, 'member.invite', '{"role": "owner", "invited_by": "u_1"}', '{}')).seq;
SELECT public_fields FROM defendable.disclosures WHERE org_id = :orge AND seq = 2;

-- erase the pasted secret in seq 3
SELECT (defendable.append_receipt(:orge, 'incident.note', '{"text": "pasted password hunter2 by mistake", "severity": 2}', '{text, severity}')).seq;
SELECT kind, fields ->> 'field' ~ '^[A-Za-z0-9_-]{43}$' AS field_is_a_digest,
       (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(fields) k) AS committed
FROM defendable.erase_field(:orge, 3, 'text', 'secret pasted into a receipt');
-- the value and salt are gone, the digest stays
SELECT salts ? 'text' AS salt_kept, field_values ? 'text' AS value_kept, public_fields,
       (SELECT fields ? 'text' FROM defendable.receipts WHERE org_id = :orge AND seq = 3) AS digest_kept
FROM defendable.disclosures WHERE org_id = :orge AND seq = 3;
SELECT NOT EXISTS (SELECT 1 FROM defendable.disclosures d WHERE d::text LIKE '%hunter2%') AS value_gone_everywhere,
       NOT EXISTS (SELECT 1 FROM defendable.receipts r WHERE r::text LIKE '%hunter2%') AS never_in_receipts;
-- the erasure receipt names the receipt and the field, keeps the reason private, and never the value
SELECT r.seq, r.kind, d.field_values - 'reason' AS public_part, d.public_fields, d.field_values ->> 'reason' AS reason
FROM defendable.receipts r JOIN defendable.disclosures d USING (org_id, seq) WHERE r.org_id = :orge AND r.seq = 4;
SELECT p -> 'disclosures' IS NOT NULL AS has_disclosures, jsonb_array_length(p -> 'disclosures') AS disclosed, p::text !~ 'hunter2|secret pasted' AS clean
FROM defendable.public_projection(:orge, 4) p;
-- the projection of the erased receipt still verifies its hash and discloses what is left
SELECT jsonb_array_length(p -> 'disclosures') AS disclosed FROM defendable.public_projection(:orge, 3) p;
-- everything still verifies; the erased field is counted as erased
SELECT receipts, ok, detail FROM defendable.verify_ledger(:orge);
SELECT checked, erased, ok, detail FROM defendable.verify_disclosures(:orge);

-- bad input: nothing written
CREATE TEMP TABLE before_erase AS SELECT count(*) AS n FROM defendable.receipts WHERE org_id = :orge;
SELECT defendable.erase_field(:orge, 3, 'text', 'again');
SELECT defendable.erase_field(:orge, 3, 'nope', 'no such field');
SELECT defendable.erase_field(:orge, 99, 'text', 'no such receipt');
SELECT defendable.erase_field(:orge, 3, 'severity', '');
SELECT defendable.erase_field(:orge, 3, 'Bad-Name', 'x');
SELECT defendable.erase_field(:orge, 3, 'severity', NULL);
SELECT (SELECT count(*) FROM defendable.receipts WHERE org_id = :orge) - n AS new_receipts FROM before_erase;
DELETE FROM defendable.disclosure_policy;
