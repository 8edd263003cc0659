/*
 * work.c - the worker's resource: claim under a lease (with long-poll),
 * heartbeat with progress, complete, fail. Every call after the claim must
 * present the claim's lease token; a stale one gets 409 lease_lost.
 */
#include "server/api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "server/cache.h"
#include "server/maint.h"
#include "server/metrics.h"

#define LEASE_MIN_MS 1000
#define LEASE_MAX_MS 3600000

/* Runs a leased write whose reply is the job (Idempotency-Key aware). */
#define LEASED_WRITE(q, call)                                   \
    do {                                                        \
        struct job j_ = {0};                                    \
        api_render_with(q, api_render_job, &j_);                \
        api_finish(q, (call), api_render_job, &j_);             \
        job_fini(&j_);                                          \
    } while (0)

/* Tells maintenance when the earliest of these new leases runs out. */
static void reply_claimed_poke(struct req *q, const struct job_list *l)
{
    int64_t first_lease = 0;
    const char *ids[CLAIM_MAX] = {0};
    int n_ids = 0;
    for (int i = 0; i < l->n; i++) {
        if (n_ids < CLAIM_MAX)
            ids[n_ids++] = l->jobs[i].id;
        if (!first_lease || l->jobs[i].lease_expires_at < first_lease)
            first_lease = l->jobs[i].lease_expires_at;
        metrics_claim(q->d->metrics, l->jobs[i].type, l->jobs[i].started_at - l->jobs[i].run_at);
    }
    cache_drop_jobs(q->d->cache, ids, n_ids);     /* claimed: no longer pending */
    if (first_lease)
        maint_poke(q->d->maint, MT_RESCUE, first_lease);
}

static void reply_claimed(struct req *q, struct job_list *l)
{
    struct buf b;
    buf_init(&b, JOBS_REPLY_MAX);
    buf_put(&b, "{\"jobs\":", 8);
    api_jobs_put(&b, l, true);
    buf_put(&b, "}", 1);
    reply_claimed_poke(q, l);
    reply_raw(q, 200, api_buf_text(&b));
    job_list_fini(l);
}

/* Claims; while nothing is due and wait_ms remains, sleeps until a commit
 * makes work claimable (events), then tries again. */
/* Claims; while nothing is due and wait_ms remains, sleeps until a commit
 * makes work claimable (events), then tries again. A woken waiter first asks
 * a read connection whether anything is due in its queue, so a commit that
 * wakes many waiters does not queue a write per waiter (most find nothing). */
static jq_err claim_wait(struct req *q, const struct claim_req *in, int64_t wait_ms,
                         struct job_list *l)
{
    int64_t deadline = clock_mono_ms() + wait_ms;
    for (bool first = true;; first = false) {
        uint64_t seen = events_gen(&q->d->ev);   /* read before the claim: no lost wake-up */
        q->sc.now_ms = clock_now_ms(&q->d->clock);
        q->sc.stmts = 0;              /* a long-poll reports (and is budgeted by) its last try */
        bool due = true;
        jq_err err = first ? JQ_E_OK : store_has_due(q->d->st, &q->sc, in->queue, &due);
        if (!err && due)
            err = store_claim(q->d->st, &q->sc, in, l);
        /* a full batch may have left more due: wake the next waiter of the queue (unless
         * the backend saw that nothing more was claimable) */
        if (!err && l->n > 0 && !l->drained && (l->n >= in->max || in->fair || in->user_cap > 0))
            events_pass(&q->d->ev, in->queue);
        if (err || l->n > 0 || clock_mono_ms() >= deadline)
            return err;
        job_list_fini(l);
        if (!events_wait_queue(&q->d->ev, in->queue, seen, deadline))
            return JQ_E_OK;
    }
}

void api_work_claim(struct req *q)
{
    static const char *const allowed[] = {"worker_id", "lease_ms", "max", "wait_ms", NULL};
    json_t *b = api_body(q, allowed);
    if (!b)
        return;
    struct claim_req in = {.queue = q->params[0], .lease_ms = q->d->cfg.lease_ms, .max = 1,
                           .fair = config_fair_queue(&q->d->cfg, q->params[0]),
                           .user_cap = q->d->cfg.user_processing_max};
    int64_t max = 1, wait = 0;
    if (!valid_name(in.queue)) {
        reply_err(q, JQ_E_INVALID, "queue",
                  "queue must be 1-128 characters of A-Z a-z 0-9 _ . : -");
    } else if (want_str(q, b, "worker_id", true, NAME_MAX_LEN, &in.worker_id) &&
               want_int(q, b, "lease_ms", LEASE_MIN_MS, LEASE_MAX_MS, &in.lease_ms) &&
               want_int(q, b, "max", 1, CLAIM_MAX, &max) &&
               want_int(q, b, "wait_ms", 0, WAIT_MAX_MS, &wait)) {
        in.max = (int)max;
        struct job_list l = {0};
        jq_err err = claim_wait(q, &in, wait, &l);
        if (err)
            api_store_err(q, err);
        else
            reply_claimed(q, &l);
    }
    json_decref(b);
}

