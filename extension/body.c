/*
 * body.c: rebuilds a receipt's hashed body from its stored columns. Verification, the SQL
 * function receipt_body() and public projections all use this one function, so what is
 * checked is exactly what is shown.
 */
#include "dfd_pg.h"

#include "executor/spi.h"

/*
 * The organization's text form, remembered from the last call: verify_ledger rebuilds the bodies
 * of one organization after another, and spelling the same uuid for each was 2% of its time.
 */
static void
org_text_cached(const pg_uuid_t *org, char out[DFD_UUID_LEN + 1])
{
    static pg_uuid_t last_org;
    static char last_text[DFD_UUID_LEN + 1];

    if (last_text[0] == '\0' || memcmp(org->data, last_org.data, UUID_LEN) != 0) {
        dfd_uuid_to_text(org, last_text);
        last_org = *org;
    }
    memcpy(out, last_text, sizeof last_text);
}

/*
 * Writes the body of the receipt whose stored columns are given. Returns what was malformed
 * instead of raising an error, so a verifier can report the receipt and go on.
 */
dfd_body_result
dfd_build_body(dfd_buf *out, const pg_uuid_t *org, int64 seq, TimestampTz ts, const char *kind,
               size_t kind_len, const bytea *prev, Jsonb *fields)
{
    char org_text[DFD_UUID_LEN + 1];
    char ts_text[DFD_TS_LEN + 1];
    dfd_receipt_header h;
    dfd_field_digest digests[DFD_FIELDS_MAX];
    const JsonbContainer *jc = &fields->root;
    const char *data;
    int n;

    if (VARSIZE_ANY_EXHDR(prev) != DFD_SHA256_LEN)
        return DFD_BODY_BAD_PREV;
    if (TIMESTAMP_NOT_FINITE(ts) || !dfd_format_ts(ts + DFD_UNIX_TO_PG_USECS, ts_text))
        return DFD_BODY_BAD_TS;
    if (!JB_ROOT_IS_OBJECT(fields) || JB_ROOT_IS_SCALAR(fields) ||
        JB_ROOT_COUNT(fields) > DFD_FIELDS_MAX)
        return DFD_BODY_MALFORMED_FIELDS;
    /*
     * The object's entries read in place (jsonb.h's layout: the n keys' entries, then the n
     * values', then their data), not through a JsonbIterator, whose allocation and token steps
     * cost more than the reading for the few members of a digest map (verify_ledger reads one
     * per receipt). Keys are always strings; a value that is not a string is malformed here.
     */
    n = (int)JsonContainerSize(jc);
    data = (const char *)&jc->children[2 * n];
    for (int i = 0; i < n; i++) {
        if (!JBE_ISSTRING(jc->children[n + i]) || getJsonbLength(jc, n + i) != DFD_DIGEST_B64_LEN)
            return DFD_BODY_MALFORMED_FIELDS;
        digests[i].name = data + getJsonbOffset(jc, i);
        digests[i].name_len = getJsonbLength(jc, i);
        digests[i].digest = data + getJsonbOffset(jc, n + i);
    }
    dfd_sort_field_digests(digests, (size_t)n);

    org_text_cached(org, org_text);
    h.org = org_text;
    h.seq = seq;
    h.ts = ts_text;
    h.kind = kind;
    h.kind_len = kind_len;
    memcpy(h.prev, VARDATA_ANY(prev), DFD_SHA256_LEN);
    if (dfd_receipt_body(out, &h, digests, (size_t)n) != DFD_OK)
        return DFD_BODY_MALFORMED_FIELDS; /* a string that is not UTF-8 */
    return DFD_BODY_OK;
}

/*
 * Writes the members fields, hash, kind, org, prev, seq, ts (in that, canonical, order, comma
 * separated, without braces) of the receipt row t, whose first seven columns are those of
 * defendable.receipts. Projections, bundles and exports all show a receipt this way.
 */
void
dfd_write_header_members(dfd_buf *out, HeapTuple t, TupleDesc d)
{
    bool isnull;
    pg_uuid_t *org = DatumGetUUIDP(SPI_getbinval(t, d, 1, &isnull));
    int64 seq = DatumGetInt64(SPI_getbinval(t, d, 2, &isnull));
    TimestampTz ts = DatumGetTimestampTz(SPI_getbinval(t, d, 3, &isnull));
    text *kind = DatumGetTextPP(SPI_getbinval(t, d, 4, &isnull));
    bytea *prev = DatumGetByteaPP(SPI_getbinval(t, d, 5, &isnull));
    Jsonb *fields = DatumGetJsonbP(SPI_getbinval(t, d, 6, &isnull));
    bytea *hash = DatumGetByteaPP(SPI_getbinval(t, d, 7, &isnull));
    char org_text[DFD_UUID_LEN + 1], ts_text[DFD_TS_LEN + 1], hex[DFD_HEX_HASH_LEN];
    char num[24];

    dfd_uuid_to_text(org, org_text);
    if (!dfd_format_ts(ts + DFD_UNIX_TO_PG_USECS, ts_text))
        ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("receipt time out of range")));
    if (VARSIZE_ANY_EXHDR(prev) != DFD_SHA256_LEN || VARSIZE_ANY_EXHDR(hash) != DFD_SHA256_LEN)
        ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("receipt hash is not 32 bytes")));
    dfd_buf_puts(out, "\"fields\":");
    dfd_buf_puts(out, JsonbToCString(NULL, &fields->root, VARSIZE(fields)));
    dfd_hex_encode((const uint8 *)VARDATA_ANY(hash), DFD_SHA256_LEN, hex);
    dfd_buf_puts(out, ",\"hash\":\"");
    dfd_buf_append(out, hex, sizeof hex);
    dfd_buf_puts(out, "\",\"kind\":");
    dfd_jcs_string(out, VARDATA_ANY(kind), VARSIZE_ANY_EXHDR(kind));
    dfd_buf_puts(out, ",\"org\":\"");
    dfd_buf_puts(out, org_text);
    dfd_hex_encode((const uint8 *)VARDATA_ANY(prev), DFD_SHA256_LEN, hex);
    dfd_buf_puts(out, "\",\"prev\":\"");
    dfd_buf_append(out, hex, sizeof hex);
    dfd_format_int64(seq, num);
    dfd_buf_puts(out, "\",\"seq\":");
    dfd_buf_puts(out, num);
    dfd_buf_puts(out, ",\"ts\":\"");
    dfd_buf_puts(out, ts_text);
    dfd_buf_putc(out, '"');
}
