/*
 * events.c - real time: the SSE stream of committed changes (GET /v1/events)
 * and waiting for a job to finish (GET /v1/jobs/{id}/wait). Both sleep on
 * the commit wake-ups of server/events.c; neither polls on an interval.
 *
 * A stream reads the durable event log (store_events) from the client's
 * position, so the server never buffers more than one fetch per stream
 * however slow the client is; a client that accepts nothing for
 * --sse-stall-s is disconnected. Last-Event-ID resumes within the retained
 * window (--events-retention-ms); older positions get a `reset` event
 * telling the client to reload, then the stream goes on from the newest.
 */
#include "server/api/api.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

#include "common/clock.h"

enum { FETCH = 100, WAIT_DEFAULT_MS = 30000, WAIT_MAX = 60000, USERS_MAX = 4096 };

/* --- open streams per user --- */

struct stream_slot { char user[NAME_MAX_LEN + 1]; int n; };
static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;   /* guards slots */
static struct stream_slot slots[USERS_MAX];   /* process-wide, like the sockets they count */

/* Takes one stream of user's quota; false if at the cap. */
static bool stream_take(const char *user, int cap)
{
    struct stream_slot *free_slot = NULL, *mine = NULL;
    pthread_mutex_lock(&slots_mu);
    for (int i = 0; i < USERS_MAX && !mine; i++) {
        if (slots[i].n && strcmp(slots[i].user, user) == 0)
            mine = &slots[i];
        else if (!slots[i].n && !free_slot)
            free_slot = &slots[i];
    }
    if (!mine && free_slot) {
        mine = free_slot;
        snprintf(mine->user, sizeof mine->user, "%s", user);
    }
    bool ok = mine && mine->n < cap;
    if (ok)
        mine->n++;
    pthread_mutex_unlock(&slots_mu);
    return ok;
}

static void stream_give(const char *user)
{
    pthread_mutex_lock(&slots_mu);
    for (int i = 0; i < USERS_MAX; i++)
        if (slots[i].n && strcmp(slots[i].user, user) == 0) {
            slots[i].n--;
            break;
        }
    pthread_mutex_unlock(&slots_mu);
}

/* --- one stream --- */

struct sse {
    struct jobqd *d;
    char user[NAME_MAX_LEN + 1];             /* whose quota this is */
    char f_user[NAME_MAX_LEN + 1], f_job[ID_LEN + 1], f_queue[NAME_MAX_LEN + 1],
         f_type[NAME_MAX_LEN + 1];
    struct event_filter f;
    int64_t last;                            /* newest event id considered */
    bool resumed;                            /* the client gave a position */
    char *buf;                               /* frames not yet taken by MHD */
    size_t len, off;
    int64_t next_beat;                       /* monotonic ms of the next heartbeat */
    int fd;                                  /* the socket, to see what the client left unread */
    bool ending;                             /* sent the "too slow" frame: end after it */
};

static void sse_free(void *ctx)
{
    struct sse *s = ctx;
    stream_give(s->user);
    free(s->buf);
    free(s);
}

/* Appends a frame; frames are small (one event), the buffer one fetch. */
static void put(struct sse *s, const char *text)
{
    size_t n = strlen(text);
    char *nb = realloc(s->buf, s->len + n);
    if (!nb)
        return;
    s->buf = nb;
    memcpy(s->buf + s->len, text, n);
    s->len += n;
}

static void put_event(struct sse *s, const struct event *e)
{
    json_t *o = json_loads(e->data ? e->data : "{}", 0, NULL);
    char at[TIME_STR_MAX];
    time_fmt(e->created_at, at);
    if (!o)
        o = json_object();
    json_object_update_new(o, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "event_id",
        (json_int_t)e->id, "kind", e->kind, "job_id", e->job_id, "queue", e->queue, "type",
        e->type, "at", at));
    char *data = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char *frame = NULL;
    if (data && asprintf(&frame, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)e->id, e->kind,
                         data) > 0)
        put(s, frame);
    free(frame);
    free(data);
}

/* Fetches what is new; true if it produced frames. */
static bool fetch(struct sse *s)
{
    struct sctx c = {.now_ms = clock_now_ms(&s->d->clock)};
    struct event_list l;
    if (store_events(s->d->st, &c, &s->f, s->last, FETCH, &l))
        return false;
    bool out = false;
    if (s->resumed && l.min_id && s->last < l.min_id - 1) {   /* fell out of the window */
        put(s, "event: reset\ndata: {\"reason\":\"position older than the retained events; "
               "reload and listen again\"}\n\n");
        s->last = l.max_id;
        out = true;
    } else {
        for (int i = 0; i < l.n; i++)
            put_event(s, &l.ev[i]);
        out = l.n > 0;
        if (l.n)
            s->last = l.ev[l.n - 1].id;
        if (l.n < FETCH && l.max_id > s->last)
            s->last = l.max_id;      /* nothing else up to max_id matches this stream */
    }
    s->resumed = false;
    event_list_fini(&l);
    return out;
}

static long copy_out(struct sse *s, char *buf, size_t max)
{
    size_t n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(buf, s->buf + s->off, n);
    s->off += n;
    if (s->off == s->len)
        s->off = s->len = 0;
    return (long)n;
}

/* True (with a last frame queued) when the client has left more than the
 * backlog cap unread in the socket: it is not keeping up, so the stream ends
 * rather than the kernel (or we) buffering without bound. It can reconnect
 * with Last-Event-ID and lose nothing. */
