/*
 * db.c: one libpq connection per thread, every statement prepared when it connects.
 *
 * The statements below are all the SQL the gateway ever runs: parameters only, no text is
 * spliced. A connection found broken is replaced (connected and prepared again) before the next
 * statement; a statement whose connection breaks while it runs is never resent, the caller
 * gets NULL and answers 503 with Retry-After. statement_timeout bounds
 * every call, connect_timeout every reconnection, so no request can hang on the database.
 *
 * With DATABASE_READ_URL (a hot standby), the read-only statements (replica_ok below) run there,
 * on a second connection per thread. They write nothing, so one that the standby does not answer
 * with rows (down, unreachable, broken mid-statement, behind, or any error) is safely asked again
 * of the primary; after a lost connection the thread leaves the standby alone for a few seconds
 * rather than wait on connect_timeout each time.
 */
#include "gw.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

atomic_int gw_db_connections;
atomic_long gw_db_reconnects;

atomic_long gw_db_replica_statements;
atomic_long gw_db_replica_fallbacks;

#define REPLICA_RETRY_SECONDS 5

static char *conninfo;
static char *read_conninfo; /* NULL: no standby */
static _Thread_local PGconn *tls_conn;
static _Thread_local PGconn *tls_read_conn;
static _Thread_local time_t tls_read_retry_at; /* after a standby failure: not before this */
static _Thread_local bool tls_in_transaction;  /* BEGIN sent: everything stays on the primary */
static _Thread_local bool tls_primary_once;    /* the next read must see the primary's writes */
/*
 * libmicrohttpd's pool threads end without telling us: a thread-specific key's destructor
 * closes each thread's connection when its thread exits.
 */
static pthread_key_t conn_key, read_conn_key;
static pthread_once_t conn_key_once = PTHREAD_ONCE_INIT;

static void
close_at_thread_exit(void *conn)
{
    if (conn != NULL) {
        PQfinish(conn);
        atomic_fetch_sub(&gw_db_connections, 1);
    }
}

static void
make_conn_key(void)
{
    (void)pthread_key_create(&conn_key, close_at_thread_exit);
    (void)pthread_key_create(&read_conn_key, close_at_thread_exit);
}

typedef struct stmt {
    const char *name;
    const char *sql;
    int nparams;
} stmt;

/* The statements that only read (members' views of the ledger and public share links): they may
 * run on DATABASE_READ_URL. Share link accesses are added on the primary (share_counts.c). */
static const char *const replica_ok[] = {"receipts_list", "receipt_get", "share_resolve",
                                         "ledger_verify", "ledger_proof"};

