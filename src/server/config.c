/* config.c - the option table of jobqd and its parser (see config.h). */
#include "server/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum opt_kind { OPT_STR, OPT_INT, OPT_BOOL };

struct opt {
    const char *flag;            /* --flag */
    const char *env;             /* JOBQ_* */
    enum opt_kind kind;
    size_t off;                  /* offset in struct jobqd_config */
    const char *def;             /* default, as text */
    int64_t lo, hi;              /* bounds of an OPT_INT */
    const char *help;
};

#define F(m) offsetof(struct jobqd_config, m)
static const struct opt opts[] = {
    {"db", "JOBQ_DB", OPT_STR, F(db), "./data/jobq.db", 0, 0, "SQLite database file"},
    {"host", "JOBQ_HOST", OPT_STR, F(host), "127.0.0.1", 0, 0, "listen address"},
    {"port", "JOBQ_PORT", OPT_INT, F(port), "8080", 0, 65535, "listen port (0: any free port)"},
    {"port-file", "JOBQ_PORT_FILE", OPT_STR, F(port_file), NULL, 0, 0,
     "write the bound port to this file once listening"},
    {"readers", "JOBQ_READERS", OPT_INT, F(readers), "4", 1, 64, "read-only DB connections"},
    {"pg-pool", "JOBQ_PG_POOL", OPT_INT, F(pg_pool), "16", 1, 256,
     "PostgreSQL (--db postgres://...): connections in the pool"},
    {"sync", "JOBQ_SYNC", OPT_STR, F(sync), "full", 0, 0,
     "full (fsync every commit, default) | normal | off: NOT durable"},
    {"body-max", "JOBQ_BODY_MAX", OPT_INT, F(body_max), "1048576", 1024, 64 << 20,
     "request body cap in bytes"},
    {"max-connections", "JOBQ_MAX_CONNECTIONS", OPT_INT, F(max_connections), "1024", 4, 10000,
     "concurrent HTTP connections"},
    {"header-timeout-ms", "JOBQ_HEADER_TIMEOUT_MS", OPT_INT, F(header_timeout_ms), "30000", 0,
     600000, "a connection whose request headers are not complete this long after it opened "
     "(or after its last reply) is closed; 0: off"},
    {"lease-ms", "JOBQ_LEASE_MS", OPT_INT, F(lease_ms), "30000", 1000, 3600000,
     "default lease of a claim"},
    {"backoff-base-ms", "JOBQ_BACKOFF_BASE_MS", OPT_INT, F(backoff_base_ms), "1000", 1,
     86400000, "retry delay after the first failed attempt"},
    {"backoff-max-ms", "JOBQ_BACKOFF_MAX_MS", OPT_INT, F(backoff_max_ms), "3600000", 1,
     604800000, "ceiling of a retry delay"},
    {"ttl-ms", "JOBQ_TTL_MS", OPT_INT, F(ttl_ms), "86400000", 1000, 2592000000LL,
     "default time a pending job may wait before it expires"},
    {"max-attempts", "JOBQ_MAX_ATTEMPTS", OPT_INT, F(max_attempts), "3", 1, 100,
     "default attempts of a job"},
    {"dedup-window-ms", "JOBQ_DEDUP_WINDOW_MS", OPT_INT, F(dedup_window_ms), "300000", 0,
     86400000, "identical pending/processing jobs created this recently are returned (0: off)"},
    {"cache", "JOBQ_CACHE", OPT_STR, F(cache), "", 0, 0,
     "shared cache for job reads and stats: redis://host:port (Redis or Valkey; empty: off)"},
    {"cache-ttl-ms", "JOBQ_CACHE_TTL_MS", OPT_INT, F(cache_ttl_ms), "3600000", 0, 2592000000LL,
     "identical jobs completed this recently answer from their result (0: off)"},
    {"cache-ttl-type", "JOBQ_CACHE_TTL_TYPE", OPT_STR, F(cache_ttl_type), "", 0, 0,
     "per-type cache TTLs, e.g. report.build=60000,email=0"},
    {"active-limit", "JOBQ_ACTIVE_LIMIT", OPT_INT, F(active_limit), "10", 0, 100000000,
     "pending + processing jobs per user (user tokens; 0: no limit)"},
    {"retention-ms", "JOBQ_RETENTION_MS", OPT_INT, F(retention_ms), "604800000", 1,
     31536000000LL, "finished jobs (and their logs) are deleted after this"},
    {"cleanup-interval-ms", "JOBQ_CLEANUP_INTERVAL_MS", OPT_INT, F(cleanup_interval_ms),
     "60000", 100, 86400000, "how often the cleanup task runs"},
    {"cleanup-batch", "JOBQ_CLEANUP_BATCH", OPT_INT, F(cleanup_batch), "1000", 1, 100000,
     "jobs deleted per cleanup transaction (bounds how long a write waits)"},
    {"events-retention-ms", "JOBQ_EVENTS_RETENTION_MS", OPT_INT, F(events_retention_ms),
     "3600000", 1000, 604800000, "how long events stay resumable with Last-Event-ID"},
    {"sse-heartbeat-ms", "JOBQ_SSE_HEARTBEAT_MS", OPT_INT, F(sse_heartbeat_ms), "15000", 10,
     3600000, "idle event streams get a comment line this often"},
    {"sse-streams-max", "JOBQ_SSE_STREAMS_MAX", OPT_INT, F(sse_streams_max), "16", 1, 10000,
     "open event streams per user"},
    {"sse-stall-s", "JOBQ_SSE_STALL_S", OPT_INT, F(sse_stall_s), "60", 1, 3600,
     "an event stream whose client accepts nothing for this long is closed"},
    {"fair-queues", "JOBQ_FAIR_QUEUES", OPT_STR, F(fair_queues), "", 0, 0,
     "queues whose claims are round-robin between users: q1,q2 or * for all"},
    {"user-processing-max", "JOBQ_USER_PROCESSING_MAX", OPT_INT, F(user_processing_max), "0",
     0, 1000000, "processing jobs per user at once (claims skip users at it; 0: no cap)"},
    {"metrics-token", "JOBQ_METRICS_TOKEN", OPT_STR, F(metrics_token), "", 0, 0,
     "a bearer token that may read /metrics besides admin tokens (16+ chars)"},
    {"slow-ms", "JOBQ_SLOW_MS", OPT_INT, F(slow_ms), "100", 0, 3600000,
     "SQL statements slower than this are logged with their plan (0: off)"},
    {"statement-budget", "JOBQ_STATEMENT_BUDGET", OPT_INT, F(statement_budget), "-1", -1, 1000,
     "test builds: one statement budget for every route (-1: each route's own)"},
    {"sse-backlog-kb", "JOBQ_SSE_BACKLOG_KB", OPT_INT, F(sse_backlog_kb), "256", 16, 65536,
     "an event stream whose client has this much unread is closed (it resumes by id)"},
    {"fake-clock", "JOBQ_FAKE_CLOCK", OPT_BOOL, F(fake_clock), "0", 0, 0,
     "test builds only: freeze the clock; POST /v1/admin/clock moves it"},
    {"test-vfs", "JOBQ_TEST_VFS", OPT_STR, F(test_vfs), "", 0, 0,
     "test builds only: lazy = SQLite VFS that keeps unsynced writes in memory (T2); "
     "torn:N:SEED = the same, and the Nth sync writes a random subset of its sectors, then exits"},
    {"test-fail-alloc", "JOBQ_TEST_FAIL_ALLOC", OPT_INT, F(test_fail_alloc), "0", 0,
     1000000000, "test builds only: after SIGUSR1 the Nth SQLite/jansson allocation fails (T11)"},
    {"log-level", "JOBQ_LOG_LEVEL", OPT_STR, F(log_level), "info", 0, 0,
     "debug | info | warn | error"},
};
#undef F
enum { NOPTS = sizeof opts / sizeof opts[0] };

