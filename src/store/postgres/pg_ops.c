/*
 * pg_ops.c - the job operations of the PostgreSQL backend: create (unique
 * key, dedup, result cache, active limit, insert), bulk create and cancel,
 * reads, user transitions, and the worker operations (claim with FOR UPDATE
 * SKIP LOCKED, heartbeat, complete, fail, finish-and-claim, logs). Each runs
 * a fixed number of statements whatever the number of rows.
 *
 * Creates of one user serialize on a transaction-scoped advisory lock keyed
 * by the user, so the dedup lookup, the active-limit count and the insert
 * see every earlier create of that user (READ COMMITTED takes a new snapshot
 * per statement, after the lock was granted).
 */
#include "store/postgres/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEASE_OK "id=$1 AND status='processing' AND lease_token=$2 AND lease_expires_at>$3"
#define SCOPE "id=$1 AND ($2::text IS NULL OR user_id=$2)"
#define RETRYING "($4::boolean AND attempts < max_attempts)"
#define NEW_LEASE "replace(gen_random_uuid()::text, '-', '')"

/* --- shared helpers --- */

/* Runs a statement expected to yield at most one job. out is zeroed or holds a job (the
 * pg__op_* entries zero it): a transaction retried after a lost connection loads again,
 * and what the failed attempt loaded is freed (found by T13's backend kills). */
static jq_err one_job(struct pgconn *cn, struct sctx *c, const char *sql, const struct pp *p,
                      struct job *out, bool *found)
{
    jq_err err;
    PGresult *r = pg__q(cn, c, sql, p, &err);
    *found = r && PQntuples(r) > 0;
    if (*found && out) {
        job_fini(out);
        pg__load_job(r, 0, out);
    }
    PQclear(r);
    return err;
}

/* Loads the rows of r (NULL: none) into out, replacing what a failed attempt of the
 * transaction loaded; returns err, or JQ_E_NOMEM. */
static jq_err load_jobs(const PGresult *r, jq_err err, struct job_list *out)
{
    job_list_fini(out);              /* a retried transaction starts over */
    int n = r ? PQntuples(r) : 0;
    if (n > 0 && !(out->jobs = calloc((size_t)n, sizeof *out->jobs)))
        err = JQ_E_NOMEM;
    for (int i = 0; out->jobs && i < n; i++)
        pg__load_job(r, i, &out->jobs[out->n++]);
    return err;
}

static jq_err many_jobs(struct pgconn *cn, struct sctx *c, const char *sql, const struct pp *p,
                        struct job_list *out)
{
    jq_err err;
    PGresult *r = pg__q(cn, c, sql, p, &err);
    err = load_jobs(r, err, out);
    PQclear(r);
    return err;
}

/* After a write matched nothing: 404 (missing or not the user's) or 409. */
static jq_err why_not(struct pgconn *cn, struct sctx *c, const char *id, const char *scope,
                      const char *lease)
{
    struct pp p = {0};
    pp_s(&p, id);
    pp_s(&p, scope);
    jq_err err;
    PGresult *r = pg__q(cn, c, "SELECT status FROM jobs WHERE " SCOPE, &p, &err);
    if (r)
        err = PQntuples(r) ? (lease ? JQ_E_LEASE : JQ_E_STATE) : JQ_E_NOT_FOUND;
    PQclear(r);
    return err;
}

/* Serializes the creates of one user until the end of the transaction. */
static jq_err lock_user(struct pgconn *cn, const char *user)
{
    struct pp p = {0};
    pp_s(&p, user);
    return pg__exec(cn, NULL, "SELECT pg_advisory_xact_lock(1785684592, hashtext($1))", &p,
                    NULL);
}

/* --- create --- */

struct create_args {
    const struct job_new *in;
    struct job *out;
    enum create_outcome *how;
    char id[ID_LEN + 1];       /* made before the first attempt: a retry finds its own job */
    bool attempted;
};

static jq_err find_one(struct pgconn *cn, struct sctx *c, const char *sql,
                       const struct job_new *in, int64_t since, struct job *out, bool *found)
{
    struct pp p = {0};
    pp_s(&p, in->user_id);
    if (since < 0) {
        pp_s(&p, in->unique_key);
    } else {
        pp_s(&p, in->type);
        pp_s(&p, in->params_hash);
        pp_i(&p, since);
    }
    return one_job(cn, c, sql, &p, out, found);
}

static jq_err find_existing(struct pgconn *cn, struct sctx *c, struct create_args *a,
                            bool *found)
{
    const struct job_new *in = a->in;
    jq_err err = JQ_E_OK;
    *found = false;
    *a->how = CREATE_DEDUP;
    if (in->unique_key)
        err = find_one(cn, c, "SELECT " PG_JOB_COLS " FROM jobs WHERE user_id=$1"
                       " AND unique_key=$2 AND status IN ('pending','processing')",
                       in, -1, a->out, found);
    if (!err && !*found && in->dedup_window_ms > 0 && !in->unique_key)
        err = find_one(cn, c, "SELECT " PG_JOB_COLS " FROM jobs WHERE user_id=$1 AND type=$2"
                       " AND params_hash=$3 AND status IN ('pending','processing')"
                       " AND created_at>=$4 ORDER BY created_at DESC LIMIT 1",
                       in, c->now_ms - in->dedup_window_ms, a->out, found);
    if (!err && !*found && in->cache_ttl_ms > 0) {
        *a->how = CREATE_CACHED;
        err = find_one(cn, c, "SELECT " PG_JOB_COLS " FROM jobs WHERE user_id=$1 AND type=$2"
                       " AND params_hash=$3 AND status='completed' AND completed_at>=$4"
                       " ORDER BY completed_at DESC LIMIT 1",
                       in, c->now_ms - in->cache_ttl_ms, a->out, found);
    }
    return err;
}

static jq_err active_count(struct pgconn *cn, struct sctx *c, const char *user, int64_t *n)
{
    struct pp p = {0};
    pp_s(&p, user);
    jq_err err;
    PGresult *r = pg__q(cn, c, "SELECT coalesce(sum(n), 0) FROM counts WHERE dim='u'"
                        " AND key=$1 AND status IN ('pending','processing')", &p, &err);
    *n = r ? pg__int(r, 0, 0) : 0;
    PQclear(r);
    return err;
}

