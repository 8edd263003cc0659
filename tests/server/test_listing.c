/*
 * test_listing.c - GET /v1/jobs: newest first by default, order=asc, limit/offset paging
 * with total_count, filters by status/type/queue; GET logs paging with after/next_after.
 */
#include "srvtest.h"

/* ids of GET path (as token) joined by ',' into out; returns total_count. */
static int64_t list_ids(struct testsrv *s, const char *token, const char *path, char *out,
                        size_t cap)
{
    struct resp r;
    size_t n = 0;
    CHECK_EQ(ts_req(s, "GET", path, token, NULL, &r), 200);
    json_t *jobs = jpath(r.json, "jobs");
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(jobs) && n < cap; i++) {
        const char *id = jstr(json_array_get(jobs, i), "id");
        n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? "," : "", id ? id : "?");
    }
    int64_t total = jint(r.json, "total_count");
    resp_free(&r);
    return total;
}

TEST(list_order_paging_filters)
{
    struct st_ctx c = st_setup();
    char id[4][TS_ID_MAX], got[512], want[512], lease[TS_ID_MAX];
    st_enq(c.s, c.alice, id[0], "{\"type\":\"a\",\"queue\":\"q1\"}");
    ts_advance(c.s, 10);                       /* distinct created_at, time-ordered ids */
    st_enq(c.s, c.alice, id[1], "{\"type\":\"b\",\"queue\":\"q1\"}");
    ts_advance(c.s, 10);
    st_enq(c.s, c.alice, id[2], "{\"type\":\"a\",\"queue\":\"q2\"}");
    ts_advance(c.s, 10);
    st_enq(c.s, c.alice, id[3], "{\"type\":\"b\",\"queue\":\"q2\"}");
    snprintf(want, sizeof want, "%s,%s,%s,%s", id[3], id[2], id[1], id[0]);
    CHECK_EQ(list_ids(c.s, c.alice, "/v1/jobs", got, sizeof got), 4);
    CHECK_STR_EQ(got, want);
    snprintf(want, sizeof want, "%s,%s,%s,%s", id[0], id[1], id[2], id[3]);
    CHECK_EQ(list_ids(c.s, c.alice, "/v1/jobs?order=asc", got, sizeof got), 4);
    CHECK_STR_EQ(got, want);
    snprintf(want, sizeof want, "%s,%s", id[2], id[1]);
    CHECK_EQ(list_ids(c.s, c.alice, "/v1/jobs?limit=2&offset=1", got, sizeof got), 4);
    CHECK_STR_EQ(got, want);
    CHECK_EQ(list_ids(c.s, c.alice, "/v1/jobs?offset=10", got, sizeof got), 4);
    CHECK_STR_EQ(got, "");
    snprintf(want, sizeof want, "%s,%s", id[0], id[2]);
    CHECK_EQ(list_ids(c.s, c.alice, "/v1/jobs?type=a&order=asc", got, sizeof got), 2);
    CHECK_STR_EQ(got, want);
    snprintf(want, sizeof want, "%s", id[3]);
    CHECK_EQ(list_ids(c.s, c.alice, "/v1/jobs?queue=q2&type=b", got, sizeof got), 1);
    CHECK_STR_EQ(got, want);
    REQUIRE(ts_claim1(c.s, c.worker, "q1", got, lease));   /* oldest of q1 */
    CHECK_STR_EQ(got, id[0]);
    snprintf(want, sizeof want, "%s", id[0]);
    CHECK_EQ(list_ids(c.s, c.alice, "/v1/jobs?status=processing", got, sizeof got), 1);
    CHECK_STR_EQ(got, want);
    CHECK_EQ(list_ids(c.s, c.alice, "/v1/jobs?status=pending", got, sizeof got), 3);
    CHECK_EQ(list_ids(c.s, c.alice, "/v1/jobs?status=completed", got, sizeof got), 0);
    struct resp r;
    CHECK_EQ(ts_req(c.s, "GET", "/v1/jobs?limit=3&offset=1", c.alice, NULL, &r), 200);
    CHECK_EQ(jint(r.json, "limit"), 3);
    CHECK_EQ(jint(r.json, "offset"), 1);
    resp_free(&r);
    CHECK_EQ(ts_req(c.s, "GET", "/v1/jobs", c.alice, NULL, &r), 200);
    CHECK_EQ(jint(r.json, "limit"), 50);
    CHECK_EQ(jint(r.json, "offset"), 0);
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST(log_paging_with_after)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], lease[TS_ID_MAX], body[256], after[TS_ID_MAX];
    static const char *const lv[] = { "debug", "info", "warning", "error", "info" };
    struct resp r;
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"lg\"}");
    REQUIRE(ts_claim1(c.s, c.worker, "lg", NULL, lease));
    for (int i = 0; i < 5; i++) {
        snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"level\":\"%s\",\"message\":\"m%d\"}",
                 lease, lv[i], i);
        CHECK_EQ(st_post0(c.s, c.worker, id, "logs", body), 201);
    }
    CHECK_EQ(ts_reqf(c.s, "GET", c.alice, NULL, &r, "/v1/jobs/%s/logs?limit=3", id), 200);
    CHECK_EQ(json_array_size(jpath(r.json, "logs")), 3);
    CHECK_STR_EQ(jstr(r.json, "logs.2.message"), "m2");
    json_t *na = jpath(r.json, "next_after");     /* a log id: string or integer */
    if (json_is_integer(na)) snprintf(after, sizeof after, "%" PRId64, (int64_t)json_integer_value(na));
    else snprintf(after, sizeof after, "%s", json_is_string(na) ? json_string_value(na) : "");
    resp_free(&r);
    REQUIRE(after[0] != '\0');
    CHECK_EQ(ts_reqf(c.s, "GET", c.alice, NULL, &r, "/v1/jobs/%s/logs?limit=3&after=%s", id, after), 200);
    CHECK_EQ(json_array_size(jpath(r.json, "logs")), 2);
    CHECK_STR_EQ(jstr(r.json, "logs.0.message"), "m3");
    CHECK_STR_EQ(jstr(r.json, "logs.1.message"), "m4");
    CHECK(jis_null(r.json, "next_after"));
    resp_free(&r);
    CHECK_EQ(ts_reqf(c.s, "GET", c.alice, NULL, &r, "/v1/jobs/%s/logs?level=info", id), 200);
    json_t *logs = jpath(r.json, "logs");      /* "info" or "info and above": never debug */
    CHECK(json_array_size(logs) == 2 || json_array_size(logs) == 4);
    for (size_t i = 0; i < json_array_size(logs); i++)
        CHECK(strcmp(jstr(json_array_get(logs, i), "level") ? jstr(json_array_get(logs, i), "level") : "",
                     "debug") != 0);
    resp_free(&r);
    testsrv_stop(c.s);
}

