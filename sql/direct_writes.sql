-- append_receipt writes its rows with the executor's single-row insert and reads the head and the
-- last receipt by primary key, not through planned statements (extension/direct.c). That is only
-- allowed where SQL would do exactly the same; everywhere else the append must behave as the
-- INSERT and SELECT statements it replaces: the owner's privileges, row-level security, the
-- table's triggers of every kind, and columns with defaults added after the fact.
\set org '''dddddddd-4444-4444-8444-000000000001'''
SELECT count(*) FROM (SELECT defendable.append_receipt(:org, 'run.complete', jsonb_build_object('run', i), '{run}') FROM generate_series(1, 3) i) s;

-- 0. A read-only transaction refuses the append with SQL's own error (the first row it would
--    write is the receipt), for an org that has a head and for a new one.
BEGIN READ ONLY;
SELECT (defendable.append_receipt(:org, 'run.complete', '{"run": 4}', '{run}')).seq;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN READ ONLY;
SELECT (defendable.append_receipt('dddddddd-4444-4444-8444-000000000002', 'run.complete', '{}')).seq;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- 1. The function's owner is who writes. A non-superuser owner that may read everything but not
--    insert receipts is refused, as its INSERT statement would be.
CREATE ROLE regress_append_owner BYPASSRLS;
GRANT USAGE ON SCHEMA defendable TO regress_append_owner;
GRANT SELECT ON ALL TABLES IN SCHEMA defendable TO regress_append_owner;
ALTER FUNCTION defendable.append_receipt(uuid, text, jsonb, text[]) OWNER TO regress_append_owner;
SELECT (defendable.append_receipt(:org, 'run.complete', '{"run": 4}', '{run}')).seq;
\echo :LAST_ERROR_SQLSTATE
-- rows granted, but not the update of the head the org already has: refused, as its UPDATE
GRANT INSERT ON defendable.receipts, defendable.disclosures, defendable.merkle_nodes TO regress_append_owner;
GRANT INSERT ON defendable.heads TO regress_append_owner;
SELECT (defendable.append_receipt(:org, 'run.complete', '{"run": 4}', '{run}')).seq;
\echo :LAST_ERROR_SQLSTATE
-- with the update granted it appends, and the chain holds
GRANT UPDATE ON defendable.heads TO regress_append_owner;
SELECT (defendable.append_receipt(:org, 'run.complete', '{"run": 4}', '{run}')).seq;

-- 2. Row-level security applies to an owner without BYPASSRLS. Policies that let it read but
--    not insert receipts: refused, as SQL refuses the row.
ALTER ROLE regress_append_owner NOBYPASSRLS;
CREATE POLICY regress_read_receipts ON defendable.receipts FOR SELECT TO regress_append_owner USING (true);
CREATE POLICY regress_read_heads ON defendable.heads FOR SELECT TO regress_append_owner USING (true);
SELECT (defendable.append_receipt(:org, 'run.complete', '{"run": 5}', '{run}')).seq;
\echo :LAST_ERROR_SQLSTATE
-- insert policies everywhere (and updates of the head): it appends
CREATE POLICY regress_add_receipts ON defendable.receipts FOR INSERT TO regress_append_owner WITH CHECK (true);
CREATE POLICY regress_add_disclosures ON defendable.disclosures FOR INSERT TO regress_append_owner WITH CHECK (true);
CREATE POLICY regress_add_nodes ON defendable.merkle_nodes FOR INSERT TO regress_append_owner WITH CHECK (true);
CREATE POLICY regress_add_heads ON defendable.heads FOR INSERT TO regress_append_owner WITH CHECK (true);
-- ... but none that lets it update the head: refused, and said so
SELECT (defendable.append_receipt(:org, 'run.complete', '{"run": 5}', '{run}')).seq;
\echo :LAST_ERROR_SQLSTATE
CREATE POLICY regress_move_heads ON defendable.heads FOR UPDATE TO regress_append_owner USING (true);
SELECT (defendable.append_receipt(:org, 'run.complete', '{"run": 5}', '{run}')).seq;
-- a head the policies hide from the owner reads as no head at all, as in SQL: the receipts it
-- does see then disagree with it, and nothing is appended
DROP POLICY regress_read_heads ON defendable.heads;
SELECT (defendable.append_receipt(:org, 'run.complete', '{"run": 6}', '{run}')).seq;
\echo :LAST_ERROR_SQLSTATE

ALTER FUNCTION defendable.append_receipt(uuid, text, jsonb, text[]) OWNER TO CURRENT_USER;
DROP POLICY regress_read_receipts ON defendable.receipts;
DROP POLICY regress_add_receipts ON defendable.receipts;
DROP POLICY regress_add_disclosures ON defendable.disclosures;
DROP POLICY regress_add_nodes ON defendable.merkle_nodes;
DROP POLICY regress_add_heads ON defendable.heads;
DROP POLICY regress_move_heads ON defendable.heads;
REVOKE ALL ON ALL TABLES IN SCHEMA defendable FROM regress_append_owner;
REVOKE ALL ON SCHEMA defendable FROM regress_append_owner;
DROP ROLE regress_append_owner;

