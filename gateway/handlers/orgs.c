/* orgs.c: organizations, members and roles, invites. */
#include "common.h"

void
gw_h_org_create(gw_req *r)
{
    static const gw_field spec[] = {{"name", GW_STR, true, 1, 200}};
    char *v[1];
    const char *values[3];
    PGresult *res;

    if (!gw_parse_body(r, spec, 1, v))
        return;
    values[0] = r->actor;
    values[1] = r->iat;
    values[2] = v[0];
    res = run(r, "org_create", 3, values);
    gw_spec_free(v, 1);
    if (res == NULL)
        return;
    gw_reply_json(r, 201,
                  json_pack("{s:s,s:s,s:s,s:s}", "org_id", PQgetvalue(res, 0, 0), "name",
                            PQgetvalue(res, 0, 1), "created_at", PQgetvalue(res, 0, 2), "role",
                            "owner"));
    PQclear(res);
}

void
gw_h_org_get(gw_req *r)
{
    char org[37];
    const char *values[3];
    PGresult *res;

    if (!gw_param_uuid(r, 0, org))
        return;
    values[0] = r->actor;
    values[1] = r->iat;
    values[2] = org;
    if ((res = run(r, "org_get", 3, values)) == NULL)
        return;
    gw_reply_json(r, 200,
                  json_pack("{s:s,s:s,s:s,s:s}", "org_id", PQgetvalue(res, 0, 0), "name",
                            PQgetvalue(res, 0, 1), "created_at", PQgetvalue(res, 0, 2), "role",
                            PQgetvalue(res, 0, 3)));
    PQclear(res);
}

void
gw_h_org_members(gw_req *r)
{
    char org[37];

    if (gw_param_uuid(r, 0, org))
        actor_json(r, "org_members", org, NULL);
}

void
gw_h_member_patch(gw_req *r)
{
    static const gw_field spec[] = {{"role", GW_STR, true, 1, 16}};
    char org[37], user[37], *v[1];
    const char *values[5];
    PGresult *res;

    if (!gw_param_uuid(r, 0, org) || !gw_param_uuid(r, 1, user) || !gw_parse_body(r, spec, 1, v))
        return;
    values[0] = r->actor;
    values[1] = r->iat;
    values[2] = org;
    values[3] = user;
    values[4] = v[0];
    res = run(r, "member_set_role", 5, values);
    gw_spec_free(v, 1);
    if (res == NULL)
        return;
    PQclear(res);
    gw_reply_empty(r, 204);
}

void
gw_h_invite_create(gw_req *r)
{
    static const gw_field spec[] = {{"email", GW_EMAIL, true, 3, 254},
                                    {"role", GW_STR, false, 1, 16},
                                    {"ttl_hours", GW_INT, false, 1, 720}};
    char org[37], *v[3];
    const char *values[6];
    PGresult *res;

    if (!gw_param_uuid(r, 0, org) || !gw_parse_body(r, spec, 3, v))
        return;
    values[0] = r->actor;
    values[1] = r->iat;
    values[2] = org;
    values[3] = v[0];
    values[4] = v[1];
    values[5] = v[2];
    res = run(r, "invite_create", 6, values);
    gw_spec_free(v, 3);
    if (res == NULL)
        return;
    /* the token goes to the invitee by email only: whoever holds it becomes that person */
    gw_reply_json(r, 201,
                  json_pack("{s:s,s:s}", "invite_id", PQgetvalue(res, 0, 0), "expires_at",
                            PQgetvalue(res, 0, 1)));
    PQclear(res);
}
