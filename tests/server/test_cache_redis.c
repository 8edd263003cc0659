/*
 * test_cache_redis.c - the shared cache (--cache redis://host:port, docs/API.md "Shared
 * cache"): each test starts its own redis-server on a free port in its temp dir (skipped
 * with a message when redis-server is not installed). A repeated GET /v1/jobs/{id} hits;
 * a write (claim, complete) shows at once, never stale; another user still gets 404;
 * Redis hung (SIGSTOP) or killed: jobqd keeps answering correctly and counts errors, an
 * invalidation lost meanwhile never lets an old entry out, and hits come back with Redis.
 * On PostgreSQL (JOBQ_TEST_BACKEND=postgres) two nodes share one Redis: a write on one
 * node is seen by a read on the other at once.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include "harness_pg.h"
#include "srvtest.h"

struct redis { pid_t pid; int port; char *dir; char url[64]; };

static bool have_redis(void)
{
    if (system("command -v redis-server >/dev/null 2>&1") == 0)
        return true;
    printf("SKIP: redis-server is not installed (scripts/deps.sh installs it)\n");
    return false;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &n))
        th_abort();
    close(fd);
    return ntohs(a.sin_port);
}

/* True if redis on port answers PING with +PONG. */
static bool redis_pings(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {0, 200000};
    char buf[16] = "";
    bool ok = false;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, "PING\r\n", 6) == 6 && read(fd, buf, sizeof buf - 1) > 0)
        ok = strncmp(buf, "+PONG", 5) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Starts redis-server on r->port (a free one if 0) in r->dir; waits for PING. */
static void redis_start(struct redis *r)
{
    if (!r->dir)
        r->dir = th_mkdtemp("redis");
    if (!r->port)
        r->port = free_port();
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
    char port[16], log[4096];
    snprintf(port, sizeof port, "%d", r->port);
    snprintf(log, sizeof log, "%s/redis.log", r->dir);
    r->pid = fork();
    if (r->pid < 0)
        th_abort();
    if (r->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", r->dir, (char *)NULL);
        _exit(127);
    }
    WAIT_FOR(redis_pings(r->port), 10000);
    if (th_failed())
        th_abort();
}

static void redis_kill(struct redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
    }
    r->pid = 0;
}

static struct testsrv *start_cached(struct redis *r, const char *db)
{
    const char *extra[] = {"--cache", r->url, db ? "--db" : NULL, db, NULL};
    struct testsrv_opts o = {.real_clock = db != NULL, .extra = extra};
    return testsrv_start(&o);
}

/* A counter from /metrics (admin), -1 if absent. */
static int64_t metric(struct testsrv *s, const char *name)
{
    struct resp r;
    int64_t v = -1;
    if (ts_req(s, "GET", "/metrics", s->admin, NULL, &r) == 200) {
        char pat[128];
        snprintf(pat, sizeof pat, "\n%s ", name);
        const char *p = strstr(r.body, pat);
        if (p)
            v = strtoll(p + strlen(pat), NULL, 10);
    }
    resp_free(&r);
    return v;
}

static int64_t hits(struct testsrv *s)
{
    return metric(s, "jobq_cache_hits_total");
}

/* GET as token; returns status, status field copied into st. */
static long get_status(struct testsrv *s, const char *token, const char *id, char *st,
                       size_t cap)
{
    struct resp r;
    long code = ts_get(s, token, id, &r);
    snprintf(st, cap, "%s", jstr(r.json, "status") ? jstr(r.json, "status") : "");
    resp_free(&r);
    return code;
}

static void complete(struct testsrv *s, const char *worker, const char *id, const char *lease)
{
    char body[256];
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"ok\":1}}", lease);
    REQUIRE_EQ(st_post0(s, worker, id, "complete", body), 200);
}

