/*
 * test_jwt.c: tests of jwt.c against published vectors (RFC 7515 A.1, RFC 7520 section 4,
 * RFC 4231) and the gateway's own rules (strict header, claims, bounds, key rotation).
 *
 *   test_jwt VECTOR_DIR      (VECTOR_DIR = testdata/jwt)
 *
 * Prints one line per failed check and finally "jwt: N passed, N failed"; exits non-zero when
 * anything failed. Every token handed to a verifier is first copied into a heap block of
 * exactly its length, without a terminator, so AddressSanitizer catches any read past len.
 */
#include "jwt.h"

#include "core/dfd_core.h"
#include "core/test_check.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *vector_dir;

static void
expect(gw_jwt_status got, gw_jwt_status want, const char *what)
{
    CHECK(got == want, "%s: got \"%s\", want \"%s\"", what, gw_jwt_status_text(got),
          gw_jwt_status_text(want));
}

/* ---- helpers ----------------------------------------------------------------------------- */

/* base64url of n bytes, malloc'd and terminated */
static char *
b64(const void *data, size_t n)
{
    char *s = xmalloc(dfd_b64url_len(n) + 1);

    dfd_b64url_encode(data, n, s);
    s[dfd_b64url_len(n)] = '\0';
    return s;
}

static char *
concat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = xmalloc(la + lb + lc + 3);

    memcpy(s, a, la);
    s[la] = '.';
    memcpy(s + la + 1, b, lb);
    s[la + 1 + lb] = '.';
    memcpy(s + la + 2 + lb, c, lc);
    s[la + lb + lc + 2] = '\0';
    return s;
}

/* "<hdr>.<pay>.<HMAC over exactly these two segments>", whatever the segments contain */
static char *
sign_segments(const char *hdr_seg, const char *pay_seg, const uint8_t *key, size_t key_len)
{
    size_t lh = strlen(hdr_seg), lp = strlen(pay_seg);
    char *input = xmalloc(lh + lp + 2);
    uint8_t mac[32];
    char *sig, *tok;

    memcpy(input, hdr_seg, lh);
    input[lh] = '.';
    memcpy(input + lh + 1, pay_seg, lp + 1);
    if (!gw_hmac_sha256(key, key_len, input, lh + 1 + lp, mac)) {
        fprintf(stderr, "gw_hmac_sha256 failed\n");
        exit(2);
    }
    sig = b64(mac, sizeof mac);
    tok = concat3(hdr_seg, pay_seg, sig);
    free(sig);
    free(input);
    return tok;
}

/* token from header and payload JSON texts, each base64url encoded as given */
static char *
make_token(const char *hdr_json, const char *pay_json, const uint8_t *key, size_t key_len)
{
    char *h = b64(hdr_json, strlen(hdr_json)), *p = b64(pay_json, strlen(pay_json));
    char *tok = sign_segments(h, p, key, key_len);

    free(h);
    free(p);
    return tok;
}

static gw_jwt_status
jws(const char *tok, size_t len, const uint8_t *key, size_t key_len, bool strict,
    const char *detached, size_t detached_len)
{
    char *copy = xmalloc(len);
    gw_jwt_status st;

    if (len > 0)
        memcpy(copy, tok, len);
    st = gw_jws_verify_hs256(copy, len, key, key_len, strict, detached, detached_len);
    free(copy);
    return st;
}

static gw_jwt_status
jwt(const char *tok, size_t len, const uint8_t *key, size_t key_len, const uint8_t *prev,
    size_t prev_len, int64_t now, int64_t leeway, gw_jwt_claims *out)
{
    char *copy = xmalloc(len);
    gw_jwt_status st;

    if (len > 0)
        memcpy(copy, tok, len);
    st = gw_jwt_verify(copy, len, key, key_len, prev, prev_len, now, leeway, out);
    free(copy);
    return st;
}

/* decoded base64url segment, malloc'd and terminated (NULL if it does not decode) */
static char *
unb64(const char *s, size_t len, size_t *out_len)
{
    char *out = xmalloc(len * 3 / 4 + 1);
    size_t n = 0;

    if (!dfd_b64url_decode(s, len, (uint8_t *)out, &n)) {
        free(out);
        return NULL;
    }
    out[n] = '\0';
    if (out_len != NULL)
        *out_len = n;
    return out;
}

static json_t *
load_vector(const char *name)
{
    char path[1024];
    json_error_t err;
    json_t *v;

    snprintf(path, sizeof path, "%s/%s", vector_dir, name);
    v = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    CHECK(v != NULL, "%s: cannot load (%s, line %d)", name, err.text, err.line);
    return v;
}

/* member at a dotted path ("signing.sig"); NULL if any step is missing */
static json_t *
at(json_t *v, const char *path)
{
    char buf[256], *save = NULL, *part;

    snprintf(buf, sizeof buf, "%s", path);
    for (part = strtok_r(buf, ".", &save); part != NULL && v != NULL;
         part = strtok_r(NULL, ".", &save))
        v = json_object_get(v, part);
    return v;
}

static const char *
str_at(json_t *v, const char *path)
{
    const char *s = json_string_value(at(v, path));

    CHECK(s != NULL, "vector member %s missing or not a string", path);
    return s != NULL ? s : "";
}

/* key bytes from a JWK "k" (base64url); returns its length, 0 on failure */
static size_t
jwk_key(json_t *jwk, uint8_t *out, size_t cap)
{
    const char *k = json_string_value(json_object_get(jwk, "k"));
    size_t n = 0;

    if (k == NULL || strlen(k) * 3 / 4 > cap || !dfd_b64url_decode(k, strlen(k), out, &n))
        return 0;
    return n;
}

static bool
hex_bytes(const char *hex, uint8_t *out, size_t cap, size_t *n)
{
    size_t len = strlen(hex);

    if (len % 2 != 0 || len / 2 > cap)
        return false;
    *n = len / 2;
    return dfd_hex_decode(hex, len, out, *n);
}

/* ---- fixed material for the gateway's own cases ----------------------------------------- */

static const uint8_t key1[] = "defendable-test-key-0123456789abcdef"; /* 36 bytes */
static const uint8_t key2[] = "another-key-for-rotation-tests-0123456";
#define KEY1 key1, sizeof key1 - 1
#define KEY2 key2, sizeof key2 - 1

static const char good_hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char uuid[] = "3f2b8c1e-9d4a-4e6b-8a7c-1b2d3e4f5a6b";
#define T0 INT64_C(1700000000)

/* ---- status texts ------------------------------------------------------------------------ */

static void
test_status_text(void)
{
    static const gw_jwt_status all[] = {
        GW_JWT_OK,         GW_JWT_MALFORMED, GW_JWT_BAD_HEADER,    GW_JWT_BAD_SIGNATURE,
        GW_JWT_BAD_CLAIMS, GW_JWT_EXPIRED,   GW_JWT_NOT_YET_VALID,
    };
    size_t n = sizeof all / sizeof all[0];

    for (size_t i = 0; i < n; i++) {
        const char *t = gw_jwt_status_text(all[i]);

        CHECK(t != NULL && *t != '\0', "status text %zu empty", i);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(t, gw_jwt_status_text(all[j])) != 0, "status texts %zu and %zu equal", i,
                  j);
    }
    CHECK(strcmp(gw_jwt_status_text(GW_JWT_EXPIRED), "expired") == 0, "text of EXPIRED");
    CHECK(strcmp(gw_jwt_status_text(GW_JWT_BAD_SIGNATURE), "bad signature") == 0,
          "text of BAD_SIGNATURE");
}

/* ---- RFC 4231 ---------------------------------------------------------------------------- */

