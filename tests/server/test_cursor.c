/*
 * test_cursor.c - keyset pagination of GET /v1/jobs (docs/API.md, issue 4): next_cursor
 * walks every job once in the listing order, inserts while paging neither skip nor
 * repeat a job, bad/tampered/mismatched cursors are 400 field cursor; and statement
 * counts of list pages (filters, cursors, logs) do not depend on the page size or on how
 * many jobs there are (1 vs 500).
 */
#include "srvtest.h"

#include <stdlib.h>

enum { MAXJ = 1200 };

/* Percent-encodes s into out (cap bytes). */
static void urlenc(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *s && n + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[n++] = (char)ch;
        } else {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    out[n] = '\0';
}

/* One page: GET /v1/jobs?query[&cursor=cur]; appends ids to ids[*n]; next cursor into next
   ("" when null). Returns the HTTP status; stmts gets X-Jobq-Statements. */
static long page(struct testsrv *s, const char *token, const char *query, const char *cur,
                 char (*ids)[TS_ID_MAX], int *n, char *next, size_t cap, long *stmts)
{
    char path[4096], enc[2048] = "";
    struct resp r;
    if (cur && *cur) urlenc(cur, enc, sizeof enc);
    snprintf(path, sizeof path, "/v1/jobs?%s%s%s", query, *enc ? "&cursor=" : "", enc);
    long st = ts_req(s, "GET", path, token, NULL, &r);
    json_t *jobs = jpath(r.json, "jobs");
    for (size_t i = 0; st == 200 && i < json_array_size(jobs) && *n < MAXJ; i++)
        snprintf(ids[(*n)++], TS_ID_MAX, "%s", jstr(json_array_get(jobs, i), "id"));
    const char *nc = jstr(r.json, "next_cursor");
    if (st == 200 && !nc && !CHECK(jis_null(r.json, "next_cursor")))
        fprintf(stderr, "  no next_cursor member: %.300s\n", r.body);
    snprintf(next, cap, "%s", nc ? nc : "");
    if (stmts) *stmts = r.statements;
    if (st != 200) fprintf(stderr, "  GET %s -> %ld %s\n", path, st, r.body);
    resp_free(&r);
    return st;
}

/* Walks every page of query; returns the number of ids collected into ids. */
static int walk(struct testsrv *s, const char *token, const char *query, char (*ids)[TS_ID_MAX])
{
    char cur[2048] = "", next[2048];
    int n = 0, pages = 0;
    do {
        if (page(s, token, query, cur, ids, &n, next, sizeof next, NULL) != 200) break;
        snprintf(cur, sizeof cur, "%s", next);
    } while (*cur && ++pages < 1000);
    return n;
}

/* Batch-creates n jobs {"type":type,"params":{"i":base+k}} as token. */
static void fill(struct testsrv *s, const char *token, const char *type, int base, int n)
{
    size_t cap = (size_t)n * 64 + 64, len = 0;
    char *b = malloc(cap);
    len += (size_t)snprintf(b, cap, "{\"jobs\":[");
    for (int k = 0; k < n; k++)
        len += (size_t)snprintf(b + len, cap - len, "%s{\"type\":\"%s\",\"params\":{\"i\":%d}}",
                                k ? "," : "", type, base + k);
    snprintf(b + len, cap - len, "]}");
    struct resp r;
    long st = ts_req(s, "POST", "/v1/jobs/batch", token, b, &r);
    if (!CHECK_EQ(st, 201)) fprintf(stderr, "  batch -> %.300s\n", r.body);
    resp_free(&r);
    free(b);
    if (st != 201) th_abort();
}

static bool all_distinct(char (*ids)[TS_ID_MAX], int n)
{
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (!strcmp(ids[i], ids[j])) return false;
    return true;
}

static struct testsrv *start_unlimited(const char **tok)
{
    struct testsrv *s = testsrv_start(NULL);
    *tok = ts_token_limit(s, "pager", "user", 0);
    return s;
}

