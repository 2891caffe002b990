/*
 * test_core.c: unit tests of the Postgres-free core, run without a server.
 *
 * Usage: test_core VECTOR_DIR   (VECTOR_DIR holds jcs/ as copied from the published vectors)
 * Prints one line per failed check and a final "core: N passed, N failed" line.
 */
#include "dfd_core.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "test_check.h"

static const char *vector_dir;

static char *
read_file(const char *rel, size_t *len)
{
    char path[1024];
    FILE *f;
    char *data;
    long n;

    snprintf(path, sizeof path, "%s/%s", vector_dir, rel);
    f = fopen(path, "rb");
    if (f == NULL) {
        printf("FAIL cannot open %s\n", path);
        failed++;
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)n + 1);
    if (fread(data, 1, (size_t)n, f) != (size_t)n)
        n = 0;
    data[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return data;
}

/* Canonicalizes text; returns a malloc'd NUL-terminated result or NULL with *st set. */
static char *
canon(const char *json, bool exact, dfd_status *st)
{
    dfd_buf b;
    char *r;

    dfd_buf_init(&b);
    *st = dfd_jcs_canonicalize(json, strlen(json), exact, &b);
    if (*st != DFD_OK) {
        dfd_buf_free(&b);
        return NULL;
    }
    dfd_buf_terminate(&b);
    r = strdup(b.data);
    dfd_buf_free(&b);
    return r;
}

static void
test_jcs_files(void)
{
    static const char *const cases[] = {"arrays",  "french", "structures",
                                        "unicode", "values", "weird"};

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rel[256];
        size_t inlen, outlen, hexlen;
        char *in, *out, *hex;
        dfd_buf b;
        dfd_status st;

        snprintf(rel, sizeof rel, "jcs/input/%s.json", cases[i]);
        in = read_file(rel, &inlen);
        snprintf(rel, sizeof rel, "jcs/output/%s.json", cases[i]);
        out = read_file(rel, &outlen);
        snprintf(rel, sizeof rel, "jcs/outhex/%s.txt", cases[i]);
        hex = read_file(rel, &hexlen);
        if (!in || !out || !hex)
            continue;
        dfd_buf_init(&b);
        st = dfd_jcs_canonicalize(in, inlen, false, &b);
        CHECK(st == DFD_OK && b.len == outlen && memcmp(b.data, out, outlen) == 0,
              "jcs vector %s: status %s", cases[i], dfd_status_text(st));
        /* the hex file is the same bytes: check it too, so both forms agree */
        {
            size_t hn = 0;
            char *h = malloc(b.len * 2 + 1);
            char *compact = malloc(hexlen + 1);

            for (size_t j = 0; j < hexlen; j++)
                if ((hex[j] >= '0' && hex[j] <= '9') || (hex[j] >= 'a' && hex[j] <= 'f'))
                    compact[hn++] = hex[j];
            dfd_hex_encode((const uint8_t *)b.data, b.len, h);
            CHECK(hn == b.len * 2 && memcmp(h, compact, hn) == 0, "jcs outhex %s", cases[i]);
            free(h);
            free(compact);
        }
        dfd_buf_free(&b);
        free(in);
        free(out);
        free(hex);
    }
}

static double
bits_to_double(const char *hex)
{
    uint64_t bits = strtoull(hex, NULL, 16);
    double d;

    memcpy(&d, &bits, sizeof d);
    return d;
}

