/*
 * sigv4.c: AWS Signature Version 4 (see sigv4.h).
 *
 * Everything is built into dfd_buf buffers and checked once at the end of each step (a failed
 * allocation sticks in the buffer). Input is validated before anything is signed, so a bad
 * endpoint, bucket or key is refused rather than signed into a URL that cannot work. The secret
 * only ever lives in one stack buffer ("AWS4" + secret), which is wiped, as are the derived keys.
 */
#include "sigv4.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
#define SECRET_MAX 256     /* bytes of a secret access key we accept (AWS's are 40) */
#define ACCESS_KEY_MAX 128 /* bytes of an access key id (AWS's are 20) */
#define SCOPE_PART_MAX 64  /* bytes of a region or a service name */
#define HOST_MAX 253       /* a DNS name; an IPv6 literal is far shorter */
#define BUCKET_MIN 3       /* S3 bucket naming rules */
#define BUCKET_MAX 63
#define METHOD_MAX 32
#define LAST_SECOND_9999 253402300799LL /* 9999-12-31T23:59:59Z: a date must have four digits */

/* ---- small helpers ---------------------------------------------------------------------- */

static bool
is_alnum(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* RFC 3986 unreserved: the only bytes SigV4 leaves unencoded (besides '/' in paths). */
static bool
is_unreserved(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

/* RFC 9110 tchar: what a header name may contain. */
static bool
is_tchar(unsigned char c)
{
    return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
is_hex_upper(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static unsigned char
ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* ASCII-only, so the result never depends on the locale. */
static bool
ascii_case_equal(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++)
        if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b))
            return false;
    return *a == *b;
}

/* True when s starts with prefix, ignoring ASCII case. */
static bool
ascii_case_prefix(const char *s, const char *prefix)
{
    for (; *prefix != '\0'; s++, prefix++)
        if (*s == '\0' || ascii_lower((unsigned char)*s) != (unsigned char)*prefix)
            return false;
    return true;
}

static bool
nonempty(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* A region or service: it becomes part of the credential scope, where '/' separates fields. */
static bool
valid_scope_part(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++)
        if (!is_alnum((unsigned char)s[n]) && s[n] != '-' && s[n] != '_')
            return false;
    return n >= 1 && n <= SCOPE_PART_MAX;
}

/* An access key id: printable ASCII without '/', which would split the credential scope. */
static bool
valid_access_key(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++)
        if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e || s[n] == '/')
            return false;
    return n >= 1 && n <= ACCESS_KEY_MAX;
}

static bool
valid_secret(const char *s)
{
    return nonempty(s) && strnlen(s, SECRET_MAX + 1) <= SECRET_MAX;
}

static bool
valid_method(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++)
        if (!is_tchar((unsigned char)s[n]))
            return false;
    return n >= 1 && n <= METHOD_MAX;
}

/* The payload hash goes on its own line of the canonical request: no whitespace or controls. */
static bool
valid_payload_hash(const char *s)
{
    if (!nonempty(s))
        return false;
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

static bool
hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len,
            uint8_t out[DFD_SHA256_LEN])
{
    static const uint8_t nothing = 0;
    unsigned int out_len = 0;

    if (key_len > INT_MAX)
        return false;
    /* OpenSSL wants a valid pointer even for an empty message */
    if (HMAC(EVP_sha256(), key, (int)key_len, len > 0 ? data : &nothing, len, out, &out_len) ==
        NULL)
        return false;
    return out_len == DFD_SHA256_LEN;
}

static void
append_hex(dfd_buf *out, const uint8_t *bytes, size_t n)
{
    char hex[2 * DFD_SHA256_LEN];

    while (n > 0) {
        size_t chunk = n < DFD_SHA256_LEN ? n : DFD_SHA256_LEN;

        dfd_hex_encode(bytes, chunk, hex);
        dfd_buf_append(out, hex, 2 * chunk);
        bytes += chunk;
        n -= chunk;
    }
}

/* "<date>/<region>/<service>/aws4_request" */
static void
append_scope(dfd_buf *out, const char *amz_date, const char *region, const char *service)
{
    dfd_buf_append(out, amz_date, 8);
    dfd_buf_putc(out, '/');
    dfd_buf_puts(out, region);
    dfd_buf_putc(out, '/');
    dfd_buf_puts(out, service);
    dfd_buf_puts(out, "/aws4_request");
}

/* ---- encoding and canonical parts ------------------------------------------------------- */

