/*
 * http.c: what every response goes through: the JSON log line writer, and the reply helpers
 * (JSON, text, empty, RFC 9457 problems). Kept apart from server.c so that the unit tests link
 * the routing, body and problem code without the daemon.
 */
#include "gw.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- logging ------------------------------------------------------------------------------- */

void
gw_json_escape(const char *in, char *out, size_t cap)
{
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)in; *p && o + 7 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", *p);
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
}

static int
log_rank(const char *level)
{
    static const char *const ranks[] = {"debug", "info", "warn", "error"};

    for (int i = 0; i < 4; i++)
        if (strcmp(level, ranks[i]) == 0)
            return i;
    return 3; /* a level misspelt in the code is written rather than lost */
}

/* Set once at start, before any thread: read without a lock. */
static int log_threshold = 1;

void
gw_log_set_level(const char *level)
{
    log_threshold = level != NULL ? log_rank(level) : 1;
}

bool
gw_log_enabled(const char *level)
{
    return log_rank(level) >= log_threshold;
}

void
gw_log(const char *level, const char *event, const char *fmt, ...)
{
    char members[2048] = "";
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    va_list ap;

    if (!gw_log_enabled(level))
        return;
    if (fmt != NULL && fmt[0]) {
        va_start(ap, fmt);
        vsnprintf(members, sizeof members, fmt, ap);
        va_end(ap);
    }
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    /* one write per line so that lines from different threads never interleave */
    {
        char line[2300];
        int n =
            snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"%s\"%s%s}\n",
                     ts, level, event, members[0] ? "," : "", members);

        if (n > 0)
            (void)!write(STDERR_FILENO, line,
                         (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
    }
}

/* ---- responses ----------------------------------------------------------------------------- */

static void
set_response(gw_req *r, unsigned status, struct MHD_Response *resp)
{
    if (r->response)
        MHD_destroy_response(r->response);
    r->response = resp;
    r->status = status;
}

void
gw_reply_text(gw_req *r, unsigned status, const char *content_type, const char *text, size_t len,
              bool copy)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, (void *)text, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_MUST_FREE);

    if (resp == NULL)
        return;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    set_response(r, status, resp);
}

void
gw_reply_json(gw_req *r, unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);

    json_decref(body);
    if (text == NULL) {
        gw_reply_problem(r, GW_P_INTERNAL, NULL);
        return;
    }
    gw_reply_text(r, status, "application/json", text, strlen(text), false);
}

void
gw_reply_empty(gw_req *r, unsigned status)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);

    set_response(r, status, resp);
}

void
gw_reply_problem(gw_req *r, gw_problem_id id, const char *detail)
{
    const gw_problem *p = &gw_problems[id];
    json_t *body = json_object();
    char type[96], *text;

    snprintf(type, sizeof type, "urn:defendable:problem:%s", p->slug);
    json_object_set_new(body, "type", json_string(type));
    json_object_set_new(body, "title", json_string(p->title));
    json_object_set_new(body, "status", json_integer(p->status));
    if (detail != NULL && detail[0])
        json_object_set_new(body, "detail", json_string(detail));
    json_object_set_new(body, "instance", json_string(r->request_id));
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL)
        return;
    gw_reply_text(r, p->status, "application/problem+json", text, strlen(text), false);
    r->problem = p->slug;
}

/* ---- request helpers ----------------------------------------------------------------------- */

const char *
gw_query(gw_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *
gw_header(gw_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/*
 * Per-thread cleanup: libmicrohttpd's pool threads end without a hook of ours, so a
 * thread-specific key's destructor releases what the core cached for the thread.
 */
static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

static void
release_thread(void *unused)
{
    (void)unused;
    dfd_sha256_thread_release();
}

static void
make_thread_key(void)
{
    (void)pthread_key_create(&thread_key, release_thread);
}

void
gw_thread_enter(void)
{
    pthread_once(&thread_key_once, make_thread_key);
    if (pthread_getspecific(thread_key) == NULL)
        pthread_setspecific(thread_key, (void *)1);
}
