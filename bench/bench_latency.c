/*
 * bench_latency.c - request latencies of a running jobqd holding many jobs (issue 4).
 *
 * Fills the server with N jobs spread over U users (user tokens with active_limit 0,
 * POST /v1/jobs/batch, a few connections in parallel), completes a fraction of them
 * (claim max=100 + complete), then measures p50/p99 over HTTP of: bulk create of 1,000,
 * dedup create, status GET, a user's list page of 1,000, claim with 10K pending, cleanup
 * of 100K finished jobs and admin stats. Prints a table beside the seed targets and one
 * JSON line per metric. See usage() for how to start jobqd by hand.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TOK_MAX = 128, ID_MAX = 64, KEEP_IDS = 4096 };

struct cfg {
    const char *url;          /* base url, no trailing slash */
    const char *admin;        /* admin token */
    long jobs;                /* jobs to fill */
    long users;               /* users the fill is spread over */
    long conns;               /* parallel connections for the fill */
    long batch;               /* jobs per batch call (1..1000) */
    long samples;             /* samples per metric (>= 200 recommended) */
    long cleanup_jobs;        /* finished jobs for the cleanup metric */
    long claim_pending;       /* pending jobs in the claim queue */
    double complete_frac;     /* share of the fill to complete */
    long stages[8];           /* --stages: measure at each of these totals (ascending) */
    int n_stages;             /* 0: one stage at jobs */
};

/* One keep-alive connection; one thread at a time. */
struct conn {
    CURL *k;                  /* easy handle */
    char *body;               /* last reply body (malloc'd, NUL-terminated) */
    size_t len, cap;          /* body bytes, allocation */
    long status;              /* last HTTP status, 0 on transport error */
};

struct metric {
    const char *name;         /* JSON name */
    const char *what;         /* table label */
    double target_ms;         /* seed target (p99 judged against it) */
    double *v;                /* samples, ms */
    long n;                   /* samples taken */
};

static const struct cfg *G;   /* the run's configuration (read-only after main parses it) */
static char (*tokens)[TOK_MAX];   /* user tokens, index = user number */
static char kept_ids[KEEP_IDS][ID_MAX];   /* job ids sampled from the fill */
static long nkept;
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;

/* --- time and statistics --- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* q-quantile (0..1) of sorted v[n], nearest rank. */
static double quantile(const double *v, long n, double q)
{
    if (n <= 0) return 0;
    long i = (long)((double)n * q + 0.999999) - 1;
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    return v[i];
}

