/*
 * test_config.c: unit tests of config.c, with a table standing in for the environment so every
 * case is independent of the machine's real variables.
 *
 *   gcc -std=c11 -D_DEFAULT_SOURCE -O1 -g -Wall -Wextra -Werror \
 *       -fsanitize=address,undefined -fno-sanitize-recover=all \
 *       -o /tmp/test_config test_config.c config.c -lcrypto && /tmp/test_config
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int passed, failed;

__attribute__((format(printf, 3, 4))) static void
check(bool ok, int line, const char *fmt, ...)
{
    if (ok) {
        passed++;
        return;
    }
    failed++;
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL test_config.c:%d: ", line);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

#define CHECK(cond, ...) check((cond), __LINE__, __VA_ARGS__)

/* Every variable config.h documents; the fake fails any lookup of a name not listed here (a
 * misspelt name in config.c would otherwise just read as "unset"). */
static const char *const known_names[] = {
    "ENV",
    "DATABASE_URL",
    "JWT_SECRET",
    "JWT_SECRET_PREVIOUS",
    "JWT_TTL_HOURS",
    "CORS_ORIGINS",
    "API_BASE_URL",
    "APP_BASE_URL",
    "RESEND_API_KEY",
    "RESEND_API_BASE",
    "SMTP_URL",
    "SMTP_CA_FILE",
    "MAIL_FROM",
    "MAIL_DIR",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "TIGRIS_BUCKET",
    "AWS_S3_ADDRESSING_STYLE",
    "DATASET_URL_TTL_SECONDS",
    "INTERNAL_API_KEY",
    "INTERNAL_ALLOW_CIDRS",
    "RUNNER_TOKEN",
    "STRIPE_API_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_PRICE_ID",
    "STRIPE_API_BASE",
    "DATASET_DOWNLOAD_DAILY_LIMIT",
    "LEDGER_ORIGIN",
    "LEDGER_SIGNING_KEY",
    "PORT",
    "GATEWAY_THREADS",
    "LOG_LEVEL",
    "INTERNAL_API_KEY_PREVIOUS",
    "RUNNER_TOKEN_PREVIOUS",
    "STRIPE_WEBHOOK_SECRET_PREVIOUS",
    "LEDGER_VERIFIER_KEYS_PREVIOUS",
    "DATABASE_READ_URL",
    "CHECKPOINT_INTERVAL_SECONDS",
    "SHARE_COUNT_INTERVAL_SECONDS",
    /* secrets read from files */
    "JWT_SECRET_FILE",
    "JWT_SECRET_PREVIOUS_FILE",
    "DATABASE_URL_FILE",
    "DATABASE_READ_URL_FILE",
    "RESEND_API_KEY_FILE",
    "SMTP_URL_FILE",
    "AWS_SECRET_ACCESS_KEY_FILE",
    "STRIPE_API_KEY_FILE",
    "STRIPE_WEBHOOK_SECRET_FILE",
    "STRIPE_WEBHOOK_SECRET_PREVIOUS_FILE",
    "INTERNAL_API_KEY_FILE",
    "INTERNAL_API_KEY_PREVIOUS_FILE",
    "RUNNER_TOKEN_FILE",
    "RUNNER_TOKEN_PREVIOUS_FILE",
    "LEDGER_VERIFIER_KEYS_PREVIOUS_FILE",
};
#define N_KNOWN (sizeof known_names / sizeof known_names[0])

typedef struct fake_env {
    const char *value[N_KNOWN]; /* NULL: unset */
    bool asked[N_KNOWN];
    int unknown_lookups;
} fake_env;

static int
name_index(const char *name)
{
    for (size_t i = 0; i < N_KNOWN; i++)
        if (strcmp(known_names[i], name) == 0)
            return (int)i;
    return -1;
}

static const char *
fake_get(const char *name, void *ctx)
{
    fake_env *e = ctx;
    int i = name_index(name);
    if (i < 0) {
        e->unknown_lookups++;
        return NULL;
    }
    e->asked[i] = true;
    return e->value[i];
}

/* A name/value pair of a table; value NULL unsets the variable. */
typedef struct kv {
    const char *name, *value;
} kv;

static void
env_set(fake_env *e, const char *name, const char *value)
{
    int i = name_index(name);
    if (i < 0) {
        printf("test bug: unknown variable %s\n", name);
        exit(2);
    }
    e->value[i] = value;
}

static void
env_apply(fake_env *e, const kv *table)
{
    for (; table != NULL && table->name != NULL; table++)
        env_set(e, table->name, table->value);
}

/* The result of one load, kept together so each case frees it in one call. */
typedef struct result {
    gw_config c;
    bool ok;
    char **problems, **warnings;
    size_t n_problems, n_warnings;
    fake_env env;
} result;

static void
load(result *r, const kv *base, const kv *overrides)
{
    memset(r, 0, sizeof *r);
    env_apply(&r->env, base);
    env_apply(&r->env, overrides);
    r->ok = gw_config_load(&r->c, fake_get, &r->env, &r->problems, &r->n_problems, &r->warnings,
                           &r->n_warnings);
}

static void
done(result *r)
{
    gw_config_free(&r->c);
    gw_config_free_list(r->problems, r->n_problems);
    gw_config_free_list(r->warnings, r->n_warnings);
}

static bool
has(char **list, size_t n, const char *sentence)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], sentence) == 0)
            return true;
    return false;
}

static void
print_list(const char *what, char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("    %s: %s\n", what, list[i]);
}

/* Asserts the load failed with exactly the expected problems (in any order). */
static void
expect_problems(int line, const char *label, result *r, const char *const *expected)
{
    size_t n = 0;
    for (; expected[n] != NULL; n++)
        check(has(r->problems, r->n_problems, expected[n]), line, "%s: missing problem \"%s\"",
              label, expected[n]);
    check(r->n_problems == n, line, "%s: %zu problems, expected %zu", label, r->n_problems, n);
    check(r->ok == (n == 0), line, "%s: load returned %s", label, r->ok ? "true" : "false");
    if (r->n_problems != n)
        print_list("problem", r->problems, r->n_problems);
}

