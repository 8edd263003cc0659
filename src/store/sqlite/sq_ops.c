/*
 * sq_ops.c - the store operations of the SQLite backend and its ops table.
 * Writes run on the writer thread (sq__write), reads on the read pool
 * (sq__read). Each operation runs a fixed number of statements whatever the
 * number of rows it returns.
 */
#include "store/sqlite/sq_int.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/log.h"



/* --- shared helpers --- */

/* Steps a RETURNING/SELECT statement expected to yield at most one job. */
static jq_err one_job(struct conn *cn, sqlite3_stmt *st, struct job *out, bool *found)
{
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW) {
        if (out)
            sq__load_job(st, out);
        rc = sqlite3_step(st);      /* finish it: RETURNING writes complete at DONE */
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, sqlite3_sql(st));
}

/* Reads all rows of st into a growing job array. */
jq_err sq__jobs(struct conn *cn, sqlite3_stmt *st, struct job_list *out)
{
    int cap = 0, rc;
    out->jobs = NULL;
    out->n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            struct job *nj = realloc(out->jobs, sizeof *nj * (size_t)cap);
            if (!nj) {
                sqlite3_reset(st);
                return JQ_E_NOMEM;
            }
            out->jobs = nj;
        }
        sq__load_job(st, &out->jobs[out->n++]);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, sqlite3_sql(st));
}

/* After a write matched nothing: is the job missing (404) or in the wrong
 * state (409)? `lease` given: a lease mismatch is lease_lost. */
static jq_err why_not(struct conn *cn, struct sctx *c, const char *id, const char *scope,
                      const char *lease)
{
    sqlite3_stmt *st = sq__st(cn, c, ST_STATUS_OF);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sq__bind_opt_text(st, 2, scope);
    int rc = sqlite3_step(st);
    jq_err err = rc == SQLITE_ROW ? (lease ? JQ_E_LEASE : JQ_E_STATE)
                 : rc == SQLITE_DONE ? JQ_E_NOT_FOUND : sq__rc(cn, rc, "status_of");
    sqlite3_reset(st);
    return err;
}

/* --- create: unique_key, dedup, result cache, active limit, insert --- */

struct create_args {
    const struct job_new *in;
    struct job *out;
    enum create_outcome *how;
};

/* Runs a lookup that yields at most one job; *found tells whether it did. */
static jq_err find_one(struct conn *cn, struct sctx *c, enum st_id id, const struct job_new *in,
                       int64_t since, struct job *out, bool *found)
{
    sqlite3_stmt *st = sq__st(cn, c, id);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, in->user_id, -1, SQLITE_STATIC);
    if (id == ST_FIND_UNIQUE) {
        sqlite3_bind_text(st, 2, in->unique_key, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_text(st, 2, in->type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, in->params_hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, since);
    }
    return one_job(cn, st, out, found);
}

/* The rules that can answer a create with an existing job, in order. */
static jq_err find_existing(struct conn *cn, struct sctx *c, struct create_args *a, bool *found)
{
    const struct job_new *in = a->in;
    jq_err err = JQ_E_OK;
    *found = false;
    *a->how = CREATE_DEDUP;
    if (in->unique_key)
        err = find_one(cn, c, ST_FIND_UNIQUE, in, 0, a->out, found);
    if (!err && !*found && in->dedup_window_ms > 0 && !in->unique_key)   /* a key is the identity */
        err = find_one(cn, c, ST_FIND_DEDUP, in, c->now_ms - in->dedup_window_ms, a->out, found);
    if (!err && !*found && in->cache_ttl_ms > 0) {
        *a->how = CREATE_CACHED;
        err = find_one(cn, c, ST_FIND_CACHE, in, c->now_ms - in->cache_ttl_ms, a->out, found);
    }
    return err;
}

/* Pending + processing jobs of a user, from the counters. */
static jq_err active_count(struct conn *cn, struct sctx *c, const char *user, int64_t *n)
{
    sqlite3_stmt *st = sq__st(cn, c, ST_ACTIVE_COUNT);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? JQ_E_OK : sq__rc(cn, rc, "active count");
}

/* JQ_E_LIMIT if one more active job would take the user over limit (0: none). */
static jq_err check_limit(struct conn *cn, struct sctx *c, const char *user, int64_t limit)
{
    int64_t active = 0;
    jq_err err = limit > 0 ? active_count(cn, c, user, &active) : JQ_E_OK;
    return err ? err : limit > 0 && active + 1 > limit ? JQ_E_LIMIT : JQ_E_OK;
}

