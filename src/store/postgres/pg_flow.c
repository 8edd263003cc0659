/*
 * pg_flow.c - workflows (jobs created together as a DAG, one transaction)
 * and cron schedules on PostgreSQL, as in sqlite/sq_flow.c. Each schedule
 * fire time enqueues exactly once: the schedule_fires row and the job are
 * written by one statement (the job only when the fire row was new), so a
 * restart or a second node can never fire it again (a concurrent insert of
 * the same fire row waits for the first and then does nothing).
 */
#include "store/postgres/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/canon.h"

/* --- workflows --- */

struct wf_args {
    const struct workflow_req *in;
    const char *id, *scope;
    char *steps;               /* the steps as JSON (ids made before the first attempt) */
    struct workflow *out;
};

/* [{"id","q","t","p","h","pr","r","m","e","k","o","b"}…]: ids are monotonic, so
 * step order is id order. malloc'd. */
static char *steps_json(struct pg *s, int64_t now, const struct workflow_req *in)
{
    json_t *arr = json_array();
    for (int i = 0; i < in->n; i++) {
        const struct workflow_step *st = &in->steps[i];
        const struct job_new *j = &st->job;
        char id[ID_LEN + 1];
        pg__new_id(s, now, id);
        json_t *p = json_loads(j->params, 0, NULL);
        const char *policy = j->on_parent_failure ? j->on_parent_failure : "cancel";
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o, s:s, s:i, s:I, s:i, s:I, "
            "s:s, s:s?, s:i}", "id", id, "q", j->queue, "t", j->type, "p", p ? p : json_object(),
            "h", j->params_hash, "pr", j->priority, "r", (json_int_t)j->run_at,
            "m", j->max_attempts, "e", (json_int_t)j->expires_at, "k", st->key,
            "o", st->n_parents > 0 ? policy : NULL, "b", st->n_parents));
    }
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return text;
}

/* [[parent_job_id, child_job_id], …] from the steps' parent indexes. */
static char *edges_json(const struct workflow_req *in, const struct job_list *steps)
{
    json_t *arr = json_array();
    for (int i = 0; i < in->n; i++)
        for (int k = 0; k < in->steps[i].n_parents; k++)
            json_array_append_new(arr, json_pack("[s, s]",
                steps->jobs[in->steps[i].parents[k]].id, steps->jobs[i].id));
    char *s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return s;
}

static int by_job_id(const void *x, const void *y)
{
    return strcmp(((const struct job *)x)->id, ((const struct job *)y)->id);
}

static jq_err load_jobs(PGresult *r, struct job_list *out)
{
    job_list_fini(out);
    out->total = -1;
    int n = r ? PQntuples(r) : 0;
    if (n > 0 && !(out->jobs = calloc((size_t)n, sizeof *out->jobs)))
        return JQ_E_NOMEM;
    for (int i = 0; i < n; i++)
        pg__load_job(r, i, &out->jobs[out->n++]);
    if (out->n > 1)
        qsort(out->jobs, (size_t)out->n, sizeof *out->jobs, by_job_id);
    return JQ_E_OK;
}

