/* defendable 0.1: the receipts ledger core. Released scripts are frozen; change by upgrade. */

\echo Use "CREATE EXTENSION defendable" to load this file. \quit

DO $$
BEGIN
    IF pg_catalog.getdatabaseencoding() OPERATOR(pg_catalog.<>) 'UTF8' THEN
        RAISE EXCEPTION 'defendable requires a database with UTF8 encoding'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Receipts are hashed as RFC 8785 canonical JSON, which is UTF-8.';
    END IF;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Tables. Receipts are immutable; salts and values live apart so a value can be erased while
-- its digest (and so the chain) stays. Nothing here is granted to PUBLIC.
-- ---------------------------------------------------------------------------------------------

CREATE TABLE defendable.receipts (
    org_id uuid NOT NULL,
    seq bigint NOT NULL,
    ts timestamptz NOT NULL,
    kind text NOT NULL,
    prev bytea NOT NULL,
    fields jsonb NOT NULL,
    hash bytea NOT NULL,
    CONSTRAINT receipts_pkey PRIMARY KEY (org_id, seq)
);
COMMENT ON TABLE defendable.receipts IS
    'Hash-chained receipts, one chain per organization. Written only by defendable.append_receipt(); never updated or deleted.';
COMMENT ON COLUMN defendable.receipts.fields IS
    'Digest map: field name -> base64url(SHA-256(disclosure)). Values and salts are in defendable.disclosures.';
COMMENT ON COLUMN defendable.receipts.hash IS
    'SHA-256 of the canonical body (docs/receipt-format.md).';

CREATE TABLE defendable.disclosures (
    org_id uuid NOT NULL,
    seq bigint NOT NULL,
    salts jsonb NOT NULL,
    field_values jsonb NOT NULL,
    public_fields text[] NOT NULL,
    CONSTRAINT disclosures_pkey PRIMARY KEY (org_id, seq)
);
COMMENT ON TABLE defendable.disclosures IS
    'Salts and values of receipt fields, and which fields may be disclosed publicly. Kept apart from the immutable receipts so a value can be erased without breaking the chain.';

CREATE TABLE defendable.heads (
    org_id uuid NOT NULL,
    seq bigint NOT NULL,
    hash bytea NOT NULL,
    CONSTRAINT heads_pkey PRIMARY KEY (org_id)
);
COMMENT ON TABLE defendable.heads IS
    'Seq and hash of each organization''s last receipt. verify_ledger() compares the chain''s end with it, which detects a truncated tail.';

-- pg_dump leaves extension tables out unless they are registered: receipts must be in every backup.
SELECT pg_catalog.pg_extension_config_dump('defendable.receipts', '');
SELECT pg_catalog.pg_extension_config_dump('defendable.disclosures', '');
SELECT pg_catalog.pg_extension_config_dump('defendable.heads', '');

REVOKE ALL ON defendable.receipts, defendable.disclosures, defendable.heads FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- Write guards. Every INSERT, UPDATE, DELETE and TRUNCATE that does not come from inside the
-- extension is refused, for every role (MERGE and COPY fire these row triggers too).
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.guard_write() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'dfd_guard_write';
COMMENT ON FUNCTION defendable.guard_write() IS
    'Trigger: refuses writes to the ledger tables that do not come from the extension itself.';

CREATE FUNCTION defendable.flush_head() RETURNS trigger
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_flush_head';
COMMENT ON FUNCTION defendable.flush_head() IS
    'Deferred trigger: at commit, writes each appended organization''s head once.';

CREATE TRIGGER receipts_guard_rows BEFORE INSERT OR UPDATE OR DELETE ON defendable.receipts
    FOR EACH ROW EXECUTE FUNCTION defendable.guard_write();
CREATE TRIGGER receipts_guard_truncate BEFORE TRUNCATE ON defendable.receipts
    FOR EACH STATEMENT EXECUTE FUNCTION defendable.guard_write();
CREATE TRIGGER disclosures_guard_rows BEFORE INSERT OR UPDATE OR DELETE ON defendable.disclosures
    FOR EACH ROW EXECUTE FUNCTION defendable.guard_write();
