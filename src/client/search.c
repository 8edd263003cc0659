/*
 * search.c - libjobq full-text log search: GET /v1/logs/search (docs/API.md, "Full-text
 * log search"). The job listing's search filters (params / result containment, log_q)
 * are options of jobq_list in jobs.c.
 */
#include <stdlib.h>

#include "client.h"

int jobq_logs_search(jobq_client *c, const jobq_log_search_opts *o, jobq_log_hits **out)
{
    struct jobq__str path = { .ok = true };
    json_t *reply;
    *out = NULL;
    if (!o || !o->q)
        return jobq__fail(c, JOBQ_E_INVALID, "q", "q (the search query) is required");
    if (!jobq__arg_check(c, "metadata", o->metadata, JSON_OBJECT))
        return jobq_last_err(c);
    jobq__str_add(&path, "/v1/logs/search", 15);
    jobq__str_query(&path, "q", o->q);
    jobq__str_query(&path, "level", o->level);
    jobq__str_query(&path, "job_id", o->job_id);
    jobq__str_query(&path, "type", o->type);
    jobq__str_query(&path, "since", o->since);
    jobq__str_query(&path, "metadata", o->metadata);
    jobq__str_query_int(&path, "limit", o->limit, true);
    jobq__str_query(&path, "cursor", o->cursor);
    int err = path.ok ? jobq__call(c, "GET", path.s, NULL, 0, &reply)
                      : jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    free(path.s);
    if (err)
        return err;
    err = jobq__log_hits_from(reply, out);
    json_decref(reply);
    return err ? jobq__fail(c, err, NULL, "reply is not a list of log hits") : JOBQ_E_OK;
}