void api_work_heartbeat(struct req *q)
{
    static const char *const allowed[] = {"lease_token", "lease_ms", "progress_percent",
                                          "progress_message", NULL};
    json_t *b = api_body(q, allowed);
    if (!b)
        return;
    const char *lease = NULL;
    int64_t pct = -1;
    struct progress p = {.percent = -1, .lease_ms = q->d->cfg.lease_ms};
    if (want_job_id(q, q->params[0]) && want_str(q, b, "lease_token", true, 64, &lease) &&
        want_int(q, b, "lease_ms", LEASE_MIN_MS, LEASE_MAX_MS, &p.lease_ms) &&
        want_int(q, b, "progress_percent", 0, 100, &pct) &&
        want_str(q, b, "progress_message", false, TEXT_MAX, &p.message)) {
        p.percent = (int)pct;
        LEASED_WRITE(q, store_heartbeat(q->d->st, &q->sc, q->params[0], lease, &p, &j_));
    }
    json_decref(b);
}

void api_work_complete(struct req *q)
{
    static const char *const allowed[] = {"lease_token", "result", NULL};
    json_t *b = api_body(q, allowed);
    if (!b)
        return;
    const char *lease = NULL;
    char *result = NULL;
    if (want_job_id(q, q->params[0]) && want_str(q, b, "lease_token", true, 64, &lease) &&
        want_json(q, b, "result", false, RESULT_MAX, &result)) {
        LEASED_WRITE(q, store_complete(q->d->st, &q->sc, q->params[0], lease, result, &j_));
    }
    free(result);
    json_decref(b);
}

void api_work_fail(struct req *q)
{
    static const char *const allowed[] = {"lease_token", "error_message", "error_code",
                                          "retryable", NULL};
    json_t *b = api_body(q, allowed);
    if (!b)
        return;
    const char *lease = NULL;
    struct fail_req in = {.retryable = true};
    if (want_job_id(q, q->params[0]) && want_str(q, b, "lease_token", true, 64, &lease) &&
        want_str(q, b, "error_message", true, TEXT_MAX, &in.error_message) &&
        want_name(q, b, "error_code", false, &in.error_code) &&
        want_bool(q, b, "retryable", &in.retryable)) {
        LEASED_WRITE(q, store_fail(q->d->st, &q->sc, q->params[0], lease, &in, &j_));
    }
    json_decref(b);
}

/* --- finish and claim in one round trip --- */

enum { FINISH_MAX = 100 };

/* Rewrites the field of the error a validator wrote as list[i].field. */
static void prefix_field(struct req *q, const char *list, size_t i)
{
    json_t *e = json_object_get(q->reply, "error");
    const char *f = json_string_value(json_object_get(e, "field"));
    char name[96];
    snprintf(name, sizeof name, "%s[%zu]%s%s", list, i, f ? "." : "", f ? f : "");
    json_object_set_new(e, "field", json_string(name));
}

/* Validates one complete/fail item (borrowing strings from o) into it. */
static bool parse_item(struct req *q, json_t *o, bool fail, struct finish_item *it,
                       char **result)
{
    static const char *const c_allowed[] = {"id", "lease_token", "result", NULL};
    static const char *const f_allowed[] = {"id", "lease_token", "error_message", "error_code",
                                            "retryable", NULL};
    const char *const *allowed = fail ? f_allowed : c_allowed;
    const char *key;
    json_t *v;
    if (!json_is_object(o)) {
        reply_err(q, JQ_E_INVALID, NULL, "each item must be an object");
        return false;
    }
    json_object_foreach(o, key, v) {
        const char *const *a = allowed;
        while (*a && strcmp(*a, key))
            a++;
        if (!*a) {
            reply_err(q, JQ_E_INVALID, key, "unknown field '%.64s'", key);
            return false;
        }
    }
    it->fail.retryable = true;
    if (!want_str(q, o, "id", true, ID_LEN, &it->id) ||
        !want_str(q, o, "lease_token", true, 64, &it->lease))
        return false;
    if (!id_valid(it->id)) {
        reply_err(q, JQ_E_INVALID, "id", "not a job id");
        return false;
    }
    if (!fail)
        return want_json(q, o, "result", false, RESULT_MAX, result);
    return want_str(q, o, "error_message", true, TEXT_MAX, &it->fail.error_message) &&
           want_name(q, o, "error_code", false, &it->fail.error_code) &&
           want_bool(q, o, "retryable", &it->fail.retryable);
}

