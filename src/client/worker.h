/*
 * worker.h - internals of the libjobq worker runtime (worker.c, wloop.c, heartbeat.c);
 * not installed. The public side is the jobq_worker_* / jobq_ctx_* part of jobq.h.
 *
 * Threads and what they own:
 *   claim threads (wloop.c)  one per (queue, slot); each owns a client, the jobs it claimed
 *                            (its todo list) and the outcomes not yet reported
 *   heartbeat thread         own client; beats every held job at lease/3 (heartbeat.c)
 *   the waiting caller       at the end of the grace period releases what is still held
 * Every held job is a jobq_ctx on the worker's `held` list, guarded by worker.mu, from its
 * claim until its outcome is reported (or dropped). The heartbeat thread and the releaser
 * never keep a ctx pointer across an unlocked HTTP call: they remember its seq and look it
 * up again, so the claim thread may free a ctx at any time while holding mu.
 */
#ifndef JOBQ_WORKER_H
#define JOBQ_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "client.h"

#pragma GCC visibility push(hidden)

enum {
    WK_RING = 1024,            /* durations kept per type for the p95 */
    WK_BEAT_IDLE_MS = 250,     /* heartbeat thread re-checks at least this often */
    WK_PROGRESS_MIN_MS = 1000, /* progress alone triggers a beat at most this often */
};

/* A job held by the worker: claimed, running, or finished and not yet reported. */
struct jobq_ctx {
    struct jobq_worker *w;
    struct wthread *t;         /* claim thread that holds it */
    jobq_job *job;             /* owned */
    uint64_t seq;              /* unique per worker: how unlocked code finds it again */
    struct jobq_ctx *prev, *next;   /* worker.held list (guarded by w->mu) */
    struct jobq_ctx *todo;     /* next in the claim thread's list (claim thread only) */
    /* guarded by w->mu */
    int64_t next_beat_ms;      /* monotonic time of the next heartbeat */
    int64_t last_beat_ms;      /* monotonic time of the last heartbeat sent */
    int percent;               /* progress to send; -1 none */
    char *progress_msg;        /* malloc'd or NULL */
    bool progress_dirty;       /* progress not sent yet */
    bool lost;                 /* lease lost or released: drop the outcome */
    bool finished;             /* handler returned; outcome waits to be reported */
    /* claim thread only */
    char *result;              /* JSON text for complete, malloc'd or NULL */
    char *err_class;           /* error_code of a failure, malloc'd or NULL */
    char *err_msg;             /* error_message of a failure, malloc'd or NULL */
    jobq_finish fin;           /* the outcome; strings borrowed from the members above */
};

struct whandler {
    char *type;                /* job type, or "*" */
    jobq_handler fn;
    void *arg;
};

struct wrule {
    char *type;                /* NULL: any type */
    char *cls;                 /* exact class, "prefix*", or "*" */
    jobq_rule_action action;
    int attempts;              /* RETRY: discard once job attempts >= this; 0: no bound */
};

struct wstat {
    char *type;
    int64_t runs, done, retried, discarded, lost;
    double sum_ms;             /* over all runs */
    uint32_t ring[WK_RING];    /* last durations in ms */
    size_t nring;              /* filled entries of ring */
    size_t pos;                /* next slot of ring to write */
};

struct wqueue {
    char *name;
    int threads;               /* resolved at start */
    int threads_arg;           /* as given to jobq_worker_queue */
};

/* One claim thread. */
struct wthread {
    struct jobq_worker *w;
    const struct wqueue *q;
    jobq_client *c;            /* this thread's client */
    pthread_t tid;
    bool started;              /* tid is valid */
    bool ended;                /* set under w->mu when the thread function returns */
    struct jobq_ctx *todo;     /* claimed, not started, in claim order */
    struct jobq_ctx **out;     /* finished, outcome not reported (next mode) */
    size_t nout, capout;
};

struct jobq_worker {
    /* configuration (fixed after start) */
    char *url, *token, *worker_id;
    int lease_ms, batch, wait_ms, default_threads, grace_ms;
    struct whandler *handlers;
    size_t nhandlers;
    struct wrule *rules;
    size_t nrules;
    struct wqueue *queues;
    size_t nqueues;
    struct wthread *threads;
    size_t nthreads;
    /* state */
    pthread_mutex_t mu;        /* guards everything below unless noted */
    pthread_cond_t cond;       /* progress, stop, thread end: wakes beat thread and waiter */
    struct jobq_ctx *held;     /* every held job */
    uint64_t seq;              /* last ctx seq handed out */
    size_t alive;              /* claim threads still running */
    atomic_bool stopping;      /* drain requested */
    atomic_bool expired;       /* grace over: release instead of run */
    atomic_int next_mode;      /* 1 /next works, 0 fall back, -1 not known */
    bool beat_quit;            /* heartbeat thread should end */
    bool beat_started;
    pthread_t beat_tid;
    int64_t stop_at_ms;        /* monotonic time of jobq_worker_stop */
    char error[512];           /* why the worker ended on its own, "" if it did not */
    jobq_worker_counters counters;
    pthread_mutex_t stat_mu;   /* guards stats */
    struct wstat *stats;
    size_t nstats, capstats;
};

/* --- worker.c --- */

int64_t wk__now_ms(void);      /* monotonic */
/* Waits on w->cond (mu held) until at most abs_ms (monotonic). */
void wk__wait_until(struct jobq_worker *w, int64_t abs_ms);
/* Records a duration and outcome for type; kind: 0 done, 1 retried, 2 discarded, 3 lost. */
void wk__stat(struct jobq_worker *w, const char *type, int64_t ms, int kind);
/* Marks the worker failed for good (401/403...), stops it. */
void wk__fatal(struct jobq_worker *w, jobq_client *c, const char *what);
const struct whandler *wk__handler(const struct jobq_worker *w, const char *type);
const struct wrule *wk__rule(const struct jobq_worker *w, const char *type, const char *cls);

/* --- wloop.c --- */

void *wk__claim_main(void *arg);
void wk__ctx_free(struct jobq_ctx *x);

/* --- heartbeat.c --- */

void *wk__beat_main(void *arg);
/* Called by the waiter at the end of the grace period: marks every held job that is not
 * finished as lost and fails it with "worker_shutdown" (retryable). Takes w->mu itself. */
void wk__release_all(struct jobq_worker *w);

#pragma GCC visibility pop

#endif /* JOBQ_WORKER_H */
