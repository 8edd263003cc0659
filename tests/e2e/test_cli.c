/*
 * test_cli.c - end to end: a real jobqd (port 0, temp dir, via the harness) driven only
 * through the `jobq` CLI binary, as a script would: admin makes tokens, a user enqueues, a
 * worker claims and completes, the user reads the result back. Also pins the exit codes
 * (1 server error, 2 usage, 3 cannot connect) and the --json passthrough.
 *
 * The CLI runs with posix_spawn (JOBQ_CLI_PATH), stdout/stderr captured in files of the
 * test's temp root, and an environment without any inherited JOBQ_URL / JOBQ_TOKEN: the
 * helpers are in cli_run.h, shared with test_cli_more.c.
 */
#include <pthread.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cli_run.h"

/* Full producer/worker round trip through the CLI only. */
TEST(cli_round_trip)
{
    struct testsrv *s = testsrv_start(&real_clock);
    char user[TS_HDR_MAX], worker[TS_HDR_MAX], id[TS_ID_MAX], lease[TS_HDR_MAX];
    char env_url[128], env_tok[TS_HDR_MAX + 16];
    struct run r = { 0 };

    /* admin: token create, human form prints the secret alone on line 1 */
    cli(&r, NULL, "--url", s->url, "--token", s->admin, "token", "create", "--user", "alice",
        "--role", "user", NULL);
    CHECK_RUN(r, 0);
    first_line(r.out, user, sizeof user);
    CHECK(strlen(user) > 0 && !strchr(user, ' '));
    cli_token(s, "w", "worker", worker, NULL);

    /* user: enqueue with JOBQ_URL / JOBQ_TOKEN from the environment */
    snprintf(env_url, sizeof env_url, "JOBQ_URL=%s", s->url);
    snprintf(env_tok, sizeof env_tok, "JOBQ_TOKEN=%s", user);
    const char *uenv[] = { env_url, env_tok, NULL };
    cli(&r, uenv, "enqueue", "report.build", "--queue", "q1", "--params",
        "{\"month\":\"2026-10\"}", "--priority", "5", NULL);
    CHECK_RUN(r, 0);
    first_line(r.out, id, sizeof id);
    REQUIRE_EQ(strlen(id), 26);

    cli(&r, uenv, "show", id, "--json", NULL);
    CHECK_RUN(r, 0);
    json_t *j = json_loads(r.out, 0, NULL);
    CHECK_STR_EQ(jstr(j, "status"), "pending");
    CHECK_STR_EQ(jstr(j, "params.month"), "2026-10");
    CHECK_EQ(jint(j, "priority"), 5);
    json_decref(j);

    /* worker: claim prints "ID LEASE TYPE PARAMS" */
    cli(&r, NULL, "--url", s->url, "--token", worker, "claim", "q1", "--worker", "w1",
        "--lease-ms", "60000", NULL);
    CHECK_RUN(r, 0);
    char cid[TS_ID_MAX] = "", ctype[64] = "";
    REQUIRE_EQ(sscanf(r.out, "%63s %255s %63s", cid, lease, ctype), 3);
    CHECK_STR_EQ(cid, id);
    CHECK_STR_EQ(ctype, "report.build");

    cli(&r, NULL, "--url", s->url, "--token", worker, "heartbeat", id, "--lease", lease,
        "--progress", "50", "--message", "half way", NULL);
    CHECK_RUN(r, 0);
    cli(&r, NULL, "--url", s->url, "--token", worker, "log", id, "rendering pages", "--lease",
        lease, "--level", "info", "--metadata", "{\"pages\":3}", NULL);
    CHECK_RUN(r, 0);
    cli(&r, NULL, "--url", s->url, "--token", worker, "complete", id, "--lease", lease,
        "--result", "{\"url\":\"s3://r/2026-10.pdf\",\"pages\":3}", NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "completed") != NULL);

    /* the lease is spent: a second complete is a server error */
    cli(&r, NULL, "--url", s->url, "--token", worker, "complete", id, "--lease", lease, NULL);
    CHECK_RUN(r, 1);
    CHECK(strncmp(r.err, "error: lease_lost:", 18) == 0 ||
          strncmp(r.err, "error: invalid_state:", 21) == 0);

    /* user reads the result back */
    cli(&r, uenv, "show", id, "--json", NULL);
    CHECK_RUN(r, 0);
    j = json_loads(r.out, 0, NULL);
    CHECK_STR_EQ(jstr(j, "status"), "completed");
    CHECK_STR_EQ(jstr(j, "result.url"), "s3://r/2026-10.pdf");
    CHECK_EQ(jint(j, "result.pages"), 3);
    CHECK_EQ(jint(j, "attempts"), 1);
    CHECK_STR_EQ(jstr(j, "worker_id"), "w1");
    json_decref(j);

    cli(&r, uenv, "show", id, NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "completed") && strstr(r.out, "s3://r/2026-10.pdf"));

    cli(&r, uenv, "list", NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, id) != NULL);
    CHECK(strstr(r.out, "report.build") != NULL);

    cli(&r, uenv, "list", "--status", "completed", "--queue", "q1", "--json", NULL);
    CHECK_RUN(r, 0);
    j = json_loads(r.out, 0, NULL);
    CHECK_EQ(jint(j, "total_count"), 1);
    CHECK_STR_EQ(jstr(j, "jobs.0.id"), id);
    json_decref(j);

    cli(&r, uenv, "logs", id, NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "rendering pages") != NULL);

    /* finished jobs can be deleted; then they are gone */
    cli(&r, uenv, "delete", id, NULL);
    CHECK_RUN(r, 0);
    cli(&r, uenv, "show", id, NULL);
    CHECK_RUN(r, 1);
    CHECK(strncmp(r.err, "error: not_found:", 17) == 0);

    run_free(&r);
    testsrv_stop(s);
}

