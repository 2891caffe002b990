#!/usr/bin/env bash
# Append benchmark: the same records written four ways, side by side in one run on a throwaway
# cluster —
#   plain       INSERT into an ordinary table (no chain): what DESIGN.md section 8 compares with;
#   defendable  SELECT defendable.append_receipt(...);
#   peer        a PL/pgSQL + pgcrypto hash chain (BEFORE INSERT trigger locking a head row);
#   rows        one plain SQL statement writing the rows defendable writes per receipt, of the
#               same sizes (a receipt row, a disclosures row, the head row's upsert), computing
#               nothing: the storage cost of the design, as a floor for defendable's.
# Bulk: one transaction of BULK_N rows for one fresh org (the peer writes min(BULK_N, PEER_BULK_N),
# its per-row head update makes one long transaction quadratic), timed inside the server, rows/s.
# Single-row commits: pgbench -n -M prepared -T SECONDS at 1 session, 8 sessions over 8 orgs,
# 16 over 16 orgs and 16 over 1 org, tps: ROUNDS rounds with the contenders interleaved in each,
# the median reported (one 10 s run of a single session moved by half from run to run). Only
# measures and prints; asserts no timing.
#   bench/append.sh [BULK_N] [SECONDS] [PEER_BULK_N] [ROUNDS]      (defaults 100000 10 10000 3)
# BULK_N < 10000 is a smoke run: it checks the script, its figures mean nothing.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$DFD_ROOT"
BULK_N=${1:-100000}
DURATION=${2:-10}
PEER_BULK_N=${3:-10000}
ROUNDS=${4:-3}
PEER_BULK_N=$(( PEER_BULK_N < BULK_N ? PEER_BULK_N : BULK_N ))
SMOKE=false; (( BULK_N < 10000 )) && SMOKE=true

dfd_bench_cluster

dfd_bench_machine
echo "postgres: $(psql -XAtc 'SHOW server_version'), fsync off, synchronous_commit off (throwaway cluster)"
echo "sizes: bulk $BULK_N rows (peer $PEER_BULK_N), pgbench $DURATION s per run, median of $ROUNDS rounds"
$SMOKE && echo "SMOKE run (BULK_N < 10000): checks the script only, the figures mean nothing"

psql -qX -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION defendable;
CREATE EXTENSION pgcrypto;
-- org number n of run r as a UUID; inlined by the planner, the same cost for every contender
CREATE FUNCTION bench_org(r int, n int) RETURNS uuid LANGUAGE sql IMMUTABLE
    RETURN ('00000000-0000-4000-8' || lpad(r::text, 3, '0') || '-' || lpad(n::text, 12, '0'))::uuid;

CREATE TABLE bench_plain (org_id uuid, seq bigint, ts timestamptz, kind text, fields jsonb,
                          public_fields text[], PRIMARY KEY (org_id, seq));
CREATE SEQUENCE bench_plain_seq;

-- The rows defendable writes per receipt, in ordinary tables of the same shape (its Merkle node
-- every 16th receipt left out)
CREATE TABLE bench_rows_receipts (org_id uuid, seq bigint, ts timestamptz, kind text, prev bytea,
                                  fields jsonb, hash bytea, PRIMARY KEY (org_id, seq));
CREATE TABLE bench_rows_disclosures (org_id uuid, seq bigint, salts jsonb, field_values jsonb,
                                     public_fields text[], PRIMARY KEY (org_id, seq));
CREATE TABLE bench_rows_heads (org_id uuid PRIMARY KEY, seq bigint, hash bytea, frontier bytea);
CREATE SEQUENCE bench_rows_seq;

-- The peer: what one would write without the extension. The head row is locked for the rest of
-- the transaction, so appends to one org serialize; other orgs never wait.
CREATE TABLE bench_chain (org_id uuid NOT NULL, seq bigint NOT NULL, ts timestamptz NOT NULL,
                          kind text NOT NULL, fields jsonb NOT NULL, prev bytea NOT NULL,
                          hash bytea NOT NULL, PRIMARY KEY (org_id, seq));
CREATE TABLE bench_chain_heads (org_id uuid PRIMARY KEY, seq bigint NOT NULL, hash bytea NOT NULL);
CREATE FUNCTION bench_chain_link() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head_seq bigint;
    head_hash bytea;
