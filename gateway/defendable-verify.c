/*
 * defendable-verify: the offline verifier of receipt bundles and organization exports, and the
 * key tool that makes and uses the checkpoint signing key (docs/cli.md).
 *
 * It is meant for someone who trusts neither the service nor its database administrator, so it
 * trusts nothing it reads. Every document is checked against docs/receipt-format.md and
 * docs/receipt-bundle.md, and every protocol step (canonical JSON, receipt bodies, digests,
 * Merkle hashing, signed notes) goes through extension/core, the code the extension itself
 * runs: the verifier and the ledger cannot disagree about a byte. This file only reads
 * documents (jansson), checks their shape, and reports.
 *
 * Two kinds of bad input are told apart (the exit status says which): a document that is not
 * well-formed (exit 2: not JSON, a missing or unexpected member, a wrong type, a bad format)
 * and a well-formed one that does not verify (exit 1: a digest, hash, link, proof or signature
 * that does not match). Every size read is bounded so that no input can exhaust memory,
 * except the export's one root per receipt (32 bytes each), which a streaming check of
 * checkpoints that arrive after all receipts cannot avoid.
 */
#include "dfd_core.h"
#include "dfd_merkle.h"
#include "dfd_note.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

/* Unbounded string functions have no place in a program that reads hostile input. */
#pragma GCC poison strcpy strcat sprintf vsprintf gets strncpy strncat strtok

#define VERSION "0.2.0"

enum exit_status {
    EXIT_VERIFIED = 0,  /* verified; or keygen/sign done */
    EXIT_FAILED = 1,    /* well-formed input that does not verify */
    EXIT_MALFORMED = 2, /* usage error, unreadable or malformed input */
    EXIT_INTERNAL = 3,  /* out of memory, crypto failure, cannot write output */
};

/* Bounds on everything read. */
#define BUNDLE_MAX (16u << 20)            /* a bundle document */
#define LINE_MAX_BYTES (1u << 20)         /* one line of an export, without its "\n" */
#define SIGN_INPUT_MAX (64u << 10)        /* the checkpoint body given to sign */
#define KEY_FILE_MAX (64u << 10)          /* a key file */
#define INCLUSION_MAX_HASHES 64           /* a tree of at most 2^63 leaves needs at most 63 */
#define MAX_SEQ INT64_C(9007199254740991) /* 2^53 - 1, receipt-format section 1 */
#define SHOWN_RECEIPT_FAILURES 100        /* export: FAIL lines shown for receipts, then counted */
#define SHOW_MAX 200                      /* bytes of an untrusted string quoted in a message */

static const char *progname = "defendable-verify";

/* ---- failures of the program itself ------------------------------------------------------ */

static void
internal_error(const char *what)
{
    fflush(stdout);
    fprintf(stderr, "%s: internal error: %s\n", progname, what);
    exit(EXIT_INTERNAL);
}

static void
out_of_memory(void)
{
    internal_error("out of memory");
}

/* A core buffer whose allocation failed ends the program: there is nothing useful left to do. */
static void
buf_check(const dfd_buf *b)
{
    if (b->failed)
        out_of_memory();
}

static void
usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", progname);
    exit(EXIT_MALFORMED);
}

