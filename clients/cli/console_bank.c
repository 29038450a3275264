/* console_bank.c - the hash bank in the console (see console_bank.h): the
 * notice thread imports hash shares through hashes_import_one and
 * hashes_import_pending (the code `casenet hashes import` runs, which
 * applies through the same hashes_apply_opened as `casenet watch`), and
 * GET /api/v1/bank reads the bank back. Every string from the bank (source
 * names, references, feedback notes, labels) goes out as a JSON string: the
 * page puts it on screen as text only. */
#include "console_bank.h"

#include "cli.h"
#include "cmd_hashes.h"
#include "console.h"
#include "hashbank.h"
#include "text.h"

#include "casenet.pb-c.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool console_bank_held(const struct console *c)
{
    static const char *const receivers[] = {"intake", "responder", "gateway", "platform"};
    casenet_member m;
    if (casenet_directory_find(c->home->dir, c->home->member, &m) != CASENET_OK)
        return false;
    for (size_t i = 0; i < sizeof receivers / sizeof receivers[0]; i++) {
        if (casenet_member_has_role(&m, receivers[i]))
            return true;
    }
    return false;
}

static int bank_open(const struct console *c, hashbank **b)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", c->home->path, HASHBANK_FILE);
    return hashbank_open(path, b);
}

void console_bank_notice(struct console *c, casenet_client *cl, const casenet_inbox_entry *e)
{
    if ((e && e->kind != CASENET_KIND_HASH_SHARE) || !console_bank_held(c))
        return;
    hashbank *b = NULL;
    if (bank_open(c, &b) != CASENET_OK) {
        fprintf(stderr, "console: cannot open the hash bank in %s: hash shares wait in the inbox\n",
                c->home->path);
        return;
    }
    size_t applied = 0;
    if (e)
        applied = hashes_import_one(c->home, cl, b, e) == CASENET_OK;
    else
        (void)hashes_import_pending(c->home, cl, b, &applied);
    hashbank_free(b);
    if (applied)
        console_events_push(c, "{\"type\":\"bank\"}");
}

/* ------------------------------------------------------------ GET /bank */

/* The query argument name within [min, max]; dflt when absent or out of range. */
static size_t qsize(const struct console_req *r, const char *name, size_t dflt, size_t min,
                    size_t max)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    uint64_t n = 0;
    if (!v || !v[0] || !cli_parse_uint(v, min, max, &n))
        return dflt;
    return (size_t)n;
}

static const char *source_name(const struct console *c, const char *source)
{
    casenet_member m;
    if (strncmp(source, "list:", 5) != 0 &&
        casenet_directory_find(c->home->dir, source, &m) == CASENET_OK && m.display_name)
        return m.display_name;
    return source;
}

struct page_ctx {
    const struct console *c;
    json_t *rows;
};

static int add(json_t *rows, json_t *o)
{
    return o && json_array_append_new(rows, o) == 0 ? CASENET_OK : CASENET_ENOMEM;
}

static int source_row(const struct hashbank_source *s, void *ctx)
{
    struct page_ctx *p = ctx;
    return add(p->rows,
               json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I}", "source", s->source,
                         "name", source_name(p->c, s->source), "list",
                         strncmp(s->source, "list:", 5) == 0, "live", (json_int_t)s->live_total,
                         "baseline", (json_int_t)s->live[1], "nationally_illegal",
                         (json_int_t)s->live[2], "not_illegal", (json_int_t)s->live[3], "retracted",
                         (json_int_t)s->retracted, "last_update", (json_int_t)s->updated_ms));
}

/* label as text. It is a file name (hashes match --record-name): bytes,
 * not UTF-8 when made elsewhere or cut at HASHBANK_LABEL_MAX inside a
 * character, and jansson packs no such string: then each byte of 0x80 and
 * up shows as '_', rather than the whole page failing. */
static const char *label_text(const char *label, char out[HASHBANK_LABEL_MAX + 1])
{
    if (cn_utf8_valid(label, strlen(label)))
        return label;
    size_t i = 0;
    for (; label[i] && i < HASHBANK_LABEL_MAX; i++)
        out[i] = (unsigned char)label[i] >= 0x80 ? '_' : label[i];
    out[i] = '\0';
    return out;
}

static int match_row(const struct hashbank_match *m, void *ctx)
{
    struct page_ctx *p = ctx;
    char label[HASHBANK_LABEL_MAX + 1];
    return add(p->rows,
               json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "at", (json_int_t)m->at_ms,
                         "signal_type", m->signal_type, "value", m->value, "category",
                         hashbank_category_name(m->category), "source", m->contributor, "name",
                         source_name(p->c, m->contributor), "distance", (int)m->distance, "label",
                         label_text(m->label, label)));
}

