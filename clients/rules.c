/* rules.c - the rules a message must follow beyond its envelope's structure:
 * the fields each payload kind requires, the urgency a payload states, and
 * the role matrix of who may send which kind to whom (PROTOCOL.md §6, §6.1;
 * see casenet.h). Sealing, opening and the broker's Submit share them. */
#include "casenet.h"
#include "casenet.pb-c.h"
#include "directory_impl.h"
#include "envelope_impl.h"
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ required fields */

/* The missing fields of one payload, comma-separated, in JSON names. */
struct missing {
    char text[512];
    size_t len;
    size_t n;
};

__attribute__((format(printf, 2, 3))) static void miss(struct missing *m, const char *fmt, ...)
{
    char name[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int w = snprintf(m->text + m->len, sizeof m->text - m->len, "%s%s", m->n ? ", " : "", name);
    if (w > 0)
        m->len += (size_t)w < sizeof m->text - m->len ? (size_t)w : sizeof m->text - m->len - 1;
    m->n++;
}

static bool set(const char *s)
{
    return s && *s;
}

static void need_str(struct missing *m, const char *prefix, const char *name, const char *s)
{
    if (!set(s))
        miss(m, "%s%s", prefix, name);
}

static void need_legal_basis(struct missing *m, const char *prefix,
                             const Casenet__V1__LegalBasis *lb)
{
    if (!lb || lb->kind == CASENET__V1__LEGAL_BASIS_KIND__LEGAL_BASIS_KIND_UNSPECIFIED)
        miss(m, "%slegalBasis.kind", prefix);
    else if (lb->kind == CASENET__V1__LEGAL_BASIS_KIND__LEGAL_BASIS_KIND_CONSENT &&
             !set(lb->consented_by))
        miss(m, "%slegalBasis.consentedBy", prefix);
}

static void need_referral(struct missing *m, const char *prefix, const Casenet__V1__Referral *r)
{
    need_str(m, prefix, "caseId", r->case_id);
    if (r->urgency == CASENET__V1__URGENCY__URGENCY_UNSPECIFIED)
        miss(m, "%surgency", prefix);
    bool harm = r->n_harm_categories > 0;
    for (size_t i = 0; i < r->n_harm_categories; i++)
        harm =
            harm && r->harm_categories[i] != CASENET__V1__HARM_CATEGORY__HARM_CATEGORY_UNSPECIFIED;
    if (!harm)
        miss(m, "%sharmCategories", prefix);
    need_legal_basis(m, prefix, r->legal_basis);
    need_str(m, prefix, "summary", r->summary);
}

static void need_status(struct missing *m, const Casenet__V1__StatusNote *s)
{
    need_str(m, "", "caseId", s->case_id);
    switch (s->status) {
    case CASENET__V1__CASE_STATUS__CASE_STATUS_UNSPECIFIED:
        miss(m, "status");
        break;
    case CASENET__V1__CASE_STATUS__CASE_STATUS_DECLINED:
        need_str(m, "", "reason", s->reason);
        break;
    case CASENET__V1__CASE_STATUS__CASE_STATUS_REDIRECTED:
        need_str(m, "", "redirectedTo", s->redirected_to);
        break;
    case CASENET__V1__CASE_STATUS__CASE_STATUS_CLOSED:
        need_str(m, "", "outcome", s->outcome);
        break;
    default:
        break;
    }
}

static void need_takedown_request(struct missing *m, const Casenet__V1__TakedownRequest *t)
{
    need_str(m, "", "caseId", t->case_id);
    if (t->n_items == 0)
        miss(m, "items");
    for (size_t i = 0; i < t->n_items; i++) {
        const Casenet__V1__TakedownItem *it = t->items[i];
        if (!set(it->item_id))
            miss(m, "items[%zu].itemId", i);
        if (!it->locator || !set(it->locator->url))
            miss(m, "items[%zu].locator.url", i);
    }
    need_legal_basis(m, "", t->legal_basis);
}

static void need_takedown_result(struct missing *m, const Casenet__V1__TakedownResult *t)
{
    need_str(m, "", "caseId", t->case_id);
    if (t->n_results == 0)
        miss(m, "results");
    for (size_t i = 0; i < t->n_results; i++) {
        const Casenet__V1__TakedownItemResult *r = t->results[i];
        if (!set(r->item_id))
            miss(m, "results[%zu].itemId", i);
        if (r->outcome == CASENET__V1__TAKEDOWN_OUTCOME__TAKEDOWN_OUTCOME_UNSPECIFIED)
            miss(m, "results[%zu].outcome", i);
        else if (r->outcome == CASENET__V1__TAKEDOWN_OUTCOME__TAKEDOWN_OUTCOME_REFUSED &&
                 !set(r->reason))
            miss(m, "results[%zu].reason", i);
    }
}

static void need_notice(struct missing *m, const Casenet__V1__BrokerNotice *n)
{
    if (n->reason == CASENET__V1__NOTICE_REASON__NOTICE_REASON_UNSPECIFIED)
        miss(m, "reason");
    if (n->message_id.len != CASENET_MESSAGE_ID_BYTES)
        miss(m, "messageId");
    need_str(m, "", "sender", n->sender);
    /* A summary stands for many recipients' breaches and names none. */
    if (n->reason != CASENET__V1__NOTICE_REASON__NOTICE_REASON_ESCALATION_SUMMARY)
        need_str(m, "", "recipient", n->recipient);
    if (n->urgency == CASENET__V1__URGENCY__URGENCY_UNSPECIFIED)
        miss(m, "urgency");
}

static void need_hash_share(struct missing *m, const Casenet__V1__HashShare *h);

/* Fills m with the required fields p lacks; returns the oneof's JSON name. */
static const char *payload_missing(const Casenet__V1__Payload *p, struct missing *m)
{
    switch (p->body_case) {
    case CASENET__V1__PAYLOAD__BODY_REFERRAL:
        need_referral(m, "", p->referral);
        return "referral";
    case CASENET__V1__PAYLOAD__BODY_STATUS:
        need_status(m, p->status);
        return "status";
    case CASENET__V1__PAYLOAD__BODY_INFO_REQUEST:
        need_str(m, "", "caseId", p->info_request->case_id);
        if (p->info_request->n_questions == 0)
            miss(m, "questions");
        return "infoRequest";
    case CASENET__V1__PAYLOAD__BODY_INFO_RESPONSE:
        need_str(m, "", "caseId", p->info_response->case_id);
        if (p->info_response->n_answers == 0 && !set(p->info_response->note))
            miss(m, "answers (or a note)");
        return "infoResponse";
    case CASENET__V1__PAYLOAD__BODY_TAKEDOWN_REQUEST:
        need_takedown_request(m, p->takedown_request);
        return "takedownRequest";
    case CASENET__V1__PAYLOAD__BODY_TAKEDOWN_RESULT:
        need_takedown_result(m, p->takedown_result);
        return "takedownResult";
    case CASENET__V1__PAYLOAD__BODY_CORRECTION:
        need_str(m, "", "caseId", p->correction->case_id);
        if (p->correction->referral)
            need_referral(m, "referral.", p->correction->referral);
        else if (!set(p->correction->note))
            miss(m, "note (or referral)");
        return "correction";
    case CASENET__V1__PAYLOAD__BODY_WITHDRAW:
        need_str(m, "", "caseId", p->withdraw->case_id);
        need_str(m, "", "reason", p->withdraw->reason);
        return "withdraw";
    case CASENET__V1__PAYLOAD__BODY_ERASE:
        need_str(m, "", "caseId", p->erase->case_id);
        if (p->erase->reason == CASENET__V1__ERASE_REASON__ERASE_REASON_UNSPECIFIED)
            miss(m, "reason");
        return "erase";
    case CASENET__V1__PAYLOAD__BODY_NOTICE:
        need_notice(m, p->notice);
        return "notice";
    case CASENET__V1__PAYLOAD__BODY_HASH_SHARE:
        need_hash_share(m, p->hash_share);
        return "hashShare";
    default:
        return "payload";
    }
}

/* The urgency p states (0 when its kind states none). */
static int stated_urgency(const Casenet__V1__Payload *p)
{
    switch (p->body_case) {
    case CASENET__V1__PAYLOAD__BODY_REFERRAL:
        return (int)p->referral->urgency;
    case CASENET__V1__PAYLOAD__BODY_CORRECTION:
        return p->correction->referral ? (int)p->correction->referral->urgency : 0;
    case CASENET__V1__PAYLOAD__BODY_NOTICE:
        return (int)p->notice->urgency;
    default:
        return 0;
    }
}

__attribute__((format(printf, 3, 4))) static void say(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ hash shares */

/* PROTOCOL.md §6.2: at most this many entries, retractions and feedback in
 * one HASH_SHARE, and these lengths of its texts. */
enum {
    HS_MAX_ITEMS = 20000,
    HS_MAX_VENDOR_TYPE = 64,
    HS_MAX_VENDOR_VALUE = 256,
    HS_MAX_REFERENCE = 128,
    HS_MAX_NOTE = 1024,
};

static void need_signal(struct missing *m, const char *what, size_t i,
                        const Casenet__V1__HashSignal *s)
{
    if (!s || s->signal_type == CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_UNSPECIFIED)
        miss(m, "%s[%zu].signal.signalType", what, i);
    if (!s || !set(s->value))
        miss(m, "%s[%zu].signal.value", what, i);
    if (s && s->signal_type == CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_VENDOR &&
        !set(s->vendor_type))
        miss(m, "%s[%zu].signal.vendorType", what, i);
}

static void need_hash_share(struct missing *m, const Casenet__V1__HashShare *h)
{
    if (h->n_entries + h->n_retractions + h->n_feedback == 0)
        miss(m, "entries (or retractions, or feedback)");
    for (size_t i = 0; i < h->n_entries; i++) {
        const Casenet__V1__HashEntry *e = h->entries[i];
        need_signal(m, "entries", i, e->signal);
        if (e->category == CASENET__V1__HASH_CATEGORY__HASH_CATEGORY_UNSPECIFIED)
            miss(m, "entries[%zu].category", i);
        if (e->first_seen_ms <= 0)
            miss(m, "entries[%zu].firstSeenMs", i);
    }
    for (size_t i = 0; i < h->n_retractions; i++)
        need_signal(m, "retractions", i, h->retractions[i]->signal);
    for (size_t i = 0; i < h->n_feedback; i++) {
        const Casenet__V1__HashFeedback *f = h->feedback[i];
        need_signal(m, "feedback", i, f->signal);
        if (f->kind == CASENET__V1__HASH_FEEDBACK_KIND__HASH_FEEDBACK_KIND_UNSPECIFIED)
            miss(m, "feedback[%zu].kind", i);
        else if (f->kind == CASENET__V1__HASH_FEEDBACK_KIND__HASH_FEEDBACK_KIND_MATCH &&
                 f->match_count == 0)
            miss(m, "feedback[%zu].matchCount", i);
        else if (f->kind == CASENET__V1__HASH_FEEDBACK_KIND__HASH_FEEDBACK_KIND_FALSE_POSITIVE &&
                 !set(f->note))
            miss(m, "feedback[%zu].note", i);
    }
}

static bool lower_hex(const char *s, size_t want)
{
    size_t n = 0;
    for (; s[n]; n++) {
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return false;
    }
    return n == want;
}

static bool vendor_type_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HS_MAX_VENDOR_TYPE)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool vendor_value_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HS_MAX_VENDOR_VALUE)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] <= 0x20 || s[i] > 0x7e || s[i] == ',' || s[i] == '"')
            return false;
    }
    return true;
}

