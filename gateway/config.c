/*
 * config.c: reads the gateway's configuration through a getenv-like callback and runs the boot
 * checks of DESIGN.md section 7.
 *
 * Rules that shape the code:
 *  - Every problem is collected before returning, so an operator fixes a deployment in one pass
 *    instead of one restart per mistake.
 *  - A problem names the variable and the rule, never the value: the list is printed to logs and
 *    terminals, and several of these variables are secrets (a DATABASE_URL or SMTP_URL can carry a
 *    password too).
 *  - An empty text variable counts as unset, because container env files commonly write NAME=
 *    for "not configured". Numbers are the exception: an empty PORT is a mistake, not a request
 *    for the default, and is reported.
 *  - gw_config_load always leaves *c in a state gw_config_free accepts, whatever it returns.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* The one JWT secret a development gateway may run with; production refuses it by name. */
#define DEV_JWT_SECRET "defendable-development-jwt-secret-do-not-use-in-production"
#define MIN_SECRET_LEN 32
#define DEFAULT_PORT 8080
#define DEFAULT_INTERNAL_ALLOW "127.0.0.0/8,::1/128"

/* Values people paste from examples; compared case-insensitively since "Change-Me" is no better. */
static const char *const weak_secrets[] = {
    "change-me",   "changeme",   "change_me", "secret",   "dev",          "development",
    "password",    "jwt-secret", "jwtsecret", "test",     "changeit",     "your-secret-key",
    "supersecret", "default",    "example",   "insecure", "not-a-secret",
};

typedef struct strlist {
    char **items;
    size_t n;
} strlist;

/* State of one load: the source of values and the two lists being collected. */
typedef struct loader {
    gw_getenv_fn get;
    void *ctx;
    bool production;
    bool oom; /* an allocation failed: the result cannot be trusted, so load reports failure */
    strlist problems;
    strlist warnings;
    strlist file_values; /* contents read through NAME_FILE, wiped when the load ends */
} loader;

static bool
list_addv(loader *L, strlist *l, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (len < 0) {
        L->oom = true;
        return false;
    }
    char *s = malloc((size_t)len + 1);
    char **grown = realloc(l->items, (l->n + 1) * sizeof *grown);
    if (s == NULL || grown == NULL) {
        free(s);
        if (grown != NULL)
            l->items = grown;
        L->oom = true;
        return false;
    }
    l->items = grown;
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    l->items[l->n++] = s;
    return true;
}

__attribute__((format(printf, 2, 3))) static void
problem(loader *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    list_addv(L, &L->problems, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 2, 3))) static void
warning(loader *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    list_addv(L, &L->warnings, fmt, ap);
    va_end(ap);
}

/* The raw value, NULL when unset. Only numbers care about the difference between unset and "". */
static const char *
raw(loader *L, const char *name)
{
    return L->get(name, L->ctx);
}

/* A text value: NULL when unset or empty. */
static const char *
text(loader *L, const char *name)
{
    const char *v = raw(L, name);
    return (v != NULL && v[0] != '\0') ? v : NULL;
}

#define MAX_SECRET_FILE (64 * 1024)

static bool has_control(const char *s);

/* The contents of a NAME_FILE file, one trailing newline dropped (what `echo` and editors add);
 * NULL, with a problem naming the variable (never the contents), when it cannot be read. */
static const char *
read_secret_file(loader *L, const char *name, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    char *buf;
    ssize_t got = 0, n;

    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_SECRET_FILE) {
        if (fd >= 0)
            close(fd);
        problem(L, "%s_FILE names a file that cannot be read (or is over 64 KiB)", name);
        return NULL;
    }
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        close(fd);
        L->oom = true;
        return NULL;
    }
    while (got < st.st_size && (n = read(fd, buf + got, (size_t)(st.st_size - got))) > 0)
        got += n;
    close(fd);
    if (got > 0 && buf[got - 1] == '\n')
        got--;
    if (got > 0 && buf[got - 1] == '\r')
        got--;
    buf[got] = '\0';
    char **grown = realloc(L->file_values.items, (L->file_values.n + 1) * sizeof *grown);
    if (grown == NULL) {
        OPENSSL_cleanse(buf, (size_t)got);
        free(buf);
        L->oom = true;
        return NULL;
    }
    L->file_values.items = grown;
    L->file_values.items[L->file_values.n++] = buf;
    if (memchr(buf, '\0', (size_t)got) != NULL || has_control(buf)) {
        problem(L, "%s_FILE holds control characters", name);
        return NULL;
    }
    return buf[0] != '\0' ? buf : NULL;
}

