/*
 * store.h - the one storage interface of jobq. Each operation is one atomic
 * unit: every rule that needs atomicity (lease checks, state transitions,
 * counters) runs inside it, in one transaction. Backends implement the ops
 * table; store.c wraps it with argument checks and counters.
 *
 * Time comes in through struct sctx (the caller's clock), so backends never
 * read the clock and tests can fake it. sctx also counts the SQL statements
 * a request ran (the N+1 guard).
 */
#ifndef JQ_STORE_H
#define JQ_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "core/id.h"
#include "core/job.h"
#include "core/retry.h"

typedef struct store store;

enum { NAME_MAX_LEN = 128, TOKEN_ID_LEN = 26, LEASE_TOKEN_LEN = 32 };

/* An Idempotency-Key for a write. The backend checks it right before the
 * operation, inside the operation's transaction: a stored reply for the same
 * request is replayed (the op does not run); a stored reply for another
 * request is a conflict. After a successful op, render() makes the reply,
 * which is stored in the same transaction. */
struct idem {
    const char *user_id, *key;
    const char *req_hash;              /* hash of method, path and body */
    /* malloc'd reply body; render itself NULL: do not store. A NULL body is out of memory:
     * the write fails (SQLite; a write without its record would run twice on a retry) */
    char *(*render)(void *arg, int *status);
    void *arg;
    int64_t max_age_ms;                /* records older than this are ignored */
    /* out */
    bool replayed;                     /* body/status hold the stored reply */
    int status;
    char *body;                        /* malloc'd; the stored or the rendered reply */
};

/* Per-request context: the time the request runs at and its statement count. */
struct sctx {
    int64_t now_ms;    /* wall time of the request (from the server's clock) */
    int stmts;         /* SQL statements run on behalf of this request */
    struct idem *idem; /* NULL unless the request carries an Idempotency-Key */
};

/* A job row as the API shows it. Small strings inline; JSON and long text
 * malloc'd (NULL when SQL NULL). Release with job_fini. */
struct job {
    char id[ID_LEN + 1];
    char user_id[NAME_MAX_LEN + 1];
    char queue[NAME_MAX_LEN + 1];
    char type[NAME_MAX_LEN + 1];
    char worker_id[NAME_MAX_LEN + 1];     /* "" when none */
    char error_code[NAME_MAX_LEN + 1];    /* "" when none */
    char lease_token[LEASE_TOKEN_LEN + 1];/* "" when none; shown only to claimers */
    enum job_status status;
    int priority, attempts, max_attempts;
    int progress_percent;                 /* -1 when never reported */
    int64_t run_at, created_at, updated_at;
    int64_t started_at, completed_at, expires_at, lease_expires_at; /* 0 = null */
    int blocked;                          /* parents not finished yet (not claimable) */
    char workflow_id[ID_LEN + 1];         /* "" when not a workflow step */
    char step_key[NAME_MAX_LEN + 1];      /* "" when not a workflow step */
    char *parents;                        /* claims: JSON [{id, key, result}] or NULL */
    char *params;                         /* JSON text, never NULL for a loaded job */
    char *result;                         /* JSON text or NULL */
    char *error_message, *progress_message;
};
void job_fini(struct job *j);

struct job_list {
    struct job *jobs;
    int n;
    int64_t total;         /* total_count for the filter; -1 if not asked */
    bool total_capped;     /* an unselective search stopped counting at total */
    bool drained;          /* a claim saw nothing more claimable in its queue (false:
                            * more, or not known - the backend did not look) */
};
void job_list_fini(struct job_list *l);
/* Moves every job of more to the end of out (more is left empty); JQ_E_NOMEM leaves both. */
jq_err job_list_append(struct job_list *out, struct job_list *more);
/* The greatest user_id among l->jobs[from, to); from < to. */
const char *job_list_max_user(const struct job_list *l, int from, int to);

