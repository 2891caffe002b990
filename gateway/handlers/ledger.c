/* ledger.c: shares (revoke, public resolve) and the ledger routes (verify, checkpoint, proof). */
#include "common.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <strings.h>

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

/* ---- the share page (issue 11; gateway/share_page/README.md) ------------------------------ */

/* The page's assets, built into the binary from gateway/share_page/ (share_page/embed.sh). */
extern const unsigned char gw_asset_share_html[], gw_asset_unavailable_html[], gw_asset_share_css[],
    gw_asset_share_js[];
extern const size_t gw_asset_share_html_len, gw_asset_unavailable_html_len, gw_asset_share_css_len,
    gw_asset_share_js_len;

/* Both pages load nothing but their own nonce'd style and script, and may only call back to this
 * origin (the page reads /ledger/keys); no form, no frame, no base URL to hijack. */
#define SHARE_CSP                                                                                  \
    "default-src 'none'; script-src 'nonce-%s'; style-src 'nonce-%s'; img-src 'self' data:; "      \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* An RFC 9110 qvalue ("0", "0.5", "1.000") between s and end; anything else counts as 0, so a
 * malformed weight never promotes a type. */
static double
accept_qvalue(const char *s, const char *end)
{
    double q, unit = 0.1;
    int digits = 0;

    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (s >= end || (*s != '0' && *s != '1'))
        return 0;
    q = *s++ - '0';
    if (s < end && *s == '.')
        for (s++; s < end && *s >= '0' && *s <= '9' && digits < 3; s++, digits++, unit /= 10)
            q += (*s - '0') * unit;
    return s == end && q <= 1 ? q : 0;
}

/* The first c in [s, end), or NULL. */
static const char *
find_in(const char *s, const char *end, char c)
{
    for (; s < end; s++)
        if (*s == c)
            return s;
    return NULL;
}

/*
 * The weight an Accept header gives to type ("text/html"): the q of the most specific range
 * that matches it (type/subtype over type/x over x/x, RFC 9110 section 12.5.1), 0 when none
 * does. Reads the header in place, once, without allocating.
 */
static double
accept_weight(const char *accept, const char *type)
{
    size_t type_len = strlen(type), main_len = (size_t)(strchr(type, '/') - type);
    int best = 0;
    double best_q = 0;

    for (const char *p = accept; p != NULL && *p;) {
        const char *comma = strchr(p, ','), *elem_end = comma ? comma : p + strlen(p);
        const char *range = p, *range_end, *param;
        int spec = 0;

        while (range < elem_end && (*range == ' ' || *range == '\t'))
            range++;
        param = find_in(range, elem_end, ';');
        range_end = param ? param : elem_end;
        while (range_end > range && (range_end[-1] == ' ' || range_end[-1] == '\t'))
            range_end--;
        if ((size_t)(range_end - range) == type_len && strncasecmp(range, type, type_len) == 0)
            spec = 3;
        else if ((size_t)(range_end - range) == main_len + 2 &&
                 strncasecmp(range, type, main_len + 1) == 0 && range[main_len + 1] == '*')
            spec = 2;
        else if (range_end - range == 3 && memcmp(range, "*/*", 3) == 0)
            spec = 1;
        if (spec > 0) {
            double q = 1;

            while (param != NULL) {
                const char *name = param + 1, *next = find_in(name, elem_end, ';');
                const char *value_end = next ? next : elem_end;

                while (name < value_end && (*name == ' ' || *name == '\t'))
                    name++;
                if (value_end - name >= 2 && (name[0] == 'q' || name[0] == 'Q') && name[1] == '=')
                    q = accept_qvalue(name + 2, value_end);
                param = next;
            }
            if (spec > best || (spec == best && q > best_q)) {
                best = spec;
                best_q = q;
            }
        }
        p = comma ? comma + 1 : NULL;
    }
    return best_q;
}

/* A browser asks for text/html first; curl's and most clients' * / * (or no Accept at all) ranks
 * both equally, and a tie keeps the JSON bundle, which API clients relied on first. */
static bool
wants_html(gw_req *r)
{
    const char *accept = gw_header(r, "Accept");

    return accept != NULL &&
           accept_weight(accept, "text/html") > accept_weight(accept, "application/json");
}

/* The bundle inside <script type="application/json">: <, > and & escaped so that no value can
 * close the element or open a comment, U+2028/9 so that the text stays valid JavaScript too.
 * The page undoes exactly these escapes for "Download bundle". */
static void
write_embedded_json(FILE *out, const char *json)
{
    for (const unsigned char *s = (const unsigned char *)json; *s; s++) {
        if (*s == '<' || *s == '>' || *s == '&')
            fprintf(out, "\\u%04x", *s);
        else if (s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9)) {
            fprintf(out, "\\u%04x", s[2] == 0xa8 ? 0x2028 : 0x2029);
            s += 2;
        } else
            fputc(*s, out);
    }
}

/* Replies with an HTML page: the template's @@NONCE@@, @@CSS@@, @@JS@@ and @@BUNDLE@@ markers
 * filled in, a fresh CSP nonce, no caching (the token is in the URL). */
