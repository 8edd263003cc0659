/*
 * test_clockjump.c - RELIABILITY.md T8: the wall clock jumps under a running jobqd
 * (SQLite, real clock). jobqd runs under libfaketime (FAKETIME_TIMESTAMP_FILE, read on
 * every call with FAKETIME_NO_CACHE=1, so the test moves the clock at run time; the
 * monotonic clock stays real with FAKETIME_DONT_FAKE_MONOTONIC=1, as an NTP step would
 * leave it; FAKETIME_FORCE_MONOTONIC_FIX=0 keeps monotonic timed waits working). Job
 * times (run_at, leases) are wall-clock instants; jobqd's in-process timers run on
 * CLOCK_MONOTONIC.
 *
 * t8_clock_back_1h: delayed jobs made before the clock goes back 1 h get 0 claims before
 * their run_at, even once the real time is past it; jobs delayed 2 s after the jump are
 * claimed no earlier than 2 s later (real and server time) and with no stall; when the
 * clock comes back, the first jobs are claimed, each at or after its run_at.
 *
 * t8_clock_forward_1h: a worker holds leases (10 s) and the clock goes forward 1 h: the
 * leases are rescued (within lease + 5 s of real time), the old worker's heartbeats and
 * completes get 409 lease_lost, another worker completes every job, and the ledger
 * (ledger.h) finds lost 0, completed_twice 0, overlap 0 (lease intervals in server time).
 *
 * t8_pg_node_30s_ahead_keeps_the_database_clock: PostgreSQL, two nodes, the maintenance
 * leader's clock 30 s ahead (FAKETIME +30): its jobs carry the database's time, it claims
 * 0 jobs before their run_at (by the real clock) and rescues 0 leases before they run out;
 * an expired lease is rescued after it runs out (jobqd measures the database's clock every
 * second and decides on it, pg_notify.c).
 *
 * t8_sigterm_blocked_in_every_thread: the regression test of a defect these tests found
 * (jobqd's threads started before SIGTERM was blocked; see the test).
 *
 * Needs faketime (scripts/deps.sh); without libfaketime the clock tests say SKIPPED.
 * No long tier: the jumps are the test; JQ_LONG=1 only makes more jobs.
 */
#include "rel.h"
#include "harness_pg.h"
#include "ledger.h"
#include "common/clock.h"

#include <signal.h>

#define FT_LIB "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"

static char g_rc[1024];           /* the FAKETIME_TIMESTAMP_FILE */

static bool ft_installed(void)
{
    if (access(FT_LIB, R_OK) == 0)
        return true;
    printf("  SKIPPED: libfaketime is not installed (%s; scripts/deps.sh adds faketime)\n",
           FT_LIB);
    return false;
}

/* Sets the fake offset ("+0", "-3600", "+3600" seconds); rename: never half a file. */
static void ft_set(const char *offset)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_rc);
    FILE *f = fopen(tmp, "w");
    REQUIRE(f != NULL);
    fprintf(f, "%s\n", offset);
    REQUIRE_EQ(fclose(f), 0);
    REQUIRE_EQ(rename(tmp, g_rc), 0);
}

/* Starts jobqd (real clock, extra argv) under libfaketime at offset +0; the environment
 * is restored afterwards. The ASan runtime goes first in LD_PRELOAD, as the sanitizer
 * requires. */
