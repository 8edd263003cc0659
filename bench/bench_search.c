/*
 * bench_search.c - search latencies on a large jobq database (issue 6).
 *
 * Creates a jobq SQLite database with jobqd (schema, triggers), stops it, fills it with N jobs
 * over U users and L log lines through the sqlite3 C API (the schema's own triggers keep the
 * counters, the FTS index and the containment terms), starts jobqd on the filled file and
 * measures p50/p99 over HTTP of JSON containment (GET /v1/jobs?params=), full-text log search
 * (GET /v1/logs/search) and jobs by log text (GET /v1/jobs?log_q=), as users and as admin.
 * Prints a table and one JSON line per metric; slow statements that jobqd logged (with their
 * EXPLAIN QUERY PLAN) follow. usage() documents the whole procedure.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "benchlib.h"

#define JOBQ_APP_ID 0x6A6F6271
enum { ID_LEN = 26, NSAMPLE_USERS = 8, CUSTOMERS_PER_USER = 10, TXN_JOBS = 20000 };

struct cfg {
    long jobs, logs, users;       /* fill sizes */
    long samples;                 /* samples per metric (>= 200) */
    double budget_s;              /* wall-clock cap of one metric's sampling */
    double rare_per_million;      /* log lines carrying the rare word, per million */
    const char *jobqd;            /* jobqd executable */
    const char *dir;              /* data directory (default: mkdtemp under /tmp) */
    bool keep;                    /* keep the data directory */
    bool reuse;                   /* --dir holds a filled db: skip create + fill */
    bool with_events;             /* fill the events table too (triggers left in place) */
    uint64_t seed;
};

static struct cfg C = {
    .jobs = 1000000, .logs = 5000000, .users = 10000, .samples = 200, .budget_s = 240,
    .rare_per_million = 20, .seed = 42,
};

/* --- randomness (xorshift64*) --- */

static uint64_t rng_s = 88172645463325252ull;

static inline uint64_t rnd64(void)
{
    rng_s ^= rng_s >> 12;
    rng_s ^= rng_s << 25;
    rng_s ^= rng_s >> 27;
    return rng_s * 2685821657736338717ull;
}

static inline long rnd_n(long n) { return (long)(rnd64() % (uint64_t)n); }
static inline double rnd_u(void) { return (double)(rnd64() >> 11) / 9007199254740992.0; }

/* --- job ids: the same Crockford base32 ULID layout as src/core/id.c --- */

static void make_id(int64_t ms, char out[ID_LEN + 1])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint8_t v[16];
    uint64_t t = (uint64_t)ms & 0xFFFFFFFFFFFFull, r1 = rnd64(), r2 = rnd64();
    for (int i = 0; i < 6; i++) v[i] = (uint8_t)(t >> (40 - 8 * i));
    for (int i = 0; i < 8; i++) v[6 + i] = (uint8_t)(r1 >> (8 * i));
    v[14] = (uint8_t)r2;
    v[15] = (uint8_t)(r2 >> 8);
    for (int i = 0; i < ID_LEN; i++) {
        int bit = i * 5 - 2;
        unsigned acc = 0;
        for (int k = 0; k < 5; k++, bit++)
            acc = acc << 1 | (bit < 0 ? 0u : (v[bit / 8] >> (7 - bit % 8)) & 1u);
        out[i] = b32[acc];
    }
    out[ID_LEN] = '\0';
}

/* --- the SQL functions the insert triggers call (copies of src/store/sqlite/sq_conn.c) --- */

