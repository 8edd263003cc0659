/* sched.c - see sched.h. */
#include "server/sched.h"

#include <string.h>

#include "common/log.h"
#include "common/tz.h"
#include "core/cron.h"
#include "server/jobqd.h"

enum { DUE_BATCH = 100, SCAN_MAX = 100000 };   /* SCAN_MAX bounds a long downtime's walk */

int64_t sched_next(const char *expr, const char *tz, int64_t after)
{
    struct cron c;
    struct naive from, to;
    char why[128];
    if (!cron_parse(expr, &c, why, sizeof why))
        return 0;
    tz_to_naive(tz, after, &from);
    for (int guard = 0; guard < 4; guard++) {     /* a gap can map back onto `after` */
        if (!cron_next(&c, &from, &to))
            return 0;
        int64_t t = tz_from_naive(tz, &to);
        if (t > after)
            return t;
        from = to;
    }
    return 0;
}

/* The fire times of s due at now under its misfire policy; returns how many. */
static int due_times(const struct schedule *s, int64_t now, int64_t *fires, int64_t *next)
{
    int64_t ring[CATCH_UP_MAX], t = s->next_run_at;
    int n = 0, keep = s->catch_up_max < 1 ? 1 : s->catch_up_max > CATCH_UP_MAX ? CATCH_UP_MAX
                                                                             : s->catch_up_max;
    for (int i = 0; t && t <= now && i < SCAN_MAX; i++, n++) {
        ring[n % keep] = t;                        /* the most recent `keep` of them */
        t = sched_next(s->cron, s->timezone, t);
    }
    *next = t;
    int have = n < keep ? n : keep, out = 0;
    for (int i = n - have; i < n; i++) {
        int64_t f = ring[i % keep];
        if (strcmp(s->misfire, "skip") != 0 || now - f < MISFIRE_GRACE_MS)
            fires[out++] = f;
    }
    return out;
}

jq_err sched_tick(struct jobqd *d, int64_t now, int *rows, int64_t *next_ms)
{
    struct sctx c = {.now_ms = now};
    struct schedule_list l;
    jq_err err = store_schedules_due(d->st, &c, DUE_BATCH, &l);
    *rows = 0;
    for (int i = 0; !err && i < l.n; i++) {
        int64_t fires[CATCH_UP_MAX], next = 0;
        int n = due_times(&l.s[i], now, fires, &next), created = 0;
        err = store_schedule_fire(d->st, &c, &l.s[i], fires, n, next, d->cfg.ttl_ms, &created);
        *rows += created;
    }
    bool full = l.n == DUE_BATCH;
    schedule_list_fini(&l);
    *next_ms = 0;
    if (!err && full)
        *next_ms = now;                            /* more due: go again at once */
    else if (!err) {              /* the earliest schedule at all: due "by the end of time" */
        struct sctx any = {.now_ms = INT64_MAX};
        if (!(err = store_schedules_due(d->st, &any, 1, &l))) {
            *next_ms = l.n ? l.s[0].next_run_at : 0;
            schedule_list_fini(&l);
        }
    }
    return err;
}
