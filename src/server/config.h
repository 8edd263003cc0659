/*
 * config.h - jobqd's settings: one table of options, each settable by a
 * command-line flag or a JOBQ_* environment variable (flags win), each with
 * bounds checked at start.
 */
#ifndef JQ_CONFIG_H
#define JQ_CONFIG_H
#include <stdbool.h>
#include <stdint.h>

struct jobqd_config {
    const char *db;              /* SQLite file path */
    const char *host;            /* listen address */
    int64_t port;                /* 0 = ephemeral */
    const char *port_file;       /* where the bound port is written, or NULL */
    int64_t readers;             /* read-only SQLite connections */
    int64_t pg_pool;             /* PostgreSQL connections in the pool */
    const char *sync;            /* full | normal | off */
    int64_t body_max;            /* request body cap, bytes */
    int64_t max_connections;     /* concurrent HTTP connections (one thread each) */
    int64_t header_timeout_ms;   /* slowloris guard: deadline for a request's headers */
    int64_t lease_ms;            /* default lease of a claim */
    int64_t backoff_base_ms, backoff_max_ms;
    int64_t ttl_ms;              /* default time a pending job may wait before it expires */
    int64_t max_attempts;        /* default attempts of a job */
    int64_t dedup_window_ms;     /* find-or-create window; 0 disables dedup */
    const char *cache;           /* shared cache redis://host:port, "" = none */
    int64_t cache_ttl_ms;        /* result cache TTL; 0 disables */
    const char *cache_ttl_type;  /* per-type TTLs: "type=ms,type=ms" */
    int64_t active_limit;        /* pending + processing per user token; 0 = none */
    int64_t retention_ms;        /* finished jobs are deleted after this */
    int64_t cleanup_interval_ms;
    int64_t cleanup_batch;       /* rows per cleanup transaction */
    int64_t events_retention_ms; /* the SSE resume window */
    int64_t sse_heartbeat_ms;    /* comment line on idle streams */
    int64_t sse_streams_max;     /* open event streams per user */
    int64_t sse_stall_s;         /* a stream that accepts nothing this long is closed */
    int64_t sse_backlog_kb;      /* a stream whose client leaves more unread is closed */
    const char *fair_queues;     /* queues with fair (round-robin by user) claims: a,b or * */
    int64_t user_processing_max; /* processing jobs per user; 0 = no cap */
    const char *metrics_token;   /* a bearer token that may read /metrics (besides admins) */
    int64_t slow_ms;             /* statements slower than this are logged with their plan */
    int64_t statement_budget;    /* test builds: -1 = each route's own; N = every route's */
    bool fake_clock;             /* test builds: frozen clock moved by /v1/admin/clock */
    const char *test_vfs;        /* test builds: "lazy" = SQLite VFS losing unsynced writes;
                                  * "torn:N:SEED" = the same, its Nth sync torn (T2) */
    int64_t test_fail_alloc;     /* test builds: SIGUSR1 makes the Nth allocation fail; 0 off */
    const char *log_level;       /* debug | info | warn | error */
};

/* True if claims on queue are fair between users. */
bool config_fair_queue(const struct jobqd_config *cfg, const char *queue);
/* The result-cache TTL of a job type (per-type override or the default). */
int64_t config_cache_ttl(const struct jobqd_config *cfg, const char *type);

/* Fills cfg from defaults, env, then argv. Returns 0 to run, 1 if --help was
 * printed, -1 on a bad option (message already printed). */
int config_load(struct jobqd_config *cfg, int argc, char **argv);

#endif
