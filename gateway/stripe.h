/*
 * stripe.h: the Stripe pieces of the gateway: webhook signature verification, the form body of a
 * Checkout Session create request, and the few members of a webhook event the gateway acts on.
 *
 * Nothing here talks to the network or the database; the functions are pure so that the unit
 * test (test_stripe.c) can pin every rule, and the clock is passed in.
 */
#ifndef GW_STRIPE_H
#define GW_STRIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A Stripe-Signature header longer than this is refused unread (Stripe's own are ~200 bytes). */
#define GW_STRIPE_MAX_HEADER 4096
/* More comma-separated entries than this and the header is refused as malformed. */
#define GW_STRIPE_MAX_ENTRIES 32
/* Stripe's default replay window (seconds); the caller passes its own tolerance. */
#define GW_STRIPE_DEFAULT_TOLERANCE 300
/* Longest value gw_stripe_checkout_form encodes (Stripe caps URLs at 5000 characters). */
#define GW_STRIPE_MAX_FORM_VALUE 5000
/* Longest event payload gw_stripe_event_parse reads (the gateway's own body limit, 1 MiB). */
#define GW_STRIPE_MAX_PAYLOAD (1024 * 1024)

typedef enum gw_stripe_status {
    GW_STRIPE_OK = 0,
    GW_STRIPE_MALFORMED,    /* header unparsable: no t=, empty, non-numeric t, etc. */
    GW_STRIPE_NO_SIGNATURE, /* no v1 entry at all (v0 only, etc.) */
    GW_STRIPE_MISMATCH,     /* no v1 entry matches any secret */
    GW_STRIPE_TOO_OLD,      /* |now - t| > tolerance (tolerance <= 0 disables the check) */
} gw_stripe_status;

/* A short lower-case text for logs and problem details ("signature mismatch", ...). */
const char *gw_stripe_status_text(gw_stripe_status st);

/*
 * Verifies a Stripe-Signature header ("t=...,v1=...,v1=...,v0=...") over the raw payload bytes
 * exactly as received: expected = hex(HMAC-SHA256(secret, "<t>.<payload>")). Any v1 entry that
 * matches any of the n secrets is accepted (Stripe signs with the old and the new secret for up
 * to 24 h after a roll). NULL or empty secrets never match.
 *
 * The header grammar is Stripe's, read strictly (the libraries split on ',' and '=' and trim
 * nothing):
 *   - entries are separated by ',' with no whitespace; each is key=value split at the first '=';
 *     an empty entry, an entry without '=' or with an empty key makes the header MALFORMED;
 *   - exactly one t, whose value is 1..19 decimal digits without a leading zero (so the text
 *     signed is the text received) and fits in int64; anything else is MALFORMED;
 *   - keys other than t and v1 (v0, unknown schemes, " v1" with a space) are ignored;
 *   - a v1 value that is not 64 lower-case hex digits is kept as "a v1 entry" but can never
 *     match (Stripe emits lower case; an upper-case copy is not Stripe's text);
 *   - no v1 key at all gives NO_SIGNATURE.
 * The signature is checked before the timestamp, so TOO_OLD means "authentic but stale" (a
 * replay) and MISMATCH means "not from Stripe". Comparisons are constant-time. An internal
 * OpenSSL failure is reported as MISMATCH (fail closed).
 */
gw_stripe_status gw_stripe_verify(const char *header, const char *payload, size_t payload_len,
                                  const char *const *secrets, size_t n_secrets, int64_t now,
                                  int64_t tolerance);

/*
 * The application/x-www-form-urlencoded body of a Checkout Session create request
 * (POST /v1/checkout/sessions), in this order: mode=subscription, line_items[0][price],
 * line_items[0][quantity]=1, client_reference_id, success_url, cancel_url and, when
 * customer_email is neither NULL nor empty, customer_email. Values are percent-encoded byte by
 * byte (RFC 3986 unreserved A-Z a-z 0-9 - . _ ~ kept, every other byte %XX upper case, so a
 * space is %20, never '+'); the keys are written with literal brackets, as Stripe's libraries
 * send them. Returns malloc'd NUL-terminated text (free()), or NULL when a required argument is
 * NULL or empty, a value is longer than GW_STRIPE_MAX_FORM_VALUE, or memory runs out.
 */
char *gw_stripe_checkout_form(const char *price_id, const char *org_id, const char *success_url,
                              const char *cancel_url, const char *customer_email);

/*
 * The parts of a webhook event the gateway needs. Strings are malloc'd (release with
 * gw_stripe_event_free); a member the event does not carry (or carries as null) is NULL.
 *   id, type:   the event's own (always set on success);
 *   checkout.session.completed: org_id = data.object.client_reference_id,
 *               customer = data.object.customer, subscription = data.object.subscription;
 *   customer.subscription.*: subscription = data.object.id, customer = data.object.customer,
 *               status = data.object.status, period_end = data.object.current_period_end.
 * period_end is 0 when absent. From API version 2025-03-31.basil on, Stripe moved
 * current_period_end from the subscription to its items; when the top-level member is absent,
 * the latest data.object.items.data[].current_period_end is used instead.
 */
typedef struct gw_stripe_event {
    char *id, *type, *org_id, *customer, *subscription, *status;
    int64_t period_end;
} gw_stripe_event;

/*
 * Parses the raw (already verified) payload with jansson, refusing duplicate member names so
 * that what the gateway reads is the only reading of the signed bytes. Returns false, with *out
 * zeroed and nothing to free, for malformed JSON, a payload above GW_STRIPE_MAX_PAYLOAD, a
 * missing or empty id/type, or a member of the wrong type (a string member that is not a
 * string or null, data/data.object not objects, a period end that is not a non-negative
 * integer or null).
 */
bool gw_stripe_event_parse(const char *payload, size_t len, gw_stripe_event *out);
/* Frees the strings of *e and zeroes it; safe on a zeroed or NULL event. */
void gw_stripe_event_free(gw_stripe_event *e);

#endif /* GW_STRIPE_H */
