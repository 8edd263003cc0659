/*
 * test_tenancy.c - who may see and touch what: another user's job answers exactly
 * like a missing one, lists are per user, roles gate routes (403), and missing,
 * unknown or revoked tokens get 401.
 */
#include "srvtest.h"

#include <stdlib.h>

static const char MISSING_ID[] = "01JD7Q4K3M8ZC2W5T9XAV6B1NE";   /* well-formed, never issued */

/* Copy of body with every occurrence of id replaced by "<ID>" (malloc'd). */
static char *mask_id(const char *body, const char *id)
{
    size_t idn = strlen(id), n = 0;
    char *out = malloc(strlen(body) * 2 + 8);
    for (const char *p = body; *p;) {
        if (!strncmp(p, id, idn)) { memcpy(out + n, "<ID>", 4); n += 4; p += idn; }
        else out[n++] = *p++;
    }
    out[n] = '\0';
    return out;
}

struct id_route {
    const char *method;    /* HTTP method */
    const char *fmt;       /* path with %s for the id */
};

static const struct id_route ID_ROUTES[] = {
    { "GET", "/v1/jobs/%s" },
    { "POST", "/v1/jobs/%s/cancel" },
    { "POST", "/v1/jobs/%s/retry" },
    { "DELETE", "/v1/jobs/%s" },
    { "GET", "/v1/jobs/%s/logs" },
};

/* Bob on alice's job id must get the same 404 body as on a missing id. */
static void same_404(struct testsrv *s, const char *bob, const struct id_route *rt, const char *id)
{
    struct resp mine, missing;
    ts_reqf(s, rt->method, bob, NULL, &mine, rt->fmt, id);
    ts_reqf(s, rt->method, bob, NULL, &missing, rt->fmt, MISSING_ID);
    CHECK_EQ(mine.status, 404);
    CHECK_EQ(missing.status, 404);
    CHECK_STR_EQ(st_code(&mine), "not_found");
    char *a = mask_id(mine.body, id), *b = mask_id(missing.body, MISSING_ID);
    if (!CHECK_STR_EQ(a, b)) fprintf(stderr, "  route %s %s\n", rt->method, rt->fmt);
    CHECK_STR_EQ(mine.content_type, missing.content_type);
    CHECK_EQ(mine.statements, missing.statements);   /* no side channel in the header */
    free(a);
    free(b);
    resp_free(&mine);
    resp_free(&missing);
}

/* Number of jobs token sees in GET path and whether id is among them. */
static int64_t list_count(struct testsrv *s, const char *tok, const char *path, const char *id,
                          bool *seen)
{
    struct resp r;
    CHECK_EQ(ts_req(s, "GET", path, tok, NULL, &r), 200);
    json_t *jobs = jpath(r.json, "jobs");
    *seen = false;
    for (size_t i = 0; i < json_array_size(jobs); i++)
        if (!strcmp(jstr(json_array_get(jobs, i), "id") ? jstr(json_array_get(jobs, i), "id") : "", id))
            *seen = true;
    int64_t total = jint(r.json, "total_count");
    resp_free(&r);
    return total;
}