jq_err pg__insert_job(struct pgconn *cn, struct sctx *c, const char *id,
                      const struct job_new *in, struct job *out)
{
    struct pp p = {0};
    pp_s(&p, id);
    pp_s(&p, in->user_id);
    pp_s(&p, in->queue);
    pp_s(&p, in->type);
    pp_s(&p, in->params);
    pp_i(&p, in->priority);
    pp_i(&p, in->run_at);
    pp_i(&p, c->now_ms);
    pp_i(&p, in->max_attempts);
    if (in->expires_at)
        pp_i(&p, in->expires_at);
    else
        pp_s(&p, NULL);
    pp_s(&p, in->params_hash);
    pp_s(&p, in->unique_key);
    bool found;
    jq_err err = one_job(cn, c,
        "INSERT INTO jobs(id,user_id,queue,type,params,status,priority,run_at,created_at,"
        "updated_at,attempts,max_attempts,expires_at,params_hash,unique_key) "
        "VALUES($1,$2,$3,$4,$5::jsonb,'pending',$6,$7,$8,$8,0,$9,$10,$11,$12) RETURNING "
        PG_JOB_COLS, &p, out, &found);
    cn->wrote = true;
    if (!err && in->run_at <= c->now_ms)
        cn->wake = true;
    return err;
}

/* Debounce: a pending job with the unique_key takes the new params/run_at. */
static jq_err replace_pending(struct pgconn *cn, struct sctx *c, const struct job_new *in,
                              struct job *out)
{
    struct pp p = {0};
    pp_s(&p, out->id);
    pp_s(&p, in->params);
    pp_s(&p, in->params_hash);
    pp_i(&p, in->priority);
    pp_i(&p, in->run_at);
    pp_i(&p, c->now_ms);
    struct job j = {0};
    bool found;
    jq_err err = one_job(cn, c, "UPDATE jobs SET params=$2::jsonb, params_hash=$3, priority=$4,"
                         " run_at=$5, updated_at=$6 WHERE id=$1 AND status='pending'"
                         " RETURNING " PG_JOB_COLS, &p, &j, &found);
    if (!err && found) {
        job_fini(out);
        *out = j;
        cn->wrote = cn->wake = true;
    }
    return err;
}

/* depends_on: checks the parents (the user's own jobs, locked FOR SHARE so
 * none finishes before this transaction's job_deps rows are visible to its
 * trigger), links them, then blocks the new job by its unfinished parents,
 * or cancels it at once when one failed (policy "cancel"). */
static jq_err link_parents(struct pgconn *cn, struct sctx *c, const struct job_new *in,
                           struct job *j)
{
    json_t *arr = json_array();
    for (int i = 0; i < in->n_deps; i++)
        json_array_append_new(arr, json_string(in->depends_on[i]));
    char *ids = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!ids)
        return JQ_E_NOMEM;
    struct pp p = {0};
    pp_s(&p, ids);
    pp_s(&p, in->user_id);
    pp_s(&p, j->id);
    jq_err err;
    PGresult *r = pg__q(cn, c, "WITH par AS (SELECT id FROM jobs WHERE id IN"
        " (SELECT jsonb_array_elements_text($1::jsonb)) AND user_id=$2 FOR SHARE),"
        " ins AS (INSERT INTO job_deps(parent_id, child_id) SELECT id, $3 FROM par"
        " ON CONFLICT DO NOTHING) SELECT count(*) FROM par", &p, &err);
    int64_t found = r ? pg__int(r, 0, 0) : -1;
    PQclear(r);
    free(ids);
    if (!err && found != in->n_deps)
        err = JQ_E_DEPS;
    if (err)
        return err;
    struct pp q = {0};
    pp_s(&q, j->id);
    pp_s(&q, in->on_parent_failure ? in->on_parent_failure : "cancel");
    pp_i(&q, c->now_ms);
    bool hit;
    struct job nj = {0};
    err = one_job(cn, c, "WITH b AS (SELECT"
        " count(*) FILTER (WHERE p.status IN ('pending','processing')) AS open,"
        " count(*) FILTER (WHERE p.status IN ('failed','cancelled')) AS bad"
        " FROM job_deps d JOIN jobs p ON p.id=d.parent_id WHERE d.child_id=$1)"
        " UPDATE jobs SET on_parent_failure=$2, blocked=b.open,"
        " status=CASE WHEN $2='cancel' AND b.bad>0 THEN 'cancelled' ELSE status END,"
        " error_code=CASE WHEN $2='cancel' AND b.bad>0 THEN 'parent_failed' END,"
        " error_message=CASE WHEN $2='cancel' AND b.bad>0"
        "  THEN 'a job it depends on failed or was cancelled' END,"
        " completed_at=CASE WHEN $2='cancel' AND b.bad>0 THEN $3::bigint END, updated_at=$3"
        " FROM b WHERE id=$1 RETURNING " PG_JOB_COLS, &q, &nj, &hit);
    if (err || !hit)
        return err ? err : JQ_E_INTERNAL;
    job_fini(j);
    *j = nj;
    return err;
}

static jq_err w_create(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct create_args *a = arg;
    const struct job_new *in = a->in;
    bool found;
    jq_err err;
    if (a->attempted) {                 /* a retry: did the first attempt commit? */
        struct pp p = {0};
        pp_s(&p, a->id);
        if ((err = one_job(cn, NULL, "SELECT " PG_JOB_COLS " FROM jobs WHERE id=$1", &p,
                           a->out, &found)) || found) {
            *a->how = CREATE_NEW;
            return err;
        }
    }
    a->attempted = true;
    if (in->unique_key || in->dedup_window_ms > 0 || in->active_limit > 0)
        if ((err = lock_user(cn, in->user_id)))
            return err;
    if ((err = find_existing(cn, c, a, &found)))
        return err;
    if (found && in->replace && in->unique_key && a->out->status == JOB_PENDING)
        return replace_pending(cn, c, in, a->out);
    if (found)
        return JQ_E_OK;
    *a->how = CREATE_NEW;
    int64_t active = 0;
    if (in->active_limit > 0 && (err = active_count(cn, c, in->user_id, &active)))
        return err;
    if (in->active_limit > 0 && active + 1 > in->active_limit)
        return JQ_E_LIMIT;
    if ((err = pg__insert_job(cn, c, a->id, in, a->out)) || in->n_deps == 0)
        return err;
    return link_parents(cn, c, in, a->out);
}

jq_err pg__create_one(struct pg *s, struct sctx *c, const struct job_new *in, const char *id,
                      struct job *out, enum create_outcome *how)
{
    struct create_args a = {in, out, how, "", id != NULL};
    if (id)
        snprintf(a.id, sizeof a.id, "%s", id);
    else
        pg__new_id(s, c->now_ms, a.id);
    return pg__tx(s, c, PG_WRITE, in->user_id, true, w_create, &a);
}