/* --- HTTP --- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct conn *c = ud;
    size_t add = sz * n;
    if (c->len + add + 1 > c->cap) {
        size_t cap = (c->len + add + 1) * 2;
        char *nb = realloc(c->body, cap);
        if (!nb) return 0;
        c->body = nb;
        c->cap = cap;
    }
    memcpy(c->body + c->len, p, add);
    c->len += add;
    c->body[c->len] = '\0';
    return add;
}

static struct conn *conn_new(void)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c || !(c->k = curl_easy_init())) { fprintf(stderr, "curl init failed\n"); exit(2); }
    return c;
}

static void conn_free(struct conn *c)
{
    if (!c) return;
    curl_easy_cleanup(c->k);
    free(c->body);
    free(c);
}

/* One request; returns the status (0 on transport error); body in c->body. */
static long req(struct conn *c, const char *method, const char *path, const char *token,
                const char *body)
{
    char url[2048], auth[TOK_MAX + 32];
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    h = curl_slist_append(h, auth);
    if (body) h = curl_slist_append(h, "Content-Type: application/json");
    snprintf(url, sizeof url, "%s%s", G->url, path);
    curl_easy_reset(c->k);
    curl_easy_setopt(c->k, CURLOPT_URL, url);
    curl_easy_setopt(c->k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c->k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->k, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c->k, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(c->k, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->k, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->k, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c->k, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        curl_easy_setopt(c->k, CURLOPT_POSTFIELDS, body);
    } else if (!strcmp(method, "POST")) {
        curl_easy_setopt(c->k, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(c->k, CURLOPT_POSTFIELDS, "");
    }
    c->len = 0;
    if (c->body) c->body[0] = '\0';
    c->status = 0;
    if (curl_easy_perform(c->k) == CURLE_OK)
        curl_easy_getinfo(c->k, CURLINFO_RESPONSE_CODE, &c->status);
    curl_slist_free_all(h);
    return c->status;
}

/* Same, exits with a message unless the status is want. */
static void req_ok(struct conn *c, const char *method, const char *path, const char *token,
                   const char *body, long want)
{
    if (req(c, method, path, token, body) == want) return;
    fprintf(stderr, "bench_latency: %s %s -> %ld (want %ld): %.400s\n", method, path, c->status,
            want, c->body ? c->body : "");
    exit(1);
}

/* Timed request (ms); exits unless the status is want. */
static double timed(struct conn *c, const char *method, const char *path, const char *token,
                    const char *body, long want)
{
    double t0 = now_ms();
    long st = req(c, method, path, token, body);
    double dt = now_ms() - t0;
    if (st != want) {
        fprintf(stderr, "bench_latency: %s %s -> %ld (want %ld): %.400s\n", method, path, st,
                want, c->body ? c->body : "");
        exit(1);
    }
    return dt;
}

/* --- growable string for request bodies --- */

struct sb {
    char *p;                  /* text, NUL-terminated */
    size_t len, cap;
};

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n >= 0 && b->p && b->len + (size_t)n < b->cap) { b->len += (size_t)n; return; }
        size_t cap = (b->cap + (size_t)(n > 0 ? n : 64) + 1) * 2;
        char *np = realloc(b->p, cap);
        if (!np) { fprintf(stderr, "out of memory\n"); exit(2); }
        b->p = np;
        b->cap = cap;
    }
}

/* {"jobs":[n × {"type":type,"queue":queue,"params":{"u":u,"s":seq0+i,...}}]} into b. */
static void batch_body(struct sb *b, const char *type, const char *queue, long u, long seq0,
                       long n)
{
    static const char *types[] = { "email.send", "report.build", "thumb.make", "index.update" };
    b->len = 0;
    sb_printf(b, "{\"jobs\":[");
    for (long i = 0; i < n; i++)
        sb_printf(b, "%s{\"type\":\"%s\",\"queue\":\"%s\",\"priority\":%ld,\"params\":{\"u\":%ld,"
                  "\"s\":%ld,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}", i ? "," : "",
                  type ? type : types[(seq0 + i) & 3], queue, (seq0 + i) % 5, u, seq0 + i);
    sb_printf(b, "]}");
}

/* Keeps a few ids of a batch reply in kept_ids (for status GETs). */
static void keep_ids(const char *body)
{
    json_t *r = json_loads(body, 0, NULL);
    json_t *jobs = json_object_get(r, "jobs");
    pthread_mutex_lock(&kept_lock);
    for (size_t i = 0; i < json_array_size(jobs) && nkept < KEEP_IDS; i += 97) {
        const char *id = json_string_value(json_object_get(json_array_get(jobs, i), "id"));
        if (id) snprintf(kept_ids[nkept++], ID_MAX, "%s", id);
    }
    pthread_mutex_unlock(&kept_lock);
    json_decref(r);
}

/* --- parallel phases: threads take work items from a shared counter --- */

struct phase {
    long items;               /* work items */
    long next;                /* next item (atomic) */
    long done;                /* finished items (atomic), for progress */
    void (*fn)(struct conn *c, long item, struct sb *scratch);
};

