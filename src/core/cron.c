/* cron.c - see cron.h. */
#include "core/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct field { int lo, hi; const char *const *names; };

static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                     "sep", "oct", "nov", "dec", NULL};
static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};
static const struct field fields[5] = {
    {0, 59, NULL}, {0, 23, NULL}, {1, 31, NULL}, {1, 12, months}, {0, 7, days},
};

/* A number or a name of the field; -1 if neither. */
static int value(const char **p, const struct field *f)
{
    if (isdigit((unsigned char)**p)) {
        int v = 0;
        while (isdigit((unsigned char)**p) && v < 1000)
            v = v * 10 + (*(*p)++ - '0');
        return v;
    }
    for (int i = 0; f->names && f->names[i]; i++)
        if (strncasecmp(*p, f->names[i], 3) == 0) {
            *p += 3;
            return i + (f->names == months);   /* months are 1-based */
        }
    return -1;
}

/* One comma-separated item: *, n, a-b, with an optional /step. */
static bool item(const char **p, const struct field *f, uint64_t *bits)
{
    int lo = f->lo, hi = f->hi, step = 1;
    if (**p == '*') {
        (*p)++;
    } else {
        if ((lo = value(p, f)) < 0)
            return false;
        hi = lo;
        if (**p == '-') {
            (*p)++;
            if ((hi = value(p, f)) < 0)
                return false;
        }
    }
    if (**p == '/') {
        (*p)++;
        if ((step = value(p, &fields[0])) <= 0)
            return false;
        if (hi == lo && lo != f->lo)       /* "5/15" means 5-max/15 */
            hi = f->hi;
    }
    if (lo < f->lo || hi > f->hi || lo > hi)
        return false;
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ull << v;
    return true;
}

static bool field_parse(const char *text, size_t len, int idx, uint64_t *bits, bool *any)
{
    char buf[128];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, text, len);
    buf[len] = '\0';
    *bits = 0;
    *any = strcmp(buf, "*") == 0;
    for (const char *p = buf;;) {
        if (!item(&p, &fields[idx], bits))
            return false;
        if (*p == '\0')
            return true;
        if (*p++ != ',')
            return false;
    }
}

static const char *shortcut(const char *text)
{
    static const struct { const char *name, *expr; } t[] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"}, {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcasecmp(text, t[i].name) == 0)
            return t[i].expr;
    return text;
}

bool cron_parse(const char *text, struct cron *c, char *why, size_t cap)
{
    static const char *const names[5] = {"minute", "hour", "day of month", "month",
                                         "day of week"};
    const char *p = shortcut(text);
    uint64_t bits[5];
    bool any[5];
    memset(c, 0, sizeof *c);
    for (int i = 0; i < 5; i++) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strcspn(p, " \t");
        if (!field_parse(p, len, i, &bits[i], &any[i])) {
            snprintf(why, cap, "%s field '%.*s' is not valid", names[i],
                     (int)(len > 40 ? 40 : len), p);
            return false;
        }
        p += len;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p) {
        snprintf(why, cap, "a cron expression has exactly 5 fields");
        return false;
    }
    c->minute = bits[0];
    c->hour = (uint32_t)bits[1];
    c->mday = (uint32_t)bits[2];
    c->month = (uint16_t)bits[3];
    c->wday = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f);   /* 7 is Sunday too */
    c->mday_any = any[2];
    c->wday_any = any[4];
    return true;
}

int cron_weekday(int y, int m, int d)
{
    static const int t[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};   /* Sakamoto's method */
    if (m < 3)
        y -= 1;
    return (y + y / 4 - y / 100 + y / 400 + t[m - 1] + d) % 7;
}

static int month_days(int y, int m)
{
    static const int n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : n[m - 1];
}

static bool day_matches(const struct cron *c, int y, int m, int d)
{
    bool md = (c->mday >> d) & 1, wd = (c->wday >> cron_weekday(y, m, d)) & 1;
    if (c->mday_any || c->wday_any)
        return md && wd;
    return md || wd;                         /* both restricted: either */
}

bool cron_matches(const struct cron *c, const struct naive *t)
{
    return ((c->month >> t->month) & 1) && day_matches(c, t->year, t->month, t->day) &&
           ((c->hour >> t->hour) & 1) && ((c->minute >> t->minute) & 1);
}

/* Steps t to the start of the next day (or month). */
static void next_day(struct naive *t)
{
    t->hour = t->minute = 0;
    if (++t->day > month_days(t->year, t->month)) {
        t->day = 1;
        if (++t->month > 12) {
            t->month = 1;
            t->year++;
        }
    }
}

bool cron_next(const struct cron *c, const struct naive *after, struct naive *out)
{
    struct naive t = *after;
    int limit_year = after->year + 5;
    if (++t.minute > 59) {                   /* strictly after */
        t.minute = 0;
        if (++t.hour > 23) {
            t.hour = 0;
            t.day--;                         /* next_day adds it back */
            next_day(&t);
        }
    }
    while (t.year <= limit_year) {
        if (!((c->month >> t.month) & 1)) {
            t.day = month_days(t.year, t.month);
            next_day(&t);                    /* first day of the next month */
        } else if (!day_matches(c, t.year, t.month, t.day)) {
            next_day(&t);
        } else if (!((c->hour >> t.hour) & 1)) {
            t.minute = 0;
            if (++t.hour > 23)
                next_day(&t);
        } else if (!((c->minute >> t.minute) & 1)) {
            if (++t.minute > 59) {
                t.minute = 0;
                if (++t.hour > 23)
                    next_day(&t);
            }
        } else {
            *out = t;
            return true;
        }
    }
    return false;
}