/* Parses one list of the body; *n gets its length. */
static bool parse_list(struct req *q, json_t *b, const char *name, struct finish_item *items,
                       char **results, int *n)
{
    json_t *arr = json_object_get(b, name);
    *n = 0;
    if (!arr || json_is_null(arr))
        return true;
    if (!json_is_array(arr) || json_array_size(arr) > FINISH_MAX) {
        reply_err(q, JQ_E_INVALID, name, "%s must be an array of at most %d items", name,
                  FINISH_MAX);
        return false;
    }
    for (size_t i = 0; i < json_array_size(arr); i++, ++*n) {
        bool fail = strcmp(name, "fail") == 0;
        if (!parse_item(q, json_array_get(arr, i), fail, &items[i], &results[i])) {
            prefix_field(q, name, i);
            return false;
        }
        items[i].result = results[i];
    }
    return true;
}

static void reply_next(struct req *q, const struct finish_out *o, const struct finish_req *in,
                       struct job_list *claimed)
{
    json_t *errors = json_array();
    for (int i = 0; i < o->n_errors; i++) {
        const struct finish_err *e = &o->errors[i];
        const struct finish_item *it = e->is_fail ? &in->fail[e->index] : &in->complete[e->index];
        json_array_append_new(errors, json_pack("{s:s, s:i, s:s, s:s}", "list",
            e->is_fail ? "fail" : "complete", "index", e->index, "id", it->id, "code",
            jq_err_code(e->err)));
    }
    char *etext = json_dump_compact(errors);
    json_decref(errors);
    struct buf b;
    buf_init(&b, JOBS_REPLY_MAX);
    buf_printf(&b, "{\"completed\":%d,\"failed\":%d,\"errors\":%s,\"jobs\":", o->completed,
               o->failed, etext ? etext : "[]");
    api_jobs_put(&b, claimed, true);
    buf_put(&b, "}", 1);
    b.overflow |= !etext;                      /* memory: never a reply without its errors */
    free(etext);
    reply_raw(q, 200, api_buf_text(&b));
}

static void run_next(struct req *q, struct finish_req *in, int64_t wait)
{
    struct finish_out o;
    jq_err err = store_finish_claim(q->d->st, &q->sc, in, &o);
    if (err) {
        api_store_err(q, err);
        return;
    }
    const char *done[2 * FINISH_MAX];
    int n_done = 0;
    for (int i = 0; i < in->n_complete; i++)
        done[n_done++] = in->complete[i].id;
    for (int i = 0; i < in->n_fail; i++)
        done[n_done++] = in->fail[i].id;
    cache_drop_jobs(q->d->cache, done, n_done);   /* finished (or tried to): drop them */
    struct job_list more = {0}, *claimed = &o.claimed;
    if (o.claimed.n == 0 && in->claim.max > 0 && wait > 0) {   /* finished: now long-poll */
        err = claim_wait(q, &in->claim, wait, &more);
        claimed = &more;
    }
    if (err)
        api_store_err(q, err);
    else
        reply_next(q, &o, in, claimed);
    if (claimed->n)
        reply_claimed_poke(q, claimed);
    job_list_fini(&more);
    finish_out_fini(&o);
}

void api_work_next(struct req *q)
{
    static const char *const allowed[] = {"worker_id", "complete", "fail", "max", "lease_ms",
                                          "wait_ms", NULL};
    struct finish_item comp[FINISH_MAX] = {{0}}, fail[FINISH_MAX] = {{0}};
    char *results[FINISH_MAX] = {0}, *unused[FINISH_MAX] = {0};
    json_t *b = api_body(q, allowed);
    struct finish_req in = {.complete = comp, .fail = fail,
                            .claim = {.queue = q->params[0], .lease_ms = q->d->cfg.lease_ms,
                                      .fair = config_fair_queue(&q->d->cfg, q->params[0]),
                                      .user_cap = q->d->cfg.user_processing_max}};
    int64_t max = 1, wait = 0;
    if (!b)
        return;
    if (!valid_name(in.claim.queue)) {
        reply_err(q, JQ_E_INVALID, "queue",
                  "queue must be 1-128 characters of A-Z a-z 0-9 _ . : -");
    } else if (want_str(q, b, "worker_id", true, NAME_MAX_LEN, &in.claim.worker_id) &&
               want_int(q, b, "lease_ms", LEASE_MIN_MS, LEASE_MAX_MS, &in.claim.lease_ms) &&
               want_int(q, b, "max", 0, CLAIM_MAX, &max) &&
               want_int(q, b, "wait_ms", 0, WAIT_MAX_MS, &wait) &&
               parse_list(q, b, "complete", comp, results, &in.n_complete) &&
               parse_list(q, b, "fail", fail, unused, &in.n_fail)) {
        in.claim.max = (int)max;
        run_next(q, &in, wait);
    }
    for (int i = 0; i < FINISH_MAX; i++)
        free(results[i]);
    json_decref(b);
}