static void
test_rfc8785_examples(void)
{
    char path[1024];
    json_error_t jerr;
    json_t *root, *nums, *v;
    size_t idx;
    char *got;
    dfd_status st;

    snprintf(path, sizeof path, "%s/jcs/rfc8785-examples.json", vector_dir);
    root = json_load_file(path, 0, &jerr);
    CHECK(root != NULL, "load %s: %s", path, jerr.text);
    if (!root)
        return;
    got = canon(json_string_value(json_object_get(json_object_get(root, "main_example"), "input")),
                false, &st);
    CHECK(got && strcmp(got, json_string_value(json_object_get(
                                 json_object_get(root, "main_example"), "expected_output"))) == 0,
          "rfc8785 main example");
    free(got);
    /* the same document with exact numbers must be refused: 333333333.33333329 is not a double */
    got = canon(json_string_value(json_object_get(json_object_get(root, "main_example"), "input")),
                true, &st);
    CHECK(got == NULL && st == DFD_ENUMINEXACT, "main example refused in exact mode");
    free(got);
    got =
        canon(json_string_value(json_object_get(json_object_get(root, "sorting_example"), "input")),
              false, &st);
    CHECK(got && strcmp(got,
                        json_string_value(json_object_get(json_object_get(root, "sorting_example"),
                                                          "expected_output"))) == 0,
          "rfc8785 sorting example");
    free(got);
    nums = json_object_get(root, "appendix_b_numbers");
    json_array_foreach(nums, idx, v)
    {
        const char *hex = json_string_value(json_object_get(v, "ieee754_hex"));
        json_t *exp = json_object_get(v, "expected");
        double d = bits_to_double(hex);
        dfd_buf b;

        dfd_buf_init(&b);
        st = dfd_jcs_double(&b, d);
        if (json_is_string(exp)) {
            dfd_buf_terminate(&b);
            CHECK(st == DFD_OK && strcmp(b.data, json_string_value(exp)) == 0,
                  "appendix B %s: got %s want %s", hex, st == DFD_OK ? b.data : "error",
                  json_string_value(exp));
        } else {
            CHECK(st == DFD_ENUMRANGE, "appendix B %s must be refused", hex);
        }
        dfd_buf_free(&b);
    }
    json_decref(root);
}

static void
test_es6_numbers(void)
{
    size_t len;
    char *data = read_file("jcs/es6-numbers-first10000.txt", &len);
    char *line, *save = NULL;
    int lines = 0, bad = 0;

    if (!data)
        return;
    for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *comma = strchr(line, ',');
        dfd_buf b;

        if (!comma)
            continue;
        *comma = '\0';
        dfd_buf_init(&b);
        dfd_jcs_double(&b, bits_to_double(line));
        dfd_buf_terminate(&b);
        if (strcmp(b.data, comma + 1) != 0) {
            if (bad < 5)
                printf("es6 %s: got %s want %s\n", line, b.data, comma + 1);
            bad++;
        }
        lines++;
        dfd_buf_free(&b);
    }
    CHECK(lines == 10000 && bad == 0, "es6 numbers: %d of %d lines wrong", bad, lines);
    free(data);
}

static void
test_exact_decimals(void)
{
    static const struct {
        const char *in;
        const char *out; /* NULL: refused */
        dfd_status st;
    } cases[] = {
        {"1.50", "1.5", DFD_OK},
        {"1000000000000000000000", "1e+21", DFD_OK},
        {"1e21", "1e+21", DFD_OK},
        {"100000000000000000000", "100000000000000000000", DFD_OK},
        {"1.7976931348623157e308", "1.7976931348623157e+308", DFD_OK},
        {"0.000001", "0.000001", DFD_OK},
        {"0.0000001", "1e-7", DFD_OK},
        {"-0", "0", DFD_OK},
        {"0.000", "0", DFD_OK},
        {"-12.340", "-12.34", DFD_OK},
        {"0", "0", DFD_OK},
        {"7", "7", DFD_OK},
        {"-45", "-45", DFD_OK},
        {"999999999999999", "999999999999999", DFD_OK},
        {"-999999999999999", "-999999999999999", DFD_OK},
        {"1234567890123456", "1234567890123456", DFD_OK},
        {"100", "100", DFD_OK},
        {"100.0", "100", DFD_OK},
        {"1e2", "100", DFD_OK},
        {"9007199254740992", "9007199254740992", DFD_OK},
        {"9007199254740993", NULL, DFD_ENUMINEXACT},
        {"0.1000000000000000000000000001", NULL, DFD_ENUMINEXACT},
        {"333333333.33333329", NULL, DFD_ENUMINEXACT},
        {"1e-400", NULL, DFD_ENUMINEXACT},
        {"1e400", NULL, DFD_ENUMRANGE},
        {"01", NULL, DFD_ESYNTAX},
        {"-01", NULL, DFD_ESYNTAX},
        {"00", NULL, DFD_ESYNTAX},
        {"-", NULL, DFD_ESYNTAX},
        {"12a", NULL, DFD_ESYNTAX},
        {"1.", NULL, DFD_ESYNTAX},
        {"+1", NULL, DFD_ESYNTAX},
        {"1e", NULL, DFD_ESYNTAX},
        {"0x10", NULL, DFD_ESYNTAX},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dfd_buf b;
        dfd_status st;

        dfd_buf_init(&b);
        st = dfd_jcs_decimal(&b, cases[i].in, strlen(cases[i].in), true);
        dfd_buf_terminate(&b);
        if (cases[i].out)
            CHECK(st == DFD_OK && strcmp(b.data, cases[i].out) == 0, "exact %s: got %s",
                  cases[i].in, st == DFD_OK ? b.data : dfd_status_text(st));
        else
            CHECK(st == cases[i].st, "exact %s must fail with %s, got %s", cases[i].in,
                  dfd_status_text(cases[i].st), dfd_status_text(st));
        dfd_buf_free(&b);
    }
    /* without exactness the RFC behaviour holds: the nearest double is printed */
    {
        dfd_buf b;

        dfd_buf_init(&b);
        CHECK(dfd_jcs_decimal(&b, "9007199254740993", 16, false) == DFD_OK &&
                  dfd_buf_terminate(&b) && strcmp(b.data, "9007199254740992") == 0,
              "lossy decimal rounds to nearest double");
        dfd_buf_free(&b);
    }
}