/* jq_term(prefix, fullkey, type, atom): the hashed containment term of one JSON leaf */
static void fn_term(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *pre = (const char *)sqlite3_value_text(argv[0]);
    const char *key = (const char *)sqlite3_value_text(argv[1]);
    const char *type = (const char *)sqlite3_value_text(argv[2]);
    char buf[1024], val[64];
    size_t n = 0;
    for (const char *k = key ? key : ""; *k && n < 600; k++) {
        if (*k == '[') {
            while (*k && *k != ']') k++;
            buf[n++] = '[';
            buf[n++] = ']';
            if (!*k) break;
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
    if (atom) XXH64_update(h, atom, strlen(atom));
    char out[24];
    snprintf(out, sizeof out, "%s%016llx", pre ? pre : "", (unsigned long long)XXH64_digest(h));
    XXH64_freeState(h);
    sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
}

static void fn_bucket(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    int64_t ms = sqlite3_value_int64(argv[0]);
    int b = 0;
    while (ms > 0 && b < 31) { ms >>= 1; b++; }
    sqlite3_result_int(ctx, b);
}

/* --- log text: a vocabulary drawn Zipf-wise (rank 1 = the common word), rare words --- */

static const char *const vocab[] = {
    "request", "job", "completed", "started", "user", "processing", "step", "record", "batch",
    "file", "upload", "download", "cache", "hit", "miss", "queue", "worker", "retry", "attempt",
    "response", "status", "payload", "customer", "invoice", "order", "payment", "report",
    "export", "import", "email", "message", "notification", "sent", "received", "token",
    "session", "account", "profile", "image", "thumbnail", "resize", "video", "transcode",
    "chunk", "bytes", "rows", "table", "query", "index", "database", "connection", "pool",
    "opened", "closed", "timeout", "latency", "slow", "fast", "ok", "failed", "error",
    "warning", "skipped", "ignored", "duplicate", "validated", "invalid", "schema", "field",
    "missing", "value", "default", "config", "loaded", "reloaded", "feature", "flag",
    "enabled", "disabled", "tenant", "region", "zone", "bucket", "object", "storage", "disk",
    "memory", "cpu", "usage", "limit", "quota", "exceeded", "rate", "throttled", "backoff",
    "scheduled", "cron", "tick", "lease", "renewed", "expired", "heartbeat", "progress",
    "percent", "done", "pending", "running", "waiting", "blocked", "unblocked", "parent",
    "child", "workflow", "stage", "pipeline", "build", "deploy", "release", "version",
    "commit", "branch", "merge", "test", "suite", "passed", "coverage", "lint", "format",
    "compile", "link", "artifact", "archive", "compress", "decompress", "encrypt", "decrypt",
    "sign", "verify", "signature", "certificate", "key", "secret", "vault", "rotate",
    "webhook", "callback", "endpoint", "route", "handler", "middleware", "header", "body",
    "json", "xml", "csv", "parquet", "pdf", "html", "render", "template", "locale",
    "currency", "amount", "tax", "discount", "coupon", "cart", "checkout", "shipping",
    "address", "postal", "country", "city", "warehouse", "inventory", "stock", "sku",
    "product", "catalog", "price", "sync", "crm", "erp", "ledger", "journal", "entry",
    "balance", "transfer", "refund", "chargeback", "dispute", "fraud", "score", "model",
    "feature_vector", "embedding", "prediction", "training", "epoch", "loss", "accuracy",
    "gradient", "checkpoint", "snapshot", "restore", "backup", "replica", "primary",
    "failover", "leader", "follower", "election", "vote", "term", "log", "segment", "offset",
    "partition", "topic", "consumer", "producer", "broker", "ack", "nack", "dead", "letter",
    "poison", "redelivered", "ordering", "sequence", "counter", "metric", "gauge",
    "histogram", "trace", "span", "sampled", "exported", "collector", "agent", "host",
    "container", "pod", "node", "cluster", "namespace", "service", "ingress", "dns",
    "resolved", "tls", "handshake", "socket", "reset", "refused", "unreachable", "proxy",
    "upstream", "downstream", "gateway", "load", "balancer", "healthy", "unhealthy", "probe",
    "liveness", "readiness", "startup", "shutdown", "graceful", "signal", "terminated",
    "killed", "oom", "restarted", "crashloop", "pulled", "pushed", "registry", "layer",
    "manifest", "digest", "mirror", "fetch", "clone", "checkout_ref", "patch", "diff",
    "apply", "rollback", "migration", "applied", "pending_migration", "lock", "acquired",
    "released", "contention", "wait", "granted", "denied", "permission", "role", "scope",
    "audit", "trail", "event", "emitted", "subscribed", "unsubscribed", "channel", "topic_ref",
    "digest_email", "weekly", "daily", "hourly", "nightly", "summary", "aggregate",
    "rollup", "compaction", "vacuum", "analyze", "reindex", "stale", "fresh", "warmup",
};
enum { NVOCAB = sizeof vocab / sizeof vocab[0] };
static const char *const rare_words[] = {"deadlock", "segfault", "quarantined", "zeppelin"};
#define COMMON_WORD "request"
#define RARE_WORD "deadlock"

static double zipf_cdf[NVOCAB];

static void zipf_init(void)
{
    double s = 0;
    for (int i = 0; i < NVOCAB; i++) zipf_cdf[i] = (s += 1.0 / (i + 1));
    for (int i = 0; i < NVOCAB; i++) zipf_cdf[i] /= s;
}

static int zipf_word(void)
{
    double u = rnd_u();
    int lo = 0, hi = NVOCAB - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (zipf_cdf[mid] < u) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* One log message into b; *common / *rare set when it holds those words. */
static void log_message(struct bl_buf *b, long customer, bool *common, bool *rare)
{
    int w[6];
    for (int i = 0; i < 6; i++) w[i] = zipf_word();
    *rare = false;
    bl_buf_reset(b);
    if (rnd_u() * 1e6 < 4 * C.rare_per_million) {     /* each rare word: R per million */
        int r = (int)rnd_n(4);
        *rare = r == 0;
        bl_buf_printf(b, "%s detected on %s %s, rolling back (%s)", rare_words[r], vocab[w[0]],
                      vocab[w[1]], vocab[w[2]]);
        *common = strstr(b->p, COMMON_WORD) != NULL;
        return;
    }
    switch (rnd_n(10)) {
    case 0: bl_buf_printf(b, "fetched %ld %s from %s %s in %ld ms", rnd_n(5000), vocab[w[0]],
                          vocab[w[1]], vocab[w[2]], rnd_n(900)); break;
    case 1: bl_buf_printf(b, "calling %s %s api for customer c-%ld", vocab[w[0]], vocab[w[1]],
                          customer); break;
    case 2: bl_buf_printf(b, "retrying %s %s after %s %s (attempt %ld)", vocab[w[0]],
                          vocab[w[1]], vocab[w[2]], vocab[w[3]], 1 + rnd_n(5)); break;
    case 3: bl_buf_printf(b, "%s %s %s %s %s", vocab[w[0]], vocab[w[1]], vocab[w[2]],
                          vocab[w[3]], vocab[w[4]]); break;
    case 4: bl_buf_printf(b, "uploading %s %s to %s bucket, %ld bytes", vocab[w[0]], vocab[w[1]],
                          vocab[w[2]], rnd_n(10000000)); break;
    case 5: bl_buf_printf(b, "processing batch %ld: %s %s %s %s %s", rnd_n(1000), vocab[w[0]],
                          vocab[w[1]], vocab[w[2]], vocab[w[3]], vocab[w[4]]); break;
    case 6: bl_buf_printf(b, "cache %s for %s key %s:%ld", vocab[w[0]], vocab[w[1]], vocab[w[2]],
                          rnd_n(100000)); break;
    case 7: bl_buf_printf(b, "sending %s %s to user %ld via %s", vocab[w[0]], vocab[w[1]],
                          rnd_n(100000), vocab[w[2]]); break;
    case 8: bl_buf_printf(b, "step %ld of %ld: %s %s %s %s %s", 1 + rnd_n(9), 10L, vocab[w[0]],
                          vocab[w[1]], vocab[w[2]], vocab[w[3]], vocab[w[5]]); break;
    default: bl_buf_printf(b, "%s %s %s %s %s %s took %ld ms", vocab[w[0]], vocab[w[1]],
                           vocab[w[2]], vocab[w[3]], vocab[w[4]], vocab[w[5]],
                           rnd_n(2000)); break;
    }
    *common = strstr(b->p, COMMON_WORD) != NULL;   /* no other word holds it */
}

/* --- jobqd process --- */

static char dir_path[PATH_MAX - 64], db_path[PATH_MAX], port_path[PATH_MAX], log_path[PATH_MAX];
static char admin_token[64], base_url[64];
static pid_t server_pid;

static void server_stop(void)
{
    if (server_pid <= 0) return;
    kill(server_pid, SIGTERM);
    for (int i = 0; i < 600; i++) {
        int st;
        if (waitpid(server_pid, &st, WNOHANG) == server_pid) { server_pid = 0; return; }
        bl_sleep_us(100000);
    }
    fprintf(stderr, "bench_search: jobqd did not stop in 60 s, SIGKILL\n");
    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
    server_pid = 0;
}

static size_t discard(char *p, size_t sz, size_t n, void *ud) { (void)p; (void)ud; return sz * n; }

static bool healthy(void)
{
    char url[128];
    snprintf(url, sizeof url, "%s/healthz", base_url);
    CURL *k = curl_easy_init();
    curl_easy_setopt(k, CURLOPT_URL, url);
    curl_easy_setopt(k, CURLOPT_TIMEOUT, 2L);
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, discard);
    long code = 0;
    if (curl_easy_perform(k) == CURLE_OK) curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(k);
    return code == 200;
}

/* Starts jobqd on db_path (port 0, --active-limit 0, no cleanup during the run). */
static void server_start(void)
{
    unlink(port_path);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(1); }
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); close(fd); }
        setenv("JOBQ_ADMIN_TOKEN", admin_token, 1);
        execl(C.jobqd, C.jobqd, "--db", db_path, "--host", "127.0.0.1", "--port", "0",
              "--port-file", port_path, "--active-limit", "0", "--log-level", "warn",
              "--retention-ms", "31536000000", "--cleanup-interval-ms", "86400000",
              "--events-retention-ms", "604800000", (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", C.jobqd, strerror(errno));
        _exit(127);
    }
    server_pid = pid;
    for (int i = 0; i < 1200; i++) {     /* up to 120 s (opening a big file, migrations) */
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            server_pid = 0;
            fprintf(stderr, "bench_search: jobqd exited (status %d); see %s\n", st, log_path);
            exit(1);
        }
        FILE *f = fopen(port_path, "r");
        int port = 0;
        if (f) { if (fscanf(f, "%d", &port) != 1) port = 0; fclose(f); }
        if (port > 0) {
            snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", port);
            if (healthy()) return;
        }
        bl_sleep_us(100000);
    }
    fprintf(stderr, "bench_search: jobqd not healthy after 120 s; see %s\n", log_path);
    server_stop();
    exit(1);
}

