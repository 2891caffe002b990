/*
 * append.c: defendable.append_receipt(), the per-organization head, and the triggers that
 * keep the ledger tables append-only.
 *
 * Concurrency design (docs/architecture.md, "The head"):
 *
 * - Appends to one organization serialize on a transaction-level lock whose tag is derived
 *   from the organization's UUID. It is taken under the top-level transaction's resource
 *   owner, so a subtransaction that aborts (a PL/pgSQL exception block) cannot release it
 *   while the transaction still believes it holds the org. Different orgs take different
 *   locks and never wait for each other.
 *
 * - The head (seq and hash of the last receipt, table defendable.heads) is read once per
 *   organization and transaction, then kept in a backend-local cache for the rest of the
 *   transaction. It is written back once, at commit, by a deferred constraint trigger. A
 *   transaction that appends 100,000 receipts therefore updates the head row once instead of
 *   100,000 times: updating one row repeatedly inside a transaction lengthens the chain of row
 *   versions that every later lookup walks, which makes bulk appends quadratic.
 *
 * - When a subtransaction aborts, the cache is dropped; the next append re-reads the last
 *   receipt, which then reflects exactly the appends that survived.
 */
#include "dfd_pg.h"

#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/sysattr.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "core/dfd_merkle.h"

/* advisory lock class of our org locks; user advisory locks use 1 and 2 */
#define DFD_LOCK_CLASS 0x6466

typedef struct org_head {
    pg_uuid_t org; /* hash key */
    int64 seq;
    uint8 hash[DFD_SHA256_LEN];
    TimestampTz ts;
    bool needs_touch;         /* the deferred head flush is not queued for the appends since */
    int64 flushed_seq;        /* the seq the flush last wrote to the table (-1: none yet) */
    bool has_tree;            /* the schema keeps a Merkle tree (version 0.2 and later) */
    bool head_row;            /* the org has a row in defendable.heads */
    ItemPointerData head_tid; /* where get_head read it, when read by primary key */
    dfd_merkle_frontier frontier;
} org_head;

/* Heads of the orgs this transaction appended to; lives in TopTransactionContext. */
static HTAB *org_heads = NULL;

/* The schema keeps the Merkle frontier in the head row (0.7 and later). */
static bool heads_keep_frontier = false;

/* Saved plans, prepared once per backend. */
static SPIPlanPtr plan_head, plan_last, plan_touch, plan_insert_receipt, plan_insert_disclosure,
    plan_flush;

/*
 * Merkle frontiers of committed heads, kept across transactions. Loading a frontier reads the
 * stored nodes and up to 15 receipt hashes of the org; a backend appending one receipt per
 * transaction (the common shape: one event, one commit) would pay that every time. An entry is
 * used only when the head read under the org's lock has exactly its seq and last hash, which
 * commit to the whole chain and so to the tree.
 */
typedef struct committed_frontier {
    pg_uuid_t org; /* hash key */
    int64 seq;
    uint8 hash[DFD_SHA256_LEN];
    dfd_merkle_frontier frontier;
} committed_frontier;

#define FRONTIER_CACHE_MAX 256

static HTAB *frontier_cache = NULL;   /* TopMemoryContext */
static HTAB *frontier_pending = NULL; /* this transaction's heads, between pre-commit and commit */

