/*
 * metrics.c - see metrics.h. Histograms use fixed bucket bounds in seconds;
 * all counters are cumulative since start, as Prometheus expects.
 */
#include "server/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/auth.h"
#include "server/cache.h"
#include "server/jobqd.h"
#include "server/router.h"

enum { NB = 14, TYPES_MAX = 64 };   /* bucket bounds + Inf; job types tracked by name */
static const double bounds[NB - 1] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                      0.25, 0.5, 1, 2.5, 5};

struct hist {
    _Atomic uint64_t b[NB];
    _Atomic uint64_t count, sum_us;
};

struct route_m {
    struct hist dur;
    _Atomic uint64_t by_class[6];     /* [1..5] = 1xx..5xx */
    _Atomic uint64_t stmts, over;
};

struct type_m {
    char name[NAME_MAX_LEN + 1];      /* "" = free; "other" once TYPES_MAX are taken */
    struct hist claim_wait, duration;
};

struct metrics {
    int n;                            /* routes; slot n counts unmatched requests */
    struct route_m *routes;
    pthread_mutex_t types_mu;         /* guards naming a free type slot */
    struct type_m types[TYPES_MAX];
};

struct metrics *metrics_new(int n_routes)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (!m || !(m->routes = calloc((size_t)n_routes + 1, sizeof *m->routes))) {
        free(m);
        return NULL;
    }
    m->n = n_routes;
    pthread_mutex_init(&m->types_mu, NULL);
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->types_mu);
    free(m->routes);
    free(m);
}

static void observe(struct hist *h, int64_t us)
{
    int b = 0;
    while (b < NB - 1 && (double)us / 1e6 > bounds[b])
        b++;
    atomic_fetch_add(&h->b[b], 1);
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum_us, (uint64_t)(us > 0 ? us : 0));
}

void metrics_request(struct metrics *m, int route, int status, int64_t us, int stmts,
                     int over_budget)
{
    struct route_m *r = &m->routes[route >= 0 && route < m->n ? route : m->n];
    observe(&r->dur, us);
    int cls = status / 100;
    atomic_fetch_add(&r->by_class[cls >= 1 && cls <= 5 ? cls : 5], 1);
    atomic_fetch_add(&r->stmts, (uint64_t)(stmts > 0 ? stmts : 0));
    atomic_fetch_add(&r->over, (uint64_t)(over_budget != 0));
}

/* The slot of a job type (named on first use; "other" once all are taken). */
static struct type_m *type_slot(struct metrics *m, const char *type)
{
    pthread_mutex_lock(&m->types_mu);
    struct type_m *t = &m->types[TYPES_MAX - 1];
    for (int i = 0; i < TYPES_MAX - 1; i++)
        if (!m->types[i].name[0] || strcmp(m->types[i].name, type) == 0) {
            t = &m->types[i];
            break;
        }
    if (!t->name[0])
        snprintf(t->name, sizeof t->name, "%s", t == &m->types[TYPES_MAX - 1] ? "other" : type);
    pthread_mutex_unlock(&m->types_mu);
    return t;
}

void metrics_claim(struct metrics *m, const char *type, int64_t wait_ms)
{
    observe(&type_slot(m, type)->claim_wait, wait_ms * 1000);
}

/* --- exposition --- */

/* A label value with \\, " and newline escaped. */
static void label(struct buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            buf_printf(b, "\\%c", *v);
        else if (*v == '\n')
            buf_put(b, "\\n", 2);
        else
            buf_put(b, v, 1);
    }
}

