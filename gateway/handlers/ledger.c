/* ledger.c: shares (revoke, public resolve) and the ledger routes (verify, checkpoint, proof). */
#include "common.h"

void
gw_h_share_delete(gw_req *r)
{
    char share[37];
    const char *values[3];
    PGresult *res;

    if (!gw_param_uuid(r, 0, share))
        return;
    values[0] = r->actor;
    values[1] = r->iat;
    values[2] = share;
    if ((res = run(r, "share_revoke", 3, values)) == NULL)
        return;
    PQclear(res);
    gw_reply_empty(r, 204);
}

void
gw_h_share_get(gw_req *r)
{
    const char *values[1] = {r->params[0]};
    PGresult *res = gw_db_exec("share_resolve", 1, values);

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

        /* unknown, expired, revoked: one answer */
        if (state != NULL && strcmp(state, "P0002") == 0)
            gw_reply_problem(r, GW_P_NOT_FOUND, "This link is not available.");
        else
            gw_reply_db_error(r, res);
        PQclear(res);
        return;
    }
    gw_reply_json(r, 200, json_column(res, 0, 0));
    PQclear(res);
}

void
gw_h_ledger_verify(gw_req *r)
{
    char org[37];
    const char *values[3];
    PGresult *res;
    bool ok;

    if (!org_param(r, org))
        return;
    values[0] = r->actor;
    values[1] = r->iat;
    values[2] = org;
    if ((res = run(r, "ledger_verify", 3, values)) == NULL)
        return;
    ok = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 3), "t") == 0;
    if (!ok)
        gw_metrics_count("ledger_verification_failures");
    gw_reply_json(
        r, 200,
        json_pack(
            "{s:s,s:I,s:o,s:b,s:o,s:s}", "org_id", org, "receipts",
            (json_int_t)(PQntuples(res) ? atoll(PQgetvalue(res, 0, 1)) : 0), "head_seq",
            PQntuples(res) && !PQgetisnull(res, 0, 2) ? json_integer(atoll(PQgetvalue(res, 0, 2)))
                                                      : json_null(),
            "ok", ok, "first_bad_seq",
            PQntuples(res) && !PQgetisnull(res, 0, 4) ? json_integer(atoll(PQgetvalue(res, 0, 4)))
                                                      : json_null(),
            "detail", PQntuples(res) ? PQgetvalue(res, 0, 5) : "ok"));
    PQclear(res);
}

static bool
signed_by_current_key(const char *note_text)
{
    dfd_note *note = malloc(sizeof *note);
    bool ok = note != NULL && dfd_note_parse(note_text, strlen(note_text), note) == DFD_OK &&
              dfd_note_verify(note, &gw_keys_now()->signer.vkey);

    free(note);
    return ok;
}

void
gw_h_ledger_checkpoint(gw_req *r)
{
    char org[37];
    const char *values[3];
    PGresult *res;

    if (!org_param(r, org))
        return;
    values[0] = r->actor;
    values[1] = r->iat;
    values[2] = org;
    if ((res = run(r, "ledger_checkpoint", 3, values)) == NULL)
        return;
    /* behind the ledger (or none yet), or signed by a key since rotated out: sign one now, then
     * answer with it, so the note always verifies with the verifier_key sent beside it */
    if (PQgetisnull(res, 0, 0) || atoll(PQgetvalue(res, 0, 0)) < atoll(PQgetvalue(res, 0, 1)) ||
        !signed_by_current_key(PQgetvalue(res, 0, 2))) {
        PQclear(res);
        if (!gw_sign_checkpoint(org, NULL)) {
            gw_reply_problem(r, GW_P_UNAVAILABLE, "The checkpoint could not be signed right now.");
            return;
        }
        if ((res = run(r, "ledger_checkpoint", 3, values)) == NULL)
            return;
    }
    gw_reply_json(r, 200,
                  json_pack("{s:I,s:I,s:o,s:s}", "tree_size",
                            (json_int_t)(PQgetisnull(res, 0, 0) ? 0 : atoll(PQgetvalue(res, 0, 0))),
                            "current_size", (json_int_t)atoll(PQgetvalue(res, 0, 1)), "note",
                            text_or_null(res, 0, 2), "verifier_key", gw_keys_now()->verifier_key));
    PQclear(res);
}

void
gw_h_ledger_proof(gw_req *r)
{
    char org[37], seq[24];
    const char *values[4];
    PGresult *res;

    if (!seq_param(r, 0, seq) || !org_param(r, org))
        return;
    values[0] = r->actor;
    values[1] = r->iat;
    values[2] = org;
    values[3] = seq;
    if ((res = run(r, "ledger_proof", 4, values)) == NULL)
        return;
    {
        json_t *bundle = json_column(res, 0, 0);

        /* no checkpoint covers this receipt yet: sign one, so the proof verifies offline */
        if (json_is_null(json_object_get(bundle, "checkpoint")) && gw_sign_checkpoint(org, NULL)) {
            PQclear(res);
            json_decref(bundle);
            if ((res = run(r, "ledger_proof", 4, values)) == NULL)
                return;
            bundle = json_column(res, 0, 0);
        }
        gw_reply_json(r, 200, bundle);
    }
    PQclear(res);
}
