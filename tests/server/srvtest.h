/*
 * srvtest.h - small helpers shared by the tests/server/ suites (static inline so a
 * suite that does not use one does not warn). Everything talks to a real jobqd.
 */
#ifndef JQ_SRVTEST_H
#define JQ_SRVTEST_H

#include "harness.h"

#include <inttypes.h>
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

/* Enqueues body (printf-style) as token; REQUIREs 201; id gets the job id. */
static inline void st_enq(struct testsrv *s, const char *token, char *id, const char *body)
{
    long st = ts_enqueue(s, token, body, id);
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

#endif
