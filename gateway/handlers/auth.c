/* auth.c: magic links, invites and sessions: /auth/request, /auth/verify, /auth/accept-invite,
 * the two pages links open, and /me. */
#include "common.h"
#include "../jwt.h"

#include <time.h>

void
gw_h_auth_request(gw_req *r)
{
    static const gw_field spec[] = {{"email", GW_EMAIL, true, 3, 254}};
    char *v[1];
    const char *values[2];
    PGresult *res;

    if (!gw_parse_body(r, spec, 1, v))
        return;
    values[0] = v[0];
    values[1] = r->ip;
    res = run(r, "auth_request", 2, values);
    gw_spec_free(v, 1);
    if (res == NULL)
        return;
    PQclear(res);
    /* the same answer for every address: nothing tells whether an account exists */
    gw_reply_json(r, 202,
                  json_pack("{s:s}", "status", "If the address can log in, a link is on its way."));
}

/* Issues the session token for a successful verify or invite acceptance. */
static void
reply_session(gw_req *r, const char *user_id, const char *email, const char *memberships)
{
    int64_t now = (int64_t)time(NULL), ttl = (int64_t)gw.cfg.jwt_ttl_hours * 3600;
    const gw_keys *keys = gw_keys_now(); /* issued with the current secret only */
    char *token = gw_jwt_issue(keys->cfg.jwt_secret, keys->cfg.jwt_secret_len, user_id, now, ttl);
    char expires[32];
    time_t exp = (time_t)(now + ttl);
    struct tm tm;
    json_t *m = json_loads(memberships, 0, NULL);

    if (token == NULL) {
        json_decref(m);
        gw_reply_problem(r, GW_P_INTERNAL, NULL);
        return;
    }
    gmtime_r(&exp, &tm);
    strftime(expires, sizeof expires, "%Y-%m-%dT%H:%M:%SZ", &tm);
    gw_reply_json(r, 200,
                  json_pack("{s:s,s:s,s:s,s:s,s:o}", "token", token, "user_id", user_id, "email",
                            email, "expires_at", expires, "memberships", m ? m : json_array()));
    free(token);
    r->no_store = true;
}

static void
consume(gw_req *r, const char *stmt, int memberships_col)
{
    static const gw_field spec[] = {{"token", GW_STR, true, 1, 200}};
    char *v[1];
    const char *values[2];
    PGresult *res;

    if (!gw_parse_body(r, spec, 1, v))
        return;
    values[0] = v[0];
    values[1] = r->ip;
    res = run(r, stmt, 2, values);
    gw_spec_free(v, 1);
    if (res == NULL)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        PQclear(res);
        gw_metrics_count("auth_failures");
        /* unknown, used, expired: one answer, so nothing can be learned from it */
        gw_reply_problem(r, GW_P_UNAUTHORIZED, "The link is invalid or expired.");
        return;
    }
    reply_session(r, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
                  PQgetvalue(res, 0, memberships_col));
    PQclear(res);
}

void
gw_h_auth_verify(gw_req *r)
{
    consume(r, "auth_verify", 3);
}

void
gw_h_auth_accept_invite(gw_req *r)
{
    consume(r, "invite_accept", 4);
}

/*
 * The page a magic link or invite opens. Its GET never consumes anything, so mail scanners that
 * fetch links cannot use them up; the button posts the token (CSP: this script only).
 */
/* 'sha256-<base64>' of an inline block, for a Content-Security-Policy that allows only it */
static void
csp_hash(const char *text, char out[64])
{
    uint8_t h[32];

    dfd_sha256(text, strlen(text), h);
    memcpy(out, "'sha256-", 8);
    dfd_b64std_encode(h, sizeof h, out + 8);
    out[8 + 44] = '\'';
    out[8 + 45] = '\0';
}

static void
link_page(gw_req *r, const char *title, const char *action, const char *endpoint)
{
    static const char style[] =
        "body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;"
        "color:#111}button{font:inherit;padding:.6rem 1.2rem}pre{white-space:pre-wrap;"
        "word-break:break-all;background:#f3f3f3;padding:.5rem}";
    static const char script[] =
        "document.getElementById('go').addEventListener('click',async()=>{"
        "const t=new URLSearchParams(location.search).get('token')||'';"
        "const out=document.getElementById('out');out.textContent='Checking...';"
        "const res=await fetch(document.body.dataset.endpoint,{method:'POST',"
        "headers:{'Content-Type':'application/json'},body:JSON.stringify({token:t})});"
        "const b=await res.json();"
        "if(res.ok){out.textContent='You are logged in as '+b.email+'. Session token (keep it "
        "private):';"
        "document.getElementById('tok').textContent=b.token;}"
        "else{out.textContent='This link is invalid or expired.';}});";
    char *html, csp[400], script_hash[64], style_hash[64];
    int len;

    len = asprintf(&html,
                   "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                   "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                   "<title>%s - defendable</title><style>%s</style></head>"
                   "<body data-endpoint=\"%s\"><main><h1>%s</h1>"
                   "<p>Press the button to continue. Opening this page did not use the link.</p>"
                   "<button id=\"go\" type=\"button\">%s</button><p id=\"out\" role=\"status\"></p>"
                   "<pre id=\"tok\"></pre></main><script>%s</script></body></html>",
                   title, style, endpoint, title, action, script);
    if (len < 0) {
        gw_reply_problem(r, GW_P_INTERNAL, NULL);
        return;
    }
    gw_reply_text(r, 200, "text/html; charset=utf-8", html, (size_t)len, false);
    /* only these exact inline blocks may run: no other script, no inline handlers */
    csp_hash(script, script_hash);
    csp_hash(style, style_hash);
    snprintf(
        csp, sizeof csp,
        "default-src 'none'; script-src %s; style-src %s; connect-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'",
        script_hash, style_hash);
    MHD_add_response_header(r->response, "Content-Security-Policy", csp);
    r->no_store = true;
}

void
gw_h_auth_page(gw_req *r)
{
    link_page(r, "Log in", "Log in", "/auth/verify");
}

void
gw_h_invite_page(gw_req *r)
{
    link_page(r, "Accept the invitation", "Accept and log in", "/auth/accept-invite");
}

void
gw_h_me(gw_req *r)
{
    const char *values[2] = {r->actor, r->iat};
    PGresult *res = run(r, "me", 2, values);

    if (res == NULL)
        return;
    gw_reply_json(r, 200,
                  json_pack("{s:s,s:s,s:o}", "user_id", PQgetvalue(res, 0, 0), "email",
                            PQgetvalue(res, 0, 1), "memberships", json_column(res, 0, 2)));
    PQclear(res);
}