/* --- bulk create: one INSERT … SELECT FROM jsonb_to_recordset --- */

struct batch_args {
    const struct batch_req *in;
    char *items;
    struct job_list *out;
    int *created;
};

/* [{"id","q","t","p","h","pr","r","m","e","k"}…]; a unique_key that repeats in the
 * batch is sent once (PostgreSQL's upsert may not touch a row twice): its first
 * item, or its last when replacing. malloc'd. */
static char *batch_json(struct pg *s, int64_t now, const struct batch_req *in)
{
    json_t *arr = json_array();
    for (int i = 0; i < in->n; i++) {
        const struct job_new *j = &in->items[i];
        bool skip = false;
        for (int k = 0; j->unique_key && k < in->n && !skip; k++)
            if (k != i && in->items[k].unique_key &&
                strcmp(in->items[k].unique_key, j->unique_key) == 0)
                skip = in->replace ? k > i : k < i;
        if (skip)
            continue;
        char id[ID_LEN + 1];
        pg__new_id(s, now, id);
        json_t *p = json_loads(j->params, 0, NULL);
        json_array_append_new(arr, json_pack(
            "{s:s, s:s, s:s, s:o, s:s, s:i, s:I, s:i, s:I, s:s?}", "id", id, "q", j->queue,
            "t", j->type, "p", p ? p : json_object(), "h", j->params_hash, "pr", j->priority,
            "r", (json_int_t)j->run_at, "m", j->max_attempts, "e", (json_int_t)j->expires_at,
            "k", j->unique_key));
    }
    char *out = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return out;
}

static const struct job *by_key(const struct job_list *l, char *const *keys,
                                const char *key)
{
    for (int r = 0; r < l->n; r++)
        if (keys[r] && strcmp(keys[r], key) == 0)
            return &l->jobs[r];
    return NULL;
}

static void copy_job(struct job *dst, const struct job *src)
{
    *dst = *src;
    dst->params = src->params ? strdup(src->params) : NULL;
    dst->result = src->result ? strdup(src->result) : NULL;
    dst->error_message = src->error_message ? strdup(src->error_message) : NULL;
    dst->progress_message = src->progress_message ? strdup(src->progress_message) : NULL;
}

/* Rows (new ones in id order = item order, then existing keyed ones) -> one job per item. */
static jq_err batch_order(const struct batch_req *in, const PGresult *r, struct job_list *out)
{
    int n = PQntuples(r), next_new = 0;
    struct job_list rows = {.jobs = calloc((size_t)n + 1, sizeof *rows.jobs), .total = -1};
    char **keys = calloc((size_t)n + 1, sizeof *keys);
    out->jobs = calloc((size_t)in->n, sizeof *out->jobs);
    jq_err err = rows.jobs && keys && out->jobs ? JQ_E_OK : JQ_E_NOMEM;
    for (int i = 0; !err && i < n; i++) {
        pg__load_job(r, i, &rows.jobs[rows.n++]);
        keys[i] = pg__dup(r, i, PG_NCOLS);
    }
    for (int i = 0; !err && i < in->n; i++) {
        const struct job *j = in->items[i].unique_key
                                  ? by_key(&rows, keys, in->items[i].unique_key) : NULL;
        while (!j && next_new < rows.n && keys[next_new])
            next_new++;
        if (!j && next_new < rows.n)
            j = &rows.jobs[next_new++];
        if (!j)
            err = JQ_E_INTERNAL;
        else
            copy_job(&out->jobs[out->n++], j);
    }
    for (int i = 0; keys && i < n; i++)
        free(keys[i]);
    free(keys);
    job_list_fini(&rows);
    return err;
}

static jq_err w_batch(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct batch_args *a = arg;
    int64_t before = 0, after = 0, limit = a->in->active_limit;
    jq_err err = lock_user(cn, a->in->user_id);
    if (!err)
        err = active_count(cn, c, a->in->user_id, &before);
    struct pp p = {0};
    pp_s(&p, a->in->user_id);
    pp_i(&p, c->now_ms);
    pp_s(&p, a->items);
    pp_s(&p, a->in->replace ? "true" : "false");
    PGresult *r = err ? NULL : pg__q(cn, c,
        "WITH ins AS (INSERT INTO jobs(id,user_id,queue,type,params,status,priority,run_at,"
        "created_at,updated_at,attempts,max_attempts,expires_at,params_hash,unique_key)"
        " SELECT x.id, $1, x.q, x.t, x.p, 'pending', x.pr, x.r, $2, $2, 0, x.m,"
        "  nullif(x.e, 0), x.h, x.k FROM jsonb_to_recordset($3::jsonb) AS x(id text, q text,"
        "  t text, p jsonb, h text, pr integer, r bigint, m integer, e bigint, k text)"
        " ON CONFLICT (user_id, unique_key)"
        "   WHERE unique_key IS NOT NULL AND status IN ('pending','processing')"
        " DO UPDATE SET params=excluded.params, priority=excluded.priority,"
        "   run_at=excluded.run_at, params_hash=excluded.params_hash, updated_at=$2"
        "   WHERE $4::boolean AND jobs.status='pending' RETURNING " PG_JOB_COLS ", unique_key)"
        " SELECT * FROM (SELECT * FROM ins ORDER BY id) i UNION ALL"
        " SELECT " PG_JOB_COLS ", unique_key FROM jobs WHERE user_id=$1"
        "  AND status IN ('pending','processing') AND unique_key IN (SELECT k FROM"
        "  jsonb_to_recordset($3::jsonb) AS y(k text) WHERE k IS NOT NULL)"
        "  AND id NOT IN (SELECT id FROM ins)", &p, &err);
    if (r)
        err = active_count(cn, c, a->in->user_id, &after);
    *a->created = (int)(after - before);
    if (!err && limit > 0 && *a->created > 0 && after > limit)
        err = JQ_E_LIMIT;
    if (!err)
        err = batch_order(a->in, r, a->out);
    PQclear(r);
    cn->wrote = cn->wake = true;
    return err;
}

jq_err pg__op_create_batch(void *self, struct sctx *c, const struct batch_req *in,
                           struct job_list *out, int *created)
{
    struct batch_args a = {in, batch_json(self, c->now_ms, in), out, created};
    memset(out, 0, sizeof *out);
    out->total = -1;
    jq_err err = a.items ? pg__tx(self, c, PG_WRITE, in->user_id, false, w_batch, &a)
                         : JQ_E_NOMEM;
    free(a.items);
    if (err)
        job_list_fini(out);
    return err;
}

/* --- bulk cancel --- */

struct cancel_args { const struct cancel_req *in; char *ids; int *n; };

