/*
 * http.h - the transport: adapts libmicrohttpd (one thread per connection,
 * so a long-poll claim may block its thread), assembles request bodies
 * under a cap, and turns a handler's reply (status + JSON or error) into an
 * HTTP response. Handlers see only struct req; nothing else here parses HTTP.
 */
#ifndef JQ_HTTP_H
#define JQ_HTTP_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "store/store.h"

struct jobqd;
struct http;

enum { REQ_PARAMS_MAX = 2, REQ_HEADERS_MAX = 8 };

struct req {
    struct jobqd *d;
    void *conn;                       /* struct MHD_Connection * */
    const char *method, *path;
    const char *params[REQ_PARAMS_MAX];   /* {} segments of the route, in order */
    char *body;                       /* NUL-terminated, len bytes; NULL if none */
    size_t len, cap;
    bool too_large;                   /* body went over the cap; the rest was dropped */
    bool replied;                     /* a response was queued early (413) */
    struct principal who;             /* set by auth */
    const char *scope;                /* user_id for role user, NULL for others */
    struct sctx sc;                   /* clock + statement count for the store */
    struct idem idem;                 /* Idempotency-Key state; sc.idem points here if used */
    char idem_hash[40];               /* hex hash of method, path and body */
    /* reply */
    int status;
    json_t *reply;                    /* owned; NULL for an empty body */
    char *raw;                        /* owned; a reply already rendered to text (wins) */
    struct {                          /* a streamed body (SSE), when read is set */
        long (*read)(void *ctx, char *buf, size_t max);   /* bytes, or -1 at the end */
        void (*free)(void *ctx);
        void *ctx;
        const char *content_type;
    } stream;
    struct { const char *name; char value[96]; } headers[REQ_HEADERS_MAX];
    int nheaders;
};

/* Starts listening; *port gets the bound port. NULL on failure (logged). */
struct http *http_start(struct jobqd *d, int *port);
void         http_stop(struct http *h);         /* NULL is a no-op */

/* Reply helpers for handlers. reply_json takes ownership of body. */
void reply_json(struct req *q, int status, json_t *body);
void reply_empty(struct req *q, int status);
/* Replies 200 with a body produced by read() on the connection's thread as
 * the client takes it (read may block); free(ctx) runs when it ends. The
 * connection is closed if the client accepts nothing for stall_s seconds. */
void reply_stream(struct req *q, const char *content_type, long (*read)(void *, char *, size_t),
                  void (*free_fn)(void *), void *ctx, unsigned stall_s);
/* Replies with JSON text already rendered; takes ownership of text. */
void reply_raw(struct req *q, int status, char *text);
/* Error reply {"error":{code,message,field}}; status from the error. */
void reply_err(struct req *q, jq_err e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void reply_header(struct req *q, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int  http_status_of(jq_err e);
/* Query-string value or NULL. */
const char *req_query(struct req *q, const char *name);
/* The connection's socket (for SIOCOUTQ: what the client has not taken yet), or -1. */
int req_socket(struct req *q);
/* Header value or NULL. */
const char *req_header(struct req *q, const char *name);
/* Fails with 400 naming the first query parameter not in allowed (NULL-terminated). */
bool req_query_only(struct req *q, const char *const *allowed);

#endif
