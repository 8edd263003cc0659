/* cache.c - the shared Redis/Valkey cache (see cache.h). */
#include "server/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef JOBQ_HAVE_HIREDIS
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "common/clock.h"
#include "common/log.h"

enum {
    SLOTS = 4,                   /* connections; a request holds one for one round trip */
    TIMEOUT_MS = 50,             /* connect and command */
    RETRY_MS = 1000,             /* a dead cache is tried again at most this often */
    VER_TTL_S = 7200,            /* outlives every entry (3600 s at most) */
    DROP_MAX = 256,              /* ids per pipeline */
    KEY_MAX = 128,               /* jq:job:{id} */
    FIELD_MAX = 512,             /* u:{user} */
};

struct slot {
    pthread_mutex_t mu;
    redisContext *r;
    uint64_t epoch;              /* c->epoch when r was dialled */
};

struct cache {
    char host[256];
    int port;
    struct slot slots[SLOTS];
    atomic_uint_fast64_t rr;
    atomic_uint_fast64_t epoch;      /* bumped when the cache is found down: redial all */
    atomic_int_fast64_t retry_at;    /* monotonic ms of the next try while down; 0 = up */
    atomic_uint_fast64_t dirty;      /* invalidations lost ... */
    atomic_uint_fast64_t clean;      /* ... and how many of them a generation bump covers */
    atomic_bool up;
    atomic_uint_fast64_t hits, misses, errors;
};

struct cache *cache_new(const char *url)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8) == 0)
        p += 8;
    else if (strncmp(p, "valkey://", 9) == 0)
        p += 9;
    else {
        fprintf(stderr, "jobqd: --cache wants redis://host:port, not '%s'\n", url);
        return NULL;
    }
    const char *colon = strrchr(p, ':');
    size_t hn = colon ? (size_t)(colon - p) : strlen(p);
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 6379;
    if (hn == 0 || hn >= 256 || (colon && (*end != '\0' && *end != '/')) || port < 1 ||
        port > 65535) {
        fprintf(stderr, "jobqd: --cache wants redis://host:port, not '%s'\n", url);
        return NULL;
    }
    struct cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    memcpy(c->host, p, hn);
    c->port = (int)port;
    for (int i = 0; i < SLOTS; i++)
        pthread_mutex_init(&c->slots[i].mu, NULL);
    return c;
}

void cache_free(struct cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < SLOTS; i++) {
        if (c->slots[i].r)
            redisFree(c->slots[i].r);
        pthread_mutex_destroy(&c->slots[i].mu);
    }
    free(c);
}

static redisContext *dial(struct cache *c)
{
    struct timeval tv = {0, TIMEOUT_MS * 1000};
    redisContext *r = redisConnectWithTimeout(c->host, c->port, tv);
    if (r && !r->err && redisSetTimeout(r, tv) == REDIS_OK)
        return r;
    if (r)
        redisFree(r);
    return NULL;
}

/* The connection of s failed: drop it, count, and go down for RETRY_MS. Unlocks s. */
static void fail(struct cache *c, struct slot *s, const char *what)
{
    char why[128];
    snprintf(why, sizeof why, "%s", s->r && s->r->errstr[0] ? s->r->errstr : "no connection");
    if (s->r)
        redisFree(s->r);
    s->r = NULL;
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&c->errors, 1);
    atomic_fetch_add(&c->epoch, 1);
    int_fast64_t zero = 0;
    bool was_up = atomic_compare_exchange_strong(&c->retry_at, &zero,
                                                 clock_mono_ms() + RETRY_MS);
    if (!was_up)
        atomic_store(&c->retry_at, clock_mono_ms() + RETRY_MS);
    if (atomic_exchange(&c->up, false) || was_up)
        log_warn("cache %s:%d unavailable (%s: %s): serving uncached, retrying every %d ms",
                 c->host, c->port, what, why, RETRY_MS);
}

/* One command on s; NULL (and s failed, unlocked) on a transport error. */
static redisReply *cmd(struct cache *c, struct slot *s, int argc, const char **argv,
                       const size_t *lens)
{
    redisReply *rep = redisCommandArgv(s->r, argc, argv, lens);
    if (!rep)
        fail(c, s, argv[0]);
    return rep;
}

/* Retires every entry: a new generation. False (s failed, unlocked) on error. */
static bool bump_gen(struct cache *c, struct slot *s)
{
    uint64_t seen = atomic_load(&c->dirty);
    const char *argv[] = {"INCR", "jq:gen"};
    redisReply *rep = cmd(c, s, 2, argv, NULL);
    if (!rep)
        return false;
    bool ok = rep->type == REDIS_REPLY_INTEGER;
    freeReplyObject(rep);
    if (!ok) {
        fail(c, s, "INCR jq:gen");
        return false;
    }
    atomic_store(&c->clean, seen);
    return true;
}

