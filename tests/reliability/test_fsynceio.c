/*
 * test_fsynceio.c - RELIABILITY.md T10: fsync EIO is fail-stop, and random I/O faults
 * never crash jobqd or lose an acknowledged job.
 *
 * jobqd runs under libfiu's POSIX preload (what `fiu-run -x` does), started without
 * faults; the test arms them at run time through libfiu's control FIFO (`fiu-ctrl`).
 * Producers create keyed jobs (Idempotency-Key, retried until answered) and workers
 * claim and complete them, every request logged in the ledger (ledger.h).
 *
 * t10_fsync_eio_fail_stop: EIO on posix/io/sync/fdatasync and posix/io/sync/fsync (SQLite
 * syncs its WAL with fdatasync) while producers create jobs. No write sent after the fault
 * was armed is acknowledged; the failures are 503 storage_failed (JSON); once the disk is
 * healthy again jobqd still refuses every write (fail-stop, as PostgreSQL PANICs after a
 * failed fsync) while reads go on and /healthz and /readyz say so. After kill -9 and a
 * restart without the fault: integrity_check ok, and the final drain finds lost 0,
 * dup_created 0, completed_twice 0, overlap 0, unexpected 0.
 *
 * t10_random_io_faults: enable_random of every posix/io/ point, probability 0.002 (files,
 * sockets, poll, short reads and writes), one libfiu seed per round; a round ends at fail-stop or
 * after its share of requests, then the fault is disarmed and jobqd must still be alive
 * and exit 0 on SIGTERM (no crash, no ASan/UBSan/LSan report); integrity ok. Every
 * failed request is a 5xx with a JSON error or a transport error (the socket itself
 * failed); the ledger after the drain: lost 0 and no anomaly.
 * CI: 3 seeds x 500 requests; JQ_LONG=1: 20 seeds x 10,000 requests (JQ_T10_SEEDS=A-B runs
 * seeds A..B only: the long tier in parallel parts).
 *
 * Needs fiu-utils (scripts/deps.sh); without /usr/lib/fiu both tests say SKIPPED and pass.
 */
#include "rel.h"
#include "ledger.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

/* ------------------------------------------------------------------ libfiu */

#define FIU_LIB "/usr/lib/fiu"
enum { FIU_CMD_MS = 10000 };     /* a control command is answered well within this */

static char g_fifo[1024];        /* control FIFO prefix; libfiu appends -<pid>.in/.out */

static bool fiu_installed(void)
{
    if (access(FIU_LIB "/fiu_posix_preload.so", R_OK) == 0 &&
        access(FIU_LIB "/fiu_run_preload.so", R_OK) == 0)
        return true;
    printf("  SKIPPED: libfiu is not installed (%s; scripts/deps.sh adds fiu-utils)\n", FIU_LIB);
    return false;
}

/* Makes the next jobqd start under libfiu (until fiu_env_clear): the ASan runtime first in
 * LD_PRELOAD, or libfiu's malloc wrapper runs before it resolved the real malloc and
 * calls NULL; libfiu's run and POSIX preloads; the control FIFO; the PRNG seed. */
static void fiu_env_set(unsigned seed)
{
    char asan[512], pre[1200], sd[32], opts[1024];
    rel_asan_runtime(asan, sizeof asan);
    snprintf(pre, sizeof pre, "%s%s" FIU_LIB "/fiu_run_preload.so " FIU_LIB
             "/fiu_posix_preload.so", asan, asan[0] ? " " : "");
    snprintf(sd, sizeof sd, "%u", seed);
    const char *old = getenv("ASAN_OPTIONS");
    if (!old || !strstr(old, "verify_asan_link_order=0")) {
        snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", old ? old : "",
                 old && *old ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    }
    setenv("LD_PRELOAD", pre, 1);
    setenv("FIU_CTRL_FIFO", g_fifo, 1);
    setenv("FIU_ENABLE", "", 1);
    setenv("FIU_PRNG_SEED", sd, 1);
}

static void fiu_env_clear(void)
{
    unsetenv("LD_PRELOAD");
    unsetenv("FIU_CTRL_FIFO");
    unsetenv("FIU_ENABLE");
    unsetenv("FIU_PRNG_SEED");
}

