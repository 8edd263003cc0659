/*
 * json.c - libjobq JSON glue: caller JSON text -> jansson values, and API reply objects ->
 * the public plain structs of jobq.h (jobq_job, jobq_token, jobq_log_entry) and back to free.
 *
 * Replies are read leniently: a member of the wrong type becomes NULL / -1 instead of an
 * error, so a newer server adding or widening fields does not break old clients. Only the
 * members a caller cannot do without (a job's id) are required.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

/* --- caller input --- */

json_t *jobq__arg_json(jobq_client *c, const char *field, const char *text)
{
    char msg[256];
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
    if (!v) {
        snprintf(msg, sizeof msg, "%s is not valid JSON: %s (line %d, column %d)", field,
                 je.text, je.line, je.column);
        jobq__fail(c, JOBQ_E_INVALID, field, msg);
    }
    return v;
}

bool jobq__arg_check(jobq_client *c, const char *field, const char *text, json_type want)
{
    char msg[160];
    if (!text)
        return true;
    json_t *v = jobq__arg_json(c, field, text);
    bool ok = v && json_typeof(v) == want;
    if (v && !ok) {
        snprintf(msg, sizeof msg, "%s must be a JSON %s", field,
                 want == JSON_ARRAY ? "array" : "object");
        jobq__fail(c, JOBQ_E_INVALID, field, msg);
    }
    json_decref(v);
    return ok;
}

bool jobq__set_str(json_t *o, const char *key, const char *val)
{
    return !val || json_object_set_new(o, key, json_string(val)) == 0;
}

bool jobq__set_int(json_t *o, const char *key, long long val)
{
    return json_object_set_new(o, key, json_integer(val)) == 0;
}

/* --- reply members --- */

char *jobq__get_text(const json_t *o, const char *key, bool *ok)
{
    const json_t *v = json_object_get(o, key);
    char *s = NULL;
    if (!v || json_is_null(v))
        return NULL;
    if (json_is_string(v))
        s = strdup(json_string_value(v));
    else
        s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        *ok = false;
    return s;
}

/* Member as compact JSON text; NULL when null or missing. */
static char *get_json(const json_t *o, const char *key, bool *ok)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return NULL;
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        *ok = false;
    return s;
}

int64_t jobq__get_i64(const json_t *o, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v)
         : json_is_real(v) ? (int64_t)json_real_value(v) : dflt;
}

/* Member as int; dflt when null, missing or not a number. */
static int get_int(const json_t *o, const char *key, int dflt)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? (int)json_number_value(v) : dflt;
}

/* --- jobs --- */

static const char *const status_names[] = {
    [JOBQ_STATUS_UNKNOWN] = "unknown",
    [JOBQ_STATUS_PENDING] = "pending",
    [JOBQ_STATUS_PROCESSING] = "processing",
    [JOBQ_STATUS_COMPLETED] = "completed",
    [JOBQ_STATUS_FAILED] = "failed",
    [JOBQ_STATUS_CANCELLED] = "cancelled",
};

const char *jobq_status_name(jobq_status s)
{
    if ((unsigned)s >= sizeof status_names / sizeof status_names[0])
        return "unknown";
    return status_names[s];
}

static jobq_status status_parse(const char *s)
{
    for (size_t i = 1; s && i < sizeof status_names / sizeof status_names[0]; i++)
        if (strcmp(s, status_names[i]) == 0)
            return (jobq_status)i;
    return JOBQ_STATUS_UNKNOWN;
}