static bool too_far_behind(struct sse *s)
{
    int unread = 0;
    if (s->fd < 0 || ioctl(s->fd, SIOCOUTQ, &unread) != 0 ||
        unread <= s->d->cfg.sse_backlog_kb * 1024)
        return false;
    put(s, "event: error\ndata: {\"reason\":\"too_slow\",\"message\":\"the client is not "
           "reading; reconnect with Last-Event-ID\"}\n\n");
    s->ending = true;
    return true;
}

static long sse_read(void *ctx, char *buf, size_t max)
{
    struct sse *s = ctx;
    if (s->ending && s->off == s->len)
        return -1;
    while (s->off == s->len && !too_far_behind(s)) {
        uint64_t seen = events_gen_any(&s->d->ev);    /* before fetching: no lost wake-up */
        if (fetch(s))
            break;
        if (clock_mono_ms() >= s->next_beat) {
            put(s, ": heartbeat\n\n");
            s->next_beat = clock_mono_ms() + s->d->cfg.sse_heartbeat_ms;
            break;
        }
        if (!events_wait_any(&s->d->ev, seen, s->next_beat))
            return -1;                                /* shutting down */
    }
    return copy_out(s, buf, max);
}

static bool copy_filter(struct req *q, const char *name, char *dst, size_t cap, bool is_id)
{
    const char *v = req_query(q, name);
    if (!v)
        return true;
    if (is_id ? !id_valid(v) : !valid_name(v)) {
        reply_err(q, JQ_E_INVALID, name, "%s is not valid", name);
        return false;
    }
    snprintf(dst, cap, "%s", v);
    return true;
}

static bool parse_position(struct req *q, struct sse *s)
{
    const char *h = req_header(q, "Last-Event-ID"), *qs = req_query(q, "last_event_id");
    const char *v = h ? h : qs;
    if (!v)
        return true;
    char *end;
    long long id = strtoll(v, &end, 10);
    if (end == v || *end || id < 0) {
        reply_err(q, JQ_E_INVALID, h ? "Last-Event-ID" : "last_event_id",
                  "an event id is a non-negative integer");
        return false;
    }
    s->last = id;
    s->resumed = true;
    return true;
}

static struct sse *sse_new(struct req *q)
{
    struct sse *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->d = q->d;
    s->last = -1;
    s->fd = req_socket(q);
    snprintf(s->user, sizeof s->user, "%s", q->who.user_id);
    if (q->scope)
        snprintf(s->f_user, sizeof s->f_user, "%s", q->scope);
    if (!copy_filter(q, "job_id", s->f_job, sizeof s->f_job, true) ||
        !copy_filter(q, "queue", s->f_queue, sizeof s->f_queue, false) ||
        !copy_filter(q, "type", s->f_type, sizeof s->f_type, false) || !parse_position(q, s)) {
        free(s);
        return NULL;
    }
    s->f = (struct event_filter){s->f_user[0] ? s->f_user : NULL, s->f_job[0] ? s->f_job : NULL,
                                 s->f_queue[0] ? s->f_queue : NULL,
                                 s->f_type[0] ? s->f_type : NULL};
    return s;
}

/* Without a position a stream starts at the newest event. */
static jq_err start_at_newest(struct req *q, struct sse *s)
{
    struct event_list l;
    jq_err err = store_events(q->d->st, &q->sc, &s->f, INT64_MAX, 1, &l);
    if (!err)
        s->last = l.max_id;
    event_list_fini(&l);
    return err;
}

void api_events(struct req *q)
{
    static const char *const allowed[] = {"job_id", "queue", "type", "last_event_id", NULL};
    if (!req_query_only(q, allowed))
        return;
    struct sse *s = sse_new(q);
    if (!s)
        return;                                  /* the 400 is written */
    jq_err err = s->last < 0 ? start_at_newest(q, s) : JQ_E_OK;
    if (err) {
        free(s);
        api_store_err(q, err);
        return;
    }
    if (!stream_take(s->user, (int)q->d->cfg.sse_streams_max)) {
        free(s);
        reply_err(q, JQ_E_LIMIT, NULL, "too many open event streams (limit %lld per user)",
                  (long long)q->d->cfg.sse_streams_max);
        reply_header(q, "Retry-After", "5");
        return;
    }
    put(s, "retry: 2000\n\n");
    s->next_beat = clock_mono_ms() + q->d->cfg.sse_heartbeat_ms;
    reply_stream(q, "text/event-stream", sse_read, sse_free, s, (unsigned)q->d->cfg.sse_stall_s);
}

/* --- wait for a job to finish --- */

void api_jobs_wait(struct req *q)
{
    static const char *const allowed[] = {"timeout_ms", NULL};
    int64_t timeout = WAIT_DEFAULT_MS;
    if (!want_job_id(q, q->params[0]) || !req_query_only(q, allowed) ||
        !query_int(q, "timeout_ms", 0, WAIT_MAX, &timeout))
        return;
    int64_t deadline = clock_mono_ms() + timeout;
    for (;;) {
        uint64_t seen = events_gen_any(&q->d->ev);
        struct job j;
        q->sc.now_ms = clock_now_ms(&q->d->clock);
        q->sc.stmts = 0;                       /* reported and budgeted: the last look */
        jq_err err = store_get(q->d->st, &q->sc, q->params[0], q->scope, &j);
        if (err) {
            api_store_err(q, err);
            return;
        }
        bool done = job_is_final(j.status);
        if (done || clock_mono_ms() >= deadline ||
            !events_wait_any(&q->d->ev, seen, deadline)) {
            reply_json(q, 200, api_job_json(&j, false));
            reply_header(q, "X-Jobq-Final", "%s", done ? "true" : "false");
            job_fini(&j);
            return;
        }
        job_fini(&j);
    }
}
