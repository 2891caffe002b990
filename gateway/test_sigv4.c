/*
 * test_sigv4.c: tests of sigv4.c against published vectors and an independent implementation.
 *
 *   test_sigv4 VECTOR_DIR      (VECTOR_DIR = testdata/sigv4)
 *
 * (1) The AWS documentation's presigned S3 GET: exact canonical request, string to sign,
 *     signature and URL. (2) The four S3 Authorization-header examples, the IAM example and the
 *     signing-key derivations. (3) aws-c-auth's v4 suite: header signing and query presigning.
 *     (4) botocore's aws4 suite: header signing. (5) Own cases: keys with spaces, unicode and
 *     reserved characters in both URL styles, expected URLs computed by expected_keys.py (a
 *     separate Python implementation), and bad inputs that must be refused.
 *
 * Prints one line per failed check and finally "sigv4: N passed, N failed"; exits non-zero
 * when anything failed.
 */
#include "sigv4.h"

#include "core/dfd_core.h"
#include "core/test_check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *vector_dir;

/* ---- helpers ----------------------------------------------------------------------------- */

static char *
xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static json_t *
load_json(const char *file)
{
    char path[4096];
    json_error_t err;
    json_t *root;

    snprintf(path, sizeof path, "%s/%s", vector_dir, file);
    root = json_load_file(path, 0, &err);
    if (root == NULL) {
        fprintf(stderr, "%s: %s (line %d)\n", path, err.text, err.line);
        exit(2);
    }
    return root;
}

/* A string member, or "" when missing (the comparison that follows then fails visibly). */
static const char *
jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : "";
}

static const char *
buf_text(const dfd_buf *b)
{
    return b->data != NULL ? b->data : "";
}

/* "20150830T123600Z" or "2015-08-30T12:36:00Z" to seconds since the epoch. */
static int64_t
parse_time(const char *s)
{
    struct tm tm;

    memset(&tm, 0, sizeof tm);
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6 &&
        sscanf(s, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6) {
        fprintf(stderr, "bad time %s\n", s);
        exit(2);
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static void
sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t d[DFD_SHA256_LEN];

    if (!dfd_sha256(data, len, d)) {
        fprintf(stderr, "sha256 failed\n");
        exit(2);
    }
    dfd_hex_encode(d, sizeof d, out);
    out[64] = '\0';
}

/* Percent-decoding of a query name or value as found on the wire; '+' is left alone. */
static char *
percent_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        uint8_t byte;

        if (s[i] == '%' && i + 2 < n && dfd_hex_decode(s + i + 1, 2, &byte, 1)) {
            out[o++] = (char)byte;
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* ---- HTTP request text as the suites write it ------------------------------------------- */

typedef struct parsed_request {
    char *method;
    char *path;
    gw_sigv4_kv *query; /* decoded, malloc'd names and values */
    size_t n_query;
    gw_sigv4_kv *headers; /* malloc'd names and values */
    size_t n_headers;
    char *body;
    size_t body_len;
} parsed_request;

static void
split_query(const char *q, size_t len, gw_sigv4_kv **out, size_t *n_out)
{
    size_t cap = 1, n = 0;
    gw_sigv4_kv *kv;

    for (size_t i = 0; i < len; i++)
        if (q[i] == '&')
            cap++;
    kv = xmalloc(cap * sizeof *kv);
    for (size_t i = 0; i < len;) {
        size_t j = i, eq;

        while (j < len && q[j] != '&')
            j++;
        if (j > i) {
            eq = i;
            while (eq < j && q[eq] != '=')
                eq++;
            kv[n].name = percent_decode(q + i, eq - i);
            kv[n].value = eq < j ? percent_decode(q + eq + 1, j - eq - 1) : percent_decode("", 0);
            n++;
        }
        i = j + 1;
    }
    *out = kv;
    *n_out = n;
}

static void
free_kv(gw_sigv4_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)kv[i].name);
        free((char *)kv[i].value);
    }
    free(kv);
}

/*
 * "METHOD target HTTP/1.1\nName:value\n...[\n\nbody]". The target may contain spaces, so it
 * runs from the first space to the last one. A line starting with whitespace continues the
 * previous header (obs-fold), which HTTP replaces by a single space.
 */