static void usage(void)
{
    printf("usage: jobqd [options]\n\n"
           "jobq server: durable background jobs over HTTP/JSON on an embedded SQLite file.\n"
           "Every option can also be set by its environment variable; flags win.\n\n");
    for (int i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];
        printf("  --%-18s %-22s %s", o->flag, o->env, o->help);
        if (o->def && o->kind != OPT_BOOL)
            printf(" (default %s)", o->def);
        printf("\n");
    }
    printf("  --%-18s %-22s %s\n", "help", "", "show this text");
    printf("\nOn first start with an empty database jobqd creates an admin token and prints\n"
           "it once (or uses JOBQ_ADMIN_TOKEN). SIGTERM/SIGINT stop it cleanly.\n");
}

static int set(struct jobqd_config *cfg, const struct opt *o, const char *v)
{
    char *base = (char *)cfg + o->off;
    if (o->kind == OPT_STR) {
        *(const char **)(void *)base = v;
        return 0;
    }
    if (o->kind == OPT_BOOL) {
        *(bool *)(void *)base = v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 ||
                                      strcmp(v, "yes") == 0);
        return 0;
    }
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < o->lo || n > o->hi) {
        fprintf(stderr, "jobqd: --%s: '%s' is not an integer in [%lld, %lld]\n", o->flag, v,
                (long long)o->lo, (long long)o->hi);
        return -1;
    }
    *(int64_t *)(void *)base = n;
    return 0;
}

