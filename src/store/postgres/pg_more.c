/*
 * pg_more.c - the PostgreSQL backend's statistics (counters and per-minute
 * buckets, never a scan of jobs), maintenance tasks as bounded batches,
 * the event log, full-text log search, Idempotency-Key records, tokens and
 * query plans.
 */
#include "store/postgres/pg_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "store/stats_doc.h"

enum { HOUR_MS = 3600000, MINUTE_MS = 60000 };

/* Runs sql and hands back its result (NULL on error, with *err set). */
static PGresult *rows(struct pgconn *cn, struct sctx *c, const char *sql, const struct pp *p,
                      jq_err *err)
{
    return pg__q(cn, c, sql, p, err);
}

/* --- statistics (the same document as the SQLite backend's) --- */

static jq_err dim_counts(struct pgconn *cn, struct sctx *c, json_t *counts, json_t *queues,
                         json_t *types)
{
    jq_err err;
    PGresult *r = rows(cn, c, "SELECT dim, key, status, n FROM counts"
                       " WHERE dim IN ('q','t') AND n<>0", NULL, &err);
    for (int i = 0; r && i < PQntuples(r); i++) {
        const char *dim = PQgetvalue(r, i, 0), *status = PQgetvalue(r, i, 2);
        json_int_t n = pg__int(r, i, 3);
        stats_add_count(stats_entry(dim[0] == 'q' ? queues : types, PQgetvalue(r, i, 1)), status, n);
        if (dim[0] == 'q')
            stats_add_count(counts, status, n);
    }
    PQclear(r);
    return err;
}

static jq_err oldest_due(struct pgconn *cn, struct sctx *c, json_t *queues, int64_t *oldest)
{
    struct pp p = {0};
    pp_i(&p, c->now_ms);
    jq_err err;
    PGresult *r = rows(cn, c, "SELECT c.key, (SELECT min(run_at) FROM jobs WHERE"
                       " status='pending' AND queue=c.key AND run_at<=$1) FROM counts c"
                       " WHERE c.dim='q' AND c.status='pending' AND c.n>0", &p, &err);
    *oldest = 0;
    for (int i = 0; r && i < PQntuples(r); i++) {
        json_t *q = stats_entry(queues, PQgetvalue(r, i, 0));
        bool none = pg__null(r, i, 1);
        int64_t t = pg__int(r, i, 1);
        json_object_set_new(q, "oldest_pending_age_ms",
                            none ? json_null() : json_integer(c->now_ms - t));
        if (!none && (!*oldest || t < *oldest))
            *oldest = t;
    }
    PQclear(r);
    return err;
}

static jq_err type_outcomes(struct pgconn *cn, struct sctx *c, json_t *types)
{
    struct pp p = {0};
    pp_i(&p, c->now_ms - HOUR_MS);
    jq_err err;
    PGresult *r = rows(cn, c, "SELECT type, sum(completed), sum(failed), sum(dur_n),"
                       " sum(dur_sum) FROM stats_minute WHERE minute>=$1::bigint/60000"
                       " GROUP BY type", &p, &err);
    for (int i = 0; r && i < PQntuples(r); i++) {
        json_t *t = stats_entry(types, PQgetvalue(r, i, 0));
        int64_t n = pg__int(r, i, 3), sum = pg__int(r, i, 4);
        json_object_set_new(t, "completed_last_hour", json_integer(pg__int(r, i, 1)));
        json_object_set_new(t, "failed_last_hour", json_integer(pg__int(r, i, 2)));
        json_object_set_new(t, "avg_duration_ms", n ? json_real((double)sum / (double)n)
                                                    : json_null());
    }
    PQclear(r);
    return err;
}

static jq_err type_p95(struct pgconn *cn, struct sctx *c, json_t *types)
{
    struct pp p = {0};
    pp_i(&p, c->now_ms - HOUR_MS);
    jq_err err;
    PGresult *r = rows(cn, c, "SELECT type, bucket, sum(n) FROM stats_hist"
                       " WHERE minute>=$1::bigint/60000 GROUP BY type, bucket"
                       " ORDER BY type, bucket", &p, &err);
    char type[NAME_MAX_LEN + 1] = "";
    int64_t h[STATS_HIST_BUCKETS] = {0};
    for (int i = 0; r && i < PQntuples(r); i++) {
        const char *t = PQgetvalue(r, i, 0);
        if (strcmp(t, type) != 0) {
            stats_put_p95(types, type, h);
            snprintf(type, sizeof type, "%s", t);
            memset(h, 0, sizeof h);
        }
        int64_t b = pg__int(r, i, 1);
        if (b >= 0 && b < STATS_HIST_BUCKETS)
            h[b] += pg__int(r, i, 2);
    }
    stats_put_p95(types, type, h);
    PQclear(r);
    return err;
}

