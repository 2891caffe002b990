-- verify_ledger and verify_disclosures on ledgers that are intact, including the harder
-- paths: appends in the same transaction, aborted subtransactions, immediate head flushes.
\set orgv '''33333333-3333-4333-8333-333333333333'''
\set orgw '''44444444-4444-4444-8444-444444444444'''
\set nobody '''55555555-5555-4555-8555-555555555555'''

SELECT count(*) FROM (SELECT defendable.append_receipt(:orgv, 'auth.verify', jsonb_build_object('user', 'u_' || i, 'n', i), '{n}') FROM generate_series(1, 50) i) s;
SELECT receipts, head_seq, length(head_hash) AS head_hash_len, ok, first_bad_seq, detail FROM defendable.verify_ledger(:orgv);
-- an org without any receipt is trivially consistent
SELECT org_id, receipts, head_seq, ok, first_bad_seq, detail FROM defendable.verify_ledger(:nobody);
-- all orgs: one row each, all ok
SELECT count(*) > 0 AS some_orgs, bool_and(ok) AS all_ok, count(*) = count(DISTINCT org_id) AS one_row_per_org
FROM defendable.verify_ledger();
SELECT (SELECT count(DISTINCT org_id) FROM defendable.receipts) = (SELECT count(*) FROM defendable.verify_ledger()) AS every_org_listed;
SELECT org_id, checked, erased, ok, first_bad_seq, detail FROM defendable.verify_disclosures(:orgv);

-- inside the appending transaction the head is not written yet: verification uses this
-- backend's pending head and still passes
BEGIN;
SELECT (defendable.append_receipt(:orgw, 'x.a', '{}')).seq;
SELECT (defendable.append_receipt(:orgw, 'x.b', '{}')).seq;
SELECT receipts, ok, detail FROM defendable.verify_ledger(:orgw);
COMMIT;
SELECT receipts, head_seq, ok FROM defendable.verify_ledger(:orgw);

-- an aborted subtransaction takes its receipts with it; the chain continues without a gap
BEGIN;
SELECT (defendable.append_receipt(:orgw, 'x.c', '{}')).seq;
SAVEPOINT s1;
SELECT (defendable.append_receipt(:orgw, 'x.lost', '{}')).seq;
SELECT (defendable.append_receipt(:orgw, 'x.lost', '{}')).seq;
ROLLBACK TO SAVEPOINT s1;
SELECT (defendable.append_receipt(:orgw, 'x.d', '{}')).seq;
SAVEPOINT s2;
SELECT (defendable.append_receipt(:orgw, 'x.e', '{}')).seq;
RELEASE SAVEPOINT s2;
COMMIT;
SELECT seq, kind FROM defendable.receipts WHERE org_id = :orgw ORDER BY seq;
SELECT receipts, head_seq, ok, detail FROM defendable.verify_ledger(:orgw);

-- a PL/pgSQL exception block is a subtransaction too; its first append took the org lock
DO $$
BEGIN
    BEGIN
        PERFORM defendable.append_receipt('44444444-4444-4444-8444-444444444444', 'x.lost', '{}');
        RAISE EXCEPTION 'roll this block back';
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
    PERFORM defendable.append_receipt('44444444-4444-4444-8444-444444444444', 'x.f', '{}');
END $$;
SELECT max(seq), count(*) FILTER (WHERE kind = 'x.lost') AS lost FROM defendable.receipts WHERE org_id = :orgw;
SELECT receipts, head_seq, ok FROM defendable.verify_ledger(:orgw);

-- the deferred head flush may fire early (SET CONSTRAINTS ... IMMEDIATE); later appends in
-- the same transaction still reach the head at commit
BEGIN;
SET CONSTRAINTS ALL IMMEDIATE;
SELECT (defendable.append_receipt(:orgw, 'x.g', '{}')).seq;
SELECT (defendable.append_receipt(:orgw, 'x.h', '{}')).seq;
COMMIT;
SELECT receipts, head_seq, ok FROM defendable.verify_ledger(:orgw);

-- a rolled-back transaction leaves neither receipts nor a head behind
BEGIN;
SELECT (defendable.append_receipt(:nobody, 'x.gone', '{}')).seq;
ROLLBACK;
SELECT count(*) AS receipts, (SELECT count(*) FROM defendable.heads WHERE org_id = :nobody) AS heads
FROM defendable.receipts WHERE org_id = :nobody;

-- two-phase commit: the head is flushed at PREPARE and survives COMMIT PREPARED
BEGIN;
SELECT (defendable.append_receipt(:orgw, 'x.twophase', '{}')).seq;
PREPARE TRANSACTION 'dfd_2pc';
COMMIT PREPARED 'dfd_2pc';
SELECT receipts, head_seq, ok FROM defendable.verify_ledger(:orgw);
