/*
 * worker.c - libjobq example: a worker on the worker runtime (jobq_worker_*). Handlers per
 * job type, error classes mapped to retry or discard, threads per queue from the
 * environment, automatic heartbeats, and a graceful drain on SIGTERM / SIGINT.
 *
 *   cc -std=c11 examples/worker.c $(pkg-config --cflags --libs jobq) -o worker
 *   JOBQ_URL=http://127.0.0.1:8080 JOBQ_TOKEN=<worker token> ./worker default reports
 *
 * Arguments: the queues to work (default "default"). Environment (all optional):
 *   JOBQ_THREADS_<QUEUE>  threads for that queue (JOBQ_THREADS_REPORTS=4); JOBQ_THREADS the rest
 *   JOBQ_LEASE_MS, JOBQ_BATCH, JOBQ_WAIT_MS, JOBQ_GRACE_MS   see jobq_worker_opts in jobq.h
 *   JOBQ_NO_NEXT=1        never use POST /v1/queues/{queue}/next
 *
 * Job types: "echo" returns its params; "sleep" sleeps params.ms (default 1000) reporting
 * progress; "fail" fails with error class params.class (default "error"). Rules: "net.*"
 * retries, "flaky.*" retries up to 2 attempts, "invalid.*" is discarded at once; any other
 * class retries while the job's attempts last.
 *
 * stdout (line-buffered): "start ID TYPE" and "end ID TYPE OUTCOME" per job, then one
 * "stats ..." line per type and a "counters ..." line when the worker has drained.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "jobq.h"

static const char *const outcome_names[] = { "done", "retry", "discard", "error" };

static void nap_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static jobq_outcome echo(jobq_ctx *ctx, const jobq_job *job, void *arg)
{
    (void)arg;
    printf("start %s %s\n", job->id, job->type);
    jobq_ctx_set_result(ctx, job->params ? job->params : "{}");
    printf("end %s %s done\n", job->id, job->type);
    return JOBQ_DONE;
}

/* Sleeps params.ms in 100 ms steps; leases are kept alive by the runtime meanwhile. */
static jobq_outcome sleepy(jobq_ctx *ctx, const jobq_job *job, void *arg)
{
    char result[64];
    int64_t ms = jobq_param_int(job, "ms", 1000), slept = 0;
    (void)arg;
    printf("start %s %s\n", job->id, job->type);
    jobq_ctx_log(ctx, "info", "sleeping %" PRId64 " ms", ms);
    while (slept < ms && !jobq_ctx_lost(ctx)) {
        long step = ms - slept < 100 ? (long)(ms - slept) : 100;
        nap_ms(step);
        slept += step;
        jobq_ctx_progress(ctx, (int)(slept * 100 / (ms ? ms : 1)), "sleeping");
    }
    snprintf(result, sizeof result, "{\"slept_ms\":%" PRId64 "}", slept);
    jobq_ctx_set_result(ctx, result);
    printf("end %s %s done\n", job->id, job->type);
    return JOBQ_DONE;
}

static jobq_outcome failing(jobq_ctx *ctx, const jobq_job *job, void *arg)
{
    char cls[129];
    (void)arg;
    printf("start %s %s\n", job->id, job->type);
    const char *c = jobq_param_str(job, "class", cls, sizeof cls);
    jobq_outcome oc = jobq_ctx_error(ctx, c ? c : "error", "asked to fail (attempt %d)",
                                     job->attempts);
    printf("end %s %s %s\n", job->id, job->type, outcome_names[oc]);
    return oc;
}

static int env_int(const char *name)
{
    const char *s = getenv(name);
    return s ? atoi(s) : 0;
}

static void print_stats(jobq_worker *w)
{
    jobq_worker_type_stats st[32];
    jobq_worker_counters k;
    size_t n = jobq_worker_stats(w, st, sizeof st / sizeof st[0]);
    for (size_t i = 0; i < n && i < sizeof st / sizeof st[0]; i++)
        printf("stats %s runs=%" PRId64 " done=%" PRId64 " retried=%" PRId64
               " discarded=%" PRId64 " lost=%" PRId64 " avg_ms=%.1f p95_ms=%.0f\n",
               st[i].type, st[i].runs, st[i].done, st[i].retried, st[i].discarded,
               st[i].lost, st[i].avg_ms, st[i].p95_ms);
    jobq_worker_get_counters(w, &k);
    printf("counters round_trips=%" PRId64 " batches=%" PRId64 " claimed=%" PRId64
           " heartbeats=%" PRId64 " released=%" PRId64 " next=%d\n",
           k.round_trips, k.batches, k.claimed, k.heartbeats, k.released, k.next_supported);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    jobq_worker_opts o = {
        .lease_ms = env_int("JOBQ_LEASE_MS"),
        .batch = env_int("JOBQ_BATCH"),
        .wait_ms = env_int("JOBQ_WAIT_MS"),
        .grace_ms = env_int("JOBQ_GRACE_MS"),
        .no_next = env_int("JOBQ_NO_NEXT"),
    };
    jobq_worker *w = jobq_worker_new(&o);
    if (!w)
        return 1;
    jobq_worker_handle(w, "echo", echo, NULL);
    jobq_worker_handle(w, "sleep", sleepy, NULL);
    jobq_worker_handle(w, "fail", failing, NULL);
    jobq_worker_retry_on(w, "net.*", 0);
    jobq_worker_retry_on(w, "flaky.*", 2);
    jobq_worker_discard_on(w, "invalid.*");
    for (int i = 1; i < argc; i++)
        jobq_worker_queue(w, argv[i], 0);
    if (argc < 2)
        jobq_worker_queue(w, "default", 0);
    int err = jobq_worker_run(w);                 /* until SIGTERM / SIGINT, then drain */
    print_stats(w);
    if (err)
        fprintf(stderr, "worker: %s %s\n", jobq_err_code(err), jobq_worker_error(w));
    if (err != JOBQ_E_TIMEOUT)
        jobq_worker_free(w);                      /* TIMEOUT: a handler still runs; just exit */
    return err ? 1 : 0;
}
