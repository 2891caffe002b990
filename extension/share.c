/*
 * share.c: share links, receipt bundles and the organization export.
 *
 * A share token is 32 random bytes, shown once; only its SHA-256 is stored, so a copy of the
 * database does not hand out working links. Resolving a token that is unknown, expired or
 * revoked fails with the same error, so the caller learns nothing about which it was.
 */
#include "dfd_pg.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#define DFD_SHARE_TOKEN_BYTES 32
#define DFD_SHARE_PREFIX "dfs_"
#define DFD_SHARE_TOKEN_LEN (4 + 43)
#define DFD_SHARE_MAX_TTL_DAYS 366

static bytea *
token_hash_of(const char *data, size_t len)
{
    bytea *b = palloc(VARHDRSZ + DFD_SHA256_LEN);

    SET_VARSIZE(b, VARHDRSZ + DFD_SHA256_LEN);
    if (!dfd_sha256(data, len, (uint8 *)VARDATA(b)))
        elog(ERROR, "SHA-256 failed");
    return b;
}

/*
 * Writes the receipt bundle of (org, seq) as JSON (inside SPI): the public projection, an
 * inclusion proof to the newest stored checkpoint that covers the receipt, and that signed
 * checkpoint (or, when none covers it yet, a proof to the current tree and a null checkpoint).
 */
static void
bundle_text(const pg_uuid_t *org, int64 seq, dfd_buf *out)
{
    Oid types[2] = {UUIDOID, INT8OID};
    Datum args[2] = {UUIDPGetDatum(org), Int64GetDatum(seq)};
    int64 size;
    char *note = NULL;
    dfd_hash proof[DFD_MERKLE_MAX_PROOF];
    int n;
    char num[64];

    static SPIPlanPtr plan_checkpoint;

    dfd_buf_puts(out, "{\"checkpoint\":");
    if (SPI_execute_plan(dfd_saved_plan(&plan_checkpoint,
                                        "SELECT tree_size, note FROM defendable.checkpoints "
                                        "WHERE org_id OPERATOR(pg_catalog.=) $1 "
                                        "AND tree_size OPERATOR(pg_catalog.>=) $2 "
                                        "ORDER BY tree_size DESC, recorded_at DESC LIMIT 1",
                                        2, types),
                         args, NULL, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "cannot read checkpoints");
    if (SPI_processed == 1) {
        bool isnull;

        size =
            DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
        note = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
        dfd_jcs_string(out, note, strlen(note));
    } else {
        size = dfd_merkle_size(org);
        dfd_buf_puts(out, "null");
    }
    n = dfd_merkle_inclusion_at(org, (uint64)(seq - 1), (uint64)size, proof);
    snprintf(num, sizeof num, ",\"inclusion\":{\"hashes\":[");
    dfd_buf_puts(out, num);
    for (int i = 0; i < n; i++) {
        char hex[DFD_HEX_HASH_LEN];

        if (i)
            dfd_buf_putc(out, ',');
        dfd_hex_encode(proof[i], DFD_MERKLE_HASH_LEN, hex);
        dfd_buf_putc(out, '"');
        dfd_buf_append(out, hex, sizeof hex);
        dfd_buf_putc(out, '"');
    }
    snprintf(num, sizeof num,
             "],\"leaf_index\":%lld,\"tree_size\":%lld},\"receipt\":", (long long)(seq - 1),
             (long long)size);
    dfd_buf_puts(out, num);
    dfd_projection_text(org, seq, out);
    dfd_buf_puts(out, ",\"v\":1}");
}

static Jsonb *
text_to_jsonb(dfd_buf *b, MemoryContext cxt)
{
    MemoryContext old = MemoryContextSwitchTo(cxt);
    Jsonb *j;

    dfd_buf_terminate(b);
    j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(b->data)));
    MemoryContextSwitchTo(old);
    return j;
}

PG_FUNCTION_INFO_V1(dfd_receipt_bundle);
/* receipt_bundle(org, seq) */
Datum
dfd_receipt_bundle(PG_FUNCTION_ARGS)
{
    MemoryContext caller = CurrentMemoryContext;
    dfd_buf out;
    Jsonb *j;

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    dfd_buf_init(&out);
    bundle_text(PG_GETARG_UUID_P(0), PG_GETARG_INT64(1), &out);
    j = text_to_jsonb(&out, caller);
    SPI_finish();
    PG_RETURN_JSONB_P(j);
}