static jq_err w_workflow(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct wf_args *a = arg;
    struct pp p = {0};
    pp_s(&p, a->out->id);
    pp_s(&p, a->in->user_id);
    pp_s(&p, a->in->name);
    pp_i(&p, c->now_ms);
    pp_s(&p, a->steps);
    jq_err err;
    PGresult *r = pg__q(cn, c,
        "WITH w AS (INSERT INTO workflows(id, user_id, name, created_at) VALUES($1,$2,$3,$4))"
        " INSERT INTO jobs(id,user_id,queue,type,params,status,priority,run_at,created_at,"
        "updated_at,attempts,max_attempts,expires_at,params_hash,workflow_id,step_key,"
        "on_parent_failure,blocked)"
        " SELECT x.id, $2, x.q, x.t, x.p, 'pending', x.pr, x.r, $4, $4, 0, x.m, nullif(x.e, 0),"
        " x.h, $1, x.k, x.o, x.b FROM jsonb_to_recordset($5::jsonb) AS x(id text, q text,"
        " t text, p jsonb, h text, pr integer, r bigint, m integer, e bigint, k text, o text,"
        " b integer) ORDER BY x.id RETURNING " PG_JOB_COLS, &p, &err);
    if (r)
        err = load_jobs(r, &a->out->steps);
    PQclear(r);
    cn->wrote = cn->wake = true;
    if (!err && a->out->steps.n != a->in->n)
        err = JQ_E_INTERNAL;
    free(a->out->edges);
    a->out->edges = NULL;
    if (!err && !(a->out->edges = edges_json(a->in, &a->out->steps)))
        err = JQ_E_NOMEM;
    if (err)
        return err;
    struct pp q = {0};
    pp_s(&q, a->out->edges);
    return pg__exec(cn, c, "INSERT INTO job_deps(parent_id, child_id)"
                    " SELECT e->>0, e->>1 FROM jsonb_array_elements($1::jsonb) e"
                    " ON CONFLICT DO NOTHING", &q, NULL);
}

jq_err pg__op_workflow_create(void *self, struct sctx *c, const struct workflow_req *in,
                              struct workflow *out)
{
    struct wf_args a = {.in = in, .out = out};
    memset(out, 0, sizeof *out);
    pg__new_id(self, c->now_ms, out->id);
    snprintf(out->user_id, sizeof out->user_id, "%s", in->user_id);
    out->created_at = c->now_ms;
    out->name = in->name ? strdup(in->name) : NULL;
    jq_err err = (a.steps = steps_json(self, c->now_ms, in)) != NULL
                     ? pg__tx(self, c, PG_WRITE, in->user_id, false, w_workflow, &a)
                     : JQ_E_NOMEM;
    free(a.steps);
    if (err)
        workflow_fini(out);
    return err;
}

static jq_err r_workflow(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct wf_args *a = arg;
    struct pp p = {0};
    pp_s(&p, a->id);
    pp_s(&p, a->scope);
    jq_err err;
    PGresult *r = pg__q(cn, c, "SELECT id, user_id, name, created_at FROM workflows"
                        " WHERE id=$1 AND ($2::text IS NULL OR user_id=$2)", &p, &err);
    bool found = r && PQntuples(r) > 0;
    if (found) {
        pg__text(r, 0, 0, a->out->id, sizeof a->out->id);
        pg__text(r, 0, 1, a->out->user_id, sizeof a->out->user_id);
        free(a->out->name);
        a->out->name = pg__dup(r, 0, 2);
        a->out->created_at = pg__int(r, 0, 3);
    }
    PQclear(r);
    if (err || !found)
        return err ? err : JQ_E_NOT_FOUND;
    p.n = 1;
    r = pg__q(cn, c, "SELECT " PG_JOB_COLS " FROM jobs WHERE workflow_id=$1 ORDER BY id", &p,
              &err);
    if (r)
        err = load_jobs(r, &a->out->steps);
    PQclear(r);
    if (err)
        return err;
    r = pg__q(cn, c, "SELECT coalesce(jsonb_agg(jsonb_build_array(d.parent_id, d.child_id)"
              " ORDER BY d.child_id, d.parent_id), '[]')::text FROM jobs j"
              " JOIN job_deps d ON d.child_id = j.id WHERE j.workflow_id=$1", &p, &err);
    free(a->out->edges);
    a->out->edges = r ? pg__dup(r, 0, 0) : NULL;
    PQclear(r);
    return err;
}

jq_err pg__op_workflow_get(void *self, struct sctx *c, const char *id, const char *scope,
                           struct workflow *out)
{
    struct wf_args a = {.id = id, .scope = scope, .out = out};
    memset(out, 0, sizeof *out);
    jq_err err = pg__tx(self, c, PG_READ, scope, true, r_workflow, &a);
    if (err)
        workflow_fini(out);
    return err;
}

/* --- schedules --- */

