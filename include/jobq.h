/*
 * jobq.h - libjobq, the C client of the jobq job server (HTTP API v1, docs/API.md).
 *
 * The only public header of libjobq. Groups of calls:
 *   producer  create (single, batch, upsert, with dependencies), get, list (offset or
 *             cursor; JSON containment and log-text filters), cancel (one, by ids, by
 *             filter), retry, delete, logs, log search, stats
 *   flow      schedules (cron) and workflows (steps in dependency order)
 *   worker    claim, heartbeat, complete, fail, log, next (finish + claim in one call)
 *   runtime   jobq_worker_*: handlers per job type, threads per queue, automatic
 *             heartbeats, retry/discard rules, graceful drain (see "worker runtime")
 *   admin     token create / revoke
 * plus jobq_request() for any route not wrapped here.
 *
 * Errors: every call returns an int that is a jobq_err (JOBQ_E_OK == 0). The client keeps
 * the last error - HTTP status, the server's stable code ("lease_lost"), message and field -
 * readable with the jobq_last_*() accessors until the next call on the same client.
 *
 * Threads: a jobq_client owns one libcurl easy handle (the connection is kept alive and
 * reused between calls). A client is NOT thread-safe: use one client per thread. Different
 * clients may be used from different threads at the same time.
 *
 * Memory: strings in the returned structs are malloc'd and released by the matching
 * *_free(); JSON values (params, result, metadata) are carried as JSON text.
 */
#ifndef JOBQ_H
#define JOBQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- errors --- */

/* X(name, stable code, message). The code is what jobq_last_code() returns for errors that
 * happen on the client side; server errors carry the server's own code instead. */
#define JOBQ_ERRORS(X)                                                                  \
    X(OK,        "ok",               "success")                                        \
    X(SERVER,    "server_error",     "the server answered with an error status")       \
    X(CONNECT,   "connect_failed",   "cannot connect to the server")                   \
    X(TIMEOUT,   "timeout",          "the request timed out")                          \
    X(TRANSPORT, "transport_error",  "HTTP transport error")                           \
    X(PROTOCOL,  "bad_reply",        "the reply does not match the API")               \
    X(INVALID,   "invalid_argument", "invalid argument (rejected by the client)")      \
    X(NOMEM,     "out_of_memory",    "out of memory")

typedef enum {
#define JOBQ__X(n, code, msg) JOBQ_E_##n,
    JOBQ_ERRORS(JOBQ__X)
#undef JOBQ__X
} jobq_err;

/* Stable code string of a jobq_err ("connect_failed"); "unknown" for other values. */
const char *jobq_err_code(int err);
/* Human message of a jobq_err. */
const char *jobq_strerror(int err);

/* --- client handle --- */

typedef struct jobq_client jobq_client;

/* url: base URL ("http://host:port"); NULL reads $JOBQ_URL, default http://127.0.0.1:8080.
 * token: bearer token; NULL reads $JOBQ_TOKEN (no Authorization header when unset).
 * Both strings are copied. Returns NULL when out of memory or libcurl cannot start. */
jobq_client *jobq_client_new(const char *url, const char *token);
/* Closes the connection and frees everything. NULL is a no-op. */
void jobq_client_free(jobq_client *c);
/* connect_ms: TCP connect timeout (default 5000). request_ms: whole-request timeout
 * (default 30000); long-poll claims add their wait_ms to it. 0 keeps the current value. */
void jobq_client_set_timeouts(jobq_client *c, long connect_ms, long request_ms);
/* Base URL in use (no trailing '/'). Borrowed: valid until jobq_client_free(). */
const char *jobq_client_url(const jobq_client *c);

/* --- last error / last reply (valid until the next call on the same client) --- */

int         jobq_last_err(const jobq_client *c);     /* jobq_err of the last call */
int         jobq_last_status(const jobq_client *c);  /* HTTP status; 0 if no reply */
/* Server's stable error code ("lease_lost"), or the jobq_err code for client-side errors;
 * "" after a successful call. Never NULL. */
const char *jobq_last_code(const jobq_client *c);
const char *jobq_last_message(const jobq_client *c); /* never NULL; "" when none */
const char *jobq_last_field(const jobq_client *c);   /* NULL unless one field is to blame */
/* Raw body of the last reply (NUL-terminated JSON text, "" when the reply had no body). */
const char *jobq_last_body(const jobq_client *c);

/* --- jobs --- */

typedef enum {
    JOBQ_STATUS_UNKNOWN = 0,   /* the server sent a status this library does not know */
    JOBQ_STATUS_PENDING,
    JOBQ_STATUS_PROCESSING,
    JOBQ_STATUS_COMPLETED,
    JOBQ_STATUS_FAILED,
    JOBQ_STATUS_CANCELLED
} jobq_status;

