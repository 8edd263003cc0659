/* retry.c - see retry.h. */
#include "core/retry.h"

int64_t retry_delay_ms(const struct retry_policy *p, int attempt, uint32_t rnd)
{
    if (attempt < 1)
        attempt = 1;
    int64_t d = p->base_ms;
    for (int i = 1; i < attempt && d < p->max_ms; i++)
        d *= 2;                     /* loop, not a shift: attempt may be large */
    if (d > p->max_ms)
        d = p->max_ms;
    int64_t half = d / 2;
    return d - half + (int64_t)(((uint64_t)half * rnd) >> 32);
}

bool retry_should_retry(int attempts, int max_attempts, bool retryable)
{
    return retryable && attempts < max_attempts;
}
