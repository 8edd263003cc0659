/*
 * sq_ckpt.c - WAL checkpoints off the writer's path. SQLite's automatic
 * checkpoint runs inside the commit that crosses the threshold, so one
 * unlucky request (and every request queued behind the writer) waits for
 * the database file to be written and fsync'd. Here the writer's WAL hook
 * only signals; a thread with its own connection runs PASSIVE checkpoints,
 * which never block the writer or readers.
 */
#include "store/sqlite/sq_int.h"

#include <stdlib.h>

#include "common/log.h"

enum {
    CKPT_FRAMES = 1000,        /* like SQLite's default wal_autocheckpoint */
    CATCH_UP_FRAMES = 4096,    /* 16 MiB: the writer finishes the checkpoint itself */
};

/* The WAL only starts over from its head when a checkpoint has copied every frame.
 * Under a steady stream of commits the thread's PASSIVE checkpoints never get there:
 * each one ends a few commits behind the writer, and the WAL grew without bound (2 GiB
 * while filling 1M jobs). So once the WAL is CATCH_UP_FRAMES long, the writer copies
 * the few frames the thread has not (nothing new is appended meanwhile); its next
 * commit restarts the WAL, and journal_size_limit cuts the file back. A reader that
 * pins old frames stops it from completing: then it tries again CKPT_FRAMES later. */
static void catch_up(struct sq *s, sqlite3 *db, int frames)
{
    if (frames < s->ck_next_catch_up || atomic_load(&s->failed))
        return;
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    bool complete = rc == SQLITE_OK && done == log;
    s->ck_next_catch_up = complete ? CATCH_UP_FRAMES : frames + CKPT_FRAMES;
}

/* The writer's WAL hook: runs after each commit with the WAL's frame count. */
static int on_wal(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)name;
    struct sq *s = arg;
    if (frames < CKPT_FRAMES)
        s->ck_next_catch_up = CATCH_UP_FRAMES;      /* the WAL started over */
    catch_up(s, db, frames);
    if (frames >= CKPT_FRAMES) {
        pthread_mutex_lock(&s->ck_mu);
        s->ck_due = true;
        pthread_cond_signal(&s->ck_cond);
        pthread_mutex_unlock(&s->ck_mu);
    }
    return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
    struct sq *s = arg;
    pthread_mutex_lock(&s->ck_mu);
    while (!s->ck_stop) {
        while (!s->ck_due && !s->ck_stop)
            pthread_cond_wait(&s->ck_cond, &s->ck_mu);
        if (s->ck_stop)
            break;
        s->ck_due = false;
        pthread_mutex_unlock(&s->ck_mu);
        int log = 0, done = 0;
        if (atomic_load(&s->failed)) {   /* fail-stop (sq_writer.c): the WAL stays as it is */
            pthread_mutex_lock(&s->ck_mu);
            continue;
        }
        int rc = sqlite3_wal_checkpoint_v2(s->ck.db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_warn("checkpoint: %s", sqlite3_errmsg(s->ck.db));
        pthread_mutex_lock(&s->ck_mu);
    }
    pthread_mutex_unlock(&s->ck_mu);
    return NULL;
}

jq_err sq__ckpt_start(struct sq *s)
{
    jq_err err = sq__conn_open(s->path, false, s->cfg.sync, s->cfg.vfs, &s->ck);
    if (err)
        return err;
    pthread_mutex_init(&s->ck_mu, NULL);
    pthread_cond_init(&s->ck_cond, NULL);
    if (pthread_create(&s->ck_thread, NULL, ckpt_main, s) != 0) {
        sq__conn_close(&s->ck);
        return JQ_E_NOMEM;
    }
    s->ck_next_catch_up = CATCH_UP_FRAMES;
    sqlite3_wal_hook(s->wconn.db, on_wal, s);   /* replaces the automatic checkpoint */
    return JQ_E_OK;
}

void sq__ckpt_stop(struct sq *s)
{
    if (!s->ck.db)
        return;
    sqlite3_wal_hook(s->wconn.db, NULL, NULL);
    pthread_mutex_lock(&s->ck_mu);
    s->ck_stop = true;
    pthread_cond_signal(&s->ck_cond);
    pthread_mutex_unlock(&s->ck_mu);
    pthread_join(s->ck_thread, NULL);
    if (atomic_load(&s->failed))
        sqlite3_db_config(s->ck.db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    else
        sqlite3_wal_checkpoint_v2(s->ck.db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    sq__conn_close(&s->ck);
    pthread_cond_destroy(&s->ck_cond);
    pthread_mutex_destroy(&s->ck_mu);
}
