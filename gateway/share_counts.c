/*
 * share_counts.c: share link accesses counted in memory, added to the database once a second.
 *
 * Counting each resolve in the database (share_resolve) made every GET /share/{token} a write
 * and a commit: bench/gateway.sh measured the gateway 44% faster at 64 connections without it,
 * and the counter rows, rewritten thousands of times a second, gave the slowest statements of
 * the run. So a request thread resolves with share_resolve_uncounted and records the access
 * here; the share-count thread takes what was recorded every second (SHARE_COUNT_INTERVAL_SECONDS)
 * and adds it with one call
 * of share_access_add on the primary, which also counts the links a standby served (it cannot
 * write). A failed call puts the counts back for the next second.
 *
 * The price, accepted because access counts are statistics and no receipt depends on them: a
 * gateway that dies without stopping (SIGKILL, a crash) loses the accesses of its last second.
 * A graceful stop (SIGTERM) adds them before the process exits: the thread is told to stop only
 * after the HTTP server has stopped, so its last flush comes after the last request.
 */
#include "gw.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHARE_TOKEN_LEN (4 + 43) /* "dfs_" and 32 bytes in base64url */
/*
 * Distinct links recorded between two flushes. Beyond three quarters of it a request counts
 * its access in the database itself (share_access_add with one token): slower, never lost.
 */
#define TALLY_SLOTS 4096
#define TALLY_FULL (TALLY_SLOTS / 4 * 3)

typedef struct tally_slot {
    char token[SHARE_TOKEN_LEN + 1]; /* "" when free */
    long accesses;
} tally_slot;

static pthread_mutex_t tally_lock = PTHREAD_MUTEX_INITIALIZER;
static tally_slot tally[TALLY_SLOTS];
static size_t tally_used;

static tally_slot taken[TALLY_SLOTS]; /* the flushing thread's copy of the tally */
static pthread_t flusher;
static atomic_bool flusher_running, flusher_stopping;

atomic_long gw_share_accesses_pending;
atomic_long gw_share_accesses_lost;

/* A token as share_create writes them: the prefix and base64url. Nothing else can name a link,
 * and these characters need no quoting inside an array literal. */