/* "pending", ...; "unknown" for JOBQ_STATUS_UNKNOWN. */
const char *jobq_status_name(jobq_status s);

/* A job as the API returns it. Every char * is malloc'd or NULL (NULL = JSON null). */
typedef struct jobq_job {
    char *id;                /* 26-char time-ordered id */
    char *user_id;           /* owner */
    char *queue;
    char *type;
    char *params;            /* JSON text of the params object */
    jobq_status status;
    char *status_name;       /* status as the server spelled it */
    int priority;            /* -1000..1000, higher first */
    int attempts;            /* attempts started so far */
    int max_attempts;
    char *run_at;            /* RFC 3339 UTC with ms; the time fields below likewise */
    char *created_at;
    char *updated_at;
    char *started_at;
    char *completed_at;
    char *expires_at;
    char *lease_expires_at;
    char *worker_id;         /* worker holding or last holding the lease */
    int progress_percent;    /* 0..100, or -1 when null */
    char *progress_message;
    char *result;            /* JSON text of the result, NULL until completed with one */
    char *error_message;
    char *error_code;
    char *lease_token;       /* set only in jobs returned by jobq_claim() / jobq_next() */
    int deduplicated;        /* create replies: 1 when an existing job was returned */
    int cached;              /* create replies: 1 when a cached completed job was returned */
    int blocked_by;          /* parents (depends_on) not finished yet; 0 when none */
    char *workflow_id;       /* the workflow the job is a step of, or NULL */
    char *step_key;          /* its step key in that workflow, or NULL */
} jobq_job;

/* Frees the job and its strings. NULL is a no-op. */
void jobq_job_free(jobq_job *job);

/* A page of jobs (jobq_list) or a batch of claimed jobs (jobq_claim). */
typedef struct jobq_job_list {
    jobq_job **jobs;         /* count entries, each owned by the list */
    size_t count;
    int64_t total_count;     /* jobq_list: matches over all pages; jobq_claim: count */
    int limit;               /* jobq_list: page size the server used */
    int offset;
    char *next_cursor;       /* jobq_list: pass as opts.cursor for the next page; NULL at the end */
} jobq_job_list;

/* Frees the list and every job in it. NULL is a no-op. */
void jobq_job_list_free(jobq_job_list *list);

/* Input of jobq_create. Zero-initialise and set what you need: 0 / NULL means the server's
 * default for every member except type. */
typedef struct jobq_new_job {
    const char *type;        /* required; 1-128 chars of [A-Za-z0-9_.:-] */
    const char *queue;       /* NULL: "default" */
    const char *params;      /* JSON text of an object; NULL: {} */
    int priority;            /* -1000..1000 */
    int64_t delay_ms;        /* run after this delay; ignored when run_at is set */
    const char *run_at;      /* RFC 3339 time to run at, or NULL */
    int max_attempts;        /* 1..100; 0: server default (3) */
    int64_t ttl_ms;          /* 0: server default (24 h) */
    const char *unique_key;  /* NULL, or 1-128 chars: at most one active job per user and key */
    int no_dedup;            /* 1: send "dedup": false (always create a new job) */
    int no_cache;            /* 1: send "cache": false (do not answer from the result cache) */
    const char *idempotency_key; /* NULL, or the Idempotency-Key header (1-255 printable) */
    const char *const *depends_on; /* ndepends_on ids of the caller's jobs (<= 100): the job
                              * is not claimable until they finish (blocked_by) */
    size_t ndepends_on;
    const char *on_parent_failure; /* NULL (server default "cancel"), "cancel" or "run":
                              * what a failed or cancelled parent does to this job */
    int replace;             /* 1: on_conflict "replace" (debounce; needs unique_key): a pending
                              * job with the key takes the new params, priority and run_at */
} jobq_new_job;

/* POST /v1/jobs. *out (may be NULL) receives the job: the new one, or with deduplicated /
 * cached set, the existing one the server answered with (also after a replace); free with
 * jobq_job_free. A job with depends_on is never deduplicated or answered from the cache. */
int jobq_create(jobq_client *c, const jobq_new_job *in, jobq_job **out);

/* Options of a batch create. Zero-initialised: on_conflict "return", no Idempotency-Key. */
typedef struct jobq_batch_opts {
    int replace;             /* 1: on_conflict "replace" (upsert pending jobs by unique_key) */
    const char *idempotency_key;
} jobq_batch_opts;

/* Reply of a batch create. */
typedef struct jobq_batch_result {
    jobq_job_list *jobs;     /* in item order: new jobs and the existing ones (unique_key) */
    int created;             /* jobs inserted */
    int existing;            /* items answered by an existing job */
} jobq_batch_result;

