/*
 * rel.h - helpers shared by the tests/reliability suites (static inline so a suite that
 * does not use one does not warn): the tier (CI or long), raw sockets for requests curl
 * will not send, jobqd's resident memory, and an integrity check on a copy of the DB.
 *
 * Tier: JQ_LONG=1 (make test-long) runs the full counts of shared/RELIABILITY.md; the
 * default is the CI size. REL_N(ci, long) picks one.
 */
#ifndef JQ_REL_H
#define JQ_REL_H

#include "srvtest.h"
#include "ledger.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static inline bool rel_long(void)
{
    const char *e = getenv("JQ_LONG");
    return e && *e == '1';
}
#define REL_N(ci, full) (rel_long() ? (full) : (ci))

/* Sleeps until th_now_ms() reaches due_ms: the schedule of a paced load (a rate), not a
 * wait for a condition. */
static inline void rel_pace_until(int64_t due_ms)
{
    int64_t left = due_ms - th_now_ms();
    if (left > 0)
        nanosleep(&(struct timespec){left / 1000, (long)(left % 1000) * 1000000L}, NULL);
}

/* --- raw sockets --- */

/* Connected TCP socket to 127.0.0.1:port, or -1. */
static inline int rel_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static inline bool rel_send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads until the peer closes, cap-1 bytes arrived, or timeout_ms passed; NUL-terminates.
 * Returns the bytes read. */
static inline size_t rel_read_all(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;
    int64_t dl = th_now_ms() + timeout_ms;
    while (n + 1 < cap) {
        int64_t left = dl - th_now_ms();
        if (left <= 0) break;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, (int)left) <= 0) break;
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return n;
}

/* Status code of the first response in buf ("HTTP/1.x NNN"), 0 if none. */
static inline long rel_status(const char *buf)
{
    if (strncmp(buf, "HTTP/1.", 7) || strlen(buf) < 12) return 0;
    return strtol(buf + 9, NULL, 10);
}

/* Pointer to the body of the first response in buf (after the blank line), or "". */
static inline const char *rel_body(const char *buf)
{
    const char *p = strstr(buf, "\r\n\r\n");
    return p ? p + 4 : "";
}

/* Sends req (len bytes, 0 = strlen) on a fresh connection, half-closes, reads the
 * answer into buf; returns the first status (0 = no HTTP answer: refused or closed). */
static inline long rel_raw(int port, const char *req, size_t len, char *buf, size_t cap,
                           int timeout_ms)
{
    buf[0] = '\0';
    int fd = rel_connect(port);
    if (fd < 0) return 0;
    if (!len) len = strlen(req);
    rel_send_all(fd, req, len);
    shutdown(fd, SHUT_WR);
    rel_read_all(fd, buf, cap, timeout_ms);
    close(fd);
    return rel_status(buf);
}

/* --- the server process --- */

/* VmRSS of pid in KiB (-1 if unreadable). */
static inline long rel_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* Number of open fds of pid (-1 if unreadable). */
static inline int rel_fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    FILE *p;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "ls %s 2>/dev/null | wc -l", path);
    if (!(p = popen(cmd, "r"))) return -1;
    int n = -1;
    if (fscanf(p, "%d", &n) != 1) n = -1;
    pclose(p);
    return n;
}

/* Copies file src to dst (absent src: false). */
static inline bool rel_copy(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return false;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    char buf[1 << 16];
    ssize_t n;
    bool ok = out >= 0;
    while (ok && (n = read(in, buf, sizeof buf)) > 0)
        ok = write(out, buf, (size_t)n) == n;
    close(in);
    if (out >= 0) close(out);
    return ok;
}

/* PRAGMA integrity_check on a copy of db (+ its -wal, as a crash left them; the -shm is
 * not copied, as after a reboot) in dir; returns true if "ok", else prints the answer. */
static inline bool rel_integrity_copy(const char *db, const char *dir)
{
    char dst[1024], src[1100], dstw[1100];          /* room for the suffixes (-O2 checks) */
    snprintf(dst, sizeof dst, "%s/check.db", dir);
    snprintf(dstw, sizeof dstw, "%s/check.db-wal", dir);
    unlink(dst);
    unlink(dstw);
    if (!rel_copy(db, dst)) return false;
    if (snprintf(src, sizeof src, "%s-wal", db) >= (int)sizeof src)
        return false;
    rel_copy(src, dstw);
    sqlite3 *h = NULL;
    bool ok = false;
    if (sqlite3_open_v2(dst, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW) {
            const char *r = (const char *)sqlite3_column_text(st, 0);
            ok = r && !strcmp(r, "ok");
            if (!ok) fprintf(stderr, "  integrity_check: %s\n", r ? r : "(null)");
        } else {
            fprintf(stderr, "  integrity_check: %s\n", sqlite3_errmsg(h));
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    unlink(dst);
    unlink(dstw);
    return ok;
}

/* Lines of jobqd's log (all its runs in s->dir) that contain needle. */
static inline long rel_log_count(struct testsrv *s, const char *needle)
{
    char path[1100], line[1024];
    snprintf(path, sizeof path, "%s/jobqd.log", s->dir);
    FILE *f = fopen(path, "r");
    long n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    if (f) fclose(f);
    return n;
}

/* Path of the ASan runtime this binary (built like jobqd) loaded, "" when none: preloaded
 * before libfiu / libfaketime, which ASan insists on being first. */
static inline void rel_asan_runtime(char *out, size_t cap)
{
    char line[1024];
    FILE *f = fopen("/proc/self/maps", "r");
    out[0] = '\0';
    while (f && fgets(line, sizeof line, f)) {
        char *p = strchr(line, '/');
        if (p && strstr(p, "/libasan.so")) {
            p[strcspn(p, "\n")] = '\0';
            snprintf(out, cap, "%s", p);
            break;
        }
    }
    if (f) fclose(f);
}

/* Lists the jobs (admin, cursor pages; query: extra filters such as "&queue=q", or "") into
 * the ledger's final state; returns how many. */
static inline long rel_final_list(struct testsrv *s, struct ledger *lg, const char *query)
{
    char cursor[256] = "", path[768];
    long n = 0;
    for (;;) {
        snprintf(path, sizeof path, "/v1/jobs?limit=1000&order=asc%s%s%s", query,
                 cursor[0] ? "&cursor=" : "", cursor);
        struct resp r;
        if (!CHECK_EQ(ts_req(s, "GET", path, s->admin, NULL, &r), 200)) {
            resp_free(&r);
            return n;
        }
        json_t *jobs = jpath(r.json, "jobs");
        for (size_t i = 0; i < json_array_size(jobs); i++) {
            json_t *j = json_array_get(jobs, i);
            ledger_final(lg, jstr(j, "id"), jstr(j, "status"), jstr(j, "params.key"),
                         jstr(j, "result.key"));
            n++;
        }
        const char *next = jstr(r.json, "next_cursor");
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        resp_free(&r);
        if (!cursor[0]) return n;
    }
}

#endif
