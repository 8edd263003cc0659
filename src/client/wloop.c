/*
 * wloop.c - the claim threads of the libjobq worker runtime and the handler context.
 *
 * One claim thread loops: when its todo list is empty it makes one exchange with the server
 * (report the finished outcomes + claim up to `batch` jobs: POST .../next, or complete/fail
 * + claim on a server without it), then runs the claimed jobs' handlers one by one.
 * After a stop it claims nothing more, finishes what it holds, reports and ends.
 *
 * Layers: held list -> exchange (next / fallback) -> running a job -> loop -> jobq_ctx API.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

enum {
    TEXT_MAX = 8 << 10,        /* the API's cap on error_message and log message */
    PAUSE_MIN_MS = 250,        /* first pause after a failed exchange */
    PAUSE_MAX_MS = 8000,       /* server away: retry at least this often */
    IDLE_MS = 500,             /* pause between empty claims when wait_ms is 0 */
};

/* What an exchange came to. */
enum ex {
    EX_OK,                     /* reported (and claimed) */
    EX_RETRY,                  /* server away or 5xx: pause and try again */
    EX_FATAL,                  /* the server refuses the worker (401/403/400 on claim) */
    EX_FALLBACK,               /* /next unusable for this exchange: do it the long way */
};

/* --- held list --- */

void wk__ctx_free(struct jobq_ctx *x)
{
    if (!x)
        return;
    jobq_job_free(x->job);
    free(x->progress_msg);
    free(x->result);
    free(x->err_class);
    free(x->err_msg);
    free(x);
}

/* Unlinks x from the worker's held list and frees it. */
static void drop(struct jobq_worker *w, struct jobq_ctx *x)
{
    pthread_mutex_lock(&w->mu);
    if (x->prev)
        x->prev->next = x->next;
    else
        w->held = x->next;
    if (x->next)
        x->next->prev = x->prev;
    pthread_mutex_unlock(&w->mu);
    wk__ctx_free(x);
}

/* Takes every job of l (l keeps empty slots) into the held list and the todo list. */
static void hold(struct wthread *t, jobq_job_list *l)
{
    struct jobq_worker *w = t->w;
    struct jobq_ctx **tail = &t->todo;
    while (*tail)
        tail = &(*tail)->todo;
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < l->count; i++) {
        struct jobq_ctx *x = calloc(1, sizeof *x);
        if (!x)
            break;                   /* its lease lapses: the server rescues it */
        x->w = w;
        x->t = t;
        x->job = l->jobs[i];
        l->jobs[i] = NULL;
        x->seq = ++w->seq;
        x->percent = -1;
        x->last_beat_ms = wk__now_ms();
        x->next_beat_ms = x->last_beat_ms + w->lease_ms / 3;
        x->next = w->held;
        if (w->held)
            w->held->prev = x;
        w->held = x;
        *tail = x;
        tail = &x->todo;
    }
    w->counters.round_trips++;
    w->counters.batches += l->count > 0;
    w->counters.claimed += (int64_t)l->count;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

/* --- exchange --- */

/* Is the last error one that retrying will not fix (auth, role)? */
static bool refused(jobq_client *c)
{
    int st = jobq_last_status(c);
    return jobq_last_err(c) == JOBQ_E_SERVER && (st == 401 || st == 403);
}

/* Completes / fails every reported outcome one call each. Stops at the first error that
 * may pass (keeps the rest for the next exchange). */
