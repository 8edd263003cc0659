/*
 * cmd_wait.c - `jobq wait ID`: follows the job's events (SSE) with a progress
 * bar on stderr until it is completed, failed or cancelled; `jobq tail`:
 * prints events as they are committed. Exit codes of wait: 0 completed,
 * 5 failed or cancelled, 6 timeout (see cli.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

struct follow {
    struct cli *cli;
    const char *id;
    bool bar;              /* stderr is a terminal */
    const char *final;     /* the final status seen, or NULL */
};

static void draw(const struct follow *f, long pct, const char *msg)
{
    if (!f->bar)
        return;
    int filled = (int)(pct < 0 ? 0 : pct > 100 ? 30 : pct * 30 / 100);
    fprintf(stderr, "\r[%.*s%*s] %3ld%% %.40s\033[K", filled, "##############################",
            30 - filled, "", pct < 0 ? 0 : pct, msg ? msg : "");
    fflush(stderr);
}

static int on_event(void *arg, long long id, const char *kind, const char *data)
{
    (void)id;
    struct follow *f = arg;
    if (!strcmp(kind, "reset")) {       /* positions were forgotten: ask the job itself */
        jobq_job *j = NULL;
        if (!jobq_get(f->cli->client, f->id, &j) &&
            (j->status == JOBQ_STATUS_COMPLETED || j->status == JOBQ_STATUS_FAILED ||
             j->status == JOBQ_STATUS_CANCELLED))
            f->final = "final";
        jobq_job_free(j);
        return f->final != NULL;
    }
    json_t *d = json_loads(data, 0, NULL);
    if (!strcmp(kind, "progress"))
        draw(f, (long)json_integer_value(json_object_get(d, "progress_percent")),
             json_string_value(json_object_get(d, "progress_message")));
    else if (!strcmp(kind, "completed") || !strcmp(kind, "failed") || !strcmp(kind, "cancelled"))
        f->final = !strcmp(kind, "completed") ? "completed" : !strcmp(kind, "failed")
                                              ? "failed" : "cancelled";
    json_decref(d);
    return f->final != NULL;
}

static int finish(struct cli *cli, struct follow *f)
{
    if (f->bar)
        fputc('\n', stderr);
    jobq_job *j = NULL;
    int err = jobq_get(cli->client, f->id, &j);
    if (err)
        return cli_fail(cli, err);
    if (cli->json)
        cli_print_json(cli);
    else
        cli_print_job(j);
    int code = j->status == JOBQ_STATUS_COMPLETED ? CLI_EXIT_OK : CLI_EXIT_JOB_FAILED;
    jobq_job_free(j);
    return code;
}

static int run_wait(struct cli *cli, const struct cli_args *a)
{
    long long timeout_s = 0;
    if (!cli_int(a, "timeout", 1, 86400 * 30, &timeout_s))
        return CLI_EXIT_USAGE;
    struct follow f = {cli, a->pos[0], isatty(2) && !cli->json, NULL};
    jobq_job *j = NULL;
    int err = jobq_get(cli->client, f.id, &j);     /* already final? */
    if (err)
        return cli_fail(cli, err);
    bool done = j->status == JOBQ_STATUS_COMPLETED || j->status == JOBQ_STATUS_FAILED ||
                j->status == JOBQ_STATUS_CANCELLED;
    draw(&f, j->progress_percent, j->progress_message);
    jobq_job_free(j);
    if (done)
        return finish(cli, &f);
    char q[128];
    snprintf(q, sizeof q, "job_id=%s", f.id);
    /* from event 1: the job's whole history (its own index serves it), so a change
     * between the GET above and the stream opening is never missed */
    err = jobq_events(cli->client, q, 1, (long)timeout_s * 1000, on_event, &f);
    if (err == JOBQ_E_TIMEOUT) {
        if (f.bar)
            fputc('\n', stderr);
        fprintf(stderr, "jobq: the job did not finish within %lld s\n", timeout_s);
        return CLI_EXIT_TIMEOUT;
    }
    if (err)
        return cli_fail(cli, err);
    return finish(cli, &f);
}

static int on_tail(void *arg, long long id, const char *kind, const char *data)
{
    struct cli *cli = arg;
    if (cli->json)
        printf("{\"id\":%lld,\"event\":\"%s\",\"data\":%s}\n", id, kind, data);
    else
        printf("%lld %-10s %s\n", id, kind, data);
    fflush(stdout);
    return 0;
}

static int run_tail(struct cli *cli, const struct cli_args *a)
{
    char q[512] = "";
    size_t n = 0;
    const char *keys[] = {"job", "queue", "type"}, *params[] = {"job_id", "queue", "type"};
    for (int i = 0; i < 3; i++) {
        const char *v = cli_str(a, keys[i]);
        if (v)
            n += (size_t)snprintf(q + n, sizeof q - n, "%s%s=%s", n ? "&" : "", params[i], v);
    }
    long long from = 0, timeout_s = 0;
    if (!cli_int(a, "from", 0, (long long)1 << 62, &from) ||
        !cli_int(a, "timeout", 1, 86400 * 365, &timeout_s))
        return CLI_EXIT_USAGE;
    int err = jobq_events(cli->client, q, from, (long)timeout_s * 1000, on_tail, cli);
    return err == JOBQ_E_TIMEOUT ? CLI_EXIT_OK : err ? cli_fail(cli, err) : CLI_EXIT_OK;
}

static const struct cli_opt wait_opts[] = {
    {"timeout", "S", "give up after S seconds (exit 6); default: wait forever", false},
    {NULL, NULL, NULL, false},
};

static const struct cli_opt tail_opts[] = {
    {"job", "ID", "only this job's events", false},
    {"queue", "Q", "only this queue", false},
    {"type", "T", "only this job type", false},
    {"from", "EVENT_ID", "resume after this event id (default: from now)", false},
    {"timeout", "S", "stop after S seconds", false},
    {NULL, NULL, NULL, false},
};

const struct cli_verb cmd_wait_verbs[] = {
    {"wait", "ID", 1, wait_opts,
     "Wait for a job to finish, with a progress bar; exit 0 completed, 5 failed/cancelled, "
     "6 timeout.", run_wait, 0},
    {"tail", "", 0, tail_opts, "Follow committed changes as they happen (events).", run_tail, 0},
    {NULL, NULL, 0, NULL, NULL, NULL, 0},
};
