/*
 * client.c - libjobq handle and HTTP transport: one libcurl easy handle per client (the
 * connection stays alive between calls), bearer auth, timeouts, and the last error.
 *
 * Layers: errors table -> handle -> last error -> request/reply -> raw call.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

enum {
    CONNECT_MS_DEFAULT = 5000,
    REQUEST_MS_DEFAULT = 30000,
    /* A list page is at most 1000 jobs x (64 KiB params + 256 KiB result) ~ 330 MB of JSON;
     * anything beyond this ceiling is not a jobq reply. */
    REPLY_MAX = 512 << 20,
    IDEM_MAX = 255,          /* the API's cap on an Idempotency-Key */
};

#define URL_DEFAULT "http://127.0.0.1:8080"

struct jobq_client {
    CURL *curl;                   /* one easy handle: keeps and reuses the connection */
    char *url;                    /* base URL, no trailing '/' */
    char *auth;                   /* "Authorization: Bearer <token>", NULL without a token */
    long connect_ms;              /* connect timeout */
    long request_ms;              /* whole-request timeout before any long-poll stretch */
    char errbuf[CURL_ERROR_SIZE]; /* libcurl's message for the last transport error */
    struct jobq__str body;        /* body of the last reply ("" when none) */
    int last_err;                 /* jobq_err of the last call */
    long status;                  /* HTTP status of the last reply, 0 if none */
    char *code;                   /* last error code, malloc'd; NULL = "" */
    char *message;                /* last error message, malloc'd; NULL = "" */
    char *field;                  /* field to blame, malloc'd or NULL */
    const char *idem;             /* Idempotency-Key of the call in progress, borrowed; NULL */
};

/* --- errors table --- */

static const struct {
    const char *code;
    const char *msg;
} err_names[] = {
#define X(n, code, msg) { code, msg },
    JOBQ_ERRORS(X)
#undef X
};

const char *jobq_err_code(int err)
{
    if (err < 0 || (size_t)err >= sizeof err_names / sizeof err_names[0])
        return "unknown";
    return err_names[err].code;
}

const char *jobq_strerror(int err)
{
    if (err < 0 || (size_t)err >= sizeof err_names / sizeof err_names[0])
        return "unknown error";
    return err_names[err].msg;
}

/* --- growable string --- */

void jobq__str_add(struct jobq__str *b, const char *p, size_t n)
{
    if (!b->ok)
        return;
    if (!b->s || n >= b->cap - b->len) {         /* len < cap always holds once s is set */
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= n)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->ok = false;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void jobq__str_query(struct jobq__str *b, const char *key, const char *val)
{
    if (!val)
        return;
    bool first = !b->s || !memchr(b->s, '?', b->len);
    char *esc = curl_easy_escape(NULL, val, 0);
    if (!esc) {
        b->ok = false;
        return;
    }
    jobq__str_add(b, first ? "?" : "&", 1);
    jobq__str_add(b, key, strlen(key));
    jobq__str_add(b, "=", 1);
    jobq__str_add(b, esc, strlen(esc));
    curl_free(esc);
}

void jobq__str_query_int(struct jobq__str *b, const char *key, long long v, bool skip_zero)
{
    char num[32];
    if (v == 0 && skip_zero)
        return;
    snprintf(num, sizeof num, "%lld", v);
    jobq__str_query(b, key, num);
}

char *jobq__path(const char *fmt, const char *seg)
{
    char *esc = curl_easy_escape(NULL, seg, 0);
    if (!esc)
        return NULL;
    size_t n = strlen(fmt) + strlen(esc) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, fmt, esc);
    curl_free(esc);
    return p;
}

/* --- handle --- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

/* curl_global_init is not safe to race; run it once for every client of the process. */
static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Base URL without trailing slashes. */
static char *base_url(const char *url)
{
    if (!url || !*url)
        url = getenv("JOBQ_URL");
    if (!url || !*url)
        url = URL_DEFAULT;
    char *u = strdup(url);
    if (!u)
        return NULL;
    size_t n = strlen(u);
    while (n > 0 && u[n - 1] == '/')
        u[--n] = '\0';
    return u;
}

/* The token to send: the argument, else $JOBQ_TOKEN; NULL when neither is set. */
static const char *pick_token(const char *token)
{
    if (!token || !*token)
        token = getenv("JOBQ_TOKEN");
    return token && *token ? token : NULL;
}