/* Appends printf-style text to a core buffer. */
static void
buf_vprintf(dfd_buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    int n;

    va_copy(copy, ap);
    n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        internal_error("cannot format a message");
    if (!dfd_buf_reserve(b, (size_t)n))
        out_of_memory();
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

static void
buf_printf(dfd_buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

/* ---- showing untrusted text ---------------------------------------------------------------- */

/*
 * Characters a terminal would act on rather than show (C0 and C1 controls, DEL) and the
 * invisible bidirectional controls that can make a line read differently from its bytes.
 */
static bool
unsafe_to_show(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == 0x061c || cp == 0x200e ||
           cp == 0x200f || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

/*
 * Appends text for a human: unsafe characters become \uXXXX and invalid bytes \xNN. Inside a
 * JSON string \uXXXX means the same character, so a canonical JSON value stays valid JSON with
 * the same meaning when shown this way. Stops after max bytes of input (SIZE_MAX: no limit).
 */
static void
put_shown(dfd_buf *b, const char *s, size_t len, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        uint32_t cp;
        size_t n = dfd_utf8_decode(u + i, len - i, &cp);

        if (i >= max) {
            dfd_buf_puts(b, "...");
            break;
        }
        if (n == 0) {
            buf_printf(b, "\\x%02x", u[i]);
            i++;
        } else if (unsafe_to_show(cp)) {
            buf_printf(b, "\\u%04x", (unsigned)cp);
            i += n;
        } else {
            dfd_buf_append(b, s + i, n);
            i += n;
        }
    }
    buf_check(b);
}

/*
 * An untrusted string made safe to print, as a C string. The result lives in one of a few
 * rotating buffers, so it must be used before eight more calls (one message's worth).
 */
static const char *
show(const char *s, size_t len)
{
    static dfd_buf ring[8];
    static unsigned next;
    dfd_buf *b = &ring[next++ % 8];

    dfd_buf_reset(b);
    put_shown(b, s, len, SHOW_MAX);
    if (!dfd_buf_terminate(b))
        out_of_memory();
    return b->data;
}

static const char *
show_c(const char *s)
{
    return show(s, strlen(s));
}

/* A JSON string literal (RFC 8785 escaping) of text known to be valid UTF-8. */
static void
put_json_string(dfd_buf *b, const char *s, size_t len)
{
    if (dfd_jcs_string(b, s, len) != DFD_OK)
        internal_error("text for the JSON output is not UTF-8");
}

/* ---- the report: one line per check ---------------------------------------------------------- */

typedef enum ck_status { CK_OK, CK_FAIL, CK_SKIP, CK_WARN } ck_status;

static const char *const ck_label[] = {"ok", "FAIL", "skip", "warn"};
static const char *const ck_name[] = {"ok", "fail", "skip", "warn"};

typedef struct report {
    bool json;
    unsigned long fails;  /* checks that failed */
    unsigned long hidden; /* failed checks counted but not shown */
    bool malformed;       /* the input is not well-formed: exit 2 */
    dfd_buf checks;       /* --json: the members of the "checks" array so far */
    bool any_check;
} report;

static void
report_init(report *r, bool json)
{
    memset(r, 0, sizeof *r);
    r->json = json;
    dfd_buf_init(&r->checks);
}

/*
 * Records one check. In text mode it is printed at once, "<status> <step>: <detail>", so that
 * a long export shows progress; with --json it joins the "checks" array printed at the end.
 * The detail must already be safe to show (untrusted parts go through show()).
 */
static void
vcheck(report *r, ck_status st, const char *step, const char *fmt, va_list ap)
{
    dfd_buf detail;

    dfd_buf_init(&detail);
    buf_vprintf(&detail, fmt, ap);
    if (st == CK_FAIL)
        r->fails++;
    if (!r->json) {
        printf("%-4s %s: %.*s\n", ck_label[st], step, (int)detail.len, detail.data);
    } else {
        dfd_buf *b = &r->checks;

        if (r->any_check)
            dfd_buf_putc(b, ',');
        r->any_check = true;
        dfd_buf_puts(b, "{\"step\":");
        put_json_string(b, step, strlen(step));
        buf_printf(b, ",\"ok\":%s,\"status\":\"%s\",\"detail\":", st == CK_FAIL ? "false" : "true",
                   ck_name[st]);
        put_json_string(b, detail.data, detail.len);
        dfd_buf_putc(b, '}');
        buf_check(b);
    }
    dfd_buf_free(&detail);
}

static void
check(report *r, ck_status st, const char *step, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vcheck(r, st, step, fmt, ap);
    va_end(ap);
}

/* Reports that the input is not well-formed; returns false so callers can `return bad(...)`. */
static bool
bad(report *r, const char *step, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vcheck(r, CK_FAIL, step, fmt, ap);
    va_end(ap);
    r->malformed = true;
    return false;
}

static int
report_exit(const report *r)
{
    if (r->malformed)
        return EXIT_MALFORMED;
    return r->fails > 0 ? EXIT_FAILED : EXIT_VERIFIED;
}

static const char *
result_word(int code)
{
    return code == EXIT_VERIFIED ? "verified" : code == EXIT_FAILED ? "failed" : "malformed";
}

/*
 * Ends a verification: with --json prints the one result object (extra: more members, already
 * JSON, each starting with ','), in text mode the last line. Returns the exit status.
 */
static int
report_finish(report *r, const char *command, const dfd_buf *extra, const char *verified_text)
{
    int code = report_exit(r);

    if (r->json) {
        dfd_buf out;

        dfd_buf_init(&out);
        buf_printf(&out, "{\"ok\":%s,\"result\":\"%s\",\"exit\":%d,\"command\":\"%s\",\"checks\":[",
                   code == EXIT_VERIFIED ? "true" : "false", result_word(code), code, command);
        dfd_buf_append(&out, r->checks.data, r->checks.len);
        dfd_buf_putc(&out, ']');
        if (r->hidden > 0)
            buf_printf(&out, ",\"failures_not_shown\":%lu", r->hidden);
        if (extra != NULL && extra->len > 0)
            dfd_buf_append(&out, extra->data, extra->len);
        dfd_buf_puts(&out, "}\n");
        buf_check(&out);
        fwrite(out.data, 1, out.len, stdout);
        dfd_buf_free(&out);
    } else if (code == EXIT_VERIFIED) {
        printf("verified: %s\n", verified_text);
    } else if (code == EXIT_FAILED) {
        if (r->hidden > 0)
            printf("(%lu more failed checks not shown)\n", r->hidden);
        printf("FAILED: %lu check%s failed; do not rely on this %s\n", r->fails,
               r->fails == 1 ? "" : "s", command);
    } else {
        printf("MALFORMED: the input is not a well-formed %s; nothing was verified\n", command);
    }
    dfd_buf_free(&r->checks);
    return code;
}

/* ---- reading input ------------------------------------------------------------------------- */

/*
 * Reads all of a file ("-": standard input), at most max bytes. Returns false with a reason in
 * why when it cannot; *data is then NULL.
 */
static bool
read_all(const char *path, size_t max, char **data, size_t *len, char *why, size_t whylen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    dfd_buf b;
    bool ok = true;

    *data = NULL;
    *len = 0;
    if (f == NULL) {
        snprintf(why, whylen, "cannot open %s: %s", show_c(path), strerror(errno));
        return false;
    }
    dfd_buf_init(&b);
    for (;;) {
        size_t n;

        if (!dfd_buf_reserve(&b, 65536))
            out_of_memory();
        n = fread(b.data + b.len, 1, 65536, f);
        b.len += n;
        if (b.len > max) {
            snprintf(why, whylen, "%s is larger than %zu bytes",
                     f == stdin ? "input" : show_c(path), max);
            ok = false;
            break;
        }
        if (n == 0) {
            if (ferror(f)) {
                snprintf(why, whylen, "cannot read %s: %s", f == stdin ? "input" : show_c(path),
                         strerror(errno));
                ok = false;
            }
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (!ok) {
        OPENSSL_cleanse(b.data, b.cap);
        dfd_buf_free(&b);
        return false;
    }
    if (!dfd_buf_terminate(&b))
        out_of_memory();
    *data = b.data;
    *len = b.len;
    return true;
}

/* Frees what read_all returned, wiping it first (it may have been a key). */
static void
free_secret(char *data, size_t len)
{
    if (data != NULL) {
        OPENSSL_cleanse(data, len);
        dfd_free(data);
    }
}

/*
 * Streams lines of at most LINE_MAX_BYTES bytes from a file, with one fixed buffer, so that an
 * export of any length is read in bounded memory.
 */
typedef struct line_reader {
    FILE *f;
    char *buf;
    size_t cap, start, end;
    bool eof;
    unsigned long lineno;
} line_reader;

typedef enum line_result { LINE_OK, LINE_EOF, LINE_TOO_LONG, LINE_IO_ERROR } line_result;

static line_result
read_line(line_reader *lr, const char **line, size_t *len)
{
    for (;;) {
        char *nl = memchr(lr->buf + lr->start, '\n', lr->end - lr->start);
        size_t n;

        if (nl != NULL || (lr->eof && lr->end > lr->start)) {
            size_t stop = nl != NULL ? (size_t)(nl - lr->buf) : lr->end;

            *line = lr->buf + lr->start;
            *len = stop - lr->start;
            lr->start = nl != NULL ? stop + 1 : stop;
            lr->lineno++;
            return *len > LINE_MAX_BYTES ? LINE_TOO_LONG : LINE_OK;
        }
        if (lr->eof)
            return LINE_EOF;
        if (lr->end - lr->start > LINE_MAX_BYTES) {
            lr->lineno++;
            return LINE_TOO_LONG;
        }
        /* keep the unfinished line at the front and fill the rest */
        memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
        lr->end -= lr->start;
        lr->start = 0;
        n = fread(lr->buf + lr->end, 1, lr->cap - lr->end, lr->f);
        lr->end += n;
        if (n == 0) {
            if (ferror(lr->f))
                return LINE_IO_ERROR;
            lr->eof = true;
        }
    }
}

/* ---- keys ------------------------------------------------------------------------------------ */

static const char skey_prefix[] = "PRIVATE+KEY+";

static bool
starts_with(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    return len >= n && memcmp(s, prefix, n) == 0;
}

/*
 * Key files hold one key per line as keygen writes them; blank lines and lines starting with
 * '#' are comments. Calls fn for every other line (without its line end); stops when fn
 * returns false.
 */
static void
each_key_line(const char *data, size_t len, bool (*fn)(void *ctx, const char *line, size_t n),
              void *ctx)
{
    size_t pos = 0;

    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - data) : len, n = end - pos;

        /* tolerate files written on systems with CRLF line ends */
        if (n > 0 && data[pos + n - 1] == '\r')
            n--;
        if (n > 0 && data[pos] != '#' && !fn(ctx, data + pos, n))
            return;
        pos = end + 1;
    }
}

typedef struct vkey_scan {
    const char *line;
    size_t len;
    unsigned keys, secrets;
} vkey_scan;

static bool
scan_vkey_line(void *ctx, const char *line, size_t n)
{
    vkey_scan *s = ctx;

    if (starts_with(line, n, skey_prefix)) {
        s->secrets++;
    } else {
        s->keys++;
        s->line = line;
        s->len = n;
    }
    return true;
}

/* "<name>+<key id>" of a key, for messages. */
static const char *
key_label(const dfd_vkey *k)
{
    static char label[3 * SHOW_MAX + 16];

    snprintf(label, sizeof label, "%s+%08x", show(k->name, k->name_len), (unsigned)k->id);
    return label;
}

/*
 * The --key of bundle and export: the verifier key text itself, or @FILE. A signer key is
 * refused by its prefix and never echoed: a verifier must not need, or print, the secret.
 */
static void
load_vkey(const char *arg, dfd_vkey *k)
{
    if (arg[0] == '@') {
        char *data, why[512];
        size_t len;
        vkey_scan s = {NULL, 0, 0, 0};
        bool ok;

        if (!read_all(arg + 1, KEY_FILE_MAX, &data, &len, why, sizeof why))
            usage_error("--key: %s", why);
        each_key_line(data, len, scan_vkey_line, &s);
        if (s.secrets > 0) {
            free_secret(data, len);
            usage_error("--key: %s holds a signer key (PRIVATE+KEY+...); give the verifier key",
                        show_c(arg + 1));
        }
        if (s.keys != 1) {
            free_secret(data, len);
            usage_error("--key: %s must hold exactly one verifier key line (found %u)",
                        show_c(arg + 1), s.keys);
        }
        ok = dfd_vkey_parse(s.line, s.len, k);
        free_secret(data, len);
        if (!ok)
            usage_error("--key: %s does not hold a valid verifier key "
                        "(<name>+<8 hex digits>+<base64 of 0x01 and the Ed25519 public key>)",
                        show_c(arg + 1));
        return;
    }
    if (starts_with(arg, strlen(arg), skey_prefix))
        usage_error("--key: that is a signer key (PRIVATE+KEY+...); give the verifier key");
    if (!dfd_vkey_parse(arg, strlen(arg), k))
        usage_error("--key: not a valid verifier key "
                    "(<name>+<8 hex digits>+<base64 of 0x01 and the Ed25519 public key>)");
}

/* ---- checking shapes with jansson ----------------------------------------------------------- */

/*
 * obj must be a JSON object with exactly these members: the formats are closed, and a verifier
 * that ignored an unknown member would let it carry claims nobody checked.
 */
static bool
exact_members(report *r, const char *step, const json_t *obj, const char *const names[], size_t n)
{
    const char *key;
    json_t *value;

    if (!json_is_object(obj))
        return bad(r, step, "not a JSON object");
    for (size_t i = 0; i < n; i++)
        if (json_object_get(obj, names[i]) == NULL)
            return bad(r, step, "missing member \"%s\"", names[i]);
    json_object_foreach((json_t *)obj, key, value)
    {
        bool known = false;

        (void)value;
        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(key, names[i]) == 0;
        if (!known)
            return bad(r, step, "unexpected member \"%s\"", show_c(key));
    }
    return true;
}

/* v must be the integer 1 (a 1.0 is a different JSON text and not what the format writes). */
static bool
check_v(report *r, const char *step, const json_t *obj)
{
    const json_t *v = json_object_get(obj, "v");

    if (!json_is_integer(v) || json_integer_value(v) != 1)
        return bad(r, step, "v is not the integer 1 (unsupported format version)");
    return true;
}

static bool
get_string(report *r, const char *step, const json_t *obj, const char *name, const char **s,
           size_t *len)
{
    const json_t *v = json_object_get(obj, name);

    *s = "";
    *len = 0;
    if (!json_is_string(v))
        return bad(r, step, "%s is not a string", name);
    *s = json_string_value(v);
    *len = json_string_length(v);
    return true;
}

/* 64 lower-case hex digits: receipt-format writes "hex" in lower case only. */
static bool
parse_hex_hash(const char *s, size_t len, uint8_t out[DFD_SHA256_LEN])
{
    if (len != DFD_HEX_HASH_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return dfd_hex_decode(s, len, out, DFD_SHA256_LEN);
}

/* ---- receipts -------------------------------------------------------------------------------- */

/* The hashed members of a receipt (receipt-format section 1), as read and checked. */
typedef struct header {
    char org[DFD_UUID_LEN + 1];
    int64_t seq;
    char ts[DFD_TS_LEN + 1];
    char kind[DFD_NAME_MAX + 1];
    size_t kind_len;
    uint8_t prev[DFD_SHA256_LEN];
    uint8_t hash[DFD_SHA256_LEN];
    char hash_hex[DFD_HEX_HASH_LEN + 1];
    dfd_field_digest fields[DFD_FIELDS_MAX]; /* names and digests point into the JSON */
    size_t nfields;
} header;

/* Reads and checks the formats of org, seq, ts, kind, prev, hash and fields. */
static bool
parse_header(report *r, const char *step, const json_t *obj, header *h)
{
    const char *s, *key;
    size_t len;
    const json_t *seq, *fields;
    json_t *value;
    int64_t us;

    if (!get_string(r, step, obj, "org", &s, &len))
        return false;
    if (!dfd_valid_uuid_text(s, len))
        return bad(r, step, "org is not a UUID in lower-case canonical form");
    memcpy(h->org, s, DFD_UUID_LEN + 1);

    seq = json_object_get(obj, "seq");
    if (!json_is_integer(seq) || json_integer_value(seq) < 1 || json_integer_value(seq) > MAX_SEQ)
        return bad(r, step, "seq is not an integer from 1 to 2^53 - 1");
    h->seq = (int64_t)json_integer_value(seq);

    if (!get_string(r, step, obj, "ts", &s, &len))
        return false;
    if (!dfd_parse_ts(s, len, &us))
        return bad(r, step, "ts is not a UTC time YYYY-MM-DDTHH:MM:SS.ffffffZ");
    memcpy(h->ts, s, DFD_TS_LEN + 1);

    if (!get_string(r, step, obj, "kind", &s, &len))
        return false;
    if (!dfd_valid_kind(s, len))
        return bad(r, step, "kind is not a valid kind (a.b_c, 1 to 64 bytes)");
    memcpy(h->kind, s, len + 1);
    h->kind_len = len;

    if (!get_string(r, step, obj, "prev", &s, &len))
        return false;
    if (!parse_hex_hash(s, len, h->prev))
        return bad(r, step, "prev is not 64 lower-case hex digits");
    if (!get_string(r, step, obj, "hash", &s, &len))
        return false;
    if (!parse_hex_hash(s, len, h->hash))
        return bad(r, step, "hash is not 64 lower-case hex digits");
    memcpy(h->hash_hex, s, DFD_HEX_HASH_LEN + 1);

    fields = json_object_get(obj, "fields");
    if (!json_is_object(fields))
        return bad(r, step, "fields is not an object");
    if (json_object_size(fields) > DFD_FIELDS_MAX)
        return bad(r, step, "fields has more than %d members", DFD_FIELDS_MAX);
    h->nfields = 0;
    json_object_foreach((json_t *)fields, key, value)
    {
        uint8_t digest[DFD_SHA256_LEN + 1];
        size_t klen = strlen(key), dlen;

        if (!dfd_valid_field_name(key, klen))
            return bad(r, step, "fields has an invalid field name \"%s\"", show(key, klen));
        if (!json_is_string(value) || json_string_length(value) != DFD_DIGEST_B64_LEN ||
            !dfd_b64url_decode(json_string_value(value), DFD_DIGEST_B64_LEN, digest, &dlen) ||
            dlen != DFD_SHA256_LEN)
            return bad(r, step, "fields.%s is not a digest (43 base64url characters)", key);
        h->fields[h->nfields].name = key;
        h->fields[h->nfields].name_len = klen;
        h->fields[h->nfields].digest = json_string_value(value);
        h->nfields++;
    }
    return true;
}

/* SHA-256 of the receipt body rebuilt from the header (receipt-format section 3). */
static void
header_hash(const header *h, dfd_buf *scratch, uint8_t out[DFD_SHA256_LEN])
{
    dfd_field_digest sorted[DFD_FIELDS_MAX];
    dfd_receipt_header rh;
    dfd_status st;

    memcpy(sorted, h->fields, h->nfields * sizeof sorted[0]);
    dfd_sort_field_digests(sorted, h->nfields);
    memset(&rh, 0, sizeof rh);
    rh.org = h->org;
    rh.seq = h->seq;
    rh.ts = h->ts;
    rh.kind = h->kind;
    rh.kind_len = h->kind_len;
    memcpy(rh.prev, h->prev, DFD_SHA256_LEN);
    dfd_buf_reset(scratch);
    st = dfd_receipt_body(scratch, &rh, sorted, h->nfields);
    if (st == DFD_ENOMEM)
        out_of_memory();
    if (st != DFD_OK)
        internal_error("cannot build a receipt body from checked members");
    if (!dfd_receipt_hash(scratch->data, scratch->len, out))
        internal_error("SHA-256 failed");
}

static const dfd_field_digest *
find_field(const header *h, const char *name, size_t len)
{
    for (size_t i = 0; i < h->nfields; i++)
        if (h->fields[i].name_len == len && memcmp(h->fields[i].name, name, len) == 0)
            return &h->fields[i];
    return NULL;
}

static bool
is_zero_hash(const uint8_t h[DFD_SHA256_LEN])
{
    for (int i = 0; i < DFD_SHA256_LEN; i++)
        if (h[i] != 0)
            return false;
    return true;
}

static bool
is_b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* One decoded disclosure: its text, and the name and canonical value it reveals. */
typedef struct disclosure {
    const char *text; /* the base64url string, in the JSON */
    size_t len;
    char name[DFD_NAME_MAX + 1];
    size_t name_len;
    dfd_buf decoded; /* JCS([salt, name, value]) */
    size_t value_off, value_len;
} disclosure;

/*
 * End of the JSON string literal starting at s[i] == '"' in canonical text, or 0. Canonical
 * strings hold no raw control character, so only escapes need care.
 */
static size_t
string_end(const char *s, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i;
    }
    return 0;
}

/*
 * receipt-format section 5 step 2.1 to 2.3: base64url-decode, JSON, exactly canonical, then
 * [salt, name, value] with a 22-character base64url salt and a valid field name. The text is
 * canonicalized by the core first, so the layout checked by hand afterwards is the canonical
 * one: '[', the salt string, ',', the name string, ',', one value, ']'.
 */
static bool
parse_disclosure(report *r, const char *step, disclosure *d)
{
    dfd_buf canon;
    dfd_status st;
    const char *p;
    size_t n, outlen, salt_end, name_end, mismatch;
    uint8_t salt[DFD_SALT_B64_LEN];

    dfd_buf_init(&d->decoded);
    if (!dfd_buf_reserve(&d->decoded, d->len / 4 * 3 + 3))
        out_of_memory();
    if (!dfd_b64url_decode(d->text, d->len, (uint8_t *)d->decoded.data, &outlen))
        return bad(r, step, "not unpadded base64url");
    d->decoded.len = outlen;
    p = d->decoded.data;
    n = outlen;

    dfd_buf_init(&canon);
    st = dfd_jcs_canonicalize(p, n, true, &canon);
    if (st == DFD_ENOMEM)
        out_of_memory();
    if (st != DFD_OK) {
        dfd_buf_free(&canon);
        return bad(r, step, "decoded bytes are not acceptable JSON (%s)", dfd_status_text(st));
    }
    for (mismatch = 0; mismatch < n && mismatch < canon.len; mismatch++)
        if (p[mismatch] != canon.data[mismatch])
            break;
    if (canon.len != n || mismatch != n) {
        dfd_buf_free(&canon);
        return bad(r, step,
                   "decoded JSON is not canonical (RFC 8785); first difference at byte %zu",
                   mismatch);
    }
    dfd_buf_free(&canon);

    if (n < 2 || p[0] != '[')
        return bad(r, step, "decoded JSON is not an array [salt, name, value]");
    if (n == 2)
        return bad(r, step, "decoded JSON is an empty array, not [salt, name, value]");
    if (p[1] != '"' || (salt_end = string_end(p, n, 1)) == 0)
        return bad(r, step, "the salt (element 0) is not a string");
    if (salt_end - 2 != DFD_SALT_B64_LEN)
        return bad(r, step, "the salt is not 22 base64url characters");
    for (size_t i = 2; i < salt_end; i++)
        if (!is_b64url_char(p[i]))
            return bad(r, step, "the salt is not 22 base64url characters");
    if (!dfd_b64url_decode(p + 2, DFD_SALT_B64_LEN, salt, &outlen) || outlen != DFD_SALT_LEN)
        return bad(r, step, "the salt is not 22 base64url characters of 16 bytes");
    if (p[salt_end + 1] != ',')
        return bad(r, step, "decoded array has 1 element, not 3");
    if (p[salt_end + 2] != '"' || (name_end = string_end(p, n, salt_end + 2)) == 0)
        return bad(r, step, "the name (element 1) is not a string");
    d->name_len = name_end - (salt_end + 3);
    if (!dfd_valid_field_name(p + salt_end + 3, d->name_len))
        return bad(r, step, "the name \"%s\" is not a valid field name",
                   show(p + salt_end + 3, d->name_len));
    memcpy(d->name, p + salt_end + 3, d->name_len);
    d->name[d->name_len] = '\0';
    if (p[name_end + 1] != ',')
        return bad(r, step, "decoded array has 2 elements, not 3");
    d->value_off = name_end + 2;
    d->value_len = n - 1 - d->value_off;
    /* the rest up to the final ']' must be exactly one value: "1,2" is two and is refused */
    dfd_buf_init(&canon);
    st = d->value_len == 0 ? DFD_ESYNTAX
                           : dfd_jcs_canonicalize(p + d->value_off, d->value_len, true, &canon);
    dfd_buf_free(&canon);
    if (st == DFD_ENOMEM)
        out_of_memory();
    if (st != DFD_OK)
        return bad(r, step, "decoded array has more than 3 elements");
    return true;
}

/* ---- checkpoints ----------------------------------------------------------------------------- */

/*
 * Why a note or checkpoint text was refused. dfd_status_text() words DFD_ESYNTAX as "malformed
 * JSON", which would mislead here: these texts are not JSON.
 */
static const char *
note_status_text(dfd_status st)
{
    switch (st) {
    case DFD_ESYNTAX:
        return "syntax error";
    case DFD_EUTF8:
        return "invalid UTF-8";
    case DFD_ETOOLARGE:
        return "too large";
    default:
        return dfd_status_text(st);
    }
}

/* The single signed note being looked at (about 9 KB, kept off the stack). */
static dfd_note note_storage;

/*
 * Parses a signed note holding a checkpoint body of exactly three lines (receipt-bundle
 * section 2). The body's own format is the note's, so any failure here is malformed input.
 */
static bool
parse_signed_checkpoint(report *r, const char *step, const char *text, size_t len, dfd_note *note,
                        dfd_checkpoint *cp)
{
    dfd_status st = dfd_note_parse(text, len, note);

    if (st != DFD_OK)
        return bad(r, step, "not a signed note (body, blank line, signature lines): %s",
                   note_status_text(st));
    st = dfd_checkpoint_parse(note->text, note->text_len, cp);
    if (st != DFD_OK)
        return bad(r, step,
                   "the signed text is not a checkpoint (origin, tree size, base64 root): %s",
                   note_status_text(st));
    if (cp->extensions_len > 0)
        return bad(r, step,
                   "the checkpoint has lines after the root; a defendable checkpoint "
                   "has exactly three lines");
    return true;
}

/* How a note relates to the verifier key: signed by it, not signed by it, or a bad signature. */
typedef enum sig_result { SIG_VALID, SIG_ABSENT, SIG_INVALID } sig_result;

static sig_result
note_signature(const dfd_note *note, const dfd_vkey *k)
{
    for (size_t i = 0; i < note->nsigs; i++) {
        const dfd_note_sig *s = &note->sigs[i];

        if (s->id == k->id && s->name_len == k->name_len &&
            memcmp(s->name, k->name, k->name_len) == 0)
            /* a line by this key exists, so the core's answer is about that line */
            return dfd_note_verify(note, k) ? SIG_VALID : SIG_INVALID;
    }
    return SIG_ABSENT;
}

/* "signed by a+12345678, b+9abcdef0" for messages about notes not signed by the key. */
static const char *
signers(const dfd_note *note)
{
    static dfd_buf b;

    dfd_buf_reset(&b);
    for (size_t i = 0; i < note->nsigs && i < 5; i++) {
        buf_printf(&b, "%s%s+%08x", i ? ", " : "", show(note->sigs[i].name, note->sigs[i].name_len),
                   (unsigned)note->sigs[i].id);
    }
    if (note->nsigs > 5)
        buf_printf(&b, " and %zu more", note->nsigs - 5);
    if (!dfd_buf_terminate(&b))
        out_of_memory();
    return b.data;
}

/* The origin is "<deployment>/<org>" with a non-empty deployment part. */
static bool
origin_names_org(const dfd_checkpoint *cp, const char *org)
{
    size_t n = cp->origin_len;

    return n >= DFD_UUID_LEN + 2 && cp->origin[n - DFD_UUID_LEN - 1] == '/' &&
           memcmp(cp->origin + n - DFD_UUID_LEN, org, DFD_UUID_LEN) == 0;
}

/* Standard base64 of a root, as a checkpoint writes it; text must hold 45 bytes. */
static const char *
root_b64(const uint8_t root[DFD_SHA256_LEN], char text[45])
{
    dfd_b64std_encode(root, DFD_SHA256_LEN, text);
    text[44] = '\0';
    return text;
}

/* ---- bundle ---------------------------------------------------------------------------------- */

static const char *const bundle_members[] = {"v", "receipt", "inclusion", "checkpoint"};
static const char *const projection_members[] = {"v",    "org",  "seq",    "ts",         "kind",
                                                 "prev", "hash", "fields", "disclosures"};
static const char *const inclusion_members[] = {"leaf_index", "tree_size", "hashes"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct bundle {
    json_t *root;
    header h;
    disclosure disc[DFD_FIELDS_MAX];
    size_t ndisc;
    json_int_t leaf_index, tree_size;
    dfd_hash proof[INCLUSION_MAX_HASHES];
    size_t nproof;
    bool has_checkpoint;
    dfd_note *note;
    dfd_checkpoint cp;
} bundle;

/* Section 3 of receipt-bundle.md: the shape and formats of everything, before any hashing. */
static bool
parse_bundle(report *r, const char *data, size_t len, bundle *b)
{
    json_error_t err;
    const json_t *receipt, *inc, *disc, *hashes, *cp, *v;

    b->root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
    if (b->root == NULL)
        return bad(r, "input", "not a JSON document: %s (line %d, column %d)", show_c(err.text),
                   err.line, err.column);
    if (!exact_members(r, "bundle", b->root, bundle_members, COUNT(bundle_members)) ||
        !check_v(r, "bundle", b->root))
        return false;

    receipt = json_object_get(b->root, "receipt");
    if (!exact_members(r, "receipt", receipt, projection_members, COUNT(projection_members)) ||
        !check_v(r, "receipt", receipt) || !parse_header(r, "receipt", receipt, &b->h))
        return false;
    disc = json_object_get(receipt, "disclosures");
    if (!json_is_array(disc))
        return bad(r, "receipt", "disclosures is not an array");
    if (json_array_size(disc) > DFD_FIELDS_MAX)
        return bad(r, "receipt", "more than %d disclosures", DFD_FIELDS_MAX);
    for (size_t i = 0; i < json_array_size(disc); i++) {
        const json_t *d = json_array_get(disc, i);
        char step[32];

        snprintf(step, sizeof step, "disclosure %zu", i);
        if (!json_is_string(d))
            return bad(r, step, "not a string");
        b->disc[i].text = json_string_value(d);
        b->disc[i].len = json_string_length(d);
        b->ndisc = i + 1;
        if (!parse_disclosure(r, step, &b->disc[i]))
            return false;
    }

    inc = json_object_get(b->root, "inclusion");
    if (!exact_members(r, "inclusion", inc, inclusion_members, COUNT(inclusion_members)))
        return false;
    v = json_object_get(inc, "leaf_index");
    if (!json_is_integer(v))
        return bad(r, "inclusion", "leaf_index is not an integer");
    b->leaf_index = json_integer_value(v);
    v = json_object_get(inc, "tree_size");
    if (!json_is_integer(v))
        return bad(r, "inclusion", "tree_size is not an integer");
    b->tree_size = json_integer_value(v);
    hashes = json_object_get(inc, "hashes");
    if (!json_is_array(hashes))
        return bad(r, "inclusion", "hashes is not an array");
    if (json_array_size(hashes) > INCLUSION_MAX_HASHES)
        return bad(r, "inclusion", "more than %d hashes", INCLUSION_MAX_HASHES);
    for (size_t i = 0; i < json_array_size(hashes); i++) {
        const json_t *h = json_array_get(hashes, i);

        if (!json_is_string(h) ||
            !parse_hex_hash(json_string_value(h), json_string_length(h), b->proof[i]))
            return bad(r, "inclusion", "hashes[%zu] is not 64 lower-case hex digits", i);
    }
    b->nproof = json_array_size(hashes);

    cp = json_object_get(b->root, "checkpoint");
    if (json_is_null(cp)) {
        b->has_checkpoint = false;
    } else if (json_is_string(cp)) {
        b->has_checkpoint = true;
        b->note = &note_storage;
        if (!parse_signed_checkpoint(r, "checkpoint", json_string_value(cp), json_string_length(cp),
                                     b->note, &b->cp))
            return false;
    } else {
        return bad(r, "checkpoint", "neither a string (a signed note) nor null");
    }
    return true;
}

/* Appends the receipt, disclosed values and checkpoint of a verified bundle to the JSON output. */
static void
bundle_json_result(const bundle *b, const dfd_vkey *k, dfd_buf *out)
{
    char b64[45];

    dfd_buf_puts(out, ",\"receipt\":{\"org\":");
    put_json_string(out, b->h.org, DFD_UUID_LEN);
    buf_printf(out, ",\"seq\":%lld,\"ts\":", (long long)b->h.seq);
    put_json_string(out, b->h.ts, DFD_TS_LEN);
    dfd_buf_puts(out, ",\"kind\":");
    put_json_string(out, b->h.kind, b->h.kind_len);
    dfd_buf_puts(out, ",\"hash\":");
    put_json_string(out, b->h.hash_hex, DFD_HEX_HASH_LEN);
    dfd_buf_puts(out, "},\"disclosed\":{");
    for (size_t i = 0; i < b->ndisc; i++) {
        if (i)
            dfd_buf_putc(out, ',');
        put_json_string(out, b->disc[i].name, b->disc[i].name_len);
        dfd_buf_putc(out, ':');
        /* the value exactly as disclosed: canonical JSON, so it is valid JSON as it stands */
        dfd_buf_append(out, b->disc[i].decoded.data + b->disc[i].value_off, b->disc[i].value_len);
    }
    dfd_buf_puts(out, "},\"withheld\":[");
    for (size_t i = 0, n = 0; i < b->h.nfields; i++) {
        bool shown = false;

        for (size_t j = 0; j < b->ndisc && !shown; j++)
            shown = b->disc[j].name_len == b->h.fields[i].name_len &&
                    memcmp(b->disc[j].name, b->h.fields[i].name, b->disc[j].name_len) == 0;
        if (shown)
            continue;
        if (n++)
            dfd_buf_putc(out, ',');
        put_json_string(out, b->h.fields[i].name, b->h.fields[i].name_len);
    }
    dfd_buf_puts(out, "],\"checkpoint\":{\"origin\":");
    put_json_string(out, b->cp.origin, b->cp.origin_len);
    buf_printf(out,
               ",\"tree_size\":%llu,\"root\":\"%s\",\"key_name\":", (unsigned long long)b->cp.size,
               root_b64(b->cp.root, b64));
    put_json_string(out, k->name, k->name_len);
    buf_printf(out, ",\"key_id\":\"%08x\"}", (unsigned)k->id);
    buf_check(out);
}

/* Text mode: what a verified bundle says, after the checks. */
static void
bundle_text_result(const bundle *b)
{
    dfd_buf line;
    size_t withheld = 0;

    dfd_buf_init(&line);
    printf("receipt: org %s, seq %lld, kind %s, ts %s\n", b->h.org, (long long)b->h.seq,
           show(b->h.kind, b->h.kind_len), b->h.ts);
    printf("  hash %s\n", b->h.hash_hex);
    printf("disclosed fields (%zu of %zu):\n", b->ndisc, b->h.nfields);
    for (size_t i = 0; i < b->ndisc; i++) {
        dfd_buf_reset(&line);
        put_shown(&line, b->disc[i].decoded.data + b->disc[i].value_off, b->disc[i].value_len,
                  SIZE_MAX);
        printf("  %s = %.*s\n", b->disc[i].name, (int)line.len, line.data);
    }
    dfd_buf_reset(&line);
    for (size_t i = 0; i < b->h.nfields; i++) {
        bool shown = false;

        for (size_t j = 0; j < b->ndisc && !shown; j++)
            shown = b->disc[j].name_len == b->h.fields[i].name_len &&
                    memcmp(b->disc[j].name, b->h.fields[i].name, b->disc[j].name_len) == 0;
        if (!shown) {
            buf_printf(&line, "%s%.*s", withheld++ ? ", " : "", (int)b->h.fields[i].name_len,
                       b->h.fields[i].name);
        }
    }
    if (withheld > 0)
        printf("withheld fields (digest only): %.*s\n", (int)line.len, line.data);
    dfd_buf_free(&line);
}

/* Section 4 of receipt-bundle.md, after the shape: every step, in order, one line each. */
static void
verify_bundle(report *r, bundle *b, const dfd_vkey *k)
{
    header *h = &b->h;
    dfd_buf scratch;
    uint8_t computed[DFD_SHA256_LEN];
    char hex[DFD_HEX_HASH_LEN + 1];
    bool index_ok, sig_ok = false, size_ok = false;
    sig_result sig = SIG_ABSENT;

    check(r, CK_OK, "bundle",
          "well-formed: members, types and formats of receipt-bundle.md "
          "section 3 and receipt-format.md section 1");

    /* step 1: disclosures -> digests (receipt-format section 5 step 2) */
    for (size_t i = 0; i < b->ndisc; i++) {
        disclosure *d = &b->disc[i];
        const dfd_field_digest *f = find_field(h, d->name, d->name_len);
        char step[32 + DFD_NAME_MAX], digest[DFD_DIGEST_B64_LEN + 1];
        int order = i > 0 ? strcmp(b->disc[i - 1].name, d->name) : -1;

        snprintf(step, sizeof step, "disclosure %.*s", (int)d->name_len, d->name);
        if (order == 0)
            check(r, CK_FAIL, step, "disclosed twice (disclosures %zu and %zu)", i - 1, i);
        else if (order > 0)
            check(r, CK_FAIL, step, "disclosure %zu is out of name order (after %s)", i,
                  b->disc[i - 1].name);
        if (!dfd_disclosure_digest(d->text, d->len, digest))
            internal_error("SHA-256 failed");
        if (f == NULL)
            check(r, CK_FAIL, step, "disclosure %zu: digest not in fields (no field %s)", i,
                  d->name);
        else if (memcmp(f->digest, digest, DFD_DIGEST_B64_LEN) != 0)
            check(r, CK_FAIL, step, "digest %s does not match fields.%s %.*s", digest, d->name,
                  DFD_DIGEST_B64_LEN, f->digest);
        else
            check(r, CK_OK, step, "digest matches fields.%s", d->name);
        /* step 4 of receipt-format section 5: the issuer's duty, so only a warning */
        if (dfd_never_public_name(d->name, d->name_len) ||
            dfd_contains_email(d->decoded.data + d->value_off, d->value_len))
            check(r, CK_WARN, step,
                  "this field should never be public (receipt-format section 4: secret name or "
                  "an email address in the value); the issuer disclosed it anyway");
    }

    /* ... -> body -> hash (receipt-format section 5 step 3, and the seq 1 rule of section 1) */
    dfd_buf_init(&scratch);
    header_hash(h, &scratch, computed);
    dfd_buf_free(&scratch);
    dfd_hex_encode(computed, DFD_SHA256_LEN, hex);
    hex[DFD_HEX_HASH_LEN] = '\0';
    if (memcmp(computed, h->hash, DFD_SHA256_LEN) == 0)
        check(r, CK_OK, "receipt", "body hash %s matches", hex);
    else
        check(r, CK_FAIL, "receipt", "hash mismatch: the body hashes to %s, the receipt says %s",
              hex, h->hash_hex);
    if (h->seq == 1) {
        if (is_zero_hash(h->prev))
            check(r, CK_OK, "receipt", "seq 1 starts the chain (prev is 64 zeros)");
        else
            check(r, CK_FAIL, "receipt", "seq 1 but prev is not 64 zeros");
    }

    /* step 2: the leaf index */
    index_ok = b->leaf_index == h->seq - 1 && b->leaf_index >= 0 && b->leaf_index < b->tree_size;
    if (b->leaf_index != h->seq - 1)
        check(r, CK_FAIL, "inclusion", "leaf_index %lld is not seq - 1 = %lld",
              (long long)b->leaf_index, (long long)(h->seq - 1));
    else if (!(b->leaf_index >= 0 && b->leaf_index < b->tree_size))
        check(r, CK_FAIL, "inclusion", "leaf_index %lld is not in a tree of %lld leaves",
              (long long)b->leaf_index, (long long)b->tree_size);
    else
        check(r, CK_OK, "inclusion", "leaf_index %lld is seq - 1, within the tree of %lld",
              (long long)b->leaf_index, (long long)b->tree_size);

    /* step 3: the signed checkpoint */
    if (!b->has_checkpoint) {
        check(r, CK_FAIL, "checkpoint",
              "null: no signed checkpoint covers this receipt yet, so there is no signed root "
              "to check it against");
    } else {
        sig = note_signature(b->note, k);
        sig_ok = sig == SIG_VALID;
        if (sig == SIG_VALID)
            check(r, CK_OK, "checkpoint", "signed by %s", key_label(k));
        else if (sig == SIG_INVALID)
            check(r, CK_FAIL, "checkpoint", "signature does not verify with key %s", key_label(k));
        else
            check(r, CK_FAIL, "checkpoint", "not signed by key %s (signed by %s)", key_label(k),
                  signers(b->note));
        if (origin_names_org(&b->cp, h->org))
            check(r, CK_OK, "checkpoint", "origin %s names the receipt's organization",
                  show(b->cp.origin, b->cp.origin_len));
        else
            check(r, CK_FAIL, "checkpoint", "origin %s does not end in /%s",
                  show(b->cp.origin, b->cp.origin_len), h->org);
        size_ok = b->tree_size >= 0 && b->cp.size == (uint64_t)b->tree_size;
        if (size_ok)
            check(r, CK_OK, "checkpoint", "tree size %llu equals inclusion.tree_size",
                  (unsigned long long)b->cp.size);
        else
            check(r, CK_FAIL, "checkpoint", "tree size %llu but inclusion.tree_size is %lld",
                  (unsigned long long)b->cp.size, (long long)b->tree_size);
    }

    /* step 4: leaf hash of receipt.hash, up the proof, to the signed root */
    if (!b->has_checkpoint) {
        check(r, CK_SKIP, "inclusion", "no checkpoint, so no root to check the proof against");
    } else if (!sig_ok) {
        check(r, CK_SKIP, "inclusion",
              "the checkpoint is not signed by the key, so its root proves nothing");
    } else if (!size_ok || !index_ok) {
        check(r, CK_SKIP, "inclusion",
              "the proof is not for the checkpoint's tree (see the failed checks above)");
    } else {
        dfd_hash leaf;
        char b64[45];

        if (!dfd_merkle_leaf_hash(h->hash, DFD_SHA256_LEN, leaf))
            internal_error("SHA-256 failed");
        if (dfd_merkle_verify_inclusion((uint64_t)b->leaf_index, (uint64_t)b->tree_size, leaf,
                                        (const dfd_hash *)b->proof, b->nproof, b->cp.root))
            check(
                r, CK_OK, "inclusion",
                "leaf %lld in the tree of %lld (%zu proof hashes) leads to the checkpoint root %s",
                (long long)b->leaf_index, (long long)b->tree_size, b->nproof,
                root_b64(b->cp.root, b64));
        else
            check(r, CK_FAIL, "inclusion",
                  "proof does not lead to the checkpoint root (leaf %lld, tree of %lld, %zu "
                  "hashes)",
                  (long long)b->leaf_index, (long long)b->tree_size, b->nproof);
    }
}

static void
free_bundle(bundle *b)
{
    for (size_t i = 0; i < b->ndisc; i++)
        dfd_buf_free(&b->disc[i].decoded);
    if (b->root != NULL)
        json_decref(b->root);
}

static int
cmd_bundle(const char *key_arg, bool json, const char *path)
{
    static bundle b; /* large (disclosures, proof): static rather than on the stack */
    dfd_vkey k;
    report r;
    char *data, why[512];
    size_t len;
    dfd_buf extra, summary;
    int code;

    load_vkey(key_arg, &k);
    report_init(&r, json);
    memset(&b, 0, sizeof b);
    dfd_buf_init(&extra);
    dfd_buf_init(&summary);
    if (!read_all(path, BUNDLE_MAX, &data, &len, why, sizeof why)) {
        bad(&r, "input", "%s", why);
    } else if (parse_bundle(&r, data, len, &b)) {
        verify_bundle(&r, &b, &k);
        if (report_exit(&r) == EXIT_VERIFIED) {
            if (json)
                bundle_json_result(&b, &k, &extra);
            else
                bundle_text_result(&b);
            buf_printf(&summary,
                       "receipt seq %lld of org %s is in the tree of %llu receipts "
                       "signed by %s",
                       (long long)b.h.seq, b.h.org, (unsigned long long)b.cp.size, key_label(&k));
            buf_check(&summary);
        }
    }
    code = report_finish(&r, "bundle", &extra, summary.data);
    free_bundle(&b);
    dfd_free(data);
    dfd_buf_free(&extra);
    dfd_buf_free(&summary);
    return code;
}

/* ---- export ------------------------------------------------------------------------------------
 */

static const char *const export_receipt_members[] = {"fields", "hash", "kind", "org", "prev",
                                                     "seq",    "ts",   "type", "v"};
static const char *const export_checkpoint_members[] = {"note", "type"};

/* root[i]: the Merkle root of the first i receipts, for every i read so far. */
typedef struct root_list {
    dfd_hash *h;
    size_t n, cap;
} root_list;

static void
roots_push(root_list *l, const dfd_hash h)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        dfd_hash *p;

        if (cap > SIZE_MAX / sizeof(dfd_hash))
            out_of_memory();
        p = realloc(l->h, cap * sizeof(dfd_hash));
        if (p == NULL)
            out_of_memory();
        l->h = p;
        l->cap = cap;
    }
    memcpy(l->h[l->n++], h, DFD_MERKLE_HASH_LEN);
}

typedef struct export_state {
    report *r;
    const dfd_vkey *k;
    dfd_buf scratch;
    dfd_merkle_frontier tree;
    root_list roots;
    bool have_org;
    char org[DFD_UUID_LEN + 1];
    int64_t expect_seq;                /* the seq the next receipt must have */
    uint8_t last_hash[DFD_SHA256_LEN]; /* hash of the previous receipt line */
    unsigned long last_line;           /* its line number, 0 before the first */
    unsigned long receipt_fails, shown_receipt_fails;
    unsigned long checkpoints, verified, skipped;
    bool in_checkpoints;
    uint64_t last_cp_size, max_verified_size;
} export_state;

/* A receipt-level failure: shown for the first ones, then only counted (a long export). */
static void
receipt_fail(export_state *s, const char *step, const char *fmt, ...)
{
    va_list ap;

    s->receipt_fails++;
    if (s->shown_receipt_fails >= SHOWN_RECEIPT_FAILURES) {
        s->r->fails++;
        s->r->hidden++;
        return;
    }
    s->shown_receipt_fails++;
    va_start(ap, fmt);
    vcheck(s->r, CK_FAIL, step, fmt, ap);
    va_end(ap);
}

static bool
export_receipt(export_state *s, const json_t *obj, unsigned long lineno)
{
    report *r = s->r;
    header h;
    char step[64];
    uint8_t computed[DFD_SHA256_LEN];
    dfd_hash leaf, root;

    snprintf(step, sizeof step, "line %lu", lineno);
    if (!exact_members(r, step, obj, export_receipt_members, COUNT(export_receipt_members)) ||
        !check_v(r, step, obj) || !parse_header(r, step, obj, &h))
        return false;
    snprintf(step, sizeof step, "line %lu (seq %lld)", lineno, (long long)h.seq);

    if (s->in_checkpoints)
        receipt_fail(s, step, "a receipt after the checkpoint lines (receipts come first)");
    if (!s->have_org) {
        memcpy(s->org, h.org, sizeof s->org);
        s->have_org = true;
    } else if (memcmp(s->org, h.org, DFD_UUID_LEN) != 0) {
        receipt_fail(s, step, "org %s is not the export's organization %s", h.org, s->org);
    }
    if (h.seq != s->expect_seq)
        receipt_fail(s, step,
                     h.seq > s->expect_seq ? "missing seq %lld (found seq %lld)"
                                           : "seq out of order: expected %lld, found %lld",
                     (long long)s->expect_seq, (long long)h.seq);
    if (h.seq == 1) {
        if (!is_zero_hash(h.prev))
            receipt_fail(s, step, "seq 1 but prev is not 64 zeros");
    } else if (s->last_line == 0) {
        /* the export does not start at seq 1; reported above, nothing to link to */
    } else if (memcmp(h.prev, s->last_hash, DFD_SHA256_LEN) != 0) {
        receipt_fail(s, step, "prev link broken: prev is not the hash of the receipt on line %lu",
                     s->last_line);
    }
    header_hash(&h, &s->scratch, computed);
    if (memcmp(computed, h.hash, DFD_SHA256_LEN) != 0) {
        char hex[DFD_HEX_HASH_LEN + 1];

        dfd_hex_encode(computed, DFD_SHA256_LEN, hex);
        hex[DFD_HEX_HASH_LEN] = '\0';
        receipt_fail(s, step, "hash mismatch: the body hashes to %s, the line says %s", hex,
                     h.hash_hex);
    }
    /* resynchronize after a gap, so that one missing line is one failure, not thousands */
    s->expect_seq = h.seq < MAX_SEQ ? h.seq + 1 : MAX_SEQ;
    memcpy(s->last_hash, h.hash, DFD_SHA256_LEN);
    s->last_line = lineno;

    /* leaf i is the i-th receipt line: the tree the checkpoints were signed over */
    if (!dfd_merkle_leaf_hash(h.hash, DFD_SHA256_LEN, leaf) ||
        !dfd_merkle_frontier_append(&s->tree, leaf, NULL, NULL) ||
        !dfd_merkle_frontier_root(&s->tree, root))
        internal_error("Merkle tree update failed");
    roots_push(&s->roots, root);
    return true;
}

static bool
export_checkpoint(export_state *s, const json_t *obj, unsigned long lineno)
{
    report *r = s->r;
    char step[64];
    const char *text;
    size_t len;
    dfd_checkpoint cp;
    sig_result sig;
    uint64_t receipts = (uint64_t)s->tree.size;
    bool ok = true;
    char ours[45], theirs[45];

    snprintf(step, sizeof step, "line %lu", lineno);
    if (!exact_members(r, step, obj, export_checkpoint_members, COUNT(export_checkpoint_members)) ||
        !get_string(r, step, obj, "note", &text, &len) ||
        !parse_signed_checkpoint(r, step, text, len, &note_storage, &cp))
        return false;
    s->checkpoints++;
    s->in_checkpoints = true;
    snprintf(step, sizeof step, "checkpoint %lu (line %lu)", s->checkpoints, lineno);

    if (cp.size < s->last_cp_size) {
        check(r, CK_FAIL, step, "tree size %llu after %llu: checkpoints are not in tree-size order",
              (unsigned long long)cp.size, (unsigned long long)s->last_cp_size);
        ok = false;
    }
    s->last_cp_size = cp.size;

    sig = note_signature(&note_storage, s->k);
    if (sig == SIG_ABSENT) {
        /* another key's checkpoint (say before a key rotation): nothing to hold it to */
        s->skipped++;
        check(r, CK_SKIP, step, "tree size %llu not signed by key %s (signed by %s)",
              (unsigned long long)cp.size, key_label(s->k), signers(&note_storage));
        return true;
    }
    if (sig == SIG_INVALID) {
        check(r, CK_FAIL, step, "signature does not verify with key %s", key_label(s->k));
        return true;
    }
    if (!s->have_org) {
        check(r, CK_FAIL, step,
              "no receipt precedes it, so its origin names no known organization");
        return true;
    }
    if (!origin_names_org(&cp, s->org)) {
        check(r, CK_FAIL, step, "origin %s does not end in /%s", show(cp.origin, cp.origin_len),
              s->org);
        ok = false;
    }
    if (cp.size > receipts) {
        check(r, CK_FAIL, step, "tree size %llu but the export has only %llu receipts",
              (unsigned long long)cp.size, (unsigned long long)receipts);
        return true;
    }
    if (memcmp(s->roots.h[cp.size], cp.root, DFD_MERKLE_HASH_LEN) != 0) {
        check(r, CK_FAIL, step,
              "root does not match: the first %llu receipts have root %s, the checkpoint says %s",
              (unsigned long long)cp.size, root_b64(s->roots.h[cp.size], ours),
              root_b64(cp.root, theirs));
        return true;
    }
    if (!ok)
        return true;
    s->verified++;
    if (cp.size > s->max_verified_size)
        s->max_verified_size = cp.size;
    check(r, CK_OK, step, "signed by %s, origin %s, tree size %llu of %llu, root %s matches",
          key_label(s->k), show(cp.origin, cp.origin_len), (unsigned long long)cp.size,
          (unsigned long long)receipts, root_b64(cp.root, ours));
    return true;
}

static int
cmd_export(const char *key_arg, bool json, const char *path)
{
    static export_state s; /* the frontier and note are large: keep them off the stack */
    dfd_vkey k;
    report r;
    line_reader lr;
    FILE *f;
    dfd_buf extra, summary;
    dfd_hash empty;
    int code;
    bool stop = false;

    load_vkey(key_arg, &k);
    report_init(&r, json);
    memset(&s, 0, sizeof s);
    s.r = &r;
    s.k = &k;
    s.expect_seq = 1;
    dfd_buf_init(&s.scratch);
    dfd_merkle_frontier_init(&s.tree);
    if (!dfd_merkle_empty_root(empty))
        internal_error("SHA-256 failed");
    roots_push(&s.roots, empty);
    dfd_buf_init(&extra);
    dfd_buf_init(&summary);

    f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        bad(&r, "input", "cannot open %s: %s", show_c(path), strerror(errno));
        stop = true;
    }
    memset(&lr, 0, sizeof lr);
    lr.f = f;
    lr.cap = LINE_MAX_BYTES + 1;
    lr.buf = stop ? NULL : malloc(lr.cap);
    if (!stop && lr.buf == NULL)
        out_of_memory();
    while (!stop) {
        const char *line;
        size_t len;
        line_result lres = read_line(&lr, &line, &len);
        char step[32];
        json_t *obj;
        json_error_t err;
        const json_t *type;

        if (lres == LINE_EOF)
            break;
        snprintf(step, sizeof step, "line %lu", lr.lineno);
        if (lres == LINE_IO_ERROR) {
            bad(&r, "input", "cannot read: %s", strerror(errno));
            break;
        }
        if (lres == LINE_TOO_LONG) {
            bad(&r, step, "longer than %u bytes", LINE_MAX_BYTES);
            break;
        }
        if (len == 0 || (len == 1 && line[0] == '\r')) {
            bad(&r, step, "empty line (an export has one JSON object per line)");
            break;
        }
        obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
        if (obj == NULL) {
            bad(&r, step, "not a JSON object: %s (column %d)", show_c(err.text), err.column);
            break;
        }
        type = json_object_get(obj, "type");
        if (!json_is_object(obj) || !json_is_string(type)) {
            bad(&r, step, "not an object with a string member \"type\"");
        } else if (strcmp(json_string_value(type), "receipt") == 0) {
            stop = !export_receipt(&s, obj, lr.lineno);
        } else if (strcmp(json_string_value(type), "checkpoint") == 0) {
            stop = !export_checkpoint(&s, obj, lr.lineno);
        } else {
            bad(&r, step, "type is neither \"receipt\" nor \"checkpoint\"");
        }
        json_decref(obj);
        if (r.malformed)
            break;
    }
    if (f != NULL && f != stdin)
        fclose(f);
    free(lr.buf);

    if (!r.malformed && lr.lineno == 0)
        bad(&r, "input", "empty: no receipts and no checkpoints");
    if (!r.malformed) {
        uint64_t n = s.tree.size;

        if (n == 0)
            check(&r, CK_FAIL, "receipts", "none: the export holds no receipt");
        else if (s.receipt_fails == 0)
            check(&r, CK_OK, "receipts",
                  "%llu receipts of org %s, seq 1..%llu: every body hash, seq and prev link "
                  "checks",
                  (unsigned long long)n, s.org, (unsigned long long)n);
        else
            check(&r, CK_FAIL, "receipts", "%lu failed checks among %llu receipts", s.receipt_fails,
                  (unsigned long long)n);
        if (s.verified == 0)
            check(&r, CK_FAIL, "checkpoints",
                  "no checkpoint signed by key %s verifies (%lu checkpoints, %lu by other keys): "
                  "nothing ties this history to the key",
                  key_label(&k), s.checkpoints, s.skipped);
        else if (s.max_verified_size < n)
            check(&r, CK_WARN, "checkpoints",
                  "receipts %llu..%llu are not covered by a checkpoint signed by key %s yet",
                  (unsigned long long)s.max_verified_size + 1, (unsigned long long)n,
                  key_label(&k));
        else
            check(&r, CK_OK, "checkpoints",
                  "every receipt is covered by a checkpoint signed by key %s", key_label(&k));
    }
    if (json) {
        if (s.have_org) {
            dfd_buf_puts(&extra, ",\"org\":");
            put_json_string(&extra, s.org, DFD_UUID_LEN);
        }
        buf_printf(&extra,
                   ",\"receipts\":%llu,\"checkpoints\":{\"total\":%lu,\"verified\":%lu,"
                   "\"skipped\":%lu,\"covered_size\":%llu}",
                   (unsigned long long)s.tree.size, s.checkpoints, s.verified, s.skipped,
                   (unsigned long long)s.max_verified_size);
    }
    buf_printf(&summary,
               "export of org %s: %llu receipts; %lu of %lu checkpoints signed by %s verified "
               "(%lu by other keys skipped), covering seq 1..%llu",
               s.org, (unsigned long long)s.tree.size, s.verified, s.checkpoints, key_label(&k),
               s.skipped, (unsigned long long)s.max_verified_size);
    buf_check(&extra);
    buf_check(&summary);
    code = report_finish(&r, "export", &extra, summary.data);
    dfd_buf_free(&extra);
    dfd_buf_free(&summary);
    dfd_buf_free(&s.scratch);
    free(s.roots.h);
    return code;
}