/* A locked slot with a live connection, or NULL: down (not yet time to retry) or the
 * retry failed. Only one request at a time makes the retry. */
static struct slot *acquire(struct cache *c)
{
    int_fast64_t ra = atomic_load(&c->retry_at);
    bool probe = false;
    if (ra) {
        int64_t now = clock_mono_ms();
        if (now < ra || !atomic_compare_exchange_strong(&c->retry_at, &ra, now + RETRY_MS))
            return NULL;
        probe = true;
    }
    struct slot *s = &c->slots[atomic_fetch_add(&c->rr, 1) % SLOTS];
    pthread_mutex_lock(&s->mu);
    uint64_t ep = atomic_load(&c->epoch);
    if (s->r && s->epoch != ep) {       /* dialled before the cache went down: stale */
        redisFree(s->r);
        s->r = NULL;
    }
    if (!s->r) {
        s->r = dial(c);
        s->epoch = ep;
        if (!s->r) {
            fail(c, s, "connect");
            return NULL;
        }
    }
    if (atomic_load(&c->dirty) != atomic_load(&c->clean) && !bump_gen(c, s))
        return NULL;
    if (probe)
        atomic_store(&c->retry_at, 0);
    if (!atomic_exchange(&c->up, true))
        log_info("cache %s:%d connected", c->host, c->port);
    return s;
}

static void release(struct slot *s)
{
    pthread_mutex_unlock(&s->mu);
}

/* Runs n pipelined commands; replies in out (caller frees). False (s failed) on error. */
static bool pipeline(struct cache *c, struct slot *s, int n, int *argc, const char ***argv,
                     const size_t **lens, redisReply **out)
{
    for (int i = 0; i < n; i++)
        out[i] = NULL;
    for (int i = 0; i < n; i++)
        if (redisAppendCommandArgv(s->r, argc[i], argv[i], lens ? lens[i] : NULL) != REDIS_OK) {
            fail(c, s, argv[i][0]);
            return false;
        }
    for (int i = 0; i < n; i++) {
        void *rep = NULL;
        if (redisGetReply(s->r, &rep) != REDIS_OK || !rep) {
            for (int k = 0; k < i; k++)
                freeReplyObject(out[k]);
            fail(c, s, argv[i][0]);
            return false;
        }
        out[i] = rep;
    }
    return true;
}

/* The hash field of a scope; NULL if it does not fit (then the cache is not used: a
 * cut-off user id could name another user's entries). */
static const char *scope_field(const char *scope, char *buf, size_t cap)
{
    if (!scope)
        return "*";
    return (size_t)snprintf(buf, cap, "u:%s", scope) < cap ? buf : NULL;
}

static const char *str_or(const redisReply *r, const char *def)
{
    return r && r->type == REDIS_REPLY_STRING ? r->str
         : r && r->type == REDIS_REPLY_INTEGER ? NULL : def;
}

/* Parses "{tag} {exp} {max_age} {etag} {body}" into e if its tag and expiry hold. */
static bool entry_valid(const char *v, size_t len, const char *tag, struct cache_job *e)
{
    size_t tn = strlen(tag);
    if (len <= tn || memcmp(v, tag, tn) != 0 || v[tn] != ' ')
        return false;
    char *end;
    long long exp = strtoll(v + tn + 1, &end, 10);
    if (*end != ' ' || exp < (long long)time(NULL))
        return false;
    long age = strtol(end + 1, &end, 10);
    const char *etag = end + 1, *sp = *end == ' ' ? strchr(etag, ' ') : NULL;
    if (!sp || sp - etag >= CACHE_ETAG_MAX)
        return false;
    memcpy(e->etag, etag, (size_t)(sp - etag));
    e->etag[sp - etag] = '\0';
    e->max_age = (int)age;
    e->body = strndup(sp + 1, len - (size_t)(sp + 1 - v));
    return e->body != NULL;
}

