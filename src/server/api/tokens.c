/*
 * tokens.c - admin-only token management. The token text is shown once, in
 * the create reply; only its hash is stored.
 */
#include "server/api/api.h"

#include "core/id.h"
#include "server/auth.h"

void api_tokens_create(struct req *q)
{
    static const char *const allowed[] = {"user_id", "role", "name", "active_limit", NULL};
    json_t *b = api_body(q, allowed);
    if (!b)
        return;
    const char *user = NULL, *role = NULL, *name = NULL;
    struct principal p = {.active_limit = -1};
    if (want_name(q, b, "user_id", true, &user) && want_str(q, b, "role", true, 16, &role) &&
        want_str(q, b, "name", false, NAME_MAX_LEN, &name) &&
        want_int(q, b, "active_limit", 0, 100000000, &p.active_limit)) {
        if (!role_parse(role, &p.role)) {
            reply_err(q, JQ_E_INVALID, "role", "role must be user, worker or admin");
        } else {
            char text[TOKEN_TEXT_MAX], created[TIME_STR_MAX];
            uint8_t hash[TOKEN_HASH_LEN];
            snprintf(p.user_id, sizeof p.user_id, "%s", user);
            auth_token_new(text, p.token_id, q->sc.now_ms);
            auth_hash(text, hash);
            jq_err err = store_token_add(q->d->st, &q->sc, hash, &p, name);
            time_fmt(q->sc.now_ms, created);
            if (err)
                api_store_err(q, err);
            else
                reply_json(q, 201, json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:o}", "id",
                                             p.token_id, "token", text, "user_id", p.user_id,
                                             "role", role, "name", name, "created_at", created,
                                             "active_limit", p.active_limit >= 0
                                                 ? json_integer(p.active_limit) : json_null()));
        }
    }
    json_decref(b);
}

void api_tokens_revoke(struct req *q)
{
    jq_err err = id_valid(q->params[0]) ? store_token_revoke(q->d->st, &q->sc, q->params[0])
                                        : JQ_E_NOT_FOUND;
    if (!err)
        auth_cache_clear(q->d->tokens);      /* a revoked token stops working at once */
    if (err == JQ_E_NOT_FOUND)
        reply_err(q, err, NULL, "no such active token");
    else if (err)
        api_store_err(q, err);
    else
        reply_empty(q, 204);
}
