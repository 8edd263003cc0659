/*
 * sq_conn.c - SQLite connections: open with jobq's pragmas, the schema and
 * its versioned migrations (PRAGMA user_version), the prepared-statement
 * cache, the SQL functions that bring core rules into statements, and row
 * loading helpers.
 */
#include "store/sqlite/sq_int.h"

#include <sodium.h>
#include <xxhash.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"

#define JOBQ_APP_ID 0x6A6F6271   /* 'jobq': marks a file as a jobq database */

/* --- schema and migrations --- */

/* migrations[i] takes the schema from user_version i to i + 1 */
static const char *const migrations[] = {
    /* 1: the foundation */
    "CREATE TABLE jobs ("
    "  id TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL, queue TEXT NOT NULL,"
    "  type TEXT NOT NULL, params TEXT NOT NULL, params_hash TEXT, status TEXT NOT NULL,"
    "  priority INTEGER NOT NULL DEFAULT 0, run_at INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  started_at INTEGER, completed_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0,"
    "  max_attempts INTEGER NOT NULL, lease_token TEXT, lease_expires_at INTEGER,"
    "  worker_id TEXT, expires_at INTEGER, progress_percent INTEGER,"
    "  progress_message TEXT, result TEXT, error_message TEXT, error_code TEXT,"
    "  unique_key TEXT, blocked INTEGER NOT NULL DEFAULT 0, workflow_id TEXT, step_key TEXT,"
    "  on_parent_failure TEXT);"
    /* pickup: WHERE status='pending' AND queue=? AND run_at<=?
     *        ORDER BY priority DESC, run_at, id */
    "CREATE INDEX jobs_pickup ON jobs(queue, priority DESC, run_at, id)"
    "  WHERE status='pending' AND blocked=0;"
    /* fair claims: the users with claimable work in a queue, each user's best job */
    "CREATE INDEX jobs_pickup_user ON jobs(queue, user_id, priority DESC, run_at, id)"
    "  WHERE status='pending' AND blocked=0;"
    "CREATE INDEX jobs_workflow ON jobs(workflow_id, step_key) WHERE workflow_id IS NOT NULL;"
    "CREATE INDEX jobs_lease ON jobs(lease_expires_at) WHERE status='processing';"
    "CREATE INDEX jobs_expiry ON jobs(expires_at) WHERE status='pending';"
    /* oldest due job per queue (stats) */
    "CREATE INDEX jobs_pending_age ON jobs(queue, run_at) WHERE status='pending';"
    "CREATE INDEX jobs_user_pending ON jobs(user_id, run_at) WHERE status='pending';"
    "CREATE INDEX jobs_cleanup ON jobs(completed_at)"
    "  WHERE status IN ('completed','failed','cancelled');"
    "CREATE INDEX jobs_dedup ON jobs(user_id, type, params_hash, created_at)"
    "  WHERE status IN ('pending','processing');"
    "CREATE INDEX jobs_cache ON jobs(user_id, type, params_hash, completed_at)"
    "  WHERE status='completed';"
    "CREATE UNIQUE INDEX jobs_unique_key ON jobs(user_id, unique_key)"
    "  WHERE unique_key IS NOT NULL AND status IN ('pending','processing');"
    "CREATE INDEX jobs_user_created ON jobs(user_id, created_at DESC, id DESC);"
    "CREATE INDEX jobs_user_status ON jobs(user_id, status, created_at DESC, id DESC);"
    "CREATE INDEX jobs_user_type ON jobs(user_id, type, created_at DESC, id DESC);"
    "CREATE INDEX jobs_user_queue ON jobs(user_id, queue, created_at DESC, id DESC);"
    "CREATE INDEX jobs_created ON jobs(created_at DESC, id DESC);"
    "CREATE INDEX jobs_status_created ON jobs(status, created_at DESC, id DESC);"
    "CREATE INDEX jobs_type_created ON jobs(type, created_at DESC, id DESC);"
    "CREATE INDEX jobs_queue_created ON jobs(queue, created_at DESC, id DESC);"
    "CREATE TABLE job_logs ("
    "  id INTEGER PRIMARY KEY, job_id TEXT NOT NULL, user_id TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL, level INTEGER NOT NULL, message TEXT NOT NULL,"
    "  metadata TEXT);"
    "CREATE INDEX job_logs_job ON job_logs(job_id, id);"
    "CREATE TABLE tokens ("
    "  id TEXT PRIMARY KEY NOT NULL, hash BLOB NOT NULL UNIQUE, user_id TEXT NOT NULL,"
    "  role TEXT NOT NULL, name TEXT, created_at INTEGER NOT NULL, revoked_at INTEGER,"
    "  active_limit INTEGER);"
    /* Idempotency-Key records: the first 2xx reply, written in the same
     * transaction as the change it answers */
    "CREATE TABLE idempotency (user_id TEXT NOT NULL, key TEXT NOT NULL,"
    "  req_hash TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL, PRIMARY KEY (user_id, key)) WITHOUT ROWID;"
    "CREATE INDEX idempotency_created ON idempotency(created_at);"
    /* counts per (dimension, key, status), dim u=user q=queue t=type, kept by
     * triggers so totals and stats never scan jobs */
    "CREATE TABLE counts (dim TEXT NOT NULL, key TEXT NOT NULL, status TEXT NOT NULL,"
    "  n INTEGER NOT NULL, PRIMARY KEY (dim, key, status)) WITHOUT ROWID;"
    "CREATE TRIGGER jobs_count_ins AFTER INSERT ON jobs BEGIN"
    "  INSERT INTO counts VALUES ('u', new.user_id, new.status, 1),"
    "    ('q', new.queue, new.status, 1),"
    "    ('t', new.type, new.status, 1) ON CONFLICT DO UPDATE SET n = n + 1; END;"
    "CREATE TRIGGER jobs_count_upd AFTER UPDATE OF status ON jobs"
    "  WHEN old.status <> new.status BEGIN"
    "  UPDATE counts SET n = n - 1 WHERE status = old.status AND ((dim = 'u' AND key = old.user_id)"
    "    OR (dim = 'q' AND key = old.queue) OR (dim = 't' AND key = old.type));"
    "  INSERT INTO counts VALUES ('u', new.user_id, new.status, 1),"
    "    ('q', new.queue, new.status, 1),"
    "    ('t', new.type, new.status, 1) ON CONFLICT DO UPDATE SET n = n + 1; END;"
    "CREATE TRIGGER jobs_count_del AFTER DELETE ON jobs BEGIN"
    "  UPDATE counts SET n = n - 1 WHERE status = old.status AND ((dim = 'u' AND key = old.user_id)"
    "    OR (dim = 'q' AND key = old.queue) OR (dim = 't' AND key = old.type)); END;"
    /* per-minute, per-type outcome buckets and a log2 duration histogram (stats) */
    "CREATE TABLE stats_minute (minute INTEGER NOT NULL, type TEXT NOT NULL,"
    "  completed INTEGER NOT NULL, failed INTEGER NOT NULL, dur_n INTEGER NOT NULL,"
    "  dur_sum INTEGER NOT NULL, PRIMARY KEY (minute, type)) WITHOUT ROWID;"
    "CREATE TABLE stats_hist (minute INTEGER NOT NULL, type TEXT NOT NULL,"
    "  bucket INTEGER NOT NULL, n INTEGER NOT NULL,"
    "  PRIMARY KEY (minute, type, bucket)) WITHOUT ROWID;"
    "CREATE TRIGGER jobs_stats AFTER UPDATE OF status ON jobs"
    "  WHEN new.status IN ('completed','failed') AND old.status <> new.status BEGIN"
    "  INSERT INTO stats_minute VALUES (new.completed_at / 60000, new.type,"
    "    new.status = 'completed', new.status = 'failed', new.started_at IS NOT NULL,"
    "    coalesce(new.completed_at - new.started_at, 0))"
    "    ON CONFLICT DO UPDATE SET completed = completed + excluded.completed,"
    "    failed = failed + excluded.failed, dur_n = dur_n + excluded.dur_n,"
    "    dur_sum = dur_sum + excluded.dur_sum;"
    "  INSERT INTO stats_hist SELECT new.completed_at / 60000, new.type,"
    "    jq_bucket(new.completed_at - new.started_at), 1 WHERE new.started_at IS NOT NULL"
    "    ON CONFLICT DO UPDATE SET n = n + 1; END;"
    /* the event log behind SSE: one row per committed change, written by the
     * same transaction; AUTOINCREMENT so an id is never reused after pruning
     * (Last-Event-ID must never point at a different event) */
    "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL,"
    "  job_id TEXT NOT NULL, queue TEXT NOT NULL, type TEXT NOT NULL, kind TEXT NOT NULL,"
    "  data TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE INDEX events_created ON events(created_at);"
    "CREATE INDEX events_job ON events(job_id, id);"
    "CREATE TRIGGER jobs_ev_ins AFTER INSERT ON jobs BEGIN"
    "  INSERT INTO events(user_id, job_id, queue, type, kind, data, created_at)"
    "  VALUES (new.user_id, new.id, new.queue, new.type, 'created', json_object('status',"
    "    new.status, 'priority', new.priority, 'run_at', new.run_at), new.created_at); END;"
    "CREATE TRIGGER jobs_ev_status AFTER UPDATE OF status ON jobs"
    "  WHEN old.status <> new.status BEGIN"
    "  INSERT INTO events(user_id, job_id, queue, type, kind, data, created_at)"
    "  VALUES (new.user_id, new.id, new.queue, new.type, CASE new.status"
    "    WHEN 'processing' THEN 'claimed' WHEN 'completed' THEN 'completed'"
    "    WHEN 'failed' THEN 'failed' WHEN 'cancelled' THEN 'cancelled' ELSE 'retried' END,"
    "    json_object('status', new.status, 'attempts', new.attempts, 'run_at', new.run_at,"
    "    'worker_id', new.worker_id, 'error_code', new.error_code,"
    "    'error_message', new.error_message), new.updated_at); END;"
    "CREATE TRIGGER jobs_ev_progress AFTER UPDATE OF progress_percent, progress_message"
    "  ON jobs WHEN old.status = new.status AND (old.progress_percent IS NOT"
    "  new.progress_percent OR old.progress_message IS NOT new.progress_message) BEGIN"
    "  INSERT INTO events(user_id, job_id, queue, type, kind, data, created_at)"
    "  VALUES (new.user_id, new.id, new.queue, new.type, 'progress', json_object('status',"
    "    new.status, 'progress_percent', new.progress_percent, 'progress_message',"
    "    new.progress_message), new.updated_at); END;"
    "CREATE TRIGGER logs_ev AFTER INSERT ON job_logs BEGIN"
    "  INSERT INTO events(user_id, job_id, queue, type, kind, data, created_at)"
    "  SELECT new.user_id, new.job_id, j.queue, j.type, 'log', json_object('log_id', new.id,"
    "    'level', CASE new.level WHEN 0 THEN 'debug' WHEN 1 THEN 'info' WHEN 2 THEN 'warning'"
    "    ELSE 'error' END, 'message', new.message), new.created_at"
    "  FROM jobs j WHERE j.id = new.job_id; END;"
    /* full-text search over log messages: an external-content FTS5 index whose
     * second column holds hex(user_id) as one token, so a user's search is an
     * index intersection, not a filter over everyone's matches */
    "CREATE VIEW job_logs_fts_src AS SELECT id, message, hex(user_id) AS u FROM job_logs;"
    "CREATE VIRTUAL TABLE job_logs_fts USING fts5(message, u, content='job_logs_fts_src',"
    "  content_rowid='id');"
    "CREATE TRIGGER logs_fts_ins AFTER INSERT ON job_logs BEGIN"
    "  INSERT INTO job_logs_fts(rowid, message, u) VALUES (new.id, new.message,"
    "    hex(new.user_id)); END;"
    "CREATE TRIGGER logs_fts_del AFTER DELETE ON job_logs BEGIN"
    "  INSERT INTO job_logs_fts(job_logs_fts, rowid, message, u)"
    "    VALUES ('delete', old.id, old.message, hex(old.user_id)); END;"
    /* JSON containment: a hashed (path, scalar) term per leaf of params and
     * result, at most 32 each, so `params @> {...}` starts from an index and
     * jq_contains() checks the candidates exactly */
    "CREATE TABLE job_terms (term TEXT NOT NULL, user_id TEXT NOT NULL, job_id TEXT NOT NULL,"
    "  PRIMARY KEY (term, user_id, job_id)) WITHOUT ROWID;"
    "CREATE INDEX job_terms_job ON job_terms(job_id);"
    "CREATE TRIGGER jobs_terms_ins AFTER INSERT ON jobs BEGIN"
    "  INSERT OR IGNORE INTO job_terms SELECT jq_term('p', fullkey, type, atom), new.user_id,"
    "    new.id FROM json_tree(new.params) WHERE type NOT IN ('object','array') LIMIT 32; END;"
    "CREATE TRIGGER jobs_terms_params AFTER UPDATE OF params ON jobs BEGIN"
    "  INSERT OR IGNORE INTO job_terms SELECT jq_term('p', fullkey, type, atom), new.user_id,"
    "    new.id FROM json_tree(new.params) WHERE type NOT IN ('object','array') LIMIT 32; END;"
    "CREATE TRIGGER jobs_terms_result AFTER UPDATE OF result ON jobs"
    "  WHEN new.result IS NOT NULL AND json_valid(new.result) BEGIN"
    "  INSERT OR IGNORE INTO job_terms SELECT jq_term('r', fullkey, type, atom), new.user_id,"
    "    new.id FROM json_tree(new.result) WHERE type NOT IN ('object','array') LIMIT 32; END;"
    "CREATE TRIGGER jobs_terms_del AFTER DELETE ON jobs BEGIN"
    "  DELETE FROM job_terms WHERE job_id = old.id; END;"
    /* dependencies: a job with unfinished parents has blocked > 0 and is not
     * claimable; a completed parent unblocks its children; a failed or
     * cancelled one cancels them (on_parent_failure 'cancel', the default,
     * cascading through recursive triggers) or unblocks them ('run') */
    "CREATE TABLE job_deps (parent_id TEXT NOT NULL, child_id TEXT NOT NULL,"
    "  PRIMARY KEY (parent_id, child_id)) WITHOUT ROWID;"
    "CREATE INDEX job_deps_child ON job_deps(child_id);"
    /* WHEN EXISTS: most jobs have no children, and then nothing runs; the unary +
     * keeps the planner on the primary key (driven by job_deps) instead of walking
     * every pending job once per finished one */
    "CREATE TRIGGER jobs_deps_done AFTER UPDATE OF status ON jobs"
    "  WHEN new.status = 'completed' AND old.status <> 'completed'"
    "  AND EXISTS (SELECT 1 FROM job_deps WHERE parent_id = new.id) BEGIN"
    "  UPDATE jobs SET blocked = blocked - 1"
    "    WHERE id IN (SELECT child_id FROM job_deps WHERE parent_id = new.id)"
    "    AND +blocked > 0 AND +status = 'pending'; END;"
    "CREATE TRIGGER jobs_deps_failed AFTER UPDATE OF status ON jobs"
    "  WHEN new.status IN ('failed','cancelled') AND old.status NOT IN ('failed','cancelled')"
    "  AND EXISTS (SELECT 1 FROM job_deps WHERE parent_id = new.id) BEGIN"
    "  UPDATE jobs SET blocked = blocked - 1"
    "    WHERE id IN (SELECT child_id FROM job_deps WHERE parent_id = new.id)"
    "    AND +blocked > 0 AND +status = 'pending' AND +on_parent_failure = 'run';"
    "  UPDATE jobs SET status = 'cancelled', error_code = 'parent_failed',"
    "    error_message = 'a job it depends on ' || new.status, completed_at = new.updated_at,"
    "    updated_at = new.updated_at"
    "    WHERE id IN (SELECT child_id FROM job_deps WHERE parent_id = new.id)"
    "    AND +status = 'pending' AND coalesce(on_parent_failure, 'cancel') = 'cancel'; END;"
    "CREATE TABLE workflows (id TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL, name TEXT,"
    "  created_at INTEGER NOT NULL);"
    /* schedules; schedule_fires makes each (schedule, fire time) enqueue once,
     * across restarts and nodes, written in the same transaction as the job */
    "CREATE TABLE schedules (id TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL,"
    "  name TEXT NOT NULL, cron TEXT NOT NULL, timezone TEXT NOT NULL, type TEXT NOT NULL,"
    "  queue TEXT NOT NULL, params TEXT NOT NULL, priority INTEGER NOT NULL,"
    "  max_attempts INTEGER NOT NULL, misfire TEXT NOT NULL, catch_up_max INTEGER NOT NULL,"
    "  paused INTEGER NOT NULL DEFAULT 0, next_run_at INTEGER, last_run_at INTEGER,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, UNIQUE (user_id, name));"
    "CREATE INDEX schedules_due ON schedules(next_run_at) WHERE paused = 0;"
    "CREATE TABLE schedule_fires (schedule_id TEXT NOT NULL, fire_at INTEGER NOT NULL,"
    "  job_id TEXT, PRIMARY KEY (schedule_id, fire_at)) WITHOUT ROWID;",
    /* 2: fewer pages per change (issue 5: each page a commit touches is written to the
     * WAL and again by the checkpoint).
     * - events loses AUTOINCREMENT (one more page per commit: its sqlite_sequence row)
     *   and the created_at index: pruning walks the oldest ids. An id is still never
     *   reused, because pruning never deletes the newest event (max(id) + 1 is next).
     *   legacy_alter_table: the triggers on jobs that insert into events name it, and
     *   the rename must neither rewrite nor re-check them.
     * - jobs_expiry holds only the jobs that can expire, not every pending job.
     * - containment terms of new jobs are indexed in batches (sq__terms_after_insert),
     *   not by a trigger per insert: about 35 us and 5 random pages per job less.
     *   terms_mark.upto is the last jobs rowid indexed; searches also check the jobs
     *   above it directly (sq__list_st), so results never lag. Deleting the highest
     *   rowid lowers the mark, so a reused rowid is indexed again. */
    "PRAGMA legacy_alter_table=ON;"
    "CREATE TABLE events_v2 (id INTEGER PRIMARY KEY, user_id TEXT NOT NULL,"
    "  job_id TEXT NOT NULL, queue TEXT NOT NULL, type TEXT NOT NULL, kind TEXT NOT NULL,"
    "  data TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "INSERT INTO events_v2 SELECT id, user_id, job_id, queue, type, kind, data, created_at"
    "  FROM events;"
    "DROP TABLE events;"
    "ALTER TABLE events_v2 RENAME TO events;"
    "DELETE FROM sqlite_sequence WHERE name = 'events';"
    "PRAGMA legacy_alter_table=OFF;"
    "CREATE INDEX events_job ON events(job_id, id);"
    "DROP INDEX jobs_expiry;"
    "CREATE INDEX jobs_expiry ON jobs(expires_at)"
    "  WHERE status='pending' AND expires_at IS NOT NULL;"
    "DROP TRIGGER jobs_terms_ins;"
    "CREATE TABLE terms_mark (k INTEGER PRIMARY KEY CHECK (k = 0), upto INTEGER NOT NULL);"
    "INSERT INTO terms_mark VALUES (0, coalesce((SELECT max(rowid) FROM jobs), 0));"
    "CREATE TRIGGER jobs_terms_mark AFTER DELETE ON jobs"
    "  WHEN old.rowid > coalesce((SELECT max(rowid) FROM jobs), 0) BEGIN"
    "  UPDATE terms_mark SET upto = min(upto, coalesce((SELECT max(rowid) FROM jobs), 0));"
    "  END;",
};
enum { SCHEMA_VERSION = sizeof migrations / sizeof migrations[0] };

