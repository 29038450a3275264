/*
 * rows.h - rows for store tests: a stored message and an inbox row with
 * every required field set, to be adjusted by the test.
 */
#ifndef CASENET_TESTS_STORE_ROWS_H
#define CASENET_TESTS_STORE_ROWS_H

#include "store.h"

/* Message id_byte x 16 from sender: a referral with a case reference, a
 * 3-byte envelope and a receipt of CASENET_SIGNATURE_BYTES + 8 bytes (both
 * static: valid until the next call). */
struct store_message store_test_message(uint8_t id_byte, const char *sender);
/* A QUEUED row of kind for recipient, about message id_byte x 16, from
 * sender. */
struct store_inbox_row store_test_row(const char *recipient, uint8_t id_byte, int kind,
                                      const char *sender);

#endif
