/*
 * jwt.c: HS256 JSON Web Tokens for the gateway (see jwt.h).
 *
 * Everything a token carries is checked before it is trusted, in this order: total length,
 * exactly three dot-separated segments, the header (strict base64url, JSON without duplicate
 * names, alg HS256 and nothing we do not understand), the signature segment, the payload
 * segment, the HMAC (constant-time comparison), and only then, for gateway tokens, the claims.
 * The header is judged before the signature so that an algorithm-confusion attempt (alg none
 * with an empty signature, say) is reported as what it is; the payload JSON is parsed only once
 * the signature holds, so unauthenticated claims never reach the JSON parser.
 *
 * Verification allocates nothing itself: the token is bounded (GW_JWT_MAX_LEN), so every decoded
 * segment fits in a stack buffer. Only jansson allocates, and each parsed value is released.
 */
#include "jwt.h"

#include "core/dfd_core.h"

#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#define HS256_LEN 32
/* base64url of 32 bytes without padding: a signature segment has exactly this length */
#define HS256_B64_LEN 43
/*
 * A protected header larger than this is not one we would ever accept: the gateway's own is
 * 36 characters and the RFC 7520 examples (with a kid) 82. Bounding it keeps header parsing
 * cheap for tokens that are refused anyway.
 */
#define HEADER_B64_MAX 512
/* dfd_b64url_decode writes at most len * 3 / 4 bytes */
#define HEADER_RAW_MAX (HEADER_B64_MAX / 4 * 3)
#define PAYLOAD_RAW_MAX (GW_JWT_MAX_LEN / 4 * 3)
/* longest sub in bytes: gw_jwt_claims.sub keeps a terminator */
#define SUB_MAX (sizeof(((gw_jwt_claims *)0)->sub) - 1)

/* The one header the gateway writes; the text is fixed so every token it issues is identical
 * up to the payload. */
static const char issued_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

const char *
gw_jwt_status_text(gw_jwt_status st)
{
    switch (st) {
    case GW_JWT_OK:
        return "ok";
    case GW_JWT_MALFORMED:
        return "malformed token";
    case GW_JWT_BAD_HEADER:
        return "bad header";
    case GW_JWT_BAD_SIGNATURE:
        return "bad signature";
    case GW_JWT_BAD_CLAIMS:
        return "bad claims";
    case GW_JWT_EXPIRED:
        return "expired";
    case GW_JWT_NOT_YET_VALID:
        return "not yet valid";
    }
    return "unknown status";
}

bool
gw_hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len, uint8_t mac[32])
{
    /* OpenSSL wants a non-NULL pointer even for zero bytes; an empty key or message is legal
     * HMAC input (RFC 2104), so give it one rather than fail. */
    static const uint8_t nothing = 0;
    unsigned int mac_len = 0;

    if (mac == NULL || (key == NULL && key_len > 0) || (data == NULL && len > 0) ||
        key_len > INT_MAX)
        return false;
    if (HMAC(EVP_sha256(), key != NULL ? key : &nothing, (int)key_len,
             data != NULL ? data : &nothing, len, mac, &mac_len) == NULL ||
        mac_len != HS256_LEN) {
        OPENSSL_cleanse(mac, HS256_LEN);
        return false;
    }
    return true;
}

/* JSON string member equal to text (after JSON unescaping: "HS\u0032\u0035\u0036" is HS256). */
static bool
json_string_is(const json_t *v, const char *text)
{
    size_t n = strlen(text);

    return json_is_string(v) && json_string_length(v) == n &&
           memcmp(json_string_value(v), text, n) == 0;
}

/*
 * Judges the protected header segment. A header that does not decode or is not JSON is
 * MALFORMED; a JSON text that is not an acceptable header is BAD_HEADER.
 */
