/*
 * test_ledger.c - the ledger checker has teeth: each anomaly it exists to find is fed
 * to it on purpose and counted, and a clean history counts nothing.
 */
#include "harness.h"
#include "ledger.h"

#include <stdio.h>

static void clean_history(struct ledger *l)
{
    ledger_create(l, "a", LG_UNKNOWN, 0, NULL);          /* retried after an unknown */
    ledger_create(l, "a", LG_OK, 200, "J1");
    ledger_create(l, "b", LG_OK, 201, "J2");
    ledger_claim(l, "J1", "L1", 1000, 31000);
    ledger_complete(l, "J1", "L1", LG_UNKNOWN, 0, false);
    ledger_complete(l, "J1", "L1", LG_OK, 200, true);     /* a replay is not a second complete */
    ledger_claim(l, "J2", "L2", 1000, 31000);             /* claim reply lost in a crash */
    ledger_claim(l, "J2", "L3", 40000, 70000);            /* rescued after its lease */
    ledger_complete(l, "J2", "L3", LG_OK, 200, false);
    ledger_final(l, "J1", "completed", "a", "a");
    ledger_final(l, "J2", "completed", "b", "b");
}

TEST(clean_history_counts_nothing)
{
    struct ledger *l = ledger_new(NULL);
    clean_history(l);
    struct lg_counts c = ledger_check(l, stderr, 5);
    CHECK_EQ(c.keys, 2);
    CHECK_EQ(c.acked, 2);
    CHECK_EQ(c.recovered, 1);
    CHECK_EQ(c.lost + c.dup_created + c.completed_twice + c.overlap + c.unexpected, 0);
    ledger_free(l);
}

TEST(each_anomaly_is_counted)
{
    struct ledger *l = ledger_new(NULL);
    clean_history(l);
    ledger_create(l, "lost", LG_OK, 201, "J3");            /* acked, never completed */
    ledger_final(l, "J3", "pending", "lost", NULL);
    ledger_create(l, "gone", LG_OK, 201, "J4");            /* acked, vanished */
    ledger_create(l, "dup", LG_OK, 201, "J5");             /* one key, two jobs in replies */
    ledger_create(l, "dup", LG_OK, 200, "J6");
    ledger_final(l, "J5", "completed", "dup", NULL);
    ledger_final(l, "J6", "completed", "dup", NULL);       /* ... and in the final list */
    ledger_create(l, "two", LG_OK, 201, "J7");             /* completed under two leases */
    ledger_claim(l, "J7", "L7a", 1000, 31000);
    ledger_claim(l, "J7", "L7b", 2000, 32000);             /* overlapping lease */
    ledger_complete(l, "J7", "L7a", LG_FAIL, 409, false);
    ledger_complete(l, "J7", "L7a", LG_OK, 200, false);
    ledger_complete(l, "J7", "L7b", LG_OK, 200, false);
    ledger_final(l, "J7", "completed", "two", "two");
    ledger_final(l, "J8", "completed", "nobody", NULL);    /* never requested */
    struct lg_counts c = ledger_check(l, stdout, 10);
    ledger_print(&c, stdout, "teeth");
    CHECK_EQ(c.lost, 2);
    CHECK_EQ(c.dup_created, 2);
    CHECK_EQ(c.completed_twice, 1);
    CHECK_EQ(c.overlap, 0);              /* L7a was completed: a claim after it is unexpected */
    CHECK(c.unexpected >= 2);
    ledger_free(l);
}

TEST(overlapping_leases_are_counted)
{
    struct ledger *l = ledger_new(NULL);
    ledger_create(l, "o", LG_OK, 201, "J9");
    ledger_claim(l, "J9", "A", 1000, 31000);
    ledger_claim(l, "J9", "B", 20000, 50000);              /* A still held: overlap */
    ledger_complete(l, "J9", "B", LG_OK, 200, false);
    ledger_final(l, "J9", "completed", "o", "o");
    struct lg_counts c = ledger_check(l, stdout, 10);
    CHECK_EQ(c.overlap, 1);
    CHECK_EQ(c.lost, 0);
    ledger_free(l);
}

TEST_MAIN()
