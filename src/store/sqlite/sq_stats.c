/*
 * sq_stats.c - statistics from counters and per-minute buckets (never a scan
 * of jobs), the maintenance tasks as bounded batches, and Idempotency-Key
 * records.
 */
#include "store/sqlite/sq_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "store/stats_doc.h"

enum { HOUR_MS = 3600000, MINUTE_MS = 60000 };

/* --- statistics --- */

static jq_err user_counts(struct conn *cn, struct sctx *c, const char *user, json_t *counts)
{
    sqlite3_stmt *st = sq__st(cn, c, ST_COUNTS_USER);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        stats_add_count(counts, (const char *)sqlite3_column_text(st, 0),
                        sqlite3_column_int64(st, 1));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, "user counts");
}

/* Fills per-queue and per-type counts, and the global counts from the queue rows. */
static jq_err dim_counts(struct conn *cn, struct sctx *c, json_t *counts, json_t *queues,
                         json_t *types)
{
    sqlite3_stmt *st = sq__st(cn, c, ST_COUNTS_DIMS);
    if (!st)
        return JQ_E_STORAGE;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *dim = (const char *)sqlite3_column_text(st, 0);
        const char *key = (const char *)sqlite3_column_text(st, 1);
        const char *status = (const char *)sqlite3_column_text(st, 2);
        json_int_t n = sqlite3_column_int64(st, 3);
        stats_add_count(stats_entry(dim[0] == 'q' ? queues : types, key), status, n);
        if (dim[0] == 'q')
            stats_add_count(counts, status, n);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, "dim counts");
}

/* oldest_pending_age_ms per queue (due jobs only) and overall. */
static jq_err oldest_due(struct conn *cn, struct sctx *c, json_t *queues, int64_t *oldest)
{
    sqlite3_stmt *st = sq__st(cn, c, ST_OLDEST_DUE);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_int64(st, 1, c->now_ms);
    int rc;
    *oldest = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *q = stats_entry(queues, (const char *)sqlite3_column_text(st, 0));
        bool none = sqlite3_column_type(st, 1) == SQLITE_NULL;
        int64_t t = sqlite3_column_int64(st, 1);
        json_object_set_new(q, "oldest_pending_age_ms",
                            none ? json_null() : json_integer(c->now_ms - t));
        if (!none && (!*oldest || t < *oldest))
            *oldest = t;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, "oldest due");
}

/* avg and outcome counts of the last hour per type */
static jq_err type_outcomes(struct conn *cn, struct sctx *c, json_t *types)
{
    sqlite3_stmt *st = sq__st(cn, c, ST_STATS_TYPES);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_int64(st, 1, c->now_ms - HOUR_MS);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *t = stats_entry(types, (const char *)sqlite3_column_text(st, 0));
        int64_t n = sqlite3_column_int64(st, 3), sum = sqlite3_column_int64(st, 4);
        json_object_set_new(t, "completed_last_hour", json_integer(sqlite3_column_int64(st, 1)));
        json_object_set_new(t, "failed_last_hour", json_integer(sqlite3_column_int64(st, 2)));
        json_object_set_new(t, "avg_duration_ms", n ? json_real((double)sum / (double)n)
                                                    : json_null());
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, "type outcomes");
}

static jq_err type_p95(struct conn *cn, struct sctx *c, json_t *types)
{
    sqlite3_stmt *st = sq__st(cn, c, ST_STATS_HIST);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_int64(st, 1, c->now_ms - HOUR_MS);
    char type[NAME_MAX_LEN + 1] = "";
    int64_t h[STATS_HIST_BUCKETS] = {0};
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {   /* rows come grouped by type */
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (strcmp(t, type) != 0) {
            stats_put_p95(types, type, h);
            snprintf(type, sizeof type, "%s", t);
            memset(h, 0, sizeof h);
        }
        int b = sqlite3_column_int(st, 1);
        if (b >= 0 && b < STATS_HIST_BUCKETS)
            h[b] += sqlite3_column_int64(st, 2);
    }
    stats_put_p95(types, type, h);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, "type p95");
}

