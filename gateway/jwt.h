/*
 * jwt.h: JSON Web Tokens with HS256 (RFC 7519, RFC 7515), on OpenSSL HMAC.
 *
 * The gateway issues and accepts only tokens whose protected header is exactly
 * {"alg":"HS256","typ":"JWT"} (member order and whitespace free); "none" and every other
 * algorithm or header member are refused, which closes algorithm-confusion attacks. Signatures
 * are computed over the two segments exactly as received and compared in constant time.
 */
#ifndef GW_JWT_H
#define GW_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_JWT_MAX_LEN 4096 /* longer Authorization tokens are refused unread */

typedef enum gw_jwt_status {
    GW_JWT_OK = 0,
    GW_JWT_MALFORMED,     /* not three base64url segments, bad JSON, too long */
    GW_JWT_BAD_HEADER,    /* alg is not HS256, typ is not JWT, or other members */
    GW_JWT_BAD_SIGNATURE, /* no key verifies the signature */
    GW_JWT_BAD_CLAIMS,    /* sub, iat or exp missing or of the wrong type */
    GW_JWT_EXPIRED,       /* now > exp + leeway */
    GW_JWT_NOT_YET_VALID, /* now < nbf - leeway, or iat in the future beyond the leeway */
} gw_jwt_status;

/* A short lower-case text for logs and problem details ("expired", "bad signature", ...). */
const char *gw_jwt_status_text(gw_jwt_status st);

typedef struct gw_jwt_claims {
    char sub[64]; /* the user id (a UUID in practice); longer values are refused */
    int64_t iat;  /* seconds since the epoch */
    int64_t exp;
    bool signed_with_previous; /* verified with the previous secret (rotation window) */
} gw_jwt_claims;

/* HMAC-SHA-256 of data under key (RFC 2104), into mac. */
bool gw_hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len,
                    uint8_t mac[32]);

/*
 * Verifies a compact JWS with HS256 over "<segment 1>.<segment 2>" as received.
 * strict_header: require the header to be exactly alg HS256 and typ JWT (the gateway's
 * tokens); without it only alg must be HS256 (for published test vectors with kid etc.).
 * detached_payload: for RFC 7520 detached content (compact form with an empty middle segment);
 * NULL otherwise. Returns GW_JWT_OK, MALFORMED, BAD_HEADER or BAD_SIGNATURE.
 */
gw_jwt_status gw_jws_verify_hs256(const char *token, size_t len, const uint8_t *key, size_t key_len,
                                  bool strict_header, const char *detached_payload,
                                  size_t detached_len);

/*
 * Verifies a gateway JWT: strict header, signature with key or (during rotation) prev_key
 * (may be NULL), then claims: sub (string), iat and exp (integers) required, nbf optional;
 * exp and nbf checked against now with leeway seconds; iat must not be more than leeway in the
 * future. now is passed in so tests control the clock.
 */
gw_jwt_status gw_jwt_verify(const char *token, size_t len, const uint8_t *key, size_t key_len,
                            const uint8_t *prev_key, size_t prev_key_len, int64_t now,
                            int64_t leeway, gw_jwt_claims *out);

/*
 * Issues a JWT {"alg":"HS256","typ":"JWT"}.{"sub":sub,"iat":iat,"exp":iat+ttl}. Returns a
 * malloc'd NUL-terminated token, or NULL on failure.
 */
char *gw_jwt_issue(const uint8_t *key, size_t key_len, const char *sub, int64_t iat,
                   int64_t ttl_seconds);

#endif /* GW_JWT_H */
