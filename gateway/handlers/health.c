/* health.c: /healthz, /readyz, /metrics, /openapi.json, /ledger/keys. */
#include "common.h"

void
gw_h_healthz(gw_req *r)
{
    gw_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

void
gw_h_readyz(gw_req *r)
{
    if (!gw_db_ready()) {
        snprintf(r->retry_after, sizeof r->retry_after, "5");
        gw_reply_problem(r, GW_P_UNAVAILABLE, "The database is not reachable.");
        return;
    }
    gw_reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
}

void
gw_h_metrics(gw_req *r)
{
    char *text = gw_metrics_render();

    if (text == NULL) {
        gw_reply_problem(r, GW_P_INTERNAL, NULL);
        return;
    }
    gw_reply_text(r, 200, "text/plain; version=0.0.4", text, strlen(text), false);
    r->no_store = true;
}

void
gw_h_openapi(gw_req *r)
{
    gw_reply_json(r, 200, gw_openapi(gw.cfg.api_base_url));
}

void
gw_h_ledger_keys(gw_req *r)
{
    const gw_keys *keys = gw_keys_now();
    json_t *list = json_array();

    /* the current key first (it signs new checkpoints), then the retired ones, which still
     * verify the checkpoints they signed */
    json_array_append_new(list, json_string(keys->verifier_key));
    for (size_t i = 0; i < keys->n_previous_vkeys; i++)
        json_array_append_new(list, json_string(keys->previous_vkeys[i]));
    gw_reply_json(r, 200,
                  json_pack("{s:s,s:o}", "origin", gw.cfg.ledger_origin, "verifier_keys", list));
}
