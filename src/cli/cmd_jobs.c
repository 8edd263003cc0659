/*
 * cmd_jobs.c - jobq producer verbs: enqueue (one job, with dependencies or as a debounced
 * replace; --file goes to cmd_bulk.c), show, list (offset, cursor, --all; --params /
 * --result containment, --log-q), cancel (one, ids, --filter), retry, delete, logs, stats.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* --- enqueue --- */

static void print_enqueued(const jobq_job *j)
{
    printf("%s\n", j->id);            /* first line: the id alone, for `| head -1` */
    printf("%s job in queue %s is %s, run at %s%s\n", j->type ? j->type : "-",
           j->queue ? j->queue : "-", j->status_name ? j->status_name : "-",
           j->run_at ? j->run_at : "-",
           j->deduplicated ? " (existing job: deduplicated)"
           : j->cached ? " (cached result of a completed job)" : "");
    if (j->blocked_by > 0)
        printf("waits for %d parent job%s to finish\n", j->blocked_by,
               j->blocked_by == 1 ? "" : "s");
}

/* Splits "ID,ID,..." into a malloc'd array of pointers into the malloc'd copy *buf (empty
 * items are skipped). NULL when out of memory. */
static const char **split_ids(const char *list, char **buf, size_t *n)
{
    size_t cap = 1;
    *n = 0;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    const char **ids = malloc(cap * sizeof *ids);
    if (!ids || !(*buf = strdup(list))) {
        free(ids);
        return NULL;
    }
    for (char *save = NULL, *t = strtok_r(*buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
        ids[(*n)++] = t;
    return ids;
}

static int run_enqueue(struct cli *cli, const struct cli_args *a)
{
    long long prio = 0, delay = 0, attempts = 0, ttl = 0;
    jobq_job *j = NULL;
    const char *file = cli_str(a, "file"), *deps = cli_str(a, "depends-on");
    char *deps_buf = NULL;
    const char **dep_ids = NULL;
    size_t ndeps = 0;
    if (file && a->npos == 0)
        return cli_enqueue_file(cli, a, file);
    if (file || a->npos == 0) {
        fprintf(stderr, "jobq enqueue: give TYPE, or --file FILE (not both)\n");
        cli_verb_usage(a->verb, true);
        return CLI_EXIT_USAGE;
    }
    if (cli_flag(a, "replace") && !cli_str(a, "unique-key")) {
        fprintf(stderr, "jobq enqueue: --replace needs --unique-key KEY\n");
        return CLI_EXIT_USAGE;
    }
    if (!cli_int(a, "priority", INT_MIN, INT_MAX, &prio) ||
        !cli_int(a, "delay-ms", 0, LLONG_MAX, &delay) ||
        !cli_int(a, "max-attempts", INT_MIN, INT_MAX, &attempts) ||
        !cli_int(a, "ttl-ms", 0, LLONG_MAX, &ttl))
        return CLI_EXIT_USAGE;
    if (deps && !(dep_ids = split_ids(deps, &deps_buf, &ndeps))) {
        fprintf(stderr, "error: out_of_memory: cannot split --depends-on\n");
        return CLI_EXIT_SERVER;
    }
    if (deps && ndeps == 0) {
        fprintf(stderr, "jobq enqueue: --depends-on wants job ids (ID[,ID...])\n");
        free(dep_ids);
        free(deps_buf);
        return CLI_EXIT_USAGE;
    }
    jobq_new_job in = {
        .type = a->pos[0],
        .queue = cli_str(a, "queue"),
        .params = cli_str(a, "params"),
        .priority = (int)prio,
        .delay_ms = delay,
        .run_at = cli_str(a, "run-at"),
        .max_attempts = (int)attempts,
        .ttl_ms = ttl,
        .unique_key = cli_str(a, "unique-key"),
        .no_dedup = cli_flag(a, "no-dedup"),
        .no_cache = cli_flag(a, "no-cache"),
        .idempotency_key = cli_str(a, "idempotency-key"),
        .depends_on = dep_ids,
        .ndepends_on = ndeps,
        .on_parent_failure = cli_str(a, "on-parent-failure"),
        .replace = cli_flag(a, "replace"),
    };
    int err = jobq_create(cli->client, &in, &j);      /* before reading j: own statement */
    free(dep_ids);
    free(deps_buf);
    return cli_job_done(cli, err, j, print_enqueued);
}

static const struct cli_opt enqueue_opts[] = {
    { "queue", "Q", "queue to put the job in (default \"default\")", false },
    { "params", "JSON", "job parameters, a JSON object (default {})", false },
    { "priority", "N", "-1000..1000, higher runs first (default 0)", false },
    { "delay-ms", "N", "run no sooner than N ms from now", false },
    { "run-at", "TIME", "run no sooner than TIME (RFC 3339)", false },
    { "max-attempts", "N", "1..100 attempts before the job fails (default 3)", false },
    { "ttl-ms", "N", "keep the job for N ms (default 24 h)", false },
    { "unique-key", "KEY", "at most one pending/processing job of yours with KEY", false },
    { "no-dedup", NULL, "create even if an identical job is pending", false },
    { "no-cache", NULL, "create even if an identical job completed recently", false },
    { "idempotency-key", "KEY", "Idempotency-Key header: a retried call replays the first", false },
    { "depends-on", "ID[,ID]", "run only after these jobs of yours complete (<= 100)", false },
    { "on-parent-failure", "P", "with --depends-on: cancel (default) or run", false },
    { "replace", NULL, "debounce: a pending job with --unique-key takes these values", false },
    { "file", "FILE", "bulk: one create object per line (JSONL; - is stdin), no TYPE", false },
    { "batch", "N", "bulk: jobs per request, 1..1000 (default 1000)", false },
    { "upsert", NULL, "bulk: a pending job with the same unique_key takes the new values", false },
    { "quiet", NULL, "bulk: no progress bar (shown only when stderr is a terminal)", false },
    { NULL, NULL, NULL, false },
};

/* --- show, cancel, retry, delete --- */

static int run_show(struct cli *cli, const struct cli_args *a)
{
    jobq_job *j = NULL;
    int err = jobq_get(cli->client, a->pos[0], &j);
    return cli_job_done(cli, err, j, cli_print_job);
}

/* cancel --filter: one call per server slice until nothing more matches. */
static int cancel_filter(struct cli *cli, const struct cli_args *a)
{
    jobq_cancel_filter f = { cli_str(a, "status"), cli_str(a, "type"), cli_str(a, "queue") };
    int64_t total = 0, n;
    int more = 1, err = JOBQ_E_OK;
    while (more && !err) {
        err = jobq_cancel_where(cli->client, &f, &n, &more);
        total += err ? 0 : n;
        if (!err && cli->json)
            cli_print_json(cli);
    }
    if (err)
        return cli_fail(cli, err);
    if (!cli->json)
        printf("cancelled %lld\n", (long long)total);
    return CLI_EXIT_OK;
}

static int run_cancel(struct cli *cli, const struct cli_args *a)
{
    jobq_job *j = NULL;
    bool filter = cli_flag(a, "filter");
    bool fields = cli_str(a, "status") || cli_str(a, "type") || cli_str(a, "queue");
    if (filter == (a->npos > 0) || (fields && !filter)) {
        fprintf(stderr, "jobq cancel: give job ids, or --filter [--status --type --queue]\n");
        cli_verb_usage(a->verb, true);
        return CLI_EXIT_USAGE;
    }
    if (filter)
        return cancel_filter(cli, a);
    if (a->npos == 1) {
        int err = jobq_cancel(cli->client, a->pos[0], &j);
        return cli_job_done(cli, err, j, cli_print_job_line);
    }
    int64_t n = 0;
    int err = jobq_cancel_ids(cli->client, a->pos, (size_t)a->npos, &n);
    if (err)
        return cli_fail(cli, err);
    if (cli->json)
        return cli_print_json(cli);
    printf("cancelled %lld of %d\n", (long long)n, a->npos);
    return CLI_EXIT_OK;
}

static const struct cli_opt cancel_opts[] = {
    { "filter", NULL, "cancel every pending/processing job of yours matching:", false },
    { "status", "S", "  pending|processing (default both)", false },
    { "type", "T", "  only jobs of this type", false },
    { "queue", "Q", "  only jobs of this queue", false },
    { NULL, NULL, NULL, false },
};

static int run_retry(struct cli *cli, const struct cli_args *a)
{
    jobq_job *j = NULL;
    int err = jobq_retry(cli->client, a->pos[0], &j);
    return cli_job_done(cli, err, j, cli_print_job_line);
}

static int run_delete(struct cli *cli, const struct cli_args *a)
{
    int err = jobq_delete(cli->client, a->pos[0]);
    if (err)
        return cli_fail(cli, err);
    if (!cli->json)
        printf("deleted %s\n", a->pos[0]);
    return CLI_EXIT_OK;                 /* 204: no JSON to print */
}

/* --- list --- */

/* --all: every page through next_cursor (--json: one reply per line). */
static int list_all(struct cli *cli, jobq_list_opts *o)
{
    char cursor[512];
    size_t shown = 0;
    for (bool first = true;; first = false) {
        jobq_job_list *l = NULL;
        int err = jobq_list(cli->client, o, &l);
        if (err)
            return cli_fail(cli, err);
        if (cli->json)
            cli_print_json(cli);
        else
            cli_print_job_table(l, first, false);
        shown += l->count;
        bool more = l->next_cursor && l->count > 0 &&
                    (size_t)snprintf(cursor, sizeof cursor, "%s", l->next_cursor) < sizeof cursor;
        jobq_job_list_free(l);
        if (!more)
            break;
        o->cursor = cursor;
        o->offset = 0;
    }
    if (!cli->json)
        printf("(%zu jobs)\n", shown);
    return CLI_EXIT_OK;
}

static int run_list(struct cli *cli, const struct cli_args *a)
{
    long long limit = 0, offset = 0;
    jobq_job_list *l = NULL;
    if (!cli_int(a, "limit", 1, INT_MAX, &limit) || !cli_int(a, "offset", 0, INT_MAX, &offset))
        return CLI_EXIT_USAGE;
    jobq_list_opts o = {
        .status = cli_str(a, "status"),
        .type = cli_str(a, "type"),
        .queue = cli_str(a, "queue"),
        .order = cli_flag(a, "asc") ? "asc" : NULL,
        .limit = (int)limit,
        .offset = (int)offset,
        .cursor = cli_str(a, "cursor"),
        .params = cli_str(a, "params"),
        .result = cli_str(a, "result"),
        .log_q = cli_str(a, "log-q"),
    };
    if (cli_flag(a, "all"))
        return list_all(cli, &o);
    int err = jobq_list(cli->client, &o, &l);
    if (err)
        return cli_fail(cli, err);
    if (cli->json)
        cli_print_json(cli);
    else
        cli_print_job_table(l, true, true);
    jobq_job_list_free(l);
    return CLI_EXIT_OK;
}

static const struct cli_opt list_opts[] = {
    { "status", "S", "pending|processing|completed|failed|cancelled", false },
    { "type", "T", "only jobs of this type", false },
    { "queue", "Q", "only jobs of this queue", false },
    { "limit", "N", "page size, 1..1000 (default 50)", false },
    { "offset", "N", "skip N jobs", false },
    { "cursor", "C", "page after this cursor (next_cursor of the previous page)", false },
    { "all", NULL, "follow next_cursor to the last page (--json: a reply per line)", false },
    { "asc", NULL, "oldest first (default newest first)", false },
    { "params", "JSON", "only jobs whose params contain this object ({\"k\":\"v\"})", false },
    { "result", "JSON", "only jobs whose result contains this object", false },
    { "log-q", "Q", "only jobs with a log line matching this text query", false },
    { NULL, NULL, NULL, false },
};

/* --- logs --- */

static void print_logs(const jobq_log_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        const jobq_log_entry *e = &l->logs[i];
        printf("%s  %-7s  %s%s%s\n", e->created_at ? e->created_at : "-",
               e->level ? e->level : "-", e->message ? e->message : "",
               e->metadata ? "  " : "", e->metadata ? e->metadata : "");
    }
    if (l->next_after)
        printf("(more: --after %s)\n", l->next_after);
}

static int run_logs(struct cli *cli, const struct cli_args *a)
{
    long long limit = 0;
    char after[64];
    const char *from = cli_str(a, "after");
    bool all = cli_flag(a, "all"), more = true;
    if (!cli_int(a, "limit", 1, INT_MAX, &limit))
        return CLI_EXIT_USAGE;
    while (more) {
        jobq_log_list *l = NULL;
        int err = jobq_logs(cli->client, a->pos[0], cli_str(a, "level"), (int)limit, from, &l);
        if (err)
            return cli_fail(cli, err);
        more = all && l->next_after && l->count > 0 &&
               (size_t)snprintf(after, sizeof after, "%s", l->next_after) < sizeof after;
        if (cli->json)
            cli_print_json(cli);
        else if (more)
            print_logs(&(jobq_log_list){ l->logs, l->count, NULL });
        else
            print_logs(l);
        jobq_log_list_free(l);
        from = after;
    }
    return CLI_EXIT_OK;
}

static const struct cli_opt logs_opts[] = {
    { "level", "L", "debug|info|warning|error", false },
    { "limit", "N", "at most N lines, 1..1000 (default 100)", false },
    { "after", "LOG_ID", "start after this log id (paging)", false },
    { "all", NULL, "follow next_after to the last line (--json: a reply per line)", false },
    { NULL, NULL, NULL, false },
};

/* --- stats --- */

static int run_stats(struct cli *cli, const struct cli_args *a)
{
    jobq_stats *s = NULL;
    (void)a;
    int err = jobq_stats_get(cli->client, &s);
    if (err)
        return cli_fail(cli, err);
    if (cli->json)
        cli_print_json(cli);
    else
        cli_print_stats(s);
    jobq_stats_free(s);
    return CLI_EXIT_OK;
}

/* --- table --- */

const struct cli_verb cmd_jobs_verbs[] = {
    { "enqueue", "[TYPE]", 0, enqueue_opts,
      "Enqueue a job of TYPE (prints its id first), or the jobs of a JSONL --file.",
      run_enqueue, 1 },
    { "show", "ID", 1, NULL, "Show one job.", run_show, 0 },
    { "list", "", 0, list_opts, "List jobs, newest first; filter by fields, params, logs.",
      run_list, 0 },
    { "cancel", "[ID...]", 0, cancel_opts,
      "Cancel pending/processing jobs: one ID, up to 1000 IDs, or --filter.", run_cancel,
      CLI_POS_MAX },
    { "retry", "ID", 1, NULL, "Run a failed or cancelled job again.", run_retry, 0 },
    { "delete", "ID", 1, NULL, "Delete a finished job and its logs.", run_delete, 0 },
    { "logs", "ID", 1, logs_opts, "Show a job's log lines, oldest first.", run_logs, 0 },
    { "stats", "", 0, NULL, "Counts by status; queues and types for worker/admin tokens.",
      run_stats, 0 },
    { NULL, NULL, 0, NULL, NULL, NULL, 0 },
};