static int feedback_row(const struct hashbank_feedback *f, void *ctx)
{
    struct page_ctx *p = ctx;
    bool fp = f->kind == CASENET__V1__HASH_FEEDBACK_KIND__HASH_FEEDBACK_KIND_FALSE_POSITIVE;
    const char *peer = f->sender ? f->sender : f->recipient;
    return add(p->rows,
               json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "at",
                         (json_int_t)f->created_ms, f->sender ? "from" : "to", peer, "name",
                         f->sender ? source_name(p->c, peer) : peer, "kind",
                         fp ? "false-positive" : "match", "signal_type", f->signal_type, "value",
                         f->value, "match_count", (json_int_t)f->match_count, "note", f->note));
}

/* {"total", "offset", "rows"} for one paged list, or NULL (*rc says why). */
static json_t *page(const struct console *c, hashbank *b, int which, size_t offset, size_t limit,
                    int *rc)
{
    struct page_ctx p = {.c = c, .rows = json_array()};
    uint64_t total = 0;
    if (!p.rows) {
        *rc = CASENET_ENOMEM;
        return NULL;
    }
    if (which == 0)
        *rc = hashbank_each_match(b, offset, limit, match_row, &p, &total);
    else
        *rc = hashbank_feedback_page(b, which == 2, offset, limit, feedback_row, &p, &total);
    if (*rc != CASENET_OK) {
        json_decref(p.rows);
        return NULL;
    }
    return json_pack("{s:I, s:I, s:o}", "total", (json_int_t)total, "offset", (json_int_t)offset,
                     "rows", p.rows);
}

static json_t *totals_json(const struct hashbank_stats *s)
{
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "live", (json_int_t)s->live,
        "baseline", (json_int_t)s->by_category[1], "nationally_illegal",
        (json_int_t)s->by_category[2], "not_illegal", (json_int_t)s->by_category[3], "retracted",
        (json_int_t)s->retracted, "contributors", (json_int_t)s->contributors, "messages",
        (json_int_t)s->messages, "matches_reported", (json_int_t)s->matches, "false_positives",
        (json_int_t)s->false_positives, "last_update", (json_int_t)s->last_update_ms);
}

/* The page's object for b: counts always, the lists when detail. */
static int bank_json(const struct console *c, const struct console_req *r, hashbank *b, bool detail,
                     json_t **out)
{
    struct hashbank_stats s;
    struct page_ctx sources = {.c = c, .rows = json_array()};
    int rc = sources.rows ? hashbank_stats(b, &s) : CASENET_ENOMEM;
    if (rc == CASENET_OK)
        rc = hashbank_each_source(b, source_row, &sources);
    json_t *o = rc == CASENET_OK
                    ? json_pack("{s:s, s:o, s:O, s:b}", "member", c->home->member, "totals",
                                totals_json(&s), "sources", sources.rows, "detail", detail)
                    : NULL;
    json_decref(sources.rows);
    if (rc == CASENET_OK && !o)
        rc = CASENET_ENOMEM;
    size_t limit = qsize(r, "limit", CONSOLE_BANK_PAGE, 1, CONSOLE_BANK_PAGE_MAX);
    static const char *const lists[] = {"matches", "feedback_received", "feedback_sent"};
    static const char *const offsets[] = {"matches_offset", "received_offset", "sent_offset"};
    for (int i = 0; detail && rc == CASENET_OK && i < 3; i++) {
        json_t *pg = page(c, b, i, qsize(r, offsets[i], 0, 0, INT32_MAX), limit, &rc);
        if (pg)
            json_object_set_new(o, lists[i], pg);
    }
    if (rc != CASENET_OK) {
        json_decref(o);
        return rc;
    }
    json_object_set_new(o, "limit", json_integer((json_int_t)limit));
    *out = o;
    return CASENET_OK;
}

void console_bank_api(struct console *c, const struct console_req *r, struct console_resp *out)
{
    if (strcmp(r->method, "GET") != 0)
        return console_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "METHOD", "the bank is read-only",
                             NULL);
    if (!console_bank_held(c))
        return console_error(out, MHD_HTTP_FORBIDDEN, "FORBIDDEN",
                             "this member holds no hash bank: only intake, responder, gateway and "
                             "platform members receive hash shares",
                             NULL);
    bool detail = r->who->role >= ROLE_CASEWORKER;
    if (detail && console_ledger_add(c->db, r->who->user, "read:bank", NULL, NULL) != CASENET_OK)
        return console_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "IO",
                             "the disclosure ledger cannot be written: nothing is shown; check "
                             "the console's disk",
                             NULL);
    hashbank *b = NULL;
    json_t *o = NULL;
    int rc = bank_open(c, &b);
    if (rc == CASENET_OK)
        rc = bank_json(c, r, b, detail, &o);
    hashbank_free(b);
    if (rc != CASENET_OK)
        return console_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, casenet_errname(rc),
                             "cannot read the hash bank: check the home's permissions and disk "
                             "(casenet hashes stats says more)",
                             NULL);
    console_ok(out, o);
}