/* "Authorization: Bearer <token>", malloc'd; NULL when out of memory. */
static char *auth_header(const char *token)
{
    static const char pre[] = "Authorization: Bearer ";
    size_t n = sizeof pre + strlen(token);
    char *h = malloc(n);
    if (h)
        snprintf(h, n, "%s%s", pre, token);
    return h;
}

jobq_client *jobq_client_new(const char *url, const char *token)
{
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return NULL;
    jobq_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->connect_ms = CONNECT_MS_DEFAULT;
    c->request_ms = REQUEST_MS_DEFAULT;
    c->body.ok = true;
    if (!(c->url = base_url(url)))
        goto undo_alloc;
    if ((token = pick_token(token)) && !(c->auth = auth_header(token)))
        goto undo_url;
    if (!(c->curl = curl_easy_init()))
        goto undo_auth;
    return c;
undo_auth:
    free(c->auth);
undo_url:
    free(c->url);
undo_alloc:
    free(c);
    return NULL;
}

static void clear_last(jobq_client *c)
{
    free(c->code);
    free(c->message);
    free(c->field);
    c->code = c->message = c->field = NULL;
    c->last_err = JOBQ_E_OK;
    c->status = 0;
    c->body.len = 0;
    if (c->body.s)
        c->body.s[0] = '\0';
    c->body.ok = true;
}

void jobq_client_free(jobq_client *c)
{
    if (!c)
        return;
    clear_last(c);
    curl_easy_cleanup(c->curl);
    free(c->body.s);
    free(c->auth);
    free(c->url);
    free(c);
}

void jobq_client_set_timeouts(jobq_client *c, long connect_ms, long request_ms)
{
    if (connect_ms > 0)
        c->connect_ms = connect_ms;
    if (request_ms > 0)
        c->request_ms = request_ms;
}

const char *jobq_client_url(const jobq_client *c)
{
    return c->url;
}

/* --- last error --- */

int jobq_last_err(const jobq_client *c)
{
    return c->last_err;
}

int jobq_last_status(const jobq_client *c)
{
    return (int)c->status;
}

const char *jobq_last_code(const jobq_client *c)
{
    return c->code ? c->code : "";
}

const char *jobq_last_message(const jobq_client *c)
{
    return c->message ? c->message : "";
}

const char *jobq_last_field(const jobq_client *c)
{
    return c->field;
}

const char *jobq_last_body(const jobq_client *c)
{
    return c->body.s ? c->body.s : "";
}

/* Sets code/message/field (copied; NULLs allowed) and returns err. */
static int set_error(jobq_client *c, int err, const char *code, const char *message,
                     const char *field)
{
    free(c->code);
    free(c->message);
    free(c->field);
    c->code = dup_or_null(code ? code : jobq_err_code(err));
    c->message = dup_or_null(message ? message : jobq_strerror(err));
    c->field = dup_or_null(field);
    c->last_err = err;
    return err;
}

int jobq__fail(jobq_client *c, int err, const char *field, const char *message)
{
    if (err == JOBQ_E_INVALID)
        clear_last(c);              /* argument errors come before any request */
    return set_error(c, err, NULL, message, field);
}

/* Fills the last error from {"error":{"code","message","field"}}; a body that is not in
 * that shape still yields an error named after the HTTP status. */
static int server_error(jobq_client *c)
{
    char fallback[64];
    json_t *root = json_loadb(c->body.s ? c->body.s : "", c->body.len, 0, NULL);
    json_t *e = json_object_get(root, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *field = json_string_value(json_object_get(e, "field"));
    if (!code) {
        snprintf(fallback, sizeof fallback, "HTTP %ld", c->status);
        code = "http_error";
        msg = msg ? msg : fallback;
    }
    set_error(c, JOBQ_E_SERVER, code, msg ? msg : "", field);
    json_decref(root);
    return JOBQ_E_SERVER;
}

/* --- request / reply --- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct jobq__str *b = arg;
    size_t len = size * n;           /* libcurl guarantees size == 1 */
    if (len > REPLY_MAX - b->len)
        return 0;                    /* aborts the transfer: CURLE_WRITE_ERROR */
    jobq__str_add(b, p, len);
    return b->ok ? len : 0;
}

static int transport_error(jobq_client *c, CURLcode rc)
{
    char msg[CURL_ERROR_SIZE + 256];
    const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
    int err = JOBQ_E_TRANSPORT;
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
        rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_URL_MALFORMAT ||
        rc == CURLE_UNSUPPORTED_PROTOCOL)
        err = JOBQ_E_CONNECT;
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        err = JOBQ_E_TIMEOUT;
    else if (rc == CURLE_WRITE_ERROR && !c->body.ok)
        err = JOBQ_E_NOMEM;
    snprintf(msg, sizeof msg, "%s (%s)", why, c->url);
    return set_error(c, err, NULL, msg, NULL);
}

