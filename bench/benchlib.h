/*
 * benchlib.h - shared pieces of the bench programs (header-only, static inline):
 * monotonic clock, percentiles, keep-alive HTTP connections over libcurl easy
 * handles, the WORKLOADS.md job payload, and CPU accounting (/proc/PID/stat,
 * /proc/stat, getrusage) for a measured window.
 */
#ifndef JOBQ_BENCHLIB_H
#define JOBQ_BENCHLIB_H

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* --- time and statistics --- */

/* CLOCK_MONOTONIC in µs: the clock of the payload's "t". */
static inline int64_t bl_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline void bl_sleep_us(int64_t us)
{
    if (us <= 0) return;
    struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
}

static inline int bl_cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* q-quantile (0..1) of sorted v[n], nearest rank; 0 when empty. */
static inline double bl_quantile(const double *v, long n, double q)
{
    if (n <= 0) return 0;
    long i = (long)((double)n * q + 0.999999) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* --- growable byte buffer --- */

struct bl_buf {
    char *p;                  /* bytes, NUL-terminated when n > 0 or after bl_buf_reset */
    size_t n, cap;            /* length, allocation */
};

static inline void bl_buf_reserve(struct bl_buf *b, size_t more)
{
    if (b->n + more + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + more + 1) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) { perror("realloc"); exit(1); }
    b->p = q;
    b->cap = cap;
}

static inline void bl_buf_reset(struct bl_buf *b)
{
    bl_buf_reserve(b, 0);
    b->n = 0;
    b->p[0] = '\0';
}

__attribute__((format(printf, 2, 3)))
static inline void bl_buf_printf(struct bl_buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap > b->n ? b->cap - b->n : 0;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, room, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if ((size_t)k < room) { b->n += (size_t)k; return; }
        bl_buf_reserve(b, (size_t)k);
    }
}

/* --- the job payload (WORKLOADS.md) --- */

enum { BL_PARAMS_BYTES = 100 };   /* serialized params are padded to exactly this */

/* params {"user_id":"user-00042","type":"noop","seq":42,"t":<µs>,"pad":"xxxx…"} */
static inline void bl_params(struct bl_buf *b, long seq, int64_t t)
{
    static const char xs[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    char head[160];
    int n = snprintf(head, sizeof head,
                     "{\"user_id\":\"user-%05ld\",\"type\":\"noop\",\"seq\":%ld,\"t\":%" PRId64
                     ",\"pad\":\"", seq % 100000, seq, t);
    int pad = BL_PARAMS_BYTES - n - 2;
    if (pad < 1) pad = 1;
    bl_buf_printf(b, "%s%.*s\"}", head, pad, xs);
}

/* A create body: {"type":"noop","queue":Q[,"dedup":false],"params":{…}}. The bulk
 * path takes no dedup field (it never dedups). */
static inline void bl_create_body(struct bl_buf *b, const char *queue, long seq, int64_t t,
                                  bool single)
{
    bl_buf_printf(b, "{\"type\":\"noop\",\"queue\":\"%s\",%s\"params\":", queue,
                  single ? "\"dedup\":false," : "");
    bl_params(b, seq, t);
    bl_buf_printf(b, "}");
}

/* --- HTTP: one keep-alive connection, one thread at a time --- */

struct bl_conn {
    CURL *k;                  /* easy handle (keeps its connection alive) */
    struct curl_slist *hdrs;  /* Content-Type, Authorization, no Expect */
    const char *base;         /* base url, no trailing slash */
    struct bl_buf body;       /* last reply body */
    long status;              /* last HTTP status, 0 on transport error */
    long stmts;               /* X-Jobq-Statements of the last reply, -1 if absent */
};

static inline size_t bl_collect(char *p, size_t sz, size_t n, void *ud)
{
    struct bl_buf *b = ud;
    bl_buf_reserve(b, sz * n);
    memcpy(b->p + b->n, p, sz * n);
    b->n += sz * n;
    b->p[b->n] = '\0';
    return sz * n;
}

static inline size_t bl_header(char *p, size_t sz, size_t n, void *ud)
{
    static const char name[] = "x-jobq-statements:";
    if (sz * n > sizeof name && strncasecmp(p, name, sizeof name - 1) == 0)
        *(long *)ud = strtol(p + sizeof name - 1, NULL, 10);
    return sz * n;
}

static inline struct curl_slist *bl_headers(const char *token)
{
    char line[512];
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    snprintf(line, sizeof line, "Authorization: Bearer %s", token);
    return curl_slist_append(h, line);
}

/* Common options of every handle of the bench programs. */
static inline void bl_handle_opts(CURL *k, struct curl_slist *hdrs)
{
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(k, CURLOPT_TIMEOUT, 120L);
}

static inline void bl_conn_open(struct bl_conn *c, const char *base, const char *token)
{
    memset(c, 0, sizeof *c);
    c->base = base;
    c->hdrs = bl_headers(token);
    c->k = curl_easy_init();
    if (!c->k) { fprintf(stderr, "curl_easy_init failed\n"); exit(1); }
    bl_handle_opts(c->k, c->hdrs);
    curl_easy_setopt(c->k, CURLOPT_WRITEFUNCTION, bl_collect);
    curl_easy_setopt(c->k, CURLOPT_WRITEDATA, &c->body);
    curl_easy_setopt(c->k, CURLOPT_HEADERFUNCTION, bl_header);
    curl_easy_setopt(c->k, CURLOPT_HEADERDATA, &c->stmts);
}

static inline void bl_conn_close(struct bl_conn *c)
{
    curl_easy_cleanup(c->k);
    curl_slist_free_all(c->hdrs);
    free(c->body.p);
    memset(c, 0, sizeof *c);
}

/* POST body (or GET when body is NULL) to base+path; returns the HTTP status (0 on a
 * transport error). The reply body is in c->body. */
static inline long bl_request(struct bl_conn *c, const char *path, const char *body, size_t len)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", c->base, path);
    curl_easy_setopt(c->k, CURLOPT_URL, url);
    if (body) {
        curl_easy_setopt(c->k, CURLOPT_POST, 1L);
        curl_easy_setopt(c->k, CURLOPT_POSTFIELDSIZE, (long)len);
        curl_easy_setopt(c->k, CURLOPT_POSTFIELDS, body);
    } else {
        curl_easy_setopt(c->k, CURLOPT_HTTPGET, 1L);
    }
    bl_buf_reset(&c->body);
    c->stmts = -1;
    c->status = 0;
    if (curl_easy_perform(c->k) == CURLE_OK)
        curl_easy_getinfo(c->k, CURLINFO_RESPONSE_CODE, &c->status);
    return c->status;
}

