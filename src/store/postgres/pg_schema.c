/*
 * pg_schema.c - the PostgreSQL schema as versioned migrations (table
 * schema_version), applied under an advisory lock so nodes starting together
 * migrate once. Same columns as the SQLite schema; JSON in jsonb with GIN
 * indexes, log messages in a tsvector with a GIN index, partial indexes for
 * pickup, leases, expiry and cleanup. Counters, statistics buckets and the
 * event log are kept by triggers in the same transaction as the change.
 *
 * Roles: jobq_app (user-scoped transactions: row-level security by the
 * per-transaction setting jobq.user_id, no BYPASSRLS) and jobq_service
 * (workers, maintenance: a policy that admits every row). The login role
 * switches with SET LOCAL ROLE in every transaction (see pg_conn.c).
 */
#include "store/postgres/pg_int.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"

enum { MIGRATE_LOCK = 0x6A6F6271 };   /* 'jobq' */

#define RLS(t)                                                                        \
    "ALTER TABLE " t " ENABLE ROW LEVEL SECURITY; ALTER TABLE " t " FORCE ROW LEVEL SECURITY;" \
    "CREATE POLICY " t "_user ON " t " TO jobq_app"                                   \
    "  USING (user_id = current_setting('jobq.user_id', true))"                      \
    "  WITH CHECK (user_id = current_setting('jobq.user_id', true));"                \
    "CREATE POLICY " t "_service ON " t " TO jobq_service USING (true) WITH CHECK (true);"

