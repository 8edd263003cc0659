/*
 * test_cli_more.c - end to end, like test_cli.c (a real jobqd, the `jobq` binary run as a
 * script would; helpers in cli_run.h), for the verbs of the later API: log search (and
 * that it never shows another user's lines), list by params / result containment and by
 * log text, cron schedules, workflows (create from a steps file, the tree of `show`), and
 * enqueue with dependencies and with a debounced replace.
 */
#include "cli_run.h"

/* One claimed job. */
struct claimed {
    char id[TS_ID_MAX];
    char lease[TS_HDR_MAX];
};

/* Claims one job of queue through the CLI (as worker token wk). */
static bool claim(struct testsrv *s, const char *wk, const char *queue, struct claimed *c)
{
    struct run r = { 0 };
    char type[64];
    cli(&r, NULL, "--url", s->url, "--token", wk, "claim", queue, "--worker", "w1", "--lease-ms",
        "60000", NULL);
    CHECK_RUN(r, 0);
    bool ok = sscanf(r.out, "%63s %255s %63s", c->id, c->lease, type) == 3;
    run_free(&r);
    return ok;
}

static void complete(struct testsrv *s, const char *wk, const struct claimed *c,
                     const char *result)
{
    struct run r = { 0 };
    cli(&r, NULL, "--url", s->url, "--token", wk, "complete", c->id, "--lease", c->lease,
        "--result", result, NULL);
    CHECK_RUN(r, 0);
    run_free(&r);
}

static void fail_final(struct testsrv *s, const char *wk, const struct claimed *c)
{
    struct run r = { 0 };
    cli(&r, NULL, "--url", s->url, "--token", wk, "fail", c->id, "--lease", c->lease, "--error",
        "broken", "--no-retry", NULL);
    CHECK_RUN(r, 0);
    run_free(&r);
}

static void log_line(struct testsrv *s, const char *wk, const struct claimed *c,
                     const char *msg, const char *meta)
{
    struct run r = { 0 };
    cli(&r, NULL, "--url", s->url, "--token", wk, "log", c->id, msg, "--lease", c->lease,
        "--metadata", meta, NULL);
    CHECK_RUN(r, 0);
    run_free(&r);
}

/* Enqueues through the CLI as token tok; the id into id. */
__attribute__((sentinel)) static void enqueue(struct testsrv *s, const char *tok, char *id, ...)
{
    const char *args[ARGS_MAX + 1] = { "--url", s->url, "--token", tok, "enqueue" };
    size_t n = 5;
    va_list ap;
    va_start(ap, id);
    while (n < ARGS_MAX && (args[n] = va_arg(ap, const char *)))
        n++;
    va_end(ap);
    args[n] = NULL;
    struct run r = cli_runv(NULL, args);
    CHECK_RUN(r, 0);
    first_line(r.out, id, TS_ID_MAX);
    CHECK_EQ(strlen(id), 26);
    run_free(&r);
}