static enum ex report_each(struct wthread *t)
{
    size_t i = 0;
    for (; i < t->nout; i++) {
        struct jobq_ctx *x = t->out[i];
        const jobq_finish *f = &x->fin;
        int err = f->failed ? jobq_fail(t->c, f->id, f->lease_token, f->error_message,
                                        f->error_code, f->retryable, NULL)
                            : jobq_complete(t->c, f->id, f->lease_token, f->result, NULL);
        if (err && refused(t->c)) {
            wk__fatal(t->w, t->c, "report");
            return EX_FATAL;
        }
        if (err && (err != JOBQ_E_SERVER || jobq_last_status(t->c) >= 500))
            break;                   /* transport or 5xx: try again later */
        drop(t->w, x);               /* done, or 4xx (lease lost): nothing more to do */
    }
    if (i > 0 && i < t->nout)
        memmove(t->out, t->out + i, (t->nout - i) * sizeof *t->out);
    t->nout -= i;
    return t->nout ? EX_RETRY : EX_OK;
}

/* POST .../next: reports t->out and claims up to max jobs. */
static enum ex via_next(struct wthread *t, int max)
{
    struct jobq_worker *w = t->w;
    jobq_finish items[JOBQ_BATCH_MAX / 10];       /* the API's 100 per list */
    jobq_next_result *r = NULL;
    size_t n = t->nout < sizeof items / sizeof items[0] ? t->nout : sizeof items / sizeof items[0];
    for (size_t i = 0; i < n; i++)
        items[i] = t->out[i]->fin;
    int err = jobq_next(t->c, t->q->name, w->worker_id, items, n, max, w->lease_ms,
                        max > 0 ? w->wait_ms : 0, &r);
    if (err) {
        if (refused(t->c)) {
            wk__fatal(w, t->c, "next");
            return EX_FATAL;
        }
        if (err == JOBQ_E_SERVER && jobq_last_status(t->c) == 404 &&
            strcmp(jobq_last_code(t->c), "not_found") == 0)
            atomic_store(&w->next_mode, 0);       /* no such route: fall back for good */
        if (err == JOBQ_E_SERVER && jobq_last_status(t->c) < 500)
            return EX_FALLBACK;
        return EX_RETRY;
    }
    atomic_store(&w->next_mode, 1);
    for (size_t i = 0; i < n; i++)
        drop(w, t->out[i]);        /* reported; per-item errors (lease lost) end there too */
    if (n > 0 && n < t->nout)
        memmove(t->out, t->out + n, (t->nout - n) * sizeof *t->out);
    t->nout -= n;
    hold(t, r->jobs);
    jobq_next_result_free(r);
    return EX_OK;
}

/* POST .../claim. */
static enum ex via_claim(struct wthread *t, int max)
{
    struct jobq_worker *w = t->w;
    jobq_job_list *l = NULL;
    int err = jobq_claim(t->c, t->q->name, w->worker_id, w->lease_ms, max, w->wait_ms, &l);
    if (err) {
        if (err == JOBQ_E_SERVER && jobq_last_status(t->c) < 500) {
            wk__fatal(w, t->c, "claim");          /* 4xx on a claim: the setup is wrong */
            return EX_FATAL;
        }
        return EX_RETRY;
    }
    hold(t, l);
    jobq_job_list_free(l);
    return EX_OK;
}

/* Reports what t has finished and claims up to max more jobs. */
static enum ex exchange(struct wthread *t, int max)
{
    if (atomic_load(&t->w->next_mode) != 0) {
        enum ex rc = via_next(t, max);
        if (rc != EX_FALLBACK)
            return rc;
    }
    enum ex rc = report_each(t);
    if (rc != EX_OK || max == 0)
        return rc;
    return via_claim(t, max);
}

/* --- running a job --- */

/* Applies the worker's rules to a JOBQ_ERROR outcome: true to retry. */
static bool rule_retries(const struct jobq_worker *w, const struct jobq_ctx *x)
{
    const struct wrule *r = wk__rule(w, x->job->type, x->err_class ? x->err_class : "error");
    if (!r)
        return true;
    if (r->action == JOBQ_RULE_DISCARD)
        return false;
    return r->attempts == 0 || x->job->attempts < r->attempts;
}