bool
gw_sigv4_uri_encode(dfd_buf *out, const char *s, size_t len, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";

    if (s == NULL && len > 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (is_unreserved(c) || (keep_slash && c == '/')) {
            dfd_buf_putc(out, (char)c);
        } else {
            char pct[3] = {'%', hex[c >> 4], hex[c & 0x0f]};

            dfd_buf_append(out, pct, sizeof pct);
        }
    }
    return !out->failed;
}

/*
 * A path S3 signs as sent must already be in the one form S3 computes from it: unreserved
 * bytes, '/', and %XX with upper-case hex. Anything else would be signed differently from how
 * the server canonicalizes it.
 */
static bool
is_canonical_encoded_path(const char *p)
{
    for (; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;

        if (c == '%') {
            if (!is_hex_upper((unsigned char)p[1]) || !is_hex_upper((unsigned char)p[2]))
                return false;
            p += 2;
        } else if (!is_unreserved(c) && c != '/') {
            return false;
        }
    }
    return true;
}

/*
 * Dot-segment removal and empty-segment collapsing for generic services, written to out:
 * "." and empty segments vanish, ".." drops the segment before it (never above the root), and
 * a trailing '/' survives only when the input ended with one (as botocore and aws-c-auth do).
 */
static void
normalize_path(dfd_buf *out, const char *p)
{
    size_t base = out->len;
    size_t plen = strlen(p);

    for (size_t i = 0; i < plen;) {
        size_t j = i;

        while (j < plen && p[j] != '/')
            j++;
        size_t seg = j - i;

        if (seg == 0 || (seg == 1 && p[i] == '.')) {
            /* nothing */
        } else if (seg == 2 && p[i] == '.' && p[i + 1] == '.') {
            /* back to the '/' that starts the last kept segment */
            while (out->len > base && out->data[out->len - 1] != '/')
                out->len--;
            if (out->len > base)
                out->len--;
        } else {
            dfd_buf_putc(out, '/');
            dfd_buf_append(out, p + i, seg);
        }
        i = j + 1;
    }
    if (out->len == base || (plen > 0 && p[plen - 1] == '/'))
        dfd_buf_putc(out, '/');
}

bool
gw_sigv4_canonical_path(dfd_buf *out, const char *path, bool normalize, bool double_encode)
{
    dfd_buf tmp;
    bool ok;

    if (path == NULL || path[0] == '\0')
        path = "/";
    if (path[0] != '/')
        return false;
    if (!double_encode && !is_canonical_encoded_path(path))
        return false;
    if (!normalize && !double_encode) {
        dfd_buf_puts(out, path);
        return !out->failed;
    }
    dfd_buf_init(&tmp);
    if (normalize)
        normalize_path(&tmp, path);
    else
        dfd_buf_puts(&tmp, path);
    if (tmp.failed)
        ok = false;
    else if (double_encode)
        ok = gw_sigv4_uri_encode(out, tmp.data, tmp.len, true);
    else
        ok = dfd_buf_append(out, tmp.data, tmp.len);
    dfd_buf_free(&tmp);
    return ok && !out->failed;
}

/*
 * One encoded name=value pair in a scratch buffer. Offsets are recorded while the buffer may
 * still move (realloc); the pointers are set once it is complete.
 */
typedef struct enc_pair {
    size_t name_off, name_len, value_off, value_len;
    const char *name, *value;
    size_t index; /* position in the input: keeps header repeats in their given order */
} enc_pair;

static int
bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int
query_pair_cmp(const void *pa, const void *pb)
{
    const enc_pair *a = pa, *b = pb;
    int c = bytes_cmp(a->name, a->name_len, b->name, b->name_len);

    return c != 0 ? c : bytes_cmp(a->value, a->value_len, b->value, b->value_len);
}

/* Sorting by name and then input position makes qsort stable for repeated headers. */
static int
header_pair_cmp(const void *pa, const void *pb)
{
    const enc_pair *a = pa, *b = pb;
    int c = bytes_cmp(a->name, a->name_len, b->name, b->name_len);

    if (c != 0)
        return c;
    return a->index < b->index ? -1 : a->index > b->index;
}

static void
pairs_fix_pointers(enc_pair *pairs, size_t n, const dfd_buf *scratch)
{
    for (size_t i = 0; i < n; i++) {
        pairs[i].name = scratch->data + pairs[i].name_off;
        pairs[i].value = scratch->data + pairs[i].value_off;
    }
}

