/*
 * config.h: the gateway's configuration, read from the environment (DESIGN.md section 7), and
 * the production boot checks. Every problem is collected, so an operator sees them all at once;
 * --check-config prints the same list and exits.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An allowed source network for internal routes (INTERNAL_ALLOW_CIDRS). */
typedef struct gw_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    int prefix;
} gw_cidr;

typedef struct gw_config {
    bool production;         /* ENV=production */
    char *env;               /* "development" (default) or "production" */
    char *database_url;      /* DATABASE_URL (libpq conninfo or URI); default: libpq defaults */
    char *database_read_url; /* DATABASE_READ_URL: standby for reads, or NULL */
    int checkpoint_interval_seconds;  /* CHECKPOINT_INTERVAL_SECONDS, default 60 */
    int share_count_interval_seconds; /* SHARE_COUNT_INTERVAL_SECONDS, default 1 */
    uint8_t *jwt_secret;              /* JWT_SECRET bytes */
    size_t jwt_secret_len;
    uint8_t *jwt_secret_previous; /* JWT_SECRET_PREVIOUS, verification only; NULL if unset */
    size_t jwt_secret_previous_len;
    int jwt_ttl_hours;   /* JWT_TTL_HOURS, default 720 */
    char **cors_origins; /* CORS_ORIGINS, comma separated exact origins */
    size_t n_cors_origins;
    char *api_base_url;    /* API_BASE_URL, default http://localhost:<port> */
    char *app_base_url;    /* APP_BASE_URL, default = API_BASE_URL (the gateway serves the pages) */
    char *resend_api_key;  /* RESEND_API_KEY */
    char *resend_api_base; /* RESEND_API_BASE, default https://api.resend.com */
    char *smtp_url;        /* SMTP_URL */
    char *smtp_ca_file;    /* SMTP_CA_FILE: PEM CA bundle for the relay's certificate */
    char *mail_from;       /* MAIL_FROM, default "defendable <no-reply@localhost>" */
    char *mail_dir;        /* MAIL_DIR, default ".mail" (development delivery) */
    char *aws_access_key_id, *aws_secret_access_key, *aws_endpoint_url_s3, *aws_region,
        *tigris_bucket; /* defaults: endpoint https://fly.storage.tigris.dev, region auto, bucket
                           defendable-cloud */
    bool s3_path_style; /* AWS_S3_ADDRESSING_STYLE=path (default virtual: <bucket>.<host>) */
    int dataset_url_ttl_seconds;     /* DATASET_URL_TTL_SECONDS, 1..900, default 900 */
    char *internal_api_key;          /* INTERNAL_API_KEY */
    char *internal_api_key_previous; /* INTERNAL_API_KEY_PREVIOUS: accepted during a rotation */
    gw_cidr *internal_allow;         /* INTERNAL_ALLOW_CIDRS, default 127.0.0.0/8,::1/128 */
    size_t n_internal_allow;
    char *runner_token;          /* RUNNER_TOKEN */
    char *runner_token_previous; /* RUNNER_TOKEN_PREVIOUS: accepted during a rotation */
    char *stripe_api_key, *stripe_webhook_secret, *stripe_price_id, *stripe_api_base;
    char *stripe_webhook_secret_previous; /* STRIPE_WEBHOOK_SECRET_PREVIOUS (Stripe's overlap) */
    int dataset_download_daily_limit;     /* DATASET_DOWNLOAD_DAILY_LIMIT, default 500 */
    char *ledger_origin;                  /* LEDGER_ORIGIN, default "localhost" */
    char *ledger_signing_key;             /* LEDGER_SIGNING_KEY: path of the C2SP signer key file */
    char **ledger_verifier_keys_previous; /* LEDGER_VERIFIER_KEYS_PREVIOUS: retired keys, comma
                                             separated, still published at /ledger/keys */
    size_t n_ledger_verifier_keys_previous;
    int port;        /* PORT, default 8080 */
    int threads;     /* GATEWAY_THREADS: server threads (and primary connections), default 8 */
    char *log_level; /* LOG_LEVEL: debug, info (default), warn, error */
} gw_config;

/*
 * Secrets (JWT_SECRET, JWT_SECRET_PREVIOUS, DATABASE_URL, RESEND_API_KEY, SMTP_URL,
 * AWS_SECRET_ACCESS_KEY, STRIPE_API_KEY, STRIPE_WEBHOOK_SECRET, INTERNAL_API_KEY, RUNNER_TOKEN and
 * the _PREVIOUS of the last three, and LEDGER_VERIFIER_KEYS_PREVIOUS) may instead be given as
 * NAME_FILE, the path of a file holding the value; setting both is a problem.
 */

/* Where the configuration comes from: getenv in the program, a table in the unit tests. */
typedef const char *(*gw_getenv_fn)(const char *name, void *ctx);

/*
 * Reads and checks the configuration. Each problem is appended to *problems (a malloc'd array
 * of malloc'd sentences naming the variable and what is wrong, never its value), *n_problems
 * counts them. Development tolerates defaults (a generated JWT secret is NOT one of them: an
 * unset JWT_SECRET in development gets a fixed, clearly named development secret and a warning
 * in *warnings); production refuses: a default, short (< 32 bytes) or development JWT secret, a
 * JWT_SECRET_PREVIOUS equal to JWT_SECRET or short, an empty or wildcard CORS list, a non-https
 * API_BASE_URL or APP_BASE_URL, no email delivery (neither RESEND_API_KEY nor SMTP_URL), a
 * non-positive DATASET_DOWNLOAD_DAILY_LIMIT, a missing or short INTERNAL_API_KEY or
 * RUNNER_TOKEN, a missing LEDGER_SIGNING_KEY, an unparsable number or CIDR anywhere.
 * Returns true when there is no problem.
 */
bool gw_config_load(gw_config *c, gw_getenv_fn get, void *ctx, char ***problems, size_t *n_problems,
                    char ***warnings, size_t *n_warnings);
void gw_config_free(gw_config *c);
void gw_config_free_list(char **list, size_t n);

/* True when addr (AF_INET or AF_INET6; v4-mapped v6 counts as v4) is in one of the networks. */
bool gw_cidr_match(const gw_cidr *list, size_t n, const struct sockaddr *addr);
/* Parses "a.b.c.d/n" or "x::y/n" (a bare address means a single host). */
bool gw_cidr_parse(const char *s, gw_cidr *out);

#endif /* GW_CONFIG_H */
