/*
 * buf.h - a growable byte buffer with a hard maximum: appends past the
 * maximum fail (and set the overflow flag) instead of growing without bound.
 */
#ifndef JQ_BUF_H
#define JQ_BUF_H
#include <stdbool.h>
#include <stddef.h>

struct buf {
    char *data;          /* NUL-terminated when len > 0 */
    size_t len, cap, max;
    bool overflow;       /* an append did not fit under max */
};

void buf_init(struct buf *b, size_t max);
void buf_fini(struct buf *b);
bool buf_put(struct buf *b, const void *p, size_t n);
bool buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the data to the caller (malloc'd, NUL-terminated) and resets b. */
char *buf_take(struct buf *b);

#endif
