/*
 * server.c: defendable-gateway's main program: configuration and boot checks, the
 * libmicrohttpd daemon, and the request path every route shares (routing, body capture,
 * authentication, rate limits, the handler, common headers, access log, metrics).
 *
 * Threading: libmicrohttpd runs a pool of epoll threads; each keeps one libpq connection with
 * every statement prepared (db.c). A blocking SQL call holds only its own thread. This is GNU
 * Taler's exchange design; with DB round trips well under a millisecond it keeps p99 low at
 * 64 connections on 2 cores (bench/, issue 8).
 */
#include "gw.h"
#include "jwt.h"
#include "stripe.h"

#include <curl/curl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

gw_state gw;
atomic_bool gw_stopping;
/* requests begun and not yet completed; idle keep-alive connections do not count */
static atomic_int in_flight;

#define GW_JWT_LEEWAY 60
#define GW_SHUTDOWN_SECONDS 10

static int64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
new_request_id(gw_req *r)
{
    const char *given = gw_header(r, "X-Request-Id");
    uint8_t raw[12];
    size_t len;

    /* keep a caller's id only if it is short and plain, so logs stay safe to read */
    if (given != NULL && (len = strlen(given)) > 0 && len <= 64 &&
        strspn(given, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len) {
        memcpy(r->request_id, given, len + 1);
        return;
    }
    if (RAND_bytes(raw, sizeof raw) != 1)
        memset(raw, 0, sizeof raw);
    dfd_hex_encode(raw, sizeof raw, r->request_id);
    r->request_id[2 * sizeof raw] = '\0';
}

static void
client_ip(gw_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

    snprintf(r->ip, sizeof r->ip, "0.0.0.0");
    if (ci == NULL || ci->client_addr == NULL)
        return;
    if (ci->client_addr->sa_family == AF_INET) {
        memcpy(&r->addr, ci->client_addr, sizeof(struct sockaddr_in));
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, r->ip,
                  sizeof r->ip);
    } else if (ci->client_addr->sa_family == AF_INET6) {
        memcpy(&r->addr, ci->client_addr, sizeof(struct sockaddr_in6));
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, r->ip,
                  sizeof r->ip);
    }
}

/* The token after "Bearer " (scheme case-insensitive), or NULL. */
static const char *
bearer_token(gw_req *r)
{
    return gw_bearer_token(gw_header(r, MHD_HTTP_HEADER_AUTHORIZATION));
}

/* Records a refused request as a security event, in its own statement (the request failed). */
static void
record_refusal(gw_req *r, const char *kind, const char *reason)
{
    char detail[1024], route[256], esc[300];
    const char *values[3];
    PGresult *res;

    gw_json_escape(r->route ? r->route->pattern : "?", route, sizeof route);
    gw_json_escape(reason ? reason : "", esc, sizeof esc);
    snprintf(detail, sizeof detail, "{\"method\":\"%s\",\"route\":\"%s\",\"reason\":\"%s\"}",
             r->method, route, esc);
    values[0] = kind;
    values[1] = r->ip;
    values[2] = detail;
    res = gw_db_exec("security_event", 3, values);
    PQclear(res);
}