/* One control command to jobqd pid (as fiu-ctrl does: a line into <prefix>-<pid>.in, the
 * answer from .out). Returns libfiu's answer (0 = done) or -2 if none came in time. */
static int fiu_cmd1(pid_t pid, const char *cmd)
{
    char in[1100], out[1100], line[256], ans[32] = "";
    snprintf(in, sizeof in, "%s-%d.in", g_fifo, (int)pid);
    snprintf(out, sizeof out, "%s-%d.out", g_fifo, (int)pid);
    snprintf(line, sizeof line, "%s\n", cmd);
    int64_t dl = th_now_ms() + FIU_CMD_MS;
    unsigned step = 0;
    int fd;
    while ((fd = open(in, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0 && th_now_ms() < dl)
        th_nap(&step);              /* ENXIO: libfiu's thread is between two commands */
    if (fd < 0) return -2;
    bool sent = write(fd, line, strlen(line)) == (ssize_t)strlen(line);
    close(fd);
    int rfd = sent ? open(out, O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1;
    if (rfd < 0) return -2;
    size_t n = 0;
    while (n + 1 < sizeof ans && !memchr(ans, '\n', n)) {
        int64_t left = dl - th_now_ms();
        struct pollfd p = { .fd = rfd, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) break;
        ssize_t r = read(rfd, ans + n, sizeof ans - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
        ans[n] = '\0';
    }
    close(rfd);
    return memchr(ans, '\n', n) ? atoi(ans) : -2;
}

/* fiu_cmd1, retried: under random I/O faults libfiu's own FIFO reads can fail too. */
static int fiu_cmd(pid_t pid, const char *cmd)
{
    int rc = -2;
    for (int i = 0; i < 5 && rc != 0; i++)
        rc = fiu_cmd1(pid, cmd);
    return rc;
}

/* ------------------------------------------------------------------ load and ledger */

enum { LEASE_MS = 30000, NPROD = 4, NWORK = 2 };

struct run {
    struct testsrv *s;
    struct ledger *lg;
    const char *user, *worker;
    pthread_rwlock_t lk;          /* readers: requests; writer: a restart (s->url changes) */
    int jobs;                     /* keys in all; producer i creates keys i, i+NPROD, ... */
    atomic_int producers_left;
    atomic_bool workers_stop;
    atomic_long acked, completed, requests;
    atomic_long fail_json5xx;     /* 5xx replies with a JSON error code */
    atomic_long fail_transport;   /* no HTTP answer (a socket fault, or jobqd gone) */
    atomic_long fail_bad;         /* anything else: a 4xx, a 5xx without a JSON error */
    atomic_long storage_failed;   /* 503 storage_failed replies */
    atomic_long ok_after_fault;   /* 2xx to a write sent after the deterministic fault */
    _Atomic int64_t fault_ms;     /* th_now_ms() when EIO was armed, 0 = not armed */
};

static long run_do(struct run *w, struct tsconn *c, const struct ts_http *rq, struct resp *r)
{
    pthread_rwlock_rdlock(&w->lk);
    int64_t sent = th_now_ms();
    long st = tsconn_do(c, rq, r);
    pthread_rwlock_unlock(&w->lk);
    atomic_fetch_add(&w->requests, 1);
    int64_t f = atomic_load(&w->fault_ms);
    if (st >= 200 && st < 300) {
        /* an acknowledged write: a create, a complete, a claim that leased a job */
        bool wrote = !strstr(rq->path, "/claim") || json_array_size(jpath(r->json, "jobs"));
        if (f && sent > f && wrote) atomic_fetch_add(&w->ok_after_fault, 1);
        return st;
    }
    const char *code = jstr(r->json, "error.code");
    if (st == 0) {
        atomic_fetch_add(&w->fail_transport, 1);
    } else if (st >= 500 && code) {
        atomic_fetch_add(&w->fail_json5xx, 1);
        if (st == 503 && !strcmp(code, "storage_failed"))
            atomic_fetch_add(&w->storage_failed, 1);
    } else if (st != 409 || strcmp(rq->path + strlen(rq->path) - 9, "/complete")) {
        if (atomic_fetch_add(&w->fail_bad, 1) < 5)
            fprintf(stderr, "  bad failure: %s %s -> %ld %.200s\n", rq->method, rq->path, st,
                    r->body);
    }
    return st;
}

static bool transient(long st)
{
    return st == 0 || st >= 500;
}

static void backoff(unsigned *step)
{
    th_nap(step);
    if (*step > 50000) *step = 50000;
}

struct prod { struct run *w; int idx; };

static void *producer(void *arg)
{
    struct prod *p = arg;
    struct run *w = p->w;
    struct tsconn *c = tsconn_new(w->s);
    for (int i = p->idx; i < w->jobs; i += NPROD) {
        char key[32], hdr[64], body[256];
        snprintf(key, sizeof key, "k%06d", i);
        snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key);
        snprintf(body, sizeof body, "{\"type\":\"eio\",\"queue\":\"eq\",\"dedup\":false,"
                 "\"cache\":false,\"max_attempts\":100,\"params\":{\"key\":\"%s\"}}", key);
        const char *h[] = { hdr, NULL };
        struct ts_http rq = { .method = "POST", .path = "/v1/jobs", .token = w->user,
                              .body = body, .headers = h };
        unsigned step = 0;
        for (;;) {
            struct resp r;
            long st = run_do(w, c, &rq, &r);
            if (st == 201 || st == 200) {
                ledger_create(w->lg, key, LG_OK, st, jstr(r.json, "id"));
                atomic_fetch_add(&w->acked, 1);
                resp_free(&r);
                break;
            }
            ledger_create(w->lg, key, transient(st) ? LG_UNKNOWN : LG_FAIL, st, NULL);
            resp_free(&r);
            if (!transient(st)) break;
            backoff(&step);
        }
    }
    tsconn_free(c);
    atomic_fetch_sub(&w->producers_left, 1);
    return NULL;
}

/* Completes job id under lease, retrying unknowns with the same Idempotency-Key. */
static void complete_one(struct run *w, struct tsconn *c, const char *id, const char *lease,
                         const char *key)
{
    char path[128], hdr[160], body[256];
    snprintf(path, sizeof path, "/v1/jobs/%s/complete", id);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: c-%s-%s", id, lease);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"key\":\"%s\"}}", lease,
             key);
    const char *h[] = { hdr, NULL };
    struct ts_http rq = { .method = "POST", .path = path, .token = w->worker, .body = body,
                          .headers = h };
    unsigned step = 0;
    for (;;) {
        struct resp r;
        long st = run_do(w, c, &rq, &r);
        bool replayed = !strcmp(r.replayed, "true");
        resp_free(&r);
        if (st == 200) {
            ledger_complete(w->lg, id, lease, LG_OK, st, replayed);
            atomic_fetch_add(&w->completed, 1);
            return;
        }
        ledger_complete(w->lg, id, lease, transient(st) ? LG_UNKNOWN : LG_FAIL, st, false);
        if (!transient(st)) return;      /* 409: the lease is gone; the ledger judges it */
        backoff(&step);
    }
}

/* One claim round (up to max jobs), each completed; returns the jobs claimed, -1 on a
 * transient failure. */
static int work_round(struct run *w, struct tsconn *c, const char *wid, int max, int wait_ms)
{
    char body[128];
    snprintf(body, sizeof body, "{\"worker_id\":\"%s\",\"max\":%d,\"lease_ms\":%d,"
             "\"wait_ms\":%d}", wid, max, LEASE_MS, wait_ms);
    struct ts_http rq = { .method = "POST", .path = "/v1/queues/eq/claim", .token = w->worker,
                          .body = body };
    struct resp r;
    long st = run_do(w, c, &rq, &r);
    if (st != 200) {
        resp_free(&r);
        return transient(st) ? -1 : 0;
    }
    json_t *jobs = jpath(r.json, "jobs");
    size_t n = json_array_size(jobs);
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_array_get(jobs, i);
        int64_t to = ts_parse_time(jstr(j, "lease_expires_at"));
        ledger_claim(w->lg, jstr(j, "id"), jstr(j, "lease_token"), to - LEASE_MS, to);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_array_get(jobs, i);
        const char *key = jstr(j, "params.key");
        complete_one(w, c, jstr(j, "id"), jstr(j, "lease_token"), key ? key : "");
    }
    resp_free(&r);
    return (int)n;
}

struct wk { struct run *w; int idx; };

static void *worker(void *arg)
{
    struct wk *k = arg;
    struct tsconn *c = tsconn_new(k->w->s);
    char wid[32];
    snprintf(wid, sizeof wid, "w%d", k->idx);
    unsigned step = 0;
    while (!atomic_load(&k->w->workers_stop)) {
        int n = work_round(k->w, c, wid, 10, 100);
        if (n > 0) step = 0;
        else backoff(&step);
    }
    tsconn_free(c);
    return NULL;
}

static pthread_t g_pt[NPROD], g_wt[NWORK];
static struct prod g_pp[NPROD];
static struct wk g_ww[NWORK];

static void run_init(struct run *w, struct testsrv *s, int jobs)
{
    memset(w, 0, sizeof *w);
    w->s = s;
    w->jobs = jobs;
    w->user = ts_token(w->s, "eve", "user");
    w->worker = ts_token(w->s, "wrk", "worker");
    char logp[1024];
    snprintf(logp, sizeof logp, "%s/ledger.jsonl", th_tmproot());
    w->lg = ledger_new(logp);
    pthread_rwlockattr_t at;
    pthread_rwlockattr_init(&at);
    pthread_rwlockattr_setkind_np(&at, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&w->lk, &at);
    atomic_store(&w->producers_left, NPROD);
}

static void run_threads(struct run *w)
{
    for (int i = 0; i < NPROD; i++) {
        g_pp[i] = (struct prod){ w, i };
        REQUIRE_EQ(pthread_create(&g_pt[i], NULL, producer, &g_pp[i]), 0);
    }
    for (int i = 0; i < NWORK; i++) {
        g_ww[i] = (struct wk){ w, i };
        REQUIRE_EQ(pthread_create(&g_wt[i], NULL, worker, &g_ww[i]), 0);
    }
}

static int64_t admin_int(struct testsrv *s, const char *path, const char *field)
{
    struct resp r;
    long st = ts_req(s, "GET", path, s->admin, NULL, &r);
    int64_t v = st == 200 ? jint(r.json, field) : INT64_MIN;
    resp_free(&r);
    return v;
}

static bool stats_idle(struct testsrv *s)
{
    return admin_int(s, "/v1/stats", "counts.pending") == 0;
}

/* Joins the producers, waits for the workers to empty the queue, stops them, then rescues
 * orphaned leases (claims whose reply was a 5xx) by moving the fake clock, drains what is
 * left and runs the ledger checker. */
static struct lg_counts run_finish(struct run *w, const char *label, long *listed)
{
    for (int i = 0; i < NPROD; i++) pthread_join(g_pt[i], NULL);
    WAIT_FOR(stats_idle(w->s), REL_N(60000, 600000));
    atomic_store(&w->workers_stop, true);
    for (int i = 0; i < NWORK; i++) pthread_join(g_wt[i], NULL);
    struct tsconn *c = tsconn_new(w->s);
    for (int round = 0; round < 10; round++) {
        int64_t open = admin_int(w->s, "/v1/stats", "counts.pending") +
                       admin_int(w->s, "/v1/stats", "counts.processing");
        if (open == 0) break;
        CHECK_EQ(ts_advance(w->s, 2 * 3600 * 1000), 200);
        CHECK_EQ(ts_advance(w->s, 2 * 3600 * 1000), 200);
        while (work_round(w, c, "drain", 100, 0) > 0) {}
    }
    tsconn_free(c);
    CHECK_EQ(admin_int(w->s, "/v1/stats", "counts.processing"), 0);
    CHECK_EQ(admin_int(w->s, "/v1/stats", "counts.pending"), 0);
    *listed = rel_final_list(w->s, w->lg, "");
    struct lg_counts lc = ledger_check(w->lg, stderr, 10);
    ledger_print(&lc, stdout, label);
    return lc;
}

static void check_ledger(const struct lg_counts *lc, int jobs, long listed)
{
    CHECK_EQ(listed, jobs);
    CHECK_EQ(lc->acked, jobs);
    CHECK_EQ(lc->lost, 0);
    CHECK_EQ(lc->dup_created, 0);
    CHECK_EQ(lc->completed_twice, 0);
    CHECK_EQ(lc->overlap, 0);
    CHECK_EQ(lc->unexpected, 0);
}

/* Restarts jobqd (kill -9 when still running, so the WAL stays as the failure left it)
 * with the environment as it is now; integrity_check of the files first. */
static bool crash_restart(struct run *w, const char *chk)
{
    pthread_rwlock_wrlock(&w->lk);
    testsrv_kill9(w->s);
    bool ok = rel_integrity_copy(w->s->db, chk);
    testsrv_restart(w->s);
    pthread_rwlock_unlock(&w->lk);
    return ok;
}

/* ------------------------------------------------------------------ T10: EIO on sync */

static const char *code_of(struct testsrv *s, const char *method, const char *path,
                           const char *tok, const char *body, long *st, char *buf, size_t cap)
{
    struct resp r;
    *st = ts_req(s, method, path, tok, body, &r);
    snprintf(buf, cap, "%s", jstr(r.json, "error.code") ? jstr(r.json, "error.code")
                             : jstr(r.json, "status") ? jstr(r.json, "status") : "");
    resp_free(&r);
    return buf;
}

static bool readyz_failed(void *arg)
{
    char code[64];
    long st;
    code_of(arg, "GET", "/readyz", NULL, NULL, &st, code, sizeof code);
    return st == 503 && !strcmp(code, "storage_failed");
}

struct grow { struct run *w; long from, by; };

static bool failures_grew(void *arg)
{
    struct grow *g = arg;
    return atomic_load(&g->w->storage_failed) >= g->from + g->by;
}

/* While fail-stopped and the disk healthy again: writes 503, reads 200, health says so. */
static void check_fail_stopped(struct run *w, const char *acked_id)
{
    struct testsrv *s = w->s;
    char code[64];
    long st;
    code_of(s, "POST", "/v1/jobs", w->user, "{\"type\":\"after\",\"dedup\":false}", &st, code,
            sizeof code);
    CHECK_EQ(st, 503);
    CHECK_STR_EQ(code, "storage_failed");
    code_of(s, "POST", "/v1/queues/eq/claim", w->worker, "{\"worker_id\":\"x\",\"max\":1}", &st,
            code, sizeof code);
    CHECK_EQ(st, 503);
    CHECK_STR_EQ(code, "storage_failed");
    code_of(s, "POST", "/v1/tokens", s->admin, "{\"user_id\":\"z\",\"role\":\"user\"}", &st,
            code, sizeof code);
    CHECK_EQ(st, 503);
    struct resp r;
    CHECK_EQ(ts_get(s, w->user, acked_id, &r), 200);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/v1/jobs?limit=5", w->user, NULL, &r), 200);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/v1/stats", s->admin, NULL, &r), 200);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/healthz", NULL, NULL, &r), 503);
    CHECK_STR_EQ(jstr(r.json, "status"), "failed");
    CHECK_STR_EQ(jstr(r.json, "reason"), "storage_failed");
    resp_free(&r);
    CHECK(readyz_failed(s));
}

