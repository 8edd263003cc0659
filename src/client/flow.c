/*
 * flow.c - libjobq schedules (/v1/schedules: create, list, get, pause, resume, delete) and
 * workflows (/v1/workflows: create from a steps array, get), docs/API.md "Schedules,
 * workflows, fairness". Replies are read leniently like json.c does: only ids are required.
 */
#include <stdlib.h>
#include <string.h>

#include "client.h"

/* --- schedules --- */

static void schedule_fini(jobq_schedule *s)
{
    char **strs[] = {
        &s->id, &s->user_id, &s->name, &s->cron, &s->timezone, &s->type, &s->queue,
        &s->params, &s->misfire, &s->next_run_at, &s->last_run_at, &s->created_at,
        &s->updated_at,
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(*strs[i]);
}

void jobq_schedule_free(jobq_schedule *s)
{
    if (!s)
        return;
    schedule_fini(s);
    free(s);
}

void jobq_schedules_free(jobq_schedules *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++)
        schedule_fini(&l->schedules[i]);
    free(l->schedules);
    free(l);
}

/* Fills *s from a schedule object; false when it has no id or a copy failed (*s is then
 * still safe to fini). */
static bool schedule_init(jobq_schedule *s, const json_t *o)
{
    bool ok = json_is_string(json_object_get(o, "id"));
    s->id = jobq__get_text(o, "id", &ok);
    s->user_id = jobq__get_text(o, "user_id", &ok);
    s->name = jobq__get_text(o, "name", &ok);
    s->cron = jobq__get_text(o, "cron", &ok);
    s->timezone = jobq__get_text(o, "timezone", &ok);
    s->type = jobq__get_text(o, "type", &ok);
    s->queue = jobq__get_text(o, "queue", &ok);
    s->params = jobq__get_text(o, "params", &ok);
    s->priority = (int)jobq__get_i64(o, "priority", 0);
    s->max_attempts = (int)jobq__get_i64(o, "max_attempts", 0);
    s->misfire = jobq__get_text(o, "misfire", &ok);
    s->catch_up_max = (int)jobq__get_i64(o, "catch_up_max", 0);
    s->paused = json_is_true(json_object_get(o, "paused"));
    s->next_run_at = jobq__get_text(o, "next_run_at", &ok);
    s->last_run_at = jobq__get_text(o, "last_run_at", &ok);
    s->created_at = jobq__get_text(o, "created_at", &ok);
    s->updated_at = jobq__get_text(o, "updated_at", &ok);
    return ok;
}

/* Reads a schedule reply into *out (when out is set); consumes reply. */
static int reply_schedule(jobq_client *c, json_t *reply, jobq_schedule **out)
{
    int err = JOBQ_E_OK;
    if (out) {
        jobq_schedule *s = calloc(1, sizeof *s);
        if (!s || !schedule_init(s, reply)) {
            jobq_schedule_free(s);
            err = jobq__fail(c, JOBQ_E_PROTOCOL, NULL, "reply is not a schedule");
        } else {
            *out = s;
        }
    }
    json_decref(reply);
    return err;
}

int jobq_schedule_create(jobq_client *c, const jobq_new_schedule *in, jobq_schedule **out)
{
    json_t *reply = NULL, *params = NULL;
    if (out)
        *out = NULL;
    if (!in || !in->name || !in->cron || !in->type)
        return jobq__fail(c, JOBQ_E_INVALID, !in || !in->name ? "name" : !in->cron ? "cron"
                                                                                 : "type",
                          "name, cron and type are required");
    if (in->params && !(params = jobq__arg_json(c, "params", in->params)))
        return jobq_last_err(c);
    json_t *b = json_object();
    if (!b)
        json_decref(params);
    /* json_object_set_new takes params even when it fails */
    bool ok = b && (!params || json_object_set_new(b, "params", params) == 0);
    ok = ok && jobq__set_str(b, "name", in->name) && jobq__set_str(b, "cron", in->cron) &&
         jobq__set_str(b, "type", in->type) && jobq__set_str(b, "timezone", in->timezone) &&
         jobq__set_str(b, "queue", in->queue) && jobq__set_str(b, "misfire", in->misfire) &&
         (in->priority == 0 || jobq__set_int(b, "priority", in->priority)) &&
         (in->max_attempts == 0 || jobq__set_int(b, "max_attempts", in->max_attempts)) &&
         (in->catch_up_max == 0 || jobq__set_int(b, "catch_up_max", in->catch_up_max));
    int err = ok ? jobq__call(c, "POST", "/v1/schedules", b, 0, &reply)
                 : jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    json_decref(b);
    return err ? err : reply_schedule(c, reply, out);
}

int jobq_schedule_list(jobq_client *c, jobq_schedules **out)
{
    json_t *reply;
    *out = NULL;
    int err = jobq__call(c, "GET", "/v1/schedules", NULL, 0, &reply);
    if (err)
        return err;
    const json_t *arr = json_object_get(reply, "schedules");
    size_t n = json_array_size(arr);
    jobq_schedules *l = json_is_array(arr) ? calloc(1, sizeof *l) : NULL;
    if (l && !(l->schedules = calloc(n ? n : 1, sizeof *l->schedules))) {
        free(l);
        l = NULL;
    }
    while (l && l->count < n) {
        size_t i = l->count++;          /* counted first: a half-filled entry is freed too */
        if (!schedule_init(&l->schedules[i], json_array_get(arr, i))) {
            jobq_schedules_free(l);
            l = NULL;
        }
    }
    json_decref(reply);
    if (!l)
        return jobq__fail(c, JOBQ_E_PROTOCOL, NULL, "reply is not a list of schedules");
    *out = l;
    return JOBQ_E_OK;
}

