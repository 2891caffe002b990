/*
 * merkle.c: the per-organization Merkle tree (RFC 9162) in the database.
 *
 * Storage (docs/architecture.md, "Merkle tree"): defendable.merkle_nodes keeps the root of
 * every perfect subtree of 2^4 = 16 leaves or more, written by append_receipt as subtrees
 * complete (about one row per 8 receipts). Smaller subtrees are recomputed from at most 15
 * receipt hashes. Any RFC 9162 proof then needs O(log n) stored nodes plus two blocks of 16
 * receipts, fetched in two queries: a proof on a 1,000,000-receipt org reads about 60 rows.
 *
 * The core's proof generators ask for perfect subtree roots through a callback. We run them
 * twice: first recording which nodes they ask for, then, after fetching those in bulk, for
 * real. The generators' control flow depends only on sizes and indexes, never on hash values,
 * so both runs ask for the same nodes.
 */
#include "dfd_pg.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "core/dfd_merkle.h"

/* Lowest level kept in defendable.merkle_nodes. */
#define DFD_STORED_LEVEL 4

typedef struct node_want {
    unsigned level;
    uint64 index;
    dfd_hash hash;
    bool have;
} node_want;

typedef struct node_source {
    const pg_uuid_t *org;
    bool recording;
    /*
     * Appends read with a new snapshot (as SPI does when not read-only): after waiting for the
     * org lock they must see what the previous holder committed. Proof functions read with
     * the statement's snapshot.
     */
    bool fresh_snapshot;
    node_want *wants;
    int n, cap;
} node_source;

static void
source_init(node_source *s, const pg_uuid_t *org, bool fresh_snapshot)
{
    s->org = org;
    s->recording = true;
    s->fresh_snapshot = fresh_snapshot;
    s->n = 0;
    s->cap = 64;
    s->wants = palloc(sizeof(node_want) * s->cap);
}

static node_want *
source_find(node_source *s, unsigned level, uint64 index)
{
    for (int i = 0; i < s->n; i++)
        if (s->wants[i].level == level && s->wants[i].index == index)
            return &s->wants[i];
    return NULL;
}

static void
source_want(node_source *s, unsigned level, uint64 index)
{
    if (source_find(s, level, index) != NULL)
        return;
    if (s->n == s->cap) {
        s->cap *= 2;
        s->wants = repalloc(s->wants, sizeof(node_want) * s->cap);
    }
    s->wants[s->n].level = level;
    s->wants[s->n].index = index;
    s->wants[s->n].have = false;
    s->n++;
}

/* The callback handed to the core: records in the first run, answers in the second. */
static bool
source_node(void *ctx, unsigned level, uint64_t index, dfd_hash out)
{
    node_source *s = ctx;
    node_want *w;

    if (s->recording) {
        source_want(s, level, index);
        memset(out, 0, DFD_MERKLE_HASH_LEN);
        return true;
    }
    w = source_find(s, level, index);
    if (w == NULL || !w->have)
        return false;
    memcpy(out, w->hash, DFD_MERKLE_HASH_LEN);
    return true;
}

static void
incomplete_tree(const pg_uuid_t *org, const char *what)
{
    char org_text[DFD_UUID_LEN + 1];

    dfd_uuid_to_text(org, org_text);
    ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                    errmsg("Merkle tree of organization %s is incomplete", org_text),
                    errdetail("%s", what),
                    errhint("Run SELECT defendable.verify_ledger('%s'), then "
                            "SELECT defendable.merkle_rebuild('%s').",
                            org_text, org_text)));
}

/* Leaf hashes of the receipts with the given seqs; leaves[i] for seqs[i]. */
/* Plans of the tree's reads, prepared once per backend. */
static SPIPlanPtr plan_leaves, plan_nodes, plan_size;

