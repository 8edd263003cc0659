/*
 * test_ackfsync.c - RELIABILITY.md T3: no reply to a write before the fsync covering it.
 *
 * jobqd (synchronous=FULL, the default) is traced with
 *   strace -f -y -s 48 -e trace=recvfrom,recvmsg,read,sendto,sendmsg,write,writev,
 *                                fdatasync,fsync -p PID
 * while 32 keep-alive clients send 32 creates each at once (CI: 1,024; JQ_LONG=1:
 * 64 x 160 = 10,240). Reading the trace in order (strace serialises the events of all
 * threads; a call interrupted by another thread's event is split into "unfinished" and
 * "resumed", which gives its start and its end): for every 201 reply sent on a socket
 * there must be an fdatasync/fsync of the -wal file that started after the last bytes of
 * that request arrived on the socket and returned before the reply was sent. 0 violations
 * allowed. Group commit, acked creates per WAL sync on average: JQ_LONG=1 (64 clients)
 * >= 8, the plan's goal; CI (32 clients) >= 6. Measured under strace (ASan build): 64
 * clients 18.1-21.0 per sync (4 runs), 32 clients 9.1-12.0 (13 runs, 6 of them beside
 * another reliability test) - about clients / 3: the sync is pipelined (sq_writer.c), the
 * writer commits the next groups while the syncer syncs, so one sync covers about a third
 * of the requests in flight. Teeth: the same with
 * --sync normal (no WAL sync per commit) must report replies before their fsync.
 * Without strace (Debian package strace, scripts/deps.sh) or ptrace the test says so and
 * passes as skipped.
 */
#include "rel.h"

#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

struct cl { struct testsrv *s; const char *tok; int per, idx, ok; pthread_barrier_t *bar;
            struct tsconn *c; };

static void *client(void *arg)
{
    struct cl *k = arg;
    pthread_barrier_wait(k->bar);
    for (int i = 0; i < k->per; i++) {
        char body[160];
        snprintf(body, sizeof body, "{\"type\":\"ack\",\"queue\":\"aq\",\"dedup\":false,"
                 "\"cache\":false,\"params\":{\"c\":%d,\"i\":%d}}", k->idx, i);
        struct resp r;
        k->ok += tsconn_req(k->c, "POST", "/v1/jobs", k->tok, body, &r) == 201;
        resp_free(&r);
    }
    return NULL;
}

/* True when every thread of pid has a tracer. */
static bool all_traced(void *arg)
{
    pid_t pid = *(pid_t *)arg;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return false;
    bool all = true;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && all) {
        if (e->d_name[0] == '.') continue;
        char sp[320], line[256];
        snprintf(sp, sizeof sp, "/proc/%d/task/%s/status", (int)pid, e->d_name);
        FILE *f = fopen(sp, "r");
        if (!f) continue;
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "TracerPid:", 10)) all = strtol(line + 10, NULL, 10) != 0;
        fclose(f);
        n++;
    }
    closedir(d);
    return all && n > 0;
}

/* --- the trace --- */

enum { MAXFD = 65536, MAXPID = 1 << 22 };

struct pend { char name[16]; int fd; long start; bool wal, reply; };

struct trace_stats { long replies, violations, wal_syncs, recvs, lines; };

static bool is_send(const char *n)
{
    return !strcmp(n, "sendto") || !strcmp(n, "sendmsg") || !strcmp(n, "writev") ||
           !strcmp(n, "write");
}

static bool is_recv(const char *n)
{
    return !strcmp(n, "recvfrom") || !strcmp(n, "recvmsg") || !strcmp(n, "read");
}

static struct trace_stats check_trace(const char *path)
{
    struct trace_stats ts = { 0 };
    FILE *f = fopen(path, "r");
    if (!f) return ts;
    long *last_recv = calloc(MAXFD, sizeof *last_recv);
    struct pend *pend = calloc(4096, sizeof *pend);   /* by pid % 4096 */
    int *pend_pid = calloc(4096, sizeof *pend_pid);
    long (*syncs)[2] = NULL;                          /* [start, end] in trace order */
    size_t nsync = 0, capsync = 0;
    size_t cap = 1 << 16;
    char *line = malloc(cap);
    for (long seq = 1; fgets(line, (int)cap, f); seq++) {
        ts.lines++;
        char *p = line;
        long pid = strtol(p, &p, 10);
        while (*p == ' ') p++;
        struct pend cur = { .start = seq };
        long ret;
        const char *rs = NULL;                         /* the return value: last " = " */
        for (char *q = strstr(p, " = "); q; q = strstr(q + 1, " = ")) rs = q + 3;
        if (!strncmp(p, "<... ", 5)) {                 /* the end of a split call */
            struct pend *pp = &pend[pid % 4096];
            if (pend_pid[pid % 4096] != pid) continue;
            cur = *pp;
            pend_pid[pid % 4096] = 0;
        } else {
            char *paren = strchr(p, '(');
            if (!paren || paren - p >= (long)sizeof cur.name) continue;
            snprintf(cur.name, sizeof cur.name, "%.*s", (int)(paren - p), p);
            cur.fd = (int)strtol(paren + 1, NULL, 10);
            char *gt = strchr(paren, '>');
            cur.wal = gt && gt - paren > 5 && !strncmp(gt - 4, "-wal", 4);
            cur.reply = is_send(cur.name) && strstr(paren, "\"HTTP/1.1 201") != NULL;
            if (strstr(p, "<unfinished ...>")) {
                pend[pid % 4096] = cur;
                pend_pid[pid % 4096] = (int)pid;
                continue;
            }
        }
        ret = rs ? strtol(rs, NULL, 10) : -1;
        long end = seq;
        if (cur.fd < 0 || cur.fd >= MAXFD) continue;
        if (is_recv(cur.name) && ret > 0) {
            last_recv[cur.fd] = end;
            ts.recvs++;
        } else if ((!strcmp(cur.name, "fdatasync") || !strcmp(cur.name, "fsync")) && cur.wal &&
                   ret == 0) {
            if (nsync == capsync) {
                capsync = capsync ? 2 * capsync : 1024;
                syncs = realloc(syncs, capsync * sizeof *syncs);
            }
            syncs[nsync][0] = cur.start;
            syncs[nsync][1] = end;
            nsync++;
            ts.wal_syncs++;
        } else if (cur.reply) {
            ts.replies++;
            long req = last_recv[cur.fd];
            bool covered = false;
            for (size_t i = nsync; i-- > 0 && !covered;)
                covered = syncs[i][1] < cur.start && syncs[i][0] > req;
            if (!covered) {
                if (ts.violations < 5)
                    fprintf(stderr, "  reply on fd %d at trace line %ld: no WAL sync between "
                            "its request (line %ld) and it\n", cur.fd, cur.start, req);
                ts.violations++;
            }
        }
    }
    free(line);
    free(syncs);
    free(pend);
    free(pend_pid);
    free(last_recv);
    fclose(f);
    return ts;
}

