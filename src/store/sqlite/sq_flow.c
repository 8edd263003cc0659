/*
 * sq_flow.c - workflows (jobs created together as a DAG, one transaction)
 * and cron schedules (each fire time enqueues exactly once: the
 * schedule_fires row and the job are written in the same transaction, so a
 * restart or a second node can never fire it again).
 */
#include "store/sqlite/sq_int.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/canon.h"

/* --- workflows --- */

struct wf_args {
    const struct workflow_req *in;
    const char *id, *scope;
    struct workflow *out;
};

static jq_err bind_run(struct conn *cn, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, sqlite3_sql(st));
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

/* The steps as the JSON array ST_WF_STEPS_INSERT reads (malloc'd). */
static char *steps_json(const struct workflow_req *in)
{
    json_t *arr = json_array();
    for (int i = 0; i < in->n; i++) {
        const struct workflow_step *s = &in->steps[i];
        const struct job_new *j = &s->job;
        json_t *p = json_loads(j->params, 0, NULL);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:s, s:i, s:I, s:i, s:I, s:s, "
            "s:s?, s:i}", "q", j->queue, "t", j->type, "p", p ? p : json_object(),
            "h", j->params_hash, "pr", j->priority, "r", (json_int_t)j->run_at,
            "m", j->max_attempts, "e", (json_int_t)j->expires_at, "k", s->key,
            "o", j->on_parent_failure, "b", s->n_parents));
    }
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return text;
}

static int by_job_id(const void *x, const void *y)
{
    return strcmp(((const struct job *)x)->id, ((const struct job *)y)->id);
}

/* All steps in one statement; returned rows in id order are step order
 * (jq_id is monotonic and json_each walks the array in order). */
static jq_err insert_steps(struct conn *cn, struct sctx *c, struct wf_args *a)
{
    char *items = steps_json(a->in);
    sqlite3_stmt *st = items ? sq__st(cn, c, ST_WF_STEPS_INSERT) : NULL;
    if (!st) {
        free(items);
        return items ? JQ_E_STORAGE : JQ_E_NOMEM;
    }
    sqlite3_bind_text(st, 1, a->in->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->now_ms);
    sqlite3_bind_text(st, 3, a->out->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, items, -1, SQLITE_STATIC);
    jq_err err = sq__jobs(cn, st, &a->out->steps);
    free(items);
    if (!err && a->out->steps.n != a->in->n)
        err = JQ_E_INTERNAL;
    if (!err)
        qsort(a->out->steps.jobs, (size_t)a->out->steps.n, sizeof *a->out->steps.jobs, by_job_id);
    cn->wake = true;
    return err;
}

static jq_err w_workflow(struct conn *cn, struct sctx *c, void *arg)
{
    struct wf_args *a = arg;
    uint8_t rnd[ID_RAND_BYTES];
    randombytes_buf(rnd, sizeof rnd);
    id_next(&cn->ids, c->now_ms, rnd, a->out->id);
    snprintf(a->out->user_id, sizeof a->out->user_id, "%s", a->in->user_id);
    a->out->created_at = c->now_ms;
    sqlite3_stmt *st = sq__st(cn, c, ST_WF_INSERT);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->out->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->in->user_id, -1, SQLITE_STATIC);
    sq__bind_opt_text(st, 3, a->in->name);
    sqlite3_bind_int64(st, 4, c->now_ms);
    jq_err err = bind_run(cn, st);
    if (!err)
        err = insert_steps(cn, c, a);
    if (!err && !(a->out->edges = edges_json(a->in, &a->out->steps)))
        err = JQ_E_NOMEM;
    if (!err && (st = sq__st(cn, c, ST_DEPS_PAIRS)) != NULL) {
        sqlite3_bind_text(st, 1, a->out->edges, -1, SQLITE_STATIC);
        err = bind_run(cn, st);
    }
    return err;
}