/* Authenticates per the route's kind; replies 401/403 and returns false on failure. */
static bool
authenticate(gw_req *r)
{
    const char *token = bearer_token(r);
    const gw_keys *keys = gw_keys_now();

    switch (r->route->auth) {
    case GW_AUTH_NONE:
        return true;
    case GW_AUTH_JWT: {
        gw_jwt_claims claims;
        gw_jwt_status st = GW_JWT_MALFORMED;

        if (token != NULL && strncmp(token, "dfd_", 4) != 0)
            st = gw_jwt_verify(token, strlen(token), keys->cfg.jwt_secret, keys->cfg.jwt_secret_len,
                               keys->cfg.jwt_secret_previous, keys->cfg.jwt_secret_previous_len,
                               (int64_t)time(NULL), GW_JWT_LEEWAY, &claims);
        if (st != GW_JWT_OK || !gw_text_is_uuid(claims.sub)) {
            gw_metrics_count("auth_failures");
            record_refusal(r, "http.unauthorized", token ? gw_jwt_status_text(st) : "no token");
            gw_reply_problem(r, GW_P_UNAUTHORIZED, "A valid bearer token is required.");
            return false;
        }
        snprintf(r->actor, sizeof r->actor, "%s", claims.sub);
        snprintf(r->iat, sizeof r->iat, "%" PRId64, claims.iat);
        return true;
    }
    case GW_AUTH_APIKEY:
        if (token == NULL || strncmp(token, "dfd_", 4) != 0 || strlen(token) > 200) {
            gw_metrics_count("auth_failures");
            record_refusal(r, "http.unauthorized", "no API key");
            gw_reply_problem(r, GW_P_UNAUTHORIZED, "An API key is required.");
            return false;
        }
        r->bearer = token; /* checked in SQL by the handler, with the work it authorizes */
        return true;
    case GW_AUTH_STRIPE: {
        /* over the raw bytes exactly as received, before anything parses them */
        const char *header = gw_header(r, "Stripe-Signature");
        /* during a rotation both endpoint secrets verify (Stripe signs with both for 24 h) */
        const char *secrets[2] = {keys->cfg.stripe_webhook_secret,
                                  keys->cfg.stripe_webhook_secret_previous};
        gw_stripe_status st =
            secrets[0] == NULL || header == NULL || strlen(header) > GW_STRIPE_MAX_HEADER
                ? GW_STRIPE_MALFORMED
                : gw_stripe_verify(header, r->body ? r->body : "", r->body_len, secrets,
                                   secrets[1] != NULL ? 2 : 1, (int64_t)time(NULL),
                                   GW_STRIPE_DEFAULT_TOLERANCE);

        if (st != GW_STRIPE_OK) {
            gw_metrics_count("webhook_signature_failures");
            record_refusal(r, "stripe.bad_signature",
                           header == NULL ? "no Stripe-Signature header"
                                          : gw_stripe_status_text(st));
            gw_reply_problem(r, GW_P_BAD_SIGNATURE,
                             "The Stripe-Signature header does not verify for this body.");
            return false;
        }
        return true;
    }
    case GW_AUTH_INTERNAL:
    case GW_AUTH_RUNNER: {
        bool internal = r->route->auth == GW_AUTH_INTERNAL;
        const char *secret = internal ? keys->cfg.internal_api_key : keys->cfg.runner_token;
        const char *previous =
            internal ? keys->cfg.internal_api_key_previous : keys->cfg.runner_token_previous;

        if (!gw_cidr_match(gw.cfg.internal_allow, gw.cfg.n_internal_allow,
                           (const struct sockaddr *)&r->addr)) {
            gw_metrics_count("forbidden");
            record_refusal(r, "http.forbidden", "source address not allowed");
            gw_reply_problem(r, GW_P_FORBIDDEN, "This route is not reachable from here.");
            return false;
        }
        if (secret == NULL || !gw_secret_accepts(token, secret, previous)) {
            gw_metrics_count("auth_failures");
            record_refusal(r, "http.unauthorized", "bad internal credential");
            gw_reply_problem(r, GW_P_UNAUTHORIZED, "A valid internal credential is required.");
            return false;
        }
        return true;
    }
    }
    return false;
}

/* Applies the route's rate limits through quota_take (shared by every gateway replica). */
static bool
rate_limited(gw_req *r)
{
    for (int i = 0; i < 2 && r->route->limits[i].scope != NULL; i++) {
        const gw_limit *l = &r->route->limits[i];
        char subject[300], limit[16], window[16];
        const char *values[4];
        PGresult *res;

        if (strcmp(l->key, "ip") == 0) {
            snprintf(subject, sizeof subject, "%s", r->ip);
        } else {
            json_t *v = r->json ? json_object_get(r->json, l->key + 5) : NULL;

            if (!json_is_string(v))
                continue; /* the body check will refuse the request */
            /* the same key SQL uses (normalize_email: trimmed of spaces, lower case), so
             * " X@Example.com " counts against x@example.com */
            {
                const char *in = json_string_value(v);
                size_t len = strlen(in);

                while (len > 0 && in[len - 1] == ' ')
                    len--;
                while (len > 0 && *in == ' ')
                    in++, len--;
                snprintf(subject, sizeof subject, "%.*s", (int)len, in);
            }
            for (char *p = subject; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
        }
        snprintf(limit, sizeof limit, "%d", l->limit);
        snprintf(window, sizeof window, "%d", l->window_seconds);
        values[0] = l->scope;
        values[1] = subject;
        values[2] = limit;
        values[3] = window;
        res = gw_db_exec("quota_take", 4, values);
        if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
            gw_reply_db_error(r, res);
            PQclear(res);
            return true;
        }
        snprintf(r->ratelimit[0], sizeof r->ratelimit[0], "%d", l->limit);
        snprintf(r->ratelimit[1], sizeof r->ratelimit[1], "%s", PQgetvalue(res, 0, 2));
        {
            long reset = atol(PQgetvalue(res, 0, 3)) - (long)time(NULL);

            snprintf(r->ratelimit[2], sizeof r->ratelimit[2], "%ld", reset > 0 ? reset : 0);
        }
        if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
            PQclear(res);
            snprintf(r->retry_after, sizeof r->retry_after, "%s", r->ratelimit[2]);
            gw_metrics_count("quota_denials");
            gw_reply_problem(r, GW_P_RATE_LIMITED, "Too many requests; try again later.");
            return true;
        }
        PQclear(res);
    }
    return false;
}

