/* cursor.c - see cursor.h. Layout before encoding: "1|<created_at>|<id>|<a|d>|<xxh32 hex>". */
#include "core/cursor.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

enum { CURSOR_SEED = 0x6a6f6271 };   /* any constant: it only has to be stable */

void cursor_encode(const struct cursor *c, char out[CURSOR_MAX])
{
    char raw[64];
    int n = snprintf(raw, sizeof raw, "1|%lld|%s|%c", (long long)c->created_at, c->id,
                     c->asc ? 'a' : 'd');
    snprintf(raw + n, sizeof raw - (size_t)n, "|%08x", XXH32(raw, (size_t)n, CURSOR_SEED));
    sodium_bin2base64(out, CURSOR_MAX, (const unsigned char *)raw, strlen(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

bool cursor_decode(const char *text, struct cursor *out)
{
    unsigned char raw[64];
    size_t len = 0;
    if (strlen(text) >= CURSOR_MAX ||
        sodium_base642bin(raw, sizeof raw - 1, text, strlen(text), NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return false;
    raw[len] = '\0';
    char *bar = strrchr((char *)raw, '|');
    unsigned sum = 0;
    char dir = 0, tail = 0;
    long long t = 0;
    if (!bar || sscanf(bar, "|%8x%c", &sum, &tail) != 1 ||
        XXH32(raw, (size_t)(bar - (char *)raw), CURSOR_SEED) != sum)
        return false;
    *bar = '\0';
    char id[ID_LEN + 2] = {0};
    if (sscanf((char *)raw, "1|%lld|%27[0-9A-Z]|%c%c", &t, id, &dir, &tail) != 3 ||
        !id_valid(id) || (dir != 'a' && dir != 'd') || t < 0)
        return false;
    out->created_at = t;
    memcpy(out->id, id, sizeof out->id);
    out->asc = dir == 'a';
    return true;
}

void cursor_encode_offset(int64_t offset, char out[CURSOR_MAX])
{
    char raw[48];
    int n = snprintf(raw, sizeof raw, "2|%lld", (long long)offset);
    snprintf(raw + n, sizeof raw - (size_t)n, "|%08x", XXH32(raw, (size_t)n, CURSOR_SEED));
    sodium_bin2base64(out, CURSOR_MAX, (const unsigned char *)raw, strlen(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

bool cursor_decode_offset(const char *text, int64_t *offset)
{
    unsigned char raw[48];
    size_t len = 0;
    if (strlen(text) >= CURSOR_MAX ||
        sodium_base642bin(raw, sizeof raw - 1, text, strlen(text), NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return false;
    raw[len] = '\0';
    char *bar = strrchr((char *)raw, '|');
    unsigned sum = 0;
    char tail = 0;
    long long v = -1;
    if (!bar || sscanf(bar, "|%8x%c", &sum, &tail) != 1 ||
        XXH32(raw, (size_t)(bar - (char *)raw), CURSOR_SEED) != sum)
        return false;
    *bar = '\0';
    if (sscanf((char *)raw, "2|%lld%c", &v, &tail) != 1 || v < 0)
        return false;
    *offset = v;
    return true;
}
