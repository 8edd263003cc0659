/*
 * store.c - the wrappers every caller goes through: argument checks, then
 * the backend's op. Also the plain-data helpers of store.h.
 */
#include "store/store.h"

#include <assert.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const double store_group_bounds[GROUP_BUCKETS - 1] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
const double store_commit_bounds[COMMIT_BUCKETS - 1] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25};

struct store {
    const struct store_ops *ops;   /* the backend's table */
    void *self;                    /* the backend's handle */
};

jq_err store_open(const struct store_cfg *cfg, store **out)
{
    store *s = calloc(1, sizeof *s);
    if (!s)
        return JQ_E_NOMEM;
    bool pg = strncmp(cfg->path, "postgres://", 11) == 0 ||
              strncmp(cfg->path, "postgresql://", 13) == 0;
    jq_err err = pg ? pg_open(cfg, &s->ops, &s->self) : sq_open(cfg, &s->ops, &s->self);
    if (err) {
        free(s);
        return err;
    }
    *out = s;
    return JQ_E_OK;
}

void store_close(store *s)
{
    if (!s)
        return;
    s->ops->close(s->self);
    free(s);
}

void job_fini(struct job *j)
{
    free(j->parents);
    j->parents = NULL;
    free(j->params);
    free(j->result);
    free(j->error_message);
    free(j->progress_message);
    j->params = j->result = j->error_message = j->progress_message = NULL;
}

void job_list_fini(struct job_list *l)
{
    for (int i = 0; i < l->n; i++)
        job_fini(&l->jobs[i]);
    free(l->jobs);
    l->jobs = NULL;
    l->n = 0;
}

jq_err job_list_append(struct job_list *out, struct job_list *more)
{
    if (more->n == 0)
        return JQ_E_OK;
    size_t need = (size_t)out->n + (size_t)more->n;
    struct job *nj = realloc(out->jobs, sizeof *nj * need);
    if (!nj)
        return JQ_E_NOMEM;
    memcpy(nj + out->n, more->jobs, sizeof *nj * (size_t)more->n);
    out->jobs = nj;
    out->n = (int)need;
    free(more->jobs);
    more->jobs = NULL;
    more->n = 0;
    return JQ_E_OK;
}

char *finish_items_json(const struct finish_item *it, int n, bool fail, bool y_bool)
{
    if (n == 0)
        return NULL;
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        json_t *o = json_pack("{s:s, s:s}", "i", it[i].id, "l", it[i].lease);
        if (!fail && it[i].result)
            json_object_set_new(o, "r", json_loads(it[i].result, JSON_DECODE_ANY, NULL));
        if (fail) {
            json_t *y = y_bool ? json_boolean(it[i].fail.retryable)
                               : json_integer(it[i].fail.retryable);
            json_object_update_new(o, json_pack("{s:s?, s:s?, s:o}", "m",
                it[i].fail.error_message, "c", it[i].fail.error_code, "y", y));
        }
        json_array_append_new(arr, o);
    }
    char *s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return s;
}

const char *job_list_max_user(const struct job_list *l, int from, int to)
{
    const char *m = l->jobs[from].user_id;
    for (int i = from + 1; i < to; i++)
        if (strcmp(l->jobs[i].user_id, m) > 0)
            m = l->jobs[i].user_id;
    return m;
}

void log_list_fini(struct log_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->rows[i].message);
        free(l->rows[i].metadata);
    }
    free(l->rows);
    l->rows = NULL;
    l->n = 0;
}

const char *role_name(enum role r)
{
    return r == ROLE_ADMIN ? "admin" : r == ROLE_WORKER ? "worker" : "user";
}

bool role_parse(const char *s, enum role *out)
{
    static const struct { const char *n; enum role r; } t[] = {
        {"user", ROLE_USER}, {"worker", ROLE_WORKER}, {"admin", ROLE_ADMIN}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(s, t[i].n) == 0) {
            *out = t[i].r;
            return true;
        }
    return false;
}

/* --- wrappers: check what the contract promises, then call the backend --- */

jq_err store_create(store *s, struct sctx *c, const struct job_new *in, struct job *out,
                    enum create_outcome *how)
{
    assert(in->user_id && in->queue && in->type && in->params && in->params_hash);
    return s->ops->create(s->self, c, in, out, how);
}