bool
gw_sigv4_canonical_query(dfd_buf *out, const gw_sigv4_kv *q, size_t n)
{
    dfd_buf scratch;
    enc_pair *pairs;
    bool ok = false;

    if (n == 0)
        return !out->failed;
    if (q == NULL || n > SIZE_MAX / sizeof *pairs)
        return false;
    pairs = dfd_alloc(n * sizeof *pairs);
    if (pairs == NULL)
        return false;
    dfd_buf_init(&scratch);
    for (size_t i = 0; i < n; i++) {
        const char *name = q[i].name, *value = q[i].value != NULL ? q[i].value : "";

        if (name == NULL)
            goto done;
        pairs[i].name_off = scratch.len;
        gw_sigv4_uri_encode(&scratch, name, strlen(name), false);
        pairs[i].name_len = scratch.len - pairs[i].name_off;
        pairs[i].value_off = scratch.len;
        gw_sigv4_uri_encode(&scratch, value, strlen(value), false);
        pairs[i].value_len = scratch.len - pairs[i].value_off;
        pairs[i].index = i;
    }
    /* an all-empty query leaves scratch without storage; give it some so pointers are valid */
    if (!dfd_buf_terminate(&scratch))
        goto done;
    pairs_fix_pointers(pairs, n, &scratch);
    qsort(pairs, n, sizeof *pairs, query_pair_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            dfd_buf_putc(out, '&');
        dfd_buf_append(out, pairs[i].name, pairs[i].name_len);
        dfd_buf_putc(out, '=');
        dfd_buf_append(out, pairs[i].value, pairs[i].value_len);
    }
    ok = !out->failed;
done:
    dfd_buf_free(&scratch);
    dfd_free(pairs);
    return ok;
}

/* Appends a header value trimmed, with inner runs of spaces and tabs collapsed to one space. */
static bool
append_trimmed_value(dfd_buf *out, const char *v)
{
    bool pending_space = false, any = false;

    for (; *v != '\0'; v++) {
        unsigned char c = (unsigned char)*v;

        /* CR or LF would let a value forge another canonical header line */
        if (c == '\r' || c == '\n')
            return false;
        if (c == ' ' || c == '\t') {
            pending_space = any;
            continue;
        }
        if (pending_space)
            dfd_buf_putc(out, ' ');
        dfd_buf_putc(out, (char)c);
        pending_space = false;
        any = true;
    }
    return true;
}

bool
gw_sigv4_canonical_headers(dfd_buf *out, dfd_buf *signed_headers, const gw_sigv4_kv *h, size_t n)
{
    dfd_buf scratch;
    enc_pair *pairs;
    bool ok = false;

    if (h == NULL || n == 0 || n > SIZE_MAX / sizeof *pairs)
        return false;
    pairs = dfd_alloc(n * sizeof *pairs);
    if (pairs == NULL)
        return false;
    dfd_buf_init(&scratch);
    for (size_t i = 0; i < n; i++) {
        const char *name = h[i].name, *value = h[i].value != NULL ? h[i].value : "";

        if (!nonempty(name))
            goto done;
        pairs[i].name_off = scratch.len;
        for (const char *p = name; *p != '\0'; p++) {
            if (!is_tchar((unsigned char)*p))
                goto done;
            dfd_buf_putc(&scratch, (char)ascii_lower((unsigned char)*p));
        }
        pairs[i].name_len = scratch.len - pairs[i].name_off;
        pairs[i].value_off = scratch.len;
        if (!append_trimmed_value(&scratch, value))
            goto done;
        pairs[i].value_len = scratch.len - pairs[i].value_off;
        pairs[i].index = i;
    }
    if (!dfd_buf_terminate(&scratch))
        goto done;
    pairs_fix_pointers(pairs, n, &scratch);
    qsort(pairs, n, sizeof *pairs, header_pair_cmp);
    for (size_t i = 0; i < n; i++) {
        bool same_as_previous = i > 0 && bytes_cmp(pairs[i].name, pairs[i].name_len,
                                                   pairs[i - 1].name, pairs[i - 1].name_len) == 0;

        if (same_as_previous) {
            /* repeated header: one line, values joined with ',' in the order given */
            dfd_buf_putc(out, ',');
        } else {
            if (i > 0) {
                dfd_buf_putc(out, '\n');
                if (signed_headers != NULL)
                    dfd_buf_putc(signed_headers, ';');
            }
            dfd_buf_append(out, pairs[i].name, pairs[i].name_len);
            dfd_buf_putc(out, ':');
            if (signed_headers != NULL)
                dfd_buf_append(signed_headers, pairs[i].name, pairs[i].name_len);
        }
        dfd_buf_append(out, pairs[i].value, pairs[i].value_len);
    }
    dfd_buf_putc(out, '\n');
    ok = !out->failed && (signed_headers == NULL || dfd_buf_terminate(signed_headers));
done:
    dfd_buf_free(&scratch);
    dfd_free(pairs);
    return ok;
}

