/* crash_check.c - the checks on a broker's store after a crash run, the same
 * for SQLite and PostgreSQL (crash.h's crash_db reads either): the stored
 * messages and inbox rows are read once and matched against the attempts in
 * memory; the rest are counts in SQL; the audit table is written as an
 * export file and verified (clients/auditlog.h). */
#include "crash.h"

#include "auditlog.h"
#include "checkpoint.h"
#include "testlib.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

void crash_die(const char *what)
{
    fprintf(stderr, "crash_test: %s\n", what);
    exit(2);
}

void crash_fail(const char *fmt, ...)
{
    failures++;
    if (failures > 20)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "crash_test: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int crash_failures(void)
{
    return failures;
}

static int cmp_attempt(const void *a, const void *b)
{
    return memcmp(((const struct attempt *)a)->id, ((const struct attempt *)b)->id,
                  CASENET_MESSAGE_ID_BYTES);
}

static struct attempt *find(struct crash_load *l, const crash_col *id)
{
    if (id->len != CASENET_MESSAGE_ID_BYTES)
        return NULL;
    struct attempt key;
    memcpy(key.id, id->p, sizeof key.id);
    return bsearch(&key, l->all, l->n, sizeof *l->all, cmp_attempt);
}

struct scan {
    struct crash_load *load;
    bool *stored; /* per attempt */
    uint64_t n_stored, strangers;
};

/* A row of messages: its id was attempted (and is stored once: UNIQUE). */
static void on_message(void *arg, const crash_col *c)
{
    struct scan *s = arg;
    struct attempt *a = find(s->load, &c[0]);
    char hex[2 * CASENET_MESSAGE_ID_BYTES + 1];
    if (!a) {
        if (c[0].len != CASENET_MESSAGE_ID_BYTES) {
            crash_fail("a stored message id is malformed");
        } else {
            tl_hex(c[0].p, CASENET_MESSAGE_ID_BYTES, hex);
            crash_fail("stored message %s was never submitted", hex);
        }
        return;
    }
    s->stored[a - s->load->all] = true;
    s->n_stored++;
}

/* A message row of an inbox (receipts forwarded are not messages). */
static void on_inbox_row(void *arg, const crash_col *c)
{
    struct scan *s = arg;
    struct attempt *a = find(s->load, &c[1]);
    if (!a) {
        s->strangers++;
        return;
    }
    for (int j = 0; j < CRASH_RCPTS; j++) {
        if (c[0].len == strlen(crash_rcpt_ids[j]) &&
            memcmp(c[0].p, crash_rcpt_ids[j], c[0].len) == 0) {
            if (a->rows[j] < UINT8_MAX)
                a->rows[j]++;
            return;
        }
    }
    char hex[2 * CASENET_MESSAGE_ID_BYTES + 1];
    tl_hex(a->id, sizeof a->id, hex);
    crash_fail("message %s is in an inbox that is not a recipient's", hex);
}

/* Per attempt: receipted => stored and in each recipient's inbox once;
 * stored => inbox rows all or none (here: all); no row in another inbox.
 * Returns the losses. */
static uint64_t check_attempts(struct scan *s)
{
    uint64_t losses = 0;
    char hex[2 * CASENET_MESSAGE_ID_BYTES + 1];
    for (size_t i = 0; i < s->load->n; i++) {
        struct attempt *a = &s->load->all[i];
        bool is_stored = s->stored[i];
        unsigned seen = 0;
        bool dup = false;
        for (int j = 0; j < CRASH_RCPTS; j++) {
            dup |= a->rows[j] > 1;
            if (a->rows[j])
                seen |= 1u << j;
        }
        tl_hex(a->id, sizeof a->id, hex);
        if (a->receipted && !is_stored) {
            losses++;
            crash_fail("receipted message %s is not stored", hex);
        }
        if (dup)
            crash_fail("message %s is twice in an inbox", hex);
        if (seen & ~a->mask)
            crash_fail("message %s is in an inbox that is not a recipient's", hex);
        if (is_stored && (seen & a->mask) != a->mask) {
            if (a->receipted)
                losses++;
            crash_fail("stored message %s is missing from a recipient's inbox", hex);
        }
        if (!is_stored && seen)
            crash_fail("message %s has inbox rows but is not stored", hex);
    }
    return losses;
}

struct export
{
    FILE *f;
    bool ok;
};

static void on_event(void *arg, const crash_col *c)
{
    struct export *e = arg;
    if (auditv_export_write_event(e->f, c[0].p, c[0].len) != CASENET_OK)
        e->ok = false;
}

/* Writes the audit table as an export file and runs the verifier on it. */
static void check_audit_log(crash_db *db, tn_network *tn, uint64_t *events)
{
    int64_t count = db->scalar(db->h, "SELECT count(*) FROM audit");
    int64_t min = db->scalar(db->h, "SELECT COALESCE(min(idx), 0) FROM audit");
    int64_t max = db->scalar(db->h, "SELECT COALESCE(max(idx), -1) FROM audit");
    *events = (uint64_t)count;
    if (min != 0 || max + 1 != count)
        crash_fail("audit indexes are not dense from 0");
    casenet_member b;
    if (casenet_directory_broker(tn->net->dir, &b) != CASENET_OK || !b.sign_pk)
        crash_die("directory broker");
    struct auditv_export_header h = {.from_index = 0};
    snprintf(h.network, sizeof h.network, "%s", CRASH_NETWORK_NAME);
    snprintf(h.broker_id, sizeof h.broker_id, "%s", TN_BROKER_ID);
    memcpy(h.broker_sign_pk, b.sign_pk, sizeof h.broker_sign_pk);
    struct export e = {.f = tmpfile(), .ok = true};
    if (!e.f || auditv_export_write_header(e.f, &h) != CASENET_OK)
        crash_die("export");
    db->each(db->h, "SELECT event FROM audit ORDER BY idx", on_event, &e);
    if (!e.ok)
        crash_die("export event");
    rewind(e.f);
    char origin[CKPT_ORIGIN_MAX + 1];
    if (ckpt_origin(CRASH_NETWORK_NAME, origin) != CASENET_OK)
        crash_die("origin");
    struct auditv_config cfg = {.origin = origin, .key_name = TN_BROKER_ID, .sign_pk = b.sign_pk};
    struct auditv_failure why = {0};
    if (auditv_verify_file(e.f, &cfg, NULL, NULL, &why) != CASENET_OK)
        crash_fail("the audit log does not verify: %s", why.reason);
    fclose(e.f);
}

void crash_check(crash_db *db, tn_network *tn, struct crash_load *load, struct crash_figures *f)
{
    struct scan s = {.load = load, .stored = calloc(load->n ? load->n : 1, sizeof(bool))};
    if (!s.stored)
        crash_die("out of memory");
    for (size_t i = 0; i < load->n; i++)
        memset(load->all[i].rows, 0, sizeof load->all[i].rows);
    db->each(db->h, "SELECT message_id FROM messages", on_message, &s);
    db->each(db->h, "SELECT recipient, message_id FROM inbox WHERE kind <> 20", on_inbox_row, &s);
    f->losses = check_attempts(&s);
    f->stored = s.n_stored;
    free(s.stored);
    /* Every message row of every inbox is one of the attempts. */
    if (s.strangers)
        crash_fail("an inbox holds a row that no sender submitted");
    if (db->scalar(db->h, "SELECT count(*) FROM inbox i WHERE i.kind <> 20 AND NOT EXISTS"
                          " (SELECT 1 FROM messages m WHERE m.id = i.msg"
                          " AND m.message_id = i.message_id)") != 0)
        crash_fail("an inbox row has no stored message");
    if (db->scalar(db->h, "SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM audit"
                          " a WHERE a.idx = m.audit_index AND a.kind = 1)") != 0)
        crash_fail("a stored message has no SUBMITTED audit event");
    int64_t submitted = db->scalar(db->h, "SELECT count(*) FROM audit WHERE kind = 1");
    if ((uint64_t)submitted != f->stored ||
        db->scalar(db->h, "SELECT count(*) FROM messages") != (int64_t)f->stored)
        crash_fail("SUBMITTED events, stored messages and attempts disagree");
    f->starts = db->scalar(db->h, "SELECT count(*) FROM audit WHERE kind = 11");
    check_audit_log(db, tn, &f->events);
}
