/* names.c - being written. */