BEGIN
    SELECT h.seq, h.hash INTO head_seq, head_hash
        FROM bench_chain_heads h WHERE h.org_id = NEW.org_id FOR UPDATE;
    IF NOT FOUND THEN
        -- the org's first row; if another session creates the head first, wait and use its row
        INSERT INTO bench_chain_heads VALUES (NEW.org_id, 0, decode(repeat('00', 32), 'hex'))
            ON CONFLICT (org_id) DO NOTHING;
        SELECT h.seq, h.hash INTO STRICT head_seq, head_hash
            FROM bench_chain_heads h WHERE h.org_id = NEW.org_id FOR UPDATE;
    END IF;
    NEW.seq := head_seq + 1;
    NEW.ts := clock_timestamp();
    NEW.prev := head_hash;
    NEW.hash := digest(NEW.prev || convert_to(NEW.kind || NEW.ts::text || NEW.fields::text, 'UTF8'),
                       'sha256');
    UPDATE bench_chain_heads SET seq = NEW.seq, hash = NEW.hash WHERE org_id = NEW.org_id;
    RETURN NEW;
END $$;
CREATE TRIGGER bench_chain_link BEFORE INSERT ON bench_chain
    FOR EACH ROW EXECUTE FUNCTION bench_chain_link();
SQL

# ---- bulk: one transaction each, timed with clock_timestamp() in the server (commit included)
bulk_seconds() {
    psql -qXAt -v ON_ERROR_STOP=1 <<SQL
SELECT clock_timestamp() AS t0 \gset
\o /dev/null
$1;
\o
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz);
SQL
}
rows="'dataset.download', jsonb_build_object('slug', 'census', 'n', i)"
declare -A R C B
t=$(bulk_seconds "INSERT INTO bench_plain SELECT bench_org(0, 1), i, clock_timestamp(), $rows, '{slug}' FROM generate_series(1, $BULK_N) i")
R[bulk_plain]=$(awk -v n="$BULK_N" -v t="$t" 'BEGIN { printf "%.0f", n / t }')
t=$(bulk_seconds "SELECT count(*) FROM (SELECT defendable.append_receipt(bench_org(0, 2), $rows, '{slug}') FROM generate_series(1, $BULK_N) i) s")
R[bulk_defendable]=$(awk -v n="$BULK_N" -v t="$t" 'BEGIN { printf "%.0f", n / t }')
t=$(bulk_seconds "INSERT INTO bench_chain (org_id, kind, fields) SELECT bench_org(0, 3), $rows FROM generate_series(1, $PEER_BULK_N) i")
R[bulk_peer]=$(awk -v n="$PEER_BULK_N" -v t="$t" 'BEGIN { printf "%.0f", n / t }')
# the same sizes as defendable's rows: 43-character digests and 22-character salts per field,
# 32-byte hashes, a frontier of four nodes
digests="jsonb_build_object('n', repeat('d', 43), 'slug', repeat('e', 43))"
salts="jsonb_build_object('n', repeat('s', 22), 'slug', repeat('t', 22))"
h32="decode(repeat('ab', 32), 'hex')"
t=$(bulk_seconds "BEGIN; WITH r AS (INSERT INTO bench_rows_receipts SELECT bench_org(0, 4), i, clock_timestamp(), 'dataset.download', $h32, $digests, $h32 FROM generate_series(1, $BULK_N) i RETURNING org_id, seq) INSERT INTO bench_rows_disclosures SELECT org_id, seq, $salts, jsonb_build_object('slug', 'census', 'n', seq), '{slug}' FROM r; INSERT INTO bench_rows_heads VALUES (bench_org(0, 4), $BULK_N, $h32, decode(repeat('ef', 128), 'hex')); COMMIT")
R[bulk_rows]=$(awk -v n="$BULK_N" -v t="$t" 'BEGIN { printf "%.0f", n / t }')
printf '%-34s %12s rows/s\n' "bulk plain ($BULK_N)" "${R[bulk_plain]}" \
    "bulk defendable ($BULK_N)" "${R[bulk_defendable]}" "bulk peer ($PEER_BULK_N)" "${R[bulk_peer]}" \
    "bulk rows ($BULK_N)" "${R[bulk_rows]}"

