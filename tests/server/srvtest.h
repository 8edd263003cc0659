/*
 * srvtest.h - small helpers shared by the tests/server/ suites (static inline so a
 * suite that does not use one does not warn). Everything talks to a real jobqd.
 */
#ifndef JQ_SRVTEST_H
#define JQ_SRVTEST_H

#include "harness.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* Roles used by most suites; filled by st_setup. */
struct st_ctx {
    struct testsrv *s;       /* server under test */
    const char *alice;       /* user token, user_id "alice" */
    const char *bob;         /* user token, user_id "bob" */
    const char *worker;      /* worker token */
};

static inline struct st_ctx st_setup(void)
{
    struct st_ctx c;
    c.s = testsrv_start(NULL);
    c.alice = ts_token(c.s, "alice", "user");
    c.bob = ts_token(c.s, "bob", "user");
    c.worker = ts_token(c.s, "worker-1", "worker");
    return c;
}

/* Enqueues body (a JSON object) as token with dedup and the result cache off
 * (suites that are not about them create identical jobs); REQUIREs 201; id
 * gets the job id. */
static inline void st_enq(struct testsrv *s, const char *token, char *id, const char *body)
{
    char full[4096];
    if (snprintf(full, sizeof full, "{\"dedup\":false,\"cache\":false,%s", body + 1) >=
        (int)sizeof full)
        th_abort();                  /* a test body this big is a bug in the test */
    long st = ts_enqueue(s, token, full, id);
    if (!CHECK_EQ(st, 201)) th_abort();
}

/* Copies a string field of job id (GET as token) into out; "" if absent. */
static inline void st_field(struct testsrv *s, const char *token, const char *id,
                            const char *field, char *out, size_t cap)
{
    struct resp r;
    ts_get(s, token, id, &r);
    snprintf(out, cap, "%s", jstr(r.json, field) ? jstr(r.json, field) : "");
    resp_free(&r);
}

/* Integer field of job id, INT64_MIN if absent. */
static inline int64_t st_int(struct testsrv *s, const char *token, const char *id,
                             const char *field)
{
    struct resp r;
    ts_get(s, token, id, &r);
    int64_t v = jint(r.json, field);
    resp_free(&r);
    return v;
}

/* POST /v1/jobs/{id}/{verb} with body; returns status, out filled. */
static inline long st_post(struct testsrv *s, const char *token, const char *id,
                           const char *verb, const char *body, struct resp *out)
{
    return ts_reqf(s, "POST", token, body, out, "/v1/jobs/%s/%s", id, verb);
}

/* Same, discarding the reply; returns status. */
static inline long st_post0(struct testsrv *s, const char *token, const char *id,
                            const char *verb, const char *body)
{
    struct resp r;
    long st = st_post(s, token, id, verb, body, &r);
    resp_free(&r);
    return st;
}

/* error.code of r, or "" */
static inline const char *st_code(struct resp *r)
{
    const char *c = jstr(r->json, "error.code");
    return c ? c : "";
}

/* Milliseconds between two RFC 3339 fields of one JSON object (b - a). */
static inline int64_t st_ms_between(json_t *o, const char *a, const char *b)
{
    return ts_parse_time(jstr(o, b)) - ts_parse_time(jstr(o, a));
}

/* --- issue 4 helpers (dedup, cache, limits, bulk, cursors, stats) --- */

/* Starts jobqd with extra flags (NULL-terminated argv tail). */
static inline struct testsrv *st_start_with(const char *const *extra)
{
    struct testsrv_opts o = { .extra = extra };
    return testsrv_start(&o);
}

/* POST /v1/jobs as token with one extra header line (may be NULL); returns status. */
static inline long st_create_h(struct testsrv *s, const char *token, const char *hdr,
                               const char *body, struct resp *out)
{
    const char *h[2] = { hdr, NULL };
    struct ts_http rq = { .method = "POST", .path = "/v1/jobs", .token = token, .body = body,
                          .headers = hdr ? h : NULL };
    return ts_do(s, &rq, out);
}