static bool
origin_allowed(const char *origin)
{
    for (size_t i = 0; origin && i < gw.cfg.n_cors_origins; i++)
        if (strcmp(gw.cfg.cors_origins[i], "*") == 0 || strcmp(gw.cfg.cors_origins[i], origin) == 0)
            return true;
    return false;
}

/* Headers every response carries. */
static void
common_headers(gw_req *r)
{
    struct MHD_Response *resp = r->response;
    const char *origin = gw_header(r, "Origin");

    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Permissions-Policy",
                            "camera=(), microphone=(), geolocation=(), interest-cohort=()");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"defendable\"");
    if (r->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->no_store || r->route == NULL || r->route->auth != GW_AUTH_NONE || r->status >= 400)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (gw.cfg.production)
        MHD_add_response_header(resp, "Strict-Transport-Security",
                                "max-age=63072000; includeSubDomains");
    if (origin_allowed(origin)) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(resp, "Vary", "Origin");
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                "X-Request-Id, Retry-After, RateLimit-Limit, RateLimit-Remaining, "
                                "RateLimit-Reset");
    }
    if (r->ratelimit[0][0]) {
        MHD_add_response_header(resp, "RateLimit-Limit", r->ratelimit[0]);
        MHD_add_response_header(resp, "RateLimit-Remaining", r->ratelimit[1]);
        MHD_add_response_header(resp, "RateLimit-Reset", r->ratelimit[2]);
    }
    if (r->retry_after[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, r->retry_after);
    /* both framings (RFC 9112 section 6.1): the body was read as chunked, but what follows on
     * the connection may be a request smuggled past a proxy that counted Content-Length, so
     * the connection ends with this answer */
    if (gw_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL &&
        gw_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH) != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* CORS preflight: answered for allowed origins only. */
static void
preflight(gw_req *r, bool path_known)
{
    const char *origin = gw_header(r, "Origin");

    if (!path_known) {
        gw_reply_problem(r, GW_P_NOT_FOUND, NULL);
        return;
    }
    if (!origin_allowed(origin)) {
        gw_reply_problem(r, GW_P_FORBIDDEN, "This origin may not call the API from a browser.");
        return;
    }
    gw_reply_empty(r, 204);
    {
        MHD_add_response_header(r->response, "Access-Control-Allow-Methods",
                                "GET, POST, PATCH, DELETE, OPTIONS");
        MHD_add_response_header(r->response, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, X-Request-Id");
        MHD_add_response_header(r->response, "Access-Control-Max-Age", "600");
    }
}

static bool
is_json_content_type(const char *ct)
{
    return ct != NULL && strncasecmp(ct, "application/json", 16) == 0 &&
           (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

/* Runs the matched route: body, auth, limits, handler. */
static void
dispatch(gw_req *r)
{
    bool path_known = false;

    if (r->uri_len >= GW_MAX_URL || strlen(r->path) >= GW_MAX_URL - 1) {
        gw_reply_problem(r, GW_P_URI_TOO_LONG, NULL);
        return;
    }
    if (r->nul_in_path) {
        /* no route has such a path; matching what is left before the NUL would serve another */
        gw_reply_problem(r, GW_P_NOT_FOUND, NULL);
        return;
    }
    r->route = gw_route_match(r->method, r->path, r->params, &r->n_params, &path_known);
    if (strcmp(r->method, "OPTIONS") == 0) {
        preflight(r, path_known || r->route != NULL);
        return;
    }
    if (r->route == NULL) {
        if (path_known)
            gw_allowed_methods(r->path, r->allow, sizeof r->allow);
        gw_reply_problem(r, path_known ? GW_P_METHOD : GW_P_NOT_FOUND, NULL);
        return;
    }
    if (r->nul_in_query) {
        gw_reply_problem(r, GW_P_INVALID, "Query parameters may not contain a NUL byte.");
        return;
    }
    if (r->body_too_large) {
        gw_reply_problem(r, GW_P_TOO_LARGE, "Request bodies are limited to 1 MiB.");
        return;
    }
    /* a webhook is authenticated by a signature over the raw body: check it before parsing */
    if (r->route->auth == GW_AUTH_STRIPE) {
        if (authenticate(r))
            r->route->handler(r);
        if (r->response == NULL)
            gw_reply_problem(r, GW_P_INTERNAL, NULL);
        return;
    }
    if (r->route->request != NULL && r->body_len == 0) {
        r->json = json_object(); /* no body: an empty object, so required members are named */
    } else if (r->route->request != NULL) {
        json_error_t err;

        if (!is_json_content_type(gw_header(r, MHD_HTTP_HEADER_CONTENT_TYPE))) {
            gw_reply_problem(r, GW_P_MEDIA_TYPE, "Send the body as application/json.");
            return;
        }
        r->json = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &err);
        if (r->json == NULL || !json_is_object(r->json)) {
            gw_reply_problem(r, GW_P_BAD_JSON, "The body must be one JSON object.");
            return;
        }
    } else if (r->body_len > 0) {
        gw_reply_problem(r, GW_P_INVALID, "This route takes no request body.");
        return;
    }
    if (!authenticate(r))
        return;
    if (rate_limited(r))
        return;
    r->route->handler(r);
    if (r->response == NULL)
        gw_reply_problem(r, GW_P_INTERNAL, NULL);
    if (r->status == 403)
        record_refusal(r, "http.forbidden", r->problem);
}

/*
 * Called by libmicrohttpd with the full request target (path and query) before anything else:
 * the request context is made here, so that the URL length limit covers the query string.
 */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    gw_req *r = calloc(1, sizeof *r);

    (void)cls;
    if (r == NULL)
        return NULL;
    r->conn = conn;
    r->uri_len = strlen(uri);
    {
        const char *query = strchr(uri, '?');
        const char *nul = strstr(uri, "%00");

        r->nul_in_path = nul != NULL && (query == NULL || nul < query);
        r->nul_in_query = query != NULL && strstr(query, "%00") != NULL;
    }
    r->started_us = now_us();
    atomic_fetch_add(&in_flight, 1);
    return r;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    gw_req *r = *con_cls;
    enum MHD_Result ret;

    (void)cls;
    (void)version;
    if (r == NULL)
        return MHD_NO;
    if (!r->started) {
        r->started = true;
        gw_thread_enter();
        snprintf(r->method, sizeof r->method, "%s", method);
        /* a path too long to keep is answered 414 by dispatch(), which sees it full-length */
        snprintf(r->path, sizeof r->path, "%s", url);
        new_request_id(r);
        client_ip(r);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* keep at most 1 MiB; the rest is read and dropped, then answered with 413 */
        if (!r->body_too_large) {
            if (r->body_len + *upload_data_size > GW_MAX_BODY) {
                r->body_too_large = true;
                free(r->body);
                r->body = NULL;
                r->body_len = 0;
            } else {
                char *grown = realloc(r->body, r->body_len + *upload_data_size + 1);

                if (grown == NULL)
                    return MHD_NO;
                r->body = grown;
                memcpy(r->body + r->body_len, upload_data, *upload_data_size);
                r->body_len += *upload_data_size;
                r->body[r->body_len] = '\0';
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (gw_stopping)
        gw_reply_problem(r, GW_P_UNAVAILABLE, "The server is shutting down.");
    else
        dispatch(r);
    if (r->response == NULL)
        return MHD_NO;
    common_headers(r);
    ret = MHD_queue_response(conn, r->status, r->response);
    return ret;
}

/* After each request: access log, metrics, cleanup. */
static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    gw_req *r = *con_cls;
    int64_t us;
    char route[256];

    (void)cls;
    (void)conn;
    (void)toe;
    if (r == NULL)
        return;
    us = now_us() - r->started_us;
    /* the route pattern, never the path: paths carry share tokens */
    if (gw_log_enabled(r->status >= 500 ? "error" : "info")) {
        gw_json_escape(r->route ? r->route->pattern : "(unmatched)", route, sizeof route);
        gw_log(r->status >= 500 ? "error" : "info", "request",
               "\"request_id\":\"%s\",\"method\":\"%s\",\"route\":\"%s\",\"status\":%u,"
               "\"ms\":%.3f,\"ip\":\"%s\"%s%s%s",
               r->request_id, r->method, route, r->status, (double)us / 1000.0, r->ip,
               r->problem ? ",\"problem\":\"" : "", r->problem ? r->problem : "",
               r->problem ? "\"" : "");
    }
    gw_metrics_request(r->route, r->status, us);
    atomic_fetch_sub(&in_flight, 1);
    if (r->response)
        MHD_destroy_response(r->response);
    json_decref(r->json);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* MHD errors (malformed requests it refuses itself) go to the log as JSON too. */
static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512], esc[600];

    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    gw_json_escape(msg, esc, sizeof esc);
    gw_log("warn", "http", "\"message\":\"%s\"", esc);
}

static volatile sig_atomic_t reload_requested;

static void
on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_requested = 1;
    else
        gw_stopping = true;
}

static const char *
env_get(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

/*
 * How many connections to accept. libmicrohttpd splits the limit evenly over its threads and the
 * kernel spreads connections unevenly over them, so a total of 1024 over 8 threads refused
 * clients at ~250 connections (bench/gateway.sh). Each thread may hold 1024; the whole must fit
 * the descriptor limit, raised to its hard maximum, with room for database and log descriptors.
 * One address may hold half: a proxy in front is one address for all its clients.
 */
static unsigned
connection_limit(unsigned threads)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)threads * 1024 + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 512;
    if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur <= 128)
        return 64;
    return rl.rlim_cur - 64 < want - 64 ? (unsigned)(rl.rlim_cur - 64) : threads * 1024;
}