-- 3. Triggers a DBA adds to the ledger's tables fire as they would for the INSERT or UPDATE
--    statement: statement-level ones (which the single-row routines never fire: such a table
--    is written with SQL) and BEFORE ROW ones (which they fire themselves).
CREATE TABLE regress_statement_log (tbl text);
CREATE FUNCTION regress_log_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.regress_statement_log VALUES (TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER regress_after_statement AFTER INSERT ON defendable.receipts
    FOR EACH STATEMENT EXECUTE FUNCTION regress_log_statement();
CREATE TRIGGER regress_head_statement AFTER UPDATE ON defendable.heads
    FOR EACH STATEMENT EXECUTE FUNCTION regress_log_statement();
-- a row trigger on the head's columns: the update names them as its UPDATE statement does
CREATE FUNCTION regress_log_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.regress_statement_log VALUES (TG_TABLE_NAME || ' row');
    RETURN NULL;
END $$;
CREATE TRIGGER regress_head_row AFTER UPDATE OF seq ON defendable.heads
    FOR EACH ROW EXECUTE FUNCTION regress_log_row();
SELECT (defendable.append_receipt(:org, 'run.complete', '{"run": 6}', '{run}')).seq;
SELECT tbl, count(*) AS statements_logged FROM regress_statement_log GROUP BY tbl ORDER BY tbl;
DROP TRIGGER regress_after_statement ON defendable.receipts;
DROP TRIGGER regress_head_statement ON defendable.heads;
DELETE FROM regress_statement_log;
-- without the statement trigger the head is written directly, and the row trigger still fires
SELECT (defendable.append_receipt(:org, 'run.complete', '{"run": 6}', '{run}')).seq;
SELECT tbl, count(*) AS rows_logged FROM regress_statement_log GROUP BY tbl ORDER BY tbl;
DROP TRIGGER regress_head_row ON defendable.heads;

CREATE FUNCTION regress_refuse_secret() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.field_values ? 'secret' THEN
        RAISE EXCEPTION 'no secrets here' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER regress_before_row BEFORE INSERT ON defendable.disclosures
    FOR EACH ROW EXECUTE FUNCTION regress_refuse_secret();
SELECT (defendable.append_receipt(:org, 'run.complete', '{"secret": "x"}', '{}')).seq;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER regress_before_row ON defendable.disclosures;

-- 4. A column added later gets its default, which only SQL computes; once dropped, the direct
--    path writes around the dropped column.
ALTER TABLE defendable.disclosures ADD COLUMN regress_note text NOT NULL DEFAULT 'from sql';
SELECT (defendable.append_receipt(:org, 'run.complete', '{"run": 7}', '{run}')).seq AS seq \gset
SELECT regress_note FROM defendable.disclosures WHERE org_id = :org AND seq = :seq;
ALTER TABLE defendable.disclosures DROP COLUMN regress_note;
SELECT (defendable.append_receipt(:org, 'run.complete', '{"run": 8}', '{run}')).seq;
SELECT field_values, public_fields FROM defendable.disclosures WHERE org_id = :org ORDER BY seq DESC LIMIT 1;

-- 5. Within a transaction the tables stay open from one receipt to the next (a statement that
--    appends many receipts opens them once). Whatever happens to them in between is still seen:
--    DDL of the same session (ALTER TABLE refuses a table the session holds open), a catalog change
--    made without DDL, savepoints rolled back around and inside a write, a trigger that appends
--    while a receipt is being written, and a prepared transaction.
BEGIN;
SELECT count(*) FROM (SELECT defendable.append_receipt(:org, 'run.complete', jsonb_build_object('run', i), '{run}') FROM generate_series(10, 12) i) s;
ALTER TABLE defendable.disclosures ADD COLUMN regress_note text NOT NULL DEFAULT 'from sql';
SELECT (defendable.append_receipt(:org, 'run.complete', '{"run": 13}', '{run}')).seq AS seq \gset
SELECT regress_note FROM defendable.disclosures WHERE org_id = :org AND seq = :seq;
ROLLBACK;
-- a trigger made live by a superuser's catalog update, not by DDL: the next receipt fires it
CREATE FUNCTION regress_log_before_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.regress_statement_log VALUES (TG_TABLE_NAME || ' before row');
    RETURN NEW;
END $$;
CREATE TRIGGER regress_before_row_log BEFORE INSERT ON defendable.receipts
    FOR EACH ROW EXECUTE FUNCTION regress_log_before_row();
ALTER TABLE defendable.receipts DISABLE TRIGGER regress_before_row_log;
DELETE FROM regress_statement_log;
BEGIN;
SELECT count(*) FROM (SELECT defendable.append_receipt(:org, 'run.complete', jsonb_build_object('run', i), '{run}') FROM generate_series(10, 11) i) s;
UPDATE pg_catalog.pg_trigger SET tgenabled = 'O' WHERE tgname = 'regress_before_row_log';
UPDATE pg_catalog.pg_class SET relhastriggers = true WHERE oid = 'defendable.receipts'::pg_catalog.regclass;
SELECT (defendable.append_receipt(:org, 'run.complete', '{"run": 12}', '{run}')).seq;
SELECT tbl, count(*) AS rows_logged FROM regress_statement_log GROUP BY tbl ORDER BY tbl;
ROLLBACK;
DROP TRIGGER regress_before_row_log ON defendable.receipts;
-- savepoints: appends rolled back to one, released in another, and one refused by a BEFORE ROW
-- trigger while its row was being written
CREATE TRIGGER regress_before_row BEFORE INSERT ON defendable.disclosures
    FOR EACH ROW EXECUTE FUNCTION regress_refuse_secret();
BEGIN;
SELECT count(*) FROM (SELECT defendable.append_receipt(:org, 'run.complete', jsonb_build_object('run', i), '{run}') FROM generate_series(20, 22) i) s;
SAVEPOINT a;
SELECT count(*) FROM (SELECT defendable.append_receipt(:org, 'run.complete', jsonb_build_object('run', i), '{run}') FROM generate_series(23, 25) i) s;
ROLLBACK TO a;
SAVEPOINT b;
SELECT (defendable.append_receipt(:org, 'run.complete', '{"run": 23}', '{run}')).seq;
RELEASE b;
SAVEPOINT c;
SELECT (defendable.append_receipt(:org, 'run.complete', '{"secret": "x"}', '{}')).seq;
ROLLBACK TO c;
SELECT count(*) FROM (SELECT defendable.append_receipt(:org, 'run.complete', jsonb_build_object('run', i), '{run}') FROM generate_series(24, 25) i) s;
COMMIT;
DROP TRIGGER regress_before_row ON defendable.disclosures;
SELECT array_agg((field_values->>'run')::int ORDER BY seq) AS runs_kept FROM defendable.disclosures WHERE org_id = :org AND (field_values->>'run')::int >= 20;
-- a BEFORE ROW trigger on receipts that appends to another org while each receipt is written
CREATE FUNCTION regress_echo() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kind = 'run.echo' THEN
        PERFORM defendable.append_receipt('dddddddd-4444-4444-8444-000000000003', 'run.echoed',
                                          jsonb_build_object('of', NEW.seq), '{of}');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER regress_echo BEFORE INSERT ON defendable.receipts
    FOR EACH ROW EXECUTE FUNCTION regress_echo();
SELECT array_agg(r.seq ORDER BY r.seq) AS echoed FROM (SELECT (defendable.append_receipt(:org, 'run.echo', jsonb_build_object('run', i), '{run}')).seq FROM generate_series(30, 32) i) r;
DROP TRIGGER regress_echo ON defendable.receipts;
SELECT array_agg((field_values->>'of')::int ORDER BY seq) AS echoes FROM defendable.disclosures WHERE org_id = 'dddddddd-4444-4444-8444-000000000003';
SELECT ok, receipts FROM defendable.verify_ledger('dddddddd-4444-4444-8444-000000000003');
-- a prepared transaction takes nothing of the session's open tables with it
BEGIN;
SELECT count(*) FROM (SELECT defendable.append_receipt(:org, 'run.complete', jsonb_build_object('run', i), '{run}') FROM generate_series(40, 42) i) s;
PREPARE TRANSACTION 'regress_direct_writes';
COMMIT PREPARED 'regress_direct_writes';
SELECT (defendable.append_receipt(:org, 'run.complete', '{"run": 43}', '{run}')).seq;

-- nothing refused above left a row: one gapless chain that verifies, and its head is its end
SELECT count(*) AS receipts, max(seq) AS last FROM defendable.receipts WHERE org_id = :org;
SELECT ok, receipts FROM defendable.verify_ledger(:org);
SELECT h.seq = r.seq AND h.hash = r.hash AS head_is_last
FROM defendable.heads h, LATERAL (SELECT seq, hash FROM defendable.receipts WHERE org_id = h.org_id ORDER BY seq DESC LIMIT 1) r
WHERE h.org_id = :org;

DROP FUNCTION regress_refuse_secret();
DROP FUNCTION regress_log_statement();
DROP FUNCTION regress_log_row();
DROP FUNCTION regress_echo();
DROP FUNCTION regress_log_before_row();
DROP TABLE regress_statement_log;