static HTAB *
frontier_table(const char *name)
{
    HASHCTL ctl;

    ctl.keysize = sizeof(pg_uuid_t);
    ctl.entrysize = sizeof(committed_frontier);
    ctl.hcxt = TopMemoryContext;
    return hash_create(name, 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static void
forget_pending(void)
{
    if (frontier_pending != NULL)
        hash_destroy(frontier_pending);
    frontier_pending = NULL;
}

/* Pre-commit: the heads are final (the deferred flush ran), but the commit may still fail. */
static void
stash_frontiers(void)
{
    HASH_SEQ_STATUS it;
    org_head *h;

    forget_pending();
    if (org_heads == NULL)
        return;
    hash_seq_init(&it, org_heads);
    while ((h = hash_seq_search(&it)) != NULL) {
        committed_frontier *c;
        bool found;

        if (!h->has_tree)
            continue;
        if (frontier_pending == NULL)
            frontier_pending = frontier_table("defendable pending frontiers");
        c = hash_search(frontier_pending, &h->org, HASH_ENTER, &found);
        c->seq = h->seq;
        memcpy(c->hash, h->hash, DFD_SHA256_LEN);
        c->frontier = h->frontier;
    }
}

/* Commit: what was stashed is now what every later transaction will read from the tables. */
static void
promote_frontiers(void)
{
    HASH_SEQ_STATUS it;
    committed_frontier *p;

    if (frontier_pending == NULL)
        return;
    if (frontier_cache != NULL && hash_get_num_entries(frontier_cache) >= FRONTIER_CACHE_MAX) {
        hash_destroy(frontier_cache);
        frontier_cache = NULL;
    }
    if (frontier_cache == NULL)
        frontier_cache = frontier_table("defendable committed frontiers");
    hash_seq_init(&it, frontier_pending);
    while ((p = hash_seq_search(&it)) != NULL) {
        bool found;
        committed_frontier *c = hash_search(frontier_cache, &p->org, HASH_ENTER, &found);

        *c = *p;
    }
    forget_pending();
}

/* The frontier of org at (seq, hash) if a committed transaction of this backend left it. */
static bool
cached_frontier(const pg_uuid_t *org, int64 seq, const uint8 *hash, dfd_merkle_frontier *out)
{
    committed_frontier *c;

    if (frontier_cache == NULL || (c = hash_search(frontier_cache, org, HASH_FIND, NULL)) == NULL ||
        c->seq != seq || memcmp(c->hash, hash, DFD_SHA256_LEN) != 0 ||
        c->frontier.size != (uint64)seq)
        return false;
    *out = c->frontier;
    return true;
}

static void
xact_callback(XactEvent event, void *arg)
{
    if (event == XACT_EVENT_PRE_COMMIT)
        stash_frontiers();
    else if (event == XACT_EVENT_COMMIT)
        promote_frontiers();
    else
        forget_pending(); /* abort, or a prepared transaction whose outcome we never learn */
    /* the table's memory goes with TopTransactionContext; forget the pointer */
    org_heads = NULL;
    dfd_internal_writes = 0;
}

static void
subxact_callback(SubXactEvent event, SubTransactionId my, SubTransactionId parent, void *arg)
{
    if (event == SUBXACT_EVENT_ABORT_SUB) {
        /* the aborted subtransaction may have appended: re-read heads from the table */
        if (org_heads != NULL)
            hash_destroy(org_heads);
        org_heads = NULL;
        dfd_internal_writes = 0;
    }
}

void
dfd_append_init(void)
{
    RegisterXactCallback(xact_callback, NULL);
    RegisterSubXactCallback(subxact_callback, NULL);
}

/*
 * Operators are written OPERATOR(pg_catalog.=) so that nothing on the caller's search_path
 * (the flush trigger runs at commit, under whatever path is set then) can stand in for them.
 */
static void
prepare_plans(void)
{
    Oid uuid1[1] = {UUIDOID};
    Oid head4[4] = {UUIDOID, INT8OID, BYTEAOID, BYTEAOID};
    Oid rec7[7] = {UUIDOID, INT8OID, TIMESTAMPTZOID, TEXTOID, BYTEAOID, JSONBOID, BYTEAOID};
    Oid dis5[5] = {UUIDOID, INT8OID, JSONBOID, JSONBOID, TEXTARRAYOID};

    /* the last one prepared: a failure half way leaves it NULL and the rest are kept */
    if (plan_flush != NULL)
        return;
    /* 0.7 keeps the frontier in the head row; a backend of an older schema reads NULL */
    heads_keep_frontier =
        get_attnum(get_relname_relid("heads", get_namespace_oid("defendable", false)),
                   "frontier") != InvalidAttrNumber;
    dfd_saved_plan(&plan_head,
                   heads_keep_frontier
                       ? "SELECT seq, hash, frontier FROM defendable.heads "
                         "WHERE org_id OPERATOR(pg_catalog.=) $1"
                       : "SELECT seq, hash, NULL::pg_catalog.bytea FROM defendable.heads "
                         "WHERE org_id OPERATOR(pg_catalog.=) $1",
                   1, uuid1);
    dfd_saved_plan(&plan_last,
                   "SELECT seq, hash, ts, xmin FROM defendable.receipts "
                   "WHERE org_id OPERATOR(pg_catalog.=) $1 ORDER BY seq DESC LIMIT 1",
                   1, uuid1);
    /*
     * The touch writes the head as it stands after the transaction's first receipt for the org
     * (touch_head: this upsert for the org's first receipt, the UPDATE below or a direct update
     * later). It queues the deferred flush, which has nothing left to write when that receipt
     * is also the last (one event, one commit: the common shape), and under REPEATABLE READ it
     * fails at once, with a serialization error, when another transaction moved the head after
     * this one's snapshot was taken.
     */
    dfd_saved_plan(&plan_touch,
                   heads_keep_frontier
                       ? "INSERT INTO defendable.heads AS h (org_id, seq, hash, frontier) "
                         "VALUES ($1, $2, $3, $4) ON CONFLICT (org_id) DO UPDATE "
                         "SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, "
                         "frontier = EXCLUDED.frontier"
                       : "INSERT INTO defendable.heads AS h (org_id, seq, hash) "
                         "VALUES ($1, $2, $3) ON CONFLICT (org_id) DO UPDATE "
                         "SET seq = EXCLUDED.seq, hash = EXCLUDED.hash",
                   heads_keep_frontier ? 4 : 3, head4);
    dfd_saved_plan(&plan_insert_receipt,
                   "INSERT INTO defendable.receipts (org_id, seq, ts, kind, prev, fields, hash) "
                   "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                   7, rec7);
    dfd_saved_plan(&plan_insert_disclosure,
                   "INSERT INTO defendable.disclosures "
                   "(org_id, seq, salts, field_values, public_fields) "
                   "VALUES ($1, $2, $3, $4, $5)",
                   5, dis5);
    dfd_saved_plan(&plan_flush,
                   heads_keep_frontier
                       ? "UPDATE defendable.heads SET seq = $2, hash = $3, frontier = $4 "
                         "WHERE org_id OPERATOR(pg_catalog.=) $1"
                       : "UPDATE defendable.heads SET seq = $2, hash = $3 "
                         "WHERE org_id OPERATOR(pg_catalog.=) $1",
                   4, head4);
}

static void
internal_exec_nulls(SPIPlanPtr plan, Datum *values, const char *nulls, int expected)
{
    int rc;

    dfd_internal_writes++;
    rc = SPI_execute_plan(plan, values, nulls, false, 0);
    dfd_internal_writes--;
    if (rc < 0 || (expected >= 0 && SPI_processed != (uint64)expected))
        elog(ERROR, "internal write failed: %s (%llu rows)", SPI_result_code_string(rc),
             (unsigned long long)SPI_processed);
}

static void
internal_exec(SPIPlanPtr plan, Datum *values, int expected)
{
    internal_exec_nulls(plan, values, NULL, expected);
}

static bytea *
make_bytea(const uint8 *data, size_t len)
{
    bytea *b = palloc(VARHDRSZ + len);

    SET_VARSIZE(b, VARHDRSZ + len);
    memcpy(VARDATA(b), data, len);
    return b;
}

/* The head row's frontier: the last receipt's hash, then the packed frontier of its tree. */
static bytea *
frontier_blob(const org_head *h)
{
    uint8 buf[DFD_SHA256_LEN + DFD_MERKLE_FRONTIER_MAX];
    size_t len;

    memcpy(buf, h->hash, DFD_SHA256_LEN);
    len = dfd_merkle_frontier_pack(&h->frontier, buf + DFD_SHA256_LEN);
    return make_bytea(buf, DFD_SHA256_LEN + len);
}

/* The frontier a head row stores, if it belongs to exactly this head (seq and last hash). */
static bool
stored_frontier(Datum blob, bool isnull, int64 seq, const uint8 *hash, dfd_merkle_frontier *out)
{
    bytea *b;
    size_t len;

    if (isnull || seq <= 0)
        return false;
    b = DatumGetByteaPP(blob);
    len = VARSIZE_ANY_EXHDR(b);
    return len >= DFD_SHA256_LEN && memcmp(VARDATA_ANY(b), hash, DFD_SHA256_LEN) == 0 &&
           dfd_merkle_frontier_unpack((uint64)seq, (const uint8 *)VARDATA_ANY(b) + DFD_SHA256_LEN,
                                      len - DFD_SHA256_LEN, out);
}

/* Takes the org's append lock for the rest of the top-level transaction. */
static void
lock_org(const pg_uuid_t *org)
{
    LOCKTAG tag;
    uint32 w[4], k1, k2;
    ResourceOwner saved = CurrentResourceOwner;

    /*
     * Fold the 128-bit UUID into the 64 bits a lock tag offers. Two orgs that fold alike only
     * share a lock (they would wait for each other); correctness never depends on it.
     */
    memcpy(w, org->data, sizeof w);
    k1 = w[0] ^ w[2];
    k2 = w[1] ^ w[3];
    SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, k1, k2, DFD_LOCK_CLASS);
    CurrentResourceOwner = TopTransactionResourceOwner;
    PG_TRY();
    {
        (void)LockAcquire(&tag, ExclusiveLock, false, false);
    }
    PG_FINALLY();
    {
        CurrentResourceOwner = saved;
    }
    PG_END_TRY();
}

/* What get_head reads: the head row, or the org's last receipt. */
typedef struct stored_row {
    bool found;
    int64 seq;
    uint8 hash[DFD_SHA256_LEN]; /* zeros unless the row's hash is 32 bytes */
    TimestampTz ts;             /* last receipt */
    TransactionId xmin;         /* last receipt */
    ItemPointerData tid;        /* head row, when read by primary key (else invalid) */
    Datum frontier;             /* head row (copied out of the table); NULL when absent */
    bool frontier_null;
} stored_row;

static void
copy_hash(Datum d, bool isnull, uint8 out[DFD_SHA256_LEN])
{
    bytea *h;

    if (isnull)
        return;
    h = DatumGetByteaPP(d);
    if (VARSIZE_ANY_EXHDR(h) == DFD_SHA256_LEN)
        memcpy(out, VARDATA_ANY(h), DFD_SHA256_LEN);
}

static const AttrNumber org_key[1] = {1};
static const AttrNumber org_seq_key[2] = {1, 2};
static const char *const head_columns[3] = {"seq", "hash", "frontier"};
static const char *const last_columns[3] = {"seq", "hash", "ts"};

/* The head row of org as snapshot sees it: by primary key, or by SQL when that must do it. */
static void
read_head(const pg_uuid_t *org, Snapshot snapshot, stored_row *out)
{
    Datum arg[1] = {UUIDPGetDatum(org)};
    dfd_pk_reader r;
    Datum hash; /* apart from copy_hash: the order a call's arguments are evaluated in is open */
    bool isnull;

    memset(out, 0, sizeof *out);
    out->frontier_null = true;
    ItemPointerSetInvalid(&out->tid);
    if (dfd_pk_reader_open(&r, "heads", org_key, 1, 1, head_columns, heads_keep_frontier ? 3 : 2,
                           snapshot)) {
        ScanKeyData k;

        ScanKeyInit(&k, 1, BTEqualStrategyNumber, F_UUID_EQ, arg[0]);
        index_rescan(r.scan, &k, 1, NULL, 0);
        out->found = index_getnext_slot(r.scan, ForwardScanDirection, r.slot);
        if (out->found) {
            out->tid = r.slot->tts_tid;
            out->seq = DatumGetInt64(slot_getattr(r.slot, r.attnos[0], &isnull));
            hash = slot_getattr(r.slot, r.attnos[1], &isnull);
            copy_hash(hash, isnull, out->hash);
            if (heads_keep_frontier)
                out->frontier = slot_getattr(r.slot, r.attnos[2], &out->frontier_null);
        }
        /* the stored frontier, copied out of the table's buffer (checked once the head is) */
        if (!out->frontier_null)
            out->frontier = PointerGetDatum(PG_DETOAST_DATUM_COPY(out->frontier));
        dfd_pk_reader_close(&r);
        return;
    }
    if (SPI_execute_plan(plan_head, arg, NULL, false, 1) != SPI_OK_SELECT)
        elog(ERROR, "cannot read ledger head");
    out->found = SPI_processed == 1;
    if (out->found) {
        HeapTuple t = SPI_tuptable->vals[0];
        TupleDesc d = SPI_tuptable->tupdesc;

        out->seq = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
        hash = SPI_getbinval(t, d, 2, &isnull);
        copy_hash(hash, isnull, out->hash);
        out->frontier = SPI_getbinval(t, d, 3, &out->frontier_null);
        if (!out->frontier_null)
            out->frontier = PointerGetDatum(PG_DETOAST_DATUM_COPY(out->frontier));
    }
}

/*
 * The last receipt of org as snapshot sees it (by primary key, or SQL when that must do it).
 * The caller's guess of its seq bounds the index scan: a backward scan reads every entry of
 * the leaf page that matches its keys, which with the org alone is up to a page of this org's
 * receipts per append (a tenth of append_receipt's time in a perf profile at 8 sessions).
 * When nothing is found from the guess on (a chain shorter than its head says), the whole
 * org is scanned, so the answer is always the true last receipt.
 */
static void
read_last(const pg_uuid_t *org, int64 guess, Snapshot snapshot, stored_row *out)
{
    Datum arg[1] = {UUIDPGetDatum(org)};
    dfd_pk_reader r;
    Datum hash; /* apart from copy_hash: the order a call's arguments are evaluated in is open */
    bool isnull;
    HeapTuple t;
    TupleDesc d;

    memset(out, 0, sizeof *out);
    out->frontier_null = true;
    if (dfd_pk_reader_open(&r, "receipts", org_seq_key, 2, 2, last_columns, 3, snapshot)) {
        ScanKeyData k[2];

        for (int64 from = Max(guess, 1);; from = 1) {
            ScanKeyInit(&k[0], 1, BTEqualStrategyNumber, F_UUID_EQ, arg[0]);
            ScanKeyInit(&k[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(from));
            index_rescan(r.scan, k, 2, NULL, 0);
            out->found = index_getnext_slot(r.scan, BackwardScanDirection, r.slot);
            if (out->found || from == 1)
                break;
        }
        if (out->found) {
            out->seq = DatumGetInt64(slot_getattr(r.slot, r.attnos[0], &isnull));
            hash = slot_getattr(r.slot, r.attnos[1], &isnull);
            copy_hash(hash, isnull, out->hash);
            out->ts = DatumGetTimestampTz(slot_getattr(r.slot, r.attnos[2], &isnull));
            out->xmin = DatumGetTransactionId(
                slot_getsysattr(r.slot, MinTransactionIdAttributeNumber, &isnull));
        }
        dfd_pk_reader_close(&r);
        return;
    }
    if (SPI_execute_snapshot(plan_last, arg, NULL, snapshot, InvalidSnapshot, true, false, 1) !=
        SPI_OK_SELECT)
        elog(ERROR, "cannot read last receipt");
    out->found = SPI_processed == 1;
    if (!out->found)
        return;
    t = SPI_tuptable->vals[0];
    d = SPI_tuptable->tupdesc;
    out->seq = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
    hash = SPI_getbinval(t, d, 2, &isnull);
    copy_hash(hash, isnull, out->hash);
    out->ts = DatumGetTimestampTz(SPI_getbinval(t, d, 3, &isnull));
    out->xmin = DatumGetTransactionId(SPI_getbinval(t, d, 4, &isnull));
}

/*
 * Finds the org's head for this transaction: from the cache, or by locking the org and
 * reading its stored head and last receipt, which must agree.
 */
static org_head *
get_head(const pg_uuid_t *org, bool with_tree)
{
    org_head *entry;
    bool found;
    stored_row head, last;

    if (org_heads == NULL) {
        HASHCTL ctl;

        ctl.keysize = sizeof(pg_uuid_t);
        ctl.entrysize = sizeof(org_head);
        ctl.hcxt = TopTransactionContext;
        org_heads =
            hash_create("defendable org heads", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
    }
    entry = hash_search(org_heads, org, HASH_FIND, NULL);
    if (entry != NULL)
        return entry;

    lock_org(org);
    /*
     * Read as a statement run now would (what SPI does for one that may write): a snapshot
     * taken after the lock was granted, so under READ COMMITTED it sees what the previous
     * holder committed, and after a command counter increment, so it sees this transaction's
     * own earlier appends.
     */
    CommandCounterIncrement();
    PushActiveSnapshot(GetTransactionSnapshot());
    UpdateActiveSnapshotCommandId();
    read_head(org, GetActiveSnapshot(), &head);
    read_last(org, head.seq, GetActiveSnapshot(), &last);
    PopActiveSnapshot();

    entry = hash_search(org_heads, org, HASH_ENTER, &found);
    entry->seq = 0;
    memset(entry->hash, 0, DFD_SHA256_LEN);
    entry->ts = DT_NOBEGIN;
    entry->needs_touch = true;
    entry->flushed_seq = -1;
    entry->head_row = head.found;
    entry->head_tid = head.tid;
    if (last.found) {
        entry->seq = last.seq;
        entry->ts = last.ts;
        memcpy(entry->hash, last.hash, DFD_SHA256_LEN);
        /*
         * Receipts beyond the stored head are legitimate only when this very transaction
         * wrote them (in a subtransaction that committed, before the cache was dropped).
         */
        if (last.seq > head.seq && TransactionIdIsCurrentTransactionId(last.xmin))
            head.seq = last.seq, memcpy(head.hash, last.hash, DFD_SHA256_LEN);
    }
    /*
     * Under REPEATABLE READ or SERIALIZABLE the transaction snapshot may predate appends that
     * committed while we waited for the lock. Extending the chain from that stale view would
     * collide with them; report a serialization failure so the client retries instead.
     */
    if (IsolationUsesXactSnapshot()) {
        stored_row latest;

        PushActiveSnapshot(GetLatestSnapshot());
        read_last(org, entry->seq, GetActiveSnapshot(), &latest);
        PopActiveSnapshot();
        if (latest.seq != entry->seq) {
            hash_search(org_heads, org, HASH_REMOVE, NULL);
            ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                            errmsg("could not serialize access due to concurrent append"),
                            errdetail("Another transaction appended to this organization after "
                                      "this transaction's snapshot was taken."),
                            errhint("Retry the transaction.")));
        }
    }
    if (entry->seq != head.seq || memcmp(entry->hash, head.hash, DFD_SHA256_LEN) != 0) {
        char org_text[DFD_UUID_LEN + 1];

        hash_search(org_heads, org, HASH_REMOVE, NULL);
        dfd_uuid_to_text(org, org_text);
        ereport(ERROR,
                (errcode(ERRCODE_DATA_CORRUPTED),
                 errmsg("ledger of organization %s does not match its head", org_text),
                 errdetail("The stored head is at seq %lld but the last receipt is seq %lld.",
                           (long long)head.seq, (long long)entry->seq),
                 errhint("Run SELECT * FROM defendable.verify_ledger('%s'); no receipt is "
                         "appended to a ledger that fails verification.",
                         org_text)));
    }
    entry->has_tree = with_tree;
    /* cheapest first: this backend's own last commit, the head row, then the stored tree */
    if (with_tree && !cached_frontier(org, entry->seq, entry->hash, &entry->frontier) &&
        !stored_frontier(head.frontier, head.frontier_null, entry->seq, entry->hash,
                         &entry->frontier))
        dfd_merkle_load_frontier(org, (uint64)entry->seq, &entry->frontier);
    return entry;
}

/* True (with the values) when this backend holds an unflushed head for org. */
bool
dfd_pending_head(const pg_uuid_t *org, int64 *seq, uint8 *hash)
{
    org_head *entry;

    if (org_heads == NULL)
        return false;
    entry = hash_search(org_heads, org, HASH_FIND, NULL);
    if (entry == NULL)
        return false;
    *seq = entry->seq;
    memcpy(hash, entry->hash, DFD_SHA256_LEN);
    return true;
}

/* One field of the receipt being appended. */
typedef struct pending_field {
    char *name;
    int name_len;
    char salt[DFD_SALT_B64_LEN + 1];
    char digest[DFD_DIGEST_B64_LEN + 1];
    bool has_email; /* the value contains something shaped like an email address */
} pending_field;

static int
pending_field_cmp(const void *x, const void *y)
{
    const pending_field *a = x, *b = y;

    return dfd_jcs_key_cmp(a->name, a->name_len, b->name, b->name_len);
}

static pending_field *
find_field(pending_field *fields, int n, const char *name, int len)
{
    for (int i = 0; i < n; i++)
        if (fields[i].name_len == len && memcmp(fields[i].name, name, len) == 0)
            return &fields[i];
    return NULL;
}

/* Builds a jsonb object from parallel arrays of keys and string values. */
static Jsonb *
string_object(pending_field *fields, int n, bool salts)
{
    JsonbParseState *state = NULL;
    JsonbValue k, v, *res;

    pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
    for (int i = 0; i < n; i++) {
        k.type = jbvString;
        k.val.string.val = fields[i].name;
        k.val.string.len = fields[i].name_len;
        pushJsonbValue(&state, WJB_KEY, &k);
        v.type = jbvString;
        v.val.string.val = salts ? fields[i].salt : fields[i].digest;
        v.val.string.len = salts ? DFD_SALT_B64_LEN : DFD_DIGEST_B64_LEN;
        pushJsonbValue(&state, WJB_VALUE, &v);
    }
    res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
    return JsonbValueToJsonb(res);
}

/*
 * Salts are taken from a block of pg_strong_random bytes: one call per field was 12% of a
 * bulk append's time (OpenSSL's generator takes its locks, looks up its parameters and checks
 * for a fork on every call; perf, docs/benchmarks.md). The block stays in this backend's memory,
 * each salt is wiped from it as it is taken, and a block filled before a fork is not used after.
 */
#define SALT_BLOCK_BYTES (DFD_SALT_LEN * 32)

static uint8 salt_block[SALT_BLOCK_BYTES];
static int salt_block_left; /* the bytes not yet taken are the first salt_block_left */
static int salt_block_pid;  /* the process that filled it */

static void
take_salt(uint8 *salt)
{
    if (salt_block_left < DFD_SALT_LEN || salt_block_pid != MyProcPid) {
        salt_block_left = 0;
        if (!pg_strong_random(salt_block, sizeof salt_block))
            ereport(ERROR,
                    (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not generate a random salt")));
        salt_block_left = sizeof salt_block;
        salt_block_pid = MyProcPid;
    }
    salt_block_left -= DFD_SALT_LEN;
    memcpy(salt, salt_block + salt_block_left, DFD_SALT_LEN);
    explicit_bzero(salt_block + salt_block_left, DFD_SALT_LEN);
}

/*
 * Validates the fields and computes each one's salt, disclosure and digest. Runs before the
 * org lock is taken, so the lock is held only for the chain step itself.
 */
static pending_field *
prepare_fields(Jsonb *fields, int *count)
{
    JsonbIterator *it;
    JsonbValue v;
    JsonbIteratorToken tok;
    pending_field *out;
    dfd_buf value, disclosure;
    size_t total = 0;
    int n = 0;

    if (!JB_ROOT_IS_OBJECT(fields) || JB_ROOT_IS_SCALAR(fields))
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("fields must be a JSON object"),
                 errdetail("Each member is one field: name, then any JSON value.")));
    if (JB_ROOT_COUNT(fields) > DFD_FIELDS_MAX)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("too many fields: %d", (int)JB_ROOT_COUNT(fields)),
                        errdetail("A receipt has at most %d fields.", DFD_FIELDS_MAX)));
    out = palloc0(sizeof(pending_field) * Max(JB_ROOT_COUNT(fields), 1));
    dfd_buf_init(&value);
    dfd_buf_init(&disclosure);
    it = JsonbIteratorInit(&fields->root);
    tok = JsonbIteratorNext(&it, &v, true);
    while ((tok = JsonbIteratorNext(&it, &v, true)) == WJB_KEY) {
        pending_field *f = &out[n];
        uint8 salt[DFD_SALT_LEN];

        if (!dfd_valid_field_name(v.val.string.val, (size_t)v.val.string.len))
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                     errmsg("invalid field name \"%s\"",
                            pnstrdup(v.val.string.val, Min(v.val.string.len, 100))),
                     errdetail("Field names match ^[a-z][a-z0-9_]*$ and have at most %d bytes.",
                               DFD_NAME_MAX)));
        f->name = pnstrdup(v.val.string.val, v.val.string.len);
        f->name_len = v.val.string.len;
        tok = JsonbIteratorNext(&it, &v, true);

        dfd_buf_reset(&value);
        dfd_jsonb_value_jcs(&value, &v, true);
        total += value.len;
        if (total > (size_t)dfd_max_fields_bytes)
            ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("fields are too large"),
                            errdetail("The canonical values add up to more than %d bytes.",
                                      dfd_max_fields_bytes),
                            errhint("Raise defendable.max_fields_bytes, or store a reference "
                                    "and a hash of large content instead of the content.")));
        f->has_email = dfd_contains_email(value.data, value.len);

        take_salt(salt);
        dfd_b64url_encode(salt, sizeof salt, f->salt);
        f->salt[DFD_SALT_B64_LEN] = '\0';

        dfd_buf_reset(&disclosure);
        if (dfd_disclosure(&disclosure, f->salt, f->name, (size_t)f->name_len, value.data,
                           value.len) != DFD_OK ||
            !dfd_disclosure_digest(disclosure.data, disclosure.len, f->digest))
            dfd_report_core_error(DFD_ENOMEM, "cannot compute field digest");
        n++;
    }
    dfd_buf_free(&value);
    dfd_buf_free(&disclosure);
    qsort(out, n, sizeof(pending_field), pending_field_cmp);
    *count = n;
    return out;
}