/* ---- keygen and sign ------------------------------------------------------------------------ */

/* Writes all of buf to fd. */
static bool
write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static int
cmd_keygen(const char *name, const char *out_path)
{
    dfd_skey sk;
    dfd_buf skey_text, vkey_text;

    if (!dfd_note_valid_name(name, strlen(name)))
        usage_error("keygen: invalid key name \"%s\" (1 to %d bytes of UTF-8, no spaces, no '+')",
                    show_c(name), DFD_NOTE_NAME_MAX);
    if (!dfd_skey_generate(name, strlen(name), &sk))
        internal_error("cannot generate an Ed25519 key (OpenSSL)");
    dfd_buf_init(&skey_text);
    dfd_buf_init(&vkey_text);
    /* room for the whole text up front: no reallocation leaves a copy of the seed behind */
    if (!dfd_buf_reserve(&skey_text, 512 + 2 * DFD_NOTE_NAME_MAX) ||
        dfd_skey_format(&skey_text, &sk) != DFD_OK || !dfd_buf_putc(&skey_text, '\n') ||
        dfd_vkey_format(&vkey_text, &sk.vkey) != DFD_OK || !dfd_buf_putc(&vkey_text, '\n'))
        internal_error("cannot format the key");
    OPENSSL_cleanse(&sk, sizeof sk);

    if (out_path != NULL) {
        /* O_EXCL: never overwrite (a lost signing key cannot be recovered); 0600: secret */
        int fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

        if (fd < 0) {
            int e = errno;

            OPENSSL_cleanse(skey_text.data, skey_text.cap);
            dfd_buf_free(&skey_text);
            if (e == EEXIST)
                usage_error("keygen: %s exists; refusing to overwrite a key file",
                            show_c(out_path));
            usage_error("keygen: cannot create %s: %s", show_c(out_path), strerror(e));
        }
        if (!write_all(fd, skey_text.data, skey_text.len) || fsync(fd) != 0 || close(fd) != 0) {
            int e = errno;

            unlink(out_path);
            OPENSSL_cleanse(skey_text.data, skey_text.cap);
            fprintf(stderr, "%s: keygen: cannot write %s: %s\n", progname, show_c(out_path),
                    strerror(e));
            exit(EXIT_INTERNAL);
        }
        fwrite(vkey_text.data, 1, vkey_text.len, stdout);
    } else {
        printf("# signer key: SECRET, keep it off the database host "
               "(defendable-verify sign --key FILE)\n");
        fwrite(skey_text.data, 1, skey_text.len, stdout);
        printf("# verifier key: public (defendable-verify bundle/export --key, "
               "defendable.record_checkpoint)\n");
        fwrite(vkey_text.data, 1, vkey_text.len, stdout);
    }
    OPENSSL_cleanse(skey_text.data, skey_text.cap);
    dfd_buf_free(&skey_text);
    dfd_buf_free(&vkey_text);
    return EXIT_VERIFIED;
}

