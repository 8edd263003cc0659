/*
 * http.c - libmicrohttpd adapter (see http.h). Request flow: the first
 * callback allocates a struct req and rejects a declared body over the cap;
 * upload callbacks append to the body; the last one hands the request to
 * the router and sends what the handler replied.
 */
#include "server/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "server/jobqd.h"
#include "server/router.h"

enum {
    CONN_MEMORY = 32 << 10,   /* per-connection header memory: headers over ~16 KiB fail */
    URI_MAX = 8 << 10,        /* request-target (path + query): 414 beyond it, as proxies
                               * and RELIABILITY.md T18 expect; no route needs more */
    CONN_TIMEOUT_S = 120,     /* idle keep-alive connections are closed after this */
    THREAD_STACK = 1 << 20,
};

/* One open connection, for the header deadline. libmicrohttpd's own timeout is an
 * inactivity timeout: a client that sends one header byte every few seconds (slowloris)
 * would hold its connection thread forever. The watchdog shuts down the socket of any
 * connection whose request headers are not complete header_timeout_ms after it opened or
 * after its last reply; libmicrohttpd then sees EOF and closes it as usual. */
struct conn_watch {
    struct conn_watch *prev, *next;
    int fd;
    int64_t since_ms;            /* opened, or last reply finished (monotonic) */
    bool in_request;             /* headers complete, request not yet finished */
    bool shut;
};

struct http {
    struct MHD_Daemon *daemon;
    pthread_mutex_t mu;
    pthread_cond_t idle;         /* signalled when inflight drops to 0 */
    int inflight;                /* requests between their first callback and completion */
    struct conn_watch *conns;    /* open connections (under mu) */
    int64_t header_timeout_ms;   /* 0: no watchdog */
    pthread_t watchdog;
    pthread_cond_t wd_cond;      /* wakes the watchdog to stop */
    bool wd_run, wd_stop;
};

enum { DRAIN_MAX_MS = 10000 };   /* shutdown waits this long for replies in flight */

static const short status_of[JQ_E__COUNT] = {
    [JQ_E_OK] = 200, [JQ_E_INVALID] = 400, [JQ_E_BAD_JSON] = 400, [JQ_E_UNAUTH] = 401,
    [JQ_E_FORBIDDEN] = 403, [JQ_E_NOT_FOUND] = 404, [JQ_E_METHOD] = 405,
    [JQ_E_LEASE] = 409, [JQ_E_STATE] = 409, [JQ_E_TOO_LARGE] = 413, [JQ_E_URI_LONG] = 414,
    [JQ_E_MEDIA] = 415,
    [JQ_E_LIMIT] = 429, [JQ_E_IDEM] = 422, [JQ_E_CONFLICT] = 409, [JQ_E_DEPS] = 400,
    [JQ_E_BUDGET] = 500, [JQ_E_NOMEM] = 503, [JQ_E_STORAGE] = 500, [JQ_E_UNAVAILABLE] = 503,
    [JQ_E_FULL] = 507,   /* the disk is full: reads go on, writes resume once there is room */
    [JQ_E_FAILED] = 503, /* fail-stop after an I/O error (fsync): writes need a restart */
    [JQ_E_INTERNAL] = 500,
};

int http_status_of(jq_err e)
{
    return (unsigned)e < JQ_E__COUNT ? status_of[e] : 500;
}

/* --- reply helpers --- */

/* What a reply says when its JSON could not be built: the only cause is memory. */
static const char OOM_BODY[] =
    "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\",\"field\":null}}";

static void set_reply(struct req *q, int status, json_t *body)
{
    json_decref(q->reply);
    free(q->raw);
    q->raw = NULL;
    q->status = status;
    q->reply = body;
}

/* An out_of_memory reply (503) that needs no JSON library. */
static void reply_oom(struct req *q)
{
    set_reply(q, http_status_of(JQ_E_NOMEM), NULL);
    q->raw = strdup(OOM_BODY);
}

void reply_json(struct req *q, int status, json_t *body)
{
    if (!body)                 /* json_pack & co. failed to allocate: never an empty 2xx */
        reply_oom(q);
    else
        set_reply(q, status, body);
}

void reply_raw(struct req *q, int status, char *text)
{
    if (!text) {               /* the text could not be rendered: memory */
        reply_oom(q);
        return;
    }
    set_reply(q, status, NULL);
    q->raw = text;
}

void reply_empty(struct req *q, int status)
{
    set_reply(q, status, NULL);
}