static json_t *parse(const struct run *r)
{
    json_t *j = json_loads(r->out, 0, NULL);
    if (!CHECK(j != NULL))
        explain(r);
    return j;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* search: finds the caller's lines only, ranks with snippets, filters, pages, highlights
 * on a terminal, and never lets log text drive the terminal. list --log-q. */
TEST(cli_search_logs)
{
    struct testsrv *s = testsrv_start(&real_clock);
    char alice[TS_HDR_MAX], bob[TS_HDR_MAX], wk[TS_HDR_MAX], a1[TS_ID_MAX], b1[TS_ID_MAX];
    struct claimed ca, cb;
    struct run r = { 0 };
    cli_token(s, "alice", "user", alice, NULL);
    cli_token(s, "bob", "user", bob, NULL);
    cli_token(s, "wk", "worker", wk, NULL);

    enqueue(s, alice, a1, "report.build", "--queue", "sq", NULL);
    REQUIRE(claim(s, wk, "sq", &ca));
    REQUIRE_STR_EQ(ca.id, a1);
    log_line(s, wk, &ca, "rendering the zebra chart for acme", "{\"pages\":3}");
    log_line(s, wk, &ca, "zebra pages done", "{\"pages\":4}");
    log_line(s, wk, &ca, "colour \033[31mred\033[0m text\nsecond line", "{}");
    enqueue(s, bob, b1, "report.build", "--queue", "sq", NULL);
    REQUIRE(claim(s, wk, "sq", &cb));
    log_line(s, wk, &cb, "bob has a secret zebra too", "{}");

    /* alice sees her two lines, not bob's */
    cli(&r, NULL, "--url", s->url, "--token", alice, "search", "zebra", "--json", NULL);
    CHECK_RUN(r, 0);
    json_t *j = parse(&r);
    CHECK_EQ(json_array_size(jpath(j, "logs")), 2);
    CHECK_STR_EQ(jstr(j, "logs.0.job_id"), a1);
    CHECK_STR_EQ(jstr(j, "logs.1.job_id"), a1);
    CHECK_STR_EQ(jstr(j, "logs.0.type"), "report.build");
    CHECK(jstr(j, "logs.0.snippet") && strstr(jstr(j, "logs.0.snippet"), "\x02zebra\x03"));
    json_decref(j);
    cli(&r, NULL, "--url", s->url, "--token", alice, "search", "zebra", NULL);
    CHECK_RUN(r, 0);
    CHECK_EQ(count_of(r.out, a1), 2);
    CHECK(strstr(r.out, b1) == NULL && strstr(r.out, "secret") == NULL);
    CHECK(strstr(r.out, "zebra chart") != NULL);          /* not a TTY: markers dropped */
    CHECK(strchr(r.out, '\x02') == NULL && strchr(r.out, '\033') == NULL);
    CHECK(strstr(r.out, "(2 hits)") != NULL);

    /* bob: only his own line; nothing for words only alice logged */
    cli(&r, NULL, "--url", s->url, "--token", bob, "search", "zebra", "--json", NULL);
    CHECK_RUN(r, 0);
    j = parse(&r);
    CHECK_EQ(json_array_size(jpath(j, "logs")), 1);
    CHECK_STR_EQ(jstr(j, "logs.0.job_id"), b1);
    json_decref(j);
    cli(&r, NULL, "--url", s->url, "--token", bob, "search", "acme", NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, a1) == NULL);
    CHECK(strstr(r.out, "(0 hits)") != NULL);

    /* filters: metadata containment, level, job, type, since (an age) */
    cli(&r, NULL, "--url", s->url, "--token", alice, "search", "zebra", "--metadata",
        "{\"pages\":4}", "--json", NULL);
    CHECK_RUN(r, 0);
    j = parse(&r);
    CHECK_EQ(json_array_size(jpath(j, "logs")), 1);
    CHECK_STR_EQ(jstr(j, "logs.0.message"), "zebra pages done");
    json_decref(j);
    cli(&r, NULL, "--url", s->url, "--token", alice, "search", "zebra", "--level", "error",
        "--json", NULL);
    CHECK_RUN(r, 0);
    j = parse(&r);
    CHECK_EQ(json_array_size(jpath(j, "logs")), 0);
    json_decref(j);
    cli(&r, NULL, "--url", s->url, "--token", alice, "search", "zebra", "--job", a1, "--type",
        "report.build", "--since", "1h", "--json", NULL);
    CHECK_RUN(r, 0);
    j = parse(&r);
    CHECK_EQ(json_array_size(jpath(j, "logs")), 2);
    json_decref(j);

    /* paging: one hit per page, --all follows the cursor */
    cli(&r, NULL, "--url", s->url, "--token", alice, "search", "zebra", "--limit", "1", NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "next page: --cursor ") != NULL);
    cli(&r, NULL, "--url", s->url, "--token", alice, "search", "zebra", "--limit", "1", "--all",
        NULL);
    CHECK_RUN(r, 0);
    CHECK_EQ(count_of(r.out, a1), 2);
    CHECK(strstr(r.out, "(2 hits)") != NULL);

    /* a terminal: matches in bold */
    cli_tty(&r, NULL, "--url", s->url, "--token", alice, "search", "chart", NULL);
    CHECK_RUN(r, 0);
    if (!CHECK(strstr(r.out, "the zebra \033[1mchart\033[22m for acme") != NULL))
        explain(&r);
    /* log text with escapes and newlines is shown escaped, even on a terminal */
    cli_tty(&r, NULL, "--url", s->url, "--token", alice, "search", "colour", NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "\033[31m") == NULL);
    if (!CHECK(strstr(r.out, "\\x1b[31mred\\x1b[0m text\\nsecond line") != NULL))
        explain(&r);

    /* jobs by log text */
    cli(&r, NULL, "--url", s->url, "--token", alice, "list", "--log-q", "zebra", "--json", NULL);
    CHECK_RUN(r, 0);
    j = parse(&r);
    CHECK_EQ(jint(j, "total_count"), 1);
    CHECK_STR_EQ(jstr(j, "jobs.0.id"), a1);
    json_decref(j);

    /* errors: a malformed query is the server's 400 on q; bad JSON and ages are usage */
    cli(&r, NULL, "--url", s->url, "--token", alice, "search", "\"unbalanced", NULL);
    CHECK_RUN(r, 1);
    CHECK(strncmp(r.err, "error: invalid_argument:", 24) == 0 && strstr(r.err, "field: q"));
    cli(&r, NULL, "--url", s->url, "--token", alice, "search", "x", "--metadata", "{", NULL);
    CHECK_RUN(r, 2);
    cli(&r, NULL, "--url", s->url, "--token", alice, "search", "x", "--since", "5y", NULL);
    CHECK_RUN(r, 2);
    cli(&r, NULL, "--url", s->url, "--token", alice, "search", NULL);
    CHECK_RUN(r, 2);
    run_free(&r);
    testsrv_stop(s);
}

