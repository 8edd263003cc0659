/* id.c - see id.h. */
#include "core/id.h"

#include <string.h>

static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void id_make(int64_t ms, const uint8_t rnd[ID_RAND_BYTES], char out[ID_LEN + 1])
{
    uint8_t v[16];
    uint64_t t = (uint64_t)ms & 0xFFFFFFFFFFFFull;
    for (int i = 0; i < 6; i++)
        v[i] = (uint8_t)(t >> (40 - 8 * i));
    memcpy(v + 6, rnd, ID_RAND_BYTES);
    /* 128 bits -> 26 chars of 5 bits; the first char carries only 3 bits */
    for (int i = 0; i < ID_LEN; i++) {
        int bit = i * 5 - 2;           /* position of this char's top bit */
        unsigned acc = 0;
        for (int k = 0; k < 5; k++, bit++) {
            unsigned b = bit < 0 ? 0 : (v[bit / 8] >> (7 - bit % 8)) & 1u;
            acc = acc << 1 | b;
        }
        out[i] = b32[acc];
    }
    out[ID_LEN] = '\0';
}

static int b32_val(char c)
{
    const char *p = c ? strchr(b32, c) : NULL;
    return p ? (int)(p - b32) : -1;
}

bool id_valid(const char *s)
{
    if (strlen(s) != ID_LEN || b32_val(s[0]) > 7)
        return false;
    for (int i = 0; i < ID_LEN; i++)
        if (b32_val(s[i]) < 0)
            return false;
    return true;
}

int64_t id_time_ms(const char *id)
{
    uint64_t t = 0;
    for (int i = 0; i < 10; i++)        /* 10 chars = 50 bits; top 2 are padding */
        t = t << 5 | (unsigned)b32_val(id[i]);
    return (int64_t)t;
}

void id_next(struct id_gen *g, int64_t ms, const uint8_t rnd[ID_RAND_BYTES],
             char out[ID_LEN + 1])
{
    if (ms > g->last_ms) {
        g->last_ms = ms;
        memcpy(g->last_rnd, rnd, ID_RAND_BYTES);
    } else {
        int i = ID_RAND_BYTES - 1;      /* big-endian +1; on overflow the ms moves on */
        while (i >= 0 && ++g->last_rnd[i] == 0)
            i--;
        if (i < 0)
            g->last_ms++;
    }
    id_make(g->last_ms, g->last_rnd, out);
}
