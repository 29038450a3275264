/* error.c - being written. */
