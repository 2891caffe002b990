#!/usr/bin/env bash
# Gateway benchmark: the HTTP gateway against the same SQL called directly over libpq.
# A throwaway cluster holds one organization of 1,000 receipts (org.create and 999 more), then an
# API key (its apikey.create receipt is the 1,001st) and a share link of receipt 500, made through
# POST /receipts/500/share so that a checkpoint is signed and the bundle carries it. The gateway
# connects as a login role holding only defendable_gateway. For each route, then each of 1, 16,
# 64 and 256 connections, wrk (-t2, or -t1 for one connection, --latency) measures
#   GET  /share/{token}   against pgbench: SELECT defendable.share_resolve_uncounted(:token), the
#                         statement the gateway runs per request (it adds the accesses once a
#                         second); share_sql: pgbench alone on share_resolve(:token), which counts
#                         each call, for reference
#   GET  /healthz         (no SQL: the HTTP floor)
#   POST /receipts        (API key)  against pgbench: receipt_create_by_key(:key, ...)
# and pgbench (-M prepared, -j 2, same role, same socket) runs the SQL at the same concurrency.
# Prints req/s, p50 and p99 of both (pgbench's from its per-transaction log), non-2xx answers
# and socket errors, the ratio gateway/libpq, and the gateway's peak and current RSS. Measures
# only; asserts nothing.
#   bench/gateway.sh [SECONDS]     (default 10 per run; GATEWAY_THREADS default 8, LOG_LEVEL info;
#                                   DFD_GATEWAY another gateway binary (A/B of two builds);
#                                   BENCH_CONNS="1 16 64 256" the connection counts;
#                                   BENCH_ROUTES="share share_sql healthz receipts" the routes;
#                                   session autogroups off for the run unless BENCH_AUTOGROUP=keep:
#                                   scripts/lib.sh says why)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$DFD_ROOT"
SECS=${1:-10}
read -ra CONNS <<<"${BENCH_CONNS:-1 16 64 256}"
ROUTES=" ${BENCH_ROUTES:-share share_sql healthz receipts} "
THREADS=${GATEWAY_THREADS:-8}
LOG_LEVEL=${LOG_LEVEL:-info}
GATEWAY=${DFD_GATEWAY:-$DFD_ROOT/gateway/defendable-gateway}
DB=dfd_bench
ROLE=dfd_bench_gateway

dfd_install_deps
command -v wrk >/dev/null || dfd_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
dfd_build_and_install
[ -x "$GATEWAY" ] || { echo "$GATEWAY is not built" >&2; exit 1; }
work=$(mktemp -d /tmp/defendable-bench.XXXXXX)
chmod 755 "$work"
gw=""
hwm=0 # the highest VmHWM (MB) of the gateway processes of this run
stop_gateway() {
    [ -n "$gw" ] || return 0
    hwm=$(awk -v m="$hwm" '/^VmHWM/ { v = $2 / 1024; printf "%.1f", (v > m ? v : m) }' "/proc/$gw/status" 2>/dev/null || echo "$hwm")
    kill -TERM "$gw" 2>/dev/null || true
    wait "$gw" 2>/dev/null && echo "gateway stopped (SIGTERM, exit 0)" >&2 || echo "gateway stopped (exit $?)" >&2
    gw=""
}
trap 'stop_gateway; dfd_stop_cluster "$work"; rm -rf "$work"; dfd_bench_restore_autogroup' EXIT
dfd_bench_no_autogroup
dfd_start_cluster "$work" "$(dfd_free_port)"
# 256 pgbench clients and the gateway's connections need more than lib.sh's 150
psql -qX -d postgres -c "ALTER SYSTEM SET max_connections = 300"
dfd_as_pg pg_ctl -D "$work/data" -l "$work/server.log" -w -t 60 restart >/dev/null
export PGDATABASE=$DB

dfd_bench_machine
echo "postgres: $(psql -XAtd postgres -c 'SHOW server_version'), fsync off, synchronous_commit off (throwaway cluster); $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"
psql -qX -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE $DB"
# the extension creates the NOLOGIN role defendable_gateway; the login role holds only that
psql -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION defendable" -c "CREATE ROLE $ROLE LOGIN" -c "GRANT defendable_gateway TO $ROLE"
user=$(psql -qXAt -v ON_ERROR_STOP=1 -c "INSERT INTO defendable.users (email) VALUES ('bench@bench.example') RETURNING user_id")
org=$(psql -XAt -v ON_ERROR_STOP=1 -c "SELECT org_id FROM defendable.org_create('$user', now() - interval '1 minute', 'Bench')")
psql -qX -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM (SELECT defendable.append_receipt('$org', 'bench.seed', jsonb_build_object('n', i), '{n}') FROM generate_series(2, 1000) i) s" >/dev/null
key=$(psql -XAt -v ON_ERROR_STOP=1 -c "SELECT key FROM defendable.apikey_create('$user', now() - interval '1 minute', '$org', 'bench')")
echo "org $org: $(psql -XAt -c "SELECT count(*) FROM defendable.receipts WHERE org_id = '$org'") receipts, one API key"

