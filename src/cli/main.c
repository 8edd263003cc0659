/*
 * main.c - jobq, the command line client of jobqd:
 *     jobq [--url U] [--token T] [--json] VERB [args...]
 * Finds VERB in the verb tables of the cmd_*.c files, lets args.c parse the rest, makes one
 * libjobq client and runs the verb. Exit codes: see CLI_EXIT_* in cli.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Every verb table, in the order `jobq --help` lists them. */
static const struct cli_verb *const verb_tables[] = {
    cmd_jobs_verbs,
    cmd_work_verbs,
    cmd_token_verbs,
    cmd_wait_verbs,
    cmd_search_verbs,
    cmd_flow_verbs,
};

enum { NTABLES = sizeof verb_tables / sizeof verb_tables[0] };

static void usage(FILE *f)
{
    fprintf(f, "usage: jobq [--url URL] [--token TOKEN] [--json] VERB [args...]\n"
               "\n"
               "global options (also accepted after the verb):\n"
               "  --url URL      server base URL (env JOBQ_URL, default http://127.0.0.1:8080)\n"
               "  --token TOKEN  bearer token (env JOBQ_TOKEN)\n"
               "  --json         print the server's JSON reply instead of a summary\n"
               "  --help         this help; `jobq VERB --help` for a verb\n"
               "\nverbs:\n");
    for (int t = 0; t < NTABLES; t++)
        for (const struct cli_verb *v = verb_tables[t]; v->name; v++)
            fprintf(f, "  %-17s %s\n", v->name, v->summary);
    fprintf(f, "\nexit codes (stable, for scripts):\n"
               "  0  success\n"
               "  1  the server answered with an error (the message names its code)\n"
               "  2  usage error: bad command line or an argument refused before sending\n"
               "  3  cannot connect, timeout or transport error\n"
               "  4  an input file cannot be read (enqueue --file), or is not JSON\n"
               "     (workflow create --file)\n"
               "  5  wait: the job ended failed or cancelled\n"
               "  6  wait: the job did not end within --timeout\n");
}

/* Does verb name (one word, or two separated by a space) match argv? Sets *words. */
static bool verb_matches(const char *name, int argc, char **argv, int *words)
{
    const char *sp = strchr(name, ' ');
    if (!sp) {
        *words = 1;
        return strcmp(name, argv[0]) == 0;
    }
    size_t n = (size_t)(sp - name);
    *words = 2;
    return strlen(argv[0]) == n && strncmp(name, argv[0], n) == 0 && argc > 1 &&
           strcmp(sp + 1, argv[1]) == 0;
}

static const struct cli_verb *find_verb(int argc, char **argv, int *words)
{
    for (int t = 0; t < NTABLES; t++)
        for (const struct cli_verb *v = verb_tables[t]; v->name; v++)
            if (verb_matches(v->name, argc, argv, words))
                return v;
    return NULL;
}

/* For "jobq token" and "jobq token --help": lists the verbs of the group word. Returns
 * the exit code, or -1 when word names no group. */
static int group_usage(const char *word, bool help)
{
    size_t n = strlen(word);
    bool any = false;
    for (int t = 0; t < NTABLES; t++) {
        for (const struct cli_verb *v = verb_tables[t]; v->name; v++) {
            if (strncmp(v->name, word, n) != 0 || v->name[n] != ' ')
                continue;
            if (!any)
                fprintf(help ? stdout : stderr, "usage: jobq %s VERB ...\n", word);
            any = true;
            fprintf(help ? stdout : stderr, "  %-17s %s\n", v->name, v->summary);
        }
    }
    return !any ? -1 : help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

/* Is word the first word of a two-word verb ("token", "schedules")? */
static bool is_group(const char *word)
{
    size_t n = strlen(word);
    for (int t = 0; t < NTABLES; t++)
        for (const struct cli_verb *v = verb_tables[t]; v->name; v++)
            if (strncmp(v->name, word, n) == 0 && v->name[n] == ' ')
                return true;
    return false;
}

static bool is_help(const char *s)
{
    return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0;
}

/* Global options before the verb. Returns -1 to go on, else an exit code. */
static int parse_globals(struct cli *cli, int argc, char **argv, int *i)
{
    for (; *i < argc && argv[*i][0] == '-'; (*i)++) {
        if (strcmp(argv[*i], "--help") == 0 || strcmp(argv[*i], "-h") == 0) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        int g = cli_global_opt(cli, argc, argv, i);
        if (g < 0)
            return CLI_EXIT_USAGE;
        if (g == 0) {
            fprintf(stderr, "jobq: unknown option %s (see jobq --help)\n", argv[*i]);
            return CLI_EXIT_USAGE;
        }
    }
    if (*i >= argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/* Runs the verb with a fresh client. */
static int run(struct cli *cli, const struct cli_args *a)
{
    if (!(cli->client = jobq_client_new(cli->url, cli->token))) {
        fprintf(stderr, "error: out_of_memory: cannot create the client\n");
        return CLI_EXIT_SERVER;
    }
    int rc = a->verb->run(cli, a);
    jobq_client_free(cli->client);
    cli->client = NULL;
    return rc;
}

int main(int argc, char **argv)
{
    struct cli cli = { 0 };
    struct cli_args a;
    int i = 1, words = 0, rc;
    if ((rc = parse_globals(&cli, argc, argv, &i)) >= 0)
        return rc;
    const struct cli_verb *v = find_verb(argc - i, argv + i, &words);
    bool help = i + 1 < argc && is_help(argv[i + 1]);
    if (v && words == 1 && help && is_group(argv[i])) {  /* `jobq schedules --help` */
        cli_verb_usage(v, false);
        fputc('\n', stdout);
        return group_usage(argv[i], true);
    }
    if (!v) {
        if ((rc = group_usage(argv[i], help)) >= 0)
            return rc;
        fprintf(stderr, "jobq: unknown verb '%s' (see jobq --help)\n", argv[i]);
        return CLI_EXIT_USAGE;
    }
    i += words;
    if ((rc = cli_parse(&cli, v, argc - i, argv + i, &a)) >= 0)
        return rc;
    return run(&cli, &a);
}