static void *phase_run(void *arg)
{
    struct phase *p = arg;
    struct conn *c = conn_new();
    struct sb b = { 0 };
    long i;
    while ((i = __atomic_fetch_add(&p->next, 1, __ATOMIC_SEQ_CST)) < p->items) {
        p->fn(c, i, &b);
        __atomic_add_fetch(&p->done, 1, __ATOMIC_SEQ_CST);
    }
    free(b.p);
    conn_free(c);
    return NULL;
}

/* Runs fn(item) for items 0..n-1 over G->conns threads; returns the wall ms. */
static double parallel(const char *label, long n, void (*fn)(struct conn *, long, struct sb *))
{
    struct phase p = { n, 0, 0, fn };
    long nt = G->conns;
    pthread_t *t = calloc((size_t)nt, sizeof *t);
    double t0 = now_ms();
    for (long i = 0; i < nt; i++) pthread_create(&t[i], NULL, phase_run, &p);
    for (long i = 0; i < nt; i++) pthread_join(t[i], NULL);
    free(t);
    double ms = now_ms() - t0;
    fprintf(stderr, "  %-28s %8ld items in %8.0f ms\n", label, n, ms);
    return ms;
}

/* --- fill --- */

static void make_token(struct conn *c, long u, struct sb *b)
{
    b->len = 0;
    sb_printf(b, "{\"user_id\":\"bu-%05ld\",\"role\":\"user\",\"name\":\"bench\",\"active_limit\":0}", u);
    req_ok(c, "POST", "/v1/tokens", G->admin, b->p, 201);
    json_t *r = json_loads(c->body, 0, NULL);
    const char *tok = json_string_value(json_object_get(r, "token"));
    if (!tok) { fprintf(stderr, "no token in %s\n", c->body); exit(1); }
    snprintf(tokens[u], TOK_MAX, "%s", tok);
    json_decref(r);
}

/* Fill work item i: the (i % users)-th user's chunk number i / users. */
static long per_user;         /* jobs per user (last chunk may be short) */
static long seq_base;         /* first params seq of this fill (stages fill more) */
static long stage_no;         /* 0, 1, ... (--stages): keeps each stage's params distinct */
static long chunks_per_user;

static void fill_item(struct conn *c, long i, struct sb *b)
{
    long u = i % G->users, chunk = i / G->users;
    long first = chunk * G->batch;
    long n = per_user - first < G->batch ? per_user - first : G->batch;
    if (n <= 0) return;
    batch_body(b, NULL, "fill", u, seq_base + u * per_user + first, n);
    req_ok(c, "POST", "/v1/jobs/batch", tokens[u], b->p, 201);
    if (i % 7 == 0) keep_ids(c->body);
}

/* Claims up to 100 jobs of "fill" and completes them; item = one claim. */
static void complete_item(struct conn *c, long i, struct sb *b)
{
    char path[256];
    (void)i;
    req_ok(c, "POST", "/v1/queues/fill/claim", G->admin, "{\"worker_id\":\"bench\",\"max\":100}", 200);
    json_t *r = json_loads(c->body, 0, NULL);
    json_t *jobs = json_object_get(r, "jobs");
    for (size_t k = 0; k < json_array_size(jobs); k++) {
        json_t *j = json_array_get(jobs, k);
        snprintf(path, sizeof path, "/v1/jobs/%s/complete",
                 json_string_value(json_object_get(j, "id")));
        b->len = 0;
        sb_printf(b, "{\"lease_token\":\"%s\",\"result\":{\"ok\":true}}",
                  json_string_value(json_object_get(j, "lease_token")));
        req_ok(c, "POST", path, G->admin, b->p, 200);
    }
    json_decref(r);
}

/* Admin batch of 1000 into a queue; item = one call. */
static const char *admin_queue;
static long admin_total;

static void admin_fill_item(struct conn *c, long i, struct sb *b)
{
    long n = admin_total - i * 1000 < 1000 ? admin_total - i * 1000 : 1000;
    batch_body(b, "bench.x", admin_queue, -1, 900000000L + stage_no * 10000000L + i * 1000, n);
    req_ok(c, "POST", "/v1/jobs/batch", G->admin, b->p, 201);
}

