/*
 * fuzz_stripe_sig: the Stripe-Signature header (gw_stripe_verify in stripe.c), checked over the
 * raw body before anything parses it.
 *
 * Input: a mode byte, then "<header>\n<payload>". Mode 1 appends ",v1=<the right signature>"
 * for the header's first t entry, computed here with OpenSSL's one-shot HMAC, so the fuzzer
 * reaches the accepting and timestamp paths a guessed MAC never would.
 *
 * Invariant: the status is exactly what stripe.h's documented grammar gives when applied here
 * independently (entries split on ',', key=value at the first '=', a non-empty key, at most 32
 * entries, exactly one t of 1..19 digits without a leading zero within int64, v1 values of 64
 * lower-case hex digits as candidates, the signature checked before the age, either secret).
 */
#include "../extension/core/dfd_core.h"
#include "../gateway/stripe.h"
#include "fuzz_check.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <string.h>

#define NOW INT64_C(1700000000)
#define TOLERANCE 300

static const char *const secrets[2] = {"whsec_fuzz_current_secret", "whsec_fuzz_previous_secret"};

static void
hmac_hex(const char *secret, const char *t, size_t t_len, const char *payload, size_t len,
         char out[65])
{
    static char msg[GW_STRIPE_MAX_HEADER + 2 + 65536];
    uint8_t mac[32];
    unsigned int mac_len = 0;

    memcpy(msg, t, t_len);
    msg[t_len] = '.';
    memcpy(msg + t_len + 1, payload, len);
    FUZZ_CHECK(HMAC(EVP_sha256(), secret, (int)strlen(secret), (const uint8_t *)msg,
                    t_len + 1 + len, mac, &mac_len) != NULL &&
                   mac_len == 32,
               "HMAC");
    dfd_hex_encode(mac, 32, out);
    out[64] = '\0';
}

static bool
lower_hex64(const char *s, size_t len)
{
    if (len != 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* The documented rules, from the header text alone. */
static gw_stripe_status
expected(const char *h, const char *payload, size_t len)
{
    size_t n = strlen(h), entries = 0;
    const char *t = NULL, *p = h;
    size_t t_len = 0;
    bool v1 = false, match = false;
    uint64_t tv = 0;
    const char *cands[GW_STRIPE_MAX_ENTRIES];
    size_t n_cand = 0;

    if (n == 0 || n > GW_STRIPE_MAX_HEADER)
        return GW_STRIPE_MALFORMED;
    for (;;) {
        size_t elen = strcspn(p, ",");
        const char *eq = memchr(p, '=', elen);

        if (++entries > GW_STRIPE_MAX_ENTRIES || eq == NULL || eq == p)
            return GW_STRIPE_MALFORMED;
        if (eq - p == 1 && p[0] == 't') {
            size_t vl = elen - 2;

            if (t != NULL || vl == 0 || vl > 19 || (eq[1] == '0' && vl > 1))
                return GW_STRIPE_MALFORMED;
            for (size_t i = 0; i < vl; i++) {
                if (eq[1 + i] < '0' || eq[1 + i] > '9')
                    return GW_STRIPE_MALFORMED;
                tv = tv * 10 + (uint64_t)(eq[1 + i] - '0');
            }
            if (tv > (uint64_t)INT64_MAX)
                return GW_STRIPE_MALFORMED;
            t = eq + 1;
            t_len = vl;
        } else if (eq - p == 2 && p[0] == 'v' && p[1] == '1') {
            v1 = true;
            if (lower_hex64(eq + 1, elen - 3))
                cands[n_cand++] = eq + 1;
        }
        if (p[elen] == '\0')
            break;
        p += elen + 1;
    }
    if (t == NULL)
        return GW_STRIPE_MALFORMED;
    if (!v1)
        return GW_STRIPE_NO_SIGNATURE;
    for (int s = 0; s < 2; s++) {
        char want[65];

        hmac_hex(secrets[s], t, t_len, payload, len, want);
        for (size_t i = 0; i < n_cand; i++)
            match |= memcmp(want, cands[i], 64) == 0;
    }
    if (!match)
        return GW_STRIPE_MISMATCH;
    if ((__int128)NOW - (__int128)tv > TOLERANCE || (__int128)tv - (__int128)NOW > TOLERANCE)
        return GW_STRIPE_TOO_OLD;
    return GW_STRIPE_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char header[GW_STRIPE_MAX_HEADER + 200];
    const char *in = (const char *)data + 1, *nl, *payload;
    size_t hlen, plen;
    gw_stripe_status st, want;

    if (size < 1 || size > 1 + GW_STRIPE_MAX_HEADER + 65536)
        return 0;
    nl = memchr(in, '\n', size - 1);
    if (nl == NULL)
        return 0;
    hlen = (size_t)(nl - in);
    payload = nl + 1;
    plen = size - 1 - hlen - 1;
    if (hlen > GW_STRIPE_MAX_HEADER + 8 || memchr(in, '\0', hlen) != NULL || plen > 65536)
        return 0; /* a header reaches the verifier as a C string */
    memcpy(header, in, hlen);
    header[hlen] = '\0';

    if (data[0] & 1) {
        /* sign the first t entry's text, right or wrong, and append the signature */
        const char *t = NULL;

        for (const char *p = header; *p;) {
            size_t elen = strcspn(p, ",");

            if (elen >= 2 && p[0] == 't' && p[1] == '=') {
                t = p + 2;
                if (elen - 2 <= 19 && hlen + 68 < sizeof header) {
                    char sig[65], tt[20];

                    memcpy(tt, t, elen - 2);
                    hmac_hex(secrets[(data[0] >> 1) & 1], tt, elen - 2, payload, plen, sig);
                    memcpy(header + hlen, ",v1=", 4);
                    memcpy(header + hlen + 4, sig, 65);
                    hlen += 68;
                }
                break;
            }
            p += elen + (p[elen] == ',');
        }
    }

    st = gw_stripe_verify(header, payload, plen, secrets, 2, NOW, TOLERANCE);
    want = expected(header, payload, plen);
    if (st != want)
        fprintf(stderr, "status %s, the grammar says %s\n", gw_stripe_status_text(st),
                gw_stripe_status_text(want));
    FUZZ_CHECK(st == want, "Stripe-Signature status differs from the documented grammar");
    return 0;
}