# ---- single-row commits with pgbench: org number = client_id % orgs, a fresh org set per mode
common='\set n random(1, 1000000000)
\set o :client_id % :orgs'
printf '%s\n%s\n' "$common" "INSERT INTO bench_plain VALUES (bench_org(:run, :o), nextval('bench_plain_seq'), clock_timestamp(), 'dataset.download', jsonb_build_object('slug', 'census', 'n', :n::bigint), '{slug}');" >"$work/plain.sql"
printf '%s\n%s\n' "$common" "SELECT seq FROM defendable.append_receipt(bench_org(:run, :o), 'dataset.download', jsonb_build_object('slug', 'census', 'n', :n::bigint), '{slug}');" >"$work/defendable.sql"
printf '%s\n%s\n' "$common" "INSERT INTO bench_chain (org_id, kind, fields) VALUES (bench_org(:run, :o), 'dataset.download', jsonb_build_object('slug', 'census', 'n', :n::bigint));" >"$work/peer.sql"
printf '%s\n%s\n' "$common" "WITH r AS (INSERT INTO bench_rows_receipts VALUES (bench_org(:run, :o), nextval('bench_rows_seq'), clock_timestamp(), 'dataset.download', $h32, $digests, $h32) RETURNING org_id, seq), d AS (INSERT INTO bench_rows_disclosures SELECT org_id, seq, $salts, jsonb_build_object('slug', 'census', 'n', :n::bigint), '{slug}' FROM r) INSERT INTO bench_rows_heads SELECT org_id, seq, $h32, decode(repeat('ef', 128), 'hex') FROM r ON CONFLICT (org_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, frontier = EXCLUDED.frontier;" >"$work/rows.sql"

# The whole machine's CPU over each pgbench run, from /proc/stat (user, nice, system, irq and
# softirq jiffies; steal is the hypervisor's, not ours): divided by the run's transactions, the
# CPU one receipt costs in the server, pgbench and the kernel together. When the cores are busy
# (the "busy" share near 100%), tps is the cores divided by that cost, so a ratio of two
# contenders is the inverse ratio of their CPU per transaction: the budget a target leaves.
cpu_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8; exit }' /proc/stat; }
NCPU=$(nproc)
MODES=("c1:1:1:1 session" "c8o8:8:8:8 sessions / 8 orgs" "c16o16:16:16:16 sessions / 16 orgs" "c16o1:16:1:16 sessions / 1 org")
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
run=0
for m in "${MODES[@]}"; do
    IFS=: read -r key clients orgs label <<<"$m"
    run=$((run + 1))
    declare -A rounds=() cpus=() busies=()
    for round in $(seq 1 "$ROUNDS"); do
        for who in plain defendable peer rows; do
            # each contender starts on a quiet server: the rows the one before wrote (or the
            # bulk phase) would otherwise be autovacuumed during its run and charged to it
            psql -qX -c "VACUUM (ANALYZE)" -c CHECKPOINT
            out="$work/pgbench-$key-$who.log"
            read -r busy0 all0 < <(cpu_jiffies)
            if ! pgbench -n -M prepared -T "$DURATION" -c "$clients" -j $(( clients < 2 ? clients : 2 )) \
                    -D run="$run" -D orgs="$orgs" -f "$work/$who.sql" >"$out" 2>&1; then
                cat "$out" >&2; exit 1
            fi
            read -r busy1 all1 < <(cpu_jiffies)
            tps=$(awk '/^tps = / { printf "%.0f", $3 }' "$out")
            txs=$(awk '/^number of transactions actually processed:/ { print $NF }' "$out")
            cpu_us=$(awk -v b=$((busy1 - busy0)) -v n="$txs" -v hz="$(getconf CLK_TCK)" \
                'BEGIN { if (n > 0) printf "%.1f", b / hz * 1e6 / n; else print 0 }')
            busy=$(awk -v b=$((busy1 - busy0)) -v a=$((all1 - all0)) \
                'BEGIN { if (a > 0) printf "%.0f", 100 * b / a; else print 0 }')
            rounds[$who]+=" $tps"
            cpus[$who]+=" $cpu_us"
            busies[$who]+=" $busy"
            printf '%-34s %12s tps  (round %d, %s, %s us CPU/tx, %s%% of %d cores busy)\n' \
                "$label $who" "$tps" "$round" \
                "$(awk '/^latency average/ { print "latency " $4 " ms" }' "$out")" "$cpu_us" "$busy" "$NCPU"
        done
    done
    for who in plain defendable peer rows; do
        # shellcheck disable=SC2086 # one argument per round
        R[${key}_$who]=$(median ${rounds[$who]})
        # shellcheck disable=SC2086
        C[${key}_$who]=$(median ${cpus[$who]})
        # shellcheck disable=SC2086
        B[${key}_$who]=$(median ${busies[$who]})
    done
    unset rounds cpus busies