TEST(repeated_get_hits_writes_show_at_once_other_user_404)
{
    if (!have_redis())
        return;
    struct redis rd = {0};
    redis_start(&rd);
    struct testsrv *s = start_cached(&rd, NULL);
    const char *alice = ts_token(s, "alice", "user"), *bob = ts_token(s, "bob", "user");
    const char *w = ts_token(s, "w", "worker");
    char id[TS_ID_MAX], lease[TS_ID_MAX], st[32];
    st_enq(s, alice, id, "{\"type\":\"t\",\"queue\":\"cq\"}");

    struct resp a, b;
    CHECK_EQ(ts_get(s, alice, id, &a), 200);            /* miss: stored */
    int64_t h0 = hits(s);
    CHECK(h0 >= 0);
    CHECK_EQ(ts_get(s, alice, id, &b), 200);            /* hit */
    CHECK_EQ(hits(s), h0 + 1);
    CHECK_STR_EQ(a.body, b.body);
    CHECK_STR_EQ(a.etag, b.etag);
    CHECK_STR_EQ(b.cache_control, "private, max-age=5");
    char inm[TS_HDR_MAX + 20];
    snprintf(inm, sizeof inm, "If-None-Match: %s", b.etag);
    const char *hdr[] = {inm, NULL};
    struct ts_http rq = {.path = NULL, .token = alice, .headers = hdr};
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    rq.path = path;
    struct resp c;
    CHECK_EQ(ts_do(s, &rq, &c), 304);                   /* a hit keeps ETags working */
    resp_free(&a);
    resp_free(&b);
    resp_free(&c);

    /* another user: 404 from the store, never alice's entry; admins see it */
    CHECK_EQ(get_status(s, bob, id, st, sizeof st), 404);
    CHECK_EQ(get_status(s, bob, id, st, sizeof st), 404);
    CHECK_EQ(get_status(s, s->admin, id, st, sizeof st), 200);
    CHECK_STR_EQ(st, "pending");

    /* a claim and a complete show at once */
    REQUIRE(ts_claim1(s, w, "cq", NULL, lease));
    CHECK_EQ(get_status(s, alice, id, st, sizeof st), 200);
    CHECK_STR_EQ(st, "processing");
    CHECK_EQ(get_status(s, alice, id, st, sizeof st), 200);   /* cached as processing */
    complete(s, w, id, lease);
    CHECK_EQ(get_status(s, alice, id, st, sizeof st), 200);
    CHECK_STR_EQ(st, "completed");
    int64_t h1 = hits(s);
    struct resp f;
    CHECK_EQ(ts_get(s, alice, id, &f), 200);
    CHECK_STR_EQ(jstr(f.json, "status"), "completed");
    CHECK_STR_EQ(f.cache_control, "private, max-age=3600");
    CHECK_EQ(hits(s), h1 + 1);
    resp_free(&f);
    /* delete drops it too */
    struct resp del;
    CHECK_EQ(ts_reqf(s, "DELETE", alice, NULL, &del, "/v1/jobs/%s", id), 204);
    resp_free(&del);
    CHECK_EQ(get_status(s, alice, id, st, sizeof st), 404);

    /* stats: cached per scope; admins see the counters */
    struct resp sa;
    CHECK_EQ(ts_req(s, "GET", "/v1/stats", alice, NULL, &sa), 200);
    CHECK(jpath(sa.json, "cache") == NULL);
    resp_free(&sa);
    CHECK_EQ(ts_req(s, "GET", "/v1/stats", s->admin, NULL, &sa), 200);
    CHECK(jint(sa.json, "cache.hits") >= 3);
    CHECK(jint(sa.json, "cache.misses") >= 1);
    CHECK_EQ(jint(sa.json, "cache.errors"), 0);
    CHECK(json_is_true(jpath(sa.json, "cache.up")));
    resp_free(&sa);
    CHECK_EQ(metric(s, "jobq_cache_errors_total"), 0);
    testsrv_stop(s);
    redis_kill(&rd);
}