TEST(cursor_walks_every_job_once_in_order)
{
    const char *u;
    struct testsrv *s = start_unlimited(&u);
    static char all[MAXJ][TS_ID_MAX], got[MAXJ][TS_ID_MAX];
    fill(s, u, "a", 0, 12);                  /* 12 with one created_at: the id breaks ties */
    ts_advance(s, 5);
    fill(s, u, "b", 12, 9);
    ts_advance(s, 5);
    fill(s, u, "a", 21, 4);
    const char *orders[] = { "order=desc", "order=asc", "", NULL };
    for (int o = 0; orders[o]; o++) {
        char q[128];
        int n = 0;
        char next[2048];
        snprintf(q, sizeof q, "%s%slimit=1000", orders[o], *orders[o] ? "&" : "");
        page(s, u, q, NULL, all, &n, next, sizeof next, NULL);
        CHECK_EQ(n, 25);
        CHECK_STR_EQ(next, "");
        snprintf(q, sizeof q, "%s%slimit=10", orders[o], *orders[o] ? "&" : "");
        int m = walk(s, u, q, got);
        CHECK_EQ(m, 25);
        for (int i = 0; i < m && i < n; i++)
            if (!CHECK_STR_EQ(got[i], all[i])) { fprintf(stderr, "  %s at %d\n", q, i); break; }
    }
    /* with a filter */
    int m = walk(s, u, "type=a&limit=3", got);
    CHECK_EQ(m, 16);
    CHECK(all_distinct(got, m));
    m = walk(s, u, "type=b&status=pending&order=asc&limit=4", got);
    CHECK_EQ(m, 9);
    CHECK(all_distinct(got, m));
    /* total_count still comes with cursor pages */
    char next[2048];
    int n = 0;
    page(s, u, "limit=10", NULL, got, &n, next, sizeof next, NULL);
    REQUIRE(*next);
    struct resp r;
    char enc[2048];
    urlenc(next, enc, sizeof enc);
    CHECK_EQ(ts_reqf(s, "GET", u, NULL, &r, "/v1/jobs?limit=10&cursor=%s", enc), 200);
    CHECK_EQ(jint(r.json, "total_count"), 25);
    CHECK_EQ(json_array_size(jpath(r.json, "jobs")), 10);
    resp_free(&r);
    testsrv_stop(s);
}

/* Pages query with limit 7; after the first page adds 5 jobs (+clock moves); returns ids. */
static int walk_with_inserts(struct testsrv *s, const char *u, const char *query,
                             char (*got)[TS_ID_MAX], bool same_ms)
{
    char cur[2048] = "", next[2048];
    int n = 0, pages = 0;
    do {
        if (page(s, u, query, cur, got, &n, next, sizeof next, NULL) != 200) break;
        if (pages == 0) {
            if (!same_ms) ts_advance(s, 7);
            fill(s, u, "late", 1000 + n, 5);
        }
        snprintf(cur, sizeof cur, "%s", next);
    } while (*cur && ++pages < 100);
    return n;
}

TEST(inserts_while_paging_neither_skip_nor_repeat)
{
    const char *u;
    struct testsrv *s = start_unlimited(&u);
    static char got[MAXJ][TS_ID_MAX];
    fill(s, u, "early", 0, 20);
    /* newest first: the new jobs sort before the cursor, so the walk sees the 20 */
    int n = walk_with_inserts(s, u, "limit=7", got, false);
    CHECK_EQ(n, 20);
    CHECK(all_distinct(got, n));
    /* oldest first: the new jobs come at the end, so the walk sees them too */
    n = walk_with_inserts(s, u, "order=asc&limit=7", got, false);
    CHECK_EQ(n, 30);
    CHECK(all_distinct(got, n));
    /* same millisecond: ids are time-ordered, so the same holds */
    n = walk_with_inserts(s, u, "order=asc&limit=7", got, true);
    CHECK_EQ(n, 35);
    CHECK(all_distinct(got, n));
    n = walk_with_inserts(s, u, "order=desc&limit=7", got, true);
    CHECK_EQ(n, 35);
    CHECK(all_distinct(got, n));
    testsrv_stop(s);
}

