/*
 * pg_due.c - has_due for PostgreSQL: a woken long-poll asks "is anything
 * claimable?" without a round trip, so a commit that wakes 16 waiters does
 * not cost 16 claim transactions of which 15 find nothing.
 *
 * The answer comes from what this node already knows. wake_gen counts the
 * claimable notifications (this node's commits and, through LISTEN, other
 * nodes'); it is bumped after the commit, before the waiters wake. A claim
 * that reads wake_gen = g before its statement and gets fewer jobs than it
 * asked for has taken every job made claimable by notifications up to g
 * (its statement's snapshot is younger than those commits; rows another
 * claim had locked are that claim's). So per queue:
 *   - drained_gen: the highest g of such a claim that committed. A waiter
 *     that sees drained_gen >= wake_gen goes back to sleep: nothing new.
 *   - busy: one claim in flight (or promised by has_due) that started at or
 *     after busy_gen. A waiter whose wake-up it covers waits for its outcome
 *     instead of claiming too: one claim per wake-up, not one per waiter.
 * Jobs that become due by time alone (run_at passing) notify nobody; a
 * long-poll still finds them on its first claim, which never asks here, and
 * answers "due" whenever the drained claim is older than DRAIN_FRESH_MS.
 *
 * The same knowledge saves a claim: a long-poll /next finishes, claims, finds
 * nothing, and its long-poll starts with another claim at once (work.c). When
 * that request's own claim came up short a moment ago, the second claim is
 * treated as a woken long-poll's: pg__due_skip asks has_due, so it is skipped
 * when nothing claimable was notified since, and waits for a claim already
 * covering the newer notifications. (A job whose run_at passed in between
 * waits for the next wake-up, as one that comes due while the long-poll
 * sleeps always does.)
 */
#include "store/postgres/pg_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"

/* SKIP_MS: see pg__due_skip. */
enum { SKIP_MS = 5 };

/* DRAIN_FRESH_MS: how long a drained claim answers for (by the request clock).
 * BUSY_MS: a promise (has_due said "due") or a claim in flight holds the others
 * back at most this long, so a caller that never claims cannot stall them. */
enum { DRAIN_FRESH_MS = 1000, BUSY_MS = 1000 };

/* The slot of queue (guarded by dmu); recycles the least recently used idle one. */
static struct pg_due *slot_of(struct pg *s, const char *queue)
{
    int n = (int)(sizeof s->due / sizeof s->due[0]), victim = -1;
    int64_t now = clock_mono_ms();
    for (int i = 0; i < n; i++) {
        const struct pg_due *d = &s->due[i];
        if (strcmp(d->queue, queue) == 0)
            return &s->due[i];
        bool idle = !d->busy_c || d->busy_until <= now;
        if (idle && (victim < 0 || d->used < s->due[victim].used))
            victim = i;
    }
    if (victim < 0)
        return NULL;
    struct pg_due *d = &s->due[victim];
    memset(d, 0, sizeof *d);
    snprintf(d->queue, sizeof d->queue, "%s", queue);
    return d;
}

static void wait_until(struct pg *s, int64_t mono_ms)
{
    struct timespec ts = {.tv_sec = mono_ms / 1000, .tv_nsec = (mono_ms % 1000) * 1000000L};
    pthread_cond_timedwait(&s->dcond, &s->dmu, &ts);
}

jq_err pg__op_has_due(void *self, struct sctx *c, const char *queue, bool *yes)
{
    struct pg *s = self;
    *yes = true;
    pthread_mutex_lock(&s->dmu);
    for (;;) {
        uint64_t g = atomic_load(&s->wake_gen);
        struct pg_due *d = slot_of(s, queue);
        if (!d)
            break;                                /* every slot busy: just claim */
        d->used = clock_mono_ms();
        if (d->drained_gen >= g && d->drained_at >= c->now_ms - DRAIN_FRESH_MS) {
            *yes = false;
            break;
        }
        if (d->busy_c && d->busy_gen >= g && d->busy_until > d->used) {
            wait_until(s, d->busy_until);         /* its outcome answers us too */
            continue;
        }
        d->busy_c = c;                            /* promise: this caller claims next */
        d->busy_gen = g;
        d->busy_until = d->used + BUSY_MS;
        break;
    }
    pthread_mutex_unlock(&s->dmu);
    return JQ_E_OK;
}

void pg__due_begin(struct pg *s, struct sctx *c, const char *queue, struct pg_due_mark *m)
{
    pthread_mutex_lock(&s->dmu);
    m->gen = atomic_load(&s->wake_gen);
    struct pg_due *d = slot_of(s, queue);
    int64_t now = clock_mono_ms();
    m->tracked = d && (d->busy_c == c || !d->busy_c || d->busy_until <= now);
    if (m->tracked) {
        d->busy_c = c;
        d->busy_gen = m->gen;
        d->busy_until = now + BUSY_MS;
        d->used = now;
    }
    pthread_mutex_unlock(&s->dmu);
}

bool pg__due_skip(struct pg *s, struct sctx *c, const char *queue)
{
    pthread_mutex_lock(&s->dmu);
    const struct pg_due *d = slot_of(s, queue);
    bool recent = d && d->drained_c == c && c->now_ms - d->drained_at <= SKIP_MS;
    pthread_mutex_unlock(&s->dmu);
    bool due = true;
    if (recent)
        pg__op_has_due(s, c, queue, &due);
    return !due;
}

void pg__due_end(struct pg *s, struct sctx *c, const char *queue, const struct pg_due_mark *m,
                 bool drained)
{
    pthread_mutex_lock(&s->dmu);
    struct pg_due *d = slot_of(s, queue);
    if (d && drained && m->gen >= d->drained_gen) {
        d->drained_gen = m->gen;
        d->drained_at = c->now_ms;
        d->drained_c = c;
    }
    if (d && m->tracked && d->busy_c == c)
        d->busy_c = NULL;
    pthread_cond_broadcast(&s->dcond);
    pthread_mutex_unlock(&s->dmu);
}
