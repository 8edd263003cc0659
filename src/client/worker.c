/*
 * worker.c - libjobq worker runtime: configuration (handlers, queues, error rules),
 * lifecycle (start, stop, wait with the grace period, run with signals) and statistics.
 * The claim loop is in wloop.c, heartbeats and releases in heartbeat.c (see worker.h).
 *
 * Layers: helpers -> configuration -> lifecycle -> signals -> statistics.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"

enum {
    LEASE_MS_DEFAULT = 30000,
    WAIT_MS_DEFAULT = 2000,    /* long-poll per claim; also how long a stop may go unseen */
    GRACE_MS_DEFAULT = 30000,
    BATCH_MAX = 100,           /* the API's claim cap */
    THREADS_MAX = 1024,        /* per queue; more is a typo, not a plan */
    RELEASE_WAIT_MS = 2000,    /* after releasing, how long handlers get to notice */
    SIGNAL_POLL_MS = 200,      /* run(): how often it checks for a worker that ended */
};

/* --- helpers --- */

int64_t wk__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void wk__wait_until(struct jobq_worker *w, int64_t abs_ms)
{
    struct timespec ts = { (time_t)(abs_ms / 1000), (long)(abs_ms % 1000) * 1000000L };
    pthread_cond_timedwait(&w->cond, &w->mu, &ts);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Default worker id "jobq-HOST-PID", the host cut to the name charset of jobqd. */
static char *default_worker_id(void)
{
    char host[64] = "localhost", id[128];
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
            *p = '_';
    snprintf(id, sizeof id, "jobq-%s-%ld", host, (long)getpid());
    return strdup(id);
}

/* Positive integer from env name, or 0 when unset or not a positive number. */
static int env_int(const char *name)
{
    const char *s = getenv(name);
    char *end;
    if (!s || !*s)
        return 0;
    errno = 0;
    long v = strtol(s, &end, 10);
    return errno || *end || v <= 0 || v > THREADS_MAX ? 0 : (int)v;
}

static int clamp(int v, int dflt, int lo, int hi)
{
    return v <= 0 ? dflt : v < lo ? lo : v > hi ? hi : v;
}

/* --- configuration --- */

jobq_worker *jobq_worker_new(const jobq_worker_opts *o)
{
    static const jobq_worker_opts none;
    pthread_condattr_t ca;
    o = o ? o : &none;
    jobq_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->url = dup_or_null(o->url);
    w->token = dup_or_null(o->token);
    w->worker_id = o->worker_id ? strdup(o->worker_id) : default_worker_id();
    w->lease_ms = clamp(o->lease_ms, LEASE_MS_DEFAULT, 1000, 3600000);
    w->batch = clamp(o->batch, 1, 1, BATCH_MAX);
    w->wait_ms = o->wait_ms < 0 ? 0 : o->wait_ms == 0 ? WAIT_MS_DEFAULT
               : o->wait_ms > 30000 ? 30000 : o->wait_ms;
    w->default_threads = o->threads > 0 ? o->threads : env_int("JOBQ_THREADS");
    w->default_threads = w->default_threads > 0 ? w->default_threads : 1;
    w->grace_ms = o->grace_ms > 0 ? o->grace_ms : GRACE_MS_DEFAULT;
    atomic_init(&w->stopping, false);
    atomic_init(&w->expired, false);
    atomic_init(&w->next_mode, o->no_next ? 0 : -1);
    w->counters.next_supported = o->no_next ? 0 : -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->stat_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);    /* timed waits on wk__now_ms() */
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (!w->worker_id || (o->url && !w->url) || (o->token && !w->token)) {
        jobq_worker_free(w);
        return NULL;
    }
    return w;
}

void jobq_worker_free(jobq_worker *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->nthreads; i++)
        jobq_client_free(w->threads[i].c);
    for (size_t i = 0; i < w->nhandlers; i++)
        free(w->handlers[i].type);
    for (size_t i = 0; i < w->nrules; i++) {
        free(w->rules[i].type);
        free(w->rules[i].cls);
    }
    for (size_t i = 0; i < w->nqueues; i++)
        free(w->queues[i].name);
    for (size_t i = 0; i < w->nstats; i++)
        free(w->stats[i].type);
    free(w->threads);
    free(w->handlers);
    free(w->rules);
    free(w->queues);
    free(w->stats);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->stat_mu);
    free(w->url);
    free(w->token);
    free(w->worker_id);
    free(w);
}

