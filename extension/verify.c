/*
 * verify.c: ledger verification, rebuilt bodies and public projections.
 *
 * verify_ledger() reads the receipts straight from the primary-key index (org_id, seq) in
 * one ordered scan, with no SPI in the loop: checking a million receipts must cost little
 * more than hashing them. Per-receipt work runs in a memory context reset for every row.
 */
#include "dfd_pg.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* Column numbers of defendable.receipts (install script order). */
enum { RC_ORG = 0, RC_SEQ, RC_TS, RC_KIND, RC_PREV, RC_FIELDS, RC_HASH, RC_NATTS };

/* A stored head, as read from defendable.heads. */
typedef struct stored_head {
    pg_uuid_t org;
    int64 seq;
    uint8 hash[DFD_SHA256_LEN];
    bool hash_ok; /* the stored hash has 32 bytes */
} stored_head;

/* The running state of one organization's verification. */
typedef struct org_check {
    pg_uuid_t org;
    int64 receipts;
    int64 expected;             /* next seq expected */
    uint8 prev[DFD_SHA256_LEN]; /* stored hash of the previous receipt */
    int64 first_bad;            /* 0 while all is well */
    const char *detail;
    char detail_buf[64];
} org_check;

static void
check_start(org_check *c, const pg_uuid_t *org)
{
    memset(c, 0, sizeof *c);
    c->org = *org;
    c->expected = 1;
}

static void
check_fail(org_check *c, int64 seq, const char *detail)
{
    if (c->first_bad == 0) {
        c->first_bad = seq;
        c->detail = detail;
    }
}

/* Checks one receipt row against the chain so far. */
static void
check_row(org_check *c, Datum *v, dfd_buf *body)
{
    int64 seq = DatumGetInt64(v[RC_SEQ]);
    bytea *prev, *hash;
    text *kind;
    uint8 computed[DFD_SHA256_LEN];
    dfd_body_result br;

    c->receipts++;
    if (c->first_bad != 0)
        return; /* only the first problem is reported; keep counting */
    if (seq != c->expected) {
        if (seq > c->expected) {
            snprintf(c->detail_buf, sizeof c->detail_buf, "missing seq %lld",
                     (long long)c->expected);
            check_fail(c, c->expected, c->detail_buf);
        } else {
            snprintf(c->detail_buf, sizeof c->detail_buf, "duplicate seq %lld", (long long)seq);
            check_fail(c, seq, c->detail_buf);
        }
        return;
    }
    c->expected = seq + 1;
    prev = DatumGetByteaPP(v[RC_PREV]);
    hash = DatumGetByteaPP(v[RC_HASH]);
    if (VARSIZE_ANY_EXHDR(prev) != DFD_SHA256_LEN ||
        memcmp(VARDATA_ANY(prev), c->prev, DFD_SHA256_LEN) != 0) {
        check_fail(c, seq, "prev link broken");
        return;
    }
    kind = DatumGetTextPP(v[RC_KIND]);
    dfd_buf_reset(body);
    br = dfd_build_body(body, DatumGetUUIDP(v[RC_ORG]), seq, DatumGetTimestampTz(v[RC_TS]),
                        VARDATA_ANY(kind), VARSIZE_ANY_EXHDR(kind), prev,
                        DatumGetJsonbP(v[RC_FIELDS]));
    if (br == DFD_BODY_MALFORMED_FIELDS) {
        check_fail(c, seq, "malformed fields");
        return;
    }
    if (br != DFD_BODY_OK || !dfd_receipt_hash(body->data, body->len, computed) ||
        VARSIZE_ANY_EXHDR(hash) != DFD_SHA256_LEN ||
        memcmp(computed, VARDATA_ANY(hash), DFD_SHA256_LEN) != 0) {
        check_fail(c, seq, "hash mismatch");
        return;
    }
    memcpy(c->prev, VARDATA_ANY(hash), DFD_SHA256_LEN);
}

