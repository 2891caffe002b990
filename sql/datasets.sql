-- Datasets: the stager stages (re-staging updates), the catalog never shows storage keys, and a
-- download grant needs a member of an org with an active membership, takes the org's daily
-- quota in the same transaction as its dataset.download receipt, and refuses past the quota.
\set SHOW_CONTEXT never
SELECT defendable.dataset_stage('census-2026', 'Census 2026', 'datasets/census 2026/ü.parquet', 73400320, repeat('ab', 32));
SELECT defendable.dataset_stage('census-2026', 'Census 2026 (revised)', 'datasets/census-2026-v2.parquet', 80000000, repeat('cd', 32));
SELECT slug, title, storage_key, size FROM defendable.datasets;
\set VERBOSITY sqlstate
SELECT defendable.dataset_stage('Bad Slug', 't', 'k', 1, repeat('ab', 32));
SELECT defendable.dataset_stage('ok', '', 'k', 1, repeat('ab', 32));
SELECT defendable.dataset_stage('ok', 't', '', 1, repeat('ab', 32));
SELECT defendable.dataset_stage('ok', 't', E'k\n', 1, repeat('ab', 32));
SELECT defendable.dataset_stage('ok', 't', 'a/../b', 1, repeat('ab', 32));
SELECT defendable.dataset_stage('ok', 't', './b', 1, repeat('ab', 32));
SELECT defendable.dataset_stage('ok', 't', repeat('ü', 513), 1, repeat('ab', 32));
SELECT defendable.dataset_stage('ok', 't', 'k', -1, repeat('ab', 32));
SELECT defendable.dataset_stage('ok', 't', 'k', 1, repeat('AB', 32));
SELECT defendable.dataset_stage('ok', 't', 'k', 1, NULL);
\set VERBOSITY default
SELECT count(*) AS datasets FROM defendable.datasets;

INSERT INTO defendable.users (email) VALUES ('ds-owner@x.example'), ('ds-outsider@x.example');
SELECT user_id AS o FROM defendable.users WHERE email = 'ds-owner@x.example' \gset
SELECT user_id AS x FROM defendable.users WHERE email = 'ds-outsider@x.example' \gset
SELECT org_id AS org FROM defendable.org_create(:'o', now(), 'Data Org') \gset
SELECT org_id AS other FROM defendable.org_create(:'x', now(), 'Other Org') \gset
-- the catalog: never the storage key
SELECT slug, title, size, sha256, updated_at <= now() AS updated_in_past FROM defendable.dataset_catalog(:'o', now());
SELECT count(*) AS catalog_mentions_storage FROM defendable.dataset_catalog(:'o', now()) c WHERE c::text LIKE '%parquet%';
-- no active membership: no grant
\set VERBOSITY sqlstate
SELECT defendable.dataset_download_grant(:'o', now(), :'org', 'census-2026', 2);
\set VERBOSITY default
SELECT outcome, org_id = :'org' AS same_org FROM defendable.billing_webhook('evt_ds1', 'checkout.session.completed', :'org', 'cus_ds', 'sub_ds', NULL, NULL);
-- granted twice, then refused by the daily limit of 2 (a security event, no receipt)
SELECT allowed, storage_key, used FROM defendable.dataset_download_grant(:'o', now(), :'org', 'census-2026', 2, '198.51.100.1');
SELECT allowed, used FROM defendable.dataset_download_grant(:'o', now(), :'org', 'census-2026', 2);
SELECT allowed, storage_key IS NULL AS no_key, receipt_seq IS NULL AS no_receipt, used,
       reset_at = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day' AS resets_at_utc_midnight
FROM defendable.dataset_download_grant(:'o', now(), :'org', 'census-2026', 2);
SELECT kind, detail FROM defendable.security_events WHERE kind = 'quota.exceeded' AND org_id = :'org';
-- the receipt: slug, sha256, size public; the storage key committed but never public
SELECT r.kind, d.public_fields, r.fields ? 'storage_key' AS key_committed,
       defendable.public_projection(r.org_id, r.seq)::text !~ 'parquet' AS key_not_public
FROM defendable.receipts r JOIN defendable.disclosures d USING (org_id, seq)
WHERE r.org_id = :'org' AND r.kind = 'dataset.download' ORDER BY r.seq DESC LIMIT 1;
SELECT count(*) AS download_receipts FROM defendable.receipts WHERE org_id = :'org' AND kind = 'dataset.download';
-- another org's member, an unknown dataset, a bad limit
\set VERBOSITY sqlstate
SELECT defendable.dataset_download_grant(:'x', now(), :'org', 'census-2026', 5);
SELECT defendable.dataset_download_grant(:'o', now(), :'org', 'nope', 5);
SELECT defendable.dataset_download_grant(:'o', now(), :'org', 'census-2026', 0);
\set VERBOSITY default
-- the hourly limit per org is taken first and, when it refuses, does not spend the day
SELECT outcome FROM defendable.billing_webhook('evt_ds2', 'checkout.session.completed', :'other', 'cus_ds2', 'sub_ds2', NULL, NULL);
SELECT allowed, used, refused_by FROM defendable.dataset_download_grant(:'x', now(), :'other', 'census-2026', 5, NULL, 1);
SELECT allowed, refused_by FROM defendable.dataset_download_grant(:'x', now(), :'other', 'census-2026', 5, NULL, 1);
SELECT scope, used FROM defendable.quota_counters WHERE subject = :'other' ORDER BY scope;
-- a non-member's attempts spend nothing of the org's allowance
\set VERBOSITY sqlstate
SELECT defendable.dataset_download_grant(:'o', now(), :'other', 'census-2026', 5, NULL, 1);
\set VERBOSITY default
SELECT count(*) AS counters_unchanged FROM defendable.quota_counters WHERE subject = :'other' AND used = 1;
