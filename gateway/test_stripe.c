/*
 * test_stripe.c: tests of stripe.c: the shared Stripe webhook vectors, the gateway's own header
 * rules (rotation, tolerance edges, single-byte changes, whitespace, duplicates, bounds), the
 * Checkout Session form body against bodies computed by Python, and webhook event parsing of
 * sample events written after Stripe's documented shapes.
 *
 *   test_stripe VECTOR_DIR      (VECTOR_DIR = testdata/stripe)
 *
 * Prints one line per failed check and finally "stripe: N passed, N failed"; exits non-zero when
 * anything failed. Every header and payload handed to stripe.c is first copied into a heap block
 * of exactly its size (payloads without a terminator), so AddressSanitizer catches any read past
 * the end. Expected signatures are computed here with OpenSSL's one-shot HMAC() over a
 * concatenated buffer, a different code path from stripe.c's streamed EVP_MAC.
 */
#include "stripe.h"

#include "core/test_check.h"

#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *vector_dir;

/* the shared vectors' secrets and payload; the rolled secret follows stripe-go's tests */
#define SECRET_A "whsec_test_secret"
#define SECRET_B "whsec_test_secret_rolled_key"
#define T_TEXT "1492774577"
#define T_NUM INT64_C(1492774577)
static const char payload_basic[] =
    "{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}";
#define PAYLOAD_BASIC_LEN (sizeof payload_basic - 1)

/* ---- helpers ----------------------------------------------------------------------------- */

/* A heap copy of exactly n bytes, no terminator: reads past n are caught by ASan. */
static char *
dup_exact(const void *data, size_t n)
{
    char *p = xmalloc(n);

    if (n > 0)
        memcpy(p, data, n);
    return p;
}

/* snprintf into a fresh heap string of exactly the needed size. */
static char *__attribute__((format(printf, 1, 2))) fmt(const char *f, ...)
{
    va_list ap;
    int n;
    char *s;

    va_start(ap, f);
    n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    if (n < 0) {
        fprintf(stderr, "vsnprintf failed\n");
        exit(2);
    }
    s = xmalloc((size_t)n + 1);
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

/* lower-case hex HMAC-SHA256(secret, msg) with OpenSSL's one-shot HMAC() */
static void
hmac_hex(const char *secret, const void *msg, size_t len, char out[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;

    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, len, mac, &mac_len) == NULL ||
        mac_len != 32) {
        fprintf(stderr, "HMAC failed\n");
        exit(2);
    }
    for (unsigned int i = 0; i < 32; i++) {
        out[2 * i] = digits[mac[i] >> 4];
        out[2 * i + 1] = digits[mac[i] & 15];
    }
    out[64] = '\0';
}

/* Stripe's v1 value: hex HMAC of t "." payload, over one concatenated buffer */
static void
sign_hex(const char *secret, const char *t, const void *payload, size_t payload_len, char out[65])
{
    size_t tl = strlen(t);
    char *msg = xmalloc(tl + 1 + payload_len);

    memcpy(msg, t, tl);
    msg[tl] = '.';
    if (payload_len > 0)
        memcpy(msg + tl + 1, payload, payload_len);
    hmac_hex(secret, msg, tl + 1 + payload_len, out);
    free(msg);
}

/* gw_stripe_verify on exact-size heap copies of header and payload */
static gw_stripe_status
verify(const char *header, const void *payload, size_t payload_len, const char *const *secrets,
       size_t n_secrets, int64_t now, int64_t tolerance)
{
    char *h = header != NULL ? dup_exact(header, strlen(header) + 1) : NULL;
    char *p = payload != NULL ? dup_exact(payload, payload_len) : NULL;
    gw_stripe_status st = gw_stripe_verify(h, p, payload_len, secrets, n_secrets, now, tolerance);

    free(h);
    free(p);
    return st;
}

/* verify with the basic payload and SECRET_A, tolerance off */
static gw_stripe_status
verify_basic(const char *header)
{
    static const char *const secrets[] = {SECRET_A};

    return verify(header, payload_basic, PAYLOAD_BASIC_LEN, secrets, 1, T_NUM, 0);
}

#define EXPECT(got, want, ...)                                                                     \
    do {                                                                                           \
        gw_stripe_status got_ = (got), want_ = (want);                                             \
        char what_[512];                                                                           \
        snprintf(what_, sizeof what_, __VA_ARGS__);                                                \
        CHECK(got_ == want_, "%s: got \"%s\", want \"%s\"", what_, gw_stripe_status_text(got_),    \
              gw_stripe_status_text(want_));                                                       \
    } while (0)

static char *
read_file(const char *name, size_t *len)
{
    char path[1024];
    FILE *f;
    long n;
    char *buf;

    snprintf(path, sizeof path, "%s/%s", vector_dir, name);
    f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    buf = xmalloc((size_t)n);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "short read on %s\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static json_t *
load_json(const char *name)
{
    char path[1024];
    json_error_t err;
    json_t *j;

    snprintf(path, sizeof path, "%s/%s", vector_dir, name);
    j = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL) {
        fprintf(stderr, "%s:%d: %s\n", path, err.line, err.text);
        exit(2);
    }
    return j;
}

/* ---- the shared vectors ------------------------------------------------------------------ */

/*
 * The vector file says only expect_valid (plus a "why"); the gateway distinguishes four ways
 * of failing. This table is the mapping, keyed by the exact desc so that a changed vector file
 * is noticed rather than silently half-checked.
 */
