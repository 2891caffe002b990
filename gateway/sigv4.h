/*
 * sigv4.h: AWS Signature Version 4 (HMAC-SHA256), on OpenSSL, for presigned S3 GET URLs.
 *
 * The gateway hands clients short-lived URLs to objects in an S3-compatible store (Tigris by
 * default) instead of proxying the bytes, so the one thing it must get exactly right is the
 * S3 flavour of SigV4: the object key is URI-encoded once, paths are never normalized, the
 * payload is UNSIGNED-PAYLOAD and only the host header is signed.
 *
 * The lower-level functions below also implement the generic-service flavour (path
 * normalization, the path encoded a second time, header signing, session tokens) because the
 * published test suites are written for it; checking the shared machinery against them is the
 * reason those options exist. Nothing in this module logs, and every copy of a secret or a key
 * derived from it is wiped before its memory is released.
 */
#ifndef GW_SIGV4_H
#define GW_SIGV4_H

#include "core/dfd_core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_SIGV4_KEY_MAX 1024       /* longest S3 object key, in bytes (the S3 limit) */
#define GW_SIGV4_EXPIRES_MAX 604800 /* seven days: the longest a SigV4 presign may live */
#define GW_SIGV4_AMZ_DATE_LEN 16    /* 20130524T000000Z */
#define GW_SIGV4_SIG_HEX_LEN 64     /* lower-case hex HMAC-SHA256 */
#define GW_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* ---- presigned S3 GET (what the gateway uses) ------------------------------------------- */

typedef struct gw_s3_target {
    const char *endpoint; /* "https://fly.storage.tigris.dev" or "http://127.0.0.1:4569": scheme,
                             host, optional port, no path (a lone trailing '/' is tolerated) */
    const char *region;   /* "auto", "us-east-1", ... */
    const char *bucket;
    bool virtual_host; /* true: https://<bucket>.<host>/<key>; false: <endpoint>/<bucket>/<key> */
} gw_s3_target;

typedef struct gw_sigv4_result gw_sigv4_result;

/*
 * Presigned GET URL (query-string authentication; payload hash UNSIGNED-PAYLOAD in the canonical
 * request; only the host header signed), valid for `expires` seconds (1..604800), signed at `now`
 * (seconds since the epoch). Returns a malloc'd URL (release with free()) or NULL on bad input:
 * missing argument; empty key or key longer than 1024 bytes; a key with a "." or ".." path
 * segment (HTTP clients rewrite those before sending, so the URL could not work); endpoint not
 * http(s)://host[:port] (no user info, path, query or fragment; port 1..65535); bucket not
 * 3..63 of [a-z0-9.-] starting and ending alphanumeric without ".."; virtual host style on an IP
 * literal endpoint; region not 1..64 of [A-Za-z0-9_-]; access key id not 1..128 printable ASCII
 * without '/'; secret empty or longer than 256 bytes; expires out of range; now negative or past
 * the year 9999. The host (hence the URL and the signed host header) is written in lower case,
 * and the port is kept only when it is not the scheme's default, as HTTP clients send it.
 */
char *gw_s3_presign_get(const gw_s3_target *t, const char *access_key_id,
                        const char *secret_access_key, const char *object_key, int expires,
                        int64_t now);

/*
 * The same, also filling detail (when not NULL, initialized with gw_sigv4_result_init) with the
 * canonical request, string to sign and signature, for tests. The caller frees detail.
 */
char *gw_s3_presign_get_detail(const gw_s3_target *t, const char *access_key_id,
                               const char *secret_access_key, const char *object_key, int expires,
                               int64_t now, gw_sigv4_result *detail);

/* ---- general SigV4 (for the test suites and any later S3 call) -------------------------- */

/* A header or a query parameter. Query names and values are raw (not percent-encoded). */
typedef struct gw_sigv4_kv {
    const char *name;
    const char *value; /* NULL is the same as "" */
} gw_sigv4_kv;

typedef struct gw_sigv4_request {
    const char *method; /* "GET", ... */
    /* The path as sent on the wire, so already percent-encoded ("/my%20key"). NULL or "" is
     * "/"; otherwise it must start with '/'. */
    const char *path;
    const gw_sigv4_kv *query; /* raw names and values, in any order, repeats allowed */
    size_t n_query;
    /* Every header to sign, names in any case, repeats allowed (their values are joined with
     * ',' in the order given). A host header is required. */
    const gw_sigv4_kv *headers;
    size_t n_headers;
    const char *payload_hash; /* lower-case hex SHA-256 of the body, or UNSIGNED-PAYLOAD */
} gw_sigv4_request;

typedef struct gw_sigv4_config {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* temporary credentials; NULL for none */
    /* Send the session token without signing it (added after the signature, as some services
     * require; aws-c-auth's omit_session_token). */
    bool session_token_unsigned;
    const char *region;
    const char *service; /* "s3", "iam", ... */
    int64_t now;         /* signing time, seconds since the epoch */
    /* Generic services only, never S3: remove "." and ".." segments and empty segments from
     * the path before signing. */
    bool normalize_path;
    /* Generic services only, never S3: URI-encode the (wire) path once more for the canonical
     * request, so "%20" is signed as "%2520". S3 signs the path exactly as sent. */
    bool double_encode_path;
    /* Header signing: add and sign x-amz-content-sha256 (S3 and aws-c-auth's sign_body). */
    bool content_sha256_header;
} gw_sigv4_config;

