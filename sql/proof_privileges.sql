-- Proofs read stored Merkle nodes and receipt hashes by primary key, outside SQL, but only after
-- the checks SQL would make for the function's owner: SELECT on the table, and row-level security
-- (enabled on every table, with no policy but the auditor's). The extension's functions belong
-- to the superuser that created it, who passes both; a function handed to another owner must get
-- exactly what SQL would give that owner, never rows it may not read. The ledger's size is read
-- in SQL first, so receipts stay readable below and merkle_nodes is what the checks guard.
\set org '''cccccccc-3333-4333-8333-000000000001'''
SELECT count(*) FROM (SELECT defendable.append_receipt(:org, 'run.complete', jsonb_build_object('run', i), '{run}') FROM generate_series(1, 40) i) s;
SELECT defendable.inclusion_proof(:org, 7, 40)::text AS proof \gset
SELECT count(*) AS stored_nodes FROM defendable.merkle_nodes WHERE org_id = :org;

CREATE ROLE regress_proof_owner;
GRANT USAGE ON SCHEMA defendable TO regress_proof_owner;
GRANT SELECT ON defendable.receipts TO regress_proof_owner;
CREATE POLICY regress_proof_receipts ON defendable.receipts FOR SELECT TO regress_proof_owner USING (true);
ALTER FUNCTION defendable.inclusion_proof(uuid, bigint, bigint) OWNER TO regress_proof_owner;
-- no SELECT on merkle_nodes: refused, as SQL refuses it (with and without row-level security
-- applying to the owner: each check on its own)
SELECT defendable.inclusion_proof(:org, 7, 40);
\echo :LAST_ERROR_SQLSTATE
ALTER ROLE regress_proof_owner BYPASSRLS;
SELECT defendable.inclusion_proof(:org, 7, 40);
\echo :LAST_ERROR_SQLSTATE
ALTER ROLE regress_proof_owner NOBYPASSRLS;
-- SELECT granted, but row-level security shows this owner no stored node: no proof from them
GRANT SELECT ON defendable.merkle_nodes TO regress_proof_owner;
SELECT defendable.inclusion_proof(:org, 7, 40);
\echo :LAST_ERROR_SQLSTATE
-- a policy that shows it the nodes: the superuser's proof
CREATE POLICY regress_proof_nodes ON defendable.merkle_nodes FOR SELECT TO regress_proof_owner USING (true);
SELECT defendable.inclusion_proof(:org, 7, 40)::text = :'proof' AS same_proof_with_policies;

-- back as it was
ALTER FUNCTION defendable.inclusion_proof(uuid, bigint, bigint) OWNER TO CURRENT_USER;
DROP POLICY regress_proof_nodes ON defendable.merkle_nodes;
DROP POLICY regress_proof_receipts ON defendable.receipts;
REVOKE ALL ON defendable.merkle_nodes, defendable.receipts FROM regress_proof_owner;
REVOKE ALL ON SCHEMA defendable FROM regress_proof_owner;
DROP ROLE regress_proof_owner;