done

# ---- one receipt per transaction inside the server: a procedure that commits after every
# receipt, so no client, socket or protocol is in the figure: what each contender's transaction
# costs the server alone, microseconds per transaction (the median of ROUNDS interleaved rounds)
LOOP_N=$(( BULK_N / 5 < 20000 ? BULK_N / 5 : 20000 ))
psql -qX -v ON_ERROR_STOP=1 <<SQL
CREATE PROCEDURE loop_plain(o uuid, n int) LANGUAGE plpgsql AS \$\$
BEGIN
    FOR i IN 1..n LOOP
        INSERT INTO bench_plain VALUES (o, nextval('bench_plain_seq'), clock_timestamp(), $rows, '{slug}');
        COMMIT;
    END LOOP;
END \$\$;
CREATE PROCEDURE loop_defendable(o uuid, n int) LANGUAGE plpgsql AS \$\$
BEGIN
    FOR i IN 1..n LOOP
        PERFORM defendable.append_receipt(o, $rows, '{slug}');
        COMMIT;
    END LOOP;
END \$\$;
CREATE PROCEDURE loop_peer(o uuid, n int) LANGUAGE plpgsql AS \$\$
BEGIN
    FOR i IN 1..n LOOP
        INSERT INTO bench_chain (org_id, kind, fields) VALUES (o, $rows);
        COMMIT;
    END LOOP;
END \$\$;
CREATE PROCEDURE loop_rows(o uuid, n int) LANGUAGE plpgsql AS \$\$
BEGIN
    FOR i IN 1..n LOOP
        WITH r AS (INSERT INTO bench_rows_receipts VALUES (o, nextval('bench_rows_seq'), clock_timestamp(), 'dataset.download', $h32, $digests, $h32) RETURNING org_id, seq),
             d AS (INSERT INTO bench_rows_disclosures SELECT org_id, seq, $salts, jsonb_build_object('slug', 'census', 'n', i), '{slug}' FROM r)
        INSERT INTO bench_rows_heads SELECT org_id, seq, $h32, decode(repeat('ef', 128), 'hex') FROM r
            ON CONFLICT (org_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, frontier = EXCLUDED.frontier;
        COMMIT;
    END LOOP;
END \$\$;
SQL
declare -A loops=()
for round in $(seq 1 "$ROUNDS"); do
    for who in plain defendable peer rows; do
        psql -qX -c "VACUUM (ANALYZE)" -c CHECKPOINT
        us=$(psql -qXAt -v ON_ERROR_STOP=1 <<SQL
SELECT clock_timestamp() AS t0 \gset
CALL loop_$who(bench_org(90 + $round, 1), $LOOP_N);
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1e6 / $LOOP_N, 1);
SQL
)
        loops[$who]+=" $us"
        printf '%-34s %12s us per transaction  (round %d, %d transactions)\n' "in-server loop $who" "$us" "$round" "$LOOP_N"
    done
done
for who in plain defendable peer rows; do
    # shellcheck disable=SC2086 # one argument per round
    R[loop_$who]=$(median ${loops[$who]})
done

# ---- the stored rows are what they should be
psql -qX -v ON_ERROR_STOP=1 <<'SQL'
\pset footer off
SELECT (SELECT count(*) FROM bench_plain) AS plain_rows,
       (SELECT count(*) FROM defendable.receipts) AS defendable_receipts,
       (SELECT bool_and(ok) FROM defendable.verify_ledger()) AS defendable_ledger_ok,
       (SELECT count(*) FROM bench_chain) AS peer_rows,
       (SELECT count(*) FROM bench_rows_receipts) AS rows_receipts,
       (SELECT bool_and(h.seq = c.n) FROM bench_chain_heads h
          JOIN (SELECT org_id, count(*) AS n FROM bench_chain GROUP BY org_id) c USING (org_id)) AS peer_heads_ok;