static void admin_fill(const char *queue, long total)
{
    admin_queue = queue;
    admin_total = total;
    char label[64];
    snprintf(label, sizeof label, "seed queue %s", queue);
    parallel(label, (total + 999) / 1000, admin_fill_item);
}

/* Adds jobs (spread over the users) to what is there, and completes a share of them. */
static void fill(long jobs)
{
    double ms;
    per_user = (jobs + G->users - 1) / G->users;
    chunks_per_user = (per_user + G->batch - 1) / G->batch;
    ms = parallel("fill (POST /v1/jobs/batch)", G->users * chunks_per_user, fill_item);
    printf("{\"metric\":\"fill\",\"jobs\":%ld,\"users\":%ld,\"ms\":%.0f,\"jobs_per_s\":%.0f}\n",
           per_user * G->users, G->users, ms, (double)(per_user * G->users) / (ms / 1e3));
    seq_base += per_user * G->users;
    long to_complete = (long)((double)jobs * G->complete_frac / 100.0);
    long claims = (to_complete + 99) / 100;          /* claim max=100 each */
    if (claims > 0) parallel("complete (claim 100 + complete)", claims, complete_item);
}

/* --- metrics --- */

static struct metric *metric_new(const char *name, const char *what, double target, long cap)
{
    struct metric *m = calloc(1, sizeof *m);
    m->name = name;
    m->what = what;
    m->target_ms = target;
    m->v = calloc((size_t)(cap > 0 ? cap : 1), sizeof *m->v);
    return m;
}

static void m_bulk(struct conn *c, struct metric *m, const char *tok)
{
    struct sb b = { 0 };
    for (long i = 0; i < G->samples; i++) {
        batch_body(&b, NULL, "bulkq", 77, 800000000L + stage_no * 10000000L + i * 1000, 1000);
        m->v[m->n++] = timed(c, "POST", "/v1/jobs/batch", tok, b.p, 201);
    }
    free(b.p);
}

static void m_dedup(struct conn *c, struct metric *m, const char *tok)
{
    const char *body = "{\"type\":\"dedup.probe\",\"queue\":\"dq\",\"params\":{\"k\":1,\"n\":[1,2]}}";
    req(c, "POST", "/v1/jobs", tok, body);
    if (c->status != 201 && c->status != 200) { fprintf(stderr, "dedup seed %ld %s\n", c->status, c->body); exit(1); }
    for (long i = 0; i < G->samples; i++) {
        m->v[m->n++] = timed(c, "POST", "/v1/jobs", tok, body, 200);
        if (!strstr(c->body, "\"deduplicated\":true")) {
            fprintf(stderr, "bench_latency: dedup create not deduplicated: %.300s\n", c->body);
            exit(1);
        }
    }
}

static void m_status(struct conn *c, struct metric *m)
{
    char path[128];
    if (nkept == 0) return;
    for (long i = 0; i < G->samples; i++) {
        snprintf(path, sizeof path, "/v1/jobs/%s", kept_ids[(i * 7919) % nkept]);
        m->v[m->n++] = timed(c, "GET", path, G->admin, NULL, 200);
    }
}

static void m_list(struct conn *c, struct metric *m, const char *tok)
{
    for (long i = 0; i < G->samples; i++)
        m->v[m->n++] = timed(c, "GET", "/v1/jobs?limit=1000", tok, NULL, 200);
}

static void m_claim(struct conn *c, struct metric *m)
{
    static long pending;                        /* left in claimq by the last stage */
    admin_fill("claimq", G->claim_pending - pending);
    pending = G->claim_pending - G->samples;
    for (long i = 0; i < G->samples; i++)
        m->v[m->n++] = timed(c, "POST", "/v1/queues/claimq/claim", G->admin,
                             "{\"worker_id\":\"bench\",\"max\":1,\"lease_ms\":3600000}", 200);
}