static void
fetch_leaves(const pg_uuid_t *org, int64 *seqs, int n, dfd_hash *leaves, bool *found,
             bool fresh_snapshot)
{
    Oid types[2] = {UUIDOID, INT8ARRAYOID};
    Datum args[2];
    Datum *elems = palloc(sizeof(Datum) * Max(n, 1));
    int rc;

    for (int i = 0; i < n; i++) {
        elems[i] = Int64GetDatum(seqs[i]);
        found[i] = false;
    }
    args[0] = UUIDPGetDatum(org);
    args[1] = PointerGetDatum(construct_array(elems, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
    rc = SPI_execute_plan(dfd_saved_plan(&plan_leaves,
                                         "SELECT seq, hash FROM defendable.receipts "
                                         "WHERE org_id OPERATOR(pg_catalog.=) $1 "
                                         "AND seq OPERATOR(pg_catalog.=) ANY ($2)",
                                         2, types),
                          args, NULL, !fresh_snapshot, 0);
    if (rc != SPI_OK_SELECT)
        elog(ERROR, "cannot read receipt hashes: %s", SPI_result_code_string(rc));
    for (uint64 r = 0; r < SPI_processed; r++) {
        bool isnull;
        int64 seq =
            DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
        bytea *h = DatumGetByteaPP(
            SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));

        for (int i = 0; i < n; i++) {
            if (seqs[i] != seq)
                continue;
            if (VARSIZE_ANY_EXHDR(h) != DFD_SHA256_LEN ||
                !dfd_merkle_leaf_hash((const uint8 *)VARDATA_ANY(h), DFD_SHA256_LEN, leaves[i]))
                incomplete_tree(org, "A receipt hash is not 32 bytes.");
            found[i] = true;
        }
    }
}

/* Root of the perfect subtree (level, index) from its leaves (level < DFD_STORED_LEVEL). */
static void
fold_perfect(dfd_hash *leaves, int count, dfd_hash out)
{
    dfd_hash level[1 << DFD_STORED_LEVEL];

    memcpy(level, leaves, sizeof(dfd_hash) * count);
    while (count > 1) {
        for (int i = 0; i < count / 2; i++)
            dfd_merkle_node_hash(level[2 * i], level[2 * i + 1], level[i]);
        count /= 2;
    }
    memcpy(out, level[0], DFD_MERKLE_HASH_LEN);
}

/*
 * Direct reads of the tree's rows through their primary keys, for proofs (statement snapshot).
 *
 * A proof needs a handful of point lookups. Run as SQL they went wrong two ways in
 * bench/gateway.sh: executor start-up for every statement, and on a young org the planner
 * choosing a sequential scan of the table (cheaper by its estimate for a few pages, and then kept
 * in the backend's generic plan): 60% of share_resolve's time. Here every lookup is one descent
 * of the primary key, whatever the table's size.
 *
 * These are the reads SPI would do with the active snapshot (read-only), so they see exactly
 * the same rows (the reader, direct.c, checks the caller's privilege as SQL would and leaves a
 * table under row-level security to SQL).
 */
static const char *const hash_column[1] = {"hash"};

/* The 32-byte hash in column attno of the slot's row, or false. */
static bool
slot_hash(TupleTableSlot *slot, AttrNumber attno, uint8 out[DFD_MERKLE_HASH_LEN])
{
    bool isnull;
    Datum d = slot_getattr(slot, attno, &isnull);
    bytea *h;

    if (isnull)
        return false;
    h = DatumGetByteaPP(d);
    if (VARSIZE_ANY_EXHDR(h) != DFD_MERKLE_HASH_LEN)
        return false;
    memcpy(out, VARDATA_ANY(h), DFD_MERKLE_HASH_LEN);
    return true;
}

/* Reads the wanted stored nodes by primary key; false when SQL has to do it. */
static bool
direct_nodes(node_source *s)
{
    static const AttrNumber keys[3] = {1, 2, 3};
    dfd_pk_reader r;
    ScanKeyData k[3];

    if (!dfd_pk_reader_open(&r, "merkle_nodes", keys, 3, 3, hash_column, 1, GetActiveSnapshot()))
        return false;
    for (int i = 0; i < s->n; i++) {
        node_want *w = &s->wants[i];

        if (w->level < DFD_STORED_LEVEL)
            continue;
        ScanKeyInit(&k[0], 1, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(s->org));
        ScanKeyInit(&k[1], 2, BTEqualStrategyNumber, F_INT2EQ, Int16GetDatum((int16)w->level));
        ScanKeyInit(&k[2], 3, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum((int64)w->index));
        index_rescan(r.scan, k, 3, NULL, 0);
        /* a missing node stays without a hash: the caller reports the tree incomplete */
        if (index_getnext_slot(r.scan, ForwardScanDirection, r.slot))
            w->have = slot_hash(r.slot, r.attnos[0], w->hash);
    }
    dfd_pk_reader_close(&r);
    return true;
}

/*
 * Computes the wanted small subtrees (below the stored level) from their receipts' hashes,
 * read as one primary-key range per subtree; false when SQL has to do it.
 */
static bool
direct_small_subtrees(node_source *s)
{
    static const AttrNumber keys[2] = {1, 2};
    dfd_pk_reader r;
    ScanKeyData k[3];
    dfd_hash leaves[1 << DFD_STORED_LEVEL];

    if (!dfd_pk_reader_open(&r, "receipts", keys, 2, 3, hash_column, 1, GetActiveSnapshot()))
        return false;
    for (int i = 0; i < s->n; i++) {
        node_want *w = &s->wants[i];
        int count, got = 0;
        int64 first;

        if (w->level >= DFD_STORED_LEVEL)
            continue;
        count = 1 << w->level;
        first = (int64)(w->index << w->level) + 1;
        ScanKeyInit(&k[0], 1, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(s->org));
        ScanKeyInit(&k[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(first));
        ScanKeyInit(&k[2], 2, BTLessEqualStrategyNumber, F_INT8LE,
                    Int64GetDatum(first + count - 1));
        index_rescan(r.scan, k, 3, NULL, 0);
        while (got < count && index_getnext_slot(r.scan, ForwardScanDirection, r.slot)) {
            bool isnull;
            uint8 h[DFD_SHA256_LEN];

            /* rows come in seq order: each must be the next one of the range */
            if (DatumGetInt64(slot_getattr(r.slot, 2, &isnull)) != first + got)
                incomplete_tree(s->org, "A receipt of the tree is missing.");
            if (!slot_hash(r.slot, r.attnos[0], h) ||
                !dfd_merkle_leaf_hash(h, DFD_SHA256_LEN, leaves[got]))
                incomplete_tree(s->org, "A receipt hash is not 32 bytes.");
            got++;
        }
        if (got != count)
            incomplete_tree(s->org, "A receipt of the tree is missing.");
        fold_perfect(leaves, count, w->hash);
        w->have = true;
    }
    dfd_pk_reader_close(&r);
    return true;
}

/* Fetches every wanted node: stored ones in one query, small ones from receipt hashes. */
static void
source_fetch(node_source *s)
{
    int nstored = 0, nleaves = 0;
    Datum *levels = palloc(sizeof(Datum) * Max(s->n, 1));
    Datum *indexes = palloc(sizeof(Datum) * Max(s->n, 1));
    int64 *seqs;
    dfd_hash *leaves;
    bool *found;

    /* proofs read by primary key; appends (a fresh snapshot after the org lock) through SQL */
    if (!s->fresh_snapshot && direct_nodes(s) && direct_small_subtrees(s)) {
        for (int i = 0; i < s->n; i++)
            if (!s->wants[i].have)
                incomplete_tree(s->org, "A stored node of the tree is missing.");
        s->recording = false;
        return;
    }
    for (int i = 0; i < s->n; i++) {
        if (s->wants[i].level >= DFD_STORED_LEVEL) {
            levels[nstored] = Int16GetDatum((int16)s->wants[i].level);
            indexes[nstored] = Int64GetDatum((int64)s->wants[i].index);
            nstored++;
        } else {
            nleaves += 1 << s->wants[i].level;
        }
    }
    if (nstored > 0) {
        Oid types[3] = {UUIDOID, INT2ARRAYOID, INT8ARRAYOID};
        Datum args[3];
        int rc;

        args[0] = UUIDPGetDatum(s->org);
        args[1] =
            PointerGetDatum(construct_array(levels, nstored, INT2OID, 2, true, TYPALIGN_SHORT));
        args[2] =
            PointerGetDatum(construct_array(indexes, nstored, INT8OID, 8, true, TYPALIGN_DOUBLE));
        /* one index probe per wanted node, whatever the planner thinks of the array's size: a
         * join let it pick a hash join that read every node of the org to find a handful */
        rc = SPI_execute_plan(
            dfd_saved_plan(&plan_nodes,
                           "SELECT w.level, w.idx, (SELECT n.hash FROM defendable.merkle_nodes n "
                           "WHERE n.org_id OPERATOR(pg_catalog.=) $1 "
                           "AND n.level OPERATOR(pg_catalog.=) w.level "
                           "AND n.idx OPERATOR(pg_catalog.=) w.idx) "
                           "FROM unnest($2, $3) AS w(level, idx)",
                           3, types),
            args, NULL, !s->fresh_snapshot, 0);
        if (rc != SPI_OK_SELECT)
            elog(ERROR, "cannot read Merkle nodes: %s", SPI_result_code_string(rc));
        for (uint64 r = 0; r < SPI_processed; r++) {
            bool isnull;
            HeapTuple t = SPI_tuptable->vals[r];
            TupleDesc d = SPI_tuptable->tupdesc;
            node_want *w = source_find(s, (unsigned)DatumGetInt16(SPI_getbinval(t, d, 1, &isnull)),
                                       (uint64)DatumGetInt64(SPI_getbinval(t, d, 2, &isnull)));
            Datum hd = SPI_getbinval(t, d, 3, &isnull);
            bytea *h;

            if (isnull) /* not stored: the caller reports the tree incomplete */
                continue;
            h = DatumGetByteaPP(hd);
            if (w != NULL && VARSIZE_ANY_EXHDR(h) == DFD_MERKLE_HASH_LEN) {
                memcpy(w->hash, VARDATA_ANY(h), DFD_MERKLE_HASH_LEN);
                w->have = true;
            }
        }
    }
    if (nleaves > 0) {
        int k = 0;

        seqs = palloc(sizeof(int64) * nleaves);
        leaves = palloc(sizeof(dfd_hash) * nleaves);
        found = palloc(sizeof(bool) * nleaves);
        for (int i = 0; i < s->n; i++) {
            if (s->wants[i].level >= DFD_STORED_LEVEL)
                continue;
            for (uint64 j = 0; j < (UINT64CONST(1) << s->wants[i].level); j++)
                seqs[k++] = (int64)((s->wants[i].index << s->wants[i].level) + j + 1);
        }
        fetch_leaves(s->org, seqs, nleaves, leaves, found, s->fresh_snapshot);
        k = 0;
        for (int i = 0; i < s->n; i++) {
            int count;

            if (s->wants[i].level >= DFD_STORED_LEVEL)
                continue;
            count = 1 << s->wants[i].level;
            for (int j = 0; j < count; j++)
                if (!found[k + j])
                    incomplete_tree(s->org, "A receipt of the tree is missing.");
            fold_perfect(leaves + k, count, s->wants[i].hash);
            s->wants[i].have = true;
            k += count;
        }
    }
    for (int i = 0; i < s->n; i++)
        if (!s->wants[i].have)
            incomplete_tree(s->org, "A stored node of the tree is missing.");
    s->recording = false;
}

/* Number of receipts of the org visible now (this backend's pending head included). */
static int64
org_size(const pg_uuid_t *org)
{
    Oid types[1] = {UUIDOID};
    Datum args[1] = {UUIDPGetDatum(org)};
    int64 seq = 0;
    uint8 hash[DFD_SHA256_LEN];
    bool isnull;

    if (dfd_pending_head(org, &seq, hash))
        return seq;
    if (SPI_execute_plan(dfd_saved_plan(&plan_size,
                                        "SELECT seq FROM defendable.receipts "
                                        "WHERE org_id OPERATOR(pg_catalog.=) $1 "
                                        "ORDER BY seq DESC LIMIT 1",
                                        1, types),
                         args, NULL, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "cannot read the ledger size");
    if (SPI_processed == 1)
        seq =
            DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    return seq;
}

typedef enum merkle_op { OP_ROOT, OP_INCLUSION, OP_CONSISTENCY } merkle_op;

/* Runs one core generator twice (record, then answer). Inside SPI. */
static void
run_op(const pg_uuid_t *org, merkle_op op, uint64 a, uint64 b, dfd_hash *out, size_t *n)
{
    node_source s;

    source_init(&s, org, false);
    for (int pass = 0; pass < 2; pass++) {
        bool ok;

        if (pass == 1)
            source_fetch(&s);
        *n = 1;
        if (op == OP_ROOT)
            ok = dfd_merkle_root(a, source_node, &s, out[0]);
        else if (op == OP_INCLUSION)
            ok = dfd_merkle_inclusion_proof(a, b, source_node, &s, out, n);
        else
            ok = dfd_merkle_consistency_proof(a, b, source_node, &s, out, n);
        if (!ok)
            incomplete_tree(org, "A proof could not be computed.");
    }
    pfree(s.wants);
}

/* Computes the root of the org's tree at size. Must be called inside SPI. */
void
dfd_merkle_root_at(const pg_uuid_t *org, uint64 size, uint8 out[DFD_SHA256_LEN])
{
    dfd_hash h[1];
    size_t n;

    run_op(org, OP_ROOT, size, 0, h, &n);
    memcpy(out, h[0], DFD_SHA256_LEN);
}

/* Inclusion proof of leaf index in size; returns the number of hashes. Inside SPI. */
int
dfd_merkle_inclusion_at(const pg_uuid_t *org, uint64 index, uint64 size,
                        dfd_hash proof[DFD_MERKLE_MAX_PROOF])
{
    size_t n;

    run_op(org, OP_INCLUSION, index, size, proof, &n);
    return (int)n;
}

/* Consistency proof between sizes; returns the number of hashes. Inside SPI. */
int
dfd_merkle_consistency_at(const pg_uuid_t *org, uint64 old_size, uint64 new_size,
                          dfd_hash proof[DFD_MERKLE_MAX_PROOF])
{
    size_t n;

    run_op(org, OP_CONSISTENCY, old_size, new_size, proof, &n);
    return (int)n;
}

/* Current size of the org's ledger (inside SPI). */
int64
dfd_merkle_size(const pg_uuid_t *org)
{
    return org_size(org);
}

/*
 * Loads the right edge of the org's tree at size (the perfect subtree for each set bit) so
 * appends can extend it. Inside SPI.
 */
void
dfd_merkle_load_frontier(const pg_uuid_t *org, uint64 size, dfd_merkle_frontier *f)
{
    node_source s;

    source_init(&s, org, true);
    for (unsigned k = 0; k < 64; k++)
        if (size & (UINT64CONST(1) << k))
            source_want(&s, k, (size >> k) - 1);
    source_fetch(&s);
    dfd_merkle_frontier_init(f);
    f->size = size;
    for (unsigned k = 0; k < 64; k++) {
        if (size & (UINT64CONST(1) << k)) {
            node_want *w = source_find(&s, k, (size >> k) - 1);

            memcpy(f->nodes[k], w->hash, DFD_MERKLE_HASH_LEN);
        }
    }
    pfree(s.wants);
}

static SPIPlanPtr plan_insert_node;
static const char *const node_columns[4] = {"org_id", "level", "idx", "hash"};

/* Stores a completed perfect subtree (inside SPI, as an internal write). */
bool
dfd_merkle_store_node(void *ctx, unsigned level, uint64_t index, const dfd_hash h)
{
    const pg_uuid_t *org = ctx;
    Datum args[4];
    Oid types[4] = {UUIDOID, INT2OID, INT8OID, BYTEAOID};
    int rc;

    if (level < DFD_STORED_LEVEL)
        return true;
    args[0] = UUIDPGetDatum(org);
    args[1] = Int16GetDatum((int16)level);
    args[2] = Int64GetDatum((int64)index);
    {
        bytea *b = palloc(VARHDRSZ + DFD_MERKLE_HASH_LEN);

        SET_VARSIZE(b, VARHDRSZ + DFD_MERKLE_HASH_LEN);
        memcpy(VARDATA(b), h, DFD_MERKLE_HASH_LEN);
        args[3] = PointerGetDatum(b);
    }
    if (dfd_direct_insert("merkle_nodes", node_columns, 4, args, NULL))
        return true;
    dfd_saved_plan(&plan_insert_node,
                   "INSERT INTO defendable.merkle_nodes (org_id, level, idx, hash) "
                   "VALUES ($1, $2, $3, $4)",
                   4, types);
    dfd_internal_writes++;
    rc = SPI_execute_plan(plan_insert_node, args, NULL, false, 0);
    dfd_internal_writes--;
    if (rc != SPI_OK_INSERT)
        elog(ERROR, "cannot store Merkle node: %s", SPI_result_code_string(rc));
    return true;
}

/* ---- SQL functions ----------------------------------------------------------------------- */

static pg_uuid_t *
org_arg(FunctionCallInfo fcinfo)
{
    if (PG_ARGISNULL(0))
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("organization must not be null")));
    return PG_GETARG_UUID_P(0);
}

/* A tree size argument: null means the whole ledger; otherwise 0..current. */
static int64
size_arg(FunctionCallInfo fcinfo, int argno, int64 current, const char *name)
{
    int64 size;

    if (PG_ARGISNULL(argno))
        return current;
    size = PG_GETARG_INT64(argno);
    if (size < 0 || size > current)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("%s %lld is outside the ledger", name, (long long)size),
                        errdetail("The organization has %lld receipts.", (long long)current)));
    return size;
}