static const struct {
    const char *desc;
    gw_stripe_status want;
} vector_map[] = {
    {"basic", GW_STRIPE_OK},
    {"basic, UTF-8 payload (bytes signed as sent)", GW_STRIPE_OK},
    {"extra v0 element is ignored", GW_STRIPE_OK},
    {"two v1 signatures (secret rotation): old-secret signature first", GW_STRIPE_OK},
    {"two v1 signatures (secret rotation): verify with the new secret", GW_STRIPE_OK},
    {"unreadable extra v1 is ignored", GW_STRIPE_OK},
    {"within tolerance (now = t + 299)", GW_STRIPE_OK},
    {"too old (now = t + 301, tolerance 300)", GW_STRIPE_TOO_OLD},
    {"old timestamp 12345 verifies when tolerance is not applied", GW_STRIPE_OK},
    {"payload modified (one trailing newline added)", GW_STRIPE_MISMATCH},
    {"wrong secret", GW_STRIPE_MISMATCH},
    {"timestamp in header changed", GW_STRIPE_MISMATCH},
    {"only a v0 signature (correct HMAC but wrong scheme)", GW_STRIPE_NO_SIGNATURE},
    {"malformed header 'v1,t=1'", GW_STRIPE_MALFORMED},
    {"malformed header 't='", GW_STRIPE_MALFORMED},
    {"empty header", GW_STRIPE_MALFORMED},
    {"uppercase hex signature", GW_STRIPE_MISMATCH},
};
#define N_VECTOR_MAP (sizeof vector_map / sizeof vector_map[0])
static bool vector_seen[N_VECTOR_MAP];

/* the t value of a well-formed header, for the cross-check of the vector's own signatures */
static bool
header_t(const char *header, char *t, size_t tsize)
{
    const char *p = strstr(header, "t=");
    size_t n;

    if (p != header)
        return false;
    n = strcspn(p + 2, ",");
    if (n == 0 || n >= tsize)
        return false;
    memcpy(t, p + 2, n);
    t[n] = '\0';
    return true;
}

static void
test_vectors(void)
{
    json_t *root = load_json("stripe-webhook-vectors.json"),
           *cases = json_object_get(root, "cases");
    json_t *c;
    size_t i;

    CHECK(json_is_array(cases) && json_array_size(cases) == N_VECTOR_MAP,
          "vector file has %zu cases, the mapping %zu", json_array_size(cases), N_VECTOR_MAP);
    json_array_foreach(cases, i, c)
    {
        const char *desc = json_string_value(json_object_get(c, "desc"));
        const char *secret = json_string_value(json_object_get(c, "secret"));
        const char *header = json_string_value(json_object_get(c, "header"));
        json_t *jp = json_object_get(c, "payload"), *jnow = json_object_get(c, "now");
        json_t *jtol = json_object_get(c, "tolerance_seconds");
        bool valid = json_is_true(json_object_get(c, "expect_valid"));
        const char *payload = json_string_value(jp);
        size_t plen = json_string_length(jp), m;
        /* without now/tolerance the vector means "ignore the tolerance": tolerance 0 */
        int64_t now = json_is_integer(jnow) ? json_integer_value(jnow) : 0;
        int64_t tol = json_is_integer(jtol) ? json_integer_value(jtol) : 0;
        const char *one[1] = {secret};

        if (desc == NULL || secret == NULL || header == NULL || payload == NULL) {
            CHECK(false, "vector %zu: missing desc/secret/header/payload", i);
            continue;
        }
        for (m = 0; m < N_VECTOR_MAP; m++) {
            if (strcmp(vector_map[m].desc, desc) == 0)
                break;
        }
        if (m == N_VECTOR_MAP) {
            CHECK(false, "vector \"%s\": not in the mapping table", desc);
            continue;
        }
        CHECK(!vector_seen[m], "vector \"%s\": desc appears twice", desc);
        vector_seen[m] = true;
        CHECK((vector_map[m].want == GW_STRIPE_OK) == valid,
              "vector \"%s\": mapping disagrees with expect_valid", desc);
        EXPECT(verify(header, payload, plen, one, 1, now, tol), vector_map[m].want, "vector \"%s\"",
               desc);

        if (valid) {
            /* the vector's signature is what an independent HMAC gives */
            char t[32], sig[65];

            if (header_t(header, t, sizeof t)) {
                sign_hex(secret, t, payload, plen, sig);
                CHECK(strstr(header, sig) != NULL, "vector \"%s\": HMAC here is %s", desc, sig);
            } else {
                CHECK(false, "vector \"%s\": valid case without a leading t", desc);
            }
            /* with a second, unrelated secret configured, in either order (rotation) */
            const char *two[2] = {"whsec_unrelated", secret}, *rev[2] = {secret, "whsec_other"};
            EXPECT(verify(header, payload, plen, two, 2, now, tol), GW_STRIPE_OK,
                   "vector \"%s\" (secret second)", desc);
            EXPECT(verify(header, payload, plen, rev, 2, now, tol), GW_STRIPE_OK,
                   "vector \"%s\" (secret first)", desc);
            /* applying the default tolerance at now = t also accepts */
            if (!json_is_integer(jnow)) {
                int64_t tn = strtoll(t, NULL, 10);

                EXPECT(verify(header, payload, plen, one, 1, tn, GW_STRIPE_DEFAULT_TOLERANCE),
                       GW_STRIPE_OK, "vector \"%s\" at now = t", desc);
            }
        }
    }
    for (size_t m = 0; m < N_VECTOR_MAP; m++)
        CHECK(vector_seen[m], "mapping entry \"%s\" matched no vector", vector_map[m].desc);
    json_decref(root);
}

/* ---- own header cases -------------------------------------------------------------------- */

