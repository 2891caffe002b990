/*
 * dfd_core.h: the Postgres-free core of defendable.
 *
 * Canonical JSON (RFC 8785), receipt hashing (receipt format v1), hex and base64url, SHA-256.
 * The extension, the gateway and the offline verifier all compile these files, so there is one
 * implementation of each protocol and the three can never disagree. Nothing here includes a
 * PostgreSQL header; memory comes from a replaceable allocator so that inside a backend it is
 * palloc'd in the caller's memory context.
 */
#ifndef DFD_CORE_H
#define DFD_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Result codes shared by every core function that can fail. */
typedef enum dfd_status {
    DFD_OK = 0,
    DFD_ENOMEM,      /* allocation failed */
    DFD_ESYNTAX,     /* malformed JSON text */
    DFD_EUTF8,       /* invalid UTF-8, or a lone surrogate */
    DFD_EDUPKEY,     /* duplicate member name in a JSON object */
    DFD_EDEPTH,      /* nesting deeper than DFD_JSON_MAX_DEPTH */
    DFD_ENUMRANGE,   /* number outside the IEEE-754 double range */
    DFD_ENUMINEXACT, /* number that does not survive the double round trip */
    DFD_ETOOLARGE,   /* input larger than the caller's bound */
    DFD_EINVAL,      /* any other invalid argument */
} dfd_status;

/* Human-readable, lower-case text for a status code (for error messages). */
const char *dfd_status_text(dfd_status st);

/* ---- memory ---------------------------------------------------------------------------- */

/*
 * Allocator used by every core function. The default is malloc/realloc/free; the extension
 * installs palloc-based functions at load time. The realloc function must keep the old block
 * valid when it fails (like realloc), the PostgreSQL one never returns on failure.
 */
typedef struct dfd_allocator {
    void *(*alloc)(size_t size);
    void *(*realloc)(void *ptr, size_t size);
    void (*free)(void *ptr);
} dfd_allocator;

void dfd_set_allocator(const dfd_allocator *a);
void *dfd_alloc(size_t size);
void dfd_free(void *ptr);

/* A growable byte buffer. `failed` sticks once an allocation failed, so callers check once. */
typedef struct dfd_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
} dfd_buf;

void dfd_buf_init(dfd_buf *b);
void dfd_buf_reset(dfd_buf *b);
void dfd_buf_free(dfd_buf *b);
/* Makes room for extra more bytes and a terminator; the slow path of dfd_buf_reserve. */
bool dfd_buf_grow(dfd_buf *b, size_t extra);

/*
 * The three below are inline: the canonical body is built from hundreds of small appends per
 * receipt, and calls to them were an eighth of verify_ledger's time (docs/benchmarks.md).
 */
static inline bool
dfd_buf_reserve(dfd_buf *b, size_t extra)
{
    /* cap > len always holds once allocated: len + extra + 1 <= cap, without overflow */
    if (!b->failed && b->cap > b->len && extra < b->cap - b->len)
        return true;
    return dfd_buf_grow(b, extra);
}

