/*
 * test_predaudit.c - RELIABILITY.md T16: store predicate audit.
 *
 * Static part (no server): every .h, then every .c under src/ is tokenized; each run of
 * adjacent C string literals, with object-like string macros (SCOPE, LEASE_OK, JOB_COLS
 * from sq_int.h, ...) expanded, is one SQL text; literal runs inside other #define bodies
 * (function-like ones too) are texts of their own. A text is audited when one of its
 * statements names a tenant table in a table position: FROM / JOIN / UPDATE / INTO / ON
 * / TABLE followed by the word `jobs` or `job_logs` (so jobs_fts, job_logs_fts,
 * job_deps, job_terms and index names such as jobs_pickup do not count). Tenant tables
 * here are the plan's two, jobs and job_logs: events also carries user_id (on PostgreSQL
 * its RLS is checked below); job_deps and job_terms have no user_id and are reached
 * through jobs.
 *
 * Each audited statement (the text split at ';' outside quotes) must bind user_id:
 * `[alias.]user_id = ?N | $N | current_setting(...)` (or `?N = user_id`), or list
 * user_id in the column list of an INSERT INTO jobs/job_logs. A text with an unscoped
 * statement must be on the allow-list below: file, a substring, how many unscoped texts
 * of that file it matches (1 but for the EXPLAIN probes), and a one-line reason.
 * The test fails on a new unlisted unscoped text, on a stale entry (matches nothing any
 * more) and on an entry matching more or fewer texts than it says (so a copied statement
 * cannot ride on an old entry). audit_has_teeth runs the same audit on a copy of src/
 * with statements added, copied and scoped, and expects exactly those failures.
 *
 * Limits: dynamically built SQL is audited fragment by fragment (the list builders'
 * user_id clause is a separate literal, hence their entries); a migration text is
 * allow-listed as a whole (a new migration needs an entry); comma joins (`FROM a, jobs`)
 * are not seen as table references; `user_id = ?N` passes even where the caller may bind
 * NULL for admins (the `?N IS NULL OR user_id = ?N` scope form, by design).
 *
 * PostgreSQL part: a throwaway cluster (the harness, JOBQ_TEST_BACKEND=postgres, forced
 * here as in test_pg_cluster.c); jobqd migrates a fresh database; then: RLS enabled and
 * forced on jobs, job_logs, events; jobq_app policies compare user_id with jobq.user_id
 * and no policy widens that; jobq_app (the role of user-scoped transactions, SET LOCAL
 * ROLE in pg_conn.c) has neither BYPASSRLS nor SUPERUSER; in a transaction begun as
 * pg_conn.c begins one, current_user is jobq_app and row security is active. The login
 * role itself (the cluster's superuser here) and the RLS state of the other user_id
 * tables are printed, not asserted.
 */
#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "harness_pg.h"

__attribute__((constructor)) static void force_postgres(void)
{
    setenv("JOBQ_TEST_BACKEND", "postgres", 1);
}

/* --- allow-list: texts on jobs/job_logs that need no user_id bind --- */

/* file: a suffix of the path under src/; needle: a substring of the SQL text; n: how
 * many unscoped texts of that file it must match (1 unless said). Kinds of reason:
 *   schema   - migrations, triggers, indexes (DDL; triggers act on the row in hand);
 *   maint    - lease rescue, expiry, retention cleanup, their timers (leader/maintenance,
 *              jobq_service on PostgreSQL);
 *   worker   - claim by queue, or one job by id AND its lease token (worker auth);
 *   follow   - runs in the same transaction right after a user-scoped statement that
 *              found the row (404 otherwise), by that row's id;
 *   builder  - a fragment of a dynamically built list; the user_id clause is appended
 *              by the same function when the caller is not an admin;
 *   admin    - all users by design (admin-only endpoint, stats aggregates);
 *   explain  - fixed EXPLAIN probes with literal values (GET /v1/admin/plans). */
struct allow { const char *file, *needle; int n; const char *reason; };

