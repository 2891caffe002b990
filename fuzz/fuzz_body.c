/*
 * fuzz_body: JSON request bodies as the gateway reads them: json_loadb with duplicate names
 * refused (server.c's dispatch) and then gw_parse_body (body.c), the one body-spec parser every
 * JSON route goes through.
 *
 * The first input byte picks a field spec, the rest is the body. The specs are the handlers'
 * own tables (the files in handlers/), repeated here as data because the handlers keep them static.
 *
 * Invariants: a refused body gets exactly one problem and no value is left allocated; an
 * accepted body is an object with no member beyond the spec, every required member present,
 * and each value's text form is exactly the member, of its type and within its bounds (checked
 * here against the parsed JSON, not with body.c's code).
 */
#include "gw_stubs.h"
#include "fuzz_check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 5

typedef struct spec {
    const char *route;
    gw_field fields[MAX_FIELDS];
    size_t n;
} spec;

static const spec specs[] = {
    {"POST /auth/request", {{"email", GW_EMAIL, true, 3, 254}}, 1},
    {"POST /auth/verify", {{"token", GW_STR, true, 1, 200}}, 1},
    {"POST /billing/checkout",
     {{"success_url", GW_STR, false, 1, 2000}, {"cancel_url", GW_STR, false, 1, 2000}},
     2},
    {"POST /internal/datasets",
     {{"slug", GW_STR, true, 1, 64},
      {"title", GW_STR, true, 1, 200},
      {"storage_key", GW_STR, true, 1, 1024},
      {"size", GW_INT, true, 0, 1L << 50},
      {"sha256", GW_STR, true, 64, 64}},
     5},
    {"POST /orgs/{org}/api-keys", {{"name", GW_STR, true, 1, 100}}, 1},
    {"PATCH /orgs/{org}/members/{user}", {{"role", GW_STR, true, 1, 16}}, 1},
    {"POST /orgs/{org}/invites",
     {{"email", GW_EMAIL, true, 3, 254},
      {"role", GW_STR, false, 1, 16},
      {"ttl_hours", GW_INT, false, 1, 720}},
     3},
    {"POST /receipts",
     {{"kind", GW_STR, true, 1, 64},
      {"fields", GW_OBJECT, true, 0, 64},
      {"public_fields", GW_STR_ARRAY, false, 0, 64}},
     3},
    {"POST /receipts/{seq}/share", {{"ttl_hours", GW_INT, false, 1, 8784}}, 1},
    {"POST /internal/receipts",
     {{"org", GW_UUID, true, 36, 36},
      {"kind", GW_STR, true, 1, 64},
      {"fields", GW_OBJECT, true, 0, 64},
      {"public_fields", GW_STR_ARRAY, false, 0, 64}},
     4},
    {"POST /internal/runner/{id}/status",
     {{"runner", GW_STR, true, 1, 64},
      {"state", GW_STR, true, 1, 16},
      {"output_digest", GW_STR, false, 64, 64},
      {"detail", GW_STR, false, 0, 1000},
      {"lease_seconds", GW_INT, false, 10, 3600}},
     5},
    {"POST /runs", {{"kind", GW_STR, true, 1, 64}, {"input", GW_OBJECT, false, 0, 64}}, 2},
    {"POST /internal/runs",
     {{"org", GW_STR, true, 36, 36},
      {"kind", GW_STR, true, 1, 64},
      {"input", GW_OBJECT, false, 0, 64}},
     3},
    {"POST /internal/runner/claim",
     {{"runner", GW_STR, true, 1, 64},
      {"lease_seconds", GW_INT, false, 10, 3600},
      {"run_id", GW_STR, false, 36, 36}},
     3},
};

#define N_SPECS (sizeof specs / sizeof specs[0])

static void
check_value(const gw_field *f, json_t *member, const char *text)
{
    json_t *again;

    switch (f->type) {
    case GW_STR:
    case GW_EMAIL:
    case GW_UUID: {
        size_t len = strlen(text);

        FUZZ_CHECK(json_is_string(member), "a string field accepted a non-string");
        FUZZ_CHECK(len == json_string_length(member) &&
                       memcmp(text, json_string_value(member), len) == 0,
                   "string value is not the member's text");
        FUZZ_CHECK((long)len >= f->min && (long)len <= f->max, "string length out of bounds");
        FUZZ_CHECK(f->type != GW_EMAIL || strchr(text, '@') != NULL, "email without @");
        FUZZ_CHECK(f->type != GW_UUID || fuzz_uuid_shape(text), "uuid field accepted a non-UUID");
        break;
    }
    case GW_INT: {
        char *end;
        long long v = strtoll(text, &end, 10);

        FUZZ_CHECK(json_is_integer(member), "an integer field accepted a non-integer");
        FUZZ_CHECK(*end == '\0' && v == json_integer_value(member), "integer text");
        FUZZ_CHECK(v >= f->min && v <= f->max, "integer out of bounds");
        break;
    }
    case GW_OBJECT:
        again = json_loads(text, 0, NULL);
        FUZZ_CHECK(json_is_object(again) && json_equal(again, member),
                   "object value is not the member");
        FUZZ_CHECK((long)json_object_size(again) <= f->max, "object with too many members");
        json_decref(again);
        break;
    case GW_STR_ARRAY: {
        size_t i;
        json_t *item;

        again = json_loads(text, 0, NULL);
        FUZZ_CHECK(json_is_array(again) && json_equal(again, member),
                   "array value is not the member");
        FUZZ_CHECK((long)json_array_size(again) <= f->max, "array with too many items");
        json_array_foreach(again, i, item) FUZZ_CHECK(json_is_string(item), "non-string item");
        json_decref(again);
        break;
    }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gw_req r; /* large (path buffer): static, cleared per input */
    const spec *sp;
    char *values[MAX_FIELDS];
    json_error_t err;
    bool ok;

    if (size < 1 || size > 1 + 65536)
        return 0;
    sp = &specs[data[0] % N_SPECS];
    memset(&r, 0, sizeof r);
    replies = 0;
    /* as dispatch does: an empty body is an empty object, so required members are named */
    r.json = size == 1 ? json_object()
                       : json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, &err);
    ok = gw_parse_body(&r, sp->fields, sp->n, values);
    if (!ok) {
        FUZZ_CHECK(replies == 1, "a refused body did not get exactly one problem");
        for (size_t i = 0; i < sp->n; i++)
            FUZZ_CHECK(values[i] == NULL, "a refused body left a value allocated");
    } else {
        const char *name;
        json_t *member;

        FUZZ_CHECK(replies == 0, "an accepted body got a problem");
        FUZZ_CHECK(json_is_object(r.json), "accepted a body that is not an object");
        json_object_foreach(r.json, name, member)
        {
            bool known = false;

            for (size_t i = 0; i < sp->n; i++)
                known |= strcmp(sp->fields[i].name, name) == 0;
            FUZZ_CHECK(known, "accepted a member outside the spec");
        }
        for (size_t i = 0; i < sp->n; i++) {
            const gw_field *f = &sp->fields[i];

            member = json_object_get(r.json, f->name);
            if (member == NULL || json_is_null(member)) {
                FUZZ_CHECK(!f->required, "accepted a body without a required member");
                FUZZ_CHECK(values[i] == NULL, "a value for an absent member");
            } else {
                FUZZ_CHECK(values[i] != NULL, "no value for a present member");
                check_value(f, member, values[i]);
            }
        }
        gw_spec_free(values, sp->n);
    }
    json_decref(r.json);
    return 0;
}