/* Calls a schedule route that takes no body and answers a schedule (or 204). */
static int schedule_call(jobq_client *c, const char *method, const char *fmt, const char *id,
                         jobq_schedule **out)
{
    json_t *reply = NULL;
    if (out)
        *out = NULL;
    if (!id)
        return jobq__fail(c, JOBQ_E_INVALID, "id", "id is required");
    char *path = jobq__path(fmt, id);
    int err = jobq__call(c, method, path, NULL, 0, out ? &reply : NULL);
    free(path);
    return err ? err : reply_schedule(c, reply, out);
}

int jobq_schedule_get(jobq_client *c, const char *id, jobq_schedule **out)
{
    return schedule_call(c, "GET", "/v1/schedules/%s", id, out);
}

int jobq_schedule_pause(jobq_client *c, const char *id, jobq_schedule **out)
{
    return schedule_call(c, "POST", "/v1/schedules/%s/pause", id, out);
}

int jobq_schedule_resume(jobq_client *c, const char *id, jobq_schedule **out)
{
    return schedule_call(c, "POST", "/v1/schedules/%s/resume", id, out);
}

int jobq_schedule_delete(jobq_client *c, const char *id)
{
    return schedule_call(c, "DELETE", "/v1/schedules/%s", id, NULL);
}

/* --- workflows --- */

static void step_fini(jobq_workflow_step *s)
{
    free(s->key);
    jobq_job_free(s->job);
    for (size_t i = 0; i < s->ndepends_on; i++)
        free(s->depends_on[i]);
    free(s->depends_on);
}

void jobq_workflow_free(jobq_workflow *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->nsteps; i++)
        step_fini(&w->steps[i]);
    free(w->steps);
    free(w->id);
    free(w->user_id);
    free(w->name);
    free(w->status);
    free(w->created_at);
    free(w);
}

static bool step_init(jobq_workflow_step *s, const json_t *o)
{
    bool ok = true;
    const json_t *deps = json_object_get(o, "depends_on");
    size_t n = json_array_size(deps);
    s->key = jobq__get_text(o, "key", &ok);
    if (!(s->job = jobq__job_from(o)) || !(s->depends_on = calloc(n ? n : 1, sizeof(char *))))
        return false;
    for (; s->ndepends_on < n; s->ndepends_on++) {
        const char *k = json_string_value(json_array_get(deps, s->ndepends_on));
        if (!(s->depends_on[s->ndepends_on] = strdup(k ? k : "")))
            return false;
    }
    return ok;
}

/* Reads a workflow reply into *out (when out is set); consumes reply. */
static int reply_workflow(jobq_client *c, json_t *reply, jobq_workflow **out)
{
    bool ok = true;
    if (!out) {
        json_decref(reply);
        return JOBQ_E_OK;
    }
    const json_t *steps = json_object_get(reply, "steps");
    size_t n = json_array_size(steps);
    jobq_workflow *w = calloc(1, sizeof *w);
    if (w) {
        ok = json_is_string(json_object_get(reply, "id")) && json_is_array(steps);
        w->id = jobq__get_text(reply, "id", &ok);
        w->user_id = jobq__get_text(reply, "user_id", &ok);
        w->name = jobq__get_text(reply, "name", &ok);
        w->status = jobq__get_text(reply, "status", &ok);
        w->created_at = jobq__get_text(reply, "created_at", &ok);
        ok = ok && (w->steps = calloc(n ? n : 1, sizeof *w->steps)) != NULL;
        while (ok && w->nsteps < n) {     /* counted first: a half-filled step is freed */
            w->nsteps++;
            ok = step_init(&w->steps[w->nsteps - 1], json_array_get(steps, w->nsteps - 1));
        }
    }
    json_decref(reply);
    if (!w || !ok) {
        jobq_workflow_free(w);
        return jobq__fail(c, JOBQ_E_PROTOCOL, NULL, "reply is not a workflow");
    }
    *out = w;
    return JOBQ_E_OK;
}

int jobq_workflow_create(jobq_client *c, const char *name, const char *steps_json,
                         jobq_workflow **out)
{
    json_t *reply = NULL, *steps;
    if (out)
        *out = NULL;
    if (!steps_json)
        return jobq__fail(c, JOBQ_E_INVALID, "steps", "steps are required");
    if (!(steps = jobq__arg_json(c, "steps", steps_json)))
        return jobq_last_err(c);
    if (!json_is_array(steps)) {
        json_decref(steps);
        return jobq__fail(c, JOBQ_E_INVALID, "steps", "steps must be a JSON array of steps");
    }
    json_t *b = json_pack("{s:o}", "steps", steps);  /* takes steps, even on failure */
    bool ok = b && jobq__set_str(b, "name", name);
    int err = ok ? jobq__call(c, "POST", "/v1/workflows", b, 0, &reply)
                 : jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    json_decref(b);
    return err ? err : reply_workflow(c, reply, out);
}

int jobq_workflow_get(jobq_client *c, const char *id, jobq_workflow **out)
{
    json_t *reply;
    *out = NULL;
    if (!id)
        return jobq__fail(c, JOBQ_E_INVALID, "id", "id is required");
    char *path = jobq__path("/v1/workflows/%s", id);
    int err = jobq__call(c, "GET", path, NULL, 0, &reply);
    free(path);
    return err ? err : reply_workflow(c, reply, out);
}