static struct allow allow[] = {
    /* --- SQLite: src/store/sqlite/sq_conn.c --- */
    {"sq_conn.c", "CREATE TABLE jobs (", 1, "schema: migration 1 (tables, indexes, triggers)"},
    {"sq_conn.c", "UPDATE jobs SET params=?2", 1,
     "follow: debounce, the pending job just found by (user_id, unique_key)"},
    {"sq_conn.c", "UPDATE jobs SET on_parent_failure=?2", 1,
     "follow: blocks a job this create just inserted for the user"},
    {"sq_conn.c", "WHERE id=?1 AND status='pending' AND coalesce(on_parent_failure", 1,
     "follow: cancels a job this create just inserted when a parent already failed"},
    {"sq_conn.c", "SELECT d.child_id, json_group_array", 1,
     "worker: parents of the jobs this claim just leased"},
    {"sq_conn.c", "WITH RECURSIVE u(uid, n)", 1, "worker: fair claim by queue"},
    {"sq_conn.c", "INDEXED BY jobs_pickup WHERE status='pending' AND blocked=0 AND queue=?1"
                  " AND run_at<=?2 AND (expires_at", 1, "worker: claim by queue"},
    {"sq_conn.c", "SELECT 1 FROM jobs INDEXED BY jobs_pickup WHERE", 1,
     "worker: long-poll wake check, is anything due in the queue"},
    {"sq_conn.c", "coalesce(?2, 1) AND", 1, "admin: bulk cancel over all users (ST_CANCEL_FILTER)"},
    {"sq_conn.c", "DELETE FROM job_logs WHERE job_id IN (SELECT id FROM jobs INDEXED BY"
                  " jobs_cleanup", 1, "maint: retention cleanup of logs"},
    {"sq_conn.c", "DELETE FROM job_deps WHERE parent_id IN", 1,
     "maint: retention cleanup of edges"},
    {"sq_conn.c", "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs INDEXED BY jobs_cleanup", 1,
     "maint: retention cleanup of jobs"},
    {"sq_conn.c", "INDEXED BY jobs_workflow WHERE workflow_id=?1 ORDER BY id", 1,
     "follow: steps of the workflow ST_WF_GET just found in the user's scope"},
    {"sq_conn.c", "JOIN job_deps d ON d.child_id = j.id WHERE j.workflow_id=?1", 1,
     "follow: edges of the workflow ST_WF_GET just found in the user's scope"},
    {"sq_conn.c", "SELECT c.key, (SELECT min(run_at) FROM jobs", 1,
     "admin: oldest due job per queue (stats aggregate, no job data)"},
    {"sq_conn.c", "DELETE FROM job_logs WHERE job_id=?1", 1,
     "follow: logs of the job the scoped ST_DELETE just removed"},
    {"sq_conn.c", "result=j.value->'r'", 1, "worker: complete many, each by id and lease token"},
    {"sq_conn.c", "INDEXED BY sqlite_autoindex_jobs_1 SET status=CASE", 1,
     "worker: fail many, each by id and lease token"},
    {"sq_conn.c", "SELECT id FROM jobs WHERE id IN (SELECT value->>'i' FROM json_each(?1))", 1,
     "worker: which ids of a failed finish-many exist (lease_lost vs not_found)"},
    {"sq_conn.c", "UPDATE jobs SET lease_expires_at=?3+?4", 1, "worker: heartbeat by id and lease"},
    {"sq_conn.c", "UPDATE jobs SET status='completed', result=?4", 1,
     "worker: complete by id and lease"},
    {"sq_conn.c", "jq_retry(attempts, max_attempts, ?4)", 1, "worker: fail by id and lease"},
    {"sq_conn.c", "jq_retry(attempts, max_attempts, 1)", 1, "maint: rescue of expired leases"},
    {"sq_conn.c", "SELECT min(lease_expires_at) FROM jobs", 1, "maint: next rescue timer"},
    {"sq_conn.c", "error_code='expired'", 1, "maint: expiry of jobs never claimed in time"},
    {"sq_conn.c", "SELECT min(expires_at) FROM jobs", 1, "maint: next expiry timer"},
    {"sq_conn.c", "FROM job_logs WHERE job_id=?1 AND id>?2", 1,
     "follow: logs of the job r_get just found in the user's scope"},
    {"sq_conn.c", "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE 1", 1,
     "builder: sq__list_st appends AND user_id=?1 (LF_USER) for non-admins"},
    {"sq_conn.c", "SELECT %s FROM jobs%s WHERE 1", 1,
     "builder: sq__list_st appends AND user_id=?1 (LF_USER) for non-admins"},
    {"sq_conn.c", "SELECT l.job_id FROM job_logs_fts JOIN job_logs l", 1,
     "builder: log filter, AND l.user_id = ?1 appended (LF_USER) for non-admins"},
    {"sq_conn.c", "UNION ALL SELECT id FROM jobs WHERE rowid > (SELECT upto", 1,
     "builder: containment candidates not indexed yet; the list around them is scoped"},
    {"sq_conn.c", "PRAGMA legacy_alter_table=ON;CREATE TABLE events_v2", 1,
     "schema: migration 2 (events, jobs_expiry, batched terms)"},
    {"sq_conn.c", "SELECT max(r), count(*) FROM (SELECT rowid AS r FROM jobs", 1,
     "maint: the next batch of jobs whose containment terms are not indexed yet"},
    {"sq_conn.c", "INSERT OR IGNORE INTO job_terms SELECT term, user_id, id FROM", 1,
     "maint: containment terms of a batch of jobs (each job's own user_id)"},
    /* --- PostgreSQL (user-scoped work runs as jobq_app under RLS, see below) --- */
    {"pg_schema.c", "CREATE ROLE jobq_app NOLOGIN NOBYPASSRLS", 1, "schema: migration 1"},
    {"pg_schema.c", "ADD COLUMN workflow_id", 1, "schema: workflows migration"},
    {"pg_schema.c", "DROP TRIGGER a_jobs_event_lock ON jobs", 1, "schema: event queue migration"},
    {"pg_schema.c", "ALTER FUNCTION jq_seq_events() SET jit = off", 1,
     "schema: migration 4 (statement-level event trigger, jq_deps early return, no JIT)"},
    {"pg_int.h", "JOIN jobs q ON q.id = d.parent_id", 1,
     "worker: parents column of the jobs a claim just leased (PG_PARENTS_COL)"},
    {"pg_flow.c", " FROM jobs WHERE workflow_id=$1 ORDER BY id", 1,
     "follow: steps of the workflow just found with user_id=$2"},
    {"pg_flow.c", "JOIN job_deps d ON d.child_id = j.id WHERE j.workflow_id=$1", 1,
     "follow: edges of the workflow just found with user_id=$2"},
    {"pg_more.c", "SELECT c.key, (SELECT min(run_at) FROM jobs", 1,
     "admin: oldest due job per queue (stats aggregate)"},
    {"pg_more.c", "status='processing' AND lease_expires_at<=$1", 1, "maint: lease rescue"},
    {"pg_more.c", "status='pending' AND expires_at<=$1", 1, "maint: expiry"},
    {"pg_more.c", "l AS (DELETE FROM job_logs", 1, "maint: retention cleanup"},
    {"pg_more.c", "SELECT min(lease_expires_at) FROM jobs", 1, "maint: next rescue timer"},
    {"pg_more.c", "SELECT min(expires_at) FROM jobs", 1, "maint: next expiry timer"},
    {"pg_more.c", "queue='q' AND run_at<=0", 1, "explain: claim plan"},
    {"pg_more.c", "lease_expires_at<=0", 1, "explain: rescue plan"},
    {"pg_more.c", "status='pending' AND expires_at<=0", 1, "explain: expiry plan"},
    {"pg_more.c", "SELECT * FROM jobs WHERE id='x'", 1, "explain: get plan"},
    {"pg_more.c", "job_id='x' AND id>0", 1, "explain: logs plan"},
    {"pg_more.c", "SELECT * FROM jobs ORDER BY", 1, "explain: admin list plan"},
    {"pg_more.c", "user_id='u'", 6, "explain: per-user list/dedup plans (literal user)"},
    {"pg_more.c", "completed_at<0 ORDER BY", 1, "explain: cleanup plan"},
    {"pg_more.c", "to_tsquery('simple', 'x')", 1, "explain: log search plan"},
    {"pg_ops.c", "UPDATE jobs SET params=$2::jsonb", 1,
     "follow: debounce, the pending job just found by (user_id, unique_key)"},
    {"pg_ops.c", "WITH b AS (SELECT count(*) FILTER", 1,
     "follow: blocks a job this create just inserted for the user"},
    {"pg_ops.c", " FROM jobs WHERE id=$1", 1,
     "follow: a retried create looks for the id it generated itself (jobq_app, RLS)"},
    {"pg_ops.c", "DELETE FROM job_logs WHERE job_id=$1", 1,
     "follow: logs of the job the scoped delete just removed"},
    {"pg_ops.c", "SELECT %s FROM jobs WHERE true", 1,
     "builder: list_sql appends AND user_id=$n when f->user_id (non-admin)"},
    {"pg_ops.c", "SELECT l.job_id FROM job_logs l WHERE", 1,
     "builder: list_sql appends AND l.user_id=$n when f->user_id"},
    {"pg_ops.c", "WITH u AS (SELECT DISTINCT user_id FROM jobs", 1, "worker: fair claim by queue"},
    {"pg_ops.c", "WITH picked AS (SELECT id FROM jobs WHERE status='pending' AND blocked=0", 1,
     "worker: claim by queue"},
    {"pg_ops.c", ", (SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status='pending'", 1,
     "worker: claim by queue (the RETURNING tail: are more claimable?)"},
    {"pg_ops.c", "UPDATE jobs SET lease_expires_at=$3+$4", 1, "worker: heartbeat by id and lease"},
    {"pg_ops.c", "UPDATE jobs SET status='completed', result=$4::jsonb", 1,
     "worker: complete by id and lease"},
    {"pg_ops.c", "UPDATE jobs SET status=CASE WHEN ($4::boolean", 1,
     "worker: fail by id and lease"},
    {"pg_ops.c", "AS x(i text, l text, r jsonb)", 1,
     "worker: complete many, each by id and lease token"},
    {"pg_ops.c", "UPDATE jobs SET status=CASE WHEN x.y", 1,
     "worker: fail many, each by id and lease token"},
    {"pg_ops.c", "SELECT id FROM jobs WHERE id IN (SELECT x.i FROM jsonb_to_recordset", 1,
     "worker: which ids of a failed finish-many exist (lease_lost vs not_found)"},
    {"pg_ops.c", "FROM job_logs WHERE job_id=$1 AND id>$2", 1,
     "follow: logs of the job just found in the user's scope"},
};
static int hits[sizeof allow / sizeof *allow];   /* unscoped texts each entry matched */

