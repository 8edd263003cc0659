/*
 * metrics.h - counters and histograms for /metrics (Prometheus text format):
 * per route request durations, statuses, SQL statements and statement-budget
 * overruns; claim latency per job type; token cache hits. Lock-free atomics
 * on the request path; the few per-type slots take a mutex when first used.
 */
#ifndef JQ_METRICS_H
#define JQ_METRICS_H
#include <stdint.h>

#include "common/buf.h"

struct metrics;
struct jobqd;

struct metrics *metrics_new(int n_routes);
void metrics_free(struct metrics *m);
/* One request: route index (-1 = unmatched), status, duration, statements. */
void metrics_request(struct metrics *m, int route, int status, int64_t us, int stmts,
                     int over_budget);
/* Time from run_at to claim of one job of type. */
void metrics_claim(struct metrics *m, const char *type, int64_t wait_ms);
/* Appends the exposition text of everything (server + store + stats) to b. */
void metrics_render(struct jobqd *d, struct buf *b);

#endif
