/*
 * router.c - the route table and dispatch (see router.h). Order of checks:
 * route exists (else 401 for /v1 without a valid token, then 404/405) ->
 * token -> role -> handler. Unauthenticated callers learn nothing about
 * which /v1 paths exist.
 */
#include "server/router.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "server/api/api.h"
#include "common/log.h"
#include "server/auth.h"
#include "server/cache.h"
#include "server/metrics.h"

#define U ROLE_USER
#define W ROLE_WORKER
#define A ROLE_ADMIN
#define I R_IDEM
static const struct route routes[] = {
    {"GET", "/healthz", 0, 0, 0, api_health},
    {"GET", "/readyz", 0, 0, 2, api_readyz},
    /* /metrics checks its own token: an admin token or --metrics-token */
    {"GET", "/metrics", 0, 0, 8, api_metrics},
    {"POST", "/v1/jobs", U | A, I, 12, api_jobs_create},
    {"GET", "/v1/jobs", U | W | A, 0, 3, api_jobs_list},
    {"POST", "/v1/jobs/batch", U | A, I, 8, api_jobs_batch},
    {"POST", "/v1/jobs/cancel", U | A, I, 4, api_jobs_cancel_many},
    {"GET", "/v1/jobs/{}", U | W | A, 0, 1, api_jobs_show},
    {"DELETE", "/v1/jobs/{}", U | A, 0, 3, api_jobs_delete},
    {"POST", "/v1/jobs/{}/cancel", U | A, I, 4, api_jobs_cancel},
    {"POST", "/v1/jobs/{}/retry", U | A, I, 4, api_jobs_retry},
    {"POST", "/v1/jobs/{}/heartbeat", W | A, I, 4, api_work_heartbeat},
    {"POST", "/v1/jobs/{}/complete", W | A, I, 4, api_work_complete},
    {"POST", "/v1/jobs/{}/fail", W | A, I, 4, api_work_fail},
    {"POST", "/v1/jobs/{}/logs", W | A, I, 4, api_logs_add},
    {"GET", "/v1/jobs/{}/logs", U | W | A, 0, 3, api_logs_list},
    {"POST", "/v1/queues/{}/claim", W | A, 0, 4, api_work_claim},
    {"POST", "/v1/queues/{}/next", W | A, 0, 8, api_work_next},
    {"GET", "/v1/stats", U | W | A, 0, 6, api_stats},
    {"GET", "/v1/events", U | W | A, 0, 2, api_events},
    {"POST", "/v1/schedules", U | A, 0, 2, api_schedules_create},
    {"GET", "/v1/schedules", U | A, 0, 1, api_schedules_list},
    {"GET", "/v1/schedules/{}", U | A, 0, 1, api_schedules_show},
    {"DELETE", "/v1/schedules/{}", U | A, 0, 1, api_schedules_delete},
    {"POST", "/v1/schedules/{}/pause", U | A, 0, 1, api_schedules_pause},
    {"POST", "/v1/schedules/{}/resume", U | A, 0, 3, api_schedules_resume},
    {"POST", "/v1/workflows", U | A, 0, 6, api_workflows_create},
    {"GET", "/v1/workflows/{}", U | A, 0, 3, api_workflows_show},
    {"GET", "/v1/logs/search", U | W | A, 0, 3, api_logs_search},
    {"GET", "/v1/jobs/{}/wait", U | W | A, 0, 2, api_jobs_wait},
    {"POST", "/v1/tokens", A, 0, 2, api_tokens_create},
    {"DELETE", "/v1/tokens/{}", A, 0, 2, api_tokens_revoke},
    {"GET", "/v1/admin/store", A, 0, 0, api_admin_store},
    {"GET", "/v1/admin/tables", A, 0, 1, api_admin_tables},
    {"GET", "/v1/admin/maintenance", A, 0, 0, api_admin_maint_report},
    {"POST", "/v1/admin/maintenance/{}", A, 0, 0, api_admin_maint_run},
    {"POST", "/v1/admin/clock", A, 0, 0, api_admin_clock},
    {"GET", "/v1/admin/routes", A, 0, 0, api_admin_routes},
    {"GET", "/v1/openapi.json", U | W | A, 0, 0, api_openapi},
    {"GET", "/ui", 0, 0, 0, api_ui_index},
    {"GET", "/ui/{}", 0, 0, 0, api_ui_file},
};
#undef I
#undef U
#undef W
#undef A
enum { NROUTES = sizeof routes / sizeof routes[0], PATH_MAX_LEN = 1024 };

