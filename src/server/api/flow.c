/*
 * flow.c - cron schedules (/v1/schedules) and workflows (/v1/workflows): jobs
 * that run on a timetable, and jobs that run in dependency order. The rules
 * (when a schedule fires, which step may run) live in server/sched.c,
 * core/cron.c, core/dag.c and the store; this file validates and shapes.
 */
#include "server/api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tz.h"
#include "core/canon.h"
#include "core/cron.h"
#include "core/dag.h"
#include "server/maint.h"
#include "server/sched.h"

enum { STEPS_MAX = 100, CRON_MAX = 127 };

static json_t *time_or_null(int64_t ms)
{
    char t[TIME_STR_MAX];
    if (!ms)
        return json_null();
    time_fmt(ms, t);
    return json_string(t);
}

/* --- schedules --- */

static json_t *schedule_json(const struct schedule *s)
{
    json_t *p = s->params ? json_loads(s->params, 0, NULL) : NULL;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:i, s:i, s:s, s:i, s:b}",
        "id", s->id, "user_id", s->user_id, "name", s->name, "cron", s->cron, "timezone",
        s->timezone, "type", s->type, "queue", s->queue, "params", p ? p : json_object(),
        "priority", s->priority, "max_attempts", s->max_attempts, "misfire", s->misfire,
        "catch_up_max", s->catch_up_max, "paused", s->paused);
    json_object_set_new(o, "next_run_at", time_or_null(s->paused ? 0 : s->next_run_at));
    json_object_set_new(o, "last_run_at", time_or_null(s->last_run_at));
    json_object_set_new(o, "created_at", time_or_null(s->created_at));
    json_object_set_new(o, "updated_at", time_or_null(s->updated_at));
    return o;
}

static void reply_schedule(struct req *q, int status, jq_err err, struct schedule *s)
{
    if (err == JQ_E_CONFLICT)
        reply_err(q, err, "name", "a schedule with this name exists");
    else if (err == JQ_E_NOT_FOUND)
        reply_err(q, err, NULL, "no such schedule");
    else if (err)
        api_store_err(q, err);
    else
        reply_json(q, status, schedule_json(s));
    free(s->params);
    s->params = NULL;
}

/* Validates cron + timezone; the first fire time after now into *next. */
static bool parse_when(struct req *q, json_t *b, struct schedule *s)
{
    const char *cron = NULL, *tz = "UTC";
    char why[128];
    struct cron c;
    if (!want_str(q, b, "cron", true, CRON_MAX, &cron) ||
        !want_str(q, b, "timezone", false, 64, &tz))
        return false;
    if (!cron_parse(cron, &c, why, sizeof why))
        return reply_err(q, JQ_E_INVALID, "cron", "%s", why), false;
    if (!tz_valid(tz))
        return reply_err(q, JQ_E_INVALID, "timezone", "not an IANA time zone of this system "
                         "(e.g. Europe/Berlin, UTC)"), false;
    snprintf(s->cron, sizeof s->cron, "%s", cron);
    snprintf(s->timezone, sizeof s->timezone, "%s", tz);
    if (!(s->next_run_at = sched_next(s->cron, s->timezone, q->sc.now_ms)))
        return reply_err(q, JQ_E_INVALID, "cron", "this schedule never fires"), false;
    return true;
}

static bool parse_schedule(struct req *q, json_t *b, struct schedule *s, char **params)
{
    const char *name = NULL, *type = NULL, *queue = "default", *misfire = "catch_up";
    int64_t prio = 0, attempts = q->d->cfg.max_attempts, catch_up = 1;
    if (!want_name(q, b, "name", true, &name) || !want_name(q, b, "type", true, &type) ||
        !want_name(q, b, "queue", false, &queue) ||
        !want_json(q, b, "params", true, PARAMS_MAX, params) ||
        !want_int(q, b, "priority", -1000, 1000, &prio) ||
        !want_int(q, b, "max_attempts", 1, 100, &attempts) ||
        !want_str(q, b, "misfire", false, 16, &misfire) ||
        !want_int(q, b, "catch_up_max", 1, CATCH_UP_MAX, &catch_up) || !parse_when(q, b, s))
        return false;
    if (strcmp(misfire, "catch_up") && strcmp(misfire, "skip"))
        return reply_err(q, JQ_E_INVALID, "misfire", "misfire must be catch_up or skip"), false;
    snprintf(s->user_id, sizeof s->user_id, "%s", q->who.user_id);
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->type, sizeof s->type, "%s", type);
    snprintf(s->queue, sizeof s->queue, "%s", queue);
    snprintf(s->misfire, sizeof s->misfire, "%s", misfire);
    s->params = *params ? *params : "{}";
    s->priority = (int)prio;
    s->max_attempts = (int)attempts;
    s->catch_up_max = (int)catch_up;
    return true;
}

