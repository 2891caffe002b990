/*
 * mail.c: delivery of the email outbox in development. With neither RESEND_API_KEY nor
 * SMTP_URL (refused in production by the boot checks), each message becomes an RFC 5322 file
 * in MAIL_DIR and its link is logged, so a newcomer can log in without any mail server.
 * SMTP and Resend delivery arrive with the integrations (issue 6) on the same outbox calls.
 */
#include "gw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 500

/* Writes one message as <MAIL_DIR>/<message id>.eml; the link is logged too. */
static bool
write_eml(const char *id, const char *kind, const char *to, const char *link)
{
    char path[1024], tmp[1100], date[64];
    time_t now = time(NULL);
    struct tm tm;
    FILE *f;
    bool invite = strcmp(kind, "invite") == 0;

    if (mkdir(gw.cfg.mail_dir, 0700) != 0 && errno != EEXIST)
        return false;
    snprintf(path, sizeof path, "%s/%s.eml", gw.cfg.mail_dir, id);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    f = fopen(tmp, "w");
    if (f == NULL)
        return false;
    fprintf(
        f,
        "From: %s\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@defendable>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "%s\r\n\r\n%s\r\n\r\nThe link works once and expires soon. If you did not ask for it, "
        "ignore this message.\r\n",
        gw.cfg.mail_from, to,
        invite ? "You are invited to defendable" : "Your defendable login link", date, id,
        invite ? "Open this link to accept the invitation:" : "Open this link to log in:", link);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return false;
    return true;
}

void *
gw_mail_thread(void *arg)
{
    (void)arg;
    gw_thread_enter();
    /* production always has a real delivery configured (boot checks); nothing to do here */
    if (gw.cfg.production || gw.cfg.smtp_url != NULL || gw.cfg.resend_api_key != NULL)
        return NULL;
    while (!gw_stopping) {
        const char *values[2] = {"10", NULL};
        PGresult *begin = gw_db_exec("begin", 0, NULL), *res = NULL;
        int n = 0;

        PQclear(begin);
        res = gw_db_exec("outbox_claim", 1, values);
        if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
            n = PQntuples(res);
        for (int i = 0; i < n; i++) {
            const char *id = PQgetvalue(res, i, 0), *kind = PQgetvalue(res, i, 1);
            char *link = NULL;
            PGresult *mark;

            if (asprintf(&link, "%s/auth/%s?token=%s", gw.cfg.app_base_url,
                         strcmp(kind, "invite") == 0 ? "invite" : "magic",
                         PQgetvalue(res, i, 3)) < 0)
                link = NULL;
            values[0] = id;
            if (link != NULL && write_eml(id, kind, PQgetvalue(res, i, 2), link)) {
                /* development only: the link is printed so that no mail server is needed */
                gw_log("info", "mail", "\"message_id\":\"%s\",\"kind\":\"%s\",\"link\":\"%s\"", id,
                       kind, link);
                gw_metrics_count("emails_delivered");
                mark = gw_db_exec("outbox_sent", 1, values);
            } else {
                values[1] = "could not write the message file";
                gw_metrics_count("email_failures");
                mark = gw_db_exec("outbox_failed", 2, values);
            }
            PQclear(mark);
            free(link);
        }
        PQclear(res);
        PQclear(gw_db_exec("commit", 0, NULL));
        for (int s = 0; s < POLL_MS / 100 && !gw_stopping; s++)
            usleep(100000);
    }
    gw_db_close_thread();
    return NULL;
}
