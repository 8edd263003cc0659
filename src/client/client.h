/*
 * client.h - internals shared by the files of libjobq (the .c files of src/client); not installed.
 *
 * client.c owns the handle, the HTTP transport and the last error; json.c turns replies into
 * the public structs; jobs.c, search.c, flow.c, work.c and tokens.c wrap the routes of
 * docs/API.md.
 * Everything here is jobq__-prefixed (library-internal). Depends on libcurl, jansson and
 * libc only: the client never includes src/common.
 */
#ifndef JOBQ_CLIENT_H
#define JOBQ_CLIENT_H

#include <jansson.h>
#include <stdbool.h>

#include "jobq.h"

/* Library-internal: not exported from libjobq.so (only the jobq_ API of jobq.h is). */
#pragma GCC visibility push(hidden)

/* --- transport (client.c) --- */

/* Performs one call. body is borrowed (NULL: no body). wait_ms stretches the request
 * timeout (long-poll). On 2xx with a body and reply != NULL, *reply gets the parsed JSON
 * (caller decrefs); a 2xx reply that is not JSON answers JOBQ_E_PROTOCOL. Status >= 400
 * fills the last error from the server's error object and answers JOBQ_E_SERVER. */
int jobq__call(jobq_client *c, const char *method, const char *path, json_t *body,
               long wait_ms, json_t **reply);

/* jobq__call with an Idempotency-Key header (idem NULL: none); a key that is not 1-255
 * printable ASCII characters answers JOBQ_E_INVALID before any request. */
int jobq__call_idem(jobq_client *c, const char *method, const char *path, json_t *body,
                    const char *idem, json_t **reply);

/* Records a client-side error and returns err; JOBQ_E_INVALID (an argument refused before
 * any request) also clears the status and body of the previous call. field may be NULL. */
int jobq__fail(jobq_client *c, int err, const char *field, const char *message);

/* malloc'd path: fmt with its single %s replaced by seg, URL-escaped. NULL if out of memory. */
char *jobq__path(const char *fmt, const char *seg);

/* --- growable string (client.c) --- */

/* A NUL-terminated growing string; ok turns false on the first allocation failure. */
struct jobq__str {
    char *s;       /* malloc'd, NUL-terminated (NULL until the first append) */
    size_t len;    /* bytes before the NUL */
    size_t cap;    /* allocated bytes */
    bool ok;       /* false once an allocation failed; later appends are no-ops */
};

void jobq__str_add(struct jobq__str *b, const char *p, size_t n);
/* Appends "<sep>key=<escaped val>" when val is not NULL; sep is '?' first, then '&'. */
void jobq__str_query(struct jobq__str *b, const char *key, const char *val);
/* As jobq__str_query for an integer; skipped when v == 0 && skip_zero. */
void jobq__str_query_int(struct jobq__str *b, const char *key, long long v, bool skip_zero);

/* --- JSON glue (json.c) --- */

/* Parses JSON text given by the caller for `field`; on bad text records
 * JOBQ_E_INVALID naming field and returns NULL. */
json_t *jobq__arg_json(jobq_client *c, const char *field, const char *text);
/* Checks that text is JSON of type want (JSON_OBJECT or JSON_ARRAY); NULL text passes.
 * Else records JOBQ_E_INVALID naming field and returns false. For caller texts sent as
 * they are (query parameters). */
bool jobq__arg_check(jobq_client *c, const char *field, const char *text, json_type want);
/* Sets key to a string / integer, skipping NULL strings. Returns false if out of memory. */
bool jobq__set_str(json_t *o, const char *key, const char *val);
bool jobq__set_int(json_t *o, const char *key, long long val);

/* Reply object -> public struct; NULL when a required member is missing or on no memory. */
jobq_job *jobq__job_from(const json_t *o);
jobq_job_list *jobq__jobs_from(const json_t *arr);
jobq_token *jobq__token_from(const json_t *o);
int jobq__logs_from(const json_t *o, jobq_log_list **out);
/* {"logs":[hit...], "next_cursor"} -> *out; JOBQ_E_PROTOCOL / JOBQ_E_NOMEM on failure. */
int jobq__log_hits_from(const json_t *o, jobq_log_hits **out);
/* Member as malloc'd text (strings as they are, other values printed); NULL when null or
 * missing; *ok turns false when a copy could not be made. */
char *jobq__get_text(const json_t *o, const char *key, bool *ok);
/* Integer member (numbers truncated); dflt when null, missing or not a number. */
int64_t jobq__get_i64(const json_t *o, const char *key, int64_t dflt);
/* Body of one create item (POST /v1/jobs or a batch item); batch leaves out dedup / cache.
 * NULL with the last error set on bad input or no memory. */
json_t *jobq__create_body(jobq_client *c, const jobq_new_job *in, bool batch);

/* Returns a job parsed from reply into *out (when out is set) and decrefs reply;
 * JOBQ_E_PROTOCOL when the reply is not a job. Convenience for the job-returning routes. */
int jobq__reply_job(jobq_client *c, json_t *reply, jobq_job **out);

#pragma GCC visibility pop

#endif /* JOBQ_CLIENT_H */
