/*
 * harness.c - jobq test harness: runner (fork per test, alarm timeout), checks,
 * temp dirs, jobqd process control and a libcurl HTTP client. See harness.h.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>

#include "harness_pg.h"

#ifndef JOBQD_PATH
#define JOBQD_PATH "jobqd"
#endif

extern char **environ;

enum {
    TH_DEFAULT_TIMEOUT_S = 60,   /* per test; JQ_TEST_TIMEOUT overrides */
    TS_READY_MS = 20000,         /* jobqd under ASan may take a while to listen */
    TS_EXIT_MS = 20000,          /* SIGTERM to exit */
};

/* Token made by ts_token; owned by its server. */
struct ts_tok {
    char *token;                 /* bearer string */
    struct ts_tok *next;
};

struct tsconn {
    CURL *curl;                  /* easy handle; keeps its connection alive between requests */
    struct testsrv *srv;         /* borrowed; url read per request (changes on restart) */
};

static struct th_test *th_head, **th_tail = &th_head;
static volatile int th_fail_count;      /* failures in the current test (child) */
static char th_root[PATH_MAX];          /* per-test temp root */
static struct testsrv *th_servers;      /* live servers of this test (child) */
static pthread_mutex_t th_srv_lock = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------------------ runner */

void th_register(struct th_test *t)
{
    *th_tail = t;
    th_tail = &t->next;
}

static unsigned th_timeout_s(void)
{
    const char *e = getenv("JQ_TEST_TIMEOUT");
    int v = e ? atoi(e) : 0;
    return v > 0 ? (unsigned)v : TH_DEFAULT_TIMEOUT_S;
}

static void th_on_alarm(int sig)
{
    static const char msg[] = "  TIMEOUT: test exceeded its time limit\n";
    (void)sig;
    if (write(2, msg, sizeof msg - 1) < 0) { /* nothing to do */ }
    kill(0, SIGKILL);                    /* whole process group: this test and its jobqd */
}

void th_set_timeout(unsigned seconds)
{
    alarm(seconds);
}

static void th_kill_servers(void)
{
    for (struct testsrv *s = th_servers; s; s = s->next)
        if (s->pid > 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            s->pid = 0;
        }
}

static _Noreturn void th_child(struct th_test *t)
{
    setpgid(0, 0);
    signal(SIGALRM, th_on_alarm);
    signal(SIGPIPE, SIG_IGN);
    alarm(th_timeout_s());
    curl_global_init(CURL_GLOBAL_ALL);
    t->fn();
    th_kill_servers();
    fflush(stdout);
    fflush(stderr);
    _exit(th_fail_count ? 1 : 0);        /* _exit: test leaks are not the subject */
}

static bool th_selected(struct th_test *t, int argc, char **argv)
{
    int names = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') continue;
        names++;
        if (strstr(t->name, argv[i])) return true;
    }
    return names == 0;
}

static void th_make_root(const char *name)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    int n = snprintf(th_root, sizeof th_root, "%s/jqt-%s-XXXXXX", base, name);
    if (n < 0 || (size_t)n >= sizeof th_root || !mkdtemp(th_root)) {
        perror("mkdtemp");
        exit(2);
    }
}

static int th_wait_child(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    kill(-pid, SIGKILL);                 /* strays of the test's process group */
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    fprintf(stderr, "  test process ended by signal %d\n", WTERMSIG(st));
    return 1;
}

static bool th_run_one(struct th_test *t)
{
    int64_t t0 = th_now_ms();
    printf("[ RUN  ] %s\n", t->name);
    th_make_root(t->name);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(2); }
    if (pid == 0) th_child(t);
    setpgid(pid, pid);                   /* both sides, so the race cannot matter */
    int rc = th_wait_child(pid);
    const char *keep = getenv("JQ_KEEP_TMP");
    if (rc == 0 && !(keep && *keep == '1')) th_rmrf(th_root);
    else fprintf(stderr, "  temp dir kept: %s\n", th_root);
    printf("[ %s ] %s (%" PRId64 " ms)\n", rc ? "FAIL" : " OK ", t->name, th_now_ms() - t0);
    return rc == 0;
}

