-- Share links: the token is shown once and only its SHA-256 is kept; expiry and revocation
-- work; unknown, expired and revoked tokens fail the same way; the bundle proves inclusion.
\set orgs '''aaaaaaaa-2222-4222-8222-000000000001'''
\set other '''aaaaaaaa-2222-4222-8222-000000000002'''
SET client_min_messages = warning;  -- storage_key is withheld (a NOTICE per receipt)
SELECT count(*) FROM (SELECT defendable.append_receipt(:orgs, 'dataset.download', jsonb_build_object('slug', 'census', 'n', i, 'storage_key', 'k/' || i), '{slug, n, storage_key}') FROM generate_series(1, 20) i) s;
SELECT (defendable.append_receipt(:other, 'org.create', '{}')).seq;
RESET client_min_messages;

SELECT share_id AS s1, token AS t1, expires_at > now() + interval '6 days' AS week FROM defendable.share_create(:orgs, 7) \gset
SELECT :'week' AS default_lifetime_is_a_week, length(:'t1') AS token_length, left(:'t1', 4) AS prefix;
-- only the hash is stored
SELECT token_hash = sha256(convert_to(:'t1', 'UTF8')) AS hash_stored,
       NOT EXISTS (SELECT 1 FROM defendable.shares s WHERE s::text LIKE '%' || :'t1' || '%') AS token_not_stored
FROM defendable.shares WHERE share_id = :'s1';

-- the bundle: projection, proof, and (no checkpoint yet) null
SELECT b -> 'receipt' = defendable.public_projection(:orgs, 7) AS projection,
       b -> 'inclusion' ->> 'leaf_index' AS leaf_index, b -> 'inclusion' ->> 'tree_size' AS tree_size,
       b -> 'checkpoint' AS checkpoint, (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(b) k) AS members,
       defendable.verify_inclusion(decode(b -> 'receipt' ->> 'hash', 'hex'), 7, 20,
           ARRAY(SELECT decode(x, 'hex') FROM jsonb_array_elements_text(b -> 'inclusion' -> 'hashes') x),
           defendable.merkle_root(:orgs, 20)) AS proof_verifies
FROM defendable.share_resolve(:'t1') b;
SELECT b::text !~ 'k/7' AS storage_key_withheld FROM defendable.share_resolve(:'t1') b;
-- accesses are counted beside the link, never by updating the share row (a hot row under load)
SELECT accesses, last_access_at IS NOT NULL AS accessed FROM defendable.share_access(:'s1');
SELECT access_count AS share_row_untouched FROM defendable.shares WHERE share_id = :'s1';
-- the count is the sum over the backends' counter rows
INSERT INTO defendable.share_access_counts (org_id, share_id, shard, accesses, last_access_at)
SELECT :orgs, :'s1', min(s), 5, now() FROM generate_series(0, 15) s
WHERE s NOT IN (SELECT shard FROM defendable.share_access_counts WHERE share_id = :'s1');
SELECT accesses AS summed_over_shards FROM defendable.share_access(:'s1');

