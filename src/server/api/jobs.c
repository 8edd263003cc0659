/*
 * jobs.c - the producer's resource: create (with unique_key, dedup, result
 * cache and the active limit, decided atomically by the store), list with
 * offsets or cursors, show with ETags, cancel, retry and delete. A user acts
 * within their own jobs only (q->scope); another user's job answers exactly
 * like a missing one.
 */
#include "server/api/api.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/canon.h"
#include "core/cursor.h"
#include "server/cache.h"
#include "server/maint.h"

enum { PRIORITY_LIM = 1000, RETRY_AFTER_S = 5 };
#define DELAY_MAX_MS ((int64_t)365 * 86400000)
#define TTL_MIN_MS 1000
#define TTL_MAX_MS ((int64_t)30 * 86400000)

/* Reads run_at / delay_ms and expires_at / ttl_ms into in (relative to now). */
static bool parse_times(struct req *q, json_t *b, struct job_new *in)
{
    int64_t now = q->sc.now_ms, delay = -1, ttl = q->d->cfg.ttl_ms, at = 0, exp = 0;
    if (!want_time(q, b, "run_at", &at) || !want_int(q, b, "delay_ms", 0, DELAY_MAX_MS, &delay) ||
        !want_time(q, b, "expires_at", &exp) ||
        !want_int(q, b, "ttl_ms", TTL_MIN_MS, TTL_MAX_MS, &ttl))
        return false;
    if (at && delay >= 0) {
        reply_err(q, JQ_E_INVALID, "delay_ms", "give run_at or delay_ms, not both");
        return false;
    }
    if (exp && json_object_get(b, "ttl_ms")) {
        reply_err(q, JQ_E_INVALID, "ttl_ms", "give expires_at or ttl_ms, not both");
        return false;
    }
    in->run_at = at ? at : now + (delay > 0 ? delay : 0);   /* a past run_at is kept: it
                                                              * orders the job among peers */
    in->expires_at = exp ? exp : (in->run_at > now ? in->run_at : now) + ttl;
    if (in->expires_at <= in->run_at) {
        reply_err(q, JQ_E_INVALID, "expires_at", "expires_at must be after run_at");
        return false;
    }
    return true;
}

/* Owned buffers behind a struct job_new. */
struct new_buf {
    char *params;
    char hash[CANON_HASH_LEN + 1];
};

/* Validates one job object (single or batch item) into in/nb. */
static bool parse_new(struct req *q, json_t *b, struct job_new *in, struct new_buf *nb)
{
    int64_t prio = 0, attempts = q->d->cfg.max_attempts;
    *in = (struct job_new){.user_id = q->who.user_id, .queue = "default"};
    if (!want_name(q, b, "type", true, &in->type) || !want_name(q, b, "queue", false, &in->queue) ||
        !want_json(q, b, "params", true, PARAMS_MAX, &nb->params) ||
        !want_int(q, b, "priority", -PRIORITY_LIM, PRIORITY_LIM, &prio) ||
        !want_int(q, b, "max_attempts", 1, 100, &attempts) ||
        !want_name(q, b, "unique_key", false, &in->unique_key) || !parse_times(q, b, in))
        return false;
    json_t *p = json_object_get(b, "params");
    json_t *empty = json_object();
    int ok = canon_hash(json_is_object(p) ? p : empty, nb->hash);
    json_decref(empty);
    if (!ok) {
        reply_err(q, JQ_E_NOMEM, NULL, "out of memory");
        return false;
    }
    in->params = nb->params ? nb->params : "{}";
    in->params_hash = nb->hash;
    in->priority = (int)prio;
    in->max_attempts = (int)attempts;
    return true;
}

/* The active limit of the caller: its token's, else the default for users. */
static int64_t active_limit(const struct req *q)
{
    if (q->who.active_limit >= 0)
        return q->who.active_limit;
    return q->who.role == ROLE_USER ? q->d->cfg.active_limit : 0;
}

struct created { struct job job; enum create_outcome how; };

enum { DEPS_MAX = 100 };

/* on_conflict: "return" (default) or "replace" (debounce: a pending job with
 * the unique_key takes the new params and run_at). */
static bool parse_conflict(struct req *q, json_t *b, struct job_new *in)
{
    const char *oc = "return";
    if (!want_str(q, b, "on_conflict", false, 16, &oc))
        return false;
    if (strcmp(oc, "return") && strcmp(oc, "replace")) {
        reply_err(q, JQ_E_INVALID, "on_conflict", "on_conflict must be return or replace");
        return false;
    }
    in->replace = strcmp(oc, "replace") == 0;
    if (in->replace && !in->unique_key) {
        reply_err(q, JQ_E_INVALID, "on_conflict", "on_conflict replace needs a unique_key");
        return false;
    }
    return true;
}