int th_main(int argc, char **argv)
{
    int run = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    bool listing = argc > 1 && !strcmp(argv[1], "-l");
    if (!listing && thpg_enabled() && thpg_start() != 0) {   /* JOBQ_TEST_BACKEND=postgres */
        fprintf(stderr, "cannot start the PostgreSQL test cluster\n");
        return 1;
    }
    for (struct th_test *t = th_head; t; t = t->next) {
        if (argc > 1 && !strcmp(argv[1], "-l")) { printf("%s\n", t->name); continue; }
        if (!th_selected(t, argc, argv)) continue;
        run++;
        if (!th_run_one(t)) failed++;
    }
    thpg_stop();
    printf("%d test(s), %d failed\n", run, failed);
    return failed ? 1 : 0;
}

/* ------------------------------------------------------------------ checks */

void th_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    __atomic_add_fetch(&th_fail_count, 1, __ATOMIC_SEQ_CST);
    flockfile(stderr);
    fprintf(stderr, "  %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    funlockfile(stderr);
}

_Noreturn void th_abort(void)
{
    th_fail_count++;
    for (struct testsrv *s = th_servers; s; s = s->next) testsrv_dump_log(s);
    th_kill_servers();
    fflush(stdout);
    _exit(1);
}

bool th_failed(void)
{
    return __atomic_load_n(&th_fail_count, __ATOMIC_SEQ_CST) != 0;
}

bool th_check_eq(const char *f, int l, const char *ea, const char *eb, int64_t a, int64_t b)
{
    if (a == b) return true;
    th_fail(f, l, "CHECK_EQ(%s, %s) failed: %" PRId64 " != %" PRId64, ea, eb, a, b);
    return false;
}

bool th_check_str(const char *f, int l, const char *ea, const char *eb, const char *a,
                  const char *b)
{
    if (a == b || (a && b && !strcmp(a, b))) return true;
    th_fail(f, l, "CHECK_STR_EQ(%s, %s) failed: \"%s\" != \"%s\"", ea, eb,
            a ? a : "(null)", b ? b : "(null)");
    return false;
}

/* ------------------------------------------------------------------ time */

int64_t th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void th_nap(unsigned *step_us)
{
    if (*step_us < 500) *step_us = 500;
    struct timespec ts = { 0, (long)*step_us * 1000 };
    nanosleep(&ts, NULL);
    if (*step_us < 20000) *step_us *= 2;
}

bool poll_until(bool (*cond)(void *arg), void *arg, int64_t timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    unsigned step = 0;
    for (;;) {
        if (cond(arg)) return true;
        if (th_now_ms() >= deadline) return false;
        th_nap(&step);
    }
}

/* ------------------------------------------------------------------ temp dirs */

const char *th_tmproot(void)
{
    if (!th_root[0]) th_make_root("adhoc");
    return th_root;
}

char *th_mkdtemp(const char *prefix)
{
    char buf[PATH_MAX];
    int n = snprintf(buf, sizeof buf, "%s/%s-XXXXXX", th_tmproot(), prefix ? prefix : "d");
    if (n < 0 || (size_t)n >= sizeof buf || !mkdtemp(buf)) {
        th_fail(__FILE__, __LINE__, "mkdtemp(%s): %s", buf, strerror(errno));
        th_abort();
    }
    return strdup(buf);
}

static int th_rm_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char sub[PATH_MAX];
    int rc = 0;
    if (!d) return -1;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        int n = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (n < 0 || (size_t)n >= sizeof sub || th_rmrf(sub)) rc = -1;
    }
    closedir(d);
    return rc;
}

int th_rmrf(const char *path)
{
    struct stat st;
    if (lstat(path, &st)) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) return unlink(path);
    int rc = th_rm_entries(path);
    return rmdir(path) ? -1 : rc;
}

/* ------------------------------------------------------------------ HTTP client */

