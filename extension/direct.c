/*
 * direct.c: rows of the extension's tables written and read without a planned statement.
 *
 * Writes (one row inserted, or one row replaced by its tid). Why: append_receipt writes two
 * to four rows per receipt (the receipt, its disclosures, every 16th a Merkle node, the head).
 * Through SPI each row is an executor start-up and shut-down of a whole INSERT plan (ModifyTable,
 * Result, projections, a portal): perf put that at a fifth of the CPU of a one-receipt transaction
 * (docs/benchmarks.md), and the head's upsert as much again. The executor's single-row insert and
 * update, the ones logical replication applies rows with, keep what the row needs: row triggers
 * (the write guards; an update also fires AFTER ROW ones, such as the head's deferred flush), NOT
 * NULL and CHECK constraints, and every index with its unique check.
 *
 * It stands in for SQL only where SQL would do the same thing. The caller falls back to its
 * statement when this returns false: the transaction is read-only, the current user may not
 * insert (update), row-level security applies to it, the table has a trigger this path would
 * not fire (statement-level, INSTEAD OF, transition tables, and for inserts AFTER ROW: foreign
 * keys are AFTER ROW triggers), or its columns are not exactly the ones named (a column added
 * later would need its default, which only SQL computes).
 *
 * Reads by primary key (dfd_pk_reader): one descent of the index per lookup, whatever the
 * table's size. As SQL they cost an executor start-up each, and on a young table the planner
 * chose a sequential scan that the backend's generic plan then kept while the table grew
 * (bench/gateway.sh for proofs; bench/append.sh for the head reads of an append). The same
 * privilege and row-level-security rule applies: when SQL would see other rows, or refuse, the
 * caller asks SQL.
 */
#include "dfd_pg.h"

#include "access/genam.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/resowner.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

/* the triggers SQL would fire on an INSERT and this path would not */
static bool
has_unfired_insert_triggers(const TriggerDesc *t)
{
    return t != NULL && (t->trig_insert_instead_row || t->trig_insert_after_row ||
                         t->trig_insert_before_statement || t->trig_insert_after_statement ||
                         t->trig_insert_new_table);
}

/* the same for an UPDATE (its row triggers, BEFORE and AFTER, this path fires) */
static bool
has_unfired_update_triggers(const TriggerDesc *t)
{
    return t != NULL &&
           (t->trig_update_instead_row || t->trig_update_before_statement ||
            t->trig_update_after_statement || t->trig_update_old_table || t->trig_update_new_table);
}

/* the table's live columns are exactly `columns`, in that order (dropped ones skipped) */
static bool
columns_are(TupleDesc desc, const char *const *columns, int ncolumns)
{
    int col = 0;

    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute a = TupleDescAttr(desc, i);

        if (a->attisdropped)
            continue;
        if (col >= ncolumns || strcmp(NameStr(a->attname), columns[col]) != 0)
            return false;
        col++;
    }
    return col == ncolumns;
}

/* A table opened for one row write, with what the executor's single-row routines need. */
typedef struct write_target {
    Relation rel;
    EState *estate;
    MemoryContext caller; /* current again after close_target */
    ResultRelInfo *rri;
    TupleTableSlot *slot; /* the new row */
} write_target;

/*
 * Whether the direct path may write relid now. Checked for every row, as every INSERT or UPDATE
 * statement checks it at executor start: a read-only transaction (BEGIN READ ONLY, a hot
 * standby) refuses the statement with its own error, which the single-row routines would never
 * raise, and the privileges and row-level security are the statement's. (An UPDATE's SELECT on
 * the row was checked by the read that found its tid.)
 */
static bool
may_write(Oid relid, CmdType cmd)
{
    return !XactReadOnly && !IsInParallelMode() &&
           pg_class_aclcheck(relid, GetUserId(), cmd == CMD_INSERT ? ACL_INSERT : ACL_UPDATE) ==
               ACLCHECK_OK &&
           check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED;
}

