-- Database roles: defendable_gateway may only EXECUTE the API functions (no table privilege at
-- all), defendable_auditor may read the ledger and run verification, PUBLIC has nothing, and
-- row-level security hides rows from any role that is ever granted a table by mistake.
-- errors raised inside the API functions are shown without their PL/pgSQL call stack
\set SHOW_CONTEXT never
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'defendable\_%' ORDER BY 1;

-- no table privilege for PUBLIC or the gateway, on any table of the schema
SELECT count(*) AS tables,
       count(*) FILTER (WHERE has_table_privilege('defendable_gateway', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')) AS gateway_privileged,
       count(*) FILTER (WHERE c.relacl IS NOT NULL AND EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = 0)) AS public_privileged,
       count(*) FILTER (WHERE NOT c.relrowsecurity) AS without_rls
FROM pg_class c WHERE c.relnamespace = 'defendable'::regnamespace AND c.relkind = 'r';
-- what the auditor may read, and that it may write nothing
SELECT c.relname, has_table_privilege('defendable_auditor', c.oid, 'SELECT') AS auditor_reads,
       has_table_privilege('defendable_auditor', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') AS auditor_writes
FROM pg_class c WHERE c.relnamespace = 'defendable'::regnamespace AND c.relkind = 'r' ORDER BY 1;
-- which functions each role may call (every function of the extension is listed)
SELECT p.proname, has_function_privilege('defendable_gateway', p.oid, 'EXECUTE') AS gateway,
       has_function_privilege('defendable_auditor', p.oid, 'EXECUTE') AS auditor,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public,
       p.prosecdef AS secdef, p.proconfig IS NOT NULL AS pinned
FROM pg_proc p WHERE p.pronamespace = 'defendable'::regnamespace ORDER BY 1;
-- every SECURITY DEFINER function pins its search_path
SELECT count(*) AS definer_functions_without_pinned_path FROM pg_proc p
WHERE p.pronamespace = 'defendable'::regnamespace AND p.prosecdef
  AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false);

-- acting as the gateway: API calls work, tables are out of reach
INSERT INTO defendable.users (email) VALUES ('roles@x.example');
SELECT user_id AS u FROM defendable.users WHERE email = 'roles@x.example' \gset
SET ROLE defendable_gateway;
SELECT org_name FROM defendable.org_create(:'u', now(), 'Roles Org');
SELECT allowed FROM defendable.quota_take('roles.test', 'x', 1, interval '1 minute');
SELECT defendable.auth_request('someone@x.example');
SELECT count(*) FROM defendable.receipts;
SELECT count(*) FROM defendable.users;
SELECT count(*) FROM defendable.quota_counters;
SELECT defendable.append_receipt('00000000-0000-4000-8000-000000000001', 'a.b', '{}');
SELECT defendable.merkle_rebuild();
SELECT defendable.erase_field('00000000-0000-4000-8000-000000000001', 1, 'x', 'y');
SELECT defendable.check_actor(:'u', now());
RESET ROLE;

-- acting as the auditor: read and verify, nothing else
SET ROLE defendable_auditor;
SELECT count(*) > 0 AS reads_receipts FROM defendable.receipts;
SELECT bool_and(ok) AS ledger_ok FROM defendable.verify_ledger();
SELECT count(*) FROM defendable.users;
SELECT count(*) FROM defendable.disclosures;
SELECT defendable.org_create(:'u', now(), 'Audit Org');
DELETE FROM defendable.receipts;
RESET ROLE;

-- defence in depth: a role granted a table by mistake still sees no row
CREATE ROLE regress_dfd_mistake;
GRANT USAGE ON SCHEMA defendable TO regress_dfd_mistake;
GRANT SELECT ON defendable.users, defendable.api_keys, defendable.receipts TO regress_dfd_mistake;
SET ROLE regress_dfd_mistake;
SELECT (SELECT count(*) FROM defendable.users) AS users, (SELECT count(*) FROM defendable.api_keys) AS keys,
       (SELECT count(*) FROM defendable.receipts) AS receipts;
RESET ROLE;
REVOKE ALL ON defendable.users, defendable.api_keys, defendable.receipts FROM regress_dfd_mistake;
REVOKE ALL ON SCHEMA defendable FROM regress_dfd_mistake;
DROP ROLE regress_dfd_mistake;
