/*
 * test_idemcrash.c - RELIABILITY.md T5: idempotency across a crash, and cron fire times
 * enqueued exactly once across restarts.
 *
 * Keyed creates: producer threads create jobs, each with its own Idempotency-Key and a
 * body naming the key; every request whose reply was not received (transport error) or
 * was a 5xx is "unknown" and retried with the same key and body until it is answered.
 * jobqd is killed -9 at random moments while they run (when a random share of the keys
 * has been acked) and restarted at once on the same database, after a
 * PRAGMA integrity_check of a copy of what the crash left. Then every job is listed:
 * exactly one job per key, and it is the job the key's 2xx reply named; a key whose
 * request was in flight at the kill and had committed is answered on retry by the
 * stored reply (Idempotent-Replayed). (ledger.h's checker is not used: its "lost" wants
 * completed jobs, and ledger_check qsorts a NULL claims array when nothing was claimed,
 * which UBSan reports.)
 * Before each kill the test also sends a burst of 64 creates on raw connections whose
 * replies it never reads (a reply lost with the crash) and kills once a random number of
 * those 201s is waiting, so the "committed, reply lost" case happens every time; their
 * retries after the restart must replay the stored reply with the same job.
 * Finally every key is sent once more: each must replay its own job.
 * CI: 2,000 keys from 8 producers + 2 x 64 blind, 2 kills; JQ_LONG=1: 5,000 keys + 5 x 64,
 * 5 kills.
 *
 * Cron: schedules with several cron expressions (UTC and Asia/Kolkata, catch_up up to
 * 100) and a fake clock moved forward in 10 rounds of random minutes; each round kills
 * jobqd -9 at a different point (while the clock move is firing the schedules, after it
 * fired them, a clean SIGTERM restart, or a kill and restart without putting the clock
 * back, so the next round catches up a longer gap). The fake clock restarts at wall time,
 * so after each restart the test sets it back (set_ms). A "mid-fire" kill comes once a
 * random part of the due jobs is visible to a reader (each schedule fires in its own
 * transaction), or after a random pause of up to 40 ms. At the end every
 * (schedule, fire time) between the creation and the final clock must have exactly one
 * job (its run_at is the fire time; params.s names the schedule), none missing, none
 * extra, and each schedule's next_run_at must be the next fire time.
 */
#include "rel.h"

#include <signal.h>
#include <stdatomic.h>
#include <time.h>

static bool transient(long st)
{
    return st == 0 || st >= 500;
}

/* A pause that picks the moment of a kill (not a wait for a condition). */
static void pause_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ keyed creates */

struct ikey {
    char id[TS_ID_MAX];          /* job id of the 2xx reply */
    int unknowns;                /* transport errors and 5xx before it */
    bool acked, replayed;        /* the 2xx was a replay (Idempotent-Replayed) */
    bool proven;                 /* a blind create whose 201 arrived before the kill */
};

struct ic {
    struct testsrv *s;
    const char *user;
    pthread_rwlock_t lk;          /* readers: requests; writer: a restart (s->url changes) */
    struct ikey *keys;
    int nkeys, producers;
    atomic_long acked;
    atomic_int producers_left;
};

struct iprod { struct ic *w; int idx; };

static void key_req(int i, char *key, size_t kcap, char *hdr, size_t hcap, char *body,
                    size_t bcap)
{
    snprintf(key, kcap, "idem-%05d", i);
    snprintf(hdr, hcap, "Idempotency-Key: %s", key);
    snprintf(body, bcap, "{\"type\":\"idem\",\"queue\":\"iq\",\"dedup\":false,\"cache\":false,"
             "\"params\":{\"key\":\"%s\"}}", key);
}

