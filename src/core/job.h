/*
 * job.h - the job model: statuses and the transitions between them.
 *
 * pending (run_at may lie ahead) -> processing (claimed under a lease) ->
 * completed | failed | cancelled. A failed attempt with attempts left goes
 * back to pending; failed and cancelled jobs may be retried (-> pending).
 * Pure: no I/O.
 */
#ifndef JQ_JOB_H
#define JQ_JOB_H
#include <stdbool.h>

#define JOB_STATUSES(X)          \
    X(PENDING,    "pending")     \
    X(PROCESSING, "processing")  \
    X(COMPLETED,  "completed")   \
    X(FAILED,     "failed")      \
    X(CANCELLED,  "cancelled")

enum job_status {
#define X(n, s) JOB_##n,
    JOB_STATUSES(X)
#undef X
    JOB__NSTATUS
};

const char *job_status_name(enum job_status s);
/* Parses a status name; false if unknown. */
bool job_status_parse(const char *name, enum job_status *out);
bool job_can_move(enum job_status from, enum job_status to);
/* completed, failed or cancelled: nothing more happens without a retry. */
bool job_is_final(enum job_status s);

enum log_level_j { JLOG_DEBUG, JLOG_INFO, JLOG_WARNING, JLOG_ERROR, JLOG__N };
const char *job_log_level_name(int l);
bool job_log_level_parse(const char *name, int *out);

#endif