jq_err sq__insert_job(struct conn *cn, struct sctx *c, const struct job_new *in,
                      struct job *out)
{
    uint8_t rnd[ID_RAND_BYTES];
    char id[ID_LEN + 1];
    randombytes_buf(rnd, sizeof rnd);
    id_next(&cn->ids, c->now_ms, rnd, id);
    sqlite3_stmt *st = sq__st(cn, c, ST_INSERT);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, in->queue, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, in->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, in->params, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, in->priority);
    sqlite3_bind_int64(st, 7, in->run_at);
    sqlite3_bind_int64(st, 8, c->now_ms);
    sqlite3_bind_int(st, 9, in->max_attempts);
    if (in->expires_at)
        sqlite3_bind_int64(st, 10, in->expires_at);
    sqlite3_bind_text(st, 11, in->params_hash, -1, SQLITE_STATIC);
    sq__bind_opt_text(st, 12, in->unique_key);
    bool found;
    jq_err err = one_job(cn, st, out, &found);
    if (!err)
        err = sq__terms_after_insert(cn);
    if (!err && in->run_at <= c->now_ms)
        cn->wake = true;
    return err;
}

/* Debounce: the pending job found by unique_key takes the new params/run_at. */
static jq_err replace_pending(struct conn *cn, struct sctx *c, const struct job_new *in,
                              struct job *j)
{
    sqlite3_stmt *st = sq__st(cn, c, ST_REPLACE_PENDING);
    if (!st)
        return JQ_E_STORAGE;
    char id[ID_LEN + 1];
    memcpy(id, j->id, sizeof id);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, in->params, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, in->params_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, in->priority);
    sqlite3_bind_int64(st, 5, in->run_at);
    sqlite3_bind_int64(st, 6, c->now_ms);
    job_fini(j);
    bool found;
    jq_err err = one_job(cn, st, j, &found);
    if (!err && !found)
        err = JQ_E_INTERNAL;                 /* it was pending a statement ago */
    if (!err)
        cn->wake = true;
    return err;
}

/* The ids of in->depends_on as a JSON array (malloc'd). */
static char *ids_json(const char *const *ids, int n)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, json_string(ids[i]));
    char *s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return s;
}

/* Runs st binding ?1 text a and ?2 text b; for statements without rows. */
static jq_err run2(struct conn *cn, sqlite3_stmt *st, const char *a, const char *b)
{
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? JQ_E_OK : sq__rc(cn, rc, sqlite3_sql(st));
}

/* Checks the parents (the user's own jobs), links them, and blocks or
 * cancels the new job as they stand. */
static jq_err link_parents(struct conn *cn, struct sctx *c, const struct job_new *in,
                           struct job *j)
{
    char *ids = ids_json(in->depends_on, in->n_deps);
    sqlite3_stmt *st = ids ? sq__st(cn, c, ST_DEPS_CHECK) : NULL;
    if (!st) {
        free(ids);
        return ids ? JQ_E_STORAGE : JQ_E_NOMEM;
    }
    sqlite3_bind_text(st, 1, ids, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in->user_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int found = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_reset(st);
    jq_err err = found == in->n_deps ? JQ_E_OK : found < 0 ? sq__rc(cn, rc, "deps") : JQ_E_DEPS;
    char id[ID_LEN + 1];
    memcpy(id, j->id, sizeof id);
    if (!err && !(err = run2(cn, sq__st(cn, c, ST_DEPS_INSERT), ids, id))) {
        bool hit;
        const char *policy = in->on_parent_failure ? in->on_parent_failure : "cancel";
        st = sq__st(cn, c, ST_DEPS_BLOCK);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, policy, -1, SQLITE_STATIC);
        job_fini(j);
        if (!(err = one_job(cn, st, j, &hit))) {
            st = sq__st(cn, c, ST_DEPS_DOOMED);
            sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 2, c->now_ms);
            struct job doomed;
            if (!(err = one_job(cn, st, &doomed, &hit)) && hit) {
                job_fini(j);
                *j = doomed;
            }
        }
    }
    free(ids);
    return err;
}

static jq_err w_create(struct conn *cn, struct sctx *c, void *arg)
{
    struct create_args *a = arg;
    bool found;
    jq_err err = find_existing(cn, c, a, &found);
    if (!err && found && a->in->replace && a->in->unique_key && a->out->status == JOB_PENDING)
        return replace_pending(cn, c, a->in, a->out);
    if (err || found)
        return err;
    *a->how = CREATE_NEW;
    if ((err = check_limit(cn, c, a->in->user_id, a->in->active_limit)))
        return err;
    if ((err = sq__insert_job(cn, c, a->in, a->out)) || a->in->n_deps == 0)
        return err;
    return link_parents(cn, c, a->in, a->out);
}

