/*
 * secrets.c: the secrets a running gateway can rotate without a restart. SIGHUP re-reads the
 * configuration (secrets given as NAME_FILE and the LEDGER_SIGNING_KEY file can change under a
 * running process; the environment cannot) and publishes a new gw_keys set atomically. Each
 * rotated secret keeps a _PREVIOUS that is accepted, never issued, for the overlap, so clients
 * holding the old one keep working until they move (docs/operations.md, "Rotating secrets").
 */
#include "gw.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic(gw_keys *) current;
static int reloads_done;

const gw_keys *
gw_keys_now(void)
{
    return atomic_load_explicit(&current, memory_order_acquire);
}

static const char *
env_get(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

/* Reads the signer key file; in development without one, keeps the previous set's key (or makes
 * one for this process), so a reload does not orphan the checkpoints signed so far. */
static bool
load_signer(gw_keys *k, const gw_keys *before)
{
    if (k->cfg.ledger_signing_key != NULL) {
        FILE *f = fopen(k->cfg.ledger_signing_key, "r");
        char text[1024];
        size_t n;
        bool parsed;

        if (f == NULL)
            return false;
        n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
            n--;
        text[n] = '\0';
        parsed = dfd_skey_parse(text, n, &k->signer);
        OPENSSL_cleanse(text, sizeof text);
        if (!parsed)
            return false;
    } else if (k->cfg.production) {
        return false;
    } else if (before != NULL) {
        k->signer = before->signer;
    } else {
        if (!dfd_skey_generate(k->cfg.ledger_origin, strlen(k->cfg.ledger_origin), &k->signer))
            return false;
        gw_log("warn", "signer",
               "\"message\":\"LEDGER_SIGNING_KEY is not set: checkpoints are signed with a key "
               "that lives only as long as this development process\"");
    }
    return true;
}

static bool
format_vkey(const dfd_vkey *v, char out[512])
{
    dfd_buf b;
    bool ok;

    dfd_buf_init(&b);
    ok = dfd_vkey_format(&b, v) == DFD_OK && b.len < 512;
    if (ok) {
        memcpy(out, b.data, b.len);
        out[b.len] = '\0';
    }
    dfd_buf_free(&b);
    return ok;
}

static void
free_set(gw_keys *k)
{
    gw_config_free(&k->cfg);
    OPENSSL_cleanse(&k->signer, sizeof k->signer);
    free(k);
}

/* A new set from the environment and files, or NULL with the problems reported through report. */
static gw_keys *
load_set(const gw_keys *before, void (*report)(const char *problem))
{
    char **problems = NULL, **warnings = NULL;
    size_t n_problems = 0, n_warnings = 0;
    gw_keys *k = calloc(1, sizeof *k);
    bool ok;

    if (k == NULL) {
        report("out of memory");
        return NULL;
    }
    ok = gw_config_load(&k->cfg, env_get, NULL, &problems, &n_problems, &warnings, &n_warnings);
    for (size_t i = 0; i < n_problems; i++)
        report(problems[i]);
    gw_config_free_list(problems, n_problems);
    gw_config_free_list(warnings, n_warnings); /* said once, at start */
    if (!ok) {
        free_set(k);
        return NULL;
    }
    if (!load_signer(k, before) || !format_vkey(&k->signer.vkey, k->verifier_key)) {
        report("LEDGER_SIGNING_KEY does not hold a C2SP Ed25519 signer key");
        free_set(k);
        return NULL;
    }
    if (k->cfg.n_ledger_verifier_keys_previous > GW_MAX_PREVIOUS_VKEYS) {
        report("LEDGER_VERIFIER_KEYS_PREVIOUS lists more than 8 keys");
        free_set(k);
        return NULL;
    }
    for (size_t i = 0; i < k->cfg.n_ledger_verifier_keys_previous; i++) {
        const char *text = k->cfg.ledger_verifier_keys_previous[i];
        dfd_vkey v;

        /* re-formatted from the parsed key: what is published is exactly what verifies */
        if (!dfd_vkey_parse(text, strlen(text), &v) ||
            !format_vkey(&v, k->previous_vkeys[k->n_previous_vkeys])) {
            report("LEDGER_VERIFIER_KEYS_PREVIOUS holds an entry that is not a verifier key");
            free_set(k);
            return NULL;
        }
        if (strcmp(k->previous_vkeys[k->n_previous_vkeys], k->verifier_key) != 0)
            k->n_previous_vkeys++;
    }
    return k;
}

static void
report_stderr(const char *problem)
{
    fprintf(stderr, "problem: %s\n", problem);
}

bool
gw_keys_start(void)
{
    gw_keys *k = load_set(NULL, report_stderr);

    if (k == NULL)
        return false;
    atomic_store_explicit(&current, k, memory_order_release);
    return true;
}

static void
report_log(const char *problem)
{
    char escaped[1024];

    gw_json_escape(problem, escaped, sizeof escaped);
    gw_log("error", "reload", "\"problem\":\"%s\"", escaped);
}

static bool
same_text(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strlen(a) == strlen(b) && CRYPTO_memcmp(a, b, strlen(a)) == 0;
}

void
gw_keys_reload(void)
{
    gw_keys *before = atomic_load(&current);
    gw_keys *k = load_set(before, report_log);
    char changed[512] = "";
    size_t used = 0;

    if (k == NULL) {
        gw_log("error", "reload",
               "\"message\":\"configuration not reloaded; the previous "
               "secrets and signing key stay in use\"");
        gw_metrics_count("reload_failures");
        return;
    }
    /* names only: what changed is worth a log line, the values never are */
#define NOTE_CHANGE(name, differs)                                                                 \
    do {                                                                                           \
        if ((differs) && used + sizeof(name) + 4 < sizeof changed)                                 \
            used += (size_t)snprintf(changed + used, sizeof changed - used, "%s\"%s\"",            \
                                     used ? "," : "", name);                                       \
    } while (0)
    NOTE_CHANGE("JWT_SECRET", k->cfg.jwt_secret_len != before->cfg.jwt_secret_len ||
                                  CRYPTO_memcmp(k->cfg.jwt_secret, before->cfg.jwt_secret,
                                                k->cfg.jwt_secret_len) != 0);
    NOTE_CHANGE("INTERNAL_API_KEY",
                !same_text(k->cfg.internal_api_key, before->cfg.internal_api_key));
    NOTE_CHANGE("RUNNER_TOKEN", !same_text(k->cfg.runner_token, before->cfg.runner_token));
    NOTE_CHANGE("STRIPE_WEBHOOK_SECRET",
                !same_text(k->cfg.stripe_webhook_secret, before->cfg.stripe_webhook_secret));
    NOTE_CHANGE("LEDGER_SIGNING_KEY", strcmp(k->verifier_key, before->verifier_key) != 0);
#undef NOTE_CHANGE
    if (k->cfg.port != gw.cfg.port || k->cfg.production != gw.cfg.production ||
        !same_text(k->cfg.database_url, gw.cfg.database_url))
        gw_log("warn", "reload",
               "\"message\":\"PORT, ENV and DATABASE_URL take effect only on a restart\"");
    k->replaced = before;
    atomic_store_explicit(&current, k, memory_order_release);
    reloads_done++;
    gw_metrics_count("reloads");
    gw_log("info", "reload", "\"changed\":[%s],\"verifier_key\":\"%s\",\"previous_keys\":%zu",
           changed, k->verifier_key, k->n_previous_vkeys);
}

void
gw_keys_free_all(void)
{
    gw_keys *k = atomic_exchange(&current, NULL);

    while (k != NULL) {
        gw_keys *next = k->replaced;

        free_set(k);
        k = next;
    }
}

bool
gw_secret_accepts(const char *token, const char *secret, const char *previous)
{
    uint8_t given[32], expected[32];
    bool ok = false;

    /* hash both sides, so the comparison time depends on neither length nor content; both
     * candidates are always compared, so timing does not tell which one matched */
    if (token == NULL || !dfd_sha256(token, strlen(token), given))
        return false;
    if (secret != NULL && dfd_sha256(secret, strlen(secret), expected))
        ok |= dfd_ct_equal(given, expected, sizeof given);
    if (previous != NULL && dfd_sha256(previous, strlen(previous), expected))
        ok |= dfd_ct_equal(given, expected, sizeof given);
    return ok;
}