/* fail --no-retry, retry, cancel through the CLI. */
TEST(cli_fail_retry_cancel)
{
    struct testsrv *s = testsrv_start(&real_clock);
    char user[TS_HDR_MAX], worker[TS_HDR_MAX], id[TS_ID_MAX], cid[TS_ID_MAX];
    char lease[TS_HDR_MAX];
    struct run r = { 0 };
    cli_token(s, "bob", "user", user, NULL);
    cli_token(s, "w", "worker", worker, NULL);

    cli(&r, NULL, "--url", s->url, "--token", user, "enqueue", "t", "--queue", "q2", NULL);
    CHECK_RUN(r, 0);
    first_line(r.out, id, sizeof id);

    cli(&r, NULL, "--url", s->url, "--token", worker, "claim", "q2", NULL);
    CHECK_RUN(r, 0);
    REQUIRE_EQ(sscanf(r.out, "%63s %255s", cid, lease), 2);
    cli(&r, NULL, "--url", s->url, "--token", worker, "fail", id, "--lease", lease, "--error",
        "disk on fire", "--code", "E_FIRE", "--no-retry", "--json", NULL);
    CHECK_RUN(r, 0);
    json_t *j = json_loads(r.out, 0, NULL);
    CHECK_STR_EQ(jstr(j, "status"), "failed");
    CHECK_STR_EQ(jstr(j, "error_code"), "E_FIRE");
    json_decref(j);

    cli(&r, NULL, "--url", s->url, "--token", user, "retry", id, NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "pending") != NULL);
    cli(&r, NULL, "--url", s->url, "--token", user, "cancel", id, NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "cancelled") != NULL);
    cli(&r, NULL, "--url", s->url, "--token", user, "cancel", id, NULL);
    CHECK_RUN(r, 1);
    CHECK(strncmp(r.err, "error: invalid_state:", 21) == 0);

    /* nothing left to claim: exit 0, empty stdout */
    cli(&r, NULL, "--url", s->url, "--token", worker, "claim", "q2", NULL);
    CHECK_RUN(r, 0);
    CHECK_STR_EQ(r.out, "");

    run_free(&r);
    testsrv_stop(s);
}

