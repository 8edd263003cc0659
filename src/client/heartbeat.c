/*
 * heartbeat.c - the heartbeat thread of the libjobq worker runtime, and the release of the
 * jobs still held when the grace period of a drain runs out.
 *
 * The thread beats every held job every lease_ms / 3 (and sooner, at most once a second,
 * when its handler reported progress). It uses its own client and never holds the worker
 * mutex during a call: it copies what it sends, then finds the job again by seq.
 */
#include <stdlib.h>
#include <string.h>

#include "worker.h"

/* What one heartbeat sends, copied out of a jobq_ctx under the mutex. */
struct beat {
    uint64_t seq;
    char *id, *lease;          /* malloc'd copies */
    int percent;               /* -1: leave out */
    char *msg;                 /* malloc'd or NULL */
};

static void beat_fini(struct beat *b)
{
    free(b->id);
    free(b->lease);
    free(b->msg);
}

/* Is x due now? Sets *next to the earlier of *next and x's next due time. */
static bool due(const struct jobq_ctx *x, int64_t now, int64_t *next)
{
    int64_t at = x->next_beat_ms;
    if (x->progress_dirty && !x->finished) {
        int64_t p = x->last_beat_ms + WK_PROGRESS_MIN_MS;
        at = p < at ? p : at;
    }
    if (at <= now)
        return true;
    *next = at < *next ? at : *next;
    return false;
}

/* Finds a due job and copies its beat into *b (mu held). */
static bool pick(struct jobq_worker *w, int64_t now, struct beat *b, int64_t *next)
{
    for (struct jobq_ctx *x = w->held; x; x = x->next) {
        if (x->lost || !due(x, now, next))
            continue;
        *b = (struct beat){ .seq = x->seq, .id = strdup(x->job->id),
                            .lease = strdup(x->job->lease_token), .percent = -1 };
        if (x->progress_dirty && !x->finished) {
            b->percent = x->percent;
            b->msg = x->progress_msg ? strdup(x->progress_msg) : NULL;
            x->progress_dirty = false;
        }
        x->last_beat_ms = now;
        x->next_beat_ms = now + w->lease_ms / 3;
        return true;
    }
    return false;
}

static struct jobq_ctx *find(struct jobq_worker *w, uint64_t seq)
{
    for (struct jobq_ctx *x = w->held; x; x = x->next)
        if (x->seq == seq)
            return x;
    return NULL;
}

/* Applies the answer to a beat (mu held): a lost lease marks the job lost; a failed call
 * comes back sooner. */
static void settle(struct jobq_worker *w, jobq_client *c, const struct beat *b, int err)
{
    struct jobq_ctx *x = find(w, b->seq);
    w->counters.heartbeats++;
    if (!x || !err)
        return;
    int st = jobq_last_status(c);
    if (err == JOBQ_E_SERVER && (st == 409 || st == 404)) {
        x->lost = true;                  /* someone else has the job now */
        return;
    }
    int64_t soon = wk__now_ms() + 1000;  /* transport / 5xx: try again shortly */
    x->next_beat_ms = soon < x->next_beat_ms ? soon : x->next_beat_ms;
    x->progress_dirty = x->progress_dirty || b->percent >= 0 || b->msg;
}

void *wk__beat_main(void *arg)
{
    struct jobq_worker *w = arg;
    jobq_client *c = jobq_client_new(w->url, w->token);
    if (c)
        jobq_client_set_timeouts(c, 0, w->lease_ms / 3 > 1000 ? w->lease_ms / 3 : 1000);
    pthread_mutex_lock(&w->mu);
    while (!w->beat_quit) {
        int64_t now = wk__now_ms(), next = now + WK_BEAT_IDLE_MS;
        struct beat b;
        if (c && pick(w, now, &b, &next)) {
            pthread_mutex_unlock(&w->mu);
            int err = b.id && b.lease ? jobq_heartbeat(c, b.id, b.lease, w->lease_ms, b.percent,
                                                       b.msg, NULL)
                                      : JOBQ_E_NOMEM;
            pthread_mutex_lock(&w->mu);
            settle(w, c, &b, err);
            beat_fini(&b);
            continue;
        }
        wk__wait_until(w, next);
    }
    pthread_mutex_unlock(&w->mu);
    jobq_client_free(c);
    return NULL;
}

/* --- release at the end of the grace period --- */

void wk__release_all(struct jobq_worker *w)
{
    struct beat *list = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&w->mu);
    for (struct jobq_ctx *x = w->held; x; x = x->next) {
        if (x->lost || x->finished)
            continue;                    /* finished: its claim thread reports it */
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct beat *p = realloc(list, nc * sizeof *p);
            if (!p)
                break;
            list = p;
            cap = nc;
        }
        x->lost = true;                  /* its handler's outcome is dropped */
        list[n++] = (struct beat){ .id = strdup(x->job->id),
                                   .lease = strdup(x->job->lease_token) };
    }
    w->counters.released += (int64_t)n;
    pthread_mutex_unlock(&w->mu);
    jobq_client *c = n ? jobq_client_new(w->url, w->token) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (c && list[i].id && list[i].lease)
            jobq_fail(c, list[i].id, list[i].lease, "worker shut down before the job finished",
                      "worker_shutdown", 1, NULL);
        beat_fini(&list[i]);
    }
    jobq_client_free(c);
    free(list);
}
