/*
 * dashboard.h - the files compiled into jobqd by embed.cmake: the dashboard
 * (ui/index.html, ui/app.js, ui/app.css, ui/favicon.svg) and openapi.json.
 * The table is generated; server/api/ui.c serves it.
 */
#ifndef JQ_DASHBOARD_H
#define JQ_DASHBOARD_H
#include <stddef.h>

struct dash_file {
    const char *name;               /* "ui/app.js", "openapi.json" */
    const unsigned char *data;      /* len bytes, then a NUL */
    size_t len;
};

extern const struct dash_file dash_files[];
extern const int dash_files_n;

#endif
