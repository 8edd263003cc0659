/*
 * test_install.c - packaging end to end: `cmake --install` of this build into a temp prefix
 * puts the header, the shared and static libraries, jobq.pc, jobqd, jobq and the systemd
 * unit in place; examples/producer.c then builds with `pkg-config --cflags --libs jobq`
 * against that prefix only, and the binary talks to a real jobqd (the test plays worker).
 *
 * Needs cmake, cc and pkg-config on PATH (as building jobq does).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#ifndef JOBQ_CLI_PATH
#define JOBQ_CLI_PATH "jobq"
#endif
#ifndef JOBQ_SOURCE_DIR
#define JOBQ_SOURCE_DIR "."
#endif

enum { CMD_CAP = 4096 };

/* snprintf that fails the test on truncation (a cut command line would run something else). */
__attribute__((format(printf, 3, 4))) static void fmt(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(buf, cap, f, ap);
    va_end(ap);
    REQUIRE(n >= 0 && (size_t)n < cap);
}

static bool exists(const char *prefix, const char *rel)
{
    char p[CMD_CAP];
    struct stat st;
    fmt(p, sizeof p, "%s/%s", prefix, rel);
    return stat(p, &st) == 0;
}

/* Runs a shell command; on failure prints it and its log. Returns the exit status. */
static int sh(const char *cmd, const char *log)
{
    char full[CMD_CAP * 2];
    fmt(full, sizeof full, "{ %s; } >%s 2>&1", cmd, log);
    int st = system(full);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    if (code != 0) {
        fprintf(stderr, "command failed (%d): %s\n", code, cmd);
        fmt(full, sizeof full, "tail -20 %s >&2", log);
        if (system(full)) {
        }
    }
    return code;
}

/* First line of a command's output into out (cap bytes); "" when none. */
static void first_output(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    out[0] = '\0';
    if (p) {
        if (fgets(out, (int)cap, p))
            out[strcspn(out, "\n")] = '\0';
        pclose(p);
    }
}

TEST(install_and_build_against_pkg_config)
{
    char build[CMD_CAP], cmd[CMD_CAP], log[CMD_CAP], pcdir[CMD_CAP], flags[CMD_CAP];
    const char *slash = strrchr(JOBQ_CLI_PATH, '/');
    fmt(build, sizeof build, "%.*s", slash ? (int)(slash - JOBQ_CLI_PATH) : 1,
             slash ? JOBQ_CLI_PATH : ".");
    char *prefix = th_mkdtemp("prefix");
    fmt(log, sizeof log, "%s/cmd.log", th_tmproot());

    fmt(cmd, sizeof cmd, "cmake --install '%s' --prefix '%s'", build, prefix);
    REQUIRE_EQ(sh(cmd, log), 0);
    CHECK(exists(prefix, "include/jobq.h"));
    CHECK(exists(prefix, "bin/jobqd"));
    CHECK(exists(prefix, "bin/jobq"));
    CHECK(exists(prefix, "lib/systemd/system/jobqd.service"));

    fmt(cmd, sizeof cmd, "dirname $(find '%s' -name jobq.pc | head -1)", prefix);
    first_output(cmd, pcdir, sizeof pcdir);
    REQUIRE(pcdir[0] == '/');
    char libdir[CMD_CAP];
    fmt(libdir, sizeof libdir, "%s", pcdir);
    *strrchr(libdir, '/') = '\0';                          /* <libdir>/pkgconfig -> <libdir> */
    CHECK(exists(libdir, "libjobq.so"));
    CHECK(exists(libdir, "libjobq.a"));

    fmt(cmd, sizeof cmd, "PKG_CONFIG_PATH='%s' pkg-config --cflags --libs jobq", pcdir);
    first_output(cmd, flags, sizeof flags);
    CHECK(strstr(flags, "-ljobq") != NULL);
    CHECK(strstr(flags, prefix) != NULL);                  /* -I and -L point into the prefix */

    /* The installed library of a sanitizer build needs the sanitizer runtime at link time
     * too; a plain build links without it. */
    fmt(cmd, sizeof cmd, "cc -std=c11 '%s/examples/producer.c' %s -o '%s/producer' "
             "|| cc -std=c11 -fsanitize=address,undefined '%s/examples/producer.c' %s "
             "-o '%s/producer'", JOBQ_SOURCE_DIR, flags, prefix, JOBQ_SOURCE_DIR, flags, prefix);
    REQUIRE_EQ(sh(cmd, log), 0);

    /* Run it against a real jobqd: it enqueues and polls; the test claims and completes. */
    struct testsrv_opts o = { .real_clock = true };
    struct testsrv *s = testsrv_start(&o);
    const char *user = ts_token(s, "alice", "user"), *wt = ts_token(s, "w", "worker");
    char out[CMD_CAP], id[TS_ID_MAX], lease[TS_HDR_MAX];
    fmt(out, sizeof out, "%s/producer.out", th_tmproot());
    fmt(cmd, sizeof cmd, "LD_LIBRARY_PATH='%s' ASAN_OPTIONS=verify_asan_link_order=0:"
             "detect_leaks=0 JOBQ_URL=%s JOBQ_TOKEN=%s '%s/producer' echo '{\"hello\":1}' "
             ">'%s' 2>&1 & echo $!", libdir, s->url, user, prefix, out);
    char pidtext[32];
    first_output(cmd, pidtext, sizeof pidtext);
    pid_t pid = (pid_t)atol(pidtext);
    REQUIRE(pid > 0);
    WAIT_FOR(ts_claim1(s, wt, "default", id, lease) == 1, 5000);
    char body[512];
    fmt(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"ok\":true}}", lease);
    struct resp r = { 0 };
    CHECK_EQ(ts_reqf(s, "POST", wt, body, &r, "/v1/jobs/%s/complete", id), 200);
    resp_free(&r);
    char text[CMD_CAP];
    fmt(cmd, sizeof cmd, "cat '%s'", out);
    WAIT_FOR((first_output(cmd, text, sizeof text), strncmp(text, "enqueued ", 9) == 0) &&
                 kill(pid, 0) != 0, 5000);
    fmt(cmd, sizeof cmd, "grep -c 'completed: {\"ok\":true}' '%s'", out);
    first_output(cmd, text, sizeof text);
    CHECK_STR_EQ(text, "1");
    free(prefix);
    testsrv_stop(s);
}

TEST_MAIN()
