/*
 * bench_enqueue.c - enqueue throughput of a running jobqd: N jobs over C concurrent
 * keep-alive connections (one thread + one libcurl easy handle each), ~100-byte
 * payloads. Prints one JSON line with throughput and latency percentiles, and the
 * store's ops per commit (group commit) when given an admin token.
 *
 *   bench_enqueue --url http://127.0.0.1:8080 --token USER_TOKEN [--jobs 20000]
 *                 [--conns 32] [--queue bench] [--admin-token ADMIN_TOKEN]
 */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cfg {
    const char *url;          /* base url, no trailing slash */
    const char *token;        /* user token for POST /v1/jobs */
    const char *admin;        /* admin token for /v1/admin/store, or NULL */
    const char *queue;        /* queue of the created jobs */
    long jobs;                /* total jobs */
    long conns;               /* concurrent connections */
};

struct worker {
    const struct cfg *cfg;    /* shared, read-only */
    long first, count;        /* job sequence numbers [first, first+count) */
    double *lat_ms;           /* out: latency of each of this worker's requests */
    long ok, failed;          /* out: 201s and everything else */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    (void)p; (void)ud;
    return sz * n;
}

/* ~100-byte job body for sequence number seq. */
static int make_body(char *buf, size_t cap, const char *queue, long seq)
{
    return snprintf(buf, cap,
                    "{\"type\":\"noop\",\"queue\":\"%s\",\"params\":{\"user_id\":\"user-%05ld\","
                    "\"seq\":%ld,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxx\"}}",
                    queue, seq % 100000, seq);
}

static CURL *make_handle(const char *url, struct curl_slist *hdrs)
{
    CURL *k = curl_easy_init();
    if (!k) return NULL;
    curl_easy_setopt(k, CURLOPT_URL, url);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(k, CURLOPT_TIMEOUT, 60L);
    return k;
}

static struct curl_slist *auth_headers(const char *token)
{
    char line[512];
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    snprintf(line, sizeof line, "Authorization: Bearer %s", token);
    return curl_slist_append(h, line);
}

/* Sends one create; returns true on 201. */
static bool post_one(CURL *k, const char *queue, long seq)
{
    char body[256];
    long status = 0;
    int n = make_body(body, sizeof body, queue, seq);
    curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE, (long)n);
    curl_easy_setopt(k, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(k) != CURLE_OK) return false;
    curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &status);
    return status == 201;
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    char url[1024];
    snprintf(url, sizeof url, "%s/v1/jobs", w->cfg->url);
    struct curl_slist *h = auth_headers(w->cfg->token);
    CURL *k = make_handle(url, h);
    for (long i = 0; k && i < w->count; i++) {
        double t0 = now_ms();
        bool ok = post_one(k, w->cfg->queue, w->first + i);
        w->lat_ms[i] = now_ms() - t0;
        if (ok) w->ok++; else w->failed++;
    }
    if (!k) w->failed = w->count;
    curl_easy_cleanup(k);
    curl_slist_free_all(h);
    return NULL;
}

/* --- /v1/admin/store counters --- */

struct buf {
    char *p;                  /* body bytes, NUL-terminated */
    size_t n;                 /* length */
};

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
    struct buf *b = ud;
    char *q = realloc(b->p, b->n + sz * n + 1);
    if (!q) return 0;
    memcpy(q + b->n, p, sz * n);
    b->p = q;
    b->n += sz * n;
    b->p[b->n] = '\0';
    return sz * n;
}

/* Reads ops and commits; returns false if unavailable. */
static bool store_counters(const struct cfg *c, int64_t *ops, int64_t *commits)
{
    char url[1024];
    struct buf b = { 0 };
    snprintf(url, sizeof url, "%s/v1/admin/store", c->url);
    struct curl_slist *h = auth_headers(c->admin);
    CURL *k = make_handle(url, h);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, &b);
    bool ok = k && curl_easy_perform(k) == CURLE_OK;
    json_t *j = ok ? json_loads(b.p ? b.p : "", 0, NULL) : NULL;
    ok = json_is_integer(json_object_get(j, "ops")) && json_is_integer(json_object_get(j, "commits"));
    if (ok) {
        *ops = json_integer_value(json_object_get(j, "ops"));
        *commits = json_integer_value(json_object_get(j, "commits"));
    }
    json_decref(j);
    curl_easy_cleanup(k);
    curl_slist_free_all(h);
    free(b.p);
    return ok;
}

