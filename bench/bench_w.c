/*
 * bench_w.c - the WORKLOADS.md workloads against a running jobqd (issue 5):
 *   W1a  enqueue 100,000 jobs one per call, 32 calls in flight (curl multi, one thread)
 *   W1b  enqueue 100,000 jobs in batches of 1,000 (POST /v1/jobs/batch), one in flight
 *   W2   100,000 jobs pre-enqueued (bulk, untimed), then 16 workers burn them down
 *   W3   a producer at 2,000 jobs/s for 20 s (1 ms tick, <= 1,000 unacknowledged
 *        calls) while 16 long-polling workers run; latency = handler start - payload t
 *   get  status reads: GET /v1/jobs/{id} of 1,000 pending jobs, 32 in flight (with and
 *        without the shared cache, --cache redis://)
 * Workers use POST /v1/queues/{q}/next (completions of the previous batch + the next
 * claim in one call) and fall back to /claim + /complete when /next answers 404.
 * Several --url (nodes of one PostgreSQL database): producer calls go to the
 * nodes round-robin (W1a/W3: the curl multi keeps up to conns/n keep-alive
 * connections per node; W1b: one connection per node), worker i uses node
 * i mod n; admin calls (tokens, stats, the W2 fill) use the first; store
 * counters and server CPU (one --server-pid per node) are summed over the nodes.
 * Prints one JSON line per run with the fields of the peers' results.
 */
#include "benchlib.h"

#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

enum { ID_LEN = 64, MAX_CLAIM = 100, MAX_NODES = 8 };

struct cfg {
    const char *url;          /* base url of the first node, no trailing slash */
    const char *urls[MAX_NODES];   /* every node's base url (urls[0] == url) */
    int n_urls;
    const char *admin;        /* admin token (producer, tokens, stats) */
    const char *workload;     /* w1a | w1b | w2 | w3 */
    const char *queue;        /* queue of every job */
    const char *durability;   /* label of the server's durability setting */
    const char *run_id;       /* copied into the JSON line */
    const char *sweep_label;  /* a single-run sweep point: "sweep":true + this label */
    const char *cache_label;  /* the server's shared cache, copied to the output as "cache" */
    long rep;                 /* repetition number, copied into the JSON line */
    long jobs;                /* W1a/W1b/W2 jobs */
    long inflight;            /* W1a calls in flight */
    long batch;               /* W1b/W2-fill jobs per batch call */
    long workers;             /* W2/W3 worker threads */
    long claim_max;           /* jobs per claim (1..100) */
    long wait_ms;             /* W3 long-poll wait */
    long rate;                /* W3 jobs/s */
    long secs;                /* W3 seconds of production */
    long window;              /* W3 max unacknowledged enqueue calls */
    long w3_conns;            /* W3 producer connections */
    long server_pid;          /* jobqd pid for server CPU, 0 = unknown */
    long server_pids[MAX_NODES];   /* one per node (server_pids[0] == server_pid) */
    int n_pids;
    long w2_limit_s;          /* W2 stops waiting this long after the workers start */
    long gets;                /* GET: status reads */
    long get_ids;             /* GET: distinct jobs read */
    bool quick;               /* smoke sizes */
    bool force_claim;         /* workers use /claim + /complete even if /next exists */
};

/* A measured window: CPU and store counters at both ends. */
struct window {
    struct bl_cpu cpu0, cpu1;
    int64_t ops0, commits0, ops1, commits1;
    bool counters;            /* /v1/admin/store answered at both ends */
};

static const struct cfg *C;

static void die(const char *what)
{
    fprintf(stderr, "bench_w: %s\n", what);
    exit(1);
}

/* --- admin helpers: tokens, store counters, stats --- */

/* One node's store counters, added to *ops and *commits. */
static bool node_counters(const char *url, int64_t *ops, int64_t *commits)
{
    struct bl_conn a;
    bl_conn_open(&a, url, C->admin);
    json_t *j = bl_request(&a, "/v1/admin/store", NULL, 0) == 200 ? bl_reply_json(&a) : NULL;
    bool ok = json_is_integer(json_object_get(j, "ops")) &&
              json_is_integer(json_object_get(j, "commits"));
    if (ok) {
        *ops += json_integer_value(json_object_get(j, "ops"));
        *commits += json_integer_value(json_object_get(j, "commits"));
    }
    json_decref(j);
    bl_conn_close(&a);
    return ok;
}

/* Store counters summed over the nodes. */
static bool store_counters(int64_t *ops, int64_t *commits)
{
    bool ok = true;
    *ops = *commits = 0;
    for (int i = 0; i < C->n_urls; i++)
        ok = node_counters(C->urls[i], ops, commits) && ok;
    return ok;
}

/* CPU of the window's ends, the server's summed over the nodes' pids. */
static void cpu_take(struct bl_cpu *c)
{
    bl_cpu_take(c, C->server_pid);
    for (int i = 1; i < C->n_pids && c->server_s >= 0; i++) {
        double more = bl_proc_cpu_s(C->server_pids[i]);
        c->server_s = more >= 0 ? c->server_s + more : -1;
    }
}

static void window_open(struct window *w)
{
    w->counters = store_counters(&w->ops0, &w->commits0);
    cpu_take(&w->cpu0);
}

static void window_close(struct window *w)
{
    cpu_take(&w->cpu1);
    w->counters = w->counters && store_counters(&w->ops1, &w->commits1);
}

static void window_report(json_t *o, const struct window *w)
{
    bl_cpu_report(o, &w->cpu0, &w->cpu1);
    if (!w->counters) return;
    int64_t ops = w->ops1 - w->ops0, commits = w->commits1 - w->commits0;
    json_object_set_new(o, "store_ops", json_integer(ops));
    json_object_set_new(o, "store_commits", json_integer(commits));
    json_object_set_new(o, "ops_per_commit",
                        json_real(commits ? (double)ops / (double)commits : 0));
}

