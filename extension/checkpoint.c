/*
 * checkpoint.c: signed checkpoints (C2SP tlog-checkpoint bodies in C2SP signed notes).
 *
 * The database never holds the signing key: it produces the text to sign
 * (checkpoint_body), stores what was signed outside after checking it (record_checkpoint),
 * and checks any checkpoint handed out earlier against today's tree (verify_checkpoint). A
 * superuser who rewrites history and recomputes every hash and node still cannot make the tree
 * agree with a root that was signed before the rewrite.
 */
#include "dfd_pg.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "core/dfd_note.h"

#define DFD_ORIGIN_MAX 200

/* Checks an origin given by the deployment: printable ASCII, no slash at the end, bounded. */
static void
check_origin(const char *s, size_t len)
{
    if (len == 0 || len > DFD_ORIGIN_MAX)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("origin must have 1 to %d bytes", DFD_ORIGIN_MAX)));
    for (size_t i = 0; i < len; i++)
        if (s[i] <= ' ' || s[i] > '~')
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("origin must be printable ASCII without spaces"),
                            errdetail("It names the deployment, for example ledger.example.com.")));
}

/* The org named by a checkpoint origin "<deployment>/<org uuid>". */
static bool
org_of_origin(const dfd_checkpoint *cp, pg_uuid_t *org)
{
    const char *uuid;

    if (cp->origin_len < DFD_UUID_LEN + 2 || cp->origin[cp->origin_len - DFD_UUID_LEN - 1] != '/')
        return false;
    uuid = cp->origin + cp->origin_len - DFD_UUID_LEN;
    if (!dfd_valid_uuid_text(uuid, DFD_UUID_LEN))
        return false;
    for (int i = 0, o = 0; i < DFD_UUID_LEN; i++) {
        if (uuid[i] == '-')
            continue;
        dfd_hex_decode(uuid + i, 2, &org->data[o++], 1);
        i++;
    }
    return true;
}

static void
bad_input(const char *msg, const char *detail)
{
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s", msg),
                    detail ? errdetail("%s", detail) : 0));
}

/* Parses and checks the signature of a note and its checkpoint body; errors on bad input. */
static void
parse_signed_checkpoint(text *note_text, text *vkey_text, dfd_note *note, dfd_vkey *vkey,
                        dfd_checkpoint *cp, pg_uuid_t *org, bool *signature_ok,
                        text **note_text_out)
{
    *note_text_out = note_text;
    if (!dfd_vkey_parse(VARDATA_ANY(vkey_text), VARSIZE_ANY_EXHDR(vkey_text), vkey))
        bad_input("invalid verifier key",
                  "A verifier key is <name>+<8 hex digits>+<base64 of 0x01 and the Ed25519 "
                  "public key> (C2SP signed-note).");
    /*
     * A signed note ends with a newline, which shells and psql variables tend to strip: put a
     * lost final newline back (the signature covers only the text before the blank line, so
     * this changes nothing that was signed).
     */
    if (VARSIZE_ANY_EXHDR(note_text) > 0 &&
        VARDATA_ANY(note_text)[VARSIZE_ANY_EXHDR(note_text) - 1] != '\n') {
        text *fixed = palloc(VARSIZE_ANY_EXHDR(note_text) + 1 + VARHDRSZ);

        SET_VARSIZE(fixed, VARSIZE_ANY_EXHDR(note_text) + 1 + VARHDRSZ);
        memcpy(VARDATA(fixed), VARDATA_ANY(note_text), VARSIZE_ANY_EXHDR(note_text));
        VARDATA(fixed)[VARSIZE_ANY_EXHDR(note_text)] = '\n';
        *note_text_out = fixed;
        note_text = fixed;
    }
    if (dfd_note_parse(VARDATA_ANY(note_text), VARSIZE_ANY_EXHDR(note_text), note) != DFD_OK)
        bad_input("invalid signed note", "Expected C2SP signed-note text.");
    if (dfd_checkpoint_parse(note->text, note->text_len, cp) != DFD_OK)
        bad_input("invalid checkpoint", "Expected <origin>/<org>, the tree size and the base64 "
                                        "root, one per line (C2SP tlog-checkpoint).");
    /* defendable's checkpoints have no extension lines; the CLI refuses them too */
    if (cp->extensions_len > 0)
        bad_input("checkpoint has extension lines",
                  "A defendable checkpoint is exactly three lines: origin, size, root.");
    if (!org_of_origin(cp, org))
        bad_input("checkpoint origin does not name an organization",
                  "The origin must end with /<organization uuid>.");
    if (cp->size > (uint64)DFD_MAX_SEQ)
        bad_input("checkpoint tree size is too large", NULL);
    *signature_ok = dfd_note_verify(note, vkey);
}