void jobq_job_free(jobq_job *j)
{
    if (!j)
        return;
    char **strs[] = {
        &j->id, &j->user_id, &j->queue, &j->type, &j->params, &j->status_name, &j->run_at,
        &j->created_at, &j->updated_at, &j->started_at, &j->completed_at, &j->expires_at,
        &j->lease_expires_at, &j->worker_id, &j->progress_message, &j->result,
        &j->error_message, &j->error_code, &j->lease_token, &j->workflow_id, &j->step_key,
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(*strs[i]);
    free(j);
}

jobq_job *jobq__job_from(const json_t *o)
{
    bool ok = true;
    if (!json_is_string(json_object_get(o, "id")))
        return NULL;
    jobq_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->id = jobq__get_text(o, "id", &ok);
    j->user_id = jobq__get_text(o, "user_id", &ok);
    j->queue = jobq__get_text(o, "queue", &ok);
    j->type = jobq__get_text(o, "type", &ok);
    j->params = get_json(o, "params", &ok);
    j->status_name = jobq__get_text(o, "status", &ok);
    j->status = status_parse(j->status_name);
    j->priority = get_int(o, "priority", 0);
    j->attempts = get_int(o, "attempts", 0);
    j->max_attempts = get_int(o, "max_attempts", 0);
    j->run_at = jobq__get_text(o, "run_at", &ok);
    j->created_at = jobq__get_text(o, "created_at", &ok);
    j->updated_at = jobq__get_text(o, "updated_at", &ok);
    j->started_at = jobq__get_text(o, "started_at", &ok);
    j->completed_at = jobq__get_text(o, "completed_at", &ok);
    j->expires_at = jobq__get_text(o, "expires_at", &ok);
    j->lease_expires_at = jobq__get_text(o, "lease_expires_at", &ok);
    j->worker_id = jobq__get_text(o, "worker_id", &ok);
    j->progress_percent = get_int(o, "progress_percent", -1);
    j->progress_message = jobq__get_text(o, "progress_message", &ok);
    j->result = get_json(o, "result", &ok);
    j->error_message = jobq__get_text(o, "error_message", &ok);
    j->error_code = jobq__get_text(o, "error_code", &ok);
    j->lease_token = jobq__get_text(o, "lease_token", &ok);
    j->deduplicated = json_is_true(json_object_get(o, "deduplicated"));
    j->cached = json_is_true(json_object_get(o, "cached"));
    j->blocked_by = get_int(o, "blocked_by", 0);
    j->workflow_id = jobq__get_text(o, "workflow_id", &ok);
    j->step_key = jobq__get_text(o, "step_key", &ok);
    if (!ok) {
        jobq_job_free(j);
        return NULL;
    }
    return j;
}

void jobq_job_list_free(jobq_job_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++)
        jobq_job_free(l->jobs[i]);
    free(l->jobs);
    free(l->next_cursor);
    free(l);
}

jobq_job_list *jobq__jobs_from(const json_t *arr)
{
    size_t n = json_array_size(arr);
    if (!json_is_array(arr))
        return NULL;
    jobq_job_list *l = calloc(1, sizeof *l);
    if (!l || !(l->jobs = calloc(n ? n : 1, sizeof *l->jobs))) {
        free(l);
        return NULL;
    }
    for (; l->count < n; l->count++) {
        if (!(l->jobs[l->count] = jobq__job_from(json_array_get(arr, l->count)))) {
            jobq_job_list_free(l);
            return NULL;
        }
    }
    l->total_count = (int64_t)n;
    return l;
}

int jobq__reply_job(jobq_client *c, json_t *reply, jobq_job **out)
{
    int err = JOBQ_E_OK;
    if (out && !(*out = jobq__job_from(reply)))
        err = jobq__fail(c, JOBQ_E_PROTOCOL, NULL, "reply is not a job object");
    json_decref(reply);
    return err;
}

/* --- tokens --- */

void jobq_token_free(jobq_token *t)
{
    if (!t)
        return;
    free(t->id);
    free(t->token);
    free(t->user_id);
    free(t->role);
    free(t->name);
    free(t->created_at);
    free(t);
}

jobq_token *jobq__token_from(const json_t *o)
{
    bool ok = true;
    if (!json_is_string(json_object_get(o, "token")))
        return NULL;
    jobq_token *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->id = jobq__get_text(o, "id", &ok);
    t->token = jobq__get_text(o, "token", &ok);
    t->user_id = jobq__get_text(o, "user_id", &ok);
    t->role = jobq__get_text(o, "role", &ok);
    t->name = jobq__get_text(o, "name", &ok);
    t->created_at = jobq__get_text(o, "created_at", &ok);
    if (!ok) {
        jobq_token_free(t);
        return NULL;
    }
    return t;
}

/* --- logs --- */

