/*
 * casenet.h - the whole public contract of libcasenet: member keys, the signed
 * directory, the end-to-end envelope, receipts, payload JSON, the broker
 * connection and its audit log requests.
 *
 * Conventions, for every function here:
 *  - int results are casenet_err values: 0 on success, a positive code on
 *    failure; casenet_strerror() names it.
 *  - Output parameters are written only on success; on failure the caller
 *    keeps ownership of everything it passed and owns nothing new.
 *  - Byte buffers handed out are casenet_buf; release them with
 *    casenet_buf_free(), which wipes before freeing. Every *_free accepts NULL.
 *  - Times are milliseconds since the Unix epoch (int64_t).
 *  - Call casenet_init() once before anything else.
 */
#ifndef CASENET_H
#define CASENET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CASENET_BUILDING)
#define CASENET_API __attribute__((visibility("default")))
#else
#define CASENET_API
#endif
#define CASENET_NODISCARD __attribute__((warn_unused_result))

/* ------------------------------------------------------------------ errors */

/* One error enum. 1..15 are the wire error codes of proto ErrorCode (same
 * numbers); 100 and up are local conditions that never travel. */
typedef enum casenet_err {
    CASENET_OK = 0,
    CASENET_EBADREQ = 1,         /* malformed or structurally invalid input */
    CASENET_EUNAUTH = 2,         /* unknown, suspended or revoked key */
    CASENET_EFORBIDDEN = 3,      /* authenticated but not allowed */
    CASENET_ENOTFOUND = 4,       /* no such message, member or key */
    CASENET_ECONFLICT = 5,       /* same message id, other bytes; bad transition */
    CASENET_ETOOLARGE = 6,       /* over a size or count limit */
    CASENET_ERATELIMIT = 7,      /* slow down, see retry-after */
    CASENET_EUNAVAIL = 8,        /* broker cannot serve now (disk full, stopping) */
    CASENET_EBADSIG = 9,         /* a signature does not verify */
    CASENET_EUNKNOWNRCPT = 10,   /* recipient not in the directory or not active */
    CASENET_ECLOCKSKEW = 11,     /* created_at too far from the broker's clock */
    CASENET_EVERSION = 12,       /* protocol or envelope version not supported */
    CASENET_ESTALEDIR = 13,      /* sealed to a recipient key the directory has retired */
    CASENET_EDIREXPIRED = 14,    /* the broker's directory expired: no new Submits */
    CASENET_EQUOTA = 15,         /* the member's storage quota at the broker is used up */
    CASENET_ENOMEM = 100,        /* out of memory */
    CASENET_EIO = 101,           /* file or socket I/O failed */
    CASENET_ECRYPTO = 102,       /* decryption or key unwrapping failed */
    CASENET_EEXPIRED = 103,      /* directory expired */
    CASENET_EROLLBACK = 104,     /* directory older than one already seen */
    CASENET_ETIMEDOUT = 105,     /* no answer in time */
    CASENET_EINVAL = 106,        /* invalid argument (caller error, bad JSON) */
    CASENET_ENOTRECIPIENT = 107, /* the reader is not a listed recipient */
    CASENET_EPERM = 108,         /* secret key file readable by group or others */
    CASENET_ECOMMIT = 109,       /* key commitment mismatch */
    CASENET_EKEYRETIRED = 110,   /* wrapped to a retired box key the keyring lost */
    CASENET_EKEYUNKNOWN = 111,   /* wrapped to a box key the keyring never held */
} casenet_err;

/* A static English description of err ("unknown error" for other values). */
CASENET_API const char *casenet_strerror(int err);
/* The stable wire name of err ("BAD_REQUEST", ..., "NOMEM"), for logs. */
CASENET_API const char *casenet_errname(int err);

/* Initialises libsodium; safe to call more than once. */
CASENET_API CASENET_NODISCARD int casenet_init(void);

/* ------------------------------------------------------------------ sizes */

#define CASENET_SIGN_PK_BYTES     32
#define CASENET_SIGN_SK_BYTES     64
#define CASENET_SIGNATURE_BYTES   64
#define CASENET_BOX_PK_BYTES      32
#define CASENET_BOX_SK_BYTES      32
#define CASENET_CURVE_KEY_BYTES   32
#define CASENET_CONTENT_KEY_BYTES 32
#define CASENET_NONCE_BYTES       24
#define CASENET_HASH_BYTES        32
#define CASENET_MESSAGE_ID_BYTES  16
#define CASENET_CASE_REF_BYTES    16
#define CASENET_SEALED_KEY_BYTES  80
#define CASENET_KEY_ID_CHARS      16 /* hex of 8 bytes, without the NUL */
#define CASENET_MEMBER_ID_MAX     64 /* [a-z0-9][a-z0-9.-]{1,63} */
#define CASENET_MAX_RECIPIENTS    256
#define CASENET_MAX_PAYLOAD_BYTES (4u * 1024u * 1024u)
#define CASENET_BLOB_ID_BYTES     16
#define CASENET_MAX_BLOBS         64 /* blob ids in one header */

/* ------------------------------------------------------------------ buffers */

typedef struct casenet_buf {
    uint8_t *data;
    size_t len;
} casenet_buf;

/* Wipes and frees b->data, then zeroes *b. Accepts NULL and empty buffers. */
CASENET_API void casenet_buf_free(casenet_buf *b);

/* ------------------------------------------------------------------ enums */
/* Numbers equal the proto enums of the same names. */

typedef enum casenet_kind {
    CASENET_KIND_REFERRAL = 1,
    CASENET_KIND_STATUS = 2,
    CASENET_KIND_INFO_REQUEST = 3,
    CASENET_KIND_INFO_RESPONSE = 4,
    CASENET_KIND_TAKEDOWN_REQUEST = 5,
    CASENET_KIND_TAKEDOWN_RESULT = 6,
    CASENET_KIND_CORRECTION = 7,
    CASENET_KIND_WITHDRAW = 8,
    CASENET_KIND_ERASE = 9,
    CASENET_KIND_HASH_SHARE = 10,
    CASENET_KIND_ESCALATION = 11,
    CASENET_KIND_DEAD_LETTER = 12,
    CASENET_KIND_RECEIPT = 20,
} casenet_kind;

typedef enum casenet_urgency {
    CASENET_URGENCY_EMERGENCY = 1,
    CASENET_URGENCY_URGENT_TAKEDOWN = 2,
    CASENET_URGENCY_STANDARD = 3,
    CASENET_URGENCY_INFO = 4,
} casenet_urgency;

typedef enum casenet_msg_status {
    CASENET_MSG_ACTUAL = 1,
    CASENET_MSG_EXERCISE = 2,
    CASENET_MSG_TEST = 3,
} casenet_msg_status;

typedef enum casenet_member_status {
    CASENET_MEMBER_ACTIVE = 1,
    CASENET_MEMBER_SUSPENDED = 2,
    CASENET_MEMBER_REVOKED = 3,
} casenet_member_status;

typedef enum casenet_receipt_status {
    CASENET_RECEIPT_DELIVERED = 1,
    CASENET_RECEIPT_ACCEPTED = 2,
    CASENET_RECEIPT_DECLINED = 3,
    CASENET_RECEIPT_COMPLETED = 4,
} casenet_receipt_status;

/* Lower-case names as used on the command line and in JSON output
 * ("referral", "emergency", "actual", "delivered", ...), and back. The
 * *_parse functions return 0 on success, CASENET_EINVAL for unknown names. */
CASENET_API const char *casenet_kind_name(int kind);
CASENET_API const char *casenet_urgency_name(int urgency);
CASENET_API const char *casenet_msg_status_name(int status);
CASENET_API const char *casenet_receipt_status_name(int status);
CASENET_API CASENET_NODISCARD int casenet_kind_parse(const char *name, casenet_kind *out);
CASENET_API CASENET_NODISCARD int casenet_urgency_parse(const char *name, casenet_urgency *out);
CASENET_API CASENET_NODISCARD int casenet_msg_status_parse(const char *name,
                                                           casenet_msg_status *out);
CASENET_API CASENET_NODISCARD int casenet_receipt_status_parse(const char *name,
                                                               casenet_receipt_status *out);

/* What a COMPLETED receipt says happened (proto CompletionOutcome): a code,
 * because a receipt stays in clear in the broker's append-only log; words
 * go in an encrypted STATUS note the receipt names (casenet_receipt.note_id). */
