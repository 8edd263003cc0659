/*
 * stats.c - libjobq GET /v1/stats: counts by status, per queue (depth, oldest pending age)
 * and per type (durations), read leniently into struct jobq_stats.
 */
#include <stdlib.h>
#include <string.h>

#include "client.h"

static void counts_from(const json_t *o, jobq_counts *c)
{
    c->pending = jobq__get_i64(o, "pending", 0);
    c->processing = jobq__get_i64(o, "processing", 0);
    c->completed = jobq__get_i64(o, "completed", 0);
    c->failed = jobq__get_i64(o, "failed", 0);
    c->cancelled = jobq__get_i64(o, "cancelled", 0);
    c->total = jobq__get_i64(o, "total", 0);
}

static double real_or(const json_t *o, const char *key, double dflt)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

void jobq_stats_free(jobq_stats *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nqueues; i++)
        free(s->queues[i].queue);
    for (size_t i = 0; i < s->ntypes; i++)
        free(s->types[i].type);
    free(s->queues);
    free(s->types);
    free(s);
}

/* Fills s->queues from the "queues" array. Returns false when out of memory. */
static bool queues_from(const json_t *arr, jobq_stats *s)
{
    size_t n = json_array_size(arr);
    bool ok = true;
    if (n == 0)
        return true;
    if (!(s->queues = calloc(n, sizeof *s->queues)))
        return false;
    for (; ok && s->nqueues < n; s->nqueues++) {
        const json_t *o = json_array_get(arr, s->nqueues);
        jobq_queue_stats *q = &s->queues[s->nqueues];
        q->queue = jobq__get_text(o, "queue", &ok);
        q->pending = jobq__get_i64(o, "pending", 0);
        q->processing = jobq__get_i64(o, "processing", 0);
        q->oldest_pending_age_ms = jobq__get_i64(o, "oldest_pending_age_ms", -1);
    }
    return ok;
}

/* Fills s->types from the "types" array. Returns false when out of memory. */
static bool types_from(const json_t *arr, jobq_stats *s)
{
    size_t n = json_array_size(arr);
    bool ok = true;
    if (n == 0)
        return true;
    if (!(s->types = calloc(n, sizeof *s->types)))
        return false;
    for (; ok && s->ntypes < n; s->ntypes++) {
        const json_t *o = json_array_get(arr, s->ntypes);
        jobq_type_counts *t = &s->types[s->ntypes];
        t->type = jobq__get_text(o, "type", &ok);
        counts_from(o, &t->counts);
        t->avg_duration_ms = real_or(o, "avg_duration_ms", -1);
        t->p95_duration_ms = real_or(o, "p95_duration_ms", -1);
        t->completed_last_hour = jobq__get_i64(o, "completed_last_hour", 0);
        t->failed_last_hour = jobq__get_i64(o, "failed_last_hour", 0);
    }
    return ok;
}

int jobq_stats_get(jobq_client *c, jobq_stats **out)
{
    json_t *reply;
    *out = NULL;
    int err = jobq__call(c, "GET", "/v1/stats", NULL, 0, &reply);
    if (err)
        return err;
    if (!json_is_object(json_object_get(reply, "counts"))) {
        json_decref(reply);
        return jobq__fail(c, JOBQ_E_PROTOCOL, NULL, "reply has no counts");
    }
    jobq_stats *s = calloc(1, sizeof *s);
    bool ok = s != NULL;
    if (ok) {
        const char *scope = json_string_value(json_object_get(reply, "scope"));
        s->global = scope && strcmp(scope, "global") == 0;
        counts_from(json_object_get(reply, "counts"), &s->counts);
        s->oldest_pending_age_ms = jobq__get_i64(reply, "oldest_pending_age_ms", -1);
        ok = queues_from(json_object_get(reply, "queues"), s) &&
             types_from(json_object_get(reply, "types"), s);
    }
    json_decref(reply);
    if (!ok) {
        jobq_stats_free(s);
        return jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    }
    *out = s;
    return JOBQ_E_OK;
}

int jobq_queue_depth(jobq_client *c, const char *queue, int64_t *pending, int64_t *processing)
{
    jobq_stats *s;
    int64_t p = 0, r = 0;
    if (!queue)
        return jobq__fail(c, JOBQ_E_INVALID, "queue", "queue is required");
    int err = jobq_stats_get(c, &s);
    if (err)
        return err;
    for (size_t i = 0; i < s->nqueues; i++) {
        if (s->queues[i].queue && strcmp(s->queues[i].queue, queue) == 0) {
            p = s->queues[i].pending;
            r = s->queues[i].processing;
        }
    }
    jobq_stats_free(s);
    if (pending)
        *pending = p;
    if (processing)
        *processing = r;
    return JOBQ_E_OK;
}
