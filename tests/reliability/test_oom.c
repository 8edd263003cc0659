/*
 * test_oom.c - RELIABILITY.md T11: allocation failure at N. jobqd --test-fail-alloc N
 * (test builds) routes SQLite's allocator (sqlite3_config SQLITE_CONFIG_MALLOC) and
 * jansson's (every request body and reply) through a fail-at-N hook; SIGUSR1 arms it, and
 * the Nth allocation after that fails, once.
 *
 * One round per N: restart jobqd with --test-fail-alloc N, arm it, send 30 requests (10
 * keyed creates, 10 gets, 5 claims, 5 completes). Every reply must be a 2xx with a JSON
 * body or a 500/503 JSON error - never a crash, an empty 2xx, or a 4xx that blames the
 * client. jobqd must exit 0 on SIGTERM after every round (no crash, no ASan/UBSan
 * report, no leak under LSan), and integrity_check is ok. Failed requests are retried on
 * the next jobqd with the same Idempotency-Key; after a final drain the ledger (ledger.h)
 * finds lost 0, dup_created 0, completed_twice 0, overlap 0, unexpected 0 - no partial
 * change survives a failed allocation.
 * N: CI 1..15, then x1.33 until a round's 30 requests no longer reach N ("all": about
 * 14,000 allocations); JQ_LONG=1: every N up to 400, then every 13th until all.
 * Exploration: JQ_OOM_FROM=n starts there, JQ_OOM_STRIDE=k steps by k after the dense part.
 * A failing round's jobqd.log holds the failed allocation's stack (ASan builds).
 */
#include "rel.h"
#include "ledger.h"

#include <signal.h>

enum { CREATES = 10, GETS = 10, CLAIMS = 5, LEASE_MS = 600000, PENDING_MAX = 64 };

struct pending { char id[TS_ID_MAX], lease[TS_ID_MAX], key[32]; };

struct oom {
    struct testsrv *s;
    struct ledger *lg;
    const char *user, *worker;
    char anchor[TS_ID_MAX];          /* a job made before any fault: always readable */
    char nbuf[24];                   /* the --test-fail-alloc argument of this round */
    char keys[PENDING_MAX][32];      /* creates that got no 2xx yet */
    struct pending done[PENDING_MAX];/* completes that got no 2xx yet */
    int nkeys, ndone;
    long requests, ok, oom5xx, bad;
};

/* From the last "fail-alloc: X allocations since armed, F failed" line: F (-1: none). */
static long last_fired(struct testsrv *s, long *counted)
{
    char path[1100], line[1024];
    snprintf(path, sizeof path, "%s/jobqd.log", s->dir);
    FILE *f = fopen(path, "r");
    long fired = -1;
    *counted = -1;
    while (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "fail-alloc: ");
        long c, x;
        if (p && sscanf(p, "fail-alloc: %ld allocations since armed, %ld failed", &c, &x) == 2) {
            *counted = c;
            fired = x;
        }
    }
    if (f) fclose(f);
    return fired;
}

struct armed { struct testsrv *s; long before; };

static bool is_armed(void *arg)
{
    struct armed *a = arg;
    return rel_log_count(a->s, "fail-alloc: armed") > a->before;
}

/* Judges one reply under the fault: a 2xx with a JSON body (or a 204), or a 500/503 JSON
 * error; anything else is a defect. Returns true for a 2xx. */
static bool judge(struct oom *o, const char *what, long st, struct resp *r)
{
    o->requests++;
    bool json = !strncmp(r->content_type, "application/json", 16) && r->json;
    if (st >= 200 && st < 300 && (json || st == 204)) {
        o->ok++;
        return true;
    }
    if ((st == 500 || st == 503) && json && jstr(r->json, "error.code")) {
        o->oom5xx++;
        return false;
    }
    if (o->bad++ < 10)
        fprintf(stderr, "  bad reply (%s, fail-alloc %s): %ld %.200s\n", what, o->nbuf, st,
                r->body);
    return false;
}

/* POST /v1/jobs for key with its Idempotency-Key, logged in the ledger. judged: under the
 * fault (else it must succeed). True on 2xx; a failure is queued for a retry. */
static bool create(struct oom *o, const char *key, bool judged)
{
    char hdr[64], body[200];
    snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key);
    snprintf(body, sizeof body, "{\"type\":\"oom\",\"queue\":\"oom\",\"dedup\":false,"
             "\"cache\":false,\"max_attempts\":100,\"params\":{\"key\":\"%s\"}}", key);
    struct resp r;
    long st = st_create_h(o->s, o->user, hdr, body, &r);
    bool ok = judged ? judge(o, "create", st, &r) : CHECK(st == 201 || st == 200);
    ledger_create(o->lg, key, ok ? LG_OK : LG_UNKNOWN, st, ok ? jstr(r.json, "id") : NULL);
    if (!ok && o->nkeys < PENDING_MAX)
        snprintf(o->keys[o->nkeys++], sizeof o->keys[0], "%s", key);
    resp_free(&r);
    return ok;
}

