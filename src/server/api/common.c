/*
 * common.c - body parsing, validators and JSON shapes shared by the
 * resource handlers (see api.h).
 */
#include "server/api/api.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"
#include "core/id.h"

json_t *api_body(struct req *q, const char *const *allowed)
{
    if (q->len == 0)
        return json_object();
    const char *ct = req_header(q, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
        reply_err(q, JQ_E_MEDIA, NULL, "send the body as Content-Type: application/json");
        return NULL;
    }
    if (strlen(q->body) != q->len) {
        reply_err(q, JQ_E_BAD_JSON, NULL, "body contains a NUL byte");
        return NULL;
    }
    bool oom;
    json_t *o = json_parse_oom(q->body, q->len, &oom);
    if (oom) {
        reply_err(q, JQ_E_NOMEM, NULL, "out of memory");
        return NULL;
    }
    if (!json_is_object(o)) {
        reply_err(q, JQ_E_BAD_JSON, NULL, o ? "body must be a JSON object"
                                            : "body is not valid JSON (or nests over %d levels)",
                  JSON_DEPTH_MAX);
        json_decref(o);
        return NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        const char *const *a = allowed;
        while (*a && strcmp(*a, key) != 0)
            a++;
        if (!*a) {
            reply_err(q, JQ_E_INVALID, key, "unknown field '%.64s'", key);
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *field_of(json_t *o, const char *field)
{
    json_t *v = json_object_get(o, field);
    return json_is_null(v) ? NULL : v;
}

static bool missing(struct req *q, const char *field, bool required)
{
    if (required)
        reply_err(q, JQ_E_INVALID, field, "%s is required", field);
    return !required;
}

bool want_str(struct req *q, json_t *o, const char *field, bool required, size_t max,
              const char **out)
{
    json_t *v = field_of(o, field);
    if (!v)
        return missing(q, field, required);
    if (!json_is_string(v)) {
        reply_err(q, JQ_E_INVALID, field, "%s must be a string", field);
        return false;
    }
    if (json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v)) {
        reply_err(q, json_string_length(v) > max ? JQ_E_TOO_LARGE : JQ_E_INVALID, field,
                  "%s must be at most %zu bytes without NUL", field, max);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_.:-", *s))
            return false;
    return true;
}

bool want_name(struct req *q, json_t *o, const char *field, bool required, const char **out)
{
    const char *s = NULL;
    if (!want_str(q, o, field, required, NAME_MAX_LEN * 4, &s))
        return false;
    if (s && !valid_name(s)) {
        reply_err(q, JQ_E_INVALID, field, "%s must be 1-%d characters of A-Z a-z 0-9 _ . : -",
                  field, NAME_MAX_LEN);
        return false;
    }
    if (s)
        *out = s;
    return true;
}

bool want_int(struct req *q, json_t *o, const char *field, int64_t lo, int64_t hi,
              int64_t *out)
{
    json_t *v = field_of(o, field);
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        reply_err(q, JQ_E_INVALID, field, "%s must be an integer from %lld to %lld", field,
                  (long long)lo, (long long)hi);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

bool want_bool(struct req *q, json_t *o, const char *field, bool *out)
{
    json_t *v = field_of(o, field);
    if (!v)
        return true;
    if (!json_is_boolean(v)) {
        reply_err(q, JQ_E_INVALID, field, "%s must be true or false", field);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

bool want_json(struct req *q, json_t *o, const char *field, bool object_only, size_t max,
               char **out)
{
    json_t *v = field_of(o, field);
    if (!v)
        return true;
    if (object_only && !json_is_object(v)) {
        reply_err(q, JQ_E_INVALID, field, "%s must be a JSON object", field);
        return false;
    }
    char *text = json_dump_compact(v);
    if (!text || strlen(text) > max) {
        reply_err(q, JQ_E_TOO_LARGE, field, "%s must be at most %zu bytes of JSON", field, max);
        free(text);
        return false;
    }
    *out = text;
    return true;
}

bool want_time(struct req *q, json_t *o, const char *field, int64_t *out)
{
    const char *s = NULL;
    if (!want_str(q, o, field, false, 64, &s))
        return false;
    if (s && !time_parse(s, out)) {
        reply_err(q, JQ_E_INVALID, field, "%s must be an RFC 3339 time", field);
        return false;
    }
    return true;
}

bool query_int(struct req *q, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    const char *s = req_query(q, name);
    if (!s)
        return true;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        reply_err(q, JQ_E_INVALID, name, "%s must be an integer from %lld to %lld", name,
                  (long long)lo, (long long)hi);
        return false;
    }
    *out = v;
    return true;
}

bool want_job_id(struct req *q, const char *id)
{
    if (id_valid(id))
        return true;
    api_store_err(q, JQ_E_NOT_FOUND);
    return false;
}

void api_store_err(struct req *q, jq_err e)
{
    static const char *const msgs[JQ_E__COUNT] = {
        [JQ_E_NOT_FOUND] = "no such job",
        [JQ_E_LEASE] = "the lease token is not the job's current lease (lease lost)",
        [JQ_E_STATE] = "the job's status does not allow this",
        [JQ_E_UNAVAILABLE] = "the server is shutting down or storage is full",
        [JQ_E_STORAGE] = "storage error",
        [JQ_E_NOMEM] = "out of memory",
    };
    const char *m = (unsigned)e < JQ_E__COUNT && msgs[e] ? msgs[e] : "request failed";
    reply_err(q, e, NULL, "%s", m);
}

/* --- rendering write replies (Idempotency-Key aware) --- */

void api_render_with(struct req *q, render_fn fn, void *arg)
{
    if (q->sc.idem) {
        q->idem.render = fn;
        q->idem.arg = arg;
    }
}

void api_finish(struct req *q, jq_err err, render_fn fn, void *arg)
{
    if (err == JQ_E_IDEM) {
        reply_err(q, err, "Idempotency-Key", "this Idempotency-Key was used for another request");
        return;
    }
    if (err) {
        api_store_err(q, err);
        return;
    }
    if (q->sc.idem && q->idem.body) {        /* replayed, or rendered by the writer */
        if (q->idem.replayed)
            reply_header(q, "Idempotent-Replayed", "true");
        reply_raw(q, q->idem.status, q->idem.body);
        q->idem.body = NULL;
        return;
    }
    int status = 200;
    char *text = fn(arg, &status);
    if (text)
        reply_raw(q, status, text);
    else
        reply_err(q, JQ_E_NOMEM, NULL, "out of memory");
}

char *api_text(json_t *v)
{
    char *s = v ? json_dump_compact(v) : NULL;
    json_decref(v);
    if (json_oom_take()) {         /* a member may be missing: never store or send that */
        free(s);
        s = NULL;
    }
    return s;
}

char *api_render_job(void *arg, int *status)
{
    *status = 200;
    return api_text(api_job_json(arg, false));
}

/* --- JSON shapes --- */

static json_t *time_or_null(int64_t ms)
{
    char buf[TIME_STR_MAX];
    if (!ms)
        return json_null();
    time_fmt(ms, buf);
    return json_string(buf);
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *raw_json(const char *text)
{
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_null();
}

json_t *api_job_json(const struct job *j, bool with_lease)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "user_id", json_string(j->user_id));
    json_object_set_new(o, "queue", json_string(j->queue));
    json_object_set_new(o, "type", json_string(j->type));
    json_object_set_new(o, "params", raw_json(j->params));
    json_object_set_new(o, "status", json_string(job_status_name(j->status)));
    json_object_set_new(o, "priority", json_integer(j->priority));
    json_object_set_new(o, "attempts", json_integer(j->attempts));
    json_object_set_new(o, "max_attempts", json_integer(j->max_attempts));
    const char *tn[] = {"run_at", "created_at", "updated_at", "started_at", "completed_at",
                        "expires_at", "lease_expires_at"};
    const int64_t tv[] = {j->run_at, j->created_at, j->updated_at, j->started_at,
                          j->completed_at, j->expires_at, j->lease_expires_at};
    for (int i = 0; i < 7; i++)
        json_object_set_new(o, tn[i], time_or_null(tv[i]));
    json_object_set_new(o, "worker_id", str_or_null(j->worker_id));
    json_object_set_new(o, "progress_percent",
                        j->progress_percent < 0 ? json_null()
                                                : json_integer(j->progress_percent));
    json_object_set_new(o, "progress_message", str_or_null(j->progress_message));
    json_object_set_new(o, "result", raw_json(j->result));
    json_object_set_new(o, "error_message", str_or_null(j->error_message));
    json_object_set_new(o, "error_code", str_or_null(j->error_code));
    json_object_set_new(o, "blocked_by", json_integer(j->blocked));
    json_object_set_new(o, "workflow_id", str_or_null(j->workflow_id));
    json_object_set_new(o, "step_key", str_or_null(j->step_key));
    if (with_lease) {
        json_object_set_new(o, "lease_token", str_or_null(j->lease_token));
        json_object_set_new(o, "parents", j->parents ? raw_json(j->parents) : json_array());
    }
    return o;
}

json_t *api_log_json(const struct log_row *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(r->id));
    json_object_set_new(o, "job_id", json_string(r->job_id));
    json_object_set_new(o, "created_at", time_or_null(r->created_at));
    json_object_set_new(o, "level", json_string(job_log_level_name(r->level)));
    json_object_set_new(o, "message", json_string(r->message ? r->message : ""));
    json_object_set_new(o, "metadata", raw_json(r->metadata));
    return o;
}