static struct testsrv *ft_start_with(const char *const *extra)
{
    char asan[512], pre[1200], opts[1024];
    snprintf(g_rc, sizeof g_rc, "%s/faketime.rc", th_tmproot());
    ft_set("+0");
    rel_asan_runtime(asan, sizeof asan);
    snprintf(pre, sizeof pre, "%s%s" FT_LIB, asan, asan[0] ? " " : "");
    const char *old = getenv("ASAN_OPTIONS");
    snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", old ? old : "",
             old && *old ? ":" : "");
    char *saved = old ? strdup(old) : NULL;
    setenv("ASAN_OPTIONS", opts, 1);
    setenv("LD_PRELOAD", pre, 1);
    setenv("FAKETIME_TIMESTAMP_FILE", g_rc, 1);
    setenv("FAKETIME_NO_CACHE", "1", 1);
    setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
    /* libfaketime 0.9.10's "monotonic fix" turns every pthread_cond_timedwait on a
     * CLOCK_MONOTONIC condition into an immediate timeout once monotonic time is not
     * faked: jobqd's maintenance and long-poll waits would spin (70% CPU) */
    setenv("FAKETIME_FORCE_MONOTONIC_FIX", "0", 1);
    setenv("NO_FAKE_STAT", "1", 1);              /* file times stay real (SQLite) */
    struct testsrv_opts o = { .real_clock = true, .extra = extra };
    struct testsrv *s = testsrv_start(&o);
    unsetenv("LD_PRELOAD");
    unsetenv("FAKETIME_TIMESTAMP_FILE");
    if (saved) setenv("ASAN_OPTIONS", saved, 1);
    else unsetenv("ASAN_OPTIONS");
    free(saved);
    return s;
}

static struct testsrv *ft_start(void)
{
    return ft_start_with(NULL);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* jobqd's wall clock minus the real one, in ms (from a probe job's created_at). */
static int64_t server_skew(struct testsrv *s, const char *tok)
{
    char id[TS_ID_MAX];
    int64_t before = wall_ms();
    REQUIRE_EQ(ts_enqueue(s, tok, "{\"type\":\"probe\",\"queue\":\"probe\",\"dedup\":false}", id),
               201);
    int64_t after = wall_ms();
    struct resp r;
    REQUIRE_EQ(ts_get(s, tok, id, &r), 200);
    int64_t created = ts_parse_time(jstr(r.json, "created_at"));
    resp_free(&r);
    return created - (before + after) / 2;
}

struct skew_arg { struct testsrv *s; const char *tok; int64_t want_ms; };

static bool skew_is(void *arg)
{
    struct skew_arg *a = arg;
    int64_t d = server_skew(a->s, a->tok) - a->want_ms;
    return d > -5000 && d < 5000;
}

/* Moves jobqd's clock to offset (seconds) and waits until jobqd reads it. */
static void jump(struct testsrv *s, const char *tok, const char *offset, int64_t want_ms)
{
    ft_set(offset);
    struct skew_arg a = { s, tok, want_ms };
    REQUIRE(poll_until(skew_is, &a, 10000));
}

/* Claims up to max jobs of queue (lease lease_ms, long-poll wait_ms) into r; status. */
static long claim(struct testsrv *s, const char *wk, const char *queue, int max, int lease_ms,
                  int wait_ms, struct resp *r)
{
    char body[160];
    snprintf(body, sizeof body, "{\"worker_id\":\"w\",\"max\":%d,\"lease_ms\":%d,\"wait_ms\":%d}",
             max, lease_ms, wait_ms);
    return ts_reqf(s, "POST", wk, body, r, "/v1/queues/%s/claim", queue);
}

/* ------------------------------------------------------------------ clock back */

enum { BACK_JOBS = 20 };

struct claimed {
    int n;                        /* jobs claimed so far */
    int early;                    /* claims whose started_at < run_at (server time) */
    int64_t first_real_ms, last_real_ms;  /* test monotonic time of the first/last claim */
};

/* Counts the jobs of one claim reply into c. */
static void count_claims(struct resp *r, struct claimed *c)
{
    json_t *jobs = jpath(r->json, "jobs");
    for (size_t i = 0; i < json_array_size(jobs); i++) {
        json_t *j = json_array_get(jobs, i);
        int64_t at = ts_parse_time(jstr(j, "run_at")), st = ts_parse_time(jstr(j, "started_at"));
        if (st < at) {
            c->early++;
            fprintf(stderr, "  early claim: run_at %s started_at %s\n", jstr(j, "run_at"),
                    jstr(j, "started_at"));
        }
        if (!c->n++) c->first_real_ms = th_now_ms();
        c->last_real_ms = th_now_ms();
    }
}