/*
 * Opens the table when the direct path may write it (see the top of the file; may_write was
 * checked). On success the executor state's context is current, until close_target.
 */
static bool
open_target(write_target *w, Oid relid, CmdType cmd, const char *const *columns, int ncolumns)
{
    TupleDesc desc;
    RangeTblEntry *rte;

    w->rel = table_open(relid, RowExclusiveLock);
    desc = RelationGetDescr(w->rel);
    if (w->rel->rd_rel->relkind != RELKIND_RELATION ||
        (cmd == CMD_INSERT ? has_unfired_insert_triggers(w->rel->trigdesc)
                           : has_unfired_update_triggers(w->rel->trigdesc)) ||
        !columns_are(desc, columns, ncolumns)) {
        table_close(w->rel, RowExclusiveLock);
        return false;
    }

    /* all of it, up to close_target, in the executor state's own context, freed there */
    w->estate = CreateExecutorState();
    w->caller = MemoryContextSwitchTo(w->estate->es_query_cxt);
    rte = makeNode(RangeTblEntry);
    rte->rtekind = RTE_RELATION;
    rte->relid = relid;
    rte->relkind = w->rel->rd_rel->relkind;
    rte->rellockmode = RowExclusiveLock;
    /*
     * An update sets every column but the primary key's, as the UPDATE it stands in for does:
     * the columns decide the row lock's strength and which "UPDATE OF column" triggers fire.
     */
    if (cmd == CMD_UPDATE) {
        Bitmapset *key = RelationGetIndexAttrBitmap(w->rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);

        for (int i = 0; i < desc->natts; i++) {
            int member = TupleDescAttr(desc, i)->attnum - FirstLowInvalidHeapAttributeNumber;

            if (!TupleDescAttr(desc, i)->attisdropped && !bms_is_member(member, key))
                rte->updatedCols = bms_add_member(rte->updatedCols, member);
        }
    }
    ExecInitRangeTable(w->estate, list_make1(rte));
    w->rri = makeNode(ResultRelInfo);
    InitResultRelInfo(w->rri, w->rel, 1, NULL, 0);
    w->estate->es_output_cid = GetCurrentCommandId(true);
    ExecOpenIndices(w->rri, false);
    w->slot = ExecInitExtraTupleSlot(w->estate, desc, &TTSOpsVirtual);
    return true;
}

/* The new row into the target's slot (the values stay the caller's: the slot is virtual). */
static void
fill_slot(TupleTableSlot *slot, const Datum *values, const bool *nulls)
{
    TupleDesc desc = slot->tts_tupleDescriptor;
    int col = 0;

    ExecClearTuple(slot);
    for (int i = 0; i < desc->natts; i++) {
        if (TupleDescAttr(desc, i)->attisdropped) {
            slot->tts_values[i] = (Datum)0;
            slot->tts_isnull[i] = true;
            continue;
        }
        slot->tts_values[i] = values[col];
        slot->tts_isnull[i] = nulls != NULL && nulls[col];
        col++;
    }
    ExecStoreVirtualTuple(slot);
}

/* Closes what open_target opened; the caller's context is current again. */
static void
close_target(write_target *w)
{
    ExecCloseIndices(w->rri);
    /* relations the trigger queue opened to fire immediate AFTER triggers */
    ExecCloseResultRelations(w->estate);
    ExecResetTupleTable(w->estate->es_tupleTable, false);
    MemoryContextSwitchTo(w->caller);
    FreeExecutorState(w->estate);
    /* the lock is kept to the end of the transaction, as a statement keeps it */
    table_close(w->rel, NoLock);
}

