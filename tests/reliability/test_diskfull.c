/*
 * test_diskfull.c - RELIABILITY.md T9: a real ENOSPC. The database lives on a small tmpfs
 * (mounted in a private mount namespace, so it vanishes with the test even if the test
 * dies); a filler file takes the rest of the space. Then:
 *   - writes answer 507 storage_full (JSON error) - never a 2xx that was not stored;
 *   - reads (get, list, stats, logs) keep answering 200;
 *   - once the filler is gone, writes work again within 5 s, with no restart;
 *   - integrity_check ok, and every acknowledged job is still there after a kill -9.
 * Needs root (mount); without it the test says so and passes as skipped.
 */
#include "rel.h"

#include <sched.h>
#include <sys/mount.h>

static char *g_mnt;

/* A private mount namespace with a tmpfs of size_mb at a new dir; NULL if not allowed. */
static char *mount_small_tmpfs(int size_mb)
{
    char opts[32];
    char *dir = th_mkdtemp("tmpfs");
    snprintf(opts, sizeof opts, "size=%dm", size_mb);
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", dir, "tmpfs", 0, opts) != 0) {
        printf("  SKIPPED: cannot mount a tmpfs here (%s); T9 needs root and CAP_SYS_ADMIN\n",
               strerror(errno));
        free(dir);
        return NULL;
    }
    return dir;
}

/* Fills the file system of dir with path/filler until ENOSPC; returns bytes written. */
static long long fill(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    static char buf[1 << 16];
    memset(buf, 'F', sizeof buf);
    long long total = 0;
    for (;;) {
        ssize_t w = write(fd, buf, sizeof buf);
        if (w <= 0) break;
        total += w;
    }
    for (;;) {                           /* the last partial pages */
        ssize_t w = write(fd, buf, 512);
        if (w <= 0) break;
        total += w;
    }
    close(fd);
    return total;
}

enum { MAXJ = 4096 };
static char acked[MAXJ][TS_ID_MAX];
static int nacked;

static long create_big(struct testsrv *s, const char *tok, int seq, size_t pad, struct resp *r)
{
    char *body = malloc(pad + 256);
    int n = sprintf(body, "{\"type\":\"full\",\"dedup\":false,\"cache\":false,\"params\":{\"seq\":%d,"
                    "\"pad\":\"", seq);
    memset(body + n, 'a' + seq % 26, pad);
    strcpy(body + n + pad, "\"}}");
    long st = ts_req(s, "POST", "/v1/jobs", tok, body, r);
    if ((st == 201 || st == 200) && nacked < MAXJ && jstr(r->json, "id"))
        snprintf(acked[nacked++], TS_ID_MAX, "%s", jstr(r->json, "id"));
    free(body);
    return st;
}

static bool write_works(void *arg)
{
    struct testsrv *s = ((struct testsrv **)arg)[0];
    const char *tok = ((const char **)arg)[1];
    struct resp r;
    long st = create_big(s, tok, 7, 10, &r);
    resp_free(&r);
    return st == 201;
}

