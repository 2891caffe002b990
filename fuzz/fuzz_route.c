/*
 * fuzz_route: request targets: gw_route_match and gw_allowed_methods (routes.c) over the real
 * route table, then the path and query parameter readers the handlers use (gw_param_uuid in
 * body.c; seq_param and org_param in handlers/common.h).
 *
 * The first input byte picks the method, the rest is the target "path[?query]".
 *
 * Invariants, against a matcher written here from the documented rule (a path matches a
 * pattern when they have the same '/'-separated segments, literal segments equal, each
 * {placeholder} segment non-empty and under 128 bytes; the first route in table order with the
 * path and the method wins, HEAD served by GET): the same route, the same parameters, the
 * same "path known" answer, an Allow list naming exactly the matching routes' methods; a seq
 * is accepted only as 1..15 digits without a leading zero, a UUID only in its 8-4-4-4-12 shape
 * and handed on in lower case.
 */
#include "gw_stubs.h"
#include "../gateway/handlers/common.h"
#include "fuzz_check.h"

#include <stdint.h>
#include <string.h>

/* the handlers are never called: the router only needs their addresses */
#define STUB(name)                                                                                 \
    void name(gw_req *r)                                                                           \
    {                                                                                              \
        (void)r;                                                                                   \
    }
STUB(gw_h_healthz)
STUB(gw_h_readyz)
STUB(gw_h_metrics)
STUB(gw_h_openapi)
STUB(gw_h_auth_request)
STUB(gw_h_auth_verify)
STUB(gw_h_auth_accept_invite)
STUB(gw_h_auth_page)
STUB(gw_h_invite_page)
STUB(gw_h_me)
STUB(gw_h_org_create)
STUB(gw_h_org_get)
STUB(gw_h_org_members)
STUB(gw_h_member_patch)
STUB(gw_h_invite_create)
STUB(gw_h_apikeys_list)
STUB(gw_h_apikeys_create)
STUB(gw_h_apikeys_delete)
STUB(gw_h_receipts_list)
STUB(gw_h_receipt_get)
STUB(gw_h_receipt_create)
STUB(gw_h_receipt_share)
STUB(gw_h_internal_receipt)
STUB(gw_h_share_delete)
STUB(gw_h_share_get)
STUB(gw_h_ledger_verify)
STUB(gw_h_ledger_checkpoint)
STUB(gw_h_ledger_proof)
STUB(gw_h_ledger_keys)
STUB(gw_h_datasets_catalog)
STUB(gw_h_dataset_download)
STUB(gw_h_internal_dataset)
STUB(gw_h_billing_checkout)
STUB(gw_h_stripe_webhook)
STUB(gw_h_run_create)
STUB(gw_h_run_get)
STUB(gw_h_internal_run_create)
STUB(gw_h_runner_claim)
STUB(gw_h_runner_status)

/* ?org= of the current input (libmicrohttpd's lookup, for this harness's one query string) */
static char org_query[GW_MAX_URL];
static bool has_org_query;

const char *
gw_query(gw_req *r, const char *name)
{
    (void)r;
    return strcmp(name, "org") == 0 && has_org_query ? org_query : NULL;
}

