/*
 * test_powerloss.c - RELIABILITY.md T2: power loss through the lazy VFS.
 *
 * jobqd runs with `--test-vfs lazy` (src/store/sqlite/sq_lazyvfs.c, test builds only):
 * every write since a file's last xSync stays in jobqd's memory, so SIGKILL loses
 * exactly what no fsync covered - a power loss. Deleting the -shm before the restart
 * (as a reboot would) makes SQLite recover from the WAL that reached the disk.
 *
 * One run: a fresh jobqd makes a durable baseline (schema, tokens; default VFS, clean
 * stop), restarts on the lazy VFS; producers create keyed jobs (Idempotency-Key) and
 * workers claim and complete them; jobqd is killed -9 at a random moment; -shm removed;
 * PRAGMA integrity_check on a copy of what is on disk; restart on the default VFS. Then:
 * every acknowledged create must be listed (lost_create) and every acknowledged complete
 * must be completed (lost_complete); after a drain the ledger checker (ledger.h) counts
 * lost / dup_created / completed_twice / unexpected.
 *
 *   FULL   (the default): runs CI 8 / JQ_LONG=1 200; lost 0 and integrity ok in all.
 *   quiet pair: 20 creates, kill -9 right after the last ack: FULL loses none; NORMAL
 *          (the teeth check) must lose some, or the harness could not see a power loss.
 *   NORMAL under load: runs CI 3 / JQ_LONG=1 20; integrity only, losses reported.
 *   torn (FULL): runs CI 6 / JQ_LONG=1 200 of the same load on `--test-vfs torn:N:SEED`:
 *          no kill -9, jobqd cuts its own power at its Nth xSync (N random per run),
 *          writing a seeded random subset of that sync's pending 512-byte sectors first
 *          (the WAL's tail, or the database's during a checkpoint), then _exit(99). The
 *          replies covered by that sync were never sent, so again nothing acknowledged
 *          may be lost and integrity must hold: WAL checksums hide the torn tail. A run
 *          whose N lies past the load's end is killed -9 at the deadline instead (counted).
 */
#include "rel.h"
#include "ledger.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

enum { LEASE_MS = 30000, NPROD = 3, NWORK = 2, TORN_EXIT = 99 /* sq_lazyvfs.c */ };

struct pl {
    struct testsrv *s;
    struct ledger *lg;
    const char *user, *worker;
    int run, jobs;                /* jobs: per producer, at most */
    atomic_bool stop;
    pthread_mutex_t mu;
    json_t *acked;                /* id -> key of each 2xx create */
    json_t *done;                 /* id -> lease of each 200 complete */
};

struct pl_out {
    long acked, done, lost_create, lost_complete;
    struct lg_counts lc;
    bool integrity;
    bool torn;                    /* torn mode: jobqd cut its power at sync N (not killed) */
    long torn_wrote, torn_pending; /* sectors of that sync written / pending */
    bool torn_wal;                /* the torn sync was the WAL's (else the database's) */
};

/* How a run's power loss comes: torn_n 0 = kill -9 at a random moment in
 * [kill_lo, kill_hi] ms; else `--test-vfs torn:torn_n:seed`, waiting up to kill_hi ms for
 * jobqd to exit at its torn_n-th sync before killing it -9. */
struct pl_cut { int kill_lo, kill_hi; long torn_n; unsigned seed; };

struct pl_arg { struct pl *p; int idx; };

