/* restore.c - how a restored audit log goes on: replay or new epoch
 * (restore.h). */
#include "restore.h"

#include "audit.h"
#include "audit_tree.h"
#include "auditlog.h"
#include "backup.h"
#include "casenet.pb-c.h"
#include "checkpoint.h"
#include "directory_impl.h"
#include "log.h"
#include "merkle.h"
#include "util.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAD_FILE_MAX     (64u * 1024u)
#define DEADLINES_AT_ONCE (1u << 20)

/* The previous head, when the operator gave one. */
struct prev_head {
    bool have;
    struct ckpt_head h;
    casenet_buf checkpoint; /* its bytes; owned */
};

static int node_get(void *ctx, unsigned level, uint64_t index, uint8_t out[MERKLE_HASH_BYTES])
{
    return store_audit_node_get(ctx, level, index, out);
}

/* Reads --last-head: a home's audit.state (auditv_state) or a checkpoint,
 * verified with this broker's key and the log's origin. */
static bool load_head(struct broker *b, const char *path, struct prev_head *p)
{
    casenet_buf buf = {0};
    char origin[CKPT_ORIGIN_MAX + 1];
    const char *network = cn_directory_audit_network(b->dir);
    int rc = cn_read_file(path, HEAD_FILE_MAX, &buf);
    if (rc != CASENET_OK) {
        fprintf(stderr, "casenetd: cannot read %s: %s\n", path, casenet_strerror(rc));
        return false;
    }
    struct auditv_state *st = malloc(sizeof *st);
    if (st && auditv_state_decode(buf.data, buf.len, st) == CASENET_OK) {
        casenet_buf ck = {.data = malloc(st->checkpoint_len + 1), .len = st->checkpoint_len};
        if (ck.data)
            memcpy(ck.data, st->checkpoint, st->checkpoint_len);
        casenet_buf_free(&buf);
        buf = ck;
    }
    free(st);
    rc = !buf.data || !network ? CASENET_EINVAL : ckpt_origin(network, origin);
    if (rc == CASENET_OK)
        rc = ckpt_verify(buf.data, buf.len, b->broker_id, casenet_keys_sign_pk(b->keys, NULL),
                         origin, &p->h);
    if (rc != CASENET_OK) {
        fprintf(stderr,
                "casenetd: %s is not a tree head of this log signed by %s: %s (give the "
                "coordinator's HOME/audit.state or a checkpoint)\n",
                path, b->broker_id, casenet_strerror(rc));
        casenet_buf_free(&buf);
        return false;
    }
    p->have = true;
    p->checkpoint = buf;
    return true;
}

/* The dead letter of inbox row seq, as the broker made it before the
 * backup was lost: a queued or fetched row goes dead at at_ms, its pending
 * expiry deadline is settled as breached with notice (NULL: none) and its
 * other pending deadlines void; any other row's pending expiry deadline is
 * met (void when dead), as the deadline pass would settle it. Writes no
 * event and seals no notice. *n counts the rows gone dead. In batch. */
static int settle_dead(struct store *s, uint64_t seq, int64_t at_ms, const uint8_t *notice,
                       size_t *n)
{
    struct store_inbox_row row = {0};
    struct store_deadline *ds = NULL;
    size_t nd = 0;
    int rc = store_inbox_get_seq(s, seq, &row);
    if (rc == CASENET_ENOTFOUND)
        return CASENET_OK;
    bool dies =
        rc == CASENET_OK && (row.state == STORE_INBOX_QUEUED || row.state == STORE_INBOX_FETCHED);
    int other = row.state == STORE_INBOX_DEAD ? STORE_DEADLINE_VOID : STORE_DEADLINE_MET;
    store_inbox_row_clear(&row);
    if (rc == CASENET_OK && dies)
        rc = store_inbox_set_state(s, seq, STORE_INBOX_DEAD, at_ms);
    *n += rc == CASENET_OK && dies;
    if (rc == CASENET_OK)
        rc = store_deadline_list(s, seq, &ds, &nd);
    for (size_t j = 0; rc == CASENET_OK && j < nd; j++) {
        if (ds[j].state != STORE_DEADLINE_PENDING || (!dies && ds[j].kind != STORE_DEADLINE_EXPIRE))
            continue;
        int state = ds[j].kind != STORE_DEADLINE_EXPIRE ? STORE_DEADLINE_VOID
                    : dies                              ? STORE_DEADLINE_BREACHED
                                                        : other;
        rc = store_deadline_settle(s, ds[j].id, state, at_ms,
                                   state == STORE_DEADLINE_BREACHED ? notice : NULL);
        if (rc == CASENET_ENOTFOUND)
            rc = CASENET_OK;
    }
    free(ds);
    return rc;
}