#define DEV_SECRET "defendable-development-jwt-secret-do-not-use-in-production"
#define GOOD_JWT "kq7Zr2VwX9pL4mN8sT1uY6bC3dF5gH0jA2eR7tW9"
#define GOOD_JWT_PREV "Pq2Wd8Lm4Xz6Rt1Vb9Nc3Hs5Jk7Gf0Ae2Yu4Io6"
#define GOOD_INTERNAL "internal-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
#define GOOD_RUNNER "runner-0a1b2c3d4e5f60718293a4b5c6d7e8f9012"
#define GOOD_RESEND "re_live_5uP3rS3cr3tResendKey"

static char signing_key_path[64]; /* a temporary file, created in main */

static void
test_development_defaults(void)
{
    result r;
    load(&r, NULL, NULL);
    CHECK(r.ok, "dev defaults: load failed");
    CHECK(r.n_problems == 0, "dev defaults: %zu problems", r.n_problems);
    print_list("problem", r.problems, r.n_problems);
    CHECK(r.n_warnings == 1 && strstr(r.warnings[0], "JWT_SECRET") != NULL,
          "dev defaults: expected only the JWT warning, got %zu warnings", r.n_warnings);
    for (size_t i = 0; i < N_KNOWN; i++)
        CHECK(r.env.asked[i], "dev defaults: %s was never read", known_names[i]);
    CHECK(r.env.unknown_lookups == 0, "dev defaults: %d lookups of undocumented names",
          r.env.unknown_lookups);

    gw_config *c = &r.c;
    CHECK(!c->production && c->env != NULL && strcmp(c->env, "development") == 0, "dev: env");
    CHECK(c->database_url != NULL && c->database_url[0] == '\0', "dev: database_url empty");
    CHECK(c->database_read_url == NULL, "dev: no standby unless DATABASE_READ_URL is set");
    CHECK(c->checkpoint_interval_seconds == 60, "dev: checkpoint interval %d",
          c->checkpoint_interval_seconds);
    CHECK(c->share_count_interval_seconds == 1, "dev: share count interval %d",
          c->share_count_interval_seconds);
    CHECK(c->jwt_secret_len == strlen(DEV_SECRET) &&
              memcmp(c->jwt_secret, DEV_SECRET, c->jwt_secret_len) == 0,
          "dev: development JWT secret");
    CHECK(c->jwt_secret_previous == NULL && c->jwt_secret_previous_len == 0, "dev: no previous");
    CHECK(c->jwt_ttl_hours == 720, "dev: ttl %d", c->jwt_ttl_hours);
    CHECK(c->n_cors_origins == 0, "dev: no CORS origins");
    CHECK(c->api_base_url != NULL && strcmp(c->api_base_url, "http://localhost:8080") == 0,
          "dev: api_base_url");
    CHECK(c->app_base_url != NULL && strcmp(c->app_base_url, "http://localhost:8080") == 0,
          "dev: app_base_url");
    CHECK(c->resend_api_key == NULL && c->smtp_url == NULL, "dev: no mail transport");
    CHECK(c->mail_from != NULL && strcmp(c->mail_from, "defendable <no-reply@localhost>") == 0,
          "dev: mail_from");
    CHECK(c->mail_dir != NULL && strcmp(c->mail_dir, ".mail") == 0, "dev: mail_dir");
    CHECK(c->aws_endpoint_url_s3 != NULL &&
              strcmp(c->aws_endpoint_url_s3, "https://fly.storage.tigris.dev") == 0,
          "dev: aws endpoint");
    CHECK(c->aws_region != NULL && strcmp(c->aws_region, "auto") == 0, "dev: aws region");
    CHECK(c->tigris_bucket != NULL && strcmp(c->tigris_bucket, "defendable-cloud") == 0,
          "dev: bucket");
    CHECK(c->aws_access_key_id == NULL && c->aws_secret_access_key == NULL, "dev: no aws keys");
    CHECK(c->internal_api_key == NULL && c->runner_token == NULL, "dev: no internal tokens");
    CHECK(c->n_internal_allow == 2 && c->internal_allow[0].family == AF_INET &&
              c->internal_allow[0].prefix == 8 && c->internal_allow[1].family == AF_INET6 &&
              c->internal_allow[1].prefix == 128,
          "dev: default internal allowlist");
    CHECK(c->dataset_download_daily_limit == 500, "dev: daily limit");
    CHECK(c->ledger_origin != NULL && strcmp(c->ledger_origin, "localhost") == 0,
          "dev: ledger origin");
    CHECK(c->ledger_signing_key == NULL, "dev: no signing key");
    CHECK(c->port == 8080, "dev: port");
    CHECK(c->threads == 8, "dev: threads");
    CHECK(c->log_level != NULL && strcmp(c->log_level, "info") == 0, "dev: log level");
    done(&r);

    /* Empty text variables read as unset (NAME= in an env file). */
    static const kv empties[] = {{"ENV", ""},          {"JWT_SECRET", ""}, {"CORS_ORIGINS", ""},
                                 {"API_BASE_URL", ""}, {"SMTP_URL", ""},   {NULL, NULL}};
    load(&r, empties, NULL);
    CHECK(r.ok && r.n_warnings == 1, "dev empties: ok with the JWT warning only");
    done(&r);

    /* The API base follows PORT when not set. */
    static const kv port[] = {{"PORT", "9000"}, {NULL, NULL}};
    load(&r, port, NULL);
    CHECK(r.ok && r.c.port == 9000 && strcmp(r.c.api_base_url, "http://localhost:9000") == 0 &&
              strcmp(r.c.app_base_url, "http://localhost:9000") == 0,
          "dev: base URLs follow PORT");
    done(&r);

    /* A short secret runs in development, with a warning. */
    static const kv short_secret[] = {{"JWT_SECRET", "short"}, {NULL, NULL}};
    load(&r, short_secret, NULL);
    CHECK(r.ok && r.n_warnings == 1 && r.c.jwt_secret_len == 5, "dev: short secret warns");
    done(&r);
}