/* --- text extraction --- */

struct buf { char *p; size_t n, cap; };

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

struct macro { char name[64]; char *val; };
struct text { char file[256]; int line; char *sql; };

static struct macro macros[256];
static int n_macros;
static struct text *texts;
static int n_texts, cap_texts;

static const char *macro_val(const char *name, size_t n)
{
    for (int i = n_macros - 1; i >= 0; i--)
        if (strlen(macros[i].name) == n && !memcmp(macros[i].name, name, n))
            return macros[i].val;
    return NULL;
}

static bool is_id(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

/* Reads a string literal at *pp (at the opening quote); appends its bytes to b. */
static void read_lit(const char **pp, const char *end, struct buf *b, int *line)
{
    const char *p = *pp + 1;
    while (p < end && *p != '"') {
        if (*p == '\\' && p + 1 < end) {
            char c = p[1];
            char o = c == 'n' ? '\n' : c == 't' ? '\t' : c;
            if (c == '\n') (*line)++;
            else buf_add(b, &o, 1);
            p += 2;
            continue;
        }
        if (*p == '\n') (*line)++;
        buf_add(b, p, 1);
        p++;
    }
    *pp = p < end ? p + 1 : p;
}

/* Skips spaces, comments and (outside directives) newlines; *line counts. In a
 * directive (dir), stops at an unescaped newline. */
static const char *skip_ws(const char *p, const char *end, int *line, bool dir)
{
    for (;;) {
        if (p >= end) return p;
        if (*p == '\\' && p + 1 < end && p[1] == '\n') { p += 2; (*line)++; continue; }
        if (*p == '\n') { if (dir) return p; (*line)++; p++; continue; }
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\f') { p++; continue; }
        if (p + 1 < end && p[0] == '/' && p[1] == '/') {
            while (p < end && *p != '\n') p++;
            continue;
        }
        if (p + 1 < end && p[0] == '/' && p[1] == '*') {
            p += 2;
            while (p + 1 < end && !(p[0] == '*' && p[1] == '/')) { if (*p == '\n') (*line)++; p++; }
            p = p + 2 <= end ? p + 2 : end;
            continue;
        }
        return p;
    }
}

static void add_text(const char *file, int line, const char *sql)
{
    if (n_texts == cap_texts) {
        cap_texts = cap_texts ? cap_texts * 2 : 256;
        texts = realloc(texts, (size_t)cap_texts * sizeof *texts);
    }
    struct text *t = &texts[n_texts++];
    snprintf(t->file, sizeof t->file, "%s", file);
    t->line = line;
    t->sql = strdup(sql);
}

/* One step of the scan at *pp (not at white space): a run of adjacent string literals
 * and string macros becomes a text; a char literal or an identifier is skipped, as is
 * one other character. In a directive (dir), a run ends at the end of the line. */
static void scan_step(const char **pp, const char *end, int *line, bool dir, const char *rel)
{
    const char *p = *pp;
    if (*p == '\'') {                      /* char literal */
        p++;
        while (p < end && *p != '\'') p += *p == '\\' ? 2 : 1;
        *pp = p < end ? p + 1 : end;
        return;
    }
    if (is_id(*p)) {
        const char *s = p;
        while (p < end && is_id(*p)) p++;
        if (!macro_val(s, (size_t)(p - s))) { *pp = p; return; }
        p = s;
    } else if (*p != '"') {
        *pp = p + 1;
        return;
    }
    struct buf t = {0};                    /* a run of literals and string macros */
    int l0 = *line;
    for (;;) {
        if (p < end && *p == '"') {
            read_lit(&p, end, &t, line);
        } else if (p < end && is_id(*p)) {
            const char *i0 = p;
            while (p < end && is_id(*p)) p++;
            const char *v = macro_val(i0, (size_t)(p - i0));
            if (!v) { p = i0; break; }
            buf_add(&t, v, strlen(v));
        } else {
            break;
        }
        int l1 = *line;
        const char *n2 = skip_ws(p, end, line, dir);
        if (n2 < end && (*n2 == '"' || is_id(*n2))) { p = n2; continue; }
        *line = l1;                        /* the caller counts those lines */
        break;
    }
    add_text(rel, l0, t.p ? t.p : "");
    free(t.p);
    *pp = p;
}

/* Tokenizes one file: string-literal runs become texts, with object-like string macros
 * (a #define made only of literals and string macros) expanded where they are used.
 * Other #define bodies (function-like ones included) are scanned like code. */
static void scan_file(const char *path, const char *rel, bool keep_macros)
{
    FILE *f = fopen(path, "rb");
    if (!f) { th_fail(__FILE__, __LINE__, "cannot open %s", path); return; }
    struct buf src = {0};
    char chunk[8192];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) buf_add(&src, chunk, r);
    fclose(f);
    if (!src.p) return;
    const char *p = src.p, *end = src.p + src.n;
    int line = 1;
    bool bol = true;                       /* at the beginning of a line */
    int mac_first = n_macros;              /* macros of this file (file-local scope) */
    while (p < end) {
        const char *q = skip_ws(p, end, &line, false);
        if (q > p && memchr(p, '\n', (size_t)(q - p))) bol = true;
        p = q;
        if (p >= end) break;
        if (!(*p == '#' && bol)) {
            bol = false;
            scan_step(&p, end, &line, false, rel);
            continue;
        }
        /* a directive */
        p = skip_ws(p + 1, end, &line, true);
        const char *d = p;
        while (p < end && is_id(*p)) p++;
        if (p - d == 6 && !memcmp(d, "define", 6)) {
            p = skip_ws(p, end, &line, true);
            const char *nm = p;
            while (p < end && is_id(*p)) p++;
            size_t nlen = (size_t)(p - nm);
            const char *body = p;
            int body_line = line;
            bool string_macro = false;
            if (!(p < end && *p == '(') && nlen && nlen < sizeof macros[0].name &&
                n_macros < (int)(sizeof macros / sizeof *macros)) {
                struct buf v = {0};
                bool ok = true;
                for (;;) {
                    p = skip_ws(p, end, &line, true);
                    if (p >= end || *p == '\n') break;
                    if (*p == '"') { read_lit(&p, end, &v, &line); continue; }
                    const char *s = p;
                    while (p < end && is_id(*p)) p++;
                    const char *mv = p > s ? macro_val(s, (size_t)(p - s)) : NULL;
                    if (mv) { buf_add(&v, mv, strlen(mv)); continue; }
                    ok = false;
                    break;
                }
                if (ok && v.p) {
                    memcpy(macros[n_macros].name, nm, nlen);
                    macros[n_macros].name[nlen] = '\0';
                    macros[n_macros++].val = v.p;
                    string_macro = true;
                } else {
                    free(v.p);
                }
            }
            if (!string_macro) {           /* its literal runs are texts of their own */
                p = body;
                line = body_line;
                for (;;) {
                    p = skip_ws(p, end, &line, true);
                    if (p >= end || *p == '\n') break;
                    scan_step(&p, end, &line, true, rel);
                }
            }
        }
        /* the rest of the directive (an #include "x", an #if ...) is not SQL */
        while (p < end && *p != '\n') {
            if (*p == '\\' && p + 1 < end && p[1] == '\n') { p += 2; line++; continue; }
            if (p + 1 < end && p[0] == '/' && p[1] == '*') {
                p = skip_ws(p, end, &line, true);
                continue;
            }
            p++;
        }
        bol = true;
    }
    if (!keep_macros) {                    /* a .c file's macros are its own */
        for (int i = mac_first; i < n_macros; i++) free(macros[i].val);
        n_macros = mac_first;
    }
    free(src.p);
}

