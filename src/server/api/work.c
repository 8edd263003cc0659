/*
 * work.c - the worker's resource: claim under a lease (with long-poll),
 * heartbeat with progress, complete, fail. Every call after the claim must
 * present the claim's lease token; a stale one gets 409 lease_lost.
 */
#include "server/api/api.h"

#include <stdlib.h>

#include "common/clock.h"
#include "server/maint.h"

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

static void reply_claimed(struct req *q, struct job_list *l)
{
    json_t *jobs = json_array();
    int64_t first_lease = 0;
    for (int i = 0; i < l->n; i++) {
        json_array_append_new(jobs, api_job_json(&l->jobs[i], true));
        if (!first_lease || l->jobs[i].lease_expires_at < first_lease)
            first_lease = l->jobs[i].lease_expires_at;
    }
    if (first_lease)
        maint_poke(q->d->maint, MT_RESCUE, first_lease);
    reply_json(q, 200, json_pack("{s:o}", "jobs", jobs));
    job_list_fini(l);
}

/* Claims; while nothing is due and wait_ms remains, sleeps until a commit
 * makes work claimable (events), then tries again. */
static jq_err claim_wait(struct req *q, const struct claim_req *in, int64_t wait_ms,
                         struct job_list *l)
{
    int64_t deadline = clock_mono_ms() + wait_ms;
    for (;;) {
        uint64_t seen = events_gen(&q->d->ev);   /* read before the claim: no lost wake-up */
        q->sc.now_ms = clock_now_ms(&q->d->clock);
        jq_err err = store_claim(q->d->st, &q->sc, in, l);
        if (err || l->n > 0 || clock_mono_ms() >= deadline)
            return err;
        job_list_fini(l);
        if (!events_wait(&q->d->ev, seen, deadline))
            return JQ_E_OK;
    }
}

void api_work_claim(struct req *q)
{
    static const char *const allowed[] = {"worker_id", "lease_ms", "max", "wait_ms", NULL};
    json_t *b = api_body(q, allowed);
    if (!b)
        return;
    struct claim_req in = {.queue = q->params[0], .lease_ms = q->d->cfg.lease_ms, .max = 1};
    int64_t max = 1, wait = 0;
    if (!valid_name(in.queue)) {
        reply_err(q, JQ_E_INVALID, "queue", "queue must be 1-128 characters of A-Z a-z 0-9 _ . : -");
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
