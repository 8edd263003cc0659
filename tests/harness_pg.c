/*
 * harness_pg.c - a throwaway PostgreSQL cluster for the tests (see harness_pg.h).
 * Binaries from PG_BIN (default /usr/lib/postgresql/15/bin).
 */
#include "harness_pg.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG_BIN_DEFAULT "/usr/lib/postgresql/15/bin"

static char pg_dir[PATH_MAX];      /* cluster temp dir ("" when none of ours) */
static char pg_base[128];          /* postgres://postgres@127.0.0.1:PORT */
static int pg_port;
static pid_t pg_owner;             /* the process that started it (children never stop it) */
static int pg_dbs;                 /* databases made by this process */

bool thpg_enabled(void)
{
    const char *b = getenv("JOBQ_TEST_BACKEND");
    return b && (strcmp(b, "postgres") == 0 || strcmp(b, "pg") == 0);
}

const char *thpg_base(void)
{
    return pg_base;
}

static const char *bin(const char *name, char *buf, size_t cap)
{
    const char *dir = getenv("PG_BIN");
    snprintf(buf, cap, "%s/%s", dir && *dir ? dir : PG_BIN_DEFAULT, name);
    return buf;
}

/* Runs argv (as the postgres user when root), stdout to *out or the log; exit status. */
static int run(char *const argv[], char **out, bool detach)
{
    int fds[2] = {-1, -1};
    if (out && pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (detach)
            setsid();                  /* the postmaster outlives test process groups */
        int log = open(pg_dir[0] ? pg_dir : "/dev/null", O_RDONLY);
        if (log >= 0)
            close(log);
        char lp[PATH_MAX + 16];
        snprintf(lp, sizeof lp, "%s/cmd.log", pg_dir[0] ? pg_dir : "/tmp");
        int lfd = open(lp, O_WRONLY | O_CREAT | O_APPEND, 0666);
        if (out) {
            dup2(fds[1], 1);
            close(fds[0]);
            close(fds[1]);
        } else if (lfd >= 0) {
            dup2(lfd, 1);
        }
        if (lfd >= 0)
            dup2(lfd, 2);
        struct passwd *pw = getuid() == 0 ? getpwnam("postgres") : NULL;
        if (pw && (setgid(pw->pw_gid) != 0 || initgroups("postgres", pw->pw_gid) != 0 ||
                   setuid(pw->pw_uid) != 0))
            _exit(126);
        if (chdir(pg_dir[0] ? pg_dir : "/tmp") != 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    if (out) {
        close(fds[1]);
        size_t n = 0, cap = 4096;
        char *b = malloc(cap);
        ssize_t k;
        while (b && (k = read(fds[0], b + n, cap - n - 1)) > 0)
            if ((n += (size_t)k) + 1 >= cap && !(b = realloc(b, cap *= 2)))
                break;
        if (b)
            b[n] = '\0';
        close(fds[0]);
        *out = b;
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int pg_ctl(const char *action, const char *mode)
{
    char b[PATH_MAX], data[PATH_MAX + 8], opts[PATH_MAX + 256], log[PATH_MAX + 16];
    snprintf(data, sizeof data, "%s/data", pg_dir);
    snprintf(log, sizeof log, "%s/postgres.log", pg_dir);
    snprintf(opts, sizeof opts, "-p %d -k %s -c listen_addresses=127.0.0.1"
             " -c fsync=off -c full_page_writes=off -c max_connections=400"
             " -c shared_buffers=64MB -c deadlock_timeout=200ms", pg_port, pg_dir);
    char *av[] = {(char *)bin("pg_ctl", b, sizeof b), "-D", data, "-l", log, "-w", "-t", "60",
                  "-m", (char *)(mode ? mode : "fast"), "-o", opts, (char *)action, NULL};
    return run(av, NULL, true);
}

static void stop_at_exit(void)
{
    thpg_stop();
}

int thpg_start(void)
{
    if (pg_base[0])
        return 0;
    const char *url = getenv("JOBQ_TEST_PG_URL");
    if (url && *url) {
        snprintf(pg_base, sizeof pg_base, "%s", url);
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(pg_dir, sizeof pg_dir, "%s/jqpg-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(pg_dir))
        return -1;
    struct passwd *pw = getuid() == 0 ? getpwnam("postgres") : NULL;
    if (pw && chown(pg_dir, pw->pw_uid, pw->pw_gid) != 0)
        return -1;
    char b[PATH_MAX], data[PATH_MAX + 8];
    snprintf(data, sizeof data, "%s/data", pg_dir);
    char *init[] = {(char *)bin("initdb", b, sizeof b), "-D", data, "-A", "trust", "-U",
                    "postgres", "-N", "-E", "UTF8", "--locale=C", NULL};
    if (run(init, NULL, false) != 0) {
        fprintf(stderr, "harness: initdb failed (see %s/cmd.log)\n", pg_dir);
        return -1;
    }
    pg_port = free_port();
    pg_owner = getpid();
    atexit(stop_at_exit);
    if (pg_ctl("start", NULL) != 0) {
        fprintf(stderr, "harness: pg_ctl start failed (see %s/postgres.log)\n", pg_dir);
        return -1;
    }
    snprintf(pg_base, sizeof pg_base, "postgres://postgres@127.0.0.1:%d", pg_port);
    return 0;
}

static int rm_rf(const char *path)
{
    char *av[] = {"/bin/rm", "-rf", (char *)path, NULL};
    pid_t pid = fork();
    if (pid == 0) {
        execv(av[0], av);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

void thpg_stop(void)
{
    if (!pg_dir[0] || getpid() != pg_owner)
        return;
    pg_ctl("stop", "immediate");
    if (!getenv("JQ_KEEP_TMP"))
        rm_rf(pg_dir);
    pg_dir[0] = '\0';
    pg_base[0] = '\0';
}

int thpg_restart_immediate(void)
{
    return pg_dir[0] ? pg_ctl("restart", "immediate") : -1;
}

int thpg_down(void)
{
    return pg_dir[0] ? pg_ctl("stop", "immediate") : -1;
}

int thpg_up(void)
{
    return pg_dir[0] ? pg_ctl("start", NULL) : -1;
}

int thpg_psql(const char *url, const char *sql, char **out)
{
    char b[PATH_MAX];
    char *av[] = {(char *)bin("psql", b, sizeof b), "-qAt", "-v", "ON_ERROR_STOP=1",
                  "-d", (char *)url, "-c", (char *)sql, NULL};
    return run(av, out, false);
}

char *thpg_new_db(void)
{
    if (thpg_start() != 0)
        return NULL;
    char name[64], sql[128], url[256];
    snprintf(name, sizeof name, "jq_%d_%d", (int)getpid(), ++pg_dbs);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    snprintf(url, sizeof url, "%s/postgres", pg_base);
    if (thpg_psql(url, sql, NULL) != 0)
        return NULL;
    snprintf(url, sizeof url, "%s/%s", pg_base, name);
    return strdup(url);
}
