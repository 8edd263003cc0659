/*
 * cli.h - the jobq command line tool: verb table types, argument parsing and output helpers
 * shared by main.c, args.c, out.c and the cmd_*.c files. Uses libjobq (jobq.h) only.
 *
 * A verb is a row of a table (struct cli_verb): its name, positional arguments, option
 * table and run function. main.c finds the row, args.c parses argv against it (printing
 * usage errors and --help), and the run function talks to the server through libjobq.
 */
#ifndef JOBQ_CLI_H
#define JOBQ_CLI_H

#include <stdbool.h>

#include "jobq.h"

/* Exit codes of the jobq command; scripts rely on them. */
enum {
    CLI_EXIT_OK = 0,       /* success */
    CLI_EXIT_SERVER = 1,   /* the server answered with an error (or an unusable reply) */
    CLI_EXIT_USAGE = 2,    /* bad command line */
    CLI_EXIT_CONNECT = 3,  /* cannot connect / no reply from the server */
    CLI_EXIT_INPUT = 4,    /* an input file cannot be read (enqueue --file), or is not JSON
                            * (workflow create --file) */
    CLI_EXIT_JOB_FAILED = 5, /* wait: the job ended failed or cancelled */
    CLI_EXIT_TIMEOUT = 6,  /* wait: it did not end within --timeout */
};

enum {
    CLI_POS_MAX = 1000,    /* `cancel ID...` takes up to the API's 1000 ids */
    CLI_OPT_MAX = 24,      /* longest option table, counting the terminator */
};

/* Process-wide settings, set by the global options wherever they appear on the line. */
struct cli {
    const char *url;       /* --url, NULL: $JOBQ_URL or the default */
    const char *token;     /* --token, NULL: $JOBQ_TOKEN */
    bool json;             /* --json: print the server's JSON instead of a summary */
    jobq_client *client;   /* made once the command line is parsed */
};

/* One --option of a verb; a table ends with a NULL name. */
struct cli_opt {
    const char *name;      /* without the leading "--" */
    const char *metavar;   /* value placeholder ("N"); NULL for a flag */
    const char *help;      /* one line for --help */
    bool required;         /* the verb cannot run without it */
};

struct cli_args;

struct cli_verb {
    const char *name;                 /* "enqueue", or two words: "token create" */
    const char *positional;           /* synopsis of the positionals ("TYPE"), "" for none */
    int npos;                         /* positionals required */
    const struct cli_opt *opts;       /* may be NULL */
    const char *summary;              /* one line for the verb list */
    int (*run)(struct cli *cli, const struct cli_args *a);  /* returns an exit code */
    int npos_opt;                     /* optional positionals allowed after the npos */
};

/* argv parsed against one verb. Strings are borrowed from argv. */
struct cli_args {
    const struct cli_verb *verb;
    const char *pos[CLI_POS_MAX];     /* positionals in order */
    int npos;
    const char *val[CLI_OPT_MAX];     /* by index in verb->opts; "" for a set flag */
};

/* --- args.c --- */

/* Applies a global option (--url, --token, --json) at argv[*i]; advances *i past it.
 * Returns 1 when consumed, 0 when argv[*i] is not a global option, -1 on a usage error
 * (printed). */
int cli_global_opt(struct cli *cli, int argc, char **argv, int *i);
/* Parses argc/argv (after the verb words) into *a. Returns -1 when done and the verb
 * should run, else an exit code to end with (0 after --help, CLI_EXIT_USAGE). */
int cli_parse(struct cli *cli, const struct cli_verb *v, int argc, char **argv,
              struct cli_args *a);
void cli_verb_usage(const struct cli_verb *v, bool to_stderr);

const char *cli_str(const struct cli_args *a, const char *name);   /* NULL when absent */
bool cli_flag(const struct cli_args *a, const char *name);
/* Integer option into *out (left alone when absent). On a bad value prints a usage error
 * and returns false. */
bool cli_int(const struct cli_args *a, const char *name, long long lo, long long hi,
             long long *out);

/* --- out.c --- */

/* Reports the failed libjobq call err on stderr and returns the exit code for it. */
int cli_fail(struct cli *cli, int err);
/* Prints the last reply body (the server's JSON) followed by a newline; nothing when
 * the reply had no body. Returns CLI_EXIT_OK. */
int cli_print_json(struct cli *cli);
/* Human forms of a job: every field, or one line "ID STATUS". */
void cli_print_job(const jobq_job *j);
void cli_print_job_line(const jobq_job *j);
/* Table of jobs: header row (when header), one row per job, then a footer with the count,
 * total and how to get the next page (when footer). */
void cli_print_job_table(const jobq_job_list *l, bool header, bool footer);
/* Prints a libjobq stats reply in human form. */
void cli_print_stats(const jobq_stats *s);
/* Ends a verb whose call answers one job: reports err, or prints the job (--json: the
 * reply; else human(j)). Frees j. Returns the exit code. */
int cli_job_done(struct cli *cli, int err, jobq_job *j, void (*human)(const jobq_job *));

/* --- verb tables (cmd_*.c), each ended by a row with a NULL name --- */

extern const struct cli_verb cmd_jobs_verbs[];
extern const struct cli_verb cmd_work_verbs[];
extern const struct cli_verb cmd_token_verbs[];
extern const struct cli_verb cmd_wait_verbs[];
extern const struct cli_verb cmd_search_verbs[];
extern const struct cli_verb cmd_flow_verbs[];

/* --- cmd_bulk.c --- */

/* enqueue --file: creates the jobs of a JSONL file in batches. Returns the exit code. */
int cli_enqueue_file(struct cli *cli, const struct cli_args *a, const char *path);

#endif /* JOBQ_CLI_H */
