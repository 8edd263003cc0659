/*
 * sq_writer.c - group commit and the read pool.
 *
 * One writer thread owns the write connection. Request threads queue a
 * struct wop and sleep on its semaphore; the writer takes everything queued,
 * runs it in one transaction (each op under its own savepoint, so one op's
 * error undoes only that op), commits once - one WAL fsync for the whole
 * group - and only then wakes the requesters. A reply is therefore never sent
 * before the fsync that makes its change durable.
 *
 * With --sync full that fsync is pipelined: the writer commits with
 * synchronous=NORMAL (the WAL frames reach the OS, nothing waits on the disk)
 * and hands the group to the syncer thread, which syncs the WAL through
 * SQLite's own file handle (SQLITE_FCNTL_JOURNAL_POINTER, so test VFSs see the
 * sync) and then wakes the group's requesters. Meanwhile the writer already
 * runs the next group; one sync covers every group committed before it began.
 * The WAL is written sequentially, so a sync that covers group N+1 covers N.
 * Readers may see a committed group a moment before its sync returns; nobody
 * has been told it happened, so a power cut in between loses nothing that was
 * acknowledged. A failed sync is fatal for writes (fail-stop, as PostgreSQL
 * PANICs): after EIO the kernel may have dropped the dirty pages, so no later
 * commit could be trusted; every write then answers 503 storage_failed until a
 * restart (see "fail-stop" below; tests/reliability/test_fsynceio.c).
 */
#include "store/sqlite/sq_int.h"

#include <errno.h>
#include <stdlib.h>

#include "common/clock.h"
#include "common/log.h"

/* Takes the whole queue, or NULL once stopped and drained. */
static struct wop *take_group(struct sq *s)
{
    pthread_mutex_lock(&s->mu);
    while (!s->head && !s->stop)
        pthread_cond_wait(&s->work, &s->mu);
    struct wop *g = s->head;
    s->head = s->tail = NULL;
    pthread_mutex_unlock(&s->mu);
    return g;
}

/* The op, wrapped in its Idempotency-Key check and record when it has one. */
static jq_err run_op(struct conn *cn, struct wop *w)
{
    struct idem *id = w->c ? w->c->idem : NULL;
    jq_err err = id ? sq__idem_check(cn, w->c) : JQ_E_OK;
    if (err || (id && id->replayed))
        return err;
    err = w->fn(cn, w->c, w->arg);
    return !err && id ? sq__idem_store(cn, w->c) : err;
}

/* --- fail-stop ---
 * An I/O error on the write path (a failed WAL sync above all, also a failed write or
 * read of the write connection) stops writes for good, until jobqd is restarted: after
 * EIO from fsync the kernel may have dropped the dirty pages and report success next
 * time, so nothing committed afterwards - nor a checkpoint copying the WAL into the
 * database - could be trusted. A restart recovers from what really is in the WAL on
 * disk. Requests of the failed group get 503 storage_failed: their outcome is unknown
 * (the group's frames may be in the WAL file, so recovery may find it committed), and
 * clients retry with their Idempotency-Key. Reads go on. */

/* Stops writes (once; the first cause is logged). xrc: SQLite's extended code. */
static void fail_stop(struct sq *s, int xrc, const char *where)
{
    if (atomic_exchange(&s->failed, true))
        return;
    atomic_store(&s->failed_ms, clock_mono_ms());
    log_error("storage failed: %s: %s (%d); refusing writes until jobqd is restarted",
              where, sqlite3_errstr(xrc), xrc);
}

/* fail_stop when xrc is an I/O error (SQLITE_IOERR_NOMEM is memory, not the disk) or the
 * write path read a page it cannot trust (SQLITE_CORRUPT: writing on would spread it). */
static bool fail_stop_on(struct sq *s, int xrc, const char *where)
{
    int base = xrc & 0xff;
    if ((base != SQLITE_IOERR && base != SQLITE_CORRUPT) || xrc == SQLITE_IOERR_NOMEM)
        return false;
    fail_stop(s, xrc, where);
    return true;
}

/* After an op failed with err: JQ_E_FAILED on an I/O error (fail-stop); err when SQLite
 * rolled the whole transaction back (disk full, out of memory), so the ops after it would
 * run in autocommit mode; JQ_E_OK when only the op failed. */
static jq_err group_err(struct sq *s, struct conn *cn, jq_err err, const char *where)
{
    if (fail_stop_on(s, sqlite3_extended_errcode(cn->db), where))
        return JQ_E_FAILED;
    return sqlite3_get_autocommit(cn->db) ? err : JQ_E_OK;
}