PG_FUNCTION_INFO_V1(dfd_share_create);
/* share_create(org, seq, ttl default 7 days) -> (share_id, token, expires_at) */
Datum
dfd_share_create(PG_FUNCTION_ARGS)
{
    pg_uuid_t *org;
    int64 seq;
    Interval *ttl;
    TimestampTz expires;
    uint8 raw[DFD_SHARE_TOKEN_BYTES];
    char token[DFD_SHARE_TOKEN_LEN + 1];
    Oid types[4] = {UUIDOID, INT8OID, BYTEAOID, TIMESTAMPTZOID};
    Datum args[4];
    TupleDesc tupdesc;
    Datum values[3];
    bool nulls[3] = {false};
    bool isnull;
    Datum share_id;
    MemoryContext caller = CurrentMemoryContext;
    int rc;

    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("organization, seq and ttl must not be null")));
    org = PG_GETARG_UUID_P(0);
    seq = PG_GETARG_INT64(1);
    ttl = PG_GETARG_INTERVAL_P(2);
    if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "share_create must return a record");
    expires = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
                                                      TimestampTzGetDatum(GetCurrentTimestamp()),
                                                      IntervalPGetDatum(ttl)));
    if (expires <= GetCurrentTimestamp() ||
        expires > GetCurrentTimestamp() + (int64)DFD_SHARE_MAX_TTL_DAYS * USECS_PER_DAY)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("share link lifetime must be positive and at most %d days",
                               DFD_SHARE_MAX_TTL_DAYS)));
    if (!pg_strong_random(raw, sizeof raw))
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not generate a token")));
    memcpy(token, DFD_SHARE_PREFIX, 4);
    dfd_b64url_encode(raw, sizeof raw, token + 4);
    token[DFD_SHARE_TOKEN_LEN] = '\0';

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    args[0] = UUIDPGetDatum(org);
    args[1] = Int64GetDatum(seq);
    rc = SPI_execute_with_args("SELECT 1 FROM defendable.receipts "
                               "WHERE org_id OPERATOR(pg_catalog.=) $1 "
                               "AND seq OPERATOR(pg_catalog.=) $2",
                               2, types, args, NULL, true, 1);
    if (rc != SPI_OK_SELECT || SPI_processed != 1)
        ereport(ERROR,
                (errcode(ERRCODE_NO_DATA_FOUND),
                 errmsg("receipt %lld of this organization does not exist", (long long)seq)));
    args[2] = PointerGetDatum(token_hash_of(token, DFD_SHARE_TOKEN_LEN));
    args[3] = TimestampTzGetDatum(expires);
    dfd_internal_writes++;
    rc =
        SPI_execute_with_args("INSERT INTO defendable.shares (org_id, seq, token_hash, expires_at) "
                              "VALUES ($1, $2, $3, $4) RETURNING share_id",
                              4, types, args, NULL, false, 1);
    dfd_internal_writes--;
    if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
        elog(ERROR, "cannot store share link");
    share_id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    {
        MemoryContext old = MemoryContextSwitchTo(caller);
        pg_uuid_t *copy = palloc(sizeof(pg_uuid_t));

        *copy = *DatumGetUUIDP(share_id);
        values[0] = UUIDPGetDatum(copy);
        values[1] = CStringGetTextDatum(token);
        values[2] = TimestampTzGetDatum(expires);
        MemoryContextSwitchTo(old);
    }
    SPI_finish();
    explicit_bzero(raw, sizeof raw);
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(dfd_share_revoke);
/* share_revoke(org, share_id): true when an active link of this org was revoked. */
Datum
dfd_share_revoke(PG_FUNCTION_ARGS)
{
    Oid types[2] = {UUIDOID, UUIDOID};
    Datum args[2] = {PG_GETARG_DATUM(0), PG_GETARG_DATUM(1)};
    int rc;
    bool revoked;

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    dfd_internal_writes++;
    rc = SPI_execute_with_args("UPDATE defendable.shares SET revoked_at = pg_catalog.now() "
                               "WHERE org_id OPERATOR(pg_catalog.=) $1 "
                               "AND share_id OPERATOR(pg_catalog.=) $2 AND revoked_at IS NULL",
                               2, types, args, NULL, false, 0);
    dfd_internal_writes--;
    if (rc != SPI_OK_UPDATE)
        elog(ERROR, "cannot revoke share link");
    revoked = SPI_processed == 1;
    SPI_finish();
    PG_RETURN_BOOL(revoked);
}

static void
share_not_found(void)
{
    ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND), errmsg("share link not found"),
                    errdetail("The link is unknown, expired or revoked.")));
}

#define SHARE_COUNT_SHARDS 16

