/* ledger.c - the queue checker (see ledger.h): append-only vectors, sorted and scanned
 * once at check time. */
#include "ledger.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { LG_KEY = 96, LG_ID = 64 };

struct ev_create { char key[LG_KEY]; enum lg_outcome o; long status; char id[LG_ID]; long seq; };
struct ev_claim { char id[LG_ID]; char lease[LG_ID]; int64_t from, to; };
struct ev_done { char id[LG_ID]; char lease[LG_ID]; enum lg_outcome o; long status; bool replayed; };
struct ev_final { char id[LG_ID]; char status[16]; char key[LG_KEY]; char rkey[LG_KEY]; };

#define VEC(T) struct { T *v; size_t n, cap; }
#define PUSH(vec, item) do {                                                     \
        if ((vec).n == (vec).cap) {                                              \
            (vec).cap = (vec).cap ? (vec).cap * 2 : 1024;                        \
            (vec).v = realloc((vec).v, (vec).cap * sizeof *(vec).v);             \
            if (!(vec).v) abort();                                               \
        }                                                                        \
        (vec).v[(vec).n++] = (item);                                             \
    } while (0)

struct ledger {
    pthread_mutex_t mu;
    FILE *log;
    long seq;
    VEC(struct ev_create) creates;
    VEC(struct ev_claim) claims;
    VEC(struct ev_done) dones;
    VEC(struct ev_final) finals;
};

static const char *oname(enum lg_outcome o)
{
    return o == LG_OK ? "ok" : o == LG_FAIL ? "fail" : "unknown";
}

static void cpy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

struct ledger *ledger_new(const char *log_path)
{
    struct ledger *l = calloc(1, sizeof *l);
    if (!l) abort();
    pthread_mutex_init(&l->mu, NULL);
    if (log_path) l->log = fopen(log_path, "w");
    return l;
}

void ledger_free(struct ledger *l)
{
    if (!l) return;
    if (l->log) fclose(l->log);
    free(l->creates.v);
    free(l->claims.v);
    free(l->dones.v);
    free(l->finals.v);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void ledger_create(struct ledger *l, const char *key, enum lg_outcome o, long status,
                   const char *job_id)
{
    struct ev_create e = { .o = o, .status = status };
    cpy(e.key, sizeof e.key, key);
    cpy(e.id, sizeof e.id, job_id);
    pthread_mutex_lock(&l->mu);
    e.seq = l->seq++;
    PUSH(l->creates, e);
    if (l->log)
        fprintf(l->log, "{\"ev\":\"create\",\"key\":\"%s\",\"outcome\":\"%s\",\"status\":%ld,"
                "\"id\":\"%s\"}\n", e.key, oname(o), status, e.id);
    pthread_mutex_unlock(&l->mu);
}

void ledger_claim(struct ledger *l, const char *job_id, const char *lease, int64_t claimed_ms,
                  int64_t expires_ms)
{
    struct ev_claim e = { .from = claimed_ms, .to = expires_ms };
    cpy(e.id, sizeof e.id, job_id);
    cpy(e.lease, sizeof e.lease, lease);
    pthread_mutex_lock(&l->mu);
    PUSH(l->claims, e);
    if (l->log)
        fprintf(l->log, "{\"ev\":\"claim\",\"id\":\"%s\",\"lease\":\"%s\",\"from\":%" PRId64
                ",\"to\":%" PRId64 "}\n", e.id, e.lease, e.from, e.to);
    pthread_mutex_unlock(&l->mu);
}

void ledger_complete(struct ledger *l, const char *job_id, const char *lease, enum lg_outcome o,
                     long status, bool replayed)
{
    struct ev_done e = { .o = o, .status = status, .replayed = replayed };
    cpy(e.id, sizeof e.id, job_id);
    cpy(e.lease, sizeof e.lease, lease);
    pthread_mutex_lock(&l->mu);
    PUSH(l->dones, e);
    if (l->log)
        fprintf(l->log, "{\"ev\":\"complete\",\"id\":\"%s\",\"lease\":\"%s\",\"outcome\":\"%s\","
                "\"status\":%ld,\"replayed\":%s}\n", e.id, e.lease, oname(o), status,
                replayed ? "true" : "false");
    pthread_mutex_unlock(&l->mu);
}

void ledger_final(struct ledger *l, const char *job_id, const char *status, const char *key,
                  const char *result_key)
{
    struct ev_final e;
    cpy(e.id, sizeof e.id, job_id);
    cpy(e.status, sizeof e.status, status);
    cpy(e.key, sizeof e.key, key);
    cpy(e.rkey, sizeof e.rkey, result_key);
    pthread_mutex_lock(&l->mu);
    PUSH(l->finals, e);
    if (l->log)
        fprintf(l->log, "{\"ev\":\"final\",\"id\":\"%s\",\"status\":\"%s\",\"key\":\"%s\","
                "\"result_key\":\"%s\"}\n", e.id, e.status, e.key, e.rkey);
    pthread_mutex_unlock(&l->mu);
}

/* --- check --- */

static int by_create_key(const void *a, const void *b)
{
    const struct ev_create *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static int by_claim(const void *a, const void *b)
{
    const struct ev_claim *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->from > y->from) - (x->from < y->from);
}

static int by_done(const void *a, const void *b)
{
    const struct ev_done *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : strcmp(x->lease, y->lease);
}

static int by_final_id(const void *a, const void *b)
{
    return strcmp(((const struct ev_final *)a)->id, ((const struct ev_final *)b)->id);
}

static int by_final_key(const void *a, const void *b)
{
    const struct ev_final *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->id, y->id);
}