/* depends_on: up to DEPS_MAX ids of the caller's jobs; on_parent_failure. */
static bool parse_deps(struct req *q, json_t *b, struct job_new *in, const char **ids)
{
    json_t *arr = json_object_get(b, "depends_on");
    const char *policy = NULL;
    if (!want_str(q, b, "on_parent_failure", false, 16, &policy))
        return false;
    if (policy && strcmp(policy, "cancel") && strcmp(policy, "run")) {
        reply_err(q, JQ_E_INVALID, "on_parent_failure", "on_parent_failure must be cancel or run");
        return false;
    }
    in->on_parent_failure = policy;
    if (!arr || json_is_null(arr))
        return true;
    if (!json_is_array(arr) || json_array_size(arr) > DEPS_MAX) {
        reply_err(q, JQ_E_INVALID, "depends_on", "depends_on must be an array of at most %d job "
                  "ids", DEPS_MAX);
        return false;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *id = json_string_value(json_array_get(arr, i));
        if (!id || !id_valid(id)) {
            char f[32];
            snprintf(f, sizeof f, "depends_on[%d]", (int)i);
            reply_err(q, JQ_E_INVALID, f, "not a job id");
            return false;
        }
        ids[i] = id;
    }
    in->depends_on = ids;
    in->n_deps = (int)json_array_size(arr);
    return true;
}

static char *render_created(void *arg, int *status)
{
    struct created *c = arg;
    json_t *o = api_job_json(&c->job, false);
    json_object_set_new(o, "deduplicated", json_boolean(c->how == CREATE_DEDUP));
    json_object_set_new(o, "cached", json_boolean(c->how == CREATE_CACHED));
    *status = c->how == CREATE_NEW ? 201 : 200;
    return api_text(o);
}

static void limit_reply(struct req *q)
{
    reply_err(q, JQ_E_LIMIT, NULL, "user %s has reached the limit of %lld active jobs",
              q->who.user_id, (long long)active_limit(q));
    reply_header(q, "Retry-After", "%d", RETRY_AFTER_S);
}

void api_jobs_create(struct req *q)
{
    static const char *const allowed[] = {"type", "queue", "params", "priority", "run_at",
        "delay_ms", "max_attempts", "ttl_ms", "expires_at", "dedup", "cache", "unique_key",
        "on_conflict", "depends_on", "on_parent_failure", NULL};
    json_t *b = api_body(q, allowed);
    struct job_new in;
    struct new_buf nb = {0};
    const char *deps[DEPS_MAX];
    bool dedup = true, cache = true;
    if (b && parse_new(q, b, &in, &nb) && want_bool(q, b, "dedup", &dedup) &&
        want_bool(q, b, "cache", &cache) && parse_conflict(q, b, &in) &&
        parse_deps(q, b, &in, deps)) {
        struct created cr = {0};
        if (in.n_deps)
            dedup = cache = false;                 /* its parents are part of its identity */
        in.dedup_window_ms = dedup ? q->d->cfg.dedup_window_ms : 0;
        in.cache_ttl_ms = cache ? config_cache_ttl(&q->d->cfg, in.type) : 0;
        in.active_limit = active_limit(q);
        api_render_with(q, render_created, &cr);
        jq_err err = store_create(q->d->st, &q->sc, &in, &cr.job, &cr.how);
        if (err == JQ_E_LIMIT)
            limit_reply(q);
        else if (err == JQ_E_DEPS)
            reply_err(q, JQ_E_INVALID, "depends_on", "depends_on names a job that does not "
                      "exist");
        else
            api_finish(q, err, render_created, &cr);
        if (!err && cr.how == CREATE_NEW)
            maint_poke(q->d->maint, MT_EXPIRE, cr.job.expires_at);
        if (!err && in.replace && cr.job.id[0]) {     /* a replaced job took new params */
            const char *id = cr.job.id;
            cache_drop_jobs(q->d->cache, &id, 1);
        }
        job_fini(&cr.job);
    }
    free(nb.params);
    json_decref(b);
}

/* --- batch --- */

enum { BATCH_MAX = 1000, DETAILS_MAX = 100 };

struct batch_out { struct job_list list; int created; };

