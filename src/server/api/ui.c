/*
 * ui.c - what jobqd serves besides the JSON API: the dashboard (GET /ui,
 * GET /ui/{file}), the OpenAPI document (GET /v1/openapi.json) and the route
 * table (GET /v1/admin/routes, which the OpenAPI test compares with the
 * document). The files are compiled in (src/server/dashboard/embed.cmake);
 * nothing is read from disk or fetched at run time.
 *
 * The dashboard page is public (it holds no data: it signs in with a token
 * the user pastes and calls the JSON API with it). Its Content-Security-Policy
 * allows scripts and styles from this origin only, so even a value that
 * slipped past the page's own escaping could not run as script.
 */
#include "server/api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/dashboard/dashboard.h"
#include "server/router.h"

/* Fits reply_header's 96-byte value: form-action is not needed (forms are
 * handled by script), frame-ancestors stops clickjacking of the buttons. */
#define UI_CSP "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

static const struct dash_file *find_file(const char *name)
{
    for (int i = 0; i < dash_files_n; i++)
        if (strcmp(dash_files[i].name, name) == 0)
            return &dash_files[i];
    return NULL;
}

static const char *type_of(const char *name)
{
    static const struct { const char *ext, *type; } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".json", "application/json"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* FNV-1a of the bytes: a strong validator for a file that only changes
 * with the binary. */
static void etag_of(const struct dash_file *f, char out[20])
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < f->len; i++)
        h = (h ^ f->data[i]) * 1099511628211ull;
    snprintf(out, 20, "\"%016llx\"", (unsigned long long)h);
}

/* Replies with an embedded file; extra is the last of the four headers a
 * reply may carry: the CSP for the page, nosniff for what it loads. Every
 * reply is revalidated (no-cache + ETag): the files are small and change
 * whenever jobqd is upgraded, so a stale app.js beside a new index.html can
 * never happen. */
static void send_file(struct req *q, const struct dash_file *f, const char *extra_name,
                      const char *extra)
{
    char etag[20];
    etag_of(f, etag);
    const char *inm = req_header(q, "If-None-Match");
    reply_header(q, "Cache-Control", "no-cache");
    reply_header(q, "ETag", "%s", etag);
    reply_header(q, extra_name, "%s", extra);
    if (inm && (strcmp(inm, etag) == 0 || strcmp(inm, "*") == 0)) {
        reply_empty(q, 304);
        return;
    }
    char *text = malloc(f->len + 1);
    if (!text) {
        reply_err(q, JQ_E_NOMEM, NULL, "out of memory");
        return;
    }
    memcpy(text, f->data, f->len + 1);    /* the embedded copy ends in a NUL */
    reply_raw(q, 200, text);
    reply_header(q, "Content-Type", "%s", type_of(f->name));
}

static void send_ui(struct req *q, const char *file)
{
    static const char *const none[] = {NULL};
    char name[80];
    const struct dash_file *f = NULL;
    if (strlen(file) < sizeof name - 3) {
        snprintf(name, sizeof name, "ui/%s", file);
        f = find_file(name);
    }
    if (!f) {
        reply_err(q, JQ_E_NOT_FOUND, NULL, "no such file");
        return;
    }
    if (!req_query_only(q, none))
        return;
    if (strcmp(file, "index.html") == 0)
        send_file(q, f, "Content-Security-Policy", UI_CSP);
    else
        send_file(q, f, "X-Content-Type-Options", "nosniff");
}

void api_ui_index(struct req *q)
{
    send_ui(q, "index.html");
}

void api_ui_file(struct req *q)
{
    send_ui(q, q->params[0]);
}

void api_openapi(struct req *q)
{
    const struct dash_file *f = find_file("openapi.json");
    if (!f) {
        reply_err(q, JQ_E_INTERNAL, NULL, "openapi.json is not compiled in");
        return;
    }
    send_file(q, f, "X-Content-Type-Options", "nosniff");
}

void api_admin_routes(struct req *q)
{
    static const unsigned roles[] = {ROLE_USER, ROLE_WORKER, ROLE_ADMIN};
    int n;
    const struct route *r = router_routes(&n);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        json_t *rs = json_array();
        for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++)
            if (r[i].roles & roles[k])
                json_array_append_new(rs, json_string(role_name((enum role)roles[k])));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:b}", "method", r[i].method,
                                             "path", r[i].pattern, "roles", rs, "idempotent",
                                             (r[i].flags & R_IDEM) != 0));
    }
    reply_json(q, 200, json_pack("{s:o}", "routes", arr));
}
