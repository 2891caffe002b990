/*
 * jsonb_jcs.c: RFC 8785 canonical JSON of jsonb values, and the SQL functions jcs(jsonb) and
 * jcs_text(text).
 *
 * jsonb orders object keys by length, then bytes; RFC 8785 wants UTF-16 code-unit order, so
 * each object's members are collected and sorted again. The escaping, number printing and
 * key order themselves are the core's.
 */
#include "dfd_pg.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"

typedef struct jcs_member {
    const char *key;
    int key_len;
    JsonbValue value;
} jcs_member;

static int
member_cmp(const void *x, const void *y)
{
    const jcs_member *a = x, *b = y;

    return dfd_jcs_key_cmp(a->key, a->key_len, b->key, b->key_len);
}

static void
check_status(dfd_status st)
{
    if (st != DFD_OK)
        dfd_report_core_error(st, "cannot canonicalize JSON value");
}

static void
jcs_number(dfd_buf *out, Numeric num, bool exact)
{
    char *text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(num)));
    dfd_status st = dfd_jcs_decimal(out, text, strlen(text), exact);

    if (st == DFD_ENUMINEXACT || st == DFD_ENUMRANGE) {
        /* numeric text can run to thousands of digits: quote only its start in the error */
        size_t len = strlen(text);
        char shown[48];

        snprintf(shown, sizeof shown, "%.40s%s", text, len > 40 ? "..." : "");
        ereport(
            ERROR,
            (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
             st == DFD_ENUMRANGE
                 ? errmsg("number %s is outside the range of an IEEE-754 double", shown)
                 : errmsg("number %s cannot be represented exactly as an IEEE-754 double", shown),
             errdetail("RFC 8785 writes numbers as doubles; this value would change."),
             errhint("Store the value as a string to keep every digit.")));
    }
    check_status(st);
    pfree(text);
}

static void jcs_container(dfd_buf *out, JsonbContainer *c, bool exact, int depth);

/*
 * Values nest at most DFD_JSON_MAX_DEPTH levels, the limit of the core's JSON reader (which the
 * offline verifier uses): a receipt must never hold a value that nobody can verify.
 */
static void
check_depth(int depth)
{
    if (depth > DFD_JSON_MAX_DEPTH)
        ereport(ERROR,
                (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("JSON value nested too deeply"),
                 errdetail("Nothing may sit deeper than level %d; a field value is level 1 of its "
                           "disclosure.",
                           DFD_JSON_MAX_DEPTH)));
}

static void
jcs_value(dfd_buf *out, JsonbValue *v, bool exact, int depth)
{
    check_depth(depth);
    switch (v->type) {
    case jbvNull:
        dfd_buf_puts(out, "null");
        break;
    case jbvBool:
        dfd_buf_puts(out, v->val.boolean ? "true" : "false");
        break;
    case jbvString:
        check_status(dfd_jcs_string(out, v->val.string.val, v->val.string.len));
        break;
    case jbvNumeric:
        jcs_number(out, v->val.numeric, exact);
        break;
    case jbvBinary:
        jcs_container(out, v->val.binary.data, exact, depth);
        break;
    default:
        elog(ERROR, "unexpected jsonb value type %d", (int)v->type);
    }
}

/* A field value: level 1, inside its disclosure array [salt, name, value]. */
void
dfd_jsonb_value_jcs(dfd_buf *out, JsonbValue *v, bool exact)
{
    jcs_value(out, v, exact, 1);
}

/* A whole document (jcs()): level 0. */
void
dfd_jsonb_jcs(dfd_buf *out, JsonbContainer *c, bool exact)
{
    jcs_container(out, c, exact, 0);
}