static void m_stats(struct conn *c, struct metric *m)
{
    for (long i = 0; i < G->samples; i++)
        m->v[m->n++] = timed(c, "GET", "/v1/stats", G->admin, NULL, 200);
}

/* Clears earlier finished jobs, finishes cleanup_jobs jobs, times one cleanup. */
static void m_cleanup(struct conn *c, struct metric *m, long *rows)
{
    req_ok(c, "POST", "/v1/admin/maintenance/cleanup", G->admin, NULL, 200);
    admin_fill("cleanq", G->cleanup_jobs);
    do     /* jobqd may cancel a filter's matches in slices and answer "more": true */
        req_ok(c, "POST", "/v1/jobs/cancel", G->admin, "{\"filter\":{\"queue\":\"cleanq\"}}", 200);
    while (strstr(c->body, "\"more\":true"));
    m->v[m->n++] = timed(c, "POST", "/v1/admin/maintenance/cleanup", G->admin, NULL, 200);
    json_t *r = json_loads(c->body, 0, NULL);
    *rows = json_integer_value(json_object_get(r, "rows"));
    json_decref(r);
}

static void report(struct metric **ms, int n)
{
    printf("\n%-34s %7s %10s %10s %10s  %s\n", "metric", "samples", "p50 ms", "p99 ms",
           "target ms", "p99 vs target");
    for (int i = 0; i < n; i++) {
        struct metric *m = ms[i];
        qsort(m->v, (size_t)m->n, sizeof *m->v, cmp_d);
        double p50 = quantile(m->v, m->n, 0.50), p99 = quantile(m->v, m->n, 0.99);
        printf("%-34s %7ld %10.2f %10.2f %10.0f  %s\n", m->what, m->n, p50, p99, m->target_ms,
               m->n == 0 ? "n/a" : p99 < m->target_ms ? "ok" : "OVER");
    }
    printf("\n");
    for (int i = 0; i < n; i++) {
        struct metric *m = ms[i];
        printf("{\"metric\":\"%s\",\"samples\":%ld,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
               "\"target_ms\":%.0f,\"ok\":%s}\n", m->name, m->n, quantile(m->v, m->n, 0.5),
               quantile(m->v, m->n, 0.99), m->target_ms,
               m->n && quantile(m->v, m->n, 0.99) < m->target_ms ? "true" : "false");
    }
}

/* The seed metrics at the current fill; with ratio, also each p99 against first_p99
 * (the first stage's), else records first_p99. */
static void measure(struct conn *k, const struct cfg *c, double first_p99[7], bool ratio)
{
    /* a user with >= 1000 jobs for the list page, and one for bulk creates */
    struct sb b = { 0 };
    batch_body(&b, NULL, "bigq", 0, 700000000L + stage_no * 10000000L, 1000);
    req_ok(k, "POST", "/v1/jobs/batch", tokens[0], b.p, 201);
    free(b.p);

    struct metric *m[7];
    int n = 0;
    m[n] = metric_new("bulk_create_1000", "bulk create of 1,000", 100, c->samples);
    m_bulk(k, m[n++], tokens[c->users > 1 ? 1 : 0]);
    m[n] = metric_new("dedup_create", "dedup create (existing pending)", 5, c->samples);
    m_dedup(k, m[n++], tokens[0]);
    m[n] = metric_new("status_get", "status GET /v1/jobs/{id}", 2, c->samples);
    m_status(k, m[n++]);
    m[n] = metric_new("list_page_1000", "user list page of 1,000", 5, c->samples);
    m_list(k, m[n++], tokens[0]);
    m[n] = metric_new("claim_10k_pending", "claim with 10K pending", 5, c->samples);
    m_claim(k, m[n++]);
    m[n] = metric_new("stats_admin", "GET /v1/stats (admin)", 50, c->samples);
    m_stats(k, m[n++]);
    long rows = 0;
    m[n] = metric_new("cleanup_100k", "cleanup of finished jobs (1 run)", 500, 1);
    m_cleanup(k, m[n++], &rows);
    fprintf(stderr, "  cleanup deleted %ld rows (%ld finished jobs made for it)%s\n", rows,
            c->cleanup_jobs, rows < c->cleanup_jobs ? " - was jobqd started with --retention-ms 1?" : "");
    report(m, n);
    printf("{\"metric\":\"cleanup_rows\",\"rows\":%ld}\n", rows);
    for (int i = 0; i < n; i++) {
        double p99 = quantile(m[i]->v, m[i]->n, 0.99);
        if (!ratio)
            first_p99[i] = p99;
        else if (first_p99[i] > 0)
            printf("{\"metric\":\"%s\",\"p99_ratio_to_first_stage\":%.2f}\n", m[i]->name,
                   p99 / first_p99[i]);
        free(m[i]->v);
        free(m[i]);
    }
}

