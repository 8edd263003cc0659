/*
 * cmd_work.c - jobq worker verbs for scripts: claim, heartbeat, complete, fail, log.
 *
 * `jobq claim` prints one line per claimed job, "ID LEASE_TOKEN TYPE PARAMS", so a shell
 * worker can `read id lease type params` it; nothing on stdout when no job was due.
 */
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"

enum { WORKER_ID_MAX = 128 };   /* the API's cap on worker_id */

/* Default worker id: "jobq-cli:HOST:PID" (jobqd accepts [A-Za-z0-9_.:-] only). */
static const char *default_worker(char *buf, size_t cap)
{
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(buf, cap, "jobq-cli:%s:%ld", host, (long)getpid());
    return buf;
}

static int run_claim(struct cli *cli, const struct cli_args *a)
{
    long long lease = 0, max = 0, wait = 0;
    char wbuf[WORKER_ID_MAX + 1];
    jobq_job_list *l = NULL;
    if (!cli_int(a, "lease-ms", 0, INT_MAX, &lease) || !cli_int(a, "max", 0, INT_MAX, &max) ||
        !cli_int(a, "wait-ms", 0, INT_MAX, &wait))
        return CLI_EXIT_USAGE;
    const char *worker = cli_str(a, "worker");
    worker = worker ? worker : default_worker(wbuf, sizeof wbuf);
    int err = jobq_claim(cli->client, a->pos[0], worker, (int)lease, (int)max, (int)wait, &l);
    if (err)
        return cli_fail(cli, err);
    if (cli->json)
        cli_print_json(cli);
    for (size_t i = 0; !cli->json && i < l->count; i++) {
        const jobq_job *j = l->jobs[i];
        printf("%s %s %s %s\n", j->id, j->lease_token ? j->lease_token : "-",
               j->type ? j->type : "-", j->params ? j->params : "{}");
    }
    if (!cli->json && l->count == 0)
        fprintf(stderr, "no job due in queue %s\n", a->pos[0]);
    jobq_job_list_free(l);
    return CLI_EXIT_OK;
}

static const struct cli_opt claim_opts[] = {
    { "worker", "W", "worker id (default jobq-cli:HOST:PID)", false },
    { "lease-ms", "N", "lease length, 1000..3600000 (default 30000)", false },
    { "max", "N", "claim up to N jobs, 1..100 (default 1)", false },
    { "wait-ms", "N", "long-poll up to N ms for a job, 0..30000 (default 0)", false },
    { NULL, NULL, NULL, false },
};

static int run_heartbeat(struct cli *cli, const struct cli_args *a)
{
    long long lease = 0, pct = -1;
    jobq_job *j = NULL;
    if (!cli_int(a, "lease-ms", 0, INT_MAX, &lease) || !cli_int(a, "progress", 0, 100, &pct))
        return CLI_EXIT_USAGE;
    int err = jobq_heartbeat(cli->client, a->pos[0], cli_str(a, "lease"), (int)lease, (int)pct,
                             cli_str(a, "message"), &j);
    return cli_job_done(cli, err, j, cli_print_job_line);
}

static const struct cli_opt heartbeat_opts[] = {
    { "lease", "TOKEN", "lease token from claim", true },
    { "lease-ms", "N", "extend the lease by N ms (default 30000)", false },
    { "progress", "PCT", "progress percent, 0..100", false },
    { "message", "TEXT", "progress message", false },
    { NULL, NULL, NULL, false },
};

static int run_complete(struct cli *cli, const struct cli_args *a)
{
    jobq_job *j = NULL;
    int err = jobq_complete(cli->client, a->pos[0], cli_str(a, "lease"), cli_str(a, "result"),
                            &j);
    return cli_job_done(cli, err, j, cli_print_job_line);
}

static const struct cli_opt complete_opts[] = {
    { "lease", "TOKEN", "lease token from claim", true },
    { "result", "JSON", "result of the job, any JSON value", false },
    { NULL, NULL, NULL, false },
};

static int run_fail(struct cli *cli, const struct cli_args *a)
{
    jobq_job *j = NULL;
    int err = jobq_fail(cli->client, a->pos[0], cli_str(a, "lease"), cli_str(a, "error"),
                        cli_str(a, "code"), !cli_flag(a, "no-retry"), &j);
    return cli_job_done(cli, err, j, cli_print_job_line);
}

static const struct cli_opt fail_opts[] = {
    { "lease", "TOKEN", "lease token from claim", true },
    { "error", "MSG", "what went wrong", true },
    { "code", "CODE", "machine-readable error code", false },
    { "no-retry", NULL, "fail for good, even if attempts remain", false },
    { NULL, NULL, NULL, false },
};

static int run_log(struct cli *cli, const struct cli_args *a)
{
    const char *level = cli_str(a, "level");
    int err = jobq_log(cli->client, a->pos[0], cli_str(a, "lease"), level ? level : "info",
                       a->pos[1], cli_str(a, "metadata"));
    if (err)
        return cli_fail(cli, err);
    return cli->json ? cli_print_json(cli) : CLI_EXIT_OK;
}

static const struct cli_opt log_opts[] = {
    { "lease", "TOKEN", "lease token from claim", true },
    { "level", "L", "debug|info|warning|error (default info)", false },
    { "metadata", "JSON", "structured details, a JSON object", false },
    { NULL, NULL, NULL, false },
};

const struct cli_verb cmd_work_verbs[] = {
    { "claim", "QUEUE", 1, claim_opts,
      "Claim due jobs from QUEUE; prints \"ID LEASE_TOKEN TYPE PARAMS\" per job.", run_claim, 0 },
    { "heartbeat", "ID", 1, heartbeat_opts, "Extend a lease and report progress.",
      run_heartbeat, 0 },
    { "complete", "ID", 1, complete_opts, "Complete a claimed job.", run_complete, 0 },
    { "fail", "ID", 1, fail_opts, "Report a failed attempt of a claimed job.", run_fail, 0 },
    { "log", "ID MESSAGE", 2, log_opts, "Add a log line to a claimed job.", run_log, 0 },
    { NULL, NULL, 0, NULL, NULL, NULL, 0 },
};