/* Turns the handler's outcome into x->fin; returns the stats kind (see wk__stat). */
static int decide(const struct jobq_worker *w, struct jobq_ctx *x, jobq_outcome oc)
{
    static const char *const why[] = { "", "handler asked to retry", "handler discarded the job",
                                       "handler failed" };
    x->fin = (jobq_finish){ .id = x->job->id, .lease_token = x->job->lease_token };
    if (oc == JOBQ_DONE) {
        x->fin.result = x->result;
        return 0;
    }
    if (oc != JOBQ_RETRY && oc != JOBQ_DISCARD)
        oc = rule_retries(w, x) ? JOBQ_RETRY : JOBQ_DISCARD;
    x->fin.failed = 1;
    x->fin.retryable = oc == JOBQ_RETRY;
    x->fin.error_code = x->err_class ? x->err_class : "error";
    x->fin.error_message = x->err_msg ? x->err_msg : why[oc];
    bool last = x->job->max_attempts > 0 && x->job->attempts >= x->job->max_attempts;
    return oc == JOBQ_RETRY && !last ? 1 : 2;
}

/* Runs x's handler and sets x->fin; returns the stats kind, *ms the duration. */
static int run_handler(struct wthread *t, struct jobq_ctx *x, int64_t *ms)
{
    struct jobq_worker *w = t->w;
    const struct whandler *h = wk__handler(w, x->job->type);
    int64_t t0 = wk__now_ms();
    jobq_outcome oc;
    if (h) {
        oc = h->fn(x, x->job, h->arg);
    } else {
        oc = JOBQ_RETRY;           /* another worker of the fleet may know the type */
        x->err_class = strdup("no_handler");
        x->err_msg = strdup("this worker has no handler for the job's type");
    }
    *ms = wk__now_ms() - t0;
    return decide(w, x, oc);
}

/* Fails x with "worker_shutdown" (the grace period is over and it never started). */
static void release_one(struct wthread *t, struct jobq_ctx *x)
{
    jobq_fail(t->c, x->job->id, x->job->lease_token, "worker shut down before running the job",
              "worker_shutdown", 1, NULL);
    pthread_mutex_lock(&t->w->mu);
    t->w->counters.released++;
    pthread_mutex_unlock(&t->w->mu);
}

/* Queues x's outcome for the next exchange (room was made by the caller). */
static void push_out(struct wthread *t, struct jobq_ctx *x)
{
    if (t->nout == t->capout) {
        size_t cap = t->capout ? t->capout * 2 : 8;
        struct jobq_ctx **p = realloc(t->out, cap * sizeof *p);
        if (!p) {
            drop(t->w, x);           /* unreported: the lease lapses, the server rescues */
            return;
        }
        t->out = p;
        t->capout = cap;
    }
    t->out[t->nout++] = x;
}

/* Takes the first job of the todo list and runs it (or drops / releases it). */
static void run_next(struct wthread *t)
{
    struct jobq_worker *w = t->w;
    struct jobq_ctx *x = t->todo;
    t->todo = x->todo;
    pthread_mutex_lock(&w->mu);
    bool lost = x->lost, release = !lost && atomic_load(&w->expired);
    x->lost = x->lost || release;          /* the releaser skips it from now on */
    pthread_mutex_unlock(&w->mu);
    if (lost || release) {
        if (release)
            release_one(t, x);
        wk__stat(w, x->job->type, 0, 3);
        drop(w, x);
        return;
    }
    int64_t ms;
    int kind = run_handler(t, x, &ms);
    pthread_mutex_lock(&w->mu);
    x->finished = true;
    lost = x->lost;
    pthread_mutex_unlock(&w->mu);
    wk__stat(w, x->job->type, ms, lost ? 3 : kind);
    if (lost) {
        drop(w, x);
        return;
    }
    push_out(t, x);
    if (atomic_load(&w->next_mode) == 0)
        report_each(t);                    /* no /next: no reason to wait */
}

/* --- loop --- */

