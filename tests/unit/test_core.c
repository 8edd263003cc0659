/* test_core.c - the pure rules of src/core and src/common: ids, transitions,
 * backoff, time format. Time and randomness are passed in. */
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "core/id.h"
#include "core/job.h"
#include "core/retry.h"
#include "harness.h"

TEST(ids_sort_by_time_and_roundtrip_time)
{
    uint8_t lo[ID_RAND_BYTES] = {0}, hi[ID_RAND_BYTES];
    memset(hi, 0xff, sizeof hi);
    char a[ID_LEN + 1], b[ID_LEN + 1];
    id_make(1764110000000, hi, a);
    id_make(1764110000001, lo, b);
    CHECK(strcmp(a, b) < 0);                   /* a later ms wins over any random part */
    CHECK(id_valid(a) && id_valid(b));
    CHECK_EQ(id_time_ms(a), 1764110000000);
    CHECK_EQ(strlen(a), ID_LEN);
}

TEST(id_validation_rejects_bad_text)
{
    CHECK(!id_valid(""));
    CHECK(!id_valid("01M8AEN7XW53FGK7GFTYGQW2M"));        /* 25 chars */
    CHECK(!id_valid("01M8AEN7XW53FGK7GFTYGQW2MUU"));      /* 27 */
    CHECK(!id_valid("01M8AEN7XW53FGK7GFTYGQW2MI"));       /* I is not Crockford */
    CHECK(!id_valid("81M8AEN7XW53FGK7GFTYGQW2MW"));       /* over 128 bits */
    CHECK(!id_valid("../../etc/passwd.........."));
    CHECK(id_valid("01M8AEN7XW53FGK7GFTYGQW2MW"));
}

TEST(id_generator_is_monotonic_within_a_millisecond_and_backwards_clock)
{
    struct id_gen g = {0};
    uint8_t r1[ID_RAND_BYTES], r2[ID_RAND_BYTES];
    memset(r1, 0x80, sizeof r1);
    memset(r2, 0x01, sizeof r2);               /* smaller draw, same ms */
    char a[ID_LEN + 1], b[ID_LEN + 1], c[ID_LEN + 1];
    id_next(&g, 1000, r1, a);
    id_next(&g, 1000, r2, b);
    id_next(&g, 999, r2, c);                   /* clock stepped back */
    CHECK(strcmp(a, b) < 0);
    CHECK(strcmp(b, c) < 0);
    uint8_t ff[ID_RAND_BYTES];
    memset(ff, 0xff, sizeof ff);
    struct id_gen g2 = {0};
    id_next(&g2, 5, ff, a);
    id_next(&g2, 5, ff, b);                    /* random part overflows: ms moves on */
    CHECK(strcmp(a, b) < 0);
    CHECK_EQ(id_time_ms(b), 6);
}

TEST(transitions_follow_the_lifecycle)
{
    CHECK(job_can_move(JOB_PENDING, JOB_PROCESSING));
    CHECK(job_can_move(JOB_PROCESSING, JOB_COMPLETED));
    CHECK(job_can_move(JOB_PROCESSING, JOB_PENDING));      /* retry after a failure */
    CHECK(job_can_move(JOB_FAILED, JOB_PENDING));          /* manual retry */
    CHECK(job_can_move(JOB_CANCELLED, JOB_PENDING));
    CHECK(!job_can_move(JOB_COMPLETED, JOB_PENDING));
    CHECK(!job_can_move(JOB_COMPLETED, JOB_PROCESSING));
    CHECK(!job_can_move(JOB_PENDING, JOB_COMPLETED));      /* only a lease holder completes */
    CHECK(!job_can_move(JOB_FAILED, JOB_PROCESSING));
    CHECK(!job_can_move((enum job_status)99, JOB_PENDING));
    CHECK(job_is_final(JOB_CANCELLED) && !job_is_final(JOB_PROCESSING));
    enum job_status s;
    CHECK(job_status_parse("processing", &s) && s == JOB_PROCESSING);
    CHECK(!job_status_parse("done", &s));
    CHECK_STR_EQ(job_status_name(JOB_FAILED), "failed");
}

TEST(backoff_grows_exponentially_with_bounded_jitter)
{
    struct retry_policy p = {.base_ms = 1000, .max_ms = 60000};
    CHECK_EQ(retry_delay_ms(&p, 1, 0), 500);               /* equal jitter: half fixed */
    CHECK_EQ(retry_delay_ms(&p, 1, UINT32_MAX), 999);
    CHECK_EQ(retry_delay_ms(&p, 2, 0), 1000);
    CHECK_EQ(retry_delay_ms(&p, 3, 0), 2000);
    CHECK_EQ(retry_delay_ms(&p, 3, 1u << 31), 3000);
    CHECK_EQ(retry_delay_ms(&p, 30, 0), 30000);            /* capped at max */
    CHECK_EQ(retry_delay_ms(&p, 1000000, UINT32_MAX), 59999);
    CHECK_EQ(retry_delay_ms(&p, 0, 0), 500);               /* nonsense attempt = first */
    for (int a = 1; a < 6; a++)        /* below the cap, ranges never overlap downward */
        CHECK(retry_delay_ms(&p, a + 1, 0) >= retry_delay_ms(&p, a, UINT32_MAX));
}

TEST(retry_decision)
{
    CHECK(retry_should_retry(1, 3, true));
    CHECK(retry_should_retry(2, 3, true));
    CHECK(!retry_should_retry(3, 3, true));
    CHECK(!retry_should_retry(1, 3, false));
}

TEST(time_format_and_parse)
{
    char buf[TIME_STR_MAX];
    time_fmt(1764110663123, buf);
    CHECK_STR_EQ(buf, "2025-11-25T22:44:23.123Z");
    int64_t ms = 0;
    CHECK(time_parse("2025-11-25T22:44:23.123Z", &ms) && ms == 1764110663123);
    CHECK(time_parse("2025-11-25T23:44:23.123+01:00", &ms) && ms == 1764110663123);
    CHECK(time_parse("2025-11-25T22:44:23Z", &ms) && ms == 1764110663000);
    CHECK(time_parse("2025-11-25T22:44:23.1Z", &ms) && ms == 1764110663100);
    CHECK(!time_parse("2025-11-25", &ms));
    CHECK(!time_parse("2025-13-25T22:44:23Z", &ms));
    CHECK(!time_parse("2025-11-25T22:44:23", &ms));        /* no zone */
    CHECK(!time_parse("2025-11-25T22:44:23.Z", &ms));
    CHECK(!time_parse("2025-11-25T22:44:23Zjunk", &ms));
    CHECK(!time_parse("", &ms));
}

TEST(json_depth_cap)
{
    char deep[100], ok[] = "{\"a\":[{\"b\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}]}";
    memset(deep, '[', sizeof deep);
    CHECK(!json_depth_ok(deep, sizeof deep, JSON_DEPTH_MAX));
    CHECK(json_depth_ok(ok, strlen(ok), JSON_DEPTH_MAX));  /* brackets in strings do not count */
    json_t *v = json_parse(ok, strlen(ok));
    CHECK(v != NULL);
    json_decref(v);
    CHECK(json_parse(deep, sizeof deep) == NULL);
}

TEST_MAIN()