static bytea *
hash_bytea(const uint8 *h)
{
    bytea *b = palloc(VARHDRSZ + DFD_MERKLE_HASH_LEN);

    SET_VARSIZE(b, VARHDRSZ + DFD_MERKLE_HASH_LEN);
    memcpy(VARDATA(b), h, DFD_MERKLE_HASH_LEN);
    return b;
}

static ArrayType *
proof_array(dfd_hash *proof, int n)
{
    Datum *elems = palloc(sizeof(Datum) * Max(n, 1));

    for (int i = 0; i < n; i++)
        elems[i] = PointerGetDatum(hash_bytea(proof[i]));
    return construct_array(elems, n, BYTEAOID, -1, false, TYPALIGN_INT);
}

PG_FUNCTION_INFO_V1(dfd_merkle_root_sql);
/* merkle_root(org, tree_size default null) */
Datum
dfd_merkle_root_sql(PG_FUNCTION_ARGS)
{
    pg_uuid_t *org = org_arg(fcinfo);
    MemoryContext caller = CurrentMemoryContext;
    uint8 root[DFD_SHA256_LEN];
    int64 size;

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    size = size_arg(fcinfo, 1, org_size(org), "tree size");
    dfd_merkle_root_at(org, (uint64)size, root);
    SPI_finish();
    (void)caller;
    PG_RETURN_BYTEA_P(hash_bytea(root));
}