/* Settles pending deadlines due at or before cutoff_ms without a notice
 * (new epoch): deliver/accept ones as breached, expiry ones by the dead
 * letter settle_dead makes (the broker made it, and its notice went out,
 * while it ran after the backup). In batch. */
static int settle_before(struct store *s, int64_t cutoff_ms, int64_t now_ms, size_t *settled,
                         size_t *expired)
{
    struct store_deadline *ds = NULL;
    size_t n = 0;
    int rc = store_deadline_due(s, cutoff_ms, DEADLINES_AT_ONCE, &ds, &n);
    for (size_t i = 0; rc == CASENET_OK && i < n; i++) {
        if (ds[i].kind == STORE_DEADLINE_EXPIRE) {
            rc = settle_dead(s, ds[i].seq, now_ms, NULL, expired);
            continue;
        }
        rc = store_deadline_settle(s, ds[i].id, STORE_DEADLINE_BREACHED, now_ms, NULL);
        if (rc == CASENET_OK)
            (*settled)++;
        else if (rc == CASENET_ENOTFOUND)
            rc = CASENET_OK; /* voided by its row's dead letter above */
    }
    free(ds);
    return rc;
}

/* The notice id an event's detail names after "notice=" (32 hex digits),
 * or false ("-": none). */
static bool detail_notice(const char *detail, uint8_t nid[CASENET_MESSAGE_ID_BYTES])
{
    const char *p = strstr(detail, "notice=");
    if (!p || strlen(p + 7) < 2 * CASENET_MESSAGE_ID_BYTES)
        return false;
    for (size_t i = 0; i < CASENET_MESSAGE_ID_BYTES; i++)
        if (sscanf(p + 7 + 2 * i, "%2hhx", &nid[i]) != 1)
            return false;
    return true;
}

/* A replayed DEAD_LETTERED event: the rows of its message addressed to the
 * recipients it lists go dead as they did, their expiry deadlines settled
 * with its notice (never sent again). In batch. */
static int settle_dead_lettered(struct store *s, const Casenet__V1__AuditEvent *e, size_t *settled)
{
    const char *list = strstr(e->detail, "recipients=");
    if (e->message_id.len != CASENET_MESSAGE_ID_BYTES || !list)
        return CASENET_OK;
    list += strlen("recipients=");
    size_t list_len = strcspn(list, " ");
    uint8_t nid[CASENET_MESSAGE_ID_BYTES];
    bool has_notice = detail_notice(e->detail, nid);
    struct store_inbox_row *rows = NULL;
    size_t n = 0;
    int rc = store_inbox_of_message(s, e->message_id.data, &rows, &n);
    for (size_t i = 0; rc == CASENET_OK && i < n; i++) {
        size_t len = strlen(rows[i].recipient);
        bool listed = false;
        for (const char *p = list; p < list + list_len && !listed; p += strcspn(p, ",") + 1)
            listed = strncmp(p, rows[i].recipient, len) == 0 &&
                     (p[len] == ',' || p[len] == ' ' || p[len] == '\0');
        if (listed)
            rc = settle_dead(s, rows[i].seq, e->time_ms, has_notice ? nid : NULL, settled);
    }
    store_inbox_rows_free(rows, n);
    return rc;
}

/* A replayed ESCALATED event (not a summary): settles the pending deadline
 * it names as breached with its notice. In batch. */
static int settle_escalated(struct store *s, const Casenet__V1__AuditEvent *e, size_t *settled)
{
    char kind[16], who[CASENET_MEMBER_ID_MAX + 1], notice[2 * CASENET_MESSAGE_ID_BYTES + 2];
    long long due = 0;
    if (e->message_id.len != CASENET_MESSAGE_ID_BYTES ||
        sscanf(e->detail, "deadline=%15s recipient=%64s due_at_ms=%lld notice=%33s", kind, who,
               &due, notice) != 4)
        return CASENET_OK; /* a summary */
    int dk = strcmp(kind, "deliver") == 0  ? STORE_DEADLINE_DELIVER
             : strcmp(kind, "accept") == 0 ? STORE_DEADLINE_ACCEPT
                                           : 0;
    uint8_t nid[CASENET_MESSAGE_ID_BYTES];
    bool has_notice = strlen(notice) == 2 * sizeof nid;
    for (size_t i = 0; has_notice && i < sizeof nid; i++)
        has_notice = sscanf(notice + 2 * i, "%2hhx", &nid[i]) == 1;
    struct store_inbox_row *rows = NULL;
    size_t n = 0;
    int rc = store_inbox_of_message(s, e->message_id.data, &rows, &n);
    for (size_t i = 0; rc == CASENET_OK && i < n; i++) {
        if (strcmp(rows[i].recipient, who) != 0)
            continue;
        struct store_deadline *ds = NULL;
        size_t nd = 0;
        rc = store_deadline_list(s, rows[i].seq, &ds, &nd);
        for (size_t j = 0; rc == CASENET_OK && j < nd; j++)
            if (ds[j].kind == dk && ds[j].state == STORE_DEADLINE_PENDING) {
                rc = store_deadline_settle(s, ds[j].id, STORE_DEADLINE_BREACHED, e->time_ms,
                                           has_notice ? nid : NULL);
                *settled += rc == CASENET_OK;
            }
        free(ds);
    }
    store_inbox_rows_free(rows, n);
    return rc;
}