static inline bool
dfd_buf_append(dfd_buf *b, const void *p, size_t n)
{
    if (!dfd_buf_reserve(b, n))
        return false;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

static inline bool
dfd_buf_putc(dfd_buf *b, char c)
{
    if (!dfd_buf_reserve(b, 1))
        return false;
    b->data[b->len++] = c;
    return true;
}

/* inline too, so that the length of a literal is known when compiling (a strlen per member name
 * of every canonical body was 2% of verify_ledger) */
static inline bool
dfd_buf_puts(dfd_buf *b, const char *s)
{
    return dfd_buf_append(b, s, strlen(s));
}
/* Ensures data[len] == '\0' without counting it in len. */
bool dfd_buf_terminate(dfd_buf *b);

/* ---- encodings ------------------------------------------------------------------------- */

/* Lower-case hex of n bytes into out (2n chars, no terminator). */
void dfd_hex_encode(const uint8_t *in, size_t n, char *out);
/* Parses exactly 2n hex digits (either case). Returns false on any other input. */
bool dfd_hex_decode(const char *in, size_t len, uint8_t *out, size_t n);

/* Length of the base64url (no padding) text of n bytes. */
size_t dfd_b64url_len(size_t n);
void dfd_b64url_encode(const uint8_t *in, size_t n, char *out);
/*
 * Decodes unpadded base64url. Refuses padding, characters outside the alphabet, a length of
 * 4k+1, and non-zero trailing bits (so every byte string has exactly one accepted text).
 * out must hold len*3/4 bytes; *outlen receives the decoded length.
 */
bool dfd_b64url_decode(const char *in, size_t len, uint8_t *out, size_t *outlen);

/* ---- UTF-8 ----------------------------------------------------------------------------- */

/*
 * Decodes one UTF-8 sequence at s (len > 0). Returns its length, or 0 when it is malformed,
 * overlong, a surrogate or above U+10FFFF. The one decoder every part of defendable uses.
 */
size_t dfd_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* ---- hashing --------------------------------------------------------------------------- */

#define DFD_SHA256_LEN 32

/* SHA-256 of one message (OpenSSL underneath). Returns false only if OpenSSL fails. */
bool dfd_sha256(const void *data, size_t len, uint8_t out[DFD_SHA256_LEN]);
/*
 * Frees this thread's cached SHA-256 objects. For programs whose threads end before the
 * process does (the gateway); a PostgreSQL backend keeps them for its lifetime.
 */
void dfd_sha256_thread_release(void);
/* Compares two byte strings of length n in time that does not depend on where they differ. */
bool dfd_ct_equal(const void *a, const void *b, size_t n);

/* ---- RFC 8785 canonical JSON ----------------------------------------------------------- */

#define DFD_JSON_MAX_DEPTH 128

/* Writes a JSON string literal (quotes included) with RFC 8785 escaping. Checks UTF-8. */
dfd_status dfd_jcs_string(dfd_buf *out, const char *s, size_t len);
/* Writes a double the ECMAScript Number.prototype.toString way (RFC 8785 section 3.2.2.3). */
dfd_status dfd_jcs_double(dfd_buf *out, double d);
/*
 * Writes a JSON number given as decimal text (JSON number grammar, or PostgreSQL numeric
 * output). The value is rounded to the nearest double and printed as above. With exact set,
 * the printed number must equal the given decimal numerically, or DFD_ENUMINEXACT is returned
 * and nothing is written: receipts never silently round a number.
 */
dfd_status dfd_jcs_decimal(dfd_buf *out, const char *dec, size_t len, bool exact);
/* Orders two UTF-8 member names by their UTF-16 code units (RFC 8785 section 3.2.3). */
int dfd_jcs_key_cmp(const char *a, size_t alen, const char *b, size_t blen);

/*
 * Canonicalizes JSON text (RFC 8259, I-JSON: no duplicate names, no lone surrogates) into
 * RFC 8785 form. Numbers are read as the nearest double, as RFC 8785 prescribes, unless
 * exact_numbers is set (then they must survive the round trip, as in receipts).
 */
dfd_status dfd_jcs_canonicalize(const char *json, size_t len, bool exact_numbers, dfd_buf *out);

/* ---- receipt format v1 ----------------------------------------------------------------- */

#define DFD_NAME_MAX 64       /* bytes in a kind or a field name */
#define DFD_FIELDS_MAX 64     /* fields in one receipt */
#define DFD_SALT_LEN 16       /* random bytes in a field salt */
#define DFD_SALT_B64_LEN 22   /* base64url characters of a salt */
#define DFD_DIGEST_B64_LEN 43 /* base64url characters of a field digest */
#define DFD_UUID_LEN 36       /* canonical text form of a UUID */
#define DFD_TS_LEN 27         /* 2026-11-22T09:22:44.123456Z */
#define DFD_HEX_HASH_LEN 64

/* kind: ^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$, 1..64 bytes. */
bool dfd_valid_kind(const char *s, size_t len);
/* field name: ^[a-z][a-z0-9_]*$, 1..64 bytes. */
bool dfd_valid_field_name(const char *s, size_t len);
/* Lower-case canonical UUID text: 8-4-4-4-12 hex digits. */
bool dfd_valid_uuid_text(const char *s, size_t len);

/* The names that are never public (receipt format section "never public"). */
bool dfd_never_public_name(const char *s, size_t len);
/* True when the text contains something shaped like an email address (local@domain.tld). */
bool dfd_contains_email(const char *s, size_t len);

/*
 * RFC 3339 UTC text with six fractional digits from microseconds since 1970-01-01T00:00:00Z.
 * Years 1..9999 only; returns false outside. out gets DFD_TS_LEN chars and a terminator.
 */
bool dfd_format_ts(int64_t unix_micros, char out[DFD_TS_LEN + 1]);
/* The inverse; accepts exactly the format above. */
bool dfd_parse_ts(const char *s, size_t len, int64_t *unix_micros);
/* v in decimal (the shortest form, "-" for negatives) into out; returns the length. */
size_t dfd_format_int64(int64_t v, char out[21]);

/*
 * Disclosure of one field: base64url(JCS([salt, name, value])). value_jcs is the value's
 * canonical JSON text, already produced by one of the functions above.
 */
dfd_status dfd_disclosure(dfd_buf *out, const char *salt_b64, const char *name, size_t name_len,
                          const char *value_jcs, size_t value_len);
/* Digest of a disclosure: base64url(SHA-256(disclosure)); out gets 43 chars + terminator. */
bool dfd_disclosure_digest(const char *disclosure, size_t len, char out[DFD_DIGEST_B64_LEN + 1]);

/* One entry of a receipt's digest map. */
typedef struct dfd_field_digest {
    const char *name;
    size_t name_len;
    const char *digest; /* DFD_DIGEST_B64_LEN characters */
} dfd_field_digest;

/* The header of a receipt as it enters the hashed body. */
typedef struct dfd_receipt_header {
    const char *org; /* DFD_UUID_LEN chars, lower case */
    int64_t seq;
    const char *ts; /* DFD_TS_LEN chars */
    const char *kind;
    size_t kind_len;
    uint8_t prev[DFD_SHA256_LEN];
} dfd_receipt_header;

/* Sorts a digest map into canonical (RFC 8785) member order. */
void dfd_sort_field_digests(dfd_field_digest *fields, size_t n);
/*
 * The exact hashed body: JCS({"v":1,"org",..,"seq",..,"ts",..,"kind",..,"prev",..,"fields":{..}}).
 * fields must already be sorted (dfd_sort_field_digests) and free of duplicate names.
 */
dfd_status dfd_receipt_body(dfd_buf *out, const dfd_receipt_header *h,
                            const dfd_field_digest *fields, size_t n);
/* hash = SHA-256(body) */
bool dfd_receipt_hash(const char *body, size_t len, uint8_t out[DFD_SHA256_LEN]);

#endif /* DFD_CORE_H */