/* Compares the end of the chain with the stored head (or this backend's unflushed one). */
static void
check_head(org_check *c, stored_head *h)
{
    int64 last = c->expected - 1;
    int64 head_seq;
    uint8 head_hash[DFD_SHA256_LEN];

    if (c->first_bad != 0)
        return;
    if (dfd_pending_head(&c->org, &head_seq, head_hash)) {
        /* this transaction appended and has not committed: its head is not written yet */
    } else if (h == NULL) {
        if (last > 0)
            check_fail(c, 1, "head mismatch");
        return;
    } else {
        head_seq = h->seq;
        memcpy(head_hash, h->hash, DFD_SHA256_LEN);
        if (!h->hash_ok) {
            check_fail(c, Max(h->seq, 1), "head mismatch");
            return;
        }
    }
    if (head_seq > last)
        check_fail(c, last + 1, "head mismatch"); /* truncated tail */
    else if (head_seq < last)
        check_fail(c, head_seq + 1, "head mismatch"); /* rows beyond the head */
    else if (last > 0 && memcmp(head_hash, c->prev, DFD_SHA256_LEN) != 0)
        check_fail(c, last, "head mismatch");
    else if (last == 0 && memcmp(head_hash, c->prev, DFD_SHA256_LEN) != 0)
        check_fail(c, 1, "head mismatch");
}

static void
emit_result(Tuplestorestate *ts, TupleDesc desc, org_check *c, stored_head *h)
{
    Datum values[7];
    bool nulls[7] = {false};
    char hex[DFD_HEX_HASH_LEN + 1];

    values[0] = UUIDPGetDatum(&c->org);
    values[1] = Int64GetDatum(c->receipts);
    if (h != NULL) {
        values[2] = Int64GetDatum(h->seq);
        dfd_hex_encode(h->hash, DFD_SHA256_LEN, hex);
        hex[DFD_HEX_HASH_LEN] = '\0';
        values[3] = CStringGetTextDatum(hex);
    } else {
        nulls[2] = nulls[3] = true;
    }
    values[4] = BoolGetDatum(c->first_bad == 0);
    if (c->first_bad == 0) {
        nulls[5] = true;
        values[6] = CStringGetTextDatum("ok");
    } else {
        values[5] = Int64GetDatum(c->first_bad);
        values[6] = CStringGetTextDatum(c->detail);
    }
    tuplestore_putvalues(ts, desc, values, nulls);
}

/* Reads the stored heads (all orgs, or one), sorted by org. */
static stored_head *
load_heads(const pg_uuid_t *org, int *count)
{
    stored_head *heads;
    MemoryContext caller = CurrentMemoryContext;
    Oid argtypes[1] = {UUIDOID};
    Datum args[1];
    int rc;

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    args[0] = org ? UUIDPGetDatum(org) : (Datum)0;
    rc = SPI_execute_with_args("SELECT org_id, seq, hash FROM defendable.heads "
                               "WHERE $1 IS NULL OR org_id OPERATOR(pg_catalog.=) $1 "
                               "ORDER BY org_id",
                               1, argtypes, args, org ? NULL : "n", true, 0);
    if (rc != SPI_OK_SELECT)
        elog(ERROR, "cannot read ledger heads: %s", SPI_result_code_string(rc));
    heads = MemoryContextAllocZero(caller, sizeof(stored_head) * (SPI_processed + 1));
    for (uint64 i = 0; i < SPI_processed; i++) {
        HeapTuple t = SPI_tuptable->vals[i];
        TupleDesc d = SPI_tuptable->tupdesc;
        bool isnull;
        bytea *hash;

        heads[i].org = *DatumGetUUIDP(SPI_getbinval(t, d, 1, &isnull));
        heads[i].seq = DatumGetInt64(SPI_getbinval(t, d, 2, &isnull));
        hash = DatumGetByteaPP(SPI_getbinval(t, d, 3, &isnull));
        heads[i].hash_ok = VARSIZE_ANY_EXHDR(hash) == DFD_SHA256_LEN;
        if (heads[i].hash_ok)
            memcpy(heads[i].hash, VARDATA_ANY(hash), DFD_SHA256_LEN);
    }
    *count = (int)SPI_processed;
    SPI_finish();
    return heads;
}

static int
org_cmp(const pg_uuid_t *a, const pg_uuid_t *b)
{
    return memcmp(a->data, b->data, UUID_LEN);
}