/* Runs one op under its own savepoint; returns the group's error (see group_err). */
static jq_err run_one(struct sq *s, struct wop *w)
{
    struct conn *cn = &s->wconn;
    if ((w->err = sq__exec_st(cn, ST_SAVEPOINT)))
        return group_err(s, cn, w->err, "SAVEPOINT");
    w->err = run_op(cn, w);
    jq_err gerr = w->err ? group_err(s, cn, w->err, "write") : JQ_E_OK;
    if (gerr)
        return gerr;
    if (w->err)
        sq__exec_st(cn, ST_ROLLBACK_TO);
    sq__exec_st(cn, ST_RELEASE);
    sq__log_slow(cn);
    return JQ_E_OK;
}

/* COMMIT of a group of n ops, timed into the histograms. */
static jq_err commit(struct sq *s, struct conn *cn, int n)
{
    int64_t t0 = clock_mono_us();
    jq_err err = sq__exec_st(cn, ST_COMMIT);
    int64_t us = clock_mono_us() - t0;
    atomic_fetch_add(&s->fsync_us, (uint64_t)us);
    int b = 0;
    while (b < COMMIT_BUCKETS - 1 && (double)us / 1e6 > store_commit_bounds[b])
        b++;
    atomic_fetch_add(&s->commit_hist[b], 1);
    for (b = 0; b < GROUP_BUCKETS - 1 && n > store_group_bounds[b]; b++)
        ;
    atomic_fetch_add(&s->group_hist[b], 1);
    if (err && fail_stop_on(s, sqlite3_extended_errcode(cn->db), "COMMIT"))
        err = JQ_E_FAILED;
    return err;
}

/* Runs a group in one transaction. A failed BEGIN or COMMIT, or an op that took the
 * transaction down (group_err), fails every op; once fail-stopped nothing runs. */
static void run_group(struct sq *s, struct wop *g)
{
    struct conn *cn = &s->wconn;
    jq_err gerr = atomic_load(&s->failed) ? JQ_E_FAILED : sq__exec_st(cn, ST_BEGIN_IMM);
    if (gerr && gerr != JQ_E_FAILED && fail_stop_on(s, sqlite3_extended_errcode(cn->db),
                                                    "BEGIN"))
        gerr = JQ_E_FAILED;
    bool began = !gerr;
    int n = 0;
    for (struct wop *w = g; w; w = w->next, n++)
        if (!gerr)
            gerr = run_one(s, w);
    if (began && !gerr)
        gerr = commit(s, cn, n);
    if (gerr) {
        if (began && !sqlite3_get_autocommit(cn->db))
            sq__exec_st(cn, ST_ROLLBACK);
        for (struct wop *w = g; w; w = w->next)
            w->err = gerr;
        cn->wake = false;
    }
    atomic_fetch_add(&s->ops, (uint64_t)n);
    atomic_fetch_add(&s->commits, 1);
}

/* Wakes every requester of a chain of groups. */
static void post_all(struct wop *g)
{
    while (g) {
        struct wop *next = g->next;   /* g lives on a requester's stack: read first */
        sem_post(&g->done);
        g = next;
    }
}

/* Queues a committed group for the syncer. */
static void hand_to_syncer(struct sq *s, struct wop *g, bool dirty, bool wake)
{
    sqlite3_file *wal = NULL;
    if (dirty)
        sqlite3_file_control(s->wconn.db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
    struct wop *last = g;
    while (last->next)
        last = last->next;
    pthread_mutex_lock(&s->smu);
    if (s->stail)
        s->stail->next = g;
    else
        s->shead = g;
    s->stail = last;
    if (wal)
        s->swal = wal;
    s->sdirty |= dirty;
    s->swake |= wake;
    pthread_cond_signal(&s->scond);
    pthread_mutex_unlock(&s->smu);
}

static void *writer_main(void *arg)
{
    struct sq *s = arg;
    struct wop *g;
    while ((g = take_group(s))) {
        s->wconn.wake = false;
        int64_t before = sqlite3_total_changes64(s->wconn.db);
        run_group(s, g);
        bool wake = s->wconn.wake;
        if (s->pipelined) {
            /* claimers may run now, while the syncer syncs this group: a claim's reply
             * waits for its own group's sync, which covers this one (the WAL is
             * sequential), so nobody is told of a job a power cut could lose. Everyone
             * else (SSE, wait) hears of it once it is durable. */
            if (wake && s->claim_notify)
                s->claim_notify(s->claim_notify_arg, true);
            hand_to_syncer(s, g, sqlite3_total_changes64(s->wconn.db) != before,
                           wake && !s->claim_notify);
            continue;
        }
        post_all(g);
        if (s->notify)
            s->notify(s->notify_arg, wake);
    }
    return NULL;
}

/* Fails every op of a chain that has not failed already. */
static void fail_all(struct wop *g, jq_err err)
{
    for (; g; g = g->next)
        if (!g->err)
            g->err = err;
}

static void *syncer_main(void *arg)
{
    struct sq *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->smu);
        while (!s->shead && !s->sstop)
            pthread_cond_wait(&s->scond, &s->smu);
        struct wop *g = s->shead;
        sqlite3_file *wal = s->swal;
        bool dirty = s->sdirty, wake = s->swake;
        s->shead = s->stail = NULL;
        s->sdirty = s->swake = false;
        pthread_mutex_unlock(&s->smu);
        if (!g)
            return NULL;                           /* stopped and drained */
        int rc = SQLITE_OK;
        if (dirty && !atomic_load(&s->failed)) {
            int64_t t0 = clock_mono_us();
            rc = wal ? wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL) : SQLITE_IOERR_FSYNC;
            atomic_fetch_add(&s->fsync_us, (uint64_t)(clock_mono_us() - t0));
            if (rc != SQLITE_OK)
                fail_stop(s, rc, "WAL sync");
        }
        if (atomic_load(&s->failed))
            fail_all(g, JQ_E_FAILED);
        post_all(g);
        if (s->notify && rc == SQLITE_OK)
            s->notify(s->notify_arg, wake);
    }
}