#define SC_COLS "id,user_id,name,cron,timezone,type,queue,params::text,priority,max_attempts," \
    "misfire,catch_up_max,paused,next_run_at,last_run_at,created_at,updated_at"
#define SC_SCOPE "id=$1 AND ($2::text IS NULL OR user_id=$2)"

static void load_schedule(const PGresult *r, int i, struct schedule *s)
{
    memset(s, 0, sizeof *s);
    pg__text(r, i, 0, s->id, sizeof s->id);
    pg__text(r, i, 1, s->user_id, sizeof s->user_id);
    pg__text(r, i, 2, s->name, sizeof s->name);
    pg__text(r, i, 3, s->cron, sizeof s->cron);
    pg__text(r, i, 4, s->timezone, sizeof s->timezone);
    pg__text(r, i, 5, s->type, sizeof s->type);
    pg__text(r, i, 6, s->queue, sizeof s->queue);
    s->params = pg__dup(r, i, 7);
    s->priority = (int)pg__int(r, i, 8);
    s->max_attempts = (int)pg__int(r, i, 9);
    pg__text(r, i, 10, s->misfire, sizeof s->misfire);
    s->catch_up_max = (int)pg__int(r, i, 11);
    s->paused = pg__int(r, i, 12) != 0;
    s->next_run_at = pg__int(r, i, 13);
    s->last_run_at = pg__int(r, i, 14);
    s->created_at = pg__int(r, i, 15);
    s->updated_at = pg__int(r, i, 16);
}

static void schedule_free(struct schedule *s)
{
    free(s->params);
    s->params = NULL;
}

/* Runs a statement yielding at most one schedule into out. */
static jq_err one_schedule(struct pgconn *cn, struct sctx *c, const char *sql,
                           const struct pp *p, struct schedule *out, bool *found)
{
    jq_err err;
    PGresult *r = pg__q(cn, c, sql, p, &err);
    *found = r && PQntuples(r) > 0;
    if (*found) {
        schedule_free(out);
        load_schedule(r, 0, out);
    }
    PQclear(r);
    return err;
}

struct sc_args {
    const struct schedule *in;
    const char *id, *scope;
    int paused, limit, n, *created;
    int64_t next, ttl_ms;
    const int64_t *fire_at;
    char hash[CANON_HASH_LEN + 1];
    char (*job_ids)[ID_LEN + 1];   /* one per fire time, made before the first attempt */
    struct schedule *out;
    struct schedule_list *list;
};

static jq_err w_schedule_add(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct sc_args *a = arg;
    const struct schedule *in = a->in;
    struct pp p = {0};
    pp_s(&p, a->id);
    pp_s(&p, in->user_id);
    pp_s(&p, in->name);
    pp_s(&p, in->cron);
    pp_s(&p, in->timezone);
    pp_s(&p, in->type);
    pp_s(&p, in->queue);
    pp_s(&p, in->params);
    pp_i(&p, in->priority);
    pp_i(&p, in->max_attempts);
    pp_s(&p, in->misfire);
    pp_i(&p, in->catch_up_max);
    if (in->next_run_at)
        pp_i(&p, in->next_run_at);
    else
        pp_s(&p, NULL);
    pp_i(&p, c->now_ms);
    bool found;
    jq_err err = one_schedule(cn, c,
        "INSERT INTO schedules(id,user_id,name,cron,timezone,type,queue,params,priority,"
        "max_attempts,misfire,catch_up_max,paused,next_run_at,last_run_at,created_at,updated_at)"
        " VALUES($1,$2,$3,$4,$5,$6,$7,$8::jsonb,$9,$10,$11,$12,0,$13,NULL,$14,$14)"
        " ON CONFLICT (user_id, name) DO NOTHING RETURNING " SC_COLS, &p, a->out, &found);
    return err ? err : found ? JQ_E_OK : JQ_E_CONFLICT;
}

