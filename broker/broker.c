/* broker.c - questions about the broker's shared state (see broker.h). */
#include "broker.h"

#include "directory_impl.h"
#include "log.h"
#include "util.h"

#include <stdio.h>

bool broker_member_active(const struct broker *b, const char *id)
{
    casenet_member m;
    return casenet_directory_find(b->dir, id, &m) == CASENET_OK &&
           m.status == CASENET_MEMBER_ACTIVE && m.curve_key_id &&
           cn_directory_has_curve_key(b->dir, id, m.curve_key_id, cn_now_ms());
}

void broker_warn_expiry(const casenet_directory *dir, bool to_stdout)
{
    int64_t exp = casenet_directory_expires_at(dir), left = exp - cn_now_ms();
    if (left > BROKER_EXPIRY_WARN_MS)
        return;
    const char *what = left <= 0 ? "expired at" : "expires at";
    const char *fix = left <= 0 ? "new Submits are refused (DIRECTORY_EXPIRED) until a newer "
                                  "directory arrives: ask the authority for 'casenet admin "
                                  "renew', then publish it or SIGHUP with it as --directory"
                                : "then new Submits are refused: ask the authority for "
                                  "'casenet admin renew' and publish the result";
    log_event(LOG_WARN, left <= 0 ? "directory_expired" : "directory_expiring", "version",
              log_u64(casenet_directory_version(dir)), "expires_at", log_utc(exp), "msg", fix,
              NULL);
    if (to_stdout)
        printf("casenetd: WARNING: directory version %llu %s %s; %s\n",
               (unsigned long long)casenet_directory_version(dir), what, log_utc(exp), fix);
}

bool broker_is_coordinator(const struct broker *b, const char *member)
{
    casenet_member m;
    return casenet_directory_find(b->dir, member, &m) == CASENET_OK &&
           casenet_member_has_role(&m, CN_ROLE_COORDINATOR);
}
