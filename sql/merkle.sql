-- Merkle tree (RFC 9162): roots, inclusion and consistency proofs for every size 1..64, checked
-- against a naive reference written here in PL/pgSQL straight from the RFC's recursive
-- definitions (MTH, PATH, SUBPROOF), and proofs checked by the independent verifiers.
\set orgm '''aaaaaaaa-1111-4111-8111-000000000001'''
SELECT count(*) FROM (SELECT defendable.append_receipt(:orgm, 'run.complete', jsonb_build_object('run', i)) FROM generate_series(1, 64) i) s;

CREATE TEMP TABLE ref_leaf AS
    SELECT seq - 1 AS i, sha256('\x00'::bytea || hash) AS h FROM defendable.receipts WHERE org_id = :orgm;
CREATE TEMP TABLE ref_memo (lo bigint, n bigint, h bytea, PRIMARY KEY (lo, n));
-- MTH(D[lo:lo+n])
CREATE FUNCTION pg_temp.mth(lo bigint, n bigint) RETURNS bytea LANGUAGE plpgsql AS $$
DECLARE k bigint := 1; r bytea;
BEGIN
    IF n = 0 THEN RETURN sha256(''); END IF;
    IF n = 1 THEN RETURN (SELECT h FROM ref_leaf WHERE i = lo); END IF;
    SELECT h INTO r FROM ref_memo m WHERE m.lo = mth.lo AND m.n = mth.n;
    IF r IS NOT NULL THEN RETURN r; END IF;
    WHILE k * 2 < n LOOP k := k * 2; END LOOP;
    r := sha256('\x01'::bytea || pg_temp.mth(lo, k) || pg_temp.mth(lo + k, n - k));
    INSERT INTO ref_memo VALUES (lo, n, r);
    RETURN r;
END $$;
-- PATH(m, D[lo:lo+n])
CREATE FUNCTION pg_temp.path(m bigint, lo bigint, n bigint) RETURNS bytea[] LANGUAGE plpgsql AS $$
DECLARE k bigint := 1;
BEGIN
    IF n = 1 THEN RETURN '{}'; END IF;
    WHILE k * 2 < n LOOP k := k * 2; END LOOP;
    IF m < k THEN RETURN pg_temp.path(m, lo, k) || pg_temp.mth(lo + k, n - k); END IF;
    RETURN pg_temp.path(m - k, lo + k, n - k) || pg_temp.mth(lo, k);
END $$;
-- SUBPROOF(m, D[lo:lo+n], b)
CREATE FUNCTION pg_temp.subproof(m bigint, lo bigint, n bigint, b boolean) RETURNS bytea[] LANGUAGE plpgsql AS $$
DECLARE k bigint := 1;
BEGIN
    IF m = n THEN
        IF b THEN RETURN '{}'; END IF;
        RETURN ARRAY[pg_temp.mth(lo, n)];
    END IF;
    WHILE k * 2 < n LOOP k := k * 2; END LOOP;
    IF m <= k THEN RETURN pg_temp.subproof(m, lo, k, b) || pg_temp.mth(lo + k, n - k); END IF;
    RETURN pg_temp.subproof(m - k, lo + k, n - k, false) || pg_temp.mth(lo, k);
END $$;

-- roots of every size, and the empty tree
SELECT count(*) AS sizes, bool_and(defendable.merkle_root(:orgm, n) = pg_temp.mth(0, n)) AS roots_match
FROM generate_series(0, 64) n;
SELECT defendable.merkle_root(:orgm, 0) = sha256('') AS empty_root,
       defendable.merkle_root(:orgm) = defendable.merkle_root(:orgm, 64) AS default_is_current;
-- inclusion proofs: every leaf of every size
SELECT count(*) AS proofs,
       bool_and(defendable.inclusion_proof(:orgm, m + 1, n) = pg_temp.path(m, 0, n)) AS equal_to_reference,
       bool_and(defendable.verify_inclusion(r.hash, m + 1, n, defendable.inclusion_proof(:orgm, m + 1, n), pg_temp.mth(0, n))) AS verify
FROM generate_series(1, 64) n, generate_series(0, 63) m, defendable.receipts r
WHERE m < n AND r.org_id = :orgm AND r.seq = m + 1;
-- consistency proofs: every pair of sizes
SELECT count(*) AS proofs,
       bool_and(defendable.consistency_proof(:orgm, m, n) = pg_temp.subproof(m, 0, n, true)) AS equal_to_reference,
       bool_and(defendable.verify_consistency(m, n, pg_temp.mth(0, m), pg_temp.mth(0, n), defendable.consistency_proof(:orgm, m, n))) AS verify
FROM generate_series(1, 64) n, generate_series(1, 64) m WHERE m <= n;