/* Sets the method and body; libcurl adds a form Content-Type to bodyless POSTs, so the
 * header list removes it when there is no body. */
static void set_method(CURL *h, const char *method, const char *body, size_t len)
{
    if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
        strcmp(method, "PATCH") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
}

static struct curl_slist *make_headers(const jobq_client *c, bool has_body)
{
    struct curl_slist *l = NULL, *t;
    char idem[300];                           /* "Idempotency-Key: " + at most 255 chars */
    if (c->idem)
        snprintf(idem, sizeof idem, "Idempotency-Key: %s", c->idem);
    const char *hs[] = {
        "Accept: application/json",
        has_body ? "Content-Type: application/json" : "Content-Type:",
        "Expect:",                            /* no 100-continue round trip */
        c->auth,
        c->idem ? idem : NULL,
    };
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
        if (!hs[i])
            continue;
        if (!(t = curl_slist_append(l, hs[i]))) {
            curl_slist_free_all(l);
            return NULL;
        }
        l = t;
    }
    return l;
}

/* One HTTP exchange: fills c->status and c->body. Returns JOBQ_E_OK when a reply arrived,
 * whatever its status. */
static int perform(jobq_client *c, const char *method, const char *path, const char *body,
                   size_t len, long wait_ms)
{
    struct jobq__str url = { .ok = true };
    clear_last(c);
    jobq__str_add(&url, c->url, strlen(c->url));
    jobq__str_add(&url, path, strlen(path));
    struct curl_slist *hdrs = make_headers(c, body != NULL);
    if (!url.ok || !hdrs) {
        free(url.s);
        curl_slist_free_all(hdrs);
        return set_error(c, JOBQ_E_NOMEM, NULL, NULL, NULL);
    }
    CURL *h = c->curl;
    curl_easy_reset(h);                       /* keeps the live connection */
    curl_easy_setopt(h, CURLOPT_URL, url.s);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  /* timeouts without SIGALRM: thread-safe */
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->request_ms + wait_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &c->body);
    set_method(h, method, body, len);
    c->errbuf[0] = '\0';
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    free(url.s);
    if (rc != CURLE_OK)
        return transport_error(c, rc);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
    if (!c->body.s)
        jobq__str_add(&c->body, "", 0);       /* jobq_last_body is "" rather than NULL */
    return JOBQ_E_OK;
}

int jobq__call(jobq_client *c, const char *method, const char *path, json_t *body,
               long wait_ms, json_t **reply)
{
    char *text = NULL;
    if (reply)
        *reply = NULL;
    clear_last(c);
    if (!path)
        return set_error(c, JOBQ_E_NOMEM, NULL, NULL, NULL);   /* jobq__path failed */
    if (body && !(text = json_dumps(body, JSON_COMPACT)))
        return set_error(c, JOBQ_E_NOMEM, NULL, NULL, NULL);
    int err = perform(c, method, path, text, text ? strlen(text) : 0, wait_ms);
    free(text);
    if (err)
        return err;
    if (c->status >= 400)
        return server_error(c);
    if (!reply || c->body.len == 0)
        return JOBQ_E_OK;
    json_error_t je;
    if (!(*reply = json_loadb(c->body.s, c->body.len, 0, &je)))
        return set_error(c, JOBQ_E_PROTOCOL, NULL, je.text, NULL);
    return JOBQ_E_OK;
}

int jobq__call_idem(jobq_client *c, const char *method, const char *path, json_t *body,
                    const char *idem, json_t **reply)
{
    if (idem) {
        size_t n = strlen(idem);
        bool ok = n >= 1 && n <= IDEM_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = idem[i] >= 0x20 && idem[i] < 0x7f;   /* printable: no header injection */
        if (!ok) {
            if (reply)
                *reply = NULL;
            return jobq__fail(c, JOBQ_E_INVALID, "Idempotency-Key",
                              "Idempotency-Key must be 1-255 printable ASCII characters");
        }
    }
    c->idem = idem;
    int err = jobq__call(c, method, path, body, 0, reply);
    c->idem = NULL;
    return err;
}

/* --- raw call --- */