typedef enum casenet_outcome {
    CASENET_OUTCOME_NONE = 0,
    CASENET_OUTCOME_RESOLVED = 1,
    CASENET_OUTCOME_REFERRED_ONWARD = 2,
    CASENET_OUTCOME_NO_ACTION_NEEDED = 3,
    CASENET_OUTCOME_UNABLE_TO_ACT = 4,
    CASENET_OUTCOME_WITHDRAWN = 5,
} casenet_outcome;

/* "resolved", "referred-onward", "no-action-needed", "unable-to-act",
 * "withdrawn"; "none" for 0 and "unknown" for anything else. */
CASENET_API const char *casenet_outcome_name(int outcome);
/* The inverse of casenet_outcome_name for the five codes (not "none");
 * CASENET_EINVAL otherwise. */
CASENET_API CASENET_NODISCARD int casenet_outcome_parse(const char *name, casenet_outcome *out);

/* True when reason is one of the codes a DECLINED receipt carries:
 * "not-competent", "duplicate", "insufficient-information", "redirected". */
CASENET_API bool casenet_decline_reason_valid(const char *reason);

/* True when id matches [a-z0-9][a-z0-9.-]{1,63}. */
CASENET_API bool casenet_member_id_valid(const char *id);

/* ------------------------------------------------------------------ keys */

/* A member's (or the authority's) keyring: secret keys in sodium_malloc'd
 * memory, wiped by casenet_keys_free(). */
typedef struct casenet_keys casenet_keys;

/* Generates a member keyring (Ed25519 signing, X25519 box, CURVE transport)
 * for member_id, created at now_ms. */
CASENET_API CASENET_NODISCARD int casenet_keys_generate(const char *member_id, int64_t now_ms,
                                                        casenet_keys **out);
/* Generates the authority's keyring: one Ed25519 signing key, id "authority". */
CASENET_API CASENET_NODISCARD int casenet_keys_generate_authority(int64_t now_ms,
                                                                  casenet_keys **out);
/* Writes the secret keyring to secret_path (mode 0600, written to a temporary
 * file, fsynced and renamed) and, when public_path is not NULL, the
 * PublicKeyFile to public_path (0644). Refuses to overwrite an existing
 * secret file (CASENET_EINVAL). */
CASENET_API CASENET_NODISCARD int casenet_keys_save(const casenet_keys *k, const char *secret_path,
                                                    const char *public_path);
/* casenet_keys_save that replaces an existing secret file (atomically: a
 * reader sees the old keyring or the new one, never neither), for a keyring
 * loaded from it and rotated. */
CASENET_API CASENET_NODISCARD int
casenet_keys_save_replace(const casenet_keys *k, const char *secret_path, const char *public_path);
/* Key rotation, member side: adds a fresh key pair of each use (signing,
 * box, CURVE) to member keyring k; they become its current keys (created at
 * now_ms, or just after the newest pair held if the clock went back). Every
 * older pair stays: old box keys open mail already wrapped to them, old
 * signing keys are kept for reference. *retired_box (may be NULL) gets the
 * number of older box keys kept. CASENET_EINVAL for the authority's keyring,
 * CASENET_ETOOLARGE when k would hold more than 64 pairs, CASENET_ENOMEM; on
 * failure k is unchanged. */
CASENET_API CASENET_NODISCARD int casenet_keys_rotate(casenet_keys *k, int64_t now_ms,
                                                      size_t *retired_box);
/* Loads a secret keyring. CASENET_EPERM when the file is group- or
 * world-accessible, CASENET_EIO when unreadable, CASENET_EBADREQ when
 * malformed. */
CASENET_API CASENET_NODISCARD int casenet_keys_load(const char *secret_path, casenet_keys **out);
/* The keyring's member id (borrowed). */
CASENET_API const char *casenet_keys_member_id(const casenet_keys *k);
/* The serialised PublicKeyFile for k (what ID.pub holds). */
CASENET_API CASENET_NODISCARD int casenet_keys_public_file(const casenet_keys *k, casenet_buf *out);
/* The current signing public key (32 B, borrowed) and its key id. */
CASENET_API const uint8_t *casenet_keys_sign_pk(const casenet_keys *k, const char **key_id);
/* The current CURVE transport key pair (32 B each, borrowed); NULL for the
 * authority. */
CASENET_API const uint8_t *casenet_keys_curve_pk(const casenet_keys *k);
CASENET_API const uint8_t *casenet_keys_curve_sk(const casenet_keys *k);
CASENET_API void casenet_keys_free(casenet_keys *k);

/* Reads a PublicKeyFile (ID.pub or authority.pub). For the authority's file
 * it returns its signing key in authority_pk. */
CASENET_API CASENET_NODISCARD int casenet_authority_pk_load(const char *path,
                                                            uint8_t authority_pk[32]);

/* ------------------------------------------------------------------ directory */

typedef struct casenet_directory casenet_directory;

/* A directory member, borrowed from the directory: valid while it lives.
 * The *_pk fields are the member's current keys of each use (the newest one
 * valid now), NULL when it has none. */
typedef struct casenet_member {
    const char *id;
    const char *display_name;
    casenet_member_status status;
    size_t n_roles;
    const char *const *roles;
    size_t n_groups;
    const char *const *groups;
    const uint8_t *sign_pk;
    const char *sign_key_id;
    const uint8_t *box_pk;
    const char *box_key_id;
    const uint8_t *curve_pk;
    const char *curve_key_id;
} casenet_member;

/* Parses and verifies a serialised SignedDirectory against the pinned
 * authority key: CASENET_EBADSIG when the signature fails, CASENET_EEXPIRED
 * when expires_at_ms <= now_ms, CASENET_EROLLBACK when its version is below
 * min_version, CASENET_EBADREQ when malformed (bad member id, duplicate id,
 * key of the wrong size). The directory keeps a copy of the signed bytes. */
CASENET_API CASENET_NODISCARD int casenet_directory_parse(const uint8_t *buf, size_t len,
                                                          const uint8_t authority_pk[32],
                                                          int64_t now_ms, uint64_t min_version,
                                                          casenet_directory **out);
CASENET_API void casenet_directory_free(casenet_directory *d);
CASENET_API uint64_t casenet_directory_version(const casenet_directory *d);
CASENET_API int64_t casenet_directory_issued_at(const casenet_directory *d);
CASENET_API int64_t casenet_directory_expires_at(const casenet_directory *d);
/* The exact signed bytes it was parsed from (borrowed). */
CASENET_API const uint8_t *casenet_directory_bytes(const casenet_directory *d, size_t *len);
CASENET_API size_t casenet_directory_count(const casenet_directory *d);
/* Member i (0 <= i < count) or the member named id; CASENET_ENOTFOUND. */
CASENET_API CASENET_NODISCARD int casenet_directory_at(const casenet_directory *d, size_t i,
                                                       casenet_member *out);
CASENET_API CASENET_NODISCARD int casenet_directory_find(const casenet_directory *d, const char *id,
                                                         casenet_member *out);
/* The member with role "broker"; CASENET_ENOTFOUND when none. */
CASENET_API CASENET_NODISCARD int casenet_directory_broker(const casenet_directory *d,
                                                           casenet_member *out);
/* The member whose CURVE public key is curve_pk (for ZAP). */
CASENET_API CASENET_NODISCARD int casenet_directory_find_curve(const casenet_directory *d,
                                                               const uint8_t curve_pk[32],
                                                               casenet_member *out);
/* The signing key key_id of member id, valid at at_ms (old keys still verify
 * old messages); CASENET_ENOTFOUND. pk is borrowed. */
CASENET_API CASENET_NODISCARD int casenet_directory_sign_key(const casenet_directory *d,
                                                             const char *id, const char *key_id,
                                                             int64_t at_ms, const uint8_t **pk);
/* True when member m has role (or group, for the second) name. */
CASENET_API bool casenet_member_has_role(const casenet_member *m, const char *role);
CASENET_API bool casenet_member_in_group(const casenet_member *m, const char *group);

/* What the authority says about a member when adding it. */
typedef struct casenet_member_spec {
    const char *display_name; /* NULL = the id */
    const char *const *roles;
    size_t n_roles;
    const char *const *groups;
    size_t n_groups;
} casenet_member_spec;

/* Authority operations. Each takes the current signed directory (NULL or
 * empty for none), applies one change, sets version = old version + 1,
 * issued_at = now_ms, expires_at = now_ms + validity_ms, and signs with the
 * authority keyring. The current directory is verified with the authority's
 * own key first (expiry is not checked, so an expired one can be renewed).
 * Unknown roles and invalid ids are CASENET_EINVAL; adding an id that exists
 * replaces its keys and attributes (re-admission after key rotation).
 * Revocation is final: adding or changing the status of a revoked member is
 * CASENET_ECONFLICT (re-admission is a new key under a new id), and
 * suspending or revoking the member with role broker is CASENET_EFORBIDDEN
 * (the broker is replaced by adding a new broker entry). */