void resp_free(struct resp *r)
{
    if (!r) return;
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

static size_t ts_on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t add = sz * n;
    char *nb = realloc(r->body, r->len + add + 1);
    if (!nb) return 0;
    memcpy(nb + r->len, p, add);
    r->body = nb;
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

/* Copies a header value (trimmed) into dst if line is "name: value". */
static bool ts_hdr(const char *line, size_t n, const char *name, char *dst, size_t cap)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(line, name, nl) || line[nl] != ':') return false;
    const char *v = line + nl + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
    size_t len = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
    return true;
}

static size_t ts_on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t len = sz * n;
    char num[32];
    if (len >= 5 && !strncmp(p, "HTTP/", 5)) {   /* new response (e.g. after 100) */
        r->statements = -1;
        r->content_type[0] = r->allow[0] = r->retry_after[0] = r->etag[0] = '\0';
        r->cache_control[0] = r->replayed[0] = '\0';
    } else if (ts_hdr(p, len, "X-Jobq-Statements", num, sizeof num)) {
        r->statements = strtol(num, NULL, 10);
    } else if (!ts_hdr(p, len, "Content-Type", r->content_type, TS_HDR_MAX) &&
               !ts_hdr(p, len, "Allow", r->allow, TS_HDR_MAX) &&
               !ts_hdr(p, len, "Retry-After", r->retry_after, TS_HDR_MAX) &&
               !ts_hdr(p, len, "Cache-Control", r->cache_control, TS_HDR_MAX) &&
               !ts_hdr(p, len, "Idempotent-Replayed", r->replayed, TS_HDR_MAX)) {
        ts_hdr(p, len, "ETag", r->etag, TS_HDR_MAX);
    }
    return len;
}

struct tsconn *tsconn_new(struct testsrv *s)
{
    struct tsconn *c = calloc(1, sizeof *c);
    if (!c || !(c->curl = curl_easy_init())) {
        th_fail(__FILE__, __LINE__, "curl_easy_init failed");
        th_abort();
    }
    c->srv = s;
    return c;
}

void tsconn_free(struct tsconn *c)
{
    if (!c) return;
    curl_easy_cleanup(c->curl);
    free(c);
}

static struct curl_slist *ts_headers(const struct ts_http *rq)
{
    struct curl_slist *h = NULL;
    char line[512];
    if (rq->token) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", rq->token);
        h = curl_slist_append(h, line);
    }
    const char *ct = rq->content_type ? rq->content_type : rq->body ? "application/json" : "";
    snprintf(line, sizeof line, "Content-Type:%s%s", *ct ? " " : "", ct);
    h = curl_slist_append(h, line);
    h = curl_slist_append(h, "Expect:");
    for (const char *const *x = rq->headers; x && *x; x++) h = curl_slist_append(h, *x);
    return h;
}

static void ts_set_body(CURL *k, const struct ts_http *rq, const char *method)
{
    if (rq->body) {
        size_t n = rq->body_len ? rq->body_len : strlen(rq->body);
        curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
        curl_easy_setopt(k, CURLOPT_POSTFIELDS, rq->body);
    } else if (!strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH")) {
        curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(k, CURLOPT_POSTFIELDS, "");
    } else if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(k, CURLOPT_NOBODY, 1L);
    }
    curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, method);
}

static void ts_setup(struct tsconn *c, const struct ts_http *rq, struct resp *out,
                     struct curl_slist *h, char *url, size_t urlcap)
{
    CURL *k = c->curl;
    const char *method = rq->method ? rq->method : "GET";
    curl_easy_reset(k);
    snprintf(url, urlcap, "%s%s", c->srv->url, rq->path);
    curl_easy_setopt(k, CURLOPT_URL, url);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, ts_on_body);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(k, CURLOPT_HEADERFUNCTION, ts_on_header);
    curl_easy_setopt(k, CURLOPT_HEADERDATA, out);
    ts_set_body(k, rq, method);
}

