/*
 * body.c: the one body-spec parser. A handler declares its fields (name, type, required,
 * bounds); the body must be an object with no other members. Text forms of the values are
 * handed to SQL as parameters, never spliced into statements.
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool
gw_text_is_uuid(const char *s)
{
    static const char pattern[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

    if (s == NULL || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];

        if (pattern[i] == '-'
                ? c != '-'
                : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

bool
gw_param_uuid(gw_req *r, int index, char out[37])
{
    if (index >= r->n_params || !gw_text_is_uuid(r->params[index])) {
        gw_reply_problem(r, GW_P_NOT_FOUND, NULL);
        return false;
    }
    for (int i = 0; i < 37; i++)
        out[i] = (char)(r->params[index][i] >= 'A' && r->params[index][i] <= 'F'
                            ? r->params[index][i] - 'A' + 'a'
                            : r->params[index][i]);
    return true;
}

const char *
gw_bearer_token(const char *authorization)
{
    const char *h = authorization;

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

static bool
fail(gw_req *r, const char *fmt, const char *name)
{
    char detail[200];

    snprintf(detail, sizeof detail, fmt, name);
    gw_reply_problem(r, GW_P_INVALID, detail);
    return false;
}

bool
gw_parse_body(gw_req *r, const gw_field *spec, size_t n, char **values)
{
    const char *key;
    json_t *v;

    for (size_t i = 0; i < n; i++)
        values[i] = NULL;
    if (r->json == NULL || !json_is_object(r->json)) {
        gw_reply_problem(r, GW_P_BAD_JSON, "The body must be one JSON object.");
        return false;
    }
    json_object_foreach(r->json, key, v)
    {
        bool known = false;

        for (size_t i = 0; i < n; i++)
            known |= strcmp(spec[i].name, key) == 0;
        if (!known) {
            char safe[64];

            snprintf(safe, sizeof safe, "%.40s", key);
            for (char *p = safe; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == '"')
                    *p = '?';
            return fail(r, "Unknown member \"%s\".", safe);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const gw_field *f = &spec[i];

        v = json_object_get(r->json, f->name);
        if (v == NULL || json_is_null(v)) {
            if (f->required) {
                gw_spec_free(values, n);
                return fail(r, "Member \"%s\" is required.", f->name);
            }
            continue;
        }
        switch (f->type) {
        case GW_STR:
        case GW_EMAIL:
        case GW_UUID: {
            const char *s = json_string_value(v);
            size_t len = s ? json_string_length(v) : 0;

            if (!json_is_string(v) || strlen(s) != len) { /* no embedded NUL */
                gw_spec_free(values, n);
                return fail(r, "Member \"%s\" must be a string.", f->name);
            }
            if ((long)len < f->min || (long)len > f->max ||
                (f->type == GW_EMAIL && (strchr(s, '@') == NULL || len > 254)) ||
                (f->type == GW_UUID && !gw_text_is_uuid(s))) {
                gw_spec_free(values, n);
                return fail(r, "Member \"%s\" has an invalid value.", f->name);
            }
            values[i] = strdup(s);
            break;
        }
        case GW_INT: {
            char num[32];

            if (!json_is_integer(v) || json_integer_value(v) < f->min ||
                json_integer_value(v) > f->max) {
                gw_spec_free(values, n);
                return fail(r, "Member \"%s\" must be an integer in range.", f->name);
            }
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
            values[i] = strdup(num);
            break;
        }
        case GW_OBJECT:
            if (!json_is_object(v) || (long)json_object_size(v) > f->max) {
                gw_spec_free(values, n);
                return fail(r, "Member \"%s\" must be an object.", f->name);
            }
            values[i] = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            break;
        case GW_STR_ARRAY: {
            size_t idx;
            json_t *item;

            if (!json_is_array(v) || (long)json_array_size(v) > f->max) {
                gw_spec_free(values, n);
                return fail(r, "Member \"%s\" must be an array of strings.", f->name);
            }
            json_array_foreach(v, idx, item) if (!json_is_string(item))
            {
                gw_spec_free(values, n);
                return fail(r, "Member \"%s\" must be an array of strings.", f->name);
            }
            values[i] = json_dumps(v, JSON_COMPACT);
            break;
        }
        }
        if (values[i] == NULL) {
            gw_spec_free(values, n);
            gw_reply_problem(r, GW_P_INTERNAL, NULL);
            return false;
        }
    }
    return true;
}

void
gw_spec_free(char **values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(values[i]);
        values[i] = NULL;
    }
}
