/*
 * cmd_flow.c - jobq verbs for jobs that run by themselves: cron schedules (`jobq schedules`
 * list / create / show / pause / resume / delete) and workflows (`jobq workflow create
 * --file steps.json`, `jobq workflow show ID` as a tree of steps with their status).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

enum {
    COL_NAME = 24,        /* widest schedule name / cron shown in the table */
    PREFIX_MAX = 1024,    /* tree indentation: 100 steps deep at most 6 bytes each */
};

static const char *or_dash(const char *s)
{
    return s ? s : "-";
}

/* --- schedules --- */

static void print_schedule(const jobq_schedule *s)
{
    const struct {
        const char *k;
        const char *v;
    } rows[] = {
        { "name", s->name },         { "cron", s->cron },          { "timezone", s->timezone },
        { "type", s->type },         { "queue", s->queue },        { "params", s->params },
        { "misfire", s->misfire },   { "next_run_at", s->next_run_at },
        { "last_run_at", s->last_run_at }, { "user", s->user_id }, { "created_at", s->created_at },
        { "updated_at", s->updated_at },
    };
    printf("%-13s %s\n", "id", or_dash(s->id));
    printf("%-13s %s\n", "state", s->paused ? "paused" : "active");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].v)
            printf("%-13s %s\n", rows[i].k, rows[i].v);
    printf("%-13s %d\n", "priority", s->priority);
    printf("%-13s %d\n", "max_attempts", s->max_attempts);
    printf("%-13s %d\n", "catch_up_max", s->catch_up_max);
}

/* "ID STATE [next run at T]" for pause / resume. */
static void print_schedule_line(const jobq_schedule *s)
{
    printf("%s %s", or_dash(s->id), s->paused ? "paused" : "active");
    if (!s->paused && s->next_run_at)
        printf(", next run at %s", s->next_run_at);
    putchar('\n');
}

/* Ends a verb whose call answers one schedule (as cli_job_done). Frees s. */
static int schedule_done(struct cli *cli, int err, jobq_schedule *s,
                         void (*human)(const jobq_schedule *))
{
    int rc = CLI_EXIT_OK;
    if (err)
        rc = cli_fail(cli, err);
    else if (cli->json)
        cli_print_json(cli);
    else
        human(s);
    jobq_schedule_free(s);
    return rc;
}

static int run_sched_list(struct cli *cli, const struct cli_args *a)
{
    jobq_schedules *l = NULL;
    (void)a;
    int err = jobq_schedule_list(cli->client, &l);
    if (err)
        return cli_fail(cli, err);
    if (cli->json) {
        jobq_schedules_free(l);
        return cli_print_json(cli);
    }
    if (l->count)
        printf("%-26s  %-*s  %-6s  %-*s  %-12s  %-16s  %s\n", "ID", COL_NAME, "NAME", "STATE",
               COL_NAME, "CRON", "TIMEZONE", "TYPE", "NEXT_RUN");
    for (size_t i = 0; i < l->count; i++) {
        const jobq_schedule *s = &l->schedules[i];
        printf("%-26s  %-*.*s  %-6s  %-*.*s  %-12.32s  %-16.32s  %s\n", or_dash(s->id), COL_NAME,
               COL_NAME, or_dash(s->name), s->paused ? "paused" : "active", COL_NAME, COL_NAME,
               or_dash(s->cron), or_dash(s->timezone), or_dash(s->type), or_dash(s->next_run_at));
    }
    printf("(%zu schedule%s)\n", l->count, l->count == 1 ? "" : "s");
    jobq_schedules_free(l);
    return CLI_EXIT_OK;
}

static void print_created(const jobq_schedule *s)
{
    printf("%s\n", or_dash(s->id));        /* first line: the id alone, for `| head -1` */
    printf("schedule %s enqueues %s on queue %s at \"%s\" (%s), next at %s\n", or_dash(s->name),
           or_dash(s->type), or_dash(s->queue), or_dash(s->cron), or_dash(s->timezone),
           or_dash(s->next_run_at));
}