/* What a create asks for; validated by the server before it gets here. */
struct job_new {
    const char *user_id, *queue, *type;
    const char *params;        /* compact JSON text of an object, as given */
    const char *params_hash;   /* hash of the canonical params (core/canon.h) */
    const char *unique_key;    /* NULL: none */
    int priority, max_attempts;
    int64_t run_at, expires_at;
    /* single creates only */
    int64_t dedup_window_ms;   /* 0: no dedup */
    int64_t cache_ttl_ms;      /* 0: no result cache */
    int64_t active_limit;      /* max pending + processing of the user; 0: none */
    bool replace;              /* unique_key: a pending job with it gets these params/run_at */
    const char *const *depends_on;   /* parent job ids (the user's own) */
    int n_deps;
    const char *on_parent_failure;   /* "cancel" (default) or "run" */
};

enum create_outcome { CREATE_NEW, CREATE_DEDUP, CREATE_CACHED };

/* A bulk create: all or nothing. */
struct batch_req {
    const char *user_id;
    const struct job_new *items;
    int n;
    bool replace;              /* unique_key upsert replaces a pending job's params/run_at */
    int64_t active_limit;      /* 0: none */
};

struct cancel_req {
    const char *scope;         /* user_id, or NULL for all */
    const char *const *ids;    /* by ids (n_ids), or by filter when ids is NULL */
    int n_ids;
    int status;                /* filter: JOB_PENDING / JOB_PROCESSING / -1 both */
    const char *type, *queue;  /* filter: NULL = any */
    int max;                   /* filter: at most this many per call */
};

enum maint_task { MT_RESCUE, MT_EXPIRE, MT_CLEANUP, MT_IDEMPOTENCY, MT_STATS, MT_EVENTS,
                  MT_SCHEDULES /* run by the server (server/sched.c), not store_maint */,
                  MT__N };

/* One committed change, as SSE streams it. */
struct event {
    int64_t id, created_at;
    char job_id[ID_LEN + 1];
    char user_id[NAME_MAX_LEN + 1], queue[NAME_MAX_LEN + 1], type[NAME_MAX_LEN + 1];
    char kind[16];
    char *data;                /* JSON object text (malloc'd) */
};
struct event_filter {
    const char *user_id, *job_id, *queue, *type;   /* NULL = any */
};
struct event_list {
    struct event *ev;
    int n;
    int64_t min_id, max_id;    /* the retained window (0, 0 when empty) */
};
void event_list_fini(struct event_list *l);

/* List filter. NULL/negative members are "any". */
struct job_filter {
    const char *user_id;       /* scope: NULL = all users (admin, worker) */
    int status;                /* enum job_status or -1 */
    const char *type, *queue;
    bool asc;                  /* oldest first */
    int limit, offset;
    bool want_total;
    bool after;                /* keyset: only rows after (after_created, after_id) */
    int64_t after_created;
    const char *after_id;
    const char *params_q, *result_q;   /* containment (JSON text): params @> params_q */
    const char *log_q;                 /* an FTS5 query its logs must match (validated) */
};



struct claim_req {
    const char *queue, *worker_id;
    int64_t lease_ms;
    int max;
    bool fair;                 /* round-robin over users with claimable jobs */
    int64_t user_cap;          /* at most this many processing jobs per user; 0: none */
};

/* A workflow: steps with keys, their parents as step indexes (checked acyclic). */
struct workflow_step {
    struct job_new job;        /* job.depends_on unused: see parents */
    const char *key;
    const int *parents;
    int n_parents;
};
struct workflow_req {
    const char *user_id, *name;
    const struct workflow_step *steps;
    int n;
};
struct workflow {
    char id[ID_LEN + 1];
    char user_id[NAME_MAX_LEN + 1];
    char *name;
    int64_t created_at;
    struct job_list steps;     /* in step order */
    char *edges;               /* JSON [[parent_job_id, child_job_id], …] */
};
void workflow_fini(struct workflow *w);