static void *producer(void *arg)
{
    struct pl_arg *a = arg;
    struct pl *p = a->p;
    struct tsconn *c = tsconn_new(p->s);
    for (int i = 0; i < p->jobs && !atomic_load(&p->stop); i++) {
        char key[64], hdr[96], body[256];
        snprintf(key, sizeof key, "r%d-p%d-%05d", p->run, a->idx, i);
        snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key);
        snprintf(body, sizeof body, "{\"type\":\"pl\",\"queue\":\"pq\",\"dedup\":false,"
                 "\"cache\":false,\"max_attempts\":100,\"params\":{\"key\":\"%s\"}}", key);
        const char *h[] = { hdr, NULL };
        struct ts_http rq = { .method = "POST", .path = "/v1/jobs", .token = p->user,
                              .body = body, .headers = h };
        struct resp r;
        long st = tsconn_do(c, &rq, &r);
        const char *id = jstr(r.json, "id");
        if ((st == 201 || st == 200) && id) {
            ledger_create(p->lg, key, LG_OK, st, id);
            pthread_mutex_lock(&p->mu);
            json_object_set_new(p->acked, id, json_string(key));
            pthread_mutex_unlock(&p->mu);
        } else {
            ledger_create(p->lg, key, st == 0 || st >= 500 ? LG_UNKNOWN : LG_FAIL, st, NULL);
            if (st != 0) th_fail(__FILE__, __LINE__, "create %s -> %ld %s", key, st, r.body);
            resp_free(&r);
            break;                /* the server is gone: the outcome stays unknown */
        }
        resp_free(&r);
    }
    tsconn_free(c);
    return NULL;
}

/* Claims up to max and completes each; returns the number claimed, -1 on a transport
 * error. done: record 200 completes as acknowledged (not during the final drain). */
static int work_round(struct pl *p, struct tsconn *c, const char *wid, int max, bool done)
{
    char body[128];
    snprintf(body, sizeof body, "{\"worker_id\":\"%s\",\"max\":%d,\"lease_ms\":%d,\"wait_ms\":0}",
             wid, max, LEASE_MS);
    struct ts_http rq = { .method = "POST", .path = "/v1/queues/pq/claim", .token = p->worker,
                          .body = body };
    struct resp r;
    long st = tsconn_do(c, &rq, &r);
    if (st != 200) {
        if (!done) fprintf(stderr, "  drain claim -> %ld %s\n", st, r.body);
        resp_free(&r);
        return -1;
    }
    json_t *jobs = jpath(r.json, "jobs");
    size_t n = json_array_size(jobs);
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_array_get(jobs, i);
        int64_t to = ts_parse_time(jstr(j, "lease_expires_at"));
        ledger_claim(p->lg, jstr(j, "id"), jstr(j, "lease_token"), to - LEASE_MS, to);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_array_get(jobs, i);
        const char *id = jstr(j, "id"), *lease = jstr(j, "lease_token"), *key = jstr(j, "params.key");
        char path[128], hdr[160], cb[256];
        snprintf(path, sizeof path, "/v1/jobs/%s/complete", id);
        snprintf(hdr, sizeof hdr, "Idempotency-Key: c-%s-%s", id, lease);
        snprintf(cb, sizeof cb, "{\"lease_token\":\"%s\",\"result\":{\"key\":\"%s\"}}", lease,
                 key ? key : "");
        const char *h[] = { hdr, NULL };
        struct ts_http cr = { .method = "POST", .path = path, .token = p->worker, .body = cb,
                              .headers = h };
        struct resp rr;
        long cs = tsconn_do(c, &cr, &rr);
        bool replayed = !strcmp(rr.replayed, "true");
        resp_free(&rr);
        ledger_complete(p->lg, id, lease, cs == 200 ? LG_OK : cs == 0 || cs >= 500 ? LG_UNKNOWN
                        : LG_FAIL, cs, replayed);
        if (cs == 200 && done) {
            pthread_mutex_lock(&p->mu);
            json_object_set_new(p->done, id, json_string(lease));
            pthread_mutex_unlock(&p->mu);
        }
        if (cs == 0) {
            resp_free(&r);
            return -1;
        }
    }
    resp_free(&r);
    return (int)n;
}

static void *worker(void *arg)
{
    struct pl_arg *a = arg;
    struct tsconn *c = tsconn_new(a->p->s);
    char wid[32];
    snprintf(wid, sizeof wid, "w%d", a->idx);
    unsigned step = 0;
    while (!atomic_load(&a->p->stop)) {
        int n = work_round(a->p, c, wid, 10, true);
        if (n < 0) break;
        if (n == 0) th_nap(&step);
        else step = 0;
    }
    tsconn_free(c);
    return NULL;
}

