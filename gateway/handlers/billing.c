/*
 * billing.c: Stripe membership. POST /billing/checkout opens a Checkout Session carrying the
 * org id as client_reference_id; POST /webhooks/stripe (signature checked over the raw body
 * before this runs, see server.c) hands the event to billing_webhook, which is idempotent by
 * event id and mints the membership.* receipts.
 */
#include "common.h"
#include "../stripe.h"

#include <stdio.h>

/* A return URL must stay under APP_BASE_URL: Stripe sends the customer there afterwards. */
static bool
under_app(const char *url)
{
    size_t n = strlen(gw.cfg.app_base_url);

    return url != NULL && strncmp(url, gw.cfg.app_base_url, n) == 0 &&
           (url[n] == '/' || url[n] == '\0') && strpbrk(url, " \r\n\t\\") == NULL &&
           strstr(url + n, "..") == NULL;
}

void
gw_h_billing_checkout(gw_req *r)
{
    static const gw_field spec[] = {{"success_url", GW_STR, false, 1, 2000},
                                    {"cancel_url", GW_STR, false, 1, 2000}};
    char org[37], *v[2], *success = NULL, *cancel = NULL, *form = NULL, *auth = NULL, *url = NULL,
                         *idem = NULL, *answer = NULL;
    const char *values[3];
    PGresult *res = NULL;
    json_t *session = NULL;
    long status = 0;

    if (!org_param(r, org) || !gw_parse_body(r, spec, 2, v))
        return;
    if ((v[0] && !under_app(v[0])) || (v[1] && !under_app(v[1]))) {
        gw_reply_problem(r, GW_P_INVALID, "success_url and cancel_url must be under APP_BASE_URL.");
        goto done;
    }
    if (gw_keys_now()->cfg.stripe_api_key == NULL || gw.cfg.stripe_price_id == NULL) {
        gw_reply_problem(r, GW_P_UNAVAILABLE, "Billing is not configured here.");
        goto done;
    }
    values[0] = r->actor;
    values[1] = r->iat;
    values[2] = org;
    if ((res = run(r, "billing_checkout_begin", 3, values)) == NULL)
        goto done;
    if (strcmp(PQgetvalue(res, 0, 2), "active") == 0) {
        gw_reply_problem(r, GW_P_CONFLICT, "This organization already has an active membership.");
        goto done;
    }
    if (asprintf(&success, "%s/billing/success?org=%s", gw.cfg.app_base_url, org) < 0)
        success = NULL;
    if (asprintf(&cancel, "%s/billing/cancel?org=%s", gw.cfg.app_base_url, org) < 0)
        cancel = NULL;
    form = gw_stripe_checkout_form(gw.cfg.stripe_price_id, org, v[0] ? v[0] : success,
                                   v[1] ? v[1] : cancel, PQgetvalue(res, 0, 1));
    if (form == NULL ||
        asprintf(&auth, "Authorization: Bearer %s", gw_keys_now()->cfg.stripe_api_key) < 0 ||
        asprintf(&url, "%s/v1/checkout/sessions", gw.cfg.stripe_api_base) < 0 ||
        asprintf(&idem, "Idempotency-Key: checkout-%s-%s", org, r->request_id) < 0) {
        gw_reply_problem(r, GW_P_INTERNAL, NULL);
        goto done;
    }
    {
        const char *headers[] = {auth, "Content-Type: application/x-www-form-urlencoded", idem,
                                 "Stripe-Version: 2024-06-20", NULL};

        if (!gw_http_post(url, headers, form, &status, &answer) || status != 200 ||
            (session = json_loads(answer, 0, NULL)) == NULL ||
            !json_is_string(json_object_get(session, "id")) ||
            !json_is_string(json_object_get(session, "url"))) {
            gw_log("warn", "stripe", "\"request_id\":\"%s\",\"status\":%ld,\"message\":\"%s\"",
                   r->request_id, status, "checkout session not created");
            gw_metrics_count("stripe_failures");
            gw_reply_problem(r, GW_P_BAD_GATEWAY,
                             "The payment provider did not answer as expected.");
            goto done;
        }
    }
    gw_reply_json(r, 201,
                  json_pack("{s:O,s:O}", "session_id", json_object_get(session, "id"), "url",
                            json_object_get(session, "url")));
    r->no_store = true;
done:
    gw_wipe_free(auth);
    free(url);
    free(idem);
    free(form);
    free(success);
    free(cancel);
    free(answer);
    json_decref(session);
    PQclear(res);
    gw_spec_free(v, 2);
}

/* POST /webhooks/stripe: the signature was verified by the dispatcher over the raw body. */
void
gw_h_stripe_webhook(gw_req *r)
{
    gw_stripe_event ev;
    char period[24];
    const char *values[7];
    PGresult *res;

    if (!gw_stripe_event_parse(r->body ? r->body : "", r->body_len, &ev)) {
        gw_reply_problem(r, GW_P_BAD_JSON, "The event is not a Stripe event object.");
        return;
    }
    snprintf(period, sizeof period, "%lld", (long long)ev.period_end);
    values[0] = ev.id;
    values[1] = ev.type;
    values[2] = gw_text_is_uuid(ev.org_id) ? ev.org_id : NULL;
    values[3] = ev.customer;
    values[4] = ev.subscription;
    values[5] = ev.status;
    values[6] = period;
    res = run(r, "billing_webhook", 7, values);
    if (res != NULL) {
        /* 200 for every outcome: Stripe retries anything else, and a retry cannot help */
        gw_reply_json(r, 200,
                      json_pack("{s:s,s:s}", "event_id", ev.id, "outcome", PQgetvalue(res, 0, 0)));
        PQclear(res);
    }
    gw_stripe_event_free(&ev);
}
