/*
 * gw.h: the gateway's shared types. One request context, one route table, one problem table,
 * one body-spec parser, one database layer; every handler has the same shape:
 *
 *     parse the body through a field spec -> call one prepared SQL statement -> reply
 *
 * Authentication happens before the handler runs, from the route's auth kind.
 */
#ifndef GW_H
#define GW_H

#include <jansson.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core/dfd_core.h"
#include "core/dfd_note.h"

#define GW_VERSION "0.4.0"
#define GW_MAX_BODY (1024 * 1024) /* 413 past it */
#define GW_MAX_URL 2048           /* 414 past it */
#define GW_MAX_PARAMS 4

/* ---- problems (RFC 9457) --------------------------------------------------------------------- */

typedef enum gw_problem_id {
    GW_P_INVALID,       /* 422 invalid-request */
    GW_P_BAD_JSON,      /* 400 malformed-json */
    GW_P_UNAUTHORIZED,  /* 401 unauthorized */
    GW_P_FORBIDDEN,     /* 403 forbidden */
    GW_P_NOT_FOUND,     /* 404 not-found */
    GW_P_METHOD,        /* 405 method-not-allowed */
    GW_P_CONFLICT,      /* 409 conflict */
    GW_P_EXPIRED,       /* 410 expired */
    GW_P_TOO_LARGE,     /* 413 payload-too-large */
    GW_P_URI_TOO_LONG,  /* 414 uri-too-long */
    GW_P_MEDIA_TYPE,    /* 415 unsupported-media-type */
    GW_P_RATE_LIMITED,  /* 429 rate-limited */
    GW_P_BAD_SIGNATURE, /* 400 bad-signature (webhooks) */
    GW_P_INTERNAL,      /* 500 internal */
    GW_P_BAD_GATEWAY,   /* 502 upstream (Stripe, mail provider) */
    GW_P_UNAVAILABLE,   /* 503 unavailable */
    GW_P_COUNT
} gw_problem_id;

typedef struct gw_problem {
    const char *slug; /* the stable part of the type URI: urn:defendable:problem:<slug> */
    const char *title;
    unsigned status;
} gw_problem;

extern const gw_problem gw_problems[GW_P_COUNT];

/* The one place where the extension's SQLSTATEs become problems (docs/access-model.md). */
gw_problem_id gw_problem_for_sqlstate(const char *sqlstate);

/* ---- routes ---------------------------------------------------------------------------------- */

typedef enum gw_auth {
    GW_AUTH_NONE,     /* public */
    GW_AUTH_JWT,      /* Authorization: Bearer <JWT> */
    GW_AUTH_APIKEY,   /* Authorization: Bearer dfd_... (checked in SQL by the handler) */
    GW_AUTH_INTERNAL, /* INTERNAL_API_KEY from an allowlisted source */
    GW_AUTH_RUNNER,   /* RUNNER_TOKEN from an allowlisted source */
    GW_AUTH_STRIPE,   /* Stripe-Signature over the raw body (STRIPE_WEBHOOK_SECRET) */
} gw_auth;

struct gw_req;
typedef void (*gw_handler)(struct gw_req *r);

/* A rate limit applied before the handler: limit per window, keyed by client ip or a body field. */
typedef struct gw_limit {
    const char *scope; /* quota scope, e.g. "auth.request.ip" */
    const char *key;   /* "ip", or "body:<field>" (e.g. "body:email") */
    int limit;
    int window_seconds;
} gw_limit;

typedef struct gw_route {
    const char *method;
    const char *pattern; /* /orgs/{org}/members/{user} */
    gw_auth auth;
    gw_handler handler;
    const char *summary;     /* OpenAPI */
    const char *request;     /* OpenAPI schema name of the body, or NULL */
    const char *response;    /* OpenAPI schema name of the success body, or NULL */
    unsigned success_status; /* 200, 201, 202, 204 */
    const char *query;       /* comma separated query parameters (OpenAPI), or NULL */
    gw_limit limits[2];
} gw_route;

extern const gw_route gw_routes[];
extern const size_t gw_n_routes;

/*
 * Finds the route for method and path; params receive the {placeholders} in order. Returns NULL
 * and sets *path_known when the path exists with another method (405), or neither (404).
 */
const gw_route *gw_route_match(const char *method, const char *path, char params[][128],
                               int *n_params, bool *path_known);
/* The methods routed for a path ("GET, POST"), for the Allow header of a 405. */
void gw_allowed_methods(const char *path, char *out, size_t cap);
/* The OpenAPI 3.1 document generated from the route table (json_decref when done). */
json_t *gw_openapi(const char *server_url);

/* ---- database -------------------------------------------------------------------------------- */

/* Runs a prepared statement on this thread's connection (connecting and preparing on first use,
 * reconnecting once if the connection was lost). Returns NULL when the database is unreachable. */
PGresult *gw_db_exec(const char *stmt, int nparams, const char *const *values);
/* True if this thread can reach the database now (SELECT 1). */
bool gw_db_ready(void);
/* read_conninfo: DATABASE_READ_URL, or NULL (every statement on the primary). */
void gw_db_set_conninfo(const char *conninfo, const char *read_conninfo);
/* The next read-only statement of this thread runs on the primary (it must see a write just
 * made there, which a standby may not have replayed yet). */
