/*
 * test_malformed.c - bad requests: each gets the documented 4xx with a JSON error body
 * ({"error":{"code","message","field"}}), and none of them changes anything (the job
 * list and the store's write counters are the same before and after).
 */
#include "srvtest.h"

#include <stdlib.h>

enum who { NOBODY, BADTOK, USER, WORKER, ADMIN };

struct bad {
    const char *method;       /* HTTP method */
    const char *path;         /* %s = the processing job's id */
    enum who who;             /* which token to send */
    const char *body;         /* body; %s = that job's lease token (NULL = none) */
    const char *ctype;        /* NULL = application/json when there is a body, "" = omit */
    long status;              /* expected status */
    const char *code;         /* expected error.code */
    const char *field;        /* expected error.field, NULL = not checked */
    long alt_status;          /* also acceptable where API.md is ambiguous (0 = none) */
    const char *alt_code;     /* code going with alt_status */
};

#define J "application/json"
static const struct bad CASES[] = {
    /* body is not JSON / not an object / too deep */
    { "POST", "/v1/jobs", USER, "{", J, 400, "invalid_json", NULL, 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"t\"} trailing", J, 400, "invalid_json", NULL, 0, NULL },
    { "POST", "/v1/jobs", USER, "[{\"type\":\"t\"}]", J, 400, "invalid_json", NULL, 0, NULL },
    { "POST", "/v1/jobs", USER, "\"type\"", J, 400, "invalid_json", NULL, 0, NULL },
    { "POST", "/v1/jobs", USER, "42", J, 400, "invalid_json", NULL, 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"\xff\xfe\"}", J, 400, "invalid_json", NULL, 0, NULL },
    { "POST", "/v1/jobs", USER, "@DEEP", J, 400, "invalid_json", NULL, 0, NULL },
    /* wrong types and out-of-range values */
    { "POST", "/v1/jobs", USER, "{}", J, 400, "invalid_argument", "type", 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":5}", J, 400, "invalid_argument", "type", 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"has space\"}", J, 400, "invalid_argument", "type", 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"\"}", J, 400, "invalid_argument", "type", 0, NULL },
    { "POST", "/v1/jobs", USER, "@LONGTYPE", J, 413, "too_large", "type", 400, "invalid_argument" },
    { "POST", "/v1/jobs", USER, "{\"type\":\"t\",\"queue\":\"a/b\"}", J, 400, "invalid_argument", "queue", 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"t\",\"priority\":1001}", J, 400, "invalid_argument", "priority", 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"t\",\"priority\":-1001}", J, 400, "invalid_argument", "priority", 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"t\",\"priority\":\"high\"}", J, 400, "invalid_argument", "priority", 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"t\",\"priority\":1.5}", J, 400, "invalid_argument", "priority", 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"t\",\"max_attempts\":0}", J, 400, "invalid_argument", "max_attempts", 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"t\",\"max_attempts\":101}", J, 400, "invalid_argument", "max_attempts", 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"t\",\"delay_ms\":-1}", J, 400, "invalid_argument", "delay_ms", 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"t\",\"delay_ms\":31536000001}", J, 400, "invalid_argument", "delay_ms", 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"t\",\"ttl_ms\":999}", J, 400, "invalid_argument", "ttl_ms", 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"t\",\"run_at\":\"yesterday\"}", J, 400, "invalid_argument", "run_at", 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"t\",\"run_at\":12}", J, 400, "invalid_argument", "run_at", 0, NULL },
    /* size caps and media type */
    { "POST", "/v1/jobs", USER, "@HUGE", J, 413, "too_large", NULL, 0, NULL },
    { "POST", "/v1/jobs", USER, "@BIGPARAMS", J, 413, "too_large", "params", 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"t\"}", "text/plain", 415, "unsupported_media_type", NULL, 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"t\"}", "", 415, "unsupported_media_type", NULL, 0, NULL },
    { "POST", "/v1/jobs", USER, "{\"type\":\"t\"}", "application/x-www-form-urlencoded", 415, "unsupported_media_type", NULL, 0, NULL },
    /* list query parameters */
    { "GET", "/v1/jobs?status=bogus", USER, NULL, NULL, 400, "invalid_argument", "status", 0, NULL },
    { "GET", "/v1/jobs?limit=-1", USER, NULL, NULL, 400, "invalid_argument", "limit", 0, NULL },
    { "GET", "/v1/jobs?limit=0", USER, NULL, NULL, 400, "invalid_argument", "limit", 0, NULL },
    { "GET", "/v1/jobs?limit=1001", USER, NULL, NULL, 400, "invalid_argument", "limit", 0, NULL },
    { "GET", "/v1/jobs?limit=ten", USER, NULL, NULL, 400, "invalid_argument", "limit", 0, NULL },
    { "GET", "/v1/jobs?offset=-5", USER, NULL, NULL, 400, "invalid_argument", "offset", 0, NULL },
    { "GET", "/v1/jobs?offset=1000001", USER, NULL, NULL, 400, "invalid_argument", "offset", 0, NULL },
    { "GET", "/v1/jobs?order=sideways", USER, NULL, NULL, 400, "invalid_argument", "order", 0, NULL },
    { "GET", "/v1/jobs/%s/logs?level=loud", ADMIN, NULL, NULL, 400, "invalid_argument", "level", 0, NULL },
    { "GET", "/v1/jobs/%s/logs?limit=0", ADMIN, NULL, NULL, 400, "invalid_argument", "limit", 0, NULL },
    /* bad ids, unknown routes */
    { "GET", "/v1/jobs/not-an-id", USER, NULL, NULL, 404, "not_found", NULL, 0, NULL },
    { "GET", "/v1/jobs/01JD7Q4K3M8ZC2W5T9XAV6B1NEXX", USER, NULL, NULL, 404, "not_found", NULL, 0, NULL },
    { "POST", "/v1/jobs/%%2e%%2e/cancel", USER, NULL, NULL, 404, "not_found", NULL, 0, NULL },
    { "GET", "/v1/nothing-here", USER, NULL, NULL, 404, "not_found", NULL, 0, NULL },
    { "DELETE", "/v1/tokens/no-such-token", ADMIN, NULL, NULL, 404, "not_found", NULL, 0, NULL },
    /* auth and roles */
    { "POST", "/v1/jobs", NOBODY, "{\"type\":\"t\"}", J, 401, "unauthorized", NULL, 0, NULL },
    { "GET", "/v1/jobs", BADTOK, NULL, NULL, 401, "unauthorized", NULL, 0, NULL },
    { "POST", "/v1/queues/default/claim", USER, "{\"worker_id\":\"w\"}", J, 403, "forbidden", NULL, 0, NULL },
    { "POST", "/v1/jobs", WORKER, "{\"type\":\"t\"}", J, 403, "forbidden", NULL, 0, NULL },
    { "POST", "/v1/tokens", USER, "{\"user_id\":\"x\",\"role\":\"admin\"}", J, 403, "forbidden", NULL, 0, NULL },
    /* wrong methods */
    { "PUT", "/v1/jobs", USER, "{\"type\":\"t\"}", J, 405, "method_not_allowed", NULL, 0, NULL },
    { "PATCH", "/v1/jobs/%s", USER, "{}", J, 405, "method_not_allowed", NULL, 0, NULL },
    { "GET", "/v1/queues/default/claim", WORKER, NULL, NULL, 405, "method_not_allowed", NULL, 0, NULL },
    /* worker routes: claim, heartbeat, fail, logs */
    { "POST", "/v1/queues/default/claim", WORKER, "{}", J, 400, "invalid_argument", "worker_id", 0, NULL },
    { "POST", "/v1/queues/default/claim", WORKER, "{\"worker_id\":7}", J, 400, "invalid_argument", "worker_id", 0, NULL },
    { "POST", "/v1/queues/default/claim", WORKER, "{\"worker_id\":\"w\",\"max\":0}", J, 400, "invalid_argument", "max", 0, NULL },
    { "POST", "/v1/queues/default/claim", WORKER, "{\"worker_id\":\"w\",\"max\":101}", J, 400, "invalid_argument", "max", 0, NULL },
    { "POST", "/v1/queues/default/claim", WORKER, "{\"worker_id\":\"w\",\"wait_ms\":30001}", J, 400, "invalid_argument", "wait_ms", 0, NULL },
    { "POST", "/v1/queues/default/claim", WORKER, "{\"worker_id\":\"w\",\"lease_ms\":999}", J, 400, "invalid_argument", "lease_ms", 0, NULL },
    { "POST", "/v1/queues/default/claim", WORKER, "{\"worker_id\":\"w\",\"lease_ms\":3600001}", J, 400, "invalid_argument", "lease_ms", 0, NULL },
    { "POST", "/v1/jobs/%s/heartbeat", WORKER, "{}", J, 400, "invalid_argument", "lease_token", 0, NULL },
    { "POST", "/v1/jobs/%s/heartbeat", WORKER, "{\"lease_token\":\"%s\",\"progress_percent\":101}", J, 400, "invalid_argument", "progress_percent", 0, NULL },
    { "POST", "/v1/jobs/%s/heartbeat", WORKER, "{\"lease_token\":\"%s\",\"progress_percent\":-1}", J, 400, "invalid_argument", "progress_percent", 0, NULL },
    { "POST", "/v1/jobs/%s/fail", WORKER, "{\"lease_token\":\"%s\",\"error_message\":\"x\",\"retryable\":\"yes\"}", J, 400, "invalid_argument", "retryable", 0, NULL },
    { "POST", "/v1/jobs/%s/fail", WORKER, "{\"lease_token\":\"%s\"}", J, 400, "invalid_argument", "error_message", 0, NULL },
    { "POST", "/v1/jobs/%s/logs", WORKER, "{\"lease_token\":\"%s\",\"level\":\"loud\",\"message\":\"m\"}", J, 400, "invalid_argument", "level", 0, NULL },
    { "POST", "/v1/jobs/%s/logs", WORKER, "{\"lease_token\":\"%s\",\"level\":\"info\"}", J, 400, "invalid_argument", "message", 0, NULL },
    { "POST", "/v1/jobs/%s/complete", WORKER, "[\"%s\"]", J, 400, "invalid_json", NULL, 0, NULL },
    /* field caps: over the cap is 413 too_large naming the field */
    { "POST", "/v1/jobs/%s/logs", WORKER, "@PAD8193|{\"lease_token\":\"%s\",\"level\":\"info\",\"message\":\"%s\"}", J, 413, "too_large", "message", 0, NULL },
    { "POST", "/v1/jobs/%s/logs", WORKER, "@PAD16385|{\"lease_token\":\"%s\",\"level\":\"info\",\"message\":\"m\",\"metadata\":{\"p\":\"%s\"}}", J, 413, "too_large", "metadata", 0, NULL },
    { "POST", "/v1/jobs/%s/heartbeat", WORKER, "@PAD8193|{\"lease_token\":\"%s\",\"progress_message\":\"%s\"}", J, 413, "too_large", "progress_message", 0, NULL },
    { "POST", "/v1/jobs/%s/fail", WORKER, "@PAD8193|{\"lease_token\":\"%s\",\"error_message\":\"%s\"}", J, 413, "too_large", "error_message", 0, NULL },
    { "POST", "/v1/jobs/%s/fail", WORKER, "@PAD129|{\"lease_token\":\"%s\",\"error_message\":\"m\",\"error_code\":\"%s\"}", J, 413, "too_large", "error_code", 400, "invalid_argument" },
    { "POST", "/v1/queues/default/claim", WORKER, "@PAD129|{\"worker_id\":\"%.0s%s\"}", J, 413, "too_large", "worker_id", 400, "invalid_argument" },
    { "POST", "/v1/tokens", ADMIN, "@PAD129|{\"user_id\":\"%.0s%s\",\"role\":\"user\"}", J, 413, "too_large", "user_id", 400, "invalid_argument" },
    { "POST", "/v1/jobs/%s/complete", WORKER, "@PAD262145|{\"lease_token\":\"%s\",\"result\":\"%s\"}", J, 413, "too_large", "result", 0, NULL },
    /* tokens */
    { "POST", "/v1/tokens", ADMIN, "{\"user_id\":\"x\",\"role\":\"root\"}", J, 400, "invalid_argument", "role", 0, NULL },
    { "POST", "/v1/tokens", ADMIN, "{\"role\":\"user\"}", J, 400, "invalid_argument", "user_id", 0, NULL },
};

