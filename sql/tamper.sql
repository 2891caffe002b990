-- Tampering as a superuser who bypasses the triggers (session_replication_role = replica):
-- every change is reported by verify_ledger at the exact seq. Each case runs in a transaction
-- that is rolled back, so the next case starts from the intact ledger.
\set orgt '''66666666-6666-4666-8666-666666666666'''
SELECT count(*) FROM (SELECT defendable.append_receipt(:orgt, 'run.complete', jsonb_build_object('run', i, 'status', 'ok'), '{run}') FROM generate_series(1, 20) i) s;
SELECT receipts, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt);
SET session_replication_role = replica;

-- one row per immutable column
BEGIN; UPDATE defendable.receipts SET kind = 'run.failed' WHERE org_id = :orgt AND seq = 7;
SELECT 'kind' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
BEGIN; UPDATE defendable.receipts SET ts = ts + interval '1 microsecond' WHERE org_id = :orgt AND seq = 8;
SELECT 'ts' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
BEGIN; UPDATE defendable.receipts SET fields = jsonb_set(fields, '{status}', to_jsonb(reverse(fields ->> 'status'))) WHERE org_id = :orgt AND seq = 9;
SELECT 'digest' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
BEGIN; UPDATE defendable.receipts SET fields = fields - 'status' WHERE org_id = :orgt AND seq = 10;
SELECT 'field removed' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
BEGIN; UPDATE defendable.receipts SET fields = fields || '{"extra": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}' WHERE org_id = :orgt AND seq = 11;
SELECT 'field added' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
BEGIN; UPDATE defendable.receipts SET prev = set_byte(prev, 0, get_byte(prev, 0) # 1) WHERE org_id = :orgt AND seq = 12;
SELECT 'prev' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
BEGIN; UPDATE defendable.receipts SET hash = set_byte(hash, 31, get_byte(hash, 31) # 128) WHERE org_id = :orgt AND seq = 13;
SELECT 'hash' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
BEGIN; UPDATE defendable.receipts SET hash = substring(hash from 1 for 31) WHERE org_id = :orgt AND seq = 14;
SELECT 'short hash' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
BEGIN; UPDATE defendable.receipts SET fields = '[]' WHERE org_id = :orgt AND seq = 15;
SELECT 'fields not an object' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
-- the digest map is read in place (body.c): every value must be a 43-character string, and the
-- names are the ones hashed
BEGIN; UPDATE defendable.receipts SET fields = jsonb_set(fields, '{status}', '12345') WHERE org_id = :orgt AND seq = 16;
SELECT 'digest a number' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
BEGIN; UPDATE defendable.receipts SET fields = jsonb_set(fields, '{status}', jsonb_build_object('d', fields -> 'status')) WHERE org_id = :orgt AND seq = 16;
SELECT 'digest an object' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
BEGIN; UPDATE defendable.receipts SET fields = jsonb_set(fields, '{status}', to_jsonb(left(fields ->> 'status', 42))) WHERE org_id = :orgt AND seq = 16;
SELECT 'digest one short' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
BEGIN; UPDATE defendable.receipts SET fields = (fields - 'status') || jsonb_build_object('state', fields -> 'status') WHERE org_id = :orgt AND seq = 16;
SELECT 'field renamed' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
BEGIN; UPDATE defendable.receipts SET seq = 100 WHERE org_id = :orgt AND seq = 5;
SELECT 'seq renumbered' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
BEGIN; UPDATE defendable.receipts SET org_id = '77777777-7777-4777-8777-777777777777' WHERE org_id = :orgt AND seq = 6;
SELECT 'org moved' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
-- the first receipt: its prev must be zeros
BEGIN; UPDATE defendable.receipts SET prev = '\x01' || substring(prev from 2) WHERE org_id = :orgt AND seq = 1;
SELECT 'first prev' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;

-- a deleted row in the middle
BEGIN; DELETE FROM defendable.receipts WHERE org_id = :orgt AND seq = 4;
SELECT 'deleted seq 4' AS changed, receipts, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
-- swapped rows: seq 2 and 3 exchange places
BEGIN;
UPDATE defendable.receipts SET seq = -2 WHERE org_id = :orgt AND seq = 2;
UPDATE defendable.receipts SET seq = 2 WHERE org_id = :orgt AND seq = 3;
UPDATE defendable.receipts SET seq = 3 WHERE org_id = :orgt AND seq = -2;
SELECT 'swapped 2 and 3' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
-- a truncated tail: the last three receipts gone, the head still says 20
BEGIN; DELETE FROM defendable.receipts WHERE org_id = :orgt AND seq > 17;
SELECT 'truncated tail' AS changed, receipts, head_seq, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
-- a row inserted after the last one with a wrong hash fails at its own seq
BEGIN;
INSERT INTO defendable.receipts SELECT org_id, 21, ts, kind, hash, fields, hash FROM defendable.receipts WHERE org_id = :orgt AND seq = 20;
SELECT 'inserted seq 21' AS changed, receipts, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
-- a perfectly forged row 21 (right prev, right hash, computed here from the documented body)
-- still lies beyond the stored head
BEGIN;
INSERT INTO defendable.receipts
SELECT org_id, 21, ts, 'run.forged', hash, '{}',
       sha256(convert_to(defendable.jcs(jsonb_build_object('v', 1, 'org', org_id, 'seq', 21,
           'ts', to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'kind', 'run.forged',
           'prev', encode(hash, 'hex'), 'fields', '{}'::jsonb)), 'UTF8'))
FROM defendable.receipts WHERE org_id = :orgt AND seq = 20;
SELECT 'forged seq 21' AS changed, receipts, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
-- a duplicate seq (possible only once the primary key is gone)
BEGIN;
ALTER TABLE defendable.receipts DROP CONSTRAINT receipts_pkey;
CREATE INDEX receipts_pkey ON defendable.receipts (org_id, seq);
INSERT INTO defendable.receipts SELECT * FROM defendable.receipts WHERE org_id = :orgt AND seq = 9;
SELECT 'duplicate seq 9' AS changed, receipts, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
-- the head itself altered
BEGIN; UPDATE defendable.heads SET hash = set_byte(hash, 0, get_byte(hash, 0) # 1) WHERE org_id = :orgt;
SELECT 'head hash' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
BEGIN; DELETE FROM defendable.heads WHERE org_id = :orgt;
SELECT 'head deleted' AS changed, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt); ROLLBACK;
-- every org is checked by the no-argument form, and only the tampered one fails
BEGIN; UPDATE defendable.receipts SET kind = 'run.failed' WHERE org_id = :orgt AND seq = 3;
SELECT count(*) FILTER (WHERE NOT ok) AS failing, min(first_bad_seq) AS at_seq,
       bool_and(ok OR org_id = :orgt) AS only_tampered_org_fails FROM defendable.verify_ledger(); ROLLBACK;

-- disclosures: a changed value or salt no longer matches its digest
BEGIN; UPDATE defendable.disclosures SET field_values = jsonb_set(field_values, '{run}', '999') WHERE org_id = :orgt AND seq = 5;
SELECT 'value' AS changed, ok, first_bad_seq, detail FROM defendable.verify_disclosures(:orgt); ROLLBACK;
BEGIN; UPDATE defendable.disclosures SET salts = jsonb_set(salts, '{status}', '"AAAAAAAAAAAAAAAAAAAAAA"') WHERE org_id = :orgt AND seq = 6;
SELECT 'salt' AS changed, ok, first_bad_seq, detail FROM defendable.verify_disclosures(:orgt); ROLLBACK;
BEGIN; UPDATE defendable.disclosures SET salts = salts || '{"ghost": "AAAAAAAAAAAAAAAAAAAAAA"}' WHERE org_id = :orgt AND seq = 7;
SELECT 'unknown field' AS changed, ok, first_bad_seq, detail FROM defendable.verify_disclosures(:orgt); ROLLBACK;
-- a projection of a tampered receipt is refused rather than handed out
BEGIN; UPDATE defendable.receipts SET kind = 'run.failed' WHERE org_id = :orgt AND seq = 2;
SELECT defendable.public_projection(:orgt, 2); ROLLBACK;
-- appending onto a ledger whose head and tail disagree is refused
BEGIN; DELETE FROM defendable.receipts WHERE org_id = :orgt AND seq = 20;
SELECT defendable.append_receipt(:orgt, 'run.complete', '{}'); ROLLBACK;

RESET session_replication_role;
SELECT receipts, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgt);
SELECT checked, erased, ok FROM defendable.verify_disclosures(:orgt);