/* --- fill --- */

static void sql_ok(sqlite3 *db, int rc, const char *what)
{
    if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return;
    fprintf(stderr, "bench_search: sqlite: %s: %s (%d)\n", what, sqlite3_errmsg(db), rc);
    exit(1);
}

static void exec_sql(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "bench_search: sqlite: %s: %s\n", sql, msg ? msg : "?");
        exit(1);
    }
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    sql_ok(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

/* What the fill leaves for the measurement: users owning rare-word lines, counts. */
static long rare_users[NSAMPLE_USERS], nrare_users;
static long n_common, n_rare, n_logs, n_terms;

static const char *const regions[] = {"eu", "us", "ap"};
static const char *const queues[] = {"default", "emails", "reports", "media"};
static const char *const types[] = {"report.build", "email.send", "image.resize", "crm.sync",
                                    "invoice.render", "export.csv"};
static const char *const tags[] = {"a", "b", "c", "urgent", "batch", "vip", "trial", "beta",
                                   "internal", "retry", "nightly", "api"};

static const char *region_of(void)
{
    double u = rnd_u();                  /* eu 40 %, us 35 %, ap 25 % */
    return regions[u < 0.40 ? 0 : u < 0.75 ? 1 : 2];
}

static void fill(double *fill_s)
{
    int64_t t0 = bl_now_us();
    sqlite3 *db;
    sql_ok(NULL, sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK
                     ? SQLITE_OK : SQLITE_CANTOPEN, "open");
    if (query_int(db, "PRAGMA application_id") != JOBQ_APP_ID ||
        query_int(db, "SELECT count(*) FROM jobs") != 0) {
        fprintf(stderr, "bench_search: %s is not an empty jobq database\n", db_path);
        exit(1);
    }
    sqlite3_create_function(db, "jq_term", 4, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fn_term,
                            NULL, NULL);
    sqlite3_create_function(db, "jq_bucket", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                            fn_bucket, NULL, NULL);
    /* bulk-load settings of this connection only; the file goes back to WAL at the end */
    exec_sql(db, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-2000000;"
                 "PRAGMA temp_store=MEMORY; PRAGMA locking_mode=EXCLUSIVE");
    /* Events older than --events-retention-ms (1 h) are pruned by jobqd, so a database of days
     * of jobs holds none of theirs: leave the two insert-event triggers out during the fill
     * and put their own text back afterwards (unless --with-events). */
    char *ev_sql[2] = {NULL, NULL};
    static const char *const ev_names[2] = {"jobs_ev_ins", "logs_ev"};
    if (!C.with_events) {
        for (int i = 0; i < 2; i++) {
            sqlite3_stmt *st;
            sql_ok(db, sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_schema WHERE type='trigger'"
                                          " AND name=?1", -1, &st, NULL), "trigger sql");
            sqlite3_bind_text(st, 1, ev_names[i], -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW)
                ev_sql[i] = strdup((const char *)sqlite3_column_text(st, 0));
            sqlite3_finalize(st);
            if (!ev_sql[i]) { fprintf(stderr, "bench_search: no trigger %s\n", ev_names[i]); exit(1); }
            char drop[96];
            snprintf(drop, sizeof drop, "DROP TRIGGER %s", ev_names[i]);
            exec_sql(db, drop);
        }
    }
    sqlite3_stmt *ij, *il;
    sql_ok(db, sqlite3_prepare_v2(db,
        "INSERT INTO jobs(id,user_id,queue,type,params,params_hash,status,priority,run_at,"
        "created_at,updated_at,started_at,completed_at,attempts,max_attempts,worker_id)"
        " VALUES(?1,?2,?3,?4,?5,?6,?7,0,?8,?8,?9,?10,?11,?12,3,?13)", -1, &ij, NULL), "insert job");
    sql_ok(db, sqlite3_prepare_v2(db,
        "INSERT INTO job_logs(job_id,user_id,created_at,level,message,metadata)"
        " VALUES(?1,?2,?3,?4,?5,?6)", -1, &il, NULL), "insert log");

    int64_t now = (int64_t)time(NULL) * 1000;
    int64_t start = now - 6LL * 86400000;          /* created over the last 6 days */
    double span = 6.0 * 86400000 - 3600000;        /* the newest an hour ago */
    double logs_per_job = (double)C.logs / (double)C.jobs;
    long logs_target = C.logs;
    struct bl_buf params = {0}, msg = {0};
    char id[ID_LEN + 1], user[32], hash[33], worker[32];
    exec_sql(db, "BEGIN");
    for (long i = 0; i < C.jobs; i++) {
        if (i > 0 && i % TXN_JOBS == 0) {
            exec_sql(db, "COMMIT; BEGIN");
            if (i % (TXN_JOBS * 10) == 0) {
                double el = (double)(bl_now_us() - t0) / 1e6;
                fprintf(stderr, "  fill: %ld jobs, %ld logs, %.0f s (%.0f jobs/s)\n", i, n_logs,
                        el, (double)i / el);
            }
        }
        long u = rnd_n(C.users);
        int64_t created = start + (int64_t)(span * (double)i / (double)C.jobs);
        make_id(created, id);
        snprintf(user, sizeof user, "user-%05ld", u);
        long customer = u * CUSTOMERS_PER_USER + rnd_n(CUSTOMERS_PER_USER);
        int t1 = (int)rnd_n(12), t2 = (int)((t1 + 1 + rnd_n(11)) % 12);
        bl_buf_reset(&params);
        bl_buf_printf(&params, "{\"customer\":\"c-%ld\",\"region\":\"%s\",\"tier\":%ld,"
                      "\"tags\":[\"%s\",\"%s\"],\"order\":%ld,\"ref\":\"%08lx\"}", customer,
                      region_of(), 1 + rnd_n(3), tags[t1], tags[t2], 100000 + rnd_n(900000),
                      (unsigned long)(rnd64() & 0xffffffffu));
        uint64_t h1 = rnd64(), h2 = rnd64();
        snprintf(hash, sizeof hash, "%016llx%016llx", (unsigned long long)h1,
                 (unsigned long long)h2);
        bool done = rnd_n(10) != 0;                /* 90 % completed, 10 % pending */
        int64_t started = created + 50 + rnd_n(5000), completed = started + 20 + rnd_n(30000);
        snprintf(worker, sizeof worker, "worker-%ld", rnd_n(16));
        sqlite3_bind_text(ij, 1, id, ID_LEN, SQLITE_STATIC);
        sqlite3_bind_text(ij, 2, user, -1, SQLITE_STATIC);
        sqlite3_bind_text(ij, 3, queues[rnd_n(4)], -1, SQLITE_STATIC);
        sqlite3_bind_text(ij, 4, types[rnd_n(6)], -1, SQLITE_STATIC);
        sqlite3_bind_text(ij, 5, params.p, (int)params.n, SQLITE_STATIC);
        sqlite3_bind_text(ij, 6, hash, 32, SQLITE_STATIC);
        sqlite3_bind_text(ij, 7, done ? "completed" : "pending", -1, SQLITE_STATIC);
        sqlite3_bind_int64(ij, 8, created);
        sqlite3_bind_int64(ij, 9, done ? completed : created);
        if (done) {
            sqlite3_bind_int64(ij, 10, started);
            sqlite3_bind_int64(ij, 11, completed);
            sqlite3_bind_int(ij, 12, 1);
            sqlite3_bind_text(ij, 13, worker, -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_null(ij, 10);
            sqlite3_bind_null(ij, 11);
            sqlite3_bind_int(ij, 12, 0);
            sqlite3_bind_null(ij, 13);
        }
        sql_ok(db, sqlite3_step(ij), "insert job");
        sqlite3_reset(ij);
        /* 0 .. 2x the mean lines per job (the last job takes what is left) */
        long k = i == C.jobs - 1 ? logs_target - n_logs
                                 : (long)floor(rnd_u() * (2 * logs_per_job + 1));
        if (k > logs_target - n_logs) k = logs_target - n_logs;
        for (long j = 0; j < k; j++) {
            bool common, rare;
            log_message(&msg, customer, &common, &rare);
            long lv = rnd_n(100);
            int level = lv < 5 ? 0 : lv < 92 ? 1 : lv < 98 ? 2 : 3;
            sqlite3_bind_text(il, 1, id, ID_LEN, SQLITE_STATIC);
            sqlite3_bind_text(il, 2, user, -1, SQLITE_STATIC);
            sqlite3_bind_int64(il, 3, (done ? started : created) + j * 37);
            sqlite3_bind_int(il, 4, level);
            sqlite3_bind_text(il, 5, msg.p, (int)msg.n, SQLITE_STATIC);
            if (rnd_n(5) == 0) {
                char meta[64];
                snprintf(meta, sizeof meta, "{\"attempt\":1,\"line\":%ld}", j);
                sqlite3_bind_text(il, 6, meta, -1, SQLITE_TRANSIENT);
            } else {
                sqlite3_bind_null(il, 6);
            }
            sql_ok(db, sqlite3_step(il), "insert log");
            sqlite3_reset(il);
            n_logs++;
            n_common += common;
            if (rare) {
                n_rare++;
                bool seen = false;
                for (long r = 0; r < nrare_users; r++) seen |= rare_users[r] == u;
                if (!seen && nrare_users < NSAMPLE_USERS) rare_users[nrare_users++] = u;
            }
        }
    }
    exec_sql(db, "COMMIT");
    sqlite3_finalize(ij);
    sqlite3_finalize(il);
    for (int i = 0; i < 2; i++)
        if (ev_sql[i]) { exec_sql(db, ev_sql[i]); free(ev_sql[i]); }
    n_terms = query_int(db, "SELECT count(*) FROM job_terms");
    exec_sql(db, "PRAGMA locking_mode=NORMAL");
    exec_sql(db, "PRAGMA journal_mode=WAL");
    sqlite3_close(db);
    free(params.p);
    free(msg.p);
    *fill_s = (double)(bl_now_us() - t0) / 1e6;
}

/* --reuse: the facts the fill would have left, read back from the file */
static void facts_from_db(void)
{
    sqlite3 *db;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_search: cannot open %s\n", db_path);
        exit(1);
    }
    C.jobs = query_int(db, "SELECT count(*) FROM jobs");
    n_logs = C.logs = query_int(db, "SELECT count(*) FROM job_logs");
    C.users = query_int(db, "SELECT count(*) FROM counts WHERE dim='u' AND status='completed'");
    n_terms = query_int(db, "SELECT count(*) FROM job_terms");
    n_common = query_int(db, "SELECT count(*) FROM job_logs_fts WHERE job_logs_fts MATCH '"
                         COMMON_WORD "'");
    n_rare = query_int(db, "SELECT count(*) FROM job_logs_fts WHERE job_logs_fts MATCH '"
                       RARE_WORD "'");
    sqlite3_stmt *st;
    sql_ok(db, sqlite3_prepare_v2(db, "SELECT DISTINCT l.user_id FROM job_logs_fts f JOIN job_logs"
                                  " l ON l.id=f.rowid WHERE f.job_logs_fts MATCH '" RARE_WORD "'"
                                  " LIMIT 8", -1, &st, NULL), "rare users");
    while (sqlite3_step(st) == SQLITE_ROW && nrare_users < NSAMPLE_USERS)
        rare_users[nrare_users++] = strtol((const char *)sqlite3_column_text(st, 0) + 5, NULL, 10);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* --- measurement --- */

struct metric {
    const char *name;            /* JSON name */
    const char *what;            /* table label */
    bool admin;                  /* as admin (else rotating over the sample users) */
    int kind;                    /* K_* */
    double *v;                   /* samples, ms */
    long n, errors;
    double hits_sum;             /* result rows summed */
    double total_sum;            /* total_count summed (job listings) */
    double load0, load1;         /* 1-minute load average before / after */
    bool budget_hit;
    struct bl_cpu cpu0, cpu1;
};

enum { K_SEL, K_UNSEL, K_FTS_COMMON, K_FTS_RARE, K_LOGQ_RARE };

static struct metric metrics[] = {
    {.name = "contains_selective_user",
     .what = "params={\"customer\":\"c-<own>\"} limit 50, user", .admin = false, .kind = K_SEL},
    {.name = "contains_unselective_user",
     .what = "params={\"region\":\"eu\"} limit 50, user", .admin = false, .kind = K_UNSEL},
    {.name = "fts_common_user",
     .what = "logs/search q=" COMMON_WORD " (common), user", .admin = false, .kind = K_FTS_COMMON},
    {.name = "fts_rare_user",
     .what = "logs/search q=" RARE_WORD " (rare), user", .admin = false, .kind = K_FTS_RARE},
    {.name = "logq_rare_user",
     .what = "jobs?log_q=" RARE_WORD " limit 50, user", .admin = false, .kind = K_LOGQ_RARE},
    {.name = "contains_selective_admin",
     .what = "params={\"customer\":\"c-<k>\"} limit 50, admin", .admin = true, .kind = K_SEL},
    {.name = "fts_rare_admin",
     .what = "logs/search q=" RARE_WORD " (rare), admin", .admin = true, .kind = K_FTS_RARE},
    {.name = "logq_rare_admin",
     .what = "jobs?log_q=" RARE_WORD " limit 50, admin", .admin = true, .kind = K_LOGQ_RARE},
    {.name = "fts_common_admin",
     .what = "logs/search q=" COMMON_WORD " (common), admin", .admin = true, .kind = K_FTS_COMMON},
    {.name = "contains_unselective_admin",
     .what = "params={\"region\":\"eu\"} limit 50, admin", .admin = true, .kind = K_UNSEL},
};
enum { NMETRICS = sizeof metrics / sizeof metrics[0] };

static long sample_users[NSAMPLE_USERS];
static struct bl_conn user_conn[NSAMPLE_USERS], admin_conn;

static double loadavg1(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) { if (fscanf(f, "%lf", &l) != 1) l = -1; fclose(f); }
    return l;
}