/* headers (ext 'h') first: their string macros (JOB_COLS) are seen by every .c file */
static void scan_dir(const char *root, const char *sub, char ext)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, sub);
    DIR *d = opendir(path);
    if (!d) { th_fail(__FILE__, __LINE__, "cannot open %s", path); return; }
    struct dirent *e;
    char names[512][256];
    int n = 0;
    while ((e = readdir(d)) && n < 512)
        if (e->d_name[0] != '.') snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    for (int i = 0; i < n; i++) {
        char rel[512], full[1600];
        snprintf(rel, sizeof rel, "%s/%s", sub, names[i]);
        snprintf(full, sizeof full, "%s/%s", root, rel);
        struct stat st;
        if (stat(full, &st) != 0) continue;
        size_t l = strlen(names[i]);
        if (S_ISDIR(st.st_mode)) scan_dir(root, rel, ext);
        else if (l > 2 && names[i][l - 2] == '.' && names[i][l - 1] == ext)
            scan_file(full, rel, ext == 'h');
    }
}

/* --- the audit --- */

#define W0 "(^|[^a-z0-9_])"
#define W1 "([^a-z0-9_]|$)"
static regex_t re_ref, re_bind, re_bind_rev, re_ins;

static void compile(regex_t *re, const char *pat)
{
    int rc = regcomp(re, pat, REG_EXTENDED | REG_ICASE | REG_NOSUB);
    if (rc != 0) { th_fail(__FILE__, __LINE__, "regcomp %s: %d", pat, rc); th_abort(); }
}

