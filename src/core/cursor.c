/* cursor.c - see cursor.h. A cursor is base64url("<payload>|<xxh32 of payload>"), with
 * payload "1|<created_at>|<id>|<a|d>" (keyset) or "2|<offset>" (ranked results). */
#include "core/cursor.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

enum { CURSOR_SEED = 0x6a6f6271, RAW_MAX = 64 };   /* the seed only has to be stable */

/* payload -> opaque text */
static void seal(const char *payload, char out[CURSOR_MAX])
{
    char raw[RAW_MAX + 16];
    size_t n = strlen(payload);
    snprintf(raw, sizeof raw, "%s|%08x", payload, XXH32(payload, n, CURSOR_SEED));
    sodium_bin2base64(out, CURSOR_MAX, (const unsigned char *)raw, strlen(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* opaque text -> payload (NUL-terminated in out); false if damaged or forged */
static bool unseal(const char *text, char out[RAW_MAX + 16])
{
    size_t len = 0;
    unsigned sum = 0;
    char tail = 0;
    if (strlen(text) >= CURSOR_MAX ||
        sodium_base642bin((unsigned char *)out, RAW_MAX + 15, text, strlen(text), NULL, &len,
                          NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return false;
    out[len] = '\0';
    char *bar = strrchr(out, '|');
    if (!bar || sscanf(bar, "|%8x%c", &sum, &tail) != 1 ||
        XXH32(out, (size_t)(bar - out), CURSOR_SEED) != sum)
        return false;
    *bar = '\0';
    return true;
}

void cursor_encode(const struct cursor *c, char out[CURSOR_MAX])
{
    char payload[RAW_MAX];
    snprintf(payload, sizeof payload, "1|%lld|%s|%c", (long long)c->created_at, c->id,
             c->asc ? 'a' : 'd');
    seal(payload, out);
}

bool cursor_decode(const char *text, struct cursor *out)
{
    char raw[RAW_MAX + 16], id[ID_LEN + 2] = {0}, dir = 0, tail = 0;
    long long t = 0;
    if (!unseal(text, raw) ||
        sscanf(raw, "1|%lld|%27[0-9A-Z]|%c%c", &t, id, &dir, &tail) != 3 || !id_valid(id) ||
        (dir != 'a' && dir != 'd') || t < 0)
        return false;
    out->created_at = t;
    memcpy(out->id, id, sizeof out->id);
    out->asc = dir == 'a';
    return true;
}

void cursor_encode_offset(int64_t offset, char out[CURSOR_MAX])
{
    char payload[RAW_MAX];
    snprintf(payload, sizeof payload, "2|%lld", (long long)offset);
    seal(payload, out);
}

bool cursor_decode_offset(const char *text, int64_t *offset)
{
    char raw[RAW_MAX + 16], tail = 0;
    long long v = -1;
    if (!unseal(text, raw) || sscanf(raw, "2|%lld%c", &v, &tail) != 1 || v < 0)
        return false;
    *offset = v;
    return true;
}
