/*
 * pg_store.c - the PostgreSQL backend's handle: open (migrations, pool,
 * listener/leader session), close, counters, and the ops table store.c
 * dispatches through. Selected by a --db of postgres://… or postgresql://….
 */
#include "store/postgres/pg_int.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

enum { POOL_MAX = 256 };

static void pg_counters(void *self, struct store_counters *out)
{
    struct pg *s = self;
    out->ops = atomic_load(&s->ops);
    out->commits = atomic_load(&s->commits);
    out->fsync_us = atomic_load(&s->fsync_us);
    out->claims = atomic_load(&s->claims);
}

static void pg_set_notify(void *self, store_notify_fn fn, void *arg)
{
    struct pg *s = self;
    pthread_mutex_lock(&s->nmu);
    s->notify = fn;
    s->notify_arg = arg;
    pthread_mutex_unlock(&s->nmu);
}

static bool pg_is_leader(void *self)
{
    struct pg *s = self;
    return atomic_load(&s->leader);
}

static void pg_close(void *self)
{
    struct pg *s = self;
    pg__listener_stop(s);
    pg__pool_close(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->idmu);
    pthread_mutex_destroy(&s->nmu);
    pthread_mutex_destroy(&s->fmu);
    pthread_mutex_destroy(&s->cbmu);
    pthread_mutex_destroy(&s->dmu);
    pthread_cond_destroy(&s->dcond);
    pthread_cond_destroy(&s->cbcond);
    free(s->conninfo);
    free(s);
}

static const struct store_ops pg_ops = {
    .version = 1,
    .name = "postgres",
    .create = pg__op_create,
    .create_batch = pg__op_create_batch,
    .cancel_many = pg__op_cancel_many,
    .stats = pg__op_stats,
    .maint = pg__op_maint,
    .events = pg__op_events,
    .log_query_ok = pg__op_log_query_ok,
    .log_search = pg__op_log_search,
    .get = pg__op_get,
    .list = pg__op_list,
    .cancel = pg__op_cancel,
    .retry = pg__op_retry,
    .remove = pg__op_remove,
    .claim = pg__op_claim,
    .has_due = pg__op_has_due,
    .workflow_create = pg__op_workflow_create,
    .workflow_get = pg__op_workflow_get,
    .schedule_add = pg__op_schedule_add,
    .schedule_list = pg__op_schedule_list,
    .schedule_get = pg__op_schedule_get,
    .schedule_set = pg__op_schedule_set,
    .schedules_due = pg__op_schedules_due,
    .schedule_fire = pg__op_schedule_fire,
    .finish_claim = pg__op_finish_claim,
    .heartbeat = pg__op_heartbeat,
    .complete = pg__op_complete,
    .fail = pg__op_fail,
    .log_add = pg__op_log_add,
    .logs = pg__op_logs,
    .token_add = pg__op_token_add,
    .token_revoke = pg__op_token_revoke,
    .token_find = pg__op_token_find,
    .token_count = pg__op_token_count,
    .counters = pg_counters,
    .explain = pg__op_explain,
    .set_notify = pg_set_notify,
    .is_leader = pg_is_leader,
    .close = pg_close,
};

jq_err pg_open(const struct store_cfg *cfg, const struct store_ops **ops, void **self)
{
    jq_err err = JQ_E_NOMEM;
    struct pg *s = calloc(1, sizeof *s);
    if (!s || !(s->conninfo = strdup(cfg->path)))
        goto undo_alloc;
    s->cfg = *cfg;
    s->cfg.path = s->conninfo;
    if (s->cfg.pool < 1 || s->cfg.pool > POOL_MAX)
        s->cfg.pool = 16;
    uint8_t rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    for (int i = 0; i < 8; i++)
        snprintf(s->node + 2 * i, 3, "%02x", rnd[i]);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_mutex_init(&s->idmu, NULL);
    pthread_mutex_init(&s->nmu, NULL);
    pthread_mutex_init(&s->fmu, NULL);
    pthread_mutex_init(&s->cbmu, NULL);
    pthread_cond_init(&s->cbcond, NULL);
    pthread_mutex_init(&s->dmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* pg_due.c waits on mono ms */
    pthread_cond_init(&s->dcond, &ca);
    pthread_condattr_destroy(&ca);
    if ((err = pg__migrate(s)))
        goto undo_alloc;
    if ((err = pg__pool_open(s)))
        goto undo_pool;
    if ((err = pg__listener_start(s)))
        goto undo_pool;
    *ops = &pg_ops;
    *self = s;
    return JQ_E_OK;
undo_pool:
    pg__pool_close(s);
undo_alloc:
    if (s)
        free(s->conninfo);
    free(s);
    return err;
}