/* Integers of up to 15 digits are written as given: the same text the double path prints. */
static void
test_small_integers_match_doubles(void)
{
    uint64_t x = 88172645463325252ULL;
    int wrong = 0;

    for (int i = 0; i < 100000; i++) {
        char text[24];
        dfd_buf as_decimal, as_double;
        long long v;
        int digits = 1 + i % 15;
        long long limit = 1;

        for (int d = 0; d < digits; d++)
            limit *= 10;
        x ^= x << 13; /* xorshift64: a fixed, repeatable spread of values */
        x ^= x >> 7;
        x ^= x << 17;
        v = (long long)(x % (uint64_t)limit) * (i % 2 ? -1 : 1);
        snprintf(text, sizeof text, "%lld", v);
        dfd_buf_init(&as_decimal);
        dfd_buf_init(&as_double);
        if (dfd_jcs_decimal(&as_decimal, text, strlen(text), true) != DFD_OK ||
            dfd_jcs_double(&as_double, (double)v) != DFD_OK || as_decimal.len != as_double.len ||
            memcmp(as_decimal.data, as_double.data, as_decimal.len) != 0)
            wrong++;
        dfd_buf_free(&as_decimal);
        dfd_buf_free(&as_double);
    }
    CHECK(wrong == 0, "small integers: %d of 100000 printed differently from their double", wrong);
}

static void
test_json_errors(void)
{
    static const struct {
        const char *in;
        dfd_status st;
    } cases[] = {
        {"{\"a\":1,\"a\":2}", DFD_EDUPKEY},
        {"\"\\ud800\"", DFD_EUTF8},
        {"\"\\udc00x\"", DFD_EUTF8},
        {"\"\xc0\xaf\"", DFD_EUTF8},
        {"\"\xed\xa0\x80\"", DFD_EUTF8},
        {"[1,]", DFD_ESYNTAX},
        {"{\"a\" 1}", DFD_ESYNTAX},
        {"[1] x", DFD_ESYNTAX},
        {"\"a\nb\"", DFD_ESYNTAX},
        {"tru", DFD_ESYNTAX},
        {"", DFD_ESYNTAX},
        {"NaN", DFD_ESYNTAX},
        {"[\"\\x\"]", DFD_ESYNTAX},
    };
    char deep[DFD_JSON_MAX_DEPTH * 2 + 8];
    dfd_status st;
    char *r;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = canon(cases[i].in, false, &st);
        CHECK(r == NULL && st == cases[i].st, "json error case %zu: got %s", i,
              dfd_status_text(st));
        free(r);
    }
    memset(deep, '[', DFD_JSON_MAX_DEPTH + 2);
    memset(deep + DFD_JSON_MAX_DEPTH + 2, ']', DFD_JSON_MAX_DEPTH + 2);
    deep[2 * DFD_JSON_MAX_DEPTH + 4] = '\0';
    r = canon(deep, false, &st);
    CHECK(r == NULL && st == DFD_EDEPTH, "depth limit");
    free(r);
    r = canon("\"\\u0000\\u001f\\u007f\\/\"", false, &st);
    CHECK(r && strcmp(r, "\"\\u0000\\u001f\x7f/\"") == 0, "control escapes: %s", r ? r : "-");
    free(r);
}

