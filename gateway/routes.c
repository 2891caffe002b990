/*
 * routes.c: the route table, as data. Routing, authentication, rate limits and the OpenAPI
 * 3.1 document (served at /openapi.json, committed as docs/openapi.json) all come from it, so
 * the document cannot drift from what the server does; the contract test checks both ways.
 */
#include "gw.h"

#include <stdio.h>
#include <string.h>

#define TEN_MIN 600
#define HOUR 3600

/* Rate limits of DESIGN.md section 6 (seed 001). */
#define LIMIT_NONE                                                                                 \
    {                                                                                              \
        {NULL, NULL, 0, 0},                                                                        \
        {                                                                                          \
            NULL, NULL, 0, 0                                                                       \
        }                                                                                          \
    }

const gw_route gw_routes[] = {
    {"GET", "/healthz", GW_AUTH_NONE, gw_h_healthz, "Liveness: the process serves", NULL, "Status",
     200, NULL, LIMIT_NONE},
    {"GET", "/readyz", GW_AUTH_NONE, gw_h_readyz, "Readiness: the database answers", NULL, "Status",
     200, NULL, LIMIT_NONE},
    {"GET", "/metrics", GW_AUTH_NONE, gw_h_metrics, "Prometheus metrics", NULL, NULL, 200, NULL,
     LIMIT_NONE},
    {"GET", "/openapi.json", GW_AUTH_NONE, gw_h_openapi, "This document", NULL, NULL, 200, NULL,
     LIMIT_NONE},
    {"POST",
     "/auth/request",
     GW_AUTH_NONE,
     gw_h_auth_request,
     "Email a magic link (same answer for every address)",
     "AuthRequest",
     "Status",
     202,
     NULL,
     {{"auth.request.email", "body:email", 5, TEN_MIN}, {"auth.request.ip", "ip", 5, TEN_MIN}}},
    {"POST",
     "/auth/verify",
     GW_AUTH_NONE,
     gw_h_auth_verify,
     "Exchange a magic-link token for a session token",
     "TokenBody",
     "Session",
     200,
     NULL,
     {{"auth.verify.ip", "ip", 20, TEN_MIN}, {NULL, NULL, 0, 0}}},
    {"POST",
     "/auth/accept-invite",
     GW_AUTH_NONE,
     gw_h_auth_accept_invite,
     "Accept an invite and log in",
     "TokenBody",
     "Session",
     200,
     NULL,
     {{"auth.accept_invite.ip", "ip", 20, TEN_MIN}, {NULL, NULL, 0, 0}}},
    {"GET", "/auth/magic", GW_AUTH_NONE, gw_h_auth_page,
     "The page a magic link opens (never consumes the token)", NULL, NULL, 200, "token",
     LIMIT_NONE},
    {"GET", "/auth/invite", GW_AUTH_NONE, gw_h_invite_page,
     "The page an invite link opens (never consumes the token)", NULL, NULL, 200, "token",
     LIMIT_NONE},
    {"GET", "/me", GW_AUTH_JWT, gw_h_me, "The logged-in user and their memberships", NULL, "Me",
     200, NULL, LIMIT_NONE},
    {"POST", "/orgs", GW_AUTH_JWT, gw_h_org_create, "Create an organization (you become its owner)",
     "OrgCreate", "Org", 201, NULL, LIMIT_NONE},
    {"GET", "/orgs/{org}", GW_AUTH_JWT, gw_h_org_get, "An organization you belong to", NULL, "Org",
     200, NULL, LIMIT_NONE},
    {"GET", "/orgs/{org}/members", GW_AUTH_JWT, gw_h_org_members, "Members of an organization",
     NULL, "Members", 200, NULL, LIMIT_NONE},
    {"PATCH", "/orgs/{org}/members/{user}", GW_AUTH_JWT, gw_h_member_patch,
     "Change a member's role (owners)", "RoleChange", NULL, 204, NULL, LIMIT_NONE},
    {"POST", "/orgs/{org}/invites", GW_AUTH_JWT, gw_h_invite_create,
     "Invite someone by email (owners)", "InviteCreate", "Invite", 201, NULL, LIMIT_NONE},
    {"GET", "/orgs/{org}/api-keys", GW_AUTH_JWT, gw_h_apikeys_list,
     "API keys of an organization (owners)", NULL, "ApiKeys", 200, NULL, LIMIT_NONE},
    {"POST", "/orgs/{org}/api-keys", GW_AUTH_JWT, gw_h_apikeys_create,
     "Create an API key (owners); the key is shown once", "ApiKeyCreate", "ApiKeyCreated", 201,
     NULL, LIMIT_NONE},
    {"DELETE", "/orgs/{org}/api-keys/{id}", GW_AUTH_JWT, gw_h_apikeys_delete,
     "Revoke an API key (owners)", NULL, NULL, 204, NULL, LIMIT_NONE},
    {"GET", "/receipts", GW_AUTH_JWT, gw_h_receipts_list,
     "Receipts of an organization, oldest first, by cursor", NULL, "ReceiptPage", 200,
     "org,after,limit", LIMIT_NONE},
    {"GET", "/receipts/{seq}", GW_AUTH_JWT, gw_h_receipt_get, "One receipt with its kept values",
     NULL, "ReceiptDetail", 200, "org", LIMIT_NONE},
    {"POST", "/receipts", GW_AUTH_APIKEY, gw_h_receipt_create, "Append a receipt (API key)",
     "ReceiptCreate", "ReceiptCreated", 201, NULL, LIMIT_NONE},
    {"POST", "/receipts/{seq}/share", GW_AUTH_JWT, gw_h_receipt_share,
     "Share a receipt; the link is shown once", "ShareCreate", "ShareCreated", 201, "org",
     LIMIT_NONE},
    {"DELETE", "/shares/{id}", GW_AUTH_JWT, gw_h_share_delete, "Revoke a share link", NULL, NULL,
     204, NULL, LIMIT_NONE},
    {"GET", "/share/{token}", GW_AUTH_NONE, gw_h_share_get, "A shared receipt's bundle (public)",
     NULL, "Bundle", 200, NULL,
     /* no limit here (DESIGN section 6 limits only downloads): tokens carry 256 bits, and a
        quota write per view would cost more than the view */
     LIMIT_NONE},
    {"GET", "/ledger/verify", GW_AUTH_JWT, gw_h_ledger_verify, "Verify an organization's ledger",
     NULL, "LedgerVerify", 200, "org", LIMIT_NONE},
    {"GET", "/ledger/checkpoint", GW_AUTH_JWT, gw_h_ledger_checkpoint,
     "The newest signed checkpoint (signed now if behind)", NULL, "Checkpoint", 200, "org",
     LIMIT_NONE},
    {"GET", "/ledger/proof/{seq}", GW_AUTH_JWT, gw_h_ledger_proof,
     "Inclusion proof bundle of a receipt", NULL, "Bundle", 200, "org", LIMIT_NONE},
    {"POST", "/internal/receipts", GW_AUTH_INTERNAL, gw_h_internal_receipt,
     "Record an operator receipt: incident, secret rotation, restore drill, backup, deploy "
     "(INTERNAL_API_KEY from an allowed address)",
     "InternalReceipt", "ReceiptCreated", 201, NULL, LIMIT_NONE},
    {"GET", "/ledger/keys", GW_AUTH_NONE, gw_h_ledger_keys,
     "The verifier key of this deployment's checkpoints", NULL, "Keys", 200, NULL, LIMIT_NONE},
    {"GET", "/datasets/catalog", GW_AUTH_JWT, gw_h_datasets_catalog,
     "The datasets on offer (never their storage keys)", NULL, "Catalog", 200, NULL, LIMIT_NONE},
    {"POST",
     "/datasets/catalog/{slug}/download",
     GW_AUTH_JWT,
     gw_h_dataset_download,
     "A short-lived presigned URL for a dataset (members of an org with an active membership; "
     "takes the daily quota and mints a dataset.download receipt)",
     "Empty",
     "DownloadGrant",
     200,
     "org",
     /* the per-org hour is counted in SQL, after the membership check (nobody spends another
        organization's allowance) */
     {{"dataset.download.ip", "ip", 60, HOUR}, {NULL, NULL, 0, 0}}},
    {"POST", "/internal/datasets", GW_AUTH_INTERNAL, gw_h_internal_dataset,
     "Stage (or re-stage) a dataset (the stager, INTERNAL_API_KEY from an allowed address)",
     "DatasetStage", "DatasetStaged", 200, NULL, LIMIT_NONE},
    {"POST", "/billing/checkout", GW_AUTH_JWT, gw_h_billing_checkout,
     "Open a Stripe Checkout Session for the organization's membership (owners)", "CheckoutCreate",
     "CheckoutSession", 201, "org", LIMIT_NONE},
    {"POST", "/webhooks/stripe", GW_AUTH_STRIPE, gw_h_stripe_webhook,
     "Stripe events (Stripe-Signature over the raw body; idempotent by event id)", "StripeEvent",
     "WebhookResult", 200, NULL, LIMIT_NONE},
    {"POST", "/runs", GW_AUTH_JWT, gw_h_run_create, "Queue a run (members)", "RunCreate",
     "RunCreated", 201, "org", LIMIT_NONE},
    {"GET", "/runs/{id}", GW_AUTH_JWT, gw_h_run_get,
     "A run's state and, once finished, its run.complete receipt", NULL, "Run", 200, NULL,
     LIMIT_NONE},
    {"POST", "/internal/runs", GW_AUTH_INTERNAL, gw_h_internal_run_create,
     "Queue a run for an organization, such as a restore drill (INTERNAL_API_KEY from an "
     "allowed address)",
     "InternalRunCreate", "RunCreated", 201, NULL, LIMIT_NONE},
    {"POST", "/internal/runner/claim", GW_AUTH_RUNNER, gw_h_runner_claim,
     "Claim the oldest queued run, or the one named by run_id, under a lease (RUNNER_TOKEN; 204 "
     "when none)",
     "RunnerClaim", "RunClaimed", 200, NULL, LIMIT_NONE},
    {"POST", "/internal/runner/{id}/status", GW_AUTH_RUNNER, gw_h_runner_status,
     "Extend the lease (running) or finish the run (succeeded/failed) (RUNNER_TOKEN)",
     "RunnerStatus", "RunStatus", 200, NULL, LIMIT_NONE},
};