PG_FUNCTION_INFO_V1(dfd_inclusion_proof_sql);
/* inclusion_proof(org, seq, tree_size default null) */
Datum
dfd_inclusion_proof_sql(PG_FUNCTION_ARGS)
{
    pg_uuid_t *org = org_arg(fcinfo);
    dfd_hash proof[DFD_MERKLE_MAX_PROOF];
    int64 size, seq;
    int n;

    if (PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("seq must not be null")));
    seq = PG_GETARG_INT64(1);
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    size = size_arg(fcinfo, 2, org_size(org), "tree size");
    if (seq < 1 || seq > size)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("seq %lld is not in a tree of %lld receipts", (long long)seq,
                               (long long)size)));
    n = dfd_merkle_inclusion_at(org, (uint64)(seq - 1), (uint64)size, proof);
    SPI_finish();
    PG_RETURN_ARRAYTYPE_P(proof_array(proof, n));
}

PG_FUNCTION_INFO_V1(dfd_consistency_proof_sql);
/* consistency_proof(org, old_size, new_size default null) */
Datum
dfd_consistency_proof_sql(PG_FUNCTION_ARGS)
{
    pg_uuid_t *org = org_arg(fcinfo);
    dfd_hash proof[DFD_MERKLE_MAX_PROOF];
    int64 old_size, new_size;
    int n;

    if (PG_ARGISNULL(1))
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("old_size must not be null")));
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    new_size = size_arg(fcinfo, 2, org_size(org), "new_size");
    old_size = PG_GETARG_INT64(1);
    if (old_size < 1 || old_size > new_size)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("old_size %lld must be between 1 and new_size %lld",
                               (long long)old_size, (long long)new_size)));
    n = dfd_merkle_consistency_at(org, (uint64)old_size, (uint64)new_size, proof);
    SPI_finish();
    PG_RETURN_ARRAYTYPE_P(proof_array(proof, n));
}

