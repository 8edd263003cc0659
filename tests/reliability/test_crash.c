/*
 * test_crash.c - RELIABILITY.md T1 (kill -9 loop) and T4 (dead workers, fencing).
 *
 * T1: producers create keyed jobs with an Idempotency-Key and retry every unknown
 * outcome with the same key; workers claim and complete (the complete carries its own
 * Idempotency-Key and is retried until it is answered); a killer SIGKILLs jobqd at
 * random moments and restarts it at once on the same database, after a
 * PRAGMA integrity_check of a copy of the files the crash left. After the last kill the
 * queue is drained (orphaned leases rescued by moving the fake clock) and the ledger
 * checker (ledger.h) must find lost 0, dup_created 0, completed_twice 0, overlap 0,
 * unexpected 0.  CI: 10,000 jobs, 5 kills; JQ_LONG=1: 50,000 jobs, 20 kills.
 *
 * T4: a worker process killed -9 holding leases (real clock, lease 1 s): every job is
 * claimable again within lease + sweep + 1 s. A worker process SIGSTOPped past its lease
 * and SIGCONTinued: its heartbeat / log / complete / fail all get 409 lease_lost, and
 * each job is completed exactly once (by the worker that re-claimed it). Workers that
 * heartbeat keep their leases (fake clock, lease 10 s, a heartbeat every 5 s for 50 s,
 * the rescue sweep run at every step): 0 false rescues in 100 (JQ_LONG=1: 1,000) jobs.
 */
#include "rel.h"
#include "ledger.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

/* ------------------------------------------------------------------ T1 */

enum { LEASE_MS = 30000 };

struct t1 {
    struct testsrv *s;
    struct ledger *lg;
    const char *user, *worker;
    pthread_rwlock_t lk;          /* readers: requests; writer: a restart (s->url changes) */
    atomic_int producers_left;
    atomic_bool workers_stop;
    atomic_long created, completed, kills;
    int jobs, producers;
};

struct prod { struct t1 *w; int idx; };

static bool transient(long st)
{
    return st == 0 || st >= 500;
}

static long locked_do(struct t1 *w, struct tsconn *c, const struct ts_http *rq, struct resp *r)
{
    pthread_rwlock_rdlock(&w->lk);
    long st = tsconn_do(c, rq, r);
    pthread_rwlock_unlock(&w->lk);
    return st;
}

static void backoff(unsigned *step)
{
    th_nap(step);
    if (*step > 50000) *step = 50000;
}

static void *producer(void *arg)
{
    struct prod *p = arg;
    struct t1 *w = p->w;
    struct tsconn *c = tsconn_new(w->s);
    int per = w->jobs / w->producers;
    for (int i = 0; i < per; i++) {
        char key[64], hdr[96], body[256];
        snprintf(key, sizeof key, "k%d-%06d", p->idx, i);
        snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key);
        snprintf(body, sizeof body, "{\"type\":\"rel\",\"queue\":\"rq\",\"dedup\":false,"
                 "\"cache\":false,\"max_attempts\":100,\"params\":{\"key\":\"%s\"}}", key);
        const char *h[] = { hdr, NULL };
        struct ts_http rq = { .method = "POST", .path = "/v1/jobs", .token = w->user,
                              .body = body, .headers = h };
        unsigned step = 0;
        for (;;) {
            struct resp r;
            long st = locked_do(w, c, &rq, &r);
            if (st == 201 || st == 200) {
                ledger_create(w->lg, key, LG_OK, st, jstr(r.json, "id"));
                resp_free(&r);
                atomic_fetch_add(&w->created, 1);
                break;
            }
            ledger_create(w->lg, key, transient(st) ? LG_UNKNOWN : LG_FAIL, st, NULL);
            if (!transient(st)) {
                th_fail(__FILE__, __LINE__, "create %s -> %ld %s", key, st, r.body);
                resp_free(&r);
                break;
            }
            resp_free(&r);
            backoff(&step);
        }
    }
    tsconn_free(c);
    atomic_fetch_sub(&w->producers_left, 1);
    return NULL;
}