/* Reports an org that has a stored head but no receipts (a tail truncated to nothing). */
static void
emit_head_only(ReturnSetInfo *rsinfo, stored_head *h)
{
    org_check empty;

    check_start(&empty, &h->org);
    check_head(&empty, h);
    emit_result(rsinfo->setResult, rsinfo->setDesc, &empty, h);
}

/*
 * Ends one org's check: first reports the head-only orgs that sort before it (heads and
 * receipts are both in org order), then compares the org's chain with its head.
 */
static void
finish_org(ReturnSetInfo *rsinfo, org_check *c, stored_head *heads, int nheads, int *hi)
{
    stored_head *h = NULL;

    while (*hi < nheads && org_cmp(&heads[*hi].org, &c->org) < 0)
        emit_head_only(rsinfo, &heads[(*hi)++]);
    if (*hi < nheads && org_cmp(&heads[*hi].org, &c->org) == 0)
        h = &heads[(*hi)++];
    check_head(c, h);
    emit_result(rsinfo->setResult, rsinfo->setDesc, c, h);
}

PG_FUNCTION_INFO_V1(dfd_verify_ledger);
/*
 * verify_ledger(org uuid default null): one row per organization with its receipt count,
 * stored head, and the first bad seq with the reason, if any.
 */
Datum
dfd_verify_ledger(PG_FUNCTION_ARGS)
{
    ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
    pg_uuid_t *only = PG_ARGISNULL(0) ? NULL : PG_GETARG_UUID_P(0);
    stored_head *heads;
    int nheads, hi = 0;
    Relation rel, idx;
    IndexScanDesc scan;
    ScanKeyData key;
    TupleTableSlot *slot;
    MemoryContext rowcxt, oldcxt;
    org_check cur;
    bool have_cur = false;
    dfd_buf body;

    InitMaterializedSRF(fcinfo, 0);
    heads = load_heads(only, &nheads);

    rel = table_open(dfd_relation_oid("receipts"), AccessShareLock);
    idx = index_open(dfd_relation_oid("receipts_pkey"), AccessShareLock);
    if (RelationGetDescr(rel)->natts != RC_NATTS)
        ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                        errmsg("defendable.receipts does not have the expected columns")));
    rowcxt = AllocSetContextCreate(CurrentMemoryContext, "defendable verify row",
                                   ALLOCSET_DEFAULT_SIZES);
    dfd_buf_init(&body);
    /* the body buffer lives across rows; reserve it outside the per-row context */
    dfd_buf_reserve(&body, 4096);

    scan = index_beginscan(rel, idx, GetActiveSnapshot(), only ? 1 : 0, 0);
    if (only) {
        ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(only));
        index_rescan(scan, &key, 1, NULL, 0);
    } else {
        index_rescan(scan, NULL, 0, NULL, 0);
    }
    slot = table_slot_create(rel, NULL);
    while (index_getnext_slot(scan, ForwardScanDirection, slot)) {
        pg_uuid_t *org;
        bool anynull = false;

        CHECK_FOR_INTERRUPTS();
        slot_getallattrs(slot);
        for (int i = 0; i < RC_NATTS; i++)
            anynull |= slot->tts_isnull[i];
        org = DatumGetUUIDP(slot->tts_values[RC_ORG]);
        if (!have_cur || org_cmp(org, &cur.org) != 0) {
            if (have_cur)
                finish_org(rsinfo, &cur, heads, nheads, &hi);
            check_start(&cur, org);
            have_cur = true;
        }
        if (anynull) {
            cur.receipts++;
            check_fail(&cur, DatumGetInt64(slot->tts_values[RC_SEQ]), "hash mismatch");
            continue;
        }
        oldcxt = MemoryContextSwitchTo(rowcxt);
        check_row(&cur, slot->tts_values, &body);
        MemoryContextSwitchTo(oldcxt);
        MemoryContextReset(rowcxt);
    }
    if (have_cur)
        finish_org(rsinfo, &cur, heads, nheads, &hi);
    /* orgs with a head but no receipts at all, sorting after the last org with receipts */
    for (; hi < nheads; hi++)
        emit_head_only(rsinfo, &heads[hi]);
    if (only && !have_cur && nheads == 0) {
        /* an org with no ledger at all: one row, trivially consistent */
        org_check empty;

        check_start(&empty, only);
        emit_result(rsinfo->setResult, rsinfo->setDesc, &empty, NULL);
    }
    ExecDropSingleTupleTableSlot(slot);
    index_endscan(scan);
    index_close(idx, AccessShareLock);
    table_close(rel, AccessShareLock);
    dfd_buf_free(&body);
    MemoryContextDelete(rowcxt);
    return (Datum)0;
}

