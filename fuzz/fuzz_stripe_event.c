/*
 * fuzz_stripe_event: the webhook event body (gw_stripe_event_parse in stripe.c), read after
 * its signature verified.
 *
 * Invariant: the result is exactly what stripe.h documents, derived here from jansson's
 * reading of the same bytes: refused unless an object with non-empty string id and type, data
 * and data.object objects (or absent/null), and for checkout.session.completed and
 * customer.subscription.* events the named members strings or null and the period end a
 * non-negative integer or null (top-level, else the latest of items.data[]); accepted events
 * carry exactly those members, and a refused one leaves nothing to free.
 */
#include "../gateway/stripe.h"
#include "fuzz_check.h"

#include <jansson.h>
#include <stdint.h>
#include <string.h>

/* A member that must be a string or null/absent: false when it is anything else. */
static bool
str_member(json_t *o, const char *key, const char **out)
{
    json_t *v = json_object_get(o, key);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v))
        return false;
    *out = json_string_value(v);
    return true;
}

static bool
time_member(json_t *o, const char *key, int64_t *out, bool *found)
{
    json_t *v = json_object_get(o, key);

    *found = false;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = json_integer_value(v);
    *found = true;
    return true;
}

static void
same(const char *got, const char *want, const char *what)
{
    FUZZ_CHECK((got == NULL) == (want == NULL) && (got == NULL || strcmp(got, want) == 0), what);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_stripe_event ev;
    json_t *root, *d, *obj = NULL;
    const char *id = NULL, *type = NULL, *org = NULL, *cus = NULL, *sub = NULL, *status = NULL;
    int64_t end = 0;
    bool ok, want = false, found;

    if (size > 65536)
        return 0;
    ok = gw_stripe_event_parse((const char *)data, size, &ev);

    root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(root) && str_member(root, "id", &id) && str_member(root, "type", &type) &&
        id != NULL && type != NULL && id[0] && type[0]) {
        d = json_object_get(root, "data");
        want = true;
        if (d != NULL && !json_is_null(d)) {
            obj = json_is_object(d) ? json_object_get(d, "object") : NULL;
            if (!json_is_object(d) || (obj != NULL && !json_is_null(obj) && !json_is_object(obj)))
                want = false;
            if (json_is_null(obj))
                obj = NULL;
        }
        if (want && obj != NULL && strcmp(type, "checkout.session.completed") == 0) {
            want = str_member(obj, "client_reference_id", &org) &&
                   str_member(obj, "customer", &cus) && str_member(obj, "subscription", &sub);
        } else if (want && obj != NULL && strncmp(type, "customer.subscription.", 22) == 0) {
            want = str_member(obj, "id", &sub) && str_member(obj, "customer", &cus) &&
                   str_member(obj, "status", &status) &&
                   time_member(obj, "current_period_end", &end, &found);
            if (want && !found) {
                json_t *items = json_object_get(obj, "items"), *list, *item;
                size_t i;

                end = 0;
                if (items != NULL && !json_is_null(items)) {
                    list = json_is_object(items) ? json_object_get(items, "data") : NULL;
                    if (!json_is_object(items) ||
                        (list != NULL && !json_is_null(list) && !json_is_array(list)))
                        want = false;
                    else if (json_is_array(list))
                        json_array_foreach(list, i, item)
                        {
                            int64_t e = 0;

                            if (!json_is_object(item) ||
                                !time_member(item, "current_period_end", &e, &found)) {
                                want = false;
                                break;
                            }
                            if (found && e > end)
                                end = e;
                        }
                }
            }
        }
    }
    FUZZ_CHECK(ok == want, "event accepted or refused against the documented rules");
    if (ok) {
        same(ev.id, id, "id");
        same(ev.type, type, "type");
        same(ev.org_id, org, "org_id");
        same(ev.customer, cus, "customer");
        same(ev.subscription, sub, "subscription");
        same(ev.status, status, "status");
        FUZZ_CHECK(ev.period_end == end, "period_end");
    } else {
        FUZZ_CHECK(ev.id == NULL && ev.type == NULL && ev.org_id == NULL && ev.customer == NULL &&
                       ev.subscription == NULL && ev.status == NULL && ev.period_end == 0,
                   "a refused event is not zeroed");
    }
    gw_stripe_event_free(&ev);
    json_decref(root);
    return 0;
}