/* Every job (admin list pages) as id -> job object. */
static json_t *list_all(struct testsrv *s)
{
    json_t *all = json_object();
    char cursor[256] = "", path[512];
    for (;;) {
        snprintf(path, sizeof path, "/v1/jobs?limit=1000&order=asc%s%s",
                 cursor[0] ? "&cursor=" : "", cursor);
        struct resp r;
        if (!CHECK_EQ(ts_req(s, "GET", path, s->admin, NULL, &r), 200)) {
            resp_free(&r);
            return all;
        }
        json_t *jobs = jpath(r.json, "jobs");
        for (size_t i = 0; i < json_array_size(jobs); i++) {
            json_t *j = json_array_get(jobs, i);
            json_object_set(all, jstr(j, "id"), j);
        }
        const char *next = jstr(r.json, "next_cursor");
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        resp_free(&r);
        if (!cursor[0]) return all;
    }
}

static void rm_shm(const char *db)
{
    char shm[1100];
    snprintf(shm, sizeof shm, "%s-shm", db);
    unlink(shm);
}

static const char *const lazy_extra[] = { "--test-vfs", "lazy", NULL };

/* True once jobqd has exited (not reaped: testsrv_kill9 reaps it); *status its exit code. */
static bool exited(pid_t pid, int *status)
{
    siginfo_t si = { 0 };
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid != pid)
        return false;
    *status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
    return true;
}

/* The torn sync's log line in jobqd.log ("lazyvfs: torn sync N of FILE: wrote W of P
 * pending sectors ..."): W, P and whether FILE is the WAL; false if there is none. */
static bool torn_line(struct testsrv *s, long *wrote, long *pending, bool *wal)
{
    char path[1100], line[2048];
    snprintf(path, sizeof path, "%s/jobqd.log", s->dir);
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "lazyvfs: torn sync ");
        const char *w = p ? strstr(p, ": wrote ") : NULL;
        if (w && sscanf(w, ": wrote %ld of %ld", wrote, pending) == 2) {
            found = true;
            *wal = w - p >= 4 && !strncmp(w - 4, "-wal", 4);
        }
    }
    if (f) fclose(f);
    return found;
}

static struct pl_out one_run(const char *sync, int run, int jobs, struct pl_cut cut)
{
    struct pl_out o = { 0 };
    struct testsrv_opts so = { .sync = sync };
    struct pl p = { .run = run, .jobs = jobs, .acked = json_object(), .done = json_object() };
    pthread_mutex_init(&p.mu, NULL);
    p.lg = ledger_new(NULL);
    /* durable baseline: schema and tokens on the default VFS, then a clean stop */
    p.s = testsrv_start(&so);
    p.user = ts_token(p.s, "pat", "user");
    p.worker = ts_token(p.s, "wrk", "worker");
    char spec[64];
    snprintf(spec, sizeof spec, "torn:%ld:%u", cut.torn_n, cut.seed);
    const char *const torn_extra[] = { "--test-vfs", spec, NULL };
    p.s->opts.extra = cut.torn_n ? torn_extra : lazy_extra;
    testsrv_restart(p.s);

