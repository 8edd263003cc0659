/*
 * maint.h - the maintenance thread and its tasks: rescue (leases that ran
 * out), expire (pending jobs past expires_at), cleanup (finished jobs past
 * retention, with their logs), idempotency (old Idempotency-Key records) and
 * stats (old per-minute buckets). Each tick runs what is due, in bounded
 * batches (each its own transaction, so requests interleave), and returns
 * the time until the next due task; the thread sleeps exactly that long.
 */
#ifndef JQ_MAINT_H
#define JQ_MAINT_H
#include <jansson.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

struct jobqd;
struct maint;

struct maint *maint_start(struct jobqd *d);
void          maint_stop(struct maint *m);   /* NULL is a no-op */
/* Runs everything due at now; returns ms until the next due item. */
int64_t       maint_tick(struct jobqd *d, int64_t now_ms);
/* Tells the thread that a rescue (lease) or expire (pending expiry) may be
 * due at due_ms (wall) — earlier than it planned to look, perhaps. */
void          maint_poke(struct maint *m, enum maint_task t, int64_t due_ms);
/* Runs one task now, all batches; JQ_E_NOT_FOUND for an unknown name. */
jq_err        maint_run(struct jobqd *d, const char *name, int64_t now_ms, int *rows,
                        int64_t *ms);
/* {"tasks":[{name, interval_ms, last_run_at, last_rows, last_ms, runs}]} */
json_t       *maint_report(struct jobqd *d);

#endif
