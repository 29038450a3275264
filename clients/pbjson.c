/* pbjson.c - being written. */