/* A cron schedule. */
struct schedule {
    char id[ID_LEN + 1];
    char user_id[NAME_MAX_LEN + 1];
    char name[NAME_MAX_LEN + 1], type[NAME_MAX_LEN + 1], queue[NAME_MAX_LEN + 1];
    char cron[128], timezone[72], misfire[16];
    char *params;
    int priority, max_attempts, catch_up_max;
    bool paused;
    int64_t next_run_at, last_run_at, created_at, updated_at;   /* 0 = null */
};
struct schedule_list { struct schedule *s; int n; };
void schedule_list_fini(struct schedule_list *l);

struct fail_req {
    const char *error_message, *error_code;
    bool retryable;
};

/* One job to finish in a finish-and-claim call. */
struct finish_item {
    const char *id, *lease;
    const char *result;            /* complete: JSON text or NULL */
    struct fail_req fail;          /* fail: the outcome */
};
/* [{"i":id,"l":lease,"r":result}] (fail: {"i","l","m":message,"c":code,"y":retryable}) for
 * a batch of finishes, the parameter of the backends' one-statement UPDATE; y is a JSON
 * boolean when y_bool, else 0/1. malloc'd; NULL when n is 0. */
char *finish_items_json(const struct finish_item *it, int n, bool fail, bool y_bool);

/* Completes and fails jobs, then claims, in one operation (one commit). */
struct finish_req {
    const struct finish_item *complete, *fail;
    int n_complete, n_fail;
    struct claim_req claim;        /* claim.max == 0: claim nothing */
};

struct finish_err { bool is_fail; int index; jq_err err; };

struct finish_out {
    int completed, failed;
    struct finish_err *errors;     /* malloc'd, n_errors of them */
    int n_errors;
    struct job_list claimed;
};
void finish_out_fini(struct finish_out *o);

struct progress {
    int percent;               /* -1: unchanged */
    const char *message;       /* NULL: unchanged */
    int64_t lease_ms;          /* new lease from now */
};

struct log_row {
    int64_t id, created_at;
    char job_id[ID_LEN + 1];
    int level;
    char *message, *metadata;  /* metadata NULL when none */
};
struct log_list {
    struct log_row *rows;
    int n;
};
void log_list_fini(struct log_list *l);

/* A full-text log search; the query was validated with store_log_query_ok. */
struct log_search {
    const char *q;             /* FTS5 query */
    const char *scope;         /* user_id or NULL */
    int level;                 /* at least */
    const char *job_id, *type; /* NULL = any */
    int64_t since;             /* created_at >= since */
    const char *metadata_q;    /* containment on metadata, or NULL */
    int limit, offset;
};
struct log_hit {
    struct log_row row;
    char type[NAME_MAX_LEN + 1];
    char *snippet;             /* matches between \x02 and \x03 */
};
struct log_hits { struct log_hit *hits; int n; };
void log_hits_fini(struct log_hits *h);

enum role { ROLE_USER = 1, ROLE_WORKER = 2, ROLE_ADMIN = 4 };
const char *role_name(enum role r);
bool role_parse(const char *s, enum role *out);

struct principal {
    char token_id[TOKEN_ID_LEN + 1];
    char user_id[NAME_MAX_LEN + 1];
    enum role role;
    int64_t active_limit;      /* -1: the server's default for the role */
};

enum { TOKEN_HASH_LEN = 32 };

struct store_cfg {
    const char *path;
    int readers;               /* read-only connections in the pool */
    int sync;                  /* 0 off, 1 normal, 2 full (default) */
    int pool;                  /* PostgreSQL: connections in the pool (0: default 16) */
    struct retry_policy retry;
    int64_t slow_ms;           /* statements slower than this are logged with their plan */
    const char *vfs;           /* SQLite: VFS name, NULL = default (test builds: "lazy") */
    _Atomic int64_t *clock_skew;   /* PostgreSQL: kept at (database clock - this host's
                                    * wall clock) ms, measured every second; NULL: not
                                    * (a fake clock) */
};

/* Called by the writer after each commit; claimable: it made jobs claimable. */
typedef void (*store_notify_fn)(void *arg, bool claimable);

/* Histogram bucket bounds of the store's counters (the last bucket is +Inf). */
enum { GROUP_BUCKETS = 10, COMMIT_BUCKETS = 12 };
extern const double store_group_bounds[GROUP_BUCKETS - 1];    /* operations per commit */
extern const double store_commit_bounds[COMMIT_BUCKETS - 1];  /* seconds per commit (fsync) */