static jq_err throughput(struct conn *cn, struct sctx *c, json_t *out)
{
    int64_t first = c->now_ms / MINUTE_MS - 59;
    int64_t done[60] = {0}, failed[60] = {0};
    sqlite3_stmt *st = sq__st(cn, c, ST_STATS_MINUTES);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_int64(st, 1, first * MINUTE_MS);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t i = sqlite3_column_int64(st, 0) - first;
        if (i >= 0 && i < 60) {
            done[i] = sqlite3_column_int64(st, 1);
            failed[i] = sqlite3_column_int64(st, 2);
        }
    }
    sqlite3_reset(st);
    stats_throughput(out, first, done, failed);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, "throughput");
}

struct stats_args { const char *scope; json_t *doc; };

static jq_err global_stats(struct conn *cn, struct sctx *c, json_t *doc, json_t *counts)
{
    json_t *queues = json_object(), *types = json_object(), *tp = json_array();
    int64_t oldest = 0;
    jq_err err = dim_counts(cn, c, counts, queues, types);
    if (!err)
        err = oldest_due(cn, c, queues, &oldest);
    if (!err)
        err = type_outcomes(cn, c, types);
    if (!err)
        err = type_p95(cn, c, types);
    if (!err)
        err = throughput(cn, c, tp);
    stats_put_global(doc, c->now_ms, oldest, queues, types, tp);
    return err;
}

static jq_err user_stats(struct conn *cn, struct sctx *c, const char *user, json_t *doc,
                         json_t *counts)
{
    jq_err err = user_counts(cn, c, user, counts);
    sqlite3_stmt *st = err ? NULL : sq__st(cn, c, ST_OLDEST_DUE_USER);
    if (!st)
        return err ? err : JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->now_ms);
    int rc = sqlite3_step(st);
    bool none = rc != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL;
    json_object_set_new(doc, "oldest_pending_age_ms",
                        none ? json_null() : json_integer(c->now_ms - sqlite3_column_int64(st, 0)));
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? JQ_E_OK : sq__rc(cn, rc, "oldest due of user");
}

static jq_err r_stats(struct conn *cn, struct sctx *c, void *arg)
{
    struct stats_args *a = arg;
    json_t *counts = stats_zero_counts();
    a->doc = json_pack("{s:s, s:o}", "scope", a->scope ? "user" : "global", "counts", counts);
    return a->scope ? user_stats(cn, c, a->scope, a->doc, counts)
                    : global_stats(cn, c, a->doc, counts);
}

jq_err sq__op_stats(void *self, struct sctx *c, const char *scope, json_t **out)
{
    struct stats_args a = {scope, NULL};
    jq_err err = sq__read(self, c, r_stats, &a);
    if (err) {
        json_decref(a.doc);
        a.doc = NULL;
    }
    *out = a.doc;
    return err;
}

/* --- maintenance --- */

struct maint_args {
    enum maint_task t;
    int64_t arg_ms;
    int batch;
    int *rows;
    int64_t *next_ms;
};

/* Runs st with ?1 = cut-off, ?2 = batch (when it has one); adds rows changed. */
static jq_err run_cut(struct conn *cn, struct sctx *c, enum st_id id, int64_t cut, int batch,
                      int *rows)
{
    sqlite3_stmt *st = sq__st(cn, c, id);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_int64(st, 1, cut);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_int(st, 2, batch);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq__rc(cn, rc, "maintenance");
    *rows += sqlite3_changes(cn->db);
    return JQ_E_OK;
}

static jq_err next_due(struct conn *cn, struct sctx *c, enum st_id id, int64_t *next)
{
    sqlite3_stmt *st = sq__st(cn, c, id);
    if (!st)
        return JQ_E_STORAGE;
    int rc = sqlite3_step(st);
    *next = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? JQ_E_OK : sq__rc(cn, rc, "next due");
}