bool
gw_sigv4_canonical_request(dfd_buf *out, dfd_buf *signed_headers, const gw_sigv4_request *r,
                           bool normalize, bool double_encode)
{
    dfd_buf names;
    bool ok;

    if (r == NULL || !valid_method(r->method) || !valid_payload_hash(r->payload_hash))
        return false;
    dfd_buf_init(&names);
    dfd_buf_puts(out, r->method);
    dfd_buf_putc(out, '\n');
    ok = gw_sigv4_canonical_path(out, r->path, normalize, double_encode);
    dfd_buf_putc(out, '\n');
    ok = ok && gw_sigv4_canonical_query(out, r->query, r->n_query);
    dfd_buf_putc(out, '\n');
    ok = ok && gw_sigv4_canonical_headers(out, &names, r->headers, r->n_headers);
    /* the header block ends with its own '\n'; this one leaves the blank line AWS specifies */
    dfd_buf_putc(out, '\n');
    dfd_buf_append(out, names.data, names.len);
    dfd_buf_putc(out, '\n');
    dfd_buf_puts(out, r->payload_hash);
    ok = ok && dfd_buf_terminate(out) && !names.failed;
    if (ok && signed_headers != NULL)
        ok = dfd_buf_append(signed_headers, names.data, names.len) &&
             dfd_buf_terminate(signed_headers);
    dfd_buf_free(&names);
    return ok;
}

/* ---- date, string to sign, keys, signature ---------------------------------------------- */

bool
gw_sigv4_amz_date(int64_t now, char out[GW_SIGV4_AMZ_DATE_LEN + 1])
{
    time_t t;
    struct tm tm;

    if (now < 0 || now > LAST_SECOND_9999)
        return false;
    t = (time_t)now;
    if (gmtime_r(&t, &tm) == NULL)
        return false;
    return snprintf(out, GW_SIGV4_AMZ_DATE_LEN + 1, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                    tm.tm_sec) == GW_SIGV4_AMZ_DATE_LEN;
}

bool
gw_sigv4_string_to_sign(dfd_buf *out, const char *amz_date, const char *region, const char *service,
                        const char *canonical_request, size_t len)
{
    uint8_t digest[DFD_SHA256_LEN];

    if (amz_date == NULL || strlen(amz_date) != GW_SIGV4_AMZ_DATE_LEN ||
        !valid_scope_part(region) || !valid_scope_part(service) ||
        (canonical_request == NULL && len > 0))
        return false;
    if (!dfd_sha256(len > 0 ? canonical_request : "", len, digest))
        return false;
    dfd_buf_puts(out, ALGORITHM "\n");
    dfd_buf_puts(out, amz_date);
    dfd_buf_putc(out, '\n');
    append_scope(out, amz_date, region, service);
    dfd_buf_putc(out, '\n');
    append_hex(out, digest, sizeof digest);
    return dfd_buf_terminate(out);
}

bool
gw_sigv4_signing_key_steps(const char *secret, const char *date, const char *region,
                           const char *service, uint8_t steps[4][DFD_SHA256_LEN])
{
    uint8_t k_secret[4 + SECRET_MAX];
    size_t secret_len;
    bool ok;

    if (!valid_secret(secret) || date == NULL || strlen(date) != 8 || !valid_scope_part(region) ||
        !valid_scope_part(service))
        return false;
    secret_len = strlen(secret);
    memcpy(k_secret, "AWS4", 4);
    memcpy(k_secret + 4, secret, secret_len);
    ok = hmac_sha256(k_secret, 4 + secret_len, date, 8, steps[0]) &&
         hmac_sha256(steps[0], DFD_SHA256_LEN, region, strlen(region), steps[1]) &&
         hmac_sha256(steps[1], DFD_SHA256_LEN, service, strlen(service), steps[2]) &&
         hmac_sha256(steps[2], DFD_SHA256_LEN, "aws4_request", 12, steps[3]);
    OPENSSL_cleanse(k_secret, sizeof k_secret);
    if (!ok)
        OPENSSL_cleanse(steps, 4 * DFD_SHA256_LEN);
    return ok;
}

bool
gw_sigv4_signing_key(const char *secret, const char *date, const char *region, const char *service,
                     uint8_t key[DFD_SHA256_LEN])
{
    uint8_t steps[4][DFD_SHA256_LEN];
    bool ok = gw_sigv4_signing_key_steps(secret, date, region, service, steps);

    if (ok)
        memcpy(key, steps[3], DFD_SHA256_LEN);
    OPENSSL_cleanse(steps, sizeof steps);
    return ok;
}