typedef struct skey_scan {
    const char *line;
    size_t len;
    unsigned secrets;
} skey_scan;

/* Verifier key lines are allowed next to the signer key (keygen without --out writes both). */
static bool
scan_skey_line(void *ctx, const char *line, size_t n)
{
    skey_scan *s = ctx;

    if (starts_with(line, n, skey_prefix)) {
        s->secrets++;
        s->line = line;
        s->len = n;
    }
    return true;
}

/* The origin of a defendable checkpoint: "<deployment>/<org uuid>". */
static bool
origin_has_org(const dfd_checkpoint *cp)
{
    size_t n = cp->origin_len;

    return n >= DFD_UUID_LEN + 2 && cp->origin[n - DFD_UUID_LEN - 1] == '/' &&
           dfd_valid_uuid_text(cp->origin + n - DFD_UUID_LEN, DFD_UUID_LEN);
}

static int
cmd_sign(const char *key_path)
{
    char *keydata, *body, why[512];
    size_t keylen, bodylen;
    skey_scan s = {NULL, 0, 0};
    dfd_skey sk;
    dfd_checkpoint cp;
    dfd_buf out;
    dfd_status st;
    struct stat sb;
    bool ok;

    if (strcmp(key_path, "-") == 0)
        usage_error("sign: --key needs a file; standard input carries the checkpoint body");
    if (!read_all(key_path, KEY_FILE_MAX, &keydata, &keylen, why, sizeof why))
        usage_error("sign: %s", why);
    /* like ssh: a secret key others can read is worth a warning, not a refusal */
    if (stat(key_path, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 077) != 0)
        fprintf(stderr, "%s: warning: %s can be read by other users (mode %04o)\n", progname,
                show_c(key_path), (unsigned)(sb.st_mode & 07777));
    each_key_line(keydata, keylen, scan_skey_line, &s);
    ok = s.secrets == 1 && dfd_skey_parse(s.line, s.len, &sk);
    free_secret(keydata, keylen);
    if (!ok) {
        /* say what is wrong without ever echoing the file: it is meant to hold a secret */
        if (s.secrets == 0)
            usage_error("sign: %s holds no signer key (a PRIVATE+KEY+... line from keygen)",
                        show_c(key_path));
        usage_error(s.secrets > 1 ? "sign: %s holds more than one signer key"
                                  : "sign: %s does not hold a valid signer key",
                    show_c(key_path));
    }

    if (!read_all("-", SIGN_INPUT_MAX, &body, &bodylen, why, sizeof why)) {
        OPENSSL_cleanse(&sk, sizeof sk);
        usage_error("sign: %s", why);
    }
    st = dfd_checkpoint_parse(body, bodylen, &cp);
    if (st == DFD_OK && cp.extensions_len > 0) {
        OPENSSL_cleanse(&sk, sizeof sk);
        if (bodylen >= 2 && body[bodylen - 1] == '\n' && body[bodylen - 2] == '\n')
            usage_error("sign: the input ends in a blank line; a checkpoint body is exactly three "
                        "lines each ending in a newline (psql -At adds one after the value)");
        usage_error("sign: the checkpoint has lines after the root; a defendable checkpoint has "
                    "exactly three lines");
    }
    if (st != DFD_OK) {
        OPENSSL_cleanse(&sk, sizeof sk);
        if (bodylen >= 2 && body[bodylen - 1] == '\n' && body[bodylen - 2] == '\n')
            usage_error("sign: the input ends in a blank line; a checkpoint body is exactly three "
                        "lines each ending in a newline (psql -At adds one after the value)");
        usage_error("sign: standard input is not a checkpoint body "
                    "(<origin>/<org>, tree size, base64 root, each line ending in a newline): %s",
                    note_status_text(st));
    }
    if (!origin_has_org(&cp)) {
        OPENSSL_cleanse(&sk, sizeof sk);
        usage_error("sign: the origin %s does not end in /<organization uuid>",
                    show(cp.origin, cp.origin_len));
    }
    dfd_buf_init(&out);
    st = dfd_note_sign(&out, body, bodylen, &sk);
    OPENSSL_cleanse(&sk, sizeof sk);
    dfd_free(body);
    if (st == DFD_ENOMEM)
        out_of_memory();
    if (st != DFD_OK)
        internal_error("cannot sign the checkpoint");
    fwrite(out.data, 1, out.len, stdout);
    dfd_buf_free(&out);
    return EXIT_VERIFIED;
}

