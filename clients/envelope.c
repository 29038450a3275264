/* envelope.c - the end-to-end envelope: sealing (one content key per
 * message, XChaCha20-Poly1305, sealed boxes per recipient, key commitment,
 * Ed25519 over the header bytes), the broker's structural verification and
 * the recipient's open (see casenet.h, envelope_impl.h, PROTOCOL.md §4). */
#include "envelope_impl.h"

#include "casenet.pb-c.h"
#include "crypto.h"
#include "directory_impl.h"
#include "keys_impl.h"
#include "text.h"
#include "util.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

/* Blocks carry their size in front, so that free can wipe them. */
struct wipe_hdr {
    size_t size;
    max_align_t align;
};

static void *wipe_alloc(void *ctx, size_t size)
{
    (void)ctx;
    if (size > SIZE_MAX - sizeof(struct wipe_hdr))
        return NULL;
    struct wipe_hdr *h = malloc(sizeof *h + size);
    if (!h)
        return NULL;
    h->size = size;
    return h + 1;
}

static void wipe_free(void *ctx, void *p)
{
    (void)ctx;
    if (!p)
        return;
    struct wipe_hdr *h = (struct wipe_hdr *)p - 1;
    sodium_memzero(p, h->size);
    free(h);
}

ProtobufCAllocator cn_wiping_allocator = {wipe_alloc, wipe_free, NULL};

int cn_payload_case_for_kind(int kind)
{
    switch (kind) {
    case CASENET_KIND_REFERRAL:
        return CASENET__V1__PAYLOAD__BODY_REFERRAL;
    case CASENET_KIND_STATUS:
        return CASENET__V1__PAYLOAD__BODY_STATUS;
    case CASENET_KIND_INFO_REQUEST:
        return CASENET__V1__PAYLOAD__BODY_INFO_REQUEST;
    case CASENET_KIND_INFO_RESPONSE:
        return CASENET__V1__PAYLOAD__BODY_INFO_RESPONSE;
    case CASENET_KIND_TAKEDOWN_REQUEST:
        return CASENET__V1__PAYLOAD__BODY_TAKEDOWN_REQUEST;
    case CASENET_KIND_TAKEDOWN_RESULT:
        return CASENET__V1__PAYLOAD__BODY_TAKEDOWN_RESULT;
    case CASENET_KIND_CORRECTION:
        return CASENET__V1__PAYLOAD__BODY_CORRECTION;
    case CASENET_KIND_WITHDRAW:
        return CASENET__V1__PAYLOAD__BODY_WITHDRAW;
    case CASENET_KIND_ERASE:
        return CASENET__V1__PAYLOAD__BODY_ERASE;
    case CASENET_KIND_ESCALATION:
    case CASENET_KIND_DEAD_LETTER:
        return CASENET__V1__PAYLOAD__BODY_NOTICE;
    case CASENET_KIND_HASH_SHARE:
        return CASENET__V1__PAYLOAD__BODY_HASH_SHARE;
    default:
        return 0;
    }
}

static bool broker_kind(int kind)
{
    return kind == CASENET_KIND_ESCALATION || kind == CASENET_KIND_DEAD_LETTER;
}

/* AD = PAE("casenet.payload.v1", message_id, sender). */
static int payload_ad(const uint8_t *message_id, const char *sender, casenet_buf *out)
{
    const uint8_t *parts[2] = {message_id, (const uint8_t *)sender};
    size_t lens[2] = {CASENET_MESSAGE_ID_BYTES, strlen(sender)};
    return cn_pae(CN_PAYLOAD_DOMAIN, 2, parts, lens, out);
}

static int envelope_pae(const uint8_t *header, size_t len, casenet_buf *out)
{
    const uint8_t *parts[1] = {header};
    size_t lens[1] = {len};
    return cn_pae(CN_ENVELOPE_DOMAIN, 1, parts, lens, out);
}

/* ------------------------------------------------------------ sealing */

