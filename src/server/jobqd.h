/*
 * jobqd.h - the server's context: everything the process holds, owned by
 * main and passed down (no globals), so a test could run two in one process.
 */
#ifndef JQ_JOBQD_H
#define JQ_JOBQD_H
#include "common/clock.h"
#include "server/config.h"
#include "server/events.h"
#include "store/store.h"

struct http;
struct maint;
struct auth_cache;
struct metrics;
struct cache;

struct jobqd {
    struct jobqd_config cfg;
    struct jq_clock clock;       /* the only source of "now" for rules */
    store *st;
    struct events ev;            /* commit wake-ups for long-poll claims */
    struct maint *maint;
    struct http *http;
    struct auth_cache *tokens;   /* recently seen bearer tokens */
    struct metrics *metrics;     /* /metrics counters */
    struct cache *cache;         /* --cache (Redis/Valkey), NULL when off */
};

#endif