/*
 * A secret: NAME, or the contents of the file NAME_FILE names (Docker and Kubernetes secrets are
 * files, and a file can be replaced under a running gateway, which SIGHUP then reloads).
 */
static const char *
secret(loader *L, const char *name)
{
    char file_name[96];
    const char *path;

    snprintf(file_name, sizeof file_name, "%s_FILE", name);
    path = text(L, file_name);
    if (path == NULL)
        return text(L, name);
    if (raw(L, name) != NULL) {
        problem(L, "set %s or %s, not both", name, file_name);
        return NULL;
    }
    return read_secret_file(L, name, path);
}

static char *
dup_n(loader *L, const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d == NULL) {
        L->oom = true;
        return NULL;
    }
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* A copy of v, or of def when v is NULL; NULL when both are NULL. */
static char *
dup_or(loader *L, const char *v, const char *def)
{
    const char *s = v != NULL ? v : def;
    return s != NULL ? dup_n(L, s, strlen(s)) : NULL;
}

static bool
is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool
is_alnum(char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool
is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

static bool
has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/*
 * Strict decimal integer in [min, max]. strtol alone would accept leading blanks, a '+' and
 * trailing junk ("80x"), and would silently clamp on overflow; each of those hides a typo.
 */
static bool
parse_long(const char *s, long min, long max, long *out)
{
    if (s == NULL)
        return false;
    const char *digits = s[0] == '-' ? s + 1 : s;
    if (!is_digit(digits[0]))
        return false;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Reads a number variable; unset gives def, anything unparsable or out of range is a problem. */
static int
read_int(loader *L, const char *name, long min, long max, int def, const char *rule)
{
    const char *v = raw(L, name);
    long n;
    if (v == NULL)
        return def;
    if (!parse_long(v, min, max, &n)) {
        problem(L, "%s must be %s", name, rule);
        return def;
    }
    return (int)n;
}

/*
 * host[:port] with nothing else: a DNS-style name or IPv4 address, or a bracketed IPv6 literal.
 * Userinfo ("user@") is refused: it has no place in an origin or a public base URL.
 */
static bool
valid_authority(const char *s, size_t len)
{
    size_t i = 0;
    if (len == 0)
        return false;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        char buf[INET6_ADDRSTRLEN];
        struct in6_addr a6;
        if (close == NULL)
            return false;
        size_t hl = (size_t)(close - s) - 1;
        if (hl == 0 || hl >= sizeof buf)
            return false;
        memcpy(buf, s + 1, hl);
        buf[hl] = '\0';
        if (inet_pton(AF_INET6, buf, &a6) != 1)
            return false;
        i = hl + 2;
    } else {
        if (!is_alnum(s[0]))
            return false;
        while (i < len && s[i] != ':') {
            if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '.')
                return false;
            i++;
        }
    }
    if (i == len)
        return true;
    if (s[i] != ':')
        return false;
    i++;
    size_t start = i;
    long port = 0;
    for (; i < len; i++) {
        if (!is_digit(s[i]) || i - start >= 5)
            return false;
        port = port * 10 + (s[i] - '0');
    }
    return i > start && port >= 1 && port <= 65535;
}

/* Length of the "http://" or "https://" prefix of s, 0 for any other scheme. Schemes are
 * case-insensitive (RFC 3986 section 3.1). */
static size_t
http_scheme_len(const char *s, size_t len, bool *https)
{
    if (len >= 8 && strncasecmp(s, "https://", 8) == 0) {
        *https = true;
        return 8;
    }
    if (len >= 7 && strncasecmp(s, "http://", 7) == 0) {
        *https = false;
        return 7;
    }
    return 0;
}

/*
 * An absolute http(s) URL with an optional path and no query or fragment: the gateway appends
 * paths such as "/share/<token>" to these, so a query or fragment would end up in the middle.
 * Returns the length to keep, without trailing slashes (for the same reason), or 0 if invalid.
 */