static void
parse_request(const char *text, parsed_request *r)
{
    const char *end = text + strlen(text), *eol = strchr(text, '\n');
    const char *sp1, *sp2, *target, *qmark, *p;
    size_t max_headers = 1;

    memset(r, 0, sizeof *r);
    if (eol == NULL)
        eol = end;
    sp1 = memchr(text, ' ', (size_t)(eol - text));
    sp2 = eol;
    while (sp2 > text && sp2[-1] != ' ')
        sp2--;
    if (sp1 == NULL || sp2 - 1 <= sp1) {
        fprintf(stderr, "bad request line\n");
        exit(2);
    }
    r->method = xstrndup(text, (size_t)(sp1 - text));
    target = sp1 + 1;
    qmark = memchr(target, '?', (size_t)(sp2 - 1 - target));
    r->path = xstrndup(target, (size_t)((qmark != NULL ? qmark : sp2 - 1) - target));
    if (qmark != NULL)
        split_query(qmark + 1, (size_t)(sp2 - 1 - qmark - 1), &r->query, &r->n_query);
    else
        split_query("", 0, &r->query, &r->n_query);

    for (p = text; *p != '\0'; p++)
        if (*p == '\n')
            max_headers++;
    r->headers = xmalloc(max_headers * sizeof *r->headers);
    r->body = xstrndup("", 0);
    for (p = eol < end ? eol + 1 : end; p < end;) {
        const char *e = strchr(p, '\n'), *colon;

        if (e == NULL)
            e = end;
        if (e == p) { /* blank line: the body follows */
            free(r->body);
            r->body_len = (size_t)(end - (e + 1 <= end ? e + 1 : end));
            r->body = xstrndup(e + 1 <= end ? e + 1 : end, r->body_len);
            break;
        }
        if ((*p == ' ' || *p == '\t') && r->n_headers > 0) {
            gw_sigv4_kv *h = &r->headers[r->n_headers - 1];
            size_t old = strlen(h->value), add = (size_t)(e - p);
            char *v = xmalloc(old + 1 + add + 1);

            memcpy(v, h->value, old);
            v[old] = ' ';
            memcpy(v + old + 1, p, add);
            v[old + 1 + add] = '\0';
            free((char *)h->value);
            h->value = v;
        } else {
            colon = memchr(p, ':', (size_t)(e - p));
            if (colon == NULL) {
                fprintf(stderr, "bad header line\n");
                exit(2);
            }
            r->headers[r->n_headers].name = xstrndup(p, (size_t)(colon - p));
            r->headers[r->n_headers].value = xstrndup(colon + 1, (size_t)(e - colon - 1));
            r->n_headers++;
        }
        p = e < end ? e + 1 : end;
    }
}

static void
free_request(parsed_request *r)
{
    free(r->method);
    free(r->path);
    free_kv(r->query, r->n_query);
    free_kv(r->headers, r->n_headers);
    free(r->body);
}

/* The value of the first line of text starting with prefix, up to the end of that line. */
static char *
line_value(const char *text, const char *prefix)
{
    size_t plen = strlen(prefix);

    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *e = strchr(p, '\n');
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);

        if (len >= plen && memcmp(p, prefix, plen) == 0)
            return xstrndup(p + plen, len - plen);
        p = e != NULL ? e + 1 : NULL;
    }
    return NULL;
}

static int
kv_text_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Decoded query parameters as sorted "name=value" lines, so two query strings that carry the
 * same parameters in another order or encoding compare equal. */
static char *
query_multiset(const char *q, size_t len)
{
    gw_sigv4_kv *kv;
    size_t n, total = 1, o = 0;
    char **lines, *out;

    split_query(q, len, &kv, &n);
    lines = xmalloc((n > 0 ? n : 1) * sizeof *lines);
    for (size_t i = 0; i < n; i++) {
        size_t ln = strlen(kv[i].name), lv = strlen(kv[i].value);

        lines[i] = xmalloc(ln + lv + 2);
        memcpy(lines[i], kv[i].name, ln);
        lines[i][ln] = '=';
        memcpy(lines[i] + ln + 1, kv[i].value, lv + 1);
        total += ln + lv + 2;
    }
    qsort(lines, n, sizeof *lines, kv_text_cmp);
    out = xmalloc(total);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(lines[i]);

        memcpy(out + o, lines[i], l);
        out[o + l] = '\n';
        o += l + 1;
        free(lines[i]);
    }
    out[o] = '\0';
    free(lines);
    free_kv(kv, n);
    return out;
}

/* The S3 documentation prints Authorization parameters separated by "," and IAM by ", "; AWS
 * accepts both, so compare without the optional space. */
static char *
without_space_after_comma(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *out = xmalloc(n + 1);

    for (size_t i = 0; i < n; i++)
        if (!(s[i] == ' ' && i > 0 && s[i - 1] == ','))
            out[o++] = s[i];
    out[o] = '\0';
    return out;
}

static void
check_text(const char *what, const char *name, const char *got, const char *want)
{
    CHECK(strcmp(got, want) == 0, "%s %s:\n  got:  \"%s\"\n  want: \"%s\"", name, what, got, want);
}

/* ---- (1) and (2): the AWS documentation ------------------------------------------------- */

static void
test_doc_presigned_get(const json_t *ex)
{
    const json_t *in = json_object_get(ex, "inputs");
    gw_s3_target t = {"https://s3.amazonaws.com", jstr(in, "region"), jstr(in, "bucket"), true};
    gw_sigv4_result res;
    char *url, hash[65];
    int64_t now = parse_time(jstr(in, "x_amz_date"));
    int expires = (int)json_integer_value(json_object_get(in, "expires_seconds"));
    const char *name = jstr(ex, "name");

    gw_sigv4_result_init(&res);
    url = gw_s3_presign_get_detail(&t, jstr(in, "access_key_id"), jstr(in, "secret_access_key"),
                                   jstr(in, "key"), expires, now, &res);
    CHECK(url != NULL, "%s: presign refused", name);
    if (url != NULL) {
        check_text("canonical request", name, buf_text(&res.canonical_request),
                   jstr(ex, "canonical_request"));
        sha256_hex(res.canonical_request.data, res.canonical_request.len, hash);
        check_text("canonical request SHA-256", name, hash, jstr(ex, "canonical_request_sha256"));
        check_text("string to sign", name, buf_text(&res.string_to_sign),
                   jstr(ex, "string_to_sign"));
        check_text("signature", name, res.signature, jstr(ex, "signature"));
        check_text("URL", name, url, jstr(ex, "presigned_url"));
        CHECK(strncmp(url, jstr(in, "url_without_auth"), strlen(jstr(in, "url_without_auth"))) == 0,
              "%s: URL does not start with url_without_auth", name);
        /* the wrapper without detail gives the same URL */
        char *plain =
            gw_s3_presign_get(&t, jstr(in, "access_key_id"), jstr(in, "secret_access_key"),
                              jstr(in, "key"), expires, now);
        CHECK(plain != NULL && strcmp(plain, url) == 0, "%s: gw_s3_presign_get differs", name);
        free(plain);
    }
    free(url);

    /* the same through the general presigner, with the host header given directly */
    {
        gw_sigv4_kv host = {"Host", "examplebucket.s3.amazonaws.com"};
        gw_sigv4_request req = {.method = "GET",
                                .path = "/test.txt",
                                .headers = &host,
                                .n_headers = 1,
                                .payload_hash = GW_SIGV4_UNSIGNED_PAYLOAD};
        gw_sigv4_config cfg = {.access_key_id = jstr(in, "access_key_id"),
                               .secret_access_key = jstr(in, "secret_access_key"),
                               .region = jstr(in, "region"),
                               .service = jstr(in, "service"),
                               .now = now};

        CHECK(gw_sigv4_presign(&cfg, &req, expires, &res), "%s: gw_sigv4_presign failed", name);
        check_text("signature (gw_sigv4_presign)", name, res.signature, jstr(ex, "signature"));
    }
    gw_sigv4_result_free(&res);
}