bool
gw_sigv4_signature(const uint8_t key[DFD_SHA256_LEN], const char *sts, size_t len,
                   char out[GW_SIGV4_SIG_HEX_LEN + 1])
{
    uint8_t mac[DFD_SHA256_LEN];

    if (sts == NULL || !hmac_sha256(key, DFD_SHA256_LEN, sts, len, mac))
        return false;
    dfd_hex_encode(mac, sizeof mac, out);
    out[GW_SIGV4_SIG_HEX_LEN] = '\0';
    return true;
}

/* ---- signing ---------------------------------------------------------------------------- */

void
gw_sigv4_result_init(gw_sigv4_result *r)
{
    memset(r->amz_date, 0, sizeof r->amz_date);
    memset(r->signature, 0, sizeof r->signature);
    dfd_buf_init(&r->canonical_request);
    dfd_buf_init(&r->string_to_sign);
    dfd_buf_init(&r->signed_headers);
    dfd_buf_init(&r->authorization);
    dfd_buf_init(&r->query);
}

void
gw_sigv4_result_free(gw_sigv4_result *r)
{
    dfd_buf_free(&r->canonical_request);
    dfd_buf_free(&r->string_to_sign);
    dfd_buf_free(&r->signed_headers);
    dfd_buf_free(&r->authorization);
    dfd_buf_free(&r->query);
    gw_sigv4_result_init(r);
}

/* Empties the result so a reused one never mixes two signings. */
static void
result_reset(gw_sigv4_result *r)
{
    memset(r->amz_date, 0, sizeof r->amz_date);
    memset(r->signature, 0, sizeof r->signature);
    dfd_buf_reset(&r->canonical_request);
    dfd_buf_reset(&r->string_to_sign);
    dfd_buf_reset(&r->signed_headers);
    dfd_buf_reset(&r->authorization);
    dfd_buf_reset(&r->query);
}

static bool
valid_config(const gw_sigv4_config *c)
{
    return c != NULL && valid_access_key(c->access_key_id) && valid_secret(c->secret_access_key) &&
           valid_scope_part(c->region) && valid_scope_part(c->service) &&
           (c->session_token == NULL || nonempty(c->session_token));
}

static const gw_sigv4_kv *
find_header(const gw_sigv4_kv *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].name != NULL && ascii_case_equal(h[i].name, name))
            return &h[i];
    return NULL;
}

/* The common tail: string to sign from the canonical request, then the signature. */
static bool
finish_signature(const gw_sigv4_config *c, gw_sigv4_result *out)
{
    uint8_t key[DFD_SHA256_LEN];
    char date[9];
    bool ok;

    /* the key is derived from the day alone: the first 8 characters of the amz date */
    memcpy(date, out->amz_date, 8);
    date[8] = '\0';
    if (out->canonical_request.failed ||
        !gw_sigv4_string_to_sign(&out->string_to_sign, out->amz_date, c->region, c->service,
                                 out->canonical_request.data, out->canonical_request.len))
        return false;
    ok = gw_sigv4_signing_key(c->secret_access_key, date, c->region, c->service, key) &&
         gw_sigv4_signature(key, out->string_to_sign.data, out->string_to_sign.len, out->signature);
    OPENSSL_cleanse(key, sizeof key);
    return ok;
}