jq_err pg__op_schedule_add(void *self, struct sctx *c, const struct schedule *in,
                           struct schedule *out)
{
    char id[ID_LEN + 1];
    pg__new_id(self, c->now_ms, id);
    struct sc_args a = {.in = in, .id = id, .out = out};
    memset(out, 0, sizeof *out);
    jq_err err = pg__tx(self, c, PG_WRITE, in->user_id, false, w_schedule_add, &a);
    if (err)
        schedule_free(out);
    return err;
}

static jq_err r_schedule_list(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct sc_args *a = arg;
    struct pp p = {0};
    const char *sql;
    if (a->limit) {
        pp_i(&p, c->now_ms);
        pp_i(&p, a->limit);
        sql = "SELECT " SC_COLS " FROM schedules WHERE paused=0 AND next_run_at<=$1"
              " ORDER BY next_run_at LIMIT $2";
    } else {
        pp_s(&p, a->scope);
        sql = "SELECT " SC_COLS " FROM schedules WHERE ($1::text IS NULL OR user_id=$1)"
              " ORDER BY user_id, name LIMIT 1000";
    }
    jq_err err;
    PGresult *r = pg__q(cn, c, sql, &p, &err);
    schedule_list_fini(a->list);          /* a retried transaction starts over */
    int n = r ? PQntuples(r) : 0;
    if (n > 0 && !(a->list->s = calloc((size_t)n, sizeof *a->list->s)))
        err = JQ_E_NOMEM;
    for (int i = 0; a->list->s && i < n; i++)
        load_schedule(r, i, &a->list->s[a->list->n++]);
    PQclear(r);
    return err;
}

jq_err pg__op_schedule_list(void *self, struct sctx *c, const char *scope,
                            struct schedule_list *out)
{
    struct sc_args a = {.scope = scope, .list = out};
    memset(out, 0, sizeof *out);
    jq_err err = pg__tx(self, c, PG_READ, scope, true, r_schedule_list, &a);
    if (err)
        schedule_list_fini(out);
    return err;
}

jq_err pg__op_schedules_due(void *self, struct sctx *c, int limit, struct schedule_list *out)
{
    struct sc_args a = {.limit = limit > 0 ? limit : 1, .list = out};
    memset(out, 0, sizeof *out);
    jq_err err = pg__tx(self, c, PG_READ, NULL, true, r_schedule_list, &a);
    if (err)
        schedule_list_fini(out);
    return err;
}

static jq_err r_schedule_get(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct sc_args *a = arg;
    struct pp p = {0};
    pp_s(&p, a->id);
    pp_s(&p, a->scope);
    bool found;
    jq_err err = one_schedule(cn, c, "SELECT " SC_COLS " FROM schedules WHERE " SC_SCOPE, &p,
                              a->out, &found);
    return err ? err : found ? JQ_E_OK : JQ_E_NOT_FOUND;
}

jq_err pg__op_schedule_get(void *self, struct sctx *c, const char *id, const char *scope,
                           struct schedule *out)
{
    struct sc_args a = {.id = id, .scope = scope, .out = out};
    memset(out, 0, sizeof *out);
    jq_err err = pg__tx(self, c, PG_READ, scope, true, r_schedule_get, &a);
    if (err)
        schedule_free(out);
    return err;
}

static jq_err w_schedule_set(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct sc_args *a = arg;
    struct pp p = {0};
    pp_s(&p, a->id);
    pp_s(&p, a->scope);
    const char *sql;
    if (a->paused > 0) {
        pp_i(&p, c->now_ms);
        sql = "UPDATE schedules SET paused=1, updated_at=$3 WHERE " SC_SCOPE
              " RETURNING " SC_COLS;
    } else if (a->paused == 0) {
        pp_i(&p, c->now_ms);
        if (a->next)
            pp_i(&p, a->next);
        else
            pp_s(&p, NULL);
        sql = "UPDATE schedules SET paused=0, next_run_at=$4, updated_at=$3 WHERE " SC_SCOPE
              " RETURNING " SC_COLS;
    } else {
        sql = "DELETE FROM schedules WHERE " SC_SCOPE " RETURNING " SC_COLS;
    }
    bool found;
    jq_err err = one_schedule(cn, c, sql, &p, a->out, &found);
    return err ? err : found ? JQ_E_OK : JQ_E_NOT_FOUND;
}

