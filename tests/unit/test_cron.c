/* test_cron.c - cron parsing and next fire times (pure), workflow cycle
 * checks, and the zone conversions with the DST rules of server/sched.h. */
#include <string.h>

#include "common/clock.h"
#include "common/tz.h"
#include "core/cron.h"
#include "core/dag.h"
#include "harness.h"

static struct naive nv(int y, int mo, int d, int h, int mi)
{
    return (struct naive){y, mo, d, h, mi};
}

static bool next_is(const char *expr, struct naive from, struct naive want)
{
    struct cron c;
    struct naive got;
    char why[128];
    if (!cron_parse(expr, &c, why, sizeof why) || !cron_next(&c, &from, &got))
        return false;
    return memcmp(&got, &want, sizeof got) == 0;
}

TEST(parse_accepts_cron_and_rejects_junk)
{
    struct cron c;
    char why[128];
    const char *good[] = {"* * * * *", "*/15 9-17 * * mon-fri", "0 0 1,15 * *", "@hourly",
                          "@daily", "0 12 * jan,jul sun", "5/10 * * * 7", "0 0 29 2 *", NULL};
    for (int i = 0; good[i]; i++)
        CHECK(cron_parse(good[i], &c, why, sizeof why));
    const char *bad[] = {"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *",
                         "* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *", "x * * * *",
                         "@often", NULL};
    for (int i = 0; bad[i]; i++)
        CHECK(!cron_parse(bad[i], &c, why, sizeof why) && why[0]);
}

TEST(next_fire_times)
{
    CHECK(next_is("0 * * * *", nv(2026, 1, 1, 10, 0), nv(2026, 1, 1, 11, 0)));     /* strictly after */
    CHECK(next_is("0 * * * *", nv(2026, 1, 1, 23, 30), nv(2026, 1, 2, 0, 0)));
    CHECK(next_is("*/15 * * * *", nv(2026, 1, 1, 10, 7), nv(2026, 1, 1, 10, 15)));
    CHECK(next_is("0 0 1 * *", nv(2026, 1, 31, 12, 0), nv(2026, 2, 1, 0, 0)));
    CHECK(next_is("0 0 29 2 *", nv(2026, 3, 1, 0, 0), nv(2028, 2, 29, 0, 0)));    /* leap day */
    CHECK(next_is("30 9 * * mon", nv(2026, 11, 25, 12, 0), nv(2026, 11, 30, 9, 30)));  /* a Monday */
    CHECK(next_is("0 0 13 * fri", nv(2026, 11, 25, 0, 0), nv(2026, 11, 27, 0, 0)));  /* dom OR dow */
    CHECK(next_is("@yearly", nv(2026, 12, 31, 23, 59), nv(2027, 1, 1, 0, 0)));
    struct cron c;
    char why[64];
    struct naive out;
    REQUIRE(cron_parse("0 0 30 2 *", &c, why, sizeof why));
    CHECK(!cron_next(&c, &(struct naive){2026, 1, 1, 0, 0}, &out));            /* never */
    CHECK_EQ(cron_weekday(2026, 11, 25), 3);                                  /* Wednesday */
}

TEST(zones_convert_and_handle_dst)
{
    int64_t ms = 0;
    REQUIRE(time_parse("2026-03-08T07:30:00Z", &ms));          /* 02:30 EST does not exist */
    struct naive gap = nv(2026, 3, 8, 2, 30);
    CHECK_EQ(tz_from_naive("America/New_York", &gap), ms);     /* -> 03:30 EDT = 07:30Z */
    struct naive n;
    REQUIRE(time_parse("2026-11-01T05:30:00Z", &ms));          /* 01:30 EDT, first of two */
    tz_to_naive("America/New_York", ms, &n);
    CHECK(n.hour == 1 && n.minute == 30);
    tz_to_naive("America/New_York", ms + 3600000, &n);          /* 01:30 EST, the second */
    CHECK(n.hour == 1 && n.minute == 30);
    CHECK(tz_valid("UTC") && tz_valid("Europe/Berlin") && tz_valid("America/New_York"));
    CHECK(!tz_valid("../../etc/passwd") && !tz_valid("Mars/Olympus") && !tz_valid(""));
}

TEST(dag_orders_parents_first_and_finds_cycles)
{
    struct dag_edge diamond[] = {{0, 1}, {0, 2}, {1, 3}, {2, 3}};
    int order[4], scratch[8], cyc = -1, pos[4];
    REQUIRE(dag_order(4, diamond, 4, order, &cyc, scratch));
    for (int i = 0; i < 4; i++)
        pos[order[i]] = i;
    for (int e = 0; e < 4; e++)
        CHECK(pos[diamond[e].parent] < pos[diamond[e].child]);
    struct dag_edge loop[] = {{0, 1}, {1, 2}, {2, 1}, {2, 3}};
    CHECK(!dag_order(4, loop, 4, order, &cyc, scratch));
    CHECK(cyc == 1 || cyc == 2);                               /* a node on the cycle */
}

TEST_MAIN()