TEST(t9_disk_full_507_reads_go_on_writes_recover)
{
    g_mnt = mount_small_tmpfs(16);
    if (!g_mnt) return;
    char db[1024], filler[1024];
    snprintf(db, sizeof db, "%s/jobq.db", g_mnt);
    snprintf(filler, sizeof filler, "%s/filler", g_mnt);
    const char *extra[] = { "--db", db, "--active-limit", "0", NULL };
    struct testsrv_opts o = { .extra = extra };
    struct testsrv *s = testsrv_start(&o);
    free(s->db);
    s->db = strdup(db);                              /* restarts use the tmpfs too */
    const char *u = ts_token(s, "fay", "user"), *wk = ts_token(s, "wk", "worker");
    struct resp r;
    for (int i = 0; i < 20; i++) {
        REQUIRE_EQ(create_big(s, u, i, 1000, &r), 201);
        resp_free(&r);
    }
    char id[TS_ID_MAX], lease[TS_ID_MAX];            /* a processing job: a write we try later */
    REQUIRE(ts_claim1(s, wk, "default", id, lease));

    long long filled = fill(filler);
    printf("  filler: %lld bytes; the tmpfs is full\n", filled);
    CHECK(filled > 0);

    /* writes: 2xx until the WAL has no room left, then 507 storage_full */
    int i, n507 = 0, other = 0;
    int64_t t_first507 = 0;
    for (i = 0; i < 2000 && n507 < 5; i++) {
        long st = create_big(s, u, 100 + i, 32 * 1024, &r);
        if (st == 507) {
            if (!n507++) t_first507 = th_now_ms();
            CHECK_STR_EQ(st_code(&r), "storage_full");
            CHECK(!strncmp(r.content_type, "application/json", 16));
        } else if (st != 201) {
            if (other++ < 5) fprintf(stderr, "  create while full -> %ld %s\n", st, r.body);
        }
        resp_free(&r);
    }
    printf("  %d creates: %d acked in all, first 507 after %d, %d other replies\n", i, nacked,
           i - n507, other);
    CHECK_EQ(n507, 5);
    CHECK_EQ(other, 0);
    int64_t t_again = th_now_ms();                    /* still full: the next write is a 507 at once */
    CHECK_EQ(create_big(s, u, 9999, 32 * 1024, &r), 507);
    resp_free(&r);
    CHECK(th_now_ms() - t_again < 1000);
    (void)t_first507;
    char body[2048];
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"pad\":\"%01000d\"}}", lease, 0);
    long cst = st_post0(s, wk, id, "complete", body);
    CHECK(cst == 507 || cst == 200);                  /* a small write may still fit a WAL frame */

    /* liveness says so, without asking for a restart that would not help */
    CHECK_EQ(ts_req(s, "GET", "/healthz", NULL, NULL, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "degraded");
    CHECK_STR_EQ(jstr(r.json, "reason"), "storage_full");
    resp_free(&r);

    /* reads keep working */
    CHECK_EQ(ts_get(s, u, acked[0], &r), 200);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/v1/jobs?limit=5", u, NULL, &r), 200);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/v1/stats", s->admin, NULL, &r), 200);
    resp_free(&r);
    long h = ts_req(s, "GET", "/healthz", NULL, NULL, &r);
    printf("  /healthz while full: %ld %s\n", h, r.body);
    CHECK(h == 200 || h == 503);
    resp_free(&r);

    /* free the space: writes come back without a restart */
    pid_t pid = s->pid;
    REQUIRE_EQ(unlink(filler), 0);
    const void *arg[2] = { s, u };
    int64_t t0 = th_now_ms();
    bool back = poll_until(write_works, (void *)arg, 5000);
    printf("  writes back %lld ms after the space was freed\n", (long long)(th_now_ms() - t0));
    CHECK(back);
    CHECK_EQ(s->pid, pid);
    if (cst != 200) {                                 /* the lease still holds: finish it now */
        snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":1}", lease);
        CHECK_EQ(st_post0(s, wk, id, "complete", body), 200);
    }

    /* nothing acknowledged is lost, even across a crash */
    char *chk = th_mkdtemp("chk");
    testsrv_kill9(s);
    CHECK(rel_integrity_copy(db, chk));
    testsrv_restart(s);
    int missing = 0;
    for (int k = 0; k < nacked; k++) {
        long st = ts_get(s, u, acked[k], &r);
        missing += st != 200;
        resp_free(&r);
    }
    printf("  t9: %d acknowledged jobs checked after kill -9, %d lost\n", nacked, missing);
    CHECK_EQ(missing, 0);
    char status[32];
    st_field(s, u, id, "status", status, sizeof status);
    CHECK_STR_EQ(status, "completed");
    free(chk);
    testsrv_stop(s);
}

TEST_MAIN()
