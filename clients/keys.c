/* keys.c - being written. */
