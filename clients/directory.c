/* directory.c - being written. */