port=$(dfd_free_port)
base=http://127.0.0.1:$port
secret=$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n')
start_gateway() {
    env -i PATH="$PATH" ENV=development PORT="$port" DATABASE_URL="host=$PGHOST port=$PGPORT dbname=$DB user=$ROLE" \
        JWT_SECRET="$secret" LEDGER_ORIGIN=bench.localhost MAIL_DIR="$work/mail" GATEWAY_THREADS="$THREADS" LOG_LEVEL="$LOG_LEVEL" \
        API_BASE_URL="$base" APP_BASE_URL="$base" "$GATEWAY" >>"$work/gateway.log" 2>&1 &
    gw=$!
    for _ in $(seq 100); do curl -fsS "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -fsS "$base/healthz" >/dev/null || { tail -n 20 "$work/gateway.log" >&2; exit 1; }
}
start_gateway
echo "gateway pid $gw on port $port, GATEWAY_THREADS=$THREADS, LOG_LEVEL=$LOG_LEVEL, RSS after start: $(awk '/^VmRSS/ {print $2, $3}' "/proc/$gw/status")"

jwt=$(JWT_SECRET="$secret" "$DFD_ROOT/scripts/session-token" "$user" 3600)
token=$(curl -fsS -X POST -H "Authorization: Bearer $jwt" "$base/receipts/500/share?org=$org" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
curl -fsS "$base/share/$token" | python3 -c 'import json, sys; b = json.load(sys.stdin); print("share link of receipt 500: bundle of %d bytes, keys %s" % (len(json.dumps(b)), ",".join(sorted(b))))'
curl -fsS -X POST -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d '{"kind":"bench.event","fields":{"n":1},"public_fields":[]}' "$base/receipts" >/dev/null

# wrk: one machine-readable line at the end (req/s, p50 ms, p99 ms, non-2xx, socket errors)
report='done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("DFD %.1f %.3f %.3f %d %d\n", summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, e.status,
        e.connect + e.read + e.write + e.timeout))
end'
echo "$report" >"$work/get.lua"
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"kind":"bench.event","fields":{"n":1},"public_fields":[]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
$report
LUA
echo 'SELECT defendable.share_resolve_uncounted(:token);' >"$work/share.sql"
echo 'SELECT defendable.share_resolve(:token);' >"$work/share_counted.sql"
echo "SELECT * FROM defendable.receipt_create_by_key(:key, 'bench.event', '{\"n\": 1}', '{}');" >"$work/receipts.sql"

declare -A res
# before each run (and the RSS reading), wait up to 5 s until the gateway has closed every
# connection of the previous wrk run: requests still queued there would compete with the next run,
# and their connections count against the limit of 256 per IP
drain() {
    local n
    for _ in $(seq 50); do
        n=$(ss -Htn state established state close-wait state syn-recv "( sport = :$port )" | wc -l)
        [ "$n" -eq 0 ] && return 0
        sleep 0.1
    done
    echo "note: $n connection(s) to the gateway still open before the next run" >&2
}
run_wrk() { # name, conns, lua, path
    local t=$(( $2 < 2 ? $2 : 2 )) out
    drain
    out=$(wrk -t"$t" -c"$2" -d"${SECS}s" --timeout 10s --latency -s "$3" "$base$4" 2>&1) ||
        { echo "wrk failed: $out" >&2; return 1; }
    echo "$out" >>"$work/wrk.log"
    res[$1.$2.gw]=$(grep '^DFD ' <<<"$out" | cut -d' ' -f2-)
    [ -n "${res[$1.$2.gw]}" ] || { echo "no result from wrk: $out" >&2; return 1; }
}
run_pgbench() { # name, conns, script, -D definition
    local log=$work/pgbench.$1.$2.log
    drain
    rm -f "$work/pglat.$1.$2".*
    pgbench -n -M prepared -U "$ROLE" -c "$2" -j $(( $2 < 2 ? $2 : 2 )) -T "$SECS" -D "$4" -f "$3" \
        -l --log-prefix="$work/pglat.$1.$2" "$DB" >"$log" 2>&1 ||
        { echo "pgbench failed ($1, $2 clients):" >&2; tail -n 20 "$log" >&2; return 1; }
    # pgbench prints no tps when no transaction finished (-T shorter than connecting 256 clients)
    res[$1.$2.pg]=$(awk '/^tps = / { print $3 } /actually processed: 0(\/|$)/ { print 0 }' "$log")
    # p50 and p99 of the same SQL over libpq, from pgbench's per-transaction log (3rd field, us)
    res[$1.$2.pglat]=$(cat "$work/pglat.$1.$2".* 2>/dev/null | awk '{ print $3 }' | sort -n |
        awk '{ v[NR] = $1 } END { if (NR) printf "%.3f %.3f", v[int(NR * 0.5) + 1] / 1000, v[int(NR * 0.99) + 1] / 1000; else printf "- -" }')
    if [ -z "${res[$1.$2.pg]}" ] || grep -qiE 'error|aborted' "$log"; then
        grep -vE '^(transaction type|scaling factor|query mode|number of|latency|initial connection|duration|maximum number)' "$log" |
            head -n 5 | sed "s/^/pgbench $1 $2: /" >&2
    fi
}
[[ $ROUTES == *" share "* ]] && for c in "${CONNS[@]}"; do
    run_wrk share "$c" "$work/get.lua" "/share/$token"
    run_pgbench share "$c" "$work/share.sql" "token=$token"
    echo "share, $c connection(s): done" >&2