static void
test_doc_header_example(const json_t *ex)
{
    const json_t *in = json_object_get(ex, "inputs");
    const json_t *jq = json_object_get(in, "query"), *jh = json_object_get(in, "headers");
    const char *name = jstr(ex, "name"), *service = jstr(in, "service");
    bool s3 = strcmp(service, "s3") == 0;
    size_t nq = json_array_size(jq), nh = json_array_size(jh);
    gw_sigv4_kv *q = xmalloc((nq > 0 ? nq : 1) * sizeof *q), *h = xmalloc(nh * sizeof *h);
    dfd_buf wire_path;
    gw_sigv4_result res;
    char hash[65];

    for (size_t i = 0; i < nq; i++) {
        q[i].name = json_string_value(json_array_get(json_array_get(jq, i), 0));
        q[i].value = json_string_value(json_array_get(json_array_get(jq, i), 1));
    }
    for (size_t i = 0; i < nh; i++) {
        h[i].name = json_string_value(json_array_get(json_array_get(jh, i), 0));
        h[i].value = json_string_value(json_array_get(json_array_get(jh, i), 1));
    }
    /* the documented path is the key itself; on the wire it is encoded once */
    dfd_buf_init(&wire_path);
    gw_sigv4_uri_encode(&wire_path, jstr(in, "path"), strlen(jstr(in, "path")), true);
    dfd_buf_terminate(&wire_path);

    gw_sigv4_request req = {.method = jstr(in, "method"),
                            .path = wire_path.data,
                            .query = q,
                            .n_query = nq,
                            .headers = h,
                            .n_headers = nh,
                            .payload_hash = jstr(in, "payload_sha256")};
    gw_sigv4_config cfg = {.access_key_id = jstr(in, "access_key_id"),
                           .secret_access_key = jstr(in, "secret_access_key"),
                           .region = jstr(in, "region"),
                           .service = service,
                           .now = parse_time(jstr(in, "x_amz_date")),
                           .normalize_path = !s3,
                           .double_encode_path = !s3};

    gw_sigv4_result_init(&res);
    CHECK(gw_sigv4_sign_headers(&cfg, &req, &res), "%s: signing failed", name);
    check_text("canonical request", name, buf_text(&res.canonical_request),
               jstr(ex, "canonical_request"));
    sha256_hex(buf_text(&res.canonical_request), res.canonical_request.len, hash);
    check_text("canonical request SHA-256", name, hash, jstr(ex, "canonical_request_sha256"));
    check_text("string to sign", name, buf_text(&res.string_to_sign), jstr(ex, "string_to_sign"));
    check_text("signature", name, res.signature, jstr(ex, "signature"));
    {
        char *got = without_space_after_comma(buf_text(&res.authorization));
        char *want = without_space_after_comma(jstr(ex, "authorization_header"));

        check_text("Authorization", name, got, want);
        free(got);
        free(want);
    }
    if (!s3) /* the IAM example prints ", " exactly as the signer writes it */
        check_text("Authorization (exact)", name, buf_text(&res.authorization),
                   jstr(ex, "authorization_header"));
    if (json_object_get(ex, "signing_key_hex") != NULL) {
        uint8_t key[DFD_SHA256_LEN];
        char hex[65] = "", date[9];

        memcpy(date, res.amz_date, 8);
        date[8] = '\0';
        CHECK(gw_sigv4_signing_key(cfg.secret_access_key, date, cfg.region, service, key),
              "%s: signing key failed", name);
        dfd_hex_encode(key, sizeof key, hex);
        hex[64] = '\0';
        check_text("signing key", name, hex, jstr(ex, "signing_key_hex"));
    }
    gw_sigv4_result_free(&res);
    dfd_buf_free(&wire_path);
    free(q);
    free(h);
}