static int
text_datum_cmp(const void *x, const void *y)
{
    text *a = DatumGetTextPP(*(const Datum *)x), *b = DatumGetTextPP(*(const Datum *)y);

    return dfd_jcs_key_cmp(VARDATA_ANY(a), VARSIZE_ANY_EXHDR(a), VARDATA_ANY(b),
                           VARSIZE_ANY_EXHDR(b));
}

/* The names of public_fields that may be disclosed; the never-public rule always wins. */
static ArrayType *
public_names(ArrayType *requested, pending_field *fields, int n, bool from_policy)
{
    Datum *elems;
    bool *nulls;
    int nelems;
    Datum *keep;
    int nkeep = 0;

    if (requested == NULL)
        return construct_empty_array(TEXTOID);
    if (ARR_NDIM(requested) > 1)
        ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
                        errmsg("public_fields must be a one-dimensional array")));
    deconstruct_array(requested, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
    keep = palloc(sizeof(Datum) * Max(nelems, 1));
    for (int i = 0; i < nelems; i++) {
        text *t;
        char *name;
        int len;
        pending_field *f;
        bool dup = false;

        if (nulls[i])
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("public_fields must not contain null")));
        t = DatumGetTextPP(elems[i]);
        name = VARDATA_ANY(t);
        len = VARSIZE_ANY_EXHDR(t);
        f = find_field(fields, n, name, len);
        if (f == NULL && from_policy)
            continue; /* a policy names the fields a kind may have; this receipt lacks one */
        if (f == NULL)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("public field \"%s\" is not one of the receipt's fields",
                                   text_to_cstring(t))));
        if ((dfd_never_public_name(name, (size_t)len) || f->has_email) && from_policy)
            continue;
        if (dfd_never_public_name(name, (size_t)len) || f->has_email) {
            ereport(NOTICE, (errmsg("field \"%s\" is never public and stays withheld", f->name),
                             errdetail(dfd_never_public_name(name, (size_t)len)
                                           ? "Its name marks it as personal or secret."
                                           : "Its value contains an email address.")));
            continue;
        }
        for (int j = 0; j < nkeep; j++)
            if (strcmp(TextDatumGetCString(keep[j]), f->name) == 0)
                dup = true;
        if (!dup)
            keep[nkeep++] = CStringGetTextDatum(f->name);
    }
    /* stored in name order, the order of the disclosures in a public projection */
    qsort(keep, nkeep, sizeof(Datum), text_datum_cmp);
    return construct_array(keep, nkeep, TEXTOID, -1, false, TYPALIGN_INT);
}

