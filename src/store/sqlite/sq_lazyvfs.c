/*
 * sq_lazyvfs.c - TEST BUILDS ONLY (JOBQ_TESTING): "lazy", a wrapper SQLite VFS that
 * simulates a disk with a volatile write cache, for the power-loss test (T2 of
 * shared/RELIABILITY.md, tests/reliability/test_powerloss.c).
 *
 * It wraps the default (unix) VFS. Every xWrite to the main database, its WAL or its
 * rollback journal since that file's last xSync is kept in memory (4 KiB blocks) and
 * not written to the real file; xRead and xFileSize see it overlaid on the real file,
 * so the process cannot tell the difference. xSync writes the kept blocks through and
 * then syncs the real file. SIGKILL of the process therefore loses exactly the writes
 * that were never covered by a sync: a power loss (the test also deletes the -shm file,
 * as a reboot would, so recovery reads the WAL). The state is per file path, shared by
 * every connection of the process (readers see the writer's unsynced WAL frames, like
 * they would through the page cache).
 *
 * Torn variant (`--test-vfs torn:N:SEED`): the same VFS, but the Nth xSync of the
 * process (counting the syncs of every lazy file: database, WAL, journal) is a power cut
 * in the middle of that sync. It writes a random subset of the file's pending 512-byte
 * sectors to the real file - each sector whole or not at all, with a per-cut share drawn
 * from SEED, so some cuts write almost none and some almost all - logs one line
 * ("lazyvfs: torn sync N of FILE: wrote W of P pending sectors") and _exit(LZ_TORN_EXIT)s
 * at once, holding the file's lock so no other thread writes to it meanwhile. The sync
 * never returns, so nothing it would have covered was acknowledged; SQLite's WAL frame
 * checksums (and salts) must make a torn tail invisible to recovery. Other files keep
 * their unsynced blocks in memory, which the exit loses, as in the plain lazy mode.
 *
 * Simplifications: xTruncate takes effect on the real file at once (SQLite syncs after
 * the truncates it relies on); the last close of a file writes its kept blocks through
 * without a sync (the OS would write them back eventually); xDelete drops them; the -shm
 * and temp files pass straight through; no memory mapping (xFetch hands out no page).
 *
 * Selected with `jobqd --test-vfs lazy` or `--test-vfs torn:N:SEED` (config.c checks the
 * form), registered on first use (sq__lazyvfs_register, called by sq__conn_open; the VFS
 * is named "lazy" in both modes).
 */
#include "store/sqlite/sq_int.h"

#ifdef JOBQ_TESTING

#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { LZ_BLK = 4096, LZ_BUCKETS = 1024, LZ_SECTOR = 512 };

/* Exit status of a torn sync (test_powerloss.c tells it from a crash by it). */
enum { LZ_TORN_EXIT = 99 };

struct lz_blk {
    sqlite3_int64 no;            /* block number: offset / LZ_BLK */
    struct lz_blk *next;         /* bucket chain */
    unsigned char data[LZ_BLK];
};

/* The volatile state of one file path, shared by its handles. */
struct lz_state {
    char *name;
    int refs;
    pthread_mutex_t mu;
    sqlite3_int64 size;          /* logical size (real file + kept blocks) */
    long nblk;
    struct lz_blk *b[LZ_BUCKETS];
    struct lz_state *next;
};

struct lz_file {
    sqlite3_file base;           /* our methods */
    struct lz_state *st;         /* NULL: pass-through file */
    sqlite3_file *real;          /* the wrapped file, right after this struct */
};

/* Torn mode (0 = off): the lz_torn_at-th xSync of the process tears; set from the
 * --test-vfs spec before the first file is opened, the same by every connection. */
static _Atomic long lz_torn_at;
static _Atomic uint64_t lz_torn_seed;
static _Atomic long lz_syncs;    /* xSyncs of lazy files so far (counted in torn mode) */

static sqlite3_vfs *lz_root;     /* the wrapped (default) VFS */
static pthread_mutex_t lz_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lz_state *lz_states;

#define REAL(f) (((struct lz_file *)(f))->real)
#define ST(f) (((struct lz_file *)(f))->st)

static struct lz_blk **lz_slot(struct lz_state *st, sqlite3_int64 no)
{
    struct lz_blk **p = &st->b[(size_t)no % LZ_BUCKETS];
    while (*p && (*p)->no != no)
        p = &(*p)->next;
    return p;
}

static void lz_drop_all(struct lz_state *st)
{
    for (int i = 0; i < LZ_BUCKETS; i++)
        while (st->b[i]) {
            struct lz_blk *b = st->b[i];
            st->b[i] = b->next;
            free(b);
        }
    st->nblk = 0;
}