/* Where share_resolve counts an access, by schema version. */
typedef enum share_count_mode {
    COUNT_ON_SHARE_ROW,   /* up to 0.6: an UPDATE of the share row itself */
    COUNT_SHARDED,        /* 0.7: one of 16 counter rows of the link */
    COUNT_SHARDED_BY_ORG, /* from 0.8: the same, keyed by org first (one shard per org) */
    COUNT_NONE,           /* from 0.9, share_resolve_uncounted: the caller counts in batches */
} share_count_mode;

/*
 * The bundle of an active link, with the access counted. Counting with an UPDATE of the share
 * row made concurrent resolves of one link wait for each other; from 0.7 each backend adds to
 * its own counter row of the link (one of 16).
 */
static Datum
share_resolve(FunctionCallInfo fcinfo, share_count_mode mode)
{
    text *token = PG_GETARG_TEXT_PP(0);
    Oid types[3] = {BYTEAOID, INT2OID, UUIDOID};
    Datum args[3];
    pg_uuid_t org, share;
    int64 seq;
    bool isnull;
    MemoryContext caller = CurrentMemoryContext;
    dfd_buf out;
    Jsonb *j;
    int rc;
    /* one plan per counting mode: a backend may outlive an ALTER EXTENSION UPDATE */
    static SPIPlanPtr plan_lookup, plan_count[COUNT_NONE];

    /* the length is public knowledge; anything else goes through the same lookup */
    if (VARSIZE_ANY_EXHDR(token) != DFD_SHARE_TOKEN_LEN)
        share_not_found();
    args[0] = PointerGetDatum(token_hash_of(VARDATA_ANY(token), DFD_SHARE_TOKEN_LEN));
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    rc = SPI_execute_plan(
        dfd_saved_plan(&plan_lookup,
                       "SELECT org_id, seq, share_id FROM defendable.shares "
                       "WHERE token_hash OPERATOR(pg_catalog.=) $1 AND revoked_at IS NULL "
                       "AND expires_at OPERATOR(pg_catalog.>) pg_catalog.now()",
                       1, types),
        args, NULL, true, 1);
    if (rc != SPI_OK_SELECT)
        elog(ERROR, "cannot read share links");
    if (SPI_processed != 1)
        share_not_found();
    org = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
    share = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
    dfd_buf_init(&out);
    bundle_text(&org, seq, &out);
    j = text_to_jsonb(&out, caller);
    /*
     * Counted last: the counter row stays locked until commit, and counting before building
     * the bundle kept the next resolve of the link on that row waiting for the whole build
     * (Lock:transactionid waits under bench/gateway.sh's load). A hot standby (or any
     * read-only transaction) serves links without counting them.
     */
    if (mode != COUNT_NONE && !XactReadOnly) {
        dfd_internal_writes++;
        if (mode != COUNT_ON_SHARE_ROW) {
            types[0] = UUIDOID;
            args[0] = UUIDPGetDatum(&share);
            /* backend ids are small and dense (the lowest free slot), so concurrent sessions
             * seldom share a counter row; process ids, spread at random, often did */
            args[1] = Int16GetDatum((int16)(MyBackendId % SHARE_COUNT_SHARDS));
            args[2] = UUIDPGetDatum(&org);
            rc = SPI_execute_plan(
                dfd_saved_plan(
                    &plan_count[mode],
                    mode == COUNT_SHARDED_BY_ORG
                        ? "INSERT INTO defendable.share_access_counts AS c "
                          "(org_id, share_id, shard, accesses, last_access_at) "
                          "VALUES ($3, $1, $2, 1, pg_catalog.now()) "
                          "ON CONFLICT (org_id, share_id, shard) DO UPDATE "
                          "SET accesses = c.accesses OPERATOR(pg_catalog.+) 1, "
                          "last_access_at = pg_catalog.now()"
                        : "INSERT INTO defendable.share_access_counts AS c "
                          "(share_id, shard, accesses, last_access_at) "
                          "VALUES ($1, $2, 1, pg_catalog.now()) "
                          "ON CONFLICT (share_id, shard) DO UPDATE SET accesses = c.accesses "
                          "OPERATOR(pg_catalog.+) 1, last_access_at = pg_catalog.now()",
                    mode == COUNT_SHARDED_BY_ORG ? 3 : 2, types),
                args, NULL, false, 0);
            if (rc != SPI_OK_INSERT)
                elog(ERROR, "cannot count share access");
        } else {
            rc = SPI_execute_plan(
                dfd_saved_plan(&plan_count[mode],
                               "UPDATE defendable.shares SET access_count = access_count "
                               "OPERATOR(pg_catalog.+) 1, last_access_at = pg_catalog.now() "
                               "WHERE token_hash OPERATOR(pg_catalog.=) $1",
                               1, types),
                args, NULL, false, 0);
            if (rc != SPI_OK_UPDATE)
                elog(ERROR, "cannot count share access");
        }
        dfd_internal_writes--;
    }
    SPI_finish();
    PG_RETURN_JSONB_P(j);
}