int cn_envelope_pack(const uint8_t *header, size_t header_len, const uint8_t *sign_sk,
                     const uint8_t *ciphertext, size_t ciphertext_len, casenet_buf *out)
{
    casenet_buf pae = {0};
    uint8_t sig[CASENET_SIGNATURE_BYTES];
    int rc = envelope_pae(header, header_len, &pae);
    if (rc != CASENET_OK)
        return rc;
    cn_sign(sig, pae.data, pae.len, sign_sk);
    casenet_buf_free(&pae);
    Casenet__V1__Envelope env = CASENET__V1__ENVELOPE__INIT;
    env.header.data = (uint8_t *)header;
    env.header.len = header_len;
    env.signature.data = sig;
    env.signature.len = sizeof sig;
    env.ciphertext.data = (uint8_t *)ciphertext;
    env.ciphertext.len = ciphertext_len;
    size_t len = casenet__v1__envelope__get_packed_size(&env);
    uint8_t *buf = malloc(len);
    if (!buf)
        return CASENET_ENOMEM;
    casenet__v1__envelope__pack(&env, buf);
    out->data = buf;
    out->len = len;
    return CASENET_OK;
}

int cn_seal_raw(const struct cn_seal_params *p, casenet_buf *envelope)
{
    int rc = CASENET_ENOMEM;
    casenet_buf ad = {0};
    uint8_t *ct = NULL, *sealed = NULL, *hbuf = NULL;
    Casenet__V1__WrappedKey *wk = NULL, **wkp = NULL;
    uint8_t ct_hash[CASENET_HASH_BYTES], commit[CASENET_HASH_BYTES];
    size_t n = p->n_recipients, clen = p->payload_len + CN_AEAD_TAG_BYTES;

    rc = payload_ad(p->message_id, p->sender, &ad);
    if (rc != CASENET_OK)
        return rc;
    rc = CASENET_ENOMEM;
    ct = malloc(clen);
    sealed = malloc(n * CASENET_SEALED_KEY_BYTES + 1);
    wk = calloc(n + 1, sizeof *wk);
    wkp = calloc(n + 1, sizeof *wkp);
    if (!ct || !sealed || !wk || !wkp)
        goto cleanup;
    cn_aead_encrypt(ct, p->payload, p->payload_len, ad.data, ad.len, p->nonce, p->content_key);
    cn_sha256(ct, clen, ct_hash);
    cn_key_commit(commit, p->commit_key ? p->commit_key : p->content_key);

    const char **rcpt = calloc(n + 1, sizeof *rcpt);
    if (!rcpt)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        const struct cn_seal_recipient *r = &p->recipients[i];
        uint8_t *s = sealed + i * CASENET_SEALED_KEY_BYTES;
        rc = cn_box_seal_det(s, p->content_key, CASENET_CONTENT_KEY_BYTES, r->box_pk, r->eph_pk,
                             r->eph_sk);
        if (rc != CASENET_OK) {
            free(rcpt);
            goto cleanup;
        }
        casenet__v1__wrapped_key__init(&wk[i]);
        wk[i].recipient = (char *)r->id;
        wk[i].box_key_id = (char *)r->box_key_id;
        wk[i].sealed_key.data = s;
        wk[i].sealed_key.len = CASENET_SEALED_KEY_BYTES;
        wkp[i] = &wk[i];
        rcpt[i] = r->id;
    }
    Casenet__V1__Header h = CASENET__V1__HEADER__INIT;
    h.version = CN_ENVELOPE_VERSION;
    h.message_id.data = (uint8_t *)p->message_id;
    h.message_id.len = CASENET_MESSAGE_ID_BYTES;
    h.sender = (char *)p->sender;
    h.sign_key_id = (char *)p->sign_key_id;
    h.n_recipients = n;
    h.recipients = (char **)rcpt;
    h.kind = (Casenet__V1__Kind)p->kind;
    h.urgency = (Casenet__V1__Urgency)p->urgency;
    h.created_at_ms = p->created_at_ms;
    h.expires_at_ms = p->expires_at_ms;
    h.status = (Casenet__V1__MessageStatus)p->status;
    if (p->in_reply_to) {
        h.in_reply_to.data = (uint8_t *)p->in_reply_to;
        h.in_reply_to.len = CASENET_MESSAGE_ID_BYTES;
    }
    if (p->case_ref) {
        h.case_ref.data = (uint8_t *)p->case_ref;
        h.case_ref.len = CASENET_CASE_REF_BYTES;
    }
    h.nonce.data = (uint8_t *)p->nonce;
    h.nonce.len = CASENET_NONCE_BYTES;
    h.ciphertext_hash.data = ct_hash;
    h.ciphertext_hash.len = sizeof ct_hash;
    h.key_commitment.data = commit;
    h.key_commitment.len = sizeof commit;
    h.n_wrapped_keys = n;
    h.wrapped_keys = wkp;
    ProtobufCBinaryData blobs[CASENET_MAX_BLOBS];
    for (size_t i = 0; i < p->n_blob_ids && i < CASENET_MAX_BLOBS; i++)
        blobs[i] = (ProtobufCBinaryData){CASENET_BLOB_ID_BYTES, (uint8_t *)p->blob_ids[i]};
    h.n_blob_ids = p->n_blob_ids < CASENET_MAX_BLOBS ? p->n_blob_ids : CASENET_MAX_BLOBS;
    h.blob_ids = blobs;
    size_t hlen = casenet__v1__header__get_packed_size(&h);
    hbuf = malloc(hlen);
    if (!hbuf) {
        rc = CASENET_ENOMEM;
        free(rcpt);
        goto cleanup;
    }
    casenet__v1__header__pack(&h, hbuf);
    free(rcpt);
    rc = cn_envelope_pack(hbuf, hlen, p->sign_sk, ct, clen, envelope);