/* Grows *arr (of *n elements of size sz) by one zeroed element; NULL when out of memory. */
static void *grow(void *arr_ptr, size_t *n, size_t sz)
{
    void **arr = arr_ptr;
    char *p = realloc(*arr, (*n + 1) * sz);
    if (!p)
        return NULL;
    *arr = p;
    memset(p + *n * sz, 0, sz);
    return p + (*n)++ * sz;
}

int jobq_worker_handle(jobq_worker *w, const char *type, jobq_handler fn, void *arg)
{
    if (!type || !*type || !fn || w->nthreads)
        return JOBQ_E_INVALID;
    struct whandler *h = grow(&w->handlers, &w->nhandlers, sizeof *h);
    if (!h || !(h->type = strdup(type))) {
        if (h)
            w->nhandlers--;
        return JOBQ_E_NOMEM;
    }
    h->fn = fn;
    h->arg = arg;
    return JOBQ_E_OK;
}

int jobq_worker_queue(jobq_worker *w, const char *queue, int threads)
{
    if (!queue || !*queue || threads < 0 || threads > THREADS_MAX || w->nthreads)
        return JOBQ_E_INVALID;
    struct wqueue *q = grow(&w->queues, &w->nqueues, sizeof *q);
    if (!q || !(q->name = strdup(queue))) {
        if (q)
            w->nqueues--;
        return JOBQ_E_NOMEM;
    }
    q->threads_arg = threads;
    return JOBQ_E_OK;
}

int jobq_worker_rule(jobq_worker *w, const char *type, const char *error_class,
                     jobq_rule_action action, int attempts)
{
    if (!error_class || !*error_class || attempts < 0 || w->nthreads ||
        (action != JOBQ_RULE_RETRY && action != JOBQ_RULE_DISCARD))
        return JOBQ_E_INVALID;
    struct wrule *r = grow(&w->rules, &w->nrules, sizeof *r);
    if (!r)
        return JOBQ_E_NOMEM;
    r->cls = strdup(error_class);
    r->type = dup_or_null(type);
    r->action = action;
    r->attempts = attempts;
    if (!r->cls || (type && !r->type)) {
        free(r->cls);
        free(r->type);
        w->nrules--;
        return JOBQ_E_NOMEM;
    }
    return JOBQ_E_OK;
}

int jobq_worker_retry_on(jobq_worker *w, const char *error_class, int attempts)
{
    return jobq_worker_rule(w, NULL, error_class, JOBQ_RULE_RETRY, attempts);
}

int jobq_worker_discard_on(jobq_worker *w, const char *error_class)
{
    return jobq_worker_rule(w, NULL, error_class, JOBQ_RULE_DISCARD, 0);
}

const struct whandler *wk__handler(const struct jobq_worker *w, const char *type)
{
    const struct whandler *any = NULL;
    for (size_t i = 0; i < w->nhandlers; i++) {
        if (type && strcmp(w->handlers[i].type, type) == 0)
            return &w->handlers[i];
        if (strcmp(w->handlers[i].type, "*") == 0)
            any = &w->handlers[i];
    }
    return any;
}

/* Does class match pattern (exact, "prefix*" or "*")? */
static bool class_matches(const char *pat, const char *cls)
{
    size_t n = strlen(pat);
    if (n > 0 && pat[n - 1] == '*')
        return strncmp(pat, cls, n - 1) == 0;
    return strcmp(pat, cls) == 0;
}

const struct wrule *wk__rule(const struct jobq_worker *w, const char *type, const char *cls)
{
    for (size_t i = 0; i < w->nrules; i++) {
        const struct wrule *r = &w->rules[i];
        if ((!r->type || (type && strcmp(r->type, type) == 0)) && class_matches(r->cls, cls))
            return r;
    }
    return NULL;
}

/* --- lifecycle --- */