/* True when the installed schema has the tables of version 0.2 (Merkle nodes, policies). */
static bool
schema_has_v02(void)
{
    Oid nsp = get_namespace_oid("defendable", false);

    return OidIsValid(get_relname_relid("merkle_nodes", nsp));
}

/* The organization's disclosure policy for kind, or NULL (inside SPI). */
static ArrayType *
policy_fields(text *kind)
{
    static SPIPlanPtr plan;
    Datum arg[1] = {PointerGetDatum(kind)};
    bool isnull;
    Datum d;

    Oid types[1] = {TEXTOID};

    if (SPI_execute_plan(dfd_saved_plan(&plan,
                                        "SELECT public_fields FROM defendable.disclosure_policy "
                                        "WHERE kind OPERATOR(pg_catalog.=) $1",
                                        1, types),
                         arg, NULL, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "cannot read disclosure policy");
    if (SPI_processed != 1)
        return NULL;
    d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    return isnull ? NULL : DatumGetArrayTypeP(d);
}

static const char *const head_row_columns[4] = {"org_id", "seq", "hash", "frontier"};

/*
 * Writes the head as it stands after the transaction's first receipt for the org (see
 * prepare_plans). The org's first receipt inserts the row. Later ones replace the row that
 * get_head read, which the org's lock keeps every other writer away from: under READ
 * COMMITTED directly by its tid; otherwise, or when direct.c declines, by an UPDATE, which
 * under REPEATABLE READ fails with a serialization error if the row moved after the
 * transaction's snapshot, as the upsert does.
 */
static void
touch_head(org_head *head, Datum *tv, const char *tnulls)
{
    bool nulls[4];

    for (int i = 0; i < 4; i++)
        nulls[i] = tnulls[i] == 'n';
    if (!head->head_row)
        internal_exec_nulls(plan_touch, tv, tnulls, 1);
    else if (!ItemPointerIsValid(&head->head_tid) || IsolationUsesXactSnapshot() ||
             !dfd_direct_update("heads", &head->head_tid, head_row_columns,
                                heads_keep_frontier ? 4 : 3, tv, nulls)) {
        internal_exec_nulls(plan_flush, tv, tnulls, -1);
        /* the row is there (read under the lock): only a policy or a trigger can skip it */
        if (SPI_processed != 1) {
            char org_text[DFD_UUID_LEN + 1];

            dfd_uuid_to_text(&head->org, org_text);
            ereport(ERROR,
                    (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                     errmsg("cannot update the ledger head of organization %s", org_text),
                     errdetail("Row-level security or a trigger on defendable.heads kept the "
                               "owner of append_receipt from updating the row.")));
        }
    }
    /* the row has a new version now, and a new tid */
    head->head_row = true;
    ItemPointerSetInvalid(&head->head_tid);
}

/* the columns of the two INSERTs prepared above, for the direct path (direct.c) */
static const char *const receipt_columns[7] = {"org_id", "seq",    "ts",  "kind",
                                               "prev",   "fields", "hash"};
static const char *const disclosure_columns[5] = {"org_id", "seq", "salts", "field_values",
                                                  "public_fields"};

/*
 * The append itself, shared by append_receipt() and erase_field(): arguments are already
 * checked for null. Returns the stored row, formed in caller_cxt.
 */
static HeapTuple
do_append(pg_uuid_t *org, text *kind, Jsonb *fields, ArrayType *public_fields, TupleDesc tupdesc,
          MemoryContext caller_cxt)
{
    pending_field *pf;
    int nfields;
    ArrayType *public_arr;
    org_head *head;
    char org_text[DFD_UUID_LEN + 1];
    char ts_text[DFD_TS_LEN + 1];
    TimestampTz ts;
    dfd_field_digest digests[DFD_FIELDS_MAX];
    dfd_receipt_header h;
    dfd_buf body;
    uint8 hash[DFD_SHA256_LEN];
    Jsonb *digest_map;
    Datum values[7];
    bool nulls[7] = {false};
    HeapTuple result;
    int64 seq;
    bool v02;
    MemoryContext oldcxt;

    if (GetDatabaseEncoding() != PG_UTF8)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("defendable requires a database with UTF8 encoding")));
    if (!dfd_valid_kind(VARDATA_ANY(kind), VARSIZE_ANY_EXHDR(kind)))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid receipt kind \"%s\"",
                               pnstrdup(VARDATA_ANY(kind), Min(VARSIZE_ANY_EXHDR(kind), 100))),
                        errdetail("Kinds are lower-case dotted names matching "
                                  "^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$, at most %d bytes.",
                                  DFD_NAME_MAX)));
    pf = prepare_fields(fields, &nfields);

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    prepare_plans();
    v02 = schema_has_v02();
    if (public_fields != NULL)
        public_arr = public_names(public_fields, pf, nfields, false);
    else if (v02 && nfields > 0)
        public_arr = public_names(policy_fields(kind), pf, nfields, true);
    else
        public_arr = public_names(NULL, pf, nfields, false);

    head = get_head(org, v02);
    if (head->seq >= DFD_MAX_SEQ)
        ereport(ERROR,
                (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("organization ledger is full")));
    seq = head->seq + 1;
    /* never earlier than the previous receipt, even if the clock steps back */
    ts = Max(GetCurrentTimestamp(), head->ts);
    if (!dfd_format_ts(ts + DFD_UNIX_TO_PG_USECS, ts_text))
        elog(ERROR, "clock outside years 1-9999");

    for (int i = 0; i < nfields; i++) {
        digests[i].name = pf[i].name;
        digests[i].name_len = (size_t)pf[i].name_len;
        digests[i].digest = pf[i].digest;
    }
    dfd_uuid_to_text(org, org_text);
    h.org = org_text;
    h.seq = seq;
    h.ts = ts_text;
    h.kind = VARDATA_ANY(kind);
    h.kind_len = VARSIZE_ANY_EXHDR(kind);
    memcpy(h.prev, head->hash, DFD_SHA256_LEN);
    dfd_buf_init(&body);
    if (dfd_receipt_body(&body, &h, digests, (size_t)nfields) != DFD_OK ||
        !dfd_receipt_hash(body.data, body.len, hash))
        dfd_report_core_error(DFD_ENOMEM, "cannot hash receipt");
    dfd_buf_free(&body);

    digest_map = string_object(pf, nfields, false);
    values[0] = UUIDPGetDatum(org);
    values[1] = Int64GetDatum(seq);
    values[2] = TimestampTzGetDatum(ts);
    values[3] = PointerGetDatum(kind);
    values[4] = PointerGetDatum(make_bytea(head->hash, DFD_SHA256_LEN));
    values[5] = JsonbPGetDatum(digest_map);
    values[6] = PointerGetDatum(make_bytea(hash, DFD_SHA256_LEN));
    if (!dfd_direct_insert("receipts", receipt_columns, 7, values, NULL))
        internal_exec(plan_insert_receipt, values, 1);
    if (nfields > 0) {
        Datum dv[5];

        dv[0] = values[0];
        dv[1] = values[1];
        dv[2] = JsonbPGetDatum(string_object(pf, nfields, true));
        dv[3] = JsonbPGetDatum(fields);
        dv[4] = PointerGetDatum(public_arr);
        if (!dfd_direct_insert("disclosures", disclosure_columns, 5, dv, NULL))
            internal_exec(plan_insert_disclosure, dv, 1);
    }
    if (head->has_tree) {
        dfd_hash leaf;

        /* extends the Merkle tree; completed subtrees of 16 leaves and up are stored */
        if (!dfd_merkle_leaf_hash(hash, DFD_SHA256_LEN, leaf) ||
            !dfd_merkle_frontier_append(&head->frontier, leaf, dfd_merkle_store_node, org))
            elog(ERROR, "cannot extend the Merkle tree");
    }
    /* the cache moves first: under SET CONSTRAINTS IMMEDIATE the flush runs inside the touch
     * and finds the head it holds already written */
    head->seq = seq;
    head->ts = ts;
    memcpy(head->hash, hash, DFD_SHA256_LEN);
    if (head->needs_touch) {
        Datum tv[4];
        char tnulls[4] = {' ', ' ', ' ', 'n'};

        tv[0] = values[0];
        tv[1] = values[1];
        tv[2] = values[6];
        tv[3] = (Datum)0;
        head->needs_touch = false;
        head->flushed_seq = seq;
        if (heads_keep_frontier && head->has_tree && head->frontier.size == (uint64)seq) {
            tv[3] = PointerGetDatum(frontier_blob(head));
            tnulls[3] = ' ';
        }
        touch_head(head, tv, tnulls);
    }

    /* the result is copied into the caller's context before SPI_finish frees SPI's memory */
    oldcxt = MemoryContextSwitchTo(caller_cxt);
    result = heap_form_tuple(tupdesc, values, nulls);
    MemoryContextSwitchTo(oldcxt);
    SPI_finish();
    return result;
}

