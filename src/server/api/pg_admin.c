/*
 * pg_admin.c - GET /v1/admin/tables: table health (issue 7, bloat).
 *
 * PostgreSQL: the store's "table_health" report (pg_stat_user_tables: live
 * and dead tuples, last autovacuum, total size), one object per table, most
 * dead tuples first. SQLite (no such report): the database file's page
 * size, page count and freelist pages (from its header, as of the last
 * checkpoint) and the size of the -wal file.
 */
#include "server/api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { HEALTH_CAP = 64 << 10 };

/* "name live=N dead=N last_autovacuum=T|- size=BYTES" -> object; NULL if malformed. */
static json_t *table_json(const char *line)
{
    char name[128], vac[64];
    long long live, dead, size;
    if (sscanf(line, "%127s live=%lld dead=%lld last_autovacuum=%63s size=%lld", name, &live,
               &dead, vac, &size) != 5)
        return NULL;
    return json_pack("{s:s, s:I, s:I, s:o, s:I}", "name", name, "live_tuples",
                     (json_int_t)live, "dead_tuples", (json_int_t)dead, "last_autovacuum",
                     strcmp(vac, "-") == 0 ? json_null() : json_string(vac), "size_bytes",
                     (json_int_t)size);
}

static json_t *postgres_tables(const char *report)
{
    json_t *arr = json_array();
    const char *p = report;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
        json_t *t = table_json(line);
        if (t)
            json_array_append_new(arr, t);
        p += n + (nl ? 1 : 0);
    }
    return json_pack("{s:s, s:o}", "backend", "postgres", "tables", arr);
}

static uint32_t be(const unsigned char *b, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | b[i];
    return v;
}

static json_t *sqlite_files(const char *path)
{
    unsigned char h[100] = {0};
    FILE *f = path ? fopen(path, "rb") : NULL;
    size_t got = f ? fread(h, 1, sizeof h, f) : 0;
    if (f)
        fclose(f);
    if (got < sizeof h || memcmp(h, "SQLite format 3", 16) != 0)
        return NULL;
    uint32_t page = be(h + 16, 2);
    if (page == 1)
        page = 65536;
    char wal[4096];
    snprintf(wal, sizeof wal, "%s-wal", path);
    struct stat st;
    json_int_t wal_bytes = stat(wal, &st) == 0 ? (json_int_t)st.st_size : 0;
    json_int_t db_bytes = stat(path, &st) == 0 ? (json_int_t)st.st_size : 0;
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "backend", "sqlite", "page_size",
                     (json_int_t)page, "page_count", (json_int_t)be(h + 28, 4),
                     "freelist_count", (json_int_t)be(h + 36, 4), "db_bytes", db_bytes,
                     "wal_bytes", wal_bytes);
}

void api_admin_tables(struct req *q)
{
    char *out = malloc(HEALTH_CAP);
    if (!out) {
        api_store_err(q, JQ_E_NOMEM);
        return;
    }
    jq_err err = store_explain(q->d->st, "table_health", out, HEALTH_CAP);
    json_t *doc = NULL;
    if (err == JQ_E_OK)
        doc = postgres_tables(out);
    else if (err == JQ_E_NOT_FOUND)
        doc = sqlite_files(q->d->cfg.db);
    free(out);
    if (doc)
        reply_json(q, 200, doc);
    else
        api_store_err(q, err == JQ_E_NOT_FOUND ? JQ_E_STORAGE : err);
}