jq_err store_create_batch(store *s, struct sctx *c, const struct batch_req *in,
                          struct job_list *out, int *created)
{
    assert(in->n > 0 && in->user_id);
    return s->ops->create_batch(s->self, c, in, out, created);
}

jq_err store_cancel_many(store *s, struct sctx *c, const struct cancel_req *in, int *n)
{
    assert(in->ids || in->max > 0);
    return s->ops->cancel_many(s->self, c, in, n);
}

jq_err store_stats(store *s, struct sctx *c, const char *scope, json_t **out)
{
    return s->ops->stats(s->self, c, scope, out);
}

jq_err store_log_query_ok(store *s, struct sctx *c, const char *q, char *why, size_t cap)
{
    return s->ops->log_query_ok(s->self, c, q, why, cap);
}

jq_err store_log_search(store *s, struct sctx *c, const struct log_search *in,
                        struct log_hits *out)
{
    assert(in->q && in->limit > 0);
    return s->ops->log_search(s->self, c, in, out);
}

void log_hits_fini(struct log_hits *h)
{
    for (int i = 0; i < h->n; i++) {
        free(h->hits[i].row.message);
        free(h->hits[i].row.metadata);
        free(h->hits[i].snippet);
    }
    free(h->hits);
    h->hits = NULL;
    h->n = 0;
}

jq_err store_events(store *s, struct sctx *c, const struct event_filter *f, int64_t after,
                    int limit, struct event_list *out)
{
    assert(limit > 0);
    return s->ops->events(s->self, c, f, after, limit, out);
}

void event_list_fini(struct event_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->ev[i].data);
    free(l->ev);
    l->ev = NULL;
    l->n = 0;
}

jq_err store_maint(store *s, struct sctx *c, enum maint_task t, int64_t arg_ms, int batch,
                   int *rows, int64_t *next_ms)
{
    assert((unsigned)t < MT__N && batch > 0);
    return s->ops->maint(s->self, c, t, arg_ms, batch, rows, next_ms);
}

jq_err store_get(store *s, struct sctx *c, const char *id, const char *scope, struct job *out)
{
    return s->ops->get(s->self, c, id, scope, out);
}

jq_err store_list(store *s, struct sctx *c, const struct job_filter *f, struct job_list *out)
{
    assert(f->limit > 0);
    return s->ops->list(s->self, c, f, out);
}

jq_err store_cancel(store *s, struct sctx *c, const char *id, const char *scope, struct job *out)
{
    return s->ops->cancel(s->self, c, id, scope, out);
}

jq_err store_retry(store *s, struct sctx *c, const char *id, const char *scope, struct job *out)
{
    return s->ops->retry(s->self, c, id, scope, out);
}

jq_err store_remove(store *s, struct sctx *c, const char *id, const char *scope)
{
    return s->ops->remove(s->self, c, id, scope);
}

jq_err store_claim(store *s, struct sctx *c, const struct claim_req *in, struct job_list *out)
{
    assert(in->max > 0 && in->lease_ms > 0);
    return s->ops->claim(s->self, c, in, out);
}

jq_err store_has_due(store *s, struct sctx *c, const char *queue, bool *yes)
{
    if (!s->ops->has_due) {          /* a backend without it: just try the claim */
        *yes = true;
        return JQ_E_OK;
    }
    return s->ops->has_due(s->self, c, queue, yes);
}

jq_err store_finish_claim(store *s, struct sctx *c, const struct finish_req *in,
                          struct finish_out *out)
{
    assert(in->claim.max >= 0 && in->n_complete >= 0 && in->n_fail >= 0);
    return s->ops->finish_claim(s->self, c, in, out);
}

void finish_out_fini(struct finish_out *o)
{
    free(o->errors);
    o->errors = NULL;
    o->n_errors = 0;
    job_list_fini(&o->claimed);
}

jq_err store_heartbeat(store *s, struct sctx *c, const char *id, const char *lease,
                       const struct progress *p, struct job *out)
{
    return s->ops->heartbeat(s->self, c, id, lease, p, out);
}

jq_err store_complete(store *s, struct sctx *c, const char *id, const char *lease,
                      const char *result, struct job *out)
{
    return s->ops->complete(s->self, c, id, lease, result, out);
}

jq_err store_fail(store *s, struct sctx *c, const char *id, const char *lease,
                  const struct fail_req *in, struct job *out)
{
    return s->ops->fail(s->self, c, id, lease, in, out);
}