jq_err sq__op_create(void *self, struct sctx *c, const struct job_new *in, struct job *out,
                     enum create_outcome *how)
{
    struct create_args a = {in, out, how};
    return sq__write(self, c, w_create, &a);
}

/* --- bulk create: one INSERT … SELECT FROM json_each for the whole batch --- */

struct batch_args {
    const struct batch_req *in;
    char *items;               /* the batch as the JSON array ST_BATCH_INSERT reads */
    struct job_list *out;
    int *created;
};

/* The items as [{"q","t","p","h","pr","r","m","e","k"}…]; malloc'd. */
static char *batch_json(const struct batch_req *in)
{
    json_t *arr = json_array();
    for (int i = 0; i < in->n; i++) {
        const struct job_new *j = &in->items[i];
        json_t *p = json_loads(j->params, 0, NULL);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:s, s:i, s:I, s:i, s:I, s:s?}",
            "q", j->queue, "t", j->type, "p", p ? p : json_object(), "h", j->params_hash,
            "pr", j->priority, "r", (json_int_t)j->run_at, "m", j->max_attempts,
            "e", (json_int_t)j->expires_at, "k", j->unique_key));
    }
    char *s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return s;
}

/* Rows returned by a batch statement: the job, then its unique_key (after JOB_COLS). */
struct krow { struct job job; char *key; };

static jq_err batch_rows(struct conn *cn, sqlite3_stmt *st, struct krow **rows, int *n)
{
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            struct krow *nr = realloc(*rows, sizeof *nr * (size_t)cap);
            if (!nr) {
                sqlite3_reset(st);
                return JQ_E_NOMEM;
            }
            *rows = nr;
        }
        sq__load_job(st, &(*rows)[*n].job);
        (*rows)[(*n)++].key = sq__dup(st, JOB_NCOLS);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, sqlite3_sql(st));
}

static int by_id(const void *x, const void *y)
{
    return strcmp(((const struct krow *)x)->job.id, ((const struct krow *)y)->job.id);
}

/* Takes the row for item i: by unique_key, else the next keyless new row. */
static struct krow *row_for(const struct job_new *it, struct krow *rows, int n, int *next_new)
{
    for (int r = 0; it->unique_key && r < n; r++)
        if (rows[r].key && strcmp(rows[r].key, it->unique_key) == 0)
            return &rows[r];
    while (*next_new < n && rows[*next_new].key)
        ++*next_new;
    return *next_new < n ? &rows[(*next_new)++] : NULL;
}

/* Puts one job per item into out, in item order (copies: a unique_key may
 * answer several items). */
static jq_err batch_order(const struct batch_req *in, struct krow *rows, int n,
                          struct job_list *out)
{
    int next_new = 0;
    out->jobs = calloc((size_t)in->n, sizeof *out->jobs);
    if (!out->jobs)
        return JQ_E_NOMEM;
    for (int i = 0; i < in->n; i++) {
        struct krow *r = row_for(&in->items[i], rows, n, &next_new);
        if (!r)
            return JQ_E_INTERNAL;
        struct job *j = &out->jobs[out->n++];
        *j = r->job;
        j->params = r->job.params ? strdup(r->job.params) : NULL;
        j->result = r->job.result ? strdup(r->job.result) : NULL;
        j->error_message = r->job.error_message ? strdup(r->job.error_message) : NULL;
        j->progress_message = r->job.progress_message ? strdup(r->job.progress_message) : NULL;
    }
    return JQ_E_OK;
}

static jq_err batch_insert(struct conn *cn, struct sctx *c, struct batch_args *a,
                           struct krow **rows, int *n)
{
    sqlite3_stmt *st = sq__st(cn, c, ST_BATCH_INSERT);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->in->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->now_ms);
    sqlite3_bind_text(st, 3, a->items, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, a->in->replace);
    jq_err err = batch_rows(cn, st, rows, n);
    if (!err)
        err = sq__terms_after_insert(cn);
    if (err)
        return err;
    if (*n > 1)             /* new rows in id order = item order (jq_id is monotonic) */
        qsort(*rows, (size_t)*n, sizeof **rows, by_id);
    st = sq__st(cn, c, ST_BATCH_EXISTING);     /* keyed items answered by existing jobs */
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->in->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->items, -1, SQLITE_STATIC);
    return batch_rows(cn, st, rows, n);
}