/* Completes job id under lease, retrying unknowns with the same Idempotency-Key. */
static void complete_one(struct t1 *w, struct tsconn *c, const char *id, const char *lease,
                         const char *key)
{
    char path[128], hdr[160], body[256];
    snprintf(path, sizeof path, "/v1/jobs/%s/complete", id);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: c-%s-%s", id, lease);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"key\":\"%s\"}}", lease, key);
    const char *h[] = { hdr, NULL };
    struct ts_http rq = { .method = "POST", .path = path, .token = w->worker, .body = body,
                          .headers = h };
    unsigned step = 0;
    for (;;) {
        struct resp r;
        long st = locked_do(w, c, &rq, &r);
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

/* One claim round (up to max jobs), each completed; returns the jobs claimed. */
static int work_round(struct t1 *w, struct tsconn *c, const char *wid, int max, int wait_ms)
{
    char body[128];
    snprintf(body, sizeof body, "{\"worker_id\":\"%s\",\"max\":%d,\"lease_ms\":%d,\"wait_ms\":%d}",
             wid, max, LEASE_MS, wait_ms);
    struct ts_http rq = { .method = "POST", .path = "/v1/queues/rq/claim", .token = w->worker,
                          .body = body };
    struct resp r;
    long st = locked_do(w, c, &rq, &r);
    if (st != 200) {
        if (!transient(st)) th_fail(__FILE__, __LINE__, "claim -> %ld %s", st, r.body);
        resp_free(&r);
        return st == 0 || st >= 500 ? -1 : 0;
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

struct wk { struct t1 *w; int idx; };

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
        else if (n < 0) backoff(&step);
    }
    tsconn_free(c);
    return NULL;
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

TEST(t1_kill9_loop_ledger)
{
    int jobs = REL_N(10000, 50000), kills = REL_N(5, 20), nprod = 4, nwork = REL_N(4, 8);
    int gap_lo = REL_N(1000, 3000), gap_hi = REL_N(3000, 15000);
    th_set_timeout(REL_N(280, 3000));
    static const char *const extra[] = { "--active-limit", "0", NULL };
    struct t1 w = { .jobs = jobs, .producers = nprod };
    w.s = st_start_with(extra);
    w.user = ts_token(w.s, "pat", "user");
    w.worker = ts_token(w.s, "wrk", "worker");
    char logp[1024];
    snprintf(logp, sizeof logp, "%s/ledger.jsonl", th_tmproot());
    w.lg = ledger_new(logp);
    pthread_rwlockattr_t at;
    pthread_rwlockattr_init(&at);
    pthread_rwlockattr_setkind_np(&at, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&w.lk, &at);
    atomic_store(&w.producers_left, nprod);
    char *chk = th_mkdtemp("integrity");

    pthread_t pt[8], wt[8];
    struct prod pp[8];
    struct wk ww[8];
    for (int i = 0; i < nprod; i++) {
        pp[i] = (struct prod){ &w, i };
        REQUIRE_EQ(pthread_create(&pt[i], NULL, producer, &pp[i]), 0);
    }
    for (int i = 0; i < nwork; i++) {
        ww[i] = (struct wk){ &w, i };
        REQUIRE_EQ(pthread_create(&wt[i], NULL, worker, &ww[i]), 0);
    }

    srand((unsigned)getpid());
    int64_t t0 = th_now_ms(), worst_ready = 0;
    int integrity_ok = 0;
    for (int k = 0; k < kills; k++) {
        /* kill at a random moment, but while producers still run when possible */
        int64_t due = th_now_ms() + gap_lo + rand() % (gap_hi - gap_lo + 1);
        unsigned step = 0;
        while (th_now_ms() < due) th_nap(&step);
        testsrv_kill9(w.s);
        atomic_fetch_add(&w.kills, 1);
        pthread_rwlock_wrlock(&w.lk);
        integrity_ok += CHECK(rel_integrity_copy(w.s->db, chk));
        int64_t r0 = th_now_ms();
        testsrv_restart(w.s);
        int64_t ready = th_now_ms() - r0;
        pthread_rwlock_unlock(&w.lk);
        if (ready > worst_ready) worst_ready = ready;
        printf("  kill %d at %.1fs: created %ld completed %ld, healthz after %lld ms\n", k + 1,
               (double)(th_now_ms() - t0) / 1000, (long)atomic_load(&w.created),
               (long)atomic_load(&w.completed), (long long)ready);
    }
    for (int i = 0; i < nprod; i++) pthread_join(pt[i], NULL);
    WAIT_FOR(stats_idle(w.s), REL_N(120000, 1200000));
    atomic_store(&w.workers_stop, true);
    for (int i = 0; i < nwork; i++) pthread_join(wt[i], NULL);

    /* final drain: orphaned leases (claim replies lost in a crash) are rescued by moving
     * the clock past them and past any backoff; then one worker finishes the rest */
    struct tsconn *c = tsconn_new(w.s);
    for (int round = 0; round < 10; round++) {
        int64_t open = admin_int(w.s, "/v1/stats", "counts.pending") +
                       admin_int(w.s, "/v1/stats", "counts.processing");
        if (open == 0) break;
        CHECK_EQ(ts_advance(w.s, 2 * 3600 * 1000), 200);
        CHECK_EQ(ts_advance(w.s, 2 * 3600 * 1000), 200);
        while (work_round(&w, c, "drain", 100, 0) > 0) {}
    }
    tsconn_free(c);
    CHECK_EQ(admin_int(w.s, "/v1/stats", "counts.processing"), 0);
    CHECK_EQ(admin_int(w.s, "/v1/stats", "counts.pending"), 0);
    CHECK(rel_integrity_copy(w.s->db, chk));

    long listed = rel_final_list(w.s, w.lg, "");
    struct lg_counts lc = ledger_check(w.lg, stderr, 10);
    ledger_print(&lc, stdout, "t1");
    printf("  t1: %d jobs, %ld kills, integrity ok %d/%d, worst restart->healthz %lld ms, "
           "%.1f s\n", jobs, (long)atomic_load(&w.kills), integrity_ok, kills,
           (long long)worst_ready, (double)(th_now_ms() - t0) / 1000);
    CHECK_EQ(listed, jobs);
    CHECK_EQ(lc.acked, jobs);
    CHECK_EQ(lc.lost, 0);
    CHECK_EQ(lc.dup_created, 0);
    CHECK_EQ(lc.completed_twice, 0);
    CHECK_EQ(lc.overlap, 0);
    CHECK_EQ(lc.unexpected, 0);
    CHECK_EQ(integrity_ok, kills);
    CHECK(worst_ready <= 3000);
    ledger_free(w.lg);
    free(chk);
    testsrv_stop(w.s);
}

/* ------------------------------------------------------------------ T4 */

/* Child: a worker process. Claims `want` jobs of queue with lease_ms, writes its count to
 * fd, then heartbeats them until each heartbeat gets 409; a fenced job then gets a log,
 * a complete and a fail under the old lease, each of which must be 409. Exit status: 0,
 * or the number of replies that were not what they must be (101: timed out). */
static _Noreturn void fenced_worker(struct testsrv *s, const char *tok, const char *queue,
                                    int want, int lease_ms, int fd)
{
    struct tsconn *c = tsconn_new(s);
    char body[256], path[128], ids[100][TS_ID_MAX], leases[100][TS_ID_MAX];
    bool fenced[100] = { false };
    snprintf(body, sizeof body, "{\"worker_id\":\"stopped\",\"max\":%d,\"lease_ms\":%d}", want,
             lease_ms);
    snprintf(path, sizeof path, "/v1/queues/%s/claim", queue);
    struct resp r;
    int n = 0;
    if (tsconn_req(c, "POST", path, tok, body, &r) == 200) {
        json_t *jobs = jpath(r.json, "jobs");
        for (size_t i = 0; i < json_array_size(jobs) && n < 100; i++, n++) {
            snprintf(ids[n], TS_ID_MAX, "%s", jstr(json_array_get(jobs, i), "id"));
            snprintf(leases[n], TS_ID_MAX, "%s", jstr(json_array_get(jobs, i), "lease_token"));
        }
    }
    resp_free(&r);
    if (write(fd, &n, sizeof n) != sizeof n) _exit(102);
    int bad = 0, left = n;
    int64_t dl = th_now_ms() + 60000;
    while (left > 0 && th_now_ms() < dl) {
        for (int i = 0; i < n; i++) {
            if (fenced[i]) continue;
            snprintf(path, sizeof path, "/v1/jobs/%s/heartbeat", ids[i]);
            snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"lease_ms\":%d,"
                     "\"progress_percent\":50}", leases[i], lease_ms);
            long st = tsconn_req(c, "POST", path, tok, body, &r);
            resp_free(&r);
            if (st == 200) continue;
            fenced[i] = true;
            left--;
            if (st != 409) { bad++; continue; }
            static const char *const verbs[] = { "logs", "complete", "fail" };
            for (int v = 0; v < 3; v++) {
                snprintf(path, sizeof path, "/v1/jobs/%s/%s", ids[i], verbs[v]);
                snprintf(body, sizeof body, v == 0 ? "{\"lease_token\":\"%s\",\"level\":\"info\","
                         "\"message\":\"late\"}" : v == 1 ? "{\"lease_token\":\"%s\",\"result\":"
                         "\"stale\"}" : "{\"lease_token\":\"%s\",\"error_message\":\"stale\"}",
                         leases[i]);
                st = tsconn_req(c, "POST", path, tok, body, &r);
                if (st != 409 || strcmp(st_code(&r), "lease_lost")) {
                    fprintf(stderr, "  stale %s on %s -> %ld %s\n", verbs[v], ids[i], st, r.body);
                    bad++;
                }
                resp_free(&r);
            }
        }
        usleep(20000);             /* a worker's heartbeat cadence, not a wait for a condition */
    }
    _exit(left > 0 ? 101 : bad > 100 ? 100 : bad);
}

static pid_t spawn_worker(struct testsrv *s, const char *tok, const char *queue, int want,
                          int lease_ms, int *claimed)
{
    int p[2];
    REQUIRE_EQ(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        fenced_worker(s, tok, queue, want, lease_ms, p[1]);
    }
    close(p[1]);
    *claimed = -1;
    REQUIRE_EQ(read(p[0], claimed, sizeof *claimed), (ssize_t)sizeof *claimed);
    close(p[0]);
    return pid;
}

static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}