#define CANCEL_SET "UPDATE jobs SET status='cancelled', completed_at=$2, updated_at=$2," \
    " lease_token=NULL, lease_expires_at=NULL WHERE "

static jq_err w_cancel_many(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct cancel_args *a = arg;
    const struct cancel_req *in = a->in;
    struct pp p = {0};
    const char *sql;
    pp_s(&p, in->ids ? a->ids : in->scope);
    pp_i(&p, c->now_ms);
    if (in->ids) {
        pp_s(&p, in->scope);
        sql = CANCEL_SET "id IN (SELECT jsonb_array_elements_text($1::jsonb))"
              " AND ($3::text IS NULL OR user_id=$3) AND status IN ('pending','processing')";
    } else {
        pp_s(&p, in->status >= 0 ? job_status_name(in->status) : NULL);
        pp_s(&p, in->type);
        pp_s(&p, in->queue);
        pp_i(&p, in->max);
        sql = CANCEL_SET "id IN (SELECT id FROM jobs WHERE ($1::text IS NULL OR user_id=$1)"
              " AND status IN ('pending','processing') AND ($3::text IS NULL OR status=$3)"
              " AND ($4::text IS NULL OR type=$4) AND ($5::text IS NULL OR queue=$5)"
              " LIMIT $6 FOR UPDATE SKIP LOCKED)";
    }
    cn->wrote = true;
    return pg__exec(cn, c, sql, &p, a->n);
}

jq_err pg__op_cancel_many(void *self, struct sctx *c, const struct cancel_req *in, int *n)
{
    struct cancel_args a = {in, NULL, n};
    *n = 0;
    if (in->ids) {
        json_t *arr = json_array();
        for (int i = 0; i < in->n_ids; i++)
            json_array_append_new(arr, json_string(in->ids[i]));
        a.ids = json_dumps(arr, JSON_COMPACT);
        json_decref(arr);
        if (!a.ids)
            return JQ_E_NOMEM;
    }
    jq_err err = pg__tx(self, c, PG_WRITE, in->scope, false, w_cancel_many, &a);
    free(a.ids);
    return err;
}

/* --- reads of one job --- */

struct id_args {
    const char *id, *scope, *lease;
    struct job *out;
    const void *extra;
    const struct retry_policy *rp;
};

jq_err pg__get(struct pgconn *cn, struct sctx *c, const char *id, const char *scope,
               struct job *out)
{
    struct pp p = {0};
    pp_s(&p, id);
    pp_s(&p, scope);
    bool found;
    jq_err err = one_job(cn, c, "SELECT " PG_JOB_COLS " FROM jobs WHERE " SCOPE, &p, out,
                         &found);
    return err ? err : found ? JQ_E_OK : JQ_E_NOT_FOUND;
}

static jq_err r_get(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct id_args *a = arg;
    return pg__get(cn, c, a->id, a->scope, a->out);
}

jq_err pg__op_get(void *self, struct sctx *c, const char *id, const char *scope,
                  struct job *out)
{
    memset(out, 0, sizeof *out);             /* see one_job */
    struct id_args a = {.id = id, .scope = scope, .out = out};
    return pg__tx(self, c, PG_READ, scope, true, r_get, &a);
}

/* --- user transitions: cancel, retry, delete --- */

static jq_err scoped_move(struct pgconn *cn, struct sctx *c, struct id_args *a, const char *sql)
{
    struct pp p = {0};
    pp_s(&p, a->id);
    pp_s(&p, a->scope);
    pp_i(&p, c->now_ms);
    bool found;
    jq_err err = one_job(cn, c, sql, &p, a->out, &found);
    cn->wrote = found;
    if (err)
        return err;
    return found ? JQ_E_OK : why_not(cn, c, a->id, a->scope, NULL);
}

static jq_err w_cancel(struct pgconn *cn, struct sctx *c, void *arg)
{
    return scoped_move(cn, c, arg,
        "UPDATE jobs SET status='cancelled', completed_at=$3, updated_at=$3, lease_token=NULL,"
        " lease_expires_at=NULL WHERE " SCOPE " AND status IN ('pending','processing')"
        " RETURNING " PG_JOB_COLS);
}

static jq_err w_retry(struct pgconn *cn, struct sctx *c, void *arg)
{
    jq_err err = scoped_move(cn, c, arg,
        "UPDATE jobs SET status='pending', attempts=0, run_at=$3, updated_at=$3,"
        " started_at=NULL, completed_at=NULL, error_message=NULL, error_code=NULL,"
        " result=NULL, worker_id=NULL, lease_token=NULL, lease_expires_at=NULL,"
        " progress_percent=NULL, progress_message=NULL,"
        " expires_at=CASE WHEN expires_at IS NULL THEN NULL"
        "   ELSE $3 + (expires_at - created_at) END"
        " WHERE " SCOPE " AND status IN ('failed','cancelled') RETURNING " PG_JOB_COLS);
    cn->wake = !err;
    return err;
}

jq_err pg__op_cancel(void *self, struct sctx *c, const char *id, const char *scope,
                     struct job *out)
{
    memset(out, 0, sizeof *out);             /* see one_job */
    struct id_args a = {.id = id, .scope = scope, .out = out};
    return pg__tx(self, c, PG_WRITE, scope, false, w_cancel, &a);
}

jq_err pg__op_retry(void *self, struct sctx *c, const char *id, const char *scope,
                    struct job *out)
{
    memset(out, 0, sizeof *out);             /* see one_job */
    struct id_args a = {.id = id, .scope = scope, .out = out};
    return pg__tx(self, c, PG_WRITE, scope, false, w_retry, &a);
}

static jq_err w_remove(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct id_args *a = arg;
    struct pp p = {0};
    pp_s(&p, a->id);
    pp_s(&p, a->scope);
    int n = 0;
    jq_err err = pg__exec(cn, c, "DELETE FROM jobs WHERE " SCOPE
                          " AND status IN ('completed','failed','cancelled')", &p, &n);
    if (err)
        return err;
    if (!n)
        return why_not(cn, c, a->id, a->scope, NULL);
    p.n = 1;
    return pg__exec(cn, c, "DELETE FROM job_logs WHERE job_id=$1", &p, NULL);
}

jq_err pg__op_remove(void *self, struct sctx *c, const char *id, const char *scope)
{
    struct id_args a = {.id = id, .scope = scope};
    return pg__tx(self, c, PG_WRITE, scope, false, w_remove, &a);
}

/* --- list --- */