static jq_err w_batch(struct conn *cn, struct sctx *c, void *arg)
{
    struct batch_args *a = arg;
    struct krow *rows = NULL;
    int n = 0;
    int64_t before = 0, after = 0, limit = a->in->active_limit;
    jq_err err = active_count(cn, c, a->in->user_id, &before);
    if (!err)
        err = batch_insert(cn, c, a, &rows, &n);
    if (!err)
        err = active_count(cn, c, a->in->user_id, &after);
    *a->created = (int)(after - before);       /* upserts and existing jobs add nothing */
    if (!err && limit > 0 && *a->created > 0 && after > limit)
        err = JQ_E_LIMIT;
    if (!err)
        err = batch_order(a->in, rows, n, a->out);
    for (int i = 0; i < n; i++) {
        job_fini(&rows[i].job);
        free(rows[i].key);
    }
    free(rows);
    if (!err)
        cn->wake = true;
    return err;
}

jq_err sq__op_create_batch(void *self, struct sctx *c, const struct batch_req *in,
                           struct job_list *out, int *created)
{
    struct batch_args a = {in, batch_json(in), out, created};
    memset(out, 0, sizeof *out);
    out->total = -1;
    jq_err err = a.items ? sq__write(self, c, w_batch, &a) : JQ_E_NOMEM;
    free(a.items);
    if (err)
        job_list_fini(out);
    return err;
}

/* --- bulk cancel --- */

struct cancel_args { const struct cancel_req *in; char *ids; int *n; };

static jq_err w_cancel_many(struct conn *cn, struct sctx *c, void *arg)
{
    struct cancel_args *a = arg;
    const struct cancel_req *in = a->in;
    sqlite3_stmt *st = sq__st(cn, c, in->ids ? ST_CANCEL_IDS
                                          : in->scope ? ST_CANCEL_FILTER_USER : ST_CANCEL_FILTER);
    if (!st)
        return JQ_E_STORAGE;
    if (in->ids)
        sqlite3_bind_text(st, 1, a->ids, -1, SQLITE_STATIC);
    sq__bind_opt_text(st, 2, in->scope);     /* ST_CANCEL_FILTER: NULL, read as true */
    sqlite3_bind_int64(st, 3, c->now_ms);
    if (!in->ids) {
        sq__bind_opt_text(st, 4, in->status >= 0 ? job_status_name(in->status) : NULL);
        sq__bind_opt_text(st, 5, in->type);
        sq__bind_opt_text(st, 6, in->queue);
        sqlite3_bind_int(st, 7, in->max);
    }
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq__rc(cn, rc, "cancel many");
    *a->n = sqlite3_changes(cn->db);
    return JQ_E_OK;
}

jq_err sq__op_cancel_many(void *self, struct sctx *c, const struct cancel_req *in, int *n)
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
    jq_err err = sq__write(self, c, w_cancel_many, &a);
    free(a.ids);
    return err;
}

/* --- reads of one job --- */

struct id_args {
    const char *id, *scope, *lease;
    struct job *out;
    const void *extra;      /* op-specific input */
};

static jq_err r_get(struct conn *cn, struct sctx *c, void *arg)
{
    struct id_args *a = arg;
    sqlite3_stmt *st = sq__st(cn, c, ST_GET);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sq__bind_opt_text(st, 2, a->scope);
    bool found;
    jq_err err = one_job(cn, st, a->out, &found);
    return err ? err : found ? JQ_E_OK : JQ_E_NOT_FOUND;
}

jq_err sq__op_get(void *self, struct sctx *c, const char *id, const char *scope,
                     struct job *out)
{
    struct id_args a = {.id = id, .scope = scope, .out = out};
    return sq__read(self, c, r_get, &a);
}

/* --- user transitions: cancel, retry, delete --- */

/* Runs a scoped transition statement; on no match tells 404 from 409. */
static jq_err scoped_move(struct conn *cn, struct sctx *c, struct id_args *a, enum st_id id)
{
    sqlite3_stmt *st = sq__st(cn, c, id);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sq__bind_opt_text(st, 2, a->scope);
    sqlite3_bind_int64(st, 3, c->now_ms);
    bool found;
    jq_err err = one_job(cn, st, a->out, &found);
    if (err)
        return err;
    return found ? JQ_E_OK : why_not(cn, c, a->id, a->scope, NULL);
}

static jq_err w_cancel(struct conn *cn, struct sctx *c, void *arg)
{
    return scoped_move(cn, c, arg, ST_CANCEL);
}

static jq_err w_retry(struct conn *cn, struct sctx *c, void *arg)
{
    jq_err err = scoped_move(cn, c, arg, ST_RETRY);
    if (!err)
        cn->wake = true;
    return err;
}

jq_err sq__op_cancel(void *self, struct sctx *c, const char *id, const char *scope,
                        struct job *out)
{
    struct id_args a = {.id = id, .scope = scope, .out = out};
    return sq__write(self, c, w_cancel, &a);
}