static void
reply_page(gw_req *r, unsigned status, const unsigned char *template, size_t template_len,
           const char *bundle_json)
{
    unsigned char raw[16];
    char nonce[32], csp[sizeof SHARE_CSP + 64];
    char *page = NULL;
    size_t page_len = 0;
    const char *t = (const char *)template, *end = t + template_len;
    FILE *out;

    /* 128 random bits per response: a nonce an attacker could predict would let injected
     * markup run as if it were ours */
    if (RAND_bytes(raw, sizeof raw) != 1 ||
        EVP_EncodeBlock((unsigned char *)nonce, raw, 16) != 24 ||
        (out = open_memstream(&page, &page_len)) == NULL) {
        gw_reply_problem(r, GW_P_INTERNAL, NULL);
        return;
    }
    while (t < end) {
        const char *mark = memmem(t, (size_t)(end - t), "@@", 2), *close;
        size_t name_len;

        if (mark == NULL || (close = memmem(mark + 2, (size_t)(end - mark - 2), "@@", 2)) == NULL) {
            fwrite(t, 1, (size_t)(end - t), out);
            break;
        }
        fwrite(t, 1, (size_t)(mark - t), out);
        name_len = (size_t)(close - mark - 2);
#define IS(name) (name_len == sizeof name - 1 && memcmp(mark + 2, name, name_len) == 0)
        if (IS("NONCE"))
            fputs(nonce, out);
        else if (IS("CSS"))
            fwrite(gw_asset_share_css, 1, gw_asset_share_css_len, out);
        else if (IS("JS"))
            fwrite(gw_asset_share_js, 1, gw_asset_share_js_len, out);
        else if (IS("BUNDLE") && bundle_json != NULL)
            write_embedded_json(out, bundle_json);
        else /* not a marker of ours: keep the text as it is */
            fwrite(mark, 1, (size_t)(close + 2 - mark), out);
#undef IS
        t = close + 2;
    }
    if (fclose(out) != 0 || page == NULL) {
        free(page);
        gw_reply_problem(r, GW_P_INTERNAL, NULL);
        return;
    }
    gw_reply_text(r, status, "text/html; charset=utf-8", page, page_len, true);
    free(page);
    if (r->response != NULL) {
        snprintf(csp, sizeof csp, SHARE_CSP, nonce, nonce);
        MHD_add_response_header(r->response, "Content-Security-Policy", csp);
        MHD_add_response_header(r->response, "Vary", "Accept");
    }
    r->no_store = true;
    if (status == 404)
        r->problem = gw_problems[GW_P_NOT_FOUND].slug; /* the access log, as for the JSON 404 */
}

/*
 * Counts one access of a link that resolved: recorded for the next batch (share_counts.c), or,
 * when too many links wait for it, added at once. A count that cannot be added at all is
 * logged, never turned into an error: the bundle was served.
 */
static void
count_access(const char *token)
{
    char *tokens;
    const char *values[2];
    PGresult *res;

    if (gw_share_count(token))
        return;
    if (asprintf(&tokens, "{\"%s\"}", token) < 0)
        return;
    values[0] = tokens;
    values[1] = "{1}";
    res = gw_db_exec("share_access_add", 2, values);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        atomic_fetch_add(&gw_share_accesses_lost, 1);
        gw_log("warn", "share_counts", "\"message\":\"a share link access was not counted\"");
    }
    PQclear(res);
    gw_wipe_free(tokens);
}

void
gw_h_share_get(gw_req *r)
{
    const char *values[1] = {r->params[0]};
    PGresult *res = gw_db_exec("share_resolve", 1, values);
    bool html = wants_html(r);

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

        /* unknown, expired, revoked: one answer */
        if (state != NULL && strcmp(state, "P0002") == 0 && html)
            reply_page(r, 404, gw_asset_unavailable_html, gw_asset_unavailable_html_len, NULL);
        else if (state != NULL && strcmp(state, "P0002") == 0)
            gw_reply_problem(r, GW_P_NOT_FOUND, "This link is not available.");
        else
            gw_reply_db_error(r, res);
        PQclear(res);
        return;
    }
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        gw_reply_problem(r, GW_P_INTERNAL, NULL);
        PQclear(res);
        return;
    }
    count_access(r->params[0]);
    if (html) {
        /* the same text as the JSON answer, so that "Download bundle" gives exactly what a
         * program would have received */
        reply_page(r, 200, gw_asset_share_html, gw_asset_share_html_len, PQgetvalue(res, 0, 0));
    } else {
        /* the database's text of the bundle as it is: parsing it and writing it again was a
         * fifth of the gateway's time per share request (bench/gateway.sh, perf) */
        gw_reply_text(r, 200, "application/json", PQgetvalue(res, 0, 0),
                      (size_t)PQgetlength(res, 0, 0), true);
        if (r->response != NULL)
            MHD_add_response_header(r->response, "Vary", "Accept");
    }
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
            gw_db_primary_once(); /* the checkpoint just recorded is on the primary */
            if ((res = run(r, "ledger_proof", 4, values)) == NULL)
                return;
            bundle = json_column(res, 0, 0);
        }
        gw_reply_json(r, 200, bundle);
    }
    PQclear(res);
}