const size_t gw_n_routes = sizeof gw_routes / sizeof gw_routes[0];

/* Matches one path against one pattern, collecting {placeholders}. */
static bool
match(const char *pattern, const char *path, char params[][128], int *n)
{
    *n = 0;
    while (*pattern && *path) {
        if (*pattern == '{') {
            const char *end = strchr(pattern, '}');
            size_t len = strcspn(path, "/");

            if (end == NULL || len == 0 || len >= 128 || *n >= GW_MAX_PARAMS)
                return false;
            memcpy(params[*n], path, len);
            params[*n][len] = '\0';
            (*n)++;
            pattern = end + 1;
            path += len;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

const gw_route *
gw_route_match(const char *method, const char *path, char params[][128], int *n_params,
               bool *path_known)
{
    char scratch[GW_MAX_PARAMS][128];
    int n;

    *path_known = false;
    for (size_t i = 0; i < gw_n_routes; i++) {
        if (!match(gw_routes[i].pattern, path, scratch, &n))
            continue;
        *path_known = true;
        if (strcmp(gw_routes[i].method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(gw_routes[i].method, "GET") == 0)) {
            memcpy(params, scratch, sizeof scratch);
            *n_params = n;
            return &gw_routes[i];
        }
    }
    return NULL;
}

void
gw_allowed_methods(const char *path, char *out, size_t cap)
{
    char scratch[GW_MAX_PARAMS][128];
    size_t o = 0;
    int n;

    out[0] = '\0';
    for (size_t i = 0; i < gw_n_routes; i++)
        if (match(gw_routes[i].pattern, path, scratch, &n) &&
            strstr(out, gw_routes[i].method) == NULL && o < cap)
            o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? ", " : "", gw_routes[i].method);
}

/* ---- OpenAPI --------------------------------------------------------------------------------- */

static json_t *
ref(const char *name)
{
    char path[128];

    snprintf(path, sizeof path, "#/components/schemas/%s", name);
    return json_pack("{s:s}", "$ref", path);
}

static json_t *
str_schema(const char *format)
{
    return format ? json_pack("{s:s,s:s}", "type", "string", "format", format)
                  : json_pack("{s:s}", "type", "string");
}

static json_t *
object(json_t *properties, const char *const *required)
{
    json_t *o = json_pack("{s:s,s:o}", "type", "object", "properties", properties);
    json_t *req = json_array();

    for (; required && *required; required++)
        json_array_append_new(req, json_string(*required));
    json_object_set_new(o, "required", req);
    return o;
}

/* The component schemas named by the route table. */
static json_t *
schemas(void)
{
    json_t *s = json_object();
    json_t *problem_props =
        json_pack("{s:o,s:o,s:o,s:o,s:o}", "type", str_schema(NULL), "title", str_schema(NULL),
                  "status", json_pack("{s:s}", "type", "integer"), "detail", str_schema(NULL),
                  "instance", str_schema(NULL));
    static const char *const problem_req[] = {"type", "title", "status", NULL};
    static const char *const status_req[] = {"status", NULL};
    static const char *const email_req[] = {"email", NULL};
    static const char *const token_req[] = {"token", NULL};
    static const char *const session_req[] = {"token", "user_id", "email", "memberships", NULL};
    static const char *const name_req[] = {"name", NULL};
    static const char *const org_req[] = {"org_id", "name", "created_at", "role", NULL};
    static const char *const role_req[] = {"role", NULL};
    static const char *const receipt_req[] = {"kind", "fields", NULL};
    static const char *const none[] = {NULL};

    json_object_set_new(s, "Problem", object(problem_props, problem_req));
    json_object_set_new(s, "Status",
                        object(json_pack("{s:o}", "status", str_schema(NULL)), status_req));
    json_object_set_new(s, "AuthRequest",
                        object(json_pack("{s:o}", "email", str_schema("email")), email_req));
    json_object_set_new(s, "TokenBody",
                        object(json_pack("{s:o}", "token", str_schema(NULL)), token_req));
    json_object_set_new(
        s, "Membership",
        object(json_pack("{s:o,s:o,s:o}", "org_id", str_schema("uuid"), "name", str_schema(NULL),
                         "role",
                         json_pack("{s:s,s:[s,s]}", "type", "string", "enum", "owner", "member")),
               none));
    json_object_set_new(
        s, "Session",
        object(json_pack("{s:o,s:o,s:o,s:o,s:o}", "token", str_schema(NULL), "user_id",
                         str_schema("uuid"), "email", str_schema("email"), "expires_at",
                         str_schema("date-time"), "memberships",
                         json_pack("{s:s,s:o}", "type", "array", "items", ref("Membership"))),
               session_req));
    json_object_set_new(
        s, "Me",
        object(json_pack("{s:o,s:o,s:o}", "user_id", str_schema("uuid"), "email",
                         str_schema("email"), "memberships",
                         json_pack("{s:s,s:o}", "type", "array", "items", ref("Membership"))),
               none));
    json_object_set_new(s, "OrgCreate",
                        object(json_pack("{s:o}", "name", str_schema(NULL)), name_req));
    json_object_set_new(s, "Org",
                        object(json_pack("{s:o,s:o,s:o,s:o}", "org_id", str_schema("uuid"), "name",
                                         str_schema(NULL), "created_at", str_schema("date-time"),
                                         "role", str_schema(NULL)),
                               org_req));
    json_object_set_new(
        s, "Members",
        json_pack("{s:s,s:o}", "type", "array", "items",
                  object(json_pack("{s:o,s:o,s:o,s:o}", "user_id", str_schema("uuid"), "email",
                                   str_schema("email"), "role", str_schema(NULL), "joined_at",
                                   str_schema("date-time")),
                         none)));
    json_object_set_new(
        s, "RoleChange",
        object(json_pack("{s:o}", "role",
                         json_pack("{s:s,s:[s,s]}", "type", "string", "enum", "owner", "member")),
               role_req));
    json_object_set_new(
        s, "InviteCreate",
        object(
            json_pack("{s:o,s:o,s:o}", "email", str_schema("email"), "role",
                      json_pack("{s:s,s:[s,s]}", "type", "string", "enum", "owner", "member"),
                      "ttl_hours",
                      json_pack("{s:s,s:i,s:i}", "type", "integer", "minimum", 1, "maximum", 720)),
            email_req));
    json_object_set_new(s, "Invite",
                        object(json_pack("{s:o,s:o}", "invite_id", str_schema("uuid"), "expires_at",
                                         str_schema("date-time")),
                               none));
    json_object_set_new(s, "ApiKeyCreate",
                        object(json_pack("{s:o}", "name", str_schema(NULL)), name_req));
    json_object_set_new(s, "ApiKeyCreated",
                        object(json_pack("{s:o,s:o,s:o}", "key_id", str_schema(NULL), "key",
                                         str_schema(NULL), "created_at", str_schema("date-time")),
                               none));
    json_object_set_new(
        s, "ApiKeys",
        json_pack("{s:s,s:o}", "type", "array", "items",
                  object(json_pack("{s:o,s:o,s:o,s:o,s:o}", "key_id", str_schema(NULL), "name",
                                   str_schema(NULL), "created_at", str_schema("date-time"),
                                   "last_used_at", json_pack("{s:[s,s]}", "type", "string", "null"),
                                   "revoked_at", json_pack("{s:[s,s]}", "type", "string", "null")),
                         none)));
    json_object_set_new(
        s, "ReceiptPage",
        object(json_pack("{s:o,s:o}", "items",
                         json_pack("{s:s,s:o}", "type", "array", "items",
                                   object(json_pack("{s:o,s:o,s:o,s:o,s:o}", "seq",
                                                    json_pack("{s:s}", "type", "integer"), "ts",
                                                    str_schema("date-time"), "kind",
                                                    str_schema(NULL), "hash", str_schema(NULL),
                                                    "fields", json_pack("{s:s}", "type", "object")),
                                          none)),
                         "next", json_pack("{s:[s,s]}", "type", "integer", "null")),
               none));
    json_object_set_new(
        s, "ReceiptDetail",
        object(json_pack("{s:o,s:o,s:o}", "receipt", json_pack("{s:s}", "type", "object"), "values",
                         json_pack("{s:s}", "type", "object"), "public_fields",
                         json_pack("{s:s}", "type", "array")),
               none));
    json_object_set_new(
        s, "ReceiptCreate",
        object(json_pack("{s:o,s:o,s:o}", "kind", str_schema(NULL), "fields",
                         json_pack("{s:s}", "type", "object"), "public_fields",
                         json_pack("{s:s,s:o}", "type", "array", "items", str_schema(NULL))),
               receipt_req));
    json_object_set_new(s, "ReceiptCreated",
                        object(json_pack("{s:o,s:o,s:o,s:o}", "org_id", str_schema("uuid"), "seq",
                                         json_pack("{s:s}", "type", "integer"), "hash",
                                         str_schema(NULL), "ts", str_schema("date-time")),
                               none));
    json_object_set_new(s, "ShareCreate",
                        object(json_pack("{s:o}", "ttl_hours",
                                         json_pack("{s:s,s:i,s:i}", "type", "integer", "minimum", 1,
                                                   "maximum", 8784)),
                               none));
    json_object_set_new(s, "ShareCreated",
                        object(json_pack("{s:o,s:o,s:o,s:o}", "share_id", str_schema("uuid"),
                                         "token", str_schema(NULL), "url", str_schema("uri"),
                                         "expires_at", str_schema("date-time")),
                               none));
    json_object_set_new(
        s, "Bundle",
        object(json_pack("{s:o,s:o,s:o,s:o}", "v", json_pack("{s:s}", "type", "integer"), "receipt",
                         json_pack("{s:s}", "type", "object"), "inclusion",
                         json_pack("{s:s}", "type", "object"), "checkpoint",
                         json_pack("{s:[s,s]}", "type", "string", "null")),
               none));
    json_object_set_new(
        s, "LedgerVerify",
        object(json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "org_id", str_schema("uuid"), "receipts",
                         json_pack("{s:s}", "type", "integer"), "head_seq",
                         json_pack("{s:[s,s]}", "type", "integer", "null"), "ok",
                         json_pack("{s:s}", "type", "boolean"), "first_bad_seq",
                         json_pack("{s:[s,s]}", "type", "integer", "null"), "detail",
                         str_schema(NULL)),
               none));
    json_object_set_new(
        s, "Checkpoint",
        object(json_pack("{s:o,s:o,s:o,s:o}", "tree_size", json_pack("{s:s}", "type", "integer"),
                         "current_size", json_pack("{s:s}", "type", "integer"), "note",
                         json_pack("{s:[s,s]}", "type", "string", "null"), "verifier_key",
                         str_schema(NULL)),
               none));
    json_object_set_new(
        s, "Keys",
        object(json_pack("{s:o,s:o}", "origin", str_schema(NULL), "verifier_keys",
                         json_pack("{s:s,s:o}", "type", "array", "items", str_schema(NULL))),
               none));
    json_object_set_new(
        s, "InternalReceipt",
        object(json_pack("{s:o,s:o,s:o,s:o}", "org", str_schema("uuid"), "kind", str_schema(NULL),
                         "fields", json_pack("{s:s}", "type", "object"), "public_fields",
                         json_pack("{s:s,s:o}", "type", "array", "items", str_schema(NULL))),
               none));
    json_object_set_new(s, "Empty", object(json_object(), none));
    json_object_set_new(
        s, "Catalog",
        object(json_pack("{s:o}", "datasets",
                         json_pack("{s:s,s:o}", "type", "array", "items",
                                   object(json_pack("{s:o,s:o,s:o,s:o,s:o}", "slug",
                                                    str_schema(NULL), "title", str_schema(NULL),
                                                    "size", json_pack("{s:s}", "type", "integer"),
                                                    "sha256", str_schema(NULL), "updated_at",
                                                    str_schema("date-time")),
                                          none))),
               none));
    json_object_set_new(s, "DownloadGrant",
                        object(json_pack("{s:o,s:o,s:o,s:o,s:o}", "slug", str_schema(NULL), "url",
                                         str_schema("uri"), "expires_at", str_schema("date-time"),
                                         "receipt_seq", json_pack("{s:s}", "type", "integer"),
                                         "downloads_today", json_pack("{s:s}", "type", "integer")),
                               none));
    json_object_set_new(s, "DatasetStage",
                        object(json_pack("{s:o,s:o,s:o,s:o,s:o}", "slug", str_schema(NULL), "title",
                                         str_schema(NULL), "storage_key", str_schema(NULL), "size",
                                         json_pack("{s:s,s:i}", "type", "integer", "minimum", 0),
                                         "sha256", str_schema(NULL)),
                               none));
    json_object_set_new(
        s, "DatasetStaged",
        object(json_pack("{s:o,s:o}", "slug", str_schema(NULL), "status", str_schema(NULL)), none));
    json_object_set_new(s, "CheckoutCreate",
                        object(json_pack("{s:o,s:o}", "success_url", str_schema("uri"),
                                         "cancel_url", str_schema("uri")),
                               none));
    json_object_set_new(
        s, "CheckoutSession",
        object(json_pack("{s:o,s:o}", "session_id", str_schema(NULL), "url", str_schema("uri")),
               none));
    json_object_set_new(
        s, "StripeEvent",
        object(json_pack("{s:o,s:o,s:o}", "id", str_schema(NULL), "type", str_schema(NULL), "data",
                         json_pack("{s:s}", "type", "object")),
               none));
    json_object_set_new(
        s, "WebhookResult",
        object(json_pack("{s:o,s:o}", "event_id", str_schema(NULL), "outcome",
                         json_pack("{s:s,s:[s,s,s,s]}", "type", "string", "enum", "applied",
                                   "duplicate", "ignored", "unknown_org")),
               none));
    json_object_set_new(s, "RunCreate",
                        object(json_pack("{s:o,s:o}", "kind", str_schema(NULL), "input",
                                         json_pack("{s:s}", "type", "object")),
                               none));
    json_object_set_new(s, "RunCreated",
                        object(json_pack("{s:o,s:o,s:o,s:o}", "run_id", str_schema("uuid"),
                                         "org_id", str_schema("uuid"), "state", str_schema(NULL),
                                         "created_at", str_schema("date-time")),
                               none));
    json_object_set_new(
        s, "Run",
        object(json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "run_id", str_schema("uuid"),
                         "org_id", str_schema("uuid"), "kind", str_schema(NULL), "state",
                         json_pack("{s:s,s:[s,s,s,s]}", "type", "string", "enum", "queued",
                                   "running", "succeeded", "failed"),
                         "created_at", str_schema("date-time"), "attempts",
                         json_pack("{s:s}", "type", "integer"), "finished_at",
                         json_pack("{s:[s,s]}", "type", "string", "null"), "output_digest",
                         json_pack("{s:[s,s]}", "type", "string", "null"), "receipt_seq",
                         json_pack("{s:[s,s]}", "type", "integer", "null")),
               none));
    json_object_set_new(
        s, "InternalRunCreate",
        object(json_pack("{s:o,s:o,s:o}", "org", str_schema("uuid"), "kind", str_schema(NULL),
                         "input", json_pack("{s:s}", "type", "object")),
               none));
    json_object_set_new(
        s, "RunnerClaim",
        object(
            json_pack("{s:o,s:o,s:o}", "runner", str_schema(NULL), "lease_seconds",
                      json_pack("{s:s,s:i,s:i}", "type", "integer", "minimum", 10, "maximum", 3600),
                      "run_id", str_schema("uuid")),
            none));
    json_object_set_new(s, "RunClaimed",
                        object(json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "org_id", str_schema("uuid"),
                                         "run_id", str_schema("uuid"), "kind", str_schema(NULL),
                                         "input", json_pack("{s:s}", "type", "object"),
                                         "lease_until", str_schema("date-time"), "attempts",
                                         json_pack("{s:s}", "type", "integer")),
                               none));
    json_object_set_new(
        s, "RunnerStatus",
        object(json_pack(
                   "{s:o,s:o,s:o,s:o,s:o}", "runner", str_schema(NULL), "state",
                   json_pack("{s:s,s:[s,s,s]}", "type", "string", "enum", "running", "succeeded",
                             "failed"),
                   "output_digest", str_schema(NULL), "detail", str_schema(NULL), "lease_seconds",
                   json_pack("{s:s,s:i,s:i}", "type", "integer", "minimum", 10, "maximum", 3600)),
               none));
    json_object_set_new(
        s, "RunStatus",
        object(json_pack("{s:o,s:o,s:o}", "run_id", str_schema("uuid"), "state", str_schema(NULL),
                         "receipt_seq", json_pack("{s:[s,s]}", "type", "integer", "null")),
               none));
    /* the members every answer carries, so that validating a response checks their presence */
    {
        static const struct {
            const char *schema;
            const char *where; /* NULL: the schema; "items": its array items; "page": items of
                                  items; another name: the items of that array member */
            const char *const required[8];
        } req[] = {
            {"Me", NULL, {"user_id", "email", "memberships"}},
            {"Membership", NULL, {"org_id", "name", "role"}},
            {"Members", "items", {"user_id", "email", "role", "joined_at"}},
            {"Invite", NULL, {"invite_id", "expires_at"}},
            {"ApiKeyCreated", NULL, {"key_id", "key", "created_at"}},
            {"ApiKeys", "items", {"key_id", "name", "created_at", "last_used_at", "revoked_at"}},
            {"ReceiptPage", NULL, {"items", "next"}},
            {"ReceiptPage", "page", {"seq", "ts", "kind", "hash", "fields"}},
            {"ReceiptDetail", NULL, {"receipt", "values", "public_fields"}},
            {"ReceiptCreated", NULL, {"org_id", "seq", "hash", "ts"}},
            {"ShareCreated", NULL, {"share_id", "token", "url", "expires_at"}},
            {"Bundle", NULL, {"v", "receipt", "inclusion", "checkpoint"}},
            {"LedgerVerify",
             NULL,
             {"org_id", "receipts", "head_seq", "ok", "first_bad_seq", "detail"}},
            {"Checkpoint", NULL, {"tree_size", "current_size", "note", "verifier_key"}},
            {"Keys", NULL, {"origin", "verifier_keys"}},
            {"InternalReceipt", NULL, {"org", "kind", "fields"}},
            {"Catalog", NULL, {"datasets"}},
            {"Catalog", "datasets", {"slug", "title", "size", "sha256", "updated_at"}},
            {"DownloadGrant",
             NULL,
             {"slug", "url", "expires_at", "receipt_seq", "downloads_today"}},
            {"DatasetStage", NULL, {"slug", "title", "storage_key", "size", "sha256"}},
            {"DatasetStaged", NULL, {"slug", "status"}},
            {"CheckoutSession", NULL, {"session_id", "url"}},
            {"StripeEvent", NULL, {"id", "type", "data"}},
            {"WebhookResult", NULL, {"event_id", "outcome"}},
            {"RunCreate", NULL, {"kind"}},
            {"RunCreated", NULL, {"run_id", "org_id", "state", "created_at"}},
            {"Run", NULL, {"run_id", "org_id", "kind", "state", "created_at", "attempts"}},
            {"InternalRunCreate", NULL, {"org", "kind"}},
            {"RunnerClaim", NULL, {"runner"}},
            {"RunClaimed", NULL, {"org_id", "run_id", "kind", "input", "lease_until", "attempts"}},
            {"RunnerStatus", NULL, {"runner", "state"}},
            {"RunStatus", NULL, {"run_id", "state", "receipt_seq"}},
        };

        for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
            json_t *o = json_object_get(s, req[i].schema), *list = json_array();

            if (req[i].where != NULL && strcmp(req[i].where, "items") == 0)
                o = json_object_get(o, "items");
            else if (req[i].where != NULL && strcmp(req[i].where, "page") != 0)
                o = json_object_get(json_object_get(json_object_get(o, "properties"), req[i].where),
                                    "items");
            else if (req[i].where != NULL)
                o = json_object_get(json_object_get(json_object_get(o, "properties"), "items"),
                                    "items");
            for (int k = 0; k < 8 && req[i].required[k]; k++)
                json_array_append_new(list, json_string(req[i].required[k]));
            json_object_set_new(o, "required", list);
        }
    }
    return s;
}