CASENET_API CASENET_NODISCARD int
casenet_directory_add_member(const casenet_keys *authority, const uint8_t *current,
                             size_t current_len, const uint8_t *public_file, size_t public_len,
                             const casenet_member_spec *spec, int64_t now_ms, int64_t validity_ms,
                             casenet_buf *out);
CASENET_API CASENET_NODISCARD int
casenet_directory_set_status(const casenet_keys *authority, const uint8_t *current,
                             size_t current_len, const char *member_id,
                             casenet_member_status status, int64_t now_ms, int64_t validity_ms,
                             casenet_buf *out);
/* Re-signs the current directory unchanged but for a higher version, issued
 * now_ms and expiring at now_ms + validity_ms (casenet admin renew). */
CASENET_API CASENET_NODISCARD int casenet_directory_renew(const casenet_keys *authority,
                                                          const uint8_t *current,
                                                          size_t current_len, int64_t now_ms,
                                                          int64_t validity_ms, casenet_buf *out);
/* Signs version 1 of a new network's directory: no members, network name
 * `network` (the audit log's origin, PROTOCOL.md §10.3; a member-id-like
 * name, CASENET_EINVAL otherwise). Later operations keep the name. */
CASENET_API CASENET_NODISCARD int casenet_directory_create(const casenet_keys *authority,
                                                           const char *network, int64_t now_ms,
                                                           int64_t validity_ms, casenet_buf *out);

/* ------------------------------------------------------------------ envelope */

typedef struct casenet_seal_opts {
    casenet_kind kind;
    casenet_urgency urgency;   /* 0 = standard */
    casenet_msg_status status; /* 0 = actual */
    const char *const *to;     /* member ids or "@group" (the group's active members) */
    size_t n_to;
    const uint8_t *in_reply_to; /* NULL or CASENET_MESSAGE_ID_BYTES */
    const uint8_t *case_ref;    /* NULL or CASENET_CASE_REF_BYTES */
    int64_t created_at_ms;      /* 0 = now */
    int64_t expires_at_ms;      /* 0 = never */
    /* The blobs the payload's attachments name (casenet_attachment.blob_id),
     * listed in the signed header so the broker knows them: NULL / 0 when
     * none; duplicates are CASENET_EINVAL. */
    const uint8_t (*blob_ids)[CASENET_BLOB_ID_BYTES];
    size_t n_blob_ids;
} casenet_seal_opts;

/* Metadata of a verified envelope. Owned by the caller: release with
 * casenet_message_info_clear(). */
typedef struct casenet_message_info {
    uint8_t message_id[CASENET_MESSAGE_ID_BYTES];
    char sender[CASENET_MEMBER_ID_MAX + 1];
    char sign_key_id[CASENET_KEY_ID_CHARS + 1];
    casenet_kind kind;
    casenet_urgency urgency;
    casenet_msg_status status;
    int64_t created_at_ms;
    int64_t expires_at_ms;
    bool has_in_reply_to;
    uint8_t in_reply_to[CASENET_MESSAGE_ID_BYTES];
    bool has_case_ref;
    uint8_t case_ref[CASENET_CASE_REF_BYTES];
    size_t n_recipients;
    char **recipients;
    uint8_t envelope_hash[CASENET_HASH_BYTES]; /* SHA-256 of the envelope bytes */
    size_t ciphertext_len;
    size_t n_blob_ids; /* the header's blob ids, unique (PROTOCOL.md §4.9) */
    uint8_t (*blob_ids)[CASENET_BLOB_ID_BYTES];
} casenet_message_info;

CASENET_API void casenet_message_info_clear(casenet_message_info *info);

/* Seals payload (a serialised Payload whose oneof matches opts->kind) from
 * the sender to the recipients, with their box keys from the directory.
 * Recipients are de-duplicated; each must be an active member
 * (CASENET_EUNKNOWNRCPT otherwise); an empty list is CASENET_EINVAL; the
 * sender itself is CASENET_EFORBIDDEN (a "@group" leaves the sender out).
 * A payload that breaks casenet_payload_check is CASENET_EINVAL (call it
 * first for the message); when opts->urgency is 0 the header takes the
 * urgency the payload states (standard when it states none). The sender's
 * roles must allow kind to every recipient (casenet_role_check,
 * CASENET_EFORBIDDEN), and a HASH_SHARE contribution needs a contributor
 * (casenet_hash_share_check, CASENET_EFORBIDDEN).
 * On success *envelope holds the serialised Envelope and message_id (when not
 * NULL) its id. */
CASENET_API CASENET_NODISCARD int
casenet_seal(const casenet_keys *sender, const casenet_directory *dir,
             const casenet_seal_opts *opts, const uint8_t *payload, size_t payload_len,
             casenet_buf *envelope, uint8_t message_id[CASENET_MESSAGE_ID_BYTES]);

/* Checks an envelope as the broker does, without opening it: parses, checks
 * every structural rule (version, sizes, recipients unique and active, exactly
 * one wrapped key per recipient and no other, ciphertext hash) and the
 * sender's signature against the directory key named by sign_key_id.
 * Returns CASENET_EBADREQ, CASENET_EVERSION, CASENET_EUNKNOWNRCPT,
 * CASENET_EUNAUTH (sender unknown or not active), CASENET_EFORBIDDEN (kind
 * ESCALATION or DEAD_LETTER from a member without role broker) or
 * CASENET_EBADSIG; an envelope that passes all of these but wraps a key to
 * a recipient box key the directory retired before created_at is
 * CASENET_ESTALEDIR (sealed with an older directory: reseal with the
 * current one). Fills info on success. It does not apply the role matrix
 * (casenet_role_check) nor, not seeing the plaintext, the payload rules. */
CASENET_API CASENET_NODISCARD int casenet_envelope_verify(const casenet_directory *dir,
                                                          const uint8_t *envelope, size_t len,
                                                          casenet_message_info *info);

/* Opens an envelope for reader: everything casenet_envelope_verify checks,
 * then that the reader is a listed recipient (CASENET_ENOTRECIPIENT), that
 * the keyring holds the box key its wrapped key names (else
 * CASENET_EKEYRETIRED when the directory lists that key as a retired one of
 * the reader's, CASENET_EKEYUNKNOWN otherwise: the keyring was replaced
 * instead of rotated, or is not the one admitted; never CASENET_ECRYPTO),
 * unwraps the content key (CASENET_ECRYPTO), checks the key commitment in
 * constant time (CASENET_ECOMMIT), decrypts (CASENET_ECRYPTO) and parses the
 * payload, which must match the header's kind (CASENET_EBADREQ). On success
 * *payload holds the serialised Payload. */
CASENET_API CASENET_NODISCARD int casenet_open(const casenet_keys *reader,
                                               const casenet_directory *dir,
                                               const uint8_t *envelope, size_t len,
                                               casenet_message_info *info, casenet_buf *payload);
/* The box key id of the wrapped key addressed to member in envelope, read
 * without verifying anything (to name the key in an error message after
 * casenet_open failed with CASENET_EKEYRETIRED or CASENET_EKEYUNKNOWN).
 * CASENET_EBADREQ when unparsable, CASENET_ENOTRECIPIENT when none is. */
CASENET_API CASENET_NODISCARD int
casenet_envelope_box_key_id(const uint8_t *envelope, size_t len, const char *member,
                            char key_id[CASENET_KEY_ID_CHARS + 1]);
/* casenet_open, and on failure a sentence in err (NUL-terminated, truncated
 * to errlen; may be NULL) where the code alone does not say what is wrong:
 * the required fields the payload lacks, or its urgency against the
 * header's. */
CASENET_API CASENET_NODISCARD int
casenet_open_detail(const casenet_keys *reader, const casenet_directory *dir,
                    const uint8_t *envelope, size_t len, casenet_message_info *info,
                    casenet_buf *payload, char *err, size_t errlen);

/* Checks a serialised Payload against the rules of its kind (PROTOCOL.md
 * §6): its oneof matches kind, it carries every field its kind requires, and
 * the urgency it states (a referral's, a correction's referral's, a broker
 * notice's) equals urgency (the header's; 0 reads as standard).
 * CASENET_EBADREQ otherwise, with err (as above) naming every missing field
 * ("the referral lacks caseId, harmCategories, legalBasis.kind") or both
 * urgencies. casenet_seal and casenet_open apply it. */
