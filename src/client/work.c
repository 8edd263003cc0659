/*
 * work.c - libjobq worker calls: claim (with long-poll), heartbeat, complete, fail and log
 * (docs/API.md: /v1/queues/{queue}/claim and the lease-guarded /v1/jobs/{id}/... routes).
 */
#include <stdlib.h>

#include "client.h"

/* New object {"lease_token": token}; NULL (last error set) when token is missing. */
static json_t *lease_body(jobq_client *c, const char *id, const char *lease_token)
{
    if (!id) {
        jobq__fail(c, JOBQ_E_INVALID, "id", "id is required");
        return NULL;
    }
    if (!lease_token) {
        jobq__fail(c, JOBQ_E_INVALID, "lease_token", "lease_token is required");
        return NULL;
    }
    json_t *o = json_object();
    if (!o || !jobq__set_str(o, "lease_token", lease_token)) {
        json_decref(o);
        jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
        return NULL;
    }
    return o;
}

/* Sets key to the JSON parsed from text (skipped when text is NULL). Returns false with
 * the last error set on bad JSON or no memory. */
static bool set_json_arg(jobq_client *c, json_t *o, const char *key, const char *text)
{
    if (!text)
        return true;
    json_t *v = jobq__arg_json(c, key, text);
    if (!v)
        return false;
    if (json_object_set_new(o, key, v) != 0) {
        jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
        return false;
    }
    return true;
}

/* POSTs body (consumed) to fmt with id and answers the reply job in *out (may be NULL). */
static int post_job(jobq_client *c, const char *fmt, const char *id, json_t *body,
                    jobq_job **out)
{
    json_t *reply;
    char *path = jobq__path(fmt, id);
    int err = jobq__call(c, "POST", path, body, 0, out ? &reply : NULL);
    free(path);
    json_decref(body);
    return err || !out ? err : jobq__reply_job(c, reply, out);
}

int jobq_claim(jobq_client *c, const char *queue, const char *worker_id, int lease_ms, int max,
               int wait_ms, jobq_job_list **out)
{
    json_t *reply;
    *out = NULL;
    if (!queue || !worker_id)
        return jobq__fail(c, JOBQ_E_INVALID, queue ? "worker_id" : "queue",
                          "queue and worker_id are required");
    json_t *body = json_object();
    bool ok = body && jobq__set_str(body, "worker_id", worker_id);
    ok = ok && (lease_ms == 0 || jobq__set_int(body, "lease_ms", lease_ms));
    ok = ok && (max == 0 || jobq__set_int(body, "max", max));
    ok = ok && (wait_ms == 0 || jobq__set_int(body, "wait_ms", wait_ms));
    char *path = jobq__path("/v1/queues/%s/claim", queue);
    int err = ok ? jobq__call(c, "POST", path, body, wait_ms > 0 ? wait_ms : 0, &reply)
                 : jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    free(path);
    json_decref(body);
    if (err)
        return err;
    *out = jobq__jobs_from(json_object_get(reply, "jobs"));
    json_decref(reply);
    return *out ? JOBQ_E_OK : jobq__fail(c, JOBQ_E_PROTOCOL, NULL, "reply has no jobs array");
}

int jobq_heartbeat(jobq_client *c, const char *id, const char *lease_token, int lease_ms,
                   int progress_percent, const char *progress_message, jobq_job **out)
{
    if (out)
        *out = NULL;
    json_t *body = lease_body(c, id, lease_token);
    if (!body)
        return jobq_last_err(c);
    bool ok = lease_ms == 0 || jobq__set_int(body, "lease_ms", lease_ms);
    ok = ok && (progress_percent < 0 || jobq__set_int(body, "progress_percent",
                                                      progress_percent));
    ok = ok && jobq__set_str(body, "progress_message", progress_message);
    if (!ok) {
        json_decref(body);
        return jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    }
    return post_job(c, "/v1/jobs/%s/heartbeat", id, body, out);
}

int jobq_complete(jobq_client *c, const char *id, const char *lease_token,
                  const char *result_json, jobq_job **out)
{
    if (out)
        *out = NULL;
    json_t *body = lease_body(c, id, lease_token);
    if (!body)
        return jobq_last_err(c);
    if (!set_json_arg(c, body, "result", result_json)) {
        json_decref(body);
        return jobq_last_err(c);
    }
    return post_job(c, "/v1/jobs/%s/complete", id, body, out);
}

int jobq_fail(jobq_client *c, const char *id, const char *lease_token,
              const char *error_message, const char *error_code, int retryable, jobq_job **out)
{
    if (out)
        *out = NULL;
    if (!error_message)
        return jobq__fail(c, JOBQ_E_INVALID, "error_message", "error_message is required");
    json_t *body = lease_body(c, id, lease_token);
    if (!body)
        return jobq_last_err(c);
    bool ok = jobq__set_str(body, "error_message", error_message) &&
              jobq__set_str(body, "error_code", error_code) &&
              json_object_set_new(body, "retryable", json_boolean(retryable)) == 0;
    if (!ok) {
        json_decref(body);
        return jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    }
    return post_job(c, "/v1/jobs/%s/fail", id, body, out);
}

int jobq_log(jobq_client *c, const char *id, const char *lease_token, const char *level,
             const char *message, const char *metadata_json)
{
    if (!level || !message)
        return jobq__fail(c, JOBQ_E_INVALID, level ? "message" : "level",
                          "level and message are required");
    json_t *body = lease_body(c, id, lease_token);
    if (!body)
        return jobq_last_err(c);
    bool ok = jobq__set_str(body, "level", level) && jobq__set_str(body, "message", message);
    if (!ok) {
        json_decref(body);
        return jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    }
    if (!set_json_arg(c, body, "metadata", metadata_json)) {
        json_decref(body);
        return jobq_last_err(c);
    }
    return post_job(c, "/v1/jobs/%s/logs", id, body, NULL);
}
