/* defendable 0.6 -> 0.7: share link accesses counted without a hot row. Counting every resolve
   with an UPDATE of the share's own row made concurrent resolves of one link queue on that row's
   lock (pgbench on one link: share_resolve 1,474 tps against 6,064 for the same bundle without
   the count, 8 clients). Each backend now adds to one of 16 counter rows of the link. */

\echo Use "ALTER EXTENSION defendable UPDATE TO '0.7'" to load this file. \quit

CREATE TABLE defendable.share_access_counts (
    share_id uuid NOT NULL,
    shard smallint NOT NULL,
    accesses bigint NOT NULL,
    last_access_at timestamptz NOT NULL,
    CONSTRAINT share_access_counts_pkey PRIMARY KEY (share_id, shard),
    CONSTRAINT share_access_counts_shard_check CHECK (shard OPERATOR(pg_catalog.>=) 0 AND shard OPERATOR(pg_catalog.<) 16)
);
COMMENT ON TABLE defendable.share_access_counts IS
    'Accesses of each share link, spread over up to 16 rows (one per backend slot) so that concurrent resolves never wait for each other. A statistic, not ledger data.';
SELECT pg_catalog.pg_extension_config_dump('defendable.share_access_counts', '');
REVOKE ALL ON defendable.share_access_counts FROM PUBLIC;
-- like every table here: no policy, so only the owner's SECURITY DEFINER functions reach it
ALTER TABLE defendable.share_access_counts ENABLE ROW LEVEL SECURITY;

-- the counts kept on the share rows so far move to the counters
INSERT INTO defendable.share_access_counts (share_id, shard, accesses, last_access_at)
    SELECT s.share_id, 0, s.access_count, coalesce(s.last_access_at, s.created_at)
    FROM defendable.shares s WHERE s.access_count OPERATOR(pg_catalog.>) 0;
COMMENT ON COLUMN defendable.shares.access_count IS 'Unused since 0.7: see defendable.share_access(share).';
COMMENT ON COLUMN defendable.shares.last_access_at IS 'Unused since 0.7: see defendable.share_access(share).';

CREATE OR REPLACE FUNCTION defendable.share_resolve(token text) RETURNS jsonb
    LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_share_resolve_sharded';

CREATE FUNCTION defendable.share_access(share uuid, OUT accesses bigint, OUT last_access_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(sum(c.accesses), 0)::bigint, max(c.last_access_at)
    FROM defendable.share_access_counts c WHERE c.share_id = share
$$;
COMMENT ON FUNCTION defendable.share_access(uuid) IS 'How often a share link was resolved, and when last.';

REVOKE ALL ON FUNCTION defendable.share_access(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION defendable.share_access(uuid) TO defendable_gateway, defendable_auditor;

-- The Merkle frontier beside the head: the next session to take an org's append lock starts from
-- it instead of reading stored nodes and receipt hashes (with many sessions on one org, each turn
-- reloaded what the previous holder had just moved). Written at commit with the head; used only
-- when it names the head's own last hash, so a stale or foreign value is ignored.
ALTER TABLE defendable.heads ADD COLUMN frontier bytea;
COMMENT ON COLUMN defendable.heads.frontier IS
    'The last receipt''s hash, then the Merkle frontier of the tree (the node of each set bit of seq, lowest level first, 32 bytes each).';