static void
hash_from_bytea(bytea *b, dfd_hash out, const char *what)
{
    if (VARSIZE_ANY_EXHDR(b) != DFD_MERKLE_HASH_LEN)
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s must be 32 bytes", what)));
    memcpy(out, VARDATA_ANY(b), DFD_MERKLE_HASH_LEN);
}

/* Reads a bytea[] proof; false if it is malformed (nulls, wrong lengths, too long). */
static bool
proof_from_array(ArrayType *arr, dfd_hash *proof, size_t *n)
{
    Datum *elems;
    bool *nulls;
    int count;

    if (ARR_NDIM(arr) > 1)
        return false;
    deconstruct_array(arr, BYTEAOID, -1, false, TYPALIGN_INT, &elems, &nulls, &count);
    if (count > DFD_MERKLE_MAX_PROOF)
        return false;
    for (int i = 0; i < count; i++) {
        bytea *b;

        if (nulls[i])
            return false;
        b = DatumGetByteaPP(elems[i]);
        if (VARSIZE_ANY_EXHDR(b) != DFD_MERKLE_HASH_LEN)
            return false;
        memcpy(proof[i], VARDATA_ANY(b), DFD_MERKLE_HASH_LEN);
    }
    *n = (size_t)count;
    return true;
}

PG_FUNCTION_INFO_V1(dfd_merkle_leaf_hash_sql);
/* merkle_leaf_hash(receipt_hash) */
Datum
dfd_merkle_leaf_hash_sql(PG_FUNCTION_ARGS)
{
    bytea *in = PG_GETARG_BYTEA_PP(0);
    dfd_hash leaf;

    dfd_merkle_leaf_hash((const uint8 *)VARDATA_ANY(in), VARSIZE_ANY_EXHDR(in), leaf);
    PG_RETURN_BYTEA_P(hash_bytea(leaf));
}