/* Writes every kept block through to the real file (no sync); st->mu held. */
static int lz_flush(struct lz_state *st, sqlite3_file *real)
{
    int rc = SQLITE_OK;
    for (int i = 0; i < LZ_BUCKETS; i++)
        while (st->b[i]) {
            struct lz_blk *b = st->b[i];
            sqlite3_int64 off = b->no * LZ_BLK, n = st->size - off;
            if (n > LZ_BLK)
                n = LZ_BLK;
            if (n > 0 && rc == SQLITE_OK)
                rc = real->pMethods->xWrite(real, b->data, (int)n, off);
            st->b[i] = b->next;
            free(b);
        }
    st->nblk = 0;
    return rc;
}

static int lz_close(sqlite3_file *f)
{
    struct lz_state *st = ST(f);
    if (st) {
        pthread_mutex_lock(&lz_mu);
        if (--st->refs == 0) {
            lz_flush(st, REAL(f));       /* the last handle: written back, not synced */
            for (struct lz_state **p = &lz_states; *p; p = &(*p)->next)
                if (*p == st) {
                    *p = st->next;
                    break;
                }
            pthread_mutex_destroy(&st->mu);
            free(st->name);
            free(st);
        }
        pthread_mutex_unlock(&lz_mu);
    }
    return REAL(f)->pMethods->xClose(REAL(f));
}