SQL

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
printf '%-26s %12s %12s %12s %12s %17s %16s %16s\n' mode plain defendable peer rows \
    defendable/plain defendable/peer defendable/rows
json="{\"bench\":\"append\",\"smoke\":$SMOKE,\"bulk_n\":$BULK_N,\"peer_bulk_n\":$PEER_BULK_N,\"seconds\":$DURATION,\"rounds\":$ROUNDS"
for m in "bulk:0:0:bulk, rows/s" "${MODES[@]}"; do
    IFS=: read -r key _ _ label <<<"$m"
    [ "$key" != bulk ] && label="$label, tps"
    p=${R[${key}_plain]} d=${R[${key}_defendable]} q=${R[${key}_peer]} w=${R[${key}_rows]}
    printf '%-26s %12s %12s %12s %12s %17s %16s %16s\n' "$label" "$p" "$d" "$q" "$w" \
        "$(ratio "$d" "$p")" "$(ratio "$d" "$q")" "$(ratio "$d" "$w")"
    json+=",\"${key}_plain\":$p,\"${key}_defendable\":$d,\"${key}_peer\":$q,\"${key}_rows\":$w"
    json+=",\"${key}_defendable_over_plain\":$(ratio "$d" "$p"),\"${key}_defendable_over_peer\":$(ratio "$d" "$q")"
    json+=",\"${key}_defendable_over_rows\":$(ratio "$d" "$w")"
done
echo
echo "CPU per transaction, whole machine (server, pgbench, kernel), us; median of the rounds; busy share of the $NCPU cores:"
printf '%-26s %14s %14s %14s %14s %22s\n' mode plain defendable peer rows "plain / 0.8 (budget)"
for m in "${MODES[@]}"; do
    IFS=: read -r key _ _ label <<<"$m"
    printf '%-26s' "$label"
    for who in plain defendable peer rows; do
        printf ' %14s' "${C[${key}_$who]} (${B[${key}_$who]}%)"
        json+=",\"${key}_${who}_cpu_us\":${C[${key}_$who]},\"${key}_${who}_busy_pct\":${B[${key}_$who]}"
    done
    printf ' %22s\n' "$(awk -v p="${C[${key}_plain]}" 'BEGIN { printf "%.1f", p / 0.8 }')"
done
echo
echo "In-server, one receipt per transaction (a procedure committing after each; no client), us per transaction:"
printf '%-26s %12s %12s %12s %12s\n' "" plain defendable peer rows
printf '%-26s %12s %12s %12s %12s\n' "median of $ROUNDS rounds" "${R[loop_plain]}" "${R[loop_defendable]}" \
    "${R[loop_peer]}" "${R[loop_rows]}"
json+=",\"loop_n\":$LOOP_N"
for who in plain defendable peer rows; do json+=",\"loop_${who}_us\":${R[loop_$who]}"; done
# At one session a transaction's latency is the client's part plus the server's: 0.8x plain's
# rate leaves a quarter of plain's latency for everything defendable adds in the server.
budget=$(awk -v t="${R[c1_plain]}" 'BEGIN { if (t > 0) printf "%.1f", 0.25 * 1e6 / t; else print 0 }')
echo "1 session: 0.8x plain leaves $budget us per transaction for what defendable adds in the server;" \
    "the rows alone add $(awk -v r="${R[loop_rows]}" -v p="${R[loop_plain]}" 'BEGIN { printf "%.1f", r - p }') us," \
    "defendable $(awk -v d="${R[loop_defendable]}" -v p="${R[loop_plain]}" 'BEGIN { printf "%.1f", d - p }') us"
json+=",\"c1_budget_us\":$budget"
scaling=$(ratio "${R[c8o8_defendable]}" "${R[c1_defendable]}")
echo "defendable scaling, 8 sessions over 8 orgs / 1 session: $scaling"
echo "(DESIGN.md section 8 targets: bulk defendable/plain >= 0.5; defendable/plain >= 0.8 at 1 and 8 sessions; scaling >= 1.6)"
echo "summary: $json,\"defendable_scaling_8_over_1\":$scaling}"