static size_t
check_base_url(const char *v, bool *https)
{
    size_t len = strlen(v);
    size_t sl = http_scheme_len(v, len, https);
    if (sl == 0)
        return 0;
    const char *auth = v + sl;
    size_t alen = strcspn(auth, "/?#");
    if (!valid_authority(auth, alen))
        return 0;
    for (const char *p = auth + alen; *p != '\0'; p++)
        if (*p == '?' || *p == '#' || *p == ' ' || (unsigned char)*p < 0x20 || *p == 0x7f)
            return 0;
    while (len > sl + alen && v[len - 1] == '/')
        len--;
    return len;
}

/* Reads a URL variable; returns a normalized copy of it (or of def), NULL if invalid. */
static char *
read_url(loader *L, const char *name, const char *def, bool must_https)
{
    const char *v = text(L, name);
    const char *s = v != NULL ? v : def;
    bool https = false;
    if (s == NULL)
        return NULL;
    size_t keep = check_base_url(s, &https);
    if (keep == 0) {
        problem(L, "%s must be an absolute http or https URL without query or fragment", name);
        return NULL;
    }
    if (must_https && !https)
        problem(L, "%s must use https in production", name);
    return dup_n(L, s, keep);
}

/*
 * An exact browser origin, "scheme://host[:port]". Browsers send Origin without a path or
 * trailing slash, so "https://app.example.com/" would silently never match: refused, not fixed
 * up, so the operator notices the mismatch with what the browser sends.
 */
static bool
valid_origin(const char *s, size_t len)
{
    bool https;
    size_t sl = http_scheme_len(s, len, &https);
    return sl != 0 && valid_authority(s + sl, len - sl);
}

/*
 * Calls item(L, index, start, len) for each comma-separated entry of v with blanks trimmed, and
 * reports empty entries ("a,,b", a trailing comma), which are nearly always editing slips.
 */
typedef void (*item_fn)(loader *L, void *acc, size_t index, const char *s, size_t len);

static void
for_each_item(loader *L, const char *name, const char *v, item_fn fn, void *acc)
{
    size_t index = 1;
    const char *p = v;
    for (;;) {
        const char *end = strchr(p, ',');
        const char *stop = end != NULL ? end : p + strlen(p);
        const char *a = p, *b = stop;
        while (a < b && is_blank(*a))
            a++;
        while (b > a && is_blank(b[-1]))
            b--;
        if (a == b)
            problem(L, "%s entry %zu is empty", name, index);
        else
            fn(L, acc, index, a, (size_t)(b - a));
        if (end == NULL)
            break;
        p = end + 1;
        index++;
    }
}

typedef struct cors_acc {
    gw_config *c;
    bool wildcard;
} cors_acc;