static void
jcs_container(dfd_buf *out, JsonbContainer *c, bool exact, int depth)
{
    JsonbIterator *it;
    JsonbValue v;
    JsonbIteratorToken tok;

    check_stack_depth();
    CHECK_FOR_INTERRUPTS();
    check_depth(depth);
    it = JsonbIteratorInit(c);
    tok = JsonbIteratorNext(&it, &v, true);
    if (tok == WJB_BEGIN_ARRAY) {
        bool raw_scalar = v.val.array.rawScalar;
        bool first = true;

        if (!raw_scalar)
            dfd_buf_putc(out, '[');
        while ((tok = JsonbIteratorNext(&it, &v, true)) == WJB_ELEM) {
            if (!first)
                dfd_buf_putc(out, ',');
            first = false;
            /* a bare scalar is stored as a one-element array: not a level of its own */
            jcs_value(out, &v, exact, raw_scalar ? depth : depth + 1);
        }
        if (!raw_scalar)
            dfd_buf_putc(out, ']');
    } else if (tok == WJB_BEGIN_OBJECT) {
        int n = v.val.object.nPairs, i = 0;
        jcs_member *members = palloc(sizeof(jcs_member) * Max(n, 1));

        while ((tok = JsonbIteratorNext(&it, &v, true)) == WJB_KEY) {
            members[i].key = v.val.string.val;
            members[i].key_len = v.val.string.len;
            tok = JsonbIteratorNext(&it, &members[i].value, true);
            Assert(tok == WJB_VALUE);
            i++;
        }
        qsort(members, i, sizeof(jcs_member), member_cmp);
        dfd_buf_putc(out, '{');
        for (int j = 0; j < i; j++) {
            if (j)
                dfd_buf_putc(out, ',');
            check_status(dfd_jcs_string(out, members[j].key, members[j].key_len));
            dfd_buf_putc(out, ':');
            jcs_value(out, &members[j].value, exact, depth + 1);
        }
        dfd_buf_putc(out, '}');
        pfree(members);
    } else {
        elog(ERROR, "unexpected jsonb iterator token %d", (int)tok);
    }
    if (out->failed)
        check_status(DFD_ENOMEM);
}

static void
require_utf8(void)
{
    if (GetDatabaseEncoding() != PG_UTF8)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("defendable requires a database with UTF8 encoding"),
                        errdetail("RFC 8785 canonical JSON is UTF-8.")));
}

PG_FUNCTION_INFO_V1(dfd_jcs);
/* jcs(jsonb): canonical text; numbers that would change as doubles are refused. */
Datum
dfd_jcs(PG_FUNCTION_ARGS)
{
    Jsonb *jb = PG_GETARG_JSONB_P(0);
    dfd_buf out;
    text *result;

    require_utf8();
    dfd_buf_init(&out);
    dfd_jsonb_jcs(&out, &jb->root, true);
    result = cstring_to_text_with_len(out.data, (int)out.len);
    dfd_buf_free(&out);
    PG_RETURN_TEXT_P(result);
}

PG_FUNCTION_INFO_V1(dfd_jcs_text);
/* jcs_text(text): RFC 8785 of JSON text, numbers read as the nearest double (I-JSON). */
Datum
dfd_jcs_text(PG_FUNCTION_ARGS)
{
    text *in = PG_GETARG_TEXT_PP(0);
    dfd_buf out;
    dfd_status st;
    text *result;

    require_utf8();
    dfd_buf_init(&out);
    st = dfd_jcs_canonicalize(VARDATA_ANY(in), VARSIZE_ANY_EXHDR(in), false, &out);
    if (st != DFD_OK)
        ereport(ERROR, (errcode(st == DFD_EUTF8       ? ERRCODE_CHARACTER_NOT_IN_REPERTOIRE
                                : st == DFD_EDEPTH    ? ERRCODE_PROGRAM_LIMIT_EXCEEDED
                                : st == DFD_ENUMRANGE ? ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE
                                                      : ERRCODE_INVALID_TEXT_REPRESENTATION),
                        errmsg("cannot canonicalize JSON text: %s", dfd_status_text(st))));
    result = cstring_to_text_with_len(out.data, (int)out.len);
    dfd_buf_free(&out);
    PG_RETURN_TEXT_P(result);
}
