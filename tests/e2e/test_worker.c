/*
 * test_worker.c - end to end: the libjobq worker runtime as a real process (the example
 * worker, examples/worker.c, built as jobq-example-worker next to the jobq CLI) against a
 * real-clock jobqd. Handlers by type, heartbeats through a handler 5x its lease, retry vs
 * discard by error class, batch claims with and without POST .../next, threads per queue,
 * and the drain on SIGTERM (finish within the grace; release what outlives it).
 */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#ifndef JOBQ_CLI_PATH
#define JOBQ_CLI_PATH "jobq"
#endif

enum { ENV_MAX = 12, PATH_CAP = 1024 };

/* A running example worker. */
struct wproc {
    pid_t pid;
    char out[PATH_CAP];        /* captured stdout */
    char err[PATH_CAP];        /* captured stderr */
};

/* Path of the example worker: the directory of the jobq CLI + jobq-example-worker. */
static const char *worker_path(void)
{
    static char path[PATH_CAP];
    const char *slash = strrchr(JOBQ_CLI_PATH, '/');
    int dir = slash ? (int)(slash - JOBQ_CLI_PATH) : 1;
    snprintf(path, sizeof path, "%.*s/jobq-example-worker", dir, slash ? JOBQ_CLI_PATH : ".");
    return path;
}

/* Starts the worker on queues (NULL-terminated) with env extras ("K=V", NULL-terminated). */
static struct wproc worker_start(struct testsrv *s, const char *token, const char *const *env,
                                 const char *const *queues)
{
    static int seq;
    struct wproc w = { 0 };
    char url[128], tok[TS_HDR_MAX + 16];
    const char *av[8] = { worker_path() };
    const char *ev[ENV_MAX + 4];
    size_t n = 0, k = 1;
    while (queues && queues[k - 1] && k < 7) {
        av[k] = queues[k - 1];
        k++;
    }
    snprintf(url, sizeof url, "JOBQ_URL=%s", s->url);
    snprintf(tok, sizeof tok, "JOBQ_TOKEN=%s", token);
    ev[n++] = url;
    ev[n++] = tok;
    ev[n++] = "PATH=/usr/bin:/bin";
    const char *asan = getenv("ASAN_OPTIONS");
    static char asan_env[512];
    if (asan) {
        snprintf(asan_env, sizeof asan_env, "ASAN_OPTIONS=%s", asan);
        ev[n++] = asan_env;
    }
    for (size_t i = 0; env && env[i] && n < ENV_MAX; i++)
        ev[n++] = env[i];
    ev[n] = NULL;
    snprintf(w.out, sizeof w.out, "%s/worker-%d.out", th_tmproot(), seq);
    snprintf(w.err, sizeof w.err, "%s/worker-%d.err", th_tmproot(), seq++);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, w.out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, w.err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = posix_spawn(&w.pid, av[0], &fa, NULL, (char *const *)av, (char *const *)ev);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        th_fail(__FILE__, __LINE__, "posix_spawn(%s): %s", av[0], strerror(rc));
        th_abort();
    }
    return w;
}

/* Whole file as a malloc'd string. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *s = calloc(1, 1 << 20);
    if (f) {
        size_t n = fread(s, 1, (1 << 20) - 1, f);
        s[n] = '\0';
        fclose(f);
    }
    return s;
}

/* SIGTERM, then waits up to timeout_ms. Returns the exit status (128 + signal, -1 on
 * timeout: then SIGKILL); *took_ms gets the time from the signal to the exit. */