static char *render_batch(void *arg, int *status)
{
    struct batch_out *bo = arg;
    struct buf b;
    buf_init(&b, JOBS_REPLY_MAX);
    buf_put(&b, "{\"jobs\":", 8);
    api_jobs_put(&b, &bo->list, false);
    buf_printf(&b, ",\"created\":%d,\"existing\":%d}", bo->created,
               bo->list.n - bo->created);
    *status = 201;
    return api_buf_text(&b);
}

/* Moves the error the validators wrote for item i into details. */
static void collect_error(struct req *q, int i, json_t *details, char *first, size_t cap)
{
    json_t *e = json_object_get(q->reply, "error");
    const char *field = json_string_value(json_object_get(e, "field"));
    if (!first[0])
        snprintf(first, cap, "jobs[%d]%s%s", i, field ? "." : "", field ? field : "");
    if (json_array_size(details) < DETAILS_MAX)
        json_array_append_new(details, json_pack("{s:i, s:s?, s:O, s:O}", "index", i,
            "field", field, "code", json_object_get(e, "code"), "message",
            json_object_get(e, "message")));
    reply_empty(q, 500);
}

/* Validates every item; on any error replies 400 with details and returns false. */
static bool parse_items(struct req *q, json_t *arr, struct job_new *items, struct new_buf *bufs)
{
    static const char *const allowed[] = {"type", "queue", "params", "priority", "run_at",
        "delay_ms", "max_attempts", "ttl_ms", "expires_at", "unique_key", NULL};
    json_t *details = json_array();
    char first[160] = "";
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *it = json_array_get(arr, i);
        const char *key;
        json_t *v;
        bool ok = json_is_object(it);
        if (!ok)
            reply_err(q, JQ_E_INVALID, NULL, "each job must be a JSON object");
        json_object_foreach(ok ? it : NULL, key, v) {
            const char *const *a = allowed;
            while (*a && strcmp(*a, key))
                a++;
            if (!*a && ok) {
                reply_err(q, JQ_E_INVALID, key, "unknown field '%.64s'", key);
                ok = false;
            }
        }
        if (!ok || !parse_new(q, it, &items[i], &bufs[i]))
            collect_error(q, (int)i, details, first, sizeof first);
    }
    if (json_array_size(details) == 0) {
        json_decref(details);
        return true;
    }
    reply_err(q, JQ_E_INVALID, first, "%zu of %zu jobs are invalid", json_array_size(details),
              json_array_size(arr));
    json_object_set_new(json_object_get(q->reply, "error"), "details", details);
    return false;
}

static void run_batch(struct req *q, json_t *arr, bool replace)
{
    size_t n = json_array_size(arr);
    struct job_new *items = calloc(n, sizeof *items);
    struct new_buf *bufs = calloc(n, sizeof *bufs);
    if (items && bufs && parse_items(q, arr, items, bufs)) {
        struct batch_req in = {.user_id = q->who.user_id, .items = items, .n = (int)n,
                               .replace = replace, .active_limit = active_limit(q)};
        struct batch_out bo = {0};
        api_render_with(q, render_batch, &bo);
        jq_err err = store_create_batch(q->d->st, &q->sc, &in, &bo.list, &bo.created);
        if (err == JQ_E_LIMIT)
            limit_reply(q);
        else
            api_finish(q, err, render_batch, &bo);
        const char **ids = !err && replace ? calloc((size_t)bo.list.n + 1, sizeof *ids) : NULL;
        for (int i = 0; ids && i < bo.list.n; i++)   /* replaced jobs took new params */
            ids[i] = bo.list.jobs[i].id;
        if (ids)
            cache_drop_jobs(q->d->cache, ids, bo.list.n);
        else if (!err && replace)
            cache_drop_all(q->d->cache);
        free(ids);
        job_list_fini(&bo.list);
    } else if (!items || !bufs) {
        reply_err(q, JQ_E_NOMEM, NULL, "out of memory");
    }
    for (size_t i = 0; bufs && i < n; i++)
        free(bufs[i].params);
    free(bufs);
    free(items);
}