/* list --params / --result: JSON containment, combinable with the other filters. */
TEST(cli_list_containment)
{
    struct testsrv *s = testsrv_start(&real_clock);
    char u[TS_HDR_MAX], wk[TS_HDR_MAX], j1[TS_ID_MAX], j2[TS_ID_MAX], j3[TS_ID_MAX];
    struct claimed c;
    struct run r = { 0 };
    cli_token(s, "carol", "user", u, NULL);
    cli_token(s, "wk", "worker", wk, NULL);
    enqueue(s, u, j1, "inv", "--queue", "lq", "--params", "{\"customer\":\"acme\",\"n\":1}",
            NULL);
    enqueue(s, u, j2, "inv", "--queue", "lq2", "--params",
            "{\"customer\":\"globex\",\"n\":2}", NULL);
    enqueue(s, u, j3, "inv", "--queue", "lq3", "--params",
            "{\"customer\":\"acme\",\"n\":3,\"tags\":[\"a\",\"b\"]}", NULL);

    cli(&r, NULL, "--url", s->url, "--token", u, "list", "--params", "{\"customer\":\"acme\"}",
        "--json", NULL);
    CHECK_RUN(r, 0);
    json_t *j = parse(&r);
    CHECK_EQ(jint(j, "total_count"), 2);
    CHECK_STR_EQ(jstr(j, "jobs.0.id"), j3);                   /* newest first */
    CHECK_STR_EQ(jstr(j, "jobs.1.id"), j1);
    json_decref(j);
    cli(&r, NULL, "--url", s->url, "--token", u, "list", "--params", "{\"tags\":[\"b\"]}", NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, j3) && !strstr(r.out, j1) && !strstr(r.out, j2));
    cli(&r, NULL, "--url", s->url, "--token", u, "list", "--params", "{\"customer\":\"acme\"}",
        "--queue", "lq", NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, j1) && !strstr(r.out, j3));

    REQUIRE(claim(s, wk, "lq2", &c));
    complete(s, wk, &c, "{\"ok\":true,\"total\":12.0}");
    cli(&r, NULL, "--url", s->url, "--token", u, "list", "--result", "{\"total\":12}", "--json",
        NULL);
    CHECK_RUN(r, 0);
    j = parse(&r);
    CHECK_EQ(jint(j, "total_count"), 1);
    CHECK_STR_EQ(jstr(j, "jobs.0.id"), j2);
    json_decref(j);

    cli(&r, NULL, "--url", s->url, "--token", u, "list", "--params", "{", NULL);
    CHECK_RUN(r, 2);                                          /* not JSON: refused unsent */
    cli(&r, NULL, "--url", s->url, "--token", u, "list", "--params", "[1]", NULL);
    CHECK_RUN(r, 2);
    cli(&r, NULL, "--url", s->url, "--token", u, "list", "--params", "{}", NULL);
    CHECK_RUN(r, 1);                                          /* no leaf: the server's 400 */
    CHECK(strstr(r.err, "invalid_argument") && strstr(r.err, "params"));
    run_free(&r);
    testsrv_stop(s);
}

