/*
 * access.c: quota counters and API key authentication, the two access rules that run on every
 * request and so are written in C.
 *
 * quota_take: a fixed window per (scope, subject), aligned to UTC (a one-day window is the UTC
 * day), counted in one row with one statement. INSERT ... ON CONFLICT DO UPDATE ... WHERE used +
 * cost <= lim locks the row, and the WHERE is evaluated again on the newest version after
 * waiting, so concurrent takes never overshoot: with limit 50, exactly 50 of 100 concurrent takes
 * are allowed.
 *
 * apikey_authenticate: keys are dfd_<12 hex id>_<43 base64url secret>. The id finds the row; the
 * SHA-256 of the secret is compared with the stored one in constant time. A failure does not
 * raise an error: it records a security event and returns ok = false, so the evidence commits
 * with the caller's transaction instead of rolling back with it.
 */
#include "dfd_pg.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/inet.h"
#include "utils/timestamp.h"

#define DFD_QUOTA_MAX_WINDOW_DAYS 31
#define DFD_APIKEY_PREFIX "dfd_"
#define DFD_APIKEY_ID_LEN 12
#define DFD_APIKEY_SECRET_LEN 43
#define DFD_APIKEY_LEN (4 + DFD_APIKEY_ID_LEN + 1 + DFD_APIKEY_SECRET_LEN)

static SPIPlanPtr plan_take, plan_used;

PG_FUNCTION_INFO_V1(dfd_quota_take);
/*
 * quota_take(scope text, subject text, lim integer, win interval, cost integer default 1)
 * returns (allowed boolean, used integer, remaining integer, reset_at timestamptz)
 */