PG_FUNCTION_INFO_V1(dfd_verify_inclusion_sql);
/* verify_inclusion(receipt_hash, seq, tree_size, proof, root) */
Datum
dfd_verify_inclusion_sql(PG_FUNCTION_ARGS)
{
    dfd_hash receipt, leaf, root;
    dfd_hash proof[DFD_MERKLE_MAX_PROOF];
    size_t n;
    int64 seq = PG_GETARG_INT64(1), size = PG_GETARG_INT64(2);

    hash_from_bytea(PG_GETARG_BYTEA_PP(0), receipt, "receipt_hash");
    hash_from_bytea(PG_GETARG_BYTEA_PP(4), root, "root");
    if (seq < 1 || size < 1 || !proof_from_array(PG_GETARG_ARRAYTYPE_P(3), proof, &n))
        PG_RETURN_BOOL(false);
    dfd_merkle_leaf_hash(receipt, DFD_MERKLE_HASH_LEN, leaf);
    PG_RETURN_BOOL(
        dfd_merkle_verify_inclusion((uint64)(seq - 1), (uint64)size, leaf, proof, n, root));
}

PG_FUNCTION_INFO_V1(dfd_verify_consistency_sql);
/* verify_consistency(old_size, new_size, old_root, new_root, proof) */
Datum
dfd_verify_consistency_sql(PG_FUNCTION_ARGS)
{
    int64 old_size = PG_GETARG_INT64(0), new_size = PG_GETARG_INT64(1);
    dfd_hash old_root, new_root;
    dfd_hash proof[DFD_MERKLE_MAX_PROOF];
    size_t n;

    hash_from_bytea(PG_GETARG_BYTEA_PP(2), old_root, "old_root");
    hash_from_bytea(PG_GETARG_BYTEA_PP(3), new_root, "new_root");
    if (old_size < 0 || new_size < 0 || !proof_from_array(PG_GETARG_ARRAYTYPE_P(4), proof, &n))
        PG_RETURN_BOOL(false);
    PG_RETURN_BOOL(dfd_merkle_verify_consistency((uint64)old_size, (uint64)new_size, old_root,
                                                 new_root, proof, n));
}

