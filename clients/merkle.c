/* merkle.c - being written. */