static bool match(const regex_t *re, const char *s)
{
    return regexec(re, s, 0, NULL, 0) == 0;
}

/* The statements of a text (split at ';' outside quotes), each checked: returns the
 * number that reference jobs/job_logs; *unscoped counts those without a user_id bind. */
static int audit_text(const char *sql, int *unscoped)
{
    int refs = 0;
    *unscoped = 0;
    size_t n = strlen(sql);
    char *st = malloc(n + 1);
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        char quote = 0;
        while (j < n && (quote || sql[j] != ';')) {
            if (quote && sql[j] == quote) quote = 0;
            else if (!quote && (sql[j] == '\'' || sql[j] == '"')) quote = sql[j];
            j++;
        }
        memcpy(st, sql + i, j - i);
        st[j - i] = '\0';
        if (match(&re_ref, st)) {
            refs++;
            if (!(match(&re_bind, st) || match(&re_bind_rev, st) || match(&re_ins, st)))
                (*unscoped)++;
        }
        i = j + 1;
    }
    free(st);
    return refs;
}

static const char *ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix) ? s + a - b : NULL;
}

struct audit_res { int texts, stmts, scoped_texts, scoped_stmts, listed_texts, listed_stmts,
                   unlisted, stale, miscount; };

/* Audits the tree at root/src against the allow-list; with report, every problem is a
 * test failure (file:line and the text), else only counted (the teeth test). */