/* Fetches one receipt's columns and its disclosures row through SPI (inside SPI_connect). */
static bool
fetch_receipt(const pg_uuid_t *org, int64 seq)
{
    Oid types[2] = {UUIDOID, INT8OID};
    Datum args[2] = {UUIDPGetDatum(org), Int64GetDatum(seq)};
    int rc;
    static SPIPlanPtr plan;

    rc = SPI_execute_plan(
        dfd_saved_plan(
            &plan,
            "SELECT r.org_id, r.seq, r.ts, r.kind, r.prev, r.fields, r.hash, "
            "       d.salts, d.field_values, d.public_fields "
            "FROM defendable.receipts r LEFT JOIN defendable.disclosures d "
            "  ON d.org_id OPERATOR(pg_catalog.=) r.org_id "
            " AND d.seq OPERATOR(pg_catalog.=) r.seq "
            "WHERE r.org_id OPERATOR(pg_catalog.=) $1 AND r.seq OPERATOR(pg_catalog.=) $2",
            2, types),
        args, NULL, true, 1);
    if (rc != SPI_OK_SELECT)
        elog(ERROR, "cannot read receipt: %s", SPI_result_code_string(rc));
    return SPI_processed == 1;
}

static void
no_such_receipt(const pg_uuid_t *org, int64 seq)
{
    char org_text[DFD_UUID_LEN + 1];

    dfd_uuid_to_text(org, org_text);
    ereport(ERROR,
            (errcode(ERRCODE_NO_DATA_FOUND),
             errmsg("receipt %lld of organization %s does not exist", (long long)seq, org_text)));
}

/* Rebuilds the body of the row fetched by fetch_receipt() into out. */
static void
body_of_fetched(dfd_buf *out)
{
    HeapTuple t = SPI_tuptable->vals[0];
    TupleDesc d = SPI_tuptable->tupdesc;
    Datum v[RC_NATTS];
    bool isnull[RC_NATTS];
    text *kind;
    dfd_body_result br;

    for (int i = 0; i < RC_NATTS; i++) {
        v[i] = SPI_getbinval(t, d, i + 1, &isnull[i]);
        if (isnull[i])
            ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("receipt has a null column")));
    }
    kind = DatumGetTextPP(v[RC_KIND]);
    br = dfd_build_body(out, DatumGetUUIDP(v[RC_ORG]), DatumGetInt64(v[RC_SEQ]),
                        DatumGetTimestampTz(v[RC_TS]), VARDATA_ANY(kind), VARSIZE_ANY_EXHDR(kind),
                        DatumGetByteaPP(v[RC_PREV]), DatumGetJsonbP(v[RC_FIELDS]));
    if (br != DFD_BODY_OK)
        ereport(ERROR,
                (errcode(ERRCODE_DATA_CORRUPTED), errmsg("stored receipt is malformed"),
                 errdetail("%s", br == DFD_BODY_BAD_PREV ? "The prev column is not 32 bytes."
                                 : br == DFD_BODY_BAD_TS ? "The time is outside years 1-9999."
                                                         : "The digest map is malformed.")));
}

/*
 * Connects SPI, fetches one receipt (error if there is none) and rebuilds its body. The row
 * stays in SPI_tuptable until the caller's SPI_finish.
 */
static void
open_receipt(const pg_uuid_t *org, int64 seq, dfd_buf *body)
{
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    if (!fetch_receipt(org, seq))
        no_such_receipt(org, seq);
    dfd_buf_init(body);
    body_of_fetched(body);
}

