/*
 * cursor.h - opaque list cursors: the keyset position (created_at, id) of
 * the last row of a page and the order it was read in, base64url-encoded
 * with a checksum so that a damaged or hand-made cursor is rejected (400)
 * rather than silently read. Pure: no I/O.
 */
#ifndef JQ_CURSOR_H
#define JQ_CURSOR_H
#include <stdbool.h>
#include <stdint.h>

#include "core/id.h"

enum { CURSOR_MAX = 96 };

struct cursor {
    int64_t created_at;
    char id[ID_LEN + 1];
    bool asc;
};

void cursor_encode(const struct cursor *c, char out[CURSOR_MAX]);
/* False if text is not a cursor this version made. */
bool cursor_decode(const char *text, struct cursor *out);

/* Offset cursors for ranked results (search), same checksum scheme. */
void cursor_encode_offset(int64_t offset, char out[CURSOR_MAX]);
bool cursor_decode_offset(const char *text, int64_t *offset);

#endif
