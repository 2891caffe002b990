/*
 * dfd_pg.h: declarations shared by the extension's C files (not by the core).
 */
#ifndef DFD_PG_H
#define DFD_PG_H

#include "postgres.h"

#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "core/dfd_core.h"

/* Microseconds between the Unix epoch and the PostgreSQL epoch (2000-01-01). */
#define DFD_UNIX_TO_PG_USECS INT64CONST(946684800000000)

/* Largest seq: the body carries seq as a JSON number, which must stay an exact double. */
#define DFD_MAX_SEQ INT64CONST(9007199254740991)

/* GUCs (defendable.c) */
extern bool dfd_restore_mode;
extern int dfd_max_fields_bytes;

/*
 * Depth of the extension's own writes to its tables. The write guards refuse every INSERT,
 * UPDATE and DELETE that does not come from inside the extension while this is zero.
 */
extern int dfd_internal_writes;

/* defendable.c */
extern void dfd_uuid_to_text(const pg_uuid_t *u, char out[DFD_UUID_LEN + 1]);
extern void dfd_report_core_error(dfd_status st, const char *what);
extern Oid dfd_relation_oid(const char *relname);

/* jsonb_jcs.c */
extern void dfd_jsonb_jcs(dfd_buf *out, JsonbContainer *c, bool exact);
extern void dfd_jsonb_value_jcs(dfd_buf *out, JsonbValue *v, bool exact);

/* body.c */
typedef enum dfd_body_result {
    DFD_BODY_OK,
    DFD_BODY_MALFORMED_FIELDS,
    DFD_BODY_BAD_TS,
    DFD_BODY_BAD_PREV,
} dfd_body_result;
extern dfd_body_result dfd_build_body(dfd_buf *out, const pg_uuid_t *org, int64 seq, TimestampTz ts,
                                      const char *kind, size_t kind_len, const bytea *prev,
                                      Jsonb *fields);

/* defendable.c: a statement prepared once per backend (inside SPI) */
#include "executor/spi.h"
extern SPIPlanPtr dfd_saved_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types);

/* merkle.c (callers must be inside SPI) */
#include "core/dfd_merkle.h"
extern void dfd_merkle_root_at(const pg_uuid_t *org, uint64 size, uint8 out[DFD_SHA256_LEN]);
extern int dfd_merkle_inclusion_at(const pg_uuid_t *org, uint64 index, uint64 size,
                                   dfd_hash proof[DFD_MERKLE_MAX_PROOF]);
extern int dfd_merkle_consistency_at(const pg_uuid_t *org, uint64 old_size, uint64 new_size,
                                     dfd_hash proof[DFD_MERKLE_MAX_PROOF]);
extern int64 dfd_merkle_size(const pg_uuid_t *org);
extern void dfd_merkle_load_frontier(const pg_uuid_t *org, uint64 size, dfd_merkle_frontier *f);
extern bool dfd_merkle_store_node(void *ctx, unsigned level, uint64_t index, const dfd_hash h);

/* body.c, verify.c (inside SPI) */
#include "access/htup.h"
#include "access/tupdesc.h"
extern void dfd_write_header_members(dfd_buf *out, HeapTuple t, TupleDesc d);
extern void dfd_projection_text(const pg_uuid_t *org, int64 seq, dfd_buf *out);

/* direct.c: false when the caller must write or read the rows with SQL instead */
#include "access/genam.h"
#include "executor/tuptable.h"
#include "utils/rel.h"
#include "utils/snapshot.h"
extern void dfd_direct_init(void);
extern bool dfd_direct_insert(const char *relname, const char *const *columns, int ncolumns,
                              const Datum *values, const bool *nulls);
/* replaces the row at tid, which the caller read and locked against other writers */
extern bool dfd_direct_update(const char *relname, ItemPointer tid, const char *const *columns,
                              int ncolumns, const Datum *values, const bool *nulls);
#define DFD_PK_READER_COLUMNS 4
typedef struct dfd_pk_reader {
    Relation heap, index;
    IndexScanDesc scan;
    TupleTableSlot *slot;
    AttrNumber attnos[DFD_PK_READER_COLUMNS]; /* of the columns named when opened */
} dfd_pk_reader;
extern bool dfd_pk_reader_open(dfd_pk_reader *r, const char *relname, const AttrNumber *key_attnos,
                               int nkeys, int nscankeys, const char *const *columns, int ncolumns,
                               Snapshot snapshot);
extern void dfd_pk_reader_close(dfd_pk_reader *r);

/* append.c */
extern void dfd_append_init(void);
extern bool dfd_pending_head(const pg_uuid_t *org, int64 *seq, uint8 *hash);

#endif /* DFD_PG_H */