TEST(t4_stopped_worker_is_fenced)
{
    int n = REL_N(20, 100);
    struct st_ctx c = st_setup();
    struct ledger *lg = ledger_new(NULL);
    char ids[100][TS_ID_MAX];
    for (int i = 0; i < n; i++) {
        char body[128], key[32];
        snprintf(key, sizeof key, "f%03d", i);
        snprintf(body, sizeof body, "{\"type\":\"t\",\"queue\":\"fq\",\"params\":{\"key\":\"%s\"}}", key);
        st_enq(c.s, c.alice, ids[i], body);
        ledger_create(lg, key, LG_OK, 201, ids[i]);
    }
    int claimed;
    pid_t pid = spawn_worker(c.s, c.worker, "fq", n, 5000, &claimed);
    REQUIRE_EQ(claimed, n);
    kill(pid, SIGSTOP);
    WAIT_FOR(proc_state(pid) == 'T', 5000);
    CHECK_EQ(ts_advance(c.s, 6000), 200);            /* past the lease: rescued */
    CHECK_EQ(ts_advance(c.s, 3600 * 1000), 200);     /* past the retry backoff */
    int done = 0;
    for (int round = 0; round < 10 && done < n; round++) {
        struct resp r;
        CHECK_EQ(ts_claim(c.s, c.worker, "fq", "{\"worker_id\":\"second\",\"max\":100}", &r), 200);
        json_t *jobs = jpath(r.json, "jobs");
        for (size_t i = 0; i < json_array_size(jobs); i++) {
            json_t *j = json_array_get(jobs, i);
            char body[256];
            int64_t to = ts_parse_time(jstr(j, "lease_expires_at"));
            ledger_claim(lg, jstr(j, "id"), jstr(j, "lease_token"), to - 30000, to);
            snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"key\":\"%s\"}}",
                     jstr(j, "lease_token"), jstr(j, "params.key"));
            long st = st_post0(c.s, c.worker, jstr(j, "id"), "complete", body);
            ledger_complete(lg, jstr(j, "id"), jstr(j, "lease_token"), st == 200 ? LG_OK : LG_FAIL,
                            st, false);
            done += st == 200;
        }
        resp_free(&r);
    }
    CHECK_EQ(done, n);
    kill(pid, SIGCONT);
    int wst = 0;
    REQUIRE_EQ(waitpid(pid, &wst, 0), pid);
    CHECK(WIFEXITED(wst));
    CHECK_EQ(WEXITSTATUS(wst), 0);                   /* every stale call was a 409 */
    for (int i = 0; i < n; i++) {
        struct resp r;
        CHECK_EQ(ts_get(c.s, c.alice, ids[i], &r), 200);
        ledger_final(lg, ids[i], jstr(r.json, "status"), jstr(r.json, "params.key"),
                     jstr(r.json, "result.key"));
        CHECK_EQ(jint(r.json, "attempts"), 2);       /* the lost lease counted as an attempt */
        resp_free(&r);
    }
    struct lg_counts lc = ledger_check(lg, stderr, 10);
    ledger_print(&lc, stdout, "t4-fence");
    CHECK_EQ(lc.lost, 0);
    CHECK_EQ(lc.completed_twice, 0);
    CHECK_EQ(lc.overlap, 0);
    CHECK_EQ(lc.unexpected, 0);
    ledger_free(lg);
    testsrv_stop(c.s);
}