PG_FUNCTION_INFO_V1(dfd_share_resolve);
/* share_resolve(token) up to 0.6: counts on the share row. */
Datum
dfd_share_resolve(PG_FUNCTION_ARGS)
{
    return share_resolve(fcinfo, COUNT_ON_SHARE_ROW);
}

PG_FUNCTION_INFO_V1(dfd_share_resolve_sharded);
/* share_resolve(token) in 0.7: counts on the backend's counter row of the link. */
Datum
dfd_share_resolve_sharded(PG_FUNCTION_ARGS)
{
    return share_resolve(fcinfo, COUNT_SHARDED);
}

PG_FUNCTION_INFO_V1(dfd_share_resolve_by_org);
/* share_resolve(token) from 0.8: the counter rows carry the link's org_id. */
Datum
dfd_share_resolve_by_org(PG_FUNCTION_ARGS)
{
    return share_resolve(fcinfo, COUNT_SHARDED_BY_ORG);
}

PG_FUNCTION_INFO_V1(dfd_share_resolve_uncounted);
/* share_resolve_uncounted(token) from 0.9: the bundle only; the caller adds the access later
 * with share_access_add (the gateway, once a second for all the links it served). */
Datum
dfd_share_resolve_uncounted(PG_FUNCTION_ARGS)
{
    return share_resolve(fcinfo, COUNT_NONE);
}

/* One call adds at most this many links' counts: the gateway sends one second's worth. */
#define SHARE_ACCESS_ADD_MAX_LINKS 10000
/* More accesses than this for one link in one call is not a count a gateway can have seen. */
#define SHARE_ACCESS_ADD_MAX_COUNT INT64CONST(1000000000)

PG_FUNCTION_INFO_V1(dfd_share_access_add);
/*
 * share_access_add(tokens text[], accesses bigint[]) from 0.9: adds accesses[i] to the link of
 * tokens[i], on this backend's counter row of the link, with one upsert per link. A token that
 * names no link (never existed, or deleted since) is skipped; revoked and expired links are
 * still counted, since the accesses were served while they were active. Returns how many links
 * were counted. The whole call is one statement: a bad element fails it and writes nothing.
 */
Datum
dfd_share_access_add(PG_FUNCTION_ARGS)
{
    ArrayType *tokens = PG_GETARG_ARRAYTYPE_P(0);
    ArrayType *counts = PG_GETARG_ARRAYTYPE_P(1);
    Datum *tok, *cnt;
    bool *tok_null, *cnt_null;
    int ntok, ncnt;
    int64 counted = 0;
    Oid types[3] = {BYTEAOID, INT2OID, INT8OID};
    Datum args[3];
    static SPIPlanPtr plan_add;

    if (ARR_NDIM(tokens) > 1 || ARR_NDIM(counts) > 1)
        ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
                        errmsg("tokens and accesses must be one-dimensional arrays")));
    deconstruct_array(tokens, TEXTOID, -1, false, TYPALIGN_INT, &tok, &tok_null, &ntok);
    deconstruct_array(counts, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &cnt, &cnt_null, &ncnt);
    if (ntok != ncnt)
        ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
                        errmsg("tokens and accesses must have the same length"),
                        errdetail("%d tokens, %d counts.", ntok, ncnt)));
    if (ntok > SHARE_ACCESS_ADD_MAX_LINKS)
        ereport(ERROR,
                (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("too many links in one call"),
                 errdetail("At most %d, got %d.", SHARE_ACCESS_ADD_MAX_LINKS, ntok)));
    /* every element checked before the first write */
    for (int i = 0; i < ntok; i++) {
        if (tok_null[i] || cnt_null[i])
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("tokens and accesses must not contain nulls")));
        if (DatumGetInt64(cnt[i]) < 1 || DatumGetInt64(cnt[i]) > SHARE_ACCESS_ADD_MAX_COUNT)
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                     errmsg("access counts must be between 1 and " INT64_FORMAT,
                            SHARE_ACCESS_ADD_MAX_COUNT),
                     errdetail("Element %d is " INT64_FORMAT ".", i + 1, DatumGetInt64(cnt[i]))));
    }
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    dfd_internal_writes++;
    for (int i = 0; i < ntok; i++) {
        text *t = DatumGetTextPP(tok[i]);
        int rc;

        /* the length is public knowledge: anything else cannot name a link */
        if (VARSIZE_ANY_EXHDR(t) != DFD_SHARE_TOKEN_LEN)
            continue;
        args[0] = PointerGetDatum(token_hash_of(VARDATA_ANY(t), DFD_SHARE_TOKEN_LEN));
        args[1] = Int16GetDatum((int16)(MyBackendId % SHARE_COUNT_SHARDS));
        args[2] = cnt[i];
        rc = SPI_execute_plan(
            dfd_saved_plan(&plan_add,
                           "INSERT INTO defendable.share_access_counts AS c "
                           "(org_id, share_id, shard, accesses, last_access_at) "
                           "SELECT s.org_id, s.share_id, $2, $3, pg_catalog.now() "
                           "FROM defendable.shares s WHERE s.token_hash OPERATOR(pg_catalog.=) $1 "
                           "ON CONFLICT (org_id, share_id, shard) DO UPDATE "
                           "SET accesses = c.accesses OPERATOR(pg_catalog.+) EXCLUDED.accesses, "
                           "last_access_at = pg_catalog.now()",
                           3, types),
            args, NULL, false, 0);
        if (rc != SPI_OK_INSERT)
            elog(ERROR, "cannot count share access");
        counted += (int64)SPI_processed;
        pfree(DatumGetPointer(args[0]));
    }
    dfd_internal_writes--;
    SPI_finish();
    PG_RETURN_INT64(counted);
}