/* --- command line --- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_enqueue --url URL --token TOKEN [options]\n"
            "  --url URL            jobqd base url (default http://127.0.0.1:8080)\n"
            "  --token TOKEN        user (or admin) token used to create jobs (required)\n"
            "  --jobs N             jobs to create (default 20000)\n"
            "  --conns C            concurrent keep-alive connections (default 32)\n"
            "  --queue Q            queue of the jobs (default bench)\n"
            "  --admin-token TOKEN  also report ops/commits from /v1/admin/store\n"
            "  --help               this text\n"
            "Prints one JSON line: jobs, conns, seconds, jobs_per_s, p50_ms, p99_ms, max_ms,\n"
            "ok, failed [, ops, commits, ops_per_commit].\n");
}

static int parse_args(int argc, char **argv, struct cfg *c)
{
    static const struct option opts[] = {
        { "url", required_argument, NULL, 'u' },   { "token", required_argument, NULL, 't' },
        { "jobs", required_argument, NULL, 'n' },  { "conns", required_argument, NULL, 'c' },
        { "queue", required_argument, NULL, 'q' }, { "admin-token", required_argument, NULL, 'a' },
        { "help", no_argument, NULL, 'h' },        { NULL, 0, NULL, 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "u:t:n:c:q:a:h", opts, NULL)) != -1) {
        switch (o) {
        case 'u': c->url = optarg; break;
        case 't': c->token = optarg; break;
        case 'n': c->jobs = strtol(optarg, NULL, 10); break;
        case 'c': c->conns = strtol(optarg, NULL, 10); break;
        case 'q': c->queue = optarg; break;
        case 'a': c->admin = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc || !c->token || !*c->token || c->jobs < 1 || c->conns < 1 || c->conns > 4096) {
        usage(stderr);
        return -1;
    }
    if (c->conns > c->jobs) c->conns = c->jobs;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *sorted, long n, double p)
{
    long i = (long)(p * (double)(n - 1) + 0.5);
    return n ? sorted[i] : 0.0;
}

/* Starts the workers on slices of lat; returns seconds taken; sums ok/failed. */
static double run_all(const struct cfg *c, double *lat, long *ok, long *failed)
{
    struct worker *w = calloc((size_t)c->conns, sizeof *w);
    pthread_t *th = calloc((size_t)c->conns, sizeof *th);
    long per = c->jobs / c->conns, extra = c->jobs % c->conns, next = 0;
    double t0 = now_ms();
    for (long i = 0; i < c->conns; i++) {
        w[i] = (struct worker){ .cfg = c, .first = next, .count = per + (i < extra) };
        w[i].lat_ms = lat + next;
        next += w[i].count;
        pthread_create(&th[i], NULL, worker_run, &w[i]);
    }
    for (long i = 0; i < c->conns; i++) {
        pthread_join(th[i], NULL);
        *ok += w[i].ok;
        *failed += w[i].failed;
    }
    double secs = (now_ms() - t0) / 1e3;
    free(w);
    free(th);
    return secs;
}

int main(int argc, char **argv)
{
    struct cfg c = { .url = "http://127.0.0.1:8080", .queue = "bench", .jobs = 20000, .conns = 32 };
    if (parse_args(argc, argv, &c)) return 2;
    curl_global_init(CURL_GLOBAL_ALL);
    int64_t ops0 = 0, commits0 = 0, ops1 = 0, commits1 = 0;
    bool counters = c.admin && store_counters(&c, &ops0, &commits0);
    double *lat = calloc((size_t)c.jobs, sizeof *lat);
    long ok = 0, failed = 0;
    double secs = run_all(&c, lat, &ok, &failed);
    counters = counters && store_counters(&c, &ops1, &commits1);
    qsort(lat, (size_t)c.jobs, sizeof *lat, cmp_double);
    printf("{\"jobs\":%ld,\"conns\":%ld,\"seconds\":%.3f,\"jobs_per_s\":%.1f,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"ok\":%ld,\"failed\":%ld",
           c.jobs, c.conns, secs, secs > 0 ? (double)ok / secs : 0.0, pct(lat, c.jobs, 0.50),
           pct(lat, c.jobs, 0.99), lat[c.jobs - 1], ok, failed);
    if (counters) {
        int64_t d_ops = ops1 - ops0, d_commits = commits1 - commits0;
        printf(",\"ops\":%" PRId64 ",\"commits\":%" PRId64 ",\"ops_per_commit\":%.2f", d_ops,
               d_commits, d_commits ? (double)d_ops / (double)d_commits : 0.0);
    }
    printf("}\n");
    free(lat);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