/* Claims from queue until want jobs came or until_ms (test monotonic) passed. */
static void claim_until(struct testsrv *s, const char *wk, const char *queue, int want,
                        int64_t until_ms, struct claimed *c)
{
    while (c->n < want && th_now_ms() < until_ms) {
        struct resp r;
        long st = claim(s, wk, queue, 100, 30000, 200, &r);
        CHECK_EQ(st, 200);
        count_claims(&r, c);
        resp_free(&r);
    }
}

TEST(t8_clock_back_1h)
{
    if (!ft_installed()) return;
    int n = REL_N(BACK_JOBS, 200);
    struct testsrv *s = ft_start();
    const char *u = ts_token(s, "cleo", "user"), *wk = ts_token(s, "wk", "worker");
    char body[160], id[TS_ID_MAX];
    /* jobs due in 3 s, made while the clock is right */
    int64_t made = th_now_ms();
    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof body, "{\"type\":\"cb\",\"queue\":\"cb\",\"dedup\":false,"
                 "\"delay_ms\":3000,\"params\":{\"i\":%d}}", i);
        REQUIRE_EQ(ts_enqueue(s, u, body, id), 201);
    }
    jump(s, u, "-3600", -3600000);
    /* past their run_at in real time (+3 s margin), still 1 h early for jobqd: 0 claims */
    struct claimed before = { 0 };
    claim_until(s, wk, "cb", 1, made + 6000, &before);
    int64_t past_due = th_now_ms() - made - 3000;
    CHECK_EQ(before.n, 0);

    /* delayed 2 s on the new clock: claimed after 2 s (real and server time), no stall */
    int64_t made2 = th_now_ms();
    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof body, "{\"type\":\"cb2\",\"queue\":\"cb2\",\"dedup\":false,"
                 "\"delay_ms\":2000,\"params\":{\"i\":%d}}", i);
        REQUIRE_EQ(ts_enqueue(s, u, body, id), 201);
    }
    struct claimed after = { 0 };
    claim_until(s, wk, "cb2", n, made2 + 2000 + 8000, &after);
    int64_t made2_end = th_now_ms();
    CHECK_EQ(after.n, n);
    CHECK_EQ(after.early, 0);
    CHECK(after.n == 0 || after.first_real_ms - made2 >= 1950);
    CHECK(after.n == 0 || after.last_real_ms - made2_end <= 2000 + 3000);

    /* the clock comes back: the first jobs are due now and claimed, none early */
    jump(s, u, "+0", 0);
    struct claimed back = { 0 };
    int64_t t_back = th_now_ms();
    claim_until(s, wk, "cb", n, t_back + 8000, &back);
    CHECK_EQ(back.n, n);
    CHECK_EQ(back.early, 0);
    printf("  t8 back: %d jobs due in 3 s, clock -1 h: %d claims in the %lld ms after their "
           "due time; %d jobs delayed 2 s after the jump claimed %lld..%lld ms after creation "
           "(%d early); clock restored: %d claimed within %lld ms (%d early)\n", n, before.n,
           (long long)past_due, after.n,
           (long long)(after.first_real_ms - made2), (long long)(after.last_real_ms - made2),
           after.early, back.n, (long long)(back.last_real_ms - t_back), back.early);
    testsrv_stop(s);
}

/* ------------------------------------------------------------------ clock forward */

enum { FWD_LEASE_MS = 10000 };

static int64_t processing(struct testsrv *s)
{
    struct resp r;
    long st = ts_req(s, "GET", "/v1/jobs?queue=cf&status=processing&limit=1", s->admin, NULL,
                     &r);
    int64_t v = st == 200 ? jint(r.json, "total_count") : -1;
    resp_free(&r);
    return v;
}

static bool none_processing(void *arg)
{
    return processing(arg) == 0;
}

/* Completes job id under lease with its key as result; returns the status. */
static long complete(struct testsrv *s, const char *wk, const char *id, const char *lease,
                     const char *key)
{
    char body[256];
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"key\":\"%s\"}}", lease,
             key);
    return st_post0(s, wk, id, "complete", body);
}

