/* maint.c - see maint.h. */
#include "server/maint.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "server/jobqd.h"

enum { IDLE_MS = 60000, MIN_SLEEP_MS = 5 };   /* re-check at least every minute */

struct maint {
    struct jobqd *d;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;        /* CLOCK_MONOTONIC; signalled on stop */
    bool stop;
};

int64_t maint_tick(struct jobqd *d, int64_t now_ms)
{
    struct sctx c = {.now_ms = now_ms};
    int rescued = 0;
    int64_t next = 0;
    jq_err err = store_rescue(d->st, &c, &rescued, &next);
    if (err) {
        log_warn("maintenance: %s", jq_err_code(err));
        return 1000;
    }
    if (rescued)
        log_info("maintenance: %d jobs rescued or expired", rescued);
    if (rescued >= 1000)
        return MIN_SLEEP_MS;            /* a full batch: more may be due */
    if (next == 0)
        return IDLE_MS;
    int64_t wait = next - now_ms;
    return wait < MIN_SLEEP_MS ? MIN_SLEEP_MS : wait > IDLE_MS ? IDLE_MS : wait;
}

static void *maint_main(void *arg)
{
    struct maint *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        pthread_mutex_unlock(&m->mu);
        int64_t wait = maint_tick(m->d, clock_now_ms(&m->d->clock));
        int64_t until = clock_mono_ms() + wait;
        struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000};
        pthread_mutex_lock(&m->mu);
        if (!m->stop)
            pthread_cond_timedwait(&m->cond, &m->mu, &ts);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

struct maint *maint_start(struct jobqd *d)
{
    struct maint *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &a);
    pthread_condattr_destroy(&a);
    pthread_mutex_init(&m->mu, NULL);
    m->d = d;
    if (pthread_create(&m->thread, NULL, maint_main, m) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void maint_stop(struct maint *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->mu);
    free(m);
}
