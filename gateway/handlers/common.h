/*
 * common.h: small helpers shared by the handler files.
 */
#ifndef GW_HANDLERS_COMMON_H
#define GW_HANDLERS_COMMON_H

#include "../gw.h"

#include <stdlib.h>
#include <string.h>

/* Runs a statement; on failure replies with the mapped problem and returns NULL. */
static inline PGresult *
run(gw_req *r, const char *stmt, int n, const char *const *values)
{
    PGresult *res = gw_db_exec(stmt, n, values);

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        gw_reply_db_error(r, res);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* The ?org= query parameter as a UUID; replies 422 when it is missing or malformed. */
static inline bool
org_param(gw_req *r, char out[37])
{
    const char *org = gw_query(r, "org");

    if (!gw_text_is_uuid(org)) {
        gw_reply_problem(r, GW_P_INVALID, "The query parameter org must be an organization id.");
        return false;
    }
    for (int i = 0; i < 37; i++)
        out[i] = (char)(org[i] >= 'A' && org[i] <= 'F' ? org[i] - 'A' + 'a' : org[i]);
    return true;
}

/* A path parameter that must be a positive integer (a seq). */
static inline bool
seq_param(gw_req *r, int index, char out[24])
{
    const char *s = index < r->n_params ? r->params[index] : "";
    size_t len = strlen(s);

    if (len == 0 || len > 15 || strspn(s, "0123456789") != len || s[0] == '0') {
        gw_reply_problem(r, GW_P_NOT_FOUND, NULL);
        return false;
    }
    memcpy(out, s, len + 1);
    return true;
}

/* A text column as a JSON value: parsed when it holds JSON, else NULL. */
static inline json_t *
json_column(PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    return json_loads(PQgetvalue(res, row, col), JSON_DECODE_ANY, NULL);
}

static inline json_t *
text_or_null(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

/*
 * The most common handler body: call stmt with (actor, iat, org[, extra]) and answer 200 with
 * the statement's first column, which is already JSON.
 */
static inline void
actor_json(gw_req *r, const char *stmt, const char *org, const char *extra)
{
    const char *values[4] = {r->actor, r->iat, org, extra};
    PGresult *res = run(r, stmt, extra ? 4 : 3, values);

    if (res == NULL)
        return;
    gw_reply_json(r, 200, json_column(res, 0, 0));
    PQclear(res);
}

#endif
