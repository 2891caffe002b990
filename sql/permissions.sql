-- Permissions and the append-only rule: nothing is granted to PUBLIC, writes are refused for
-- every role (superuser included) except through append_receipt, and SECURITY DEFINER
-- functions pin their search_path.
\set orgp '''99999999-9999-4999-8999-999999999999'''
SELECT (defendable.append_receipt(:orgp, 'a.b', '{"x": 1}')).seq;

-- catalog checks
SELECT p.proname, p.prosecdef AS secdef, p.proconfig
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'defendable' ORDER BY 1;
SELECT count(*) AS functions_executable_by_public
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'defendable'
WHERE has_function_privilege('public', p.oid, 'EXECUTE');
SELECT c.relname, c.relacl IS NULL OR NOT EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = 0) AS nothing_for_public
FROM pg_class c WHERE c.relnamespace = 'defendable'::regnamespace AND c.relkind = 'r' ORDER BY 1;
SELECT has_schema_privilege('public', 'defendable', 'USAGE') AS public_schema_usage;
-- the ledger tables are in every pg_dump
SELECT array_agg(c.relname ORDER BY c.relname) AS dumped
FROM pg_extension e, unnest(e.extconfig) t(oid) JOIN pg_class c ON c.oid = t.oid WHERE e.extname = 'defendable';

-- a role with no grants can do nothing
CREATE ROLE regress_dfd_nobody;
CREATE ROLE regress_dfd_app;
GRANT USAGE ON SCHEMA defendable TO regress_dfd_app;
GRANT EXECUTE ON FUNCTION defendable.append_receipt(uuid, text, jsonb, text[]), defendable.public_projection(uuid, bigint) TO regress_dfd_app;
SET ROLE regress_dfd_nobody;
SELECT defendable.append_receipt(:orgp, 'a.b', '{}');
SELECT count(*) FROM defendable.receipts;
RESET ROLE;
-- the application role appends through the function but cannot touch the tables
SET ROLE regress_dfd_app;
SELECT (defendable.append_receipt(:orgp, 'a.b', '{"x": 2}', '{x}')).seq;
SELECT defendable.public_projection(:orgp, 2) ->> 'seq' AS projected_seq;
SELECT count(*) FROM defendable.receipts;
INSERT INTO defendable.receipts SELECT * FROM defendable.receipts;
UPDATE defendable.heads SET seq = 0;
SELECT * FROM defendable.verify_ledger(:orgp);
-- a caller's search_path cannot redirect the function (it pins pg_catalog, pg_temp)
SET search_path = evil, public;
SELECT (defendable.append_receipt(:orgp, 'a.b', '{}')).seq;
RESET search_path;
RESET ROLE;

-- the superuser is refused too: every write path into receipts, disclosures and heads
\set VERBOSITY default
INSERT INTO defendable.receipts SELECT org_id, 3, ts, kind, hash, fields, hash FROM defendable.receipts WHERE org_id = :orgp AND seq = 2;
\set VERBOSITY sqlstate
UPDATE defendable.receipts SET kind = 'c.d' WHERE org_id = :orgp;
DELETE FROM defendable.receipts WHERE org_id = :orgp;
TRUNCATE defendable.receipts;
TRUNCATE defendable.receipts, defendable.disclosures, defendable.heads CASCADE;
MERGE INTO defendable.receipts r USING (SELECT :orgp::uuid AS o) s ON r.org_id = s.o AND r.seq = 1
    WHEN MATCHED THEN UPDATE SET kind = 'c.d';
MERGE INTO defendable.receipts r USING (SELECT :orgp::uuid AS o) s ON r.org_id = s.o AND r.seq = 42
    WHEN NOT MATCHED THEN INSERT VALUES (s.o, 42, now(), 'c.d', '\x00', '{}', '\x00');
MERGE INTO defendable.receipts r USING (SELECT :orgp::uuid AS o) s ON r.org_id = s.o AND r.seq = 1
    WHEN MATCHED THEN DELETE;
COPY defendable.receipts FROM stdin;
99999999-9999-4999-8999-999999999999	50	2026-01-01 00:00:00+00	c.d	\\x00	{}	\\x00
\.
UPDATE defendable.disclosures SET field_values = '{}' WHERE org_id = :orgp;
DELETE FROM defendable.disclosures WHERE org_id = :orgp;
INSERT INTO defendable.heads VALUES ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 1, '\x00');
UPDATE defendable.heads SET seq = 0 WHERE org_id = :orgp;
DELETE FROM defendable.heads WHERE org_id = :orgp;
\set VERBOSITY default
-- the trigger functions cannot be called directly
SELECT defendable.guard_write();
-- restore mode (for pg_restore) lets a superuser load rows; a plain role cannot turn it on
SET ROLE regress_dfd_app;
SET defendable.restore_mode = on;
RESET ROLE;
-- a superuser in restore mode can load a row, as pg_restore does; verification then judges it
BEGIN;
SET LOCAL defendable.restore_mode = on;
INSERT INTO defendable.receipts SELECT org_id, 4, ts, kind, hash, fields, hash FROM defendable.receipts WHERE org_id = :orgp AND seq = 3;
SELECT receipts, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgp);
ROLLBACK;
SELECT receipts, head_seq, ok FROM defendable.verify_ledger(:orgp);

DROP OWNED BY regress_dfd_app;
DROP ROLE regress_dfd_app;
DROP ROLE regress_dfd_nobody;
