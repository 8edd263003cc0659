/* test_plans.c - the hot statements use the indexes chosen for them
 * (EXPLAIN QUERY PLAN on a real SQLite file created by the store). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "store/store.h"

static store *open_tmp(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/jq-plans-XXXXXX");
    REQUIRE(mkdtemp(dir) != NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/jobq.db", dir);
    struct store_cfg cfg = {.path = path, .readers = 1, .sync = 2,
                            .retry = {.base_ms = 1000, .max_ms = 60000}};
    store *s = NULL;
    REQUIRE_EQ(store_open(&cfg, &s), JQ_E_OK);
    return s;
}

static void expect_plan(store *s, const char *what, const char *needle)
{
    char plan[2048];
    REQUIRE_EQ(store_explain(s, what, plan, sizeof plan), JQ_E_OK);
    if (!CHECK(strstr(plan, needle) != NULL))
        fprintf(stderr, "  plan of %s lacks '%s':\n%s", what, needle, plan);
    /* never a full table scan (an ordered walk of an index with a LIMIT is fine) */
    if (!CHECK(strstr(plan, "SCAN jobs\n") == NULL && strstr(plan, "TEMP B-TREE") == NULL))
        fprintf(stderr, "  plan of %s scans jobs:\n%s", what, plan);
}

TEST(hot_statements_use_their_indexes)
{
    char dir[64];
    store *s = open_tmp(dir, sizeof dir);
    expect_plan(s, "claim", "USING INDEX jobs_pickup (queue=?");
    expect_plan(s, "rescue", "USING INDEX jobs_lease (lease_expires_at<?)");
    expect_plan(s, "expire", "USING INDEX jobs_expiry (expires_at<?)");
    expect_plan(s, "list_user", "USING INDEX jobs_user_created (user_id=?)");
    expect_plan(s, "list_user_status", "USING INDEX jobs_user_status (user_id=? AND status=?)");
    expect_plan(s, "list_user_type", "USING INDEX jobs_user_type (user_id=? AND type=?)");
    expect_plan(s, "list_user_queue", "USING INDEX jobs_user_queue (user_id=? AND queue=?)");
    expect_plan(s, "list_all", "USING INDEX jobs_created");
    expect_plan(s, "get", "USING INDEX sqlite_autoindex_jobs_1 (id=?)");
    expect_plan(s, "logs", "USING INDEX job_logs_job (job_id=? AND id>?)");
    expect_plan(s, "token", "USING INDEX sqlite_autoindex_tokens_2 (hash=?)");
    char plan[256];
    CHECK_EQ(store_explain(s, "nonsense", plan, sizeof plan), JQ_E_NOT_FOUND);
    store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_EQ(system(cmd), 0);
}

TEST_MAIN()
