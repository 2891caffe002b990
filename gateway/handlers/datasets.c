/*
 * datasets.c: the catalog, the stager's POST /internal/datasets, and download grants, which
 * answer with a short-lived presigned S3 GET URL instead of proxying the bytes (seed 001).
 */
#include "common.h"
#include "../sigv4.h"

#include <stdio.h>
#include <time.h>

/* seed 001: 60 download grants per organization per hour (DESIGN.md section 6) */
#define HOURLY_PER_ORG "60"

void
gw_h_datasets_catalog(gw_req *r)
{
    const char *values[2] = {r->actor, r->iat};
    PGresult *res = run(r, "dataset_catalog", 2, values);

    if (res == NULL)
        return;
    gw_reply_json(r, 200, json_pack("{s:o}", "datasets", json_column(res, 0, 0)));
    PQclear(res);
}

/* POST /internal/datasets: the stager registers (or re-registers) an object it uploaded. */
void
gw_h_internal_dataset(gw_req *r)
{
    static const gw_field spec[] = {{"slug", GW_STR, true, 1, 64},
                                    {"title", GW_STR, true, 1, 200},
                                    {"storage_key", GW_STR, true, 1, 1024},
                                    {"size", GW_INT, true, 0, 1L << 50},
                                    {"sha256", GW_STR, true, 64, 64}};
    char *v[5];
    PGresult *res;

    if (!gw_parse_body(r, spec, 5, v))
        return;
    res = run(r, "dataset_stage", 5, (const char *const *)v);
    if (res != NULL) {
        gw_reply_json(r, 200, json_pack("{s:s,s:s}", "slug", v[0], "status", "staged"));
        PQclear(res);
    }
    gw_spec_free(v, 5);
}

/*
 * POST /datasets/catalog/{slug}/download?org=: the grant (membership, daily quota, receipt) is
 * one SQL transaction; only a granted request gets a URL, signed here with the S3 secret, which
 * never reaches the database.
 */
void
gw_h_dataset_download(gw_req *r)
{
    char org[37], limit[16], *url = NULL;
    const char *slug = r->n_params > 0 ? r->params[0] : "";
    const char *values[7];
    gw_s3_target target = {gw.cfg.aws_endpoint_url_s3, gw.cfg.aws_region, gw.cfg.tigris_bucket,
                           !gw.cfg.s3_path_style};
    int64_t now = (int64_t)time(NULL);
    PGresult *res;

    if (!org_param(r, org))
        return;
    if (json_object_size(r->json) > 0) {
        gw_reply_problem(r, GW_P_INVALID, "This request takes an empty JSON object or no body.");
        return;
    }
    const gw_keys *keys = gw_keys_now(); /* the key id and its secret from one set */
    if (keys->cfg.aws_access_key_id == NULL || keys->cfg.aws_secret_access_key == NULL) {
        /* refused before the grant, so no quota is spent and no receipt claims a download */
        gw_reply_problem(r, GW_P_UNAVAILABLE, "Dataset downloads are not configured here.");
        return;
    }
    snprintf(limit, sizeof limit, "%d", gw.cfg.dataset_download_daily_limit);
    values[0] = r->actor;
    values[1] = r->iat;
    values[2] = org;
    values[3] = slug;
    values[4] = limit;
    values[5] = r->ip;
    values[6] = HOURLY_PER_ORG;
    if ((res = run(r, "dataset_download_grant", 7, values)) == NULL)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        long reset = atol(PQgetvalue(res, 0, 4)) - (long)now;
        bool hourly = strcmp(PQgetvalue(res, 0, 5), "dataset.download.hourly") == 0;

        snprintf(r->retry_after, sizeof r->retry_after, "%ld", reset > 0 ? reset : 1);
        gw_metrics_count("quota_denials");
        gw_reply_problem(r, GW_P_RATE_LIMITED,
                         hourly ? "The organization's hourly dataset download limit is reached."
                                : "The organization's daily dataset download quota is used up.");
        PQclear(res);
        return;
    }
    url = gw_s3_presign_get(&target, keys->cfg.aws_access_key_id, keys->cfg.aws_secret_access_key,
                            PQgetvalue(res, 0, 1), gw.cfg.dataset_url_ttl_seconds, now);
    if (url == NULL) {
        /* the stager's key or the S3 settings cannot be signed: an operator's problem */
        gw_log("error", "s3", "\"request_id\":\"%s\",\"message\":\"presigning failed\"",
               r->request_id);
        gw_reply_problem(r, GW_P_INTERNAL, NULL);
        PQclear(res);
        return;
    }
    {
        char expires[40];
        time_t at = (time_t)(now + gw.cfg.dataset_url_ttl_seconds);
        struct tm tm;

        gmtime_r(&at, &tm);
        strftime(expires, sizeof expires, "%Y-%m-%dT%H:%M:%SZ", &tm);
        gw_reply_json(r, 200,
                      json_pack("{s:s,s:s,s:s,s:I,s:i}", "slug", slug, "url", url, "expires_at",
                                expires, "receipt_seq", (json_int_t)atoll(PQgetvalue(res, 0, 2)),
                                "downloads_today", atoi(PQgetvalue(res, 0, 3))));
    }
    r->no_store = true; /* the URL is a credential for the object until it expires */
    free(url);
    PQclear(res);
}
