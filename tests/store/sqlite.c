/* sqlite.c - the store conformance suite on the SQLite backend: a fresh
 * data directory per test. */
#include "conformance.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEME "sqlite:"

static char *fresh(void)
{
    char *dir = tl_tmpdir();
    char *spec = NULL;
    if (asprintf(&spec, SCHEME "%s", dir) < 0)
        abort();
    free(dir);
    return spec;
}

static void discard(const char *spec)
{
    tl_rmrf(spec + strlen(SCHEME));
}

int main(void)
{
    static const struct conformance_backend sqlite = {"sqlite", fresh, discard};
    return conformance_run(&sqlite);
}