/* The unsafe production settings of the seeds: every rule must be reported in one go. */
static void
test_unsafe_production(void)
{
    static const kv unsafe[] = {
        {"ENV", "production"},
        {"JWT_SECRET", "change-me"},
        {"CORS_ORIGINS", "*"},
        {"API_BASE_URL", "http://api.defendablecloud.com"},
        {"DATASET_DOWNLOAD_DAILY_LIMIT", "0"},
        {"DATABASE_URL", "postgresql://app:hunter2-db-password@db/defendable"},
        {"AWS_SECRET_ACCESS_KEY", "tid_AWSsecretVALUEzzz"},
        {"STRIPE_WEBHOOK_SECRET", "whsec_stripeSECRETvalue"},
        {NULL, NULL},
    };
    static const char *const expected[] = {
        "DATASET_DOWNLOAD_DAILY_LIMIT must be positive in production",
        "JWT_SECRET is a well-known default and must be replaced in production",
        "CORS_ORIGINS must list explicit origins in production, not *",
        "API_BASE_URL must use https in production",
        "RESEND_API_KEY or SMTP_URL must be set in production (email delivery)",
        "INTERNAL_API_KEY must be set in production",
        "RUNNER_TOKEN must be set in production",
        "LEDGER_SIGNING_KEY must be set in production",
        NULL,
    };
    result r;
    load(&r, unsafe, NULL);
    expect_problems(__LINE__, "unsafe production", &r, expected);
    CHECK(r.c.production, "unsafe production: production flag");

    /* No sentence may quote a configured value, secret or not. */
    for (size_t i = 0; i < r.n_problems; i++)
        for (const kv *v = unsafe; v->name != NULL; v++)
            /* ENV's "production", CORS's "*" and the limit's "0" are too short or too common
             * to be leaks; every other value must be absent. */
            if (strlen(v->value) > 1 && strcmp(v->name, "ENV") != 0)
                CHECK(strstr(r.problems[i], v->value) == NULL,
                      "unsafe production: problem %zu quotes the value of %s", i, v->name);
    done(&r);

    /* The same with secrets that are set but short: the secrets must not be echoed either. */
    static const kv short_secrets[] = {
        {"ENV", "production"},
        {"JWT_SECRET", "sh0rt-jwt-Value"},
        {"JWT_SECRET_PREVIOUS", "sh0rt-prev-Value"},
        {"INTERNAL_API_KEY", "sh0rt-internal-Value"},
        {"RUNNER_TOKEN", "sh0rt-runner-Value"},
        {"SMTP_URL", "https://user:sh0rt-smtp-Password@mail"},
        {"CORS_ORIGINS", "https://app.example.com/path-Value"},
        {"LEDGER_SIGNING_KEY", "/nonexistent/key-Value"},
        {"PORT", "80-Value"},
        {NULL, NULL},
    };
    load(&r, short_secrets, NULL);
    CHECK(!r.ok && r.n_problems >= 8, "short secrets: problems reported");
    for (size_t i = 0; i < r.n_problems; i++) {
        CHECK(strstr(r.problems[i], "Value") == NULL && strstr(r.problems[i], "sh0rt") == NULL,
              "short secrets: problem %zu quotes a value", i);
    }
    for (size_t i = 0; i < r.n_warnings; i++)
        CHECK(strstr(r.warnings[i], "Value") == NULL, "short secrets: warning quotes a value");
    done(&r);
}

static const kv good_production[] = {
    {"ENV", "production"},
    {"DATABASE_URL", "postgresql://app@db/defendable"},
    {"JWT_SECRET", GOOD_JWT},
    {"JWT_SECRET_PREVIOUS", GOOD_JWT_PREV},
    {"JWT_TTL_HOURS", "24"},
    {"CORS_ORIGINS", "https://app.defendablecloud.com, https://defendablecloud.com"},
    {"API_BASE_URL", "https://api.defendablecloud.com/"},
    {"APP_BASE_URL", "https://app.defendablecloud.com"},
    {"RESEND_API_KEY", GOOD_RESEND},
    {"MAIL_FROM", "DefendableCloud <no-reply@defendablecloud.com>"},
    {"INTERNAL_API_KEY", GOOD_INTERNAL},
    {"INTERNAL_ALLOW_CIDRS", "10.0.0.0/8, fd00::/8"},
    {"RUNNER_TOKEN", GOOD_RUNNER},
    {"DATASET_DOWNLOAD_DAILY_LIMIT", "200"},
    {"LEDGER_ORIGIN", "defendablecloud.com/ledger"},
    {"LEDGER_SIGNING_KEY", signing_key_path},
    {"PORT", "8081"},
    {"LOG_LEVEL", "warn"},
    {NULL, NULL},
};

static void
test_good_production(void)
{
    result r;
    static const char *const none[] = {NULL};
    load(&r, good_production, NULL);
    expect_problems(__LINE__, "good production", &r, none);
    gw_config *c = &r.c;
    CHECK(c->production && strcmp(c->env, "production") == 0, "good production: env");
    CHECK(r.n_warnings == 0, "good production: %zu warnings", r.n_warnings);
    print_list("warning", r.warnings, r.n_warnings);
    CHECK(c->n_cors_origins == 2 &&
              strcmp(c->cors_origins[0], "https://app.defendablecloud.com") == 0 &&
              strcmp(c->cors_origins[1], "https://defendablecloud.com") == 0,
          "good production: CORS origins trimmed");
    CHECK(strcmp(c->api_base_url, "https://api.defendablecloud.com") == 0,
          "good production: trailing slash of API_BASE_URL dropped");
    CHECK(c->jwt_secret_previous_len == strlen(GOOD_JWT_PREV) &&
              memcmp(c->jwt_secret_previous, GOOD_JWT_PREV, c->jwt_secret_previous_len) == 0,
          "good production: previous secret");
    CHECK(c->jwt_ttl_hours == 24 && c->port == 8081 && c->dataset_download_daily_limit == 200,
          "good production: numbers");
    CHECK(c->n_internal_allow == 2, "good production: allowlist");
    CHECK(strcmp(c->ledger_signing_key, signing_key_path) == 0, "good production: key path");
    CHECK(strcmp(c->log_level, "warn") == 0, "good production: log level");
    done(&r);

    /* SMTP instead of Resend is equally fine. */
    static const kv smtp[] = {{"RESEND_API_KEY", NULL},
                              {"SMTP_URL", "smtps://user:pw@smtp.example.com:465"},
                              {NULL, NULL}};
    load(&r, good_production, smtp);
    expect_problems(__LINE__, "good production with SMTP", &r, none);
    done(&r);

    /* APP_BASE_URL unset follows API_BASE_URL; the default localhost origin only warns. */
    static const kv follow[] = {{"APP_BASE_URL", NULL}, {"LEDGER_ORIGIN", NULL}, {NULL, NULL}};
    load(&r, good_production, follow);
    expect_problems(__LINE__, "good production, APP_BASE_URL unset", &r, none);
    CHECK(r.c.app_base_url != NULL &&
              strcmp(r.c.app_base_url, "https://api.defendablecloud.com") == 0,
          "APP_BASE_URL follows API_BASE_URL");
    CHECK(r.n_warnings == 1, "default LEDGER_ORIGIN warns in production");
    done(&r);
}

