/*
 * jobs.c - libjobq producer calls: create, get, list, cancel, retry, delete and the job log
 * listing (docs/API.md, routes under /v1/jobs).
 */
#include <stdlib.h>
#include <string.h>

#include "client.h"

/* Body of POST /v1/jobs; NULL with the last error set on bad input or no memory. */
static json_t *create_body(jobq_client *c, const jobq_new_job *in)
{
    json_t *o = json_object(), *params = NULL;
    if (!o)
        goto nomem;
    if (in->params && !(params = jobq__arg_json(c, "params", in->params)))
        goto undo_obj;
    if (params && json_object_set_new(o, "params", params) != 0)
        goto nomem_obj;
    bool ok = jobq__set_str(o, "type", in->type) && jobq__set_str(o, "queue", in->queue) &&
              jobq__set_str(o, "run_at", in->run_at);
    ok = ok && (in->priority == 0 || jobq__set_int(o, "priority", in->priority));
    ok = ok && (in->run_at || in->delay_ms == 0 || jobq__set_int(o, "delay_ms", in->delay_ms));
    ok = ok && (in->max_attempts == 0 || jobq__set_int(o, "max_attempts", in->max_attempts));
    ok = ok && (in->ttl_ms == 0 || jobq__set_int(o, "ttl_ms", in->ttl_ms));
    if (!ok)
        goto nomem_obj;
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
    if (!in || !in->type)
        return jobq__fail(c, JOBQ_E_INVALID, "type", "type is required");
    json_t *body = create_body(c, in);
    if (!body)
        return jobq_last_err(c);
    int err = jobq__call(c, "POST", "/v1/jobs", body, 0, &reply);
    json_decref(body);
    return err ? err : jobq__reply_job(c, reply, out);
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
    json_decref(reply);
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
    jobq__str_add(&path, "/v1/jobs", 8);
    jobq__str_query(&path, "status", o->status);
    jobq__str_query(&path, "type", o->type);
    jobq__str_query(&path, "queue", o->queue);
    jobq__str_query(&path, "order", o->order);
    jobq__str_query_int(&path, "limit", o->limit, true);
    jobq__str_query_int(&path, "offset", o->offset, true);
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