/* Steps st (?1, ?2 bound to a, b) to its end; row values, if any, go to out[0..1]. */
static jq_err step2(struct conn *cn, sqlite3_stmt *st, int64_t a, int64_t b, int64_t out[2])
{
    if (!st)
        return JQ_E_STORAGE;
    if (sqlite3_bind_parameter_count(st) >= 1)
        sqlite3_bind_int64(st, 1, a);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_int64(st, 2, b);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && out) {
        out[0] = sqlite3_column_int64(st, 0);
        out[1] = sqlite3_column_count(st) > 1 ? sqlite3_column_int64(st, 1) : 0;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, sqlite3_sql(st));
}

/* Containment terms of new jobs are indexed in batches, not by a trigger per insert
 * (schema 2, sq_conn.c): the insert that finds TERMS_BATCH or more jobs above the mark
 * indexes all of them, 1 in TERMS_BATCH single creates. Searches check the jobs above
 * the mark directly, so up to TERMS_BATCH - 1 stay there for good when creates stop
 * (well under 1 ms per search). 64, not 512: one create indexing 512 jobs held its whole
 * group for ~10 ms (W1a p99 41-51 ms at 512, 16-17 ms at 64; W3 p99 33 -> 18-20 ms).
 * No background task: it would add write operations when nothing else happens. */
enum { TERMS_BATCH = 64 };

jq_err sq__terms_after_insert(struct conn *cn)
{
    int64_t last = sqlite3_last_insert_rowid(cn->db), mark[2] = {0, 0}, next[2] = {0, 0};
    if (cn->terms_known && last - cn->terms_mark < TERMS_BATCH)
        return JQ_E_OK;
    jq_err err = step2(cn, sq__st(cn, NULL, ST_TERMS_MARK), 0, 0, mark);
    if (err)
        return err;
    cn->terms_mark = mark[0];
    cn->terms_known = true;
    if (last - mark[0] < TERMS_BATCH)
        return JQ_E_OK;
    /* the whole backlog: a batch create adds up to 1,000 at once */
    if (!(err = step2(cn, sq__st(cn, NULL, ST_TERMS_NEXT), mark[0], INT32_MAX, next)) &&
        next[1] > 0 &&
        !(err = step2(cn, sq__st(cn, NULL, ST_TERMS_INDEX), mark[0], next[0], NULL)) &&
        !(err = step2(cn, sq__st(cn, NULL, ST_TERMS_SET), next[0], 0, NULL)))
        cn->terms_mark = next[0];
    return err;
}

static jq_err w_maint(struct conn *cn, struct sctx *c, void *arg)
{
    struct maint_args *a = arg;
    int64_t now = c->now_ms;
    jq_err err = JQ_E_OK;
    switch (a->t) {
    case MT_RESCUE:
        err = run_cut(cn, c, ST_RESCUE, now, a->batch, a->rows);
        if (*a->rows)
            cn->wake = true;
        return err ? err : next_due(cn, c, ST_NEXT_LEASE, a->next_ms);
    case MT_EXPIRE:
        err = run_cut(cn, c, ST_EXPIRE, now, a->batch, a->rows);
        return err ? err : next_due(cn, c, ST_NEXT_EXPIRY, a->next_ms);
    case MT_CLEANUP:   /* logs, edges, then jobs: the same subquery picks the same jobs */
        if ((err = run_cut(cn, c, ST_CLEANUP_LOGS, now - a->arg_ms, a->batch, &(int){0})))
            return err;
        if ((err = run_cut(cn, c, ST_CLEANUP_DEPS, now - a->arg_ms, a->batch, &(int){0})))
            return err;
        return run_cut(cn, c, ST_CLEANUP_JOBS, now - a->arg_ms, a->batch, a->rows);
    case MT_IDEMPOTENCY:
        return run_cut(cn, c, ST_IDEM_PRUNE, now - a->arg_ms, a->batch, a->rows);
    case MT_EVENTS:
        return run_cut(cn, c, ST_EVENTS_PRUNE, now - a->arg_ms, a->batch, a->rows);
    case MT_STATS:
        if ((err = run_cut(cn, c, ST_STATS_PRUNE, now - a->arg_ms, a->batch, a->rows)))
            return err;
        return run_cut(cn, c, ST_HIST_PRUNE, now - a->arg_ms, a->batch, a->rows);
    default:
        return JQ_E_INVALID;
    }
}

