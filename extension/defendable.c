/*
 * defendable.c: module initialisation, configuration and small helpers shared by the
 * extension's C files.
 */
#include "dfd_pg.h"

#include "catalog/namespace.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

PG_MODULE_MAGIC;

void _PG_init(void);

bool dfd_restore_mode = false;
int dfd_max_fields_bytes = 1024 * 1024;
int dfd_internal_writes = 0;

/* The core allocates through palloc, so its memory belongs to the caller's memory context. */
static void *
pg_core_alloc(size_t size)
{
    return palloc(size);
}

static void *
pg_core_realloc(void *ptr, size_t size)
{
    return repalloc(ptr, size);
}

static void
pg_core_free(void *ptr)
{
    pfree(ptr);
}

void
_PG_init(void)
{
    static const dfd_allocator pg_allocator = {pg_core_alloc, pg_core_realloc, pg_core_free};

    dfd_set_allocator(&pg_allocator);

    DefineCustomBoolVariable(
        "defendable.restore_mode", "Lets pg_restore load receipts, disclosures and heads directly.",
        "Only for restoring a dump taken with pg_dump. Rows loaded this way are not checked "
        "when they are written; run defendable.verify_ledger() afterwards.",
        &dfd_restore_mode, false, PGC_SUSET, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("defendable.max_fields_bytes",
                            "Largest total size of a receipt's canonical field values, in bytes.",
                            "Appends whose fields are larger are refused.", &dfd_max_fields_bytes,
                            1024 * 1024, 1024, 64 * 1024 * 1024, PGC_SUSET, GUC_UNIT_BYTE, NULL,
                            NULL, NULL);
    MarkGUCPrefixReserved("defendable");
    dfd_append_init();
    dfd_direct_init();
}

void
dfd_uuid_to_text(const pg_uuid_t *u, char out[DFD_UUID_LEN + 1])
{
    char hex[32];
    int o = 0;

    dfd_hex_encode(u->data, UUID_LEN, hex);
    for (int i = 0; i < 32; i++) {
        if (i == 8 || i == 12 || i == 16 || i == 20)
            out[o++] = '-';
        out[o++] = hex[i];
    }
    out[o] = '\0';
}

/* Turns a core status into an ERROR with the matching SQLSTATE. */
void
dfd_report_core_error(dfd_status st, const char *what)
{
    int code;

    switch (st) {
    case DFD_ENOMEM:
        code = ERRCODE_OUT_OF_MEMORY;
        break;
    case DFD_EUTF8:
        code = ERRCODE_CHARACTER_NOT_IN_REPERTOIRE;
        break;
    case DFD_ENUMRANGE:
    case DFD_ENUMINEXACT:
        code = ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE;
        break;
    case DFD_ESYNTAX:
    case DFD_EDUPKEY:
        code = ERRCODE_INVALID_TEXT_REPRESENTATION;
        break;
    case DFD_EDEPTH:
    case DFD_ETOOLARGE:
        code = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
        break;
    default:
        code = ERRCODE_INVALID_PARAMETER_VALUE;
        break;
    }
    ereport(ERROR, (errcode(code), errmsg("%s: %s", what, dfd_status_text(st))));
}

/*
 * The plan of one of the extension's statements, prepared on first use and kept for the life of
 * the backend (the plan cache replans it when a table it reads changes). Statements on hot paths
 * (share links, receipts, API keys) go through here: parsing and planning them on every call
 * cost more than running them.
 */
SPIPlanPtr
dfd_saved_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
    if (*slot == NULL) {
        SPIPlanPtr plan = SPI_prepare(sql, nargs, types);

        if (plan == NULL || SPI_keepplan(plan) != 0)
            elog(ERROR, "cannot prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
        *slot = plan;
    }
    return *slot;
}

/* OID of one of the extension's relations in schema defendable. */
Oid
dfd_relation_oid(const char *relname)
{
    Oid nsp = get_namespace_oid("defendable", false);
    Oid rel = get_relname_relid(relname, nsp);

    if (!OidIsValid(rel))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("relation defendable.%s does not exist", relname),
                        errhint("Reinstall the extension with CREATE EXTENSION defendable.")));
    return rel;
}