enum { LF_USER = 1, LF_STATUS = 2, LF_TYPE = 4, LF_QUEUE = 8, LF_ASC = 16, LF_COUNT = 32,
       LF_AFTER = 64 };

struct list_args { const struct job_filter *f; char *tsq; struct job_list *out; };

/* Appends " AND <cond>" with the next parameter number substituted for %d. */
static int add_cond(char *sql, int n, size_t cap, struct pp *p, const char *fmt,
                    const char *val)
{
    pp_s(p, val);
    return n + snprintf(sql + n, cap - (size_t)n, fmt, p->n);
}

/* Builds the list (count: true) statement of a filter and its parameters. */
static void list_sql(const struct job_filter *f, const char *tsq, bool count, char *sql,
                     size_t cap, struct pp *p)
{
    int n = snprintf(sql, cap, "SELECT %s FROM jobs WHERE true",
                     count ? "count(*)" : PG_JOB_COLS);
    if (f->user_id)
        n = add_cond(sql, n, cap, p, " AND user_id=$%d", f->user_id);
    if (f->status >= 0)
        n = add_cond(sql, n, cap, p, " AND status=$%d", job_status_name(f->status));
    if (f->type)
        n = add_cond(sql, n, cap, p, " AND type=$%d", f->type);
    if (f->queue)
        n = add_cond(sql, n, cap, p, " AND queue=$%d", f->queue);
    if (f->params_q)
        n = add_cond(sql, n, cap, p, " AND params @> $%d::jsonb", f->params_q);
    if (f->result_q)
        n = add_cond(sql, n, cap, p, " AND result @> $%d::jsonb", f->result_q);
    if (tsq) {
        n = add_cond(sql, n, cap, p, " AND id IN (SELECT l.job_id FROM job_logs l WHERE"
                     " l.tsv @@ to_tsquery('simple', $%d)", tsq);
        n = f->user_id ? add_cond(sql, n, cap, p, " AND l.user_id=$%d)", f->user_id)
                       : n + snprintf(sql + n, cap - (size_t)n, ")");
    }
    if (count)
        return;
    const char *dir = f->asc ? "ASC" : "DESC";
    if (f->after) {
        pp_i(p, f->after_created);
        pp_s(p, f->after_id);
        n += snprintf(sql + n, cap - (size_t)n, " AND (created_at, id) %s ($%d, $%d)",
                      f->asc ? ">" : "<", p->n - 1, p->n);
    }
    pp_i(p, f->limit);
    pp_i(p, f->offset);
    snprintf(sql + n, cap - (size_t)n, " ORDER BY created_at %s, id %s LIMIT $%d OFFSET $%d",
             dir, dir, p->n - 1, p->n);
}

/* The counter that answers a filter's total, if one does (as in the SQLite backend). */
static bool counter_for(const struct job_filter *f, const char **dim, const char **key)
{
    if (f->params_q || f->result_q || f->log_q)
        return false;
    if (f->user_id && !f->type && !f->queue) {
        *dim = "u";
        *key = f->user_id;
    } else if (!f->user_id && !(f->type && f->queue)) {
        *dim = f->type ? "t" : "q";
        *key = f->type ? f->type : f->queue;
    } else {
        return false;
    }
    return true;
}

static jq_err count_jobs(struct pgconn *cn, struct sctx *c, struct list_args *a, int64_t *total)
{
    const struct job_filter *f = a->f;
    const char *dim, *key;
    struct pp p = {0};
    char sql[2048];
    if (counter_for(f, &dim, &key)) {
        pp_s(&p, dim);
        pp_s(&p, key);
        pp_s(&p, f->status >= 0 ? job_status_name(f->status) : NULL);
        snprintf(sql, sizeof sql, "SELECT coalesce(sum(n), 0) FROM counts WHERE dim=$1"
                 " AND ($2::text IS NULL OR key=$2) AND ($3::text IS NULL OR status=$3)");
    } else {
        list_sql(f, a->tsq, true, sql, sizeof sql, &p);
    }
    jq_err err;
    PGresult *r = pg__q(cn, c, sql, &p, &err);
    *total = r ? pg__int(r, 0, 0) : 0;
    PQclear(r);
    return err;
}

static jq_err r_list(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct list_args *a = arg;
    struct pp p = {0};
    char sql[4096];
    list_sql(a->f, a->tsq, false, sql, sizeof sql, &p);
    jq_err err = many_jobs(cn, c, sql, &p, a->out);
    a->out->total = -1;
    if (!err && a->f->want_total)
        err = count_jobs(cn, c, a, &a->out->total);
    return err;
}

jq_err pg__op_list(void *self, struct sctx *c, const struct job_filter *f, struct job_list *out)
{
    struct list_args a = {f, NULL, out};
    jq_err err = JQ_E_OK;
    memset(out, 0, sizeof *out);
    if (f->log_q) {
        char why[128];
        size_t cap = strlen(f->log_q) * 8 + 64;
        if (!(a.tsq = malloc(cap)))
            return JQ_E_NOMEM;
        err = pg__fts(f->log_q, a.tsq, cap, why, sizeof why);
    }
    if (!err)
        err = pg__tx(self, c, PG_READ, f->user_id, true, r_list, &a);
    free(a.tsq);
    if (err)
        job_list_fini(out);
    return err;
}

/* --- worker operations --- */

static int by_pickup_order(const void *x, const void *y)
{
    const struct job *a = x, *b = y;
    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    if (a->run_at != b->run_at)
        return a->run_at < b->run_at ? -1 : 1;
    return strcmp(a->id, b->id);
}

/* Fair claims (issue 9): one job per user per round, users in order after the
 * last one served on this queue (per node), skipping users at their
 * processing cap; a second round from the start when the first ends short. */
static char *fair_cursor(struct pg *s, const char *queue)
{
    int n = (int)(sizeof s->fair / sizeof s->fair[0]), slot = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(s->fair[i].queue, queue) == 0)
            return s->fair[i].user;
        if (!s->fair[i].queue[0])
            slot = i;
    }
    snprintf(s->fair[slot].queue, sizeof s->fair[slot].queue, "%s", queue);
    s->fair[slot].user[0] = '\0';
    return s->fair[slot].user;
}