/* $actor is a uuid, $iat the JWT's iat in epoch seconds. */
static const stmt stmts[] = {
    {"ready", "SELECT 1", 0},
    {"quota_take",
     "SELECT allowed, used, remaining, extract(epoch FROM reset_at)::bigint "
     "FROM defendable.quota_take($1, $2, $3::integer, make_interval(secs => $4::integer))",
     4},
    {"security_event",
     "SELECT defendable.security_event_record($1, NULL, NULL, $2::inet, $3::jsonb)", 3},
    {"auth_request", "SELECT defendable.auth_request($1, $2::inet)", 2},
    {"auth_verify",
     "SELECT ok, user_id, email, memberships FROM defendable.auth_verify($1, $2::inet)", 2},
    {"invite_accept",
     "SELECT ok, user_id, email, org_id, memberships FROM defendable.invite_accept($1, $2::inet)",
     2},
    {"me",
     "SELECT user_id, email, memberships FROM defendable.me($1::uuid, to_timestamp($2::bigint))",
     2},
    {"org_create",
     "SELECT org_id, org_name, to_json(created_at)#>>'{}' FROM defendable.org_create($1::uuid, "
     "to_timestamp($2::bigint), $3)",
     3},
    {"org_get",
     "SELECT org_id, name, to_json(created_at)#>>'{}', role FROM defendable.org_get($1::uuid, "
     "to_timestamp($2::bigint), $3::uuid)",
     3},
    {"org_members",
     "SELECT coalesce(jsonb_agg(jsonb_build_object('user_id', user_id, 'email', email, 'role', "
     "role, "
     "'joined_at', joined_at)), '[]') FROM defendable.org_members($1::uuid, "
     "to_timestamp($2::bigint), $3::uuid)",
     3},
    {"member_set_role",
     "SELECT defendable.member_set_role($1::uuid, to_timestamp($2::bigint), $3::uuid, $4::uuid, "
     "$5)",
     5},
    {"invite_create",
     "SELECT invite_id, to_json(expires_at)#>>'{}' FROM defendable.invite_create($1::uuid, "
     "to_timestamp($2::bigint), $3::uuid, "
     "$4, coalesce($5, 'member'), make_interval(hours => coalesce($6::integer, 168)))",
     6},
    {"apikey_list",
     "SELECT coalesce(jsonb_agg(jsonb_build_object('key_id', key_id, 'name', name, 'created_at', "
     "created_at, "
     "'last_used_at', last_used_at, 'revoked_at', revoked_at)), '[]') "
     "FROM defendable.apikey_list($1::uuid, to_timestamp($2::bigint), $3::uuid)",
     3},
    {"apikey_create",
     "SELECT key_id, key, to_json(created_at)#>>'{}' FROM defendable.apikey_create($1::uuid, "
     "to_timestamp($2::bigint), $3::uuid, $4)",
     4},
    {"apikey_revoke",
     "SELECT defendable.apikey_revoke($1::uuid, to_timestamp($2::bigint), $3::uuid, $4)", 4},
    {"receipts_list",
     "SELECT coalesce(jsonb_agg(jsonb_build_object('seq', seq, 'ts', ts, 'kind', kind, 'hash', "
     "hash, "
     "'fields', fields) ORDER BY seq), '[]'), max(seq), count(*) "
     "FROM defendable.receipts_list($1::uuid, to_timestamp($2::bigint), $3::uuid, $4::bigint, "
     "$5::integer)",
     5},
    {"receipt_get",
     "SELECT defendable.receipt_get($1::uuid, to_timestamp($2::bigint), $3::uuid, $4::bigint)", 4},
    {"receipt_create",
     "SELECT ok, org_id, seq, hash, to_json(ts)#>>'{}' FROM defendable.receipt_create_by_key($1, "
     "$2, $3::jsonb, "
     "CASE WHEN $4::jsonb IS NULL THEN NULL ELSE ARRAY(SELECT "
     "jsonb_array_elements_text($4::jsonb)) END)",
     4},
    {"internal_receipt",
     "SELECT seq, hash, to_json(ts)#>>'{}' FROM defendable.internal_receipt($1::uuid, $2, "
     "$3::jsonb, "
     "CASE WHEN $4::jsonb IS NULL THEN NULL ELSE ARRAY(SELECT "
     "jsonb_array_elements_text($4::jsonb)) END)",
     4},
    {"share_create",
     "SELECT share_id, token, to_json(expires_at)#>>'{}' FROM defendable.share_create_as($1::uuid, "
     "to_timestamp($2::bigint), "
     "$3::uuid, $4::bigint, make_interval(hours => coalesce($5::integer, 168)))",
     5},
    {"share_revoke",
     "SELECT defendable.share_revoke_as($1::uuid, to_timestamp($2::bigint), $3::uuid)", 3},
    {"share_resolve", "SELECT defendable.share_resolve_uncounted($1)", 1},
    {"share_access_add", "SELECT defendable.share_access_add($1::text[], $2::bigint[])", 2},
    {"ledger_verify",
     "SELECT org_id, receipts, head_seq, ok, first_bad_seq, detail "
     "FROM defendable.ledger_verify_as($1::uuid, to_timestamp($2::bigint), $3::uuid)",
     3},
    {"ledger_proof",
     "SELECT defendable.ledger_proof_as($1::uuid, to_timestamp($2::bigint), $3::uuid, $4::bigint)",
     4},
    {"ledger_checkpoint",
     "SELECT tree_size, current_size, note FROM defendable.ledger_checkpoint_as($1::uuid, "
     "to_timestamp($2::bigint), $3::uuid)",
     3},
    {"checkpoints_due", "SELECT org_id FROM defendable.checkpoints_due($1::integer)", 1},
    {"checkpoint_body", "SELECT defendable.checkpoint_body($1::uuid, $2)", 2},
    {"record_checkpoint", "SELECT tree_size FROM defendable.record_checkpoint($1, $2)", 2},
    /*
     * Checkpoint signing is single-writer across gateways: one org is signed by one gateway at a
     * time (a session advisory lock per org, waited for within lock_timeout), and the periodic
     * signer runs in one gateway only, the one whose connection holds the lease (released by
     * the server when that connection ends, so a dead gateway's lease passes on by itself).
     * 1684432979 is "dfdS" and 1684432972 "dfdL"; the extension's own locks use another class.
     */
    {"sign_lock",
     "SELECT true FROM pg_catalog.pg_advisory_lock(1684432979, pg_catalog.hashtext($1))", 1},
    {"sign_unlock", "SELECT pg_catalog.pg_advisory_unlock(1684432979, pg_catalog.hashtext($1))", 1},
    {"signer_lease",
     "SELECT CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_locks WHERE locktype = 'advisory' "
     "AND pid = pg_catalog.pg_backend_pid() AND classid = 1684432972 AND objid = 0 "
     "AND objsubid = 2 AND granted) THEN true "
     "ELSE pg_catalog.pg_try_advisory_lock(1684432972, 0) END",
     0},
    {"outbox_claim",
     "SELECT message_id, kind, to_email, secret, payload FROM defendable.outbox_claim($1::integer)",
     1},
    {"outbox_sent", "SELECT defendable.outbox_mark_sent($1::uuid)", 1},
    {"outbox_failed", "SELECT defendable.outbox_mark_failed($1::uuid, $2, $3::boolean)", 3},
    {"dataset_stage", "SELECT defendable.dataset_stage($1, $2, $3, $4::bigint, $5)", 5},
    {"dataset_catalog",
     "SELECT coalesce(jsonb_agg(jsonb_build_object('slug', slug, 'title', title, 'size', size, "
     "'sha256', sha256, 'updated_at', updated_at) ORDER BY slug), '[]') "
     "FROM defendable.dataset_catalog($1::uuid, to_timestamp($2::bigint))",
     2},
    {"dataset_download_grant",
     "SELECT allowed, storage_key, receipt_seq, used, extract(epoch FROM reset_at)::bigint, "
     "refused_by FROM defendable.dataset_download_grant($1::uuid, to_timestamp($2::bigint), "
     "$3::uuid, $4, $5::integer, $6::inet, $7::integer)",
     7},
    {"billing_checkout_begin",
     "SELECT org_id, email, status FROM defendable.billing_checkout_begin($1::uuid, "
     "to_timestamp($2::bigint), $3::uuid)",
     3},
    {"billing_webhook",
     "SELECT outcome, org_id FROM defendable.billing_webhook($1, $2, $3::uuid, $4, $5, $6, "
     "CASE WHEN $7::bigint > 0 THEN to_timestamp($7::bigint) END)",
     7},
    {"run_create",
     "SELECT run_id, state, to_json(created_at)#>>'{}' FROM defendable.run_create($1::uuid, "
     "to_timestamp($2::bigint), $3::uuid, $4, $5::jsonb)",
     5},
    {"run_get", "SELECT defendable.run_get($1::uuid, to_timestamp($2::bigint), $3::uuid)", 3},
    {"runner_claim",
     "SELECT org_id, run_id, kind, input, to_json(lease_until)#>>'{}', attempts "
     "FROM defendable.runner_claim($1, make_interval(secs => $2::integer), $3::uuid)",
     3},
    {"run_enqueue",
     "SELECT run_id, state, to_json(created_at)#>>'{}' FROM defendable.run_enqueue($1::uuid, $2, "
     "$3::jsonb)",
     3},
    {"runner_status",
     "SELECT state, receipt_seq FROM defendable.runner_status($1::uuid, $2, $3, $4, $5, "
     "make_interval(secs => $6::integer))",
     6},
    {"begin", "BEGIN", 0},
    {"commit", "COMMIT", 0},
    {"rollback", "ROLLBACK", 0},
};