static jq_err throughput(struct pgconn *cn, struct sctx *c, json_t *out)
{
    int64_t first = c->now_ms / MINUTE_MS - 59;
    int64_t done[60] = {0}, failed[60] = {0};
    struct pp p = {0};
    pp_i(&p, first * MINUTE_MS);
    jq_err err;
    PGresult *r = rows(cn, c, "SELECT minute, sum(completed), sum(failed) FROM stats_minute"
                       " WHERE minute>=$1::bigint/60000 GROUP BY minute ORDER BY minute",
                       &p, &err);
    for (int k = 0; r && k < PQntuples(r); k++) {
        int64_t i = pg__int(r, k, 0) - first;
        if (i >= 0 && i < 60) {
            done[i] = pg__int(r, k, 1);
            failed[i] = pg__int(r, k, 2);
        }
    }
    PQclear(r);
    stats_throughput(out, first, done, failed);
    return err;
}

static jq_err global_stats(struct pgconn *cn, struct sctx *c, json_t *doc, json_t *counts)
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

static jq_err user_stats(struct pgconn *cn, struct sctx *c, const char *user, json_t *doc,
                         json_t *counts)
{
    struct pp p = {0};
    pp_s(&p, user);
    jq_err err;
    PGresult *r = rows(cn, c, "SELECT status, n FROM counts WHERE dim='u' AND key=$1", &p,
                       &err);
    for (int i = 0; r && i < PQntuples(r); i++)
        stats_add_count(counts, PQgetvalue(r, i, 0), pg__int(r, i, 1));
    PQclear(r);
    if (err)
        return err;
    pp_i(&p, c->now_ms);
    r = rows(cn, c, "SELECT min(run_at) FROM jobs WHERE user_id=$1 AND status='pending'"
             " AND run_at<=$2", &p, &err);
    bool none = !r || pg__null(r, 0, 0);
    json_object_set_new(doc, "oldest_pending_age_ms",
                        none ? json_null() : json_integer(c->now_ms - pg__int(r, 0, 0)));
    PQclear(r);
    return err;
}

struct stats_args { const char *scope; json_t *doc; };

static jq_err r_stats(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct stats_args *a = arg;
    json_decref(a->doc);
    json_t *counts = stats_zero_counts();
    a->doc = json_pack("{s:s, s:o}", "scope", a->scope ? "user" : "global", "counts", counts);
    return a->scope ? user_stats(cn, c, a->scope, a->doc, counts)
                    : global_stats(cn, c, a->doc, counts);
}

jq_err pg__op_stats(void *self, struct sctx *c, const char *scope, json_t **out)
{
    struct stats_args a = {scope, NULL};
    jq_err err = pg__tx(self, c, PG_READ, scope, true, r_stats, &a);
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
    const struct retry_policy *rp;
};

static const char *const maint_sql[] = {
    [MT_RESCUE] =
        "WITH d AS (SELECT id FROM jobs WHERE status='processing' AND lease_expires_at<=$1"
        " ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " UPDATE jobs j SET"
        " status=CASE WHEN j.attempts<j.max_attempts THEN 'pending' ELSE 'failed' END,"
        " run_at=CASE WHEN j.attempts<j.max_attempts"
        "   THEN $1 + jq_backoff(j.attempts, $3, $4) ELSE j.run_at END,"
        " completed_at=CASE WHEN j.attempts<j.max_attempts THEN NULL ELSE $1 END,"
        " error_code='lease_expired',"
        " error_message='lease expired without a heartbeat (worker ' || coalesce(j.worker_id, '?')"
        "   || ')', lease_token=NULL, lease_expires_at=NULL, updated_at=$1"
        " FROM d WHERE j.id=d.id",
    [MT_EXPIRE] =
        "WITH d AS (SELECT id FROM jobs WHERE status='pending' AND expires_at<=$1"
        " ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " UPDATE jobs j SET status='failed', error_code='expired',"
        " error_message='expired before a worker claimed it', completed_at=$1, updated_at=$1"
        " FROM d WHERE j.id=d.id",
    [MT_CLEANUP] =
        "WITH d AS (SELECT id FROM jobs WHERE status IN ('completed','failed','cancelled')"
        " AND completed_at<$1 ORDER BY completed_at LIMIT $2 FOR UPDATE SKIP LOCKED),"
        " l AS (DELETE FROM job_logs WHERE job_id IN (SELECT id FROM d)),"
        " e AS (DELETE FROM job_deps WHERE parent_id IN (SELECT id FROM d)"
        "   OR child_id IN (SELECT id FROM d))"
        " DELETE FROM jobs WHERE id IN (SELECT id FROM d)",
    [MT_IDEMPOTENCY] = "DELETE FROM idempotency WHERE (user_id, key) IN"
                       " (SELECT user_id, key FROM idempotency WHERE created_at<$1 LIMIT $2)",
    [MT_STATS] = "WITH h AS (DELETE FROM stats_hist WHERE minute<$1::bigint/60000"
                 " AND $2::integer > 0)"
                 " DELETE FROM stats_minute WHERE minute<$1::bigint/60000",
    [MT_EVENTS] = "DELETE FROM events WHERE id IN (SELECT id FROM events"
                  " WHERE created_at<$1 ORDER BY id LIMIT $2)",
};

