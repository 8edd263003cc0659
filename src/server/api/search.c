/*
 * search.c - finding jobs by what is in them: JSON containment on params and
 * result (GET /v1/jobs?params=…&result=…), jobs whose logs match a full-text
 * query (GET /v1/jobs?log_q=…), and ranked full-text search over log lines
 * (GET /v1/logs/search). Queries are validated before they run: a malformed
 * one is a 400 naming the problem, never an SQL error.
 */
#include "server/api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "core/cursor.h"

enum { CONTAINS_MAX = 8 << 10, LOG_Q_MAX = 512, MATCH_MAX = 1024 };

/* True if v has at least one scalar leaf (an index term to start from). */
static bool has_leaf(const json_t *v)
{
    if (!json_is_object(v) && !json_is_array(v))
        return true;
    size_t i;
    const char *k;
    json_t *x;
    if (json_is_array(v)) {
        json_array_foreach(v, i, x)
            if (has_leaf(x))
                return true;
        return false;
    }
    json_object_foreach((json_t *)v, k, x)
        if (has_leaf(x))
            return true;
    return false;
}

bool search_containment(struct req *q, const char *name, char **out)
{
    const char *text = req_query(q, name);
    if (!text)
        return true;
    json_t *v = strlen(text) <= CONTAINS_MAX ? json_parse(text, strlen(text)) : NULL;
    if (!json_is_object(v) || !has_leaf(v)) {
        reply_err(q, JQ_E_INVALID, name, "%s must be a JSON object (at most %d bytes) with at "
                  "least one value to match, e.g. {\"customer\":\"acme\"}", name, CONTAINS_MAX);
        json_decref(v);
        return false;
    }
    *out = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    return *out != NULL;
}

/* Validates an FTS query and builds the MATCH expression: within the
 * caller's own log lines (u column) when scoped. */
bool search_log_match(struct req *q, const char *name, const char *text, char *out, size_t cap)
{
    char why[256];
    if (!text[0] || strlen(text) > LOG_Q_MAX) {
        reply_err(q, JQ_E_INVALID, name, "%s must be 1-%d characters", name, LOG_Q_MAX);
        return false;
    }
    jq_err err = store_log_query_ok(q->d->st, &q->sc, text, why, sizeof why);
    if (err == JQ_E_INVALID) {
        reply_err(q, err, name, "not a valid search query: %s", why);
        return false;
    } else if (err) {
        api_store_err(q, err);
        return false;
    }
    size_t n = 0;
    if (q->scope) {
        n = (size_t)snprintf(out, cap, "u : ");
        for (const char *u = q->scope; *u && n + 3 < cap; u++)
            n += (size_t)snprintf(out + n, cap - n, "%02X", (unsigned char)*u);
        n += (size_t)snprintf(out + n, cap - n, " AND ");
    }
    return snprintf(out + n, cap - n, "(%s)", text) < (int)(cap - n);
}

static json_t *hit_json(const struct log_hit *h)
{
    json_t *o = api_log_json(&h->row);
    json_object_set_new(o, "type", json_string(h->type));
    json_object_set_new(o, "snippet", json_string(h->snippet ? h->snippet : ""));
    return o;
}

static bool search_params(struct req *q, struct log_search *in, char *match, size_t cap)
{
    static const char *const allowed[] = {"q", "level", "job_id", "type", "since", "limit",
                                          "cursor", "metadata", NULL};
    const char *text = req_query(q, "q"), *level = req_query(q, "level");
    const char *since = req_query(q, "since"), *cursor = req_query(q, "cursor");
    int64_t limit = 50, offset = 0;
    *in = (struct log_search){.scope = q->scope, .job_id = req_query(q, "job_id"),
                              .type = req_query(q, "type")};
    if (!req_query_only(q, allowed) || !query_int(q, "limit", 1, PAGE_MAX, &limit))
        return false;
    if (!text)
        return reply_err(q, JQ_E_INVALID, "q", "q is required"), false;
    if (level && !job_log_level_parse(level, &in->level))
        return reply_err(q, JQ_E_INVALID, "level", "level must be debug, info, warning or error"),
               false;
    if ((in->job_id && !id_valid(in->job_id)) || (in->type && !valid_name(in->type)))
        return reply_err(q, JQ_E_INVALID, in->type && !valid_name(in->type) ? "type" : "job_id",
                         "not valid"), false;
    if (since && !time_parse(since, &in->since))
        return reply_err(q, JQ_E_INVALID, "since", "since must be an RFC 3339 time"), false;
    if (cursor && !cursor_decode_offset(cursor, &offset))
        return reply_err(q, JQ_E_INVALID, "cursor", "cursor is not valid"), false;
    in->limit = (int)limit;
    in->offset = (int)offset;
    in->q = match;
    return search_log_match(q, "q", text, match, cap);
}

void api_logs_search(struct req *q)
{
    struct log_search in;
    char match[MATCH_MAX], *meta = NULL;
    if (!search_params(q, &in, match, sizeof match) || !search_containment(q, "metadata", &meta))
        return;
    in.metadata_q = meta;
    struct log_hits h;
    jq_err err = store_log_search(q->d->st, &q->sc, &in, &h);
    free(meta);
    if (err) {
        api_store_err(q, err);
        return;
    }
    json_t *arr = json_array(), *next = json_null();
    for (int i = 0; i < h.n; i++)
        json_array_append_new(arr, hit_json(&h.hits[i]));
    if (h.n == in.limit) {
        char c[CURSOR_MAX];
        cursor_encode_offset(in.offset + in.limit, c);
        next = json_string(c);
    }
    reply_json(q, 200, json_pack("{s:o, s:o}", "logs", arr, "next_cursor", next));
    log_hits_fini(&h);
}