/* Why signal s is malformed, or NULL when it is well formed. */
static const char *signal_bad(const Casenet__V1__HashSignal *s)
{
    if (s->signal_type != CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_VENDOR &&
        set(s->vendor_type))
        return "only a vendor signal names a vendorType";
    switch (s->signal_type) {
    case CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_MD5:
        return lower_hex(s->value, 32) ? NULL : "an md5 value is 32 lowercase hex digits";
    case CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_SHA1:
        return lower_hex(s->value, 40) ? NULL : "a sha1 value is 40 lowercase hex digits";
    case CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_SHA256:
        return lower_hex(s->value, 64) ? NULL : "a sha256 value is 64 lowercase hex digits";
    case CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_PDQ:
        return lower_hex(s->value, 64) ? NULL : "a pdq value is 64 lowercase hex digits";
    case CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_VENDOR:
        if (!vendor_type_ok(s->vendor_type))
            return "a vendor type is 1 to 64 of a-z, 0-9, '.', '_', '-'";
        return vendor_value_ok(s->value)
                   ? NULL
                   : "a vendor value is 1 to 256 printable ASCII characters, no space, ',' or '\"'";
    default:
        return "the signal type is none of md5, sha1, sha256, pdq, vendor";
    }
}

/* The first malformed item of h, said into err; CASENET_OK when none. */
static int hash_share_bad(const Casenet__V1__HashShare *h, char *err, size_t errlen)
{
    size_t total = h->n_entries + h->n_retractions + h->n_feedback;
    if (total > HS_MAX_ITEMS) {
        say(err, errlen, "the hashShare holds %zu items; at most %d fit in one message", total,
            HS_MAX_ITEMS);
        return CASENET_EBADREQ;
    }
    if (h->n_feedback && (h->n_entries || h->n_retractions)) {
        say(err, errlen,
            "the hashShare mixes feedback with entries or retractions; "
            "send them as two messages");
        return CASENET_EBADREQ;
    }
    const char *why = NULL, *what = "";
    size_t at = 0;
    for (size_t i = 0; !why && i < h->n_entries; i++) {
        const Casenet__V1__HashEntry *e = h->entries[i];
        what = "entries", at = i;
        why = signal_bad(e->signal);
        if (!why && e->category > CASENET__V1__HASH_CATEGORY__HASH_CATEGORY_NOT_ILLEGAL)
            why = "the category is none of baseline, nationally-illegal, not-illegal";
        if (!why && e->pdq_quality &&
            e->signal->signal_type != CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_PDQ)
            why = "only a pdq entry states a pdqQuality";
        if (!why && e->pdq_quality > 100)
            why = "pdqQuality is 1 to 100";
        if (!why && strlen(e->reference) > HS_MAX_REFERENCE)
            why = "the reference is longer than 128 bytes";
    }
    for (size_t i = 0; !why && i < h->n_retractions; i++) {
        what = "retractions", at = i;
        why = signal_bad(h->retractions[i]->signal);
        if (!why && strlen(h->retractions[i]->reason) > HS_MAX_NOTE)
            why = "the reason is longer than 1024 bytes";
    }
    for (size_t i = 0; !why && i < h->n_feedback; i++) {
        const Casenet__V1__HashFeedback *f = h->feedback[i];
        what = "feedback", at = i;
        why = signal_bad(f->signal);
        if (!why && f->kind > CASENET__V1__HASH_FEEDBACK_KIND__HASH_FEEDBACK_KIND_FALSE_POSITIVE)
            why = "the kind is none of match, false-positive";
        if (!why && strlen(f->note) > HS_MAX_NOTE)
            why = "the note is longer than 1024 bytes";
    }
    if (!why)
        return CASENET_OK;
    say(err, errlen, "hashShare %s[%zu] is refused: %s", what, at, why);
    return CASENET_EBADREQ;
}