static void
cors_item(loader *L, void *accp, size_t index, const char *s, size_t len)
{
    cors_acc *acc = accp;
    gw_config *c = acc->c;
    if (len == 1 && s[0] == '*') {
        acc->wildcard = true;
    } else if (!valid_origin(s, len)) {
        problem(L, "CORS_ORIGINS entry %zu is not an origin (http or https://host[:port], no path)",
                index);
        return;
    }
    char **grown = realloc(c->cors_origins, (c->n_cors_origins + 1) * sizeof *grown);
    if (grown == NULL) {
        L->oom = true;
        return;
    }
    c->cors_origins = grown;
    char *o = dup_n(L, s, len);
    if (o == NULL)
        return;
    /* Browsers serialize the Origin header in lower case; store it that way so a plain strcmp
     * against the header is the right comparison. */
    for (char *q = o; *q != '\0'; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    c->cors_origins[c->n_cors_origins++] = o;
}

static void
cidr_item(loader *L, void *accp, size_t index, const char *s, size_t len)
{
    gw_config *c = accp;
    char buf[INET6_ADDRSTRLEN + 8];
    gw_cidr net;
    if (len >= sizeof buf) {
        problem(L, "INTERNAL_ALLOW_CIDRS entry %zu is not an IP address or CIDR network", index);
        return;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (!gw_cidr_parse(buf, &net)) {
        problem(L, "INTERNAL_ALLOW_CIDRS entry %zu is not an IP address or CIDR network", index);
        return;
    }
    if (net.prefix == 0)
        warning(L, "INTERNAL_ALLOW_CIDRS entry %zu allows every address of its family", index);
    gw_cidr *grown = realloc(c->internal_allow, (c->n_internal_allow + 1) * sizeof *grown);
    if (grown == NULL) {
        L->oom = true;
        return;
    }
    c->internal_allow = grown;
    c->internal_allow[c->n_internal_allow++] = net;
}

static bool
weak_secret(const char *s)
{
    if (strcmp(s, DEV_JWT_SECRET) == 0)
        return true;
    for (size_t i = 0; i < sizeof weak_secrets / sizeof weak_secrets[0]; i++)
        if (strcasecmp(s, weak_secrets[i]) == 0)
            return true;
    return false;
}

/*
 * JWT_SECRET and JWT_SECRET_PREVIOUS. Bytes are the variable's bytes as written: no base64
 * decoding, so what the operator generated is what signs.
 */
static void
read_jwt(loader *L, gw_config *c)
{
    const char *v = secret(L, "JWT_SECRET");
    if (v == NULL) {
        if (L->production) {
            problem(L, "JWT_SECRET must be set in production");
        } else {
            v = DEV_JWT_SECRET;
            warning(L, "JWT_SECRET is not set: using the fixed development secret, which "
                       "production refuses");
        }
    } else if (weak_secret(v)) {
        if (L->production)
            problem(L, "JWT_SECRET is a well-known default and must be replaced in production");
        else if (strcmp(v, DEV_JWT_SECRET) != 0)
            warning(L, "JWT_SECRET is a well-known default, which production refuses");
    } else if (strlen(v) < MIN_SECRET_LEN) {
        if (L->production)
            problem(L, "JWT_SECRET is shorter than 32 bytes");
        else
            warning(L, "JWT_SECRET is shorter than 32 bytes, which production refuses");
    }
    if (v != NULL) {
        c->jwt_secret_len = strlen(v);
        c->jwt_secret = (uint8_t *)dup_n(L, v, c->jwt_secret_len);
        if (c->jwt_secret == NULL)
            c->jwt_secret_len = 0;
    }

    const char *p = secret(L, "JWT_SECRET_PREVIOUS");
    if (p == NULL)
        return;
    if (L->production) {
        if (weak_secret(p))
            problem(L, "JWT_SECRET_PREVIOUS is a well-known default and must be replaced in "
                       "production");
        else if (strlen(p) < MIN_SECRET_LEN)
            problem(L, "JWT_SECRET_PREVIOUS is shorter than 32 bytes");
    }
    /* Equal secrets make the rotation a no-op: the "old" tokens never stop being accepted. */
    size_t plen = strlen(p);
    if (v != NULL && plen == strlen(v) && CRYPTO_memcmp(p, v, plen) == 0) {
        if (L->production)
            problem(L, "JWT_SECRET_PREVIOUS must differ from JWT_SECRET");
        else
            warning(L, "JWT_SECRET_PREVIOUS equals JWT_SECRET, which production refuses");
    }
    c->jwt_secret_previous = (uint8_t *)dup_n(L, p, plen);
    c->jwt_secret_previous_len = c->jwt_secret_previous != NULL ? plen : 0;
}

/* INTERNAL_API_KEY and RUNNER_TOKEN: bearer secrets for the /internal routes, required in
 * production. */
static char *
read_token(loader *L, const char *name)
{
    const char *v = secret(L, name);
    if (L->production) {
        if (v == NULL)
            problem(L, "%s must be set in production", name);
        else if (strlen(v) < MIN_SECRET_LEN)
            problem(L, "%s is shorter than 32 bytes", name);
    }
    return dup_or(L, v, NULL);
}

/*
 * NAME_PREVIOUS of a rotated bearer secret: still accepted (never issued) during the overlap of
 * a rotation. It must be as strong as the current one and differ from it, or the rotation would
 * not retire anything.
 */
static char *
read_previous(loader *L, const char *name, const char *current, bool bearer)
{
    char prev_name[96];
    const char *v;

    snprintf(prev_name, sizeof prev_name, "%s_PREVIOUS", name);
    if ((v = secret(L, prev_name)) == NULL)
        return NULL;
    if (current == NULL)
        problem(L, "%s is set but %s is not", prev_name, name);
    else if (strlen(v) == strlen(current) && CRYPTO_memcmp(v, current, strlen(v)) == 0)
        problem(L, "%s must differ from %s", prev_name, name);
    if (bearer && L->production && strlen(v) < MIN_SECRET_LEN)
        problem(L, "%s is shorter than 32 bytes", prev_name);
    return dup_or(L, v, NULL);
}

/* LEDGER_VERIFIER_KEYS_PREVIOUS: the verifier keys of retired signing keys, published with the
 * current one so checkpoints they signed keep verifying. Shape only here; the server parses. */
static void
previous_vkey_item(loader *L, void *ctx, size_t index, const char *item, size_t len)
{
    static const char name[] = "LEDGER_VERIFIER_KEYS_PREVIOUS";
    gw_config *c = ctx;
    const char *plus = memchr(item, '+', len);
    size_t name_len = plus != NULL ? (size_t)(plus - item) : len;
    bool shaped = name_len > 0 && len > name_len + 10 && len <= 400 && item[name_len + 9] == '+';

    /* name+<8 hex digits>+<base64>; the base64 may itself hold '+' */
    for (size_t i = name_len + 1; shaped && i < name_len + 9; i++)
        shaped = is_digit(item[i]) || (item[i] >= 'a' && item[i] <= 'f');
    if (len >= 11 && strncmp(item, "PRIVATE+KEY", 11) == 0) {
        problem(L, "%s holds a signer key; it takes verifier keys only", name);
        return;
    }
    if (!shaped) {
        problem(L, "%s entry %zu is not a verifier key (name+hash+key)", name, index);
        return;
    }
    char **grown = realloc(c->ledger_verifier_keys_previous,
                           (c->n_ledger_verifier_keys_previous + 1) * sizeof *grown);
    if (grown == NULL) {
        L->oom = true;
        return;
    }
    c->ledger_verifier_keys_previous = grown;
    if ((grown[c->n_ledger_verifier_keys_previous] = dup_n(L, item, len)) != NULL)
        c->n_ledger_verifier_keys_previous++;
}

/* A regular file this process can open for reading; the key itself is parsed by its user. */
static bool
readable_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0)
        return false;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    close(fd);
    return ok;
}