TEST(bad_cursors_are_400)
{
    const char *u;
    struct testsrv *s = start_unlimited(&u);
    static char got[MAXJ][TS_ID_MAX];
    char next[2048], enc[2048];
    int n = 0;
    struct resp r;
    fill(s, u, "t", 0, 6);
    page(s, u, "order=asc&limit=2", NULL, got, &n, next, sizeof next, NULL);
    REQUIRE(*next);
    const char *bad[] = { "garbage", "%00", "AAAAAAAAAAAAAAAAAAAAAAAA", NULL };
    for (int i = 0; bad[i]; i++) {
        bool ok = CHECK_EQ(ts_reqf(s, "GET", u, NULL, &r, "/v1/jobs?cursor=%s", bad[i]), 400);
        ok &= CHECK_STR_EQ(jstr(r.json, "error.field"), "cursor");
        if (!ok) fprintf(stderr, "  cursor=%s -> %ld %s\n", bad[i], r.status, r.body);
        resp_free(&r);
    }
    /* tampered: one character of a real cursor changed */
    char t[2048];
    snprintf(t, sizeof t, "%s", next);
    size_t mid = strlen(t) / 2;
    t[mid] = t[mid] == 'A' ? 'B' : 'A';
    urlenc(t, enc, sizeof enc);
    CHECK_EQ(ts_reqf(s, "GET", u, NULL, &r, "/v1/jobs?order=asc&limit=2&cursor=%s", enc), 400);
    CHECK_STR_EQ(jstr(r.json, "error.field"), "cursor");
    if (th_failed()) fprintf(stderr, "  tampered %s (from %s) -> %s\n", t, next, r.body);
    resp_free(&r);
    urlenc(next, enc, sizeof enc);
    /* an asc cursor with order=desc */
    CHECK_EQ(ts_reqf(s, "GET", u, NULL, &r, "/v1/jobs?order=desc&limit=2&cursor=%s", enc), 400);
    resp_free(&r);
    /* cursor and offset together */
    CHECK_EQ(ts_reqf(s, "GET", u, NULL, &r, "/v1/jobs?order=asc&offset=2&cursor=%s", enc), 400);
    resp_free(&r);
    /* the genuine one still works */
    CHECK_EQ(ts_reqf(s, "GET", u, NULL, &r, "/v1/jobs?order=asc&limit=2&cursor=%s", enc), 200);
    CHECK_EQ(json_array_size(jpath(r.json, "jobs")), 2);
    resp_free(&r);
    /* offset listings carry next_cursor as well (null on the last page) */
    CHECK_EQ(ts_req(s, "GET", "/v1/jobs?limit=100&offset=0", u, NULL, &r), 200);
    CHECK(jis_null(r.json, "next_cursor"));
    resp_free(&r);
    testsrv_stop(s);
}

/* X-Jobq-Statements of GET path as token (CHECKs 200). */
static long stm(struct testsrv *s, const char *token, const char *path)
{
    struct resp r;
    if (!CHECK_EQ(ts_req(s, "GET", path, token, NULL, &r), 200))
        fprintf(stderr, "  GET %s -> %s\n", path, r.body);
    long n = r.statements;
    resp_free(&r);
    CHECK(n >= 1);
    return n;
}

/* Cursor (url-encoded into enc) after the first `lim` jobs of query. */
static void cursor_after(struct testsrv *s, const char *token, const char *query, char *enc,
                         size_t cap)
{
    static char ids[MAXJ][TS_ID_MAX];
    char next[2048];
    int n = 0;
    page(s, token, query, NULL, ids, &n, next, sizeof next, NULL);
    REQUIRE(*next);
    urlenc(next, enc, cap);
}

