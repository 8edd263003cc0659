/*
 * args.c - jobq command line parsing: global options, a verb's positionals and --options
 * (table-driven from struct cli_verb), typed option access and the generated --help.
 *
 * Options take "--name value" or "--name=value", may sit before, between or after the
 * positionals, and "--" ends them. Global options are accepted anywhere on the line.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The global options, shared by every verb's --help. */
static const struct cli_opt global_opts[] = {
    { "url", "URL", "server base URL (env JOBQ_URL, default http://127.0.0.1:8080)", false },
    { "token", "TOKEN", "bearer token (env JOBQ_TOKEN)", false },
    { "json", NULL, "print the server's JSON reply instead of a summary", false },
    { NULL, NULL, NULL, false },
};

/* Index of the option called name (up to len chars) in opts, or -1. */
static int find_opt(const struct cli_opt *opts, const char *name, size_t len)
{
    for (int i = 0; opts && opts[i].name; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return i;
    return -1;
}

/* Reads the value of option o at argv[*i] ("--o=v" or "--o v"); NULL plus a printed
 * usage error when it is missing or a flag was given one. */
static const char *opt_value(const struct cli_opt *o, int argc, char **argv, int *i)
{
    const char *eq = strchr(argv[*i], '=');
    if (!o->metavar) {
        if (!eq)
            return "";
        fprintf(stderr, "jobq: option --%s takes no value\n", o->name);
        return NULL;
    }
    if (eq)
        return eq + 1;
    if (*i + 1 >= argc) {
        fprintf(stderr, "jobq: option --%s needs a value (%s)\n", o->name, o->metavar);
        return NULL;
    }
    return argv[++*i];
}

int cli_global_opt(struct cli *cli, int argc, char **argv, int *i)
{
    const char *s = argv[*i];
    if (strncmp(s, "--", 2) != 0)
        return 0;
    int k = find_opt(global_opts, s + 2, strcspn(s + 2, "="));
    if (k < 0)
        return 0;
    const char *v = opt_value(&global_opts[k], argc, argv, i);
    if (!v)
        return -1;
    if (k == 0)
        cli->url = v;
    else if (k == 1)
        cli->token = v;
    else
        cli->json = true;
    return 1;
}

/* "-x" and "--x" are options; "-", "-5" and plain words are positionals. */
static bool looks_like_option(const char *s)
{
    return s[0] == '-' && s[1] != '\0' && !isdigit((unsigned char)s[1]);
}

/* Handles the option at argv[*i]. Returns -1 to go on, else an exit code. */
static int parse_opt(struct cli *cli, const struct cli_verb *v, int argc, char **argv, int *i,
                     struct cli_args *a)
{
    const char *s = argv[*i];
    if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
        cli_verb_usage(v, false);
        return CLI_EXIT_OK;
    }
    int g = cli_global_opt(cli, argc, argv, i);
    if (g != 0)
        return g > 0 ? -1 : CLI_EXIT_USAGE;
    int k = s[1] == '-' ? find_opt(v->opts, s + 2, strcspn(s + 2, "=")) : -1;
    if (k < 0) {
        fprintf(stderr, "jobq %s: unknown option %s\n", v->name, s);
        cli_verb_usage(v, true);
        return CLI_EXIT_USAGE;
    }
    if (!(a->val[k] = opt_value(&v->opts[k], argc, argv, i)))
        return CLI_EXIT_USAGE;
    return -1;
}

/* Checks positional count and required options once argv is consumed. */
static int check_complete(const struct cli_verb *v, const struct cli_args *a)
{
    if (a->npos < v->npos) {
        fprintf(stderr, "jobq %s: missing %s\n", v->name, v->positional);
        cli_verb_usage(v, true);
        return CLI_EXIT_USAGE;
    }
    for (int k = 0; v->opts && v->opts[k].name; k++) {
        if (v->opts[k].required && !a->val[k]) {
            fprintf(stderr, "jobq %s: option --%s is required\n", v->name, v->opts[k].name);
            cli_verb_usage(v, true);
            return CLI_EXIT_USAGE;
        }
    }
    return -1;
}

int cli_parse(struct cli *cli, const struct cli_verb *v, int argc, char **argv,
              struct cli_args *a)
{
    bool opts_done = false;
    memset(a, 0, sizeof *a);
    a->verb = v;
    for (int i = 0; i < argc; i++) {
        int rc;
        if (!opts_done && strcmp(argv[i], "--") == 0) {
            opts_done = true;
        } else if (!opts_done && looks_like_option(argv[i])) {
            if ((rc = parse_opt(cli, v, argc, argv, &i, a)) >= 0)
                return rc;
        } else if (a->npos < v->npos + v->npos_opt && a->npos < CLI_POS_MAX) {
            a->pos[a->npos++] = argv[i];
        } else {
            fprintf(stderr, "jobq %s: unexpected argument '%s'\n", v->name, argv[i]);
            cli_verb_usage(v, true);
            return CLI_EXIT_USAGE;
        }
    }
    return check_complete(v, a);
}

/* --- typed access --- */

const char *cli_str(const struct cli_args *a, const char *name)
{
    int k = find_opt(a->verb->opts, name, strlen(name));
    return k < 0 ? NULL : a->val[k];
}

bool cli_flag(const struct cli_args *a, const char *name)
{
    return cli_str(a, name) != NULL;
}

bool cli_int(const struct cli_args *a, const char *name, long long lo, long long hi,
             long long *out)
{
    const char *s = cli_str(a, name);
    char *end;
    if (!s)
        return true;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "jobq %s: --%s wants an integer in %lld..%lld, not '%s'\n",
                a->verb->name, name, lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

/* --- help --- */

static void print_opts(FILE *f, const struct cli_opt *opts)
{
    char left[64];
    for (int k = 0; opts && opts[k].name; k++) {
        snprintf(left, sizeof left, "--%s%s%s", opts[k].name, opts[k].metavar ? " " : "",
                 opts[k].metavar ? opts[k].metavar : "");
        fprintf(f, "  %-22s %s%s\n", left, opts[k].help, opts[k].required ? " (required)" : "");
    }
}

void cli_verb_usage(const struct cli_verb *v, bool to_stderr)
{
    FILE *f = to_stderr ? stderr : stdout;
    fprintf(f, "usage: jobq [global options] %s%s%s", v->name, *v->positional ? " " : "",
            v->positional);
    for (int k = 0; v->opts && v->opts[k].name; k++)
        if (v->opts[k].required)
            fprintf(f, " --%s %s", v->opts[k].name, v->opts[k].metavar);
    fprintf(f, "%s\n", v->opts ? " [options]" : "");
    if (to_stderr)
        return;                         /* after an error the synopsis is enough */
    fprintf(f, "%s\n", v->summary);
    if (v->opts) {
        fprintf(f, "\noptions:\n");
        print_opts(f, v->opts);
    }
    fprintf(f, "\nglobal options:\n");
    print_opts(f, global_opts);
    fprintf(f, "  %-22s %s\n", "--help", "show this help");
    fprintf(f, "\nexit codes: 0 ok, 1 server error, 2 usage error, 3 cannot connect, "
               "4 input file unreadable\n");
}