jq_err sq__op_retry(void *self, struct sctx *c, const char *id, const char *scope,
                       struct job *out)
{
    struct id_args a = {.id = id, .scope = scope, .out = out};
    return sq__write(self, c, w_retry, &a);
}

static jq_err w_remove(struct conn *cn, struct sctx *c, void *arg)
{
    struct id_args *a = arg;
    sqlite3_stmt *st = sq__st(cn, c, ST_DELETE);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sq__bind_opt_text(st, 2, a->scope);
    int rc = sqlite3_step(st);
    bool found = rc == SQLITE_ROW;
    if (found)
        rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq__rc(cn, rc, "delete job");
    if (!found)
        return why_not(cn, c, a->id, a->scope, NULL);
    st = sq__st(cn, c, ST_DELETE_LOGS);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, "delete logs");
}

jq_err sq__op_remove(void *self, struct sctx *c, const char *id, const char *scope)
{
    struct id_args a = {.id = id, .scope = scope};
    return sq__write(self, c, w_remove, &a);
}

/* --- list --- */

struct list_args { const struct job_filter *f; struct job_list *out; };

static void bind_filter(sqlite3_stmt *st, const struct job_filter *f)
{
    sq__bind_opt_text(st, 1, f->user_id);
    if (f->status >= 0)
        sqlite3_bind_text(st, 2, job_status_name(f->status), -1, SQLITE_STATIC);
    sq__bind_opt_text(st, 3, f->type);
    sq__bind_opt_text(st, 4, f->queue);
    if (f->params_q)
        sqlite3_bind_text(st, 9, f->params_q, -1, SQLITE_STATIC);
    if (f->result_q)
        sqlite3_bind_text(st, 10, f->result_q, -1, SQLITE_STATIC);
    if (f->log_q)
        sqlite3_bind_text(st, 11, f->log_q, -1, SQLITE_STATIC);
}

/* The counter that answers a filter's total, if one does: user (+status),
 * or, across users, one of type / queue (+status) or status alone. */
static bool counter_for(const struct job_filter *f, const char **dim, const char **key)
{
    if (f->params_q || f->result_q || f->log_q)
        return false;                             /* searches count what they find */
    if (f->user_id && !f->type && !f->queue) {
        *dim = "u";
        *key = f->user_id;
    } else if (!f->user_id && !(f->type && f->queue)) {
        *dim = f->type ? "t" : "q";
        *key = f->type ? f->type : f->queue;      /* NULL: every queue = everything */
    } else {
        return false;
    }
    return true;
}

static jq_err count_jobs(struct conn *cn, struct sctx *c, const struct job_filter *f, int mask,
                         int64_t *total)
{
    const char *dim, *key;
    sqlite3_stmt *st;
    if (counter_for(f, &dim, &key)) {
        if (!(st = sq__st(cn, c, ST_COUNT_DIM)))
            return JQ_E_STORAGE;
        sqlite3_bind_text(st, 1, dim, -1, SQLITE_STATIC);
        sq__bind_opt_text(st, 2, key);
        sq__bind_opt_text(st, 3, f->status >= 0 ? job_status_name(f->status) : NULL);
    } else {
        if (!(st = sq__list_st(cn, c, (mask & ~(LF_ASC | LF_AFTER)) | LF_COUNT)))
            return JQ_E_STORAGE;   /* LF_WALK: stops at SEARCH_COUNT_CAP */
        bind_filter(st, f);
    }
    int rc = sqlite3_step(st);
    *total = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? JQ_E_OK : sq__rc(cn, rc, "count");
}

/* True if the containment query q (prefix 'p' params, 'r' result) has at least
 * SEARCH_PROBE candidates: then walking the listing order finds a page sooner. */
static jq_err many_candidates(struct conn *cn, struct sctx *c, const char *q, const char *user,
                              const char *prefix, bool *many)
{
    sqlite3_stmt *st = sq__st(cn, c, user ? ST_TERM_PROBE_USER : ST_TERM_PROBE);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, q, -1, SQLITE_STATIC);
    if (user)
        sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, prefix, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *many = rc == SQLITE_ROW && sqlite3_column_int(st, 0) >= SEARCH_PROBE;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? JQ_E_OK : sq__rc(cn, rc, "term probe");
}