/* schedules create / list / show / pause / resume / delete, and their errors. */
TEST(cli_schedules)
{
    struct testsrv *s = testsrv_start(&real_clock);
    char u[TS_HDR_MAX], other[TS_HDR_MAX], id[TS_ID_MAX];
    struct run r = { 0 };
    cli_token(s, "dave", "user", u, NULL);
    cli_token(s, "erin", "user", other, NULL);

    cli(&r, NULL, "--url", s->url, "--token", u, "schedules", NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "(0 schedules)") != NULL);

    cli(&r, NULL, "--url", s->url, "--token", u, "schedules", "create", "nightly", "--cron",
        "30 2 * * *", "--type", "report.nightly", "--timezone", "Europe/Berlin", "--params",
        "{\"scope\":\"all\"}", "--queue", "cron", "--misfire", "skip", "--catch-up-max", "3",
        "--priority", "7", NULL);
    CHECK_RUN(r, 0);
    first_line(r.out, id, sizeof id);
    CHECK_EQ(strlen(id), 26);
    CHECK(strstr(r.out, "next at ") != NULL);

    cli(&r, NULL, "--url", s->url, "--token", u, "schedules", "list", NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, id) && strstr(r.out, "nightly") && strstr(r.out, "active") &&
          strstr(r.out, "30 2 * * *") && strstr(r.out, "Europe/Berlin"));
    CHECK(strstr(r.out, "(1 schedule)") != NULL);
    cli(&r, NULL, "--url", s->url, "--token", u, "schedules", "show", id, "--json", NULL);
    CHECK_RUN(r, 0);
    json_t *j = parse(&r);
    CHECK_STR_EQ(jstr(j, "name"), "nightly");
    CHECK_STR_EQ(jstr(j, "queue"), "cron");
    CHECK_STR_EQ(jstr(j, "misfire"), "skip");
    CHECK_STR_EQ(jstr(j, "params.scope"), "all");
    CHECK_EQ(jint(j, "catch_up_max"), 3);
    CHECK_EQ(jint(j, "priority"), 7);
    CHECK(jstr(j, "next_run_at") != NULL);
    json_decref(j);

    cli(&r, NULL, "--url", s->url, "--token", u, "schedules", "pause", id, NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "paused") != NULL);
    cli(&r, NULL, "--url", s->url, "--token", u, "schedules", "--json", NULL);
    CHECK_RUN(r, 0);
    j = parse(&r);
    CHECK(json_is_true(jpath(j, "schedules.0.paused")));
    CHECK(jis_null(j, "schedules.0.next_run_at"));
    json_decref(j);
    cli(&r, NULL, "--url", s->url, "--token", u, "schedules", "resume", id, NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "active, next run at") != NULL);

    /* another user neither sees nor touches it */
    cli(&r, NULL, "--url", s->url, "--token", other, "schedules", NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, id) == NULL);
    cli(&r, NULL, "--url", s->url, "--token", other, "schedules", "pause", id, NULL);
    CHECK_RUN(r, 1);
    CHECK(strncmp(r.err, "error: not_found:", 17) == 0);

    /* errors: duplicate name, bad cron, bad zone (server); missing --cron (usage) */
    cli(&r, NULL, "--url", s->url, "--token", u, "schedules", "create", "nightly", "--cron",
        "@daily", "--type", "t", NULL);
    CHECK_RUN(r, 1);
    CHECK(strncmp(r.err, "error: conflict:", 16) == 0);
    cli(&r, NULL, "--url", s->url, "--token", u, "schedules", "create", "bad", "--cron",
        "61 * * * *", "--type", "t", NULL);
    CHECK_RUN(r, 1);
    CHECK(strstr(r.err, "field: cron") != NULL);
    cli(&r, NULL, "--url", s->url, "--token", u, "schedules", "create", "bad", "--cron",
        "@daily", "--type", "t", "--timezone", "Mars/Olympus", NULL);
    CHECK_RUN(r, 1);
    CHECK(strstr(r.err, "field: timezone") != NULL);
    cli(&r, NULL, "--url", s->url, "--token", u, "schedules", "create", "bad", "--type", "t",
        NULL);
    CHECK_RUN(r, 2);

    cli(&r, NULL, "--url", s->url, "--token", u, "schedules", "delete", id, NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "deleted") != NULL);
    cli(&r, NULL, "--url", s->url, "--token", u, "schedules", NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "(0 schedules)") != NULL);
    cli(&r, NULL, "--url", s->url, "--token", u, "schedules", "delete", id, NULL);
    CHECK_RUN(r, 1);
    run_free(&r);
    testsrv_stop(s);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* The line of out that holds needle ("" when none), copied into buf. */
