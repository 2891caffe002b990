/*
 * runs.c: members queue runs and read them; runners (RUNNER_TOKEN) claim them under a lease
 * and report. The queue discipline (oldest first, SKIP LOCKED, leases) lives in SQL.
 */
#include "common.h"

#include <stdio.h>

#define LEASE_DEFAULT "300"

void
gw_h_run_create(gw_req *r)
{
    static const gw_field spec[] = {{"kind", GW_STR, true, 1, 64},
                                    {"input", GW_OBJECT, false, 0, 64}};
    char org[37], *v[2];
    const char *values[5];
    PGresult *res;

    if (!org_param(r, org) || !gw_parse_body(r, spec, 2, v))
        return;
    values[0] = r->actor;
    values[1] = r->iat;
    values[2] = org;
    values[3] = v[0];
    values[4] = v[1] ? v[1] : "{}";
    res = run(r, "run_create", 5, values);
    gw_spec_free(v, 2);
    if (res == NULL)
        return;
    gw_reply_json(r, 201,
                  json_pack("{s:s,s:s,s:s,s:s}", "run_id", PQgetvalue(res, 0, 0), "org_id", org,
                            "state", PQgetvalue(res, 0, 1), "created_at", PQgetvalue(res, 0, 2)));
    PQclear(res);
}

void
gw_h_run_get(gw_req *r)
{
    char id[37];

    if (gw_param_uuid(r, 0, id))
        actor_json(r, "run_get", id, NULL);
}

/* POST /internal/runs {org, kind, input}: an operator queues a run (a restore drill, say). */
void
gw_h_internal_run_create(gw_req *r)
{
    static const gw_field spec[] = {{"org", GW_STR, true, 36, 36},
                                    {"kind", GW_STR, true, 1, 64},
                                    {"input", GW_OBJECT, false, 0, 64}};
    char *v[3];
    const char *values[3];
    PGresult *res;

    if (!gw_parse_body(r, spec, 3, v))
        return;
    if (!gw_text_is_uuid(v[0])) {
        gw_spec_free(v, 3);
        gw_reply_problem(r, GW_P_INVALID, "org must be a UUID.");
        return;
    }
    values[0] = v[0];
    values[1] = v[1];
    values[2] = v[2] ? v[2] : "{}";
    res = run(r, "run_enqueue", 3, values);
    if (res != NULL)
        gw_reply_json(r, 201,
                      json_pack("{s:s,s:s,s:s,s:s}", "run_id", PQgetvalue(res, 0, 0), "org_id",
                                v[0], "state", PQgetvalue(res, 0, 1), "created_at",
                                PQgetvalue(res, 0, 2)));
    gw_spec_free(v, 3);
    PQclear(res);
}

/* POST /internal/runner/claim {runner, lease_seconds, run_id}: 200 with the run, or 204 when
 * there is nothing to claim (or the named run is not claimable). */
void
gw_h_runner_claim(gw_req *r)
{
    static const gw_field spec[] = {{"runner", GW_STR, true, 1, 64},
                                    {"lease_seconds", GW_INT, false, 10, 3600},
                                    {"run_id", GW_STR, false, 36, 36}};
    char *v[3];
    const char *values[3];
    PGresult *res;

    if (!gw_parse_body(r, spec, 3, v))
        return;
    if (v[2] != NULL && !gw_text_is_uuid(v[2])) {
        gw_spec_free(v, 3);
        gw_reply_problem(r, GW_P_INVALID, "run_id must be a UUID.");
        return;
    }
    values[0] = v[0];
    values[1] = v[1] ? v[1] : LEASE_DEFAULT;
    values[2] = v[2];
    res = run(r, "runner_claim", 3, values);
    gw_spec_free(v, 3);
    if (res == NULL)
        return;
    if (PQntuples(res) == 0)
        gw_reply_empty(r, 204);
    else
        gw_reply_json(r, 200,
                      json_pack("{s:s,s:s,s:s,s:o,s:s,s:i}", "org_id", PQgetvalue(res, 0, 0),
                                "run_id", PQgetvalue(res, 0, 1), "kind", PQgetvalue(res, 0, 2),
                                "input", json_column(res, 0, 3), "lease_until",
                                PQgetvalue(res, 0, 4), "attempts", atoi(PQgetvalue(res, 0, 5))));
    PQclear(res);
}

/* POST /internal/runner/{id}/status {runner, state, output_digest, detail, lease_seconds} */
void
gw_h_runner_status(gw_req *r)
{
    static const gw_field spec[] = {{"runner", GW_STR, true, 1, 64},
                                    {"state", GW_STR, true, 1, 16},
                                    {"output_digest", GW_STR, false, 64, 64},
                                    {"detail", GW_STR, false, 0, 1000},
                                    {"lease_seconds", GW_INT, false, 10, 3600}};
    char id[37], *v[5];
    const char *values[6];
    PGresult *res;

    if (!gw_param_uuid(r, 0, id) || !gw_parse_body(r, spec, 5, v))
        return;
    values[0] = id;
    for (int i = 0; i < 4; i++)
        values[i + 1] = v[i];
    values[5] = v[4] ? v[4] : LEASE_DEFAULT;
    res = run(r, "runner_status", 6, values);
    gw_spec_free(v, 5);
    if (res == NULL)
        return;
    gw_reply_json(r, 200,
                  json_pack("{s:s,s:s,s:o}", "run_id", id, "state", PQgetvalue(res, 0, 0),
                            "receipt_seq",
                            PQgetisnull(res, 0, 1) ? json_null()
                                                   : json_integer(atoll(PQgetvalue(res, 0, 1)))));
    PQclear(res);
}