/*
 * Insert targets kept open between rows. Opening and closing the table, its indexes and an
 * executor state for every row was 16% of a statement appending 100,000 receipts
 * (docs/benchmarks.md), work an INSERT of many rows does once. A kept target belongs to the
 * transaction (its resource owner and memory), so no subtransaction's end takes it for its own,
 * and it is closed:
 * - at the transaction's pre-commit or pre-prepare (an abort takes it with the transaction's
 *   resource owner and memory);
 * - at a subtransaction's abort, unless an insert begun outside that subtransaction is still
 *   writing through it (then after that insert);
 * - before every utility command of the session: ALTER TABLE, DROP, CLUSTER and the like refuse
 *   a table this session holds open;
 * - at its next use after an invalidation of its table: a trigger, column, policy, grant or
 *   index changed, so it is reopened and the direct path's rules are checked again.
 * may_write still runs for every row. An insert that begins while the table's target is already
 * writing a row (a trigger on the table appending a receipt) opens a target of its own.
 */
typedef struct kept_target {
    const char *relname; /* NULL: this entry is free */
    Oid relid;
    write_target w;
    MemoryContext row_cxt;     /* what one insert allocates, reset after it */
    bool stale;                /* invalidated: close before the next use */
    bool busy;                 /* an insert is writing through it */
    SubTransactionId busy_sub; /* where that insert began */
} kept_target;

#define KEPT_TARGETS 4
static kept_target kept_targets[KEPT_TARGETS];
static int n_kept_targets = 0;
/* from pre-commit to the transaction's end nothing is kept: nothing would close it */
static bool keeping_ended = false;
static ProcessUtility_hook_type prev_process_utility = NULL;

static void
close_kept(kept_target *t)
{
    ResourceOwner owner = CurrentResourceOwner;
    MemoryContext cxt = CurrentMemoryContext;

    CurrentResourceOwner = TopTransactionResourceOwner;
    /* close_target ends by switching to w.caller: the context current now */
    t->w.caller = cxt;
    MemoryContextSwitchTo(t->w.estate->es_query_cxt);
    close_target(&t->w);
    CurrentResourceOwner = owner;
    memset(t, 0, sizeof(*t));
    n_kept_targets--;
}

/* Closes every kept target no insert is writing through; those that are, after their insert. */
static void
close_idle_kept(void)
{
    for (int i = 0; n_kept_targets > 0 && i < KEPT_TARGETS; i++) {
        kept_target *t = &kept_targets[i];

        if (t->relname == NULL)
            continue;
        if (t->busy)
            t->stale = true;
        else
            close_kept(t);
    }
}

static kept_target *
find_kept(const char *relname)
{
    for (int i = 0; n_kept_targets > 0 && i < KEPT_TARGETS; i++)
        if (kept_targets[i].relname != NULL && strcmp(kept_targets[i].relname, relname) == 0)
            return &kept_targets[i];
    return NULL;
}

/*
 * Opens relname's target to keep, in a free entry. NULL with *allowed false: the direct path may
 * not write the table; NULL with *allowed true: nothing can be kept now.
 */
static kept_target *
open_kept(const char *relname, Oid relid, const char *const *columns, int ncolumns, bool *allowed)
{
    kept_target *t = NULL;
    ResourceOwner owner = CurrentResourceOwner;
    MemoryContext caller = MemoryContextSwitchTo(TopTransactionContext);
    TriggerDesc *trig;

    *allowed = true;
    for (int i = 0; t == NULL && i < KEPT_TARGETS; i++)
        if (kept_targets[i].relname == NULL)
            t = &kept_targets[i];
    if (keeping_ended || t == NULL) {
        MemoryContextSwitchTo(caller);
        return NULL;
    }
    /* an error in here aborts the (sub)transaction, which puts back the owner and context */
    CurrentResourceOwner = TopTransactionResourceOwner;
    *allowed = open_target(&t->w, relid, CMD_INSERT, columns, ncolumns);
    if (*allowed) {
        /*
         * The trigger functions' lookups, made now in the target's memory: the executor would
         * make them at the first row, in the memory current then, which row_cxt's reset frees.
         */
        trig = t->w.rri->ri_TrigDesc;
        for (int i = 0; trig != NULL && i < trig->numtriggers; i++)
            fmgr_info_cxt(trig->triggers[i].tgfoid, &t->w.rri->ri_TrigFunctions[i],
                          t->w.estate->es_query_cxt);
        t->row_cxt = AllocSetContextCreate(t->w.estate->es_query_cxt, "defendable kept insert",
                                           ALLOCSET_DEFAULT_SIZES);
        t->relname = relname;
        t->relid = relid;
        n_kept_targets++;
    }
    CurrentResourceOwner = owner;
    MemoryContextSwitchTo(caller);
    return *allowed ? t : NULL;
}