/* Sleeps ms unless the worker is stopped meanwhile. */
static void pause_ms(struct jobq_worker *w, int64_t ms)
{
    int64_t until = wk__now_ms() + ms;
    pthread_mutex_lock(&w->mu);
    while (!atomic_load(&w->stopping) && wk__now_ms() < until)
        wk__wait_until(w, until);
    pthread_mutex_unlock(&w->mu);
}

/* Frees what the thread still holds when it ends early (fatal error). */
static void drop_all(struct wthread *t)
{
    while (t->todo) {
        struct jobq_ctx *x = t->todo;
        t->todo = x->todo;
        drop(t->w, x);
    }
    for (size_t i = 0; i < t->nout; i++)
        drop(t->w, t->out[i]);
    t->nout = 0;
}

void *wk__claim_main(void *arg)
{
    struct wthread *t = arg;
    struct jobq_worker *w = t->w;
    int64_t pause = PAUSE_MIN_MS;
    for (;;) {
        if (t->todo) {
            run_next(t);
            continue;
        }
        bool stop = atomic_load(&w->stopping);
        if (stop && t->nout == 0)
            break;
        enum ex rc = exchange(t, stop ? 0 : w->batch);
        if (rc == EX_FATAL || (rc == EX_RETRY && atomic_load(&w->expired)))
            break;
        if (rc == EX_RETRY) {
            pause_ms(w, pause);
            pause = pause * 2 > PAUSE_MAX_MS ? PAUSE_MAX_MS : pause * 2;
            continue;
        }
        pause = PAUSE_MIN_MS;
        if (!t->todo && !stop && w->wait_ms == 0)
            pause_ms(w, IDLE_MS);
    }
    drop_all(t);
    free(t->out);
    t->out = NULL;
    pthread_mutex_lock(&w->mu);
    t->ended = true;
    w->alive--;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* --- jobq_ctx API (called by handlers on their claim thread) --- */

void jobq_ctx_progress(jobq_ctx *x, int percent, const char *msg)
{
    char *m = msg ? strdup(msg) : NULL;
    pthread_mutex_lock(&x->w->mu);
    if (percent >= 0)
        x->percent = percent > 100 ? 100 : percent;
    if (m) {
        free(x->progress_msg);
        x->progress_msg = m;
    }
    x->progress_dirty = true;
    pthread_cond_broadcast(&x->w->cond);
    pthread_mutex_unlock(&x->w->mu);
}

int jobq_ctx_log(jobq_ctx *x, const char *level, const char *fmt, ...)
{
    char msg[TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return jobq_log(x->t->c, x->job->id, x->job->lease_token, level, msg, NULL);
}

int jobq_ctx_set_result(jobq_ctx *x, const char *result_json)
{
    json_t *v = result_json ? json_loads(result_json, JSON_DECODE_ANY, NULL) : NULL;
    if (result_json && !v)
        return JOBQ_E_INVALID;
    json_decref(v);
    char *r = result_json ? strdup(result_json) : NULL;
    if (result_json && !r)
        return JOBQ_E_NOMEM;
    free(x->result);
    x->result = r;
    return JOBQ_E_OK;
}

jobq_outcome jobq_ctx_error(jobq_ctx *x, const char *error_class, const char *fmt, ...)
{
    char msg[TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(x->err_class);
    free(x->err_msg);
    x->err_class = strdup(error_class ? error_class : "error");
    x->err_msg = strdup(msg);
    return JOBQ_ERROR;
}

int jobq_ctx_lost(const jobq_ctx *x)
{
    pthread_mutex_lock(&x->w->mu);
    int lost = x->lost;
    pthread_mutex_unlock(&x->w->mu);
    return lost;
}

int jobq_ctx_stopping(const jobq_ctx *x)
{
    return atomic_load(&x->w->stopping);
}

jobq_client *jobq_ctx_client(jobq_ctx *x)
{
    return x->t->c;
}