/* The request path of sample i of metric m (u = the sample user's number). */
static void metric_path(const struct metric *m, long i, long u, char *out, size_t cap)
{
    char q[256];
    switch (m->kind) {
    case K_SEL: {
        long cust = m->admin ? rnd_n(C.users * CUSTOMERS_PER_USER)
                             : u * CUSTOMERS_PER_USER + i % CUSTOMERS_PER_USER;
        snprintf(q, sizeof q, "{\"customer\":\"c-%ld\"}", cust);
        break;
    }
    case K_UNSEL: snprintf(q, sizeof q, "{\"region\":\"eu\"}"); break;
    case K_FTS_COMMON: snprintf(q, sizeof q, COMMON_WORD); break;
    default: snprintf(q, sizeof q, RARE_WORD); break;
    }
    char *e = curl_easy_escape(NULL, q, 0);
    if (m->kind == K_SEL || m->kind == K_UNSEL)
        snprintf(out, cap, "/v1/jobs?params=%s&limit=50", e);
    else if (m->kind == K_LOGQ_RARE)
        snprintf(out, cap, "/v1/jobs?log_q=%s&limit=50", e);
    else
        snprintf(out, cap, "/v1/logs/search?q=%s", e);
    curl_free(e);
}

static void measure(struct metric *m)
{
    char path[512];
    m->v = calloc((size_t)C.samples, sizeof *m->v);
    /* warm-up: a few unmeasured requests */
    for (long i = 0; i < 3; i++) {
        struct bl_conn *c = m->admin ? &admin_conn : &user_conn[i % NSAMPLE_USERS];
        metric_path(m, i, sample_users[i % NSAMPLE_USERS], path, sizeof path);
        bl_request(c, path, NULL, 0);
    }
    m->load0 = loadavg1();
    bl_cpu_take(&m->cpu0, server_pid);
    int64_t t_start = bl_now_us();
    for (long i = 0; i < C.samples; i++) {
        if (i > 0 && (double)(bl_now_us() - t_start) / 1e6 > C.budget_s) {
            m->budget_hit = true;
            break;
        }
        long ui = i % NSAMPLE_USERS;
        struct bl_conn *c = m->admin ? &admin_conn : &user_conn[ui];
        metric_path(m, i, sample_users[ui], path, sizeof path);
        int64_t t0 = bl_now_us();
        long st = bl_request(c, path, NULL, 0);
        double ms = (double)(bl_now_us() - t0) / 1000.0;
        if (st != 200) {
            if (m->errors++ < 3)
                fprintf(stderr, "bench_search: %s: GET %s -> %ld: %.300s\n", m->name, path, st,
                        c->body.p ? c->body.p : "");
            continue;
        }
        m->v[m->n++] = ms;
        json_t *r = bl_reply_json(c);
        json_t *arr = json_object_get(r, m->kind == K_FTS_COMMON || m->kind == K_FTS_RARE
                                             ? "logs" : "jobs");
        m->hits_sum += (double)json_array_size(arr);
        m->total_sum += (double)json_integer_value(json_object_get(r, "total_count"));
        json_decref(r);
    }
    bl_cpu_take(&m->cpu1, server_pid);
    m->load1 = loadavg1();
    qsort(m->v, (size_t)m->n, sizeof *m->v, bl_cmp_d);
    fprintf(stderr, "  %-28s n=%ld p50 %.2f ms p99 %.2f ms%s\n", m->name, m->n,
            bl_quantile(m->v, m->n, 0.5), bl_quantile(m->v, m->n, 0.99),
            m->budget_hit ? " (time budget hit)" : "");
}