static void
test_doc_derivation(const json_t *d, size_t index)
{
    static const char *const step_names[4] = {"kDate", "kRegion", "kService", "kSigning"};
    uint8_t steps[4][DFD_SHA256_LEN];
    char name[32];

    snprintf(name, sizeof name, "derivation %zu", index);
    CHECK(gw_sigv4_signing_key_steps(jstr(d, "secret_access_key"), jstr(d, "date"),
                                     jstr(d, "region"), jstr(d, "service"), steps),
          "%s: failed", name);
    for (int i = 0; i < 4; i++) {
        char hex[65];

        if (json_object_get(d, step_names[i]) == NULL)
            continue;
        dfd_hex_encode(steps[i], DFD_SHA256_LEN, hex);
        hex[64] = '\0';
        check_text(step_names[i], name, hex, jstr(d, step_names[i]));
    }
}

static void
test_aws_docs(void)
{
    json_t *root = load_json("aws-doc-examples.json");
    const json_t *examples = json_object_get(root, "examples");
    const json_t *derivations = json_object_get(root, "signing_key_derivations");
    size_t n_header = 0;

    for (size_t i = 0; i < json_array_size(examples); i++) {
        const json_t *ex = json_array_get(examples, i);

        if (json_object_get(ex, "presigned_url") != NULL) {
            test_doc_presigned_get(ex);
        } else {
            test_doc_header_example(ex);
            n_header++;
        }
    }
    CHECK(n_header == 5, "expected 5 header examples, found %zu", n_header);
    CHECK(json_array_size(derivations) == 2, "expected 2 derivations");
    for (size_t i = 0; i < json_array_size(derivations); i++)
        test_doc_derivation(json_array_get(derivations, i), i);
    json_decref(root);
}

/* ---- (3) aws-c-auth ----------------------------------------------------------------------- */

static void
test_c_auth_case(const json_t *c)
{
    const char *name = jstr(c, "name");
    const json_t *ctx = json_object_get(c, "context"), *files = json_object_get(c, "files");
    const json_t *cred = json_object_get(ctx, "credentials");
    parsed_request pr;
    gw_sigv4_result res;
    char payload_hash[65], *line;

    parse_request(jstr(files, "request.txt"), &pr);
    sha256_hex(pr.body, pr.body_len, payload_hash);
    gw_sigv4_request req = {.method = pr.method,
                            .path = pr.path,
                            .query = pr.query,
                            .n_query = pr.n_query,
                            .headers = pr.headers,
                            .n_headers = pr.n_headers,
                            .payload_hash = payload_hash};
    gw_sigv4_config cfg = {
        .access_key_id = jstr(cred, "access_key_id"),
        .secret_access_key = jstr(cred, "secret_access_key"),
        .session_token = json_string_value(json_object_get(cred, "token")),
        .session_token_unsigned = json_is_true(json_object_get(ctx, "omit_session_token")),
        .region = jstr(ctx, "region"),
        .service = jstr(ctx, "service"),
        .now = parse_time(jstr(ctx, "timestamp")),
        .normalize_path = json_is_true(json_object_get(ctx, "normalize")),
        /* generic services: the wire path is encoded again, normalized or not */
        .double_encode_path = true,
        .content_sha256_header = json_is_true(json_object_get(ctx, "sign_body")),
    };
    gw_sigv4_result_init(&res);

    /* header signing */
    CHECK(gw_sigv4_sign_headers(&cfg, &req, &res), "aws-c-auth %s: header signing failed", name);
    check_text("header canonical request", name, buf_text(&res.canonical_request),
               jstr(files, "header-canonical-request.txt"));
    check_text("header string to sign", name, buf_text(&res.string_to_sign),
               jstr(files, "header-string-to-sign.txt"));
    check_text("header signature", name, res.signature, jstr(files, "header-signature.txt"));
    line = line_value(jstr(files, "header-signed-request.txt"), "Authorization:");
    check_text("Authorization", name, buf_text(&res.authorization), line != NULL ? line : "");
    free(line);
    line = line_value(jstr(files, "header-signed-request.txt"), "X-Amz-Date:");
    check_text("X-Amz-Date", name, res.amz_date, line != NULL ? line : "");
    free(line);

    /* query-string presigning */
    int expires = (int)json_integer_value(json_object_get(ctx, "expiration_in_seconds"));

    CHECK(gw_sigv4_presign(&cfg, &req, expires, &res), "aws-c-auth %s: presigning failed", name);
    check_text("query canonical request", name, buf_text(&res.canonical_request),
               jstr(files, "query-canonical-request.txt"));
    check_text("query string to sign", name, buf_text(&res.string_to_sign),
               jstr(files, "query-string-to-sign.txt"));
    check_text("query signature", name, res.signature, jstr(files, "query-signature.txt"));
    {
        /* the presigned request line carries the same parameters (aws-c-auth orders and
         * encodes them its own way, so compare them decoded and sorted) */
        const char *signed_req = jstr(files, "query-signed-request.txt");
        const char *eol = strchr(signed_req, '\n'), *q = strchr(signed_req, '?'), *sp2;
        char *want, *got;

        if (eol == NULL)
            eol = signed_req + strlen(signed_req);
        sp2 = eol;
        while (sp2 > signed_req && sp2[-1] != ' ')
            sp2--;
        want = (q != NULL && q < sp2) ? query_multiset(q + 1, (size_t)(sp2 - 1 - (q + 1)))
                                      : xstrndup("", 0);
        got = query_multiset(buf_text(&res.query), res.query.len);
        check_text("presigned query parameters", name, got, want);
        free(want);
        free(got);
    }
    gw_sigv4_result_free(&res);
    free_request(&pr);
}