bool
gw_sigv4_sign_headers(const gw_sigv4_config *c, const gw_sigv4_request *r, gw_sigv4_result *out)
{
    gw_sigv4_kv *headers;
    gw_sigv4_request req;
    const gw_sigv4_kv *date;
    size_t n;
    bool ok = false;

    if (out == NULL)
        return false;
    result_reset(out);
    if (!valid_config(c) || r == NULL || r->headers == NULL ||
        find_header(r->headers, r->n_headers, "host") == NULL ||
        !gw_sigv4_amz_date(c->now, out->amz_date) || r->n_headers > SIZE_MAX / 2)
        return false;
    date = find_header(r->headers, r->n_headers, "x-amz-date");
    /* a date header that disagrees with the signing time would make a signature AWS rejects */
    if (date != NULL && (date->value == NULL || strcmp(date->value, out->amz_date) != 0))
        return false;

    /* the caller's headers plus at most three the signer adds */
    headers = dfd_alloc((r->n_headers + 3) * sizeof *headers);
    if (headers == NULL)
        return false;
    memcpy(headers, r->headers, r->n_headers * sizeof *headers);
    n = r->n_headers;
    if (date == NULL)
        headers[n++] = (gw_sigv4_kv){"X-Amz-Date", out->amz_date};
    if (c->session_token != NULL && !c->session_token_unsigned &&
        find_header(r->headers, r->n_headers, "x-amz-security-token") == NULL)
        headers[n++] = (gw_sigv4_kv){"X-Amz-Security-Token", c->session_token};
    if (c->content_sha256_header &&
        find_header(r->headers, r->n_headers, "x-amz-content-sha256") == NULL)
        headers[n++] = (gw_sigv4_kv){"X-Amz-Content-Sha256", r->payload_hash};
    req = *r;
    req.headers = headers;
    req.n_headers = n;

    if (!gw_sigv4_canonical_request(&out->canonical_request, &out->signed_headers, &req,
                                    c->normalize_path, c->double_encode_path) ||
        !finish_signature(c, out))
        goto done;
    dfd_buf_puts(&out->authorization, ALGORITHM " Credential=");
    dfd_buf_puts(&out->authorization, c->access_key_id);
    dfd_buf_putc(&out->authorization, '/');
    append_scope(&out->authorization, out->amz_date, c->region, c->service);
    dfd_buf_puts(&out->authorization, ", SignedHeaders=");
    dfd_buf_append(&out->authorization, out->signed_headers.data, out->signed_headers.len);
    dfd_buf_puts(&out->authorization, ", Signature=");
    dfd_buf_puts(&out->authorization, out->signature);
    ok = dfd_buf_terminate(&out->authorization);
done:
    dfd_free(headers);
    if (!ok) /* no half-built output for a caller that ignores the result */
        result_reset(out);
    return ok;
}

/* The query parameters a presign adds itself; a request must not bring its own. */
static const char *const reserved_params[] = {
    "X-Amz-Algorithm",     "X-Amz-Credential",     "X-Amz-Date",      "X-Amz-Expires",
    "X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature",
};

bool
gw_sigv4_presign(const gw_sigv4_config *c, const gw_sigv4_request *r, int expires,
                 gw_sigv4_result *out)
{
    gw_sigv4_kv *query = NULL;
    gw_sigv4_request req;
    dfd_buf scratch, credential;
    char expires_text[16];
    size_t n;
    bool ok = false;

    if (out == NULL)
        return false;
    result_reset(out);
    if (!valid_config(c) || r == NULL || r->headers == NULL ||
        find_header(r->headers, r->n_headers, "host") == NULL || expires < 1 ||
        expires > GW_SIGV4_EXPIRES_MAX || !gw_sigv4_amz_date(c->now, out->amz_date) ||
        (r->query == NULL && r->n_query > 0) || r->n_query > SIZE_MAX / 2)
        return false;
    for (size_t i = 0; i < r->n_query; i++)
        for (size_t k = 0; k < sizeof reserved_params / sizeof reserved_params[0]; k++)
            if (r->query[i].name != NULL && ascii_case_equal(r->query[i].name, reserved_params[k]))
                return false;
    snprintf(expires_text, sizeof expires_text, "%d", expires);

    dfd_buf_init(&scratch);
    dfd_buf_init(&credential);
    /* the signed header list is itself a signed parameter, so it is computed first */
    if (!gw_sigv4_canonical_headers(&scratch, &out->signed_headers, r->headers, r->n_headers))
        goto done;
    dfd_buf_puts(&credential, c->access_key_id);
    dfd_buf_putc(&credential, '/');
    append_scope(&credential, out->amz_date, c->region, c->service);
    if (!dfd_buf_terminate(&credential))
        goto done;

    query = dfd_alloc((r->n_query + 6) * sizeof *query);
    if (query == NULL)
        goto done;
    if (r->n_query > 0)
        memcpy(query, r->query, r->n_query * sizeof *query);
    n = r->n_query;
    query[n++] = (gw_sigv4_kv){"X-Amz-Algorithm", ALGORITHM};
    query[n++] = (gw_sigv4_kv){"X-Amz-Credential", credential.data};
    query[n++] = (gw_sigv4_kv){"X-Amz-Date", out->amz_date};
    query[n++] = (gw_sigv4_kv){"X-Amz-Expires", expires_text};
    query[n++] = (gw_sigv4_kv){"X-Amz-SignedHeaders", out->signed_headers.data};
    if (c->session_token != NULL && !c->session_token_unsigned)
        query[n++] = (gw_sigv4_kv){"X-Amz-Security-Token", c->session_token};
    req = *r;
    req.query = query;
    req.n_query = n;

    if (!gw_sigv4_canonical_request(&out->canonical_request, NULL, &req, c->normalize_path,
                                    c->double_encode_path) ||
        !finish_signature(c, out))
        goto done;
    /* the URL carries the canonical query itself, so what is sent is exactly what was signed */
    if (!gw_sigv4_canonical_query(&out->query, query, n))
        goto done;
    if (c->session_token != NULL && c->session_token_unsigned) {
        dfd_buf_puts(&out->query, "&X-Amz-Security-Token=");
        gw_sigv4_uri_encode(&out->query, c->session_token, strlen(c->session_token), false);
    }
    dfd_buf_puts(&out->query, "&X-Amz-Signature=");
    dfd_buf_puts(&out->query, out->signature);
    ok = dfd_buf_terminate(&out->query);
done:
    dfd_free(query);
    dfd_buf_free(&scratch);
    dfd_buf_free(&credential);
    if (!ok)
        result_reset(out);
    return ok;
}

