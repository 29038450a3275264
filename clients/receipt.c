/* receipt.c - being written. */
