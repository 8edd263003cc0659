/*
 * cmd_search.c - `jobq search QUERY`: full-text search over the log lines of your jobs
 * (GET /v1/logs/search), best match first. Human output is one line per hit with the
 * snippet; the server marks each match between \u0002 and \u0003, which become bold when
 * stdout is a terminal (and NO_COLOR is unset). Everything else in a snippet is log text
 * written by a job: control characters are shown escaped, never sent to the terminal.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

enum { CURSOR_MAX = 512, TIME_MAX = 32 };

/* Prints log text s on one line: controls escaped (C0, DEL, and C1 encoded in UTF-8),
 * match markers as bold on / off when bold, else dropped. */
static void print_snippet(const char *s, bool bold)
{
    bool in_match = false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == (unsigned char)JOBQ_MATCH_BEGIN || *p == (unsigned char)JOBQ_MATCH_END) {
            bool begin = *p == (unsigned char)JOBQ_MATCH_BEGIN;
            if (bold && begin != in_match)
                fputs(begin ? "\033[1m" : "\033[22m", stdout);
            in_match = begin;
        } else if (*p == '\n') {
            fputs("\\n", stdout);
        } else if (*p == '\t') {
            fputs("\\t", stdout);
        } else if (*p < 0x20 || *p == 0x7f) {
            printf("\\x%02x", *p);
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            printf("\\u%04x", p[1]);      /* U+0080..U+009F: C1 controls (8-bit CSI ...) */
            p++;
        } else {
            putchar(*p);
        }
    }
    if (bold && in_match)
        fputs("\033[22m", stdout);
}

static bool want_bold(void)
{
    const char *no = getenv("NO_COLOR");
    return isatty(STDOUT_FILENO) && !(no && *no);
}

static void print_hits(const jobq_log_hits *h, bool header, bool bold)
{
    if (header && h->count)
        printf("%-26s  %-24s  %-7s  %-16s  %s\n", "JOB", "TIME", "LEVEL", "TYPE", "MATCH");
    for (size_t i = 0; i < h->count; i++) {
        const jobq_log_hit *x = &h->hits[i];
        printf("%-26s  %-24s  %-7s  %-16.32s  ", x->log.job_id ? x->log.job_id : "-",
               x->log.created_at ? x->log.created_at : "-", x->log.level ? x->log.level : "-",
               x->type ? x->type : "-");
        print_snippet(x->snippet && *x->snippet ? x->snippet
                                                : x->log.message ? x->log.message : "", bold);
        putchar('\n');
    }
}

/* --since: RFC 3339 as it is, or an age "90s", "15m", "2h", "7d" turned into the UTC time
 * that long ago (into buf). NULL after printing a usage error. */
static const char *since_arg(const char *s, char *buf, size_t cap)
{
    char *end;
    if (!s || !isdigit((unsigned char)s[0]))
        return s;
    long long n = strtoll(s, &end, 10);
    long long unit = !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60 : !strcmp(end, "h") ? 3600
                   : !strcmp(end, "d") ? 86400 : 0;
    if (end[0] && !end[1] && !unit) {
        fprintf(stderr, "jobq search: --since wants an RFC 3339 time or an age like 15m, 2h, "
                        "7d, not '%s'\n", s);
        return NULL;
    }
    if (!unit)
        return s;                           /* "2026-11-25T..." starts with digits too */
    if (n < 0 || n > 100LL * 365 * 86400 / unit) {
        fprintf(stderr, "jobq search: --since %s is too far back\n", s);
        return NULL;
    }
    time_t t = time(NULL) - (time_t)(n * unit);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    return buf;
}

static int run_search(struct cli *cli, const struct cli_args *a)
{
    long long limit = 0;
    char cursor[CURSOR_MAX], since[TIME_MAX];
    size_t shown = 0;
    bool all = cli_flag(a, "all"), bold = !cli->json && want_bold();
    if (!cli_int(a, "limit", 1, INT_MAX, &limit))
        return CLI_EXIT_USAGE;
    jobq_log_search_opts o = {
        .q = a->pos[0],
        .level = cli_str(a, "level"),
        .job_id = cli_str(a, "job"),
        .type = cli_str(a, "type"),
        .since = since_arg(cli_str(a, "since"), since, sizeof since),
        .metadata = cli_str(a, "metadata"),
        .limit = (int)limit,
        .cursor = cli_str(a, "cursor"),
    };
    if (cli_str(a, "since") && !o.since)
        return CLI_EXIT_USAGE;
    for (bool first = true;; first = false) {
        jobq_log_hits *h = NULL;
        int err = jobq_logs_search(cli->client, &o, &h);
        if (err)
            return cli_fail(cli, err);
        if (cli->json)
            cli_print_json(cli);
        else
            print_hits(h, first, bold);
        shown += h->count;
        bool more = h->next_cursor && h->count > 0;
        if (!all && !cli->json)
            printf("(%zu hit%s%s%s)\n", h->count, h->count == 1 ? "" : "s",
                   more ? "; next page: --cursor " : "", more ? h->next_cursor : "");
        more = more && all &&
               (size_t)snprintf(cursor, sizeof cursor, "%s", h->next_cursor) < sizeof cursor;
        jobq_log_hits_free(h);
        if (!more)
            break;
        o.cursor = cursor;
    }
    if (all && !cli->json)
        printf("(%zu hit%s)\n", shown, shown == 1 ? "" : "s");
    return CLI_EXIT_OK;
}

static const struct cli_opt search_opts[] = {
    { "level", "L", "at least this level: debug|info|warning|error", false },
    { "job", "ID", "only this job's lines", false },
    { "type", "T", "only lines of jobs of this type", false },
    { "since", "TIME", "only lines since TIME (RFC 3339) or an age: 30m, 2h, 7d", false },
    { "metadata", "JSON", "only lines whose metadata contains this object", false },
    { "limit", "N", "hits per page, 1..1000 (default 50)", false },
    { "cursor", "C", "page after this cursor (next_cursor of the previous page)", false },
    { "all", NULL, "follow next_cursor to the last page (--json: a reply per line)", false },
    { NULL, NULL, NULL, false },
};

const struct cli_verb cmd_search_verbs[] = {
    { "search", "QUERY", 1, search_opts,
      "Search your jobs' log lines: words, \"phrases\", AND/OR/NOT, prefix*; best first.",
      run_search, 0 },
    { NULL, NULL, 0, NULL, NULL, NULL, 0 },
};
