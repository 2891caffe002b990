/*
 * dfd_jcs.c: RFC 8785 JSON Canonicalization Scheme.
 *
 * Three pieces are protocol, and everything canonical in defendable goes through them: string
 * escaping, ECMAScript number printing and UTF-16 member ordering. The parser at the end turns
 * JSON text into a small tree so that the CLI and the tests can canonicalize any document; the
 * extension walks jsonb instead and calls the same three pieces.
 */
#include "dfd_core.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ----------------------------------------------------------------------------- */

size_t
dfd_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        if (len < 2 || (s[1] & 0xc0) != 0x80)
            return 0;
        *cp = (uint32_t)(c & 0x1f) << 6 | (s[1] & 0x3f);
        return 2;
    }
    if (c >= 0xe0 && c <= 0xef) {
        uint32_t v;

        if (len < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        v = (uint32_t)(c & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
        if (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))
            return 0;
        *cp = v;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        uint32_t v;

        if (len < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        v = (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
            (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
        if (v < 0x10000 || v > 0x10ffff)
            return 0;
        *cp = v;
        return 4;
    }
    return 0;
}

static bool
utf8_encode(dfd_buf *out, uint32_t cp)
{
    char tmp[4];
    size_t n;

    if (cp < 0x80) {
        tmp[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        tmp[0] = (char)(0xc0 | cp >> 6);
        tmp[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        tmp[0] = (char)(0xe0 | cp >> 12);
        tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        tmp[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        tmp[0] = (char)(0xf0 | cp >> 18);
        tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        tmp[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return dfd_buf_append(out, tmp, n);
}

/* ---- strings --------------------------------------------------------------------------- */

/*
 * Whether any of eight bytes needs more than copying: a control character, '"', '\\', or a byte
 * of a multi-byte UTF-8 sequence (to be checked). The strings of a receipt's body (digests, hex
 * hashes, uuids, timestamps, names) are plain ASCII, and looking at them one byte at a time was a
 * sixth of verify_ledger's time (docs/benchmarks.md). Each test is exact for "some byte": a byte
 * below 0x20 borrows in v - 0x20... and keeps its top bit clear in ~v (bytes at or above 0x80
 * are caught by v's own top bits), and a byte equal to c is a zero byte of v ^ c...
 */
static inline bool
word_needs_care(uint64_t v)
{
    const uint64_t ones = 0x0101010101010101u, tops = 0x8080808080808080u;
    uint64_t quote = v ^ (ones * '"'), backslash = v ^ (ones * '\\');

    return ((v | ((v - ones * 0x20) & ~v) | ((quote - ones) & ~quote) |
             ((backslash - ones) & ~backslash)) &
            tops) != 0;
}

dfd_status
dfd_jcs_string(dfd_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;

    if (!dfd_buf_reserve(out, len + 2))
        return DFD_ENOMEM;
    dfd_buf_putc(out, '"');
    while (i < len) {
        unsigned char c;
        const char *esc = NULL;
        char ubuf[6];
        uint64_t word;

        if (len - i >= 8) {
            memcpy(&word, u + i, 8);
            if (!word_needs_care(word)) {
                i += 8;
                run += 8;
                continue;
            }
        }
        c = u[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            uint32_t cp;
            size_t n = c < 0x80 ? 1 : dfd_utf8_decode(u + i, len - i, &cp);

            if (n == 0)
                return DFD_EUTF8;
            i += n;
            run += n;
            continue;
        }
        /* flush the run of characters that need no escaping */
        dfd_buf_append(out, s + i - run, run);
        run = 0;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            memcpy(ubuf, "\\u00", 4);
            ubuf[4] = hex[c >> 4];
            ubuf[5] = hex[c & 15];
            dfd_buf_append(out, ubuf, 6);
            break;
        }
        if (esc != NULL)
            dfd_buf_append(out, esc, 2);
        i++;
    }
    dfd_buf_append(out, s + i - run, run);
    dfd_buf_putc(out, '"');
    return out->failed ? DFD_ENOMEM : DFD_OK;
}

/* ---- numbers --------------------------------------------------------------------------- */

/*
 * A decimal in normal form: value = sign * 0.D1D2...Dk * 10^exp, with D1 != 0 and Dk != 0, or
 * zero (k == 0). Digits point into caller storage.
 */
typedef struct decimal {
    bool negative;
    const char *digits; /* may contain one '.' to skip, see below */
    size_t ndigits;     /* significant digits, '.' not counted */
    long exp;
} decimal;

/*
 * Parses JSON number grammar (also PostgreSQL numeric output, which is a subset) into normal
 * form without converting it: exactness checks must compare the decimal as written.
 */
static bool
decimal_parse(const char *s, size_t len, decimal *d, char *digitbuf)
{
    size_t i = 0, nd = 0;
    long point = 0, expval = 0;
    bool seen_point = false, nonzero = false;
    long leading_zero_frac = 0;

    d->negative = false;
    if (i < len && s[i] == '-') {
        d->negative = true;
        i++;
    }
    if (i >= len || s[i] < '0' || s[i] > '9')
        return false;
    if (s[i] == '0' && i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '9')
        return false; /* leading zero */
    for (; i < len; i++) {
        char c = s[i];

        if (c >= '0' && c <= '9') {
            if (!nonzero && c == '0') {
                if (seen_point)
                    leading_zero_frac++;
                continue;
            }
            nonzero = true;
            digitbuf[nd++] = c;
            if (!seen_point)
                point++;
        } else if (c == '.' && !seen_point) {
            seen_point = true;
            if (i + 1 >= len || s[i + 1] < '0' || s[i + 1] > '9')
                return false;
        } else {
            break;
        }
    }
    if (i < len) {
        bool eneg = false;

        if (s[i] != 'e' && s[i] != 'E')
            return false;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) {
            eneg = s[i] == '-';
            i++;
        }
        if (i >= len)
            return false;
        for (; i < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                return false;
            if (expval < 100000000L)
                expval = expval * 10 + (s[i] - '0');
        }
        if (eneg)
            expval = -expval;
    }
    while (nd > 0 && digitbuf[nd - 1] == '0')
        nd--;
    d->digits = digitbuf;
    d->ndigits = nd;
    /* digits before the point count up; zeros right after the point before D1 count down */
    d->exp = nd == 0 ? 0 : point - (point == 0 ? leading_zero_frac : 0) + expval;
    return true;
}

/*
 * Shortest decimal digits that read back as d (d finite, > 0). Tries 1..17 significant
 * digits; "%.*e" rounds correctly, so the first precision that round-trips is the shortest,
 * and among numbers of that length it is the nearest, as ECMAScript requires.
 */
static void
shortest_digits(double d, char *digits, size_t *ndigits, long *exp10)
{
    char tmp[40];

    for (int prec = 1; prec <= 17; prec++) {
        char *e;
        size_t nd = 0;

        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (prec < 17 && strtod(tmp, NULL) != d)
            continue;
        e = strchr(tmp, 'e');
        for (char *p = tmp; p < e; p++)
            if (*p >= '0' && *p <= '9')
                digits[nd++] = *p;
        while (nd > 1 && digits[nd - 1] == '0')
            nd--;
        *ndigits = nd;
        *exp10 = strtol(e + 1, NULL, 10) + 1;
        return;
    }
}

/* Prints digits/exponent (value = 0.D * 10^n) the ECMAScript Number::toString way. */
static bool
es6_format(dfd_buf *out, bool negative, const char *s, size_t k, long n)
{
    char tmp[64];
    size_t o = 0;

    if (negative)
        tmp[o++] = '-';
    if ((long)k <= n && n <= 21) {
        memcpy(tmp + o, s, k);
        o += k;
        for (long z = 0; z < n - (long)k; z++)
            tmp[o++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(tmp + o, s, (size_t)n);
        o += (size_t)n;
        tmp[o++] = '.';
        memcpy(tmp + o, s + n, k - (size_t)n);
        o += k - (size_t)n;
    } else if (-6 < n && n <= 0) {
        tmp[o++] = '0';
        tmp[o++] = '.';
        for (long z = 0; z < -n; z++)
            tmp[o++] = '0';
        memcpy(tmp + o, s, k);
        o += k;
    } else {
        long e = n - 1;

        tmp[o++] = s[0];
        if (k > 1) {
            tmp[o++] = '.';
            memcpy(tmp + o, s + 1, k - 1);
            o += k - 1;
        }
        o += (size_t)snprintf(tmp + o, sizeof tmp - o, "e%c%ld", e < 0 ? '-' : '+', labs(e));
    }
    return dfd_buf_append(out, tmp, o);
}

dfd_status
dfd_jcs_double(dfd_buf *out, double d)
{
    char digits[24];
    size_t nd;
    long n;

    if (!isfinite(d))
        return DFD_ENUMRANGE;
    if (d == 0)
        return dfd_buf_putc(out, '0') ? DFD_OK : DFD_ENOMEM;
    /* integers below 2^53 print as themselves; this is the common case in receipts */
    if (d == floor(d) && fabs(d) < 9007199254740992.0) {
        char tmp[24];
        int len = snprintf(tmp, sizeof tmp, "%lld", (long long)d);

        return dfd_buf_append(out, tmp, (size_t)len) ? DFD_OK : DFD_ENOMEM;
    }
    shortest_digits(fabs(d), digits, &nd, &n);
    return es6_format(out, d < 0, digits, nd, n) ? DFD_OK : DFD_ENOMEM;
}

/*
 * True for "0" and for integers of 1 to 15 digits without a leading zero, optionally negative:
 * every such value is an exact double, and ECMAScript prints it digit for digit, so its
 * canonical form is the text itself ("-0" aside). Most numbers in receipts are counts, sizes and
 * ids of this kind; the general path prints and reads back up to 17 times (7% of a bulk
 * append's time in its profile, docs/benchmarks.md).
 */
static bool
plain_small_integer(const char *s, size_t len)
{
    size_t i = len > 0 && s[0] == '-' ? 1 : 0;

    if (len - i == 0 || len - i > 15)
        return false;
    if (s[i] == '0')
        return len - i == 1;
    for (; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

dfd_status
dfd_jcs_decimal(dfd_buf *out, const char *dec, size_t len, bool exact)
{
    char stackbuf[128];
    char *copy = stackbuf, *digitbuf = NULL;
    decimal orig;
    double d;
    dfd_status st = DFD_OK;

    if (len == 0)
        return DFD_ESYNTAX;
    if (plain_small_integer(dec, len)) {
        if (len == 2 && dec[0] == '-' && dec[1] == '0')
            return dfd_buf_putc(out, '0') ? DFD_OK : DFD_ENOMEM; /* -0 */
        return dfd_buf_append(out, dec, len) ? DFD_OK : DFD_ENOMEM;
    }
    if (len >= sizeof stackbuf) {
        copy = dfd_alloc(len + 1);
        if (copy == NULL)
            return DFD_ENOMEM;
    }
    memcpy(copy, dec, len);
    copy[len] = '\0';
    if (exact) {
        digitbuf = dfd_alloc(len + 1);
        if (digitbuf == NULL) {
            st = DFD_ENOMEM;
            goto done;
        }
        if (!decimal_parse(copy, len, &orig, digitbuf)) {
            st = DFD_ESYNTAX;
            goto done;
        }
    } else {
        decimal scratch;
        char small[128], *db = small;

        /* validate grammar even when not checking exactness; strtod accepts too much */
        if (len >= sizeof small && (db = dfd_alloc(len + 1)) == NULL) {
            st = DFD_ENOMEM;
            goto done;
        }
        if (!decimal_parse(copy, len, &scratch, db))
            st = DFD_ESYNTAX;
        if (db != small)
            dfd_free(db);
        if (st != DFD_OK)
            goto done;
    }
    errno = 0;
    d = strtod(copy, NULL);
    if (!isfinite(d)) {
        st = DFD_ENUMRANGE;
        goto done;
    }
    if (exact) {
        char digits[24];
        size_t nd = 0;
        long n = 0;

        if (d != 0)
            shortest_digits(fabs(d), digits, &nd, &n);
        /* compare the printed value with the decimal as given, digit by digit */
        if (nd != orig.ndigits || (nd > 0 && (n != orig.exp || (d < 0) != orig.negative ||
                                              memcmp(digits, orig.digits, nd) != 0))) {
            st = DFD_ENUMINEXACT;
            goto done;
        }
    }
    st = dfd_jcs_double(out, d);
done:
    if (copy != stackbuf)
        dfd_free(copy);
    dfd_free(digitbuf);
    return st;
}

/* ---- member order ---------------------------------------------------------------------- */

/* Next UTF-16 code unit of a UTF-8 string; *pending holds a low surrogate still to come. */
static uint32_t
next_utf16_unit(const unsigned char *s, size_t len, size_t *pos, uint32_t *pending)
{
    uint32_t cp;
    size_t n;

    if (*pending) {
        uint32_t u = *pending;

        *pending = 0;
        return u;
    }
    n = dfd_utf8_decode(s + *pos, len - *pos, &cp);
    if (n == 0) { /* invalid input was refused earlier; order bytes as themselves */
        cp = s[*pos];
        n = 1;
    }
    *pos += n;
    if (cp >= 0x10000) {
        cp -= 0x10000;
        *pending = 0xdc00 | (cp & 0x3ff);
        return 0xd800 | (cp >> 10);
    }
    return cp;
}

int
dfd_jcs_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    const unsigned char *ua = (const unsigned char *)a, *ub = (const unsigned char *)b;
    size_t pa = 0, pb = 0;
    uint32_t qa = 0, qb = 0;

    while ((pa < alen || qa) && (pb < blen || qb)) {
        uint32_t x, y;

        /* ASCII on both sides is the common case: compare bytes directly */
        if (!qa && !qb && ua[pa] < 0x80 && ub[pb] < 0x80) {
            if (ua[pa] != ub[pb])
                return ua[pa] < ub[pb] ? -1 : 1;
            pa++;
            pb++;
            continue;
        }
        x = next_utf16_unit(ua, alen, &pa, &qa);
        y = next_utf16_unit(ub, blen, &pb, &qb);
        if (x != y)
            return x < y ? -1 : 1;
    }
    if (pa < alen || qa)
        return 1;
    if (pb < blen || qb)
        return -1;
    return 0;
}

/* ---- JSON text parser and canonicalizer ------------------------------------------------ */

typedef enum node_kind { N_NULL, N_TRUE, N_FALSE, N_NUMBER, N_STRING, N_ARRAY, N_OBJECT } node_kind;

typedef struct node node;
typedef struct member member;

struct node {
    node_kind kind;
    const char *text; /* number: raw text; string: decoded UTF-8 */
    size_t len;
    size_t count; /* array elements or object members */
    node *items;  /* array */
    member *members;
};

struct member {
    const char *key;
    size_t key_len;
    node value;
};

/* All nodes and decoded strings of one parse live in one arena, freed at once. */
typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    char data[];
} arena_block;

typedef struct parser {
    const char *s;
    size_t len, pos;
    bool exact_numbers;
    arena_block *arena;
    dfd_status err;
} parser;

static void *
arena_alloc(parser *p, size_t size)
{
    arena_block *b = p->arena;

    size = (size + 15) & ~(size_t)15;
    if (b == NULL || b->cap - b->used < size) {
        size_t cap = size > 16384 ? size : 16384;

        b = dfd_alloc(sizeof(arena_block) + cap);
        if (b == NULL) {
            p->err = DFD_ENOMEM;
            return NULL;
        }
        b->next = p->arena;
        b->used = 0;
        b->cap = cap;
        p->arena = b;
    }
    b->used += size;
    return b->data + b->used - size;
}

static void
arena_free(parser *p)
{
    while (p->arena) {
        arena_block *next = p->arena->next;

        dfd_free(p->arena);
        p->arena = next;
    }
}

static void
skip_ws(parser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];

        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static bool
fail(parser *p, dfd_status st)
{
    if (p->err == DFD_OK)
        p->err = st;
    return false;
}

static int
hex4(const char *s)
{
    int v = 0;

    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;

        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* Parses a string literal at p->pos (which is at the opening quote) into decoded UTF-8. */
static bool
parse_string(parser *p, const char **text, size_t *len)
{
    dfd_buf b;
    char *copy;
    const unsigned char *u = (const unsigned char *)p->s;

    dfd_buf_init(&b);
    p->pos++;
    for (;;) {
        unsigned char c;

        if (p->pos >= p->len)
            goto syntax;
        c = u[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20)
            goto syntax;
        if (c == '\\') {
            char e;

            if (p->pos + 1 >= p->len)
                goto syntax;
            e = p->s[p->pos + 1];
            p->pos += 2;
            switch (e) {
            case '"':
            case '\\':
            case '/':
                dfd_buf_putc(&b, e);
                break;
            case 'b':
                dfd_buf_putc(&b, '\b');
                break;
            case 'f':
                dfd_buf_putc(&b, '\f');
                break;
            case 'n':
                dfd_buf_putc(&b, '\n');
                break;
            case 'r':
                dfd_buf_putc(&b, '\r');
                break;
            case 't':
                dfd_buf_putc(&b, '\t');
                break;
            case 'u': {
                int hi, lo;
                uint32_t cp;

                if (p->pos + 4 > p->len || (hi = hex4(p->s + p->pos)) < 0)
                    goto syntax;
                p->pos += 4;
                cp = (uint32_t)hi;
                if (hi >= 0xdc00 && hi <= 0xdfff)
                    goto badutf8;
                if (hi >= 0xd800 && hi <= 0xdbff) {
                    if (p->pos + 6 > p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                        goto badutf8;
                    lo = hex4(p->s + p->pos + 2);
                    if (lo < 0xdc00 || lo > 0xdfff)
                        goto badutf8;
                    p->pos += 6;
                    cp = 0x10000 + (((uint32_t)hi - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
                }
                utf8_encode(&b, cp);
                break;
            }
            default:
                goto syntax;
            }
        } else {
            uint32_t cp;
            size_t n = dfd_utf8_decode(u + p->pos, p->len - p->pos, &cp);

            if (n == 0)
                goto badutf8;
            dfd_buf_append(&b, p->s + p->pos, n);
            p->pos += n;
        }
    }
    if (b.failed) {
        dfd_buf_free(&b);
        return fail(p, DFD_ENOMEM);
    }
    copy = arena_alloc(p, b.len + 1);
    if (copy == NULL) {
        dfd_buf_free(&b);
        return false;
    }
    if (b.len)
        memcpy(copy, b.data, b.len);
    copy[b.len] = '\0';
    *text = copy;
    *len = b.len;
    dfd_buf_free(&b);
    return true;
syntax:
    dfd_buf_free(&b);
    return fail(p, DFD_ESYNTAX);
badutf8:
    dfd_buf_free(&b);
    return fail(p, DFD_EUTF8);
}

static bool parse_value(parser *p, node *n, int depth);

static int
member_cmp(const void *x, const void *y)
{
    const member *a = x, *b = y;

    return dfd_jcs_key_cmp(a->key, a->key_len, b->key, b->key_len);
}

/* Parses elements or members into a temporary chain of blocks, then into one array. */
static bool
parse_container(parser *p, node *n, int depth, bool object)
{
    size_t cap = 8, count = 0;
    size_t elem = object ? sizeof(member) : sizeof(node);
    char *items = dfd_alloc(cap * elem);
    char *final;

    if (items == NULL)
        return fail(p, DFD_ENOMEM);
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == (object ? '}' : ']')) {
        p->pos++;
        goto done;
    }
    for (;;) {
        if (count == cap) {
            char *grown = dfd_alloc(cap * 2 * elem);

            if (grown == NULL) {
                dfd_free(items);
                return fail(p, DFD_ENOMEM);
            }
            memcpy(grown, items, cap * elem);
            dfd_free(items);
            items = grown;
            cap *= 2;
        }
        skip_ws(p);
        if (object) {
            member *m = (member *)(items + count * elem);

            if (p->pos >= p->len || p->s[p->pos] != '"' || !parse_string(p, &m->key, &m->key_len))
                goto bad;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                goto bad;
            p->pos++;
            if (!parse_value(p, &m->value, depth + 1))
                goto bad;
        } else if (!parse_value(p, (node *)(items + count * elem), depth + 1)) {
            goto bad;
        }
        count++;
        skip_ws(p);
        if (p->pos >= p->len)
            goto bad;
        if (p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->s[p->pos] == (object ? '}' : ']')) {
            p->pos++;
            break;
        }
        goto bad;
    }
done:
    final = count ? arena_alloc(p, count * elem) : NULL;
    if (count && final == NULL) {
        dfd_free(items);
        return false;
    }
    if (count)
        memcpy(final, items, count * elem);
    dfd_free(items);
    n->kind = object ? N_OBJECT : N_ARRAY;
    n->count = count;
    if (object) {
        n->members = (member *) final;
        if (count > 1) /* qsort must not see the NULL of an empty object */
            qsort(n->members, count, sizeof(member), member_cmp);
        for (size_t i = 1; i < count; i++)
            if (member_cmp(&n->members[i - 1], &n->members[i]) == 0)
                return fail(p, DFD_EDUPKEY);
    } else {
        n->items = (node *) final;
    }
    return true;
bad:
    dfd_free(items);
    return fail(p, DFD_ESYNTAX);
}

static bool
parse_literal(parser *p, const char *word, node *n, node_kind kind)
{
    size_t wl = strlen(word);

    if (p->len - p->pos < wl || memcmp(p->s + p->pos, word, wl) != 0)
        return fail(p, DFD_ESYNTAX);
    p->pos += wl;
    n->kind = kind;
    return true;
}

static bool
parse_value(parser *p, node *n, int depth)
{
    char c;

    if (depth > DFD_JSON_MAX_DEPTH)
        return fail(p, DFD_EDEPTH);
    memset(n, 0, sizeof *n);
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, DFD_ESYNTAX);
    c = p->s[p->pos];
    switch (c) {
    case '{':
        return parse_container(p, n, depth, true);
    case '[':
        return parse_container(p, n, depth, false);
    case '"':
        n->kind = N_STRING;
        return parse_string(p, &n->text, &n->len);
    case 't':
        return parse_literal(p, "true", n, N_TRUE);
    case 'f':
        return parse_literal(p, "false", n, N_FALSE);
    case 'n':
        return parse_literal(p, "null", n, N_NULL);
    default: {
        size_t start = p->pos;

        while (p->pos < p->len) {
            c = p->s[p->pos];
            if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' ||
                  c == 'E'))
                break;
            p->pos++;
        }
        if (p->pos == start)
            return fail(p, DFD_ESYNTAX);
        n->kind = N_NUMBER;
        n->text = p->s + start;
        n->len = p->pos - start;
        return true;
    }
    }
}

static dfd_status
emit(const node *n, bool exact, dfd_buf *out)
{
    dfd_status st;

    switch (n->kind) {
    case N_NULL:
        dfd_buf_puts(out, "null");
        break;
    case N_TRUE:
        dfd_buf_puts(out, "true");
        break;
    case N_FALSE:
        dfd_buf_puts(out, "false");
        break;
    case N_NUMBER:
        return dfd_jcs_decimal(out, n->text, n->len, exact);
    case N_STRING:
        return dfd_jcs_string(out, n->text, n->len);
    case N_ARRAY:
        dfd_buf_putc(out, '[');
        for (size_t i = 0; i < n->count; i++) {
            if (i)
                dfd_buf_putc(out, ',');
            if ((st = emit(&n->items[i], exact, out)) != DFD_OK)
                return st;
        }
        dfd_buf_putc(out, ']');
        break;
    case N_OBJECT:
        dfd_buf_putc(out, '{');
        for (size_t i = 0; i < n->count; i++) {
            if (i)
                dfd_buf_putc(out, ',');
            if ((st = dfd_jcs_string(out, n->members[i].key, n->members[i].key_len)) != DFD_OK)
                return st;
            dfd_buf_putc(out, ':');
            if ((st = emit(&n->members[i].value, exact, out)) != DFD_OK)
                return st;
        }
        dfd_buf_putc(out, '}');
        break;
    }
    return out->failed ? DFD_ENOMEM : DFD_OK;
}

dfd_status
dfd_jcs_canonicalize(const char *json, size_t len, bool exact_numbers, dfd_buf *out)
{
    parser p = {json, len, 0, exact_numbers, NULL, DFD_OK};
    node root;
    dfd_status st;

    if (!parse_value(&p, &root, 0)) {
        arena_free(&p);
        return p.err;
    }
    skip_ws(&p);
    if (p.pos != p.len) {
        arena_free(&p);
        return DFD_ESYNTAX;
    }
    st = emit(&root, exact_numbers, out);
    arena_free(&p);
    return st;
}