CASENET_API CASENET_NODISCARD int casenet_payload_check(const uint8_t *payload, size_t len,
                                                        casenet_kind kind, casenet_urgency urgency,
                                                        char *err, size_t errlen);
/* The urgency a serialised Payload states in *out, 0 when its kind states
 * none (only referrals, corrections carrying a referral and broker notices
 * do) or it leaves it unset. CASENET_EBADREQ when it does not parse. */
CASENET_API CASENET_NODISCARD int casenet_payload_urgency(const uint8_t *payload, size_t len,
                                                          casenet_urgency *out);

/* The role matrix (PROTOCOL.md §6.1): true when a member with sender's roles
 * may send a message of kind to a member with recipient's roles. Nobody
 * sends to the member with role broker. */
CASENET_API bool casenet_role_may_send(const casenet_member *sender, int kind,
                                       const casenet_member *recipient);
/* The role matrix for a whole message: CASENET_EFORBIDDEN when sender may not
 * send kind to one of the n recipients (member ids), with err (as above)
 * naming the roles; CASENET_EUNAUTH or CASENET_EUNKNOWNRCPT for ids the
 * directory does not list. casenet_seal and the broker's Submit apply it. */
CASENET_API CASENET_NODISCARD int casenet_role_check(const casenet_directory *dir,
                                                     const char *sender, int kind,
                                                     const char *const *recipients, size_t n,
                                                     char *err, size_t errlen);
/* The hash bank's rule beyond the matrix (PROTOCOL.md §6.2): a HASH_SHARE
 * payload carrying entries or retractions may come only from a contributor
 * (role intake, responder or gateway); feedback from any party the matrix
 * allows. CASENET_EFORBIDDEN with err naming the roles, CASENET_EUNAUTH for
 * a sender the directory does not list, CASENET_EBADREQ for a payload that
 * is not a hash share. casenet_seal applies it; importers apply it to what
 * they receive. */
CASENET_API CASENET_NODISCARD int casenet_hash_share_check(const casenet_directory *dir,
                                                           const char *sender,
                                                           const uint8_t *payload, size_t len,
                                                           char *err, size_t errlen);

/* ------------------------------------------------------------------ receipts */

/* A recipient's signed receipt (status of its copy of a message). */
typedef struct casenet_receipt {
    uint8_t message_id[CASENET_MESSAGE_ID_BYTES];
    uint8_t envelope_hash[CASENET_HASH_BYTES];
    char sender[CASENET_MEMBER_ID_MAX + 1];    /* the message's sender */
    char recipient[CASENET_MEMBER_ID_MAX + 1]; /* the signer */
    casenet_receipt_status status;
    char reason[64]; /* declined: not-competent, duplicate, insufficient-information, redirected */
    casenet_outcome outcome; /* completed: a code; CASENET_OUTCOME_NONE otherwise */
    int64_t signed_at_ms;
    bool has_note; /* note_id names the signer's encrypted STATUS note that explains */
    uint8_t note_id[CASENET_MESSAGE_ID_BYTES];
} casenet_receipt;

/* Signs r with the signer's current key; r->recipient must equal the
 * keyring's member id, a DECLINED receipt must carry a valid decline reason
 * and no other status a reason, and COMPLETED (only) a known outcome code
 * (else CASENET_EINVAL). casenet_receipt_verify refuses the same breaches
 * with CASENET_EBADREQ. */
CASENET_API CASENET_NODISCARD int casenet_receipt_sign(const casenet_keys *signer,
                                                       const casenet_receipt *r, casenet_buf *out);
/* Verifies a SignedReceipt against the directory key of its recipient. */
CASENET_API CASENET_NODISCARD int casenet_receipt_verify(const casenet_directory *dir,
                                                         const uint8_t *buf, size_t len,
                                                         casenet_receipt *out);

/* The broker's receipt for an accepted submission. */
typedef struct casenet_submit_receipt {
    uint8_t message_id[CASENET_MESSAGE_ID_BYTES];
    uint8_t envelope_hash[CASENET_HASH_BYTES];
    int64_t accepted_at_ms;
    uint64_t audit_index;
    char broker_id[CASENET_MEMBER_ID_MAX + 1];
} casenet_submit_receipt;

CASENET_API CASENET_NODISCARD int casenet_submit_receipt_sign(const casenet_keys *broker,
                                                              const casenet_submit_receipt *r,
                                                              casenet_buf *out);
/* Verifies a BrokerReceipt against the directory's broker signing key. */
CASENET_API CASENET_NODISCARD int casenet_submit_receipt_verify(const casenet_directory *dir,
                                                                const uint8_t *buf, size_t len,
                                                                casenet_submit_receipt *out);

/* ------------------------------------------------------------------ payload JSON */

/* Converts a payload in protobuf's canonical JSON mapping (lowerCamelCase,
 * e.g. {"referral": {"summary": "..."}}) to a serialised Payload. An unknown
 * field, a wrong type or a bad enum name is CASENET_EINVAL with a message
 * naming the field path in err (NUL-terminated, truncated to errlen). When
 * kind is not 0 the payload's oneof must match it. */
CASENET_API CASENET_NODISCARD int casenet_payload_from_json(const char *json, size_t json_len,
                                                            casenet_kind kind, casenet_buf *out,
                                                            char *err, size_t errlen);
/* Converts a serialised Payload to canonical JSON (a malloc'd, NUL-terminated
 * string in out->data; out->len excludes the NUL). */
CASENET_API CASENET_NODISCARD int casenet_payload_to_json(const uint8_t *payload, size_t len,
                                                          casenet_buf *out);
/* The same JSON for people: bytes (ids, hashes) in lowercase hex, times
 * (int64 fields named *_ms) as ISO 8601 UTC dates. Not canonical:
 * casenet_payload_from_json does not take it back. */
CASENET_API CASENET_NODISCARD int casenet_payload_to_display_json(const uint8_t *payload,
                                                                  size_t len, casenet_buf *out);

/* ------------------------------------------------------------------ broker connection */

typedef enum casenet_inbox_state {
    CASENET_INBOX_ANY = 0, /* filter only */
    CASENET_INBOX_QUEUED = 1,
    CASENET_INBOX_FETCHED = 2,
    CASENET_INBOX_DELIVERED = 3,
    CASENET_INBOX_ACCEPTED = 4,
    CASENET_INBOX_DECLINED = 5,
    CASENET_INBOX_COMPLETED = 6,
    CASENET_INBOX_DEAD = 7,
} casenet_inbox_state;

/* "any", "queued", "fetched", "delivered", "accepted", "declined",
 * "completed", "dead". */
CASENET_API const char *casenet_inbox_state_name(int state);
CASENET_API CASENET_NODISCARD int casenet_inbox_state_parse(const char *name,
                                                            casenet_inbox_state *out);

/* One row of a member's inbox, as listed or pushed. Owned by the caller:
 * release with casenet_inbox_entry_clear(). */
typedef struct casenet_inbox_entry {
    uint64_t seq; /* the broker's row number, usable as a cursor */
    uint8_t message_id[CASENET_MESSAGE_ID_BYTES];
    char sender[CASENET_MEMBER_ID_MAX + 1];
    casenet_kind kind; /* CASENET_KIND_RECEIPT for a forwarded receipt */
    casenet_urgency urgency;
    casenet_msg_status status;
    casenet_inbox_state state;
    int64_t received_at_ms;
    int64_t created_at_ms;
    uint32_t size;
    bool has_in_reply_to;
    uint8_t in_reply_to[CASENET_MESSAGE_ID_BYTES];
    bool has_case_ref;
    uint8_t case_ref[CASENET_CASE_REF_BYTES];
    casenet_receipt_status receipt_status; /* for receipts */
    casenet_buf receipt;                   /* for receipts: the SignedReceipt */
} casenet_inbox_entry;

CASENET_API void casenet_inbox_entry_clear(casenet_inbox_entry *e);
/* Clears and frees an array of n entries. */
CASENET_API void casenet_inbox_entries_free(casenet_inbox_entry *e, size_t n);

/* A connection to the broker over ZeroMQ CURVE, for one member. Not thread
 * safe: one thread uses one client. */
typedef struct casenet_client casenet_client;

typedef struct casenet_client_opts {
    const char *endpoint;    /* e.g. "tcp://127.0.0.1:7400"; or a comma-separated list of
                              * brokers sharing one store, tried together (the active
                              * one answers) */
    int timeout_ms;          /* per request, including retries; 0 = 10000 */
    const char *client_name; /* sent in Hello; NULL = "libcasenet" */
} casenet_client_opts;

