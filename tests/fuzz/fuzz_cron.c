/*
 * fuzz_cron.c - cron_parse + cron_next (src/core/cron.c). Property: a parsed expression's
 * next fire time matches it and lies strictly after the start.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256) return 0;
    char text[257], why[128];
    memcpy(text, data, size);
    text[size] = '\0';
    struct cron c;
    if (!cron_parse(text, &c, why, sizeof why)) return 0;
    struct naive after = {2026, 3, 29, 1, 59}, next;
    if (size > 0) after.minute = data[0] % 60;
    if (cron_next(&c, &after, &next)) {
        if (!cron_matches(&c, &next)) abort();
        long a = ((((long)after.year * 13 + after.month) * 32 + after.day) * 24 + after.hour) * 60 + after.minute;
        long b = ((((long)next.year * 13 + next.month) * 32 + next.day) * 24 + next.hour) * 60 + next.minute;
        if (b <= a) abort();
    }
    return 0;
}