static int worker_term(struct wproc *w, int64_t timeout_ms, int64_t *took_ms)
{
    int st, code = -1;
    int64_t t0 = th_now_ms();
    unsigned step = 0;
    kill(w->pid, SIGTERM);
    while (th_now_ms() - t0 < timeout_ms) {
        pid_t r = waitpid(w->pid, &st, WNOHANG);
        if (r == w->pid) {
            code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        th_nap(&step);
    }
    if (took_ms)
        *took_ms = th_now_ms() - t0;
    if (code < 0) {
        kill(w->pid, SIGKILL);
        waitpid(w->pid, &st, 0);
    }
    if (code != 0) {
        char *o = slurp(w->out), *e = slurp(w->err);
        fprintf(stderr, "worker exit %d\n--stdout--\n%s--stderr--\n%s", code, o, e);
        free(o);
        free(e);
    }
    return code;
}

/* --- job helpers --- */

/* Enqueues as admin (no active limit); returns nothing, fills id. */
static void enqueue(struct testsrv *s, const char *body, char *id)
{
    REQUIRE_EQ(ts_enqueue(s, s->admin, body, id), 201);
}

/* The job's status string compared to want. */
static bool job_is(struct testsrv *s, const char *id, const char *want)
{
    struct resp r = { 0 };
    ts_get(s, s->admin, id, &r);
    bool ok = jstr(r.json, "status") && strcmp(jstr(r.json, "status"), want) == 0;
    resp_free(&r);
    return ok;
}

/* GETs the job into r (caller frees). */
static json_t *job_get(struct testsrv *s, const char *id, struct resp *r)
{
    resp_free(r);
    REQUIRE_EQ(ts_get(s, s->admin, id, r), 200);
    return r->json;
}

/* total_count of jobs in queue with status (admin view). */
static int64_t count(struct testsrv *s, const char *queue, const char *status)
{
    struct resp r = { 0 };
    ts_reqf(s, "GET", s->admin, NULL, &r, "/v1/jobs?queue=%s&status=%s&limit=1", queue, status);
    int64_t n = jint(r.json, "total_count");
    resp_free(&r);
    return n;
}

/* Value of "key=N" in the worker's line starting with prefix; -1 when absent. */
static long long out_num(const char *out, const char *prefix, const char *key)
{
    const char *line = strstr(out, prefix);
    char pat[64];
    if (!line)
        return -1;
    snprintf(pat, sizeof pat, " %s=", key);
    const char *end = strchr(line, '\n'), *k = strstr(line, pat);
    if (!k || (end && k > end))
        return -1;
    return atoll(k + strlen(pat));
}

static const struct testsrv_opts real_clock = { .real_clock = true };

/* --- tests --- */

TEST(worker_handlers_by_type)
{
    struct testsrv *s = testsrv_start(&real_clock);
    const char *wt = ts_token(s, "w", "worker");
    char echo[TS_ID_MAX], slp[TS_ID_MAX], nope[TS_ID_MAX];
    struct resp r = { 0 };
    const char *q[] = { "q", NULL }, *env[] = { "JOBQ_WAIT_MS=200", NULL };
    enqueue(s, "{\"type\":\"echo\",\"queue\":\"q\",\"params\":{\"x\":7}}", echo);
    enqueue(s, "{\"type\":\"sleep\",\"queue\":\"q\",\"params\":{\"ms\":150}}", slp);
    enqueue(s, "{\"type\":\"nope\",\"queue\":\"q\",\"max_attempts\":1}", nope);
    struct wproc w = worker_start(s, wt, env, q);
    WAIT_FOR(job_is(s, echo, "completed") && job_is(s, slp, "completed") &&
             job_is(s, nope, "failed"), 5000);
    CHECK_EQ(jint(job_get(s, echo, &r), "result.x"), 7);
    CHECK_EQ(jint(job_get(s, slp, &r), "result.slept_ms"), 150);
    CHECK_STR_EQ(jstr(job_get(s, nope, &r), "error_code"), "no_handler");
    CHECK_EQ(worker_term(&w, 5000, NULL), 0);
    char *out = slurp(w.out);
    CHECK_EQ(out_num(out, "stats echo", "done"), 1);
    CHECK_EQ(out_num(out, "stats sleep", "done"), 1);
    CHECK(out_num(out, "stats sleep", "avg_ms") >= 150);
    free(out);
    resp_free(&r);
    testsrv_stop(s);
}

/* A handler running 5x its lease keeps the job through heartbeats: never rescued. */
TEST(worker_heartbeats_keep_a_long_job)
{
    struct testsrv *s = testsrv_start(&real_clock);
    const char *wt = ts_token(s, "w", "worker");
    char id[TS_ID_MAX];
    struct resp r = { 0 };
    const char *q[] = { "q", NULL }, *env[] = { "JOBQ_LEASE_MS=1000", "JOBQ_WAIT_MS=200", NULL };
    enqueue(s, "{\"type\":\"sleep\",\"queue\":\"q\",\"params\":{\"ms\":5000}}", id);
    struct wproc w = worker_start(s, wt, env, q);
    WAIT_FOR(job_is(s, id, "completed"), 9000);
    json_t *j = job_get(s, id, &r);
    CHECK_EQ(jint(j, "attempts"), 1);                        /* no rescue, no second run */
    CHECK(jis_null(j, "error_code"));
    CHECK_EQ(jint(j, "result.slept_ms"), 5000);
    CHECK(jint(j, "progress_percent") >= 50);                /* progress rode the heartbeats */
    CHECK_STR_EQ(jstr(j, "progress_message"), "sleeping");
    CHECK_EQ(worker_term(&w, 5000, NULL), 0);
    char *out = slurp(w.out);
    CHECK(out_num(out, "counters", "heartbeats") >= 10);     /* lease/3 over 5 s: ~15 */
    CHECK_EQ(out_num(out, "stats sleep", "lost"), 0);
    free(out);
    resp_free(&r);
    testsrv_stop(s);
}

/* Error classes: net.* retries until attempts run out, invalid.* is discarded at once,
 * flaky.* retries up to 2 attempts, an unmapped class retries (default). */
TEST(worker_retry_vs_discard_by_class)
{
    const char *const extra[] = { "--backoff-base-ms", "20", "--backoff-max-ms", "40", NULL };
    struct testsrv_opts o = { .real_clock = true, .extra = extra };
    struct testsrv *s = testsrv_start(&o);
    const char *wt = ts_token(s, "w", "worker");
    char net[TS_ID_MAX], inv[TS_ID_MAX], flaky[TS_ID_MAX], other[TS_ID_MAX];
    struct resp r = { 0 };
    const char *q[] = { "q", NULL }, *env[] = { "JOBQ_WAIT_MS=100", NULL };
    enqueue(s, "{\"type\":\"fail\",\"queue\":\"q\",\"max_attempts\":3,"
               "\"params\":{\"class\":\"net.timeout\"}}", net);
    enqueue(s, "{\"type\":\"fail\",\"queue\":\"q\",\"max_attempts\":3,"
               "\"params\":{\"class\":\"invalid.input\"}}", inv);
    enqueue(s, "{\"type\":\"fail\",\"queue\":\"q\",\"max_attempts\":5,"
               "\"params\":{\"class\":\"flaky.disk\"}}", flaky);
    enqueue(s, "{\"type\":\"fail\",\"queue\":\"q\",\"max_attempts\":2,"
               "\"params\":{\"class\":\"boom\"}}", other);
    struct wproc w = worker_start(s, wt, env, q);
    WAIT_FOR(job_is(s, net, "failed") && job_is(s, inv, "failed") &&
             job_is(s, flaky, "failed") && job_is(s, other, "failed"), 8000);
    CHECK_EQ(jint(job_get(s, net, &r), "attempts"), 3);
    CHECK_STR_EQ(jstr(r.json, "error_code"), "net.timeout");
    CHECK_EQ(jint(job_get(s, inv, &r), "attempts"), 1);
    CHECK_STR_EQ(jstr(r.json, "error_code"), "invalid.input");
    CHECK_EQ(jint(job_get(s, flaky, &r), "attempts"), 2);
    CHECK_EQ(jint(job_get(s, other, &r), "attempts"), 2);
    CHECK_EQ(worker_term(&w, 5000, NULL), 0);
    char *out = slurp(w.out);
    CHECK_EQ(out_num(out, "stats fail", "runs"), 8);
    CHECK_EQ(out_num(out, "stats fail", "retried"), 4);      /* net 2, flaky 1, other 1 */
    CHECK_EQ(out_num(out, "stats fail", "discarded"), 4);
    free(out);
    resp_free(&r);
    testsrv_stop(s);
}

/* 25 jobs with batch 10: few round trips; then the same through complete/claim only. */
static void batch_round(bool no_next)
{
    struct testsrv *s = testsrv_start(&real_clock);
    const char *wt = ts_token(s, "w", "worker");
    char body[4096] = "{\"jobs\":[", *p = body + strlen(body);
    struct resp r = { 0 };
    for (int i = 0; i < 25; i++)
        p += snprintf(p, (size_t)(body + sizeof body - p), "%s{\"type\":\"echo\",\"queue\":\"b\","
                      "\"params\":{\"i\":%d}}", i ? "," : "", i);
    snprintf(p, (size_t)(body + sizeof body - p), "]}");
    REQUIRE_EQ(ts_req(s, "POST", "/v1/jobs/batch", s->admin, body, &r), 201);
    const char *q[] = { "b", NULL };
    const char *env[] = { "JOBQ_BATCH=10", "JOBQ_WAIT_MS=200",
                          no_next ? "JOBQ_NO_NEXT=1" : "JOBQ_NO_NEXT=0", NULL };
    struct wproc w = worker_start(s, wt, env, q);
    WAIT_FOR(count(s, "b", "completed") == 25, 5000);
    CHECK_EQ(worker_term(&w, 5000, NULL), 0);
    char *out = slurp(w.out);
    CHECK_EQ(out_num(out, "counters", "claimed"), 25);
    long long batches = out_num(out, "counters", "batches");
    CHECK(batches >= 3 && batches <= 5);
    CHECK_EQ(out_num(out, "counters", "next"), no_next ? 0 : 1);
    CHECK_EQ(count(s, "b", "processing"), 0);
    free(out);
    resp_free(&r);
    testsrv_stop(s);
}

TEST(worker_batch_claims_with_next)
{
    batch_round(false);
}

TEST(worker_batch_claims_fallback)
{
    batch_round(true);
}

/* JOBQ_THREADS_QA=3 runs three qa jobs at once; qb gets the default (JOBQ_THREADS=1). */
TEST(worker_threads_per_queue)
{
    struct testsrv *s = testsrv_start(&real_clock);
    const char *wt = ts_token(s, "w", "worker");
    char id[TS_ID_MAX], body[128];
    for (int i = 0; i < 9; i++) {
        snprintf(body, sizeof body, "{\"type\":\"sleep\",\"queue\":\"%s\",\"params\":"
                 "{\"ms\":600,\"i\":%d}}", i < 6 ? "qa" : "qb", i);
        enqueue(s, body, id);
    }
    const char *q[] = { "qa", "qb", NULL };
    const char *env[] = { "JOBQ_THREADS_QA=3", "JOBQ_THREADS=1", "JOBQ_WAIT_MS=200", NULL };
    struct wproc w = worker_start(s, wt, env, q);
    int64_t max_a = 0, max_b = 0, t0 = th_now_ms();
    while (th_now_ms() - t0 < 6000 &&
           (count(s, "qa", "completed") < 6 || count(s, "qb", "completed") < 3)) {
        int64_t a = count(s, "qa", "processing"), b = count(s, "qb", "processing");
        max_a = a > max_a ? a : max_a;
        max_b = b > max_b ? b : max_b;
        usleep(20000);
    }
    CHECK_EQ(count(s, "qa", "completed"), 6);
    CHECK_EQ(count(s, "qb", "completed"), 3);
    CHECK_EQ(max_a, 3);
    CHECK_EQ(max_b, 1);
    CHECK_EQ(worker_term(&w, 5000, NULL), 0);
    testsrv_stop(s);
}

/* SIGTERM while a job runs: the handler finishes, the job completes, exit 0 in the grace. */
TEST(worker_sigterm_drains)
{
    struct testsrv *s = testsrv_start(&real_clock);
    const char *wt = ts_token(s, "w", "worker");
    char id[TS_ID_MAX];
    struct resp r = { 0 };
    const char *q[] = { "q", NULL };
    const char *env[] = { "JOBQ_GRACE_MS=5000", "JOBQ_WAIT_MS=200", "JOBQ_LEASE_MS=2000", NULL };
    enqueue(s, "{\"type\":\"sleep\",\"queue\":\"q\",\"params\":{\"ms\":1500}}", id);
    struct wproc w = worker_start(s, wt, env, q);
    WAIT_FOR(job_is(s, id, "processing"), 3000);
    int64_t took = 0;
    CHECK_EQ(worker_term(&w, 5000, &took), 0);
    CHECK(took < 5000);
    json_t *j = job_get(s, id, &r);
    CHECK_STR_EQ(jstr(j, "status"), "completed");
    CHECK_EQ(jint(j, "attempts"), 1);
    CHECK_EQ(count(s, "q", "processing"), 0);
    char *out = slurp(w.out);
    CHECK(strstr(out, "end ") != NULL);
    CHECK_EQ(out_num(out, "counters", "released"), 0);
    free(out);
    resp_free(&r);
    testsrv_stop(s);
}

/* A handler that outlives the grace: its job is released (pending again, worker_shutdown)
 * and the worker still exits 0 once the handler notices (jobq_ctx_lost). */
TEST(worker_grace_releases_leases)
{
    struct testsrv *s = testsrv_start(&real_clock);
    const char *wt = ts_token(s, "w", "worker");
    char id[TS_ID_MAX];
    struct resp r = { 0 };
    const char *q[] = { "q", NULL };
    const char *env[] = { "JOBQ_GRACE_MS=300", "JOBQ_WAIT_MS=200", NULL };
    enqueue(s, "{\"type\":\"sleep\",\"queue\":\"q\",\"params\":{\"ms\":20000}}", id);
    struct wproc w = worker_start(s, wt, env, q);
    WAIT_FOR(job_is(s, id, "processing"), 3000);
    int64_t took = 0;
    CHECK_EQ(worker_term(&w, 5000, &took), 0);
    CHECK(took < 3000);
    json_t *j = job_get(s, id, &r);
    CHECK_STR_EQ(jstr(j, "status"), "pending");
    CHECK_STR_EQ(jstr(j, "error_code"), "worker_shutdown");
    CHECK_EQ(jint(j, "attempts"), 1);
    char *out = slurp(w.out);
    CHECK_EQ(out_num(out, "counters", "released"), 1);
    CHECK_EQ(out_num(out, "stats sleep", "lost"), 1);
    free(out);
    resp_free(&r);
    testsrv_stop(s);
}

TEST_MAIN()