TEST(other_users_job_is_invisible)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], bobs[TS_ID_MAX], body[16];
    bool seen;
    st_enq(c.s, c.alice, id, "{\"type\":\"secret\",\"queue\":\"tq\"}");
    st_enq(c.s, c.bob, bobs, "{\"type\":\"mine\",\"queue\":\"bq\"}");
    for (size_t i = 0; i < sizeof ID_ROUTES / sizeof ID_ROUTES[0]; i++)
        same_404(c.s, c.bob, &ID_ROUTES[i], id);
    /* a failed job: retry/delete would be allowed for alice, still 404 for bob */
    char lease[TS_ID_MAX], fb[256];
    REQUIRE(ts_claim1(c.s, c.worker, "tq", NULL, lease));   /* alice's job */
    snprintf(fb, sizeof fb, "{\"lease_token\":\"%s\",\"error_message\":\"x\",\"retryable\":false}", lease);
    CHECK_EQ(st_post0(c.s, c.worker, id, "fail", fb), 200);
    for (size_t i = 0; i < sizeof ID_ROUTES / sizeof ID_ROUTES[0]; i++)
        same_404(c.s, c.bob, &ID_ROUTES[i], id);
    st_field(c.s, c.alice, id, "status", body, sizeof body);
    CHECK_STR_EQ(body, "failed");                       /* bob changed nothing */

    CHECK_EQ(list_count(c.s, c.bob, "/v1/jobs", id, &seen), 1);
    CHECK(!seen);
    CHECK_EQ(list_count(c.s, c.bob, "/v1/jobs?status=failed", id, &seen), 0);
    CHECK(!seen);
    CHECK_EQ(list_count(c.s, c.bob, "/v1/jobs?type=secret", id, &seen), 0);
    CHECK_EQ(list_count(c.s, c.bob, "/v1/jobs?queue=tq&order=asc", id, &seen), 0);
    CHECK(!seen);
    CHECK_EQ(list_count(c.s, c.bob, "/v1/jobs?queue=bq&order=asc", bobs, &seen), 1);
    CHECK(seen);
    CHECK_EQ(list_count(c.s, c.alice, "/v1/jobs", id, &seen), 1);
    CHECK(seen);
    CHECK_EQ(list_count(c.s, c.s->admin, "/v1/jobs", id, &seen), 2);
    CHECK(seen);
    CHECK_EQ(list_count(c.s, c.worker, "/v1/jobs", id, &seen), 2);
    CHECK(seen);
    testsrv_stop(c.s);
}

struct role_case {
    const char *who;       /* "user" or "worker" */
    const char *method;    /* HTTP method */
    const char *path;      /* %s = a job id */
    const char *body;      /* request body or NULL */
};

static const struct role_case FORBIDDEN[] = {
    { "user", "POST", "/v1/queues/default/claim", "{\"worker_id\":\"sneaky\"}" },
    { "user", "POST", "/v1/queues/other/claim", "{\"worker_id\":\"sneaky\",\"max\":5}" },
    { "user", "POST", "/v1/jobs/%s/heartbeat", "{\"lease_token\":\"x\"}" },
    { "user", "POST", "/v1/jobs/%s/complete", "{\"lease_token\":\"x\"}" },
    { "user", "POST", "/v1/jobs/%s/fail", "{\"lease_token\":\"x\",\"error_message\":\"m\"}" },
    { "user", "POST", "/v1/jobs/%s/logs", "{\"lease_token\":\"x\",\"level\":\"info\",\"message\":\"m\"}" },
    { "user", "POST", "/v1/tokens", "{\"user_id\":\"evil\",\"role\":\"admin\"}" },
    { "user", "GET", "/v1/admin/store", NULL },
    { "user", "POST", "/v1/admin/clock", "{\"advance_ms\":1000}" },
    { "worker", "POST", "/v1/jobs", "{\"type\":\"t\"}" },
    { "worker", "POST", "/v1/jobs/%s/cancel", NULL },
    { "worker", "POST", "/v1/jobs/%s/retry", NULL },
    { "worker", "DELETE", "/v1/jobs/%s", NULL },
    { "worker", "POST", "/v1/tokens", "{\"user_id\":\"evil\",\"role\":\"admin\"}" },
    { "worker", "GET", "/v1/admin/store", NULL },
};

TEST(roles_are_enforced)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], path[256];
    st_enq(c.s, c.alice, id, "{\"type\":\"t\"}");
    for (size_t i = 0; i < sizeof FORBIDDEN / sizeof FORBIDDEN[0]; i++) {
        const struct role_case *k = &FORBIDDEN[i];
        struct resp r;
        snprintf(path, sizeof path, k->path, id);
        ts_req(c.s, k->method, path, !strcmp(k->who, "user") ? c.alice : c.worker, k->body, &r);
        if (!CHECK_EQ(r.status, 403) | !CHECK_STR_EQ(st_code(&r), "forbidden"))
            fprintf(stderr, "  %s %s %s -> %s\n", k->who, k->method, path, r.body);
        resp_free(&r);
    }
    char status[32];
    st_field(c.s, c.alice, id, "status", status, sizeof status);
    CHECK_STR_EQ(status, "pending");
    CHECK_EQ(st_int(c.s, c.alice, id, "attempts"), 0);
    testsrv_stop(c.s);
}

