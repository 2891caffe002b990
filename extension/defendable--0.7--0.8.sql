/* defendable 0.7 -> 0.8: one organization, one shard.
   Every tenant table keys its rows by org_id first: its primary key and each unique constraint
   include org_id, so the tables can be distributed by org_id (Citus) with every per-org write
   landing on one shard. Token lookups keep plain indexes (tokens are 256-bit random: unique in
   practice, and a constraint across shards is what a distributed table cannot have).
   defendable.table_distribution() says how each table is placed; defendable.ledger_orgs() lists
   the organizations a split verify_ledger must cover (docs/scaling.md). */

\echo Use "ALTER EXTENSION defendable UPDATE TO '0.8'" to load this file. \quit

-- API keys are presented as their id and secret; the id alone finds the row
ALTER TABLE defendable.api_keys DROP CONSTRAINT api_keys_pkey;
ALTER TABLE defendable.api_keys ADD CONSTRAINT api_keys_pkey PRIMARY KEY (org_id, key_id);
DROP INDEX defendable.api_keys_org_idx; -- the primary key leads with org_id
CREATE INDEX api_keys_key_id_idx ON defendable.api_keys (key_id);

-- share links resolve by token hash, and share_access() by id
ALTER TABLE defendable.shares DROP CONSTRAINT shares_pkey;
ALTER TABLE defendable.shares DROP CONSTRAINT shares_token_hash_key;
ALTER TABLE defendable.shares ADD CONSTRAINT shares_pkey PRIMARY KEY (org_id, share_id);
ALTER TABLE defendable.shares ADD CONSTRAINT shares_token_hash_key UNIQUE (org_id, token_hash);
CREATE INDEX shares_token_hash_idx ON defendable.shares (token_hash);
CREATE INDEX shares_share_id_idx ON defendable.shares (share_id);

-- the access counters live with their link
ALTER TABLE defendable.share_access_counts ADD COLUMN org_id uuid;
UPDATE defendable.share_access_counts c SET org_id = s.org_id
    FROM defendable.shares s WHERE s.share_id OPERATOR(pg_catalog.=) c.share_id;
DELETE FROM defendable.share_access_counts WHERE org_id IS NULL; -- counts of links that no longer exist
ALTER TABLE defendable.share_access_counts ALTER COLUMN org_id SET NOT NULL;
ALTER TABLE defendable.share_access_counts DROP CONSTRAINT share_access_counts_pkey;
ALTER TABLE defendable.share_access_counts
    ADD CONSTRAINT share_access_counts_pkey PRIMARY KEY (org_id, share_id, shard);

CREATE OR REPLACE FUNCTION defendable.share_resolve(token text) RETURNS jsonb
    LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_share_resolve_by_org';