jq_err sq__op_workflow_create(void *self, struct sctx *c, const struct workflow_req *in,
                              struct workflow *out)
{
    struct wf_args a = {.in = in, .out = out};
    memset(out, 0, sizeof *out);
    out->name = in->name ? strdup(in->name) : NULL;
    jq_err err = sq__write(self, c, w_workflow, &a);
    if (err)
        workflow_fini(out);
    return err;
}

static jq_err r_workflow(struct conn *cn, struct sctx *c, void *arg)
{
    struct wf_args *a = arg;
    sqlite3_stmt *st = sq__st(cn, c, ST_WF_GET);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sq__bind_opt_text(st, 2, a->scope);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        sq__text(st, 0, a->out->id, sizeof a->out->id);
        sq__text(st, 1, a->out->user_id, sizeof a->out->user_id);
        a->out->name = sq__dup(st, 2);
        a->out->created_at = sqlite3_column_int64(st, 3);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? JQ_E_NOT_FOUND : sq__rc(cn, rc, "workflow");
    if (!(st = sq__st(cn, c, ST_WF_STEPS)))
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    jq_err err = sq__jobs(cn, st, &a->out->steps);
    if (err || !(st = sq__st(cn, c, ST_WF_EDGES)))
        return err ? err : JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    a->out->edges = rc == SQLITE_ROW ? sq__dup(st, 0) : NULL;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? JQ_E_OK : sq__rc(cn, rc, "workflow edges");
}

jq_err sq__op_workflow_get(void *self, struct sctx *c, const char *id, const char *scope,
                           struct workflow *out)
{
    struct wf_args a = {.id = id, .scope = scope, .out = out};
    memset(out, 0, sizeof *out);
    jq_err err = sq__read(self, c, r_workflow, &a);
    if (err)
        workflow_fini(out);
    return err;
}

/* --- schedules --- */

static void load_schedule(sqlite3_stmt *st, struct schedule *s)
{
    memset(s, 0, sizeof *s);
    sq__text(st, 0, s->id, sizeof s->id);
    sq__text(st, 1, s->user_id, sizeof s->user_id);
    sq__text(st, 2, s->name, sizeof s->name);
    sq__text(st, 3, s->cron, sizeof s->cron);
    sq__text(st, 4, s->timezone, sizeof s->timezone);
    sq__text(st, 5, s->type, sizeof s->type);
    sq__text(st, 6, s->queue, sizeof s->queue);
    s->params = sq__dup(st, 7);
    s->priority = sqlite3_column_int(st, 8);
    s->max_attempts = sqlite3_column_int(st, 9);
    sq__text(st, 10, s->misfire, sizeof s->misfire);
    s->catch_up_max = sqlite3_column_int(st, 11);
    s->paused = sqlite3_column_int(st, 12) != 0;
    s->next_run_at = sqlite3_column_int64(st, 13);
    s->last_run_at = sqlite3_column_int64(st, 14);
    s->created_at = sqlite3_column_int64(st, 15);
    s->updated_at = sqlite3_column_int64(st, 16);
}

/* Steps st for at most one schedule. */
static jq_err one_schedule(struct conn *cn, sqlite3_stmt *st, struct schedule *out, bool *found)
{
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (*found) {
        load_schedule(st, out);
        rc = sqlite3_step(st);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return JQ_E_CONFLICT;
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, sqlite3_sql(st));
}

static jq_err many_schedules(struct conn *cn, sqlite3_stmt *st, struct schedule_list *out)
{
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            struct schedule *ns = realloc(out->s, sizeof *ns * (size_t)cap);
            if (!ns) {
                sqlite3_reset(st);
                return JQ_E_NOMEM;
            }
            out->s = ns;
        }
        load_schedule(st, &out->s[out->n++]);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, sqlite3_sql(st));
}

struct sc_args {
    const struct schedule *in;
    const char *id, *scope;
    int paused, limit, n, *created;
    int64_t next, ttl_ms;
    const int64_t *fire_at;
    struct schedule *out;
    struct schedule_list *list;
};