static void
test_rotation(void)
{
    char sa[65], sb[65], *h_both, *h_a, *h_b;
    static const char *const ab[] = {SECRET_A, SECRET_B}, *const ba[] = {SECRET_B, SECRET_A};
    static const char *const a[] = {SECRET_A}, *const b[] = {SECRET_B}, *const c[] = {"whsec_c"};
    static const char *const null_a[] = {NULL, SECRET_A}, *const empty[] = {""};

    sign_hex(SECRET_A, T_TEXT, payload_basic, PAYLOAD_BASIC_LEN, sa);
    sign_hex(SECRET_B, T_TEXT, payload_basic, PAYLOAD_BASIC_LEN, sb);
    h_both = fmt("t=%s,v1=%s,v1=%s", T_TEXT, sa, sb);
    h_a = fmt("t=%s,v1=%s", T_TEXT, sa);
    h_b = fmt("t=%s,v1=%s", T_TEXT, sb);

    /* Stripe signs with both secrets during the 24 h overlap: either secret alone accepts */
    EXPECT(verify(h_both, payload_basic, PAYLOAD_BASIC_LEN, a, 1, T_NUM, 300), GW_STRIPE_OK,
           "both signatures, old secret");
    EXPECT(verify(h_both, payload_basic, PAYLOAD_BASIC_LEN, b, 1, T_NUM, 300), GW_STRIPE_OK,
           "both signatures, new secret");
    EXPECT(verify(h_both, payload_basic, PAYLOAD_BASIC_LEN, c, 1, T_NUM, 300), GW_STRIPE_MISMATCH,
           "both signatures, unrelated secret");
    /* the gateway configured with both secrets accepts a header signed by either one */
    EXPECT(verify(h_a, payload_basic, PAYLOAD_BASIC_LEN, ab, 2, T_NUM, 300), GW_STRIPE_OK,
           "old signature, secrets {old,new}");
    EXPECT(verify(h_b, payload_basic, PAYLOAD_BASIC_LEN, ab, 2, T_NUM, 300), GW_STRIPE_OK,
           "new signature, secrets {old,new}");
    EXPECT(verify(h_a, payload_basic, PAYLOAD_BASIC_LEN, ba, 2, T_NUM, 300), GW_STRIPE_OK,
           "old signature, secrets {new,old}");
    EXPECT(verify(h_b, payload_basic, PAYLOAD_BASIC_LEN, ba, 2, T_NUM, 300), GW_STRIPE_OK,
           "new signature, secrets {new,old}");
    EXPECT(verify(h_b, payload_basic, PAYLOAD_BASIC_LEN, a, 1, T_NUM, 300), GW_STRIPE_MISMATCH,
           "new signature, old secret only");
    /* no usable secret never verifies */
    EXPECT(verify(h_a, payload_basic, PAYLOAD_BASIC_LEN, NULL, 0, T_NUM, 300), GW_STRIPE_MISMATCH,
           "no secrets");
    EXPECT(verify(h_a, payload_basic, PAYLOAD_BASIC_LEN, a, 0, T_NUM, 300), GW_STRIPE_MISMATCH,
           "n_secrets 0");
    EXPECT(verify(h_a, payload_basic, PAYLOAD_BASIC_LEN, null_a, 2, T_NUM, 300), GW_STRIPE_OK,
           "NULL secret skipped");
    free(h_a);
    /* a signature made with the empty key is still refused: an empty secret is no secret */
    sign_hex("", T_TEXT, payload_basic, PAYLOAD_BASIC_LEN, sa);
    h_a = fmt("t=%s,v1=%s", T_TEXT, sa);
    EXPECT(verify(h_a, payload_basic, PAYLOAD_BASIC_LEN, empty, 1, T_NUM, 300), GW_STRIPE_MISMATCH,
           "empty secret");
    free(h_a);
    /* no trimming of the secret either: a trailing newline from a secrets file is a new key */
    {
        static const char *const nl[] = {SECRET_A "\n"};

        sign_hex(SECRET_A, T_TEXT, payload_basic, PAYLOAD_BASIC_LEN, sa);
        h_a = fmt("t=%s,v1=%s", T_TEXT, sa);
        EXPECT(verify(h_a, payload_basic, PAYLOAD_BASIC_LEN, nl, 1, T_NUM, 300), GW_STRIPE_MISMATCH,
               "secret with a trailing newline");
        free(h_a);
    }
    free(h_both);
    free(h_b);
}

static void
check_tolerance(const char *t_text, int64_t now, int64_t tol, gw_stripe_status want)
{
    static const char *const a[] = {SECRET_A};
    char sig[65], *h;

    sign_hex(SECRET_A, t_text, payload_basic, PAYLOAD_BASIC_LEN, sig);
    h = fmt("t=%s,v1=%s", t_text, sig);
    EXPECT(verify(h, payload_basic, PAYLOAD_BASIC_LEN, a, 1, now, tol), want,
           "t=%s now=%" PRId64 " tolerance=%" PRId64, t_text, now, tol);
    free(h);
}

static void
test_tolerance(void)
{
    /* exactly at the tolerance is accepted, one second more is refused, in both directions */
    check_tolerance(T_TEXT, T_NUM + 300, 300, GW_STRIPE_OK);
    check_tolerance(T_TEXT, T_NUM + 301, 300, GW_STRIPE_TOO_OLD);
    check_tolerance(T_TEXT, T_NUM - 300, 300, GW_STRIPE_OK);
    check_tolerance(T_TEXT, T_NUM - 301, 300, GW_STRIPE_TOO_OLD);
    check_tolerance(T_TEXT, T_NUM, 300, GW_STRIPE_OK);
    check_tolerance(T_TEXT, T_NUM + 1, 1, GW_STRIPE_OK);
    check_tolerance(T_TEXT, T_NUM + 2, 1, GW_STRIPE_TOO_OLD);
    check_tolerance(T_TEXT, T_NUM - 2, 1, GW_STRIPE_TOO_OLD);
    /* tolerance <= 0 disables the check, whatever the clock says */
    check_tolerance(T_TEXT, T_NUM + 1000000000, 0, GW_STRIPE_OK);
    check_tolerance(T_TEXT, T_NUM - 1000000000, 0, GW_STRIPE_OK);
    check_tolerance(T_TEXT, T_NUM + 1000000000, -5, GW_STRIPE_OK);
    check_tolerance(T_TEXT, INT64_MIN, INT64_MIN, GW_STRIPE_OK);
    /* the extremes of int64: no overflow (UBSan would abort), and the right answer */
    check_tolerance("0", 0, 300, GW_STRIPE_OK);
    check_tolerance("0", 301, 300, GW_STRIPE_TOO_OLD);
    check_tolerance("0", INT64_MAX, INT64_MAX, GW_STRIPE_OK);
    check_tolerance("0", INT64_MIN, INT64_MAX, GW_STRIPE_TOO_OLD);
    check_tolerance("9223372036854775807", INT64_MAX, 1, GW_STRIPE_OK);
    check_tolerance("9223372036854775807", INT64_MIN, INT64_MAX, GW_STRIPE_TOO_OLD);
    check_tolerance("9223372036854775807", 0, INT64_MAX, GW_STRIPE_OK);
    check_tolerance("9223372036854775807", -1, INT64_MAX, GW_STRIPE_TOO_OLD);
    /* the signature is judged first: a forgery is a mismatch even when also stale */
    {
        char *h = fmt("t=%s,v1=%064d", T_TEXT, 0);
        static const char *const a[] = {SECRET_A};

        EXPECT(verify(h, payload_basic, PAYLOAD_BASIC_LEN, a, 1, T_NUM + 100000, 300),
               GW_STRIPE_MISMATCH, "bad signature and too old");
        free(h);
    }
}