TEST(t8_clock_forward_1h)
{
    if (!ft_installed()) return;
    int n = REL_N(30, 200);
    struct testsrv *s = ft_start();
    const char *u = ts_token(s, "fred", "user"), *wk = ts_token(s, "wk", "worker");
    struct ledger *lg = ledger_new(NULL);
    char body[200], id[TS_ID_MAX], key[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "f%04d", i);
        snprintf(body, sizeof body, "{\"type\":\"cf\",\"queue\":\"cf\",\"dedup\":false,"
                 "\"max_attempts\":5,\"params\":{\"key\":\"%s\"}}", key);
        REQUIRE_EQ(ts_enqueue(s, u, body, id), 201);
        ledger_create(lg, key, LG_OK, 201, id);
    }
    /* worker A takes every job and stalls */
    char ids[200][TS_ID_MAX], leases[200][TS_ID_MAX], keys[200][32];
    struct resp r;
    json_t *jobs;
    for (int got = 0; got < n;) {                    /* batches of at most 100 (the cap) */
        REQUIRE_EQ(claim(s, wk, "cf", n - got > 100 ? 100 : n - got, FWD_LEASE_MS, 0, &r), 200);
        jobs = jpath(r.json, "jobs");
        REQUIRE(json_array_size(jobs) > 0);
        for (size_t k = 0; k < json_array_size(jobs); k++, got++) {
            json_t *j = json_array_get(jobs, k);
            snprintf(ids[got], TS_ID_MAX, "%s", jstr(j, "id"));
            snprintf(leases[got], TS_ID_MAX, "%s", jstr(j, "lease_token"));
            snprintf(keys[got], sizeof keys[got], "%s", jstr(j, "params.key"));
            int64_t to = ts_parse_time(jstr(j, "lease_expires_at"));
            ledger_claim(lg, ids[got], leases[got], to - FWD_LEASE_MS, to);
        }
        resp_free(&r);
    }

    /* +1 h: every lease is long expired for jobqd; maintenance rescues them */
    int64_t t_jump = th_now_ms();
    jump(s, u, "+3600", 3600000);
    CHECK(poll_until(none_processing, s, FWD_LEASE_MS + 5000));
    int64_t rescued_ms = th_now_ms() - t_jump;

    /* worker A wakes up: fenced */
    int fenced = 0;
    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof body, "{\"lease_token\":\"%s\"}", leases[i]);
        fenced += st_post0(s, wk, ids[i], "heartbeat", body) == 409;
        long st = complete(s, wk, ids[i], leases[i], keys[i]);
        fenced += st == 409;
        ledger_complete(lg, ids[i], leases[i], st == 200 ? LG_OK : LG_FAIL, st, false);
    }
    CHECK_EQ(fenced, 2 * n);

    /* worker B finishes everything, once */
    int done = 0;
    int64_t dl = th_now_ms() + 10000;
    while (done < n && th_now_ms() < dl) {
        REQUIRE_EQ(claim(s, wk, "cf", 100, FWD_LEASE_MS, 200, &r), 200);
        jobs = jpath(r.json, "jobs");
        for (size_t i = 0; i < json_array_size(jobs); i++) {
            json_t *j = json_array_get(jobs, i);
            int64_t to = ts_parse_time(jstr(j, "lease_expires_at"));
            ledger_claim(lg, jstr(j, "id"), jstr(j, "lease_token"), to - FWD_LEASE_MS, to);
            long st = complete(s, wk, jstr(j, "id"), jstr(j, "lease_token"),
                               jstr(j, "params.key"));
            CHECK_EQ(st, 200);
            ledger_complete(lg, jstr(j, "id"), jstr(j, "lease_token"),
                            st == 200 ? LG_OK : LG_FAIL, st, false);
            done += st == 200;
        }
        resp_free(&r);
    }
    CHECK_EQ(done, n);

    /* final state: the ledger, and the rescue counted as an attempt */
    int attempts2 = 0;
    REQUIRE_EQ(ts_req(s, "GET", "/v1/jobs?queue=cf&limit=1000", s->admin, NULL, &r), 200);
    jobs = jpath(r.json, "jobs");
    for (size_t i = 0; i < json_array_size(jobs); i++) {
        json_t *j = json_array_get(jobs, i);
        ledger_final(lg, jstr(j, "id"), jstr(j, "status"), jstr(j, "params.key"),
                     jstr(j, "result.key"));
        attempts2 += jint(j, "attempts") == 2;
    }
    resp_free(&r);
    struct lg_counts lc = ledger_check(lg, stderr, 10);
    ledger_print(&lc, stdout, "t8-forward");
    printf("  t8 forward: %d leases of %d ms, clock +1 h: rescued %lld ms after the jump; "
           "%d of %d stale heartbeats/completes fenced (409); %d completed by the new worker; "
           "%d jobs at attempts 2\n", n, FWD_LEASE_MS, (long long)rescued_ms, fenced, 2 * n,
           done, attempts2);
    CHECK_EQ(lc.acked, n);
    CHECK_EQ(lc.jobs_final, n);
    CHECK_EQ(lc.lost, 0);
    CHECK_EQ(lc.completed_twice, 0);
    CHECK_EQ(lc.overlap, 0);
    CHECK_EQ(lc.unexpected, 0);
    CHECK_EQ(attempts2, n);
    ledger_free(lg);
    testsrv_stop(s);
}

