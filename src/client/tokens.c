/*
 * tokens.c - libjobq admin calls: create and revoke API tokens (/v1/tokens).
 */
#include <stdlib.h>

#include "client.h"

int jobq_token_create(jobq_client *c, const char *user_id, const char *role, const char *name,
                      jobq_token **out)
{
    return jobq_token_create_limit(c, user_id, role, name, -1, out);
}

int jobq_token_create_limit(jobq_client *c, const char *user_id, const char *role,
                            const char *name, long active_limit, jobq_token **out)
{
    json_t *reply;
    *out = NULL;
    if (!user_id || !role)
        return jobq__fail(c, JOBQ_E_INVALID, user_id ? "role" : "user_id",
                          "user_id and role are required");
    json_t *body = json_object();
    bool ok = body && jobq__set_str(body, "user_id", user_id) &&
              jobq__set_str(body, "role", role) && jobq__set_str(body, "name", name) &&
              (active_limit < 0 || jobq__set_int(body, "active_limit", active_limit));
    int err = ok ? jobq__call(c, "POST", "/v1/tokens", body, 0, &reply)
                 : jobq__fail(c, JOBQ_E_NOMEM, NULL, NULL);
    json_decref(body);
    if (err)
        return err;
    *out = jobq__token_from(reply);
    json_decref(reply);
    return *out ? JOBQ_E_OK : jobq__fail(c, JOBQ_E_PROTOCOL, NULL, "reply is not a token");
}

int jobq_token_revoke(jobq_client *c, const char *id)
{
    if (!id)
        return jobq__fail(c, JOBQ_E_INVALID, "id", "id is required");
    char *path = jobq__path("/v1/tokens/%s", id);
    int err = jobq__call(c, "DELETE", path, NULL, 0, NULL);
    free(path);
    return err;
}