/* Bad, revoked and forbidden tokens are server errors: exit 1 with the server's code. */
TEST(cli_auth_errors)
{
    struct testsrv *s = testsrv_start(&real_clock);
    char user[TS_HDR_MAX], tid[TS_ID_MAX];
    struct run r = { 0 };

    cli(&r, NULL, "--url", s->url, "--token", "not-a-token", "list", NULL);
    CHECK_RUN(r, 1);
    CHECK(strncmp(r.err, "error: unauthorized:", 20) == 0);

    cli(&r, NULL, "--url", s->url, "list", NULL);           /* no token at all */
    CHECK_RUN(r, 1);
    CHECK(strncmp(r.err, "error: unauthorized:", 20) == 0);

    cli_token(s, "carol", "user", user, tid);
    cli(&r, NULL, "--url", s->url, "--token", user, "token", "create", "--user", "x", "--role",
        "admin", NULL);
    CHECK_RUN(r, 1);
    CHECK(strncmp(r.err, "error: forbidden:", 17) == 0);

    cli(&r, NULL, "--url", s->url, "--token", user, "list", NULL);
    CHECK_RUN(r, 0);
    cli(&r, NULL, "--url", s->url, "--token", s->admin, "token", "revoke", tid, NULL);
    CHECK_RUN(r, 0);
    cli(&r, NULL, "--url", s->url, "--token", user, "list", NULL);
    CHECK_RUN(r, 1);
    CHECK(strncmp(r.err, "error: unauthorized:", 20) == 0);

    /* server-side validation names the field */
    cli(&r, NULL, "--url", s->url, "--token", s->admin, "enqueue", "t", "--priority", "5000",
        NULL);
    CHECK_RUN(r, 1);
    CHECK(strncmp(r.err, "error: invalid_argument:", 24) == 0);
    CHECK(strstr(r.err, "priority") != NULL);

    run_free(&r);
    testsrv_stop(s);
}

/* A port nobody listens on: bind port 0, note it, close it. */
static int dead_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    REQUIRE(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    REQUIRE(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

TEST(cli_no_server_exits_3)
{
    char url[64], env_url[96];
    struct run r = { 0 };
    snprintf(url, sizeof url, "http://127.0.0.1:%d", dead_port());
    cli(&r, NULL, "--url", url, "--token", "x", "list", NULL);
    CHECK_RUN(r, 3);
    CHECK(strncmp(r.err, "error: connect_failed:", 22) == 0);

    snprintf(env_url, sizeof env_url, "JOBQ_URL=%s", url);
    const char *env[] = { env_url, NULL };
    cli(&r, env, "enqueue", "t", NULL);
    CHECK_RUN(r, 3);
    run_free(&r);
}

TEST(cli_usage_exits_2)
{
    struct run r = { 0 };
    const char *const bad[][6] = {
        { NULL },                                   /* no verb */
        { "frobnicate", NULL },                     /* unknown verb */
        { "enqueue", NULL },                        /* missing TYPE */
        { "enqueue", "t", "--nope", NULL },         /* unknown option */
        { "enqueue", "t", "--priority", "x", NULL },/* not an integer */
        { "enqueue", "t", "--params", "{", NULL },  /* not JSON (caught client-side) */
        { "show", "a", "b", NULL },                 /* extra positional */
        { "list", "--limit", NULL },                /* option without value */
        { "token", NULL },                          /* group without sub-verb */
        { "token", "create", "--user", "u", NULL }, /* required --role missing */
        { "fail", "ID", "--lease", "L", NULL },     /* required --error missing */
        { "--bogus", "list", NULL },                /* unknown global option */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = cli_runv(NULL, bad[i]);
        if (!CHECK_EQ(r.code, 2))
            fprintf(stderr, "  case %zu (%s): stderr %s\n", i, bad[i][0] ? bad[i][0] : "-",
                    r.err);
        run_free(&r);
    }

    cli(&r, NULL, "--help", NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "enqueue") && strstr(r.out, "token create"));
    const char *verbs[] = { "enqueue", "show", "list", "cancel", "retry", "delete", "logs",
                            "stats", "claim", "heartbeat", "complete", "fail", "log" };
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        cli(&r, NULL, verbs[i], "--help", NULL);
        CHECK_RUN(r, 0);
        CHECK(strstr(r.out, "usage: jobq") != NULL);
    }
    cli(&r, NULL, "token", "create", "--help", NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "--role") != NULL);
    cli(&r, NULL, "token", "--help", NULL);
    CHECK_RUN(r, 0);
    run_free(&r);
}

/* Lines of s. */
static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* enqueue --file: 2500 JSONL lines in batches of 1000; list --all follows the cursors;
 * a bad line is named; cancel --filter; a missing file is exit 4. */
