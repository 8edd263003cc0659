/*
 * bench_table.c - the markdown summary of a bench run (scripts/bench.sh): reads the
 * JSON lines of bench_w (bench/results/jobq.jsonl), keeps those of one run id, and
 * prints the medians of the repetitions beside the peers' figures (bench/peers.json),
 * then jobq's details per workload, the W2 sweep and the status-GET runs (shared cache
 * on or off).
 *
 *   bench_table --results bench/results/jobq.jsonl --peers bench/peers.json --run-id ID
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_RUNS = 64 };

static const char *const WORKLOADS[] = { "W1a", "W1b", "W2", "W3" };
enum { NWL = 4 };

/* The runs of one workload (main repetitions only, not the sweep). */
struct cell {
    json_t *ok[MAX_RUNS];     /* runs with a result (borrowed) */
    int nok;
    int nbad;                 /* failed or timed out */
    const char *bad;          /* status of the last bad run */
};

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double num(json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

/* Median of field k over the cell's good runs. */
static double median(const struct cell *c, const char *k)
{
    double v[MAX_RUNS];
    for (int i = 0; i < c->nok; i++) v[i] = num(c->ok[i], k);
    qsort(v, (size_t)c->nok, sizeof *v, cmp_d);
    if (c->nok == 0) return 0;
    return c->nok % 2 ? v[c->nok / 2] : (v[c->nok / 2 - 1] + v[c->nok / 2]) / 2;
}

/* 12345.6 -> "12,346" */
static const char *thousands(double x, char *out, size_t cap)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%.0f", x);
    size_t n = strlen(raw), o = 0;
    for (size_t i = 0; i < n && o + 2 < cap; i++) {
        out[o++] = raw[i];
        if ((n - 1 - i) % 3 == 0 && i + 1 < n && raw[i] != '-') out[o++] = ',';
    }
    out[o] = '\0';
    return out;
}

static const char *ms(double x, char *out, size_t cap)
{
    if (x >= 100) thousands(x, out, cap);
    else snprintf(out, cap, x >= 10 ? "%.1f" : "%.2f", x);
    return out;
}

/* " (1 of 3 timed out)" etc. */
static void bad_note(const struct cell *c, char *out, size_t cap)
{
    out[0] = '\0';
    if (c->nbad)
        snprintf(out, cap, " (%d of %d %s)", c->nbad, c->nbad + c->nok,
                 strcmp(c->bad, "timed_out") ? "failed" : "timed out");
}

static void rate_cell(const struct cell *c, char *out, size_t cap)
{
    char a[32], note[64];
    bad_note(c, note, sizeof note);
    if (!c->nok) snprintf(out, cap, "%s", c->nbad ? (strcmp(c->bad, "timed_out") ? "failed" : "timed out") : "not run");
    else snprintf(out, cap, "%s%s", thousands(median(c, "jobs_per_s"), a, sizeof a), note);
}

/* Best W2 rate of the sweep lines (with its label) appended to out. */
static void best_sweep(json_t **sweep, int n, char *out, size_t cap)
{
    int best = -1;
    for (int i = 0; i < n; i++)
        if (best < 0 || num(sweep[i], "jobs_per_s") > num(sweep[best], "jobs_per_s")) best = i;
    if (best < 0) return;
    char a[32];
    size_t len = strlen(out);
    snprintf(out + len, cap - len, " (%s with %s)", thousands(num(sweep[best], "jobs_per_s"), a, sizeof a),
             json_string_value(json_object_get(sweep[best], "sweep_label")) ?: "?");
}

static void w3_cell(const struct cell *c, char *out, size_t cap)
{
    char a[32], b[32], note[64];
    int kept = 0;
    for (int i = 0; i < c->nok; i++) kept += json_is_true(json_object_get(c->ok[i], "kept_up"));
    bad_note(c, note, sizeof note);
    if (!c->nok) { rate_cell(c, out, cap); return; }
    if (snprintf(out, cap, "%s / %s, %s (%d of %d kept up)%s", ms(median(c, "p50_ms"), a, sizeof a),
                 ms(median(c, "p99_ms"), b, sizeof b), 2 * kept > c->nok ? "yes" : "no", kept,
                 c->nok, note) >= (int)cap)
        out[cap - 1] = '\0';            /* a cut note is fine in a table cell */
}