void api_jobs_batch(struct req *q)
{
    static const char *const allowed[] = {"jobs", "on_conflict", NULL};
    json_t *b = api_body(q, allowed);
    const char *conflict = "return";
    json_t *arr = json_object_get(b, "jobs");
    if (!b) {
        return;
    } else if (!json_is_array(arr) || json_array_size(arr) < 1 ||
               json_array_size(arr) > BATCH_MAX) {
        reply_err(q, JQ_E_INVALID, "jobs", "jobs must be an array of 1 to %d jobs", BATCH_MAX);
    } else if (want_str(q, b, "on_conflict", false, 16, &conflict)) {
        if (strcmp(conflict, "return") && strcmp(conflict, "replace"))
            reply_err(q, JQ_E_INVALID, "on_conflict", "on_conflict must be return or replace");
        else
            run_batch(q, arr, strcmp(conflict, "replace") == 0);
    }
    json_decref(b);
}

/* --- bulk cancel --- */

enum { CANCEL_IDS_MAX = 1000, CANCEL_FILTER_MAX = 10000 };

struct cancelled { int n; int max; };

static char *render_cancelled(void *arg, int *status)
{
    struct cancelled *c = arg;
    *status = 200;
    return api_text(json_pack("{s:i, s:b}", "cancelled", c->n, "more", c->max && c->n >= c->max));
}

static bool parse_ids(struct req *q, json_t *ids, const char **out)
{
    if (!json_is_array(ids) || json_array_size(ids) < 1 ||
        json_array_size(ids) > CANCEL_IDS_MAX) {
        reply_err(q, JQ_E_INVALID, "ids", "ids must be an array of 1 to %d job ids",
                  CANCEL_IDS_MAX);
        return false;
    }
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        if (!id || !id_valid(id)) {
            char f[32];
            snprintf(f, sizeof f, "ids[%zu]", i);
            reply_err(q, JQ_E_INVALID, f, "not a job id");
            return false;
        }
        out[i] = id;
    }
    return true;
}

static bool parse_cancel_filter(struct req *q, json_t *f, struct cancel_req *in)
{
    static const char *const allowed[] = {"status", "type", "queue", NULL};
    const char *status = NULL, *key;
    json_t *v;
    if (!json_is_object(f)) {
        reply_err(q, JQ_E_INVALID, "filter", "filter must be an object");
        return false;
    }
    json_object_foreach(f, key, v) {
        const char *const *a = allowed;
        while (*a && strcmp(*a, key))
            a++;
        if (!*a) {
            reply_err(q, JQ_E_INVALID, "filter", "unknown filter '%.64s'", key);
            return false;
        }
    }
    if (!want_str(q, f, "status", false, 16, &status) ||
        !want_name(q, f, "type", false, &in->type) ||
        !want_name(q, f, "queue", false, &in->queue))
        return false;
    in->status = !status ? -1 : strcmp(status, "pending") == 0 ? JOB_PENDING
               : strcmp(status, "processing") == 0 ? JOB_PROCESSING : -2;
    if (in->status == -2)
        reply_err(q, JQ_E_INVALID, "filter.status", "status must be pending or processing");
    in->max = CANCEL_FILTER_MAX;
    return in->status != -2;
}

void api_jobs_cancel_many(struct req *q)
{
    static const char *const allowed[] = {"ids", "filter", NULL};
    const char *ids[CANCEL_IDS_MAX];
    json_t *b = api_body(q, allowed);
    if (!b)
        return;
    json_t *jids = json_object_get(b, "ids"), *filter = json_object_get(b, "filter");
    struct cancel_req in = {.scope = q->scope, .status = -1};
    bool ok;
    if (!jids == !filter) {
        reply_err(q, JQ_E_INVALID, "ids", "give exactly one of ids and filter");
        ok = false;
    } else if (jids) {
        ok = parse_ids(q, jids, ids);
        in.ids = ids;
        in.n_ids = (int)json_array_size(jids);
    } else {
        ok = parse_cancel_filter(q, filter, &in);
    }
    if (ok) {
        struct cancelled c = {0, in.max};
        api_render_with(q, render_cancelled, &c);
        api_finish(q, store_cancel_many(q->d->st, &q->sc, &in, &c.n), render_cancelled, &c);
        if (in.ids)
            cache_drop_jobs(q->d->cache, in.ids, in.n_ids);
        else                      /* which jobs a filter hit is not known here */
            cache_drop_all(q->d->cache);
    }
    json_decref(b);
}

/* --- list --- */

static bool list_cursor(struct req *q, struct job_filter *f, struct cursor *cur)
{
    const char *text = req_query(q, "cursor");
    if (!text)
        return true;
    if (req_query(q, "offset")) {
        reply_err(q, JQ_E_INVALID, "cursor", "give cursor or offset, not both");
        return false;
    }
    if (!cursor_decode(text, cur) || cur->asc != f->asc) {
        reply_err(q, JQ_E_INVALID, "cursor", "cursor is not valid for this listing");
        return false;
    }
    f->after = true;
    f->after_created = cur->created_at;
    f->after_id = cur->id;
    return true;
}

