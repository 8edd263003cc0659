/*
 * stats_doc.h - the shape of the statistics document (docs/API.md), shared by
 * the backends: counts by status, per-queue / per-type entries, the p95 of a
 * log2 duration histogram, 60 minutes of throughput. Backends fetch the
 * numbers; these functions only build JSON.
 */
#ifndef JQ_STATS_DOC_H
#define JQ_STATS_DOC_H
#include <jansson.h>
#include <stdint.h>

enum { STATS_HIST_BUCKETS = 32, STATS_MINUTES = 60 };

/* {"pending":0,…,"total":0} */
json_t *stats_zero_counts(void);
/* Adds n to counts[status] and to counts.total. */
void    stats_add_count(json_t *counts, const char *status, json_int_t n);
/* The entry of name in an object of objects, made with zero counts on first use. */
json_t *stats_entry(json_t *map, const char *name);
/* p95 of a log2 histogram (bucket b holds [2^(b-1), 2^b) ms), interpolated in its bucket. */
double  stats_p95(const int64_t h[STATS_HIST_BUCKETS]);
/* Sets types[type].p95_duration_ms from a histogram (nothing for type ""). */
void    stats_put_p95(json_t *types, const char *type, const int64_t h[STATS_HIST_BUCKETS]);
/* {"a":{…},"b":{…}} -> [{"<name>":"a",…},…]; steals map. */
json_t *stats_as_list(json_t *map, const char *name);
/* Types seen only in counters still show every member. */
void    stats_type_defaults(json_t *types);
/* 60 entries {minute, completed, failed} from per-minute arrays starting at first_minute. */
void    stats_throughput(json_t *out, int64_t first_minute, const int64_t *done,
                         const int64_t *failed);
/* The admin part of the document: oldest_pending_age_ms (oldest 0: none), queues, types
 * and throughput; steals queues, types and tp. */
void    stats_put_global(json_t *doc, int64_t now_ms, int64_t oldest, json_t *queues,
                         json_t *types, json_t *tp);

#endif
