/*
 * metrics.c: Prometheus counters, kept in atomics so that request threads never lock.
 * Requests by route and status class, a latency histogram, and the security-relevant counts
 * that alerts watch (401/403, quota denials, webhook signature failures, failed verifications).
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_ROUTES_MAX 64
#define N_CLASSES 5 /* 1xx..5xx */

static const double buckets_ms[] = {0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000};
#define N_BUCKETS (sizeof buckets_ms / sizeof buckets_ms[0])

static atomic_long by_route[N_ROUTES_MAX + 1][N_CLASSES]; /* last row: unmatched */
static atomic_long latency[N_BUCKETS + 1];
static atomic_long latency_sum_us, latency_count;

static const char *const counters[] = {"auth_failures",
                                       "forbidden",
                                       "quota_denials",
                                       "webhook_signature_failures",
                                       "ledger_verification_failures",
                                       "checkpoints_signed",
                                       "emails_delivered",
                                       "email_retries",
                                       "email_failures",
                                       "stripe_failures"};
#define N_COUNTERS (sizeof counters / sizeof counters[0])
static atomic_long counts[N_COUNTERS];

void
gw_metrics_request(const gw_route *route, unsigned status, int64_t us)
{
    size_t idx = route ? (size_t)(route - gw_routes) : N_ROUTES_MAX;
    unsigned cls = status >= 100 && status < 600 ? status / 100 - 1 : 4;
    double ms = (double)us / 1000.0;
    size_t b = 0;

    if (idx > N_ROUTES_MAX)
        idx = N_ROUTES_MAX;
    atomic_fetch_add(&by_route[idx][cls], 1);
    while (b < N_BUCKETS && ms > buckets_ms[b])
        b++;
    atomic_fetch_add(&latency[b], 1);
    atomic_fetch_add(&latency_sum_us, us);
    atomic_fetch_add(&latency_count, 1);
}

void
gw_metrics_count(const char *what)
{
    for (size_t i = 0; i < N_COUNTERS; i++)
        if (strcmp(counters[i], what) == 0)
            atomic_fetch_add(&counts[i], 1);
}

/* One metric with its HELP and TYPE lines. */
static void
put_metric(dfd_buf *b, const char *name, const char *type, const char *help, long value)
{
    char line[512];

    snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n%s %ld\n", name, help, name, type,
             name, value);
    dfd_buf_puts(b, line);
}

char *
gw_metrics_render(void)
{
    dfd_buf b;
    char line[512];
    long cumulative = 0;

    dfd_buf_init(&b);
    dfd_buf_puts(&b, "# HELP defendable_http_requests_total Requests by route and status class.\n"
                     "# TYPE defendable_http_requests_total counter\n");
    for (size_t i = 0; i <= gw_n_routes && i <= N_ROUTES_MAX; i++) {
        size_t row = i < gw_n_routes ? i : N_ROUTES_MAX;

        for (unsigned c = 0; c < N_CLASSES; c++) {
            long v = atomic_load(&by_route[row][c]);

            if (v == 0)
                continue;
            snprintf(
                line, sizeof line,
                "defendable_http_requests_total{method=\"%s\",route=\"%s\",status=\"%uxx\"} %ld\n",
                i < gw_n_routes ? gw_routes[i].method : "",
                i < gw_n_routes ? gw_routes[i].pattern : "unmatched", c + 1, v);
            dfd_buf_puts(&b, line);
        }
    }
    dfd_buf_puts(&b, "# HELP defendable_http_request_duration_seconds Request latency.\n"
                     "# TYPE defendable_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= N_BUCKETS; i++) {
        cumulative += atomic_load(&latency[i]);
        if (i < N_BUCKETS)
            snprintf(line, sizeof line,
                     "defendable_http_request_duration_seconds_bucket{le=\"%g\"} %ld\n",
                     buckets_ms[i] / 1000.0, cumulative);
        else
            snprintf(line, sizeof line,
                     "defendable_http_request_duration_seconds_bucket{le=\"+Inf\"} %ld\n",
                     cumulative);
        dfd_buf_puts(&b, line);
    }
    snprintf(line, sizeof line,
             "defendable_http_request_duration_seconds_sum %.6f\n"
             "defendable_http_request_duration_seconds_count %ld\n",
             (double)atomic_load(&latency_sum_us) / 1e6, atomic_load(&latency_count));
    dfd_buf_puts(&b, line);
    for (size_t i = 0; i < N_COUNTERS; i++) {
        snprintf(line, sizeof line, "# TYPE defendable_%s_total counter\ndefendable_%s_total %ld\n",
                 counters[i], counters[i], atomic_load(&counts[i]));
        dfd_buf_puts(&b, line);
    }
    put_metric(&b, "defendable_db_connections", "gauge",
               "Open database connections (one per server thread, and the signer's, the mail "
               "thread's and the share count thread's).",
               atomic_load(&gw_db_connections));
    put_metric(&b, "defendable_db_connects_total", "counter",
               "Connections to the primary opened: each thread's first, and every reconnection.",
               atomic_load(&gw_db_reconnects));
    put_metric(&b, "defendable_db_replica_statements_total", "counter",
               "Read-only statements answered by DATABASE_READ_URL.",
               atomic_load(&gw_db_replica_statements));
    put_metric(&b, "defendable_db_replica_fallbacks_total", "counter",
               "Read-only statements sent to the primary because the standby could not answer.",
               atomic_load(&gw_db_replica_fallbacks));
    put_metric(&b, "defendable_share_accesses_pending", "gauge",
               "Share link accesses recorded and not yet added to the database.",
               atomic_load(&gw_share_accesses_pending));
    put_metric(&b, "defendable_share_accesses_lost_total", "counter",
               "Share link accesses given up: the database did not take them.",
               atomic_load(&gw_share_accesses_lost));
    dfd_buf_terminate(&b);
    return b.failed ? NULL : b.data;
}