-- the verifiers refuse what does not prove anything
SELECT defendable.verify_inclusion(r.hash, 5, 64, p, defendable.merkle_root(:orgm, 64)) AS genuine,
       defendable.verify_inclusion(r.hash, 6, 64, p, defendable.merkle_root(:orgm, 64)) AS wrong_index,
       -- the size fixes only the proof's shape: 33..64 all give leaf 4 the same path, 20 does not
       defendable.verify_inclusion(r.hash, 5, 20, p, defendable.merkle_root(:orgm, 64)) AS wrong_size,
       defendable.verify_inclusion(r.hash, 5, 64, p[2:], defendable.merkle_root(:orgm, 64)) AS short_proof,
       defendable.verify_inclusion(r.hash, 5, 64, p || p[1], defendable.merkle_root(:orgm, 64)) AS long_proof,
       defendable.verify_inclusion(r.hash, 5, 64, array_replace(p, p[3], sha256(p[3])), defendable.merkle_root(:orgm, 64)) AS altered_hash,
       defendable.verify_inclusion(r.hash, 5, 64, p, defendable.merkle_root(:orgm, 63)) AS wrong_root
FROM defendable.receipts r, defendable.inclusion_proof(:orgm, 5, 64) p WHERE r.org_id = :orgm AND r.seq = 5;
SELECT defendable.verify_consistency(10, 40, defendable.merkle_root(:orgm, 10), defendable.merkle_root(:orgm, 40), p) AS genuine,
       defendable.verify_consistency(11, 40, defendable.merkle_root(:orgm, 10), defendable.merkle_root(:orgm, 40), p) AS wrong_old_size,
       defendable.verify_consistency(10, 40, defendable.merkle_root(:orgm, 11), defendable.merkle_root(:orgm, 40), p) AS wrong_old_root,
       defendable.verify_consistency(10, 40, defendable.merkle_root(:orgm, 10), defendable.merkle_root(:orgm, 40), p[2:]) AS short_proof,
       defendable.verify_consistency(0, 40, sha256(''), defendable.merkle_root(:orgm, 40), '{}') AS from_zero
FROM defendable.consistency_proof(:orgm, 10, 40) p;

-- stored nodes: perfect subtrees of 16 leaves and more, nothing below
SELECT level, count(*) FROM defendable.merkle_nodes WHERE org_id = :orgm GROUP BY level ORDER BY level;
SELECT bool_and(hash = pg_temp.mth(idx << level, 1::bigint << level)) AS nodes_match_reference
FROM defendable.merkle_nodes WHERE org_id = :orgm;

-- bulk appends across transactions and savepoints keep the tree right
BEGIN;
SELECT count(*) FROM (SELECT defendable.append_receipt(:orgm, 'run.complete', jsonb_build_object('run', i)) FROM generate_series(65, 100) i) s;
SAVEPOINT sp;
SELECT count(*) FROM (SELECT defendable.append_receipt(:orgm, 'run.lost', '{}') FROM generate_series(1, 40) i) s;
ROLLBACK TO SAVEPOINT sp;
SELECT count(*) FROM (SELECT defendable.append_receipt(:orgm, 'run.complete', jsonb_build_object('run', i)) FROM generate_series(101, 130) i) s;
COMMIT;
INSERT INTO ref_leaf SELECT seq - 1, sha256('\x00'::bytea || hash) FROM defendable.receipts WHERE org_id = :orgm AND seq > 64;
SELECT max(seq) AS receipts, defendable.merkle_root(:orgm) = pg_temp.mth(0, max(seq)) AS root_matches,
       (SELECT bool_and(hash = pg_temp.mth(idx << level, 1::bigint << level)) FROM defendable.merkle_nodes WHERE org_id = :orgm) AS nodes_match
FROM defendable.receipts WHERE org_id = :orgm;

-- losing stored nodes is reported, and merkle_rebuild restores them exactly
CREATE TEMP TABLE nodes_before AS SELECT * FROM defendable.merkle_nodes WHERE org_id = :orgm;
SET session_replication_role = replica;
DELETE FROM defendable.merkle_nodes WHERE org_id = :orgm AND level = 5;
RESET session_replication_role;
SELECT defendable.merkle_root(:orgm, 100);
SELECT defendable.merkle_rebuild(:orgm) AS nodes;
SELECT (SELECT count(*) FROM nodes_before) = (SELECT count(*) FROM defendable.merkle_nodes WHERE org_id = :orgm) AS same_count,
       NOT EXISTS (SELECT * FROM nodes_before EXCEPT SELECT * FROM defendable.merkle_nodes WHERE org_id = :orgm) AS same_nodes;

-- bad arguments
SELECT defendable.merkle_root(:orgm, 131);
SELECT defendable.merkle_root(:orgm, -1);
SELECT defendable.inclusion_proof(:orgm, 0);
SELECT defendable.inclusion_proof(:orgm, 50, 49);
SELECT defendable.consistency_proof(:orgm, 0, 10);
SELECT defendable.consistency_proof(:orgm, 11, 10);
SELECT defendable.merkle_root(NULL);
SELECT defendable.verify_inclusion('\x00', 1, 1, '{}', sha256(''));