jq_err store_log_add(store *s, struct sctx *c, const char *id, const char *lease, int level,
                     const char *message, const char *metadata, struct log_row *out)
{
    return s->ops->log_add(s->self, c, id, lease, level, message, metadata, out);
}

jq_err store_logs(store *s, struct sctx *c, const char *id, const char *scope, int level,
                  int64_t after, int limit, struct log_list *out)
{
    assert(limit > 0);
    return s->ops->logs(s->self, c, id, scope, level, after, limit, out);
}

jq_err store_token_add(store *s, struct sctx *c, const uint8_t hash[TOKEN_HASH_LEN],
                       const struct principal *p, const char *name)
{
    return s->ops->token_add(s->self, c, hash, p, name);
}

jq_err store_token_revoke(store *s, struct sctx *c, const char *token_id)
{
    return s->ops->token_revoke(s->self, c, token_id);
}

jq_err store_token_find(store *s, struct sctx *c, const uint8_t hash[TOKEN_HASH_LEN],
                        struct principal *out)
{
    return s->ops->token_find(s->self, c, hash, out);
}

jq_err store_token_count(store *s, struct sctx *c, int64_t *n)
{
    return s->ops->token_count(s->self, c, n);
}


void store_counters(store *s, struct store_counters *out)
{
    memset(out, 0, sizeof *out);          /* members a backend does not keep read as 0 */
    s->ops->counters(s->self, out);
    out->backend = s->ops->name;
}

void store_set_notify(store *s, store_notify_fn fn, void *arg)
{
    s->ops->set_notify(s->self, fn, arg);
}

void store_set_claim_notify(store *s, store_notify_fn fn, void *arg)
{
    if (s->ops->set_claim_notify)
        s->ops->set_claim_notify(s->self, fn, arg);
}

bool store_is_leader(store *s)
{
    return !s->ops->is_leader || s->ops->is_leader(s->self);
}

bool store_shared(store *s)
{
    return s->ops->is_leader != NULL;
}

jq_err store_explain(store *s, const char *what, char *out, size_t cap)
{
    return s->ops->explain(s->self, what, out, cap);
}

/* --- workflows and schedules --- */

void workflow_fini(struct workflow *w)
{
    free(w->name);
    free(w->edges);
    w->name = w->edges = NULL;
    job_list_fini(&w->steps);
}

void schedule_list_fini(struct schedule_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->s[i].params);
    free(l->s);
    l->s = NULL;
    l->n = 0;
}

jq_err store_workflow_create(store *s, struct sctx *c, const struct workflow_req *in,
                             struct workflow *out)
{
    assert(in->n > 0);
    return s->ops->workflow_create(s->self, c, in, out);
}

jq_err store_workflow_get(store *s, struct sctx *c, const char *id, const char *scope,
                          struct workflow *out)
{
    return s->ops->workflow_get(s->self, c, id, scope, out);
}

jq_err store_schedule_add(store *s, struct sctx *c, const struct schedule *in,
                          struct schedule *out)
{
    return s->ops->schedule_add(s->self, c, in, out);
}

jq_err store_schedule_list(store *s, struct sctx *c, const char *scope,
                           struct schedule_list *out)
{
    return s->ops->schedule_list(s->self, c, scope, out);
}

jq_err store_schedule_get(store *s, struct sctx *c, const char *id, const char *scope,
                          struct schedule *out)
{
    return s->ops->schedule_get(s->self, c, id, scope, out);
}

jq_err store_schedule_set(store *s, struct sctx *c, const char *id, const char *scope,
                          int paused, int64_t next_run_at, struct schedule *out)
{
    return s->ops->schedule_set(s->self, c, id, scope, paused, next_run_at, out);
}

jq_err store_schedules_due(store *s, struct sctx *c, int limit, struct schedule_list *out)
{
    assert(limit > 0);
    return s->ops->schedules_due(s->self, c, limit, out);
}

jq_err store_schedule_fire(store *s, struct sctx *c, const struct schedule *sc,
                           const int64_t *fire_at, int n, int64_t next_run_at, int64_t ttl_ms,
                           int *created)
{
    assert(n >= 0);
    return s->ops->schedule_fire(s->self, c, sc, fire_at, n, next_run_at, ttl_ms, created);
}