    pthread_t pt[NPROD], wt[NWORK];
    struct pl_arg pa[NPROD], wa[NWORK];
    for (int i = 0; i < NPROD; i++) {
        pa[i] = (struct pl_arg){ &p, i };
        REQUIRE_EQ(pthread_create(&pt[i], NULL, producer, &pa[i]), 0);
    }
    for (int i = 0; i < NWORK; i++) {
        wa[i] = (struct pl_arg){ &p, i };
        REQUIRE_EQ(pthread_create(&wt[i], NULL, worker, &wa[i]), 0);
    }
    int64_t due = th_now_ms() + cut.kill_lo + rand() % (cut.kill_hi - cut.kill_lo + 1);
    unsigned step = 0;
    int status = 0;
    bool gone = false;
    while (th_now_ms() < due && !(gone = cut.torn_n && exited(p.s->pid, &status)))
        th_nap(&step);
    testsrv_kill9(p.s);                       /* power loss (reaps a torn jobqd) */
    if (cut.torn_n && gone) {
        o.torn = true;
        CHECK_EQ(status, TORN_EXIT);          /* it exited at the torn sync, not crashed */
        if (!CHECK(torn_line(p.s, &o.torn_wrote, &o.torn_pending, &o.torn_wal)))
            testsrv_dump_log(p.s);
    }
    atomic_store(&p.stop, true);
    for (int i = 0; i < NPROD; i++) pthread_join(pt[i], NULL);
    for (int i = 0; i < NWORK; i++) pthread_join(wt[i], NULL);

    rm_shm(p.s->db);                          /* a reboot clears /dev/shm-like state */
    char *chk = th_mkdtemp("integrity");
    o.integrity = rel_integrity_copy(p.s->db, chk);
    free(chk);
    p.s->opts.extra = NULL;                   /* restart on the default VFS */
    testsrv_restart(p.s);

    /* acknowledged writes after the power loss */
    json_t *all = list_all(p.s);
    const char *id;
    json_t *v;
    o.acked = (long)json_object_size(p.acked);
    o.done = (long)json_object_size(p.done);
    json_object_foreach(p.acked, id, v) {
        if (!json_object_get(all, id)) {
            if (o.lost_create < 3)
                fprintf(stderr, "  run %d (%s): acked create %s (%s) lost\n", run, sync, id,
                        json_string_value(v));
            o.lost_create++;
        }
    }
    json_object_foreach(p.done, id, v) {
        const char *stt = jstr(json_object_get(all, id), "status");
        if (!stt || strcmp(stt, "completed")) {
            if (o.lost_complete < 3)
                fprintf(stderr, "  run %d (%s): acked complete of %s lost (status %s)\n", run,
                        sync, id, stt ? stt : "absent");
            o.lost_complete++;
        }
    }
    json_decref(all);

    /* drain (leases of the dead workers: move the fake clock past them), then the ledger */
    struct tsconn *c = tsconn_new(p.s);
    for (int round = 0; round < 5; round++) {
        CHECK_EQ(ts_advance(p.s, 2 * 3600 * 1000), 200);
        while (work_round(&p, c, "drain", 100, false) > 0) {}
        struct resp r;
        CHECK_EQ(ts_req(p.s, "GET", "/v1/stats", p.s->admin, NULL, &r), 200);
        int64_t open = jint(r.json, "counts.pending") + jint(r.json, "counts.processing");
        resp_free(&r);
        if (open == 0) break;
    }
    tsconn_free(c);
    all = list_all(p.s);
    json_object_foreach(all, id, v)
        ledger_final(p.lg, id, jstr(v, "status"), jstr(v, "params.key"), jstr(v, "result.key"));
    json_decref(all);
    o.lc = ledger_check(p.lg, !strcmp(sync, "full") ? stderr : NULL, 5);
    ledger_free(p.lg);
    json_decref(p.acked);
    json_decref(p.done);
    pthread_mutex_destroy(&p.mu);
    testsrv_stop(p.s);
    return o;
}

/* What the FULL runs add up to; pl_tally_add counts one run and CHECKs it. */
struct pl_tally { long acked, done, lost, ledger_bad; int ok; };

/* Counts run o into t; CHECKs integrity, no acked create or complete lost and a clean
 * ledger (printed under label when not); returns the ledger anomalies of the run. */
static long pl_tally_add(struct pl_tally *t, const struct pl_out *o, const char *label)
{
    t->acked += o->acked;
    t->done += o->done;
    t->lost += o->lost_create + o->lost_complete;
    long bad = o->lc.lost + o->lc.dup_created + o->lc.completed_twice + o->lc.unexpected;
    t->ledger_bad += bad;
    t->ok += o->integrity;
    CHECK(o->integrity);
    CHECK_EQ(o->lost_create, 0);
    CHECK_EQ(o->lost_complete, 0);
    CHECK_EQ(bad, 0);
    if (bad) ledger_print(&o->lc, stdout, label);
    return bad;
}