/* ---- command line ------------------------------------------------------------------------------
 */

static const char usage_text[] =
    "defendable-verify " VERSION ": offline verifier of defendable receipt bundles and exports,\n"
    "and the tool that makes and uses the checkpoint signing key.\n"
    "\n"
    "Usage:\n"
    "  defendable-verify bundle --key VKEY [--json] [FILE|-]\n"
    "  defendable-verify export --key VKEY [--json] [FILE|-]\n"
    "  defendable-verify keygen NAME [--out FILE]\n"
    "  defendable-verify sign --key FILE < checkpoint-body\n"
    "  defendable-verify --help | --version\n"
    "\n"
    "Commands:\n"
    "  bundle  verify a receipt bundle: disclosures, body hash, inclusion proof and signed\n"
    "          checkpoint (docs/receipt-bundle.md section 4); prints one line per check, then\n"
    "          the disclosed fields\n"
    "  export  verify an organization export (JSON Lines, section 5): every receipt's hash,\n"
    "          seq 1, 2, 3... and prev link, and every checkpoint against the Merkle tree;\n"
    "          checkpoints signed only by other keys are reported as skipped\n"
    "  keygen  make an Ed25519 signer key named NAME; writes it to FILE (mode 0600, never\n"
    "          overwritten) or, without --out, to standard output with the verifier key;\n"
    "          prints the verifier key\n"
    "  sign    sign the checkpoint body on standard input (at most 64 KiB) with the signer\n"
    "          key in FILE; prints the signed note\n"
    "\n"
    "Options:\n"
    "  --key VKEY  verifier key text (<name>+<8 hex digits>+<base64>) or @FILE to read it\n"
    "  --json      print one JSON object: {\"ok\", \"result\", \"exit\", \"checks\": [{\"step\",\n"
    "              \"ok\", \"status\", \"detail\"}], ...}\n"
    "  FILE        the document to verify; standard input if absent or -\n"
    "\n"
    "Exit status:\n"
    "  0  verified (keygen, sign: done)\n"
    "  1  verification failed: the input is well-formed but a check does not pass\n"
    "  2  usage error, or the input is unreadable or malformed (not JSON, too large, a missing\n"
    "     or unexpected member, a wrong type or format)\n"
    "  3  internal error (out of memory, crypto library failure, cannot write the output)\n"
    "\n"
    "See docs/cli.md.\n";

