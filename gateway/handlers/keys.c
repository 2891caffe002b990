/* keys.c: organization API keys (owners only; enforced in SQL). */
#include "common.h"

void
gw_h_apikeys_list(gw_req *r)
{
    char org[37];

    if (gw_param_uuid(r, 0, org))
        actor_json(r, "apikey_list", org, NULL);
}

void
gw_h_apikeys_create(gw_req *r)
{
    static const gw_field spec[] = {{"name", GW_STR, true, 1, 100}};
    char org[37], *v[1];
    const char *values[4];
    PGresult *res;

    if (!gw_param_uuid(r, 0, org) || !gw_parse_body(r, spec, 1, v))
        return;
    values[0] = r->actor;
    values[1] = r->iat;
    values[2] = org;
    values[3] = v[0];
    res = run(r, "apikey_create", 4, values);
    gw_spec_free(v, 1);
    if (res == NULL)
        return;
    gw_reply_json(r, 201,
                  json_pack("{s:s,s:s,s:s}", "key_id", PQgetvalue(res, 0, 0), "key",
                            PQgetvalue(res, 0, 1), "created_at", PQgetvalue(res, 0, 2)));
    r->no_store = true;
    PQclear(res);
}

void
gw_h_apikeys_delete(gw_req *r)
{
    char org[37];
    const char *values[4];
    PGresult *res;
    size_t len;

    if (!gw_param_uuid(r, 0, org))
        return;
    len = strlen(r->params[1]);
    if (len != 12 || strspn(r->params[1], "0123456789abcdef") != len) {
        gw_reply_problem(r, GW_P_NOT_FOUND, NULL);
        return;
    }
    values[0] = r->actor;
    values[1] = r->iat;
    values[2] = org;
    values[3] = r->params[1];
    if ((res = run(r, "apikey_revoke", 4, values)) == NULL)
        return;
    PQclear(res);
    gw_reply_empty(r, 204);
}