static void make_tokens(void)
{
    bl_conn_open(&admin_conn, base_url, admin_token);
    for (int i = 0; i < NSAMPLE_USERS; i++) {
        char body[128], uid[32];
        snprintf(uid, sizeof uid, "user-%05ld", sample_users[i]);
        snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"role\":\"user\",\"name\":\"bench-search\"}",
                 uid);
        if (bl_request(&admin_conn, "/v1/tokens", body, strlen(body)) != 201) {
            fprintf(stderr, "bench_search: POST /v1/tokens -> %ld: %.300s\n", admin_conn.status,
                    admin_conn.body.p ? admin_conn.body.p : "");
            exit(1);
        }
        json_t *r = bl_reply_json(&admin_conn);
        const char *tok = json_string_value(json_object_get(r, "token"));
        if (!tok) { fprintf(stderr, "bench_search: no token in reply\n"); exit(1); }
        bl_conn_open(&user_conn[i], base_url, tok);
        json_decref(r);
    }
}

/* --- report --- */

static long long file_size(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 ? (long long)sb.st_size : 0;
}

static double mean(const double *v, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++) s += v[i];
    return n ? s / (double)n : 0;
}

static void report(double fill_s, long long db_bytes)
{
    printf("\n## bench_search — %ld jobs, %ld log lines, %ld users; %d sample users\n\n",
           C.jobs, n_logs, C.users, NSAMPLE_USERS);
    printf("| metric | samples | rows/reply | p50 ms | p99 ms | max ms | load 1m |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < NMETRICS; i++) {
        const struct metric *m = &metrics[i];
        printf("| %s | %ld%s | %.1f | %.2f | %.2f | %.2f | %.2f |\n", m->what, m->n,
               m->budget_hit ? " (budget)" : "", m->n ? m->hits_sum / (double)m->n : 0,
               bl_quantile(m->v, m->n, 0.5), bl_quantile(m->v, m->n, 0.99),
               m->n ? m->v[m->n - 1] : 0, m->load1);
    }
    printf("\nfill %.1f s; db %.2f GiB (%lld bytes); %ld containment terms; '%s' in %ld lines,"
           " '%s' in %ld lines; load average now %.2f; %ld cores\n\n",
           fill_s, (double)db_bytes / (1 << 30), db_bytes, n_terms, COMMON_WORD, n_common,
           RARE_WORD, n_rare, loadavg1(), sysconf(_SC_NPROCESSORS_ONLN));
    for (int i = 0; i < NMETRICS; i++) {
        const struct metric *m = &metrics[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f,"
                              " s:f, s:f, s:b, s:f, s:I, s:f, s:f}",
                              "bench", "search", "metric", m->name, "as",
                              m->admin ? "admin" : "user", "jobs", (json_int_t)C.jobs, "logs",
                              (json_int_t)n_logs, "users", (json_int_t)C.users, "samples",
                              (json_int_t)m->n, "errors", (json_int_t)m->errors, "p50_ms",
                              bl_quantile(m->v, m->n, 0.5), "p99_ms",
                              bl_quantile(m->v, m->n, 0.99), "max_ms",
                              m->n ? m->v[m->n - 1] : 0.0, "mean_ms",
                              mean(m->v, m->n),
                              "rows_per_reply", m->n ? m->hits_sum / (double)m->n : 0.0,
                              "total_count_avg", m->n ? m->total_sum / (double)m->n : 0.0,
                              "budget_hit", m->budget_hit, "fill_s", fill_s, "db_bytes",
                              (json_int_t)db_bytes, "loadavg_1m_before", m->load0,
                              "loadavg_1m_after", m->load1);
        bl_cpu_report(o, &m->cpu0, &m->cpu1);
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(o);
    }
}

