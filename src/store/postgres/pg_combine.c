/*
 * pg_combine.c - group commit for single creates on PostgreSQL.
 *
 * A create in its own transaction costs four round trips, a planner-heavy
 * insert into a table with many indexes, three statement triggers and a WAL
 * flush; at a few thousand creates/s that is most of two cores. The SQLite
 * backend answers this with its writer thread's group commit; this is the
 * same idea for PostgreSQL: concurrent creates of one user that need no
 * per-user serialization (no unique_key, dedup or active limit, no
 * dependencies, no Idempotency-Key) queue here; a "leader" takes the queued
 * creates of its user (one group per user in flight, GROUPS_MAX in all) and
 * runs them as one transaction: one INSERT … SELECT over a JSON array that also
 * does each item's result-cache lookup. Each create still commits durably
 * before its reply, and all of it or none of it commits (a group shares the
 * outcome of its transaction). Nobody waits for a group to fill: with
 * nothing in flight a create runs at once as a group of one; groups grow
 * only while earlier ones are committing.
 *
 * If a group's transaction fails, every item runs again on its own thread
 * through the ordinary single create, which first looks for its job id (the
 * group may have committed before the connection broke), so one bad item
 * cannot fail the others and none is created twice.
 */
#include "store/postgres/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One group in flight per user; the user's next group fills while it commits. More
 * would split the queue into smaller groups and pay the per-transaction CPU (round
 * trips, triggers, the WAL flush's wake-ups) more often: W3 --quick (one user) on 2
 * busy cores ran 1,650 jobs/s with one group in flight, 1,400 with two, 920 with four.
 * GROUPS_MAX: groups of different users in flight at once, leaving most of the
 * default pool (16) to the other operations.
 * GROUP_ITEMS: bounds the JSON parameter (about 400 bytes an item). */
enum { GROUPS_MAX = PG_CB_GROUPS, GROUP_ITEMS = 256 };

/* One waiting create (on its caller's stack). */
struct pg_cb_item {
    const struct job_new *in;
    struct sctx *c;
    struct job *out;
    enum create_outcome *how;
    char id[ID_LEN + 1];          /* made at arrival: ids follow arrival order */
    jq_err err;                   /* the outcome, once done */
    bool taken;                   /* in a group (no longer queued) */
    bool done;                    /* set under cbmu by the leader */
    bool alone;                   /* the group failed: run as a single create */
    struct pg_cb_item *next;      /* queue link */
};

struct group {
    struct pg_cb_item *items[GROUP_ITEMS];
    int n;
    char *json;                   /* the items as a JSON array (the statement's $1) */
    PGresult *res;                /* the statement's rows, read after COMMIT */
};

static bool combinable(const struct sctx *c, const struct job_new *in)
{
    return !c->idem && !in->unique_key && in->dedup_window_ms <= 0 && in->active_limit <= 0 &&
           in->n_deps == 0 && !in->replace;
}

/* --- the group's statement --- */

/* [{"i","id","q","t","p","h","pr","r","m","e","n","cs"}…]: cs is the oldest completed_at
 * the result cache accepts (null: no cache lookup). malloc'd. */
static char *group_json(const struct group *g)
{
    json_t *arr = json_array();
    for (int i = 0; i < g->n; i++) {
        const struct pg_cb_item *it = g->items[i];
        const struct job_new *j = it->in;
        json_t *cs = j->cache_ttl_ms > 0 ? json_integer(it->c->now_ms - j->cache_ttl_ms)
                                         : json_null();
        json_array_append_new(arr, json_pack(
            "{s:i, s:s, s:s, s:s, s:s, s:s?, s:i, s:I, s:i, s:I, s:I, s:o}", "i", i,
            "id", it->id, "q", j->queue, "t", j->type, "p", j->params, "h", j->params_hash,
            "pr", j->priority, "r", (json_int_t)j->run_at, "m", j->max_attempts,
            "e", (json_int_t)j->expires_at, "n", (json_int_t)it->c->now_ms, "cs", cs));
    }
    char *out = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return out;
}

/* Rows: the cache hits (item index in the last column), then the new jobs (-1). */
static jq_err w_group(struct pgconn *cn, struct sctx *c, void *arg)
{
    struct group *g = arg;
    struct pp p = {0};
    pp_s(&p, g->json);
    pp_s(&p, g->items[0]->in->user_id);
    PQclear(g->res);                  /* a retried transaction starts over */
    jq_err err;
    g->res = pg__q(cn, c,
        "WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(i integer, id text,"
        "  q text, t text, p text, h text, pr integer, r bigint, m integer, e bigint, n bigint,"
        "  cs bigint)),"
        " hit AS (SELECT j.*, x.i FROM x CROSS JOIN LATERAL (SELECT " PG_JOB_COLS " FROM jobs"
        "  WHERE user_id=$2 AND type=x.t AND params_hash=x.h AND status='completed'"
        "  AND completed_at>=x.cs ORDER BY completed_at DESC LIMIT 1) j WHERE x.cs IS NOT NULL),"
        " ins AS (INSERT INTO jobs(id,user_id,queue,type,params,status,priority,run_at,"
        "  created_at,updated_at,attempts,max_attempts,expires_at,params_hash)"
        "  SELECT x.id, $2, x.q, x.t, x.p::jsonb, 'pending', x.pr, x.r, x.n, x.n, 0, x.m,"
        "  nullif(x.e, 0), x.h FROM x WHERE x.i NOT IN (SELECT i FROM hit) ORDER BY x.id"
        "  RETURNING " PG_JOB_COLS ")"
        " SELECT * FROM hit UNION ALL SELECT ins.*, -1 FROM ins", &p, &err);
    cn->wrote = true;
    for (int i = 0; i < g->n; i++)
        if (g->items[i]->in->run_at <= g->items[i]->c->now_ms)
            cn->wake = true;
    return err;
}

static int item_by_id(const struct group *g, const char *id)
{
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->items[i]->id, id) == 0)
            return i;
    return -1;
}

