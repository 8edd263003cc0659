/*
 * jobq.h - libjobq, the C client of the jobq job server (HTTP API v1, docs/API.md).
 *
 * The only public header of libjobq. Three groups of calls:
 *   producer  create, get, list, cancel, retry, delete, logs
 *   worker    claim, heartbeat, complete, fail, log
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
    char *lease_token;       /* set only in jobs returned by jobq_claim() */
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
} jobq_new_job;

/* POST /v1/jobs. *out (may be NULL) receives the new job; free with jobq_job_free. */
int jobq_create(jobq_client *c, const jobq_new_job *in, jobq_job **out);
/* GET /v1/jobs/{id}. */
int jobq_get(jobq_client *c, const char *id, jobq_job **out);

/* Filters of jobq_list; NULL / 0 members are left out of the query. */
typedef struct jobq_list_opts {
    const char *status;      /* "pending", ... */
    const char *type;
    const char *queue;
    const char *order;       /* "desc" (default, newest first) or "asc" */
    int limit;               /* 1..1000; 0: server default (50) */
    int offset;
} jobq_list_opts;

/* GET /v1/jobs. opts may be NULL. Free *out with jobq_job_list_free. */
int jobq_list(jobq_client *c, const jobq_list_opts *opts, jobq_job_list **out);
/* POST /v1/jobs/{id}/cancel. out may be NULL. */
int jobq_cancel(jobq_client *c, const char *id, jobq_job **out);
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

/* --- worker --- */

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
/* DELETE /v1/tokens/{id}. */
int jobq_token_revoke(jobq_client *c, const char *id);

/* --- misc --- */

/* GET /healthz. */
int jobq_health(jobq_client *c);

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
