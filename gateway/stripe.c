/*
 * stripe.c: Stripe webhook signatures, the Checkout Session form body and webhook event fields
 * (see stripe.h).
 *
 * Verification reads the header once, left to right, without allocating: the header is bounded
 * (GW_STRIPE_MAX_HEADER) and so is the number of entries (GW_STRIPE_MAX_ENTRIES), so the
 * candidate signatures are pointers into the caller's text held in a fixed array. The HMAC is
 * streamed over "<t>", "." and the payload, so the payload (up to the gateway's 1 MiB body limit)
 * is never copied.
 */
#include "stripe.h"

#include "core/dfd_core.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>

#define MAC_LEN 32     /* HMAC-SHA-256 */
#define MAC_HEX_LEN 64 /* what a v1 value is: lower-case hex of the MAC */
/* int64 has 19 decimal digits; a longer t cannot fit and is refused before any arithmetic */
#define T_MAX_DIGITS 19

const char *
gw_stripe_status_text(gw_stripe_status st)
{
    switch (st) {
    case GW_STRIPE_OK:
        return "ok";
    case GW_STRIPE_MALFORMED:
        return "malformed signature header";
    case GW_STRIPE_NO_SIGNATURE:
        return "no v1 signature";
    case GW_STRIPE_MISMATCH:
        return "signature mismatch";
    case GW_STRIPE_TOO_OLD:
        return "timestamp outside tolerance";
    }
    return "unknown status";
}

/* ---- signature verification -------------------------------------------------------------- */

/*
 * The decimal text of t, strictly: digits only, no sign, no leading zero (except "0" itself),
 * at most int64. Refusing leading zeros matters because Stripe's libraries sign the number
 * re-rendered in decimal while we sign the text received; with one spelling per number the two
 * are the same bytes.
 */
