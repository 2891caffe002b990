/*
 * problem.c: the gateway's one error table (RFC 9457 problem types) and the one place where
 * the extension's SQLSTATEs (docs/access-model.md) become HTTP statuses.
 */
#include "gw.h"

#include <string.h>

const gw_problem gw_problems[GW_P_COUNT] = {
    [GW_P_INVALID] = {"invalid-request", "The request is not valid", 422},
    [GW_P_BAD_JSON] = {"malformed-json", "The body is not a JSON object", 400},
    [GW_P_UNAUTHORIZED] = {"unauthorized", "Authentication is required", 401},
    [GW_P_FORBIDDEN] = {"forbidden", "Not allowed", 403},
    [GW_P_NOT_FOUND] = {"not-found", "Not found", 404},
    [GW_P_METHOD] = {"method-not-allowed", "Method not allowed", 405},
    [GW_P_CONFLICT] = {"conflict", "Conflict with the current state", 409},
    [GW_P_EXPIRED] = {"expired", "Expired", 410},
    [GW_P_TOO_LARGE] = {"payload-too-large", "Request body too large", 413},
    [GW_P_URI_TOO_LONG] = {"uri-too-long", "Request URI too long", 414},
    [GW_P_MEDIA_TYPE] = {"unsupported-media-type", "Unsupported media type", 415},
    [GW_P_RATE_LIMITED] = {"rate-limited", "Too many requests", 429},
    [GW_P_BAD_SIGNATURE] = {"bad-signature", "The signature does not verify", 400},
    [GW_P_INTERNAL] = {"internal", "Internal server error", 500},
    [GW_P_BAD_GATEWAY] = {"upstream", "An upstream service failed", 502},
    [GW_P_UNAVAILABLE] = {"unavailable", "Service unavailable", 503},
};

gw_problem_id
gw_problem_for_sqlstate(const char *s)
{
    static const struct {
        const char *code;
        gw_problem_id id;
    } map[] = {
        {"U0401", GW_P_UNAUTHORIZED}, {"U0403", GW_P_FORBIDDEN},   {"U0404", GW_P_NOT_FOUND},
        {"U0409", GW_P_CONFLICT},     {"U0410", GW_P_EXPIRED},     {"U0422", GW_P_INVALID},
        {"U0429", GW_P_RATE_LIMITED}, {"P0002", GW_P_NOT_FOUND},   {"22023", GW_P_INVALID},
        {"22004", GW_P_INVALID},      {"22003", GW_P_INVALID},     {"22P02", GW_P_INVALID},
        {"2202E", GW_P_INVALID},      {"22021", GW_P_INVALID},     {"22007", GW_P_INVALID},
        {"22008", GW_P_INVALID},      {"54000", GW_P_INVALID},     {"23505", GW_P_CONFLICT},
        {"40001", GW_P_UNAVAILABLE},  {"40P01", GW_P_UNAVAILABLE}, {"57014", GW_P_UNAVAILABLE},
        {"55P03", GW_P_UNAVAILABLE},  {"53300", GW_P_UNAVAILABLE},
    };

    if (s == NULL)
        return GW_P_UNAVAILABLE;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].code, s) == 0)
            return map[i].id;
    /* connection exceptions (08xxx) are the database being away, not a bug */
    if (strncmp(s, "08", 2) == 0)
        return GW_P_UNAVAILABLE;
    return GW_P_INTERNAL;
}

void
gw_reply_db_error(gw_req *r, PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    gw_problem_id id = res == NULL ? GW_P_UNAVAILABLE : gw_problem_for_sqlstate(state);

    if (id == GW_P_UNAVAILABLE) {
        /* retryable for the client, but operators need to know why */
        char esc[300];

        gw_json_escape(msg ? msg : "database unreachable", esc, sizeof esc);
        gw_log("warn", "sql", "\"request_id\":\"%s\",\"sqlstate\":\"%s\",\"message\":\"%s\"",
               r->request_id, state ? state : "", esc);
        snprintf(r->retry_after, sizeof r->retry_after, "5");
        gw_reply_problem(r, id, "The database is not reachable right now; try again shortly.");
    } else if (id == GW_P_INTERNAL) {
        /* logged with its SQLSTATE for operators; the client sees no SQL text */
        char esc[300];

        gw_json_escape(msg ? msg : "", esc, sizeof esc);
        gw_log("error", "sql", "\"request_id\":\"%s\",\"sqlstate\":\"%s\",\"message\":\"%s\"",
               r->request_id, state ? state : "", esc);
        gw_reply_problem(r, id, NULL);
    } else {
        /* the extension's messages are written for callers: short, no SQL, no secrets */
        gw_reply_problem(r, id, msg);
    }
}
