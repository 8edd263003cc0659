/*
 * test_malformed_raw.c - RELIABILITY.md T20, the categories tests/server/test_malformed.c
 * does not cover: the HTTP framing (raw sockets: CL+TE, duplicate/overflowing
 * Content-Length, chunk-size overflow, bare CR/LF, obs-fold, NUL / %00 / over-long UTF-8
 * in the path, dot segments and double encoding, HTTP/0.9 and unknown versions,
 * pipelining after an error) and JSON edge cases (BOM, trailing comma, NaN, 1e999, 10k
 * digits, lone surrogates, invalid UTF-8, duplicate keys, huge arrays, wrong type per
 * field, run_at years 1 and 9999, invalid cron, empty/huge names, workflow and batch
 * shape errors, bad query values). Each answer is one of the listed statuses (an error
 * from jobq itself carries the JSON error body and the listed code), the server lives,
 * and nothing changes: the job list and the store's write counters are the same after.
 */
#include "rel.h"

/* --- raw HTTP: {request, acceptable statuses (0 = connection closed without an answer)} */
struct rawcase { const char *name, *req; long ok[3]; };

#define AUTH "Authorization: Bearer @U\r\n"
static const struct rawcase RAW[] = {
    { "CL+TE", "POST /v1/jobs HTTP/1.1\r\nHost: x\r\n" AUTH "Content-Type: application/json\r\n"
      "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", { 400, 0, -1 } },
    { "duplicate differing Content-Length", "POST /v1/jobs HTTP/1.1\r\nHost: x\r\n" AUTH
      "Content-Type: application/json\r\nContent-Length: 12\r\nContent-Length: 13\r\n\r\n{\"type\":\"t\"}",
      { 400, 0, -1 } },
    { "Content-Length overflow", "POST /v1/jobs HTTP/1.1\r\nHost: x\r\n" AUTH
      "Content-Type: application/json\r\nContent-Length: 184467440737095516160\r\n\r\n{}",
      { 400, 413, 0 } },
    { "negative Content-Length", "POST /v1/jobs HTTP/1.1\r\nHost: x\r\n" AUTH
      "Content-Type: application/json\r\nContent-Length: -1\r\n\r\n{}", { 400, 0, -1 } },
    { "chunk-size overflow", "POST /v1/jobs HTTP/1.1\r\nHost: x\r\n" AUTH
      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
      "FFFFFFFFFFFFFFFFFFFF\r\n{}\r\n0\r\n\r\n", { 400, 413, 0 } },
    { "bad chunk size", "POST /v1/jobs HTTP/1.1\r\nHost: x\r\n" AUTH
      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
      { 400, 0, -1 } },
    /* libmicrohttpd keeps a bare CR inside a value; jobq reads no such header (noted) */
    { "bare CR in a header", "GET /v1/stats HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n" AUTH "\r\n",
      { 400, 0, 200 } },
    { "bare LF line ends", "GET /healthz HTTP/1.1\nHost: x\n\n", { 200, 400, 0 } },
    { "obs-fold", "GET /v1/stats HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n" AUTH "\r\n",
      { 400, 200, 0 } },
    { "header without a colon", "GET /v1/stats HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n" AUTH "\r\n",
      { 400, 0, -1 } },
    { "space before the colon", "GET /v1/stats HTTP/1.1\r\nHost : x\r\n" AUTH "\r\n",
      { 400, 0, -1 } },
    /* RFC 9112 wants 400; libmicrohttpd answers (noted, harmless without virtual hosts) */
    { "HTTP/1.1 without Host", "GET /healthz HTTP/1.1\r\n\r\n", { 400, 0, 200 } },
    { "space before the colon of Transfer-Encoding", "POST /v1/jobs HTTP/1.1\r\nHost: x\r\n" AUTH
      "Content-Type: application/json\r\nContent-Length: 12\r\nTransfer-Encoding : chunked\r\n\r\n"
      "{\"type\":\"t\"}", { 400, 0, -1 } },
    { "NUL in the path", "GET /v1/jobs/ab\0cd HTTP/1.1\r\nHost: x\r\n" AUTH "\r\n", { 400, 404, 0 } },
    { "%00 in the path", "GET /v1/jobs/%00 HTTP/1.1\r\nHost: x\r\n" AUTH "\r\n", { 404, 400, -1 } },
    { "over-long UTF-8 in the path", "GET /v1/jobs/%C0%AF HTTP/1.1\r\nHost: x\r\n" AUTH "\r\n",
      { 404, 400, -1 } },
    { "dot segments to an admin route", "POST /v1/jobs/../tokens HTTP/1.1\r\nHost: x\r\n" AUTH
      "Content-Type: application/json\r\nContent-Length: 33\r\n\r\n{\"user_id\":\"x\",\"role\":\"admin\"}   ",
      { 404, 400, 403 } },
    { "double-encoded dots", "GET /v1/jobs/%252e%252e HTTP/1.1\r\nHost: x\r\n" AUTH "\r\n",
      { 404, 400, -1 } },
    { "HTTP/0.9", "GET /healthz\r\n\r\n", { 400, 505, 0 } },
    { "HTTP/2.0 on the wire", "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", { 505, 400, 0 } },
    { "HTTP/1.9", "GET /healthz HTTP/1.9\r\nHost: x\r\n\r\n", { 505, 400, 200 } },
    { "garbage version", "GET /healthz FOO/1.1\r\nHost: x\r\n\r\n", { 400, 505, 0 } },
    { "control bytes in the method", "G\x01T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", { 400, 405, 501 } },
    { "lower-case method", "get /healthz HTTP/1.1\r\nHost: x\r\n\r\n", { 405, 404, 400 } },
    { "1000 headers", "@MANYHEADERS", { 431, 400, 413 } },
    { "pipelining after an error", "GET /v1/stats HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n"
      AUTH "\r\nPOST /v1/jobs HTTP/1.1\r\nHost: x\r\n" AUTH "Content-Type: application/json\r\n"
      "Content-Length: 12\r\n\r\n{\"type\":\"t\"}", { 400, 0, -1 } },
};

