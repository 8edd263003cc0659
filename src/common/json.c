/* json.c - see json.h. */
#include "common/json.h"

bool json_depth_ok(const char *buf, size_t len, int max)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_str) {
            if (c == '\\')
                i++;                 /* skip the escaped byte, whatever it is */
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                return false;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

json_t *json_parse(const char *buf, size_t len)
{
    if (!json_depth_ok(buf, len, JSON_DEPTH_MAX))
        return NULL;
    json_error_t e;
    return json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
}

char *json_dump_compact(const json_t *v)
{
    if (!v)
        return NULL;
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}
