/*
 * signer.c: checkpoint signing. The gateway holds LEDGER_SIGNING_KEY and nothing else does: it
 * asks the database for the checkpoint body, signs it here, and records the signed note, which
 * the database stores only after checking the signature and the root. Done on demand
 * (GET /ledger/checkpoint) and every minute for organizations whose checkpoint is behind.
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIGN_INTERVAL_SECONDS 60

bool
gw_sign_checkpoint(const char *org, char **note_out)
{
    const char *values[2];
    PGresult *res;
    dfd_buf note;
    bool ok = false;
    /* one set for the whole signature: a reload in between cannot pair a key with another's id */
    const gw_keys *keys = gw_keys_now();

    if (keys == NULL)
        return false;
    values[0] = org;
    values[1] = gw.cfg.ledger_origin;
    res = gw_db_exec("checkpoint_body", 2, values);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        PQclear(res);
        return false;
    }
    dfd_buf_init(&note);
    if (dfd_note_sign(&note, PQgetvalue(res, 0, 0), strlen(PQgetvalue(res, 0, 0)), &keys->signer) ==
            DFD_OK &&
        dfd_buf_terminate(&note)) {
        PQclear(res);
        values[0] = note.data;
        values[1] = keys->verifier_key;
        res = gw_db_exec("record_checkpoint", 2, values);
        ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
        if (ok) {
            gw_metrics_count("checkpoints_signed");
            if (note_out != NULL)
                *note_out = strdup(note.data);
        }
    }
    PQclear(res);
    dfd_buf_free(&note);
    return ok;
}

void *
gw_signer_thread(void *arg)
{
    (void)arg;
    gw_thread_enter();
    while (!gw_stopping) {
        const char *values[1] = {"100"};
        PGresult *res = gw_db_exec("checkpoints_due", 1, values);

        for (int i = 0; res && PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++)
            if (!gw_sign_checkpoint(PQgetvalue(res, i, 0), NULL))
                gw_log("warn", "signer", "\"org\":\"%s\",\"message\":\"checkpoint not signed\"",
                       PQgetvalue(res, i, 0));
        PQclear(res);
        for (int s = 0; s < SIGN_INTERVAL_SECONDS * 10 && !gw_stopping; s++)
            usleep(100000);
    }
    gw_db_close_thread();
    return NULL;
}
