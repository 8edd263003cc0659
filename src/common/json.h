/*
 * json.h - thin helpers over jansson: a depth check run before parsing (so
 * hostile nesting never reaches a recursive parser), parse, compact dump.
 */
#ifndef JQ_JSON_H
#define JQ_JSON_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum { JSON_DEPTH_MAX = 32 };   /* deeper is an attack on recursive code, never real data */

/* True if no array/object nests deeper than max (strings are skipped). */
bool json_depth_ok(const char *buf, size_t len, int max);
/* Parses buf as one JSON value with the depth cap; NULL if invalid. */
json_t *json_parse(const char *buf, size_t len);
/* Same; on NULL, *oom says whether memory ran out (the input may be fine). A value that
 * jansson returned although one of its allocations failed is dropped (NULL, *oom). */
json_t *json_parse_oom(const char *buf, size_t len, bool *oom);
/* jansson's allocations through alloc (NULL: malloc), failures remembered per thread:
 * jansson drops a member it could not allocate without a word, and reports some
 * allocation failures while parsing as syntax errors. jobqd installs it at start. */
void json_track_oom(void *(*alloc)(size_t));
/* Whether a jansson allocation failed on this thread since the last call; clears it. */
bool json_oom_take(void);
/* PostgreSQL jsonb containment (doc @> query): objects contain objects whose
 * every key is present and contained; arrays contain arrays each of whose
 * elements is contained in some element; scalars are equal (numbers by
 * value, so 1 = 1.0). */
bool json_contains(const json_t *doc, const json_t *query);
/* Compact serialization with sorted keys off; caller frees. NULL for NULL. */
char *json_dump_compact(const json_t *v);

#endif