/* Body text for a case: expands @-macros and the lease token; malloc'd. */
static char *make_body(const char *spec, const char *lease, size_t *len)
{
    char *b;
    if (!strcmp(spec, "@DEEP")) {                /* 40 levels inside params */
        b = malloc(256);
        int n = sprintf(b, "{\"type\":\"t\",\"params\":");
        for (int i = 0; i < 40; i++) b[n++] = '[';
        for (int i = 0; i < 40; i++) b[n++] = ']';
        strcpy(b + n, "}");
    } else if (!strcmp(spec, "@LONGTYPE")) {     /* 129 chars, all allowed */
        b = malloc(256);
        sprintf(b, "{\"type\":\"%0129d\"}", 0);
    } else if (!strcmp(spec, "@HUGE") || !strcmp(spec, "@BIGPARAMS")) {
        size_t pad = spec[1] == 'H' ? (1u << 20) + 100 : (64u << 10) + 100;
        b = malloc(pad + 64);
        int n = sprintf(b, "{\"type\":\"t\",\"params\":{\"pad\":\"");
        memset(b + n, 'x', pad);
        strcpy(b + n + pad, "\"}}");
    } else if (!strncmp(spec, "@PAD", 4)) {     /* "@PAD<n>|fmt": fmt(lease, n x's) */
        char *bar;
        size_t pad = strtoul(spec + 4, &bar, 10), cap = strlen(bar) + TS_ID_MAX + pad + 1;
        char *xs = malloc(pad + 1);
        memset(xs, 'x', pad);
        xs[pad] = '\0';
        b = malloc(cap);
        snprintf(b, cap, bar + 1, lease, xs);
        free(xs);
    } else {
        size_t cap = strlen(spec) + TS_ID_MAX + 1;
        b = malloc(cap);
        snprintf(b, cap, spec, lease);
    }
    *len = strlen(b);
    return b;
}