jq_err sq__op_maint(void *self, struct sctx *c, enum maint_task t, int64_t arg_ms, int batch,
                    int *rows, int64_t *next_ms)
{
    struct maint_args a = {t, arg_ms, batch, rows, next_ms};
    *rows = 0;
    *next_ms = 0;
    return sq__write(self, c, w_maint, &a);
}

/* --- Idempotency-Key records --- */

jq_err sq__idem_check(struct conn *cn, struct sctx *c)
{
    struct idem *id = c->idem;
    sqlite3_stmt *st = sq__st(cn, c, ST_IDEM_GET);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, id->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, c->now_ms - id->max_age_ms);
    int rc = sqlite3_step(st);
    jq_err err = JQ_E_OK;
    if (rc == SQLITE_ROW) {
        if (strcmp((const char *)sqlite3_column_text(st, 0), id->req_hash) != 0) {
            err = JQ_E_IDEM;
        } else {
            id->replayed = true;
            id->status = sqlite3_column_int(st, 1);
            id->body = sq__dup(st, 2);
        }
    } else if (rc != SQLITE_DONE) {
        err = sq__rc(cn, rc, "idempotency get");
    }
    sqlite3_reset(st);
    return err;
}

jq_err sq__idem_store(struct conn *cn, struct sctx *c)
{
    struct idem *id = c->idem;
    if (!id->render)
        return JQ_E_OK;
    if (!(id->body = id->render(id->arg, &id->status)))
        return JQ_E_NOMEM;     /* a write without its record would run twice on a retry */
    sqlite3_stmt *st = sq__st(cn, c, ST_IDEM_PUT);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, id->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id->req_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, id->status);
    sqlite3_bind_text(st, 5, id->body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, c->now_ms);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, "idempotency put");
}

/* --- events (SSE) --- */

struct events_args {
    const struct event_filter *f;
    int64_t after;
    int limit;
    struct event_list *out;
};

static jq_err event_bounds(struct conn *cn, struct sctx *c, struct event_list *out)
{
    sqlite3_stmt *st = sq__st(cn, c, ST_EVENTS_BOUNDS);
    if (!st)
        return JQ_E_STORAGE;
    int rc = sqlite3_step(st);
    out->min_id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    out->max_id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? JQ_E_OK : sq__rc(cn, rc, "event bounds");
}

static void load_event(sqlite3_stmt *st, struct event *e)
{
    e->id = sqlite3_column_int64(st, 0);
    sq__text(st, 1, e->user_id, sizeof e->user_id);
    sq__text(st, 2, e->job_id, sizeof e->job_id);
    sq__text(st, 3, e->queue, sizeof e->queue);
    sq__text(st, 4, e->type, sizeof e->type);
    sq__text(st, 5, e->kind, sizeof e->kind);
    e->data = sq__dup(st, 6);
    e->created_at = sqlite3_column_int64(st, 7);
}

static jq_err r_events(struct conn *cn, struct sctx *c, void *arg)
{
    struct events_args *a = arg;
    jq_err err = event_bounds(cn, c, a->out);
    /* one job's events come from its own index, however many others there are */
    sqlite3_stmt *st = err ? NULL : sq__st(cn, c, a->f->job_id ? ST_EVENTS_JOB : ST_EVENTS_AFTER);
    if (!st)
        return err ? err : JQ_E_STORAGE;
    sq__bind_opt_text(st, 2, a->f->user_id);
    sq__bind_opt_text(st, 3, a->f->job_id);
    sq__bind_opt_text(st, 4, a->f->queue);
    sq__bind_opt_text(st, 5, a->f->type);
    sqlite3_bind_int64(st, 1, a->after);
    sqlite3_bind_int(st, 6, a->limit);
    a->out->ev = calloc((size_t)a->limit, sizeof *a->out->ev);
    int rc = a->out->ev ? SQLITE_ROW : SQLITE_NOMEM;
    while (a->out->ev && (rc = sqlite3_step(st)) == SQLITE_ROW && a->out->n < a->limit)
        load_event(st, &a->out->ev[a->out->n++]);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? JQ_E_OK : sq__rc(cn, rc, "events");
}