TEST(cli_bulk_jsonl)
{
    struct testsrv *s = testsrv_start(&real_clock);
    char user[TS_HDR_MAX], path[1024], bad[1024];
    struct run r = { 0 };
    cli(&r, NULL, "--url", s->url, "--token", s->admin, "token", "create", "--user", "bulk",
        "--role", "user", "--active-limit", "0", NULL);
    CHECK_RUN(r, 0);
    first_line(r.out, user, sizeof user);

    snprintf(path, sizeof path, "%s/jobs.jsonl", th_tmproot());
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    for (int i = 0; i < 2500; i++)
        fprintf(f, "{\"type\":\"bulk.t\",\"queue\":\"bq\",\"params\":{\"i\":%d}}\n%s", i,
                i == 10 ? "\n" : "");                       /* a blank line is skipped */
    fclose(f);
    cli(&r, NULL, "--url", s->url, "--token", user, "enqueue", "--file", path, NULL);
    CHECK_RUN(r, 0);
    CHECK_EQ(count_lines(r.out), 2500);                      /* one id per line */
    CHECK(strstr(r.err, "enqueued 2500 jobs") != NULL);
    CHECK(strchr(r.err, '[') == NULL);                       /* no progress bar off a TTY */

    cli(&r, NULL, "--url", s->url, "--token", user, "list", "--queue", "bq", "--json", NULL);
    CHECK_RUN(r, 0);
    json_t *j = json_loads(r.out, 0, NULL);
    CHECK_EQ(jint(j, "total_count"), 2500);
    CHECK(jstr(j, "next_cursor") != NULL);
    json_decref(j);
    cli(&r, NULL, "--url", s->url, "--token", user, "list", "--queue", "bq", "--limit", "1000",
        "--all", NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "(2500 jobs)") != NULL);
    CHECK_EQ(count_lines(r.out), 2500 + 2);                  /* header + rows + count */

    snprintf(bad, sizeof bad, "%s/bad.jsonl", th_tmproot());
    f = fopen(bad, "w");
    REQUIRE(f != NULL);
    fprintf(f, "{\"type\":\"t\"}\n\n{\"type\":\"t\",\"priority\":5000}\n");
    fclose(f);
    cli(&r, NULL, "--url", s->url, "--token", user, "enqueue", "--file", bad, NULL);
    CHECK_RUN(r, 1);
    CHECK(strstr(r.err, "bad.jsonl:3:") != NULL);            /* the file line, not the index */
    CHECK(strstr(r.err, "priority") != NULL);

    cli(&r, NULL, "--url", s->url, "--token", user, "enqueue", "--file", "/nonexistent/x", NULL);
    CHECK_RUN(r, 4);
    cli(&r, NULL, "--url", s->url, "--token", user, "enqueue", "t", "--file", path, NULL);
    CHECK_RUN(r, 2);

    cli(&r, NULL, "--url", s->url, "--token", user, "cancel", "--filter", "--queue", "bq", NULL);
    CHECK_RUN(r, 0);
    CHECK_STR_EQ(r.out, "cancelled 2500\n");
    cli(&r, NULL, "--url", s->url, "--token", user, "stats", "--json", NULL);
    CHECK_RUN(r, 0);
    j = json_loads(r.out, 0, NULL);
    CHECK_EQ(jint(j, "counts.cancelled"), 2500);
    json_decref(j);
    run_free(&r);
    testsrv_stop(s);
}

/* enqueue options: unique_key answers the existing job; Idempotency-Key replays. Bulk
 * cancel by ids counts only what it cancelled. */