PG_FUNCTION_INFO_V1(dfd_checkpoint_body);
/* checkpoint_body(org, origin, tree_size default null): the text to sign. */
Datum
dfd_checkpoint_body(PG_FUNCTION_ARGS)
{
    pg_uuid_t *org;
    text *origin;
    int64 size, current;
    uint8 root[DFD_SHA256_LEN];
    char org_text[DFD_UUID_LEN + 1];
    dfd_buf full, out;
    text *result;

    if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("organization and origin must not be null")));
    org = PG_GETARG_UUID_P(0);
    origin = PG_GETARG_TEXT_PP(1);
    check_origin(VARDATA_ANY(origin), VARSIZE_ANY_EXHDR(origin));
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    current = dfd_merkle_size(org);
    size = PG_ARGISNULL(2) ? current : PG_GETARG_INT64(2);
    if (size < 0 || size > current)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("tree size %lld is outside the ledger", (long long)size),
                        errdetail("The organization has %lld receipts.", (long long)current)));
    dfd_merkle_root_at(org, (uint64)size, root);
    SPI_finish();

    dfd_uuid_to_text(org, org_text);
    dfd_buf_init(&full);
    dfd_buf_append(&full, VARDATA_ANY(origin), VARSIZE_ANY_EXHDR(origin));
    dfd_buf_putc(&full, '/');
    dfd_buf_puts(&full, org_text);
    dfd_buf_init(&out);
    if (dfd_checkpoint_format(&out, full.data, full.len, (uint64)size, root) != DFD_OK)
        dfd_report_core_error(DFD_ENOMEM, "cannot format checkpoint");
    result = cstring_to_text_with_len(out.data, (int)out.len);
    dfd_buf_free(&full);
    dfd_buf_free(&out);
    PG_RETURN_TEXT_P(result);
}

PG_FUNCTION_INFO_V1(dfd_record_checkpoint);
/* record_checkpoint(note, verifier_key): stores a checkpoint once it is proven right. */
Datum
dfd_record_checkpoint(PG_FUNCTION_ARGS)
{
    text *note_text = PG_GETARG_TEXT_PP(0);
    text *vkey_text = PG_GETARG_TEXT_PP(1);
    dfd_note *note = palloc(sizeof(dfd_note));
    dfd_vkey vkey;
    dfd_checkpoint cp;
    pg_uuid_t org;
    bool signature_ok;
    uint8 root[DFD_SHA256_LEN];
    int64 current;
    char key_id[9];
    Oid types[6] = {UUIDOID, INT8OID, BYTEAOID, TEXTOID, TEXTOID, TEXTOID};
    Datum args[6];
    bytea *root_b;
    TupleDesc tupdesc;
    HeapTuple result;
    MemoryContext caller = CurrentMemoryContext;
    int rc;

    if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "record_checkpoint must return defendable.checkpoints");
    parse_signed_checkpoint(note_text, vkey_text, note, &vkey, &cp, &org, &signature_ok,
                            &note_text);
    if (!signature_ok)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("checkpoint is not signed by this verifier key")));
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    current = dfd_merkle_size(&org);
    if ((int64)cp.size > current)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("checkpoint tree size %llu is beyond the ledger",
                               (unsigned long long)cp.size),
                        errdetail("The organization has %lld receipts.", (long long)current)));
    dfd_merkle_root_at(&org, cp.size, root);
    if (memcmp(root, cp.root, DFD_SHA256_LEN) != 0)
        ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                        errmsg("checkpoint root does not match the ledger at tree size %llu",
                               (unsigned long long)cp.size)));
    snprintf(key_id, sizeof key_id, "%08x", vkey.id);
    root_b = palloc(VARHDRSZ + DFD_SHA256_LEN);
    SET_VARSIZE(root_b, VARHDRSZ + DFD_SHA256_LEN);
    memcpy(VARDATA(root_b), root, DFD_SHA256_LEN);
    args[0] = UUIDPGetDatum(&org);
    args[1] = Int64GetDatum((int64)cp.size);
    args[2] = PointerGetDatum(root_b);
    args[3] = PointerGetDatum(cstring_to_text_with_len(vkey.name, (int)vkey.name_len));
    args[4] = CStringGetTextDatum(key_id);
    args[5] = PointerGetDatum(note_text);
    dfd_internal_writes++;
    rc = SPI_execute_with_args(
        "INSERT INTO defendable.checkpoints AS c (org_id, tree_size, root, key_name, key_id, note) "
        "VALUES ($1, $2, $3, $4, $5, $6) "
        "ON CONFLICT (org_id, tree_size, key_name, key_id) DO UPDATE SET note = c.note "
        "RETURNING c.*",
        6, types, args, NULL, false, 1);
    dfd_internal_writes--;
    if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
        elog(ERROR, "cannot store checkpoint: %s", SPI_result_code_string(rc));
    {
        MemoryContext old = MemoryContextSwitchTo(caller);

        result = heap_copytuple(SPI_tuptable->vals[0]);
        MemoryContextSwitchTo(old);
    }
    SPI_finish();
    PG_RETURN_DATUM(heap_copy_tuple_as_datum(result, tupdesc));
}

