/*
 * sq_store.c - the SQLite backend's handle: open (connections, migrations,
 * writer thread, read pool), close, tokens, maintenance and counters, and
 * the ops table that store.c dispatches through.
 */
#include "store/sqlite/sq_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

enum { READERS_MAX = 64 };

/* --- tokens --- */

struct token_args {
    const uint8_t *hash;
    const struct principal *in;
    struct principal *out;
    const char *name, *id;
    int64_t *count;
};

static jq_err w_token_add(struct conn *cn, struct sctx *c, void *arg)
{
    struct token_args *a = arg;
    sqlite3_stmt *st = sq__st(cn, c, ST_TOKEN_ADD);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->in->token_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, a->hash, TOKEN_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->in->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, role_name(a->in->role), -1, SQLITE_STATIC);
    sq__bind_opt_text(st, 5, a->name);
    sqlite3_bind_int64(st, 6, c->now_ms);
    if (a->in->active_limit >= 0)
        sqlite3_bind_int64(st, 7, a->in->active_limit);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, "token add");
}

static jq_err sq_token_add(void *self, struct sctx *c, const uint8_t hash[TOKEN_HASH_LEN],
                           const struct principal *p, const char *name)
{
    struct token_args a = {.hash = hash, .in = p, .name = name};
    return sq__write(self, c, w_token_add, &a);
}

static jq_err w_token_revoke(struct conn *cn, struct sctx *c, void *arg)
{
    struct token_args *a = arg;
    sqlite3_stmt *st = sq__st(cn, c, ST_TOKEN_REVOKE);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->now_ms);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq__rc(cn, rc, "token revoke");
    return sqlite3_changes(cn->db) ? JQ_E_OK : JQ_E_NOT_FOUND;
}

static jq_err sq_token_revoke(void *self, struct sctx *c, const char *token_id)
{
    struct token_args a = {.id = token_id};
    return sq__write(self, c, w_token_revoke, &a);
}

