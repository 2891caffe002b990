/*
 * outbound.c: the gateway's one way out to other HTTP services (Stripe, Resend), on libcurl.
 * Bounded in time and in the size of what it reads back; never logs a header (they carry the
 * API keys) or a body.
 */
#include "gw.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESPONSE (256 * 1024)

typedef struct sink {
    dfd_buf buf;
    bool overflow;
} sink;

static size_t
collect(char *data, size_t size, size_t n, void *ctx)
{
    sink *s = ctx;
    size_t len = size * n;

    if (s->buf.len + len > MAX_RESPONSE) {
        s->overflow = true;
        return 0; /* aborts the transfer */
    }
    if (!dfd_buf_append(&s->buf, data, len))
        return 0;
    return len;
}

bool
gw_http_post(const char *url, const char *const *headers, const char *body, long *status,
             char **response)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *list = NULL;
    sink s = {0};
    CURLcode rc;
    bool ok = false;

    *status = 0;
    *response = NULL;
    if (curl == NULL)
        return false;
    dfd_buf_init(&s.buf);
    for (; headers && *headers; headers++) {
        struct curl_slist *next = curl_slist_append(list, *headers);

        if (next == NULL)
            goto done;
        list = next;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 15L);
    /* only http(s), never a redirect: a POST carrying a key goes where it was told, or nowhere */
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        gw_log("warn", "outbound", "\"message\":\"%s\"", curl_easy_strerror(rc));
        goto done;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    if (s.buf.failed || !dfd_buf_terminate(&s.buf))
        goto done;
    *response = strdup(s.buf.data ? s.buf.data : "");
    ok = *response != NULL;
done:
    dfd_buf_free(&s.buf);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    return ok;
}
