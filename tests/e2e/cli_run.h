/*
 * cli_run.h - running the `jobq` CLI binary from the e2e tests (test_cli*.c), as a script
 * would: posix_spawn of JOBQ_CLI_PATH, stdout/stderr captured in files of the test's temp
 * root (or stdout on a pseudo-terminal, to see what a user at a terminal sees), and an
 * environment without any inherited JOBQ_URL / JOBQ_TOKEN / NO_COLOR.
 *
 * Header-only (each test file is its own program); every helper is static and marked
 * unused so a file may use only some of them.
 */
#ifndef JQ_E2E_CLI_RUN_H
#define JQ_E2E_CLI_RUN_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#ifndef JOBQ_CLI_PATH
#define JOBQ_CLI_PATH "jobq"
#endif

#define CLI_RUN_FN static __attribute__((unused))

enum {
    ARGS_MAX = 32,      /* longest command line a test builds */
    ENV_EXTRA_MAX = 4,  /* JOBQ_* variables a run may set */
};

/* The CLI tests never move time, so they run in release builds too (no --fake-clock). */
static const struct testsrv_opts real_clock __attribute__((unused)) = { .real_clock = true };

/* One finished CLI run. */
struct run {
    int code;           /* exit status, or 128 + signal */
    char *out;          /* captured stdout, malloc'd, NUL-terminated */
    char *err;          /* captured stderr */
};

CLI_RUN_FN void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

/* Whole file as a malloc'd string ("" when unreadable). */
CLI_RUN_FN char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *s = NULL;
    size_t len = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        s = malloc((size_t)(n > 0 ? n : 0) + 1);
        len = n > 0 ? fread(s, 1, (size_t)n, f) : 0;
        fclose(f);
    } else {
        s = malloc(1);
    }
    s[len] = '\0';
    return s;
}

/* environ without JOBQ_URL / JOBQ_TOKEN / NO_COLOR, plus extra ("K=V" strings,
 * NULL-terminated). */
CLI_RUN_FN char **make_env(const char *const *extra)
{
    size_t n = 0, j = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + ENV_EXTRA_MAX + 1, sizeof *env);
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "JOBQ_URL=", 9) && strncmp(environ[i], "JOBQ_TOKEN=", 11) &&
            strncmp(environ[i], "NO_COLOR=", 9))
            env[j++] = environ[i];
    for (size_t i = 0; extra && extra[i] && i < ENV_EXTRA_MAX; i++)
        env[j++] = (char *)extra[i];
    return env;
}

/* Reads what the child writes to the terminal until it has exited and the pty is dry;
 * returns the malloc'd text. *st gets the wait status. */
CLI_RUN_FN char *pty_collect(int master, pid_t pid, int *st)
{
    size_t len = 0, cap = 4096;
    char *s = malloc(cap);
    bool exited = false;
    for (;;) {
        struct pollfd p = { .fd = master, .events = POLLIN };
        int ready = poll(&p, 1, exited ? 0 : 50);
        ssize_t n = 0;
        if (ready > 0) {
            if (cap - len < 1024)
                s = realloc(s, cap *= 2);
            n = read(master, s + len, cap - len - 1);
            if (n > 0)
                len += (size_t)n;
        }
        if (exited && n <= 0)
            break;                    /* dry (EIO once no one holds the slave side) */
        if (!exited && waitpid(pid, st, WNOHANG) == pid)
            exited = true;
    }
    s[len] = '\0';
    return s;
}

/* Runs jobq with argv (NULL-terminated) and env extras; waits for it. With tty, stdout is
 * a pseudo-terminal (so isatty(1) holds in the CLI) and r.out what it showed there. */
