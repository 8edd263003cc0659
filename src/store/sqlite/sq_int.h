/*
 * sq_int.h - internals shared by the files of the SQLite backend (sq__ prefix):
 * connections with their prepared-statement caches, the writer thread that
 * commits groups of operations, and the read pool.
 */
#ifndef JQ_SQ_INT_H
#define JQ_SQ_INT_H
#include <pthread.h>
#include <semaphore.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "store/store.h"

/* Columns of a job row, in the order sq__load_job reads them. */
#define JOB_COLS                                                                       \
    "id,user_id,queue,type,worker_id,error_code,lease_token,status,priority,attempts," \
    "max_attempts,progress_percent,run_at,created_at,updated_at,started_at,"         \
    "completed_at,expires_at,lease_expires_at,params,result,error_message,"          \
    "progress_message,blocked,workflow_id,step_key"
enum { JOB_NCOLS = 26 };   /* columns in JOB_COLS; a statement's extra columns follow */

/* Fixed statements, prepared once per connection on first use. */
enum st_id {
    ST_INSERT, ST_REPLACE_PENDING, ST_DEPS_CHECK, ST_DEPS_INSERT, ST_DEPS_PAIRS,
    ST_DEPS_BLOCK, ST_DEPS_DOOMED, ST_PARENTS, ST_CLAIM_FAIR, ST_SC_INSERT, ST_SC_LIST,
    ST_SC_GET, ST_SC_PAUSE, ST_SC_RESUME, ST_SC_DELETE, ST_SC_DUE, ST_SC_MARK, ST_SC_MARK_JOB,
    ST_SC_ADVANCE, ST_WF_STEPS_INSERT, ST_WF_INSERT, ST_WF_GET, ST_WF_STEPS, ST_WF_EDGES, ST_GET, ST_STATUS_OF, ST_CANCEL, ST_RETRY, ST_DELETE, ST_DELETE_LOGS,
    ST_CLAIM, ST_COMPLETE_MANY, ST_FAIL_MANY, ST_EXISTING_IDS, ST_HAS_DUE, ST_HEARTBEAT, ST_COMPLETE, ST_FAIL, ST_RESCUE, ST_NEXT_LEASE, ST_EXPIRE, ST_NEXT_EXPIRY,
    ST_LOG_INSERT, ST_LOGS, ST_TOKEN_ADD, ST_TOKEN_REVOKE, ST_TOKEN_FIND, ST_TOKEN_COUNT,
    ST_FIND_UNIQUE, ST_FIND_DEDUP, ST_FIND_CACHE, ST_ACTIVE_COUNT, ST_IDEM_GET, ST_IDEM_PUT,
    ST_BATCH_INSERT, ST_BATCH_EXISTING, ST_CANCEL_IDS, ST_CANCEL_FILTER, ST_CANCEL_FILTER_USER, ST_CLEANUP_LOGS,
    ST_CLEANUP_DEPS, ST_CLEANUP_JOBS, ST_IDEM_PRUNE, ST_STATS_PRUNE, ST_HIST_PRUNE, ST_COUNTS_USER, ST_OLDEST_DUE_USER,
    ST_COUNTS_DIMS, ST_COUNT_DIM, ST_LOG_QUERY_OK, ST_LOG_SEARCH, ST_TERM_PROBE, ST_TERM_PROBE_USER, ST_EVENTS_AFTER, ST_EVENTS_JOB, ST_EVENTS_BOUNDS, ST_EVENTS_PRUNE, ST_TERMS_MARK, ST_TERMS_NEXT,
    ST_TERMS_INDEX, ST_TERMS_SET, ST_STATS_TYPES, ST_STATS_HIST, ST_STATS_MINUTES, ST_OLDEST_DUE,
    ST_BEGIN, ST_BEGIN_IMM, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO,
    ST__COUNT
};

/* Variants of the list statement: one per combination of filters. */
enum { LF_USER = 1, LF_STATUS = 2, LF_TYPE = 4, LF_QUEUE = 8, LF_ASC = 16, LF_COUNT = 32,
       LF_AFTER = 64, LF_PARAMS = 128, LF_RESULT = 256, LF_LOGQ = 512, LF_WALK = 1024,
       LF__N = 2048 };
enum { SEARCH_PROBE = 1000,       /* more candidates than this: walk the listing order */
       SEARCH_COUNT_CAP = 10000 }; /* counts of walked searches stop here */

struct conn {
    sqlite3 *db;
    sqlite3_stmt *st[ST__COUNT];     /* lazily prepared, persistent */
    sqlite3_stmt *list[LF__N];       /* lazily prepared list/count variants */
    struct conn *next_free;          /* read pool free list */
    bool wake;                       /* writer: this group made jobs claimable */
    struct sq *owner;                /* for the slow-statement counter */
    char slow_sql[512];              /* the last slow statement, logged after its op */
    int64_t slow_ns;
    struct id_gen ids;               /* writer: monotonic job ids */
    int64_t terms_mark;              /* writer: terms_mark.upto as last seen (a hint) */
    bool terms_known;                /* writer: terms_mark was read */
    struct {                         /* writer: fair-claim round-robin position per queue */
        char queue[NAME_MAX_LEN + 1], user[NAME_MAX_LEN + 1];
    } fair[32];
};

