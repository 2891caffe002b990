/*
 * fuzz_jwt: session tokens (gw_jwt_verify, gw_jws_verify_hs256, gw_jwt_issue in jwt.c).
 *
 * The first input byte picks a mode:
 *   0  the rest is a token as received: verified under the current and previous secrets, and
 *      with the vector-style (non-strict) header rule;
 *   1  the rest is "<header JSON>\n<claims JSON>": the harness signs it itself with OpenSSL's
 *      HMAC (current or previous secret, by bit 2 of the first byte), so the fuzzer reaches
 *      the header and claim rules a forged MAC never would;
 *   2  the rest is "<sub>": a token issued by gw_jwt_issue must verify to the same claims;
 *   3  the rest is "<token>\n<content>": RFC 7515 appendix F detached content.
 * Invariants: in mode 1 the status equals what the documented rules give when applied here to
 * jansson's reading of the two JSON texts (alg HS256 and typ JWT only; sub a 1..63 byte
 * string; iat and exp integers with exp > iat; expiry and not-before with the leeway); an
 * accepted token always satisfies those rules; an issued token verifies.
 */
#include "../extension/core/dfd_core.h"
#include "../gateway/jwt.h"
#include "fuzz_check.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <string.h>

#define NOW INT64_C(1700000000)
#define LEEWAY 60

static const uint8_t key[] = "fuzz current session secret, 32+ bytes long";
static const uint8_t prev_key[] = "fuzz previous session secret, 32+ bytes";
#define KEY_LEN (sizeof key - 1)
#define PREV_LEN (sizeof prev_key - 1)

static char token[3 * GW_JWT_MAX_LEN];

/* The claim rules, applied to jansson's reading (jwt.h, docs/gateway.md). */
static gw_jwt_status
expected_status(const char *hdr, size_t hdr_len, const char *pay, size_t pay_len,
                gw_jwt_claims *want)
{
    json_t *h, *c, *sub, *iat, *exp, *nbf;
    gw_jwt_status st = GW_JWT_BAD_CLAIMS;

    /* the header is judged first, then the payload segment (jwt.c's split_token order) */
    if (hdr_len == 0)
        return GW_JWT_MALFORMED;
    h = json_loadb(hdr, hdr_len, JSON_REJECT_DUPLICATES, NULL);
    if (h == NULL)
        return GW_JWT_MALFORMED;
    if (!json_is_object(h) || json_object_size(h) != 2 ||
        !json_is_string(json_object_get(h, "alg")) ||
        strcmp(json_string_value(json_object_get(h, "alg")), "HS256") != 0 ||
        json_string_length(json_object_get(h, "alg")) != 5 ||
        !json_is_string(json_object_get(h, "typ")) ||
        strcmp(json_string_value(json_object_get(h, "typ")), "JWT") != 0 ||
        json_string_length(json_object_get(h, "typ")) != 3) {
        json_decref(h);
        return GW_JWT_BAD_HEADER;
    }
    json_decref(h);
    if (pay_len == 0)
        return GW_JWT_MALFORMED;
    c = json_loadb(pay, pay_len, JSON_REJECT_DUPLICATES, NULL);
    if (c == NULL)
        return GW_JWT_MALFORMED;
    sub = json_object_get(c, "sub");
    iat = json_object_get(c, "iat");
    exp = json_object_get(c, "exp");
    nbf = json_object_get(c, "nbf");
    if (json_is_object(c) && json_is_string(sub) && json_is_integer(iat) && json_is_integer(exp) &&
        (nbf == NULL || json_is_integer(nbf)) && json_string_length(sub) >= 1 &&
        json_string_length(sub) <= 63 && json_integer_value(exp) > json_integer_value(iat)) {
        /* with 128-bit sums, so that no overflow can hide in the expectation */
        __int128 now = NOW, lw = LEEWAY;

        if (now > (__int128)json_integer_value(exp) + lw)
            st = GW_JWT_EXPIRED;
        else if (nbf != NULL && now + lw < json_integer_value(nbf))
            st = GW_JWT_NOT_YET_VALID;
        else if (json_integer_value(iat) > now + lw)
            st = GW_JWT_NOT_YET_VALID;
        else {
            st = GW_JWT_OK;
            memcpy(want->sub, json_string_value(sub), json_string_length(sub) + 1);
            want->iat = json_integer_value(iat);
            want->exp = json_integer_value(exp);
        }
    }
    json_decref(c);
    return st;
}

static void
check_accepted(const gw_jwt_claims *c)
{
    size_t n = strnlen(c->sub, sizeof c->sub);

    FUZZ_CHECK(n >= 1 && n < sizeof c->sub, "accepted sub length");
    FUZZ_CHECK(c->exp > c->iat, "accepted a token with exp <= iat");
    FUZZ_CHECK(NOW <= c->exp || NOW - c->exp <= LEEWAY, "accepted an expired token");
    FUZZ_CHECK(c->iat <= NOW + LEEWAY, "accepted a token issued in the future");
}

