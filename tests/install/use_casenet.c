/* use_casenet.c - a program outside the project built against the installed
 * header and libcasenet through pkg-config (tests/install/install.sh): it
 * generates a member's keys and reads back an error name. */
#include <casenet.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    if (casenet_init() != CASENET_OK)
        return 1;
    casenet_keys *k = NULL;
    if (casenet_keys_generate("agency.example", 0, &k) != CASENET_OK)
        return 1;
    casenet_keys_free(k);
    if (strcmp(casenet_errname(CASENET_EINVAL), "INVALID") != 0)
        return 1;
    puts("ok");
    return 0;
}