cleanup:
    free(hbuf);
    free(wkp);
    free(wk);
    free(sealed);
    free(ct);
    casenet_buf_free(&ad);
    return rc;
}

/* Adds member m to the recipient list unless it is there already. */
static int add_recipient(struct cn_seal_recipient *list, size_t *n, const casenet_member *m)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(list[i].id, m->id) == 0)
            return CASENET_OK;
    }
    if (*n >= CASENET_MAX_RECIPIENTS)
        return CASENET_ETOOLARGE;
    list[*n].id = m->id;
    list[*n].box_key_id = m->box_key_id;
    list[*n].box_pk = m->box_pk;
    (*n)++;
    return CASENET_OK;
}

/* Expands ids and "@group"s into active members with a box key, in order of
 * first appearance, without duplicates. Nobody addresses itself (a message
 * to oneself would arm deadlines and escalate to coordinators for nothing):
 * the sender named is CASENET_EFORBIDDEN; a group leaves the sender out. */
static int resolve_recipients(const casenet_directory *dir, const char *self,
                              const casenet_seal_opts *o, struct cn_seal_recipient *list, size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < o->n_to; i++) {
        const char *to = o->to[i];
        casenet_member m;
        int rc;
        if (!to)
            return CASENET_EINVAL;
        if (strcmp(to, self) == 0)
            return CASENET_EFORBIDDEN;
        if (to[0] == '@') {
            size_t found = 0;
            for (size_t j = 0; j < casenet_directory_count(dir); j++) {
                if (casenet_directory_at(dir, j, &m) != CASENET_OK)
                    return CASENET_EBADREQ;
                if (m.status != CASENET_MEMBER_ACTIVE || !m.box_pk ||
                    !casenet_member_in_group(&m, to + 1) || strcmp(m.id, self) == 0)
                    continue;
                found++;
                rc = add_recipient(list, n, &m);
                if (rc != CASENET_OK)
                    return rc;
            }
            if (found == 0)
                return CASENET_EUNKNOWNRCPT;
            continue;
        }
        if (casenet_directory_find(dir, to, &m) != CASENET_OK ||
            m.status != CASENET_MEMBER_ACTIVE || !m.box_pk)
            return CASENET_EUNKNOWNRCPT;
        rc = add_recipient(list, n, &m);
        if (rc != CASENET_OK)
            return rc;
    }
    return *n > 0 ? CASENET_OK : CASENET_EINVAL;
}