/* migrations[i] takes the schema from version i to i + 1 */
static const char *const migrations[] = {
    /* 1: the foundation */
    "DO $$ BEGIN"
    "  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobq_app') THEN"
    "    CREATE ROLE jobq_app NOLOGIN NOBYPASSRLS; END IF;"
    "  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobq_service') THEN"
    "    CREATE ROLE jobq_service NOLOGIN; END IF;"
    "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;"
    "DO $$ BEGIN EXECUTE format('GRANT jobq_app, jobq_service TO %I', current_user);"
    "EXCEPTION WHEN others THEN NULL; END $$;"
    "CREATE TABLE jobs ("
    "  id text PRIMARY KEY, user_id text NOT NULL, queue text NOT NULL, type text NOT NULL,"
    "  params jsonb NOT NULL, params_hash text, status text NOT NULL,"
    "  priority integer NOT NULL DEFAULT 0, run_at bigint NOT NULL, created_at bigint NOT NULL,"
    "  updated_at bigint NOT NULL, started_at bigint, completed_at bigint,"
    "  attempts integer NOT NULL DEFAULT 0, max_attempts integer NOT NULL, lease_token text,"
    "  lease_expires_at bigint, worker_id text, expires_at bigint, progress_percent integer,"
    "  progress_message text, result jsonb, error_message text, error_code text,"
    "  unique_key text)"
    /* bloat: jobs are updated several times each; room for HOT updates, early vacuum */
    "  WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.05,"
    "        autovacuum_analyze_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 10,"
    "        autovacuum_vacuum_cost_limit = 1000);"
    "CREATE INDEX jobs_pickup ON jobs(queue, priority DESC, run_at, id) WHERE status = 'pending';"
    "CREATE INDEX jobs_pickup_user ON jobs(queue, user_id, priority DESC, run_at, id)"
    "  WHERE status = 'pending';"
    "CREATE INDEX jobs_lease ON jobs(lease_expires_at) WHERE status = 'processing';"
    "CREATE INDEX jobs_expiry ON jobs(expires_at) WHERE status = 'pending';"
    "CREATE INDEX jobs_pending_age ON jobs(queue, run_at) WHERE status = 'pending';"
    "CREATE INDEX jobs_user_pending ON jobs(user_id, run_at) WHERE status = 'pending';"
    "CREATE INDEX jobs_cleanup ON jobs(completed_at)"
    "  WHERE status IN ('completed','failed','cancelled');"
    "CREATE INDEX jobs_recent_errors ON jobs(completed_at DESC) WHERE status = 'failed';"
    "CREATE INDEX jobs_dedup ON jobs(user_id, type, params_hash, created_at)"
    "  WHERE status IN ('pending','processing');"
    "CREATE INDEX jobs_cache ON jobs(user_id, type, params_hash, completed_at)"
    "  WHERE status = 'completed';"
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
    "CREATE INDEX jobs_params_gin ON jobs USING gin (params jsonb_path_ops);"
    "CREATE INDEX jobs_result_gin ON jobs USING gin (result jsonb_path_ops)"
    "  WHERE result IS NOT NULL;"
    "CREATE FUNCTION jq_uterm(u text) RETURNS text LANGUAGE sql IMMUTABLE AS"
    "  $$ SELECT 'u' || encode(convert_to(u, 'UTF8'), 'hex') $$;"
    "CREATE TABLE job_logs ("
    "  id bigserial PRIMARY KEY, job_id text NOT NULL, user_id text NOT NULL,"
    "  created_at bigint NOT NULL, level integer NOT NULL, message text NOT NULL,"
    "  metadata jsonb,"
    /* message words (weight D) and one term for the user (weight A, what the
     * API's "u:<hex of user_id>" column filter names, as in the SQLite index) */
    "  tsv tsvector GENERATED ALWAYS AS (setweight(to_tsvector('simple', message), 'D')"
    "    || setweight(to_tsvector('simple', jq_uterm(user_id)), 'A')) STORED)"
    "  WITH (autovacuum_vacuum_scale_factor = 0.05);"
    "CREATE INDEX job_logs_job ON job_logs(job_id, id);"
    "CREATE INDEX job_logs_fts ON job_logs USING gin (tsv);"
    "CREATE INDEX job_logs_metadata_gin ON job_logs USING gin (metadata jsonb_path_ops)"
    "  WHERE metadata IS NOT NULL;"
    "CREATE TABLE tokens ("
    "  id text PRIMARY KEY, hash bytea NOT NULL UNIQUE, user_id text NOT NULL,"
    "  role text NOT NULL, name text, created_at bigint NOT NULL, revoked_at bigint,"
    "  active_limit bigint);"
    "CREATE TABLE idempotency (user_id text NOT NULL, key text NOT NULL,"
    "  req_hash text NOT NULL, status integer NOT NULL, body text NOT NULL,"
    "  created_at bigint NOT NULL, PRIMARY KEY (user_id, key));"
    "CREATE INDEX idempotency_created ON idempotency(created_at);"
    "CREATE TABLE counts (dim text NOT NULL, key text NOT NULL, status text NOT NULL,"
    "  n bigint NOT NULL, PRIMARY KEY (dim, key, status)) WITH (fillfactor = 50);"
    "CREATE TABLE stats_minute (minute bigint NOT NULL, type text NOT NULL,"
    "  completed bigint NOT NULL, failed bigint NOT NULL, dur_n bigint NOT NULL,"
    "  dur_sum bigint NOT NULL, PRIMARY KEY (minute, type));"
    "CREATE TABLE stats_hist (minute bigint NOT NULL, type text NOT NULL,"
    "  bucket integer NOT NULL, n bigint NOT NULL, PRIMARY KEY (minute, type, bucket));"
    "CREATE TABLE events (id bigserial PRIMARY KEY, user_id text NOT NULL,"
    "  job_id text NOT NULL, queue text NOT NULL, type text NOT NULL, kind text NOT NULL,"
    "  data text NOT NULL, created_at bigint NOT NULL)"
    "  WITH (autovacuum_vacuum_scale_factor = 0.05);"
    "CREATE INDEX events_created ON events(created_at);"
    /* core rules as SQL functions (retry.c, the stats histogram of sq_conn.c) */
    "CREATE FUNCTION jq_backoff(a integer, base bigint, mx bigint) RETURNS bigint"
    "  LANGUAGE sql VOLATILE AS $$ SELECT d - d / 2 + floor((d / 2) * random())::bigint"
    "  FROM (SELECT least(mx, (base::numeric * power(2::numeric,"
    "    least(greatest(a, 1) - 1, 62)))::numeric)::bigint AS d) x $$;"
    "CREATE FUNCTION jq_bucket(ms bigint) RETURNS integer LANGUAGE sql IMMUTABLE AS"
    "  $$ SELECT CASE WHEN ms IS NULL OR ms <= 0 THEN 0"
    "    ELSE least(31, 64 - position('1' in ms::bit(64)::text) + 1) END $$;"
    /* counters: statement-level, deltas summed and applied in key order. No
     * join of old and new rows: user/queue/type never change, so a row whose
     * status did not change adds -1 and +1 to one counter; an outcome is
     * counted in the statistics by the update that set completed_at (it also
     * sets updated_at to the same time) */
    "CREATE FUNCTION jq_counts() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    "  IF TG_OP = 'INSERT' THEN"
    "    INSERT INTO counts AS c (dim, key, status, n)"
    "    SELECT v.d, v.k, x.status, count(*) FROM nt x"
    "    CROSS JOIN LATERAL (VALUES ('u', x.user_id), ('q', x.queue), ('t', x.type)) v(d, k)"
    "    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    "    ON CONFLICT (dim, key, status) DO UPDATE SET n = c.n + excluded.n;"
    "  ELSIF TG_OP = 'DELETE' THEN"
    "    INSERT INTO counts AS c (dim, key, status, n)"
    "    SELECT v.d, v.k, x.status, -count(*) FROM ot x"
    "    CROSS JOIN LATERAL (VALUES ('u', x.user_id), ('q', x.queue), ('t', x.type)) v(d, k)"
    "    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    "    ON CONFLICT (dim, key, status) DO UPDATE SET n = c.n + excluded.n;"
    "  ELSE"
    "    INSERT INTO counts AS c (dim, key, status, n)"
    "    SELECT v.d, v.k, x.s, sum(x.n) FROM ("
    "      SELECT o.user_id u, o.queue q, o.type t, o.status s, -1 n FROM ot o"
    "      UNION ALL SELECT w.user_id, w.queue, w.type, w.status, 1 FROM nt w) x"
    "    CROSS JOIN LATERAL (VALUES ('u', x.u), ('q', x.q), ('t', x.t)) v(d, k)"
    "    GROUP BY 1, 2, 3 HAVING sum(x.n) <> 0 ORDER BY 1, 2, 3"
    "    ON CONFLICT (dim, key, status) DO UPDATE SET n = c.n + excluded.n;"
    "    INSERT INTO stats_minute AS m SELECT w.completed_at / 60000, w.type,"
    "      count(*) FILTER (WHERE w.status = 'completed'),"
    "      count(*) FILTER (WHERE w.status = 'failed'), count(w.started_at),"
    "      coalesce(sum(w.completed_at - w.started_at), 0)"
    "    FROM nt w WHERE w.status IN ('completed','failed') AND w.completed_at = w.updated_at"
    "    GROUP BY 1, 2 ORDER BY 1, 2"
    "    ON CONFLICT (minute, type) DO UPDATE SET completed = m.completed + excluded.completed,"
    "      failed = m.failed + excluded.failed, dur_n = m.dur_n + excluded.dur_n,"
    "      dur_sum = m.dur_sum + excluded.dur_sum;"
    "    INSERT INTO stats_hist AS h SELECT w.completed_at / 60000, w.type,"
    "      jq_bucket(w.completed_at - w.started_at), count(*)"
    "    FROM nt w WHERE w.status IN ('completed','failed')"
    "      AND w.completed_at = w.updated_at AND w.started_at IS NOT NULL"
    "    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    "    ON CONFLICT (minute, type, bucket) DO UPDATE SET n = h.n + excluded.n;"
    "  END IF; RETURN NULL; END $$;"
    "CREATE TRIGGER jobs_counts_ins AFTER INSERT ON jobs REFERENCING NEW TABLE AS nt"
    "  FOR EACH STATEMENT EXECUTE FUNCTION jq_counts();"
    "CREATE TRIGGER jobs_counts_upd AFTER UPDATE ON jobs REFERENCING OLD TABLE AS ot"
    "  NEW TABLE AS nt FOR EACH STATEMENT EXECUTE FUNCTION jq_counts();"
    "CREATE TRIGGER jobs_counts_del AFTER DELETE ON jobs REFERENCING OLD TABLE AS ot"
    "  FOR EACH STATEMENT EXECUTE FUNCTION jq_counts();"
    /* the event log: ids must become visible in id order (SSE resumes after an
     * id), so every statement that can write events first takes one
     * transaction-scoped advisory lock, held to commit */
    "CREATE FUNCTION jq_event_lock() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    "  PERFORM pg_advisory_xact_lock(1785684593, 1); RETURN NULL; END $$;"
    "CREATE TRIGGER a_jobs_event_lock BEFORE INSERT OR UPDATE ON jobs"
    "  FOR EACH STATEMENT EXECUTE FUNCTION jq_event_lock();"
    "CREATE TRIGGER a_logs_event_lock BEFORE INSERT ON job_logs"
    "  FOR EACH STATEMENT EXECUTE FUNCTION jq_event_lock();"
    "CREATE FUNCTION jq_events() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    "  IF TG_TABLE_NAME = 'job_logs' THEN"
    "    INSERT INTO events(user_id, job_id, queue, type, kind, data, created_at)"
    "    SELECT n.user_id, n.job_id, j.queue, j.type, 'log', jsonb_build_object('log_id', n.id,"
    "      'level', CASE n.level WHEN 0 THEN 'debug' WHEN 1 THEN 'info' WHEN 2 THEN 'warning'"
    "      ELSE 'error' END, 'message', n.message)::text, n.created_at"
    "    FROM nt n JOIN jobs j ON j.id = n.job_id ORDER BY n.id;"
    "  ELSE"
    "    INSERT INTO events(user_id, job_id, queue, type, kind, data, created_at)"
    "    SELECT n.user_id, n.id, n.queue, n.type, 'created', jsonb_build_object('status',"
    "      n.status, 'priority', n.priority, 'run_at', n.run_at)::text, n.created_at"
    "    FROM nt n ORDER BY n.id;"
    "  END IF; RETURN NULL; END $$;"
    "CREATE FUNCTION jq_event_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    "  INSERT INTO events(user_id, job_id, queue, type, kind, data, created_at)"
    "  VALUES (NEW.user_id, NEW.id, NEW.queue, NEW.type, CASE WHEN OLD.status = NEW.status"
    "    THEN 'progress' WHEN NEW.status = 'processing' THEN 'claimed'"
    "    WHEN NEW.status = 'completed' THEN 'completed' WHEN NEW.status = 'failed' THEN 'failed'"
    "    WHEN NEW.status = 'cancelled' THEN 'cancelled' ELSE 'retried' END,"
    "    CASE WHEN OLD.status = NEW.status THEN jsonb_build_object('status', NEW.status,"
    "      'progress_percent', NEW.progress_percent, 'progress_message', NEW.progress_message)"
    "    ELSE jsonb_build_object('status', NEW.status, 'attempts', NEW.attempts, 'run_at',"
    "      NEW.run_at, 'worker_id', NEW.worker_id, 'error_code', NEW.error_code,"
    "      'error_message', NEW.error_message) END::text, NEW.updated_at);"
    "  RETURN NULL; END $$;"
    "CREATE TRIGGER z_jobs_events_ins AFTER INSERT ON jobs REFERENCING NEW TABLE AS nt"
    "  FOR EACH STATEMENT EXECUTE FUNCTION jq_events();"
    "CREATE TRIGGER z_jobs_events_upd AFTER UPDATE ON jobs FOR EACH ROW"
    "  WHEN (OLD.status IS DISTINCT FROM NEW.status"
    "    OR OLD.progress_percent IS DISTINCT FROM NEW.progress_percent"
    "    OR OLD.progress_message IS DISTINCT FROM NEW.progress_message)"
    "  EXECUTE FUNCTION jq_event_row();"
    "CREATE TRIGGER z_logs_events AFTER INSERT ON job_logs REFERENCING NEW TABLE AS nt"
    "  FOR EACH STATEMENT EXECUTE FUNCTION jq_events();"
    RLS("jobs") RLS("job_logs") RLS("events")
    "GRANT USAGE ON SCHEMA public TO jobq_app, jobq_service;"
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public"
    "  TO jobq_app, jobq_service;"
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO jobq_app, jobq_service;",
    /* 2: dependencies, workflows, schedules (issue 9). A job with unfinished
     * parents has blocked > 0 and is not claimable (the pickup indexes leave
     * it out); a parent that completes unblocks its children; one that fails
     * or is cancelled cancels them (on_parent_failure 'cancel', the default;
     * the cancel is itself an update of jobs, so the trigger cascades) or
     * unblocks them ('run'). The trigger is statement-level over the new rows
     * only: a row reached its outcome in this statement when completed_at =
     * updated_at (as for the statistics). Unblocking sets jobq.wake for the
     * transaction, read at COMMIT (the NOTIFY then says "claimable"). */
    "ALTER TABLE jobs ADD COLUMN blocked integer NOT NULL DEFAULT 0,"
    "  ADD COLUMN workflow_id text, ADD COLUMN step_key text, ADD COLUMN on_parent_failure text;"
    "DROP INDEX jobs_pickup; DROP INDEX jobs_pickup_user;"
    "CREATE INDEX jobs_pickup ON jobs(queue, priority DESC, run_at, id)"
    "  WHERE status = 'pending' AND blocked = 0;"
    "CREATE INDEX jobs_pickup_user ON jobs(queue, user_id, priority DESC, run_at, id)"
    "  WHERE status = 'pending' AND blocked = 0;"
    "CREATE INDEX jobs_workflow ON jobs(workflow_id, step_key) WHERE workflow_id IS NOT NULL;"
    "CREATE TABLE job_deps (parent_id text NOT NULL, child_id text NOT NULL,"
    "  PRIMARY KEY (parent_id, child_id));"
    "CREATE INDEX job_deps_child ON job_deps(child_id);"
    "CREATE FUNCTION jq_deps() RETURNS trigger LANGUAGE plpgsql AS $$"
    "DECLARE n integer; BEGIN"
    "  IF NOT EXISTS (SELECT 1 FROM nt w WHERE w.status IN ('completed','failed','cancelled')"
    "      AND w.completed_at = w.updated_at) THEN RETURN NULL; END IF;"
    "  UPDATE jobs j SET status = 'cancelled', error_code = 'parent_failed',"
    "    error_message = 'a job it depends on ' || y.s, completed_at = y.t, updated_at = y.t,"
    "    lease_token = NULL, lease_expires_at = NULL"
    "  FROM (SELECT d.child_id, min(w.status) s, max(w.updated_at) t FROM nt w"
    "    JOIN job_deps d ON d.parent_id = w.id WHERE w.status IN ('failed','cancelled')"
    "    AND w.completed_at = w.updated_at GROUP BY d.child_id) y"
    "  WHERE j.id = y.child_id AND j.status = 'pending'"
    "    AND coalesce(j.on_parent_failure, 'cancel') = 'cancel';"
    "  UPDATE jobs j SET blocked = greatest(0, j.blocked - CASE WHEN j.on_parent_failure = 'run'"
    "    THEN y.n ELSE y.nc END)"
    "  FROM (SELECT d.child_id, count(*) n, count(*) FILTER (WHERE w.status = 'completed') nc"
    "    FROM nt w JOIN job_deps d ON d.parent_id = w.id"
    "    WHERE w.status IN ('completed','failed','cancelled') AND w.completed_at = w.updated_at"
    "    GROUP BY d.child_id) y"
    "  WHERE j.id = y.child_id AND j.status = 'pending' AND j.blocked > 0"
    "    AND (y.nc > 0 OR j.on_parent_failure = 'run');"
    "  GET DIAGNOSTICS n = ROW_COUNT;"
    "  IF n > 0 THEN PERFORM set_config('jobq.wake', '1', true); END IF;"
    "  RETURN NULL; END $$;"
    "CREATE TRIGGER jobs_deps_upd AFTER UPDATE ON jobs REFERENCING NEW TABLE AS nt"
    "  FOR EACH STATEMENT EXECUTE FUNCTION jq_deps();"
    "CREATE TABLE workflows (id text PRIMARY KEY, user_id text NOT NULL, name text,"
    "  created_at bigint NOT NULL);"
    /* schedule_fires makes each (schedule, fire time) enqueue once, across
     * restarts and nodes: written in the same transaction as the job */
    "CREATE TABLE schedules (id text PRIMARY KEY, user_id text NOT NULL, name text NOT NULL,"
    "  cron text NOT NULL, timezone text NOT NULL, type text NOT NULL, queue text NOT NULL,"
    "  params jsonb NOT NULL, priority integer NOT NULL, max_attempts integer NOT NULL,"
    "  misfire text NOT NULL, catch_up_max integer NOT NULL, paused integer NOT NULL DEFAULT 0,"
    "  next_run_at bigint, last_run_at bigint, created_at bigint NOT NULL,"
    "  updated_at bigint NOT NULL, UNIQUE (user_id, name));"
    "CREATE INDEX schedules_due ON schedules(next_run_at) WHERE paused = 0;"
    "CREATE TABLE schedule_fires (schedule_id text NOT NULL, fire_at bigint NOT NULL,"
    "  job_id text, PRIMARY KEY (schedule_id, fire_at));"
    RLS("workflows") RLS("schedules")
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public"
    "  TO jobq_app, jobq_service;",
    /* 3: writers no longer serialize. Before, every job write took one
     * transaction-wide advisory lock (event ids had to become visible in id
     * order) and upserted the same counter rows (a row lock held to commit):
     * commits went one at a time.
     * - Events: triggers append to event_queue (qid from a sequence, no lock).
     *   jq_seq_events() is the sequencer: under an advisory lock, in a new
     *   snapshot, it moves the committed queue rows into events with ids
     *   event_hwm.last + 1, 2, … (queue order, so one transaction's events keep
     *   their order). Only committed rows get ids, and each run commits before
     *   the next starts, so ids become visible in id order: a reader resuming
     *   after an id never skips one. Readers run it before reading (SSE sees
     *   a write as soon as its NOTIFY arrives); the leader runs it every second.
     * - Counters: triggers append deltas (counts_delta); counts is a view that
     *   adds them to counts_base; jq_compact() (leader, every second) folds
     *   the deltas in, in one statement. The statistics rows are append-only
     *   too (no primary key; readers already sum them) and are compacted the
     *   same way. */
    "DROP TRIGGER a_jobs_event_lock ON jobs; DROP TRIGGER a_logs_event_lock ON job_logs;"
    "DROP FUNCTION jq_event_lock();"
    "CREATE TABLE event_queue (qid bigserial PRIMARY KEY, user_id text NOT NULL,"
    "  job_id text NOT NULL, queue text NOT NULL, type text NOT NULL, kind text NOT NULL,"
    "  data text NOT NULL, created_at bigint NOT NULL)"
    "  WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);"
    "CREATE TABLE event_hwm (one boolean PRIMARY KEY DEFAULT true CHECK (one),"
    "  last bigint NOT NULL);"
    "INSERT INTO event_hwm(last) SELECT greatest(coalesce(max(id), 0),"
    "  (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_id_seq)) FROM events;"
    "CREATE OR REPLACE FUNCTION jq_events() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    "  IF TG_TABLE_NAME = 'job_logs' THEN"
    "    INSERT INTO event_queue(user_id, job_id, queue, type, kind, data, created_at)"
    "    SELECT n.user_id, n.job_id, j.queue, j.type, 'log', jsonb_build_object('log_id', n.id,"
    "      'level', CASE n.level WHEN 0 THEN 'debug' WHEN 1 THEN 'info' WHEN 2 THEN 'warning'"
    "      ELSE 'error' END, 'message', n.message)::text, n.created_at"
    "    FROM nt n JOIN jobs j ON j.id = n.job_id ORDER BY n.id;"
    "  ELSE"
    "    INSERT INTO event_queue(user_id, job_id, queue, type, kind, data, created_at)"
    "    SELECT n.user_id, n.id, n.queue, n.type, 'created', jsonb_build_object('status',"
    "      n.status, 'priority', n.priority, 'run_at', n.run_at)::text, n.created_at"
    "    FROM nt n ORDER BY n.id;"
    "  END IF; RETURN NULL; END $$;"
    "CREATE OR REPLACE FUNCTION jq_event_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    "  INSERT INTO event_queue(user_id, job_id, queue, type, kind, data, created_at)"
    "  VALUES (NEW.user_id, NEW.id, NEW.queue, NEW.type, CASE WHEN OLD.status = NEW.status"
    "    THEN 'progress' WHEN NEW.status = 'processing' THEN 'claimed'"
    "    WHEN NEW.status = 'completed' THEN 'completed' WHEN NEW.status = 'failed' THEN 'failed'"
    "    WHEN NEW.status = 'cancelled' THEN 'cancelled' ELSE 'retried' END,"
    "    CASE WHEN OLD.status = NEW.status THEN jsonb_build_object('status', NEW.status,"
    "      'progress_percent', NEW.progress_percent, 'progress_message', NEW.progress_message)"
    "    ELSE jsonb_build_object('status', NEW.status, 'attempts', NEW.attempts, 'run_at',"
    "      NEW.run_at, 'worker_id', NEW.worker_id, 'error_code', NEW.error_code,"
    "      'error_message', NEW.error_message) END::text, NEW.updated_at);"
    "  RETURN NULL; END $$;"
    /* VOLATILE: each statement inside takes a new snapshot, so the move sees
     * every commit made before the lock was granted */
    "CREATE FUNCTION jq_seq_events() RETURNS bigint LANGUAGE plpgsql AS $$"
    "DECLARE n bigint; BEGIN"
    "  IF NOT EXISTS (SELECT 1 FROM event_queue) THEN RETURN 0; END IF;"
    "  PERFORM pg_advisory_xact_lock(1785684593, 1);"
    "  WITH m AS (DELETE FROM event_queue WHERE qid IN"
    "      (SELECT qid FROM event_queue ORDER BY qid LIMIT 50000) RETURNING *),"
    "    h AS (SELECT last FROM event_hwm),"
    "    ins AS (INSERT INTO events(id, user_id, job_id, queue, type, kind, data, created_at)"
    "      SELECT h.last + row_number() OVER (ORDER BY m.qid), m.user_id, m.job_id, m.queue,"
    "      m.type, m.kind, m.data, m.created_at FROM m CROSS JOIN h RETURNING 1)"
    "  UPDATE event_hwm SET last = last + (SELECT count(*) FROM ins)"
    "    WHERE (SELECT count(*) FROM ins) > 0;"
    "  GET DIAGNOSTICS n = ROW_COUNT; RETURN n; END $$;"
    "ALTER TABLE counts RENAME TO counts_base;"
    "CREATE TABLE counts_delta (dim text NOT NULL, key text NOT NULL, status text NOT NULL,"
    "  n bigint NOT NULL) WITH (autovacuum_vacuum_scale_factor = 0.01,"
    "  autovacuum_vacuum_threshold = 1000);"
    "CREATE INDEX counts_delta_key ON counts_delta(dim, key, status);"
    "CREATE VIEW counts AS SELECT dim, key, status, sum(n)::bigint AS n FROM ("
    "  SELECT dim, key, status, n FROM counts_base UNION ALL"
    "  SELECT dim, key, status, n FROM counts_delta) x GROUP BY dim, key, status;"
    "ALTER TABLE stats_minute DROP CONSTRAINT stats_minute_pkey;"
    "ALTER TABLE stats_hist DROP CONSTRAINT stats_hist_pkey;"
    "CREATE INDEX stats_minute_key ON stats_minute(minute, type);"
    "CREATE INDEX stats_hist_key ON stats_hist(minute, type, bucket);"
    "CREATE OR REPLACE FUNCTION jq_counts() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    "  IF TG_OP = 'INSERT' THEN"
    "    INSERT INTO counts_delta (dim, key, status, n)"
    "    SELECT v.d, v.k, x.status, count(*) FROM nt x"
    "    CROSS JOIN LATERAL (VALUES ('u', x.user_id), ('q', x.queue), ('t', x.type)) v(d, k)"
    "    GROUP BY 1, 2, 3;"
    "  ELSIF TG_OP = 'DELETE' THEN"
    "    INSERT INTO counts_delta (dim, key, status, n)"
    "    SELECT v.d, v.k, x.status, -count(*) FROM ot x"
    "    CROSS JOIN LATERAL (VALUES ('u', x.user_id), ('q', x.queue), ('t', x.type)) v(d, k)"
    "    GROUP BY 1, 2, 3;"
    "  ELSE"
    "    INSERT INTO counts_delta (dim, key, status, n)"
    "    SELECT v.d, v.k, x.s, sum(x.n) FROM ("
    "      SELECT o.user_id u, o.queue q, o.type t, o.status s, -1 n FROM ot o"
    "      UNION ALL SELECT w.user_id, w.queue, w.type, w.status, 1 FROM nt w) x"
    "    CROSS JOIN LATERAL (VALUES ('u', x.u), ('q', x.q), ('t', x.t)) v(d, k)"
    "    GROUP BY 1, 2, 3 HAVING sum(x.n) <> 0;"
    "    INSERT INTO stats_minute SELECT w.completed_at / 60000, w.type,"
    "      count(*) FILTER (WHERE w.status = 'completed'),"
    "      count(*) FILTER (WHERE w.status = 'failed'), count(w.started_at),"
    "      coalesce(sum(w.completed_at - w.started_at), 0)"
    "    FROM nt w WHERE w.status IN ('completed','failed') AND w.completed_at = w.updated_at"
    "    GROUP BY 1, 2;"
    "    INSERT INTO stats_hist SELECT w.completed_at / 60000, w.type,"
    "      jq_bucket(w.completed_at - w.started_at), count(*)"
    "    FROM nt w WHERE w.status IN ('completed','failed')"
    "      AND w.completed_at = w.updated_at AND w.started_at IS NOT NULL"
    "    GROUP BY 1, 2, 3;"
    "  END IF; RETURN NULL; END $$;"
    "CREATE FUNCTION jq_compact() RETURNS void LANGUAGE plpgsql AS $$ BEGIN"
    "  WITH d AS (DELETE FROM counts_delta RETURNING dim, key, status, n)"
    "  INSERT INTO counts_base AS c (dim, key, status, n)"
    "  SELECT dim, key, status, sum(n) FROM d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    "  ON CONFLICT (dim, key, status) DO UPDATE SET n = c.n + excluded.n;"
    "  WITH g AS (SELECT minute, type FROM stats_minute GROUP BY 1, 2 HAVING count(*) > 1),"
    "    d AS (DELETE FROM stats_minute s USING g WHERE s.minute = g.minute"
    "      AND s.type = g.type RETURNING s.*)"
    "  INSERT INTO stats_minute SELECT minute, type, sum(completed), sum(failed), sum(dur_n),"
    "    sum(dur_sum) FROM d GROUP BY 1, 2;"
    "  WITH g AS (SELECT minute, type, bucket FROM stats_hist GROUP BY 1, 2, 3"
    "      HAVING count(*) > 1),"
    "    d AS (DELETE FROM stats_hist s USING g WHERE s.minute = g.minute AND s.type = g.type"
    "      AND s.bucket = g.bucket RETURNING s.*)"
    "  INSERT INTO stats_hist SELECT minute, type, bucket, sum(n) FROM d GROUP BY 1, 2, 3;"
    "END $$;"
    RLS("event_queue")
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public"
    "  TO jobq_app, jobq_service;"
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO jobq_app, jobq_service;",
    /* 4: fewer trigger statements per job write (issue 7: a claim or complete
     * ran about eight statements inside its triggers, most of them for nothing).
     * - The update event is one statement per UPDATE over the transition tables
     *   instead of one PL/pgSQL call and INSERT per row. Named a_… so it still
     *   fires before jq_deps, whose cascaded updates write the children's events
     *   after the parent's (as the row trigger's did).
     * - jq_deps returns at once unless a row that finished has dependents; before,
     *   every complete ran two empty UPDATEs of jobs, each with its own triggers.
     * - jq_counts writes the statistics rows only when a row finished (claims,
     *   heartbeats and progress skip two INSERTs).
     * - The housekeeping functions run without JIT in any session: the planner's
     *   estimates for their CTEs passed jit_above_cost, and compiling took 285 ms
     *   of each second's event sequencing (3,000 events moved in 20 ms). */
    "ALTER FUNCTION jq_seq_events() SET jit = off;"
    "ALTER FUNCTION jq_compact() SET jit = off;"
    "DROP TRIGGER z_jobs_events_upd ON jobs;"
    "CREATE FUNCTION jq_events_upd() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    "  INSERT INTO event_queue(user_id, job_id, queue, type, kind, data, created_at)"
    "  SELECT n.user_id, n.id, n.queue, n.type, CASE WHEN o.status = n.status"
    "    THEN 'progress' WHEN n.status = 'processing' THEN 'claimed'"
    "    WHEN n.status = 'completed' THEN 'completed' WHEN n.status = 'failed' THEN 'failed'"
    "    WHEN n.status = 'cancelled' THEN 'cancelled' ELSE 'retried' END,"
    "    CASE WHEN o.status = n.status THEN jsonb_build_object('status', n.status,"
    "      'progress_percent', n.progress_percent, 'progress_message', n.progress_message)"
    "    ELSE jsonb_build_object('status', n.status, 'attempts', n.attempts, 'run_at',"
    "      n.run_at, 'worker_id', n.worker_id, 'error_code', n.error_code,"
    "      'error_message', n.error_message) END::text, n.updated_at"
    "  FROM nt n JOIN ot o ON o.id = n.id"
    "  WHERE o.status IS DISTINCT FROM n.status"
    "    OR o.progress_percent IS DISTINCT FROM n.progress_percent"
    "    OR o.progress_message IS DISTINCT FROM n.progress_message ORDER BY n.id;"
    "  RETURN NULL; END $$;"
    "CREATE TRIGGER a_jobs_events_upd AFTER UPDATE ON jobs REFERENCING OLD TABLE AS ot"
    "  NEW TABLE AS nt FOR EACH STATEMENT EXECUTE FUNCTION jq_events_upd();"
    "CREATE OR REPLACE FUNCTION jq_deps() RETURNS trigger LANGUAGE plpgsql AS $$"
    "DECLARE n integer; BEGIN"
    "  IF NOT EXISTS (SELECT 1 FROM nt w JOIN job_deps d ON d.parent_id = w.id"
    "      WHERE w.status IN ('completed','failed','cancelled')"
    "      AND w.completed_at = w.updated_at) THEN RETURN NULL; END IF;"
    "  UPDATE jobs j SET status = 'cancelled', error_code = 'parent_failed',"
    "    error_message = 'a job it depends on ' || y.s, completed_at = y.t, updated_at = y.t,"
    "    lease_token = NULL, lease_expires_at = NULL"
    "  FROM (SELECT d.child_id, min(w.status) s, max(w.updated_at) t FROM nt w"
    "    JOIN job_deps d ON d.parent_id = w.id WHERE w.status IN ('failed','cancelled')"
    "    AND w.completed_at = w.updated_at GROUP BY d.child_id) y"
    "  WHERE j.id = y.child_id AND j.status = 'pending'"
    "    AND coalesce(j.on_parent_failure, 'cancel') = 'cancel';"
    "  UPDATE jobs j SET blocked = greatest(0, j.blocked - CASE WHEN j.on_parent_failure = 'run'"
    "    THEN y.n ELSE y.nc END)"
    "  FROM (SELECT d.child_id, count(*) n, count(*) FILTER (WHERE w.status = 'completed') nc"
    "    FROM nt w JOIN job_deps d ON d.parent_id = w.id"
    "    WHERE w.status IN ('completed','failed','cancelled') AND w.completed_at = w.updated_at"
    "    GROUP BY d.child_id) y"
    "  WHERE j.id = y.child_id AND j.status = 'pending' AND j.blocked > 0"
    "    AND (y.nc > 0 OR j.on_parent_failure = 'run');"
    "  GET DIAGNOSTICS n = ROW_COUNT;"
    "  IF n > 0 THEN PERFORM set_config('jobq.wake', '1', true); END IF;"
    "  RETURN NULL; END $$;"
    "CREATE OR REPLACE FUNCTION jq_counts() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    "  IF TG_OP = 'INSERT' THEN"
    "    INSERT INTO counts_delta (dim, key, status, n)"
    "    SELECT v.d, v.k, x.status, count(*) FROM nt x"
    "    CROSS JOIN LATERAL (VALUES ('u', x.user_id), ('q', x.queue), ('t', x.type)) v(d, k)"
    "    GROUP BY 1, 2, 3;"
    "  ELSIF TG_OP = 'DELETE' THEN"
    "    INSERT INTO counts_delta (dim, key, status, n)"
    "    SELECT v.d, v.k, x.status, -count(*) FROM ot x"
    "    CROSS JOIN LATERAL (VALUES ('u', x.user_id), ('q', x.queue), ('t', x.type)) v(d, k)"
    "    GROUP BY 1, 2, 3;"
    "  ELSE"
    "    INSERT INTO counts_delta (dim, key, status, n)"
    "    SELECT v.d, v.k, x.s, sum(x.n) FROM ("
    "      SELECT o.user_id u, o.queue q, o.type t, o.status s, -1 n FROM ot o"
    "      UNION ALL SELECT w.user_id, w.queue, w.type, w.status, 1 FROM nt w) x"
    "    CROSS JOIN LATERAL (VALUES ('u', x.u), ('q', x.q), ('t', x.t)) v(d, k)"
    "    GROUP BY 1, 2, 3 HAVING sum(x.n) <> 0;"
    "    IF EXISTS (SELECT 1 FROM nt w WHERE w.status IN ('completed','failed')"
    "        AND w.completed_at = w.updated_at) THEN"
    "      INSERT INTO stats_minute SELECT w.completed_at / 60000, w.type,"
    "        count(*) FILTER (WHERE w.status = 'completed'),"
    "        count(*) FILTER (WHERE w.status = 'failed'), count(w.started_at),"
    "        coalesce(sum(w.completed_at - w.started_at), 0)"
    "      FROM nt w WHERE w.status IN ('completed','failed') AND w.completed_at = w.updated_at"
    "      GROUP BY 1, 2;"
    "      INSERT INTO stats_hist SELECT w.completed_at / 60000, w.type,"
    "        jq_bucket(w.completed_at - w.started_at), count(*)"
    "      FROM nt w WHERE w.status IN ('completed','failed')"
    "        AND w.completed_at = w.updated_at AND w.started_at IS NOT NULL"
    "      GROUP BY 1, 2, 3;"
    "    END IF;"
    "  END IF; RETURN NULL; END $$;",
};
enum { SCHEMA_VERSION = sizeof migrations / sizeof migrations[0] };