static const char *line_with(const char *out, const char *needle, char *buf, size_t cap)
{
    const char *p = strstr(out, needle);
    if (!p) {
        buf[0] = '\0';
        return buf;
    }
    while (p > out && p[-1] != '\n')
        p--;
    return first_line(p, buf, cap);
}

/* workflow create --file / show: the tree, statuses as steps finish, and file errors. */
TEST(cli_workflow)
{
    struct testsrv *s = testsrv_start(&real_clock);
    char u[TS_HDR_MAX], wk[TS_HDR_MAX], id[TS_ID_MAX], path[1024], line[512];
    struct claimed c;
    struct run r = { 0 };
    cli_token(s, "fay", "user", u, NULL);
    cli_token(s, "wk", "worker", wk, NULL);
    snprintf(path, sizeof path, "%s/steps.json", th_tmproot());
    write_file(path, "[{\"key\":\"extract\",\"type\":\"etl.extract\",\"queue\":\"wf\"},\n"
                     " {\"key\":\"transform\",\"type\":\"etl.transform\",\"queue\":\"wf\","
                     "\"depends_on\":[\"extract\"]},\n"
                     " {\"key\":\"report\",\"type\":\"etl.report\",\"queue\":\"wf\","
                     "\"depends_on\":[\"extract\"]},\n"
                     " {\"key\":\"load\",\"type\":\"etl.load\",\"queue\":\"wf\","
                     "\"depends_on\":[\"transform\",\"report\"]}]\n");

    cli(&r, NULL, "--url", s->url, "--token", u, "workflow", "create", "--file", path,
        "--name", "nightly-etl", NULL);
    CHECK_RUN(r, 0);
    first_line(r.out, id, sizeof id);
    CHECK_EQ(strlen(id), 26);
    CHECK(strstr(r.out, "nightly-etl") && strstr(r.out, "(4 steps)"));

    cli(&r, NULL, "--url", s->url, "--token", u, "workflow", "show", id, NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "pending") != NULL);
    line_with(r.out, "extract  ", line, sizeof line);
    CHECK(strncmp(line, "extract  pending", 16) == 0);        /* the root, no branch */
    line_with(r.out, "transform  ", line, sizeof line);
    CHECK(strstr(line, "\u251c\u2500 transform  pending (waits for 1)") != NULL);
    line_with(r.out, "load  ", line, sizeof line);
    CHECK(strstr(line, "\u2502  \u2514\u2500 load  pending (waits for 2)") != NULL);
    CHECK(strstr(line, "(also after report)") != NULL);
    line_with(r.out, "report  ", line, sizeof line);
    CHECK(strstr(line, "\u2514\u2500 report  pending (waits for 1)") != NULL);
    if (th_failed())
        explain(&r);

    /* only the root is claimable; once it completes its children are */
    REQUIRE(claim(s, wk, "wf", &c));
    cli(&r, NULL, "--url", s->url, "--token", u, "show", c.id, "--json", NULL);
    json_t *j = parse(&r);
    CHECK_STR_EQ(jstr(j, "step_key"), "extract");
    json_decref(j);
    complete(s, wk, &c, "{\"rows\":10}");
    cli(&r, NULL, "--url", s->url, "--token", u, "workflow", "show", id, "--json", NULL);
    CHECK_RUN(r, 0);
    j = parse(&r);
    CHECK_STR_EQ(jstr(j, "status"), "running");
    CHECK_STR_EQ(jstr(j, "steps.0.status"), "completed");
    CHECK_EQ(jint(j, "steps.1.blocked_by"), 0);
    CHECK_EQ(jint(j, "steps.3.blocked_by"), 2);
    json_decref(j);
    cli(&r, NULL, "--url", s->url, "--token", u, "workflow", "show", id, NULL);
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "extract  completed") && strstr(r.out, "transform  pending  "));
    CHECK(strstr(r.out, "  running  ") != NULL);

    /* an object {"name","steps"} works too; a cycle is the server's 400 naming it */
    write_file(path, "{\"name\":\"pair\",\"steps\":[{\"key\":\"a\",\"type\":\"t\"},"
                     "{\"key\":\"b\",\"type\":\"t\",\"depends_on\":[\"a\"]}]}");
    cli(&r, NULL, "--url", s->url, "--token", u, "workflow", "create", "--file", path, "--json",
        NULL);
    CHECK_RUN(r, 0);
    j = parse(&r);
    CHECK_STR_EQ(jstr(j, "name"), "pair");
    CHECK_STR_EQ(jstr(j, "steps.1.depends_on.0"), "a");
    json_decref(j);
    write_file(path, "[{\"key\":\"a\",\"type\":\"t\",\"depends_on\":[\"b\"]},"
                     "{\"key\":\"b\",\"type\":\"t\",\"depends_on\":[\"a\"]}]");
    cli(&r, NULL, "--url", s->url, "--token", u, "workflow", "create", "--file", path, NULL);
    CHECK_RUN(r, 1);
    CHECK(strstr(r.err, "cycle") != NULL);
    write_file(path, "[{\"key\":\"a\",\"type\":\"t\",\"depends_on\":[\"zz\"]}]");
    cli(&r, NULL, "--url", s->url, "--token", u, "workflow", "create", "--file", path, NULL);
    CHECK_RUN(r, 1);
    CHECK(strstr(r.err, "steps[0].depends_on") != NULL);

    write_file(path, "[{\"key\":");
    cli(&r, NULL, "--url", s->url, "--token", u, "workflow", "create", "--file", path, NULL);
    CHECK_RUN(r, 4);                                          /* not JSON */
    CHECK(strstr(r.err, "not JSON") != NULL);
    write_file(path, "42");
    cli(&r, NULL, "--url", s->url, "--token", u, "workflow", "create", "--file", path, NULL);
    CHECK_RUN(r, 4);
    cli(&r, NULL, "--url", s->url, "--token", u, "workflow", "create", "--file",
        "/nonexistent/steps.json", NULL);
    CHECK_RUN(r, 4);
    cli(&r, NULL, "--url", s->url, "--token", u, "workflow", "create", NULL);
    CHECK_RUN(r, 2);                                          /* --file is required */
    cli(&r, NULL, "--url", s->url, "--token", u, "workflow", "show", "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        NULL);
    CHECK_RUN(r, 1);
    CHECK(strncmp(r.err, "error: not_found:", 17) == 0);
    run_free(&r);
    testsrv_stop(s);
}

