#!/usr/bin/env bash
# Where the time goes: perf profiles of one backend during a bulk append of N receipts (default
# 200,000), during verify_ledger of them, and during N / 10 appends of one receipt per
# transaction (a procedure committing after each), printed by library and by function (inclusive).
# Needs perf (linux-perf) and permission to profile other processes (root, or
# kernel.perf_event_paranoid <= 1). Symbols of the postgres binary itself show only when its
# debug symbols are installed; the split by library and defendable.so's own functions do not
# need them.
#   bench/profile.sh [N]
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$DFD_ROOT"
N=${1:-200000}
command -v perf >/dev/null || { echo "profile: perf is not installed (apt-get install linux-perf)"; exit 2; }
dfd_bench_cluster
psql -qX -c "CREATE EXTENSION defendable"
org=0190a5e2-1c9f-7b3e-8a41-6f2d9c0e7b15

# profile QUERY NAME: runs QUERY in a session of its own and profiles that backend meanwhile
profile() {
    local pid
    PGAPPNAME=dfd-profile psql -qX -c "SELECT pg_sleep(0.5)" -c "$1" >/dev/null &
    local client=$!
    for _ in $(seq 1 50); do
        pid=$(psql -XAt -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'dfd-profile'")
        [ -n "$pid" ] && break
        sleep 0.05
    done
    perf record -q -F 999 -g -p "$pid" -o "$work/$2.data" 2>/dev/null &
    local rec=$!
    wait "$client"
    kill -INT "$rec" 2>/dev/null; wait "$rec" 2>/dev/null || true
    echo "== $2: by library"
    perf report -i "$work/$2.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | sed -n '1,8p'
    echo "== $2: inclusive, by function (top 30)"
    perf report -i "$work/$2.data" --children --sort sym --stdio -g none 2>/dev/null |
        grep -E '^ +[0-9]' | grep -v ' 0x0000' | sed -n '1,30p'
}
profile "SELECT count(*) FROM (SELECT defendable.append_receipt('$org', 'dataset.download', jsonb_build_object('slug', 'census', 'n', i), '{slug}') FROM generate_series(1, $N) i) s" bulk-append
profile "SELECT * FROM defendable.verify_ledger('$org'); SELECT * FROM defendable.verify_ledger('$org')" verify
# one receipt per transaction, the shape of the pgbench modes and of the gateway's POST /receipts,
# without a client: a procedure that commits after every receipt (N / 10 transactions)
psql -qX -v ON_ERROR_STOP=1 <<'SQL'
CREATE PROCEDURE profile_loop(o uuid, n int) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..n LOOP
        PERFORM defendable.append_receipt(o, 'dataset.download',
                                          jsonb_build_object('slug', 'census', 'n', i), '{slug}');
        COMMIT;
    END LOOP;
END $$;
SQL
profile "CALL profile_loop('0190a5e2-1c9f-7b3e-8a41-6f2d9c0e7b16', $((N / 10)))" one-receipt-transactions
