/*
 * test_churn.c - RELIABILITY.md T12 (churn and damaged files):
 *   - churn: cycles of create N jobs, claim and complete them all, then retention cleanup
 *     (--retention-ms 1, run through /v1/admin/maintenance/cleanup). SQLite reuses freed
 *     pages, so the database (PRAGMA page_count) after cycle 3 must be at most 1.2x its
 *     size after cycle 1 (the event log is pruned too: --events-retention-ms 1000), and
 *     nothing may be left behind: 0 jobs, 0 containment terms, 0 edges, at most 1 event.
 *     Claim latency per cycle is printed (figures, not assertions). CI: 3 x 5,000 jobs;
 *     JQ_LONG=1: 3 x 333,334 (1M in all).
 *   - byte-flipped copies: the database header or the schema page damaged -> jobqd refuses
 *     to start with a clear error (exit 1, a log line naming the file), never a crash; bytes
 *     flipped anywhere else -> jobqd starts or refuses, and whatever it answers is JSON with
 *     a status (a corrupt page turns writes into 503 storage_failed), never a crash or a
 *     sanitizer report.
 */
#include "rel.h"

#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

enum { BATCH = 1000, CLAIM = 100 };

static long long file_bytes(const char *path, const char *suffix)
{
    char p[1100];
    snprintf(p, sizeof p, "%s%s", path, suffix);
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : 0;
}

static long long now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* n jobs in queue "churn" through the batch endpoint (params vary, so terms are made). */
static void fill(struct testsrv *s, const char *tok, int cycle, int n)
{
    size_t cap = (size_t)BATCH * 96 + 32;
    char *b = malloc(cap);
    REQUIRE(b != NULL);
    for (int done = 0; done < n;) {
        int k = n - done < BATCH ? n - done : BATCH;
        size_t len = (size_t)snprintf(b, cap, "{\"jobs\":[");
        for (int i = 0; i < k; i++)
            len += (size_t)snprintf(b + len, cap - len, "%s{\"type\":\"c\",\"queue\":\"churn\","
                                    "\"params\":{\"c\":%d,\"i\":%d}}", i ? "," : "", cycle,
                                    done + i);
        snprintf(b + len, cap - len, "]}");
        struct resp r;
        REQUIRE_EQ(ts_req(s, "POST", "/v1/jobs/batch", tok, b, &r), 201);
        resp_free(&r);
        done += k;
    }
    free(b);
}

/* Claims and completes every job of "churn" through /next; returns claim call latencies
 * (ms x 1000, malloc'd) in *lat, their number in *nlat; the jobs finished. */
static int drain(struct testsrv *s, const char *worker, long long **lat, int *nlat)
{
    int cap = 1024, finished = 0;
    *lat = malloc(sizeof **lat * (size_t)cap);
    *nlat = 0;
    char *body = malloc(64 * 1024);
    REQUIRE(*lat && body);
    snprintf(body, 64 * 1024, "{\"worker_id\":\"churn\",\"max\":%d}", CLAIM);
    for (;;) {
        struct resp r;
        long long t0 = now_us();
        REQUIRE_EQ(ts_req(s, "POST", "/v1/queues/churn/next", worker, body, &r), 200);
        if (*nlat == cap)
            REQUIRE((*lat = realloc(*lat, sizeof **lat * (size_t)(cap *= 2))) != NULL);
        (*lat)[(*nlat)++] = now_us() - t0;
        finished += (int)jint(r.json, "completed");
        json_t *jobs = jpath(r.json, "jobs");
        size_t n = json_array_size(jobs), len = 0;
        len += (size_t)snprintf(body + len, 64 * 1024 - len,
                                "{\"worker_id\":\"churn\",\"max\":%d,\"complete\":[", CLAIM);
        for (size_t i = 0; i < n; i++)
            len += (size_t)snprintf(body + len, 64 * 1024 - len,
                                    "%s{\"id\":\"%s\",\"lease_token\":\"%s\"}", i ? "," : "",
                                    jstr(json_array_get(jobs, i), "id"),
                                    jstr(json_array_get(jobs, i), "lease_token"));
        snprintf(body + len, 64 * 1024 - len, "]}");
        resp_free(&r);
        if (n == 0)
            break;
    }
    free(body);
    return finished;
}

