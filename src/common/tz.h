/*
 * tz.h - IANA time zones (the system's tzdata) for cron schedules: naive
 * wall-clock minutes to and from epoch milliseconds in a named zone.
 *
 * The C library keeps one process-wide zone (TZ); these functions set it
 * under a mutex and restore it. Nothing else in jobq uses local time
 * (everything else is UTC via gmtime_r/timegm, which TZ does not affect),
 * so no other thread can see the temporary zone.
 */
#ifndef JQ_TZ_H
#define JQ_TZ_H
#include <stdbool.h>
#include <stdint.h>

/* A wall-clock minute. */
struct naive { int year, month, day, hour, minute; };

/* True if name is "UTC" or a zone file under /usr/share/zoneinfo. */
bool tz_valid(const char *name);
/* The wall-clock minute at ms in zone name. */
void tz_to_naive(const char *name, int64_t ms, struct naive *out);
/* The epoch ms of a wall-clock minute in zone name. A minute that does not
 * exist (the spring-forward gap) maps to the same offset after the gap, as
 * mktime does: 02:30 becomes 03:30. A minute that occurs twice (fall back)
 * maps to one of its two instants. */
int64_t tz_from_naive(const char *name, const struct naive *t);

#endif