/* Claimable again: a claim by a second worker takes every job back. */
struct reclaim { struct testsrv *s; const char *tok; int need, got; };

static bool reclaimed_all(void *arg)
{
    struct reclaim *k = arg;
    struct resp r;
    if (ts_claim(k->s, k->tok, "dq", "{\"worker_id\":\"second\",\"max\":100}", &r) == 200)
        k->got += (int)json_array_size(jpath(r.json, "jobs"));
    resp_free(&r);
    return k->got >= k->need;
}

TEST(t4_killed_worker_leases_come_back)
{
    int n = REL_N(100, 1000), lease_ms = 1000;
    struct testsrv_opts o = { .real_clock = true,
                              .extra = (const char *const[]){ "--active-limit", "0",
                                                              "--backoff-base-ms", "1",
                                                              "--backoff-max-ms", "1", NULL } };
    struct testsrv *s = testsrv_start(&o);
    const char *u = ts_token(s, "ann", "user"), *wk = ts_token(s, "wk", "worker");
    for (int i = 0; i < n; i += 100) {       /* batches of 100 */
        char body[100 * 48 + 64];
        int m = snprintf(body, sizeof body, "{\"jobs\":[");
        for (int k = i; k < i + 100 && k < n; k++)
            m += snprintf(body + m, sizeof body - (size_t)m, "%s{\"type\":\"t\",\"queue\":\"dq\"}",
                          k > i ? "," : "");
        snprintf(body + m, sizeof body - (size_t)m, "]}");
        struct resp r;
        REQUIRE_EQ(ts_req(s, "POST", "/v1/jobs/batch", u, body, &r), 201);
        resp_free(&r);
    }
    int held = 0;
    pid_t pids[10];
    int np = 0;
    while (held < n && np < 10) {            /* worker processes holding every lease */
        int got;
        pids[np++] = spawn_worker(s, wk, "dq", 100, lease_ms, &got);
        held += got;
    }
    CHECK_EQ(held, n);
    int64_t t0 = th_now_ms();
    for (int i = 0; i < np; i++) {
        kill(pids[i], SIGKILL);
        waitpid(pids[i], NULL, 0);
    }
    struct reclaim k = { s, wk, n, 0 };
    bool ok = poll_until(reclaimed_all, &k, lease_ms + 1000 + 1000);
    int64_t took = th_now_ms() - t0;
    printf("  t4: %d leases of killed workers, all claimable again after %lld ms (limit %d)\n",
           n, (long long)took, lease_ms + 2000);
    CHECK(ok);
    CHECK_EQ(k.got, n);
    testsrv_stop(s);
}

