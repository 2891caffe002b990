/* receipts.c: list (cursor pagination), get, create with an API key, share. */
#include "common.h"

#include <stdio.h>

void
gw_h_receipts_list(gw_req *r)
{
    char org[37], after[24] = "0", limit[8] = "50";
    const char *q;
    const char *values[5];
    PGresult *res;
    json_t *page;

    if (!org_param(r, org))
        return;
    if ((q = gw_query(r, "after")) != NULL) {
        if (strlen(q) == 0 || strlen(q) > 15 || strspn(q, "0123456789") != strlen(q)) {
            gw_reply_problem(r, GW_P_INVALID, "after must be a receipt seq.");
            return;
        }
        snprintf(after, sizeof after, "%s", q);
    }
    if ((q = gw_query(r, "limit")) != NULL) {
        if (strlen(q) == 0 || strlen(q) > 3 || strspn(q, "0123456789") != strlen(q)) {
            gw_reply_problem(r, GW_P_INVALID, "limit must be 1 to 200.");
            return;
        }
        snprintf(limit, sizeof limit, "%s", q);
    }
    values[0] = r->actor;
    values[1] = r->iat;
    values[2] = org;
    values[3] = after;
    values[4] = limit;
    if ((res = run(r, "receipts_list", 5, values)) == NULL)
        return;
    page = json_pack("{s:o}", "items", json_column(res, 0, 0));
    /* a full page has a next cursor: the last seq it holds */
    if (atol(PQgetvalue(res, 0, 2)) == atol(limit) && !PQgetisnull(res, 0, 1))
        json_object_set_new(page, "next", json_integer(atoll(PQgetvalue(res, 0, 1))));
    else
        json_object_set_new(page, "next", json_null());
    gw_reply_json(r, 200, page);
    PQclear(res);
}

void
gw_h_receipt_get(gw_req *r)
{
    char org[37], seq[24];

    if (seq_param(r, 0, seq) && org_param(r, org))
        actor_json(r, "receipt_get", org, seq);
}

void
gw_h_receipt_create(gw_req *r)
{
    static const gw_field spec[] = {{"kind", GW_STR, true, 1, 64},
                                    {"fields", GW_OBJECT, true, 0, 64},
                                    {"public_fields", GW_STR_ARRAY, false, 0, 64}};
    char *v[3];
    const char *values[4];
    PGresult *res;

    if (!gw_parse_body(r, spec, 3, v))
        return;
    values[0] = r->bearer;
    values[1] = v[0];
    values[2] = v[1];
    values[3] = v[2];
    res = run(r, "receipt_create", 4, values);
    gw_spec_free(v, 3);
    if (res == NULL)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        PQclear(res);
        gw_metrics_count("auth_failures");
        gw_reply_problem(r, GW_P_UNAUTHORIZED, "The API key is invalid or revoked.");
        return;
    }
    gw_reply_json(r, 201,
                  json_pack("{s:s,s:I,s:s,s:s}", "org_id", PQgetvalue(res, 0, 1), "seq",
                            (json_int_t)atoll(PQgetvalue(res, 0, 2)), "hash", PQgetvalue(res, 0, 3),
                            "ts", PQgetvalue(res, 0, 4)));
    PQclear(res);
}

void
gw_h_receipt_share(gw_req *r)
{
    static const gw_field spec[] = {{"ttl_hours", GW_INT, false, 1, 8784}};
    char org[37], seq[24], *v[1], *url = NULL;
    const char *values[5];
    PGresult *res;

    if (!seq_param(r, 0, seq) || !org_param(r, org))
        return;
    if (!gw_parse_body(r, spec, 1, v))
        return;
    values[0] = r->actor;
    values[1] = r->iat;
    values[2] = org;
    values[3] = seq;
    values[4] = v[0];
    res = run(r, "share_create", 5, values);
    gw_spec_free(v, 1);
    if (res == NULL)
        return;
    /* sign a checkpoint now, so the link verifies offline from the first time it is opened */
    if (!gw_sign_checkpoint(org, NULL))
        gw_log("warn", "signer",
               "\"org\":\"%s\",\"message\":\"checkpoint not signed at share time\"", org);
    if (asprintf(&url, "%s/share/%s", gw.cfg.api_base_url, PQgetvalue(res, 0, 1)) < 0)
        url = NULL;
    gw_reply_json(r, 201,
                  json_pack("{s:s,s:s,s:s,s:s}", "share_id", PQgetvalue(res, 0, 0), "token",
                            PQgetvalue(res, 0, 1), "url", url ? url : "", "expires_at",
                            PQgetvalue(res, 0, 2)));
    free(url);
    r->no_store = true;
    PQclear(res);
}

/* POST /internal/receipts: operator receipts (incident, rotation, drill), internal key only. */
void
gw_h_internal_receipt(gw_req *r)
{
    static const gw_field spec[] = {{"org", GW_UUID, true, 36, 36},
                                    {"kind", GW_STR, true, 1, 64},
                                    {"fields", GW_OBJECT, true, 0, 64},
                                    {"public_fields", GW_STR_ARRAY, false, 0, 64}};
    char *v[4];
    const char *values[4];
    PGresult *res;

    if (!gw_parse_body(r, spec, 4, v))
        return;
    for (int i = 0; i < 4; i++)
        values[i] = v[i];
    res = run(r, "internal_receipt", 4, values);
    if (res != NULL) {
        gw_reply_json(r, 201,
                      json_pack("{s:s,s:I,s:s,s:s}", "org_id", v[0], "seq",
                                (json_int_t)atoll(PQgetvalue(res, 0, 0)), "hash",
                                PQgetvalue(res, 0, 1), "ts", PQgetvalue(res, 0, 2)));
        PQclear(res);
    }
    gw_spec_free(v, 4);
}