/* Connects with the member's CURVE keys to the broker whose CURVE key is in
 * the directory (the member with role "broker"), sends Hello and checks that
 * the broker authenticated this connection as the keyring's member id.
 * CASENET_ETIMEDOUT when the broker does not answer in time (also what a
 * refused CURVE handshake looks like to a client), CASENET_EUNAUTH when the
 * broker names another member. keys and dir are borrowed and must outlive
 * the client (see casenet_client_set_directory). */
CASENET_API CASENET_NODISCARD int casenet_client_connect(const casenet_keys *keys,
                                                         const casenet_directory *dir,
                                                         const casenet_client_opts *opts,
                                                         casenet_client **out);
CASENET_API void casenet_client_free(casenet_client *c);
/* Replaces the (borrowed) directory used to verify what the broker returns. */
CASENET_API void casenet_client_set_directory(casenet_client *c, const casenet_directory *dir);
/* The broker's message for the last failed request ("" when none); borrowed,
 * valid until the next call on c. */
CASENET_API const char *casenet_client_last_error(const casenet_client *c);
/* Retry-after hint of the last RATE_LIMITED or UNAVAILABLE answer, in ms. */
CASENET_API uint32_t casenet_client_retry_after_ms(const casenet_client *c);
/* The directory version the broker serves, as its last STALE_DIRECTORY
 * answer named it (0 when the last request got another answer). */
CASENET_API uint64_t casenet_client_stale_directory_version(const casenet_client *c);
/* How many times the connection has dropped since casenet_client_connect, as
 * far as seen (connection events are read during calls and inside
 * casenet_client_wait_notice). Notices are not resent after a reconnect: an
 * agent that must not miss a row lists its inbox again when this grows. */
CASENET_API uint64_t casenet_client_disconnects(const casenet_client *c);

/* Submits a sealed envelope and returns the broker's receipt, verified
 * against the directory's broker key and checked to name this message id
 * and envelope hash (CASENET_EBADSIG otherwise). On a timeout it resends the
 * same bytes until opts.timeout_ms runs out: the message id makes this
 * idempotent. *duplicate (may be NULL) tells that the broker had the same
 * bytes already. Errors from the broker come back as their casenet_err;
 * CASENET_ESTALEDIR means the envelope was sealed with an older directory
 * than the broker's (casenet_client_stale_directory_version): pull the
 * directory (casenet_client_get_directory, verified), seal again, submit. */
CASENET_API CASENET_NODISCARD int casenet_client_submit(casenet_client *c, const uint8_t *envelope,
                                                        size_t len, casenet_submit_receipt *receipt,
                                                        bool *duplicate);
/* One page of the inbox: entries with seq > cursor in the given state (ANY =
 * all), at most limit (0 = 100). *entries is malloc'd (free with
 * casenet_inbox_entries_free); *next_cursor continues, *more tells whether
 * another page exists. */
CASENET_API CASENET_NODISCARD int casenet_client_list(casenet_client *c, casenet_inbox_state state,
                                                      uint64_t cursor, uint32_t limit,
                                                      casenet_inbox_entry **entries, size_t *n,
                                                      uint64_t *next_cursor, bool *more);
/* Fetches a message addressed to this member (CASENET_ENOTFOUND when it is
 * not, whoever else it was for). Marks the row fetched. A forwarded receipt
 * has no envelope: CASENET_EBADREQ, use casenet_client_fetch_row. */
CASENET_API CASENET_NODISCARD int casenet_client_fetch(casenet_client *c,
                                                       const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                                                       casenet_buf *envelope);
/* Fetches any row of this member's inbox: *entry is the row (release with
 * casenet_inbox_entry_clear) and, for a message, *envelope its envelope
 * (checked to carry id). For a forwarded receipt (entry->kind
 * CASENET_KIND_RECEIPT) *envelope is empty and entry->receipt holds the
 * SignedReceipt, to verify with casenet_receipt_verify; the broker marks a
 * queued receipt row fetched, which settles it (PROTOCOL.md section 8).
 * Errors as casenet_client_fetch; nothing is set on failure. */
CASENET_API CASENET_NODISCARD int
casenet_client_fetch_row(casenet_client *c, const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                         casenet_buf *envelope, casenet_inbox_entry *entry);
/* Sends a SignedReceipt (casenet_receipt_sign). */
CASENET_API CASENET_NODISCARD int casenet_client_send_receipt(casenet_client *c,
                                                              const uint8_t *receipt, size_t len,
                                                              uint64_t *audit_index);
/* The broker's current signed directory (not verified here: pass it to
 * casenet_directory_parse with the pinned authority key). */
CASENET_API CASENET_NODISCARD int casenet_client_get_directory(casenet_client *c, casenet_buf *out);
/* Publishes a new signed directory (the authority's); *version is what the
 * broker now serves. */
CASENET_API CASENET_NODISCARD int casenet_client_publish_directory(casenet_client *c,
                                                                   const uint8_t *signed_dir,
                                                                   size_t len, uint64_t *version);
/* Asks the broker to push a notice for every new row of this member's
 * inbox. Re-subscribes by itself after a reconnect. */
CASENET_API CASENET_NODISCARD int casenet_client_subscribe(casenet_client *c);
/* Waits up to timeout_ms for a pushed notice: CASENET_OK with *entry filled,
 * or CASENET_ETIMEDOUT. Notices that arrived during other calls are queued
 * and returned first. */
CASENET_API CASENET_NODISCARD int casenet_client_wait_notice(casenet_client *c, int timeout_ms,
                                                             casenet_inbox_entry *entry);

/* ------------------------------------------------------------------ audit log */
/* PROTOCOL.md §10. The broker's answers are returned raw: verify them with
 * the audit verifier of libcasenet (checkpoints with the broker's directory
 * key, proofs against a verified head) before trusting anything. */

/* One event of the audit log as the broker returned it. */
typedef struct casenet_audit_record {
    uint64_t index;    /* its position in the log */
    casenet_buf event; /* the serialised AuditEvent: the exact leaf bytes */
} casenet_audit_record;

/* Clears and frees an array of n records. Accepts NULL. */
CASENET_API void casenet_audit_records_free(casenet_audit_record *r, size_t n);

/* AuditQuery filters; every one set must hold. */
typedef struct casenet_audit_filter {
    const char *member;        /* NULL = any; else events it is actor or party of */
    const uint8_t *message_id; /* NULL or CASENET_MESSAGE_ID_BYTES */
    const uint8_t *case_ref;   /* NULL or CASENET_CASE_REF_BYTES */
    int64_t from_ms, to_ms;    /* 0 = unbounded; from_ms <= time < to_ms */
    int kind;                  /* proto AuditKind; 0 = any */
} casenet_audit_filter;

/* One page of an export: events from_index .. next_index - 1 and the
 * checkpoints of the heads whose size lies in (from_index, next_index]. */
typedef struct casenet_audit_export_page {
    casenet_buf *events; /* n_events serialised AuditEvents, in index order */
    size_t n_events;
    casenet_buf *checkpoints; /* ascending size */
    size_t n_checkpoints;
    uint64_t next_index;
    bool more; /* events exist beyond next_index */
} casenet_audit_export_page;

/* Releases what a page holds and zeroes it. Accepts NULL. */
CASENET_API void casenet_audit_export_page_clear(casenet_audit_export_page *p);

/* The broker's latest signed tree head: the checkpoint bytes, NOT verified
 * here. CASENET_ENOTFOUND while the broker has signed none. */
CASENET_API CASENET_NODISCARD int casenet_client_tree_head(casenet_client *c,
                                                           casenet_buf *checkpoint);
/* One page of events matching f (NULL = no filter) from index cursor on, at
 * most limit (0 = 100, at most 1000). A member that is not a coordinator
 * only ever gets its own events; naming another member is
 * CASENET_EFORBIDDEN. The records are checked to be ascending and within
 * [cursor, next_cursor), not verified. *records is malloc'd (free with
 * casenet_audit_records_free); *next_cursor continues; *more tells whether
 * to ask again. The broker logs the query (AUDIT_QUERIED). */
CASENET_API CASENET_NODISCARD int
casenet_client_audit_query(casenet_client *c, const casenet_audit_filter *f, uint64_t cursor,
                           uint32_t limit, casenet_audit_record **records, size_t *n,
                           uint64_t *next_cursor, bool *more);