CREATE TRIGGER disclosures_guard_truncate BEFORE TRUNCATE ON defendable.disclosures
    FOR EACH STATEMENT EXECUTE FUNCTION defendable.guard_write();
CREATE TRIGGER heads_guard_rows BEFORE INSERT OR UPDATE OR DELETE ON defendable.heads
    FOR EACH ROW EXECUTE FUNCTION defendable.guard_write();
CREATE TRIGGER heads_guard_truncate BEFORE TRUNCATE ON defendable.heads
    FOR EACH STATEMENT EXECUTE FUNCTION defendable.guard_write();
CREATE CONSTRAINT TRIGGER heads_flush AFTER INSERT OR UPDATE ON defendable.heads
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION defendable.flush_head();

-- ---------------------------------------------------------------------------------------------
-- Functions
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION defendable.append_receipt(org uuid, kind text, fields jsonb,
                                          public_fields text[] DEFAULT NULL)
    RETURNS defendable.receipts
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_append_receipt';
COMMENT ON FUNCTION defendable.append_receipt(uuid, text, jsonb, text[]) IS
    'Appends a receipt to the organization''s chain: assigns seq, ts and prev, commits to each field with a salted digest, and returns the stored row. The only way receipts are written.';

CREATE FUNCTION defendable.verify_ledger(org uuid DEFAULT NULL)
    RETURNS TABLE (org_id uuid, receipts bigint, head_seq bigint, head_hash text, ok boolean,
                   first_bad_seq bigint, detail text)
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_verify_ledger';
COMMENT ON FUNCTION defendable.verify_ledger(uuid) IS
    'Recomputes every receipt hash, checks seq continuity, prev links and the stored head; one row per organization with the first bad seq and the reason.';

CREATE FUNCTION defendable.verify_disclosures(org uuid DEFAULT NULL)
    RETURNS TABLE (org_id uuid, checked bigint, erased bigint, ok boolean,
                   first_bad_seq bigint, detail text)
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_verify_disclosures';
COMMENT ON FUNCTION defendable.verify_disclosures(uuid) IS
    'Recomputes every kept disclosure from its salt and value and compares it with the receipt''s digest; erased fields are counted, not failed.';

CREATE FUNCTION defendable.jcs(value jsonb) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'dfd_jcs';
COMMENT ON FUNCTION defendable.jcs(jsonb) IS
    'RFC 8785 canonical JSON text of a jsonb value. Numbers that are not exactly an IEEE-754 double when printed are refused, not rounded.';

CREATE FUNCTION defendable.jcs_text(json_text text) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'dfd_jcs_text';
COMMENT ON FUNCTION defendable.jcs_text(text) IS
    'RFC 8785 canonical form of JSON text, numbers read as the nearest double (I-JSON); refuses duplicate names and lone surrogates.';

CREATE FUNCTION defendable.receipt_body(org uuid, seq bigint) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_sql_receipt_body';
COMMENT ON FUNCTION defendable.receipt_body(uuid, bigint) IS
    'The exact canonical body whose SHA-256 is the receipt''s hash, rebuilt from the stored columns.';

CREATE FUNCTION defendable.public_projection(org uuid, seq bigint) RETURNS jsonb
    LANGUAGE c STABLE STRICT PARALLEL UNSAFE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'dfd_public_projection';
COMMENT ON FUNCTION defendable.public_projection(uuid, bigint) IS
    'Redacted, verifiable view of a receipt: header, hash, digest map and the disclosures of its public fields (never-public fields are always withheld).';

-- Nothing is callable by PUBLIC; the DBA grants EXECUTE to the application's roles.
REVOKE ALL ON FUNCTION
    defendable.guard_write(),
    defendable.flush_head(),
    defendable.append_receipt(uuid, text, jsonb, text[]),
    defendable.verify_ledger(uuid),
    defendable.verify_disclosures(uuid),
    defendable.jcs(jsonb),
    defendable.jcs_text(text),
    defendable.receipt_body(uuid, bigint),
    defendable.public_projection(uuid, bigint)
FROM PUBLIC;
