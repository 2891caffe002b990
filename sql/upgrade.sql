-- Upgrade: a ledger written by version 0.1 is updated to 0.2 in place. Its Merkle tree is built
-- by the update, proofs work, and the extension's objects are exactly those of a fresh install.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_dfd_fresh;
DROP DATABASE IF EXISTS regress_dfd_upgrade;
CREATE DATABASE regress_dfd_fresh;
CREATE DATABASE regress_dfd_upgrade;
RESET client_min_messages;

-- the extension's objects, as one sorted description; compared between the two databases
\c regress_dfd_fresh
CREATE EXTENSION defendable;
\i sql/include/ext_objects.sql
SELECT extversion FROM pg_extension WHERE extname = 'defendable';
SELECT md5(objects) AS fresh FROM ext_objects \gset

\c regress_dfd_upgrade
CREATE EXTENSION defendable VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'defendable';
SELECT count(*) FROM (SELECT defendable.append_receipt('bbbbbbbb-1111-4111-8111-000000000001', 'run.complete', jsonb_build_object('run', i), '{run}') FROM generate_series(1, 37) i) s;
SELECT (defendable.append_receipt('bbbbbbbb-1111-4111-8111-000000000002', 'org.create', '{"name": "Globex"}')).seq;
CREATE TEMP TABLE before AS SELECT org_id, seq, hash FROM defendable.receipts;
ALTER EXTENSION defendable UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'defendable';
-- the receipts are untouched, verify, and now have a tree
SELECT count(*) AS receipts, bool_and(r.hash = b.hash) AS unchanged FROM defendable.receipts r JOIN before b USING (org_id, seq);
SELECT org_id, receipts, ok FROM defendable.verify_ledger() ORDER BY 1;
SELECT level, count(*) FROM defendable.merkle_nodes GROUP BY level ORDER BY level;
SELECT defendable.verify_inclusion(hash, seq, 37, defendable.inclusion_proof(org_id, seq, 37), defendable.merkle_root(org_id, 37)) AS proof_after_upgrade
FROM defendable.receipts WHERE org_id = 'bbbbbbbb-1111-4111-8111-000000000001' AND seq = 17;
-- appends after the upgrade extend the same tree
SELECT count(*) FROM (SELECT defendable.append_receipt('bbbbbbbb-1111-4111-8111-000000000001', 'run.complete', '{}') FROM generate_series(1, 30) i) s;
SELECT defendable.verify_consistency(37, 67, defendable.merkle_root(org_id, 37), defendable.merkle_root(org_id, 67),
       defendable.consistency_proof(org_id, 37, 67)) AS consistent
FROM (SELECT 'bbbbbbbb-1111-4111-8111-000000000001'::uuid AS org_id) o;
-- the same objects as a fresh install
\i sql/include/ext_objects.sql
SELECT md5(objects) = :'fresh' AS same_objects_as_fresh_install FROM ext_objects;
\c contrib_regression
DROP DATABASE regress_dfd_fresh;
DROP DATABASE regress_dfd_upgrade;

-- 0.7 -> 0.8: keys led by org_id. Share links, their access counts, API keys, invites and runs
-- written by 0.7 keep working, and the counts move to the link's org.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_dfd_upgrade07;
CREATE DATABASE regress_dfd_upgrade07;
RESET client_min_messages;
\c regress_dfd_upgrade07
CREATE EXTENSION defendable VERSION '0.7';
SELECT count(*) FROM (SELECT defendable.append_receipt('bbbbbbbb-1111-4111-8111-000000000003', 'run.complete', jsonb_build_object('run', i), '{run}') FROM generate_series(1, 5) i) s;
SELECT share_id AS s07, token AS t07 FROM defendable.share_create('bbbbbbbb-1111-4111-8111-000000000003', 3) \gset
SELECT count(*) FROM (SELECT defendable.share_resolve(:'t07') FROM generate_series(1, 3)) r;
SELECT accesses AS before_update FROM defendable.share_access(:'s07');
ALTER EXTENSION defendable UPDATE TO '0.8';
SELECT accesses AS after_update FROM defendable.share_access(:'s07');
SELECT org_id, sum(accesses) FROM defendable.share_access_counts GROUP BY 1;
SELECT (defendable.share_resolve(:'t07') -> 'receipt' ->> 'seq') AS resolves_after_update;
SELECT accesses AS counted_after_update FROM defendable.share_access(:'s07');
SELECT org_id, ok FROM defendable.verify_ledger();
-- 0.8 -> 0.9: the counts stay; links resolve uncounted and take counts in batches
ALTER EXTENSION defendable UPDATE TO '0.9';
SELECT accesses AS after_update_09 FROM defendable.share_access(:'s07');
SELECT (defendable.share_resolve_uncounted(:'t07') -> 'receipt' ->> 'seq') AS resolves_uncounted;
SELECT defendable.share_access_add(ARRAY[:'t07'], ARRAY[10]::bigint[]) AS links_counted;
SELECT accesses AS batch_added FROM defendable.share_access(:'s07');
\c contrib_regression
DROP DATABASE regress_dfd_upgrade07;
