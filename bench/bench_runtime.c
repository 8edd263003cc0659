/*
 * bench_runtime.c - W2 (burn-down, shared/WORKLOADS.md) driven by the libjobq worker
 * runtime itself rather than a bench client: 100,000 no-op jobs enqueued through the bulk
 * path (untimed), then one jobq_worker with 16 threads on the queue; the rate is jobs /
 * (time the server first reports the queue empty - time the workers started).
 *
 *   build/jobqd --db /tmp/w2.db --port 8092 --active-limit 0 &   (JOBQ_ADMIN_TOKEN=...)
 *   build/bench_runtime --url http://127.0.0.1:8092 --admin-token $JOBQ_ADMIN_TOKEN
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobq.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static jobq_outcome noop(jobq_ctx *ctx, const jobq_job *job, void *arg)
{
    (void)ctx;
    (void)job;
    (void)arg;
    return JOBQ_DONE;
}

static void usage(void)
{
    printf("usage: bench_runtime --url URL --admin-token T [--jobs N] [--threads N] "
           "[--batch N] [--queue Q]\nW2 with the libjobq worker runtime; prints one JSON line.\n");
}

/* Enqueues n no-op jobs in batches of 1000 through the admin token. */
static int fill(jobq_client *c, const char *queue, long n)
{
    enum { B = 1000 };
    static char text[B][192];
    const char *items[B];
    for (long done = 0; done < n;) {
        size_t k = 0;
        for (; k < B && done < n; k++, done++) {
            snprintf(text[k], sizeof text[k], "{\"type\":\"noop\",\"queue\":\"%s\",\"params\":"
                     "{\"user_id\":\"user-%05ld\",\"seq\":%ld,\"pad\":\"xxxxxxxxxxxxxxxx\"}}",
                     queue, done % 10000, done);
            items[k] = text[k];
        }
        if (jobq_create_batch_json(c, items, k, NULL, NULL)) {
            fprintf(stderr, "bench_runtime: enqueue: %s\n", jobq_last_message(c));
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *url = "http://127.0.0.1:8080", *admin = NULL, *queue = "w2rt";
    long jobs = 100000, threads = 16, batch = 100;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) { usage(); return 0; }
        if (!v) { usage(); return 2; }
        if (!strcmp(a, "--url")) url = v;
        else if (!strcmp(a, "--admin-token")) admin = v;
        else if (!strcmp(a, "--queue")) queue = v;
        else if (!strcmp(a, "--jobs")) jobs = atol(v);
        else if (!strcmp(a, "--threads")) threads = atol(v);
        else if (!strcmp(a, "--batch")) batch = atol(v);
        else { usage(); return 2; }
        i++;
    }
    if (!admin || jobs < 1 || threads < 1 || batch < 1 || batch > 100) {
        usage();
        return 2;
    }
    jobq_client *c = jobq_client_new(url, admin);
    jobq_token *tok = NULL;
    if (!c || jobq_token_create(c, "bench-w2", "worker", "bench_runtime", &tok) ||
        fill(c, queue, jobs)) {
        fprintf(stderr, "bench_runtime: setup failed: %s\n", c ? jobq_last_message(c) : "");
        return 1;
    }
    jobq_worker_opts o = {.url = url, .token = tok->token, .batch = (int)batch,
                          .wait_ms = 200, .threads = (int)threads};
    jobq_worker *w = jobq_worker_new(&o);
    jobq_worker_handle(w, "noop", noop, NULL);
    jobq_worker_queue(w, queue, (int)threads);
    double t0 = now_s(), t1 = 0;
    if (jobq_worker_start(w))
        return 1;
    for (;;) {                               /* the server's view, every 10 ms */
        int64_t pending = -1, processing = -1;
        if (!jobq_queue_depth(c, queue, &pending, &processing) && pending == 0 &&
            processing == 0) {
            t1 = now_s();
            break;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (now_s() - t0 > 270)
            break;
    }
    jobq_worker_stop(w);
    jobq_worker_wait(w);
    printf("{\"workload\":\"w2\",\"client\":\"libjobq worker runtime\",\"jobs\":%ld,"
           "\"threads\":%ld,\"batch\":%ld,\"seconds\":%.3f,\"jobs_per_s\":%.1f,"
           "\"finished\":%s}\n", jobs, threads, batch, t1 ? t1 - t0 : now_s() - t0,
           t1 ? (double)jobs / (t1 - t0) : 0.0, t1 ? "true" : "false");
    jobq_worker_free(w);
    jobq_token_free(tok);
    jobq_client_free(c);
    return t1 ? 0 : 1;
}
