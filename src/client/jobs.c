/*
 * jobs.c - libjobq producer calls: create (single and batch; depends_on, on_parent_failure,
 * on_conflict replace), get, list (offset or cursor; containment and log_q filters),
 * cancel (one, by ids, by filter), retry, delete and the job log listing (docs/API.md,
 * routes under /v1/jobs).
 */
#include <stdlib.h>
#include <string.h>

#include "client.h"

/* --- create --- */

/* Adds the single-create members: dedup, cache, depends_on, on_parent_failure, on_conflict. */
static bool single_members(jobq_client *c, json_t *o, const jobq_new_job *in)
{
    bool ok = (!in->no_dedup || json_object_set_new(o, "dedup", json_false()) == 0) &&
              (!in->no_cache || json_object_set_new(o, "cache", json_false()) == 0) &&
              jobq__set_str(o, "on_parent_failure", in->on_parent_failure) &&
              (!in->replace || jobq__set_str(o, "on_conflict", "replace"));
    if (!ok) {
        jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
        return false;
    }
    if (in->ndepends_on == 0)
        return true;
    if (!in->depends_on) {
        jobq__fail(c, JOBQ_E_INVALID, "depends_on", "depends_on is NULL, ndepends_on is not");
        return false;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < in->ndepends_on; i++) {
        if (!in->depends_on[i]) {
            json_decref(arr);
            jobq__fail(c, JOBQ_E_INVALID, "depends_on", "an id in depends_on is NULL");
            return false;
        }
        if (json_array_append_new(arr, json_string(in->depends_on[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    if (!arr || json_object_set_new(o, "depends_on", arr) != 0) {
        jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
        return false;
    }
    return true;
}

json_t *jobq__create_body(jobq_client *c, const jobq_new_job *in, bool batch)
{
    json_t *o = json_object(), *params = NULL;
    if (!in->type) {
        jobq__fail(c, JOBQ_E_INVALID, "type", "type is required");
        goto undo_obj;
    }
    if (!o)
        goto nomem;
    if (in->params && !(params = jobq__arg_json(c, "params", in->params)))
        goto undo_obj;
    if (params && json_object_set_new(o, "params", params) != 0)
        goto nomem_obj;
    bool ok = jobq__set_str(o, "type", in->type) && jobq__set_str(o, "queue", in->queue) &&
              jobq__set_str(o, "run_at", in->run_at) &&
              jobq__set_str(o, "unique_key", in->unique_key);
    ok = ok && (in->priority == 0 || jobq__set_int(o, "priority", in->priority));
    ok = ok && (in->run_at || in->delay_ms == 0 || jobq__set_int(o, "delay_ms", in->delay_ms));
    ok = ok && (in->max_attempts == 0 || jobq__set_int(o, "max_attempts", in->max_attempts));
    ok = ok && (in->ttl_ms == 0 || jobq__set_int(o, "ttl_ms", in->ttl_ms));
    if (!ok)
        goto nomem_obj;
    if (!batch && !single_members(c, o, in))
        goto undo_obj;
    return o;
nomem_obj:
    json_decref(o);
nomem:
    jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    return NULL;
undo_obj:
    json_decref(o);
    return NULL;
}

int jobq_create(jobq_client *c, const jobq_new_job *in, jobq_job **out)
{
    json_t *reply;
    if (out)
        *out = NULL;
    if (!in)
        return jobq__fail(c, JOBQ_E_INVALID, "type", "type is required");
    json_t *body = jobq__create_body(c, in, false);
    if (!body)
        return jobq_last_err(c);
    int err = jobq__call_idem(c, "POST", "/v1/jobs", body, in->idempotency_key, &reply);
    json_decref(body);
    return err ? err : jobq__reply_job(c, reply, out);
}

/* --- batch --- */

void jobq_batch_result_free(jobq_batch_result *r)
{
    if (!r)
        return;
    jobq_job_list_free(r->jobs);
    free(r);
}

/* Sends {"jobs": arr (consumed), "on_conflict": ...} and reads the reply into *out. */
static int batch_send(jobq_client *c, json_t *arr, const jobq_batch_opts *o,
                      jobq_batch_result **out)
{
    static const jobq_batch_opts none;
    json_t *reply = NULL;
    o = o ? o : &none;
    json_t *body = json_pack("{s:o, s:s}", "jobs", arr, "on_conflict",
                             o->replace ? "replace" : "return");
    int err = body ? jobq__call_idem(c, "POST", "/v1/jobs/batch", body, o->idempotency_key,
                                     out ? &reply : NULL)
                   : jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    json_decref(body);
    if (err || !out)
        return err;
    jobq_batch_result *r = calloc(1, sizeof *r);
    if (r && (r->jobs = jobq__jobs_from(json_object_get(reply, "jobs")))) {
        r->created = (int)jobq__get_i64(reply, "created", 0);
        r->existing = (int)jobq__get_i64(reply, "existing", 0);
        *out = r;
    } else {
        free(r);
        err = jobq__fail(c, JOBQ_E_PROTOCOL, NULL, "reply has no valid jobs array");
    }
    json_decref(reply);
    return err;
}

/* Checks n against the API's cap; out is cleared. */
static int batch_args(jobq_client *c, size_t n, bool have_items, jobq_batch_result **out)
{
    if (out)
        *out = NULL;
    if (n < 1 || n > JOBQ_BATCH_MAX || !have_items)
        return jobq__fail(c, JOBQ_E_INVALID, "jobs", "a batch holds 1 to 1000 jobs");
    return JOBQ_E_OK;
}

int jobq_create_batch(jobq_client *c, const jobq_new_job *items, size_t n,
                      const jobq_batch_opts *opts, jobq_batch_result **out)
{
    char field[32];
    int err = batch_args(c, n, items != NULL, out);
    json_t *arr = err ? NULL : json_array();
    if (err || !arr)
        return err ? err : jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    for (size_t i = 0; i < n; i++) {
        json_t *o = jobq__create_body(c, &items[i], true);
        if (!o || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            if (o || jobq_last_err(c) != JOBQ_E_INVALID)
                return jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
            snprintf(field, sizeof field, "jobs[%zu].%s", i,
                     jobq_last_field(c) ? jobq_last_field(c) : "");
            return jobq__fail(c, JOBQ_E_INVALID, field, jobq_last_message(c));
        }
    }
    return batch_send(c, arr, opts, out);
}

int jobq_create_batch_json(jobq_client *c, const char *const *items, size_t n,
                           const jobq_batch_opts *opts, jobq_batch_result **out)
{
    char field[32];
    int err = batch_args(c, n, items != NULL, out);
    json_t *arr = err ? NULL : json_array();
    if (err || !arr)
        return err ? err : jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    for (size_t i = 0; i < n; i++) {
        snprintf(field, sizeof field, "jobs[%zu]", i);
        json_t *o = items[i] ? jobq__arg_json(c, field, items[i]) : NULL;
        if (!o || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            if (!items[i])
                return jobq__fail(c, JOBQ_E_INVALID, field, "item is NULL");
            return o ? jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL) : jobq_last_err(c);
        }
    }
    return batch_send(c, arr, opts, out);
}

/* Calls a job route that takes no body and answers a job. */
static int job_call(jobq_client *c, const char *method, const char *fmt, const char *id,
                    jobq_job **out)
{
    json_t *reply;
    if (out)
        *out = NULL;
    if (!id)
        return jobq__fail(c, JOBQ_E_INVALID, "id", "id is required");
    char *path = jobq__path(fmt, id);
    int err = jobq__call(c, method, path, NULL, 0, &reply);
    free(path);
    return err ? err : jobq__reply_job(c, reply, out);
}

int jobq_get(jobq_client *c, const char *id, jobq_job **out)
{
    return job_call(c, "GET", "/v1/jobs/%s", id, out);
}

int jobq_cancel(jobq_client *c, const char *id, jobq_job **out)
{
    return job_call(c, "POST", "/v1/jobs/%s/cancel", id, out);
}

int jobq_retry(jobq_client *c, const char *id, jobq_job **out)
{
    return job_call(c, "POST", "/v1/jobs/%s/retry", id, out);
}

/* POSTs a bulk cancel body (consumed) and reads {"cancelled", "more"}. */
static int cancel_many(jobq_client *c, json_t *body, int64_t *cancelled, int *more)
{
    json_t *reply = NULL;
    int err = body ? jobq__call(c, "POST", "/v1/jobs/cancel", body, 0, &reply)
                   : jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    json_decref(body);
    if (err)
        return err;
    if (!json_is_integer(json_object_get(reply, "cancelled"))) {
        json_decref(reply);
        return jobq__fail(c, JOBQ_E_PROTOCOL, NULL, "reply has no cancelled count");
    }
    if (cancelled)
        *cancelled = jobq__get_i64(reply, "cancelled", 0);
    if (more)
        *more = json_is_true(json_object_get(reply, "more"));
    json_decref(reply);
    return JOBQ_E_OK;
}

int jobq_cancel_ids(jobq_client *c, const char *const *ids, size_t n, int64_t *cancelled)
{
    if (cancelled)
        *cancelled = 0;
    if (!ids || n < 1 || n > JOBQ_BATCH_MAX)
        return jobq__fail(c, JOBQ_E_INVALID, "ids", "give 1 to 1000 job ids");
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        if (!ids[i] || json_array_append_new(arr, json_string(ids[i])) != 0) {
            json_decref(arr);
            return ids[i] ? jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL)
                          : jobq__fail(c, JOBQ_E_INVALID, "ids", "an id is NULL");
        }
    }
    return cancel_many(c, arr ? json_pack("{s:o}", "ids", arr) : NULL, cancelled, NULL);
}

int jobq_cancel_where(jobq_client *c, const jobq_cancel_filter *f, int64_t *cancelled,
                      int *more)
{
    static const jobq_cancel_filter all;
    if (cancelled)
        *cancelled = 0;
    if (more)
        *more = 0;
    f = f ? f : &all;
    json_t *flt = json_object();
    bool ok = flt && jobq__set_str(flt, "status", f->status) &&
              jobq__set_str(flt, "type", f->type) && jobq__set_str(flt, "queue", f->queue);
    if (!ok) {
        json_decref(flt);
        return jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    }
    return cancel_many(c, json_pack("{s:o}", "filter", flt), cancelled, more);
}

int jobq_delete(jobq_client *c, const char *id)
{
    if (!id)
        return jobq__fail(c, JOBQ_E_INVALID, "id", "id is required");
    char *path = jobq__path("/v1/jobs/%s", id);
    int err = jobq__call(c, "DELETE", path, NULL, 0, NULL);
    free(path);
    return err;
}

/* Reads {jobs, total_count, limit, offset} into *out. Consumes reply. */
static int list_reply(jobq_client *c, json_t *reply, jobq_job_list **out)
{
    jobq_job_list *l = jobq__jobs_from(json_object_get(reply, "jobs"));
    if (!l) {
        json_decref(reply);
        return jobq__fail(c, JOBQ_E_PROTOCOL, NULL, "reply has no valid jobs array");
    }
    json_t *total = json_object_get(reply, "total_count");
    if (json_is_integer(total))
        l->total_count = json_integer_value(total);
    l->limit = (int)json_integer_value(json_object_get(reply, "limit"));
    l->offset = (int)json_integer_value(json_object_get(reply, "offset"));
    bool ok = true;
    l->next_cursor = jobq__get_text(reply, "next_cursor", &ok);
    json_decref(reply);
    if (!ok) {
        jobq_job_list_free(l);
        return jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    }
    *out = l;
    return JOBQ_E_OK;
}

int jobq_list(jobq_client *c, const jobq_list_opts *o, jobq_job_list **out)
{
    static const jobq_list_opts none;
    struct jobq__str path = { .ok = true };
    json_t *reply;
    *out = NULL;
    o = o ? o : &none;
    if (!jobq__arg_check(c, "params", o->params, JSON_OBJECT) ||
        !jobq__arg_check(c, "result", o->result, JSON_OBJECT))
        return jobq_last_err(c);
    jobq__str_add(&path, "/v1/jobs", 8);
    jobq__str_query(&path, "status", o->status);
    jobq__str_query(&path, "type", o->type);
    jobq__str_query(&path, "queue", o->queue);
    jobq__str_query(&path, "order", o->order);
    jobq__str_query_int(&path, "limit", o->limit, true);
    jobq__str_query_int(&path, "offset", o->offset, true);
    jobq__str_query(&path, "cursor", o->cursor);
    jobq__str_query(&path, "params", o->params);
    jobq__str_query(&path, "result", o->result);
    jobq__str_query(&path, "log_q", o->log_q);
    int err = path.ok ? jobq__call(c, "GET", path.s, NULL, 0, &reply)
                      : jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    free(path.s);
    return err ? err : list_reply(c, reply, out);
}

int jobq_logs(jobq_client *c, const char *id, const char *level, int limit, const char *after,
              jobq_log_list **out)
{
    struct jobq__str path = { .ok = true };
    json_t *reply;
    *out = NULL;
    if (!id)
        return jobq__fail(c, JOBQ_E_INVALID, "id", "id is required");
    char *base = jobq__path("/v1/jobs/%s/logs", id);
    if (base)
        jobq__str_add(&path, base, strlen(base));
    else
        path.ok = false;
    free(base);
    jobq__str_query(&path, "level", level);
    jobq__str_query_int(&path, "limit", limit, true);
    jobq__str_query(&path, "after", after);
    int err = path.ok ? jobq__call(c, "GET", path.s, NULL, 0, &reply)
                      : jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    free(path.s);
    if (err)
        return err;
    err = jobq__logs_from(reply, out);
    json_decref(reply);
    return err ? jobq__fail(c, err, NULL, "reply is not a log list") : JOBQ_E_OK;
}