/* --- command line --- */

static void usage(FILE *f)
{
    fprintf(f,
"usage: bench_latency --url URL --admin-token TOKEN [options]\n"
"\n"
"Fills a running jobqd with N jobs over U users, completes a share of them, then\n"
"measures p50/p99 over HTTP and prints a table beside the seed targets plus one JSON\n"
"line per metric (stdout; progress on stderr).\n"
"\n"
"  --url URL            jobqd base url (default http://127.0.0.1:8080)\n"
"  --admin-token TOK    admin token (default: $JOBQ_ADMIN_TOKEN)\n"
"  --jobs N             jobs to fill (default 1000000)\n"
"  --users N            users the fill is spread over (default 10000)\n"
"  --conns N            parallel connections for the fill (default 4)\n"
"  --batch N            jobs per batch call, 1..1000 (default 1000; a user's share caps it)\n"
"  --complete PCT       percent of the fill to claim (max=100) and complete (default 10)\n"
"  --samples N          samples per metric (default 200)\n"
"  --cleanup-jobs N     finished jobs deleted by the timed cleanup (default 100000)\n"
"  --claim-pending N    pending jobs in the claim queue (default 10000)\n"
"  --quick              smoke run: 20000 jobs, 200 users, 5000 cleanup jobs\n"
"  --stages N,N,...     fill up to each total in turn and measure at each (e.g.\n"
"                       100000,1000000,10000000: the seed table at 100K, 1M and 10M\n"
"                       and the p99 ratio of the last stage to the first)\n"
"  --help               this text\n"
"\n"
"Metrics (seed targets; the verdict uses p99): bulk create of 1,000 (<100 ms), dedup\n"
"create of an existing pending job (<5 ms), status GET (<2 ms), a user's list page of\n"
"1,000 (<5 ms), claim with 10K pending (<5 ms), cleanup of 100K finished jobs (<500 ms,\n"
"one run), GET /v1/stats as admin (<50 ms).\n"
"\n"
"Start jobqd by hand on an empty database (the cleanup metric needs --retention-ms 1\n"
"and a long --cleanup-interval-ms, so only the timed call deletes):\n"
"\n"
"  export JOBQ_ADMIN_TOKEN=bench-admin-token-0123456789\n"
"  rm -rf /tmp/jqbench && mkdir /tmp/jqbench\n"
"  build/jobqd --db /tmp/jqbench/jobq.db --port 8080 --retention-ms 1 \\\n"
"              --cleanup-interval-ms 86400000 &\n"
"  build/bench_latency --url http://127.0.0.1:8080 --admin-token $JOBQ_ADMIN_TOKEN --quick\n"
"\n"
"Use a non-sanitized release build for figures; each run adds jobs, so start from an\n"
"empty database.\n");
}

static long num(const char *s, const char *opt, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end || v < lo || v > hi) {
        fprintf(stderr, "bench_latency: %s wants an integer in %ld..%ld\n", opt, lo, hi);
        exit(2);
    }
    return v;
}

