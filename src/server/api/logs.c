/*
 * logs.c - job logs: workers append under the lease; owners, workers and
 * admins read them oldest first, paged by log id.
 */
#include "server/api/api.h"

#include <stdlib.h>

static char *render_log(void *arg, int *status)
{
    *status = 201;
    return api_text(api_log_json(arg));
}

void api_logs_add(struct req *q)
{
    static const char *const allowed[] = {"lease_token", "level", "message", "metadata", NULL};
    json_t *b = api_body(q, allowed);
    if (!b)
        return;
    const char *lease = NULL, *level = "info", *message = NULL;
    char *meta = NULL;
    int lv = 0;
    if (want_job_id(q, q->params[0]) && want_str(q, b, "lease_token", true, 64, &lease) &&
        want_str(q, b, "level", false, 16, &level) &&
        want_str(q, b, "message", true, TEXT_MAX, &message) &&
        want_json(q, b, "metadata", true, METADATA_MAX, &meta)) {
        struct log_row r = {0};
        if (!job_log_level_parse(level, &lv)) {
            reply_err(q, JQ_E_INVALID, "level", "level must be debug, info, warning or error");
        } else {
            api_render_with(q, render_log, &r);
            api_finish(q, store_log_add(q->d->st, &q->sc, q->params[0], lease, lv, message,
                                        meta, &r), render_log, &r);
        }
        free(r.message);
        free(r.metadata);
    }
    free(meta);
    json_decref(b);
}

void api_logs_list(struct req *q)
{
    static const char *const allowed[] = {"level", "limit", "after", NULL};
    int64_t limit = 100, after = 0;
    int lv = 0;
    const char *level = req_query(q, "level");
    if (!want_job_id(q, q->params[0]) || !req_query_only(q, allowed) ||
        !query_int(q, "limit", 1, PAGE_MAX, &limit) ||
        !query_int(q, "after", 0, INT64_MAX, &after))
        return;
    if (level && !job_log_level_parse(level, &lv)) {
        reply_err(q, JQ_E_INVALID, "level", "level must be debug, info, warning or error");
        return;
    }
    struct log_list l;
    jq_err err = store_logs(q->d->st, &q->sc, q->params[0], q->scope, lv, after, (int)limit, &l);
    if (err) {
        api_store_err(q, err);
        return;
    }
    json_t *logs = json_array();
    for (int i = 0; i < l.n; i++)
        json_array_append_new(logs, api_log_json(&l.rows[i]));
    json_t *next = l.n == limit ? json_integer(l.rows[l.n - 1].id) : json_null();
    reply_json(q, 200, json_pack("{s:o, s:o}", "logs", logs, "next_after", next));
    log_list_fini(&l);
}