/*
 * dfd_jcs_string scans eight bytes at a time and steps byte by byte only around what needs
 * care: every such byte, at every offset of a 24-byte string (so at each position within a
 * word, before, inside and after the last whole word), must come out as the byte-by-byte rules
 * say.
 */
static void
test_string_scan(void)
{
    static const struct {
        const char *in, *out; /* one character and its JSON form */
    } cases[] = {{"\"", "\\\""},
                 {"\\", "\\\\"},
                 {"\n", "\\n"},
                 {"\x01", "\\u0001"},
                 {"\x1f", "\\u001f"},
                 {"\x7f", "\x7f"},
                 {" ", " "},
                 {"!", "!"},
                 {"#", "#"},
                 {"[", "["},
                 {"]", "]"},
                 {"\xc3\xa9", "\xc3\xa9"},
                 {"\xe2\x80\xa8", "\xe2\x80\xa8"},
                 {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"}};
    static const char *const bad[] = {"\xc3", "\xff", "\xe2\x80", "\xed\xa0\x80"};

    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        for (size_t at = 0; at <= 24; at++) {
            char in[64], want[80];
            size_t n = strlen(cases[k].in), w = 0;
            dfd_buf out;

            memset(in, 'a', at);
            memcpy(in + at, cases[k].in, n);
            memset(in + at + n, 'z', 24 - at);
            want[w++] = '"';
            memset(want + w, 'a', at);
            w += at;
            memcpy(want + w, cases[k].out, strlen(cases[k].out));
            w += strlen(cases[k].out);
            memset(want + w, 'z', 24 - at);
            w += 24 - at;
            want[w++] = '"';
            dfd_buf_init(&out);
            CHECK(dfd_jcs_string(&out, in, n + 24) == DFD_OK && out.len == w &&
                      memcmp(out.data, want, w) == 0,
                  "string scan: case %zu at %zu", k, at);
            dfd_buf_free(&out);
        }
    }
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        for (size_t at = 0; at <= 24; at++) {
            char in[64];
            size_t n = strlen(bad[k]);
            dfd_buf out;

            memset(in, 'a', at);
            memcpy(in + at, bad[k], n);
            memset(in + at + n, 'z', 24 - at);
            dfd_buf_init(&out);
            CHECK(dfd_jcs_string(&out, in, n + 24) == DFD_EUTF8,
                  "string scan: invalid UTF-8 %zu at %zu refused", k, at);
            dfd_buf_free(&out);
        }
    }
}

static void
test_key_order(void)
{
    /* U+FB33 (one unit 0xFB33) sorts after U+1F600 (units 0xD83D 0xDE00) in UTF-16 order */
    CHECK(dfd_jcs_key_cmp("\xf0\x9f\x98\x80", 4, "\xef\xac\xb3", 3) < 0, "surrogates first");
    CHECK(dfd_jcs_key_cmp("a", 1, "ab", 2) < 0, "prefix first");
    CHECK(dfd_jcs_key_cmp("b", 1, "ab", 2) > 0, "byte order");
    CHECK(dfd_jcs_key_cmp("\xc3\xb6", 2, "\xc3\xb6", 2) == 0, "equal");
}

/*
 * Field digests come out in RFC 8785 key order whatever order they came in: the insertion sort
 * of small counts and qsort above 16 alike, including names whose UTF-16 order differs from
 * their byte order.
 */
static void
test_field_sort(void)
{
    static const size_t counts[] = {0, 1, 2, 3, 5, 8, 15, 16, 17, 40, 64};
    char names[64][24];
    uint32_t state = 12345;

    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        size_t n = counts[c];
        dfd_field_digest f[64];
        bool ok = true;

        for (size_t i = 0; i < n; i++) {
            /* two names in every run whose UTF-16 order is not their byte order */
            if (i == 0)
                strcpy(names[i], "\xef\xac\xb3"); /* U+FB33 */
            else if (i == 1)
                strcpy(names[i], "\xf0\x9f\x98\x80"); /* U+1F600 */
            else
                snprintf(names[i], sizeof names[i], "f%zu", i);
            f[i].name = names[i];
            f[i].name_len = strlen(names[i]);
            f[i].digest = names[i]; /* each digest stays with its name */
        }
        for (size_t i = n; i > 1; i--) { /* a shuffle, the same every run */
            size_t j;
            dfd_field_digest t;

            state = state * 1103515245u + 12345u;
            j = (state >> 8) % i;
            t = f[i - 1], f[i - 1] = f[j], f[j] = t;
        }
        dfd_sort_field_digests(f, n);
        for (size_t i = 0; i < n; i++) {
            if (f[i].digest != f[i].name ||
                (i > 0 &&
                 dfd_jcs_key_cmp(f[i - 1].name, f[i - 1].name_len, f[i].name, f[i].name_len) >= 0))
                ok = false;
        }
        CHECK(ok, "field digests sorted in key order, %zu fields", n);
    }
}