static void ts_finish(struct resp *out)
{
    if (!out->body) out->body = calloc(1, 1);
    if (out->len) out->json = json_loadb(out->body, out->len, JSON_DECODE_ANY, NULL);
}

long tsconn_do(struct tsconn *c, const struct ts_http *rq, struct resp *out)
{
    char url[2048];
    memset(out, 0, sizeof *out);
    out->statements = -1;
    struct curl_slist *h = ts_headers(rq);
    ts_setup(c, rq, out, h, url, sizeof url);
    CURLcode rc = curl_easy_perform(c->curl);
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &out->status);
    if (rc != CURLE_OK && out->status == 0)
        fprintf(stderr, "  (http %s %s: %s)\n", rq->method ? rq->method : "GET", url,
                curl_easy_strerror(rc));
    curl_slist_free_all(h);
    ts_finish(out);
    if (getenv("JQ_VERBOSE"))                 /* trace every request: JQ_VERBOSE=1 */
        fprintf(stderr, "  > %s %s -> %ld [%ld stmts] %.200s\n", rq->method ? rq->method : "GET",
                rq->path, out->status, out->statements, out->body);
    return out->status;
}

long tsconn_req(struct tsconn *c, const char *method, const char *path, const char *token,
                const char *body, struct resp *out)
{
    struct ts_http rq = { .method = method, .path = path, .token = token, .body = body };
    return tsconn_do(c, &rq, out);
}

long ts_do(struct testsrv *s, const struct ts_http *rq, struct resp *out)
{
    return tsconn_do(s->conn, rq, out);
}

long ts_req(struct testsrv *s, const char *method, const char *path, const char *token,
            const char *body, struct resp *out)
{
    return tsconn_req(s->conn, method, path, token, body, out);
}

long ts_reqf(struct testsrv *s, const char *method, const char *token, const char *body,
             struct resp *out, const char *pathfmt, ...)
{
    char path[2048];
    va_list ap;
    va_start(ap, pathfmt);
    vsnprintf(path, sizeof path, pathfmt, ap);
    va_end(ap);
    return ts_req(s, method, path, token, body, out);
}

/* ------------------------------------------------------------------ jobqd process */

static char *ts_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* argv for jobqd; strings borrowed from s, array malloc'd. */
static char **ts_argv(struct testsrv *s, char *port_file)
{
    size_t extra = 0;
    while (s->opts.extra && s->opts.extra[extra]) extra++;
    char **av = calloc(16 + extra, sizeof *av);
    size_t i = 0;
    av[i++] = JOBQD_PATH;
    av[i++] = "--db";          av[i++] = s->db;
    av[i++] = "--host";        av[i++] = "127.0.0.1";
    av[i++] = "--port";        av[i++] = "0";
    av[i++] = "--port-file";   av[i++] = port_file;
    if (!s->opts.real_clock) av[i++] = "--fake-clock";
    if (s->opts.sync) { av[i++] = "--sync"; av[i++] = (char *)s->opts.sync; }
    /* suites create many jobs per user: no active limit unless a test asks (later flags win) */
    av[i++] = "--active-limit"; av[i++] = "0";
    for (size_t k = 0; k < extra; k++) av[i++] = (char *)s->opts.extra[k];
    return av;
}

/* environ + JOBQ_ADMIN_TOKEN (any inherited value replaced); array malloc'd. */
static char **ts_env(void)
{
    size_t n = 0;
    while (environ[n]) n++;
    char **env = calloc(n + 2, sizeof *env);
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "JOBQ_ADMIN_TOKEN=", 17)) env[j++] = environ[i];
    env[j++] = "JOBQ_ADMIN_TOKEN=" TS_ADMIN_TOKEN;
    return env;
}

static pid_t ts_spawn(struct testsrv *s, char *port_file)
{
    posix_spawn_file_actions_t fa;
    char *log = ts_path(s->dir, "jobqd.log");
    char **av = ts_argv(s, port_file), **env = ts_env();
    pid_t pid = 0;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawn(&pid, JOBQD_PATH, &fa, NULL, av, env);
    posix_spawn_file_actions_destroy(&fa);
    free(av); free(env); free(log);
    if (rc) th_fail(__FILE__, __LINE__, "posix_spawn(%s): %s", JOBQD_PATH, strerror(rc));
    return rc ? 0 : pid;
}