void jobq_batch_result_free(jobq_batch_result *r);

enum { JOBQ_BATCH_MAX = 1000 };  /* the API's cap on items per batch and ids per bulk cancel */

/* POST /v1/jobs/batch: 1..JOBQ_BATCH_MAX jobs, all or nothing. no_dedup, no_cache,
 * idempotency_key, depends_on, on_parent_failure and replace of the items are ignored (the
 * batch path does not dedup; use unique_key, and opts->replace for the whole batch).
 * On a 400 the server names the first bad item in jobq_last_field() ("jobs[3].priority").
 * opts and out may be NULL. */
int jobq_create_batch(jobq_client *c, const jobq_new_job *items, size_t n,
                      const jobq_batch_opts *opts, jobq_batch_result **out);
/* The same with items given as JSON text of create objects (as in a JSONL file), sent as
 * they are. A text that is not JSON answers JOBQ_E_INVALID naming "jobs[i]". */
int jobq_create_batch_json(jobq_client *c, const char *const *items, size_t n,
                           const jobq_batch_opts *opts, jobq_batch_result **out);
/* GET /v1/jobs/{id}. */
int jobq_get(jobq_client *c, const char *id, jobq_job **out);

/* Filters of jobq_list; NULL / 0 members are left out of the query. */
typedef struct jobq_list_opts {
    const char *status;      /* "pending", ... */
    const char *type;
    const char *queue;
    const char *order;       /* "desc" (default, newest first) or "asc" */
    int limit;               /* 1..1000; 0: server default (50) */
    int offset;              /* not together with cursor */
    const char *cursor;      /* next_cursor of the previous page, or NULL for the first */
    const char *params;      /* JSON text of an object: only jobs whose params contain it
                              * (like PostgreSQL @>: {"customer":"acme"}) */
    const char *result;      /* the same on the result */
    const char *log_q;       /* only jobs with a log line matching this full-text query */
} jobq_list_opts;

/* GET /v1/jobs. opts may be NULL. Free *out with jobq_job_list_free. params / result that
 * are not JSON answer JOBQ_E_INVALID naming the field, before any request. */
int jobq_list(jobq_client *c, const jobq_list_opts *opts, jobq_job_list **out);
/* POST /v1/jobs/{id}/cancel. out may be NULL. */
int jobq_cancel(jobq_client *c, const char *id, jobq_job **out);

/* Filter of a bulk cancel; NULL members are left out (no status: pending and processing). */
typedef struct jobq_cancel_filter {
    const char *status;      /* "pending" or "processing" */
    const char *type;
    const char *queue;
} jobq_cancel_filter;

/* POST /v1/jobs/cancel {"ids": [...]} (1..JOBQ_BATCH_MAX ids). Ids that are not the
 * caller's or not cancellable are not counted. *cancelled (may be NULL) gets the count. */
int jobq_cancel_ids(jobq_client *c, const char *const *ids, size_t n, int64_t *cancelled);
/* POST /v1/jobs/cancel {"filter": {...}}. *more (may be NULL) is set to 1 when the server
 * stopped at its per-call cap and more jobs match: call again. */
int jobq_cancel_where(jobq_client *c, const jobq_cancel_filter *f, int64_t *cancelled,
                      int *more);
/* POST /v1/jobs/{id}/retry. out may be NULL. */
int jobq_retry(jobq_client *c, const char *id, jobq_job **out);
/* DELETE /v1/jobs/{id}. */
int jobq_delete(jobq_client *c, const char *id);

/* --- logs --- */

typedef struct jobq_log_entry {
    char *id;                /* log id as text (the API's `after` cursor) */
    char *job_id;
    char *created_at;
    char *level;             /* debug | info | warning | error */
    char *message;
    char *metadata;          /* JSON text or NULL */
} jobq_log_entry;

typedef struct jobq_log_list {
    jobq_log_entry *logs;    /* count entries, oldest first */
    size_t count;
    char *next_after;        /* pass as `after` for the next page; NULL at the end */
} jobq_log_list;

void jobq_log_list_free(jobq_log_list *list);

/* GET /v1/jobs/{id}/logs. level and after may be NULL; limit 0 = server default (100). */
int jobq_logs(jobq_client *c, const char *id, const char *level, int limit, const char *after,
              jobq_log_list **out);

/* --- log search (GET /v1/logs/search) --- */