void api_schedules_create(struct req *q)
{
    static const char *const allowed[] = {"name", "cron", "timezone", "type", "queue", "params",
        "priority", "max_attempts", "misfire", "catch_up_max", NULL};
    json_t *b = api_body(q, allowed);
    struct schedule in = {0}, out = {0};
    char *params = NULL;
    if (b && parse_schedule(q, b, &in, &params)) {
        jq_err err = store_schedule_add(q->d->st, &q->sc, &in, &out);
        if (!err)
            maint_poke(q->d->maint, MT_SCHEDULES, out.next_run_at);
        reply_schedule(q, 201, err, &out);
    }
    free(params);
    json_decref(b);
}

void api_schedules_list(struct req *q)
{
    static const char *const none[] = {NULL};
    struct schedule_list l;
    if (!req_query_only(q, none))
        return;
    jq_err err = store_schedule_list(q->d->st, &q->sc, q->scope, &l);
    if (err) {
        api_store_err(q, err);
        return;
    }
    json_t *arr = json_array();
    for (int i = 0; i < l.n; i++)
        json_array_append_new(arr, schedule_json(&l.s[i]));
    reply_json(q, 200, json_pack("{s:o}", "schedules", arr));
    schedule_list_fini(&l);
}

static bool want_schedule_id(struct req *q)
{
    if (id_valid(q->params[0]))
        return true;
    reply_err(q, JQ_E_NOT_FOUND, NULL, "no such schedule");
    return false;
}

void api_schedules_show(struct req *q)
{
    struct schedule s = {0};
    if (want_schedule_id(q))
        reply_schedule(q, 200, store_schedule_get(q->d->st, &q->sc, q->params[0], q->scope, &s),
                       &s);
}

/* paused: 1 pause, 0 resume, -1 delete */
static void set_schedule(struct req *q, int paused)
{
    struct schedule s = {0};
    if (!want_schedule_id(q))
        return;
    int64_t next = 0;
    if (paused == 0) {                       /* resume: from now on, no catching up */
        jq_err err = store_schedule_get(q->d->st, &q->sc, q->params[0], q->scope, &s);
        if (!err)
            next = sched_next(s.cron, s.timezone, q->sc.now_ms);
        free(s.params);
        s.params = NULL;
        if (err) {
            reply_schedule(q, 200, err, &s);
            return;
        }
    }
    jq_err err = store_schedule_set(q->d->st, &q->sc, q->params[0], q->scope, paused, next, &s);
    if (!err && paused == 0)
        maint_poke(q->d->maint, MT_SCHEDULES, next);
    if (!err && paused < 0) {
        free(s.params);
        reply_empty(q, 204);
        return;
    }
    reply_schedule(q, 200, err, &s);
}

void api_schedules_pause(struct req *q)
{
    set_schedule(q, 1);
}

void api_schedules_resume(struct req *q)
{
    set_schedule(q, 0);
}

void api_schedules_delete(struct req *q)
{
    set_schedule(q, -1);
}

/* --- workflows --- */

struct wf_parse {
    struct workflow_step steps[STEPS_MAX];
    char *params[STEPS_MAX];
    char hash[STEPS_MAX][CANON_HASH_LEN + 1];
    int parents[STEPS_MAX][STEPS_MAX];
    int n;
};

static bool step_error(struct req *q, int i, const char *field, const char *msg)
{
    char f[64];
    snprintf(f, sizeof f, "steps[%d].%s", i, field);
    reply_err(q, JQ_E_INVALID, f, "%s", msg);
    return false;
}

static int key_index(const struct wf_parse *w, const char *key)
{
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->steps[i].key, key) == 0)
            return i;
    return -1;
}