/* Appends one event of the export at the log's next index, byte for byte.
 * In batch. */
static int append_event(struct store *s, const casenet_buf *ev, uint64_t index, size_t *settled)
{
    Casenet__V1__AuditEvent *e = casenet__v1__audit_event__unpack(NULL, ev->len, ev->data);
    if (!e || e->index != index) {
        if (e)
            casenet__v1__audit_event__free_unpacked(e, NULL);
        fprintf(stderr, "casenetd: the export's event %" PRIu64 " is malformed\n", index);
        return CASENET_EBADREQ;
    }
    uint64_t next = 0;
    int rc = store_audit_next_index(s, &next);
    if (rc == CASENET_OK && next != index)
        rc = CASENET_ECONFLICT;
    if (rc == CASENET_OK)
        rc = store_audit_append(s, index, e->time_ms, (int)e->kind, (const char *const *)e->parties,
                                e->n_parties, ev->data, ev->len);
    if (rc == CASENET_OK && e->kind == CASENET__V1__AUDIT_KIND__AUDIT_KIND_ESCALATED)
        rc = settle_escalated(s, e, settled);
    if (rc == CASENET_OK && e->kind == CASENET__V1__AUDIT_KIND__AUDIT_KIND_DEAD_LETTERED)
        rc = settle_dead_lettered(s, e, settled);
    casenet__v1__audit_event__free_unpacked(e, NULL);
    return rc;
}

/* Feeds the export's events n..M-1 into the open batch. */
static int replay_events(struct broker *b, FILE *f, uint64_t n, uint64_t m, size_t *settled)
{
    struct auditv_export_header hdr;
    struct auditv_reader *r = NULL;
    struct auditv_failure fail = {0};
    int rc = auditv_reader_open(f, &hdr, &r, &fail);
    if (rc == CASENET_OK && (hdr.from_index > n || strcmp(hdr.broker_id, b->broker_id) != 0)) {
        fprintf(stderr,
                "casenetd: the export starts at %" PRIu64 " or is of broker %s: it must "
                "be of %s from index %" PRIu64 " or earlier\n",
                hdr.from_index, hdr.broker_id, b->broker_id, n);
        rc = CASENET_EBADREQ;
    }
    uint64_t at = hdr.from_index;
    while (rc == CASENET_OK && at < m) {
        enum auditv_record_type type;
        casenet_buf rec = {0};
        bool eof = false;
        rc = auditv_reader_next(r, &type, &rec, &eof, &fail);
        if (rc == CASENET_OK && eof) {
            fprintf(stderr,
                    "casenetd: the export ends at %" PRIu64 ", before the head's size "
                    "%" PRIu64 "\n",
                    at, m);
            rc = CASENET_ENOTFOUND;
        } else if (rc == CASENET_OK && type == AUDITV_REC_EVENT) {
            if (at >= n)
                rc = append_event(b->store, &rec, at, settled);
            at++;
        }
        casenet_buf_free(&rec);
    }
    if (fail.reason[0])
        fprintf(stderr, "casenetd: the export: %s\n", fail.reason);
    auditv_reader_free(r);
    return rc;
}

/* --replay: the lost tail re-appended; the root at M must be the head's. */
static int replay(struct broker *b, const char *path, uint64_t n, const struct prev_head *p)
{
    struct store *s = b->store;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "casenetd: cannot open %s\n", path);
        return 1;
    }
    size_t settled = 0;
    int rc = store_begin(s);
    if (rc == CASENET_OK)
        rc = replay_events(b, f, n, p->h.size, &settled);
    fclose(f);
    uint64_t size = 0;
    uint8_t root[MERKLE_HASH_BYTES];
    if (rc == CASENET_OK && (rc = store_audit_tree(s, &size, root)) == CASENET_OK &&
        (size != p->h.size || sodium_memcmp(root, p->h.root, sizeof root) != 0)) {
        fprintf(stderr,
                "casenetd: the replayed log's root at size %" PRIu64 " differs from the "
                "head's: the export is not of this log; nothing was written\n",
                p->h.size);
        rc = CASENET_EBADSIG;
    }
    struct store_head sh = {
        .size = p->h.size, .time_ms = p->h.time_ms, .checkpoint = p->checkpoint};
    memcpy(sh.root, p->h.root, sizeof sh.root);
    if (rc == CASENET_OK)
        rc = store_head_save(s, &sh);
    if (rc == CASENET_OK)
        rc = store_commit(s);
    else
        store_rollback(s);
    if (rc != CASENET_OK)
        return 1;
    printf("casenetd: replayed events %" PRIu64 "..%" PRIu64 " from %s: the log is again at the "
           "head of size %" PRIu64 " (same root); %zu escalations and dead letters in them are "
           "settled\n",
           n, p->h.size - 1, path, p->h.size, settled);
    return 0;
}