/* Lists, batch creates and claims write jobs as text (api/jobtext.c); GET renders
 * them through jansson. Both must give the same bytes, for every kind of value: escapes,
 * control characters, non-ASCII, nulls, numbers, nested params and results. */
TEST(list_renders_jobs_byte_for_byte_like_get)
{
    struct st_ctx c = st_setup();
    char a[TS_ID_MAX], b[TS_ID_MAX], d[TS_ID_MAX], lease[TS_ID_MAX * 2], cid[TS_ID_MAX];
    st_enq(c.s, c.alice, a, "{\"type\":\"t\",\"queue\":\"rq\",\"params\":{\"s\":"
           "\"q\\\"b\\\\s/\\u0001\\u001f\\u007f\u00e9\u263a\",\"n\":1.5,\"i\":-7,"
           "\"arr\":[1,{\"x\":null},true]},\"priority\":3}");
    st_enq(c.s, c.alice, b, "{\"type\":\"t\",\"queue\":\"rq2\",\"params\":{}}");
    st_enq(c.s, c.alice, d, "{\"type\":\"t\",\"queue\":\"rq3\"}");
    REQUIRE(ts_claim1(c.s, c.worker, "rq", cid, lease));
    char body[512];
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"progress_percent\":40,"
             "\"progress_message\":\"40%% \\\"done\\\"\\n\\t\\u0002\"}", lease);
    CHECK_EQ(st_post0(c.s, c.worker, a, "heartbeat", body), 200);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"error_message\":\"bad \\\\ "
             "\\u001f \u00fc\",\"retryable\":true}", lease);
    CHECK_EQ(st_post0(c.s, c.worker, a, "fail", body), 200);
    REQUIRE(ts_claim1(c.s, c.worker, "rq2", cid, lease));
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"ok\":true,"
             "\"v\":[0.25,\"\\r\"],\"e\":{}}}", lease);
    CHECK_EQ(st_post0(c.s, c.worker, b, "complete", body), 200);
    struct resp list;
    REQUIRE_EQ(ts_req(c.s, "GET", "/v1/jobs?limit=10", c.alice, NULL, &list), 200);
    const char *ids[] = {a, b, d};
    for (int i = 0; i < 3; i++) {
        struct resp one;
        REQUIRE_EQ(ts_get(c.s, c.alice, ids[i], &one), 200);
        if (!CHECK(strstr(list.body, one.body) != NULL))
            fprintf(stderr, "  GET:  %s\n  list: %s\n", one.body, list.body);
        resp_free(&one);
    }
    resp_free(&list);
    testsrv_stop(c.s);
}

TEST_MAIN()
