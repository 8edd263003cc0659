/*
 * jobtext.c - jobs as JSON text, written straight into a buffer, for the replies that
 * carry many of them (a list page of 1,000, a batch create, a claim of 100).
 *
 * api_job_json builds a jansson object per job - 26 members, the params and result
 * parsed back from their stored text only to be printed again - and that was most of
 * a list page's time (13 ms for 1,000 jobs at 1M). Here the stored JSON texts (valid:
 * every one was printed by jansson or SQLite's JSON functions when it was stored) are
 * copied as they are, and the output is byte for byte what dumping api_job_json gives
 * with JSON_COMPACT: same members in the same order, strings escaped like jansson
 * (\" \\ \b \f \n \r \t, other control characters \u00XX, everything else as is).
 * tests/server/test_listing.c compares the two renderings.
 */
#include "server/api/api.h"

#include <inttypes.h>
#include <string.h>

#include "common/clock.h"

static void put_str(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    buf_put(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_put(b, run, (size_t)(s - run));
        char esc[6] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        buf_put(b, esc, n);
        run = s + 1;
    }
    buf_put(b, run, (size_t)(s - run));
    buf_put(b, "\"", 1);
}

/* ,"name": */
static void put_key(struct buf *b, const char *name, bool first)
{
    buf_printf(b, "%s\"%s\":", first ? "" : ",", name);
}

static void put_str_or_null(struct buf *b, const char *name, const char *s)
{
    put_key(b, name, false);
    if (s && *s)
        put_str(b, s);
    else
        buf_put(b, "null", 4);
}

static void put_raw_or(struct buf *b, const char *name, const char *text, const char *dflt)
{
    put_key(b, name, false);
    if (text)
        buf_put(b, text, strlen(text));
    else
        buf_put(b, dflt, strlen(dflt));
}

static void put_time_or_null(struct buf *b, const char *name, int64_t ms)
{
    char t[TIME_STR_MAX];
    put_key(b, name, false);
    if (!ms) {
        buf_put(b, "null", 4);
        return;
    }
    time_fmt(ms, t);
    put_str(b, t);
}

static void put_int(struct buf *b, const char *name, int64_t v)
{
    put_key(b, name, false);
    buf_printf(b, "%" PRId64, v);
}

void api_job_put(struct buf *b, const struct job *j, bool with_lease)
{
    buf_put(b, "{", 1);
    put_key(b, "id", true);
    put_str(b, j->id);
    put_key(b, "user_id", false);
    put_str(b, j->user_id);
    put_key(b, "queue", false);
    put_str(b, j->queue);
    put_key(b, "type", false);
    put_str(b, j->type);
    put_raw_or(b, "params", j->params, "null");
    put_key(b, "status", false);
    put_str(b, job_status_name(j->status));
    put_int(b, "priority", j->priority);
    put_int(b, "attempts", j->attempts);
    put_int(b, "max_attempts", j->max_attempts);
    put_time_or_null(b, "run_at", j->run_at);
    put_time_or_null(b, "created_at", j->created_at);
    put_time_or_null(b, "updated_at", j->updated_at);
    put_time_or_null(b, "started_at", j->started_at);
    put_time_or_null(b, "completed_at", j->completed_at);
    put_time_or_null(b, "expires_at", j->expires_at);
    put_time_or_null(b, "lease_expires_at", j->lease_expires_at);
    put_str_or_null(b, "worker_id", j->worker_id);
    if (j->progress_percent < 0)
        put_raw_or(b, "progress_percent", NULL, "null");
    else
        put_int(b, "progress_percent", j->progress_percent);
    put_str_or_null(b, "progress_message", j->progress_message);
    put_raw_or(b, "result", j->result, "null");
    put_str_or_null(b, "error_message", j->error_message);
    put_str_or_null(b, "error_code", j->error_code);
    put_int(b, "blocked_by", j->blocked);
    put_str_or_null(b, "workflow_id", j->workflow_id);
    put_str_or_null(b, "step_key", j->step_key);
    if (with_lease) {
        put_str_or_null(b, "lease_token", j->lease_token);
        put_raw_or(b, "parents", j->parents, "[]");
    }
    buf_put(b, "}", 1);
}

void api_jobs_put(struct buf *b, const struct job_list *l, bool with_lease)
{
    buf_put(b, "[", 1);
    for (int i = 0; i < l->n; i++) {
        if (i)
            buf_put(b, ",", 1);
        api_job_put(b, &l->jobs[i], with_lease);
    }
    buf_put(b, "]", 1);
}

char *api_buf_text(struct buf *b)
{
    if (b->overflow) {
        buf_fini(b);
        return NULL;
    }
    return buf_take(b);
}
