/*
 * retry.h - when a failed attempt runs again, and when jobq gives up.
 * Pure: no I/O, no clock, no allocation. Called inside store transactions
 * (the SQLite backend registers retry_delay_ms as an SQL function).
 */
#ifndef JQ_RETRY_H
#define JQ_RETRY_H
#include <stdbool.h>
#include <stdint.h>

struct retry_policy {
    int64_t base_ms;   /* delay after the first failed attempt, before jitter */
    int64_t max_ms;    /* ceiling of any single delay */
};

/* Delay before the next attempt after failed attempt `attempt` (1-based):
 * min(max, base * 2^(attempt-1)), with equal jitter: half of it fixed, the
 * other half scaled by rnd (a uniform 32-bit draw). */
int64_t retry_delay_ms(const struct retry_policy *p, int attempt, uint32_t rnd);

/* True if a failure with these counts goes back to pending. */
bool retry_should_retry(int attempts, int max_attempts, bool retryable);

#endif
