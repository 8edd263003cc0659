/*
 * admin.c - health, store counters, and the test clock.
 */
#include "server/api/api.h"

#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "server/auth.h"
#include "server/maint.h"
#include "server/metrics.h"

enum { DEGRADED_FOR_MS = 60000 };   /* a disk-full error keeps /healthz degraded this long */

/* Liveness: 200 while the process serves; "degraded" (still 200: restarting would not
 * help) for a minute after the disk was full. 503 "failed" once an I/O error stopped
 * writes (fail-stop): only a restart brings them back, so a supervisor should restart. */
void api_health(struct req *q)
{
    struct store_counters c;
    store_counters(q->d->st, &c);
    if (c.failed_ms) {
        reply_json(q, 503, json_pack("{s:s, s:s}", "status", "failed", "reason",
                                     "storage_failed"));
        return;
    }
    bool full = c.last_full_ms && clock_mono_ms() - c.last_full_ms < DEGRADED_FOR_MS;
    reply_json(q, 200, full ? json_pack("{s:s, s:s}", "status", "degraded", "reason",
                                        "storage_full")
                            : json_pack("{s:s}", "status", "ok"));
}

void api_admin_store(struct req *q)
{
    struct store_counters c;
    store_counters(q->d->st, &c);
    double per = c.commits ? (double)c.ops / (double)c.commits : 0.0;
    reply_json(q, 200, json_pack("{s:s, s:I, s:I, s:f, s:I, s:I}", "backend", c.backend,
                                 "ops", (json_int_t)c.ops, "commits", (json_int_t)c.commits,
                                 "ops_per_commit", per, "commit_us_total",
                                 (json_int_t)c.fsync_us, "claims", (json_int_t)c.claims));
}

/* Test builds: moves the fake clock, then runs the maintenance tick so
 * whatever became due (leases, expiry) is handled before the reply. */
void api_admin_clock(struct req *q)
{
    static const char *const allowed[] = {"advance_ms", "set_ms", NULL};
    if (!q->d->clock.fake) {
        reply_err(q, JQ_E_NOT_FOUND, NULL, "no such route");
        return;
    }
    json_t *b = api_body(q, allowed);
    int64_t adv = 0, set = 0;
    if (b && want_int(q, b, "advance_ms", 0, (int64_t)3650 * 86400000, &adv) &&
        want_int(q, b, "set_ms", 0, INT64_MAX / 2, &set)) {
        if (set)           /* tests that restart jobqd put the clock back where it was */
            clock_advance(&q->d->clock, set - clock_now_ms(&q->d->clock));
        clock_advance(&q->d->clock, adv);
        int64_t now = clock_now_ms(&q->d->clock);
        maint_tick(q->d, now);
        events_bump(&q->d->ev, true);    /* delayed jobs may be due now */
        char t[TIME_STR_MAX];
        time_fmt(now, t);
        reply_json(q, 200, json_pack("{s:s, s:I}", "now", t, "now_ms", (json_int_t)now));
    }
    json_decref(b);
}

void api_admin_maint_report(struct req *q)
{
    reply_json(q, 200, maint_report(q->d));
}

void api_admin_maint_run(struct req *q)
{
    int rows = 0;
    int64_t ms = 0;
    jq_err err = maint_run(q->d, q->params[0], clock_now_ms(&q->d->clock), &rows, &ms);
    if (err == JQ_E_NOT_FOUND)
        reply_err(q, err, NULL, "no such maintenance task");
    else if (err)
        api_store_err(q, err);
    else
        reply_json(q, 200, json_pack("{s:s, s:i, s:I}", "name", q->params[0], "rows", rows,
                                     "ms", (json_int_t)ms));
}

/* Readiness: the store answers a read, takes writes (not fail-stopped) and the server is
 * not stopping. */
void api_readyz(struct req *q)
{
    int64_t n = 0;
    struct store_counters c;
    store_counters(q->d->st, &c);
    jq_err err = store_token_count(q->d->st, &q->sc, &n);
    if (c.failed_ms)
        reply_err(q, JQ_E_FAILED, NULL, "storage failed: writes are refused until restart");
    else if (err)
        reply_err(q, JQ_E_UNAVAILABLE, NULL, "storage is not answering");
    else
        reply_json(q, 200, json_pack("{s:s}", "status", "ready"));
}

/* Prometheus text format, for an admin token or --metrics-token. */
void api_metrics(struct req *q)
{
    const char *h = req_header(q, "Authorization"), *mt = q->d->cfg.metrics_token;
    bool ok = h && mt && strlen(mt) >= 16 && strncasecmp(h, "Bearer ", 7) == 0 &&
              strcmp(h + 7, mt) == 0;
    struct principal who;
    struct sctx ac = {.now_ms = q->sc.now_ms};
    if (!ok && (auth_lookup(q->d->st, q->d->tokens, &ac, h, &who) || who.role != ROLE_ADMIN)) {
        reply_err(q, JQ_E_UNAUTH, NULL, "an admin token or the metrics token is required");
        return;
    }
    struct buf b;
    buf_init(&b, 16 << 20);       /* bounded: even thousands of queues fit */
    metrics_render(q->d, &b);
    reply_raw(q, 200, buf_take(&b));
    reply_header(q, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
}