/* Stops the syncer (pipelined mode) once it has synced what is queued. */
static void stop_syncer(struct sq *s)
{
    if (!s->pipelined)
        return;
    pthread_mutex_lock(&s->smu);
    s->sstop = true;
    pthread_cond_signal(&s->scond);
    pthread_mutex_unlock(&s->smu);
    pthread_join(s->syncer, NULL);
}

jq_err sq__writer_start(struct sq *s)
{
    pthread_mutex_init(&s->smu, NULL);
    pthread_cond_init(&s->scond, NULL);
    if (s->pipelined && pthread_create(&s->syncer, NULL, syncer_main, s) != 0)
        return JQ_E_NOMEM;
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        stop_syncer(s);
        return JQ_E_NOMEM;
    }
    return JQ_E_OK;
}

/* Stops the writer after it drained its queue, then the syncer after its own. */
void sq__writer_stop(struct sq *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->writer, NULL);
    stop_syncer(s);
    pthread_mutex_destroy(&s->smu);
    pthread_cond_destroy(&s->scond);
}

jq_err sq__write(struct sq *s, struct sctx *c,
                 jq_err (*fn)(struct conn *, struct sctx *, void *), void *arg)
{
    struct wop w = {.fn = fn, .arg = arg, .c = c};
    sem_init(&w.done, 0, 0);
    pthread_mutex_lock(&s->mu);
    if (s->stop || atomic_load(&s->failed)) {       /* stopping, or fail-stopped */
        bool failed = atomic_load(&s->failed);
        pthread_mutex_unlock(&s->mu);
        sem_destroy(&w.done);
        return failed ? JQ_E_FAILED : JQ_E_UNAVAILABLE;
    }
    if (s->tail)
        s->tail->next = &w;
    else
        s->head = &w;
    s->tail = &w;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    while (sem_wait(&w.done) != 0 && errno == EINTR)
        ;
    sem_destroy(&w.done);
    return w.err;
}

/* --- read pool --- */

static struct conn *acquire(struct sq *s)
{
    pthread_mutex_lock(&s->rmu);
    while (!s->free_readers)
        pthread_cond_wait(&s->rcond, &s->rmu);
    struct conn *cn = s->free_readers;
    s->free_readers = cn->next_free;
    pthread_mutex_unlock(&s->rmu);
    return cn;
}

static void release(struct sq *s, struct conn *cn)
{
    pthread_mutex_lock(&s->rmu);
    cn->next_free = s->free_readers;
    s->free_readers = cn;
    pthread_cond_signal(&s->rcond);
    pthread_mutex_unlock(&s->rmu);
}

jq_err sq__read(struct sq *s, struct sctx *c,
                jq_err (*fn)(struct conn *, struct sctx *, void *), void *arg)
{
    struct conn *cn = acquire(s);
    jq_err err = sq__exec_st(cn, ST_BEGIN);     /* one snapshot for all statements */
    if (!err) {
        err = fn(cn, c, arg);
        sq__log_slow(cn);
        jq_err e2 = sq__exec_st(cn, ST_COMMIT);
        if (!err)
            err = e2;
    }
    release(s, cn);
    return err;
}