/* One queued write: runs on the writer thread inside the group's transaction. */
struct wop {
    jq_err (*fn)(struct conn *cn, struct sctx *c, void *arg);
    void *arg;
    struct sctx *c;
    jq_err err;
    sem_t done;                      /* posted after the commit that holds it */
    struct wop *next;
};

struct sq {
    struct store_cfg cfg;
    char *path;
    struct conn wconn;               /* owned by the writer thread */
    pthread_t writer;
    pthread_mutex_t mu;              /* guards queue, stop */
    pthread_cond_t work;             /* signalled when a wop is queued */
    struct wop *head, *tail;         /* pending writes, FIFO */
    bool stop;
    struct conn *readers;            /* all read connections (array) */
    struct conn *free_readers;       /* pool free list, guarded by rmu */
    pthread_mutex_t rmu;
    pthread_cond_t rcond;
    struct conn ck;                  /* the checkpointer's connection (sq_ckpt.c) */
    pthread_t ck_thread;
    pthread_mutex_t ck_mu;           /* guards ck_due, ck_stop */
    pthread_cond_t ck_cond;
    bool ck_due, ck_stop;
    int ck_next_catch_up;            /* writer: WAL frames at which it checkpoints itself */
    store_notify_fn notify;
    void *notify_arg;
    store_notify_fn claim_notify;    /* pipelined: wakes claimers before the sync */
    void *claim_notify_arg;
    /* --sync full: the writer commits with synchronous=NORMAL and hands each group to
     * the syncer thread, which syncs the WAL and only then wakes the requesters, while
     * the writer already runs the next group (sq_writer.c) */
    bool pipelined;
    pthread_t syncer;
    pthread_mutex_t smu;             /* guards the sync queue, sstop */
    pthread_cond_t scond;
    struct wop *shead, *stail;       /* committed groups waiting for the WAL sync */
    sqlite3_file *swal;              /* the WAL the queued groups wrote (writer-owned file) */
    bool sdirty, swake, sstop;       /* queued groups changed rows / made work claimable */
    _Atomic bool failed;             /* an I/O error on the write path: fail-stop, no
                                      * more writes or checkpoints (sq_writer.c) */
    _Atomic int64_t failed_ms;       /* monotonic ms when failed was set, 0 = never */
    _Atomic uint64_t ops, commits, fsync_us, slow, claims;
    _Atomic int64_t last_full_ms;    /* monotonic ms of the last SQLITE_FULL, 0 = never */
    _Atomic uint64_t group_hist[GROUP_BUCKETS], commit_hist[COMMIT_BUCKETS];
};

/* --- sq_conn.c --- */
/* vfs: a SQLite VFS name, NULL/"" = the default (test builds: "lazy" or "torn:N:SEED",
 * sq_lazyvfs.c) */
jq_err sq__conn_open(const char *path, bool readonly, int sync, const char *vfs,
                     struct conn *cn);
#ifdef JOBQ_TESTING
/* Registers the "lazy" VFS once; spec "lazy", or "torn:N:SEED" (the Nth xSync is a power
 * cut mid-sync, see sq_lazyvfs.c); SQLITE_OK, SQLITE_ERROR for another spec. */
int    sq__lazyvfs_register(const char *spec);
#endif
void   sq__conn_close(struct conn *cn);
jq_err sq__migrate(struct conn *cn);
void   sq__register_funcs(struct conn *cn, const struct retry_policy *p);
/* The cached statement, reset and cleared; counts one statement in c (may be NULL). */
sqlite3_stmt *sq__st(struct conn *cn, struct sctx *c, enum st_id id);
sqlite3_stmt *sq__list_st(struct conn *cn, struct sctx *c, int mask);
jq_err sq__rc(struct conn *cn, int rc, const char *what);   /* SQLite rc -> jq_err, logs */
jq_err sq__exec_st(struct conn *cn, enum st_id id);        /* runs a no-row statement */
void   sq__load_job(sqlite3_stmt *st, struct job *j);
void   sq__text(sqlite3_stmt *st, int col, char *dst, size_t cap);
char  *sq__dup(sqlite3_stmt *st, int col);
void   sq__bind_opt_text(sqlite3_stmt *st, int idx, const char *v);
jq_err sq__explain(struct conn *cn, const char *what, char *out, size_t cap);

/* --- sq_stats.c --- */
/* After an insert on the writer: once TERMS_BATCH or more jobs are above terms_mark,
 * indexes their containment terms (not counted as the request's statements). */
jq_err sq__terms_after_insert(struct conn *cn);

/* --- sq_ckpt.c: checkpoints on their own thread --- */
jq_err sq__ckpt_start(struct sq *s);
void   sq__ckpt_stop(struct sq *s);

/* --- sq_writer.c --- */
jq_err sq__writer_start(struct sq *s);
void   sq__writer_stop(struct sq *s);
/* Queues fn to the writer and waits until the commit holding it is durable. */
jq_err sq__write(struct sq *s, struct sctx *c,
                 jq_err (*fn)(struct conn *, struct sctx *, void *), void *arg);