/* --new-epoch: the LOG_RESTORED event and a head over it. */
static int new_epoch(struct broker *b, uint64_t n, const struct prev_head *p)
{
    struct store *s = b->store;
    int64_t now = cn_now_ms();
    size_t settled = 0, expired = 0;
    char detail[200];
    if (p->have)
        snprintf(detail, sizeof detail,
                 "log restored from backup at size %" PRIu64 ", previous head %" PRIu64, n,
                 p->h.size);
    else
        snprintf(detail, sizeof detail,
                 "log restored from backup at size %" PRIu64 ", previous head unknown", n);
    int rc = store_begin(s);
    if (rc == CASENET_OK)
        rc = settle_before(s, p->have ? p->h.time_ms : now, now, &settled, &expired);
    if (rc == CASENET_OK)
        rc = audit_log_restored(s, now, casenet_directory_version(b->dir), p->have ? p->h.size : 0,
                                p->h.root, p->h.time_ms, detail, NULL);
    if (rc == CASENET_OK)
        rc = store_commit(s);
    else
        store_rollback(s);
    if (rc == CASENET_OK)
        rc = audit_tree_sign_head(b);
    if (rc != CASENET_OK) {
        fprintf(stderr, "casenetd: cannot write the new epoch: %s\n", casenet_strerror(rc));
        return 1;
    }
    log_event(LOG_WARN, "log_restored", "restored_size", log_u64(n), "previous_size",
              log_u64(p->have ? p->h.size : 0), NULL);
    printf("casenetd: new epoch: %s; %zu deadlines settled and %zu rows dead-lettered "
           "without a new notice. Tell the coordinators: 'casenet audit verify "
           "--full' reports the events lost.\n",
           detail, settled, expired);
    return 0;
}

int restore_resolve(struct broker *b, const struct restore_choice *c)
{
    bool present = false;
    struct backup_marker m = {0};
    struct prev_head p = {0};
    int exit_code = 1;
    uint64_t n = 0;
    uint8_t root[MERKLE_HASH_BYTES];
    if (backup_marker_get(b->cfg->data_dir, &present, &m) != CASENET_OK ||
        store_audit_tree(b->store, &n, root) != CASENET_OK)
        return 1;
    if (!present) {
        fprintf(stderr, "casenetd: the store in %s is not a restored one: nothing to decide\n",
                b->cfg->data_dir);
        return 1;
    }
    if (n > m.restored_size) { /* decided before; only the marker stayed */
        printf("casenetd: the log already goes on past the restored size %" PRIu64 "\n",
               m.restored_size);
        return backup_marker_clear(b->cfg->data_dir) == CASENET_OK ? 0 : 1;
    }
    if (c->last_head && !load_head(b, c->last_head, &p))
        goto cleanup;
    if (p.have && p.h.size <= n) {
        uint8_t at[MERKLE_HASH_BYTES];
        if (merkle_root_at(node_get, b->store, p.h.size, at) != CASENET_OK ||
            sodium_memcmp(at, p.h.root, sizeof at) != 0) {
            fprintf(stderr,
                    "casenetd: the restored log differs from the head of size %" PRIu64
                    ": this backup is not of that log\n",
                    p.h.size);
            goto cleanup;
        }
        printf("casenetd: the restored log holds the head of size %" PRIu64 ": nothing was lost\n",
               p.h.size);
        exit_code = 0;
    } else if (c->replay) {
        if (!p.have)
            fprintf(stderr, "casenetd: --replay needs --last-head: the head the tail must reach\n");
        else
            exit_code = replay(b, c->replay, n, &p);
    } else {
        exit_code = new_epoch(b, n, &p);
    }
    if (exit_code == 0 && backup_marker_clear(b->cfg->data_dir) != CASENET_OK)
        exit_code = 1;
    if (exit_code == 0)
        printf("casenetd: the broker may start again\n");
cleanup:
    casenet_buf_free(&p.checkpoint);
    return exit_code;
}