/* The last reply as JSON (new reference), or NULL. */
static inline json_t *bl_reply_json(const struct bl_conn *c)
{
    return c->body.n ? json_loadb(c->body.p, c->body.n, 0, NULL) : NULL;
}

/* --- CPU accounting over a window --- */

struct bl_cpu {
    double server_s;          /* jobqd utime+stime+cutime+cstime, s (-1: unknown) */
    double client_s;          /* this process, user+system, s */
    uint64_t busy, total;     /* /proc/stat jiffies: busy (not idle/iowait), all */
};

static inline double bl_proc_cpu_s(long pid)
{
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = pid > 0 ? fopen(path, "r") : NULL;
    if (!f) return -1;
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    char *p = ok ? strrchr(line, ')') : NULL;   /* comm may hold spaces */
    if (!p) return -1;
    unsigned long long v[4];
    /* after ")": state(3) ppid … minflt … utime(14) stime(15) cutime(16) cstime(17) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
               &v[0], &v[1], &v[2], &v[3]) != 4)
        return -1;
    return (double)(v[0] + v[1] + v[2] + v[3]) / (double)sysconf(_SC_CLK_TCK);
}

static inline void bl_cpu_take(struct bl_cpu *s, long server_pid)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    s->client_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                  (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    s->server_s = bl_proc_cpu_s(server_pid);
    s->busy = s->total = 0;
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = { 0 };
    if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                    &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; i++) s->total += v[i];
        s->busy = s->total - v[3] - v[4];   /* minus idle and iowait */
    }
    if (f) fclose(f);
}

/* Appends the window's CPU fields to a JSON object. */
static inline void bl_cpu_report(json_t *o, const struct bl_cpu *a, const struct bl_cpu *b)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (a->server_s >= 0 && b->server_s >= 0)
        json_object_set_new(o, "server_cpu_s", json_real(b->server_s - a->server_s));
    else
        json_object_set_new(o, "server_cpu_s", json_null());
    json_object_set_new(o, "client_cpu_s", json_real(b->client_s - a->client_s));
    double dt = (double)(b->total - a->total);
    json_object_set_new(o, "busy_cores",
                        json_real(dt > 0 ? (double)(b->busy - a->busy) / dt * (double)ncpu : 0));
    json_object_set_new(o, "nproc", json_integer(ncpu));
    /* CPU of everything else on the host over the window: noise from other processes */
    double busy_s = (double)(b->busy - a->busy) / (double)sysconf(_SC_CLK_TCK);
    double mine = (b->client_s - a->client_s) + (a->server_s >= 0 ? b->server_s - a->server_s : 0);
    json_object_set_new(o, "others_cpu_s", json_real(busy_s > mine ? busy_s - mine : 0));
    double load = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf", &load) == 1)
        json_object_set_new(o, "loadavg_1m", json_real(load));
    if (f) fclose(f);
}

#endif /* JOBQ_BENCHLIB_H */
