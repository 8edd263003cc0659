/* maint.c - see maint.h. */
#include "server/maint.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "server/jobqd.h"
#include "server/sched.h"

enum {
    IDLE_MS = 60000,          /* re-check at least every minute */
    MIN_SLEEP_MS = 5,
    BATCH = 1000,             /* rows per transaction for rescue/expire/pruning */
    MAX_BATCHES = 100,        /* per task per tick; the rest waits MIN_SLEEP_MS */
    IDEM_MAX_AGE_MS = 86400000,
    STATS_MAX_AGE_MS = 2 * 3600000,
    PRUNE_INTERVAL_MS = 600000,
    EVENTS_INTERVAL_MS = 60000,
    LEADER_RECHECK_MS = 1000, /* a node that is not the leader asks again this often */
    SHARED_RECHECK_MS = 1000, /* a leader re-reads the store-told due times this often: a
                               * lease, an expiring job or a schedule made on another node
                               * does not poke this one (maint_poke is local) */
};

struct task {
    const char *name;
    enum maint_task t;
    _Atomic int64_t next_due; /* wall ms (the server's clock); 0 = nothing known due */
    int64_t last_run_at, last_ms;
    int last_rows;
    uint64_t runs;
};

struct maint {
    struct jobqd *d;
    pthread_t thread;
    pthread_mutex_t mu;       /* guards stop; the thread waits on cond with it */
    pthread_cond_t cond;      /* CLOCK_MONOTONIC; signalled on stop */
    bool stop;
    int64_t wake_at;          /* wall ms the thread plans to look next (guarded by mu) */
    pthread_mutex_t run_mu;   /* one task run at a time (thread vs admin endpoint) */
    struct task tasks[MT__N];
};

static const char *const task_names[MT__N] = {
    [MT_RESCUE] = "rescue", [MT_EXPIRE] = "expire", [MT_CLEANUP] = "cleanup",
    [MT_IDEMPOTENCY] = "idempotency", [MT_STATS] = "stats", [MT_EVENTS] = "events",
    [MT_SCHEDULES] = "schedules",
};

/* Fixed interval of a task; 0 for tasks whose next due time the store tells. */
static int64_t interval_of(const struct jobqd *d, enum maint_task t)
{
    switch (t) {
    case MT_CLEANUP: return d->cfg.cleanup_interval_ms;
    case MT_IDEMPOTENCY:
    case MT_STATS: return PRUNE_INTERVAL_MS;
    case MT_EVENTS: return EVENTS_INTERVAL_MS;
    default: return 0;
    }
}

static int64_t age_of(const struct jobqd *d, enum maint_task t)
{
    return t == MT_CLEANUP ? d->cfg.retention_ms
         : t == MT_IDEMPOTENCY ? IDEM_MAX_AGE_MS
         : t == MT_EVENTS ? d->cfg.events_retention_ms : STATS_MAX_AGE_MS;
}

/* Runs batches of one task until one comes back short; records the run. */
static jq_err run_task(struct jobqd *d, struct task *tk, int64_t now, int max_batches)
{
    int batch = tk->t == MT_CLEANUP ? (int)d->cfg.cleanup_batch : BATCH;
    int64_t t0 = clock_mono_us(), next = 0;
    int total = 0, rows = batch, i;
    jq_err err = JQ_E_OK;
    for (i = 0; i < max_batches && rows >= batch && !err; i++) {
        struct sctx c = {.now_ms = now};
        if (tk->t == MT_SCHEDULES) {               /* cron logic lives in the server */
            err = sched_tick(d, now, &rows, &next);
            total += rows;
            rows = next == now ? batch : 0;        /* a full batch: go round again */
            continue;
        }
        err = store_maint(d->st, &c, tk->t, age_of(d, tk->t), batch, &rows, &next);
        total += rows;
    }
    int64_t iv = interval_of(d, tk->t);
    tk->next_due = rows >= batch ? now : iv ? now + iv : next;   /* next == 0: nothing due */
    tk->last_run_at = now;
    tk->last_rows = total;
    tk->last_ms = (clock_mono_us() - t0) / 1000;
    tk->runs++;
    if (err)
        log_warn("maintenance %s: %s", tk->name, jq_err_code(err));
    else if (total)
        log_info("maintenance %s: %d rows in %lld ms", tk->name, total, (long long)tk->last_ms);
    return err;
}

