/*
 * pgload.h - the load of the PostgreSQL chaos and pressure tests (RELIABILITY.md T13, T14):
 * two jobqd nodes on one database of the harness's private cluster, producers that
 * create keyed jobs (Idempotency-Key, retried with the same key after an unknown outcome,
 * on the other node when one is down) at an offered rate, and workers that claim from
 * both nodes and complete each job (the complete retried with its own key). Every request
 * goes into the ledger (ledger.h); completions are counted per 100 ms, so a test can
 * compare the throughput of any window with a baseline.
 *
 *   struct pgl *l = pgl_start(&(struct pgl_opts){.rate = 120});
 *   ... pgl_rate(l, from, to) ... pgl_kill_node(l, 0) ... pgl_restart_node(l, 0) ...
 *   pgl_finish(l, "cell");          (drain, ledger check: lost 0, completed_twice 0, ...)
 *   pgl_free(l);
 *
 * A node is killed with pgl_kill_node (SIGKILL, no lock: requests in flight fail as they
 * would) and brought back with pgl_restart_node (its write lock held while the port
 * changes; clients that cannot take the read lock use the other node).
 */
#ifndef JQ_PGLOAD_H
#define JQ_PGLOAD_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "harness.h"
#include "ledger.h"

enum { PGL_NODES = 2 };

struct pgl_opts {
    int rate;                /* offered creates per second, all producers; 0 = unpaced */
    int producers, workers;  /* threads; 0 = 2 and 4 */
    int lease_ms;            /* lease of each claim; 0 = 4000 */
    const char *queue;       /* NULL = "cq" */
};

struct pgl;

struct pgl *pgl_start(const struct pgl_opts *o);
struct testsrv *pgl_node(struct pgl *l, int i);
const char *pgl_worker_token(struct pgl *l);
const char *pgl_user_token(struct pgl *l);
/* A live node (for admin reads): the first one not killed. */
struct testsrv *pgl_live(struct pgl *l);

void pgl_kill_node(struct pgl *l, int i);      /* SIGKILL node i; clients use the other */
void pgl_restart_node(struct pgl *l, int i);   /* start node i again on the database */
bool pgl_node_alive(struct pgl *l, int i);     /* started, not killed, and still running */
/* SIGTERM node i under load (requests in flight finish; clients move to the other node);
 * returns its exit status (CHECKed 0 by the harness) and the ms it took in *ms. */
int pgl_term_node(struct pgl *l, int i, int64_t *ms);

/* Milliseconds since the load started; completions per second in [from_ms, to_ms). */
int64_t pgl_elapsed(struct pgl *l);
double pgl_rate(struct pgl *l, int64_t from_ms, int64_t to_ms);
/* Blocks (pacing, not a condition wait) until the load has run at_ms. */
void pgl_until(struct pgl *l, int64_t at_ms);
/* First window [t, t + win_ms) with t >= from_ms whose rate >= want, waiting for the
 * load to run up to deadline_ms; returns t, or -1 if none. */
int64_t pgl_recovered(struct pgl *l, int64_t from_ms, int64_t win_ms, double want,
                      int64_t deadline_ms);

long pgl_created(struct pgl *l);
long pgl_completed(struct pgl *l);
long pgl_unknowns(struct pgl *l);

/* Stops the producers (each finishes the key in hand), waits until no job is pending or
 * processing (deadline timeout_ms; orphaned leases come back through the leader's rescue),
 * stops the workers, lists the final state into the ledger and checks it: lost,
 * dup_created, completed_twice, overlap, unexpected all 0 and every acked key listed. */
struct lg_counts pgl_finish(struct pgl *l, const char *label, int64_t timeout_ms);
/* Stops the nodes still running (CHECKing a clean exit) and frees everything. */
void pgl_free(struct pgl *l);

/* libpq connection to the load's database as the cluster superuser (NULL on failure);
 * the caller PQfinish()es it. */
PGconn *pgl_pg(struct pgl *l);
/* One integer from sql on a connection of pgl_pg(); INT64_MIN on error. */
int64_t pgl_sql_int(PGconn *pc, const char *sql);

#endif