static int lz_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    struct lz_state *st = ST(f);
    if (!st)
        return REAL(f)->pMethods->xRead(REAL(f), buf, amt, off);
    pthread_mutex_lock(&st->mu);
    int rc = REAL(f)->pMethods->xRead(REAL(f), buf, amt, off);
    if (rc == SQLITE_IOERR_SHORT_READ)
        rc = SQLITE_OK;          /* zero-filled: kept blocks may cover the rest */
    if (rc == SQLITE_OK) {
        unsigned char *out = buf;
        for (sqlite3_int64 no = off / LZ_BLK; no * LZ_BLK < off + amt; no++) {
            struct lz_blk *b = *lz_slot(st, no);
            if (!b)
                continue;
            sqlite3_int64 lo = no * LZ_BLK > off ? no * LZ_BLK : off;
            sqlite3_int64 hi = (no + 1) * LZ_BLK < off + amt ? (no + 1) * LZ_BLK : off + amt;
            memcpy(out + (lo - off), b->data + (lo - no * LZ_BLK), (size_t)(hi - lo));
        }
        if (off + amt > st->size) {
            sqlite3_int64 from = st->size > off ? st->size - off : 0;
            memset(out + from, 0, (size_t)(amt - from));
            rc = SQLITE_IOERR_SHORT_READ;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int lz_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    struct lz_state *st = ST(f);
    if (!st)
        return REAL(f)->pMethods->xWrite(REAL(f), buf, amt, off);
    int rc = SQLITE_OK;
    pthread_mutex_lock(&st->mu);
    const unsigned char *in = buf;
    for (sqlite3_int64 no = off / LZ_BLK; rc == SQLITE_OK && no * LZ_BLK < off + amt; no++) {
        struct lz_blk **p = lz_slot(st, no), *b = *p;
        if (!b) {
            if (!(b = calloc(1, sizeof *b))) {
                rc = SQLITE_IOERR_NOMEM;
                break;
            }
            b->no = no;
            /* the block's current bytes (the real file's; zeros past its end) */
            sqlite3_int64 n = st->size - no * LZ_BLK;
            if (n > LZ_BLK)
                n = LZ_BLK;
            if (n > 0) {
                int r = REAL(f)->pMethods->xRead(REAL(f), b->data, (int)n, no * LZ_BLK);
                if (r != SQLITE_OK && r != SQLITE_IOERR_SHORT_READ) {
                    free(b);
                    rc = r;
                    break;
                }
            }
            *p = b;
            st->nblk++;
        }
        sqlite3_int64 lo = no * LZ_BLK > off ? no * LZ_BLK : off;
        sqlite3_int64 hi = (no + 1) * LZ_BLK < off + amt ? (no + 1) * LZ_BLK : off + amt;
        memcpy(b->data + (lo - no * LZ_BLK), in + (lo - off), (size_t)(hi - lo));
    }
    if (rc == SQLITE_OK && off + amt > st->size)
        st->size = off + amt;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int lz_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    struct lz_state *st = ST(f);
    if (!st)
        return REAL(f)->pMethods->xTruncate(REAL(f), size);
    pthread_mutex_lock(&st->mu);
    for (int i = 0; i < LZ_BUCKETS; i++)
        for (struct lz_blk **p = &st->b[i]; *p;) {
            struct lz_blk *b = *p;
            if (b->no * LZ_BLK >= size) {
                *p = b->next;
                free(b);
                st->nblk--;
                continue;
            }
            if ((b->no + 1) * LZ_BLK > size)
                memset(b->data + (size - b->no * LZ_BLK), 0,
                       (size_t)((b->no + 1) * LZ_BLK - size));
            p = &b->next;
        }
    if (size < st->size)
        st->size = size;
    int rc = REAL(f)->pMethods->xTruncate(REAL(f), size);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* splitmix64: a small seeded generator (the same SEED tears the same way) */
static uint64_t lz_rand(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* The power cut inside sync number n: writes a seeded random subset of the pending
 * sectors through (each whole, in no particular order - only the end state matters),
 * logs what it did and exits without returning. st->mu held: no thread adds to st. */
static _Noreturn void lz_tear(struct lz_state *st, sqlite3_file *real, long n)
{
    uint64_t x = atomic_load(&lz_torn_seed);
    unsigned share = (unsigned)(lz_rand(&x) % 101);   /* % of sectors that reach the disk */
    long wrote = 0, pending = 0;
    for (int i = 0; i < LZ_BUCKETS; i++)
        for (struct lz_blk *b = st->b[i]; b; b = b->next)
            for (int k = 0; k < LZ_BLK / LZ_SECTOR; k++) {
                sqlite3_int64 off = b->no * LZ_BLK + k * LZ_SECTOR, len = st->size - off;
                if (len <= 0)
                    break;
                if (len > LZ_SECTOR)
                    len = LZ_SECTOR;
                pending++;
                if (lz_rand(&x) % 100 < share &&
                    real->pMethods->xWrite(real, b->data + k * LZ_SECTOR, (int)len,
                                           off) == SQLITE_OK)
                    wrote++;
            }
    /* write(2), not stdio: another thread may hold stderr's lock */
    char line[1400];
    int len = snprintf(line, sizeof line, "lazyvfs: torn sync %ld of %s: wrote %ld of %ld "
                       "pending sectors (share %u%%), _exit(%d)\n", n, st->name, wrote,
                       pending, share, (int)LZ_TORN_EXIT);
    if (len > 0) {
        ssize_t w = write(2, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
        (void)w;                 /* nothing to do about a failed log line: exiting anyway */
    }
    _exit(LZ_TORN_EXIT);
}

static int lz_sync(sqlite3_file *f, int flags)
{
    struct lz_state *st = ST(f);
    if (st) {
        pthread_mutex_lock(&st->mu);
        long at = atomic_load(&lz_torn_at);
        if (at > 0) {
            long n = atomic_fetch_add(&lz_syncs, 1) + 1;
            if (n == at)
                lz_tear(st, REAL(f), n);
        }
        int rc = lz_flush(st, REAL(f));
        pthread_mutex_unlock(&st->mu);
        if (rc != SQLITE_OK)
            return rc;
    }
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int lz_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    struct lz_state *st = ST(f);
    int rc = REAL(f)->pMethods->xFileSize(REAL(f), size);
    if (rc == SQLITE_OK && st) {
        pthread_mutex_lock(&st->mu);
        if (st->size > *size)
            *size = st->size;
        pthread_mutex_unlock(&st->mu);
    }
    return rc;
}

/* --- pass-through methods --- */

static int lz_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int lz_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int lz_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int lz_fcntl(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int lz_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int lz_devchar(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int lz_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int lz_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void lz_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int lz_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int lz_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
    (void)f, (void)off, (void)amt;
    *pp = NULL;                  /* no memory mapping: every read goes through lz_read */
    return SQLITE_OK;
}
static int lz_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    (void)f, (void)off, (void)p;
    return SQLITE_OK;
}

static const sqlite3_io_methods lz_methods = {
    3, lz_close, lz_read, lz_write, lz_truncate, lz_sync, lz_file_size, lz_lock, lz_unlock,
    lz_check_reserved, lz_fcntl, lz_sector, lz_devchar, lz_shm_map, lz_shm_lock,
    lz_shm_barrier, lz_shm_unmap, lz_fetch, lz_unfetch,
};

/* --- the VFS --- */

static struct lz_state *lz_state_get(const char *name, sqlite3_file *real)
{
    pthread_mutex_lock(&lz_mu);
    struct lz_state *st = lz_states;
    while (st && strcmp(st->name, name))
        st = st->next;
    if (!st && (st = calloc(1, sizeof *st)) && (st->name = strdup(name))) {
        pthread_mutex_init(&st->mu, NULL);
        if (real->pMethods->xFileSize(real, &st->size) != SQLITE_OK)
            st->size = 0;
        st->next = lz_states;
        lz_states = st;
    } else if (st && !st->name) {
        free(st);
        st = NULL;
    }
    if (st)
        st->refs++;
    pthread_mutex_unlock(&lz_mu);
    return st;
}

static int lz_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)vfs;
    struct lz_file *lf = (struct lz_file *)f;
    memset(lf, 0, sizeof *lf);
    lf->real = (sqlite3_file *)(lf + 1);
    int rc = lz_root->xOpen(lz_root, name, lf->real, flags, out);
    if (rc != SQLITE_OK) {
        lf->real->pMethods = NULL;     /* SQLite does not close a file that failed to open */
        return rc;
    }
    bool lazy = name && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL |
                                  SQLITE_OPEN_MAIN_JOURNAL));
    if (lazy && !(lf->st = lz_state_get(name, lf->real))) {
        lf->real->pMethods->xClose(lf->real);
        return SQLITE_NOMEM;
    }
    f->pMethods = &lz_methods;
    return SQLITE_OK;
}

