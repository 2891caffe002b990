-- Scaling rules (docs/scaling.md): the schema can be distributed by org_id without a rewrite,
-- and verify_ledger() over every org splits into independent per-org calls.
SET client_min_messages = warning;

-- 1. every table of the extension is placed: a new table must say how it is distributed
SELECT c.relname AS unplaced_table
FROM pg_catalog.pg_class c
WHERE c.relnamespace = 'defendable'::regnamespace AND c.relkind IN ('r', 'p')
  AND c.oid NOT IN (SELECT table_name FROM defendable.table_distribution());
SELECT placement, count(*) FROM defendable.table_distribution() GROUP BY 1 ORDER BY 1;

-- 2. tenant tables: org_id NOT NULL, in the primary key and in every unique constraint or index
CREATE TEMP VIEW tenant_tables AS
    SELECT table_name AS rel FROM defendable.table_distribution() WHERE placement = 'tenant';
CREATE TEMP VIEW org_attnum AS
    SELECT t.rel, a.attnum, a.attnotnull
    FROM tenant_tables t
    LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = t.rel AND a.attname = 'org_id' AND NOT a.attisdropped;
SELECT rel AS tenant_table_without_org_id FROM org_attnum WHERE attnum IS NULL OR NOT attnotnull;
SELECT t.rel AS tenant_table_without_primary_key
FROM tenant_tables t
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = t.rel AND i.indisprimary);
SELECT i.indexrelid::regclass AS unique_index_without_org_id
FROM pg_catalog.pg_index i JOIN org_attnum o ON o.rel = i.indrelid
WHERE i.indisunique AND NOT (o.attnum = ANY (i.indkey::int2[]));
-- exclusion constraints cannot be checked per shard either
SELECT conname AS exclusion_constraint FROM pg_catalog.pg_constraint c JOIN tenant_tables t ON c.conrelid = t.rel
WHERE c.contype = 'x';

-- 3. no foreign keys between tables that could land on different shards (there are none at all
--    today; one between two tenant tables must include org_id on both sides)
SELECT c.conname AS foreign_key_across_shards, c.conrelid::regclass, c.confrelid::regclass
FROM pg_catalog.pg_constraint c
WHERE c.contype = 'f' AND c.connamespace = 'defendable'::regnamespace
  AND NOT (c.conrelid IN (SELECT rel FROM tenant_tables) AND c.confrelid IN (SELECT rel FROM tenant_tables)
           AND (SELECT attnum FROM org_attnum WHERE rel = c.conrelid) = ANY (c.conkey)
           AND (SELECT attnum FROM org_attnum WHERE rel = c.confrelid) = ANY (c.confkey))
  AND c.confrelid NOT IN (SELECT table_name FROM defendable.table_distribution() WHERE placement = 'reference');

-- 4. no global sequence in a tenant table: per-org numbering comes from the org's own head
SELECT a.attrelid::regclass AS tenant_column_with_sequence, a.attname
FROM pg_catalog.pg_attribute a JOIN tenant_tables t ON a.attrelid = t.rel
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped
  AND (a.attidentity <> '' OR pg_catalog.pg_get_expr(d.adbin, d.adrelid) LIKE '%nextval(%');
SELECT s.relname AS sequence, d.refobjid::regclass AS owned_by
FROM pg_catalog.pg_class s
JOIN pg_catalog.pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
WHERE s.relkind = 'S' AND s.relnamespace = 'defendable'::regnamespace
ORDER BY 1;

-- 5. reference tables carry no org data; global tables are not written by the receipt path
SELECT table_name AS reference_table_with_org_id FROM defendable.table_distribution() d
WHERE placement = 'reference'
  AND EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = d.table_name AND a.attname = 'org_id');
SELECT table_name, distribution_column AS missing_distribution_column FROM defendable.table_distribution() d
WHERE placement <> 'reference'
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = d.table_name AND a.attname = d.distribution_column AND NOT a.attisdropped);