static gw_jwt_status
check_header(const char *b64, size_t b64_len, bool strict)
{
    uint8_t raw[HEADER_RAW_MAX];
    size_t raw_len = 0;
    json_error_t err;
    json_t *h;
    gw_jwt_status st = GW_JWT_BAD_HEADER;

    if (b64_len == 0 || b64_len > HEADER_B64_MAX || !dfd_b64url_decode(b64, b64_len, raw, &raw_len))
        return GW_JWT_MALFORMED;
    /* Duplicate names are refused: {"alg":"HS256","alg":"none"} must not mean whichever one
     * a parser happens to keep. Without JSON_ALLOW_NUL, "\u0000" cannot hide in a name. */
    h = json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES, &err);
    if (h == NULL)
        return GW_JWT_MALFORMED;
    if (!json_is_object(h) || !json_string_is(json_object_get(h, "alg"), "HS256"))
        goto done;
    if (strict) {
        /* exactly alg and typ: no kid, jku, jwk, x5u, crit, b64 ... to act on or be misled by */
        if (json_object_size(h) != 2 || !json_string_is(json_object_get(h, "typ"), "JWT"))
            goto done;
    } else if (json_object_get(h, "crit") != NULL) {
        /* crit names extensions the verifier must understand (RFC 7515 section 4.1.11); we
         * understand none, so any crit means the token is not for us. */
        goto done;
    }
    st = GW_JWT_OK;
done:
    json_decref(h);
    return st;
}

/* A token taken apart, everything checked except the MAC. */
typedef struct jws_parts {
    const char *signing_input; /* the bytes the MAC covers */
    size_t signing_input_len;
    uint8_t sig[HS256_LEN];
    uint8_t payload[PAYLOAD_RAW_MAX]; /* decoded payload (not filled for detached content) */
    size_t payload_len;
    char detached_input[GW_JWT_MAX_LEN]; /* rebuilt signing input for detached content */
} jws_parts;