static void run_audit(const char *root, bool report, struct audit_res *r)
{
    memset(r, 0, sizeof *r);
    for (int t = 0; t < n_texts; t++) free(texts[t].sql);
    n_texts = 0;
    for (int i = 0; i < n_macros; i++) free(macros[i].val);
    n_macros = 0;
    int n_allow = (int)(sizeof allow / sizeof *allow);
    for (int a = 0; a < n_allow; a++) hits[a] = 0;
    compile(&re_ref, W0 "(from|join|update|into|on|table)[[:space:]]+(jobs|job_logs)" W1);
    compile(&re_bind, W0 "user_id[[:space:]]*(=|is)[[:space:]]*"
                      "([?][0-9]*|[$][0-9]+|:[a-z_]+|current_setting)");
    compile(&re_bind_rev, "([?][0-9]*|[$][0-9]+)(::text)?[[:space:]]*=[[:space:]]*"
                          "([a-z_]+[.])?user_id" W1);
    compile(&re_ins, W0 "insert[[:space:]]+into[[:space:]]+(jobs|job_logs)[[:space:]]*"
                     "[(][^)]*" W0 "user_id" W1);
    scan_dir(root, "src", 'h');
    scan_dir(root, "src", 'c');
    for (int t = 0; t < n_texts; t++) {
        int unscoped;
        int refs = audit_text(texts[t].sql, &unscoped);
        if (!refs) continue;
        r->texts++;
        r->stmts += refs;
        r->scoped_stmts += refs - unscoped;
        if (!unscoped) { r->scoped_texts++; continue; }
        int hit = -1;
        for (int a = 0; a < n_allow; a++)
            if (ends_with(texts[t].file, allow[a].file) && strstr(texts[t].sql, allow[a].needle)) {
                hits[a]++;
                if (hit < 0) hit = a;
            }
        if (hit >= 0) {
            r->listed_texts++;
            r->listed_stmts += unscoped;
            if (report && getenv("JQ_VERBOSE"))
                printf("  listed %s:%d [%s]\n", texts[t].file, texts[t].line, allow[hit].needle);
            continue;
        }
        r->unlisted++;
        if (report)
            th_fail(__FILE__, __LINE__, "%s:%d: SQL on jobs/job_logs without a user_id bind and"
                    " not allow-listed (%d of %d statements unscoped): %.300s", texts[t].file,
                    texts[t].line, unscoped, refs, texts[t].sql);
    }
    for (int a = 0; a < n_allow; a++) {
        if (hits[a] == 0) {
            r->stale++;
            if (report)
                th_fail(__FILE__, __LINE__, "stale allow-list entry %s [%s]: matches no unscoped"
                        " SQL text any more; remove it", allow[a].file, allow[a].needle);
        } else if (hits[a] != allow[a].n) {
            r->miscount++;
            if (report)
                th_fail(__FILE__, __LINE__, "allow-list entry %s [%s] matches %d unscoped texts,"
                        " not %d: a new statement rides on an old entry, or one went away",
                        allow[a].file, allow[a].needle, hits[a], allow[a].n);
        }
        if (report && strlen(allow[a].reason) < 10)
            th_fail(__FILE__, __LINE__, "allow-list entry %s [%s] has no reason", allow[a].file,
                    allow[a].needle);
    }
    regfree(&re_ref); regfree(&re_bind); regfree(&re_bind_rev); regfree(&re_ins);
}

