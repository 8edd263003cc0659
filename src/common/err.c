/* err.c - the code strings of jq_err (see err.h). */
#include "common/err.h"

static const char *const codes[] = {
#define X(n, s) s,
    JQ_ERRORS(X)
#undef X
};

const char *jq_err_code(jq_err e)
{
    if ((unsigned)e >= JQ_E__COUNT)
        return "internal";
    return codes[e];
}
