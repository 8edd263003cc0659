/*
 * fuzz_time.c - the RFC 3339 validator behind run_at / expires_at / since
 * (src/common/clock.c time_parse). Property: an accepted time formats and re-parses to
 * the same instant (so no impossible date is silently moved).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 128) return 0;
    char text[129];
    memcpy(text, data, size);
    text[size] = '\0';
    int64_t ms, ms2;
    if (!time_parse(text, &ms)) return 0;
    if (ms < 0 || ms > 253402300799999LL) return 0;   /* an offset moved it out of 1970-9999 */
    char out[TIME_STR_MAX];
    time_fmt(ms, out);
    if (!time_parse(out, &ms2) || ms2 != ms) abort();
    return 0;
}
