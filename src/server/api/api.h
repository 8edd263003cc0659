/*
 * api.h - what the resource handlers share: body parsing, validators that
 * write the 400 themselves (every 400 names its field), the job and log JSON
 * shapes, and the handler entry points the route table names.
 */
#ifndef JQ_API_H
#define JQ_API_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "server/http.h"
#include "server/jobqd.h"

/* Caps, with reasons, in docs/API.md. */
enum {
    PARAMS_MAX = 64 << 10,
    RESULT_MAX = 256 << 10,
    TEXT_MAX = 8 << 10,
    METADATA_MAX = 16 << 10,
    PAGE_MAX = 1000,
    OFFSET_MAX = 1000000,
    WAIT_MAX_MS = 30000,
    CLAIM_MAX = 100,
};

/* The body as an object with only `allowed` keys (NULL-terminated); an empty
 * body reads as {}. On failure replies 415/400 and returns NULL. */
json_t *api_body(struct req *q, const char *const *allowed);

/* Validators: absent or null leaves *out untouched and succeeds unless required. */
bool want_str(struct req *q, json_t *o, const char *field, bool required, size_t max,
              const char **out);
bool want_name(struct req *q, json_t *o, const char *field, bool required, const char **out);
bool want_int(struct req *q, json_t *o, const char *field, int64_t lo, int64_t hi,
              int64_t *out);
bool want_bool(struct req *q, json_t *o, const char *field, bool *out);
/* Any JSON value (object_only: must be an object), compact text under max; caller frees. */
bool want_json(struct req *q, json_t *o, const char *field, bool object_only, size_t max,
               char **out);
bool want_time(struct req *q, json_t *o, const char *field, int64_t *out);
/* Same checks for query-string values. */
bool query_int(struct req *q, const char *name, int64_t lo, int64_t hi, int64_t *out);
bool valid_name(const char *s);
/* A path id that is not a job id answers 404 like a missing job. */
bool want_job_id(struct req *q, const char *id);

json_t *api_job_json(const struct job *j, bool with_lease);
/* Jobs as JSON text (jobtext.c): the bytes api_job_json gives dumped compact, without
 * building objects; for replies that carry many jobs. */
void  api_job_put(struct buf *b, const struct job *j, bool with_lease);
void  api_jobs_put(struct buf *b, const struct job_list *l, bool with_lease);
/* b's text (malloc'd), or NULL when it overflowed (b is then freed). */
char *api_buf_text(struct buf *b);
/* Cap of such a reply: 1,000 jobs with results of up to 1 MiB fit */
enum { JOBS_REPLY_MAX = 1u << 30 };
json_t *api_log_json(const struct log_row *r);
/* Replies with the store error mapped to its status and a fixed message. */
void api_store_err(struct req *q, jq_err e);

/* Write handlers render their reply with a render_fn, so that with an
 * Idempotency-Key the writer can store it in the op's transaction.
 * api_render_with announces it before the store call; api_finish replies
 * after it: the error, the replayed or stored reply, or render(arg). */
typedef char *(*render_fn)(void *arg, int *status);
void api_render_with(struct req *q, render_fn fn, void *arg);
void api_finish(struct req *q, jq_err err, render_fn fn, void *arg);
/* Renders a json_t (stolen) to malloc'd text. */
char *api_text(json_t *v);
/* A job as the reply of a write (200). arg is struct job *. */
char *api_render_job(void *arg, int *status);

/* search.c: list filters shared with jobs.c. Both reply 400 and return false
 * when the input is invalid. */
bool search_containment(struct req *q, const char *name, char **out);
bool search_log_match(struct req *q, const char *name, const char *text, char *out, size_t cap);

/* handlers */
void api_health(struct req *q);
void api_readyz(struct req *q);
void api_metrics(struct req *q);
void api_jobs_create(struct req *q);
void api_jobs_list(struct req *q);
void api_jobs_batch(struct req *q);
void api_jobs_cancel_many(struct req *q);
void api_stats(struct req *q);
void api_events(struct req *q);
void api_schedules_create(struct req *q);
void api_schedules_list(struct req *q);
void api_schedules_show(struct req *q);
void api_schedules_pause(struct req *q);
void api_schedules_resume(struct req *q);
void api_schedules_delete(struct req *q);
void api_workflows_create(struct req *q);
void api_workflows_show(struct req *q);
void api_logs_search(struct req *q);
void api_jobs_wait(struct req *q);
void api_admin_maint_report(struct req *q);
void api_admin_maint_run(struct req *q);
void api_jobs_show(struct req *q);
void api_jobs_cancel(struct req *q);
void api_jobs_retry(struct req *q);
void api_jobs_delete(struct req *q);
void api_work_claim(struct req *q);
void api_work_next(struct req *q);
void api_work_heartbeat(struct req *q);
void api_work_complete(struct req *q);
void api_work_fail(struct req *q);
void api_logs_add(struct req *q);
void api_logs_list(struct req *q);
void api_tokens_create(struct req *q);
void api_tokens_revoke(struct req *q);
void api_admin_store(struct req *q);
void api_admin_tables(struct req *q);       /* pg_admin.c: table health */
void api_admin_clock(struct req *q);
/* ui.c: the dashboard, the OpenAPI document and the route table */
void api_ui_index(struct req *q);
void api_ui_file(struct req *q);
void api_openapi(struct req *q);
void api_admin_routes(struct req *q);

#endif