bool cache_job_get(struct cache *c, const char *id, const char *scope, struct cache_job *e)
{
    memset(e, 0, sizeof *e);
    if (!c)
        return false;
    char key[KEY_MAX], ver[KEY_MAX], fbuf[FIELD_MAX];
    const char *field = scope_field(scope, fbuf, sizeof fbuf);
    struct slot *s = field ? acquire(c) : NULL;
    if (!s) {
        atomic_fetch_add(&c->misses, 1);
        return false;
    }
    snprintf(key, sizeof key, "jq:job:%s", id);
    snprintf(ver, sizeof ver, "jq:jobv:%s", id);
    const char *a0[] = {"HGET", key, field};
    const char *a1[] = {"GET", ver}, *a2[] = {"GET", "jq:gen"};
    const char **argv[] = {a0, a1, a2};
    int argc[] = {3, 2, 2};
    redisReply *rep[3];
    if (!pipeline(c, s, 3, argc, argv, NULL, rep)) {
        atomic_fetch_add(&c->misses, 1);
        return false;
    }
    release(s);
    const char *v = str_or(rep[1], "0"), *g = str_or(rep[2], "0");
    bool hit = false;
    if (!v || !g || rep[0]->type == REDIS_REPLY_ERROR) {
        atomic_fetch_add(&c->errors, 1);
    } else {
        snprintf(e->tag, sizeof e->tag, "%.20s.%.20s", v, g);
        hit = rep[0]->type == REDIS_REPLY_STRING &&
              entry_valid(rep[0]->str, rep[0]->len, e->tag, e);
    }
    for (int i = 0; i < 3; i++)
        freeReplyObject(rep[i]);
    atomic_fetch_add(hit ? &c->hits : &c->misses, 1);
    return hit;
}

void cache_job_put(struct cache *c, const char *id, const char *scope,
                   const struct cache_job *e, int ttl_s, int max_age, const char *etag,
                   const char *body)
{
    char fbuf[FIELD_MAX];
    const char *field = scope_field(scope, fbuf, sizeof fbuf);
    if (!c || !e->tag[0] || ttl_s < 1 || !body || !field)
        return;
    struct slot *s = acquire(c);
    if (!s)
        return;
    size_t n = strlen(body), cap = n + CACHE_TAG_MAX + CACHE_ETAG_MAX + 64;
    char *val = malloc(cap), key[KEY_MAX], ttl[24];
    if (!val) {
        release(s);
        return;
    }
    int h = snprintf(val, cap, "%s %lld %d %s ", e->tag, (long long)time(NULL) + ttl_s,
                     max_age, etag);
    memcpy(val + h, body, n + 1);
    snprintf(key, sizeof key, "jq:job:%s", id);
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    const char *a0[] = {"HSET", key, field, val};
    size_t l0[] = {4, strlen(key), strlen(a0[2]), (size_t)h + n};
    const char *a1[] = {"EXPIRE", key, ttl};
    size_t l1[] = {6, strlen(key), strlen(ttl)};
    const char **argv[] = {a0, a1};
    const size_t *lens[] = {l0, l1};
    int argc[] = {4, 3};
    redisReply *rep[2];
    if (pipeline(c, s, 2, argc, argv, lens, rep)) {
        release(s);
        if (rep[0]->type == REDIS_REPLY_ERROR || rep[1]->type == REDIS_REPLY_ERROR)
            atomic_fetch_add(&c->errors, 1);
        freeReplyObject(rep[0]);
        freeReplyObject(rep[1]);
    }
    free(val);
}

/* An invalidation that did not reach Redis: retire everything before serving again. */
static void lost(struct cache *c)
{
    atomic_fetch_add(&c->dirty, 1);
}

static void drop_some(struct cache *c, const char *const *ids, int n)
{
    struct slot *s = acquire(c);
    if (!s) {
        lost(c);
        return;
    }
    enum { PER = 3 };
    int nc = n * PER + 1;
    char (*keys)[2][KEY_MAX] = calloc((size_t)n, sizeof *keys);
    const char *(*args)[3] = calloc((size_t)nc, sizeof *args);
    const char ***argv = calloc((size_t)nc, sizeof *argv);
    int *argc = calloc((size_t)nc, sizeof *argc);
    redisReply **rep = calloc((size_t)nc, sizeof *rep);
    char vttl[16];
    snprintf(vttl, sizeof vttl, "%d", VER_TTL_S);
    size_t plen = 0;
    for (int i = 0; i < n; i++)
        plen += strlen(ids[i]) + 1;
    char *payload = calloc(1, plen + 1);
    if (!keys || !args || !argv || !argc || !rep || !payload) {
        release(s);
        lost(c);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        snprintf(keys[i][0], KEY_MAX, "jq:jobv:%s", ids[i]);
        snprintf(keys[i][1], KEY_MAX, "jq:job:%s", ids[i]);
        int k = i * PER;
        args[k][0] = "INCR", args[k][1] = keys[i][0], argc[k] = 2;
        args[k + 1][0] = "EXPIRE", args[k + 1][1] = keys[i][0], args[k + 1][2] = vttl;
        argc[k + 1] = 3;
        args[k + 2][0] = "DEL", args[k + 2][1] = keys[i][1], argc[k + 2] = 2;
        strcat(payload, ids[i]);
        if (i + 1 < n)
            strcat(payload, " ");
    }
    args[nc - 1][0] = "PUBLISH", args[nc - 1][1] = "jobq:invalidate";
    args[nc - 1][2] = payload, argc[nc - 1] = 3;
    for (int i = 0; i < nc; i++)
        argv[i] = args[i];
    if (!pipeline(c, s, nc, argc, argv, NULL, rep)) {
        lost(c);
        goto out;
    }
    release(s);
    bool err = false;
    for (int i = 0; i < nc; i++) {
        err |= rep[i]->type == REDIS_REPLY_ERROR && i != nc - 1;
        freeReplyObject(rep[i]);
    }
    if (err) {
        atomic_fetch_add(&c->errors, 1);
        lost(c);
    }
out:
    free(payload);
    free(rep);
    free(argc);
    free(argv);
    free(args);
    free(keys);
}