static jq_err fair_round(struct pgconn *cn, struct sctx *c, const struct claim_req *in,
                         const char *after, int max, struct job_list *out)
{
    struct pp p = {0};
    pp_s(&p, in->queue);
    pp_i(&p, c->now_ms);
    pp_s(&p, in->worker_id);
    pp_i(&p, in->lease_ms);
    pp_i(&p, max);
    pp_s(&p, after);
    pp_i(&p, max * 4 < 400 ? max * 4 : 400);
    pp_i(&p, in->user_cap);
    struct job_list more = {0};
    jq_err err = many_jobs(cn, c,
        "WITH u AS (SELECT DISTINCT user_id FROM jobs WHERE status='pending' AND blocked=0"
        "  AND queue=$1"
        "  AND run_at<=$2 AND user_id>$6 ORDER BY user_id LIMIT $7),"
        " picked AS (SELECT (SELECT id FROM jobs WHERE status='pending' AND blocked=0 AND queue=$1"
        "  AND user_id=u.user_id AND run_at<=$2 AND (expires_at IS NULL OR expires_at>$2)"
        "  ORDER BY priority DESC, run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) AS id FROM u"
        "  WHERE $8 <= 0 OR coalesce((SELECT n FROM counts WHERE dim='u' AND key=u.user_id"
        "  AND status='processing'), 0) < $8 ORDER BY u.user_id LIMIT $5)"
        " UPDATE jobs j SET status='processing', attempts=j.attempts+1, worker_id=$3,"
        " lease_token=" NEW_LEASE ", lease_expires_at=$2+$4, started_at=$2, updated_at=$2,"
        " error_message=NULL, error_code=NULL FROM picked WHERE j.id=picked.id"
        " AND j.status='pending' RETURNING " PG_JOB_COLS_P("j.") PG_PARENTS_COL("j."), &p, &more);
    if (!err)
        err = job_list_append(out, &more);
    job_list_fini(&more);
    return err;
}

static jq_err claim_fair(struct pgconn *cn, struct sctx *c, const struct claim_req *in,
                         struct job_list *out)
{
    struct pg *s = cn->store;
    char after[NAME_MAX_LEN + 1];
    pthread_mutex_lock(&s->fmu);
    snprintf(after, sizeof after, "%s", fair_cursor(s, in->queue));
    pthread_mutex_unlock(&s->fmu);
    job_list_fini(out);
    jq_err err = JQ_E_OK;
    /* the cap counts processing jobs on every queue: capped claims take turns
     * (a statement's snapshot starts after the lock, so it sees the earlier
     * claims' counts) */
    if (in->user_cap > 0)
        err = pg__exec(cn, NULL, "SELECT pg_advisory_xact_lock(1785684596, 0)", NULL, NULL);
    if (!err)
        err = fair_round(cn, c, in, after, in->max, out);
    int first = out->n;
    if (!err && out->n < in->max && after[0])
        err = fair_round(cn, c, in, "", in->max - out->n, out);     /* wrap around */
    if (!err && out->n) {
        pthread_mutex_lock(&s->fmu);
        snprintf(fair_cursor(s, in->queue), NAME_MAX_LEN + 1, "%s",
                 job_list_max_user(out, out->n > first ? first : 0, out->n));
        pthread_mutex_unlock(&s->fmu);
    }
    cn->wrote = cn->wrote || out->n > 0;
    return err;
}

static jq_err claim(struct pgconn *cn, struct sctx *c, const struct claim_req *in,
                    struct job_list *out)
{
    if (in->fair || in->user_cap > 0)
        return claim_fair(cn, c, in, out);
    struct pp p = {0};
    pp_s(&p, in->queue);
    pp_i(&p, c->now_ms);
    pp_s(&p, in->worker_id);
    pp_i(&p, in->lease_ms);
    pp_i(&p, in->max);
    /* The last column counts (up to max + 1) the jobs claimable in the statement's snapshot,
     * the ones it takes included, without locking them (a locked peek would hide a row from
     * a concurrent claim): more than it took means the queue has more, and a long-poll
     * passes the wake-up on; otherwise nobody is woken to claim in vain. */
    jq_err err;
    PGresult *r = pg__q(cn, c,
        "WITH picked AS (SELECT id FROM jobs WHERE status='pending' AND blocked=0 AND queue=$1"
        " AND run_at<=$2 AND (expires_at IS NULL OR expires_at>$2)"
        " ORDER BY priority DESC, run_at, id LIMIT $5 FOR UPDATE SKIP LOCKED)"
        " UPDATE jobs j SET status='processing', attempts=j.attempts+1, worker_id=$3,"
        " lease_token=" NEW_LEASE ", lease_expires_at=$2+$4, started_at=$2, updated_at=$2,"
        " error_message=NULL, error_code=NULL FROM picked WHERE j.id=picked.id"
        " RETURNING " PG_JOB_COLS_P("j.") PG_PARENTS_COL("j.") ", (SELECT count(*) FROM"
        " (SELECT 1 FROM jobs WHERE status='pending' AND blocked=0 AND queue=$1 AND run_at<=$2"
        " AND (expires_at IS NULL OR expires_at>$2) LIMIT $5+1) m)",
        &p, &err);
    err = load_jobs(r, err, out);
    int n = out->n;
    out->drained = !err && (n == 0 || atoll(PQgetvalue(r, 0, PQnfields(r) - 1)) <= n);
    PQclear(r);
    if (!err && out->n > 1)
        qsort(out->jobs, (size_t)out->n, sizeof *out->jobs, by_pickup_order);
    cn->wrote = cn->wrote || out->n > 0;
    return err;
}

struct claim_args { const struct claim_req *in; struct job_list *out; };

static jq_err w_claim(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct claim_args *a = arg;
    return claim(cn, c, a->in, a->out);
}

jq_err pg__op_claim(void *self, struct sctx *c, const struct claim_req *in,
                    struct job_list *out)
{
    struct claim_args a = {in, out};
    struct pg_due_mark m;
    bool plain = !in->fair && in->user_cap <= 0;     /* fair rounds may stop short */
    memset(out, 0, sizeof *out);
    out->total = -1;
    if (plain && pg__due_skip(self, c, in->queue))
        return JQ_E_OK;
    pg__due_begin(self, c, in->queue, &m);     /* also ends a has_due promise of c's */
    atomic_fetch_add(&((struct pg *)self)->claims, 1);
    jq_err err = pg__tx(self, c, plain ? PG_WORK : PG_WRITE, NULL, false, w_claim, &a);
    /* More is claimable: a concurrent claim that came up short (it skipped the rows this
     * one had locked) must not put waiters back to sleep with its "drained". */
    if (plain && !err && !out->drained)
        atomic_fetch_add(&((struct pg *)self)->wake_gen, 1);
    pg__due_end(self, c, in->queue, &m, plain && !err && (out->n < in->max || out->drained));
    if (err)
        job_list_fini(out);
    return err;
}

