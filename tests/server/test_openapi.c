/*
 * test_openapi.c - what server/api/ui.c serves. GET /v1/openapi.json must match
 * the route table (GET /v1/admin/routes): every route documented with its
 * method, nothing documented that does not exist, the same roles (x-jobq-roles),
 * Idempotency-Key exactly where the route honours it, a path parameter for
 * every {} segment, and every $ref resolving. A route added to router.c without
 * its entry in docs/openapi.json fails here. Also: the dashboard's files are
 * served with their types and revalidate with ETag.
 */
#include "srvtest.h"

#include <ctype.h>

static const char *const methods[] = {"get", "put", "post", "delete", "patch", "head",
                                      "options", "trace", NULL};

/* "/v1/jobs/{id}/logs" -> "/v1/jobs/{}/logs" (the router's spelling). */
static void to_pattern(const char *path, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = path; *p && n + 3 < cap; p++) {
        if (*p == '{') {
            out[n++] = '{';
            out[n++] = '}';
            while (*p && *p != '}')
                p++;
            if (!*p)
                break;
            continue;
        }
        out[n++] = *p;
    }
    out[n] = '\0';
}

static void lower(const char *s, char *out, size_t cap)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[i] = '\0';
}

/* The operation documented for method + router pattern, or NULL. */
static json_t *doc_op(json_t *doc, const char *method, const char *pattern)
{
    const char *path;
    json_t *item;
    char m[16], pat[256];
    lower(method, m, sizeof m);
    json_object_foreach(jpath(doc, "paths"), path, item) {
        to_pattern(path, pat, sizeof pat);
        if (strcmp(pat, pattern) == 0)
            return json_object_get(item, m);
    }
    return NULL;
}

static json_t *find_route(json_t *routes, const char *method, const char *pattern)
{
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r)
        if (strcasecmp(jstr(r, "method"), method) == 0 && strcmp(jstr(r, "path"), pattern) == 0)
            return r;
    return NULL;
}

/* Roles as a sorted, comma-joined string. */
static void roles_str(json_t *arr, char *out, size_t cap)
{
    const char *names[] = {"admin", "user", "worker"};
    size_t n = 0;
    out[0] = '\0';
    for (size_t k = 0; k < 3; k++) {
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v)
            if (json_is_string(v) && strcmp(json_string_value(v), names[k]) == 0)
                n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "", names[k]);
    }
}

static bool has_param(json_t *op, const char *in, const char *name)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(op, "parameters"), i, p) {
        const char *ref = jstr(p, "$ref");
        if (ref && strcmp(in, "header") == 0 && strstr(ref, "/IdempotencyKey"))
            return strcmp(name, "Idempotency-Key") == 0;
        if (jstr(p, "in") && strcmp(jstr(p, "in"), in) == 0 && jstr(p, "name") &&
            strcmp(jstr(p, "name"), name) == 0)
            return true;
    }
    return false;
}

/* Every "$ref": "#/a/b" under v names something in doc. */
static void check_refs(json_t *doc, json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;
    if (json_is_array(v)) {
        json_array_foreach(v, i, x)
            check_refs(doc, x);
        return;
    }
    json_object_foreach(v, k, x) {
        if (strcmp(k, "$ref") == 0 && json_is_string(x)) {
            const char *ref = json_string_value(x);
            char dotted[256];
            if (!CHECK(strncmp(ref, "#/", 2) == 0))
                continue;
            snprintf(dotted, sizeof dotted, "%s", ref + 2);
            for (char *c = dotted; *c; c++)
                if (*c == '/')
                    *c = '.';
            if (!CHECK(jpath(doc, dotted) != NULL))
                fprintf(stderr, "  unresolved $ref %s\n", ref);
        } else {
            check_refs(doc, x);
        }
    }
}

