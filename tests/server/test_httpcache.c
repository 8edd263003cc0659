/*
 * test_httpcache.c - HTTP caching of GET /v1/jobs/{id} (docs/API.md, issue 4): ETag of 16
 * hex chars that changes with the body, Cache-Control private max-age=5 while active and
 * max-age=3600 once finished, If-None-Match (the ETag or *) → 304 with the ETag and no
 * body; another user's job stays a 404.
 */
#include "srvtest.h"

#include <ctype.h>

/* GET /v1/jobs/{id} as token with If-None-Match: inm (NULL = none). */
static long get_inm(struct testsrv *s, const char *token, const char *id, const char *inm,
                    struct resp *out)
{
    char path[128], h[TS_HDR_MAX + 32];
    const char *hs[2] = { h, NULL };
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    snprintf(h, sizeof h, "If-None-Match: %s", inm ? inm : "");
    struct ts_http rq = { .method = "GET", .path = path, .token = token,
                          .headers = inm ? hs : NULL };
    return ts_do(s, &rq, out);
}

/* "\"" + 16 lowercase-or-uppercase hex + "\"" */
static bool etag_ok(const char *e)
{
    if (strlen(e) != 18 || e[0] != '"' || e[17] != '"') return false;
    for (int i = 1; i < 17; i++)
        if (!isxdigit((unsigned char)e[i])) return false;
    return true;
}

/* GETs id; CHECKs 200, the ETag form and Cache-Control; copies the ETag into etag. */
static void check_get(struct testsrv *s, const char *token, const char *id, const char *cc,
                      char *etag)
{
    struct resp r;
    CHECK_EQ(get_inm(s, token, id, NULL, &r), 200);
    bool ok = CHECK(etag_ok(r.etag));
    ok &= CHECK_STR_EQ(r.cache_control, cc);
    if (!ok) fprintf(stderr, "  ETag [%s] Cache-Control [%s] status %s\n", r.etag,
                     r.cache_control, jstr(r.json, "status"));
    snprintf(etag, TS_HDR_MAX, "%s", r.etag);
    resp_free(&r);
}

/* CHECKs that If-None-Match: inm answers 304 with etag and no body. */
static void check_304(struct testsrv *s, const char *token, const char *id, const char *inm,
                      const char *etag)
{
    struct resp r;
    bool ok = CHECK_EQ(get_inm(s, token, id, inm, &r), 304);
    ok &= CHECK_STR_EQ(r.etag, etag);
    ok &= CHECK_EQ(r.len, 0);
    if (!ok) fprintf(stderr, "  If-None-Match %s -> %ld [%s] %s\n", inm, r.status, r.etag, r.body);
    resp_free(&r);
}

TEST(etag_and_304)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], other[TS_ID_MAX], e1[TS_HDR_MAX], e2[TS_HDR_MAX], e3[TS_HDR_MAX];
    struct resp r;
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"hq\"}");
    st_enq(c.s, c.alice, other, "{\"type\":\"u\",\"queue\":\"hq2\"}");
    check_get(c.s, c.alice, id, "private, max-age=5", e1);
    check_get(c.s, c.alice, id, "private, max-age=5", e2);
    CHECK_STR_EQ(e2, e1);                                   /* stable while unchanged */
    check_get(c.s, c.alice, other, "private, max-age=5", e3);
    CHECK(strcmp(e1, e3) != 0);                             /* another body, another tag */
    check_304(c.s, c.alice, id, e1, e1);
    check_304(c.s, c.alice, id, "*", e1);
    /* a stale tag gets the full body */
    CHECK_EQ(get_inm(c.s, c.alice, id, "\"0000000000000000\"", &r), 200);
    CHECK_STR_EQ(jstr(r.json, "id"), id);
    CHECK_STR_EQ(r.etag, e1);
    resp_free(&r);
    /* not someone else's */
    CHECK_EQ(get_inm(c.s, c.bob, id, "*", &r), 404);
    CHECK_STR_EQ(r.etag, "");
    resp_free(&r);
    CHECK_EQ(get_inm(c.s, c.bob, id, e1, &r), 404);
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST(etag_changes_and_max_age_follows_status)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], lease[TS_ID_MAX], b[256], e0[TS_HDR_MAX], e1[TS_HDR_MAX], e2[TS_HDR_MAX];
    struct resp r;
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"hq\"}");
    check_get(c.s, c.alice, id, "private, max-age=5", e0);
    REQUIRE(ts_claim1(c.s, c.worker, "hq", NULL, lease));
    check_get(c.s, c.worker, id, "private, max-age=5", e1);
    CHECK(strcmp(e0, e1) != 0);
    CHECK_EQ(get_inm(c.s, c.alice, id, e0, &r), 200);       /* the old tag no longer matches */
    CHECK_STR_EQ(jstr(r.json, "status"), "processing");
    resp_free(&r);
    snprintf(b, sizeof b, "{\"lease_token\":\"%s\",\"progress_percent\":10}", lease);
    REQUIRE_EQ(st_post0(c.s, c.worker, id, "heartbeat", b), 200);
    check_get(c.s, c.alice, id, "private, max-age=5", e2);
    CHECK(strcmp(e1, e2) != 0);
    snprintf(b, sizeof b, "{\"lease_token\":\"%s\",\"result\":{\"r\":1}}", lease);
    REQUIRE_EQ(st_post0(c.s, c.worker, id, "complete", b), 200);
    check_get(c.s, c.alice, id, "private, max-age=3600", e1);
    CHECK(strcmp(e1, e2) != 0);
    check_304(c.s, c.alice, id, e1, e1);
    /* failed and cancelled are final too */
    char f[TS_ID_MAX], x[TS_ID_MAX];
    st_enq(c.s, c.alice, f, "{\"type\":\"t\",\"queue\":\"hf\"}");
    REQUIRE(ts_claim1(c.s, c.worker, "hf", NULL, lease));
    snprintf(b, sizeof b, "{\"lease_token\":\"%s\",\"error_message\":\"x\",\"retryable\":false}", lease);
    REQUIRE_EQ(st_post0(c.s, c.worker, f, "fail", b), 200);
    check_get(c.s, c.alice, f, "private, max-age=3600", e1);
    st_enq(c.s, c.alice, x, "{\"type\":\"t\",\"queue\":\"hx\"}");
    REQUIRE_EQ(st_post0(c.s, c.alice, x, "cancel", NULL), 200);
    check_get(c.s, c.alice, x, "private, max-age=3600", e1);
    /* retried: active again */
    REQUIRE_EQ(st_post0(c.s, c.alice, x, "retry", NULL), 200);
    check_get(c.s, c.alice, x, "private, max-age=5", e2);
    CHECK(strcmp(e1, e2) != 0);
    testsrv_stop(c.s);
}

TEST_MAIN()