static const char *const methods[] = {"GET", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS", "PUT"};

/* The documented matching rule, segment by segment. */
static bool
seg_match(const char *pattern, const char *path, char params[][128], int *n)
{
    *n = 0;
    for (;;) {
        size_t pl = strcspn(pattern, "/"), xl = strcspn(path, "/");

        if (pl > 0 && pattern[0] == '{') {
            if (xl == 0 || xl >= 128)
                return false;
            memcpy(params[*n], path, xl);
            params[*n][xl] = '\0';
            (*n)++;
        } else if (pl != xl || memcmp(pattern, path, pl) != 0) {
            return false;
        }
        pattern += pl;
        path += xl;
        if (*pattern == '\0' || *path == '\0')
            return *pattern == '\0' && *path == '\0';
        pattern++;
        path++;
    }
}

static bool
all_digits(const char *s)
{
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static void
check_uuid_out(const char *given, const char *out)
{
    for (int i = 0; i < 37; i++) {
        char c = given[i] >= 'A' && given[i] <= 'F' ? (char)(given[i] - 'A' + 'a') : given[i];

        FUZZ_CHECK(out[i] == c, "a UUID not handed on in lower case");
    }
}

static void
check_params(gw_req *r)
{
    for (int i = 0; i < r->n_params; i++) {
        const char *p = r->params[i];
        char seq[24], uuid[37];
        size_t len = strlen(p);
        bool seq_ok = len >= 1 && len <= 15 && all_digits(p) && p[0] != '0';

        replies = 0;
        FUZZ_CHECK(seq_param(r, i, seq) == seq_ok, "seq_param disagrees with the rule");
        FUZZ_CHECK(replies == (seq_ok ? 0 : 1), "seq_param replies");
        if (seq_ok)
            FUZZ_CHECK(strcmp(seq, p) == 0, "seq_param changed the number");
        replies = 0;
        FUZZ_CHECK(gw_param_uuid(r, i, uuid) == fuzz_uuid_shape(p), "gw_param_uuid disagrees");
        if (replies == 0)
            check_uuid_out(p, uuid);
    }
    {
        char org[37];
        bool want = has_org_query && fuzz_uuid_shape(org_query);

        replies = 0;
        FUZZ_CHECK(org_param(r, org) == want, "org_param disagrees with the rule");
        if (want)
            check_uuid_out(org_query, org);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gw_req r;
    static char target[GW_MAX_URL];
    char want_params[GW_MAX_PARAMS][128], scratch[GW_MAX_PARAMS][128], allow[64];
    const gw_route *want = NULL, *got;
    bool known = false, got_known;
    int want_n = 0, n;
    const char *method, *q;

    if (size < 1 || size - 1 >= GW_MAX_URL || memchr(data + 1, '\0', size - 1) != NULL)
        return 0;
    memset(&r, 0, sizeof r);
    method = methods[data[0] % (sizeof methods / sizeof methods[0])];
    memcpy(target, data + 1, size - 1);
    target[size - 1] = '\0';
    /* the path is what libmicrohttpd hands over: the target without its query */
    q = strchr(target, '?');
    has_org_query = false;
    if (q != NULL) {
        const char *o = strstr(q + 1, "org=");

        if (o != NULL && (o == q + 1 || o[-1] == '&')) {
            size_t len = strcspn(o + 4, "&");

            memcpy(org_query, o + 4, len);
            org_query[len] = '\0';
            has_org_query = true;
        }
        memcpy(r.path, target, (size_t)(q - target));
        r.path[q - target] = '\0';
    } else {
        memcpy(r.path, target, size);
    }

    for (size_t i = 0; i < gw_n_routes; i++) {
        if (!seg_match(gw_routes[i].pattern, r.path, scratch, &n))
            continue;
        known = true;
        if (want == NULL &&
            (strcmp(gw_routes[i].method, method) == 0 ||
             (strcmp(method, "HEAD") == 0 && strcmp(gw_routes[i].method, "GET") == 0))) {
            want = &gw_routes[i];
            want_n = n;
            memcpy(want_params, scratch, sizeof scratch);
        }
    }
    got = gw_route_match(method, r.path, r.params, &r.n_params, &got_known);
    FUZZ_CHECK(got == want, "the router chose another route than the rule");
    FUZZ_CHECK(got_known == known, "the router's path-known answer differs from the rule");

    gw_allowed_methods(r.path, allow, sizeof allow);
    FUZZ_CHECK((allow[0] != '\0') == known, "an Allow list for an unknown path, or none");
    for (size_t i = 0; i < gw_n_routes; i++)
        if (seg_match(gw_routes[i].pattern, r.path, scratch, &n))
            FUZZ_CHECK(strstr(allow, gw_routes[i].method) != NULL, "Allow misses a method");

    if (got != NULL) {
        FUZZ_CHECK(r.n_params == want_n, "parameter count");
        for (int i = 0; i < want_n; i++)
            FUZZ_CHECK(strcmp(r.params[i], want_params[i]) == 0, "parameter text");
        check_params(&r);
    }
    return 0;
}