static void *iproducer(void *arg)
{
    struct iprod *p = arg;
    struct ic *w = p->w;
    struct tsconn *c = tsconn_new(w->s);
    for (int i = p->idx; i < w->nkeys; i += w->producers) {
        char key[32], hdr[64], body[256];
        key_req(i, key, sizeof key, hdr, sizeof hdr, body, sizeof body);
        const char *h[] = { hdr, NULL };
        struct ts_http rq = { .method = "POST", .path = "/v1/jobs", .token = w->user,
                              .body = body, .headers = h };
        struct ikey *k = &w->keys[i];
        unsigned step = 0;
        for (;;) {
            struct resp r;
            pthread_rwlock_rdlock(&w->lk);
            long st = tsconn_do(c, &rq, &r);
            pthread_rwlock_unlock(&w->lk);
            if (st == 201 || st == 200) {
                const char *id = jstr(r.json, "id");
                snprintf(k->id, sizeof k->id, "%s", id ? id : "");
                k->acked = true;
                k->replayed = !strcmp(r.replayed, "true");
                resp_free(&r);
                atomic_fetch_add(&w->acked, 1);
                break;
            }
            if (!transient(st)) {
                th_fail(__FILE__, __LINE__, "create %s -> %ld %s", key, st, r.body);
                resp_free(&r);
                break;
            }
            resp_free(&r);
            k->unknowns++;
            th_nap(&step);
        }
    }
    tsconn_free(c);
    atomic_fetch_sub(&w->producers_left, 1);
    return NULL;
}

/* Every job (admin, cursor pages): per-key job counts into per_key and the first job id
 * into ids (index from the key "idem-NNNNN"); returns the jobs listed. */
static long list_keyed(struct testsrv *s, int *per_key, char (*ids)[TS_ID_MAX], int nkeys,
                       long *foreign)
{
    char cursor[256] = "", path[512];
    long n = 0;
    for (;;) {
        snprintf(path, sizeof path, "/v1/jobs?limit=1000&order=asc%s%s",
                 cursor[0] ? "&cursor=" : "", cursor);
        struct resp r;
        if (!CHECK_EQ(ts_req(s, "GET", path, s->admin, NULL, &r), 200)) {
            resp_free(&r);
            return n;
        }
        json_t *jobs = jpath(r.json, "jobs");
        for (size_t i = 0; i < json_array_size(jobs); i++) {
            json_t *j = json_array_get(jobs, i);
            const char *key = jstr(j, "params.key");
            int idx = -1;
            if (key && sscanf(key, "idem-%d", &idx) == 1 && idx >= 0 && idx < nkeys) {
                if (!per_key[idx]++)
                    snprintf(ids[idx], TS_ID_MAX, "%s", jstr(j, "id") ? jstr(j, "id") : "");
            } else
                ++*foreign;
            n++;
        }
        const char *next = jstr(r.json, "next_cursor");
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        resp_free(&r);
        if (!cursor[0]) return n;
    }
}

enum { NBLIND = 64 };

/* Sends the create of key i on a fresh connection and returns its fd without reading
 * the reply (-1 on a transport error). */