static void
test_flips(void)
{
    char sig[65], *h, t[sizeof T_TEXT];
    char secret[] = SECRET_A;
    const char *sp[1] = {secret};
    static const char *const a[] = {SECRET_A};

    sign_hex(SECRET_A, T_TEXT, payload_basic, PAYLOAD_BASIC_LEN, sig);
    h = fmt("t=%s,v1=%s", T_TEXT, sig);
    EXPECT(verify_basic(h), GW_STRIPE_OK, "unchanged");

    /* every payload byte, two different bit flips each */
    for (size_t i = 0; i < PAYLOAD_BASIC_LEN; i++) {
        char p[sizeof payload_basic];

        memcpy(p, payload_basic, sizeof p);
        p[i] = (char)(p[i] ^ 0x01);
        EXPECT(verify(h, p, PAYLOAD_BASIC_LEN, a, 1, T_NUM, 0), GW_STRIPE_MISMATCH,
               "payload byte %zu ^ 0x01", i);
        p[i] = (char)(p[i] ^ 0x81); /* back to the original, then the top bit */
        EXPECT(verify(h, p, PAYLOAD_BASIC_LEN, a, 1, T_NUM, 0), GW_STRIPE_MISMATCH,
               "payload byte %zu ^ 0x80", i);
    }
    /* a byte more or less */
    EXPECT(verify(h, payload_basic, PAYLOAD_BASIC_LEN - 1, a, 1, T_NUM, 0), GW_STRIPE_MISMATCH,
           "payload one byte short");
    EXPECT(verify(h, payload_basic, PAYLOAD_BASIC_LEN + 1, a, 1, T_NUM, 0), GW_STRIPE_MISMATCH,
           "payload with its terminator");
    free(h);

    /* every digit of t, changed to another digit (the first never to '0': a leading zero is
     * malformed, tested elsewhere) */
    for (size_t i = 0; i < strlen(T_TEXT); i++) {
        memcpy(t, T_TEXT, sizeof t);
        t[i] = (char)('0' + (t[i] - '0' + 1) % 10);
        if (i == 0 && t[i] == '0')
            t[i] = '1';
        h = fmt("t=%s,v1=%s", t, sig);
        EXPECT(verify_basic(h), GW_STRIPE_MISMATCH, "t digit %zu changed (%s)", i, t);
        free(h);
    }
    /* every signature character: to another lower-case hex digit, and to upper case */
    for (size_t i = 0; i < 64; i++) {
        char s2[65];

        memcpy(s2, sig, sizeof s2);
        s2[i] = s2[i] == 'f' ? '0' : (s2[i] == '9' ? 'a' : (char)(s2[i] + 1));
        h = fmt("t=%s,v1=%s", T_TEXT, s2);
        EXPECT(verify_basic(h), GW_STRIPE_MISMATCH, "signature char %zu changed", i);
        free(h);
        if (sig[i] >= 'a' && sig[i] <= 'f') {
            memcpy(s2, sig, sizeof s2);
            s2[i] = (char)(s2[i] - 'a' + 'A');
            h = fmt("t=%s,v1=%s", T_TEXT, s2);
            EXPECT(verify_basic(h), GW_STRIPE_MISMATCH, "signature char %zu upper case", i);
            free(h);
        }
    }
    /* every secret byte */
    h = fmt("t=%s,v1=%s", T_TEXT, sig);
    for (size_t i = 0; i < strlen(SECRET_A); i++) {
        secret[i] ^= 0x01;
        EXPECT(verify(h, payload_basic, PAYLOAD_BASIC_LEN, sp, 1, T_NUM, 0), GW_STRIPE_MISMATCH,
               "secret byte %zu ^ 0x01", i);
        secret[i] ^= 0x01;
    }
    EXPECT(verify(h, payload_basic, PAYLOAD_BASIC_LEN, sp, 1, T_NUM, 0), GW_STRIPE_OK,
           "secret restored");
    free(h);

    /* the '.' between t and payload is part of what is signed: HMAC("<t><payload>") fails */
    {
        size_t tl = strlen(T_TEXT), n = tl + PAYLOAD_BASIC_LEN;
        char *joined = xmalloc(n), nodot[65];

        memcpy(joined, T_TEXT, tl);
        memcpy(joined + tl, payload_basic, PAYLOAD_BASIC_LEN);
        hmac_hex(SECRET_A, joined, n, nodot);
        h = fmt("t=%s,v1=%s", T_TEXT, nodot);
        EXPECT(verify_basic(h), GW_STRIPE_MISMATCH, "signature without the '.'");
        free(h);
        free(joined);
    }
}

