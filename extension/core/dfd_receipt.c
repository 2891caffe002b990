/*
 * dfd_receipt.c: receipt format v1 (docs/receipt-format.md): names, timestamps, field
 * disclosures and digests, the hashed body, and the never-public rule.
 */
#include "dfd_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool
is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool
is_name_char(char c)
{
    return is_lower(c) || (c >= '0' && c <= '9') || c == '_';
}

bool
dfd_valid_field_name(const char *s, size_t len)
{
    if (len == 0 || len > DFD_NAME_MAX || !is_lower(s[0]))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!is_name_char(s[i]))
            return false;
    return true;
}

bool
dfd_valid_kind(const char *s, size_t len)
{
    bool segment_start = true;

    if (len == 0 || len > DFD_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (segment_start) {
            if (!is_lower(c))
                return false;
            segment_start = false;
        } else if (c == '.') {
            segment_start = true;
        } else if (!is_name_char(c)) {
            return false;
        }
    }
    return !segment_start;
}

bool
dfd_valid_uuid_text(const char *s, size_t len)
{
    if (len != DFD_UUID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

static bool
ends_with(const char *s, size_t len, const char *suffix)
{
    size_t sl = strlen(suffix);

    return len >= sl && memcmp(s + len - sl, suffix, sl) == 0;
}

bool
dfd_never_public_name(const char *s, size_t len)
{
    static const char *const exact[] = {"email", "password", "ip", "storage_key", "object_key"};
    static const char *const suffixes[] = {"_email",  "_ip",    "_key",
                                           "_secret", "_token", "_password"};

    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strlen(exact[i]) == len && memcmp(s, exact[i], len) == 0)
            return true;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
        if (ends_with(s, len, suffixes[i]))
            return true;
    return false;
}

/* RFC 5322 atext plus '.', and any non-ASCII byte (internationalized addresses). */
static bool
is_local_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c >= 0x80 || (c != '\0' && strchr(".!#$%&'*+/=?^_`{|}~-", c) != NULL);
}

static bool
is_domain_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c >= 0x80;
}

/*
 * Something shaped like an email address: at least one local-part character, '@', then a
 * domain of two or more non-empty labels. Deliberately generous: a false positive only keeps a
 * field private, a false negative would publish an address.
 */
bool
dfd_contains_email(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;

    for (size_t at = 1; at + 1 < len; at++) {
        size_t i, labels = 0, label_len = 0;

        if (u[at] != '@' || !is_local_char(u[at - 1]))
            continue;
        for (i = at + 1; i < len; i++) {
            if (is_domain_char(u[i])) {
                label_len++;
            } else if (u[i] == '.' && label_len > 0) {
                labels++;
                label_len = 0;
            } else {
                break;
            }
        }
        if (labels >= 1 && label_len > 0)
            return true;
    }
    return false;
}

/* Days since 1970-01-01 to a civil date (proleptic Gregorian), after H. Hinnant's algorithm. */
static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    yoe = z - era * 146097;
    yoe = (yoe - yoe / 1460 + yoe / 36524 - yoe / 146096) / 365;
    doy = z - era * 146097 - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* v as exactly width decimal digits, zero-padded (v < 10^width). */
static void
put_digits(char *out, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

#define USECS_PER_DAY INT64_C(86400000000)

bool
dfd_format_ts(int64_t us, char out[DFD_TS_LEN + 1])
{
    int64_t days = us / USECS_PER_DAY, rem = us % USECS_PER_DAY, y;
    unsigned m, d, secs;

    if (rem < 0) {
        rem += USECS_PER_DAY;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    if (y < 1 || y > 9999)
        return false;
    secs = (unsigned)(rem / 1000000);
    /* by hand, not snprintf: verify_ledger formats one per receipt, and the format machinery
     * was a fifth of its time */
    put_digits(out, (unsigned)y, 4);
    out[4] = '-';
    put_digits(out + 5, m, 2);
    out[7] = '-';
    put_digits(out + 8, d, 2);
    out[10] = 'T';
    put_digits(out + 11, secs / 3600, 2);
    out[13] = ':';
    put_digits(out + 14, secs / 60 % 60, 2);
    out[16] = ':';
    put_digits(out + 17, secs % 60, 2);
    out[19] = '.';
    put_digits(out + 20, (unsigned)(rem % 1000000), 6);
    out[26] = 'Z';
    out[27] = '\0';
    return true;
}

size_t
dfd_format_int64(int64_t v, char out[21])
{
    char tmp[20];
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0, len = 0;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        out[len++] = '-';
    while (n > 0)
        out[len++] = tmp[--n];
    out[len] = '\0';
    return len;
}

static bool
digits_at(const char *s, size_t n, unsigned *v)
{
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *v = *v * 10 + (unsigned)(s[i] - '0');
    }
    return true;
}

bool
dfd_parse_ts(const char *s, size_t len, int64_t *us)
{
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned y, mo, d, h, mi, sec, frac;

    if (len != DFD_TS_LEN || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[19] != '.' || s[26] != 'Z')
        return false;
    if (!digits_at(s, 4, &y) || !digits_at(s + 5, 2, &mo) || !digits_at(s + 8, 2, &d) ||
        !digits_at(s + 11, 2, &h) || !digits_at(s + 14, 2, &mi) || !digits_at(s + 17, 2, &sec) ||
        !digits_at(s + 20, 6, &frac))
        return false;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 59)
        return false;
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return false;
    *us = days_from_civil(y, mo, d) * USECS_PER_DAY +
          ((int64_t)h * 3600 + mi * 60 + sec) * 1000000 + frac;
    return true;
}

