/* fuzz_hashbank_csv.c - libFuzzer harness: the hash bank's CSV rows and
 * TYPE:VALUE arguments (clients/hashbank_csv.c), the lines `casenet hashes
 * contribute --csv` reads from other hotlines' lists. */
#include "hashbank.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A row that parses must hold a value and a type that parse again from its
 * own text; err is always a terminated string. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hashbank_row row, again;
    char err[256], line[HASHBANK_TYPE_MAX + HASHBANK_VALUE_MAX + 40];
    err[0] = 'x';
    int rc = hashbank_csv_row((const char *)data, size, &row, err, sizeof err);
    if (!memchr(err, 0, sizeof err))
        abort();
    (void)hashbank_csv_header((const char *)data, size);
    if (rc == CASENET_OK) {
        char type[HASHBANK_TYPE_MAX];
        int n =
            snprintf(line, sizeof line, "%s,%s,%s", hashbank_type_text(row.type, row.vendor, type),
                     row.value, row.category ? hashbank_category_name(row.category) : "");
        if (n < 0 || (size_t)n >= sizeof line ||
            hashbank_csv_row(line, (size_t)n, &again, err, sizeof err) != CASENET_OK ||
            strcmp(again.value, row.value) != 0 || again.type != row.type) {
            fprintf(stderr, "a parsed row does not parse again: %s\n", line);
            abort();
        }
    }
    char *arg = malloc(size + 1);
    if (!arg)
        return 0;
    memcpy(arg, data, size);
    arg[size] = '\0';
    if (hashbank_signal_arg(arg, &row, err, sizeof err) == CASENET_OK && !row.value[0])
        abort(); /* a parsed signal always has a value */
    free(arg);
    return 0;
}