static void head(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's series with labels lbl (e.g. route="GET /v1/jobs"). */
static void hist_out(struct buf *b, const char *name, const char *lbl, const uint64_t *bk,
                     int nb, const double *bd, uint64_t count, double sum)
{
    uint64_t cum = 0;
    for (int i = 0; i < nb; i++) {
        cum += bk[i];
        if (i < nb - 1)
            buf_printf(b, "%s_bucket{%s,le=\"%g\"} %llu\n", name, lbl, bd[i],
                       (unsigned long long)cum);
        else
            buf_printf(b, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, lbl, (unsigned long long)cum);
    }
    buf_printf(b, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, lbl, sum, name, lbl,
               (unsigned long long)count);
}

static void hist_atomic(struct buf *b, const char *name, const char *lbl, struct hist *h)
{
    uint64_t bk[NB];
    for (int i = 0; i < NB; i++)
        bk[i] = atomic_load(&h->b[i]);
    uint64_t count = 0;
    for (int i = 0; i < NB; i++)
        count += bk[i];                 /* from the buckets: _count always equals +Inf */
    hist_out(b, name, lbl, bk, NB, bounds, count, (double)atomic_load(&h->sum_us) / 1e6);
}

static void route_label(char *out, size_t cap, const struct route *r)
{
    struct buf t;
    buf_init(&t, 512);
    buf_printf(&t, "route=\"%s ", r ? r->method : "any");
    label(&t, r ? r->pattern : "unmatched");
    buf_put(&t, "\"", 1);
    snprintf(out, cap, "%s", t.data ? t.data : "route=\"?\"");
    buf_fini(&t);
}

static void render_http(struct metrics *m, struct buf *b)
{
    int n;
    const struct route *routes = router_routes(&n);
    char lbl[600];
    head(b, "jobq_http_requests_total", "counter", "HTTP requests by route and status class");
    for (int i = 0; i <= m->n; i++) {
        route_label(lbl, sizeof lbl, i < m->n ? &routes[i] : NULL);
        for (int c = 1; c <= 5; c++)
            buf_printf(b, "jobq_http_requests_total{%s,code=\"%dxx\"} %llu\n", lbl, c,
                       (unsigned long long)atomic_load(&m->routes[i].by_class[c]));
    }
    head(b, "jobq_http_request_duration_seconds", "histogram", "HTTP request duration by route");
    for (int i = 0; i <= m->n; i++) {
        route_label(lbl, sizeof lbl, i < m->n ? &routes[i] : NULL);
        hist_atomic(b, "jobq_http_request_duration_seconds", lbl, &m->routes[i].dur);
    }
    head(b, "jobq_http_statements_total", "counter", "SQL statements run by requests, by route");
    for (int i = 0; i <= m->n; i++) {
        route_label(lbl, sizeof lbl, i < m->n ? &routes[i] : NULL);
        buf_printf(b, "jobq_http_statements_total{%s} %llu\n", lbl,
                   (unsigned long long)atomic_load(&m->routes[i].stmts));
    }
    head(b, "jobq_http_statement_budget_exceeded_total", "counter",
         "requests that ran more SQL statements than their route's budget (N+1 guard)");
    for (int i = 0; i <= m->n; i++) {
        route_label(lbl, sizeof lbl, i < m->n ? &routes[i] : NULL);
        buf_printf(b, "jobq_http_statement_budget_exceeded_total{%s} %llu\n", lbl,
                   (unsigned long long)atomic_load(&m->routes[i].over));
    }
}

static void render_types(struct jobqd *d, struct buf *b)
{
    struct metrics *m = d->metrics;
    uint64_t hits = 0, misses = 0;
    auth_cache_stats(d->tokens, &hits, &misses);
    head(b, "jobq_claim_wait_seconds", "histogram", "time from run_at to claim, by job type");
    pthread_mutex_lock(&m->types_mu);
    int used = 0;
    while (used < TYPES_MAX && m->types[used].name[0])
        used++;
    pthread_mutex_unlock(&m->types_mu);
    for (int i = 0; i < used; i++) {
        char lbl[200];
        struct buf t;
        buf_init(&t, 190);
        buf_printf(&t, "type=\"");
        label(&t, m->types[i].name);
        buf_put(&t, "\"", 1);
        snprintf(lbl, sizeof lbl, "%s", t.data);
        buf_fini(&t);
        hist_atomic(b, "jobq_claim_wait_seconds", lbl, &m->types[i].claim_wait);
    }
    head(b, "jobq_token_cache_hits_total", "counter", "bearer tokens answered from the cache");
    buf_printf(b, "jobq_token_cache_hits_total %llu\n", (unsigned long long)hits);
    head(b, "jobq_token_cache_misses_total", "counter", "bearer tokens looked up in the store");
    buf_printf(b, "jobq_token_cache_misses_total %llu\n", (unsigned long long)misses);
}

static void render_store(struct jobqd *d, struct buf *b)
{
    struct store_counters c;
    store_counters(d->st, &c);
    head(b, "jobq_store_operations_total", "counter", "write operations committed or failed");
    buf_printf(b, "jobq_store_operations_total %llu\n", (unsigned long long)c.ops);
    head(b, "jobq_store_commits_total", "counter", "transactions committed (group commits)");
    buf_printf(b, "jobq_store_commits_total %llu\n", (unsigned long long)c.commits);
    head(b, "jobq_slow_statements_total", "counter", "SQL statements slower than --slow-ms");
    buf_printf(b, "jobq_slow_statements_total %llu\n", (unsigned long long)c.slow_statements);
    uint64_t n = 0;
    for (int i = 0; i < GROUP_BUCKETS; i++)
        n += c.group[i];
    head(b, "jobq_store_group_size", "histogram", "write operations per commit");
    hist_out(b, "jobq_store_group_size", "store=\"main\"", c.group, GROUP_BUCKETS,
             store_group_bounds, n, (double)c.ops);
    head(b, "jobq_store_commit_seconds", "histogram", "commit (fsync) duration");
    hist_out(b, "jobq_store_commit_seconds", "store=\"main\"", c.commit, COMMIT_BUCKETS,
             store_commit_bounds, n, (double)c.fsync_us / 1e6);
}

/* Gauges from the statistics document (counters and buckets, never a scan). */
static void render_jobs(struct jobqd *d, struct buf *b)
{
    struct sctx c = {.now_ms = clock_now_ms(&d->clock)};
    json_t *doc = NULL, *v;
    const char *k;
    if (store_stats(d->st, &c, NULL, &doc))
        return;
    head(b, "jobq_jobs", "gauge", "jobs by status");
    json_object_foreach(json_object_get(doc, "counts"), k, v)
        if (strcmp(k, "total"))
            buf_printf(b, "jobq_jobs{status=\"%s\"} %lld\n", k, (long long)json_integer_value(v));
    struct { const char *list, *key, *metric; } dims[] = {
        {"queues", "queue", "jobq_queue_jobs"}, {"types", "type", "jobq_type_jobs"}};
    for (int i = 0; i < 2; i++) {
        head(b, dims[i].metric, "gauge", "jobs by status and queue / type");
        size_t j;
        json_t *e;
        json_array_foreach(json_object_get(doc, dims[i].list), j, e) {
            json_object_foreach(e, k, v) {
                if (!json_is_integer(v) || !strcmp(k, "total") || strstr(k, "_"))
                    continue;
                buf_printf(b, "%s{%s=\"", dims[i].metric, dims[i].key);
                label(b, json_string_value(json_object_get(e, dims[i].key)));
                buf_printf(b, "\",status=\"%s\"} %lld\n", k, (long long)json_integer_value(v));
            }
        }
    }
    head(b, "jobq_queue_oldest_pending_age_seconds", "gauge", "age of the oldest due job");
    size_t j;
    json_t *e;
    json_array_foreach(json_object_get(doc, "queues"), j, e) {
        json_t *age = json_object_get(e, "oldest_pending_age_ms");
        if (!json_is_integer(age))
            continue;
        buf_printf(b, "jobq_queue_oldest_pending_age_seconds{queue=\"");
        label(b, json_string_value(json_object_get(e, "queue")));
        buf_printf(b, "\"} %.3f\n", (double)json_integer_value(age) / 1000);
    }
    head(b, "jobq_job_duration_p95_seconds", "gauge", "p95 job duration over the last hour");
    json_array_foreach(json_object_get(doc, "types"), j, e) {
        json_t *p95 = json_object_get(e, "p95_duration_ms");
        if (!json_is_number(p95))
            continue;
        buf_printf(b, "jobq_job_duration_p95_seconds{type=\"");
        label(b, json_string_value(json_object_get(e, "type")));
        buf_printf(b, "\"} %.3f\n", json_number_value(p95) / 1000);
    }
    json_decref(doc);
}

/* The shared cache (--cache), when there is one. */
static void render_cache(struct jobqd *d, struct buf *b)
{
    struct cache_counts cc;
    if (!d->cache)
        return;
    cache_counts(d->cache, &cc);
    head(b, "jobq_cache_hits_total", "counter", "shared cache lookups answered from Redis");
    buf_printf(b, "jobq_cache_hits_total %llu\n", (unsigned long long)cc.hits);
    head(b, "jobq_cache_misses_total", "counter", "shared cache lookups that read the store");
    buf_printf(b, "jobq_cache_misses_total %llu\n", (unsigned long long)cc.misses);
    head(b, "jobq_cache_errors_total", "counter", "shared cache commands or connects that failed");
    buf_printf(b, "jobq_cache_errors_total %llu\n", (unsigned long long)cc.errors);
    head(b, "jobq_cache_up", "gauge", "1 if the shared cache answered its last attempt");
    buf_printf(b, "jobq_cache_up %d\n", cc.up ? 1 : 0);
}

void metrics_render(struct jobqd *d, struct buf *b)
{
    render_http(d->metrics, b);
    render_types(d, b);
    render_store(d, b);
    render_jobs(d, b);
    render_cache(d, b);
}
