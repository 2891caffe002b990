-- Signed checkpoints: signed outside the database with defendable-verify (the key never enters
-- it), recorded after checking, and verify_checkpoint catches a history rewrite that
-- recomputes every hash, which verify_ledger alone cannot.
\set orgc '''aaaaaaaa-4444-4444-8444-000000000001'''
SELECT count(*) FROM (SELECT defendable.append_receipt(:orgc, 'run.complete', jsonb_build_object('run', i), '{run}') FROM generate_series(1, 40) i) s;
\! rm -f results/checkpoint_test.key results/checkpoint_other.key
\set vkey `gateway/defendable-verify keygen ledger.example.com --out results/checkpoint_test.key`
\set other_vkey `gateway/defendable-verify keygen ledger.example.com --out results/checkpoint_other.key`
SELECT :'vkey' ~ '^ledger\.example\.com\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$' AS verifier_key_format;
-- the database holds no private key: nothing anywhere looks like the signer key
SELECT NOT EXISTS (SELECT 1 FROM defendable.checkpoints c WHERE c::text LIKE '%PRIVATE+KEY%') AS no_private_key;

SELECT defendable.checkpoint_body(:orgc, 'ledger.example.com', 30) AS body30 \gset
SELECT split_part(:'body30', E'\n', 1) AS origin, split_part(:'body30', E'\n', 2) AS size,
       decode(split_part(:'body30', E'\n', 3), 'base64') = defendable.merkle_root(:orgc, 30) AS root;
-- the body goes to the signer through a file (psql passes no newlines to shell commands)
\pset format unaligned
\pset tuples_only on
SELECT rtrim(:'body30', E'\n') \g results/checkpoint_body30
\pset format aligned
\pset tuples_only off
\set note30 `gateway/defendable-verify sign --key results/checkpoint_test.key < results/checkpoint_body30`
-- (psql drops the final newline of a backquoted command; record_checkpoint puts it back)
SELECT org_id, tree_size, key_name, length(key_id) AS key_id_len, root = defendable.merkle_root(:orgc, 30) AS root
FROM defendable.record_checkpoint(:'note30', :'vkey');
-- recording the same checkpoint again is harmless
SELECT tree_size FROM defendable.record_checkpoint(:'note30', :'vkey');
SELECT count(*) FROM defendable.checkpoints WHERE org_id = :orgc;

-- more receipts: the tree grows and stays consistent with what was signed
SELECT count(*) FROM (SELECT defendable.append_receipt(:orgc, 'run.complete', jsonb_build_object('run', i)) FROM generate_series(41, 50) i) s;
SELECT ok, tree_size, current_size, detail FROM defendable.verify_checkpoint(:'note30', :'vkey');
-- a bundle now carries that checkpoint and a proof to its root
SELECT rtrim(b ->> 'checkpoint', E'\n') = :'note30' AS checkpoint, (b -> 'inclusion' ->> 'tree_size')::int AS tree_size
FROM defendable.receipt_bundle(:orgc, 12) b;
-- a receipt after the checkpoint gets a proof to the current tree and no checkpoint yet
SELECT b -> 'checkpoint' AS checkpoint, (b -> 'inclusion' ->> 'tree_size')::int AS tree_size
FROM defendable.receipt_bundle(:orgc, 45) b;

-- refused: wrong key, altered note, root that is not the ledger's, size beyond the ledger
SELECT defendable.record_checkpoint(:'note30', :'other_vkey');
SELECT ok, detail FROM defendable.verify_checkpoint(:'note30', :'other_vkey');
SELECT defendable.record_checkpoint(replace(:'note30', E'\n30\n', E'\n31\n'), :'vkey');
SELECT defendable.record_checkpoint('not a note', :'vkey');
SELECT defendable.record_checkpoint(:'note30', 'not a key');
SELECT defendable.checkpoint_body(:orgc, 'bad origin');
SELECT defendable.checkpoint_body(:orgc, 'ledger.example.com', 51);

-- the attack: a superuser rewrites receipt 5 and recomputes every hash, node and the head.
-- verify_ledger is satisfied; the checkpoint signed before is not.
BEGIN;
SET session_replication_role = replica;
CREATE TEMP TABLE rewritten AS SELECT * FROM defendable.receipts WHERE org_id = :orgc ORDER BY seq;
UPDATE rewritten SET kind = 'run.failed' WHERE seq = 5;
DO $$
DECLARE r record; prev bytea := decode(repeat('00', 32), 'hex'); h bytea;
BEGIN
    FOR r IN SELECT * FROM rewritten ORDER BY seq LOOP
        h := sha256(convert_to(defendable.jcs(jsonb_build_object('v', 1, 'org', r.org_id, 'seq', r.seq,
                 'ts', to_char(r.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'kind', r.kind,
                 'prev', encode(prev, 'hex'), 'fields', r.fields)), 'UTF8'));
        UPDATE defendable.receipts SET kind = r.kind, prev = prev_of.p, hash = h
            FROM (SELECT prev AS p) prev_of WHERE org_id = r.org_id AND seq = r.seq;
        prev := h;
    END LOOP;
    UPDATE defendable.heads SET hash = prev WHERE org_id = 'aaaaaaaa-4444-4444-8444-000000000001';
END $$;
RESET session_replication_role;
SELECT defendable.merkle_rebuild(:orgc) > 0 AS nodes_recomputed;
SELECT receipts, ok, detail FROM defendable.verify_ledger(:orgc);
SELECT ok, tree_size, current_size, detail FROM defendable.verify_checkpoint(:'note30', :'vkey');
ROLLBACK;
-- a truncated tail (head moved too) is caught the same way
BEGIN;
SET session_replication_role = replica;
DELETE FROM defendable.receipts WHERE org_id = :orgc AND seq > 20;
UPDATE defendable.heads h SET seq = 20, hash = r.hash FROM defendable.receipts r WHERE r.org_id = h.org_id AND r.seq = 20 AND h.org_id = :orgc;
RESET session_replication_role;
SELECT receipts, ok FROM defendable.verify_ledger(:orgc);
SELECT ok, tree_size, current_size, detail FROM defendable.verify_checkpoint(:'note30', :'vkey');
ROLLBACK;
SELECT ok, detail FROM defendable.verify_checkpoint(:'note30', :'vkey');