/* The inclusion proof of event index in the tree of tree_size events:
 * *hashes holds the proof's hashes, 32 bytes each, in RFC 9162 order
 * (hashes->len / 32 of them; empty for a one-event tree), *checkpoint the
 * broker's signed head of exactly tree_size, or empty when it signed none
 * at that size. Neither is verified. CASENET_EINVAL when index >=
 * tree_size; the broker answers CASENET_ENOTFOUND when tree_size exceeds
 * its log, CASENET_EFORBIDDEN when a member that is not a coordinator asks
 * for an event it is not party to. */
CASENET_API CASENET_NODISCARD int casenet_client_audit_inclusion(casenet_client *c, uint64_t index,
                                                                 uint64_t tree_size,
                                                                 casenet_buf *hashes,
                                                                 casenet_buf *checkpoint);
/* The consistency proof from size1 to size2 (0 < size1 <= size2, else
 * CASENET_EINVAL), as for casenet_client_audit_inclusion; *checkpoint is
 * the head of size2 when signed. Any member may ask. */
CASENET_API CASENET_NODISCARD int casenet_client_audit_consistency(casenet_client *c,
                                                                   uint64_t size1, uint64_t size2,
                                                                   casenet_buf *hashes,
                                                                   casenet_buf *checkpoint);
/* One export page from from_index, at most limit events (0 = 1000, at most
 * 10000). Coordinators only (CASENET_EFORBIDDEN otherwise). The page is
 * checked for shape (next_index = from_index + events, no more heads than
 * events), not verified. On success *page is the caller's
 * (casenet_audit_export_page_clear). */
CASENET_API CASENET_NODISCARD int casenet_client_audit_export(casenet_client *c,
                                                              uint64_t from_index, uint32_t limit,
                                                              casenet_audit_export_page *page);

/* ------------------------------------------------------------------ audit log verification */
/*
 * The audit log verifier (PROTOCOL.md §10.3 and §10.4): what `casenet audit
 * verify` runs, live and on an export file, for any program that must trust
 * the broker's log no further than it can check it (docs/library.md).
 *
 * A verifier holds the broker's identity (member id, signing key and the
 * log's origin, all from a verified directory, never from the broker) and a
 * trusted state: the last signed tree head it verified, with the compact
 * range of the Merkle tree at that size, so that the next run needs only the
 * events after it and a log rewritten before that head cannot match it. A
 * run (casenet_audit_verify_live, casenet_audit_verify_file, or
 * casenet_audit_verifier_begin / _feed_page / _finish) recomputes the roots
 * of the events it is given, checks every signed head (signature, origin,
 * size and time never decreasing, root equal to the recomputed one) and, on
 * success, moves the trusted state to the newest verified head. The first
 * failure ends the run: casenet_audit_verifier_failure describes it and the
 * trusted state stays where it was. A verifier runs one run at a time, on
 * the caller's thread; the callbacks run inside the run.
 */
typedef struct casenet_audit_verifier casenet_audit_verifier;

/* What a run tells its caller as it goes. Every member may be NULL. */
typedef struct casenet_audit_callbacks {
    /* Every 1024 events and at the end: done counts events from index 0;
     * total is the log's size when known (the broker's head), else 0. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    /* Each event, in index order, once it parsed and its index field is its
     * position (bytes borrowed for the call). Proven only when a later
     * head() call's size is above index: a cache keeps what a run gave it
     * only when the run succeeds, and events above the last head remain
     * unproven (casenet_audit_verifier_counts' tail). */
    void (*event)(void *ctx, uint64_t index, const uint8_t *event, size_t len);
    /* Each signed head whose root matched the events (checkpoint borrowed). */
    void (*head)(void *ctx, uint64_t size, int64_t time_ms, const uint8_t *checkpoint, size_t len);
    /* A line for a human: warning = true for something wrong that the run
     * goes on past to find where (it fails later), false for information
     * ("the broker has not signed a tree head yet"). */
    void (*note)(void *ctx, bool warning, const char *message);
    void *ctx;
} casenet_audit_callbacks;

/* Where a run failed. */
typedef enum {
    CASENET_AUDIT_OK = 0,
    CASENET_AUDIT_EVENT,      /* event `index` is malformed or not at its position */
    CASENET_AUDIT_HEAD,       /* a signed head is bad (format, signature, order,
                               * time, root: then the change is in events
                               * [index, head_size) or the history before) */
    CASENET_AUDIT_REMEMBERED, /* the log disagrees with the trusted head of size
                               * head_size: rewritten, cut short or lost */
    CASENET_AUDIT_FILE,       /* the export file is malformed at byte `offset` */
    CASENET_AUDIT_BROKER,     /* a request to the broker failed: reason names it,
                               * casenet_client_last_error says why */
    CASENET_AUDIT_LOCAL,      /* out of memory, an unreadable file */
} casenet_audit_where;

#define CASENET_AUDIT_REASON_MAX 256

typedef struct casenet_audit_failure {
    casenet_audit_where where;
    int err;            /* the casenet_err the run returned */
    uint64_t index;     /* see casenet_audit_where */
    uint64_t head_size; /* HEAD, REMEMBERED */
    uint64_t offset;    /* FILE: byte offset of the bad record */
    /* One English sentence naming the place, e.g. "head of size 2048: root
     * mismatch: an event in [1024, 2048) was changed, ..." */
    char reason[CASENET_AUDIT_REASON_MAX];
} casenet_audit_failure;

/* The trusted head: size 0 (and no time) while nothing is trusted. */
typedef struct casenet_audit_head {
    uint64_t size;
    int64_t time_ms;
    uint8_t root[CASENET_HASH_BYTES];
} casenet_audit_head;

/* A verifier for the broker of dir (borrowed for the verifier's life) that
 * trusts nothing yet; cb (may be NULL) is copied. CASENET_ENOTFOUND when the
 * directory lists no broker with a signing key, CASENET_EBADREQ when its
 * audit network name is not a valid log origin, CASENET_ENOMEM. */
CASENET_API CASENET_NODISCARD int casenet_audit_verifier_new(const casenet_directory *dir,
                                                             const casenet_audit_callbacks *cb,
                                                             casenet_audit_verifier **out);
/* Accepts NULL. */
CASENET_API void casenet_audit_verifier_free(casenet_audit_verifier *v);

/* The trusted state from a file written by casenet_audit_verifier_save_state
 * (local and trusted: a checksum catches damage, nothing more).
 * CASENET_ENOTFOUND when path does not exist (nothing remembered: the state
 * is left empty), CASENET_EIO when unreadable, CASENET_EBADREQ when
 * malformed. */
CASENET_API CASENET_NODISCARD int casenet_audit_verifier_load_state(casenet_audit_verifier *v,
                                                                    const char *path);
/* Writes the trusted state to path (atomically, mode 0600) when it changed
 * since it was loaded, decoded or last saved; CASENET_OK without writing
 * otherwise. CASENET_EIO when writing fails. */
CASENET_API CASENET_NODISCARD int casenet_audit_verifier_save_state(casenet_audit_verifier *v,
                                                                    const char *path);
/* The same state as bytes (*out malloc'd), for a caller that keeps it
 * elsewhere (a database); decode counts as a load. CASENET_EBADREQ for
 * malformed bytes. */
CASENET_API CASENET_NODISCARD int
casenet_audit_verifier_encode_state(const casenet_audit_verifier *v, casenet_buf *out);
CASENET_API CASENET_NODISCARD int
casenet_audit_verifier_decode_state(casenet_audit_verifier *v, const uint8_t *buf, size_t len);
/* The trusted head now. */
CASENET_API void casenet_audit_verifier_trusted(const casenet_audit_verifier *v,
                                                casenet_audit_head *out);

/* One live run against the broker c is connected to: its latest signed head
 * must verify and be consistent with the trusted one (same root at the same
 * size, else a consistency proof from the broker), then every event from
 * the trusted size on (from 0 with full, which also catches changes before
 * the trusted head that left the broker's tree intact) is fetched in export
 * pages and verified. Needs the export right (coordinators). Calling it
 * again continues from the new trusted head: an incremental pull. */
CASENET_API CASENET_NODISCARD int casenet_audit_verify_live(casenet_audit_verifier *v,
                                                            casenet_client *c, bool full);
/* One offline run over an export file read from fd (from its current offset
 * to its end; fd stays the caller's): its header must name this verifier's
 * network, broker and key and start at 0 or at the trusted size. */
CASENET_API CASENET_NODISCARD int casenet_audit_verify_file(casenet_audit_verifier *v, int fd);

