/* test_events.c - GET /v1/events (SSE) and GET /v1/jobs/{id}/wait against the
 * real server: every transition in order, resume with Last-Event-ID, tenant
 * isolation with canaries, the per-user stream cap, heartbeats, and wait. A
 * tiny SSE client over a raw socket (HTTP/1.0, so no chunked framing). */
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "srvtest.h"

struct sse { int fd; char buf[1 << 16]; size_t len; int status; };
struct ev { long long id; char kind[32]; char data[4096]; bool comment; };

static bool sse_open(struct sse *c, struct testsrv *s, const char *token, const char *query,
                     const char *last_id)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    c->len = 0;
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0)
        return false;
    char req[1024], lh[96] = "";
    if (last_id)
        snprintf(lh, sizeof lh, "Last-Event-ID: %s\r\n", last_id);
    int n = snprintf(req, sizeof req, "GET /v1/events%s%s HTTP/1.0\r\nAuthorization: Bearer "
                     "%s\r\n%sAccept: text/event-stream\r\n\r\n", query ? "?" : "",
                     query ? query : "", token, lh);
    return write(c->fd, req, (size_t)n) == n;
}

/* Reads more bytes within the deadline; false on EOF or timeout. */
static bool fill(struct sse *c, int64_t deadline)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int64_t left = deadline - th_now_ms();
    if (left <= 0 || poll(&p, 1, (int)left) != 1 || c->len >= sizeof c->buf - 1)
        return false;
    ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
    if (n <= 0)
        return false;
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    return true;
}

/* The HTTP status line and headers; returns the status. */
static int sse_head(struct sse *c, int timeout_ms)
{
    int64_t dl = th_now_ms() + timeout_ms;
    char *end;
    while (!(end = strstr(c->buf, "\r\n\r\n")))
        if (!fill(c, dl))
            return 0;
    c->status = atoi(c->buf + 9);
    size_t used = (size_t)(end + 4 - c->buf);
    memmove(c->buf, end + 4, c->len - used + 1);
    c->len -= used;
    return c->status;
}

/* Next frame (event or comment) within timeout_ms; false if none. */
static bool sse_next(struct sse *c, struct ev *e, int timeout_ms)
{
    int64_t dl = th_now_ms() + timeout_ms;
    char *end;
    while (!(end = strstr(c->buf, "\n\n")))
        if (!fill(c, dl))
            return false;
    *end = '\0';
    memset(e, 0, sizeof *e);
    e->comment = c->buf[0] == ':';
    for (char *line = c->buf; line && *line; ) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (!strncmp(line, "id: ", 4)) e->id = atoll(line + 4);
        else if (!strncmp(line, "event: ", 7)) snprintf(e->kind, sizeof e->kind, "%s", line + 7);
        else if (!strncmp(line, "data: ", 6)) snprintf(e->data, sizeof e->data, "%s", line + 6);
        line = nl ? nl + 1 : NULL;
    }
    size_t used = (size_t)(end + 2 - c->buf);
    memmove(c->buf, end + 2, c->len - used + 1);
    c->len -= used;
    return true;
}

/* The next real event (skipping retry/comment frames). */
static bool next_event(struct sse *c, struct ev *e, int timeout_ms)
{
    int64_t dl = th_now_ms() + timeout_ms;
    while (th_now_ms() < dl)
        if (!sse_next(c, e, (int)(dl - th_now_ms())))
            return false;
        else if (e->kind[0])
            return true;
    return false;
}

static void expect_kind(struct sse *c, const char *kind, const char *job, long long *last)
{
    struct ev e;
    if (!CHECK(next_event(c, &e, 5000))) {
        fprintf(stderr, "  no event, wanted %s\n", kind);
        return;
    }
    CHECK_STR_EQ(e.kind, kind);
    CHECK(strstr(e.data, job) != NULL);
    CHECK(e.id > *last);                 /* ids increase */
    *last = e.id;
}

/* Drives a job through claim, progress, log, complete as the worker. */
static void lifecycle(struct st_ctx *c, const char *queue, char *id)
{
    char lease[TS_ID_MAX], body[256];
    REQUIRE(ts_claim1(c->s, c->worker, queue, id, lease));
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"progress_percent\":40}", lease);
    REQUIRE_EQ(st_post0(c->s, c->worker, id, "heartbeat", body), 200);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"message\":\"half\"}", lease);
    REQUIRE_EQ(st_post0(c->s, c->worker, id, "logs", body), 201);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":1}", lease);
    REQUIRE_EQ(st_post0(c->s, c->worker, id, "complete", body), 200);
}

TEST(sse_sees_every_transition_in_order)
{
    struct st_ctx c = st_setup();
    struct sse cl;
    REQUIRE(sse_open(&cl, c.s, c.alice, NULL, NULL));
    REQUIRE_EQ(sse_head(&cl, 5000), 200);
    char id[TS_ID_MAX], got[TS_ID_MAX];
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"ev\"}");
    lifecycle(&c, "ev", got);
    CHECK_STR_EQ(got, id);
    long long last = 0;
    const char *kinds[] = {"created", "claimed", "progress", "log", "completed"};
    for (int i = 0; i < 5; i++)
        expect_kind(&cl, kinds[i], id, &last);
    close(cl.fd);
    testsrv_stop(c.s);
}