static void log_entry_fini(jobq_log_entry *e)
{
    free(e->id);
    free(e->job_id);
    free(e->created_at);
    free(e->level);
    free(e->message);
    free(e->metadata);
}

void jobq_log_list_free(jobq_log_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++)
        log_entry_fini(&l->logs[i]);
    free(l->logs);
    free(l->next_after);
    free(l);
}

static bool log_entry_init(jobq_log_entry *e, const json_t *o)
{
    bool ok = true;
    e->id = jobq__get_text(o, "id", &ok);
    e->job_id = jobq__get_text(o, "job_id", &ok);
    e->created_at = jobq__get_text(o, "created_at", &ok);
    e->level = jobq__get_text(o, "level", &ok);
    e->message = jobq__get_text(o, "message", &ok);
    e->metadata = get_json(o, "metadata", &ok);
    return ok && json_is_object(o);
}

int jobq__logs_from(const json_t *o, jobq_log_list **out)
{
    bool ok = true;
    const json_t *arr = json_object_get(o, "logs");
    size_t n = json_array_size(arr);
    if (!json_is_array(arr))
        return JOBQ_E_PROTOCOL;
    jobq_log_list *l = calloc(1, sizeof *l);
    if (!l || !(l->logs = calloc(n ? n : 1, sizeof *l->logs))) {
        free(l);
        return JOBQ_E_NOMEM;
    }
    for (; l->count < n; l->count++) {
        if (!log_entry_init(&l->logs[l->count], json_array_get(arr, l->count))) {
            l->count++;                 /* the half-filled entry is freed with the rest */
            jobq_log_list_free(l);
            return JOBQ_E_PROTOCOL;
        }
    }
    l->next_after = jobq__get_text(o, "next_after", &ok);
    if (!ok) {
        jobq_log_list_free(l);
        return JOBQ_E_NOMEM;
    }
    *out = l;
    return JOBQ_E_OK;
}

/* --- log search hits --- */

void jobq_log_hits_free(jobq_log_hits *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->count; i++) {
        log_entry_fini(&h->hits[i].log);
        free(h->hits[i].type);
        free(h->hits[i].snippet);
    }
    free(h->hits);
    free(h->next_cursor);
    free(h);
}

int jobq__log_hits_from(const json_t *o, jobq_log_hits **out)
{
    bool ok = true;
    const json_t *arr = json_object_get(o, "logs");
    size_t n = json_array_size(arr);
    if (!json_is_array(arr))
        return JOBQ_E_PROTOCOL;
    jobq_log_hits *h = calloc(1, sizeof *h);
    if (!h || !(h->hits = calloc(n ? n : 1, sizeof *h->hits))) {
        free(h);
        return JOBQ_E_NOMEM;
    }
    for (; h->count < n; h->count++) {
        const json_t *e = json_array_get(arr, h->count);
        jobq_log_hit *x = &h->hits[h->count];
        bool good = log_entry_init(&x->log, e);
        x->type = jobq__get_text(e, "type", &ok);
        x->snippet = jobq__get_text(e, "snippet", &ok);
        if (!good || !ok) {
            h->count++;                 /* the half-filled entry is freed with the rest */
            jobq_log_hits_free(h);
            return good ? JOBQ_E_NOMEM : JOBQ_E_PROTOCOL;
        }
    }
    h->next_cursor = jobq__get_text(o, "next_cursor", &ok);
    if (!ok) {
        jobq_log_hits_free(h);
        return JOBQ_E_NOMEM;
    }
    *out = h;
    return JOBQ_E_OK;
}

/* --- params helpers --- */

int64_t jobq_param_int(const jobq_job *job, const char *key, int64_t dflt)
{
    json_t *o = job && job->params ? json_loads(job->params, 0, NULL) : NULL;
    int64_t v = jobq__get_i64(o, key, dflt);
    json_decref(o);
    return v;
}

const char *jobq_param_str(const jobq_job *job, const char *key, char *buf, size_t cap)
{
    json_t *o = job && job->params ? json_loads(job->params, 0, NULL) : NULL;
    const char *s = json_string_value(json_object_get(o, key));
    if (s && cap > 0)
        snprintf(buf, cap, "%s", s);
    json_decref(o);
    return s && cap > 0 ? buf : NULL;
}