const struct route *router_routes(int *n)
{
    *n = NROUTES;
    return routes;
}

/* Matches path against pattern; {} segments are copied into params (pointing
 * into buf, a writable copy of path). */
static bool match(const char *pattern, char *buf, const char **params)
{
    const char *p = pattern;
    char *s = buf, *ends[REQ_PARAMS_MAX];
    int np = 0;
    while (*p && *s) {
        if (p[0] == '{' && p[1] == '}') {
            char *end = strchrnul(s, '/');
            if (end == s || np == REQ_PARAMS_MAX)
                return false;
            ends[np] = end;
            params[np++] = s;
            p += 2;
            s = end;
            continue;
        }
        if (*p++ != *s++)
            return false;
    }
    if (*p || *s)
        return false;
    for (int i = 0; i < np; i++)
        *ends[i] = '\0';          /* terminate the segments only once the whole path matched */
    return true;
}

/* Finds the route for method + path; *allow lists the methods of the path. */
static const struct route *find(struct req *q, char *buf, char *allow, size_t cap)
{
    const struct route *hit = NULL;
    size_t n = 0;
    allow[0] = '\0';
    for (int i = 0; i < NROUTES; i++) {
        const char *params[REQ_PARAMS_MAX];
        strcpy(buf, q->path);
        if (!match(routes[i].pattern, buf, params))
            continue;
        n += (size_t)snprintf(allow + n, cap - n, "%s%s", n ? ", " : "", routes[i].method);
        if (!hit && strcmp(routes[i].method, q->method) == 0) {
            hit = &routes[i];
            memcpy(q->params, params, sizeof params);
        }
    }
    if (hit) {                  /* params point into buf: redo the winning match last */
        strcpy(buf, q->path);
        match(hit->pattern, buf, q->params);
    }
    return hit;
}

static bool authenticate(struct req *q)
{
    struct sctx ac = {.now_ms = q->sc.now_ms};   /* not counted: cached, so it would make
                                                  * equal requests differ */
    jq_err err = auth_lookup(q->d->st, q->d->tokens, &ac, req_header(q, "Authorization"),
                             &q->who);
    if (err == JQ_E_UNAUTH) {
        reply_err(q, err, NULL, "a valid bearer token is required");
        reply_header(q, "WWW-Authenticate", "Bearer realm=\"jobq\"");
    } else if (err) {
        api_store_err(q, err);
    }
    q->scope = q->who.role == ROLE_USER ? q->who.user_id : NULL;
    return err == JQ_E_OK;
}

enum { IDEM_KEY_MAX = 255, IDEM_MAX_AGE_MS = 86400000 };

