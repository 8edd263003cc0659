/*
 * clock.h - wall and monotonic time in milliseconds, and a fake clock for
 * tests. Everything that makes a time-based decision (leases, backoff,
 * expiry) reads time through a struct jq_clock passed down from main, so a
 * test build can freeze and advance it.
 */
#ifndef JQ_CLOCK_H
#define JQ_CLOCK_H
#include <stdbool.h>
#include <stdint.h>
#include <stdatomic.h>

struct jq_clock {
    bool fake;                 /* true: now is fake_ms, moved only by clock_advance */
    _Atomic int64_t fake_ms;   /* the frozen wall time, ms since the epoch */
    _Atomic int64_t skew_ms;   /* added to the wall time: the shared database's clock minus
                                * this host's (PostgreSQL measures it, so every node decides
                                * run_at and leases on one clock); 0 with SQLite */
};

void    clock_init(struct jq_clock *c, bool fake);
int64_t clock_now_ms(const struct jq_clock *c);   /* wall ms + skew (or the fake time);
                                                   * c NULL: this host's wall ms */
void    clock_advance(struct jq_clock *c, int64_t ms);
int64_t clock_mono_ms(void);                       /* monotonic ms, never faked */
int64_t clock_mono_us(void);

/* RFC 3339 UTC with milliseconds: "2026-11-25T22:44:23.123Z" (25 bytes + NUL). */
enum { TIME_STR_MAX = 64 };   /* 25 used; room so the compiler can prove no truncation */
void time_fmt(int64_t ms, char out[TIME_STR_MAX]);
/* Parses RFC 3339 with Z or +hh:mm, optional fraction; false if malformed. */
bool time_parse(const char *s, int64_t *ms);

#endif
