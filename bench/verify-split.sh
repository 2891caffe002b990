#!/usr/bin/env bash
# Split verification: ORGS organizations of PER receipts each (default 8 x 125,000 = 1,000,000),
# verified by one call, SELECT * FROM defendable.verify_ledger(), and by scripts/verify-parallel
# with 1 worker and with one worker per core (wall clock of each, best of 3). The ratio says how
# far verification of many orgs scales out: on one node, with the cores; on Citus, with the
# shards (docs/scaling.md). Only measures and prints; asserts no timing.
#   bench/verify-split.sh [ORGS] [PER]
# ORGS * PER < 100000 is a smoke run: it checks the script, its figures mean nothing.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$DFD_ROOT"
ORGS=${1:-8}
PER=${2:-125000}
N=$((ORGS * PER))
SMOKE=false; (( N < 100000 )) && SMOKE=true

dfd_bench_cluster

dfd_bench_machine
echo "postgres: $(psql -XAtc 'SHOW server_version'), fsync off (throwaway cluster)"
$SMOKE && echo "SMOKE run (< 100000 receipts): checks the script only, the figures mean nothing"
psql -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION defendable"
for ((o = 1; o <= ORGS; o++)); do
    org=$(printf 'aaaaaaaa-0000-4000-8000-%012d' "$o")
    for ((done_n = 0; done_n < PER; done_n += 100000)); do
        batch=$(( PER - done_n < 100000 ? PER - done_n : 100000 ))
        psql -qX -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM (SELECT defendable.append_receipt('$org', 'dataset.download', jsonb_build_object('slug', 'census', 'n', i), '{slug}') FROM generate_series(1, $batch) i) s" >/dev/null
    done
done
psql -qX -c "VACUUM ANALYZE" >/dev/null
echo "built $ORGS orgs x $PER receipts"

best() { # best COMMAND...: the shortest wall clock of three runs, in seconds
    local b="" s e t
    for _ in 1 2 3; do
        s=$(date +%s.%N)
        "$@" >/dev/null || { echo "FAIL: $*" >&2; exit 1; }
        e=$(date +%s.%N)
        t=$(awk -v a="$s" -v b="$e" 'BEGIN { printf "%.3f", b - a }')
        if [ -z "$b" ] || awk -v t="$t" -v b="$b" 'BEGIN { exit !(t < b) }'; then b=$t; fi
    done
    echo "$b"
}
single=$(best psql -XAtq -c 'SELECT count(*) FILTER (WHERE ok) FROM defendable.verify_ledger()')
one=$(best scripts/verify-parallel -j 1)
cores=$(nproc)
many=$(best scripts/verify-parallel -j "$cores")

awk -v n="$N" -v s="$single" -v o="$one" -v m="$many" -v c="$cores" -v orgs="$ORGS" -v per="$PER" 'BEGIN {
    printf "%-44s %8.2f s  %10.0f receipts/s\n", "verify_ledger() (one call, every org)", s, n / s
    printf "%-44s %8.2f s  %10.0f receipts/s\n", "scripts/verify-parallel -j 1", o, n / o
    printf "%-44s %8.2f s  %10.0f receipts/s\n", "scripts/verify-parallel -j " c, m, n / m
    printf "split over %d workers / one call: %.2fx\n", c, s / m
    printf "summary: {\"bench\":\"verify-split\",\"orgs\":%d,\"per_org\":%d,\"single_s\":%.3f,\"j1_s\":%.3f,\"jn_s\":%.3f,\"workers\":%d}\n", orgs, per, s, o, m, c
}'