TEST(document_matches_route_table)
{
    struct testsrv *s = testsrv_start(NULL);
    struct resp rt, doc;
    REQUIRE_EQ(ts_req(s, "GET", "/v1/admin/routes", s->admin, NULL, &rt), 200);
    REQUIRE_EQ(ts_req(s, "GET", "/v1/openapi.json", s->admin, NULL, &doc), 200);
    REQUIRE(doc.json != NULL);
    CHECK_STR_EQ(doc.content_type, "application/json");
    CHECK_STR_EQ(jstr(doc.json, "openapi"), "3.1.0");
    CHECK(jstr(doc.json, "info.title") && jstr(doc.json, "info.version"));
    json_t *routes = jpath(rt.json, "routes");
    REQUIRE(json_array_size(routes) > 20);

    /* every route is documented, with its roles and Idempotency-Key */
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r) {
        const char *m = jstr(r, "method"), *pat = jstr(r, "path");
        json_t *op = doc_op(doc.json, m, pat);
        if (!CHECK(op != NULL)) {
            fprintf(stderr, "  %s %s is in the route table but not in docs/openapi.json\n", m, pat);
            continue;
        }
        char want[64], got[64];
        roles_str(json_object_get(r, "roles"), want, sizeof want);
        roles_str(json_object_get(op, "x-jobq-roles"), got, sizeof got);
        if (!CHECK_STR_EQ(got, want))
            fprintf(stderr, "  roles of %s %s\n", m, pat);
        CHECK(json_is_array(json_object_get(op, "x-jobq-roles")));
        bool idem = json_is_true(json_object_get(r, "idempotent"));
        if (!CHECK_EQ(has_param(op, "header", "Idempotency-Key"), idem))
            fprintf(stderr, "  Idempotency-Key of %s %s\n", m, pat);
        /* public routes say so (security: []); the others inherit bearer */
        json_t *sec = json_object_get(op, "security");
        bool open = json_array_size(json_object_get(r, "roles")) == 0;
        if (!CHECK_EQ(sec != NULL && json_array_size(sec) == 0, open))
            fprintf(stderr, "  security of %s %s\n", m, pat);
        CHECK(json_object_size(json_object_get(op, "responses")) > 0);
    }

    /* nothing documented that the table lacks; every {name} is a path parameter */
    const char *path;
    json_t *item;
    json_object_foreach(jpath(doc.json, "paths"), path, item) {
        char pat[256];
        to_pattern(path, pat, sizeof pat);
        const char *key;
        json_t *op;
        json_object_foreach(item, key, op) {
            bool is_method = false;
            for (int k = 0; methods[k]; k++)
                is_method |= strcmp(methods[k], key) == 0;
            if (!is_method)
                continue;
            char up[16];
            size_t n = 0;
            for (; key[n] && n + 1 < sizeof up; n++)
                up[n] = (char)toupper((unsigned char)key[n]);
            up[n] = '\0';
            if (!CHECK(find_route(routes, up, pat) != NULL))
                fprintf(stderr, "  %s %s is documented but not in the route table\n", up, path);
            for (const char *b = strchr(path, '{'); b; b = strchr(b + 1, '{')) {
                char name[64];
                const char *e = strchr(b, '}');
                if (!CHECK(e && (size_t)(e - b) < sizeof name))
                    break;
                snprintf(name, sizeof name, "%.*s", (int)(e - b - 1), b + 1);
                if (!CHECK(has_param(op, "path", name)))
                    fprintf(stderr, "  %s %s: no path parameter '%s'\n", up, path, name);
            }
        }
    }
    check_refs(doc.json, doc.json);
    resp_free(&rt);
    resp_free(&doc);
    testsrv_stop(s);
}

TEST(openapi_and_routes_need_a_token)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *u = ts_token(s, "alice", "user");
    struct resp r;
    CHECK_EQ(ts_req(s, "GET", "/v1/openapi.json", NULL, NULL, &r), 401);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/v1/openapi.json", u, NULL, &r), 200);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/v1/admin/routes", u, NULL, &r), 403);
    resp_free(&r);
    testsrv_stop(s);
}

TEST(dashboard_files_are_served_with_their_types)
{
    struct testsrv *s = testsrv_start(NULL);
    static const struct { const char *path, *type, *needle; } files[] = {
        {"/ui", "text/html; charset=utf-8", "<script src=\"/ui/app.js\""},
        {"/ui/index.html", "text/html; charset=utf-8", "/ui/app.css"},
        {"/ui/app.js", "text/javascript; charset=utf-8", "textContent"},
        {"/ui/app.css", "text/css; charset=utf-8", ".badge"},
        {"/ui/favicon.svg", "image/svg+xml", "<svg"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        struct resp r;
        REQUIRE_EQ(ts_req(s, "GET", files[i].path, NULL, NULL, &r), 200);  /* no token */
        CHECK_STR_EQ(r.content_type, files[i].type);
        CHECK_STR_EQ(r.cache_control, "no-cache");
        CHECK(strstr(r.body, files[i].needle) != NULL);
        CHECK(r.etag[0] == '"');
        /* revalidation: the same ETag answers 304 without a body */
        char inm[TS_HDR_MAX + 32];
        snprintf(inm, sizeof inm, "If-None-Match: %s", r.etag);
        const char *h[] = {inm, NULL};
        struct ts_http rq = {.path = files[i].path, .headers = h};
        struct resp r2;
        CHECK_EQ(ts_do(s, &rq, &r2), 304);
        CHECK_EQ(r2.len, 0);
        resp_free(&r2);
        resp_free(&r);
    }
    struct resp r;
    CHECK_EQ(ts_req(s, "GET", "/ui/nope.js", NULL, NULL, &r), 404);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/ui/..%2Fopenapi.json", NULL, NULL, &r), 404);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "POST", "/ui", NULL, NULL, &r), 405);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/ui/app.js?x=1", NULL, NULL, &r), 400);
    resp_free(&r);
    testsrv_stop(s);
}

TEST_MAIN()