static void
help(void)
{
    fputs(usage_text, stdout);
    exit(EXIT_VERIFIED);
}

typedef struct args {
    const char *key, *out, *positional[2];
    int npositional;
    bool json;
} args;

/* Options may come in any order after the command; "--" ends them. */
static void
parse_args(const char *cmd, int argc, char **argv, args *a, bool allow_json, bool allow_key,
           bool allow_out, int max_positional)
{
    bool options = true;

    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];

        if (options && strcmp(s, "--") == 0) {
            options = false;
        } else if (options && (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0)) {
            help();
        } else if (options && allow_json && strcmp(s, "--json") == 0) {
            a->json = true;
        } else if (options && ((allow_key && strcmp(s, "--key") == 0) ||
                               (allow_out && strcmp(s, "--out") == 0))) {
            const char **dst = strcmp(s, "--key") == 0 ? &a->key : &a->out;

            if (i + 1 >= argc)
                usage_error("%s: %s needs a value", cmd, s);
            if (*dst != NULL)
                usage_error("%s: %s given twice", cmd, s);
            *dst = argv[++i];
        } else if (options && allow_key && strncmp(s, "--key=", 6) == 0) {
            if (a->key != NULL)
                usage_error("%s: --key given twice", cmd);
            a->key = s + 6;
        } else if (options && allow_out && strncmp(s, "--out=", 6) == 0) {
            if (a->out != NULL)
                usage_error("%s: --out given twice", cmd);
            a->out = s + 6;
        } else if (options && s[0] == '-' && s[1] != '\0') {
            usage_error("%s: unknown option %s", cmd, show_c(s));
        } else {
            if (a->npositional >= max_positional)
                usage_error("%s: unexpected argument %s", cmd, show_c(s));
            a->positional[a->npositional++] = s;
        }
    }
}