TEST(t4_heartbeating_workers_keep_leases_for_5x_the_lease)
{
    enum { LEASE = 10000, STEP = LEASE / 2, STEPS = 5 * LEASE / STEP };
    int n = REL_N(100, 1000);
    th_set_timeout((unsigned)REL_N(120, 900));
    static const char *const extra[] = { "--active-limit", "0", NULL };
    struct testsrv *s = st_start_with(extra);
    const char *u = ts_token(s, "hb", "user"), *wk = ts_token(s, "hbw", "worker");
    for (int i = 0; i < n; i += 100) {
        char body[100 * 64 + 64];
        int m = snprintf(body, sizeof body, "{\"jobs\":[");
        for (int k = i; k < i + 100 && k < n; k++)
            m += snprintf(body + m, sizeof body - (size_t)m, "%s{\"type\":\"t\",\"queue\":"
                          "\"hq\",\"params\":{\"k\":%d}}", k > i ? "," : "", k);
        snprintf(body + m, sizeof body - (size_t)m, "]}");
        struct resp r;
        REQUIRE_EQ(ts_req(s, "POST", "/v1/jobs/batch", u, body, &r), 201);
        resp_free(&r);
    }
    char (*ids)[TS_ID_MAX] = calloc((size_t)n, sizeof *ids);
    char (*leases)[TS_ID_MAX] = calloc((size_t)n, sizeof *leases);
    int held = 0;
    while (held < n) {
        struct resp r;
        char body[96];
        snprintf(body, sizeof body, "{\"worker_id\":\"hb\",\"max\":100,\"lease_ms\":%d}", LEASE);
        REQUIRE_EQ(ts_claim(s, wk, "hq", body, &r), 200);
        json_t *jobs = jpath(r.json, "jobs");
        REQUIRE(json_array_size(jobs) > 0);
        for (size_t i = 0; i < json_array_size(jobs) && held < n; i++, held++) {
            snprintf(ids[held], TS_ID_MAX, "%s", jstr(json_array_get(jobs, i), "id"));
            snprintf(leases[held], TS_ID_MAX, "%s", jstr(json_array_get(jobs, i), "lease_token"));
        }
        resp_free(&r);
    }
    long beats = 0, lost = 0;
    for (int step = 0; step < STEPS; step++) {
        CHECK_EQ(ts_advance(s, STEP), 200);          /* runs the rescue sweep, too */
        for (int i = 0; i < n; i++) {
            char body[160];
            struct resp r;
            snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"lease_ms\":%d}", leases[i],
                     LEASE);
            long st = ts_reqf(s, "POST", wk, body, &r, "/v1/jobs/%s/heartbeat", ids[i]);
            beats++;
            lost += st != 200;
            resp_free(&r);
        }
    }
    int rescued = 0;
    for (int i = 0; i < n; i++) {
        struct resp r;
        CHECK_EQ(ts_get(s, u, ids[i], &r), 200);
        rescued += strcmp(jstr(r.json, "status"), "processing") != 0 ||
                   jint(r.json, "attempts") != 1 || jstr(r.json, "error_code") != NULL;
        resp_free(&r);
    }
    printf("  t4 heartbeats: %d jobs held %d ms (5x the lease of %d ms), %ld heartbeats (%ld "
           "refused), %d false rescues\n", n, STEPS * STEP, LEASE, beats, lost, rescued);
    CHECK_EQ(lost, 0);
    CHECK_EQ(rescued, 0);
    free(ids);
    free(leases);
    testsrv_stop(s);
}

TEST_MAIN()