void gw_db_primary_once(void);
void gw_db_close_thread(void);
extern atomic_int gw_db_connections; /* open connections, for /metrics */
extern atomic_long gw_db_reconnects;
extern atomic_long gw_db_replica_statements; /* read-only statements the standby answered */
extern atomic_long gw_db_replica_fallbacks;  /* ... and those it could not, sent to the primary */

/* ---- requests -------------------------------------------------------------------------------- */

typedef struct gw_req {
    struct MHD_Connection *conn;
    const gw_route *route;
    char method[8];
    char path[GW_MAX_URL];
    char params[GW_MAX_PARAMS][128];
    int n_params;
    char request_id[40];
    char ip[64]; /* client address as text */
    struct sockaddr_storage addr;
    char *body; /* upload, NUL-terminated */
    size_t body_len;
    bool body_too_large;
    json_t *json; /* parsed body (object) for JSON routes */
    /* authentication */
    char actor[64];     /* JWT subject */
    char iat[32];       /* JWT iat as timestamptz text */
    const char *bearer; /* raw bearer token (API key routes), points into MHD memory */
    /* response */
    struct MHD_Response *response;
    unsigned status;
    const char *problem; /* slug, for the access log */
    char retry_after[24];
    char allow[64]; /* Allow header of a 405 */
    size_t uri_len; /* the full request target, query included */
    /* an encoded NUL (%00) in the path or the query: libmicrohttpd decodes it into a C string,
     * where it would cut "/share/<token>%00x" down to a valid "/share/<token>" */
    bool nul_in_path, nul_in_query;
    bool started;
    char ratelimit[3][24]; /* RateLimit-Limit, -Remaining, -Reset */
    bool no_store;
    int64_t started_us;
} gw_req;

/* Responses: each sets r->response and r->status; the dispatcher adds the common headers. */
void gw_reply_json(gw_req *r, unsigned status, json_t *body); /* steals body */
void gw_reply_empty(gw_req *r, unsigned status);
void gw_reply_text(gw_req *r, unsigned status, const char *content_type, const char *text,
                   size_t len, bool copy);
void gw_reply_problem(gw_req *r, gw_problem_id id, const char *detail);
/* Maps a failed SQL result (or NULL: database unreachable) to a problem; never shows SQL. */
void gw_reply_db_error(gw_req *r, PGresult *res);

/* Query parameter of the request, or NULL. */
const char *gw_query(gw_req *r, const char *name);
/* Request header, or NULL. */
const char *gw_header(gw_req *r, const char *name);

/* ---- body specs --------------------------------------------------------------------------------
 */

typedef enum gw_field_type {
    GW_STR,
    GW_INT,
    GW_OBJECT,
    GW_STR_ARRAY,
    GW_EMAIL,
    GW_UUID
} gw_field_type;

typedef struct gw_field {
    const char *name;
    gw_field_type type;
    bool required;
    long min, max; /* string length or integer bounds; arrays: item count */
} gw_field;

/*
 * Checks the JSON body against the spec: an object, no members beyond the spec, each of the
 * right type and bounds. On failure replies 400/415/422 and returns false. values[i] gets the
 * text form of field i (NULL when absent): strings as they are, integers in decimal, objects
 * and arrays as compact JSON (malloc'd; free with gw_spec_free).
 */
bool gw_parse_body(gw_req *r, const gw_field *spec, size_t n, char **values);
void gw_spec_free(char **values, size_t n);
/* A path parameter that must be a UUID (lower-cased); replies 404 and returns false if not. */
bool gw_param_uuid(gw_req *r, int index, char out[37]);
bool gw_text_is_uuid(const char *s);
/* The credential after "Bearer " in an Authorization header (scheme case-insensitive, spaces
 * after it skipped), or NULL when there is none. Points into the header (fuzz/fuzz_bearer.c). */
const char *gw_bearer_token(const char *authorization);

/* ---- process-wide state ---------------------------------------------------------------------- */

typedef struct gw_state {
    gw_config cfg; /* as loaded at start: what only a restart changes (PORT, DATABASE_URL, ...) */
} gw_state;

extern gw_state gw;

/*
 * The secrets and the checkpoint signing key, which SIGHUP may replace (secrets.c). A set is never
 * changed once published: a reload publishes a new one and keeps the old until exit, because a
 * request that started before the reload may still be reading it. Rotations are rare, so the
 * retired sets cost a few kilobytes at most.
 */
#define GW_MAX_PREVIOUS_VKEYS 8
typedef struct gw_keys {
    gw_config cfg;   /* the configuration this set was loaded from; read secrets from here */
    dfd_skey signer; /* the checkpoint signing key; never leaves the process */
    char verifier_key[512];
    /* retired signing keys, still published so the checkpoints they signed keep verifying */
    char previous_vkeys[GW_MAX_PREVIOUS_VKEYS][512];
    size_t n_previous_vkeys;
    struct gw_keys *replaced; /* the set this one replaced, freed at exit */
} gw_keys;

