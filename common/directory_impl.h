/*
 * directory_impl.h - directory lookups other libcasenet modules need beyond
 * the public API: key validity windows and box keys by id. Internal.
 */
#ifndef CASENET_DIRECTORY_IMPL_H
#define CASENET_DIRECTORY_IMPL_H

#include "casenet.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Roles a directory member may hold that code checks by name. The
 * coordinator sees every message's status, the whole audit log and the
 * overdue list, and receives escalations. */
#define CN_ROLE_BROKER      "broker"
#define CN_ROLE_COORDINATOR "coordinator"

/* The largest directory file anyone reads (cn_read_file's max). */
#define DIRECTORY_MAX (16u * 1024u * 1024u)

/* How far before its admission a new key may be valid (PROTOCOL.md §3.4):
 * the broker's default clock-skew limit, 10 minutes. */
#define CN_KEY_ADMISSION_LEEWAY_MS (10 * 60 * 1000)

/* True when member id lists a box key with id key_id that is valid at at_ms
 * (valid_from_ms <= at_ms and, when bounded, at_ms < valid_until_ms). */
bool cn_directory_has_box_key(const casenet_directory *d, const char *id, const char *key_id,
                              int64_t at_ms);

/* Where box key key_id of member id stands at at_ms: not listed; valid (as
 * cn_directory_has_box_key); retired (valid_until_ms <= at_ms: the authority replaced it, so a
 * sender still using it sealed with an older directory); or not valid yet. */
enum cn_key_state { CN_KEY_ABSENT, CN_KEY_VALID, CN_KEY_RETIRED, CN_KEY_NOT_YET };
enum cn_key_state cn_directory_box_key_state(const casenet_directory *d, const char *id,
                                             const char *key_id, int64_t at_ms);

/* The same for a CURVE (transport) key: the broker's ZAP handler asks it at
 * every handshake, so a key past its valid_until is refused although the
 * directory was parsed while it was valid. */
bool cn_directory_has_curve_key(const casenet_directory *d, const char *id, const char *key_id,
                                int64_t at_ms);

/* The rules between a directory and the next one a holder accepts (the
 * broker on publish, SIGHUP and start; the CLI on directory update / pull),
 * beyond a higher version: a member revoked in prev is listed and revoked
 * in next (revocation is final), and the audit network (see
 * cn_directory_audit_network) does not change once prev has one (the audit
 * log's origin is fixed). CASENET_ECONFLICT with the reason in why. */
CASENET_NODISCARD int cn_directory_check_successor(const casenet_directory *prev,
                                                   const casenet_directory *next, char *why,
                                                   size_t whylen);

/* casenet_directory_parse with expiry checking optional: the authority
 * verifies its own current directory this way before changing it. */
CASENET_NODISCARD int cn_directory_parse_ex(const uint8_t *buf, size_t len,
                                            const uint8_t authority_pk[32], int64_t now_ms,
                                            uint64_t min_version, bool check_expiry,
                                            casenet_directory **out);

/* The network name of the audit log (checkpoint origin "casenet.audit/" +
 * name, PROTOCOL.md §10.3): the directory's network, or the broker's member
 * id when the directory names none. NULL when it lists no broker either.
 * Borrowed from d. */
const char *cn_directory_audit_network(const casenet_directory *d);

/* True when name is a known member role. */
bool cn_role_known(const char *name);

#endif