/* Sets up q->idem from an Idempotency-Key header; false (400 sent) if malformed. */
static bool idempotency(struct req *q)
{
    const char *key = req_header(q, "Idempotency-Key");
    if (!key)
        return true;
    size_t n = strlen(key);
    bool ok = n > 0 && n <= IDEM_KEY_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = key[i] >= 0x20 && key[i] < 0x7f;
    if (!ok) {
        reply_err(q, JQ_E_INVALID, "Idempotency-Key", "Idempotency-Key must be 1-%d printable "
                  "ASCII characters", IDEM_KEY_MAX);
        return false;
    }
    XXH3_state_t *h = XXH3_createState();
    XXH3_128bits_reset(h);
    XXH3_128bits_update(h, q->method, strlen(q->method) + 1);   /* the NULs separate parts */
    XXH3_128bits_update(h, q->path, strlen(q->path) + 1);
    if (q->body)
        XXH3_128bits_update(h, q->body, q->len);
    XXH128_hash_t d = XXH3_128bits_digest(h);
    XXH3_freeState(h);
    snprintf(q->idem_hash, sizeof q->idem_hash, "%016llx%016llx",
             (unsigned long long)d.high64, (unsigned long long)d.low64);
    q->idem = (struct idem){.user_id = q->who.user_id, .key = key, .req_hash = q->idem_hash,
                            .max_age_ms = IDEM_MAX_AGE_MS};
    q->sc.idem = &q->idem;
    return true;
}

/* The N+1 guard: a request that ran more statements than its route allows is
 * logged and counted; test builds also fail it loudly, so a test catches it. */
static bool over_budget(struct req *q, const struct route *r)
{
    int budget = q->d->cfg.statement_budget >= 0 ? (int)q->d->cfg.statement_budget : r->budget;
    if (q->sc.stmts <= budget)
        return false;
    log_warn("%s %s ran %d SQL statements, over its budget of %d", r->method, r->pattern,
             q->sc.stmts, budget);
#ifdef JOBQ_TESTING
    reply_err(q, JQ_E_BUDGET, NULL, "%s %s ran %d SQL statements, over its budget of %d",
              r->method, r->pattern, q->sc.stmts, budget);
#endif
    return true;
}

/* The shared cache after a write, before the reply goes out: any write under
 * /v1/jobs/{id} (cancel, retry, delete, heartbeat, complete, fail, logs; failed ones too,
 * which costs nothing) drops that job's entries; an admin action (maintenance run, clock)
 * retires them all. Claims, next and bulk writes drop their ids in their handlers. */
static void drop_cached(struct req *q, const struct route *r)
{
    if (!q->d->cache || strcmp(r->method, "GET") == 0)
        return;
    if (strncmp(r->pattern, "/v1/jobs/{}", 11) == 0)
        cache_drop_jobs(q->d->cache, &q->params[0], 1);
    else if (strncmp(r->pattern, "/v1/admin/", 10) == 0)
        cache_drop_all(q->d->cache);
}

static void dispatch(struct req *q, const struct route **matched);

void router_dispatch(struct req *q)
{
    const struct route *r = NULL;
    int64_t t0 = clock_mono_us();
    dispatch(q, &r);
    bool over = r && over_budget(q, r);
    metrics_request(q->d->metrics, r ? (int)(r - routes) : -1, q->status,
                    clock_mono_us() - t0, q->sc.stmts, over);
}

static void dispatch(struct req *q, const struct route **matched)
{
    char buf[PATH_MAX_LEN + 1], allow[128];
    q->sc.now_ms = clock_now_ms(&q->d->clock);
    if (strlen(q->path) > PATH_MAX_LEN) {
        reply_err(q, JQ_E_NOT_FOUND, NULL, "no such route");
        return;
    }
    const struct route *r = find(q, buf, allow, sizeof allow);
    bool open = r && r->roles == 0;
    if (!open && strncmp(q->path, "/v1/", 4) == 0 && !authenticate(q))
        return;
    if (!r && allow[0]) {
        reply_err(q, JQ_E_METHOD, NULL, "%s is not allowed here", q->method);
        reply_header(q, "Allow", "%s", allow);
    } else if (!r) {
        reply_err(q, JQ_E_NOT_FOUND, NULL, "no such route");
    } else if (!open && !(r->roles & q->who.role)) {
        reply_err(q, JQ_E_FORBIDDEN, NULL, "the %s role may not use this route",
                  role_name(q->who.role));
    } else if (!(r->flags & R_IDEM) || idempotency(q)) {
        *matched = r;
        r->fn(q);
        drop_cached(q, r);
    }
}
