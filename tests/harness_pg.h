/*
 * harness_pg.h - a throwaway PostgreSQL cluster for the test harness.
 *
 * With JOBQ_TEST_BACKEND=postgres, th_main starts one cluster per test
 * process (initdb + pg_ctl in a temp dir on a free port, as the postgres
 * user when running as root) and stops it at the end; testsrv_start gives
 * every server a fresh database (--db postgres://…). JOBQ_TEST_PG_URL=
 * postgres://user@host:port names an existing cluster to use instead.
 */
#ifndef JQ_TEST_HARNESS_PG_H
#define JQ_TEST_HARNESS_PG_H
#include <stdbool.h>

bool  thpg_enabled(void);        /* JOBQ_TEST_BACKEND=postgres */
int   thpg_start(void);          /* 0 on success; idempotent; stopped at exit */
void  thpg_stop(void);
char *thpg_new_db(void);         /* URL of a new empty database; malloc'd; NULL on error */
const char *thpg_base(void);     /* "postgres://postgres@127.0.0.1:PORT" */
int   thpg_restart_immediate(void);   /* pg_ctl restart -m immediate; 0 on success */
int   thpg_down(void);                /* pg_ctl stop -m immediate (a crash); 0 on success */
int   thpg_up(void);                  /* pg_ctl start after thpg_down; 0 on success */
/* Runs sql on the database of url with psql; output (malloc'd) in *out if out. */
int   thpg_psql(const char *url, const char *sql, char **out);

#endif
