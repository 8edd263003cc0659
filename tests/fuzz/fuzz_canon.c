/*
 * fuzz_canon.c - JSON parse (depth cap) + canonicaliser + hash (src/core/canon.c).
 * Properties: canonical text re-parses; canonicalising it again is a fixed point; the
 * hash of the value equals the hash of its canonical re-parse.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "core/canon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = json_parse((const char *)data, size);
    if (!v) return 0;
    char *c1 = canon_json(v);
    char h1[CANON_HASH_LEN + 1], h2[CANON_HASH_LEN + 1];
    if (c1 && canon_hash(v, h1)) {
        json_t *w = json_parse(c1, strlen(c1));
        if (!w) abort();                        /* canonical text must parse */
        char *c2 = canon_json(w);
        if (!c2 || strcmp(c1, c2)) abort();     /* fixed point */
        if (!canon_hash(w, h2) || strcmp(h1, h2)) abort();
        free(c2);
        json_decref(w);
    }
    free(c1);
    char *d = json_dump_compact(v);
    free(d);
    json_decref(v);
    return 0;
}
