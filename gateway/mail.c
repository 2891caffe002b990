/*
 * mail.c: delivery of the email outbox (magic links, invites), at most once per message.
 *
 * The SQL side (outbox_claim) commits a claim before each send; a send that fails in a way known
 * to have delivered nothing is retried with backoff (outbox_mark_failed), anything else is given
 * up with an email.failed security event, because sending again could deliver twice. Three
 * transports, chosen by configuration:
 *   SMTP_URL        smtp:// (STARTTLS whenever the server offers it) or smtps://, via libcurl;
 *   RESEND_API_KEY  Resend's HTTP API, with the message id as Idempotency-Key (so a retry after
 *                   an unanswered request cannot deliver twice);
 *   neither         development only (refused in production by the boot checks): each message
 *                   becomes an RFC 5322 file in MAIL_DIR and its link is logged, so a newcomer
 *                   can log in without any mail server.
 */
#include "gw.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 500
#define SMTP_DATA_ACCEPTED 354 /* the server took DATA: from here on the outcome may be unknown */
#define MARK_SENT_TRIES 300    /* seconds of retrying to record a delivery (database down) */

typedef enum send_outcome { SEND_OK, SEND_RETRY, SEND_FAILED } send_outcome;

typedef struct message {
    const char *id, *kind, *to, *link;
    char *text; /* the RFC 5322 message, CRLF line ends */
    const char *subject;
} message;

static bool
is_invite(const char *kind)
{
    return strcmp(kind, "invite") == 0;
}

/* The plain-text body, shared by every transport. */
static char *
body_text(const message *m)
{
    char *b = NULL;

    if (asprintf(&b,
                 "%s\r\n\r\n%s\r\n\r\nThe link works once and expires soon. If you did not ask "
                 "for it, ignore this message.\r\n",
                 is_invite(m->kind) ? "Open this link to accept the invitation:"
                                    : "Open this link to log in:",
                 m->link) < 0)
        return NULL;
    return b;
}

static bool
compose(message *m)
{
    char date[64], *body = body_text(m);
    time_t now = time(NULL);
    struct tm tm;

    if (body == NULL)
        return false;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    if (asprintf(
            &m->text,
            "From: %s\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@defendable>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s",
            gw.cfg.mail_from, m->to, m->subject, date, m->id, body) < 0)
        m->text = NULL;
    gw_wipe_free(body);
    return m->text != NULL;
}

/* ---- development: files --------------------------------------------------------------------- */

static send_outcome
send_file(const message *m, char *err, size_t cap)
{
    char path[1024], tmp[1100];
    FILE *f;

    if (mkdir(gw.cfg.mail_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, cap, "cannot create the mail directory");
        return SEND_RETRY;
    }
    snprintf(path, sizeof path, "%s/%s.eml", gw.cfg.mail_dir, m->id);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if ((f = fopen(tmp, "w")) == NULL) {
        snprintf(err, cap, "could not write the message file");
        return SEND_RETRY;
    }
    fputs(m->text, f);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        snprintf(err, cap, "could not write the message file");
        return SEND_RETRY;
    }
    /* development only: the link is printed so that no mail server is needed */
    gw_log("info", "mail", "\"message_id\":\"%s\",\"kind\":\"%s\",\"link\":\"%s\"", m->id, m->kind,
           m->link);
    return SEND_OK;
}

/* ---- SMTP ----------------------------------------------------------------------------------- */

typedef struct reader {
    const char *data;
    size_t left;
} reader;

static size_t
read_message(char *buf, size_t size, size_t n, void *ctx)
{
    reader *r = ctx;
    size_t len = size * n < r->left ? size * n : r->left;

    memcpy(buf, r->data, len);
    r->data += len;
    r->left -= len;
    return len;
}

/* The address part of MAIL_FROM ("name <a@b>" or "a@b"), in angle brackets, for MAIL FROM. */
static void
envelope_from(char *out, size_t cap)
{
    const char *lt = strrchr(gw.cfg.mail_from, '<'), *gt = lt ? strchr(lt, '>') : NULL;

    if (lt != NULL && gt != NULL)
        snprintf(out, cap, "%.*s", (int)(gt - lt + 1), lt);
    else
        snprintf(out, cap, "<%s>", gw.cfg.mail_from);
}

static send_outcome
send_smtp(const message *m, char *err, size_t cap)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *rcpt = NULL;
    char from[320], to[320];
    reader rd = {m->text, strlen(m->text)};
    long code = 0;
    CURLcode rc;

    if (curl == NULL) {
        snprintf(err, cap, "out of memory");
        return SEND_RETRY;
    }
    envelope_from(from, sizeof from);
    snprintf(to, sizeof to, "<%s>", m->to);
    rcpt = curl_slist_append(NULL, to);
    /* the URL may carry credentials: it is handed to libcurl and never logged */
    curl_easy_setopt(curl, CURLOPT_URL, gw_keys_now()->cfg.smtp_url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    /* STARTTLS whenever the server offers it; certificates are verified as always */
    curl_easy_setopt(curl, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    if (gw.cfg.smtp_ca_file != NULL)
        curl_easy_setopt(curl, CURLOPT_CAINFO, gw.cfg.smtp_ca_file);
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_message);
    curl_easy_setopt(curl, CURLOPT_READDATA, &rd);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(curl);
    if (rc == CURLE_OK)
        return SEND_OK;
    snprintf(err, cap, "smtp: %s (last reply %ld)", curl_easy_strerror(rc), code);
    /* after DATA was accepted the message may have been queued: sending again could deliver
     * twice, so the outcome counts as unknown and the message is not retried */
    if (code == SMTP_DATA_ACCEPTED || code >= 500)
        return SEND_FAILED;
    return SEND_RETRY; /* no connection, TLS refused, a 4xx: nothing was delivered */
}