/* ------------------------------------------------------------------ signal mask */

/* SigBlk of one thread of pid (from /proc), or 0 if unreadable. */
static unsigned long long sig_blocked(int pid, const char *tid)
{
    char path[128], line[256];
    snprintf(path, sizeof path, "/proc/%d/task/%s/status", pid, tid);
    FILE *f = fopen(path, "r");
    unsigned long long m = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "SigBlk:", 7)) m = strtoull(line + 7, NULL, 16);
    if (f) fclose(f);
    return m;
}

/* Found here: under libfaketime jobqd died by SIGTERM's default action about every other
 * stop (exit 143, no "shutting down"): the store's threads start before main blocked
 * SIGTERM, so one of them could take it. Every thread but main (in sigwait) must block
 * SIGTERM and SIGINT. */
/* ------------------------------------------------------------------ PostgreSQL, +30 s */

/* Job id's status and error_code into st/code (cap 32 each); HTTP status. */
static long job_state(struct testsrv *s, const char *tok, const char *id, char *st, char *code)
{
    struct resp r;
    long hs = ts_get(s, tok, id, &r);
    snprintf(st, 32, "%s", jstr(r.json, "status") ? jstr(r.json, "status") : "");
    snprintf(code, 32, "%s", jstr(r.json, "error_code") ? jstr(r.json, "error_code") : "");
    resp_free(&r);
    return hs;
}