/* The current set; never NULL once the server started. Load it once per use. */
const gw_keys *gw_keys_now(void);
/* Loads the first set at start (with_signer false: --check-config's dry run keeps nothing).
 * Prints problems to stderr and returns false if the configuration or a key does not load. */
bool gw_keys_start(void);
/* Re-reads the configuration and key files (SIGHUP). On any problem the current set stays and
 * the problems are logged, never the values. */
void gw_keys_reload(void);
void gw_keys_free_all(void);
/* True when token equals the secret or its _PREVIOUS, compared in constant time. */
bool gw_secret_accepts(const char *token, const char *secret, const char *previous);

/* Metrics (metrics.c) */
void gw_metrics_request(const gw_route *route, unsigned status, int64_t us);
void gw_metrics_count(const char *what); /* "auth_failures", "quota_denials", ... */
char *gw_metrics_render(void);           /* malloc'd Prometheus text */

/*
 * Logging: one JSON object per line on stderr. level: "debug", "info", "warn", "error"; lines
 * below LOG_LEVEL (gw_log_set_level, default info) are not written.
 */
void gw_log(const char *level, const char *event, const char *fmt_json_members, ...)
    __attribute__((format(printf, 3, 4)));
void gw_log_set_level(const char *level);
bool gw_log_enabled(const char *level);
/* Escapes text for a JSON string (without quotes) into out. */
void gw_json_escape(const char *in, char *out, size_t cap);

/* Handlers, one file per route family under handlers/ */
void gw_h_healthz(gw_req *r);
void gw_h_readyz(gw_req *r);
void gw_h_metrics(gw_req *r);
void gw_h_openapi(gw_req *r);
void gw_h_auth_request(gw_req *r);
void gw_h_auth_verify(gw_req *r);
void gw_h_auth_accept_invite(gw_req *r);
void gw_h_auth_page(gw_req *r);
void gw_h_invite_page(gw_req *r);
void gw_h_me(gw_req *r);
void gw_h_org_create(gw_req *r);
void gw_h_org_get(gw_req *r);
void gw_h_org_members(gw_req *r);
void gw_h_member_patch(gw_req *r);
void gw_h_invite_create(gw_req *r);
void gw_h_apikeys_list(gw_req *r);
void gw_h_apikeys_create(gw_req *r);
void gw_h_apikeys_delete(gw_req *r);
void gw_h_receipts_list(gw_req *r);
void gw_h_receipt_get(gw_req *r);
void gw_h_receipt_create(gw_req *r);
void gw_h_receipt_share(gw_req *r);
void gw_h_internal_receipt(gw_req *r);
void gw_h_share_delete(gw_req *r);
void gw_h_share_get(gw_req *r);
void gw_h_ledger_verify(gw_req *r);
void gw_h_ledger_checkpoint(gw_req *r);
void gw_h_ledger_proof(gw_req *r);
void gw_h_ledger_keys(gw_req *r);
void gw_h_datasets_catalog(gw_req *r);
void gw_h_dataset_download(gw_req *r);
void gw_h_internal_dataset(gw_req *r);
void gw_h_billing_checkout(gw_req *r);
void gw_h_stripe_webhook(gw_req *r);
void gw_h_run_create(gw_req *r);
void gw_h_run_get(gw_req *r);
void gw_h_internal_run_create(gw_req *r);
void gw_h_runner_claim(gw_req *r);
void gw_h_runner_status(gw_req *r);

/* Outbound HTTP (outbound.c): POSTs body with the given "Name: value" headers (NULL-ended);
 * *status gets the HTTP status and *response the body (malloc'd, NUL-terminated). False when
 * no answer came (connection, timeout, an answer above 256 KiB). Follows no redirect. */
bool gw_http_post(const char *url, const char *const *headers, const char *body, long *status,
                  char **response);

/* Checkpoint signing (signer.c): signs and records the org's checkpoint if it is behind. */
bool gw_sign_checkpoint(const char *org, char **note_out);
void *gw_signer_thread(void *arg);
/* Development mail (mail.c): writes outbox messages as .eml files and logs their links. */
void *gw_mail_thread(void *arg);

/* Share link access counts (share_counts.c): recorded in memory, added to the database once a
 * second by a thread of their own; gw_share_count_stop, called once no request can come any
 * more, adds the rest and ends it. gw_share_count is false when the access was not recorded
 * (the caller counts it itself). */
bool gw_share_count(const char *token);
bool gw_share_count_start(void);
void gw_share_count_stop(void);
extern atomic_long gw_share_accesses_pending; /* recorded, not yet in the database */
extern atomic_long gw_share_accesses_lost;    /* given up: the database did not take them */

/* Frees a string that held a secret (an API key header, a link token), wiping it first. */
static inline void
gw_wipe_free(char *s)
{
    if (s != NULL)
        explicit_bzero(s, strlen(s));
    free(s);
}

/* Marks the calling thread so that its per-thread state is released when it ends. */
void gw_thread_enter(void);

/* Shutdown flag set by SIGTERM/SIGINT. */
extern atomic_bool gw_stopping;

#endif /* GW_H */
