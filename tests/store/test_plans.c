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

/* Plans that sort a bounded set: an hour of per-minute rows (stats), the
 * matches of a ranked search, the candidates of a containment search. */
static bool sorts_bounded_set(const char *what)
{
    return strncmp(what, "stats_", 6) == 0 || strcmp(what, "log_search") == 0 ||
           strcmp(what, "list_user_params") == 0 || strcmp(what, "list_all_result") == 0 ||
           strcmp(what, "list_user_logq") == 0 || strcmp(what, "workflow_steps") == 0 ||
           strcmp(what, "terms_index") == 0;     /* one batch of jobs' leaves */
}

static void expect_plan(store *s, const char *what, const char *needle)
{
    char plan[2048];
    REQUIRE_EQ(store_explain(s, what, plan, sizeof plan), JQ_E_OK);
    if (!CHECK(strstr(plan, needle) != NULL))
        fprintf(stderr, "  plan of %s lacks '%s':\n%s", what, needle, plan);
    /* never a full table scan (an ordered walk of an index with a LIMIT is fine) */
    if (!CHECK(strstr(plan, "SCAN jobs\n") == NULL &&
               (strstr(plan, "TEMP B-TREE") == NULL || sorts_bounded_set(what))))
        fprintf(stderr, "  plan of %s scans jobs:\n%s", what, plan);
}

TEST(hot_statements_use_their_indexes)
{
    char dir[64];
    store *s = open_tmp(dir, sizeof dir);
    expect_plan(s, "claim", "USING INDEX jobs_pickup (queue=?");
    expect_plan(s, "rescue", "USING INDEX jobs_lease (lease_expires_at<?)");
    expect_plan(s, "expire", "USING INDEX jobs_expiry (expires_at>? AND expires_at<?)");
    expect_plan(s, "list_user", "USING INDEX jobs_user_created (user_id=?)");
    expect_plan(s, "list_user_status", "USING INDEX jobs_user_status (user_id=? AND status=?)");
    expect_plan(s, "list_user_type", "USING INDEX jobs_user_type (user_id=? AND type=?)");
    expect_plan(s, "list_user_queue", "USING INDEX jobs_user_queue (user_id=? AND queue=?)");
    expect_plan(s, "list_all", "USING INDEX jobs_created");
    expect_plan(s, "get", "USING INDEX sqlite_autoindex_jobs_1 (id=?)");
    expect_plan(s, "logs", "USING INDEX job_logs_job (job_id=? AND id>?)");
    expect_plan(s, "token", "USING INDEX sqlite_autoindex_tokens_2 (hash=?)");
    /* issue 4: dedup, result cache, unique keys, cursor pages, cleanup, stats */
    expect_plan(s, "dedup", "USING INDEX jobs_dedup (user_id=? AND type=? AND params_hash=? AND created_at>?)");
    expect_plan(s, "cache", "USING INDEX jobs_cache (user_id=? AND type=? AND params_hash=? AND completed_at>?)");
    expect_plan(s, "unique", "USING INDEX jobs_unique_key (user_id=? AND unique_key=?)");
    expect_plan(s, "cursor_user", "USING INDEX jobs_user_created (user_id=? AND (created_at,id)<(?,?))");
    expect_plan(s, "cursor_user_status",
                "USING INDEX jobs_user_status (user_id=? AND status=? AND (created_at,id)<(?,?))");
    expect_plan(s, "cursor_all_asc", "USING INDEX jobs_created ((created_at,id)>(?,?))");
    expect_plan(s, "cleanup", "USING INDEX jobs_cleanup (completed_at<?)");
    expect_plan(s, "cleanup_logs", "job_logs_job (job_id=?)");
    expect_plan(s, "cleanup_deps", "job_deps USING PRIMARY KEY (parent_id=?)");
    expect_plan(s, "cleanup_deps", "job_deps USING COVERING INDEX job_deps_child (child_id=?)");
    expect_plan(s, "oldest_due", "USING INDEX jobs_pending_age (queue=? AND run_at<?)");
    expect_plan(s, "stats_types", "USING PRIMARY KEY (minute>?)");
    expect_plan(s, "stats_minutes", "USING PRIMARY KEY (minute>?)");
    expect_plan(s, "counts_user", "USING PRIMARY KEY (dim=? AND key=?)");
    expect_plan(s, "cancel_filter", "USING INDEX jobs_user_status (user_id=? AND status=?)");
    expect_plan(s, "batch_existing", "USING INDEX jobs_unique_key (user_id=? AND unique_key=?)");
    /* issue 6: searches start from their indexes */
    expect_plan(s, "log_search", "SCAN job_logs_fts VIRTUAL TABLE INDEX");
    expect_plan(s, "list_user_params", "job_terms USING PRIMARY KEY (term=? AND user_id=?)");
    expect_plan(s, "list_user_params", "jobs USING INDEX sqlite_autoindex_jobs_1 (id=?)");
    expect_plan(s, "list_all_result", "job_terms USING PRIMARY KEY (term=?)");
    expect_plan(s, "list_user_logq", "job_logs_fts VIRTUAL TABLE INDEX");
    expect_plan(s, "list_user_logq", "jobs USING INDEX sqlite_autoindex_jobs_1 (id=?)");
    expect_plan(s, "events", "USING INTEGER PRIMARY KEY (rowid>?)");
    /* an unselective containment search walks the listing order instead */
    expect_plan(s, "walk_user_params", "USING INDEX jobs_user_created (user_id=?)");
    expect_plan(s, "walk_all_params", "SCAN jobs USING INDEX jobs_created");
    expect_plan(s, "term_probe", "job_terms USING PRIMARY KEY (term=?)");
    expect_plan(s, "term_probe_user", "job_terms USING PRIMARY KEY (term=? AND user_id=?)");
    /* issue 5: finishing a batch looks each item up by id, driven by the list */
    expect_plan(s, "complete_many", "SEARCH jobs USING INDEX sqlite_autoindex_jobs_1 (id=?)");
    expect_plan(s, "fail_many", "SEARCH jobs USING INDEX sqlite_autoindex_jobs_1 (id=?)");
    expect_plan(s, "has_due", "USING INDEX jobs_pickup (queue=?)");
    expect_plan(s, "next_lease", "jobs_lease");          /* min() reads one index entry */
    expect_plan(s, "next_expiry", "jobs_expiry");
    expect_plan(s, "events_job", "USING INDEX events_job (job_id=? AND id>?)");
    /* issue 5: pruning walks the oldest event ids; the terms task walks new job rowids,
     * and a containment search checks those not indexed yet by rowid too */
    expect_plan(s, "events_prune", "SCAN events");
    expect_plan(s, "terms_next", "SEARCH jobs USING INTEGER PRIMARY KEY (rowid>?)");
    expect_plan(s, "terms_index", "SEARCH j USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)");
    expect_plan(s, "list_user_params", "SEARCH jobs USING INTEGER PRIMARY KEY (rowid>?)");
    /* issue 9: the fair claim walks users and takes each one's best job by index */
    expect_plan(s, "claim_fair", "jobs_pickup_user (queue=? AND user_id>?)");
    expect_plan(s, "claim_fair", "jobs_pickup_user (queue=? AND user_id=?)");
    expect_plan(s, "schedules_due", "USING INDEX schedules_due (next_run_at<?)");
    expect_plan(s, "workflow_steps", "USING INDEX jobs_workflow (workflow_id=?)");
    char plan[256];
    CHECK_EQ(store_explain(s, "nonsense", plan, sizeof plan), JQ_E_NOT_FOUND);
    store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_EQ(system(cmd), 0);
}

TEST_MAIN()