static int send_blind(struct ic *w, int i)
{
    char key[32], hdr[64], body[256], req[1024];
    key_req(i, key, sizeof key, hdr, sizeof hdr, body, sizeof body);
    int n = snprintf(req, sizeof req, "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer %s\r\n%s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", w->user, hdr,
                     strlen(body), body);
    int fd = rel_connect(w->s->port);
    if (fd >= 0 && !rel_send_all(fd, req, (size_t)n)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Fds of fd[0..n) with a reply (or EOF) waiting; waits up to 1 ms for the first. */
static int readable(const int *fd, int n)
{
    struct pollfd p[NBLIND];
    for (int i = 0; i < n; i++) p[i] = (struct pollfd){ .fd = fd[i], .events = POLLIN };
    if (poll(p, (nfds_t)n, 1) < 0) return 0;
    int k = 0;
    for (int i = 0; i < n; i++) k += (p[i].revents & (POLLIN | POLLHUP)) != 0;
    return k;
}

/* Retries key i (its first reply was lost) until it is answered. */
static void retry_key(struct ic *w, struct tsconn *c, int i)
{
    char key[32], hdr[64], body[256];
    key_req(i, key, sizeof key, hdr, sizeof hdr, body, sizeof body);
    const char *h[] = { hdr, NULL };
    struct ts_http rq = { .method = "POST", .path = "/v1/jobs", .token = w->user, .body = body,
                          .headers = h };
    struct ikey *k = &w->keys[i];
    k->unknowns++;                              /* the lost reply */
    for (int tries = 0; tries < 1000; tries++) {
        struct resp r;
        long st = tsconn_do(c, &rq, &r);
        if (st == 201 || st == 200) {
            const char *id = jstr(r.json, "id");
            snprintf(k->id, sizeof k->id, "%s", id ? id : "");
            k->acked = true;
            k->replayed = !strcmp(r.replayed, "true");
            resp_free(&r);
            return;
        }
        if (!transient(st)) th_fail(__FILE__, __LINE__, "retry %s -> %ld %s", key, st, r.body);
        resp_free(&r);
        if (!transient(st)) return;
        k->unknowns++;
    }
}

TEST(t5_keyed_creates_one_job_per_key_across_kill9)
{
    int nkeys = REL_N(2000, 5000), nprod = 8, kills = REL_N(2, 5);
    th_set_timeout(REL_N(120, 900));
    struct ic w = { .nkeys = nkeys, .producers = nprod };
    w.s = testsrv_start(NULL);
    w.user = ts_token(w.s, "idem", "user");
    int total = nkeys + kills * NBLIND;         /* the blind keys follow the producers' */
    w.keys = calloc((size_t)total, sizeof *w.keys);
    REQUIRE(w.keys != NULL);
    pthread_rwlockattr_t at;
    pthread_rwlockattr_init(&at);
    pthread_rwlockattr_setkind_np(&at, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&w.lk, &at);
    atomic_store(&w.producers_left, nprod);
    char *chk = th_mkdtemp("integrity");

    /* kill k when a random share of the keys in [15%, 85%] is acked, in rising order */
    srand((unsigned)getpid() ^ (unsigned)time(NULL));
    long at_acked[8];
    for (int k = 0; k < kills; k++) {
        long lo = nkeys * (15 + 70 * k / kills) / 100, hi = nkeys * (15 + 70 * (k + 1) / kills) / 100;
        at_acked[k] = lo + rand() % (hi - lo);
    }

    pthread_t pt[8];
    struct iprod pp[8];
    int64_t t0 = th_now_ms();
    for (int i = 0; i < nprod; i++) {
        pp[i] = (struct iprod){ &w, i };
        REQUIRE_EQ(pthread_create(&pt[i], NULL, iproducer, &pp[i]), 0);
    }
    /* each kill: besides the producers' requests in flight, a burst of NBLIND creates
     * whose replies are never read (a reply lost with the crash); the kill comes once a
     * random number of their replies is waiting, so some committed and some did not */
    int integrity_ok = 0, done_kills = 0;
    long proven = 0;                            /* blind creates whose 201 came before the kill */
    struct tsconn *mc = tsconn_new(w.s);
    for (int k = 0; k < kills; k++) {
        unsigned step = 0;
        while (atomic_load(&w.acked) < at_acked[k] && atomic_load(&w.producers_left) > 0)
            th_nap(&step);
        int fd[NBLIND], b0 = nkeys + k * NBLIND, need = 1 + rand() % (NBLIND / 2), ready = 0;
        for (int j = 0; j < NBLIND; j++) fd[j] = send_blind(&w, b0 + j);
        int64_t dl = th_now_ms() + 10000;
        while ((ready = readable(fd, NBLIND)) < need && th_now_ms() < dl) {}
        long before = atomic_load(&w.acked);
        testsrv_kill9(w.s);
        done_kills++;
        int got = 0;
        for (int j = 0; j < NBLIND; j++) {
            if (fd[j] < 0) continue;
            char buf[4096];
            struct pollfd p = { .fd = fd[j], .events = POLLIN };
            if (poll(&p, 1, 0) == 1 && rel_read_all(fd[j], buf, sizeof buf, 1000) > 0 &&
                rel_status(buf) == 201) {
                w.keys[b0 + j].proven = true;
                got++;
            }
            close(fd[j]);
        }
        proven += got;
        pthread_rwlock_wrlock(&w.lk);
        integrity_ok += CHECK(rel_integrity_copy(w.s->db, chk));
        testsrv_restart(w.s);
        pthread_rwlock_unlock(&w.lk);
        for (int j = 0; j < NBLIND; j++) retry_key(&w, mc, b0 + j);
        printf("  kill %d: %ld of %d producer keys acked at the kill; %d of %d blind creates "
               "answered 201 before it (waited for %d) (%.1f s)\n", k + 1, before, nkeys, got,
               NBLIND, need, (double)(th_now_ms() - t0) / 1000);
        CHECK(before < nkeys);                     /* the kill was mid-run */
        CHECK(got >= need);
    }
    tsconn_free(mc);
    for (int i = 0; i < nprod; i++) pthread_join(pt[i], NULL);
    int64_t t_run = th_now_ms() - t0;

    /* the final list: one job per key, the one the 2xx named */
    int *per_key = calloc((size_t)total, sizeof *per_key);
    REQUIRE(per_key != NULL);
    char (*ids)[TS_ID_MAX] = calloc((size_t)total, sizeof *ids);
    REQUIRE(ids != NULL);
    long foreign = 0;
    long listed = list_keyed(w.s, per_key, ids, total, &foreign);
    long missing = 0, dup = 0, unacked = 0, unknown_keys = 0, replayed_after_unknown = 0,
         unknowns = 0, mismatch = 0, proven_not_replayed = 0;
    for (int i = 0; i < total; i++) {
        struct ikey *k = &w.keys[i];
        if (per_key[i] == 0) {
            if (missing++ < 5) fprintf(stderr, "  key idem-%05d: no job\n", i);
        } else if (per_key[i] > 1) {
            if (dup++ < 5) fprintf(stderr, "  key idem-%05d: %d jobs\n", i, per_key[i]);
        }
        if (per_key[i] == 1 && k->acked && strcmp(ids[i], k->id) &&
            mismatch++ < 5)
            fprintf(stderr, "  key idem-%05d: acked job %s, listed job %s\n", i, k->id, ids[i]);
        if (k->proven && !k->replayed && proven_not_replayed++ < 5)
            fprintf(stderr, "  key idem-%05d: committed before the kill, retry not replayed\n", i);
        unacked += !k->acked;
        unknowns += k->unknowns;
        unknown_keys += k->unknowns > 0;
        replayed_after_unknown += k->unknowns > 0 && k->replayed;
    }

    /* every key once more: the stored reply, with its own job */
    struct tsconn *c = tsconn_new(w.s);
    long replay_ok = 0, replay_bad = 0;
    int64_t t1 = th_now_ms();
    for (int i = 0; i < total; i++) {
        char key[32], hdr[64], body[256];
        key_req(i, key, sizeof key, hdr, sizeof hdr, body, sizeof body);
        const char *h[] = { hdr, NULL };
        struct ts_http rq = { .method = "POST", .path = "/v1/jobs", .token = w.user,
                              .body = body, .headers = h };
        struct resp r;
        long st = tsconn_do(c, &rq, &r);
        const char *id = jstr(r.json, "id");
        if (st == 201 && !strcmp(r.replayed, "true") && id && !strcmp(id, w.keys[i].id)) {
            replay_ok++;
        } else if (replay_bad++ < 5) {
            fprintf(stderr, "  replay of %s -> %ld replayed '%s' id %s (acked %s)\n", key, st,
                    r.replayed, id ? id : "-", w.keys[i].id);
        }
        resp_free(&r);
    }
    tsconn_free(c);
    int64_t t_replay = th_now_ms() - t1;
    CHECK(rel_integrity_copy(w.s->db, chk));

    printf("  t5 keyed: %d keys (%d from %d producers + %d blind), %d kills; run %.1f s; "
           "listed %ld jobs; missing %ld, duplicated %ld, not the acked job %ld, foreign %ld; "
           "unknown replies %ld on %ld keys, %ld of those keys answered by a replay (committed "
           "before the kill; %ld blind 201s seen before it, %ld of them not replayed); final "
           "replays %ld/%d ok (%.1f s); integrity ok %d/%d\n",
           total, nkeys, nprod, total - nkeys, done_kills, (double)t_run / 1000, listed,
           missing, dup, mismatch, foreign, unknowns, unknown_keys, replayed_after_unknown,
           proven, proven_not_replayed, replay_ok, total, (double)t_replay / 1000, integrity_ok,
           done_kills);
    CHECK_EQ(done_kills, kills);
    CHECK_EQ(unacked, 0);
    CHECK_EQ(listed, total);
    CHECK_EQ(missing, 0);
    CHECK_EQ(dup, 0);
    CHECK_EQ(foreign, 0);
    CHECK_EQ(mismatch, 0);
    CHECK(unknowns > 0);                           /* the kills hit requests in flight */
    CHECK(proven > 0);                             /* replies lost after the commit ... */
    CHECK_EQ(proven_not_replayed, 0);              /* ... are answered from the record */
    CHECK(replayed_after_unknown >= proven);
    CHECK_EQ(replay_ok, total);
    CHECK_EQ(integrity_ok, kills);
    free(per_key);
    free(ids);
    free(w.keys);
    free(chk);
    pthread_rwlock_destroy(&w.lk);
    testsrv_stop(w.s);
}

/* ------------------------------------------------------------------ cron */

enum { MIN_MS = 60000, NSCHED = 12 };

struct csched {
    const char *name, *cron, *tz;
    int step;                     /* fires at UTC minute-of-hour m with (m - off) % step == 0 */
    int off;
    char id[TS_ID_MAX];
};

static void set_clock(struct testsrv *s, int64_t ms)
{
    char body[64];
    snprintf(body, sizeof body, "{\"set_ms\":%lld}", (long long)ms);
    struct resp r;
    REQUIRE_EQ(ts_req(s, "POST", "/v1/admin/clock", s->admin, body, &r), 200);
    resp_free(&r);
}

static bool fires_at(const struct csched *c, int64_t t)
{
    if (t % MIN_MS) return false;
    int m = (int)((t / MIN_MS) % 60);
    return ((m - c->off + 60) % 60) % c->step == 0;
}

/* Sends the set_ms request on a fresh connection and returns without its reply. */
static int send_set_clock(struct testsrv *s, int64_t ms)
{
    char body[64], req[512];
    int bn = snprintf(body, sizeof body, "{\"set_ms\":%lld}", (long long)ms);
    int n = snprintf(req, sizeof req, "POST /v1/admin/clock HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\nConnection: close\r\n\r\n%s", s->admin, bn, body);
    int fd = rel_connect(s->port);
    if (fd >= 0 && !rel_send_all(fd, req, (size_t)n)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Jobs of the schedules (total_count of the list), -1 unless 200. */
static long count_jobs(struct testsrv *s, const char *token)
{
    int64_t n = st_total(s, token, "type=tick&limit=1");
    return n == INT64_MIN ? -1 : (long)n;
}

TEST(t5_cron_each_fire_time_once_across_restarts)
{
    th_set_timeout(120);
    struct csched sc[NSCHED] = {
        { "every", "* * * * *", "UTC", 1, 0, "" },
        { "two", "*/2 * * * *", "UTC", 2, 0, "" },
        { "three", "*/3 * * * *", "UTC", 3, 0, "" },
        { "four", "*/4 * * * *", "UTC", 4, 0, "" },
        { "five", "*/5 * * * *", "UTC", 5, 0, "" },
        { "seven", "*/7 * * * *", "UTC", 7, 0, "" },
        { "ten", "*/10 * * * *", "UTC", 10, 0, "" },
        { "odd", "1-59/2 * * * *", "UTC", 2, 1, "" },
        { "fifteen", "*/15 * * * *", "UTC", 15, 0, "" },
        { "kolkata", "* * * * *", "Asia/Kolkata", 1, 0, "" },
        { "kolkata-hour", "0 * * * *", "Asia/Kolkata", 60, 30, "" },
        { "every-b", "* * * * *", "UTC", 1, 0, "" },
    };
    struct testsrv *s = testsrv_start(NULL);
    const char *u = ts_token(s, "cron", "user");
    char *chk = th_mkdtemp("integrity");
    srand((unsigned)getpid() * 7919u ^ (unsigned)time(NULL));
    const int64_t base = ts_parse_time("2030-03-01T00:00:30Z");
    REQUIRE(base > 0);
    set_clock(s, base);
    for (int i = 0; i < NSCHED; i++) {
        char body[512];
        snprintf(body, sizeof body, "{\"name\":\"%s\",\"cron\":\"%s\",\"timezone\":\"%s\","
                 "\"type\":\"tick\",\"queue\":\"cq\",\"catch_up_max\":100,"
                 "\"params\":{\"s\":\"%s\"}}", sc[i].name, sc[i].cron, sc[i].tz, sc[i].name);
        struct resp r;
        REQUIRE_EQ(ts_req(s, "POST", "/v1/schedules", u, body, &r), 201);
        snprintf(sc[i].id, sizeof sc[i].id, "%s", jstr(r.json, "id") ? jstr(r.json, "id") : "");
        resp_free(&r);
    }

    /* 10 rounds; mode: 0 kill -9 while the clock move fires, 1 kill -9 after it fired,
     * 2 SIGTERM restart after it fired, 3 kill -9 while it fires and no set back */
    static const char *const mode_name[] = { "kill-9 mid-fire", "kill-9 after fire",
                                             "SIGTERM restart", "kill-9 mid-fire, no set back" };
    int64_t now = base, set_at = base;      /* the test's clock; what jobqd's clock says */
    int integrity_ok = 0, kills = 0, partial = 0;
    long over = 0;                          /* rounds with more jobs than fire times so far */
    for (int round = 0; round < 10; round++) {
        static const int modes[10] = { 0, 1, 2, 3, 0, 3, 1, 0, 2, 0 };
        int mode = modes[round];
        now += (1 + rand() % 12) * (int64_t)MIN_MS;
        long want = 0;
        for (int i = 0; i < NSCHED; i++)
            for (int64_t t = base - base % MIN_MS + MIN_MS; t <= now; t += MIN_MS)
                want += fires_at(&sc[i], t);
        long before = count_jobs(s, u), mid = -1;
        if (mode == 0 || mode == 3) {
            int fd = send_set_clock(s, now);
            CHECK(fd >= 0);
            if (mode == 0) {               /* once a random part of the due fires is visible */
                long need = before + 1 + rand() % ((want - before + 1) / 2 + 1);
                int64_t dl = th_now_ms() + 10000;
                unsigned step = 0;
                while (count_jobs(s, u) < need && th_now_ms() < dl) th_nap(&step);
            } else {
                pause_us(rand() % 40000);  /* a random moment, maybe before it fired at all */
            }
            testsrv_kill9(s);
            if (fd >= 0) close(fd);
            kills++;
        } else {
            set_clock(s, now);
            mid = count_jobs(s, u);
            CHECK_EQ(mid, want);           /* the move fired every due time, once */
            if (mode == 1) {
                testsrv_kill9(s);
                kills++;
            }
        }
        if (mode != 2) integrity_ok += CHECK(rel_integrity_copy(s->db, chk));
        testsrv_restart(s);
        long after_restart = count_jobs(s, u);
        if (mode != 3) {
            set_clock(s, now);             /* back where it was: nothing fires twice */
            set_at = now;
        } else {
            set_at = 0;                    /* at wall time: the next round catches up */
        }
        long got = count_jobs(s, u);
        if (mode == 0 || mode == 3)
            partial += after_restart > before && after_restart < want;
        if (set_at) CHECK_EQ(got, want);
        else over += got > want;
        printf("  round %2d %-28s +%3lld min: jobs %ld -> %ld%s%ld after restart, %ld at the "
               "clock (due %ld)\n", round + 1, mode_name[mode],
               (long long)((now - base) / MIN_MS), before, mid >= 0 ? mid : after_restart,
               mid >= 0 ? " fired, " : " at the kill, ", after_restart, got, want);
    }
    if (!set_at) set_clock(s, now);
    CHECK_EQ(over, 0);

    /* the final list: each (schedule, fire time) once */
    json_t *seen = json_object();          /* "name@ms" -> count */
    char cursor[256] = "", path[512];
    long listed = 0, foreign = 0;
    for (;;) {
        snprintf(path, sizeof path, "/v1/jobs?limit=1000&order=asc%s%s",
                 cursor[0] ? "&cursor=" : "", cursor);
        struct resp r;
        REQUIRE_EQ(ts_req(s, "GET", path, u, NULL, &r), 200);
        json_t *jobs = jpath(r.json, "jobs");
        for (size_t i = 0; i < json_array_size(jobs); i++) {
            json_t *j = json_array_get(jobs, i);
            const char *name = jstr(j, "params.s");
            int64_t at = ts_parse_time(jstr(j, "run_at"));
            char k[128];
            snprintf(k, sizeof k, "%s@%lld", name ? name : "?", (long long)at);
            json_t *v = json_object_get(seen, k);
            json_object_set_new(seen, k, json_integer(v ? json_integer_value(v) + 1 : 1));
            foreign += strcmp(jstr(j, "type") ? jstr(j, "type") : "", "tick") != 0;
            listed++;
        }
        const char *next = jstr(r.json, "next_cursor");
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        resp_free(&r);
        if (!cursor[0]) break;
    }
    long expected = 0, ok = 0, dups = 0, missing = 0;
    for (int i = 0; i < NSCHED; i++) {
        for (int64_t t = base - base % MIN_MS + MIN_MS; t <= now; t += MIN_MS) {
            if (!fires_at(&sc[i], t)) continue;
            char k[128];
            snprintf(k, sizeof k, "%s@%lld", sc[i].name, (long long)t);
            json_t *v = json_object_get(seen, k);
            long n = v ? (long)json_integer_value(v) : 0;
            expected++;
            if (n == 1) ok++;
            if (n == 0 && missing++ < 5) fprintf(stderr, "  missing fire %s\n", k);
            if (n > 1 && dups++ < 5) fprintf(stderr, "  fire %s enqueued %ld times\n", k, n);
            if (v) json_object_del(seen, k);
        }
        /* next_run_at: the first fire time after the final clock */
        int64_t nx = now - now % MIN_MS + MIN_MS;
        while (!fires_at(&sc[i], nx)) nx += MIN_MS;
        struct resp r;
        CHECK_EQ(ts_reqf(s, "GET", u, NULL, &r, "/v1/schedules/%s", sc[i].id), 200);
        if (!CHECK_EQ(ts_parse_time(jstr(r.json, "next_run_at")), nx))
            fprintf(stderr, "  schedule %s next_run_at %s\n", sc[i].name,
                    jstr(r.json, "next_run_at") ? jstr(r.json, "next_run_at") : "null");
        resp_free(&r);
    }
    long extra = (long)json_object_size(seen);
    const char *k;
    json_t *v;
    int shown = 0;
    json_object_foreach(seen, k, v) {
        if (shown++ < 5) fprintf(stderr, "  unexpected fire %s (%lld jobs)\n", k,
                                 (long long)json_integer_value(v));
    }
    json_decref(seen);
    CHECK(rel_integrity_copy(s->db, chk));
    printf("  t5 cron: %d schedules, 10 rounds to +%lld min, %d kill -9 + %d SIGTERM restarts "
           "(%d kills landed mid-fire); %ld fire times expected, %ld jobs listed: exactly once "
           "%ld, missing %ld, duplicated %ld, unexpected %ld, foreign %ld; integrity ok %d/%d\n",
           NSCHED, (long long)((now - base) / MIN_MS), kills, 10 - kills, partial, expected,
           listed, ok, missing, dups, extra, foreign, integrity_ok, kills);
    CHECK_EQ(ok, expected);
    CHECK_EQ(missing, 0);
    CHECK_EQ(dups, 0);
    CHECK_EQ(extra, 0);
    CHECK_EQ(foreign, 0);
    CHECK_EQ(listed, expected);
    CHECK_EQ(integrity_ok, kills);
    free(chk);
    testsrv_stop(s);
}

TEST_MAIN()