/* ---- presigned S3 GET ------------------------------------------------------------------- */

typedef struct endpoint {
    bool https;
    bool ip_literal;
    char host[HOST_MAX + 3]; /* lower case; brackets kept around an IPv6 literal */
    unsigned port;           /* 0: the scheme's default, left out of URL and host header */
} endpoint;

static bool
parse_port(const char *p, size_t len, unsigned *port)
{
    unsigned v = 0;

    if (len == 0 || len > 5)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v < 1 || v > 65535)
        return false;
    *port = v;
    return true;
}

/* A DNS name: labels of [A-Za-z0-9-], 1..63 bytes each, no empty label. */
static bool
valid_dns_name(const char *s, size_t len, bool *all_numeric)
{
    size_t label = 0;

    *all_numeric = true;
    if (len == 0 || len > HOST_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!is_alnum(c) && c != '-')
            return false;
        if (c < '0' || c > '9')
            *all_numeric = false;
        if (++label > 63)
            return false;
    }
    return label > 0;
}

static bool
parse_endpoint(const char *s, endpoint *e)
{
    const char *auth, *host_end;
    size_t auth_len, host_len;
    unsigned default_port;

    memset(e, 0, sizeof *e);
    if (s == NULL)
        return false;
    if (ascii_case_prefix(s, "https://")) {
        e->https = true;
        auth = s + 8;
        default_port = 443;
    } else if (ascii_case_prefix(s, "http://")) {
        auth = s + 7;
        default_port = 80;
    } else {
        return false;
    }
    auth_len = strcspn(auth, "/?#");
    /* nothing may follow the authority but one '/', since the bucket and key form the path */
    if (auth[auth_len] != '\0' && !(auth[auth_len] == '/' && auth[auth_len + 1] == '\0'))
        return false;
    if (auth_len == 0)
        return false;

    if (auth[0] == '[') {
        const char *close = memchr(auth, ']', auth_len);
        bool colon = false;

        if (close == NULL || close == auth + 1)
            return false;
        for (const char *p = auth + 1; p < close; p++) {
            unsigned char c = (unsigned char)*p;

            if (c == ':')
                colon = true;
            else if (!(c >= '0' && c <= '9') && !(ascii_lower(c) >= 'a' && ascii_lower(c) <= 'f') &&
                     c != '.')
                return false;
        }
        if (!colon)
            return false;
        host_end = close + 1;
        e->ip_literal = true;
    } else {
        bool numeric;

        host_end = memchr(auth, ':', auth_len);
        if (host_end == NULL)
            host_end = auth + auth_len;
        if (!valid_dns_name(auth, (size_t)(host_end - auth), &numeric))
            return false;
        e->ip_literal = numeric;
    }
    host_len = (size_t)(host_end - auth);
    if (host_len >= sizeof e->host)
        return false;
    for (size_t i = 0; i < host_len; i++)
        e->host[i] = (char)ascii_lower((unsigned char)auth[i]);
    e->host[host_len] = '\0';

    if (host_end < auth + auth_len) {
        if (*host_end != ':' ||
            !parse_port(host_end + 1, (size_t)(auth + auth_len - host_end - 1), &e->port))
            return false;
        if (e->port == default_port)
            e->port = 0;
    }
    return true;
}

/* S3 bucket naming rules (the subset that matters here): 3..63 of [a-z0-9.-], alphanumeric at
 * both ends, no "..". Anything else could not be a DNS label in virtual-host style anyway. */
static bool
valid_bucket(const char *b)
{
    size_t n;

    if (b == NULL)
        return false;
    n = strlen(b);
    if (n < BUCKET_MIN || n > BUCKET_MAX || !is_alnum((unsigned char)b[0]) ||
        !is_alnum((unsigned char)b[n - 1]) || strstr(b, "..") != NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(b[i] >= 'a' && b[i] <= 'z') && !(b[i] >= '0' && b[i] <= '9') && b[i] != '.' &&
            b[i] != '-')
            return false;
    return true;
}

