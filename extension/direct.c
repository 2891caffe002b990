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
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
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

/* Opens the table when the direct path may write it (see the top of the file). */
static bool
open_target(write_target *w, const char *relname, CmdType cmd, const char *const *columns,
            int ncolumns, const Datum *values, const bool *nulls)
{
    Oid relid = dfd_relation_oid(relname);
    TupleDesc desc;
    RangeTblEntry *rte;
    int col = 0;

    /*
     * A read-only transaction (BEGIN READ ONLY, a hot standby) refuses the statement at
     * executor start with its own error, which the single-row routines would never raise.
     * (An UPDATE's SELECT on the row was checked by the read that found its tid.)
     */
    if (XactReadOnly || IsInParallelMode() ||
        pg_class_aclcheck(relid, GetUserId(), cmd == CMD_INSERT ? ACL_INSERT : ACL_UPDATE) !=
            ACLCHECK_OK ||
        check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
        return false;
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
    ExecClearTuple(w->slot);
    for (int i = 0; i < desc->natts; i++) {
        if (TupleDescAttr(desc, i)->attisdropped) {
            w->slot->tts_values[i] = (Datum)0;
            w->slot->tts_isnull[i] = true;
            continue;
        }
        w->slot->tts_values[i] = values[col];
        w->slot->tts_isnull[i] = nulls != NULL && nulls[col];
        col++;
    }
    ExecStoreVirtualTuple(w->slot);
    return true;
}

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

bool
dfd_direct_insert(const char *relname, const char *const *columns, int ncolumns,
                  const Datum *values, const bool *nulls)
{
    write_target w;

    if (!open_target(&w, relname, CMD_INSERT, columns, ncolumns, values, nulls))
        return false;
    /* an error resets the depth at (sub)transaction abort (append.c) */
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
    write_target w;
    EPQState epq;
    TupleTableSlot *old;

    if (!open_target(&w, relname, CMD_UPDATE, columns, ncolumns, values, nulls))
        return false;
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