TEST(redis_hung_or_killed_jobqd_serves_correctly_and_recovers)
{
    if (!have_redis())
        return;
    struct redis rd = {0};
    redis_start(&rd);
    struct testsrv *s = start_cached(&rd, NULL);
    const char *alice = ts_token(s, "alice", "user"), *w = ts_token(s, "w", "worker");
    char id[TS_ID_MAX], id2[TS_ID_MAX], lease[TS_ID_MAX], st[32];
    st_enq(s, alice, id, "{\"type\":\"t\",\"queue\":\"cq\"}");
    REQUIRE(ts_claim1(s, w, "cq", NULL, lease));
    CHECK_EQ(get_status(s, alice, id, st, sizeof st), 200);
    int64_t h0 = hits(s);
    CHECK_EQ(get_status(s, alice, id, st, sizeof st), 200);   /* processing, cached */
    CHECK_EQ(hits(s), h0 + 1);

    /* hung: commands time out (50 ms); the complete's invalidation is lost */
    kill(rd.pid, SIGSTOP);
    int64_t t0 = th_now_ms();
    complete(s, w, id, lease);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(get_status(s, alice, id, st, sizeof st), 200);
        CHECK_STR_EQ(st, "completed");
    }
    CHECK(th_now_ms() - t0 < 3000);            /* never blocked on the dead cache */
    CHECK(metric(s, "jobq_cache_errors_total") >= 1);
    CHECK_EQ(metric(s, "jobq_cache_up"), 0);
    kill(rd.pid, SIGCONT);
    /* back: the old "processing" entry is still in Redis but must never be served */
    int64_t deadline = th_now_ms() + 5000;
    while (th_now_ms() < deadline && metric(s, "jobq_cache_up") != 1) {
        CHECK_EQ(get_status(s, alice, id, st, sizeof st), 200);
        CHECK_STR_EQ(st, "completed");
        usleep(100000);
    }
    CHECK_EQ(metric(s, "jobq_cache_up"), 1);
    CHECK_EQ(get_status(s, alice, id, st, sizeof st), 200);
    CHECK_STR_EQ(st, "completed");
    h0 = hits(s);
    CHECK_EQ(get_status(s, alice, id, st, sizeof st), 200);
    CHECK_STR_EQ(st, "completed");
    CHECK_EQ(hits(s), h0 + 1);

    /* killed: refused connections; answers stay right */
    redis_kill(&rd);
    int64_t e0 = metric(s, "jobq_cache_errors_total");
    st_enq(s, alice, id2, "{\"type\":\"t\",\"queue\":\"cq2\"}");
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(get_status(s, alice, id2, st, sizeof st), 200);
        CHECK_STR_EQ(st, "pending");
    }
    CHECK(metric(s, "jobq_cache_errors_total") > e0);
    struct resp sa;
    CHECK_EQ(ts_req(s, "GET", "/v1/stats", s->admin, NULL, &sa), 200);
    CHECK(json_is_false(jpath(sa.json, "cache.up")));
    CHECK(jint(sa.json, "cache.errors") >= 2);
    resp_free(&sa);
    CHECK_EQ(ts_req(s, "GET", "/v1/stats", alice, NULL, &sa), 200);   /* uncached */
    resp_free(&sa);

    /* restarted on the same port: hits come back within the retry interval */
    redis_start(&rd);
    deadline = th_now_ms() + 5000;
    bool back = false;
    while (!back && th_now_ms() < deadline) {
        int64_t h = hits(s);
        CHECK_EQ(get_status(s, alice, id2, st, sizeof st), 200);
        CHECK_STR_EQ(st, "pending");
        back = hits(s) > h;
        if (!back)
            usleep(100000);
    }
    CHECK(back);
    testsrv_stop(s);
    redis_kill(&rd);
}

TEST(two_nodes_share_the_cache_a_write_on_one_shows_on_the_other)
{
    if (!have_redis())
        return;
    if (!thpg_enabled()) {
        printf("SKIP: two nodes need the PostgreSQL backend (pg_server_test_cache_redis)\n");
        return;
    }
    struct redis rd = {0};
    redis_start(&rd);
    struct testsrv *a = start_cached(&rd, NULL);
    struct testsrv *b = start_cached(&rd, a->db);
    const char *alice = ts_token(a, "alice", "user"), *w = ts_token(a, "w", "worker");
    const char *bob = ts_token(a, "bob", "user");
    char id[TS_ID_MAX], lease[TS_ID_MAX], st[32];
    st_enq(a, alice, id, "{\"type\":\"t\",\"queue\":\"cq\"}");
    CHECK_EQ(get_status(a, alice, id, st, sizeof st), 200);      /* stored by A */
    int64_t hb = hits(b);
    CHECK_EQ(get_status(b, alice, id, st, sizeof st), 200);      /* B hits A's entry */
    CHECK_STR_EQ(st, "pending");
    CHECK_EQ(hits(b), hb + 1);
    CHECK_EQ(get_status(b, bob, id, st, sizeof st), 404);
    REQUIRE(ts_claim1(b, w, "cq", NULL, lease));                 /* claimed on B */
    CHECK_EQ(get_status(a, alice, id, st, sizeof st), 200);
    CHECK_STR_EQ(st, "processing");
    CHECK_EQ(get_status(b, alice, id, st, sizeof st), 200);      /* cached again */
    complete(b, w, id, lease);                                    /* completed on B */
    CHECK_EQ(get_status(a, alice, id, st, sizeof st), 200);      /* A: at once */
    CHECK_STR_EQ(st, "completed");
    testsrv_stop(b);
    testsrv_stop(a);
    redis_kill(&rd);
}

TEST_MAIN()