static jq_err w_schedule_add(struct conn *cn, struct sctx *c, void *arg)
{
    struct sc_args *a = arg;
    const struct schedule *in = a->in;
    uint8_t rnd[ID_RAND_BYTES];
    char id[ID_LEN + 1];
    randombytes_buf(rnd, sizeof rnd);
    id_next(&cn->ids, c->now_ms, rnd, id);
    sqlite3_stmt *st = sq__st(cn, c, ST_SC_INSERT);
    if (!st)
        return JQ_E_STORAGE;
    const char *text[] = {id, in->user_id, in->name, in->cron, in->timezone, in->type,
                          in->queue, in->params};
    for (int i = 0; i < 8; i++)
        sqlite3_bind_text(st, i + 1, text[i], -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 9, in->priority);
    sqlite3_bind_int(st, 10, in->max_attempts);
    sqlite3_bind_text(st, 11, in->misfire, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 12, in->catch_up_max);
    if (in->next_run_at)
        sqlite3_bind_int64(st, 13, in->next_run_at);
    sqlite3_bind_int64(st, 14, c->now_ms);
    bool found;
    return one_schedule(cn, st, a->out, &found);
}

jq_err sq__op_schedule_add(void *self, struct sctx *c, const struct schedule *in,
                           struct schedule *out)
{
    struct sc_args a = {.in = in, .out = out};
    memset(out, 0, sizeof *out);
    return sq__write(self, c, w_schedule_add, &a);
}

static jq_err r_schedule_list(struct conn *cn, struct sctx *c, void *arg)
{
    struct sc_args *a = arg;
    sqlite3_stmt *st = sq__st(cn, c, a->limit ? ST_SC_DUE : ST_SC_LIST);
    if (!st)
        return JQ_E_STORAGE;
    if (a->limit) {
        sqlite3_bind_int64(st, 1, c->now_ms);
        sqlite3_bind_int(st, 2, a->limit);
    } else {
        sq__bind_opt_text(st, 1, a->scope);
    }
    return many_schedules(cn, st, a->list);
}

jq_err sq__op_schedule_list(void *self, struct sctx *c, const char *scope,
                            struct schedule_list *out)
{
    struct sc_args a = {.scope = scope, .list = out};
    memset(out, 0, sizeof *out);
    jq_err err = sq__read(self, c, r_schedule_list, &a);
    if (err)
        schedule_list_fini(out);
    return err;
}

jq_err sq__op_schedules_due(void *self, struct sctx *c, int limit, struct schedule_list *out)
{
    struct sc_args a = {.limit = limit, .list = out};
    memset(out, 0, sizeof *out);
    jq_err err = sq__read(self, c, r_schedule_list, &a);
    if (err)
        schedule_list_fini(out);
    return err;
}

static jq_err r_schedule_get(struct conn *cn, struct sctx *c, void *arg)
{
    struct sc_args *a = arg;
    sqlite3_stmt *st = sq__st(cn, c, ST_SC_GET);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sq__bind_opt_text(st, 2, a->scope);
    bool found;
    jq_err err = one_schedule(cn, st, a->out, &found);
    return err ? err : found ? JQ_E_OK : JQ_E_NOT_FOUND;
}

jq_err sq__op_schedule_get(void *self, struct sctx *c, const char *id, const char *scope,
                           struct schedule *out)
{
    struct sc_args a = {.id = id, .scope = scope, .out = out};
    memset(out, 0, sizeof *out);
    return sq__read(self, c, r_schedule_get, &a);
}