static void
test_whitespace(void)
{
    char sig[65];
    static const struct {
        const char *f; /* printf format with %s for t and then the signature */
        gw_stripe_status want;
    } cases[] = {
        /* Stripe's libraries split on ',' and '=' without trimming, and so does the gateway:
         * " v1" is another key (ignored), "1 " is not a number. */
        {"t=%s, v1=%s", GW_STRIPE_NO_SIGNATURE},
        {"t=%s,\tv1=%s", GW_STRIPE_NO_SIGNATURE},
        {"t=%s,v1=%s ", GW_STRIPE_MISMATCH},
        {"t=%s,v1= %s", GW_STRIPE_MISMATCH},
        {"t=%s,v1=%s\r\n", GW_STRIPE_MISMATCH},
        {"t=%s ,v1=%s", GW_STRIPE_MALFORMED},
        {"t= %s,v1=%s", GW_STRIPE_MALFORMED},
        {" t=%s,v1=%s", GW_STRIPE_MALFORMED}, /* " t" is not t: no timestamp at all */
        {"t =%s,v1=%s", GW_STRIPE_MALFORMED},
        {"t=%s,v1 =%s", GW_STRIPE_NO_SIGNATURE},
    };

    sign_hex(SECRET_A, T_TEXT, payload_basic, PAYLOAD_BASIC_LEN, sig);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char h[256];

        /* the formats are literals above; the pragma keeps -Wformat-nonliteral quiet */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(h, sizeof h, cases[i].f, T_TEXT, sig);
#pragma GCC diagnostic pop
        EXPECT(verify_basic(h), cases[i].want, "whitespace \"%s\"", cases[i].f);
    }
    /* a clean v1 next to a spaced one still verifies */
    {
        char *h = fmt("t=%s, v1=%s,v1=%s", T_TEXT, sig, sig);

        EXPECT(verify_basic(h), GW_STRIPE_OK, "spaced and clean v1");
        free(h);
    }
}

static void
test_structure(void)
{
    char sig[65], sig_upper[65], *h;
    static const char *const bad_t[] = {"-1",
                                        "+1492774577",
                                        "0x58f9",
                                        "1492774577.5",
                                        "1e9",
                                        "01492774577",
                                        "00",
                                        "1492774577a",
                                        "",
                                        "١٢٣",
                                        "18446744073709551616",
                                        "9223372036854775808",
                                        "10000000000000000000"};

    sign_hex(SECRET_A, T_TEXT, payload_basic, PAYLOAD_BASIC_LEN, sig);
    for (size_t i = 0; i < 65; i++)
        sig_upper[i] = (sig[i] >= 'a' && sig[i] <= 'f') ? (char)(sig[i] - 32) : sig[i];

#define H(want, ...)                                                                               \
    do {                                                                                           \
        h = fmt(__VA_ARGS__);                                                                      \
        EXPECT(verify_basic(h), want, "header \"%.100s\"", h);                                     \
        free(h);                                                                                   \
    } while (0)

    /* order and extra entries do not matter */
    H(GW_STRIPE_OK, "v1=%s,t=%s", sig, T_TEXT);
    H(GW_STRIPE_OK, "v0=%s,t=%s,v1=%s", sig, T_TEXT, sig);
    H(GW_STRIPE_OK, "t=%s,v1=%s,foo=bar,v2=,x=a=b", T_TEXT, sig);
    H(GW_STRIPE_OK, "t=%s,v1=bad,v1=%s,v1=", T_TEXT, sig);
    /* duplicate t: which one was signed would be a guess, so the header is refused */
    H(GW_STRIPE_MALFORMED, "t=%s,t=%s,v1=%s", T_TEXT, T_TEXT, sig);
    H(GW_STRIPE_MALFORMED, "t=%s,v1=%s,t=%s", T_TEXT, sig, T_TEXT);
    H(GW_STRIPE_MALFORMED, "t=%s,v1=%s,t=1492774578", T_TEXT, sig);
    /* empty entries, entries without '=' or without a key */
    H(GW_STRIPE_MALFORMED, "t=%s,v1=%s,", T_TEXT, sig);
    H(GW_STRIPE_MALFORMED, ",t=%s,v1=%s", T_TEXT, sig);
    H(GW_STRIPE_MALFORMED, "t=%s,,v1=%s", T_TEXT, sig);
    H(GW_STRIPE_MALFORMED, "t=%s,v1=%s,=x", T_TEXT, sig);
    H(GW_STRIPE_MALFORMED, "t=%s,v1=%s,v0", T_TEXT, sig);
    H(GW_STRIPE_MALFORMED, "%s", ",");
    H(GW_STRIPE_MALFORMED, "%s", "=");
    /* t missing or not a canonical decimal int64 */
    H(GW_STRIPE_MALFORMED, "v1=%s", sig);
    H(GW_STRIPE_MALFORMED, "T=%s,v1=%s", T_TEXT, sig);
    for (size_t i = 0; i < sizeof bad_t / sizeof bad_t[0]; i++)
        H(GW_STRIPE_MALFORMED, "t=%s,v1=%s", bad_t[i], sig);
    /* Stripe's libraries re-render t in decimal before signing, so they would accept this
     * leading-zero spelling; the gateway signs the text received and refuses the spelling. */
    H(GW_STRIPE_MALFORMED, "t=0%s,v1=%s", T_TEXT, sig);
    /* no v1 key at all */
    H(GW_STRIPE_NO_SIGNATURE, "t=%s", T_TEXT);
    H(GW_STRIPE_NO_SIGNATURE, "t=%s,v0=%s", T_TEXT, sig);
    H(GW_STRIPE_NO_SIGNATURE, "t=%s,V1=%s", T_TEXT, sig);
    H(GW_STRIPE_NO_SIGNATURE, "t=%s,v10=%s", T_TEXT, sig);
    /* v1 present but unreadable or wrong */
    H(GW_STRIPE_MISMATCH, "t=%s,v1=", T_TEXT);
    H(GW_STRIPE_MISMATCH, "t=%s,v1=%.63s", T_TEXT, sig);
    H(GW_STRIPE_MISMATCH, "t=%s,v1=%s0", T_TEXT, sig);
    H(GW_STRIPE_MISMATCH, "t=%s,v1=%s", T_TEXT, sig_upper);
    H(GW_STRIPE_MISMATCH, "t=%s,v1=%064d", T_TEXT, 0);
    H(GW_STRIPE_MISMATCH,
      "t=%s,v1=gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg", T_TEXT);
#undef H
    /* NULL header, NULL payload with a length */
    EXPECT(verify_basic(NULL), GW_STRIPE_MALFORMED, "NULL header");
    {
        static const char *const a[] = {SECRET_A};

        h = fmt("t=%s,v1=%s", T_TEXT, sig);
        EXPECT(gw_stripe_verify(h, NULL, 5, a, 1, T_NUM, 0), GW_STRIPE_MALFORMED,
               "NULL payload with length 5");
        free(h);
    }
}

