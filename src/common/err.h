/*
 * err.h - jobq's one error type. Codes and their stable strings live in one
 * X-macro table so they cannot drift; the HTTP status for each is mapped in
 * server/http.c so this layer stays transport-free.
 */
#ifndef JQ_ERR_H
#define JQ_ERR_H

#define JQ_ERRORS(X)                                  \
    X(OK,          "ok")                              \
    X(INVALID,     "invalid_argument")                \
    X(BAD_JSON,    "invalid_json")                    \
    X(UNAUTH,      "unauthorized")                    \
    X(FORBIDDEN,   "forbidden")                       \
    X(NOT_FOUND,   "not_found")                       \
    X(METHOD,      "method_not_allowed")              \
    X(LEASE,       "lease_lost")                      \
    X(STATE,       "invalid_state")                   \
    X(TOO_LARGE,   "too_large")                       \
    X(URI_LONG,    "uri_too_long")                    \
    X(MEDIA,       "unsupported_media_type")          \
    X(LIMIT,       "rate_limited")                    \
    X(IDEM,        "idempotency_conflict")            \
    X(CONFLICT,    "conflict")                        \
    X(DEPS,        "invalid_dependency")              \
    X(BUDGET,      "statement_budget")                \
    X(NOMEM,       "out_of_memory")                   \
    X(STORAGE,     "storage_error")                   \
    X(FULL,        "storage_full")                    \
    X(FAILED,      "storage_failed")                  \
    X(UNAVAILABLE, "unavailable")                     \
    X(INTERNAL,    "internal")

typedef enum {
#define X(n, s) JQ_E_##n,
    JQ_ERRORS(X)
#undef X
    JQ_E__COUNT
} jq_err;

/* Stable code string, as it appears in JSON error bodies. */
const char *jq_err_code(jq_err e);

#endif