json_t *
gw_openapi(const char *server_url)
{
    json_t *doc = json_object(), *paths = json_object();

    json_object_set_new(doc, "openapi", json_string("3.1.0"));
    json_object_set_new(
        doc, "info",
        json_pack("{s:s,s:s,s:s}", "title", "defendable gateway", "version", GW_VERSION,
                  "description",
                  "Tamper-evident receipts ledger. Errors are RFC 9457 problem+json."));
    json_object_set_new(doc, "servers", json_pack("[{s:s}]", "url", server_url));
    for (size_t i = 0; i < gw_n_routes; i++) {
        const gw_route *rt = &gw_routes[i];
        json_t *item = json_object_get(paths, rt->pattern), *op, *params = json_array(), *responses;
        char method[8], status[8];
        const char *p;

        if (item == NULL) {
            item = json_object();
            json_object_set_new(paths, rt->pattern, item);
        }
        for (size_t k = 0; rt->method[k] && k < sizeof method - 1; k++)
            method[k] = (char)(rt->method[k] - 'A' + 'a'), method[k + 1] = '\0';
        op = json_pack("{s:s}", "summary", rt->summary);
        for (p = strchr(rt->pattern, '{'); p; p = strchr(p + 1, '{')) {
            char name[32];
            size_t len = strcspn(p + 1, "}");

            snprintf(name, sizeof name, "%.*s", (int)len, p + 1);
            json_array_append_new(params, json_pack("{s:s,s:s,s:b,s:o}", "name", name, "in", "path",
                                                    "required", 1, "schema", str_schema(NULL)));
        }
        for (p = rt->query; p && *p;) {
            char name[32];
            size_t len = strcspn(p, ",");

            snprintf(name, sizeof name, "%.*s", (int)len, p);
            json_array_append_new(
                params, json_pack("{s:s,s:s,s:b,s:o}", "name", name, "in", "query", "required",
                                  strcmp(name, "org") == 0 || strcmp(name, "token") == 0, "schema",
                                  str_schema(NULL)));
            p += len + (p[len] == ',');
        }
        if (json_array_size(params) > 0)
            json_object_set_new(op, "parameters", params);
        else
            json_decref(params);
        if (rt->request)
            json_object_set_new(op, "requestBody",
                                json_pack("{s:b,s:{s:{s:o}}}", "required", 1, "content",
                                          "application/json", "schema", ref(rt->request)));
        responses = json_object();
        snprintf(status, sizeof status, "%u", rt->success_status);
        if (rt->response)
            json_object_set_new(responses, status,
                                json_pack("{s:s,s:{s:{s:o}}}", "description", "Success", "content",
                                          "application/json", "schema", ref(rt->response)));
        else
            json_object_set_new(responses, status, json_pack("{s:s}", "description", "Success"));
        json_object_set_new(responses, "default",
                            json_pack("{s:s,s:{s:{s:o}}}", "description", "A problem (RFC 9457)",
                                      "content", "application/problem+json", "schema",
                                      ref("Problem")));
        json_object_set_new(op, "responses", responses);
        if (rt->auth == GW_AUTH_JWT)
            json_object_set_new(op, "security", json_pack("[{s:[]}]", "session"));
        else if (rt->auth == GW_AUTH_APIKEY)
            json_object_set_new(op, "security", json_pack("[{s:[]}]", "apiKey"));
        json_object_set_new(item, method, op);
    }
    json_object_set_new(doc, "paths", paths);
    json_object_set_new(doc, "components",
                        json_pack("{s:o,s:{s:{s:s,s:s,s:s},s:{s:s,s:s,s:s}}}", "schemas", schemas(),
                                  "securitySchemes", "session", "type", "http", "scheme", "bearer",
                                  "bearerFormat", "JWT", "apiKey", "type", "http", "scheme",
                                  "bearer", "bearerFormat", "dfd_<id>_<secret>"));
    return doc;
}