TEST(t2_powerloss_full_loses_nothing)
{
    int runs = REL_N(8, 200), jobs = REL_N(60, 200);
    th_set_timeout((unsigned)REL_N(200, 3600));
    srand((unsigned)getpid());
    struct pl_tally t = { 0 };
    int64_t t0 = th_now_ms();
    for (int r = 0; r < runs; r++) {
        struct pl_out o = one_run("full", r, jobs, (struct pl_cut){ 100, 900, 0, 0 });
        pl_tally_add(&t, &o, "t2-full");
        if (th_failed()) break;
    }
    printf("  t2 FULL: %d runs (kill -9 each), %ld acked creates + %ld acked completes checked, "
           "lost %ld, ledger anomalies %ld, integrity ok %d/%d, %.1f s\n", runs, t.acked, t.done,
           t.lost, t.ledger_bad, t.ok, runs, (double)(th_now_ms() - t0) / 1000);
    CHECK(t.acked > 0 && t.done > 0);
}

TEST(t2_torn_full_loses_nothing)
{
    /* N: the torn sync, uniform in [TORN_MIN, TORN_MIN + TORN_SPAN). jobqd syncs nothing
     * while it starts on a database that has no jobs (checked: torn:1 answers /healthz and
     * idles; the harness would abort on a jobqd that died while starting), and this load
     * runs ~600-800 syncs a second (ASan build), with a checkpoint (a WAL sync, then the
     * database's) every 1,000 WAL frames: so the cut lands anywhere from the first commit
     * to ~4 s into the load, sometimes in a checkpoint's database sync. A run whose N is
     * never reached (a slow host) is killed -9 at the deadline and reported as killed. */
    enum { TORN_MIN = 1, TORN_SPAN = 3000, DEADLINE_MS = 20000 };
    int runs = REL_N(6, 200);
    th_set_timeout((unsigned)REL_N(200, 7200));
    unsigned base = (unsigned)getpid();
    srand(base + 2);
    struct pl_tally t = { 0 };
    long wrote = 0, pending = 0;
    int torn = 0, killed = 0, partial = 0, wal = 0;
    int64_t t0 = th_now_ms();
    for (int r = 0; r < runs; r++) {
        long n = TORN_MIN + rand() % TORN_SPAN;
        unsigned seed = base * 7919u + (unsigned)r;
        /* jobs: no cap that matters; the producers stop when jobqd is gone */
        struct pl_out o = one_run("full", r, 1000000,
                                  (struct pl_cut){ DEADLINE_MS, DEADLINE_MS, n, seed });
        long bad = pl_tally_add(&t, &o, "t2-torn");
        torn += o.torn;
        wal += o.torn && o.torn_wal;
        killed += !o.torn;
        wrote += o.torn_wrote;
        pending += o.torn_pending;
        partial += o.torn_wrote > 0 && o.torn_wrote < o.torn_pending;
        if (!o.integrity || o.lost_create || o.lost_complete || bad)
            fprintf(stderr, "  torn run %d: N %ld seed %u, %s, wrote %ld of %ld pending sectors\n",
                    r, n, seed, o.torn ? "torn" : "killed", o.torn_wrote, o.torn_pending);
        if (th_failed()) break;
    }
    printf("  t2 torn FULL: %d runs, %d torn syncs (%d of the WAL, %d of the database; %d "
           "partial) + %d killed -9 at the deadline, sectors written %ld / dropped %ld, %ld acked "
           "creates + %ld acked completes checked, lost %ld, ledger anomalies %ld, integrity ok "
           "%d/%d, %.1f s\n", runs, torn, wal, torn - wal, partial, killed, wrote,
           pending - wrote, t.acked, t.done, t.lost, t.ledger_bad, t.ok, runs,
           (double)(th_now_ms() - t0) / 1000);
    CHECK(t.acked > 0 && t.done > 0);
    CHECK(torn > 0);              /* the cut happened (not only deadline kills) */
}