struct store_counters {
    const char *backend;               /* the backend's name ("sqlite", "postgres") */
    uint64_t ops, commits, fsync_us;
    uint64_t claims;                   /* claim transactions run (a skipped long-poll wake-up
                                        * that knew nothing was claimable is not one) */
    uint64_t slow_statements;
    int64_t last_full_ms;              /* monotonic ms of the last disk-full error, 0 = never */
    int64_t failed_ms;                 /* monotonic ms when an I/O error stopped writes until
                                        * a restart (fail-stop), 0 = never */
    uint64_t group[GROUP_BUCKETS];     /* commits by operations in the group */
    uint64_t commit[COMMIT_BUCKETS];   /* commits by duration */
};

struct store_ops {
    int version;               /* bump when a member is added */
    const char *name;
    jq_err (*create)(void *self, struct sctx *c, const struct job_new *in, struct job *out,
                     enum create_outcome *how);
    jq_err (*create_batch)(void *self, struct sctx *c, const struct batch_req *in,
                           struct job_list *out, int *created);
    jq_err (*cancel_many)(void *self, struct sctx *c, const struct cancel_req *in, int *n);
    /* The statistics document in the API's shape (see docs/API.md); scope NULL = global. */
    jq_err (*stats)(void *self, struct sctx *c, const char *scope, json_t **out);
    /* One bounded batch of a maintenance task. arg_ms: the age cut-off for
     * cleanup/idempotency/stats. *rows: rows changed; *next_ms: when the task
     * is next due (rescue/expire), 0 if unknown. */
    /* Events after `after` matching f, oldest first, at most limit. */
    /* JQ_E_INVALID (with the engine's reason in why) if q is not a valid query. */
    jq_err (*log_query_ok)(void *self, struct sctx *c, const char *q, char *why, size_t cap);
    jq_err (*log_search)(void *self, struct sctx *c, const struct log_search *in,
                         struct log_hits *out);
    jq_err (*events)(void *self, struct sctx *c, const struct event_filter *f, int64_t after,
                     int limit, struct event_list *out);
    jq_err (*maint)(void *self, struct sctx *c, enum maint_task t, int64_t arg_ms, int batch,
                    int *rows, int64_t *next_ms);
    jq_err (*get)(void *self, struct sctx *c, const char *id, const char *scope, struct job *out);
    jq_err (*list)(void *self, struct sctx *c, const struct job_filter *f, struct job_list *out);
    jq_err (*cancel)(void *self, struct sctx *c, const char *id, const char *scope, struct job *out);
    jq_err (*retry)(void *self, struct sctx *c, const char *id, const char *scope, struct job *out);
    jq_err (*remove)(void *self, struct sctx *c, const char *id, const char *scope);
    jq_err (*claim)(void *self, struct sctx *c, const struct claim_req *in, struct job_list *out);
    jq_err (*workflow_create)(void *self, struct sctx *c, const struct workflow_req *in,
                              struct workflow *out);
    jq_err (*workflow_get)(void *self, struct sctx *c, const char *id, const char *scope,
                           struct workflow *out);
    /* Schedules. add: JQ_E_CONFLICT when the user has one of that name. */
    jq_err (*schedule_add)(void *self, struct sctx *c, const struct schedule *in,
                           struct schedule *out);
    jq_err (*schedule_list)(void *self, struct sctx *c, const char *scope,
                            struct schedule_list *out);
    jq_err (*schedule_get)(void *self, struct sctx *c, const char *id, const char *scope,
                           struct schedule *out);
    /* paused: 1 pause, 0 resume (next_run_at given), -1 delete. */
    jq_err (*schedule_set)(void *self, struct sctx *c, const char *id, const char *scope,
                           int paused, int64_t next_run_at, struct schedule *out);
    /* Schedules due at c->now (not paused), at most limit. */
    jq_err (*schedules_due)(void *self, struct sctx *c, int limit, struct schedule_list *out);
    /* Enqueues the schedule's job once per fire time (a fire time already
     * recorded is skipped), then moves next_run_at; *created gets the count. */
    jq_err (*schedule_fire)(void *self, struct sctx *c, const struct schedule *sc,
                            const int64_t *fire_at, int n, int64_t next_run_at, int64_t ttl_ms,
                            int *created);
    /* A read: is any job of queue claimable at c->now? (Long-polls ask before claiming.) */
    jq_err (*has_due)(void *self, struct sctx *c, const char *queue, bool *yes);
    jq_err (*finish_claim)(void *self, struct sctx *c, const struct finish_req *in,
                           struct finish_out *out);
    jq_err (*heartbeat)(void *self, struct sctx *c, const char *id, const char *lease,
                        const struct progress *p, struct job *out);
    jq_err (*complete)(void *self, struct sctx *c, const char *id, const char *lease,
                       const char *result, struct job *out);
    jq_err (*fail)(void *self, struct sctx *c, const char *id, const char *lease,
                   const struct fail_req *in, struct job *out);
    jq_err (*log_add)(void *self, struct sctx *c, const char *id, const char *lease, int level,
                      const char *message, const char *metadata, struct log_row *out);
    jq_err (*logs)(void *self, struct sctx *c, const char *id, const char *scope, int level,
                   int64_t after, int limit, struct log_list *out);
    jq_err (*token_add)(void *self, struct sctx *c, const uint8_t hash[TOKEN_HASH_LEN],
                        const struct principal *p, const char *name);
    jq_err (*token_revoke)(void *self, struct sctx *c, const char *token_id);
    jq_err (*token_find)(void *self, struct sctx *c, const uint8_t hash[TOKEN_HASH_LEN],
                         struct principal *out);
    jq_err (*token_count)(void *self, struct sctx *c, int64_t *n);
    void (*counters)(void *self, struct store_counters *out);
    /* The query plan of a named hot statement (see store_explain). */
    jq_err (*explain)(void *self, const char *what, char *out, size_t cap);
    void (*set_notify)(void *self, store_notify_fn fn, void *arg);
    /* Optional (NULL: not offered). A second callback the writer calls right after a
     * commit that made jobs claimable, BEFORE that commit is durable: only to wake
     * claimers, whose own reply waits for a later sync that covers it. notify is then
     * called with claimable false once the commit is durable. */
    void (*set_claim_notify)(void *self, store_notify_fn fn, void *arg);
    /* True if this node runs maintenance (PostgreSQL: holds the leader
     * advisory lock). NULL (SQLite: one node) means always. */
    bool (*is_leader)(void *self);
    void (*close)(void *self);
};