/* Completes a claimed job (Idempotency-Key per lease), logged in the ledger. judged:
 * under the fault (else it must succeed). A failure is queued for a retry. */
static bool complete(struct oom *o, const struct pending *p, bool judged)
{
    char hdr[160], body[256], path[128];
    snprintf(hdr, sizeof hdr, "Idempotency-Key: c-%s", p->lease);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"key\":\"%s\"}}",
             p->lease, p->key);
    snprintf(path, sizeof path, "/v1/jobs/%s/complete", p->id);
    const char *h[] = { hdr, NULL };
    struct ts_http rq = { .method = "POST", .path = path, .token = o->worker, .body = body,
                          .headers = h };
    struct resp r;
    long st = ts_do(o->s, &rq, &r);
    bool ok = judged ? judge(o, "complete", st, &r) : CHECK_EQ(st, 200);
    if (st == 409) {                         /* show what the job looks like to jobqd */
        struct resp g;
        ts_get(o->s, o->worker, p->id, &g);
        fprintf(stderr, "  job %s after a 409 complete under lease %s: %.300s\n", p->id,
                p->lease, g.body);
        resp_free(&g);
    }
    ledger_complete(o->lg, p->id, p->lease, ok ? LG_OK : LG_UNKNOWN, st,
                    !strcmp(r.replayed, "true"));
    if (!ok && o->ndone < PENDING_MAX)
        o->done[o->ndone++] = *p;
    resp_free(&r);
    return ok;
}

/* Claims up to max jobs of queue oom and completes each. Returns the jobs claimed. */
static int claim_complete(struct oom *o, int max, bool judged)
{
    char body[128];
    snprintf(body, sizeof body, "{\"worker_id\":\"w\",\"max\":%d,\"lease_ms\":%d}", max,
             LEASE_MS);
    struct resp r;
    long st = ts_claim(o->s, o->worker, "oom", body, &r);
    if (judged ? !judge(o, "claim", st, &r) : !CHECK_EQ(st, 200)) {
        resp_free(&r);
        return 0;
    }
    json_t *jobs = jpath(r.json, "jobs");
    int n = (int)json_array_size(jobs);
    for (int i = 0; i < n; i++) {
        json_t *j = json_array_get(jobs, (size_t)i);
        struct pending p;
        snprintf(p.id, sizeof p.id, "%s", jstr(j, "id"));
        snprintf(p.lease, sizeof p.lease, "%s", jstr(j, "lease_token"));
        snprintf(p.key, sizeof p.key, "%s", jstr(j, "params.key") ? jstr(j, "params.key") : "");
        int64_t to = ts_parse_time(jstr(j, "lease_expires_at"));
        ledger_claim(o->lg, p.id, p.lease, to - LEASE_MS, to);
        complete(o, &p, judged);
    }
    resp_free(&r);
    return n;
}

/* Retries, with no fault armed, what failed under the last one (same Idempotency-Keys). */
static void retry_failed(struct oom *o)
{
    char keys[PENDING_MAX][32];
    struct pending done[PENDING_MAX];
    int nk = o->nkeys, nd = o->ndone;
    memcpy(keys, o->keys, sizeof keys);
    memcpy(done, o->done, sizeof done);
    o->nkeys = o->ndone = 0;
    for (int i = 0; i < nk; i++)
        create(o, keys[i], false);
    for (int i = 0; i < nd; i++)
        complete(o, &done[i], false);
}

/* One round at n: jobqd restarted with --test-fail-alloc n, the failures of the last
 * round retried, the fault armed (SIGUSR1, then its log line), 30 requests, SIGTERM.
 * Returns whether the allocation failed; counts a crash (exit status not 0). */
