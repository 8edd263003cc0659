/*
 * test_caps.c - RELIABILITY.md T18: caps and slow clients, memory bounded.
 *   - a body over the cap: 413, declared (Content-Length) or streamed (chunked), while
 *     far more is offered; jobqd's VmRSS grows by little;
 *   - headers over the cap -> 431, a URI over 8 KiB -> 414 uri_too_long, depth > cap -> 400;
 *   - slowloris: many connections sending their headers a byte at a time; other clients
 *     are still served promptly and memory stays bounded;
 *   - a header trickled a byte at a time is closed by --header-timeout-ms, while a
 *     long-poll in flight is not;
 *   - past --max-connections: new connections are refused or closed, never hang; the fd
 *     count stays bounded and service is back as soon as the hogs leave.
 * CI offers 64 MiB and 200 slow connections; JQ_LONG=1 offers 1 GiB and 900.
 */
#include "rel.h"

#include <sys/resource.h>

static long rss_settled(pid_t pid)
{
    return rel_rss_kib(pid);
}

/* Streams `total` bytes of body after head on one connection (stops early when the
 * server answers or closes); returns the status it answered (0 = none). */
static long offer(int port, const char *head, long long total, bool chunked, long long *sent)
{
    int fd = rel_connect(port);
    if (fd < 0) return 0;
    static char chunk[1 << 16];
    memset(chunk, 'x', sizeof chunk);
    rel_send_all(fd, head, strlen(head));
    *sent = 0;
    char buf[8192];
    long st = 0;
    while (*sent < total) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 0) > 0) break;                 /* an early answer */
        bool ok;
        if (chunked) {
            char hdr[32];
            int n = snprintf(hdr, sizeof hdr, "%zx\r\n", sizeof chunk);
            ok = rel_send_all(fd, hdr, (size_t)n) && rel_send_all(fd, chunk, sizeof chunk) &&
                 rel_send_all(fd, "\r\n", 2);
        } else {
            ok = rel_send_all(fd, chunk, sizeof chunk);
        }
        if (!ok) break;
        *sent += (long long)sizeof chunk;
    }
    if (chunked && *sent >= total) rel_send_all(fd, "0\r\n\r\n", 5);
    rel_read_all(fd, buf, sizeof buf, 5000);
    st = rel_status(buf);
    close(fd);
    return st;
}

TEST(t18_huge_bodies_are_refused_with_memory_bounded)
{
    struct st_ctx c = st_setup();
    long long total = REL_N(64LL << 20, 1LL << 30), sent = 0;
    char head[512];
    struct resp r;
    for (int i = 0; i < 20; i++) {                     /* warm up: threads, caches */
        CHECK_EQ(ts_req(c.s, "GET", "/v1/stats", c.alice, NULL, &r), 200);
        resp_free(&r);
    }
    long rss0 = rss_settled(c.s->pid), peak = rss0;
    snprintf(head, sizeof head, "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: %lld\r\n\r\n", c.alice, total);
    long st = offer(c.s->port, head, total, false, &sent);
    printf("  declared %lld bytes: %ld after %lld sent\n", total, st, sent);
    CHECK_EQ(st, 413);
    long rss1 = rel_rss_kib(c.s->pid);
    if (rss1 > peak) peak = rss1;
    snprintf(head, sizeof head, "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", c.alice);
    st = offer(c.s->port, head, total, true, &sent);
    printf("  chunked, %lld bytes offered: %ld after %lld sent\n", total, st, sent);
    CHECK_EQ(st, 413);
    long rss2 = rel_rss_kib(c.s->pid);
    if (rss2 > peak) peak = rss2;
    printf("  VmRSS %ld KiB before, %ld after declared, %ld after chunked (+%ld KiB)\n", rss0,
           rss1, rss2, peak - rss0);
    CHECK(peak - rss0 < 8 * 1024);                      /* bounded by the 1 MiB body cap */
    CHECK_EQ(ts_req(c.s, "GET", "/healthz", NULL, NULL, &r), 200);
    resp_free(&r);
    CHECK_EQ(st_total(c.s, c.s->admin, ""), 0);         /* nothing was created */
    testsrv_stop(c.s);
}

