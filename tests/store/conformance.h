/*
 * conformance.h - the store conformance suite (tests/store/conformance.c):
 * what every backend of broker/store.h must do, tested through store_open()
 * and the store_*() calls only. A backend's driver is a main() that names
 * how to get a fresh, empty store and how to throw it away.
 */
#ifndef CASENET_TESTS_STORE_CONFORMANCE_H
#define CASENET_TESTS_STORE_CONFORMANCE_H

struct conformance_backend {
    const char *name; /* for the test group's name */
    /* A spec (for store_open) naming a new, empty store; malloc'd. */
    char *(*fresh)(void);
    /* Removes the store spec names (closed). */
    void (*discard)(const char *spec);
};

/* Runs every test against b; the cmocka exit status. */
int conformance_run(const struct conformance_backend *b);

#endif