static void
test_encodings(void)
{
    static const struct {
        const char *raw, *b64;
    } cases[] = {{"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"\xfb\xff", "-_8"}};
    uint8_t out[64];
    size_t n;
    char text[64];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t rl = strlen(cases[i].raw);

        dfd_b64url_encode((const uint8_t *)cases[i].raw, rl, text);
        CHECK(dfd_b64url_len(rl) == strlen(cases[i].b64) &&
                  memcmp(text, cases[i].b64, strlen(cases[i].b64)) == 0,
              "b64url encode %zu", i);
        CHECK(dfd_b64url_decode(cases[i].b64, strlen(cases[i].b64), out, &n) && n == rl &&
                  memcmp(out, cases[i].raw, rl) == 0,
              "b64url decode %zu", i);
    }
    CHECK(!dfd_b64url_decode("Zg==", 4, out, &n), "padding refused");
    CHECK(!dfd_b64url_decode("Zh", 2, out, &n), "non-canonical trailing bits refused");
    CHECK(!dfd_b64url_decode("Z", 1, out, &n), "length 4k+1 refused");
    CHECK(!dfd_b64url_decode("Zm+v", 4, out, &n), "standard alphabet refused");
    {
        uint8_t all[256];
        char hex[512], want[3];
        bool ok = true;

        for (int i = 0; i < 256; i++)
            all[i] = (uint8_t)i;
        dfd_hex_encode(all, 256, hex);
        for (int i = 0; i < 256; i++) {
            snprintf(want, sizeof want, "%02x", i);
            if (memcmp(hex + 2 * i, want, 2) != 0)
                ok = false;
        }
        CHECK(ok, "hex encode of every byte value");
    }
    dfd_hex_encode((const uint8_t *)"\x00\xab\xff", 3, text);
    CHECK(memcmp(text, "00abff", 6) == 0, "hex encode");
    CHECK(dfd_hex_decode("00ABff", 6, out, 3) && out[1] == 0xab, "hex decode");
    CHECK(!dfd_hex_decode("0g", 2, out, 1), "hex refuses non-digits");
}

static void
test_sha256(void)
{
    uint8_t h[32];
    char hex[65];

    dfd_sha256("abc", 3, h);
    dfd_hex_encode(h, 32, hex);
    hex[64] = '\0';
    /* FIPS 180-2 appendix B.1 */
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
          "sha256(abc)");
    CHECK(dfd_ct_equal("abcd", "abcd", 4) && !dfd_ct_equal("abcd", "abce", 4) &&
              !dfd_ct_equal("xbcd", "abcd", 4) && dfd_ct_equal("", "", 0),
          "constant-time compare");
    dfd_sha256("", 0, h);
    dfd_hex_encode(h, 32, hex);
    CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0,
          "sha256(empty)");
}

