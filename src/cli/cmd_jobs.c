/*
 * cmd_jobs.c - jobq producer verbs: enqueue, show, list, cancel, retry, delete, logs.
 */
#include <limits.h>
#include <stdio.h>

#include "cli.h"

/* --- enqueue --- */

static void print_enqueued(const jobq_job *j)
{
    printf("%s\n", j->id);            /* first line: the id alone, for `| head -1` */
    printf("%s job in queue %s is %s, run at %s\n", j->type ? j->type : "-",
           j->queue ? j->queue : "-", j->status_name ? j->status_name : "-",
           j->run_at ? j->run_at : "-");
}

static int run_enqueue(struct cli *cli, const struct cli_args *a)
{
    long long prio = 0, delay = 0, attempts = 0, ttl = 0;
    jobq_job *j = NULL;
    if (!cli_int(a, "priority", INT_MIN, INT_MAX, &prio) ||
        !cli_int(a, "delay-ms", 0, LLONG_MAX, &delay) ||
        !cli_int(a, "max-attempts", INT_MIN, INT_MAX, &attempts) ||
        !cli_int(a, "ttl-ms", 0, LLONG_MAX, &ttl))
        return CLI_EXIT_USAGE;
    jobq_new_job in = {
        .type = a->pos[0],
        .queue = cli_str(a, "queue"),
        .params = cli_str(a, "params"),
        .priority = (int)prio,
        .delay_ms = delay,
        .run_at = cli_str(a, "run-at"),
        .max_attempts = (int)attempts,
        .ttl_ms = ttl,
    };
    int err = jobq_create(cli->client, &in, &j);      /* before reading j: own statement */
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
    { NULL, NULL, NULL, false },
};

/* --- show, cancel, retry, delete --- */

static int run_show(struct cli *cli, const struct cli_args *a)
{
    jobq_job *j = NULL;
    int err = jobq_get(cli->client, a->pos[0], &j);
    return cli_job_done(cli, err, j, cli_print_job);
}

static int run_cancel(struct cli *cli, const struct cli_args *a)
{
    jobq_job *j = NULL;
    int err = jobq_cancel(cli->client, a->pos[0], &j);
    return cli_job_done(cli, err, j, cli_print_job_line);
}

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
    };
    int err = jobq_list(cli->client, &o, &l);
    if (err)
        return cli_fail(cli, err);
    if (cli->json)
        cli_print_json(cli);
    else
        cli_print_job_table(l);
    jobq_job_list_free(l);
    return CLI_EXIT_OK;
}

static const struct cli_opt list_opts[] = {
    { "status", "S", "pending|processing|completed|failed|cancelled", false },
    { "type", "T", "only jobs of this type", false },
    { "queue", "Q", "only jobs of this queue", false },
    { "limit", "N", "page size, 1..1000 (default 50)", false },
    { "offset", "N", "skip N jobs", false },
    { "asc", NULL, "oldest first (default newest first)", false },
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
    jobq_log_list *l = NULL;
    if (!cli_int(a, "limit", 1, INT_MAX, &limit))
        return CLI_EXIT_USAGE;
    int err = jobq_logs(cli->client, a->pos[0], cli_str(a, "level"), (int)limit,
                        cli_str(a, "after"), &l);
    if (err)
        return cli_fail(cli, err);
    if (cli->json)
        cli_print_json(cli);
    else
        print_logs(l);
    jobq_log_list_free(l);
    return CLI_EXIT_OK;
}

static const struct cli_opt logs_opts[] = {
    { "level", "L", "debug|info|warning|error", false },
    { "limit", "N", "at most N lines, 1..1000 (default 100)", false },
    { "after", "LOG_ID", "start after this log id (paging)", false },
    { NULL, NULL, NULL, false },
};

/* --- table --- */

const struct cli_verb cmd_jobs_verbs[] = {
    { "enqueue", "TYPE", 1, enqueue_opts, "Enqueue a job of TYPE; prints its id first.",
      run_enqueue },
    { "show", "ID", 1, NULL, "Show one job.", run_show },
    { "list", "", 0, list_opts, "List jobs, newest first.", run_list },
    { "cancel", "ID", 1, NULL, "Cancel a pending or processing job.", run_cancel },
    { "retry", "ID", 1, NULL, "Run a failed or cancelled job again.", run_retry },
    { "delete", "ID", 1, NULL, "Delete a finished job and its logs.", run_delete },
    { "logs", "ID", 1, logs_opts, "Show a job's log lines, oldest first.", run_logs },
    { NULL, NULL, 0, NULL, NULL, NULL },
};