TEST(sql_on_tenant_tables_binds_user_id_or_is_allow_listed)
{
    struct audit_res r;
    run_audit(JOBQ_SOURCE_DIR, true, &r);
    printf("  %d string-literal runs under src/; %d SQL texts (%d statements) on jobs|job_logs"
           " audited: %d texts (%d statements) bind user_id, %d texts (%d statements, DDL"
           " included) allow-listed by %d entries; %d unlisted, %d stale, %d miscounted\n",
           n_texts, r.texts, r.stmts, r.scoped_texts, r.scoped_stmts, r.listed_texts,
           r.listed_stmts, (int)(sizeof allow / sizeof *allow), r.unlisted, r.stale, r.miscount);
    CHECK(r.texts > 50);                 /* the extractor found the stores' SQL */
    CHECK(r.scoped_texts > 20);
    CHECK_EQ(r.unlisted, 0);
    CHECK_EQ(r.stale, 0);
    CHECK_EQ(r.miscount, 0);
}

/* --- teeth: the same audit on a copy of src/ with one change at a time --- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct buf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_add(&b, chunk, n);
    fclose(f);
    return b.p;
}

static void spill(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    REQUIRE(fwrite(text, 1, strlen(text), f) == strlen(text));
    fclose(f);
}

/* Writes orig with `from` (first occurrence) replaced by `to`, then `tail` appended. */
static void mutate(const char *path, const char *orig, const char *from, const char *to,
                   const char *tail)
{
    struct buf b = {0};
    const char *at = from ? strstr(orig, from) : NULL;
    if (from) REQUIRE(at != NULL);
    if (at) {
        buf_add(&b, orig, (size_t)(at - orig));
        buf_add(&b, to, strlen(to));
        buf_add(&b, at + strlen(from), strlen(at + strlen(from)));
    } else {
        buf_add(&b, orig, strlen(orig));
    }
    if (tail) buf_add(&b, tail, strlen(tail));
    spill(path, b.p);
    free(b.p);
}

TEST(audit_has_teeth)
{
    char root[] = "/tmp/jq-predaudit-XXXXXX";
    REQUIRE(mkdtemp(root) != NULL);
    char cmd[1024], ops[600], conn[600];
    snprintf(cmd, sizeof cmd, "cp -r '%s/src' '%s/src'", JOBQ_SOURCE_DIR, root);
    REQUIRE(system(cmd) == 0);
    snprintf(ops, sizeof ops, "%s/src/store/sqlite/sq_ops.c", root);
    snprintf(conn, sizeof conn, "%s/src/store/sqlite/sq_conn.c", root);
    char *ops0 = slurp(ops), *conn0 = slurp(conn);
    REQUIRE(ops0 && conn0);
    struct audit_res r;
    run_audit(root, false, &r);                          /* the copy as is: clean */
    CHECK(r.unlisted == 0 && r.stale == 0 && r.miscount == 0);
    /* a new statement without a user_id bind: 1 unlisted */
    mutate(ops, ops0, NULL, NULL, "\nstatic const char *const leak = \"SELECT params FROM jobs\"\n"
           "    \" WHERE id=?1\";\n");
    run_audit(root, false, &r);
    CHECK(r.unlisted == 1 && r.stale == 0 && r.miscount == 0);
    /* the same with a user_id bind: clean; on job_logs through a string macro, and in the
     * body of a function-like macro, without one: 2 unlisted */
    mutate(ops, ops0, NULL, NULL, "\nstatic const char *const ok = \"SELECT params FROM jobs"
           " j WHERE id=?1 AND j.user_id = ?2\";\n#define LOGQ \"SELECT message FROM job_logs\"\n"
           "static const char *const leak2 = LOGQ \" WHERE job_id=?1\";\n"
           "#define WIPE(db) exec(db, \"DELETE FROM jobs\" \\\n  \" WHERE queue=?1\")\n");
    run_audit(root, false, &r);
    CHECK(r.unlisted == 2 && r.stale == 0 && r.miscount == 0);
    spill(ops, ops0);
    /* a copy of an allow-listed statement: the entry now matches 2 texts */
    mutate(conn, conn0, NULL, NULL, "\nstatic const char *const again ="
           " \"DELETE FROM job_logs WHERE job_id=?1\";\n");
    run_audit(root, false, &r);
    CHECK(r.unlisted == 0 && r.stale == 0 && r.miscount == 1);
    /* an allow-listed statement that became scoped: its entry is stale */
    mutate(conn, conn0, "\"SELECT 1 FROM jobs INDEXED BY jobs_pickup WHERE status='pending'",
           "\"SELECT 1 FROM jobs INDEXED BY jobs_pickup WHERE user_id=?9 AND status='pending'",
           NULL);
    run_audit(root, false, &r);
    CHECK(r.unlisted == 0 && r.stale == 1 && r.miscount == 0);
    spill(conn, conn0);
    free(ops0);
    free(conn0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
}

/* --- PostgreSQL: row-level security as the schema sets it up --- */

/* psql -At output of sql on the server's database, trailing newlines cut; "" on error. */
static char *psql1(struct testsrv *s, const char *sql)
{
    char *out = NULL;
    int rc = thpg_psql(s->db, sql, &out);
    if (rc != 0 || !out) {
        th_fail(__FILE__, __LINE__, "psql failed (%d): %s", rc, sql);
        free(out);
        return strdup("");
    }
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' ')) out[--n] = '\0';
    return out;
}