/* Port from the port file once it holds a full line; 0 while not yet written. */
static int ts_read_port(const char *port_file)
{
    char buf[32] = {0};
    int fd = open(port_file, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0 || buf[n - 1] != '\n') return 0;
    int port = atoi(buf);
    return port > 0 && port < 65536 ? port : 0;
}

static bool ts_exited(struct testsrv *s)
{
    int st;
    if (waitpid(s->pid, &st, WNOHANG) != s->pid) return false;
    th_fail(__FILE__, __LINE__, "jobqd exited during start-up (status 0x%x)", st);
    s->pid = 0;
    return true;
}

static bool ts_healthy(struct testsrv *s)
{
    struct resp r;
    long st = ts_req(s, "GET", "/healthz", NULL, NULL, &r);
    resp_free(&r);
    return st == 200;
}

/* Polls until jobqd wrote its port and /healthz answers 200. */
static bool ts_wait_ready(struct testsrv *s, const char *port_file)
{
    int64_t deadline = th_now_ms() + TS_READY_MS;
    unsigned step = 0;
    while (th_now_ms() < deadline) {
        if (ts_exited(s)) return false;
        if (!s->port && (s->port = ts_read_port(port_file)))
            snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
        if (s->port && ts_healthy(s)) return true;
        th_nap(&step);
    }
    th_fail(__FILE__, __LINE__, "jobqd not ready within %d ms", TS_READY_MS);
    return false;
}

static bool ts_launch(struct testsrv *s)
{
    char *port_file = ts_path(s->dir, "port");
    unlink(port_file);
    s->port = 0;
    s->pid = ts_spawn(s, port_file);
    bool ok = s->pid > 0 && ts_wait_ready(s, port_file);
    free(port_file);
    return ok;
}

static void ts_list_add(struct testsrv *s)
{
    pthread_mutex_lock(&th_srv_lock);
    s->next = th_servers;
    th_servers = s;
    pthread_mutex_unlock(&th_srv_lock);
}

static void ts_list_del(struct testsrv *s)
{
    pthread_mutex_lock(&th_srv_lock);
    for (struct testsrv **p = &th_servers; *p; p = &(*p)->next)
        if (*p == s) { *p = s->next; break; }
    pthread_mutex_unlock(&th_srv_lock);
}

struct testsrv *testsrv_start(const struct testsrv_opts *o)
{
    struct testsrv *s = calloc(1, sizeof *s);
    if (o) s->opts = *o;
    s->dir = th_mkdtemp("jobqd");
    /* JOBQ_TEST_BACKEND=postgres: a fresh database on the harness's cluster */
    s->db = thpg_enabled() ? thpg_new_db() : ts_path(s->dir, "jobq.db");
    if (!s->db) {
        th_fail(__FILE__, __LINE__, "cannot create a PostgreSQL test database");
        th_abort();
    }
    s->admin = TS_ADMIN_TOKEN;
    s->conn = tsconn_new(s);
    ts_list_add(s);
    if (!ts_launch(s)) th_abort();
    return s;
}

