/* clock.c - wall/monotonic time, the fake test clock, RFC 3339 format/parse. */
#include "common/clock.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void clock_init(struct jq_clock *c, bool fake)
{
    c->fake = fake;
    atomic_store(&c->fake_ms, wall_ms());
    atomic_store(&c->skew_ms, 0);
}

int64_t clock_now_ms(const struct jq_clock *c)
{
    if (c && c->fake)
        return atomic_load(&((struct jq_clock *)c)->fake_ms);
    return wall_ms() + (c ? atomic_load(&((struct jq_clock *)c)->skew_ms) : 0);
}

void clock_advance(struct jq_clock *c, int64_t ms)
{
    atomic_fetch_add(&c->fake_ms, ms);
}

int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t clock_mono_ms(void)
{
    return clock_mono_us() / 1000;
}

void time_fmt(int64_t ms, char out[TIME_STR_MAX])
{
    time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)s * 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, TIME_STR_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

/* Reads exactly n digits at *p into *v; advances *p. */
static bool digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return false;
        *v = *v * 10 + (**p - '0');
    }
    return true;
}

static bool parse_offset(const char *p, int *off_s)
{
    int h, m;
    if (*p == 'Z' || *p == 'z') {
        *off_s = 0;
        return p[1] == '\0';
    }
    if (*p != '+' && *p != '-')
        return false;
    int sign = *p++ == '-' ? -1 : 1;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &m) || *p || h > 23 || m > 59)
        return false;
    *off_s = sign * (h * 3600 + m * 60);
    return true;
}

bool time_parse(const char *s, int64_t *ms)
{
    const char *p = s;
    int Y, M, D, h, m, sec, frac = 0, off;
    if (!digits(&p, 4, &Y) || *p++ != '-' || !digits(&p, 2, &M) || *p++ != '-' ||
        !digits(&p, 2, &D) || (*p != 'T' && *p != 't' && *p != ' '))
        return false;
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &m) || *p++ != ':' ||
        !digits(&p, 2, &sec))
        return false;
    if (*p == '.') {
        int n = 0;
        for (p++; isdigit((unsigned char)*p); p++, n++)
            if (n < 3)
                frac = frac * 10 + (*p - '0');
        if (n == 0)
            return false;
        for (; n < 3; n++)
            frac *= 10;
    }
    if (Y < 1970 || Y > 9999 || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 ||
        sec > 60 || !parse_offset(p, &off))
        return false;
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (D > mdays[M - 1] || (M == 2 && D == 29 && !leap))
        return false;            /* no such day (Feb 30): timegm would move it to March */
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
                    .tm_hour = h, .tm_min = m, .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *ms = ((int64_t)t - off) * 1000 + frac;
    return true;
}