-- 6. one call, one org: every row an append (or a share link, a checkpoint body) writes in a
--    tenant table belongs to the org it was called for
SELECT count(*) FROM (
    SELECT defendable.append_receipt(o, 'run.complete', jsonb_build_object('run', i, 'secret', md5(i::text)), '{run}')
    FROM generate_series(1, 40) i,
         unnest(ARRAY['cccccccc-0000-4000-8000-000000000001', 'cccccccc-0000-4000-8000-000000000002',
                      'cccccccc-0000-4000-8000-000000000003']::uuid[]) o) s;
CREATE FUNCTION pg_temp.rows_of_this_transaction() RETURNS TABLE (tbl text, org uuid, n bigint)
LANGUAGE plpgsql AS $$
DECLARE
    r regclass;
BEGIN
    FOR r IN SELECT table_name FROM defendable.table_distribution() WHERE placement = 'tenant' ORDER BY 1::text LOOP
        RETURN QUERY EXECUTE format('SELECT %L::text, org_id, count(*) FROM %s '
                                    'WHERE xmin = pg_catalog.xid(pg_catalog.pg_current_xact_id()) GROUP BY org_id',
                                    r, r);
    END LOOP;
END $$;
BEGIN;
SELECT count(*) FROM (
    SELECT defendable.append_receipt('cccccccc-0000-4000-8000-000000000002', 'run.complete', jsonb_build_object('run', i), '{run}')
    FROM generate_series(1, 20) i) s;
SELECT count(*) FROM defendable.share_create('cccccccc-0000-4000-8000-000000000002', 7);
SELECT length(defendable.checkpoint_body('cccccccc-0000-4000-8000-000000000002', 'example.test')) > 0 AS body;
SELECT tbl, org, n FROM pg_temp.rows_of_this_transaction() ORDER BY 1;
COMMIT;

-- 7. split verification equals the single call: every org, in the same order, row for row,
--    also when one org is broken (a superuser bypassing the guards, as in sql/tamper.sql)
CREATE TEMP VIEW split_vs_single AS
    WITH single AS (SELECT row_number() OVER () AS n, v.* FROM defendable.verify_ledger() v),
         split AS (SELECT row_number() OVER () AS n, v.*
                   FROM defendable.ledger_orgs() o, LATERAL defendable.verify_ledger(o) v)
    SELECT (SELECT count(*) FROM single) AS single_rows,
           (SELECT count(*) FROM split) AS split_rows,
           NOT EXISTS (SELECT * FROM single EXCEPT SELECT * FROM split)
           AND NOT EXISTS (SELECT * FROM split EXCEPT SELECT * FROM single) AS identical,
           (SELECT count(*) FROM single WHERE NOT ok) AS failing_orgs;
SELECT single_rows > 0 AS has_orgs, single_rows = split_rows AS same_count, identical, failing_orgs FROM split_vs_single;
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE defendable.receipts SET kind = 'run.fail'
WHERE org_id = 'cccccccc-0000-4000-8000-000000000002' AND seq = 17;
-- an org with receipts and no head at all: only an index probe of receipts finds it
DELETE FROM defendable.heads WHERE org_id = 'cccccccc-0000-4000-8000-000000000003';
SELECT single_rows = split_rows AS same_count, identical, failing_orgs FROM split_vs_single;
SELECT org_id, ok, first_bad_seq, detail FROM defendable.verify_ledger()
WHERE org_id::text LIKE 'cccccccc-%' ORDER BY 1;
ROLLBACK;

-- 8. the auditor may list the orgs and the placement; the gateway and PUBLIC may not
SELECT r.rolname, f.proname, has_function_privilege(r.rolname, f.oid, 'EXECUTE') AS can_execute
FROM (VALUES ('defendable_auditor'), ('defendable_gateway')) r(rolname)
CROSS JOIN pg_catalog.pg_proc f
WHERE f.pronamespace = 'defendable'::regnamespace AND f.proname IN ('ledger_orgs', 'table_distribution')
ORDER BY 1, 2;
SELECT f.proname, EXISTS (SELECT FROM pg_catalog.aclexplode(f.proacl) a WHERE a.grantee = 0) AS granted_to_public
FROM pg_catalog.pg_proc f
WHERE f.pronamespace = 'defendable'::regnamespace AND f.proname IN ('ledger_orgs', 'table_distribution')
ORDER BY 1;