static int ts_wait_exit(struct testsrv *s)
{
    int st = 0;
    int64_t deadline = th_now_ms() + TS_EXIT_MS;
    unsigned step = 0;
    while (waitpid(s->pid, &st, WNOHANG) == 0) {
        if (th_now_ms() >= deadline) {
            th_fail(__FILE__, __LINE__, "jobqd did not exit within %d ms of SIGTERM", TS_EXIT_MS);
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            break;
        }
        th_nap(&step);
    }
    s->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int testsrv_term(struct testsrv *s)
{
    if (s->pid <= 0) return 0;
    tsconn_free(s->conn);                /* drop keep-alive so shutdown need not wait */
    s->conn = tsconn_new(s);
    kill(s->pid, SIGTERM);
    return ts_wait_exit(s);
}

void testsrv_kill9(struct testsrv *s)
{
    if (s->pid <= 0) return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

void testsrv_restart(struct testsrv *s)
{
    if (s->pid > 0) {
        int rc = testsrv_term(s);
        if (!CHECK_EQ(rc, 0)) testsrv_dump_log(s);
    }
    tsconn_free(s->conn);
    s->conn = tsconn_new(s);
    if (!ts_launch(s)) th_abort();
}

void testsrv_dump_log(struct testsrv *s)
{
    char *log = ts_path(s->dir, "jobqd.log");
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "tail -n 40 '%s' >&2", log);
    fprintf(stderr, "  --- tail of %s ---\n", log);
    fflush(stderr);
    if (system(cmd) != 0) fprintf(stderr, "  (no log)\n");
    free(log);
}

static void ts_free_tokens(struct testsrv *s)
{
    while (s->tokens) {
        struct ts_tok *t = s->tokens;
        s->tokens = t->next;
        free(t->token);
        free(t);
    }
}

void testsrv_stop(struct testsrv *s)
{
    if (!s) return;
    int rc = testsrv_term(s);
    if (!CHECK_EQ(rc, 0) || th_failed()) testsrv_dump_log(s);
    ts_list_del(s);
    tsconn_free(s->conn);
    ts_free_tokens(s);
    free(s->db);
    free(s->dir);                        /* the dir itself goes with th_tmproot() */
    free(s);
}

/* ------------------------------------------------------------------ domain helpers */

/* POST /v1/tokens; limit < 0 omits active_limit. */
static const char *ts_token_make(struct testsrv *s, const char *user_id, const char *role,
                                 long limit, char *id_out)
{
    struct resp r;
    char body[512], lim[48] = "";
    if (limit >= 0) snprintf(lim, sizeof lim, ",\"active_limit\":%ld", limit);
    snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"role\":\"%s\",\"name\":\"t\"%s}",
             user_id, role, lim);
    long st = ts_req(s, "POST", "/v1/tokens", s->admin, body, &r);
    const char *tok = jstr(r.json, "token");
    if (st != 201 || !tok) {
        th_fail(__FILE__, __LINE__, "POST /v1/tokens -> %ld %s", st, r.body);
        th_abort();
    }
    struct ts_tok *t = calloc(1, sizeof *t);
    t->token = strdup(tok);
    t->next = s->tokens;
    s->tokens = t;
    if (id_out) snprintf(id_out, TS_ID_MAX, "%s", jstr(r.json, "id") ? jstr(r.json, "id") : "");
    resp_free(&r);
    return t->token;
}

const char *ts_token_id(struct testsrv *s, const char *user_id, const char *role, char *id_out)
{
    return ts_token_make(s, user_id, role, -1, id_out);
}

const char *ts_token_limit(struct testsrv *s, const char *user_id, const char *role, long limit)
{
    return ts_token_make(s, user_id, role, limit, NULL);
}

const char *ts_token(struct testsrv *s, const char *user_id, const char *role)
{
    return ts_token_id(s, user_id, role, NULL);
}

long ts_enqueue(struct testsrv *s, const char *token, const char *body_json, char *id)
{
    struct resp r;
    long st = ts_req(s, "POST", "/v1/jobs", token, body_json, &r);
    if (id) snprintf(id, TS_ID_MAX, "%s", st == 201 && jstr(r.json, "id") ? jstr(r.json, "id") : "");
    if (st != 201) fprintf(stderr, "  (enqueue -> %ld %s)\n", st, r.body);
    resp_free(&r);
    return st;
}

long ts_claim(struct testsrv *s, const char *token, const char *queue, const char *body_json,
              struct resp *out)
{
    return ts_reqf(s, "POST", token, body_json ? body_json : "{\"worker_id\":\"w1\"}", out,
                   "/v1/queues/%s/claim", queue);
}

