/* util.c - being written. */
