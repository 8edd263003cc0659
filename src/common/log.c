/* log.c - see log.h. One fprintf per line so concurrent lines do not interleave. */
#include "common/log.h"
#include "common/clock.h"

#include <stdarg.h>
#include <stdio.h>

static enum log_level min_level = LOG_INFO;   /* written once by main, before threads */

void log_set_level(enum log_level l)
{
    min_level = l;
}

void log_msg(enum log_level l, const char *file, int line, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (l < min_level)
        return;
    char msg[1024], ts[TIME_STR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    time_fmt(clock_now_ms(NULL), ts);
    fprintf(stderr, "%s %-5s %s (%s:%d)\n", ts, names[l], msg, file, line);
}
