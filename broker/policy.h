/*
 * policy.h - the broker's deadline policy: for each urgency, how long a
 * recipient has to acknowledge delivery (deliver_within) and to accept or
 * decline (accept_within), counted from the broker's acceptance of the
 * message (received_at). Read from an INI file (`casenetd --policy FILE`):
 *
 *     [emergency]
 *     deliver_within = 15m
 *     accept_within = 1h
 *
 * Sections: emergency, urgent-takedown, standard, info. Keys: deliver_within,
 * accept_within. Values: a positive whole number with a unit s, m, h or d
 * ("90s", "15m", "12h", "2d"), or "0" / "none" for no deadline. A section or
 * key left out keeps its default (POLICY_DEFAULT_TEXT).
 */
#ifndef BROKER_POLICY_H
#define BROKER_POLICY_H

#include <stddef.h>
#include <stdint.h>

/* Longest accepted delay: a year (anything longer is a typo). */
#define POLICY_MAX_MS (366LL * 24 * 3600 * 1000)

struct policy_entry {
    int64_t deliver_ms; /* 0 = no deadline */
    int64_t accept_ms;  /* 0 = no deadline */
};

/* Indexed by proto Urgency (1 emergency .. 4 info); [0] is unused (an
 * unspecified urgency is treated as standard). */
struct broker_policy {
    struct policy_entry by_urgency[5];
};

/*
 * The defaults, with their reasons (also the README text):
 *
 *   emergency        deliver 15m  accept 1h   serious risk to a child now. Emergency
 *                                             measures are due within 12 h (Decree
 *                                             56/2017, art. 26), so the receiving
 *                                             agency must acknowledge within minutes
 *                                             and take the case within the hour to
 *                                             leave time to act.
 *   urgent-takedown  deliver 1h   accept 24h  platforms must remove content within
 *                                             24 h of a competent authority's
 *                                             request (Decree 147/2024).
 *   standard         deliver 24h  accept 48h  ordinary referrals: a working day to
 *                                             acknowledge, two to decide.
 *   info             none         none        information only: no clock.
 */
#define POLICY_DEFAULT_TEXT                                                                        \
    "[emergency]\ndeliver_within = 15m\naccept_within = 1h\n"                                      \
    "[urgent-takedown]\ndeliver_within = 1h\naccept_within = 24h\n"                                \
    "[standard]\ndeliver_within = 24h\naccept_within = 48h\n"                                      \
    "[info]\ndeliver_within = none\naccept_within = none\n"

/* Fills p with the defaults above. */
void policy_defaults(struct broker_policy *p);

/* Reads the policy file at path over the defaults in p. On failure returns
 * CASENET_EIO (unreadable) or CASENET_EINVAL (unknown section or key, a bad
 * duration, a syntax error) with a message naming the file, the line and
 * the problem in err; p is then unchanged. */
int policy_load(const char *path, struct broker_policy *p, char *err, size_t errlen);

/* Parses a duration as described above into ms (0 for "0" / "none").
 * Returns 0 on success, -1 when malformed or above POLICY_MAX_MS. */
int policy_parse_duration(const char *s, int64_t *ms);

/* The entry for a proto Urgency (unknown or unspecified: standard). */
const struct policy_entry *policy_for(const struct broker_policy *p, int urgency);

/* Formats ms as the shortest exact duration ("90s", "15m", "none") into
 * out[cap], for logs and --check-config. */
void policy_format_duration(int64_t ms, char *out, size_t cap);

#endif