int casenet_payload_check(const uint8_t *payload, size_t len, casenet_kind kind,
                          casenet_urgency urgency, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!payload && len)
        return CASENET_EINVAL;
    int want = cn_payload_case_for_kind(kind);
    Casenet__V1__Payload *p = casenet__v1__payload__unpack(&cn_wiping_allocator, len,
                                                           payload ? payload : (const uint8_t *)"");
    int rc = CASENET_EBADREQ;
    if (!p || want == 0 || (int)p->body_case != want) {
        say(err, errlen, "the payload is not a %s payload", casenet_kind_name(kind));
        goto cleanup;
    }
    if (!cn_pb_strings_valid(&p->base)) {
        say(err, errlen, "the %s holds a text field that is not UTF-8", casenet_kind_name(kind));
        goto cleanup;
    }
    struct missing m = {.len = 0, .n = 0};
    m.text[0] = '\0';
    const char *what = payload_missing(p, &m);
    if (m.n) {
        say(err, errlen, "the %s lacks %s", what, m.text);
        goto cleanup;
    }
    if (p->body_case == CASENET__V1__PAYLOAD__BODY_HASH_SHARE &&
        hash_share_bad(p->hash_share, err, errlen) != CASENET_OK)
        goto cleanup;
    int stated = stated_urgency(p);
    int header = urgency ? (int)urgency : CASENET_URGENCY_STANDARD;
    if (stated < 0 || stated > CASENET_URGENCY_INFO) {
        say(err, errlen,
            "the %s's urgency %d is none of emergency, urgent-takedown, standard, info", what,
            stated);
        goto cleanup;
    }
    if (stated && stated != header) {
        say(err, errlen, "the envelope's urgency is %s but the %s says %s",
            casenet_urgency_name(header), what, casenet_urgency_name(stated));
        goto cleanup;
    }
    rc = CASENET_OK;