static bool round_n(struct oom *o, long n, int round, int *crashes, const char *chk)
{
    snprintf(o->nbuf, sizeof o->nbuf, "%ld", n);
    testsrv_restart(o->s);
    retry_failed(o);
    struct armed a = { o->s, rel_log_count(o->s, "fail-alloc: armed") };
    REQUIRE_EQ(kill(o->s->pid, SIGUSR1), 0);
    REQUIRE(poll_until(is_armed, &a, 5000));
    for (int i = 0; i < CREATES; i++) {
        char key[32];
        snprintf(key, sizeof key, "r%04d-%02d", round, i);
        create(o, key, true);
    }
    for (int i = 0; i < GETS; i++) {
        struct resp r;
        long st = i % 2 ? ts_get(o->s, o->user, o->anchor, &r)
                        : ts_req(o->s, "GET", "/v1/jobs?queue=oom&limit=5", o->user, NULL, &r);
        judge(o, i % 2 ? "get" : "list", st, &r);
        resp_free(&r);
    }
    for (int i = 0; i < CLAIMS; i++)
        claim_complete(o, 1, true);
    int rc = testsrv_term(o->s);
    if (rc != 0) {
        (*crashes)++;
        fprintf(stderr, "  fail-alloc %ld: jobqd exit status %d\n", n, rc);
        testsrv_dump_log(o->s);
    }
    if (!rel_integrity_copy(o->s->db, chk))
        th_fail(__FILE__, __LINE__, "integrity_check after fail-alloc %ld", n);
    long counted, fired = last_fired(o->s, &counted);
    return fired > 0;
}

static int64_t admin_int(struct testsrv *s, const char *path, const char *field)
{
    struct resp r;
    long st = ts_req(s, "GET", path, s->admin, NULL, &r);
    int64_t v = st == 200 ? jint(r.json, field) : INT64_MIN;
    resp_free(&r);
    return v;
}

TEST(t11_fail_alloc_at_n)
{
    th_set_timeout(REL_N(240, 7000));
    static char nval[24] = "1";
    const char *extra[] = { "--test-fail-alloc", nval, NULL };
    struct testsrv_opts so = { .extra = extra };
    struct oom o = { 0 };
    o.s = testsrv_start(&so);
    o.user = ts_token(o.s, "olga", "user");
    o.worker = ts_token(o.s, "wk", "worker");
    o.lg = ledger_new(NULL);
    REQUIRE_EQ(ts_enqueue(o.s, o.user, "{\"type\":\"anchor\",\"queue\":\"anchor\"}", o.anchor),
               201);
    char *chk = th_mkdtemp("integrity");
    int64_t t0 = th_now_ms();
    int rounds = 0, fired = 0, crashes = 0;
    const char *sv = getenv("JQ_OOM_STRIDE"), *fv = getenv("JQ_OOM_FROM");   /* explore */
    long n = fv ? atol(fv) : 1, dense = REL_N(15, 400);
    long stride = sv ? atol(sv) : REL_N(0, 13);
    for (; rounds < REL_N(100, 5000); rounds++) {
        snprintf(nval, sizeof nval, "%ld", n);
        bool hit = round_n(&o, n, rounds, &crashes, chk);
        fired += hit;
        if (!hit || crashes) break;                     /* 30 requests no longer reach n */
        n = n < dense ? n + 1 : stride > 0 ? n + stride : n + n / 3 + 1;
    }
    long last_n = n;
    /* the last failures retried, orphaned leases (claims whose reply failed) rescued, the
     * queue drained; then the ledger */
    snprintf(nval, sizeof nval, "0");
    testsrv_restart(o.s);
    retry_failed(&o);
    for (int i = 0; i < 5 && admin_int(o.s, "/v1/stats", "counts.pending") +
                             admin_int(o.s, "/v1/stats", "counts.processing") > 0; i++) {
        CHECK_EQ(ts_advance(o.s, 2 * LEASE_MS), 200);
        while (claim_complete(&o, 50, false) > 0) {}
    }
    rel_final_list(o.s, o.lg, "&queue=oom");
    struct lg_counts lc = ledger_check(o.lg, stderr, 10);
    ledger_print(&lc, stdout, "t11");
    printf("  t11: %d rounds (N = 1 .. %ld), allocation failed in %d; %ld requests under the "
           "fault: %ld 2xx, %ld 500/503 JSON, %ld other; %d crashes or sanitizer exits; "
           "%.1f s\n", rounds + 1, last_n, fired, o.requests, o.ok, o.oom5xx, o.bad, crashes,
           (double)(th_now_ms() - t0) / 1000);
    CHECK_EQ(crashes, 0);
    CHECK_EQ(o.bad, 0);
    CHECK(fired >= 15);
    CHECK(o.oom5xx > 0);
    CHECK_EQ(lc.lost, 0);
    CHECK_EQ(lc.dup_created, 0);
    CHECK_EQ(lc.completed_twice, 0);
    CHECK_EQ(lc.overlap, 0);
    CHECK_EQ(lc.unexpected, 0);
    ledger_free(o.lg);
    free(chk);
    testsrv_stop(o.s);
}

TEST_MAIN()