static jq_err r_token_find(struct conn *cn, struct sctx *c, void *arg)
{
    struct token_args *a = arg;
    sqlite3_stmt *st = sq__st(cn, c, ST_TOKEN_FIND);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_blob(st, 1, a->hash, TOKEN_HASH_LEN, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    jq_err err = JQ_E_UNAUTH;
    if (rc == SQLITE_ROW) {
        sq__text(st, 0, a->out->token_id, sizeof a->out->token_id);
        sq__text(st, 1, a->out->user_id, sizeof a->out->user_id);
        err = role_parse((const char *)sqlite3_column_text(st, 2), &a->out->role)
                  ? JQ_E_OK : JQ_E_UNAUTH;
        a->out->active_limit = sqlite3_column_type(st, 3) == SQLITE_NULL
                                   ? -1 : sqlite3_column_int64(st, 3);
    } else if (rc != SQLITE_DONE) {
        err = sq__rc(cn, rc, "token find");
    }
    sqlite3_reset(st);
    return err;
}

static jq_err sq_token_find(void *self, struct sctx *c, const uint8_t hash[TOKEN_HASH_LEN],
                            struct principal *out)
{
    struct token_args a = {.hash = hash, .out = out};
    return sq__read(self, c, r_token_find, &a);
}

/* Runs a one-row, one-integer-column statement; NULL reads as 0. */
static jq_err scalar(struct conn *cn, sqlite3_stmt *st, int64_t *out)
{
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? JQ_E_OK : sq__rc(cn, rc, sqlite3_sql(st));
}

static jq_err r_token_count(struct conn *cn, struct sctx *c, void *arg)
{
    struct token_args *a = arg;
    sqlite3_stmt *st = sq__st(cn, c, ST_TOKEN_COUNT);
    return st ? scalar(cn, st, a->count) : JQ_E_STORAGE;
}

static jq_err sq_token_count(void *self, struct sctx *c, int64_t *n)
{
    struct token_args a = {.count = n};
    return sq__read(self, c, r_token_count, &a);
}

static void sq_counters(void *self, struct store_counters *out)
{
    struct sq *s = self;
    out->ops = atomic_load(&s->ops);
    out->commits = atomic_load(&s->commits);
    out->fsync_us = atomic_load(&s->fsync_us);
    out->slow_statements = atomic_load(&s->slow);
    out->claims = atomic_load(&s->claims);
    out->last_full_ms = atomic_load(&s->last_full_ms);
    out->failed_ms = atomic_load(&s->failed_ms);
    for (int i = 0; i < GROUP_BUCKETS; i++)
        out->group[i] = atomic_load(&s->group_hist[i]);
    for (int i = 0; i < COMMIT_BUCKETS; i++)
        out->commit[i] = atomic_load(&s->commit_hist[i]);
}

struct explain_args { const char *what; char *out; size_t cap; };

static jq_err r_explain(struct conn *cn, struct sctx *c, void *arg)
{
    (void)c;
    struct explain_args *a = arg;
    return sq__explain(cn, a->what, a->out, a->cap);
}

static jq_err sq_explain(void *self, const char *what, char *out, size_t cap)
{
    struct explain_args a = {what, out, cap};
    return sq__read(self, NULL, r_explain, &a);
}

static void sq_set_notify(void *self, store_notify_fn fn, void *arg)
{
    struct sq *s = self;
    s->notify_arg = arg;
    s->notify = fn;
}

static void sq_set_claim_notify(void *self, store_notify_fn fn, void *arg)
{
    struct sq *s = self;
    s->claim_notify_arg = arg;
    s->claim_notify = fn;
}

/* --- open / close --- */

static void close_readers(struct sq *s)
{
    for (int i = 0; s->readers && i < s->cfg.readers; i++)
        if (s->readers[i].db)
            sq__conn_close(&s->readers[i]);
    free(s->readers);
}

static jq_err open_readers(struct sq *s)
{
    s->readers = calloc((size_t)s->cfg.readers, sizeof *s->readers);
    if (!s->readers)
        return JQ_E_NOMEM;
    for (int i = 0; i < s->cfg.readers; i++) {
        jq_err err = sq__conn_open(s->path, true, 0, s->cfg.vfs, &s->readers[i]);
        if (err)
            return err;
        sq__register_funcs(&s->readers[i], &s->cfg.retry);   /* EXPLAIN needs them */
        sq__watch_slow(&s->readers[i], s);
        s->readers[i].next_free = s->free_readers;
        s->free_readers = &s->readers[i];
    }
    return JQ_E_OK;
}

static void sq_close(void *self)
{
    struct sq *s = self;
    sq__writer_stop(s);
    sq__ckpt_stop(s);            /* after the writer: its last commits get checkpointed */
    close_readers(s);
    if (atomic_load(&s->failed))  /* fail-stop: no checkpoint; the restart recovers the WAL */
        sqlite3_db_config(s->wconn.db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    else
        sqlite3_exec(s->wconn.db, "PRAGMA optimize", NULL, NULL, NULL);
    sq__conn_close(&s->wconn);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->rmu);
    pthread_cond_destroy(&s->rcond);
    free(s->path);
    free(s);
}

static const struct store_ops sq_ops = {
    .version = 1,
    .name = "sqlite",
    .create = sq__op_create,
    .create_batch = sq__op_create_batch,
    .cancel_many = sq__op_cancel_many,
    .stats = sq__op_stats,
    .maint = sq__op_maint,
    .events = sq__op_events,
    .log_query_ok = sq__op_log_query_ok,
    .log_search = sq__op_log_search,
    .get = sq__op_get,
    .list = sq__op_list,
    .cancel = sq__op_cancel,
    .retry = sq__op_retry,
    .remove = sq__op_remove,
    .claim = sq__op_claim,
    .finish_claim = sq__op_finish_claim,
    .has_due = sq__op_has_due,
    .workflow_create = sq__op_workflow_create,
    .workflow_get = sq__op_workflow_get,
    .schedule_add = sq__op_schedule_add,
    .schedule_list = sq__op_schedule_list,
    .schedule_get = sq__op_schedule_get,
    .schedule_set = sq__op_schedule_set,
    .schedules_due = sq__op_schedules_due,
    .schedule_fire = sq__op_schedule_fire,
    .heartbeat = sq__op_heartbeat,
    .complete = sq__op_complete,
    .fail = sq__op_fail,
    .log_add = sq__op_log_add,
    .logs = sq__op_logs,
    .token_add = sq_token_add,
    .token_revoke = sq_token_revoke,
    .token_find = sq_token_find,
    .token_count = sq_token_count,
    .counters = sq_counters,
    .explain = sq_explain,
    .set_notify = sq_set_notify,
    .set_claim_notify = sq_set_claim_notify,
    .close = sq_close,
};

jq_err sq_open(const struct store_cfg *cfg, const struct store_ops **ops, void **self)
{
    jq_err err = JQ_E_NOMEM;
    struct sq *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(cfg->path)))
        goto undo_alloc;
    s->cfg = *cfg;
    s->cfg.path = s->path;
    if (s->cfg.readers < 1 || s->cfg.readers > READERS_MAX)
        s->cfg.readers = 4;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_mutex_init(&s->rmu, NULL);
    pthread_cond_init(&s->rcond, NULL);
    /* full (2): the WAL sync before the reply is the syncer's (sq_writer.c) */
    s->pipelined = cfg->sync == 2;
    if ((err = sq__conn_open(s->path, false, s->pipelined ? 1 : cfg->sync, cfg->vfs,
                             &s->wconn)))
        goto undo_alloc;
    if ((err = sq__migrate(&s->wconn)))
        goto undo_conn;
    sq__register_funcs(&s->wconn, &s->cfg.retry);
    sq__watch_slow(&s->wconn, s);
    if ((err = open_readers(s)))
        goto undo_readers;
    if ((err = sq__ckpt_start(s)))
        goto undo_readers;
    if ((err = sq__writer_start(s)))
        goto undo_ckpt;
    *ops = &sq_ops;
    *self = s;
    return JQ_E_OK;
undo_ckpt:
    sq__ckpt_stop(s);
undo_readers:
    close_readers(s);
undo_conn:
    sq__conn_close(&s->wconn);
undo_alloc:
    if (s)
        free(s->path);
    free(s);
    return err;
}