/* Runs one case function over a suite file's "cases", which must hold exactly `expected`. */
static void
run_suite(const char *file, const char *label, size_t expected, void (*one)(const json_t *))
{
    json_t *root = load_json(file);
    const json_t *cases = json_object_get(root, "cases");

    CHECK(json_array_size(cases) == expected, "%s: expected %zu cases, found %zu", label, expected,
          json_array_size(cases));
    for (size_t i = 0; i < json_array_size(cases); i++)
        one(json_array_get(cases, i));
    json_decref(root);
}

static void
test_c_auth(void)
{
    run_suite("aws-c-auth-v4-suite.json", "aws-c-auth", 38, test_c_auth_case);
}

/* ---- (4) botocore ------------------------------------------------------------------------- */

static void
test_botocore_case(const json_t *c)
{
    const char *name = jstr(c, "name");
    parsed_request pr;
    gw_sigv4_result res;
    char payload_hash[65], *token, *line;

    parse_request(jstr(c, "req"), &pr);
    sha256_hex(pr.body, pr.body_len, payload_hash);
    /*
     * The suite states the session token only in the signed request; whether the service
     * wants it signed (post-sts-header-before, get-vanilla-with-session-token) or added after
     * signing (post-sts-header-after) is the case's premise, read from its canonical request.
     */
    token = line_value(jstr(c, "sreq"), "X-Amz-Security-Token:");
    gw_sigv4_request req = {.method = pr.method,
                            .path = pr.path,
                            .query = pr.query,
                            .n_query = pr.n_query,
                            .headers = pr.headers,
                            .n_headers = pr.n_headers,
                            .payload_hash = payload_hash};
    gw_sigv4_config cfg = {
        .access_key_id = "AKIDEXAMPLE",
        .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        .session_token = token,
        .session_token_unsigned = strstr(jstr(c, "creq"), "x-amz-security-token:") == NULL,
        .region = "us-east-1",
        .service = "service",
        .now = parse_time("20150830T123600Z"),
        .normalize_path = true,
        .double_encode_path = true,
    };

    gw_sigv4_result_init(&res);
    CHECK(gw_sigv4_sign_headers(&cfg, &req, &res), "botocore %s: signing failed", name);
    check_text("canonical request", name, buf_text(&res.canonical_request), jstr(c, "creq"));
    check_text("string to sign", name, buf_text(&res.string_to_sign), jstr(c, "sts"));
    check_text("Authorization", name, buf_text(&res.authorization), jstr(c, "authz"));
    line = line_value(jstr(c, "sreq"), "Authorization: ");
    if (strcmp(name, "get-vanilla-with-session-token") == 0) {
        /*
         * Upstream inconsistency: this case's .sreq carries get-vanilla's signature (5fa00fa3...)
         * while its .creq, .sts and .authz agree with each other and with us (07ec1639...; also
         * recomputed with Python hmac). Pin the known bad value so a corrected file is noticed.
         */
        const char *sig = line != NULL ? strstr(line, "Signature=") : NULL;

        check_text("signed request signature (known upstream error)", name, sig != NULL ? sig : "",
                   "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
        CHECK(strstr(buf_text(&res.authorization), "Signature=07ec1639") != NULL,
              "%s: signature is not the one .authz gives", name);
    } else {
        check_text("signed request Authorization", name, buf_text(&res.authorization),
                   line != NULL ? line : "");
    }
    free(line);
    free(token);
    gw_sigv4_result_free(&res);
    free_request(&pr);
}

static void
test_botocore(void)
{
    run_suite("botocore-aws4-testsuite.json", "botocore", 34, test_botocore_case);
}

/* ---- (5) own cases ------------------------------------------------------------------------ */

static void
test_expected_keys(void)
{
    json_t *root = load_json("expected-keys.json");
    const json_t *cases = json_object_get(root, "cases");
    const char *ak = jstr(root, "access_key_id"), *sk = jstr(root, "secret_access_key");

    CHECK(json_array_size(cases) >= 20, "expected-keys: too few cases");
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        gw_s3_target t = {jstr(c, "endpoint"), jstr(c, "region"), jstr(c, "bucket"),
                          json_is_true(json_object_get(c, "virtual_host"))};
        char *url = gw_s3_presign_get(&t, ak, sk, jstr(c, "key"),
                                      (int)json_integer_value(json_object_get(c, "expires")),
                                      (int64_t)json_integer_value(json_object_get(c, "now")));

        check_text("URL", jstr(c, "name"), url != NULL ? url : "(refused)", jstr(c, "url"));
        /* the secret, raw or encoded, never appears in a URL */
        CHECK(url == NULL || (strstr(url, "tsec_") == NULL && strstr(url, sk) == NULL),
              "%s: secret in URL", jstr(c, "name"));
        free(url);
    }
    json_decref(root);
}

static const char tigris[] = "https://fly.storage.tigris.dev";

static bool
refused_target(const char *endpoint, const char *region, const char *bucket, bool vh)
{
    gw_s3_target t = {endpoint, region, bucket, vh};
    char *url = gw_s3_presign_get(&t, "AKID", "secret", "key", 60, 1700000000);

    free(url);
    return url == NULL;
}

