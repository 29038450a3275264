/*
 * bench_coord_fill.c - fills a stopped casenetd's store (DIR, as --data
 * takes it) with N synthetic messages for the coordinator benchmark
 * (tests/console/bench_coord.py): per message a SUBMITTED event (an actual
 * referral from vn.hotline111 to vn.police.a05, urgency alternating), a
 * delivered and an accepted RECEIPT a few minutes later, appended through
 * the broker's own store code (which keeps the Merkle tree), spread over
 * the 20 days before now. The broker signs a head over them when it
 * starts. Not a test:  bench_coord_fill DIR N
 */
#include "casenet.pb-c.h"
#include "store.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BATCH 10000u

static void check(int rc, const char *what)
{
    if (rc != CASENET_OK) {
        fprintf(stderr, "bench_coord_fill: %s: %s\n", what, casenet_strerror(rc));
        exit(1);
    }
}

static void append(struct store *s, uint64_t *index, Casenet__V1__AuditEvent *e)
{
    static char *parties[2] = {"vn.hotline111", "vn.police.a05"};
    uint8_t buf[512];
    e->index = *index;
    e->parties = parties;
    e->n_parties = 2;
    size_t len = casenet__v1__audit_event__pack(e, buf);
    check(store_audit_append(s, *index, e->time_ms, (int)e->kind, (const char *const *)parties, 2,
                             buf, len),
          "audit_append");
    (*index)++;
}

int main(int argc, char **argv)
{
    if (argc != 3 || sodium_init() < 0)
        return 2;
    uint64_t n = strtoull(argv[2], NULL, 10), index = 0;
    struct store *s = NULL;
    check(store_open(argv[1], &s), "open");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000, span = 20LL * 86400000;
    uint8_t mid[16], hash[32];
    for (uint64_t m = 0; m < n;) {
        check(store_begin(s), "begin");
        check(store_audit_next_index(s, &index), "next_index");
        for (uint32_t k = 0; k < BATCH && m < n; k++, m++) {
            randombytes_buf(mid, sizeof mid);
            randombytes_buf(hash, sizeof hash);
            Casenet__V1__AuditEvent e = CASENET__V1__AUDIT_EVENT__INIT;
            e.time_ms = now - span + (int64_t)(m * (uint64_t)span / n);
            e.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_SUBMITTED;
            e.actor = "vn.hotline111";
            e.message_id = (ProtobufCBinaryData){sizeof mid, mid};
            e.envelope_hash = (ProtobufCBinaryData){sizeof hash, hash};
            e.message_kind = CASENET__V1__KIND__KIND_REFERRAL;
            e.urgency = m % 2 ? CASENET__V1__URGENCY__URGENCY_STANDARD
                              : CASENET__V1__URGENCY__URGENCY_EMERGENCY;
            e.message_status = CASENET__V1__MESSAGE_STATUS__MESSAGE_STATUS_ACTUAL;
            e.size = 2048;
            append(s, &index, &e);
            e.kind = CASENET__V1__AUDIT_KIND__AUDIT_KIND_RECEIPT;
            e.actor = "vn.police.a05";
            e.envelope_hash = (ProtobufCBinaryData){0, NULL};
            e.receipt_status = CASENET__V1__RECEIPT_STATUS__RECEIPT_STATUS_DELIVERED;
            e.time_ms += 60000 + (int64_t)(m % 600) * 1000;
            append(s, &index, &e);
            e.receipt_status = CASENET__V1__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED;
            e.time_ms += 120000 + (int64_t)(m % 1200) * 1000;
            append(s, &index, &e);
        }
        check(store_commit(s), "commit");
    }
    store_close(s);
    printf("appended %llu messages, log size %llu\n", (unsigned long long)n,
           (unsigned long long)index);
    return 0;
}