static char g_first_id[TS_ID_MAX];

static bool first_acked(void *arg)
{
    struct run *w = arg;
    struct resp r;
    long st = ts_req(w->s, "GET", "/v1/jobs?limit=1&order=asc", w->user, NULL, &r);
    const char *id = st == 200 ? jstr(r.json, "jobs.0.id") : NULL;
    if (id) snprintf(g_first_id, sizeof g_first_id, "%s", id);
    resp_free(&r);
    return id != NULL;
}

static bool acked_at_least(void *arg)
{
    struct grow *g = arg;
    return atomic_load(&g->w->acked) >= g->by;
}

TEST(t10_fsync_eio_fail_stop)
{
    if (!fiu_installed()) return;
    int jobs = REL_N(1500, 10000);
    th_set_timeout(REL_N(240, 1800));
    snprintf(g_fifo, sizeof g_fifo, "%s/fiu", th_tmproot());
    fiu_env_set(1);
    struct run w;
    struct testsrv *s = testsrv_start(NULL);
    fiu_env_clear();                                 /* restarts run without libfiu */
    run_init(&w, s, jobs);
    char *chk = th_mkdtemp("integrity");
    int64_t t0 = th_now_ms();
    run_threads(&w);

    struct grow third = { &w, 0, jobs / 3 };
    REQUIRE(poll_until(acked_at_least, &third, 60000));
    REQUIRE(poll_until(first_acked, &w, 5000));
    REQUIRE_EQ(fiu_cmd(s->pid, "enable name=posix/io/sync/fdatasync,failinfo=5"), 0);
    REQUIRE_EQ(fiu_cmd(s->pid, "enable name=posix/io/sync/fsync,failinfo=5"), 0);
    int64_t t_fault = th_now_ms();
    atomic_store(&w.fault_ms, t_fault);
    long acked_before = atomic_load(&w.acked);

    /* the first failed sync stops writes; /readyz says so */
    CHECK(poll_until(readyz_failed, s, 10000));
    int64_t t_stop = th_now_ms();
    /* the disk is healthy again: jobqd must still refuse writes until restarted */
    REQUIRE_EQ(fiu_cmd(s->pid, "disable name=posix/io/sync/fdatasync"), 0);
    REQUIRE_EQ(fiu_cmd(s->pid, "disable name=posix/io/sync/fsync"), 0);
    struct grow more = { &w, atomic_load(&w.storage_failed), 40 };
    CHECK(poll_until(failures_grew, &more, 10000));
    check_fail_stopped(&w, g_first_id);
    long refused = atomic_load(&w.storage_failed), acked_stopped = atomic_load(&w.acked);
    printf("  t10: EIO armed after %ld acked; fail-stop seen %lld ms later; %ld writes "
           "refused with 503 storage_failed; %ld more acked (sent before the fault)\n",
           acked_before,
           (long long)(t_stop - t_fault), refused, acked_stopped - acked_before);

    /* restart without the fault: everything acknowledged is there */
    int integrity = crash_restart(&w, chk);
    CHECK(integrity);
    atomic_store(&w.fault_ms, 0);
    struct resp r;
    CHECK_EQ(ts_req(s, "GET", "/readyz", NULL, NULL, &r), 200);
    resp_free(&r);
    long listed;
    struct lg_counts lc = run_finish(&w, "t10", &listed);
    CHECK(rel_integrity_copy(s->db, chk));
    printf("  t10: %d jobs, %ld requests, %ld acked before the fault, 2xx after it %ld, "
           "failures: %ld 5xx JSON, %ld transport, %ld other; integrity %s; %.1f s\n", jobs,
           atomic_load(&w.requests), acked_before, atomic_load(&w.ok_after_fault),
           atomic_load(&w.fail_json5xx), atomic_load(&w.fail_transport),
           atomic_load(&w.fail_bad), integrity ? "ok" : "FAILED",
           (double)(th_now_ms() - t0) / 1000);
    CHECK_EQ(atomic_load(&w.ok_after_fault), 0);
    CHECK(refused >= 40);
    CHECK_EQ(atomic_load(&w.fail_bad), 0);
    check_ledger(&lc, jobs, listed);
    ledger_free(w.lg);
    free(chk);
    testsrv_stop(s);
}

