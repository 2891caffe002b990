#!/usr/bin/env bash
# Quota benchmark: defendable.quota_take throughput on a throwaway cluster, with pgbench custom
# scripts (-n -M prepared). Two shapes, each from 1, 8 and 16 clients:
#   same key       every client takes from one (scope, subject, window) row: the upsert serializes
#                  on that row's lock, as many requests sharing one IP or email would;
#   distinct keys  each client takes from its own row (subject = client id).
# The limit (1,000,000,000) is never reached and the window is one hour, so every take is allowed
# and writes. Each run uses its own scope, so no run updates a row another run bloated.
# Prints tps per shape and client count; asserts nothing.
#   bench/quota.sh [SECONDS]      (default 10 per run, 6 runs)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$DFD_ROOT"
SECONDS_PER_RUN=${1:-10}
CLIENTS=(1 8 16)
LIMIT=1000000000

dfd_bench_cluster

dfd_bench_machine
echo "postgres: $(psql -XAtc 'SHOW server_version'), fsync off, synchronous_commit off (throwaway cluster)"
psql -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION defendable"
psql -XAt -c "SELECT 'sanity: ' || row_to_json(q)::text FROM defendable.quota_take('bench.sanity', 'x', $LIMIT, interval '1 hour', 1) q"

# run_pgbench SCRIPT CLIENTS: prints the tps pgbench reports (without initial connection time)
run_pgbench() {
    local script=$1 clients=$2 threads log
    threads=$(( clients < $(nproc) ? clients : $(nproc) ))
    log="$work/pgbench.$(basename "$script").$clients.log"
    if ! pgbench -n -M prepared -c "$clients" -j "$threads" -T "$SECONDS_PER_RUN" -f "$script" >"$log" 2>&1; then
        echo "pgbench failed ($script, $clients clients):" >&2
        tail -n 20 "$log" >&2
        return 1
    fi
    # pgbench continues past per-client errors in some modes: show them rather than hide them
    if grep -qiE 'error|aborted' "$log"; then grep -iE 'error|aborted' "$log" | head -n 5 >&2; fi
    awk '/^tps = / { print $3; found = 1 } END { if (!found) exit 1 }' "$log"
}

declare -A tps
for c in "${CLIENTS[@]}"; do
    # same key: one row for every client of this run
    cat >"$work/same.$c.sql" <<SQL
SELECT allowed, used, remaining, reset_at FROM defendable.quota_take('bench.same.c$c', 'shared', $LIMIT, interval '1 hour', 1);
SQL
    # distinct keys: the subject is the client id, so each client has its own row
    cat >"$work/distinct.$c.sql" <<SQL
SELECT allowed, used, remaining, reset_at FROM defendable.quota_take('bench.distinct.c$c', 'client-' || :client_id::text, $LIMIT, interval '1 hour', 1);
SQL
    tps[same.$c]=$(run_pgbench "$work/same.$c.sql" "$c")
    tps[distinct.$c]=$(run_pgbench "$work/distinct.$c.sql" "$c")
    echo "ran ${SECONDS_PER_RUN}s x2 with $c client(s)" >&2
done

# what the runs wrote: rows per shape and takes counted (a window boundary inside a run adds rows)
psql -XAt -c "SELECT 'counted, ' || split_part(scope, '.', 2) || ': ' || count(*) || ' rows, ' || sum(used) || ' takes, max used ' || max(used) FROM defendable.quota_counters WHERE scope LIKE 'bench.%.c%' GROUP BY split_part(scope, '.', 2) ORDER BY 1"

echo
echo "quota_take, ${SECONDS_PER_RUN} s per run, pgbench -n -M prepared, limit $LIMIT, window 1 hour"
printf '%-8s | %14s | %18s\n' "clients" "same key tps" "distinct keys tps"
printf '%-8s-+-%14s-+-%18s\n' "--------" "--------------" "------------------"
for c in "${CLIENTS[@]}"; do
    printf '%-8s | %14.0f | %18.0f\n' "$c" "${tps[same.$c]}" "${tps[distinct.$c]}"
done