static void print_main(struct cell *cells, json_t **sweep, int nsweep, json_t *peers,
                       const char *durability)
{
    json_t *cols = json_object_get(peers, "columns"), *row, *v;
    size_t i, j;
    printf("|");
    json_array_foreach(cols, i, v) printf(" %s |", json_string_value(v));
    printf("\n|");
    json_array_foreach(cols, i, v) printf("---|");
    char c1[96], c2[96], c3[192], c4[128];
    rate_cell(&cells[0], c1, sizeof c1);
    rate_cell(&cells[1], c2, sizeof c2);
    rate_cell(&cells[2], c3, sizeof c3);
    best_sweep(sweep, nsweep, c3, sizeof c3);
    w3_cell(&cells[3], c4, sizeof c4);
    printf("\n| **jobq** (%s) | **%s** | **%s** | **%s** | **%s** |\n", durability, c1, c2, c3, c4);
    json_array_foreach(json_object_get(peers, "rows"), i, row) {
        printf("|");
        json_array_foreach(row, j, v) printf(" %s |", json_string_value(v));
        printf("\n");
    }
}

static void print_details(struct cell *cells)
{
    printf("\n| jobq workload | runs ok | jobs/s | p50 ms | p99 ms | max ms | server CPU s | "
           "client CPU s | busy cores | others' CPU s | ops/commit | latency of | protocol |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int w = 0; w < NWL; w++) {
        struct cell *c = &cells[w];
        char r[32], a[32], b[32], m[32];
        if (!c->nok) { printf("| %s | 0 of %d | | | | | | | | | | | |\n", WORKLOADS[w], c->nbad); continue; }
        json_t *last = c->ok[c->nok - 1];
        printf("| %s | %d of %d | %s | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.1f | %s | %s |\n",
               WORKLOADS[w], c->nok, c->nok + c->nbad, thousands(median(c, "jobs_per_s"), r, sizeof r),
               ms(median(c, "p50_ms"), a, sizeof a), ms(median(c, "p99_ms"), b, sizeof b),
               ms(median(c, "max_ms"), m, sizeof m), median(c, "server_cpu_s"),
               median(c, "client_cpu_s"), median(c, "busy_cores"), median(c, "others_cpu_s"),
               median(c, "ops_per_commit"),
               json_string_value(json_object_get(last, "latency_of")) ?: "create call",
               json_string_value(json_object_get(last, "protocol")) ?: "");
    }
}

static void print_sweep(json_t **sweep, int n)
{
    if (!n) return;
    printf("\n| W2 sweep (1 run each) | jobs/s | worker call p50 / p99 ms | server CPU s | "
           "client CPU s | busy cores | ops/commit |\n|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        json_t *o = sweep[i];
        char r[32], a[32], b[32];
        const char *st = json_string_value(json_object_get(o, "status"));
        if (st && strcmp(st, "ok") && strcmp(st, "errors")) {
            printf("| %s | %s | | | | | |\n", json_string_value(json_object_get(o, "sweep_label")) ?: "?", st);
            continue;
        }
        printf("| %s | %s | %s / %s | %.2f | %.2f | %.2f | %.1f |\n",
               json_string_value(json_object_get(o, "sweep_label")) ?: "?",
               thousands(num(o, "jobs_per_s"), r, sizeof r), ms(num(o, "p50_ms"), a, sizeof a),
               ms(num(o, "p99_ms"), b, sizeof b), num(o, "server_cpu_s"), num(o, "client_cpu_s"),
               num(o, "busy_cores"), num(o, "ops_per_commit"));
    }
}

