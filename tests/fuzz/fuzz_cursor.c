/*
 * fuzz_cursor.c - list cursors (src/core/cursor.c): decoding hostile text never crashes,
 * and whatever decodes re-encodes to a cursor that decodes to the same position.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cursor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 512) return 0;
    char text[513];
    memcpy(text, data, size);
    text[size] = '\0';
    struct cursor c, d;
    if (cursor_decode(text, &c)) {
        char out[CURSOR_MAX];
        cursor_encode(&c, out);
        if (!cursor_decode(out, &d) || d.created_at != c.created_at || d.asc != c.asc ||
            strcmp(d.id, c.id))
            abort();
    }
    int64_t off, off2;
    if (cursor_decode_offset(text, &off)) {
        char out[CURSOR_MAX];
        cursor_encode_offset(off, out);
        if (!cursor_decode_offset(out, &off2) || off2 != off) abort();
    }
    return 0;
}