struct world {
    struct st_ctx c;
    char id[TS_ID_MAX];       /* a processing job */
    char lease[TS_ID_MAX];    /* its lease */
};

static const char *token_for(struct world *w, enum who who)
{
    switch (who) {
    case BADTOK: return "not-a-real-token";
    case USER: return w->c.alice;
    case WORKER: return w->c.worker;
    case ADMIN: return w->c.s->admin;
    default: return NULL;
    }
}

/* Checks the error body shape and the expected status/code/field. */
static bool check_error(const struct bad *k, struct resp *r)
{
    bool alt = k->alt_status && r->status == k->alt_status;
    bool ok = alt ? CHECK_STR_EQ(st_code(r), k->alt_code)
                  : CHECK_EQ(r->status, k->status) & CHECK_STR_EQ(st_code(r), k->code);
    ok &= CHECK(!strncmp(r->content_type, "application/json", 16));
    ok &= CHECK(jstr(r->json, "error.message") != NULL);
    ok &= CHECK(jpath(r->json, "error.field") != NULL);     /* present, maybe null */
    if (k->field) ok &= CHECK_STR_EQ(jstr(r->json, "error.field"), k->field);
    if (k->status == 405) ok &= CHECK(r->allow[0] != '\0');
    return ok;
}

static void run_case(struct world *w, const struct bad *k)
{
    char path[256];
    size_t len = 0;
    char *body = k->body ? make_body(k->body, w->lease, &len) : NULL;
    snprintf(path, sizeof path, k->path, w->id);
    struct ts_http rq = { .method = k->method, .path = path, .token = token_for(w, k->who),
                          .body = body, .body_len = len, .content_type = k->ctype };
    struct resp r;
    ts_do(w->c.s, &rq, &r);
    if (!check_error(k, &r))
        fprintf(stderr, "  ^ case %s %s body=%.80s -> %ld %.300s\n", k->method, path,
                body ? body : "-", r.status, r.body);
    free(body);
    resp_free(&r);
}