/*
 * An object key: 1..1024 bytes, and no "." or ".." segment. S3 would sign such a path as is,
 * but curl, browsers and most HTTP libraries remove dot segments before sending, so the server
 * would see another path than the one signed (or another object).
 */
static bool
valid_object_key(const char *k)
{
    size_t n;

    if (k == NULL)
        return false;
    n = strnlen(k, GW_SIGV4_KEY_MAX + 1);
    if (n == 0 || n > GW_SIGV4_KEY_MAX)
        return false;
    for (size_t i = 0; i <= n;) {
        size_t j = i;

        while (j < n && k[j] != '/')
            j++;
        if ((j - i == 1 && k[i] == '.') || (j - i == 2 && k[i] == '.' && k[i + 1] == '.'))
            return false;
        i = j + 1;
    }
    return true;
}

char *
gw_s3_presign_get_detail(const gw_s3_target *t, const char *access_key_id,
                         const char *secret_access_key, const char *object_key, int expires,
                         int64_t now, gw_sigv4_result *detail)
{
    endpoint ep;
    dfd_buf host, path, url;
    gw_sigv4_result local;
    gw_sigv4_result *res = detail != NULL ? detail : &local;
    gw_sigv4_kv header;
    gw_sigv4_request req;
    gw_sigv4_config cfg;
    char *result = NULL;

    if (detail == NULL)
        gw_sigv4_result_init(&local);
    else
        result_reset(detail);
    if (t == NULL || !parse_endpoint(t->endpoint, &ep) || !valid_bucket(t->bucket) ||
        !valid_scope_part(t->region) || !valid_access_key(access_key_id) ||
        !valid_secret(secret_access_key) || !valid_object_key(object_key) || expires < 1 ||
        expires > GW_SIGV4_EXPIRES_MAX || now < 0 || now > LAST_SECOND_9999 ||
        (t->virtual_host && ep.ip_literal))
        goto free_result;

    dfd_buf_init(&host);
    dfd_buf_init(&path);
    dfd_buf_init(&url);
    if (t->virtual_host) {
        dfd_buf_puts(&host, t->bucket);
        dfd_buf_putc(&host, '.');
    }
    dfd_buf_puts(&host, ep.host);
    if (ep.port != 0) {
        char port[16]; /* room for any unsigned, though ports stop at 65535 */

        snprintf(port, sizeof port, ":%u", ep.port);
        dfd_buf_puts(&host, port);
    }
    dfd_buf_putc(&path, '/');
    if (!t->virtual_host) {
        dfd_buf_puts(&path, t->bucket);
        dfd_buf_putc(&path, '/');
    }
    /* S3 encodes the key exactly once and keeps '/' as a separator; no normalization */
    gw_sigv4_uri_encode(&path, object_key, strlen(object_key), true);
    if (!dfd_buf_terminate(&host) || !dfd_buf_terminate(&path))
        goto done;

    header = (gw_sigv4_kv){"host", host.data};
    req = (gw_sigv4_request){.method = "GET",
                             .path = path.data,
                             .headers = &header,
                             .n_headers = 1,
                             .payload_hash = GW_SIGV4_UNSIGNED_PAYLOAD};
    cfg = (gw_sigv4_config){.access_key_id = access_key_id,
                            .secret_access_key = secret_access_key,
                            .region = t->region,
                            .service = "s3",
                            .now = now};
    if (!gw_sigv4_presign(&cfg, &req, expires, res))
        goto done;

    dfd_buf_puts(&url, ep.https ? "https://" : "http://");
    dfd_buf_append(&url, host.data, host.len);
    dfd_buf_append(&url, path.data, path.len);
    dfd_buf_putc(&url, '?');
    dfd_buf_append(&url, res->query.data, res->query.len);
    if (url.failed)
        goto done;
    /* a plain malloc'd copy: the caller frees it with free() whatever the core allocator is */
    result = malloc(url.len + 1);
    if (result != NULL) {
        memcpy(result, url.data, url.len);
        result[url.len] = '\0';
    }
done:
    dfd_buf_free(&host);
    dfd_buf_free(&path);
    dfd_buf_free(&url);
free_result:
    if (detail == NULL)
        gw_sigv4_result_free(&local);
    return result;
}

char *
gw_s3_presign_get(const gw_s3_target *t, const char *access_key_id, const char *secret_access_key,
                  const char *object_key, int expires, int64_t now)
{
    return gw_s3_presign_get_detail(t, access_key_id, secret_access_key, object_key, expires, now,
                                    NULL);
}
