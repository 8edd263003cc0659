/* tz.c - see tz.h. */
#include "common/tz.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t tz_mu = PTHREAD_MUTEX_INITIALIZER;   /* guards the process TZ */

bool tz_valid(const char *name)
{
    if (strcmp(name, "UTC") == 0)
        return true;
    size_t n = strlen(name);
    if (n == 0 || n > 64 || strstr(name, "..") || name[0] == '/')
        return false;
    for (const char *p = name; *p; p++)
        if (!(*p >= 'A' && *p <= 'Z') && !(*p >= 'a' && *p <= 'z') &&
            !(*p >= '0' && *p <= '9') && !strchr("_+-/", *p))
            return false;
    char path[128];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
    return access(path, R_OK) == 0;
}

/* Runs with TZ = name; returns the previous TZ (malloc'd or NULL). */
static char *enter(const char *name)
{
    pthread_mutex_lock(&tz_mu);
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    char tz[80];
    snprintf(tz, sizeof tz, ":%s", name);
    setenv("TZ", tz, 1);
    tzset();
    return saved;
}

static void leave(char *saved)
{
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
    pthread_mutex_unlock(&tz_mu);
}

void tz_to_naive(const char *name, int64_t ms, struct naive *out)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char *saved = enter(name);
    localtime_r(&s, &tm);
    leave(saved);
    *out = (struct naive){tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min};
}

/* mktime of t with a given isdst; true if the result shows exactly t's wall time. */
static bool try_mktime(const struct naive *t, int isdst, time_t *out)
{
    struct tm tm = {.tm_year = t->year - 1900, .tm_mon = t->month - 1, .tm_mday = t->day,
                    .tm_hour = t->hour, .tm_min = t->minute, .tm_isdst = isdst};
    *out = mktime(&tm);
    struct tm back;
    localtime_r(out, &back);
    return back.tm_hour == t->hour && back.tm_min == t->minute && back.tm_mday == t->day &&
           (isdst < 0 || back.tm_isdst == isdst);
}

int64_t tz_from_naive(const char *name, const struct naive *t)
{
    time_t dst, std, any;
    char *saved = enter(name);
    bool d = try_mktime(t, 1, &dst), s = try_mktime(t, 0, &std);
    try_mktime(t, -1, &any);                    /* the gap: mktime moves it past the gap */
    leave(saved);
    time_t r = d && s ? (dst < std ? dst : std)  /* twice (fall back): the first */
             : d ? dst : s ? std : any;
    return (int64_t)r * 1000;
}
