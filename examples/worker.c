/*
 * worker.c - libjobq example: a worker that long-polls a queue, logs, reports progress with
 * a heartbeat and completes (or fails) each job. Single-threaded for brevity: it
 * heartbeats between steps of the work, which is fine while a step is shorter than
 * lease_ms / 3. A real worker heartbeats from a second thread with its own jobq_client
 * (a client is not thread-safe).
 *
 * Not built by CMake; after building libjobq (target jobq_static):
 *   cc -std=c11 -Iinclude examples/worker.c build/libjobq.a -lcurl -ljansson -lpthread \
 *      -o worker
 *   JOBQ_URL=http://127.0.0.1:8080 JOBQ_TOKEN=<worker token> ./worker default
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "jobq.h"

enum {
    LEASE_MS = 30000,  /* lease asked for on claim and on every heartbeat */
    WAIT_MS = 25000,   /* long-poll: the server answers at once when a job arrives */
    STEPS = 5,         /* the pretend work is STEPS steps */
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void nap_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Does the pretend work; returns 0 when done, or the failing call's error. */
static int work(jobq_client *c, const jobq_job *j)
{
    char msg[64];
    int err = jobq_log(c, j->id, j->lease_token, "info", "started", j->params);
    for (int step = 1; !err && step <= STEPS; step++) {
        nap_ms(200);                                   /* the actual work goes here */
        snprintf(msg, sizeof msg, "step %d of %d", step, STEPS);
        err = jobq_heartbeat(c, j->id, j->lease_token, LEASE_MS, step * 100 / STEPS, msg, NULL);
    }
    return err;
}

static void process(jobq_client *c, const jobq_job *j)
{
    printf("claimed %s (%s, attempt %d/%d)\n", j->id, j->type, j->attempts, j->max_attempts);
    if (strcmp(j->type, "fail") == 0) {                /* a type that always fails */
        if (jobq_fail(c, j->id, j->lease_token, "asked to fail", "E_ASKED", 1, NULL))
            fprintf(stderr, "fail: %s\n", jobq_last_code(c));
        return;
    }
    int err = work(c, j);
    if (!err)
        err = jobq_complete(c, j->id, j->lease_token, "{\"ok\":true}", NULL);
    if (err && strcmp(jobq_last_code(c), "lease_lost") == 0)
        fprintf(stderr, "%s: lease lost, dropped\n", j->id);   /* someone else has it now */
    else if (err)
        fprintf(stderr, "%s: %s: %s\n", j->id, jobq_last_code(c), jobq_last_message(c));
    else
        printf("completed %s\n", j->id);
}

int main(int argc, char **argv)
{
    const char *queue = argc > 1 ? argv[1] : "default";
    jobq_client *c = jobq_client_new(NULL, NULL);     /* JOBQ_URL / JOBQ_TOKEN */
    if (!c)
        return 1;
    setvbuf(stdout, NULL, _IOLBF, 0);                 /* progress lines show up at once */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    while (!stopping) {
        jobq_job_list *l = NULL;
        if (jobq_claim(c, queue, "example-worker", LEASE_MS, 1, WAIT_MS, &l)) {
            fprintf(stderr, "claim: %s: %s\n", jobq_last_code(c), jobq_last_message(c));
            if (jobq_last_err(c) != JOBQ_E_SERVER || jobq_last_status(c) >= 500)
                nap_ms(1000);                          /* server away: back off */
            else
                break;                                 /* 401/403/404: retrying won't help */
            continue;
        }
        for (size_t i = 0; i < l->count; i++)
            process(c, l->jobs[i]);
        jobq_job_list_free(l);
    }
    jobq_client_free(c);
    return 0;
}
