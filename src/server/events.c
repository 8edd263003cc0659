/* events.c - see events.h. */
#include "server/events.h"

#include <time.h>

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

void events_bump(void *arg, bool claimable)
{
    struct events *e = arg;
    pthread_mutex_lock(&e->mu);
    e->gen += claimable;
    e->gen_any++;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->mu);
}

void events_close(struct events *e)
{
    pthread_mutex_lock(&e->mu);
    e->closing = true;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->mu);
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
