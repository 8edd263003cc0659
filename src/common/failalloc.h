/*
 * failalloc.h - test builds: fail the Nth memory allocation from a chosen moment, as
 * SQLite's own fault-injection harness does (RELIABILITY.md T11). jobqd
 * --test-fail-alloc N routes jansson's allocator (failalloc_malloc, via json_track_oom)
 * and SQLite's (server/main.c) through failalloc_hit(); SIGUSR1 arms it: the Nth hooked
 * allocation after that returns NULL, once. Production builds never install it.
 * Thread-safe (atomics). With ASan, the failing allocation's stack goes to stderr.
 */
#ifndef JQ_FAILALLOC_H
#define JQ_FAILALLOC_H
#include <stdbool.h>
#include <stddef.h>

void *failalloc_malloc(size_t n);    /* malloc through the hook (jansson's allocator) */
void failalloc_arm(long n);          /* the nth allocation from now fails once; 0 disarms */
bool failalloc_hit(void);            /* every hooked allocation asks: fail this one? */
long failalloc_counted(void);        /* hooked allocations since the last arm */
long failalloc_fired(void);          /* allocations failed since start */

#endif
