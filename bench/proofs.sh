#!/usr/bin/env bash
# Proof benchmark: builds one organization of N receipts (default 1,000,000) on a throwaway
# cluster, then times inclusion proofs, consistency proofs, roots and checkpoint bodies inside
# the server (clock_timestamp around each call, so client round trips are not counted) and
# end to end through psql. Prints ms per operation: mean, p50, p99, max.
#   bench/proofs.sh [N] [SAMPLES]
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$DFD_ROOT"
N=${1:-1000000}
SAMPLES=${2:-500}

dfd_bench_cluster

dfd_bench_machine
echo "postgres: $(psql -XAtc 'SHOW server_version'), fsync off (throwaway cluster)"
psql -qX -c "CREATE EXTENSION defendable"

start=$(date +%s.%N)
# appended in batches of 100,000 per transaction, as a bulk load would
for ((done_n = 0; done_n < N; done_n += 100000)); do
    batch=$(( N - done_n < 100000 ? N - done_n : 100000 ))
    psql -qX -c "SELECT count(*) FROM (SELECT defendable.append_receipt('0190a5e2-1c9f-7b3e-8a41-6f2d9c0e7b15', 'dataset.download', jsonb_build_object('slug', 'census', 'n', i), '{slug}') FROM generate_series(1, $batch) i) s" >/dev/null
done
end=$(date +%s.%N)
awk -v n="$N" -v a="$start" -v b="$end" \
    'BEGIN { printf "built %d receipts in %.1f s (%.0f receipts/s, Merkle nodes included)\n", n, b - a, n / (b - a) }'
psql -qX -c "VACUUM ANALYZE"
PGOPTIONS="-c bench.samples=$SAMPLES" psql -X <<'SQL'
\set org '''0190a5e2-1c9f-7b3e-8a41-6f2d9c0e7b15'''
SELECT count(*) AS stored_merkle_nodes, pg_size_pretty(pg_total_relation_size('defendable.merkle_nodes')) AS size
FROM defendable.merkle_nodes;
CREATE TEMP TABLE timings (op text, ms float8);
DO $$
DECLARE
    org uuid := '0190a5e2-1c9f-7b3e-8a41-6f2d9c0e7b15';
    n bigint := (SELECT max(seq) FROM defendable.receipts WHERE org_id = org);
    s int := current_setting('bench.samples')::int;
    t0 timestamptz; seq bigint; m bigint; p bytea[]; r bytea; b text;
BEGIN
    PERFORM setseed(0.42);
    FOR i IN 1..s LOOP
        seq := 1 + floor(random() * n)::bigint;
        t0 := clock_timestamp();
        p := defendable.inclusion_proof(org, seq);
        INSERT INTO timings VALUES ('inclusion_proof (tree of N)', extract(epoch FROM clock_timestamp() - t0) * 1000);
        m := 1 + floor(random() * n)::bigint;
        t0 := clock_timestamp();
        p := defendable.consistency_proof(org, m);
        INSERT INTO timings VALUES ('consistency_proof (m -> N)', extract(epoch FROM clock_timestamp() - t0) * 1000);
        t0 := clock_timestamp();
        r := defendable.merkle_root(org, m);
        INSERT INTO timings VALUES ('merkle_root (random size)', extract(epoch FROM clock_timestamp() - t0) * 1000);
        t0 := clock_timestamp();
        b := defendable.checkpoint_body(org, 'ledger.example.com');
        INSERT INTO timings VALUES ('checkpoint_body (size N)', extract(epoch FROM clock_timestamp() - t0) * 1000);
    END LOOP;
END $$;
SELECT op, count(*) AS samples, round(avg(ms)::numeric, 3) AS mean_ms,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 3) AS p50_ms,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 3) AS p99_ms,
       round(max(ms)::numeric, 3) AS max_ms
FROM timings GROUP BY op ORDER BY op;
SQL