/* Hands each item its row; an item without one fails (cannot happen: every item
 * either hit the cache or was inserted). */
static void group_deliver(struct group *g)
{
    for (int i = 0; i < g->n; i++)
        g->items[i]->err = JQ_E_INTERNAL;
    for (int r = 0; r < PQntuples(g->res); r++) {
        int i = (int)pg__int(g->res, r, PG_NCOLS);
        bool cached = i >= 0;
        if (!cached)
            i = item_by_id(g, PQgetvalue(g->res, r, 0));
        if (i < 0 || g->items[i]->err == JQ_E_OK)
            continue;
        job_fini(g->items[i]->out);       /* loaded by an attempt that was retried */
        pg__load_job(g->res, r, g->items[i]->out);
        *g->items[i]->how = cached ? CREATE_CACHED : CREATE_NEW;
        g->items[i]->err = JQ_E_OK;
    }
}

/* --- the queue --- */

/* The slot for a new group of user, or -1 while one of user's is in flight or all
 * GROUPS_MAX are; under cbmu. */
static int group_slot(const struct pg *s, const char *user)
{
    int free_slot = -1;
    for (int i = 0; i < GROUPS_MAX; i++) {
        if (!s->cb_users[i])
            free_slot = free_slot < 0 ? i : free_slot;
        else if (strcmp(s->cb_users[i], user) == 0)
            return -1;
    }
    return free_slot;
}

/* Takes the queued creates of user (in arrival order); under cbmu. */
static void group_take(struct pg *s, struct group *g, const char *user)
{
    struct pg_cb_item **link = &s->cb_head, *last = NULL;
    g->n = 0;
    while (*link && g->n < GROUP_ITEMS) {
        struct pg_cb_item *it = *link;
        if (strcmp(it->in->user_id, user) == 0) {
            it->taken = true;
            g->items[g->n++] = it;
            *link = it->next;
        } else {
            last = it;
            link = &it->next;
        }
    }
    if (!*link)                       /* scanned to the end: the last item kept is the tail */
        s->cb_tail = last;
}

/* Runs one group as the leader (cbmu not held) and marks its items done. */
static void group_run(struct pg *s, struct sctx *c, struct group *g, int slot)
{
    g->res = NULL;
    g->json = group_json(g);
    jq_err err = g->json ? pg__tx(s, c, PG_WRITE, g->items[0]->in->user_id, false, w_group, g)
                         : JQ_E_NOMEM;
    if (!err)
        group_deliver(g);
    PQclear(g->res);
    free(g->json);
    pthread_mutex_lock(&s->cbmu);
    for (int i = 0; i < g->n; i++) {
        struct pg_cb_item *it = g->items[i];
        it->alone = err != JQ_E_OK;
        if (it->c != c)
            it->c->stmts += 1;        /* the one statement that did its work */
        it->done = true;
    }
    s->cb_users[slot] = NULL;
    pthread_cond_broadcast(&s->cbcond);
    pthread_mutex_unlock(&s->cbmu);
}

jq_err pg__op_create(void *self, struct sctx *c, const struct job_new *in, struct job *out,
                     enum create_outcome *how)
{
    struct pg *s = self;
    memset(out, 0, sizeof *out);          /* a retried group loads it again: see one_job */
    if (!combinable(c, in))
        return pg__create_one(s, c, in, NULL, out, how);
    struct pg_cb_item me = {.in = in, .c = c, .out = out, .how = how};
    pg__new_id(s, c->now_ms, me.id);
    pthread_mutex_lock(&s->cbmu);
    if (s->cb_tail)
        s->cb_tail->next = &me;
    else
        s->cb_head = &me;
    s->cb_tail = &me;
    while (!me.done) {
        /* only a create still queued leads: one whose group is in flight just waits
         * for it (its reply would otherwise wait for a group of others) */
        int slot = me.taken ? -1 : group_slot(s, in->user_id);
        if (slot >= 0) {
            struct group g;
            group_take(s, &g, in->user_id);
            s->cb_users[slot] = in->user_id;      /* borrowed: our request outlives the group */
            pthread_mutex_unlock(&s->cbmu);
            group_run(s, c, &g, slot);
            pthread_mutex_lock(&s->cbmu);
        } else {
            pthread_cond_wait(&s->cbcond, &s->cbmu);
        }
    }
    pthread_mutex_unlock(&s->cbmu);
    if (me.alone)                     /* the group failed: on our own, id first */
        return pg__create_one(s, c, in, me.id, out, how);
    return me.err;
}