/* full: the real check; normal: the negative control (no WAL sync per commit, so the
 * checker must report replies before their fsync - else it could not see one). */
static void t3_body(const char *sync)
{
    bool full = !strcmp(sync, "full");
    if (access("/usr/bin/strace", X_OK) != 0) {
        printf("  SKIPPED: strace is not installed (Debian package strace, scripts/deps.sh)\n");
        return;
    }
    int nthreads = REL_N(32, 64), per = REL_N(32, 160);
    th_set_timeout((unsigned)REL_N(240, 1800));
    struct testsrv_opts o = { .sync = sync };
    struct testsrv *s = testsrv_start(&o);
    const char *u = ts_token(s, "ack", "user");
    struct cl k[64];
    pthread_t t[64];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)nthreads + 1);
    for (int i = 0; i < nthreads; i++) {     /* connect first: accept is not in the trace */
        k[i] = (struct cl){ s, u, per, i, 0, &bar, tsconn_new(s) };
        struct resp r;
        CHECK_EQ(tsconn_req(k[i].c, "GET", "/healthz", NULL, NULL, &r), 200);
        resp_free(&r);
    }

    char out[1024];
    snprintf(out, sizeof out, "%s/strace.txt", th_tmproot());
    char pids[16];
    snprintf(pids, sizeof pids, "%d", (int)s->pid);
    char *av[] = { "strace", "-f", "-qq", "-y", "-s", "48", "-o", out, "-e",
                   "trace=recvfrom,recvmsg,read,sendto,sendmsg,write,writev,fdatasync,fsync",
                   "-p", pids, NULL };
    pid_t sp;
    REQUIRE_EQ(posix_spawn(&sp, "/usr/bin/strace", NULL, NULL, av, environ), 0);
    pid_t jp = s->pid;
    if (!poll_until(all_traced, &jp, 10000)) {
        kill(sp, SIGINT);
        waitpid(sp, NULL, 0);
        printf("  SKIPPED: strace could not attach to jobqd (ptrace not permitted?)\n");
        for (int i = 0; i < nthreads; i++) tsconn_free(k[i].c);
        pthread_barrier_destroy(&bar);
        testsrv_stop(s);
        return;
    }
    for (int i = 0; i < nthreads; i++)
        REQUIRE_EQ(pthread_create(&t[i], NULL, client, &k[i]), 0);
    int64_t t0 = th_now_ms();
    pthread_barrier_wait(&bar);
    int acked = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
        acked += k[i].ok;
        tsconn_free(k[i].c);
    }
    int64_t took = th_now_ms() - t0;
    kill(sp, SIGINT);                        /* detaches; jobqd goes on */
    int wst = 0;
    waitpid(sp, &wst, 0);
    pthread_barrier_destroy(&bar);

    struct trace_stats ts = check_trace(out);
    printf("  t3 %s: %d concurrent creates (%d clients), %d acked in %lld ms under strace; trace: "
           "%ld lines, %ld 201 replies, %ld WAL syncs, %.1f acked writes per WAL sync, "
           "%ld replies before their fsync\n", sync, nthreads * per, nthreads, acked, (long long)took,
           ts.lines, ts.replies, ts.wal_syncs,
           ts.wal_syncs ? (double)ts.replies / (double)ts.wal_syncs : 0.0, ts.violations);
    CHECK_EQ(acked, nthreads * per);
    CHECK_EQ(ts.replies, acked);             /* the trace saw every reply */
    if (full) {
        CHECK_EQ(ts.violations, 0);
        CHECK(ts.wal_syncs > 0);
        /* group commit: the plan's >= 8 acked writes per WAL sync with 64 clients (measured
         * 18.1-21.0); half the clients give about half the group (measured 9.1-12.0), so CI
         * asserts >= 6, a third under the lowest seen, for a loaded CI host */
        long min_per_sync = REL_N(6, 8);
        if (!CHECK(ts.replies >= min_per_sync * ts.wal_syncs))
            fprintf(stderr, "  group commit: %.1f acked writes per WAL sync, want >= %ld\n",
                    (double)ts.replies / (double)ts.wal_syncs, min_per_sync);
    } else {
        CHECK(ts.violations > 0);                /* teeth: NORMAL replies before any sync */
    }
    testsrv_stop(s);
}

TEST(t3_ack_after_fsync) { t3_body("full"); }

TEST(t3_teeth_normal_replies_before_fsync) { t3_body("normal"); }

TEST_MAIN()