static void
test_bounds(void)
{
    char sig[65], *h;
    size_t n;

    sign_hex(SECRET_A, T_TEXT, payload_basic, PAYLOAD_BASIC_LEN, sig);
    /* "t=...,v1=...,pad=aaaa" of an exact total length, valid in every other respect */
    for (size_t total = GW_STRIPE_MAX_HEADER - 1; total <= 5000;
         total = total == GW_STRIPE_MAX_HEADER + 1 ? 5000 : total + 1) {
        char *prefix = fmt("t=%s,v1=%s,pad=", T_TEXT, sig);

        n = strlen(prefix);
        h = xmalloc(total + 1);
        memcpy(h, prefix, n);
        memset(h + n, 'a', total - n);
        h[total] = '\0';
        EXPECT(verify_basic(h), total <= GW_STRIPE_MAX_HEADER ? GW_STRIPE_OK : GW_STRIPE_MALFORMED,
               "header of %zu bytes", total);
        free(h);
        free(prefix);
    }
    /* GW_STRIPE_MAX_ENTRIES entries accepted, one more refused; the good v1 last */
    for (size_t entries = GW_STRIPE_MAX_ENTRIES; entries <= GW_STRIPE_MAX_ENTRIES + 1; entries++) {
        size_t cap = 16 + entries * 80, len = 0;

        h = xmalloc(cap);
        len += (size_t)snprintf(h + len, cap - len, "t=%s", T_TEXT);
        for (size_t i = 0; i < entries - 2; i++)
            len += (size_t)snprintf(h + len, cap - len, ",v1=%064zu", i);
        snprintf(h + len, cap - len, ",v1=%s", sig);
        EXPECT(verify_basic(h),
               entries <= GW_STRIPE_MAX_ENTRIES ? GW_STRIPE_OK : GW_STRIPE_MALFORMED, "%zu entries",
               entries);
        free(h);
    }
    /* a large payload (the gateway's 1 MiB body limit) is streamed, not copied */
    {
        size_t plen = 1024 * 1024;
        char *p = xmalloc(plen);
        static const char *const a[] = {SECRET_A};

        memset(p, 'x', plen);
        sign_hex(SECRET_A, T_TEXT, p, plen, sig);
        h = fmt("t=%s,v1=%s", T_TEXT, sig);
        EXPECT(verify(h, p, plen, a, 1, T_NUM, 300), GW_STRIPE_OK, "1 MiB payload");
        free(h);
        free(p);
    }
}

static void
test_payload_edges(void)
{
    static const char *const a[] = {SECRET_A};
    static const unsigned char odd[] = {'{', 0x00, 0xff, 0xfe, '\n', '}'};
    char sig[65], *h;

    /* an empty body is signed as "<t>." (NULL or not) */
    sign_hex(SECRET_A, T_TEXT, "", 0, sig);
    h = fmt("t=%s,v1=%s", T_TEXT, sig);
    EXPECT(gw_stripe_verify(h, NULL, 0, a, 1, T_NUM, 300), GW_STRIPE_OK, "NULL empty payload");
    EXPECT(verify(h, "", 0, a, 1, T_NUM, 300), GW_STRIPE_OK, "empty payload");
    free(h);
    /* raw bytes, NUL and invalid UTF-8 included: the length counts, not a terminator */
    sign_hex(SECRET_A, T_TEXT, odd, sizeof odd, sig);
    h = fmt("t=%s,v1=%s", T_TEXT, sig);
    EXPECT(verify(h, odd, sizeof odd, a, 1, T_NUM, 300), GW_STRIPE_OK, "payload with NUL, 0xff");
    EXPECT(verify(h, odd, 1, a, 1, T_NUM, 300), GW_STRIPE_MISMATCH, "payload cut at the NUL");
    free(h);
}

static void
test_status_text(void)
{
    const char *seen[5];

    for (int s = GW_STRIPE_OK; s <= GW_STRIPE_TOO_OLD; s++) {
        seen[s] = gw_stripe_status_text((gw_stripe_status)s);
        CHECK(seen[s] != NULL && seen[s][0] != '\0', "status %d has text", s);
        for (int r = 0; r < s; r++)
            CHECK(strcmp(seen[r], seen[s]) != 0, "status %d and %d share their text", r, s);
    }
    CHECK(strcmp(gw_stripe_status_text((gw_stripe_status)99), "unknown status") == 0,
          "out-of-range status");
}

/* ---- checkout form ----------------------------------------------------------------------- */

