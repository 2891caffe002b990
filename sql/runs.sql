-- Runs: members queue runs; runners claim the oldest under a lease; only the lease holder
-- reports; an expired lease returns the run to the queue; finishing mints run.complete.
\set SHOW_CONTEXT never
INSERT INTO defendable.users (email) VALUES ('run-a@x.example'), ('run-b@x.example');
SELECT user_id AS a FROM defendable.users WHERE email = 'run-a@x.example' \gset
SELECT user_id AS b FROM defendable.users WHERE email = 'run-b@x.example' \gset
SELECT org_id AS org FROM defendable.org_create(:'a', now(), 'Runs Org') \gset
SELECT run_id AS r1, state FROM defendable.run_create(:'a', now(), :'org', 'restore.drill', '{"backup": "b-1"}') \gset
SELECT :'state' AS queued;
SELECT run_id AS r2 FROM defendable.run_create(:'a', now(), :'org', 'report.build', '{}') \gset
\set VERBOSITY sqlstate
SELECT defendable.run_create(:'b', now(), :'org', 'x.y', '{}');
SELECT defendable.run_create(:'a', now(), :'org', 'Bad Kind', '{}');
SELECT defendable.run_create(:'a', now(), :'org', 'x.y', '[]');
SELECT defendable.run_get(:'b', now(), :'r1');
\set VERBOSITY default
-- the oldest first; the next claim gets the next run; nothing left after that
SELECT run_id = :'r1' AS oldest, kind, input, attempts FROM defendable.runner_claim('runner-1');
SELECT run_id = :'r2' AS next FROM defendable.runner_claim('runner-2');
SELECT count(*) AS nothing_left FROM defendable.runner_claim('runner-3');
-- only the holder reports; heartbeats extend the lease
\set VERBOSITY sqlstate
SELECT defendable.runner_status(:'r1', 'runner-2', 'succeeded');
SELECT defendable.runner_status(:'r1', 'runner-1', 'done');
SELECT defendable.runner_status(:'r1', 'runner-1', 'succeeded', 'not-a-digest');
\set VERBOSITY default
SELECT state FROM defendable.runner_status(:'r1', 'runner-1', 'running');
-- finishing mints run.complete and links it from the run
SELECT state, receipt_seq IS NOT NULL AS receipt FROM defendable.runner_status(:'r1', 'runner-1', 'succeeded', repeat('0f', 32));
SELECT r ->> 'state' AS state, (r ->> 'receipt_seq')::bigint = (SELECT max(seq) FROM defendable.receipts WHERE org_id = :'org' AND kind = 'run.complete') AS linked,
       r ->> 'output_digest' = repeat('0f', 32) AS digest
FROM defendable.run_get(:'a', now(), :'r1') r;
SELECT d.public_fields, d.field_values ->> 'status' AS status FROM defendable.receipts x JOIN defendable.disclosures d USING (org_id, seq)
WHERE x.org_id = :'org' AND x.kind = 'run.complete';
\set VERBOSITY sqlstate
SELECT defendable.runner_status(:'r1', 'runner-1', 'failed');
\set VERBOSITY default
-- an expired lease: the run goes back to the queue and the old runner lost it
UPDATE defendable.runs SET lease_until = now() - interval '1 second' WHERE run_id = :'r2';
SELECT run_id = :'r2' AS reclaimed, attempts FROM defendable.runner_claim('runner-4');
\set VERBOSITY sqlstate
SELECT defendable.runner_status(:'r2', 'runner-2', 'succeeded');
\set VERBOSITY default
SELECT state FROM defendable.runner_status(:'r2', 'runner-4', 'failed', NULL, 'report generator crashed');
SELECT kind, state, attempts FROM defendable.runs WHERE org_id = :'org' ORDER BY created_at;
SELECT receipts, ok FROM defendable.verify_ledger(:'org');
\set VERBOSITY sqlstate
SELECT defendable.runner_claim('bad runner name');
SELECT defendable.runner_claim('r', interval '1 second');
\set VERBOSITY default
-- 0.6: an operator queues a run (no member behind it) and claims exactly that run, even with an
-- older run queued ahead of it
SELECT run_id AS older FROM defendable.run_create(:'a', now(), :'org', 'report.monthly', '{}') \gset
SELECT run_id AS drill, state FROM defendable.run_enqueue(:'org', 'restore.drill', '{"backup": "20261122T000000Z"}') \gset
SELECT state, created_by IS NULL AS by_operator FROM defendable.runs WHERE run_id = :'drill';
SELECT count(*) AS not_that_one FROM defendable.runner_claim('drill-1', interval '5 minutes', gen_random_uuid());
SELECT run_id = :'drill' AS claimed_the_drill, kind, input ->> 'backup' AS backup FROM defendable.runner_claim('drill-1', interval '5 minutes', :'drill');
SELECT count(*) AS not_twice FROM defendable.runner_claim('drill-2', interval '5 minutes', :'drill');
SELECT state FROM defendable.runs WHERE run_id = :'older';
SELECT state FROM defendable.runner_status(:'drill', 'drill-1', 'succeeded', repeat('ab', 32));
SELECT (r ->> 'receipt_seq') IS NOT NULL AS linked FROM defendable.run_get(:'a', now(), :'drill') r;
\set VERBOSITY sqlstate
SELECT defendable.run_enqueue('00000000-0000-4000-8000-000000000000', 'restore.drill', '{}');
SELECT defendable.run_enqueue(:'org', 'Not A Kind', '{}');
SELECT defendable.run_enqueue(:'org', 'restore.drill', '[1]');
\set VERBOSITY default
SELECT count(*) AS runs_after_refusals FROM defendable.runs WHERE org_id = :'org';