static int run_sched_create(struct cli *cli, const struct cli_args *a)
{
    long long prio = 0, attempts = 0, catch_up = 0;
    jobq_schedule *s = NULL;
    if (!cli_int(a, "priority", INT_MIN, INT_MAX, &prio) ||
        !cli_int(a, "max-attempts", INT_MIN, INT_MAX, &attempts) ||
        !cli_int(a, "catch-up-max", INT_MIN, INT_MAX, &catch_up))
        return CLI_EXIT_USAGE;
    jobq_new_schedule in = {
        .name = a->pos[0],
        .cron = cli_str(a, "cron"),
        .type = cli_str(a, "type"),
        .timezone = cli_str(a, "timezone"),
        .queue = cli_str(a, "queue"),
        .params = cli_str(a, "params"),
        .priority = (int)prio,
        .max_attempts = (int)attempts,
        .misfire = cli_str(a, "misfire"),
        .catch_up_max = (int)catch_up,
    };
    int err = jobq_schedule_create(cli->client, &in, &s);
    return schedule_done(cli, err, s, print_created);
}

static int run_sched_show(struct cli *cli, const struct cli_args *a)
{
    jobq_schedule *s = NULL;
    int err = jobq_schedule_get(cli->client, a->pos[0], &s);
    return schedule_done(cli, err, s, print_schedule);
}

static int run_sched_pause(struct cli *cli, const struct cli_args *a)
{
    jobq_schedule *s = NULL;
    int err = jobq_schedule_pause(cli->client, a->pos[0], &s);
    return schedule_done(cli, err, s, print_schedule_line);
}

static int run_sched_resume(struct cli *cli, const struct cli_args *a)
{
    jobq_schedule *s = NULL;
    int err = jobq_schedule_resume(cli->client, a->pos[0], &s);
    return schedule_done(cli, err, s, print_schedule_line);
}

static int run_sched_delete(struct cli *cli, const struct cli_args *a)
{
    int err = jobq_schedule_delete(cli->client, a->pos[0]);
    if (err)
        return cli_fail(cli, err);
    if (!cli->json)
        printf("deleted %s\n", a->pos[0]);
    return CLI_EXIT_OK;                 /* 204: no JSON to print */
}

static const struct cli_opt sched_create_opts[] = {
    { "cron", "EXPR", "5 fields (\"*/15 9-17 * * mon-fri\") or @hourly, @daily, ...", true },
    { "type", "T", "type of the jobs it enqueues", true },
    { "timezone", "Z", "IANA time zone the cron is read in (default UTC)", false },
    { "queue", "Q", "queue of the jobs (default \"default\")", false },
    { "params", "JSON", "params of the jobs, a JSON object (default {})", false },
    { "priority", "N", "-1000..1000 (default 0)", false },
    { "max-attempts", "N", "1..100 attempts per job (server default 3)", false },
    { "misfire", "M", "after downtime: catch_up (default) or skip", false },
    { "catch-up-max", "N", "catch_up: enqueue at most N missed fire times, 1..100", false },
    { NULL, NULL, NULL, false },
};

/* --- workflows --- */