/* Checks "type=ms,type=ms"; false (with a message) if malformed. */
static bool valid_ttl_types(const char *s)
{
    while (*s) {
        const char *eq = strchr(s, '='), *comma = strchrnul(s, ',');
        char *end;
        if (!eq || eq > comma || eq == s || eq - s > 128 ||
            strtoll(eq + 1, &end, 10) < 0 || end != comma || end == eq + 1) {
            fprintf(stderr, "jobqd: --cache-ttl-type wants type=ms[,type=ms...]\n");
            return false;
        }
        s = *comma ? comma + 1 : comma;
    }
    return true;
}

bool config_fair_queue(const struct jobqd_config *cfg, const char *queue)
{
    const char *s = cfg->fair_queues;
    size_t n = strlen(queue);
    if (!s || !*s)
        return false;
    if (strcmp(s, "*") == 0)
        return true;
    for (; *s; s = *strchrnul(s, ',') ? strchrnul(s, ',') + 1 : strchrnul(s, ',')) {
        const char *end = strchrnul(s, ',');
        if ((size_t)(end - s) == n && strncmp(s, queue, n) == 0)
            return true;
    }
    return false;
}

int64_t config_cache_ttl(const struct jobqd_config *cfg, const char *type)
{
    size_t n = strlen(type);
    for (const char *s = cfg->cache_ttl_type; s && *s;) {
        const char *eq = strchr(s, '='), *comma = strchrnul(s, ',');
        if ((size_t)(eq - s) == n && strncmp(s, type, n) == 0)
            return strtoll(eq + 1, NULL, 10);
        s = *comma ? comma + 1 : comma;
    }
    return cfg->cache_ttl_ms;
}

static const struct opt *find(const char *flag)
{
    for (int i = 0; i < NOPTS; i++)
        if (strcmp(opts[i].flag, flag) == 0)
            return &opts[i];
    return NULL;
}

static int parse_args(struct jobqd_config *cfg, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 1;
        }
        char name[64];
        const char *eq = strchr(a, '=');
        snprintf(name, sizeof name, "%.*s", (int)(eq ? eq - a : (long)strlen(a)) - 2, a + 2);
        const struct opt *o = strncmp(a, "--", 2) == 0 ? find(name) : NULL;
        if (!o) {
            fprintf(stderr, "jobqd: unknown option '%s' (see --help)\n", a);
            return -1;
        }
        const char *v = eq ? eq + 1 : o->kind == OPT_BOOL ? "1" : i + 1 < argc ? argv[++i] : NULL;
        if (!v) {
            fprintf(stderr, "jobqd: --%s needs a value\n", o->flag);
            return -1;
        }
        if (set(cfg, o, v))
            return -1;
    }
    return 0;
}

int config_load(struct jobqd_config *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < NOPTS; i++) {
        const char *env = getenv(opts[i].env);
        if (opts[i].def && set(cfg, &opts[i], opts[i].def))
            return -1;
        if (env && *env && set(cfg, &opts[i], env))
            return -1;
    }
    int rc = parse_args(cfg, argc, argv);
    if (rc)
        return rc;
    if (strcmp(cfg->sync, "full") && strcmp(cfg->sync, "normal") && strcmp(cfg->sync, "off")) {
        fprintf(stderr, "jobqd: --sync must be full, normal or off\n");
        return -1;
    }
    if (!valid_ttl_types(cfg->cache_ttl_type))
        return -1;
#ifndef JOBQ_TESTING
    if (cfg->fake_clock) {
        fprintf(stderr, "jobqd: --fake-clock exists only in test builds (JOBQ_TESTING)\n");
        return -1;
    }
    if (*cfg->test_vfs) {
        fprintf(stderr, "jobqd: --test-vfs exists only in test builds (JOBQ_TESTING)\n");
        return -1;
    }
    if (cfg->test_fail_alloc) {
        fprintf(stderr, "jobqd: --test-fail-alloc exists only in test builds (JOBQ_TESTING)\n");
        return -1;
    }
#else
    long torn_n = 0;
    unsigned long long torn_seed;
    char torn_end;
    if (*cfg->test_vfs && strcmp(cfg->test_vfs, "lazy") &&
        (sscanf(cfg->test_vfs, "torn:%ld:%llu%c", &torn_n, &torn_seed, &torn_end) != 2 ||
         torn_n < 1)) {
        fprintf(stderr, "jobqd: --test-vfs must be lazy, torn:N:SEED (N >= 1) or empty\n");
        return -1;
    }
#endif
    return 0;
}