TEST(resume_with_last_event_id_loses_nothing)
{
    struct st_ctx c = st_setup();
    struct sse cl;
    REQUIRE(sse_open(&cl, c.s, c.alice, "queue=rs", NULL));
    REQUIRE_EQ(sse_head(&cl, 5000), 200);
    char id[TS_ID_MAX], got[TS_ID_MAX], last_text[32];
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"rs\"}");
    long long last = 0;
    expect_kind(&cl, "created", id, &last);
    close(cl.fd);                                      /* disconnect */
    lifecycle(&c, "rs", got);                          /* changes while away */
    snprintf(last_text, sizeof last_text, "%lld", last);
    REQUIRE(sse_open(&cl, c.s, c.alice, "queue=rs", last_text));
    REQUIRE_EQ(sse_head(&cl, 5000), 200);
    const char *kinds[] = {"claimed", "progress", "log", "completed"};
    for (int i = 0; i < 4; i++)
        expect_kind(&cl, kinds[i], id, &last);
    close(cl.fd);
    testsrv_stop(c.s);
}

TEST(streams_never_show_another_users_jobs)
{
    struct st_ctx c = st_setup();
    struct sse bob;
    REQUIRE(sse_open(&bob, c.s, c.bob, NULL, NULL));
    REQUIRE_EQ(sse_head(&bob, 5000), 200);
    char canary[TS_ID_MAX], mine[TS_ID_MAX], got[TS_ID_MAX];
    st_enq(c.s, c.alice, canary, "{\"type\":\"t\",\"queue\":\"cn\",\"params\":{\"canary\":1}}");
    lifecycle(&c, "cn", got);
    st_enq(c.s, c.bob, mine, "{\"type\":\"t\",\"queue\":\"cn2\"}");
    struct ev e;
    REQUIRE(next_event(&bob, &e, 5000));
    CHECK_STR_EQ(e.kind, "created");
    CHECK(strstr(e.data, mine) != NULL);               /* bob's first event is his own job */
    CHECK(strstr(e.data, canary) == NULL);
    CHECK(!next_event(&bob, &e, 300));                 /* and nothing of alice's follows */
    /* a job_id filter on alice's job from bob streams nothing either */
    struct sse probe;
    char q[128];
    snprintf(q, sizeof q, "job_id=%s", canary);
    REQUIRE(sse_open(&probe, c.s, c.bob, q, "0"));
    REQUIRE_EQ(sse_head(&probe, 5000), 200);
    CHECK(!next_event(&probe, &e, 300));
    close(probe.fd);
    close(bob.fd);
    testsrv_stop(c.s);
}

TEST(stream_cap_per_user_and_heartbeats)
{
    const char *extra[] = {"--sse-streams-max", "2", "--sse-heartbeat-ms", "100", NULL};
    struct testsrv *s = st_start_with(extra);
    const char *u = ts_token(s, "carol", "user");
    struct sse a, b, x;
    REQUIRE(sse_open(&a, s, u, NULL, NULL));
    REQUIRE_EQ(sse_head(&a, 5000), 200);
    REQUIRE(sse_open(&b, s, u, NULL, NULL));
    REQUIRE_EQ(sse_head(&b, 5000), 200);
    REQUIRE(sse_open(&x, s, u, NULL, NULL));
    CHECK_EQ(sse_head(&x, 5000), 429);                 /* the third is refused */
    close(x.fd);
    struct ev e;
    bool beat = false;
    for (int i = 0; i < 5 && !beat; i++)               /* a comment arrives while idle */
        beat = sse_next(&a, &e, 3000) && e.comment;
    CHECK(beat);
    close(a.fd);                                       /* a slot frees when a stream ends */
    WAIT_FOR(sse_open(&x, s, u, NULL, NULL) && (sse_head(&x, 5000) == 200 || (close(x.fd), false)),
             5000);
    close(x.fd);
    close(b.fd);
    testsrv_stop(s);
}

TEST(resume_past_the_window_gets_reset)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX];
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"old\"}");
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"old\",\"params\":{\"n\":2}}");
    ts_advance(c.s, 2LL * 3600 * 1000);   /* past --events-retention-ms (1 h); the tick prunes */
    struct resp r;
    REQUIRE_EQ(ts_req(c.s, "POST", "/v1/admin/maintenance/events", c.s->admin, NULL, &r), 200);
    resp_free(&r);
    char fresh[TS_ID_MAX];
    st_enq(c.s, c.alice, fresh, "{\"type\":\"t\",\"queue\":\"old\",\"params\":{\"n\":3}}");
    struct sse cl;
    REQUIRE(sse_open(&cl, c.s, c.alice, NULL, "0"));   /* a position before the window */
    REQUIRE_EQ(sse_head(&cl, 5000), 200);
    struct ev e;
    REQUIRE(next_event(&cl, &e, 5000));
    CHECK_STR_EQ(e.kind, "reset");
    char fresh2[TS_ID_MAX];                            /* then it goes on from the newest */
    st_enq(c.s, c.alice, fresh2, "{\"type\":\"t\",\"queue\":\"old\",\"params\":{\"n\":4}}");
    REQUIRE(next_event(&cl, &e, 5000));
    CHECK_STR_EQ(e.kind, "created");
    CHECK(strstr(e.data, fresh2) != NULL);
    close(cl.fd);
    testsrv_stop(c.s);
}