static bool
token_shaped(const char *t)
{
    if (strlen(t) != SHARE_TOKEN_LEN || strncmp(t, "dfs_", 4) != 0)
        return false;
    for (const char *p = t + 4; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

static size_t
slot_of(const char *token)
{
    uint32_t h = 2166136261u; /* FNV-1a: tokens are random already, this only spreads them */

    for (const char *p = token; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h % TALLY_SLOTS;
}

/* Adds n accesses of token to the tally (tally_lock held). False when the tally is full. */
static bool
tally_add_locked(const char *token, long n)
{
    size_t i = slot_of(token);

    while (tally[i].token[0] != '\0') {
        if (strcmp(tally[i].token, token) == 0) {
            tally[i].accesses += n;
            return true;
        }
        i = (i + 1) % TALLY_SLOTS;
    }
    if (tally_used >= TALLY_FULL)
        return false;
    memcpy(tally[i].token, token, SHARE_TOKEN_LEN + 1);
    tally[i].accesses = n;
    tally_used++;
    return true;
}

bool
gw_share_count(const char *token)
{
    bool recorded;

    if (!atomic_load(&flusher_running) || !token_shaped(token))
        return false;
    pthread_mutex_lock(&tally_lock);
    recorded = tally_add_locked(token, 1);
    pthread_mutex_unlock(&tally_lock);
    if (recorded)
        atomic_fetch_add(&gw_share_accesses_pending, 1);
    return recorded;
}

/* "{a,b}" of n tokens and "{1,2}" of their counts, as share_access_add takes them. */
static bool
array_literals(const tally_slot *slots, size_t n, dfd_buf *tokens, dfd_buf *counts)
{
    char num[24];

    dfd_buf_puts(tokens, "{");
    dfd_buf_puts(counts, "{");
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            dfd_buf_puts(tokens, ",");
            dfd_buf_puts(counts, ",");
        }
        dfd_buf_puts(tokens, slots[i].token);
        snprintf(num, sizeof num, "%ld", slots[i].accesses);
        dfd_buf_puts(counts, num);
    }
    dfd_buf_puts(tokens, "}");
    dfd_buf_puts(counts, "}");
    dfd_buf_terminate(tokens);
    dfd_buf_terminate(counts);
    return !tokens->failed && !counts->failed;
}

/* Adds n links' accesses in one statement; true when the database took them. */
static bool
add_in_database(const tally_slot *slots, size_t n)
{
    dfd_buf tokens, counts;
    bool ok = false;

    dfd_buf_init(&tokens);
    dfd_buf_init(&counts);
    if (array_literals(slots, n, &tokens, &counts)) {
        const char *values[2] = {tokens.data, counts.data};
        PGresult *res = gw_db_exec("share_access_add", 2, values);

        ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
        if (!ok && res != NULL) {
            char esc[300];

            /* the server's message names no token: share_access_add reports counts only */
            gw_json_escape(PQresultErrorMessage(res), esc, sizeof esc);
            gw_log("warn", "share_counts",
                   "\"message\":\"cannot add share link accesses\",\"links\":%zu,\"detail\":\"%s\"",
                   n, esc);
        }
        PQclear(res);
    }
    if (tokens.data != NULL) /* the links' tokens: secrets */
        explicit_bzero(tokens.data, tokens.len);
    dfd_buf_free(&tokens);
    dfd_buf_free(&counts);
    return ok;
}

/* Takes the tally and adds it to the database; on failure puts it back for the next time. */
static void
flush(void)
{
    size_t n = 0;
    long accesses = 0;

    pthread_mutex_lock(&tally_lock);
    for (size_t i = 0; i < TALLY_SLOTS; i++) {
        if (tally[i].token[0] == '\0')
            continue;
        taken[n] = tally[i];
        accesses += tally[i].accesses;
        n++;
        explicit_bzero(&tally[i], sizeof tally[i]);
    }
    tally_used = 0;
    pthread_mutex_unlock(&tally_lock);
    if (n > 0 && add_in_database(taken, n)) {
        atomic_fetch_sub(&gw_share_accesses_pending, accesses);
    } else if (n > 0) {
        long lost = 0;

        pthread_mutex_lock(&tally_lock);
        for (size_t i = 0; i < n; i++)
            if (!tally_add_locked(taken[i].token, taken[i].accesses))
                lost += taken[i].accesses;
        pthread_mutex_unlock(&tally_lock);
        if (lost > 0) {
            atomic_fetch_sub(&gw_share_accesses_pending, lost);
            atomic_fetch_add(&gw_share_accesses_lost, lost);
            gw_log("warn", "share_counts",
                   "\"message\":\"share link accesses not counted: the database did not take "
                   "them and too many links are waiting\",\"accesses\":%ld",
                   lost);
        }
    }
    explicit_bzero(taken, n * sizeof taken[0]);
}

static void *
flusher_main(void *arg)
{
    long pending;

    (void)arg;
    gw_thread_enter();
    /* connected now rather than at the first count, like the signer's and the mail thread's
     * connections: the gateway's database connections are a fixed number from its start */
    PQclear(gw_db_exec("ready", 0, NULL));
    while (!atomic_load(&flusher_stopping)) {
        for (int s = 0;
             s < gw.cfg.share_count_interval_seconds * 10 && !atomic_load(&flusher_stopping); s++)
            usleep(100000);
        flush(); /* after the stop too: what the last requests recorded */
    }
    gw_db_close_thread();
    if ((pending = atomic_load(&gw_share_accesses_pending)) > 0) {
        atomic_fetch_add(&gw_share_accesses_lost, pending);
        gw_log("warn", "share_counts",
               "\"message\":\"share link accesses not counted: the database did not take them "
               "before the gateway stopped\",\"accesses\":%ld",
               pending);
    }
    return NULL;
}

bool
gw_share_count_start(void)
{
    atomic_store(&flusher_running, pthread_create(&flusher, NULL, flusher_main, NULL) == 0);
    return atomic_load(&flusher_running);
}

void
gw_share_count_stop(void)
{
    if (!atomic_load(&flusher_running))
        return;
    atomic_store(&flusher_stopping, true);
    pthread_join(flusher, NULL);
    atomic_store(&flusher_running, false);
}