/* Threads of q: JOBQ_THREADS_<QUEUE>, else the count given, else the worker default. */
static int queue_threads(const struct jobq_worker *w, const struct wqueue *q)
{
    char name[160] = "JOBQ_THREADS_";
    size_t n = strlen(name);
    for (const char *p = q->name; *p && n < sizeof name - 1; p++, n++)
        name[n] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    name[n] = '\0';
    int t = env_int(name);
    return t > 0 ? t : q->threads_arg > 0 ? q->threads_arg : w->default_threads;
}

/* Lays out one wthread per (queue, thread) with its own client. */
static int make_threads(struct jobq_worker *w)
{
    size_t total = 0;
    for (size_t i = 0; i < w->nqueues; i++)
        total += (size_t)(w->queues[i].threads = queue_threads(w, &w->queues[i]));
    if (!(w->threads = calloc(total, sizeof *w->threads)))
        return JOBQ_E_NOMEM;
    for (size_t i = 0; i < w->nqueues; i++) {
        for (int k = 0; k < w->queues[i].threads; k++) {
            struct wthread *t = &w->threads[w->nthreads++];
            t->w = w;
            t->q = &w->queues[i];
            if (!(t->c = jobq_client_new(w->url, w->token)))
                return JOBQ_E_NOMEM;
            jobq_client_set_timeouts(t->c, 0, 30000 + w->lease_ms);
        }
    }
    return JOBQ_E_OK;
}

int jobq_worker_start(jobq_worker *w)
{
    if (!w->nqueues || !w->nhandlers || w->nthreads)
        return JOBQ_E_INVALID;
    int err = make_threads(w);
    if (err)
        return err;
    pthread_mutex_lock(&w->mu);
    if (pthread_create(&w->beat_tid, NULL, wk__beat_main, w) == 0)
        w->beat_started = true;
    for (size_t i = 0; w->beat_started && i < w->nthreads; i++) {
        struct wthread *t = &w->threads[i];
        if (pthread_create(&t->tid, NULL, wk__claim_main, t) != 0)
            break;
        t->started = true;
        w->alive++;
    }
    bool ok = w->beat_started && w->alive == w->nthreads;
    pthread_mutex_unlock(&w->mu);
    if (!ok) {
        jobq_worker_stop(w);
        jobq_worker_wait(w);
        return JOBQ_E_NOMEM;
    }
    return JOBQ_E_OK;
}

void jobq_worker_stop(jobq_worker *w)
{
    pthread_mutex_lock(&w->mu);
    if (!atomic_load(&w->stopping)) {
        w->stop_at_ms = wk__now_ms();
        atomic_store(&w->stopping, true);
    }
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

void wk__fatal(struct jobq_worker *w, jobq_client *c, const char *what)
{
    pthread_mutex_lock(&w->mu);
    if (!w->error[0])
        snprintf(w->error, sizeof w->error, "%s: %s: %s", what, jobq_last_code(c),
                 jobq_last_message(c));
    pthread_mutex_unlock(&w->mu);
    jobq_worker_stop(w);
}

const char *jobq_worker_error(const jobq_worker *w)
{
    return w->error;
}

/* Waits (mu held) until every claim thread ended or deadline (monotonic; < 0: none). */
static void wait_threads(struct jobq_worker *w, int64_t deadline)
{
    while (w->alive > 0) {
        if (deadline < 0 && atomic_load(&w->stopping))
            deadline = w->stop_at_ms + w->grace_ms;     /* stop came while we waited */
        if (deadline >= 0 && wk__now_ms() >= deadline)
            return;
        wk__wait_until(w, deadline >= 0 ? deadline : wk__now_ms() + 1000);
    }
}

/* Joins the ended claim threads, detaches the others; true when all had ended. */
static bool join_threads(struct jobq_worker *w)
{
    bool all = true;
    for (size_t i = 0; i < w->nthreads; i++) {
        struct wthread *t = &w->threads[i];
        if (!t->started)
            continue;
        pthread_mutex_lock(&w->mu);
        bool ended = t->ended;
        pthread_mutex_unlock(&w->mu);
        if (ended)
            pthread_join(t->tid, NULL);
        else
            pthread_detach(t->tid);
        t->started = false;
        all = all && ended;
    }
    return all;
}

int jobq_worker_wait(jobq_worker *w)
{
    pthread_mutex_lock(&w->mu);
    wait_threads(w, -1);
    if (w->alive > 0) {                           /* the grace period is over */
        atomic_store(&w->expired, true);
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->mu);
        wk__release_all(w);
        pthread_mutex_lock(&w->mu);
        wait_threads(w, wk__now_ms() + RELEASE_WAIT_MS);
    }
    w->beat_quit = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    if (w->beat_started)
        pthread_join(w->beat_tid, NULL);
    w->beat_started = false;
    if (!join_threads(w))
        return JOBQ_E_TIMEOUT;
    return w->error[0] ? JOBQ_E_SERVER : JOBQ_E_OK;
}