TEST(cli_enqueue_options_and_cancel_ids)
{
    struct testsrv *s = testsrv_start(&real_clock);
    char a[TS_ID_MAX], b[TS_ID_MAX], c[TS_ID_MAX];
    struct run r = { 0 };
    cli(&r, NULL, "--url", s->url, "--token", s->admin, "enqueue", "t", "--unique-key", "k1",
        NULL);
    CHECK_RUN(r, 0);
    first_line(r.out, a, sizeof a);
    cli(&r, NULL, "--url", s->url, "--token", s->admin, "enqueue", "t", "--unique-key", "k1",
        "--params", "{\"other\":1}", "--json", NULL);
    CHECK_RUN(r, 0);
    json_t *j = json_loads(r.out, 0, NULL);
    CHECK_STR_EQ(jstr(j, "id"), a);
    CHECK(json_is_true(jpath(j, "deduplicated")));
    json_decref(j);
    cli(&r, NULL, "--url", s->url, "--token", s->admin, "enqueue", "t", "--no-dedup",
        "--idempotency-key", "idem-1", NULL);
    CHECK_RUN(r, 0);
    first_line(r.out, b, sizeof b);
    cli(&r, NULL, "--url", s->url, "--token", s->admin, "enqueue", "t", "--no-dedup",
        "--idempotency-key", "idem-1", NULL);
    CHECK_RUN(r, 0);
    first_line(r.out, c, sizeof c);
    CHECK_STR_EQ(b, c);                                      /* replayed, not a new job */
    CHECK(strcmp(a, b) != 0);

    cli(&r, NULL, "--url", s->url, "--token", s->admin, "cancel", a, b, NULL);
    CHECK_RUN(r, 0);
    CHECK_STR_EQ(r.out, "cancelled 2 of 2\n");
    cli(&r, NULL, "--url", s->url, "--token", s->admin, "cancel", a, b, NULL);
    CHECK_RUN(r, 0);
    CHECK_STR_EQ(r.out, "cancelled 0 of 2\n");
    cli(&r, NULL, "--url", s->url, "--token", s->admin, "cancel", "--filter", a, NULL);
    CHECK_RUN(r, 2);
    run_free(&r);
    testsrv_stop(s);
}

/* `jobq wait` in a thread while the test plays the worker. */
struct wait_run { const char *url, *token, *id; struct run r; };

static void *wait_thread(void *arg)
{
    struct wait_run *w = arg;
    const char *args[] = {"--url", w->url, "--token", w->token, "wait", w->id, "--timeout",
                          "20", NULL};
    w->r = cli_runv(NULL, args);
    return NULL;
}

TEST(cli_wait_follows_events_until_the_end)
{
    struct testsrv *s = testsrv_start(&real_clock);
    const char *u = ts_token(s, "waiter", "user"), *wk = ts_token(s, "wk", "worker");
    char id[TS_ID_MAX], got[TS_ID_MAX], lease[TS_ID_MAX], body[160];
    REQUIRE_EQ(ts_enqueue(s, u, "{\"type\":\"w\",\"queue\":\"cw\"}", id), 201);
    struct wait_run w = {s->url, u, id, {0}};
    pthread_t t;
    pthread_create(&t, NULL, wait_thread, &w);
    REQUIRE(ts_claim1(s, wk, "cw", got, lease));
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"progress_percent\":60}", lease);
    struct resp r;
    CHECK_EQ(ts_reqf(s, "POST", wk, body, &r, "/v1/jobs/%s/heartbeat", id), 200);
    resp_free(&r);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"n\":7}}", lease);
    CHECK_EQ(ts_reqf(s, "POST", wk, body, &r, "/v1/jobs/%s/complete", id), 200);
    resp_free(&r);
    pthread_join(t, NULL);
    CHECK_RUN(w.r, 0);                                  /* completed: exit 0 */
    CHECK(strstr(w.r.out, "completed") != NULL);
    run_free(&w.r);
    struct run x = {0};                                  /* failed job: exit 5 */
    REQUIRE_EQ(ts_enqueue(s, u, "{\"type\":\"w\",\"queue\":\"cw2\",\"params\":{\"n\":2}}", id), 201);
    REQUIRE(ts_claim1(s, wk, "cw2", got, lease));
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"error_message\":\"no\","
             "\"retryable\":false}", lease);
    CHECK_EQ(ts_reqf(s, "POST", wk, body, &r, "/v1/jobs/%s/fail", id), 200);
    resp_free(&r);
    cli(&x, NULL, "--url", s->url, "--token", u, "wait", id, NULL);
    CHECK_RUN(x, 5);
    REQUIRE_EQ(ts_enqueue(s, u, "{\"type\":\"w\",\"queue\":\"cw3\",\"params\":{\"n\":3}}", id), 201);
    cli(&x, NULL, "--url", s->url, "--token", u, "wait", id, "--timeout", "1", NULL);
    CHECK_RUN(x, 6);                                     /* never claimed: timeout */
    run_free(&x);
    testsrv_stop(s);
}

TEST_MAIN()
