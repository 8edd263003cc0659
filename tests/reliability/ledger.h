/*
 * ledger.h - a Jepsen-style queue checker for the crash tests (RELIABILITY.md).
 *
 * Clients log every request they make with its client key and outcome
 * (ok / failed / unknown: a transport error or a 5xx, after which the client
 * retries with the same Idempotency-Key). After a final drain the test feeds
 * the server's final job list to ledger_final() and ledger_check() counts:
 *
 *   lost            a key with a 2xx create whose job is not completed at the end
 *   dup_created     one key -> more than one job (in replies or in the final list)
 *   completed_twice one job with successful completes under two different leases
 *   overlap         two claims of one job whose leases overlap in server time
 *   unexpected      a job nobody asked for, a reply that contradicts the final
 *                   state (a 2xx complete of a job that did not end completed, a
 *                   completed job with another key in its result ...)
 *   recovered       keys whose first outcome was unknown and that did end with
 *                   exactly one completed job (informational)
 *
 * Thread-safe; every call may come from any client thread.
 */
#ifndef JQ_LEDGER_H
#define JQ_LEDGER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum lg_outcome { LG_OK, LG_FAIL, LG_UNKNOWN };

struct ledger;

struct lg_counts {
    long keys;                /* client keys logged */
    long acked;               /* keys with a 2xx create */
    long jobs_final;          /* jobs in the final list */
    long completes_ok;        /* 2xx completes (replays included) */
    long claims;              /* claims logged */
    long unknowns;            /* requests whose outcome was unknown */
    long lost, dup_created, completed_twice, overlap, unexpected, recovered;
};

/* log_path: where every event is appended as a JSON line (NULL = no file). */
struct ledger *ledger_new(const char *log_path);
void ledger_free(struct ledger *l);

/* A create for key: outcome, HTTP status (0 = transport error), job id on 2xx. */
void ledger_create(struct ledger *l, const char *key, enum lg_outcome o, long status,
                   const char *job_id);
/* A claim reply: job, its lease, server time of the claim and of lease expiry (ms). */
void ledger_claim(struct ledger *l, const char *job_id, const char *lease, int64_t claimed_ms,
                  int64_t expires_ms);
/* A complete under lease: outcome and status; replayed = Idempotent-Replayed. */
void ledger_complete(struct ledger *l, const char *job_id, const char *lease, enum lg_outcome o,
                     long status, bool replayed);
/* The final state of one job after the drain: status and the key it carries
 * (from params), and the key echoed in its result (NULL if none). */
void ledger_final(struct ledger *l, const char *job_id, const char *status, const char *key,
                  const char *result_key);

/* Counts the anomalies; prints up to `detail` examples of each to out (may be NULL). */
struct lg_counts ledger_check(struct ledger *l, FILE *out, int detail);
void ledger_print(const struct lg_counts *c, FILE *out, const char *label);

#endif
