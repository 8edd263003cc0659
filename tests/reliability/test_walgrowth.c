/*
 * test_walgrowth.c - RELIABILITY.md T12 (the WAL part): a reader that holds one snapshot
 * keeps every checkpoint from finishing, so the WAL grows without bound while writes go
 * on. Writes must still succeed (no SQLITE_BUSY reaches a client), and once the reader
 * lets go the WAL file must come back under 64 MiB within 10 s (the checkpointer backfills
 * it; the writer restarts it and journal_size_limit cuts the file back to 16 MiB).
 * CI grows the WAL past 80 MiB; JQ_LONG=1 past 256 MiB.
 */
#include "rel.h"

enum { PAD = 3000, PER_BATCH = 1000, LIMIT_MIB = 64 };

static long long wal_bytes(const char *db)
{
    char p[1100];
    snprintf(p, sizeof p, "%s-wal", db);
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : 0;
}

/* {"jobs":[PER_BATCH x {"type":"w","queue":"wq","params":{"i":k,"pad":"xxx..."}}]} */
static char *batch_body(int first)
{
    size_t cap = (size_t)PER_BATCH * (PAD + 96) + 32, n = 0;
    char *b = malloc(cap), *pad = malloc(PAD + 1);
    memset(pad, 'x', PAD);
    pad[PAD] = 0;
    n += (size_t)snprintf(b + n, cap - n, "{\"jobs\":[");
    for (int i = 0; i < PER_BATCH; i++)
        n += (size_t)snprintf(b + n, cap - n, "%s{\"type\":\"w\",\"queue\":\"wq\",\"params\":"
                              "{\"i\":%d,\"pad\":\"%s\"}}", i ? "," : "", first + i, pad);
    snprintf(b + n, cap - n, "]}");
    free(pad);
    return b;
}

TEST(t12_wal_held_by_a_reader_shrinks_after_release)
{
    static const char *const extra[] = { "--body-max", "8388608", NULL };
    struct testsrv *s = st_start_with(extra);
    const char *u = ts_token(s, "u", "user");
    long long want = (long long)REL_N(80, 256) << 20, peak = 0;
    struct resp r;
    REQUIRE_EQ(ts_req(s, "POST", "/v1/jobs", u, "{\"type\":\"w\",\"queue\":\"wq\"}", &r), 201);
    resp_free(&r);

    sqlite3 *rd = NULL;          /* the long reader: one snapshot held open */
    REQUIRE_EQ(sqlite3_open_v2(s->db, &rd, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    REQUIRE_EQ(sqlite3_exec(rd, "BEGIN; SELECT count(*) FROM jobs;", NULL, NULL, NULL),
               SQLITE_OK);
    int batches = 0, failed = 0;
    while ((peak = wal_bytes(s->db)) < want && batches < 400) {
        char *body = batch_body(batches * PER_BATCH);
        long st = ts_req(s, "POST", "/v1/jobs/batch", u, body, &r);
        if (st != 201) {
            if (failed++ < 3) fprintf(stderr, "  batch %d: %ld %s\n", batches, st, r.body);
        }
        resp_free(&r);
        free(body);
        batches++;
    }
    CHECK_EQ(failed, 0);         /* the held snapshot never turns into a client error */
    CHECK(peak >= want);
    REQUIRE_EQ(sqlite3_exec(rd, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(rd);

    /* released: small writes go on; the WAL must be back under the limit within 10 s */
    int64_t t0 = th_now_ms();
    long long now_b = peak;
    unsigned step = 0;
    while ((now_b = wal_bytes(s->db)) >= (long long)LIMIT_MIB << 20 && th_now_ms() - t0 < 10000) {
        CHECK_EQ(ts_req(s, "POST", "/v1/jobs", u,
                        "{\"type\":\"w\",\"queue\":\"small\",\"dedup\":false}", &r), 201);
        resp_free(&r);
        th_nap(&step);
    }
    int64_t dt = th_now_ms() - t0;
    printf("  %d batches of %d jobs under a held reader: WAL %.1f MiB, 0 client errors: %s; "
           "after release: %.1f MiB in %lld ms\n", batches, PER_BATCH, (double)peak / (1 << 20),
           failed ? "no" : "yes", (double)now_b / (1 << 20), (long long)dt);
    CHECK(now_b < (long long)LIMIT_MIB << 20);
    char *chk = th_mkdtemp("integrity");
    CHECK(rel_integrity_copy(s->db, chk));
    free(chk);
    testsrv_stop(s);
}

TEST_MAIN()
