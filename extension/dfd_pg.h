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

/* append.c */
extern void dfd_append_init(void);
extern bool dfd_pending_head(const pg_uuid_t *org, int64 *seq, uint8 *hash);

#endif /* DFD_PG_H */
