/*
 * maint.h - the maintenance thread: rescues jobs whose lease ran out and
 * fails pending jobs past their expiry. Each tick does what is due and
 * returns the time until the next due thing; the thread sleeps exactly that
 * long (or until poked).
 */
#ifndef JQ_MAINT_H
#define JQ_MAINT_H
#include <stdint.h>

struct jobqd;
struct maint;

struct maint *maint_start(struct jobqd *d);
void          maint_stop(struct maint *m);   /* NULL is a no-op */
/* Runs everything due at now; returns ms until the next due item. */
int64_t       maint_tick(struct jobqd *d, int64_t now_ms);

#endif