CLI_RUN_FN struct run cli_runv_tty(const char *const *extra_env, const char *const *args,
                                   bool tty)
{
    static int seq;
    char out[1024], err[1024];
    const char *av[ARGS_MAX + 2] = { JOBQ_CLI_PATH };
    size_t n = 0;
    int master = -1;
    while (args[n] && n < ARGS_MAX) {
        av[n + 1] = args[n];
        n++;
    }
    snprintf(out, sizeof out, "%s/cli-%d.out", th_tmproot(), seq);
    snprintf(err, sizeof err, "%s/cli-%d.err", th_tmproot(), seq++);
    if (tty) {
        master = posix_openpt(O_RDWR | O_NOCTTY);
        if (master < 0 || grantpt(master) || unlockpt(master) || !ptsname(master)) {
            th_fail(__FILE__, __LINE__, "no pseudo-terminal: %s", strerror(errno));
            th_abort();
        }
        snprintf(out, sizeof out, "%s", ptsname(master));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out,
                                     tty ? O_WRONLY | O_NOCTTY : O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (master >= 0)
        posix_spawn_file_actions_addclose(&fa, master);
    char **env = make_env(extra_env);
    pid_t pid;
    int rc = posix_spawn(&pid, JOBQ_CLI_PATH, &fa, NULL, (char *const *)av, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    struct run r = { .code = -1 };
    if (rc) {
        th_fail(__FILE__, __LINE__, "posix_spawn(%s): %s", JOBQ_CLI_PATH, strerror(rc));
        th_abort();
    }
    int st = 0;
    if (tty) {
        r.out = pty_collect(master, pid, &st);
        close(master);
    } else {
        while (waitpid(pid, &st, 0) < 0)
            ;
        r.out = slurp(out);
    }
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.err = slurp(err);
    return r;
}

CLI_RUN_FN struct run cli_runv(const char *const *extra_env, const char *const *args)
{
    return cli_runv_tty(extra_env, args, false);
}

/* Collects the NULL-terminated variadic args into args (ARGS_MAX + 1). */
#define CLI_ARGS(args, last)                                            \
    do {                                                                \
        size_t n_ = 0;                                                  \
        va_list ap_;                                                    \
        va_start(ap_, last);                                            \
        while (n_ < ARGS_MAX && ((args)[n_] = va_arg(ap_, const char *))) \
            n_++;                                                       \
        va_end(ap_);                                                    \
        (args)[n_] = NULL;                                              \
    } while (0)

/* Prints the run when JQ_VERBOSE is set. */
CLI_RUN_FN void cli_trace(const struct run *r, const char *const *args)
{
    if (getenv("JQ_VERBOSE"))
        fprintf(stderr, "[jobq %s ...] exit %d\n--out--\n%s--err--\n%s", args[0], r->code,
                r->out, r->err);
}

/* cli(&r, env, "arg", ..., NULL): runs jobq; prints the run when checks later fail. */
__attribute__((sentinel, unused)) static void cli(struct run *r, const char *const *env, ...)
{
    const char *args[ARGS_MAX + 1];
    CLI_ARGS(args, env);
    run_free(r);
    *r = cli_runv(env, args);
    cli_trace(r, args);
}

/* The same with stdout on a pseudo-terminal. */
__attribute__((sentinel, unused)) static void cli_tty(struct run *r, const char *const *env, ...)
{
    const char *args[ARGS_MAX + 1];
    CLI_ARGS(args, env);
    run_free(r);
    *r = cli_runv_tty(env, args, true);
    cli_trace(r, args);
}

/* First line of s copied into buf (cap bytes). */
CLI_RUN_FN const char *first_line(const char *s, char *buf, size_t cap)
{
    size_t n = strcspn(s, "\n");
    n = n < cap - 1 ? n : cap - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

/* Shows a run's output when an expectation about it failed. */
CLI_RUN_FN void explain(const struct run *r)
{
    fprintf(stderr, "  jobq exit %d\n  stdout: %s\n  stderr: %s\n", r->code, r->out, r->err);
}

#define CHECK_RUN(r, want_code)                                     \
    do {                                                            \
        if (!CHECK_EQ((r).code, (want_code)))                       \
            explain(&(r));                                          \
    } while (0)

/* Creates a token through the CLI as admin; returns it in tok (TS_HDR_MAX). */
CLI_RUN_FN void cli_token(struct testsrv *s, const char *user, const char *role, char *tok,
                          char *id)
{
    struct run r = { 0 };
    cli(&r, NULL, "--url", s->url, "--token", s->admin, "--json", "token", "create", "--user",
        user, "--role", role, "--name", "e2e", NULL);
    CHECK_RUN(r, 0);
    json_t *j = json_loads(r.out, 0, NULL);
    REQUIRE(jstr(j, "token") != NULL);
    snprintf(tok, TS_HDR_MAX, "%s", jstr(j, "token"));
    if (id)
        snprintf(id, TS_ID_MAX, "%s", jstr(j, "id") ? jstr(j, "id") : "");
    if (id && !jstr(j, "id") && jint(j, "id") != INT64_MIN)
        snprintf(id, TS_ID_MAX, "%lld", (long long)jint(j, "id"));
    json_decref(j);
    run_free(&r);
}

#endif /* JQ_E2E_CLI_RUN_H */
