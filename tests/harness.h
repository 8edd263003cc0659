/*
 * harness.h - jobq test harness: TEST() registration, CHECK macros that print both
 * sides, a per-test timeout, temp dirs, and helpers that boot the real jobqd on
 * port 0 in a temp dir and talk HTTP to it over keep-alive libcurl handles.
 *
 * Each test runs in its own forked child (own process group) so a crash, a hang
 * or a failed REQUIRE only ends that test. The parent gives every test a fresh
 * temp root (th_tmproot()) and removes it afterwards (kept if JQ_KEEP_TMP=1).
 *
 *   TEST(round_trip) {
 *       struct testsrv *s = testsrv_start(NULL);
 *       const char *u = ts_token(s, "alice", "user");
 *       char id[TS_ID_MAX];
 *       REQUIRE_EQ(ts_enqueue(s, u, "{\"type\":\"t\"}", id), 201);
 *       testsrv_stop(s);
 *   }
 *   TEST_MAIN()
 *
 * Command line of a test binary: [-l] [name-substring ...]. Env: JQ_TEST_TIMEOUT (s per
 * test), JQ_KEEP_TMP=1 (keep temp dirs), JQ_VERBOSE=1 (trace every request).
 */
#ifndef JQ_TEST_HARNESS_H
#define JQ_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

/* --- registration and runner --- */

struct th_test {
    const char *name;          /* test function name, as written in TEST(name) */
    void (*fn)(void);          /* body */
    struct th_test *next;      /* registration list, in source order */
};
void th_register(struct th_test *t);
int th_main(int argc, char **argv);

#define TEST(name)                                                          \
    static void test_##name(void);                                          \
    static struct th_test th_case_##name = { #name, test_##name, NULL };    \
    __attribute__((constructor)) static void th_reg_##name(void) {          \
        th_register(&th_case_##name);                                       \
    }                                                                       \
    static void test_##name(void)

#define TEST_MAIN() \
    int main(int argc, char **argv) { return th_main(argc, argv); }

/* --- checks: CHECK_* record a failure and go on; REQUIRE_* end the test --- */

void th_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
_Noreturn void th_abort(void);          /* kills this test's servers, exits failed */
bool th_failed(void);                   /* has the current test failed so far? */
void th_set_timeout(unsigned seconds);  /* re-arm this test's alarm() */
bool th_check_eq(const char *f, int l, const char *ea, const char *eb, int64_t a, int64_t b);
bool th_check_str(const char *f, int l, const char *ea, const char *eb, const char *a,
                  const char *b);

