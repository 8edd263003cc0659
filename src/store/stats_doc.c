/* stats_doc.c - see stats_doc.h. */
#include "store/stats_doc.h"

#include <math.h>

#include "common/clock.h"
#include "core/job.h"

enum { MINUTE_MS = 60000 };

json_t *stats_zero_counts(void)
{
    json_t *o = json_object();
    for (int s = 0; s < JOB__NSTATUS; s++)
        json_object_set_new(o, job_status_name(s), json_integer(0));
    json_object_set_new(o, "total", json_integer(0));
    return o;
}

void stats_add_count(json_t *counts, const char *status, json_int_t n)
{
    json_t *v = json_object_get(counts, status), *t = json_object_get(counts, "total");
    if (v)
        json_integer_set(v, json_integer_value(v) + n);
    json_integer_set(t, json_integer_value(t) + n);
}

json_t *stats_entry(json_t *map, const char *name)
{
    json_t *e = json_object_get(map, name);
    if (!e) {
        e = stats_zero_counts();
        json_object_set_new(map, name, e);
    }
    return e;
}

double stats_p95(const int64_t h[STATS_HIST_BUCKETS])
{
    int64_t total = 0, seen = 0;
    for (int b = 0; b < STATS_HIST_BUCKETS; b++)
        total += h[b];
    double want = 0.95 * (double)total;
    for (int b = 0; b < STATS_HIST_BUCKETS; b++) {
        if (seen + h[b] >= want && h[b] > 0) {
            double lo = b ? ldexp(1, b - 1) : 0, hi = b ? ldexp(1, b) : 0;
            return lo + (hi - lo) * ((want - (double)seen) / (double)h[b]);
        }
        seen += h[b];
    }
    return 0;
}

void stats_put_p95(json_t *types, const char *type, const int64_t h[STATS_HIST_BUCKETS])
{
    if (type[0])
        json_object_set_new(stats_entry(types, type), "p95_duration_ms",
                            json_real(round(stats_p95(h))));
}

json_t *stats_as_list(json_t *map, const char *name)
{
    json_t *arr = json_array(), *v;
    const char *k;
    json_object_foreach(map, k, v) {
        json_object_set_new(v, name, json_string(k));
        json_array_append(arr, v);
    }
    json_decref(map);
    return arr;
}

void stats_type_defaults(json_t *types)
{
    const char *k;
    json_t *t;
    json_object_foreach(types, k, t) {
        if (!json_object_get(t, "completed_last_hour")) {
            json_object_set_new(t, "completed_last_hour", json_integer(0));
            json_object_set_new(t, "failed_last_hour", json_integer(0));
            json_object_set_new(t, "avg_duration_ms", json_null());
        }
        if (!json_object_get(t, "p95_duration_ms"))
            json_object_set_new(t, "p95_duration_ms", json_null());
    }
}

void stats_throughput(json_t *out, int64_t first, const int64_t *done, const int64_t *failed)
{
    for (int i = 0; i < STATS_MINUTES; i++) {
        char t[TIME_STR_MAX];
        time_fmt((first + i) * MINUTE_MS, t);
        json_array_append_new(out, json_pack("{s:s, s:I, s:I}", "minute", t, "completed",
                                             (json_int_t)done[i], "failed", (json_int_t)failed[i]));
    }
}

void stats_put_global(json_t *doc, int64_t now_ms, int64_t oldest, json_t *queues,
                      json_t *types, json_t *tp)
{
    json_object_set_new(doc, "oldest_pending_age_ms",
                        oldest ? json_integer(now_ms - oldest) : json_null());
    stats_type_defaults(types);
    json_object_set_new(doc, "queues", stats_as_list(queues, "queue"));
    json_object_set_new(doc, "types", stats_as_list(types, "type"));
    json_object_set_new(doc, "throughput", tp);
}
