/*
 * console_bank.h - the console's hash-bank page (issue 19, docs/console.md
 * "The hash bank"): for a member that holds a bank (its directory role
 * receives HASH_SHARE: intake, responder, gateway or platform) the console
 * imports the hash shares it is notified of, through the CLI's own import
 * path (cmd_hashes.h), and serves GET /api/v1/bank: counts by category and
 * source, last update, recent matches and feedback, by page.
 */
#ifndef CASENET_CLI_CONSOLE_BANK_H
#define CASENET_CLI_CONSOLE_BANK_H

#include "casenet.h"

#include <stdbool.h>

struct console;
struct console_req;
struct console_resp;

/* Rows per page of the bank's recent matches and feedback (?limit= caps). */
#define CONSOLE_BANK_PAGE     50
#define CONSOLE_BANK_PAGE_MAX 200

/* True when the home's member holds a hash bank: one of its roles in the
 * directory receives HASH_SHARE (PROTOCOL.md section 6.1). */
bool console_bank_held(const struct console *c);
/* From the notice thread, over its connection cl: with e NULL (after a
 * connect or a resync), imports every hash share of the inbox not yet
 * applied; else imports e when it is one. Then pushes {"type":"bank"} to
 * the pages when the bank changed. Nothing for a member without a bank. */
void console_bank_notice(struct console *c, casenet_client *cl, const casenet_inbox_entry *e);
/* GET /bank: FORBIDDEN for a member without a bank. Counts and last update
 * for every staff role; recent matches and feedback (hash values, other
 * members' notes) for caseworkers and supervisors, each read written to the
 * disclosure ledger first ("read:bank"). */
void console_bank_api(struct console *c, const struct console_req *r, struct console_resp *out);

#endif