static jq_err next_due(struct pgconn *cn, struct sctx *c, const char *sql, int64_t *next)
{
    jq_err err;
    PGresult *r = pg__q(cn, c, sql, NULL, &err);
    *next = r ? pg__int(r, 0, 0) : 0;
    PQclear(r);
    return err;
}

static jq_err w_maint(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct maint_args *a = arg;
    bool leases = a->t == MT_RESCUE || a->t == MT_EXPIRE;
    struct pp p = {0};
    pp_i(&p, leases ? c->now_ms : c->now_ms - a->arg_ms);
    pp_i(&p, a->batch);
    if (a->t == MT_RESCUE) {
        pp_i(&p, a->rp->base_ms);
        pp_i(&p, a->rp->max_ms);
    }
    jq_err err = JQ_E_OK;
    if (a->t == MT_EVENTS)       /* retention applies to sequenced events: sequence first */
        err = pg__exec(cn, NULL, "SELECT jq_seq_events()", NULL, NULL);
    if (!err)
        err = pg__exec(cn, c, maint_sql[a->t], &p, a->rows);
    if (err || !leases)
        return err;
    cn->wrote = *a->rows > 0;
    cn->wake = a->t == MT_RESCUE && *a->rows > 0;
    return next_due(cn, c, a->t == MT_RESCUE
                    ? "SELECT min(lease_expires_at) FROM jobs WHERE status='processing'"
                    : "SELECT min(expires_at) FROM jobs WHERE status='pending'", a->next_ms);
}

jq_err pg__op_maint(void *self, struct sctx *c, enum maint_task t, int64_t arg_ms, int batch,
                    int *nrows, int64_t *next_ms)
{
    struct pg *s = self;
    struct maint_args a = {t, arg_ms, batch, nrows, next_ms, &s->cfg.retry};
    *nrows = 0;
    *next_ms = 0;
    if ((unsigned)t >= sizeof maint_sql / sizeof maint_sql[0] || !maint_sql[t])
        return JQ_E_INVALID;
    return pg__tx(self, c, PG_WRITE, NULL, true, w_maint, &a);
}

/* --- Idempotency-Key records --- */

jq_err pg__idem_check(struct pgconn *cn, struct sctx *c)
{
    struct idem *id = c->idem;
    struct pp p = {0};
    pp_s(&p, id->user_id);
    pp_s(&p, id->key);
    pp_i(&p, c->now_ms - id->max_age_ms);
    jq_err err;
    PGresult *r = pg__q(cn, c, "SELECT req_hash, status, body FROM idempotency"
                        " WHERE user_id=$1 AND key=$2 AND created_at>$3", &p, &err);
    if (r && PQntuples(r) > 0) {
        if (strcmp(PQgetvalue(r, 0, 0), id->req_hash) != 0) {
            err = JQ_E_IDEM;
        } else {
            id->replayed = true;
            id->status = (int)pg__int(r, 0, 1);
            free(id->body);
            id->body = pg__dup(r, 0, 2);
        }
    }
    PQclear(r);
    return err;
}

jq_err pg__idem_store(struct pgconn *cn, struct sctx *c)
{
    struct idem *id = c->idem;
    if (!id->render)
        return JQ_E_OK;
    if (!(id->body = id->render(id->arg, &id->status)))
        return JQ_E_NOMEM;     /* a write without its record would run twice on a retry */
    struct pp p = {0};
    pp_s(&p, id->user_id);
    pp_s(&p, id->key);
    pp_s(&p, id->req_hash);
    pp_i(&p, id->status);
    pp_s(&p, id->body);
    pp_i(&p, c->now_ms);
    return pg__exec(cn, c, "INSERT INTO idempotency VALUES($1,$2,$3,$4,$5,$6)"
                    " ON CONFLICT (user_id, key) DO UPDATE SET req_hash=excluded.req_hash,"
                    " status=excluded.status, body=excluded.body,"
                    " created_at=excluded.created_at", &p, NULL);
}

