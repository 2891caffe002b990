/* defendable 0.1 -> 0.2: Merkle tree and proofs, signed checkpoints, share links, disclosure
   policies, erasure, export. A fresh CREATE EXTENSION runs 0.1 and then this script. */

\echo Use "ALTER EXTENSION defendable UPDATE TO '0.2'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------------

CREATE TABLE defendable.merkle_nodes (
    org_id uuid NOT NULL,
    level smallint NOT NULL,
    idx bigint NOT NULL,
    hash bytea NOT NULL,
    CONSTRAINT merkle_nodes_pkey PRIMARY KEY (org_id, level, idx)
);
COMMENT ON TABLE defendable.merkle_nodes IS
    'Roots of the perfect subtrees of 16 leaves and more of each organization''s Merkle tree (RFC 9162), written as receipts are appended, so proofs read O(log n) rows.';

CREATE TABLE defendable.checkpoints (
    org_id uuid NOT NULL,
    tree_size bigint NOT NULL,
    root bytea NOT NULL,
    key_name text NOT NULL,
    key_id text NOT NULL,
    note text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT checkpoints_pkey PRIMARY KEY (org_id, tree_size, key_name, key_id)
);
COMMENT ON TABLE defendable.checkpoints IS
    'Signed checkpoints (C2SP tlog-checkpoint in a signed note) handed out for each organization. The signing key is never in the database.';

CREATE TABLE defendable.shares (
    share_id uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    org_id uuid NOT NULL,
    seq bigint NOT NULL,
    token_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    access_count bigint NOT NULL DEFAULT 0,
    last_access_at timestamptz,
    CONSTRAINT shares_pkey PRIMARY KEY (share_id),
    CONSTRAINT shares_token_hash_key UNIQUE (token_hash)
);
COMMENT ON TABLE defendable.shares IS
    'Share links to one receipt. Only the SHA-256 of each token is kept; the token is shown once, by share_create().';

CREATE TABLE defendable.disclosure_policy (
    kind text NOT NULL,
    public_fields text[] NOT NULL,
    CONSTRAINT disclosure_policy_pkey PRIMARY KEY (kind)
);
COMMENT ON TABLE defendable.disclosure_policy IS
    'Fields of each receipt kind that are public when append_receipt() is given no public_fields. The never-public rule still wins.';

