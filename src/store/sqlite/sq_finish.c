/*
 * sq_finish.c - finish-and-claim: complete and fail a worker's batch of jobs
 * and claim the next ones in one operation, so one commit covers the whole
 * exchange. Each list is one UPDATE … FROM json_each, so the statement count
 * does not grow with the batch.
 */
#include "store/sqlite/sq_int.h"

#include <stdlib.h>
#include <string.h>

struct finish_args {
    const struct finish_req *in;
    char *complete, *fail;         /* the lists as JSON for json_each */
    struct finish_out *out;
};

/* Runs an UPDATE … FROM json_each; marks the ids it finished in done[]. */
static jq_err finish_list(struct conn *cn, struct sctx *c, enum st_id id, const char *items,
                          const struct finish_item *it, int n, bool *done, int *count)
{
    sqlite3_stmt *st = sq__st(cn, c, id);
    if (!st)
        return JQ_E_STORAGE;
    sqlite3_bind_text(st, 1, items, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->now_ms);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *fid = (const char *)sqlite3_column_text(st, 0);
        for (int i = 0; i < n; i++)
            if (!done[i] && strcmp(it[i].id, fid) == 0) {
                done[i] = true;
                ++*count;
                break;
            }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, "finish many");
}

/* For items not finished: lease_lost if the job exists, else not_found. */
static jq_err explain_misses(struct conn *cn, struct sctx *c, const char *items,
                             const struct finish_item *it, int n, const bool *done,
                             bool is_fail, struct finish_out *out)
{
    sqlite3_stmt *st = sq__st(cn, c, ST_EXISTING_IDS);
    if (!st)
        return JQ_E_STORAGE;
    bool *exists = calloc((size_t)n, sizeof *exists);
    if (!exists)
        return JQ_E_NOMEM;
    sqlite3_bind_text(st, 1, items, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        for (int i = 0; i < n; i++)
            if (strcmp(it[i].id, (const char *)sqlite3_column_text(st, 0)) == 0)
                exists[i] = true;
    sqlite3_reset(st);
    for (int i = 0; i < n; i++)
        if (!done[i])
            out->errors[out->n_errors++] = (struct finish_err){
                is_fail, i, exists[i] ? JQ_E_LEASE : JQ_E_NOT_FOUND};
    free(exists);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, "existing ids");
}

static jq_err finish_side(struct conn *cn, struct sctx *c, struct finish_args *a, bool is_fail)
{
    const struct finish_item *it = is_fail ? a->in->fail : a->in->complete;
    int n = is_fail ? a->in->n_fail : a->in->n_complete;
    const char *items = is_fail ? a->fail : a->complete;
    if (n == 0)
        return JQ_E_OK;
    bool *done = calloc((size_t)n, sizeof *done);
    if (!done)
        return JQ_E_NOMEM;
    int *count = is_fail ? &a->out->failed : &a->out->completed;
    jq_err err = finish_list(cn, c, is_fail ? ST_FAIL_MANY : ST_COMPLETE_MANY, items, it, n,
                             done, count);
    if (!err && *count < n)
        err = explain_misses(cn, c, items, it, n, done, is_fail, a->out);
    if (!err && *count)
        cn->wake = true;          /* a retried job, or a dependent unblocked, may be claimable */
    free(done);
    return err;
}

static jq_err w_finish_claim(struct conn *cn, struct sctx *c, void *arg)
{
    struct finish_args *a = arg;
    jq_err err = finish_side(cn, c, a, false);
    if (!err)
        err = finish_side(cn, c, a, true);
    if (!err && a->in->claim.max > 0)
        err = sq__claim(cn, c, &a->in->claim, &a->out->claimed);
    return err;
}

jq_err sq__op_finish_claim(void *self, struct sctx *c, const struct finish_req *in,
                           struct finish_out *out)
{
    struct finish_args a = {in, finish_items_json(in->complete, in->n_complete, false, false),
                            finish_items_json(in->fail, in->n_fail, true, false), out};
    memset(out, 0, sizeof *out);
    out->claimed.total = -1;
    out->errors = calloc((size_t)(in->n_complete + in->n_fail + 1), sizeof *out->errors);
    jq_err err = out->errors ? sq__write(self, c, w_finish_claim, &a) : JQ_E_NOMEM;
    free(a.complete);
    free(a.fail);
    if (err)
        finish_out_fini(out);
    return err;
}