static jq_err leased_move(struct pgconn *cn, struct sctx *c, const char *sql, struct pp *p,
                          struct id_args *a)
{
    bool found;
    jq_err err = one_job(cn, c, sql, p, a->out, &found);
    if (err)
        return err;
    return found ? JQ_E_OK : why_not(cn, c, a->id, NULL, a->lease);
}

static void lease_params(struct pp *p, struct id_args *a, struct sctx *c)
{
    pp_s(p, a->id);
    pp_s(p, a->lease);
    pp_i(p, c->now_ms);
}

static jq_err w_heartbeat(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct id_args *a = arg;
    const struct progress *pr = a->extra;
    struct pp p = {0};
    lease_params(&p, a, c);
    pp_i(&p, pr->lease_ms);
    if (pr->percent >= 0)
        pp_i(&p, pr->percent);
    else
        pp_s(&p, NULL);
    pp_s(&p, pr->message);
    cn->wrote = pr->percent >= 0 || pr->message;
    return leased_move(cn, c,
        "UPDATE jobs SET lease_expires_at=$3+$4, updated_at=$3,"
        " progress_percent=coalesce($5::integer, progress_percent),"
        " progress_message=coalesce($6::text, progress_message)"
        " WHERE " LEASE_OK " RETURNING " PG_JOB_COLS, &p, a);
}

jq_err pg__op_heartbeat(void *self, struct sctx *c, const char *id, const char *lease,
                        const struct progress *p, struct job *out)
{
    memset(out, 0, sizeof *out);             /* see one_job */
    struct id_args a = {.id = id, .lease = lease, .out = out, .extra = p};
    return pg__tx(self, c, PG_WORK, NULL, false, w_heartbeat, &a);
}

static jq_err w_complete(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct id_args *a = arg;
    struct pp p = {0};
    lease_params(&p, a, c);
    pp_s(&p, a->extra);
    cn->wrote = true;
    return leased_move(cn, c,
        "UPDATE jobs SET status='completed', result=$4::jsonb, completed_at=$3, updated_at=$3,"
        " lease_token=NULL, lease_expires_at=NULL WHERE " LEASE_OK " RETURNING " PG_JOB_COLS,
        &p, a);
}

jq_err pg__op_complete(void *self, struct sctx *c, const char *id, const char *lease,
                       const char *result, struct job *out)
{
    memset(out, 0, sizeof *out);             /* see one_job */
    struct id_args a = {.id = id, .lease = lease, .out = out, .extra = result};
    return pg__tx(self, c, PG_WORK, NULL, false, w_complete, &a);
}

static jq_err w_fail(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct id_args *a = arg;
    const struct fail_req *in = a->extra;
    struct pp p = {0};
    lease_params(&p, a, c);
    pp_s(&p, in->retryable ? "true" : "false");
    pp_s(&p, in->error_message);
    pp_s(&p, in->error_code);
    pp_i(&p, a->rp->base_ms);
    pp_i(&p, a->rp->max_ms);
    cn->wrote = true;
    jq_err err = leased_move(cn, c,
        "UPDATE jobs SET status=CASE WHEN " RETRYING " THEN 'pending' ELSE 'failed' END,"
        " run_at=CASE WHEN " RETRYING " THEN $3 + jq_backoff(attempts, $7, $8) ELSE run_at END,"
        " completed_at=CASE WHEN " RETRYING " THEN NULL ELSE $3 END,"
        " error_message=$5, error_code=$6, lease_token=NULL, lease_expires_at=NULL,"
        " updated_at=$3 WHERE " LEASE_OK " RETURNING " PG_JOB_COLS, &p, a);
    if (!err && a->out->status == JOB_PENDING)
        cn->wake = true;
    return err;
}

jq_err pg__op_fail(void *self, struct sctx *c, const char *id, const char *lease,
                   const struct fail_req *in, struct job *out)
{
    memset(out, 0, sizeof *out);             /* see one_job */
    struct pg *s = self;
    struct id_args a = {.id = id, .lease = lease, .out = out, .extra = in, .rp = &s->cfg.retry};
    return pg__tx(self, c, PG_WORK, NULL, false, w_fail, &a);
}

/* --- finish-and-claim --- */

struct finish_args {
    const struct finish_req *in;
    char *complete, *fail;
    struct finish_out *out;
    const struct retry_policy *rp;
};

static const char *const finish_sql[2] = {
    "UPDATE jobs SET status='completed', result=x.r, completed_at=$2, updated_at=$2,"
    " lease_token=NULL, lease_expires_at=NULL"
    " FROM jsonb_to_recordset($1::jsonb) AS x(i text, l text, r jsonb)"
    " WHERE jobs.id=x.i AND jobs.lease_token=x.l AND jobs.status='processing'"
    " AND jobs.lease_expires_at>$2 RETURNING jobs.id, jobs.status",
    "UPDATE jobs SET"
    " status=CASE WHEN x.y AND attempts<max_attempts THEN 'pending' ELSE 'failed' END,"
    " run_at=CASE WHEN x.y AND attempts<max_attempts"
    "   THEN $2 + jq_backoff(attempts, $3, $4) ELSE run_at END,"
    " completed_at=CASE WHEN x.y AND attempts<max_attempts THEN NULL ELSE $2 END,"
    " error_message=x.m, error_code=x.c, lease_token=NULL, lease_expires_at=NULL,"
    " updated_at=$2 FROM jsonb_to_recordset($1::jsonb) AS x(i text, l text, m text, c text,"
    " y boolean)"
    " WHERE jobs.id=x.i AND jobs.lease_token=x.l AND jobs.status='processing'"
    " AND jobs.lease_expires_at>$2 RETURNING jobs.id, jobs.status",
};

/* For items not finished: lease_lost if the job exists, else not_found. */
static jq_err explain_misses(struct pgconn *cn, struct sctx *c, const char *items,
                             const struct finish_item *it, int n, const bool *done,
                             bool is_fail, struct finish_out *out)
{
    struct pp p = {0};
    pp_s(&p, items);
    jq_err err;
    PGresult *r = pg__q(cn, c, "SELECT id FROM jobs WHERE id IN (SELECT x.i FROM"
                        " jsonb_to_recordset($1::jsonb) AS x(i text))", &p, &err);
    for (int i = 0; r && i < n; i++) {
        if (done[i])
            continue;
        bool exists = false;
        for (int k = 0; k < PQntuples(r) && !exists; k++)
            exists = strcmp(it[i].id, PQgetvalue(r, k, 0)) == 0;
        out->errors[out->n_errors++] = (struct finish_err){
            is_fail, i, exists ? JQ_E_LEASE : JQ_E_NOT_FOUND};
    }
    PQclear(r);
    return err;
}