/* ------------------------------------------------------------------ T10: random faults */

struct round { struct run *w; long req0, want, failed0; pid_t pid; };

/* A round is over when jobqd fail-stopped, served its share, or is gone. */
static bool round_over(void *arg)
{
    struct round *rd = arg;
    return atomic_load(&rd->w->storage_failed) > rd->failed0 ||
           atomic_load(&rd->w->requests) - rd->req0 >= rd->want ||
           waitpid(rd->pid, NULL, WNOHANG) == rd->pid;
}

TEST(t10_random_io_faults)
{
    if (!fiu_installed()) return;
    int seeds = REL_N(3, 20), per_seed = REL_N(500, 10000), jobs = REL_N(1000, 100000);
    int first = 1;
    const char *range = getenv("JQ_T10_SEEDS");     /* "A-B": only seeds A..B, so the long
                                                      * tier can run in parallel halves */
    if (range && sscanf(range, "%d-%d", &first, &seeds) != 2)
        first = 1, seeds = REL_N(3, 20);
    th_set_timeout(REL_N(300, 6000));
    snprintf(g_fifo, sizeof g_fifo, "%s/fiu", th_tmproot());
    struct testsrv *s = testsrv_start(NULL);
    struct run w;
    run_init(&w, s, jobs);
    char *chk = th_mkdtemp("integrity");
    int64_t t0 = th_now_ms();
    int rounds = 0, crashes = 0, integrity_ok = 0, stops = 0, unarmed = 0;
    run_threads(&w);
    /* jobqd is down only inside the lock: every round ends with the next one's start */
    pthread_rwlock_wrlock(&w.lk);
    CHECK_EQ(testsrv_term(s), 0);
    fiu_env_set(1000);
    testsrv_restart(s);
    fiu_env_clear();
    pthread_rwlock_unlock(&w.lk);
    for (int seed = first; seed <= seeds; seed++) {
        long seed_req0 = atomic_load(&w.requests);
        for (int k = 1;; k++) {
            pid_t pid = s->pid;
            REQUIRE_EQ(fiu_cmd(pid, "enable_random name=posix/io/*,probability=0.002"), 0);
            struct round rd = { &w, atomic_load(&w.requests), per_seed / 4,
                                atomic_load(&w.storage_failed), pid };
            CHECK(poll_until(round_over, &rd, 60000));
            rounds++;
            stops += atomic_load(&w.storage_failed) > rd.failed0;
            /* disarm; jobqd must be alive and shut down cleanly; then the next round */
            pthread_rwlock_wrlock(&w.lk);
            bool alive = kill(pid, 0) == 0 && waitpid(pid, NULL, WNOHANG) == 0;
            if (alive && fiu_cmd(pid, "disable name=posix/io/*") != 0) {
                unarmed++;                           /* cannot disarm: a crash test only */
                testsrv_kill9(s);
            } else if (!alive || testsrv_term(s) != 0) {
                crashes++;
                fprintf(stderr, "  seed %d round %d: jobqd %s\n", seed, k,
                        alive ? "did not exit 0 on SIGTERM" : "died");
                testsrv_dump_log(s);
            }
            s->pid = 0;
            integrity_ok += rel_integrity_copy(s->db, chk);
            bool done = atomic_load(&w.requests) - seed_req0 >= per_seed;
            if (!crashes && !(done && seed == seeds))
                fiu_env_set((unsigned)(seed * 1000 + k));
            testsrv_restart(s);                      /* the last one without libfiu */
            fiu_env_clear();
            pthread_rwlock_unlock(&w.lk);
            if (crashes || done) break;
        }
        printf("  seed %d: %ld requests, %d rounds so far, %d fail-stops, %d crashes\n", seed,
               atomic_load(&w.requests) - seed_req0, rounds, stops, crashes);
        if (crashes) break;
    }
    long listed;
    struct lg_counts lc = run_finish(&w, "t10-random", &listed);
    printf("  t10-random: seeds %d-%d, %d rounds (%d fail-stops, %d not disarmable), %ld "
           "requests, failures: %ld 5xx JSON (%ld storage_failed), %ld transport, %ld other; "
           "jobqd logged %ld SQLite errors, %ld MHD poll errors; %d crashes; integrity ok "
           "%d/%d; %.1f s\n", first, seeds, rounds, stops, unarmed, atomic_load(&w.requests),
           atomic_load(&w.fail_json5xx), atomic_load(&w.storage_failed),
           atomic_load(&w.fail_transport), atomic_load(&w.fail_bad),
           rel_log_count(s, " sqlite: "), rel_log_count(s, "poll"), crashes, integrity_ok, rounds,
           (double)(th_now_ms() - t0) / 1000);
    CHECK_EQ(crashes, 0);
    CHECK_EQ(integrity_ok, rounds);
    CHECK_EQ(atomic_load(&w.fail_bad), 0);
    CHECK(atomic_load(&w.fail_json5xx) > 0);
    check_ledger(&lc, jobs, listed);
    ledger_free(w.lg);
    free(chk);
    testsrv_stop(s);
}

TEST_MAIN()