int
main(int argc, char **argv)
{
    args a;
    const char *cmd;
    int code;

    /* a closed pipe is an output error (exit 3), not death by signal */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2)
        usage_error("no command given");
    cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0)
        help();
    if (strcmp(cmd, "--version") == 0) {
        printf("defendable-verify %s\n", VERSION);
        return EXIT_VERIFIED;
    }
    if (strcmp(cmd, "bundle") == 0 || strcmp(cmd, "export") == 0) {
        parse_args(cmd, argc - 2, argv + 2, &a, true, true, false, 1);
        if (a.key == NULL)
            usage_error("%s: --key VKEY is required (the deployment's verifier key)", cmd);
        code = cmd[0] == 'b' ? cmd_bundle(a.key, a.json, a.npositional ? a.positional[0] : "-")
                             : cmd_export(a.key, a.json, a.npositional ? a.positional[0] : "-");
    } else if (strcmp(cmd, "keygen") == 0) {
        parse_args(cmd, argc - 2, argv + 2, &a, false, false, true, 1);
        if (a.npositional != 1)
            usage_error("keygen: NAME is required");
        code = cmd_keygen(a.positional[0], a.out);
    } else if (strcmp(cmd, "sign") == 0) {
        parse_args(cmd, argc - 2, argv + 2, &a, false, true, false, 0);
        if (a.key == NULL)
            usage_error("sign: --key FILE is required (the signer key file)");
        code = cmd_sign(a.key);
    } else {
        usage_error("unknown command %s", show_c(cmd));
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: cannot write the output: %s\n", progname, strerror(errno));
        return EXIT_INTERNAL;
    }
    return code;
}