static void
test_names(void)
{
    static const char *const good_kinds[] = {"auth.verify", "a", "run.complete", "secret.rotation",
                                             "x9_y.z_1"};
    static const char *const bad_kinds[] = {"",        "Auth.verify", "auth.",   ".auth",
                                            "auth..x", "1auth",       "auth.9x", "auth-x",
                                            "auth x",  "auth.X",      "é"};
    static const char *const never[] = {"email",      "password",    "ip",          "storage_key",
                                        "object_key", "owner_email", "client_ip",   "api_key",
                                        "db_secret",  "share_token", "old_password"};
    static const char *const publicable[] = {"emails",      "ipaddr", "key_id",
                                             "token_count", "slug",   "secretary"};
    char long_name[80];

    for (size_t i = 0; i < sizeof good_kinds / sizeof good_kinds[0]; i++)
        CHECK(dfd_valid_kind(good_kinds[i], strlen(good_kinds[i])), "kind %s", good_kinds[i]);
    for (size_t i = 0; i < sizeof bad_kinds / sizeof bad_kinds[0]; i++)
        CHECK(!dfd_valid_kind(bad_kinds[i], strlen(bad_kinds[i])), "bad kind %s", bad_kinds[i]);
    memset(long_name, 'a', 65);
    CHECK(dfd_valid_field_name(long_name, 64) && !dfd_valid_field_name(long_name, 65),
          "64-byte name limit");
    CHECK(dfd_valid_kind(long_name, 64) && !dfd_valid_kind(long_name, 65), "64-byte kind limit");
    CHECK(!dfd_valid_field_name("a.b", 3) && !dfd_valid_field_name("_a", 2), "field name rules");
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        CHECK(dfd_never_public_name(never[i], strlen(never[i])), "never public %s", never[i]);
    for (size_t i = 0; i < sizeof publicable / sizeof publicable[0]; i++)
        CHECK(!dfd_never_public_name(publicable[i], strlen(publicable[i])), "may be public %s",
              publicable[i]);
    CHECK(dfd_contains_email("contact alice@example.com now", 29), "email inside text");
    CHECK(dfd_contains_email("a@b.c", 5), "short email");
    CHECK(dfd_contains_email("x+tag@sub.example.co.uk", 23), "plus and subdomains");
    CHECK(!dfd_contains_email("@example.com", 12), "no local part");
    CHECK(!dfd_contains_email("alice@localhost", 15), "no dot in domain");
    CHECK(!dfd_contains_email("alice@example.", 14), "empty last label");
    CHECK(!dfd_contains_email("price 5 @ 10.00 each", 20), "not an address");
    CHECK(dfd_valid_uuid_text("0190a5e2-1c9f-7b3e-8a41-6f2d9c0e7b15", 36), "uuid");
    CHECK(!dfd_valid_uuid_text("0190A5E2-1c9f-7b3e-8a41-6f2d9c0e7b15", 36), "uuid upper");
}

static void
test_timestamps(void)
{
    char ts[DFD_TS_LEN + 1];
    int64_t us;

    CHECK(dfd_format_ts(0, ts) && strcmp(ts, "1970-01-01T00:00:00.000000Z") == 0, "epoch");
    CHECK(dfd_format_ts(INT64_C(1795339364123456), ts) &&
              strcmp(ts, "2026-11-22T09:22:44.123456Z") == 0,
          "design example: %s", ts);
    CHECK(dfd_format_ts(-1, ts) && strcmp(ts, "1969-12-31T23:59:59.999999Z") == 0, "negative");
    CHECK(dfd_parse_ts("2026-11-22T09:22:44.123456Z", DFD_TS_LEN, &us) &&
              us == INT64_C(1795339364123456),
          "parse");
    CHECK(dfd_parse_ts("2024-02-29T00:00:00.000000Z", DFD_TS_LEN, &us), "leap day");
    CHECK(!dfd_parse_ts("2023-02-29T00:00:00.000000Z", DFD_TS_LEN, &us), "no leap day");
    CHECK(!dfd_parse_ts("2026-11-22T09:22:44.123456+", DFD_TS_LEN, &us), "Z required");
    CHECK(dfd_format_ts(INT64_C(253402300799999999), ts) &&
              strcmp(ts, "9999-12-31T23:59:59.999999Z") == 0,
          "last microsecond: %s", ts);
    CHECK(dfd_format_ts(-INT64_C(62135596800000000), ts) &&
              strcmp(ts, "0001-01-01T00:00:00.000000Z") == 0,
          "first microsecond: %s", ts);
    CHECK(!dfd_format_ts(INT64_C(253402300800000000), ts), "year 10000 refused");
    {
        static const struct {
            int64_t v;
            const char *text;
        } ints[] = {{0, "0"},
                    {-1, "-1"},
                    {7, "7"},
                    {1000000, "1000000"},
                    {INT64_MAX, "9223372036854775807"},
                    {INT64_MIN, "-9223372036854775808"}};
        char num[21];

        for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
            CHECK(dfd_format_int64(ints[i].v, num) == strlen(ints[i].text) &&
                      strcmp(num, ints[i].text) == 0,
                  "format_int64 %s: %s", ints[i].text, num);
    }
    for (int64_t t = -INT64_C(62135596800000000); t < INT64_C(253402300799000000);
         t += INT64_C(86399999937) * 13) {
        if (!dfd_format_ts(t, ts) || !dfd_parse_ts(ts, DFD_TS_LEN, &us) || us != t) {
            CHECK(false, "round trip %" PRId64 " -> %s", t, ts);
            break;
        }
    }
    passed++;
}