void
gw_db_set_conninfo(const char *ci, const char *read_ci)
{
    conninfo = ci ? strdup(ci) : strdup("");
    read_conninfo = read_ci && read_ci[0] ? strdup(read_ci) : NULL;
}

static bool
prepare_all(PGconn *c)
{
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        PGresult *res;

        if (strcmp(stmts[i].sql, "BEGIN") == 0 || strcmp(stmts[i].sql, "COMMIT") == 0 ||
            strcmp(stmts[i].sql, "ROLLBACK") == 0)
            continue; /* transaction control is not preparable; sent as simple queries */
        res = PQprepare(c, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            char esc[300];

            gw_json_escape(PQresultErrorMessage(res), esc, sizeof esc);
            gw_log("error", "db", "\"message\":\"cannot prepare %s\",\"detail\":\"%s\"",
                   stmts[i].name, esc);
            PQclear(res);
            return false;
        }
        PQclear(res);
    }
    return true;
}

static PGconn *
connect_now(const char *ci, const char *application_name)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", "options", NULL};
    const char *vals[] = {ci ? ci : "", application_name, "3",
                          "-c statement_timeout=5000 -c lock_timeout=3000 "
                          "-c idle_in_transaction_session_timeout=10000",
                          NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);

    if (c == NULL || PQstatus(c) != CONNECTION_OK || !prepare_all(c)) {
        if (c != NULL && PQstatus(c) != CONNECTION_OK) {
            char esc[300];

            /* libpq's message may contain the host, never the password */
            gw_json_escape(PQerrorMessage(c), esc, sizeof esc);
            gw_log("warn", "db", "\"message\":\"cannot connect\",\"detail\":\"%s\"", esc);
        }
        PQfinish(c);
        return NULL;
    }
    atomic_fetch_add(&gw_db_connections, 1);
    return c;
}

