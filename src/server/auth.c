/* auth.c - see auth.h. Tokens carry 256 random bits, so a fast keyed-free
 * BLAKE2b hash (libsodium crypto_generichash) is the right store format:
 * no salt or slow KDF is needed for secrets that cannot be guessed. */
#include "server/auth.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/log.h"

enum { TOKEN_BYTES = 32 };

void auth_token_new(char text[TOKEN_TEXT_MAX], char id[TOKEN_ID_LEN + 1], int64_t now_ms)
{
    uint8_t raw[TOKEN_BYTES], rnd[ID_RAND_BYTES];
    randombytes_buf(raw, sizeof raw);
    randombytes_buf(rnd, sizeof rnd);
    memcpy(text, "jq_", 3);
    sodium_bin2base64(text + 3, TOKEN_TEXT_MAX - 3, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    id_make(now_ms, rnd, id);
}

void auth_hash(const char *text, uint8_t hash[TOKEN_HASH_LEN])
{
    crypto_generichash(hash, TOKEN_HASH_LEN, (const unsigned char *)text, strlen(text), NULL,
                       0);
}

enum { CACHE_SLOTS = 1024, TOKEN_CACHE_TTL_MS = 5000 };

struct cache_slot {
    uint8_t hash[TOKEN_HASH_LEN];
    struct principal who;
    int64_t until;               /* monotonic ms; 0 = empty */
};

struct auth_cache {
    pthread_mutex_t mu;
    uint64_t hits, misses;                 /* guarded by mu */
    struct cache_slot slot[CACHE_SLOTS];   /* direct-mapped by the hash's first bytes */
};

struct auth_cache *auth_cache_new(void)
{
    struct auth_cache *ac = calloc(1, sizeof *ac);
    if (ac)
        pthread_mutex_init(&ac->mu, NULL);
    return ac;
}

void auth_cache_free(struct auth_cache *ac)
{
    if (!ac)
        return;
    pthread_mutex_destroy(&ac->mu);
    free(ac);
}

void auth_cache_clear(struct auth_cache *ac)
{
    pthread_mutex_lock(&ac->mu);
    for (int i = 0; i < CACHE_SLOTS; i++)
        ac->slot[i].until = 0;
    pthread_mutex_unlock(&ac->mu);
}

void auth_cache_stats(struct auth_cache *ac, uint64_t *hits, uint64_t *misses)
{
    pthread_mutex_lock(&ac->mu);
    *hits = ac->hits;
    *misses = ac->misses;
    pthread_mutex_unlock(&ac->mu);
}

static struct cache_slot *slot_of(struct auth_cache *ac, const uint8_t hash[TOKEN_HASH_LEN])
{
    uint32_t k;
    memcpy(&k, hash, sizeof k);
    return &ac->slot[k % CACHE_SLOTS];
}

static bool cache_get(struct auth_cache *ac, const uint8_t hash[TOKEN_HASH_LEN],
                      struct principal *out)
{
    struct cache_slot *sl = slot_of(ac, hash);
    pthread_mutex_lock(&ac->mu);
    bool hit = sl->until > clock_mono_ms() && memcmp(sl->hash, hash, TOKEN_HASH_LEN) == 0;
    if (hit)
        *out = sl->who;
    ac->hits += hit;
    ac->misses += !hit;
    pthread_mutex_unlock(&ac->mu);
    return hit;
}

static void cache_put(struct auth_cache *ac, const uint8_t hash[TOKEN_HASH_LEN],
                      const struct principal *who)
{
    struct cache_slot *sl = slot_of(ac, hash);
    pthread_mutex_lock(&ac->mu);
    memcpy(sl->hash, hash, TOKEN_HASH_LEN);
    sl->who = *who;
    sl->until = clock_mono_ms() + TOKEN_CACHE_TTL_MS;
    pthread_mutex_unlock(&ac->mu);
}

jq_err auth_lookup(store *st, struct auth_cache *ac, struct sctx *c, const char *header,
                   struct principal *out)
{
    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return JQ_E_UNAUTH;
    const char *tok = header + 7;
    while (*tok == ' ')
        tok++;
    if (!*tok || strlen(tok) >= TOKEN_TEXT_MAX)
        return JQ_E_UNAUTH;
    uint8_t hash[TOKEN_HASH_LEN];
    auth_hash(tok, hash);
    if (ac && cache_get(ac, hash, out))
        return JQ_E_OK;
    jq_err err = store_token_find(st, c, hash, out);
    if (!err && ac)
        cache_put(ac, hash, out);
    return err;
}

jq_err auth_bootstrap(store *st, struct sctx *c, const char *env_token)
{
    int64_t n = 0;
    jq_err err = store_token_count(st, c, &n);
    if (err || n > 0)
        return err;
    char text[TOKEN_TEXT_MAX];
    struct principal p = {.role = ROLE_ADMIN};
    snprintf(p.user_id, sizeof p.user_id, "admin");
    auth_token_new(text, p.token_id, c->now_ms);
    if (env_token && *env_token) {
        if (strlen(env_token) < 16 || strlen(env_token) >= TOKEN_TEXT_MAX) {
            log_error("JOBQ_ADMIN_TOKEN must be 16 to %d characters", TOKEN_TEXT_MAX - 1);
            return JQ_E_INVALID;
        }
        snprintf(text, sizeof text, "%s", env_token);
    }
    uint8_t hash[TOKEN_HASH_LEN];
    auth_hash(text, hash);
    if ((err = store_token_add(st, c, hash, &p, "bootstrap admin")))
        return err;
    if (!env_token || !*env_token) {
        printf("jobqd: created the first admin token (shown once, keep it):\n%s\n", text);
        fflush(stdout);
    } else {
        log_info("admin token taken from JOBQ_ADMIN_TOKEN");
    }
    return JQ_E_OK;
}
