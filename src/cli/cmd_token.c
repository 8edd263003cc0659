/*
 * cmd_token.c - jobq admin verbs: token create, token revoke.
 *
 * `token create` prints the secret alone on the first line (it is shown only once), so
 * scripts can take it with `| head -1`.
 */
#include <limits.h>
#include <stdio.h>

#include "cli.h"

static int run_create(struct cli *cli, const struct cli_args *a)
{
    jobq_token *t = NULL;
    long long limit = -1;
    if (!cli_int(a, "active-limit", 0, 100000000, &limit))
        return CLI_EXIT_USAGE;
    int err = jobq_token_create_limit(cli->client, cli_str(a, "user"), cli_str(a, "role"),
                                      cli_str(a, "name"), (long)limit, &t);
    if (err)
        return cli_fail(cli, err);
    if (cli->json) {
        cli_print_json(cli);
    } else {
        printf("%s\n", t->token);
        printf("id %s  user %s  role %s%s%s\n", t->id ? t->id : "-",
               t->user_id ? t->user_id : "-", t->role ? t->role : "-", t->name ? "  name " : "",
               t->name ? t->name : "");
    }
    jobq_token_free(t);
    return CLI_EXIT_OK;
}

static const struct cli_opt create_opts[] = {
    { "user", "U", "user id the token acts as", true },
    { "role", "R", "user|worker|admin", true },
    { "name", "N", "label to recognise the token by", false },
    { "active-limit", "N", "max pending+processing jobs of the user (0: unlimited)", false },
    { NULL, NULL, NULL, false },
};

static int run_revoke(struct cli *cli, const struct cli_args *a)
{
    int err = jobq_token_revoke(cli->client, a->pos[0]);
    if (err)
        return cli_fail(cli, err);
    if (!cli->json)
        printf("revoked %s\n", a->pos[0]);
    return CLI_EXIT_OK;
}

const struct cli_verb cmd_token_verbs[] = {
    { "token create", "", 0, create_opts,
      "Create an API token (admin); prints the secret first.", run_create, 0 },
    { "token revoke", "ID", 1, NULL, "Revoke an API token (admin).", run_revoke, 0 },
    { NULL, NULL, 0, NULL, NULL, NULL, 0 },
};