static bool
parse_timestamp(const char *s, size_t len, int64_t *out)
{
    uint64_t v = 0;

    if (len == 0 || len > T_MAX_DIGITS || (s[0] == '0' && len > 1))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        /* 19 digits fit in uint64 without wrapping, so one range check at the end suffices */
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

/*
 * A v1 value Stripe could have written: exactly 64 lower-case hex digits. The length is what
 * makes the fixed-size comparison below safe; the character check only keeps values that could
 * never match (upper case, junk) out of the candidate list, since the expected text is lower
 * case either way.
 */
static bool
is_lower_hex_mac(const char *s, size_t len)
{
    if (len != MAC_HEX_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

/* Lower-case hex of HMAC-SHA256(secret, t "." payload), streamed so the payload is not copied. */
static bool
signature_hex(EVP_MAC_CTX *ctx, const char *secret, size_t secret_len, const char *t, size_t t_len,
              const char *payload, size_t payload_len, char hex[MAC_HEX_LEN])
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;

    /* EVP_MAC_init with a key resets the context, so one context serves every secret */
    if (!EVP_MAC_init(ctx, (const unsigned char *)secret, secret_len, params) ||
        !EVP_MAC_update(ctx, (const unsigned char *)t, t_len) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        (payload_len > 0 && !EVP_MAC_update(ctx, (const unsigned char *)payload, payload_len)) ||
        !EVP_MAC_final(ctx, mac, &mac_len, sizeof mac) || mac_len != MAC_LEN)
        return false;
    dfd_hex_encode(mac, MAC_LEN, hex);
    return true;
}

gw_stripe_status
gw_stripe_verify(const char *header, const char *payload, size_t payload_len,
                 const char *const *secrets, size_t n_secrets, int64_t now, int64_t tolerance)
{
    const char *cand[GW_STRIPE_MAX_ENTRIES]; /* well-formed v1 values, MAC_HEX_LEN chars each */
    size_t n_cand = 0, n_entries = 0, len, t_len = 0;
    const char *t_text = NULL;
    int64_t t = 0;
    bool have_v1 = false, matched = false;
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx;

    if (header == NULL || (payload == NULL && payload_len > 0))
        return GW_STRIPE_MALFORMED;
    /* strnlen so an over-long header is refused without reading all of it */
    len = strnlen(header, GW_STRIPE_MAX_HEADER + 1);
    if (len == 0 || len > GW_STRIPE_MAX_HEADER)
        return GW_STRIPE_MALFORMED;

    for (size_t pos = 0; pos <= len;) {
        const char *entry = header + pos, *comma = memchr(entry, ',', len - pos), *eq;
        size_t elen = comma != NULL ? (size_t)(comma - entry) : len - pos;
        size_t klen, vlen;

        if (++n_entries > GW_STRIPE_MAX_ENTRIES)
            return GW_STRIPE_MALFORMED;
        /* Every entry is key=value with a non-empty key; ",," or a trailing ',' is not a
         * header Stripe writes, and "v1" alone (no '=') is ambiguous, so all are refused. */
        eq = memchr(entry, '=', elen);
        if (eq == NULL || eq == entry)
            return GW_STRIPE_MALFORMED;
        klen = (size_t)(eq - entry);
        vlen = elen - klen - 1;
        if (klen == 1 && entry[0] == 't') {
            /* two timestamps would leave open which one was signed: refuse, not pick one */
            if (t_text != NULL || !parse_timestamp(eq + 1, vlen, &t))
                return GW_STRIPE_MALFORMED;
            t_text = eq + 1;
            t_len = vlen;
        } else if (klen == 2 && entry[0] == 'v' && entry[1] == '1') {
            have_v1 = true;
            /* An unreadable v1 (wrong length, upper case, junk) is skipped like Stripe's
             * libraries do, so one bad value does not hide a good one next to it. The array
             * cannot overflow: it has one slot per permitted entry. */
            if (is_lower_hex_mac(eq + 1, vlen))
                cand[n_cand++] = eq + 1;
        }
        /* v0 and any other scheme are ignored: only v1 is HMAC-SHA256 with the secret */
        pos += elen + 1;
    }
    if (t_text == NULL)
        return GW_STRIPE_MALFORMED;
    if (!have_v1)
        return GW_STRIPE_NO_SIGNATURE;
    if (n_cand == 0 || secrets == NULL)
        return GW_STRIPE_MISMATCH;

    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    if (ctx != NULL) {
        for (size_t i = 0; i < n_secrets; i++) {
            char expected[MAC_HEX_LEN];

            /* An empty key would make a signature anyone can compute: never accept it. */
            if (secrets[i] == NULL || secrets[i][0] == '\0')
                continue;
            if (!signature_hex(ctx, secrets[i], strlen(secrets[i]), t_text, t_len, payload,
                               payload_len, expected)) {
                matched = false; /* fail closed if OpenSSL fails half-way */
                break;
            }
            /* every candidate is compared (no early exit) and each comparison is
             * constant-time, so timing says nothing about which bytes matched */
            for (size_t j = 0; j < n_cand; j++)
                matched |= dfd_ct_equal(expected, cand[j], MAC_HEX_LEN);
        }
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    if (!matched)
        return GW_STRIPE_MISMATCH;

    if (tolerance > 0) {
        /* |now - t| in uint64, where it cannot overflow whatever the two int64 values are */
        uint64_t age = now >= t ? (uint64_t)now - (uint64_t)t : (uint64_t)t - (uint64_t)now;

        /* Stripe's libraries only bound the past; a timestamp far in the future is refused
         * too, or a captured request signed with a future t would stay replayable for longer */
        if (age > (uint64_t)tolerance)
            return GW_STRIPE_TOO_OLD;
    }
    return GW_STRIPE_OK;
}

/* ---- Checkout Session form body ---------------------------------------------------------- */

/* RFC 3986 section 2.3 unreserved characters, the only bytes written as they are. Written out
 * rather than isalnum() so the locale cannot change the encoding. */
static bool
is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

char *
gw_stripe_checkout_form(const char *price_id, const char *org_id, const char *success_url,
                        const char *cancel_url, const char *customer_email)
{
    static const char hexdig[] = "0123456789ABCDEF";
    /* Keys carry literal brackets, as Stripe's own libraries send them; Stripe decodes both
     * forms the same, and the literal form is readable in logs. */
    const char *const keys[] = {
        "mode",        "line_items[0][price]", "line_items[0][quantity]", "client_reference_id",
        "success_url", "cancel_url",           "customer_email"};
    const char *const vals[] = {"subscription", price_id,   "1",           org_id,
                                success_url,    cancel_url, customer_email};
    size_t n = sizeof keys / sizeof keys[0], vlen[sizeof keys / sizeof keys[0]], total = 0;
    char *out, *p;

    /* an empty e-mail is no e-mail: Stripe would refuse "customer_email=" as invalid */
    if (customer_email == NULL || customer_email[0] == '\0')
        n--;
    for (size_t i = 0; i < n; i++) {
        if (vals[i] == NULL || vals[i][0] == '\0')
            return NULL;
        vlen[i] = strnlen(vals[i], GW_STRIPE_MAX_FORM_VALUE + 1);
        if (vlen[i] > GW_STRIPE_MAX_FORM_VALUE)
            return NULL;
        /* sizes first, so one exact allocation holds the body; the bounds above keep the sum
         * far from overflow (7 values of at most 3 * 5000 bytes) */
        total += (i > 0) + strlen(keys[i]) + 1;
        for (size_t j = 0; j < vlen[i]; j++)
            total += is_unreserved((unsigned char)vals[i][j]) ? 1 : 3;
    }
    out = malloc(total + 1);
    if (out == NULL)
        return NULL;
    p = out;
    for (size_t i = 0; i < n; i++) {
        size_t klen = strlen(keys[i]);

        if (i > 0)
            *p++ = '&';
        memcpy(p, keys[i], klen);
        p += klen;
        *p++ = '=';
        for (size_t j = 0; j < vlen[i]; j++) {
            unsigned char c = (unsigned char)vals[i][j];

            if (is_unreserved(c)) {
                *p++ = (char)c;
            } else {
                *p++ = '%';
                *p++ = hexdig[c >> 4];
                *p++ = hexdig[c & 0x0f];
            }
        }
    }
    *p = '\0';
    return out;
}

/* ---- webhook events ---------------------------------------------------------------------- */

/*
 * Copies obj[key] into *dst when it is a string. Absent and null leave *dst NULL (Stripe writes
 * null for an unset id, for instance a session without a customer); any other type is an event
 * we do not understand, so the caller refuses the whole event.
 */
static bool
take_string(json_t *obj, const char *key, char **dst)
{
    json_t *v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v))
        return false;
    /* jansson refuses \u0000 in strings unless asked to (JSON_ALLOW_NUL), so the length is
     * the C string length and strndup copies all of it */
    *dst = strndup(json_string_value(v), json_string_length(v));
    return *dst != NULL;
}

/*
 * Reads a Unix time member: absent or null leave *found false; a non-negative integer sets it;
 * anything else (a string, a real, a negative number) refuses the event.
 */
static bool
take_time(json_t *obj, const char *key, int64_t *dst, bool *found)
{
    json_t *v = json_object_get(obj, key);

    *found = false;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *dst = (int64_t)json_integer_value(v);
    *found = true;
    return true;
}

/*
 * The subscription's period end. Up to API version 2025-02-24 it is data.object
 * .current_period_end; from 2025-03-31.basil on it lives on each item
 * (items.data[].current_period_end), and with flexible billing items may differ. Then the
 * latest one is taken: the subscription is paid for as long as any item is.
 */
static bool
take_period_end(json_t *sub, int64_t *dst)
{
    json_t *items, *list, *item;
    size_t i;
    bool found;

    *dst = 0;
    if (!take_time(sub, "current_period_end", dst, &found))
        return false;
    if (found)
        return true;
    items = json_object_get(sub, "items");
    if (items == NULL || json_is_null(items))
        return true;
    if (!json_is_object(items))
        return false;
    list = json_object_get(items, "data");
    if (list == NULL || json_is_null(list))
        return true;
    if (!json_is_array(list))
        return false;
    json_array_foreach(list, i, item)
    {
        int64_t end = 0;

        if (!json_is_object(item) || !take_time(item, "current_period_end", &end, &found))
            return false;
        if (found && end > *dst)
            *dst = end;
    }
    return true;
}

static bool
has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool
gw_stripe_event_parse(const char *payload, size_t len, gw_stripe_event *out)
{
    json_t *root, *data, *obj = NULL;
    json_error_t err;
    bool ok = false;

    if (out == NULL)
        return false;
    memset(out, 0, sizeof *out);
    if (payload == NULL || len > GW_STRIPE_MAX_PAYLOAD)
        return false;
    /* Duplicate names refused: with {"type":"a","type":"b"} another reader of the same signed
     * bytes could act on a different event than we do. */
    root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL)
        return false;
    if (!json_is_object(root) || !take_string(root, "id", &out->id) ||
        !take_string(root, "type", &out->type) || out->id == NULL || out->type == NULL ||
        out->id[0] == '\0' || out->type[0] == '\0')
        goto done;

    data = json_object_get(root, "data");
    if (data != NULL && !json_is_null(data)) {
        if (!json_is_object(data))
            goto done;
        obj = json_object_get(data, "object");
        if (obj != NULL && json_is_null(obj))
            obj = NULL;
        if (obj != NULL && !json_is_object(obj))
            goto done;
    }

    if (obj != NULL && strcmp(out->type, "checkout.session.completed") == 0) {
        /* client_reference_id is the org id the gateway put in the checkout form */
        if (!take_string(obj, "client_reference_id", &out->org_id) ||
            !take_string(obj, "customer", &out->customer) ||
            !take_string(obj, "subscription", &out->subscription))
            goto done;
    } else if (obj != NULL && has_prefix(out->type, "customer.subscription.")) {
        if (!take_string(obj, "id", &out->subscription) ||
            !take_string(obj, "customer", &out->customer) ||
            !take_string(obj, "status", &out->status) || !take_period_end(obj, &out->period_end))
            goto done;
    }
    /* other event types: id and type are all the gateway needs (to acknowledge them) */
    ok = true;

done:
    json_decref(root);
    if (!ok)
        gw_stripe_event_free(out);
    return ok;
}

void
gw_stripe_event_free(gw_stripe_event *e)
{
    if (e == NULL)
        return;
    free(e->id);
    free(e->type);
    free(e->org_id);
    free(e->customer);
    free(e->subscription);
    free(e->status);
    memset(e, 0, sizeof *e);
}