/* Expects 401 unauthorized for GET /v1/jobs with the raw Authorization header. */
static void expect_401(struct testsrv *s, const char *auth_header, const char *method,
                       const char *path, const char *body)
{
    const char *hdrs[] = { auth_header, NULL };
    struct ts_http rq = { .method = method, .path = path, .body = body,
                          .headers = auth_header ? hdrs : NULL };
    struct resp r;
    ts_do(s, &rq, &r);
    if (!CHECK_EQ(r.status, 401) | !CHECK_STR_EQ(st_code(&r), "unauthorized"))
        fprintf(stderr, "  %s %s [%s] -> %s\n", method, path, auth_header ? auth_header : "-", r.body);
    resp_free(&r);
}

TEST(missing_and_bad_tokens_401)
{
    struct testsrv *s = testsrv_start(NULL);
    struct resp r;
    CHECK_EQ(ts_req(s, "GET", "/healthz", NULL, NULL, &r), 200);    /* no token needed */
    CHECK_STR_EQ(jstr(r.json, "status"), "ok");
    resp_free(&r);
    expect_401(s, NULL, "GET", "/v1/jobs", NULL);
    expect_401(s, NULL, "POST", "/v1/jobs", "{\"type\":\"t\"}");
    expect_401(s, NULL, "GET", "/v1/admin/store", NULL);
    expect_401(s, "Authorization: Bearer nope-not-a-token", "GET", "/v1/jobs", NULL);
    expect_401(s, "Authorization: Bearer ", "GET", "/v1/jobs", NULL);
    expect_401(s, "Authorization: Basic YWRtaW46YWRtaW4=", "GET", "/v1/jobs", NULL);
    expect_401(s, "Authorization: " TS_ADMIN_TOKEN, "GET", "/v1/jobs", NULL);
    expect_401(s, "Authorization: Bearer " TS_ADMIN_TOKEN "x", "POST", "/v1/tokens",
               "{\"user_id\":\"x\",\"role\":\"admin\"}");
    expect_401(s, NULL, "POST", "/v1/queues/default/claim", "{\"worker_id\":\"w\"}");
    CHECK_EQ(ts_req(s, "GET", "/v1/jobs", s->admin, NULL, &r), 200);
    CHECK_EQ(jint(r.json, "total_count"), 0);
    resp_free(&r);
    testsrv_stop(s);
}

TEST(revoked_token_401)
{
    struct testsrv *s = testsrv_start(NULL);
    char tid[TS_ID_MAX], id[TS_ID_MAX];
    struct resp r;
    const char *tok = ts_token_id(s, "carol", "user", tid);
    REQUIRE(tid[0] != '\0');
    st_enq(s, tok, id, "{\"type\":\"t\"}");
    CHECK_EQ(ts_reqf(s, "DELETE", s->admin, NULL, &r, "/v1/tokens/%s", tid), 204);
    resp_free(&r);
    CHECK_EQ(ts_get(s, tok, id, &r), 401);
    CHECK_STR_EQ(st_code(&r), "unauthorized");
    resp_free(&r);
    CHECK_EQ(ts_req(s, "POST", "/v1/jobs", tok, "{\"type\":\"t\"}", &r), 401);
    resp_free(&r);
    CHECK_EQ(ts_reqf(s, "DELETE", s->admin, NULL, &r, "/v1/tokens/%s", tid), 404);
    CHECK_STR_EQ(st_code(&r), "not_found");
    resp_free(&r);
    /* a second token of the same user still works and still owns the job */
    const char *tok2 = ts_token(s, "carol", "user");
    CHECK_EQ(ts_get(s, tok2, id, &r), 200);
    resp_free(&r);
    testsrv_stop(s);
}

TEST(token_creation_reply)
{
    struct testsrv *s = testsrv_start(NULL);
    struct resp r;
    CHECK_EQ(ts_req(s, "POST", "/v1/tokens", s->admin,
                    "{\"user_id\":\"dave\",\"role\":\"worker\",\"name\":\"ci\"}", &r), 201);
    CHECK(jstr(r.json, "token") != NULL);
    CHECK(jstr(r.json, "id") != NULL);
    CHECK_STR_EQ(jstr(r.json, "user_id"), "dave");
    CHECK_STR_EQ(jstr(r.json, "role"), "worker");
    CHECK_STR_EQ(jstr(r.json, "name"), "ci");
    CHECK(ts_parse_time(jstr(r.json, "created_at")) != INT64_MIN);
    resp_free(&r);
    testsrv_stop(s);
}

TEST_MAIN()