/* jobqd's slow-statement lines (--slow-ms, 100 ms): each distinct statement once, with its
 * plan, how often and the slowest time. */
static void report_slow(void)
{
    FILE *f = fopen(log_path, "r");
    if (!f) return;
    enum { MAXS = 32 };
    struct { char *text; long n; double max; } s[MAXS];
    int ns = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        char *p = strstr(line, "slow statement (");
        if (!p) continue;
        double ms = strtod(p + 16, NULL);
        char *sql = strstr(p, "): ");
        if (!sql) continue;
        sql += 3;
        sql[strcspn(sql, "\n")] = '\0';
        int i = 0;
        while (i < ns && strcmp(s[i].text, sql) != 0) i++;
        if (i == ns) {
            if (ns == MAXS) continue;
            s[ns].text = strdup(sql);
            s[ns].n = 0;
            s[ns].max = 0;
            ns++;
        }
        s[i].n++;
        if (ms > s[i].max) s[i].max = ms;
    }
    free(line);
    fclose(f);
    printf("\n## slow statements jobqd logged (> 100 ms, with EXPLAIN QUERY PLAN): %d distinct\n",
           ns);
    for (int i = 0; i < ns; i++) {
        printf("\n- %ld x, slowest %.1f ms: %s\n", s[i].n, s[i].max, s[i].text);
        free(s[i].text);
    }
}

