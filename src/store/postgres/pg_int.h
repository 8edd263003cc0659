/*
 * pg_int.h - internals shared by the files of the PostgreSQL backend (pg__
 * prefix): the connection pool, the transaction runner (role + user setting
 * per transaction, retry after a lost connection, one NOTIFY per commit),
 * query helpers, and the listener/leader session.
 */
#ifndef JQ_PG_INT_H
#define JQ_PG_INT_H
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

#include "store/store.h"

/* Columns of a job row, in the order pg__load_job reads them; p = table prefix. */
#define PG_JOB_COLS_P(p)                                                                   \
    p "id," p "user_id," p "queue," p "type," p "worker_id," p "error_code," p "lease_token," \
    p "status," p "priority," p "attempts," p "max_attempts," p "progress_percent,"          \
    p "run_at," p "created_at," p "updated_at," p "started_at," p "completed_at,"            \
    p "expires_at," p "lease_expires_at," p "params::text," p "result::text,"                \
    p "error_message," p "progress_message," p "blocked," p "workflow_id," p "step_key"
#define PG_JOB_COLS PG_JOB_COLS_P("")
enum { PG_NCOLS = 26 };
/* A claim's extra column: the job's parents [{id, key, status, result}] (jobs
 * with dependencies have on_parent_failure set), read by pg__load_job. */
#define PG_PARENTS_COL(p)                                                                  \
    ", CASE WHEN " p "on_parent_failure IS NOT NULL THEN (SELECT jsonb_agg(jsonb_build_object(" \
    "'id', q.id, 'key', q.step_key, 'status', q.status, 'result', q.result) ORDER BY q.id)::text" \
    " FROM job_deps d JOIN jobs q ON q.id = d.parent_id WHERE d.child_id = " p "id) END AS parents"

enum { PP_MAX = 16, PP_NUM = 24 };

/* Text parameters of one statement (NULL = SQL NULL). */
struct pp {
    const char *v[PP_MAX];
    char num[PP_MAX][PP_NUM];    /* storage for formatted integers */
    int n;
};
void pp_s(struct pp *p, const char *s);          /* borrows s */
void pp_i(struct pp *p, int64_t v);

/* A statement prepared on one connection: name "jq<index>", text kept to
 * tell apart statements whose hashes collide. */
struct pg_stmt {
    uint64_t hash;                /* FNV-1a of sql */
    char *sql;                    /* malloc'd copy of the text */
};
enum { PG_STMT_CACHE = 128 };    /* per connection; more distinct texts run unprepared */

/* One pooled connection. */
struct pg;
struct pgconn {
    PGconn *pc;
    struct pg_stmt stmts[PG_STMT_CACHE];   /* prepared on pc; emptied when pc is replaced */
    int n_stmts;
    struct pg *store;             /* the owning store */
    struct pgconn *next_free;     /* pool free list */
    bool begin_pending;           /* BEGIN not sent yet: goes with the first statement */
    bool begin_ro;                /* that BEGIN is READ ONLY */
    const char *begin_user;       /* its user (jobq_app), NULL: jobq_service; borrowed */
    bool begin_generic;           /* its statements use generic plans (PG_WORK) */
    bool lost;                    /* the last statement failed on the connection itself */
    bool retry;                   /* the last error was a deadlock/serialization failure */
    bool wake;                    /* this transaction made jobs claimable */
    bool wrote;                   /* this transaction wrote events */
    char state[6];                /* SQLSTATE of the last error */
};

/* PG_WORK: a write whose statements all find their rows by key or by the pickup
 * index (the worker's claim, complete, fail, heartbeat): run with generic plans,
 * planned once per connection; custom plans cost more to make (0.1-0.3 ms over
 * the many indexes of jobs) than the statements take to run. */
enum pg_mode { PG_READ, PG_WRITE, PG_WORK };

enum { PG_CB_GROUPS = 8 };        /* create groups in flight (pg_combine.c) */

/* What this node knows about claimable jobs of one queue (pg_due.c). */
struct pg_due {
    char queue[NAME_MAX_LEN + 1];   /* "" = free slot */
    uint64_t drained_gen;         /* a committed claim that started at this wake_gen got short */
    int64_t drained_at;           /* its request time (ms) */
    const struct sctx *drained_c; /* its request */
    const struct sctx *busy_c;    /* the request whose claim is in flight or promised */
    uint64_t busy_gen;            /* wake_gen when it started (or was promised) */
    int64_t busy_until;           /* monotonic ms: stop waiting for it after this */
    int64_t used;                 /* monotonic ms of the last use, for recycling */
};

/* A claim's start, for pg__due_end. */
struct pg_due_mark {
    uint64_t gen;                 /* wake_gen before the claim's statement */
    bool tracked;                 /* the claim is the slot's busy one */
};