static jq_err w_schedule_set(struct conn *cn, struct sctx *c, void *arg)
{
    struct sc_args *a = arg;
    enum st_id id = a->paused > 0 ? ST_SC_PAUSE : a->paused == 0 ? ST_SC_RESUME : ST_SC_DELETE;
    sqlite3_stmt *st = sq__st(cn, c, id);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sq__bind_opt_text(st, 2, a->scope);
    if (id != ST_SC_DELETE)
        sqlite3_bind_int64(st, 3, c->now_ms);
    if (id == ST_SC_RESUME)
        sqlite3_bind_int64(st, 4, a->next);
    bool found;
    jq_err err = one_schedule(cn, st, a->out, &found);
    return err ? err : found ? JQ_E_OK : JQ_E_NOT_FOUND;
}

jq_err sq__op_schedule_set(void *self, struct sctx *c, const char *id, const char *scope,
                           int paused, int64_t next_run_at, struct schedule *out)
{
    struct sc_args a = {.id = id, .scope = scope, .paused = paused, .next = next_run_at,
                        .out = out};
    memset(out, 0, sizeof *out);
    return sq__write(self, c, w_schedule_set, &a);
}

/* Marks (schedule, fire time) fired; *fresh tells whether it was new. */
static jq_err mark_fire(struct conn *cn, struct sctx *c, const char *sid, int64_t at, bool *fresh)
{
    sqlite3_stmt *st = sq__st(cn, c, ST_SC_MARK);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, at);
    jq_err err = bind_run(cn, st);
    *fresh = !err && sqlite3_changes(cn->db) == 1;
    return err;
}

static jq_err fire_one(struct conn *cn, struct sctx *c, struct sc_args *a, int64_t at,
                       const char *hash)
{
    const struct schedule *s = a->in;
    bool fresh;
    jq_err err = mark_fire(cn, c, s->id, at, &fresh);
    if (err || !fresh)
        return err;                          /* fired before: exactly once */
    struct job_new jn = {.user_id = s->user_id, .queue = s->queue, .type = s->type,
                         .params = s->params, .params_hash = hash, .priority = s->priority,
                         .max_attempts = s->max_attempts, .run_at = at,
                         .expires_at = (at > c->now_ms ? at : c->now_ms) + a->ttl_ms};
    struct job j;
    if ((err = sq__insert_job(cn, c, &jn, &j)))
        return err;
    sqlite3_stmt *st = sq__st(cn, c, ST_SC_MARK_JOB);
    if (st) {
        sqlite3_bind_text(st, 1, s->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, at);
        sqlite3_bind_text(st, 3, j.id, -1, SQLITE_TRANSIENT);
        err = bind_run(cn, st);
    }
    job_fini(&j);
    ++*a->created;
    return st ? err : JQ_E_STORAGE;
}

static jq_err w_schedule_fire(struct conn *cn, struct sctx *c, void *arg)
{
    struct sc_args *a = arg;
    char hash[CANON_HASH_LEN + 1];
    json_t *p = json_loads(a->in->params, 0, NULL);
    int ok = p && canon_hash(p, hash);
    json_decref(p);
    if (!ok)
        return JQ_E_INTERNAL;
    jq_err err = JQ_E_OK;
    for (int i = 0; i < a->n && !err; i++)
        err = fire_one(cn, c, a, a->fire_at[i], hash);
    sqlite3_stmt *st = err ? NULL : sq__st(cn, c, ST_SC_ADVANCE);
    if (!st)
        return err ? err : JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->in->id, -1, SQLITE_STATIC);
    if (a->next)
        sqlite3_bind_int64(st, 2, a->next);
    sqlite3_bind_int64(st, 3, c->now_ms);
    return bind_run(cn, st);
}

jq_err sq__op_schedule_fire(void *self, struct sctx *c, const struct schedule *sc,
                            const int64_t *fire_at, int n, int64_t next_run_at, int64_t ttl_ms,
                            int *created)
{
    struct sc_args a = {.in = sc, .fire_at = fire_at, .n = n, .next = next_run_at,
                        .ttl_ms = ttl_ms, .created = created};
    *created = 0;
    return sq__write(self, c, w_schedule_fire, &a);
}