static void
usage(FILE *out)
{
    fprintf(out,
            "defendable-gateway %s: the HTTP front of the defendable ledger.\n\n"
            "Usage:\n"
            "  defendable-gateway                 serve on PORT (default 8080)\n"
            "  defendable-gateway --check-config  check the configuration and exit\n"
            "  defendable-gateway --help | --version\n\n"
            "Configuration comes from the environment (docs/gateway.md): ENV, DATABASE_URL,\n"
            "JWT_SECRET, JWT_SECRET_PREVIOUS, JWT_TTL_HOURS, CORS_ORIGINS, API_BASE_URL,\n"
            "APP_BASE_URL, RESEND_API_KEY, SMTP_URL, MAIL_FROM, MAIL_DIR, INTERNAL_API_KEY,\n"
            "INTERNAL_ALLOW_CIDRS, RUNNER_TOKEN, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n"
            "AWS_ENDPOINT_URL_S3, AWS_REGION, TIGRIS_BUCKET, AWS_S3_ADDRESSING_STYLE,\n"
            "DATASET_URL_TTL_SECONDS, STRIPE_API_KEY, STRIPE_WEBHOOK_SECRET, STRIPE_PRICE_ID,\n"
            "STRIPE_API_BASE, DATASET_DOWNLOAD_DAILY_LIMIT, LEDGER_ORIGIN,\n"
            "LEDGER_SIGNING_KEY, LEDGER_VERIFIER_KEYS_PREVIOUS, PORT, LOG_LEVEL,\n"
            "GATEWAY_THREADS; INTERNAL_API_KEY, RUNNER_TOKEN and STRIPE_WEBHOOK_SECRET each take\n"
            "a _PREVIOUS accepted during a rotation, and secrets may be given as NAME_FILE.\n\n"
            "Signals: SIGTERM/SIGINT stop gracefully; SIGHUP re-reads the secrets (NAME_FILE\n"
            "files) and the signing key file without dropping a request.\n\n"
            "Exit status: 0 served and stopped cleanly (or configuration ok), 1 configuration\n"
            "problems, 2 usage error, 3 could not start.\n",
            GW_VERSION);
}