static void
test_bad_inputs(void)
{
    static const char *const bad_endpoints[] = {
        "",
        "fly.storage.tigris.dev",
        "ftp://fly.storage.tigris.dev",
        "https://",
        "https:///",
        "https://fly.storage.tigris.dev/path",
        "https://fly.storage.tigris.dev//",
        "https://fly.storage.tigris.dev?x=1",
        "https://fly.storage.tigris.dev#f",
        "https://user@fly.storage.tigris.dev",
        "https://user:pw@fly.storage.tigris.dev",
        "https://fly.storage.tigris.dev:",
        "https://fly.storage.tigris.dev:0",
        "https://fly.storage.tigris.dev:65536",
        "https://fly.storage.tigris.dev:123456",
        "https://fly.storage.tigris.dev:8a",
        "https://fly storage.tigris.dev",
        "https://fly..storage",
        "https://.fly.storage",
        "https://fly.storage.",
        "https://fly_storage.dev",
        "https://[::1",
        "https://[]",
        "https://[::1]x",
        "https://[fe80::1%25eth0]",
        "https://[1.2.3.4]",
        " https://fly.storage.tigris.dev",
        "https://fly.storage.tigris.dev ",
    };
    static const char *const bad_buckets[] = {
        "",     "ab",   "UPPER", "-abc",
        "abc-", ".abc", "abc.",  "a..b",
        "a_b",  "a b",  "a/b",   "a234567890123456789012345678901234567890123456789012345678901234",
    };
    static const char *const bad_regions[] = {
        "",
        "us/east",
        "us east",
        "a\nb",
        "r2345678901234567890123456789012345678901234567890123456789012345", /* 65 bytes */
    };
    static const char *const bad_keys[] = {"",
                                           ".",
                                           "..",
                                           "./a",
                                           "../a",
                                           "a/.",
                                           "a/..",
                                           "a/./b",
                                           "a/../b",
                                           "/./",
                                           "x/../../etc/passwd"};
    gw_s3_target good = {tigris, "auto", "receipts", true};
    char *url, big_key[GW_SIGV4_KEY_MAX + 2], big_secret[258];

    for (size_t i = 0; i < sizeof bad_endpoints / sizeof *bad_endpoints; i++) {
        CHECK(refused_target(bad_endpoints[i], "auto", "receipts", false),
              "endpoint \"%s\" accepted (path style)", bad_endpoints[i]);
        CHECK(refused_target(bad_endpoints[i], "auto", "receipts", true),
              "endpoint \"%s\" accepted (virtual host)", bad_endpoints[i]);
    }
    CHECK(refused_target(NULL, "auto", "receipts", false), "NULL endpoint accepted");
    for (size_t i = 0; i < sizeof bad_buckets / sizeof *bad_buckets; i++)
        CHECK(refused_target(tigris, "auto", bad_buckets[i], false), "bucket \"%s\" accepted",
              bad_buckets[i]);
    CHECK(refused_target(tigris, "auto", NULL, false), "NULL bucket accepted");
    for (size_t i = 0; i < sizeof bad_regions / sizeof *bad_regions; i++)
        CHECK(refused_target(tigris, bad_regions[i], "receipts", true), "region \"%s\" accepted",
              bad_regions[i]);
    CHECK(refused_target(tigris, NULL, "receipts", true), "NULL region accepted");
    /* a bucket name cannot be put in front of an IP address */
    CHECK(refused_target("http://127.0.0.1:4569", "auto", "receipts", true),
          "virtual host on IPv4 accepted");
    CHECK(refused_target("http://[::1]:9000", "auto", "receipts", true),
          "virtual host on IPv6 accepted");
    CHECK(!refused_target("http://127.0.0.1:4569", "auto", "receipts", false),
          "path style on IPv4 refused");

    for (size_t i = 0; i < sizeof bad_keys / sizeof *bad_keys; i++) {
        url = gw_s3_presign_get(&good, "AKID", "secret", bad_keys[i], 60, 1700000000);
        CHECK(url == NULL, "key \"%s\" accepted", bad_keys[i]);
        free(url);
    }
    url = gw_s3_presign_get(&good, "AKID", "secret", NULL, 60, 1700000000);
    CHECK(url == NULL, "NULL key accepted");
    free(url);
    memset(big_key, 'k', sizeof big_key - 1);
    big_key[GW_SIGV4_KEY_MAX + 1] = '\0'; /* 1025 bytes */
    url = gw_s3_presign_get(&good, "AKID", "secret", big_key, 60, 1700000000);
    CHECK(url == NULL, "1025-byte key accepted");
    free(url);
    big_key[GW_SIGV4_KEY_MAX] = '\0'; /* 1024 bytes */
    url = gw_s3_presign_get(&good, "AKID", "secret", big_key, 60, 1700000000);
    CHECK(url != NULL, "1024-byte key refused");
    free(url);

    {
        static const int bad_expires[] = {0, -1, GW_SIGV4_EXPIRES_MAX + 1, -2147483647 - 1,
                                          2147483647};

        for (size_t i = 0; i < sizeof bad_expires / sizeof *bad_expires; i++) {
            url = gw_s3_presign_get(&good, "AKID", "secret", "k", bad_expires[i], 1700000000);
            CHECK(url == NULL, "expires %d accepted", bad_expires[i]);
            free(url);
        }
    }
    {
        static const int64_t bad_now[] = {-1, 253402300800LL, INT64_MIN, INT64_MAX};

        for (size_t i = 0; i < sizeof bad_now / sizeof *bad_now; i++) {
            url = gw_s3_presign_get(&good, "AKID", "secret", "k", 60, bad_now[i]);
            CHECK(url == NULL, "now %lld accepted", (long long)bad_now[i]);
            free(url);
        }
    }
    {
        static const char *const bad_ak[] = {"", "AK/ID", "AK ID", "AK\nID"};

        for (size_t i = 0; i < sizeof bad_ak / sizeof *bad_ak; i++) {
            url = gw_s3_presign_get(&good, bad_ak[i], "secret", "k", 60, 1700000000);
            CHECK(url == NULL, "access key \"%s\" accepted", bad_ak[i]);
            free(url);
        }
    }
    url = gw_s3_presign_get(&good, NULL, "secret", "k", 60, 1700000000);
    CHECK(url == NULL, "NULL access key accepted");
    free(url);
    url = gw_s3_presign_get(&good, "AKID", "", "k", 60, 1700000000);
    CHECK(url == NULL, "empty secret accepted");
    free(url);
    url = gw_s3_presign_get(&good, "AKID", NULL, "k", 60, 1700000000);
    CHECK(url == NULL, "NULL secret accepted");
    free(url);
    memset(big_secret, 's', sizeof big_secret - 1);
    big_secret[sizeof big_secret - 1] = '\0'; /* 257 bytes */
    url = gw_s3_presign_get(&good, "AKID", big_secret, "k", 60, 1700000000);
    CHECK(url == NULL, "257-byte secret accepted");
    free(url);
    big_secret[256] = '\0';
    url = gw_s3_presign_get(&good, "AKID", big_secret, "k", 60, 1700000000);
    CHECK(url != NULL, "256-byte secret refused");
    free(url);
    url = gw_s3_presign_get(NULL, "AKID", "secret", "k", 60, 1700000000);
    CHECK(url == NULL, "NULL target accepted");
    free(url);
}

