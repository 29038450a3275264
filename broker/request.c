/* request.c - the helpers every handler answers with (see request.h). */
#include "request.h"

#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int req_fail(struct req *r, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    return err;
}

int req_store_fail(struct req *r, int err, const char *what)
{
    if (err == CASENET_EUNAVAIL)
        r->bt->store_failed = true;
    return req_fail(r, err == CASENET_ENOMEM ? CASENET_ENOMEM : CASENET_EUNAVAIL,
                    "the broker could not %s; retry later", what);
}

int req_pack(Casenet__V1__Response *resp, casenet_buf *out)
{
    size_t len = casenet__v1__response__get_packed_size(resp);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return CASENET_ENOMEM;
    casenet__v1__response__pack(resp, buf);
    out->data = buf;
    out->len = len;
    return CASENET_OK;
}

int req_reply(struct req *r)
{
    return req_pack(&r->resp, &r->out);
}

int req_wire_code(int err)
{
    if ((err >= CASENET_EBADREQ && err <= CASENET_EVERSION) || err == CASENET_EDIREXPIRED ||
        err == CASENET_EQUOTA)
        return err;
    switch (err) {
    case CASENET_ESTALEDIR:
        return err;
    case CASENET_EEXPIRED:
    case CASENET_EINVAL:
    case CASENET_ENOTRECIPIENT:
    case CASENET_ECOMMIT:
    case CASENET_ECRYPTO:
    case CASENET_EPERM:
        return CASENET__V1__ERROR_CODE__ERROR_CODE_BAD_REQUEST;
    case CASENET_EROLLBACK:
        return CASENET__V1__ERROR_CODE__ERROR_CODE_CONFLICT;
    default:
        return CASENET__V1__ERROR_CODE__ERROR_CODE_UNAVAILABLE;
    }
}

int req_error_reply(uint64_t request_id, int err, const char *message, uint32_t retry_after_ms,
                    uint64_t stale_version, casenet_buf *out)
{
    Casenet__V1__Response r = CASENET__V1__RESPONSE__INIT;
    Casenet__V1__Error e = CASENET__V1__ERROR__INIT;
    r.protocol_version = BROKER_PROTOCOL_VERSION;
    r.request_id = request_id;
    e.code = (Casenet__V1__ErrorCode)req_wire_code(err);
    e.message = (char *)(message && *message ? message : casenet_strerror(err));
    if (e.code == CASENET__V1__ERROR_CODE__ERROR_CODE_UNAVAILABLE ||
        e.code == CASENET__V1__ERROR_CODE__ERROR_CODE_RATE_LIMITED)
        e.retry_after_ms = retry_after_ms ? retry_after_ms : 1000;
    if (e.code == CASENET__V1__ERROR_CODE__ERROR_CODE_STALE_DIRECTORY)
        e.directory_version = stale_version;
    r.error = &e;
    return req_pack(&r, out);
}

int req_limits(struct req *r, enum limits_class cls)
{
    uint32_t retry = 0;
    bool first = false;
    int rc = limits_take(r->b->limits, cls, r->member, cn_mono_ms(), &retry, &first);
    if (rc == CASENET_OK)
        return rc;
    if (rc == CASENET_ENOMEM)
        return req_fail(r, rc, "out of memory; retry later");
    const struct limits_rate *rate = &r->b->cfg->limits.rate[cls];
    r->retry_after_ms = retry;
    r->no_audit = !first;
    return req_fail(r, CASENET_ERATELIMIT,
                    "more than %u %s requests per minute (burst %u) from %s; retry after %u ms",
                    rate->per_min, limits_class_name(cls), rate->burst, r->member, retry);
}

/* Logs a low disk at most every 10 s. */
static void log_disk_low(uint64_t avail_kb, uint64_t floor_kb, enum limits_class cls)
{
    static int64_t last;
    int64_t now = cn_mono_ms();
    if (last && now - last < 10000)
        return;
    last = now;
    log_event(LOG_ERROR, "disk_low", "available_kb", log_u64(avail_kb), "floor_kb",
              log_u64(floor_kb), "class", limits_class_name(cls), "msg",
              "members' requests of this class refused until space is freed", NULL);
}

int req_disk_check(struct req *r, enum limits_class cls)
{
    struct batch *bt = r->bt;
    const struct broker_limits *lim = &r->b->cfg->limits;
    if (lim->min_free_mb == 0)
        return CASENET_OK;
    if (!bt->disk_checked) {
        bt->disk_avail_kb = limits_disk_avail_kb(r->b->cfg->data_dir);
        bt->disk_checked = true;
    }
    uint64_t floor = limits_disk_floor_kb(lim->min_free_mb, cls);
    if (bt->disk_avail_kb >= floor)
        return CASENET_OK;
    r->retry_after_ms = LIMITS_DISK_RETRY_MS;
    r->no_audit = true;
    log_disk_low(bt->disk_avail_kb, floor, cls);
    return req_fail(r, CASENET_EUNAVAIL,
                    "the broker's disk is nearly full; nothing was stored; retry later");
}