/* Closes one of this thread's connections (the primary's or the standby's) and forgets it. */
static void
close_thread_conn(PGconn **conn, pthread_key_t key)
{
    if (*conn != NULL) {
        PQfinish(*conn);
        *conn = NULL;
        pthread_setspecific(key, NULL);
        atomic_fetch_sub(&gw_db_connections, 1);
    }
}

static void
drop_connection(void)
{
    close_thread_conn(&tls_conn, conn_key);
    tls_in_transaction = false;
}

static void
drop_read_connection(void)
{
    close_thread_conn(&tls_read_conn, read_conn_key);
}

void
gw_db_close_thread(void)
{
    drop_connection();
    drop_read_connection();
}

void
gw_db_primary_once(void)
{
    tls_primary_once = true;
}

static bool
may_run_on_standby(const char *name)
{
    for (size_t i = 0; i < sizeof replica_ok / sizeof replica_ok[0]; i++)
        if (strcmp(replica_ok[i], name) == 0)
            return true;
    return false;
}

/*
 * A read-only statement on the standby. NULL when the standby did not answer it with rows: in
 * back-off, unreachable, broken while the statement ran, or any error; the caller then asks the
 * primary.
 */
static PGresult *
exec_on_standby(const char *name, int nparams, const char *const *values)
{
    PGresult *res;

    if (tls_read_conn != NULL && PQstatus(tls_read_conn) != CONNECTION_OK)
        drop_read_connection();
    if (tls_read_conn == NULL) {
        if (time(NULL) < tls_read_retry_at)
            return NULL;
        pthread_once(&conn_key_once, make_conn_key);
        tls_read_conn = connect_now(read_conninfo, "defendable-gateway-read");
        if (tls_read_conn == NULL) {
            tls_read_retry_at = time(NULL) + REPLICA_RETRY_SECONDS;
            return NULL;
        }
        pthread_setspecific(read_conn_key, tls_read_conn);
    }
    res = PQexecPrepared(tls_read_conn, name, nparams, values, NULL, NULL, 0);
    if (PQstatus(tls_read_conn) != CONNECTION_OK) {
        PQclear(res);
        drop_read_connection();
        tls_read_retry_at = time(NULL) + REPLICA_RETRY_SECONDS;
        return NULL;
    }
    /*
     * Only a success is the standby's to give. Any error is asked again of the primary: a link
     * or a receipt created a moment ago that the standby has not replayed yet (P0002, U0404),
     * a query cancelled by a recovery conflict (40001), a standby shutting down (57P01). The
     * primary's answer, error or not, is the one the client gets.
     */
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return NULL;
    }
    atomic_fetch_add(&gw_db_replica_statements, 1);
    return res;
}

static bool
is_transaction_control(const char *name)
{
    return strcmp(name, "begin") == 0 || strcmp(name, "commit") == 0 ||
           strcmp(name, "rollback") == 0;
}

PGresult *
gw_db_exec(const char *name, int nparams, const char *const *values)
{
    PGresult *res;
    bool primary_once = tls_primary_once;

    tls_primary_once = false;
    if (read_conninfo != NULL && !tls_in_transaction && !primary_once && may_run_on_standby(name)) {
        if ((res = exec_on_standby(name, nparams, values)) != NULL)
            return res;
        atomic_fetch_add(&gw_db_replica_fallbacks, 1);
    }
    if (tls_conn != NULL && PQstatus(tls_conn) != CONNECTION_OK)
        drop_connection();
    if (tls_conn == NULL) {
        pthread_once(&conn_key_once, make_conn_key);
        tls_conn = connect_now(conninfo, "defendable-gateway");
        if (tls_conn == NULL)
            return NULL;
        pthread_setspecific(conn_key, tls_conn);
        atomic_fetch_add(&gw_db_reconnects, 1);
    }
    res = is_transaction_control(name)
              ? PQexec(tls_conn, strcmp(name, "begin") == 0    ? "BEGIN"
                                 : strcmp(name, "commit") == 0 ? "COMMIT"
                                                               : "ROLLBACK")
              : PQexecPrepared(tls_conn, name, nparams, values, NULL, NULL, 0);
    if (PQstatus(tls_conn) != CONNECTION_OK) {
        /*
         * The connection broke while the statement was out: it may or may not have run, so it
         * is not sent again (an append must never happen twice). The caller answers 503; the
         * next call on this thread connects afresh.
         */
        PQclear(res);
        drop_connection();
        return NULL;
    }
    if (strcmp(name, "begin") == 0)
        tls_in_transaction = PQresultStatus(res) == PGRES_COMMAND_OK;
    else if (strcmp(name, "commit") == 0 || strcmp(name, "rollback") == 0)
        tls_in_transaction = false;
    return res;
}

bool
gw_db_ready(void)
{
    PGresult *res = gw_db_exec("ready", 0, NULL);
    bool ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;

    PQclear(res);
    return ok;
}
