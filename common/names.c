/* names.c - command-line and JSON names of the protocol enums, and member id
 * syntax. */
#include "casenet.h"

#include <string.h>

struct name_row {
    int value;
    const char *name;
};

static const struct name_row kinds[] = {
    {CASENET_KIND_REFERRAL, "referral"},
    {CASENET_KIND_STATUS, "status"},
    {CASENET_KIND_INFO_REQUEST, "info-request"},
    {CASENET_KIND_INFO_RESPONSE, "info-response"},
    {CASENET_KIND_TAKEDOWN_REQUEST, "takedown-request"},
    {CASENET_KIND_TAKEDOWN_RESULT, "takedown-result"},
    {CASENET_KIND_CORRECTION, "correction"},
    {CASENET_KIND_WITHDRAW, "withdraw"},
    {CASENET_KIND_ERASE, "erase"},
    {CASENET_KIND_HASH_SHARE, "hash-share"},
    {CASENET_KIND_ESCALATION, "escalation"},
    {CASENET_KIND_DEAD_LETTER, "dead-letter"},
    {CASENET_KIND_RECEIPT, "receipt"},
    {0, NULL},
};

static const struct name_row urgencies[] = {
    {CASENET_URGENCY_EMERGENCY, "emergency"},
    {CASENET_URGENCY_URGENT_TAKEDOWN, "urgent-takedown"},
    {CASENET_URGENCY_STANDARD, "standard"},
    {CASENET_URGENCY_INFO, "info"},
    {0, NULL},
};

static const struct name_row msg_statuses[] = {
    {CASENET_MSG_ACTUAL, "actual"},
    {CASENET_MSG_EXERCISE, "exercise"},
    {CASENET_MSG_TEST, "test"},
    {0, NULL},
};

static const struct name_row receipt_statuses[] = {
    {CASENET_RECEIPT_DELIVERED, "delivered"},
    {CASENET_RECEIPT_ACCEPTED, "accepted"},
    {CASENET_RECEIPT_DECLINED, "declined"},
    {CASENET_RECEIPT_COMPLETED, "completed"},
    {0, NULL},
};

static const struct name_row inbox_states[] = {
    {CASENET_INBOX_ANY, "any"},
    {CASENET_INBOX_QUEUED, "queued"},
    {CASENET_INBOX_FETCHED, "fetched"},
    {CASENET_INBOX_DELIVERED, "delivered"},
    {CASENET_INBOX_ACCEPTED, "accepted"},
    {CASENET_INBOX_DECLINED, "declined"},
    {CASENET_INBOX_COMPLETED, "completed"},
    {CASENET_INBOX_DEAD, "dead"},
    {0, NULL},
};

static const char *name_of(const struct name_row *rows, int value)
{
    for (; rows->name; rows++) {
        if (rows->value == value)
            return rows->name;
    }
    return "unknown";
}

static int parse(const struct name_row *rows, const char *name, int *out)
{
    if (!name)
        return CASENET_EINVAL;
    for (; rows->name; rows++) {
        if (strcmp(rows->name, name) == 0) {
            *out = rows->value;
            return CASENET_OK;
        }
    }
    return CASENET_EINVAL;
}

const char *casenet_kind_name(int kind)
{
    return name_of(kinds, kind);
}

const char *casenet_urgency_name(int urgency)
{
    return name_of(urgencies, urgency);
}

const char *casenet_msg_status_name(int status)
{
    return name_of(msg_statuses, status);
}

const char *casenet_receipt_status_name(int status)
{
    return name_of(receipt_statuses, status);
}

int casenet_kind_parse(const char *name, casenet_kind *out)
{
    int v = 0;
    int rc = parse(kinds, name, &v);
    if (rc == CASENET_OK)
        *out = (casenet_kind)v;
    return rc;
}

int casenet_urgency_parse(const char *name, casenet_urgency *out)
{
    int v = 0;
    int rc = parse(urgencies, name, &v);
    if (rc == CASENET_OK)
        *out = (casenet_urgency)v;
    return rc;
}

int casenet_msg_status_parse(const char *name, casenet_msg_status *out)
{
    int v = 0;
    int rc = parse(msg_statuses, name, &v);
    if (rc == CASENET_OK)
        *out = (casenet_msg_status)v;
    return rc;
}

int casenet_receipt_status_parse(const char *name, casenet_receipt_status *out)
{
    int v = 0;
    int rc = parse(receipt_statuses, name, &v);
    if (rc == CASENET_OK)
        *out = (casenet_receipt_status)v;
    return rc;
}

const char *casenet_inbox_state_name(int state)
{
    return name_of(inbox_states, state);
}

int casenet_inbox_state_parse(const char *name, casenet_inbox_state *out)
{
    int v = 0;
    int rc = parse(inbox_states, name, &v);
    if (rc == CASENET_OK)
        *out = (casenet_inbox_state)v;
    return rc;
}

static const struct name_row outcomes[] = {
    {CASENET_OUTCOME_RESOLVED, "resolved"},
    {CASENET_OUTCOME_REFERRED_ONWARD, "referred-onward"},
    {CASENET_OUTCOME_NO_ACTION_NEEDED, "no-action-needed"},
    {CASENET_OUTCOME_UNABLE_TO_ACT, "unable-to-act"},
    {CASENET_OUTCOME_WITHDRAWN, "withdrawn"},
    {0, NULL},
};

const char *casenet_outcome_name(int outcome)
{
    return outcome == CASENET_OUTCOME_NONE ? "none" : name_of(outcomes, outcome);
}

int casenet_outcome_parse(const char *name, casenet_outcome *out)
{
    int v = 0;
    int rc = parse(outcomes, name, &v);
    if (rc == CASENET_OK)
        *out = (casenet_outcome)v;
    return rc;
}

bool casenet_decline_reason_valid(const char *reason)
{
    static const char *const reasons[] = {"not-competent", "duplicate", "insufficient-information",
                                          "redirected"};
    for (size_t i = 0; reason && i < sizeof reasons / sizeof reasons[0]; i++) {
        if (strcmp(reason, reasons[i]) == 0)
            return true;
    }
    return false;
}

bool casenet_member_id_valid(const char *id)
{
    if (!id)
        return false;
    size_t n = strlen(id);
    if (n < 2 || n > CASENET_MEMBER_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '-')))
            return false;
    }
    return true;
}

static const struct name_row deadline_kinds[] = {
    {CASENET_DEADLINE_DELIVER, "deliver"},
    {CASENET_DEADLINE_ACCEPT, "accept"},
    {CASENET_DEADLINE_EXPIRE, "expire"},
    {0, NULL},
};

static const struct name_row deadline_states[] = {
    {CASENET_DEADLINE_PENDING, "pending"},
    {CASENET_DEADLINE_MET, "met"},
    {CASENET_DEADLINE_BREACHED, "breached"},
    {CASENET_DEADLINE_VOID, "void"},
    {0, NULL},
};

const char *casenet_deadline_kind_name(int kind)
{
    return name_of(deadline_kinds, kind);
}

const char *casenet_deadline_state_name(int state)
{
    return name_of(deadline_states, state);
}