/* --- events (SSE) --- */

struct events_args {
    const struct event_filter *f;
    int64_t after;
    int limit;
    struct event_list *out;
};

static void load_event(const PGresult *r, int i, struct event *e)
{
    e->id = pg__int(r, i, 0);
    pg__text(r, i, 1, e->user_id, sizeof e->user_id);
    pg__text(r, i, 2, e->job_id, sizeof e->job_id);
    pg__text(r, i, 3, e->queue, sizeof e->queue);
    pg__text(r, i, 4, e->type, sizeof e->type);
    pg__text(r, i, 5, e->kind, sizeof e->kind);
    e->data = pg__dup(r, i, 6);
    e->created_at = pg__int(r, i, 7);
}

/* Runs as the service role with the user filter in the query: the retained
 * window (min/max id) is the global one, as SSE's reset logic expects. */
static jq_err r_events(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct events_args *a = arg;
    event_list_fini(a->out);
    jq_err err;
    /* give ids to the events committed so far (see jq_seq_events in the schema):
     * a constant step of every read, not one of the request's statements */
    PGresult *r = pg__q(cn, NULL, "SELECT jq_seq_events()", NULL, &err);
    PQclear(r);
    if (err)
        return err;
    r = pg__q(cn, c, "SELECT (SELECT min(id) FROM events),"
                        " (SELECT max(id) FROM events)", NULL, &err);
    a->out->min_id = r ? pg__int(r, 0, 0) : 0;
    a->out->max_id = r ? pg__int(r, 0, 1) : 0;
    PQclear(r);
    if (err)
        return err;
    struct pp p = {0};
    pp_i(&p, a->after);
    pp_s(&p, a->f->user_id);
    pp_s(&p, a->f->job_id);
    pp_s(&p, a->f->queue);
    pp_s(&p, a->f->type);
    pp_i(&p, a->limit);
    r = pg__q(cn, c, "SELECT id, user_id, job_id, queue, type, kind, data, created_at"
              " FROM events WHERE id>$1 AND ($2::text IS NULL OR user_id=$2)"
              " AND ($3::text IS NULL OR job_id=$3) AND ($4::text IS NULL OR queue=$4)"
              " AND ($5::text IS NULL OR type=$5) ORDER BY id LIMIT $6", &p, &err);
    a->out->ev = calloc((size_t)a->limit, sizeof *a->out->ev);
    if (!a->out->ev)
        err = JQ_E_NOMEM;
    for (int i = 0; r && a->out->ev && i < PQntuples(r) && i < a->limit; i++)
        load_event(r, i, &a->out->ev[a->out->n++]);
    PQclear(r);
    return err;
}

jq_err pg__op_events(void *self, struct sctx *c, const struct event_filter *f, int64_t after,
                     int limit, struct event_list *out)
{
    struct events_args a = {f, after, limit, out};
    memset(out, 0, sizeof *out);
    jq_err err = pg__tx(self, c, PG_WRITE, NULL, true, r_events, &a);
    if (err)
        event_list_fini(out);
    return err;
}

/* --- full-text search: the API's FTS5-style queries as tsquery --- */

/* Grammar (FTS5's): or := and ("OR" and)*; and := not (["AND"] not)*;
 * not := prim ("NOT" prim)*; prim := "(" or ")" | [col ":"] (word["*"] | "phrase")
 * | "NEAR(" phrase* ["," n] ")". Columns: message (weight D) and u (weight A:
 * the user's term, "u" + hex of user_id, which the server adds to scope a
 * search, as the SQLite index's u column). */
struct fts {
    const char *p;
    char *out;
    size_t n, cap;
    char *why;
    size_t wcap;
    bool bad;
};

static void fts_put(struct fts *f, const char *s, size_t len)
{
    if (f->n + len + 1 > f->cap) {
        f->bad = true;
        snprintf(f->why, f->wcap, "query too long");
        return;
    }
    memcpy(f->out + f->n, s, len);
    f->n += len;
    f->out[f->n] = '\0';
}

static void fts_err(struct fts *f, const char *msg)
{
    if (!f->bad)
        snprintf(f->why, f->wcap, "fts5: syntax error: %s", msg);
    f->bad = true;
}

static bool word_char(unsigned char ch)
{
    return isalnum(ch) || ch == '_' || ch >= 0x80;
}