static jq_err r_list(struct conn *cn, struct sctx *c, void *arg)
{
    struct list_args *a = arg;
    const struct job_filter *f = a->f;
    bool walk = false;
    if (f->params_q || f->result_q) {        /* one probe, whatever the page size */
        jq_err err = many_candidates(cn, c, f->params_q ? f->params_q : f->result_q, f->user_id,
                                     f->params_q ? "p" : "r", &walk);
        if (err)
            return err;
        walk = walk && !f->log_q;            /* an FTS filter is selective enough to drive */
    }
    int mask = (walk ? LF_WALK : 0) | (f->user_id ? LF_USER : 0) |
               (f->status >= 0 ? LF_STATUS : 0) | (f->type ? LF_TYPE : 0) |
               (f->queue ? LF_QUEUE : 0) | (f->asc ? LF_ASC : 0) |
               (f->after ? LF_AFTER : 0) | (f->params_q ? LF_PARAMS : 0) |
               (f->result_q ? LF_RESULT : 0) | (f->log_q ? LF_LOGQ : 0);
    sqlite3_stmt *st = sq__list_st(cn, c, mask);
    if (!st)
        return JQ_E_STORAGE;
    bind_filter(st, f);
    sqlite3_bind_int(st, 5, f->limit);
    sqlite3_bind_int(st, 6, f->offset);
    if (f->after) {
        sqlite3_bind_int64(st, 7, f->after_created);
        sqlite3_bind_text(st, 8, f->after_id, -1, SQLITE_STATIC);
    }
    jq_err err = sq__jobs(cn, st, a->out);
    a->out->total = -1;
    if (!err && f->want_total)
        err = count_jobs(cn, c, f, mask, &a->out->total);
    a->out->total_capped = walk && a->out->total >= SEARCH_COUNT_CAP;
    return err;
}

jq_err sq__op_list(void *self, struct sctx *c, const struct job_filter *f,
                      struct job_list *out)
{
    struct list_args a = {f, out};
    jq_err err = sq__read(self, c, r_list, &a);
    if (err)
        job_list_fini(out);
    return err;
}

/* --- worker operations: claim, heartbeat, complete, fail --- */

struct claim_args { const struct claim_req *in; struct job_list *out; };

static int by_pickup_order(const void *x, const void *y)
{
    const struct job *a = x, *b = y;
    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    if (a->run_at != b->run_at)
        return a->run_at < b->run_at ? -1 : 1;
    return strcmp(a->id, b->id);
}

/* Moves every job of more to the end of out (more is left empty). */
/* The round-robin position of queue (a slot of the writer's small table). */
static char *fair_cursor(struct conn *cn, const char *queue)
{
    int n = (int)(sizeof cn->fair / sizeof cn->fair[0]), slot = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(cn->fair[i].queue, queue) == 0)
            return cn->fair[i].user;
        if (!cn->fair[i].queue[0])
            slot = i;
    }
    snprintf(cn->fair[slot].queue, sizeof cn->fair[slot].queue, "%s", queue);
    cn->fair[slot].user[0] = '\0';     /* a forgotten position just restarts the round */
    return cn->fair[slot].user;
}

/* One round of fair claims after cursor; appends to out. */
static jq_err claim_fair_round(struct conn *cn, struct sctx *c, const struct claim_req *in,
                               const char *cursor, int max, struct job_list *out)
{
    sqlite3_stmt *st = sq__st(cn, c, ST_CLAIM_FAIR);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, in->queue, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->now_ms);
    sqlite3_bind_text(st, 3, in->worker_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, in->lease_ms);
    sqlite3_bind_int(st, 5, max);
    sqlite3_bind_text(st, 6, cursor, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 7, max * 4 < 400 ? max * 4 : 400);   /* users looked at per round */
    sqlite3_bind_int64(st, 8, in->user_cap);
    struct job_list more = {0};
    jq_err err = sq__jobs(cn, st, &more);
    if (!err)
        err = job_list_append(out, &more);
    job_list_fini(&more);
    return err;
}

/* Round-robin over users: from the queue's cursor to the end, then from the
 * start once more; the cursor moves to the last user served. */
static jq_err claim_fair(struct conn *cn, struct sctx *c, const struct claim_req *in,
                         struct job_list *out)
{
    char *cursor = fair_cursor(cn, in->queue);
    jq_err err = claim_fair_round(cn, c, in, cursor, in->max, out);
    int first = out->n;
    if (!err && out->n < in->max && cursor[0])
        err = claim_fair_round(cn, c, in, "", in->max - out->n, out);   /* wrap around */
    if (!err && out->n)          /* the last user served: of the wrapped round, if any */
        snprintf(cursor, NAME_MAX_LEN + 1, "%s",
                 job_list_max_user(out, out->n > first ? first : 0, out->n));
    return err;
}

