/* rows.c - rows for store tests (see rows.h). */
#include "rows.h"

#include <stdio.h>
#include <string.h>

struct store_message store_test_message(uint8_t id_byte, const char *sender)
{
    static uint8_t receipt[CASENET_SIGNATURE_BYTES + 8];
    struct store_message m = {0};
    memset(m.message_id, id_byte, sizeof m.message_id);
    snprintf(m.sender, sizeof m.sender, "%s", sender);
    m.kind = CASENET_KIND_REFERRAL;
    m.urgency = CASENET_URGENCY_STANDARD;
    m.msg_status = CASENET_MSG_TEST;
    m.created_at_ms = m.received_at_ms = 1000;
    m.expires_at_ms = 9000;
    m.has_case_ref = true;
    memset(m.case_ref, id_byte ^ 0x55, sizeof m.case_ref);
    memset(m.envelope_hash, id_byte ^ 0xff, sizeof m.envelope_hash);
    m.size = 3;
    m.envelope.data = (uint8_t *)"env";
    m.envelope.len = 3;
    memset(receipt, 0xee, sizeof receipt);
    m.receipt.data = receipt;
    m.receipt.len = sizeof receipt;
    return m;
}

struct store_inbox_row store_test_row(const char *recipient, uint8_t id_byte, int kind,
                                      const char *sender)
{
    struct store_inbox_row r = {0};
    snprintf(r.recipient, sizeof r.recipient, "%s", recipient);
    memset(r.message_id, id_byte, sizeof r.message_id);
    snprintf(r.sender, sizeof r.sender, "%s", sender);
    r.kind = kind;
    r.state = STORE_INBOX_QUEUED;
    r.received_at_ms = r.created_at_ms = 1000;
    r.size = 3;
    return r;
}
