/*
 * auth.h - bearer tokens: generation (shown once), hashing (only the hash
 * is stored), and lookup of the principal a request acts as.
 */
#ifndef JQ_AUTH_H
#define JQ_AUTH_H
#include <stdbool.h>

#include "store/store.h"

enum { TOKEN_TEXT_MAX = 64 };    /* "jq_" + 43 base64url chars + NUL fits */

/* A fresh random token text and its id. */
void   auth_token_new(char text[TOKEN_TEXT_MAX], char id[TOKEN_ID_LEN + 1], int64_t now_ms);
void   auth_hash(const char *text, uint8_t hash[TOKEN_HASH_LEN]);
/* Recently seen tokens (hash -> principal), so most requests skip the token
 * read. Entries live TOKEN_CACHE_TTL_MS; a revoke on this node clears it
 * at once (auth_cache_clear). */
struct auth_cache;
struct auth_cache *auth_cache_new(void);
void auth_cache_free(struct auth_cache *ac);
void auth_cache_clear(struct auth_cache *ac);
void auth_cache_stats(struct auth_cache *ac, uint64_t *hits, uint64_t *misses);

/* From an Authorization header value; JQ_E_UNAUTH if missing/unknown. */
jq_err auth_lookup(store *st, struct auth_cache *ac, struct sctx *c, const char *header,
                   struct principal *out);
/* First start on an empty database: creates the admin token (from env_token if
 * given), printing a generated one once. */
jq_err auth_bootstrap(store *st, struct sctx *c, const char *env_token);

#endif