/* Rebuilds one org's stored nodes from its receipts. Inside SPI. */
static void
rebuild_org(pg_uuid_t *org)
{
    Oid types[1] = {UUIDOID};
    Datum args[1] = {UUIDPGetDatum(org)};
    SPIPlanPtr plan;
    Portal portal;
    dfd_merkle_frontier f;
    int64 expected = 1;
    int rc;

    dfd_internal_writes++;
    rc = SPI_execute_with_args("DELETE FROM defendable.merkle_nodes "
                               "WHERE org_id OPERATOR(pg_catalog.=) $1",
                               1, types, args, NULL, false, 0);
    dfd_internal_writes--;
    if (rc != SPI_OK_DELETE)
        elog(ERROR, "cannot clear Merkle nodes");
    plan = SPI_prepare("SELECT seq, hash FROM defendable.receipts "
                       "WHERE org_id OPERATOR(pg_catalog.=) $1 ORDER BY seq",
                       1, types);
    portal = SPI_cursor_open(NULL, plan, args, NULL, true);
    dfd_merkle_frontier_init(&f);
    for (;;) {
        SPI_cursor_fetch(portal, true, 4096);
        if (SPI_processed == 0)
            break;
        {
            SPITupleTable *tt = SPI_tuptable;
            uint64 count = SPI_processed;

            for (uint64 r = 0; r < count; r++) {
                bool isnull;
                int64 seq = DatumGetInt64(SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &isnull));
                bytea *h = DatumGetByteaPP(SPI_getbinval(tt->vals[r], tt->tupdesc, 2, &isnull));
                dfd_hash leaf;

                CHECK_FOR_INTERRUPTS();
                if (seq != expected || VARSIZE_ANY_EXHDR(h) != DFD_SHA256_LEN)
                    incomplete_tree(org, "The chain has a gap or a malformed hash; the tree "
                                         "is not rebuilt over a broken ledger.");
                expected++;
                dfd_merkle_leaf_hash((const uint8 *)VARDATA_ANY(h), DFD_SHA256_LEN, leaf);
                dfd_merkle_frontier_append(&f, leaf, dfd_merkle_store_node, org);
            }
            SPI_freetuptable(tt);
        }
    }
    SPI_cursor_close(portal);
}