static void parse(int argc, char **argv, struct cfg *c)
{
    static const struct option o[] = {
        { "url", 1, 0, 'u' }, { "admin-token", 1, 0, 'a' }, { "jobs", 1, 0, 'j' },
        { "users", 1, 0, 'U' }, { "conns", 1, 0, 'c' }, { "batch", 1, 0, 'b' },
        { "complete", 1, 0, 'p' }, { "samples", 1, 0, 's' }, { "cleanup-jobs", 1, 0, 'C' },
        { "claim-pending", 1, 0, 'P' }, { "quick", 0, 0, 'q' }, { "help", 0, 0, 'h' },
        { "stages", 1, 0, 'S' },
        { 0, 0, 0, 0 }
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", o, NULL)) != -1) {
        switch (ch) {
        case 'u': c->url = optarg; break;
        case 'a': c->admin = optarg; break;
        case 'j': c->jobs = num(optarg, "--jobs", 1, 100000000); break;
        case 'U': c->users = num(optarg, "--users", 1, 1000000); break;
        case 'c': c->conns = num(optarg, "--conns", 1, 64); break;
        case 'b': c->batch = num(optarg, "--batch", 1, 1000); break;
        case 'p': c->complete_frac = (double)num(optarg, "--complete", 0, 100); break;
        case 's': c->samples = num(optarg, "--samples", 1, 1000000); break;
        case 'C': c->cleanup_jobs = num(optarg, "--cleanup-jobs", 0, 10000000); break;
        case 'P': c->claim_pending = num(optarg, "--claim-pending", 1, 10000000); break;
        case 'q': c->jobs = 20000; c->users = 200; c->cleanup_jobs = 5000; break;
        case 'S':
            for (char *t = strtok(optarg, ","); t; t = strtok(NULL, ",")) {
                long v = num(t, "--stages", 1, 100000000);
                if (c->n_stages == 8 || (c->n_stages && v <= c->stages[c->n_stages - 1])) {
                    fprintf(stderr, "bench_latency: --stages wants up to 8 ascending totals\n");
                    exit(2);
                }
                c->stages[c->n_stages++] = v;
            }
            break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc) { fprintf(stderr, "bench_latency: stray argument %s\n", argv[optind]); exit(2); }
    if (!c->admin || !*c->admin) { fprintf(stderr, "bench_latency: --admin-token (or JOBQ_ADMIN_TOKEN) is required\n"); exit(2); }
}

int main(int argc, char **argv)
{
    struct cfg c = { "http://127.0.0.1:8080", getenv("JOBQ_ADMIN_TOKEN"), 1000000, 10000, 4,
                     1000, 200, 100000, 10000, 10.0, {0}, 0 };
    parse(argc, argv, &c);
    G = &c;
    curl_global_init(CURL_GLOBAL_ALL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct conn *k = conn_new();
    if (req(k, "GET", "/healthz", c.admin, NULL) != 200) {
        fprintf(stderr, "bench_latency: %s/healthz -> %ld; is jobqd running?\n", c.url, k->status);
        return 1;
    }
    tokens = calloc((size_t)c.users, sizeof *tokens);
    if (c.n_stages == 0)
        c.stages[c.n_stages++] = c.jobs;
    parallel("tokens (active_limit 0)", c.users, make_token);
    double first_p99[7] = {0};
    for (int st = 0; st < c.n_stages; st++, stage_no++) {
        long add = c.stages[st] - (st ? c.stages[st - 1] : 0);
        fprintf(stderr, "bench_latency: stage %d: filling %ld jobs (to %ld) over %ld users"
                " (%ld conns)\n", st + 1, add, c.stages[st], c.users, c.conns);
        fill(add);
        printf("\n## seed table at %ld filled jobs\n", c.stages[st]);
        measure(k, &c, first_p99, st > 0);
    }
    conn_free(k);
    free(tokens);
    curl_global_cleanup();
    return 0;
}
