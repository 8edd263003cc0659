/*
 * events.h - wake-ups fed by committed store changes. The writer calls
 * events_bump after a commit that made jobs claimable; long-poll claims
 * sleep in events_wait until the generation moves, their deadline passes,
 * or the server shuts down. No polling interval is involved.
 */
#ifndef JQ_EVENTS_H
#define JQ_EVENTS_H
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct events {
    pthread_mutex_t mu;
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
void     events_close(struct events *e);
/* Sleeps until gen != seen, shutdown, or deadline (monotonic ms).
 * Returns false on shutdown. */
bool     events_wait(struct events *e, uint64_t seen, int64_t deadline_mono_ms);
/* Same for gen_any: any commit wakes. */
bool     events_wait_any(struct events *e, uint64_t seen, int64_t deadline_mono_ms);

#endif