PG_FUNCTION_INFO_V1(dfd_merkle_rebuild);
/* merkle_rebuild(org default null) */
Datum
dfd_merkle_rebuild(PG_FUNCTION_ARGS)
{
    int64 total = 0;

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    if (!PG_ARGISNULL(0)) {
        rebuild_org(PG_GETARG_UUID_P(0));
    } else {
        int rc = SPI_execute("SELECT DISTINCT org_id FROM defendable.receipts ORDER BY 1", true, 0);
        SPITupleTable *orgs = SPI_tuptable;
        uint64 norgs = SPI_processed;

        if (rc != SPI_OK_SELECT)
            elog(ERROR, "cannot list organizations");
        for (uint64 i = 0; i < norgs; i++) {
            bool isnull;
            pg_uuid_t org = *DatumGetUUIDP(SPI_getbinval(orgs->vals[i], orgs->tupdesc, 1, &isnull));

            rebuild_org(&org);
        }
    }
    {
        Oid types[1] = {UUIDOID};
        Datum args[1] = {PG_ARGISNULL(0) ? (Datum)0 : PG_GETARG_DATUM(0)};
        bool isnull;
        int rc = SPI_execute_with_args("SELECT count(*) FROM defendable.merkle_nodes "
                                       "WHERE $1 IS NULL OR org_id OPERATOR(pg_catalog.=) $1",
                                       1, types, args, PG_ARGISNULL(0) ? "n" : NULL,
                                       false /* must see the nodes just written */, 0);

        if (rc != SPI_OK_SELECT || SPI_processed != 1)
            elog(ERROR, "cannot count Merkle nodes");
        total =
            DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    }
    SPI_finish();
    PG_RETURN_INT64(total);
}