dfd_status
dfd_disclosure(dfd_buf *out, const char *salt_b64, const char *name, size_t name_len,
               const char *value_jcs, size_t value_len)
{
    dfd_buf arr;
    dfd_status st;
    size_t start;

    dfd_buf_init(&arr);
    dfd_buf_putc(&arr, '[');
    if ((st = dfd_jcs_string(&arr, salt_b64, strlen(salt_b64))) != DFD_OK)
        goto done;
    dfd_buf_putc(&arr, ',');
    if ((st = dfd_jcs_string(&arr, name, name_len)) != DFD_OK)
        goto done;
    dfd_buf_putc(&arr, ',');
    dfd_buf_append(&arr, value_jcs, value_len);
    dfd_buf_putc(&arr, ']');
    if (arr.failed || !dfd_buf_reserve(out, dfd_b64url_len(arr.len))) {
        st = DFD_ENOMEM;
        goto done;
    }
    start = out->len;
    dfd_b64url_encode((const uint8_t *)arr.data, arr.len, out->data + start);
    out->len = start + dfd_b64url_len(arr.len);
    st = DFD_OK;
done:
    dfd_buf_free(&arr);
    return st;
}

bool
dfd_disclosure_digest(const char *disclosure, size_t len, char out[DFD_DIGEST_B64_LEN + 1])
{
    uint8_t h[DFD_SHA256_LEN];

    if (!dfd_sha256(disclosure, len, h))
        return false;
    dfd_b64url_encode(h, DFD_SHA256_LEN, out);
    out[DFD_DIGEST_B64_LEN] = '\0';
    return true;
}

static int
field_digest_cmp(const void *x, const void *y)
{
    const dfd_field_digest *a = x, *b = y;

    return dfd_jcs_key_cmp(a->name, a->name_len, b->name, b->name_len);
}

void
dfd_sort_field_digests(dfd_field_digest *fields, size_t n)
{
    /*
     * Most receipts have a handful of fields, for which qsort's set-up cost more than the
     * sorting (2% of verify_ledger); insertion sort up to 16. Names are distinct (object keys),
     * so either sort gives the one order.
     */
    if (n > 16) {
        qsort(fields, n, sizeof *fields, field_digest_cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        dfd_field_digest f = fields[i];
        size_t j = i;

        while (j > 0 && field_digest_cmp(&fields[j - 1], &f) > 0) {
            fields[j] = fields[j - 1];
            j--;
        }
        fields[j] = f;
    }
}

dfd_status
dfd_receipt_body(dfd_buf *out, const dfd_receipt_header *h, const dfd_field_digest *fields,
                 size_t n)
{
    char prev_hex[DFD_HEX_HASH_LEN];
    char seq[24];
    int seq_len;
    dfd_status st;

    /* members in RFC 8785 order: fields, kind, org, prev, seq, ts, v */
    dfd_buf_puts(out, "{\"fields\":{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            dfd_buf_putc(out, ',');
        if ((st = dfd_jcs_string(out, fields[i].name, fields[i].name_len)) != DFD_OK)
            return st;
        dfd_buf_putc(out, ':');
        if ((st = dfd_jcs_string(out, fields[i].digest, DFD_DIGEST_B64_LEN)) != DFD_OK)
            return st;
    }
    dfd_buf_puts(out, "},\"kind\":");
    if ((st = dfd_jcs_string(out, h->kind, h->kind_len)) != DFD_OK)
        return st;
    dfd_buf_puts(out, ",\"org\":");
    if ((st = dfd_jcs_string(out, h->org, DFD_UUID_LEN)) != DFD_OK)
        return st;
    dfd_hex_encode(h->prev, DFD_SHA256_LEN, prev_hex);
    dfd_buf_puts(out, ",\"prev\":\"");
    dfd_buf_append(out, prev_hex, sizeof prev_hex);
    seq_len = (int)dfd_format_int64(h->seq, seq);
    dfd_buf_puts(out, "\",\"seq\":");
    dfd_buf_append(out, seq, (size_t)seq_len);
    dfd_buf_puts(out, ",\"ts\":");
    if ((st = dfd_jcs_string(out, h->ts, DFD_TS_LEN)) != DFD_OK)
        return st;
    dfd_buf_puts(out, ",\"v\":1}");
    return out->failed ? DFD_ENOMEM : DFD_OK;
}

bool
dfd_receipt_hash(const char *body, size_t len, uint8_t out[DFD_SHA256_LEN])
{
    return dfd_sha256(body, len, out);
}