static void skip_ws(struct fts *f)
{
    while (*f->p == ' ' || *f->p == '\t' || *f->p == '\n' || *f->p == '\r')
        f->p++;
}

/* The bare word at f->p (length), 0 if none. */
static size_t word_len(const struct fts *f)
{
    size_t n = 0;
    while (word_char((unsigned char)f->p[n]))
        n++;
    return n;
}

static bool keyword(struct fts *f, const char *kw)
{
    size_t n = strlen(kw);
    skip_ws(f);
    if (strncmp(f->p, kw, n) != 0 || word_char((unsigned char)f->p[n]))
        return false;
    if (strcmp(kw, "NEAR") == 0 && f->p[n] != '(')
        return false;
    f->p += n;
    return true;
}

/* One lexeme as a quoted tsquery operand (words hold no quotes or backslashes). */
static void lexeme(struct fts *f, const char *w, size_t n, bool prefix)
{
    fts_put(f, "'", 1);
    fts_put(f, w, n);
    fts_put(f, prefix ? "':*" : "'", prefix ? 3 : 1);
}

static void phrase(struct fts *f)
{
    const char *end = strchr(++f->p, '"');
    if (!end) {
        fts_err(f, "unterminated string");
        return;
    }
    int words = 0;
    fts_put(f, "(", 1);
    for (const char *q = f->p; q < end;) {
        while (q < end && !word_char((unsigned char)*q))
            q++;
        const char *w = q;
        while (q < end && word_char((unsigned char)*q))
            q++;
        if (q > w) {
            if (words++)
                fts_put(f, " <-> ", 5);
            lexeme(f, w, (size_t)(q - w), false);
        }
    }
    if (!words)
        fts_put(f, "'\x01'", 3);       /* "" matches nothing */
    fts_put(f, ")", 1);
    f->p = end + 1;
}

static void term(struct fts *f)
{
    skip_ws(f);
    if (*f->p == '"') {
        phrase(f);
        return;
    }
    size_t n = word_len(f);
    if (!n) {
        fts_err(f, *f->p ? "unexpected character" : "unexpected end of query");
        return;
    }
    const char *w = f->p;
    f->p += n;
    const char *weight = "";
    const char *colon = f->p;
    while (*colon == ' ' || *colon == '\t')
        colon++;
    if (*colon == ':') {                              /* a column filter */
        if ((n != 7 || strncmp(w, "message", 7) != 0) && (n != 1 || w[0] != 'u')) {
            fts_err(f, "no such column");
            return;
        }
        weight = w[0] == 'u' ? "A" : "D";             /* see the tsv column (pg_schema.c) */
        bool user = w[0] == 'u';
        f->p = colon + 1;
        skip_ws(f);
        if (user) {                                   /* u:<hex>: the user's term */
            n = word_len(f);
            if (!n) {
                fts_err(f, "expected a term after the column");
                return;
            }
            fts_put(f, "'u", 2);
            fts_put(f, f->p, n);
            fts_put(f, "':A", 3);
            f->p += n;
            return;
        }
        skip_ws(f);
        if (*f->p == '"') {
            phrase(f);
            return;
        }
        w = f->p;
        if (!(n = word_len(f))) {
            fts_err(f, "expected a term after the column");
            return;
        }
        f->p += n;
    }
    bool prefix = *f->p == '*';
    f->p += prefix;
    lexeme(f, w, n, prefix);
    if (*weight)
        fts_put(f, prefix ? weight : ":D", prefix ? 1 : 2);
}

static void or_expr(struct fts *f);

static void near(struct fts *f)
{
    f->p++;                                            /* "(" */
    int n = 0;
    fts_put(f, "(", 1);
    for (skip_ws(f); *f->p && *f->p != ')' && *f->p != ',' && !f->bad; skip_ws(f)) {
        if (n++)
            fts_put(f, " & ", 3);
        term(f);
    }
    if (*f->p == ',') {
        f->p++;
        skip_ws(f);
        while (isdigit((unsigned char)*f->p))
            f->p++;
        skip_ws(f);
    }
    if (*f->p != ')' || !n)
        fts_err(f, "malformed NEAR");
    else
        f->p++;
    fts_put(f, ")", 1);
}

static void prim(struct fts *f)
{
    skip_ws(f);
    if (keyword(f, "NEAR")) {
        near(f);
    } else if (*f->p == '(') {
        f->p++;
        fts_put(f, "(", 1);
        or_expr(f);
        skip_ws(f);
        if (*f->p != ')')
            fts_err(f, "expected )");
        else
            f->p++;
        fts_put(f, ")", 1);
    } else if (keyword(f, "AND") || keyword(f, "OR") || keyword(f, "NOT")) {
        fts_err(f, "operator without an operand");
    } else {
        term(f);
    }
}