static jq_err finish_side(struct pgconn *cn, struct sctx *c, struct finish_args *a,
                          bool is_fail)
{
    const struct finish_item *it = is_fail ? a->in->fail : a->in->complete;
    int n = is_fail ? a->in->n_fail : a->in->n_complete;
    const char *items = is_fail ? a->fail : a->complete;
    if (n == 0)
        return JQ_E_OK;
    bool *done = calloc((size_t)n, sizeof *done);
    if (!done)
        return JQ_E_NOMEM;
    int *count = is_fail ? &a->out->failed : &a->out->completed;
    struct pp p = {0};
    pp_s(&p, items);
    pp_i(&p, c->now_ms);
    if (is_fail) {
        pp_i(&p, a->rp->base_ms);
        pp_i(&p, a->rp->max_ms);
    }
    jq_err err;
    PGresult *r = pg__q(cn, c, finish_sql[is_fail], &p, &err);
    for (int k = 0; r && k < PQntuples(r); k++) {
        for (int i = 0; i < n; i++)
            if (!done[i] && strcmp(it[i].id, PQgetvalue(r, k, 0)) == 0) {
                done[i] = true;
                ++*count;
                break;
            }
        if (strcmp(PQgetvalue(r, k, 1), "pending") == 0)
            cn->wake = true;
    }
    PQclear(r);
    cn->wrote = cn->wrote || *count > 0;
    if (!err && *count < n)
        err = explain_misses(cn, c, items, it, n, done, is_fail, a->out);
    free(done);
    return err;
}

static jq_err w_finish_claim(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct finish_args *a = arg;
    jq_err err = finish_side(cn, c, a, false);
    if (!err)
        err = finish_side(cn, c, a, true);
    if (!err && a->in->claim.max > 0)
        err = claim(cn, c, &a->in->claim, &a->out->claimed);
    return err;
}

jq_err pg__op_finish_claim(void *self, struct sctx *c, const struct finish_req *in,
                           struct finish_out *out)
{
    struct pg *s = self;
    struct finish_args a = {in, finish_items_json(in->complete, in->n_complete, false, true),
                            finish_items_json(in->fail, in->n_fail, true, true), out,
                            &s->cfg.retry};
    memset(out, 0, sizeof *out);
    out->claimed.total = -1;
    out->errors = calloc((size_t)(in->n_complete + in->n_fail + 1), sizeof *out->errors);
    struct pg_due_mark m;
    bool plain = !in->claim.fair && in->claim.user_cap <= 0;   /* fair rounds: custom plans */
    if (in->claim.max > 0)
        pg__due_begin(s, c, in->claim.queue, &m);
    jq_err err = out->errors ? pg__tx(self, c, plain ? PG_WORK : PG_WRITE, NULL, false,
                                      w_finish_claim, &a)
                             : JQ_E_NOMEM;
    if (in->claim.max > 0)
        pg__due_end(s, c, in->claim.queue, &m,
                    plain && !err && out->claimed.n < in->claim.max);
    free(a.complete);
    free(a.fail);
    if (err)
        finish_out_fini(out);
    return err;
}

/* --- logs --- */

struct log_args {
    const char *id, *scope, *lease, *message, *metadata;
    int level, limit;
    int64_t after;
    struct log_row *row;
    struct log_list *out;
};

static void load_log(const PGresult *r, int i, struct log_row *l)
{
    l->id = pg__int(r, i, 0);
    pg__text(r, i, 1, l->job_id, sizeof l->job_id);
    l->created_at = pg__int(r, i, 2);
    l->level = (int)pg__int(r, i, 3);
    l->message = pg__dup(r, i, 4);
    l->metadata = pg__dup(r, i, 5);
}

static jq_err w_log_add(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct log_args *a = arg;
    struct pp p = {0};
    pp_s(&p, a->id);
    pp_s(&p, a->lease);
    pp_i(&p, c->now_ms);
    pp_i(&p, a->level);
    pp_s(&p, a->message);
    pp_s(&p, a->metadata);
    jq_err err;
    PGresult *r = pg__q(cn, c,
        "INSERT INTO job_logs(job_id,user_id,created_at,level,message,metadata)"
        " SELECT id, user_id, $3, $4, $5, $6::jsonb FROM jobs WHERE " LEASE_OK
        " RETURNING id, job_id, created_at, level, message, metadata::text", &p, &err);
    bool found = r && PQntuples(r) > 0;
    if (found)
        load_log(r, 0, a->row);
    PQclear(r);
    cn->wrote = found;
    if (err)
        return err;
    return found ? JQ_E_OK : why_not(cn, c, a->id, NULL, a->lease);
}

jq_err pg__op_log_add(void *self, struct sctx *c, const char *id, const char *lease, int level,
                      const char *message, const char *metadata, struct log_row *out)
{
    struct log_args a = {.id = id, .lease = lease, .level = level, .message = message,
                         .metadata = metadata, .row = out};
    memset(out, 0, sizeof *out);
    return pg__tx(self, c, PG_WRITE, NULL, false, w_log_add, &a);
}

static jq_err r_logs(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct log_args *a = arg;
    jq_err err = pg__get(cn, c, a->id, a->scope, NULL);     /* 404 for others' jobs */
    if (err)
        return err;
    struct pp p = {0};
    pp_s(&p, a->id);
    pp_i(&p, a->after);
    pp_i(&p, a->level);
    pp_i(&p, a->limit);
    PGresult *r = pg__q(cn, c, "SELECT id, job_id, created_at, level, message, metadata::text"
                        " FROM job_logs WHERE job_id=$1 AND id>$2 AND level>=$3"
                        " ORDER BY id LIMIT $4", &p, &err);
    int n = r ? PQntuples(r) : 0;
    log_list_fini(a->out);           /* a retried transaction starts over */
    a->out->rows = calloc((size_t)a->limit, sizeof *a->out->rows);
    if (!a->out->rows && r)
        err = JQ_E_NOMEM;
    for (int i = 0; a->out->rows && i < n && i < a->limit; i++)
        load_log(r, i, &a->out->rows[a->out->n++]);
    PQclear(r);
    return err;
}

jq_err pg__op_logs(void *self, struct sctx *c, const char *id, const char *scope, int level,
                   int64_t after, int limit, struct log_list *out)
{
    struct log_args a = {.id = id, .scope = scope, .level = level, .after = after,
                         .limit = limit, .out = out};
    memset(out, 0, sizeof *out);
    jq_err err = pg__tx(self, c, PG_READ, scope, true, r_logs, &a);
    if (err)
        log_list_fini(out);
    return err;
}