TEST(list_statements_do_not_depend_on_page_size)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *one = ts_token_limit(s, "one", "user", 0);
    const char *many = ts_token_limit(s, "many", "user", 0);
    fill(s, one, "t", 0, 1);
    fill(s, many, "t", 0, 500);
    const char *filters[] = {
        "", "status=pending", "type=t", "queue=default", "status=pending&type=t",
        "type=t&queue=default", "status=pending&type=t&queue=default", "order=asc", NULL
    };
    for (int i = 0; filters[i]; i++) {
        char p1[2400], p2[2400];
        snprintf(p1, sizeof p1, "/v1/jobs?limit=1000%s%s", *filters[i] ? "&" : "", filters[i]);
        long a = stm(s, one, p1), b = stm(s, many, p1);
        if (!CHECK_EQ(a, b)) fprintf(stderr, "  user %s: 1 job %ld, 500 jobs %ld\n", p1, a, b);
        snprintf(p2, sizeof p2, "/v1/jobs?limit=1%s%s", *filters[i] ? "&" : "", filters[i]);
        a = stm(s, s->admin, p2), b = stm(s, s->admin, p1);
        if (!CHECK_EQ(a, b)) fprintf(stderr, "  admin %s: limit 1 %ld, 1000 %ld\n", p1, a, b);
        /* cursor pages: 1 job vs 499 jobs after the same cursor */
        char enc[2048], q[256];
        snprintf(q, sizeof q, "limit=1%s%s", *filters[i] ? "&" : "", filters[i]);
        cursor_after(s, many, q, enc, sizeof enc);
        snprintf(p1, sizeof p1, "/v1/jobs?limit=1%s%s&cursor=%s", *filters[i] ? "&" : "",
                 filters[i], enc);
        snprintf(p2, sizeof p2, "/v1/jobs?limit=1000%s%s&cursor=%s", *filters[i] ? "&" : "",
                 filters[i], enc);
        a = stm(s, many, p1), b = stm(s, many, p2);
        if (!CHECK_EQ(a, b)) fprintf(stderr, "  cursor %s: 1 job %ld, 499 jobs %ld\n", q, a, b);
        cursor_after(s, s->admin, q, enc, sizeof enc);
        snprintf(p1, sizeof p1, "/v1/jobs?limit=1%s%s&cursor=%s", *filters[i] ? "&" : "",
                 filters[i], enc);
        snprintf(p2, sizeof p2, "/v1/jobs?limit=1000%s%s&cursor=%s", *filters[i] ? "&" : "",
                 filters[i], enc);
        a = stm(s, s->admin, p1), b = stm(s, s->admin, p2);
        if (!CHECK_EQ(a, b)) fprintf(stderr, "  admin cursor %s: %ld vs %ld\n", q, a, b);
    }
    testsrv_stop(s);
}

TEST(log_list_statements_do_not_depend_on_count)
{
    struct st_ctx c = st_setup();
    char j1[TS_ID_MAX], j500[TS_ID_MAX], l1[TS_ID_MAX], l500[TS_ID_MAX], body[256];
    st_enq(c.s, c.alice, j1, "{\"type\":\"t\",\"queue\":\"lg\",\"params\":{\"n\":1}}");
    st_enq(c.s, c.alice, j500, "{\"type\":\"t\",\"queue\":\"lg\",\"params\":{\"n\":500}}");
    char got[TS_ID_MAX];
    REQUIRE(ts_claim1(c.s, c.worker, "lg", got, l1));
    REQUIRE_STR_EQ(got, j1);
    REQUIRE(ts_claim1(c.s, c.worker, "lg", got, l500));
    REQUIRE_STR_EQ(got, j500);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"level\":\"info\",\"message\":\"m\"}", l1);
    REQUIRE_EQ(st_post0(c.s, c.worker, j1, "logs", body), 201);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"level\":\"info\",\"message\":\"m\"}", l500);
    for (int i = 0; i < 500; i++) REQUIRE_EQ(st_post0(c.s, c.worker, j500, "logs", body), 201);
    char p1[256], p2[256];
    snprintf(p1, sizeof p1, "/v1/jobs/%s/logs?limit=1000", j1);
    snprintf(p2, sizeof p2, "/v1/jobs/%s/logs?limit=1000", j500);
    CHECK_EQ(stm(c.s, c.alice, p1), stm(c.s, c.alice, p2));
    snprintf(p1, sizeof p1, "/v1/jobs/%s/logs?limit=1000&level=info", j1);
    snprintf(p2, sizeof p2, "/v1/jobs/%s/logs?limit=1000&level=info", j500);
    CHECK_EQ(stm(c.s, c.alice, p1), stm(c.s, c.alice, p2));
    /* after= pages: 1 log vs 499 logs */
    struct resp r;
    CHECK_EQ(ts_reqf(c.s, "GET", c.alice, NULL, &r, "/v1/jobs/%s/logs?limit=1", j500), 200);
    json_t *na = jpath(r.json, "next_after");
    char after[64];
    if (json_is_integer(na)) snprintf(after, sizeof after, "%lld", (long long)json_integer_value(na));
    else snprintf(after, sizeof after, "%s", json_string_value(na) ? json_string_value(na) : "");
    resp_free(&r);
    REQUIRE(*after);
    snprintf(p1, sizeof p1, "/v1/jobs/%s/logs?limit=1&after=%s", j500, after);
    snprintf(p2, sizeof p2, "/v1/jobs/%s/logs?limit=1000&after=%s", j500, after);
    CHECK_EQ(stm(c.s, c.worker, p1), stm(c.s, c.worker, p2));
    testsrv_stop(c.s);
}

TEST_MAIN()