/* Creates `n` keyed jobs one after another on the lazy VFS, kills jobqd -9 right after
 * the last acknowledgement, restarts on the default VFS and returns how many of the
 * acknowledged creates are gone. No workers, and far fewer WAL frames than the 1,000 that
 * wake the checkpointer (sq_ckpt.c): a checkpoint syncs the WAL first, which would make
 * NORMAL's commits durable after all and hide the loss this pair of tests looks for. */
static long quiet_run(const char *sync, int n)
{
    struct testsrv_opts so = { .sync = sync };
    struct testsrv *s = testsrv_start(&so);
    const char *user = ts_token(s, "pat", "user");
    s->opts.extra = lazy_extra;
    testsrv_restart(s);
    json_t *acked = json_array();
    for (int i = 0; i < n; i++) {
        char body[160];
        snprintf(body, sizeof body, "{\"type\":\"pl\",\"queue\":\"quiet\",\"dedup\":false,"
                 "\"params\":{\"i\":%d}}", i);
        struct resp r;
        if (CHECK_EQ(ts_req(s, "POST", "/v1/jobs", user, body, &r), 201))
            json_array_append_new(acked, json_string(jstr(r.json, "id")));
        resp_free(&r);
    }
    testsrv_kill9(s);                        /* power loss right after the last ack */
    rm_shm(s->db);
    char *chk = th_mkdtemp("integrity");
    CHECK(rel_integrity_copy(s->db, chk));
    free(chk);
    s->opts.extra = NULL;
    testsrv_restart(s);
    json_t *all = list_all(s);
    long lost = 0;
    for (size_t i = 0; i < json_array_size(acked); i++)
        lost += !json_object_get(all, json_string_value(json_array_get(acked, i)));
    printf("  t2 quiet %s: %zu acked creates, kill -9 after the last, lost %ld\n", sync,
           json_array_size(acked), lost);
    CHECK_EQ((long)json_array_size(acked), n);
    json_decref(all);
    json_decref(acked);
    testsrv_stop(s);
    return lost;
}

TEST(t2_quiet_full_loses_nothing)
{
    CHECK_EQ(quiet_run("full", 20), 0);
}

TEST(t2_teeth_normal_loses_acked_writes)
{
    /* The teeth check: the same 20 creates under NORMAL must lose acknowledged writes,
     * or the harness could not see a power loss at all. Deterministic: nothing syncs the
     * WAL between the creates and the kill (see quiet_run). */
    CHECK(quiet_run("normal", 20) >= 1);
}

TEST(t2_normal_under_load_never_corrupts)
{
    /* NORMAL under the mixed load of one_run: losses show only in some runs (whenever the
     * WAL has passed 1,000 frames, each commit wakes a checkpoint, which syncs the WAL and
     * so makes every earlier commit durable), so this asserts integrity only and reports
     * how often acknowledged writes were lost. */
    int runs = REL_N(3, 20), jobs = REL_N(60, 200), lossy = 0;
    th_set_timeout((unsigned)REL_N(120, 1200));
    srand((unsigned)getpid() + 1);
    long acked = 0, done = 0, lost = 0;
    int ok = 0;
    for (int r = 0; r < runs; r++) {
        struct pl_out o = one_run("normal", r, jobs, (struct pl_cut){ 100, 900, 0, 0 });
        acked += o.acked;
        done += o.done;
        lost += o.lost_create + o.lost_complete;
        lossy += o.lost_create + o.lost_complete > 0;
        ok += o.integrity;
        CHECK(o.integrity);        /* NORMAL loses commits but never corrupts */
    }
    printf("  t2 NORMAL under load: %d runs, %ld acked creates + %ld acked completes, lost %ld, "
           "runs with losses %d/%d, integrity ok %d/%d\n", runs, acked, done, lost, lossy, runs,
           ok, runs);
}

TEST_MAIN()