int casenet_seal(const casenet_keys *sender, const casenet_directory *dir,
                 const casenet_seal_opts *opts, const uint8_t *payload, size_t payload_len,
                 casenet_buf *envelope, uint8_t message_id[CASENET_MESSAGE_ID_BYTES])
{
    if (!sender || !dir || !opts || !payload || !envelope || (opts->n_to && !opts->to))
        return CASENET_EINVAL;
    if (cn_payload_case_for_kind(opts->kind) == 0 || opts->urgency < 0 ||
        opts->urgency > CASENET_URGENCY_INFO || opts->status < 0 ||
        opts->status > CASENET_MSG_TEST || opts->n_to == 0)
        return CASENET_EINVAL;
    if (payload_len > CASENET_MAX_PAYLOAD_BYTES)
        return CASENET_ETOOLARGE;
    casenet_urgency urgency = opts->urgency;
    if (urgency == 0 && casenet_payload_urgency(payload, payload_len, &urgency) != CASENET_OK)
        return CASENET_EINVAL;
    if (urgency == 0)
        urgency = CASENET_URGENCY_STANDARD;
    if (urgency > CASENET_URGENCY_INFO)
        return CASENET_EINVAL;
    if (casenet_payload_check(payload, payload_len, opts->kind, urgency, NULL, 0) != CASENET_OK)
        return CASENET_EINVAL;
    if (opts->n_blob_ids > CASENET_MAX_BLOBS)
        return CASENET_ETOOLARGE;
    for (size_t i = 0; i < opts->n_blob_ids; i++)
        for (size_t j = 0; j < i; j++)
            if (memcmp(opts->blob_ids[i], opts->blob_ids[j], CASENET_BLOB_ID_BYTES) == 0)
                return CASENET_EINVAL;

    int64_t created = opts->created_at_ms ? opts->created_at_ms : cn_now_ms();
    const char *id = casenet_keys_member_id(sender);
    const char *key_id = NULL;
    const uint8_t *own_pk = casenet_keys_sign_pk(sender, &key_id), *dir_pk = NULL;
    casenet_member me;
    if (casenet_directory_find(dir, id, &me) != CASENET_OK || me.status != CASENET_MEMBER_ACTIVE ||
        casenet_directory_sign_key(dir, id, key_id, created, &dir_pk) != CASENET_OK ||
        memcmp(dir_pk, own_pk, CASENET_SIGN_PK_BYTES) != 0)
        return CASENET_EUNAUTH;
    if (broker_kind(opts->kind) && !casenet_member_has_role(&me, CN_ROLE_BROKER))
        return CASENET_EFORBIDDEN;
    if (opts->kind == CASENET_KIND_HASH_SHARE &&
        casenet_hash_share_check(dir, id, payload, payload_len, NULL, 0) != CASENET_OK)
        return CASENET_EFORBIDDEN;

    /* Secrets on the stack (sodium_malloc costs a few mmap/mprotect calls per
     * message), wiped on every path below. */
    uint8_t content_key[CASENET_CONTENT_KEY_BYTES];
    uint8_t esk[CASENET_MAX_RECIPIENTS][CN_X25519_BYTES];
    struct cn_seal_recipient *list = calloc(CASENET_MAX_RECIPIENTS, sizeof *list);
    uint8_t *pubs = malloc(CASENET_MAX_RECIPIENTS * CN_X25519_BYTES);
    int rc = CASENET_ENOMEM;
    if (!list || !pubs)
        goto cleanup;
    size_t n = 0;
    rc = resolve_recipients(dir, id, opts, list, &n);
    if (rc != CASENET_OK)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        casenet_member r;
        rc = CASENET_EFORBIDDEN;
        if (casenet_directory_find(dir, list[i].id, &r) != CASENET_OK ||
            !casenet_role_may_send(&me, opts->kind, &r))
            goto cleanup;
    }
    uint8_t mid[CASENET_MESSAGE_ID_BYTES], nonce[CASENET_NONCE_BYTES];
    randombytes_buf(mid, sizeof mid);
    randombytes_buf(nonce, sizeof nonce);
    randombytes_buf(content_key, sizeof content_key);
    for (size_t i = 0; i < n; i++) {
        crypto_box_keypair(pubs + CN_X25519_BYTES * i, esk[i]);
        list[i].eph_pk = pubs + CN_X25519_BYTES * i;
        list[i].eph_sk = esk[i];
    }
    struct cn_seal_params p = {
        .sender = id,
        .sign_key_id = key_id,
        .sign_sk = cn_keys_sign_sk(sender, NULL),
        .kind = opts->kind,
        .urgency = urgency,
        .status = opts->status ? opts->status : CASENET_MSG_ACTUAL,
        .created_at_ms = created,
        .expires_at_ms = opts->expires_at_ms,
        .in_reply_to = opts->in_reply_to,
        .case_ref = opts->case_ref,
        .message_id = mid,
        .nonce = nonce,
        .content_key = content_key,
        .n_recipients = n,
        .recipients = list,
        .payload = payload,
        .payload_len = payload_len,
        .blob_ids = opts->blob_ids,
        .n_blob_ids = opts->n_blob_ids,
    };
    rc = cn_seal_raw(&p, envelope);
    if (rc == CASENET_OK && message_id)
        memcpy(message_id, mid, sizeof mid);