PG_FUNCTION_INFO_V1(dfd_append_receipt);
/*
 * append_receipt(org uuid, kind text, fields jsonb, public_fields text[] default null)
 * returns defendable.receipts: the only way a receipt is written. Without public_fields, the
 * kind's disclosure policy says which fields are public.
 */
Datum
dfd_append_receipt(PG_FUNCTION_ARGS)
{
    TupleDesc tupdesc;

    if (PG_ARGISNULL(0))
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("organization must not be null")));
    if (PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("kind must not be null")));
    if (PG_ARGISNULL(2))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("fields must not be null"),
                        errhint("Pass '{}' for a receipt without fields.")));
    if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "append_receipt must return defendable.receipts");
    PG_RETURN_DATUM(HeapTupleGetDatum(do_append(
        PG_GETARG_UUID_P(0), PG_GETARG_TEXT_PP(1), PG_GETARG_JSONB_P(2),
        PG_ARGISNULL(3) ? NULL : PG_GETARG_ARRAYTYPE_P(3), tupdesc, CurrentMemoryContext)));
}

PG_FUNCTION_INFO_V1(dfd_erase_field);
/*
 * erase_field(org, seq, field, reason): deletes one field's salt and value (its digest stays
 * in the receipt, so the chain still verifies) and appends an "erasure" receipt that names
 * the receipt, the field and the reason, never the value.
 */
