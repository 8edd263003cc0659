/* events.c - see events.h. */
#include "server/events.h"

#include <stdio.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

struct qwait {
    char queue[NAME_MAX_LEN + 1];
    int waiters;
    bool pending;                /* a wake-up for one waiter, not yet taken */
    pthread_cond_t cond;         /* CLOCK_MONOTONIC */
    struct qwait *next;
};

void events_init(struct events *e)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cond, &a);
    pthread_condattr_destroy(&a);
    e->gen = e->gen_any = 0;
    e->closing = false;
    e->queues = NULL;
}

void events_fini(struct events *e)
{
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->mu);
}

uint64_t events_gen(struct events *e)
{
    pthread_mutex_lock(&e->mu);
    uint64_t g = e->gen;
    pthread_mutex_unlock(&e->mu);
    return g;
}

uint64_t events_gen_any(struct events *e)
{
    pthread_mutex_lock(&e->mu);
    uint64_t g = e->gen_any;
    pthread_mutex_unlock(&e->mu);
    return g;
}

/* Hands one waiter of q a wake-up (under mu). */
static void pick_one(struct qwait *q)
{
    q->pending = true;
    pthread_cond_signal(&q->cond);
}

void events_bump(void *arg, bool claimable)
{
    struct events *e = arg;
    pthread_mutex_lock(&e->mu);
    e->gen += claimable;
    e->gen_any++;
    pthread_cond_broadcast(&e->cond);
    if (claimable)
        for (struct qwait *q = e->queues; q; q = q->next)
            pick_one(q);
    pthread_mutex_unlock(&e->mu);
}

void events_wake_claims(void *arg, bool claimable)
{
    struct events *e = arg;
    if (!claimable)
        return;
    pthread_mutex_lock(&e->mu);
    e->gen++;
    for (struct qwait *q = e->queues; q; q = q->next)
        pick_one(q);
    pthread_mutex_unlock(&e->mu);
}

void events_pass(struct events *e, const char *queue)
{
    pthread_mutex_lock(&e->mu);
    for (struct qwait *q = e->queues; q; q = q->next)
        if (strcmp(q->queue, queue) == 0) {
            pick_one(q);
            break;
        }
    pthread_mutex_unlock(&e->mu);
}

void events_close(struct events *e)
{
    pthread_mutex_lock(&e->mu);
    e->closing = true;
    pthread_cond_broadcast(&e->cond);
    for (struct qwait *q = e->queues; q; q = q->next)
        pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&e->mu);
}

/* The waiters of queue, created on first use (under mu); NULL without memory. */
static struct qwait *qwait_get(struct events *e, const char *queue)
{
    for (struct qwait *q = e->queues; q; q = q->next)
        if (strcmp(q->queue, queue) == 0)
            return q;
    struct qwait *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    snprintf(q->queue, sizeof q->queue, "%s", queue);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &a);
    pthread_condattr_destroy(&a);
    q->next = e->queues;
    e->queues = q;
    return q;
}

static void qwait_put(struct events *e, struct qwait *q)
{
    if (--q->waiters > 0)
        return;
    for (struct qwait **p = &e->queues; *p; p = &(*p)->next)
        if (*p == q) {
            *p = q->next;
            break;
        }
    pthread_cond_destroy(&q->cond);
    free(q);
}

bool events_wait_queue(struct events *e, const char *queue, uint64_t seen,
                       int64_t deadline_mono_ms)
{
    int64_t dl = deadline_mono_ms;
    struct timespec ts = {.tv_sec = dl / 1000, .tv_nsec = (dl % 1000) * 1000000};
    pthread_mutex_lock(&e->mu);
    struct qwait *q = qwait_get(e, queue);
    if (!q) {                                  /* no memory: wait like everyone else */
        pthread_mutex_unlock(&e->mu);
        return events_wait(e, seen, deadline_mono_ms);
    }
    q->waiters++;
    int rc = 0;
    while (e->gen == seen && !q->pending && !e->closing && rc == 0)
        rc = pthread_cond_timedwait(&q->cond, &e->mu, &ts);
    q->pending = false;                        /* taken (or stale: gen moved anyway) */
    bool open = !e->closing;
    qwait_put(e, q);
    pthread_mutex_unlock(&e->mu);
    return open;
}

static bool wait_on(struct events *e, const uint64_t *gen, uint64_t seen, int64_t deadline)
{
    struct timespec ts = {.tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000};
    pthread_mutex_lock(&e->mu);
    int rc = 0;
    while (*gen == seen && !e->closing && rc == 0)
        rc = pthread_cond_timedwait(&e->cond, &e->mu, &ts);
    bool open = !e->closing;
    pthread_mutex_unlock(&e->mu);
    return open;
}

bool events_wait(struct events *e, uint64_t seen, int64_t deadline_mono_ms)
{
    return wait_on(e, &e->gen, seen, deadline_mono_ms);
}

bool events_wait_any(struct events *e, uint64_t seen, int64_t deadline_mono_ms)
{
    return wait_on(e, &e->gen_any, seen, deadline_mono_ms);
}