cleanup:
    casenet__v1__payload__free_unpacked(p, &cn_wiping_allocator);
    return rc;
}

int casenet_payload_urgency(const uint8_t *payload, size_t len, casenet_urgency *out)
{
    if ((!payload && len) || !out)
        return CASENET_EINVAL;
    Casenet__V1__Payload *p = casenet__v1__payload__unpack(&cn_wiping_allocator, len,
                                                           payload ? payload : (const uint8_t *)"");
    if (!p)
        return CASENET_EBADREQ;
    *out = (casenet_urgency)stated_urgency(p);
    casenet__v1__payload__free_unpacked(p, &cn_wiping_allocator);
    return CASENET_OK;
}

/* ------------------------------------------------------------ role matrix */

enum {
    R_INTAKE = 1u << 0,
    R_RESPONDER = 1u << 1,
    R_TAKEDOWN = 1u << 2,
    R_PLATFORM = 1u << 3,
    R_COORDINATOR = 1u << 4,
    R_GATEWAY = 1u << 5,
    R_BROKER = 1u << 6,
    /* Members that take part in cases: everyone but coordinators (who see
     * metadata, never content) and the broker (which reads nothing). */
    R_PARTIES = R_INTAKE | R_RESPONDER | R_TAKEDOWN | R_PLATFORM | R_GATEWAY,
    /* Any member at all, even one without roles: the broker's notices reach
     * a message's sender whatever the directory now says of its roles. */
    R_ANYONE = 1u << 7,
    /* Who may add hashes to the bank (PROTOCOL.md §6.2): the hotline
     * (intake), the police (responder), and gateways for foreign lists. */
    R_CONTRIBUTORS = R_INTAKE | R_RESPONDER | R_GATEWAY,
};