PG_FUNCTION_INFO_V1(dfd_export_org);
/*
 * export_org(org): JSON Lines for defendable-verify export. One object per receipt in seq
 * order ({"type":"receipt", header members}), then one per stored checkpoint
 * ({"type":"checkpoint","note":...}).
 */
Datum
dfd_export_org(PG_FUNCTION_ARGS)
{
    ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
    pg_uuid_t *org = PG_GETARG_UUID_P(0);
    Oid types[1] = {UUIDOID};
    Datum args[1] = {UUIDPGetDatum(org)};
    SPIPlanPtr plan;
    Portal portal;
    MemoryContext rowcxt;
    int rc;

    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC); /* SETOF text, not a row type */
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    rowcxt = AllocSetContextCreate(CurrentMemoryContext, "defendable export row",
                                   ALLOCSET_DEFAULT_SIZES);
    plan = SPI_prepare("SELECT org_id, seq, ts, kind, prev, fields, hash FROM defendable.receipts "
                       "WHERE org_id OPERATOR(pg_catalog.=) $1 ORDER BY seq",
                       1, types);
    if (plan == NULL)
        elog(ERROR, "SPI_prepare failed");
    portal = SPI_cursor_open(NULL, plan, args, NULL, true);
    for (;;) {
        SPI_cursor_fetch(portal, true, 1000);
        if (SPI_processed == 0)
            break;
        for (uint64 r = 0; r < SPI_processed; r++) {
            MemoryContext old = MemoryContextSwitchTo(rowcxt);
            dfd_buf line;
            Datum v[1];
            bool n[1] = {false};

            CHECK_FOR_INTERRUPTS();
            dfd_buf_init(&line);
            dfd_buf_putc(&line, '{');
            dfd_write_header_members(&line, SPI_tuptable->vals[r], SPI_tuptable->tupdesc);
            dfd_buf_puts(&line, ",\"type\":\"receipt\",\"v\":1}");
            v[0] = PointerGetDatum(cstring_to_text_with_len(line.data, (int)line.len));
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
            MemoryContextSwitchTo(old);
            MemoryContextReset(rowcxt);
        }
        SPI_freetuptable(SPI_tuptable);
    }
    SPI_cursor_close(portal);
    rc = SPI_execute_with_args("SELECT note FROM defendable.checkpoints "
                               "WHERE org_id OPERATOR(pg_catalog.=) $1 "
                               "ORDER BY tree_size, recorded_at",
                               1, types, args, NULL, true, 0);
    if (rc != SPI_OK_SELECT)
        elog(ERROR, "cannot read checkpoints");
    for (uint64 r = 0; r < SPI_processed; r++) {
        char *note = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
        dfd_buf line;
        Datum v[1];
        bool n[1] = {false};

        dfd_buf_init(&line);
        dfd_buf_puts(&line, "{\"note\":");
        dfd_jcs_string(&line, note, strlen(note));
        dfd_buf_puts(&line, ",\"type\":\"checkpoint\"}");
        v[0] = PointerGetDatum(cstring_to_text_with_len(line.data, (int)line.len));
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
        dfd_buf_free(&line);
    }
    SPI_finish();
    return (Datum)0;
}
