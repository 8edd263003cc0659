/*
 * cache.h - the optional shared cache (--cache redis://host:port; Redis or Valkey via
 * hiredis): cache-aside for GET /v1/jobs/{id} and GET /v1/stats, shared by every jobqd
 * node on the same Redis. No copies are kept in process, so a node's invalidation in
 * Redis is seen by all nodes at once; the ids are also published on the channel
 * jobq:invalidate for anything else that keeps copies.
 *
 * Correctness never depends on the cache: every call is NULL-safe (no --cache), a few
 * connections with 50 ms connect/command timeouts serve all threads, and when Redis is
 * down or errs the request runs uncached while the connection is retried at most once a
 * second. An invalidation that could not be sent marks the cache dirty: before serving
 * again it bumps a global generation that retires every entry.
 *
 * Keys: jq:job:{id} is a hash with one field per caller scope (u:{user} or * for the
 * unscoped roles), each "{tag} {expires_unix_s} {max_age} {etag} {body}"; jq:jobv:{id}
 * counts the job's invalidations and jq:gen the global ones; an entry is served only while
 * its tag still equals "{jobv}.{gen}" and it is not past its own expiry. jq:stats:{scope}
 * holds a stats document for 2 s.
 */
#ifndef JQ_CACHE_H
#define JQ_CACHE_H
#include <stdbool.h>
#include <stdint.h>

struct cache;

/* A redis://host:port URL (port defaults to 6379). NULL with a message on stderr if the
 * URL is malformed or jobqd was built without hiredis. Connects lazily. */
struct cache *cache_new(const char *url);
void cache_free(struct cache *c);                     /* NULL is a no-op */

enum { CACHE_TAG_MAX = 48, CACHE_ETAG_MAX = 40 };

/* One job reply. On a hit body (malloc'd), etag and max_age are set; on a miss tag holds
 * what cache_job_put needs to store the reply read after it. */
struct cache_job {
    char tag[CACHE_TAG_MAX];
    char etag[CACHE_ETAG_MAX];
    int max_age;
    char *body;
};

/* True on a hit. scope is the caller's (NULL: unscoped). */
bool cache_job_get(struct cache *c, const char *id, const char *scope, struct cache_job *e);
/* Stores the reply read after a miss (e->tag from that miss) for ttl_s seconds. */
void cache_job_put(struct cache *c, const char *id, const char *scope,
                   const struct cache_job *e, int ttl_s, int max_age, const char *etag,
                   const char *body);
/* Drops the entries of these jobs (all scopes, all nodes) and publishes the ids. */
void cache_drop_jobs(struct cache *c, const char *const *ids, int n);
/* Retires every job entry (writes whose ids are not known: bulk cancel by filter,
 * admin maintenance runs and clock moves). */
void cache_drop_all(struct cache *c);

/* A cached stats document (malloc'd) or NULL. */
char *cache_stats_get(struct cache *c, const char *scope);
void cache_stats_put(struct cache *c, const char *scope, const char *body, int ttl_s);

struct cache_counts {
    uint64_t hits, misses, errors;
    bool up;                     /* the last attempt reached Redis */
};
void cache_counts(struct cache *c, struct cache_counts *out);

#endif
