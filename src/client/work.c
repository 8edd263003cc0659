/*
 * work.c - libjobq worker calls: claim (with long-poll), heartbeat, complete, fail, log and
 * next (docs/API.md: /v1/queues/{queue}/claim, /v1/queues/{queue}/next and the
 * lease-guarded /v1/jobs/{id}/... routes).
 */
#include <stdlib.h>
#include <string.h>

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

/* --- next: finish and claim in one round trip --- */

void jobq_next_result_free(jobq_next_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nerrors; i++)
        free(r->errors[i].code);
    free(r->errors);
    jobq_job_list_free(r->jobs);
    free(r);
}

/* One "complete" or "fail" item of the body; NULL with the last error set. */
static json_t *finish_item(jobq_client *c, const jobq_finish *f)
{
    if (!f->id || !f->lease_token || (f->failed && !f->error_message)) {
        jobq__fail(c, JOBQ_E_INVALID, "items", "id, lease_token (and error_message) required");
        return NULL;
    }
    json_t *o = json_object();
    bool ok = o && jobq__set_str(o, "id", f->id) &&
              jobq__set_str(o, "lease_token", f->lease_token);
    if (ok && f->failed)
        ok = jobq__set_str(o, "error_message", f->error_message) &&
             jobq__set_str(o, "error_code", f->error_code) &&
             json_object_set_new(o, "retryable", json_boolean(f->retryable)) == 0;
    if (!ok) {
        json_decref(o);
        jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
        return NULL;
    }
    if (!f->failed && !set_json_arg(c, o, "result", f->result)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* {"worker_id", "complete": [...], "fail": [...], "max", ...}; NULL with the last error set. */
static json_t *next_body(jobq_client *c, const char *worker_id, const jobq_finish *items,
                         size_t n, int max, int lease_ms, int wait_ms)
{
    json_t *b = json_object(), *done = json_array(), *failed = json_array();
    bool ok = b && done && failed && jobq__set_str(b, "worker_id", worker_id) &&
              jobq__set_int(b, "max", max);
    ok = ok && (lease_ms == 0 || jobq__set_int(b, "lease_ms", lease_ms));
    ok = ok && (wait_ms == 0 || jobq__set_int(b, "wait_ms", wait_ms));
    if (!ok)
        jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    for (size_t i = 0; ok && i < n; i++) {
        json_t *o = finish_item(c, &items[i]);
        ok = o && json_array_append_new(items[i].failed ? failed : done, o) == 0;
    }
    if (ok && json_array_size(done) > 0)
        ok = json_object_set(b, "complete", done) == 0;
    if (ok && json_array_size(failed) > 0)
        ok = json_object_set(b, "fail", failed) == 0;
    json_decref(done);
    json_decref(failed);
    if (!ok) {
        json_decref(b);
        return NULL;
    }
    return b;
}

/* Index into items of the k-th item of list ("complete" or "fail"). */
static size_t item_index(const jobq_finish *items, size_t n, bool fail_list, size_t k)
{
    for (size_t i = 0; i < n; i++)
        if ((items[i].failed != 0) == fail_list && k-- == 0)
            return i;
    return n;
}

/* Reads the "errors" array of a next reply into r. Returns false when out of memory. */
static bool next_errors(const json_t *arr, const jobq_finish *items, size_t n,
                        jobq_next_result *r)
{
    size_t ne = json_array_size(arr);
    bool ok = true;
    if (ne == 0)
        return true;
    if (!(r->errors = calloc(ne, sizeof *r->errors)))
        return false;
    for (; ok && r->nerrors < ne; r->nerrors++) {
        const json_t *e = json_array_get(arr, r->nerrors);
        const char *list = json_string_value(json_object_get(e, "list"));
        int64_t k = jobq__get_i64(e, "index", -1);
        r->errors[r->nerrors].index =
            k < 0 ? n : item_index(items, n, list && strcmp(list, "fail") == 0, (size_t)k);
        r->errors[r->nerrors].code = jobq__get_text(e, "code", &ok);
    }
    return ok;
}

int jobq_next(jobq_client *c, const char *queue, const char *worker_id,
              const jobq_finish *items, size_t n, int max, int lease_ms, int wait_ms,
              jobq_next_result **out)
{
    json_t *reply;
    *out = NULL;
    if (!queue || !worker_id || (n && !items))
        return jobq__fail(c, JOBQ_E_INVALID, queue ? "worker_id" : "queue",
                          "queue and worker_id are required");
    json_t *body = next_body(c, worker_id, items, n, max, lease_ms, wait_ms);
    if (!body)
        return jobq_last_err(c);
    char *path = jobq__path("/v1/queues/%s/next", queue);
    int err = jobq__call(c, "POST", path, body, wait_ms > 0 ? wait_ms : 0, &reply);
    free(path);
    json_decref(body);
    if (err)
        return err;
    jobq_next_result *r = calloc(1, sizeof *r);
    bool ok = r && (r->jobs = jobq__jobs_from(json_object_get(reply, "jobs"))) &&
              next_errors(json_object_get(reply, "errors"), items, n, r);
    if (r) {
        r->completed = (int)jobq__get_i64(reply, "completed", 0);
        r->failed = (int)jobq__get_i64(reply, "failed", 0);
    }
    json_decref(reply);
    if (!ok) {
        jobq_next_result_free(r);
        return jobq__fail(c, JOBQ_E_PROTOCOL, NULL, "reply is not a next reply");
    }
    *out = r;
    return JOBQ_E_OK;
}