static const char *const role_names[] = {"intake",      "responder",         "takedown-requester",
                                         "platform",    CN_ROLE_COORDINATOR, "gateway",
                                         CN_ROLE_BROKER};

/* PROTOCOL.md §6.1: kind, the roles that may send it (any one suffices), the
 * roles that may receive it. A recipient with role broker receives nothing. */
static const struct {
    int kind;
    unsigned from, to;
} matrix[] = {
    {CASENET_KIND_REFERRAL, R_INTAKE | R_RESPONDER | R_GATEWAY, R_INTAKE | R_RESPONDER | R_GATEWAY},
    {CASENET_KIND_STATUS, R_PARTIES, R_PARTIES},
    {CASENET_KIND_INFO_REQUEST, R_PARTIES, R_PARTIES},
    {CASENET_KIND_INFO_RESPONSE, R_PARTIES, R_PARTIES},
    {CASENET_KIND_TAKEDOWN_REQUEST, R_TAKEDOWN | R_GATEWAY, R_PLATFORM | R_GATEWAY},
    {CASENET_KIND_TAKEDOWN_RESULT, R_PLATFORM | R_GATEWAY, R_TAKEDOWN | R_GATEWAY},
    {CASENET_KIND_CORRECTION, R_PARTIES, R_PARTIES},
    {CASENET_KIND_WITHDRAW, R_PARTIES, R_PARTIES},
    {CASENET_KIND_ERASE, R_PARTIES, R_PARTIES},
    /* Contributing needs R_CONTRIBUTORS too (casenet_hash_share_check);
     * the other parties send feedback only. */
    {CASENET_KIND_HASH_SHARE, R_CONTRIBUTORS | R_PLATFORM, R_CONTRIBUTORS | R_PLATFORM},
    {CASENET_KIND_ESCALATION, R_BROKER, R_ANYONE},
    {CASENET_KIND_DEAD_LETTER, R_BROKER, R_ANYONE},
};

static unsigned role_mask(const casenet_member *m)
{
    unsigned mask = 0;
    for (size_t i = 0; i < m->n_roles; i++) {
        for (size_t j = 0; j < sizeof role_names / sizeof role_names[0]; j++) {
            if (strcmp(m->roles[i], role_names[j]) == 0)
                mask |= 1u << j;
        }
    }
    return mask;
}