/* Query of jobq_logs_search; NULL / 0 members are left out. */
typedef struct jobq_log_search_opts {
    const char *q;           /* required: full-text query (words, "phrases", AND/OR/NOT,
                              * prefix*; <= 512 chars) */
    const char *level;       /* at least this level: debug|info|warning|error */
    const char *job_id;      /* only this job's lines */
    const char *type;        /* only lines of jobs of this type */
    const char *since;       /* RFC 3339: only lines written at or after it */
    const char *metadata;    /* JSON text of an object: containment on the line's metadata */
    int limit;               /* 1..1000; 0: server default (50) */
    const char *cursor;      /* next_cursor of the previous page, or NULL */
} jobq_log_search_opts;

/* In a snippet each match sits between these two control characters; escape the rest of
 * the text for your output, then turn them into highlights. */
#define JOBQ_MATCH_BEGIN '\002'
#define JOBQ_MATCH_END   '\003'

typedef struct jobq_log_hit {
    jobq_log_entry log;      /* the matching line */
    char *type;              /* its job's type */
    char *snippet;           /* excerpt of the message with the matches marked */
} jobq_log_hit;

typedef struct jobq_log_hits {
    jobq_log_hit *hits;      /* count entries, best match first */
    size_t count;
    char *next_cursor;       /* pass as opts.cursor for the next page; NULL at the end */
} jobq_log_hits;

void jobq_log_hits_free(jobq_log_hits *h);

/* GET /v1/logs/search. A user finds only their own lines. A malformed query is a server
 * error with code "invalid_argument" and field "q"; metadata that is not JSON answers
 * JOBQ_E_INVALID before any request. Free *out with jobq_log_hits_free. */
int jobq_logs_search(jobq_client *c, const jobq_log_search_opts *opts, jobq_log_hits **out);

/* --- stats --- */

typedef struct jobq_counts {
    int64_t pending, processing, completed, failed, cancelled, total;
} jobq_counts;

typedef struct jobq_queue_stats {
    char *queue;
    int64_t pending;
    int64_t processing;
    int64_t oldest_pending_age_ms;   /* -1 when none is pending */
} jobq_queue_stats;

typedef struct jobq_type_counts {
    char *type;
    jobq_counts counts;              /* total is 0 (not sent per type) */
    double avg_duration_ms;          /* -1 when unknown */
    double p95_duration_ms;          /* -1 when unknown */
    int64_t completed_last_hour;
    int64_t failed_last_hour;
} jobq_type_counts;

/* GET /v1/stats. A user sees their own counts only (queues and types empty); worker and
 * admin tokens see the global view. */
typedef struct jobq_stats {
    int global;                      /* 1: scope "global", 0: "user" */
    jobq_counts counts;
    int64_t oldest_pending_age_ms;   /* -1 when none is pending */
    jobq_queue_stats *queues;        /* nqueues entries */
    size_t nqueues;
    jobq_type_counts *types;         /* ntypes entries */
    size_t ntypes;
} jobq_stats;

void jobq_stats_free(jobq_stats *s);
int jobq_stats_get(jobq_client *c, jobq_stats **out);
/* Depth of one queue from GET /v1/stats (worker or admin token): pending and processing
 * jobs (either pointer may be NULL). A queue the server has no row for has depth 0. */
int jobq_queue_depth(jobq_client *c, const char *queue, int64_t *pending, int64_t *processing);

/* --- worker calls --- */

/* POST /v1/queues/{queue}/claim. worker_id is required; lease_ms, max, wait_ms of 0 mean
 * the server default (30000, 1, 0). wait_ms > 0 long-polls; the request timeout is
 * stretched by wait_ms. *out gets the claimed jobs, each with lease_token set; an empty
 * list (count 0) means nothing was due. */
int jobq_claim(jobq_client *c, const char *queue, const char *worker_id, int lease_ms, int max,
               int wait_ms, jobq_job_list **out);
/* POST /v1/jobs/{id}/heartbeat: extends the lease (lease_ms 0 = server default) and
 * reports progress (progress_percent -1 and progress_message NULL leave them out).
 * A stale lease answers JOBQ_E_SERVER with code "lease_lost". out may be NULL. */
int jobq_heartbeat(jobq_client *c, const char *id, const char *lease_token, int lease_ms,
                   int progress_percent, const char *progress_message, jobq_job **out);
/* POST /v1/jobs/{id}/complete. result_json: JSON text or NULL. out may be NULL. */
int jobq_complete(jobq_client *c, const char *id, const char *lease_token,
                  const char *result_json, jobq_job **out);
/* POST /v1/jobs/{id}/fail. error_code may be NULL; retryable 0 makes the failure final.
 * out may be NULL (the job is pending again if it will be retried, else failed). */
int jobq_fail(jobq_client *c, const char *id, const char *lease_token,
              const char *error_message, const char *error_code, int retryable, jobq_job **out);