#define CHECK(c) \
    ((c) ? true : (th_fail(__FILE__, __LINE__, "CHECK(%s) failed", #c), false))
#define CHECK_EQ(a, b) \
    th_check_eq(__FILE__, __LINE__, #a, #b, (int64_t)(a), (int64_t)(b))
#define CHECK_STR_EQ(a, b) th_check_str(__FILE__, __LINE__, #a, #b, (a), (b))
#define REQUIRE(c)          do { if (!CHECK(c)) th_abort(); } while (0)
#define REQUIRE_EQ(a, b)    do { if (!CHECK_EQ(a, b)) th_abort(); } while (0)
#define REQUIRE_STR_EQ(a, b) do { if (!CHECK_STR_EQ(a, b)) th_abort(); } while (0)

/* --- time and polling (never fixed sleeps: poll a condition until a deadline) --- */

int64_t th_now_ms(void);                /* monotonic */
void th_nap(unsigned *step_us);         /* short growing pause between polls */
bool poll_until(bool (*cond)(void *arg), void *arg, int64_t timeout_ms);
/* Polls expr until true or timeout_ms passed; records a failure on timeout. */
#define WAIT_FOR(expr, timeout_ms)                                          \
    do {                                                                    \
        int64_t th_dl_ = th_now_ms() + (timeout_ms);                        \
        unsigned th_st_ = 0; bool th_ok_;                                   \
        while (!(th_ok_ = (expr)) && th_now_ms() < th_dl_) th_nap(&th_st_); \
        if (!th_ok_) th_fail(__FILE__, __LINE__, "timed out waiting for %s", #expr); \
    } while (0)

/* --- temp dirs --- */

const char *th_tmproot(void);           /* this test's root dir (removed after the test) */
char *th_mkdtemp(const char *prefix);   /* new dir under th_tmproot(); malloc'd path */
int th_rmrf(const char *path);          /* recursive removal; 0 or -1 */

/* --- HTTP --- */

enum { TS_ID_MAX = 64, TS_HDR_MAX = 256 };

struct resp {
    long status;                  /* HTTP status, 0 on transport error */
    char *body;                   /* NUL-terminated body (malloc'd), "" when none */
    size_t len;                   /* body bytes */
    json_t *json;                 /* parsed body or NULL */
    long statements;              /* X-Jobq-Statements, -1 when absent */
    char content_type[TS_HDR_MAX];
    char allow[TS_HDR_MAX];
    char retry_after[TS_HDR_MAX];
    char etag[TS_HDR_MAX];
    char cache_control[TS_HDR_MAX];   /* Cache-Control, "" when absent */
    char replayed[TS_HDR_MAX];        /* Idempotent-Replayed, "" when absent */
};
void resp_free(struct resp *r);   /* frees contents; safe on a zeroed resp */

/* One request; zero/NULL fields take the defaults noted. */
struct ts_http {
    const char *method;           /* "GET" when NULL */
    const char *path;             /* "/v1/jobs?..." */
    const char *token;            /* bearer token; NULL = no Authorization header */
    const char *body;             /* NULL = no body */
    size_t body_len;              /* 0 = strlen(body) */
    const char *content_type;     /* NULL = application/json with a body; "" = omit */
    const char *const *headers;   /* extra "Name: value" lines, NULL-terminated */
};

struct tsconn;                    /* one keep-alive connection (one thread at a time) */
struct testsrv;

struct tsconn *tsconn_new(struct testsrv *s);
void tsconn_free(struct tsconn *c);
long tsconn_do(struct tsconn *c, const struct ts_http *rq, struct resp *out);
long tsconn_req(struct tsconn *c, const char *method, const char *path, const char *token,
                const char *body, struct resp *out);

/* --- the server under test --- */

struct testsrv_opts {
    bool real_clock;              /* omit --fake-clock */
    const char *sync;             /* --sync full|normal|off, NULL = server default */
    const char *const *extra;     /* extra argv, NULL-terminated */
};

struct testsrv {
    pid_t pid;                    /* jobqd, or 0 when not running */
    int port;                     /* bound port read from the port file */
    char url[64];                 /* "http://127.0.0.1:PORT" */
    char *dir;                    /* temp dir holding db, port file and jobqd.log */
    char *db;                     /* database path (kept across restarts) */
    const char *admin;            /* the admin token (JOBQ_ADMIN_TOKEN) */
    struct testsrv_opts opts;     /* copy of the start options */
    struct tsconn *conn;          /* default connection used by ts_req */
    struct ts_tok *tokens;        /* tokens made by ts_token, freed at stop */
    struct testsrv *next;         /* harness list of live servers (killed on abort) */
};

#define TS_ADMIN_TOKEN "jq-test-admin-token-0123456789abcdef"

struct testsrv *testsrv_start(const struct testsrv_opts *o);  /* NULL = defaults; aborts test on failure */
void testsrv_stop(struct testsrv *s);     /* SIGTERM, CHECK clean exit, rm dir, free */
int testsrv_term(struct testsrv *s);      /* SIGTERM + waitpid; returns exit status or 128+sig */
void testsrv_kill9(struct testsrv *s);    /* SIGKILL + waitpid; keeps dir and db */
void testsrv_restart(struct testsrv *s);  /* (SIGTERM if running) then start again on the same db */
void testsrv_dump_log(struct testsrv *s); /* prints the tail of jobqd.log to stderr */

long ts_do(struct testsrv *s, const struct ts_http *rq, struct resp *out);
long ts_req(struct testsrv *s, const char *method, const char *path, const char *token,
            const char *body, struct resp *out);
/* printf-style path; body may be NULL. */
long ts_reqf(struct testsrv *s, const char *method, const char *token, const char *body,
             struct resp *out, const char *pathfmt, ...) __attribute__((format(printf, 6, 7)));

/* --- domain helpers --- */

/* Creates a token via POST /v1/tokens; the string lives until testsrv_stop. Aborts on error. */
const char *ts_token(struct testsrv *s, const char *user_id, const char *role);
/* Same, also returns the token id (for DELETE /v1/tokens/{id}); id_out >= TS_ID_MAX. */
const char *ts_token_id(struct testsrv *s, const char *user_id, const char *role, char *id_out);
/* Same with "active_limit": limit (issue 4; 0 = unlimited). Aborts on error. */
const char *ts_token_limit(struct testsrv *s, const char *user_id, const char *role, long limit);
/* POST /v1/jobs; returns status; on 201 copies the job id into id (TS_ID_MAX). */
long ts_enqueue(struct testsrv *s, const char *token, const char *body_json, char *id);
/* POST /v1/queues/{queue}/claim with body_json (NULL = {"worker_id":"w1"}). */
long ts_claim(struct testsrv *s, const char *token, const char *queue, const char *body_json,
              struct resp *out);
/* Claims one job; returns 1 and fills id/lease (TS_ID_MAX each) if one was claimed, else 0. */
int ts_claim1(struct testsrv *s, const char *token, const char *queue, char *id, char *lease);
/* POST /v1/admin/clock {advance_ms}; returns status. */
long ts_advance(struct testsrv *s, int64_t ms);
/* GET /v1/jobs/{id}; returns status; out holds the job. */
long ts_get(struct testsrv *s, const char *token, const char *id, struct resp *out);
/* GET /v1/admin/store counters; returns 0 on success. */
int ts_store_counters(struct testsrv *s, int64_t *ops, int64_t *commits);

/* --- JSON helpers (NULL-safe) --- */

json_t *jpath(json_t *root, const char *dotted);   /* "error.code", "jobs.0.id" */
const char *jstr(json_t *root, const char *dotted);/* string or NULL */
int64_t jint(json_t *root, const char *dotted);    /* integer, or INT64_MIN */
bool jis_null(json_t *root, const char *dotted);   /* present and JSON null */
/* RFC 3339 → ms since epoch; INT64_MIN if unparsable. */
int64_t ts_parse_time(const char *rfc3339);

#endif