/* One row through a kept target. */
static void
insert_kept(kept_target *t, const Datum *values, const bool *nulls)
{
    MemoryContext caller = MemoryContextSwitchTo(t->row_cxt);

    t->w.estate->es_output_cid = GetCurrentCommandId(true);
    fill_slot(t->w.slot, values, nulls);
    t->busy = true;
    t->busy_sub = GetCurrentSubTransactionId();
    /* an error resets the depth at (sub)transaction abort (append.c) */
    dfd_internal_writes++;
    ExecSimpleRelationInsert(t->w.rri, t->w.estate, t->w.slot);
    dfd_internal_writes--;
    t->busy = false;
    ExecClearTuple(t->w.slot);
    ResetPerTupleExprContext(t->w.estate);
    MemoryContextSwitchTo(caller);
    MemoryContextReset(t->row_cxt);
    /* invalidated while it wrote (a trigger's DDL, say) */
    if (t->stale)
        close_kept(t);
}

static void
kept_xact_callback(XactEvent event, void *arg)
{
    if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PARALLEL_PRE_COMMIT ||
        event == XACT_EVENT_PRE_PREPARE) {
        close_idle_kept();
        keeping_ended = true;
        return;
    }
    /* commit, abort, prepare: the owner released what was still open, the memory is gone */
    memset(kept_targets, 0, sizeof(kept_targets));
    n_kept_targets = 0;
    keeping_ended = false;
}

static void
kept_subxact_callback(SubXactEvent event, SubTransactionId my, SubTransactionId parent, void *arg)
{
    if (event != SUBXACT_EVENT_ABORT_SUB)
        return;
    for (int i = 0; n_kept_targets > 0 && i < KEPT_TARGETS; i++) {
        kept_target *t = &kept_targets[i];

        if (t->relname == NULL)
            continue;
        /* an insert begun inside the aborted subtransaction ended with it */
        if (t->busy && t->busy_sub >= my)
            t->busy = false;
        /*
         * Closed now, before the relation cache forgets what the subtransaction created (a
         * table whose creation is rolled back must not stay open).
         */
        if (t->busy)
            t->stale = true;
        else
            close_kept(t);
    }
}

static void
kept_relcache_callback(Datum arg, Oid relid)
{
    for (int i = 0; n_kept_targets > 0 && i < KEPT_TARGETS; i++)
        if (kept_targets[i].relname != NULL &&
            (relid == InvalidOid || relid == kept_targets[i].relid))
            kept_targets[i].stale = true;
}