bool
gw_config_load(gw_config *c, gw_getenv_fn get, void *ctx, char ***problems, size_t *n_problems,
               char ***warnings, size_t *n_warnings)
{
    loader L = {.get = get, .ctx = ctx};
    memset(c, 0, sizeof *c);

    /* ENV first: it decides which rules apply to everything else. An unknown value (a typo such
     * as "prod") is checked by the production rules, since that is the likelier intent and it
     * shows the operator everything to fix, not just the typo. */
    const char *env = text(&L, "ENV");
    if (env == NULL || strcmp(env, "development") == 0) {
        L.production = false;
    } else {
        if (strcmp(env, "production") != 0)
            problem(&L, "ENV must be development or production");
        L.production = true;
    }
    c->production = L.production;
    c->env = dup_or(&L, L.production ? "production" : "development", NULL);

    const char *level = text(&L, "LOG_LEVEL");
    if (level != NULL && strcmp(level, "debug") != 0 && strcmp(level, "info") != 0 &&
        strcmp(level, "warn") != 0 && strcmp(level, "error") != 0) {
        problem(&L, "LOG_LEVEL must be debug, info, warn or error");
        level = NULL;
    }
    c->log_level = dup_or(&L, level, "info");

    c->port = read_int(&L, "PORT", 1, 65535, DEFAULT_PORT, "an integer from 1 to 65535");
    c->threads = read_int(&L, "GATEWAY_THREADS", 1, 256, 8, "an integer from 1 to 256");
    c->jwt_ttl_hours =
        read_int(&L, "JWT_TTL_HOURS", 1, 8760, 720, "an integer from 1 to 8760 (one year)");
    c->dataset_download_daily_limit =
        read_int(&L, "DATASET_DOWNLOAD_DAILY_LIMIT", INT_MIN, INT_MAX, 500, "an integer");
    if (L.production && c->dataset_download_daily_limit <= 0)
        problem(&L, "DATASET_DOWNLOAD_DAILY_LIMIT must be positive in production");

    /* Empty conninfo means libpq's own defaults (PG* variables, local socket). */
    c->database_url = dup_or(&L, secret(&L, "DATABASE_URL"), "");
    /* read-only routes go there when set, and back to DATABASE_URL when it cannot answer */
    c->database_read_url = dup_or(&L, secret(&L, "DATABASE_READ_URL"), NULL);
    c->checkpoint_interval_seconds =
        read_int(&L, "CHECKPOINT_INTERVAL_SECONDS", 1, 3600, 60, "an integer from 1 to 3600");
    c->share_count_interval_seconds =
        read_int(&L, "SHARE_COUNT_INTERVAL_SECONDS", 1, 60, 1, "an integer from 1 to 60");

    read_jwt(&L, c);

    const char *cors = text(&L, "CORS_ORIGINS");
    cors_acc acc = {.c = c};
    if (cors != NULL)
        for_each_item(&L, "CORS_ORIGINS", cors, cors_item, &acc);
    if (L.production) {
        if (acc.wildcard)
            problem(&L, "CORS_ORIGINS must list explicit origins in production, not *");
        else if (cors == NULL)
            problem(&L, "CORS_ORIGINS must list explicit origins in production");
    }

    char local[64];
    snprintf(local, sizeof local, "http://localhost:%d", c->port);
    c->api_base_url = read_url(&L, "API_BASE_URL", local, L.production);
    /* APP_BASE_URL defaults to the API's (the gateway serves the pages); only an explicit value
     * is checked on its own, so one http API_BASE_URL is not reported twice. */
    if (text(&L, "APP_BASE_URL") != NULL)
        c->app_base_url = read_url(&L, "APP_BASE_URL", NULL, L.production);
    else
        c->app_base_url = dup_or(&L, c->api_base_url, NULL);

    c->resend_api_key = dup_or(&L, secret(&L, "RESEND_API_KEY"), NULL);
    /* Overridable so tests can point at a local stand-in for Resend's API. */
    c->resend_api_base = read_url(&L, "RESEND_API_BASE", "https://api.resend.com", false);
    const char *smtp = secret(&L, "SMTP_URL");
    if (smtp != NULL && strncasecmp(smtp, "smtp://", 7) != 0 &&
        strncasecmp(smtp, "smtps://", 8) != 0)
        problem(&L, "SMTP_URL must start with smtp:// or smtps://");
    c->smtp_url = dup_or(&L, smtp, NULL);
    /* A private relay's CA (PEM); by default the system's trust store verifies the relay. */
    const char *ca = text(&L, "SMTP_CA_FILE");
    if (ca != NULL && access(ca, R_OK) != 0)
        problem(&L, "SMTP_CA_FILE names a file that cannot be read");
    c->smtp_ca_file = dup_or(&L, ca, NULL);
    if (L.production && c->resend_api_key == NULL && smtp == NULL)
        problem(&L, "RESEND_API_KEY or SMTP_URL must be set in production (email delivery)");
    const char *from = text(&L, "MAIL_FROM");
    /* It becomes a header line: a CR or LF would let it add headers of its own. */
    if (from != NULL && has_control(from)) {
        problem(&L, "MAIL_FROM must not contain control characters");
        from = NULL;
    }
    c->mail_from = dup_or(&L, from, "defendable <no-reply@localhost>");
    c->mail_dir = dup_or(&L, text(&L, "MAIL_DIR"), ".mail");

    c->aws_access_key_id = dup_or(&L, text(&L, "AWS_ACCESS_KEY_ID"), NULL);
    c->aws_secret_access_key = dup_or(&L, secret(&L, "AWS_SECRET_ACCESS_KEY"), NULL);
    c->aws_endpoint_url_s3 =
        read_url(&L, "AWS_ENDPOINT_URL_S3", "https://fly.storage.tigris.dev", false);
    c->aws_region = dup_or(&L, text(&L, "AWS_REGION"), "auto");
    c->tigris_bucket = dup_or(&L, text(&L, "TIGRIS_BUCKET"), "defendable-cloud");
    /* Tigris and AWS serve both; path style is what local S3-compatible servers understand. */
    const char *style = text(&L, "AWS_S3_ADDRESSING_STYLE");
    if (style != NULL && strcmp(style, "virtual") != 0 && strcmp(style, "path") != 0)
        problem(&L, "AWS_S3_ADDRESSING_STYLE must be virtual or path");
    c->s3_path_style = style != NULL && strcmp(style, "path") == 0;
    /* A download link is a bearer credential for the object: short-lived by rule (seed 001). */
    c->dataset_url_ttl_seconds = read_int(&L, "DATASET_URL_TTL_SECONDS", 1, 900, 900,
                                          "an integer from 1 to 900 (15 minutes)");

    c->internal_api_key = read_token(&L, "INTERNAL_API_KEY");
    const char *cidrs = text(&L, "INTERNAL_ALLOW_CIDRS");
    for_each_item(&L, "INTERNAL_ALLOW_CIDRS", cidrs != NULL ? cidrs : DEFAULT_INTERNAL_ALLOW,
                  cidr_item, c);
    c->runner_token = read_token(&L, "RUNNER_TOKEN");
    c->internal_api_key_previous = read_previous(&L, "INTERNAL_API_KEY", c->internal_api_key, true);
    c->runner_token_previous = read_previous(&L, "RUNNER_TOKEN", c->runner_token, true);

    c->stripe_api_key = dup_or(&L, secret(&L, "STRIPE_API_KEY"), NULL);
    c->stripe_webhook_secret = dup_or(&L, secret(&L, "STRIPE_WEBHOOK_SECRET"), NULL);
    /* Stripe's own rotation keeps the old endpoint secret valid for up to 24 hours */
    c->stripe_webhook_secret_previous =
        read_previous(&L, "STRIPE_WEBHOOK_SECRET", c->stripe_webhook_secret, false);
    c->stripe_price_id = dup_or(&L, text(&L, "STRIPE_PRICE_ID"), NULL);
    /* Overridable so tests can point at a local Stripe mock, which speaks plain http. */
    c->stripe_api_base = read_url(&L, "STRIPE_API_BASE", "https://api.stripe.com", false);

    /* The origin is the first line of every signed checkpoint (C2SP tlog-checkpoint), which
     * forbids spaces there; '+' is refused too since it separates fields in note key names. */
    const char *origin = text(&L, "LEDGER_ORIGIN");
    if (origin != NULL && (has_control(origin) || strpbrk(origin, " +") != NULL)) {
        problem(&L, "LEDGER_ORIGIN must not contain spaces, control characters or +");
        origin = NULL;
    } else if (origin == NULL && L.production) {
        warning(&L, "LEDGER_ORIGIN is not set: checkpoints are signed for the origin localhost");
    }
    c->ledger_origin = dup_or(&L, origin, "localhost");

    const char *key = text(&L, "LEDGER_SIGNING_KEY");
    if (key == NULL) {
        if (L.production)
            problem(&L, "LEDGER_SIGNING_KEY must be set in production");
    } else if (!readable_file(key)) {
        problem(&L, "LEDGER_SIGNING_KEY names a file that cannot be read");
    }
    c->ledger_signing_key = dup_or(&L, key, NULL);
    /* a file, so a key rotation can publish the retired key with a reload */
    const char *previous_keys = secret(&L, "LEDGER_VERIFIER_KEYS_PREVIOUS");
    if (previous_keys != NULL)
        for_each_item(&L, "LEDGER_VERIFIER_KEYS_PREVIOUS", previous_keys, previous_vkey_item, c);

    if (L.oom)
        problem(&L, "the configuration could not be read: out of memory");
    for (size_t i = 0; i < L.file_values.n; i++) {
        OPENSSL_cleanse(L.file_values.items[i], strlen(L.file_values.items[i]));
        free(L.file_values.items[i]);
    }
    free(L.file_values.items);

    if (problems != NULL) {
        *problems = L.problems.items;
        *n_problems = L.problems.n;
    } else {
        gw_config_free_list(L.problems.items, L.problems.n);
    }
    if (warnings != NULL) {
        *warnings = L.warnings.items;
        *n_warnings = L.warnings.n;
    } else {
        gw_config_free_list(L.warnings.items, L.warnings.n);
    }
    return L.problems.n == 0 && !L.oom;
}