/* "intake or responder" for mask, into buf. */
static const char *mask_names(unsigned mask, char *buf, size_t len)
{
    size_t at = 0, n = 0, total = 0;
    for (size_t j = 0; j < sizeof role_names / sizeof role_names[0]; j++)
        total += (mask >> j) & 1u;
    buf[0] = '\0';
    for (size_t j = 0; j < sizeof role_names / sizeof role_names[0] && at < len; j++) {
        if (!((mask >> j) & 1u))
            continue;
        n++;
        int w = snprintf(buf + at, len - at, "%s%s",
                         n == 1       ? ""
                         : n == total ? " or "
                                      : ", ",
                         role_names[j]);
        if (w < 0)
            break;
        at += (size_t)w;
    }
    if (total == 0)
        snprintf(buf, len, "no role");
    return buf;
}

bool casenet_role_may_send(const casenet_member *sender, int kind, const casenet_member *recipient)
{
    if (!sender || !recipient)
        return false;
    unsigned from = role_mask(sender), to = role_mask(recipient);
    if (to & R_BROKER)
        return false;
    for (size_t i = 0; i < sizeof matrix / sizeof matrix[0]; i++) {
        if (matrix[i].kind != kind)
            continue;
        if (!(from & matrix[i].from))
            return false;
        return (matrix[i].to & R_ANYONE) || (to & matrix[i].to) != 0;
    }
    return false;
}

int casenet_role_check(const casenet_directory *dir, const char *sender, int kind,
                       const char *const *recipients, size_t n, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!dir || !sender || (n && !recipients))
        return CASENET_EINVAL;
    casenet_member s, r;
    if (casenet_directory_find(dir, sender, &s) != CASENET_OK) {
        say(err, errlen, "%s is not in the directory", sender);
        return CASENET_EUNAUTH;
    }
    size_t row = 0;
    while (row < sizeof matrix / sizeof matrix[0] && matrix[row].kind != kind)
        row++;
    char have[128], want[128];
    if (row == sizeof matrix / sizeof matrix[0]) {
        say(err, errlen, "no member may send a %s message", casenet_kind_name(kind));
        return CASENET_EFORBIDDEN;
    }
    if (!(role_mask(&s) & matrix[row].from)) {
        say(err, errlen, "%s (%s) may not send %s messages: only %s may", sender,
            mask_names(role_mask(&s), have, sizeof have), casenet_kind_name(kind),
            mask_names(matrix[row].from, want, sizeof want));
        return CASENET_EFORBIDDEN;
    }
    for (size_t i = 0; i < n; i++) {
        if (casenet_directory_find(dir, recipients[i], &r) != CASENET_OK) {
            say(err, errlen, "recipient %s is not in the directory", recipients[i]);
            return CASENET_EUNKNOWNRCPT;
        }
        if (casenet_role_may_send(&s, kind, &r))
            continue;
        if (role_mask(&r) & R_BROKER)
            say(err, errlen, "%s is the broker: no member sends it messages", recipients[i]);
        else
            say(err, errlen, "%s messages go to %s; %s is %s", casenet_kind_name(kind),
                mask_names(matrix[row].to, want, sizeof want), recipients[i],
                mask_names(role_mask(&r), have, sizeof have));
        return CASENET_EFORBIDDEN;
    }
    return CASENET_OK;
}

int casenet_hash_share_check(const casenet_directory *dir, const char *sender,
                             const uint8_t *payload, size_t len, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!dir || !sender || (!payload && len))
        return CASENET_EINVAL;
    Casenet__V1__Payload *p = casenet__v1__payload__unpack(&cn_wiping_allocator, len,
                                                           payload ? payload : (const uint8_t *)"");
    if (!p || p->body_case != CASENET__V1__PAYLOAD__BODY_HASH_SHARE) {
        if (p)
            casenet__v1__payload__free_unpacked(p, &cn_wiping_allocator);
        say(err, errlen, "the payload is not a hash-share payload");
        return CASENET_EBADREQ;
    }
    bool contributes = p->hash_share->n_entries + p->hash_share->n_retractions > 0;
    casenet__v1__payload__free_unpacked(p, &cn_wiping_allocator);
    casenet_member s;
    if (casenet_directory_find(dir, sender, &s) != CASENET_OK) {
        say(err, errlen, "%s is not in the directory", sender);
        return CASENET_EUNAUTH;
    }
    if (!contributes || (role_mask(&s) & R_CONTRIBUTORS))
        return CASENET_OK;
    char have[128], want[128];
    say(err, errlen, "%s (%s) may not contribute hashes: only %s may; it may send feedback", sender,
        mask_names(role_mask(&s), have, sizeof have),
        mask_names(R_CONTRIBUTORS, want, sizeof want));
    return CASENET_EFORBIDDEN;
}