struct pg {
    struct store_cfg cfg;
    char *conninfo;
    struct pgconn *conns;         /* the pool (array of cfg.pool) */
    struct pgconn *free;          /* free list, guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_mutex_t idmu;         /* guards ids */
    struct id_gen ids;            /* job ids of this node: monotonic */
    char node[20];                /* random id of this process, prefixes NOTIFY payloads */
    pthread_mutex_t fmu;          /* guards fair */
    struct { char queue[NAME_MAX_LEN + 1], user[NAME_MAX_LEN + 1]; } fair[16];
                                  /* fair claims: the last user served per queue */
    pthread_mutex_t nmu;          /* guards notify, notify_arg */
    store_notify_fn notify;
    void *notify_arg;
    pthread_mutex_t cbmu;         /* guards the create group below (pg_combine.c) */
    pthread_cond_t cbcond;        /* broadcast when a group finishes */
    struct pg_cb_item *cb_head, *cb_tail;   /* single creates waiting for a group */
    const char *cb_users[PG_CB_GROUPS];     /* users whose group is in flight (NULL: free
                                             * slot); borrowed from the leader's request */
    pthread_mutex_t dmu;          /* guards due (pg_due.c) */
    pthread_cond_t dcond;         /* CLOCK_MONOTONIC; broadcast when a claim ends */
    struct pg_due due[16];        /* per queue, recycled */
    _Atomic uint64_t wake_gen;    /* claimable notifications seen (local and LISTEN) */
    pthread_t listener;           /* LISTEN + leader lock session (pg_notify.c) */
    bool listener_started;
    int stop_pipe[2];             /* written on close to wake the listener */
    _Atomic bool stop, leader, listening;
    _Atomic uint64_t ops, commits, fsync_us, reconnects, claims;
};

/* --- pg_conn.c --- */
jq_err pg__pool_open(struct pg *s);
void   pg__pool_close(struct pg *s);
jq_err pg__migrate(struct pg *s);
/* Runs a statement; NULL on error (logged; cn->lost/retry/state set) and *err set. */
PGresult *pg__q(struct pgconn *cn, struct sctx *c, const char *sql, const struct pp *p,
                jq_err *err);
/* Runs a statement that returns no rows of interest; *changed = rows affected (may be NULL). */
jq_err pg__exec(struct pgconn *cn, struct sctx *c, const char *sql, const struct pp *p,
                int *changed);
typedef jq_err (*pg_fn)(struct pgconn *cn, struct sctx *c, void *arg);
/* Runs fn in one transaction on a pooled connection. user != NULL: as role
 * jobq_app with jobq.user_id = user (row-level security); NULL: as jobq_service.
 * retry_safe: fn may run again after a COMMIT whose outcome is unknown. */
jq_err pg__tx(struct pg *s, struct sctx *c, enum pg_mode mode, const char *user,
              bool retry_safe, pg_fn fn, void *arg);
void   pg__load_job(const PGresult *r, int row, struct job *j);
void   pg__text(const PGresult *r, int row, int col, char *dst, size_t cap);
char  *pg__dup(const PGresult *r, int row, int col);
int64_t pg__int(const PGresult *r, int row, int col);     /* NULL reads as 0 */
bool   pg__null(const PGresult *r, int row, int col);
void   pg__new_id(struct pg *s, int64_t now, char id[ID_LEN + 1]);

/* --- pg_ops.c --- */
jq_err pg__op_create_batch(void *self, struct sctx *c, const struct batch_req *in,
                           struct job_list *out, int *created);
jq_err pg__op_cancel_many(void *self, struct sctx *c, const struct cancel_req *in, int *n);
jq_err pg__op_get(void *self, struct sctx *c, const char *id, const char *scope, struct job *out);
jq_err pg__op_list(void *self, struct sctx *c, const struct job_filter *f, struct job_list *out);
jq_err pg__op_cancel(void *self, struct sctx *c, const char *id, const char *scope,
                     struct job *out);
jq_err pg__op_retry(void *self, struct sctx *c, const char *id, const char *scope,
                    struct job *out);
jq_err pg__op_remove(void *self, struct sctx *c, const char *id, const char *scope);
jq_err pg__op_claim(void *self, struct sctx *c, const struct claim_req *in,
                    struct job_list *out);
jq_err pg__op_finish_claim(void *self, struct sctx *c, const struct finish_req *in,
                           struct finish_out *out);
jq_err pg__op_heartbeat(void *self, struct sctx *c, const char *id, const char *lease,
                        const struct progress *p, struct job *out);
jq_err pg__op_complete(void *self, struct sctx *c, const char *id, const char *lease,
                       const char *result, struct job *out);
jq_err pg__op_fail(void *self, struct sctx *c, const char *id, const char *lease,
                   const struct fail_req *in, struct job *out);
jq_err pg__op_log_add(void *self, struct sctx *c, const char *id, const char *lease, int level,
                      const char *message, const char *metadata, struct log_row *out);