/* Logs (with its plan) a slow statement the profile hook saw during an op. */
void   sq__log_slow(struct conn *cn);
void   sq__watch_slow(struct conn *cn, struct sq *owner);
/* Runs fn on a pooled read connection inside one read transaction. */
jq_err sq__read(struct sq *s, struct sctx *c,
                jq_err (*fn)(struct conn *, struct sctx *, void *), void *arg);

/* --- sq_ops.c: job operations, named in the ops table of sq_store.c --- */
jq_err sq__op_create(void *self, struct sctx *c, const struct job_new *in, struct job *out,
                     enum create_outcome *how);
jq_err sq__op_create_batch(void *self, struct sctx *c, const struct batch_req *in,
                           struct job_list *out, int *created);
jq_err sq__op_cancel_many(void *self, struct sctx *c, const struct cancel_req *in, int *n);
/* --- sq_flow.c: workflows and schedules --- */
jq_err sq__op_workflow_create(void *self, struct sctx *c, const struct workflow_req *in,
                              struct workflow *out);
jq_err sq__op_workflow_get(void *self, struct sctx *c, const char *id, const char *scope,
                           struct workflow *out);
jq_err sq__op_schedule_add(void *self, struct sctx *c, const struct schedule *in,
                           struct schedule *out);
jq_err sq__op_schedule_list(void *self, struct sctx *c, const char *scope,
                            struct schedule_list *out);
jq_err sq__op_schedule_get(void *self, struct sctx *c, const char *id, const char *scope,
                           struct schedule *out);
jq_err sq__op_schedule_set(void *self, struct sctx *c, const char *id, const char *scope,
                           int paused, int64_t next_run_at, struct schedule *out);
jq_err sq__op_schedules_due(void *self, struct sctx *c, int limit, struct schedule_list *out);
jq_err sq__op_schedule_fire(void *self, struct sctx *c, const struct schedule *sc,
                            const int64_t *fire_at, int n, int64_t next_run_at, int64_t ttl_ms,
                            int *created);
/* --- sq_stats.c --- */
jq_err sq__op_stats(void *self, struct sctx *c, const char *scope, json_t **out);
jq_err sq__op_events(void *self, struct sctx *c, const struct event_filter *f, int64_t after,
                     int limit, struct event_list *out);
jq_err sq__op_log_query_ok(void *self, struct sctx *c, const char *q, char *why, size_t cap);
jq_err sq__op_log_search(void *self, struct sctx *c, const struct log_search *in,
                         struct log_hits *out);
jq_err sq__op_maint(void *self, struct sctx *c, enum maint_task t, int64_t arg_ms, int batch,
                    int *rows, int64_t *next_ms);
/* --- idempotency (sq_writer.c calls these around an op) --- */
jq_err sq__idem_check(struct conn *cn, struct sctx *c);
jq_err sq__idem_store(struct conn *cn, struct sctx *c);
jq_err sq__op_get(void *self, struct sctx *c, const char *id, const char *scope, struct job *out);
jq_err sq__op_list(void *self, struct sctx *c, const struct job_filter *f, struct job_list *out);
jq_err sq__op_cancel(void *self, struct sctx *c, const char *id, const char *scope,
                     struct job *out);
jq_err sq__op_retry(void *self, struct sctx *c, const char *id, const char *scope,
                    struct job *out);
jq_err sq__op_remove(void *self, struct sctx *c, const char *id, const char *scope);
jq_err sq__op_claim(void *self, struct sctx *c, const struct claim_req *in,
                    struct job_list *out);
/* Inserts one pending job (a new id from the writer's generator). */
jq_err sq__insert_job(struct conn *cn, struct sctx *c, const struct job_new *in,
                      struct job *out);
/* A job list from a RETURNING/SELECT of JOB_COLS. */
jq_err sq__jobs(struct conn *cn, sqlite3_stmt *st, struct job_list *out);
/* Claims into out in pickup order (the claim part of claim and finish-and-claim). */
jq_err sq__claim(struct conn *cn, struct sctx *c, const struct claim_req *in,
                 struct job_list *out);
jq_err sq__op_has_due(void *self, struct sctx *c, const char *queue, bool *yes);
jq_err sq__op_finish_claim(void *self, struct sctx *c, const struct finish_req *in,
                          struct finish_out *out);
jq_err sq__op_heartbeat(void *self, struct sctx *c, const char *id, const char *lease,
                        const struct progress *p, struct job *out);
jq_err sq__op_complete(void *self, struct sctx *c, const char *id, const char *lease,
                       const char *result, struct job *out);
jq_err sq__op_fail(void *self, struct sctx *c, const char *id, const char *lease,
                   const struct fail_req *in, struct job *out);
jq_err sq__op_log_add(void *self, struct sctx *c, const char *id, const char *lease, int level,
                      const char *message, const char *metadata, struct log_row *out);
jq_err sq__op_logs(void *self, struct sctx *c, const char *id, const char *scope, int level,
                   int64_t after, int limit, struct log_list *out);

#endif
