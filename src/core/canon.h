/*
 * canon.h - canonical JSON and its hash, the identity of a job's params for
 * dedup and the result cache. Canonical form: object keys sorted at every
 * depth, integral numbers written as integers (1, 1.0 and 1e0 are one
 * number), strings re-escaped from their decoded value ("\u0061" is "a"),
 * no whitespace. Pure: no I/O.
 */
#ifndef JQ_CANON_H
#define JQ_CANON_H
#include <jansson.h>

enum { CANON_HASH_LEN = 32 };    /* hex chars of a 128-bit hash */

/* Malloc'd canonical text of v; caller frees. NULL on allocation failure. */
char *canon_json(const json_t *v);
/* Hex XXH3-128 of the canonical text of v; false on allocation failure. */
int canon_hash(const json_t *v, char out[CANON_HASH_LEN + 1]);

#endif
