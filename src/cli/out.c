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

void cli_print_job_table(const jobq_job_list *l, bool header, bool footer)
{
    int wq = col_width(l, get_queue, 5), wt = col_width(l, get_type, 4);
    if (header)
        printf("%-26s  %-10s  %-*s  %-*s  %5s  %7s  %s\n", "ID", "STATUS", wq, "QUEUE", wt,
               "TYPE", "PRI", "TRIES", "CREATED");
    for (size_t i = 0; i < l->count; i++) {
        const jobq_job *j = l->jobs[i];
        char tries[32];
        snprintf(tries, sizeof tries, "%d/%d", j->attempts, j->max_attempts);
        printf("%-26s  %-10s  %-*.*s  %-*.*s  %5d  %7s  %s\n", j->id, or_dash(j->status_name),
               wq, wq, or_dash(j->queue), wt, wt, or_dash(j->type), j->priority, tries,
               or_dash(j->created_at));
    }
    if (!footer)
        return;
    printf("(%zu of %lld", l->count, (long long)l->total_count);
    if (l->offset)
        printf(", offset %d", l->offset);
    if (l->next_cursor)
        printf("; next page: --cursor %s", l->next_cursor);
    printf(")\n");
}

static void print_counts(const char *label, const jobq_counts *c)
{
    printf("%-10s pending %lld  processing %lld  completed %lld  failed %lld  cancelled %lld",
           label, (long long)c->pending, (long long)c->processing, (long long)c->completed,
           (long long)c->failed, (long long)c->cancelled);
    if (c->total)
        printf("  total %lld", (long long)c->total);
    putchar('\n');
}

void cli_print_stats(const jobq_stats *s)
{
    print_counts(s->global ? "global" : "user", &s->counts);
    if (s->oldest_pending_age_ms >= 0)
        printf("oldest pending job waits %lld ms\n", (long long)s->oldest_pending_age_ms);
    if (s->nqueues)
        printf("\n%-24s %9s %11s %12s\n", "QUEUE", "PENDING", "PROCESSING", "OLDEST_MS");
    for (size_t i = 0; i < s->nqueues; i++) {
        const jobq_queue_stats *q = &s->queues[i];
        printf("%-24.*s %9lld %11lld %12lld\n", COL_MAX, or_dash(q->queue),
               (long long)q->pending, (long long)q->processing,
               (long long)q->oldest_pending_age_ms);
    }
    if (s->ntypes)
        printf("\n%-24s %8s %8s %9s %7s %9s %9s %7s %7s\n", "TYPE", "PENDING", "RUNNING",
               "COMPLETED", "FAILED", "AVG_MS", "P95_MS", "DONE/H", "FAIL/H");
    for (size_t i = 0; i < s->ntypes; i++) {
        const jobq_type_counts *t = &s->types[i];
        char avg[32] = "-", p95[32] = "-";     /* no finished job yet: no duration */
        if (t->avg_duration_ms >= 0)
            snprintf(avg, sizeof avg, "%.1f", t->avg_duration_ms);
        if (t->p95_duration_ms >= 0)
            snprintf(p95, sizeof p95, "%.0f", t->p95_duration_ms);
        printf("%-24.*s %8lld %8lld %9lld %7lld %9s %9s %7lld %7lld\n", COL_MAX,
               or_dash(t->type), (long long)t->counts.pending, (long long)t->counts.processing,
               (long long)t->counts.completed, (long long)t->counts.failed, avg, p95,
               (long long)t->completed_last_hour, (long long)t->failed_last_hour);
    }
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
