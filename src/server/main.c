/*
 * main.c - jobqd: parse the configuration, open the store, bootstrap the
 * admin token, start the maintenance thread and HTTP, then wait for
 * SIGTERM/SIGINT and shut down in reverse order (HTTP stops accepting and
 * drains, in-flight commits finish, the database closes cleanly).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/json.h"
#include "common/log.h"
#ifdef JOBQ_TESTING
#include <sqlite3.h>

#include "common/failalloc.h"
#endif
#include "server/auth.h"
#include "server/cache.h"
#include "server/http.h"
#include "server/jobqd.h"
#include "server/maint.h"
#include "server/metrics.h"
#include "server/router.h"

static int sync_level(const char *s)
{
    return strcmp(s, "off") == 0 ? 0 : strcmp(s, "normal") == 0 ? 1 : 2;
}

static void set_log_level(const char *s)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            log_set_level((enum log_level)i);
}

static bool write_port_file(const char *path, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0)
        return false;
    return rename(tmp, path) == 0;      /* readers never see a half-written file */
}

/* SIGTERM and SIGINT (test builds: and SIGUSR1), blocked in every thread: main takes
 * them with sigwait. */
static void stop_signals(sigset_t *sigs)
{
    sigemptyset(sigs);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGINT);
#ifdef JOBQ_TESTING
    sigaddset(sigs, SIGUSR1);
#endif
}

#ifdef JOBQ_TESTING
/* --- test builds: --test-fail-alloc (common/failalloc.h) over SQLite's allocator --- */
static sqlite3_mem_methods sqlite_mem;      /* SQLite's own allocator, wrapped below */

static void *sqlite_malloc_hooked(int n)
{
    return failalloc_hit() ? NULL : sqlite_mem.xMalloc(n);
}

static void *sqlite_realloc_hooked(void *p, int n)
{
    return failalloc_hit() ? NULL : sqlite_mem.xRealloc(p, n);
}

/* Before the first SQLite call (sqlite3_config must precede sqlite3_initialize). */
static bool failalloc_install(void)
{
    sqlite3_mem_methods m;
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sqlite_mem) != SQLITE_OK)
        return false;
    m = sqlite_mem;
    m.xMalloc = sqlite_malloc_hooked;
    m.xRealloc = sqlite_realloc_hooked;
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &m) != SQLITE_OK)
        return false;
    json_track_oom(failalloc_malloc);
    return true;
}
#endif

/* Waits for SIGTERM or SIGINT; test builds arm --test-fail-alloc on SIGUSR1. */
static int wait_stop(struct jobqd *d, const sigset_t *sigs)
{
    int sig = 0;
    for (;;) {
        sigwait(sigs, &sig);
#ifdef JOBQ_TESTING
        if (sig == SIGUSR1) {
            failalloc_arm((long)d->cfg.test_fail_alloc);
            log_info("fail-alloc: armed, allocation %lld from now fails",
                     (long long)d->cfg.test_fail_alloc);
            continue;
        }
#endif
        (void)d;
        return sig;
    }
}

static int run(struct jobqd *d)
{
    int port = 0;
    sigset_t sigs;
    stop_signals(&sigs);
    if (!maint_start(d) || !http_start(d, &port))
        return 1;
    log_info("jobqd listening on %s:%d (db %s, sync %s)", d->cfg.host, port, d->cfg.db,
             d->cfg.sync);
    if (d->cfg.port_file && !write_port_file(d->cfg.port_file, port)) {
        log_error("cannot write --port-file %s", d->cfg.port_file);
        return 1;
    }
    int sig = wait_stop(d, &sigs);
    log_info("signal %d: shutting down", sig);
    return 0;
}

int main(int argc, char **argv)
{
    struct jobqd d = {0};
    int rc = config_load(&d.cfg, argc, argv);
    if (rc)
        return rc > 0 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN);
    /* Blocked before the first thread starts (the store's writer, syncer and checkpointer
     * come before run()): a thread created with SIGTERM unblocked could take it and die by
     * the default action instead of the graceful stop in run(). */
    sigset_t sigs;
    stop_signals(&sigs);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    set_log_level(d.cfg.log_level);
    if (sodium_init() < 0)
        return 1;
    clock_init(&d.clock, d.cfg.fake_clock);
    json_track_oom(NULL);         /* a reply jansson could not build whole is a 503 */
#ifdef JOBQ_TESTING
    if (d.cfg.test_fail_alloc && !failalloc_install())
        return 1;
#endif
    int n_routes;
    router_routes(&n_routes);
    if (!(d.tokens = auth_cache_new()) || !(d.metrics = metrics_new(n_routes)))
        return 1;
    if (*d.cfg.cache && !(d.cache = cache_new(d.cfg.cache))) {
        auth_cache_free(d.tokens);
        metrics_free(d.metrics);
        return 2;
    }
    events_init(&d.ev);
    struct store_cfg sc = {.path = d.cfg.db, .readers = (int)d.cfg.readers,
                           .sync = sync_level(d.cfg.sync),
                           .pool = (int)d.cfg.pg_pool,
                           .retry = {d.cfg.backoff_base_ms, d.cfg.backoff_max_ms},
                           .slow_ms = d.cfg.slow_ms,
                           .vfs = d.cfg.test_vfs,    /* "" = default VFS */
                           .clock_skew = d.cfg.fake_clock ? NULL : &d.clock.skew_ms};
    if (store_open(&sc, &d.st)) {
        fprintf(stderr, "jobqd: cannot open the database %s (see the log above)\n", d.cfg.db);
        events_fini(&d.ev);
        auth_cache_free(d.tokens);
        metrics_free(d.metrics);
        cache_free(d.cache);
        return 1;
    }
    store_set_notify(d.st, events_bump, &d.ev);
    store_set_claim_notify(d.st, events_wake_claims, &d.ev);
    struct sctx c = {.now_ms = clock_now_ms(&d.clock)};
    rc = auth_bootstrap(d.st, &c, getenv("JOBQ_ADMIN_TOKEN")) ? 1 : run(&d);
    events_close(&d.ev);          /* long-poll claims return at once */
    http_stop(d.http);
    maint_stop(d.maint);
    store_close(d.st);
    events_fini(&d.ev);
    auth_cache_free(d.tokens);
    metrics_free(d.metrics);
    cache_free(d.cache);
#ifdef JOBQ_TESTING
    if (d.cfg.test_fail_alloc)
        log_info("fail-alloc: %ld allocations since armed, %ld failed", failalloc_counted(),
                 failalloc_fired());
#endif
    log_info("jobqd stopped");
    return rc;
}