jq_err pg__op_logs(void *self, struct sctx *c, const char *id, const char *scope, int level,
                   int64_t after, int limit, struct log_list *out);
/* The scoped-get reader used by logs and friends (inside a transaction). */
jq_err pg__get(struct pgconn *cn, struct sctx *c, const char *id, const char *scope,
               struct job *out);

/* One create in its own transaction. id: the job id an earlier attempt (a
 * failed group, pg_combine.c) used, looked up first; NULL: a new one. */
jq_err pg__create_one(struct pg *s, struct sctx *c, const struct job_new *in, const char *id,
                      struct job *out, enum create_outcome *how);

/* Inserts one job row (create and schedule fires); sets wrote/wake. */
jq_err pg__insert_job(struct pgconn *cn, struct sctx *c, const char *id,
                      const struct job_new *in, struct job *out);

/* --- pg_combine.c: group commit of single creates --- */
jq_err pg__op_create(void *self, struct sctx *c, const struct job_new *in, struct job *out,
                     enum create_outcome *how);

/* --- pg_due.c: is anything claimable, from what this node knows --- */
jq_err pg__op_has_due(void *self, struct sctx *c, const char *queue, bool *yes);
/* Around every claim on queue: begin before its transaction, end after it with
 * drained = a plain claim (not fair, no per-user cap: those may stop short)
 * committed and got fewer jobs than asked for. */
void pg__due_begin(struct pg *s, struct sctx *c, const char *queue, struct pg_due_mark *m);
/* True when c's own plain claim on queue came up short a moment ago and has_due
 * says nothing was made claimable since: another claim now would find nothing. */
bool pg__due_skip(struct pg *s, struct sctx *c, const char *queue);
void pg__due_end(struct pg *s, struct sctx *c, const char *queue, const struct pg_due_mark *m,
                 bool drained);

/* --- pg_flow.c: workflows and schedules --- */
jq_err pg__op_workflow_create(void *self, struct sctx *c, const struct workflow_req *in,
                              struct workflow *out);
jq_err pg__op_workflow_get(void *self, struct sctx *c, const char *id, const char *scope,
                           struct workflow *out);
jq_err pg__op_schedule_add(void *self, struct sctx *c, const struct schedule *in,
                           struct schedule *out);
jq_err pg__op_schedule_list(void *self, struct sctx *c, const char *scope,
                            struct schedule_list *out);
jq_err pg__op_schedule_get(void *self, struct sctx *c, const char *id, const char *scope,
                           struct schedule *out);
jq_err pg__op_schedule_set(void *self, struct sctx *c, const char *id, const char *scope,
                           int paused, int64_t next_run_at, struct schedule *out);
jq_err pg__op_schedules_due(void *self, struct sctx *c, int limit, struct schedule_list *out);
jq_err pg__op_schedule_fire(void *self, struct sctx *c, const struct schedule *sc,
                            const int64_t *fire_at, int n, int64_t next_run_at,
                            int64_t ttl_ms, int *created);

/* --- pg_more.c: stats, maintenance, events, search, idempotency, tokens, explain --- */
jq_err pg__op_stats(void *self, struct sctx *c, const char *scope, json_t **out);
jq_err pg__op_maint(void *self, struct sctx *c, enum maint_task t, int64_t arg_ms, int batch,
                    int *rows, int64_t *next_ms);
jq_err pg__op_events(void *self, struct sctx *c, const struct event_filter *f, int64_t after,
                     int limit, struct event_list *out);
jq_err pg__op_log_query_ok(void *self, struct sctx *c, const char *q, char *why, size_t cap);
jq_err pg__op_log_search(void *self, struct sctx *c, const struct log_search *in,
                         struct log_hits *out);
/* FTS5-style query (what the API documents) -> to_tsquery text; JQ_E_INVALID with why. */
jq_err pg__fts(const char *q, char *out, size_t cap, char *why, size_t wcap);
jq_err pg__idem_check(struct pgconn *cn, struct sctx *c);
jq_err pg__idem_store(struct pgconn *cn, struct sctx *c);
jq_err pg__op_token_add(void *self, struct sctx *c, const uint8_t hash[TOKEN_HASH_LEN],
                        const struct principal *p, const char *name);
jq_err pg__op_token_revoke(void *self, struct sctx *c, const char *token_id);
jq_err pg__op_token_find(void *self, struct sctx *c, const uint8_t hash[TOKEN_HASH_LEN],
                         struct principal *out);
jq_err pg__op_token_count(void *self, struct sctx *c, int64_t *n);
jq_err pg__op_explain(void *self, const char *what, char *out, size_t cap);

/* --- pg_notify.c: LISTEN/NOTIFY bridge and the advisory-lock leader --- */
jq_err pg__listener_start(struct pg *s);
void   pg__listener_stop(struct pg *s);
void   pg__notify_local(struct pg *s, bool claimable);

#endif