/* Verifies a signed head the broker gave (checkpoint bytes, e.g. from
 * casenet_client_tree_head) with the directory's broker key and checks it
 * against the trusted head: the same root at the same size, else a
 * consistency proof from the broker c that verifies (c NULL: the signature
 * and origin only). *out is the verified head. Fails like a run
 * (CASENET_AUDIT_HEAD, _REMEMBERED, _BROKER); the trusted state does not
 * move. */
CASENET_API CASENET_NODISCARD int
casenet_audit_verifier_check_head(casenet_audit_verifier *v, casenet_client *c,
                                  const uint8_t *checkpoint, size_t len, casenet_audit_head *out);
/* Proves that event (its exact bytes, at log index index) is included under
 * head (verified with casenet_audit_verifier_check_head; index < its size):
 * asks c for an inclusion proof and checks it against the head's root.
 * CASENET_EBADSIG (CASENET_AUDIT_EVENT) when it does not verify. */
CASENET_API CASENET_NODISCARD int casenet_audit_verifier_prove(casenet_audit_verifier *v,
                                                               casenet_client *c,
                                                               const casenet_audit_head *head,
                                                               uint64_t index, const uint8_t *event,
                                                               size_t len);
/* As casenet_audit_verifier_prove, and hands back what it checked, for a
 * program that shows the proof: leaf (may be NULL) the event's leaf hash,
 * *path (may be NULL; malloc'd, the caller frees it) the proof's hashes,
 * CASENET_HASH_BYTES each, from the leaf up. Both set only on CASENET_OK. */
CASENET_API CASENET_NODISCARD int casenet_audit_verifier_prove_path(
    casenet_audit_verifier *v, casenet_client *c, const casenet_audit_head *head, uint64_t index,
    const uint8_t *event, size_t len, uint8_t leaf[CASENET_HASH_BYTES], casenet_buf *path);

/* A run fed by the caller: begin from index start (the trusted size, or 0 to
 * recompute everything and compare with the trusted root on the way; total
 * for progress only, 0 = unknown), feed export pages in order (page from
 * index from: each checkpoint is checked right after the event that brings
 * the log to its size), then finish, which moves the trusted state.
 * CASENET_EINVAL for another start, a page that does not continue the last
 * one, a feed without begin. */
CASENET_API CASENET_NODISCARD int casenet_audit_verifier_begin(casenet_audit_verifier *v,
                                                               uint64_t start, uint64_t total);
CASENET_API CASENET_NODISCARD int
casenet_audit_verifier_feed_page(casenet_audit_verifier *v, const casenet_audit_export_page *page,
                                 uint64_t from);
CASENET_API CASENET_NODISCARD int casenet_audit_verifier_finish(casenet_audit_verifier *v);

/* The last run's failure (where == CASENET_AUDIT_OK when it succeeded or
 * none ran); borrowed from v. */
CASENET_API const casenet_audit_failure *
casenet_audit_verifier_failure(const casenet_audit_verifier *v);
/* The last run's counts: events consumed (absolute: the index after the
 * last), heads verified, and events after the last verified head (not yet
 * under a signed head). Any pointer may be NULL. */
CASENET_API void casenet_audit_verifier_counts(const casenet_audit_verifier *v, uint64_t *events,
                                               uint64_t *heads, uint64_t *tail);

/* An epoch change the last run accepted: the broker was restored from a
 * backup of restored_size events and declared it with a LOG_RESTORED event
 * naming the newest head before the restore (previous_size; 0 = unknown),
 * while the trusted head (remembered_size) lay beyond it (PROTOCOL.md
 * §10.1, §10.4). Events [restored_size, max(previous_size,
 * remembered_size)) are lost; the trusted head is now the new epoch's.
 * Only a run from index 0 (casenet_audit_verify_live with full, or a file
 * from 0) sees one. */
typedef struct casenet_audit_epoch {
    bool changed;
    uint64_t restored_size, previous_size, remembered_size;
} casenet_audit_epoch;
CASENET_API void casenet_audit_verifier_epoch(const casenet_audit_verifier *v,
                                              casenet_audit_epoch *out);

/* ------------------------------------------------------------------ lifecycle */
/* Where each recipient's copy of a message stands, its deadlines, and the
 * network's overdue rows (PROTOCOL.md section 8.1). Everything here comes
 * from the broker: the receipts inside are the recipients' signed bytes,
 * which the caller verifies (casenet_receipt_verify, and that they name the
 * message, the recipient and the step's status); the broker_receipt with
 * casenet_submit_receipt_verify. */

typedef enum casenet_deadline_kind {
    CASENET_DEADLINE_DELIVER = 1, /* met by a delivered (or later) receipt */
    CASENET_DEADLINE_ACCEPT = 2,  /* met by an accepted or declined receipt */
    CASENET_DEADLINE_EXPIRE = 3,  /* the header's expires_at: dead letter */
} casenet_deadline_kind;

typedef enum casenet_deadline_state {
    CASENET_DEADLINE_PENDING = 1,
    CASENET_DEADLINE_MET = 2,
    CASENET_DEADLINE_BREACHED = 3, /* escalated (expire: dead-lettered) */
    CASENET_DEADLINE_VOID = 4,     /* the row died first */
} casenet_deadline_state;

/* "deliver", "accept", "expire"; "pending", "met", "breached", "void". */
CASENET_API const char *casenet_deadline_kind_name(int kind);
CASENET_API const char *casenet_deadline_state_name(int state);

typedef struct casenet_deadline {
    casenet_deadline_kind kind;
    int64_t due_at_ms;
    casenet_deadline_state state;
    int64_t settled_at_ms;
    bool has_notice; /* breached: the broker's notice */
    uint8_t notice_id[CASENET_MESSAGE_ID_BYTES];
} casenet_deadline;

/* One state a recipient's row entered. */
typedef struct casenet_step {
    casenet_inbox_state state;
    int64_t at_ms;                         /* broker time */
    char actor[CASENET_MEMBER_ID_MAX + 1]; /* "" for the broker */
    casenet_buf receipt;                   /* delivered..completed: SignedReceipt */
} casenet_step;

typedef struct casenet_recipient_status {
    char recipient[CASENET_MEMBER_ID_MAX + 1];
    casenet_inbox_state state;
    size_t n_steps; /* 0 in list_sent results */
    casenet_step *steps;
    size_t n_deadlines;
    casenet_deadline *deadlines;
} casenet_recipient_status;

/* A message's metadata and its recipients' states. Release with
 * casenet_message_status_clear(). */
typedef struct casenet_message_status {
    uint8_t message_id[CASENET_MESSAGE_ID_BYTES];
    char sender[CASENET_MEMBER_ID_MAX + 1];
    casenet_kind kind;
    casenet_urgency urgency;
    casenet_msg_status status;
    int64_t created_at_ms, received_at_ms, expires_at_ms;
    bool has_in_reply_to;
    uint8_t in_reply_to[CASENET_MESSAGE_ID_BYTES];
    bool has_case_ref;
    uint8_t case_ref[CASENET_CASE_REF_BYTES];
    uint8_t envelope_hash[CASENET_HASH_BYTES];
    casenet_buf broker_receipt; /* the BrokerReceipt of the submission */
    uint64_t cursor;            /* list_sent: this message's position */
    size_t n_recipients;
    casenet_recipient_status *recipients;
} casenet_message_status;

CASENET_API void casenet_message_status_clear(casenet_message_status *s);
/* Clears and frees an array of n. */
CASENET_API void casenet_message_statuses_free(casenet_message_status *s, size_t n);

/* The lifecycle of message id: every recipient for its sender and for
 * coordinators, the caller's own row for a recipient; CASENET_ENOTFOUND for
 * anyone else. CASENET_EBADREQ when the broker answers about another id or
 * with malformed fields. */
CASENET_API CASENET_NODISCARD int casenet_client_status(casenet_client *c,
                                                        const uint8_t id[CASENET_MESSAGE_ID_BYTES],
                                                        casenet_message_status *out);
/* One page of the caller's own sent messages (oldest first) with every
 * recipient's state and deadlines (no steps), filtered by kind (0 = all)
 * and, with open_only, to those some recipient has not settled. A page may
 * hold fewer than limit (0 = 100) with *more true: continue from
 * *next_cursor. *out: free with casenet_message_statuses_free. */
CASENET_API CASENET_NODISCARD int casenet_client_list_sent(casenet_client *c, bool open_only,
                                                           casenet_kind kind, uint64_t cursor,
                                                           uint32_t limit,
                                                           casenet_message_status **out, size_t *n,
                                                           uint64_t *next_cursor, bool *more);

