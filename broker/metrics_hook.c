/* metrics_hook.c - the dispatcher's counter hook, from request kinds to body cases (see metrics.h).
 */
#include "metrics.h"
#include "request.h"

void metrics_on_done(void *ctx, size_t kind, int code)
{
    (void)ctx;
    size_t n;
    const struct req_kind *k = req_kinds(&n);
    metrics_request(kind < n ? k[kind].body_case : 0, code);
}
