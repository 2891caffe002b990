-- The functions behind the gateway's receipt, share and ledger routes (0.4): each checks its
-- caller (other organizations do not exist; bad pages are refused), API-key receipts are
-- authenticated in SQL, shares leave receipts, and the outbox is claimed once.
\set SHOW_CONTEXT never
INSERT INTO defendable.users (email) VALUES ('gw-a@x.example'), ('gw-b@x.example');
SELECT user_id AS a FROM defendable.users WHERE email = 'gw-a@x.example' \gset
SELECT user_id AS b FROM defendable.users WHERE email = 'gw-b@x.example' \gset
SELECT org_id AS org FROM defendable.org_create(:'a', now(), 'GW Org') \gset
SELECT org_id AS org_b FROM defendable.org_create(:'b', now(), 'GW Org B') \gset
SELECT key AS k FROM defendable.apikey_create(:'a', now(), :'org', 'ci') \gset

-- receipts through an API key: the key decides the organization
SELECT ok, org_id = :'org' AS org, seq, length(hash) AS hash_len
FROM defendable.receipt_create_by_key(:'k', 'run.complete', '{"run": "r-1", "status": "passed"}', '{run,status}');
SELECT count(*) FROM (SELECT defendable.receipt_create_by_key(:'k', 'run.complete', jsonb_build_object('run', 'r-' || i)) FROM generate_series(2, 9) i) s;
SELECT ok, org_id, seq FROM defendable.receipt_create_by_key('dfd_000000000000_' || repeat('x', 43), 'run.complete', '{}');
SELECT defendable.receipt_create_by_key(:'k', 'Bad Kind', '{}');

-- pages: cursor after a seq, limit 1..200
SELECT array_agg(seq ORDER BY seq) FROM defendable.receipts_list(:'a', now(), :'org', 0, 5);
SELECT array_agg(seq ORDER BY seq) FROM defendable.receipts_list(:'a', now(), :'org', 5, 5);
SELECT count(*) FROM defendable.receipts_list(:'a', now(), :'org', 11, 5);
\set VERBOSITY sqlstate
SELECT defendable.receipts_list(:'a', now(), :'org', 0, 0);
SELECT defendable.receipts_list(:'a', now(), :'org', 0, 201);
SELECT defendable.receipts_list(:'a', now(), :'org', -1, 5);
-- another organization does not exist for b
SELECT defendable.receipts_list(:'b', now(), :'org');
SELECT defendable.receipt_get(:'b', now(), :'org', 3);
SELECT defendable.ledger_verify_as(:'b', now(), :'org');
SELECT defendable.ledger_proof_as(:'b', now(), :'org', 3);
SELECT defendable.ledger_checkpoint_as(:'b', now(), :'org');
SELECT defendable.share_create_as(:'b', now(), :'org', 3);
SELECT defendable.receipt_get(:'a', now(), :'org', 999);
\set VERBOSITY default

-- a member's view of one receipt: the projection, the kept values, what is public
SELECT r -> 'receipt' ->> 'kind' AS kind, r -> 'values' AS kept_values, r -> 'public_fields' AS public_fields
FROM defendable.receipt_get(:'a', now(), :'org', (SELECT min(seq) FROM defendable.receipts WHERE org_id = :'org' AND kind = 'run.complete')) r;

-- shares through the member functions leave receipts; revoking another org's share is "not found"
SELECT share_id AS s, token AS t FROM defendable.share_create_as(:'a', now(), :'org', 3, interval '1 hour') \gset
SELECT kind, d.public_fields FROM defendable.receipts r JOIN defendable.disclosures d USING (org_id, seq)
WHERE r.org_id = :'org' ORDER BY r.seq DESC LIMIT 1;
\set VERBOSITY sqlstate
SELECT defendable.share_revoke_as(:'b', now(), :'s');
SELECT defendable.share_create_as(:'a', now(), :'org', 3, interval '400 days');
\set VERBOSITY default
SELECT defendable.share_revoke_as(:'a', now(), :'s');
SELECT defendable.share_revoke_as(:'a', now(), :'s');
SELECT (SELECT kind FROM defendable.receipts WHERE org_id = :'org' ORDER BY seq DESC LIMIT 1) AS last_kind;

-- ledger: verification and proofs for members; checkpoints due until one is recorded
SELECT receipts, ok FROM defendable.ledger_verify_as(:'a', now(), :'org');
SELECT (defendable.ledger_proof_as(:'a', now(), :'org', 3) -> 'inclusion' ->> 'leaf_index') AS leaf_index;
SELECT tree_size, current_size = (SELECT max(seq) FROM defendable.receipts WHERE org_id = :'org') AS current, note
FROM defendable.ledger_checkpoint_as(:'a', now(), :'org');
SELECT count(*) > 0 AS org_is_due FROM defendable.checkpoints_due() WHERE org_id = :'org';

-- the outbox: a message is claimed once (SKIP LOCKED), and marking it sent wipes its link
SELECT defendable.auth_request('outbox@x.example');
BEGIN;
SELECT count(*) AS claimed, bool_and(secret IS NOT NULL) AS with_link FROM defendable.outbox_claim(100) WHERE to_email = 'outbox@x.example';
SELECT defendable.outbox_mark_sent(message_id) FROM defendable.email_outbox WHERE to_email = 'outbox@x.example';
COMMIT;
SELECT sent_at IS NOT NULL AS sent, secret IS NULL AS link_wiped, attempts FROM defendable.email_outbox WHERE to_email = 'outbox@x.example';
SELECT count(*) AS claimed_again FROM defendable.outbox_claim(100) WHERE to_email = 'outbox@x.example';