/* --- signals --- */

int jobq_worker_run(jobq_worker *w)
{
    sigset_t set, old;
    siginfo_t si;
    struct timespec poll = { 0, SIGNAL_POLL_MS * 1000000L }, zero = { 0, 0 };
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, &old);        /* the worker's threads inherit it */
    int err = jobq_worker_start(w);
    if (err) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return err;
    }
    for (;;) {
        if (sigtimedwait(&set, &si, &poll) >= 0)
            break;
        pthread_mutex_lock(&w->mu);
        bool ended = w->alive == 0 || atomic_load(&w->stopping);
        pthread_mutex_unlock(&w->mu);
        if (ended)
            break;
    }
    jobq_worker_stop(w);
    err = jobq_worker_wait(w);
    while (sigtimedwait(&set, &si, &zero) >= 0)
        ;                                          /* a second SIGTERM during the drain */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}

/* --- statistics --- */

/* The stats row of type, added when new; NULL when out of memory. stat_mu held. */
static struct wstat *stat_row(struct jobq_worker *w, const char *type)
{
    for (size_t i = 0; i < w->nstats; i++)
        if (strcmp(w->stats[i].type, type) == 0)
            return &w->stats[i];
    if (w->nstats == w->capstats) {
        size_t cap = w->capstats ? w->capstats * 2 : 8;
        struct wstat *s = realloc(w->stats, cap * sizeof *s);
        if (!s)
            return NULL;
        w->stats = s;
        w->capstats = cap;
    }
    struct wstat *s = &w->stats[w->nstats];
    memset(s, 0, sizeof *s);
    if (!(s->type = strdup(type)))
        return NULL;
    w->nstats++;
    return s;
}

void wk__stat(struct jobq_worker *w, const char *type, int64_t ms, int kind)
{
    pthread_mutex_lock(&w->stat_mu);
    struct wstat *s = stat_row(w, type ? type : "");
    if (s) {
        s->runs++;
        s->done += kind == 0;
        s->retried += kind == 1;
        s->discarded += kind == 2;
        s->lost += kind == 3;
        s->sum_ms += (double)ms;
        s->ring[s->pos] = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)(ms < 0 ? 0 : ms);
        s->pos = (s->pos + 1) % WK_RING;
        s->nring += s->nring < WK_RING;
    }
    pthread_mutex_unlock(&w->stat_mu);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* 95th percentile (nearest rank) of the ring of s. */
static double p95(const struct wstat *s)
{
    uint32_t tmp[WK_RING];
    if (s->nring == 0)
        return 0;
    memcpy(tmp, s->ring, s->nring * sizeof tmp[0]);
    qsort(tmp, s->nring, sizeof tmp[0], cmp_u32);
    size_t rank = (s->nring * 95 + 99) / 100;      /* ceil(0.95 n), 1-based */
    return tmp[rank - 1];
}

size_t jobq_worker_stats(jobq_worker *w, jobq_worker_type_stats *out, size_t cap)
{
    pthread_mutex_lock(&w->stat_mu);
    for (size_t i = 0; i < w->nstats && i < cap; i++) {
        const struct wstat *s = &w->stats[i];
        out[i] = (jobq_worker_type_stats){
            .type = s->type, .runs = s->runs, .done = s->done, .retried = s->retried,
            .discarded = s->discarded, .lost = s->lost,
            .avg_ms = s->runs ? s->sum_ms / (double)s->runs : 0, .p95_ms = p95(s),
        };
    }
    size_t n = w->nstats;
    pthread_mutex_unlock(&w->stat_mu);
    return n;
}

void jobq_worker_get_counters(jobq_worker *w, jobq_worker_counters *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->counters;
    out->next_supported = atomic_load(&w->next_mode);
    pthread_mutex_unlock(&w->mu);
}