PG_FUNCTION_INFO_V1(dfd_verify_checkpoint);
/*
 * verify_checkpoint(note, verifier_key): is today's tree an extension of the tree the
 * checkpoint signed? One row: ok, org, the checkpoint's size, the current size, and why.
 */
Datum
dfd_verify_checkpoint(PG_FUNCTION_ARGS)
{
    ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
    dfd_note *note = palloc(sizeof(dfd_note));
    dfd_vkey vkey;
    dfd_checkpoint cp;
    pg_uuid_t org;
    bool signature_ok, ok = false;
    int64 current = 0;
    char detail[200];
    Datum values[5];
    bool nulls[5] = {false};

    InitMaterializedSRF(fcinfo, 0);
    text *note_text;

    parse_signed_checkpoint(PG_GETARG_TEXT_PP(0), PG_GETARG_TEXT_PP(1), note, &vkey, &cp, &org,
                            &signature_ok, &note_text);
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    current = dfd_merkle_size(&org);
    if (!signature_ok) {
        snprintf(detail, sizeof detail, "signature does not verify with this key");
    } else if ((int64)cp.size > current) {
        snprintf(detail, sizeof detail,
                 "the ledger has %lld receipts, fewer than the %llu the checkpoint signed: "
                 "receipts were removed",
                 (long long)current, (unsigned long long)cp.size);
    } else {
        uint8 old_root[DFD_SHA256_LEN], new_root[DFD_SHA256_LEN];

        dfd_merkle_root_at(&org, cp.size, old_root);
        if (memcmp(old_root, cp.root, DFD_SHA256_LEN) != 0) {
            snprintf(detail, sizeof detail,
                     "the tree at size %llu does not have the signed root: history was rewritten",
                     (unsigned long long)cp.size);
        } else if (cp.size == 0 || (int64)cp.size == current) {
            ok = true;
            snprintf(detail, sizeof detail, "ok: the current tree is the signed tree");
        } else {
            dfd_hash proof[DFD_MERKLE_MAX_PROOF];
            int n = dfd_merkle_consistency_at(&org, cp.size, (uint64)current, proof);

            /* the proof an outsider would check, checked here the same way */
            dfd_merkle_root_at(&org, (uint64)current, new_root);
            ok = dfd_merkle_verify_consistency(cp.size, (uint64)current, cp.root, new_root, proof,
                                               (size_t)n);
            snprintf(detail, sizeof detail,
                     ok ? "ok: the current tree of %lld receipts extends the signed tree"
                        : "consistency proof to the current tree of %lld receipts fails",
                     (long long)current);
        }
    }
    SPI_finish();
    values[0] = BoolGetDatum(ok);
    values[1] = UUIDPGetDatum(&org);
    values[2] = Int64GetDatum((int64)cp.size);
    values[3] = Int64GetDatum(current);
    values[4] = CStringGetTextDatum(detail);
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    return (Datum)0;
}
