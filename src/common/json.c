/* json.c - see json.h. */
#include "common/json.h"

#include <stdlib.h>

bool json_depth_ok(const char *buf, size_t len, int max)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_str) {
            if (c == '\\')
                i++;                 /* skip the escaped byte, whatever it is */
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                return false;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

/* --- allocation failures --- */

static _Thread_local bool oom_seen;         /* a jansson allocation failed on this thread */
static void *(*json_alloc)(size_t) = malloc;

static void *tracked_malloc(size_t n)
{
    void *p = json_alloc(n);
    if (!p)
        oom_seen = true;
    return p;
}

void json_track_oom(void *(*alloc)(size_t))
{
    json_alloc = alloc ? alloc : malloc;
    json_set_alloc_funcs(tracked_malloc, free);
}

bool json_oom_take(void)
{
    bool seen = oom_seen;
    oom_seen = false;
    return seen;
}

json_t *json_parse_oom(const char *buf, size_t len, bool *oom)
{
    *oom = false;
    if (!json_depth_ok(buf, len, JSON_DEPTH_MAX))
        return NULL;
    json_error_t e;
    bool before = json_oom_take();
    json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
    /* jansson may return a value anyway: its lexer drops a byte of a string it could not
     * grow (seen: a lease_token one character short, so a valid complete got 409) */
    *oom = json_oom_take() || (!v && json_error_code(&e) == json_error_out_of_memory);
    if (*oom) {
        json_decref(v);
        v = NULL;
    }
    oom_seen = before || *oom;
    return v;
}

json_t *json_parse(const char *buf, size_t len)
{
    bool oom;
    return json_parse_oom(buf, len, &oom);
}

char *json_dump_compact(const json_t *v)
{
    if (!v)
        return NULL;
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static bool scalar_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal((json_t *)a, (json_t *)b);
}

static bool array_contains(const json_t *doc, const json_t *query)
{
    size_t i, j;
    json_t *qv, *dv;
    json_array_foreach(query, i, qv) {
        bool found = false;
        json_array_foreach(doc, j, dv) {
            if ((found = json_contains(dv, qv)))
                break;
        }
        if (!found)
            return false;
    }
    return true;
}

bool json_contains(const json_t *doc, const json_t *query)
{
    if (json_is_object(query)) {
        const char *k;
        json_t *qv;
        if (!json_is_object(doc))
            return false;
        json_object_foreach((json_t *)query, k, qv) {
            json_t *dv = json_object_get(doc, k);
            if (!dv || !json_contains(dv, qv))
                return false;
        }
        return true;
    }
    if (json_is_array(query))
        return json_is_array(doc) && array_contains(doc, query);
    return !json_is_object(doc) && !json_is_array(doc) && scalar_equal(doc, query);
}
