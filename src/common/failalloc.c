/* failalloc.c - the fail-at-N allocation hook of test builds (see failalloc.h). */
#include "common/failalloc.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __SANITIZE_ADDRESS__
void __sanitizer_print_stack_trace(void);   /* the sanitizer runtime's, symbolized */
#endif

static atomic_long left;       /* allocations until the one that fails; 0 = disarmed */
static atomic_long counted;    /* allocations seen since the last arm */
static atomic_long fired;      /* allocations failed */

void failalloc_arm(long n)
{
    atomic_store(&counted, 0);
    atomic_store(&left, n > 0 ? n : 0);
}

bool failalloc_hit(void)
{
    atomic_fetch_add(&counted, 1);
    long n = atomic_load(&left);
    while (n > 0 && !atomic_compare_exchange_weak(&left, &n, n - 1))
        ;
    if (n != 1)                /* disarmed, or not this one */
        return false;
    atomic_fetch_add(&fired, 1);
#ifdef __SANITIZE_ADDRESS__    /* where it failed, in jobqd's log: a failing round names it */
    fprintf(stderr, "fail-alloc: this allocation fails:\n");
    __sanitizer_print_stack_trace();
#endif
    return true;
}

long failalloc_counted(void)
{
    return atomic_load(&counted);
}

long failalloc_fired(void)
{
    return atomic_load(&fired);
}

void *failalloc_malloc(size_t n)
{
    return failalloc_hit() ? NULL : malloc(n);
}