cleanup:
    sodium_memzero(content_key, sizeof content_key);
    sodium_memzero(esk, sizeof esk);
    free(pubs);
    free(list);
    return rc;
}

/* ------------------------------------------------------------ verification */

struct parsed_env {
    Casenet__V1__Envelope *env;
    Casenet__V1__Header *hdr;
};

static void parsed_free(struct parsed_env *v)
{
    casenet__v1__header__free_unpacked(v->hdr, NULL);
    casenet__v1__envelope__free_unpacked(v->env, NULL);
    v->hdr = NULL;
    v->env = NULL;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool opt_len_ok(const ProtobufCBinaryData *b, size_t want)
{
    return b->len == 0 || b->len == want;
}

/* Structure of the header alone: sizes, enums, ids, recipients unique and
 * matching the wrapped keys one to one. */
static int check_structure(const Casenet__V1__Envelope *e, const Casenet__V1__Header *h)
{
    if (h->version != CN_ENVELOPE_VERSION)
        return CASENET_EVERSION;
    if (e->signature.len != CASENET_SIGNATURE_BYTES ||
        h->message_id.len != CASENET_MESSAGE_ID_BYTES || h->nonce.len != CASENET_NONCE_BYTES ||
        h->ciphertext_hash.len != CASENET_HASH_BYTES ||
        h->key_commitment.len != CASENET_HASH_BYTES ||
        !opt_len_ok(&h->in_reply_to, CASENET_MESSAGE_ID_BYTES) ||
        !opt_len_ok(&h->case_ref, CASENET_CASE_REF_BYTES))
        return CASENET_EBADREQ;
    if (e->ciphertext.len < CN_AEAD_TAG_BYTES)
        return CASENET_EBADREQ;
    if (e->ciphertext.len - CN_AEAD_TAG_BYTES > CASENET_MAX_PAYLOAD_BYTES)
        return CASENET_ETOOLARGE;
    if (cn_payload_case_for_kind(h->kind) == 0 || (int)h->urgency < 0 ||
        h->urgency > CASENET__V1__URGENCY__URGENCY_INFO || (int)h->status < 0 ||
        h->status > CASENET__V1__MESSAGE_STATUS__MESSAGE_STATUS_TEST)
        return CASENET_EBADREQ;
    if (!casenet_member_id_valid(h->sender) || strlen(h->sign_key_id) != CASENET_KEY_ID_CHARS)
        return CASENET_EBADREQ;
    size_t n = h->n_recipients;
    if (n == 0 || h->n_wrapped_keys != n)
        return CASENET_EBADREQ;
    if (n > CASENET_MAX_RECIPIENTS)
        return CASENET_ETOOLARGE;
    const char *a[CASENET_MAX_RECIPIENTS], *b[CASENET_MAX_RECIPIENTS];
    for (size_t i = 0; i < n; i++) {
        const Casenet__V1__WrappedKey *w = h->wrapped_keys[i];
        if (!casenet_member_id_valid(h->recipients[i]) ||
            w->sealed_key.len != CASENET_SEALED_KEY_BYTES ||
            strlen(w->box_key_id) != CASENET_KEY_ID_CHARS)
            return CASENET_EBADREQ;
        a[i] = h->recipients[i];
        b[i] = w->recipient;
    }
    qsort(a, n, sizeof a[0], cmp_str_ptr);
    qsort(b, n, sizeof b[0], cmp_str_ptr);
    for (size_t i = 0; i < n; i++) {
        if ((i > 0 && strcmp(a[i - 1], a[i]) == 0) || strcmp(a[i], b[i]) != 0)
            return CASENET_EBADREQ;
    }
    /* Blob ids (PROTOCOL.md §4.9): 16 bytes each, unique. */
    if (h->n_blob_ids > CASENET_MAX_BLOBS)
        return CASENET_ETOOLARGE;
    for (size_t i = 0; i < h->n_blob_ids; i++) {
        if (h->blob_ids[i].len != CASENET_BLOB_ID_BYTES)
            return CASENET_EBADREQ;
        for (size_t j = 0; j < i; j++)
            if (memcmp(h->blob_ids[i].data, h->blob_ids[j].data, CASENET_BLOB_ID_BYTES) == 0)
                return CASENET_EBADREQ;
    }
    return CASENET_OK;
}

/* Everything casenet_envelope_verify checks; on success v holds the parsed
 * envelope and header (free with parsed_free). With for_open, recipients need
 * not be active any more: a member revoked after the message was sent must not
 * make it unreadable for the others (the sender must still be active, since a
 * revoked signing key may be in someone else's hands). */
static int verify_parsed(const casenet_directory *dir, const uint8_t *buf, size_t len,
                         bool for_open, struct parsed_env *v)
{
    v->env = NULL;
    v->hdr = NULL;
    int rc = CASENET_EBADREQ;
    v->env = casenet__v1__envelope__unpack(NULL, len, buf);
    if (!v->env)
        goto fail;
    v->hdr = casenet__v1__header__unpack(NULL, v->env->header.len, v->env->header.data);
    if (!v->hdr || !cn_pb_strings_valid(&v->hdr->base))
        goto fail;
    const Casenet__V1__Header *h = v->hdr;
    rc = check_structure(v->env, h);
    if (rc != CASENET_OK)
        goto fail;

    /* Directory: the sender, its key, the recipients and their box keys. */
    casenet_member m;
    const uint8_t *pk = NULL;
    rc = CASENET_EUNAUTH;
    if (casenet_directory_find(dir, h->sender, &m) != CASENET_OK ||
        m.status != CASENET_MEMBER_ACTIVE ||
        casenet_directory_sign_key(dir, h->sender, h->sign_key_id, h->created_at_ms, &pk) !=
            CASENET_OK)
        goto fail;
    rc = CASENET_EFORBIDDEN;
    if (broker_kind(h->kind) && !casenet_member_has_role(&m, CN_ROLE_BROKER))
        goto fail;
    /* A box key the directory retired before created_at means the sender
     * sealed with an older directory: STALE_DIRECTORY, but only for an
     * envelope that passes every other check (the sender reseals on it). */
    bool stale = false;
    for (size_t i = 0; i < h->n_recipients; i++) {
        casenet_member r;
        rc = CASENET_EUNKNOWNRCPT;
        if (casenet_directory_find(dir, h->recipients[i], &r) != CASENET_OK ||
            (!for_open && r.status != CASENET_MEMBER_ACTIVE))
            goto fail;
        const Casenet__V1__WrappedKey *w = h->wrapped_keys[i];
        enum cn_key_state ks =
            cn_directory_box_key_state(dir, w->recipient, w->box_key_id, h->created_at_ms);
        stale |= ks == CN_KEY_RETIRED;
        rc = CASENET_EBADREQ;
        if (ks != CN_KEY_VALID && ks != CN_KEY_RETIRED)
            goto fail;
    }

    /* The signature over the header bytes as carried. */
    casenet_buf pae = {0};
    rc = envelope_pae(v->env->header.data, v->env->header.len, &pae);
    if (rc != CASENET_OK)
        goto fail;
    rc = cn_sign_verify(v->env->signature.data, pae.data, pae.len, pk);
    casenet_buf_free(&pae);
    if (rc != CASENET_OK)
        goto fail;

    uint8_t hash[CASENET_HASH_BYTES];
    cn_sha256(v->env->ciphertext.data, v->env->ciphertext.len, hash);
    rc = CASENET_EBADREQ;
    if (crypto_verify_32(hash, h->ciphertext_hash.data) != 0)
        goto fail;
    rc = CASENET_ESTALEDIR;
    if (stale)
        goto fail;
    return CASENET_OK;
fail:
    parsed_free(v);
    return rc;
}

void casenet_message_info_clear(casenet_message_info *info)
{
    if (!info)
        return;
    for (size_t i = 0; i < info->n_recipients; i++)
        free(info->recipients[i]);
    free(info->recipients);
    free(info->blob_ids);
    memset(info, 0, sizeof *info);
}

static int fill_info(const struct parsed_env *v, const uint8_t *buf, size_t len,
                     casenet_message_info *info)
{
    const Casenet__V1__Header *h = v->hdr;
    casenet_message_info t;
    memset(&t, 0, sizeof t);
    t.recipients = calloc(h->n_recipients, sizeof *t.recipients);
    if (!t.recipients)
        return CASENET_ENOMEM;
    for (size_t i = 0; i < h->n_recipients; i++) {
        t.recipients[i] = strdup(h->recipients[i]);
        if (!t.recipients[i]) {
            casenet_message_info_clear(&t);
            return CASENET_ENOMEM;
        }
        t.n_recipients = i + 1;
    }
    memcpy(t.message_id, h->message_id.data, CASENET_MESSAGE_ID_BYTES);
    if (cn_strlcpy(t.sender, h->sender, sizeof t.sender) != CASENET_OK ||
        cn_strlcpy(t.sign_key_id, h->sign_key_id, sizeof t.sign_key_id) != CASENET_OK) {
        casenet_message_info_clear(&t);
        return CASENET_EBADREQ;
    }
    t.kind = (casenet_kind)h->kind;
    t.urgency = h->urgency ? (casenet_urgency)h->urgency : CASENET_URGENCY_STANDARD;
    t.status = h->status ? (casenet_msg_status)h->status : CASENET_MSG_ACTUAL;
    t.created_at_ms = h->created_at_ms;
    t.expires_at_ms = h->expires_at_ms;
    if ((t.has_in_reply_to = h->in_reply_to.len != 0))
        memcpy(t.in_reply_to, h->in_reply_to.data, CASENET_MESSAGE_ID_BYTES);
    if ((t.has_case_ref = h->case_ref.len != 0))
        memcpy(t.case_ref, h->case_ref.data, CASENET_CASE_REF_BYTES);
    cn_sha256(buf, len, t.envelope_hash);
    t.ciphertext_len = v->env->ciphertext.len;
    if (h->n_blob_ids) {
        t.blob_ids = malloc(h->n_blob_ids * sizeof *t.blob_ids);
        if (!t.blob_ids) {
            casenet_message_info_clear(&t);
            return CASENET_ENOMEM;
        }
        for (size_t i = 0; i < h->n_blob_ids; i++)
            memcpy(t.blob_ids[i], h->blob_ids[i].data, CASENET_BLOB_ID_BYTES);
        t.n_blob_ids = h->n_blob_ids;
    }
    *info = t;
    return CASENET_OK;
}

int casenet_envelope_verify(const casenet_directory *dir, const uint8_t *envelope, size_t len,
                            casenet_message_info *info)
{
    if (!dir || !envelope)
        return CASENET_EINVAL;
    struct parsed_env v;
    int rc = verify_parsed(dir, envelope, len, false, &v);
    if (rc != CASENET_OK)
        return rc;
    if (info)
        rc = fill_info(&v, envelope, len, info);
    parsed_free(&v);
    return rc;
}

/* ------------------------------------------------------------ opening */

int casenet_open(const casenet_keys *reader, const casenet_directory *dir, const uint8_t *envelope,
                 size_t len, casenet_message_info *info, casenet_buf *payload)
{
    return casenet_open_detail(reader, dir, envelope, len, info, payload, NULL, 0);
}

int casenet_open_detail(const casenet_keys *reader, const casenet_directory *dir,
                        const uint8_t *envelope, size_t len, casenet_message_info *info,
                        casenet_buf *payload, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!reader || !dir || !envelope || !payload)
        return CASENET_EINVAL;
    struct parsed_env v;
    int rc = verify_parsed(dir, envelope, len, true, &v);
    if (rc != CASENET_OK)
        return rc;
    const Casenet__V1__Header *h = v.hdr;
    const char *me = casenet_keys_member_id(reader);
    const Casenet__V1__WrappedKey *w = NULL;
    uint8_t key[CASENET_CONTENT_KEY_BYTES], commit[CASENET_HASH_BYTES];
    casenet_buf ad = {0};
    uint8_t *plain = NULL;
    size_t plen = v.env->ciphertext.len - CN_AEAD_TAG_BYTES;
    for (size_t i = 0; i < h->n_wrapped_keys; i++) {
        if (strcmp(h->wrapped_keys[i]->recipient, me) == 0)
            w = h->wrapped_keys[i];
    }
    rc = CASENET_ENOTRECIPIENT;
    if (!w)
        goto cleanup;
    const uint8_t *box_pk = NULL;
    const uint8_t *box_sk = cn_keys_box_sk(reader, w->box_key_id, &box_pk);
    if (!box_sk) {
        /* Not tampering: this keyring lacks the key (replaced instead of
         * rotated, or never admitted). A key the directory has closed is a
         * retired one of this member's. */
        rc = cn_directory_box_key_state(dir, me, w->box_key_id, INT64_MAX) == CN_KEY_RETIRED
                 ? CASENET_EKEYRETIRED
                 : CASENET_EKEYUNKNOWN;
        goto cleanup;
    }
    rc = CASENET_ECRYPTO;
    rc = cn_box_seal_open(key, w->sealed_key.data, w->sealed_key.len, box_pk, box_sk);
    if (rc != CASENET_OK)
        goto cleanup;
    cn_key_commit(commit, key);
    rc = CASENET_ECOMMIT;
    if (crypto_verify_32(commit, h->key_commitment.data) != 0)
        goto cleanup;
    rc = payload_ad(h->message_id.data, h->sender, &ad);
    if (rc != CASENET_OK)
        goto cleanup;
    rc = CASENET_ENOMEM;
    plain = malloc(plen ? plen : 1);
    if (!plain)
        goto cleanup;
    rc = cn_aead_decrypt(plain, v.env->ciphertext.data, v.env->ciphertext.len, ad.data, ad.len,
                         h->nonce.data, key);
    if (rc != CASENET_OK)
        goto cleanup;
    rc = casenet_payload_check(plain, plen, (casenet_kind)h->kind, (casenet_urgency)h->urgency, err,
                               errlen);
    if (rc != CASENET_OK)
        goto cleanup;
    if (info) {
        rc = fill_info(&v, envelope, len, info);
        if (rc != CASENET_OK)
            goto cleanup;
    }
    payload->data = plain;
    payload->len = plen;
    plain = NULL;
    rc = CASENET_OK;
cleanup:
    if (plain) {
        sodium_memzero(plain, plen);
        free(plain);
    }
    sodium_memzero(key, sizeof key);
    casenet_buf_free(&ad);
    parsed_free(&v);
    return rc;
}

int casenet_envelope_box_key_id(const uint8_t *envelope, size_t len, const char *member,
                                char key_id[CASENET_KEY_ID_CHARS + 1])
{
    if (!envelope || !member || !key_id)
        return CASENET_EINVAL;
    struct parsed_env v = {0};
    int rc = CASENET_EBADREQ;
    v.env = casenet__v1__envelope__unpack(NULL, len, envelope);
    if (v.env)
        v.hdr = casenet__v1__header__unpack(NULL, v.env->header.len, v.env->header.data);
    if (!v.hdr)
        goto cleanup;
    rc = CASENET_ENOTRECIPIENT;
    for (size_t i = 0; i < v.hdr->n_wrapped_keys; i++) {
        const Casenet__V1__WrappedKey *w = v.hdr->wrapped_keys[i];
        if (strcmp(w->recipient, member) != 0)
            continue;
        rc = CASENET_EBADREQ;
        if (strlen(w->box_key_id) != CASENET_KEY_ID_CHARS)
            break;
        memcpy(key_id, w->box_key_id, CASENET_KEY_ID_CHARS + 1);
        rc = CASENET_OK;
        break;
    }
cleanup:
    parsed_free(&v);
    return rc;
}