static void not_expr(struct fts *f)
{
    prim(f);
    while (!f->bad && keyword(f, "NOT")) {
        fts_put(f, " & !", 4);
        prim(f);
    }
}

static bool at_and_operand(struct fts *f)
{
    skip_ws(f);
    const char *save = f->p;
    bool or = keyword(f, "OR");
    f->p = save;
    return *f->p && *f->p != ')' && !or;
}

static void and_expr(struct fts *f)
{
    fts_put(f, "(", 1);
    not_expr(f);
    while (!f->bad) {
        bool kw = keyword(f, "AND");
        if (!kw && !at_and_operand(f))
            break;
        fts_put(f, " & ", 3);
        not_expr(f);
    }
    fts_put(f, ")", 1);
}

static void or_expr(struct fts *f)
{
    and_expr(f);
    while (!f->bad && keyword(f, "OR")) {
        fts_put(f, " | ", 3);
        and_expr(f);
    }
}

jq_err pg__fts(const char *q, char *out, size_t cap, char *why, size_t wcap)
{
    struct fts f = {q, out, 0, cap, why, wcap, false};
    out[0] = '\0';
    why[0] = '\0';
    or_expr(&f);
    skip_ws(&f);
    if (!f.bad && *f.p)
        fts_err(&f, *f.p == ')' ? "unbalanced )" : "unexpected text");
    return f.bad ? JQ_E_INVALID : JQ_E_OK;
}

jq_err pg__op_log_query_ok(void *self, struct sctx *c, const char *q, char *why, size_t cap)
{
    (void)self;
    (void)c;
    size_t n = strlen(q) * 8 + 64;
    char *out = malloc(n);
    if (!out)
        return JQ_E_NOMEM;
    jq_err err = pg__fts(q, out, n, why, cap);
    free(out);
    return err;
}

struct search_args { const struct log_search *in; const char *tsq; struct log_hits *out; };

static void load_hit(const PGresult *r, int i, struct log_hit *h)
{
    h->row.id = pg__int(r, i, 0);
    pg__text(r, i, 1, h->row.job_id, sizeof h->row.job_id);
    h->row.created_at = pg__int(r, i, 2);
    h->row.level = (int)pg__int(r, i, 3);
    h->row.message = pg__dup(r, i, 4);
    h->row.metadata = pg__dup(r, i, 5);
    h->snippet = pg__dup(r, i, 6);
    pg__text(r, i, 7, h->type, sizeof h->type);
}

static jq_err r_search(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct search_args *a = arg;
    const struct log_search *in = a->in;
    log_hits_fini(a->out);
    struct pp p = {0};
    pp_s(&p, a->tsq);
    pp_s(&p, in->scope);
    pp_i(&p, in->level);
    pp_s(&p, in->job_id);
    pp_s(&p, in->type);
    pp_i(&p, in->since);
    pp_s(&p, in->metadata_q);
    pp_i(&p, in->limit);
    pp_i(&p, in->offset);
    pp_s(&p, "StartSel=\002, StopSel=\003, MaxWords=16, MinWords=4, ShortWord=0");
    jq_err err;
    PGresult *r = pg__q(cn, c,
        "SELECT l.id, l.job_id, l.created_at, l.level, l.message, l.metadata::text,"
        " ts_headline('simple', l.message, q, $10), j.type"
        " FROM to_tsquery('simple', $1) q, job_logs l JOIN jobs j ON j.id = l.job_id"
        " WHERE l.tsv @@ q AND ($2::text IS NULL OR l.user_id = $2) AND l.level >= $3"
        " AND ($4::text IS NULL OR l.job_id = $4) AND ($5::text IS NULL OR j.type = $5)"
        " AND l.created_at >= $6 AND ($7::jsonb IS NULL OR l.metadata @> $7::jsonb)"
        " ORDER BY ts_rank(l.tsv, q) DESC, l.id LIMIT $8 OFFSET $9", &p, &err);
    int n = r ? PQntuples(r) : 0;
    a->out->hits = calloc((size_t)in->limit, sizeof *a->out->hits);
    if (!a->out->hits)
        err = JQ_E_NOMEM;
    for (int i = 0; a->out->hits && i < n && i < in->limit; i++)
        load_hit(r, i, &a->out->hits[a->out->n++]);
    PQclear(r);
    return err;
}