Datum
dfd_erase_field(PG_FUNCTION_ARGS)
{
    pg_uuid_t *org;
    int64 seq;
    text *field, *reason;
    char *field_name;
    TupleDesc tupdesc;
    Datum args[3];
    Oid types[3] = {UUIDOID, INT8OID, TEXTOID};
    int rc;
    JsonbParseState *state = NULL;
    JsonbValue k, v, *res;
    MemoryContext caller_cxt = CurrentMemoryContext;
    Jsonb *erasure_fields;
    ArrayType *erasure_public;
    Datum pub[2];
    char org_text[DFD_UUID_LEN + 1];

    for (int i = 0; i < 4; i++)
        if (PG_ARGISNULL(i))
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("erase_field arguments must not be null")));
    org = PG_GETARG_UUID_P(0);
    seq = PG_GETARG_INT64(1);
    field = PG_GETARG_TEXT_PP(2);
    reason = PG_GETARG_TEXT_PP(3);
    field_name = text_to_cstring(field);
    if (!dfd_valid_field_name(field_name, strlen(field_name)))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid field name \"%.100s\"", field_name)));
    if (VARSIZE_ANY_EXHDR(reason) == 0 || VARSIZE_ANY_EXHDR(reason) > 1000)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("reason must have 1 to 1000 bytes"),
                        errdetail("The reason is recorded in the erasure receipt.")));
    if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "erase_field must return defendable.receipts");
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    prepare_plans();
    /* the org lock first: the erasure and its receipt are one step of the org's history */
    (void)get_head(org, schema_has_v02());
    args[0] = UUIDPGetDatum(org);
    args[1] = Int64GetDatum(seq);
    args[2] = PointerGetDatum(field);
    dfd_internal_writes++;
    rc = SPI_execute_with_args(
        "UPDATE defendable.disclosures SET salts = salts OPERATOR(pg_catalog.-) $3, "
        "  field_values = field_values OPERATOR(pg_catalog.-) $3, "
        "  public_fields = pg_catalog.array_remove(public_fields, $3) "
        "WHERE org_id OPERATOR(pg_catalog.=) $1 AND seq OPERATOR(pg_catalog.=) $2 "
        "  AND salts OPERATOR(pg_catalog.?) $3",
        3, types, args, NULL, false, 0);
    dfd_internal_writes--;
    if (rc != SPI_OK_UPDATE)
        elog(ERROR, "cannot erase disclosure: %s", SPI_result_code_string(rc));
    dfd_uuid_to_text(org, org_text);
    if (SPI_processed != 1)
        ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
                        errmsg("receipt %lld of organization %s has no kept value of field \"%s\"",
                               (long long)seq, org_text, field_name),
                        errdetail("The receipt or the field does not exist, or the field was "
                                  "already erased.")));
    SPI_finish();

    pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
    k.type = jbvString;
    k.val.string.val = "erased_seq";
    k.val.string.len = 10;
    pushJsonbValue(&state, WJB_KEY, &k);
    v.type = jbvNumeric;
    v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int8_numeric, Int64GetDatum(seq)));
    pushJsonbValue(&state, WJB_VALUE, &v);
    k.val.string.val = "field";
    k.val.string.len = 5;
    pushJsonbValue(&state, WJB_KEY, &k);
    v.type = jbvString;
    v.val.string.val = field_name;
    v.val.string.len = (int)strlen(field_name);
    pushJsonbValue(&state, WJB_VALUE, &v);
    k.val.string.val = "reason";
    k.val.string.len = 6;
    pushJsonbValue(&state, WJB_KEY, &k);
    v.val.string.val = VARDATA_ANY(reason);
    v.val.string.len = (int)VARSIZE_ANY_EXHDR(reason);
    pushJsonbValue(&state, WJB_VALUE, &v);
    res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
    erasure_fields = JsonbValueToJsonb(res);
    /* which receipt and which field are public; the reason may name a person, so it is not */
    pub[0] = CStringGetTextDatum("erased_seq");
    pub[1] = CStringGetTextDatum("field");
    erasure_public = construct_array(pub, 2, TEXTOID, -1, false, TYPALIGN_INT);
    PG_RETURN_DATUM(HeapTupleGetDatum(do_append(org, cstring_to_text("erasure"), erasure_fields,
                                                erasure_public, tupdesc, caller_cxt)));
}

