/*
 * fuzz_contains.c - json_contains (src/common/json.c): input = doc NUL query. Properties:
 * every value contains itself; containment never crashes on any pair.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nul = memchr(s, '\0', size);
    size_t n1 = nul ? (size_t)(nul - s) : size;
    json_t *doc = json_parse(s, n1);
    json_t *q = nul ? json_parse(nul + 1, size - n1 - 1) : NULL;
    if (doc && !json_contains(doc, doc)) abort();
    if (q && !json_contains(q, q)) abort();
    if (doc && q) (void)json_contains(doc, q);
    json_decref(doc);
    json_decref(q);
    return 0;
}
