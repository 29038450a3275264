/* envelope.c - being written. */