PG_FUNCTION_INFO_V1(dfd_sql_receipt_body);
/* receipt_body(org, seq): the exact text whose SHA-256 is the receipt's hash. */
Datum
dfd_sql_receipt_body(PG_FUNCTION_ARGS)
{
    pg_uuid_t *org = PG_GETARG_UUID_P(0);
    int64 seq = PG_GETARG_INT64(1);
    MemoryContext caller = CurrentMemoryContext;
    dfd_buf body;
    text *result;

    open_receipt(org, seq, &body);
    {
        MemoryContext old = MemoryContextSwitchTo(caller);

        result = cstring_to_text_with_len(body.data, (int)body.len);
        MemoryContextSwitchTo(old);
    }
    SPI_finish();
    PG_RETURN_TEXT_P(result);
}

/*
 * Canonical value text of one stored field, or NULL if the field's disclosure was erased.
 * salts and values are the disclosures row's two objects.
 */
static bool
stored_disclosure(Jsonb *salts, Jsonb *values, const char *name, int name_len, dfd_buf *out,
                  bool *has_email)
{
    JsonbValue key, *salt, *value;
    dfd_buf jcs;

    if (salts == NULL || values == NULL)
        return false;
    key.type = jbvString;
    key.val.string.val = (char *)name;
    key.val.string.len = name_len;
    salt = findJsonbValueFromContainer(&salts->root, JB_FOBJECT, &key);
    value = findJsonbValueFromContainer(&values->root, JB_FOBJECT, &key);
    if (salt == NULL || value == NULL || salt->type != jbvString)
        return false;
    dfd_buf_init(&jcs);
    dfd_jsonb_value_jcs(&jcs, value, true);
    *has_email = dfd_contains_email(jcs.data, jcs.len);
    {
        char *salt_text = pnstrdup(salt->val.string.val, salt->val.string.len);

        if (dfd_disclosure(out, salt_text, name, (size_t)name_len, jcs.data, jcs.len) != DFD_OK)
            dfd_report_core_error(DFD_ENOMEM, "cannot build disclosure");
        pfree(salt_text);
    }
    dfd_buf_free(&jcs);
    return true;
}

/*
 * Writes the public projection of one receipt as JSON text (inside SPI): header, hash, digest
 * map and the disclosures of the fields that are public and not covered by the never-public
 * rule. Refuses a receipt whose stored hash does not match its body.
 */
void
dfd_projection_text(const pg_uuid_t *org, int64 seq, dfd_buf *out)
{
    HeapTuple t;
    TupleDesc d;
    bool isnull, salts_null, values_null, public_null;
    Jsonb *salts, *values;
    Datum *names = NULL;
    int nnames = 0, ndisclosed = 0;
    dfd_buf body;
    bytea *hash;

    if (!fetch_receipt(org, seq))
        no_such_receipt(org, seq);
    dfd_buf_init(&body);
    body_of_fetched(&body);
    /* a projection of a receipt that does not hash right would mislead whoever gets it */
    t = SPI_tuptable->vals[0];
    d = SPI_tuptable->tupdesc;
    hash = DatumGetByteaPP(SPI_getbinval(t, d, RC_HASH + 1, &isnull));
    {
        uint8 computed[DFD_SHA256_LEN];

        if (!dfd_receipt_hash(body.data, body.len, computed) ||
            VARSIZE_ANY_EXHDR(hash) != DFD_SHA256_LEN ||
            memcmp(computed, VARDATA_ANY(hash), DFD_SHA256_LEN) != 0)
            ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                            errmsg("receipt %lld does not match its hash", (long long)seq),
                            errhint("Run defendable.verify_ledger().")));
    }
    dfd_buf_free(&body);
    /* a receipt without fields has no disclosures row: the three columns are null */
    {
        Datum sd = SPI_getbinval(t, d, 8, &salts_null);
        Datum vd = SPI_getbinval(t, d, 9, &values_null);
        Datum pd = SPI_getbinval(t, d, 10, &public_null);

        salts = salts_null ? NULL : DatumGetJsonbP(sd);
        values = values_null ? NULL : DatumGetJsonbP(vd);
        if (!public_null) {
            bool *nulls;

            deconstruct_array(DatumGetArrayTypeP(pd), TEXTOID, -1, false, TYPALIGN_INT, &names,
                              &nulls, &nnames);
        }
    }
    dfd_buf_puts(out, "{\"disclosures\":[");
    for (int i = 0; i < nnames; i++) {
        text *name = DatumGetTextPP(names[i]);
        int len = VARSIZE_ANY_EXHDR(name);
        bool has_email = false;
        dfd_buf disclosure;

        if (dfd_never_public_name(VARDATA_ANY(name), (size_t)len))
            continue;
        dfd_buf_init(&disclosure);
        if (stored_disclosure(salts, values, VARDATA_ANY(name), len, &disclosure, &has_email) &&
            !has_email) {
            if (ndisclosed++)
                dfd_buf_putc(out, ',');
            dfd_jcs_string(out, disclosure.data, disclosure.len);
        }
        dfd_buf_free(&disclosure);
    }
    dfd_buf_puts(out, "],");
    dfd_write_header_members(out, t, d);
    dfd_buf_puts(out, ",\"v\":1}");
}