#define CHECK_PSQL(s, sql, want) do { char *o_ = psql1(s, sql); CHECK_STR_EQ(o_, want); \
    free(o_); } while (0)

TEST(pg_rls_enabled_and_forced_app_role_cannot_bypass)
{
    struct testsrv *s = testsrv_start(NULL);      /* jobqd migrates a fresh database */
    REQUIRE(s->db && strncmp(s->db, "postgres://", 11) == 0);
    /* RLS enabled and forced (the table owner is subject to it too) */
    CHECK_PSQL(s, "SELECT string_agg(relname || ':' || relrowsecurity || ':' ||"
                  " relforcerowsecurity, ',' ORDER BY relname) FROM pg_class"
                  " WHERE relnamespace = 'public'::regnamespace"
                  " AND relname IN ('jobs','job_logs','events')",
               "events:true:true,job_logs:true:true,jobs:true:true");
    /* the policy for jobq_app compares user_id with the transaction's jobq.user_id */
    CHECK_PSQL(s, "SELECT string_agg(tablename || ':' || cmd, ',' ORDER BY tablename)"
                  " FROM pg_policies WHERE schemaname = 'public' AND 'jobq_app' = ANY(roles)"
                  " AND tablename IN ('jobs','job_logs')"
                  " AND qual LIKE '%user_id = current_setting(''jobq.user_id''%'"
                  " AND with_check LIKE '%user_id = current_setting(''jobq.user_id''%'",
               "job_logs:ALL,jobs:ALL");
    /* no other policy lets jobq_app (or PUBLIC) see more */
    CHECK_PSQL(s, "SELECT count(*) FROM pg_policies WHERE schemaname = 'public'"
                  " AND tablename IN ('jobs','job_logs','events')"
                  " AND ('public' = ANY(roles) OR ('jobq_app' = ANY(roles) AND"
                  " qual NOT LIKE '%current_setting(''jobq.user_id''%'))", "0");
    /* the role user-scoped transactions run as: no BYPASSRLS, not a superuser */
    CHECK_PSQL(s, "SELECT rolbypassrls || ':' || rolsuper FROM pg_roles WHERE rolname = 'jobq_app'",
               "false:false");
    /* as pg_conn.c begins a user-scoped transaction: the current user is jobq_app and row
     * security is active on the tenant tables */
    CHECK_PSQL(s, "BEGIN READ ONLY; SET LOCAL ROLE jobq_app; SET LOCAL jobq.user_id = 'alice';"
                  " SELECT current_user || ':' || row_security_active('jobs') || ':' ||"
                  " row_security_active('job_logs') || ':' || row_security_active('events');"
                  " COMMIT", "jobq_app:true:true:true");
    /* for the record: the login role jobqd uses here (the test cluster's superuser) could
     * bypass RLS on its own; isolation rests on SET LOCAL ROLE in every transaction */
    char *login = psql1(s, "SELECT session_user || ' super=' || rolsuper || ' bypassrls=' ||"
                           " rolbypassrls FROM pg_roles WHERE rolname = session_user");
    printf("  login role: %s\n", login);
    free(login);
    /* other tables with a user_id column and their RLS state (informational) */
    char *other = psql1(s, "SELECT coalesce(string_agg(c.relname || ':' || c.relrowsecurity ||"
                           " ':' || c.relforcerowsecurity, ', ' ORDER BY c.relname), '-')"
                           " FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
                           " AND c.relkind = 'r' AND c.relname NOT IN ('jobs','job_logs','events')"
                           " AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid"
                           " AND a.attname = 'user_id' AND NOT a.attisdropped)");
    printf("  other user_id tables (rls:forced): %s\n", other);
    free(other);
    testsrv_stop(s);
}

TEST_MAIN()