/* POST /v1/jobs/{id}/logs. level: debug|info|warning|error; metadata_json may be NULL. */
int jobq_log(jobq_client *c, const char *id, const char *lease_token, const char *level,
             const char *message, const char *metadata_json);

/* One finished job reported by jobq_next(). */
typedef struct jobq_finish {
    const char *id;
    const char *lease_token;
    int failed;              /* 0: complete with result; 1: fail with the error members */
    const char *result;      /* JSON text or NULL (complete) */
    const char *error_message;   /* required when failed */
    const char *error_code;      /* may be NULL */
    int retryable;           /* failed: 1 retry with backoff if attempts remain, 0 final */
} jobq_finish;

/* An item of jobq_next() the server could not finish (stale lease, missing job). */
typedef struct jobq_next_error {
    size_t index;            /* index into the items passed to jobq_next() */
    char *code;              /* "lease_lost", ... */
} jobq_next_error;

typedef struct jobq_next_result {
    int completed;           /* items completed */
    int failed;              /* items failed */
    jobq_next_error *errors; /* nerrors entries */
    size_t nerrors;
    jobq_job_list *jobs;     /* newly claimed jobs, with lease_token */
} jobq_next_result;

void jobq_next_result_free(jobq_next_result *r);

/* POST /v1/queues/{queue}/next: finishes items (0..100, any queue) and claims up to max
 * (0..100) jobs of queue in one round trip and one commit. lease_ms / wait_ms 0: server
 * defaults. A server without the route answers JOBQ_E_SERVER with status 404 and code
 * "not_found": use jobq_complete / jobq_fail + jobq_claim then (the runtime does). */
int jobq_next(jobq_client *c, const char *queue, const char *worker_id,
              const jobq_finish *items, size_t n, int max, int lease_ms, int wait_ms,
              jobq_next_result **out);

/* --- worker runtime --- */

/*
 * A jobq_worker runs handlers for claimed jobs:
 *
 *   jobq_worker *w = jobq_worker_new(NULL);                 // JOBQ_URL / JOBQ_TOKEN
 *   jobq_worker_handle(w, "email.send", send_email, NULL);  // one handler per job type
 *   jobq_worker_retry_on(w, "net.*", 5);                     // error classes -> retry ...
 *   jobq_worker_discard_on(w, "invalid.*");                  // ... or discard at once
 *   jobq_worker_queue(w, "mail", 4);                        // 4 threads (JOBQ_THREADS_MAIL wins)
 *   return jobq_worker_run(w) ? 1 : 0;                       // until SIGTERM / SIGINT, then drain
 *
 * Threads: each queue gets its own claim threads; each thread owns a client, claims up to
 * `batch` jobs per round trip and runs their handlers one after another. The thread count of
 * a queue is, first found: env JOBQ_THREADS_<QUEUE> (queue upper-cased, every character
 * outside [A-Z0-9] as '_': "pvp.sync" -> JOBQ_THREADS_PVP_SYNC), the count given to
 * jobq_worker_queue(), env JOBQ_THREADS, jobq_worker_opts.threads, 1.
 *
 * Leases: a heartbeat thread (own client) extends the lease of every job the worker holds
 * every lease_ms / 3, and sends the progress handlers report. A handler may run far longer
 * than one lease. When a heartbeat answers lease_lost the job is marked lost
 * (jobq_ctx_lost()) and its outcome is dropped.
 *
 * Round trips: finished jobs are reported together with the next claim through
 * POST /v1/queues/{queue}/next (one commit for both). A server without that route (404) is
 * detected once and the worker falls back to complete / fail per job + claim.
 *
 * Drain (jobq_worker_stop, SIGTERM under jobq_worker_run): no new claims; the jobs already
 * held - the running handlers and the rest of a claimed batch - still run while the grace
 * period lasts. When it runs out, every job still held is released: failed with
 * retryable=true and error_code "worker_shutdown", so it is pending again after the backoff
 * instead of waiting out its lease. (The API has no un-claim: a release counts as an
 * attempt, exactly as a lapsed lease would.) Outcomes of handlers that return after their
 * job was released are dropped.
 */

typedef struct jobq_worker jobq_worker;
/* The running job as seen by its handler; valid during the handler call only. */
typedef struct jobq_ctx jobq_ctx;

/* What a handler returns. */
typedef enum {
    JOBQ_DONE = 0,      /* success: complete the job (result from jobq_ctx_set_result) */
    JOBQ_RETRY,         /* retryable failure: the server retries with backoff while attempts remain */
    JOBQ_DISCARD,       /* unrecoverable: fail for good at once (retryable=false) */
    JOBQ_ERROR          /* failure classified by the error class set with jobq_ctx_error():
                         * the first matching rule decides; no rule matches -> JOBQ_RETRY */
} jobq_outcome;