TEST(t18_header_uri_and_depth_caps)
{
    struct st_ctx c = st_setup();
    char *req = malloc(64 << 10), buf[8192];
    /* 40 KiB of headers */
    int n = sprintf(req, "GET /v1/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n", c.alice);
    for (int i = 0; i < 40; i++) {
        n += sprintf(req + n, "X-Pad-%d: ", i);
        memset(req + n, 'p', 1000);
        n += 1000;
        n += sprintf(req + n, "\r\n");
    }
    sprintf(req + n, "\r\n");
    long st = rel_raw(c.s->port, req, 0, buf, sizeof buf, 5000);
    printf("  40 KiB of headers -> %ld\n", st);
    CHECK(st == 431 || st == 413 || st == 400);
    /* a 20 KiB URI */
    n = sprintf(req, "GET /v1/jobs/");
    memset(req + n, 'a', 20 << 10);
    n += 20 << 10;
    sprintf(req + n, " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", c.alice);
    st = rel_raw(c.s->port, req, 0, buf, sizeof buf, 5000);
    printf("  20 KiB URI -> %ld\n", st);
    CHECK_EQ(st, 414);
    CHECK(strstr(rel_body(buf), "\"uri_too_long\"") != NULL);
    /* under the cap: the route answers (an unknown id: 404) */
    n = sprintf(req, "GET /v1/jobs/");
    memset(req + n, 'a', 7 << 10);
    n += 7 << 10;
    sprintf(req + n, " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", c.alice);
    CHECK_EQ(rel_raw(c.s->port, req, 0, buf, sizeof buf, 5000), 404);
    /* JSON nested 10,000 deep */
    n = sprintf(req, "{\"type\":\"t\",\"params\":");
    for (int i = 0; i < 10000; i++) req[n++] = '[';
    for (int i = 0; i < 10000; i++) req[n++] = ']';
    sprintf(req + n, "}");
    struct resp r;
    CHECK_EQ(ts_req(c.s, "POST", "/v1/jobs", c.alice, req, &r), 400);
    CHECK_STR_EQ(st_code(&r), "invalid_json");
    resp_free(&r);
    /* page size is capped */
    CHECK_EQ(ts_req(c.s, "GET", "/v1/jobs?limit=100000", c.alice, NULL, &r), 400);
    resp_free(&r);
    CHECK_EQ(ts_req(c.s, "GET", "/healthz", NULL, NULL, &r), 200);
    resp_free(&r);
    free(req);
    testsrv_stop(c.s);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

TEST(t18_slowloris_does_not_starve_others)
{
    raise_nofile();
    int nslow = REL_N(200, 900);
    struct st_ctx c = st_setup();
    struct resp r;
    CHECK_EQ(ts_req(c.s, "GET", "/v1/stats", c.alice, NULL, &r), 200);
    resp_free(&r);
    long rss0 = rel_rss_kib(c.s->pid);
    int *fds = calloc((size_t)nslow, sizeof *fds);
    int open_n = 0;
    for (int i = 0; i < nslow; i++)
        if ((fds[i] = rel_connect(c.s->port)) >= 0) open_n++;
    const char *hdr = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    size_t hl = strlen(hdr);
    int64_t worst = 0, t_end = th_now_ms() + REL_N(4000, 30000);
    int served = 0, rounds = 0;
    for (size_t pos = 0; th_now_ms() < t_end; pos = (pos + 1) % hl, rounds++) {
        for (int i = 0; i < nslow; i++)           /* one more byte on every connection */
            if (fds[i] >= 0 && !rel_send_all(fds[i], hdr + pos, 1)) {
                close(fds[i]);
                fds[i] = -1;
            }
        int64_t t0 = th_now_ms();
        long st = ts_req(c.s, "GET", "/v1/stats", c.alice, NULL, &r);
        resp_free(&r);
        int64_t dt = th_now_ms() - t0;
        if (dt > worst) worst = dt;
        served += st == 200;
        usleep(50000);                            /* the slow clients' pace */
    }
    long rss1 = rel_rss_kib(c.s->pid);
    int still = 0;
    for (int i = 0; i < nslow; i++) still += fds[i] >= 0;
    printf("  %d slow connections (%d still open): %d/%d requests served, worst %lld ms; "
           "VmRSS %ld -> %ld KiB\n", open_n, still, served, rounds, (long long)worst, rss0, rss1);
    CHECK_EQ(served, rounds);
    CHECK(worst < 2000);
    CHECK(rss1 - rss0 < REL_N(256, 1024) * 1024);   /* bounded; per connection well under 1 MiB */
    for (int i = 0; i < nslow; i++) if (fds[i] >= 0) close(fds[i]);
    free(fds);
    CHECK_EQ(ts_req(c.s, "GET", "/healthz", NULL, NULL, &r), 200);
    resp_free(&r);
    testsrv_stop(c.s);
}

static bool healthy(void *arg)
{
    struct testsrv *s = arg;
    char buf[1024];
    return rel_raw(s->port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 0,
                   buf, sizeof buf, 1000) == 200;
}

/* Sends one byte of a header every ~100 ms (so the inactivity timeout never fires) until
 * the server closes the connection or deadline_ms passes; returns when it closed (ms since
 * the connection opened), or -1. */
static int64_t trickle_until_closed(int port, int64_t deadline_ms)
{
    int fd = rel_connect(port);
    if (fd < 0) return -1;
    int64_t t0 = th_now_ms(), closed = -1;
    const char *head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    bool alive = rel_send_all(fd, head, strlen(head));
    while (alive && th_now_ms() - t0 < deadline_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 100) > 0) {               /* EOF or reset: the server closed it */
            char b[64];
            if (recv(fd, b, sizeof b, 0) <= 0) break;
        }
        alive = rel_send_all(fd, "a", 1);
    }
    if (th_now_ms() - t0 < deadline_ms) closed = th_now_ms() - t0;
    close(fd);
    return closed;
}