int
main(int argc, char **argv)
{
    char **problems = NULL, **warnings = NULL;
    size_t n_problems = 0, n_warnings = 0;
    bool check_only = false, ok;
    struct MHD_Daemon *d;
    unsigned threads;
    pthread_t signer_tid, mail_tid;
    sigset_t handled, waiting;
    unsigned conn_limit;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check-config") == 0) {
            check_only = true;
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("defendable-gateway %s\n", GW_VERSION);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    ok = gw_config_load(&gw.cfg, env_get, NULL, &problems, &n_problems, &warnings, &n_warnings);
    for (size_t i = 0; i < n_warnings; i++)
        fprintf(stderr, "warning: %s\n", warnings[i]);
    for (size_t i = 0; i < n_problems; i++)
        fprintf(stderr, "problem: %s\n", problems[i]);
    gw_config_free_list(warnings, n_warnings);
    gw_config_free_list(problems, n_problems);
    if (!ok) {
        fprintf(stderr, "defendable-gateway: %zu configuration problem%s; not starting\n",
                n_problems, n_problems == 1 ? "" : "s");
        gw_config_free(&gw.cfg);
        return 1;
    }
    /* the key files must not only exist: they must hold keys the server can load */
    if (!gw_keys_start()) {
        fprintf(stderr, "defendable-gateway: the secrets or the checkpoint signing key do not "
                        "load; not starting\n");
        gw_config_free(&gw.cfg);
        return check_only ? 1 : 3;
    }
    if (check_only) {
        printf("configuration ok (%s)\n", gw.cfg.production ? "production" : "development");
        gw_keys_free_all();
        gw_config_free(&gw.cfg);
        return 0;
    }
    threads = (unsigned)gw.cfg.threads;
    gw_log_set_level(gw.cfg.log_level);
    gw_db_set_conninfo(gw.cfg.database_url, gw.cfg.database_read_url);
    /* once, before any thread: curl_easy_init would otherwise do it racily */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "defendable-gateway: cannot initialize libcurl\n");
        gw_config_free(&gw.cfg);
        return 3;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGHUP, on_signal);
    /* every thread started from here inherits these blocked: only the main thread's sigsuspend
     * takes them, so a reload never runs in the middle of a request's thread */
    sigemptyset(&handled);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &handled, &waiting);

    conn_limit = connection_limit(threads);
    /* the logger first, so that libmicrohttpd reports even early errors through it */
    d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, (uint16_t)gw.cfg.port,
        NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_CONNECTION_LIMIT, conn_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, conn_limit / 2, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(64 * 1024), MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "defendable-gateway: cannot listen on port %d: %s\n", gw.cfg.port,
                strerror(errno));
        curl_global_cleanup();
        gw_config_free(&gw.cfg);
        return 3;
    }
    gw_log("info", "start",
           "\"version\":\"%s\",\"port\":%d,\"threads\":%u,\"env\":\"%s\",\"verifier_key\":\"%s\"",
           GW_VERSION, gw.cfg.port, threads, gw.cfg.production ? "production" : "development",
           gw_keys_now()->verifier_key);
    pthread_create(&signer_tid, NULL, gw_signer_thread, NULL);
    pthread_create(&mail_tid, NULL, gw_mail_thread, NULL);
    if (!gw_share_count_start())
        gw_log("error", "share_counts",
               "\"message\":\"cannot start the share count thread: "
               "links are counted one request at a time\"");

    while (!gw_stopping) {
        sigsuspend(&waiting); /* atomically unblocks and waits: no signal slips in between */
        if (reload_requested && !gw_stopping) {
            reload_requested = 0;
            gw_keys_reload();
        }
    }

    /* graceful stop: accept nothing new, let in-flight requests finish, then leave */
    gw_log("info", "stopping", "\"grace_seconds\":%d", GW_SHUTDOWN_SECONDS);
    {
        /* quiescing hands the listening socket back: closing it refuses new connections */
        MHD_socket listener = MHD_quiesce_daemon(d);

        if (listener != MHD_INVALID_SOCKET)
            close(listener);
    }
    for (int i = 0; i < GW_SHUTDOWN_SECONDS * 10 && atomic_load(&in_flight) > 0; i++)
        usleep(100000);
    MHD_stop_daemon(d);
    pthread_join(signer_tid, NULL);
    pthread_join(mail_tid, NULL);
    /* after the last request: the accesses it recorded go in with the rest */
    gw_share_count_stop();
    gw_log("info", "stopped", NULL);
    curl_global_cleanup();
    dfd_sha256_thread_release();
    gw_keys_free_all();
    gw_config_free(&gw.cfg);
    return 0;
}