done
# every share answer the gateway gave must be counted once its batches are in (a second at most)
if [[ $ROUTES == *" share "* ]]; then
    # the gateway's own count of 2xx answers (wrk does not report requests still in flight when
    # it stops, which the gateway serves and counts)
    served=$(curl -fsS "$base/metrics" | awk -F' ' '/^defendable_http_requests_total\{method="GET",route="\/share\/\{token\}",status="2xx"\}/ { print $2 }')
    sleep 1.5
    counted=$(psql -XAt -c "SELECT a.accesses FROM defendable.shares s, defendable.share_access(s.share_id) a WHERE s.org_id = '$org'")
    share_counts="share link accesses: ${served:-?} answered 2xx by the gateway (its /metrics), $counted counted in the database (pgbench's share_resolve_uncounted counts nothing)"
fi
# share_resolve, which counts each call with a write: SQL only, for reference
[[ $ROUTES == *" share_sql "* ]] && for c in "${CONNS[@]}"; do
    run_pgbench share_sql "$c" "$work/share_counted.sql" "token=$token"
    echo "share_resolve (counted) over libpq, $c connection(s): done" >&2
done
[[ $ROUTES == *" healthz "* ]] && for c in "${CONNS[@]}"; do run_wrk healthz "$c" "$work/get.lua" /healthz; done
echo "healthz: done" >&2
[[ $ROUTES == *" receipts "* ]] && for c in "${CONNS[@]}"; do
    run_wrk receipts "$c" "$work/post.lua" /receipts
    run_pgbench receipts "$c" "$work/receipts.sql" "key=$key"
    echo "receipts, $c connection(s): done" >&2
done
drain
rss=$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$gw/status")
stop_gateway

echo
echo "${SECS} s per run; wrk --timeout 10s; pgbench -M prepared -j 2 as $ROLE over the same socket"
fmt='%-15s | %5s | %13s | %8s | %8s | %9s | %8s | %8s | %6s | %s\n'
printf "$fmt" route conns "gateway req/s" "p50 ms" "p99 ms" "libpq tps" "libpq p50" "libpq p99" ratio "non-2xx / socket errors"
for name in share share_sql healthz receipts; do
    case $name in
    share) route="GET /share" ;;
    share_sql) route="share_resolve" ;;
    healthz) route="GET /healthz" ;;
    receipts) route="POST /receipts" ;;
    esac
    [[ $ROUTES == *" $name "* ]] || continue
    for c in "${CONNS[@]}"; do
        read -r rps p50 p99 bad sock <<<"${res[$name.$c.gw]:-- - - - -}"
        pg=${res[$name.$c.pg]:-}
        read -r pg50 pg99 <<<"${res[$name.$c.pglat]:-- -}"
        ratio=$( [ -n "$pg" ] && [ "$rps" != "-" ] && awk -v a="$rps" -v b="$pg" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }' || echo -)
        printf "$fmt" "$route" "$c" "$rps" "$p50" "$p99" "$( [ -n "$pg" ] && printf '%.1f' "$pg" || echo -)" "$pg50" "$pg99" "$ratio" "$bad / $sock"
    done
done
echo "design targets (not checked here): GET /share ratio >= 0.7, gateway RSS < 32 MB"
[ -z "${share_counts:-}" ] || echo "$share_counts"
echo "gateway RSS after the runs: VmHWM $hwm MB (peak of the run's gateway processes), VmRSS $rss MB"
echo "receipts in the org at the end: $(psql -XAt -c "SELECT count(*) FROM defendable.receipts WHERE org_id = '$org'")"
# what the gateway logged as a 5xx answer or a warning during the runs, counted (digits as N)
{
    grep -E '"level":"error","event":"request"' "$work/gateway.log" |
        sed -E 's/.*"method":"([A-Z]+)","route":"([^"]*)","status":([0-9]+).*"problem":"([^"]*)".*/\1 \2 \3 \4/; t; s/.*"method":"([A-Z]+)","route":"([^"]*)","status":([0-9]+).*/\1 \2 \3/'
    grep -oE '"level":"warn","event":"[a-z_]+"(,"message":"[^"]*")?' "$work/gateway.log" | sed -E 's/[0-9]+/N/g'
} | sort | uniq -c | sort -rn | head -n 8 | sed 's/^/gateway log: /' || true