/* --- main --- */

static void usage(FILE *f)
{
    fprintf(f,
"usage: bench_search [--jobs N] [--logs L] [--users U] [--quick] [options]\n"
"\n"
"Search latencies of jobqd on a large database (docs/API.md, \"Real time and search\").\n"
"\n"
"Procedure (all done by this program):\n"
"  1. Creates a data directory (mkdtemp /tmp/jobq-search.XXXXXX, or --dir) and starts jobqd\n"
"     once on a fresh jobq.db there (JOBQ_ADMIN_TOKEN = a random admin token), so that jobqd\n"
"     creates the schema, its triggers and the admin token; then stops it (SIGTERM).\n"
"  2. Fills the file directly with the sqlite3 C API, in transactions of %d jobs\n"
"     (journal_mode=OFF, synchronous=OFF, exclusive lock during the fill; back to WAL after):\n"
"     - N jobs over U users (user-00000 ..), created over the last 6 days in id order\n"
"       (ULID-style ids as jobqd makes them), 90%% completed / 10%% pending, 4 queues,\n"
"       6 types, a random 32-hex params_hash, params of ~110 bytes:\n"
"       {\"customer\":\"c-<k>\",\"region\":\"eu|us|ap\",\"tier\":1-3,\"tags\":[t1,t2],\n"
"        \"order\":<n>,\"ref\":\"<hex>\"}; each user has %d customers (c-<user*%d+0..%d>),\n"
"       so a customer matches ~N/(U*%d) jobs; region eu/us/ap = 40/35/25 %%.\n"
"     - L log lines, 0..2x L/N per job (the user of the job), levels debug/info/warning/error\n"
"       5/87/6/2 %%, 20%% with metadata, messages from 10 templates filled with words drawn\n"
"       Zipf-wise from %d words ('" COMMON_WORD "' is rank 1: the common word, in ~60%% of\n"
"       lines); with probability 4 x --rare-per-million a line says '<rare> detected on ...'\n"
"       with one of 4 rare words ('" RARE_WORD "', the rare query word: ~R lines per million).\n"
"     jobqd's own triggers do the rest: counts, containment terms (job_terms, via jq_term,\n"
"     registered here as a copy of jobqd's), the FTS5 index. The two insert-event triggers\n"
"     (jobs_ev_ins, logs_ev) are dropped during the fill and re-created from their own text\n"
"     afterwards, because jobqd prunes events after --events-retention-ms (1 h) and a\n"
"     database of days of jobs holds none of them (--with-events keeps them).\n"
"  3. Starts jobqd on the filled file (port 0, --active-limit 0, retention 1 year and a daily\n"
"     cleanup so nothing is deleted while measuring, log level warn, --slow-ms default 100),\n"
"     creates user tokens for %d sample users (users owning a line with the rare word when\n"
"     there are enough), one keep-alive connection each plus one admin connection.\n"
"  4. Measures each metric sequentially, 3 unmeasured requests first, then --samples GETs\n"
"     rotating over the sample users (a metric stops early after --budget-s seconds; the\n"
"     table marks it):\n"
"       params={\"customer\":\"c-<own>\"}&limit=50 (selective), params={\"region\":\"eu\"}&limit=50\n"
"       (unselective), /v1/logs/search?q=" COMMON_WORD " and q=" RARE_WORD ", /v1/jobs?log_q=" RARE_WORD
"&limit=50,\n"
"       as users and as admin.\n"
"  5. Stops jobqd, prints a markdown table (p50/p99/max, rows per reply, 1-minute load\n"
"     average), one JSON line per metric, and the distinct slow statements jobqd logged with\n"
"     their EXPLAIN QUERY PLAN; deletes the data directory unless --keep.\n"
"\n"
"Options:\n"
"  --jobs N            jobs (default 1000000)\n"
"  --logs L            log lines (default 5000000)\n"
"  --users U           users (default 10000)\n"
"  --quick             100000 jobs, 500000 log lines\n"
"  --samples S         samples per metric (default 200)\n"
"  --budget-s S        wall-clock cap per metric (default 240)\n"
"  --rare-per-million R  log lines with the rare word per million (default 20)\n"
"  --jobqd PATH        jobqd executable (default: jobqd beside this program)\n"
"  --dir DIR           data directory (default mkdtemp /tmp/jobq-search.XXXXXX)\n"
"  --keep              keep the data directory (jobq.db, jobqd.log)\n"
"  --reuse             DIR already holds a filled jobq.db (with --keep from an earlier run):\n"
"                      skip steps 1-2 (needs --admin-token of that run)\n"
"  --admin-token T     admin token (default random; printed with --keep)\n"
"  --with-events       keep the event triggers during the fill\n"
"  --seed N            random seed (default 42)\n"
"  --help\n"
"\n"
"Build: cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release &&\n"
"       cmake --build build-bench --target jobqd bench_search; then build-bench/bench_search.\n"
"scripts/bench.sh runs it when SEARCH=1 (with --quick when QUICK=1).\n",
            TXN_JOBS, CUSTOMERS_PER_USER, CUSTOMERS_PER_USER, CUSTOMERS_PER_USER - 1,
            CUSTOMERS_PER_USER, NVOCAB, NSAMPLE_USERS);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void on_signal(int sig)
{
    if (server_pid > 0) kill(server_pid, SIGTERM);
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv)
{
    static const struct option o[] = {
        {"jobs", required_argument, 0, 'j'}, {"logs", required_argument, 0, 'l'},
        {"users", required_argument, 0, 'u'}, {"quick", no_argument, 0, 'q'},
        {"samples", required_argument, 0, 's'}, {"budget-s", required_argument, 0, 'b'},
        {"rare-per-million", required_argument, 0, 'r'}, {"jobqd", required_argument, 0, 'x'},
        {"dir", required_argument, 0, 'd'}, {"keep", no_argument, 0, 'k'},
        {"reuse", no_argument, 0, 'R'}, {"admin-token", required_argument, 0, 'a'},
        {"with-events", no_argument, 0, 'e'}, {"seed", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    const char *admin = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "", o, NULL)) != -1) {
        switch (ch) {
        case 'j': C.jobs = atol(optarg); break;
        case 'l': C.logs = atol(optarg); break;
        case 'u': C.users = atol(optarg); break;
        case 'q': C.jobs = 100000; C.logs = 500000; break;
        case 's': C.samples = atol(optarg); break;
        case 'b': C.budget_s = atof(optarg); break;
        case 'r': C.rare_per_million = atof(optarg); break;
        case 'x': C.jobqd = optarg; break;
        case 'd': C.dir = optarg; break;
        case 'k': C.keep = true; break;
        case 'R': C.reuse = true; break;
        case 'a': admin = optarg; break;
        case 'e': C.with_events = true; break;
        case 'S': C.seed = strtoull(optarg, NULL, 10); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (C.jobs < 1 || C.logs < 0 || C.users < NSAMPLE_USERS || C.samples < 1 ||
        (C.reuse && (!C.dir || !admin))) {
        usage(stderr);
        return 2;
    }
    rng_s ^= C.seed * 0x9E3779B97F4A7C15ull;
    if (!rng_s) rng_s = 1;
    zipf_init();
    char self[PATH_MAX], jobqd_buf[PATH_MAX];
    if (!C.jobqd) {
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        self[n > 0 ? n : 0] = '\0';
        snprintf(jobqd_buf, sizeof jobqd_buf, "%s/jobqd", dirname(self));
        C.jobqd = jobqd_buf;
    }
    if (access(C.jobqd, X_OK) != 0) {
        fprintf(stderr, "bench_search: no jobqd at %s (--jobqd)\n", C.jobqd);
        return 2;
    }
    if (C.dir) {
        snprintf(dir_path, sizeof dir_path, "%s", C.dir);
        mkdir(dir_path, 0755);
    } else {
        snprintf(dir_path, sizeof dir_path, "/tmp/jobq-search.XXXXXX");
        if (!mkdtemp(dir_path)) { perror("mkdtemp"); return 1; }
    }
    snprintf(db_path, sizeof db_path, "%s/jobq.db", dir_path);
    snprintf(port_path, sizeof port_path, "%s/port", dir_path);
    snprintf(log_path, sizeof log_path, "%s/jobqd.log", dir_path);
    if (admin) {
        snprintf(admin_token, sizeof admin_token, "%s", admin);
    } else {
        for (int i = 0; i < 16; i++)
            snprintf(admin_token + 2 * i, 3, "%02x", (unsigned)(rnd64() >> 56));
        memcpy(admin_token, "bsadm", 5);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    double fill_s = 0;
    fprintf(stderr, "bench_search: data dir %s, jobqd %s\n", dir_path, C.jobqd);
    if (!C.reuse) {
        if (file_size(db_path) > 0) {
            fprintf(stderr, "bench_search: %s exists (use --reuse)\n", db_path);
            return 1;
        }
        fprintf(stderr, "bench_search: creating the schema with jobqd\n");
        server_start();
        server_stop();
        fprintf(stderr, "bench_search: filling %ld jobs, %ld log lines, %ld users\n", C.jobs,
                C.logs, C.users);
        fill(&fill_s);
        fprintf(stderr, "bench_search: filled in %.1f s; %ld logs, '%s' in %ld, '%s' in %ld\n",
                fill_s, n_logs, COMMON_WORD, n_common, RARE_WORD, n_rare);
    } else {
        facts_from_db();
    }
    long long db_bytes = file_size(db_path);
    /* sample users: owners of rare-word lines first, then random users */
    for (int i = 0; i < NSAMPLE_USERS; i++)
        sample_users[i] = i < nrare_users ? rare_users[i] : rnd_n(C.users);
    fprintf(stderr, "bench_search: starting jobqd on the filled file (%.2f GiB)\n",
            (double)db_bytes / (1 << 30));
    int64_t ts = bl_now_us();
    server_start();
    fprintf(stderr, "bench_search: jobqd up in %.1f s at %s\n", (double)(bl_now_us() - ts) / 1e6,
            base_url);
    make_tokens();
    for (int i = 0; i < NMETRICS; i++) measure(&metrics[i]);
    server_stop();
    db_bytes = file_size(db_path);
    report(fill_s, db_bytes);
    report_slow();
    for (int i = 0; i < NSAMPLE_USERS; i++) bl_conn_close(&user_conn[i]);
    bl_conn_close(&admin_conn);
    if (C.keep)
        fprintf(stderr, "bench_search: kept %s (admin token %s)\n", dir_path, admin_token);
    else
        nftw(dir_path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    curl_global_cleanup();
    return 0;
}
