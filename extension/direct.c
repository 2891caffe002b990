/*
 * direct.c: rows of the extension's tables written and read without a planned statement.
 *
 * Writes. Why: append_receipt writes two to four rows per receipt (the receipt, its disclosures,
 * every 16th a Merkle node). Through SPI each row is an executor start-up and shut-down of a whole
 * INSERT plan (ModifyTable, Result, projections, a portal): perf put that at a fifth of the
 * CPU of a one-receipt transaction (docs/benchmarks.md). The executor's single-row insert, the
 * one logical replication applies rows with, keeps what the row needs: BEFORE ROW triggers
 * (the write guards), NOT NULL and CHECK constraints, and every index with its unique check.
 *
 * It stands in for SQL only where SQL would do the same thing. The caller falls back to its
 * statement when this returns false: the current user may not insert, row-level security
 * applies to it, the table has a trigger this path would not fire (statement-level, AFTER
 * ROW, INSTEAD OF; foreign keys are AFTER ROW triggers), or its columns are not exactly the
 * ones named (a column added later would need its default, which only SQL computes).
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
#include "access/table.h"
#include "access/tableam.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"

/* the triggers SQL would fire on an INSERT and this path would not */
static bool
has_unfired_insert_triggers(const TriggerDesc *t)
{
    return t != NULL && (t->trig_insert_instead_row || t->trig_insert_after_row ||
                         t->trig_insert_before_statement || t->trig_insert_after_statement ||
                         t->trig_insert_new_table);
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

bool
dfd_direct_insert(const char *relname, const char *const *columns, int ncolumns,
                  const Datum *values, const bool *nulls)
{
    Oid relid = dfd_relation_oid(relname);
    Relation rel;
    TupleDesc desc;
    EState *estate;
    RangeTblEntry *rte;
    ResultRelInfo *rri;
    TupleTableSlot *slot;
    int col = 0;

    if (pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) != ACLCHECK_OK ||
        check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
        return false;
    rel = table_open(relid, RowExclusiveLock);
    desc = RelationGetDescr(rel);
    if (rel->rd_rel->relkind != RELKIND_RELATION || has_unfired_insert_triggers(rel->trigdesc) ||
        !columns_are(desc, columns, ncolumns)) {
        table_close(rel, RowExclusiveLock);
        return false;
    }

    /* all of it in the executor state's own context, freed below */
    estate = CreateExecutorState();
    rte = makeNode(RangeTblEntry);
    rte->rtekind = RTE_RELATION;
    rte->relid = relid;
    rte->relkind = rel->rd_rel->relkind;
    rte->rellockmode = RowExclusiveLock;
    ExecInitRangeTable(estate, list_make1(rte));
    rri = makeNode(ResultRelInfo);
    InitResultRelInfo(rri, rel, 1, NULL, 0);
    estate->es_output_cid = GetCurrentCommandId(true);
    ExecOpenIndices(rri, false);

    slot = ExecInitExtraTupleSlot(estate, desc, &TTSOpsVirtual);
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

    /* an error resets the depth at (sub)transaction abort (append.c) */
    dfd_internal_writes++;
    ExecSimpleRelationInsert(rri, estate, slot);
    dfd_internal_writes--;

    ExecCloseIndices(rri);
    ExecResetTupleTable(estate->es_tupleTable, false);
    FreeExecutorState(estate);
    /* the lock is kept to the end of the transaction, as an INSERT statement keeps it */
    table_close(rel, NoLock);
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
