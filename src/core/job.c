/* job.c - status names and the transition table (see job.h). */
#include "core/job.h"

#include <string.h>

static const char *const names[] = {
#define X(n, s) s,
    JOB_STATUSES(X)
#undef X
};

/* moves[from] is the set of statuses `from` may move to, as bits */
#define B(s) (1u << JOB_##s)
static const unsigned moves[JOB__NSTATUS] = {
    [JOB_PENDING]    = B(PROCESSING) | B(CANCELLED) | B(FAILED),      /* FAILED: expiry */
    [JOB_PROCESSING] = B(COMPLETED) | B(FAILED) | B(PENDING) | B(CANCELLED),
    [JOB_COMPLETED]  = 0,
    [JOB_FAILED]     = B(PENDING),                                    /* manual retry */
    [JOB_CANCELLED]  = B(PENDING),
};
#undef B

const char *job_status_name(enum job_status s)
{
    return (unsigned)s < JOB__NSTATUS ? names[s] : "unknown";
}

bool job_status_parse(const char *name, enum job_status *out)
{
    for (int i = 0; i < JOB__NSTATUS; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (enum job_status)i;
            return true;
        }
    return false;
}

bool job_can_move(enum job_status from, enum job_status to)
{
    if ((unsigned)from >= JOB__NSTATUS || (unsigned)to >= JOB__NSTATUS)
        return false;
    return (moves[from] >> to) & 1u;
}

bool job_is_final(enum job_status s)
{
    return s == JOB_COMPLETED || s == JOB_FAILED || s == JOB_CANCELLED;
}

static const char *const log_levels[JLOG__N] = {"debug", "info", "warning", "error"};

const char *job_log_level_name(int l)
{
    return l >= 0 && l < JLOG__N ? log_levels[l] : "info";
}

bool job_log_level_parse(const char *name, int *out)
{
    for (int i = 0; i < JLOG__N; i++)
        if (strcmp(name, log_levels[i]) == 0) {
            *out = i;
            return true;
        }
    return false;
}