static void
test_rfc4231(void)
{
    json_t *v = load_vector("rfc4231.json"), *cases;
    size_t i;
    json_t *c;
    uint8_t mac[32];

    if (v == NULL)
        return;
    cases = json_object_get(v, "cases");
    CHECK(json_array_size(cases) == 7, "rfc4231: expected 7 cases");
    json_array_foreach(cases, i, c)
    {
        uint8_t key[256], data[256], want[32];
        size_t key_len, data_len, want_len;
        json_t *trunc = json_object_get(c, "truncate_to_bits");
        size_t cmp_len;

        if (!hex_bytes(str_at(c, "key_hex"), key, sizeof key, &key_len) ||
            !hex_bytes(str_at(c, "data_hex"), data, sizeof data, &data_len) ||
            !hex_bytes(str_at(c, "hmac_sha256"), want, sizeof want, &want_len)) {
            CHECK(false, "rfc4231 case %zu: bad hex in vector", i + 1);
            continue;
        }
        CHECK(key_len == (size_t)json_integer_value(json_object_get(c, "key_length")),
              "rfc4231 case %zu: key length", i + 1);
        /* case 5: the RFC publishes only the leftmost 128 bits */
        cmp_len = trunc != NULL ? (size_t)json_integer_value(trunc) / 8 : 32;
        CHECK(want_len == cmp_len, "rfc4231 case %zu: expected MAC length", i + 1);
        CHECK(gw_hmac_sha256(key, key_len, data, data_len, mac) && memcmp(mac, want, cmp_len) == 0,
              "rfc4231 case %zu: HMAC-SHA-256", i + 1);
    }
    json_decref(v);

    /* Own check (value from Python's hmac): empty key and empty message are legal HMAC input. */
    {
        uint8_t want[32];
        size_t n;

        hex_bytes("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", want,
                  sizeof want, &n);
        CHECK(gw_hmac_sha256(NULL, 0, NULL, 0, mac) && memcmp(mac, want, 32) == 0,
              "HMAC-SHA-256 of empty key and message");
        CHECK(!gw_hmac_sha256(NULL, 5, "x", 1, mac), "HMAC with NULL key of length 5 refused");
    }
}

/* ---- RFC 7515 appendix A.1 --------------------------------------------------------------- */

static bool
octets(json_t *arr, uint8_t *out, size_t cap, size_t *n)
{
    size_t i;
    json_t *x;

    if (json_array_size(arr) > cap)
        return false;
    json_array_foreach(arr, i, x)
    {
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 255)
            return false;
        out[i] = (uint8_t)json_integer_value(x);
    }
    *n = json_array_size(arr);
    return true;
}

static void
test_rfc7515(void)
{
    json_t *v = load_vector("rfc7515-a1-hs256.json"), *neg;
    uint8_t key[64], jwk[64], hdr[128], pay[128], sig_want[32], mac[32];
    size_t key_len = 0, jwk_len, hdr_len = 0, pay_len = 0, sig_len = 0, i;
    const char *compact, *si;
    char *s, *expected_compact;
    gw_jwt_claims cl;
    json_t *c;

    if (v == NULL)
        return;
    CHECK(hex_bytes(str_at(v, "key_hex"), key, sizeof key, &key_len) && key_len == 64,
          "A.1: key_hex");
    jwk_len = jwk_key(at(v, "jwk"), jwk, sizeof jwk);
    CHECK(jwk_len == key_len && memcmp(jwk, key, key_len) == 0, "A.1: JWK k equals key_hex");

    /* the vector's own pieces fit together: octets -> base64url -> signing input */
    CHECK(octets(at(v, "protected_header_octets"), hdr, sizeof hdr, &hdr_len),
          "A.1: header octets");
    CHECK(octets(at(v, "payload_octets"), pay, sizeof pay, &pay_len), "A.1: payload octets");
    s = b64(hdr, hdr_len);
    CHECK(strcmp(s, str_at(v, "protected_header_b64u")) == 0, "A.1: header base64url");
    free(s);
    s = b64(pay, pay_len);
    CHECK(strcmp(s, str_at(v, "payload_b64u")) == 0, "A.1: payload base64url");
    free(s);

    /* the exact signature bytes from signing input and key */
    si = str_at(v, "signing_input");
    CHECK(octets(at(v, "signature_octets"), sig_want, sizeof sig_want, &sig_len) && sig_len == 32,
          "A.1: signature octets");
    CHECK(gw_hmac_sha256(key, key_len, si, strlen(si), mac) && memcmp(mac, sig_want, 32) == 0,
          "A.1: HMAC of the signing input equals the RFC signature");
    s = b64(mac, sizeof mac);
    CHECK(strcmp(s, str_at(v, "signature_b64u")) == 0, "A.1: signature base64url");
    compact = str_at(v, "compact");
    expected_compact = xmalloc(strlen(si) + strlen(s) + 2);
    sprintf(expected_compact, "%s.%s", si, s);
    CHECK(strcmp(compact, expected_compact) == 0, "A.1: compact = signing input . signature");
    free(expected_compact);
    free(s);

    /* The header is {"typ":"JWT",CRLF SP "alg":"HS256"}: exactly alg and typ, with JSON
     * whitespace, so the strict mode accepts it too. */
    expect(jws(compact, strlen(compact), key, key_len, false, NULL, 0), GW_JWT_OK,
           "A.1 compact, non-strict");
    expect(jws(compact, strlen(compact), key, key_len, true, NULL, 0), GW_JWT_OK,
           "A.1 compact, strict");
    expect(jws(compact, strlen(compact), key1, sizeof key1 - 1, false, NULL, 0),
           GW_JWT_BAD_SIGNATURE, "A.1 compact, other key");

    /*
     * As a gateway JWT the A.1 token has a valid strict header and signature, but its claims
     * are iss, exp and a private claim: no sub and no iat. Claim types are judged before the
     * clock, so it is BAD_CLAIMS whatever "now" is: before exp (2011-03-22T18:43:00Z) and after
     * it alike. EXPIRED would be wrong: the token is not a gateway token at all, and calling it
     * merely expired would suggest that a fresh one of the same shape would pass.
     */
    expect(jwt(compact, strlen(compact), key, key_len, NULL, 0, 1300819380 - 100, 0, &cl),
           GW_JWT_BAD_CLAIMS, "A.1 as gateway JWT before exp");
    expect(jwt(compact, strlen(compact), key, key_len, NULL, 0, T0, 60, &cl), GW_JWT_BAD_CLAIMS,
           "A.1 as gateway JWT after exp");
    /* the signature is checked before the claims: with a wrong key the payload is never read */
    expect(jwt(compact, strlen(compact), KEY1, NULL, 0, 1300819380 - 100, 0, &cl),
           GW_JWT_BAD_SIGNATURE, "A.1 as gateway JWT, wrong key");
    expect(jwt(compact, strlen(compact), KEY1, key, key_len, 1300819380 - 100, 0, &cl),
           GW_JWT_BAD_CLAIMS, "A.1 as gateway JWT, RFC key as previous key");

    /*
     * Own extension of A.1: the RFC header segment exactly as published (CRLF and all) with a
     * payload that has the gateway's claims and A.1's exp, signed with the A.1 key. This is
     * where EXPIRED shows up: valid at exp, expired one second later.
     */
    {
        static const char joe[] = "{\"sub\":\"joe\",\"iat\":1300819000,\"exp\":1300819380}";
        char *p = b64(joe, strlen(joe));
        char *tok = sign_segments(str_at(v, "protected_header_b64u"), p, key, key_len);

        expect(jwt(tok, strlen(tok), key, key_len, NULL, 0, 1300819380, 0, &cl), GW_JWT_OK,
               "A.1 header with gateway claims at exp");
        CHECK(strcmp(cl.sub, "joe") == 0 && cl.iat == 1300819000 && cl.exp == 1300819380 &&
                  !cl.signed_with_previous,
              "A.1 header with gateway claims: claims returned");
        expect(jwt(tok, strlen(tok), key, key_len, NULL, 0, 1300819381, 0, &cl), GW_JWT_EXPIRED,
               "A.1 header with gateway claims one second after exp");
        free(tok);
        free(p);
    }

    /*
     * The derived negative cases, each with the status it must get and why:
     *  0. last signature character k -> l: 43 characters carry 256 bits plus 2 spare bits,
     *     which must be zero; 'l' sets one, so the segment is not canonical base64url and the
     *     token is MALFORMED before any MAC is computed.
     *  1. payload re-encoded without CRLF: same claims, different bytes, BAD_SIGNATURE
     *     (the MAC covers the segments as received).
     *  2. alg none with an empty signature: BAD_HEADER (the header is judged first).
     */
    neg = at(v, "derived_negative_cases_not_from_rfc");
    CHECK(json_array_size(neg) == 3, "A.1: expected 3 derived negative cases");
    json_array_foreach(neg, i, c)
    {
        static const gw_jwt_status want[] = {GW_JWT_MALFORMED, GW_JWT_BAD_SIGNATURE,
                                             GW_JWT_BAD_HEADER};
        const char *t = str_at(c, "compact");
        char what[160];

        if (i >= 3)
            break;
        CHECK(json_is_false(json_object_get(c, "valid")), "A.1 negative %zu marked invalid", i);
        snprintf(what, sizeof what, "A.1 negative %zu (%s), non-strict", i, str_at(c, "desc"));
        expect(jws(t, strlen(t), key, key_len, false, NULL, 0), want[i], what);
        snprintf(what, sizeof what, "A.1 negative %zu, strict", i);
        expect(jws(t, strlen(t), key, key_len, true, NULL, 0), want[i], what);
        snprintf(what, sizeof what, "A.1 negative %zu, gateway JWT", i);
        expect(jwt(t, strlen(t), key, key_len, NULL, 0, 1300819000, 0, &cl), want[i], what);
    }
    json_decref(v);
}

