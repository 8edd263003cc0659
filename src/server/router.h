/*
 * router.h - the route table: method + path pattern + roles -> handler.
 * Dispatch authenticates, checks the role and the body's media type, sets
 * the request's clock and scope, then calls the handler.
 */
#ifndef JQ_ROUTER_H
#define JQ_ROUTER_H
#include "server/http.h"

typedef void (*handler_fn)(struct req *q);

enum { R_IDEM = 1 };

struct route {
    const char *method;
    const char *pattern;      /* "/v1/jobs/{}/cancel": {} matches one segment */
    unsigned roles;           /* enum role bits; 0 = no authentication */
    unsigned flags;           /* R_IDEM: honours Idempotency-Key */
    int budget;               /* most SQL statements one request may run (the N+1 guard) */
    handler_fn fn;
};

void router_dispatch(struct req *q);
/* The table, for tests and docs. */
const struct route *router_routes(int *n);

#endif