/* Creates a worker token (POST /v1/tokens) into out[cap]. */
static void worker_token(char *out, size_t cap)
{
    static const char body[] = "{\"user_id\":\"bench-worker\",\"role\":\"worker\",\"name\":\"bench\"}";
    struct bl_conn a;
    bl_conn_open(&a, C->url, C->admin);
    json_t *j = bl_request(&a, "/v1/tokens", body, sizeof body - 1) == 201 ? bl_reply_json(&a)
                                                                            : NULL;
    const char *t = json_string_value(json_object_get(j, "token"));
    if (!t) {
        fprintf(stderr, "bench_w: POST /v1/tokens -> %ld %s\n", a.status, a.body.p ? a.body.p : "");
        exit(1);
    }
    snprintf(out, cap, "%s", t);
    json_decref(j);
    bl_conn_close(&a);
}

/* Pending + processing jobs of the bench queue (GET /v1/stats as admin), -1 on error. */
static long remaining(struct bl_conn *a)
{
    json_t *j = bl_request(a, "/v1/stats", NULL, 0) == 200 ? bl_reply_json(a) : NULL;
    json_t *qs = json_object_get(j, "queues"), *q;
    size_t i;
    long n = j ? 0 : -1;      /* a queue with nothing left may be absent from the list */
    json_array_foreach(qs, i, q) {
        if (strcmp(json_string_value(json_object_get(q, "queue")) ?: "", C->queue)) continue;
        n = (long)(json_integer_value(json_object_get(q, "pending")) +
                   json_integer_value(json_object_get(q, "processing")));
    }
    json_decref(j);
    return n;
}

/* --- result line --- */

static void set_lat(json_t *o, double *v, long n, const char *prefix)
{
    char k[64];
    qsort(v, (size_t)n, sizeof *v, bl_cmp_d);
    snprintf(k, sizeof k, "%sp50_ms", prefix);
    json_object_set_new(o, k, json_real(bl_quantile(v, n, 0.50)));
    snprintf(k, sizeof k, "%sp99_ms", prefix);
    json_object_set_new(o, k, json_real(bl_quantile(v, n, 0.99)));
    snprintf(k, sizeof k, "%smax_ms", prefix);
    json_object_set_new(o, k, json_real(n ? v[n - 1] : 0));
}

static void set_rate(json_t *o, long jobs, long ok, double secs)
{
    json_object_set_new(o, "jobs", json_integer(jobs));
    json_object_set_new(o, "ok", json_integer(ok));
    json_object_set_new(o, "failed", json_integer(jobs - ok));
    json_object_set_new(o, "seconds", json_real(secs));
    json_object_set_new(o, "jobs_per_s", json_real(secs > 0 ? (double)ok / secs : 0));
}

/* --- curl multi pool: many single-job creates in flight from one thread --- */

struct slot {
    CURL *k;                  /* easy handle; its connection stays in the multi's cache */
    struct bl_buf req;        /* request body (must outlive the transfer) */
    int64_t t0;               /* the payload's t: when the call was made */
    long seq;                 /* job sequence number */
};

struct pool {
    CURLM *m;                 /* multi handle */
    struct slot *slots;       /* all slots */
    long *free;               /* stack of free slot indexes */
    long nslots, nfree;
    struct curl_slist *hdrs;  /* shared request headers */
    char url[MAX_NODES][1024];   /* POST /v1/jobs of each node */
    long calls;               /* calls made: call k goes to node k mod n */
    long ok, failed;          /* 201s and everything else */
    long first_err;           /* status of the first failure, for stderr */
};

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    (void)p; (void)ud;
    return sz * n;
}