PG_FUNCTION_INFO_V1(dfd_public_projection);
/* public_projection(org, seq): the redacted, verifiable view of a receipt. */
Datum
dfd_public_projection(PG_FUNCTION_ARGS)
{
    MemoryContext caller = CurrentMemoryContext;
    dfd_buf out;
    Jsonb *result;

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    dfd_buf_init(&out);
    dfd_projection_text(PG_GETARG_UUID_P(0), PG_GETARG_INT64(1), &out);
    dfd_buf_terminate(&out);
    {
        MemoryContext old = MemoryContextSwitchTo(caller);

        result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
        MemoryContextSwitchTo(old);
    }
    SPI_finish();
    PG_RETURN_JSONB_P(result);
}

PG_FUNCTION_INFO_V1(dfd_verify_disclosures);
/*
 * verify_disclosures(org uuid default null): recomputes every kept disclosure from its salt
 * and value and compares it with the receipt's digest. One row per organization.
 */
Datum
dfd_verify_disclosures(PG_FUNCTION_ARGS)
{
    ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
    Oid argtypes[1] = {UUIDOID};
    Datum args[1];
    Portal portal;
    SPIPlanPtr plan;
    MemoryContext rowcxt, spicxt;
    pg_uuid_t cur_org;
    bool have_org = false;
    int64 checked = 0, erased = 0, first_bad = 0;
    char detail[160] = "ok";

    InitMaterializedSRF(fcinfo, 0);
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    spicxt = CurrentMemoryContext;
    rowcxt =
        AllocSetContextCreate(spicxt, "defendable verify disclosures row", ALLOCSET_DEFAULT_SIZES);
    plan = SPI_prepare("SELECT r.org_id, r.seq, r.fields, d.salts, d.field_values "
                       "FROM defendable.receipts r LEFT JOIN defendable.disclosures d "
                       "  ON d.org_id OPERATOR(pg_catalog.=) r.org_id "
                       " AND d.seq OPERATOR(pg_catalog.=) r.seq "
                       "WHERE $1 IS NULL OR r.org_id OPERATOR(pg_catalog.=) $1 "
                       "ORDER BY r.org_id, r.seq",
                       1, argtypes);
    if (plan == NULL)
        elog(ERROR, "SPI_prepare failed");
    args[0] = PG_ARGISNULL(0) ? (Datum)0 : UUIDPGetDatum(PG_GETARG_UUID_P(0));
    portal = SPI_cursor_open(NULL, plan, args, PG_ARGISNULL(0) ? "n" : NULL, true);

#define EMIT_ORG()                                                                                 \
    do {                                                                                           \
        Datum rv[6];                                                                               \
        bool rn[6] = {false};                                                                      \
        MemoryContext o = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);          \
        rv[0] = UUIDPGetDatum(&cur_org);                                                           \
        rv[1] = Int64GetDatum(checked);                                                            \
        rv[2] = Int64GetDatum(erased);                                                             \
        rv[3] = BoolGetDatum(first_bad == 0);                                                      \
        rv[4] = Int64GetDatum(first_bad);                                                          \
        rn[4] = first_bad == 0;                                                                    \
        rv[5] = CStringGetTextDatum(detail);                                                       \
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, rv, rn);                          \
        MemoryContextSwitchTo(o);                                                                  \
    } while (0)

    for (;;) {
        SPI_cursor_fetch(portal, true, 1000);
        if (SPI_processed == 0)
            break;
        for (uint64 r = 0; r < SPI_processed; r++) {
            HeapTuple t = SPI_tuptable->vals[r];
            TupleDesc d = SPI_tuptable->tupdesc;
            bool isnull, snull, vnull;
            pg_uuid_t *org;
            int64 seq;
            Jsonb *fields, *salts = NULL, *values = NULL;
            JsonbIterator *it;
            JsonbValue k, v;
            JsonbIteratorToken tok;
            MemoryContext old;

            CHECK_FOR_INTERRUPTS();
            old = MemoryContextSwitchTo(rowcxt);
            org = DatumGetUUIDP(SPI_getbinval(t, d, 1, &isnull));
            if (!have_org || org_cmp(org, &cur_org) != 0) {
                if (have_org)
                    EMIT_ORG();
                cur_org = *org;
                have_org = true;
                checked = erased = first_bad = 0;
                strlcpy(detail, "ok", sizeof detail);
            }
            seq = DatumGetInt64(SPI_getbinval(t, d, 2, &isnull));
            fields = DatumGetJsonbP(SPI_getbinval(t, d, 3, &isnull));
            {
                Datum sd = SPI_getbinval(t, d, 4, &snull), vd = SPI_getbinval(t, d, 5, &vnull);

                if (!snull)
                    salts = DatumGetJsonbP(sd);
                if (!vnull)
                    values = DatumGetJsonbP(vd);
            }
            if (!isnull && JB_ROOT_IS_OBJECT(fields) && !JB_ROOT_IS_SCALAR(fields)) {
                it = JsonbIteratorInit(&fields->root);
                tok = JsonbIteratorNext(&it, &k, true);
                while ((tok = JsonbIteratorNext(&it, &k, true)) == WJB_KEY) {
                    dfd_buf disclosure;
                    bool has_email;
                    char digest[DFD_DIGEST_B64_LEN + 1];
                    char *name = pnstrdup(k.val.string.val, k.val.string.len);

                    tok = JsonbIteratorNext(&it, &v, true);
                    dfd_buf_init(&disclosure);
                    if (!stored_disclosure(salts, values, name, k.val.string.len, &disclosure,
                                           &has_email)) {
                        erased++;
                        continue;
                    }
                    checked++;
                    dfd_disclosure_digest(disclosure.data, disclosure.len, digest);
                    if (first_bad == 0 &&
                        (v.type != jbvString || v.val.string.len != DFD_DIGEST_B64_LEN ||
                         memcmp(v.val.string.val, digest, DFD_DIGEST_B64_LEN) != 0)) {
                        first_bad = seq;
                        snprintf(detail, sizeof detail, "digest mismatch for field %s", name);
                    }
                }
            }
            /* a kept salt for a name the receipt does not commit to is not ours */
            if (first_bad == 0 && salts != NULL && JB_ROOT_IS_OBJECT(salts)) {
                it = JsonbIteratorInit(&salts->root);
                tok = JsonbIteratorNext(&it, &k, true);
                while ((tok = JsonbIteratorNext(&it, &k, true)) == WJB_KEY) {
                    tok = JsonbIteratorNext(&it, &v, true);
                    if (isnull ||
                        findJsonbValueFromContainer(&fields->root, JB_FOBJECT, &k) == NULL) {
                        first_bad = seq;
                        snprintf(detail, sizeof detail, "disclosure for unknown field %.64s",
                                 pnstrdup(k.val.string.val, k.val.string.len));
                        break;
                    }
                }
            }
            MemoryContextSwitchTo(old);
            MemoryContextReset(rowcxt);
        }
        SPI_freetuptable(SPI_tuptable);
    }
    if (have_org)
        EMIT_ORG();
#undef EMIT_ORG
    SPI_cursor_close(portal);
    SPI_finish();
    return (Datum)0;
}