/* A breached deliver or accept deadline whose row is still not taken. */
typedef struct casenet_overdue {
    uint8_t message_id[CASENET_MESSAGE_ID_BYTES];
    char sender[CASENET_MEMBER_ID_MAX + 1];
    char recipient[CASENET_MEMBER_ID_MAX + 1];
    casenet_kind kind;
    casenet_urgency urgency;
    casenet_msg_status status; /* exercise and test are counted apart */
    casenet_inbox_state state; /* the row's state now */
    casenet_deadline_kind deadline;
    int64_t received_at_ms, due_at_ms, escalated_at_ms;
    bool has_notice;
    uint8_t notice_id[CASENET_MESSAGE_ID_BYTES];
    bool has_case_ref;
    uint8_t case_ref[CASENET_CASE_REF_BYTES];
} casenet_overdue;

/* One page of the network's overdue rows (coordinators only:
 * CASENET_EFORBIDDEN otherwise). *out is malloc'd (free()). */
CASENET_API CASENET_NODISCARD int casenet_client_list_overdue(casenet_client *c, uint64_t cursor,
                                                              uint32_t limit, casenet_overdue **out,
                                                              size_t *n, uint64_t *next_cursor,
                                                              bool *more);

/* ------------------------------------------------------------------ attachments
 *
 * Files sealed end to end beside a message (PROTOCOL.md §4.9, §8.2): each
 * file is encrypted with its own random key by libsodium's secretstream in
 * chunks of CASENET_ATTACH_CHUNK_BYTES, uploaded as a blob of ciphertext
 * chunks, and described by a manifest (casenet_attachment) that travels
 * inside the sealed, signed payload. */

#define CASENET_ATTACH_CHUNK_BYTES  (1024u * 1024u) /* plaintext per chunk */
#define CASENET_ATTACH_ABYTES       17u             /* secretstream overhead per chunk */
#define CASENET_ATTACH_KEY_BYTES    32
#define CASENET_ATTACH_HEADER_BYTES 24
#define CASENET_ATTACH_NAME_MAX     255
#define CASENET_ATTACH_TYPE_MAX     127
#define CASENET_ATTACH_MAX_CHUNKS   65536u /* 64 GiB: beyond every size limit */

/* One attachment's manifest. key is secret: wipe with
 * casenet_attachment_clear. */
typedef struct casenet_attachment {
    char file_name[CASENET_ATTACH_NAME_MAX + 1];  /* base name, no '/' */
    char media_type[CASENET_ATTACH_TYPE_MAX + 1]; /* "application/octet-stream" if unknown */
    uint64_t size;                                /* plaintext bytes */
    uint8_t sha256[CASENET_HASH_BYTES];           /* of the plaintext */
    uint8_t key[CASENET_ATTACH_KEY_BYTES];
    uint8_t stream_header[CASENET_ATTACH_HEADER_BYTES];
    uint32_t chunk_size;  /* CASENET_ATTACH_CHUNK_BYTES */
    uint32_t chunk_count; /* max(1, ceil(size / chunk_size)) */
    uint8_t blob_id[CASENET_BLOB_ID_BYTES];
} casenet_attachment;

/* Wipes a (its key) and zeroes it; NULL is fine. */
CASENET_API void casenet_attachment_clear(casenet_attachment *a);
/* Ciphertext bytes of a's blob: size + chunk_count * CASENET_ATTACH_ABYTES. */
CASENET_API uint64_t casenet_attachment_blob_size(const casenet_attachment *a);

/* Reads the file at path once (streamed: memory does not grow with its
 * size) and fills a: its base name, media_type (NULL = guessed from the
 * extension), size, SHA-256, a fresh random key, stream header and blob id.
 * CASENET_EIO when the file cannot be read, CASENET_ETOOLARGE beyond
 * CASENET_ATTACH_MAX_CHUNKS chunks, CASENET_EINVAL for a name or type too
 * long. a is wiped on failure. */
CASENET_API CASENET_NODISCARD int
casenet_attachment_prepare(const char *path, const char *media_type, casenet_attachment *a);

/* Uploads the file at path (the one a was prepared from) as blob a->blob_id:
 * asks the broker which chunks it holds (BlobStatus), then encrypts every
 * chunk in order and sends those it lacks (BlobPut), at most max_chunks of
 * them in this call (0 = no limit: a caller that spreads an upload, or a
 * test of resumption). *sent (may be NULL) counts the chunks sent. A file
 * that changed since casenet_attachment_prepare is CASENET_ECONFLICT; the
 * broker's refusals come back as its codes (CASENET_EQUOTA,
 * CASENET_ETOOLARGE: casenet_client_last_error says which limit). Calling
 * it again after any failure resumes. */
CASENET_API CASENET_NODISCARD int casenet_attachment_upload(casenet_client *c, const char *path,
                                                            const casenet_attachment *a,
                                                            uint32_t max_chunks, uint32_t *sent);

/* Progress of an upload: called after each chunk is encrypted (sent, or
 * found already held by the broker) with the plaintext bytes done so far
 * and a->size; ctx is the caller's. */
typedef void (*casenet_progress_fn)(void *ctx, uint64_t done, uint64_t total);
/* casenet_attachment_upload reporting its progress to fn (may be NULL). */
CASENET_API CASENET_NODISCARD int
casenet_attachment_upload_progress(casenet_client *c, const char *path, const casenet_attachment *a,
                                   uint32_t max_chunks, uint32_t *sent, casenet_progress_fn fn,
                                   void *ctx);

/* Downloads and decrypts a into directory dir chunk by chunk through a
 * temporary file there, checks the stream (order, truncation: the last
 * chunk must be tagged FINAL), the size and the SHA-256 against the
 * manifest, and only then renames it to dir/a->file_name (never replacing
 * a file: CASENET_ECONFLICT when the name is taken). A chunk that does not
 * decrypt is CASENET_ECRYPTO, a wrong size or hash CASENET_ECOMMIT; on any
 * failure nothing is left in dir. On success saved (may be NULL) holds the
 * path, truncated to saved_len. */
CASENET_API CASENET_NODISCARD int casenet_attachment_download(casenet_client *c,
                                                              const casenet_attachment *a,
                                                              const char *dir, char *saved,
                                                              size_t saved_len);

/* The attachments of a serialised Payload, checked: every field present
 * with its size, a safe base name, chunk_size = CASENET_ATTACH_CHUNK_BYTES
 * and chunk_count matching size, blob ids unique; with info (may be NULL)
 * also exactly the header's blob ids. *out is malloc'd (NULL when none;
 * wipe each with casenet_attachment_clear, then free()). CASENET_EBADREQ
 * when any check fails. */
CASENET_API CASENET_NODISCARD int casenet_payload_attachments(const uint8_t *payload, size_t len,
                                                              const casenet_message_info *info,
                                                              casenet_attachment **out, size_t *n);

/* A copy of the serialised Payload with the manifests of atts appended to
 * its attachments, in *out. CASENET_EBADREQ when payload does not parse,
 * CASENET_ETOOLARGE beyond CASENET_MAX_BLOBS. */
CASENET_API CASENET_NODISCARD int casenet_payload_add_attachments(const uint8_t *payload,
                                                                  size_t len,
                                                                  const casenet_attachment *atts,
                                                                  size_t n, casenet_buf *out);

/* The broker's blob requests (PROTOCOL.md §8.2), for programs that move
 * chunks themselves; casenet_attachment_upload / _download use them.
 * blob_put stores chunk index of blob id (idempotent) and reports in *held
 * (may be NULL) how many chunks the broker now holds. */
CASENET_API CASENET_NODISCARD int casenet_client_blob_put(casenet_client *c,
                                                          const uint8_t id[CASENET_BLOB_ID_BYTES],
                                                          uint32_t index, const uint8_t *chunk,
                                                          size_t len, uint32_t total_chunks,
                                                          uint64_t total_size, uint32_t *held);
/* Which chunks of blob id the broker holds: *held is a malloc'd array of
 * ascending indexes (free()), *n its length. CASENET_ENOTFOUND when the
 * broker has no such blob this member may see. */
CASENET_API CASENET_NODISCARD int
casenet_client_blob_status(casenet_client *c, const uint8_t id[CASENET_BLOB_ID_BYTES],
                           uint32_t **held, size_t *n, uint32_t *total_chunks);
/* Chunk index of blob id into *chunk (malloc'd; casenet_buf_free). */
CASENET_API CASENET_NODISCARD int casenet_client_blob_get(casenet_client *c,
                                                          const uint8_t id[CASENET_BLOB_ID_BYTES],
                                                          uint32_t index, casenet_buf *chunk);

#ifdef __cplusplus
}
#endif
#endif /* CASENET_H */
