/*
 * signer.c: checkpoint signing. The gateway holds LEDGER_SIGNING_KEY and nothing else does: it
 * asks the database for the checkpoint body, signs it here, and records the signed note, which
 * the database stores only after checking the signature and the root. Done on demand
 * (GET /ledger/checkpoint) and every CHECKPOINT_INTERVAL_SECONDS for organizations whose
 * checkpoint is behind. With several gateways on one database, signing stays single-writer:
 * an org is signed by one gateway at a time, and only the holder of the signer lease runs the
 * periodic round (db.c, sign_lock and signer_lease).
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool
returned_true(PGresult *res)
{
    bool yes = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
               strcmp(PQgetvalue(res, 0, 0), "t") == 0;

    PQclear(res);
    return yes;
}

static bool sign_locked(const gw_keys *keys, const char *org, char **note_out);

bool
gw_sign_checkpoint(const char *org, char **note_out)
{
    const char *values[1] = {org};
    /* one set for the whole signature: a reload in between cannot pair a key with another's id */
    const gw_keys *keys = gw_keys_now();
    bool ok;

    if (keys == NULL || !returned_true(gw_db_exec("sign_lock", 1, values)))
        return false;
    ok = sign_locked(keys, org, note_out);
    /* a connection lost meanwhile took the lock with it; otherwise it is released here */
    PQclear(gw_db_exec("sign_unlock", 1, values));
    return ok;
}

static bool
sign_locked(const gw_keys *keys, const char *org, char **note_out)
{
    const char *values[2];
    PGresult *res;
    dfd_buf note;
    bool ok = false;

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
    bool leader = false;

    while (!gw_stopping) {
        const char *values[1] = {"100"};
        PGresult *res;
        bool lease = returned_true(gw_db_exec("signer_lease", 0, NULL));

        if (lease != leader)
            gw_log("info", "signer", "\"message\":\"%s\"",
                   lease ? "signer lease taken: this gateway signs due checkpoints"
                         : "signer lease held elsewhere: another gateway signs due checkpoints");
        leader = lease;
        if (lease) {
            res = gw_db_exec("checkpoints_due", 1, values);
            for (int i = 0; res && PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res);
                 i++)
                if (!gw_sign_checkpoint(PQgetvalue(res, i, 0), NULL))
                    gw_log("warn", "signer", "\"org\":\"%s\",\"message\":\"checkpoint not signed\"",
                           PQgetvalue(res, i, 0));
            PQclear(res);
        }
        for (int s = 0; s < gw.cfg.checkpoint_interval_seconds * 10 && !gw_stopping; s++)
            usleep(100000);
    }
    gw_db_close_thread();
    return NULL;
}