/* ---- RFC 7520 section 4 (JOSE cookbook) ------------------------------------------------- */

static void
test_rfc7520(void)
{
    json_t *k35 = load_vector("rfc7520-cookbook/3_5.symmetric_key_mac_computation.json");
    json_t *v44 = load_vector("rfc7520-cookbook/4_4.hmac-sha2_integrity_protection.json");
    json_t *v45 = load_vector("rfc7520-cookbook/4_5.signature_with_detached_content.json");
    json_t *v46 = load_vector("rfc7520-cookbook/4_6.protecting_specific_header_fields.json");
    json_t *v47 = load_vector("rfc7520-cookbook/4_7.protecting_content_only.json");
    uint8_t key[64], k2[64], mac[32];
    size_t key_len = 0, k2_len;
    gw_jwt_claims cl;

    if (k35 == NULL || v44 == NULL || v45 == NULL || v46 == NULL || v47 == NULL)
        goto out;

    /* 3.5: the symmetric JWK that every HS256 example below uses */
    key_len = jwk_key(k35, key, sizeof key);
    CHECK(key_len == 32, "7520 3.5: JWK k decodes to 32 bytes");
    CHECK(strcmp(str_at(k35, "alg"), "HS256") == 0 && strcmp(str_at(k35, "kty"), "oct") == 0,
          "7520 3.5: kty oct, alg HS256");

    /* 4.4: compact JWS whose protected header is {"alg":"HS256","kid":...} */
    {
        json_t *v = v44;
        const char *payload = str_at(v, "input.payload");
        const char *si = str_at(v, "signing.sig-input"), *compact = str_at(v, "output.compact");
        char *p64 = b64(payload, strlen(payload)), *want_si, *s, *flat;
        char *hdr;
        size_t hdr_len;
        json_t *hj;

        k2_len = jwk_key(at(v, "input.key"), k2, sizeof k2);
        CHECK(k2_len == key_len && memcmp(k2, key, key_len) == 0, "7520 4.4: key is the 3.5 JWK");
        want_si = xmalloc(strlen(p64) + 200);
        sprintf(want_si, "%s.%s", str_at(v, "signing.protected_b64u"), p64);
        CHECK(strcmp(si, want_si) == 0, "7520 4.4: sig-input = protected . base64url(payload)");
        hdr = unb64(str_at(v, "signing.protected_b64u"),
                    strlen(str_at(v, "signing.protected_b64u")), &hdr_len);
        hj = hdr != NULL ? json_loadb(hdr, hdr_len, JSON_REJECT_DUPLICATES, NULL) : NULL;
        CHECK(hj != NULL && json_equal(hj, at(v, "signing.protected")),
              "7520 4.4: protected_b64u decodes to the protected header");
        json_decref(hj);
        free(hdr);
        CHECK(gw_hmac_sha256(key, key_len, si, strlen(si), mac), "7520 4.4: HMAC");
        s = b64(mac, sizeof mac);
        CHECK(strcmp(s, str_at(v, "signing.sig")) == 0, "7520 4.4: signature recomputed");
        free(s);
        flat =
            concat3(str_at(v, "output.json_flat.protected"), str_at(v, "output.json_flat.payload"),
                    str_at(v, "output.json_flat.signature"));
        CHECK(strcmp(flat, compact) == 0, "7520 4.4: flattened JSON reassembles the compact form");
        free(flat);

        expect(jws(compact, strlen(compact), key, key_len, false, NULL, 0), GW_JWT_OK,
               "7520 4.4 compact, non-strict");
        /* kid is a member the gateway's strict header does not allow (and typ is absent) */
        expect(jws(compact, strlen(compact), key, key_len, true, NULL, 0), GW_JWT_BAD_HEADER,
               "7520 4.4 compact, strict");
        expect(jwt(compact, strlen(compact), key, key_len, NULL, 0, T0, 60, &cl), GW_JWT_BAD_HEADER,
               "7520 4.4 compact as gateway JWT");
        expect(jws(compact, strlen(compact), KEY1, false, NULL, 0), GW_JWT_BAD_SIGNATURE,
               "7520 4.4 compact, other key");
        /* an attached token does not also take detached content */
        expect(jws(compact, strlen(compact), key, key_len, false, payload, strlen(payload)),
               GW_JWT_MALFORMED, "7520 4.4 compact with detached content too");
        free(want_si);
        free(p64);
    }

    /* 4.5: the same signature, payload detached (compact form with an empty middle segment) */
    {
        json_t *v = v45;
        const char *payload = str_at(v, "input.payload"), *compact = str_at(v, "output.compact");
        const char *si = str_at(v, "signing.sig-input");
        size_t plen = strlen(payload);
        char *changed = xmalloc(plen + 1), *s;

        CHECK(strstr(compact, "..") != NULL, "7520 4.5: compact has an empty payload segment");
        CHECK(gw_hmac_sha256(key, key_len, si, strlen(si), mac), "7520 4.5: HMAC");
        s = b64(mac, sizeof mac);
        CHECK(strcmp(s, str_at(v, "signing.sig")) == 0, "7520 4.5: signature recomputed");
        free(s);
        expect(jws(compact, strlen(compact), key, key_len, false, payload, plen), GW_JWT_OK,
               "7520 4.5 detached, non-strict");
        expect(jws(compact, strlen(compact), key, key_len, true, payload, plen), GW_JWT_BAD_HEADER,
               "7520 4.5 detached, strict");
        expect(jws(compact, strlen(compact), key, key_len, false, NULL, 0), GW_JWT_MALFORMED,
               "7520 4.5 without its detached content");
        memcpy(changed, payload, plen + 1);
        changed[0] ^= 1;
        expect(jws(compact, strlen(compact), key, key_len, false, changed, plen),
               GW_JWT_BAD_SIGNATURE, "7520 4.5 with changed detached content");
        expect(jws(compact, strlen(compact), key, key_len, false, payload, plen - 1),
               GW_JWT_BAD_SIGNATURE, "7520 4.5 with truncated detached content");
        expect(jws(compact, strlen(compact), KEY1, false, payload, plen), GW_JWT_BAD_SIGNATURE,
               "7520 4.5 detached, other key");
        free(changed);
    }

    /*
     * 4.6 and 4.7 exist only in the JSON serializations, because part (4.6) or all (4.7) of
     * their header is unprotected, which the compact form cannot carry. What is checked:
     *  - both: the published sig-input is protected . payload (as the JSON output has them),
     *    and gw_hmac_sha256 over it reproduces the published signature;
     *  - 4.6: its protected header is {"alg":"HS256"} alone and the unprotected kid is not
     *    covered by the MAC, so "protected.payload.signature" is a genuine compact JWS:
     *    non-strict OK, strict BAD_HEADER (no typ);
     *  - 4.7: there is no protected header at all (alg only unprotected, where anyone could
     *    change it), so the compact rendering ".payload.signature" must be refused: MALFORMED
     *    (empty header segment).
     */
    {
        const char *si = str_at(v46, "signing.sig-input");
        char *want_si = xmalloc(strlen(si) + 8), *s, *tok;

        sprintf(want_si, "%s.%s", str_at(v46, "output.json_flat.protected"),
                str_at(v46, "output.json_flat.payload"));
        CHECK(strcmp(si, want_si) == 0, "7520 4.6: sig-input = protected . payload");
        free(want_si);
        CHECK(gw_hmac_sha256(key, key_len, si, strlen(si), mac), "7520 4.6: HMAC");
        s = b64(mac, sizeof mac);
        CHECK(strcmp(s, str_at(v46, "signing.sig")) == 0 &&
                  strcmp(s, str_at(v46, "output.json_flat.signature")) == 0,
              "7520 4.6: signature recomputed");
        free(s);
        tok = concat3(str_at(v46, "output.json_flat.protected"),
                      str_at(v46, "output.json_flat.payload"),
                      str_at(v46, "output.json_flat.signature"));
        expect(jws(tok, strlen(tok), key, key_len, false, NULL, 0), GW_JWT_OK,
               "7520 4.6 protected part as compact, non-strict");
        expect(jws(tok, strlen(tok), key, key_len, true, NULL, 0), GW_JWT_BAD_HEADER,
               "7520 4.6 protected part as compact, strict");
        free(tok);
    }
    {
        const char *si = str_at(v47, "signing.sig-input");
        char *want_si = xmalloc(strlen(si) + 8), *s, *tok;

        sprintf(want_si, ".%s", str_at(v47, "output.json_flat.payload"));
        CHECK(strcmp(si, want_si) == 0, "7520 4.7: sig-input = (empty) . payload");
        free(want_si);
        CHECK(gw_hmac_sha256(key, key_len, si, strlen(si), mac), "7520 4.7: HMAC");
        s = b64(mac, sizeof mac);
        CHECK(strcmp(s, str_at(v47, "signing.sig")) == 0 &&
                  strcmp(s, str_at(v47, "output.json_flat.signature")) == 0,
              "7520 4.7: signature recomputed");
        free(s);
        tok = concat3("", str_at(v47, "output.json_flat.payload"),
                      str_at(v47, "output.json_flat.signature"));
        expect(jws(tok, strlen(tok), key, key_len, false, NULL, 0), GW_JWT_MALFORMED,
               "7520 4.7 as compact (no protected header)");
        free(tok);
    }
out:
    json_decref(k35);
    json_decref(v44);
    json_decref(v45);
    json_decref(v46);
    json_decref(v47);
}