/* Reads and counts "event: created" frames from c until want or the deadline. */
static int count_created(struct sse *c, int want, int timeout_ms)
{
    struct ev e;
    int n = 0;
    int64_t dl = th_now_ms() + timeout_ms;
    while (n < want && th_now_ms() < dl && sse_next(c, &e, (int)(dl - th_now_ms())))
        n += strcmp(e.kind, "created") == 0;
    return n;
}

TEST(a_stalled_consumer_is_cut_off_while_others_stream)
{
    const char *extra[] = {"--sse-backlog-kb", "512", "--sse-heartbeat-ms", "200", NULL};
    struct testsrv *s = st_start_with(extra);
    const char *u = ts_token_limit(s, "flood", "user", 0);
    struct sse stalled, live;
    int small = 4096;
    stalled.fd = -1;
    REQUIRE(sse_open(&live, s, u, NULL, NULL));
    REQUIRE_EQ(sse_head(&live, 5000), 200);
    /* the stalled client: a tiny receive buffer, and it never reads */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    stalled.fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(stalled.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    REQUIRE(connect(stalled.fd, (struct sockaddr *)&a, sizeof a) == 0);
    char req[256];
    int n = snprintf(req, sizeof req, "GET /v1/events HTTP/1.0\r\nAuthorization: Bearer %s\r\n\r\n",
                     u);
    REQUIRE(write(stalled.fd, req, (size_t)n) == n);
    enum { BATCH_BYTES = 200 * 1000 };
    char *batch = malloc(BATCH_BYTES);
    REQUIRE(batch != NULL);
    int got = 0;
    for (int b = 0; b < 5; b++) {                        /* ~1.5 MB of events, over the cap */
        int len = snprintf(batch, BATCH_BYTES, "{\"jobs\":[");
        for (int i = 0; i < 1000; i++)
            len += snprintf(batch + len, BATCH_BYTES - (size_t)len, "%s{\"type\":\"f\","
                            "\"params\":{\"pad\":\"%0100d\",\"i\":%d}}", i ? "," : "", 0,
                            b * 1000 + i);
        snprintf(batch + len, BATCH_BYTES - (size_t)len, "]}");
        struct resp r;
        REQUIRE_EQ(ts_req(s, "POST", "/v1/jobs/batch", u, batch, &r), 201);
        resp_free(&r);
        got += count_created(&live, 1000, 20000);        /* the live client keeps reading */
    }
    free(batch);
    CHECK_EQ(got, 5000);                                 /* and gets everything */
    /* the stalled one is disconnected by the server: reading now ends in EOF/reset */
    bool closed = false;
    int64_t dl = th_now_ms() + 15000;
    char sink[65536];
    while (!closed && th_now_ms() < dl) {
        struct pollfd p = {.fd = stalled.fd, .events = POLLIN};
        if (poll(&p, 1, 200) == 1) {
            ssize_t got = read(stalled.fd, sink, sizeof sink);
            closed = got <= 0;
            if (!closed)
                continue;                                /* drain what was queued */
        }
    }
    CHECK(closed);
    close(stalled.fd);
    close(live.fd);
    testsrv_stop(s);
}

struct waiter { struct testsrv *s; const char *tok; const char *id; struct resp r; int64_t ms; };

static void *wait_job(void *arg)
{
    struct waiter *w = arg;
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%s/wait?timeout_ms=20000", w->id);
    struct tsconn *conn = tsconn_new(w->s);
    int64_t t0 = th_now_ms();
    tsconn_req(conn, "GET", path, w->tok, NULL, &w->r);
    w->ms = th_now_ms() - t0;
    tsconn_free(conn);
    return NULL;
}

TEST(wait_returns_on_completion)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], got[TS_ID_MAX];
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"wt\"}");
    struct waiter w = {c.s, c.alice, id, {0}, 0};
    pthread_t t;
    pthread_create(&t, NULL, wait_job, &w);
    lifecycle(&c, "wt", got);
    pthread_join(t, NULL);
    CHECK_EQ(w.r.status, 200);
    CHECK_STR_EQ(jstr(w.r.json, "status"), "completed");
    CHECK(w.ms < 10000);                               /* well before its 20 s timeout */
    resp_free(&w.r);
    struct resp r;                                     /* a short wait on an open job */
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"wt2\"}");
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%s/wait?timeout_ms=50", id);
    CHECK_EQ(ts_req(c.s, "GET", path, c.alice, NULL, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "pending");
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s/wait", id);
    CHECK_EQ(ts_req(c.s, "GET", path, c.bob, NULL, &r), 404);   /* others: 404 */
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST_MAIN()