jq_err pg__op_log_search(void *self, struct sctx *c, const struct log_search *in,
                         struct log_hits *out)
{
    memset(out, 0, sizeof *out);
    size_t cap = strlen(in->q) * 8 + 64;
    char *tsq = malloc(cap), why[128];
    if (!tsq)
        return JQ_E_NOMEM;
    struct search_args a = {in, tsq, out};
    jq_err err = pg__fts(in->q, tsq, cap, why, sizeof why);
    if (!err)
        err = pg__tx(self, c, PG_READ, in->scope, true, r_search, &a);
    free(tsq);
    if (err)
        log_hits_fini(out);
    return err;
}

/* --- tokens (no row-level security: looked up before a user is known) --- */

static void hex_hash(const uint8_t hash[TOKEN_HASH_LEN], char out[2 * TOKEN_HASH_LEN + 3])
{
    out[0] = '\\';
    out[1] = 'x';
    for (int i = 0; i < TOKEN_HASH_LEN; i++)
        snprintf(out + 2 + 2 * i, 3, "%02x", hash[i]);
}

struct token_args {
    const uint8_t *hash;
    const struct principal *in;
    struct principal *out;
    const char *name, *id;
    int64_t *count;
};

static jq_err w_token_add(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct token_args *a = arg;
    char hx[2 * TOKEN_HASH_LEN + 3];
    hex_hash(a->hash, hx);
    struct pp p = {0};
    pp_s(&p, a->in->token_id);
    pp_s(&p, hx);
    pp_s(&p, a->in->user_id);
    pp_s(&p, role_name(a->in->role));
    pp_s(&p, a->name);
    pp_i(&p, c->now_ms);
    if (a->in->active_limit >= 0)
        pp_i(&p, a->in->active_limit);
    else
        pp_s(&p, NULL);
    return pg__exec(cn, c, "INSERT INTO tokens(id,hash,user_id,role,name,created_at,"
                    "active_limit) VALUES($1,$2::bytea,$3,$4,$5,$6,$7)", &p, NULL);
}

jq_err pg__op_token_add(void *self, struct sctx *c, const uint8_t hash[TOKEN_HASH_LEN],
                        const struct principal *p, const char *name)
{
    struct token_args a = {.hash = hash, .in = p, .name = name};
    return pg__tx(self, c, PG_WRITE, NULL, false, w_token_add, &a);
}

static jq_err w_token_revoke(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct token_args *a = arg;
    struct pp p = {0};
    pp_s(&p, a->id);
    pp_i(&p, c->now_ms);
    int n = 0;
    jq_err err = pg__exec(cn, c, "UPDATE tokens SET revoked_at=$2 WHERE id=$1"
                          " AND revoked_at IS NULL", &p, &n);
    return err ? err : n ? JQ_E_OK : JQ_E_NOT_FOUND;
}

jq_err pg__op_token_revoke(void *self, struct sctx *c, const char *token_id)
{
    struct token_args a = {.id = token_id};
    return pg__tx(self, c, PG_WRITE, NULL, false, w_token_revoke, &a);
}

static jq_err r_token_find(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct token_args *a = arg;
    char hx[2 * TOKEN_HASH_LEN + 3];
    hex_hash(a->hash, hx);
    struct pp p = {0};
    pp_s(&p, hx);
    jq_err err;
    PGresult *r = pg__q(cn, c, "SELECT id, user_id, role, active_limit FROM tokens"
                        " WHERE hash=$1::bytea AND revoked_at IS NULL", &p, &err);
    if (r) {
        err = JQ_E_UNAUTH;
        if (PQntuples(r) > 0) {
            pg__text(r, 0, 0, a->out->token_id, sizeof a->out->token_id);
            pg__text(r, 0, 1, a->out->user_id, sizeof a->out->user_id);
            err = role_parse(PQgetvalue(r, 0, 2), &a->out->role) ? JQ_E_OK : JQ_E_UNAUTH;
            a->out->active_limit = pg__null(r, 0, 3) ? -1 : pg__int(r, 0, 3);
        }
    }
    PQclear(r);
    return err;
}

jq_err pg__op_token_find(void *self, struct sctx *c, const uint8_t hash[TOKEN_HASH_LEN],
                         struct principal *out)
{
    struct token_args a = {.hash = hash, .out = out};
    return pg__tx(self, c, PG_READ, NULL, true, r_token_find, &a);
}

static jq_err r_token_count(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct token_args *a = arg;
    jq_err err;
    PGresult *r = pg__q(cn, c, "SELECT count(*) FROM tokens", NULL, &err);
    *a->count = r ? pg__int(r, 0, 0) : 0;
    PQclear(r);
    return err;
}

jq_err pg__op_token_count(void *self, struct sctx *c, int64_t *n)
{
    struct token_args a = {.count = n};
    return pg__tx(self, c, PG_READ, NULL, true, r_token_count, &a);
}