/* The building blocks on their own, and the refusals of the general signer. */
static void
test_building_blocks(void)
{
    static const struct {
        const char *in;
        bool keep_slash;
        const char *want;
    } enc[] = {
        {"a b", false, "a%20b"}, {"a+b", false, "a%2Bb"}, {"a/b", false, "a%2Fb"},
        {"a/b", true, "a/b"},    {"-_.~", false, "-_.~"}, {"\xc3\xa9", true, "%C3%A9"},
        {"*", true, "%2A"},      {"%", true, "%25"},      {"\x01\x7f\xff", false, "%01%7F%FF"},
    };
    dfd_buf b;
    gw_sigv4_result res;

    dfd_buf_init(&b);
    for (size_t i = 0; i < sizeof enc / sizeof *enc; i++) {
        dfd_buf_reset(&b);
        CHECK(gw_sigv4_uri_encode(&b, enc[i].in, strlen(enc[i].in), enc[i].keep_slash) &&
                  dfd_buf_terminate(&b),
              "encode %zu failed", i);
        check_text("uri encode", enc[i].in, buf_text(&b), enc[i].want);
    }

    /* query values: '/' is %2F, space %20, never '+'; sorted by encoded name then value */
    {
        gw_sigv4_kv q[] = {{"prefix", "a b/c+d"}, {"a", "2"}, {"a", "1"}, {"list-type", NULL}};

        dfd_buf_reset(&b);
        CHECK(gw_sigv4_canonical_query(&b, q, 4) && dfd_buf_terminate(&b), "query failed");
        check_text("canonical query", "own", buf_text(&b),
                   "a=1&a=2&list-type=&prefix=a%20b%2Fc%2Bd");
    }

    /* paths: S3 mode takes the wire path as is and refuses one not in canonical form */
    {
        static const struct {
            const char *in;
            bool normalize, dbl;
            const char *want; /* NULL: refused */
        } paths[] = {
            {"/a//b/./../c", false, false, NULL}, /* '.' is unreserved, so this is canonical */
            {"/a b", false, false, NULL},
            {"/a%2fb", false, false, NULL},
            {"/a%2", false, false, NULL},
            {"/a%2Fb", false, false, "/a%2Fb"},
            {"a", false, false, NULL},
            {"", false, false, "/"},
            {"/a%20b", false, true, "/a%2520b"},
            {"/a/b/../c/./d//", true, true, "/a/c/d/"},
            {"/../../a", true, true, "/a"},
            {"/a/..", true, false, "/"},
            {"//", true, false, "/"},
        };

        for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
            bool ok;

            dfd_buf_reset(&b);
            ok = gw_sigv4_canonical_path(&b, paths[i].in, paths[i].normalize, paths[i].dbl) &&
                 dfd_buf_terminate(&b);
            if (i == 0) {
                /* dot segments are left alone when not normalizing (S3) */
                CHECK(ok && strcmp(buf_text(&b), "/a//b/./../c") == 0, "S3 path with dots: %s",
                      buf_text(&b));
                continue;
            }
            if (paths[i].want == NULL)
                CHECK(!ok, "path \"%s\" accepted", paths[i].in);
            else
                CHECK(ok && strcmp(buf_text(&b), paths[i].want) == 0,
                      "path \"%s\": got \"%s\", want \"%s\"", paths[i].in,
                      ok ? buf_text(&b) : "(refused)", paths[i].want);
        }
    }

    /* headers: CR/LF in a value, a bad name, and no headers are refused */
    {
        gw_sigv4_kv crlf[] = {{"host", "a\r\nx-amz-date:1"}};
        gw_sigv4_kv space_name[] = {{"ho st", "a"}};
        gw_sigv4_kv colon_name[] = {{"host:", "a"}};
        gw_sigv4_kv empty_name[] = {{"", "a"}};
        gw_sigv4_kv ok_h[] = {{"B", "  x \t y  "}, {"a", ""}, {"b", "z"}};

        dfd_buf_reset(&b);
        CHECK(!gw_sigv4_canonical_headers(&b, NULL, crlf, 1), "CRLF header value accepted");
        CHECK(!gw_sigv4_canonical_headers(&b, NULL, space_name, 1), "header name with space");
        CHECK(!gw_sigv4_canonical_headers(&b, NULL, colon_name, 1), "header name with colon");
        CHECK(!gw_sigv4_canonical_headers(&b, NULL, empty_name, 1), "empty header name");
        CHECK(!gw_sigv4_canonical_headers(&b, NULL, ok_h, 0), "no headers accepted");
        dfd_buf reset_names;

        dfd_buf_init(&reset_names);
        dfd_buf_reset(&b);
        CHECK(gw_sigv4_canonical_headers(&b, &reset_names, ok_h, 3) && dfd_buf_terminate(&b),
              "headers failed");
        check_text("canonical headers", "own", buf_text(&b), "a:\nb:x y,z\n");
        check_text("signed headers", "own", buf_text(&reset_names), "a;b");
        dfd_buf_free(&reset_names);
    }

    /* general signer refusals */
    {
        gw_sigv4_kv host = {"host", "example.com"};
        gw_sigv4_kv wrong_date[] = {{"host", "example.com"}, {"X-Amz-Date", "20000101T000000Z"}};
        gw_sigv4_kv reserved_q = {"X-Amz-Signature", "x"};
        gw_sigv4_kv other = {"accept", "*/*"};
        gw_sigv4_request req = {.method = "GET",
                                .path = "/k",
                                .headers = &host,
                                .n_headers = 1,
                                .payload_hash = GW_SIGV4_UNSIGNED_PAYLOAD};
        gw_sigv4_config cfg = {.access_key_id = "AKID",
                               .secret_access_key = "secret",
                               .region = "auto",
                               .service = "s3",
                               .now = 1700000000};
        gw_sigv4_request r2;
        char first[GW_SIGV4_SIG_HEX_LEN + 1];

        gw_sigv4_result_init(&res);
        CHECK(gw_sigv4_presign(&cfg, &req, 60, &res), "plain presign failed");
        memcpy(first, res.signature, sizeof first);
        /* a reused result is emptied first, so the same input gives the same output */
        CHECK(gw_sigv4_presign(&cfg, &req, 60, &res) && strcmp(first, res.signature) == 0 &&
                  strstr(buf_text(&res.query), "X-Amz-Signature=") ==
                      strrchr(buf_text(&res.query), '&') + 1,
              "reused result differs");
        CHECK(!gw_sigv4_presign(&cfg, &req, 0, &res), "presign expires 0 accepted");
        CHECK(!gw_sigv4_presign(&cfg, &req, GW_SIGV4_EXPIRES_MAX + 1, &res),
              "presign expires 604801 accepted");
        r2 = req;
        r2.headers = &other;
        CHECK(!gw_sigv4_presign(&cfg, &r2, 60, &res), "presign without host accepted");
        CHECK(!gw_sigv4_sign_headers(&cfg, &r2, &res), "header signing without host accepted");
        r2 = req;
        r2.query = &reserved_q;
        r2.n_query = 1;
        CHECK(!gw_sigv4_presign(&cfg, &r2, 60, &res), "presign with X-Amz-Signature accepted");
        r2 = req;
        r2.headers = wrong_date;
        r2.n_headers = 2;
        CHECK(!gw_sigv4_sign_headers(&cfg, &r2, &res), "mismatched X-Amz-Date accepted");
        r2 = req;
        r2.method = "GET /";
        CHECK(!gw_sigv4_sign_headers(&cfg, &r2, &res), "method with space accepted");
        r2 = req;
        r2.payload_hash = "abc\n";
        CHECK(!gw_sigv4_sign_headers(&cfg, &r2, &res), "payload hash with LF accepted");
        cfg.region = "us/east";
        CHECK(!gw_sigv4_presign(&cfg, &req, 60, &res), "region with '/' accepted");
        cfg.region = "auto";
        cfg.session_token = "";
        CHECK(!gw_sigv4_presign(&cfg, &req, 60, &res), "empty session token accepted");
        cfg.session_token = NULL;
        CHECK(res.signature[0] == '\0' && res.query.len == 0,
              "a refused signing left output behind");
        gw_sigv4_result_free(&res);
    }

    /* dates */
    {
        char d[GW_SIGV4_AMZ_DATE_LEN + 1];

        CHECK(gw_sigv4_amz_date(0, d) && strcmp(d, "19700101T000000Z") == 0, "epoch date");
        CHECK(gw_sigv4_amz_date(951782400, d) && strcmp(d, "20000229T000000Z") == 0,
              "leap day date");
        CHECK(gw_sigv4_amz_date(253402300799LL, d) && strcmp(d, "99991231T235959Z") == 0,
              "last date");
        CHECK(!gw_sigv4_amz_date(253402300800LL, d), "year 10000 accepted");
        CHECK(!gw_sigv4_amz_date(-1, d), "negative time accepted");
    }
    dfd_buf_free(&b);
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s VECTOR_DIR\n", argv[0]);
        return 2;
    }
    vector_dir = argv[1];

    test_aws_docs();
    test_c_auth();
    test_botocore();
    test_expected_keys();
    test_bad_inputs();
    test_building_blocks();

    dfd_sha256_thread_release();
    printf("sigv4: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
