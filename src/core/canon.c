/* canon.c - see canon.h. */
#include "core/canon.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* A deep copy with integral reals turned into integers; jansson's
 * JSON_SORT_KEYS then gives the canonical text. */
static json_t *normalise(const json_t *v)
{
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 9007199254740992.0)   /* 2^53: exact as a double */
            return json_integer((json_int_t)d);
        return json_real(d);
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
            json_array_append_new(a, normalise(x));
        return a;
    }
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
            json_object_set_new(o, k, normalise(x));
        return o;
    }
    return json_deep_copy(v);
}

char *canon_json(const json_t *v)
{
    json_t *n = normalise(v);
    char *s = n ? json_dumps(n, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY |
                                    JSON_REAL_PRECISION(17)) : NULL;
    json_decref(n);
    return s;
}

int canon_hash(const json_t *v, char out[CANON_HASH_LEN + 1])
{
    char *s = canon_json(v);
    if (!s)
        return 0;
    XXH128_hash_t h = XXH3_128bits(s, strlen(s));
    free(s);
    snprintf(out, CANON_HASH_LEN + 1, "%016llx%016llx", (unsigned long long)h.high64,
             (unsigned long long)h.low64);
    return 1;
}