/* Opens the backend named by cfg->path (a file path -> SQLite). On failure
 * returns an error and logs why (corrupt file, not a jobq database …). */
jq_err store_open(const struct store_cfg *cfg, store **out);
void   store_close(store *s);        /* NULL is a no-op; finishes queued writes */

jq_err store_create(store *s, struct sctx *c, const struct job_new *in, struct job *out,
                    enum create_outcome *how);
jq_err store_create_batch(store *s, struct sctx *c, const struct batch_req *in,
                          struct job_list *out, int *created);
jq_err store_cancel_many(store *s, struct sctx *c, const struct cancel_req *in, int *n);
jq_err store_stats(store *s, struct sctx *c, const char *scope, json_t **out);
jq_err store_log_query_ok(store *s, struct sctx *c, const char *q, char *why, size_t cap);
jq_err store_log_search(store *s, struct sctx *c, const struct log_search *in,
                        struct log_hits *out);
jq_err store_events(store *s, struct sctx *c, const struct event_filter *f, int64_t after,
                    int limit, struct event_list *out);
jq_err store_maint(store *s, struct sctx *c, enum maint_task t, int64_t arg_ms, int batch,
                   int *rows, int64_t *next_ms);
jq_err store_get(store *s, struct sctx *c, const char *id, const char *scope, struct job *out);
jq_err store_list(store *s, struct sctx *c, const struct job_filter *f, struct job_list *out);
jq_err store_cancel(store *s, struct sctx *c, const char *id, const char *scope, struct job *out);
jq_err store_retry(store *s, struct sctx *c, const char *id, const char *scope, struct job *out);
jq_err store_remove(store *s, struct sctx *c, const char *id, const char *scope);
jq_err store_claim(store *s, struct sctx *c, const struct claim_req *in, struct job_list *out);
jq_err store_workflow_create(store *s, struct sctx *c, const struct workflow_req *in,
                             struct workflow *out);
