/* fuzz_policy.c - libFuzzer harness: the deadline policy file and its
 * durations from arbitrary bytes (broker/policy.c), through the real inih
 * reader. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "casenet.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void remove_scratch(void)
{
    unlink(path);
}

/* One scratch file for the whole run, rewritten per input, removed at exit. */
static const char *scratch(void)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/fuzz-policy-XXXXXX");
        int fd = mkstemp(path);
        if (fd < 0)
            abort();
        close(fd);
        atexit(remove_scratch);
    }
    return path;
}

static void check_entry(const struct policy_entry *e)
{
    if (e->deliver_ms < 0 || e->deliver_ms > POLICY_MAX_MS || e->accept_ms < 0 ||
        e->accept_ms > POLICY_MAX_MS)
        abort();
}

/* Invariants: a duration that parses is within [0, POLICY_MAX_MS] and reads
 * back from what policy_format_duration writes of it; a file that loads
 * holds only such durations; one that does not leaves the policy as it was
 * and says why in a terminated message naming the file. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    int64_t ms = -1;
    if (policy_parse_duration(text, &ms) == 0) {
        char out[32];
        int64_t again = -1;
        if (ms < 0 || ms > POLICY_MAX_MS)
            abort();
        policy_format_duration(ms, out, sizeof out);
        if (policy_parse_duration(out, &again) != 0 || again != ms) {
            fprintf(stderr, "'%s' is %lld ms, written '%s'\n", text, (long long)ms, out);
            abort();
        }
    }
    free(text);

    const char *file = scratch();
    FILE *f = fopen(file, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    struct broker_policy p, before;
    policy_defaults(&p);
    p.by_urgency[0].deliver_ms = 12345; /* not a default: must survive */
    before = p;
    char err[256];
    memset(err, 'x', sizeof err);
    int rc = policy_load(file, &p, err, sizeof err);
    if (rc == CASENET_OK) {
        for (int u = 1; u <= 4; u++)
            check_entry(&p.by_urgency[u]);
        if (p.by_urgency[0].deliver_ms != 12345)
            abort();
    } else {
        if (rc != CASENET_EINVAL || memcmp(&p, &before, sizeof p) != 0 ||
            !memchr(err, '\0', sizeof err) || strncmp(err, file, strlen(file)) != 0)
            abort();
    }
    for (int u = -1; u <= 6; u++)
        check_entry(policy_for(&p, u));
    return 0;
}