int64_t maint_tick(struct jobqd *d, int64_t now)
{
    struct maint *m = d->maint;
    int64_t wait = IDLE_MS;
    /* Many nodes on one PostgreSQL: only the leader (advisory lock, see
     * store/postgres/pg_notify.c) runs maintenance and cron; the others look
     * again every second, so one takes over soon after a leader dies. */
    if (!store_is_leader(d->st))
        return LEADER_RECHECK_MS;
    pthread_mutex_lock(&m->run_mu);
    for (int i = 0; i < MT__N; i++) {
        struct task *tk = &m->tasks[i];
        /* a task on an interval that is due further out than its interval: the wall
         * clock went back (T8 saw cleanup and pruning wait an hour after -1 h) */
        int64_t iv = interval_of(d, tk->t);
        if (iv && tk->next_due > now + iv)
            tk->next_due = now;
        if (tk->next_due <= now && run_task(d, tk, now, MAX_BATCHES))
            tk->next_due = now + 1000;           /* storage trouble: back off a second */
        if (!iv && store_shared(d->st) &&
            (!tk->next_due || tk->next_due > now + SHARED_RECHECK_MS))
            tk->next_due = now + SHARED_RECHECK_MS;
        int64_t next = tk->next_due;
        if (next && next - now < wait)
            wait = next - now;
    }
    pthread_mutex_unlock(&m->run_mu);
    return wait < MIN_SLEEP_MS ? MIN_SLEEP_MS : wait;
}

jq_err maint_run(struct jobqd *d, const char *name, int64_t now, int *rows, int64_t *ms)
{
    struct maint *m = d->maint;
    for (int i = 0; i < MT__N; i++) {
        if (strcmp(task_names[i], name) != 0)
            continue;
        pthread_mutex_lock(&m->run_mu);
        jq_err err = run_task(d, &m->tasks[i], now, INT32_MAX);
        *rows = m->tasks[i].last_rows;
        *ms = m->tasks[i].last_ms;
        pthread_mutex_unlock(&m->run_mu);
        return err;
    }
    return JQ_E_NOT_FOUND;
}

void maint_poke(struct maint *m, enum maint_task t, int64_t due)
{
    if (!m)
        return;
    int64_t cur = atomic_load(&m->tasks[t].next_due);
    while ((cur == 0 || due < cur) &&
           !atomic_compare_exchange_weak(&m->tasks[t].next_due, &cur, due))
        ;
    pthread_mutex_lock(&m->mu);
    if (due < m->wake_at) {
        m->wake_at = due;
        pthread_cond_signal(&m->cond);
    }
    pthread_mutex_unlock(&m->mu);
}

static json_t *time_json(int64_t ms)
{
    char t[TIME_STR_MAX];
    if (!ms)
        return json_null();
    time_fmt(ms, t);
    return json_string(t);
}

json_t *maint_report(struct jobqd *d)
{
    struct maint *m = d->maint;
    json_t *arr = json_array();
    pthread_mutex_lock(&m->run_mu);
    for (int i = 0; i < MT__N; i++) {
        struct task *tk = &m->tasks[i];
        int64_t iv = interval_of(d, tk->t);
        json_array_append_new(arr, json_pack("{s:s, s:o, s:o, s:I, s:I, s:I, s:o}",
            "name", tk->name, "interval_ms", iv ? json_integer(iv) : json_null(),
            "last_run_at", time_json(tk->last_run_at), "last_rows", (json_int_t)tk->last_rows,
            "last_ms", (json_int_t)tk->last_ms, "runs", (json_int_t)tk->runs,
            "next_run_at", time_json(tk->next_due)));
    }
    pthread_mutex_unlock(&m->run_mu);
    return json_pack("{s:o}", "tasks", arr);
}

static void *maint_main(void *arg)
{
    struct maint *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        pthread_mutex_unlock(&m->mu);
        int64_t now = clock_now_ms(&m->d->clock);
        int64_t wait = maint_tick(m->d, now);
        int64_t until = clock_mono_ms() + wait;
        struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000};
        pthread_mutex_lock(&m->mu);
        m->wake_at = now + wait;
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
    pthread_mutex_init(&m->run_mu, NULL);
    for (int i = 0; i < MT__N; i++)
        m->tasks[i] = (struct task){.name = task_names[i], .t = (enum maint_task)i};
    m->d = d;
    d->maint = m;                 /* before the thread runs: maint_tick reads it */
    if (pthread_create(&m->thread, NULL, maint_main, m) != 0) {
        d->maint = NULL;
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
    pthread_mutex_destroy(&m->run_mu);
    free(m);
}