static jq_err pragma_int(struct conn *cn, const char *sql, int *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(cn->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq__rc(cn, rc, sql);
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, sql);
}

/* Refuses files that are some other application's database. */
static jq_err check_identity(struct conn *cn, int *version)
{
    int app = 0, tables = 0;
    jq_err err;
    if ((err = pragma_int(cn, "PRAGMA user_version", version)) ||
        (err = pragma_int(cn, "PRAGMA application_id", &app)) ||
        (err = pragma_int(cn, "SELECT count(*) FROM sqlite_schema", &tables)))
        return err;
    if (app != JOBQ_APP_ID && tables > 0) {
        log_error("database is not a jobq database (application_id %#x, %d schema objects)",
                  (unsigned)app, tables);
        return JQ_E_STORAGE;
    }
    if (*version > SCHEMA_VERSION) {
        log_error("database schema version %d is newer than this jobqd (%d)", *version,
                  SCHEMA_VERSION);
        return JQ_E_STORAGE;
    }
    return JQ_E_OK;
}

jq_err sq__migrate(struct conn *cn)
{
    int version;
    jq_err err = check_identity(cn, &version);
    if (err)
        return err;
    for (int v = version; v < SCHEMA_VERSION; v++) {
        char tail[96];
        snprintf(tail, sizeof tail, "PRAGMA user_version=%d; PRAGMA application_id=%d;", v + 1,
                 JOBQ_APP_ID);
        char *msg = NULL;
        int rc = sqlite3_exec(cn->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(cn->db, migrations[v], NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(cn->db, tail, NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(cn->db, "COMMIT", NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            log_error("migration to schema %d failed: %s", v + 1, msg ? msg : "?");
            sqlite3_free(msg);
            sqlite3_exec(cn->db, "ROLLBACK", NULL, NULL, NULL);
            return JQ_E_STORAGE;
        }
        log_info("database migrated to schema version %d", v + 1);
    }
    return JQ_E_OK;
}

/* --- opening --- */

/* Process-wide SQLite settings, before the library initialises: no memory
 * statistics (they take a global mutex on every malloc and free). */
static void configure_once(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

jq_err sq__conn_open(const char *path, bool readonly, int sync, const char *vfs,
                     struct conn *cn)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, configure_once);
    static const char *const syncs[] = {"PRAGMA synchronous=OFF", "PRAGMA synchronous=NORMAL",
                                        "PRAGMA synchronous=FULL"};
    int flags = readonly ? SQLITE_OPEN_READONLY
                         : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    memset(cn, 0, sizeof *cn);
    if (vfs && !*vfs)
        vfs = NULL;
#ifdef JOBQ_TESTING
    /* test builds: --test-vfs lazy | torn:N:SEED (power-loss test T2) registers its VFS
     * on first use; both open files through the VFS named "lazy" */
    if (vfs && (strcmp(vfs, "lazy") == 0 || strncmp(vfs, "torn:", 5) == 0)) {
        if (sq__lazyvfs_register(vfs) != SQLITE_OK) {
            log_error("cannot register the test VFS %s", vfs);
            return JQ_E_STORAGE;
        }
        vfs = "lazy";
    }
#endif
    int rc = sqlite3_open_v2(path, &cn->db, flags | SQLITE_OPEN_NOMUTEX, vfs);
    if (rc != SQLITE_OK) {
        log_error("cannot open database %s: %s", path,
                  cn->db ? sqlite3_errmsg(cn->db) : sqlite3_errstr(rc));
        sq__conn_close(cn);
        return JQ_E_STORAGE;
    }
    sqlite3_busy_timeout(cn->db, 5000);
    /* more small-allocation slots per connection than the default 100 x 1200 B: the
     * writer's statements (RETURNING, triggers) allocate many small objects */
    sqlite3_db_config(cn->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 512, 1024);
    sqlite3_extended_result_codes(cn->db, 1);
    char *msg = NULL;
    rc = sqlite3_exec(cn->db, readonly ? "PRAGMA query_only=1"
                                       /* recursive: a cancelled parent cancels grandchildren */
                                       /* journal_size_limit: a WAL that a long reader let
                                        * grow is cut back to 16 MiB when it next restarts
                                        * (in normal use it stays near 4 MiB) */
                                       : "PRAGMA journal_mode=WAL; PRAGMA recursive_triggers=1;"
                                         " PRAGMA journal_size_limit=16777216",
                      NULL, NULL, &msg);
    if (rc == SQLITE_OK && !readonly)
        rc = sqlite3_exec(cn->db, syncs[sync < 0 || sync > 2 ? 2 : sync], NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        /* the writer's cache stays valid between its transactions (it is the only
         * writer), so it keeps the hot pages of 20 indexes; 256 MiB keeps inserts at
         * 10M jobs from re-reading them (readers: 16 MiB each, a short snapshot) */
        rc = sqlite3_exec(cn->db, readonly ? "PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY"
                                           : "PRAGMA cache_size=-262144; PRAGMA temp_store=MEMORY",
                          NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        log_error("cannot use database %s: %s", path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        sq__conn_close(cn);
        return JQ_E_STORAGE;
    }
    return JQ_E_OK;
}

void sq__conn_close(struct conn *cn)
{
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(cn->st[i]);
    for (int i = 0; i < LF__N; i++)
        sqlite3_finalize(cn->list[i]);
    sqlite3_close_v2(cn->db);
    memset(cn, 0, sizeof *cn);
}

/* --- SQL functions: core rules used inside statements --- */

/* jq_backoff(attempt) -> ms until the next attempt, with a random jitter draw */
static void fn_backoff(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const struct retry_policy *p = sqlite3_user_data(ctx);
    uint32_t rnd = randombytes_random();
    sqlite3_result_int64(ctx, retry_delay_ms(p, sqlite3_value_int(argv[0]), rnd));
}

/* jq_retry(attempts, max_attempts, retryable) -> 1 if the job goes back to pending */
static void fn_retry(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    sqlite3_result_int(ctx, retry_should_retry(sqlite3_value_int(argv[0]),
                                               sqlite3_value_int(argv[1]),
                                               sqlite3_value_int(argv[2]) != 0));
}

/* jq_bucket(ms) -> log2 histogram bucket of a duration: 0 for <= 0 ms, else
 * floor(log2(ms)) + 1, at most 31 (bucket b holds [2^(b-1), 2^b) ms) */
static void fn_bucket(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    int64_t ms = sqlite3_value_int64(argv[0]);
    int b = 0;
    while (ms > 0 && b < 31) {
        ms >>= 1;
        b++;
    }
    sqlite3_result_int(ctx, b);
}

/* jq_id(now_ms) -> the next monotonic job id of this (writer) connection */
static void fn_id(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    struct id_gen *g = sqlite3_user_data(ctx);
    uint8_t rnd[ID_RAND_BYTES];
    char id[ID_LEN + 1];
    randombytes_buf(rnd, sizeof rnd);
    id_next(g, sqlite3_value_int64(argv[0]), rnd, id);
    sqlite3_result_text(ctx, id, ID_LEN, SQLITE_TRANSIENT);
}

/* jq_term(prefix, fullkey, type, atom) -> the hashed containment term of one
 * JSON leaf: array indexes become [] (an array contains its elements at any
 * position) and integral numbers compare as integers (1 = 1.0). */
static void fn_term(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *pre = (const char *)sqlite3_value_text(argv[0]);
    const char *key = (const char *)sqlite3_value_text(argv[1]);
    const char *type = (const char *)sqlite3_value_text(argv[2]);
    char buf[1024], val[64];
    size_t n = 0;
    for (const char *k = key ? key : ""; *k && n < 600; k++) {
        if (*k == '[') {                                  /* [12] -> [] */
            while (*k && *k != ']')
                k++;
            buf[n++] = '[';
            buf[n++] = ']';
            if (!*k)
                break;
        } else {
            buf[n++] = *k;
        }
    }
    const char *atom = (const char *)sqlite3_value_text(argv[3]);
    if (type && (strcmp(type, "real") == 0 || strcmp(type, "integer") == 0)) {
        double d = sqlite3_value_double(argv[3]);
        if (d == (double)(long long)d)
            snprintf(val, sizeof val, "%lld", (long long)d);
        else
            snprintf(val, sizeof val, "%.17g", d);
        atom = val;
        type = "number";
    }
    n += (size_t)snprintf(buf + n, sizeof buf - n, "=%s:", type ? type : "null");
    XXH64_state_t *h = XXH64_createState();
    XXH64_reset(h, 0);
    XXH64_update(h, buf, n);
    if (atom)
        XXH64_update(h, atom, strlen(atom));
    char out[24];
    snprintf(out, sizeof out, "%s%016llx", pre ? pre : "", (unsigned long long)XXH64_digest(h));
    XXH64_freeState(h);
    sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
}

/* jq_contains(doc, query) -> 1 if doc @> query (PostgreSQL jsonb semantics). */
static void fn_contains(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    json_t *q = sqlite3_get_auxdata(ctx, 1);          /* the query, parsed once per statement */
    if (!q) {
        const char *qt = (const char *)sqlite3_value_text(argv[1]);
        if (!qt || !(q = json_loads(qt, JSON_DECODE_ANY, NULL))) {
            sqlite3_result_int(ctx, 0);
            return;
        }
        sqlite3_set_auxdata(ctx, 1, q, (void (*)(void *))json_decref);
        q = sqlite3_get_auxdata(ctx, 1);
    }
    const char *dt = (const char *)sqlite3_value_text(argv[0]);
    json_t *d = dt ? json_loads(dt, JSON_DECODE_ANY, NULL) : NULL;
    sqlite3_result_int(ctx, d && q && json_contains(d, q));
    json_decref(d);
}

void sq__register_funcs(struct conn *cn, const struct retry_policy *p)
{
    sqlite3_create_function(cn->db, "jq_term", 4, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                            fn_term, NULL, NULL);
    sqlite3_create_function(cn->db, "jq_contains", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                            fn_contains, NULL, NULL);
    sqlite3_create_function(cn->db, "jq_bucket", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                            fn_bucket, NULL, NULL);
    sqlite3_create_function(cn->db, "jq_id", 1, SQLITE_UTF8, &cn->ids, fn_id, NULL, NULL);
    sqlite3_create_function(cn->db, "jq_backoff", 1, SQLITE_UTF8, (void *)p, fn_backoff, NULL,
                            NULL);
    sqlite3_create_function(cn->db, "jq_retry", 3, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                            fn_retry, NULL, NULL);
}

/* --- statements --- */

#define LEASE_OK "id=?1 AND status='processing' AND lease_token=?2 AND lease_expires_at>?3"
#define SCOPE "id=?1 AND (?2 IS NULL OR user_id=?2)"
#define RETRYING "jq_retry(attempts, max_attempts, ?4)"

static const char *const st_sql[ST__COUNT] = {
    [ST_INSERT] =
        "INSERT INTO jobs(id,user_id,queue,type,params,status,priority,run_at,created_at,"
        "updated_at,attempts,max_attempts,expires_at,params_hash,unique_key) "
        "VALUES(?1,?2,?3,?4,?5,'pending',?6,?7,?8,?8,0,?9,?10,?11,?12) RETURNING " JOB_COLS,
    [ST_REPLACE_PENDING] =
        "UPDATE jobs SET params=?2, params_hash=?3, priority=?4, run_at=?5, updated_at=?6"
        " WHERE id=?1 AND status='pending' RETURNING " JOB_COLS,
    [ST_DEPS_CHECK] = "SELECT count(*) FROM jobs WHERE id IN (SELECT value FROM json_each(?1))"
                      " AND user_id=?2",
    [ST_DEPS_INSERT] = "INSERT OR IGNORE INTO job_deps SELECT value, ?2 FROM json_each(?1)",
    [ST_DEPS_PAIRS] = "INSERT OR IGNORE INTO job_deps SELECT value->>0, value->>1"
                      " FROM json_each(?1)",
    [ST_DEPS_BLOCK] =
        "UPDATE jobs SET on_parent_failure=?2, blocked=(SELECT count(*) FROM job_deps d"
        " JOIN jobs p ON p.id=d.parent_id WHERE d.child_id=?1"
        " AND p.status IN ('pending','processing')) WHERE id=?1 RETURNING " JOB_COLS,
    [ST_DEPS_DOOMED] =
        "UPDATE jobs SET status='cancelled', error_code='parent_failed',"
        " error_message='a job it depends on failed or was cancelled', completed_at=?2,"
        " updated_at=?2 WHERE id=?1 AND status='pending'"
        " AND coalesce(on_parent_failure,'cancel')='cancel' AND EXISTS (SELECT 1 FROM job_deps d"
        " JOIN jobs p ON p.id=d.parent_id WHERE d.child_id=?1"
        " AND p.status IN ('failed','cancelled')) RETURNING " JOB_COLS,
    [ST_PARENTS] =
        "SELECT d.child_id, json_group_array(json_object('id', p.id, 'key', p.step_key,"
        " 'status', p.status, 'result', json(p.result))) FROM job_deps d"
        " JOIN jobs p ON p.id = d.parent_id"
        " WHERE d.child_id IN (SELECT value FROM json_each(?1)) GROUP BY d.child_id",
    /* fair claim: round-robin over the users with claimable work after the
     * cursor ?6 (a recursive skip-scan of jobs_pickup_user, ?7 users at most),
     * each user's best due job, users at their processing cap ?8 skipped */
    [ST_CLAIM_FAIR] =
        "WITH RECURSIVE u(uid, n) AS ("
        " SELECT (SELECT min(user_id) FROM jobs INDEXED BY jobs_pickup_user"
        "  WHERE status='pending' AND blocked=0 AND queue=?1 AND user_id>?6), 1"
        " UNION ALL SELECT (SELECT min(user_id) FROM jobs INDEXED BY jobs_pickup_user"
        "  WHERE status='pending' AND blocked=0 AND queue=?1 AND user_id>u.uid), n + 1"
        " FROM u WHERE u.uid IS NOT NULL AND n < ?7)"
        " UPDATE jobs SET status='processing', attempts=attempts+1, worker_id=?3,"
        " lease_token=lower(hex(randomblob(16))), lease_expires_at=?2+?4, started_at=?2,"
        " updated_at=?2, error_message=NULL, error_code=NULL"
        " WHERE id IN (SELECT (SELECT id FROM jobs INDEXED BY jobs_pickup_user"
        "  WHERE status='pending' AND blocked=0 AND queue=?1 AND user_id=u.uid AND run_at<=?2"
        "  AND (expires_at IS NULL OR expires_at>?2) ORDER BY priority DESC, run_at, id LIMIT 1)"
        " FROM u WHERE u.uid IS NOT NULL AND (?8 <= 0 OR coalesce((SELECT n FROM counts"
        "  WHERE dim='u' AND key=u.uid AND status='processing'), 0) < ?8) LIMIT ?5)"
        " RETURNING " JOB_COLS,
    [ST_FIND_UNIQUE] = "SELECT " JOB_COLS " FROM jobs INDEXED BY jobs_unique_key"
                       " WHERE user_id=?1 AND unique_key=?2 AND status IN ('pending','processing')",
    [ST_FIND_DEDUP] = "SELECT " JOB_COLS " FROM jobs INDEXED BY jobs_dedup"
                      " WHERE user_id=?1 AND type=?2 AND params_hash=?3"
                      " AND status IN ('pending','processing') AND created_at>=?4"
                      " ORDER BY created_at DESC LIMIT 1",
    [ST_FIND_CACHE] = "SELECT " JOB_COLS " FROM jobs INDEXED BY jobs_cache"
                      " WHERE user_id=?1 AND type=?2 AND params_hash=?3"
                      " AND status='completed' AND completed_at>=?4"
                      " ORDER BY completed_at DESC LIMIT 1",
    [ST_ACTIVE_COUNT] = "SELECT coalesce(sum(n), 0) FROM counts"
                        " WHERE dim='u' AND key=?1 AND status IN ('pending','processing')",
    [ST_IDEM_GET] = "SELECT req_hash, status, body FROM idempotency"
                    " WHERE user_id=?1 AND key=?2 AND created_at>?3",
    [ST_IDEM_PUT] = "INSERT OR REPLACE INTO idempotency VALUES(?1,?2,?3,?4,?5,?6)",
    /* one statement for a whole batch: items come as a JSON array (see sq_ops.c) */
    [ST_BATCH_INSERT] =
        "INSERT INTO jobs(id,user_id,queue,type,params,status,priority,run_at,created_at,"
        "updated_at,attempts,max_attempts,expires_at,params_hash,unique_key)"
        " SELECT jq_id(?2), ?1, value->>'q', value->>'t', value->'p', 'pending', value->>'pr',"
        " value->>'r', ?2, ?2, 0, value->>'m', value->>'e', value->>'h', value->>'k'"
        " FROM json_each(?3) WHERE true"
        " ON CONFLICT(user_id, unique_key)"
        "   WHERE unique_key IS NOT NULL AND status IN ('pending','processing')"
        " DO UPDATE SET params=excluded.params, priority=excluded.priority,"
        "   run_at=excluded.run_at, params_hash=excluded.params_hash, updated_at=?2"
        "   WHERE ?4 AND status='pending' RETURNING " JOB_COLS ", unique_key",
    [ST_BATCH_EXISTING] =
        "SELECT " JOB_COLS ", unique_key FROM jobs INDEXED BY jobs_unique_key"
        " WHERE user_id=?1 AND status IN ('pending','processing')"
        " AND unique_key IN (SELECT value->>'k' FROM json_each(?2) WHERE value->>'k' IS NOT NULL)",
    [ST_CANCEL_IDS] =
        "UPDATE jobs SET status='cancelled', completed_at=?3, updated_at=?3, lease_token=NULL,"
        " lease_expires_at=NULL WHERE id IN (SELECT value FROM json_each(?1))"
        " AND (?2 IS NULL OR user_id=?2) AND status IN ('pending','processing')",
#define CANCEL_SET "UPDATE jobs SET status='cancelled', completed_at=?3, updated_at=?3," \
    " lease_token=NULL, lease_expires_at=NULL WHERE id IN (SELECT id FROM jobs WHERE "
#define CANCEL_WHERE " status IN ('pending','processing') AND (?4 IS NULL OR status=?4)" \
    " AND (?5 IS NULL OR type=?5) AND (?6 IS NULL OR queue=?6) LIMIT ?7)"
    [ST_CANCEL_FILTER] = CANCEL_SET "coalesce(?2, 1) AND" CANCEL_WHERE,   /* all users */
    [ST_CANCEL_FILTER_USER] = CANCEL_SET "user_id=?2 AND" CANCEL_WHERE,
#define CLEANUP_PICK "SELECT id FROM jobs INDEXED BY jobs_cleanup" \
    " WHERE status IN ('completed','failed','cancelled') AND completed_at<?1" \
    " ORDER BY completed_at LIMIT ?2"
    [ST_CLEANUP_LOGS] =
        "DELETE FROM job_logs WHERE job_id IN (SELECT id FROM jobs INDEXED BY jobs_cleanup"
        " WHERE status IN ('completed','failed','cancelled') AND completed_at<?1"
        " ORDER BY completed_at LIMIT ?2)",
    /* a finished job's dependency edges go with it: its parents are finished too, and a
     * finished parent has already unblocked or cancelled its children */
    [ST_CLEANUP_DEPS] =
        "DELETE FROM job_deps WHERE parent_id IN (" CLEANUP_PICK ") OR child_id IN ("
        CLEANUP_PICK ")",
    [ST_CLEANUP_JOBS] =
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs INDEXED BY jobs_cleanup"
        " WHERE status IN ('completed','failed','cancelled') AND completed_at<?1"
        " ORDER BY completed_at LIMIT ?2)",
    [ST_IDEM_PRUNE] = "DELETE FROM idempotency WHERE (user_id, key) IN"
                      " (SELECT user_id, key FROM idempotency WHERE created_at<?1 LIMIT ?2)",
    [ST_STATS_PRUNE] = "DELETE FROM stats_minute WHERE minute<?1/60000",
    [ST_HIST_PRUNE] = "DELETE FROM stats_hist WHERE minute<?1/60000",
    [ST_COUNTS_USER] = "SELECT status, n FROM counts WHERE dim='u' AND key=?1",
    [ST_OLDEST_DUE_USER] = "SELECT min(run_at) FROM jobs INDEXED BY jobs_user_pending"
                           " WHERE user_id=?1 AND status='pending' AND run_at<=?2",
    [ST_COUNTS_DIMS] = "SELECT dim, key, status, n FROM counts WHERE dim IN ('q','t') AND n<>0",
    [ST_EVENTS_AFTER] =
        "SELECT id, user_id, job_id, queue, type, kind, data, created_at FROM events"
        " WHERE id>?1 AND (?2 IS NULL OR user_id=?2) AND (?3 IS NULL OR job_id=?3)"
        " AND (?4 IS NULL OR queue=?4) AND (?5 IS NULL OR type=?5) ORDER BY id LIMIT ?6",
    [ST_EVENTS_JOB] =
        "SELECT id, user_id, job_id, queue, type, kind, data, created_at FROM events"
        " WHERE job_id=?3 AND id>?1 AND (?2 IS NULL OR user_id=?2) AND (?4 IS NULL OR queue=?4)"
        " AND (?5 IS NULL OR type=?5) ORDER BY id LIMIT ?6",
    [ST_EVENTS_BOUNDS] = "SELECT (SELECT min(id) FROM events), (SELECT max(id) FROM events)",
    /* the oldest ids (they follow time); never the newest, so no id is reused */
    [ST_EVENTS_PRUNE] = "DELETE FROM events WHERE id IN (SELECT id FROM events"
                        " ORDER BY id LIMIT ?2) AND created_at<?1"
                        " AND id < (SELECT max(id) FROM events)",
    /* containment terms of the jobs above the mark, in batches: ?1 mark, ?2 batch */
    [ST_TERMS_MARK] = "SELECT upto FROM terms_mark",
    [ST_TERMS_NEXT] = "SELECT max(r), count(*) FROM (SELECT rowid AS r FROM jobs"
                      " WHERE rowid > ?1 ORDER BY rowid LIMIT ?2)",
    [ST_TERMS_INDEX] =
        "INSERT OR IGNORE INTO job_terms SELECT term, user_id, id FROM"
        " (SELECT jq_term('p', t.fullkey, t.type, t.atom) AS term, j.user_id, j.id,"
        " row_number() OVER (PARTITION BY j.rowid ORDER BY t.id) AS n"
        " FROM jobs j, json_tree(j.params) t WHERE j.rowid > ?1 AND j.rowid <= ?2"
        " AND t.type NOT IN ('object','array')) WHERE n <= 32",
    [ST_TERMS_SET] = "UPDATE terms_mark SET upto = ?1",
    /* how many candidates the first leaf's term has (up to SEARCH_PROBE): ?1 query,
     * ?2 user or NULL, ?3 'p' | 'r' */
    [ST_TERM_PROBE] =
        "SELECT count(*) FROM (SELECT 1 FROM job_terms WHERE term = (SELECT jq_term(?3, fullkey,"
        " type, atom) FROM json_tree(?1) WHERE type NOT IN ('object','array') LIMIT 1)"
        " LIMIT 1000)",
    /* the user's own candidates: (term, user_id) is the key's prefix, so this never walks
     * other users' candidates (an "?2 IS NULL OR" form would) */
    [ST_TERM_PROBE_USER] =
        "SELECT count(*) FROM (SELECT 1 FROM job_terms WHERE term = (SELECT jq_term(?3, fullkey,"
        " type, atom) FROM json_tree(?1) WHERE type NOT IN ('object','array') LIMIT 1)"
        " AND user_id = ?2 LIMIT 1000)",
    [ST_LOG_QUERY_OK] = "SELECT 1 FROM job_logs_fts WHERE job_logs_fts MATCH ?1 LIMIT 1",
    [ST_LOG_SEARCH] =
        "SELECT l.id, l.job_id, l.created_at, l.level, l.message, l.metadata,"
        " snippet(job_logs_fts, 0, char(2), char(3), '…', 16), j.type"
        " FROM job_logs_fts JOIN job_logs l ON l.id = job_logs_fts.rowid"
        " JOIN jobs j ON j.id = l.job_id"
        " WHERE job_logs_fts MATCH ?1 AND (?2 IS NULL OR l.user_id = ?2) AND l.level >= ?3"
        " AND (?4 IS NULL OR l.job_id = ?4) AND (?5 IS NULL OR j.type = ?5)"
        " AND l.created_at >= ?6 AND (?7 IS NULL OR jq_contains(l.metadata, ?7))"
        " ORDER BY bm25(job_logs_fts), l.id LIMIT ?8 OFFSET ?9",
#define SC_COLS "id,user_id,name,cron,timezone,type,queue,params,priority,max_attempts," \
    "misfire,catch_up_max,paused,next_run_at,last_run_at,created_at,updated_at"
    [ST_SC_INSERT] =
        "INSERT INTO schedules(" SC_COLS ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,0,"
        "?13,NULL,?14,?14) RETURNING " SC_COLS,
    [ST_SC_LIST] = "SELECT " SC_COLS " FROM schedules WHERE (?1 IS NULL OR user_id=?1)"
                   " ORDER BY user_id, name LIMIT 1000",
    [ST_SC_GET] = "SELECT " SC_COLS " FROM schedules WHERE " SCOPE,
    [ST_SC_PAUSE] = "UPDATE schedules SET paused=1, updated_at=?3 WHERE " SCOPE
                    " RETURNING " SC_COLS,
    [ST_SC_RESUME] = "UPDATE schedules SET paused=0, next_run_at=?4, updated_at=?3 WHERE " SCOPE
                     " RETURNING " SC_COLS,
    [ST_SC_DELETE] = "DELETE FROM schedules WHERE " SCOPE " RETURNING " SC_COLS,
    [ST_SC_DUE] = "SELECT " SC_COLS " FROM schedules INDEXED BY schedules_due"
                  " WHERE paused=0 AND next_run_at<=?1 ORDER BY next_run_at LIMIT ?2",
    [ST_SC_MARK] = "INSERT OR IGNORE INTO schedule_fires(schedule_id, fire_at) VALUES(?1, ?2)",
    [ST_SC_MARK_JOB] = "UPDATE schedule_fires SET job_id=?3 WHERE schedule_id=?1 AND fire_at=?2",
    [ST_SC_ADVANCE] = "UPDATE schedules SET next_run_at=?2, last_run_at=?3, updated_at=?3"
                      " WHERE id=?1",
    [ST_WF_STEPS_INSERT] =
        "INSERT INTO jobs(id,user_id,queue,type,params,status,priority,run_at,created_at,"
        "updated_at,attempts,max_attempts,expires_at,params_hash,workflow_id,step_key,"
        "on_parent_failure,blocked)"
        " SELECT jq_id(?2), ?1, value->>'q', value->>'t', value->'p', 'pending', value->>'pr',"
        " value->>'r', ?2, ?2, 0, value->>'m', value->>'e', value->>'h', ?3, value->>'k',"
        " value->>'o', value->>'b' FROM json_each(?4) WHERE true RETURNING " JOB_COLS,
    [ST_WF_INSERT] = "INSERT INTO workflows(id, user_id, name, created_at) VALUES(?1,?2,?3,?4)",
    [ST_WF_GET] = "SELECT id, user_id, name, created_at FROM workflows WHERE " SCOPE,
    [ST_WF_STEPS] = "SELECT " JOB_COLS " FROM jobs INDEXED BY jobs_workflow"
                    " WHERE workflow_id=?1 ORDER BY id",
    [ST_WF_EDGES] = "SELECT coalesce(json_group_array(json_array(d.parent_id, d.child_id)), '[]')"
                    " FROM jobs j INDEXED BY jobs_workflow JOIN job_deps d ON d.child_id = j.id"
                    " WHERE j.workflow_id=?1",
    [ST_COUNT_DIM] = "SELECT coalesce(sum(n), 0) FROM counts WHERE dim=?1"
                     " AND (?2 IS NULL OR key=?2) AND (?3 IS NULL OR status=?3)",
    [ST_STATS_TYPES] = "SELECT type, sum(completed), sum(failed), sum(dur_n), sum(dur_sum)"
                       " FROM stats_minute WHERE minute>=?1/60000 GROUP BY type",
    [ST_STATS_HIST] = "SELECT type, bucket, sum(n) FROM stats_hist WHERE minute>=?1/60000"
                      " GROUP BY type, bucket ORDER BY type, bucket",
    [ST_STATS_MINUTES] = "SELECT minute, sum(completed), sum(failed) FROM stats_minute"
                         " WHERE minute>=?1/60000 GROUP BY minute ORDER BY minute",
    [ST_OLDEST_DUE] =
        "SELECT c.key, (SELECT min(run_at) FROM jobs INDEXED BY jobs_pending_age"
        "  WHERE status='pending' AND queue=c.key AND run_at<=?1)"
        " FROM counts c WHERE c.dim='q' AND c.status='pending' AND c.n>0",
    [ST_GET] = "SELECT " JOB_COLS " FROM jobs WHERE " SCOPE,
    [ST_STATUS_OF] = "SELECT status, lease_token FROM jobs WHERE " SCOPE,
    [ST_CANCEL] =
        "UPDATE jobs SET status='cancelled', completed_at=?3, updated_at=?3, lease_token=NULL,"
        " lease_expires_at=NULL WHERE " SCOPE " AND status IN ('pending','processing')"
        " RETURNING " JOB_COLS,
    [ST_RETRY] =
        "UPDATE jobs SET status='pending', attempts=0, run_at=?3, updated_at=?3,"
        " started_at=NULL, completed_at=NULL, error_message=NULL, error_code=NULL,"
        " result=NULL, worker_id=NULL, lease_token=NULL, lease_expires_at=NULL,"
        " progress_percent=NULL, progress_message=NULL,"
        " expires_at=CASE WHEN expires_at IS NULL THEN NULL"
        "   ELSE ?3 + (expires_at - created_at) END"
        " WHERE " SCOPE " AND status IN ('failed','cancelled') RETURNING " JOB_COLS,
    [ST_DELETE] = "DELETE FROM jobs WHERE " SCOPE
                  " AND status IN ('completed','failed','cancelled') RETURNING id",
    [ST_DELETE_LOGS] = "DELETE FROM job_logs WHERE job_id=?1",
    [ST_CLAIM] =
        "UPDATE jobs SET status='processing', attempts=attempts+1, worker_id=?3,"
        " lease_token=lower(hex(randomblob(16))), lease_expires_at=?2+?4, started_at=?2,"
        " updated_at=?2, error_message=NULL, error_code=NULL"
        " WHERE id IN (SELECT id FROM jobs INDEXED BY jobs_pickup"
        " WHERE status='pending' AND blocked=0 AND queue=?1 AND run_at<=?2"
        " AND (expires_at IS NULL OR expires_at>?2) ORDER BY priority DESC, run_at, id LIMIT ?5)"
        " RETURNING " JOB_COLS,
    /* finish many: ?1 JSON [{"i":id,"l":lease,"r":result}|{"i","l","m","c","y"}], ?2 now */
    /* INDEXED BY the primary key: json_each must drive (one lookup per item); left
     * to itself the planner walks every processing job and scans the list for each */
    [ST_COMPLETE_MANY] =
        "UPDATE jobs INDEXED BY sqlite_autoindex_jobs_1 SET status='completed',"
        " result=j.value->'r', completed_at=?2, updated_at=?2,"
        " lease_token=NULL, lease_expires_at=NULL FROM json_each(?1) j"
        " WHERE jobs.id=j.value->>'i' AND jobs.lease_token=j.value->>'l'"
        " AND jobs.status='processing' AND jobs.lease_expires_at>?2 RETURNING jobs.id",
    [ST_FAIL_MANY] =
        "UPDATE jobs INDEXED BY sqlite_autoindex_jobs_1 SET"
        " status=CASE WHEN jq_retry(attempts, max_attempts, j.value->>'y')"
        "   THEN 'pending' ELSE 'failed' END,"
        " run_at=CASE WHEN jq_retry(attempts, max_attempts, j.value->>'y')"
        "   THEN ?2 + jq_backoff(attempts) ELSE run_at END,"
        " completed_at=CASE WHEN jq_retry(attempts, max_attempts, j.value->>'y')"
        "   THEN NULL ELSE ?2 END,"
        " error_message=j.value->>'m', error_code=j.value->>'c', lease_token=NULL,"
        " lease_expires_at=NULL, updated_at=?2 FROM json_each(?1) j"
        " WHERE jobs.id=j.value->>'i' AND jobs.lease_token=j.value->>'l'"
        " AND jobs.status='processing' AND jobs.lease_expires_at>?2 RETURNING jobs.id",
    [ST_EXISTING_IDS] = "SELECT id FROM jobs WHERE id IN (SELECT value->>'i' FROM json_each(?1))",
    [ST_HAS_DUE] = "SELECT 1 FROM jobs INDEXED BY jobs_pickup WHERE status='pending' AND blocked=0"
                   " AND queue=?1 AND run_at<=?2 LIMIT 1",
    [ST_HEARTBEAT] =
        "UPDATE jobs SET lease_expires_at=?3+?4, updated_at=?3,"
        " progress_percent=coalesce(?5, progress_percent),"
        " progress_message=coalesce(?6, progress_message)"
        " WHERE " LEASE_OK " RETURNING " JOB_COLS,
    [ST_COMPLETE] =
        "UPDATE jobs SET status='completed', result=?4, completed_at=?3, updated_at=?3,"
        " lease_token=NULL, lease_expires_at=NULL WHERE " LEASE_OK " RETURNING " JOB_COLS,
    [ST_FAIL] =
        "UPDATE jobs SET status=CASE WHEN " RETRYING " THEN 'pending' ELSE 'failed' END,"
        " run_at=CASE WHEN " RETRYING " THEN ?3 + jq_backoff(attempts) ELSE run_at END,"
        " completed_at=CASE WHEN " RETRYING " THEN NULL ELSE ?3 END,"
        " error_message=?5, error_code=?6, lease_token=NULL, lease_expires_at=NULL,"
        " updated_at=?3 WHERE " LEASE_OK " RETURNING " JOB_COLS,
    [ST_RESCUE] =
        "UPDATE jobs SET"
        " status=CASE WHEN jq_retry(attempts, max_attempts, 1) THEN 'pending' ELSE 'failed' END,"
        " run_at=CASE WHEN jq_retry(attempts, max_attempts, 1)"
        "   THEN ?1 + jq_backoff(attempts) ELSE run_at END,"
        " completed_at=CASE WHEN jq_retry(attempts, max_attempts, 1) THEN NULL ELSE ?1 END,"
        " error_code='lease_expired',"
        " error_message='lease expired without a heartbeat (worker ' || coalesce(worker_id, '?')"
        "   || ')', lease_token=NULL, lease_expires_at=NULL, updated_at=?1"
        " WHERE id IN (SELECT id FROM jobs INDEXED BY jobs_lease"
        " WHERE status='processing' AND lease_expires_at<=?1"
        " ORDER BY lease_expires_at LIMIT ?2)",
    /* INDEXED BY: without statistics the planner took jobs_status_created and walked
     * every matching job (1.4 s at 100k pending, seen by bench_search) */
    [ST_NEXT_LEASE] = "SELECT min(lease_expires_at) FROM jobs INDEXED BY jobs_lease"
                      " WHERE status='processing'",
    [ST_EXPIRE] =
        "UPDATE jobs SET status='failed', error_code='expired',"
        " error_message='expired before a worker claimed it', completed_at=?1, updated_at=?1"
        " WHERE id IN (SELECT id FROM jobs INDEXED BY jobs_expiry"
        " WHERE status='pending' AND expires_at IS NOT NULL AND expires_at<=?1"
        " ORDER BY expires_at LIMIT ?2)",
    [ST_NEXT_EXPIRY] = "SELECT min(expires_at) FROM jobs INDEXED BY jobs_expiry"
                       " WHERE status='pending' AND expires_at IS NOT NULL",
    [ST_LOG_INSERT] =
        "INSERT INTO job_logs(job_id,user_id,created_at,level,message,metadata)"
        " SELECT id, user_id, ?3, ?4, ?5, ?6 FROM jobs WHERE " LEASE_OK
        " RETURNING id, job_id, created_at, level, message, metadata",
    [ST_LOGS] = "SELECT id, job_id, created_at, level, message, metadata FROM job_logs"
                " WHERE job_id=?1 AND id>?2 AND level>=?3 ORDER BY id LIMIT ?4",
    [ST_TOKEN_ADD] = "INSERT INTO tokens(id,hash,user_id,role,name,created_at,active_limit)"
                     " VALUES(?1,?2,?3,?4,?5,?6,?7)",
    [ST_TOKEN_REVOKE] = "UPDATE tokens SET revoked_at=?2 WHERE id=?1 AND revoked_at IS NULL",
    [ST_TOKEN_FIND] = "SELECT id, user_id, role, active_limit FROM tokens"
                     " WHERE hash=?1 AND revoked_at IS NULL",
    [ST_TOKEN_COUNT] = "SELECT count(*) FROM tokens",
    [ST_BEGIN] = "BEGIN",
    [ST_BEGIN_IMM] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT op",
    [ST_RELEASE] = "RELEASE op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO op",
};

static sqlite3_stmt *prepare(struct conn *cn, sqlite3_stmt **slot, const char *sql)
{
    if (!*slot) {
        int rc = sqlite3_prepare_v3(cn->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
        if (rc != SQLITE_OK) {
            log_error("prepare failed: %s: %s", sqlite3_errmsg(cn->db), sql);
            return NULL;
        }
    } else {
        sqlite3_reset(*slot);
        sqlite3_clear_bindings(*slot);
    }
    return *slot;
}

sqlite3_stmt *sq__st(struct conn *cn, struct sctx *c, enum st_id id)
{
    if (c && id < ST_BEGIN)          /* transaction control is not a "statement" */
        c->stmts++;
    return prepare(cn, &cn->st[id], st_sql[id]);
}

/* Containment filter: candidates from the first leaf's term (within the
 * user when scoped: %s), then the exact check. */
/* The jobs above terms_mark are not indexed yet (the "terms" task indexes them in
 * batches): they are candidates too, checked exactly like the rest. */
#define CONTAINS(prefix, col, param)                                                   \
    " AND id IN (SELECT job_id FROM job_terms WHERE term = (SELECT jq_term('" prefix     \
    "', fullkey, type, atom) FROM json_tree(" param ") WHERE type NOT IN"                \
    " ('object','array') LIMIT 1)%s UNION ALL SELECT id FROM jobs"                       \
    " WHERE rowid > (SELECT upto FROM terms_mark))"                                      \
    " AND jq_contains(" col ", " param ")"
#define SEARCHES (LF_PARAMS | LF_RESULT | LF_LOGQ)

/* Builds the list (or count) statement for one combination of filters.
 * ?1 user ?2 status ?3 type ?4 queue ?5 limit ?6 offset ?7 ?8 keyset position */
sqlite3_stmt *sq__list_st(struct conn *cn, struct sctx *c, int mask)
{
    if (c)
        c->stmts++;
    if (cn->list[mask])
        return prepare(cn, &cn->list[mask], NULL);
    char sql[2048];
    const char *dir = mask & LF_ASC ? "ASC" : "DESC";
    const char *in_user = mask & LF_USER ? " AND user_id = ?1" : "";
    /* a selective search starts from its candidates (by id), then sorts them; an
     * unselective one (LF_WALK: the probe found many candidates) walks the listing
     * index and tests each job, stopping at the page (or the count cap) */
    bool by_id = (mask & SEARCHES) && !(mask & LF_WALK);
    int n = (mask & LF_COUNT) && (mask & LF_WALK)
                ? snprintf(sql, sizeof sql, "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE 1")
                : snprintf(sql, sizeof sql, "SELECT %s FROM jobs%s WHERE 1",
                           mask & LF_COUNT ? "count(*)" : JOB_COLS,
                           by_id ? " INDEXED BY sqlite_autoindex_jobs_1" : "");
    if (mask & LF_USER)
        n += snprintf(sql + n, sizeof sql - n, " AND user_id=?1");
    if (mask & LF_STATUS)
        n += snprintf(sql + n, sizeof sql - n, " AND status=?2");
    if (mask & LF_TYPE)
        n += snprintf(sql + n, sizeof sql - n, " AND type=?3");
    if (mask & LF_QUEUE)
        n += snprintf(sql + n, sizeof sql - n, " AND queue=?4");
    if (mask & LF_AFTER)
        n += snprintf(sql + n, sizeof sql - n, " AND (created_at, id) %s (?7, ?8)",
                      mask & LF_ASC ? ">" : "<");
    if ((mask & LF_PARAMS) && (mask & LF_WALK))
        n += snprintf(sql + n, sizeof sql - n, " AND jq_contains(params, ?9)");
    else if (mask & LF_PARAMS)
        n += snprintf(sql + n, sizeof sql - n, CONTAINS("p", "params", "?9"), in_user);
    if ((mask & LF_RESULT) && (mask & LF_WALK))
        n += snprintf(sql + n, sizeof sql - n, " AND jq_contains(result, ?10)");
    else if (mask & LF_RESULT)
        n += snprintf(sql + n, sizeof sql - n, CONTAINS("r", "result", "?10"), in_user);
    if (mask & LF_LOGQ)
        n += snprintf(sql + n, sizeof sql - n, " AND id IN (SELECT l.job_id FROM job_logs_fts"
                      " JOIN job_logs l ON l.id = job_logs_fts.rowid WHERE job_logs_fts MATCH ?11"
                      "%s)", mask & LF_USER ? " AND l.user_id = ?1" : "");
    if (!(mask & LF_COUNT))
        snprintf(sql + n, sizeof sql - n, " ORDER BY created_at %s, id %s LIMIT ?5 OFFSET ?6",
                 dir, dir);
    else if (mask & LF_WALK)
        snprintf(sql + n, sizeof sql - n, " LIMIT %d)", SEARCH_COUNT_CAP);
    return prepare(cn, &cn->list[mask], sql);
}

jq_err sq__rc(struct conn *cn, int rc, const char *what)
{
    int base = rc & 0xff;
    log_error("sqlite: %s: %s (%d)", what, sqlite3_errmsg(cn->db), rc);
    if (base == SQLITE_NOMEM)
        return JQ_E_NOMEM;
    if (base == SQLITE_FULL && cn->owner)   /* /healthz reports "degraded" for a while */
        atomic_store(&cn->owner->last_full_ms, clock_mono_ms());
    if (base == SQLITE_FULL)
        return JQ_E_FULL;          /* 507 storage_full */
    return JQ_E_STORAGE;
}

jq_err sq__exec_st(struct conn *cn, enum st_id id)
{
    sqlite3_stmt *st = sq__st(cn, NULL, id);
    if (!st)
        return JQ_E_STORAGE;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JQ_E_OK : sq__rc(cn, rc, st_sql[id]);
}

/* --- rows --- */

void sq__text(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

char *sq__dup(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? strdup((const char *)t) : NULL;
}

void sq__bind_opt_text(sqlite3_stmt *st, int idx, const char *v)
{
    if (v)
        sqlite3_bind_text(st, idx, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, idx);
}

void sq__load_job(sqlite3_stmt *st, struct job *j)
{
    memset(j, 0, sizeof *j);
    sq__text(st, 0, j->id, sizeof j->id);
    sq__text(st, 1, j->user_id, sizeof j->user_id);
    sq__text(st, 2, j->queue, sizeof j->queue);
    sq__text(st, 3, j->type, sizeof j->type);
    sq__text(st, 4, j->worker_id, sizeof j->worker_id);
    sq__text(st, 5, j->error_code, sizeof j->error_code);
    sq__text(st, 6, j->lease_token, sizeof j->lease_token);
    if (!job_status_parse((const char *)sqlite3_column_text(st, 7), &j->status))
        j->status = JOB_FAILED;
    j->priority = sqlite3_column_int(st, 8);
    j->attempts = sqlite3_column_int(st, 9);
    j->max_attempts = sqlite3_column_int(st, 10);
    j->progress_percent = sqlite3_column_type(st, 11) == SQLITE_NULL
                              ? -1 : sqlite3_column_int(st, 11);
    int64_t *times[] = {&j->run_at, &j->created_at, &j->updated_at, &j->started_at,
                        &j->completed_at, &j->expires_at, &j->lease_expires_at};
    for (int i = 0; i < 7; i++)
        *times[i] = sqlite3_column_int64(st, 12 + i);
    j->params = sq__dup(st, 19);
    j->result = sq__dup(st, 20);
    j->error_message = sq__dup(st, 21);
    j->progress_message = sq__dup(st, 22);
    j->blocked = sqlite3_column_int(st, 23);
    sq__text(st, 24, j->workflow_id, sizeof j->workflow_id);
    sq__text(st, 25, j->step_key, sizeof j->step_key);
}

/* --- query plans (tests assert that hot statements use their indexes) --- */

struct plan_name { const char *what; int st; int list_mask; };
static const struct plan_name plans[] = {
    {"claim", ST_CLAIM, -1},
    {"rescue", ST_RESCUE, -1},
    {"expire", ST_EXPIRE, -1},
    {"get", ST_GET, -1},
    {"logs", ST_LOGS, -1},
    {"token", ST_TOKEN_FIND, -1},
    {"list_all", -1, 0},
    {"list_user", -1, LF_USER},
    {"list_user_status", -1, LF_USER | LF_STATUS},
    {"list_user_type", -1, LF_USER | LF_TYPE},
    {"list_user_queue", -1, LF_USER | LF_QUEUE},
    {"count_user_type", -1, LF_USER | LF_TYPE | LF_COUNT},
    {"cursor_user", -1, LF_USER | LF_AFTER},
    {"cursor_user_status", -1, LF_USER | LF_STATUS | LF_AFTER},
    {"cursor_all_asc", -1, LF_AFTER | LF_ASC},
    {"dedup", ST_FIND_DEDUP, -1},
    {"cache", ST_FIND_CACHE, -1},
    {"unique", ST_FIND_UNIQUE, -1},
    {"cleanup", ST_CLEANUP_JOBS, -1},
    {"cleanup_logs", ST_CLEANUP_LOGS, -1},
    {"cleanup_deps", ST_CLEANUP_DEPS, -1},
    {"oldest_due", ST_OLDEST_DUE, -1},
    {"stats_types", ST_STATS_TYPES, -1},
    {"stats_minutes", ST_STATS_MINUTES, -1},
    {"counts_user", ST_COUNTS_USER, -1},
    {"cancel_filter", ST_CANCEL_FILTER_USER, -1},
    {"claim_fair", ST_CLAIM_FAIR, -1},
    {"parents", ST_PARENTS, -1},
    {"schedules_due", ST_SC_DUE, -1},
    {"workflow_steps", ST_WF_STEPS, -1},
    {"log_search", ST_LOG_SEARCH, -1},
    {"list_user_params", -1, LF_USER | LF_PARAMS},
    {"list_all_result", -1, LF_RESULT},
    {"list_user_logq", -1, LF_USER | LF_LOGQ},
    {"walk_user_params", -1, LF_USER | LF_PARAMS | LF_WALK},
    {"walk_all_params", -1, LF_PARAMS | LF_WALK},
    {"term_probe", ST_TERM_PROBE, -1},
    {"term_probe_user", ST_TERM_PROBE_USER, -1},
    {"events", ST_EVENTS_AFTER, -1},
    {"events_prune", ST_EVENTS_PRUNE, -1},
    {"next_lease", ST_NEXT_LEASE, -1},
    {"next_expiry", ST_NEXT_EXPIRY, -1},
    {"events_job", ST_EVENTS_JOB, -1},
    {"events_prune", ST_EVENTS_PRUNE, -1},
    {"terms_next", ST_TERMS_NEXT, -1},
    {"terms_index", ST_TERMS_INDEX, -1},
    {"complete_many", ST_COMPLETE_MANY, -1},
    {"fail_many", ST_FAIL_MANY, -1},
    {"has_due", ST_HAS_DUE, -1},
    {"batch_existing", ST_BATCH_EXISTING, -1},
};

jq_err sq__explain(struct conn *cn, const char *what, char *out, size_t cap)
{
    const char *sql = NULL;
    for (size_t i = 0; i < sizeof plans / sizeof plans[0] && !sql; i++) {
        if (strcmp(plans[i].what, what) != 0)
            continue;
        sqlite3_stmt *st = plans[i].st >= 0 ? sq__st(cn, NULL, plans[i].st)
                                            : sq__list_st(cn, NULL, plans[i].list_mask);
        sql = st ? sqlite3_sql(st) : NULL;
    }
    if (!sql)
        return JQ_E_NOT_FOUND;
    char *q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(cn->db, q, -1, &st, NULL);
    sqlite3_free(q);
    if (rc != SQLITE_OK)
        return sq__rc(cn, rc, "explain");
    size_t n = 0;
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "%s\n", sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    return JQ_E_OK;
}

/* --- slow statements --- */

/* SQLITE_TRACE_PROFILE hook: remembers a statement slower than the
 * threshold; it is logged (with its plan) once its op is done, never from
 * inside SQLite. The SQL has ? placeholders: the shapes, not the values. */
static int on_profile(unsigned type, void *ctx, void *p, void *x)
{
    struct conn *cn = ctx;
    int64_t ns = *(int64_t *)x;
    if (type != SQLITE_TRACE_PROFILE || !cn->owner || ns < cn->owner->cfg.slow_ms * 1000000)
        return 0;
    snprintf(cn->slow_sql, sizeof cn->slow_sql, "%s", sqlite3_sql((sqlite3_stmt *)p));
    cn->slow_ns = ns;
    atomic_fetch_add(&cn->owner->slow, 1);
    return 0;
}

void sq__watch_slow(struct conn *cn, struct sq *owner)
{
    cn->owner = owner;
    if (owner->cfg.slow_ms > 0)
        sqlite3_trace_v2(cn->db, SQLITE_TRACE_PROFILE, on_profile, cn);
}

void sq__log_slow(struct conn *cn)
{
    if (!cn->slow_sql[0])
        return;
    char plan[1024] = "", *q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", cn->slow_sql);
    sqlite3_stmt *st = NULL;
    size_t n = 0;
    if (q && sqlite3_prepare_v2(cn->db, q, -1, &st, NULL) == SQLITE_OK)
        while (sqlite3_step(st) == SQLITE_ROW && n < sizeof plan - 1)
            n += (size_t)snprintf(plan + n, sizeof plan - n, "%s%s", n ? " | " : "",
                                  sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    sqlite3_free(q);
    log_warn("slow statement (%.1f ms): %s -- plan: %s", (double)cn->slow_ns / 1e6,
             cn->slow_sql, plan[0] ? plan : "?");
    cn->slow_sql[0] = '\0';
}