static void
kept_process_utility(PlannedStmt *pstmt, const char *query, bool read_only_tree,
                     ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *env,
                     DestReceiver *dest, QueryCompletion *qc)
{
    if (n_kept_targets > 0)
        close_idle_kept();
    if (prev_process_utility != NULL)
        prev_process_utility(pstmt, query, read_only_tree, context, params, env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
}

void
dfd_direct_init(void)
{
    RegisterXactCallback(kept_xact_callback, NULL);
    RegisterSubXactCallback(kept_subxact_callback, NULL);
    CacheRegisterRelcacheCallback(kept_relcache_callback, (Datum)0);
    prev_process_utility = ProcessUtility_hook;
    ProcessUtility_hook = kept_process_utility;
}

bool
dfd_direct_insert(const char *relname, const char *const *columns, int ncolumns,
                  const Datum *values, const bool *nulls)
{
    kept_target *t = find_kept(relname);
    Oid relid;
    write_target w;
    bool allowed;

    if (t != NULL && t->stale && !t->busy) {
        close_kept(t);
        t = NULL;
    }
    relid = t != NULL ? t->relid : dfd_relation_oid(relname);
    if (!may_write(relid, CMD_INSERT))
        return false;
    if (t == NULL) {
        t = open_kept(relname, relid, columns, ncolumns, &allowed);
        if (!allowed)
            return false;
    }
    if (t != NULL && !t->busy && !t->stale) {
        insert_kept(t, values, nulls);
        return true;
    }

    /* nothing kept: a target for this row alone */
    if (!open_target(&w, relid, CMD_INSERT, columns, ncolumns))
        return false;
    fill_slot(w.slot, values, nulls);
    dfd_internal_writes++;
    ExecSimpleRelationInsert(w.rri, w.estate, w.slot);
    dfd_internal_writes--;
    close_target(&w);
    return true;
}

bool
dfd_direct_update(const char *relname, ItemPointer tid, const char *const *columns, int ncolumns,
                  const Datum *values, const bool *nulls)
{
    Oid relid = dfd_relation_oid(relname);
    write_target w;
    EPQState epq;
    TupleTableSlot *old;

    if (!may_write(relid, CMD_UPDATE) || !open_target(&w, relid, CMD_UPDATE, columns, ncolumns))
        return false;
    fill_slot(w.slot, values, nulls);
    /* the snapshot an UPDATE statement would run with; the row to replace, by its tid */
    PushActiveSnapshot(GetTransactionSnapshot());
    w.estate->es_snapshot = GetActiveSnapshot();
    old = ExecInitExtraTupleSlot(w.estate, RelationGetDescr(w.rel), &TTSOpsVirtual);
    old->tts_tid = *tid;
    EvalPlanQualInit(&epq, w.estate, NULL, NIL, -1);
    /*
     * AFTER ROW triggers queue their events on a query level of their own, as a statement's
     * do: there may be no outer one (a fast-path function call runs no query)
     */
    AfterTriggerBeginQuery();
    dfd_internal_writes++;
    ExecSimpleRelationUpdate(w.rri, w.estate, &epq, old, w.slot);
    dfd_internal_writes--;
    AfterTriggerEndQuery(w.estate);
    EvalPlanQualEnd(&epq);
    PopActiveSnapshot();
    close_target(&w);
    return true;
}

bool
dfd_pk_reader_open(dfd_pk_reader *r, const char *relname, const AttrNumber *key_attnos, int nkeys,
                   int nscankeys, const char *const *columns, int ncolumns, Snapshot snapshot)
{
    Oid relid = dfd_relation_oid(relname), indexid;
    bool keys_match;

    Assert(ncolumns <= DFD_PK_READER_COLUMNS);
    if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
        check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
        return false;
    for (int i = 0; i < ncolumns; i++) {
        r->attnos[i] = get_attnum(relid, columns[i]);
        if (r->attnos[i] == InvalidAttrNumber)
            return false;
    }
    r->heap = table_open(relid, AccessShareLock);
    indexid = RelationGetPrimaryKeyIndex(r->heap);
    if (!OidIsValid(indexid)) {
        table_close(r->heap, AccessShareLock);
        return false;
    }
    r->index = index_open(indexid, AccessShareLock);
    /* the key columns must be the ones the scan keys name, in that order */
    keys_match = r->index->rd_index->indnkeyatts == nkeys;
    for (int i = 0; keys_match && i < nkeys; i++)
        keys_match = r->index->rd_index->indkey.values[i] == key_attnos[i];
    if (!keys_match) {
        index_close(r->index, AccessShareLock);
        table_close(r->heap, AccessShareLock);
        return false;
    }
    r->slot = table_slot_create(r->heap, NULL);
    /* every index_rescan must pass exactly nscankeys keys: the scan copies that many */
    r->scan = index_beginscan(r->heap, r->index, snapshot, nscankeys, 0);
    return true;
}

void
dfd_pk_reader_close(dfd_pk_reader *r)
{
    index_endscan(r->scan);
    ExecDropSingleTupleTableSlot(r->slot);
    index_close(r->index, AccessShareLock);
    table_close(r->heap, AccessShareLock);
}