/* A handler. job is borrowed (valid during the call); arg is what was registered. Runs on
 * a claim thread: handlers of one worker run concurrently and must be thread-safe. */
typedef jobq_outcome (*jobq_handler)(jobq_ctx *ctx, const jobq_job *job, void *arg);

typedef struct jobq_worker_opts {
    const char *url;         /* NULL: $JOBQ_URL, default http://127.0.0.1:8080 */
    const char *token;       /* NULL: $JOBQ_TOKEN (a worker or admin token) */
    const char *worker_id;   /* NULL: "jobq-HOST-PID" */
    int lease_ms;            /* lease per claim and heartbeat; 0: 30000 */
    int batch;               /* jobs per claim round trip, 1..100; 0: 1 */
    int wait_ms;             /* long-poll per claim, 0..30000; 0: 2000 (also the stop delay) */
    int threads;             /* default threads per queue; 0: $JOBQ_THREADS, else 1 */
    int grace_ms;            /* drain grace period; 0: 30000 */
    int no_next;             /* 1: never try POST /v1/queues/{queue}/next */
} jobq_worker_opts;

/* opts may be NULL (all defaults). Strings are copied. NULL when out of memory. */
jobq_worker *jobq_worker_new(const jobq_worker_opts *opts);
/* Frees the worker. Call after jobq_worker_wait() (or before start). NULL is a no-op. */
void jobq_worker_free(jobq_worker *w);

/* Registers fn for jobs of type ("*": any type without its own handler). Before start. A job
 * whose type has no handler fails with error_code "no_handler", retryable (another worker
 * may know the type). Returns JOBQ_E_OK or JOBQ_E_INVALID / JOBQ_E_NOMEM. */
int jobq_worker_handle(jobq_worker *w, const char *type, jobq_handler fn, void *arg);
/* Adds a queue to claim from with threads claim threads (0: the defaults above; the env
 * JOBQ_THREADS_<QUEUE> overrides it either way). Before start. */
int jobq_worker_queue(jobq_worker *w, const char *queue, int threads);

/* What a rule does with a failure of its error class. */
typedef enum { JOBQ_RULE_RETRY = 1, JOBQ_RULE_DISCARD } jobq_rule_action;

/* Error-class rule, like retry_on / discard_on. type NULL: any job type. error_class is an
 * exact class, or a prefix ending in '*' ("db.*"), or "*" for every class. attempts (RETRY
 * only): give up (discard) once the job has run this many attempts; 0: the job's own
 * max_attempts decides. Rules are tried in the order added; the first match wins. */
int jobq_worker_rule(jobq_worker *w, const char *type, const char *error_class,
                     jobq_rule_action action, int attempts);
int jobq_worker_retry_on(jobq_worker *w, const char *error_class, int attempts);
int jobq_worker_discard_on(jobq_worker *w, const char *error_class);

/* Starts the heartbeat thread and the claim threads. Needs at least one queue and one
 * handler. Returns JOBQ_E_INVALID / JOBQ_E_NOMEM, or JOBQ_E_OK. */
int jobq_worker_start(jobq_worker *w);
/* Asks the worker to drain (see above) and returns at once. Thread-safe; not
 * async-signal-safe (jobq_worker_run handles signals). */
void jobq_worker_stop(jobq_worker *w);
/* Waits until every claim thread has ended: after jobq_worker_stop() that is at most the
 * grace period plus one long-poll, plus the release calls. Returns JOBQ_E_OK; JOBQ_E_SERVER
 * when the server refused the worker for good (401/403: see jobq_worker_error()),
 * JOBQ_E_TIMEOUT when a handler was still running after its job was released (its thread
 * is left behind: exit the process rather than free the worker). */
int jobq_worker_wait(jobq_worker *w);
/* Start, then wait for SIGTERM or SIGINT (blocked in every thread of the worker), then stop
 * and wait. Returns what jobq_worker_wait returns. */
int jobq_worker_run(jobq_worker *w);
/* Why the worker ended on its own: "" when it did not, else "code: message". Borrowed. */
const char *jobq_worker_error(const jobq_worker *w);

/* Per-type statistics of this worker since start. */
typedef struct jobq_worker_type_stats {
    const char *type;        /* borrowed: valid until jobq_worker_free */
    int64_t runs;            /* handler calls */
    int64_t done;            /* JOBQ_DONE */
    int64_t retried;         /* failed, retryable */
    int64_t discarded;       /* failed for good */
    int64_t lost;            /* lease lost or released: outcome dropped */
    double avg_ms;           /* mean handler duration */
    double p95_ms;           /* 95th percentile over the last 1024 runs */
} jobq_worker_type_stats;