TEST(t8_pg_node_30s_ahead_keeps_the_database_clock)
{
    if (!ft_installed()) return;
    /* the cluster and the database are made before LD_PRELOAD is set: the database keeps
     * real time (and psql does not run under libasan and libfaketime) */
    char *url = thpg_new_db();
    REQUIRE(url != NULL);
    /* node B first, so it holds the maintenance leadership; then its clock jumps +30 s */
    const char *extra[] = { "--db", url, NULL };
    struct testsrv *b = ft_start_with(extra);
    struct testsrv_opts oa = { .real_clock = true, .extra = extra };
    struct testsrv *a = testsrv_start(&oa);
    const char *u = ts_token(a, "pat", "user"), *wk = ts_token(a, "wrk", "worker");
    WAIT_FOR(rel_log_count(b, "maintenance leader") > 0, 5000);
    ft_set("+30");
    /* B's jobs carry the database's time, not its own: within a second (one tick) */
    struct skew_arg sa = { b, u, 0 };
    WAIT_FOR(rel_log_count(b, "uses the database's") > 0, 5000);
    CHECK(poll_until(skew_is, &sa, 5000));
    int64_t skew = server_skew(b, u);
    CHECK(skew > -1000 && skew < 1000);

    /* 0 early claims: 10 jobs due 2 s from now (A's clock, the real one), long-polled on B */
    enum { N = 10 };
    char id[TS_ID_MAX], body[256], at[TIME_STR_MAX];
    int64_t due = wall_ms() + 2000;
    time_fmt(due, at);
    for (int i = 0; i < N; i++) {
        snprintf(body, sizeof body, "{\"type\":\"d\",\"queue\":\"skew\",\"run_at\":\"%s\","
                 "\"params\":{\"i\":%d}}", at, i);
        REQUIRE_EQ(ts_enqueue(a, u, body, id), 201);
    }
    int got = 0, early = 0;
    int64_t until = th_now_ms() + 10000;
    while (got < N && th_now_ms() < until) {
        struct resp r;
        CHECK_EQ(claim(b, wk, "skew", N, 60000, 500, &r), 200);
        int64_t real = wall_ms();
        size_t n = json_array_size(jpath(r.json, "jobs"));
        got += (int)n;
        if (n && real < due) {
            early += (int)n;
            fprintf(stderr, "  %zu claimed %lld ms before run_at\n", n, (long long)(due - real));
        }
        resp_free(&r);
    }
    CHECK_EQ(got, N);
    CHECK_EQ(early, 0);

    /* 0 premature expiries: a lease of 4 s taken on A lives 4 s on B's (leader's) watch */
    REQUIRE_EQ(ts_enqueue(a, u, "{\"type\":\"l\",\"queue\":\"lease\"}", id), 201);
    struct resp r;
    REQUIRE_EQ(claim(a, wk, "lease", 1, 4000, 0, &r), 200);
    int64_t expires = ts_parse_time(jstr(r.json, "jobs.0.lease_expires_at"));
    resp_free(&r);
    char st[32], code[32];
    int premature = 0;
    unsigned step = 0;
    while (wall_ms() < expires - 300) {        /* watch the lease while it is live */
        CHECK_EQ(job_state(b, u, id, st, code), 200);
        premature += strcmp(st, "processing") != 0;
        th_nap(&step);
    }
    CHECK_EQ(premature, 0);
    /* and rescued once it ran out: lease + the leader's sweep (1 s) + slack */
    int64_t rescued = 0;
    until = th_now_ms() + 8000;
    while (!rescued && th_now_ms() < until) {
        CHECK_EQ(job_state(b, u, id, st, code), 200);
        if (!strcmp(code, "lease_expired"))
            rescued = wall_ms();
        else
            th_nap(&step);
    }
    CHECK(rescued >= expires);
    printf("  t8 pg +30 s leader: skew seen %lld ms, %d/%d claims, %d early; lease of 4 s: "
           "%d premature rescues, rescued %lld ms after it ran out\n", (long long)skew, got, N,
           early, premature, (long long)(rescued - expires));
    testsrv_stop(a);
    testsrv_stop(b);
    free(url);
}

TEST(t8_sigterm_blocked_in_every_thread)
{
    struct testsrv *s = testsrv_start(NULL);
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)s->pid);
    FILE *p;
    char cmd[128], tid[32];
    snprintf(cmd, sizeof cmd, "ls %s", dir);
    REQUIRE((p = popen(cmd, "r")) != NULL);
    int threads = 0, open = 0;
    const unsigned long long want = (1ULL << (SIGTERM - 1)) | (1ULL << (SIGINT - 1));
    while (fgets(tid, sizeof tid, p)) {
        tid[strcspn(tid, "\n")] = '\0';
        if (atoi(tid) == (int)s->pid) continue;           /* main: unblocked in sigwait */
        threads++;
        if ((sig_blocked((int)s->pid, tid) & want) != want) {
            open++;
            fprintf(stderr, "  thread %s does not block SIGTERM/SIGINT\n", tid);
        }
    }
    pclose(p);
    printf("  %d threads besides main, %d with SIGTERM or SIGINT unblocked\n", threads, open);
    CHECK(threads > 0);
    CHECK_EQ(open, 0);
    testsrv_stop(s);
}

TEST_MAIN()