void cache_drop_jobs(struct cache *c, const char *const *ids, int n)
{
    for (int i = 0; c && i < n; i += DROP_MAX)
        drop_some(c, ids + i, n - i < DROP_MAX ? n - i : DROP_MAX);
}

void cache_drop_all(struct cache *c)
{
    if (!c)
        return;
    lost(c);                 /* the next acquire bumps the generation ... */
    struct slot *s = acquire(c);
    if (s)                   /* ... which is this one, unless the cache is down */
        release(s);
}

char *cache_stats_get(struct cache *c, const char *scope)
{
    if (!c)
        return NULL;
    char key[FIELD_MAX + 16], fbuf[FIELD_MAX];
    const char *field = scope_field(scope, fbuf, sizeof fbuf);
    struct slot *s = field ? acquire(c) : NULL;
    if (!s) {
        atomic_fetch_add(&c->misses, 1);
        return NULL;
    }
    snprintf(key, sizeof key, "jq:stats:%s", field);
    const char *argv[] = {"GET", key};
    redisReply *rep = cmd(c, s, 2, argv, NULL);
    if (!rep) {
        atomic_fetch_add(&c->misses, 1);
        return NULL;
    }
    release(s);
    char *out = rep->type == REDIS_REPLY_STRING ? strndup(rep->str, rep->len) : NULL;
    if (rep->type == REDIS_REPLY_ERROR)
        atomic_fetch_add(&c->errors, 1);
    freeReplyObject(rep);
    atomic_fetch_add(out ? &c->hits : &c->misses, 1);
    return out;
}

void cache_stats_put(struct cache *c, const char *scope, const char *body, int ttl_s)
{
    char key[FIELD_MAX + 16], fbuf[FIELD_MAX], ttl[24];
    const char *field = scope_field(scope, fbuf, sizeof fbuf);
    if (!c || !body || ttl_s < 1 || !field)
        return;
    struct slot *s = acquire(c);
    if (!s)
        return;
    snprintf(key, sizeof key, "jq:stats:%s", field);
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    const char *argv[] = {"SET", key, body, "EX", ttl};
    size_t lens[] = {3, strlen(key), strlen(body), 2, strlen(ttl)};
    redisReply *rep = cmd(c, s, 5, argv, lens);
    if (!rep)
        return;
    release(s);
    if (rep->type == REDIS_REPLY_ERROR)
        atomic_fetch_add(&c->errors, 1);
    freeReplyObject(rep);
}

void cache_counts(struct cache *c, struct cache_counts *out)
{
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    out->hits = atomic_load(&c->hits);
    out->misses = atomic_load(&c->misses);
    out->errors = atomic_load(&c->errors);
    out->up = atomic_load(&c->up);
}

#else   /* built without hiredis: --cache is refused; every call is a no-op */

struct cache { int unused; };

struct cache *cache_new(const char *url)
{
    fprintf(stderr, "jobqd: --cache %s: this jobqd was built without hiredis\n", url);
    return NULL;
}

void cache_free(struct cache *c)
{
    (void)c;
}

bool cache_job_get(struct cache *c, const char *id, const char *scope, struct cache_job *e)
{
    (void)c, (void)id, (void)scope;
    memset(e, 0, sizeof *e);
    return false;
}

void cache_job_put(struct cache *c, const char *id, const char *scope,
                   const struct cache_job *e, int ttl_s, int max_age, const char *etag,
                   const char *body)
{
    (void)c, (void)id, (void)scope, (void)e, (void)ttl_s, (void)max_age, (void)etag,
        (void)body;
}

void cache_drop_jobs(struct cache *c, const char *const *ids, int n)
{
    (void)c, (void)ids, (void)n;
}

void cache_drop_all(struct cache *c)
{
    (void)c;
}

char *cache_stats_get(struct cache *c, const char *scope)
{
    (void)c, (void)scope;
    return NULL;
}

void cache_stats_put(struct cache *c, const char *scope, const char *body, int ttl_s)
{
    (void)c, (void)scope, (void)body, (void)ttl_s;
}

void cache_counts(struct cache *c, struct cache_counts *out)
{
    (void)c;
    memset(out, 0, sizeof *out);
}

#endif