static const struct ev_final *find_final(struct ev_final *v, size_t n, const char *id)
{
    struct ev_final k;
    cpy(k.id, sizeof k.id, id);
    return bsearch(&k, v, n, sizeof *v, by_final_id);
}

/* Was job id completed (2xx) under lease? dones must be sorted by_done. */
static bool done_ok(struct ledger *l, const char *id, const char *lease)
{
    struct ev_done k = { 0 };
    cpy(k.id, sizeof k.id, id);
    cpy(k.lease, sizeof k.lease, lease);
    size_t lo = 0, hi = l->dones.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (by_done(&l->dones.v[mid], &k) < 0) lo = mid + 1; else hi = mid;
    }
    for (; lo < l->dones.n && !by_done(&l->dones.v[lo], &k); lo++)
        if (l->dones.v[lo].o == LG_OK) return true;
    return false;
}

#define NOTE(counter, ...) do {                                                  \
        if (out && (counter) < detail) { fprintf(out, "  ledger: " __VA_ARGS__); fputc('\n', out); } \
        (counter)++;                                                             \
    } while (0)

struct lg_counts ledger_check(struct ledger *l, FILE *out, int detail)
{
    struct lg_counts c = { 0 };
    pthread_mutex_lock(&l->mu);
    if (l->log) fflush(l->log);
    /* (qsort of a NULL array is undefined even for 0 elements: UBSan says so) */
    if (l->creates.n) qsort(l->creates.v, l->creates.n, sizeof *l->creates.v, by_create_key);
    if (l->claims.n) qsort(l->claims.v, l->claims.n, sizeof *l->claims.v, by_claim);
    if (l->dones.n) qsort(l->dones.v, l->dones.n, sizeof *l->dones.v, by_done);
    size_t nf = l->finals.n;
    struct ev_final *byid = malloc((nf + 1) * sizeof *byid), *bykey = malloc((nf + 1) * sizeof *bykey);
    if (!byid || !bykey) abort();
    if (nf) {
        memcpy(byid, l->finals.v, nf * sizeof *byid);
        memcpy(bykey, l->finals.v, nf * sizeof *bykey);
    }
    qsort(byid, nf, sizeof *byid, by_final_id);
    qsort(bykey, nf, sizeof *bykey, by_final_key);
    c.jobs_final = (long)nf;
    c.claims = (long)l->claims.n;

    /* per key: creates (replies) against the final list */
    for (size_t i = 0; i < l->creates.n;) {
        size_t j = i;
        const char *key = l->creates.v[i].key, *first_id = NULL;
        bool acked = false, first_unknown = l->creates.v[i].o == LG_UNKNOWN;
        while (j < l->creates.n && !strcmp(l->creates.v[j].key, key)) {
            struct ev_create *e = &l->creates.v[j++];
            if (e->o == LG_UNKNOWN) c.unknowns++;
            if (e->o != LG_OK) continue;
            acked = true;
            if (!first_id) first_id = e->id;
            else if (strcmp(first_id, e->id))
                NOTE(c.dup_created, "dup_created: key %s answered with jobs %s and %s", key,
                     first_id, e->id);
            const struct ev_final *f = find_final(byid, nf, e->id);
            if (!f)
                NOTE(c.unexpected, "key %s: acked job %s is not in the final list", key, e->id);
            else if (strcmp(f->key, key))
                NOTE(c.unexpected, "key %s: acked job %s carries key %s", key, e->id, f->key);
        }
        c.keys++;
        if (acked) {
            c.acked++;
            const struct ev_final *f = find_final(byid, nf, first_id);
            if (!f || strcmp(f->status, "completed"))
                NOTE(c.lost, "lost: key %s job %s ended %s", key, first_id, f ? f->status : "absent");
        }
        if (first_unknown && acked) c.recovered++;
        i = j;
    }