jq_err pg__op_schedule_set(void *self, struct sctx *c, const char *id, const char *scope,
                           int paused, int64_t next_run_at, struct schedule *out)
{
    struct sc_args a = {.id = id, .scope = scope, .paused = paused, .next = next_run_at,
                        .out = out};
    memset(out, 0, sizeof *out);
    jq_err err = pg__tx(self, c, PG_WRITE, scope, false, w_schedule_set, &a);
    if (err)
        schedule_free(out);
    return err;
}

/* One fire time: the schedule_fires row, and the job only when that row is new. */
static jq_err fire_one(struct pgconn *cn, struct sctx *c, struct sc_args *a, int i)
{
    const struct schedule *s = a->in;
    int64_t at = a->fire_at[i];
    struct pp p = {0};
    pp_s(&p, s->id);
    pp_i(&p, at);
    pp_s(&p, a->job_ids[i]);
    pp_s(&p, s->user_id);
    pp_s(&p, s->queue);
    pp_s(&p, s->type);
    pp_s(&p, s->params);
    pp_s(&p, a->hash);
    pp_i(&p, s->priority);
    pp_i(&p, s->max_attempts);
    pp_i(&p, c->now_ms);
    pp_i(&p, (at > c->now_ms ? at : c->now_ms) + a->ttl_ms);
    int n = 0;
    jq_err err = pg__exec(cn, c,
        "WITH f AS (INSERT INTO schedule_fires(schedule_id, fire_at, job_id) VALUES($1,$2,$3)"
        " ON CONFLICT DO NOTHING RETURNING job_id)"
        " INSERT INTO jobs(id,user_id,queue,type,params,status,priority,run_at,created_at,"
        "updated_at,attempts,max_attempts,expires_at,params_hash)"
        " SELECT f.job_id, $4, $5, $6, $7::jsonb, 'pending', $9, $2, $11, $11, 0, $10, $12, $8"
        " FROM f", &p, &n);
    if (!err && n > 0) {
        *a->created += n;
        cn->wrote = true;
        cn->wake = cn->wake || at <= c->now_ms;
    }
    return err;
}

static jq_err w_schedule_fire(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct sc_args *a = arg;
    *a->created = 0;                       /* a retried transaction starts over */
    jq_err err = JQ_E_OK;
    for (int i = 0; i < a->n && !err; i++)
        err = fire_one(cn, c, a, i);
    if (err)
        return err;
    struct pp p = {0};
    pp_s(&p, a->in->id);
    if (a->next)
        pp_i(&p, a->next);
    else
        pp_s(&p, NULL);
    pp_i(&p, c->now_ms);
    return pg__exec(cn, c, "UPDATE schedules SET next_run_at=$2, last_run_at=$3, updated_at=$3"
                    " WHERE id=$1", &p, NULL);
}

jq_err pg__op_schedule_fire(void *self, struct sctx *c, const struct schedule *sc,
                            const int64_t *fire_at, int n, int64_t next_run_at,
                            int64_t ttl_ms, int *created)
{
    struct sc_args a = {.in = sc, .fire_at = fire_at, .n = n, .next = next_run_at,
                        .ttl_ms = ttl_ms, .created = created};
    *created = 0;
    json_t *p = json_loads(sc->params ? sc->params : "{}", 0, NULL);
    int ok = p && canon_hash(p, a.hash);
    json_decref(p);
    if (!ok)
        return JQ_E_INTERNAL;
    if (n > 0 && !(a.job_ids = calloc((size_t)n, sizeof *a.job_ids)))
        return JQ_E_NOMEM;
    for (int i = 0; i < n; i++)
        pg__new_id(self, c->now_ms, a.job_ids[i]);
    /* retry-safe: a fire row that committed is found again and skipped */
    jq_err err = pg__tx(self, c, PG_WRITE, NULL, true, w_schedule_fire, &a);
    free(a.job_ids);
    return err;
}