static void
test_checkout_form(void)
{
    json_t *root = load_json("checkout-form-expected.json"),
           *cases = json_object_get(root, "cases");
    json_t *c;
    size_t i;
    char *body, *body2, *big;
    const char *org = "0b5e3c1e-6f1a-4c2b-9d8e-2f4a6b8c0d1e", *ok = "https://a.example/ok";

    CHECK(json_array_size(cases) >= 6, "checkout form cases present");
    json_array_foreach(cases, i, c)
    {
        const char *desc = json_string_value(json_object_get(c, "desc"));
        const char *want = json_string_value(json_object_get(c, "body"));

        body = gw_stripe_checkout_form(json_string_value(json_object_get(c, "price_id")),
                                       json_string_value(json_object_get(c, "org_id")),
                                       json_string_value(json_object_get(c, "success_url")),
                                       json_string_value(json_object_get(c, "cancel_url")),
                                       json_string_value(json_object_get(c, "customer_email")));
        CHECK(body != NULL && want != NULL && strcmp(body, want) == 0,
              "checkout form \"%s\":\n  got  %s\n  want %s", desc ? desc : "?",
              body ? body : "(null)", want ? want : "(null)");
        free(body);
    }
    json_decref(root);

    /* an empty e-mail is left out, like NULL */
    body = gw_stripe_checkout_form("price_1", org, ok, ok, "");
    body2 = gw_stripe_checkout_form("price_1", org, ok, ok, NULL);
    CHECK(body != NULL && body2 != NULL && strcmp(body, body2) == 0 &&
              strstr(body, "customer_email") == NULL,
          "empty customer_email omitted");
    free(body);
    free(body2);
    /* required values: NULL or empty refuses */
    CHECK(gw_stripe_checkout_form(NULL, org, ok, ok, NULL) == NULL, "NULL price");
    CHECK(gw_stripe_checkout_form("", org, ok, ok, NULL) == NULL, "empty price");
    CHECK(gw_stripe_checkout_form("price_1", NULL, ok, ok, NULL) == NULL, "NULL org");
    CHECK(gw_stripe_checkout_form("price_1", "", ok, ok, NULL) == NULL, "empty org");
    CHECK(gw_stripe_checkout_form("price_1", org, NULL, ok, NULL) == NULL, "NULL success_url");
    CHECK(gw_stripe_checkout_form("price_1", org, "", ok, NULL) == NULL, "empty success_url");
    CHECK(gw_stripe_checkout_form("price_1", org, ok, NULL, NULL) == NULL, "NULL cancel_url");
    CHECK(gw_stripe_checkout_form("price_1", org, ok, "", NULL) == NULL, "empty cancel_url");
    /* value bound: GW_STRIPE_MAX_FORM_VALUE bytes accepted, one more refused (for each slot) */
    big = xmalloc(GW_STRIPE_MAX_FORM_VALUE + 2);
    memset(big, 'a', GW_STRIPE_MAX_FORM_VALUE + 1);
    big[GW_STRIPE_MAX_FORM_VALUE] = '\0';
    body = gw_stripe_checkout_form(big, big, big, big, big);
    CHECK(body != NULL &&
              strlen(body) ==
                  5 * GW_STRIPE_MAX_FORM_VALUE +
                      strlen("mode=subscription&line_items[0][price]=&line_items[0][quantity]=1&"
                             "client_reference_id=&success_url=&cancel_url=&customer_email="),
          "five values of %d bytes", GW_STRIPE_MAX_FORM_VALUE);
    free(body);
    big[GW_STRIPE_MAX_FORM_VALUE] = 'a';
    big[GW_STRIPE_MAX_FORM_VALUE + 1] = '\0';
    CHECK(gw_stripe_checkout_form(big, org, ok, ok, NULL) == NULL, "long price");
    CHECK(gw_stripe_checkout_form("p", big, ok, ok, NULL) == NULL, "long org");
    CHECK(gw_stripe_checkout_form("p", org, big, ok, NULL) == NULL, "long success_url");
    CHECK(gw_stripe_checkout_form("p", org, ok, big, NULL) == NULL, "long cancel_url");
    CHECK(gw_stripe_checkout_form("p", org, ok, ok, big) == NULL, "long customer_email");
    free(big);
    /* bytes above 0x7f are encoded one by one, whatever they are */
    body = gw_stripe_checkout_form("p", "\xff\x80", ok, ok, NULL);
    CHECK(body != NULL && strstr(body, "client_reference_id=%FF%80&") != NULL, "high bytes: %s",
          body ? body : "(null)");
    free(body);
}

/* ---- webhook events ---------------------------------------------------------------------- */

static bool
same_str(const char *got, json_t *want)
{
    if (json_is_null(want))
        return got == NULL;
    return got != NULL && json_is_string(want) && strcmp(got, json_string_value(want)) == 0;
}

static bool
event_is_zero(const gw_stripe_event *e)
{
    return e->id == NULL && e->type == NULL && e->org_id == NULL && e->customer == NULL &&
           e->subscription == NULL && e->status == NULL && e->period_end == 0;
}

/* parse a text given inline, from an exact-size heap copy */
static bool
parse_text(const char *text, gw_stripe_event *e)
{
    size_t n = strlen(text);
    char *p = dup_exact(text, n);
    bool ok = gw_stripe_event_parse(p, n, e);

    free(p);
    return ok;
}

static void
test_event_fixtures(void)
{
    json_t *root = load_json("events/expected.json"), *cases = json_object_get(root, "cases");
    json_t *c;
    size_t i;

    CHECK(json_array_size(cases) >= 20, "event fixtures listed");
    json_array_foreach(cases, i, c)
    {
        const char *file = json_string_value(json_object_get(c, "file"));
        bool want_ok = json_is_true(json_object_get(c, "ok"));
        char name[512], *text;
        size_t len;
        gw_stripe_event e;
        bool ok;

        snprintf(name, sizeof name, "events/%s", file);
        text = read_file(name, &len);
        /* a sentinel in *out shows that the parser clears it first */
        memset(&e, 0xa5, sizeof e);
        ok = gw_stripe_event_parse(text, len, &e);
        CHECK(ok == want_ok, "event %s: parse %s, want %s", file, ok ? "ok" : "refused",
              want_ok ? "ok" : "refused");
        if (ok && want_ok) {
            static const char *const keys[] = {"id",       "type",         "org_id",
                                               "customer", "subscription", "status"};
            const char *got[] = {e.id, e.type, e.org_id, e.customer, e.subscription, e.status};

            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
                CHECK(same_str(got[k], json_object_get(c, keys[k])), "event %s: %s is \"%s\"", file,
                      keys[k], got[k] ? got[k] : "(null)");
            CHECK(e.period_end == json_integer_value(json_object_get(c, "period_end")),
                  "event %s: period_end %" PRId64, file, e.period_end);
        }
        if (!ok)
            CHECK(event_is_zero(&e), "event %s: refused event left non-zero", file);
        gw_stripe_event_free(&e);
        CHECK(event_is_zero(&e), "event %s: free zeroes", file);

        /* the whole path: the fixture signed now, verified, then parsed */
        if (want_ok) {
            char sig[65], *h;
            static const char *const a[] = {SECRET_A};

            sign_hex(SECRET_A, T_TEXT, text, len, sig);
            h = fmt("t=%s,v1=%s", T_TEXT, sig);
            EXPECT(verify(h, text, len, a, 1, T_NUM + 5, GW_STRIPE_DEFAULT_TOLERANCE), GW_STRIPE_OK,
                   "signed fixture %s", file);
            free(h);
        }
        free(text);
    }
    json_decref(root);
}