static int lz_delete(sqlite3_vfs *vfs, const char *name, int dirsync)
{
    (void)vfs;
    pthread_mutex_lock(&lz_mu);
    for (struct lz_state *st = lz_states; st; st = st->next)
        if (!strcmp(st->name, name)) {
            pthread_mutex_lock(&st->mu);
            lz_drop_all(st);
            st->size = 0;
            pthread_mutex_unlock(&st->mu);
        }
    pthread_mutex_unlock(&lz_mu);
    return lz_root->xDelete(lz_root, name, dirsync);
}

static int lz_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return lz_root->xAccess(lz_root, name, flags, out);
}
static int lz_full_path(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return lz_root->xFullPathname(lz_root, name, n, out);
}
static void *lz_dlopen(sqlite3_vfs *v, const char *p) { (void)v; return lz_root->xDlOpen(lz_root, p); }
static void lz_dlerror(sqlite3_vfs *v, int n, char *m)
{
    (void)v;
    lz_root->xDlError(lz_root, n, m);
}
static void (*lz_dlsym(sqlite3_vfs *v, void *h, const char *s))(void)
{
    (void)v;
    return lz_root->xDlSym(lz_root, h, s);
}
static void lz_dlclose(sqlite3_vfs *v, void *h) { (void)v; lz_root->xDlClose(lz_root, h); }
static int lz_random(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return lz_root->xRandomness(lz_root, n, out);
}
static int lz_sleep(sqlite3_vfs *v, int us) { (void)v; return lz_root->xSleep(lz_root, us); }
static int lz_time(sqlite3_vfs *v, double *t) { (void)v; return lz_root->xCurrentTime(lz_root, t); }
static int lz_last_error(sqlite3_vfs *v, int n, char *m)
{
    (void)v;
    return lz_root->xGetLastError ? lz_root->xGetLastError(lz_root, n, m) : 0;
}
static int lz_time64(sqlite3_vfs *v, sqlite3_int64 *t)
{
    (void)v;
    return lz_root->xCurrentTimeInt64(lz_root, t);
}

static sqlite3_vfs lz_vfs = {
    .iVersion = 2,
    .zName = "lazy",
    .xOpen = lz_open,
    .xDelete = lz_delete,
    .xAccess = lz_access,
    .xFullPathname = lz_full_path,
    .xDlOpen = lz_dlopen,
    .xDlError = lz_dlerror,
    .xDlSym = lz_dlsym,
    .xDlClose = lz_dlclose,
    .xRandomness = lz_random,
    .xSleep = lz_sleep,
    .xCurrentTime = lz_time,
    .xGetLastError = lz_last_error,
    .xCurrentTimeInt64 = lz_time64,
};

static int lz_reg_rc = SQLITE_ERROR;

static void lz_register_once(void)
{
    if (!(lz_root = sqlite3_vfs_find(NULL)))
        return;
    lz_vfs.szOsFile = (int)sizeof(struct lz_file) + lz_root->szOsFile;
    lz_vfs.mxPathname = lz_root->mxPathname;
    lz_reg_rc = sqlite3_vfs_register(&lz_vfs, 0);
}

/* Parses "torn:N:SEED" (N >= 1, SEED an unsigned integer); false if spec is not one. */
static bool lz_torn_spec(const char *spec, long *n, uint64_t *seed)
{
    char *end;
    if (strncmp(spec, "torn:", 5) != 0)
        return false;
    long v = strtol(spec + 5, &end, 10);
    if (end == spec + 5 || *end != ':' || v < 1)
        return false;
    const char *s = end + 1;
    uint64_t sd = strtoull(s, &end, 10);
    if (end == s || *end || *s == '-')
        return false;
    *n = v;
    *seed = sd;
    return true;
}

int sq__lazyvfs_register(const char *spec)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    long n;
    uint64_t seed;
    if (spec && lz_torn_spec(spec, &n, &seed)) {
        atomic_store(&lz_torn_seed, seed);
        atomic_store(&lz_torn_at, n);
    } else if (!spec || strcmp(spec, "lazy") != 0) {
        return SQLITE_ERROR;
    }
    pthread_once(&once, lz_register_once);
    return lz_reg_rc;
}

#else
typedef int sq_lazyvfs_not_in_this_build;   /* ISO C: a translation unit is not empty */
#endif