PG_FUNCTION_INFO_V1(dfd_flush_head);
/*
 * Deferred constraint trigger on defendable.heads: at commit, sets each touched org's head to
 * its last receipt. Idempotent, so firing again (for its own update) changes nothing.
 */
Datum
dfd_flush_head(PG_FUNCTION_ARGS)
{
    TriggerData *trig = (TriggerData *)fcinfo->context;
    bool isnull;
    Datum org;
    Datum arg[4];
    org_head *entry;

    if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trig->tg_event) ||
        !TRIGGER_FIRED_FOR_ROW(trig->tg_event))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("defendable.flush_head() must be called as an AFTER ROW trigger")));
    if (dfd_restore_mode)
        return PointerGetDatum(NULL);
    org = heap_getattr(trig->tg_trigtuple, 1, trig->tg_relation->rd_att, &isnull);
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    prepare_plans();
    arg[0] = org;
    /*
     * The usual case: this transaction appended and its head is still in the cache, which is
     * exactly the last receipt it wrote (a rolled-back savepoint drops the whole cache). The
     * stored head is already that one when the touch or an earlier flush wrote it (one receipt
     * per transaction); otherwise write it, without reading the table twice more.
     */
    if (org_heads != NULL &&
        (entry = hash_search(org_heads, DatumGetUUIDP(org), HASH_FIND, NULL)) != NULL &&
        entry->seq > 0) {
        /* the flush's own UPDATE queues the flush once more: that one finds nothing to do */
        if (entry->flushed_seq != entry->seq) {
            /* set first: under SET CONSTRAINTS IMMEDIATE that flush runs inside this UPDATE */
            char nulls[4] = {' ', ' ', ' ', 'n'};

            entry->flushed_seq = entry->seq;
            arg[1] = Int64GetDatum(entry->seq);
            arg[2] = PointerGetDatum(make_bytea(entry->hash, DFD_SHA256_LEN));
            /* the next holder of the org's lock, in any backend, starts from it */
            if (heads_keep_frontier && entry->has_tree &&
                entry->frontier.size == (uint64)entry->seq) {
                arg[3] = PointerGetDatum(frontier_blob(entry));
                nulls[3] = ' ';
            }
            internal_exec_nulls(plan_flush, arg, nulls, 1);
        }
        SPI_finish();
        entry->needs_touch = true;
        return PointerGetDatum(NULL);
    }
    if (SPI_execute_plan(plan_last, arg, NULL, false, 1) != SPI_OK_SELECT)
        elog(ERROR, "cannot read last receipt");
    if (SPI_processed == 1) {
        arg[1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
        arg[2] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
    } else {
        static const uint8 zeros[DFD_SHA256_LEN] = {0};

        arg[1] = Int64GetDatum(0);
        arg[2] = PointerGetDatum(make_bytea(zeros, DFD_SHA256_LEN));
    }
    if (SPI_execute_plan(plan_head, arg, NULL, false, 1) != SPI_OK_SELECT)
        elog(ERROR, "cannot read ledger head");
    if (SPI_processed != 1 ||
        DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) !=
            DatumGetInt64(arg[1])) {
        /* no frontier known here (a rolled-back savepoint dropped the cache): the next holder
         * of the lock loads it from the tree */
        char nulls[4] = {' ', ' ', ' ', 'n'};

        internal_exec_nulls(plan_flush, arg, nulls, 1);
    }
    SPI_finish();
    /* later appends in this transaction (after SET CONSTRAINTS ... IMMEDIATE) touch again */
    if (org_heads != NULL &&
        (entry = hash_search(org_heads, DatumGetUUIDP(org), HASH_FIND, NULL)) != NULL)
        entry->needs_touch = true;
    return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(dfd_guard_write);