/* Attaches each claimed job's parents (id, key, status, result). */
static jq_err attach_parents(struct conn *cn, struct sctx *c, struct job_list *out)
{
    if (out->n <= 0)
        return JQ_E_OK;
    const char **ids = malloc(sizeof *ids * (size_t)out->n);
    char *arr = NULL;
    for (int i = 0; ids && i < out->n; i++)
        ids[i] = out->jobs[i].id;
    if (!ids || !(arr = ids_json(ids, out->n))) {
        free(ids);
        return JQ_E_NOMEM;
    }
    free(ids);
    sqlite3_stmt *st = sq__st(cn, c, ST_PARENTS);
    if (!st) {
        free(arr);
        return JQ_E_STORAGE;
    }
    sqlite3_bind_text(st, 1, arr, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        for (int i = 0; i < out->n; i++)
            if (strcmp(out->jobs[i].id, (const char *)sqlite3_column_text(st, 0)) == 0)
                out->jobs[i].parents = sq__dup(st, 1);
    sqlite3_reset(st);
    free(arr);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, "parents");
}

/* The plain claim (priority, run_at, id) of up to max jobs, appended to out. */
static jq_err claim_plain(struct conn *cn, struct sctx *c, const struct claim_req *in, int max,
                          struct job_list *out)
{
    sqlite3_stmt *st = sq__st(cn, c, ST_CLAIM);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, in->queue, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->now_ms);
    sqlite3_bind_text(st, 3, in->worker_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, in->lease_ms);
    sqlite3_bind_int(st, 5, max);
    struct job_list more = {0};
    jq_err err = sq__jobs(cn, st, &more);
    if (!err && more.n > 1)   /* RETURNING order is unspecified; give pickup order */
        qsort(more.jobs, (size_t)more.n, sizeof *more.jobs, by_pickup_order);
    if (!err)
        err = job_list_append(out, &more);
    job_list_fini(&more);
    return err;
}

jq_err sq__claim(struct conn *cn, struct sctx *c, const struct claim_req *in,
                 struct job_list *out)
{
    jq_err err;
    if (in->fair || in->user_cap > 0) {
        err = claim_fair(cn, c, in, out);
        /* every user with work got one job this call; with fewer users than max the
         * rest goes in the plain order (a per-user cap forbids that shortcut) */
        if (!err && out->n > 0 && out->n < in->max && in->user_cap <= 0)
            err = claim_plain(cn, c, in, in->max - out->n, out);
    } else {
        err = claim_plain(cn, c, in, in->max, out);
    }
    return err || out->n == 0 ? err : attach_parents(cn, c, out);
}

static jq_err w_claim(struct conn *cn, struct sctx *c, void *arg)
{
    struct claim_args *a = arg;
    return sq__claim(cn, c, a->in, a->out);
}

jq_err sq__op_claim(void *self, struct sctx *c, const struct claim_req *in,
                       struct job_list *out)
{
    struct claim_args a = {in, out};
    out->total = -1;
    atomic_fetch_add(&((struct sq *)self)->claims, 1);
    jq_err err = sq__write(self, c, w_claim, &a);
    if (err)
        job_list_fini(out);
    return err;
}

/* Binds id, lease, now; runs it; on no match tells 404 from 409 lease_lost. */
static jq_err leased_move(struct conn *cn, struct sctx *c, sqlite3_stmt *st, struct id_args *a)
{
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->lease, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, c->now_ms);
    bool found;
    jq_err err = one_job(cn, st, a->out, &found);
    if (err)
        return err;
    return found ? JQ_E_OK : why_not(cn, c, a->id, NULL, a->lease);
}

static jq_err w_heartbeat(struct conn *cn, struct sctx *c, void *arg)
{
    struct id_args *a = arg;
    const struct progress *p = a->extra;
    sqlite3_stmt *st = sq__st(cn, c, ST_HEARTBEAT);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_int64(st, 4, p->lease_ms);
    if (p->percent >= 0)
        sqlite3_bind_int(st, 5, p->percent);
    sq__bind_opt_text(st, 6, p->message);
    return leased_move(cn, c, st, a);
}

jq_err sq__op_heartbeat(void *self, struct sctx *c, const char *id, const char *lease,
                           const struct progress *p, struct job *out)
{
    struct id_args a = {.id = id, .lease = lease, .out = out, .extra = p};
    return sq__write(self, c, w_heartbeat, &a);
}

static jq_err w_complete(struct conn *cn, struct sctx *c, void *arg)
{
    struct id_args *a = arg;
    sqlite3_stmt *st = sq__st(cn, c, ST_COMPLETE);
    if (!st)
        return JQ_E_STORAGE;
    sq__bind_opt_text(st, 4, a->extra);
    cn->wake = true;                         /* may unblock dependent jobs */
    return leased_move(cn, c, st, a);
}

jq_err sq__op_complete(void *self, struct sctx *c, const char *id, const char *lease,
                          const char *result, struct job *out)
{
    struct id_args a = {.id = id, .lease = lease, .out = out, .extra = result};
    return sq__write(self, c, w_complete, &a);
}