static bool list_filter(struct req *q, struct job_filter *f, struct cursor *cur)
{
    static const char *const allowed[] = {"status", "type", "queue", "order", "limit",
                                          "offset", "cursor", "params", "result", "log_q", NULL};
    int64_t limit = 50, offset = 0;
    const char *status = req_query(q, "status"), *order = req_query(q, "order");
    if (!req_query_only(q, allowed) || !query_int(q, "limit", 1, PAGE_MAX, &limit) ||
        !query_int(q, "offset", 0, OFFSET_MAX, &offset))
        return false;
    *f = (struct job_filter){.user_id = q->scope, .status = -1, .type = req_query(q, "type"),
                             .queue = req_query(q, "queue"), .limit = (int)limit,
                             .offset = (int)offset, .want_total = true};
    enum job_status s;
    if (status && !job_status_parse(status, &s)) {
        reply_err(q, JQ_E_INVALID, "status",
                  "status must be pending, processing, completed, failed or cancelled");
        return false;
    }
    f->status = status ? (int)s : -1;
    if (order && strcmp(order, "asc") && strcmp(order, "desc")) {
        reply_err(q, JQ_E_INVALID, "order", "order must be asc or desc");
        return false;
    }
    f->asc = order && strcmp(order, "asc") == 0;
    if ((f->type && !valid_name(f->type)) || (f->queue && !valid_name(f->queue))) {
        reply_err(q, JQ_E_INVALID, f->type && !valid_name(f->type) ? "type" : "queue",
                  "not a valid name");
        return false;
    }
    return list_cursor(q, f, cur);
}

/* The search filters of a listing: containment and log text. */
static bool list_search(struct req *q, struct job_filter *f, char **pq, char **rq, char *match,
                        size_t cap)
{
    const char *log_q = req_query(q, "log_q");
    if (!search_containment(q, "params", pq) || !search_containment(q, "result", rq))
        return false;
    if (log_q && !search_log_match(q, "log_q", log_q, match, cap))
        return false;
    f->params_q = *pq;
    f->result_q = *rq;
    f->log_q = log_q ? match : NULL;
    return true;
}

void api_jobs_list(struct req *q)
{
    struct job_filter f;
    struct cursor cur;
    char *pq = NULL, *rq = NULL, match[1024];
    bool ok = list_filter(q, &f, &cur) && list_search(q, &f, &pq, &rq, match, sizeof match);
    struct job_list l = {0};
    jq_err err = ok ? store_list(q->d->st, &q->sc, &f, &l) : JQ_E_OK;
    free(pq);
    free(rq);
    if (!ok)
        return;
    if (err) {
        api_store_err(q, err);
        return;
    }
    struct buf b;                 /* as text: api_job_json per job was most of the time */
    buf_init(&b, JOBS_REPLY_MAX);
    buf_put(&b, "{\"jobs\":", 8);
    api_jobs_put(&b, &l, false);
    buf_printf(&b, ",\"total_count\":%" PRId64 ",\"limit\":%d,\"offset\":%d,\"next_cursor\":",
               l.total, f.limit, f.offset);
    if (l.n == f.limit) {
        struct cursor nc = {.created_at = l.jobs[l.n - 1].created_at, .asc = f.asc};
        char text[CURSOR_MAX];
        memcpy(nc.id, l.jobs[l.n - 1].id, sizeof nc.id);
        cursor_encode(&nc, text);
        buf_printf(&b, "\"%s\"", text);          /* base64url: nothing to escape */
    } else {
        buf_put(&b, "null", 4);
    }
    if (l.total_capped)      /* an unselective search counts only up to the cap */
        buf_put(&b, ",\"total_count_capped\":true", 26);
    buf_put(&b, "}", 1);
    reply_raw(q, 200, api_buf_text(&b));
    job_list_fini(&l);
}

/* --- one job --- */

/* True if an If-None-Match header lists etag (or is *). */
static bool etag_matches(struct req *q, const char *etag)
{
    const char *inm = req_header(q, "If-None-Match");
    return inm && (strcmp(inm, "*") == 0 || strstr(inm, etag) != NULL);
}