/* Worker-wide counters. */
typedef struct jobq_worker_counters {
    int64_t round_trips;     /* claim or next calls */
    int64_t batches;         /* round trips that brought at least one job */
    int64_t claimed;         /* jobs claimed */
    int64_t heartbeats;      /* heartbeat calls */
    int64_t released;        /* jobs released at the end of the grace period */
    int next_supported;      /* 1: /next in use, 0: fallback, -1: not known yet */
} jobq_worker_counters;

/* Copies up to cap type entries into out (may be NULL with cap 0); returns how many types
 * there are. Thread-safe while the worker runs. */
size_t jobq_worker_stats(jobq_worker *w, jobq_worker_type_stats *out, size_t cap);
void jobq_worker_get_counters(jobq_worker *w, jobq_worker_counters *out);

/* --- inside a handler --- */

/* Reports progress (percent 0..100, -1 to leave it; msg may be NULL). Sent with the next
 * heartbeat, at most about once a second: cheap to call often. */
void jobq_ctx_progress(jobq_ctx *ctx, int percent, const char *msg);
/* Adds a log line to the job now (level debug|info|warning|error). Returns the jobq_err. */
int jobq_ctx_log(jobq_ctx *ctx, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets the result sent on JOBQ_DONE (JSON text, copied). Returns JOBQ_E_INVALID when the
 * text is not JSON. */
int jobq_ctx_set_result(jobq_ctx *ctx, const char *result_json);
/* Sets the error class (sent as error_code; NULL: "error") and message of a failure, and
 * returns JOBQ_ERROR, so a handler can `return jobq_ctx_error(ctx, "net.timeout", "...")`. */
jobq_outcome jobq_ctx_error(jobq_ctx *ctx, const char *error_class, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 1 once the job is no longer ours (lease lost, or released at the end of the grace):
 * the handler should give up, its outcome is dropped. */
int jobq_ctx_lost(const jobq_ctx *ctx);
/* 1 once the worker is draining: a long handler may stop early (return JOBQ_RETRY). */
int jobq_ctx_stopping(const jobq_ctx *ctx);
/* The claim thread's client (for jobq_request etc.; do not free). */
jobq_client *jobq_ctx_client(jobq_ctx *ctx);

/* Params helpers for handlers (parse job->params on each call; no other JSON API needed).
 * Top-level integer member key, or dflt when absent or not a number. */
int64_t jobq_param_int(const jobq_job *job, const char *key, int64_t dflt);
/* Top-level string member key copied into buf (cap bytes, truncated); NULL when absent
 * or not a string. */
const char *jobq_param_str(const jobq_job *job, const char *key, char *buf, size_t cap);

/* --- schedules (/v1/schedules) --- */

/* A cron schedule. Every char * is malloc'd or NULL. */
typedef struct jobq_schedule {
    char *id;
    char *user_id;
    char *name;              /* unique per user */
    char *cron;              /* 5 fields or @daily, ... */
    char *timezone;          /* IANA name the cron is read in */
    char *type;              /* of the jobs it enqueues; queue, params likewise */
    char *queue;
    char *params;            /* JSON text */
    int priority;
    int max_attempts;
    char *misfire;           /* "catch_up" | "skip" */
    int catch_up_max;
    int paused;              /* 1 while paused */
    char *next_run_at;       /* NULL while paused */
    char *last_run_at;       /* NULL before the first fire */
    char *created_at;
    char *updated_at;
} jobq_schedule;

void jobq_schedule_free(jobq_schedule *s);

typedef struct jobq_schedules {
    jobq_schedule *schedules;    /* count entries, owned by the list */
    size_t count;
} jobq_schedules;

void jobq_schedules_free(jobq_schedules *l);

/* Input of jobq_schedule_create. Zero-initialise; NULL / 0 means the server's default. */
typedef struct jobq_new_schedule {
    const char *name;        /* required; 1-128 chars of [A-Za-z0-9_.:-] */
    const char *cron;        /* required */
    const char *type;        /* required */
    const char *timezone;    /* NULL: "UTC" */
    const char *queue;       /* NULL: "default" */
    const char *params;      /* JSON text of an object; NULL: {} */
    int priority;            /* -1000..1000 */
    int max_attempts;        /* 1..100; 0: server default */
    const char *misfire;     /* NULL: "catch_up"; or "skip" */
    int catch_up_max;        /* 1..100; 0: server default (1) */
} jobq_new_schedule;

/* POST /v1/schedules. A name already used answers code "conflict". out may be NULL. */
int jobq_schedule_create(jobq_client *c, const jobq_new_schedule *in, jobq_schedule **out);
/* GET /v1/schedules: the caller's schedules (an admin's: everyone's). */
int jobq_schedule_list(jobq_client *c, jobq_schedules **out);
/* GET /v1/schedules/{id}. */
int jobq_schedule_get(jobq_client *c, const char *id, jobq_schedule **out);
/* POST /v1/schedules/{id}/pause and /resume (next fire time counted from now, missed ones
 * are not caught up). out may be NULL. */
int jobq_schedule_pause(jobq_client *c, const char *id, jobq_schedule **out);
int jobq_schedule_resume(jobq_client *c, const char *id, jobq_schedule **out);
/* DELETE /v1/schedules/{id}. Jobs it already enqueued stay. */
int jobq_schedule_delete(jobq_client *c, const char *id);

/* --- workflows (/v1/workflows) --- */

typedef struct jobq_workflow_step {
    char *key;               /* the step's key */
    jobq_job *job;           /* the step's job (blocked_by > 0 while parents run) */
    char **depends_on;       /* ndepends_on keys of the steps it waits for */
    size_t ndepends_on;
} jobq_workflow_step;

typedef struct jobq_workflow {
    char *id;
    char *user_id;
    char *name;              /* NULL when none was given */
    char *status;            /* pending | running | completed | failed */
    char *created_at;
    jobq_workflow_step *steps;   /* nsteps entries, in the order they were given */
    size_t nsteps;
} jobq_workflow;

void jobq_workflow_free(jobq_workflow *w);

/* POST /v1/workflows. steps_json: JSON text of the steps array, 1..100 objects of
 * {key, type, queue?, params?, priority?, max_attempts?, depends_on?: [keys],
 * on_parent_failure?}; name may be NULL. Text that is not a JSON array answers
 * JOBQ_E_INVALID before any request; unknown keys and cycles are server errors naming the
 * step ("steps[2].depends_on"). out may be NULL. */
int jobq_workflow_create(jobq_client *c, const char *name, const char *steps_json,
                         jobq_workflow **out);
/* GET /v1/workflows/{id}. */
int jobq_workflow_get(jobq_client *c, const char *id, jobq_workflow **out);

/* --- admin --- */

typedef struct jobq_token {
    char *id;                /* token id (for revoke), as text */
    char *token;             /* the secret; shown only once, by jobq_token_create */
    char *user_id;
    char *role;              /* user | worker | admin */
    char *name;              /* NULL when none */
    char *created_at;
} jobq_token;

void jobq_token_free(jobq_token *t);

/* POST /v1/tokens. name may be NULL. */
int jobq_token_create(jobq_client *c, const char *user_id, const char *role, const char *name,
                      jobq_token **out);
/* The same with the token's own active_limit (max pending + processing jobs of the user
 * while using this token; 0 = unlimited; < 0 = server default). */
int jobq_token_create_limit(jobq_client *c, const char *user_id, const char *role,
                            const char *name, long active_limit, jobq_token **out);
/* DELETE /v1/tokens/{id}. */
int jobq_token_revoke(jobq_client *c, const char *id);

/* --- misc --- */

/* GET /healthz. */
int jobq_health(jobq_client *c);

/* --- events (GET /v1/events, Server-Sent Events) --- */

/* Called for each event: its id, kind ("created", "claimed", "progress", "log",
 * "completed", "failed", "cancelled", "retried", "reset") and JSON data. Return
 * non-zero to stop listening. */
typedef int (*jobq_event_fn)(void *arg, long long id, const char *kind, const char *data);

/* Streams events on a connection of its own (the client's keep-alive connection is not
 * used, so other calls may run meanwhile from the same thread only after it returns).
 * query: e.g. "job_id=ID" or NULL; last_event_id: resume after it (0: from now);
 * timeout_ms: give up after it (0: no limit). Returns JOBQ_E_OK when fn stopped it or
 * the server ended the stream, JOBQ_E_TIMEOUT at the timeout, else an error. */
int jobq_events(jobq_client *c, const char *query, long long last_event_id, long timeout_ms,
                jobq_event_fn fn, void *arg);

/* Raw call: method ("GET", "POST", "DELETE", ...), path (may carry a query string, e.g.
 * "/v1/admin/store"), body_json sent as is (NULL: no body). *status (may be NULL) gets the
 * HTTP status and *reply_json (may be NULL) a malloc'd copy of the reply body, or NULL when
 * the body is empty. Returns JOBQ_E_OK for 1xx-3xx, JOBQ_E_SERVER for >= 400 (with the
 * last error filled in, and *status / *reply_json still set), or a transport error. */
int jobq_request(jobq_client *c, const char *method, const char *path, const char *body_json,
                 int *status, char **reply_json);

#ifdef __cplusplus
}
#endif
#endif /* JOBQ_H */