/* One step's job fields (not its dependencies). */
static bool parse_step(struct req *q, json_t *o, struct wf_parse *w, int i)
{
    static const char *const allowed[] = {"key", "type", "queue", "params", "priority",
        "max_attempts", "depends_on", "on_parent_failure", NULL};
    struct workflow_step *s = &w->steps[i];
    const char *k;
    json_t *v;
    int64_t prio = 0, attempts = q->d->cfg.max_attempts;
    if (!json_is_object(o))
        return step_error(q, i, "key", "each step must be an object");
    json_object_foreach(o, k, v) {
        const char *const *a = allowed;
        while (*a && strcmp(*a, k))
            a++;
        if (!*a)
            return step_error(q, i, k, "unknown field");
    }
    s->job = (struct job_new){.user_id = q->who.user_id, .queue = "default"};
    if (!want_name(q, o, "key", true, &s->key) || !want_name(q, o, "type", true, &s->job.type) ||
        !want_name(q, o, "queue", false, &s->job.queue) ||
        !want_json(q, o, "params", true, PARAMS_MAX, &w->params[i]) ||
        !want_int(q, o, "priority", -1000, 1000, &prio) ||
        !want_int(q, o, "max_attempts", 1, 100, &attempts) ||
        !want_str(q, o, "on_parent_failure", false, 16, &s->job.on_parent_failure)) {
        json_t *e = json_object_get(q->reply, "error");
        return step_error(q, i, json_string_value(json_object_get(e, "field")),
                          json_string_value(json_object_get(e, "message")));
    }
    if (s->job.on_parent_failure && strcmp(s->job.on_parent_failure, "cancel") &&
        strcmp(s->job.on_parent_failure, "run"))
        return step_error(q, i, "on_parent_failure", "must be cancel or run");
    json_t *p = json_object_get(o, "params"), *empty = json_object();
    canon_hash(json_is_object(p) ? p : empty, w->hash[i]);
    json_decref(empty);
    s->job.params = w->params[i] ? w->params[i] : "{}";
    s->job.params_hash = w->hash[i];
    s->job.priority = (int)prio;
    s->job.max_attempts = (int)attempts;
    s->job.run_at = q->sc.now_ms;
    s->job.expires_at = q->sc.now_ms + q->d->cfg.ttl_ms;
    return true;
}

/* Resolves depends_on keys to step indexes. */
static bool parse_edges(struct req *q, json_t *steps, struct wf_parse *w)
{
    for (int i = 0; i < w->n; i++) {
        json_t *deps = json_object_get(json_array_get(steps, (size_t)i), "depends_on");
        if (deps && !json_is_array(deps))
            return step_error(q, i, "depends_on", "depends_on must be an array of step keys");
        for (size_t k = 0; k < json_array_size(deps); k++) {
            const char *key = json_string_value(json_array_get(deps, k));
            int p = key ? key_index(w, key) : -1;
            if (p < 0) {
                char msg[200];
                snprintf(msg, sizeof msg, "unknown step key '%.64s'", key ? key : "(not a string)");
                return step_error(q, i, "depends_on", msg);
            }
            w->parents[i][w->steps[i].n_parents++] = p;
        }
        w->steps[i].parents = w->parents[i];
    }
    return true;
}

/* Rejects cycles, naming a step on one. */
static bool check_acyclic(struct req *q, struct wf_parse *w)
{
    struct dag_edge edges[STEPS_MAX * 8];
    int n_edges = 0, order[STEPS_MAX], scratch[2 * STEPS_MAX], cyclic = 0;
    for (int i = 0; i < w->n; i++)
        for (int k = 0; k < w->steps[i].n_parents && n_edges < STEPS_MAX * 8; k++)
            edges[n_edges++] = (struct dag_edge){w->steps[i].parents[k], i};
    if (dag_order(w->n, edges, n_edges, order, &cyclic, scratch))
        return true;
    reply_err(q, JQ_E_INVALID, "steps", "the steps form a cycle through '%s'",
              w->steps[cyclic].key);
    return false;
}

