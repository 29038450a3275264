/* payload_json.c - being written. */