void reply_err(struct req *q, jq_err e, const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *err = json_pack("{s:s, s:s, s:s?}", "code", jq_err_code(e), "message", msg,
                            "field", field);
    reply_json(q, http_status_of(e), json_pack("{s:o}", "error", err));
}

void reply_header(struct req *q, const char *name, const char *fmt, ...)
{
    if (q->nheaders == REQ_HEADERS_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    q->headers[q->nheaders].name = name;
    vsnprintf(q->headers[q->nheaders].value, sizeof q->headers[0].value, fmt, ap);
    va_end(ap);
    q->nheaders++;
}

const char *req_query(struct req *q, const char *name)
{
    return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, name);
}

int req_socket(struct req *q)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? (int)ci->connect_fd : -1;
}

const char *req_header(struct req *q, const char *name)
{
    return MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, name);
}

struct query_check { const char *const *allowed; const char *bad; };

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    (void)value;
    struct query_check *qc = cls;
    for (const char *const *a = qc->allowed; *a; a++)
        if (strcmp(*a, key) == 0)
            return MHD_YES;
    qc->bad = key;
    return MHD_NO;
}

bool req_query_only(struct req *q, const char *const *allowed)
{
    struct query_check qc = {allowed, NULL};
    MHD_get_connection_values(q->conn, MHD_GET_ARGUMENT_KIND, check_arg, &qc);
    if (qc.bad)
        reply_err(q, JQ_E_INVALID, qc.bad, "unknown query parameter '%.64s'", qc.bad);
    return qc.bad == NULL;
}

void reply_stream(struct req *q, const char *content_type, long (*read)(void *, char *, size_t),
                  void (*free_fn)(void *), void *ctx, unsigned stall_s)
{
    set_reply(q, 200, NULL);
    q->stream.read = read;
    q->stream.free = free_fn;
    q->stream.ctx = ctx;
    q->stream.content_type = content_type;
    MHD_set_connection_option(q->conn, MHD_CONNECTION_OPTION_TIMEOUT, stall_s);
}

/* --- sending --- */

/* What a streamed response owns; separate from struct req, whose lifetime
 * MHD ends independently of the response's. */
struct stream_ctx {
    long (*read)(void *ctx, char *buf, size_t max);
    void (*free)(void *ctx);
    void *ctx;
};

static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct stream_ctx *sc = cls;
    long n = sc->read(sc->ctx, buf, max);
    return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct stream_ctx *sc = cls;
    if (sc->free)
        sc->free(sc->ctx);
    free(sc);
}

static enum MHD_Result send_stream(struct MHD_Connection *conn, struct req *q)
{
    struct stream_ctx *sc = malloc(sizeof *sc);
    if (!sc)
        return MHD_NO;              /* free_req releases q->stream.ctx */
    *sc = (struct stream_ctx){q->stream.read, q->stream.free, q->stream.ctx};
    q->stream.free = NULL;          /* the response owns it now */
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 << 10,
                                                              stream_cb, sc, stream_free);
    if (!r) {
        stream_free(sc);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", q->stream.content_type);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");   /* proxies: do not buffer */
    enum MHD_Result rc = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, struct req *q)
{
    if (q->stream.read)
        return send_stream(conn, q);
    /* a jansson allocation that failed while this request built or rendered its reply may
     * have dropped a member or bytes of a key (seen: a claim reply missing "queue") */
    bool oom = json_oom_take();
    char *text = NULL;
    if (!oom) {
        text = q->raw ? q->raw : q->reply ? json_dump_compact(q->reply) : NULL;
        q->raw = NULL;                   /* the response owns it now */
        oom = (q->reply && !text) || json_oom_take();
    }
    if (oom) {
        free(text);
        q->status = http_status_of(JQ_E_NOMEM);
        text = strdup(OOM_BODY);
    }
    size_t len = text ? strlen(text) : 0;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    bool typed = false;                  /* a handler may name its own type (the dashboard) */
    for (int i = 0; i < q->nheaders; i++)
        typed |= strcasecmp(q->headers[i].name, "Content-Type") == 0;
    if (text && !typed)
        MHD_add_response_header(r, "Content-Type", "application/json");
    char n[16];
    snprintf(n, sizeof n, "%d", q->sc.stmts);
    MHD_add_response_header(r, "X-Jobq-Statements", n);
    for (int i = 0; i < q->nheaders; i++)
        MHD_add_response_header(r, q->headers[i].name, q->headers[i].value);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)q->status, r);
    MHD_destroy_response(r);
    return rc;
}

