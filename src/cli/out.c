/*
 * out.c - jobq command output: error reports with their exit codes, the --json passthrough,
 * and the human forms of a job (detail view, one-line summary, table).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

enum { COL_MAX = 32 };   /* widest queue/type column before values are cut */

int cli_fail(struct cli *cli, int err)
{
    jobq_client *c = cli->client;
    const char *field = jobq_last_field(c);
    fprintf(stderr, "error: %s: %s", jobq_last_code(c), jobq_last_message(c));
    if (field)
        fprintf(stderr, " (field: %s)", field);
    fputc('\n', stderr);
    switch (err) {
    case JOBQ_E_CONNECT:
    case JOBQ_E_TIMEOUT:
    case JOBQ_E_TRANSPORT:
        return CLI_EXIT_CONNECT;
    case JOBQ_E_INVALID:
        return CLI_EXIT_USAGE;      /* e.g. --params that is not JSON */
    default:
        return CLI_EXIT_SERVER;
    }
}

int cli_print_json(struct cli *cli)
{
    const char *body = jobq_last_body(cli->client);
    if (*body) {
        fputs(body, stdout);
        if (body[strlen(body) - 1] != '\n')
            fputc('\n', stdout);
    }
    return CLI_EXIT_OK;
}

static const char *or_dash(const char *s)
{
    return s ? s : "-";
}

void cli_print_job_line(const jobq_job *j)
{
    printf("%s %s\n", j->id, or_dash(j->status_name));
}

void cli_print_job(const jobq_job *j)
{
    const struct {
        const char *k;
        const char *v;
    } rows[] = {
        { "type", j->type },
        { "queue", j->queue },
        { "user", j->user_id },
        { "params", j->params },
        { "result", j->result },
        { "error", j->error_message },
        { "error_code", j->error_code },
        { "worker", j->worker_id },
        { "progress_msg", j->progress_message },
        { "run_at", j->run_at },
        { "created_at", j->created_at },
        { "updated_at", j->updated_at },
        { "started_at", j->started_at },
        { "completed_at", j->completed_at },
        { "lease_until", j->lease_expires_at },
        { "expires_at", j->expires_at },
    };
    printf("%-13s %s\n", "id", j->id);
    printf("%-13s %s\n", "status", or_dash(j->status_name));
    printf("%-13s %d/%d\n", "attempts", j->attempts, j->max_attempts);
    printf("%-13s %d\n", "priority", j->priority);
    if (j->progress_percent >= 0)
        printf("%-13s %d%%\n", "progress", j->progress_percent);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].v)
            printf("%-13s %s\n", rows[i].k, rows[i].v);
}

/* Width of the widest s among the jobs' field (via get), between min and COL_MAX. */
static int col_width(const jobq_job_list *l, const char *(*get)(const jobq_job *), int min)
{
    int w = min;
    for (size_t i = 0; i < l->count; i++) {
        int n = (int)strlen(or_dash(get(l->jobs[i])));
        w = n > w ? n : w;
    }
    return w > COL_MAX ? COL_MAX : w;
}

static const char *get_queue(const jobq_job *j)
{
    return j->queue;
}

static const char *get_type(const jobq_job *j)
{
    return j->type;
}

void cli_print_job_table(const jobq_job_list *l)
{
    int wq = col_width(l, get_queue, 5), wt = col_width(l, get_type, 4);
    printf("%-26s  %-10s  %-*s  %-*s  %5s  %7s  %s\n", "ID", "STATUS", wq, "QUEUE", wt, "TYPE",
           "PRI", "TRIES", "CREATED");
    for (size_t i = 0; i < l->count; i++) {
        const jobq_job *j = l->jobs[i];
        char tries[32];
        snprintf(tries, sizeof tries, "%d/%d", j->attempts, j->max_attempts);
        printf("%-26s  %-10s  %-*.*s  %-*.*s  %5d  %7s  %s\n", j->id, or_dash(j->status_name),
               wq, wq, or_dash(j->queue), wt, wt, or_dash(j->type), j->priority, tries,
               or_dash(j->created_at));
    }
    printf("(%zu of %lld, offset %d)\n", l->count, (long long)l->total_count, l->offset);
}

int cli_job_done(struct cli *cli, int err, jobq_job *j, void (*human)(const jobq_job *))
{
    int rc = CLI_EXIT_OK;
    if (err)
        rc = cli_fail(cli, err);
    else if (cli->json)
        cli_print_json(cli);
    else
        human(j);
    jobq_job_free(j);
    return rc;
}
