/*
 * cron.h - cron expressions and their next fire time, on naive local wall
 * time (no time zone here: the caller converts between a zone and naive
 * fields). Five fields: minute hour day-of-month month day-of-week, each
 * "*", a number, a range a-b, a list a,b, or a step ("every n": star-slash-n,
 * a-b/n); month and weekday names (jan, mon …); 7 is also Sunday. Shortcuts: @yearly
 * (@annually), @monthly, @weekly, @daily (@midnight), @hourly. As in
 * classic cron, when both day-of-month and day-of-week are restricted a day
 * matches if either does. Pure: no I/O, no clock, no allocation.
 */
#ifndef JQ_CRON_H
#define JQ_CRON_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/tz.h"   /* struct naive */

struct cron {
    uint64_t minute;          /* bit m set: minute m (0-59) matches */
    uint32_t hour;            /* 0-23 */
    uint32_t mday;            /* 1-31 */
    uint16_t month;           /* 1-12 */
    uint8_t wday;             /* 0-6, Sunday = 0 */
    bool mday_any, wday_any;  /* the field was "*" (for the either-or day rule) */
};


/* Parses text into c; false with a reason in why (cap bytes) if malformed. */
bool cron_parse(const char *text, struct cron *c, char *why, size_t cap);
bool cron_matches(const struct cron *c, const struct naive *t);
/* The first matching minute strictly after `after`, searching at most ~5
 * years ahead; false if none (e.g. "0 0 30 2 *"). */
bool cron_next(const struct cron *c, const struct naive *after, struct naive *out);
/* Day of week (0 = Sunday) of a calendar date. */
int  cron_weekday(int year, int month, int day);

#endif