/* Every string is wiped, not only the obvious secrets: connection strings and URLs can carry
 * passwords, and wiping the rest costs nothing at shutdown. */
static void
wipe_free(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

void
gw_config_free(gw_config *c)
{
    if (c == NULL)
        return;
    char *strings[] = {
        c->env,
        c->database_url,
        c->database_read_url,
        c->api_base_url,
        c->app_base_url,
        c->resend_api_key,
        c->resend_api_base,
        c->smtp_url,
        c->smtp_ca_file,
        c->mail_from,
        c->mail_dir,
        c->aws_access_key_id,
        c->aws_secret_access_key,
        c->aws_endpoint_url_s3,
        c->aws_region,
        c->tigris_bucket,
        c->internal_api_key,
        c->internal_api_key_previous,
        c->runner_token,
        c->runner_token_previous,
        c->stripe_api_key,
        c->stripe_webhook_secret,
        c->stripe_webhook_secret_previous,
        c->stripe_price_id,
        c->stripe_api_base,
        c->ledger_origin,
        c->ledger_signing_key,
        c->log_level,
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        wipe_free(strings[i]);
    if (c->jwt_secret != NULL) {
        OPENSSL_cleanse(c->jwt_secret, c->jwt_secret_len);
        free(c->jwt_secret);
    }
    if (c->jwt_secret_previous != NULL) {
        OPENSSL_cleanse(c->jwt_secret_previous, c->jwt_secret_previous_len);
        free(c->jwt_secret_previous);
    }
    for (size_t i = 0; i < c->n_cors_origins; i++)
        free(c->cors_origins[i]);
    free(c->cors_origins);
    free(c->internal_allow);
    for (size_t i = 0; i < c->n_ledger_verifier_keys_previous; i++)
        free(c->ledger_verifier_keys_previous[i]);
    free(c->ledger_verifier_keys_previous);
    /* Leaves a zeroed struct, so a second free (or a free after a failed load) is harmless. */
    memset(c, 0, sizeof *c);
}

void
gw_config_free_list(char **list, size_t n)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

bool
gw_cidr_parse(const char *s, gw_cidr *out)
{
    char buf[INET6_ADDRSTRLEN];
    gw_cidr net;
    int max;
    if (s == NULL || out == NULL)
        return false;
    const char *slash = strchr(s, '/');
    size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof buf)
        return false;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    memset(&net, 0, sizeof net);
    /* inet_pton is strict (no "1.2.3", no octal, no zone ids): exactly what an allowlist wants. */
    if (inet_pton(AF_INET, buf, net.addr) == 1) {
        net.family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, net.addr) == 1) {
        net.family = AF_INET6;
        max = 128;
    } else {
        return false;
    }
    if (slash == NULL) {
        net.prefix = max;
    } else {
        const char *d = slash + 1;
        int prefix = 0;
        size_t i = 0;
        for (; d[i] != '\0'; i++) {
            if (!is_digit(d[i]) || i >= 3)
                return false;
            prefix = prefix * 10 + (d[i] - '0');
        }
        if (i == 0 || prefix > max)
            return false;
        net.prefix = prefix;
    }
    /* Clear host bits so the stored network is canonical ("10.1.2.3/8" is 10.0.0.0/8). */
    for (int bit = net.prefix; bit < max; bit++)
        net.addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    *out = net;
    return true;
}