/* --- API-level cases through libcurl */
struct apicase {
    const char *name, *method, *path, *body;  /* body "@X" = generated */
    const char *hdr;                          /* one extra header line or NULL */
    long ok[2];
    const char *code;                         /* error.code wanted for ok[0] (NULL: any) */
};

#define JOBS "/v1/jobs"
static const struct apicase API[] = {
    { "BOM", "POST", JOBS, "\xEF\xBB\xBF{\"type\":\"t\"}", NULL, { 400, -1 }, "invalid_json" },
    { "trailing comma", "POST", JOBS, "{\"type\":\"t\",}", NULL, { 400, -1 }, "invalid_json" },
    { "NaN", "POST", JOBS, "{\"type\":\"t\",\"params\":{\"x\":NaN}}", NULL, { 400, -1 }, "invalid_json" },
    { "Infinity", "POST", JOBS, "{\"type\":\"t\",\"params\":{\"x\":-Infinity}}", NULL, { 400, -1 }, "invalid_json" },
    { "1e999", "POST", JOBS, "{\"type\":\"t\",\"params\":{\"x\":1e999}}", NULL, { 400, -1 }, "invalid_json" },
    { "priority 1e999", "POST", JOBS, "{\"type\":\"t\",\"priority\":1e999}", NULL, { 400, -1 }, NULL },
    { "10k-digit integer", "POST", JOBS, "@DIGITS", NULL, { 400, -1 }, "invalid_json" },
    { "lone high surrogate", "POST", JOBS, "{\"type\":\"t\",\"params\":{\"s\":\"\\ud800\"}}", NULL, { 400, -1 }, "invalid_json" },
    { "lone low surrogate", "POST", JOBS, "{\"type\":\"t\",\"params\":{\"s\":\"\\udc00x\"}}", NULL, { 400, -1 }, "invalid_json" },
    { "invalid UTF-8", "POST", JOBS, "{\"type\":\"t\",\"params\":{\"s\":\"\xc3\x28\"}}", NULL, { 400, -1 }, "invalid_json" },
    { "over-long UTF-8", "POST", JOBS, "{\"type\":\"t\",\"params\":{\"s\":\"\xc0\xaf\"}}", NULL, { 400, -1 }, "invalid_json" },
    { "NUL escape in type", "POST", JOBS, "{\"type\":\"a\\u0000b\"}", NULL, { 400, -1 }, NULL },
    { "duplicate keys", "POST", JOBS, "{\"type\":\"t\",\"type\":\"u\"}", NULL, { 400, -1 }, "invalid_json" },
    { "depth 10k", "POST", JOBS, "@DEEP10K", NULL, { 400, -1 }, "invalid_json" },
    { "100k-element array", "POST", JOBS, "@ARRAY", NULL, { 413, -1 }, "too_large" },
    { "queue not a string", "POST", JOBS, "{\"type\":\"t\",\"queue\":5}", NULL, { 400, -1 }, "invalid_argument" },
    { "params a string", "POST", JOBS, "{\"type\":\"t\",\"params\":\"x\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "run_at a bool", "POST", JOBS, "{\"type\":\"t\",\"run_at\":true}", NULL, { 400, -1 }, "invalid_argument" },
    { "max_attempts a string", "POST", JOBS, "{\"type\":\"t\",\"max_attempts\":\"3\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "ttl_ms a float", "POST", JOBS, "{\"type\":\"t\",\"ttl_ms\":1500.5}", NULL, { 400, -1 }, "invalid_argument" },
    { "dedup a string", "POST", JOBS, "{\"type\":\"t\",\"dedup\":\"yes\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "unique_key a number", "POST", JOBS, "{\"type\":\"t\",\"unique_key\":7}", NULL, { 400, -1 }, "invalid_argument" },
    { "on_conflict unknown", "POST", JOBS, "{\"type\":\"t\",\"unique_key\":\"k\",\"on_conflict\":\"merge\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "depends_on a string", "POST", JOBS, "{\"type\":\"t\",\"depends_on\":\"x\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "depends_on unknown job", "POST", JOBS, "{\"type\":\"t\",\"depends_on\":[\"01M8AGE6V10DTZKVQQN9P9E2H0\"]}", NULL, { 400, 404 }, NULL },
    { "unknown field", "POST", JOBS, "{\"type\":\"t\",\"prio\":1}", NULL, { 400, -1 }, "invalid_argument" },
    { "run_at and delay_ms", "POST", JOBS, "{\"type\":\"t\",\"delay_ms\":5,\"run_at\":\"2026-01-01T00:00:00Z\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "run_at year 1", "POST", JOBS, "{\"type\":\"t\",\"run_at\":\"0001-01-01T00:00:00Z\"}", NULL, { 400, -1 }, "invalid_argument" },
    /* year 9999 is accepted (no cap on run_at, unlike delay_ms); 200 = the dedup reply of
     * the fixture job, so nothing changes either way */
    { "run_at year 9999", "POST", JOBS, "{\"type\":\"t\",\"run_at\":\"9999-12-31T23:59:59Z\"}", NULL, { 400, 200 }, NULL },
    { "run_at month 13", "POST", JOBS, "{\"type\":\"t\",\"run_at\":\"2026-13-01T00:00:00Z\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "run_at Feb 30", "POST", JOBS, "{\"type\":\"t\",\"run_at\":\"2026-02-30T00:00:00Z\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "run_at hour 25", "POST", JOBS, "{\"type\":\"t\",\"run_at\":\"2026-01-01T25:00:00Z\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "run_at offset +24:00", "POST", JOBS, "{\"type\":\"t\",\"run_at\":\"2026-01-01T00:00:00+24:00\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "expires_at before run_at", "POST", JOBS, "{\"type\":\"t\",\"delay_ms\":100000,\"expires_at\":\"2000-01-01T00:00:00Z\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "empty queue", "POST", JOBS, "{\"type\":\"t\",\"queue\":\"\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "10k-char type", "POST", JOBS, "@HUGETYPE", NULL, { 413, 400 }, NULL },
    { "129-char queue", "POST", JOBS, "@LONGQUEUE", NULL, { 413, 400 }, NULL },
    { "cron 3 fields", "POST", "/v1/schedules", "{\"name\":\"a\",\"cron\":\"* * *\",\"type\":\"t\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "cron minute 60", "POST", "/v1/schedules", "{\"name\":\"a\",\"cron\":\"60 * * * *\",\"type\":\"t\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "cron step 0", "POST", "/v1/schedules", "{\"name\":\"a\",\"cron\":\"*/0 * * * *\",\"type\":\"t\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "cron reversed range", "POST", "/v1/schedules", "{\"name\":\"a\",\"cron\":\"5-1 * * * *\",\"type\":\"t\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "cron unknown macro", "POST", "/v1/schedules", "{\"name\":\"a\",\"cron\":\"@fortnightly\",\"type\":\"t\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "cron empty", "POST", "/v1/schedules", "{\"name\":\"a\",\"cron\":\"\",\"type\":\"t\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "cron never fires", "POST", "/v1/schedules", "{\"name\":\"a\",\"cron\":\"0 0 30 2 *\",\"type\":\"t\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "unknown time zone", "POST", "/v1/schedules", "{\"name\":\"a\",\"cron\":\"@daily\",\"timezone\":\"Mars/Base\",\"type\":\"t\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "zone path traversal", "POST", "/v1/schedules", "{\"name\":\"a\",\"cron\":\"@daily\",\"timezone\":\"../../etc/passwd\",\"type\":\"t\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "misfire unknown", "POST", "/v1/schedules", "{\"name\":\"a\",\"cron\":\"@daily\",\"misfire\":\"later\",\"type\":\"t\"}", NULL, { 400, -1 }, "invalid_argument" },
    { "workflow cycle", "POST", "/v1/workflows", "{\"steps\":[{\"key\":\"a\",\"type\":\"t\",\"depends_on\":[\"b\"]},{\"key\":\"b\",\"type\":\"t\",\"depends_on\":[\"a\"]}]}", NULL, { 400, -1 }, NULL },
    { "workflow unknown dep", "POST", "/v1/workflows", "{\"steps\":[{\"key\":\"a\",\"type\":\"t\",\"depends_on\":[\"zz\"]}]}", NULL, { 400, -1 }, NULL },
    { "workflow duplicate key", "POST", "/v1/workflows", "{\"steps\":[{\"key\":\"a\",\"type\":\"t\"},{\"key\":\"a\",\"type\":\"t\"}]}", NULL, { 400, -1 }, NULL },
    { "workflow no steps", "POST", "/v1/workflows", "{\"steps\":[]}", NULL, { 400, -1 }, "invalid_argument" },
    { "workflow self dep", "POST", "/v1/workflows", "{\"steps\":[{\"key\":\"a\",\"type\":\"t\",\"depends_on\":[\"a\"]}]}", NULL, { 400, -1 }, NULL },
    { "batch empty", "POST", "/v1/jobs/batch", "{\"jobs\":[]}", NULL, { 400, -1 }, "invalid_argument" },
    { "batch 1001", "POST", "/v1/jobs/batch", "@BATCH1001", NULL, { 400, 413 }, NULL },
    { "batch item bad", "POST", "/v1/jobs/batch", "{\"jobs\":[{\"type\":\"t\"},{\"type\":5}]}", NULL, { 400, -1 }, "invalid_argument" },
    { "cancel ids and filter", "POST", "/v1/jobs/cancel", "{\"ids\":[],\"filter\":{}}", NULL, { 400, -1 }, "invalid_argument" },
    { "cancel neither", "POST", "/v1/jobs/cancel", "{}", NULL, { 400, -1 }, "invalid_argument" },
    { "Idempotency-Key 256", "POST", JOBS, "{\"type\":\"t\"}", "@LONGKEY", { 400, -1 }, "invalid_argument" },
    { "Idempotency-Key control char", "POST", JOBS, "{\"type\":\"t\"}", "Idempotency-Key: a\x7f" "b", { 400, -1 }, "invalid_argument" },
    { "tampered cursor", "GET", "/v1/jobs?cursor=AAAAAAAAAAAAAAAAAAAA", NULL, NULL, { 400, -1 }, "invalid_argument" },
    { "cursor with offset", "GET", "/v1/jobs?cursor=x&offset=1", NULL, NULL, { 400, -1 }, "invalid_argument" },
    { "unterminated FTS phrase", "GET", "/v1/logs/search?q=%22open", NULL, NULL, { 400, -1 }, "invalid_argument" },
    { "FTS column filter", "GET", "/v1/logs/search?q=user_id:bob", NULL, NULL, { 400, 200 }, NULL },
    { "containment {}", "GET", "/v1/jobs?params=%7B%7D", NULL, NULL, { 400, -1 }, "invalid_argument" },
    { "containment not JSON", "GET", "/v1/jobs?params=nope", NULL, NULL, { 400, -1 }, "invalid_argument" },
    { "wait timeout too long", "GET", "/v1/jobs/01M8AGE6V10DTZKVQQN9P9E2H0/wait?timeout_ms=60001", NULL, NULL, { 400, 404 }, NULL },
    { "unknown query parameter", "GET", "/v1/jobs?colour=red", NULL, NULL, { 400, -1 }, "invalid_argument" },
    { "repeated query parameter", "GET", "/v1/jobs?limit=1&limit=2", NULL, NULL, { 400, 200 }, NULL },
    { "limit overflow", "GET", "/v1/jobs?limit=99999999999999999999", NULL, NULL, { 400, -1 }, "invalid_argument" },
};

static char *gen_body(const char *spec)
{
    size_t cap = 4 << 20;
    char *b = malloc(cap);
    int n = 0;
    if (!strcmp(spec, "@DIGITS")) {
        n = sprintf(b, "{\"type\":\"t\",\"params\":{\"n\":");
        for (int i = 0; i < 10000; i++) b[n++] = (char)('1' + i % 9);
        strcpy(b + n, "}}");
    } else if (!strcmp(spec, "@DEEP10K")) {
        n = sprintf(b, "{\"type\":\"t\",\"params\":{\"d\":");
        for (int i = 0; i < 10000; i++) b[n++] = '[';
        for (int i = 0; i < 10000; i++) b[n++] = ']';
        strcpy(b + n, "}}");
    } else if (!strcmp(spec, "@ARRAY")) {
        n = sprintf(b, "{\"type\":\"t\",\"params\":{\"a\":[0");
        for (int i = 1; i < 100000; i++) { b[n++] = ','; b[n++] = '0'; }
        strcpy(b + n, "]}}");
    } else if (!strcmp(spec, "@HUGETYPE") || !strcmp(spec, "@LONGQUEUE")) {
        bool q = spec[1] == 'L';
        n = sprintf(b, q ? "{\"type\":\"t\",\"queue\":\"" : "{\"type\":\"");
        int len = q ? 129 : 10000;
        memset(b + n, 'q', (size_t)len);
        strcpy(b + n + len, "\"}");
    } else if (!strcmp(spec, "@BATCH1001")) {
        n = sprintf(b, "{\"jobs\":[");
        for (int i = 0; i < 1001; i++) n += sprintf(b + n, "%s{\"type\":\"t\"}", i ? "," : "");
        strcpy(b + n, "]}");
    } else {
        snprintf(b, cap, "%s", spec);
    }
    return b;
}

struct snap { struct resp list; int64_t ops, commits; };

static void take(struct testsrv *s, struct snap *p)
{
    CHECK_EQ(ts_req(s, "GET", "/v1/jobs?limit=1000", s->admin, NULL, &p->list), 200);
    ts_store_counters(s, &p->ops, &p->commits);
}

static bool in(const long *ok, int n, long st)
{
    for (int i = 0; i < n; i++) if (ok[i] == st) return true;
    return false;
}

/* Expands @U (the user token) and @MANYHEADERS in a raw request; *len = bytes. */
static char *raw_req(const char *spec, const char *tok, size_t spec_len, size_t *len)
{
    char *b = malloc(64 << 10);
    size_t n = 0;
    if (!strcmp(spec, "@MANYHEADERS")) {
        n = (size_t)sprintf(b, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
        for (int i = 0; i < 1000; i++) n += (size_t)sprintf(b + n, "X-H%d: v\r\n", i);
        n += (size_t)sprintf(b + n, "\r\n");
    } else {
        for (size_t i = 0; i < spec_len; i++) {
            if (spec[i] == '@' && spec[i + 1] == 'U') {
                n += (size_t)sprintf(b + n, "%s", tok);
                i++;
            } else {
                b[n++] = spec[i];
            }
        }
    }
    *len = n;
    return b;
}

TEST(t20_http_framing_catalogue)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX];
    st_enq(c.s, c.alice, id, "{\"type\":\"t\"}");
    struct snap before, after;
    take(c.s, &before);
    int n = (int)(sizeof RAW / sizeof RAW[0]), bad = 0, json_errs = 0, answered = 0;
    char *buf = malloc(1 << 16);
    for (int i = 0; i < n; i++) {
        /* requests may hold NULs: their length is the literal's */
        size_t slen = strlen(RAW[i].req);
        if (!strcmp(RAW[i].name, "NUL in the path")) slen += 1 + strlen(RAW[i].req + slen + 1);
        size_t len;
        char *req = raw_req(RAW[i].req, c.alice, slen, &len);
        long st = rel_raw(c.s->port, req, len, buf, 1 << 16, 3000);
        free(req);
        if (st) answered++;
        bool ok = in(RAW[i].ok, 3, st);
        if (st >= 400 && strstr(buf, "application/json")) json_errs++;
        if (!ok) {
            bad++;
            th_fail(__FILE__, __LINE__, "raw '%s' -> %ld: %.200s", RAW[i].name, st, buf);
        }
        /* and the server lives */
        struct resp r;
        if (!CHECK_EQ(ts_req(c.s, "GET", "/healthz", NULL, NULL, &r), 200))
            fprintf(stderr, "  ^ after raw '%s'\n", RAW[i].name);
        resp_free(&r);
    }
    free(buf);
    take(c.s, &after);
    CHECK_STR_EQ(after.list.body, before.list.body);
    CHECK_EQ(after.ops, before.ops);
    CHECK_EQ(after.commits, before.commits);
    printf("  t20 raw: %d cases, %d answered (%d with a JSON error body), %d wrong\n", n,
           answered, json_errs, bad);
    resp_free(&before.list);
    resp_free(&after.list);
    testsrv_stop(c.s);
}

TEST(t20_json_and_field_catalogue)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX];
    st_enq(c.s, c.alice, id, "{\"type\":\"t\"}");
    struct snap before, after;
    take(c.s, &before);
    int n = (int)(sizeof API / sizeof API[0]), bad = 0;
    char longkey[300];
    snprintf(longkey, sizeof longkey, "Idempotency-Key: %0256d", 0);
    for (int i = 0; i < n; i++) {
        const struct apicase *k = &API[i];
        char *body = k->body ? gen_body(k->body) : NULL;
        const char *h[2] = { k->hdr && !strcmp(k->hdr, "@LONGKEY") ? longkey : k->hdr, NULL };
        struct ts_http rq = { .method = k->method, .path = k->path, .token = c.alice,
                              .body = body, .headers = k->hdr ? h : NULL };
        struct resp r;
        long st = ts_do(c.s, &rq, &r);
        bool ok = in(k->ok, 2, st);
        if (ok && st >= 400) {
            ok &= !strncmp(r.content_type, "application/json", 16) &&
                  jstr(r.json, "error.message") != NULL;
            if (k->code && st == k->ok[0]) ok &= !strcmp(st_code(&r), k->code);
        }
        if (!ok) {
            bad++;
            th_fail(__FILE__, __LINE__, "'%s': %s %s -> %ld %.300s", k->name, k->method, k->path,
                    st, r.body);
        }
        resp_free(&r);
        free(body);
    }
    take(c.s, &after);
    CHECK_STR_EQ(after.list.body, before.list.body);   /* (some checks run as store ops) */
    printf("  t20 json: %d cases, %d wrong\n", n, bad);
    CHECK(n + (int)(sizeof RAW / sizeof RAW[0]) >= 60);
    resp_free(&before.list);
    resp_free(&after.list);
    testsrv_stop(c.s);
}

TEST_MAIN()
