/* error.c - the error enum's names and texts, library initialisation and the
 * one buffer type handed out by libcasenet. */
#include "casenet.h"

#include <sodium.h>
#include <stdlib.h>

struct err_row {
    int code;
    const char *name;
    const char *text;
};

static const struct err_row errors[] = {
    {CASENET_OK, "OK", "success"},
    {CASENET_EBADREQ, "BAD_REQUEST", "malformed or invalid input"},
    {CASENET_EUNAUTH, "UNAUTHENTICATED", "key unknown, suspended or revoked"},
    {CASENET_EFORBIDDEN, "FORBIDDEN", "not allowed for this member"},
    {CASENET_ENOTFOUND, "NOT_FOUND", "not found"},
    {CASENET_ECONFLICT, "CONFLICT", "conflicts with what is already recorded"},
    {CASENET_ETOOLARGE, "TOO_LARGE", "over a size or count limit"},
    {CASENET_ERATELIMIT, "RATE_LIMITED", "rate limited, retry later"},
    {CASENET_EUNAVAIL, "UNAVAILABLE", "broker unavailable, retry later"},
    {CASENET_EBADSIG, "BAD_SIGNATURE", "signature does not verify"},
    {CASENET_EUNKNOWNRCPT, "UNKNOWN_RECIPIENT", "recipient unknown or not active"},
    {CASENET_ECLOCKSKEW, "CLOCK_SKEW", "clock too far from the broker's"},
    {CASENET_EVERSION, "VERSION", "unsupported protocol or format version"},
    {CASENET_ESTALEDIR, "STALE_DIRECTORY", "sealed with an older directory than the broker's"},
    {CASENET_EDIREXPIRED, "DIRECTORY_EXPIRED", "the broker's directory expired"},
    {CASENET_EQUOTA, "QUOTA_EXCEEDED", "storage quota at the broker used up"},
    {CASENET_ENOMEM, "NOMEM", "out of memory"},
    {CASENET_EIO, "IO", "input/output error"},
    {CASENET_ECRYPTO, "CRYPTO", "decryption failed"},
    {CASENET_EEXPIRED, "EXPIRED", "directory expired"},
    {CASENET_EROLLBACK, "ROLLBACK", "directory older than one already seen"},
    {CASENET_ETIMEDOUT, "TIMEDOUT", "timed out"},
    {CASENET_EINVAL, "INVALID", "invalid argument"},
    {CASENET_ENOTRECIPIENT, "NOT_RECIPIENT", "not a recipient of this message"},
    {CASENET_EPERM, "PERMISSIONS", "secret key file is accessible to group or others"},
    {CASENET_ECOMMIT, "KEY_COMMITMENT", "key commitment does not match"},
    {CASENET_EKEYRETIRED, "RETIRED_KEY_MISSING",
     "wrapped to a retired box key that the keyring no longer holds"},
    {CASENET_EKEYUNKNOWN, "UNKNOWN_KEY", "wrapped to a box key that the keyring never held"},
};

static const struct err_row *find(int err)
{
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        if (errors[i].code == err)
            return &errors[i];
    }
    return NULL;
}

const char *casenet_strerror(int err)
{
    const struct err_row *r = find(err);
    return r ? r->text : "unknown error";
}

const char *casenet_errname(int err)
{
    const struct err_row *r = find(err);
    return r ? r->name : "UNKNOWN";
}

int casenet_init(void)
{
    return sodium_init() < 0 ? CASENET_ECRYPTO : CASENET_OK;
}

void casenet_buf_free(casenet_buf *b)
{
    if (!b)
        return;
    if (b->data) {
        sodium_memzero(b->data, b->len);
        free(b->data);
    }
    b->data = NULL;
    b->len = 0;
}