static void pool_init(struct pool *p, long nslots, long maxconns)
{
    memset(p, 0, sizeof *p);
    p->m = curl_multi_init();
    /* the connections are split over the nodes (host:port each) */
    curl_multi_setopt(p->m, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (maxconns + C->n_urls - 1) / C->n_urls);
    curl_multi_setopt(p->m, CURLMOPT_MAXCONNECTS, maxconns);
    p->hdrs = bl_headers(C->admin);
    for (int i = 0; i < C->n_urls; i++)
        snprintf(p->url[i], sizeof p->url[i], "%s/v1/jobs", C->urls[i]);
    p->slots = calloc((size_t)nslots, sizeof *p->slots);
    p->free = calloc((size_t)nslots, sizeof *p->free);
    p->nslots = p->nfree = nslots;
    for (long i = 0; i < nslots; i++) {
        struct slot *s = &p->slots[i];
        s->k = curl_easy_init();
        bl_handle_opts(s->k, p->hdrs);
        curl_easy_setopt(s->k, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(s->k, CURLOPT_PRIVATE, s);
        p->free[i] = nslots - 1 - i;
    }
}

static void pool_free(struct pool *p)
{
    for (long i = 0; i < p->nslots; i++) {
        curl_easy_cleanup(p->slots[i].k);
        free(p->slots[i].req.p);
    }
    curl_multi_cleanup(p->m);
    curl_slist_free_all(p->hdrs);
    free(p->slots);
    free(p->free);
}

/* Makes the create call of job seq now (t = now); needs a free slot. */
static void pool_submit(struct pool *p, long seq)
{
    struct slot *s = &p->slots[p->free[--p->nfree]];
    bl_buf_reset(&s->req);
    s->seq = seq;
    s->t0 = bl_now_us();
    curl_easy_setopt(s->k, CURLOPT_URL, p->url[p->calls++ % C->n_urls]);
    bl_create_body(&s->req, C->queue, seq, s->t0, true);
    curl_easy_setopt(s->k, CURLOPT_POSTFIELDSIZE, (long)s->req.n);
    curl_easy_setopt(s->k, CURLOPT_POSTFIELDS, s->req.p);
    curl_multi_add_handle(p->m, s->k);
}

typedef void (*done_fn)(void *ud, const struct slot *s, int64_t t_ack);

/* Drives the transfers, waiting up to timeout_ms for one to finish; calls done for
 * each finished one. Returns how many finished. */
static long pool_pump(struct pool *p, int timeout_ms, done_fn done, void *ud)
{
    long n = 0;
    int running, left;
    for (int round = 0; round < 2 && n == 0; round++) {
        if (round) curl_multi_poll(p->m, NULL, 0, timeout_ms, NULL);
        curl_multi_perform(p->m, &running);
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(p->m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            struct slot *s;
            long status = 0;
            int64_t t_ack = bl_now_us();
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            if (msg->data.result == CURLE_OK)
                curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            curl_multi_remove_handle(p->m, s->k);
            p->free[p->nfree++] = s - p->slots;
            if (status == 201) p->ok++;
            else if (p->failed++ == 0) p->first_err = status;
            done(ud, s, t_ack);
            n++;
        }
    }
    return n;
}

/* --- W1a: one job per call, 32 in flight --- */

struct w1a_acc {
    double *lat;              /* call latency by seq, ms */
    int64_t last_ack;         /* µs */
};

static void w1a_done(void *ud, const struct slot *s, int64_t t_ack)
{
    struct w1a_acc *a = ud;
    a->lat[s->seq] = (double)(t_ack - s->t0) / 1e3;
    a->last_ack = t_ack;
}

static void run_w1a(json_t *o)
{
    struct pool p;
    struct window w;
    struct w1a_acc a = { .lat = calloc((size_t)C->jobs, sizeof(double)) };
    long sent = 0, done = 0;
    pool_init(&p, C->inflight, C->inflight);
    window_open(&w);
    int64_t t_first = bl_now_us();
    while (done < C->jobs) {
        while (sent < C->jobs && p.nfree) pool_submit(&p, sent++);
        done += pool_pump(&p, 100, w1a_done, &a);
    }
    window_close(&w);
    set_rate(o, C->jobs, p.ok, (double)(a.last_ack - t_first) / 1e6);
    set_lat(o, a.lat, C->jobs, "");
    window_report(o, &w);
    char proto[128];
    snprintf(proto, sizeof proto, "POST /v1/jobs, %ld in flight (curl multi, %ld keep-alive conns)",
             C->inflight, C->inflight);
    json_object_set_new(o, "protocol", json_string(proto));
    if (p.failed) fprintf(stderr, "bench_w: %ld creates failed (first: HTTP %ld)\n", p.failed, p.first_err);
    pool_free(&p);
    free(a.lat);
}

/* --- W1b and the W2 fill: batches through POST /v1/jobs/batch --- */

/* Enqueues jobs [first, first+n) in batches, call k on connection c[k mod nc] (one
 * per node, or just one); per-call latency into lat (may be NULL). Returns the jobs
 * created. */
static long enqueue_batches(struct bl_conn *cs, int nc, long first, long n, double *lat)
{
    struct bl_buf b = { 0 };
    long created = 0;
    for (long i = 0, call = 0; i < n; i += C->batch, call++) {
        long k = n - i < C->batch ? n - i : C->batch;
        bl_buf_reset(&b);
        int64_t t = bl_now_us();
        bl_buf_printf(&b, "{\"jobs\":[");
        for (long j = 0; j < k; j++) {
            if (j) bl_buf_printf(&b, ",");
            bl_create_body(&b, C->queue, first + i + j, t, false);
        }
        bl_buf_printf(&b, "]}");
        struct bl_conn *c = &cs[call % nc];
        long st = bl_request(c, "/v1/jobs/batch", b.p, b.n);
        if (lat) lat[call] = (double)(bl_now_us() - t) / 1e3;
        if (st == 201) created += k;
        else fprintf(stderr, "bench_w: batch -> %ld %.300s\n", st, c->body.p ? c->body.p : "");
    }
    free(b.p);
    return created;
}

static void run_w1b(json_t *o)
{
    struct bl_conn c[MAX_NODES];
    struct window w;
    long calls = (C->jobs + C->batch - 1) / C->batch;
    double *lat = calloc((size_t)calls, sizeof *lat);
    for (int i = 0; i < C->n_urls; i++)
        bl_conn_open(&c[i], C->urls[i], C->admin);
    window_open(&w);
    int64_t t0 = bl_now_us();
    long ok = enqueue_batches(c, C->n_urls, 0, C->jobs, lat);
    int64_t t1 = bl_now_us();
    window_close(&w);
    set_rate(o, C->jobs, ok, (double)(t1 - t0) / 1e6);
    set_lat(o, lat, calls, "");
    window_report(o, &w);
    char proto[128];
    snprintf(proto, sizeof proto, "POST /v1/jobs/batch, %ld per call, 1 in flight%s",
             C->batch, C->n_urls > 1 ? ", calls alternate over the nodes" : "");
    json_object_set_new(o, "protocol", json_string(proto));
    json_object_set_new(o, "latency_of", json_string("batch call"));
    for (int i = 0; i < C->n_urls; i++)
        bl_conn_close(&c[i]);
    free(lat);
}

/* --- workers (W2, W3) --- */

struct shared {
    const char *token;        /* worker token */
    bool use_next;            /* /next, else /claim + /complete */
    bool w3;                  /* long-poll until stop; record job latency */
    long nseq;                /* job seqs are 0..nseq-1 */
    atomic_bool stop;         /* W3: finish and leave; W2: give up */
    atomic_long completed;    /* completions the server acknowledged */
    atomic_long started;      /* distinct jobs whose handler started */
    atomic_long errors;       /* failed calls and per-item errors */
    atomic_long empty;        /* claim calls that returned no job */
    atomic_llong first_claim; /* µs of the first claim call (min) */
    atomic_llong last_ack;    /* µs of the last acknowledged completion (max) */
    atomic_llong last_start;  /* µs of the last handler start (max) */
    atomic_uchar *seen;       /* by seq: handler started */
    double *lat;              /* by seq: W3 latency, ms */
};

struct lease {
    char id[ID_LEN];          /* job id */
    char token[ID_LEN];       /* lease token */
};

struct worker {
    struct shared *s;
    int id;                   /* worker number */
    struct bl_conn conn;      /* keep-alive connection */
    struct bl_buf req;        /* request body */
    struct lease held[MAX_CLAIM];   /* claimed, not yet completed */
    int nheld;
    double *call_ms;          /* latency of each call */
    long ncalls, cap;
    pthread_t th;
};

static void atomic_max(atomic_llong *a, long long v)
{
    long long cur = atomic_load(a);
    while (v > cur && !atomic_compare_exchange_weak(a, &cur, v)) {}
}

static void atomic_min(atomic_llong *a, long long v)
{
    long long cur = atomic_load(a);
    while (v < cur && !atomic_compare_exchange_weak(a, &cur, v)) {}
}

static void note_call(struct worker *w, int64_t t0, int64_t t1)
{
    if (w->ncalls == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 1024;
        w->call_ms = realloc(w->call_ms, (size_t)w->cap * sizeof *w->call_ms);
    }
    w->call_ms[w->ncalls++] = (double)(t1 - t0) / 1e3;
    if (w->ncalls == 1) atomic_min(&w->s->first_claim, t0);
}

/* The handler of one claimed job: a no-op that records when it started. */
static void handle_job(struct worker *w, json_t *job)
{
    struct shared *s = w->s;
    int64_t now = bl_now_us();
    json_t *params = json_object_get(job, "params");
    long seq = (long)json_integer_value(json_object_get(params, "seq"));
    int64_t t = json_integer_value(json_object_get(params, "t"));
    if (seq >= 0 && seq < s->nseq && !atomic_exchange(&s->seen[seq], 1)) {
        atomic_fetch_add(&s->started, 1);
        if (s->lat) s->lat[seq] = (double)(now - t) / 1e3;
    }
    atomic_max(&s->last_start, now);
    const char *id = json_string_value(json_object_get(job, "id"));
    const char *lt = json_string_value(json_object_get(job, "lease_token"));
    if (id && lt && w->nheld < MAX_CLAIM) {
        struct lease *l = &w->held[w->nheld++];
        snprintf(l->id, sizeof l->id, "%s", id);
        snprintf(l->token, sizeof l->token, "%s", lt);
    }
}

/* Runs the handler of every job of a claim reply; returns how many. */
static long handle_reply(struct worker *w, json_t *reply)
{
    json_t *jobs = json_object_get(reply, "jobs"), *job;
    size_t i;
    json_array_foreach(jobs, i, job) handle_job(w, job);
    return (long)json_array_size(jobs);
}

static void build_next(struct worker *w, long max, long wait_ms)
{
    bl_buf_reset(&w->req);
    bl_buf_printf(&w->req, "{\"worker_id\":\"bw-%d\",\"complete\":[", w->id);
    for (int i = 0; i < w->nheld; i++)
        bl_buf_printf(&w->req, "%s{\"id\":\"%s\",\"lease_token\":\"%s\"}", i ? "," : "",
                      w->held[i].id, w->held[i].token);
    bl_buf_printf(&w->req, "],\"max\":%ld,\"wait_ms\":%ld}", max, wait_ms);
}

/* One /next exchange: complete what is held, claim up to max. Returns the jobs
 * claimed, or -1 on a failed call (the held jobs stay held). */
static long next_call(struct worker *w, const char *path, long max, long wait_ms)
{
    struct shared *s = w->s;
    build_next(w, max, wait_ms);
    int64_t t0 = bl_now_us();
    long st = bl_request(&w->conn, path, w->req.p, w->req.n);
    int64_t t1 = bl_now_us();
    note_call(w, t0, t1);
    json_t *r = st == 200 ? bl_reply_json(&w->conn) : NULL;
    if (!r) {
        if (atomic_fetch_add(&s->errors, 1) < 5)
            fprintf(stderr, "bench_w: next -> %ld %.300s\n", st, w->conn.body.p ? w->conn.body.p : "");
        return -1;
    }
    long done = (long)json_integer_value(json_object_get(r, "completed"));
    atomic_fetch_add(&s->completed, done);
    atomic_fetch_add(&s->errors, (long)json_array_size(json_object_get(r, "errors")));
    if (done) atomic_max(&s->last_ack, t1);
    w->nheld = 0;
    long n = handle_reply(w, r);
    if (n == 0 && max > 0) atomic_fetch_add(&s->empty, 1);
    json_decref(r);
    return n;
}

static void worker_loop_next(struct worker *w)
{
    struct shared *s = w->s;
    char path[256];
    snprintf(path, sizeof path, "/v1/queues/%s/next", C->queue);
    long wait = s->w3 ? C->wait_ms : 0, fails = 0;
    while (!atomic_load(&s->stop)) {
        long n = next_call(w, path, C->claim_max, wait);
        if (n < 0 && ++fails > 100) break;
        if (n < 0) bl_sleep_us(10000);
        if (n == 0 && !s->w3) return;     /* W2: nothing due and nothing held: done */
    }
    for (int tries = 0; w->nheld && tries < 3; tries++) next_call(w, path, 0, 0);
}

/* /claim max=N, then one /complete per job. */
static void worker_loop_claim(struct worker *w)
{
    struct shared *s = w->s;
    char path[256], body[160];
    snprintf(path, sizeof path, "/v1/queues/%s/claim", C->queue);
    while (!atomic_load(&s->stop)) {
        bl_buf_reset(&w->req);
        bl_buf_printf(&w->req, "{\"worker_id\":\"bw-%d\",\"max\":%ld,\"wait_ms\":%ld}", w->id,
                      C->claim_max, s->w3 ? C->wait_ms : 0L);
        int64_t t0 = bl_now_us();
        long st = bl_request(&w->conn, path, w->req.p, w->req.n);
        note_call(w, t0, bl_now_us());
        json_t *r = st == 200 ? bl_reply_json(&w->conn) : NULL;
        long n = r ? handle_reply(w, r) : -1;
        json_decref(r);
        if (n < 0) { atomic_fetch_add(&s->errors, 1); bl_sleep_us(10000); continue; }
        if (n == 0) atomic_fetch_add(&s->empty, 1);
        if (n == 0 && !s->w3) return;
        for (int i = 0; i < w->nheld; i++) {
            int len = snprintf(body, sizeof body, "{\"lease_token\":\"%s\"}", w->held[i].token);
            snprintf(path, sizeof path, "/v1/jobs/%s/complete", w->held[i].id);
            t0 = bl_now_us();
            st = bl_request(&w->conn, path, body, (size_t)len);
            int64_t t1 = bl_now_us();
            note_call(w, t0, t1);
            if (st == 200) { atomic_fetch_add(&s->completed, 1); atomic_max(&s->last_ack, t1); }
            else atomic_fetch_add(&s->errors, 1);
        }
        w->nheld = 0;
        snprintf(path, sizeof path, "/v1/queues/%s/claim", C->queue);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    bl_conn_open(&w->conn, C->urls[w->id % C->n_urls], w->s->token);   /* alternate nodes */
    if (w->s->use_next) worker_loop_next(w);
    else worker_loop_claim(w);
    bl_conn_close(&w->conn);
    return NULL;
}

static struct worker *workers_start(struct shared *s)
{
    struct worker *ws = calloc((size_t)C->workers, sizeof *ws);
    for (long i = 0; i < C->workers; i++) {
        ws[i].s = s;
        ws[i].id = (int)i;
        pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
    }
    return ws;
}

/* Joins the workers; pools their call latencies into *lat (malloc'd). */
static long workers_join(struct worker *ws, double **lat)
{
    long n = 0;
    for (long i = 0; i < C->workers; i++) {
        pthread_join(ws[i].th, NULL);
        n += ws[i].ncalls;
    }
    *lat = malloc((size_t)(n ? n : 1) * sizeof **lat);
    n = 0;
    for (long i = 0; i < C->workers; i++) {
        memcpy(*lat + n, ws[i].call_ms, (size_t)ws[i].ncalls * sizeof **lat);
        n += ws[i].ncalls;
        free(ws[i].call_ms);
        free(ws[i].req.p);
    }
    free(ws);
    return n;
}

/* Does /next exist? Asks it to claim nothing. */
static bool probe_next(const char *token, char *note, size_t cap)
{
    static const char body[] = "{\"worker_id\":\"probe\",\"max\":0}";
    char path[256];
    struct bl_conn c;
    snprintf(path, sizeof path, "/v1/queues/%s/next", C->queue);
    bl_conn_open(&c, C->url, token);
    long st = bl_request(&c, path, body, sizeof body - 1);
    if (C->force_claim) {
        snprintf(note, cap, "claim max=%ld + complete per job (--protocol claim; /next answered %ld)",
                 C->claim_max, st);
        bl_conn_close(&c);
        return false;
    }
    if (st == 200)
        snprintf(note, cap, "next batch %ld (completions ride on the next claim)", C->claim_max);
    else
        snprintf(note, cap, "claim max=%ld + complete per job (/next answered %ld)", C->claim_max, st);
    bl_conn_close(&c);
    return st == 200;
}

static void shared_init(struct shared *s, const char *token, long nseq, bool w3, char *note,
                        size_t cap)
{
    memset(s, 0, sizeof *s);
    s->token = token;
    s->w3 = w3;
    s->nseq = nseq;
    s->seen = calloc((size_t)nseq, 1);
    s->lat = w3 ? calloc((size_t)nseq, sizeof(double)) : NULL;
    atomic_init(&s->first_claim, INT64_MAX);
    s->use_next = probe_next(token, note, cap);
}

/* --- W2: burn-down --- */

/* Polls the server every 10 ms until nothing is pending or processing; returns the
 * time it first said so (µs), or 0 at the limit. */
static int64_t w2_wait_empty(int64_t t_start)
{
    struct bl_conn a;
    bl_conn_open(&a, C->url, C->admin);
    int64_t end = 0, limit = t_start + (int64_t)C->w2_limit_s * 1000000;
    while (!end && bl_now_us() < limit) {
        if (remaining(&a) == 0) end = bl_now_us();
        else bl_sleep_us(10000);
    }
    bl_conn_close(&a);
    return end;
}

static void run_w2(json_t *o, const char *token)
{
    struct bl_conn c;
    struct shared s;
    struct window w;
    char note[160];
    bl_conn_open(&c, C->url, C->admin);
    long filled = enqueue_batches(&c, 1, 0, C->jobs, NULL);
    bl_conn_close(&c);
    shared_init(&s, token, C->jobs, false, note, sizeof note);
    window_open(&w);
    int64_t t_start = bl_now_us();
    struct worker *ws = workers_start(&s);
    int64_t t_end = w2_wait_empty(t_start);
    if (!t_end) atomic_store(&s.stop, true);
    double *lat;
    long ncalls = workers_join(ws, &lat);
    window_close(&w);
    int64_t first = atomic_load(&s.first_claim), last = atomic_load(&s.last_ack);
    if (!t_end) t_end = last;
    long done = atomic_load(&s.completed);
    set_rate(o, C->jobs, done, (double)(t_end - first) / 1e6);
    json_object_set_new(o, "jobs_per_s_worker_side",
                        json_real(last > first ? (double)done / ((double)(last - first) / 1e6) : 0));
    json_object_set_new(o, "filled", json_integer(filled));
    json_object_set_new(o, "timed_out_270s", json_boolean(bl_now_us() - t_start > C->w2_limit_s * 1000000LL));
    json_object_set_new(o, "errors", json_integer(atomic_load(&s.errors)));
    json_object_set_new(o, "workers", json_integer(C->workers));
    json_object_set_new(o, "worker_calls", json_integer(ncalls));
    set_lat(o, lat, ncalls, "");
    json_object_set_new(o, "latency_of", json_string("worker call"));
    window_report(o, &w);
    json_object_set_new(o, "protocol", json_string(note));
    json_object_set_new(o, "w2_protocol", json_string(note));
    free(lat);
    free(s.seen);
}

/* --- W3: steady-state latency --- */

struct w3_prod {
    struct pool p;
    double *enq_lat;          /* enqueue call latency by seq, ms */
    int64_t first_call, last_ack;   /* µs */
    long acked;               /* calls answered (any status) */
};

static void w3_done(void *ud, const struct slot *s, int64_t t_ack)
{
    struct w3_prod *pr = ud;
    pr->enq_lat[s->seq] = (double)(t_ack - s->t0) / 1e3;
    pr->last_ack = t_ack;
    pr->acked++;
}

/* Sends rate*secs jobs paced on a 1 ms tick, at most window unacknowledged; stops
 * sending at secs + 0.5 s; then waits for the outstanding acks. Returns jobs sent. */
static long w3_produce(struct w3_prod *pr, long total)
{
    long sent = 0;
    int64_t t0 = bl_now_us(), stop_at = t0 + (int64_t)C->secs * 1000000 + 500000;
    pr->first_call = t0;
    for (int64_t tick = t0; sent < total && bl_now_us() < stop_at; tick += 1000) {
        long due = (long)((double)(bl_now_us() - t0) * (double)C->rate / 1e6) + 1;
        if (due > total) due = total;
        while (sent < due && pr->p.nfree) pool_submit(&pr->p, sent++);
        int64_t left;
        while ((left = tick + 1000 - bl_now_us()) > 0)
            pool_pump(&pr->p, (int)((left + 999) / 1000), w3_done, pr);
    }
    int64_t ack_limit = bl_now_us() + 60000000;
    while (pr->acked < sent && bl_now_us() < ack_limit) pool_pump(&pr->p, 100, w3_done, pr);
    return sent;
}

/* Waits until every acknowledged job started, or 30 s without progress. */
static void w3_drain(struct shared *s, long want)
{
    long last = -1;
    int64_t since = bl_now_us();
    while (atomic_load(&s->started) < want && bl_now_us() - since < 30000000) {
        long now = atomic_load(&s->started);
        if (now != last) { last = now; since = bl_now_us(); }
        bl_sleep_us(2000);
    }
}

static void w3_report(json_t *o, struct shared *s, struct w3_prod *pr, long total, long sent)
{
    long n = 0, started = atomic_load(&s->started);
    double *v = malloc((size_t)(started ? started : 1) * sizeof *v);
    for (long i = 0; i < total; i++)
        if (atomic_load(&s->seen[i])) v[n++] = s->lat[i];
    double secs = (double)(pr->last_ack - pr->first_call) / 1e6;
    double rate = secs > 0 ? (double)pr->p.ok / secs : 0;
    double tail = (double)(atomic_load(&s->last_start) - pr->last_ack) / 1e3;
    bool kept = sent == total && pr->p.ok == total && rate >= 0.98 * (double)C->rate &&
                started >= total && tail < 1000.0;
    set_rate(o, total, pr->p.ok, secs);
    json_object_set_new(o, "sent", json_integer(sent));
    json_object_set_new(o, "started", json_integer(started));
    json_object_set_new(o, "completed", json_integer(atomic_load(&s->completed)));
    json_object_set_new(o, "achieved_rate", json_real(rate));
    json_object_set_new(o, "last_start_after_last_ack_ms", json_real(tail));
    json_object_set_new(o, "kept_up", json_boolean(kept));
    set_lat(o, v, n, "");
    json_object_set_new(o, "latency_of", json_string("enqueue call -> worker handler start"));
    set_lat(o, pr->enq_lat, sent, "enqueue_");
    free(v);
}

static void run_w3(json_t *o, const char *token)
{
    struct shared s;
    struct window w;
    struct w3_prod pr = { 0 };
    char note[160], proto[400];
    long total = C->rate * C->secs;
    shared_init(&s, token, total, true, note, sizeof note);
    pr.enq_lat = calloc((size_t)total, sizeof(double));
    pool_init(&pr.p, C->window, C->w3_conns);
    struct worker *ws = workers_start(&s);
    bl_sleep_us(200000);                  /* let the workers park in their long-poll */
    window_open(&w);
    long sent = w3_produce(&pr, total);
    w3_drain(&s, pr.p.ok);
    window_close(&w);
    atomic_store(&s.stop, true);
    double *lat;
    long calls = workers_join(ws, &lat);
    w3_report(o, &s, &pr, total, sent);
    json_object_set_new(o, "worker_calls", json_integer(calls));
    json_object_set_new(o, "worker_empty_claims", json_integer(atomic_load(&s.empty)));
    window_report(o, &w);
    json_object_set_new(o, "errors", json_integer(atomic_load(&s.errors) + pr.p.failed));
    snprintf(proto, sizeof proto,
             "producer: POST /v1/jobs at %ld/s on a 1 ms tick, <= %ld unacked, curl multi "
             "<= %ld conns; workers: %ld threads, %s, wait_ms %ld",
             C->rate, C->window, C->w3_conns, C->workers, note, C->wait_ms);
    json_object_set_new(o, "protocol", json_string(proto));
    json_object_set_new(o, "w3_protocol", json_string(note));
    pool_free(&pr.p);
    free(lat);
    free(pr.enq_lat);
    free(s.seen);
    free(s.lat);
}

/* --- GET: job status reads (what a shared cache is for) --- */

/* Creates n pending jobs in batches through the first node; their ids into ids.
 * Returns how many were created. */
static long get_fill(char (*ids)[ID_LEN], long n)
{
    struct bl_conn c;
    struct bl_buf b = { 0 };
    long got = 0;
    bl_conn_open(&c, C->url, C->admin);
    for (long i = 0; i < n; i += C->batch) {
        long k = n - i < C->batch ? n - i : C->batch;
        bl_buf_reset(&b);
        bl_buf_printf(&b, "{\"jobs\":[");
        for (long j = 0; j < k; j++) {
            if (j) bl_buf_printf(&b, ",");
            bl_create_body(&b, C->queue, i + j, bl_now_us(), false);
        }
        bl_buf_printf(&b, "]}");
        json_t *r = bl_request(&c, "/v1/jobs/batch", b.p, b.n) == 201 ? bl_reply_json(&c) : NULL;
        json_t *job;
        size_t x;
        json_array_foreach(json_object_get(r, "jobs"), x, job)
            if (got < n)
                snprintf(ids[got++], ID_LEN, "%s",
                         json_string_value(json_object_get(job, "id")) ?: "");
        json_decref(r);
    }
    free(b.p);
    bl_conn_close(&c);
    return got;
}

/* Shared-cache hits and misses summed over the nodes (GET /metrics); -1 if unknown. */
static void cache_hits(long *hits, long *misses)
{
    *hits = *misses = 0;
    for (int i = 0; i < C->n_urls; i++) {
        struct bl_conn a;
        bl_conn_open(&a, C->urls[i], C->admin);
        if (bl_request(&a, "/metrics", NULL, 0) == 200 && a.body.p) {
            const char *h = strstr(a.body.p, "\njobq_cache_hits_total ");
            const char *m = strstr(a.body.p, "\njobq_cache_misses_total ");
            *hits += h ? strtol(h + 23, NULL, 10) : 0;
            *misses += m ? strtol(m + 25, NULL, 10) : 0;
        }
        bl_conn_close(&a);
    }
}

struct get_slot {
    CURL *k;                  /* easy handle; keeps its connection in the multi's cache */
    int64_t t0;               /* when the call was made, µs */
    long seq;                 /* call number */
};

/* C->gets status reads, C->inflight in flight (curl multi, one thread), call k for job
 * k mod ids on node k mod n: every node reads every job. */
static void run_get(json_t *o)
{
    char (*ids)[ID_LEN] = calloc((size_t)C->get_ids, ID_LEN);
    long nids = get_fill(ids, C->get_ids);
    if (nids == 0) die("GET: no jobs were created");
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (C->inflight + C->n_urls - 1) / C->n_urls);
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, C->inflight);
    struct curl_slist *hdrs = bl_headers(C->admin);
    struct get_slot *slots = calloc((size_t)C->inflight, sizeof *slots);
    long *free_ = calloc((size_t)C->inflight, sizeof *free_), nfree = C->inflight;
    for (long i = 0; i < C->inflight; i++) {
        slots[i].k = curl_easy_init();
        bl_handle_opts(slots[i].k, hdrs);
        curl_easy_setopt(slots[i].k, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(slots[i].k, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(slots[i].k, CURLOPT_PRIVATE, &slots[i]);
        free_[i] = i;
    }
    double *lat = calloc((size_t)C->gets, sizeof *lat);
    long sent = 0, done = 0, ok = 0, first_err = 0, h0, m0, h1, m1;
    struct window w;
    cache_hits(&h0, &m0);
    window_open(&w);
    int64_t t_first = bl_now_us(), t_last = t_first;
    while (done < C->gets) {
        while (sent < C->gets && nfree) {
            struct get_slot *sl = &slots[free_[--nfree]];
            char url[1024];
            snprintf(url, sizeof url, "%s/v1/jobs/%s", C->urls[sent % C->n_urls], ids[sent % nids]);
            curl_easy_setopt(sl->k, CURLOPT_URL, url);
            sl->seq = sent++;
            sl->t0 = bl_now_us();
            curl_multi_add_handle(m, sl->k);
        }
        int running, left;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        long got = 0;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            struct get_slot *sl;
            long status = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
            if (msg->data.result == CURLE_OK)
                curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            t_last = bl_now_us();
            lat[sl->seq] = (double)(t_last - sl->t0) / 1e3;
            curl_multi_remove_handle(m, sl->k);
            free_[nfree++] = sl - slots;
            if (status == 200) ok++;
            else if (!first_err) first_err = status ? status : -1;
            done++;
            got++;
        }
        if (!got) curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    window_close(&w);
    cache_hits(&h1, &m1);
    set_rate(o, C->gets, ok, (double)(t_last - t_first) / 1e6);
    set_lat(o, lat, C->gets, "");
    window_report(o, &w);
    json_object_set_new(o, "job_ids", json_integer(nids));
    json_object_set_new(o, "cache_hits", json_integer(h1 - h0));
    json_object_set_new(o, "cache_misses", json_integer(m1 - m0));
    char proto[200];
    snprintf(proto, sizeof proto, "GET /v1/jobs/{id} of %ld pending jobs round-robin, %ld in flight"
             " (curl multi, keep-alive)", nids, C->inflight);
    json_object_set_new(o, "protocol", json_string(proto));
    json_object_set_new(o, "latency_of", json_string("status GET"));
    if (ok < C->gets)
        fprintf(stderr, "bench_w: %ld GETs failed (first: HTTP %ld)\n", C->gets - ok, first_err);
    for (long i = 0; i < C->inflight; i++) curl_easy_cleanup(slots[i].k);
    curl_multi_cleanup(m);
    curl_slist_free_all(hdrs);
    free(slots);
    free(free_);
    free(lat);
    free(ids);
}

/* --- command line --- */

static void usage(FILE *f)
{
    fprintf(f,
"usage: bench_w --workload w1a|w1b|w2|w3|get [options]\n"
"\n"
"Runs one WORKLOADS.md workload against a running jobqd and prints one JSON line\n"
"(stdout): workload, jobs, ok, jobs_per_s, p50_ms, p99_ms, max_ms, kept_up (W3),\n"
"server_cpu_s, client_cpu_s, busy_cores, protocol, durability, store_ops/commits.\n"
"Use a fresh jobqd per run (scripts/bench.sh does: make bench).\n"
"\n"
"  --url URL            jobqd base url (default http://127.0.0.1:8080); repeat it for the\n"
"                       nodes of one PostgreSQL database: producer connections round-robin\n"
"                       over them, worker i uses node i mod n\n"
"  --admin-token TOK    admin token (default: $JOBQ_ADMIN_TOKEN); the producer uses it\n"
"                       (admin is not subject to the active limit); a worker token is\n"
"                       created through POST /v1/tokens\n"
"  --workload W         w1a | w1b | w2 | w3 | get (status reads: --gets GETs of --get-ids\n"
"                       pending jobs, --inflight in flight; for the shared cache)\n"
"  --gets N, --get-ids N  GET: reads (default 100000, quick 20000), jobs read (1000)\n"
"  --cache-label TEXT   the server's shared cache (e.g. none, redis), copied to the output\n"
"  --quick              smoke sizes: 10,000 jobs; W3 for 5 s\n"
"  --jobs N             W1a/W1b/W2 jobs (default 100000)\n"
"  --inflight N         W1a calls in flight (default 32)\n"
"  --batch N            W1b / W2-fill jobs per batch call (default 1000)\n"
"  --workers N          W2/W3 worker threads (default 16)\n"
"  --claim-max N        jobs per claim, 1..100 (default 100)\n"
"  --wait-ms N          W3 long-poll wait of the workers (default 1000)\n"
"  --rate N             W3 jobs/s (default 2000)\n"
"  --secs N             W3 seconds of production (default 20)\n"
"  --window N           W3 max unacknowledged enqueue calls (default 1000)\n"
"  --w3-conns N         W3 producer keep-alive connections (default 32)\n"
"  --queue Q            queue (default bench)\n"
"  --protocol P         next (default: /next when it exists, else claim) | claim\n"
"  --server-pid PID     jobqd pid: server CPU from /proc/PID/stat (repeat: one per node)\n"
"  --durability TEXT    the server's durability setting, copied to the output\n"
"  --run-id ID, --rep N copied to the output\n"
"  --sweep-label TEXT   mark the line as a sweep point (\"sweep\":true, \"sweep_label\")\n"
"  --help               this text\n");
}

static long num(const char *s, const char *opt, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end || v < lo || v > hi) {
        fprintf(stderr, "bench_w: %s wants an integer in %ld..%ld\n", opt, lo, hi);
        exit(2);
    }
    return v;
}

static void parse_args(int argc, char **argv, struct cfg *c)
{
    static const struct option opts[] = {
        {"url", 1, NULL, 'u'},        {"admin-token", 1, NULL, 'a'}, {"workload", 1, NULL, 'W'},
        {"quick", 0, NULL, 'Q'},      {"jobs", 1, NULL, 'n'},        {"inflight", 1, NULL, 'i'},
        {"batch", 1, NULL, 'b'},      {"workers", 1, NULL, 'w'},     {"claim-max", 1, NULL, 'm'},
        {"wait-ms", 1, NULL, 'x'},    {"rate", 1, NULL, 'r'},        {"secs", 1, NULL, 's'},
        {"window", 1, NULL, 'o'},     {"w3-conns", 1, NULL, 'k'},    {"queue", 1, NULL, 'q'},
        {"server-pid", 1, NULL, 'p'}, {"durability", 1, NULL, 'd'},  {"run-id", 1, NULL, 'R'},
        {"rep", 1, NULL, 'e'},        {"protocol", 1, NULL, 'P'},    {"help", 0, NULL, 'h'},
        {"sweep-label", 1, NULL, 'L'}, {"gets", 1, NULL, 'g'},    {"get-ids", 1, NULL, 'G'},
        {"cache-label", 1, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    bool jobs_set = false, secs_set = false, gets_set = false;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'u':
            if (c->n_urls == MAX_NODES) die("at most 8 --url");
            c->urls[c->n_urls++] = optarg;
            break;
        case 'a': c->admin = optarg; break;
        case 'W': c->workload = optarg; break;
        case 'Q': c->quick = true; break;
        case 'n': c->jobs = num(optarg, "--jobs", 1, 10000000); jobs_set = true; break;
        case 'i': c->inflight = num(optarg, "--inflight", 1, 1024); break;
        case 'b': c->batch = num(optarg, "--batch", 1, 1000); break;
        case 'w': c->workers = num(optarg, "--workers", 1, 1024); break;
        case 'm': c->claim_max = num(optarg, "--claim-max", 1, MAX_CLAIM); break;
        case 'x': c->wait_ms = num(optarg, "--wait-ms", 0, 30000); break;
        case 'r': c->rate = num(optarg, "--rate", 1, 1000000); break;
        case 's': c->secs = num(optarg, "--secs", 1, 3600); secs_set = true; break;
        case 'o': c->window = num(optarg, "--window", 1, 100000); break;
        case 'k': c->w3_conns = num(optarg, "--w3-conns", 1, 1024); break;
        case 'q': c->queue = optarg; break;
        case 'p':
            if (c->n_pids == MAX_NODES) die("at most 8 --server-pid");
            c->server_pids[c->n_pids++] = num(optarg, "--server-pid", 0, 1L << 30);
            break;
        case 'd': c->durability = optarg; break;
        case 'R': c->run_id = optarg; break;
        case 'L': c->sweep_label = optarg; break;
        case 'g': c->gets = num(optarg, "--gets", 1, 10000000); gets_set = true; break;
        case 'G': c->get_ids = num(optarg, "--get-ids", 1, 1000000); break;
        case 'C': c->cache_label = optarg; break;
        case 'e': c->rep = num(optarg, "--rep", 0, 1000); break;
        case 'P':
            if (strcmp(optarg, "next") && strcmp(optarg, "claim")) { usage(stderr); exit(2); }
            c->force_claim = !strcmp(optarg, "claim");
            break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (c->n_urls == 0) c->urls[c->n_urls++] = c->url;
    c->url = c->urls[0];
    c->server_pid = c->n_pids ? c->server_pids[0] : 0;
    if (c->quick && !jobs_set) c->jobs = 10000;
    if (c->quick && !secs_set) c->secs = 5;
    if (c->quick && !gets_set) c->gets = 20000;
    if (optind < argc || !c->workload) { usage(stderr); exit(2); }
    if (!c->admin || !*c->admin) die("--admin-token (or JOBQ_ADMIN_TOKEN) is required");
}

int main(int argc, char **argv)
{
    struct cfg c = {
        .url = "http://127.0.0.1:8080", .admin = getenv("JOBQ_ADMIN_TOKEN"), .queue = "bench",
        .durability = "unknown", .jobs = 100000, .inflight = 32, .batch = 1000, .workers = 16,
        .claim_max = 100, .wait_ms = 1000, .rate = 2000, .secs = 20, .window = 1000,
        .w3_conns = 32, .w2_limit_s = 270, .gets = 100000, .get_ids = 1000,
    };
    parse_args(argc, argv, &c);
    C = &c;
    curl_global_init(CURL_GLOBAL_ALL);
    json_t *o = json_object();
    json_object_set_new(o, "system", json_string("jobq"));
    char wl[8];
    snprintf(wl, sizeof wl, "W%s", c.workload[0] ? c.workload + 1 : "");
    if (!strcasecmp(c.workload, "get")) snprintf(wl, sizeof wl, "GET");
    json_object_set_new(o, "workload", json_string(wl));
    char token[128];
    if (!strcasecmp(c.workload, "w1a")) run_w1a(o);
    else if (!strcasecmp(c.workload, "w1b")) run_w1b(o);
    else if (!strcasecmp(c.workload, "w2")) { worker_token(token, sizeof token); run_w2(o, token); }
    else if (!strcasecmp(c.workload, "w3")) { worker_token(token, sizeof token); run_w3(o, token); }
    else if (!strcasecmp(c.workload, "get")) run_get(o);
    else { usage(stderr); return 2; }
    json_object_set_new(o, "durability", json_string(c.durability));
    json_object_set_new(o, "nodes", json_integer(c.n_urls));
    if (c.cache_label) json_object_set_new(o, "cache", json_string(c.cache_label));
    json_object_set_new(o, "quick", json_boolean(c.quick));
    if (c.run_id) json_object_set_new(o, "run_id", json_string(c.run_id));
    json_object_set_new(o, "rep", json_integer(c.rep));
    if (c.sweep_label) {
        json_object_set_new(o, "sweep", json_true());
        json_object_set_new(o, "sweep_label", json_string(c.sweep_label));
    }
    long failed = (long)json_integer_value(json_object_get(o, "failed"));
    json_object_set_new(o, "status", json_string(failed ? "errors" : "ok"));
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    printf("%s\n", line);
    free(line);
    json_decref(o);
    curl_global_cleanup();
    return 0;
}