/* POST /v1/jobs as token; returns status, out holds the reply. */
static inline long st_create(struct testsrv *s, const char *token, const char *body,
                             struct resp *out)
{
    return st_create_h(s, token, NULL, body, out);
}

/* Claims one job of queue as worker and completes it with result_json (NULL = none).
   REQUIREs both steps; copies the job id into id (TS_ID_MAX) when id is not NULL. */
static inline void st_claim_complete(struct testsrv *s, const char *worker, const char *queue,
                                     const char *result_json, char *id)
{
    char jid[TS_ID_MAX], lease[TS_ID_MAX], body[1024];
    REQUIRE(ts_claim1(s, worker, queue, jid, lease));
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\"%s%s}", lease,
             result_json ? ",\"result\":" : "", result_json ? result_json : "");
    REQUIRE_EQ(st_post0(s, worker, jid, "complete", body), 200);
    if (id) snprintf(id, TS_ID_MAX, "%s", jid);
}

/* total_count of GET /v1/jobs?query as token (INT64_MIN unless 200). */
static inline int64_t st_total(struct testsrv *s, const char *token, const char *query)
{
    struct resp r;
    long st = ts_reqf(s, "GET", token, NULL, &r, "/v1/jobs?%s", query ? query : "");
    int64_t n = st == 200 ? jint(r.json, "total_count") : INT64_MIN;
    if (st != 200) fprintf(stderr, "  (list %s -> %ld %s)\n", query ? query : "", st, r.body);
    resp_free(&r);
    return n;
}

/* JSON boolean member (-1 when absent or not a boolean). */
static inline int jbool(json_t *root, const char *dotted)
{
    json_t *v = jpath(root, dotted);
    return json_is_boolean(v) ? json_is_true(v) : -1;
}

/* One request of st_parallel_post, run on its own thread and connection. */
struct st_par {
    struct testsrv *s;            /* server (url only) */
    const char *path, *token, *body;
    const char *hdr;              /* one extra header line, or NULL */
    pthread_barrier_t *bar;       /* every thread connects first, then all send at once */
    struct resp out;              /* the reply */
};

static inline void *st_par_run(void *arg)
{
    struct st_par *p = arg;
    struct tsconn *c = tsconn_new(p->s);
    struct resp warm;
    tsconn_req(c, "GET", "/healthz", NULL, NULL, &warm);   /* open the connection now */
    resp_free(&warm);
    const char *h[2] = { p->hdr, NULL };
    struct ts_http rq = { .method = "POST", .path = p->path, .token = p->token,
                          .body = p->body, .headers = p->hdr ? h : NULL };
    pthread_barrier_wait(p->bar);
    tsconn_do(c, &rq, &p->out);
    tsconn_free(c);
    return NULL;
}

/* n concurrent POSTs to path on n connections; bodies[i] as tokens[i], each with header
   line hdr (NULL = none); replies in outs (n entries, caller frees each with resp_free). */
static inline void st_parallel_post_h(struct testsrv *s, int n, const char *path,
                                      const char *const *tokens, const char *const *bodies,
                                      const char *hdr, struct resp *outs)
{
    struct st_par *p = calloc((size_t)n, sizeof *p);
    pthread_t *t = calloc((size_t)n, sizeof *t);
    pthread_barrier_t bar;
    REQUIRE(p && t);
    pthread_barrier_init(&bar, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        p[i] = (struct st_par){ s, path, tokens[i], bodies[i], hdr, &bar, { 0 } };
        REQUIRE_EQ(pthread_create(&t[i], NULL, st_par_run, &p[i]), 0);
    }
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < n; i++) outs[i] = p[i].out;
    pthread_barrier_destroy(&bar);
    free(p);
    free(t);
}

static inline void st_parallel_post(struct testsrv *s, int n, const char *path,
                                    const char *const *tokens, const char *const *bodies,
                                    struct resp *outs)
{
    st_parallel_post_h(s, n, path, tokens, bodies, NULL, outs);
}

#endif