jq_err store_workflow_get(store *s, struct sctx *c, const char *id, const char *scope,
                          struct workflow *out);
jq_err store_schedule_add(store *s, struct sctx *c, const struct schedule *in,
                          struct schedule *out);
jq_err store_schedule_list(store *s, struct sctx *c, const char *scope,
                           struct schedule_list *out);
jq_err store_schedule_get(store *s, struct sctx *c, const char *id, const char *scope,
                          struct schedule *out);
jq_err store_schedule_set(store *s, struct sctx *c, const char *id, const char *scope,
                          int paused, int64_t next_run_at, struct schedule *out);
jq_err store_schedules_due(store *s, struct sctx *c, int limit, struct schedule_list *out);
jq_err store_schedule_fire(store *s, struct sctx *c, const struct schedule *sc,
                           const int64_t *fire_at, int n, int64_t next_run_at, int64_t ttl_ms,
                           int *created);
jq_err store_has_due(store *s, struct sctx *c, const char *queue, bool *yes);
jq_err store_finish_claim(store *s, struct sctx *c, const struct finish_req *in,
                          struct finish_out *out);
jq_err store_heartbeat(store *s, struct sctx *c, const char *id, const char *lease,
                       const struct progress *p, struct job *out);
jq_err store_complete(store *s, struct sctx *c, const char *id, const char *lease,
                      const char *result, struct job *out);
jq_err store_fail(store *s, struct sctx *c, const char *id, const char *lease,
                  const struct fail_req *in, struct job *out);
jq_err store_log_add(store *s, struct sctx *c, const char *id, const char *lease, int level,
                     const char *message, const char *metadata, struct log_row *out);
jq_err store_logs(store *s, struct sctx *c, const char *id, const char *scope, int level,
                  int64_t after, int limit, struct log_list *out);
jq_err store_token_add(store *s, struct sctx *c, const uint8_t hash[TOKEN_HASH_LEN],
                       const struct principal *p, const char *name);
jq_err store_token_revoke(store *s, struct sctx *c, const char *token_id);
jq_err store_token_find(store *s, struct sctx *c, const uint8_t hash[TOKEN_HASH_LEN],
                        struct principal *out);
jq_err store_token_count(store *s, struct sctx *c, int64_t *n);
void   store_counters(store *s, struct store_counters *out);
/* Writes the backend's query plan of a hot statement into out, one step per
 * line: what is one of "claim", "rescue", "expire", "get", "logs", "token",
 * "list_all", "list_user", "list_user_status", "list_user_type",
 * "list_user_queue", "count_user_status". JQ_E_NOT_FOUND for other names. */
jq_err store_explain(store *s, const char *what, char *out, size_t cap);
void   store_set_notify(store *s, store_notify_fn fn, void *arg);
void   store_set_claim_notify(store *s, store_notify_fn fn, void *arg);   /* see ops */
/* Whether this node should run maintenance now (see store_ops.is_leader). */
bool   store_is_leader(store *s);
/* Whether other nodes may share the database (a backend with a leader: PostgreSQL). */
bool   store_shared(store *s);

/* The SQLite backend's constructor (sqlite/sq.c). */
jq_err sq_open(const struct store_cfg *cfg, const struct store_ops **ops, void **self);
/* The PostgreSQL backend's constructor (postgres/pg_store.c): cfg->path is a
 * postgres:// or postgresql:// connection URI. */
jq_err pg_open(const struct store_cfg *cfg, const struct store_ops **ops, void **self);

#endif