-- the gateway resolves without counting and adds its counts once a second (0.9)
SELECT accesses AS before_uncounted FROM defendable.share_access(:'s1') \gset
SELECT defendable.share_resolve_uncounted(:'t1') = defendable.share_resolve(:'t1') AS same_bundle_as_counted;
SELECT accesses - :before_uncounted AS only_the_counted_resolve FROM defendable.share_access(:'s1');
SELECT defendable.share_access_add(ARRAY[:'t1', 'dfs_' || repeat('A', 43), 'short', :'t1'], ARRAY[3, 5, 6, 4]::bigint[]) AS links_counted;
SELECT accesses - :before_uncounted AS one_plus_three_plus_four FROM defendable.share_access(:'s1');
-- bad input: a clear error, nothing added
SELECT accesses AS before_bad FROM defendable.share_access(:'s1') \gset
SELECT defendable.share_access_add(ARRAY[:'t1', :'t1'], ARRAY[1]::bigint[]);
\echo :LAST_ERROR_SQLSTATE
SELECT defendable.share_access_add(ARRAY[:'t1', NULL], ARRAY[1, 1]::bigint[]);
\echo :LAST_ERROR_SQLSTATE
SELECT defendable.share_access_add(ARRAY[:'t1', :'t1'], ARRAY[1, 0]::bigint[]);
\echo :LAST_ERROR_SQLSTATE
SELECT defendable.share_access_add(ARRAY[:'t1'], ARRAY[-7]::bigint[]);
\echo :LAST_ERROR_SQLSTATE
SELECT defendable.share_access_add(ARRAY[[:'t1'], [:'t1']], ARRAY[[1], [1]]::bigint[]);
\echo :LAST_ERROR_SQLSTATE
SELECT defendable.share_access_add(array_fill(:'t1'::text, ARRAY[10001]), array_fill(1::bigint, ARRAY[10001]));
\echo :LAST_ERROR_SQLSTATE
SELECT defendable.share_access_add(ARRAY[]::text[], ARRAY[]::bigint[]) AS nothing_to_add;
SELECT accesses - :before_bad AS added_by_bad_input FROM defendable.share_access(:'s1');

-- revocation: only by the owning org, once
SELECT defendable.share_revoke(:other, :'s1') AS other_org_cannot_revoke;
SELECT defendable.share_revoke(:orgs, :'s1') AS revoked;
SELECT defendable.share_revoke(:orgs, :'s1') AS revoked_again;
-- accesses served before the revocation still count when they arrive
SELECT defendable.share_access_add(ARRAY[:'t1'], ARRAY[2]::bigint[]) AS revoked_link_counted;
-- revoked, expired and unknown: the same SQLSTATE, message and detail
SELECT defendable.share_resolve(:'t1');
\echo :LAST_ERROR_SQLSTATE
-- expired
SELECT token AS t2 FROM defendable.share_create(:orgs, 8, interval '1 millisecond') \gset
SELECT pg_sleep(0.05);
SELECT defendable.share_resolve(:'t2');
\echo :LAST_ERROR_SQLSTATE
-- unknown, right shape and wrong shape
SELECT defendable.share_resolve('dfs_' || repeat('A', 43));
\echo :LAST_ERROR_SQLSTATE
SELECT defendable.share_resolve('nonsense');
\echo :LAST_ERROR_SQLSTATE
-- a fresh link to the same receipt still works
SELECT token AS t3 FROM defendable.share_create(:orgs, 7, interval '1 hour') \gset
SELECT (defendable.share_resolve(:'t3') -> 'receipt' ->> 'seq')::int AS seq;

-- bad input writes nothing
CREATE TEMP TABLE shares_before AS SELECT count(*) AS n FROM defendable.shares;
SELECT defendable.share_create(:orgs, 999);
SELECT defendable.share_create(:orgs, 7, interval '-1 day');
SELECT defendable.share_create(:orgs, 7, interval '400 days');
SELECT defendable.share_create(NULL, 7);
SELECT (SELECT count(*) FROM defendable.shares) - n AS new_shares FROM shares_before;
-- shares cannot be written directly
UPDATE defendable.shares SET expires_at = now() + interval '10 years';

-- the export: one line per receipt in seq order, then one per checkpoint (none here)
SELECT count(*) AS lines, count(*) FILTER (WHERE l::jsonb ->> 'type' = 'receipt') AS receipts,
       bool_and((l::jsonb ->> 'seq')::int = n) AS in_seq_order,
       bool_and(l::jsonb ->> 'hash' = encode(r.hash, 'hex') AND l::jsonb -> 'fields' = r.fields) AS match_receipts,
       bool_and(NOT l::jsonb ? 'disclosures' AND l !~ 'census|k/') AS no_values
FROM (SELECT l, row_number() OVER () AS n FROM defendable.export_org(:orgs) l) e
JOIN defendable.receipts r ON r.org_id = :orgs AND r.seq = e.n;