/* --- query plans: EXPLAIN of the hot statements with representative values --- */

struct plan { const char *what, *sql; };
static const struct plan plans[] = {
    {"claim", "SELECT id FROM jobs WHERE status='pending' AND blocked=0 AND queue='q'"
              " AND run_at<=0"
              " AND (expires_at IS NULL OR expires_at>0) ORDER BY priority DESC, run_at, id"
              " LIMIT 1 FOR UPDATE SKIP LOCKED"},
    {"rescue", "SELECT id FROM jobs WHERE status='processing' AND lease_expires_at<=0"
               " ORDER BY lease_expires_at LIMIT 1000"},
    {"expire", "SELECT id FROM jobs WHERE status='pending' AND expires_at<=0"
               " ORDER BY expires_at LIMIT 1000"},
    {"get", "SELECT * FROM jobs WHERE id='x'"},
    {"logs", "SELECT * FROM job_logs WHERE job_id='x' AND id>0 ORDER BY id LIMIT 100"},
    {"token", "SELECT * FROM tokens WHERE hash='\\x00'::bytea AND revoked_at IS NULL"},
    {"list_all", "SELECT * FROM jobs ORDER BY created_at DESC, id DESC LIMIT 50"},
    {"list_user", "SELECT * FROM jobs WHERE user_id='u' ORDER BY created_at DESC, id DESC"
                  " LIMIT 50"},
    {"list_user_status", "SELECT * FROM jobs WHERE user_id='u' AND status='pending'"
                         " ORDER BY created_at DESC, id DESC LIMIT 50"},
    {"list_user_type", "SELECT * FROM jobs WHERE user_id='u' AND type='t'"
                       " ORDER BY created_at DESC, id DESC LIMIT 50"},
    {"list_user_queue", "SELECT * FROM jobs WHERE user_id='u' AND queue='q'"
                        " ORDER BY created_at DESC, id DESC LIMIT 50"},
    {"count_user_status", "SELECT n FROM counts WHERE dim='u' AND key='u' AND status='pending'"},
    {"dedup", "SELECT * FROM jobs WHERE user_id='u' AND type='t' AND params_hash='h'"
              " AND status IN ('pending','processing') AND created_at>=0"
              " ORDER BY created_at DESC LIMIT 1"},
    {"cleanup", "SELECT id FROM jobs WHERE status IN ('completed','failed','cancelled')"
                " AND completed_at<0 ORDER BY completed_at LIMIT 1000"},
    {"list_user_params", "SELECT * FROM jobs WHERE user_id='u' AND params @> '{\"a\":1}'"
                         " ORDER BY created_at DESC, id DESC LIMIT 50"},
    {"log_search", "SELECT * FROM job_logs WHERE tsv @@ to_tsquery('simple', 'x')"},
    {"events", "SELECT * FROM events WHERE id>0 ORDER BY id LIMIT 100"},
    /* not a plan: bloat health of jobq's tables, one line per table (run as is) */
    /* one line per table, no spaces inside values (GET /v1/admin/tables parses it) */
    {"table_health", "!SELECT relname || ' live=' || n_live_tup || ' dead=' || n_dead_tup"
                     " || ' last_autovacuum=' || coalesce(to_char(last_autovacuum AT TIME ZONE"
                     " 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-')"
                     " || ' size=' || pg_total_relation_size(relid)"
                     " FROM pg_stat_user_tables ORDER BY n_dead_tup DESC, relname"},
};

struct explain_args { const char *sql; char *out; size_t cap; };

static jq_err r_explain(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct explain_args *a = arg;
    char sql[1024];
    if (a->sql[0] == '!')
        snprintf(sql, sizeof sql, "%s", a->sql + 1);
    else
        snprintf(sql, sizeof sql, "EXPLAIN %s", a->sql);
    jq_err err;
    PGresult *r = pg__q(cn, c, sql, NULL, &err);
    size_t n = 0;
    a->out[0] = '\0';
    for (int i = 0; r && i < PQntuples(r) && n < a->cap; i++)
        n += (size_t)snprintf(a->out + n, a->cap - n, "%s\n", PQgetvalue(r, i, 0));
    PQclear(r);
    return err;
}

jq_err pg__op_explain(void *self, const char *what, char *out, size_t cap)
{
    for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++)
        if (strcmp(plans[i].what, what) == 0) {
            struct explain_args a = {plans[i].sql, out, cap};
            return pg__tx(self, NULL, PG_READ, NULL, true, r_explain, &a);
        }
    return JQ_E_NOT_FOUND;
}