/* Everything observable that a bad request must not change. */
struct snapshot {
    struct resp list;         /* admin list of all jobs */
    struct resp job;          /* the processing job */
    int64_t ops, commits;     /* store write counters */
};

static void take(struct world *w, struct snapshot *s)
{
    CHECK_EQ(ts_req(w->c.s, "GET", "/v1/jobs?limit=1000", w->c.s->admin, NULL, &s->list), 200);
    CHECK_EQ(ts_get(w->c.s, w->c.s->admin, w->id, &s->job), 200);
    ts_store_counters(w->c.s, &s->ops, &s->commits);
}

TEST(malformed_requests_get_4xx_and_change_nothing)
{
    struct world w;
    char other[TS_ID_MAX];
    w.c = st_setup();
    st_enq(w.c.s, w.c.alice, w.id, "{\"type\":\"t\",\"queue\":\"mq\"}");
    REQUIRE(ts_claim1(w.c.s, w.c.worker, "mq", NULL, w.lease));
    st_enq(w.c.s, w.c.bob, other, "{\"type\":\"t\",\"queue\":\"default\"}");
    struct snapshot before, after;
    take(&w, &before);
    size_t n = sizeof CASES / sizeof CASES[0];
    CHECK(n >= 25);
    for (size_t i = 0; i < n; i++) run_case(&w, &CASES[i]);
    take(&w, &after);
    CHECK_EQ(jint(after.list.json, "total_count"), 2);
    CHECK_STR_EQ(after.list.body, before.list.body);
    CHECK_STR_EQ(after.job.body, before.job.body);
    CHECK_EQ(after.ops, before.ops);
    CHECK_EQ(after.commits, before.commits);
    resp_free(&before.list); resp_free(&before.job);
    resp_free(&after.list); resp_free(&after.job);
    testsrv_stop(w.c.s);
}

TEST(server_survives_garbage_connection)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *hdrs[] = { "X-Junk: " "\x01\x02", NULL };
    struct ts_http rq = { .method = "GET", .path = "/v1/jobs", .token = s->admin, .headers = hdrs };
    struct resp r;
    ts_do(s, &rq, &r);                         /* any answer is fine; the server must live */
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/healthz", NULL, NULL, &r), 200);
    resp_free(&r);
    testsrv_stop(s);
}

TEST_MAIN()