static void free_req(struct req *q)
{
    if (q->stream.free)            /* queued but never started */
        q->stream.free(q->stream.ctx);
    json_decref(q->reply);
    free(q->raw);
    free(q->idem.body);
    free(q->body);
    free(q);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct conn_watch *watch_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* A request's headers are complete (in = true) or its reply is done (in = false). */
static void watch_mark(struct http *h, struct MHD_Connection *conn, bool in)
{
    struct conn_watch *w = watch_of(conn);
    if (!w)
        return;
    pthread_mutex_lock(&h->mu);
    w->in_request = in;
    w->since_ms = mono_ms();
    pthread_mutex_unlock(&h->mu);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn_watch *w = calloc(1, sizeof *w);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!w || !ci) {          /* unwatched: only the inactivity timeout applies */
            free(w);
            return;
        }
        w->fd = ci->connect_fd;
        w->since_ms = mono_ms();
        pthread_mutex_lock(&h->mu);
        w->next = h->conns;
        if (h->conns)
            h->conns->prev = w;
        h->conns = w;
        pthread_mutex_unlock(&h->mu);
        *socket_context = w;
        return;
    }
    struct conn_watch *w = *socket_context;      /* closed: before its socket is */
    if (!w)
        return;
    pthread_mutex_lock(&h->mu);
    if (w->prev)
        w->prev->next = w->next;
    else
        h->conns = w->next;
    if (w->next)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&h->mu);
    free(w);
    *socket_context = NULL;
}

/* Wakes every quarter of the timeout and shuts down late connections. */
static void *watchdog_main(void *arg)
{
    struct http *h = arg;
    int64_t step = h->header_timeout_ms / 4 > 0 ? h->header_timeout_ms / 4 : 1;
    pthread_mutex_lock(&h->mu);
    while (!h->wd_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (step % 1000) * 1000000;
        ts.tv_sec += step / 1000 + ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&h->wd_cond, &h->mu, &ts);
        int64_t now = mono_ms();
        for (struct conn_watch *w = h->conns; w; w = w->next)
            if (!w->in_request && !w->shut && now - w->since_ms >= h->header_timeout_ms) {
                shutdown(w->fd, SHUT_RDWR);
                w->shut = true;
            }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http *h = cls;
    (void)toe;
    if (!*con_cls)
        return;
    free_req(*con_cls);
    *con_cls = NULL;
    watch_mark(h, conn, false);   /* the next request's headers are on the clock */
    pthread_mutex_lock(&h->mu);
    if (--h->inflight == 0)
        pthread_cond_broadcast(&h->idle);
    pthread_mutex_unlock(&h->mu);
}

/* --- request assembly --- */

/* Adds one query argument's share of the request-target ("&key=value") to *cls. */
static enum MHD_Result add_arg_len(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    *(size_t *)cls += 2 + strlen(key) + (value ? strlen(value) : 0);
    return MHD_YES;
}

static struct req *new_req(struct jobqd *d, struct MHD_Connection *conn, const char *method,
                           const char *url)
{
    struct req *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->d = d;
    q->conn = conn;
    q->method = method;
    q->path = url;
    q->status = 500;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > (unsigned long long)d->cfg.body_max)
        q->too_large = true;
    return q;
}

static void append_body(struct req *q, const char *data, size_t n, size_t max)
{
    if (q->too_large || n > max - q->len) {
        q->too_large = true;
        return;
    }
    if (q->len + n + 1 > q->cap) {
        size_t cap = q->cap ? q->cap : 1024;
        while (cap < q->len + n + 1)
            cap *= 2;
        char *nb = realloc(q->body, cap);
        if (!nb) {
            q->too_large = true;
            return;
        }
        q->body = nb;
        q->cap = cap;
    }
    memcpy(q->body + q->len, data, n);
    q->len += n;
    q->body[q->len] = '\0';
}

/* Header framing a proxy in front could read differently (request smuggling, RFC 9112
 * 5.1 and 6.3): a field name with whitespace, or Content-Length fields that disagree. */
struct hdr_scan { const char *cl; bool bad; };

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct hdr_scan *s = cls;
    (void)kind;
    if (!key || strpbrk(key, " \t"))
        s->bad = true;
    else if (strcasecmp(key, "Content-Length") == 0) {
        if (s->cl && (!value || strcmp(s->cl, value)))
            s->bad = true;
        s->cl = value;
    }
    return MHD_YES;
}