/* Reads a whole file ("-": stdin) into a malloc'd string; NULL after printing why. */
static char *read_file(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    char *s = NULL;
    size_t len = 0, cap = 0, n;
    if (!f) {
        fprintf(stderr, "jobq workflow create: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    do {
        if (cap - len < 4096) {
            char *t = realloc(s, cap = cap ? cap * 2 : 8192);
            if (!t) {
                free(s);
                s = NULL;
                errno = ENOMEM;
                break;
            }
            s = t;
        }
        n = fread(s + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    if (s && ferror(f)) {
        free(s);
        s = NULL;
    }
    if (s)
        s[len] = '\0';
    else
        fprintf(stderr, "jobq workflow create: %s: %s\n", path, strerror(errno));
    if (f != stdin)
        fclose(f);
    return s;
}

/* The steps of a workflow file: a JSON array of steps, or an object {"name", "steps"}.
 * *steps gets the array as text (malloc'd), *name the file's name (malloc'd, or NULL).
 * Returns 0, or CLI_EXIT_INPUT after printing why. */
static int parse_steps_file(const char *path, const char *text, char **steps, char **name)
{
    json_error_t je;
    json_t *root = json_loads(text, 0, &je), *arr = root;
    *steps = *name = NULL;
    if (!root) {
        fprintf(stderr, "jobq workflow create: %s:%d:%d: not JSON: %s\n", path, je.line,
                je.column, je.text);
        return CLI_EXIT_INPUT;
    }
    if (json_is_object(root)) {
        arr = json_object_get(root, "steps");
        const char *n = json_string_value(json_object_get(root, "name"));
        *name = n ? strdup(n) : NULL;
    }
    if (!json_is_array(arr)) {
        fprintf(stderr, "jobq workflow create: %s: want a JSON array of steps, or an object "
                        "with \"steps\"\n", path);
        json_decref(root);
        free(*name);
        *name = NULL;
        return CLI_EXIT_INPUT;
    }
    *steps = json_dumps(arr, JSON_COMPACT);
    json_decref(root);
    return CLI_EXIT_OK;
}

/* Index of the step called key, or -1. */
static long step_index(const jobq_workflow *w, const char *key)
{
    for (size_t i = 0; key && i < w->nsteps; i++)
        if (w->steps[i].key && strcmp(w->steps[i].key, key) == 0)
            return (long)i;
    return -1;
}

/* The step a step hangs under in the tree: its first parent that exists, or -1 (a root). */
static long tree_parent(const jobq_workflow *w, size_t i)
{
    for (size_t k = 0; k < w->steps[i].ndepends_on; k++) {
        long p = step_index(w, w->steps[i].depends_on[k]);
        if (p >= 0 && (size_t)p != i)
            return p;
    }
    return -1;
}

/* "KEY  STATUS  ID  TYPE" plus why it waits or failed and its other parents. */
static void print_step(const jobq_workflow_step *s, long parent, const jobq_workflow *w)
{
    const jobq_job *j = s->job;
    printf("%s  %s", or_dash(s->key), or_dash(j->status_name));
    if (j->blocked_by > 0 && j->status == JOBQ_STATUS_PENDING)
        printf(" (waits for %d)", j->blocked_by);
    if (j->error_code)
        printf(" [%s]", j->error_code);
    printf("  %s  %s", or_dash(j->id), or_dash(j->type));
    bool first = true;
    for (size_t k = 0; k < s->ndepends_on; k++) {
        const char *pk = parent >= 0 ? w->steps[parent].key : NULL;
        if (pk && strcmp(s->depends_on[k], pk) == 0)
            continue;                    /* the one it hangs under */
        printf("%s%s", first ? "  (also after " : ", ", s->depends_on[k]);
        first = false;
    }
    printf("%s\n", first ? "" : ")");
}

/* Prints step i and, below it, the steps that hang under it. */
static void print_subtree(const jobq_workflow *w, size_t i, char *prefix, size_t plen,
                          bool last, bool root, bool *shown)
{
    static const char branch[] = "\u251c\u2500 ", corner[] = "\u2514\u2500 ";
    static const char bar[] = "\u2502  ", gap[] = "   ";
    shown[i] = true;
    printf("%s%s", prefix, root ? "" : last ? corner : branch);
    print_step(&w->steps[i], tree_parent(w, i), w);
    const char *more = root ? "" : last ? gap : bar;
    size_t n = plen + strlen(more);
    if (n >= PREFIX_MAX)
        return;                          /* deeper than any valid workflow */
    memcpy(prefix + plen, more, strlen(more) + 1);
    long lastchild = -1;
    for (size_t k = 0; k < w->nsteps; k++)
        if (!shown[k] && tree_parent(w, k) == (long)i)
            lastchild = (long)k;
    for (size_t k = 0; lastchild >= 0 && k <= (size_t)lastchild; k++)
        if (!shown[k] && tree_parent(w, k) == (long)i)
            print_subtree(w, k, prefix, n, k == (size_t)lastchild, false, shown);
    prefix[plen] = '\0';
}

static void print_workflow(const jobq_workflow *w)
{
    char prefix[PREFIX_MAX] = "";
    bool *shown = calloc(w->nsteps ? w->nsteps : 1, sizeof *shown);
    printf("workflow %s%s%s  %s  (%zu step%s)\n", or_dash(w->id), w->name ? "  " : "",
           w->name ? w->name : "", or_dash(w->status), w->nsteps, w->nsteps == 1 ? "" : "s");
    if (!shown)
        return;
    for (size_t i = 0; i < w->nsteps; i++)       /* roots, in step order */
        if (!shown[i] && tree_parent(w, i) < 0)
            print_subtree(w, i, prefix, 0, true, true, shown);
    for (size_t i = 0; i < w->nsteps; i++)       /* anything left (a cycle): shown flat */
        if (!shown[i])
            print_subtree(w, i, prefix, 0, true, true, shown);
    free(shown);
}

static void print_wf_created(const jobq_workflow *w)
{
    printf("%s\n", or_dash(w->id));         /* first line: the id alone, for `| head -1` */
    print_workflow(w);
}

/* Ends a verb whose call answers a workflow. Frees w. */
static int workflow_done(struct cli *cli, int err, jobq_workflow *w,
                         void (*human)(const jobq_workflow *))
{
    int rc = CLI_EXIT_OK;
    if (err)
        rc = cli_fail(cli, err);
    else if (cli->json)
        cli_print_json(cli);
    else
        human(w);
    jobq_workflow_free(w);
    return rc;
}

static int run_wf_create(struct cli *cli, const struct cli_args *a)
{
    const char *path = cli_str(a, "file");
    char *text = read_file(path), *steps = NULL, *name = NULL;
    jobq_workflow *w = NULL;
    if (!text)
        return CLI_EXIT_INPUT;
    int rc = parse_steps_file(path, text, &steps, &name);
    free(text);
    if (rc)
        return rc;
    if (!steps) {
        free(name);
        fprintf(stderr, "error: out_of_memory: cannot read the steps\n");
        return CLI_EXIT_SERVER;
    }
    const char *nm = cli_str(a, "name") ? cli_str(a, "name") : name;
    int err = jobq_workflow_create(cli->client, nm, steps, &w);
    free(steps);
    free(name);
    return workflow_done(cli, err, w, print_wf_created);
}

static int run_wf_show(struct cli *cli, const struct cli_args *a)
{
    jobq_workflow *w = NULL;
    int err = jobq_workflow_get(cli->client, a->pos[0], &w);
    return workflow_done(cli, err, w, print_workflow);
}

static const struct cli_opt wf_create_opts[] = {
    { "file", "FILE", "JSON array of steps, or {\"name\",\"steps\"} (- is stdin)", true },
    { "name", "NAME", "name of the workflow (wins over the file's)", false },
    { NULL, NULL, NULL, false },
};

/* --- table: two-word verbs before the one-word `schedules` (it would match them all) --- */

const struct cli_verb cmd_flow_verbs[] = {
    { "schedules list", "", 0, NULL, "List your cron schedules.", run_sched_list, 0 },
    { "schedules create", "NAME", 1, sched_create_opts,
      "Create a schedule: enqueue a job of --type at each --cron time.", run_sched_create, 0 },
    { "schedules show", "ID", 1, NULL, "Show one schedule.", run_sched_show, 0 },
    { "schedules pause", "ID", 1, NULL, "Pause a schedule (no jobs until resumed).",
      run_sched_pause, 0 },
    { "schedules resume", "ID", 1, NULL, "Resume a schedule from now (missed times skipped).",
      run_sched_resume, 0 },
    { "schedules delete", "ID", 1, NULL, "Delete a schedule (its jobs stay).", run_sched_delete,
      0 },
    { "schedules", "", 0, NULL, "List your cron schedules (see: jobq schedules --help).",
      run_sched_list, 0 },
    { "workflow create", "", 0, wf_create_opts,
      "Create a workflow: jobs that run in dependency order (prints its id first).",
      run_wf_create, 0 },
    { "workflow show", "ID", 1, NULL, "Show a workflow as a tree of steps with their status.",
      run_wf_show, 0 },
    { NULL, NULL, 0, NULL, NULL, NULL, 0 },
};