static gw_jwt_status
split_token(const char *token, size_t len, bool strict, const char *detached, size_t detached_len,
            jws_parts *p)
{
    const char *dot1, *dot2, *pay, *sig;
    size_t hdr_len, pay_len, sig_len;
    size_t sig_out = 0;
    gw_jwt_status st;

    /* Refused unread: nothing longer is worth the work of decoding. */
    if (token == NULL || len == 0 || len > GW_JWT_MAX_LEN)
        return GW_JWT_MALFORMED;
    dot1 = memchr(token, '.', len);
    if (dot1 == NULL)
        return GW_JWT_MALFORMED;
    dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (dot2 == NULL)
        return GW_JWT_MALFORMED;
    if (memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
        return GW_JWT_MALFORMED; /* JWE (five segments) or garbage */
    hdr_len = (size_t)(dot1 - token);
    pay = dot1 + 1;
    pay_len = (size_t)(dot2 - pay);
    sig = dot2 + 1;
    sig_len = len - (size_t)(sig - token);

    st = check_header(token, hdr_len, strict);
    if (st != GW_JWT_OK)
        return st;

    if (sig_len != HS256_B64_LEN || !dfd_b64url_decode(sig, sig_len, p->sig, &sig_out) ||
        sig_out != HS256_LEN)
        return GW_JWT_MALFORMED;

    if (detached != NULL) {
        /* RFC 7515 appendix F: the compact form travels with an empty payload segment and the
         * signing input is rebuilt from the content received separately. A non-empty segment
         * here would leave two candidate payloads, so it is refused. */
        size_t enc_len;

        if (pay_len != 0 || detached_len > GW_JWT_MAX_LEN)
            return GW_JWT_MALFORMED;
        enc_len = dfd_b64url_len(detached_len);
        /* the rebuilt input obeys the same bound as an attached token would */
        if (hdr_len + 1 + enc_len > sizeof p->detached_input)
            return GW_JWT_MALFORMED;
        memcpy(p->detached_input, token, hdr_len + 1);
        dfd_b64url_encode((const uint8_t *)detached, detached_len, p->detached_input + hdr_len + 1);
        p->signing_input = p->detached_input;
        p->signing_input_len = hdr_len + 1 + enc_len;
        p->payload_len = 0;
        return GW_JWT_OK;
    }

    /* An empty payload segment without detached content is the detached form received without
     * its content: nothing to verify against. */
    if (pay_len == 0 || !dfd_b64url_decode(pay, pay_len, p->payload, &p->payload_len))
        return GW_JWT_MALFORMED;
    /* The MAC covers the segments exactly as received, never a re-encoding of what we parsed. */
    p->signing_input = token;
    p->signing_input_len = (size_t)(dot2 - token);
    return GW_JWT_OK;
}

static bool
mac_matches(const jws_parts *p, const uint8_t *key, size_t key_len)
{
    uint8_t mac[HS256_LEN];
    bool ok;

    /* An empty key would let anyone sign; treat it as no key at all. */
    if (key == NULL || key_len == 0)
        return false;
    ok = gw_hmac_sha256(key, key_len, p->signing_input, p->signing_input_len, mac) &&
         dfd_ct_equal(mac, p->sig, HS256_LEN);
    /* the expected MAC of a forged token is as good as a valid signature for it: do not leave
     * it on the stack */
    OPENSSL_cleanse(mac, sizeof mac);
    return ok;
}

gw_jwt_status
gw_jws_verify_hs256(const char *token, size_t len, const uint8_t *key, size_t key_len,
                    bool strict_header, const char *detached_payload, size_t detached_len)
{
    jws_parts p;
    gw_jwt_status st = split_token(token, len, strict_header, detached_payload, detached_len, &p);

    if (st != GW_JWT_OK)
        return st;
    return mac_matches(&p, key, key_len) ? GW_JWT_OK : GW_JWT_BAD_SIGNATURE;
}

/* a + b for b >= 0, stopping at INT64_MAX instead of overflowing (exp + leeway, now + leeway) */
static int64_t
add_saturating(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static gw_jwt_status
read_claims(const uint8_t *payload, size_t len, int64_t now, int64_t leeway, gw_jwt_claims *out)
{
    json_error_t err;
    json_t *c, *sub, *iat, *exp, *nbf;
    int64_t iat_v, exp_v;
    size_t sub_len;
    gw_jwt_status st = GW_JWT_BAD_CLAIMS;

    c = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &err);
    if (c == NULL)
        return GW_JWT_MALFORMED;
    if (!json_is_object(c))
        goto done;
    sub = json_object_get(c, "sub");
    iat = json_object_get(c, "iat");
    exp = json_object_get(c, "exp");
    nbf = json_object_get(c, "nbf");
    /* json_is_integer is false for 1.5, 1.0, 1e3 and "1": NumericDate here means whole seconds
     * written as a JSON integer, the way the gateway issues them. */
    if (!json_is_string(sub) || !json_is_integer(iat) || !json_is_integer(exp) ||
        (nbf != NULL && !json_is_integer(nbf)))
        goto done;
    sub_len = json_string_length(sub);
    if (sub_len == 0 || sub_len > SUB_MAX)
        goto done;
    iat_v = json_integer_value(iat);
    exp_v = json_integer_value(exp);
    /* a token that expires no later than it was issued was never valid: not a clock problem */
    if (exp_v <= iat_v)
        goto done;

    if (now > add_saturating(exp_v, leeway))
        st = GW_JWT_EXPIRED;
    else if (nbf != NULL && add_saturating(now, leeway) < json_integer_value(nbf))
        st = GW_JWT_NOT_YET_VALID;
    else if (iat_v > add_saturating(now, leeway))
        st = GW_JWT_NOT_YET_VALID;
    else {
        memcpy(out->sub, json_string_value(sub), sub_len);
        out->sub[sub_len] = '\0';
        out->iat = iat_v;
        out->exp = exp_v;
        st = GW_JWT_OK;
    }
done:
    json_decref(c);
    return st;
}

gw_jwt_status
gw_jwt_verify(const char *token, size_t len, const uint8_t *key, size_t key_len,
              const uint8_t *prev_key, size_t prev_key_len, int64_t now, int64_t leeway,
              gw_jwt_claims *out)
{
    jws_parts p;
    gw_jwt_claims claims;
    bool previous = false;
    gw_jwt_status st;

    memset(&claims, 0, sizeof claims);
    if (out != NULL)
        memset(out, 0, sizeof *out);
    /* A negative leeway is a configuration mistake; it is read as no tolerance at all rather
     * than as a shortened lifetime nobody documented. */
    if (leeway < 0)
        leeway = 0;

    st = split_token(token, len, true, NULL, 0, &p);
    if (st != GW_JWT_OK)
        return st;
    /* current secret first: during a rotation most tokens are already signed with it */
    if (!mac_matches(&p, key, key_len)) {
        if (prev_key == NULL || !mac_matches(&p, prev_key, prev_key_len))
            return GW_JWT_BAD_SIGNATURE;
        previous = true;
    }
    st = read_claims(p.payload, p.payload_len, now, leeway, &claims);
    if (st != GW_JWT_OK)
        return st;
    claims.signed_with_previous = previous;
    if (out != NULL)
        *out = claims;
    return GW_JWT_OK;
}

char *
gw_jwt_issue(const uint8_t *key, size_t key_len, const char *sub, int64_t iat, int64_t ttl_seconds)
{
    /* Large enough for the longest payload: 63 bytes of sub, each escaped as \u00XX at worst,
     * plus the member names and two 20-digit integers. */
    char payload[512];
    size_t sub_len, payload_len, hdr_b64_len, pay_b64_len, total;
    uint8_t mac[HS256_LEN];
    json_t *c = NULL;
    char *token = NULL;

    if (key == NULL || key_len == 0 || sub == NULL || ttl_seconds <= 0 ||
        iat > INT64_MAX - ttl_seconds)
        return NULL;
    /* the same bounds the verifier applies, so we never issue a token we would refuse */
    sub_len = strnlen(sub, SUB_MAX + 1);
    if (sub_len == 0 || sub_len > SUB_MAX)
        return NULL;

    /* jansson keeps insertion order, so the payload reads sub, iat, exp; json_stringn refuses
     * invalid UTF-8 (json_object_set_new then fails). */
    c = json_object();
    if (c == NULL || json_object_set_new(c, "sub", json_stringn(sub, sub_len)) != 0 ||
        json_object_set_new(c, "iat", json_integer(iat)) != 0 ||
        json_object_set_new(c, "exp", json_integer(iat + ttl_seconds)) != 0)
        goto done;
    payload_len = json_dumpb(c, payload, sizeof payload, JSON_COMPACT);
    if (payload_len == 0 || payload_len > sizeof payload)
        goto done;

    hdr_b64_len = dfd_b64url_len(sizeof issued_header - 1);
    pay_b64_len = dfd_b64url_len(payload_len);
    total = hdr_b64_len + 1 + pay_b64_len + 1 + HS256_B64_LEN;
    if (total > GW_JWT_MAX_LEN)
        goto done;
    token = malloc(total + 1);
    if (token == NULL)
        goto done;
    dfd_b64url_encode((const uint8_t *)issued_header, sizeof issued_header - 1, token);
    token[hdr_b64_len] = '.';
    dfd_b64url_encode((const uint8_t *)payload, payload_len, token + hdr_b64_len + 1);
    if (!gw_hmac_sha256(key, key_len, token, hdr_b64_len + 1 + pay_b64_len, mac)) {
        free(token);
        token = NULL;
        goto done;
    }
    token[hdr_b64_len + 1 + pay_b64_len] = '.';
    dfd_b64url_encode(mac, HS256_LEN, token + hdr_b64_len + 1 + pay_b64_len + 1);
    token[total] = '\0';
done:
    json_decref(c);
    return token;
}