static jq_err w_fail(struct conn *cn, struct sctx *c, void *arg)
{
    struct id_args *a = arg;
    const struct fail_req *in = a->extra;
    sqlite3_stmt *st = sq__st(cn, c, ST_FAIL);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_int(st, 4, in->retryable);
    sq__bind_opt_text(st, 5, in->error_message);
    sq__bind_opt_text(st, 6, in->error_code);
    jq_err err = leased_move(cn, c, st, a);
    if (!err && a->out->status == JOB_PENDING)
        cn->wake = true;
    return err;
}

jq_err sq__op_fail(void *self, struct sctx *c, const char *id, const char *lease,
                      const struct fail_req *in, struct job *out)
{
    struct id_args a = {.id = id, .lease = lease, .out = out, .extra = in};
    return sq__write(self, c, w_fail, &a);
}

/* --- logs --- */

struct log_args {
    const char *id, *scope, *lease, *message, *metadata;
    int level, limit;
    int64_t after;
    struct log_row *row;
    struct log_list *out;
};

static void load_log(sqlite3_stmt *st, struct log_row *r)
{
    r->id = sqlite3_column_int64(st, 0);
    sq__text(st, 1, r->job_id, sizeof r->job_id);
    r->created_at = sqlite3_column_int64(st, 2);
    r->level = sqlite3_column_int(st, 3);
    r->message = sq__dup(st, 4);
    r->metadata = sq__dup(st, 5);
}

static jq_err w_log_add(struct conn *cn, struct sctx *c, void *arg)
{
    struct log_args *a = arg;
    sqlite3_stmt *st = sq__st(cn, c, ST_LOG_INSERT);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->lease, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, c->now_ms);
    sqlite3_bind_int(st, 4, a->level);
    sqlite3_bind_text(st, 5, a->message, -1, SQLITE_STATIC);
    sq__bind_opt_text(st, 6, a->metadata);
    int rc = sqlite3_step(st);
    bool found = rc == SQLITE_ROW;
    if (found) {
        load_log(st, a->row);
        rc = sqlite3_step(st);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq__rc(cn, rc, "log insert");
    return found ? JQ_E_OK : why_not(cn, c, a->id, NULL, a->lease);
}

jq_err sq__op_log_add(void *self, struct sctx *c, const char *id, const char *lease,
                         int level, const char *message, const char *metadata,
                         struct log_row *out)
{
    struct log_args a = {.id = id, .lease = lease, .level = level, .message = message,
                         .metadata = metadata, .row = out};
    memset(out, 0, sizeof *out);
    return sq__write(self, c, w_log_add, &a);
}

static jq_err r_logs(struct conn *cn, struct sctx *c, void *arg)
{
    struct log_args *a = arg;
    struct id_args ga = {.id = a->id, .scope = a->scope};
    jq_err err = r_get(cn, c, &ga);          /* scope check: 404 for others' jobs */
    if (err)
        return err;
    sqlite3_stmt *st = sq__st(cn, c, ST_LOGS);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->after);
    sqlite3_bind_int(st, 3, a->level);
    sqlite3_bind_int(st, 4, a->limit);
    int rc;
    struct log_list *out = a->out;
    out->rows = calloc((size_t)a->limit, sizeof *out->rows);
    if (!out->rows) {
        sqlite3_reset(st);
        return JQ_E_NOMEM;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && out->n < a->limit)
        load_log(st, &out->rows[out->n++]);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? JQ_E_OK : sq__rc(cn, rc, "logs");
}

jq_err sq__op_logs(void *self, struct sctx *c, const char *id, const char *scope, int level,
                      int64_t after, int limit, struct log_list *out)
{
    struct log_args a = {.id = id, .scope = scope, .level = level, .after = after,
                         .limit = limit, .out = out};
    memset(out, 0, sizeof *out);
    jq_err err = sq__read(self, c, r_logs, &a);
    if (err)
        log_list_fini(out);
    return err;
}


/* --- is anything due (a read, so woken long-polls do not all queue writes) --- */

struct due_args { const char *queue; bool *yes; };

static jq_err r_has_due(struct conn *cn, struct sctx *c, void *arg)
{
    struct due_args *a = arg;
    sqlite3_stmt *st = sq__st(cn, c, ST_HAS_DUE);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->queue, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->now_ms);
    int rc = sqlite3_step(st);
    *a->yes = rc == SQLITE_ROW;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, "has due");
}

jq_err sq__op_has_due(void *self, struct sctx *c, const char *queue, bool *yes)
{
    struct due_args a = {queue, yes};
    return sq__read(self, c, r_has_due, &a);
}