/* One rule broken at a time on top of the good production configuration. */
static void
test_production_rules(void)
{
    static const struct {
        const char *label;
        kv change[3];
        const char *problem;
    } cases[] = {
        {"ENV typo is checked as production",
         {{"ENV", "prod"}},
         "ENV must be development or production"},
        {"JWT unset", {{"JWT_SECRET", NULL}}, "JWT_SECRET must be set in production"},
        {"JWT change-me",
         {{"JWT_SECRET", "change-me"}},
         "JWT_SECRET is a well-known default and must be replaced in production"},
        {"JWT Secret",
         {{"JWT_SECRET", "Secret"}},
         "JWT_SECRET is a well-known default and must be replaced in production"},
        {"JWT development",
         {{"JWT_SECRET", "development"}},
         "JWT_SECRET is a well-known default and must be replaced in production"},
        {"JWT dev secret",
         {{"JWT_SECRET", DEV_SECRET}},
         "JWT_SECRET is a well-known default and must be replaced in production"},
        {"JWT 31 bytes",
         {{"JWT_SECRET", "0123456789abcdef0123456789abcde"}},
         "JWT_SECRET is shorter than 32 bytes"},
        {"JWT previous short",
         {{"JWT_SECRET_PREVIOUS", "0123456789abcdef"}},
         "JWT_SECRET_PREVIOUS is shorter than 32 bytes"},
        {"JWT previous default",
         {{"JWT_SECRET_PREVIOUS", "changeme"}},
         "JWT_SECRET_PREVIOUS is a well-known default and must be replaced in production"},
        {"JWT previous equal",
         {{"JWT_SECRET_PREVIOUS", GOOD_JWT}},
         "JWT_SECRET_PREVIOUS must differ from JWT_SECRET"},
        {"CORS unset",
         {{"CORS_ORIGINS", NULL}},
         "CORS_ORIGINS must list explicit origins in production"},
        {"CORS *",
         {{"CORS_ORIGINS", "*"}},
         "CORS_ORIGINS must list explicit origins in production, not *"},
        {"CORS mixed *",
         {{"CORS_ORIGINS", "https://app.defendablecloud.com, *"}},
         "CORS_ORIGINS must list explicit origins in production, not *"},
        {"API http",
         {{"API_BASE_URL", "http://api.defendablecloud.com"}},
         "API_BASE_URL must use https in production"},
        {"API unset", {{"API_BASE_URL", NULL}}, "API_BASE_URL must use https in production"},
        {"API query",
         {{"API_BASE_URL", "https://api.defendablecloud.com/?x=1"}},
         "API_BASE_URL must be an absolute http or https URL without query or fragment"},
        {"API relative",
         {{"API_BASE_URL", "api.defendablecloud.com"}},
         "API_BASE_URL must be an absolute http or https URL without query or fragment"},
        {"APP http",
         {{"APP_BASE_URL", "http://app.defendablecloud.com"}},
         "APP_BASE_URL must use https in production"},
        {"APP fragment",
         {{"APP_BASE_URL", "https://app.defendablecloud.com/#/vault"}},
         "APP_BASE_URL must be an absolute http or https URL without query or fragment"},
        {"no email",
         {{"RESEND_API_KEY", NULL}},
         "RESEND_API_KEY or SMTP_URL must be set in production (email delivery)"},
        {"SMTP scheme",
         {{"RESEND_API_KEY", NULL}, {"SMTP_URL", "mail.example.com:587"}},
         "SMTP_URL must start with smtp:// or smtps://"},
        {"limit 0",
         {{"DATASET_DOWNLOAD_DAILY_LIMIT", "0"}},
         "DATASET_DOWNLOAD_DAILY_LIMIT must be positive in production"},
        {"limit negative",
         {{"DATASET_DOWNLOAD_DAILY_LIMIT", "-5"}},
         "DATASET_DOWNLOAD_DAILY_LIMIT must be positive in production"},
        {"limit junk",
         {{"DATASET_DOWNLOAD_DAILY_LIMIT", "lots"}},
         "DATASET_DOWNLOAD_DAILY_LIMIT must be an integer"},
        {"internal key unset",
         {{"INTERNAL_API_KEY", NULL}},
         "INTERNAL_API_KEY must be set in production"},
        {"internal key short",
         {{"INTERNAL_API_KEY", "abc"}},
         "INTERNAL_API_KEY is shorter than 32 bytes"},
        {"runner unset", {{"RUNNER_TOKEN", NULL}}, "RUNNER_TOKEN must be set in production"},
        {"runner short", {{"RUNNER_TOKEN", "runner"}}, "RUNNER_TOKEN is shorter than 32 bytes"},
        {"signing key unset",
         {{"LEDGER_SIGNING_KEY", NULL}},
         "LEDGER_SIGNING_KEY must be set in production"},
        {"signing key missing file",
         {{"LEDGER_SIGNING_KEY", "/nonexistent/defendable/signing.key"}},
         "LEDGER_SIGNING_KEY names a file that cannot be read"},
        {"signing key is a directory",
         {{"LEDGER_SIGNING_KEY", "/tmp"}},
         "LEDGER_SIGNING_KEY names a file that cannot be read"},
        {"CIDR bad",
         {{"INTERNAL_ALLOW_CIDRS", "10.0.0.0/8, 1.2.3.4/33"}},
         "INTERNAL_ALLOW_CIDRS entry 2 is not an IP address or CIDR network"},
        {"CIDR empty item",
         {{"INTERNAL_ALLOW_CIDRS", "10.0.0.0/8,"}},
         "INTERNAL_ALLOW_CIDRS entry 2 is empty"},
        {"log level", {{"LOG_LEVEL", "verbose"}}, "LOG_LEVEL must be debug, info, warn or error"},
        {"mail from header injection",
         {{"MAIL_FROM", "a@b.example\r\nBcc: victim@example.com"}},
         "MAIL_FROM must not contain control characters"},
        {"ledger origin space",
         {{"LEDGER_ORIGIN", "defendable cloud"}},
         "LEDGER_ORIGIN must not contain spaces, control characters or +"},
        {"S3 endpoint",
         {{"AWS_ENDPOINT_URL_S3", "fly.storage.tigris.dev"}},
         "AWS_ENDPOINT_URL_S3 must be an absolute http or https URL without query or fragment"},
        {"Stripe base",
         {{"STRIPE_API_BASE", "https://api.stripe.com?v=1"}},
         "STRIPE_API_BASE must be an absolute http or https URL without query or fragment"},
        {"SMTP CA file missing",
         {{"SMTP_CA_FILE", "/nonexistent/ca.pem"}},
         "SMTP_CA_FILE names a file that cannot be read"},
        {"S3 addressing style",
         {{"AWS_S3_ADDRESSING_STYLE", "auto"}},
         "AWS_S3_ADDRESSING_STYLE must be virtual or path"},
        {"download link lifetime above 15 minutes",
         {{"DATASET_URL_TTL_SECONDS", "901"}},
         "DATASET_URL_TTL_SECONDS must be an integer from 1 to 900 (15 minutes)"},
        {"TTL",
         {{"JWT_TTL_HOURS", "8761"}},
         "JWT_TTL_HOURS must be an integer from 1 to 8760 (one year)"},
        {"checkpoint interval zero",
         {{"CHECKPOINT_INTERVAL_SECONDS", "0"}},
         "CHECKPOINT_INTERVAL_SECONDS must be an integer from 1 to 3600"},
        {"no server threads",
         {{"GATEWAY_THREADS", "0"}},
         "GATEWAY_THREADS must be an integer from 1 to 256"},
        {"server threads not a number",
         {{"GATEWAY_THREADS", "eight"}},
         "GATEWAY_THREADS must be an integer from 1 to 256"},
        {"share counts kept longer than a minute",
         {{"SHARE_COUNT_INTERVAL_SECONDS", "61"}},
         "SHARE_COUNT_INTERVAL_SECONDS must be an integer from 1 to 60"},
        {"standby given twice",
         {{"DATABASE_READ_URL", "host=standby"}, {"DATABASE_READ_URL_FILE", "/dev/null"}},
         "set DATABASE_READ_URL or DATABASE_READ_URL_FILE, not both"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kv change[4];
        memcpy(change, cases[i].change, sizeof cases[i].change);
        change[3] = (kv){NULL, NULL};
        const char *expected[] = {cases[i].problem, NULL};
        result r;
        load(&r, good_production, change);
        expect_problems(__LINE__, cases[i].label, &r, expected);
        done(&r);
    }
}

static void
test_numbers(void)
{
    static const struct {
        const char *name, *value;
        bool ok;
        int parsed;
    } cases[] = {
        {"PORT", "0", false, 0},
        {"PORT", "1", true, 1},
        {"PORT", "65535", true, 65535},
        {"PORT", "65536", false, 0},
        {"PORT", "80x", false, 0},
        {"PORT", " 80", false, 0},
        {"PORT", "80 ", false, 0},
        {"PORT", "+80", false, 0},
        {"PORT", "-80", false, 0},
        {"PORT", "", false, 0},
        {"PORT", "0x50", false, 0},
        {"PORT", "99999999999999999999999", false, 0},
        {"PORT", "080", true, 80},
        {"JWT_TTL_HOURS", "0", false, 0},
        {"JWT_TTL_HOURS", "1", true, 1},
        {"JWT_TTL_HOURS", "8760", true, 8760},
        {"JWT_TTL_HOURS", "8761", false, 0},
        {"JWT_TTL_HOURS", "24h", false, 0},
        {"DATASET_DOWNLOAD_DAILY_LIMIT", "0", true, 0}, /* allowed outside production */
        {"DATASET_DOWNLOAD_DAILY_LIMIT", "-1", true, -1},
        {"DATASET_DOWNLOAD_DAILY_LIMIT", "2147483647", true, 2147483647},
        {"DATASET_DOWNLOAD_DAILY_LIMIT", "2147483648", false, 0},
        {"DATASET_DOWNLOAD_DAILY_LIMIT", "1e3", false, 0},
        {"DATASET_DOWNLOAD_DAILY_LIMIT", "", false, 0},
        {"DATASET_DOWNLOAD_DAILY_LIMIT", "-", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kv set[] = {{cases[i].name, cases[i].value}, {NULL, NULL}};
        result r;
        load(&r, set, NULL);
        int got = strcmp(cases[i].name, "PORT") == 0            ? r.c.port
                  : strcmp(cases[i].name, "JWT_TTL_HOURS") == 0 ? r.c.jwt_ttl_hours
                                                                : r.c.dataset_download_daily_limit;
        if (cases[i].ok) {
            CHECK(r.ok && got == cases[i].parsed, "%s=\"%s\": expected %d, got %d (ok %d)",
                  cases[i].name, cases[i].value, cases[i].parsed, got, r.ok);
        } else {
            CHECK(!r.ok && r.n_problems == 1 &&
                      strncmp(r.problems[0], cases[i].name, strlen(cases[i].name)) == 0,
                  "%s=\"%s\": expected one problem naming it", cases[i].name, cases[i].value);
        }
        done(&r);
    }
}

static void
test_cors(void)
{
    static const struct {
        const char *value;
        size_t n;            /* origins kept */
        const char *first;   /* first origin kept, if any */
        const char *second;  /* second origin kept, if any */
        const char *problem; /* NULL: no problem */
    } cases[] = {
        {"https://app.example.com", 1, "https://app.example.com", NULL, NULL},
        {"  https://app.example.com ,\thttp://localhost:5173  ", 2, "https://app.example.com",
         "http://localhost:5173", NULL},
        {"HTTPS://App.Example.COM", 1, "https://app.example.com", NULL, NULL},
        {"https://App.Example.COM:8443", 1, "https://app.example.com:8443", NULL, NULL},
        {"http://[::1]:5173", 1, "http://[::1]:5173", NULL, NULL},
        {"*", 1, "*", NULL, NULL},
        {"https://app.example.com/", 0, NULL, NULL,
         "CORS_ORIGINS entry 1 is not an origin (http or https://host[:port], no path)"},
        {"https://a.example.com,https://app.example.com/vault", 1, "https://a.example.com", NULL,
         "CORS_ORIGINS entry 2 is not an origin (http or https://host[:port], no path)"},
        {"https://a.example.com,,https://b.example.com", 2, "https://a.example.com",
         "https://b.example.com", "CORS_ORIGINS entry 2 is empty"},
        {"https://a.example.com, ", 1, "https://a.example.com", NULL,
         "CORS_ORIGINS entry 2 is empty"},
        {"app.example.com", 0, NULL, NULL,
         "CORS_ORIGINS entry 1 is not an origin (http or https://host[:port], no path)"},
        {"https://", 0, NULL, NULL,
         "CORS_ORIGINS entry 1 is not an origin (http or https://host[:port], no path)"},
        {"https://app.example.com:0", 0, NULL, NULL,
         "CORS_ORIGINS entry 1 is not an origin (http or https://host[:port], no path)"},
        {"https://app.example.com:65536", 0, NULL, NULL,
         "CORS_ORIGINS entry 1 is not an origin (http or https://host[:port], no path)"},
        {"https://app.example.com:", 0, NULL, NULL,
         "CORS_ORIGINS entry 1 is not an origin (http or https://host[:port], no path)"},
        {"https://user@app.example.com", 0, NULL, NULL,
         "CORS_ORIGINS entry 1 is not an origin (http or https://host[:port], no path)"},
        {"https://app.example.com?x", 0, NULL, NULL,
         "CORS_ORIGINS entry 1 is not an origin (http or https://host[:port], no path)"},
        {"ftp://app.example.com", 0, NULL, NULL,
         "CORS_ORIGINS entry 1 is not an origin (http or https://host[:port], no path)"},
        {"https://app example.com", 0, NULL, NULL,
         "CORS_ORIGINS entry 1 is not an origin (http or https://host[:port], no path)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kv set[] = {{"CORS_ORIGINS", cases[i].value}, {NULL, NULL}};
        result r;
        load(&r, set, NULL);
        const char *expected[] = {cases[i].problem, NULL};
        expect_problems(__LINE__, cases[i].value, &r, expected);
        CHECK(r.c.n_cors_origins == cases[i].n, "CORS \"%s\": %zu origins kept, expected %zu",
              cases[i].value, r.c.n_cors_origins, cases[i].n);
        if (cases[i].first != NULL && r.c.n_cors_origins >= 1)
            CHECK(strcmp(r.c.cors_origins[0], cases[i].first) == 0,
                  "CORS \"%s\": first origin \"%s\"", cases[i].value, r.c.cors_origins[0]);
        if (cases[i].second != NULL && r.c.n_cors_origins >= 2)
            CHECK(strcmp(r.c.cors_origins[1], cases[i].second) == 0,
                  "CORS \"%s\": second origin \"%s\"", cases[i].value, r.c.cors_origins[1]);
        done(&r);
    }
}

static void
test_cidr_parse(void)
{
    static const struct {
        const char *s;
        bool ok;
        int family, prefix;
        const char *canonical; /* the network address after clearing host bits */
    } cases[] = {
        {"10.0.0.0/8", true, AF_INET, 8, "10.0.0.0"},
        {"10.1.2.3/8", true, AF_INET, 8, "10.0.0.0"},
        {"192.168.1.7", true, AF_INET, 32, "192.168.1.7"},
        {"192.168.1.7/32", true, AF_INET, 32, "192.168.1.7"},
        {"0.0.0.0/0", true, AF_INET, 0, "0.0.0.0"},
        {"172.16.0.0/12", true, AF_INET, 12, "172.16.0.0"},
        {"::1", true, AF_INET6, 128, "::1"},
        {"::1/128", true, AF_INET6, 128, "::1"},
        {"fd00::/8", true, AF_INET6, 8, "fd00::"},
        {"2001:db8::1/32", true, AF_INET6, 32, "2001:db8::"},
        {"::/0", true, AF_INET6, 0, "::"},
        {"::ffff:10.0.0.0/104", true, AF_INET6, 104, "::ffff:10.0.0.0"},
        {"1.2.3.4/33", false, 0, 0, NULL},
        {"::1/129", false, 0, 0, NULL},
        {"abc", false, 0, 0, NULL},
        {"", false, 0, 0, NULL},
        {"/8", false, 0, 0, NULL},
        {"10.0.0.0/", false, 0, 0, NULL},
        {"10.0.0.0/-1", false, 0, 0, NULL},
        {"10.0.0.0/+8", false, 0, 0, NULL},
        {"10.0.0.0/ 8", false, 0, 0, NULL},
        {"10.0.0.0/8x", false, 0, 0, NULL},
        {"10.0.0.0/0008", false, 0, 0, NULL},
        {"10.0.0/8", false, 0, 0, NULL},
        {"10.0.0.256", false, 0, 0, NULL},
        {" 10.0.0.1", false, 0, 0, NULL},
        {"fe80::1%eth0", false, 0, 0, NULL},
        {"1.2.3.4/8/8", false, 0, 0, NULL},
        {"1111:2222:3333:4444:5555:6666:7777:8888:9999/64", false, 0, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gw_cidr net;
        memset(&net, 0xa5, sizeof net);
        bool ok = gw_cidr_parse(cases[i].s, &net);
        CHECK(ok == cases[i].ok, "cidr_parse(\"%s\") returned %d", cases[i].s, ok);
        if (!ok || !cases[i].ok)
            continue;
        char text[INET6_ADDRSTRLEN];
        inet_ntop(net.family, net.addr, text, sizeof text);
        CHECK(net.family == cases[i].family && net.prefix == cases[i].prefix &&
                  strcmp(text, cases[i].canonical) == 0,
              "cidr_parse(\"%s\"): family %d prefix %d address %s", cases[i].s, net.family,
              net.prefix, text);
    }
    CHECK(!gw_cidr_parse(NULL, NULL), "cidr_parse(NULL)");
}

/* Builds the sockaddr a server would see for a peer address written as text. */
static struct sockaddr_storage
peer(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    if (inet_pton(AF_INET, text, &sin.sin_addr) == 1) {
        memcpy(&ss, &sin, sizeof sin);
    } else if (inet_pton(AF_INET6, text, &sin6.sin6_addr) == 1) {
        memcpy(&ss, &sin6, sizeof sin6);
    } else {
        printf("test bug: bad peer address %s\n", text);
        exit(2);
    }
    return ss;
}

static void
test_cidr_match(void)
{
    static const struct {
        const char *nets; /* a comma-separated allowlist */
        const char *addr;
        bool match;
    } cases[] = {
        {"127.0.0.0/8,::1/128", "127.0.0.1", true},
        {"127.0.0.0/8,::1/128", "127.255.3.4", true},
        {"127.0.0.0/8,::1/128", "128.0.0.1", false},
        {"127.0.0.0/8,::1/128", "::1", true},
        {"127.0.0.0/8,::1/128", "::2", false},
        {"127.0.0.0/8,::1/128", "::ffff:127.0.0.1", true}, /* v4 on a dual-stack socket */
        {"127.0.0.0/8,::1/128", "::ffff:10.0.0.1", false},
        {"127.0.0.0/8,::1/128", "::127.0.0.1", false}, /* v4-compatible is not v4-mapped */
        {"10.0.0.0/8", "10.200.1.1", true},
        {"10.0.0.0/8", "11.0.0.0", false},
        {"172.16.0.0/12", "172.31.255.255", true},
        {"172.16.0.0/12", "172.32.0.0", false},
        {"192.168.1.7/32", "192.168.1.7", true},
        {"192.168.1.7/32", "192.168.1.6", false},
        {"192.168.1.7", "::ffff:192.168.1.7", true},
        {"0.0.0.0/0", "203.0.113.9", true},
        {"0.0.0.0/0", "::ffff:203.0.113.9", true},
        {"0.0.0.0/0", "2001:db8::1", false},
        {"::/0", "2001:db8::1", true},
        {"fd00::/8", "fd12:3456::1", true},
        {"fd00::/8", "fe80::1", false},
        {"2001:db8::/33", "2001:db8:7fff::1", true},
        {"2001:db8::/33", "2001:db8:8000::1", false},
        {"2001:db8::1/128", "2001:db8::1", true},
        {"2001:db8::1/128", "2001:db8::2", false},
        {"::ffff:10.0.0.0/104", "10.1.2.3", true}, /* a mapped network covers plain v4 too */
        {"::ffff:10.0.0.0/104", "11.1.2.3", false},
        {"10.0.0.0/8", "::a00:1", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kv set[] = {{"INTERNAL_ALLOW_CIDRS", cases[i].nets}, {NULL, NULL}};
        result r;
        load(&r, set, NULL);
        CHECK(r.ok, "allowlist \"%s\" did not load", cases[i].nets);
        struct sockaddr_storage ss = peer(cases[i].addr);
        bool got = gw_cidr_match(r.c.internal_allow, r.c.n_internal_allow, (struct sockaddr *)&ss);
        CHECK(got == cases[i].match, "cidr_match(%s in %s) = %d", cases[i].addr, cases[i].nets,
              got);
        done(&r);
    }
    struct sockaddr_storage ss = peer("127.0.0.1");
    CHECK(!gw_cidr_match(NULL, 0, (struct sockaddr *)&ss), "empty allowlist matches nothing");
    gw_cidr any;
    gw_cidr_parse("0.0.0.0/0", &any);
    CHECK(!gw_cidr_match(&any, 1, NULL), "NULL address matches nothing");
    struct sockaddr_storage unix_addr;
    memset(&unix_addr, 0, sizeof unix_addr);
    unix_addr.ss_family = AF_UNIX;
    CHECK(!gw_cidr_match(&any, 1, (struct sockaddr *)&unix_addr), "AF_UNIX matches nothing");
}

static void
test_free(void)
{
    /* Freeing twice, or a never-loaded zeroed struct, is harmless. */
    gw_config c;
    memset(&c, 0, sizeof c);
    gw_config_free(&c);
    gw_config_free(NULL);
    gw_config_free_list(NULL, 0);
    result r;
    load(&r, good_production, NULL);
    gw_config_free(&r.c);
    CHECK(r.c.jwt_secret == NULL && r.c.cors_origins == NULL, "free leaves a zeroed struct");
    done(&r);

    /* Lists may be declined; the load still reports through its return value. */
    fake_env e;
    memset(&e, 0, sizeof e);
    env_set(&e, "PORT", "0");
    bool ok = gw_config_load(&c, fake_get, &e, NULL, NULL, NULL, NULL);
    CHECK(!ok, "load without lists still fails on a problem");
    gw_config_free(&c);
}

/* A temporary file holding text; the path is written to path (at least 40 bytes). */
static void
temp_file(char *path, const char *text)
{
    strcpy(path, "/tmp/test_config_secret_XXXXXX");
    int fd = mkstemp(path);
    size_t n = strlen(text);
    if (fd < 0 || write(fd, text, n) != (ssize_t)n) {
        printf("cannot create a temporary secret file\n");
        exit(2);
    }
    close(fd);
}

/* Secrets given as NAME_FILE: read, trimmed of one newline, exclusive with NAME. */
static void
test_secret_files(void)
{
    char jwt_file[40], internal_file[40], empty_file[40];
    result r;

    temp_file(jwt_file, GOOD_JWT "\n");
    temp_file(internal_file, GOOD_INTERNAL "\r\n");
    temp_file(empty_file, "");
    const kv files[] = {{"JWT_SECRET", NULL},
                        {"JWT_SECRET_FILE", jwt_file},
                        {"INTERNAL_API_KEY", NULL},
                        {"INTERNAL_API_KEY_FILE", internal_file},
                        {NULL, NULL}};
    load(&r, good_production, files);
    expect_problems(__LINE__, "secrets from files", &r, (const char *const[]){NULL});
    CHECK(r.c.jwt_secret_len == strlen(GOOD_JWT) &&
              memcmp(r.c.jwt_secret, GOOD_JWT, strlen(GOOD_JWT)) == 0,
          "JWT_SECRET_FILE: the file's contents without the newline");
    CHECK(r.c.internal_api_key && strcmp(r.c.internal_api_key, GOOD_INTERNAL) == 0,
          "INTERNAL_API_KEY_FILE: the file's contents without CR LF");
    done(&r);

    load(&r, good_production, (const kv[]){{"JWT_SECRET_FILE", jwt_file}, {NULL, NULL}});
    expect_problems(__LINE__, "both NAME and NAME_FILE", &r,
                    (const char *const[]){"set JWT_SECRET or JWT_SECRET_FILE, not both",
                                          "JWT_SECRET must be set in production", NULL});
    done(&r);

    load(&r, good_production,
         (const kv[]){{"RUNNER_TOKEN", NULL},
                      {"RUNNER_TOKEN_FILE", "/nonexistent/runner-token"},
                      {NULL, NULL}});
    expect_problems(__LINE__, "unreadable NAME_FILE", &r,
                    (const char *const[]){
                        "RUNNER_TOKEN_FILE names a file that cannot be read (or is over 64 KiB)",
                        "RUNNER_TOKEN must be set in production", NULL});
    done(&r);

    /* an empty file is an unset secret, which production refuses like any other */
    load(&r, good_production,
         (const kv[]){
             {"INTERNAL_API_KEY", NULL}, {"INTERNAL_API_KEY_FILE", empty_file}, {NULL, NULL}});
    expect_problems(__LINE__, "empty NAME_FILE", &r,
                    (const char *const[]){"INTERNAL_API_KEY must be set in production", NULL});
    done(&r);
    unlink(jwt_file);
    unlink(internal_file);
    unlink(empty_file);
}

#define VKEY_A "ledger.example+2b1d6e2a+AcJpB0pb8QbyS1z3b3pwVx0cR0Rv1Yl2D1jS8W3vJ4n8"
/* base64 holds "+" and "/" too */
#define VKEY_B "ledger.example+7f3c9a10+AZq5cF7m8B2+P4kT6hW0xN1yR3dE5gJ7l/9oQ2sU4wY6"

/* The _PREVIOUS half of each rotation: accepted alongside, never equal to, the current one. */
static void
test_rotation_overlap(void)
{
    result r;
    const kv overlap[] = {{"INTERNAL_API_KEY_PREVIOUS", "internal-old-0011223344556677889900aabb"},
                          {"RUNNER_TOKEN_PREVIOUS", "runner-old-ffeeddccbbaa99887766554433221"},
                          {"STRIPE_WEBHOOK_SECRET", "whsec_new"},
                          {"STRIPE_WEBHOOK_SECRET_PREVIOUS", "whsec_old"},
                          {"LEDGER_VERIFIER_KEYS_PREVIOUS", VKEY_A ", " VKEY_B},
                          {NULL, NULL}};
    load(&r, good_production, overlap);
    expect_problems(__LINE__, "rotation overlap", &r, (const char *const[]){NULL});
    CHECK(r.c.internal_api_key_previous &&
              strcmp(r.c.internal_api_key_previous, "internal-old-0011223344556677889900aabb") == 0,
          "INTERNAL_API_KEY_PREVIOUS kept");
    CHECK(r.c.runner_token_previous &&
              strcmp(r.c.runner_token_previous, "runner-old-ffeeddccbbaa99887766554433221") == 0,
          "RUNNER_TOKEN_PREVIOUS kept");
    CHECK(r.c.stripe_webhook_secret_previous &&
              strcmp(r.c.stripe_webhook_secret_previous, "whsec_old") == 0,
          "STRIPE_WEBHOOK_SECRET_PREVIOUS kept");
    CHECK(r.c.n_ledger_verifier_keys_previous == 2 &&
              strcmp(r.c.ledger_verifier_keys_previous[0], VKEY_A) == 0 &&
              strcmp(r.c.ledger_verifier_keys_previous[1], VKEY_B) == 0,
          "LEDGER_VERIFIER_KEYS_PREVIOUS: two keys, blanks trimmed");
    done(&r);

    load(&r, good_production,
         (const kv[]){{"INTERNAL_API_KEY_PREVIOUS", GOOD_INTERNAL},
                      {"RUNNER_TOKEN_PREVIOUS", "short"},
                      {"STRIPE_WEBHOOK_SECRET_PREVIOUS", "whsec_old"},
                      {"LEDGER_VERIFIER_KEYS_PREVIOUS",
                       "PRIVATE+KEY+ledger.example+2b1d6e2a+AAAA,not-a-key"},
                      {NULL, NULL}});
    expect_problems(
        __LINE__, "bad rotation overlap", &r,
        (const char *const[]){
            "INTERNAL_API_KEY_PREVIOUS must differ from INTERNAL_API_KEY",
            "RUNNER_TOKEN_PREVIOUS is shorter than 32 bytes",
            "STRIPE_WEBHOOK_SECRET_PREVIOUS is set but STRIPE_WEBHOOK_SECRET is not",
            "LEDGER_VERIFIER_KEYS_PREVIOUS holds a signer key; it takes verifier keys only",
            "LEDGER_VERIFIER_KEYS_PREVIOUS entry 2 is not a verifier key (name+hash+key)", NULL});
    for (size_t i = 0; i < r.n_problems; i++)
        CHECK(strstr(r.problems[i], GOOD_INTERNAL) == NULL && strstr(r.problems[i], "AAAA") == NULL,
              "a problem never quotes a secret: %s", r.problems[i]);
    done(&r);
}

int
main(void)
{
    snprintf(signing_key_path, sizeof signing_key_path, "/tmp/test_config_key_XXXXXX");
    int fd = mkstemp(signing_key_path);
    if (fd < 0 || write(fd, "test key\n", 9) != 9) {
        printf("cannot create a temporary key file\n");
        return 2;
    }
    close(fd);

    test_development_defaults();
    test_unsafe_production();
    test_good_production();
    test_production_rules();
    test_numbers();
    test_cors();
    test_cidr_parse();
    test_cidr_match();
    test_free();
    test_secret_files();
    test_rotation_overlap();

    unlink(signing_key_path);
    printf("config: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