static int64_t count_of(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* The database's size in pages as of its last commit (WAL frames included). */
static long long db_pages(const char *path)
{
    sqlite3 *db = NULL;
    long long n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK)
        n = count_of(db, "PRAGMA page_count");
    sqlite3_close(db);
    return n;
}

TEST(t12_churn_reuses_space_and_leaves_nothing)
{
    static const char *const extra[] = { "--retention-ms", "1", "--cleanup-interval-ms",
                                         "86400000", "--events-retention-ms", "1000", NULL };
    struct testsrv_opts o = { .real_clock = true, .extra = extra };
    th_set_timeout(REL_N(300, 3600));
    struct testsrv *s = testsrv_start(&o);
    const char *u = ts_token(s, "u", "user"), *w = ts_token(s, "w", "worker");
    int per = REL_N(5000, 333334);
    long long size[3];
    for (int cycle = 0; cycle < 3; cycle++) {
        int64_t t0 = th_now_ms();
        fill(s, u, cycle, per);
        long long *lat;
        int nlat;
        int finished = drain(s, w, &lat, &nlat);
        CHECK_EQ(finished, per);
        struct resp r;
        int64_t deleted = 0;
        do {                 /* poll: retention is 1 ms of the real clock */
            REQUIRE_EQ(ts_req(s, "POST", "/v1/admin/maintenance/cleanup", s->admin, NULL, &r),
                       200);
            deleted += jint(r.json, "rows");
            resp_free(&r);
        } while (deleted < per && th_now_ms() - t0 < 600000);
        CHECK_EQ(deleted, per);
        /* the event log (SSE) keeps --events-retention-ms (here 1 s) of changes */
        REQUIRE_EQ(ts_req(s, "POST", "/v1/admin/maintenance/events", s->admin, NULL, &r), 200);
        resp_free(&r);
        qsort(lat, (size_t)nlat, sizeof *lat, cmp_ll);
        size[cycle] = db_pages(s->db) * 4096;  /* WAL included, the WAL file's size not */
        printf("  cycle %d: %d jobs created, finished and cleaned up in %lld ms; /next p50 "
               "%.2f ms, p99 %.2f ms (%d calls); database %.1f MiB\n", cycle + 1, per,
               (long long)(th_now_ms() - t0), (double)lat[nlat / 2] / 1000,
               (double)lat[nlat * 99 / 100] / 1000, nlat, (double)size[cycle] / (1 << 20));
        free(lat);
    }
    CHECK(size[2] <= size[0] * 12 / 10);
    sqlite3 *db = NULL;
    REQUIRE_EQ(sqlite3_open_v2(s->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (int64_t end = th_now_ms() + 10000;
         count_of(db, "SELECT count(*) FROM events") > 1 && th_now_ms() < end;) {
        struct resp r;           /* the last second of events ages out; the newest stays */
        REQUIRE_EQ(ts_req(s, "POST", "/v1/admin/maintenance/events", s->admin, NULL, &r), 200);
        resp_free(&r);
        unsigned step = 0;
        th_nap(&step);
    }
    CHECK_EQ(count_of(db, "SELECT count(*) FROM jobs"), 0);
    CHECK_EQ(count_of(db, "SELECT count(*) FROM job_terms"), 0);
    CHECK_EQ(count_of(db, "SELECT count(*) FROM job_deps"), 0);
    CHECK(count_of(db, "SELECT count(*) FROM events") <= 1);   /* the newest is kept */
    sqlite3_close(db);
    testsrv_stop(s);
}

/* Starts jobqd on db; returns its pid, or 0 when it exited at once (*status set). */
static pid_t start_on(const char *db, const char *dir, int *status, int *port)
{
    char portf[1100], logf[1100];
    snprintf(portf, sizeof portf, "%s/port", dir);
    snprintf(logf, sizeof logf, "%s/jobqd.log", dir);
    unlink(portf);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, logf, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    char *av[] = { (char *)JOBQD_PATH, "--db", (char *)db, "--port", "0", "--port-file", portf,
                   "--host", "127.0.0.1", NULL };
    pid_t pid = 0;
    REQUIRE_EQ(posix_spawn(&pid, JOBQD_PATH, &fa, NULL, av, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    for (int64_t end = th_now_ms() + 20000; th_now_ms() < end;) {
        if (waitpid(pid, status, WNOHANG) == pid)
            return 0;
        FILE *f = fopen(portf, "r");
        if (f && fscanf(f, "%d", port) == 1 && *port > 0) {
            fclose(f);
            return pid;
        }
        if (f)
            fclose(f);
        unsigned step = 0;
        th_nap(&step);
    }
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    th_fail(__FILE__, __LINE__, "jobqd neither started nor exited within 20 s");
    return 0;
}

/* A status line and a JSON body from a raw request; 0 when the connection failed. */
static long probe(int port, const char *method, const char *path, const char *body)
{
    char req[1024], buf[65536];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s", method, path, TS_ADMIN_TOKEN,
                     body ? strlen(body) : 0, body ? body : "");
    long st = rel_raw(port, req, (size_t)n, buf, sizeof buf, 10000);
    if (st > 0)
        CHECK(rel_body(buf) && (rel_body(buf)[0] == '{' || rel_body(buf)[0] == '\0'));
    return st;
}

/* Flips count bytes at offsets from off (stride apart) in path. */
static void flip(const char *path, long long off, int count, long long stride)
{
    int fd = open(path, O_RDWR);
    REQUIRE(fd >= 0);
    for (int i = 0; i < count; i++) {
        unsigned char c;
        off_t at = (off_t)(off + i * stride);
        if (pread(fd, &c, 1, at) == 1) {
            c ^= 0x5a;
            REQUIRE_EQ(pwrite(fd, &c, 1, at), 1);
        }
    }
    close(fd);
}

static void ends_clean(pid_t pid, int *status)
{
    if (pid) {
        kill(pid, SIGTERM);
        waitpid(pid, status, 0);
    }
    CHECK(WIFEXITED(*status));            /* never a signal: no crash, no sanitizer abort */
}

TEST(t12_byte_flipped_copies_never_crash)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *u = ts_token(s, "u", "user");
    fill(s, u, 0, 3000);
    REQUIRE_EQ(testsrv_term(s), 0);               /* clean stop: everything checkpointed */
    long long size = file_bytes(s->db, "");
    REQUIRE(size > 64 * 4096);
    char *dir = th_mkdtemp("flip");
    char copy[1100];
    snprintf(copy, sizeof copy, "%s/jobq.db", dir);
    setenv("JOBQ_ADMIN_TOKEN", TS_ADMIN_TOKEN, 1);
    struct { const char *what; long long off; int count; long long stride; bool refuse; } c[] = {
        { "header magic", 0, 4, 1, true },
        { "page size and schema page", 16, 64, 61, true },
        { "a page in the middle", 0, 32, 127, false },
        { "scattered over the file", 4096 * 2, 64, 0, false },
    };
    int refused = 0, started = 0;
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        REQUIRE(rel_copy(s->db, copy));
        long long off = c[i].off, stride = c[i].stride;
        if (i == 2) off = (size / 4096 / 2) * 4096 + 100;
        if (i == 3) stride = (size - off) / 64;
        flip(copy, off, c[i].count, stride);
        int status = 0, port = 0;
        pid_t pid = start_on(copy, dir, &status, &port);
        if (pid) {
            started++;
            probe(port, "GET", "/v1/jobs?limit=1000", NULL);
            probe(port, "GET", "/v1/stats", NULL);
            probe(port, "POST", "/v1/jobs", "{\"type\":\"t\",\"queue\":\"q\"}");
            probe(port, "GET", "/v1/jobs?params=%7B%22i%22%3A5%7D", NULL);
            CHECK(kill(pid, 0) == 0);             /* still serving */
        } else {
            refused++;
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
        }
        if (c[i].refuse && !CHECK(pid == 0))
            fprintf(stderr, "  %s: jobqd started on a damaged header\n", c[i].what);
        ends_clean(pid, &status);
        printf("  %s: %s\n", c[i].what, pid ? "started, answered JSON, stopped cleanly"
                                             : "refused to start (exit 1)");
        unlink(copy);
        char side[1200];
        snprintf(side, sizeof side, "%s-wal", copy);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", copy);
        unlink(side);
    }
    printf("  byte-flipped copies: %d refused, %d started; 0 crashes\n", refused, started);
    th_rmrf(dir);
    free(dir);
    testsrv_stop(s);
}

TEST_MAIN()