static jq_err exec_simple(PGconn *pc, const char *sql)
{
    PGresult *r = PQexec(pc, sql);
    ExecStatusType st = PQresultStatus(r);
    jq_err err = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? JQ_E_OK : JQ_E_STORAGE;
    if (err)
        log_error("postgres: migration: %s", PQresultErrorMessage(r));
    PQclear(r);
    return err;
}

static int current_version(PGconn *pc)
{
    PGresult *r = PQexec(pc, "SELECT coalesce(max(version), 0) FROM schema_version");
    int v = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return v;
}

static jq_err migrate_locked(PGconn *pc)
{
    jq_err err = exec_simple(pc, "CREATE TABLE IF NOT EXISTS schema_version ("
                                 "version integer PRIMARY KEY, applied_at timestamptz"
                                 " NOT NULL DEFAULT now())");
    int v = err ? -1 : current_version(pc);
    if (v < 0)
        return JQ_E_STORAGE;
    if (v > SCHEMA_VERSION) {
        log_error("database schema version %d is newer than this jobqd (%d)", v, SCHEMA_VERSION);
        return JQ_E_STORAGE;
    }
    for (; v < SCHEMA_VERSION && !err; v++) {
        char tail[96];
        snprintf(tail, sizeof tail, "INSERT INTO schema_version(version) VALUES (%d)", v + 1);
        if ((err = exec_simple(pc, "BEGIN")))
            break;
        if (!(err = exec_simple(pc, migrations[v])) && !(err = exec_simple(pc, tail)))
            err = exec_simple(pc, "COMMIT");
        if (err)
            exec_simple(pc, "ROLLBACK");
        else
            log_info("database migrated to schema version %d", v + 1);
    }
    return err;
}

jq_err pg__migrate(struct pg *s)
{
    PGconn *pc = PQconnectdb(s->conninfo);
    if (PQstatus(pc) != CONNECTION_OK) {
        log_error("postgres: cannot connect: %s", PQerrorMessage(pc));
        PQfinish(pc);
        return JQ_E_STORAGE;
    }
    char lock[96];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%d)", MIGRATE_LOCK);
    jq_err err = exec_simple(pc, "SET client_min_messages = warning");
    if (!err)
        err = exec_simple(pc, lock);
    if (!err)
        err = migrate_locked(pc);
    PQfinish(pc);      /* ends the session: releases the lock */
    return err;
}