Datum
dfd_quota_take(PG_FUNCTION_ARGS)
{
    text *scope, *subject;
    int32 lim, cost;
    Interval *win;
    int64 win_us, now_unix, start_unix;
    TimestampTz window_start, reset_at;
    Datum args[6];
    bool isnull, allowed;
    int32 used = 0;
    TupleDesc tupdesc;
    Datum values[4];
    bool nulls[4] = {false};

    for (int i = 0; i < 5; i++)
        if (PG_ARGISNULL(i))
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("quota_take arguments must not be null")));
    scope = PG_GETARG_TEXT_PP(0);
    subject = PG_GETARG_TEXT_PP(1);
    lim = PG_GETARG_INT32(2);
    win = PG_GETARG_INTERVAL_P(3);
    cost = PG_GETARG_INT32(4);
    if (VARSIZE_ANY_EXHDR(scope) == 0 || VARSIZE_ANY_EXHDR(scope) > 100 ||
        VARSIZE_ANY_EXHDR(subject) == 0 || VARSIZE_ANY_EXHDR(subject) > 300)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("quota scope must have 1 to 100 bytes and subject 1 to 300")));
    if (lim < 0 || cost < 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("quota limit must not be negative and cost must be positive")));
    /* months have no fixed length: a window is a fixed number of microseconds */
    if (win->month != 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("quota window must be given in days, hours, minutes or seconds")));
    win_us = (int64)win->day * USECS_PER_DAY + win->time;
    if (win_us < USECS_PER_SEC || win_us > DFD_QUOTA_MAX_WINDOW_DAYS * USECS_PER_DAY ||
        win_us % USECS_PER_SEC != 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("quota window must be whole seconds, from 1 second to %d days",
                               DFD_QUOTA_MAX_WINDOW_DAYS)));
    if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "quota_take must return a record");

    /*
     * Windows are counted from the Unix epoch, a UTC midnight, so any window that divides a day
     * starts on UTC day boundaries, and a one-day window is exactly the UTC day.
     */
    now_unix = GetCurrentTransactionStartTimestamp() + DFD_UNIX_TO_PG_USECS;
    start_unix = now_unix - ((now_unix % win_us) + win_us) % win_us;
    window_start = start_unix - DFD_UNIX_TO_PG_USECS;
    reset_at = window_start + win_us;

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    if (plan_take == NULL) {
        Oid types[6] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, INT4OID, INT4OID, TIMESTAMPTZOID};

        plan_take = SPI_prepare(
            "INSERT INTO defendable.quota_counters AS q "
            "(scope, subject, window_start, used, window_end) VALUES ($1, $2, $3, $5, $6) "
            "ON CONFLICT (scope, subject, window_start) DO UPDATE SET used = q.used + $5 "
            "WHERE q.used + $5 OPERATOR(pg_catalog.<=) $4 RETURNING q.used",
            6, types);
        plan_used = SPI_prepare("SELECT used FROM defendable.quota_counters "
                                "WHERE scope OPERATOR(pg_catalog.=) $1 "
                                "AND subject OPERATOR(pg_catalog.=) $2 "
                                "AND window_start OPERATOR(pg_catalog.=) $3",
                                3, types);
        if (plan_take == NULL || plan_used == NULL || SPI_keepplan(plan_take) != 0 ||
            SPI_keepplan(plan_used) != 0)
            elog(ERROR, "cannot prepare quota statements");
    }
    args[0] = PointerGetDatum(scope);
    args[1] = PointerGetDatum(subject);
    args[2] = TimestampTzGetDatum(window_start);
    args[3] = Int32GetDatum(lim);
    args[4] = Int32GetDatum(cost);
    args[5] = TimestampTzGetDatum(reset_at);
    allowed = false;
    if (cost <= lim) {
        /* a fresh window inserts cost; an existing one adds it only while it fits */
        if (SPI_execute_plan(plan_take, args, NULL, false, 1) != SPI_OK_INSERT_RETURNING)
            elog(ERROR, "cannot count quota");
        if (SPI_processed == 1) {
            allowed = true;
            used = DatumGetInt32(
                SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
        }
    }
    if (!allowed) {
        if (SPI_execute_plan(plan_used, args, NULL, false, 1) != SPI_OK_SELECT)
            elog(ERROR, "cannot read quota");
        if (SPI_processed == 1)
            used = DatumGetInt32(
                SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    }
    SPI_finish();
    values[0] = BoolGetDatum(allowed);
    values[1] = Int32GetDatum(used);
    values[2] = Int32GetDatum(Max(lim - used, 0));
    values[3] = TimestampTzGetDatum(reset_at);
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* Records a security event (inside SPI); it commits with the caller's transaction. */
static void
security_event(const char *kind, Datum org, bool org_null, Datum detail)
{
    Oid types[3] = {TEXTOID, UUIDOID, JSONBOID};
    Datum args[3] = {CStringGetTextDatum(kind), org, detail};
    char nulls[3] = {' ', org_null ? 'n' : ' ', ' '};
    int rc;

    dfd_internal_writes++;
    rc = SPI_execute_with_args("INSERT INTO defendable.security_events (kind, org_id, detail) "
                               "VALUES ($1, $2, $3)",
                               3, types, args, nulls, false, 0);
    dfd_internal_writes--;
    if (rc != SPI_OK_INSERT)
        elog(ERROR, "cannot record security event");
}

static bool
is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

PG_FUNCTION_INFO_V1(dfd_apikey_authenticate);
/*
 * apikey_authenticate(key text) returns (ok boolean, org_id uuid, key_id text): checks an API
 * key; on success marks it used. Never raises for a bad key.
 */
Datum
dfd_apikey_authenticate(PG_FUNCTION_ARGS)
{
    text *key = PG_GETARG_TEXT_PP(0);
    const char *k = VARDATA_ANY(key);
    size_t len = VARSIZE_ANY_EXHDR(key);
    uint8 secret_hash[DFD_SHA256_LEN];
    char key_id[DFD_APIKEY_ID_LEN + 1];
    TupleDesc tupdesc;
    Datum values[3];
    bool nulls[3] = {false, true, true};
    bool ok = false;
    const char *why = "malformed key";
    Datum org = (Datum)0;
    MemoryContext caller = CurrentMemoryContext;
    static SPIPlanPtr plan_lookup, plan_mark_used;

    if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "apikey_authenticate must return a record");
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    if (len == DFD_APIKEY_LEN && memcmp(k, DFD_APIKEY_PREFIX, 4) == 0 &&
        is_lower_hex(k + 4, DFD_APIKEY_ID_LEN) && k[4 + DFD_APIKEY_ID_LEN] == '_') {
        Oid types[1] = {TEXTOID};
        Datum args[1];
        int rc;

        memcpy(key_id, k + 4, DFD_APIKEY_ID_LEN);
        key_id[DFD_APIKEY_ID_LEN] = '\0';
        /* hash first, so a known and an unknown id cost the same before the lookup */
        if (!dfd_sha256(k + 4 + DFD_APIKEY_ID_LEN + 1, DFD_APIKEY_SECRET_LEN, secret_hash))
            elog(ERROR, "SHA-256 failed");
        args[0] = CStringGetTextDatum(key_id);
        rc = SPI_execute_plan(dfd_saved_plan(&plan_lookup,
                                             "SELECT org_id, secret_hash, revoked_at IS NOT NULL "
                                             "FROM defendable.api_keys "
                                             "WHERE key_id OPERATOR(pg_catalog.=) $1",
                                             1, types),
                              args, NULL, false, 1);
        if (rc != SPI_OK_SELECT)
            elog(ERROR, "cannot read API keys");
        why = "unknown key";
        if (SPI_processed == 1) {
            bool isnull;
            HeapTuple t = SPI_tuptable->vals[0];
            TupleDesc d = SPI_tuptable->tupdesc;
            bytea *stored = DatumGetByteaPP(SPI_getbinval(t, d, 2, &isnull));
            bool revoked = DatumGetBool(SPI_getbinval(t, d, 3, &isnull));
            bool match = VARSIZE_ANY_EXHDR(stored) == DFD_SHA256_LEN &&
                         dfd_ct_equal(VARDATA_ANY(stored), secret_hash, DFD_SHA256_LEN);

            {
                MemoryContext old = MemoryContextSwitchTo(caller);
                pg_uuid_t *copy = palloc(sizeof(pg_uuid_t));

                *copy = *DatumGetUUIDP(SPI_getbinval(t, d, 1, &isnull));
                org = UUIDPGetDatum(copy);
                MemoryContextSwitchTo(old);
            }
            if (!match)
                why = "wrong secret";
            else if (revoked)
                why = "revoked key";
            else
                ok = true;
        }
        if (ok) {
            /* last_used_at to the minute: one write per key per minute, not per request */
            dfd_internal_writes++;
            rc = SPI_execute_plan(
                dfd_saved_plan(&plan_mark_used,
                               "UPDATE defendable.api_keys SET last_used_at = pg_catalog.now() "
                               "WHERE key_id OPERATOR(pg_catalog.=) $1 AND (last_used_at IS NULL "
                               "OR last_used_at OPERATOR(pg_catalog.<) "
                               "(pg_catalog.now() OPERATOR(pg_catalog.-) "
                               "'1 minute'::pg_catalog.interval))",
                               1, types),
                args, NULL, false, 0);
            dfd_internal_writes--;
            if (rc != SPI_OK_UPDATE)
                elog(ERROR, "cannot mark API key used");
        }
    }
    if (!ok) {
        /* the event names the key id, never any part of the secret */
        char detail[160];

        snprintf(detail, sizeof detail, "{\"reason\": \"%s\", \"key_id\": \"%s\"}", why,
                 strcmp(why, "malformed key") == 0 ? "" : key_id);
        security_event("apikey.invalid", org, org == (Datum)0,
                       DirectFunctionCall1(jsonb_in, CStringGetDatum(detail)));
    }
    SPI_finish();
    values[0] = BoolGetDatum(ok);
    if (ok) {
        values[1] = org;
        values[2] = CStringGetTextDatum(key_id);
        nulls[1] = nulls[2] = false;
    }
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(dfd_random_token);
/*
 * random_token(prefix text, nbytes integer): prefix followed by base64url of nbytes from
 * pg_strong_random. Secrets of invites, magic links and API keys come from here.
 */
Datum
dfd_random_token(PG_FUNCTION_ARGS)
{
    text *prefix = PG_GETARG_TEXT_PP(0);
    int32 nbytes = PG_GETARG_INT32(1);
    uint8 raw[64];
    size_t plen = VARSIZE_ANY_EXHDR(prefix), tlen;
    text *result;

    if (nbytes < 16 || nbytes > (int32)sizeof raw || plen > 32)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("a token has 16 to 64 random bytes and a prefix of at most 32")));
    if (!pg_strong_random(raw, (size_t)nbytes))
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not generate a token")));
    tlen = plen + dfd_b64url_len((size_t)nbytes);
    result = palloc(VARHDRSZ + tlen);
    SET_VARSIZE(result, VARHDRSZ + tlen);
    memcpy(VARDATA(result), VARDATA_ANY(prefix), plen);
    dfd_b64url_encode(raw, (size_t)nbytes, VARDATA(result) + plen);
    explicit_bzero(raw, sizeof raw);
    PG_RETURN_TEXT_P(result);
}