/* enqueue --depends-on (cancel and run policies) and --replace (debounce). */
TEST(cli_enqueue_depends_on_and_replace)
{
    struct testsrv *s = testsrv_start(&real_clock);
    char u[TS_HDR_MAX], wk[TS_HDR_MAX], p1[TS_ID_MAX], p2[TS_ID_MAX], p3[TS_ID_MAX];
    char k1[TS_ID_MAX], k2[TS_ID_MAX], d1[TS_ID_MAX], ids[3 * TS_ID_MAX];
    struct claimed c1, c2, c3, x;
    struct run r = { 0 };
    cli_token(s, "gil", "user", u, NULL);
    cli_token(s, "wk", "worker", wk, NULL);
    enqueue(s, u, p1, "parent", "--queue", "dq", "--params", "{\"n\":1}", NULL);
    enqueue(s, u, p2, "parent", "--queue", "dq", "--params", "{\"n\":2}", NULL);
    enqueue(s, u, p3, "parent", "--queue", "dq", "--params", "{\"n\":3}", NULL);
    snprintf(ids, sizeof ids, "%s,%s", p1, p2);

    cli(&r, NULL, "--url", s->url, "--token", u, "enqueue", "child", "--queue", "dc",
        "--depends-on", ids, "--on-parent-failure", "run", NULL);
    CHECK_RUN(r, 0);
    first_line(r.out, k1, sizeof k1);
    CHECK(strstr(r.out, "waits for 2 parent jobs") != NULL);
    enqueue(s, u, k2, "child", "--queue", "dc", "--depends-on", p3, NULL);
    cli(&r, NULL, "--url", s->url, "--token", u, "show", k1, "--json", NULL);
    CHECK_RUN(r, 0);
    json_t *j = parse(&r);
    CHECK_EQ(jint(j, "blocked_by"), 2);
    json_decref(j);

    /* children are not claimable while parents run */
    cli(&r, NULL, "--url", s->url, "--token", wk, "claim", "dc", NULL);
    CHECK_RUN(r, 0);
    CHECK_STR_EQ(r.out, "");
    REQUIRE(claim(s, wk, "dq", &c1));
    REQUIRE(claim(s, wk, "dq", &c2));
    REQUIRE(claim(s, wk, "dq", &c3));
    /* claims go in run_at, id order: p1, p2, p3 */
    CHECK_STR_EQ(c1.id, p1);
    CHECK_STR_EQ(c3.id, p3);
    complete(s, wk, &c1, "{}");
    fail_final(s, wk, &c2);                                   /* k1 runs anyway ("run") */
    fail_final(s, wk, &c3);                                   /* k2 is cancelled */
    REQUIRE(claim(s, wk, "dc", &x));
    CHECK_STR_EQ(x.id, k1);
    cli(&r, NULL, "--url", s->url, "--token", u, "show", k2, "--json", NULL);
    CHECK_RUN(r, 0);
    j = parse(&r);
    CHECK_STR_EQ(jstr(j, "status"), "cancelled");
    CHECK_STR_EQ(jstr(j, "error_code"), "parent_failed");
    json_decref(j);

    /* errors: an unknown parent (server), an empty list and a bad policy */
    cli(&r, NULL, "--url", s->url, "--token", u, "enqueue", "child", "--depends-on",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV", NULL);
    CHECK_RUN(r, 1);
    CHECK(strstr(r.err, "depends_on") != NULL);
    cli(&r, NULL, "--url", s->url, "--token", u, "enqueue", "child", "--depends-on", ",", NULL);
    CHECK_RUN(r, 2);
    cli(&r, NULL, "--url", s->url, "--token", u, "enqueue", "child", "--depends-on", p1,
        "--on-parent-failure", "maybe", NULL);
    CHECK_RUN(r, 1);
    CHECK(strstr(r.err, "on_parent_failure") != NULL);

    /* --replace: the pending job with the key takes the new params, same id */
    enqueue(s, u, d1, "search.reindex", "--queue", "deb", "--unique-key", "reindex-7",
            "--params", "{\"v\":1}", "--delay-ms", "60000", NULL);
    cli(&r, NULL, "--url", s->url, "--token", u, "enqueue", "search.reindex", "--queue", "deb",
        "--unique-key", "reindex-7", "--params", "{\"v\":2}", "--replace", "--json", NULL);
    CHECK_RUN(r, 0);
    j = parse(&r);
    CHECK_STR_EQ(jstr(j, "id"), d1);
    CHECK(json_is_true(jpath(j, "deduplicated")));
    CHECK_EQ(jint(j, "params.v"), 2);
    json_decref(j);
    cli(&r, NULL, "--url", s->url, "--token", u, "enqueue", "search.reindex", "--unique-key",
        "reindex-7", "--params", "{\"v\":3}", NULL);      /* without --replace: kept as is */
    CHECK_RUN(r, 0);
    cli(&r, NULL, "--url", s->url, "--token", u, "show", d1, "--json", NULL);
    j = parse(&r);
    CHECK_EQ(jint(j, "params.v"), 2);
    json_decref(j);
    cli(&r, NULL, "--url", s->url, "--token", u, "enqueue", "t", "--replace", NULL);
    CHECK_RUN(r, 2);                                          /* --replace needs a key */
    run_free(&r);
    testsrv_stop(s);
}

/* --help of every new verb, and the group listings. */
TEST(cli_more_help)
{
    struct run r = { 0 };
    const char *const verbs[][3] = {
        { "search", NULL },
        { "schedules", NULL },
        { "schedules", "list" },
        { "schedules", "create" },
        { "schedules", "show" },
        { "schedules", "pause" },
        { "schedules", "resume" },
        { "schedules", "delete" },
        { "workflow", "create" },
        { "workflow", "show" },
    };
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        const char *args[4] = { verbs[i][0], verbs[i][1] ? verbs[i][1] : "--help",
                                verbs[i][1] ? "--help" : NULL, NULL };
        r = cli_runv(NULL, args);
        if (!CHECK_EQ(r.code, 0) || !CHECK(strstr(r.out, "usage: jobq") != NULL))
            fprintf(stderr, "  %s %s --help\n", verbs[i][0], verbs[i][1] ? verbs[i][1] : "");
        run_free(&r);
    }
    cli(&r, NULL, "schedules", "--help", NULL);              /* the verb and its group */
    CHECK(strstr(r.out, "schedules create") && strstr(r.out, "schedules pause"));
    cli(&r, NULL, "schedules", "create", "--help", NULL);
    CHECK(strstr(r.out, "--catch-up-max") && strstr(r.out, "--misfire"));
    cli(&r, NULL, "enqueue", "--help", NULL);
    CHECK(strstr(r.out, "--depends-on") && strstr(r.out, "--on-parent-failure") &&
          strstr(r.out, "--replace"));
    cli(&r, NULL, "list", "--help", NULL);
    CHECK(strstr(r.out, "--params") && strstr(r.out, "--result") && strstr(r.out, "--log-q"));
    cli(&r, NULL, "workflow", NULL);                         /* group without sub-verb */
    CHECK_RUN(r, 2);
    CHECK(strstr(r.err, "workflow show") != NULL);
    cli(&r, NULL, "--help", NULL);
    CHECK(strstr(r.out, "search") && strstr(r.out, "schedules create") &&
          strstr(r.out, "workflow show"));
    run_free(&r);
}

TEST_MAIN()