static void
raw_token(const char *t, size_t len)
{
    gw_jwt_claims c;
    gw_jwt_status st = gw_jwt_verify(t, len, key, KEY_LEN, prev_key, PREV_LEN, NOW, LEEWAY, &c);

    if (st == GW_JWT_OK) {
        check_accepted(&c);
        FUZZ_CHECK(gw_jws_verify_hs256(t, len, c.signed_with_previous ? prev_key : key,
                                       c.signed_with_previous ? PREV_LEN : KEY_LEN, true, NULL,
                                       0) == GW_JWT_OK,
                   "a verified JWT's signature does not verify as a JWS");
    }
    (void)gw_jws_verify_hs256(t, len, key, KEY_LEN, false, NULL, 0);
}

static void
signed_here(const char *in, size_t len, bool use_prev)
{
    const char *nl = memchr(in, '\n', len);
    const char *hdr = in, *pay;
    size_t hdr_len, pay_len, h64, p64, at;
    unsigned int mac_len = 0;
    uint8_t mac[32];
    gw_jwt_claims got, want;
    gw_jwt_status st, exp_st;

    if (nl == NULL)
        return;
    hdr_len = (size_t)(nl - in);
    pay = nl + 1;
    pay_len = len - hdr_len - 1;
    h64 = dfd_b64url_len(hdr_len);
    p64 = dfd_b64url_len(pay_len);
    if (h64 + p64 + 2 + 43 >= sizeof token)
        return;
    dfd_b64url_encode((const uint8_t *)hdr, hdr_len, token);
    token[h64] = '.';
    dfd_b64url_encode((const uint8_t *)pay, pay_len, token + h64 + 1);
    at = h64 + 1 + p64;
    FUZZ_CHECK(HMAC(EVP_sha256(), use_prev ? prev_key : key, (int)(use_prev ? PREV_LEN : KEY_LEN),
                    (const uint8_t *)token, at, mac, &mac_len) != NULL &&
                   mac_len == 32,
               "HMAC");
    token[at] = '.';
    dfd_b64url_encode(mac, 32, token + at + 1);
    at += 1 + 43;

    memset(&want, 0, sizeof want);
    st = gw_jwt_verify(token, at, key, KEY_LEN, prev_key, PREV_LEN, NOW, LEEWAY, &got);
    /* the size limits come first and are not part of the claim rules */
    if (at > GW_JWT_MAX_LEN || h64 > 512) {
        FUZZ_CHECK(st == GW_JWT_MALFORMED, "an oversized token was not refused as malformed");
        return;
    }
    exp_st = expected_status(hdr, hdr_len, pay, pay_len, &want);
    if (st != exp_st)
        fprintf(stderr, "status %s, the rules say %s\n", gw_jwt_status_text(st),
                gw_jwt_status_text(exp_st));
    FUZZ_CHECK(st == exp_st, "jwt status differs from the documented rules");
    if (st == GW_JWT_OK) {
        check_accepted(&got);
        FUZZ_CHECK(strcmp(got.sub, want.sub) == 0 && got.iat == want.iat && got.exp == want.exp,
                   "claims differ from the payload");
        FUZZ_CHECK(got.signed_with_previous == use_prev, "which secret signed");
    }
}

static void
issued(const uint8_t *in, size_t len)
{
    char sub[80];
    int64_t iat, ttl;
    char *t;
    gw_jwt_claims c;

    if (len < 2 || len - 2 >= sizeof sub)
        return;
    iat = NOW - (int64_t)in[0] * 7;
    ttl = 1 + (int64_t)in[1] * 3;
    memcpy(sub, in + 2, len - 2);
    sub[len - 2] = '\0';
    t = gw_jwt_issue(key, KEY_LEN, sub, iat, ttl);
    if (t == NULL) {
        json_t *s = json_string(sub);

        /* refused only for an empty or long sub, or one that is not UTF-8 */
        FUZZ_CHECK(strlen(sub) == 0 || strlen(sub) > 63 || s == NULL, "issue refused a good sub");
        json_decref(s);
        return;
    }
    FUZZ_CHECK(gw_jwt_verify(t, strlen(t), key, KEY_LEN, NULL, 0, NOW, LEEWAY, &c) ==
                   (NOW > iat + ttl + LEEWAY ? GW_JWT_EXPIRED : GW_JWT_OK),
               "an issued token does not verify as issued");
    if (NOW <= iat + ttl + LEEWAY)
        FUZZ_CHECK(strcmp(c.sub, sub) == 0 && c.iat == iat && c.exp == iat + ttl,
                   "an issued token verifies to other claims");
    free(t);
}

static void
detached(const char *in, size_t len)
{
    const char *nl = memchr(in, '\n', len);

    if (nl == NULL)
        return;
    (void)gw_jws_verify_hs256(in, (size_t)(nl - in), key, KEY_LEN, false, nl + 1,
                              len - (size_t)(nl - in) - 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *rest = (const char *)data + 1;

    if (size < 1 || size > 2 * GW_JWT_MAX_LEN)
        return 0;
    switch (data[0] & 3) {
    case 0:
        raw_token(rest, size - 1);
        break;
    case 1:
        signed_here(rest, size - 1, (data[0] & 4) != 0);
        break;
    case 2:
        issued(data + 1, size - 1);
        break;
    case 3:
        detached(rest, size - 1);
        break;
    }
    return 0;
}
