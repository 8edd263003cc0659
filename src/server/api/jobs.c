/*
 * jobs.c - the producer's resource: create, list, show, cancel, retry and
 * delete jobs. A user acts within their own jobs only (q->scope); another
 * user's job answers exactly like a missing one.
 */
#include "server/api/api.h"

#include <stdlib.h>
#include <string.h>

enum {
    PRIORITY_LIM = 1000,
    DELAY_MAX_MS_DAYS = 365,
};
#define DELAY_MAX_MS ((int64_t)DELAY_MAX_MS_DAYS * 86400000)
#define TTL_MIN_MS 1000
#define TTL_MAX_MS ((int64_t)30 * 86400000)

/* Replies with one job; frees it. */
static void reply_job(struct req *q, int status, struct job *j, bool lease)
{
    reply_json(q, status, api_job_json(j, lease));
    job_fini(j);
}

/* Reads run_at / delay_ms and expires_at / ttl_ms into in (relative to now). */
static bool parse_times(struct req *q, json_t *b, struct job_new *in)
{
    int64_t now = q->sc.now_ms, delay = -1, ttl = q->d->cfg.ttl_ms, at = 0, exp = 0;
    if (!want_time(q, b, "run_at", &at) || !want_int(q, b, "delay_ms", 0, DELAY_MAX_MS, &delay) ||
        !want_time(q, b, "expires_at", &exp) ||
        !want_int(q, b, "ttl_ms", TTL_MIN_MS, TTL_MAX_MS, &ttl))
        return false;
    if (at && delay >= 0) {
        reply_err(q, JQ_E_INVALID, "delay_ms", "give run_at or delay_ms, not both");
        return false;
    }
    if (exp && json_object_get(b, "ttl_ms")) {
        reply_err(q, JQ_E_INVALID, "ttl_ms", "give expires_at or ttl_ms, not both");
        return false;
    }
    in->run_at = at ? at : now + (delay > 0 ? delay : 0);   /* a past run_at is kept: it
                                                              * orders the job among peers */
    in->expires_at = exp ? exp : (in->run_at > now ? in->run_at : now) + ttl;
    if (in->expires_at <= in->run_at) {
        reply_err(q, JQ_E_INVALID, "expires_at", "expires_at must be after run_at");
        return false;
    }
    return true;
}

void api_jobs_create(struct req *q)
{
    static const char *const allowed[] = {"type", "queue", "params", "priority", "run_at",
        "delay_ms", "max_attempts", "ttl_ms", "expires_at", NULL};
    json_t *b = api_body(q, allowed);
    if (!b)
        return;
    struct job_new in = {.user_id = q->who.user_id, .queue = "default"};
    int64_t prio = 0, attempts = q->d->cfg.max_attempts;
    char *params = NULL;
    if (want_name(q, b, "type", true, &in.type) && want_name(q, b, "queue", false, &in.queue) &&
        want_json(q, b, "params", true, PARAMS_MAX, &params) &&
        want_int(q, b, "priority", -PRIORITY_LIM, PRIORITY_LIM, &prio) &&
        want_int(q, b, "max_attempts", 1, 100, &attempts) && parse_times(q, b, &in)) {
        in.params = params ? params : "{}";
        in.priority = (int)prio;
        in.max_attempts = (int)attempts;
        struct job j;
        jq_err err = store_create(q->d->st, &q->sc, &in, &j);
        if (err)
            api_store_err(q, err);
        else
            reply_job(q, 201, &j, false);
    }
    free(params);
    json_decref(b);
}

static bool list_filter(struct req *q, struct job_filter *f)
{
    static const char *const allowed[] = {"status", "type", "queue", "order", "limit",
                                          "offset", NULL};
    int64_t limit = 50, offset = 0;
    const char *status = req_query(q, "status"), *order = req_query(q, "order");
    if (!req_query_only(q, allowed) || !query_int(q, "limit", 1, PAGE_MAX, &limit) ||
        !query_int(q, "offset", 0, OFFSET_MAX, &offset))
        return false;
    *f = (struct job_filter){.user_id = q->scope, .status = -1, .type = req_query(q, "type"),
                             .queue = req_query(q, "queue"), .limit = (int)limit,
                             .offset = (int)offset, .want_total = true};
    enum job_status s;
    if (status && !job_status_parse(status, &s)) {
        reply_err(q, JQ_E_INVALID, "status",
                  "status must be pending, processing, completed, failed or cancelled");
        return false;
    }
    f->status = status ? (int)s : -1;
    if (order && strcmp(order, "asc") && strcmp(order, "desc")) {
        reply_err(q, JQ_E_INVALID, "order", "order must be asc or desc");
        return false;
    }
    f->asc = order && strcmp(order, "asc") == 0;
    if ((f->type && !valid_name(f->type)) || (f->queue && !valid_name(f->queue))) {
        reply_err(q, JQ_E_INVALID, f->type && !valid_name(f->type) ? "type" : "queue",
                  "not a valid name");
        return false;
    }
    return true;
}

void api_jobs_list(struct req *q)
{
    struct job_filter f;
    if (!list_filter(q, &f))
        return;
    struct job_list l = {0};
    jq_err err = store_list(q->d->st, &q->sc, &f, &l);
    if (err) {
        api_store_err(q, err);
        return;
    }
    json_t *jobs = json_array();
    for (int i = 0; i < l.n; i++)
        json_array_append_new(jobs, api_job_json(&l.jobs[i], false));
    reply_json(q, 200, json_pack("{s:o, s:I, s:i, s:i}", "jobs", jobs, "total_count",
                                 (json_int_t)l.total, "limit", f.limit, "offset", f.offset));
    job_list_fini(&l);
}

void api_jobs_show(struct req *q)
{
    struct job j;
    if (!want_job_id(q, q->params[0]))
        return;
    jq_err err = store_get(q->d->st, &q->sc, q->params[0], q->scope, &j);
    if (err)
        api_store_err(q, err);
    else
        reply_job(q, 200, &j, false);
}

typedef jq_err (*move_fn)(store *, struct sctx *, const char *, const char *, struct job *);

static void move(struct req *q, move_fn fn)
{
    static const char *const none[] = {NULL};
    if (!want_job_id(q, q->params[0]))
        return;
    json_t *b = api_body(q, none);
    if (!b)
        return;
    json_decref(b);
    struct job j;
    jq_err err = fn(q->d->st, &q->sc, q->params[0], q->scope, &j);
    if (err)
        api_store_err(q, err);
    else
        reply_job(q, 200, &j, false);
}

void api_jobs_cancel(struct req *q)
{
    move(q, store_cancel);
}

void api_jobs_retry(struct req *q)
{
    move(q, store_retry);
}

void api_jobs_delete(struct req *q)
{
    if (!want_job_id(q, q->params[0]))
        return;
    jq_err err = store_remove(q->d->st, &q->sc, q->params[0], q->scope);
    if (err)
        api_store_err(q, err);
    else
        reply_empty(q, 204);
}