/*
 * The worked example of docs/receipt-format.md section "Worked example": fixed salt, org and
 * time, so its bytes are checked here and by the independent verifier.
 */
#define WORKED_EXAMPLE_BODY                                                                        \
    "{\"fields\":{\"method\":\"RsLY8dajBlTBLX-2AOII8gGC3MzOF_oKzFmaV0nWKsQ\",\"user\":"            \
    "\"hZZ_GcqHIZ4nHmNPtwfwV1KvO8zgMDQoXuQtCiPA2g4\"},\"kind\":\"auth.verify\",\"org\":"           \
    "\"0190a5e2-1c9f-7b3e-8a41-6f2d9c0e7b15\",\"prev\":"                                           \
    "\"0000000000000000000000000000000000000000000000000000000000000000\",\"seq\":1,\"ts\":"       \
    "\"2026-11-22T09:22:44.123456Z\",\"v\":1}"

static void
test_worked_example(void)
{
    static const char *const salts[] = {"AAECAwQFBgcICQoLDA0ODw", "EBESExQVFhcYGRobHB0eHw"};
    static const char *const names[] = {"user", "method"};
    static const char *const values[] = {"\"u_7Kq2\"", "\"magic_link\""};
    static const char *const want_disc[] = {
        "WyJBQUVDQXdRRkJnY0lDUW9MREEwT0R3IiwidXNlciIsInVfN0txMiJd",
        "WyJFQkVTRXhRVkZoY1lHUm9iSEIwZUh3IiwibWV0aG9kIiwibWFnaWNfbGluayJd"};
    char digests[2][DFD_DIGEST_B64_LEN + 1];
    dfd_field_digest fd[2];
    dfd_receipt_header h;
    dfd_buf b;
    uint8_t hash[32];
    char hex[65];

    for (int i = 0; i < 2; i++) {
        dfd_buf_init(&b);
        dfd_disclosure(&b, salts[i], names[i], strlen(names[i]), values[i], strlen(values[i]));
        CHECK(b.len == strlen(want_disc[i]) && memcmp(b.data, want_disc[i], b.len) == 0,
              "worked example disclosure %d: %.*s", i, (int)b.len, b.data);
        dfd_disclosure_digest(b.data, b.len, digests[i]);
        fd[i].name = names[i];
        fd[i].name_len = strlen(names[i]);
        fd[i].digest = digests[i];
        dfd_buf_free(&b);
    }
    dfd_sort_field_digests(fd, 2);
    CHECK(strcmp(fd[0].name, "method") == 0, "digest map sorted");
    h.org = "0190a5e2-1c9f-7b3e-8a41-6f2d9c0e7b15";
    h.seq = 1;
    h.ts = "2026-11-22T09:22:44.123456Z";
    h.kind = "auth.verify";
    h.kind_len = strlen(h.kind);
    memset(h.prev, 0, sizeof h.prev);
    dfd_buf_init(&b);
    CHECK(dfd_receipt_body(&b, &h, fd, 2) == DFD_OK, "body");
    dfd_receipt_hash(b.data, b.len, hash);
    dfd_hex_encode(hash, 32, hex);
    hex[64] = '\0';
    dfd_buf_terminate(&b);
    /* the body must itself be canonical: canonicalizing it again changes nothing */
    {
        dfd_status st;
        char *again = canon(b.data, true, &st);

        CHECK(again && strcmp(again, b.data) == 0, "body is its own canonical form");
        free(again);
    }
    CHECK(strcmp(b.data, WORKED_EXAMPLE_BODY) == 0, "worked example body: %s", b.data);
    CHECK(strcmp(hex, "66bb54057bbc5c8573d25db5d29639464a0d91c8abba4e9cba371a1fe0ec927f") == 0,
          "worked example hash");
    dfd_buf_free(&b);
}

int
main(int argc, char **argv)
{
    vector_dir = argc > 1 ? argv[1] : "testdata/vectors";
    test_encodings();
    test_sha256();
    test_key_order();
    test_field_sort();
    test_string_scan();
    test_jcs_files();
    test_rfc8785_examples();
    test_es6_numbers();
    test_exact_decimals();
    test_small_integers_match_doubles();
    test_json_errors();
    test_names();
    test_timestamps();
    test_worked_example();
    printf("core: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