/* ---- Resend --------------------------------------------------------------------------------- */

static send_outcome
send_resend(const message *m, char *err, size_t cap)
{
    char *url = NULL, *auth = NULL, *idem = NULL, *payload = NULL, *answer = NULL,
         *body = body_text(m);
    json_t *doc = NULL;
    long status = 0;
    send_outcome out = SEND_RETRY;

    snprintf(err, cap, "resend: out of memory");
    if (body == NULL || asprintf(&url, "%s/emails", gw.cfg.resend_api_base) < 0 ||
        asprintf(&auth, "Authorization: Bearer %s", gw_keys_now()->cfg.resend_api_key) < 0 ||
        asprintf(&idem, "Idempotency-Key: %s", m->id) < 0 ||
        (doc = json_pack("{s:s,s:[s],s:s,s:s}", "from", gw.cfg.mail_from, "to", m->to, "subject",
                         m->subject, "text", body)) == NULL ||
        (payload = json_dumps(doc, JSON_COMPACT)) == NULL)
        goto done;
    {
        const char *headers[] = {auth, "Content-Type: application/json", idem, NULL};

        if (!gw_http_post(url, headers, payload, &status, &answer)) {
            /* unanswered: the idempotency key makes a retry safe */
            snprintf(err, cap, "resend: no answer");
        } else if (status >= 200 && status < 300) {
            out = SEND_OK;
        } else {
            snprintf(err, cap, "resend: HTTP %ld", status);
            out = status == 429 || status >= 500 ? SEND_RETRY : SEND_FAILED;
        }
    }
done:
    gw_wipe_free(auth);
    free(url);
    free(idem);
    gw_wipe_free(payload); /* payload, body and doc carry the link token */
    free(answer);
    gw_wipe_free(body);
    json_decref(doc);
    return out;
}

/* ---- the worker ----------------------------------------------------------------------------- */

static void
deliver(const char *id, const char *kind, const char *to, const char *secret)
{
    message m = {
        id,   kind,
        to,   NULL,
        NULL, is_invite(kind) ? "You are invited to defendable" : "Your defendable login link"};
    char *link = NULL, err[256] = "could not build the message";
    send_outcome out = SEND_RETRY;
    const char *values[3];
    PGresult *res;

    if (asprintf(&link, "%s/auth/%s?token=%s", gw.cfg.app_base_url,
                 is_invite(kind) ? "invite" : "magic", secret) < 0)
        link = NULL;
    m.link = link;
    if (link != NULL && compose(&m)) {
        if (gw_keys_now()->cfg.smtp_url != NULL)
            out = send_smtp(&m, err, sizeof err);
        else if (gw_keys_now()->cfg.resend_api_key != NULL)
            out = send_resend(&m, err, sizeof err);
        else
            out = send_file(&m, err, sizeof err);
    }
    values[0] = id;
    if (out == SEND_OK) {
        gw_metrics_count("emails_delivered");
        res = gw_db_exec("outbox_sent", 1, values);
        /* the database went away after the send: report again once it is back (marking sent
         * twice changes nothing), else the delivered message would be given up as failed; the
         * bound keeps well inside outbox_claim's 10 minutes before a claim counts as dead */
        for (int tries = 0; res == NULL && !gw_stopping && tries < MARK_SENT_TRIES; tries++) {
            usleep(1000000);
            res = gw_db_exec("outbox_sent", 1, values);
        }
    } else {
        char esc[300];

        values[1] = err;
        values[2] = out == SEND_RETRY ? "t" : "f";
        res = gw_db_exec("outbox_failed", 3, values);
        gw_metrics_count(res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK &&
                                 strcmp(PQgetvalue(res, 0, 0), "retry") == 0
                             ? "email_retries"
                             : "email_failures");
        gw_json_escape(err, esc, sizeof esc);
        gw_log("warn", "mail", "\"message_id\":\"%s\",\"kind\":\"%s\",\"error\":\"%s\"", id, kind,
               esc);
    }
    PQclear(res);
    gw_wipe_free(m.text); /* both hold the link token */
    gw_wipe_free(link);
}

void *
gw_mail_thread(void *arg)
{
    (void)arg;
    gw_thread_enter();
    while (!gw_stopping) {
        /* one message per claim: a gateway that dies mid-send leaves only that message in
         * doubt (given up after 10 minutes); a batch would leave every claimed message not yet
         * sent to be given up unsent */
        const char *values[1] = {"1"};
        PGresult *res = gw_db_exec("outbox_claim", 1, values);
        int n = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : 0;

        /* each claim is committed before its send (autocommit), which is what makes a crash
         * mid-send visible instead of silently repeated */
        for (int i = 0; i < n; i++) {
            if (!gw_stopping) {
                deliver(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                        PQgetvalue(res, i, 3));
            } else {
                /* stopping: claimed but never sent, so handing them back cannot duplicate */
                const char *back[3] = {PQgetvalue(res, i, 0), "the gateway stopped before sending",
                                       "t"};

                PQclear(gw_db_exec("outbox_failed", 3, back));
            }
        }
        PQclear(res);
        if (n > 0)
            continue; /* more may be due: claim the next one at once */
        for (int s = 0; s < POLL_MS / 100 && !gw_stopping; s++)
            usleep(100000);
    }
    gw_db_close_thread();
    return NULL;
}
