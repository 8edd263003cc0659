/* test_metrics.c - /metrics follows the Prometheus text format (checked line
 * by line), counts what happened, needs a token; /readyz; and the N+1 guard
 * fails a request over its statement budget loudly in test builds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "srvtest.h"

#define METRICS_TOKEN "metrics-secret-0123456789"

/* Checks the exposition format; returns the value of `series` (exact
 * "name{labels}" text) or -1. */
static double check_format(const char *text, const char *series)
{
    char typed[64][96];
    int ntyped = 0;
    double found = -1;
    const char *line = text;
    while (*line) {
        const char *nl = strchr(line, '\n');
        REQUIRE(nl != NULL);                              /* every line ends with \n */
        char l[1024];
        snprintf(l, sizeof l, "%.*s", (int)(nl - line), line);
        if (!strncmp(l, "# TYPE ", 7)) {
            char name[96], type[32];
            CHECK(sscanf(l + 7, "%95s %31s", name, type) == 2);
            CHECK(!strcmp(type, "counter") || !strcmp(type, "gauge") || !strcmp(type, "histogram"));
            if (ntyped < 64)
                snprintf(typed[ntyped++], sizeof typed[0], "%s", name);
        } else if (l[0] != '#') {
            char *sp = strrchr(l, ' ');
            REQUIRE(sp != NULL);
            char *end;
            double v = strtod(sp + 1, &end);
            CHECK(*end == '\0');                          /* a number */
            *sp = '\0';
            size_t nlen = strcspn(l, "{");
            if (l[nlen] == '{')
                CHECK(l[strlen(l) - 1] == '}');           /* labels closed */
            bool known = false;                            /* its family was TYPE'd before */
            for (int i = 0; i < ntyped && !known; i++)
                known = !strncmp(l, typed[i], strlen(typed[i]));
            if (!CHECK(known))
                fprintf(stderr, "  untyped series: %s\n", l);
            if (!strcmp(l, series))
                found = v;
        }
        line = nl + 1;
    }
    return found;
}

TEST(metrics_format_counts_and_auth)
{
    const char *extra[] = {"--metrics-token", METRICS_TOKEN, NULL};
    struct testsrv *s = st_start_with(extra);
    const char *u = ts_token(s, "alice", "user");
    char id[TS_ID_MAX];
    REQUIRE_EQ(ts_enqueue(s, u, "{\"type\":\"m\"}", id), 201);
    struct resp r;
    CHECK_EQ(ts_req(s, "GET", "/metrics", NULL, NULL, &r), 401);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/metrics", u, NULL, &r), 401);       /* users may not */
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/metrics", METRICS_TOKEN, NULL, &r), 200);
    CHECK(strncmp(r.content_type, "text/plain", 10) == 0);
    CHECK_EQ(strlen(r.body), r.len);                      /* no NUL inside the text */
    CHECK_EQ(check_format(r.body, "jobq_http_requests_total{route=\"POST /v1/jobs\",code=\"2xx\"}"),
             1);
    CHECK_EQ(check_format(r.body, "jobq_jobs{status=\"pending\"}"), 1);
    CHECK(check_format(r.body, "jobq_store_commits_total") >= 1);
    CHECK(check_format(r.body, "jobq_slow_statements_total") >= 0);
    CHECK(check_format(r.body, "jobq_http_request_duration_seconds_count{route=\"POST /v1/jobs\"}")
          == 1);
    double inf = check_format(r.body, "jobq_store_commit_seconds_bucket{store=\"main\",le=\"+Inf\"}");
    CHECK_EQ(inf, check_format(r.body, "jobq_store_commit_seconds_count{store=\"main\"}"));
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/metrics", s->admin, NULL, &r), 200);  /* admins may */
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/readyz", NULL, NULL, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "ready");
    resp_free(&r);
    testsrv_stop(s);
}

TEST(a_request_over_its_statement_budget_fails_loudly)
{
    const char *extra[] = {"--statement-budget", "1", NULL};
    struct testsrv *s = st_start_with(extra);
    const char *u = ts_token(s, "alice", "user");
    struct resp r;
    CHECK_EQ(ts_req(s, "GET", "/v1/jobs", u, NULL, &r), 500);        /* list + count = 2 */
    CHECK_STR_EQ(jstr(r.json, "error.code"), "statement_budget");
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/v1/jobs?params=%7B%22a%22%3A1%7D", u, NULL, &r), 500);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/v1/stats", u, NULL, &r), 500);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/metrics", s->admin, NULL, &r), 200);
    CHECK(strstr(r.body, "jobq_http_statement_budget_exceeded_total{route=\"GET /v1/jobs\"} 2"));
    resp_free(&r);
    testsrv_stop(s);
}

TEST_MAIN()