SELECT pg_catalog.pg_extension_config_dump('defendable.merkle_nodes', '');
SELECT pg_catalog.pg_extension_config_dump('defendable.checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('defendable.shares', '');
SELECT pg_catalog.pg_extension_config_dump('defendable.disclosure_policy', '');

REVOKE ALL ON defendable.merkle_nodes, defendable.checkpoints, defendable.shares,
    defendable.disclosure_policy FROM PUBLIC;

CREATE TRIGGER merkle_nodes_guard_rows BEFORE INSERT OR UPDATE OR DELETE ON defendable.merkle_nodes
    FOR EACH ROW EXECUTE FUNCTION defendable.guard_write();
CREATE TRIGGER merkle_nodes_guard_truncate BEFORE TRUNCATE ON defendable.merkle_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION defendable.guard_write();
CREATE TRIGGER checkpoints_guard_rows BEFORE INSERT OR UPDATE OR DELETE ON defendable.checkpoints
    FOR EACH ROW EXECUTE FUNCTION defendable.guard_write();
CREATE TRIGGER checkpoints_guard_truncate BEFORE TRUNCATE ON defendable.checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION defendable.guard_write();
CREATE TRIGGER shares_guard_rows BEFORE INSERT OR UPDATE OR DELETE ON defendable.shares
    FOR EACH ROW EXECUTE FUNCTION defendable.guard_write();
CREATE TRIGGER shares_guard_truncate BEFORE TRUNCATE ON defendable.shares
    FOR EACH STATEMENT EXECUTE FUNCTION defendable.guard_write();

-- ---------------------------------------------------------------------------------------------
-- Merkle tree
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.merkle_root(org uuid, tree_size bigint DEFAULT NULL) RETURNS bytea
    LANGUAGE c STABLE CALLED ON NULL INPUT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_merkle_root_sql';
COMMENT ON FUNCTION defendable.merkle_root(uuid, bigint) IS
    'RFC 9162 root of the organization''s tree of receipt hashes at tree_size (default: all receipts).';

CREATE FUNCTION defendable.inclusion_proof(org uuid, seq bigint, tree_size bigint DEFAULT NULL)
    RETURNS bytea[]
    LANGUAGE c STABLE CALLED ON NULL INPUT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_inclusion_proof_sql';
COMMENT ON FUNCTION defendable.inclusion_proof(uuid, bigint, bigint) IS
    'RFC 9162 inclusion proof of receipt seq (leaf index seq - 1) in the tree of tree_size receipts.';

CREATE FUNCTION defendable.consistency_proof(org uuid, old_size bigint, new_size bigint DEFAULT NULL)
    RETURNS bytea[]
    LANGUAGE c STABLE CALLED ON NULL INPUT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_consistency_proof_sql';
COMMENT ON FUNCTION defendable.consistency_proof(uuid, bigint, bigint) IS
    'RFC 9162 consistency proof between two sizes of the organization''s tree.';

CREATE FUNCTION defendable.merkle_leaf_hash(receipt_hash bytea) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'dfd_merkle_leaf_hash_sql';
COMMENT ON FUNCTION defendable.merkle_leaf_hash(bytea) IS 'SHA-256(0x00 || receipt_hash).';

CREATE FUNCTION defendable.verify_inclusion(receipt_hash bytea, seq bigint, tree_size bigint,
                                            proof bytea[], root bytea) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'dfd_verify_inclusion_sql';
COMMENT ON FUNCTION defendable.verify_inclusion(bytea, bigint, bigint, bytea[], bytea) IS
    'Checks an RFC 9162 inclusion proof of a receipt hash against a root.';

CREATE FUNCTION defendable.verify_consistency(old_size bigint, new_size bigint, old_root bytea,
                                              new_root bytea, proof bytea[]) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'dfd_verify_consistency_sql';
COMMENT ON FUNCTION defendable.verify_consistency(bigint, bigint, bytea, bytea, bytea[]) IS
    'Checks an RFC 9162 consistency proof between two roots.';

CREATE FUNCTION defendable.merkle_rebuild(org uuid DEFAULT NULL) RETURNS bigint
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_merkle_rebuild';
COMMENT ON FUNCTION defendable.merkle_rebuild(uuid) IS
    'Recomputes the stored Merkle nodes of one organization (or all) from the receipts; returns the number of nodes written. For upgrades and restores.';

-- ---------------------------------------------------------------------------------------------
-- Checkpoints
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.checkpoint_body(org uuid, origin text, tree_size bigint DEFAULT NULL)
    RETURNS text
    LANGUAGE c STABLE CALLED ON NULL INPUT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_checkpoint_body';
COMMENT ON FUNCTION defendable.checkpoint_body(uuid, text, bigint) IS
    'The C2SP tlog-checkpoint text "<origin>/<org>\n<size>\n<base64 root>\n" to be signed outside the database.';

CREATE FUNCTION defendable.record_checkpoint(note text, verifier_key text)
    RETURNS defendable.checkpoints
    LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_record_checkpoint';
COMMENT ON FUNCTION defendable.record_checkpoint(text, text) IS
    'Stores a signed checkpoint after checking its signature with the verifier key and its root against the ledger.';

CREATE FUNCTION defendable.verify_checkpoint(note text, verifier_key text)
    RETURNS TABLE (ok boolean, org_id uuid, tree_size bigint, current_size bigint, detail text)
    LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_verify_checkpoint';
COMMENT ON FUNCTION defendable.verify_checkpoint(text, text) IS
    'Proves today''s tree consistent with a checkpoint handed out earlier: catches a history rewritten with recomputed hashes.';

-- ---------------------------------------------------------------------------------------------
-- Share links, export
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.share_create(org uuid, seq bigint, ttl interval DEFAULT '7 days',
                                        OUT share_id uuid, OUT token text, OUT expires_at timestamptz)
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_share_create';
COMMENT ON FUNCTION defendable.share_create(uuid, bigint, interval) IS
    'Creates a share link to a receipt. The token is returned once; only its SHA-256 is stored.';

CREATE FUNCTION defendable.share_revoke(org uuid, share_id uuid) RETURNS boolean
    LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_share_revoke';
COMMENT ON FUNCTION defendable.share_revoke(uuid, uuid) IS
    'Revokes a share link of the organization; true if it was active.';

CREATE FUNCTION defendable.share_resolve(token text) RETURNS jsonb
    LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_share_resolve';
COMMENT ON FUNCTION defendable.share_resolve(text) IS
    'The receipt bundle of a share link (docs/receipt-bundle.md). Unknown, expired and revoked tokens fail alike.';

CREATE FUNCTION defendable.receipt_bundle(org uuid, seq bigint) RETURNS jsonb
    LANGUAGE c STABLE STRICT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_receipt_bundle';
COMMENT ON FUNCTION defendable.receipt_bundle(uuid, bigint) IS
    'Public projection, inclusion proof and the newest stored checkpoint covering it: what a share link returns.';

CREATE FUNCTION defendable.export_org(org uuid) RETURNS SETOF text
    LANGUAGE c STABLE STRICT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_export_org';
COMMENT ON FUNCTION defendable.export_org(uuid) IS
    'JSON Lines of an organization''s receipts (header and digests) followed by its signed checkpoints, for defendable-verify export.';

-- ---------------------------------------------------------------------------------------------
-- Erasure
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.erase_field(org uuid, seq bigint, field text, reason text)
    RETURNS defendable.receipts
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_erase_field';
COMMENT ON FUNCTION defendable.erase_field(uuid, bigint, text, text) IS
    'Deletes a field''s salt and value, keeps its digest (the chain still verifies), and appends an erasure receipt naming the field and the reason.';

REVOKE ALL ON FUNCTION
    defendable.merkle_root(uuid, bigint),
    defendable.inclusion_proof(uuid, bigint, bigint),
    defendable.consistency_proof(uuid, bigint, bigint),
    defendable.merkle_leaf_hash(bytea),
    defendable.verify_inclusion(bytea, bigint, bigint, bytea[], bytea),
    defendable.verify_consistency(bigint, bigint, bytea, bytea, bytea[]),
    defendable.merkle_rebuild(uuid),
    defendable.checkpoint_body(uuid, text, bigint),
    defendable.record_checkpoint(text, text),
    defendable.verify_checkpoint(text, text),
    defendable.share_create(uuid, bigint, interval),
    defendable.share_revoke(uuid, uuid),
    defendable.share_resolve(text),
    defendable.receipt_bundle(uuid, bigint),
    defendable.export_org(uuid),
    defendable.erase_field(uuid, bigint, text, text)
FROM PUBLIC;

-- ledgers written by 0.1 have no stored Merkle nodes yet
SELECT defendable.merkle_rebuild();
