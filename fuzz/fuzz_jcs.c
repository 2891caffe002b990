/*
 * fuzz_jcs: RFC 8785 canonical JSON (dfd_jcs_canonicalize in both number modes, and
 * dfd_jcs_decimal), the code every receipt hash and every verifier depends on.
 *
 * Invariants beyond "no crash":
 *   - canonical output is a fixed point: canonicalizing it again gives the same bytes, in both
 *     modes (a receipt hashed twice must hash the same);
 *   - exact mode only ever refuses more: when it accepts, the nearest-double mode gives the same
 *     bytes;
 *   - the output is JSON that jansson (an independent parser) reads, with every object's
 *     members in increasing UTF-16 order (compared here, apart from dfd_jcs_key_cmp);
 *   - a number printed by dfd_jcs_decimal names the same double as its input (checked with the C
 *     library's strtod), so the shortest ECMAScript form never changes a value.
 */
#include "../extension/core/dfd_core.h"
#include "fuzz_check.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Bounded so that one input is cheap; nesting and long strings are reached well below it. */
#define MAX_INPUT 65536

static void
check_fixed_point(const dfd_buf *out)
{
    dfd_buf again;

    for (int exact = 0; exact < 2; exact++) {
        dfd_buf_init(&again);
        FUZZ_CHECK(dfd_jcs_canonicalize(out->data, out->len, exact, &again) == DFD_OK,
                   "canonical output is refused when canonicalized again");
        FUZZ_CHECK(again.len == out->len && memcmp(again.data, out->data, out->len) == 0,
                   "canonical output is not a fixed point");
        dfd_buf_free(&again);
    }
}

/* UTF-16 code units of a UTF-8 name, decoded here without the core. */
static size_t
utf16_units(const char *s, size_t len, uint16_t *out, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < len && n + 2 <= cap;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        size_t k = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;

        cp = k == 1 ? c : k == 2 ? c & 0x1F : k == 3 ? c & 0x0F : c & 0x07;
        for (size_t j = 1; j < k && i + j < len; j++)
            cp = cp << 6 | ((unsigned char)s[i + j] & 0x3F);
        if (cp >= 0x10000) {
            out[n++] = (uint16_t)(0xD800 + ((cp - 0x10000) >> 10));
            out[n++] = (uint16_t)(0xDC00 + ((cp - 0x10000) & 0x3FF));
        } else {
            out[n++] = (uint16_t)cp;
        }
        i += k;
    }
    return n;
}

/* Every object's members in strictly increasing UTF-16 order (RFC 8785 section 3.2.3). */
static void
check_sorted(json_t *v)
{
    static uint16_t a[4096], b[4096];
    const char *key, *prev = NULL;
    size_t prev_len = 0, i;
    json_t *m;

    if (json_is_array(v)) {
        json_array_foreach(v, i, m) check_sorted(m);
        return;
    }
    if (!json_is_object(v))
        return;
    json_object_foreach(v, key, m)
    {
        size_t len = strlen(key);

        if (prev != NULL) {
            size_t na = utf16_units(prev, prev_len, a, 4096), nb = utf16_units(key, len, b, 4096);
            size_t n = na < nb ? na : nb;
            int c = 0;

            for (size_t j = 0; j < n && c == 0; j++)
                c = a[j] < b[j] ? -1 : a[j] > b[j] ? 1 : 0;
            if (c == 0)
                c = na < nb ? -1 : na > nb ? 1 : 0;
            FUZZ_CHECK(c < 0, "object members are not in UTF-16 order");
        }
        check_sorted(m);
        prev = key;
        prev_len = len;
    }
}

static void
check_jansson_reads(const dfd_buf *out)
{
    json_error_t err;
    json_t *v;

    /* jansson refuses U+0000 in member names whatever its flags; the JCS text is right */
    if (memmem(out->data, out->len, "\\u0000", 6) != NULL)
        return;
    /* integers as doubles: JCS prints 1e20 as 100000000000000000000, beyond json_int_t */
    v = json_loadb(
        out->data, out->len,
        JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);

    FUZZ_CHECK(v != NULL, "jansson cannot read the canonical output");
    check_sorted(v); /* jansson keeps the members in the order of the text */
    json_decref(v);
}

static void
check_decimal(const uint8_t *data, size_t size)
{
    char in[64], *end;
    dfd_buf out;
    dfd_status st;

    if (size == 0 || size >= sizeof in || memchr(data, '\0', size) != NULL)
        return;
    memcpy(in, data, size);
    in[size] = '\0';
    for (int exact = 0; exact < 2; exact++) {
        dfd_buf_init(&out);
        st = dfd_jcs_decimal(&out, in, size, exact);
        if (st == DFD_OK) {
            double given = strtod(in, &end), printed;

            FUZZ_CHECK(dfd_buf_terminate(&out), "out of memory");
            /* the JSON number grammar is a subset of strtod's, so a full parse is expected
             * whenever the core accepted plain JSON number text */
            if (*end == '\0' && isfinite(given)) {
                printed = strtod(out.data, &end);
                FUZZ_CHECK(*end == '\0', "printed number is not strtod text");
                FUZZ_CHECK(printed == given, "printed number names another double");
            }
            check_fixed_point(&out);
        }
        dfd_buf_free(&out);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dfd_buf loose, exact;
    dfd_status st_loose, st_exact;

    if (size > MAX_INPUT)
        return 0;
    dfd_buf_init(&loose);
    dfd_buf_init(&exact);
    st_loose = dfd_jcs_canonicalize((const char *)data, size, false, &loose);
    st_exact = dfd_jcs_canonicalize((const char *)data, size, true, &exact);
    if (st_loose == DFD_OK) {
        check_fixed_point(&loose);
        check_jansson_reads(&loose);
    }
    if (st_exact == DFD_OK) {
        FUZZ_CHECK(st_loose == DFD_OK, "exact mode accepts what nearest-double mode refuses");
        FUZZ_CHECK(exact.len == loose.len && memcmp(exact.data, loose.data, loose.len) == 0,
                   "exact and nearest-double modes disagree on an exact input");
    }
    dfd_buf_free(&loose);
    dfd_buf_free(&exact);
    check_decimal(data, size);
    return 0;
}