/* Replies with a rendered job (text is taken), or 304 if the client has its ETag. */
static void reply_job_text(struct req *q, char *text, const char *etag, int max_age)
{
    reply_header(q, "ETag", "%s", etag);
    reply_header(q, "Cache-Control", "private, max-age=%d", max_age);
    if (etag_matches(q, etag)) {
        free(text);
        reply_empty(q, 304);
    } else {
        reply_raw(q, 200, text);
    }
}

/* Seconds a rendered job may stay in the shared cache: 5 while it can change, an hour once
 * final, never past the retention cleanup that deletes it; 0 = do not cache. */
static int job_cache_ttl(const struct req *q, const struct job *j)
{
    if (!job_is_final(j->status))
        return 5;
    int64_t left = j->completed_at + q->d->cfg.retention_ms - q->sc.now_ms;
    return left >= 3600000 ? 3600 : left > 0 ? (int)(left / 1000) : 0;
}

void api_jobs_show(struct req *q)
{
    struct job j;
    struct cache_job cj;
    if (!want_job_id(q, q->params[0]))
        return;
    if (cache_job_get(q->d->cache, q->params[0], q->scope, &cj)) {   /* stored by a read in
                                                                       * this same scope */
        reply_job_text(q, cj.body, cj.etag, cj.max_age);
        return;
    }
    jq_err err = store_get(q->d->st, &q->sc, q->params[0], q->scope, &j);
    if (err) {
        api_store_err(q, err);
        return;
    }
    char *text = api_text(api_job_json(&j, false)), etag[40];
    if (!text) {               /* never an empty 200, nor one in the shared cache */
        job_fini(&j);
        api_store_err(q, JQ_E_NOMEM);
        return;
    }
    snprintf(etag, sizeof etag, "\"%016llx\"",
             (unsigned long long)XXH3_64bits(text, text ? strlen(text) : 0));
    int max_age = job_is_final(j.status) ? 3600 : 5;
    cache_job_put(q->d->cache, q->params[0], q->scope, &cj, job_cache_ttl(q, &j), max_age,
                  etag, text);
    reply_job_text(q, text, etag, max_age);
    job_fini(&j);
}

typedef jq_err (*move_fn)(store *, struct sctx *, const char *, const char *, struct job *);

static void move(struct req *q, move_fn fn)
{
    static const char *const none[] = {NULL};
    if (!want_job_id(q, q->params[0]))
        return;
    json_t *b = api_body(q, none);
    if (!b)
        return;
    json_decref(b);
    struct job j = {0};
    api_render_with(q, api_render_job, &j);
    api_finish(q, fn(q->d->st, &q->sc, q->params[0], q->scope, &j), api_render_job, &j);
    job_fini(&j);
}

void api_jobs_cancel(struct req *q)
{
    move(q, store_cancel);
}

void api_jobs_retry(struct req *q)
{
    move(q, store_retry);
}

void api_jobs_delete(struct req *q)
{
    if (!want_job_id(q, q->params[0]))
        return;
    jq_err err = store_remove(q->d->st, &q->sc, q->params[0], q->scope);
    if (err)
        api_store_err(q, err);
    else
        reply_empty(q, 204);
}

/* The shared cache's counters, for admins. */
static void stats_cache_counts(struct req *q, json_t *doc)
{
    struct cache_counts cc;
    cache_counts(q->d->cache, &cc);
    json_object_set_new(doc, "cache", json_pack("{s:I, s:I, s:I, s:b}",
        "hits", (json_int_t)cc.hits, "misses", (json_int_t)cc.misses,
        "errors", (json_int_t)cc.errors, "up", cc.up));
}

void api_stats(struct req *q)
{
    static const char *const none[] = {NULL};
    json_t *doc = NULL;
    if (!req_query_only(q, none))
        return;
    bool counts = q->d->cache && q->who.role == ROLE_ADMIN;
    char *hit = cache_stats_get(q->d->cache, q->scope);    /* 2 s, per scope */
    if (hit && !counts) {
        reply_raw(q, 200, hit);
        return;
    }
    doc = hit ? json_loads(hit, 0, NULL) : NULL;
    free(hit);
    if (!doc) {
        jq_err err = store_stats(q->d->st, &q->sc, q->scope, &doc);
        if (err) {
            api_store_err(q, err);
            return;
        }
        if (q->d->cache) {
            char *text = json_dumps(doc, JSON_COMPACT);
            cache_stats_put(q->d->cache, q->scope, text, 2);
            free(text);
        }
    }
    if (counts)
        stats_cache_counts(q, doc);
    reply_json(q, 200, doc);
}
