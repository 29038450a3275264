/* client.c - being written. */