struct gw_sigv4_result {
    char amz_date[GW_SIGV4_AMZ_DATE_LEN + 1];
    dfd_buf canonical_request; /* terminated */
    dfd_buf string_to_sign;    /* terminated */
    char signature[GW_SIGV4_SIG_HEX_LEN + 1];
    dfd_buf signed_headers; /* "host;x-amz-date", terminated */
    /* Header signing: the Authorization header value, terminated. The caller also sends what
     * the signer added: X-Amz-Date (amz_date) unless the request had it, X-Amz-Security-Token
     * when there is a token, and X-Amz-Content-Sha256 when content_sha256_header is set. */
    dfd_buf authorization;
    /* Presigning: the complete query string to send (no leading '?'): the canonical query
     * string, then the unsigned session token if any, then X-Amz-Signature. Terminated. */
    dfd_buf query;
};

void gw_sigv4_result_init(gw_sigv4_result *r);
void gw_sigv4_result_free(gw_sigv4_result *r);

/*
 * Signs a request with an Authorization header. x-amz-date is added (and signed) unless the
 * request has it, in which case it must equal the formatted `now`; a signed session token adds
 * x-amz-security-token unless present. Returns false on invalid input or allocation failure.
 */
bool gw_sigv4_sign_headers(const gw_sigv4_config *c, const gw_sigv4_request *r,
                           gw_sigv4_result *out);

/*
 * Presigns a request (query-string authentication) valid for expires seconds (1..604800). The
 * request's own query must not already carry X-Amz-Algorithm, -Credential, -Date, -Expires,
 * -SignedHeaders, -Security-Token or -Signature (in any case). Returns false on invalid input or
 * allocation failure.
 */
bool gw_sigv4_presign(const gw_sigv4_config *c, const gw_sigv4_request *r, int expires,
                      gw_sigv4_result *out);

/* ---- building blocks -------------------------------------------------------------------- */

/*
 * URI-encodes len bytes the SigV4 way: every byte except A-Z a-z 0-9 - _ . ~ becomes %XX with
 * upper-case hex (a space is %20, never '+'); with keep_slash, '/' is kept as the separator of
 * path segments, otherwise it is %2F.
 */
bool gw_sigv4_uri_encode(dfd_buf *out, const char *s, size_t len, bool keep_slash);

/* The canonical URI of a wire path (see gw_sigv4_config for the two options). */
bool gw_sigv4_canonical_path(dfd_buf *out, const char *path, bool normalize, bool double_encode);

/* The canonical query string: names and values encoded, sorted by name, then by value. */
bool gw_sigv4_canonical_query(dfd_buf *out, const gw_sigv4_kv *q, size_t n);

/*
 * The canonical headers (each "name:value\n": names lower case, values trimmed with inner runs
 * of spaces and tabs collapsed to one space, repeats joined with ',') and the signed header
 * list ("a;b;c"). Refuses an empty name, a name that is not an HTTP token, and CR or LF in a
 * value. signed_headers may be NULL.
 */
bool gw_sigv4_canonical_headers(dfd_buf *out, dfd_buf *signed_headers, const gw_sigv4_kv *h,
                                size_t n);

/* The whole canonical request; signed_headers (may be NULL) receives the signed header list. */
bool gw_sigv4_canonical_request(dfd_buf *out, dfd_buf *signed_headers, const gw_sigv4_request *r,
                                bool normalize, bool double_encode);

/* Formats now as 20130524T000000Z. Years 1970..9999 only. */
bool gw_sigv4_amz_date(int64_t now, char out[GW_SIGV4_AMZ_DATE_LEN + 1]);

/*
 * "AWS4-HMAC-SHA256\n<amz_date>\n<yyyymmdd>/<region>/<service>/aws4_request\n<hex SHA-256 of
 * the canonical request>".
 */
bool gw_sigv4_string_to_sign(dfd_buf *out, const char *amz_date, const char *region,
                             const char *service, const char *canonical_request, size_t len);

/*
 * The signing key chain: steps[0] = kDate = HMAC("AWS4" + secret, date), steps[1] = kRegion,
 * steps[2] = kService, steps[3] = kSigning = HMAC(kService, "aws4_request"). date is yyyymmdd.
 */
bool gw_sigv4_signing_key_steps(const char *secret, const char *date, const char *region,
                                const char *service, uint8_t steps[4][DFD_SHA256_LEN]);
bool gw_sigv4_signing_key(const char *secret, const char *date, const char *region,
                          const char *service, uint8_t key[DFD_SHA256_LEN]);

/* Lower-case hex HMAC-SHA256(key, string to sign). */
bool gw_sigv4_signature(const uint8_t key[DFD_SHA256_LEN], const char *sts, size_t len,
                        char out[GW_SIGV4_SIG_HEX_LEN + 1]);

#endif /* GW_SIGV4_H */