int ts_claim1(struct testsrv *s, const char *token, const char *queue, char *id, char *lease)
{
    struct resp r;
    long st = ts_claim(s, token, queue, NULL, &r);
    const char *jid = jstr(r.json, "jobs.0.id"), *lt = jstr(r.json, "jobs.0.lease_token");
    int got = st == 200 && jid && lt;
    if (st != 200) th_fail(__FILE__, __LINE__, "claim %s -> %ld %s", queue, st, r.body);
    if (id) snprintf(id, TS_ID_MAX, "%s", got ? jid : "");
    if (lease) snprintf(lease, TS_ID_MAX, "%s", got ? lt : "");
    resp_free(&r);
    return got;
}

long ts_advance(struct testsrv *s, int64_t ms)
{
    struct resp r;
    char body[64];
    snprintf(body, sizeof body, "{\"advance_ms\":%" PRId64 "}", ms);
    long st = ts_req(s, "POST", "/v1/admin/clock", s->admin, body, &r);
    if (st != 200) th_fail(__FILE__, __LINE__, "advance clock -> %ld %s", st, r.body);
    resp_free(&r);
    return st;
}

long ts_get(struct testsrv *s, const char *token, const char *id, struct resp *out)
{
    return ts_reqf(s, "GET", token, NULL, out, "/v1/jobs/%s", id);
}

int ts_store_counters(struct testsrv *s, int64_t *ops, int64_t *commits)
{
    struct resp r;
    long st = ts_req(s, "GET", "/v1/admin/store", s->admin, NULL, &r);
    *ops = jint(r.json, "ops");
    *commits = jint(r.json, "commits");
    int rc = st == 200 && *ops != INT64_MIN && *commits != INT64_MIN ? 0 : -1;
    if (rc) th_fail(__FILE__, __LINE__, "GET /v1/admin/store -> %ld %s", st, r.body);
    resp_free(&r);
    return rc;
}

/* ------------------------------------------------------------------ JSON helpers */

static json_t *jstep(json_t *cur, const char *key, size_t n)
{
    char buf[128];
    if (n >= sizeof buf) return NULL;
    memcpy(buf, key, n);
    buf[n] = '\0';
    if (json_is_object(cur)) return json_object_get(cur, buf);
    if (json_is_array(cur)) {
        char *end;
        unsigned long i = strtoul(buf, &end, 10);
        return *end ? NULL : json_array_get(cur, i);
    }
    return NULL;
}

json_t *jpath(json_t *root, const char *dotted)
{
    json_t *cur = root;
    const char *p = dotted;
    while (cur && p && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        cur = jstep(cur, p, n);
        p = dot ? dot + 1 : NULL;
    }
    return cur;
}

const char *jstr(json_t *root, const char *dotted)
{
    return json_string_value(jpath(root, dotted));
}

int64_t jint(json_t *root, const char *dotted)
{
    json_t *v = jpath(root, dotted);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : INT64_MIN;
}

bool jis_null(json_t *root, const char *dotted)
{
    return json_is_null(jpath(root, dotted));
}

/* Parses the "+hh:mm"/"-hh:mm"/"Z" suffix; returns offset seconds or INT32_MIN. */
static int ts_tz(const char *p)
{
    int hh, mm;
    if (*p == 'Z' && !p[1]) return 0;
    if ((*p != '+' && *p != '-') || sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2) return INT32_MIN;
    return (*p == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
}

int64_t ts_parse_time(const char *s)
{
    struct tm tm = {0};
    int ms = 0, n = 0;
    if (!s) return INT64_MIN;
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p) return INT64_MIN;
    if (*p == '.') {
        p++;
        for (int d = 0; d < 3 && *p >= '0' && *p <= '9'; d++, p++, n++) ms = ms * 10 + (*p - '0');
        while (n++ < 3) ms *= 10;
        while (*p >= '0' && *p <= '9') p++;
    }
    int tz = ts_tz(p);
    if (tz == INT32_MIN) return INT64_MIN;
    return ((int64_t)timegm(&tm) - tz) * 1000 + ms;
}