static void
test_event_inline(void)
{
    gw_stripe_event e;
    char *big;

    /* absent data or data.object: the event is still acknowledged, with nothing extracted */
    CHECK(parse_text("{\"id\":\"evt_1\",\"type\":\"customer.subscription.updated\"}", &e) &&
              strcmp(e.id, "evt_1") == 0 && e.subscription == NULL && e.period_end == 0,
          "subscription event without data");
    gw_stripe_event_free(&e);
    CHECK(parse_text("{\"id\":\"evt_1\",\"type\":\"checkout.session.completed\",\"data\":null}",
                     &e) &&
              e.org_id == NULL,
          "data null");
    gw_stripe_event_free(&e);
    CHECK(parse_text("{\"id\":\"evt_1\",\"type\":\"checkout.session.completed\","
                     "\"data\":{\"object\":null}}",
                     &e) &&
              e.org_id == NULL,
          "data.object null");
    gw_stripe_event_free(&e);
    /* members of other event types are not read, even when they look like ours */
    CHECK(parse_text("{\"id\":\"evt_1\",\"type\":\"checkout.session.expired\",\"data\":{\"object\":"
                     "{\"client_reference_id\":\"org\",\"customer\":7}}}",
                     &e) &&
              e.org_id == NULL && e.customer == NULL,
          "checkout.session.expired not read");
    gw_stripe_event_free(&e);
    /* period end: null is absent; the top-level member wins over items; 0 is a time */
    CHECK(parse_text("{\"id\":\"evt_1\",\"type\":\"customer.subscription.created\",\"data\":{"
                     "\"object\":{\"id\":\"sub_1\",\"current_period_end\":null,\"status\":"
                     "\"incomplete\"}}}",
                     &e) &&
              e.period_end == 0 && strcmp(e.status, "incomplete") == 0 &&
              strcmp(e.subscription, "sub_1") == 0,
          "period end null");
    gw_stripe_event_free(&e);
    CHECK(parse_text("{\"id\":\"evt_1\",\"type\":\"customer.subscription.updated\",\"data\":{"
                     "\"object\":{\"id\":\"sub_1\",\"current_period_end\":100,\"items\":{"
                     "\"data\":[{\"current_period_end\":200}]}}}}",
                     &e) &&
              e.period_end == 100,
          "top-level period end preferred");
    gw_stripe_event_free(&e);
    /* basil shape: the latest item end, wherever it is in the list; items without one skipped */
    CHECK(parse_text("{\"id\":\"evt_1\",\"type\":\"customer.subscription.updated\",\"data\":{"
                     "\"object\":{\"id\":\"sub_1\",\"items\":{\"data\":[{\"current_period_end\":"
                     "300},{\"current_period_end\":null},{},{\"current_period_end\":200}]}}}}",
                     &e) &&
              e.period_end == 300,
          "latest item period end, first in the list");
    gw_stripe_event_free(&e);
    CHECK(!parse_text("{\"id\":\"evt_1\",\"type\":\"customer.subscription.updated\",\"data\":{"
                      "\"object\":{\"id\":\"sub_1\",\"items\":{\"data\":{}}}}}",
                      &e) &&
              event_is_zero(&e),
          "items.data not an array");
    CHECK(!parse_text("{\"id\":\"evt_1\",\"type\":\"customer.subscription.updated\",\"data\":{"
                      "\"object\":{\"id\":\"sub_1\",\"items\":{\"data\":[\"si_1\"]}}}}",
                      &e),
          "items.data element not an object");
    CHECK(!parse_text("{\"id\":\"evt_1\",\"type\":\"customer.subscription.updated\",\"data\":{"
                      "\"object\":{\"id\":42}}}",
                      &e),
          "subscription id a number");
    CHECK(!parse_text("{\"id\":\"\",\"type\":\"invoice.paid\"}", &e), "empty id");
    CHECK(!parse_text("{\"id\":\"evt_\xff\",\"type\":\"invoice.paid\"}", &e), "invalid UTF-8");
    CHECK(!parse_text("", &e), "empty payload");
    CHECK(!parse_text("null", &e), "payload null");
    CHECK(!gw_stripe_event_parse(NULL, 0, &e) && event_is_zero(&e), "NULL payload");
    CHECK(!gw_stripe_event_parse("{}", 2, NULL), "NULL out");
    /* the size bound is checked before a byte is read */
    big = xmalloc(GW_STRIPE_MAX_PAYLOAD + 1);
    memset(big, ' ', GW_STRIPE_MAX_PAYLOAD + 1);
    memcpy(big, "{\"id\":\"evt_1\",\"type\":\"invoice.paid\"}", 36);
    CHECK(gw_stripe_event_parse(big, GW_STRIPE_MAX_PAYLOAD, &e), "payload at the bound");
    gw_stripe_event_free(&e);
    CHECK(!gw_stripe_event_parse(big, GW_STRIPE_MAX_PAYLOAD + 1, &e), "payload over the bound");
    free(big);
    /* free is idempotent and accepts NULL */
    gw_stripe_event_free(&e);
    gw_stripe_event_free(NULL);
    CHECK(event_is_zero(&e), "double free leaves zero");
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s VECTOR_DIR\n", argv[0]);
        return 2;
    }
    vector_dir = argv[1];

    test_vectors();
    test_rotation();
    test_tolerance();
    test_flips();
    test_whitespace();
    test_structure();
    test_bounds();
    test_payload_edges();
    test_status_text();
    test_checkout_form();
    test_event_fixtures();
    test_event_inline();

    printf("stripe: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