PG_FUNCTION_INFO_V1(dfd_record_event);
/* record_event(kind, org, usr, ip, detail): the one writer of defendable.security_events. */
Datum
dfd_record_event(PG_FUNCTION_ARGS)
{
    Oid types[5] = {TEXTOID, UUIDOID, UUIDOID, INETOID, JSONBOID};
    Datum args[5];
    char nulls[5];
    int rc;

    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("security event kind must not be null")));
    for (int i = 0; i < 5; i++) {
        args[i] = PG_ARGISNULL(i) ? (Datum)0 : PG_GETARG_DATUM(i);
        nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
    }
    if (PG_ARGISNULL(4)) {
        args[4] = DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
        nulls[4] = ' ';
    }
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    dfd_internal_writes++;
    rc = SPI_execute_with_args("INSERT INTO defendable.security_events "
                               "(kind, org_id, user_id, ip, detail) VALUES ($1, $2, $3, $4, $5)",
                               5, types, args, nulls, false, 0);
    dfd_internal_writes--;
    if (rc != SPI_OK_INSERT)
        elog(ERROR, "cannot record security event: %s", SPI_result_code_string(rc));
    SPI_finish();
    PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(dfd_security_events_cleanup);
/* security_events_cleanup(older_than): deletes events past their retention. */
Datum
dfd_security_events_cleanup(PG_FUNCTION_ARGS)
{
    Oid types[1] = {INTERVALOID};
    Datum args[1] = {PG_GETARG_DATUM(0)};
    Interval *older = PG_GETARG_INTERVAL_P(0);
    int rc;
    uint64 n;

    if (older->month < 0 || older->day < 0 || older->time < 0 ||
        (older->month == 0 && older->day < 1))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("security events are kept at least one day")));
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    dfd_internal_writes++;
    rc = SPI_execute_with_args("DELETE FROM defendable.security_events "
                               "WHERE at OPERATOR(pg_catalog.<) pg_catalog.now() - $1",
                               1, types, args, NULL, false, 0);
    dfd_internal_writes--;
    if (rc != SPI_OK_DELETE)
        elog(ERROR, "cannot clean up security events");
    n = SPI_processed;
    SPI_finish();
    PG_RETURN_INT64((int64)n);
}