static bool ambiguous_framing(struct MHD_Connection *conn)
{
    struct hdr_scan s = {NULL, false};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, scan_header, &s);
    return s.bad;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size,
                                  void **con_cls)
{
    (void)version;
    struct jobqd *d = cls;
    struct req *q = *con_cls;
    if (!q) {
        if (!(q = new_req(d, conn, method, url)))
            return MHD_NO;
        *con_cls = q;
        watch_mark(d->http, conn, true);
        pthread_mutex_lock(&d->http->mu);
        d->http->inflight++;
        pthread_mutex_unlock(&d->http->mu);
        size_t target = strlen(url);
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_arg_len, &target);
        if (target > URI_MAX) {
            reply_err(q, JQ_E_URI_LONG, NULL, "request URI is over %d bytes", URI_MAX);
            q->replied = true;
            return send_reply(conn, q);
        }
        if (ambiguous_framing(conn)) {
            reply_err(q, JQ_E_INVALID, NULL, "ambiguous request framing (header names with "
                      "whitespace, or Content-Length fields that disagree)");
            q->replied = true;
            return send_reply(conn, q);
        }
        if (q->too_large) {     /* declared too big: answer now, skip the upload */
            reply_err(q, JQ_E_TOO_LARGE, NULL, "request body is over %lld bytes",
                      (long long)d->cfg.body_max);
            q->replied = true;
            return send_reply(conn, q);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!q->replied)
            append_body(q, upload_data, *upload_size, (size_t)d->cfg.body_max);
        *upload_size = 0;
        return MHD_YES;
    }
    if (q->replied)
        return MHD_YES;
    q->replied = true;
    if (q->too_large)
        reply_err(q, JQ_E_TOO_LARGE, NULL, "request body is over %lld bytes",
                  (long long)d->cfg.body_max);
    else {
        json_oom_take();                /* send_reply asks whether this request hit one */
        router_dispatch(q);
    }
    return send_reply(conn, q);
}

/* --- daemon --- */

static bool make_addr(const char *host, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        return true;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        return true;
    }
    return false;
}

struct http *http_start(struct jobqd *d, int *port)
{
    struct sockaddr_storage ss;
    if (!make_addr(d->cfg.host, (int)d->cfg.port, &ss)) {
        log_error("--host %s is not an IPv4 or IPv6 address", d->cfg.host);
        return NULL;
    }
    struct http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL |      /* poll(), not select(), in connection threads */
                     MHD_USE_ERROR_LOG | MHD_USE_ITC |   /* ITC: needed by MHD_quiesce_daemon */
                     (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->idle, NULL);
    pthread_cond_init(&h->wd_cond, NULL);
    h->header_timeout_ms = d->cfg.header_timeout_ms;
    d->http = h;                 /* request callbacks count in-flight requests on it */
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, d,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)d->cfg.max_connections,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_END);
    if (!h->daemon) {
        log_error("cannot listen on %s:%lld", d->cfg.host, (long long)d->cfg.port);
        d->http = NULL;
        free(h);
        return NULL;
    }
    if (h->header_timeout_ms > 0) {
        h->wd_run = pthread_create(&h->watchdog, NULL, watchdog_main, h) == 0;
        if (!h->wd_run)
            log_warn("no header-timeout watchdog thread: slow clients are bounded only by "
                     "the %d s inactivity timeout", CONN_TIMEOUT_S);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon,
                                                           MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? info->port : (int)d->cfg.port;
    return h;
}

/* Stops accepting, lets requests in flight reply (long-polls were woken by
 * events_close), then stops the daemon and its connection threads. */
void http_stop(struct http *h)
{
    if (!h)
        return;
    MHD_socket fd = MHD_quiesce_daemon(h->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += DRAIN_MAX_MS / 1000;
    pthread_mutex_lock(&h->mu);
    while (h->inflight > 0 && pthread_cond_timedwait(&h->idle, &h->mu, &ts) == 0)
        ;
    pthread_mutex_unlock(&h->mu);
    if (h->wd_run) {
        pthread_mutex_lock(&h->mu);
        h->wd_stop = true;
        pthread_cond_signal(&h->wd_cond);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->watchdog, NULL);
    }
    MHD_stop_daemon(h->daemon);
    pthread_cond_destroy(&h->wd_cond);
    pthread_cond_destroy(&h->idle);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
