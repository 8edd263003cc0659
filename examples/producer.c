/*
 * producer.c - libjobq example: enqueue a job, then poll it until it is finished and print
 * its result. Against an installed libjobq (cmake --install):
 *
 *   cc -std=c11 examples/producer.c $(pkg-config --cflags --libs jobq) -o producer
 *   JOBQ_URL=http://127.0.0.1:8080 JOBQ_TOKEN=<user token> ./producer echo '{"hello":1}'
 *
 * A job identical to a pending one (same type and params) answers that job
 * ("deduplicated"); one identical to a recently completed job answers its result
 * ("cached"). The build tree also has it as jobq-example-producer.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>

#include "jobq.h"

/* Prints the client's last error; returns 1 for main. */
static int report(jobq_client *c, const char *what)
{
    fprintf(stderr, "%s: %s: %s (HTTP %d)\n", what, jobq_last_code(c), jobq_last_message(c),
            jobq_last_status(c));
    return 1;
}

static void nap_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    jobq_job *job = NULL;
    int rc = 1;
    jobq_client *c = jobq_client_new(NULL, NULL);     /* JOBQ_URL / JOBQ_TOKEN */
    if (!c)
        return 1;
    jobq_new_job in = {
        .type = argc > 1 ? argv[1] : "echo",
        .params = argc > 2 ? argv[2] : "{}",
        .max_attempts = 5,
    };
    if (jobq_create(c, &in, &job)) {
        rc = report(c, "create");
        goto done;
    }
    printf("enqueued %s (%s%s)\n", job->id, job->status_name,
           job->deduplicated ? ", deduplicated" : job->cached ? ", cached" : "");
    for (int i = 0; i < 600; i++) {                    /* up to a minute */
        jobq_job *now = NULL;
        if (jobq_get(c, job->id, &now)) {
            rc = report(c, "get");
            goto done;
        }
        jobq_status st = now->status;
        if (st == JOBQ_STATUS_COMPLETED || st == JOBQ_STATUS_FAILED ||
            st == JOBQ_STATUS_CANCELLED) {
            printf("%s: %s\n", jobq_status_name(st),
                   now->result ? now->result : now->error_message ? now->error_message : "");
            rc = st == JOBQ_STATUS_COMPLETED ? 0 : 1;
            jobq_job_free(now);
            goto done;
        }
        jobq_job_free(now);
        nap_ms(100);
    }
    fprintf(stderr, "still not finished; giving up\n");
done:
    jobq_job_free(job);
    jobq_client_free(c);
    return rc;
}