CREATE OR REPLACE FUNCTION defendable.share_access(share uuid, OUT accesses bigint, OUT last_access_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(sum(c.accesses), 0)::bigint, max(c.last_access_at)
    FROM defendable.shares s
    JOIN defendable.share_access_counts c
      ON c.org_id OPERATOR(pg_catalog.=) s.org_id AND c.share_id OPERATOR(pg_catalog.=) s.share_id
    WHERE s.share_id OPERATOR(pg_catalog.=) share
$$;

-- invites are accepted by token hash
ALTER TABLE defendable.invites DROP CONSTRAINT invites_token_hash_key;
ALTER TABLE defendable.invites ADD CONSTRAINT invites_token_hash_key UNIQUE (org_id, token_hash);
CREATE INDEX invites_token_hash_idx ON defendable.invites (token_hash);

-- runners claim and report by run id
ALTER TABLE defendable.runs DROP CONSTRAINT runs_run_id_key;
CREATE INDEX runs_run_id_idx ON defendable.runs (run_id);

CREATE FUNCTION defendable.table_distribution()
    RETURNS TABLE (table_name regclass, placement text, distribution_column name, why text)
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    VALUES
        -- tenant: distributed by org_id, all colocated with receipts
        ('defendable.orgs'::regclass, 'tenant', 'org_id'::name, 'the organization itself'),
        ('defendable.heads', 'tenant', 'org_id', 'the head of the org''s chain'),
        ('defendable.receipts', 'tenant', 'org_id', 'the chain'),
        ('defendable.disclosures', 'tenant', 'org_id', 'salts and values of each receipt'),
        ('defendable.merkle_nodes', 'tenant', 'org_id', 'the org''s Merkle tree'),
        ('defendable.checkpoints', 'tenant', 'org_id', 'signed checkpoints of the org''s tree'),
        ('defendable.memberships', 'tenant', 'org_id', 'who belongs to the org'),
        ('defendable.invites', 'tenant', 'org_id', 'pending invitations'),
        ('defendable.api_keys', 'tenant', 'org_id', 'the org''s API keys'),
        ('defendable.shares', 'tenant', 'org_id', 'share links to the org''s receipts'),
        ('defendable.share_access_counts', 'tenant', 'org_id', 'access counters of share links'),
        ('defendable.runs', 'tenant', 'org_id', 'the org''s runs'),
        ('defendable.org_billing', 'tenant', 'org_id', 'the org''s plan and subscription'),
        -- global: keyed by something that is not an org (a person, a token, a message, an
        -- event from Stripe); distributed by their own key or kept on the coordinator
        ('defendable.users', 'global', 'user_id', 'people, who may belong to many orgs'),
        ('defendable.auth_tokens', 'global', 'token_hash', 'magic-link tokens, before an org is known'),
        ('defendable.email_outbox', 'global', 'message_id', 'mail to people, with or without an org'),
        ('defendable.stripe_events', 'global', 'event_id', 'webhook events, deduplicated by Stripe''s id'),
        ('defendable.security_events', 'global', 'event_id', 'security log, written outside the receipt path'),
        ('defendable.quota_counters', 'global', 'subject', 'rate and quota counters of any scope'),
        -- reference: small, read everywhere, replicated to every node
        ('defendable.datasets', 'reference', NULL, 'the dataset catalog'),
        ('defendable.disclosure_policy', 'reference', NULL, 'which fields of each kind are public')
$$;
COMMENT ON FUNCTION defendable.table_distribution() IS
    'How each table is placed when the ledger is distributed (Citus): tenant tables by org_id, global tables by their own key, reference tables everywhere. Checked against the catalog by the regression suite.';

CREATE FUNCTION defendable.ledger_orgs() RETURNS SETOF uuid
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    -- every org verify_ledger() reports on: a stored head, or receipts (read with one index
    -- probe per org, not a scan of every receipt)
    WITH RECURSIVE receipt_orgs(org_id) AS (
        (SELECT r.org_id FROM defendable.receipts r ORDER BY r.org_id LIMIT 1)
        UNION ALL
        SELECT (SELECT r.org_id FROM defendable.receipts r
                WHERE r.org_id OPERATOR(pg_catalog.>) o.org_id ORDER BY r.org_id LIMIT 1)
        FROM receipt_orgs o WHERE o.org_id IS NOT NULL
    )
    SELECT org_id FROM receipt_orgs WHERE org_id IS NOT NULL
    UNION
    SELECT h.org_id FROM defendable.heads h
    ORDER BY 1
$$;
COMMENT ON FUNCTION defendable.ledger_orgs() IS
    'The organizations verify_ledger() covers, in its order: split them over workers and call verify_ledger(org) for each (scripts/verify-parallel).';

REVOKE ALL ON FUNCTION defendable.table_distribution() FROM PUBLIC;
REVOKE ALL ON FUNCTION defendable.ledger_orgs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION defendable.table_distribution() TO defendable_auditor;
GRANT EXECUTE ON FUNCTION defendable.ledger_orgs() TO defendable_auditor;