/*
 * BEFORE trigger on the ledger tables: refuses every write that does not come from the
 * extension itself. INSERTs are also let through in defendable.restore_mode (pg_restore).
 */
Datum
dfd_guard_write(PG_FUNCTION_ARGS)
{
    TriggerData *trig = (TriggerData *)fcinfo->context;
    const char *table;

    if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trig->tg_event))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("defendable.guard_write() must be called as a BEFORE trigger")));
    table = RelationGetRelationName(trig->tg_relation);
    if (dfd_internal_writes > 0 || (dfd_restore_mode && TRIGGER_FIRED_BY_INSERT(trig->tg_event)))
        return TRIGGER_FIRED_FOR_ROW(trig->tg_event)
                   ? PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(trig->tg_event) ? trig->tg_newtuple
                                                                             : trig->tg_trigtuple)
                   : PointerGetDatum(NULL);
    if (TRIGGER_FIRED_BY_INSERT(trig->tg_event))
        ereport(ERROR,
                (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                 errmsg("defendable.%s can only be written by defendable.append_receipt()", table),
                 errdetail("Receipts are hash-chained; a row inserted directly would "
                           "break the chain.")));
    ereport(ERROR,
            (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
             strcmp(table, "receipts") == 0
                 ? errmsg("defendable.receipts is append-only")
                 : errmsg("defendable.%s can only be changed by defendable's functions", table),
             errdetail("%s is refused for every role.",
                       TRIGGER_FIRED_BY_UPDATE(trig->tg_event)   ? "UPDATE"
                       : TRIGGER_FIRED_BY_DELETE(trig->tg_event) ? "DELETE"
                                                                 : "TRUNCATE")));
    return PointerGetDatum(NULL); /* not reached */
}