    /* final list: one job per key, every job known, completed jobs echo their key */
    for (size_t i = 0; i < nf; i++) {
        struct ev_create k = { 0 };
        cpy(k.key, sizeof k.key, bykey[i].key);
        k.seq = -1;
        size_t lo = 0, hi = l->creates.n;         /* first create with key >= k */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (by_create_key(&l->creates.v[mid], &k) < 0) lo = mid + 1; else hi = mid;
        }
        if (lo == l->creates.n || strcmp(l->creates.v[lo].key, bykey[i].key))
            NOTE(c.unexpected, "job %s with key '%s' was never requested", bykey[i].id, bykey[i].key);
        if (i > 0 && bykey[i].key[0] && !strcmp(bykey[i].key, bykey[i - 1].key))
            NOTE(c.dup_created, "dup_created: key %s has jobs %s and %s in the final list",
                 bykey[i].key, bykey[i - 1].id, bykey[i].id);
        if (!strcmp(bykey[i].status, "completed") && bykey[i].rkey[0] &&
            strcmp(bykey[i].rkey, bykey[i].key))
            NOTE(c.unexpected, "job %s (key %s) completed with the result of key %s",
                 bykey[i].id, bykey[i].key, bykey[i].rkey);
    }

    /* completes: per job, successful completes under distinct leases */
    for (size_t i = 0; i < l->dones.n;) {
        size_t j = i;
        const char *id = l->dones.v[i].id, *ok_lease = NULL;
        while (j < l->dones.n && !strcmp(l->dones.v[j].id, id)) {
            struct ev_done *e = &l->dones.v[j++];
            if (e->o == LG_UNKNOWN) c.unknowns++;
            if (e->o != LG_OK) continue;
            c.completes_ok++;
            if (!ok_lease) ok_lease = e->lease;
            else if (strcmp(ok_lease, e->lease))
                NOTE(c.completed_twice, "completed_twice: job %s under leases %s and %s", id,
                     ok_lease, e->lease);
        }
        const struct ev_final *f = find_final(byid, nf, id);
        if (ok_lease && (!f || strcmp(f->status, "completed")))
            NOTE(c.unexpected, "job %s: complete acked but final status %s", id,
                 f ? f->status : "absent");
        i = j;
    }

    /* claims: leases of one job must not overlap; every claimed job must exist */
    for (size_t i = 0; i < l->claims.n; i++) {
        struct ev_claim *e = &l->claims.v[i];
        if (!find_final(byid, nf, e->id))
            NOTE(c.unexpected, "claimed job %s is not in the final list", e->id);
        if (i > 0 && !strcmp(l->claims.v[i - 1].id, e->id) && e->from < l->claims.v[i - 1].to) {
            /* the earlier lease may end early only by a complete under it */
            const struct ev_claim *a = &l->claims.v[i - 1];
            if (!done_ok(l, e->id, a->lease))
                NOTE(c.overlap, "overlap: job %s lease %s [%" PRId64 ",%" PRId64 ") and lease %s "
                     "from %" PRId64, e->id, a->lease, a->from, a->to, e->lease, e->from);
            else
                NOTE(c.unexpected, "job %s claimed again (lease %s) after a complete under %s",
                     e->id, e->lease, a->lease);
        }
    }
    pthread_mutex_unlock(&l->mu);
    free(byid);
    free(bykey);
    return c;
}

void ledger_print(const struct lg_counts *c, FILE *out, const char *label)
{
    fprintf(out, "  ledger[%s]: keys %ld acked %ld final_jobs %ld claims %ld completes_ok %ld "
            "unknowns %ld | lost %ld dup_created %ld completed_twice %ld overlap %ld "
            "unexpected %ld recovered %ld\n", label, c->keys, c->acked, c->jobs_final, c->claims,
            c->completes_ok, c->unknowns, c->lost, c->dup_created, c->completed_twice, c->overlap,
            c->unexpected, c->recovered);
}