jq_err sq__op_events(void *self, struct sctx *c, const struct event_filter *f, int64_t after,
                     int limit, struct event_list *out)
{
    struct events_args a = {f, after, limit, out};
    memset(out, 0, sizeof *out);
    jq_err err = sq__read(self, c, r_events, &a);
    if (err)
        event_list_fini(out);
    return err;
}

/* --- full-text log search --- */

struct search_args {
    const char *q;
    char *why;
    size_t cap;
    const struct log_search *in;
    struct log_hits *out;
};

static jq_err r_query_ok(struct conn *cn, struct sctx *c, void *arg)
{
    struct search_args *a = arg;
    sqlite3_stmt *st = sq__st(cn, c, ST_LOG_QUERY_OK);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, a->q, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    jq_err err = JQ_E_OK;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        snprintf(a->why, a->cap, "%s", sqlite3_errmsg(cn->db));   /* "fts5: syntax error …" */
        err = (rc & 0xff) == SQLITE_ERROR ? JQ_E_INVALID : sq__rc(cn, rc, "log query");
    }
    sqlite3_reset(st);
    return err;
}

jq_err sq__op_log_query_ok(void *self, struct sctx *c, const char *q, char *why, size_t cap)
{
    struct search_args a = {.q = q, .why = why, .cap = cap};
    why[0] = '\0';
    return sq__read(self, c, r_query_ok, &a);
}

static void load_hit(sqlite3_stmt *st, struct log_hit *h)
{
    h->row.id = sqlite3_column_int64(st, 0);
    sq__text(st, 1, h->row.job_id, sizeof h->row.job_id);
    h->row.created_at = sqlite3_column_int64(st, 2);
    h->row.level = sqlite3_column_int(st, 3);
    h->row.message = sq__dup(st, 4);
    h->row.metadata = sq__dup(st, 5);
    h->snippet = sq__dup(st, 6);
    sq__text(st, 7, h->type, sizeof h->type);
}

static jq_err r_search(struct conn *cn, struct sctx *c, void *arg)
{
    struct search_args *a = arg;
    const struct log_search *in = a->in;
    sqlite3_stmt *st = sq__st(cn, c, ST_LOG_SEARCH);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, in->q, -1, SQLITE_STATIC);
    sq__bind_opt_text(st, 2, in->scope);
    sqlite3_bind_int(st, 3, in->level);
    sq__bind_opt_text(st, 4, in->job_id);
    sq__bind_opt_text(st, 5, in->type);
    sqlite3_bind_int64(st, 6, in->since);
    sq__bind_opt_text(st, 7, in->metadata_q);
    sqlite3_bind_int(st, 8, in->limit);
    sqlite3_bind_int(st, 9, in->offset);
    a->out->hits = calloc((size_t)in->limit, sizeof *a->out->hits);
    int rc = a->out->hits ? SQLITE_ROW : SQLITE_NOMEM;
    while (a->out->hits && a->out->n < in->limit && (rc = sqlite3_step(st)) == SQLITE_ROW)
        load_hit(st, &a->out->hits[a->out->n++]);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? JQ_E_OK : sq__rc(cn, rc, "log search");
}

jq_err sq__op_log_search(void *self, struct sctx *c, const struct log_search *in,
                         struct log_hits *out)
{
    struct search_args a = {.in = in, .out = out};
    memset(out, 0, sizeof *out);
    jq_err err = sq__read(self, c, r_search, &a);
    if (err)
        log_hits_fini(out);
    return err;
}
