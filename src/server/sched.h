/*
 * sched.h - when cron schedules fire. The next fire time is computed on
 * naive wall-clock minutes in the schedule's IANA zone (core/cron.c) and
 * converted with common/tz.c, which gives these DST rules: a wall time in
 * the spring-forward gap fires once, just after the gap (02:30 -> 03:30); a
 * wall time that occurs twice in the fall-back hour fires once (the first).
 *
 * Misfires (jobqd was down, so several fire times passed): "catch_up" fires
 * the most recent catch_up_max of them; "skip" fires only a time less than
 * MISFIRE_GRACE_MS old and skips the rest. Each (schedule, fire time) is
 * recorded with its job in one transaction, so it enqueues exactly once.
 */
#ifndef JQ_SCHED_H
#define JQ_SCHED_H
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

struct jobqd;

enum { MISFIRE_GRACE_MS = 60000, CATCH_UP_MAX = 100 };

/* The first fire time strictly after `after` (epoch ms), 0 if none. */
int64_t sched_next(const char *cron, const char *tz, int64_t after);
/* Fires every due schedule; *rows gets the jobs created, *next_ms the next
 * due time (0 if none). */
jq_err sched_tick(struct jobqd *d, int64_t now, int *rows, int64_t *next_ms);

#endif