static bool parse_workflow(struct req *q, json_t *b, struct wf_parse *w, const char **name)
{
    json_t *steps = json_object_get(b, "steps");
    if (!want_name(q, b, "name", false, name))
        return false;
    if (!json_is_array(steps) || json_array_size(steps) < 1 ||
        json_array_size(steps) > STEPS_MAX) {
        reply_err(q, JQ_E_INVALID, "steps", "steps must be an array of 1 to %d steps", STEPS_MAX);
        return false;
    }
    for (size_t i = 0; i < json_array_size(steps); i++, w->n++) {
        if (!parse_step(q, json_array_get(steps, i), w, (int)i))
            return false;
        if (key_index(w, w->steps[i].key) >= 0)      /* w->n == i: earlier steps only */
            return step_error(q, (int)i, "key", "duplicate step key");
    }
    return parse_edges(q, steps, w) && check_acyclic(q, w);
}

/* The key of the step whose job is id. */
static const char *key_of(const struct workflow *wf, const char *id)
{
    for (int i = 0; i < wf->steps.n; i++)
        if (strcmp(wf->steps.jobs[i].id, id) == 0)
            return wf->steps.jobs[i].step_key;
    return "";
}

static const char *workflow_status(const struct workflow *wf)
{
    int done = 0, failed = 0, running = 0;
    for (int i = 0; i < wf->steps.n; i++) {
        enum job_status s = wf->steps.jobs[i].status;
        done += s == JOB_COMPLETED;
        failed += s == JOB_FAILED || s == JOB_CANCELLED;
        running += s == JOB_PROCESSING;
    }
    return done == wf->steps.n ? "completed" : failed ? "failed" : running || done ? "running"
                                                                              : "pending";
}

static json_t *workflow_json(const struct workflow *wf)
{
    json_t *edges = wf->edges ? json_loads(wf->edges, 0, NULL) : NULL, *steps = json_array();
    for (int i = 0; i < wf->steps.n; i++) {
        const struct job *j = &wf->steps.jobs[i];
        json_t *deps = json_array(), *e;
        size_t k;
        json_array_foreach(edges, k, e)
            if (strcmp(json_string_value(json_array_get(e, 1)), j->id) == 0)
                json_array_append_new(deps, json_string(key_of(wf,
                    json_string_value(json_array_get(e, 0)))));
        json_t *job = api_job_json(j, false);
        json_object_set_new(job, "key", json_string(j->step_key));
        json_object_set_new(job, "depends_on", deps);
        json_array_append_new(steps, job);
    }
    json_decref(edges);
    json_t *o = json_pack("{s:s, s:s, s:s?, s:s, s:o}", "id", wf->id, "user_id", wf->user_id,
                          "name", wf->name, "status", workflow_status(wf), "steps", steps);
    json_object_set_new(o, "created_at", time_or_null(wf->created_at));
    return o;
}

void api_workflows_create(struct req *q)
{
    static const char *const allowed[] = {"name", "steps", NULL};
    json_t *b = api_body(q, allowed);
    struct wf_parse *w = calloc(1, sizeof *w);
    const char *name = NULL;
    if (!w)
        reply_err(q, JQ_E_NOMEM, NULL, "out of memory");
    else if (b && parse_workflow(q, b, w, &name)) {
        struct workflow_req in = {q->who.user_id, name, w->steps, w->n};
        struct workflow wf;
        jq_err err = store_workflow_create(q->d->st, &q->sc, &in, &wf);
        if (err) {
            api_store_err(q, err);
        } else {
            reply_json(q, 201, workflow_json(&wf));
            workflow_fini(&wf);
        }
    }
    for (int i = 0; w && i < STEPS_MAX; i++)
        free(w->params[i]);
    free(w);
    json_decref(b);
}

void api_workflows_show(struct req *q)
{
    struct workflow wf;
    if (!id_valid(q->params[0])) {
        reply_err(q, JQ_E_NOT_FOUND, NULL, "no such workflow");
        return;
    }
    jq_err err = store_workflow_get(q->d->st, &q->sc, q->params[0], q->scope, &wf);
    if (err == JQ_E_NOT_FOUND) {
        reply_err(q, err, NULL, "no such workflow");
    } else if (err) {
        api_store_err(q, err);
    } else {
        reply_json(q, 200, workflow_json(&wf));
        workflow_fini(&wf);
    }
}