/* True when the first bits bits of a and b are equal. */
static bool
prefix_equal(const uint8_t *a, const uint8_t *b, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

bool
gw_cidr_match(const gw_cidr *list, size_t n, const struct sockaddr *addr)
{
    static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uint8_t v4[4], v6[16];
    bool has4 = false, has6 = false;
    if (addr == NULL || list == NULL)
        return false;
    /* Both forms of the address are derived, so an IPv4 client matches an IPv4 network whether
     * it arrived on an AF_INET socket or as ::ffff:a.b.c.d on a dual-stack one (and a network
     * written as ::ffff:0:0/96 matches either way too). memcpy, not a cast: the caller's
     * buffer need not be aligned for the specific sockaddr type. */
    if (addr->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, addr, sizeof sin);
        memcpy(v4, &sin.sin_addr, 4);
        memcpy(v6, mapped_prefix, 12);
        memcpy(v6 + 12, v4, 4);
        has4 = has6 = true;
    } else if (addr->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, addr, sizeof sin6);
        memcpy(v6, &sin6.sin6_addr, 16);
        has6 = true;
        if (memcmp(v6, mapped_prefix, 12) == 0) {
            memcpy(v4, v6 + 12, 4);
            has4 = true;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const gw_cidr *net = &list[i];
        if (net->family == AF_INET && has4 && net->prefix >= 0 && net->prefix <= 32 &&
            prefix_equal(net->addr, v4, net->prefix))
            return true;
        if (net->family == AF_INET6 && has6 && net->prefix >= 0 && net->prefix <= 128 &&
            prefix_equal(net->addr, v6, net->prefix))
            return true;
    }
    return false;
}