/* ---- issuing ----------------------------------------------------------------------------- */

static void
test_issue(void)
{
    /* Computed independently with Python (hmac, base64) from the same key and claims. */
    static const char want[] =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiIzZjJiOGMxZS05ZDRhLTRlNmItOGE3Yy0xYjJkM2U0ZjVhNmIiLCJpYXQiOjE3MDAwMDAwMDAsIm"
        "V4cCI6MTcwMjU5MjAwMH0.Sc2HaxURasVZLarvKmlcGJOmYI75iUwXwax4jgSI6aY";
    char *tok = gw_jwt_issue(KEY1, uuid, T0, 720 * 3600);
    gw_jwt_claims cl;
    char sub63[64], sub64[65];

    CHECK(tok != NULL && strcmp(tok, want) == 0, "issue: exact token for fixed key and claims");
    if (tok != NULL) {
        const char *dot1 = strchr(tok, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
        char *h = dot1 ? unb64(tok, (size_t)(dot1 - tok), NULL) : NULL;
        char *p = dot2 ? unb64(dot1 + 1, (size_t)(dot2 - dot1 - 1), NULL) : NULL;

        CHECK(h != NULL && strcmp(h, good_hdr) == 0, "issue: header text");
        CHECK(p != NULL && strcmp(p, "{\"sub\":\"3f2b8c1e-9d4a-4e6b-8a7c-1b2d3e4f5a6b\","
                                     "\"iat\":1700000000,\"exp\":1702592000}") == 0,
              "issue: payload text");
        free(h);
        free(p);
        CHECK(strchr(tok, '=') == NULL, "issue: no padding");
        expect(jws(tok, strlen(tok), KEY1, true, NULL, 0), GW_JWT_OK, "issued token, strict JWS");
        memset(&cl, 0x55, sizeof cl);
        expect(jwt(tok, strlen(tok), KEY1, NULL, 0, T0 + 10, 60, &cl), GW_JWT_OK,
               "issued token verifies");
        CHECK(strcmp(cl.sub, uuid) == 0 && cl.iat == T0 && cl.exp == T0 + 720 * 3600 &&
                  !cl.signed_with_previous,
              "issued token: claims round trip");
        expect(jwt(tok, strlen(tok), KEY1, NULL, 0, T0 + 10, 60, NULL), GW_JWT_OK,
               "issued token verifies with out = NULL");
    }
    free(tok);

    /* a sub that needs escaping, with multi-byte UTF-8 (é, €) */
    {
        static const char odd[] = "a\"b\\c/d\n\t\x01\xc3\xa9\xe2\x82\xac";

        tok = gw_jwt_issue(KEY1, odd, T0, 60);
        CHECK(tok != NULL, "issue: sub needing escapes");
        if (tok != NULL) {
            const char *dot1 = strchr(tok, '.'), *dot2 = strchr(dot1 + 1, '.');
            char *p = unb64(dot1 + 1, (size_t)(dot2 - dot1 - 1), NULL);

            CHECK(p != NULL &&
                      strcmp(p, "{\"sub\":\"a\\\"b\\\\c/d\\n\\t\\u0001\xc3\xa9\xe2\x82\xac\","
                                "\"iat\":1700000000,\"exp\":1700000060}") == 0,
                  "issue: sub JSON-escaped in the payload");
            free(p);
            expect(jwt(tok, strlen(tok), KEY1, NULL, 0, T0, 0, &cl), GW_JWT_OK,
                   "issue: escaped sub verifies");
            CHECK(strcmp(cl.sub, odd) == 0, "issue: escaped sub round trip");
        }
        free(tok);
    }

    memset(sub63, 'u', 63);
    sub63[63] = '\0';
    memset(sub64, 'u', 64);
    sub64[64] = '\0';
    tok = gw_jwt_issue(KEY1, sub63, T0, 60);
    CHECK(tok != NULL, "issue: 63-byte sub");
    if (tok != NULL) {
        expect(jwt(tok, strlen(tok), KEY1, NULL, 0, T0, 0, &cl), GW_JWT_OK,
               "issue: 63-byte sub verifies");
        CHECK(strcmp(cl.sub, sub63) == 0, "issue: 63-byte sub round trip");
    }
    free(tok);

    /* refusals: never issue a token the verifier would refuse */
    CHECK(gw_jwt_issue(KEY1, sub64, T0, 60) == NULL, "issue: 64-byte sub refused");
    CHECK(gw_jwt_issue(KEY1, "", T0, 60) == NULL, "issue: empty sub refused");
    CHECK(gw_jwt_issue(KEY1, NULL, T0, 60) == NULL, "issue: NULL sub refused");
    CHECK(gw_jwt_issue(KEY1, "\xff\xfe", T0, 60) == NULL, "issue: invalid UTF-8 sub refused");
    CHECK(gw_jwt_issue(KEY1, uuid, T0, 0) == NULL, "issue: ttl 0 refused");
    CHECK(gw_jwt_issue(KEY1, uuid, T0, -1) == NULL, "issue: negative ttl refused");
    CHECK(gw_jwt_issue(KEY1, uuid, INT64_MAX, 1) == NULL, "issue: exp overflow refused");
    CHECK(gw_jwt_issue(NULL, 0, uuid, T0, 60) == NULL, "issue: no key refused");
    CHECK(gw_jwt_issue(key1, 0, uuid, T0, 60) == NULL, "issue: empty key refused");
    tok = gw_jwt_issue(KEY1, uuid, INT64_MAX - 1, 1);
    CHECK(tok != NULL, "issue: exp = INT64_MAX");
    if (tok != NULL)
        expect(jwt(tok, strlen(tok), KEY1, NULL, 0, INT64_MAX - 1, INT64_MAX, &cl), GW_JWT_OK,
               "issue: exp = INT64_MAX verifies (no overflow with a huge leeway)");
    free(tok);
}

/* ---- headers: algorithm confusion and strictness ---------------------------------------- */

static void
test_headers(void)
{
    static const char pay[] = "{\"sub\":\"u\",\"iat\":1700000000,\"exp\":1700003600}";
    /* header JSON, expected status from gw_jwt_verify (strict), from the non-strict JWS check */
    static const struct {
        const char *hdr;
        gw_jwt_status strict, loose;
    } cases[] = {
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\"}", GW_JWT_OK, GW_JWT_OK},
        {"{\"typ\":\"JWT\",\"alg\":\"HS256\"}", GW_JWT_OK, GW_JWT_OK},
        {" {\r\n\t\"typ\" : \"JWT\" ,\n \"alg\":\"HS256\" } \n", GW_JWT_OK, GW_JWT_OK},
        /* the same string values written with escapes: the members are compared as JSON */
        {"{\"alg\":\"HS\\u0032\\u0035\\u0036\",\"typ\":\"J\\u0057T\"}", GW_JWT_OK, GW_JWT_OK},
        {"{\"alg\":\"none\",\"typ\":\"JWT\"}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"{\"alg\":\"none\"}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"{\"alg\":\"HS512\",\"typ\":\"JWT\"}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"{\"alg\":\"HS384\",\"typ\":\"JWT\"}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"{\"alg\":\"RS256\",\"typ\":\"JWT\"}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"{\"alg\":\"ES256\",\"typ\":\"JWT\"}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"{\"alg\":\"hs256\",\"typ\":\"JWT\"}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"{\"alg\":\"HS256 \",\"typ\":\"JWT\"}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"{\"alg\":\"\",\"typ\":\"JWT\"}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"{\"typ\":\"JWT\"}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"{\"alg\":256,\"typ\":\"JWT\"}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"{\"alg\":null,\"typ\":\"JWT\"}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"{\"alg\":true,\"typ\":\"JWT\"}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"{\"alg\":[\"HS256\"],\"typ\":\"JWT\"}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"{\"alg\":{\"HS256\":1},\"typ\":\"JWT\"}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"crit\":[\"exp\"]}", GW_JWT_BAD_HEADER,
         GW_JWT_BAD_HEADER},
        {"{\"alg\":\"HS256\",\"crit\":[]}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"{}", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"[]", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        {"[\"HS256\"]", GW_JWT_BAD_HEADER, GW_JWT_BAD_HEADER},
        /* acceptable to the non-strict check, not to the gateway */
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"1\"}", GW_JWT_BAD_HEADER, GW_JWT_OK},
        {"{\"alg\":\"HS256\",\"typ\":\"jwt\"}", GW_JWT_BAD_HEADER, GW_JWT_OK},
        {"{\"alg\":\"HS256\",\"typ\":\"JWS\"}", GW_JWT_BAD_HEADER, GW_JWT_OK},
        {"{\"alg\":\"HS256\",\"typ\":1}", GW_JWT_BAD_HEADER, GW_JWT_OK},
        {"{\"alg\":\"HS256\",\"typ\":null}", GW_JWT_BAD_HEADER, GW_JWT_OK},
        {"{\"alg\":\"HS256\"}", GW_JWT_BAD_HEADER, GW_JWT_OK},
        {"{\"alg\":\"HS256\",\"kid\":\"x\"}", GW_JWT_BAD_HEADER, GW_JWT_OK},
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"jku\":\"https://evil.example/k\"}",
         GW_JWT_BAD_HEADER, GW_JWT_OK},
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"jwk\":{\"kty\":\"oct\",\"k\":\"AA\"}}",
         GW_JWT_BAD_HEADER, GW_JWT_OK},
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"b64\":false}", GW_JWT_BAD_HEADER, GW_JWT_OK},
        /* not JSON the parser takes: MALFORMED in both modes */
        {"{\"alg\":\"HS256\",\"alg\":\"none\",\"typ\":\"JWT\"}", GW_JWT_MALFORMED,
         GW_JWT_MALFORMED},
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"typ\":\"JWT\"}", GW_JWT_MALFORMED, GW_JWT_MALFORMED},
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\"} x", GW_JWT_MALFORMED, GW_JWT_MALFORMED},
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\",}", GW_JWT_MALFORMED, GW_JWT_MALFORMED},
        {"{'alg':'HS256','typ':'JWT'}", GW_JWT_MALFORMED, GW_JWT_MALFORMED},
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"k\\u0000\":1}", GW_JWT_MALFORMED, GW_JWT_MALFORMED},
        {"{\"alg\":\"HS256\",\"typ\":\"\xff\"}", GW_JWT_MALFORMED, GW_JWT_MALFORMED},
        {"{\"alg\":\"HS256\",\"typ\":\"\\ud800\"}", GW_JWT_MALFORMED, GW_JWT_MALFORMED},
        /* a bare string is not a JSON text jansson accepts without JSON_DECODE_ANY */
        {"\"HS256\"", GW_JWT_MALFORMED, GW_JWT_MALFORMED},
        {"", GW_JWT_MALFORMED, GW_JWT_MALFORMED},
    };
    gw_jwt_claims cl;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *tok = make_token(cases[i].hdr, pay, KEY1);
        char what[200];

        snprintf(what, sizeof what, "header case %zu, gateway JWT", i);
        expect(jwt(tok, strlen(tok), KEY1, NULL, 0, T0, 60, &cl), cases[i].strict, what);
        snprintf(what, sizeof what, "header case %zu, strict JWS", i);
        expect(jws(tok, strlen(tok), KEY1, true, NULL, 0), cases[i].strict, what);
        snprintf(what, sizeof what, "header case %zu, non-strict JWS", i);
        expect(jws(tok, strlen(tok), KEY1, false, NULL, 0), cases[i].loose, what);
        free(tok);
    }

    /* alg none with an empty signature (the classic downgrade), and with a garbage one */
    {
        static const char none_hdr[] = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
        char *h = b64(none_hdr, strlen(none_hdr)), *p = b64(pay, strlen(pay));
        char *tok = concat3(h, p, "");

        expect(jwt(tok, strlen(tok), KEY1, NULL, 0, T0, 60, &cl), GW_JWT_BAD_HEADER,
               "alg none, empty signature");
        free(tok);
        tok = concat3(h, p, "AAAA");
        expect(jwt(tok, strlen(tok), KEY1, NULL, 0, T0, 60, &cl), GW_JWT_BAD_HEADER,
               "alg none, short signature");
        free(tok);
        free(h);
        free(p);
    }
}

/* ---- tampering, keys, rotation ----------------------------------------------------------- */

static void
test_tamper_and_keys(void)
{
    char *tok = gw_jwt_issue(KEY1, uuid, T0, 3600), *t;
    size_t len;
    gw_jwt_claims cl;

    CHECK(tok != NULL, "tamper: issue");
    if (tok == NULL)
        return;
    len = strlen(tok);
    t = xmalloc(len + 1);

    /* every single-bit change anywhere in the token is refused (one check per byte) */
    for (size_t i = 0; i < len; i++) {
        int bad_bit = -1;

        for (int bit = 0; bit < 8; bit++) {
            memcpy(t, tok, len + 1);
            t[i] = (char)(t[i] ^ (1 << bit));
            if (jwt(t, len, KEY1, NULL, 0, T0, 60, &cl) == GW_JWT_OK ||
                jws(t, len, KEY1, false, NULL, 0) == GW_JWT_OK)
                bad_bit = bit;
        }
        CHECK(bad_bit < 0, "tamper: bit %d of byte %zu flipped and still accepted", bad_bit, i);
    }
    /* every proper prefix, and the token with each byte removed, is refused */
    for (size_t n = 0; n < len; n++) {
        memcpy(t, tok, n);
        memcpy(t + n, tok + n + 1, len - n - 1);
        CHECK(jwt(tok, n, KEY1, NULL, 0, T0, 60, &cl) != GW_JWT_OK &&
                  jwt(t, len - 1, KEY1, NULL, 0, T0, 60, &cl) != GW_JWT_OK,
              "tamper: prefix of %zu bytes or byte %zu removed accepted", n, n);
    }

    /* segments swapped between two valid tokens keep a valid look but not a valid MAC */
    {
        char *other = gw_jwt_issue(KEY1, "someone-else", T0, 3600);
        const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
        const char *o1 = strchr(other, '.'), *o2 = strrchr(other, '.');
        char *mix = xmalloc(len + strlen(other) + 1);

        /* header and payload of the other token, signature of this one */
        sprintf(mix, "%.*s%s", (int)(o2 - other), other, d2);
        expect(jwt(mix, strlen(mix), KEY1, NULL, 0, T0, 60, &cl), GW_JWT_BAD_SIGNATURE,
               "tamper: payload replaced by another user's");
        /* this header, other payload, this signature */
        sprintf(mix, "%.*s%.*s%s", (int)(d1 - tok), tok, (int)(o2 - o1), o1, d2);
        expect(jwt(mix, strlen(mix), KEY1, NULL, 0, T0, 60, &cl), GW_JWT_BAD_SIGNATURE,
               "tamper: payload swapped, signature kept");
        free(mix);
        free(other);
    }
    /* the same header members in another order are different bytes: the signature breaks */
    {
        static const char reordered[] = "{\"typ\":\"JWT\",\"alg\":\"HS256\"}";
        char *h = b64(reordered, strlen(reordered));
        const char *d1 = strchr(tok, '.');
        char *mix = xmalloc(len + 8);

        sprintf(mix, "%s%s", h, d1);
        expect(jwt(mix, strlen(mix), KEY1, NULL, 0, T0, 60, &cl), GW_JWT_BAD_SIGNATURE,
               "tamper: header re-encoded with members reordered");
        free(mix);
        free(h);
    }

    /* keys */
    expect(jwt(tok, len, KEY2, NULL, 0, T0, 60, &cl), GW_JWT_BAD_SIGNATURE, "wrong key");
    expect(jwt(tok, len, key1, sizeof key1 - 2, NULL, 0, T0, 60, &cl), GW_JWT_BAD_SIGNATURE,
           "key missing its last byte");
    {
        uint8_t longer[sizeof key1];

        memcpy(longer, key1, sizeof key1 - 1);
        longer[sizeof key1 - 1] = 'x';
        expect(jwt(tok, len, longer, sizeof longer, NULL, 0, T0, 60, &cl), GW_JWT_BAD_SIGNATURE,
               "key with an extra byte");
        /*
         * HMAC pads keys shorter than the block (64 bytes) with zeros (RFC 2104), so a key
         * with zero bytes appended is the same HMAC key. That is HMAC, not a verifier bug;
         * pinned here so nobody mistakes it for one.
         */
        longer[sizeof key1 - 1] = 0;
        expect(jwt(tok, len, longer, sizeof longer, NULL, 0, T0, 60, &cl), GW_JWT_OK,
               "key with an extra zero byte is the same HMAC key");
    }
    expect(jwt(tok, len, NULL, 0, NULL, 0, T0, 60, &cl), GW_JWT_BAD_SIGNATURE, "no key");
    /* a token MACed with the empty key is not accepted by a verifier handed an empty key */
    {
        char *h = b64(good_hdr, strlen(good_hdr));
        static const char pay[] = "{\"sub\":\"u\",\"iat\":1700000000,\"exp\":1700003600}";
        char *p = b64(pay, strlen(pay));
        char *e = sign_segments(h, p, (const uint8_t *)"", 0);

        expect(jwt(e, strlen(e), (const uint8_t *)"", 0, NULL, 0, T0, 60, &cl),
               GW_JWT_BAD_SIGNATURE, "empty key refused as a key");
        expect(jws(e, strlen(e), (const uint8_t *)"", 0, false, NULL, 0), GW_JWT_BAD_SIGNATURE,
               "empty key refused as a key, JWS");
        free(e);
        free(h);
        free(p);
    }

    /* rotation: the previous key verifies and says so; the current one never sets the flag */
    memset(&cl, 0x55, sizeof cl);
    expect(jwt(tok, len, KEY2, KEY1, T0, 60, &cl), GW_JWT_OK, "previous key accepted");
    CHECK(cl.signed_with_previous && strcmp(cl.sub, uuid) == 0 && cl.iat == T0 &&
              cl.exp == T0 + 3600,
          "previous key: flagged, claims returned");
    expect(jwt(tok, len, KEY1, KEY2, T0, 60, &cl), GW_JWT_OK, "current key with a previous set");
    CHECK(!cl.signed_with_previous, "current key: not flagged");
    expect(jwt(tok, len, KEY1, KEY1, T0, 60, &cl), GW_JWT_OK, "current key equal to previous");
    CHECK(!cl.signed_with_previous, "current key equal to previous: not flagged");
    expect(jwt(tok, len, KEY2, key2, sizeof key2 - 2, T0, 60, &cl), GW_JWT_BAD_SIGNATURE,
           "neither key");
    expect(jwt(tok, len, KEY2, NULL, 5, T0, 60, &cl), GW_JWT_BAD_SIGNATURE,
           "previous key NULL (length ignored)");
    expect(jwt(tok, len, NULL, 0, KEY1, T0, 60, &cl), GW_JWT_OK, "only a previous key");
    CHECK(cl.signed_with_previous, "only a previous key: flagged");
    /* the previous key does not bypass the clock */
    expect(jwt(tok, len, KEY2, KEY1, T0 + 3600 + 61, 60, &cl), GW_JWT_EXPIRED,
           "previous key, expired token");
    /* failures leave no claims behind */
    memset(&cl, 0x55, sizeof cl);
    expect(jwt(tok, len, KEY2, NULL, 0, T0, 60, &cl), GW_JWT_BAD_SIGNATURE,
           "wrong key (claims cleared)");
    CHECK(cl.sub[0] == '\0' && cl.iat == 0 && cl.exp == 0 && !cl.signed_with_previous,
          "claims cleared after a failure");

    free(t);
    free(tok);
}

/* ---- claims: times and types ------------------------------------------------------------- */

static gw_jwt_status
claims_status(const char *pay, int64_t now, int64_t leeway, gw_jwt_claims *cl)
{
    char *tok = make_token(good_hdr, pay, KEY1);
    gw_jwt_status st = jwt(tok, strlen(tok), KEY1, NULL, 0, now, leeway, cl);

    free(tok);
    return st;
}

static void
test_times(void)
{
    char pay[256];
    gw_jwt_claims cl;
    const int64_t iat = T0, exp = T0 + 3600;

    snprintf(pay, sizeof pay, "{\"sub\":\"u\",\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}", iat, exp);
    /* exp: accepted up to exp + leeway inclusive */
    expect(claims_status(pay, exp + 60, 60, &cl), GW_JWT_OK, "exp: now = exp + leeway");
    expect(claims_status(pay, exp + 61, 60, &cl), GW_JWT_EXPIRED, "exp: now = exp + leeway + 1");
    expect(claims_status(pay, exp, 0, &cl), GW_JWT_OK, "exp: now = exp, no leeway");
    expect(claims_status(pay, exp + 1, 0, &cl), GW_JWT_EXPIRED, "exp: now = exp + 1, no leeway");
    /* iat: up to leeway in the future */
    expect(claims_status(pay, iat - 60, 60, &cl), GW_JWT_OK, "iat: iat = now + leeway");
    expect(claims_status(pay, iat - 61, 60, &cl), GW_JWT_NOT_YET_VALID,
           "iat: iat = now + leeway + 1");
    expect(claims_status(pay, iat, 0, &cl), GW_JWT_OK, "iat: iat = now, no leeway");
    expect(claims_status(pay, iat - 1, 0, &cl), GW_JWT_NOT_YET_VALID, "iat: iat = now + 1");
    /* a negative leeway counts as none */
    expect(claims_status(pay, exp, -100, &cl), GW_JWT_OK, "negative leeway: now = exp");
    expect(claims_status(pay, exp + 1, -100, &cl), GW_JWT_EXPIRED,
           "negative leeway: now = exp + 1");
    expect(claims_status(pay, iat, -100, &cl), GW_JWT_OK, "negative leeway: now = iat");

    /* nbf: accepted from nbf - leeway inclusive */
    {
        const int64_t now = iat + 100;

        snprintf(pay, sizeof pay,
                 "{\"sub\":\"u\",\"iat\":%" PRId64 ",\"exp\":%" PRId64 ",\"nbf\":%" PRId64 "}", iat,
                 exp, now + 60);
        expect(claims_status(pay, now, 60, &cl), GW_JWT_OK, "nbf: nbf = now + leeway");
        snprintf(pay, sizeof pay,
                 "{\"sub\":\"u\",\"iat\":%" PRId64 ",\"exp\":%" PRId64 ",\"nbf\":%" PRId64 "}", iat,
                 exp, now + 61);
        expect(claims_status(pay, now, 60, &cl), GW_JWT_NOT_YET_VALID,
               "nbf: nbf = now + leeway + 1");
        snprintf(pay, sizeof pay,
                 "{\"sub\":\"u\",\"iat\":%" PRId64 ",\"exp\":%" PRId64 ",\"nbf\":%" PRId64 "}", iat,
                 exp, now);
        expect(claims_status(pay, now, 0, &cl), GW_JWT_OK, "nbf: nbf = now, no leeway");
        snprintf(pay, sizeof pay,
                 "{\"sub\":\"u\",\"iat\":%" PRId64 ",\"exp\":%" PRId64 ",\"nbf\":%" PRId64 "}", iat,
                 exp, now + 1);
        expect(claims_status(pay, now, 0, &cl), GW_JWT_NOT_YET_VALID,
               "nbf: nbf = now + 1, no leeway");
    }

    /* exp must be after iat */
    snprintf(pay, sizeof pay, "{\"sub\":\"u\",\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}", iat, iat);
    expect(claims_status(pay, iat, 60, &cl), GW_JWT_BAD_CLAIMS, "exp = iat");
    snprintf(pay, sizeof pay, "{\"sub\":\"u\",\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}", iat,
             iat - 1);
    expect(claims_status(pay, iat, 60, &cl), GW_JWT_BAD_CLAIMS, "exp < iat");

    /* extremes: no signed overflow anywhere (UBSan would stop the run) */
    expect(claims_status("{\"sub\":\"u\",\"iat\":-9223372036854775808,"
                         "\"exp\":9223372036854775807}",
                         INT64_MAX, INT64_MAX, &cl),
           GW_JWT_OK, "extremes: whole int64 range, huge leeway, now = INT64_MAX");
    expect(claims_status("{\"sub\":\"u\",\"iat\":-9223372036854775808,"
                         "\"exp\":9223372036854775807,\"nbf\":9223372036854775807}",
                         INT64_MIN, INT64_MAX, &cl),
           GW_JWT_NOT_YET_VALID, "extremes: now = INT64_MIN, nbf = INT64_MAX, leeway INT64_MAX");
    /* exp + leeway is beyond INT64_MAX, so no now can pass it: saturated, not wrapped */
    expect(claims_status("{\"sub\":\"u\",\"iat\":0,\"exp\":1}", INT64_MAX, INT64_MAX, &cl),
           GW_JWT_OK, "extremes: now = INT64_MAX, exp = 1, leeway INT64_MAX");
    expect(claims_status("{\"sub\":\"u\",\"iat\":0,\"exp\":1}", INT64_MAX, 0, &cl), GW_JWT_EXPIRED,
           "extremes: now = INT64_MAX, exp = 1, no leeway");
    expect(claims_status("{\"sub\":\"u\",\"iat\":9223372036854775806,"
                         "\"exp\":9223372036854775807}",
                         INT64_MIN, INT64_MAX, &cl),
           GW_JWT_NOT_YET_VALID, "extremes: iat near INT64_MAX, now = INT64_MIN");
    expect(claims_status("{\"sub\":\"u\",\"iat\":-5,\"exp\":-1}", -3, 0, &cl), GW_JWT_OK,
           "negative times");
}

static void
test_claim_types(void)
{
    static const struct {
        const char *pay;
        gw_jwt_status want;
    } cases[] = {
        {"{\"sub\":\"u\",\"iat\":1700000000,\"exp\":1700003600}", GW_JWT_OK},
        /* unknown claims are ignored (RFC 7519 section 4) */
        {"{\"iss\":\"x\",\"aud\":[\"a\"],\"sub\":\"u\",\"jti\":\"1\",\"iat\":1700000000,"
         "\"exp\":1700003600,\"nbf\":1700000000}",
         GW_JWT_OK},
        {"{\"sub\":\"u\",\"iat\":1.5,\"exp\":1700003600}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":\"u\",\"iat\":\"1\",\"exp\":1700003600}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":\"u\",\"iat\":1700000000.0,\"exp\":1700003600}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":\"u\",\"iat\":17e8,\"exp\":1700003600}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":\"u\",\"iat\":true,\"exp\":1700003600}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":\"u\",\"iat\":null,\"exp\":1700003600}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":\"u\",\"iat\":[1],\"exp\":1700003600}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":\"u\",\"iat\":1700000000,\"exp\":\"1700003600\"}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":\"u\",\"iat\":1700000000,\"exp\":1700003600.5}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":\"u\",\"iat\":1700000000,\"exp\":1700003600,\"nbf\":\"0\"}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":\"u\",\"iat\":1700000000,\"exp\":1700003600,\"nbf\":1.5}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":\"u\",\"iat\":1700000000,\"exp\":1700003600,\"nbf\":null}", GW_JWT_BAD_CLAIMS},
        {"{\"iat\":1700000000,\"exp\":1700003600}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":\"u\",\"exp\":1700003600}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":\"u\",\"iat\":1700000000}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":123,\"iat\":1700000000,\"exp\":1700003600}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":null,\"iat\":1700000000,\"exp\":1700003600}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":{\"id\":\"u\"},\"iat\":1700000000,\"exp\":1700003600}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":[\"u\"],\"iat\":1700000000,\"exp\":1700003600}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":\"\",\"iat\":1700000000,\"exp\":1700003600}", GW_JWT_BAD_CLAIMS},
        {"{\"sub\":\"uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu\","
         "\"iat\":1700000000,\"exp\":1700003600}",
         GW_JWT_OK}, /* 63 bytes */
        {"{\"sub\":\"uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu\","
         "\"iat\":1700000000,\"exp\":1700003600}",
         GW_JWT_BAD_CLAIMS}, /* 64 bytes */
        /* 62 ASCII + \u00e9 (2 bytes in UTF-8) = 64 bytes: the bound is in bytes */
        {"{\"sub\":\"uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu\\u00e9\","
         "\"iat\":1700000000,\"exp\":1700003600}",
         GW_JWT_BAD_CLAIMS},
        {"[]", GW_JWT_BAD_CLAIMS},
        {"[{\"sub\":\"u\",\"iat\":1700000000,\"exp\":1700003600}]", GW_JWT_BAD_CLAIMS},
        {"{}", GW_JWT_BAD_CLAIMS},
        /* not JSON jansson takes */
        {"{\"sub\":\"u\",\"sub\":\"admin\",\"iat\":1700000000,\"exp\":1700003600}",
         GW_JWT_MALFORMED},
        {"{\"sub\":\"u\",\"iat\":1700000000,\"exp\":1700003600} ", GW_JWT_OK},
        {"{\"sub\":\"u\",\"iat\":1700000000,\"exp\":1700003600}x", GW_JWT_MALFORMED},
        {"{\"sub\":\"u\",\"iat\":1700000000,\"exp\":99999999999999999999}", GW_JWT_MALFORMED},
        {"{\"sub\":\"u\",\"iat\":1700000000,\"exp\":1e400}", GW_JWT_MALFORMED},
        {"{\"sub\":\"u\\u0000\",\"iat\":1700000000,\"exp\":1700003600}", GW_JWT_MALFORMED},
        {"{\"sub\":\"\xc3\",\"iat\":1700000000,\"exp\":1700003600}", GW_JWT_MALFORMED},
        {"\"u\"", GW_JWT_MALFORMED},
        {"not json", GW_JWT_MALFORMED},
    };
    gw_jwt_claims cl;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[64];

        snprintf(what, sizeof what, "claims case %zu", i);
        expect(claims_status(cases[i].pay, T0 + 10, 60, &cl), cases[i].want, what);
    }
}

/* ---- structure and bounds ---------------------------------------------------------------- */

/* a token whose payload is exactly pay_bytes long (a "pad" claim fills it) */
static char *
token_with_payload_bytes(size_t pay_bytes)
{
    static const char fmt[] =
        "{\"sub\":\"u\",\"iat\":1700000000,\"exp\":1700003600,\"pad\":\"%s\"}";
    size_t base = strlen(fmt) - 2;
    char *pad, *pay, *tok;

    if (pay_bytes < base)
        return NULL;
    pad = xmalloc(pay_bytes - base + 1);
    memset(pad, 'x', pay_bytes - base);
    pad[pay_bytes - base] = '\0';
    pay = xmalloc(pay_bytes + 1);
    snprintf(pay, pay_bytes + 1, fmt, pad);
    tok = make_token(good_hdr, pay, KEY1);
    free(pay);
    free(pad);
    return tok;
}

static void
test_structure(void)
{
    /* segments a valid token is assembled from, so each case breaks exactly one thing */
    char *h = b64(good_hdr, strlen(good_hdr));
    /* 47 bytes: 47 % 3 = 2, so the payload segment would carry one '=' of padding */
    static const char pay[] = "{\"sub\":\"uuu\",\"iat\":1700000000,\"exp\":1700003600}";
    char *p = b64(pay, strlen(pay)), *good = sign_segments(h, p, KEY1), *t;
    size_t hl = strlen(h), pl = strlen(p), gl = strlen(good);
    const char *sig = good + hl + pl + 2;
    char buf[2 * GW_JWT_MAX_LEN];
    gw_jwt_claims cl;

#define MALFORMED(tok, len, what)                                                                  \
    do {                                                                                           \
        expect(jwt((tok), (len), KEY1, NULL, 0, T0, 60, &cl), GW_JWT_MALFORMED, what);             \
        expect(jws((tok), (len), KEY1, false, NULL, 0), GW_JWT_MALFORMED, what " (JWS)");          \
    } while (0)

    CHECK(strlen(pay) % 3 == 2 && pl % 4 == 3, "structure: payload length needs padding");
    expect(jwt(good, gl, KEY1, NULL, 0, T0, 60, &cl), GW_JWT_OK, "structure: base token");

    /* padding, signed over as sent so only the padding is wrong */
    snprintf(buf, sizeof buf, "%s=", p);
    t = sign_segments(h, buf, KEY1);
    MALFORMED(t, strlen(t), "padding '=' on the payload");
    free(t);
    snprintf(buf, sizeof buf, "%s==", p);
    t = sign_segments(h, buf, KEY1);
    MALFORMED(t, strlen(t), "padding '==' on the payload");
    free(t);
    snprintf(buf, sizeof buf, "%s=", h);
    t = sign_segments(buf, p, KEY1);
    MALFORMED(t, strlen(t), "padding '=' on the header");
    free(t);
    snprintf(buf, sizeof buf, "%s=", good);
    MALFORMED(buf, strlen(buf), "padding '=' on the signature");
    {
        /* the header as standard padded base64 of a 27-byte text would be 36 chars, no '=';
         * re-encode a 28-byte header to get real padding */
        static const char hdr28[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"} ";
        char *h2 = b64(hdr28, strlen(hdr28));

        snprintf(buf, sizeof buf, "%s==", h2);
        t = sign_segments(buf, p, KEY1);
        MALFORMED(t, strlen(t), "padded 28-byte header");
        free(t);
        t = sign_segments(h2, p, KEY1);
        expect(jwt(t, strlen(t), KEY1, NULL, 0, T0, 60, &cl), GW_JWT_OK,
               "same 28-byte header unpadded");
        free(t);
        free(h2);
    }

    /* characters outside the base64url alphabet */
    {
        static const char bad[] = {'+', '/', '=', ' ', '\n', '\0', '\x80', '~', '%'};

        for (size_t i = 0; i < sizeof bad; i++) {
            char what[80];

            memcpy(buf, p, pl + 1);
            buf[pl / 2] = bad[i];
            t = sign_segments(h, buf, KEY1);
            /* sign_segments uses strlen: rebuild by length for the NUL case */
            if (bad[i] == '\0') {
                free(t);
                t = xmalloc(gl + 1);
                memcpy(t, good, gl + 1);
                t[hl + 1 + pl / 2] = '\0';
                MALFORMED(t, gl, "NUL byte inside the payload segment");
            } else {
                snprintf(what, sizeof what, "character 0x%02x in the payload segment",
                         (unsigned char)bad[i]);
                expect(jwt(t, strlen(t), KEY1, NULL, 0, T0, 60, &cl), GW_JWT_MALFORMED, what);
            }
            free(t);
        }
    }
    /* non-canonical trailing bits: last payload character one up (its low 2 bits must be 0) */
    memcpy(buf, p, pl + 1);
    buf[pl - 1] = (char)(buf[pl - 1] + 1);
    t = sign_segments(h, buf, KEY1);
    MALFORMED(t, strlen(t), "non-canonical trailing bits in the payload");
    free(t);
    /* a payload segment of length 4k+1 is never base64url */
    snprintf(buf, sizeof buf, "%sAA", p);
    t = sign_segments(h, buf, KEY1);
    MALFORMED(t, strlen(t), "payload segment of length 4k+1");
    free(t);

    /* dots and empty segments */
    snprintf(buf, sizeof buf, "%s.%s", good, sig);
    MALFORMED(buf, strlen(buf), "four segments");
    snprintf(buf, sizeof buf, "%s.%s.%s.%s.%s", h, p, sig, sig, sig);
    MALFORMED(buf, strlen(buf), "five segments (JWE shape)");
    snprintf(buf, sizeof buf, "%s.", good);
    MALFORMED(buf, strlen(buf), "trailing dot");
    snprintf(buf, sizeof buf, ".%s", good);
    MALFORMED(buf, strlen(buf), "leading dot");
    snprintf(buf, sizeof buf, "%s..%s", h, sig);
    MALFORMED(buf, strlen(buf), "empty payload segment");
    snprintf(buf, sizeof buf, "%s.%s..%s", h, p, sig);
    MALFORMED(buf, strlen(buf), "double dot before the signature");
    snprintf(buf, sizeof buf, ".%s.%s", p, sig);
    MALFORMED(buf, strlen(buf), "empty header segment");
    snprintf(buf, sizeof buf, "%s.%s.", h, p);
    MALFORMED(buf, strlen(buf), "empty signature segment");
    MALFORMED("..", 2, "only dots");
    MALFORMED(".", 1, "one dot");
    MALFORMED("", 0, "empty token");
    expect(gw_jwt_verify(NULL, 0, KEY1, NULL, 0, T0, 60, &cl), GW_JWT_MALFORMED, "NULL token");
    expect(gw_jws_verify_hs256(NULL, 10, KEY1, false, NULL, 0), GW_JWT_MALFORMED,
           "NULL token (JWS)");
    snprintf(buf, sizeof buf, "%s.%s", h, p);
    MALFORMED(buf, strlen(buf), "two segments");
    MALFORMED(h, hl, "one segment");
    snprintf(buf, sizeof buf, "%s%s%s", h, p, sig);
    MALFORMED(buf, strlen(buf), "no dots");
    /* signature of the wrong length */
    snprintf(buf, sizeof buf, "%.*s", (int)(gl - 1), good);
    MALFORMED(buf, strlen(buf), "signature 42 characters");
    snprintf(buf, sizeof buf, "%sA", good);
    MALFORMED(buf, strlen(buf), "signature 44 characters");
    snprintf(buf, sizeof buf, "%s.%s.%s%s", h, p, sig, sig);
    MALFORMED(buf, strlen(buf), "signature twice");
    /* transport leftovers are not stripped here */
    snprintf(buf, sizeof buf, "%s\n", good);
    MALFORMED(buf, strlen(buf), "trailing newline");
    snprintf(buf, sizeof buf, " %s", good);
    MALFORMED(buf, strlen(buf), "leading space");
    snprintf(buf, sizeof buf, "Bearer %s", good);
    MALFORMED(buf, strlen(buf), "Bearer prefix");
    snprintf(buf, sizeof buf, "\"%s\"", good);
    MALFORMED(buf, strlen(buf), "quoted token");

    /* length: exactly GW_JWT_MAX_LEN is read, one more is not, 5000 bytes is not */
    {
        /* header 36 + dot + payload + dot + 43 = 4096 -> payload segment 4015 chars = 3011
         * bytes; one more byte makes it 4016 chars and the token 4097 */
        char *at_max = token_with_payload_bytes(3011), *over = token_with_payload_bytes(3012);
        char *big = token_with_payload_bytes(3700);

        CHECK(at_max != NULL && strlen(at_max) == GW_JWT_MAX_LEN, "length: token of max length");
        CHECK(over != NULL && strlen(over) == GW_JWT_MAX_LEN + 1, "length: token of max + 1");
        CHECK(big != NULL && strlen(big) > 4900, "length: large token");
        if (at_max != NULL && over != NULL && big != NULL) {
            expect(jwt(at_max, strlen(at_max), KEY1, NULL, 0, T0, 60, &cl), GW_JWT_OK,
                   "length: GW_JWT_MAX_LEN accepted");
            MALFORMED(over, strlen(over), "length: GW_JWT_MAX_LEN + 1 refused");
            MALFORMED(big, strlen(big), "length: ~5000-byte token refused");
        }
        free(at_max);
        free(over);
        free(big);
        /* 5000 bytes of base64url: refused before a single character is decoded */
        memset(buf, 'A', 5000);
        buf[2000] = '.';
        buf[4000] = '.';
        MALFORMED(buf, 5000, "length: 5000-byte token refused");
    }
    /*
     * Header bound: a header segment above 512 characters is refused even when it is signed
     * and valid otherwise. 512 characters = 384 bytes of header text.
     */
    {
        static const char fmt[] = "{\"alg\":\"HS256\",\"kid\":\"%s\"}";
        char kid[400], hdr[512];
        size_t base = strlen(fmt) - 2;

        for (int extra = 0; extra <= 1; extra++) {
            size_t n = 384 + (size_t)extra - base;

            memset(kid, 'k', n);
            kid[n] = '\0';
            snprintf(hdr, sizeof hdr, fmt, kid);
            t = make_token(hdr, pay, KEY1);
            expect(jws(t, strlen(t), KEY1, false, NULL, 0), extra ? GW_JWT_MALFORMED : GW_JWT_OK,
                   extra ? "header of 385 bytes refused" : "header of 384 bytes accepted");
            free(t);
        }
    }
    /* detached content that would make the signing input exceed GW_JWT_MAX_LEN */
    {
        static const char alg_only[] = "{\"alg\":\"HS256\"}";
        char *h2 = b64(alg_only, strlen(alg_only)), *content = xmalloc(4000);
        uint8_t mac[32];
        char *si, *s;

        memset(content, 'c', 4000);
        si = xmalloc(strlen(h2) + 1 + dfd_b64url_len(4000) + 1);
        sprintf(si, "%s.", h2);
        dfd_b64url_encode((const uint8_t *)content, 4000, si + strlen(h2) + 1);
        si[strlen(h2) + 1 + dfd_b64url_len(4000)] = '\0';
        gw_hmac_sha256(KEY1, si, strlen(si), mac);
        s = b64(mac, 32);
        t = concat3(h2, "", s);
        expect(jws(t, strlen(t), KEY1, false, content, 4000), GW_JWT_MALFORMED,
               "detached content beyond the bound");
        expect(jws(t, strlen(t), KEY1, false, content, 2000), GW_JWT_BAD_SIGNATURE,
               "detached content within the bound, other content");
        free(t);
        free(s);
        free(si);
        free(content);
        free(h2);
    }
#undef MALFORMED
    free(good);
    free(p);
    free(h);
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s VECTOR_DIR\n", argv[0]);
        return 2;
    }
    vector_dir = argv[1];

    test_status_text();
    test_rfc4231();
    test_rfc7515();
    test_rfc7520();
    test_issue();
    test_headers();
    test_tamper_and_keys();
    test_times();
    test_claim_types();
    test_structure();

    printf("jwt: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