/* The status-GET runs (bench_w --workload get), one line each. */
static void print_gets(json_t **gets, int n)
{
    if (!n) return;
    printf("\n| status GET (1 run each) | shared cache | nodes | GETs/s | p50 ms | p99 ms | "
           "max ms | cache hits / misses | server CPU s | busy cores |\n"
           "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        json_t *o = gets[i];
        char r[32], a[32], b[32], c[32];
        const char *st = json_string_value(json_object_get(o, "status"));
        const char *cache = json_string_value(json_object_get(o, "cache")) ?: "?";
        if (st && strcmp(st, "ok") && strcmp(st, "errors")) {
            printf("| GET | %s | | %s | | | | | | |\n", cache, st);
            continue;
        }
        printf("| GET /v1/jobs/{id} | %s | %.0f | %s | %s | %s | %s | %.0f / %.0f | %.2f "
               "| %.2f |\n",
               cache, num(o, "nodes"), thousands(num(o, "jobs_per_s"), r, sizeof r),
               ms(num(o, "p50_ms"), a, sizeof a), ms(num(o, "p99_ms"), b, sizeof b),
               ms(num(o, "max_ms"), c, sizeof c), num(o, "cache_hits"), num(o, "cache_misses"),
               num(o, "server_cpu_s"), num(o, "busy_cores"));
    }
}

/* Sorts one result line into its workload cell, the sweep list or the GET list. */
static void classify(json_t *o, struct cell *cells, json_t **sweep, int *nsweep, const char **dur)
{
    const char *wl = json_string_value(json_object_get(o, "workload"));
    const char *st = json_string_value(json_object_get(o, "status"));
    bool good = st && (!strcmp(st, "ok") || !strcmp(st, "errors"));
    if (json_is_true(json_object_get(o, "sweep")) || (wl && !strcmp(wl, "GET"))) {
        if (*nsweep < MAX_RUNS) sweep[(*nsweep)++] = o;
        return;
    }
    for (int w = 0; wl && w < NWL; w++) {
        if (strcmp(wl, WORKLOADS[w])) continue;
        struct cell *c = &cells[w];
        if (good && c->nok < MAX_RUNS) c->ok[c->nok++] = o;
        else if (!good) { c->nbad++; c->bad = st ? st : "failed"; }
        if (good && json_string_value(json_object_get(o, "durability")))
            *dur = json_string_value(json_object_get(o, "durability"));
    }
}

int main(int argc, char **argv)
{
    const char *results = "bench/results/jobq.jsonl", *peers_path = "bench/peers.json", *run_id = NULL;
    static const struct option opts[] = {
        {"results", 1, NULL, 'r'}, {"peers", 1, NULL, 'p'}, {"run-id", 1, NULL, 'i'},
        {"help", 0, NULL, 'h'},    {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'r') results = optarg;
        else if (o == 'p') peers_path = optarg;
        else if (o == 'i') run_id = optarg;
        else {
            fprintf(o == 'h' ? stdout : stderr,
                    "usage: bench_table [--results FILE] [--peers FILE] [--run-id ID]\n"
                    "Prints the markdown summary of the runs of one run id (default: all).\n");
            return o == 'h' ? 0 : 2;
        }
    }
    json_error_t e;
    json_t *peers = json_load_file(peers_path, 0, &e);
    FILE *f = fopen(results, "r");
    if (!peers || !f) { fprintf(stderr, "bench_table: cannot read %s or %s\n", results, peers_path); return 1; }
    json_t *all = json_array();
    struct cell cells[NWL] = { 0 };
    json_t *sweep[MAX_RUNS];
    int nsweep = 0;
    const char *dur = "?";
    char line[1 << 16];
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "run_id"));
        if (!j || (run_id && (!id || strcmp(id, run_id)))) { json_decref(j); continue; }
        json_array_append_new(all, j);
        classify(j, cells, sweep, &nsweep, &dur);
    }
    fclose(f);
    json_t *gets[MAX_RUNS], *sw[MAX_RUNS];     /* GET lines travel with the sweep's */
    int ngets = 0, nsw = 0;
    for (int i = 0; i < nsweep; i++) {
        const char *wl = json_string_value(json_object_get(sweep[i], "workload"));
        if (wl && !strcmp(wl, "GET")) gets[ngets++] = sweep[i];
        else sw[nsw++] = sweep[i];
    }
    print_main(cells, sw, nsw, peers, dur);
    print_details(cells);
    print_sweep(sw, nsw);
    print_gets(gets, ngets);
    json_decref(all);
    json_decref(peers);
    return 0;
}