int jobq_request(jobq_client *c, const char *method, const char *path, const char *body_json,
                 int *status, char **reply_json)
{
    if (status)
        *status = 0;
    if (reply_json)
        *reply_json = NULL;
    if (!method || !path || path[0] != '/')
        return set_error(c, JOBQ_E_INVALID, NULL, "method and an absolute path are required",
                         method ? "path" : "method");
    int err = perform(c, method, path, body_json, body_json ? strlen(body_json) : 0, 0);
    if (err)
        return err;
    if (status)
        *status = (int)c->status;
    if (reply_json && c->body.len > 0 && !(*reply_json = strdup(c->body.s)))
        return set_error(c, JOBQ_E_NOMEM, NULL, NULL, NULL);
    return c->status >= 400 ? server_error(c) : JOBQ_E_OK;
}

int jobq_health(jobq_client *c)
{
    return jobq__call(c, "GET", "/healthz", NULL, 0, NULL);
}

/* --- events: a Server-Sent Events reader on its own easy handle --- */

struct sse_read {
    jobq_event_fn fn;
    void *arg;
    struct jobq__str buf;         /* bytes not yet split into frames */
    bool stopped;                 /* fn asked to stop */
};

/* Splits complete frames ("…\n\n") off the buffer and hands their events to fn. */
static void sse_frames(struct sse_read *r)
{
    char *start = r->buf.s, *end;
    while (!r->stopped && start && (end = strstr(start, "\n\n"))) {
        *end = '\0';
        long long id = 0;
        const char *kind = NULL, *data = NULL;
        for (char *line = start, *nl; line; line = nl ? nl + 1 : NULL) {
            if ((nl = strchr(line, '\n')))
                *nl = '\0';
            if (!strncmp(line, "id: ", 4))
                id = strtoll(line + 4, NULL, 10);
            else if (!strncmp(line, "event: ", 7))
                kind = line + 7;
            else if (!strncmp(line, "data: ", 6))
                data = line + 6;
        }
        if (kind && r->fn(r->arg, id, kind, data ? data : "{}"))
            r->stopped = true;
        start = end + 2;
    }
    size_t used = start ? (size_t)(start - r->buf.s) : 0;
    if (used) {
        memmove(r->buf.s, start, r->buf.len - used + 1);
        r->buf.len -= used;
    }
}

static size_t sse_write(char *p, size_t sz, size_t n, void *ud)
{
    struct sse_read *r = ud;
    jobq__str_add(&r->buf, p, sz * n);
    if (!r->buf.ok || r->buf.len > (1u << 20))   /* a frame over 1 MiB is not an event */
        return 0;
    sse_frames(r);
    return r->stopped ? 0 : sz * n;              /* 0 ends the transfer */
}

int jobq_events(jobq_client *c, const char *query, long long last_event_id, long timeout_ms,
                jobq_event_fn fn, void *arg)
{
    CURL *k = curl_easy_init();
    struct sse_read r = {.fn = fn, .arg = arg, .buf = {.ok = true}};
    struct jobq__str url = {.ok = true};
    struct curl_slist *h = NULL;
    char last[64];
    if (!k)
        return jobq__fail(c, JOBQ_E_NOMEM, NULL, "out of memory");
    jobq__str_add(&url, c->url, strlen(c->url));
    jobq__str_add(&url, "/v1/events", 10);
    if (query && *query) {
        jobq__str_add(&url, "?", 1);
        jobq__str_add(&url, query, strlen(query));
    }
    if (c->auth)
        h = curl_slist_append(h, c->auth);
    h = curl_slist_append(h, "Accept: text/event-stream");
    if (last_event_id > 0) {
        snprintf(last, sizeof last, "Last-Event-ID: %lld", last_event_id);
        h = curl_slist_append(h, last);
    }
    curl_easy_setopt(k, CURLOPT_URL, url.s);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, sse_write);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
    curl_easy_setopt(k, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 0L);
    CURLcode rc = url.ok ? curl_easy_perform(k) : CURLE_OUT_OF_MEMORY;
    long status = 0;
    curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(k);
    free(url.s);
    free(r.buf.s);
    if (r.stopped || (rc == CURLE_OK && status == 200))
        return JOBQ_E_OK;
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return jobq__fail(c, JOBQ_E_TIMEOUT, NULL, "no end of the stream before the timeout");
    if (status >= 400)
        return jobq__fail(c, JOBQ_E_SERVER, NULL, "the server refused the event stream");
    return jobq__fail(c, rc == CURLE_COULDNT_CONNECT ? JOBQ_E_CONNECT : JOBQ_E_TRANSPORT, NULL,
                      curl_easy_strerror(rc));
}