TEST(t18_slowloris_closed_by_header_timeout)
{
    static const char *const extra[] = { "--header-timeout-ms", "600", NULL };
    struct testsrv *s = st_start_with(extra);
    const char *w = ts_token(s, "w", "worker");
    int64_t closed = trickle_until_closed(s->port, 6000);
    printf("  a header trickled byte by byte: closed after %lld ms (header timeout 600 ms)\n",
           (long long)closed);
    CHECK(closed >= 550);                        /* not before the deadline ... */
    CHECK(closed >= 0 && closed < 3000);         /* ... and soon after it */
    /* a request in flight is not on the header clock: a 1.5 s long-poll claim finishes */
    struct tsconn *c = tsconn_new(s);
    struct resp r;
    int64_t t0 = th_now_ms();
    CHECK_EQ(tsconn_req(c, "POST", "/v1/queues/hq/claim", w,
                        "{\"worker_id\":\"h\",\"wait_ms\":1500}", &r), 200);
    CHECK(th_now_ms() - t0 >= 1400);
    resp_free(&r);
    tsconn_free(c);
    CHECK_EQ(ts_req(s, "GET", "/healthz", NULL, NULL, &r), 200);
    resp_free(&r);
    testsrv_stop(s);
}

TEST(t18_past_max_connections_refuses_and_recovers)
{
    raise_nofile();
    static const char *const extra[] = { "--max-connections", "16", NULL };
    struct testsrv *s = st_start_with(extra);
    int fd0 = rel_fd_count(s->pid);
    int hogs[64], nh = 0;
    for (int i = 0; i < 64; i++) {
        hogs[i] = rel_connect(s->port);
        if (hogs[i] >= 0) {
            rel_send_all(hogs[i], "GET /healthz HTTP/1.1\r\n", 23);   /* and never finish */
            nh++;
        }
    }
    /* a fresh client: refused / closed / 503 quickly, never a hang */
    char buf[2048];
    int64_t t0 = th_now_ms();
    long st = rel_raw(s->port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 0,
                      buf, sizeof buf, 3000);
    int64_t dt = th_now_ms() - t0;
    int fd1 = rel_fd_count(s->pid);
    printf("  %d hogs on max 16: a new client got %ld in %lld ms; jobqd fds %d -> %d\n", nh, st,
           (long long)dt, fd0, fd1);
    CHECK(st == 0 || st == 503);
    CHECK(dt < 3000);
    CHECK(fd1 <= fd0 + 16 + 8);
    for (int i = 0; i < 64; i++) if (hogs[i] >= 0) close(hogs[i]);
    t0 = th_now_ms();
    CHECK(poll_until(healthy, s, 2000));
    printf("  back %lld ms after the hogs left\n", (long long)(th_now_ms() - t0));
    testsrv_stop(s);
}

TEST_MAIN()
