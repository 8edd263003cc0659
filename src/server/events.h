/*
 * events.h - wake-ups fed by committed store changes. The writer calls
 * events_bump after a commit that made jobs claimable; long-poll claims
 * sleep in events_wait_queue until they are woken, their deadline passes,
 * or the server shuts down. No polling interval is involved.
 *
 * Long-poll claimers wait per queue, and a claimable commit wakes ONE
 * waiter of each queue, not all of them: with 16 idle workers a broadcast
 * made 16 claim transactions per new job, 15 of which found nothing. A woken
 * waiter that claimed a full batch passes the wake-up on (events_pass), so a
 * burst still reaches as many workers as it needs; one that finds nothing
 * ends the chain.
 */
#ifndef JQ_EVENTS_H
#define JQ_EVENTS_H
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct qwait;                    /* the waiters of one queue (events.c) */

struct events {
    pthread_mutex_t mu;
    struct qwait *queues;        /* queues with long-poll waiters */
    pthread_cond_t cond;         /* CLOCK_MONOTONIC */
    uint64_t gen;                /* bumped on every commit that made jobs claimable */
    uint64_t gen_any;            /* bumped on every commit (SSE, wait) */
    bool closing;                /* shutdown: every waiter returns */
};

void     events_init(struct events *e);
void     events_fini(struct events *e);
uint64_t events_gen(struct events *e);
uint64_t events_gen_any(struct events *e);
void     events_bump(void *e, bool claimable);   /* store_notify_fn */
/* store_notify_fn for store_set_claim_notify: wakes long-poll claimers only (one per
 * queue), not SSE or wait, for a commit that may not be durable yet. */
void     events_wake_claims(void *e, bool claimable);
void     events_close(struct events *e);
/* Sleeps until gen != seen, shutdown, or deadline (monotonic ms).
 * Returns false on shutdown. */
bool     events_wait(struct events *e, uint64_t seen, int64_t deadline_mono_ms);
/* Long-poll claim in queue: sleeps until a claimable commit (or events_pass)
 * picks this waiter, gen != seen at entry, shutdown, or deadline. Returns
 * false on shutdown. */
bool     events_wait_queue(struct events *e, const char *queue, uint64_t seen,
                           int64_t deadline_mono_ms);
/* Wakes one more waiter of queue (a claimer took a full batch: more may be due). */
void     events_pass(struct events *e, const char *queue);
/* Same for gen_any: any commit wakes. */
bool     events_wait_any(struct events *e, uint64_t seen, int64_t deadline_mono_ms);

#endif
