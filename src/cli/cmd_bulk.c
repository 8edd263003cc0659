/*
 * cmd_bulk.c - `jobq enqueue --file FILE`: the jobs of a JSONL file (one create object per
 * line, as POST /v1/jobs takes it) sent in batches of up to 1000 through POST /v1/jobs/batch,
 * with a progress bar on stderr when stderr is a terminal.
 *
 * Each batch is all or nothing on the server; batches before a failed one stay created.
 * With --idempotency-key KEY batch k is sent with the key "KEY#k", so rerunning the same
 * command after a failure replays the batches that went through instead of duplicating them.
 * stdout gets the job ids, one per line, in file order (--json: each batch reply, one per
 * line); the error of a failed batch names the file line of the bad item.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

enum {
    LINE_MAX_BYTES = 1 << 20,  /* the server's default body cap: a longer line cannot pass */
    BAR_WIDTH = 30,            /* progress bar cells */
};

/* A file being read in batches. */
struct bulk {
    FILE *f;
    const char *path;
    long long total;           /* non-blank lines, -1 when unknown (a pipe) */
    long long lineno;          /* lines read so far */
    long long sent;            /* jobs created or matched so far */
    char *items[JOBQ_BATCH_MAX];       /* malloc'd lines of the current batch */
    long long lines[JOBQ_BATCH_MAX];   /* their line numbers */
    size_t n;
    bool bar;                  /* draw the progress bar */
};

static bool blank(const char *s)
{
    return s[strspn(s, " \t\r\n")] == '\0';
}

/* Counts the non-blank lines of a regular file (for the bar); -1 for pipes. */
static long long count_lines(FILE *f)
{
    struct stat st;
    char *line = NULL;
    size_t cap = 0;
    long long n = 0;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        return -1;
    while (getline(&line, &cap, f) >= 0)
        n += !blank(line);
    free(line);
    rewind(f);
    return n;
}

static void draw_bar(const struct bulk *b)
{
    if (!b->bar)
        return;
    if (b->total > 0) {
        int filled = (int)(b->sent * BAR_WIDTH / b->total);
        fprintf(stderr, "\r[%.*s%*s] %lld/%lld jobs", filled,
                "##############################", BAR_WIDTH - filled, "", b->sent, b->total);
    } else {
        fprintf(stderr, "\r%lld jobs", b->sent);
    }
    fflush(stderr);
}

static void free_items(struct bulk *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->items[i]);
    b->n = 0;
}

/* Reads up to max non-blank lines into b->items. Returns 0, or CLI_EXIT_INPUT after
 * printing why. */
static int read_batch(struct bulk *b, size_t max)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (b->n < max && (len = getline(&line, &cap, b->f)) >= 0) {
        b->lineno++;
        if (blank(line))
            continue;
        if (len > LINE_MAX_BYTES) {
            fprintf(stderr, "%sjobq enqueue: %s:%lld: line longer than %d bytes\n",
                    b->bar ? "\n" : "", b->path, b->lineno, LINE_MAX_BYTES);
            free(line);
            return CLI_EXIT_INPUT;
        }
        b->lines[b->n] = b->lineno;
        b->items[b->n++] = line;
        line = NULL;
        cap = 0;
    }
    free(line);
    if (ferror(b->f)) {
        fprintf(stderr, "jobq enqueue: %s: %s\n", b->path, strerror(errno));
        return CLI_EXIT_INPUT;
    }
    return 0;
}

/* Reports a failed batch, naming the file line of a "jobs[i]..." field. */
static int batch_failed(struct cli *cli, struct bulk *b, int err)
{
    const char *field = jobq_last_field(cli->client);
    unsigned long idx;
    if (b->bar)
        fputc('\n', stderr);
    if (field && sscanf(field, "jobs[%lu]", &idx) == 1 && idx < b->n)
        fprintf(stderr, "jobq enqueue: %s:%lld: ", b->path, b->lines[idx]);
    int rc = cli_fail(cli, err);
    fprintf(stderr, "jobq enqueue: %lld jobs were enqueued before this batch\n", b->sent);
    return rc;
}

/* Sends the batch in b->items; prints its ids. */
static int send_batch(struct cli *cli, struct bulk *b, const jobq_batch_opts *o)
{
    jobq_batch_result *r = NULL;
    int err = jobq_create_batch_json(cli->client, (const char *const *)b->items, b->n, o, &r);
    if (err)
        return batch_failed(cli, b, err);
    if (cli->json)
        cli_print_json(cli);
    for (size_t i = 0; !cli->json && i < r->jobs->count; i++)
        printf("%s\n", r->jobs->jobs[i]->id);
    b->sent += (long long)r->jobs->count;
    jobq_batch_result_free(r);
    draw_bar(b);
    return CLI_EXIT_OK;
}

int cli_enqueue_file(struct cli *cli, const struct cli_args *a, const char *path)
{
    long long per = JOBQ_BATCH_MAX;
    struct bulk b = { .path = path };
    int rc = CLI_EXIT_OK;
    if (!cli_int(a, "batch", 1, JOBQ_BATCH_MAX, &per))
        return CLI_EXIT_USAGE;
    b.f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!b.f) {
        fprintf(stderr, "jobq enqueue: %s: %s\n", path, strerror(errno));
        return CLI_EXIT_INPUT;
    }
    b.total = count_lines(b.f);
    b.bar = !cli_flag(a, "quiet") && isatty(STDERR_FILENO);
    jobq_batch_opts o = { .replace = cli_flag(a, "upsert") };
    const char *key = cli_str(a, "idempotency-key");
    char keyn[300];
    for (int k = 1; rc == CLI_EXIT_OK; k++) {
        if ((rc = read_batch(&b, (size_t)per)) != 0 || b.n == 0)
            break;
        if (key)        /* one key per batch: KEY#1, KEY#2 ... (a rerun replays them) */
            o.idempotency_key = snprintf(keyn, sizeof keyn, "%s#%d", key, k) < (int)sizeof keyn
                              ? keyn : key;
        rc = send_batch(cli, &b, &o);
        free_items(&b);
    }
    free_items(&b);
    if (b.bar && rc == CLI_EXIT_OK)
        fputc('\n', stderr);
    if (rc == CLI_EXIT_OK && !cli->json)
        fprintf(stderr, "enqueued %lld jobs from %s\n", b.sent, path);
    if (b.f != stdin)
        fclose(b.f);
    return rc;
}
